//! Table statistics: global count/max (IPCTNL_MSG_CT_GET_STATS) and per-CPU counters
//! (IPCTNL_MSG_CT_GET_STATS_CPU).

use crate::conntrack::wire::*;
use crate::error::{AttrPath, DecodeError, DecodeErrorKind};
use crate::netlink::attr::{Attrs, RawAttr, Seen};
use crate::netlink::frame::{Frame, NLMSG_HDRLEN};
use crate::netlink::nfnetlink::{NfGenMsg, NFGENMSG_LEN};

/// Global table size (CTA_STATS_GLOBAL_*).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct GlobalStats {
    /// CTA_STATS_GLOBAL_ENTRIES: entries in the table now.
    pub entries: u32,
    /// CTA_STATS_GLOBAL_MAX_ENTRIES: `nf_conntrack_max`.
    pub max_entries: Option<u32>,
    /// Attributes this library does not know.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Vec::is_empty"))]
    pub unknown: Vec<RawAttr>,
}

/// Per-CPU counters (CTA_STATS_*); the CPU is the message's `res_id`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CpuStats {
    /// CPU number.
    pub cpu: u16,
    /// CTA_STATS_SEARCHED (no longer sent).
    pub searched: Option<u32>,
    /// CTA_STATS_FOUND.
    pub found: Option<u32>,
    /// CTA_STATS_NEW (no longer sent).
    pub new: Option<u32>,
    /// CTA_STATS_INVALID.
    pub invalid: Option<u32>,
    /// CTA_STATS_IGNORE (no longer sent).
    pub ignore: Option<u32>,
    /// CTA_STATS_DELETE (no longer sent).
    pub delete: Option<u32>,
    /// CTA_STATS_DELETE_LIST (no longer sent).
    pub delete_list: Option<u32>,
    /// CTA_STATS_INSERT.
    pub insert: Option<u32>,
    /// CTA_STATS_INSERT_FAILED.
    pub insert_failed: Option<u32>,
    /// CTA_STATS_DROP.
    pub drop: Option<u32>,
    /// CTA_STATS_EARLY_DROP.
    pub early_drop: Option<u32>,
    /// CTA_STATS_ERROR.
    pub error: Option<u32>,
    /// CTA_STATS_SEARCH_RESTART.
    pub search_restart: Option<u32>,
    /// CTA_STATS_CLASH_RESOLVE.
    pub clash_resolve: Option<u32>,
    /// CTA_STATS_CHAIN_TOOLONG.
    pub chaintoolong: Option<u32>,
    /// Attributes this library does not know.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Vec::is_empty"))]
    pub unknown: Vec<RawAttr>,
}

fn body<'a>(frame: &Frame<'a>) -> Result<(NfGenMsg, &'a [u8], usize), DecodeError> {
    let base = frame.offset + NLMSG_HDRLEN;
    let gen = NfGenMsg::parse(frame.payload, base)?;
    Ok((
        gen,
        frame.payload.get(NFGENMSG_LEN..).unwrap_or_default(),
        base + NFGENMSG_LEN,
    ))
}

impl GlobalStats {
    /// Decodes an IPCTNL_MSG_CT_GET_STATS answer.
    pub fn from_frame(frame: &Frame<'_>) -> Result<GlobalStats, DecodeError> {
        let (_, body, off) = body(frame)?;
        Self::parse(body, off)
            .map_err(|e| e.resolve(body, off, CTA_STATS_GLOBAL_NAMES, child_names))
    }

    fn parse(body: &[u8], off: usize) -> Result<GlobalStats, DecodeError> {
        let mut s = GlobalStats::default();
        let mut entries = None;
        let mut seen = Seen::default();
        for a in Attrs::new(body, off, AttrPath::ROOT, CTA_STATS_GLOBAL_NAMES) {
            let a = a?;
            seen.check(&a)?;
            match a.kind() {
                CTA_STATS_GLOBAL_ENTRIES => entries = Some(a.be32()?),
                CTA_STATS_GLOBAL_MAX_ENTRIES => s.max_entries = Some(a.be32()?),
                _ => s.unknown.push(a.to_raw()),
            }
        }
        s.entries = entries
            .ok_or_else(|| DecodeError::new(DecodeErrorKind::Missing, AttrPath::ROOT, off))?;
        Ok(s)
    }
}

impl CpuStats {
    /// Decodes one IPCTNL_MSG_CT_GET_STATS_CPU answer message.
    pub fn from_frame(frame: &Frame<'_>) -> Result<CpuStats, DecodeError> {
        let (gen, body, off) = body(frame)?;
        Self::parse(gen, body, off).map_err(|e| e.resolve(body, off, CTA_STATS_NAMES, child_names))
    }

    fn parse(gen: NfGenMsg, body: &[u8], off: usize) -> Result<CpuStats, DecodeError> {
        let mut s = CpuStats {
            cpu: gen.res_id,
            ..CpuStats::default()
        };
        let mut seen = Seen::default();
        for a in Attrs::new(body, off, AttrPath::ROOT, CTA_STATS_NAMES) {
            let a = a?;
            seen.check(&a)?;
            let slot = match a.kind() {
                CTA_STATS_SEARCHED => &mut s.searched,
                CTA_STATS_FOUND => &mut s.found,
                CTA_STATS_NEW => &mut s.new,
                CTA_STATS_INVALID => &mut s.invalid,
                CTA_STATS_IGNORE => &mut s.ignore,
                CTA_STATS_DELETE => &mut s.delete,
                CTA_STATS_DELETE_LIST => &mut s.delete_list,
                CTA_STATS_INSERT => &mut s.insert,
                CTA_STATS_INSERT_FAILED => &mut s.insert_failed,
                CTA_STATS_DROP => &mut s.drop,
                CTA_STATS_EARLY_DROP => &mut s.early_drop,
                CTA_STATS_ERROR => &mut s.error,
                CTA_STATS_SEARCH_RESTART => &mut s.search_restart,
                CTA_STATS_CLASH_RESOLVE => &mut s.clash_resolve,
                CTA_STATS_CHAIN_TOOLONG => &mut s.chaintoolong,
                _ => {
                    s.unknown.push(a.to_raw());
                    continue;
                }
            };
            *slot = Some(a.be32()?);
        }
        Ok(s)
    }

    /// Sums counters over CPUs (absent values count as 0).
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a CpuStats>) -> CpuStats {
        let mut t = CpuStats::default();
        let add = |a: &mut Option<u32>, b: Option<u32>| {
            if let Some(b) = b {
                *a = Some(a.unwrap_or(0).wrapping_add(b));
            }
        };
        for s in all {
            add(&mut t.searched, s.searched);
            add(&mut t.found, s.found);
            add(&mut t.new, s.new);
            add(&mut t.invalid, s.invalid);
            add(&mut t.ignore, s.ignore);
            add(&mut t.delete, s.delete);
            add(&mut t.delete_list, s.delete_list);
            add(&mut t.insert, s.insert);
            add(&mut t.insert_failed, s.insert_failed);
            add(&mut t.drop, s.drop);
            add(&mut t.early_drop, s.early_drop);
            add(&mut t.error, s.error);
            add(&mut t.search_restart, s.search_restart);
            add(&mut t.clash_resolve, s.clash_resolve);
            add(&mut t.chaintoolong, s.chaintoolong);
        }
        t
    }
}
