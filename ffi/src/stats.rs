//! Table statistics in C form: global count/max and per-CPU counters.

use ipvs_conntrack::conntrack::{CpuStats, GlobalStats};

/// `ipvsct_ct_global_stats.fields`: `max_entries` is set.
pub const IPVSCT_CT_GLOBAL_STATS_HAS_MAX: u32 = 0x1;

/// Entries in the table and its maximum (`nf_conntrack_max`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_ct_global_stats {
    /// Entries in the table now.
    pub entries: u32,
    /// `nf_conntrack_max`.
    pub max_entries: u32,
    /// `IPVSCT_CT_GLOBAL_STATS_HAS_*` bits.
    pub fields: u32,
    /// Zero.
    pub reserved: u32,
}

impl From<&GlobalStats> for ipvsct_ct_global_stats {
    fn from(s: &GlobalStats) -> Self {
        ipvsct_ct_global_stats {
            entries: s.entries,
            max_entries: s.max_entries.unwrap_or(0),
            fields: if s.max_entries.is_some() {
                IPVSCT_CT_GLOBAL_STATS_HAS_MAX
            } else {
                0
            },
            reserved: 0,
        }
    }
}

/// `ipvsct_ct_cpu_stats.fields`: `searched` is set (bit 1 << CTA_STATS_SEARCHED; no longer sent).
pub const IPVSCT_CT_CPU_STATS_HAS_SEARCHED: u32 = 1 << 1;
/// `ipvsct_ct_cpu_stats.fields`: `found` is set.
pub const IPVSCT_CT_CPU_STATS_HAS_FOUND: u32 = 1 << 2;
/// `ipvsct_ct_cpu_stats.fields`: `created` is set (CTA_STATS_NEW; no longer sent).
pub const IPVSCT_CT_CPU_STATS_HAS_CREATED: u32 = 1 << 3;
/// `ipvsct_ct_cpu_stats.fields`: `invalid` is set.
pub const IPVSCT_CT_CPU_STATS_HAS_INVALID: u32 = 1 << 4;
/// `ipvsct_ct_cpu_stats.fields`: `ignore` is set (no longer sent).
pub const IPVSCT_CT_CPU_STATS_HAS_IGNORE: u32 = 1 << 5;
/// `ipvsct_ct_cpu_stats.fields`: `deleted` is set (CTA_STATS_DELETE; no longer sent).
pub const IPVSCT_CT_CPU_STATS_HAS_DELETED: u32 = 1 << 6;
/// `ipvsct_ct_cpu_stats.fields`: `delete_list` is set (no longer sent).
pub const IPVSCT_CT_CPU_STATS_HAS_DELETE_LIST: u32 = 1 << 7;
/// `ipvsct_ct_cpu_stats.fields`: `insert` is set.
pub const IPVSCT_CT_CPU_STATS_HAS_INSERT: u32 = 1 << 8;
/// `ipvsct_ct_cpu_stats.fields`: `insert_failed` is set.
pub const IPVSCT_CT_CPU_STATS_HAS_INSERT_FAILED: u32 = 1 << 9;
/// `ipvsct_ct_cpu_stats.fields`: `drop` is set.
pub const IPVSCT_CT_CPU_STATS_HAS_DROP: u32 = 1 << 10;
/// `ipvsct_ct_cpu_stats.fields`: `early_drop` is set.
pub const IPVSCT_CT_CPU_STATS_HAS_EARLY_DROP: u32 = 1 << 11;
/// `ipvsct_ct_cpu_stats.fields`: `error` is set.
pub const IPVSCT_CT_CPU_STATS_HAS_ERROR: u32 = 1 << 12;
/// `ipvsct_ct_cpu_stats.fields`: `search_restart` is set.
pub const IPVSCT_CT_CPU_STATS_HAS_SEARCH_RESTART: u32 = 1 << 13;
/// `ipvsct_ct_cpu_stats.fields`: `clash_resolve` is set.
pub const IPVSCT_CT_CPU_STATS_HAS_CLASH_RESOLVE: u32 = 1 << 14;
/// `ipvsct_ct_cpu_stats.fields`: `chaintoolong` is set.
pub const IPVSCT_CT_CPU_STATS_HAS_CHAINTOOLONG: u32 = 1 << 15;
/// `ipvsct_ct_cpu_stats.fields`: the message carried counters this struct does not hold.
pub const IPVSCT_CT_CPU_STATS_HAS_MORE: u32 = 1 << 30;

/// Conntrack counters of one CPU (CTA_STATS_*); which are set is in `fields`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_ct_cpu_stats {
    /// `IPVSCT_CT_CPU_STATS_HAS_*` bits.
    pub fields: u32,
    /// CPU number.
    pub cpu: u16,
    /// Zero.
    pub reserved: u16,
    /// CTA_STATS_SEARCHED.
    pub searched: u32,
    /// CTA_STATS_FOUND.
    pub found: u32,
    /// CTA_STATS_NEW.
    pub created: u32,
    /// CTA_STATS_INVALID.
    pub invalid: u32,
    /// CTA_STATS_IGNORE.
    pub ignore: u32,
    /// CTA_STATS_DELETE.
    pub deleted: u32,
    /// CTA_STATS_DELETE_LIST.
    pub delete_list: u32,
    /// CTA_STATS_INSERT.
    pub insert: u32,
    /// CTA_STATS_INSERT_FAILED.
    pub insert_failed: u32,
    /// CTA_STATS_DROP.
    pub drop: u32,
    /// CTA_STATS_EARLY_DROP.
    pub early_drop: u32,
    /// CTA_STATS_ERROR.
    pub error: u32,
    /// CTA_STATS_SEARCH_RESTART.
    pub search_restart: u32,
    /// CTA_STATS_CLASH_RESOLVE.
    pub clash_resolve: u32,
    /// CTA_STATS_CHAIN_TOOLONG.
    pub chaintoolong: u32,
}

impl From<&CpuStats> for ipvsct_ct_cpu_stats {
    fn from(s: &CpuStats) -> Self {
        let mut fields = 0u32;
        let mut v = |bit: u32, x: Option<u32>| {
            if x.is_some() {
                fields |= bit;
            }
            x.unwrap_or(0)
        };
        let mut c = ipvsct_ct_cpu_stats {
            fields: 0,
            cpu: s.cpu,
            reserved: 0,
            searched: v(IPVSCT_CT_CPU_STATS_HAS_SEARCHED, s.searched),
            found: v(IPVSCT_CT_CPU_STATS_HAS_FOUND, s.found),
            created: v(IPVSCT_CT_CPU_STATS_HAS_CREATED, s.new),
            invalid: v(IPVSCT_CT_CPU_STATS_HAS_INVALID, s.invalid),
            ignore: v(IPVSCT_CT_CPU_STATS_HAS_IGNORE, s.ignore),
            deleted: v(IPVSCT_CT_CPU_STATS_HAS_DELETED, s.delete),
            delete_list: v(IPVSCT_CT_CPU_STATS_HAS_DELETE_LIST, s.delete_list),
            insert: v(IPVSCT_CT_CPU_STATS_HAS_INSERT, s.insert),
            insert_failed: v(IPVSCT_CT_CPU_STATS_HAS_INSERT_FAILED, s.insert_failed),
            drop: v(IPVSCT_CT_CPU_STATS_HAS_DROP, s.drop),
            early_drop: v(IPVSCT_CT_CPU_STATS_HAS_EARLY_DROP, s.early_drop),
            error: v(IPVSCT_CT_CPU_STATS_HAS_ERROR, s.error),
            search_restart: v(IPVSCT_CT_CPU_STATS_HAS_SEARCH_RESTART, s.search_restart),
            clash_resolve: v(IPVSCT_CT_CPU_STATS_HAS_CLASH_RESOLVE, s.clash_resolve),
            chaintoolong: v(IPVSCT_CT_CPU_STATS_HAS_CHAINTOOLONG, s.chaintoolong),
        };
        if !s.unknown.is_empty() {
            fields |= IPVSCT_CT_CPU_STATS_HAS_MORE;
        }
        c.fields = fields;
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_bits_follow_the_kernel_attribute_numbers() {
        let s = CpuStats {
            cpu: 3,
            found: Some(5),
            insert: Some(9),
            chaintoolong: Some(1),
            ..CpuStats::default()
        };
        let c = ipvsct_ct_cpu_stats::from(&s);
        assert_eq!(c.cpu, 3);
        assert_eq!((c.found, c.insert, c.chaintoolong, c.drop), (5, 9, 1, 0));
        assert_eq!(c.fields, (1 << 2) | (1 << 8) | (1 << 15));
        let g = ipvsct_ct_global_stats::from(&GlobalStats {
            entries: 12,
            max_entries: Some(65536),
            unknown: vec![],
        });
        assert_eq!((g.entries, g.max_entries, g.fields), (12, 65536, 1));
    }
}
