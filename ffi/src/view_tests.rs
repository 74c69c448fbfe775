//! The dump path builds `ipvsct_ct_entry` straight from an `EntryView`
//! (`ipvsct_ct_entry::from_view`, falling back to the owned entry where the view cannot
//! say); everything else (lookups, events, offline decoding) builds it from an owned
//! `Entry` (`from_core`). These tests check, field by field, that both give the same
//! struct (and the same error) for every entry of the recorded kernel answers in
//! tests/fixtures, for those entries with the nests that force the fallback removed (so
//! the view path itself is compared), and for each of them with one extra attribute of
//! every kind that matters to the C struct (unknown ones at every depth, the attributes
//! only the Rust API holds, over-long labels and helper names, malformed nests).

use ipvs_conntrack::conntrack::timeout::from_sysctls;
use ipvs_conntrack::conntrack::wire::*;
use ipvs_conntrack::conntrack::{EntryView, StateTimeouts};
use ipvs_conntrack::netlink::frame::{Frame, Frames, NLMSG_HDRLEN};
use ipvs_conntrack::netlink::nfnetlink::{split_type, NFNL_SUBSYS_CTNETLINK};

use crate::entry::*;

/// Recorded answers that hold conntrack entries (compiled in: Miri runs these tests
/// without file access).
const ENTRY_FIXTURES: &[(&str, &[u8])] = &[
    (
        "dump_all.bin",
        include_bytes!("../../tests/fixtures/dump_all.bin"),
    ),
    (
        "dump_mark.bin",
        include_bytes!("../../tests/fixtures/dump_mark.bin"),
    ),
    (
        "dump_zone.bin",
        include_bytes!("../../tests/fixtures/dump_zone.bin"),
    ),
    (
        "dump_ipv6.bin",
        include_bytes!("../../tests/fixtures/dump_ipv6.bin"),
    ),
    (
        "get_tcp.bin",
        include_bytes!("../../tests/fixtures/get_tcp.bin"),
    ),
];

/// Length of `nfgenmsg`.
const NFGENMSG_LEN: usize = 4;

/// Every conntrack entry message of a recorded answer, as its own netlink message.
fn entry_messages(buf: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for f in Frames::new(buf) {
        let f = f.unwrap();
        let (subsys, msg) = split_type(f.header.message_type);
        if subsys == NFNL_SUBSYS_CTNETLINK
            && (msg == IPCTNL_MSG_CT_NEW || msg == IPCTNL_MSG_CT_DELETE)
        {
            let start = f.offset;
            out.push(buf[start..start + f.header.length as usize].to_vec());
        }
    }
    // Miri (tests/c/run.sh) checks the same code on one entry per answer: it is slow.
    if cfg!(miri) {
        out.truncate(1);
    }
    out
}

/// Timeouts with a distinct value for every state (as a dump joins them; also used by
/// `shape_tests`).
pub(crate) fn timeouts() -> StateTimeouts {
    from_sysctls(|name| {
        Some(
            name.bytes()
                .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
                % 100_000,
        )
    })
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One attribute (header and value, padded).
fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
    let len = 4 + value.len();
    let mut a = Vec::with_capacity(align4(len));
    a.extend_from_slice(&(len as u16).to_ne_bytes());
    a.extend_from_slice(&kind.to_ne_bytes());
    a.extend_from_slice(value);
    a.resize(align4(len), 0);
    a
}

/// A nest of `children` (already encoded attributes), with NLA_F_NESTED as the kernel sets it.
fn nest(kind: u16, children: &[Vec<u8>]) -> Vec<u8> {
    attr(kind | 0x8000, &children.concat())
}

/// The top-level attributes of an entry message: (type without flags, whole encoded attribute).
fn top_attrs(msg: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let body = &msg[NLMSG_HDRLEN + NFGENMSG_LEN..];
    let mut pos = 0;
    let mut out = Vec::new();
    while pos + 4 <= body.len() {
        let len = usize::from(u16::from_ne_bytes([body[pos], body[pos + 1]]));
        let kind = u16::from_ne_bytes([body[pos + 2], body[pos + 3]]) & 0x3fff;
        let end = (pos + align4(len)).min(body.len());
        out.push((kind, body[pos..end].to_vec()));
        pos = end;
    }
    out
}

/// `msg` with its attributes replaced by `attrs` (header length fixed up).
fn with_attrs(msg: &[u8], attrs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = msg[..NLMSG_HDRLEN + NFGENMSG_LEN].to_vec();
    for a in attrs {
        out.extend_from_slice(a);
    }
    let len = out.len() as u32;
    out[..4].copy_from_slice(&len.to_ne_bytes());
    out
}

/// `msg` without the top-level attributes of the kinds in `drop`, plus `extra`.
fn edited(msg: &[u8], drop: &[u16], extra: &[Vec<u8>]) -> Vec<u8> {
    let mut attrs: Vec<Vec<u8>> = top_attrs(msg)
        .into_iter()
        .filter(|(k, _)| !drop.contains(k))
        .map(|(_, a)| a)
        .collect();
    attrs.extend(extra.iter().cloned());
    with_attrs(msg, &attrs)
}

fn frame(msg: &[u8]) -> Frame<'_> {
    Frames::new(msg).next().unwrap().unwrap()
}

/// The owned path, as lookups and `Dump`'s iterator do it: owned entry, joined, `from_core`.
fn owned(msg: &[u8], t: Option<&StateTimeouts>) -> Result<ipvsct_ct_entry, String> {
    let v = EntryView::from_frame(&frame(msg)).map_err(|e| e.to_string())?;
    let mut e = v.to_owned().map_err(|e| e.to_string())?;
    if let Some(t) = t {
        e.state_timeout = t.for_state(e.orig.proto, e.state);
    }
    Ok(ipvsct_ct_entry::from_core(&e))
}

/// What the dump path hands to C: `from_view`, or the owned path where it declines.
/// The second value says whether the view path itself produced the struct.
fn dumped(msg: &[u8], t: Option<&StateTimeouts>) -> (Result<ipvsct_ct_entry, String>, bool) {
    let v = match EntryView::from_frame(&frame(msg)) {
        Ok(v) => v,
        Err(e) => return (Err(e.to_string()), false),
    };
    if let Some(c) = ipvsct_ct_entry::from_view(&v, t) {
        // A struct full of another entry's values: every field must be overwritten.
        let mut filled = ipvsct_ct_entry {
            fields: 0xdead_beef,
            labels: [7; IPVSCT_LABEL_WORDS],
            state_name: [1; IPVSCT_STATE_NAME_LEN],
            helper: [1; IPVSCT_HELPER_NAME_LEN],
            timeout: 5,
            state_timeout: 6,
            mark: 7,
            master: c.orig,
            counters_orig: ipvsct_counters {
                packets: 1,
                bytes: 2,
            },
            reserved: [9; 7],
            ..Default::default()
        };
        assert!(
            ipvsct_ct_entry::fill_from_view(&mut filled, &v, t),
            "fill_from_view and from_view disagree"
        );
        assert_eq!(filled, c, "fill_from_view left stale fields");
        return (Ok(c), true);
    }
    let stale = ipvsct_ct_entry {
        fields: 0xdead_beef,
        mark: 7,
        ..Default::default()
    };
    let mut untouched = stale;
    assert!(!ipvsct_ct_entry::fill_from_view(&mut untouched, &v, t));
    assert_eq!(
        untouched, stale,
        "a declined view must leave *out untouched"
    );
    (owned(msg, t), false)
}

/// Asserts both paths agree on `msg` with and without timeouts; returns whether the view
/// path built the struct.
fn check(msg: &[u8], what: &str) -> bool {
    let t = timeouts();
    let mut via_view = None;
    for t in [None, Some(&t)] {
        let want = owned(msg, t);
        let (got, view) = dumped(msg, t);
        assert_eq!(got, want, "{what} (timeouts: {})", t.is_some());
        if let Some(v) = via_view {
            assert_eq!(v, view, "{what}: the path depends on the timeouts");
        }
        via_view = Some(view);
    }
    via_view.unwrap()
}

/// The nests whose unknown members the view API does not report: their presence makes
/// the dump take the owned path.
const FALLBACK_NESTS: &[u16] = &[
    CTA_COUNTERS_ORIG,
    CTA_COUNTERS_REPLY,
    CTA_TIMESTAMP,
    CTA_HELP,
];

#[test]
fn recorded_entries_are_the_same_on_both_paths() {
    let mut entries = 0;
    for (name, buf) in ENTRY_FIXTURES {
        for msg in entry_messages(buf) {
            entries += 1;
            check(&msg, &format!("{name} as recorded"));
        }
    }
    assert!(
        entries >= if cfg!(miri) { 5 } else { 16 },
        "only {entries} entries in the fixtures"
    );
}

#[test]
fn recorded_entries_without_fallback_nests_take_the_view_path() {
    let t = timeouts();
    let mut n = 0;
    let mut with_state_timeout = 0;
    let mut more = 0;
    for (name, buf) in ENTRY_FIXTURES {
        for msg in entry_messages(buf) {
            let msg = edited(&msg, FALLBACK_NESTS, &[]);
            assert!(
                check(&msg, &format!("{name} without counters/timestamps")),
                "{name}: an entry without fallback nests took the owned path"
            );
            let c =
                ipvsct_ct_entry::from_view(&EntryView::from_frame(&frame(&msg)).unwrap(), Some(&t))
                    .unwrap();
            n += 1;
            with_state_timeout += u32::from(c.fields & IPVSCT_CT_ENTRY_HAS_STATE_TIMEOUT != 0);
            more += u32::from(c.fields & IPVSCT_CT_ENTRY_HAS_MORE != 0);
        }
    }
    assert!(n >= if cfg!(miri) { 5 } else { 16 });
    // Real values were compared: every recorded entry has a state with a timeout, and
    // the entries made over ctnetlink carry CTA_SYNPROXY (only the Rust API holds it).
    assert_eq!(with_state_timeout, n);
    if !cfg!(miri) {
        assert!(more > 0 && more < n, "HAS_MORE on {more} of {n}");
    }
}

/// Extra attributes, each added to every recorded entry in turn.
fn extras() -> Vec<(&'static str, Vec<u8>, bool)> {
    let be32 = |k, v: u32| attr(k, &v.to_be_bytes());
    let labels =
        |words: &[u32]| -> Vec<u8> { words.iter().flat_map(|w| w.to_ne_bytes()).collect() };
    // (what, attribute, whether the view path must still build the struct)
    vec![
        ("unknown top-level attribute", attr(99, &[1, 2, 3, 4]), true),
        ("CTA_UNSPEC", attr(0, &[]), true),
        ("mark mask", be32(CTA_MARK_MASK, 0xff), true),
        ("status mask", be32(CTA_STATUS_MASK, 0x2), true),
        (
            "event time",
            attr(CTA_TIMESTAMP_EVENT, &123_456_789u64.to_be_bytes()),
            true,
        ),
        ("secmark", be32(CTA_SECMARK, 77), true),
        (
            "labels within 128 bits",
            attr(CTA_LABELS, &labels(&[1, 0, 0, 1 << 31])),
            true,
        ),
        (
            "labels past 128 bits",
            attr(CTA_LABELS, &labels(&[0, 2, 0, 0, 0, 0, 0, 1])),
            true,
        ),
        ("empty labels", attr(CTA_LABELS, &[]), true),
        (
            "labels mask",
            attr(CTA_LABELS_MASK, &labels(&[3, 0, 0, 0])),
            true,
        ),
        (
            "master tuple with an unknown member",
            nest(
                CTA_TUPLE_MASTER,
                &[
                    nest(
                        CTA_TUPLE_IP,
                        &[
                            attr(CTA_IP_V4_SRC, &[10, 9, 8, 7]),
                            attr(CTA_IP_V4_DST, &[10, 9, 8, 6]),
                        ],
                    ),
                    nest(
                        CTA_TUPLE_PROTO,
                        &[
                            attr(CTA_PROTO_NUM, &[6]),
                            attr(CTA_PROTO_SRC_PORT, &21u16.to_be_bytes()),
                            attr(CTA_PROTO_DST_PORT, &2121u16.to_be_bytes()),
                        ],
                    ),
                    attr(CTA_TUPLE_ZONE, &5u16.to_be_bytes()),
                    attr(9, &[0; 4]),
                ],
            ),
            true,
        ),
        (
            "seq adj",
            nest(CTA_SEQ_ADJ_ORIG, &[be32(CTA_SEQADJ_CORRECTION_POS, 5)]),
            true,
        ),
        (
            "NAT range",
            nest(CTA_NAT_SRC, &[attr(CTA_NAT_V4_MINIP, &[192, 0, 2, 1])]),
            true,
        ),
        (
            "secctx",
            nest(
                CTA_SECCTX,
                &[attr(CTA_SECCTX_NAME, b"system_u:object_r:x\0")],
            ),
            true,
        ),
        ("empty secctx", nest(CTA_SECCTX, &[]), true),
        (
            "synproxy",
            nest(CTA_SYNPROXY, &[be32(CTA_SYNPROXY_ISN, 1)]),
            true,
        ),
        ("empty protoinfo", nest(CTA_PROTOINFO, &[]), true),
        (
            "DCCP protoinfo",
            nest(
                CTA_PROTOINFO,
                &[nest(
                    CTA_PROTOINFO_DCCP,
                    &[
                        attr(CTA_PROTOINFO_DCCP_STATE, &[3]),
                        attr(CTA_PROTOINFO_DCCP_ROLE, &[1]),
                        attr(
                            CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ,
                            &0x0102_0304_0506u64.to_be_bytes(),
                        ),
                    ],
                )],
            ),
            true,
        ),
        (
            "helper",
            nest(CTA_HELP, &[attr(CTA_HELP_NAME, b"ftp\0")]),
            false,
        ),
        (
            "helper with info and an unknown member",
            nest(
                CTA_HELP,
                &[
                    attr(CTA_HELP_NAME, b"ftp\0"),
                    attr(CTA_HELP_INFO, &[1, 2]),
                    attr(9, &[]),
                ],
            ),
            false,
        ),
        (
            "helper name longer than the C field",
            nest(
                CTA_HELP,
                &[attr(CTA_HELP_NAME, b"a-very-long-helper-name\0")],
            ),
            false,
        ),
        (
            "counters with an unknown member",
            nest(
                CTA_COUNTERS_ORIG,
                &[
                    attr(CTA_COUNTERS_PACKETS, &5u64.to_be_bytes()),
                    attr(CTA_COUNTERS_BYTES, &500u64.to_be_bytes()),
                    attr(9, &[0; 8]),
                ],
            ),
            false,
        ),
        (
            "timestamp",
            nest(
                CTA_TIMESTAMP,
                &[attr(CTA_TIMESTAMP_START, &99u64.to_be_bytes())],
            ),
            false,
        ),
        // Malformed: both paths must fail the same way.
        (
            "truncated synproxy member",
            nest(CTA_SYNPROXY, &[attr(CTA_SYNPROXY_ISN, &[1])]),
            false,
        ),
        (
            "truncated seq adj member",
            nest(
                CTA_SEQ_ADJ_REPLY,
                &[attr(CTA_SEQADJ_CORRECTION_POS, &[1, 2])],
            ),
            false,
        ),
        (
            "master tuple without addresses",
            nest(CTA_TUPLE_MASTER, &[]),
            false,
        ),
        (
            "bad secctx name",
            nest(CTA_SECCTX, &[attr(CTA_SECCTX_NAME, &[0xff, 0xfe])]),
            false,
        ),
    ]
}

#[test]
fn every_extra_attribute_gives_the_same_struct_on_both_paths() {
    let mut view_built = 0;
    let mut cases = 0;
    // Under Miri: the first answer only (every extra still tried).
    let answers = if cfg!(miri) { 1 } else { ENTRY_FIXTURES.len() };
    for (name, buf) in ENTRY_FIXTURES.iter().take(answers) {
        for msg in entry_messages(buf) {
            let base = edited(&msg, FALLBACK_NESTS, &[]);
            let present: Vec<u16> = top_attrs(&base).iter().map(|(k, _)| *k).collect();
            for (what, extra, view_path) in extras() {
                let kind = u16::from_ne_bytes([extra[2], extra[3]]) & 0x3fff;
                // Replace an attribute the entry already has (duplicates are errors).
                let m = if present.contains(&kind) && kind != 0 && kind < 28 {
                    edited(&base, &[kind], &[extra])
                } else {
                    edited(&base, &[], &[extra])
                };
                let via_view = check(&m, &format!("{name} + {what}"));
                assert_eq!(
                    via_view, view_path,
                    "{name} + {what}: view path taken: {via_view}"
                );
                view_built += u32::from(via_view);
                cases += 1;
            }
        }
    }
    assert!(view_built > 0 && view_built < cases);
}

#[test]
fn unknown_members_inside_tuples_and_protoinfo_set_has_more() {
    let msg = &entry_messages(ENTRY_FIXTURES[4].1)[0];
    let base = edited(msg, FALLBACK_NESTS, &[]);
    let attrs = top_attrs(&base);
    let plain =
        ipvsct_ct_entry::from_view(&EntryView::from_frame(&frame(&base)).unwrap(), None).unwrap();
    for kind in [CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_PROTOINFO] {
        let (_, a) = attrs.iter().find(|(k, _)| *k == kind).unwrap();
        // Append an unknown member (type 30) inside the nest.
        let mut grown = a.clone();
        grown.extend_from_slice(&attr(30, &[1, 2, 3, 4]));
        let len = grown.len() as u16;
        grown[..2].copy_from_slice(&len.to_ne_bytes());
        let m = edited(&base, &[kind], &[grown]);
        assert!(check(&m, &format!("unknown member in nest {kind}")));
        let c =
            ipvsct_ct_entry::from_view(&EntryView::from_frame(&frame(&m)).unwrap(), None).unwrap();
        assert_eq!(
            c.fields & IPVSCT_CT_ENTRY_HAS_MORE,
            IPVSCT_CT_ENTRY_HAS_MORE,
            "nest {kind}"
        );
        let mut without = c;
        without.fields &= !IPVSCT_CT_ENTRY_HAS_MORE;
        let mut plain_without = plain;
        plain_without.fields &= !IPVSCT_CT_ENTRY_HAS_MORE;
        assert_eq!(without, plain_without, "nest {kind}: only HAS_MORE changes");
    }
}
