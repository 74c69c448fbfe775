//! The capacity model in C form: table size, per-state counts with their timeouts, the
//! measured rate of new connections, Little's-law limits, warnings and suggestions.

use std::ffi::c_char;
use std::time::Duration;

use ipvs_conntrack::capacity::{self, Report, StateCount, Suggestion, TroubleCounters};

use crate::boundary::boundary;
use crate::conntrack::ipvsct_conntrack;
use crate::cstr;
use crate::entry::IPVSCT_STATE_NAME_LEN;
use crate::ptr::{in_ref, Out};
use crate::result::ipvsct_result;
use crate::result::ipvsct_result::*;
use crate::timeouts::IPVSCT_TIMEOUT_UNSET;

/// Size of the protocol names in `ipvsct_capacity` (bytes, including the NUL).
pub const IPVSCT_CAPACITY_PROTO_LEN: usize = 16;
/// Number of rows in `ipvsct_capacity.states`.
pub const IPVSCT_CAPACITY_STATES_MAX: usize = 32;
/// Number of rows in `ipvsct_capacity.warnings`.
pub const IPVSCT_CAPACITY_WARNINGS_MAX: usize = 8;
/// Number of rows in `ipvsct_capacity.suggestions`.
pub const IPVSCT_CAPACITY_SUGGESTIONS_MAX: usize = 4;
/// Size of `ipvsct_capacity_suggestion.setting` (bytes, including the NUL).
pub const IPVSCT_CAPACITY_SETTING_LEN: usize = 64;
/// Size of a warning and of `ipvsct_capacity_suggestion.effect` (bytes, including the NUL).
pub const IPVSCT_CAPACITY_TEXT_LEN: usize = 256;

/// `ipvsct_capacity.rate_source`: no rate was measured (`interval_ms` 0).
pub const IPVSCT_CAPACITY_RATE_NONE: u32 = 0;
/// `ipvsct_capacity.rate_source`: NEW conntrack events were counted.
pub const IPVSCT_CAPACITY_RATE_EVENTS: u32 = 1;
/// `ipvsct_capacity.rate_source`: the per-CPU `insert` counter (no event socket).
pub const IPVSCT_CAPACITY_RATE_COUNTERS: u32 = 2;

/// `ipvsct_capacity.fields`: `buckets` is set.
pub const IPVSCT_CAPACITY_HAS_BUCKETS: u32 = 0x1;
/// `ipvsct_capacity.fields`: `short_connection_dwell_seconds` is set.
pub const IPVSCT_CAPACITY_HAS_SHORT_DWELL: u32 = 0x2;
/// `ipvsct_capacity.fields`: `max_short_connections_per_second` is set.
pub const IPVSCT_CAPACITY_HAS_MAX_SHORT_RATE: u32 = 0x4;
/// `ipvsct_capacity.fields`: `new_per_second` is set.
pub const IPVSCT_CAPACITY_HAS_NEW_PER_SECOND: u32 = 0x8;
/// `ipvsct_capacity.fields`: `growth_per_second` is set.
pub const IPVSCT_CAPACITY_HAS_GROWTH: u32 = 0x10;
/// `ipvsct_capacity.fields`: `expected_occupancy` is set.
pub const IPVSCT_CAPACITY_HAS_EXPECTED_OCCUPANCY: u32 = 0x20;
/// `ipvsct_capacity.fields`: `mean_seconds_in_table` is set.
pub const IPVSCT_CAPACITY_HAS_MEAN_SECONDS: u32 = 0x40;
/// `ipvsct_capacity.fields`: `headroom_per_second` is set.
pub const IPVSCT_CAPACITY_HAS_HEADROOM_PER_SECOND: u32 = 0x80;
/// `ipvsct_capacity.fields`: `seconds_until_full` is set (the table is growing).
pub const IPVSCT_CAPACITY_HAS_SECONDS_UNTIL_FULL: u32 = 0x100;
/// `ipvsct_capacity.fields`: `dominant_proto`, `dominant_state` and `dominant_share` are set.
pub const IPVSCT_CAPACITY_HAS_DOMINANT_STATE: u32 = 0x200;
/// `ipvsct_capacity.fields`: rows or strings did not fit (`*_len` < `*_total`, or a text cut).
pub const IPVSCT_CAPACITY_TRUNCATED: u32 = 0x80000000;

/// Per-CPU trouble counters, summed over the CPUs.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_capacity_trouble {
    /// Packets dropped because the table was full (`drop`).
    pub drop: u64,
    /// Entries evicted early to make room (`early_drop`).
    pub early_drop: u64,
    /// Failed insertions (`insert_failed`).
    pub insert_failed: u64,
    /// Resolved insertion clashes (`clash_resolve`).
    pub clash_resolve: u64,
}

impl From<&TroubleCounters> for ipvsct_capacity_trouble {
    fn from(t: &TroubleCounters) -> Self {
        ipvsct_capacity_trouble {
            drop: t.drop,
            early_drop: t.early_drop,
            insert_failed: t.insert_failed,
            clash_resolve: t.clash_resolve,
        }
    }
}

/// Entries of one protocol and state, with the state's timeout.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_capacity_state {
    /// Entries in this state.
    pub count: u64,
    /// Full timeout of the state under the policy in force, seconds (IPVSCT_TIMEOUT_UNSET if unknown).
    pub state_timeout: u32,
    /// Most seconds left among these entries (IPVSCT_TIMEOUT_UNSET if unknown).
    pub max_seconds_left: u32,
    /// L4 protocol name ("tcp", "udp", …) or number.
    pub proto: [c_char; IPVSCT_CAPACITY_PROTO_LEN],
    /// State name ("TIME_WAIT", "UNREPLIED", …) or "-" for stateless protocols.
    pub state_name: [c_char; IPVSCT_STATE_NAME_LEN],
}

impl ipvsct_capacity_state {
    /// The row for `s` and whether a name was cut.
    fn from_core(s: &StateCount) -> (Self, bool) {
        let (proto, cut_proto) = cstr::fixed(&s.proto);
        let (state_name, cut_state) = cstr::fixed(&s.state);
        let row = ipvsct_capacity_state {
            count: s.count,
            state_timeout: s.state_timeout.unwrap_or(IPVSCT_TIMEOUT_UNSET),
            max_seconds_left: s.max_seconds_left.unwrap_or(IPVSCT_TIMEOUT_UNSET),
            proto,
            state_name,
        };
        (row, cut_proto || cut_state)
    }

    const ZERO: Self = ipvsct_capacity_state {
        count: 0,
        state_timeout: 0,
        max_seconds_left: 0,
        proto: [0; IPVSCT_CAPACITY_PROTO_LEN],
        state_name: [0; IPVSCT_STATE_NAME_LEN],
    };
}

/// A suggested change (never applied by the library) and its computed effect.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_capacity_suggestion {
    /// The value to set.
    pub value: u64,
    /// The sysctl to change ("net.netfilter.nf_conntrack_max", …).
    pub setting: [c_char; IPVSCT_CAPACITY_SETTING_LEN],
    /// What the change does, in numbers.
    pub effect: [c_char; IPVSCT_CAPACITY_TEXT_LEN],
}

impl ipvsct_capacity_suggestion {
    /// The row for `s` and whether a text was cut.
    fn from_core(s: &Suggestion) -> (Self, bool) {
        let (setting, cut_setting) = cstr::fixed(&s.setting);
        let (effect, cut_effect) = cstr::fixed(&s.effect);
        let row = ipvsct_capacity_suggestion {
            value: s.value,
            setting,
            effect,
        };
        (row, cut_setting || cut_effect)
    }

    const ZERO: Self = ipvsct_capacity_suggestion {
        value: 0,
        setting: [0; IPVSCT_CAPACITY_SETTING_LEN],
        effect: [0; IPVSCT_CAPACITY_TEXT_LEN],
    };
}

/// The capacity model of a conntrack table: size, per-state counts, measured rates and the
/// limits Little's law puts on them (occupancy = rate × time in the table).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_capacity {
    /// Entries now.
    pub entries: u64,
    /// `nf_conntrack_max`.
    pub max_entries: u64,
    /// `nf_conntrack_buckets` (hash table size).
    pub buckets: u64,
    /// max_entries − entries.
    pub headroom_entries: u64,
    /// entries / max_entries.
    pub fill_ratio: f64,
    /// Highest sustainable rate of short connections: max_entries / TIME_WAIT timeout.
    pub max_short_connections_per_second: f64,
    /// New connections per second over the interval.
    pub new_per_second: f64,
    /// Growth of the entry count per second over the interval.
    pub growth_per_second: f64,
    /// Steady-state occupancy at the measured rate: rate × TIME_WAIT timeout.
    pub expected_occupancy: f64,
    /// Average seconds an entry spends in the table (Little's law: entries / rate).
    pub mean_seconds_in_table: f64,
    /// How many more new connections per second the table takes before it is full.
    pub headroom_per_second: f64,
    /// Seconds until the table is full at the measured growth.
    pub seconds_until_full: f64,
    /// The interval the rates were measured over, seconds (as elapsed).
    pub interval_seconds: f64,
    /// Share of the table held by the dominant protocol/state (0..1).
    pub dominant_share: f64,
    /// Trouble counters now.
    pub trouble: ipvsct_capacity_trouble,
    /// Growth of the trouble counters over the interval.
    pub trouble_growth: ipvsct_capacity_trouble,
    /// `IPVSCT_CAPACITY_HAS_*` bits and IPVSCT_CAPACITY_TRUNCATED.
    pub fields: u32,
    /// Seconds a short TCP connection stays after it closes (the TIME_WAIT timeout).
    pub short_connection_dwell_seconds: u32,
    /// How the rate was measured (`IPVSCT_CAPACITY_RATE_*`).
    pub rate_source: u32,
    /// 1 if NEW events were lost or only counters were available: the rate is a lower bound.
    pub rate_is_lower_bound: u32,
    /// Rows written to `states`.
    pub states_len: u32,
    /// Protocol/state rows the model has (more than `states_len` if they did not fit).
    pub states_total: u32,
    /// Rows written to `warnings`.
    pub warnings_len: u32,
    /// Warnings the model has.
    pub warnings_total: u32,
    /// Rows written to `suggestions`.
    pub suggestions_len: u32,
    /// Suggestions the model has.
    pub suggestions_total: u32,
    /// Protocol of the state holding most entries.
    pub dominant_proto: [c_char; IPVSCT_CAPACITY_PROTO_LEN],
    /// The state holding most entries.
    pub dominant_state: [c_char; IPVSCT_STATE_NAME_LEN],
    /// Entries by protocol and state (`states_len` rows, TCP first).
    pub states: [ipvsct_capacity_state; IPVSCT_CAPACITY_STATES_MAX],
    /// Suggested changes (`suggestions_len` rows).
    pub suggestions: [ipvsct_capacity_suggestion; IPVSCT_CAPACITY_SUGGESTIONS_MAX],
    /// Warnings in plain words (`warnings_len` NUL-terminated rows).
    pub warnings: [[c_char; IPVSCT_CAPACITY_TEXT_LEN]; IPVSCT_CAPACITY_WARNINGS_MAX],
}

fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl ipvsct_capacity {
    /// A value with every member zero.
    fn zero() -> Self {
        ipvsct_capacity {
            entries: 0,
            max_entries: 0,
            buckets: 0,
            headroom_entries: 0,
            fill_ratio: 0.0,
            max_short_connections_per_second: 0.0,
            new_per_second: 0.0,
            growth_per_second: 0.0,
            expected_occupancy: 0.0,
            mean_seconds_in_table: 0.0,
            headroom_per_second: 0.0,
            seconds_until_full: 0.0,
            interval_seconds: 0.0,
            dominant_share: 0.0,
            trouble: ipvsct_capacity_trouble::default(),
            trouble_growth: ipvsct_capacity_trouble::default(),
            fields: 0,
            short_connection_dwell_seconds: 0,
            rate_source: IPVSCT_CAPACITY_RATE_NONE,
            rate_is_lower_bound: 0,
            states_len: 0,
            states_total: 0,
            warnings_len: 0,
            warnings_total: 0,
            suggestions_len: 0,
            suggestions_total: 0,
            dominant_proto: [0; IPVSCT_CAPACITY_PROTO_LEN],
            dominant_state: [0; IPVSCT_STATE_NAME_LEN],
            states: [ipvsct_capacity_state::ZERO; IPVSCT_CAPACITY_STATES_MAX],
            suggestions: [ipvsct_capacity_suggestion::ZERO; IPVSCT_CAPACITY_SUGGESTIONS_MAX],
            warnings: [[0; IPVSCT_CAPACITY_TEXT_LEN]; IPVSCT_CAPACITY_WARNINGS_MAX],
        }
    }
}

impl From<&Report> for ipvsct_capacity {
    fn from(r: &Report) -> Self {
        let o = &r.observation;
        let mut c = ipvsct_capacity::zero();
        let mut fields = 0u32;
        let mut cut = false;
        let mut opt = |bit: u32, v: Option<f64>| {
            if v.is_some() {
                fields |= bit;
            }
            v.unwrap_or(0.0)
        };
        c.max_short_connections_per_second = opt(
            IPVSCT_CAPACITY_HAS_MAX_SHORT_RATE,
            r.max_short_connections_per_second,
        );
        c.new_per_second = opt(IPVSCT_CAPACITY_HAS_NEW_PER_SECOND, o.new_per_second);
        c.growth_per_second = opt(IPVSCT_CAPACITY_HAS_GROWTH, o.growth_per_second);
        c.expected_occupancy = opt(IPVSCT_CAPACITY_HAS_EXPECTED_OCCUPANCY, r.expected_occupancy);
        c.mean_seconds_in_table = opt(IPVSCT_CAPACITY_HAS_MEAN_SECONDS, r.mean_seconds_in_table);
        c.headroom_per_second = opt(
            IPVSCT_CAPACITY_HAS_HEADROOM_PER_SECOND,
            r.headroom_per_second,
        );
        c.seconds_until_full = opt(IPVSCT_CAPACITY_HAS_SECONDS_UNTIL_FULL, r.seconds_until_full);
        c.entries = o.entries;
        c.max_entries = o.max_entries;
        if let Some(b) = o.buckets {
            c.buckets = b;
            fields |= IPVSCT_CAPACITY_HAS_BUCKETS;
        }
        c.headroom_entries = r.headroom_entries;
        c.fill_ratio = r.fill_ratio;
        c.interval_seconds = o.interval_seconds;
        if let Some((proto, state, share)) = &r.dominant_state {
            let (p, cut_p) = cstr::fixed(proto);
            let (s, cut_s) = cstr::fixed(state);
            c.dominant_proto = p;
            c.dominant_state = s;
            c.dominant_share = *share;
            cut |= cut_p || cut_s;
            fields |= IPVSCT_CAPACITY_HAS_DOMINANT_STATE;
        }
        c.trouble = (&o.trouble).into();
        c.trouble_growth = (&o.trouble_growth).into();
        if let Some(d) = r.short_connection_dwell_seconds {
            c.short_connection_dwell_seconds = d;
            fields |= IPVSCT_CAPACITY_HAS_SHORT_DWELL;
        }
        c.rate_source = match o.rate_source {
            None => IPVSCT_CAPACITY_RATE_NONE,
            Some("events") => IPVSCT_CAPACITY_RATE_EVENTS,
            Some(_) => IPVSCT_CAPACITY_RATE_COUNTERS,
        };
        c.rate_is_lower_bound = u32::from(o.rate_is_lower_bound);

        for (slot, s) in c.states.iter_mut().zip(&o.states) {
            let (row, cut_row) = ipvsct_capacity_state::from_core(s);
            *slot = row;
            cut |= cut_row;
        }
        let states_len = o.states.len().min(IPVSCT_CAPACITY_STATES_MAX);
        for (slot, s) in c.suggestions.iter_mut().zip(&r.suggestions) {
            let (row, cut_row) = ipvsct_capacity_suggestion::from_core(s);
            *slot = row;
            cut |= cut_row;
        }
        let suggestions_len = r.suggestions.len().min(IPVSCT_CAPACITY_SUGGESTIONS_MAX);
        for (slot, w) in c.warnings.iter_mut().zip(&r.warnings) {
            cut |= cstr::fill(slot, w);
        }
        let warnings_len = r.warnings.len().min(IPVSCT_CAPACITY_WARNINGS_MAX);
        cut |= states_len < o.states.len()
            || suggestions_len < r.suggestions.len()
            || warnings_len < r.warnings.len();
        c.states_len = count_u32(states_len);
        c.states_total = count_u32(o.states.len());
        c.suggestions_len = count_u32(suggestions_len);
        c.suggestions_total = count_u32(r.suggestions.len());
        c.warnings_len = count_u32(warnings_len);
        c.warnings_total = count_u32(r.warnings.len());
        if cut {
            fields |= IPVSCT_CAPACITY_TRUNCATED;
        }
        c.fields = fields;
        c
    }
}

/// Observes the table for `interval_ms` milliseconds and writes the capacity model to
/// `*out`: entries and `nf_conntrack_max`, entries per protocol/state with the state
/// timeouts in force, the rate of new connections (NEW events counted during the
/// interval), Little's-law limits, trouble counters, warnings and suggested settings.
///
/// `interval_ms` 0 skips the rate measurement (no rate fields set). The call blocks for
/// the interval and the handle stays locked meanwhile (other threads' calls wait).
///
/// # Safety
/// `ct` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_capacity(
    ct: *const ipvsct_conntrack,
    interval_ms: u32,
    out: *mut ipvsct_capacity,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or a live handle / writable struct (contract above).
        let (ct, out) = unsafe { (in_ref(ct, "ct")?, Out::new(out, "out")?) };
        let interval = Duration::from_millis(u64::from(interval_ms));
        let report = capacity::observe(&mut ct.lock()?.ct, interval)?;
        out.write((&report).into());
        Ok(IPVSCT_OK)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipvs_conntrack::capacity::Observation;
    use ipvs_conntrack::conntrack::{StateTimeouts, TimeoutSource};

    fn text(b: &[c_char]) -> String {
        let bytes: Vec<u8> = b
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8(bytes).unwrap()
    }

    fn observation(states: usize, rate: Option<f64>) -> Observation {
        let mut t = StateTimeouts::empty(TimeoutSource::Sysctl);
        t.tcp.time_wait = Some(120);
        Observation {
            entries: 100_000,
            max_entries: 131_072,
            buckets: None,
            states: (0..states)
                .map(|i| StateCount {
                    proto: if i == 0 { "tcp".into() } else { i.to_string() },
                    state: if i == 0 {
                        "TIME_WAIT".into()
                    } else {
                        "-".into()
                    },
                    count: if i == 0 { 99_000 } else { 1 },
                    state_timeout: (i == 0).then_some(120),
                    max_seconds_left: (i == 0).then_some(119),
                })
                .collect(),
            timeouts: t,
            new_per_second: rate,
            rate_source: rate.map(|_| "events"),
            rate_is_lower_bound: false,
            growth_per_second: rate.map(|_| 10.0),
            interval_seconds: 5.0,
            trouble: TroubleCounters {
                drop: 3,
                ..TroubleCounters::default()
            },
            trouble_growth: TroubleCounters {
                drop: 2,
                ..TroubleCounters::default()
            },
        }
    }

    #[test]
    fn report_with_rate_fills_every_member() {
        let r = Report::compute(observation(2, Some(1000.0)));
        let c = ipvsct_capacity::from(&r);
        assert_eq!(
            (c.entries, c.max_entries, c.headroom_entries),
            (100_000, 131_072, 31_072)
        );
        assert_eq!(c.short_connection_dwell_seconds, 120);
        assert!((c.max_short_connections_per_second - 131_072.0 / 120.0).abs() < 1e-9);
        assert_eq!(c.new_per_second, 1000.0);
        assert_eq!(c.expected_occupancy, 120_000.0);
        assert_eq!(c.mean_seconds_in_table, 100.0);
        assert_eq!(c.seconds_until_full, 3107.2);
        assert_eq!(c.rate_source, IPVSCT_CAPACITY_RATE_EVENTS);
        assert_eq!((c.trouble.drop, c.trouble_growth.drop), (3, 2));
        assert_eq!(
            c.fields,
            IPVSCT_CAPACITY_HAS_SHORT_DWELL
                | IPVSCT_CAPACITY_HAS_MAX_SHORT_RATE
                | IPVSCT_CAPACITY_HAS_NEW_PER_SECOND
                | IPVSCT_CAPACITY_HAS_GROWTH
                | IPVSCT_CAPACITY_HAS_EXPECTED_OCCUPANCY
                | IPVSCT_CAPACITY_HAS_MEAN_SECONDS
                | IPVSCT_CAPACITY_HAS_HEADROOM_PER_SECOND
                | IPVSCT_CAPACITY_HAS_SECONDS_UNTIL_FULL
                | IPVSCT_CAPACITY_HAS_DOMINANT_STATE
        );
        assert_eq!(
            (text(&c.dominant_proto), text(&c.dominant_state)),
            ("tcp".into(), "TIME_WAIT".into())
        );
        assert!((c.dominant_share - 0.99).abs() < 1e-12);
        assert_eq!((c.states_len, c.states_total), (2, 2));
        let s = &c.states[0];
        assert_eq!(
            (s.count, s.state_timeout, s.max_seconds_left),
            (99_000, 120, 119)
        );
        let s = &c.states[1];
        assert_eq!(
            (text(&s.proto), text(&s.state_name)),
            ("1".into(), "-".into())
        );
        assert_eq!(
            (s.state_timeout, s.max_seconds_left),
            (IPVSCT_TIMEOUT_UNSET, IPVSCT_TIMEOUT_UNSET)
        );
        assert_eq!((c.suggestions_len, c.suggestions_total), (2, 2));
        assert_eq!(
            text(&c.suggestions[0].setting),
            "net.netfilter.nf_conntrack_max"
        );
        assert_eq!(c.suggestions[0].value, 171_429);
        assert_eq!(text(&c.suggestions[1].effect), r.suggestions[1].effect);
        assert_eq!(c.warnings_len, c.warnings_total);
        assert_eq!(c.warnings_total as usize, r.warnings.len());
        assert!(
            text(&c.warnings[0]).starts_with("2 packets were dropped"),
            "{}",
            text(&c.warnings[0])
        );
        assert_eq!(
            c.warnings[c.warnings_len as usize],
            [0; IPVSCT_CAPACITY_TEXT_LEN]
        );
    }

    #[test]
    fn many_states_are_cut_and_flagged_and_no_rate_leaves_rate_fields_unset() {
        let r = Report::compute(observation(40, None));
        let c = ipvsct_capacity::from(&r);
        assert_eq!((c.states_len, c.states_total), (32, 40));
        assert_ne!(c.fields & IPVSCT_CAPACITY_TRUNCATED, 0);
        assert_eq!(text(&c.states[31].proto), "31");
        assert_eq!(c.rate_source, IPVSCT_CAPACITY_RATE_NONE);
        assert_eq!(c.fields & IPVSCT_CAPACITY_HAS_NEW_PER_SECOND, 0);
        assert_eq!(c.fields & IPVSCT_CAPACITY_HAS_GROWTH, 0);
        assert_eq!((c.new_per_second, c.growth_per_second), (0.0, 0.0));
        // Without a rate the headroom is the whole sustainable rate.
        assert_eq!(c.headroom_per_second, c.max_short_connections_per_second);
    }

    #[test]
    fn null_arguments_are_rejected() {
        let mut c = ipvsct_capacity::zero();
        c.entries = 7;
        // SAFETY: NULL handle and output are allowed and reported; `c` is writable.
        unsafe {
            assert_eq!(
                ipvsct_conntrack_capacity(std::ptr::null(), 0, &mut c),
                IPVSCT_ERR_NULL_ARGUMENT
            );
        }
        assert_eq!(c.entries, 7, "output untouched on failure");
    }
}
