//! Service and destination statistics: counters and rates (IPVS_*_ATTR_STATS / STATS64).

use crate::error::DecodeError;
use crate::ipvs::wire::*;
use crate::netlink::attr::{Attr, Seen};

/// Which nest a [`Stats`] value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum StatsWidth {
    /// IPVS_*_ATTR_STATS: 32-bit counters (bytes are 64-bit) and 32-bit rates.
    Bits32,
    /// IPVS_*_ATTR_STATS64: every counter and rate 64-bit.
    Bits64,
}

/// Counters and rates of a service or destination.
///
/// Counters count since creation (or the last zero); rates are the kernel's
/// estimator values (per second, smoothed over a few seconds).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Stats {
    /// Which nest these values came from.
    pub width: StatsWidth,
    /// Connections scheduled.
    pub conns: u64,
    /// Incoming packets.
    pub inpkts: u64,
    /// Outgoing packets.
    pub outpkts: u64,
    /// Incoming bytes.
    pub inbytes: u64,
    /// Outgoing bytes.
    pub outbytes: u64,
    /// Connection rate (connections per second).
    pub cps: u64,
    /// Incoming packet rate (packets per second).
    pub inpps: u64,
    /// Outgoing packet rate (packets per second).
    pub outpps: u64,
    /// Incoming byte rate (bytes per second).
    pub inbps: u64,
    /// Outgoing byte rate (bytes per second).
    pub outbps: u64,
    /// Attributes of the nest this library does not know (kernel order; padding excluded).
    pub unknown: Vec<crate::netlink::attr::RawAttr>,
}

impl Stats {
    /// All-zero statistics of `width`.
    pub fn zero(width: StatsWidth) -> Stats {
        Stats {
            width,
            conns: 0,
            inpkts: 0,
            outpkts: 0,
            inbytes: 0,
            outbytes: 0,
            cps: 0,
            inpps: 0,
            outpps: 0,
            inbps: 0,
            outbps: 0,
            unknown: Vec::new(),
        }
    }

    /// Decodes a STATS (32-bit) or STATS64 nest.
    ///
    /// Each value is read at the size it has on the wire (4 or 8 bytes), so a
    /// 32-bit nest with 64-bit byte counters decodes as the kernel sends it.
    pub fn decode(nest: &Attr<'_>, width: StatsWidth) -> Result<Stats, DecodeError> {
        let mut s = Stats::zero(width);
        let mut seen = Seen::default();
        for attr in nest.nested(IPVS_STATS_ATTR_NAMES) {
            let attr = attr?;
            if attr.kind() == IPVS_STATS_ATTR_PAD {
                continue;
            }
            seen.check(&attr)?;
            let slot = match attr.kind() {
                IPVS_STATS_ATTR_CONNS => &mut s.conns,
                IPVS_STATS_ATTR_INPKTS => &mut s.inpkts,
                IPVS_STATS_ATTR_OUTPKTS => &mut s.outpkts,
                IPVS_STATS_ATTR_INBYTES => &mut s.inbytes,
                IPVS_STATS_ATTR_OUTBYTES => &mut s.outbytes,
                IPVS_STATS_ATTR_CPS => &mut s.cps,
                IPVS_STATS_ATTR_INPPS => &mut s.inpps,
                IPVS_STATS_ATTR_OUTPPS => &mut s.outpps,
                IPVS_STATS_ATTR_INBPS => &mut s.inbps,
                IPVS_STATS_ATTR_OUTBPS => &mut s.outbps,
                _ => {
                    s.unknown.push(attr.to_raw());
                    continue;
                }
            };
            *slot = uint(&attr)?;
        }
        Ok(s)
    }
}

/// Reads a 4- or 8-byte host-endian unsigned integer.
pub(crate) fn uint(attr: &Attr<'_>) -> Result<u64, DecodeError> {
    match attr.value().len() {
        4 => attr.ne32().map(u64::from),
        _ => attr.ne64(),
    }
}

/// Picks the 64-bit statistics when present, else the 32-bit ones.
pub(crate) fn prefer64<'a>(s64: &'a Option<Stats>, s32: &'a Option<Stats>) -> Option<&'a Stats> {
    s64.as_ref().or(s32.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{AttrPath, DecodeErrorKind};
    use crate::netlink::attr::Attrs;
    use crate::netlink::emit::MessageBuilder;

    fn nest_bytes(build: impl FnOnce(&mut MessageBuilder)) -> Vec<u8> {
        let mut b = MessageBuilder::new(0x20, 0);
        let n = b.begin_nest(IPVS_SVC_ATTR_STATS);
        build(&mut b);
        b.end_nest(n);
        b.finish()[16..].to_vec()
    }

    fn decode(bytes: &[u8], w: StatsWidth) -> Result<Stats, DecodeError> {
        let a = Attrs::new(bytes, 0, AttrPath::ROOT, IPVS_SVC_ATTR_NAMES)
            .next()
            .unwrap()?;
        Stats::decode(&a, w)
    }

    #[test]
    fn mixed_widths_and_pad() {
        let bytes = nest_bytes(|b| {
            b.put_ne32(IPVS_STATS_ATTR_CONNS, 7)
                .put_ne32(IPVS_STATS_ATTR_INPKTS, 70)
                .put_bytes(IPVS_STATS_ATTR_PAD, &[])
                .put_bytes(IPVS_STATS_ATTR_INBYTES, &(5_000_000_000u64).to_ne_bytes())
                .put_ne32(IPVS_STATS_ATTR_CPS, 3)
                .put_ne32(40, 1);
        });
        let s = decode(&bytes, StatsWidth::Bits32).unwrap();
        assert_eq!(s.conns, 7);
        assert_eq!(s.inpkts, 70);
        assert_eq!(s.inbytes, 5_000_000_000);
        assert_eq!(s.cps, 3);
        assert_eq!(s.outpkts, 0);
        assert_eq!(s.unknown.len(), 1);
        assert_eq!(s.unknown[0].kind, 40);
    }

    #[test]
    fn odd_size_is_an_error_with_path() {
        let bytes = nest_bytes(|b| {
            b.put_bytes(IPVS_STATS_ATTR_OUTBPS, &[1, 2, 3]);
        });
        let err = decode(&bytes, StatsWidth::Bits64).unwrap_err().resolve(
            &bytes,
            0,
            IPVS_SVC_ATTR_NAMES,
            child_names,
        );
        assert_eq!(
            err.kind,
            DecodeErrorKind::WrongSize {
                expected: 8,
                actual: 3
            }
        );
        assert_eq!(
            err.path.to_string(),
            "IPVS_SVC_ATTR_STATS/IPVS_STATS_ATTR_OUTBPS"
        );
    }

    #[test]
    fn duplicate_counter_is_an_error() {
        let bytes = nest_bytes(|b| {
            b.put_ne32(IPVS_STATS_ATTR_CONNS, 1)
                .put_ne32(IPVS_STATS_ATTR_CONNS, 2);
        });
        let err = decode(&bytes, StatsWidth::Bits32).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::Duplicate);
    }
}
