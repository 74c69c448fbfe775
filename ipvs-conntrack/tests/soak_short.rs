//! A 20-second soak inside `cargo test` (issue 8, "long-running soak"): the engine of
//! `examples/soak.rs` against a throw-away namespace with loopback TCP/UDP traffic, batch
//! churn and shortened timeouts — an event stream open the whole time, owned and view
//! dumps, counts and per-CPU statistics. Asserts flat memory (VmRSS growth under 1 MB
//! after an 8-second warm-up) and that every dump and call succeeded. `tests/soak.sh`
//! runs the same for minutes. Needs root (skipped otherwise, failing under CI=true).
//!
//! The soak runs in a child process (this test binary again, with [`CHILD_ENV`] set):
//! its VmRSS is then the soak's alone, and glibc's mmap threshold is pinned there
//! (`GLIBC_TUNABLES`). glibc otherwise raises the threshold to the largest block freed
//! so far, so the first few large blocks (a table view of ~1 000 entries is ~1.7 MB)
//! move from mmap to the heap one after the other and VmRSS climbs in steps during the
//! first seconds whatever the program does; with the threshold fixed, blocks that are
//! freed leave VmRSS and what stays is what is still allocated.

mod support;

#[allow(dead_code)]
#[path = "../examples/soak.rs"]
mod soak;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use soak::{prepare, run, SoakConfig, SOAK_SYSCTLS};

/// Set in the child process that runs the soak.
const CHILD_ENV: &str = "IPVSCT_SOAK_CHILD";
/// glibc tunables of the child: large blocks always from mmap, returned when freed.
const TUNABLES: &str = "glibc.malloc.mmap_threshold=131072";
/// How long the child may run (the soak takes 20 s).
const CHILD_LIMIT: Duration = Duration::from_secs(120);

const T: &str = "soak_twenty_seconds_flat_memory_every_call_succeeds";

#[test]
fn soak_twenty_seconds_flat_memory_every_call_succeeds() {
    if std::env::var_os(CHILD_ENV).is_some() {
        soak_in_this_process();
        return;
    }
    if !support::preflight(T, &["ip", "nft"]) {
        return;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args([T, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env("GLIBC_TUNABLES", TUNABLES)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the soak child");
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let deadline = Instant::now() + CHILD_LIMIT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the soak child") {
            break Some(s);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    eprintln!("{err}");
    // A skip inside the child (no namespace) must stay loud: past the output capture.
    for line in err.lines().filter(|l| l.starts_with("SKIPPED")) {
        let _ = writeln!(std::io::stderr(), "{line}");
    }
    assert!(
        status.is_some_and(|s| s.success()),
        "soak child failed ({status:?}, limit {CHILD_LIMIT:?})\nstdout:\n{out}\nstderr:\n{err}"
    );
    // The child's own harness ran exactly this test and it passed.
    assert!(out.contains("1 passed"), "{out}");
}

/// Reads a child's output to the end on a thread.
fn drain<R: Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut r) = r {
            let _ = r.read_to_string(&mut s);
        }
        s
    })
}

/// The soak itself, in the child process.
fn soak_in_this_process() {
    let Some(ns) = support::setup(T, &[]) else {
        return;
    };
    let netns = ns.netns();
    prepare(&netns).expect("shortened timeouts and accounting");
    for (name, value) in SOAK_SYSCTLS {
        assert_eq!(ns.sysctl(&format!("net.netfilter.{name}")), *value);
    }
    let mut cfg = SoakConfig::new(netns);
    cfg.duration = Duration::from_secs(20);
    cfg.warmup = Duration::from_secs(8);
    cfg.sample_every = Duration::from_secs(1);
    cfg.rate = 50;
    cfg.event_rcvbuf = 8 << 20;
    cfg.resync_every = Duration::from_secs(2);
    let report = run(&cfg, |_| {});
    let text = report.render();
    eprintln!("{T}:\n{text}");

    assert!(report.failures.is_empty(), "{text}");
    let growth = report.rss_growth_kb().expect("samples after the warm-up");
    assert!(
        growth < 1024,
        "VmRSS grew by {growth} kB after the warm-up\n{text}"
    );
    // About one sample a second, at least 10 of them after the warm-up.
    let after = report.samples.len() - report.baseline.expect("baseline");
    assert!(
        (10..=13).contains(&after),
        "{after} samples after the warm-up\n{text}"
    );
    // Every dump succeeded (an NLM_F_DUMP_INTR report is counted apart; none is an error).
    assert!(
        report.dumps_owned >= 10 && report.dumps_view >= 10,
        "{text}"
    );
    let rounds = report.dumps_owned + report.dumps_view + report.dumps_interrupted;
    assert_eq!(report.stats_calls, 2 * rounds, "{text}");
    assert!(report.dumped_entries > 0, "{text}");
    // The traffic ran and conntrack saw it: flows made, entries created, updated, destroyed.
    assert!(report.tcp_flows >= 200 && report.udp_flows >= 200, "{text}");
    assert_eq!(report.traffic_errors, 0, "{text}");
    let [new, update, destroy] = report.kinds;
    // Resynchronisations read the queued events away (the dump supersedes them).
    assert!(report.received >= report.events, "{text}");
    if report.overruns == 0 {
        // Nothing lost: the socket got a NEW event for every flow and inserted entry,
        // and most of them have been destroyed again (deleted or expired) since.
        let made = report.tcp_flows + report.udp_flows + report.inserted;
        assert!(report.received >= made + made / 2, "{text}");
        assert!(new + (report.received - report.events) >= made, "{text}");
    }
    assert!(update > 0 && destroy > 0, "{text}");
    assert!(report.inserted > 1000 && report.deleted > 0, "{text}");
    assert_eq!(
        report.events,
        new + update + destroy,
        "only conntrack events were subscribed\n{text}"
    );
    // Entries expire: the table stays small instead of growing with the flows made.
    let last = report.samples.last().expect("samples");
    assert!(
        u64::from(last.entries) < (report.tcp_flows + report.udp_flows + report.inserted) / 4,
        "{text}"
    );
    assert!(report.resyncs >= 8, "{text}");
}
