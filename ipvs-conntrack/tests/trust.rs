//! The trust boundary, against the running kernel (root, network namespaces):
//!
//! * (a) only the kernel may answer: forged conntrack messages sent to the library's
//!   socket by a second root-owned netlink socket never appear as data, and are counted;
//! * (b) replies of an earlier, abandoned request are never mixed into a later one;
//! * (c) namespace switching never leaks into the calling thread, also when it fails;
//! * (d) without CAP_NET_ADMIN every call fails with `Error::Permission` naming the
//!   capability, and nothing partial is returned;
//! * (e) dumps racing with inserts and deletes either complete or end with
//!   `Error::DumpInterrupted` (ctnetlink never sets NLM_F_DUMP_INTR, see below);
//! * (f) every blocking receive honours `SocketOptions::recv_timeout`.
//!
//! Without root (or where `ip netns add` fails) each test prints `SKIPPED: …` and passes,
//! unless CI=true, where it fails.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use ipvs_conntrack::conntrack::tuple::IPPROTO_UDP;
use ipvs_conntrack::conntrack::wire::*;
use ipvs_conntrack::conntrack::{Conntrack, CreateRequest, DumpFilter, Entry, Tuple};
use ipvs_conntrack::netlink::emit::MessageBuilder;
use ipvs_conntrack::netlink::frame::flags::{NLM_F_ACK, NLM_F_MULTI, NLM_F_REQUEST};
use ipvs_conntrack::netlink::frame::msg_type::{NLMSG_DONE, NLMSG_NOOP};
use ipvs_conntrack::netlink::nfnetlink::{message_type, NFNL_SUBSYS_CTNETLINK};
use ipvs_conntrack::socket::{SocketOptions, NETLINK_NETFILTER};
use ipvs_conntrack::{Error, Netns};
use support::TestNs;

/// A UDP tuple 10.`net`.`hi`.`lo`:`port` → 10.`net`.255.254:53 (data only: no traffic is sent).
fn udp(net: u8, i: u16, port: u16) -> Tuple {
    let [hi, lo] = i.to_be_bytes();
    Tuple::with_ports(
        IPPROTO_UDP,
        IpAddr::V4(Ipv4Addr::new(10, net, hi, lo)),
        port,
        IpAddr::V4(Ipv4Addr::new(10, net, 255, 254)),
        53,
    )
}

/// A client in `ns` with a short receive timeout and no timeout-policy reads (so that
/// every request is exactly one sequence number).
fn client(ns: &TestNs) -> Conntrack {
    let mut ct = Conntrack::with_options(
        &ns.netns(),
        &SocketOptions {
            recv_timeout: Some(Duration::from_secs(5)),
            ..SocketOptions::default()
        },
    )
    .expect("open conntrack client");
    ct.set_join_timeouts(false);
    ct
}

/// Inserts `n` UDP entries 10.`net`.x.y with a 600 s timeout.
fn insert(ct: &mut Conntrack, net: u8, n: u16) {
    for i in 0..n {
        ct.create(&CreateRequest::new(udp(net, i, 1000 + i), 600))
            .unwrap_or_else(|e| panic!("create entry {i}: {e}"));
    }
}

fn is_net(e: &Entry, net: u8) -> bool {
    matches!(e.orig.src, IpAddr::V4(a) if a.octets()[..2] == [10, net])
}

// ---------------------------------------------------------------------------------------
// (a) forged messages

/// A forged ctnetlink entry message (UDP 10.66.66.66 → 10.66.66.67) with sequence `seq`,
/// claiming port id 0 (the kernel) in its header.
fn forged_entry(seq: u32) -> Vec<u8> {
    let mut b = MessageBuilder::new(
        message_type(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_NEW),
        NLM_F_MULTI,
    );
    b.put_raw(&[2, 0, 0, 0]);
    let t = Tuple::with_ports(
        IPPROTO_UDP,
        IpAddr::V4(Ipv4Addr::new(10, 66, 66, 66)),
        6666,
        IpAddr::V4(Ipv4Addr::new(10, 66, 66, 67)),
        6667,
    );
    t.emit(&mut b, CTA_TUPLE_ORIG);
    t.reversed().emit(&mut b, CTA_TUPLE_REPLY);
    b.put_be32(CTA_TIMEOUT, 600).put_be32(CTA_ID, 0x0666_0666);
    let mut msg = b.finish();
    msg[8..12].copy_from_slice(&seq.to_ne_bytes());
    msg
}

/// A forged NLMSG_DONE for sequence `seq` (would end a dump early if accepted).
fn forged_done(seq: u32) -> Vec<u8> {
    let mut b = MessageBuilder::new(NLMSG_DONE, NLM_F_MULTI);
    b.put_raw(&0i32.to_ne_bytes());
    let mut msg = b.finish();
    msg[8..12].copy_from_slice(&seq.to_ne_bytes());
    msg
}

#[test]
fn forged_messages_from_another_socket_are_dropped_and_counted() {
    let test = "forged_messages_from_another_socket_are_dropped_and_counted";
    let Some(ns) = support::setup(test, &[]) else {
        return;
    };
    let mut ct = client(&ns);
    let real: usize = 600;
    insert(&mut ct, 71, real as u16);
    let port = ct.socket().port();
    assert_ne!(port, 0);

    // The forger: a second root-owned NETLINK_NETFILTER socket in the same namespace,
    // bound to its own port.
    let forger = ns
        .netns()
        .run(|| {
            let mut s = netlink_sys::Socket::new(NETLINK_NETFILTER).map_err(|e| Error::Io {
                op: "forger socket",
                source: e,
            })?;
            s.bind_auto().map_err(|e| Error::Io {
                op: "forger bind",
                source: e,
            })?;
            Ok(s)
        })
        .expect("forger socket");
    let mut forger_addr = netlink_sys::SocketAddr::new(0, 0);
    forger
        .get_address(&mut forger_addr)
        .expect("forger address");
    assert_ne!(forger_addr.port_number(), 0);
    assert_ne!(forger_addr.port_number(), port);
    let to = netlink_sys::SocketAddr::new(port, 0);
    let mut sent = 0u64;
    let mut send = |msg: &[u8]| {
        let n = forger
            .send_to(msg, &to, 0)
            .expect("unicast to the library's port");
        assert_eq!(n, msg.len());
        sent += 1;
    };

    // Right before the dump: with the very sequence number the dump will use.
    let seq = ct.socket_mut().next_sequence().wrapping_add(1).max(1);
    send(&forged_entry(seq));
    send(&forged_done(seq));
    assert_eq!(ct.socket().dropped_foreign(), 0);

    let mut seen = 0usize;
    let mut forged_seen = 0usize;
    {
        let mut dump = ct.dump(&DumpFilter::all()).expect("start dump");
        // While the dump runs: after its first entry, more forgeries.
        let first = dump.next().expect("a first entry").expect("a valid entry");
        assert!(is_net(&first, 71), "{first:?}");
        seen += 1;
        send(&forged_entry(seq));
        send(&forged_done(seq));
        for e in dump.by_ref() {
            let e = e.expect("dump entry");
            if e.orig.src == IpAddr::V4(Ipv4Addr::new(10, 66, 66, 66)) || e.id == Some(0x0666_0666)
            {
                forged_seen += 1;
            }
            assert!(is_net(&e, 71), "unexpected entry {e:?}");
            seen += 1;
        }
    }
    assert_eq!(forged_seen, 0, "a forged entry was returned as data");
    assert_eq!(
        seen, real,
        "the dump is complete (a forged DONE did not end it)"
    );
    // Forgeries still queued after the dump are read (and dropped) by the next request.
    let stats = ct.count().expect("count");
    assert_eq!(stats.entries as usize, real);
    assert_eq!(
        ct.socket().dropped_foreign(),
        sent,
        "every forged message is counted as foreign"
    );
    assert_eq!(sent, 4);
}

// ---------------------------------------------------------------------------------------
// (b) sequence numbers

#[test]
fn stale_replies_are_never_mixed_into_a_later_request() {
    let test = "stale_replies_are_never_mixed_into_a_later_request";
    let Some(ns) = support::setup(test, &[]) else {
        return;
    };
    let mut ct = client(&ns);
    let real: usize = 600;
    insert(&mut ct, 72, real as u16);

    // 1. A request whose answer is never read: IPCTNL_MSG_CT_GET_STATS with an ACK.
    let mut b = MessageBuilder::new(
        message_type(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_STATS),
        NLM_F_REQUEST | NLM_F_ACK,
    );
    b.put_raw(&[0, 0, 0, 0]);
    let mut req = b.finish();
    ct.socket_mut()
        .send(&mut req, "abandoned stats")
        .expect("send");
    let stray0 = ct.socket().dropped_stray();
    let all = ct.list(&DumpFilter::all()).expect("later dump");
    assert_eq!(all.len(), real);
    assert!(all.iter().all(|e| is_net(e, 72)));
    // The statistics message and its ACK were skipped, not decoded as entries.
    assert_eq!(ct.socket().dropped_stray() - stray0, 2);

    // 2. A dump abandoned after one entry (dropped without `stop`), then a get.
    let stray1 = ct.socket().dropped_stray();
    {
        let mut dump = ct.dump(&DumpFilter::all()).expect("dump");
        let first = dump.next().expect("entry").expect("valid entry");
        assert!(is_net(&first, 72));
    }
    let want = udp(72, 123, 1123);
    let got = ct.get(&want).expect("get after an abandoned dump");
    assert_eq!(got.orig, want);
    assert_eq!(got.reply, want.reversed());
    let dropped = ct.socket().dropped_stray() - stray1;
    assert!(
        dropped > 0,
        "the abandoned dump's replies were skipped ({dropped})"
    );

    // 3. A later dump: the kernel may still be running the abandoned one (EBUSY); either
    //    way no entry of the old dump is mixed in: a complete dump has each entry once.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut busy = 0;
    let later = loop {
        match ct.list(&DumpFilter::all()) {
            Ok(v) => break v,
            Err(Error::Kernel(k)) if k.errno == 16 && Instant::now() < deadline => busy += 1,
            Err(e) => panic!("later dump: {e}"),
        }
    };
    eprintln!("later dump after {busy} EBUSY answers");
    let mut ids: Vec<_> = later.iter().map(|e| e.orig.src_port).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(later.len(), real, "no stale entries mixed in");
    assert_eq!(ids.len(), real, "each entry once");
}

// ---------------------------------------------------------------------------------------
// (c) namespaces

/// Runs `f` and checks that the calling thread is in the same network namespace after it.
fn same_ns<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let before = support::thread_netns_inode();
    let r = f();
    assert_eq!(
        support::thread_netns_inode(),
        before,
        "{what} moved the calling thread to another network namespace"
    );
    r
}

#[test]
fn namespace_switching_never_leaks() {
    let test = "namespace_switching_never_leaks";
    let Some(ns) = support::setup(test, &[]) else {
        return;
    };
    let host = support::thread_netns_inode();
    let ns_inode = ns.run(|| {
        Ok(std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(
            "/proc/thread-self/ns/net",
        )?))
    });
    assert_ne!(host, ns_inode, "the test namespace is another namespace");

    // Calls that work, in the test namespace.
    let mut ct = same_ns("open", || client(&ns));
    same_ns("create", || {
        ct.create(&CreateRequest::new(udp(73, 1, 1001), 600))
            .expect("create")
    });
    let list = same_ns("list", || ct.list(&DumpFilter::all()).expect("list"));
    // The socket really is in the test namespace: it sees the entry created there.
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].orig, udp(73, 1, 1001));
    same_ns("count", || ct.count().expect("count"));
    same_ns("sysctl timeouts", || ct.sysctl_timeouts().expect("sysctls"));
    same_ns("default timeouts", || {
        ct.default_timeouts().expect("default timeouts")
    });

    // Calls that fail half-way.
    let missing = Netns::named(format!("ipvsct-missing-{}", std::process::id()));
    let e = same_ns("open missing namespace", || Conntrack::open(&missing)).unwrap_err();
    assert!(matches!(e, Error::Namespace { .. }), "{e}");
    // A file that is not a namespace: opening works, setns(2) fails on the helper thread.
    let e = same_ns("open /etc/hostname", || {
        Conntrack::open(&Netns::path("/etc/hostname"))
    })
    .unwrap_err();
    match &e {
        Error::Namespace { source, .. } => assert_eq!(source.raw_os_error(), Some(22), "{e}"),
        other => panic!("expected a namespace error, got {other}"),
    }
    let e = same_ns("open a directory", || {
        Conntrack::open(&Netns::path("/proc"))
    })
    .unwrap_err();
    assert!(matches!(e, Error::Namespace { .. }), "{e}");
    let e = same_ns("a failing closure", || {
        ns.netns().run(|| -> ipvs_conntrack::Result<()> {
            Err(Error::InvalidRequest("fails inside".into()))
        })
    })
    .unwrap_err();
    assert!(matches!(e, Error::InvalidRequest(_)), "{e}");
    let panicked = same_ns("a panicking closure", || {
        std::panic::catch_unwind(|| {
            let _ = ns
                .netns()
                .run(|| -> ipvs_conntrack::Result<()> { panic!("inside") });
        })
    });
    assert!(panicked.is_err());
    // And the thread is where it started.
    assert_eq!(support::thread_netns_inode(), host);
}

// ---------------------------------------------------------------------------------------
// (d) privilege

const CHILD_ENV: &str = "IPVSCT_TRUST_PRIVILEGE_CHILD";
const CHILD_MARK: &str = "PRIVILEGE-CHILD-OK";

/// The capability sets of this process have no CAP_NET_ADMIN (bit 12).
fn lacks_net_admin() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).expect("hex"))
        .expect("CapEff line");
    eff & (1 << 12) == 0
}

fn expect_permission<T: std::fmt::Debug>(what: &str, r: Result<T, Error>) -> usize {
    match r {
        Err(e @ Error::Permission { .. }) => {
            let text = e.to_string();
            assert!(text.contains("CAP_NET_ADMIN"), "{what}: {text}");
            assert_eq!(e.errno(), Some(1), "{what}");
            1
        }
        other => panic!("{what}: expected Error::Permission, got {other:?}"),
    }
}

/// Runs in the child (CAP_NET_ADMIN dropped, inside the test namespace).
fn privilege_child() {
    assert!(lacks_net_admin(), "the child still has CAP_NET_ADMIN");
    let mut calls = 0;
    let mut ct = match Conntrack::new() {
        Ok(ct) => ct,
        // Opening a socket needs no capability, but a Permission error is acceptable.
        Err(e) => {
            expect_permission("open", Err::<(), _>(e));
            println!("{CHILD_MARK} calls=1 (open refused)");
            return;
        }
    };
    calls += expect_permission("list", ct.list(&DumpFilter::all()));
    // A streaming dump: the request is sent, the first item is the refusal, then nothing.
    {
        let mut dump = ct
            .dump(&DumpFilter::all())
            .expect("sending needs no capability");
        match dump.next() {
            Some(r) => calls += expect_permission("dump", r),
            None => panic!("dump: ended without an error"),
        }
        assert!(dump.next().is_none(), "nothing after the refusal");
    }
    let mut views = 0;
    calls += expect_permission(
        "for_each_view",
        ct.for_each_view(&DumpFilter::all(), |_| {
            views += 1;
            std::ops::ControlFlow::Continue(())
        }),
    );
    assert_eq!(views, 0, "no entry was passed to the callback");
    calls += expect_permission("count", ct.count());
    calls += expect_permission("cpu_stats", ct.cpu_stats());
    calls += expect_permission("get", ct.get(&udp(74, 1, 1001)));
    calls += expect_permission("default_policy", ct.default_policy(2, IPPROTO_UDP));
    calls += expect_permission("default_timeouts", ct.default_timeouts());
    calls += expect_permission(
        "create",
        ct.create(&CreateRequest::new(udp(74, 9, 1009), 60)),
    );
    ct.set_join_timeouts(true);
    calls += expect_permission("list with timeouts", ct.list(&DumpFilter::all()));
    println!("{CHILD_MARK} calls={calls}");
}

#[test]
fn without_cap_net_admin_every_call_is_a_permission_error() {
    if std::env::var_os(CHILD_ENV).is_some() {
        privilege_child();
        return;
    }
    let test = "without_cap_net_admin_every_call_is_a_permission_error";
    let Some(ns) = support::setup(test, &["setpriv"]) else {
        return;
    };
    let mut ct = client(&ns);
    insert(&mut ct, 74, 20);
    let exe = std::env::current_exe().expect("test binary");
    let exe = exe.to_string_lossy();
    let out = support::run_cmd(
        "env",
        &[
            &format!("{CHILD_ENV}=1"),
            "ip",
            "netns",
            "exec",
            ns.name(),
            "setpriv",
            "--inh-caps=-all",
            "--bounding-set=-net_admin",
            "--",
            &exe,
            "--exact",
            test,
            "--nocapture",
            "--test-threads=1",
        ],
    );
    assert!(
        out.success(),
        "child failed ({:?})\nstdout: {}\nstderr: {}",
        out.code,
        out.stdout,
        out.stderr
    );
    assert!(
        out.stdout.contains(&format!("{CHILD_MARK} calls=10")),
        "child output: {}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(out.stdout.contains("1 passed"), "{}", out.stdout);
    // The refused calls changed nothing.
    let after = ct.list(&DumpFilter::all()).expect("list as root");
    assert_eq!(after.len(), 20);
}

// ---------------------------------------------------------------------------------------
// (e) NLM_F_DUMP_INTR
//
// Finding (Linux 6.18, net/netfilter/nf_conntrack_netlink.c): ctnetlink_dump_table(),
// ctnetlink_dump_dying() and ctnetlink_exp_dump_table() never set `cb->seq` and never
// call nl_dump_check_consistent(), so the kernel does not flag ctnetlink dumps with
// NLM_F_DUMP_INTR. A dump that races with changes resumes from the id of the last entry
// it sent; if that entry is gone the hash bucket is dumped again from its start, so an
// entry can appear twice but one that stays in the table is not skipped (unless the hash
// table is resized). The library's contract (report DumpInterrupted as the final item)
// therefore only matters for other families; this test checks it holds either way.

#[test]
fn dumps_racing_with_changes_complete_or_report_interruption() {
    let test = "dumps_racing_with_changes_complete_or_report_interruption";
    let Some(ns) = support::setup(test, &["conntrack"]) else {
        return;
    };
    let mut ct = client(&ns);
    let stable: usize = 300;
    insert(&mut ct, 75, stable as u16);
    let name = ns.name().to_owned();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(4);
            let mut ops = 0u32;
            for i in 0..2000u32 {
                if Instant::now() > deadline || stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let src = format!("10.76.{}.{}", (i / 250) % 250, i % 250 + 1);
                let add = support::run_cmd(
                    "ip",
                    &[
                        "netns",
                        "exec",
                        &name,
                        "conntrack",
                        "-I",
                        "-p",
                        "udp",
                        "-s",
                        &src,
                        "-d",
                        "10.76.255.254",
                        "--sport",
                        "5000",
                        "--dport",
                        "53",
                        "-t",
                        "600",
                    ],
                );
                assert!(add.success(), "conntrack -I: {}", add.stderr);
                ops += 1;
                if i % 2 == 1 {
                    let prev = format!("10.76.{}.{}", ((i - 1) / 250) % 250, (i - 1) % 250 + 1);
                    let del = support::run_cmd(
                        "ip",
                        &[
                            "netns",
                            "exec",
                            &name,
                            "conntrack",
                            "-D",
                            "-p",
                            "udp",
                            "-s",
                            &prev,
                        ],
                    );
                    assert!(del.success(), "conntrack -D: {}", del.stderr);
                    ops += 1;
                }
            }
            ops
        })
    };
    let mut dumps = 0;
    let mut interrupted = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !churn.is_finished() && Instant::now() < deadline && dumps < 500 {
        let mut got = Vec::new();
        let mut intr = false;
        for item in ct.dump(&DumpFilter::all()).expect("dump") {
            assert!(!intr, "an item followed DumpInterrupted");
            match item {
                Ok(e) => got.push(e),
                Err(Error::DumpInterrupted) => intr = true,
                Err(e) => panic!("dump {dumps}: unexpected error {e}"),
            }
        }
        dumps += 1;
        if intr {
            interrupted += 1;
            continue;
        }
        // A completed dump holds every entry that stayed in the table throughout.
        let mut ports: Vec<u16> = got
            .iter()
            .filter(|e| is_net(e, 75))
            .filter_map(|e| e.orig.src_port)
            .collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), stable, "dump {dumps} missed stable entries");
        assert!(got.iter().all(|e| is_net(e, 75) || is_net(e, 76)));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let ops = churn.join().expect("churn thread");
    eprintln!("{dumps} dumps during {ops} inserts/deletes, {interrupted} reported NLM_F_DUMP_INTR");
    assert!(dumps >= 3, "only {dumps} dumps ran during the churn");
    assert!(ops >= 10, "only {ops} changes happened during the dumps");
}

// ---------------------------------------------------------------------------------------
// (f) receive timeouts

#[test]
fn every_blocking_receive_honours_the_timeout() {
    let test = "every_blocking_receive_honours_the_timeout";
    let Some(ns) = support::setup(test, &[]) else {
        return;
    };
    assert_eq!(
        SocketOptions::default().recv_timeout,
        Some(Duration::from_secs(30)),
        "receives time out by default"
    );
    let limit = Duration::from_millis(300);
    let mut ct = Conntrack::with_options(
        &ns.netns(),
        &SocketOptions {
            recv_timeout: Some(limit),
            ..SocketOptions::default()
        },
    )
    .expect("open");
    ct.set_join_timeouts(false);

    // A receive with nothing pending.
    let t0 = Instant::now();
    let e = ct.socket_mut().recv("idle receive").unwrap_err();
    let took = t0.elapsed();
    assert!(matches!(e, Error::Timeout { op: "idle receive" }), "{e}");
    assert!(
        took >= limit - Duration::from_millis(20) && took < limit * 5,
        "{took:?}"
    );

    // A request the kernel never answers (NLMSG_NOOP without NLM_F_ACK), read as an
    // exchange: the exchange times out instead of hanging.
    let mut noop = MessageBuilder::new(NLMSG_NOOP, NLM_F_REQUEST).finish();
    let seq = ct.socket_mut().send(&mut noop, "noop").expect("send noop");
    let t0 = Instant::now();
    let e = ct
        .socket_mut()
        .exchange(seq, "noop")
        .next_meta()
        .unwrap_err();
    let took = t0.elapsed();
    assert!(matches!(e, Error::Timeout { op: "noop" }), "{e}");
    assert!(took < limit * 5, "{took:?}");

    // The socket still works afterwards.
    ct.create(&CreateRequest::new(udp(77, 1, 1001), 60))
        .expect("create after timeouts");
    assert_eq!(ct.count().expect("count").entries, 1);
}
