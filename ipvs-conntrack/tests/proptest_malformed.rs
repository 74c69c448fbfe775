//! Malformed input: every truncation and every corrupted length of a valid message (the
//! recorded fixtures in tests/fixtures, exhaustively, and generated entries, by proptest)
//! gives a typed error that names the attribute path, never a panic. Also duplicate,
//! zero-length and wrong-size attributes, random mutations, and one regression test per
//! crash the fuzzers found.

use std::net::IpAddr;
use std::path::PathBuf;

use ipvs_conntrack::conntrack::protoinfo::{ProtoInfo, TcpInfo, TcpState};
use ipvs_conntrack::conntrack::wire::*;
use ipvs_conntrack::conntrack::{CpuStats, Entry, EntryView, GlobalStats, TimeoutPolicy, Tuple};
use ipvs_conntrack::error::Names;
use ipvs_conntrack::netlink::attr::{align4, NLA_F_NESTED};
use ipvs_conntrack::netlink::emit::MessageBuilder;
use ipvs_conntrack::netlink::frame::msg_type::NLMSG_ERROR;
use ipvs_conntrack::netlink::nfnetlink::{
    split_type, NFNL_SUBSYS_CTNETLINK, NFNL_SUBSYS_CTNETLINK_TIMEOUT,
};
use ipvs_conntrack::netlink::{Control, Frame, Frames};
use ipvs_conntrack::{DecodeError, DecodeErrorKind};
use proptest::prelude::*;

const HDR: usize = 16;
const GEN: usize = 4;

// ---------------------------------------------------------------------------------------
// Fixtures and decoding by message type

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// Every recorded `.bin` fixture (name, bytes); there must be some.
fn fixtures() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(fixture_dir())
        .expect("tests/fixtures exists")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .filter(|p| !p.to_string_lossy().ends_with(".request.bin"))
        .map(|p| {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&p).expect("read fixture"))
        })
        .collect();
    out.sort();
    assert!(
        out.len() >= 5,
        "expected the recorded fixtures in {}",
        fixture_dir().display()
    );
    out
}

/// The data messages (not control messages) of a recording, as owned byte vectors.
fn data_messages(buf: &[u8]) -> Vec<Vec<u8>> {
    Frames::new(buf)
        .map(|f| f.expect("fixture frames are valid"))
        .filter(|f| f.control("t") == Ok(Control::Data))
        .map(|f| buf[f.offset..f.offset + f.header.length as usize].to_vec())
        .collect()
}

/// Which decoder a message goes to, and the attribute schema it follows.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Entry,
    GlobalStats,
    CpuStats,
    Timeout,
}

fn kind_of(message_type: u16) -> Option<Kind> {
    match split_type(message_type) {
        (NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_STATS) => Some(Kind::GlobalStats),
        (NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_STATS_CPU) => Some(Kind::CpuStats),
        (NFNL_SUBSYS_CTNETLINK, _) => Some(Kind::Entry),
        (NFNL_SUBSYS_CTNETLINK_TIMEOUT, _) => Some(Kind::Timeout),
        _ => None,
    }
}

/// Decodes one message with the decoder of its type (entries also to the owned form).
fn decode(msg: &[u8]) -> Result<(), DecodeError> {
    let frame = match Frames::new(msg).next() {
        Some(f) => f?,
        None => panic!("empty message"),
    };
    decode_frame(&frame)
}

fn decode_frame(frame: &Frame<'_>) -> Result<(), DecodeError> {
    match kind_of(frame.header.message_type) {
        Some(Kind::Entry) => {
            let v = EntryView::from_frame(frame)?;
            let _ = (v.state(), v.unknown(), v.label_bits().count());
            v.to_owned().map(|_| ())
        }
        Some(Kind::GlobalStats) => GlobalStats::from_frame(frame).map(|_| ()),
        Some(Kind::CpuStats) => CpuStats::from_frame(frame).map(|_| ()),
        Some(Kind::Timeout) => TimeoutPolicy::from_frame(frame).map(|_| ()),
        None => frame.control("t").map(|_| ()),
    }
}

fn root_names(k: Kind) -> Names {
    match k {
        Kind::Entry => CTA_NAMES,
        Kind::GlobalStats => CTA_STATS_GLOBAL_NAMES,
        Kind::CpuStats => CTA_STATS_NAMES,
        Kind::Timeout => CTA_TIMEOUT_NAMES,
    }
}

/// The nests each decoder walks into (an error inside them must surface).
fn decoded_child(k: Kind, parent: Names, kind: u16) -> Option<Names> {
    match k {
        Kind::Entry if parent == CTA_NAMES && kind == CTA_FILTER => None,
        Kind::Entry => child_names(parent, kind),
        Kind::Timeout if parent == CTA_TIMEOUT_NAMES && kind == CTA_TIMEOUT_DATA => {
            Some(CTA_TIMEOUT_GENERIC_NAMES)
        }
        _ => None,
    }
}

/// One attribute of a message: where its header is, its length, where its parent ends,
/// and the kinds of its enclosing nests (outermost first).
#[derive(Clone, Debug)]
struct Site {
    hdr: usize,
    len: usize,
    parent_end: usize,
    ancestors: Vec<u16>,
    kind: u16,
}

fn sites(msg: &[u8], k: Kind) -> Vec<Site> {
    fn walk(
        msg: &[u8],
        start: usize,
        end: usize,
        names: Names,
        k: Kind,
        ancestors: &[u16],
        out: &mut Vec<Site>,
    ) {
        let mut pos = start;
        while pos + 4 <= end {
            let len = usize::from(u16::from_ne_bytes([msg[pos], msg[pos + 1]]));
            let kind = u16::from_ne_bytes([msg[pos + 2], msg[pos + 3]]) & 0x3fff;
            assert!(len >= 4 && pos + len <= end, "fixture attributes are valid");
            out.push(Site {
                hdr: pos,
                len,
                parent_end: end,
                ancestors: ancestors.to_vec(),
                kind,
            });
            if let Some(child) = decoded_child(k, names, kind) {
                let mut a = ancestors.to_vec();
                a.push(kind);
                walk(msg, pos + 4, pos + len, child, k, &a, out);
            }
            pos += align4(len);
        }
    }
    let mut out = Vec::new();
    walk(msg, HDR + GEN, msg.len(), root_names(k), k, &[], &mut out);
    out
}

fn path_kinds(e: &DecodeError) -> Vec<u16> {
    e.path.iter().map(|p| p.kind()).collect()
}

/// `msg` cut to `cut` bytes, with the netlink length fixed to match.
fn cut_message(msg: &[u8], cut: usize) -> Vec<u8> {
    let mut m = msg[..cut].to_vec();
    m[..4].copy_from_slice(&(cut as u32).to_ne_bytes());
    m
}

/// Checks every truncation of one valid data message; returns how many were checked.
fn check_truncations(msg: &[u8], k: Kind, what: &str) -> usize {
    let tops: Vec<Site> = sites(msg, k)
        .into_iter()
        .filter(|s| s.ancestors.is_empty())
        .collect();
    let mut n = 0;
    for cut in HDR..msg.len() {
        let m = cut_message(msg, cut);
        let r = decode(&m);
        let inside = tops.iter().find(|s| s.hdr < cut && cut < s.hdr + s.len);
        if cut < HDR + GEN {
            let e = r.expect_err("a message cut inside nfgenmsg is an error");
            assert!(
                matches!(e.kind, DecodeErrorKind::Truncated { .. }),
                "{what} cut {cut}: {e}"
            );
        } else if let Some(s) = inside {
            let Err(e) = r else {
                panic!("{what}: cut {cut} inside attribute {s:?} decoded");
            };
            // The error names the cut attribute, unless the cut leaves less than its
            // 4-byte header (then there is no type to name).
            if cut >= s.hdr + 4 {
                assert_eq!(path_kinds(&e), vec![s.kind], "{what} cut {cut}: {e}");
            } else {
                assert!(e.path.is_empty(), "{what} cut {cut}: {e}");
            }
            assert!(
                matches!(e.kind, DecodeErrorKind::Truncated { .. }),
                "{what} cut {cut}: {e}"
            );
            assert_eq!(e.offset, s.hdr, "{what} cut {cut}: {e}");
        }
        // Cuts on an attribute boundary may decode (fewer attributes): only no panic.
        // The raw cut (length field not fixed) is a framing error.
        let raw = &msg[..cut];
        assert!(Frames::new(raw).any(|f| f.is_err()), "{what} raw cut {cut}");
        n += 1;
    }
    n
}

/// Checks every corrupted length field of one valid data message; returns the count.
fn check_corrupted_lengths(msg: &[u8], k: Kind, what: &str) -> usize {
    let mut n = 0;
    for s in sites(msg, k) {
        let room = s.parent_end - s.hdr;
        let mut lens = vec![
            0,
            1,
            2,
            3,
            4,
            s.len - 1,
            s.len + 1,
            s.len + 4,
            room,
            room + 1,
            0xffff,
        ];
        lens.retain(|&l| l != s.len && l <= 0xffff);
        lens.sort_unstable();
        lens.dedup();
        for l in lens {
            let mut m = msg.to_vec();
            m[s.hdr..s.hdr + 2].copy_from_slice(&(l as u16).to_ne_bytes());
            let r = decode(&m);
            n += 1;
            if l < 4 {
                let e = r.expect_err("a length below the header is an error");
                assert_eq!(
                    e.kind,
                    DecodeErrorKind::LengthTooSmall {
                        length: l,
                        minimum: 4
                    },
                    "{what} {s:?} len {l}"
                );
                assert_eq!(e.offset, s.hdr, "{what} {s:?} len {l}");
                assert_eq!(path_kinds(&e), s.ancestors, "{what} {s:?} len {l}: {e}");
            } else if l > room {
                let e = r.expect_err("a length past the enclosing nest is an error");
                assert_eq!(
                    e.kind,
                    DecodeErrorKind::Truncated {
                        needed: l,
                        available: room
                    },
                    "{what} {s:?} len {l}"
                );
                assert_eq!(e.offset, s.hdr, "{what} {s:?} len {l}");
                let mut expect = s.ancestors.clone();
                expect.push(s.kind);
                assert_eq!(path_kinds(&e), expect, "{what} {s:?} len {l}: {e}");
            }
            // Lengths that still fit may or may not decode: only no panic.
        }
        // The netlink header's own length: every value up to the message size and past it.
    }
    for l in (0..msg.len() + 8).chain([u32::MAX as usize]) {
        let mut m = msg.to_vec();
        m[..4].copy_from_slice(&(l as u32).to_ne_bytes());
        match Frames::new(&m).next() {
            Some(Ok(f)) => {
                assert!(l >= HDR && l <= m.len());
                let _ = decode_frame(&f);
            }
            Some(Err(e)) => assert!(l < HDR || l > m.len(), "{what} nlmsg len {l}: {e}"),
            None => unreachable!(),
        }
        n += 1;
    }
    n
}

#[test]
fn every_fixture_message_decodes() {
    let mut per_kind = std::collections::BTreeMap::new();
    for (name, buf) in fixtures() {
        for msg in data_messages(&buf) {
            let k = kind_of(u16::from_ne_bytes([msg[4], msg[5]])).expect("known type");
            decode(&msg).unwrap_or_else(|e| panic!("{name}: {e}"));
            *per_kind.entry(format!("{k:?}")).or_insert(0) += 1;
        }
    }
    // The fixtures hold entries, both stats messages and timeout policies.
    for k in ["Entry", "GlobalStats", "CpuStats", "Timeout"] {
        assert!(
            per_kind.get(k).copied().unwrap_or(0) > 0,
            "no {k} message: {per_kind:?}"
        );
    }
}

#[test]
fn every_truncation_of_every_fixture_is_an_error() {
    let mut n = 0;
    for (name, buf) in fixtures() {
        for (i, msg) in data_messages(&buf).iter().enumerate() {
            let k = kind_of(u16::from_ne_bytes([msg[4], msg[5]])).expect("known type");
            n += check_truncations(msg, k, &format!("{name}#{i}"));
        }
    }
    assert!(n > 1000, "only {n} truncations checked");
}

#[test]
fn every_corrupted_length_of_every_fixture_is_an_error() {
    let mut n = 0;
    for (name, buf) in fixtures() {
        for (i, msg) in data_messages(&buf).iter().enumerate() {
            let k = kind_of(u16::from_ne_bytes([msg[4], msg[5]])).expect("known type");
            n += check_corrupted_lengths(msg, k, &format!("{name}#{i}"));
        }
    }
    assert!(n > 1000, "only {n} corruptions checked");
}

/// Truncated and corrupted error replies (NLMSG_ERROR with the echoed request and
/// extended ACK): short bodies are errors, nothing panics.
#[test]
fn truncated_error_replies() {
    for (name, buf) in fixtures() {
        for f in Frames::new(&buf).map(|f| f.expect("valid")) {
            if f.header.message_type != NLMSG_ERROR {
                continue;
            }
            let msg = &buf[f.offset..f.offset + f.header.length as usize];
            assert!(matches!(
                f.control("t"),
                Ok(Control::Error(_)) | Ok(Control::Ack)
            ));
            for cut in HDR..msg.len() {
                let m = cut_message(msg, cut);
                let frame = Frames::new(&m).next().expect("frame").expect("valid frame");
                let r = frame.control("t");
                if cut < HDR + 20 {
                    assert!(
                        matches!(
                            r,
                            Err(DecodeError {
                                kind: DecodeErrorKind::Truncated { .. },
                                ..
                            })
                        ),
                        "{name} cut {cut}: {r:?}"
                    );
                }
            }
            // Every byte of the echoed header as a length: no panic.
            for at in HDR + 4..HDR + 8 {
                for v in [0u8, 1, 0x7f, 0xff] {
                    let mut m = msg.to_vec();
                    m[at] = v;
                    let frame = Frames::new(&m).next().expect("frame").expect("valid frame");
                    let _ = frame.control("t");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Duplicate, zero-length and wrong-size attributes

/// The `get_tcp.bin` entry message.
fn tcp_entry() -> Vec<u8> {
    let buf = std::fs::read(fixture_dir().join("get_tcp.bin")).expect("get_tcp.bin");
    data_messages(&buf).into_iter().next().expect("an entry")
}

/// Replaces the value of the attribute at `site` with `value` (lengths of every enclosing
/// nest and of the message fixed).
fn replace_value(msg: &[u8], all: &[Site], site: &Site, value: &[u8]) -> Vec<u8> {
    let old_total = align4(site.len);
    let new_len = 4 + value.len();
    let new_total = align4(new_len);
    let mut out = msg[..site.hdr].to_vec();
    out.extend_from_slice(&(new_len as u16).to_ne_bytes());
    out.extend_from_slice(&msg[site.hdr + 2..site.hdr + 4]);
    out.extend_from_slice(value);
    out.resize(out.len() + new_total - new_len, 0);
    out.extend_from_slice(&msg[(site.hdr + old_total).min(msg.len())..]);
    let delta = new_total as isize - old_total as isize;
    // Enclosing nests: the sites whose span contains this one.
    for s in all {
        if s.hdr < site.hdr && site.hdr < s.hdr + s.len {
            let l = (s.len as isize + delta) as u16;
            out[s.hdr..s.hdr + 2].copy_from_slice(&l.to_ne_bytes());
        }
    }
    let total = out.len() as u32;
    out[..4].copy_from_slice(&total.to_ne_bytes());
    out
}

fn find<'a>(all: &'a [Site], ancestors: &[u16], kind: u16) -> &'a Site {
    all.iter()
        .find(|s| s.ancestors == ancestors && s.kind == kind)
        .unwrap_or_else(|| panic!("no attribute {ancestors:?}/{kind} in the fixture"))
}

#[test]
fn wrong_size_and_zero_length_integers_name_their_path() {
    let msg = tcp_entry();
    let all = sites(&msg, Kind::Entry);
    let cases: &[(&[u16], u16, usize, &str)] = &[
        (&[], CTA_TIMEOUT, 4, "CTA_TIMEOUT"),
        (&[], CTA_MARK, 4, "CTA_MARK"),
        (&[], CTA_ID, 4, "CTA_ID"),
        (&[], CTA_STATUS, 4, "CTA_STATUS"),
        (&[], CTA_USE, 4, "CTA_USE"),
        (
            &[CTA_TUPLE_ORIG, CTA_TUPLE_PROTO],
            CTA_PROTO_SRC_PORT,
            2,
            "CTA_TUPLE_ORIG/CTA_TUPLE_PROTO/CTA_PROTO_SRC_PORT",
        ),
        (
            &[CTA_TUPLE_REPLY, CTA_TUPLE_IP],
            CTA_IP_V4_DST,
            4,
            "CTA_TUPLE_REPLY/CTA_TUPLE_IP/CTA_IP_V4_DST",
        ),
        (
            &[CTA_PROTOINFO, CTA_PROTOINFO_TCP],
            CTA_PROTOINFO_TCP_STATE,
            1,
            "CTA_PROTOINFO/CTA_PROTOINFO_TCP/CTA_PROTOINFO_TCP_STATE",
        ),
        (
            &[CTA_COUNTERS_ORIG],
            CTA_COUNTERS_PACKETS,
            8,
            "CTA_COUNTERS_ORIG/CTA_COUNTERS_PACKETS",
        ),
        (
            &[CTA_TIMESTAMP],
            CTA_TIMESTAMP_START,
            8,
            "CTA_TIMESTAMP/CTA_TIMESTAMP_START",
        ),
    ];
    for &(anc, kind, size, path) in cases {
        let site = find(&all, anc, kind);
        assert_eq!(site.len, 4 + size, "{path} in the fixture");
        for actual in [0, 1, size - 1, size + 1, size + 4, 300] {
            if actual == size {
                continue;
            }
            let m = replace_value(&msg, &all, site, &vec![0xab; actual]);
            let e = decode(&m).expect_err("wrong size is an error");
            assert_eq!(
                e.kind,
                DecodeErrorKind::WrongSize {
                    expected: size,
                    actual
                },
                "{path} with {actual} bytes"
            );
            assert_eq!(e.path.to_string(), path, "{path} with {actual} bytes");
            assert_eq!(e.offset, site.hdr + 4, "{path}: offset of the value");
        }
    }
}

#[test]
fn duplicate_attributes_name_their_path() {
    let msg = tcp_entry();
    let all = sites(&msg, Kind::Entry);
    let mut checked = 0;
    for s in all.iter().filter(|s| s.ancestors.is_empty()) {
        // Append a copy of the top-level attribute: a duplicate.
        let mut m = msg.clone();
        let copy = msg[s.hdr..s.hdr + align4(s.len)].to_vec();
        let dup_at = m.len();
        m.extend_from_slice(&copy);
        let total = m.len() as u32;
        m[..4].copy_from_slice(&total.to_ne_bytes());
        let e = decode(&m).expect_err("a duplicate is an error");
        assert_eq!(e.kind, DecodeErrorKind::Duplicate, "{}", e.path);
        assert_eq!(path_kinds(&e), vec![s.kind], "{e}");
        assert_eq!(e.offset, dup_at + 4);
        checked += 1;
    }
    // And a nested duplicate: CTA_TUPLE_ORIG/CTA_TUPLE_PROTO/CTA_PROTO_NUM twice.
    let num = find(&all, &[CTA_TUPLE_ORIG, CTA_TUPLE_PROTO], CTA_PROTO_NUM);
    let proto = find(&all, &[CTA_TUPLE_ORIG], CTA_TUPLE_PROTO);
    let inner: Vec<u8> = msg[proto.hdr + 4..proto.hdr + proto.len].to_vec();
    let mut new_inner = inner.clone();
    new_inner.extend_from_slice(&msg[num.hdr..num.hdr + 8]);
    let m = replace_value(&msg, &all, proto, &new_inner);
    let e = decode(&m).expect_err("nested duplicate");
    assert_eq!(e.kind, DecodeErrorKind::Duplicate);
    assert_eq!(
        e.path.to_string(),
        "CTA_TUPLE_ORIG/CTA_TUPLE_PROTO/CTA_PROTO_NUM"
    );
    assert!(checked >= 8, "{checked}");
}

/// Review finding: CTA_HELP and CTA_SECCTX took the last of duplicate members silently
/// (the other nests rejected duplicates). Now a typed `Duplicate` naming the member.
#[test]
fn duplicate_members_of_help_and_secctx_are_errors() {
    let build = |nest: u16, member: u16, values: &[&str]| {
        let t = Tuple::with_ports(6, [10, 0, 0, 1].into(), 1, [10, 0, 0, 2].into(), 2);
        let mut b = MessageBuilder::new(0x0100, 0);
        b.put_raw(&[2, 0, 0, 0]);
        t.emit(&mut b, CTA_TUPLE_ORIG);
        t.reversed().emit(&mut b, CTA_TUPLE_REPLY);
        let n = b.begin_nest(nest);
        for v in values {
            b.put_str(member, v);
        }
        b.end_nest(n);
        b.finish()
    };
    for (nest, member, path) in [
        (CTA_HELP, CTA_HELP_NAME, "CTA_HELP/CTA_HELP_NAME"),
        (CTA_SECCTX, CTA_SECCTX_NAME, "CTA_SECCTX/CTA_SECCTX_NAME"),
    ] {
        let e = decode(&build(nest, member, &["ftp", "sip"])).expect_err("duplicate member");
        assert_eq!(e.kind, DecodeErrorKind::Duplicate);
        assert_eq!(e.path.to_string(), path);
        // With the member once, the nest decodes.
        let single = build(nest, member, &["ftp"]);
        let v = Entry::from_frame(&Frames::new(&single).next().unwrap().unwrap()).unwrap();
        if nest == CTA_HELP {
            assert_eq!(v.helper.map(|h| h.name), Some("ftp".to_owned()));
        } else {
            assert_eq!(v.secctx.as_deref(), Some("ftp"));
        }
    }
}

#[test]
fn attribute_past_the_message_end_is_truncation() {
    // The last attribute claims 8 bytes beyond the netlink message (which is itself valid).
    let msg = tcp_entry();
    let all = sites(&msg, Kind::Entry);
    let last = all
        .iter()
        .rev()
        .find(|s| s.ancestors.is_empty())
        .expect("attrs");
    let mut m = msg.clone();
    let l = (last.len + 8) as u16;
    m[last.hdr..last.hdr + 2].copy_from_slice(&l.to_ne_bytes());
    m.extend_from_slice(&[0; 8]); // bytes exist in the buffer, but past the message
    let e = Frames::new(&m)
        .next()
        .expect("frame")
        .map(|f| decode_frame(&f));
    let e = e
        .expect("valid frame")
        .expect_err("attribute past the message end");
    assert_eq!(
        e.kind,
        DecodeErrorKind::Truncated {
            needed: usize::from(l),
            available: msg.len() - last.hdr
        }
    );
    assert_eq!(path_kinds(&e), vec![last.kind]);
}

// ---------------------------------------------------------------------------------------
// Regression tests for crashes found by the fuzzers (fuzz/, tests/fuzz.sh)

/// nl_control, crash-39b40cf6: an NLMSG_ERROR with a positive error code gave a
/// `KernelError` with a negative errno (the kernel sends negated errnos only). Now a
/// typed `InvalidValue` error at the error code.
#[test]
fn regression_positive_error_code_is_invalid() {
    let input: [u8; 37] = [
        0x24, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x01, 0x26, 0xd3, 0x63, 0x72, 0x5c, 0x4c, 0x00,
        0xa1, 0x00, 0xff, 0xff, 0x5b, 0xff, 0x24, 0x00, 0x00, 0x00, 0x04, 0x08, 0x05, 0x00, 0x26,
        0xd3, 0x63, 0x72, 0x00, 0x00, 0x00, 0x00,
    ];
    let f = Frames::new(&input)
        .next()
        .expect("frame")
        .expect("valid frame");
    let e = f.control("t").expect_err("positive error code");
    assert_eq!(e.kind, DecodeErrorKind::InvalidValue);
    assert_eq!(e.offset, HDR);
    // Negative codes still give positive errnos, i32::MIN included.
    for code in [-1i32, -22, i32::MIN] {
        let mut m = input.to_vec();
        m[16..20].copy_from_slice(&code.to_ne_bytes());
        let f = Frames::new(&m).next().expect("frame").expect("valid frame");
        match f.control("t") {
            Ok(Control::Error(k)) => assert!(k.errno > 0, "{code} -> {}", k.errno),
            other => panic!("{code}: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Generated messages and random mutations

fn entry_message(t: &Tuple, state: u8, mark: u32, extra: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut b = MessageBuilder::new(0x0100, 2);
    b.put_raw(&[if t.src.is_ipv4() { 2 } else { 10 }, 0, 0, 0]);
    t.emit(&mut b, CTA_TUPLE_ORIG);
    t.reversed().emit(&mut b, CTA_TUPLE_REPLY);
    ProtoInfo {
        tcp: Some(TcpInfo {
            state: Some(TcpState::from(state)),
            wscale_original: Some(7),
            ..TcpInfo::default()
        }),
        ..ProtoInfo::default()
    }
    .emit(&mut b);
    b.put_be32(CTA_MARK, mark).put_be32(CTA_TIMEOUT, 99);
    let c = b.begin_nest(CTA_COUNTERS_ORIG);
    b.put_be64(CTA_COUNTERS_PACKETS, 3)
        .put_be64(CTA_COUNTERS_BYTES, 180);
    b.end_nest(c);
    for (k, v) in extra {
        b.put_bytes(*k, v);
    }
    b.finish()
}

fn arb_tuple() -> impl Strategy<Value = Tuple> {
    (
        any::<bool>(),
        any::<u128>(),
        any::<u128>(),
        any::<u16>(),
        any::<u16>(),
        any::<Option<u16>>(),
    )
        .prop_map(|(v4, a, b, sp, dp, zone)| {
            let (src, dst) = if v4 {
                (
                    IpAddr::from((a as u32).to_be_bytes()),
                    IpAddr::from((b as u32).to_be_bytes()),
                )
            } else {
                (IpAddr::from(a.to_be_bytes()), IpAddr::from(b.to_be_bytes()))
            };
            let mut t = Tuple::with_ports(6, src, sp, dst, dp);
            t.zone = zone;
            t
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// Generated entries: decode, then every truncation and every corrupted length.
    #[test]
    fn generated_entries_truncated_and_corrupted(
        t in arb_tuple(),
        state in 0u8..14,
        mark in any::<u32>(),
        extra in proptest::collection::vec(
            (CTA_TIMESTAMP_EVENT + 1..CTA_TIMESTAMP_EVENT + 30, proptest::collection::vec(any::<u8>(), 0..12)),
            0..3,
        ),
    ) {
        let mut extra = extra;
        extra.sort_by_key(|e| e.0);
        extra.dedup_by_key(|e| e.0);
        let msg = entry_message(&t, state, mark, &extra);
        let e = Entry::from_frame(&Frames::new(&msg).next().unwrap().unwrap()).unwrap();
        prop_assert_eq!(&e.orig, &t);
        prop_assert_eq!(e.mark, Some(mark));
        prop_assert_eq!(e.unknown.len(), extra.len());
        check_truncations(&msg, Kind::Entry, "generated");
        check_corrupted_lengths(&msg, Kind::Entry, "generated");
    }

    /// Random byte changes to recorded messages never panic any decoder.
    #[test]
    fn mutated_fixtures_never_panic(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let all: Vec<Vec<u8>> = FIXTURE_MESSAGES.with(|m| m.clone());
        let msg = which.get(&all);
        let mut m = msg.clone();
        for (at, v) in edits {
            let i = at.index(m.len());
            m[i] = v;
        }
        // Whole buffer (framing may now fail) and a re-framed, possibly cut copy.
        for f in Frames::new(&m) {
            match f {
                Ok(f) => { let _ = decode_frame(&f); }
                Err(_) => break,
            }
        }
        let c = HDR + cut.index(m.len() - HDR + 1);
        let mut r = m[..c].to_vec();
        r[..4].copy_from_slice(&(c as u32).to_ne_bytes());
        if let Some(Ok(f)) = Frames::new(&r).next() {
            let _ = decode_frame(&f);
        }
    }

    /// Random bytes behind a valid netlink + nfgenmsg header of each decoder's type.
    #[test]
    fn random_bodies_never_panic(
        ty in prop_oneof![Just(0x0100u16), Just(0x0102), Just(0x0104), Just(0x0105), Just(0x0801), Just(0x0002), Just(0x0003)],
        body in proptest::collection::vec(any::<u8>(), 0..300),
        nested in any::<bool>(),
    ) {
        let mut b = MessageBuilder::new(ty, 0);
        b.put_raw(&[2, 0, 0, 0]);
        if nested {
            b.put_bytes(CTA_TUPLE_ORIG | NLA_F_NESTED, &body);
        } else {
            b.put_raw(&body);
        }
        let msg = b.finish();
        let f = Frames::new(&msg).next().unwrap().unwrap();
        let _ = decode_frame(&f);
    }
}

thread_local! {
    static FIXTURE_MESSAGES: Vec<Vec<u8>> = fixtures()
        .iter()
        .flat_map(|(_, b)| Frames::new(b).map(|f| f.expect("valid")).map(|f| b[f.offset..f.offset + f.header.length as usize].to_vec()).collect::<Vec<_>>())
        .collect();
}
