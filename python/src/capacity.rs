//! `ipvsct.capacity(ct, interval=…)`: the capacity model of a namespace's table (Little's
//! law over the entry count, the state timeouts and the measured rate of new connections)
//! as a frozen `CapacityReport`.

use std::sync::mpsc;
use std::time::Duration;

use ipvs_conntrack::capacity::{self as core, observe};
use ipvs_conntrack::conntrack::Conntrack as CoreConntrack;
use ipvs_conntrack::Error;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::client::Conntrack;
use crate::cursor::POLL;
use crate::errors::to_py;
use crate::records::record;
use crate::timeouts::StateTimeouts;

record! {
    /// Entries of one protocol and state.
    StateCount = "StateCount" {
        /// L4 protocol name (or number).
        proto: String,
        /// State name, `-` for stateless protocols.
        state: String,
        /// Entries in this state.
        count: u64,
        /// Full timeout of the state, seconds.
        state_timeout: Option<u32>,
        /// Largest number of seconds left among these entries.
        max_seconds_left: Option<u32>,
    }
}

record! {
    /// Per-CPU counters that signal trouble, summed.
    TroubleCounters = "TroubleCounters" {
        /// Packets dropped because the table was full.
        drop: u64,
        /// Entries evicted early to make room.
        early_drop: u64,
        /// Failed insertions.
        insert_failed: u64,
        /// Resolved insertion clashes.
        clash_resolve: u64,
    }
}

impl From<&core::TroubleCounters> for TroubleCounters {
    fn from(t: &core::TroubleCounters) -> Self {
        TroubleCounters {
            drop: t.drop,
            early_drop: t.early_drop,
            insert_failed: t.insert_failed,
            clash_resolve: t.clash_resolve,
        }
    }
}

record! {
    /// What the capacity model is computed from.
    CapacityObservation = "CapacityObservation" {
        /// Entries now.
        entries: u64,
        /// `nf_conntrack_max`.
        max_entries: u64,
        /// `nf_conntrack_buckets`, if readable.
        buckets: Option<u64>,
        /// Entries by protocol and state.
        states: Vec<StateCount>,
        /// State timeouts in force.
        timeouts: StateTimeouts,
        /// New connections per second over the interval.
        new_per_second: Option<f64>,
        /// `events` or `counters`: how the rate was measured.
        rate_source: Option<String>,
        /// True if events were lost: the rate is a lower bound.
        rate_is_lower_bound: bool,
        /// Growth of the entry count per second.
        growth_per_second: Option<f64>,
        /// Interval the rates were measured over, seconds.
        interval_seconds: f64,
        /// Trouble counters now.
        trouble: TroubleCounters,
        /// Growth of the trouble counters over the interval.
        trouble_growth: TroubleCounters,
    }
}

record! {
    /// A suggested change and its computed effect (never applied).
    Suggestion = "Suggestion" {
        /// The sysctl to change.
        setting: String,
        /// The value to set.
        value: u64,
        /// What the change does, in numbers.
        effect: String,
    }
}

record! {
    /// The capacity model's answers: fill, headroom, sustainable rates, time until full.
    CapacityReport = "CapacityReport" {
        /// The inputs.
        observation: CapacityObservation,
        /// entries / max.
        fill_ratio: f64,
        /// max − entries.
        headroom_entries: u64,
        /// Seconds a short TCP connection stays after it closes (TIME_WAIT timeout).
        short_connection_dwell_seconds: Option<u32>,
        /// Highest sustainable rate of short connections: max / dwell.
        max_short_connections_per_second: Option<f64>,
        /// Occupancy expected at the measured rate: rate × dwell.
        expected_occupancy: Option<f64>,
        /// Average time an entry spends in the table now: entries / rate.
        mean_seconds_in_table: Option<f64>,
        /// How many more new connections per second the table takes.
        headroom_per_second: Option<f64>,
        /// Seconds until full at the measured growth.
        seconds_until_full: Option<f64>,
        /// (protocol, state, share of the table) of the state holding most entries.
        dominant_state: Option<(String, String, f64)>,
        /// Warnings, in plain words.
        warnings: Vec<String>,
        /// Suggested changes.
        suggestions: Vec<Suggestion>,
    }
}

impl From<core::Report> for CapacityReport {
    fn from(r: core::Report) -> Self {
        let o = &r.observation;
        CapacityReport {
            observation: CapacityObservation {
                entries: o.entries,
                max_entries: o.max_entries,
                buckets: o.buckets,
                states: o
                    .states
                    .iter()
                    .map(|s| StateCount {
                        proto: s.proto.clone(),
                        state: s.state.clone(),
                        count: s.count,
                        state_timeout: s.state_timeout,
                        max_seconds_left: s.max_seconds_left,
                    })
                    .collect(),
                timeouts: StateTimeouts {
                    inner: o.timeouts.clone(),
                },
                new_per_second: o.new_per_second,
                rate_source: o.rate_source.map(str::to_owned),
                rate_is_lower_bound: o.rate_is_lower_bound,
                growth_per_second: o.growth_per_second,
                interval_seconds: o.interval_seconds,
                trouble: TroubleCounters::from(&o.trouble),
                trouble_growth: TroubleCounters::from(&o.trouble_growth),
            },
            fill_ratio: r.fill_ratio,
            headroom_entries: r.headroom_entries,
            short_connection_dwell_seconds: r.short_connection_dwell_seconds,
            max_short_connections_per_second: r.max_short_connections_per_second,
            expected_occupancy: r.expected_occupancy,
            mean_seconds_in_table: r.mean_seconds_in_table,
            headroom_per_second: r.headroom_per_second,
            seconds_until_full: r.seconds_until_full,
            dominant_state: r.dominant_state.clone(),
            warnings: r.warnings.clone(),
            suggestions: r
                .suggestions
                .iter()
                .map(|s| Suggestion {
                    setting: s.setting.clone(),
                    value: s.value,
                    effect: s.effect.clone(),
                })
                .collect(),
        }
    }
}

/// Observes `ct`'s namespace for `interval` seconds (NEW events counted, counters and the
/// entry count at both ends, one dump at the end) and computes the capacity model.
///
/// The observation runs on a thread of its own with the GIL released; Ctrl-C returns at
/// once (the thread finishes its interval in the background and is discarded).
#[pyfunction]
#[pyo3(signature = (ct, interval=5.0))]
pub fn capacity(
    py: Python<'_>,
    ct: &Bound<'_, Conntrack>,
    interval: f64,
) -> PyResult<CapacityReport> {
    if !(interval.is_finite() && (0.0..=3600.0).contains(&interval)) {
        return Err(PyValueError::new_err(
            "interval must be between 0 and 3600 seconds",
        ));
    }
    let interval = Duration::from_secs_f64(interval);
    let netns = ct.get().namespace().clone();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = CoreConntrack::open(&netns).and_then(|mut c| observe(&mut c, interval));
        let _ = tx.send(r);
    });
    // A Receiver is not Sync: the GIL-free closure borrows it through a mutex.
    let rx = std::sync::Mutex::new(rx);
    // Bounded by the observation: it ends after `interval` plus one dump.
    loop {
        let r = py.detach(|| {
            rx.lock()
                .unwrap_or_else(|p| p.into_inner())
                .recv_timeout(POLL)
        });
        match r {
            Ok(Ok(report)) => return Ok(CapacityReport::from(report)),
            Ok(Err(e)) => return Err(to_py(py, e)),
            Err(mpsc::RecvTimeoutError::Timeout) => py.check_signals()?,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(to_py(
                    py,
                    Error::Io {
                        op: "capacity",
                        source: std::io::Error::other("the observation thread stopped"),
                    },
                ))
            }
        }
    }
}
