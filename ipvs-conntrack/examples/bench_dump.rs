//! The Rust side of the live benchmark (`tests/bench/run.sh`): fills a namespace's table
//! through the batched write path, dumps it (owned entries or zero-copy views), or times
//! the statistics requests. Prints one JSON object on stdout.
//!
//! ```text
//! bench_dump [--netns NS] fill N      create entries until the table holds N (the fixed mix
//!                                     of benches/support: 70 % TCP/IPv4, 20 % UDP, 10 % TCP/IPv6)
//! bench_dump [--netns NS] owned       stream the table into owned `Entry` values (timeouts joined)
//! bench_dump [--netns NS] view        stream the table as `EntryView`s (`for_each_view`)
//! bench_dump [--netns NS] list        collect the table into a `Vec<Entry>`
//! bench_dump [--netns NS] stats [R]   median time of R (default 50) `count()` and `cpu_stats()` calls
//! ```
//!
//! Output fields: `mode`, `entries`, `secs` and `cpu_secs` (wall and CPU time of the
//! operation alone, excluding process start and socket setup; the kernel's work of a
//! dump runs in the reader's `recvmsg` and counts), `peak_rss_kib` (VmHWM at the end),
//! plus per-mode extras; a dump that ran on the reader thread adds its report
//! (`Conntrack::dump_reader_report`): `reader_datagrams`, `reader_waited_secs`,
//! `caller_waited_secs`, `caller_behind_at_end_secs`, `queued_at_end`.
//! The exit status is non-zero on any error, including a dump that ends interrupted.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use ipvs_conntrack::conntrack::{Conntrack, DumpFilter};
use ipvs_conntrack::Netns;

#[path = "../benches/support/mod.rs"]
mod support;

use support::AnyError;

fn usage() -> AnyError {
    "usage: bench_dump [--netns NS] fill N | owned | view | list | stats [REPEATS]".into()
}

fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(json) => {
            println!("{json}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench_dump: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<String, AnyError> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut netns = Netns::Current;
    if args.first().map(String::as_str) == Some("--netns") {
        let ns = args.get(1).ok_or_else(usage)?;
        netns = Netns::parse(ns);
        args.drain(..2);
    }
    let mode = args.first().ok_or_else(usage)?.clone();
    let arg = args.get(1);
    let rss = || support::peak_rss_kib().unwrap_or(0);
    match mode.as_str() {
        "fill" => {
            let want: u32 = arg.ok_or_else(usage)?.parse()?;
            let have = u32::try_from(support::table_count(&netns)?)?;
            let r = support::fill(&netns, have, want.max(have))?;
            let now = support::table_count(&netns)?;
            if now != u64::from(want.max(have)) {
                return Err(format!("the table holds {now} entries, expected {want}").into());
            }
            let secs = r.elapsed.as_secs_f64();
            Ok(format!(
                "{{\"mode\":\"fill\",\"entries\":{now},\"created\":{},\"secs\":{secs:.6},\"rate\":{:.0}}}",
                r.created,
                if secs > 0.0 { r.created as f64 / secs } else { 0.0 }
            ))
        }
        "owned" => {
            let mut ct = Conntrack::open(&netns)?;
            let (t, cpu) = (Instant::now(), support::process_cpu());
            let mut n = 0u64;
            let mut joined = 0u64;
            for e in ct.dump(&DumpFilter::all())? {
                let e = e?;
                n += 1;
                joined += u64::from(e.state_timeout.is_some());
            }
            let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_since(cpu));
            Ok(format!(
                "{{\"mode\":\"owned\",\"entries\":{n},\"with_state_timeout\":{joined},\"secs\":{secs:.6},\"cpu_secs\":{cpu:.6},\"peak_rss_kib\":{}{}}}",
                rss(),
                reader_fields(&ct)
            ))
        }
        "view" => {
            let mut ct = Conntrack::open(&netns)?;
            let (t, cpu) = (Instant::now(), support::process_cpu());
            let mut touched = 0u64;
            let n = ct.for_each_view(&DumpFilter::all(), |v| {
                let port = v.orig().ok().flatten().and_then(|t| t.src_port());
                touched += u64::from(port.is_some() && v.timeout().is_some());
                ControlFlow::Continue(())
            })?;
            let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_since(cpu));
            Ok(format!(
                "{{\"mode\":\"view\",\"entries\":{n},\"touched\":{touched},\"secs\":{secs:.6},\"cpu_secs\":{cpu:.6},\"peak_rss_kib\":{}{}}}",
                rss(),
                reader_fields(&ct)
            ))
        }
        "list" => {
            let mut ct = Conntrack::open(&netns)?;
            let (t, cpu) = (Instant::now(), support::process_cpu());
            let v = ct.list(&DumpFilter::all())?;
            let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_since(cpu));
            Ok(format!(
                "{{\"mode\":\"list\",\"entries\":{},\"secs\":{secs:.6},\"cpu_secs\":{cpu:.6},\"peak_rss_kib\":{}}}",
                v.len(),
                rss()
            ))
        }
        "stats" => {
            let reps: usize = arg.map(|s| s.parse()).transpose()?.unwrap_or(50).max(1);
            let mut ct = Conntrack::open(&netns)?;
            let mut count_t = Vec::with_capacity(reps);
            let mut cpu_t = Vec::with_capacity(reps);
            let mut entries = 0;
            let mut cpus = 0;
            for _ in 0..reps {
                let t = Instant::now();
                entries = ct.count()?.entries;
                count_t.push(t.elapsed());
                let t = Instant::now();
                cpus = ct.cpu_stats()?.len();
                cpu_t.push(t.elapsed());
            }
            Ok(format!(
                "{{\"mode\":\"stats\",\"entries\":{entries},\"cpus\":{cpus},\"repeats\":{reps},\
                 \"count_median_secs\":{:.9},\"cpu_stats_median_secs\":{:.9}}}",
                median(&mut count_t).as_secs_f64(),
                median(&mut cpu_t).as_secs_f64()
            ))
        }
        _ => Err(usage()),
    }
}

/// CPU seconds used since `start` (a [`support::process_cpu`] reading).
fn cpu_since(start: Duration) -> f64 {
    support::process_cpu().saturating_sub(start).as_secs_f64()
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// The JSON fields of the last dump's reader report (empty if no reader thread ran).
fn reader_fields(ct: &Conntrack) -> String {
    ct.dump_reader_report().map_or_else(String::new, |r| {
        format!(
            ",\"reader_datagrams\":{},\"reader_waited_secs\":{:.6},\"caller_waited_secs\":{:.6},\"caller_behind_at_end_secs\":{:.6},\"queued_at_end\":{}",
            r.datagrams,
            r.reader_waited.as_secs_f64(),
            r.caller_waited.as_secs_f64(),
            r.caller_behind_at_end.as_secs_f64(),
            r.queued_at_end
        )
    })
}
