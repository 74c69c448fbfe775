//! The conntrack write path against the running kernel, each test in its own network
//! namespace: every builder field round-trips (create, dump, compare, and compare with
//! `conntrack -L -o xml`), updates, deletes and flushes remove exactly what was asked,
//! batched inserts of 100 000 entries check every acknowledgement, and counters are
//! zeroed while dumping.
//!
//! Needs root, `ip`, `nft` and `conntrack`; without them each test prints `SKIPPED`
//! (or fails when CI=true).

mod support;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Instant;

use ipvs_conntrack::conntrack::tuple::{
    Tuple, IPPROTO_ICMP, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP,
};
use ipvs_conntrack::conntrack::{
    set_accounting, Batch, ConnKey, Conntrack, CreateRequest, DeleteRequest, DumpFilter, Entry,
    Family, FlushRequest, Labels, NatRange, ProtoInfo, SctpInfo, SctpState, SeqAdj, State, Status,
    Synproxy, TcpFlags, TcpFlagsMask, TcpInfo, TcpState, TupleFilter, UpdateRequest,
};
use ipvs_conntrack::Error;
use support::{setup, TestNs};

const EEXIST: i32 = 17;
const ENOENT: i32 = 2;
const EBUSY: i32 = 16;
const EOPNOTSUPP: i32 = 95;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(src: &str, sport: u16, dst: &str, dport: u16) -> Tuple {
    Tuple::with_ports(IPPROTO_TCP, ip(src), sport, ip(dst), dport)
}

fn udp(src: &str, sport: u16, dst: &str, dport: u16) -> Tuple {
    Tuple::with_ports(IPPROTO_UDP, ip(src), sport, ip(dst), dport)
}

fn open(ns: &TestNs) -> Conntrack {
    let mut ct = Conntrack::open(&ns.netns()).expect("conntrack client");
    ct.set_join_timeouts(false);
    ct
}

fn find(ct: &mut Conntrack, orig: &Tuple) -> Entry {
    let all = ct.list(&DumpFilter::all()).expect("dump");
    all.into_iter()
        .find(|e| {
            e.orig.src == orig.src
                && e.orig.src_port == orig.src_port
                && e.orig.proto == orig.proto
                && e.orig.dst_port == orig.dst_port
                && e.orig.icmp_id == orig.icmp_id
        })
        .unwrap_or_else(|| panic!("no entry for {orig:?}"))
}

fn keys(ct: &mut Conntrack) -> BTreeSet<ConnKey> {
    ct.list(&DumpFilter::all())
        .expect("dump")
        .iter()
        .map(ConnKey::of)
        .collect()
}

fn kernel_errno(r: Result<(), Error>) -> i32 {
    match r {
        Err(Error::Kernel(k)) => k.errno,
        other => panic!("expected a kernel error, got {other:?}"),
    }
}

/// Makes the namespace use connection labels (the kernel only stores labels once some
/// rule of the namespace uses them).
fn enable_labels(ns: &TestNs) {
    ns.nft(
        "add table inet h8labels; \
         add chain inet h8labels out { type filter hook output priority 10; }; \
         add rule inet h8labels out meta mark 0x4c4142 ct label set 127",
    );
}

/// The `<flow>…</flow>` text of `conntrack -L -o xml` whose `<id>` is `id`.
fn xml_flow_text(xml: &str, id: u32) -> Option<&str> {
    let tag = format!("<id>{id}</id>");
    xml.split("<flow>").find(|f| f.contains(&tag))
}

/// Every field a create request can carry, read back from a dump and compared with
/// `conntrack -L -o xml`.
#[test]
fn every_builder_field_round_trips() {
    const T: &str = "every_builder_field_round_trips";
    let Some(ns) = setup(T, &["conntrack"]) else {
        return;
    };
    enable_labels(&ns);
    let mut ct = open(&ns);

    // TCP: zone, mark, status, labels, protocol info, helper, seq adjust, SYN proxy.
    let t1 = tcp("10.1.1.1", 1000, "10.2.2.2", 21);
    let ws = TcpFlags::from_bits_retain(0x01); // IP_CT_TCP_FLAG_WINDOW_SCALE
    let sa_o = SeqAdj {
        correction_pos: Some(5),
        offset_before: Some(-3),
        offset_after: Some(7),
    };
    let sa_r = SeqAdj {
        correction_pos: Some(9),
        offset_before: Some(1),
        offset_after: Some(2),
    };
    let req = CreateRequest::new(t1.clone(), 300)
        .zone(7)
        .mark(0x42)
        .status(Status::SEEN_REPLY | Status::ASSURED)
        .labels(Labels(vec![1, 70, 127]))
        .protoinfo(ProtoInfo {
            tcp: Some(TcpInfo {
                state: Some(TcpState::Established),
                wscale_original: Some(7),
                wscale_reply: Some(8),
                flags_original: Some(TcpFlagsMask {
                    flags: ws,
                    mask: ws,
                }),
                flags_reply: Some(TcpFlagsMask {
                    flags: ws,
                    mask: ws,
                }),
            }),
            ..ProtoInfo::default()
        })
        .helper("ftp")
        .seq_adj(sa_o, sa_r)
        .synproxy(Synproxy {
            isn: Some(11),
            its: Some(12),
            tsoff: Some(13),
        });
    ct.create(&req).expect("create tcp");
    let e = find(&mut ct, &t1);
    assert_eq!(e.family, Family::Ipv4);
    assert_eq!(e.orig, t1);
    assert_eq!(e.reply, t1.reversed());
    assert_eq!(e.zone, Some(7));
    assert_eq!(e.mark, Some(0x42));
    assert!(
        e.timeout.is_some_and(|t| (298..=300).contains(&t)),
        "{:?}",
        e.timeout
    );
    assert_eq!(
        e.status,
        Status::SEEN_REPLY
            | Status::ASSURED
            | Status::CONFIRMED
            | Status::SEQ_ADJUST
            | Status::HELPER
    );
    assert_eq!(e.labels, Some(Labels(vec![1, 70, 127])));
    assert_eq!(e.state, State::Tcp(TcpState::Established));
    let tcpi = e
        .protoinfo
        .as_ref()
        .and_then(|p| p.tcp.as_ref())
        .expect("tcp info");
    assert_eq!(
        (tcpi.wscale_original, tcpi.wscale_reply),
        (Some(7), Some(8))
    );
    assert_eq!(tcpi.flags_original.map(|f| f.flags & ws), Some(ws));
    assert_eq!(e.helper.as_ref().map(|h| h.name.as_str()), Some("ftp"));
    assert_eq!((e.seq_adj_orig, e.seq_adj_reply), (Some(sa_o), Some(sa_r)));
    assert_eq!(
        e.synproxy,
        Some(Synproxy {
            isn: Some(11),
            its: Some(12),
            tsoff: Some(13)
        })
    );

    // IPv6 UDP with a mark; SCTP with its protocol info; ICMP echo.
    let t2 = udp("fd00::1", 5353, "fd00::2", 53);
    ct.create(&CreateRequest::new(t2.clone(), 100).mark(0xdead))
        .expect("create udp6");
    let e2 = find(&mut ct, &t2);
    assert_eq!((e2.family, e2.mark), (Family::Ipv6, Some(0xdead)));
    assert_eq!(e2.reply, t2.reversed());
    // A dumped entry can be recreated as it was.
    ct.delete(&DeleteRequest::entry(&e2)).expect("delete udp6");
    ct.create(&CreateRequest::from_entry(&e2))
        .expect("recreate");
    let again = find(&mut ct, &t2);
    assert_eq!(
        (&again.orig, &again.reply, again.mark),
        (&e2.orig, &e2.reply, e2.mark)
    );
    assert_eq!(again.status, e2.status);
    let t3 = Tuple::with_ports(IPPROTO_SCTP, ip("10.1.1.1"), 2000, ip("10.2.2.2"), 3868);
    ct.create(&CreateRequest::new(t3.clone(), 200).protoinfo(ProtoInfo {
        sctp: Some(SctpInfo {
            state: Some(SctpState::Established),
            vtag_original: Some(0x1111),
            vtag_reply: Some(0x2222),
        }),
        ..ProtoInfo::default()
    }))
    .expect("create sctp");
    let e3 = find(&mut ct, &t3);
    let s = e3.protoinfo.and_then(|p| p.sctp).expect("sctp info");
    assert_eq!(s.state, Some(SctpState::Established));
    assert_eq!(
        (s.vtag_original, s.vtag_reply),
        (Some(0x1111), Some(0x2222))
    );
    let t4 = Tuple::icmp(ip("10.1.1.1"), ip("10.2.2.2"), 8, 0, 0x4242);
    ct.create(&CreateRequest::new(t4.clone(), 30))
        .expect("icmp");
    let e4 = find(&mut ct, &t4);
    assert_eq!(e4.orig.proto, IPPROTO_ICMP);
    assert_eq!(
        (e4.reply.icmp_type, e4.reply.icmp_id),
        (Some(0), Some(0x4242))
    );

    // NAT: destination NAT rewrites the reply source, source NAT the reply destination.
    let t5 = tcp("10.1.1.1", 1001, "10.2.2.2", 80);
    let dnat = NatRange {
        min_ip: Some(ip("10.3.3.3")),
        max_ip: Some(ip("10.3.3.3")),
        min_port: Some(8080),
        max_port: Some(8080),
    };
    ct.create(&CreateRequest::new(t5.clone(), 100).nat_dst(dnat))
        .expect("dnat");
    let e5 = find(&mut ct, &t5);
    assert_eq!(
        (e5.reply.src, e5.reply.src_port),
        (ip("10.3.3.3"), Some(8080))
    );
    assert!(e5.status.contains(Status::DST_NAT | Status::DST_NAT_DONE));
    let t6 = udp("10.1.1.1", 1002, "10.2.2.2", 53);
    let snat = NatRange {
        min_ip: Some(ip("10.4.4.4")),
        max_ip: None,
        min_port: Some(4000),
        max_port: Some(4000),
    };
    ct.create(&CreateRequest::new(t6.clone(), 100).nat_src(snat))
        .expect("snat");
    let e6 = find(&mut ct, &t6);
    assert_eq!(
        (e6.reply.dst, e6.reply.dst_port),
        (ip("10.4.4.4"), Some(4000))
    );
    assert!(e6.status.contains(Status::SRC_NAT | Status::SRC_NAT_DONE));

    // Master: an expected connection of the FTP control connection t1 (same zone).
    let t7 = tcp("10.2.2.2", 20, "10.1.1.1", 50000);
    ct.create(
        &CreateRequest::new(t7.clone(), 60)
            .zone(7)
            .master(t1.clone()),
    )
    .expect("related");
    let e7 = find(&mut ct, &t7);
    assert!(e7.status.contains(Status::EXPECTED));
    assert_eq!(e7.master.as_ref(), Some(&t1));

    // Creating the same tuple again is EEXIST; a helper the kernel lacks is EOPNOTSUPP.
    assert_eq!(
        kernel_errno(ct.create(&CreateRequest::new(t6.clone(), 5))),
        EEXIST
    );
    let nohelper = CreateRequest::new(tcp("10.9.9.9", 1, "10.9.9.8", 2), 5).helper("nosuchhelper");
    assert_eq!(kernel_errno(ct.create(&nohelper)), EOPNOTSUPP);

    // The tool sees the same entries.
    let xml = ns.exec_ok(&["conntrack", "-L", "-o", "xml"]);
    let flows = support::parse_conntrack_xml(&xml).expect("xml");
    let all = ct.list(&DumpFilter::all()).expect("dump");
    assert_eq!(flows.len(), all.len());
    let mut compared = 0;
    for e in &all {
        let id = e.id.expect("id");
        let x = flows
            .iter()
            .find(|x| x.id == Some(id))
            .unwrap_or_else(|| panic!("conntrack -L has no id {id}"));
        for (t, xt) in [(&e.orig, &x.orig), (&e.reply, &x.reply)] {
            assert_eq!(Some(t.src), xt.src);
            assert_eq!(Some(t.dst), xt.dst);
            assert_eq!(t.proto, xt.l4proto);
            if t.proto != IPPROTO_ICMP {
                assert_eq!((t.src_port, t.dst_port), (xt.sport, xt.dport));
            }
        }
        assert_eq!(e.mark.unwrap_or(0), x.mark.unwrap_or(0), "mark of {id}");
        assert_eq!(e.zone, x.zone, "zone of {id}");
        assert_eq!(e.status.contains(Status::ASSURED), x.assured);
        assert_eq!(!e.status.contains(Status::SEEN_REPLY), x.unreplied);
        let diff = e.timeout.unwrap_or(0).abs_diff(x.timeout.unwrap_or(0));
        assert!(
            diff <= 2,
            "timeout of {id}: {:?} vs {:?}",
            e.timeout,
            x.timeout
        );
        // conntrack 1.4.7 names SCTP states with the TCP table in XML: compare TCP only.
        if e.orig.proto == IPPROTO_TCP {
            assert_eq!(e.state.name(), x.state.as_deref(), "state of {id}");
        }
        let text = xml_flow_text(&xml, id).expect("flow text");
        let helper = e
            .helper
            .as_ref()
            .map(|h| format!("<helper>{}</helper>", h.name));
        assert_eq!(
            helper.is_some_and(|h| text.contains(&h)),
            e.helper.is_some()
        );
        compared += 1;
    }
    assert_eq!(compared, 7);

    // Labels, through the shared label map (names l0..l127) when it can be mounted.
    match support::LabelMap::new() {
        Ok(map) => {
            let xml = map.conntrack(&ns, &["-L", "-o", "xml,labels"]).ok();
            let flows = support::parse_conntrack_xml(&xml).expect("xml");
            let x = flows
                .iter()
                .find(|x| x.id == e.id)
                .expect("the labelled entry");
            let bits: Vec<u16> = x
                .labels
                .iter()
                .filter_map(|n| support::LabelMap::bit(n))
                .collect();
            assert_eq!(bits, vec![1, 70, 127]);
        }
        Err(why) => eprintln!("NOTE: {T}: labels not compared with conntrack: {why}"),
    }
}

/// Updates change exactly the given fields; kernel refusals come back as typed errors.
#[test]
fn update_changes_fields() {
    const T: &str = "update_changes_fields";
    let Some(ns) = setup(T, &[]) else {
        return;
    };
    enable_labels(&ns);
    let mut ct = open(&ns);
    let t = tcp("10.5.0.1", 4000, "10.5.0.2", 80);
    ct.create(
        &CreateRequest::new(t.clone(), 100)
            .mark(0xff00)
            .labels(Labels(vec![1, 2]))
            .status(Status::SEEN_REPLY)
            .protoinfo(ProtoInfo {
                tcp: Some(TcpInfo {
                    state: Some(TcpState::SynRecv),
                    ..TcpInfo::default()
                }),
                ..ProtoInfo::default()
            }),
    )
    .expect("create");
    ct.update(
        &UpdateRequest::new(t.clone())
            .timeout(5000)
            .mark(0x0011, Some(0x00ff))
            .labels(Labels(vec![3]), Some(Labels(vec![2, 3])))
            .status(Status::SEEN_REPLY | Status::ASSURED)
            .protoinfo(ProtoInfo {
                tcp: Some(TcpInfo {
                    state: Some(TcpState::Established),
                    ..TcpInfo::default()
                }),
                ..ProtoInfo::default()
            }),
    )
    .expect("update");
    let e = find(&mut ct, &t);
    assert!(e.timeout.is_some_and(|v| (4998..=5000).contains(&v)));
    // Only the low byte changes: (0xff00 & !0x00ff) ^ 0x0011.
    assert_eq!(e.mark, Some(0xff11));
    // Bit 1 kept (outside the mask), bit 2 cleared, bit 3 set.
    assert_eq!(e.labels, Some(Labels(vec![1, 3])));
    assert!(e.status.contains(Status::ASSURED | Status::SEEN_REPLY));
    assert_eq!(e.state, State::Tcp(TcpState::Established));

    // ASSURED cannot be cleared (EBUSY), a missing entry is ENOENT, changing the
    // helper of an entry that has none is EOPNOTSUPP.
    let clear = UpdateRequest::new(t.clone()).status(Status::SEEN_REPLY);
    assert_eq!(kernel_errno(ct.update(&clear)), EBUSY);
    let missing = UpdateRequest::new(tcp("10.5.0.9", 1, "10.5.0.2", 80)).timeout(5);
    assert_eq!(kernel_errno(ct.update(&missing)), ENOENT);
    let helper = UpdateRequest::new(t.clone()).helper("ftp");
    assert_eq!(kernel_errno(ct.update(&helper)), EOPNOTSUPP);
    // Nothing of that changed the entry.
    let again = find(&mut ct, &t);
    assert_eq!((again.mark, again.labels), (e.mark, e.labels));
}

/// Deleting by tuple, by reply tuple and by id removes one entry each; flushing by mark,
/// family, zone, tuple filter and status removes exactly the matching entries.
#[test]
fn delete_and_flush_remove_exactly_what_was_asked() {
    const T: &str = "delete_and_flush_remove_exactly_what_was_asked";
    let Some(ns) = setup(T, &[]) else {
        return;
    };
    let mut ct = open(&ns);
    let mut batch = Batch::new();
    let mut groups: Vec<(&str, Vec<ConnKey>)> = Vec::new();
    let mut add = |name: &'static str, reqs: Vec<CreateRequest>| {
        let mut ks = Vec::new();
        for r in reqs {
            batch.push(&r).expect("valid");
            ks.push(ConnKey::new(r.zone.unwrap_or(0), &r.orig));
        }
        groups.push((name, ks));
    };
    add(
        "udp4 mark 1",
        (0..10)
            .map(|i| CreateRequest::new(udp("10.6.0.1", 1000 + i, "10.6.0.2", 53), 300).mark(1))
            .collect(),
    );
    add(
        "tcp4 mark 2",
        (0..10)
            .map(|i| CreateRequest::new(tcp("10.6.0.1", 2000 + i, "10.6.0.2", 80), 300).mark(2))
            .collect(),
    );
    add(
        "udp6 mark 1",
        (0..10)
            .map(|i| CreateRequest::new(udp("fd00::6:1", 3000 + i, "fd00::6:2", 53), 300).mark(1))
            .collect(),
    );
    add(
        "udp4 zone 9",
        (0..6)
            .map(|i| CreateRequest::new(udp("10.6.0.1", 4000 + i, "10.6.0.2", 53), 300).zone(9))
            .collect(),
    );
    add(
        "udp4 dport 5353",
        (0..5)
            .map(|i| CreateRequest::new(udp("10.6.0.1", 5000 + i, "10.6.0.3", 5353), 300))
            .collect(),
    );
    add(
        "udp4 assured",
        (0..4)
            .map(|i| {
                CreateRequest::new(udp("10.6.0.1", 6000 + i, "10.6.0.2", 53), 300)
                    .status(Status::SEEN_REPLY | Status::ASSURED)
            })
            .collect(),
    );
    let report = ct.execute_batch(&batch).expect("batch");
    assert!(report.all_succeeded(), "{report:?}");
    let mut expected: BTreeSet<ConnKey> = groups.iter().flat_map(|(_, k)| k.clone()).collect();
    assert_eq!(keys(&mut ct), expected);
    let take = |expected: &mut BTreeSet<ConnKey>, k: &ConnKey| assert!(expected.remove(k));

    // Delete by original tuple.
    let first = udp("10.6.0.1", 1000, "10.6.0.2", 53);
    ct.delete(&DeleteRequest::orig(first.clone()))
        .expect("delete");
    take(&mut expected, &groups[0].1[0]);
    assert_eq!(keys(&mut ct), expected);
    assert_eq!(kernel_errno(ct.delete(&DeleteRequest::orig(first))), ENOENT);
    // By reply tuple.
    ct.delete(&DeleteRequest::reply(
        udp("10.6.0.1", 1001, "10.6.0.2", 53).reversed(),
    ))
    .expect("delete by reply");
    take(&mut expected, &groups[0].1[1]);
    // With a wrong id nothing goes; by id (found by a dump) exactly that entry goes.
    let victim = find(&mut ct, &udp("10.6.0.1", 1002, "10.6.0.2", 53));
    let id = victim.id.expect("id");
    let wrong = DeleteRequest::entry(&victim).id(id.wrapping_add(1));
    assert_eq!(kernel_errno(ct.delete(&wrong)), ENOENT);
    assert_eq!(keys(&mut ct), expected);
    let gone = ct.delete_by_id(id).expect("delete by id");
    assert_eq!(gone.id, Some(id));
    take(&mut expected, &groups[0].1[2]);
    assert_eq!(keys(&mut ct), expected);

    // Flush by mark 2: exactly the ten TCP entries.
    ct.flush(&FlushRequest::matching(
        DumpFilter::all().mark(2, 0xffff_ffff),
    ))
    .expect("flush mark");
    for k in &groups[1].1 {
        take(&mut expected, k);
    }
    assert_eq!(keys(&mut ct), expected);
    // Flush IPv6: exactly the ten IPv6 entries (mark 1 IPv4 entries stay).
    ct.flush(&FlushRequest::family(Family::Ipv6))
        .expect("flush v6");
    for k in &groups[2].1 {
        take(&mut expected, k);
    }
    assert_eq!(keys(&mut ct), expected);
    // Flush zone 9.
    ct.flush(&FlushRequest::matching(DumpFilter::all().zone(9)))
        .expect("flush zone");
    for k in &groups[3].1 {
        take(&mut expected, k);
    }
    assert_eq!(keys(&mut ct), expected);
    // Flush by tuple filter: UDP to port 5353.
    let f = DumpFilter {
        family: Some(Family::Ipv4),
        orig: TupleFilter {
            proto: Some(IPPROTO_UDP),
            dst_port: Some(5353),
            ..TupleFilter::default()
        },
        ..DumpFilter::default()
    };
    ct.flush(&FlushRequest::matching(f)).expect("flush tuple");
    for k in &groups[4].1 {
        take(&mut expected, k);
    }
    assert_eq!(keys(&mut ct), expected);
    // Flush by status: the ASSURED ones.
    ct.flush(&FlushRequest::matching(
        DumpFilter::all().status(Status::ASSURED, Status::ASSURED),
    ))
    .expect("flush status");
    for k in &groups[5].1 {
        take(&mut expected, k);
    }
    assert_eq!(keys(&mut ct), expected);
    assert_eq!(expected.len(), 7);
    // Flush everything.
    ct.flush(&FlushRequest::all()).expect("flush all");
    assert!(keys(&mut ct).is_empty());
}

/// Raises the global `nf_conntrack_max` for the test's lifetime when it is too low
/// (it caps every namespace's table); restores the old value when dropped.
struct ConntrackMax {
    old: Option<String>,
}

const CONNTRACK_MAX: &str = "/proc/sys/net/netfilter/nf_conntrack_max";

impl ConntrackMax {
    fn at_least(n: u64) -> ConntrackMax {
        let old = std::fs::read_to_string(CONNTRACK_MAX).expect("read nf_conntrack_max");
        let cur: u64 = old.trim().parse().expect("nf_conntrack_max is a number");
        if cur >= n {
            return ConntrackMax { old: None };
        }
        std::fs::write(CONNTRACK_MAX, n.to_string()).expect("raise nf_conntrack_max");
        ConntrackMax { old: Some(old) }
    }
}

impl Drop for ConntrackMax {
    fn drop(&mut self) {
        if let Some(old) = &self.old {
            let _ = std::fs::write(CONNTRACK_MAX, old.trim());
        }
    }
}

/// 100 000 inserts in one batch, every acknowledgement checked; then a mixed batch whose
/// failures come back with their index and errno.
#[test]
fn batch_of_100k_inserts_checks_every_ack() {
    const T: &str = "batch_of_100k_inserts_checks_every_ack";
    let Some(ns) = setup(T, &[]) else {
        return;
    };
    let _max = ConntrackMax::at_least(150_000);
    let mut ct = open(&ns);
    const N: usize = 100_000;
    let build = Instant::now();
    let mut batch = Batch::with_capacity(N, 120);
    for i in 0..N {
        let [_, hi, mid, lo] = (i as u32).to_be_bytes();
        let src = IpAddr::from([10, 100 + hi, mid, lo]);
        let t = Tuple::with_ports(IPPROTO_UDP, src, 40000, ip("10.200.0.1"), 53);
        batch.push(&CreateRequest::new(t, 600)).expect("valid");
    }
    let built = build.elapsed();
    let report = ct.execute_batch(&batch).expect("batch");
    assert_eq!(report.requests, N);
    assert!(
        report.all_succeeded(),
        "failures {:?} lost {}",
        report.failures.first(),
        report.lost.len()
    );
    assert!(
        report.datagrams >= N / 1024,
        "{} datagrams",
        report.datagrams
    );
    assert_eq!(ct.count().expect("count").entries as usize, N);
    eprintln!(
        "{T}: {N} inserts acknowledged in {:?} ({:.0} inserts/s, {} datagrams; encoding took {built:?})",
        report.elapsed,
        report.rate(),
        report.datagrams
    );

    // Mixed: 1000 new entries, 10 duplicates (EEXIST), 5 unknown helpers (EOPNOTSUPP).
    let mut mixed = Batch::new();
    let mut dup_at = Vec::new();
    let mut helper_at = Vec::new();
    for i in 0..1015usize {
        let r = if i % 100 == 50 && dup_at.len() < 10 {
            dup_at.push(i);
            let src = IpAddr::from([10, 100, 0, i as u8]);
            CreateRequest::new(
                Tuple::with_ports(IPPROTO_UDP, src, 40000, ip("10.200.0.1"), 53),
                5,
            )
        } else if i % 200 == 77 && helper_at.len() < 5 {
            helper_at.push(i);
            CreateRequest::new(tcp("10.201.0.1", i as u16, "10.201.0.2", 21), 5)
                .helper("nosuchhelper")
        } else {
            CreateRequest::new(udp("10.202.0.1", i as u16, "10.202.0.2", 53), 5)
        };
        mixed.push(&r).expect("valid");
    }
    assert_eq!((dup_at.len(), helper_at.len()), (10, 5));
    let report = ct.execute_batch(&mixed).expect("mixed batch");
    assert!(report.is_complete(), "lost {:?}", report.lost);
    assert_eq!(report.succeeded, 1000);
    let dups: Vec<usize> = report.failures_with(EEXIST).map(|f| f.index).collect();
    let helpers: Vec<usize> = report.failures_with(EOPNOTSUPP).map(|f| f.index).collect();
    assert_eq!(dups, dup_at);
    assert_eq!(helpers, helper_at);
    assert_eq!(report.failures.len(), 15);
    assert!(report
        .failures
        .iter()
        .all(|f| f.error.request == "conntrack create"));
    assert_eq!(ct.count().expect("count").entries as usize, N + 1000);
}

/// A dump with IPCTNL_MSG_CT_GET_CTRZERO returns the counters and zeroes them.
#[test]
fn counters_zeroed_while_dumping() {
    const T: &str = "counters_zeroed_while_dumping";
    let Some(ns) = setup(T, &[]) else {
        return;
    };
    set_accounting(&ns.netns(), true, false).expect("acct");
    let server = ip("127.0.0.1");
    let flow = support::udp_exchange(&ns, &ns, server, true);
    let mut ct = open(&ns);
    let filter = DumpFilter {
        family: Some(Family::Ipv4),
        orig: TupleFilter {
            proto: Some(IPPROTO_UDP),
            src_port: Some(flow.client.port()),
            ..TupleFilter::default()
        },
        ..DumpFilter::default()
    };
    let before = ct.list(&filter).expect("dump");
    assert_eq!(before.len(), 1);
    let c = before[0]
        .counters_orig
        .expect("counters (nf_conntrack_acct=1)");
    assert_eq!(c.packets, 1);
    assert_eq!(c.bytes, 20 + 8 + 5);
    let zeroed = ct.zero_counters(&filter).expect("zeroing dump");
    assert_eq!(zeroed.len(), 1);
    assert_eq!(zeroed[0].counters_orig, Some(c));
    assert_eq!(zeroed[0].counters_reply.map(|r| r.packets), Some(1));
    let after = ct.list(&filter).expect("dump");
    let z = after[0].counters_orig.expect("counters");
    assert_eq!((z.packets, z.bytes), (0, 0));
    assert_eq!(after[0].counters_reply.map(|r| r.packets), Some(0));
}
