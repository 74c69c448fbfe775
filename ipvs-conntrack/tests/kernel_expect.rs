//! Expectations against the running kernel, each test in its own network namespace:
//! create / dump / get / update / delete / flush compared with `conntrack -L expect -o
//! xml`, expectation events and per-CPU counters, and a real expectation made by the
//! FTP helper for a `PORT` command on a control connection, the helper being attached
//! by an nft `ct helper` rule.
//!
//! Needs root, `ip`, `nft` and `conntrack`; without them each test prints `SKIPPED`
//! (or fails when CI=true). The FTP test also needs the kernel's FTP helper.

mod support;

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use ipvs_conntrack::conntrack::expect::exact_mask;
use ipvs_conntrack::conntrack::tuple::{Tuple, IPPROTO_TCP};
use ipvs_conntrack::conntrack::{
    Conntrack, CreateRequest, Event, EventGroups, EventKind, EventOptions, EventStream,
    ExpectCpuStats, ExpectDeleteRequest, ExpectFlags, ExpectNat, ExpectRequest, Expectation,
};
use ipvs_conntrack::Error;
use support::{setup, TestNs};

const EEXIST: i32 = 17;
const ENOENT: i32 = 2;
const EINVAL: i32 = 22;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(src: &str, sport: u16, dst: &str, dport: u16) -> Tuple {
    Tuple::with_ports(IPPROTO_TCP, ip(src), sport, ip(dst), dport)
}

fn kernel_errno(r: Result<(), Error>) -> i32 {
    match r {
        Err(Error::Kernel(k)) => k.errno,
        other => panic!("expected a kernel error, got {other:?}"),
    }
}

/// One `<flow>` of `conntrack -L expect -o xml`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct XmlExpect {
    expected: (Option<IpAddr>, Option<IpAddr>, Option<u16>, Option<u16>),
    mask: (Option<IpAddr>, Option<IpAddr>, Option<u16>, Option<u16>),
    master: (Option<IpAddr>, Option<IpAddr>, Option<u16>, Option<u16>),
    helper: Option<String>,
    timeout: Option<u32>,
    class: Option<u32>,
}

fn parse_expect_xml(xml: &str) -> Vec<XmlExpect> {
    use quick_xml::events::Event as X;
    let mut r = quick_xml::Reader::from_str(xml);
    r.config_mut().trim_text(true);
    let mut out = Vec::new();
    let mut cur: Option<XmlExpect> = None;
    let mut stack: Vec<String> = Vec::new();
    // Bounded by the input: every event consumes input.
    loop {
        match r.read_event() {
            Ok(X::Start(e)) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if name == "flow" {
                    cur = Some(XmlExpect::default());
                }
                stack.push(name);
            }
            Ok(X::End(e)) => {
                stack.pop();
                if e.name().as_ref() == b"flow" {
                    out.extend(cur.take());
                }
            }
            Ok(X::Text(t)) => {
                let text = t.unescape().map(|s| s.into_owned()).unwrap_or_default();
                let Some(c) = cur.as_mut() else { continue };
                let n = stack.len();
                let el = stack.last().map(String::as_str).unwrap_or("");
                let group = n
                    .checked_sub(2)
                    .and_then(|i| stack.get(i))
                    .map(String::as_str);
                let slot = match group {
                    Some("expected") => Some(&mut c.expected),
                    Some("mask") => Some(&mut c.mask),
                    Some("master") => Some(&mut c.master),
                    _ => None,
                };
                match (slot, el) {
                    (Some(s), "src") => s.0 = text.parse().ok(),
                    (Some(s), "dst") => s.1 = text.parse().ok(),
                    (Some(s), "sport") => s.2 = text.parse().ok(),
                    (Some(s), "dport") => s.3 = text.parse().ok(),
                    (None, "helper-name") => c.helper = Some(text),
                    (None, "timeout") => c.timeout = text.parse().ok(),
                    (None, "class") => c.class = text.parse().ok(),
                    _ => {}
                }
            }
            Ok(X::Eof) | Err(_) => break,
            _ => {}
        }
    }
    out
}

fn quad(t: &Tuple) -> (Option<IpAddr>, Option<IpAddr>, Option<u16>, Option<u16>) {
    (Some(t.src), Some(t.dst), t.src_port, t.dst_port)
}

/// Compares every expectation with the tool's view; returns the number compared.
fn compare_with_tool(ns: &TestNs, lib: &[Expectation]) -> usize {
    let xml = ns.exec_ok(&["conntrack", "-L", "expect", "-o", "xml"]);
    let tool = parse_expect_xml(&xml);
    assert_eq!(tool.len(), lib.len(), "{xml}");
    for e in lib {
        let x = tool
            .iter()
            .find(|x| x.expected == quad(&e.tuple))
            .unwrap_or_else(|| panic!("conntrack -L expect lacks {:?}\n{xml}", e.tuple));
        assert_eq!(x.mask, quad(&e.mask));
        assert_eq!(x.master, quad(&e.master));
        assert_eq!(x.helper, e.helper);
        assert_eq!(x.class, e.class);
        let diff = e.timeout.unwrap_or(0).abs_diff(x.timeout.unwrap_or(0));
        assert!(diff <= 2, "timeout {:?} vs {:?}", e.timeout, x.timeout);
    }
    lib.len()
}

fn drain(stream: &mut EventStream) -> Vec<Event> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match stream.next_event().expect("event") {
            Some(e) => got.push(e),
            None => break,
        }
    }
    got
}

fn exp_events(evs: &[Event], kind: EventKind) -> Vec<Tuple> {
    evs.iter()
        .filter_map(|e| match e {
            Event::Expect(x) if x.kind == kind => Some(x.expectation.tuple.clone()),
            _ => None,
        })
        .collect()
}

/// Expectations created and deleted, summed over CPUs.
fn created(stats: &[ExpectCpuStats]) -> (u32, u32) {
    (
        stats.iter().filter_map(|s| s.create).sum(),
        stats.iter().filter_map(|s| s.delete).sum(),
    )
}

/// Expectations created through the library: dumped (and equal to `conntrack -L expect`),
/// fetched, updated, deleted and flushed; each step seen as an event and in the counters.
#[test]
fn expectations_create_get_update_delete_flush() {
    const T: &str = "expectations_create_get_update_delete_flush";
    let Some(ns) = setup(T, &["conntrack"]) else {
        return;
    };
    let netns = ns.netns();
    let mut ct = Conntrack::open(&netns).expect("client");
    let mut opts = EventOptions::groups(EventGroups::EXPECT);
    opts.recv_timeout = Some(Duration::from_millis(200));
    opts.join_timeouts = false;
    let mut stream = EventStream::with_options(&netns, &opts).expect("events");
    let (c0, d0) = created(&ct.expect_cpu_stats().expect("stats"));

    // The FTP helper allows one expectation per master: three masters.
    let masters: Vec<Tuple> = (0..3)
        .map(|i| tcp("10.8.0.1", 40000 + i, "10.8.0.2", 21))
        .collect();
    for m in &masters {
        ct.create(&CreateRequest::new(m.clone(), 600).helper("ftp"))
            .expect("master");
    }
    let data = |i: u16| tcp("10.8.0.2", 0, "10.8.0.1", 50000 + i);
    let mut any_port = exact_mask(&data(0));
    any_port.src_port = Some(0);
    let requests = [
        ExpectRequest::new(masters[0].clone(), data(0), 60)
            .helper("ftp")
            .mask(any_port.clone()),
        ExpectRequest::new(masters[1].clone(), data(1), 60)
            .helper("ftp")
            .flags(ExpectFlags::PERMANENT)
            .class(0),
        ExpectRequest::new(masters[2].clone(), data(2), 60)
            .helper("ftp")
            .nat(ExpectNat {
                dir: 1,
                tuple: tcp("10.8.0.9", 2121, "0.0.0.0", 0),
            })
            .expect_fn("nat-follow-master"),
    ];
    for r in &requests {
        ct.create_expectation(r).expect("create expectation");
    }
    // Refusals: same tuple again, a class the helper lacks, a master that does not exist.
    assert_eq!(kernel_errno(ct.create_expectation(&requests[0])), EEXIST);
    let bad_class = ExpectRequest::new(masters[0].clone(), data(9), 60)
        .helper("ftp")
        .class(1);
    assert_eq!(kernel_errno(ct.create_expectation(&bad_class)), EINVAL);
    let orphan = ExpectRequest::new(tcp("10.8.0.7", 1, "10.8.0.2", 21), data(8), 60);
    assert_eq!(kernel_errno(ct.create_expectation(&orphan)), ENOENT);

    let all = ct.expectations(None).expect("dump");
    assert_eq!(all.len(), 3);
    let by_port = |p: u16| {
        all.iter()
            .find(|e| e.tuple.dst_port == Some(p))
            .cloned()
            .unwrap_or_else(|| panic!("no expectation for port {p}"))
    };
    let (e0, e1, e2) = (by_port(50000), by_port(50001), by_port(50002));
    for (e, m) in [(&e0, &masters[0]), (&e1, &masters[1]), (&e2, &masters[2])] {
        assert_eq!(&e.master, m);
        assert_eq!(e.helper.as_deref(), Some("ftp"));
        assert_eq!(e.class, Some(0));
        assert!(e.id.is_some());
        // The helper's policy sets the timeout of new expectations (FTP: 300 s).
        assert!(
            e.timeout.is_some_and(|t| (295..=300).contains(&t)),
            "{:?}",
            e.timeout
        );
    }
    assert_eq!(e0.tuple, data(0));
    assert_eq!(
        (e0.mask.src_port, e0.mask.dst_port),
        (Some(0), Some(0xffff))
    );
    assert_eq!(e0.mask.src, ip("255.255.255.255"));
    assert_eq!(e1.flags, Some(ExpectFlags::PERMANENT));
    let nat = e2.nat.clone().expect("nat");
    assert_eq!(
        (nat.dir, nat.tuple.src, nat.tuple.src_port),
        (1, ip("10.8.0.9"), Some(2121))
    );
    assert_eq!(e2.expect_fn.as_deref(), Some("nat-follow-master"));
    assert_eq!(compare_with_tool(&ns, &all), 3);

    // Get, per-master dump, update of the timeout.
    let untimed = |e: Expectation| Expectation { timeout: None, ..e };
    let got = ct.get_expectation(&data(0), None).expect("get");
    assert_eq!(untimed(got), untimed(e0.clone()));
    let of_master: Vec<_> = ct
        .expectations_of(&masters[1], None)
        .expect("by master")
        .into_iter()
        .map(untimed)
        .collect();
    assert_eq!(of_master, vec![untimed(e1.clone())]);
    let mut upd = requests[0].clone().as_update();
    upd.timeout = 1000;
    ct.create_expectation(&upd).expect("update");
    let t = ct.get_expectation(&data(0), None).expect("get").timeout;
    assert!(t.is_some_and(|t| (998..=1000).contains(&t)), "{t:?}");

    // Events and counters of the creations.
    let evs = drain(&mut stream);
    let mut news = exp_events(&evs, EventKind::New);
    news.sort_by_key(|t| t.dst_port);
    assert_eq!(news, vec![data(0), data(1), data(2)]);
    let (c1, _) = created(&ct.expect_cpu_stats().expect("stats"));
    assert_eq!(c1 - c0, 3);

    // Delete: a wrong id changes nothing; the right one removes exactly that one.
    let mut wrong = ExpectDeleteRequest::expectation(&e0);
    wrong.id = e0.id.map(|i| i.wrapping_add(1));
    assert_eq!(kernel_errno(ct.delete_expectation(&wrong)), ENOENT);
    ct.delete_expectation(&ExpectDeleteRequest::expectation(&e0))
        .expect("delete");
    assert_eq!(
        kernel_errno(ct.delete_expectation(&ExpectDeleteRequest::new(data(0)))),
        ENOENT
    );
    let left = ct.expectations(None).expect("dump");
    assert_eq!(left.len(), 2);
    assert_eq!(compare_with_tool(&ns, &left), 2);
    // Flush by helper name, then everything (nothing left either way).
    ct.flush_expectations(Some("sip"))
        .expect("flush other helper");
    assert_eq!(ct.expectations(None).expect("dump").len(), 2);
    ct.flush_expectations(Some("ftp")).expect("flush ftp");
    assert!(ct.expectations(None).expect("dump").is_empty());
    ct.create_expectation(&requests[0]).expect("again");
    ct.flush_expectations(None).expect("flush all");
    assert!(ct.expectations(None).expect("dump").is_empty());

    let evs = drain(&mut stream);
    let mut gone = exp_events(&evs, EventKind::Destroy);
    gone.sort_by_key(|t| t.dst_port);
    assert_eq!(gone, vec![data(0), data(0), data(1), data(2)]);
    assert_eq!(exp_events(&evs, EventKind::New), vec![data(0)]);
    let (c2, d2) = created(&ct.expect_cpu_stats().expect("stats"));
    assert_eq!((c2 - c0, d2 - d0), (4, 4));
}

/// A real FTP control connection in a namespace whose nft ruleset attaches the FTP
/// helper: the client's `PORT` command makes the kernel expect the data connection.
#[test]
fn ftp_helper_expectation_from_a_real_control_connection() {
    const T: &str = "ftp_helper_expectation_from_a_real_control_connection";
    if !std::path::Path::new("/sys/module/nf_conntrack_ftp").exists() {
        support::skip(
            T,
            "the kernel has no FTP conntrack helper (nf_conntrack_ftp)",
        );
        return;
    }
    let Some(ns) = setup(T, &["conntrack"]) else {
        return;
    };
    ns.nft(
        "add table inet h8ftp; \
         add ct helper inet h8ftp ftp-std { type \"ftp\" protocol tcp; }; \
         add chain inet h8ftp out { type filter hook output priority 0; }; \
         add rule inet h8ftp out tcp dport 21 ct helper set \"ftp-std\"",
    );
    // Client and server in two namespaces: on loopback the helper would see each packet
    // twice (leaving and entering) and replace its own expectation.
    let server_ns = TestNs::create().expect("server namespace");
    let addrs = support::veth_pair(&ns, &server_ns, 21);
    let netns = ns.netns();
    let mut opts = EventOptions::groups(EventGroups::EXP_NEW);
    opts.recv_timeout = Some(Duration::from_millis(200));
    let mut stream = EventStream::with_options(&netns, &opts).expect("events");

    let server_ip = IpAddr::V4(addrs.b4);
    let listener = server_ns.run(move || TcpListener::bind(SocketAddr::new(server_ip, 21)));
    let server: SocketAddr = listener.local_addr().expect("addr");
    let mut client = ns.run(move || TcpStream::connect_timeout(&server, support::IO_TIMEOUT));
    let (mut conn, _) = listener.accept().expect("accept");
    conn.write_all(b"220 ipvsct test server\r\n")
        .expect("banner");
    // The helper parses a direction's lines only after it has seen one line end in it,
    // as in a real session: USER first, then (in its own segment) a PORT command
    // announcing a data connection to the client's address, port 50000 (195 * 256 + 80).
    let [a, b, c, d] = addrs.a4.octets();
    client.set_nodelay(true).expect("nodelay");
    client.write_all(b"USER anonymous\r\n").expect("USER");
    std::thread::sleep(Duration::from_millis(50));
    client
        .write_all(format!("PORT {a},{b},{c},{d},195,80\r\n").as_bytes())
        .expect("PORT command");
    let client_port = client.local_addr().expect("addr").port();
    let (client_ip, server_ip) = (addrs.a4.to_string(), addrs.b4.to_string());

    let mut seen = None;
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.is_none() && Instant::now() < deadline {
        if let Some(Event::Expect(x)) = stream.next_event().expect("event") {
            seen = Some(x);
        }
    }
    let ev = seen.expect("no expectation event after the PORT command");
    assert_eq!(ev.kind, EventKind::New);
    let mut ct = Conntrack::open(&netns).expect("client");
    let all = ct.expectations(None).expect("dump");
    assert_eq!(all.len(), 1, "{all:?}");
    let e = &all[0];
    // The event and the dump describe the same expectation (the timeout ticks meanwhile).
    let untimed = |x: &Expectation| Expectation {
        message: e.message,
        timeout: None,
        ..x.clone()
    };
    assert_eq!(untimed(e), untimed(&ev.expectation));
    assert_eq!(e.helper.as_deref(), Some("ftp"));
    assert_eq!(e.master, tcp(&client_ip, client_port, &server_ip, 21));
    // Active mode: the server connects from any port to the announced address and port.
    assert_eq!(
        (e.tuple.dst, e.tuple.dst_port),
        (ip(&client_ip), Some(50000))
    );
    assert_eq!((e.tuple.src, e.mask.src_port), (ip(&server_ip), Some(0)));
    assert_eq!(compare_with_tool(&ns, &all), 1);
    // The master entry carries the helper too.
    let master = ct
        .get(&tcp(&client_ip, client_port, &server_ip, 21))
        .expect("master entry");
    assert_eq!(master.helper.map(|h| h.name), Some("ftp".to_owned()));
    drop((client, conn));
}
