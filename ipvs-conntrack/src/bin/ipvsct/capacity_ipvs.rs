//! The IPVS section of `ipvsct capacity` (and of `ipvsct demo`): real servers with their
//! entries by state and drain time, the timeouts in force, and the capacity arithmetic.

use std::io::{self, Write};
use std::path::Path;

use ipvs_conntrack::capacity::ipvs::{human_bytes, DestCapacity, IpvsReport, ServiceCapacity};
use ipvs_conntrack::ipvs::Ipvs;
use ipvs_conntrack::Netns;

use crate::demo::wrap;
use crate::failure::Failure;
use crate::output::{endpoint, human_secs};

/// Width of wrapped paragraphs.
const TEXT_WIDTH: usize = 88;

/// True if the ip_vs module is loaded (checked without loading it).
pub fn ipvs_loaded() -> bool {
    Path::new("/proc/net/ip_vs").exists()
}

/// The IPVS client for the capacity section: always with `--ipvs` (errors are
/// failures), otherwise only when ip_vs is already loaded (opening the generic netlink
/// family would load the module).
pub fn client(netns: &Netns, forced: bool) -> Result<Option<Ipvs>, Failure> {
    if !forced && !ipvs_loaded() {
        return Ok(None);
    }
    Ok(Some(Ipvs::open(netns)?))
}

/// `HH:MM:SS UTC` of a Unix time.
pub fn utc_clock(unix: u64) -> String {
    let s = unix % 86_400;
    format!("{:02}:{:02}:{:02} UTC", s / 3600, s / 60 % 60, s % 60)
}

/// `900 s (15m)`, or `4 s` below a minute.
pub fn secs_text(v: u32) -> String {
    if v < 60 {
        format!("{v} s")
    } else {
        format!("{v} s ({})", human_secs(v))
    }
}

/// Writes `text` wrapped, each line after `first` (first line) or `rest` (the others).
pub fn write_wrapped(w: &mut impl Write, first: &str, rest: &str, text: &str) -> io::Result<()> {
    let width = TEXT_WIDTH
        .saturating_sub(first.len().max(rest.len()))
        .max(20);
    for (i, l) in wrap(text, width).iter().enumerate() {
        writeln!(w, "{}{l}", if i == 0 { first } else { rest })?;
    }
    Ok(())
}

/// One service line: `TCP 10.213.1.100:80 rr`, with its counter and rate when measured.
pub fn write_service_line(w: &mut impl Write, s: &ServiceCapacity, pad: &str) -> io::Result<()> {
    write!(w, "{pad}{} {}", s.service, s.scheduler)?;
    if s.persistence_timeout > 0 {
        write!(w, " persistent {} s", s.persistence_timeout)?;
    }
    if let (Some(b), Some(a), Some(r)) = (s.conns_before, s.conns, s.new_per_second) {
        write!(w, ": conns {b} -> {a}, {r:.1} new/s")?;
        if let Some(e) = s.expected_inactive {
            write!(w, ", expect ~{e:.0} InActConn at that rate")?;
        }
    } else if let Some(a) = s.conns {
        write!(w, ": conns {a}")?;
    }
    writeln!(w)
}

/// A real server: its counters, its entries by state and when InActConn drains.
pub fn write_dest(w: &mut impl Write, d: &DestCapacity, pad: &str) -> io::Result<()> {
    writeln!(
        w,
        "{pad}-> {} {} weight {}: ActiveConn {}, InActConn {}, PersistConn {}",
        endpoint(d.dest.ip(), Some(d.dest.port())),
        d.fwd_method.ipvsadm_name(),
        d.weight,
        d.active_conns,
        d.inactive_conns,
        d.persist_conns
    )?;
    for g in &d.states {
        writeln!(
            w,
            "{pad}     {:<10} {:<12} {:>5} entr{}, {}..{} s left of {}",
            g.activity.to_string(),
            g.state.to_string(),
            g.count,
            if g.count == 1 { "y" } else { "ies" },
            g.min_expires,
            g.max_expires,
            g.state_timeout
                .map_or_else(|| "?".to_owned(), |t| format!("{t} s"))
        )?;
    }
    match (d.inactive_drain_seconds, d.drain_at_unix) {
        (Some(s), Some(at)) => writeln!(
            w,
            "{pad}     InActConn drains in {} (at {}) if no new connection comes",
            human_secs(s),
            utc_clock(at)
        )?,
        _ if d.inactive_conns > 0 => writeln!(
            w,
            "{pad}     InActConn {} but no inactive entry listed (they expired meanwhile)",
            d.inactive_conns
        )?,
        _ => {}
    }
    if let (Some(r), Some(e)) = (d.new_per_second, d.expected_inactive) {
        writeln!(
            w,
            "{pad}     {r:.1} new connections/s -> ~{e:.0} InActConn if that rate lasts"
        )?;
    }
    Ok(())
}

/// The timeouts in force and what each holds now.
pub fn write_timeouts(w: &mut impl Write, r: &IpvsReport, pad: &str) -> io::Result<()> {
    let t = &r.timeouts;
    let f = |v: Option<u32>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    writeln!(
        w,
        "{pad}IPVS timeouts in force (`ipvsadm --set TCP TCPFIN UDP` = {} {} {}):",
        f(t.tcp),
        f(t.tcp_fin),
        f(t.udp)
    )?;
    for u in &r.timeout_use {
        writeln!(
            w,
            "{pad}  {:<9} {:<12} {:>14} {:>6} entr{}{}",
            if u.settable { u.name } else { "(fixed)" },
            u.state,
            secs_text(u.seconds),
            u.entries,
            if u.entries == 1 { "y" } else { "ies" },
            if u.settable {
                ""
            } else {
                "   not settable with ipvsadm --set"
            }
        )?;
    }
    Ok(())
}

/// Table size, memory, the measured rate and Little's law.
pub fn write_arithmetic(w: &mut impl Write, r: &IpvsReport, pad: &str) -> io::Result<()> {
    let bits = r
        .conn_tab_bits
        .map_or_else(|| "?".to_owned(), |b| b.to_string());
    write!(
        w,
        "{pad}connection table: {} hash buckets (conn_tab_bits {bits}), no maximum; {} entries \
         now (active {}, inactive {}, persistent {}; {:.2} per bucket)",
        r.conn_tab_size, r.entries, r.active_conns, r.inactive_conns, r.persist_conns, r.mean_chain
    )?;
    match (r.entry_bytes, r.memory_bytes) {
        (Some(b), Some(m)) => writeln!(w, ", {b} bytes each = {}", human_bytes(m as f64))?,
        _ => writeln!(w)?,
    }
    let (Some(rate), Some(expected)) = (r.new_per_second, r.expected_inactive) else {
        writeln!(w, "{pad}rate: not measured (interval 0)")?;
        return Ok(());
    };
    let before: u64 = r.services.iter().filter_map(|s| s.conns_before).sum();
    let after: u64 = r.services.iter().filter_map(|s| s.conns).sum();
    writeln!(
        w,
        "{pad}measured: conns counter {before} -> {after} in {:.2} s = {rate:.1} new connections/s{}",
        r.interval_seconds,
        if r.rate_is_lower_bound {
            " (at least)"
        } else {
            ""
        }
    )?;
    write!(
        w,
        "{pad}Little's law: InActConn = {rate:.1}/s x {} s (TIME_WAIT) = {expected:.0} if that rate lasts",
        r.time_wait_seconds
    )?;
    let mut extra = Vec::new();
    if let Some(m) = r.expected_memory_bytes {
        extra.push(human_bytes(m));
    }
    if let Some(c) = r.expected_mean_chain {
        extra.push(format!("{c:.1} per bucket"));
    }
    if extra.is_empty() {
        writeln!(w)
    } else {
        writeln!(w, " ({})", extra.join(", "))
    }
}

/// Notes, warnings and suggestions.
pub fn write_advice(w: &mut impl Write, r: &IpvsReport, pad: &str) -> io::Result<()> {
    for n in &r.notes {
        write_wrapped(w, &format!("{pad}Note: "), &format!("{pad}      "), n)?;
    }
    for warn in &r.warnings {
        write_wrapped(
            w,
            &format!("{pad}WARNING: "),
            &format!("{pad}         "),
            warn,
        )?;
    }
    if r.suggestions.is_empty() {
        let holding: Vec<String> = r
            .timeout_use
            .iter()
            .filter(|u| u.settable && u.entries > 0)
            .map(|u| format!("{} {}", u.entries, u.state))
            .collect();
        let text = if holding.is_empty() {
            "Suggestions: none with an effect here: no entry is in a state whose timeout \
             `ipvsadm --set` can change (ESTABLISHED, FIN_WAIT, UDP)."
                .to_owned()
        } else {
            format!(
                "Suggestions: none: the settable timeouts already hold few entries ({}).",
                holding.join(", ")
            )
        };
        write_wrapped(w, pad, &format!("{pad}  "), &text)?;
    }
    for s in &r.suggestions {
        writeln!(w, "{pad}Suggestion: {}", s.command)?;
        write_wrapped(
            w,
            &format!("{pad}  effect: "),
            &format!("{pad}          "),
            &s.effect,
        )?;
    }
    Ok(())
}

/// The whole IPVS section of `ipvsct capacity`.
pub fn write_report(w: &mut impl Write, r: &IpvsReport) -> io::Result<()> {
    writeln!(w)?;
    writeln!(w, "IPVS {}:", r.version)?;
    if r.services.is_empty() {
        writeln!(w, "  no virtual services in this namespace")?;
    }
    for s in &r.services {
        write_service_line(w, s, "  ")?;
        for d in &s.dests {
            write_dest(w, d, "    ")?;
        }
    }
    if r.unmatched_entries > 0 {
        writeln!(
            w,
            "  {} connection entries match no listed real server",
            r.unmatched_entries
        )?;
    }
    if let Some(d) = r.inactive_drain_seconds {
        writeln!(
            w,
            "  All inactive entries drain in {} if no new connection comes",
            human_secs(d)
        )?;
    }
    write_timeouts(w, r, "  ")?;
    write_arithmetic(w, r, "  ")?;
    write_advice(w, r, "  ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_secs_and_wrapped_text() {
        assert_eq!(
            utc_clock(86_400 * 3 + 3600 * 13 + 60 * 4 + 5),
            "13:04:05 UTC"
        );
        assert_eq!(secs_text(4), "4 s");
        assert_eq!(secs_text(900), "900 s (15m)");
        let mut out = Vec::new();
        write_wrapped(&mut out, "Note: ", "      ", "one two").unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "Note: one two\n");
    }
}
