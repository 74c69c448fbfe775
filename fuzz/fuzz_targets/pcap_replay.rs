//! pcap replay: arbitrary bytes through `capture::read_pcap`, `decode_records` and
//! `decode_pcap` (classic pcap in both byte orders and resolutions, pcapng), decoded
//! without an IPVS family id, with the one the capture names, and with one taken from the
//! input, so that any generic netlink message can be decoded as IPVS. Inputs that are not
//! pcap files are also replayed as one netlink datagram in every direction and protocol,
//! so the raw recordings (tests/fixtures/*.bin) seed the decoders behind the file layer.
//!
//! Checked on every input: no panic; only the read errors a file can cause (`Format`,
//! `LinkType` of another link type, `Record` numbered inside the file); `decode_pcap`
//! equals `read_pcap` + `decode_records`; every decoded message points at a record that
//! exists and every decode error at a byte inside its datagram; the JSON form of every
//! message names its kind; records that can be written back read back unchanged; and
//! memory stays bounded: the peak of live heap bytes while one input is handled is at
//! most [`BYTES_PER_INPUT_BYTE`] × the input length + [`SLACK`], so no length field of
//! the file (snaplen, caplen, block or option lengths, netlink lengths) makes the
//! decoder allocate what the input does not hold.
//!
//! Seeds: fuzz/seeds/pcap_replay/ (captures made with `ipvsct capture`),
//! tests/fixtures/nlmon/*.pcap* (tcpdump on nlmon, editcap's pcapng) and the netlink
//! recordings tests/fuzz.sh passes to every target.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ipvs_conntrack::capture::{
    decode_pcap, decode_records, read_pcap, write_pcap, Body, CaptureError, DecodeOptions, Decoded,
    Record, COOKED_HEADER_LEN, LINKTYPE_NETLINK, PROTO_GENERIC, PROTO_NETFILTER, SNAPLEN,
};
use ipvs_conntrack::netlink::frame::Frames;
use ipvs_conntrack::netlink::genl::GENL_ID_CTRL;
use ipvs_conntrack::socket::Direction;
use libfuzzer_sys::fuzz_target;

/// Heap bytes a decode may hold per input byte (records, decoded messages with owned
/// entries, error paths, JSON of one message), measured: at most 42 on the seeds and a first run.
const BYTES_PER_INPUT_BYTE: usize = 256;
/// Fixed heap allowance per input (format strings, small vectors, the writer's buffer).
const SLACK: usize = 1 << 20;

/// Forwards to the system allocator and tracks live and peak heap bytes.
struct Tracking;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grow(n: usize) {
    let live = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

fn shrink(n: usize) {
    LIVE.fetch_sub(n, Ordering::Relaxed);
}

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the bookkeeping only touches atomics and never allocates.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded from our caller, who upholds `alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`; the rest is forwarded.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Counted as the new block arriving before the old one leaves (the worst case).
            grow(new_size);
            shrink(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`.
        unsafe { System.dealloc(ptr, layout) };
        shrink(layout.size());
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

/// Most records (or pcapng packet blocks) a file of `len` bytes can hold, plus one for
/// the record an error may name: every record takes at least 12 bytes.
fn max_records(len: usize) -> usize {
    len / 12 + 1
}

/// The errors a damaged or foreign file may give; anything else is a defect.
fn check_read_error(e: &CaptureError, len: usize) {
    let text = e.to_string();
    assert!(!text.is_empty());
    match e {
        CaptureError::Format(m) => assert!(!m.is_empty(), "{e:?}"),
        CaptureError::LinkType(l) => assert_ne!(*l, LINKTYPE_NETLINK, "{e:?}"),
        CaptureError::Record { record, reason } => {
            assert!(*record >= 1 && *record <= max_records(len), "{e:?}");
            assert!(!reason.is_empty(), "{e:?}");
        }
        other => panic!("reading bytes gave an I/O-kind error: {other:?}"),
    }
}

/// Invariants of one decoded capture of `records` with `opts`.
fn check_decoded(d: &Decoded, records: &[Record], opts: &DecodeOptions) {
    assert_eq!(d.records, records.len());
    if opts.ipvs_family_id.is_some() {
        assert_eq!(d.ipvs_family_id, opts.ipvs_family_id);
    }
    // Every netlink message takes at least 16 bytes; a broken tail adds one INVALID message.
    let most: usize = records.iter().map(|r| r.data.len() / 16 + 1).sum();
    assert!(d.messages.len() <= most, "{} > {most}", d.messages.len());
    let mut last = 1;
    for m in &d.messages {
        assert!(
            m.frame >= last && m.frame <= records.len(),
            "frame {}",
            m.frame
        );
        last = m.frame;
        let r = &records[m.frame - 1];
        assert_eq!(
            (m.direction, m.protocol, m.timestamp),
            (r.direction, r.protocol, r.timestamp)
        );
        assert!(!m.name.is_empty());
        if let Body::Invalid(e) = &m.body {
            assert!(e.offset <= r.data.len(), "{e:?} in {} bytes", r.data.len());
            let _ = e.to_string();
        }
        if let Body::Error(k) = &m.body {
            assert!(k.errno > 0, "{k:?}");
        }
        let json = serde_json::to_value(m).expect("a decoded message serializes");
        assert_eq!(json["kind"], m.body.kind(), "{json}");
        assert_eq!(json["frame"], m.frame, "{json}");
        let _ = format!("{m:?}");
    }
    for e in d.entries() {
        let _ = format!("{e:?}");
    }
}

/// The generic netlink message type of the first message a generic netlink record holds
/// that is not nlctrl's: decoding with it as the IPVS family id reaches the IPVS decoders.
fn some_genl_type(records: &[Record]) -> Option<u16> {
    records
        .iter()
        .filter(|r| r.protocol == PROTO_GENERIC)
        .flat_map(|r| Frames::new(&r.data).map_while(Result::ok))
        .map(|f| f.header.message_type)
        .find(|t| *t > GENL_ID_CTRL)
}

/// Decodes `records` with every kind of IPVS family id and checks each result.
fn decode_all_ways(records: &[Record]) -> Vec<DecodeOptions> {
    let mut ways = vec![DecodeOptions::default()];
    // 32 is what the recorded nlmon capture's kernel assigned; the input may name another.
    ways.push(DecodeOptions {
        ipvs_family_id: Some(32),
    });
    if let Some(t) = some_genl_type(records).filter(|t| *t != 32) {
        ways.push(DecodeOptions {
            ipvs_family_id: Some(t),
        });
    }
    for opts in &ways {
        let d = decode_records(records, opts);
        check_decoded(&d, records, opts);
    }
    ways
}

/// What a record looks like after `write_pcap` and `read_pcap`: data cut to the snapshot
/// length, the original length at least what was kept.
fn written_back(r: &Record) -> Record {
    let keep = r.data.len().min(SNAPLEN as usize - COOKED_HEADER_LEN);
    let incl = (keep + COOKED_HEADER_LEN) as u32;
    let orig = u32::try_from(u64::from(r.orig_len) + COOKED_HEADER_LEN as u64)
        .unwrap_or(u32::MAX)
        .max(incl);
    Record {
        timestamp: r.timestamp,
        direction: r.direction,
        protocol: r.protocol,
        data: r.data[..keep].to_vec(),
        orig_len: orig - COOKED_HEADER_LEN as u32,
    }
}

fn check_round_trip(records: &[Record]) {
    // Classic pcap keeps 32-bit seconds: later times are refused by the writer.
    let representable = records
        .iter()
        .all(|r| r.timestamp < Duration::from_secs(u64::from(u32::MAX) + 1));
    match write_pcap(Vec::new(), records) {
        Ok(bytes) => {
            let again = read_pcap(&bytes).expect("a written capture reads back");
            let want: Vec<Record> = records.iter().map(written_back).collect();
            assert_eq!(again, want);
        }
        Err(e) => {
            assert!(
                !representable,
                "writing {} records failed: {e}",
                records.len()
            );
            assert!(matches!(e, CaptureError::Write(_)), "{e:?}");
        }
    }
}

fn handle(data: &[u8]) {
    match read_pcap(data) {
        Ok(records) => {
            let total: usize = records.iter().map(|r| r.data.len()).sum();
            assert!(
                total <= data.len(),
                "{total} record bytes from a {}-byte file",
                data.len()
            );
            assert!(records.len() <= max_records(data.len()));
            for r in &records {
                assert!(matches!(r.direction, Direction::Sent | Direction::Received));
                let _ = r.truncated();
            }
            for opts in decode_all_ways(&records) {
                let whole = decode_pcap(data, &opts).expect("read once, reads twice");
                assert_eq!(whole, decode_records(&records, &opts));
            }
            check_round_trip(&records);
        }
        Err(e) => {
            check_read_error(&e, data.len());
            let again = decode_pcap(data, &DecodeOptions::default());
            assert!(again.is_err(), "decode_pcap read what read_pcap refused");
            // Not a capture: replay the bytes as one netlink datagram of every kind.
            if matches!(e, CaptureError::Format(_)) {
                let records: Vec<Record> = [Direction::Received, Direction::Sent]
                    .into_iter()
                    .flat_map(|direction| {
                        [PROTO_NETFILTER, PROTO_GENERIC].map(|protocol| Record {
                            timestamp: Duration::from_secs(1),
                            direction,
                            protocol,
                            data: data.to_vec(),
                            orig_len: data.len() as u32,
                        })
                    })
                    .collect();
                decode_all_ways(&records);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    handle(data);
    let used = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    let bound = data.len().saturating_mul(BYTES_PER_INPUT_BYTE) + SLACK;
    assert!(
        used <= bound,
        "{used} heap bytes at the peak for a {}-byte input (bound {bound})",
        data.len()
    );
});
