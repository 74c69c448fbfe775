//! Offline capture and replay: `ipvsct capture` records a command's netlink traffic into
//! a LINKTYPE_NETLINK pcap, and `ipvsct decode` / `ipvs_conntrack::capture` decode it.
//!
//! * A capture of a live dump decodes to exactly what the captured command printed, to
//!   the same entries as a live dump of the library, and tshark's dissection of the
//!   conntrack messages agrees with ours on tuples, status, timeout and id.
//! * The captures in `tests/fixtures/nlmon/` were made in Debian's stock kernel (which
//!   has nlmon and IPVS) by `tests/fixtures/nlmon/record.sh`: one with nlmon + tcpdump
//!   while conntrack-tools and ipvsadm ran, one with `ipvsct capture` of IPVS reads.
//!   They decode to what those tools printed.
//!
//! Tests that need root and network namespaces print `SKIPPED: <reason>` and return when
//! they cannot run, unless CI=true, where they fail instead.

mod support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ipvs_conntrack::capture::{
    decode_pcap_file, decode_records, read_pcap_file, Body, Capture, DecodeOptions, Decoded,
};
use ipvs_conntrack::conntrack::tuple::IPPROTO_UDP;
use ipvs_conntrack::conntrack::{
    Conntrack, CreateRequest, DumpFilter, Entry, Event, EventGroups, EventOptions, EventStream,
    Status, Tuple,
};
use ipvs_conntrack::ipvs::ForwardMethod;
use ipvs_conntrack::netlink::frame::flags::{NLM_F_CREATE, NLM_F_EXCL};
use ipvs_conntrack::socket::Direction;
use serde_json::Value;
use support::{
    find_tool, parse_conntrack_stats, parse_extended, ping, run_cmd, setup, skip, tcp_exchange,
    udp_exchange, CmdOutput,
};

const BIN: &str = env!("CARGO_BIN_EXE_ipvsct");

/// Held by the tests that open netlink sockets in this process (a capture records them all).
static IN_PROCESS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/nlmon")
        .join(name)
}

fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Runs ipvsct with a time limit.
fn ipvsct(args: &[&str]) -> CmdOutput {
    run_cmd(BIN, args)
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A temporary file path removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> TempFile {
        TempFile(std::env::temp_dir().join(format!("ipvsct-{}-{name}", std::process::id())))
    }
    fn path(&self) -> &str {
        self.0.to_str().expect("UTF-8 path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What tshark says about the conntrack entries of one frame, as our decode would say it.
#[derive(Debug, Default, PartialEq, Eq)]
struct FrameFields {
    ids: Vec<String>,
    status: Vec<String>,
    timeouts: Vec<String>,
    v4: Vec<String>,
    v6: Vec<String>,
    protos: Vec<String>,
    sports: Vec<String>,
    dports: Vec<String>,
}

const TSHARK_FIELDS: [&str; 9] = [
    "frame.number",
    "netlink-netfilter.ct_attr.id",
    "netlink-netfilter.ct_attr.status",
    "netlink-netfilter.ct_attr.timeout",
    "netlink-netfilter.nfct_tuple.ip.ip_addr",
    "netlink-netfilter.nfct_tuple.ip.ip6_addr",
    "netlink-netfilter.nfct_tuple.proto.num",
    "netlink-netfilter.nfct_tuple.proto.src_port",
    "netlink-netfilter.nfct_tuple.proto.dst_port",
];

/// tshark's fields of every frame with a conntrack entry id.
fn tshark_frames(tshark: &Path, pcap: &str) -> BTreeMap<usize, FrameFields> {
    let mut args = vec![
        "-r",
        pcap,
        "-Y",
        "netlink-netfilter.ct_attr.id",
        "-T",
        "fields",
        "-E",
        "separator=/t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ];
    for f in TSHARK_FIELDS {
        args.extend(["-e", f]);
    }
    let out = Command::new(tshark)
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let split = |s: &str| -> Vec<String> {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            let col = |i: usize| split(c.get(i).copied().unwrap_or(""));
            let frame = c[0].parse().expect("frame number");
            (
                frame,
                FrameFields {
                    ids: col(1),
                    status: col(2),
                    timeouts: col(3),
                    v4: col(4),
                    v6: col(5),
                    protos: col(6),
                    sports: col(7),
                    dports: col(8),
                },
            )
        })
        .collect()
}

/// The same fields from our decode, formatted as tshark prints them.
fn our_frames(d: &Decoded) -> BTreeMap<usize, FrameFields> {
    let mut out: BTreeMap<usize, FrameFields> = BTreeMap::new();
    for m in &d.messages {
        let Body::Entry(e) = &m.body else { continue };
        let f = out.entry(m.frame).or_default();
        f.ids.push(format!("{:#010x}", e.id.expect("id")));
        f.status.push(format!("{:#010x}", e.status.bits()));
        f.timeouts.push(e.timeout.expect("timeout").to_string());
        for t in [&e.orig, &e.reply] {
            let addrs = [t.src, t.dst].map(|a| a.to_string());
            if t.src.is_ipv4() {
                f.v4.extend(addrs);
            } else {
                f.v6.extend(addrs);
            }
            f.protos.push(t.proto.to_string());
            if let (Some(s), Some(d)) = (t.src_port, t.dst_port) {
                f.sports.push(s.to_string());
                f.dports.push(d.to_string());
            }
        }
    }
    out
}

/// Same entry apart from the seconds left (which tick between two dumps).
fn same_entry(a: &Entry, b: &Entry) {
    assert_eq!(a.id, b.id);
    assert_eq!(
        (&a.orig, &a.reply),
        (&b.orig, &b.reply),
        "tuples of {:?}",
        a.id
    );
    assert_eq!(a.status, b.status, "status of {:?}", a.id);
    assert_eq!(a.state, b.state, "state of {:?}", a.id);
    assert_eq!(
        a.state_timeout, b.state_timeout,
        "state timeout of {:?}",
        a.id
    );
    assert_eq!(a.mark, b.mark, "mark of {:?}", a.id);
    let (x, y) = (a.timeout.expect("timeout"), b.timeout.expect("timeout"));
    assert!(x.abs_diff(y) <= 2, "timeouts {x} and {y} of {:?}", a.id);
}

#[test]
fn capture_of_a_live_dump_decodes_to_the_same_entries_and_tshark_agrees() {
    const T: &str = "capture_of_a_live_dump_decodes_to_the_same_entries_and_tshark_agrees";
    let Some(ns) = setup(T, &[]) else {
        return;
    };
    ns.set_sysctl("net.netfilter.nf_conntrack_tcp_timeout_time_wait", "91");
    let v4: IpAddr = Ipv4Addr::LOCALHOST.into();
    let v6: IpAddr = Ipv6Addr::LOCALHOST.into();
    for _ in 0..3 {
        tcp_exchange(&ns, &ns, v4);
    }
    tcp_exchange(&ns, &ns, v6);
    udp_exchange(&ns, &ns, v4, true);
    udp_exchange(&ns, &ns, v6, false);
    ping(&ns, v4);

    let pcap = TempFile::new("live.pcap");
    let out = ipvsct(&[
        "capture",
        "-o",
        pcap.path(),
        "--",
        "conntrack",
        "list",
        "--netns",
        ns.name(),
        "--json",
    ]);
    assert!(out.success(), "{}", out.stderr);
    let printed = json_lines(&out.stdout);
    assert_eq!(printed.len(), 7, "{printed:?}");
    assert!(
        out.stderr.contains("netlink datagrams to"),
        "{}",
        out.stderr
    );

    // 1. Decoding replays exactly what the captured command printed (same bytes).
    let out = ipvsct(&["decode", "--json", pcap.path()]);
    assert!(out.success(), "{}", out.stderr);
    let replayed: Vec<Value> = json_lines(&out.stdout)
        .into_iter()
        .filter(|m| m["kind"] == "entry")
        .map(|m| m["entry"].clone())
        .collect();
    assert_eq!(replayed, printed);

    // 2. The library's decode against a live dump of its own.
    let _only_me = IN_PROCESS.lock().unwrap_or_else(|p| p.into_inner());
    let decoded =
        decode_pcap_file(Path::new(pcap.path()), &DecodeOptions::default()).expect("decode");
    let mut captured: Vec<Entry> = decoded.entries().cloned().collect();
    let mut ct = Conntrack::open(&ns.netns()).expect("client");
    let mut live = ct.list(&DumpFilter::all()).expect("dump");
    captured.sort_by_key(|e| e.id);
    live.sort_by_key(|e| e.id);
    assert_eq!(captured.len(), live.len());
    for (a, b) in captured.iter().zip(&live) {
        same_entry(a, b);
    }
    // The state timeouts came from the captured cttimeout answers.
    let tw: Vec<_> = captured
        .iter()
        .filter(|e| e.state.to_string() == "TIME_WAIT")
        .collect();
    assert_eq!(tw.len(), 4);
    assert!(tw.iter().all(|e| e.state_timeout == Some(91)));
    // Requests are ours, answers the kernel's.
    assert!(decoded
        .messages
        .iter()
        .filter(|m| matches!(m.body, Body::Request))
        .all(|m| m.direction == Direction::Sent));
    assert!(decoded
        .messages
        .iter()
        .filter(|m| matches!(m.body, Body::Entry(_) | Body::Done | Body::Ack))
        .all(|m| m.direction == Direction::Received));

    // 3. tshark's dissection of the same file.
    let Some(tshark) = find_tool("tshark") else {
        skip(
            T,
            "tshark is missing (apt-get install tshark): no cross-check with Wireshark",
        );
        return;
    };
    let theirs = tshark_frames(&tshark, pcap.path());
    let ours = our_frames(&decoded);
    assert!(!ours.is_empty());
    assert_eq!(theirs, ours);
}

#[test]
fn nlmon_tcpdump_fixture_decodes_like_conntrack_and_ipvsadm_printed_it() {
    let d = decode_pcap_file(&fixture("nlmon.pcap"), &DecodeOptions::default()).expect("decode");
    assert_eq!(d.records, 106);
    assert!(
        !d.messages
            .iter()
            .any(|m| matches!(m.body, Body::Invalid(_))),
        "every message decodes"
    );

    // The dump answer to the last `conntrack -L`: the two entries it printed.
    let listed: Vec<_> = parse_extended(&fixture_text("ct-list.txt"))
        .into_iter()
        .filter(|l| l.entry_id().is_some())
        .collect();
    assert_eq!(listed.len(), 2);
    let dump: Vec<&Entry> = d
        .messages
        .iter()
        .filter(|m| m.frame == 17)
        .filter_map(|m| match &m.body {
            Body::Entry(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(dump.len(), 2);
    for line in &listed {
        let id = line.entry_id().expect("id");
        let e = dump
            .iter()
            .find(|e| e.id == Some(id))
            .unwrap_or_else(|| panic!("entry {id} not in the dump"));
        assert_eq!(line.all("src")[0], e.orig.src.to_string());
        assert_eq!(line.all("dst")[0], e.orig.dst.to_string());
        assert_eq!(
            line.all("sport")[0],
            e.orig.src_port.expect("sport").to_string()
        );
        assert_eq!(
            line.all("dport")[1],
            e.reply.dst_port.expect("dport").to_string()
        );
        assert_eq!(line.all("mark")[0], e.mark.expect("mark").to_string());
    }
    let tcp = dump.iter().find(|e| e.orig.proto == 6).expect("tcp entry");
    assert_eq!(tcp.timeout, Some(98));
    assert_eq!(tcp.mark, Some(42));
    assert!(tcp.status.contains(Status::ASSURED));
    assert_eq!(tcp.state.to_string(), "TIME_WAIT");
    // No cttimeout answer in this capture: no state timeout to join.
    assert_eq!(tcp.state_timeout, None);

    // Events: three NEW (CREATE|EXCL) and one DESTROY, as `conntrack -E` printed them.
    let events = fixture_text("ct-events.txt");
    let new_ids: Vec<u32> = events
        .lines()
        .filter(|l| l.trim_start().starts_with("[NEW]"))
        .filter_map(|l| {
            l.split("id=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(new_ids.len(), 3);
    let new_events: Vec<u32> = d
        .messages
        .iter()
        .filter(|m| {
            m.name == "IPCTNL_MSG_CT_NEW"
                && m.header.flags & (NLM_F_CREATE | NLM_F_EXCL) == (NLM_F_CREATE | NLM_F_EXCL)
        })
        .filter_map(|m| match &m.body {
            Body::Entry(e) => e.id,
            _ => None,
        })
        .collect();
    assert_eq!(new_events, new_ids);
    let destroyed: Vec<&Entry> = d
        .messages
        .iter()
        .filter(|m| m.name == "IPCTNL_MSG_CT_DELETE" && m.direction == Direction::Received)
        .filter_map(|m| match &m.body {
            Body::Entry(e) => Some(e),
            _ => None,
        })
        .collect();
    let destroyed_id: u32 = events
        .lines()
        .find(|l| l.trim_start().starts_with("[DESTROY]"))
        .and_then(|l| {
            l.split(" id=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .expect("DESTROY line");
    assert_eq!(destroyed.len(), 1);
    assert_eq!(destroyed[0].id, Some(destroyed_id));
    assert_eq!(destroyed[0].id, Some(new_ids[2]));
    assert!(destroyed[0].status.contains(Status::DYING));

    // `conntrack -S` and `conntrack -C`.
    let stats = parse_conntrack_stats(&fixture_text("ct-stats.txt")).expect("stats text");
    let cpus: Vec<_> = d
        .messages
        .iter()
        .filter_map(|m| match &m.body {
            Body::CpuStats(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(cpus.len(), stats.len());
    for c in cpus {
        let want = &stats[&c.cpu];
        assert_eq!(c.insert.map(u64::from), want.get("insert").copied());
        assert_eq!(c.found.map(u64::from), want.get("found").copied());
        assert_eq!(c.drop.map(u64::from), want.get("drop").copied());
        assert_eq!(
            c.clash_resolve.map(u64::from),
            want.get("clash_resolve").copied()
        );
    }
    let count: u32 = fixture_text("ct-count.txt").trim().parse().expect("count");
    let stats: Vec<_> = d
        .messages
        .iter()
        .filter_map(|m| match &m.body {
            Body::Stats(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].entries, count);

    // IPVS: the family id from nlctrl, and what `ipvsadm -Ln` printed.
    let families: Vec<_> = d
        .messages
        .iter()
        .filter_map(|m| match &m.body {
            Body::Family(f) => Some(f),
            _ => None,
        })
        .collect();
    assert!(!families.is_empty());
    assert!(families.iter().all(|f| f.name == "IPVS"));
    assert_eq!(d.ipvs_family_id, Some(families[0].id));
    check_ipvs_like_ipvsadm(&d);

    // The same capture saved as pcapng by editcap decodes identically.
    let ng = decode_pcap_file(&fixture("nlmon.pcapng"), &DecodeOptions::default())
        .expect("decode pcapng");
    assert_eq!(ng, d);
}

/// The service and destination dumps match `ipvsadm -Ln` of the fixture.
fn check_ipvs_like_ipvsadm(d: &Decoded) {
    let text = fixture_text("ipvsadm.txt");
    let services: Vec<_> = d
        .messages
        .iter()
        .filter_map(|m| match &m.body {
            Body::IpvsService(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(services.len(), 2);
    let last_two = &services[..];
    let shown: Vec<String> = last_two
        .iter()
        .map(|s| format!("{} {}", s.key, s.scheduler))
        .collect();
    assert_eq!(shown, ["TCP 10.9.0.100:80 rr", "FWM 7 wlc"]);
    // ipvsadm pads its columns: compare the words of its service lines.
    let adm_services: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("TCP") || l.starts_with("FWM"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(adm_services, shown, "ipvsadm output:\n{text}");
    let dests: Vec<_> = d
        .messages
        .iter()
        .filter_map(|m| match &m.body {
            Body::IpvsDest(_, x) => Some(x),
            _ => None,
        })
        .collect();
    assert_eq!(dests.len(), 2);
    let last_two = &dests[..];
    assert_eq!(last_two[0].socket_addr().to_string(), "10.9.0.2:80");
    assert_eq!(
        (last_two[0].fwd_method, last_two[0].weight),
        (ForwardMethod::Masq, 3)
    );
    assert_eq!(last_two[1].socket_addr().to_string(), "10.9.0.3:0");
    assert_eq!(
        (last_two[1].fwd_method, last_two[1].weight),
        (ForwardMethod::Route, 1)
    );
    assert!(text.contains("-> 10.9.0.2:80                  Masq    3"));
    assert!(text.contains("-> 10.9.0.3:0                   Route   1"));
}

#[test]
fn ipvs_family_id_comes_from_nlctrl_or_from_the_caller() {
    let records = read_pcap_file(&fixture("ipvsct-ipvs.pcap")).expect("read");
    let with = decode_records(&records, &DecodeOptions::default());
    let id = with.ipvs_family_id.expect("family id from nlctrl");
    let services = |d: &Decoded| {
        d.messages
            .iter()
            .filter(|m| matches!(m.body, Body::IpvsService(_)))
            .count()
    };
    assert_eq!(services(&with), 2);

    // Without the nlctrl exchange the IPVS messages are not recognized...
    let without: Vec<_> = records
        .iter()
        .filter(|r| r.data.get(4..6) != Some(&0x10u16.to_ne_bytes()[..]))
        .cloned()
        .collect();
    assert_eq!(without.len(), records.len() - 2);
    let blind = decode_records(&without, &DecodeOptions::default());
    assert_eq!(blind.ipvs_family_id, None);
    assert_eq!(services(&blind), 0);
    // ...unless the caller names the family id.
    let told = decode_records(
        &without,
        &DecodeOptions {
            ipvs_family_id: Some(id),
        },
    );
    assert_eq!(services(&told), 2);
    // A wrong id decodes nothing as IPVS.
    let wrong = decode_records(
        &records,
        &DecodeOptions {
            ipvs_family_id: Some(id + 1),
        },
    );
    assert_eq!(services(&wrong), 0);
}

#[test]
fn ipvsct_capture_of_ipvs_reads_decodes_to_what_it_printed() {
    let printed: Value =
        serde_json::from_str(&fixture_text("ipvsct-ipvs.json")).expect("printed JSON");
    let printed = printed.as_array().expect("array of services");
    let d =
        decode_pcap_file(&fixture("ipvsct-ipvs.pcap"), &DecodeOptions::default()).expect("decode");
    let decoded: Vec<Value> = d
        .messages
        .iter()
        .filter_map(|m| match &m.body {
            Body::IpvsService(s) => Some(serde_json::to_value(s).expect("json")),
            _ => None,
        })
        .collect();
    let printed_services: Vec<Value> = printed.iter().map(|s| s["service"].clone()).collect();
    assert_eq!(decoded, printed_services);
    let dests: Vec<Value> = d
        .messages
        .iter()
        .filter_map(|m| match &m.body {
            Body::IpvsDest(_, x) => Some(serde_json::to_value(x).expect("json")),
            _ => None,
        })
        .collect();
    let printed_dests: Vec<Value> = printed
        .iter()
        .flat_map(|s| s["dests"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(dests, printed_dests);
    assert_eq!(dests.len(), 2);
}

#[test]
fn decode_command_prints_text_and_json_and_rejects_other_files() {
    let path = fixture("nlmon.pcap");
    let path = path.to_str().expect("path");
    let out = ipvsct(&["decode", path]);
    assert!(out.success(), "{}", out.stderr);
    let text = &out.stdout;
    assert_eq!(
        text.lines().last(),
        Some(
            "106 records, 110 messages: 8 conntrack entries, 0 that did not decode; IPVS family id: 32"
        )
    );
    assert!(text.contains("IPVS_CMD_NEW_SERVICE           service TCP 10.9.0.100:80 scheduler=rr"));

    let out = ipvsct(&["decode", "--json", path]);
    assert!(out.success(), "{}", out.stderr);
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 110);
    let kinds = |k: &str| lines.iter().filter(|m| m["kind"] == k).count();
    // 3 NEW events, 1 DESTROY event, two dumps of 2 entries.
    assert_eq!(kinds("entry"), 8);
    // `ipvsadm -Ln` dumped the 2 services once.
    assert_eq!(kinds("ipvs_service"), 2);
    assert_eq!(kinds("ipvs_dest"), 2);
    assert_eq!(kinds("cpu_stats"), 2);
    let first_entry = lines.iter().find(|m| m["kind"] == "entry").expect("entry");
    assert_eq!(first_entry["entry"]["orig"]["src"], "10.9.0.1");
    assert_eq!(first_entry["entry"]["mark"], 42);
    assert_eq!(first_entry["direction"], "received");

    // A file that is not a netlink capture: a clear error and exit code 1.
    let bogus = fixture("ct-list.txt");
    let out = ipvsct(&["decode", bogus.to_str().expect("path")]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("not a pcap or pcapng file"),
        "{}",
        out.stderr
    );
    // A capture cannot record another capture.
    let pcap = TempFile::new("nested.pcap");
    let out = ipvsct(&[
        "capture",
        "-o",
        pcap.path(),
        "--",
        "capture",
        "-o",
        "x",
        "--",
        "decode",
        "y",
    ]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot be another capture"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_process_wide_capture_records_event_streams_too() {
    const T: &str = "a_process_wide_capture_records_event_streams_too";
    let Some(ns) = setup(T, &[]) else {
        return;
    };
    // A capture is process-wide: no other test of this binary may open sockets meanwhile.
    let _only_me = IN_PROCESS.lock().unwrap_or_else(|p| p.into_inner());
    let pcap = TempFile::new("events.pcap");
    let capture = Capture::create(Path::new(pcap.path())).expect("create capture");
    capture.install();
    let mut opts = EventOptions::groups(EventGroups::NEW);
    opts.join_timeouts = false;
    opts.recv_timeout = Some(std::time::Duration::from_millis(200));
    let mut events = EventStream::with_options(&ns.netns(), &opts).expect("event stream");
    let mut ct = Conntrack::open(&ns.netns()).expect("client");
    let tuple = Tuple::with_ports(
        IPPROTO_UDP,
        "10.66.0.1".parse().expect("addr"),
        4000,
        "10.66.0.2".parse().expect("addr"),
        53,
    );
    ct.create(&CreateRequest::new(tuple.clone(), 120))
        .expect("create");
    let mut got = None;
    for _ in 0..50 {
        if let Some(Event::Conntrack(c)) = events.next_event().expect("event") {
            got = Some(c.entry);
            break;
        }
    }
    let got = got.expect("the NEW event");
    drop(events);
    let n = capture.finish().expect("finish");
    // The create request, its ACK and the NEW event.
    assert_eq!(n, 3);

    let d = decode_pcap_file(Path::new(pcap.path()), &DecodeOptions::default()).expect("decode");
    // The create request went out, the event came in: both recorded, in that order.
    let sent = d
        .messages
        .iter()
        .position(|m| m.direction == Direction::Sent && m.name == "IPCTNL_MSG_CT_NEW")
        .expect("the create request");
    let event = d
        .messages
        .iter()
        .position(|m| {
            m.direction == Direction::Received
                && m.header.flags & (NLM_F_CREATE | NLM_F_EXCL) == (NLM_F_CREATE | NLM_F_EXCL)
        })
        .expect("the NEW event");
    assert!(sent < event);
    let Body::Entry(e) = &d.messages[event].body else {
        panic!("the event did not decode to an entry")
    };
    assert_eq!(e.orig, tuple);
    assert_eq!(e.id, got.id);
    assert_eq!(e.orig, got.orig);
}
