//! `ipvsct demo`: short HTTP connections in a throw-away sandbox, the TIME_WAIT entries they
//! leave in conntrack, and what that means for the table's capacity (Little's law).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use clap::Args;
use ipvs_conntrack::conntrack::tuple::IPPROTO_TCP;
use ipvs_conntrack::conntrack::{Conntrack, DumpFilter, Entry, Family, GlobalStats, StateTimeouts};

use crate::demo_ipvs;
use crate::failure::Failure;
use crate::http;
use crate::output::{endpoint, human_secs, source_text};
use crate::sandbox::{self, Registry, Sandbox, Tools, SERVER_ADDR};

/// TCP port the demo's HTTP server listens on.
pub const HTTP_PORT: u16 = 80;
/// Longest wait for the entries to reach TIME_WAIT after the last request.
const SETTLE_LIMIT: Duration = Duration::from_secs(5);

/// Arguments of `ipvsct demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of HTTP requests, each on a new TCP connection.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub requests: u16,
    /// Keep the sandbox this many seconds before removing it, to look around with other
    /// commands (Ctrl-C ends the wait early and still cleans up).
    #[arg(long, value_name = "SECONDS", default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=600))]
    pub keep: u16,
}

/// Writes a line to stdout; a closed stdout is not a reason to leave the sandbox behind.
macro_rules! say {
    ($($t:tt)*) => {{
        let mut o = io::stdout().lock();
        let _ = writeln!(o, $($t)*);
        let _ = o.flush();
    }};
}

/// Runs the demo (root only).
pub fn run(a: &DemoArgs) -> Result<(), Failure> {
    if effective_uid() != Some(0) {
        return Err(Failure::new(
            "ipvsct demo needs root: it creates network namespaces, a veth pair and an nft rule \
             (run it as root, e.g. `sudo ipvsct demo`)",
        ));
    }
    let tools = Tools::find()?;
    let registry: Registry = Arc::new(Mutex::new(Vec::new()));
    install_interrupt_handler(tools.ip.clone(), Arc::clone(&registry))?;
    let ipvs_registry = Arc::clone(&registry);

    say!("ipvsct demo: short HTTP connections and the conntrack entries they leave behind");
    say!();
    say!("Sandbox (nothing on the host is changed):");
    let sb = Sandbox::create(std::process::id(), &tools, registry, &mut |s| {
        say!("  - {s}")
    })?;
    let n = usize::from(a.requests);
    let result = show(&sb, n)
        .and_then(|()| demo_ipvs::run(&sb, &tools, ipvs_registry, n))
        .inspect(|part| keep(&sb, part.as_ref(), a.keep));
    // Remove the sandbox whatever happened (the IPVS part first: its veth pair ends in the
    // client namespace); report the demo's own failure first.
    let (result, closed_ipvs) = match result {
        Ok(Some(part)) => (Ok(()), Some(part.close())),
        Ok(None) => (Ok(()), None),
        Err(e) => (Err(e), None),
    };
    let closed = sb.close();
    result?;
    let removed_ipvs = closed_ipvs.transpose()?;
    let removed = closed?;
    say!();
    if let Some(c) = removed_ipvs {
        let service = c.service.map_or_else(
            || "no IPVS service (none was added)".to_owned(),
            |k| format!("the IPVS service {k}"),
        );
        say!(
            "Cleaned up IPVS: deleted {service} (IPVS services left in the director: {}) and \
             namespaces {}.",
            c.services_left,
            c.namespaces.join(", ")
        );
    }
    say!(
        "Cleaned up: deleted namespaces {} (with their veth pair, nft table and conntrack table).",
        removed.join(" and ")
    );
    Ok(())
}

/// The effective user id, from `/proc/self/status` (`Uid: real effective saved fs`).
pub fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Ctrl-C removes the namespaces created so far and exits with status 130.
fn install_interrupt_handler(ip: String, registry: Registry) -> Result<(), Failure> {
    ctrlc::set_handler(move || {
        let names = registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        eprintln!("\nipvsct demo: interrupted, removing the sandbox");
        for d in names.iter().filter(|n| demo_ipvs::is_director(n)) {
            if let Err(e) = demo_ipvs::flush_director(d) {
                eprintln!("ipvsct: deleting the IPVS service in {d}: {e}");
            }
        }
        let left = sandbox::delete_namespaces(&ip, &names);
        if !left.is_empty() {
            eprintln!(
                "ipvsct: could not remove {}: use `ip netns del NAME`",
                left.join(", ")
            );
        }
        std::process::exit(130);
    })
    .map_err(|e| Failure::new(format!("cannot install the Ctrl-C handler: {e}")))
}

/// The requests, the table and the capacity arithmetic.
fn show(sb: &Sandbox, requests: usize) -> Result<(), Failure> {
    let vip = SocketAddr::new(IpAddr::V4(SERVER_ADDR), HTTP_PORT);
    let server = http::Server::start(&sb.server_netns(), vip, Duration::from_secs(120))?;
    say!("  - started a tiny HTTP server on {vip} in {}", sb.server);
    say!();
    let started = Instant::now();
    let codes = http::head_requests(&sb.client_netns(), vip, requests)?;
    let took = started.elapsed();
    let ok = codes.iter().filter(|c| **c == 200).count();
    say!(
        "Traffic: like `for i in {{1..{requests}}}; do curl -I -s http://{vip}/; done` from {}:",
        sb.client
    );
    say!(
        "  {requests} HEAD requests, each on a new TCP connection: {ok} answered 200 OK, in {:.2} s",
        took.as_secs_f64()
    );
    let served = wait_served(&server, requests);
    server.stop()?;
    if ok != requests || served != requests as u64 {
        return Err(Failure::new(format!(
            "only {ok} of {requests} requests got 200 OK ({served} completed on the server side)"
        )));
    }

    let mut ct = Conntrack::open(&sb.server_netns())?;
    let mut entries = settle(&mut ct, vip, requests)?;
    entries.sort_by_key(|e| e.orig.src_port);
    say!();
    say!(
        "Conntrack table of {} (entries for {vip}), seconds left of the state's timeout:",
        sb.server
    );
    write_entries(&entries);
    let by_state = count_by_state(&entries);
    let summary: Vec<String> = by_state.iter().map(|(s, n)| format!("{s} {n}")).collect();
    say!("By state: {}", summary.join(", "));
    if let Some(n) = sb.new_connection_counter() {
        say!("The nft rule counted {n} new connections.");
    }
    let drain = entries.iter().filter_map(|e| e.timeout).max();
    if let Some(d) = drain {
        say!(
            "They drain by themselves within {d} s (the most time left), if no new connection comes."
        );
    }

    let stats = ct.count()?;
    let timeouts = ct.default_timeouts()?;
    say!();
    capacity(&stats, &timeouts);
    Ok(())
}

/// Holds the sandbox for `secs` seconds, saying how to look at it.
fn keep(sb: &Sandbox, ipvs: Option<&demo_ipvs::IpvsSandbox>, secs: u16) {
    if secs == 0 {
        return;
    }
    say!();
    say!(
        "Keeping the sandbox for {secs} s (Ctrl-C to end now). Try: ipvsct conntrack list --netns {}",
        sb.server
    );
    if let Some(i) = ipvs {
        say!(
            "  and: ipvsct ipvs --netns {} explain --connections",
            i.director
        );
    }
    let end = Instant::now() + Duration::from_secs(u64::from(secs));
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits (bounded) until the server has seen every client close its connection.
fn wait_served(server: &http::Server, requests: usize) -> u64 {
    let deadline = Instant::now() + SETTLE_LIMIT;
    while server.served() < requests as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    server.served()
}

/// Dumps the demo's entries until all `requests` are in TIME_WAIT (or the wait ends).
fn settle(ct: &mut Conntrack, vip: SocketAddr, requests: usize) -> Result<Vec<Entry>, Failure> {
    let mut filter = DumpFilter::all().family(Family::Ipv4);
    filter.orig.dst = Some(vip.ip());
    filter.orig.proto = Some(IPPROTO_TCP);
    filter.orig.dst_port = Some(vip.port());
    let deadline = Instant::now() + SETTLE_LIMIT;
    loop {
        let entries = ct.list(&filter)?;
        let tw = entries
            .iter()
            .filter(|e| e.state.name() == Some("TIME_WAIT"))
            .count();
        if tw >= requests || Instant::now() >= deadline {
            return Ok(entries);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Entries per state name, sorted by name.
pub fn count_by_state(entries: &[Entry]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for e in entries {
        *m.entry(e.state.to_string()).or_insert(0) += 1;
    }
    m
}

/// The compact table of the demo's entries.
fn write_entries(entries: &[Entry]) {
    say!(
        "  {:>3}  {:<21} {:<18} {:<11} {:>5} {:>6}",
        "#",
        "CLIENT",
        "SERVER",
        "STATE",
        "LEFT",
        "OF"
    );
    for (i, e) in entries.iter().enumerate() {
        let secs = |v: Option<u32>| v.map_or_else(|| "-".to_owned(), |v| format!("{v}s"));
        say!(
            "  {:>3}  {:<21} {:<18} {:<11} {:>5} {:>6}",
            i + 1,
            endpoint(e.orig.src, e.orig.src_port),
            endpoint(e.orig.dst, e.orig.dst_port),
            e.state.to_string(),
            secs(e.timeout),
            secs(e.state_timeout)
        );
    }
}

/// Highest sustainable rate of short connections, `max / time_wait` per second, rounded down.
pub fn max_rate(max_entries: u32, time_wait: u32) -> Option<u32> {
    ipvs_conntrack::capacity::max_rate(u64::from(max_entries), time_wait).map(|r| r.floor() as u32)
}

/// The capacity arithmetic and its explanation.
fn capacity(stats: &GlobalStats, t: &StateTimeouts) {
    say!("Capacity of this namespace's conntrack table:");
    let max = stats.max_entries;
    match max {
        Some(m) => say!(
            "  nf_conntrack_max {m} entries ({} in use now, {:.3}% full)",
            stats.entries,
            f64::from(stats.entries) * 100.0 / f64::from(m.max(1))
        ),
        None => say!("  nf_conntrack_max: not reported by this kernel"),
    }
    let tcp = &t.tcp;
    let show = |name: &str, v: Option<u32>| {
        v.map_or_else(
            || format!("{name} ?"),
            |v| match v {
                0..=59 => format!("{name} {v} s"),
                _ => format!("{name} {v} s ({})", human_secs(v)),
            },
        )
    };
    say!("  state timeouts in force, from {}:", source_text(t));
    say!(
        "    tcp: {}, {}, {}, {}, {}",
        show("SYN_SENT", tcp.syn_sent),
        show("ESTABLISHED", tcp.established),
        show("FIN_WAIT", tcp.fin_wait),
        show("TIME_WAIT", tcp.time_wait),
        show("CLOSE", tcp.close)
    );
    say!(
        "    udp: {}, {};  icmp: {}",
        show("UNREPLIED", t.udp.unreplied),
        show("STREAM", t.udp.replied),
        t.icmp.map_or_else(|| "?".to_owned(), |v| format!("{v} s"))
    );
    let (Some(m), Some(tw)) = (max, tcp.time_wait) else {
        say!("  capacity: unknown (nf_conntrack_max or the TIME_WAIT timeout is missing)");
        return;
    };
    let Some(rate) = max_rate(m, tw) else {
        say!("  capacity: unbounded by TIME_WAIT (its timeout is 0 s)");
        return;
    };
    say!(
        "  capacity: {m} entries / {tw} s in TIME_WAIT = {rate} new connections/s at most (Little's law)"
    );
    say!();
    let explanation = format!(
        "Every short connection keeps its conntrack entry for the TIME_WAIT timeout ({tw} s) \
         after it closes, so at a steady rate of R new connections per second the table holds \
         about R x {tw} entries (Little's law: entries = rate x time in the table). \
         The table holds at most nf_conntrack_max = {m} entries, so this namespace can sustain \
         about {m} / {tw} = {rate} new short connections per second. \
         Faster than that the table fills up and the kernel drops the packets of new \
         connections (it logs \"nf_conntrack: table full, dropping packet\"). \
         To move the limit, raise net.netfilter.nf_conntrack_max or lower \
         net.netfilter.nf_conntrack_tcp_timeout_time_wait."
    );
    for line in wrap(&explanation, TEXT_WIDTH) {
        say!("{line}");
    }
}

/// Width of the explanatory paragraph.
const TEXT_WIDTH: usize = 88;

/// Splits `text` into lines of at most `width` characters at spaces (longer words stay whole).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipvs_conntrack::conntrack::{MessageInfo, State, Status, TcpState, Tuple};

    fn entry(state: State, timeout: u32) -> Entry {
        let orig = Tuple::with_ports(
            IPPROTO_TCP,
            "10.213.0.1".parse().unwrap(),
            40000,
            "10.213.0.2".parse().unwrap(),
            80,
        );
        Entry {
            family: Family::Ipv4,
            message: MessageInfo {
                msg: 0,
                flags: 0,
                res_id: 0,
            },
            state,
            reply: orig.reversed(),
            orig,
            master: None,
            status: Status::CONFIRMED,
            protoinfo: None,
            helper: None,
            nat_src: None,
            nat_dst: None,
            timeout: Some(timeout),
            state_timeout: Some(120),
            mark: None,
            mark_mask: None,
            counters_orig: None,
            counters_reply: None,
            use_count: None,
            id: None,
            seq_adj_orig: None,
            seq_adj_reply: None,
            secmark: None,
            zone: None,
            secctx: None,
            timestamp: None,
            event_time: None,
            labels: None,
            labels_mask: None,
            synproxy: None,
            status_mask: None,
            unknown: Vec::new(),
            unknown_nested: Vec::new(),
        }
    }

    #[test]
    fn effective_uid_matches_proc_self_owner() {
        use std::os::unix::fs::MetadataExt;
        let owner = std::fs::metadata("/proc/self").unwrap().uid();
        assert_eq!(effective_uid(), Some(owner));
    }

    #[test]
    fn wrap_keeps_words_and_width() {
        let w = wrap("aaa bb cccc d  eeeeeeeeeeee f", 8);
        assert_eq!(w, ["aaa bb", "cccc d", "eeeeeeeeeeee", "f"]);
        assert!(wrap("", 8).is_empty());
    }

    #[test]
    fn little_law_and_state_counts() {
        assert_eq!(max_rate(262_144, 120), Some(2184));
        assert_eq!(max_rate(65_536, 30), Some(2184));
        assert_eq!(max_rate(1000, 0), None);
        let es = vec![
            entry(State::Tcp(TcpState::TimeWait), 119),
            entry(State::Tcp(TcpState::TimeWait), 118),
            entry(State::Tcp(TcpState::Close), 9),
        ];
        let m = count_by_state(&es);
        assert_eq!(m.get("TIME_WAIT"), Some(&2));
        assert_eq!(m.get("CLOSE"), Some(&1));
        assert_eq!(m.len(), 2);
    }
}
