//! The dump reader thread (`Conntrack::set_dump_reader`): a long dump received on another
//! thread gives the same entries in the same order as one received by the caller; a dump
//! dropped or suspended part-way leaves the socket usable; a short dump starts no thread.
//! Tables are filled through the batched write path in a namespace of their own. Needs
//! root; prints SKIPPED otherwise (fails under CI=true).

use ipvs_conntrack::conntrack::{Conntrack, DumpFilter};

#[path = "../benches/support/mod.rs"]
mod support;

const ENTRIES: u32 = 20_000;

fn skip(test: &str, reason: &str) {
    if support::in_ci() {
        panic!("{test}: cannot run under CI=true: {reason}");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {reason}");
}

/// A namespace holding `n` entries, and a client in it (`None`: skipped).
fn table(
    test: &str,
    tag: &str,
    n: u32,
) -> Option<(support::BenchNs, support::ConntrackMaxGuard, Conntrack)> {
    if !support::is_root() {
        skip(test, "needs root to create a network namespace");
        return None;
    }
    let max = match support::ConntrackMaxGuard::at_least(u64::from(n) + 10_000) {
        Ok(g) => g,
        Err(e) => {
            skip(test, &format!("cannot raise nf_conntrack_max: {e}"));
            return None;
        }
    };
    let ns = match support::BenchNs::create(tag) {
        Ok(ns) => ns,
        Err(e) => {
            skip(test, &format!("cannot create a network namespace: {e}"));
            return None;
        }
    };
    let filled = support::fill(&ns.netns(), 0, n).expect("fill");
    assert_eq!(filled.created, u64::from(n));
    let ct = Conntrack::open(&ns.netns()).expect("open");
    Some((ns, max, ct))
}

/// The entry ids of a whole dump, in order, and whether a reader thread ran during it.
fn dump_ids(ct: &mut Conntrack, reader: bool) -> (Vec<u32>, bool) {
    ct.set_dump_reader(reader);
    let mut dump = ct.dump(&DumpFilter::all()).expect("dump");
    let mut ids = Vec::new();
    let mut threaded = false;
    // Bounded by the table.
    while let Some(e) = dump.next() {
        ids.push(e.expect("entry").id.expect("id"));
        threaded |= dump.threaded();
    }
    assert!(!dump.interrupted(), "the table did not change");
    assert!(!dump.threaded(), "the reader stops with the dump");
    (ids, threaded)
}

#[test]
fn a_threaded_dump_gives_the_same_entries_in_the_same_order() {
    const T: &str = "a_threaded_dump_gives_the_same_entries_in_the_same_order";
    const TAG: &str = "reader-order";
    let Some((_ns, _max, mut ct)) = table(T, TAG, ENTRIES) else {
        return;
    };
    let (plain, plain_threaded) = dump_ids(&mut ct, false);
    let (threaded, ran) = dump_ids(&mut ct, true);
    assert!(!plain_threaded, "reader off: no thread");
    assert!(
        ran,
        "reader on: a {ENTRIES}-entry dump runs a reader thread"
    );
    assert_eq!(plain.len(), ENTRIES as usize);
    assert_eq!(threaded, plain, "same entries, same order");
    // The thread's report: every datagram after the first two (32 KiB: 100-200 entries
    // each), and no more waiting than the dump took.
    let r = ct
        .dump_reader_report()
        .expect("a report after a threaded dump");
    let per = ENTRIES as u64 / r.datagrams.max(1);
    assert!(
        (100..=200).contains(&per),
        "{} datagrams for {ENTRIES} entries",
        r.datagrams
    );
    assert!((1..=ipvs_conntrack::socket::DUMP_READER_DEPTH as u32).contains(&r.queued_at_end));
    assert!(r.held_up() < std::time::Duration::from_secs(1), "{r:?}");
    // The socket answers the next request as before.
    assert_eq!(ct.count().expect("count").entries, ENTRIES);
}

#[test]
fn a_dump_dropped_or_suspended_part_way_leaves_the_socket_usable() {
    const T: &str = "a_dump_dropped_or_suspended_part_way_leaves_the_socket_usable";
    const TAG: &str = "reader-drop";
    let Some((_ns, _max, mut ct)) = table(T, TAG, ENTRIES) else {
        return;
    };
    ct.set_dump_reader(true);
    // Dropped after 1,000 entries, the reader running: the next request still gets its
    // answer (the rest of the dump comes first, through the reader, and is dropped as
    // strays; the kernel may answer before the old dump ends).
    {
        let mut dump = ct.dump(&DumpFilter::all()).expect("dump");
        for _ in 0..1_000 {
            dump.next().expect("an entry").expect("entry");
        }
        assert!(dump.threaded());
    }
    assert_eq!(ct.count().expect("count").entries, ENTRIES);
    // A new dump: the old one is read to its end first (else the kernel says EBUSY).
    let (ids, _) = dump_ids(&mut ct, true);
    assert_eq!(ids.len(), ENTRIES as usize);
    assert!(ct.socket().dropped_stray() > 0);
    // Stopped after 1,000 entries: the rest is read to its end, the reader with it.
    let mut dump = ct.dump(&DumpFilter::all()).expect("dump");
    for _ in 0..1_000 {
        dump.next().expect("an entry").expect("entry");
    }
    assert!(dump.threaded());
    dump.stop().expect("stop");
    assert!(!dump.threaded(), "the reader stops at the dump's end");
    drop(dump);
    assert_eq!(ct.count().expect("count").entries, ENTRIES);
    let (again, _) = dump_ids(&mut ct, true);
    assert_eq!(again, ids);

    // Suspended after 5,000 entries and resumed: the rest, each entry once.
    let mut seen = Vec::new();
    let mut dump = ct.dump(&DumpFilter::all()).expect("dump");
    for _ in 0..5_000 {
        seen.push(
            dump.next()
                .expect("an entry")
                .expect("entry")
                .id
                .expect("id"),
        );
    }
    let state = dump.suspend();
    let mut dump = ct.resume(state);
    // Bounded by the table.
    for e in dump.by_ref() {
        seen.push(e.expect("entry").id.expect("id"));
    }
    drop(dump);
    assert_eq!(
        seen, ids,
        "suspended and resumed: the same entries in the same order"
    );
}

#[test]
fn a_short_dump_starts_no_thread() {
    const T: &str = "a_short_dump_starts_no_thread";
    // Fewer entries than one datagram holds.
    let Some((_ns, _max, mut ct)) = table(T, "reader-short", 50) else {
        return;
    };
    let (ids, ran) = dump_ids(&mut ct, true);
    assert_eq!(ids.len(), 50);
    assert!(!ran);
}
