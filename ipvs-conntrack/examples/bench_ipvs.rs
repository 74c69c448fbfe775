//! The Rust side of the IPVS listing benchmark (`tests/bench/ipvs/run.sh`, issue 7): lists
//! every service and the destinations of each, with their 64-bit statistics, through
//! [`Ipvs::snapshot`] (one service dump, then one destination dump per service — the
//! requests `ipvsadm -Ln --stats` makes). Prints one JSON object on stdout.
//!
//! ```text
//! bench_ipvs [--netns NS] [--repeat R] [--print]
//! ```
//!
//! `--repeat R` lists R times in the same process, on the socket opened once (`secs` is the
//! first listing, `median_secs` the median of all R; neither includes opening the socket,
//! which is `open_secs`).
//! `--print` also writes one text line per service and destination with its counters to
//! stdout (what `ipvsadm -Ln --stats --exact` prints, for a like-for-like comparison when
//! stdout goes to /dev/null); the JSON object is then written to stderr.
//! Output fields: `services`, `dests`, `with_stats64` (objects that carried 64-bit
//! statistics), `conns` (sum of the services' connection counters), `open_secs`, `secs`,
//! `median_secs`, `repeat`.

use std::io::{self, BufWriter, Write};
use std::time::Instant;

use ipvs_conntrack::ipvs::{Ipvs, Snapshot, Stats};
use ipvs_conntrack::Netns;

type AnyError = Box<dyn std::error::Error>;

fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_ipvs: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn usage() -> AnyError {
    "usage: bench_ipvs [--netns NS] [--repeat R] [--print]".into()
}

/// One counters line in the layout of `ipvsadm -Ln --stats --exact`.
fn stats_line(out: &mut impl Write, head: &str, s: Option<&Stats>) -> io::Result<()> {
    let v = s.map_or([0; 5], |s| {
        [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes]
    });
    writeln!(
        out,
        "{head:<33} {:>8} {:>8} {:>8} {:>8} {:>8}",
        v[0], v[1], v[2], v[3], v[4]
    )
}

fn print_snapshot(snap: &Snapshot) -> io::Result<()> {
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    for (svc, dests) in snap {
        stats_line(&mut out, &svc.key.to_string(), svc.stats64.as_ref())?;
        for d in dests {
            let ep = match d.addr {
                std::net::IpAddr::V4(a) => format!("  -> {a}:{}", d.port),
                std::net::IpAddr::V6(a) => format!("  -> [{a}]:{}", d.port),
            };
            stats_line(&mut out, &ep, d.stats64.as_ref())?;
        }
    }
    out.flush()
}

fn real_main() -> Result<(), AnyError> {
    let mut netns = Netns::Current;
    let mut repeat = 1usize;
    let mut print = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--netns" => netns = Netns::parse(&args.next().ok_or_else(usage)?),
            "--repeat" => repeat = args.next().ok_or_else(usage)?.parse::<usize>()?.max(1),
            "--print" => print = true,
            _ => return Err(usage()),
        }
    }
    let t_open = Instant::now();
    let mut ipvs = Ipvs::open(&netns)?;
    let open_secs = t_open.elapsed().as_secs_f64();
    let mut times = Vec::with_capacity(repeat);
    let mut last: Snapshot = Vec::new();
    for _ in 0..repeat {
        let t = Instant::now();
        let snap = ipvs.snapshot()?;
        if print {
            print_snapshot(&snap)?;
        }
        times.push(t.elapsed().as_secs_f64());
        last = snap;
    }
    let services = last.len();
    let dests: usize = last.iter().map(|(_, d)| d.len()).sum();
    let with64 = last
        .iter()
        .map(|(s, d)| {
            usize::from(s.stats64.is_some()) + d.iter().filter(|d| d.stats64.is_some()).count()
        })
        .sum::<usize>();
    let conns: u64 = last
        .iter()
        .filter_map(|(s, _)| s.stats64.as_ref().map(|st| st.conns))
        .sum();
    let first = times[0];
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let json = format!(
        "{{\"services\":{services},\"dests\":{dests},\"with_stats64\":{with64},\"conns\":{conns},\
         \"open_secs\":{open_secs:.6},\"secs\":{first:.6},\"median_secs\":{median:.6},\"repeat\":{repeat}}}"
    );
    if print {
        eprintln!("{json}");
    } else {
        println!("{json}");
    }
    Ok(())
}
