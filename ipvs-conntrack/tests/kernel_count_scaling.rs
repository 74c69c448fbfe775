//! `count()` and `cpu_stats()` never dump the table (issue 7): their time does not grow
//! with the table. A namespace is measured at 1,000 entries and again at 100,000
//! (filled through the batched write path), against one full view dump of the larger
//! table. Needs root; prints SKIPPED otherwise (fails under CI=true).

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use ipvs_conntrack::conntrack::{Conntrack, DumpFilter};

#[path = "../benches/support/mod.rs"]
mod support;

const T: &str = "count_and_cpu_stats_time_does_not_grow_with_the_table";
const SMALL: u32 = 1_000;
const LARGE: u32 = 100_000;
const CALLS: usize = 101;

fn skip(reason: &str) {
    if support::in_ci() {
        panic!("{T}: cannot run under CI=true: {reason}");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {T}: {reason}");
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

/// Median time of `count()` and of `cpu_stats()`, checking the count each time.
fn time_stats(ct: &mut Conntrack, expected: u32) -> (Duration, Duration) {
    let mut count_t = Vec::with_capacity(CALLS);
    let mut cpu_t = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let t = Instant::now();
        let stats = ct.count().expect("count");
        count_t.push(t.elapsed());
        assert_eq!(stats.entries, expected);
        let t = Instant::now();
        let cpus = ct.cpu_stats().expect("cpu_stats");
        cpu_t.push(t.elapsed());
        assert!(!cpus.is_empty());
    }
    (median(count_t), median(cpu_t))
}

#[test]
fn count_and_cpu_stats_time_does_not_grow_with_the_table() {
    if !support::is_root() {
        return skip("needs root to create a network namespace");
    }
    let _max = match support::ConntrackMaxGuard::at_least(u64::from(LARGE) + 10_000) {
        Ok(g) => g,
        Err(e) => return skip(&format!("cannot raise nf_conntrack_max: {e}")),
    };
    let ns = match support::BenchNs::create("count") {
        Ok(ns) => ns,
        Err(e) => return skip(&format!("cannot create a network namespace: {e}")),
    };
    let netns = ns.netns();
    let mut ct = Conntrack::open(&netns).expect("open");

    support::fill(&netns, 0, SMALL).expect("fill small");
    let (count_small, cpu_small) = time_stats(&mut ct, SMALL);

    let filled = support::fill(&netns, SMALL, LARGE).expect("fill large");
    assert_eq!(filled.created, u64::from(LARGE - SMALL));
    let (count_large, cpu_large) = time_stats(&mut ct, LARGE);

    let t = Instant::now();
    let dumped = ct
        .for_each_view(&DumpFilter::all(), |_| ControlFlow::Continue(()))
        .expect("dump");
    let dump = t.elapsed();
    assert_eq!(dumped, u64::from(LARGE));

    eprintln!(
        "{T}: count() median {count_small:?} at {SMALL} entries, {count_large:?} at {LARGE}; \
         cpu_stats() {cpu_small:?} / {cpu_large:?}; one view dump of {LARGE}: {dump:?}"
    );
    // A request that dumped would take about as long as the dump; these take microseconds.
    for (name, d) in [("count()", count_large), ("cpu_stats()", cpu_large)] {
        assert!(
            d * 20 < dump,
            "{name} at {LARGE} entries took {d:?}, a dump {dump:?}"
        );
        assert!(d < Duration::from_millis(5), "{name} took {d:?}");
    }
    // 100 times the entries: at most a small constant more (scheduling noise), not 100×.
    let slack = Duration::from_millis(1);
    assert!(
        count_large <= count_small * 10 + slack,
        "{count_small:?} -> {count_large:?}"
    );
    assert!(
        cpu_large <= cpu_small * 10 + slack,
        "{cpu_small:?} -> {cpu_large:?}"
    );
}
