//! Length fields of pcap and pcapng files that lie (issue 8, pcap replay): a record or
//! block that claims gigabytes, a snapshot length of 4 GiB, an original length far past
//! the captured bytes, a netlink length past the record. Each gives a typed error (or
//! the record as it is), and reading never allocates in proportion to the claim: a
//! counting allocator measures the peak of live heap bytes while each file is read and
//! decoded. The file layer is pcap-file's slice parser, which borrows the bytes it
//! returns and checks every length against what is left, so capture.rs needs no guard
//! of its own; these tests hold both to it. No privileges needed.
#![cfg(feature = "capture")]
// The tracking allocator below is the only unsafe code, and it only forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use ipvs_conntrack::capture::{
    decode_pcap, decode_records, read_pcap, write_pcap, Body, CaptureError, DecodeOptions, Record,
    ARPHRD_NETLINK, LINKTYPE_NETLINK, PACKET_USER, PROTO_NETFILTER,
};
use ipvs_conntrack::socket::Direction;
use ipvs_conntrack::DecodeErrorKind;

/// Forwards to the system allocator and tracks the live and peak heap bytes of the
/// calling thread.
struct Tracking;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn grow(n: usize) {
    // `try_with`: the slots may be gone while the thread exits; those blocks are not ours.
    let _ = LIVE.try_with(|l| {
        let v = l.get() + n;
        l.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}

fn shrink(n: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(n)));
}

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the bookkeeping uses const-initialised thread-local `Cell`s
// without destructors, so it neither allocates nor re-enters the allocator.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        // SAFETY: forwarded from our caller, who upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grow(new_size);
        shrink(layout.size());
        // SAFETY: `ptr` came from this allocator, i.e. from `System`; the rest is forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrink(layout.size());
        // SAFETY: `ptr` came from this allocator, i.e. from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

/// Runs `f` and returns its result with the peak of heap bytes it held on this thread.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    (out, PEAK.with(Cell::get) - base)
}

/// Heap a read of these tiny files may use: records, messages, error strings.
const SMALL: usize = 16 << 10;

/// A netlink NLMSG_DONE message (status 0) in host byte order.
fn done_message() -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&20u32.to_ne_bytes());
    m.extend_from_slice(&3u16.to_ne_bytes());
    m.extend_from_slice(&2u16.to_ne_bytes());
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(&0i32.to_ne_bytes());
    m
}

/// The cooked header of a received NETLINK_NETFILTER datagram (big-endian fields).
fn cooked() -> Vec<u8> {
    let mut h = vec![0u8; 16];
    h[0..2].copy_from_slice(&PACKET_USER.to_be_bytes());
    h[2..4].copy_from_slice(&ARPHRD_NETLINK.to_be_bytes());
    h[14..16].copy_from_slice(&PROTO_NETFILTER.to_be_bytes());
    h
}

/// A classic little-endian microsecond pcap header.
fn pcap_header(snaplen: u32) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&4u16.to_le_bytes());
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&snaplen.to_le_bytes());
    f.extend_from_slice(&LINKTYPE_NETLINK.to_le_bytes());
    f
}

/// A classic pcap record header.
fn record_header(incl: u32, orig: u32) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(&1_700_000_000u32.to_le_bytes());
    r.extend_from_slice(&250_000u32.to_le_bytes());
    r.extend_from_slice(&incl.to_le_bytes());
    r.extend_from_slice(&orig.to_le_bytes());
    r
}

/// One good record: cooked header + NLMSG_DONE.
fn good_record(orig: u32) -> Vec<u8> {
    let body = [cooked(), done_message()].concat();
    [record_header(body.len() as u32, orig), body].concat()
}

fn record_error(r: Result<Vec<Record>, CaptureError>) -> (usize, String) {
    match r {
        Err(CaptureError::Record { record, reason }) => (record, reason),
        other => panic!("expected a record error, got {other:?}"),
    }
}

#[test]
fn a_record_claiming_four_gigabytes_is_a_typed_error_without_the_allocation() {
    for claim in [u32::MAX, 0xffff_fff0, 1 << 30, 70_000] {
        let file = [
            pcap_header(262_144),
            good_record(36),
            record_header(claim, claim),
            cooked(),
            done_message(),
        ]
        .concat();
        let (r, peak) = peak_of(|| read_pcap(&file));
        let (record, reason) = record_error(r);
        assert_eq!(record, 2, "claim {claim}");
        assert!(reason.contains("ends inside"), "{reason}");
        assert!(peak < SMALL, "claim {claim}: {peak} heap bytes");
        let (d, peak) = peak_of(|| decode_pcap(&file, &DecodeOptions::default()));
        assert!(matches!(d, Err(CaptureError::Record { record: 2, .. })));
        assert!(peak < SMALL, "claim {claim}: {peak} heap bytes");
    }
}

#[test]
fn a_four_gigabyte_snaplen_and_original_length_are_taken_as_they_are() {
    // snaplen u32::MAX (the reader never sizes anything by it) and an original length
    // far past the captured bytes: the record reads, marked truncated.
    let file = [pcap_header(u32::MAX), good_record(u32::MAX)].concat();
    let (records, peak) = peak_of(|| read_pcap(&file).expect("reads"));
    assert!(peak < SMALL, "{peak} heap bytes");
    // The tracker sees the record's own copy of the datagram.
    assert!(peak >= done_message().len(), "{peak} heap bytes");
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.data, done_message());
    assert_eq!(r.orig_len, u32::MAX - 16);
    assert!(r.truncated());
    assert_eq!(r.direction, Direction::Received);
    assert_eq!(r.timestamp, Duration::new(1_700_000_000, 250_000_000));
    let d = decode_records(&records, &DecodeOptions::default());
    assert_eq!(d.messages.len(), 1);
    assert_eq!(d.messages[0].body, Body::Done);
    // Written back, the original length survives and the file reads the same.
    let again = read_pcap(&write_pcap(Vec::new(), &records).expect("writes")).expect("reads");
    assert_eq!(again, records);
}

#[test]
fn a_netlink_length_past_the_record_is_an_invalid_message_not_a_read() {
    let mut msg = done_message();
    msg[..4].copy_from_slice(&0xffff_fff0u32.to_ne_bytes());
    let body = [cooked(), msg].concat();
    let file = [
        pcap_header(262_144),
        record_header(body.len() as u32, body.len() as u32),
        body,
    ]
    .concat();
    let (d, peak) = peak_of(|| decode_pcap(&file, &DecodeOptions::default()).expect("reads"));
    assert!(peak < SMALL, "{peak} heap bytes");
    assert_eq!(d.messages.len(), 1);
    let m = &d.messages[0];
    assert_eq!(m.name, "INVALID");
    assert_eq!(m.header.length, 0xffff_fff0);
    match &m.body {
        Body::Invalid(e) => {
            assert_eq!(e.offset, 0);
            assert!(
                matches!(
                    e.kind,
                    DecodeErrorKind::Truncated {
                        needed: 0xffff_fff0,
                        available: 20
                    }
                ),
                "{e:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// A little-endian pcapng block.
fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let mut body = body.to_vec();
    while body.len() % 4 != 0 {
        body.push(0);
    }
    let total = (body.len() + 12) as u32;
    [
        kind.to_le_bytes().to_vec(),
        total.to_le_bytes().to_vec(),
        body,
        total.to_le_bytes().to_vec(),
    ]
    .concat()
}

/// Section header and one netlink interface with snapshot length `snaplen`.
fn pcapng_head(snaplen: u32) -> Vec<u8> {
    let shb = [
        0x1a2b_3c4du32.to_le_bytes().to_vec(),
        1u16.to_le_bytes().to_vec(),
        0u16.to_le_bytes().to_vec(),
        (-1i64).to_le_bytes().to_vec(),
    ]
    .concat();
    let idb = [
        (LINKTYPE_NETLINK as u16).to_le_bytes().to_vec(),
        0u16.to_le_bytes().to_vec(),
        snaplen.to_le_bytes().to_vec(),
    ]
    .concat();
    [block(0x0a0d_0d0a, &shb), block(1, &idb)].concat()
}

/// An enhanced packet block body whose captured length field says `captured`.
fn epb_body(captured: u32, data: &[u8]) -> Vec<u8> {
    [
        0u32.to_le_bytes().to_vec(),
        0u32.to_le_bytes().to_vec(),
        1_000_000u32.to_le_bytes().to_vec(),
        captured.to_le_bytes().to_vec(),
        captured.to_le_bytes().to_vec(),
        data.to_vec(),
    ]
    .concat()
}

#[test]
fn pcapng_blocks_and_packets_claiming_gigabytes_are_typed_errors_without_the_allocation() {
    let data = [cooked(), done_message()].concat();
    let good = block(6, &epb_body(data.len() as u32, &data));

    // A packet whose captured length is larger than its block.
    for claim in [u32::MAX, 0xffff_fff0, 1 << 30] {
        let file = [
            pcapng_head(u32::MAX),
            good.clone(),
            block(6, &epb_body(claim, &data)),
        ]
        .concat();
        let (r, peak) = peak_of(|| read_pcap(&file));
        let (record, reason) = record_error(r);
        assert_eq!(record, 2, "claim {claim}: {reason}");
        assert!(reason.contains("captured_len"), "{reason}");
        assert!(peak < SMALL, "claim {claim}: {peak} heap bytes");
    }

    // A block whose total length runs past the file.
    for claim in [0xffff_fffcu32, 1 << 30] {
        let mut bad = good.clone();
        bad[4..8].copy_from_slice(&claim.to_le_bytes());
        let file = [pcapng_head(262_144), good.clone(), bad].concat();
        let (r, peak) = peak_of(|| read_pcap(&file));
        let (record, reason) = record_error(r);
        assert_eq!(record, 2, "claim {claim}");
        assert!(reason.contains("ends inside"), "{reason}");
        assert!(peak < SMALL, "claim {claim}: {peak} heap bytes");
    }

    // An interface with a 4 GiB snapshot length: its packets read as they are.
    let file = [pcapng_head(u32::MAX), good].concat();
    let (records, peak) = peak_of(|| read_pcap(&file).expect("reads"));
    assert!(peak < SMALL, "{peak} heap bytes");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].data, done_message());
    assert_eq!(records[0].timestamp, Duration::from_secs(1));
}
