//! Soak run of the library side against a namespace with churning traffic: an event
//! stream kept open the whole time (events and overruns counted, applied to a
//! [`TableView`] that is resynchronised after overruns and every few seconds), repeated
//! dumps (owned entries and zero-copy views), counts and per-CPU statistics, while
//! threads inside the namespace make short TCP connections and UDP flows on loopback
//! and insert/delete entries in batches. The process samples its own memory
//! (`/proc/self/status` VmRSS/VmHWM) every few seconds, prints a table at the end and
//! exits non-zero if the RSS grew by more than the limit after the warm-up or if any
//! library call failed unexpectedly.
//!
//! ```text
//! ip netns add soak && ip -n soak link set lo up
//! ip netns exec soak nft 'add table inet t; add chain inet t out { type filter hook output priority 0; }; add rule inet t out ct state new counter'
//! cargo run --release --example soak -- --netns soak --seconds 300
//! ```
//!
//! `tests/soak.sh` does all of that (and runs `conntrack -I/-D` churn beside it);
//! `tests/soak_short.rs` runs the same engine for 20 s inside `cargo test`.
//!
//! Options: `--netns NAME` (required), `--seconds N` (300), `--warmup N` (60, at most a
//! third of the run), `--sample N` (5), `--rss-limit-kb N` (1024), `--rate N` (flows per
//! second of each kind, 100), `--dump-pause-ms N` (50), `--rcvbuf N` (event socket
//! receive buffer in bytes, 1 MiB), `--resync N` (seconds between two resynchronisations
//! of the table view, 10), `--no-traffic`, `--no-churn`.
//!
//! Memory: the growth is the trend of VmRSS over the samples after the warm-up (see
//! [`SoakReport::rss_growth_kb`]). The warm-up must cover the steady state of every code
//! path, including a resynchronisation with the table at its working size (it holds two
//! table views at once). Run it with `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072`
//! (`tests/soak.sh` and `tests/soak_short.rs` do): glibc otherwise raises its mmap
//! threshold to the largest block freed so far, so during the first minutes large blocks
//! move from mmap to the heap one size after the other and VmRSS climbs in steps of
//! about a table view (~1.7 MB for 1 000 entries) that are not growth.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ipvs_conntrack::conntrack::events::set_accounting;
use ipvs_conntrack::conntrack::tuple::IPPROTO_UDP;
use ipvs_conntrack::conntrack::{
    Batch, BatchOptions, Conntrack, CreateRequest, DeleteRequest, DumpFilter, Event, EventGroups,
    EventKind, EventOptions, EventStream, TableView, Tuple,
};
use ipvs_conntrack::{Error, Netns};

/// EEXIST: a batch insert of an entry that is still there (expected under churn).
const EEXIST: i32 = 17;
/// ENOENT: a batch delete of an entry that already expired (expected under churn).
const ENOENT: i32 = 2;

/// Shortened conntrack timeouts set in the namespace so that entries also expire.
pub const SOAK_SYSCTLS: &[(&str, &str)] = &[
    ("nf_conntrack_tcp_timeout_time_wait", "1"),
    ("nf_conntrack_tcp_timeout_close", "1"),
    ("nf_conntrack_tcp_timeout_fin_wait", "2"),
    ("nf_conntrack_tcp_timeout_close_wait", "2"),
    ("nf_conntrack_tcp_timeout_last_ack", "2"),
    ("nf_conntrack_udp_timeout", "2"),
    ("nf_conntrack_udp_timeout_stream", "3"),
];

/// What a soak run does and for how long.
#[derive(Clone, Debug)]
pub struct SoakConfig {
    /// The namespace (it must exist, with `lo` up and conntrack tracking its traffic).
    pub netns: Netns,
    /// Length of the whole run.
    pub duration: Duration,
    /// Memory is compared with the first sample taken after this much time.
    pub warmup: Duration,
    /// Time between two memory samples (rows of the table).
    pub sample_every: Duration,
    /// Allowed VmRSS growth after the warm-up, in kB.
    pub rss_limit_kb: u64,
    /// TCP connections and UDP flows per second (each); 0 disables the traffic threads.
    pub rate: u32,
    /// Batch inserts and deletes through the library.
    pub churn: bool,
    /// Pause between two rounds of dumps.
    pub dump_pause: Duration,
    /// Kernel receive buffer of the event socket.
    pub event_rcvbuf: usize,
    /// Time between two resynchronisations of the table view (also done after overruns).
    pub resync_every: Duration,
}

impl SoakConfig {
    /// Defaults for `netns`: 300 s, 60 s warm-up, a sample every 5 s, 1 MB limit.
    pub fn new(netns: Netns) -> Self {
        SoakConfig {
            netns,
            duration: Duration::from_secs(300),
            warmup: Duration::from_secs(60),
            sample_every: Duration::from_secs(5),
            rss_limit_kb: 1024,
            rate: 100,
            churn: true,
            dump_pause: Duration::from_millis(50),
            event_rcvbuf: 1 << 20,
            resync_every: Duration::from_secs(10),
        }
    }
}

/// One row of the table.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// Time since the start.
    pub at: Duration,
    /// Entries in the table (IPCTNL_MSG_CT_GET_STATS).
    pub entries: u32,
    /// Connections in the event-fed table view.
    pub view: usize,
    /// Events per second since the previous sample.
    pub events_per_s: f64,
    /// Dumps done so far (owned and view).
    pub dumps: u64,
    /// Event overruns so far.
    pub overruns: u64,
    /// VmRSS in kB.
    pub rss_kb: u64,
    /// VmHWM in kB.
    pub hwm_kb: u64,
}

/// Counters shared by the threads of a run.
#[derive(Debug, Default)]
struct Counters {
    events: AtomicU64,
    received: AtomicU64,
    new: AtomicU64,
    update: AtomicU64,
    destroy: AtomicU64,
    overruns: AtomicU64,
    resyncs: AtomicU64,
    resync_changes: AtomicU64,
    view_len: AtomicU64,
    tcp_flows: AtomicU64,
    udp_flows: AtomicU64,
    traffic_errors: AtomicU64,
    inserted: AtomicU64,
    deleted: AtomicU64,
    expected_refusals: AtomicU64,
}

/// The result of a soak run.
#[derive(Debug, Default)]
pub struct SoakReport {
    /// The table rows.
    pub samples: Vec<Sample>,
    /// Index of the first sample after the warm-up (the memory baseline).
    pub baseline: Option<usize>,
    /// Events delivered by the stream (NEW, UPDATE, DESTROY).
    pub events: u64,
    /// Event messages the socket received, also those a resynchronisation read away
    /// unseen (the dump that follows supersedes them).
    pub received: u64,
    /// NEW, UPDATE and DESTROY events.
    pub kinds: [u64; 3],
    /// Event-socket overruns (ENOBUFS).
    pub overruns: u64,
    /// Table-view resynchronisations and the differences they found.
    pub resyncs: u64,
    /// Differences the resynchronisations found.
    pub resync_changes: u64,
    /// Owned dumps (`Conntrack::dump`, every entry decoded into an `Entry`) that completed.
    pub dumps_owned: u64,
    /// Zero-copy dumps (`Conntrack::for_each_view`) that completed.
    pub dumps_view: u64,
    /// Entries seen by all dumps.
    pub dumped_entries: u64,
    /// Dumps the kernel flagged NLM_F_DUMP_INTR (expected while the table changes).
    pub dumps_interrupted: u64,
    /// Count and per-CPU statistics requests that succeeded.
    pub stats_calls: u64,
    /// TCP connections and UDP flows made.
    pub tcp_flows: u64,
    /// UDP flows made.
    pub udp_flows: u64,
    /// Socket errors of the traffic threads (not library calls).
    pub traffic_errors: u64,
    /// Entries inserted and deleted by batches.
    pub inserted: u64,
    /// Entries deleted by batches.
    pub deleted: u64,
    /// Batch requests refused with EEXIST/ENOENT (expected: entries expire under churn).
    pub expected_refusals: u64,
    /// Library calls that failed unexpectedly, with what failed.
    pub failures: Vec<String>,
}

impl SoakReport {
    /// VmRSS growth in kB after the warm-up: the trend of the samples taken after it
    /// (Theil-Sen: the median of the slopes between every two samples) times the time
    /// they span. A leak moves every later sample and shows in the trend; a single
    /// sample that falls while a resynchronisation holds two table views at once does
    /// not. At least three samples are needed; of more than 200, 200 evenly spaced ones
    /// are used.
    pub fn rss_growth_kb(&self) -> Option<u64> {
        let after = self.samples.get(self.baseline?..)?;
        if after.len() < 3 {
            return None;
        }
        let step = after.len().div_ceil(200);
        let pts: Vec<(f64, f64)> = after
            .iter()
            .step_by(step)
            .map(|s| (s.at.as_secs_f64(), s.rss_kb as f64))
            .collect();
        let mut slopes = Vec::with_capacity(pts.len() * pts.len() / 2);
        for (i, a) in pts.iter().enumerate() {
            for b in pts.get(i + 1..)? {
                if b.0 > a.0 {
                    slopes.push((b.1 - a.1) / (b.0 - a.0));
                }
            }
        }
        slopes.sort_unstable_by(f64::total_cmp);
        let slope = *slopes.get(slopes.len() / 2)?;
        let span = after
            .last()?
            .at
            .saturating_sub(after.first()?.at)
            .as_secs_f64();
        Some((slope * span).max(0.0).round() as u64)
    }

    /// Largest VmRSS after the warm-up above the first sample after it, in kB (spikes included).
    pub fn rss_spike_kb(&self) -> Option<u64> {
        let after = self.samples.get(self.baseline?..)?;
        let base = after.first()?.rss_kb;
        Some(after.iter().map(|s| s.rss_kb).max()?.saturating_sub(base))
    }

    /// The table and the totals as text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{:>7} {:>8} {:>8} {:>9} {:>8} {:>9} {:>9} {:>9}\n",
            "time_s", "entries", "view", "events/s", "dumps", "overruns", "rss_kb", "hwm_kb"
        ));
        for (i, s) in self.samples.iter().enumerate() {
            let mark = if Some(i) == self.baseline {
                " <- baseline"
            } else {
                ""
            };
            out.push_str(&format!(
                "{:>7.1} {:>8} {:>8} {:>9.0} {:>8} {:>9} {:>9} {:>9}{mark}\n",
                s.at.as_secs_f64(),
                s.entries,
                s.view,
                s.events_per_s,
                s.dumps,
                s.overruns,
                s.rss_kb,
                s.hwm_kb
            ));
        }
        out.push_str(&format!(
            "events {} (new {} update {} destroy {}) of {} received, overruns {}, \
             resyncs {} ({} differences)\n",
            self.events,
            self.kinds[0],
            self.kinds[1],
            self.kinds[2],
            self.received,
            self.overruns,
            self.resyncs,
            self.resync_changes
        ));
        out.push_str(&format!(
            "dumps {} owned + {} view ({} entries, {} interrupted), count/stats calls {}\n",
            self.dumps_owned,
            self.dumps_view,
            self.dumped_entries,
            self.dumps_interrupted,
            self.stats_calls
        ));
        out.push_str(&format!(
            "traffic: {} TCP connections, {} UDP flows, {} socket errors; batches: {} inserted, \
             {} deleted, {} refused with EEXIST/ENOENT\n",
            self.tcp_flows,
            self.udp_flows,
            self.traffic_errors,
            self.inserted,
            self.deleted,
            self.expected_refusals
        ));
        match self.rss_growth_kb() {
            Some(g) => out.push_str(&format!(
                "RSS growth after the warm-up: {g} kB (trend over the samples after it; \
                 largest sample {} kB above the first)\n",
                self.rss_spike_kb().unwrap_or(0)
            )),
            None => out.push_str("RSS growth after the warm-up: no sample after the warm-up\n"),
        }
        for f in &self.failures {
            out.push_str(&format!("FAILED: {f}\n"));
        }
        out
    }

    /// `Ok` if memory stayed flat and nothing failed; otherwise every reason.
    pub fn verdict(&self, rss_limit_kb: u64) -> Result<(), String> {
        let mut bad = self.failures.clone();
        match self.rss_growth_kb() {
            Some(g) if g > rss_limit_kb => bad.push(format!(
                "VmRSS grew by {g} kB after the warm-up (limit {rss_limit_kb} kB)"
            )),
            Some(_) => {}
            None => bad.push("fewer than 3 memory samples after the warm-up".into()),
        }
        if self.dumps_owned == 0 || self.dumps_view == 0 {
            bad.push("no dump completed".into());
        }
        if self.events == 0 {
            bad.push("no event received".into());
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(bad.join("; "))
        }
    }
}

/// VmRSS and VmHWM of this process in kB.
pub fn memory_kb() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Shortens the namespace's TCP and UDP timeouts ([`SOAK_SYSCTLS`]) and turns
/// accounting and timestamps on, so that entries expire and events carry counters.
pub fn prepare(netns: &Netns) -> Result<(), Error> {
    netns.run(|| {
        for (name, value) in SOAK_SYSCTLS {
            let path = std::path::Path::new("/proc/sys/net/netfilter").join(name);
            std::fs::write(&path, value).map_err(|e| Error::Io {
                op: "write conntrack timeout sysctl",
                source: e,
            })?;
        }
        Ok(())
    })?;
    set_accounting(netns, true, true)
}

/// Records an unexpected failure (kept short: the first 20 are enough).
fn fail(failures: &Mutex<Vec<String>>, what: String) {
    let mut f = failures.lock().unwrap_or_else(PoisonError::into_inner);
    if f.len() < 20 {
        f.push(what);
    }
}

/// Sleeps until `next` (or returns at once if past) and advances it by `period`.
fn pace(next: &mut Instant, period: Duration, stop: &AtomicBool) {
    let now = Instant::now();
    if *next > now && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(*next - now);
    }
    *next += period;
    // After a stall do not try to catch up with a burst.
    if *next + period * 10 < Instant::now() {
        *next = Instant::now();
    }
}

/// One short TCP connection on loopback: connect, request, response, client closes first.
fn tcp_once(listener: &TcpListener, server: SocketAddr) -> std::io::Result<()> {
    let timeout = Duration::from_secs(2);
    let mut c = TcpStream::connect_timeout(&server, timeout)?;
    let (mut s, _) = listener.accept()?;
    for sock in [&c, &s] {
        sock.set_read_timeout(Some(timeout))?;
        sock.set_write_timeout(Some(timeout))?;
    }
    let mut buf = [0u8; 8];
    c.write_all(b"ping")?;
    s.read_exact(&mut buf[..4])?;
    s.write_all(b"pong")?;
    c.read_exact(&mut buf[..4])?;
    drop(c);
    // EOF from the client, then the server closes: the connection ends in TIME_WAIT.
    let _ = s.read(&mut buf)?;
    Ok(())
}

/// One UDP flow: a request from a fresh socket (new source port) and the answer.
fn udp_once(server: &UdpSocket, to: SocketAddr) -> std::io::Result<()> {
    let c = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    c.set_read_timeout(Some(Duration::from_secs(2)))?;
    c.send_to(b"q", to)?;
    let mut buf = [0u8; 8];
    let (_, from) = server.recv_from(&mut buf)?;
    server.send_to(b"a", from)?;
    c.recv_from(&mut buf)?;
    Ok(())
}

fn spawn_traffic(
    cfg: &SoakConfig,
    stop: &Arc<AtomicBool>,
    counters: &Arc<Counters>,
) -> Result<JoinHandle<Result<(), Error>>, Error> {
    let period = Duration::from_secs(1) / cfg.rate.max(1);
    let (stop, counters) = (Arc::clone(stop), Arc::clone(counters));
    cfg.netns.spawn("soak-traffic", move || {
        let io = |op| move |e| Error::Io { op, source: e };
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io("tcp listen"))?;
        let tcp_addr = listener.local_addr().map_err(io("tcp listen"))?;
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io("udp bind"))?;
        udp.set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(io("udp timeout"))?;
        let udp_addr = udp.local_addr().map_err(io("udp bind"))?;
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            match tcp_once(&listener, tcp_addr) {
                Ok(()) => counters.tcp_flows.fetch_add(1, Ordering::Relaxed),
                Err(_) => counters.traffic_errors.fetch_add(1, Ordering::Relaxed),
            };
            match udp_once(&udp, udp_addr) {
                Ok(()) => counters.udp_flows.fetch_add(1, Ordering::Relaxed),
                Err(_) => counters.traffic_errors.fetch_add(1, Ordering::Relaxed),
            };
            pace(&mut next, period, &stop);
        }
        Ok(())
    })
}

/// The tuple of churn entry `i` (UDP between two addresses no packet ever uses).
fn churn_tuple(i: u32) -> Tuple {
    let [_, _, hi, lo] = i.to_be_bytes();
    Tuple::with_ports(
        IPPROTO_UDP,
        Ipv4Addr::new(10, 254, hi, lo).into(),
        40_000,
        Ipv4Addr::new(10, 253, 0, 1).into(),
        53,
    )
}

/// Batch churn: every 200 ms, 100 entries of a 1 600-key space are inserted (3 s
/// timeout) and half of the previous round deleted; the rest expires.
fn spawn_churn(
    cfg: &SoakConfig,
    stop: &Arc<AtomicBool>,
    counters: &Arc<Counters>,
    failures: &Arc<Mutex<Vec<String>>>,
) -> Result<JoinHandle<Result<(), Error>>, Error> {
    const PER_ROUND: u32 = 100;
    const ROUNDS: u32 = 16;
    let mut ct = Conntrack::open(&cfg.netns)?;
    let (stop, counters, failures) = (Arc::clone(stop), Arc::clone(counters), Arc::clone(failures));
    let opts = BatchOptions {
        ack_timeout: Duration::from_secs(10),
        ..BatchOptions::default()
    };
    std::thread::Builder::new()
        .name("soak-churn".into())
        .spawn(move || {
            let mut round = 0u32;
            let mut next = Instant::now();
            let mut inserts = Batch::with_capacity(PER_ROUND as usize, 128);
            let mut deletes = Batch::with_capacity(PER_ROUND as usize / 2, 128);
            while !stop.load(Ordering::Relaxed) {
                let base = (round % ROUNDS) * PER_ROUND;
                let prev = ((round + ROUNDS - 1) % ROUNDS) * PER_ROUND;
                inserts.clear();
                deletes.clear();
                for i in base..base + PER_ROUND {
                    inserts.push(&CreateRequest::new(churn_tuple(i), 3))?;
                }
                for i in (prev..prev + PER_ROUND).step_by(2) {
                    deletes.push(&DeleteRequest::orig(churn_tuple(i)))?;
                }
                for (batch, done, what) in [
                    (&inserts, &counters.inserted, "insert"),
                    (&deletes, &counters.deleted, "delete"),
                ] {
                    match ct.execute_batch_with(batch, &opts) {
                        Ok(r) => {
                            done.fetch_add(r.succeeded as u64, Ordering::Relaxed);
                            let expected = r
                                .failures
                                .iter()
                                .filter(|f| matches!(f.error.errno, EEXIST | ENOENT))
                                .count();
                            counters
                                .expected_refusals
                                .fetch_add(expected as u64, Ordering::Relaxed);
                            if expected != r.failures.len() || !r.lost.is_empty() {
                                fail(&failures, format!("batch {what}: {r:?}"));
                            }
                        }
                        Err(e) => fail(&failures, format!("batch {what}: {e}")),
                    }
                }
                round = round.wrapping_add(1);
                pace(&mut next, Duration::from_millis(200), &stop);
            }
            Ok(())
        })
        .map_err(|source| Error::Io {
            op: "spawn churn thread",
            source,
        })
}

/// The event reader: counts events and overruns, keeps a table view current, and
/// resynchronises it after overruns and every `resync_every`.
fn spawn_events(
    cfg: &SoakConfig,
    stop: &Arc<AtomicBool>,
    counters: &Arc<Counters>,
    failures: &Arc<Mutex<Vec<String>>>,
) -> Result<JoinHandle<Result<(), Error>>, Error> {
    let opts = EventOptions {
        groups: EventGroups::CONNTRACK,
        rcvbuf: cfg.event_rcvbuf,
        recv_timeout: Some(Duration::from_millis(200)),
        ..EventOptions::default()
    };
    let mut stream = EventStream::with_options(&cfg.netns, &opts)?;
    let resync_every = cfg.resync_every;
    let (stop, counters, failures) = (Arc::clone(stop), Arc::clone(counters), Arc::clone(failures));
    std::thread::Builder::new()
        .name("soak-events".into())
        .spawn(move || {
            let mut view = TableView::new();
            let mut last_resync = Instant::now();
            let resync = |stream: &mut EventStream, view: &mut TableView| {
                match stream.resync(view) {
                    Ok(changes) => {
                        counters.resyncs.fetch_add(1, Ordering::Relaxed);
                        counters
                            .resync_changes
                            .fetch_add(changes.len() as u64, Ordering::Relaxed);
                    }
                    // Retried RESYNC_ATTEMPTS times already; the next resync repairs it.
                    Err(Error::DumpInterrupted) => {}
                    Err(e) => fail(&failures, format!("resync: {e}")),
                }
            };
            resync(&mut stream, &mut view);
            while !stop.load(Ordering::Relaxed) {
                match stream.next_event() {
                    Ok(Some(Event::Overrun(_))) => {
                        counters.overruns.fetch_add(1, Ordering::Relaxed);
                        resync(&mut stream, &mut view);
                        last_resync = Instant::now();
                    }
                    Ok(Some(ev)) => {
                        if let Event::Conntrack(c) = &ev {
                            let slot = match c.kind {
                                EventKind::New => &counters.new,
                                EventKind::Update => &counters.update,
                                EventKind::Destroy => &counters.destroy,
                            };
                            slot.fetch_add(1, Ordering::Relaxed);
                        }
                        counters.events.fetch_add(1, Ordering::Relaxed);
                        view.apply(&ev);
                    }
                    Ok(None) => {}
                    Err(e) => fail(&failures, format!("event stream: {e}")),
                }
                if last_resync.elapsed() >= resync_every {
                    resync(&mut stream, &mut view);
                    last_resync = Instant::now();
                }
                counters
                    .view_len
                    .store(view.len() as u64, Ordering::Relaxed);
            }
            counters
                .received
                .store(stream.stats().received, Ordering::Relaxed);
            Ok(())
        })
        .map_err(|source| Error::Io {
            op: "spawn event thread",
            source,
        })
}

/// Runs the soak described by `cfg` and returns what happened. `progress` sees every
/// sample as it is taken.
pub fn run(cfg: &SoakConfig, mut progress: impl FnMut(&Sample)) -> SoakReport {
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let failures = Arc::new(Mutex::new(Vec::new()));
    let mut report = SoakReport::default();
    let mut threads = Vec::new();
    let mut start_thread = |name: &str, t: Result<JoinHandle<Result<(), Error>>, Error>| match t {
        Ok(h) => threads.push((name.to_owned(), h)),
        Err(e) => fail(&failures, format!("starting the {name} thread: {e}")),
    };
    start_thread("event", spawn_events(cfg, &stop, &counters, &failures));
    if cfg.rate > 0 {
        start_thread("traffic", spawn_traffic(cfg, &stop, &counters));
    }
    if cfg.churn {
        start_thread("churn", spawn_churn(cfg, &stop, &counters, &failures));
    }

    let start = Instant::now();
    let mut ct = match Conntrack::open(&cfg.netns) {
        Ok(c) => Some(c),
        Err(e) => {
            fail(&failures, format!("open the dump client: {e}"));
            None
        }
    };
    let all = DumpFilter::all();
    let mut next_sample = start + cfg.sample_every;
    let mut last_events = (start, 0u64);
    let mut entries = 0u32;
    // Bounded by the duration: every turn does a dump round or takes a sample, then pauses.
    while let Some(ct) = ct.as_mut().filter(|_| start.elapsed() < cfg.duration) {
        let owned = report.dumps_owned + report.dumps_view;
        let r = if owned % 2 == 0 {
            // Streamed, not collected: a `Vec` of the whole table would make the heap's
            // high-water mark follow the largest table ever seen, not the library's memory.
            ct.dump(&all).and_then(|dump| {
                let mut n = 0u64;
                for e in dump {
                    let e = e?;
                    if e.state_timeout.is_some() || e.id.is_some() {
                        n += 1;
                    }
                }
                report.dumps_owned += 1;
                Ok(n)
            })
        } else {
            let mut n = 0u64;
            ct.for_each_view(&all, |v| {
                // Touch the lazily decoded parts too.
                match (
                    v.orig(),
                    v.reply(),
                    v.state(),
                    v.counters_orig(),
                    v.timestamp(),
                ) {
                    (Ok(_), Ok(_), Ok(_), Ok(_), Ok(_)) => {
                        n += 1;
                        ControlFlow::Continue(())
                    }
                    (o, r, s, c, t) => ControlFlow::Break(Err(Error::InvalidRequest(format!(
                        "view decode: {o:?} {r:?} {s:?} {c:?} {t:?}"
                    )))),
                }
            })
            .map(|_| {
                report.dumps_view += 1;
                n
            })
        };
        match r {
            Ok(n) => report.dumped_entries += n,
            Err(Error::DumpInterrupted) => report.dumps_interrupted += 1,
            Err(e) => fail(&failures, format!("dump: {e}")),
        }
        match ct.count() {
            Ok(s) => {
                entries = s.entries;
                report.stats_calls += 1;
            }
            Err(e) => fail(&failures, format!("count: {e}")),
        }
        match ct.cpu_stats() {
            Ok(v) if !v.is_empty() => report.stats_calls += 1,
            Ok(_) => fail(&failures, "cpu_stats: no CPU reported".into()),
            Err(e) => fail(&failures, format!("cpu_stats: {e}")),
        }
        let now = Instant::now();
        if now >= next_sample {
            let events = counters.events.load(Ordering::Relaxed);
            let secs = now.duration_since(last_events.0).as_secs_f64();
            let (rss_kb, hwm_kb) = memory_kb();
            let s = Sample {
                at: now.duration_since(start),
                entries,
                view: counters.view_len.load(Ordering::Relaxed) as usize,
                events_per_s: if secs > 0.0 {
                    (events - last_events.1) as f64 / secs
                } else {
                    0.0
                },
                dumps: report.dumps_owned + report.dumps_view,
                overruns: counters.overruns.load(Ordering::Relaxed),
                rss_kb,
                hwm_kb,
            };
            if report.baseline.is_none() && s.at >= cfg.warmup {
                report.baseline = Some(report.samples.len());
            }
            progress(&s);
            report.samples.push(s);
            last_events = (now, events);
            next_sample += cfg.sample_every;
        }
        std::thread::sleep(cfg.dump_pause);
    }
    stop.store(true, Ordering::Relaxed);
    for (name, h) in threads {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => fail(&failures, format!("{name} thread: {e}")),
            Err(_) => fail(&failures, format!("{name} thread panicked")),
        }
    }
    let c = &counters;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    report.events = get(&c.events);
    report.received = get(&c.received);
    report.kinds = [get(&c.new), get(&c.update), get(&c.destroy)];
    report.overruns = get(&c.overruns);
    report.resyncs = get(&c.resyncs);
    report.resync_changes = get(&c.resync_changes);
    report.tcp_flows = get(&c.tcp_flows);
    report.udp_flows = get(&c.udp_flows);
    report.traffic_errors = get(&c.traffic_errors);
    report.inserted = get(&c.inserted);
    report.deleted = get(&c.deleted);
    report.expected_refusals = get(&c.expected_refusals);
    report.failures = std::mem::take(&mut *failures.lock().unwrap_or_else(PoisonError::into_inner));
    report
}

/// Parses `--name value` / `--flag` arguments.
fn parse_args(args: &[String]) -> Result<SoakConfig, String> {
    let mut opts: BTreeMap<&str, &str> = BTreeMap::new();
    let mut flags = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--no-traffic" | "--no-churn" => flags.push(a.as_str()),
            "--netns" | "--seconds" | "--warmup" | "--sample" | "--rss-limit-kb" | "--rate"
            | "--dump-pause-ms" | "--rcvbuf" | "--resync" => {
                let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
                opts.insert(a.as_str(), v.as_str());
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let num = |k: &str, default: u64| -> Result<u64, String> {
        opts.get(k).map_or(Ok(default), |v| {
            v.parse().map_err(|_| format!("{k}: not a number: {v}"))
        })
    };
    let netns = opts.get("--netns").ok_or("--netns NAME is required")?;
    let mut cfg = SoakConfig::new(Netns::parse(netns));
    // Bounded: at most a day.
    let seconds = num("--seconds", 300)?.clamp(1, 86_400);
    cfg.duration = Duration::from_secs(seconds);
    cfg.warmup = Duration::from_secs(num("--warmup", 60)?.min(seconds / 3));
    cfg.sample_every = Duration::from_secs(num("--sample", 5)?.max(1));
    cfg.rss_limit_kb = num("--rss-limit-kb", 1024)?;
    cfg.rate = u32::try_from(num("--rate", 100)?.min(10_000)).unwrap_or(100);
    cfg.dump_pause = Duration::from_millis(num("--dump-pause-ms", 50)?);
    cfg.event_rcvbuf = usize::try_from(num("--rcvbuf", 1 << 20)?).unwrap_or(1 << 20);
    cfg.resync_every = Duration::from_secs(num("--resync", 10)?.max(1));
    if flags.contains(&"--no-traffic") {
        cfg.rate = 0;
    }
    if flags.contains(&"--no-churn") {
        cfg.churn = false;
    }
    Ok(cfg)
}

#[allow(dead_code)]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match parse_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = prepare(&cfg.netns) {
        eprintln!("soak: preparing {}: {e}", cfg.netns);
        std::process::exit(2);
    }
    eprintln!(
        "soak: {} s in namespace {} (warm-up {} s, a sample every {} s, RSS limit {} kB)",
        cfg.duration.as_secs(),
        cfg.netns,
        cfg.warmup.as_secs(),
        cfg.sample_every.as_secs(),
        cfg.rss_limit_kb
    );
    let report = run(&cfg, |s| {
        eprintln!(
            "soak: {:>6.1} s: {} entries, {:.0} events/s, {} dumps, {} overruns, RSS {} kB",
            s.at.as_secs_f64(),
            s.entries,
            s.events_per_s,
            s.dumps,
            s.overruns,
            s.rss_kb
        );
    });
    print!("{}", report.render());
    match report.verdict(cfg.rss_limit_kb) {
        Ok(()) => println!("soak: PASSED"),
        Err(e) => {
            println!("soak: FAILED: {e}");
            std::process::exit(1);
        }
    }
}
