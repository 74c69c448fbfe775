//! Shared by the benchmarks, `examples/bench_dump.rs` and `tests/alloc_count.rs`: a
//! throw-away network namespace, a guard that raises `nf_conntrack_max` for a run, a
//! fast table fill through the batched write path, and recorders that capture the
//! kernel's dump and event datagrams byte for byte.
//!
//! Included with `#[path = "…/benches/support/mod.rs"] mod support;`; not every user
//! needs every item.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipvs_conntrack::conntrack::tuple::{IPPROTO_TCP, IPPROTO_UDP};
use ipvs_conntrack::conntrack::{
    Batch, Conntrack, CreateRequest, DumpFilter, EventGroups, ProtoInfo, Status, TcpInfo, TcpState,
    Tuple,
};
use ipvs_conntrack::netlink::frame::{Frame, Frames};
use ipvs_conntrack::socket::{Direction, NlSocket, SocketOptions, NETLINK_NETFILTER};
use ipvs_conntrack::Netns;

/// Boxed error of the helpers (they report, never panic).
pub type AnyError = Box<dyn std::error::Error + Send + Sync>;

/// How long an external command (`ip netns …`) may run.
const CMD_TIMEOUT: Duration = Duration::from_secs(60);

/// Host sysctl holding the table size limit.
pub const CONNTRACK_MAX: &str = "/proc/sys/net/netfilter/nf_conntrack_max";

/// Requests per batch datagram run (bounds the memory of one `Batch`).
const FILL_CHUNK: u32 = 50_000;

/// Seconds every filled entry lives (longer than any benchmark run).
pub const FILL_TIMEOUT: u32 = 6 * 3600;

/// True when the environment variable `CI` is `true`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// True when the process runs with effective uid 0.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Runs a command with stdin closed, killing it after [`CMD_TIMEOUT`]; Ok if it exited 0.
pub fn run(program: &str, args: &[&str]) -> Result<(), AnyError> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{program}: {e}"))?;
    let deadline = Instant::now() + CMD_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            if status.success() {
                return Ok(());
            }
            let mut err = String::new();
            if let Some(mut s) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut s, &mut err);
            }
            return Err(format!("{program} {}: {status}: {}", args.join(" "), err.trim()).into());
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(
                format!("{program} {}: killed after {CMD_TIMEOUT:?}", args.join(" ")).into(),
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A network namespace made for one run, deleted when dropped (also on panic).
#[derive(Debug)]
pub struct BenchNs {
    name: String,
}

impl BenchNs {
    /// Creates `ipvsct-bench-<tag>-<pid>` with `lo` up.
    pub fn create(tag: &str) -> Result<BenchNs, AnyError> {
        let name = format!("ipvsct-bench-{tag}-{}", std::process::id());
        run("ip", &["netns", "add", &name])?;
        let ns = BenchNs { name };
        run("ip", &["-n", &ns.name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The `ip netns` name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace as the library names it.
    pub fn netns(&self) -> Netns {
        Netns::named(&self.name)
    }
}

impl Drop for BenchNs {
    fn drop(&mut self) {
        if let Err(e) = run("ip", &["netns", "del", &self.name]) {
            eprintln!("warning: deleting namespace {}: {e}", self.name);
        }
    }
}

/// Raises the host's `nf_conntrack_max` to at least a value for the guard's lifetime.
///
/// On this kernel the limit is global (child namespaces cannot write it) while the
/// count it is compared with is per namespace, so a filled namespace needs the host
/// value above its size. The old value is written back on drop.
#[derive(Debug)]
pub struct ConntrackMaxGuard {
    restore: Option<u64>,
}

impl ConntrackMaxGuard {
    /// Makes sure the limit is at least `need`.
    pub fn at_least(need: u64) -> Result<ConntrackMaxGuard, AnyError> {
        let old: u64 = std::fs::read_to_string(CONNTRACK_MAX)
            .map_err(|e| format!("{CONNTRACK_MAX}: {e}"))?
            .trim()
            .parse()
            .map_err(|e| format!("{CONNTRACK_MAX}: {e}"))?;
        if old >= need {
            return Ok(ConntrackMaxGuard { restore: None });
        }
        std::fs::write(CONNTRACK_MAX, need.to_string())
            .map_err(|e| format!("raising {CONNTRACK_MAX} to {need}: {e}"))?;
        eprintln!("raised nf_conntrack_max from {old} to {need} for this run");
        Ok(ConntrackMaxGuard { restore: Some(old) })
    }
}

impl Drop for ConntrackMaxGuard {
    fn drop(&mut self) {
        if let Some(old) = self.restore {
            if let Err(e) = std::fs::write(CONNTRACK_MAX, old.to_string()) {
                eprintln!("warning: restoring nf_conntrack_max to {old}: {e}");
            }
        }
    }
}

/// The entry number `i` of a filled table: a fixed mix of 70 % TCP ESTABLISHED over
/// IPv4, 20 % UDP over IPv4 and 10 % TCP ESTABLISHED over IPv6, all with distinct
/// tuples (documentation and private ranges; no packet is ever sent).
pub fn fill_request(i: u32) -> CreateRequest {
    let [_, b, c, d] = i.to_be_bytes();
    let sport = 1024 + u16::try_from(i % 60_000).unwrap_or(0);
    let kind = i % 10;
    let (proto, src, dst, dport): (u8, IpAddr, IpAddr, u16) = match kind {
        0..=6 => (
            IPPROTO_TCP,
            Ipv4Addr::new(10, b, c, d).into(),
            Ipv4Addr::new(192, 0, 2, 1).into(),
            443,
        ),
        7 | 8 => (
            IPPROTO_UDP,
            Ipv4Addr::new(10, b, c, d).into(),
            Ipv4Addr::new(192, 0, 2, 53).into(),
            53,
        ),
        _ => (
            IPPROTO_TCP,
            Ipv6Addr::new(
                0xfd00,
                0xbe,
                0,
                0,
                0,
                u16::from(b),
                u16::from(c),
                u16::from(d),
            )
            .into(),
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).into(),
            443,
        ),
    };
    let req = CreateRequest::new(
        Tuple::with_ports(proto, src, sport, dst, dport),
        FILL_TIMEOUT,
    )
    .status(Status::SEEN_REPLY | Status::ASSURED);
    if proto == IPPROTO_TCP {
        req.protoinfo(ProtoInfo {
            tcp: Some(TcpInfo {
                state: Some(TcpState::Established),
                ..TcpInfo::default()
            }),
            ..ProtoInfo::default()
        })
    } else {
        req
    }
}

/// What a fill did.
#[derive(Clone, Copy, Debug, Default)]
pub struct FillReport {
    /// Entries created.
    pub created: u64,
    /// Wall time of the batched inserts.
    pub elapsed: Duration,
}

/// Creates entries `from..to` of [`fill_request`] in `netns` through the batched write path.
pub fn fill(netns: &Netns, from: u32, to: u32) -> Result<FillReport, AnyError> {
    let mut ct = Conntrack::open(netns)?;
    let mut report = FillReport::default();
    let mut start = from;
    // Bounded: every turn advances `start` by at least one chunk.
    while start < to {
        let end = to.min(start.saturating_add(FILL_CHUNK));
        let mut batch = Batch::with_capacity((end - start) as usize, 160);
        for i in start..end {
            batch.push(&fill_request(i))?;
        }
        let r = ct.execute_batch(&batch)?;
        if !r.all_succeeded() {
            let first = r.failures.first().map(|f| f.error.to_string());
            return Err(format!(
                "fill {start}..{end}: {} failed (first: {first:?}), {} lost; is nf_conntrack_max \
                 (host) at least the table size?",
                r.failures.len(),
                r.lost.len()
            )
            .into());
        }
        report.created += r.succeeded as u64;
        report.elapsed += r.elapsed;
        start = end;
    }
    Ok(report)
}

/// Entries in the namespace's table, by IPCTNL_MSG_CT_GET_STATS.
pub fn table_count(netns: &Netns) -> Result<u64, AnyError> {
    Ok(u64::from(Conntrack::open(netns)?.count()?.entries))
}

/// Datagrams received from the kernel, exactly as received.
#[derive(Clone, Debug, Default)]
pub struct Recording {
    /// The datagrams in arrival order.
    pub datagrams: Vec<Vec<u8>>,
    /// Conntrack entry messages among them (ctnetlink data messages).
    pub entries: u64,
    /// Total bytes of all datagrams.
    pub bytes: u64,
    /// Where the bytes came from (namespace and size, or a fixture file).
    pub source: String,
}

impl Recording {
    /// Builds a recording from datagrams, counting entry messages and bytes.
    pub fn new(datagrams: Vec<Vec<u8>>, source: String) -> Recording {
        let bytes = datagrams.iter().map(|d| d.len() as u64).sum();
        let entries = datagrams
            .iter()
            .flat_map(|d| Frames::new(d).flatten())
            .filter(is_entry_message)
            .count() as u64;
        Recording {
            datagrams,
            entries,
            bytes,
            source,
        }
    }

    /// Reads a file of whole netlink messages (as `record_fixture` writes it) as one datagram.
    pub fn from_file(path: &std::path::Path) -> Result<Recording, AnyError> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Recording::new(vec![bytes], path.display().to_string()))
    }

    /// Bytes per entry message, on average (control messages included in the bytes).
    pub fn bytes_per_entry(&self) -> f64 {
        if self.entries == 0 {
            0.0
        } else {
            self.bytes as f64 / self.entries as f64
        }
    }
}

/// Smallest netlink message type that carries data (NLMSG_MIN_TYPE in `linux/netlink.h`).
pub const NLMSG_MIN_TYPE: u16 = 0x10;

/// Linux errno of a receive buffer overrun.
const ENOBUFS: i32 = 105;

/// True for a ctnetlink data message (not DONE/ERROR/NOOP/OVERRUN).
pub fn is_entry_message(f: &Frame<'_>) -> bool {
    f.header.message_type >= NLMSG_MIN_TYPE
}

/// Dumps the whole table of `netns` once and keeps every datagram received.
pub fn record_dump(netns: &Netns) -> Result<Recording, AnyError> {
    let mut ct = Conntrack::open(netns)?;
    ct.set_join_timeouts(false);
    let datagrams = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    let sink = Arc::clone(&datagrams);
    ct.socket_mut()
        .set_recorder(Some(Box::new(move |dir, bytes: &[u8]| {
            if dir == Direction::Received {
                if let Ok(mut v) = sink.lock() {
                    v.push(bytes.to_vec());
                }
            }
        })));
    let mut errors = 0u64;
    for e in ct.dump(&DumpFilter::all())? {
        if e.is_err() {
            errors += 1;
        }
    }
    ct.socket_mut().set_recorder(None);
    if errors > 0 {
        return Err(format!("the recorded dump had {errors} errors").into());
    }
    let v = std::mem::take(&mut *datagrams.lock().map_err(|_| "recorder lock poisoned")?);
    Ok(Recording::new(v, format!("live dump of namespace {netns}")))
}

/// Recorded event datagrams and whether the kernel dropped any.
#[derive(Clone, Debug, Default)]
pub struct EventRecording {
    /// The NEW event datagrams.
    pub recording: Recording,
    /// Receives that failed with ENOBUFS (events lost).
    pub overruns: u64,
}

/// Creates entries `from..to` in `netns` while recording the NEW events they cause.
///
/// Stops when every event arrived, after 2 s without any, or after 120 s.
pub fn record_new_events(netns: &Netns, from: u32, to: u32) -> Result<EventRecording, AnyError> {
    let mut sock = NlSocket::open(
        NETLINK_NETFILTER,
        netns,
        &SocketOptions {
            so_rcvbuf: 512 << 20,
            recv_timeout: Some(Duration::from_secs(2)),
        },
    )?;
    for g in EventGroups::NEW.group_numbers() {
        sock.inner().add_membership(g)?;
    }
    let writer_ns = netns.clone();
    let writer = std::thread::spawn(move || fill(&writer_ns, from, to));
    let want = u64::from(to.saturating_sub(from));
    let mut datagrams = Vec::new();
    let mut seen = 0u64;
    let mut overruns = 0u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen < want && Instant::now() < deadline {
        match sock.recv("record events") {
            Ok(_) => {
                let d = sock.datagram().to_vec();
                seen += Frames::new(&d).flatten().filter(is_entry_message).count() as u64;
                datagrams.push(d);
            }
            Err(ipvs_conntrack::Error::Timeout { .. }) => break,
            Err(e) if e.errno() == Some(ENOBUFS) => overruns += 1,
            Err(e) => return Err(e.into()),
        }
    }
    let filled = writer.join().map_err(|_| "fill thread panicked")??;
    if filled.created != want {
        return Err(format!("created {} of {want} entries", filled.created).into());
    }
    Ok(EventRecording {
        recording: Recording::new(datagrams, format!("NEW events of namespace {netns}")),
        overruns,
    })
}

/// CPU time used by this process so far (user and system, all threads).
pub fn process_cpu() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

/// Peak resident set size of this process so far, in KiB (`VmHWM`).
pub fn peak_rss_kib() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
