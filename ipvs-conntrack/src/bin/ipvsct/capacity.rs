//! `ipvsct capacity`: the Little's-law capacity model of one namespace's conntrack table.

use std::io::{self, Write};
use std::time::Duration;

use clap::Args;
use ipvs_conntrack::capacity::ipvs::{observe_since, ConnSample, IpvsReport};
use ipvs_conntrack::capacity::{observe, Report};
use ipvs_conntrack::conntrack::Conntrack;
use ipvs_conntrack::Netns;
use serde::Serialize;

use crate::capacity_ipvs;
use crate::failure::Failure;
use crate::output::{human_secs, write_json_line};

/// Options of `ipvsct capacity`.
#[derive(Debug, Args)]
pub struct CapacityArgs {
    /// Network namespace: an `ip netns` name or a path (default: the current one).
    #[arg(long, value_name = "NAME|PATH")]
    pub netns: Option<String>,
    /// How long to measure the rate of new connections, e.g. 5s, 500ms, 0 (no rate). IPVS's
    /// counters are measured over whole 2 s periods of the kernel's estimator (rounded up).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Include the IPVS section even when ip_vs is not loaded yet (loads it; fails without
    /// IPVS). Without it the section appears when ip_vs is loaded.
    #[arg(long)]
    pub ipvs: bool,
}

/// The JSON of `ipvsct capacity`: the conntrack report's fields and `ipvs` (null without IPVS).
#[derive(Serialize)]
struct CapacityJson<'a> {
    #[serde(flatten)]
    conntrack: &'a Report,
    ipvs: Option<&'a IpvsReport>,
}

/// Parses `5s`, `500ms`, `2m` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let v: f64 = num.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        _ => return Err(format!("unknown unit {unit:?} in {s:?} (use ms, s or m)")),
    };
    if !(0.0..=3600.0).contains(&secs) {
        return Err(format!("interval {s:?} out of range (0 to 1 hour)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Runs `ipvsct capacity`.
pub fn run(a: &CapacityArgs) -> Result<(), Failure> {
    let ns = a.netns.as_deref().map_or(Netns::Current, Netns::parse);
    let mut ct = Conntrack::open(&ns)?;
    // IPVS's rate is measured from its counters over the same interval.
    let mut ipvs = capacity_ipvs::client(&ns, a.ipvs)?;
    let before = match ipvs.as_mut() {
        Some(i) if !a.interval.is_zero() => Some(ConnSample::read(i)?),
        _ => None,
    };
    let report = observe(&mut ct, a.interval)?;
    let ipvs_report = match ipvs.as_mut() {
        Some(i) => Some(observe_since(i, before.as_ref())?),
        None => None,
    };
    let mut out = io::stdout().lock();
    if a.json {
        let j = CapacityJson {
            conntrack: &report,
            ipvs: ipvs_report.as_ref(),
        };
        write_json_line(&mut out, &j).map_err(Failure::from_output)?;
    } else {
        write_report(&mut out, &report).map_err(Failure::from_output)?;
        if let Some(r) = &ipvs_report {
            capacity_ipvs::write_report(&mut out, r).map_err(Failure::from_output)?;
        }
    }
    Ok(())
}

/// Writes the report as text.
pub fn write_report(w: &mut impl Write, r: &Report) -> io::Result<()> {
    let o = &r.observation;
    writeln!(
        w,
        "Table: {} of {} entries ({:.2}% full), {} free",
        o.entries,
        o.max_entries,
        r.fill_ratio * 100.0,
        r.headroom_entries
    )?;
    if let Some(b) = o.buckets {
        writeln!(w, "Hash buckets: {b}")?;
    }
    writeln!(w, "Entries by state:")?;
    let mut states = o.states.clone();
    states.sort_by_key(|s| std::cmp::Reverse(s.count));
    for s in &states {
        let t = s
            .state_timeout
            .map_or_else(|| "-".into(), |t| format!("{t} s"));
        let left = s
            .max_seconds_left
            .map_or_else(|| "-".into(), |t| format!("{t} s"));
        writeln!(
            w,
            "  {:<8} {:<14} {:>9}   state timeout {:>9}   last drains in {:>7}",
            s.proto, s.state, s.count, t, left
        )?;
    }
    match (o.new_per_second, o.growth_per_second) {
        (Some(r), Some(g)) => writeln!(
            w,
            "Measured over {:.1} s: {:.1} new connections/s, table growing by {:.1} entries/s",
            o.interval_seconds, r, g
        )?,
        _ => writeln!(w, "Rate not measured (interval 0)")?,
    }
    if let (Some(d), Some(m)) = (
        r.short_connection_dwell_seconds,
        r.max_short_connections_per_second,
    ) {
        writeln!(
            w,
            "Little's law: a short TCP connection stays ~{d} s ({}) in TIME_WAIT, so {} entries \
             sustain at most {:.0} new short connections/s",
            human_secs(d),
            o.max_entries,
            m.floor()
        )?;
    }
    if let Some(e) = r.expected_occupancy {
        writeln!(
            w,
            "Expected steady-state occupancy at the measured rate: {e:.0} entries"
        )?;
    }
    if let Some(t) = r.mean_seconds_in_table {
        writeln!(w, "Mean time in the table now (entries / rate): {t:.1} s")?;
    }
    if let Some(h) = r.headroom_per_second {
        writeln!(w, "Headroom: {h:.0} more new connections/s")?;
    }
    if let Some(t) = r.seconds_until_full {
        writeln!(w, "At the measured growth the table is full in {t:.0} s")?;
    }
    if let Some((p, s, share)) = &r.dominant_state {
        writeln!(
            w,
            "Most entries: {p} {s} ({:.0}% of the table)",
            share * 100.0
        )?;
    }
    for warn in &r.warnings {
        writeln!(w, "WARNING: {warn}")?;
    }
    for s in &r.suggestions {
        writeln!(
            w,
            "Suggestion: sysctl -w {}={}  # {}",
            s.setting, s.value, s.effect
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
