//! Prints what the Rust API sees in a namespace, in the line format `tests/c/test_kernel.c`
//! compares the C API's results with; optionally records the dump's raw datagrams.
//!
//! Usage: `ct_snapshot [--netns NAME|PATH] [--capture FILE]`

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use ipvs_conntrack::conntrack::{Conntrack, CpuStats, DumpFilter, Entry, StateTimeouts, Tuple};
use ipvs_conntrack::socket::Direction;
use ipvs_conntrack::Netns;

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |x| x.to_string())
}

fn tuple(t: &Tuple) -> String {
    let icmp = match (t.icmp_type, t.icmp_code, t.icmp_id) {
        (None, None, None) => "-".to_owned(),
        (a, b, c) => format!("{}/{}/{}", opt(a), opt(b), opt(c)),
    };
    format!(
        "{},{},{},{},{},{},{}",
        t.proto,
        t.src,
        opt(t.src_port),
        t.dst,
        opt(t.dst_port),
        icmp,
        opt(t.zone)
    )
}

fn entry_line(e: &Entry) -> String {
    let counters = match (e.counters_orig, e.counters_reply) {
        (Some(o), Some(r)) => format!("{}/{}/{}/{}", o.packets, o.bytes, r.packets, r.bytes),
        _ => "-".to_owned(),
    };
    let labels = e.labels.as_ref().map_or_else(
        || "-".to_owned(),
        |l| {
            let mut bits = l.0.clone();
            bits.sort_unstable();
            bits.iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(",")
        },
    );
    format!(
        "entry family={} orig={} reply={} state={} state_timeout={} status={:#x} mark={} zone={} \
         id={} counters={} start={} labels={} helper={} | timeout={} use={}",
        e.family.value(),
        tuple(&e.orig),
        tuple(&e.reply),
        e.state.name().unwrap_or("-"),
        opt(e.state_timeout),
        e.status.bits(),
        opt(e.mark),
        opt(e.zone),
        opt(e.id),
        counters,
        opt(e.timestamp.and_then(|t| t.start)),
        labels,
        e.helper.as_ref().map_or("-", |h| h.name.as_str()),
        opt(e.timeout),
        opt(e.use_count),
    )
}

fn cpu_line(s: &CpuStats) -> String {
    let mut l = format!("cpu cpu={}", s.cpu);
    for (name, v) in [
        ("searched", s.searched),
        ("found", s.found),
        ("new", s.new),
        ("invalid", s.invalid),
        ("ignore", s.ignore),
        ("delete", s.delete),
        ("delete_list", s.delete_list),
        ("insert", s.insert),
        ("insert_failed", s.insert_failed),
        ("drop", s.drop),
        ("early_drop", s.early_drop),
        ("error", s.error),
        ("search_restart", s.search_restart),
        ("clash_resolve", s.clash_resolve),
        ("chaintoolong", s.chaintoolong),
    ] {
        let _ = write!(l, " {name}={}", opt(v));
    }
    l
}

fn list(v: &[Option<u32>]) -> String {
    v.iter().map(|x| opt(*x)).collect::<Vec<_>>().join(",")
}

fn timeouts_line(t: &StateTimeouts) -> String {
    let (tc, s, d) = (&t.tcp, &t.sctp, &t.dccp);
    format!(
        "timeouts source={} tcp={} udp={} udplite={} sctp={} dccp={} icmp={} icmpv6={} gre={} \
         generic={}",
        match t.source {
            ipvs_conntrack::conntrack::TimeoutSource::Cttimeout => "cttimeout",
            ipvs_conntrack::conntrack::TimeoutSource::Sysctl => "sysctl",
        },
        list(&[
            tc.syn_sent,
            tc.syn_recv,
            tc.established,
            tc.fin_wait,
            tc.close_wait,
            tc.last_ack,
            tc.time_wait,
            tc.close,
            tc.syn_sent2,
            tc.retrans,
            tc.unack
        ]),
        list(&[t.udp.unreplied, t.udp.replied]),
        list(&[t.udplite.unreplied, t.udplite.replied]),
        list(&[
            s.closed,
            s.cookie_wait,
            s.cookie_echoed,
            s.established,
            s.shutdown_sent,
            s.shutdown_recd,
            s.shutdown_ack_sent,
            s.heartbeat_sent,
            s.heartbeat_acked
        ]),
        list(&[d.request, d.respond, d.partopen, d.open, d.closereq, d.closing, d.timewait]),
        opt(t.icmp),
        opt(t.icmpv6),
        list(&[t.gre.unreplied, t.gre.replied]),
        opt(t.generic),
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut netns = Netns::Current;
    let mut capture = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--netns" => netns = Netns::parse(&args.next().ok_or("--netns needs a value")?),
            "--capture" => capture = Some(args.next().ok_or("--capture needs a file")?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let mut ct = Conntrack::open(&netns)?;
    let count = ct.count()?;
    println!(
        "count entries={} max={}",
        count.entries,
        opt(count.max_entries)
    );
    for s in ct.cpu_stats()? {
        println!("{}", cpu_line(&s));
    }
    let timeouts = ct.default_timeouts()?;
    println!("{}", timeouts_line(&timeouts));
    ct.set_state_timeouts(timeouts);

    let recorded = Arc::new(Mutex::new(Vec::<u8>::new()));
    if capture.is_some() {
        let sink = recorded.clone();
        ct.socket_mut()
            .set_recorder(Some(Box::new(move |dir, bytes: &[u8]| {
                if dir == Direction::Received {
                    if let Ok(mut v) = sink.lock() {
                        v.extend_from_slice(bytes);
                    }
                }
            })));
    }
    let mut lines = Vec::new();
    for e in ct.dump(&DumpFilter::all())? {
        lines.push(entry_line(&e?));
    }
    ct.socket_mut().set_recorder(None);
    lines.sort();
    let mut out = std::io::stdout().lock();
    for l in lines {
        writeln!(out, "{l}")?;
    }
    if let Some(path) = capture {
        let bytes = recorded
            .lock()
            .map_err(|_| "recorder lock poisoned")?
            .clone();
        std::fs::write(path, bytes)?;
    }
    Ok(())
}
