//! Prometheus metrics of one network namespace's conntrack and IPVS tables, collected on
//! demand by a [`Collector`] and rendered with `prometheus-client` in the OpenMetrics
//! text format ([`CONTENT_TYPE`]), which Prometheus scrapes and `promtool check metrics`
//! reads.
//!
//! Where node_exporter already exports the same value, the metric has its name, type
//! and labels, so that existing dashboards keep working: `node_nf_conntrack_entries`,
//! `node_nf_conntrack_entries_limit`, `node_nf_conntrack_stat_*` (gauges summed over
//! CPUs), and `node_ipvs_backend_connections_active` / `_inactive` /
//! `node_ipvs_backend_weight` with the labels `local_address`, `local_port`,
//! `remote_address`, `remote_port`, `proto` (`TCP`, `UDP`, `SCTP`, `FWM`) and
//! `local_mark` (the firewall mark as 8 hex digits, as `/proc/net/ip_vs` prints it).
//! Everything else is under `ipvsct_`:
//!
//! | metric | labels | meaning |
//! |--------|--------|---------|
//! | `ipvsct_conntrack_entries` | `proto`, `state` | entries by L4 protocol and state (`state=""` for stateless protocols) |
//! | `ipvsct_conntrack_state_timeout_seconds` | `proto`, `state` | full timeout of each state under the default policy in force |
//! | `ipvsct_conntrack_cpu_<counter>_total` | `cpu` | the per-CPU statistics counters (`found`, `invalid`, `insert`, `insert_failed`, `drop`, `early_drop`, `error`, `search_restart`, `clash_resolve`, `chaintoolong`) |
//! | `ipvsct_conntrack_buckets` | | `nf_conntrack_buckets` |
//! | `ipvsct_conntrack_fill_ratio`, `ipvsct_conntrack_headroom_entries` | | entries / max, max − entries |
//! | `ipvsct_conntrack_max_short_connections_per_second` | | Little's law: max / TIME_WAIT timeout |
//! | `ipvsct_conntrack_new_connections_total` | | NEW events counted since the collector started (when it listens) |
//! | `ipvsct_conntrack_new_connections_per_second`, `ipvsct_conntrack_headroom_connections_per_second`, `ipvsct_conntrack_expected_occupancy_entries`, `ipvsct_conntrack_seconds_until_full` | | the capacity model over the interval since the previous scrape |
//! | `ipvsct_ipvs_up` | | 1 if the namespace has IPVS and it was read |
//! | `ipvsct_ipvs_backend_connections_persistent` | backend labels | persistence templates of a real server |
//! | `ipvsct_ipvs_backend_{connections,incoming_packets,outgoing_packets,incoming_bytes,outgoing_bytes}_total` | backend labels | 64-bit counters of a real server |
//! | `ipvsct_ipvs_service_{connections,incoming_packets,outgoing_packets,incoming_bytes,outgoing_bytes}_total` | service labels | 64-bit counters of a virtual service |
//! | `ipvsct_scrape_duration_seconds` | | time the collection took |
//!
//! Collection is bounded: the per-state counts come from one streaming dump through
//! [`Conntrack::for_each_view`] into a map with one node per (protocol, state), with no
//! allocation per entry, so memory stays at one receive buffer whatever the table size.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Metric, Registry};

use crate::capacity::{count_states, Observation, Report, StateCount, TroubleCounters};
use crate::conntrack::events::{EventGroups, EventKind, EventOptions, EventStream, EventView};
use crate::conntrack::protoinfo::{DccpState, SctpState, TcpState};
use crate::conntrack::tuple::{
    IPPROTO_DCCP, IPPROTO_GRE, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_SCTP, IPPROTO_TCP,
    IPPROTO_UDP, IPPROTO_UDPLITE,
};
use crate::conntrack::{Conntrack, CpuStats, GlobalStats, State, StateTimeouts, UdpState};
use crate::error::{Error, Result};
use crate::ipvs::{Destination, Ipvs, Protocol, Service, ServiceTarget, Snapshot as IpvsSnapshot};
use crate::netns::Netns;

/// The HTTP Content-Type of the OpenMetrics text format ([`render`]).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The HTTP Content-Type of the Prometheus text format 0.0.4 ([`to_prometheus_text`]).
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// An exposition format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text, as prometheus-client encodes it.
    OpenMetrics,
    /// The Prometheus text format 0.0.4 (what `promtool check metrics` and older scrapers read).
    Text,
}

impl Format {
    /// Picks the format an HTTP `Accept` header asks for: OpenMetrics only when it names it.
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text,
        }
    }

    /// The HTTP Content-Type of this format.
    pub fn content_type(&self) -> &'static str {
        match self {
            Format::OpenMetrics => CONTENT_TYPE,
            Format::Text => TEXT_CONTENT_TYPE,
        }
    }
}

/// Renders a snapshot in `format`.
pub fn render_as(s: &Snapshot, format: Format) -> String {
    let open = render(s);
    match format {
        Format::OpenMetrics => open,
        Format::Text => to_prometheus_text(&open),
    }
}

/// Turns prometheus-client's OpenMetrics text into the Prometheus text format 0.0.4.
///
/// The two differ, for what is rendered here, only in the metadata of counters (their
/// family is named `x` in OpenMetrics and `x_total` in 0.0.4, like their samples), the
/// `# UNIT` lines and the closing `# EOF`; samples and label escaping are the same.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                if counters.contains(name) {
                    let _ = writeln!(out, "{prefix}{name}_total {tail}");
                } else {
                    let _ = writeln!(out, "{line}");
                }
            }
            None => {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    out
}

/// What a [`Collector`] reads besides the conntrack table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectorOptions {
    /// Read IPVS services and real servers when the namespace has IPVS.
    pub ipvs: bool,
    /// Count NEW conntrack events in a background thread, for the rate of new connections.
    pub count_new_connections: bool,
}

impl Default for CollectorOptions {
    fn default() -> Self {
        CollectorOptions {
            ipvs: true,
            count_new_connections: true,
        }
    }
}

/// Everything one scrape read.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// Entry count and `nf_conntrack_max`.
    pub global: GlobalStats,
    /// Per-CPU statistics.
    pub cpus: Vec<CpuStats>,
    /// `nf_conntrack_buckets`, if readable.
    pub buckets: Option<u64>,
    /// Entries by protocol and state.
    pub states: Vec<StateCount>,
    /// Default state timeouts in force.
    pub timeouts: StateTimeouts,
    /// NEW events counted since the collector started, if it listens for them.
    pub new_connections: Option<u64>,
    /// True if the event listener lost events (the count is a lower bound).
    pub new_connections_lost: bool,
    /// The capacity model over the interval since the previous scrape.
    pub capacity: Report,
    /// IPVS services with their real servers, if the namespace has IPVS and it was read.
    pub ipvs: Option<IpvsSnapshot>,
    /// How long the collection took.
    pub duration: Duration,
}

/// Counts NEW conntrack events of a namespace in a background thread.
#[derive(Debug)]
struct NewConnections {
    count: Arc<AtomicU64>,
    lost: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl NewConnections {
    fn start(netns: &Netns) -> Result<NewConnections> {
        let mut opts = EventOptions::groups(EventGroups::NEW);
        opts.join_timeouts = false;
        opts.recv_timeout = Some(Duration::from_millis(200));
        let mut stream = EventStream::with_options(netns, &opts)?;
        let count = Arc::new(AtomicU64::new(0));
        let lost = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, l, s) = (Arc::clone(&count), Arc::clone(&lost), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("ipvsct-new-events".into())
            .spawn(move || {
                // Bounded by the stop flag: every receive waits at most 200 ms.
                while !s.load(Ordering::Relaxed) {
                    match stream.next_view() {
                        Ok(Some(EventView::Conntrack {
                            kind: EventKind::New,
                            ..
                        })) => {
                            c.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Some(EventView::Overrun(_))) => l.store(true, Ordering::Relaxed),
                        Ok(_) => {}
                        Err(_) => l.store(true, Ordering::Relaxed),
                    }
                }
            })
            .map_err(|e| Error::io("start the event listener", e))?;
        Ok(NewConnections {
            count,
            lost,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for NewConnections {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the previous scrape saw, for rates.
#[derive(Clone, Debug)]
struct Previous {
    at: Instant,
    entries: u64,
    new_connections: Option<u64>,
    trouble: TroubleCounters,
}

/// Collects the metrics of one namespace; keep it across scrapes (it reuses its sockets
/// and computes rates between scrapes).
#[derive(Debug)]
pub struct Collector {
    netns: Netns,
    opts: CollectorOptions,
    ct: Conntrack,
    ipvs: Option<Ipvs>,
    new_conns: Option<NewConnections>,
    previous: Option<Previous>,
}

impl Collector {
    /// Opens the conntrack client (and the event listener) in `netns`.
    pub fn open(netns: &Netns, opts: &CollectorOptions) -> Result<Collector> {
        let ct = Conntrack::open(netns)?;
        let new_conns = if opts.count_new_connections {
            Some(NewConnections::start(netns)?)
        } else {
            None
        };
        Ok(Collector {
            netns: netns.clone(),
            opts: opts.clone(),
            ct,
            ipvs: None,
            new_conns,
            previous: None,
        })
    }

    /// The namespace collected.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// Reads everything once.
    pub fn collect(&mut self) -> Result<Snapshot> {
        let start = Instant::now();
        let timeouts = self.ct.default_timeouts()?;
        let global = self.ct.count()?;
        let cpus = self.ct.cpu_stats()?;
        let states = count_states(&mut self.ct, &timeouts)?;
        let buckets = read_buckets(&self.netns);
        let ipvs = if self.opts.ipvs {
            self.read_ipvs()
        } else {
            None
        };
        let new_connections = self
            .new_conns
            .as_ref()
            .map(|n| n.count.load(Ordering::Relaxed));
        let new_connections_lost = self
            .new_conns
            .as_ref()
            .is_some_and(|n| n.lost.load(Ordering::Relaxed));

        let now = Instant::now();
        let total = CpuStats::sum(&cpus);
        let g = |v: Option<u32>| u64::from(v.unwrap_or(0));
        let trouble = TroubleCounters {
            drop: g(total.drop),
            early_drop: g(total.early_drop),
            insert_failed: g(total.insert_failed),
            clash_resolve: g(total.clash_resolve),
        };
        let entries = u64::from(global.entries);
        let prev = self.previous.take();
        let interval = prev
            .as_ref()
            .map(|p| now.duration_since(p.at).as_secs_f64())
            .filter(|s| *s > 0.0);
        let rate = match (&prev, interval, new_connections) {
            (Some(p), Some(secs), Some(n)) => p
                .new_connections
                .map(|before| n.saturating_sub(before) as f64 / secs),
            _ => None,
        };
        let growth = match (&prev, interval) {
            (Some(p), Some(secs)) => Some((entries as f64 - p.entries as f64) / secs),
            _ => None,
        };
        let trouble_growth =
            prev.as_ref()
                .map_or_else(TroubleCounters::default, |p| TroubleCounters {
                    drop: trouble.drop.saturating_sub(p.trouble.drop),
                    early_drop: trouble.early_drop.saturating_sub(p.trouble.early_drop),
                    insert_failed: trouble
                        .insert_failed
                        .saturating_sub(p.trouble.insert_failed),
                    clash_resolve: trouble
                        .clash_resolve
                        .saturating_sub(p.trouble.clash_resolve),
                });
        self.previous = Some(Previous {
            at: now,
            entries,
            new_connections,
            trouble: trouble.clone(),
        });
        let capacity = Report::compute(Observation {
            entries,
            max_entries: u64::from(global.max_entries.unwrap_or(0)),
            buckets,
            states: states.clone(),
            timeouts: timeouts.clone(),
            new_per_second: rate,
            rate_source: rate.map(|_| "events"),
            rate_is_lower_bound: rate.is_some() && new_connections_lost,
            growth_per_second: growth,
            interval_seconds: interval.unwrap_or(0.0),
            trouble,
            trouble_growth,
        });
        Ok(Snapshot {
            global,
            cpus,
            buckets,
            states,
            timeouts,
            new_connections,
            new_connections_lost,
            capacity,
            ipvs,
            duration: start.elapsed(),
        })
    }

    /// Reads IPVS; `None` when the namespace has no IPVS (the module is not loaded).
    fn read_ipvs(&mut self) -> Option<IpvsSnapshot> {
        if self.ipvs.is_none() {
            self.ipvs = Ipvs::open(&self.netns).ok();
        }
        let snap = self.ipvs.as_mut()?.snapshot();
        match snap {
            Ok(s) => Some(s),
            Err(_) => {
                // Reopen next time (the module may have been unloaded and loaded again).
                self.ipvs = None;
                None
            }
        }
    }

    /// Collects and renders in `format`.
    pub fn scrape(&mut self, format: Format) -> Result<String> {
        let s = self.collect()?;
        Ok(render_as(&s, format))
    }
}

/// Reads `nf_conntrack_buckets` of a namespace.
fn read_buckets(netns: &Netns) -> Option<u64> {
    netns
        .run(|| {
            Ok(
                std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_buckets")
                    .ok()
                    .and_then(|s| s.trim().parse().ok()),
            )
        })
        .ok()
        .flatten()
}

/// Label set of a metric family.
type Labels = Vec<(String, String)>;

fn gauge(v: u64) -> Gauge {
    let g = Gauge::default();
    g.set(i64::try_from(v).unwrap_or(i64::MAX));
    g
}

fn fgauge(v: f64) -> Gauge<f64, AtomicU64> {
    let g = Gauge::<f64, AtomicU64>::default();
    g.set(v);
    g
}

fn counter(v: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(v);
    c
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Every (protocol, state, timeout) the policy gives a timeout for, labelled like the entries.
fn state_timeouts(t: &StateTimeouts) -> Vec<(&'static str, &'static str, u32)> {
    let mut out = Vec::new();
    for v in 0u8..16 {
        let tcp = TcpState::from(v);
        if !matches!(tcp, TcpState::Unknown(_)) {
            if let Some(s) = t.for_state(IPPROTO_TCP, State::Tcp(tcp)) {
                out.push(("tcp", tcp.name(), s));
            }
        }
        let sctp = SctpState::from(v);
        if !matches!(sctp, SctpState::Unknown(_)) {
            if let Some(s) = t.for_state(IPPROTO_SCTP, State::Sctp(sctp)) {
                out.push(("sctp", sctp.name(), s));
            }
        }
        let dccp = DccpState::from(v);
        if !matches!(dccp, DccpState::Unknown(_)) {
            if let Some(s) = t.for_state(IPPROTO_DCCP, State::Dccp(dccp)) {
                out.push(("dccp", dccp.name(), s));
            }
        }
        let udp = UdpState::from(v);
        if !matches!(udp, UdpState::Unknown(_)) {
            for (proto, name) in [(IPPROTO_UDP, "udp"), (IPPROTO_UDPLITE, "udplite")] {
                if let Some(s) = t.for_state(proto, State::Udp(udp)) {
                    out.push((name, udp.name(), s));
                }
            }
            if let Some(s) = t.for_state(IPPROTO_GRE, State::Gre(udp)) {
                out.push(("gre", udp.name(), s));
            }
        }
    }
    for (proto, name) in [(IPPROTO_ICMP, "icmp"), (IPPROTO_ICMPV6, "icmpv6")] {
        if let Some(s) = t.for_state(proto, State::Icmp) {
            out.push((name, "", s));
        }
    }
    if let Some(s) = t.for_state(0, State::Generic) {
        out.push(("generic", "", s));
    }
    out
}

/// node_exporter's label values of a service: (local_address, local_port, proto, local_mark).
fn service_labels(s: &Service) -> [(String, String); 4] {
    let (addr, port, proto, mark) = match s.key.target {
        ServiceTarget::Inet {
            protocol,
            addr,
            port,
        } => (
            addr_label(addr),
            port.to_string(),
            proto_label(protocol),
            String::new(),
        ),
        ServiceTarget::Fwmark(m) => (
            String::new(),
            "0".to_owned(),
            "FWM".to_owned(),
            format!("{m:08X}"),
        ),
    };
    [
        ("local_address".to_owned(), addr),
        ("local_port".to_owned(), port),
        ("proto".to_owned(), proto),
        ("local_mark".to_owned(), mark),
    ]
}

fn addr_label(a: IpAddr) -> String {
    a.to_string()
}

fn proto_label(p: Protocol) -> String {
    match p {
        Protocol::Unknown(n) => n.to_string(),
        other => other.name().to_owned(),
    }
}

/// node_exporter's backend labels, in its order.
fn backend_labels(s: &Service, d: &Destination) -> Labels {
    let [addr, port, proto, mark] = service_labels(s);
    vec![
        addr,
        port,
        ("remote_address".to_owned(), addr_label(d.addr)),
        ("remote_port".to_owned(), d.port.to_string()),
        proto,
        mark,
    ]
}

/// A registry being filled, with the families of one scrape.
struct Builder {
    reg: Registry,
}

impl Builder {
    fn add(&mut self, name: &str, help: &str, metric: impl Metric) {
        self.reg.register(name, help, metric);
    }
}

/// Renders a snapshot in the OpenMetrics text format (ends with `# EOF`).
pub fn render(s: &Snapshot) -> String {
    let mut b = Builder {
        reg: Registry::default(),
    };
    // node_exporter's conntrack collector (same names, types and help).
    b.add(
        "node_nf_conntrack_entries",
        "Number of currently allocated flow entries for connection tracking",
        gauge(u64::from(s.global.entries)),
    );
    if let Some(max) = s.global.max_entries {
        b.add(
            "node_nf_conntrack_entries_limit",
            "Maximum size of connection tracking table",
            gauge(u64::from(max)),
        );
    }
    let total = CpuStats::sum(&s.cpus);
    let node_stats: [(&str, &str, Option<u32>); 7] = [
        ("found", "Number of searched entries which were successful", total.found),
        ("invalid", "Number of packets seen which can not be tracked", total.invalid),
        ("insert", "Number of entries inserted into the list", total.insert),
        (
            "insert_failed",
            "Number of entries for which list insertion was attempted but failed",
            total.insert_failed,
        ),
        ("drop", "Number of packets dropped due to conntrack failure", total.drop),
        (
            "early_drop",
            "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached",
            total.early_drop,
        ),
        (
            "search_restart",
            "Number of conntrack table lookups which had to be restarted due to hashtable resizes",
            total.search_restart,
        ),
    ];
    for (name, help, v) in node_stats {
        if let Some(v) = v {
            b.add(
                &format!("node_nf_conntrack_stat_{name}"),
                help,
                gauge(u64::from(v)),
            );
        }
    }

    // Per-CPU counters.
    type Field = fn(&CpuStats) -> Option<u32>;
    let per_cpu: [(&str, &str, Field); 10] = [
        ("found", "Successful searches", |c| c.found),
        ("invalid", "Packets that could not be tracked", |c| {
            c.invalid
        }),
        ("insert", "Entries inserted", |c| c.insert),
        ("insert_failed", "Failed insertions", |c| c.insert_failed),
        (
            "drop",
            "Packets dropped because of a conntrack failure",
            |c| c.drop,
        ),
        ("early_drop", "Entries evicted early to make room", |c| {
            c.early_drop
        }),
        (
            "error",
            "Packets with an error (ICMP errors, bad checksums)",
            |c| c.error,
        ),
        (
            "search_restart",
            "Lookups restarted because of hash table resizes",
            |c| c.search_restart,
        ),
        ("clash_resolve", "Insertion clashes resolved", |c| {
            c.clash_resolve
        }),
        (
            "chaintoolong",
            "Insertions that found a hash chain too long",
            |c| c.chaintoolong,
        ),
    ];
    for (name, help, field) in per_cpu {
        if !s.cpus.iter().any(|c| field(c).is_some()) {
            continue;
        }
        let fam = Family::<Labels, Counter>::default();
        for c in &s.cpus {
            if let Some(v) = field(c) {
                fam.get_or_create(&labels(&[("cpu", &c.cpu.to_string())]))
                    .inc_by(u64::from(v));
            }
        }
        b.add(
            &format!("ipvsct_conntrack_cpu_{name}"),
            &format!("{help}, per CPU (CTA_STATS_{})", name.to_ascii_uppercase()),
            fam,
        );
    }

    // Entries by protocol and state, and the state timeouts.
    let entries = Family::<Labels, Gauge>::default();
    for st in &s.states {
        let state = if st.state == "-" {
            ""
        } else {
            st.state.as_str()
        };
        entries
            .get_or_create(&labels(&[("proto", &st.proto), ("state", state)]))
            .set(i64::try_from(st.count).unwrap_or(i64::MAX));
    }
    b.add(
        "ipvsct_conntrack_entries",
        "Conntrack entries by L4 protocol and state",
        entries,
    );
    let timeouts = Family::<Labels, Gauge>::default();
    for (proto, state, secs) in state_timeouts(&s.timeouts) {
        timeouts
            .get_or_create(&labels(&[("proto", proto), ("state", state)]))
            .set(i64::from(secs));
    }
    b.add(
        "ipvsct_conntrack_state_timeout_seconds",
        "Full timeout of each protocol state under the default policy in force",
        timeouts,
    );
    if let Some(buckets) = s.buckets {
        b.add(
            "ipvsct_conntrack_buckets",
            "Size of the conntrack hash table (nf_conntrack_buckets)",
            gauge(buckets),
        );
    }

    // The capacity model.
    let r = &s.capacity;
    b.add(
        "ipvsct_conntrack_fill_ratio",
        "Entries divided by nf_conntrack_max",
        fgauge(r.fill_ratio),
    );
    b.add(
        "ipvsct_conntrack_headroom_entries",
        "Free entries: nf_conntrack_max minus entries",
        gauge(r.headroom_entries),
    );
    if let Some(m) = r.max_short_connections_per_second {
        b.add(
            "ipvsct_conntrack_max_short_connections_per_second",
            "Highest sustainable rate of short TCP connections by Little's law: nf_conntrack_max divided by the TIME_WAIT timeout",
            fgauge(m),
        );
    }
    if let Some(n) = s.new_connections {
        b.add(
            "ipvsct_conntrack_new_connections",
            "NEW conntrack events counted since the exporter started",
            counter(n),
        );
    }
    if let Some(rate) = r.observation.new_per_second {
        b.add(
            "ipvsct_conntrack_new_connections_per_second",
            "New connections per second since the previous scrape",
            fgauge(rate),
        );
        if let Some(h) = r.headroom_per_second {
            b.add(
                "ipvsct_conntrack_headroom_connections_per_second",
                "How many more new short connections per second the table takes at the measured rate",
                fgauge(h),
            );
        }
    }
    if let Some(e) = r.expected_occupancy {
        b.add(
            "ipvsct_conntrack_expected_occupancy_entries",
            "Steady-state entries expected at the measured rate (rate times the TIME_WAIT timeout)",
            fgauge(e),
        );
    }
    if let Some(t) = r.seconds_until_full {
        b.add(
            "ipvsct_conntrack_seconds_until_full",
            "Seconds until the table is full at the growth measured since the previous scrape",
            fgauge(t),
        );
    }

    // IPVS.
    b.add(
        "ipvsct_ipvs_up",
        "1 if the namespace has IPVS and its services were read",
        gauge(u64::from(s.ipvs.is_some())),
    );
    if let Some(snap) = &s.ipvs {
        render_ipvs(&mut b, snap);
    }
    b.add(
        "ipvsct_scrape_duration_seconds",
        "Time the collection of these metrics took",
        fgauge(s.duration.as_secs_f64()),
    );

    let mut out = String::new();
    if encode(&mut out, &b.reg).is_err() {
        // Encoding into a String cannot fail; keep the output well-formed anyway.
        out.clear();
        let _ = writeln!(out, "# EOF");
    }
    out
}

fn render_ipvs(b: &mut Builder, snap: &IpvsSnapshot) {
    let active = Family::<Labels, Gauge>::default();
    let inactive = Family::<Labels, Gauge>::default();
    let weight = Family::<Labels, Gauge>::default();
    let persistent = Family::<Labels, Gauge>::default();
    type StatField = fn(&crate::ipvs::Stats) -> u64;
    let stat_fields: [(&str, &str, StatField); 5] = [
        ("connections", "Connections scheduled", |s| s.conns),
        ("incoming_packets", "Incoming packets", |s| s.inpkts),
        ("outgoing_packets", "Outgoing packets", |s| s.outpkts),
        ("incoming_bytes", "Incoming bytes", |s| s.inbytes),
        ("outgoing_bytes", "Outgoing bytes", |s| s.outbytes),
    ];
    let backend_stats: Vec<Family<Labels, Counter>> =
        stat_fields.iter().map(|_| Family::default()).collect();
    let service_stats: Vec<Family<Labels, Counter>> =
        stat_fields.iter().map(|_| Family::default()).collect();
    for (svc, dests) in snap {
        let sl: Labels = service_labels(svc).into_iter().collect();
        if let Some(st) = svc.best_stats() {
            for ((_, _, f), fam) in stat_fields.iter().zip(&service_stats) {
                fam.get_or_create(&sl).inc_by(f(st));
            }
        }
        for d in dests {
            let bl = backend_labels(svc, d);
            // node_exporter sums backends with equal labels; so does this.
            active.get_or_create(&bl).inc_by(i64::from(d.active_conns));
            inactive
                .get_or_create(&bl)
                .inc_by(i64::from(d.inactive_conns));
            weight.get_or_create(&bl).inc_by(i64::from(d.weight));
            persistent
                .get_or_create(&bl)
                .inc_by(i64::from(d.persist_conns));
            if let Some(st) = d.best_stats() {
                for ((_, _, f), fam) in stat_fields.iter().zip(&backend_stats) {
                    fam.get_or_create(&bl).inc_by(f(st));
                }
            }
        }
    }
    b.add(
        "node_ipvs_backend_connections_active",
        "The current active connections by local and remote address",
        active,
    );
    b.add(
        "node_ipvs_backend_connections_inactive",
        "The current inactive connections by local and remote address",
        inactive,
    );
    b.add(
        "node_ipvs_backend_weight",
        "The current backend weight by local and remote address",
        weight,
    );
    b.add(
        "ipvsct_ipvs_backend_connections_persistent",
        "Persistence templates pointing at the real server",
        persistent,
    );
    for ((name, help, _), fam) in stat_fields.iter().zip(backend_stats) {
        b.add(
            &format!("ipvsct_ipvs_backend_{name}"),
            &format!("{help} of the real server (64-bit counter)"),
            fam,
        );
    }
    for ((name, help, _), fam) in stat_fields.iter().zip(service_stats) {
        b.add(
            &format!("ipvsct_ipvs_service_{name}"),
            &format!("{help} of the virtual service (64-bit counter)"),
            fam,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::timeout::TimeoutSource;
    use crate::ipvs::{
        AddressFamily, ForwardMethod, Netmask, ServiceFlags, ServiceKey, Stats, StatsWidth,
    };
    use std::net::SocketAddr;

    fn snapshot() -> Snapshot {
        let mut t = StateTimeouts::empty(TimeoutSource::Cttimeout);
        t.tcp.time_wait = Some(120);
        t.tcp.established = Some(432_000);
        t.udp.unreplied = Some(30);
        t.udp.replied = Some(120);
        t.icmp = Some(30);
        let states = vec![
            StateCount {
                proto: "tcp".into(),
                state: "TIME_WAIT".into(),
                count: 50,
                state_timeout: Some(120),
                max_seconds_left: Some(118),
            },
            StateCount {
                proto: "icmp".into(),
                state: "-".into(),
                count: 2,
                state_timeout: Some(30),
                max_seconds_left: Some(29),
            },
        ];
        let cpus = vec![
            CpuStats {
                cpu: 0,
                found: Some(3),
                insert: Some(1),
                drop: Some(0),
                ..CpuStats::default()
            },
            CpuStats {
                cpu: 1,
                found: Some(4),
                insert: Some(2),
                drop: Some(5),
                ..CpuStats::default()
            },
        ];
        let global = GlobalStats {
            entries: 52,
            max_entries: Some(131_072),
            unknown: Vec::new(),
        };
        let capacity = Report::compute(Observation {
            entries: 52,
            max_entries: 131_072,
            buckets: Some(32_768),
            states: states.clone(),
            timeouts: t.clone(),
            new_per_second: None,
            rate_source: None,
            rate_is_lower_bound: false,
            growth_per_second: None,
            interval_seconds: 0.0,
            trouble: TroubleCounters::default(),
            trouble_growth: TroubleCounters::default(),
        });
        Snapshot {
            global,
            cpus,
            buckets: Some(32_768),
            states,
            timeouts: t,
            new_connections: Some(7),
            new_connections_lost: false,
            capacity,
            ipvs: None,
            duration: Duration::from_millis(3),
        }
    }

    /// The value of the sample line `name{labels}` (labels as rendered, sorted as given).
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    }

    #[test]
    fn conntrack_metrics_use_node_exporter_names_and_sum_cpus() {
        let text = render(&snapshot());
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(sample(&text, "node_nf_conntrack_entries"), Some(52.0));
        assert_eq!(
            sample(&text, "node_nf_conntrack_entries_limit"),
            Some(131_072.0)
        );
        assert_eq!(sample(&text, "node_nf_conntrack_stat_found"), Some(7.0));
        assert_eq!(sample(&text, "node_nf_conntrack_stat_insert"), Some(3.0));
        assert_eq!(sample(&text, "node_nf_conntrack_stat_drop"), Some(5.0));
        // Not sent by the kernel: not invented.
        assert_eq!(sample(&text, "node_nf_conntrack_stat_invalid"), None);
        assert!(
            text.contains("# TYPE node_nf_conntrack_stat_found gauge"),
            "{text}"
        );
        assert_eq!(
            sample(&text, "ipvsct_conntrack_cpu_drop_total{cpu=\"1\"}"),
            Some(5.0)
        );
        assert_eq!(
            sample(
                &text,
                "ipvsct_conntrack_entries{proto=\"tcp\",state=\"TIME_WAIT\"}"
            ),
            Some(50.0)
        );
        assert_eq!(
            sample(&text, "ipvsct_conntrack_entries{proto=\"icmp\",state=\"\"}"),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                "ipvsct_conntrack_state_timeout_seconds{proto=\"udp\",state=\"STREAM\"}"
            ),
            Some(120.0)
        );
        assert_eq!(
            sample(
                &text,
                "ipvsct_conntrack_state_timeout_seconds{proto=\"udp\",state=\"REPLIED\"}"
            ),
            Some(30.0)
        );
        assert_eq!(
            sample(&text, "ipvsct_conntrack_headroom_entries"),
            Some(131_020.0)
        );
        let m = sample(&text, "ipvsct_conntrack_max_short_connections_per_second").unwrap();
        assert!((m - 131_072.0 / 120.0).abs() < 1e-6, "{m}");
        assert_eq!(
            sample(&text, "ipvsct_conntrack_new_connections_total"),
            Some(7.0)
        );
        // No rate before a second scrape.
        assert_eq!(
            sample(&text, "ipvsct_conntrack_new_connections_per_second"),
            None
        );
        assert_eq!(sample(&text, "ipvsct_ipvs_up"), Some(0.0));
        assert_eq!(sample(&text, "ipvsct_conntrack_buckets"), Some(32_768.0));
    }

    #[test]
    fn text_format_names_counter_families_with_total() {
        let open = render(&snapshot());
        let text = to_prometheus_text(&open);
        assert!(!text.contains("# EOF"), "{text}");
        assert!(
            text.contains("# TYPE ipvsct_conntrack_cpu_found_total counter\n"),
            "{text}"
        );
        assert!(text.contains("# HELP ipvsct_conntrack_cpu_found_total Successful searches"));
        assert!(open.contains("# TYPE ipvsct_conntrack_cpu_found counter\n"));
        // Gauges and samples are unchanged.
        assert!(text.contains("# TYPE node_nf_conntrack_entries gauge\n"));
        assert_eq!(
            sample(&text, "ipvsct_conntrack_cpu_drop_total{cpu=\"1\"}"),
            Some(5.0)
        );
        let samples = |t: &str| t.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(samples(&text), samples(&open));
        assert_eq!(Format::from_accept(None), Format::Text);
        assert_eq!(
            Format::from_accept(Some(
                "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3"
            )),
            Format::OpenMetrics
        );
    }

    fn stats(conns: u64, inbytes: u64) -> Stats {
        let mut s = Stats::zero(StatsWidth::Bits64);
        s.conns = conns;
        s.inbytes = inbytes;
        s
    }

    fn service(key: ServiceKey, st: Stats) -> Service {
        Service {
            key,
            scheduler: "rr".into(),
            pe_name: None,
            flags: ServiceFlags::HASHED,
            flags_mask: u32::MAX,
            timeout: 0,
            netmask: Netmask::host(AddressFamily::Inet),
            stats: None,
            stats64: Some(st),
            unknown: Vec::new(),
        }
    }

    fn dest(addr: &str, active: u32, inactive: u32, st: Stats) -> Destination {
        let a: SocketAddr = addr.parse().unwrap();
        Destination {
            af: AddressFamily::of(&a.ip()),
            addr: a.ip(),
            port: a.port(),
            fwd_method: ForwardMethod::Masq,
            weight: 2,
            upper_threshold: 0,
            lower_threshold: 0,
            active_conns: active,
            inactive_conns: inactive,
            persist_conns: 1,
            tun_type: None,
            tun_port: None,
            tun_flags: None,
            stats: None,
            stats64: Some(st),
            unknown: Vec::new(),
        }
    }

    #[test]
    fn ipvs_metrics_use_node_exporter_labels_and_64_bit_counters() {
        let mut s = snapshot();
        let big = 5_000_000_000u64; // past 32 bits
        s.ipvs = Some(vec![
            (
                service(
                    ServiceKey::tcp("10.0.0.1:80".parse().unwrap()),
                    stats(9, big),
                ),
                vec![
                    dest("10.0.1.1:8080", 3, 40, stats(5, big)),
                    dest("10.0.1.2:8080", 0, 2, stats(4, 1)),
                ],
            ),
            (
                service(ServiceKey::fwmark(AddressFamily::Inet, 0x2a), stats(1, 2)),
                vec![dest("[fd00::5]:443", 1, 0, stats(1, 2))],
            ),
        ]);
        let text = render(&s);
        let tcp = "local_address=\"10.0.0.1\",local_port=\"80\",remote_address=\"10.0.1.1\",remote_port=\"8080\",proto=\"TCP\",local_mark=\"\"";
        assert_eq!(
            sample(
                &text,
                &format!("node_ipvs_backend_connections_active{{{tcp}}}")
            ),
            Some(3.0)
        );
        assert_eq!(
            sample(
                &text,
                &format!("node_ipvs_backend_connections_inactive{{{tcp}}}")
            ),
            Some(40.0)
        );
        assert_eq!(
            sample(&text, &format!("node_ipvs_backend_weight{{{tcp}}}")),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                &format!("ipvsct_ipvs_backend_incoming_bytes_total{{{tcp}}}")
            ),
            Some(big as f64)
        );
        let fwm = "local_address=\"\",local_port=\"0\",remote_address=\"fd00::5\",remote_port=\"443\",proto=\"FWM\",local_mark=\"0000002A\"";
        assert_eq!(
            sample(
                &text,
                &format!("node_ipvs_backend_connections_active{{{fwm}}}")
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "ipvsct_ipvs_service_connections_total{local_address=\"10.0.0.1\",local_port=\"80\",proto=\"TCP\",local_mark=\"\"}"
            ),
            Some(9.0)
        );
        assert_eq!(sample(&text, "ipvsct_ipvs_up"), Some(1.0));
    }
}
