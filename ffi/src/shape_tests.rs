//! The C outputs of a dump compared with the core's checked decoder, on the recorded
//! kernel answers and on mutations of them.
//!
//! The C layer does not decode: the struct dump converts the core's dump steps
//! (`Dump::next_step`: the values of a `ShapedEntry` where a repeated layout has an
//! entry shape, an owned entry otherwise) with `ipvsct_ct_entry::fill_from_step`, and the view accessors convert the core's views
//! (`EntryView::orig` / `reply` / `state`, read at the shape's known positions). These
//! tests feed every recorded entry (as recorded, and without the counters, timestamps
//! and labels, as the benchmark's table has none) through the core's layout cache the way
//! a dump does, several times so that its shape is made and used, and require every C
//! output to equal the C form of the entry the checked decoder builds from the same bytes
//! alone (`Entry::from_frame`, no cache, joined with the same timeouts). Then 20,000
//! mutated messages (byte flips in headers, lengths, values and padding), each after
//! copies of the entry it came from so that the remembered shape is tried on it.

use ipvs_conntrack::conntrack::wire::{
    CTA_COUNTERS_ORIG, CTA_COUNTERS_REPLY, CTA_LABELS, CTA_MARK_MASK, CTA_STATUS_MASK,
    CTA_TIMESTAMP,
};
use ipvs_conntrack::conntrack::{DumpStep, Entry, EntryView, EntryViews, StateTimeouts};
use ipvs_conntrack::netlink::attr::NLA_TYPE_MASK;
use ipvs_conntrack::netlink::frame::Frames;

use crate::entry::ipvsct_ct_entry;
use crate::result::ipvsct_result::{self, *};
use crate::tuple::ipvsct_tuple;
use crate::view::{
    ipvsct_ct_view_entry, ipvsct_ct_view_orig, ipvsct_ct_view_proto, ipvsct_ct_view_reply,
    ipvsct_ct_view_state, ipvsct_ct_view_state_timeout, ViewCtx,
};
use crate::view_tests::timeouts;

/// Recorded kernel answers (compiled in, for Miri).
const FIXTURES: &[&[u8]] = &[
    include_bytes!("../../tests/fixtures/dump_all.bin"),
    include_bytes!("../../tests/fixtures/dump_mark.bin"),
    include_bytes!("../../tests/fixtures/dump_zone.bin"),
    include_bytes!("../../tests/fixtures/dump_ipv6.bin"),
    include_bytes!("../../tests/fixtures/get_tcp.bin"),
    include_bytes!("../../tests/fixtures/dump_fill.bin"),
    include_bytes!("../../tests/fixtures/dump_created_zones.bin"),
];

/// How often each message is fed before the one compared: the layout is remembered on
/// the first, its shape made on the second.
const WARM: usize = 2;

/// `msg` (one netlink message holding an entry) without its top-level attributes of
/// the kinds in `drop`.
fn strip(msg: &[u8], drop: &[u16]) -> Vec<u8> {
    // Netlink header (16) and nfgenmsg (4), then the attributes.
    let mut out = msg[..20].to_vec();
    let mut pos = 20;
    while pos + 4 <= msg.len() {
        let len = usize::from(u16::from_ne_bytes([msg[pos], msg[pos + 1]]));
        let kind = u16::from_ne_bytes([msg[pos + 2], msg[pos + 3]]) & NLA_TYPE_MASK;
        let end = (pos + ((len + 3) & !3)).min(msg.len());
        if !drop.contains(&kind) {
            out.extend_from_slice(&msg[pos..end]);
        }
        if end <= pos {
            break;
        }
        pos = end;
    }
    let len = out.len() as u32;
    out[..4].copy_from_slice(&len.to_ne_bytes());
    out
}

/// `msg` with a 32-bit attribute of kind `kind` appended (big-endian `value`).
fn append_u32(msg: &[u8], kind: u16, value: u32) -> Vec<u8> {
    let mut out = msg.to_vec();
    out.extend_from_slice(&8u16.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&value.to_be_bytes());
    let len = out.len() as u32;
    out[..4].copy_from_slice(&len.to_ne_bytes());
    out
}

/// Every entry message of the fixtures, and each again without the counters,
/// timestamps and labels; then the first ones with the request-only masks that the C
/// struct does not hold (CTA_MARK_MASK, CTA_STATUS_MASK: IPVSCT_CT_ENTRY_HAS_MORE).
fn messages() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for buf in FIXTURES {
        for f in Frames::new(buf).flatten() {
            if EntryView::from_frame(&f).is_ok() {
                let msg = &buf[f.offset..f.offset + f.header.length as usize];
                out.push(msg.to_vec());
                out.push(strip(
                    msg,
                    &[
                        CTA_COUNTERS_ORIG,
                        CTA_COUNTERS_REPLY,
                        CTA_TIMESTAMP,
                        CTA_LABELS,
                    ],
                ));
            }
        }
    }
    assert!(out.len() >= 100, "fixtures hold entries: {}", out.len());
    let masked: Vec<Vec<u8>> = out
        .iter()
        .take(8)
        .flat_map(|m| {
            [
                append_u32(m, CTA_MARK_MASK, 0xffff_0000),
                append_u32(m, CTA_STATUS_MASK, 0x8),
            ]
        })
        .collect();
    if cfg!(miri) {
        // Miri is slow: a few entries, as recorded and stripped, and two with a mask.
        out.truncate(4);
        out.extend(masked.into_iter().take(2));
    } else {
        out.extend(masked);
    }
    out
}

/// The C result of an accessor over a core result: the code, and the value written.
fn c_result<T: Copy>(r: Result<Option<T>, ()>) -> (ipvsct_result, Option<T>) {
    match r {
        Ok(Some(x)) => (IPVSCT_OK, Some(x)),
        Ok(None) => (IPVSCT_ABSENT, None),
        Err(()) => (IPVSCT_ERR_DECODE, None),
    }
}

/// Runs a C accessor into a fresh output; the code, and the output if it was written.
fn call<T: Copy + Default + PartialEq + std::fmt::Debug>(
    f: impl FnOnce(*mut T) -> ipvsct_result,
    sentinel: T,
) -> (ipvsct_result, Option<T>) {
    let mut out = sentinel;
    let code = f(&mut out);
    if code == IPVSCT_OK {
        (code, Some(out))
    } else {
        assert_eq!(out, sentinel, "nothing written with {code:?}");
        (code, None)
    }
}

/// What was compared for one message.
#[derive(Default)]
struct Seen {
    /// Entries compared through the view accessors and through the struct path.
    views: usize,
    structs: usize,
    /// Entries compared through the struct dump's steps, and how many of them were shaped.
    steps: usize,
    shaped: usize,
    /// Entries whose state timeout is known.
    state_timeouts: usize,
    /// Messages the checked decoder rejects (the cached paths must reject them too).
    rejected: usize,
}

/// Feeds `warm` (the messages a dump received before) and then `msg` through the
/// core's layout cache, as a dump does, and compares every C output for `msg` with the
/// C form of what the checked decoder makes of `msg` alone.
fn compare(warm: &[&[u8]], msg: &[u8], t: &StateTimeouts, seen: &mut Seen) {
    let buf: Vec<u8> = warm
        .iter()
        .copied()
        .chain([msg])
        .flatten()
        .copied()
        .collect();
    // The reference: the checked decoder on the message alone, joined as `Dump` joins.
    let frame = match Frames::new(msg).next() {
        Some(Ok(f)) => f,
        // A broken netlink header: nothing to compare (the core's frame reader stops).
        _ => return,
    };
    let checked_view = EntryView::from_frame(&frame);
    let checked = Entry::from_frame(&frame).map(|mut e| {
        e.state_timeout = t.for_state(e.orig.proto, e.state);
        e
    });

    // The view accessors, on the view the layout cache gives (the last message).
    let mut views = EntryViews::new(&buf);
    for _ in warm {
        let _ = views.next();
    }
    let (hits_before, _) = views.layout_stats();
    let cached = views.next();
    match (&checked_view, cached) {
        (Err(_), Some(Err(_))) | (Err(_), None) => seen.rejected += 1,
        (Ok(_), Some(Err(e))) => panic!("the layout cache rejects what the checker takes: {e}"),
        (Err(e), Some(Ok(_))) => panic!("the layout cache takes what the checker rejects: {e}"),
        (Ok(_), None) => panic!("the layout cache lost the entry"),
        (Ok(cv), Some(Ok(v))) => {
            if !warm.is_empty() && warm.iter().all(|w| *w == msg) {
                assert!(
                    views.layout_stats().0 > hits_before,
                    "a repeated layout hits"
                );
            }
            let ctx = ViewCtx::new(&v, Some(t));
            let c = ctx.as_c();
            // SAFETY: `c` points to a live ViewCtx for the whole block; outputs are
            // writable locals.
            unsafe {
                let want = c_result(cv.orig().map_err(|_| ()));
                let got = call(|o| ipvsct_ct_view_orig(c, o), ipvsct_tuple::default());
                assert_eq!(got.0, want.0, "orig code");
                assert_eq!(got.1, want.1.map(|t| ipvsct_tuple::from_view(&t)), "orig");
                let want = c_result(cv.reply().map_err(|_| ()));
                let got = call(|o| ipvsct_ct_view_reply(c, o), ipvsct_tuple::default());
                assert_eq!(got.0, want.0, "reply code");
                assert_eq!(got.1, want.1.map(|t| ipvsct_tuple::from_view(&t)), "reply");
                let want = c_result(cv.proto().map_err(|_| ()));
                assert_eq!(call(|o| ipvsct_ct_view_proto(c, o), 0u8), want, "proto");
                // The state timeout as `Dump` joins it: `for_state` of the checked state.
                let want = match cv.state() {
                    Ok(s) => c_result(Ok(t.for_state(cv.proto().ok().flatten().unwrap_or(0), s))),
                    Err(_) => (IPVSCT_ERR_DECODE, None),
                };
                let got = call(|o| ipvsct_ct_view_state_timeout(c, o), 0xdead_beefu32);
                assert_eq!(got, want, "state timeout");
                seen.state_timeouts += usize::from(got.1.is_some());
                let (mut kind, mut num) = (0xffu8, 0xffu8);
                let code = ipvsct_ct_view_state(c, &mut kind, &mut num);
                match cv.state() {
                    Ok(s) => {
                        assert_eq!(code, IPVSCT_OK);
                        assert_eq!((kind, num), crate::entry::state_parts(s), "state");
                    }
                    Err(_) => assert_eq!(code, IPVSCT_ERR_DECODE),
                }
                // The whole struct: the C form of the checked, joined owned entry.
                let got = call(
                    |o| ipvsct_ct_view_entry(c, o),
                    ipvsct_ct_entry {
                        fields: 0xdead_beef,
                        ..Default::default()
                    },
                );
                match &checked {
                    Ok(e) => assert_eq!(got, (IPVSCT_OK, Some(ipvsct_ct_entry::from_core(e)))),
                    Err(_) => assert_eq!(got, (IPVSCT_ERR_DECODE, None)),
                }
            }
            seen.views += 1;
        }
    }

    // The struct path: the core's owned entries (shaped where the layout has a shape),
    // joined as `Dump::next` joins them, then `fill_from_core` into a struct that held
    // another entry (every field must be overwritten).
    let mut owned = EntryViews::new(&buf).owned();
    for _ in warm {
        let _ = owned.next();
    }
    match (owned.next(), &checked) {
        (Some(Ok(mut e)), Ok(want)) => {
            e.state_timeout = t.for_state(e.orig.proto, e.state);
            let mut c = stale();
            ipvsct_ct_entry::fill_from_core(&mut c, &e);
            assert_eq!(c, ipvsct_ct_entry::from_core(want), "struct dump entry");
            seen.structs += 1;
        }
        (Some(Err(_)), Err(_)) | (None, Err(_)) => {}
        (got, want) => panic!(
            "owned entries disagree with the checked decoder: {:?} vs {:?}",
            got.map(|r| r.map(|_| ())),
            want.as_ref().map(|_| ())
        ),
    }

    // The struct dump's own path: `next_step` (a shaped entry's values where the layout
    // has a shape, the decoded entry otherwise, joined with the same timeouts), then
    // `fill_from_step` into a struct that held another entry.
    let mut steps = EntryViews::new(&buf);
    for _ in warm {
        let _ = steps.next_step(Some(t));
    }
    match (steps.next_step(Some(t)), &checked) {
        (Some(Ok(step)), Ok(want)) => {
            seen.shaped += usize::from(matches!(step, DumpStep::Shaped(_)));
            let mut c = stale();
            ipvsct_ct_entry::fill_from_step(&mut c, &step);
            assert_eq!(c, ipvsct_ct_entry::from_core(want), "struct dump step");
            seen.steps += 1;
        }
        (Some(Err(_)), Err(_)) | (None, Err(_)) => {}
        (got, want) => panic!(
            "dump steps disagree with the checked decoder: {:?} vs {:?}",
            got.map(|r| r.map(|_| ())),
            want.as_ref().map(|_| ())
        ),
    }
}

/// A struct that holds another entry: every field must be overwritten.
fn stale() -> ipvsct_ct_entry {
    ipvsct_ct_entry {
        fields: 0xdead_beef,
        labels: [7; crate::entry::IPVSCT_LABEL_WORDS],
        state_name: [1; crate::entry::IPVSCT_STATE_NAME_LEN],
        helper: [1; crate::entry::IPVSCT_HELPER_NAME_LEN],
        timeout: 5,
        mark: 7,
        master: ipvsct_tuple {
            proto: 9,
            ..Default::default()
        },
        reserved: [9; 7],
        ..Default::default()
    }
}

#[test]
fn c_outputs_agree_with_the_core_on_recorded_entries() {
    let t = timeouts();
    let msgs = messages();
    let mut seen = Seen::default();
    for m in &msgs {
        // Alone (no layout remembered), then after copies of itself (its shape is made
        // and used).
        compare(&[], m, &t, &mut seen);
        compare(&[m.as_slice(); WARM], m, &t, &mut seen);
    }
    assert_eq!(seen.rejected, 0, "recorded entries decode");
    assert_eq!(seen.views, 2 * msgs.len());
    assert_eq!(seen.structs, 2 * msgs.len());
    assert_eq!(seen.steps, 2 * msgs.len());
    // Every recorded entry of the fill (and more) has a shape once its layout repeats.
    assert!(
        seen.shaped * 4 >= msgs.len(),
        "shaped steps {} of {}",
        seen.shaped,
        seen.steps
    );
    // Most recorded entries are TCP or UDP, whose states have timeouts.
    assert!(
        seen.state_timeouts * 2 >= seen.views,
        "state timeouts {} of {}",
        seen.state_timeouts,
        seen.views
    );
}

#[test]
fn c_outputs_agree_with_the_core_on_mutated_entries() {
    let t = timeouts();
    let msgs = messages();
    // A small deterministic generator (xorshift): byte flips anywhere after the
    // netlink header, which hit headers, lengths, values and padding.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let rounds = if cfg!(miri) { 20 } else { 20_000 };
    let mut seen = Seen::default();
    for _ in 0..rounds {
        let base = &msgs[next() as usize % msgs.len()];
        let mut m = base.clone();
        for _ in 0..1 + next() % 3 {
            let i = 16 + next() as usize % (m.len() - 16);
            m[i] = match next() % 4 {
                0 => m[i] ^ (1 << (next() % 8)),
                1 => m[i].wrapping_add(4),
                2 => m[i].wrapping_sub(4),
                _ => next() as u8,
            };
        }
        // After copies of the entry it came from: the cache holds that entry's layout
        // and shape, which the mutated bytes may or may not match.
        compare(&[base.as_slice(); WARM], &m, &t, &mut seen);
    }
    // Most flips hit values, which keep the entry indexable (and its shape); the owned
    // entry decodes every nested value too, so fewer survive as structs.
    assert!(
        seen.views > rounds / 2 && seen.structs > rounds / 4 && seen.steps == seen.structs,
        "views {} structs {} steps {} of {rounds}",
        seen.views,
        seen.structs,
        seen.steps
    );
    // (Under Miri: 20 rounds of a deterministic generator over six messages, two shaped.)
    let min_shaped = if cfg!(miri) { 1 } else { rounds / 10 };
    assert!(seen.shaped > min_shaped, "shaped steps {}", seen.shaped);
    assert!(seen.rejected > 0, "some flips break the entry");
}
