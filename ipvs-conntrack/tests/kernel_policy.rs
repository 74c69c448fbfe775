//! Timeout policies (cttimeout) against the running kernel, each test in its own network
//! namespace: named-policy CRUD for every L4 protocol compared with `nfct timeout list`,
//! default policies compared with `nfct timeout default-get` and the sysctls, and an
//! entry bound to a policy by `iptables -j CT --timeout` reporting its values.
//!
//! Needs root, `ip`, `nft`, `nfct` (and `iptables` for the binding test); without them
//! each test prints `SKIPPED` (or fails when CI=true).

mod support;

use std::net::{SocketAddr, UdpSocket};

use ipvs_conntrack::conntrack::policy::{L3_INET, L3_INET6};
use ipvs_conntrack::conntrack::timeout::{SctpTimeouts, TcpTimeouts, UdpTimeouts};
use ipvs_conntrack::conntrack::tuple::{IPPROTO_TCP, IPPROTO_UDP};
use ipvs_conntrack::conntrack::{Conntrack, DumpFilter, ProtoTimeouts, TimeoutPolicy};
use ipvs_conntrack::Error;
use support::{setup, TestNs};

const EEXIST: i32 = 17;
const ENOENT: i32 = 2;
const EBUSY: i32 = 16;
const EINVAL: i32 = 22;
const EOPNOTSUPP: i32 = 95;

fn kernel_errno(r: Result<(), Error>) -> i32 {
    match r {
        Err(Error::Kernel(k)) => k.errno,
        other => panic!("expected a kernel error, got {other:?}"),
    }
}

/// One block of `nfct timeout list`: name, l3proto, l4proto and the values in order.
#[derive(Debug, PartialEq, Eq)]
struct NfctNamed {
    name: String,
    l3proto: u16,
    l4proto: u8,
    values: Vec<u32>,
}

fn parse_nfct_list(text: &str) -> Vec<NfctNamed> {
    let mut out = Vec::new();
    let mut block = String::new();
    for line in text.lines() {
        if line.starts_with('.') && line.trim_end().ends_with("= {") && !block.is_empty() {
            out.push(parse_block(&block));
            block.clear();
        }
        block.push_str(line);
        block.push('\n');
    }
    if !block.trim().is_empty() {
        out.push(parse_block(&block));
    }
    out
}

fn parse_block(block: &str) -> NfctNamed {
    let name = block
        .lines()
        .next()
        .and_then(|l| l.trim_start_matches('.').split_whitespace().next())
        .unwrap_or_default()
        .to_owned();
    let p = support::parse_nfct_policy(block).unwrap_or_else(|e| panic!("{e}"));
    NfctNamed {
        name,
        l3proto: p.l3proto,
        l4proto: p.l4proto,
        values: p.policy.iter().map(|(_, v)| *v).collect(),
    }
}

fn as_nfct(p: &TimeoutPolicy) -> NfctNamed {
    NfctNamed {
        name: p.name.clone().unwrap_or_default(),
        l3proto: p.l3proto,
        l4proto: p.l4proto,
        values: p.timeouts.values().into_iter().map(|(_, v)| v).collect(),
    }
}

fn nfct_list(ns: &TestNs) -> Vec<NfctNamed> {
    parse_nfct_list(&ns.exec_ok(&["nfct", "timeout", "list"]))
}

fn sorted(mut v: Vec<NfctNamed>) -> Vec<NfctNamed> {
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// Compares the library's policies with `nfct timeout list`. nfct 1.4.7 knows only the
/// first seven SCTP states, so for SCTP its values must be a prefix of the kernel's.
fn assert_same_as_nfct(lib: &[TimeoutPolicy], ns: &TestNs) -> usize {
    let mine = sorted(lib.iter().map(as_nfct).collect());
    let theirs = sorted(nfct_list(ns));
    assert_eq!(mine.len(), theirs.len(), "{mine:?} vs {theirs:?}");
    let mut values = 0;
    for (m, t) in mine.iter().zip(&theirs) {
        assert_eq!(
            (&m.name, m.l3proto, m.l4proto),
            (&t.name, t.l3proto, t.l4proto)
        );
        if m.l4proto == ipvs_conntrack::conntrack::tuple::IPPROTO_SCTP {
            assert!(
                t.values.len() >= 7 && m.values.starts_with(&t.values),
                "{m:?} vs {t:?}"
            );
        } else {
            assert_eq!(m.values, t.values, "{}", m.name);
        }
        values += t.values.len();
    }
    values
}

/// Create, list, get, replace and delete named policies of every L4 protocol; the
/// kernel's view through the library equals `nfct timeout list` at every step.
#[test]
fn named_policies_crud_matches_nfct() {
    const T: &str = "named_policies_crud_matches_nfct";
    let Some(ns) = setup(T, &["nfct"]) else {
        return;
    };
    let mut ct = Conntrack::open(&ns.netns()).expect("client");
    assert!(ct.timeout_policies().expect("empty list").is_empty());

    let udp = |u, r| UdpTimeouts {
        unreplied: Some(u),
        replied: r,
    };
    let wanted = vec![
        TimeoutPolicy::named(
            "h8-tcp",
            L3_INET,
            ProtoTimeouts::Tcp(TcpTimeouts {
                established: Some(100),
                close: Some(5),
                ..TcpTimeouts::default()
            }),
        ),
        TimeoutPolicy::named("h8-udp", L3_INET, ProtoTimeouts::Udp(udp(7, Some(9)))),
        TimeoutPolicy::named("h8-udplite", L3_INET, ProtoTimeouts::UdpLite(udp(8, None))),
        TimeoutPolicy::named(
            "h8-sctp",
            L3_INET,
            ProtoTimeouts::Sctp(SctpTimeouts {
                established: Some(1234),
                ..SctpTimeouts::default()
            }),
        ),
        TimeoutPolicy::named("h8-icmp", L3_INET, ProtoTimeouts::Icmp(Some(11))),
        TimeoutPolicy::named("h8-icmpv6", L3_INET6, ProtoTimeouts::Icmpv6(Some(12))),
        TimeoutPolicy::named("h8-gre", L3_INET, ProtoTimeouts::Gre(udp(13, Some(14)))),
        TimeoutPolicy::named("h8-generic", L3_INET, ProtoTimeouts::Generic(Some(15))),
    ];
    for p in &wanted {
        ct.add_timeout_policy(p)
            .unwrap_or_else(|e| panic!("add {:?}: {e}", p.name));
    }
    // DCCP conntrack is gone from recent kernels: EOPNOTSUPP there, accepted elsewhere.
    let dccp = TimeoutPolicy::named(
        "h8-dccp",
        L3_INET,
        ProtoTimeouts::Dccp(ipvs_conntrack::conntrack::timeout::DccpTimeouts {
            open: Some(99),
            ..Default::default()
        }),
    );
    let dccp_ok = match ct.add_timeout_policy(&dccp) {
        Ok(()) => true,
        Err(Error::Kernel(k)) if k.errno == EOPNOTSUPP => false,
        Err(e) => panic!("dccp policy: {e}"),
    };

    let listed = ct.timeout_policies().expect("list");
    assert_eq!(listed.len(), wanted.len() + usize::from(dccp_ok));
    for w in &wanted {
        let got = listed
            .iter()
            .find(|p| p.name == w.name)
            .unwrap_or_else(|| panic!("{:?} not listed", w.name));
        assert_eq!((got.l3proto, got.l4proto), (w.l3proto, w.l4proto));
        // Values set come back; the others are filled with the defaults by the kernel.
        for (k, v) in w.timeouts.values() {
            assert!(
                got.timeouts.values().contains(&(k, v)),
                "{:?}: {k}={v}",
                w.name
            );
        }
        assert!(got.timeouts.values().len() >= w.timeouts.values().len());
        assert_eq!(got.use_count, Some(1));
        assert_eq!(
            &ct.timeout_policy(w.name.as_deref().unwrap()).expect("get"),
            got
        );
    }
    let compared = assert_same_as_nfct(&listed, &ns);
    // generic 1 + gre 2 + icmp 1 + icmpv6 1 + sctp 7 (nfct) + tcp 11 + udp 2 + udplite 2.
    assert_eq!(compared, 27);

    // Create again: EEXIST. Replace: new values, same everywhere.
    assert_eq!(kernel_errno(ct.add_timeout_policy(&wanted[0])), EEXIST);
    let changed = TimeoutPolicy::named(
        "h8-tcp",
        L3_INET,
        ProtoTimeouts::Tcp(TcpTimeouts {
            established: Some(777),
            ..TcpTimeouts::default()
        }),
    );
    let default_close = match ct
        .default_policy(L3_INET, IPPROTO_TCP)
        .expect("tcp")
        .timeouts
    {
        ProtoTimeouts::Tcp(t) => t.close,
        other => panic!("{other:?}"),
    };
    assert_ne!(default_close, Some(5));
    ct.replace_timeout_policy(&changed).expect("replace");
    let got = ct.timeout_policy("h8-tcp").expect("get");
    match &got.timeouts {
        // Replacing sets every value again: those not given fall back to the defaults.
        ProtoTimeouts::Tcp(t) => assert_eq!((t.established, t.close), (Some(777), default_close)),
        other => panic!("{other:?}"),
    }
    let nfct_get = parse_block(&ns.exec_ok(&["nfct", "timeout", "get", "h8-tcp"]));
    assert_eq!(nfct_get, as_nfct(&got));
    // A policy cannot change protocol.
    let other_proto = TimeoutPolicy::named("h8-tcp", L3_INET, ProtoTimeouts::Udp(udp(1, None)));
    assert_eq!(
        kernel_errno(ct.replace_timeout_policy(&other_proto)),
        EINVAL
    );
    assert_eq!(
        kernel_errno(ct.timeout_policy("h8-none").map(|_| ())),
        ENOENT
    );

    // Delete one, then the rest.
    ct.delete_timeout_policy("h8-udp").expect("delete");
    assert_eq!(kernel_errno(ct.delete_timeout_policy("h8-udp")), ENOENT);
    let listed = ct.timeout_policies().expect("list");
    assert!(listed.iter().all(|p| p.name.as_deref() != Some("h8-udp")));
    assert_same_as_nfct(&listed, &ns);
    ct.delete_unused_timeout_policies().expect("delete all");
    assert!(ct.timeout_policies().expect("list").is_empty());
    assert!(nfct_list(&ns).is_empty());
}

/// Setting a default policy changes what cttimeout, `nfct timeout default-get` and the
/// namespace's sysctls report, and the state timeouts joined into dumped entries.
#[test]
fn default_policy_set_and_read_back() {
    const T: &str = "default_policy_set_and_read_back";
    let Some(ns) = setup(T, &["nfct"]) else {
        return;
    };
    let mut ct = Conntrack::open(&ns.netns()).expect("client");
    let before = ct
        .default_policy(L3_INET, IPPROTO_UDP)
        .expect("udp default");
    let replied_before = match before.timeouts {
        ProtoTimeouts::Udp(u) => u.replied,
        other => panic!("{other:?}"),
    };
    ct.set_default_policy(
        L3_INET,
        &ProtoTimeouts::Udp(UdpTimeouts {
            unreplied: Some(33),
            replied: None,
        }),
    )
    .expect("default-set udp");
    ct.set_default_policy(
        L3_INET,
        &ProtoTimeouts::Tcp(TcpTimeouts {
            time_wait: Some(7),
            ..TcpTimeouts::default()
        }),
    )
    .expect("default-set tcp");
    match ct
        .default_policy(L3_INET, IPPROTO_UDP)
        .expect("read")
        .timeouts
    {
        ProtoTimeouts::Udp(u) => assert_eq!((u.unreplied, u.replied), (Some(33), replied_before)),
        other => panic!("{other:?}"),
    }
    assert_eq!(ns.sysctl("net.netfilter.nf_conntrack_udp_timeout"), "33");
    assert_eq!(
        ns.sysctl("net.netfilter.nf_conntrack_tcp_timeout_time_wait"),
        "7"
    );
    let nfct =
        support::parse_nfct_policy(&ns.exec_ok(&["nfct", "timeout", "default-get", "inet", "udp"]))
            .expect("nfct default-get");
    assert_eq!(nfct.policy[0], ("UNREPLIED".to_owned(), 33));
    // Other namespaces keep their own defaults.
    let fresh = TestNs::create().expect("second namespace");
    let mut other = Conntrack::open(&fresh.netns()).expect("client");
    match other
        .default_policy(L3_INET, IPPROTO_UDP)
        .expect("read")
        .timeouts
    {
        ProtoTimeouts::Udp(u) => assert_ne!(u.unreplied, Some(33)),
        p => panic!("{p:?}"),
    }
    // Entries are joined with the new default.
    let sock = ns.run(|| {
        let s = UdpSocket::bind("127.0.0.1:0")?;
        s.send_to(b"x", "127.0.0.1:9")?;
        Ok(s)
    });
    let port = sock.local_addr().expect("addr").port();
    let e = ct
        .list(&DumpFilter::all())
        .expect("dump")
        .into_iter()
        .find(|e| e.orig.src_port == Some(port))
        .expect("udp entry");
    assert_eq!(e.state_timeout, Some(33));
    assert!(e.timeout.is_some_and(|t| t <= 33));
}

/// An entry bound to a policy by `iptables -t raw … -j CT --timeout NAME` expires by
/// that policy, and reports its values as state timeouts.
#[test]
fn entries_bound_to_a_policy_report_its_timeouts() {
    const T: &str = "entries_bound_to_a_policy_report_its_timeouts";
    let Some(ns) = setup(T, &["nfct", "iptables"]) else {
        return;
    };
    let mut ct = Conntrack::open(&ns.netns()).expect("client");
    let policy = TimeoutPolicy::named(
        "h8-bound",
        L3_INET,
        ProtoTimeouts::Udp(UdpTimeouts {
            unreplied: Some(7),
            replied: Some(9),
        }),
    );
    ct.add_timeout_policy(&policy).expect("add");
    ns.exec_ok(&[
        "iptables",
        "-t",
        "raw",
        "-A",
        "OUTPUT",
        "-p",
        "udp",
        "--dport",
        "9999",
        "-j",
        "CT",
        "--timeout",
        "h8-bound",
    ]);
    // Bound: the rule holds a reference, so the policy cannot go.
    assert!(ct.timeout_policy("h8-bound").expect("get").use_count >= Some(2));
    assert_eq!(kernel_errno(ct.delete_timeout_policy("h8-bound")), EBUSY);

    let (bound, free) = ns.run(|| {
        let a = UdpSocket::bind("127.0.0.1:0")?;
        a.send_to(b"bound", "127.0.0.1:9999")?;
        let b = UdpSocket::bind("127.0.0.1:0")?;
        b.send_to(b"free", "127.0.0.1:9998")?;
        Ok((a, b))
    });
    let port_of = |s: &UdpSocket| s.local_addr().map(|a: SocketAddr| a.port()).expect("addr");
    let (bp, fp) = (port_of(&bound), port_of(&free));
    let entries = ct.list(&DumpFilter::all()).expect("dump");
    let get = |p| {
        entries
            .iter()
            .find(|e| e.orig.proto == IPPROTO_UDP && e.orig.src_port == Some(p))
            .cloned()
            .unwrap_or_else(|| panic!("no entry from port {p}"))
    };
    let (mut be, fe) = (get(bp), get(fp));
    // The kernel applied the policy (7 s) to the bound flow, the default (30 s) to the other.
    assert!(be.timeout.is_some_and(|t| t <= 7), "{:?}", be.timeout);
    assert!(fe.timeout.is_some_and(|t| t > 20), "{:?}", fe.timeout);
    // Without the caller naming the policy the library joins the default…
    assert_eq!(be.state_timeout, fe.state_timeout);
    // …and with it, the policy's values.
    assert!(be.apply_policy(&ct.timeout_policy("h8-bound").expect("get")));
    assert_eq!(be.state_timeout, Some(7));
    let with_policy = ct.state_timeouts_with_policy("h8-bound").expect("timeouts");
    assert_eq!(
        (with_policy.udp.unreplied, with_policy.udp.replied),
        (Some(7), Some(9))
    );
    ct.set_state_timeouts(with_policy);
    let rejoined = ct
        .list(&DumpFilter::all())
        .expect("dump")
        .into_iter()
        .find(|e| e.orig.src_port == Some(bp))
        .expect("bound entry");
    assert_eq!(rejoined.state_timeout, Some(7));
    assert!(rejoined.seconds_since_refresh().is_some_and(|s| s <= 2));
    // A TCP policy does not apply to this UDP entry.
    let tcp = TimeoutPolicy::named("x", L3_INET, ProtoTimeouts::Tcp(TcpTimeouts::default()));
    let mut copy = rejoined.clone();
    assert!(!copy.apply_policy(&tcp));
    assert_eq!(copy.state_timeout, Some(7));
}
