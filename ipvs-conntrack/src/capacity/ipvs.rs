//! The IPVS part of the capacity model: per real server, active and inactive
//! connections by state and when InActConn drains (from
//! [`explain()`](crate::ipvs::explain::explain)); the rate of new connections from the
//! services' 64-bit `conns` counters; Little's law for the InActConn to expect at that
//! rate; memory and hash-chain arithmetic; and `ipvsadm --set` suggestions with their
//! computed effect.
//!
//! IPVS has no maximum number of connection entries. Its table is a hash table of
//! `conn_tab_size` buckets (`2^conn_tab_bits`, a module parameter) whose chains grow
//! with the entries, so what runs out is memory (and lookup time in long chains). A
//! short TCP connection stays in TIME_WAIT for 120 s after it closes, and that timeout
//! is fixed (`ipvsadm --set` changes only tcp, tcpfin and udp), so at R new short
//! connections per second a director holds about R × 120 inactive entries.

mod advice;
mod kernel;
mod sample;

pub use advice::{
    BUCKET_BYTES, CHAIN_TARGET, CHAIN_WARN, CONN_TAB_BITS_MAX, CONN_TAB_BITS_MIN,
    MEMORY_WARN_SHARE, SUGGESTED_TCPFIN, SUGGESTED_UDP,
};
pub use kernel::{conn_entry_bytes, mem_total_bytes, slabinfo_objsize, VsSettings};
pub use sample::{ConnSample, ESTIMATOR_PERIOD};

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
use crate::ipvs::Ipvs;
use sample::sleep_to_period_boundary;

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
                    .taken()
                    .saturating_duration_since(b.taken())
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
        sleep_to_period_boundary(b.taken());
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
    use crate::ipvs::Snapshot;

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
        obs.after = ConnSample::of(&snap, obs.after.taken());
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
    fn human_bytes_units() {
        assert_eq!(human_bytes(512.0), "512 B");
        assert_eq!(human_bytes(16_000.0), "15.6 KiB");
        assert_eq!(human_bytes(3.0 * 1024.0 * 1024.0), "3.0 MiB");
    }
}
