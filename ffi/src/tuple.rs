//! Connection tuples in C form, for entries, lookups and dump filters.

use std::net::IpAddr;

use ipvs_conntrack::conntrack::{Tuple, TupleFilter, TupleView};

use crate::addr::ipvsct_addr;
use crate::error::FfiError;

/// `ipvsct_tuple.fields`: `src` is set.
pub const IPVSCT_TUPLE_HAS_SRC: u32 = 0x1;
/// `ipvsct_tuple.fields`: `dst` is set.
pub const IPVSCT_TUPLE_HAS_DST: u32 = 0x2;
/// `ipvsct_tuple.fields`: `proto` is set.
pub const IPVSCT_TUPLE_HAS_PROTO: u32 = 0x4;
/// `ipvsct_tuple.fields`: `src_port` is set.
pub const IPVSCT_TUPLE_HAS_SRC_PORT: u32 = 0x8;
/// `ipvsct_tuple.fields`: `dst_port` is set.
pub const IPVSCT_TUPLE_HAS_DST_PORT: u32 = 0x10;
/// `ipvsct_tuple.fields`: `icmp_type` is set.
pub const IPVSCT_TUPLE_HAS_ICMP_TYPE: u32 = 0x20;
/// `ipvsct_tuple.fields`: `icmp_code` is set.
pub const IPVSCT_TUPLE_HAS_ICMP_CODE: u32 = 0x40;
/// `ipvsct_tuple.fields`: `icmp_id` is set.
pub const IPVSCT_TUPLE_HAS_ICMP_ID: u32 = 0x80;
/// `ipvsct_tuple.fields`: `zone` is set (CTA_TUPLE_ZONE).
pub const IPVSCT_TUPLE_HAS_ZONE: u32 = 0x100;

const ALL_BITS: u32 = 0x1ff;

/// One direction of a connection. Which fields are meaningful is in `fields`
/// (`IPVSCT_TUPLE_HAS_*`); ports and ids are in host byte order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_tuple {
    /// Source address.
    pub src: ipvsct_addr,
    /// Destination address.
    pub dst: ipvsct_addr,
    /// `IPVSCT_TUPLE_HAS_*` bits.
    pub fields: u32,
    /// Source port (TCP, UDP, SCTP, DCCP, UDP-Lite; GRE key).
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// ICMP / ICMPv6 identifier.
    pub icmp_id: u16,
    /// Conntrack zone of this direction.
    pub zone: u16,
    /// L4 protocol number (IPPROTO_*).
    pub proto: u8,
    /// ICMP / ICMPv6 type.
    pub icmp_type: u8,
    /// ICMP / ICMPv6 code.
    pub icmp_code: u8,
    /// Zero.
    pub reserved: u8,
}

/// The scalar fields of a tuple, from an owned [`Tuple`] or a [`TupleView`].
struct TupleFields {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    src_port: Option<u16>,
    dst_port: Option<u16>,
    icmp_type: Option<u8>,
    icmp_code: Option<u8>,
    icmp_id: Option<u16>,
    zone: Option<u16>,
}

#[inline(always)]
fn opt<T: Copy + Default>(fields: &mut u32, bit: u32, v: Option<T>) -> T {
    // Branch-free: six of these per tuple on the dump path.
    *fields |= bit & 0u32.wrapping_sub(u32::from(v.is_some()));
    v.unwrap_or_default()
}

impl ipvsct_tuple {
    /// The C form of a tuple (unknown attributes are not carried).
    pub(crate) fn from_core(t: &Tuple) -> Self {
        let mut out = Self::default();
        Self::fill_from_core(&mut out, t);
        out
    }

    /// Writes the C form of a tuple to `*out` ([`Self::from_core`], in place: entries
    /// hold three tuples and the dump path fills them where the callback reads them).
    #[inline(always)]
    pub(crate) fn fill_from_core(out: &mut Self, t: &Tuple) {
        Self::fill_fields(
            out,
            TupleFields {
                src: t.src,
                dst: t.dst,
                proto: t.proto,
                src_port: t.src_port,
                dst_port: t.dst_port,
                icmp_type: t.icmp_type,
                icmp_code: t.icmp_code,
                icmp_id: t.icmp_id,
                zone: t.zone,
            },
        );
    }

    /// The C form of a tuple view: the same as `from_core(&t.to_owned())`, without
    /// collecting the unknown attributes (the C struct does not carry them).
    #[inline(always)]
    pub(crate) fn from_view(t: &TupleView<'_>) -> Self {
        let mut out = Self::default();
        Self::fill_from_view(&mut out, t);
        out
    }

    /// Writes [`Self::from_view`] of `t` to `*out`, in place.
    #[inline(always)]
    pub(crate) fn fill_from_view(out: &mut Self, t: &TupleView<'_>) {
        Self::fill_fields(
            out,
            TupleFields {
                src: t.src(),
                dst: t.dst(),
                proto: t.proto(),
                src_port: t.src_port(),
                dst_port: t.dst_port(),
                icmp_type: t.icmp_type(),
                icmp_code: t.icmp_code(),
                icmp_id: t.icmp_id(),
                zone: t.zone(),
            },
        );
    }

    /// The one place both forms above are turned into the C struct (inlined, so that
    /// `TupleFields` is never built in memory).
    #[inline(always)]
    fn fill_fields(out: &mut Self, t: TupleFields) {
        let mut fields = IPVSCT_TUPLE_HAS_SRC | IPVSCT_TUPLE_HAS_DST | IPVSCT_TUPLE_HAS_PROTO;
        ipvsct_addr::fill_from_ip(&mut out.src, &t.src);
        ipvsct_addr::fill_from_ip(&mut out.dst, &t.dst);
        // Ports (the common case) and ICMP fields come in pairs: one test for each pair.
        match (t.src_port, t.dst_port) {
            (Some(s), Some(d)) => {
                fields |= IPVSCT_TUPLE_HAS_SRC_PORT | IPVSCT_TUPLE_HAS_DST_PORT;
                out.src_port = s;
                out.dst_port = d;
            }
            (s, d) => {
                out.src_port = opt(&mut fields, IPVSCT_TUPLE_HAS_SRC_PORT, s);
                out.dst_port = opt(&mut fields, IPVSCT_TUPLE_HAS_DST_PORT, d);
            }
        }
        match (t.icmp_id, t.icmp_type, t.icmp_code) {
            (None, None, None) => {
                out.icmp_id = 0;
                out.icmp_type = 0;
                out.icmp_code = 0;
            }
            (id, ty, code) => {
                out.icmp_id = opt(&mut fields, IPVSCT_TUPLE_HAS_ICMP_ID, id);
                out.icmp_type = opt(&mut fields, IPVSCT_TUPLE_HAS_ICMP_TYPE, ty);
                out.icmp_code = opt(&mut fields, IPVSCT_TUPLE_HAS_ICMP_CODE, code);
            }
        }
        out.zone = opt(&mut fields, IPVSCT_TUPLE_HAS_ZONE, t.zone);
        out.proto = t.proto;
        out.reserved = 0;
        out.fields = fields;
    }

    fn get<T: Copy>(&self, bit: u32, v: T) -> Option<T> {
        (self.fields & bit != 0).then_some(v)
    }

    fn check_bits(&self, what: &str) -> Result<(), FfiError> {
        if self.fields & !ALL_BITS != 0 {
            return Err(FfiError::invalid(format!(
                "{what}: unknown bits {:#x} in fields",
                self.fields & !ALL_BITS
            )));
        }
        Ok(())
    }

    /// A complete tuple for a lookup: source, destination and protocol are required.
    pub(crate) fn to_core(self, what: &str) -> Result<Tuple, FfiError> {
        self.check_bits(what)?;
        let need = IPVSCT_TUPLE_HAS_SRC | IPVSCT_TUPLE_HAS_DST | IPVSCT_TUPLE_HAS_PROTO;
        if self.fields & need != need {
            return Err(FfiError::invalid(format!(
                "{what}: a lookup needs src, dst and proto (IPVSCT_TUPLE_HAS_SRC | _DST | _PROTO)"
            )));
        }
        let src = self.src.to_ip(&format!("{what}.src"))?;
        let dst = self.dst.to_ip(&format!("{what}.dst"))?;
        if src.is_ipv4() != dst.is_ipv4() {
            return Err(FfiError::invalid(format!(
                "{what}: src and dst have different address families"
            )));
        }
        Ok(Tuple {
            src,
            dst,
            proto: self.proto,
            src_port: self.get(IPVSCT_TUPLE_HAS_SRC_PORT, self.src_port),
            dst_port: self.get(IPVSCT_TUPLE_HAS_DST_PORT, self.dst_port),
            icmp_type: self.get(IPVSCT_TUPLE_HAS_ICMP_TYPE, self.icmp_type),
            icmp_code: self.get(IPVSCT_TUPLE_HAS_ICMP_CODE, self.icmp_code),
            icmp_id: self.get(IPVSCT_TUPLE_HAS_ICMP_ID, self.icmp_id),
            zone: self.get(IPVSCT_TUPLE_HAS_ZONE, self.zone),
            unknown: Vec::new(),
        })
    }

    /// A tuple filter: every set field must match; `fields == 0` matches everything.
    pub(crate) fn to_filter(self, what: &str) -> Result<TupleFilter, FfiError> {
        self.check_bits(what)?;
        if self.fields & IPVSCT_TUPLE_HAS_ZONE != 0 {
            return Err(FfiError::invalid(format!(
                "{what}: tuple filters cannot match a zone (use IPVSCT_DUMP_FILTER_HAS_ZONE)"
            )));
        }
        let addr = |bit, a: &ipvsct_addr, name: &str| {
            self.get(bit, *a)
                .map(|a| a.to_ip(&format!("{what}.{name}")))
                .transpose()
        };
        Ok(TupleFilter {
            src: addr(IPVSCT_TUPLE_HAS_SRC, &self.src, "src")?,
            dst: addr(IPVSCT_TUPLE_HAS_DST, &self.dst, "dst")?,
            proto: self.get(IPVSCT_TUPLE_HAS_PROTO, self.proto),
            src_port: self.get(IPVSCT_TUPLE_HAS_SRC_PORT, self.src_port),
            dst_port: self.get(IPVSCT_TUPLE_HAS_DST_PORT, self.dst_port),
            icmp_type: self.get(IPVSCT_TUPLE_HAS_ICMP_TYPE, self.icmp_type),
            icmp_code: self.get(IPVSCT_TUPLE_HAS_ICMP_CODE, self.icmp_code),
            icmp_id: self.get(IPVSCT_TUPLE_HAS_ICMP_ID, self.icmp_id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::ipvsct_result::*;

    #[test]
    fn core_round_trip_keeps_presence() {
        let mut t = Tuple::with_ports(
            6,
            "10.0.0.1".parse().unwrap(),
            40000,
            "10.0.0.2".parse().unwrap(),
            80,
        );
        t.zone = Some(3);
        let c = ipvsct_tuple::from_core(&t);
        assert_eq!(c.fields, 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x100);
        assert_eq!((c.src_port, c.dst_port, c.zone, c.proto), (40000, 80, 3, 6));
        assert_eq!(c.to_core("t").unwrap(), t);
        let icmp = Tuple::icmp(
            "fd00::1".parse().unwrap(),
            "fd00::2".parse().unwrap(),
            128,
            0,
            77,
        );
        let c = ipvsct_tuple::from_core(&icmp);
        assert_eq!(c.fields & IPVSCT_TUPLE_HAS_SRC_PORT, 0);
        assert_eq!((c.icmp_type, c.icmp_code, c.icmp_id), (128, 0, 77));
        assert_eq!(c.to_core("t").unwrap(), icmp);
    }

    #[test]
    fn lookups_and_filters_reject_bad_input() {
        let t = ipvsct_tuple::from_core(&Tuple::with_ports(
            17,
            "10.0.0.1".parse().unwrap(),
            1,
            "fd00::2".parse().unwrap(),
            2,
        ));
        assert!(t
            .to_core("t")
            .unwrap_err()
            .message
            .contains("different address families"));
        let mut partial = t;
        partial.fields = IPVSCT_TUPLE_HAS_SRC;
        assert_eq!(
            partial.to_core("t").unwrap_err().code,
            IPVSCT_ERR_INVALID_ARGUMENT
        );
        let f = partial.to_filter("orig").unwrap();
        assert_eq!(f.src, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(f.dst, None);
        let mut bad = t;
        bad.fields |= 0x8000;
        assert!(bad
            .to_filter("orig")
            .unwrap_err()
            .message
            .contains("0x8000"));
        let mut zoned = t;
        zoned.fields = IPVSCT_TUPLE_HAS_ZONE;
        assert_eq!(
            zoned.to_filter("orig").unwrap_err().code,
            IPVSCT_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            ipvsct_tuple::default().to_filter("x").unwrap(),
            TupleFilter::default()
        );
    }
}
