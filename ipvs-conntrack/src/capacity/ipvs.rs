//! The IPVS part of the capacity model: per real server, active and inactive
//! connections by state and when InActConn drains (from [`crate::ipvs::explain()`]);
//! the rate of new connections from the services' 64-bit `conns` counters; Little's law
//! for the InActConn to expect at that rate; memory and hash-chain arithmetic; and
//! `ipvsadm --set` suggestions with their computed effect.
//!
//! IPVS has no maximum number of connection entries. Its table is a hash table of
//! `conn_tab_size` buckets (`2^conn_tab_bits`, a module parameter) whose chains grow
//! with the entries, so what runs out is memory (and lookup time in long chains). A
//! short TCP connection stays in TIME_WAIT for 120 s after it closes, and that timeout
//! is fixed (`ipvsadm --set` changes only tcp, tcpfin and udp), so at R new short
//! connections per second a director holds about R × 120 inactive entries.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::Result;
use crate::ipvs::addr::Protocol;
use crate::ipvs::config::Timeouts;
use crate::ipvs::conn::Connection;
use crate::ipvs::dest::ForwardMethod;
use crate::ipvs::explain::{explain, ExplainedConn, Explanation, StateGroup};
use crate::ipvs::info::Info;
use crate::ipvs::service::ServiceKey;
use crate::ipvs::timeouts::{Activity, ConnState, StateTimeoutTable, TcpState};
use crate::ipvs::{Ipvs, Snapshot};
use crate::netns::Netns;

/// FIN_WAIT timeout suggested when FIN_WAIT entries sit in the table, seconds.
pub const SUGGESTED_TCPFIN: u32 = 30;
/// UDP timeout suggested when UDP entries sit in the table, seconds.
pub const SUGGESTED_UDP: u32 = 60;
/// Mean hash-chain length above which a larger connection table is suggested.
pub const CHAIN_WARN: f64 = 8.0;
/// Mean hash-chain length a suggested `conn_tab_bits` aims at.
pub const CHAIN_TARGET: f64 = 4.0;
/// Smallest `conn_tab_bits` the kernel accepts.
pub const CONN_TAB_BITS_MIN: u32 = 8;
/// Largest `conn_tab_bits` the kernel accepts on 64-bit machines (it also caps it by memory).
pub const CONN_TAB_BITS_MAX: u32 = 27;
/// How often the kernel copies its per-CPU counters into the values it reports (its rate
/// estimator's period): a counter read shows the traffic up to the last copy.
pub const ESTIMATOR_PERIOD: Duration = Duration::from_secs(2);
/// Bytes of one hash bucket (a list head) of the connection table on 64-bit machines.
pub const BUCKET_BYTES: u64 = 8;
/// Share of the machine's memory above which the expected IPVS entries raise a warning.
pub const MEMORY_WARN_SHARE: f64 = 0.25;

/// The 64-bit `conns` counters of every service and real server at one moment.
#[derive(Clone, Debug)]
pub struct ConnSample {
    taken: Instant,
    services: Vec<ServiceCounters>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct ServiceCounters {
    key: ServiceKey,
    conns: Option<u64>,
    dests: Vec<(SocketAddr, Option<u64>)>,
}

impl ConnSample {
    /// Reads the counters now (dated to the start of the read).
    pub fn read(ipvs: &mut Ipvs) -> Result<ConnSample> {
        let taken = Instant::now();
        let snapshot = ipvs.snapshot()?;
        Ok(Self::of(&snapshot, taken))
    }

    /// The counters of a snapshot read at `taken`.
    pub fn of(snapshot: &Snapshot, taken: Instant) -> ConnSample {
        let services = snapshot
            .iter()
            .map(|(s, dests)| ServiceCounters {
                key: s.key,
                conns: s.best_stats().map(|st| st.conns),
                dests: dests
                    .iter()
                    .map(|d| (d.socket_addr(), d.best_stats().map(|st| st.conns)))
                    .collect(),
            })
            .collect();
        ConnSample { taken, services }
    }

    /// Reads the counters a whole number of [`ESTIMATOR_PERIOD`]s after `since` was read
    /// (sleeping until then, at least one period). The kernel copies its counters every
    /// period, so two reads a whole number of periods apart are the same time after their
    /// last copy, and their difference counts exactly the traffic of that many periods.
    pub fn read_aligned(ipvs: &mut Ipvs, since: &ConnSample) -> Result<ConnSample> {
        sleep_to_period_boundary(since.taken);
        Self::read(ipvs)
    }

    /// The same counters dated `taken`: for a read made once the counters have caught up
    /// with traffic that is known to have ended at `taken`.
    pub fn dated(mut self, taken: Instant) -> ConnSample {
        self.taken = taken;
        self
    }

    /// When the counters were read (or the moment they were dated to).
    pub fn taken(&self) -> Instant {
        self.taken
    }

    /// The `conns` counter of a service (None if absent or without statistics).
    pub fn service_conns(&self, key: &ServiceKey) -> Option<u64> {
        self.services.iter().find(|s| s.key == *key)?.conns
    }

    /// The `conns` counter of one real server of a service.
    pub fn dest_conns(&self, key: &ServiceKey, dest: SocketAddr) -> Option<u64> {
        let s = self.services.iter().find(|s| s.key == *key)?;
        s.dests.iter().find(|(a, _)| *a == dest)?.1
    }

    /// The sum of every service's `conns` counter.
    pub fn total_conns(&self) -> u64 {
        self.services.iter().filter_map(|s| s.conns).sum()
    }
}

/// Sleeps until the first instant `since + k × ESTIMATOR_PERIOD` (k ≥ 1) that is not past.
fn sleep_to_period_boundary(since: Instant) {
    let period = ESTIMATOR_PERIOD.as_secs_f64();
    let elapsed = since.elapsed().as_secs_f64();
    let k = (elapsed / period).ceil().max(1.0);
    let target = since + Duration::from_secs_f64(k * period);
    std::thread::sleep(target.saturating_duration_since(Instant::now()));
}

/// IPVS settings of a namespace (`/proc/sys/net/ipv4/vs/`) that bear on capacity: the
/// memory defense (what happens when free memory drops below `amemthresh` pages) and
/// whether the counters are updated at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct VsSettings {
    /// Free-memory threshold in pages (`amemthresh`).
    pub amemthresh: Option<u64>,
    /// Randomly drop connection entries under memory pressure (`drop_entry`, 0 = off).
    pub drop_entry: Option<u32>,
    /// Drop packets of new connections under memory pressure (`drop_packet`, 0 = off).
    pub drop_packet: Option<u32>,
    /// Shorter state timeouts under memory pressure (`secure_tcp`, 0 = off).
    pub secure_tcp: Option<u32>,
    /// The rate estimator, which also updates the reported counters (`run_estimation`, 0 = off).
    pub run_estimation: Option<u32>,
}

impl VsSettings {
    /// Reads the settings of `netns` (all None where unreadable).
    pub fn read(netns: &Netns) -> VsSettings {
        netns
            .run(|| {
                let get = |name: &str| {
                    std::fs::read_to_string(format!("/proc/sys/net/ipv4/vs/{name}"))
                        .ok()
                        .and_then(|s| s.trim().parse::<u64>().ok())
                };
                let small = |name: &str| get(name).and_then(|v| u32::try_from(v).ok());
                Ok(VsSettings {
                    amemthresh: get("amemthresh"),
                    drop_entry: small("drop_entry"),
                    drop_packet: small("drop_packet"),
                    secure_tcp: small("secure_tcp"),
                    run_estimation: small("run_estimation"),
                })
            })
            .unwrap_or_default()
    }

    /// Names of the memory defense strategies that are switched on.
    pub fn defense_enabled(&self) -> Vec<&'static str> {
        [
            ("drop_entry", self.drop_entry),
            ("drop_packet", self.drop_packet),
            ("secure_tcp", self.secure_tcp),
        ]
        .into_iter()
        .filter(|(_, v)| v.is_some_and(|v| v > 0))
        .map(|(n, _)| n)
        .collect()
    }
}

/// Bytes one connection entry takes in the kernel: the `ip_vs_conn` slab's per-object
/// size from `/sys/kernel/slab` (SLUB), else `/proc/slabinfo`; None if neither says.
pub fn conn_entry_bytes() -> Option<u64> {
    let sysfs = |f: &str| {
        std::fs::read_to_string(format!("/sys/kernel/slab/ip_vs_conn/{f}"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|v| *v > 0)
    };
    sysfs("slab_size")
        .or_else(|| sysfs("object_size"))
        .or_else(|| {
            std::fs::read_to_string("/proc/slabinfo")
                .ok()
                .and_then(|t| slabinfo_objsize(&t, "ip_vs_conn"))
        })
}

/// The `objsize` column of cache `name` in `/proc/slabinfo` text.
pub fn slabinfo_objsize(text: &str, name: &str) -> Option<u64> {
    // name active_objs num_objs objsize objperslab pagesperslab : ...
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.first() == Some(&name))
        .and_then(|f| f.get(3)?.parse().ok())
        .filter(|v| *v > 0)
}

/// The machine's memory from `/proc/meminfo` (`MemTotal`), bytes.
pub fn mem_total_bytes() -> Option<u64> {
    let t = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = t.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// What the IPVS model is computed from.
#[derive(Clone, Debug)]
pub struct IpvsObservation {
    /// Version and connection table size.
    pub info: Info,
    /// The configurable timeouts in force (tcp, tcpfin, udp).
    pub timeouts: Timeouts,
    /// The full state timeout tables in force.
    pub table: StateTimeoutTable,
    /// The counters explained by the connection entries.
    pub explanation: Explanation,
    /// Counters at the start of the interval (None: no rate).
    pub before: Option<ConnSample>,
    /// Counters at the end (the snapshot the explanation was made from).
    pub after: ConnSample,
    /// Bytes per connection entry, if known.
    pub entry_bytes: Option<u64>,
    /// The machine's memory, if known.
    pub mem_total_bytes: Option<u64>,
    /// Settings of the namespace.
    pub settings: VsSettings,
}

/// One real server in the model.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DestCapacity {
    /// Real server address and port.
    pub dest: SocketAddr,
    /// Forwarding method.
    pub fwd_method: ForwardMethod,
    /// Weight.
    pub weight: u32,
    /// The kernel's ActiveConn.
    pub active_conns: u32,
    /// The kernel's InActConn.
    pub inactive_conns: u32,
    /// The kernel's PersistConn.
    pub persist_conns: u32,
    /// Entries listed in the connection table, by state (active first).
    pub states: Vec<StateGroup>,
    /// Seconds until the last inactive entry expires if nothing refreshes it.
    pub inactive_drain_seconds: Option<u32>,
    /// The same moment as a Unix time.
    pub drain_at_unix: Option<u64>,
    /// The 64-bit `conns` counter at the start of the interval.
    pub conns_before: Option<u64>,
    /// The 64-bit `conns` counter at the end.
    pub conns: Option<u64>,
    /// New connections per second over the interval.
    pub new_per_second: Option<f64>,
    /// InActConn to expect if that rate lasts: rate × time each new connection stays inactive.
    pub expected_inactive: Option<f64>,
}

/// One virtual service in the model.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ServiceCapacity {
    /// The service.
    pub service: ServiceKey,
    /// Its scheduler.
    pub scheduler: String,
    /// Persistence timeout (0 when not persistent).
    pub persistence_timeout: u32,
    /// Seconds a finished connection of this service stays in the table (TIME_WAIT for
    /// TCP and firewall marks, the UDP timeout for UDP; None when not modelled).
    pub dwell_seconds: Option<u32>,
    /// The 64-bit `conns` counter at the start of the interval.
    pub conns_before: Option<u64>,
    /// The 64-bit `conns` counter at the end.
    pub conns: Option<u64>,
    /// New connections per second over the interval.
    pub new_per_second: Option<f64>,
    /// InActConn to expect if that rate lasts: rate × dwell.
    pub expected_inactive: Option<f64>,
    /// Seconds until the last inactive entry of any real server expires.
    pub inactive_drain_seconds: Option<u32>,
    /// Real servers.
    pub dests: Vec<DestCapacity>,
}

/// Entries of one protocol and state over the whole table.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct IpvsStateCount {
    /// Protocol as `/proc/net/ip_vs_conn` names it (`TCP`, `UDP`, `SCTP`, `IP`).
    pub protocol: String,
    /// State name.
    pub state: String,
    /// Which counter these entries are in.
    pub activity: Activity,
    /// Entries.
    pub count: u64,
    /// Full timeout of the state, seconds.
    pub state_timeout: Option<u32>,
    /// Most seconds left among them.
    pub max_seconds_left: u32,
}

/// What one value of `ipvsadm --set TCP TCPFIN UDP` (or the fixed TIME_WAIT) governs now.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TimeoutUse {
    /// `tcp`, `tcpfin`, `udp`, or `time_wait` (not settable).
    pub name: &'static str,
    /// The state it is the timeout of.
    pub state: &'static str,
    /// Seconds in force.
    pub seconds: u32,
    /// True if `ipvsadm --set` can change it.
    pub settable: bool,
    /// Entries in that state now.
    pub entries: u64,
}

/// A suggested change and its computed effect (never applied by this library).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct IpvsSuggestion {
    /// What to change (`tcpfin`, `udp`, `conn_tab_bits`).
    pub setting: String,
    /// The value to set.
    pub value: u64,
    /// The command that sets it.
    pub command: String,
    /// What the change does, in numbers.
    pub effect: String,
}

/// The IPVS model's answers.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct IpvsReport {
    /// When the table was read (Unix time, seconds).
    pub taken_at_unix: u64,
    /// IPVS version (`1.2.1`).
    pub version: String,
    /// Buckets of the connection hash table (there is no maximum of entries).
    pub conn_tab_size: u32,
    /// log2 of the bucket count (the `conn_tab_bits` module parameter).
    pub conn_tab_bits: Option<u32>,
    /// The configurable timeouts in force: `ipvsadm --set TCP TCPFIN UDP`.
    pub timeouts: Timeouts,
    /// TIME_WAIT timeout, seconds (120 s, not settable).
    pub time_wait_seconds: u32,
    /// What each timeout governs now.
    pub timeout_use: Vec<TimeoutUse>,
    /// Connection entries listed now.
    pub entries: u64,
    /// ActiveConn summed over every real server.
    pub active_conns: u64,
    /// InActConn summed over every real server.
    pub inactive_conns: u64,
    /// PersistConn summed over every real server.
    pub persist_conns: u64,
    /// Entries that match no listed real server.
    pub unmatched_entries: u64,
    /// Entries by protocol and state.
    pub states: Vec<IpvsStateCount>,
    /// Services and their real servers.
    pub services: Vec<ServiceCapacity>,
    /// Seconds the rate was measured over (0 when not measured).
    pub interval_seconds: f64,
    /// New connections per second over the interval, all services.
    pub new_per_second: Option<f64>,
    /// True if some counter went backwards (zeroed) during the interval: the rate leaves it out.
    pub rate_is_lower_bound: bool,
    /// InActConn to expect if the measured rate lasts (Little's law), all services.
    pub expected_inactive: Option<f64>,
    /// Seconds until the last inactive entry expires.
    pub inactive_drain_seconds: Option<u32>,
    /// Bytes per connection entry (the kernel's `ip_vs_conn` slab object).
    pub entry_bytes: Option<u64>,
    /// Memory the entries take now.
    pub memory_bytes: Option<u64>,
    /// Memory the expected entries would take.
    pub expected_memory_bytes: Option<f64>,
    /// The machine's memory.
    pub mem_total_bytes: Option<u64>,
    /// Mean entries per hash bucket now.
    pub mean_chain: f64,
    /// Mean entries per hash bucket at the expected occupancy.
    pub expected_mean_chain: Option<f64>,
    /// Settings of the namespace (memory defense, estimator).
    pub settings: VsSettings,
    /// Warnings, in plain words.
    pub warnings: Vec<String>,
    /// Facts worth knowing with their numbers (e.g. why TIME_WAIT cannot be shortened).
    pub notes: Vec<String>,
    /// Suggested changes with their effect.
    pub suggestions: Vec<IpvsSuggestion>,
}

/// Counter difference per second; None if a counter is missing or went backwards.
fn per_second(before: Option<u64>, after: Option<u64>, secs: f64) -> Option<f64> {
    let d = after?.checked_sub(before?)?;
    (secs > 0.0).then(|| d as f64 / secs)
}

/// `n` bytes as `12.3 MiB`.
pub fn human_bytes(n: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    match i {
        0 => format!("{v:.0} {}", units[0]),
        _ => format!("{v:.1} {}", units.get(i).copied().unwrap_or("B")),
    }
}

/// Seconds a finished connection of a service with this key stays in the table.
fn dwell(key: &ServiceKey, table: &StateTimeoutTable) -> Option<u32> {
    match key.protocol() {
        Some(Protocol::Tcp) | None => table.for_state(&ConnState::Tcp(TcpState::TimeWait)),
        Some(Protocol::Udp) => table.for_state(&ConnState::Udp),
        Some(_) => None,
    }
}

/// Per-state totals while counting: protocol, state and activity, with no per-entry allocation.
struct StateTally {
    protocol: Protocol,
    state: ConnState,
    activity: Activity,
    count: u64,
    state_timeout: Option<u32>,
    max_seconds_left: u32,
}

/// Adds the entries of `conns` to the per-state totals.
fn add_conns(totals: &mut Vec<StateTally>, conns: &[ExplainedConn]) {
    for c in conns {
        let found = totals.iter_mut().find(|t| {
            t.protocol == c.conn.protocol && t.activity == c.activity && t.state == c.conn.state
        });
        match found {
            Some(t) => {
                t.count += 1;
                t.max_seconds_left = t.max_seconds_left.max(c.conn.expires);
            }
            None => totals.push(StateTally {
                protocol: c.conn.protocol,
                state: c.conn.state.clone(),
                activity: c.activity,
                count: 1,
                state_timeout: c.state_timeout,
                max_seconds_left: c.conn.expires,
            }),
        }
    }
}

impl IpvsReport {
    /// Computes the model from an observation.
    pub fn compute(obs: &IpvsObservation) -> IpvsReport {
        let table = &obs.table;
        let time_wait = table
            .for_state(&ConnState::Tcp(TcpState::TimeWait))
            .unwrap_or(0);
        let taken_at_unix = obs
            .explanation
            .taken_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // Without the estimator the counters stand still: no rate.
        let before = obs
            .before
            .as_ref()
            .filter(|_| obs.settings.run_estimation != Some(0));
        let secs = before
            .map(|b| {
                obs.after
                    .taken
                    .saturating_duration_since(b.taken)
                    .as_secs_f64()
            })
            .unwrap_or(0.0);
        let mut lower_bound = false;
        let mut tallies: Vec<StateTally> = Vec::new();
        let (mut active, mut inactive, mut persist) = (0u64, 0u64, 0u64);
        let mut services = Vec::new();
        for s in &obs.explanation.services {
            let key = s.service;
            let dwell_s = dwell(&key, table);
            let svc_before = before.map(|b| b.service_conns(&key).unwrap_or(0));
            let svc_after = obs.after.service_conns(&key);
            let svc_rate = per_second(svc_before, svc_after, secs);
            if before.is_some() && svc_rate.is_none() && svc_after.is_some() {
                lower_bound = true;
            }
            let mut dests = Vec::new();
            for d in &s.dests {
                add_conns(&mut tallies, &d.connections);
                active += u64::from(d.active_conns);
                inactive += u64::from(d.inactive_conns);
                persist += u64::from(d.persist_conns);
                let d_before = before.map(|b| b.dest_conns(&key, d.dest).unwrap_or(0));
                let d_after = obs.after.dest_conns(&key, d.dest);
                let rate = per_second(d_before, d_after, secs);
                dests.push(DestCapacity {
                    dest: d.dest,
                    fwd_method: d.fwd_method,
                    weight: d.weight,
                    active_conns: d.active_conns,
                    inactive_conns: d.inactive_conns,
                    persist_conns: d.persist_conns,
                    states: d.states.clone(),
                    inactive_drain_seconds: d.inactive_drain,
                    drain_at_unix: d.inactive_drain.map(|x| taken_at_unix + u64::from(x)),
                    conns_before: d_before,
                    conns: d_after,
                    new_per_second: rate,
                    expected_inactive: rate.zip(dwell_s).map(|(r, t)| r * f64::from(t)),
                });
            }
            services.push(ServiceCapacity {
                service: key,
                scheduler: s.scheduler.clone(),
                persistence_timeout: s.persistence_timeout,
                dwell_seconds: dwell_s,
                conns_before: svc_before,
                conns: svc_after,
                new_per_second: svc_rate,
                expected_inactive: svc_rate.zip(dwell_s).map(|(r, t)| r * f64::from(t)),
                inactive_drain_seconds: dests.iter().filter_map(|d| d.inactive_drain_seconds).max(),
                dests,
            });
        }
        add_conns(&mut tallies, &obs.explanation.unmatched);
        let mut states: Vec<IpvsStateCount> = tallies
            .into_iter()
            .map(|t| IpvsStateCount {
                protocol: t.protocol.to_string(),
                state: t.state.name().to_owned(),
                activity: t.activity,
                count: t.count,
                state_timeout: t.state_timeout,
                max_seconds_left: t.max_seconds_left,
            })
            .collect();
        states.sort_by(|a, b| {
            (a.activity, b.count, &a.protocol, &a.state).cmp(&(
                b.activity,
                a.count,
                &b.protocol,
                &b.state,
            ))
        });
        let entries: u64 = states.iter().map(|s| s.count).sum();
        let new_per_second = before.map(|_| {
            services
                .iter()
                .filter_map(|s| s.new_per_second)
                .sum::<f64>()
        });
        let expected_inactive = before.map(|_| {
            services
                .iter()
                .filter_map(|s| s.expected_inactive)
                .sum::<f64>()
        });
        let size = obs.info.conn_tab_size;
        let buckets = f64::from(size.max(1));
        let count_in = |state: &str| {
            states
                .iter()
                .filter(|s| s.state == state && s.protocol != "IP")
                .map(|s| s.count)
                .sum::<u64>()
        };
        let t = &obs.timeouts;
        let state_secs = |s: ConnState| table.for_state(&s).unwrap_or(0);
        let timeout_use = vec![
            TimeoutUse {
                name: "tcp",
                state: "ESTABLISHED",
                seconds: t
                    .tcp
                    .unwrap_or(state_secs(ConnState::Tcp(TcpState::Established))),
                settable: true,
                entries: count_in("ESTABLISHED"),
            },
            TimeoutUse {
                name: "tcpfin",
                state: "FIN_WAIT",
                seconds: t
                    .tcp_fin
                    .unwrap_or(state_secs(ConnState::Tcp(TcpState::FinWait))),
                settable: true,
                entries: count_in("FIN_WAIT"),
            },
            TimeoutUse {
                name: "udp",
                state: "UDP",
                seconds: t.udp.unwrap_or(state_secs(ConnState::Udp)),
                settable: true,
                entries: count_in("UDP"),
            },
            TimeoutUse {
                name: "time_wait",
                state: "TIME_WAIT",
                seconds: time_wait,
                settable: false,
                entries: count_in("TIME_WAIT"),
            },
        ];
        let entry_bytes = obs.entry_bytes;
        let memory_bytes = entry_bytes.map(|b| b.saturating_mul(entries));
        let expected_memory_bytes = entry_bytes
            .zip(expected_inactive)
            .map(|(b, e)| b as f64 * e);
        let mean_chain = entries as f64 / buckets;
        let expected_mean_chain = expected_inactive.map(|e| e / buckets);
        let conn_tab_bits = (size.is_power_of_two()).then(|| size.trailing_zeros());

        let mut report = IpvsReport {
            taken_at_unix,
            version: {
                let (a, b, c) = obs.info.version_triple();
                format!("{a}.{b}.{c}")
            },
            conn_tab_size: size,
            conn_tab_bits,
            timeouts: obs.timeouts,
            time_wait_seconds: time_wait,
            timeout_use,
            entries,
            active_conns: active,
            inactive_conns: inactive,
            persist_conns: persist,
            unmatched_entries: obs.explanation.unmatched.len() as u64,
            states,
            inactive_drain_seconds: services
                .iter()
                .filter_map(|s| s.inactive_drain_seconds)
                .max(),
            services,
            interval_seconds: secs,
            new_per_second,
            rate_is_lower_bound: lower_bound,
            expected_inactive,
            entry_bytes,
            memory_bytes,
            expected_memory_bytes,
            mem_total_bytes: obs.mem_total_bytes,
            mean_chain,
            expected_mean_chain,
            settings: obs.settings.clone(),
            warnings: Vec::new(),
            notes: Vec::new(),
            suggestions: Vec::new(),
        };
        report.advise();
        report
    }

    /// Fills warnings, notes and suggestions from the computed numbers.
    fn advise(&mut self) {
        let tw = self.time_wait_seconds;
        let size = self.conn_tab_size.max(1);
        let t = self.timeouts;
        let cur = |v: Option<u32>| v.map_or_else(|| "0".to_owned(), |v| v.to_string());

        // TIME_WAIT: the one timeout operators ask about, and the one they cannot set.
        let tw_now = self
            .timeout_use
            .iter()
            .find(|u| u.name == "time_wait")
            .map_or(0, |u| u.entries);
        let mut note = format!(
            "TIME_WAIT lasts {tw} s in IPVS and cannot be changed: `ipvsadm --set` sets only \
             tcp (ESTABLISHED), tcpfin (FIN_WAIT) and udp. {tw_now} entries are in TIME_WAIT now."
        );
        if let (Some(r), Some(e)) = (self.new_per_second, self.expected_inactive) {
            note.push_str(&format!(
                " At the measured {r:.1} new connections/s, expect about {e:.0} InActConn \
                 ({r:.1}/s x {tw} s, Little's law)"
            ));
            if let Some(m) = self.expected_memory_bytes {
                note.push_str(&format!(", {} of kernel memory", human_bytes(m)));
            }
            note.push_str(&format!(
                "; reusing connections (HTTP keep-alive) divides that by the requests per \
                 connection: {:.0} at 10 requests per connection.",
                e / 10.0
            ));
        }
        self.notes.push(note);
        let mut table_note = format!(
            "The connection table has no maximum: {} hash buckets (conn_tab_bits {}) whose chains \
             grow with the entries, so the limit is memory",
            self.conn_tab_size,
            self.conn_tab_bits
                .map_or_else(|| "?".to_owned(), |b| b.to_string())
        );
        if let Some(b) = self.entry_bytes {
            table_note.push_str(&format!(" ({b} bytes per entry)"));
        }
        let on = self.settings.defense_enabled();
        if on.is_empty() {
            table_note.push_str(
                "; the memory defense strategies (drop_entry, drop_packet, secure_tcp) are off.",
            );
        } else {
            table_note.push_str(&format!(
                "; memory defense on: {} (acts when free memory falls below amemthresh = {} pages).",
                on.join(", "),
                self.settings
                    .amemthresh
                    .map_or_else(|| "?".to_owned(), |v| v.to_string())
            ));
        }
        self.notes.push(table_note);

        // Warnings.
        if let Some(c) = self.expected_mean_chain.filter(|c| *c > CHAIN_WARN) {
            self.warnings.push(format!(
                "at the measured rate the table would hold {:.0} entries on {} buckets: {c:.1} \
                 entries per hash chain, every packet walks such a chain",
                self.expected_inactive.unwrap_or(0.0),
                self.conn_tab_size
            ));
        } else if self.mean_chain > CHAIN_WARN {
            self.warnings.push(format!(
                "{} entries on {} buckets: {:.1} entries per hash chain",
                self.entries, self.conn_tab_size, self.mean_chain
            ));
        }
        if let (Some(m), Some(total)) = (self.expected_memory_bytes, self.mem_total_bytes) {
            if m > total as f64 * MEMORY_WARN_SHARE {
                self.warnings.push(format!(
                    "the expected entries would take {} ({:.0}% of the machine's {})",
                    human_bytes(m),
                    m / total as f64 * 100.0,
                    human_bytes(total as f64)
                ));
            }
        }
        if self.settings.run_estimation == Some(0) {
            self.warnings.push(
                "run_estimation is 0: the kernel does not update the counters, so no rate can be \
                 measured from them"
                    .into(),
            );
        }
        if self.rate_is_lower_bound {
            self.warnings.push(
                "a counter was zeroed during the interval: the rate leaves that service out".into(),
            );
        }

        // Suggestions: the settable timeouts whose entries sit in the table now.
        let fin = self
            .timeout_use
            .iter()
            .find(|u| u.name == "tcpfin")
            .cloned();
        if let Some(u) = fin.filter(|u| u.entries > 0 && u.seconds > SUGGESTED_TCPFIN) {
            let after = u.entries as f64 * f64::from(SUGGESTED_TCPFIN) / f64::from(u.seconds);
            self.suggestions.push(IpvsSuggestion {
                setting: "tcpfin".into(),
                value: u64::from(SUGGESTED_TCPFIN),
                command: format!(
                    "ipvsadm --set {} {SUGGESTED_TCPFIN} {}",
                    cur(t.tcp),
                    cur(t.udp)
                ),
                effect: format!(
                    "FIN_WAIT entries stay {SUGGESTED_TCPFIN} s instead of {} s: about {after:.0} \
                     instead of {} at the same rate (Little's law); half-closed connections idle \
                     longer than {SUGGESTED_TCPFIN} s lose their IPVS entry",
                    u.seconds, u.entries
                ),
            });
        }
        let udp = self.timeout_use.iter().find(|u| u.name == "udp").cloned();
        if let Some(u) = udp.filter(|u| u.entries > 0 && u.seconds > SUGGESTED_UDP) {
            let after = u.entries as f64 * f64::from(SUGGESTED_UDP) / f64::from(u.seconds);
            self.suggestions.push(IpvsSuggestion {
                setting: "udp".into(),
                value: u64::from(SUGGESTED_UDP),
                command: format!(
                    "ipvsadm --set {} {} {SUGGESTED_UDP}",
                    cur(t.tcp),
                    cur(t.tcp_fin)
                ),
                effect: format!(
                    "UDP entries stay {SUGGESTED_UDP} s instead of {} s: about {after:.0} instead \
                     of {} at the same rate (Little's law); a UDP flow silent for more than \
                     {SUGGESTED_UDP} s may be sent to another real server",
                    u.seconds, u.entries
                ),
            });
        }
        // A bigger hash table when the chains get long.
        let need = self
            .expected_inactive
            .unwrap_or(0.0)
            .max(self.entries as f64);
        if need / f64::from(size) > CHAIN_WARN {
            let bits = (need / CHAIN_TARGET)
                .log2()
                .ceil()
                .clamp(f64::from(CONN_TAB_BITS_MIN), f64::from(CONN_TAB_BITS_MAX))
                as u32;
            let new_size = 1u64 << bits;
            self.suggestions.push(IpvsSuggestion {
                setting: "conn_tab_bits".into(),
                value: u64::from(bits),
                command: format!(
                    "echo 'options ip_vs conn_tab_bits={bits}' > /etc/modprobe.d/ip_vs.conf  \
                     (takes effect when ip_vs is loaded again, which removes every service)"
                ),
                effect: format!(
                    "{need:.0} entries on {new_size} buckets: {:.1} per hash chain instead of \
                     {:.1}; the bucket array takes {}",
                    need / new_size as f64,
                    need / f64::from(size),
                    human_bytes((new_size * BUCKET_BYTES) as f64)
                ),
            });
        }
    }

    /// The moment the last inactive entry expires, if nothing refreshes it.
    pub fn drain_at(&self) -> Option<SystemTime> {
        self.inactive_drain_seconds
            .map(|s| UNIX_EPOCH + Duration::from_secs(self.taken_at_unix + u64::from(s)))
    }
}

/// Reads the table and computes the model; the rate is measured from `before` to a read
/// a whole number of estimator periods later (see [`ConnSample::read_aligned`]).
pub fn observe_since(ipvs: &mut Ipvs, before: Option<&ConnSample>) -> Result<IpvsReport> {
    observe_explained(ipvs, before, None).map(|(r, _)| r)
}

/// Like [`observe_since`], with the explanation (every connection entry) too, and an
/// optional `after` sample to measure the rate to instead (see [`ConnSample::dated`]).
pub fn observe_explained(
    ipvs: &mut Ipvs,
    before: Option<&ConnSample>,
    after: Option<ConnSample>,
) -> Result<(IpvsReport, Explanation)> {
    let info = ipvs.info()?;
    let timeouts = ipvs.config()?;
    let table = StateTimeoutTable::from_config(&timeouts);
    if let (Some(b), None) = (before, &after) {
        sleep_to_period_boundary(b.taken);
    }
    let read_at = Instant::now();
    let snapshot = ipvs.snapshot()?;
    let after = after.unwrap_or_else(|| ConnSample::of(&snapshot, read_at));
    // The kernel prints seconds left (rounded down) as it reads: count from the start.
    let taken_at = SystemTime::now();
    let conns: Vec<Connection> = ipvs.connections()?.collect::<Result<_>>()?;
    let obs = IpvsObservation {
        info,
        timeouts,
        table,
        explanation: explain(&snapshot, conns, &table, taken_at),
        before: before.cloned(),
        after,
        entry_bytes: conn_entry_bytes(),
        mem_total_bytes: mem_total_bytes(),
        settings: VsSettings::read(ipvs.netns()),
    };
    Ok((IpvsReport::compute(&obs), obs.explanation))
}

/// Samples the counters, waits `interval` (rounded up to whole estimator periods) and
/// computes the model (no rate for a zero interval).
pub fn observe(ipvs: &mut Ipvs, interval: Duration) -> Result<IpvsReport> {
    if interval.is_zero() {
        return observe_since(ipvs, None);
    }
    let before = ConnSample::read(ipvs)?;
    std::thread::sleep(interval);
    observe_since(ipvs, Some(&before))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::addr::AddressFamily;
    use crate::ipvs::conn::{parse_table, ConnTable};
    use crate::ipvs::dest::Destination;
    use crate::ipvs::service::{Netmask, Service, ServiceFlags};
    use crate::ipvs::stats::{Stats, StatsWidth};

    fn stats(conns: u64) -> Option<Stats> {
        Some(Stats {
            conns,
            ..Stats::zero(StatsWidth::Bits64)
        })
    }

    fn service(addr: &str, conns: u64) -> Service {
        Service {
            key: ServiceKey::tcp(addr.parse().unwrap()),
            scheduler: "rr".into(),
            pe_name: None,
            flags: ServiceFlags::empty(),
            flags_mask: !0,
            timeout: 0,
            netmask: Netmask::host(AddressFamily::Inet),
            stats: None,
            stats64: stats(conns),
            unknown: vec![],
        }
    }

    fn dest(addr: &str, inactive: u32, conns: u64) -> Destination {
        let a: SocketAddr = addr.parse().unwrap();
        Destination {
            af: AddressFamily::Inet,
            addr: a.ip(),
            port: a.port(),
            fwd_method: ForwardMethod::Masq,
            weight: 1,
            upper_threshold: 0,
            lower_threshold: 0,
            active_conns: 0,
            inactive_conns: inactive,
            persist_conns: 0,
            tun_type: None,
            tun_port: None,
            tun_flags: None,
            stats: None,
            stats64: stats(conns),
            unknown: vec![],
        }
    }

    /// `n` TIME_WAIT lines to `rs` with seconds left counting down from 119.
    fn tw_lines(rs: &str, n: u32, first_port: u16) -> String {
        (0..n)
            .map(|i| {
                format!(
                    "TCP 0AD50101 {:04X} 0AD50164 0050 {rs} 0050 TIME_WAIT {:>9}\n",
                    first_port + i as u16,
                    119 - i % 3
                )
            })
            .collect()
    }

    fn observation(
        conns_text: &str,
        before: Option<(u64, u64, u64)>,
        secs: u64,
    ) -> IpvsObservation {
        let snap: Snapshot = vec![(
            service("10.213.1.100:80", 50),
            vec![dest("10.213.2.2:80", 25, 25), dest("10.213.3.2:80", 25, 25)],
        )];
        let t0 = Instant::now();
        let after = ConnSample::of(&snap, t0 + Duration::from_secs(secs));
        let before = before.map(|(s, d1, d2)| {
            let b: Snapshot = vec![(
                service("10.213.1.100:80", s),
                vec![dest("10.213.2.2:80", 0, d1), dest("10.213.3.2:80", 0, d2)],
            )];
            ConnSample::of(&b, t0)
        });
        let table = StateTimeoutTable::default();
        let conns = parse_table(conns_text, ConnTable::Conn).unwrap();
        let taken = UNIX_EPOCH + Duration::from_secs(1_000_000);
        IpvsObservation {
            info: Info {
                version: 0x010201,
                conn_tab_size: 4096,
            },
            timeouts: Timeouts {
                tcp: Some(900),
                tcp_fin: Some(120),
                udp: Some(300),
            },
            table,
            explanation: explain(&snap, conns, &table, taken),
            before,
            after,
            entry_bytes: Some(320),
            mem_total_bytes: Some(1 << 30),
            settings: VsSettings {
                amemthresh: Some(1024),
                drop_entry: Some(0),
                drop_packet: Some(0),
                secure_tcp: Some(0),
                run_estimation: Some(1),
            },
        }
    }

    #[test]
    fn fifty_short_connections_in_time_wait() {
        let text = format!(
            "{}{}",
            tw_lines("0AD50202", 25, 40000),
            tw_lines("0AD50302", 25, 41000)
        );
        // 50 new connections in 2 s: 25/s, 12.5/s per real server.
        let r = IpvsReport::compute(&observation(&text, Some((0, 0, 0)), 2));
        assert_eq!(r.version, "1.2.1");
        assert_eq!((r.conn_tab_size, r.conn_tab_bits), (4096, Some(12)));
        assert_eq!(r.time_wait_seconds, 120);
        assert_eq!((r.entries, r.active_conns, r.inactive_conns), (50, 0, 50));
        assert_eq!(r.states.len(), 1);
        assert_eq!(r.states[0].state, "TIME_WAIT");
        assert_eq!(r.states[0].count, 50);
        assert_eq!(r.states[0].state_timeout, Some(120));
        assert_eq!(r.states[0].max_seconds_left, 119);
        assert_eq!(r.interval_seconds, 2.0);
        assert_eq!(r.new_per_second, Some(25.0));
        assert_eq!(r.expected_inactive, Some(3000.0));
        assert_eq!(r.memory_bytes, Some(16_000));
        assert_eq!(r.expected_memory_bytes, Some(960_000.0));
        assert_eq!(r.mean_chain, 50.0 / 4096.0);
        assert_eq!(r.inactive_drain_seconds, Some(119));
        assert_eq!(
            r.drain_at(),
            Some(UNIX_EPOCH + Duration::from_secs(1_000_119))
        );
        let s = &r.services[0];
        assert_eq!((s.conns_before, s.conns), (Some(0), Some(50)));
        assert_eq!(s.dwell_seconds, Some(120));
        for d in &s.dests {
            assert_eq!(d.inactive_conns, 25);
            assert_eq!(d.new_per_second, Some(12.5));
            assert_eq!(d.expected_inactive, Some(1500.0));
            assert_eq!(d.inactive_drain_seconds, Some(119));
            assert_eq!(d.drain_at_unix, Some(1_000_119));
            assert_eq!(d.states[0].count, 25);
            assert_eq!(
                (d.states[0].min_expires, d.states[0].max_expires),
                (117, 119)
            );
        }
        let tw = r
            .timeout_use
            .iter()
            .find(|u| u.name == "time_wait")
            .unwrap();
        assert_eq!((tw.seconds, tw.settable, tw.entries), (120, false, 50));
        let fin = r.timeout_use.iter().find(|u| u.name == "tcpfin").unwrap();
        assert_eq!((fin.seconds, fin.settable, fin.entries), (120, true, 0));
        // Nothing settable holds entries: no suggestion; the notes say why.
        assert!(r.suggestions.is_empty(), "{:?}", r.suggestions);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        assert!(r.notes[0].contains("cannot be changed"), "{}", r.notes[0]);
        assert!(
            r.notes[0].contains("about 3000 InActConn"),
            "{}",
            r.notes[0]
        );
        assert!(r.notes[0].contains("937.5 KiB"), "{}", r.notes[0]);
        assert!(
            r.notes[1].contains("no maximum: 4096 hash buckets"),
            "{}",
            r.notes[1]
        );
        assert!(r.notes[1].contains("are off"), "{}", r.notes[1]);
    }

    #[test]
    fn fin_wait_and_udp_entries_get_ipvsadm_set_suggestions() {
        let mut text = String::new();
        for i in 0..8 {
            text.push_str(&format!(
                "TCP 0AD50101 {:04X} 0AD50164 0050 0AD50202 0050 FIN_WAIT {:>10}\n",
                50000 + i,
                100 + i
            ));
        }
        text.push_str("UDP 0AD50101 9C40 0AD50164 0050 0AD50302 0050 UDP 299\n");
        text.push_str("TCP 0AD50101 9C41 0AD50164 0050 0AD50302 0050 ESTABLISHED 899\n");
        let r = IpvsReport::compute(&observation(&text, None, 0));
        assert_eq!(r.new_per_second, None);
        assert_eq!(r.expected_inactive, None);
        assert_eq!(r.interval_seconds, 0.0);
        assert_eq!(r.entries, 10);
        // The UDP line is to port 80 of a TCP service's real server: protocol differs, unmatched.
        assert_eq!(r.unmatched_entries, 1);
        assert_eq!(r.states[0].activity, Activity::Active);
        let fin = &r.suggestions[0];
        assert_eq!(fin.setting, "tcpfin");
        assert_eq!(fin.value, 30);
        assert_eq!(fin.command, "ipvsadm --set 900 30 300");
        assert!(
            fin.effect.contains("about 2 instead of 8"),
            "{}",
            fin.effect
        );
        let udp = &r.suggestions[1];
        assert_eq!(udp.command, "ipvsadm --set 900 120 60");
        assert!(
            udp.effect.contains("about 0 instead of 1"),
            "{}",
            udp.effect
        );
        assert_eq!(r.suggestions.len(), 2);
    }

    #[test]
    fn high_rate_suggests_a_bigger_table_and_warns() {
        // 100000 connections in 10 s: 10000/s x 120 s = 1.2 M entries on 4096 buckets.
        let text = tw_lines("0AD50202", 3, 40000);
        let r = IpvsReport::compute(&observation(&text, Some((0, 0, 0)), 10));
        // The after sample says 50 conns: rate 5/s.
        assert_eq!(r.new_per_second, Some(5.0));
        let mut obs = observation(&text, Some((0, 0, 0)), 10);
        let snap: Snapshot = vec![(
            service("10.213.1.100:80", 100_000),
            vec![
                dest("10.213.2.2:80", 3, 50_000),
                dest("10.213.3.2:80", 0, 50_000),
            ],
        )];
        obs.after = ConnSample::of(&snap, obs.after.taken);
        obs.mem_total_bytes = Some(256 << 20);
        let r = IpvsReport::compute(&obs);
        assert_eq!(r.new_per_second, Some(10_000.0));
        assert_eq!(r.expected_inactive, Some(1_200_000.0));
        let s = r
            .suggestions
            .iter()
            .find(|s| s.setting == "conn_tab_bits")
            .unwrap();
        // ceil(log2(1.2e6 / 4)) = 19.
        assert_eq!(s.value, 19);
        assert!(
            s.effect.contains("2.3 per hash chain instead of 293.0"),
            "{}",
            s.effect
        );
        assert!(s.effect.contains("4.0 MiB"), "{}", s.effect);
        assert!(r
            .warnings
            .iter()
            .any(|w| w.contains("293.0 entries per hash chain")));
        // 1.2 M x 320 B = 366 MiB > 25% of 256 MiB.
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("366.2 MiB (143% of the machine's 256.0 MiB)")),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn zeroed_counter_is_left_out_and_flagged() {
        let r = IpvsReport::compute(&observation("", Some((80, 40, 40)), 1));
        assert_eq!(r.services[0].new_per_second, None);
        assert_eq!(r.new_per_second, Some(0.0));
        assert!(r.rate_is_lower_bound);
        assert!(r.warnings.iter().any(|w| w.contains("zeroed")));
    }

    #[test]
    fn no_rate_without_the_estimator() {
        let mut obs = observation("", Some((0, 0, 0)), 2);
        obs.settings.run_estimation = Some(0);
        let r = IpvsReport::compute(&obs);
        assert_eq!(r.new_per_second, None);
        assert_eq!(r.services[0].new_per_second, None);
        assert_eq!(r.interval_seconds, 0.0);
        assert!(r.warnings.iter().any(|w| w.contains("run_estimation is 0")));
    }

    #[test]
    fn samples_keep_counters_and_can_be_redated() {
        let snap: Snapshot = vec![(
            service("10.213.1.100:80", 7),
            vec![dest("10.213.2.2:80", 0, 3), dest("10.213.3.2:80", 0, 4)],
        )];
        let t0 = Instant::now();
        let s = ConnSample::of(&snap, t0);
        let key = ServiceKey::tcp("10.213.1.100:80".parse().unwrap());
        assert_eq!(s.service_conns(&key), Some(7));
        assert_eq!(
            s.dest_conns(&key, "10.213.3.2:80".parse().unwrap()),
            Some(4)
        );
        assert_eq!(s.dest_conns(&key, "10.213.9.2:80".parse().unwrap()), None);
        assert_eq!(s.total_conns(), 7);
        let later = t0 + Duration::from_millis(1500);
        assert_eq!(s.dated(later).taken(), later);
        // The boundary sleep waits for the first whole period after the sample (k >= 1).
        let since = Instant::now() - Duration::from_millis(1900);
        sleep_to_period_boundary(since);
        let waited = since.elapsed();
        assert!(waited >= ESTIMATOR_PERIOD, "{waited:?}");
        assert!(
            waited < ESTIMATOR_PERIOD + Duration::from_millis(500),
            "{waited:?}"
        );
    }

    #[test]
    fn slabinfo_and_sizes() {
        let text = "slabinfo - version: 2.1\n\
# name <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables\n\
ip_vs_conn            50     50    320   25    2 : tunables    0    0    0\n";
        assert_eq!(slabinfo_objsize(text, "ip_vs_conn"), Some(320));
        assert_eq!(slabinfo_objsize(text, "nf_conntrack"), None);
        assert_eq!(slabinfo_objsize("ip_vs_conn 1 2", "ip_vs_conn"), None);
        assert_eq!(human_bytes(512.0), "512 B");
        assert_eq!(human_bytes(16_000.0), "15.6 KiB");
        assert_eq!(human_bytes(3.0 * 1024.0 * 1024.0), "3.0 MiB");
        let d = VsSettings {
            drop_entry: Some(1),
            secure_tcp: Some(3),
            ..VsSettings::default()
        };
        assert_eq!(d.defense_enabled(), ["drop_entry", "secure_tcp"]);
    }
}
