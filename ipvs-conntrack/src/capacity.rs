//! The capacity model: Little's law over table size, per-state counts, the state
//! timeouts in force and the measured rate of new connections.
//!
//! Occupancy = Σ rate × time spent in the table. A short TCP connection (connect,
//! one request, close) spends about the TIME_WAIT timeout in the table after it
//! closes, so a table of `max` entries sustains at most `max / time_wait` new
//! short connections per second (131072 / 120 s ≈ 1092/s).

pub mod ipvs;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::conntrack::events::{EventGroups, EventKind, EventOptions, EventStream, EventView};
use crate::conntrack::{Conntrack, CpuStats, DumpFilter, State, StateTimeouts, TcpState};
use crate::error::Result;

/// Entries of one protocol and state.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct StateCount {
    /// L4 protocol name (`tcp`, `udp`, …) or number.
    pub proto: String,
    /// State name (`TIME_WAIT`, `UNREPLIED`, …) or `-` for stateless protocols.
    pub state: String,
    /// Entries in this state.
    pub count: u64,
    /// Full timeout of the state under the policy in force, seconds.
    pub state_timeout: Option<u32>,
    /// Largest number of seconds left among these entries (when the last one drains).
    pub max_seconds_left: Option<u32>,
}

/// Per-CPU counters that signal trouble, summed, and how much they grew over the interval.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TroubleCounters {
    /// Packets dropped because the table was full (`drop`).
    pub drop: u64,
    /// Entries evicted early to make room (`early_drop`).
    pub early_drop: u64,
    /// Failed insertions (`insert_failed`).
    pub insert_failed: u64,
    /// Resolved insertion clashes (`clash_resolve`).
    pub clash_resolve: u64,
}

impl TroubleCounters {
    fn from_stats(s: &CpuStats) -> Self {
        let g = |v: Option<u32>| u64::from(v.unwrap_or(0));
        TroubleCounters {
            drop: g(s.drop),
            early_drop: g(s.early_drop),
            insert_failed: g(s.insert_failed),
            clash_resolve: g(s.clash_resolve),
        }
    }

    fn delta(&self, before: &TroubleCounters) -> TroubleCounters {
        TroubleCounters {
            drop: self.drop.saturating_sub(before.drop),
            early_drop: self.early_drop.saturating_sub(before.early_drop),
            insert_failed: self.insert_failed.saturating_sub(before.insert_failed),
            clash_resolve: self.clash_resolve.saturating_sub(before.clash_resolve),
        }
    }
}

/// What the model is computed from.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Observation {
    /// Entries now.
    pub entries: u64,
    /// `nf_conntrack_max`.
    pub max_entries: u64,
    /// `nf_conntrack_buckets` (hash table size), if readable.
    pub buckets: Option<u64>,
    /// Entries by protocol and state.
    pub states: Vec<StateCount>,
    /// State timeouts in force.
    pub timeouts: StateTimeouts,
    /// New connections per second over the interval.
    pub new_per_second: Option<f64>,
    /// How the rate was measured: `events` (NEW events counted) or `counters` (the
    /// per-CPU `insert` counter, which current kernels only bump for ctnetlink inserts).
    pub rate_source: Option<&'static str>,
    /// True if NEW events were lost (receive buffer overrun): the rate is a lower bound.
    pub rate_is_lower_bound: bool,
    /// Growth of the entry count per second over the interval.
    pub growth_per_second: Option<f64>,
    /// Interval the rates were measured over, seconds.
    pub interval_seconds: f64,
    /// Trouble counters now.
    pub trouble: TroubleCounters,
    /// Growth of the trouble counters over the interval.
    pub trouble_growth: TroubleCounters,
}

/// A suggested change and its computed effect (never applied by this library).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Suggestion {
    /// The sysctl (or command) to change.
    pub setting: String,
    /// The value to set.
    pub value: u64,
    /// What the change does, in numbers.
    pub effect: String,
}

/// The model's answers.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Report {
    /// The inputs.
    pub observation: Observation,
    /// entries / max.
    pub fill_ratio: f64,
    /// max − entries.
    pub headroom_entries: u64,
    /// Seconds a short TCP connection stays in the table after it closes (TIME_WAIT timeout).
    pub short_connection_dwell_seconds: Option<u32>,
    /// Highest sustainable rate of short connections: max / dwell.
    pub max_short_connections_per_second: Option<f64>,
    /// Steady-state occupancy expected at the measured rate: rate × dwell.
    pub expected_occupancy: Option<f64>,
    /// Average time an entry spends in the table now, by Little's law: entries / rate.
    pub mean_seconds_in_table: Option<f64>,
    /// How many more new connections per second the table takes before it is full.
    pub headroom_per_second: Option<f64>,
    /// Seconds until the table is full at the measured growth (None if not growing).
    pub seconds_until_full: Option<f64>,
    /// The protocol/state holding most entries, and its share of the table.
    pub dominant_state: Option<(String, String, f64)>,
    /// Warnings, in plain words.
    pub warnings: Vec<String>,
    /// Suggested changes with their effect.
    pub suggestions: Vec<Suggestion>,
}

/// Little's law: the highest rate of connections that each stay `dwell` seconds in a table of `max`.
pub fn max_rate(max_entries: u64, dwell_seconds: u32) -> Option<f64> {
    (dwell_seconds > 0).then(|| max_entries as f64 / f64::from(dwell_seconds))
}

/// Target fill used for suggestions (leave 30% for bursts).
pub const TARGET_FILL: f64 = 0.7;

impl Report {
    /// Computes the model from an observation.
    pub fn compute(obs: Observation) -> Report {
        let max = obs.max_entries.max(1);
        let fill_ratio = obs.entries as f64 / max as f64;
        let headroom_entries = obs.max_entries.saturating_sub(obs.entries);
        let dwell = obs.timeouts.tcp.time_wait;
        let max_short = dwell.and_then(|d| max_rate(obs.max_entries, d));
        let expected = match (obs.new_per_second, dwell) {
            (Some(r), Some(d)) => Some(r * f64::from(d)),
            _ => None,
        };
        let mean = obs
            .new_per_second
            .filter(|r| *r > 0.0)
            .map(|r| obs.entries as f64 / r);
        let headroom_rate = match (max_short, obs.new_per_second) {
            (Some(m), Some(r)) => Some((m - r).max(0.0)),
            (Some(m), None) => Some(m),
            _ => None,
        };
        let until_full = obs
            .growth_per_second
            .filter(|g| *g > 0.0)
            .map(|g| headroom_entries as f64 / g);
        let dominant = obs
            .states
            .iter()
            .max_by_key(|s| s.count)
            .filter(|s| s.count > 0 && obs.entries > 0)
            .map(|s| {
                (
                    s.proto.clone(),
                    s.state.clone(),
                    s.count as f64 / obs.entries as f64,
                )
            });

        let mut warnings = Vec::new();
        let g = &obs.trouble_growth;
        if g.drop > 0 {
            warnings.push(format!(
                "{} packets were dropped because the table was full during the last {:.0} s",
                g.drop, obs.interval_seconds
            ));
        }
        if g.early_drop > 0 {
            warnings.push(format!(
                "{} entries were evicted early to make room during the last {:.0} s",
                g.early_drop, obs.interval_seconds
            ));
        }
        if g.insert_failed > 0 {
            warnings.push(format!(
                "{} insertions failed during the last {:.0} s",
                g.insert_failed, obs.interval_seconds
            ));
        }
        if g.clash_resolve > 0 {
            warnings.push(format!(
                "{} insertion clashes were resolved during the last {:.0} s (parallel UDP/DNS flows?)",
                g.clash_resolve, obs.interval_seconds
            ));
        }
        if let Some(b) = obs.buckets {
            if b > 0 && obs.max_entries / b > 8 {
                warnings.push(format!(
                    "nf_conntrack_buckets ({b}) is far below nf_conntrack_max ({}): {} entries per hash chain when full",
                    obs.max_entries,
                    obs.max_entries / b
                ));
            }
        }
        if fill_ratio > 0.8 {
            warnings.push(format!(
                "the table is {:.0}% full ({} of {})",
                fill_ratio * 100.0,
                obs.entries,
                obs.max_entries
            ));
        }
        if let Some(e) = expected {
            if e > obs.max_entries as f64 * TARGET_FILL {
                warnings.push(format!(
                    "at {:.0} new connections/s the steady state needs about {:.0} entries ({:.0}% of the table)",
                    obs.new_per_second.unwrap_or(0.0),
                    e,
                    e / max as f64 * 100.0
                ));
            }
        }

        let mut suggestions = Vec::new();
        let need = expected.unwrap_or(0.0).max(obs.entries as f64);
        if need > obs.max_entries as f64 * TARGET_FILL {
            let new_max = (need / TARGET_FILL).ceil() as u64;
            suggestions.push(Suggestion {
                setting: "net.netfilter.nf_conntrack_max".into(),
                value: new_max,
                effect: format!(
                    "holds {:.0} entries at {:.0}% fill; sustains {:.0} short connections/s",
                    need,
                    TARGET_FILL * 100.0,
                    dwell.and_then(|d| max_rate(new_max, d)).unwrap_or(0.0)
                ),
            });
        }
        if let (Some(r), Some(d)) = (obs.new_per_second, dwell) {
            if r > 0.0 && r * f64::from(d) > obs.max_entries as f64 * TARGET_FILL {
                let tw = ((obs.max_entries as f64 * TARGET_FILL) / r)
                    .floor()
                    .max(1.0) as u64;
                suggestions.push(Suggestion {
                    setting: "net.netfilter.nf_conntrack_tcp_timeout_time_wait".into(),
                    value: tw,
                    effect: format!(
                        "short connections then occupy about {:.0} entries at {:.0}/s ({:.0}% of the table) instead of {:.0}",
                        r * tw as f64,
                        r,
                        r * tw as f64 / max as f64 * 100.0,
                        r * f64::from(d)
                    ),
                });
            }
        }
        Report {
            observation: obs,
            fill_ratio,
            headroom_entries,
            short_connection_dwell_seconds: dwell,
            max_short_connections_per_second: max_short,
            expected_occupancy: expected,
            mean_seconds_in_table: mean,
            headroom_per_second: headroom_rate,
            seconds_until_full: until_full,
            dominant_state: dominant,
            warnings,
            suggestions,
        }
    }
}

fn state_key(proto: u8, state: State) -> (String, String) {
    let p =
        crate::conntrack::tuple::proto_name(proto).map_or_else(|| proto.to_string(), str::to_owned);
    (p, state.name().unwrap_or("-").to_owned())
}

/// Counts entries per protocol and state with one streaming dump (no per-entry allocation).
pub fn count_states(ct: &mut Conntrack, timeouts: &StateTimeouts) -> Result<Vec<StateCount>> {
    // Keyed by (proto, state value) so the map has one node per state, not per entry.
    let mut map: BTreeMap<(u8, StateId), (u64, u32)> = BTreeMap::new();
    ct.for_each_view(&DumpFilter::all(), |v| {
        let (proto, st) = match v.proto().and_then(|p| Ok((p.unwrap_or(0), v.state()?))) {
            Ok(x) => x,
            Err(e) => return std::ops::ControlFlow::Break(Err(e.into())),
        };
        let slot = map.entry((proto, StateId(st))).or_insert((0, 0));
        slot.0 += 1;
        slot.1 = slot.1.max(v.timeout().unwrap_or(0));
        std::ops::ControlFlow::Continue(())
    })?;
    Ok(map
        .into_iter()
        .map(|((proto, StateId(st)), (count, left))| {
            let (p, s) = state_key(proto, st);
            StateCount {
                proto: p,
                state: s,
                count,
                state_timeout: timeouts.for_state(proto, st),
                max_seconds_left: Some(left),
            }
        })
        .collect())
}

/// A `State` ordered for use as a map key.
#[derive(Clone, Copy, PartialEq, Eq)]
struct StateId(State);

impl StateId {
    fn rank(&self) -> (u8, u8) {
        match self.0 {
            State::Tcp(s) => (0, s.value()),
            State::Sctp(s) => (1, s.value()),
            State::Dccp(s) => (2, s.value()),
            State::Udp(s) => (3, s.value()),
            State::Gre(s) => (4, s.value()),
            State::Icmp => (5, 0),
            State::Generic => (6, 0),
            State::Unknown => (7, 0),
        }
    }
}

impl PartialOrd for StateId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for StateId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

/// Reads `nf_conntrack_buckets` of the client's namespace.
fn read_buckets(ct: &Conntrack) -> Option<u64> {
    ct.netns()
        .run(|| {
            Ok(
                std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_buckets")
                    .ok()
                    .and_then(|s| s.trim().parse().ok()),
            )
        })
        .ok()
        .flatten()
}

/// Counts NEW conntrack events in `netns` for `interval`; the flag is set if events were lost.
pub fn count_new_connections(netns: &crate::Netns, interval: Duration) -> Result<(u64, bool)> {
    let mut opts = EventOptions::groups(EventGroups::NEW);
    opts.join_timeouts = false;
    opts.recv_timeout = Some(Duration::from_millis(50));
    let mut stream = EventStream::with_options(netns, &opts)?;
    let deadline = Instant::now() + interval;
    let (mut n, mut lost) = (0u64, false);
    // Bounded by the deadline: every receive waits at most 50 ms.
    while Instant::now() < deadline {
        match stream.next_view()? {
            Some(EventView::Conntrack {
                kind: EventKind::New,
                ..
            }) => n += 1,
            Some(EventView::Overrun(_)) => lost = true,
            _ => {}
        }
    }
    Ok((n, lost))
}

/// Observes a namespace for `interval` (NEW events counted during it, counters and the
/// entry count at both ends, one dump at the end) and computes the model. A zero
/// interval skips the rate measurement.
pub fn observe(ct: &mut Conntrack, interval: Duration) -> Result<Report> {
    let timeouts = ct.default_timeouts()?;
    let before_stats = CpuStats::sum(&ct.cpu_stats()?);
    let before_count = ct.count()?.entries;
    let start = Instant::now();
    let mut events = None;
    if !interval.is_zero() {
        match count_new_connections(&ct.netns().clone(), interval) {
            Ok(r) => events = Some(r),
            // No event socket (e.g. ctnetlink events unavailable): fall back to counters.
            Err(_) => std::thread::sleep(interval.saturating_sub(start.elapsed())),
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let after_stats = CpuStats::sum(&ct.cpu_stats()?);
    let global = ct.count()?;
    let states = count_states(ct, &timeouts)?;
    let measured = !interval.is_zero() && elapsed > 0.0;
    let inserts = u64::from(after_stats.insert.unwrap_or(0))
        .saturating_sub(u64::from(before_stats.insert.unwrap_or(0)));
    let (new, source, lower_bound) = match events {
        Some((n, lost)) => (n.max(inserts), "events", lost),
        None => (inserts, "counters", true),
    };
    let trouble = TroubleCounters::from_stats(&after_stats);
    let obs = Observation {
        entries: u64::from(global.entries),
        max_entries: u64::from(global.max_entries.unwrap_or(0)),
        buckets: read_buckets(ct),
        states,
        timeouts,
        new_per_second: measured.then(|| new as f64 / elapsed),
        rate_source: measured.then_some(source),
        rate_is_lower_bound: measured && lower_bound,
        growth_per_second: measured
            .then(|| (f64::from(global.entries) - f64::from(before_count)) / elapsed),
        interval_seconds: elapsed,
        trouble_growth: trouble.delta(&TroubleCounters::from_stats(&before_stats)),
        trouble,
    };
    Ok(Report::compute(obs))
}

/// True for the TCP states a closed connection lingers in.
pub fn is_closing(state: State) -> bool {
    matches!(
        state,
        State::Tcp(TcpState::FinWait)
            | State::Tcp(TcpState::CloseWait)
            | State::Tcp(TcpState::LastAck)
            | State::Tcp(TcpState::TimeWait)
            | State::Tcp(TcpState::Close)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::timeout::{StateTimeouts, TimeoutSource};

    fn obs(max: u64, entries: u64, rate: Option<f64>) -> Observation {
        let mut t = StateTimeouts::empty(TimeoutSource::Sysctl);
        t.tcp.time_wait = Some(120);
        Observation {
            entries,
            max_entries: max,
            buckets: Some(max / 4),
            states: vec![StateCount {
                proto: "tcp".into(),
                state: "TIME_WAIT".into(),
                count: entries,
                state_timeout: Some(120),
                max_seconds_left: Some(119),
            }],
            timeouts: t,
            new_per_second: rate,
            rate_source: rate.map(|_| "events"),
            rate_is_lower_bound: false,
            growth_per_second: None,
            interval_seconds: 5.0,
            trouble: TroubleCounters::default(),
            trouble_growth: TroubleCounters::default(),
        }
    }

    #[test]
    fn littles_law_131072_over_120s() {
        let r = Report::compute(obs(131_072, 0, None));
        let m = r.max_short_connections_per_second.unwrap();
        assert!((m - 1092.27).abs() < 0.01, "{m}");
        assert!(r.suggestions.is_empty());
        assert!(r.warnings.is_empty());
    }

    #[test]
    fn overload_suggests_max_and_time_wait() {
        // 1000/s × 120 s = 120000 entries > 70% of 131072.
        let r = Report::compute(obs(131_072, 100_000, Some(1000.0)));
        assert_eq!(r.expected_occupancy, Some(120_000.0));
        assert_eq!(r.mean_seconds_in_table, Some(100.0));
        let max = &r.suggestions[0];
        assert_eq!(max.setting, "net.netfilter.nf_conntrack_max");
        assert_eq!(max.value, 171_429); // ceil(120000 / 0.7)
        let tw = &r.suggestions[1];
        assert_eq!(tw.value, 91); // floor(131072 * 0.7 / 1000)
        assert!(r.warnings.iter().any(|w| w.contains("steady state")));
        assert_eq!(
            r.dominant_state,
            Some(("tcp".into(), "TIME_WAIT".into(), 1.0))
        );
    }
}
