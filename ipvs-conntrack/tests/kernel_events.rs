//! Conntrack events against the running kernel, each test in its own network namespace:
//! NEW/UPDATE/DESTROY streams of real TCP flows compared with `conntrack -E -o xml` run
//! in parallel, overrun reporting with a tiny receive buffer plus resynchronisation of a
//! caller-held view, raw-message filtering, reliable mode, and event throughput.
//!
//! Needs root, `ip`, `nft` and `conntrack`; without them each test prints `SKIPPED`
//! (or fails when CI=true).

mod support;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipvs_conntrack::conntrack::tuple::{Tuple, IPPROTO_TCP, IPPROTO_UDP};
use ipvs_conntrack::conntrack::{
    set_accounting, Batch, Conntrack, CreateRequest, DumpFilter, Event, EventFilter, EventGroups,
    EventKind, EventOptions, EventStream, EventView, FlushRequest, State, TableView, TcpState,
};
use support::{setup, TestNs};

const LOOPBACK: &str = "127.0.0.1";

/// `conntrack -E -o xml` running in a namespace; killed and reaped when dropped.
struct EventTool {
    child: Child,
    out: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl EventTool {
    fn start(ns: &TestNs) -> EventTool {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns.name(), "conntrack", "-E", "-o", "xml"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn conntrack -E");
        let out = Arc::new(Mutex::new(String::new()));
        let mut stdout = child.stdout.take().expect("piped stdout");
        let sink = Arc::clone(&out);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            // Ends at EOF, when the tool exits.
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push_str(&text);
            }
        });
        EventTool {
            child,
            out,
            reader: Some(reader),
        }
    }

    fn text(&self) -> String {
        self.out.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stops the tool and returns its output (it flushes every event as it prints it).
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.text()
    }
}

impl Drop for EventTool {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `<flow type=…>` of `conntrack -E -o xml`: type, original ports, state.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ToolEvent {
    kind: String,
    sport: Option<u16>,
    dport: Option<u16>,
    state: Option<String>,
}

fn parse_tool_events(xml: &str) -> Vec<ToolEvent> {
    use quick_xml::events::Event as X;
    let mut r = quick_xml::Reader::from_str(xml);
    r.config_mut().trim_text(true);
    let mut out = Vec::new();
    let mut cur: Option<ToolEvent> = None;
    let mut dir = String::new();
    let mut el = String::new();
    // Bounded by the input: each event consumes input; a truncated tail just ends it.
    loop {
        match r.read_event() {
            Ok(X::Start(e)) | Ok(X::Empty(e)) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                let attr = |k: &str| {
                    e.try_get_attribute(k)
                        .ok()
                        .flatten()
                        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
                };
                match name.as_str() {
                    "flow" => {
                        cur = Some(ToolEvent {
                            kind: attr("type").unwrap_or_default(),
                            sport: None,
                            dport: None,
                            state: None,
                        })
                    }
                    "meta" => dir = attr("direction").unwrap_or_default(),
                    _ => {}
                }
                el = name;
            }
            Ok(X::Text(t)) => {
                let text = t.unescape().map(|s| s.into_owned()).unwrap_or_default();
                if let Some(c) = cur.as_mut() {
                    match (dir.as_str(), el.as_str()) {
                        ("original", "sport") => c.sport = text.parse().ok(),
                        ("original", "dport") => c.dport = text.parse().ok(),
                        ("independent", "state") => c.state = Some(text),
                        _ => {}
                    }
                }
            }
            Ok(X::End(e)) if e.name().as_ref() == b"flow" => out.extend(cur.take()),
            Ok(X::Eof) | Err(_) => break,
            _ => {}
        }
    }
    out
}

fn udp(src_port: u16, dst_port: u16) -> Tuple {
    Tuple::with_ports(
        IPPROTO_UDP,
        "10.77.0.1".parse().unwrap(),
        src_port,
        "10.77.0.2".parse().unwrap(),
        dst_port,
    )
}

/// Reads events until `done` says so or `limit` passes; returns what was read.
fn read_until(
    stream: &mut EventStream,
    limit: Duration,
    mut done: impl FnMut(&[Event]) -> bool,
) -> Vec<Event> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    while Instant::now() < deadline && !done(&got) {
        match stream.next_event() {
            Ok(Some(e)) => got.push(e),
            Ok(None) => {}
            Err(e) => panic!("event stream failed: {e}"),
        }
    }
    got
}

/// Reads events until the stream is idle for one receive timeout (or `limit` passes).
fn drain_idle(stream: &mut EventStream, limit: Duration) -> Vec<Event> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    while Instant::now() < deadline {
        match stream.next_event() {
            Ok(Some(e)) => got.push(e),
            Ok(None) => break,
            Err(e) => panic!("event stream failed: {e}"),
        }
    }
    got
}

fn tcp_rank(s: State) -> u8 {
    match s {
        State::Tcp(t) => t.value(),
        other => panic!("not a TCP state: {other:?}"),
    }
}

/// Real TCP flows on loopback: every flow's events are NEW first (SYN_SENT), states in
/// TCP order through ESTABLISHED and TIME_WAIT, DESTROY last once the shortened
/// TIME_WAIT expires, with counters and timestamps; the same sequence as `conntrack -E`.
#[test]
fn tcp_flows_stream_new_update_destroy_like_conntrack_tool() {
    const T: &str = "tcp_flows_stream_new_update_destroy_like_conntrack_tool";
    let Some(ns) = setup(T, &["conntrack"]) else {
        return;
    };
    let netns = ns.netns();
    set_accounting(&netns, true, true).expect("accounting on");
    assert_eq!(ns.sysctl("net.netfilter.nf_conntrack_acct"), "1");
    assert_eq!(ns.sysctl("net.netfilter.nf_conntrack_timestamp"), "1");
    ns.set_sysctl("net.netfilter.nf_conntrack_tcp_timeout_time_wait", "1");

    let mut opts = EventOptions::groups(EventGroups::CONNTRACK);
    opts.recv_timeout = Some(Duration::from_millis(100));
    let mut stream = EventStream::with_options(&netns, &opts).expect("event stream");
    let tool = EventTool::start(&ns);

    // Wait until the tool is subscribed: a marker entry must show up in its output.
    let mut ct = Conntrack::open(&netns).expect("client");
    let marker = udp(1, 1);
    let mut last_try = Instant::now() - Duration::from_secs(1);
    let seen = support::wait_for(Duration::from_secs(10), || {
        if tool.text().contains("<sport>1</sport>") {
            return Some(());
        }
        if last_try.elapsed() > Duration::from_millis(200) {
            // The tool may not have subscribed yet: make the NEW event again.
            let _ = ct.delete(&ipvs_conntrack::conntrack::DeleteRequest::orig(
                marker.clone(),
            ));
            ct.create(&CreateRequest::new(marker.clone(), 30))
                .expect("marker");
            last_try = Instant::now();
        }
        None
    });
    assert!(
        seen.is_some(),
        "conntrack -E printed nothing: {}",
        tool.text()
    );
    ct.flush(&FlushRequest::all()).expect("flush marker");

    let server: IpAddr = LOOPBACK.parse().unwrap();
    let flows: Vec<_> = (0..4)
        .map(|_| support::tcp_exchange(&ns, &ns, server))
        .collect();
    let key = |sport: u16, dport: u16| (sport, dport);
    let wanted: Vec<(u16, u16)> = flows
        .iter()
        .map(|f| key(f.client.port(), f.server.port()))
        .collect();

    // Collect until every flow has its DESTROY; dumping makes the kernel reap expired entries.
    let mut per_flow: BTreeMap<(u16, u16), Vec<Event>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let all_destroyed = |m: &BTreeMap<(u16, u16), Vec<Event>>| {
        wanted.iter().all(|k| {
            m.get(k).is_some_and(|v| {
                v.iter()
                    .any(|e| matches!(e, Event::Conntrack(c) if c.kind == EventKind::Destroy))
            })
        })
    };
    let mut last_dump = Instant::now();
    while !all_destroyed(&per_flow) && Instant::now() < deadline {
        match stream.next_event().expect("event") {
            Some(Event::Conntrack(c)) => {
                let k = key(
                    c.entry.orig.src_port.unwrap_or(0),
                    c.entry.orig.dst_port.unwrap_or(0),
                );
                if wanted.contains(&k) {
                    per_flow.entry(k).or_default().push(Event::Conntrack(c));
                }
            }
            Some(Event::Overrun(o)) => panic!("unexpected overrun {o:?}"),
            Some(Event::Expect(_)) | None => {}
        }
        if last_dump.elapsed() > Duration::from_millis(300) {
            ct.count().expect("count");
            ct.list(&DumpFilter::all())
                .expect("dump to reap expired entries");
            last_dump = Instant::now();
        }
    }
    assert!(
        all_destroyed(&per_flow),
        "not every flow was destroyed within 20 s: {per_flow:#?}"
    );
    // Let the tool print every DESTROY before stopping it.
    let printed = support::wait_for(Duration::from_secs(5), || {
        let evs = parse_tool_events(&tool.text());
        wanted
            .iter()
            .all(|k| {
                evs.iter()
                    .any(|t| t.kind == "destroy" && (t.sport, t.dport) == (Some(k.0), Some(k.1)))
            })
            .then_some(())
    });
    assert!(printed.is_some(), "conntrack -E missed DESTROY events");
    let xml = tool.stop();
    let tool_events = parse_tool_events(&xml);

    let mut compared = 0;
    for k in &wanted {
        let evs: Vec<_> = per_flow[k]
            .iter()
            .filter_map(|e| match e {
                Event::Conntrack(c) => Some(c),
                _ => None,
            })
            .collect();
        assert_eq!(evs[0].kind, EventKind::New, "flow {k:?}: {evs:#?}");
        assert_eq!(evs[0].entry.state, State::Tcp(TcpState::SynSent));
        assert_eq!(evs.last().map(|e| e.kind), Some(EventKind::Destroy));
        assert_eq!(
            evs.iter().filter(|e| e.kind == EventKind::New).count(),
            1,
            "flow {k:?}"
        );
        let ids: Vec<_> = evs.iter().map(|e| e.entry.id).collect();
        assert!(ids.iter().all(|i| *i == ids[0] && i.is_some()), "{ids:?}");
        // States appear in TCP order (events without protocol info carry no state).
        let states: Vec<State> = evs
            .iter()
            .map(|e| e.entry.state)
            .filter(|s| *s != State::Unknown)
            .collect();
        let ranks: Vec<u8> = states.iter().map(|s| tcp_rank(*s)).collect();
        assert!(
            ranks.windows(2).all(|w| w[0] <= w[1]),
            "flow {k:?}: states out of order {states:?}"
        );
        for must in [TcpState::Established, TcpState::TimeWait] {
            assert!(
                states.contains(&State::Tcp(must)),
                "flow {k:?}: no {must} in {states:?}"
            );
        }
        let destroy = &evs.last().expect("destroy").entry;
        let (o, r) = (
            destroy.counters_orig.expect("orig counters"),
            destroy.counters_reply.expect("reply counters"),
        );
        // SYN, ACK, data, FIN, ACK at least from the client; SYN-ACK, data, FIN from the server.
        assert!(o.packets >= 4 && r.packets >= 3, "counters {o:?} {r:?}");
        assert!(o.bytes > 4 && r.bytes > 4);
        let ts = destroy.timestamp.expect("timestamps");
        let (start, stop) = (ts.start.expect("start"), ts.stop.expect("stop"));
        assert!(stop > start, "stop {stop} <= start {start}");
        assert!(
            stop - start >= 900_000_000,
            "TIME_WAIT lasted at least ~1 s: {}",
            stop - start
        );

        // The same sequence as conntrack -E, event by event.
        let mine: Vec<(String, Option<String>)> = evs
            .iter()
            .map(|e| {
                (
                    e.kind.name().to_owned(),
                    e.entry.state.name().map(str::to_owned),
                )
            })
            .collect();
        let theirs: Vec<(String, Option<String>)> = tool_events
            .iter()
            .filter(|t| (t.sport, t.dport) == (Some(k.0), Some(k.1)))
            .map(|t| (t.kind.clone(), t.state.clone()))
            .collect();
        assert_eq!(mine, theirs, "flow {k:?}: library vs conntrack -E");
        compared += mine.len();
    }
    assert!(compared >= 4 * 4, "compared {compared} events");
    eprintln!("{T}: {compared} events of 4 flows identical to conntrack -E");
}

/// A burst into a tiny receive buffer: the stream reports an overrun, keeps delivering
/// afterwards, and a resync brings the caller's view back to the table's content.
#[test]
fn overrun_is_reported_then_stream_continues_and_resync_repairs_the_view() {
    const T: &str = "overrun_is_reported_then_stream_continues_and_resync_repairs_the_view";
    let Some(ns) = setup(T, &[]) else {
        return;
    };
    let netns = ns.netns();
    let mut opts = EventOptions::groups(EventGroups::NEW | EventGroups::DESTROY);
    opts.rcvbuf = 4096;
    opts.recv_timeout = Some(Duration::from_millis(200));
    opts.join_timeouts = false;
    let mut stream = EventStream::with_options(&netns, &opts).expect("event stream");
    let mut view = TableView::new();
    let mut ct = Conntrack::open(&netns).expect("client");
    ct.set_join_timeouts(false);

    // Burst: 3000 inserts while nobody reads.
    const BURST: u16 = 3000;
    let mut batch = Batch::new();
    for p in 0..BURST {
        batch
            .push(&CreateRequest::new(udp(10_000 + p, 53), 600))
            .expect("valid");
    }
    let report = ct.execute_batch(&batch).expect("batch");
    assert!(report.all_succeeded(), "{report:?}");

    let received = drain_idle(&mut stream, Duration::from_secs(10));
    let overruns: Vec<_> = received
        .iter()
        .filter_map(|e| match e {
            Event::Overrun(o) => Some(*o),
            _ => None,
        })
        .collect();
    assert!(
        !overruns.is_empty(),
        "no overrun reported for a 3000-event burst"
    );
    assert_eq!(overruns[0].failed_receives, 1);
    assert!(overruns[0].at >= overruns[0].since);
    assert_eq!(stream.stats().overruns, overruns.len() as u64);
    let news = received
        .iter()
        .filter(|e| matches!(e, Event::Conntrack(c) if c.kind == EventKind::New))
        .count();
    assert!(
        news < usize::from(BURST),
        "a 4 KiB buffer cannot hold {BURST} events, yet {news} arrived"
    );
    for e in &received {
        view.apply(e);
    }
    assert_eq!(view.len(), news);

    // The stream still delivers: five more entries, one at a time, each seen.
    for p in 0..5u16 {
        let t = udp(20_000 + p, 53);
        ct.create(&CreateRequest::new(t.clone(), 600))
            .expect("create");
        let got = read_until(&mut stream, Duration::from_secs(5), |got| {
            got.iter()
                .any(|e| matches!(e, Event::Conntrack(c) if c.entry.orig == t))
        });
        let ev = got
            .iter()
            .find(|e| matches!(e, Event::Conntrack(c) if c.entry.orig == t))
            .unwrap_or_else(|| panic!("no NEW event for {t:?} after the overrun: {got:?}"));
        assert!(matches!(ev, Event::Conntrack(c) if c.kind == EventKind::New));
        for e in &got {
            view.apply(e);
        }
    }
    let before = view.len();

    // Resync: every missed entry comes back as Added; the view equals the table.
    let changes = stream.resync(&mut view).expect("resync");
    let added = changes
        .iter()
        .filter(|c| matches!(c, ipvs_conntrack::conntrack::Change::Added(_)))
        .count();
    assert_eq!(
        added,
        usize::from(BURST) + 5 - before,
        "{} changes",
        changes.len()
    );
    assert_eq!(view.len(), usize::from(BURST) + 5);
    let table = TableView::from_table(&mut ct, &DumpFilter::all()).expect("dump");
    assert_eq!(view.keys(), table.keys());

    // Deletions missed in an overrun come back as Removed.
    ct.flush(&FlushRequest::matching(
        DumpFilter::all().family(ipvs_conntrack::conntrack::Family::Ipv4),
    ))
    .expect("flush");
    let after = drain_idle(&mut stream, Duration::from_secs(10));
    assert!(
        after.iter().any(|e| matches!(e, Event::Overrun(_))),
        "flushing {} entries into a 4 KiB buffer reported no overrun",
        view.len()
    );
    let mut destroyed = 0;
    for e in &after {
        if matches!(e, Event::Conntrack(c) if c.kind == EventKind::Destroy) && view.apply(e) {
            destroyed += 1;
        }
    }
    let changes = stream.resync(&mut view).expect("resync");
    let removed = changes
        .iter()
        .filter(|c| matches!(c, ipvs_conntrack::conntrack::Change::Removed(_)))
        .count();
    assert_eq!(removed + destroyed, usize::from(BURST) + 5);
    assert!(view.is_empty());
    eprintln!(
        "{T}: burst of {BURST}: {news} events received, {} overrun(s); resync added {added}; \
         flush: {destroyed} destroy events, {removed} removals found by resync",
        overruns.len()
    );
}

/// The raw-message filter passes only UDP events (TCP ones are counted, not decoded), in
/// reliable mode (NETLINK_BROADCAST_ERROR + NETLINK_NO_ENOBUFS).
#[test]
fn protocol_filter_and_reliable_mode() {
    const T: &str = "protocol_filter_and_reliable_mode";
    let Some(ns) = setup(T, &[]) else {
        return;
    };
    let netns = ns.netns();
    let opts = EventOptions {
        groups: EventGroups::NEW,
        reliable: true,
        recv_timeout: Some(Duration::from_millis(200)),
        filter: EventFilter::all().protocol(IPPROTO_UDP),
        ..EventOptions::default()
    };
    let mut stream = EventStream::with_options(&netns, &opts).expect("stream");
    assert!(stream
        .socket()
        .inner()
        .get_broadcast_error()
        .expect("getsockopt"));
    assert!(stream
        .socket()
        .inner()
        .get_no_enobufs()
        .expect("getsockopt"));
    let mut ct = Conntrack::open(&netns).expect("client");
    for p in 0..5u16 {
        let tcp = Tuple::with_ports(
            IPPROTO_TCP,
            "10.77.0.1".parse().unwrap(),
            30_000 + p,
            "10.77.0.2".parse().unwrap(),
            80,
        );
        ct.create(&CreateRequest::new(tcp, 60)).expect("tcp");
        ct.create(&CreateRequest::new(udp(30_000 + p, 53), 60))
            .expect("udp");
    }
    let got = read_until(&mut stream, Duration::from_secs(5), |g| g.len() >= 5);
    // Anything else still queued would show up now.
    let extra = drain_idle(&mut stream, Duration::from_secs(2));
    assert_eq!(got.len(), 5, "{got:?}");
    assert!(extra.is_empty(), "{extra:?}");
    for (i, e) in got.iter().enumerate() {
        match e {
            Event::Conntrack(c) => {
                assert_eq!(c.kind, EventKind::New);
                assert_eq!(c.entry.orig, udp(30_000 + i as u16, 53));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let s = stream.stats();
    assert_eq!((s.received, s.filtered), (10, 5), "{s:?}");
}

/// Throughput: events per second while 20 000 entries are inserted by batch.
#[test]
fn event_throughput() {
    const T: &str = "event_throughput";
    let Some(ns) = setup(T, &[]) else {
        return;
    };
    let netns = ns.netns();
    const N: u16 = 20_000;
    let opts = EventOptions {
        groups: EventGroups::NEW,
        rcvbuf: 64 << 20,
        recv_timeout: Some(Duration::from_millis(500)),
        join_timeouts: false,
        ..EventOptions::default()
    };
    let mut stream = EventStream::with_options(&netns, &opts).expect("stream");
    let writer_ns = netns.clone();
    let writer = std::thread::spawn(move || {
        let mut ct = Conntrack::open(&writer_ns).expect("client");
        let mut batch = Batch::with_capacity(usize::from(N), 120);
        for p in 0..N {
            batch
                .push(&CreateRequest::new(udp(p + 1, 9), 600))
                .expect("valid");
        }
        ct.execute_batch(&batch).expect("batch")
    });
    let start = Instant::now();
    // Zero-copy reading: each view borrows the receive buffer; ports identify the entries.
    let mut seen = vec![false; usize::from(N) + 1];
    let mut count = 0usize;
    let deadline = start + Duration::from_secs(30);
    let mut overruns = 0;
    while count < usize::from(N) && Instant::now() < deadline {
        match stream.next_view().expect("event") {
            Some(EventView::Conntrack { kind, entry }) => {
                assert_eq!(kind, EventKind::New);
                let port = entry
                    .orig()
                    .expect("decodes")
                    .and_then(|t| t.src_port())
                    .expect("port");
                let slot = seen.get_mut(usize::from(port)).expect("port in range");
                if !*slot {
                    *slot = true;
                    count += 1;
                }
            }
            Some(EventView::Overrun(_)) => overruns += 1,
            _ => {}
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let report = writer.join().expect("writer thread");
    assert!(report.all_succeeded(), "{report:?}");
    assert_eq!(overruns, 0, "a 64 MiB buffer overflowed");
    assert_eq!(count, usize::from(N));
    assert!(!seen[0] && seen[1..].iter().all(|s| *s));

    // Reading alone: N more events queued first, then decoded into owned events.
    let mut ct = Conntrack::open(&netns).expect("client");
    let mut batch = Batch::with_capacity(usize::from(N), 120);
    for p in 0..N {
        batch
            .push(&CreateRequest::new(udp(p + 1, 10), 600))
            .expect("valid");
    }
    assert!(ct.execute_batch(&batch).expect("batch").all_succeeded());
    let start = Instant::now();
    let mut owned = 0usize;
    while owned < usize::from(N) && start.elapsed() < Duration::from_secs(30) {
        match stream.next_event().expect("event") {
            Some(Event::Conntrack(c)) => {
                assert_eq!(c.entry.orig.dst_port, Some(10));
                owned += 1;
            }
            Some(Event::Overrun(o)) => panic!("overrun {o:?}"),
            _ => {}
        }
    }
    let read_secs = start.elapsed().as_secs_f64();
    assert_eq!(owned, usize::from(N));
    eprintln!(
        "{T}: {N} NEW events while inserting: {secs:.3} s = {:.0} events/s (zero-copy views; \
         batch insert {:.0} inserts/s); {N} queued events read as owned events: {:.0} events/s",
        f64::from(N) / secs,
        report.rate(),
        f64::from(N) / read_secs
    );
}
