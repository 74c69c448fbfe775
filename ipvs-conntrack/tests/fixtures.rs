//! Decodes real kernel answers recorded in `tests/fixtures/` (see its README.md) and checks
//! them field by field, against the facts of the recorded state and against the
//! `conntrack`/`nfct` text recorded with each file. Also checks that every truncation
//! and every corrupted length field gives an error (or a value), never a panic, and that
//! unknown attributes survive decoding. No root needed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use ipvs_conntrack::conntrack::timeout::{from_sysctls, SctpTimeouts, TcpTimeouts, UdpTimeouts};
use ipvs_conntrack::conntrack::wire::{IPCTNL_MSG_CT_GET_STATS, IPCTNL_MSG_CT_GET_STATS_CPU};
use ipvs_conntrack::conntrack::{
    CpuStats, Entry, EntryView, Family, GlobalStats, Labels, ProtoTimeouts, SctpState, State,
    StateTimeouts, Status, TcpFlags, TcpState, TimeoutPolicy, TimeoutSource, UdpState,
};
use ipvs_conntrack::netlink::attr::{RawAttr, NLA_F_NESTED};
use ipvs_conntrack::netlink::frame::{flags, msg_type, NLMSG_HDRLEN};
use ipvs_conntrack::netlink::nfnetlink::{
    split_type, NFNL_SUBSYS_CTNETLINK, NFNL_SUBSYS_CTNETLINK_TIMEOUT,
};
use ipvs_conntrack::netlink::{Control, Frame, Frames};
use ipvs_conntrack::{DecodeError, KernelError};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");

/// Every recorded kernel answer (the `.request.bin` file is a request, not an answer).
const ANSWERS: &[&str] = &[
    "count.bin",
    "cpu_stats.bin",
    "dump_all.bin",
    "dump_mark.bin",
    "dump_zone.bin",
    "dump_ipv6.bin",
    "get_tcp.bin",
    "get_missing.bin",
    "dump_bad_mark.bin",
    "policy_tcp.bin",
    "policy_udp.bin",
    "policy_udplite.bin",
    "policy_sctp.bin",
    "policy_icmp.bin",
    "policy_icmpv6.bin",
    "policy_gre.bin",
    "policy_generic.bin",
    "policy_dccp.bin",
];

const ERANGE: i32 = 34;
const ENOENT: i32 = 2;
const EOPNOTSUPP: i32 = 95;

fn read(name: &str) -> Vec<u8> {
    let path = format!("{DIR}/{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn text(name: &str) -> String {
    let path = format!("{DIR}/{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn frames(buf: &[u8]) -> Vec<Frame<'_>> {
    Frames::new(buf)
        .collect::<Result<Vec<_>, _>>()
        .expect("recorded frames decode")
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The entries of a recorded dump, checking that it is data frames followed by one DONE.
fn dump(name: &str) -> Vec<Entry> {
    let buf = read(name);
    let fs = frames(&buf);
    let (last, data) = fs.split_last().expect("at least DONE");
    assert!(fs.iter().all(|f| f.header.sequence == last.header.sequence
        && f.header.port == last.header.port), "{name}: one answer");
    assert_eq!(last.control("dump").unwrap(), Control::Done(None), "{name}");
    data.iter()
        .map(|f| {
            assert_eq!(f.control("dump").unwrap(), Control::Data);
            assert!(f.is_multi(), "{name}: dump frames are NLM_F_MULTI");
            assert!(!f.is_dump_interrupted(), "{name}");
            Entry::from_frame(f).unwrap_or_else(|e| panic!("{name}: {e}"))
        })
        .collect()
}

fn by_orig(entries: &[Entry], src: &str, sport: Option<u16>) -> Entry {
    let src = ip(src);
    let found: Vec<_> = entries
        .iter()
        .filter(|e| e.orig.src == src && e.orig.src_port == sport)
        .collect();
    assert_eq!(found.len(), 1, "one entry from {src} {sport:?}");
    found[0].clone()
}

fn icmp_entry(entries: &[Entry], proto: u8) -> Entry {
    let found: Vec<_> = entries.iter().filter(|e| e.orig.proto == proto).collect();
    assert_eq!(found.len(), 1, "one entry of protocol {proto}");
    found[0].clone()
}

/// Label names by bit, from `connlabel.conf` (as conntrack-tools prints them).
fn label_names() -> HashMap<u16, String> {
    text("connlabel.conf")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (bit, name) = l.split_once(' ').unwrap();
            (bit.parse().unwrap(), name.trim().to_owned())
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The recorded text: `conntrack -o xml` flows and `conntrack -o extended` lines.

/// One `<flow>` of `conntrack -o xml`: `"original.src"`, `"reply.sport"`,
/// `"independent.timeout"`, … (empty elements such as `<assured/>` map to "").
#[derive(Debug, Default)]
struct XmlFlow {
    fields: HashMap<String, String>,
    labels: Vec<String>,
}

impl XmlFlow {
    fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }
    fn num<T: std::str::FromStr>(&self, key: &str) -> T {
        let v = self.get(key).unwrap_or_else(|| panic!("xml has no {key}"));
        v.parse()
            .unwrap_or_else(|_| panic!("xml {key}={v} is not a number"))
    }
}

fn xml_flows(txt: &str) -> Vec<XmlFlow> {
    use quick_xml::events::Event;
    let start = txt.find("<?xml").expect("xml part");
    // `conntrack -G` prints no closing </conntrack>.
    let end = txt.rfind("</flow>").expect("a flow") + "</flow>".len();
    let xml = format!("{}</conntrack>", &txt[start..end]);
    let mut reader = quick_xml::Reader::from_str(&xml);
    reader.config_mut().trim_text(true);
    let mut flows = Vec::new();
    let mut cur = XmlFlow::default();
    let mut dir = String::new();
    let mut stack: Vec<String> = Vec::new();
    loop {
        match reader.read_event().expect("valid xml") {
            Event::Start(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                if name == "flow" {
                    cur = XmlFlow::default();
                }
                for a in e.attributes() {
                    let a = a.unwrap();
                    let key = String::from_utf8(a.key.as_ref().to_vec()).unwrap();
                    let value = a.unescape_value().unwrap().into_owned();
                    if name == "meta" && key == "direction" {
                        dir = value;
                    } else if key == "protonum" {
                        cur.fields.insert(format!("{dir}.{name}.protonum"), value);
                    }
                }
                stack.push(name);
            }
            Event::Empty(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                cur.fields.insert(format!("{dir}.{name}"), String::new());
            }
            Event::Text(t) => {
                let value = t.unescape().unwrap().into_owned();
                let leaf = stack.last().cloned().unwrap_or_default();
                if leaf == "label" {
                    cur.labels.push(value);
                } else {
                    cur.fields.insert(format!("{dir}.{leaf}"), value);
                }
            }
            Event::End(e) => {
                stack.pop();
                if e.name().as_ref() == b"flow" {
                    flows.push(std::mem::take(&mut cur));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    flows
}

/// The `key=value` words of each `conntrack -o extended` line, in order.
fn extended_lines(txt: &str) -> Vec<Vec<(String, String)>> {
    txt.lines()
        .filter(|l| l.starts_with("ipv4 ") || l.starts_with("ipv6 "))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|w| w.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// The state word of the `conntrack -o extended` line of entry `id` (TCP and SCTP only).
fn extended_state(txt: &str, id: u32) -> Option<String> {
    let id_word = format!("id={id}");
    let line = txt
        .lines()
        .find(|l| l.split_whitespace().rfind(|w| w.starts_with("id=")) == Some(&id_word))
        .expect("extended line");
    let w = line.split_whitespace().nth(5)?;
    (!w.contains('=') && !w.starts_with('[')).then(|| w.to_owned())
}

fn words<'a>(line: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    line.iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Checks every decoded entry against the recorded `conntrack` text of the same state.
fn check_against_text(entries: &[Entry], txt: &str) {
    let flows = xml_flows(txt);
    let lines = extended_lines(txt);
    let labels = label_names();
    assert_eq!(flows.len(), entries.len(), "one xml flow per entry");
    assert_eq!(lines.len(), entries.len(), "one extended line per entry");
    for e in entries {
        let id = e.id.expect("dumps carry CTA_ID");
        let matching: Vec<_> = flows
            .iter()
            .filter(|f| f.get("independent.id") == Some(id.to_string().as_str()))
            .collect();
        assert_eq!(matching.len(), 1, "one xml flow with id {id}");
        let x = matching[0];
        let ctx = format!("entry id {id} ({} {})", e.orig.src, e.orig.proto);
        let fam: u8 = x.num("original.layer3.protonum");
        assert_eq!(Family::from(fam), e.family, "{ctx}");
        for (dir, t) in [("original", &e.orig), ("reply", &e.reply)] {
            assert_eq!(
                ip(x.get(&format!("{dir}.src")).unwrap()),
                t.src,
                "{ctx} {dir}"
            );
            assert_eq!(
                ip(x.get(&format!("{dir}.dst")).unwrap()),
                t.dst,
                "{ctx} {dir}"
            );
            let proto: u8 = x.num(&format!("{dir}.layer4.protonum"));
            assert_eq!(proto, t.proto, "{ctx} {dir}");
            match t.proto {
                6 | 17 | 132 => {
                    assert_eq!(Some(x.num(&format!("{dir}.sport"))), t.src_port, "{ctx}");
                    assert_eq!(Some(x.num(&format!("{dir}.dport"))), t.dst_port, "{ctx}");
                }
                47 => {
                    let key = |k: &str| {
                        let v = x.get(&format!("{dir}.{k}")).unwrap();
                        u16::from_str_radix(v.trim_start_matches("0x"), 16).unwrap()
                    };
                    assert_eq!(Some(key("srckey")), t.src_port, "{ctx} GRE key");
                    assert_eq!(Some(key("dstkey")), t.dst_port, "{ctx} GRE key");
                }
                _ => {}
            }
            let c = if dir == "original" {
                e.counters_orig
            } else {
                e.counters_reply
            }
            .expect("acct is on: counters present");
            assert_eq!(c.packets, x.num::<u64>(&format!("{dir}.packets")), "{ctx}");
            assert_eq!(c.bytes, x.num::<u64>(&format!("{dir}.bytes")), "{ctx}");
        }
        assert_eq!(e.timeout, Some(x.num("independent.timeout")), "{ctx}");
        assert_eq!(e.mark, Some(x.num("independent.mark")), "{ctx}");
        assert_eq!(
            e.zone,
            x.get("independent.zone").map(|z| z.parse().unwrap()),
            "{ctx}"
        );
        assert_eq!(e.use_count, Some(x.num("independent.use")), "{ctx}");
        assert_eq!(
            e.timestamp.and_then(|t| t.start),
            Some(x.num("independent.start")),
            "{ctx}"
        );
        assert_eq!(e.timestamp.and_then(|t| t.stop), None, "{ctx}");
        assert_eq!(
            e.status.contains(Status::ASSURED),
            x.get("independent.assured").is_some(),
            "{ctx}"
        );
        assert_eq!(
            !e.status.contains(Status::SEEN_REPLY),
            x.get("independent.unreplied").is_some(),
            "{ctx}"
        );
        let ext_state = extended_state(txt, id);
        match e.state {
            State::Tcp(s) => {
                assert_eq!(Some(s.name()), x.get("independent.state"), "{ctx}");
                assert_eq!(Some(s.name()), ext_state.as_deref(), "{ctx}");
            }
            State::Sctp(s) => {
                assert_eq!(Some(s.name()), ext_state.as_deref(), "{ctx}");
                // libnetfilter_conntrack's xml printer names SCTP states from the TCP table.
                let as_tcp = TcpState::from(s.value()).name();
                assert_eq!(Some(as_tcp), x.get("independent.state"), "{ctx}");
            }
            _ => {
                assert_eq!(x.get("independent.state"), None, "{ctx}");
                assert_eq!(ext_state, None, "{ctx}");
            }
        }
        let names: Vec<String> = e
            .labels
            .as_ref()
            .map(|l| l.0.iter().map(|b| labels[b].clone()).collect())
            .unwrap_or_default();
        assert_eq!(names, x.labels, "{ctx}");

        // The extended text adds what the xml leaves out: ICMP type, code and id.
        let matching: Vec<_> = lines
            .iter()
            .filter(|l| words(l, "id").last() == Some(&id.to_string().as_str()))
            .collect();
        assert_eq!(matching.len(), 1, "one extended line with id {id}");
        let l = matching[0];
        if matches!(e.orig.proto, 1 | 58) {
            let n = |k: &str, i: usize| words(l, k)[i].parse::<u16>().unwrap();
            assert_eq!(e.orig.icmp_type.map(u16::from), Some(n("type", 0)), "{ctx}");
            assert_eq!(e.orig.icmp_code.map(u16::from), Some(n("code", 0)), "{ctx}");
            assert_eq!(e.orig.icmp_id, Some(n("id", 0)), "{ctx}");
            assert_eq!(
                e.reply.icmp_type.map(u16::from),
                Some(n("type", 1)),
                "{ctx}"
            );
            assert_eq!(
                e.reply.icmp_code.map(u16::from),
                Some(n("code", 1)),
                "{ctx}"
            );
            assert_eq!(e.reply.icmp_id, Some(n("id", 1)), "{ctx}");
        }
        assert_eq!(words(l, "mark"), [e.mark.unwrap().to_string()], "{ctx}");
    }
}

// ---------------------------------------------------------------------------------------
// Dumps: field by field.

#[test]
fn dump_all_matches_recorded_text() {
    let entries = dump("dump_all.bin");
    assert_eq!(entries.len(), 16);
    check_against_text(&entries, &text("dump_all.txt"));
}

#[test]
fn dump_all_tcp_entries() {
    let all = dump("dump_all.bin");

    // Real traffic: 127.0.0.1:40001 -> :8080, kept open, marked 0x2a and labelled by nft.
    let e = by_orig(&all, "127.0.0.1", Some(40001));
    assert_eq!(e.family, Family::Ipv4);
    assert_eq!(e.message.msg, 0, "IPCTNL_MSG_CT_NEW");
    assert_eq!(e.message.flags, flags::NLM_F_MULTI);
    assert_eq!((e.orig.dst, e.orig.dst_port), (ip("127.0.0.1"), Some(8080)));
    assert_eq!(
        (e.reply.src, e.reply.src_port, e.reply.dst, e.reply.dst_port),
        (ip("127.0.0.1"), Some(8080), ip("127.0.0.1"), Some(40001))
    );
    assert_eq!((e.orig.proto, e.reply.proto), (6, 6));
    assert_eq!(e.state, State::Tcp(TcpState::Established));
    assert_eq!(
        e.status,
        Status::SEEN_REPLY | Status::ASSURED | Status::CONFIRMED
    );
    assert_eq!(e.mark, Some(0x2a));
    assert_eq!(e.labels, Some(Labels(vec![5])));
    assert_eq!(e.zone, None);
    let timeout = e.timeout.unwrap();
    assert!((431_990..=432_000).contains(&timeout), "{timeout}");
    let tcp = e.protoinfo.as_ref().unwrap().tcp.clone().unwrap();
    assert_eq!(tcp.state, Some(TcpState::Established));
    assert_eq!(
        (tcp.wscale_original, tcp.wscale_reply),
        (Some(10), Some(10))
    );
    let both = TcpFlags::WINDOW_SCALE | TcpFlags::SACK_PERM | TcpFlags::MAXACK_SET;
    assert_eq!(tcp.flags_original.unwrap().flags, both);
    assert_eq!(tcp.flags_reply.unwrap().flags, both);
    assert_eq!(tcp.flags_original.unwrap().mask, TcpFlags::empty());
    // 3-way handshake, "hello", ACK of "world!": 4 packets; the reply sent 3.
    assert_eq!(e.counters_orig.unwrap().packets, 4);
    assert_eq!(e.counters_reply.unwrap().packets, 3);
    assert!(e.timestamp.unwrap().start.is_some());
    assert_eq!(e.use_count, Some(1));
    assert!(e.id.is_some());
    assert_eq!(
        e.synproxy, None,
        "only ctnetlink-created entries carry SYNPROXY"
    );
    assert_eq!((e.helper.clone(), e.master.clone()), (None, None));

    // 127.0.0.1:40002 -> :8081 closed by the client first: TIME_WAIT.
    let e = by_orig(&all, "127.0.0.1", Some(40002));
    assert_eq!(e.state, State::Tcp(TcpState::TimeWait));
    assert_eq!(e.orig.dst_port, Some(8081));
    let tcp = e.protoinfo.as_ref().unwrap().tcp.clone().unwrap();
    assert!(tcp
        .flags_original
        .unwrap()
        .flags
        .contains(TcpFlags::CLOSE_INIT));
    assert!(!tcp
        .flags_reply
        .unwrap()
        .flags
        .contains(TcpFlags::CLOSE_INIT));
    assert!(e.timeout.unwrap() <= 120);
    assert_eq!(e.mark, Some(0));
    assert_eq!(e.labels, None);

    // [::1]:40003 -> [::1]:8443, IPv6.
    let e = by_orig(&all, "::1", Some(40003));
    assert_eq!(e.family, Family::Ipv6);
    assert_eq!(e.state, State::Tcp(TcpState::Established));
    assert_eq!((e.orig.dst, e.orig.dst_port), (ip("::1"), Some(8443)));
    assert_eq!(
        e.status,
        Status::SEEN_REPLY | Status::ASSURED | Status::CONFIRMED
    );

    // conntrack -I ... --state ESTABLISHED -t 3600 -u ASSURED -m 0x1234 -w 7
    let e = by_orig(&all, "10.1.0.1", Some(1111));
    assert_eq!((e.orig.dst, e.orig.dst_port), (ip("10.1.0.2"), Some(80)));
    assert_eq!((e.reply.src, e.reply.dst), (ip("10.1.0.2"), ip("10.1.0.1")));
    assert_eq!(e.state, State::Tcp(TcpState::Established));
    assert_eq!(e.status, Status::ASSURED | Status::CONFIRMED);
    assert_eq!(e.mark, Some(0x1234));
    assert_eq!(e.zone, Some(7));
    assert!((3595..=3600).contains(&e.timeout.unwrap()));
    let tcp = e.protoinfo.as_ref().unwrap().tcp.clone().unwrap();
    assert_eq!((tcp.wscale_original, tcp.wscale_reply), (Some(0), Some(0)));
    assert_eq!(
        tcp.flags_original.unwrap().flags,
        TcpFlags::SACK_PERM | TcpFlags::BE_LIBERAL
    );
    assert_eq!(
        e.counters_orig.map(|c| (c.packets, c.bytes)),
        Some((0, 0)),
        "no packet seen"
    );
    let sp = e.synproxy.unwrap();
    assert_eq!((sp.isn, sp.its, sp.tsoff), (Some(0), Some(0), Some(0)));

    // conntrack -I -p tcp -s fd00::5 -d fd00::6 --state SYN_SENT -t 60 -w 7
    let e = by_orig(&all, "fd00::5", Some(1));
    assert_eq!(e.family, Family::Ipv6);
    assert_eq!(e.state, State::Tcp(TcpState::SynSent));
    assert_eq!(e.status, Status::CONFIRMED);
    assert_eq!(e.zone, Some(7));
    assert!((55..=60).contains(&e.timeout.unwrap()));
}

#[test]
fn dump_all_udp_icmp_sctp_gre_entries() {
    let all = dump("dump_all.bin");

    // One request, one reply: SEEN_REPLY, not yet a stream.
    let e = by_orig(&all, "127.0.0.1", Some(40004));
    assert_eq!(e.orig.dst_port, Some(5300));
    assert_eq!(e.state, State::Udp(UdpState::Replied));
    assert_eq!(e.status, Status::SEEN_REPLY | Status::CONFIRMED);
    assert!(e.timeout.unwrap() <= 30);
    assert_eq!(e.counters_orig.unwrap().packets, 1);
    assert_eq!(e.counters_reply.unwrap().packets, 1);
    assert_eq!(e.protoinfo, None);

    // Traffic again after 2 s: ASSURED stream, marked 0x12a by nft.
    let e = by_orig(&all, "127.0.0.1", Some(40005));
    assert_eq!(e.state, State::Udp(UdpState::Stream));
    assert_eq!(
        e.status,
        Status::SEEN_REPLY | Status::ASSURED | Status::CONFIRMED
    );
    assert_eq!(e.mark, Some(0x12a));
    assert!((31..=120).contains(&e.timeout.unwrap()));
    assert_eq!(e.counters_orig.unwrap().packets, 2);
    assert_eq!(e.counters_reply.unwrap().packets, 2);

    // Nobody listens on 5302.
    let e = by_orig(&all, "127.0.0.1", Some(40006));
    assert_eq!(e.state, State::Udp(UdpState::Unreplied));
    assert_eq!(e.status, Status::CONFIRMED);
    assert_eq!(e.counters_orig.unwrap().packets, 1);
    assert_eq!(e.counters_reply.map(|c| (c.packets, c.bytes)), Some((0, 0)));

    let e = by_orig(&all, "::1", Some(40007));
    assert_eq!(e.family, Family::Ipv6);
    assert_eq!(e.state, State::Udp(UdpState::Replied));
    assert_eq!(
        (e.reply.src_port, e.reply.dst_port),
        (Some(5303), Some(40007))
    );

    // Labels fixture-a (bit 1) and fixture-c (bit 33: the second 32-bit word).
    let e = by_orig(&all, "10.1.0.9", Some(1));
    assert_eq!(e.labels, Some(Labels(vec![1, 33])));
    assert_eq!(e.state, State::Udp(UdpState::Unreplied));

    // --src-nat 192.0.2.1: the reply goes to the NAT address.
    let e = by_orig(&all, "10.1.0.3", Some(5000));
    assert_eq!((e.orig.dst, e.orig.dst_port), (ip("10.1.0.4"), Some(53)));
    assert_eq!(
        (e.reply.src, e.reply.dst, e.reply.src_port, e.reply.dst_port),
        (ip("10.1.0.4"), ip("192.0.2.1"), Some(53), Some(5000))
    );
    assert_eq!(
        e.status,
        Status::SEEN_REPLY
            | Status::CONFIRMED
            | Status::SRC_NAT
            | Status::SRC_NAT_DONE
            | Status::DST_NAT_DONE
    );
    assert_eq!(e.state, State::Udp(UdpState::Replied));
    assert_eq!(
        (e.nat_src, e.nat_dst),
        (None, None),
        "not dumped by the kernel"
    );

    // --dst-nat fd00::99 (IPv6): the reply comes from the NAT address.
    let e = by_orig(&all, "fd00::1", Some(6000));
    assert_eq!(
        (e.reply.src, e.reply.dst, e.reply.src_port, e.reply.dst_port),
        (ip("fd00::99"), ip("fd00::1"), Some(7000), Some(6000))
    );
    assert_eq!(
        e.status,
        Status::CONFIRMED | Status::DST_NAT | Status::SRC_NAT_DONE | Status::DST_NAT_DONE
    );

    // SCTP ESTABLISHED with verification tags (see record.sh for their byte order).
    let e = by_orig(&all, "10.1.0.5", Some(2905));
    assert_eq!(e.orig.proto, 132);
    assert_eq!(e.state, State::Sctp(SctpState::Established));
    let sctp = e.protoinfo.as_ref().unwrap().sctp.clone().unwrap();
    assert_eq!(sctp.state, Some(SctpState::Established));
    assert_eq!(sctp.vtag_original, Some(0x1111_0000));
    assert_eq!(sctp.vtag_reply, Some(0x2222_0000));
    assert!((195..=200).contains(&e.timeout.unwrap()));

    // GRE keys travel as the tuple's ports.
    let e = by_orig(&all, "10.1.0.7", Some(0x10));
    assert_eq!(e.orig.proto, 47);
    assert_eq!(e.orig.dst_port, Some(0x20));
    assert_eq!(
        (e.reply.src_port, e.reply.dst_port),
        (Some(0x20), Some(0x10))
    );
    assert_eq!(e.state, State::Gre(UdpState::Unreplied));
    assert!((245..=250).contains(&e.timeout.unwrap()));

    // ICMP echo id 0x1234, answered by the kernel.
    let e = icmp_entry(&all, 1);
    assert_eq!((e.orig.src, e.orig.dst), (ip("127.0.0.1"), ip("127.0.0.1")));
    assert_eq!(
        (e.orig.icmp_type, e.orig.icmp_code, e.orig.icmp_id),
        (Some(8), Some(0), Some(0x1234))
    );
    assert_eq!(
        (e.reply.icmp_type, e.reply.icmp_code, e.reply.icmp_id),
        (Some(0), Some(0), Some(0x1234))
    );
    assert_eq!((e.orig.src_port, e.orig.dst_port), (None, None));
    assert_eq!(e.state, State::Icmp);
    assert_eq!(e.status, Status::SEEN_REPLY | Status::CONFIRMED);

    // ICMPv6 echo id 0x5678.
    let e = icmp_entry(&all, 58);
    assert_eq!(e.family, Family::Ipv6);
    assert_eq!(
        (e.orig.icmp_type, e.orig.icmp_code, e.orig.icmp_id),
        (Some(128), Some(0), Some(0x5678))
    );
    assert_eq!(
        (e.reply.icmp_type, e.reply.icmp_code, e.reply.icmp_id),
        (Some(129), Some(0), Some(0x5678))
    );
    assert_eq!(e.state, State::Icmp);
}

#[test]
fn every_entry_has_the_extensions_enabled_in_the_namespace() {
    let all = dump("dump_all.bin");
    let ids: BTreeSet<u32> = all.iter().map(|e| e.id.unwrap()).collect();
    assert_eq!(ids.len(), all.len(), "ids are unique");
    for e in &all {
        assert!(e.counters_orig.is_some() && e.counters_reply.is_some());
        assert!(e.timestamp.unwrap().start.is_some());
        assert!(e.status.contains(Status::CONFIRMED));
        assert_eq!(e.use_count, Some(1));
        assert!(e.timeout.is_some() && e.mark.is_some());
        assert_eq!(e.family == Family::Ipv4, e.orig.src.is_ipv4());
        assert_eq!(e.orig.proto, e.reply.proto);
        assert!(e.orig.unknown.is_empty() && e.reply.unknown.is_empty());
        assert!(e.unknown.is_empty());
    }
}

/// A filtered dump holds exactly the entries of the full dump that match, and its text agrees.
fn check_filtered(name: &str, keep: impl Fn(&Entry) -> bool, expected: usize) {
    let all = dump("dump_all.bin");
    let got = dump(&format!("{name}.bin"));
    assert_eq!(got.len(), expected, "{name}");
    let want: BTreeSet<u32> = all
        .iter()
        .filter(|e| keep(e))
        .map(|e| e.id.unwrap())
        .collect();
    let have: BTreeSet<u32> = got.iter().map(|e| e.id.unwrap()).collect();
    assert_eq!(have, want, "{name}");
    for g in &got {
        let a = all.iter().find(|a| a.id == g.id).unwrap();
        assert_eq!((&g.orig, &g.reply), (&a.orig, &a.reply), "{name}");
        assert_eq!(
            (g.status, g.mark, g.zone),
            (a.status, a.mark, a.zone),
            "{name}"
        );
        assert_eq!((&g.labels, g.state), (&a.labels, a.state), "{name}");
        assert!(g.timeout <= a.timeout, "{name}: recorded later");
    }
    check_against_text(&got, &text(&format!("{name}.txt")));
}

#[test]
fn dump_filtered_by_mark() {
    check_filtered("dump_mark", |e| e.mark.unwrap() & 0xff == 0x2a, 2);
}

#[test]
fn dump_filtered_by_zone() {
    check_filtered("dump_zone", |e| e.zone == Some(7), 2);
}

#[test]
fn dump_filtered_by_family() {
    check_filtered("dump_ipv6", |e| e.family == Family::Ipv6, 5);
}

#[test]
fn get_returns_the_entry_then_an_ack() {
    let buf = read("get_tcp.bin");
    let fs = frames(&buf);
    assert_eq!(fs.len(), 2);
    assert_eq!(fs[1].control("get").unwrap(), Control::Ack);
    assert_eq!(fs[0].header.sequence, fs[1].header.sequence);
    assert!(
        fs[0].is_multi(),
        "the kernel flags the single answer NLM_F_MULTI"
    );
    let e = Entry::from_frame(&fs[0]).unwrap();
    let d = by_orig(&dump("dump_all.bin"), "127.0.0.1", Some(40001));
    assert_eq!(e.id, d.id);
    assert_eq!((&e.orig, &e.reply, e.state), (&d.orig, &d.reply, d.state));
    assert_eq!((e.mark, &e.labels, e.status), (d.mark, &d.labels, d.status));
    assert_eq!(e.timestamp, d.timestamp);
    assert_eq!(
        e.use_count,
        Some(2),
        "the get holds a reference while it answers"
    );
    check_against_text(&[e], &text("get_tcp.txt"));
}

// ---------------------------------------------------------------------------------------
// Statistics.

#[test]
fn count_matches_dump_and_text() {
    let buf = read("count.bin");
    let fs = frames(&buf);
    assert_eq!(fs.len(), 2);
    assert_eq!(
        split_type(fs[0].header.message_type),
        (NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_STATS)
    );
    assert_eq!(fs[1].control("count").unwrap(), Control::Ack);
    assert!(
        fs[0].is_multi(),
        "the kernel flags the single answer NLM_F_MULTI"
    );
    let s = GlobalStats::from_frame(&fs[0]).unwrap();
    assert_eq!(s.entries, 16);
    assert_eq!(s.entries as usize, dump("dump_all.bin").len());
    assert!(s.unknown.is_empty());
    let txt = text("count.txt");
    let body: Vec<&str> = txt.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(body[0].trim().parse::<u32>().unwrap(), s.entries);
    let max = body
        .iter()
        .find_map(|l| l.strip_prefix("net.netfilter.nf_conntrack_max = "))
        .expect("nf_conntrack_max in count.txt");
    assert_eq!(s.max_entries, Some(max.trim().parse().unwrap()));
}

#[test]
fn cpu_stats_match_text() {
    let buf = read("cpu_stats.bin");
    let fs = frames(&buf);
    let (last, data) = fs.split_last().unwrap();
    assert_eq!(last.control("stats").unwrap(), Control::Done(None));
    let stats: Vec<CpuStats> = data
        .iter()
        .map(|f| {
            assert_eq!(
                split_type(f.header.message_type),
                (NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_STATS_CPU)
            );
            CpuStats::from_frame(f).unwrap()
        })
        .collect();
    let txt = text("cpu_stats.txt");
    let lines: Vec<&str> = txt.lines().filter(|l| l.starts_with("cpu=")).collect();
    assert_eq!(stats.len(), lines.len());
    assert_eq!(stats.len(), 2, "recorded on a 2-CPU machine");
    for (s, line) in stats.iter().zip(&lines) {
        let kv: BTreeMap<&str, u32> = line
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k, v.parse().unwrap()))
            .collect();
        assert_eq!(u32::from(s.cpu), kv["cpu"]);
        let decoded = [
            ("found", s.found),
            ("invalid", s.invalid),
            ("insert", s.insert),
            ("insert_failed", s.insert_failed),
            ("drop", s.drop),
            ("early_drop", s.early_drop),
            ("error", s.error),
            ("search_restart", s.search_restart),
            ("clash_resolve", s.clash_resolve),
            ("chaintoolong", s.chaintoolong),
        ];
        for (k, v) in decoded {
            assert_eq!(v, Some(kv[k]), "cpu {} {k}", s.cpu);
        }
        // Counters the kernel no longer sends.
        assert_eq!(
            (s.searched, s.new, s.ignore, s.delete, s.delete_list),
            (None, None, None, None, None)
        );
        assert!(s.unknown.is_empty());
    }
    let total = CpuStats::sum(&stats);
    let inserted: u32 = lines
        .iter()
        .map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("insert="))
                .unwrap()
                .parse::<u32>()
                .unwrap()
        })
        .sum();
    assert_eq!(total.insert, Some(inserted));
}

// ---------------------------------------------------------------------------------------
// Timeout policies.

fn policy(l4: &str) -> TimeoutPolicy {
    let name = format!("policy_{l4}.bin");
    let buf = read(&name);
    let fs = frames(&buf);
    assert_eq!(fs.len(), 2, "{name}: policy then ACK");
    assert_eq!(fs[1].control("policy").unwrap(), Control::Ack);
    assert_eq!(
        split_type(fs[0].header.message_type).0,
        NFNL_SUBSYS_CTNETLINK_TIMEOUT
    );
    let p = TimeoutPolicy::from_frame(&fs[0]).unwrap();
    assert_eq!(p.name, None, "{name}: default policies have no name");
    assert_eq!(p.use_count, None, "{name}");
    assert!(p.unknown.is_empty(), "{name}");
    p
}

/// The `.NAME = value` lines `nfct timeout default-get` printed.
fn nfct_values(l4: &str) -> Vec<(String, u32)> {
    text(&format!("policy_{l4}.txt"))
        .lines()
        .filter_map(|l| l.trim().strip_prefix('.'))
        .filter_map(|l| l.split_once(" = "))
        .filter_map(|(k, v)| Some((k.to_owned(), v.trim_end_matches(',').parse().ok()?)))
        .filter(|(k, _)| k != "l3proto" && k != "l4proto")
        .collect()
}

#[test]
fn default_policies_decode_to_kernel_defaults() {
    let p = policy("tcp");
    assert_eq!((p.l3proto, p.l4proto), (2, 6));
    assert_eq!(
        p.timeouts,
        ProtoTimeouts::Tcp(TcpTimeouts {
            syn_sent: Some(120),
            syn_recv: Some(60),
            established: Some(432_000),
            fin_wait: Some(120),
            close_wait: Some(60),
            last_ack: Some(30),
            time_wait: Some(120),
            close: Some(10),
            syn_sent2: Some(120),
            retrans: Some(300),
            unack: Some(300),
        })
    );
    let udp = UdpTimeouts {
        unreplied: Some(30),
        replied: Some(120),
    };
    let p = policy("udp");
    assert_eq!(
        (p.l3proto, p.l4proto, p.timeouts),
        (2, 17, ProtoTimeouts::Udp(udp))
    );
    let p = policy("udplite");
    assert_eq!(
        (p.l3proto, p.l4proto, p.timeouts),
        (2, 136, ProtoTimeouts::UdpLite(udp))
    );
    let p = policy("sctp");
    assert_eq!((p.l3proto, p.l4proto), (2, 132));
    assert_eq!(
        p.timeouts,
        ProtoTimeouts::Sctp(SctpTimeouts {
            closed: Some(10),
            cookie_wait: Some(3),
            cookie_echoed: Some(3),
            established: Some(210),
            shutdown_sent: Some(3),
            shutdown_recd: Some(3),
            shutdown_ack_sent: Some(3),
            heartbeat_sent: Some(30),
            // The state is gone from the kernel; its slot is still sent, as 0.
            heartbeat_acked: Some(0),
        })
    );
    let p = policy("icmp");
    assert_eq!(
        (p.l3proto, p.l4proto, p.timeouts),
        (2, 1, ProtoTimeouts::Icmp(Some(30)))
    );
    let p = policy("icmpv6");
    assert_eq!(
        (p.l3proto, p.l4proto, p.timeouts),
        (10, 58, ProtoTimeouts::Icmpv6(Some(30)))
    );
    let p = policy("gre");
    assert_eq!(
        (p.l3proto, p.l4proto, p.timeouts),
        (
            2,
            47,
            ProtoTimeouts::Gre(UdpTimeouts {
                unreplied: Some(30),
                replied: Some(180)
            })
        )
    );
    let p = policy("generic");
    assert_eq!(
        (p.l3proto, p.l4proto, p.timeouts),
        (2, 255, ProtoTimeouts::Generic(Some(600)))
    );
}

#[test]
fn default_policies_match_nfct_text() {
    for l4 in [
        "tcp", "udp", "udplite", "sctp", "icmp", "icmpv6", "gre", "generic",
    ] {
        let p = policy(l4);
        let named = p.timeouts.named_values();
        let nfct = nfct_values(l4);
        assert!(!nfct.is_empty(), "{l4}: nfct printed values");
        // nfct prints the states it knows; each must equal the decoded value of that name.
        for (name, value) in &nfct {
            let kernel_name = if name == "UNACKNOWLEDGED" {
                "UNACK"
            } else {
                name
            };
            let hits: Vec<u32> = named
                .iter()
                .filter(|(n, _)| n.ends_with(&format!("_{kernel_name}")))
                .map(|(_, v)| *v)
                .collect();
            assert_eq!(hits, [*value], "{l4} {name}");
        }
    }
}

#[test]
fn sysctl_and_cttimeout_agree() {
    let mut from_policies = StateTimeouts::empty(TimeoutSource::Cttimeout);
    for l4 in [
        "tcp", "udp", "udplite", "sctp", "icmp", "icmpv6", "gre", "generic",
    ] {
        from_policies.set(&policy(l4).timeouts);
    }
    let mut sysctls = HashMap::new();
    for l4 in ["tcp", "udp", "sctp", "icmp", "icmpv6", "gre", "generic"] {
        for l in text(&format!("policy_{l4}.txt")).lines() {
            if let Some((k, v)) = l.split_once(" = ") {
                if let Some(k) = k.strip_prefix("net.netfilter.") {
                    sysctls.insert(k.to_owned(), v.trim().parse::<u32>().unwrap());
                }
            }
        }
    }
    assert!(sysctls.len() >= 20, "{sysctls:?}");
    let from_sysctl = from_sysctls(|name| sysctls.get(name).copied());
    assert_eq!(from_sysctl.tcp, from_policies.tcp);
    assert_eq!(from_sysctl.udp, from_policies.udp);
    assert_eq!(
        from_sysctl.udplite, from_policies.udplite,
        "no udplite sysctls: UDP's"
    );
    assert_eq!(from_sysctl.icmp, from_policies.icmp);
    assert_eq!(from_sysctl.icmpv6, from_policies.icmpv6);
    assert_eq!(from_sysctl.gre, from_policies.gre);
    assert_eq!(from_sysctl.generic, from_policies.generic);
    // HEARTBEAT_ACKED has no sysctl; cttimeout still sends its (zero) slot.
    let mut sctp = from_policies.sctp;
    assert_eq!(sctp.heartbeat_acked, Some(0));
    sctp.heartbeat_acked = None;
    assert_eq!(from_sysctl.sctp, sctp);
}

#[test]
fn state_timeouts_join_real_entries() {
    let mut t = StateTimeouts::empty(TimeoutSource::Cttimeout);
    for l4 in [
        "tcp", "udp", "udplite", "sctp", "icmp", "icmpv6", "gre", "generic",
    ] {
        t.set(&policy(l4).timeouts);
    }
    let all = dump("dump_all.bin");
    let lines = extended_lines(&text("dump_all.txt"));
    let mut checked = 0;
    for e in &all {
        let full = t.for_state(e.orig.proto, e.state).unwrap();
        // Entries made by traffic (on lo) run on the policy; conntrack -I set its own -t.
        if !e.orig.src.is_loopback() {
            continue;
        }
        let mut joined = e.clone();
        joined.state_timeout = Some(full);
        let since = joined.seconds_since_refresh().unwrap();
        let line = lines
            .iter()
            .find(|l| words(l, "id").last() == Some(&e.id.unwrap().to_string().as_str()))
            .unwrap();
        let delta: u32 = words(line, "delta-time")[0].parse().unwrap();
        assert!(e.timeout.unwrap() <= full, "{e:?}");
        assert!(
            since <= delta + 1,
            "refreshed after the flow started: {since} {delta}"
        );
        checked += 1;
    }
    assert_eq!(checked, 9, "every traffic flow");
    let tcp = by_orig(&all, "127.0.0.1", Some(40001));
    assert_eq!(t.for_state(6, tcp.state), Some(432_000));
    let tw = by_orig(&all, "127.0.0.1", Some(40002));
    assert_eq!(t.for_state(6, tw.state), Some(120));
    let stream = by_orig(&all, "127.0.0.1", Some(40005));
    assert_eq!(t.for_state(17, stream.state), Some(120));
    let replied = by_orig(&all, "127.0.0.1", Some(40004));
    assert_eq!(t.for_state(17, replied.state), Some(30));
}

// ---------------------------------------------------------------------------------------
// Errors.

/// The single NLMSG_ERROR of an error fixture: its header flags and sequence, the header
/// of the failed request it carries back (length, type, flags, sequence), and the error.
struct ErrorFixture {
    flags: u16,
    sequence: u32,
    echoed: (u32, u16, u16, u32),
    err: KernelError,
}

fn only_error(name: &'static str) -> ErrorFixture {
    let buf = read(name);
    let fs = frames(&buf);
    assert_eq!(fs.len(), 1, "{name}");
    let f = fs[0];
    assert_eq!(f.header.message_type, msg_type::NLMSG_ERROR);
    let p = f.payload;
    let u32_at = |i: usize| u32::from_ne_bytes(p[i..i + 4].try_into().unwrap());
    let u16_at = |i: usize| u16::from_ne_bytes(p[i..i + 2].try_into().unwrap());
    match f.control(name).unwrap() {
        Control::Error(err) => ErrorFixture {
            flags: f.header.flags,
            sequence: f.header.sequence,
            echoed: (u32_at(4), u16_at(8), u16_at(10), u32_at(12)),
            err,
        },
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn get_of_missing_entry_is_enoent_without_message() {
    let f = only_error("get_missing.bin");
    assert_eq!(f.err.errno, ENOENT);
    assert_eq!((f.err.message, f.err.offset), (None, None));
    assert_eq!(f.flags, flags::NLM_F_CAPPED, "capped, no extended ACK TLVs");
    let (_, ty, fl, seq) = f.echoed;
    assert_eq!(ty, 0x0101, "IPCTNL_MSG_CT_GET");
    assert_eq!(fl, flags::NLM_F_REQUEST | flags::NLM_F_ACK);
    assert_eq!(seq, f.sequence);
    assert!(text("get_missing.txt").contains("such conntrack doesn't exist"));
}

#[test]
fn unsupported_policy_is_eopnotsupp() {
    let f = only_error("policy_dccp.bin");
    assert_eq!(f.err.errno, EOPNOTSUPP);
    assert_eq!(f.err.message, None);
    assert_eq!(f.echoed.1, 0x0804, "IPCTNL_MSG_TIMEOUT_DEFAULT_GET");
    assert_eq!(f.echoed.3, f.sequence);
    let os = std::io::Error::from_raw_os_error(f.err.errno).to_string();
    assert!(os.starts_with("Operation not supported"));
    assert!(text("policy_dccp.txt").contains("Operation not supported"));
}

#[test]
fn rejected_dump_has_extended_ack_pointing_at_the_attribute() {
    let f = only_error("dump_bad_mark.bin");
    let k = &f.err;
    assert_eq!(k.errno, ERANGE);
    assert_eq!(
        k.message.as_deref(),
        Some("Attribute failed policy validation")
    );
    assert_eq!(k.offset, Some(20));
    assert_eq!(f.flags, flags::NLM_F_CAPPED | flags::NLM_F_ACK_TLVS);
    let req = read("dump_bad_mark.request.bin");
    let (len, ty, fl, seq) = f.echoed;
    assert_eq!(len as usize, req.len());
    assert_eq!(&req[4..6], &ty.to_ne_bytes());
    assert_eq!(fl, flags::NLM_F_REQUEST | flags::NLM_F_DUMP);
    assert_eq!(&req[8..12], &seq.to_ne_bytes());
    assert_eq!(seq, f.sequence);
    // The offset points at the 2-byte CTA_MARK (nla_len 6, type 8) after nlmsghdr + nfgenmsg.
    let at = k.offset.unwrap() as usize;
    assert_eq!(u16::from_ne_bytes([req[at], req[at + 1]]), 6);
    assert_eq!(u16::from_ne_bytes([req[at + 2], req[at + 3]]), 8);
    let t = text("dump_bad_mark.txt");
    assert!(t.contains("errno 34") && t.contains("Attribute failed policy validation"));
}

// ---------------------------------------------------------------------------------------
// Everything decoded; unknown attributes survive.

#[test]
fn real_fixtures_have_no_unknown_attributes() {
    let mut views = 0;
    for name in ANSWERS {
        let buf = read(name);
        for f in frames(&buf) {
            if f.control(name).unwrap() != Control::Data {
                continue;
            }
            let (subsys, msg) = split_type(f.header.message_type);
            match (subsys, msg) {
                (NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_STATS) => {
                    assert!(GlobalStats::from_frame(&f).unwrap().unknown.is_empty())
                }
                (NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_STATS_CPU) => {
                    assert!(CpuStats::from_frame(&f).unwrap().unknown.is_empty())
                }
                (NFNL_SUBSYS_CTNETLINK, _) => {
                    let v = EntryView::from_frame(&f).unwrap();
                    assert_eq!(v.unknown(), Vec::<RawAttr>::new(), "{name}");
                    for t in [v.orig().unwrap(), v.reply().unwrap()].iter().flatten() {
                        assert_eq!(t.unknown(), Vec::<RawAttr>::new(), "{name}");
                    }
                    if let Some(p) = &v.protoinfo().unwrap() {
                        assert!(p.unknown.is_empty(), "{name}");
                    }
                    views += 1;
                }
                (NFNL_SUBSYS_CTNETLINK_TIMEOUT, _) => {
                    assert!(TimeoutPolicy::from_frame(&f).unwrap().unknown.is_empty())
                }
                other => panic!("{name}: unexpected message {other:?}"),
            }
        }
    }
    assert_eq!(views, 16 + 2 + 2 + 5 + 1);
}

/// Walks the TLVs of `buf` (test-local, independent of the library): (offset, len, type).
fn tlvs(buf: &[u8]) -> Vec<(usize, usize, u16)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 4 <= buf.len() {
        let len = usize::from(u16::from_ne_bytes([buf[pos], buf[pos + 1]]));
        let ty = u16::from_ne_bytes([buf[pos + 2], buf[pos + 3]]);
        assert!(len >= 4 && pos + len <= buf.len(), "well-formed fixture");
        out.push((pos, len, ty));
        pos += (len + 3) & !3;
    }
    out
}

fn attr(ty: u16, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&u16::try_from(4 + value.len()).unwrap().to_ne_bytes());
    v.extend_from_slice(&ty.to_ne_bytes());
    v.extend_from_slice(value);
    v.resize((v.len() + 3) & !3, 0);
    v
}

fn add_u16(buf: &mut [u8], at: usize, n: usize) {
    let v = u16::from_ne_bytes([buf[at], buf[at + 1]]) + u16::try_from(n).unwrap();
    buf[at..at + 2].copy_from_slice(&v.to_ne_bytes());
}

#[test]
fn unknown_attributes_survive_with_their_bytes() {
    let buf = read("dump_all.bin");
    let fs = frames(&buf);
    let frame = fs
        .iter()
        .find(|f| Entry::from_frame(f).is_ok_and(|e| e.orig.src_port == Some(40001)))
        .unwrap();
    let original = Entry::from_frame(frame).unwrap();
    let start = frame.offset;
    let mut msg = buf[start..start + frame.header.length as usize].to_vec();

    // Inside CTA_TUPLE_ORIG: a nested unknown (type 7) after CTA_TUPLE_PROTO, and an
    // unknown type 12 at the end of CTA_TUPLE_PROTO.
    let body = NLMSG_HDRLEN + 4;
    let (t_off, t_len, t_ty) = tlvs(&msg[body..])[0];
    assert_eq!(t_ty & !NLA_F_NESTED, 1, "CTA_TUPLE_ORIG comes first");
    let t_at = body + t_off;
    let inner = tlvs(&msg[t_at + 4..t_at + t_len]);
    let (p_off, p_len, p_ty) = inner[1];
    assert_eq!(p_ty & !NLA_F_NESTED, 2, "CTA_TUPLE_PROTO");
    assert_eq!(inner.len(), 2);
    assert_eq!(p_len % 4, 0, "nests include their members' padding");
    let p_at = t_at + 4 + p_off;
    let in_proto = attr(12, &[0xab]);
    let nested_value = attr(1, &0xdead_beef_u32.to_be_bytes());
    let in_tuple = attr(7 | NLA_F_NESTED, &nested_value);
    msg.splice(p_at + p_len..p_at + p_len, in_proto.iter().copied());
    add_u16(&mut msg, p_at, in_proto.len());
    let t_end = t_at + t_len + in_proto.len();
    msg.splice(t_end..t_end, in_tuple.iter().copied());
    add_u16(&mut msg, t_at, in_proto.len() + in_tuple.len());
    // At the end of the message: unknown top-level type 31 with 5 bytes (padded).
    msg.extend_from_slice(&attr(31, &[1, 2, 3, 4, 5]));
    let total = u32::try_from(msg.len()).unwrap();
    msg[0..4].copy_from_slice(&total.to_ne_bytes());

    let fs2 = frames(&msg);
    let e = Entry::from_frame(&fs2[0]).unwrap();
    let top = RawAttr {
        kind: 31,
        nested: false,
        value: vec![1, 2, 3, 4, 5],
    };
    assert_eq!(e.unknown, std::slice::from_ref(&top));
    let tuple_unknown = vec![
        RawAttr {
            kind: 12,
            nested: false,
            value: vec![0xab],
        },
        RawAttr {
            kind: 7,
            nested: true,
            value: nested_value.clone(),
        },
    ];
    assert_eq!(e.orig.unknown, tuple_unknown);
    assert!(e.reply.unknown.is_empty());
    let v = EntryView::from_frame(&fs2[0]).unwrap();
    assert_eq!(v.unknown(), [top]);
    assert_eq!(v.orig().unwrap().unwrap().unknown(), tuple_unknown);
    // Everything else decodes as before.
    let mut rest = e.clone();
    rest.unknown.clear();
    rest.orig.unknown.clear();
    assert_eq!(rest, original);
}

// ---------------------------------------------------------------------------------------
// Truncation and corrupted lengths: errors (or values), never panics.

/// Decodes every message of `buf` the way a client would; the first error stops it.
fn decode_all(buf: &[u8]) -> Result<usize, DecodeError> {
    let mut n = 0;
    for f in Frames::new(buf) {
        let f = f?;
        n += 1;
        if f.control("decode")? != Control::Data {
            continue;
        }
        match split_type(f.header.message_type) {
            (NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_STATS) => {
                GlobalStats::from_frame(&f)?;
            }
            (NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_STATS_CPU) => {
                CpuStats::from_frame(&f)?;
            }
            (NFNL_SUBSYS_CTNETLINK_TIMEOUT, _) => {
                TimeoutPolicy::from_frame(&f)?;
            }
            _ => {
                let v = EntryView::from_frame(&f)?;
                let _ = v.unknown();
                let _ = v.label_bits().count();
                v.to_owned()?;
            }
        }
    }
    Ok(n)
}

fn checked_decode(buf: &[u8], what: &str) -> Result<usize, DecodeError> {
    let r = decode_all(buf);
    if let Err(e) = &r {
        assert!(
            e.offset <= buf.len(),
            "{what}: error offset {} past the end",
            e.offset
        );
        let _ = e.to_string();
    }
    r
}

#[test]
fn every_prefix_of_every_fixture_is_an_error_unless_it_ends_on_a_message() {
    for name in ANSWERS {
        let buf = read(name);
        let whole = checked_decode(&buf, name).unwrap();
        let ends: BTreeSet<usize> = frames(&buf)
            .iter()
            .flat_map(|f| {
                let end = f.offset + f.header.length as usize;
                [end, (end + 3) & !3]
            })
            .chain([0])
            .collect();
        for cut in 0..buf.len() {
            let r = checked_decode(&buf[..cut], name);
            if ends.contains(&cut) {
                assert!(
                    r.is_ok_and(|n| n < whole),
                    "{name}: prefix {cut} is whole messages"
                );
            } else {
                assert!(r.is_err(), "{name}: prefix {cut} decoded");
            }
        }
    }
}

#[test]
fn every_message_cut_short_is_an_error() {
    for name in ANSWERS {
        let buf = read(name);
        for f in frames(&buf) {
            let msg = &buf[f.offset..f.offset + f.header.length as usize];
            let data = f.control(name).unwrap() == Control::Data;
            // Top-level attribute boundaries of a data message: cuts there leave whole attributes.
            let body = NLMSG_HDRLEN + 4;
            let mut bounds: BTreeSet<usize> = [body].into();
            if data {
                for (off, len, _) in tlvs(&msg[body..]) {
                    bounds.insert(body + off);
                    // A message may end inside the last attribute's padding (as the kernel
                    // accepts too).
                    bounds.extend(body + off + len..=body + ((off + len + 3) & !3));
                }
            }
            for cut in 1..msg.len() {
                // Length field kept: the frame itself is truncated.
                let r = checked_decode(&msg[..cut], name);
                assert!(
                    r.is_err(),
                    "{name}@{}: cut {cut} with the length kept",
                    f.offset
                );
                // Length field set to the cut: the attributes inside are cut.
                if cut < NLMSG_HDRLEN {
                    continue;
                }
                let mut m = msg[..cut].to_vec();
                m[0..4].copy_from_slice(&u32::try_from(cut).unwrap().to_ne_bytes());
                let r = checked_decode(&m, name);
                if data && !bounds.contains(&cut) {
                    assert!(r.is_err(), "{name}@{}: attribute cut at {cut}", f.offset);
                }
                if f.header.message_type == msg_type::NLMSG_ERROR && cut < NLMSG_HDRLEN + 20 {
                    assert!(r.is_err(), "{name}: error message cut at {cut}");
                }
            }
        }
    }
}

/// A length field of a fixture: where it is, how wide, and the end of its container.
struct LengthField {
    at: usize,
    wide: bool,
    container_end: usize,
    /// Whether the decoders read inside this field's container (so bad values must fail).
    checked: bool,
}

fn length_fields(buf: &[u8]) -> Vec<LengthField> {
    /// `checked_depth`: how deep the decoder reads (None: everything).
    fn walk(
        buf: &[u8],
        (start, end): (usize, usize),
        depth: usize,
        checked_depth: Option<usize>,
        out: &mut Vec<LengthField>,
    ) {
        for (off, len, ty) in tlvs(&buf[start..end]) {
            let at = start + off;
            out.push(LengthField {
                at,
                wide: false,
                container_end: end,
                checked: checked_depth.is_none_or(|d| depth <= d),
            });
            if ty & NLA_F_NESTED != 0 {
                walk(buf, (at + 4, at + len), depth + 1, checked_depth, out);
            }
        }
    }
    let mut out = Vec::new();
    for f in frames(buf) {
        let end = f.offset + f.header.length as usize;
        out.push(LengthField {
            at: f.offset,
            wide: true,
            container_end: buf.len(),
            checked: true,
        });
        match f.header.message_type {
            msg_type::NLMSG_DONE => {}
            msg_type::NLMSG_ERROR => {
                // Extended ACK TLVs follow the error code and the capped request header;
                // the decoder reads their top level only (not NLMSGERR_ATTR_POLICY's nest).
                if f.header.flags & flags::NLM_F_ACK_TLVS != 0 {
                    let start = f.offset + NLMSG_HDRLEN + 4 + NLMSG_HDRLEN;
                    walk(buf, (start, end), 0, Some(0), &mut out);
                }
            }
            _ => walk(buf, (f.offset + NLMSG_HDRLEN + 4, end), 0, None, &mut out),
        }
    }
    out
}

#[test]
fn corrupted_length_fields_never_panic() {
    let mut corrupted = 0;
    for name in ANSWERS {
        let buf = read(name);
        let fields = length_fields(&buf);
        assert!(!fields.is_empty());
        for field in &fields {
            let orig = if field.wide {
                u32::from_ne_bytes(buf[field.at..field.at + 4].try_into().unwrap()) as usize
            } else {
                usize::from(u16::from_ne_bytes([buf[field.at], buf[field.at + 1]]))
            };
            let beyond = field.container_end - field.at + 4;
            let bad = [
                (0, true),
                (3, true),
                (beyond, true),
                (0xffff, true),
                (orig + 4, false),
                (orig.saturating_sub(4), false),
            ];
            for (value, must_fail) in bad {
                let mut b = buf.clone();
                if field.wide {
                    let v = u32::try_from(value).unwrap();
                    b[field.at..field.at + 4].copy_from_slice(&v.to_ne_bytes());
                } else {
                    let v = u16::try_from(value.min(0xffff)).unwrap();
                    b[field.at..field.at + 2].copy_from_slice(&v.to_ne_bytes());
                }
                let r = checked_decode(&b, name);
                if must_fail && field.checked {
                    assert!(
                        r.is_err(),
                        "{name}: length at {} set to {value} decoded",
                        field.at
                    );
                }
                corrupted += 1;
            }
        }
    }
    assert!(corrupted > 1000, "{corrupted}");
}
