//! No heap allocation per entry in the zero-copy view path (issue 7).
//!
//! A counting global allocator counts the allocations of the calling thread while
//! recorded kernel dumps are decoded through `EntryView` with every accessor that
//! documents itself as non-allocating. The recorded fixtures (real kernel bytes, all
//! attribute kinds: counters, timestamps, labels, helpers, NAT, zones, IPv6, SCTP, GRE,
//! ICMP) need no privileges; as root, a namespace filled with 5,000 entries is also
//! recorded and decoded, and a live `for_each_view` dump of it is counted as a whole.

// The counting allocator below is the only unsafe code, and it only forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ops::ControlFlow;
use std::path::Path;

use ipvs_conntrack::conntrack::{Conntrack, DumpFilter, Entry, EntryView, State, TcpState};
use ipvs_conntrack::netlink::Frames;

#[path = "../benches/support/mod.rs"]
mod support;

/// Forwards to the system allocator and counts allocations made by the current thread.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn bump() {
    // `try_with`: the slot may be gone while the thread exits; those allocations are not ours.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the counter is a const-initialised thread-local `Cell` without a
// destructor, so touching it neither allocates nor re-enters the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: forwarded from our caller, who upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        // SAFETY: `ptr` came from this allocator, i.e. from `System`; the rest is forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns its result with the number of allocations it made on this thread.
fn counting<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    let after = ALLOCATIONS.with(Cell::get);
    (out, after - before)
}

/// What decoding a buffer through views saw.
#[derive(Debug, Default, PartialEq, Eq)]
struct Seen {
    entries: u64,
    errors: u64,
    tcp_established: u64,
    with_counters: u64,
    with_labels: u64,
    with_helper: u64,
    port_sum: u64,
}

/// Decodes every entry message of `buf` as a view, calling every non-allocating accessor.
fn decode_views(buf: &[u8], seen: &mut Seen) {
    for f in Frames::new(buf).flatten() {
        if f.header.message_type < support::NLMSG_MIN_TYPE {
            continue;
        }
        match EntryView::from_frame(&f) {
            Ok(v) => {
                seen.entries += 1;
                touch(&v, seen);
            }
            Err(_) => seen.errors += 1,
        }
    }
}

fn touch(v: &EntryView<'_>, seen: &mut Seen) {
    let orig = v.orig().ok().flatten();
    let reply = v.reply().ok().flatten();
    for t in [&orig, &reply].into_iter().flatten() {
        seen.port_sum +=
            u64::from(t.src_port().unwrap_or(0)) + u64::from(t.dst_port().unwrap_or(0));
        std::hint::black_box((t.src(), t.dst(), t.proto(), t.zone(), t.icmp_id()));
    }
    if v.state().ok() == Some(State::Tcp(TcpState::Established)) {
        seen.tcp_established += 1;
    }
    if v.counters_orig().ok().flatten().is_some() {
        seen.with_counters += 1;
    }
    if v.label_bits().next().is_some() {
        seen.with_labels += 1;
    }
    if v.helper().ok().flatten().is_some() {
        seen.with_helper += 1;
    }
    let _ = std::hint::black_box((
        v.family(),
        v.message(),
        v.timeout(),
        v.status(),
        v.mark(),
        v.use_count(),
        v.id(),
        v.zone(),
        v.secmark(),
        v.protoinfo(),
        v.counters_reply(),
        v.timestamp(),
        v.seq_adj_orig(),
        v.seq_adj_reply(),
        v.synproxy(),
        v.nat_src(),
        v.nat_dst(),
        v.secctx(),
        v.master(),
        v.labels(),
    ));
}

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn counting_allocator_counts() {
    // The instrument itself: an allocation inside the measured closure is seen.
    let (v, n) = counting(|| vec![1u8; 100]);
    assert_eq!(v.len(), 100);
    assert_eq!(n, 1);
    let (_, n) = counting(|| {
        let mut s = String::new();
        for i in 0..100 {
            s.push_str(&i.to_string());
        }
        std::hint::black_box(s)
    });
    assert!(n >= 100, "{n} allocations counted for 100 to_string calls");
}

#[test]
fn views_of_recorded_dumps_allocate_nothing() {
    let files = [
        ("dump_all.bin", 16),
        ("dump_ipv6.bin", 5),
        ("dump_mark.bin", 2),
        ("dump_zone.bin", 2),
        ("get_tcp.bin", 1),
    ];
    let bufs: Vec<(&str, u64, Vec<u8>)> = files.iter().map(|(f, n)| (*f, *n, fixture(f))).collect();
    let mut total = Seen::default();
    for (name, expected, buf) in &bufs {
        let mut seen = Seen::default();
        let ((), allocs) = counting(|| decode_views(buf, &mut seen));
        assert_eq!(seen.errors, 0, "{name}: decode errors");
        assert_eq!(seen.entries, *expected, "{name}: entries");
        assert_eq!(allocs, 0, "{name}: {allocs} heap allocations for {seen:?}");
        total.entries += seen.entries;
        total.tcp_established += seen.tcp_established;
        total.with_counters += seen.with_counters;
        total.with_labels += seen.with_labels;
        total.with_helper += seen.with_helper;
    }
    // The fixtures exercise the attribute kinds that could tempt a decoder to allocate.
    let all = &bufs[0].2;
    let mut seen = Seen::default();
    decode_views(all, &mut seen);
    assert!(seen.tcp_established >= 2, "{seen:?}");
    assert!(seen.with_counters >= 9, "{seen:?}");
    assert!(seen.with_labels >= 2, "{seen:?}");
    assert_eq!(total.entries, 26);

    // The same bytes decoded into owned entries do allocate (label vectors at least):
    // the counter sees decoder allocations, so the zeros above mean something.
    let (owned, allocs) = counting(|| {
        Frames::new(all)
            .flatten()
            .filter_map(|f| Entry::from_frame(&f).ok())
            .count()
    });
    assert_eq!(owned, 16);
    assert!(allocs >= 2, "{allocs} allocations for 16 owned entries");
}

#[test]
fn live_recorded_dump_and_view_dump_allocate_nothing_per_entry() {
    const T: &str = "live_recorded_dump_and_view_dump_allocate_nothing_per_entry";
    const N: u32 = 5_000;
    let skip = |reason: &str| {
        if support::in_ci() {
            panic!("{T}: cannot run under CI=true: {reason}");
        }
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPED: {T}: {reason}");
    };
    if !support::is_root() {
        return skip("needs root to create a network namespace");
    }
    let ns = match support::BenchNs::create("alloc") {
        Ok(ns) => ns,
        Err(e) => return skip(&format!("cannot create a network namespace: {e}")),
    };
    let netns = ns.netns();
    let filled = support::fill(&netns, 0, N).expect("fill");
    assert_eq!(filled.created, u64::from(N));

    // Offline: every datagram of a real dump of the filled table.
    let rec = support::record_dump(&netns).expect("record");
    assert_eq!(rec.entries, u64::from(N));
    assert!(
        rec.datagrams.len() > 10,
        "{} datagrams",
        rec.datagrams.len()
    );
    let mut seen = Seen::default();
    let ((), allocs) = counting(|| {
        for d in &rec.datagrams {
            decode_views(d, &mut seen);
        }
    });
    assert_eq!(seen.entries, u64::from(N));
    assert_eq!(seen.errors, 0);
    // 70 % + 10 % of the fill mix is TCP ESTABLISHED.
    assert_eq!(seen.tcp_established, u64::from(N) * 8 / 10);
    assert_eq!(
        allocs, 0,
        "{allocs} allocations decoding {N} recorded entries"
    );

    // Live: the whole streaming view dump, receive path included. A few allocations per
    // request are allowed (request encoding); none may scale with the entries.
    let mut ct = Conntrack::open(&netns).expect("open");
    ct.set_join_timeouts(false);
    let mut live = Seen::default();
    let (n, allocs) = counting(|| {
        ct.for_each_view(&DumpFilter::all(), |v| {
            live.entries += 1;
            touch(v, &mut live);
            ControlFlow::Continue(())
        })
        .expect("dump")
    });
    assert_eq!(n, u64::from(N));
    assert_eq!(live.tcp_established, seen.tcp_established);
    assert_eq!(live.port_sum, seen.port_sum);
    eprintln!("{T}: {allocs} allocations for a live view dump of {n} entries");
    assert!(
        allocs < 32,
        "{allocs} allocations for a live view dump of {n} entries"
    );
}
