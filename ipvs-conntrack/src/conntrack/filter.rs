//! Dump filters: family, mark/mask, zone, status/mask and the CTA_FILTER tuple filter.
//!
//! Filters are sent to the kernel (so it skips non-matching entries) and are also
//! checked again on every decoded entry, so a kernel that ignores an attribute
//! can never make a dump return entries that do not match.

use std::net::IpAddr;

use crate::conntrack::entry::{EntryView, Family};
use crate::conntrack::status::Status;
use crate::conntrack::tuple::{emit_proto, TupleView, IPPROTO_ICMPV6};
use crate::conntrack::wire::*;
use crate::error::{DecodeError, Error, Result};
use crate::netlink::emit::MessageBuilder;

/// Fields of a tuple to match; unset fields match anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TupleFilter {
    /// Source address.
    pub src: Option<IpAddr>,
    /// Destination address.
    pub dst: Option<IpAddr>,
    /// L4 protocol (required by the kernel when ports or ICMP fields are set).
    pub proto: Option<u8>,
    /// Source port.
    pub src_port: Option<u16>,
    /// Destination port.
    pub dst_port: Option<u16>,
    /// ICMP type.
    pub icmp_type: Option<u8>,
    /// ICMP code.
    pub icmp_code: Option<u8>,
    /// ICMP id.
    pub icmp_id: Option<u16>,
}

impl TupleFilter {
    fn is_empty(&self) -> bool {
        *self == TupleFilter::default()
    }

    fn flags(&self) -> u32 {
        let v6 = self.proto == Some(IPPROTO_ICMPV6);
        let mut f = 0;
        let mut set = |c: bool, bit: u32| {
            if c {
                f |= bit;
            }
        };
        // IPv6 addresses are matched in user space only: the kernel's CTA_FILTER
        // comparison of IPv6 addresses is inverted (it drops the entries that match,
        // seen up to Linux 6.18), so asking it would lose exactly the wanted entries.
        set(
            matches!(self.src, Some(IpAddr::V4(_))),
            CTA_FILTER_FLAG_CTA_IP_SRC,
        );
        set(
            matches!(self.dst, Some(IpAddr::V4(_))),
            CTA_FILTER_FLAG_CTA_IP_DST,
        );
        set(self.proto.is_some(), CTA_FILTER_FLAG_CTA_PROTO_NUM);
        set(self.src_port.is_some(), CTA_FILTER_FLAG_CTA_PROTO_SRC_PORT);
        set(self.dst_port.is_some(), CTA_FILTER_FLAG_CTA_PROTO_DST_PORT);
        let (t, c, i) = if v6 {
            (
                CTA_FILTER_FLAG_CTA_PROTO_ICMPV6_TYPE,
                CTA_FILTER_FLAG_CTA_PROTO_ICMPV6_CODE,
                CTA_FILTER_FLAG_CTA_PROTO_ICMPV6_ID,
            )
        } else {
            (
                CTA_FILTER_FLAG_CTA_PROTO_ICMP_TYPE,
                CTA_FILTER_FLAG_CTA_PROTO_ICMP_CODE,
                CTA_FILTER_FLAG_CTA_PROTO_ICMP_ID,
            )
        };
        set(self.icmp_type.is_some(), t);
        set(self.icmp_code.is_some(), c);
        set(self.icmp_id.is_some(), i);
        f
    }

    /// True if `t` matches every set field.
    pub fn matches(&self, t: &TupleView<'_>) -> bool {
        fn ok<T: PartialEq>(want: Option<T>, have: Option<T>) -> bool {
            want.is_none() || want == have
        }
        ok(self.src, Some(t.src()))
            && ok(self.dst, Some(t.dst()))
            && ok(self.proto, Some(t.proto()))
            && ok(self.src_port, t.src_port())
            && ok(self.dst_port, t.dst_port())
            && ok(self.icmp_type, t.icmp_type())
            && ok(self.icmp_code, t.icmp_code())
            && ok(self.icmp_id, t.icmp_id())
    }

    fn emit(&self, b: &mut MessageBuilder, kind: u16) {
        let t = b.begin_nest(kind);
        if self.src.is_some() || self.dst.is_some() {
            let ip = b.begin_nest(CTA_TUPLE_IP);
            for (a, v4, v6) in [
                (self.src, CTA_IP_V4_SRC, CTA_IP_V6_SRC),
                (self.dst, CTA_IP_V4_DST, CTA_IP_V6_DST),
            ] {
                match a {
                    Some(IpAddr::V4(x)) => {
                        b.put_bytes(v4, &x.octets());
                    }
                    Some(IpAddr::V6(x)) => {
                        b.put_bytes(v6, &x.octets());
                    }
                    None => {}
                }
            }
            b.end_nest(ip);
        }
        if let Some(p) = self.proto {
            emit_proto(
                b,
                p,
                [self.src_port, self.dst_port, self.icmp_id],
                [self.icmp_type, self.icmp_code],
            );
        }
        b.end_nest(t);
    }
}

/// What a dump returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DumpFilter {
    /// Only this family (None = IPv4 and IPv6).
    pub family: Option<Family>,
    /// `(mark, mask)`: entries whose `mark & mask == mark & mask`.
    pub mark: Option<(u32, u32)>,
    /// Only this zone.
    pub zone: Option<u16>,
    /// `(status, mask)`: entries whose `status & mask == status & mask`.
    pub status: Option<(Status, Status)>,
    /// Original tuple fields (CTA_FILTER_ORIG_FLAGS).
    pub orig: TupleFilter,
    /// Reply tuple fields (CTA_FILTER_REPLY_FLAGS).
    pub reply: TupleFilter,
    /// Send the filter to the kernel (default true); when false, filter only in user space.
    pub user_space_only: bool,
}

impl DumpFilter {
    /// Everything.
    pub fn all() -> Self {
        DumpFilter::default()
    }

    /// Only one family.
    pub fn family(mut self, f: Family) -> Self {
        self.family = Some(f);
        self
    }

    /// Only entries with `mark & mask == value & mask`.
    pub fn mark(mut self, value: u32, mask: u32) -> Self {
        self.mark = Some((value, mask));
        self
    }

    /// Only one zone.
    pub fn zone(mut self, zone: u16) -> Self {
        self.zone = Some(zone);
        self
    }

    /// Only entries with `status & mask == value & mask`.
    pub fn status(mut self, value: Status, mask: Status) -> Self {
        self.status = Some((value, mask));
        self
    }

    /// The nfgenmsg family to put in the request.
    pub fn nfgen_family(&self) -> u8 {
        self.family.map_or(0, |f| f.value())
    }

    /// Checks the filter for combinations the kernel rejects.
    pub fn validate(&self) -> Result<()> {
        for (name, t) in [("orig", &self.orig), ("reply", &self.reply)] {
            let needs_proto = t.src_port.is_some()
                || t.dst_port.is_some()
                || t.icmp_type.is_some()
                || t.icmp_code.is_some()
                || t.icmp_id.is_some();
            if needs_proto && t.proto.is_none() {
                return Err(Error::InvalidRequest(format!(
                    "{name} tuple filter: ports and ICMP fields need the L4 protocol"
                )));
            }
            let fam = self.family.map(|f| f.value());
            for a in [t.src, t.dst].into_iter().flatten() {
                let af = if a.is_ipv4() { 2 } else { 10 };
                match fam {
                    Some(f) if f == af => {}
                    _ => {
                        return Err(Error::InvalidRequest(format!(
                            "{name} tuple filter: an address filter needs the matching family \
                             (family(Family::Ipv4) or family(Family::Ipv6))"
                        )))
                    }
                }
            }
        }
        Ok(())
    }

    /// True if the filter asks for anything the kernel must evaluate.
    pub fn has_kernel_attrs(&self) -> bool {
        self.mark.is_some()
            || self.zone.is_some()
            || self.status.is_some()
            || !self.orig.is_empty()
            || !self.reply.is_empty()
    }

    /// Appends the filter attributes to a dump request.
    pub fn emit(&self, b: &mut MessageBuilder) {
        if self.user_space_only {
            return;
        }
        if let Some((m, mask)) = self.mark {
            b.put_be32(CTA_MARK, m);
            b.put_be32(CTA_MARK_MASK, mask);
        }
        if let Some(z) = self.zone {
            b.put_be16(CTA_ZONE, z);
        }
        if let Some((s, mask)) = self.status {
            b.put_be32(CTA_STATUS, s.bits());
            b.put_be32(CTA_STATUS_MASK, mask.bits());
        }
        // The kernel refuses CTA_FILTER without a family (EOPNOTSUPP); without one the
        // tuple conditions are checked in user space only.
        let (of, rf) = (self.orig.flags(), self.reply.flags());
        if self.family.is_some() && (of != 0 || rf != 0) {
            if of != 0 {
                self.orig.emit(b, CTA_TUPLE_ORIG);
            }
            if rf != 0 {
                self.reply.emit(b, CTA_TUPLE_REPLY);
            }
            let n = b.begin_nest(CTA_FILTER);
            b.put_ne32(CTA_FILTER_ORIG_FLAGS, of);
            b.put_ne32(CTA_FILTER_REPLY_FLAGS, rf);
            b.end_nest(n);
        }
    }

    /// True if the entry matches (the user-space check of every condition); an error if a
    /// tuple the filter needs does not decode.
    pub fn matches(&self, e: &EntryView<'_>) -> Result<bool, DecodeError> {
        if let Some(f) = self.family {
            if e.family() != f {
                return Ok(false);
            }
        }
        if let Some((m, mask)) = self.mark {
            if e.mark().unwrap_or(0) & mask != m & mask {
                return Ok(false);
            }
        }
        if let Some(z) = self.zone {
            if e.zone().unwrap_or(0) != z {
                return Ok(false);
            }
        }
        if let Some((s, mask)) = self.status {
            if e.status().unwrap_or_default().bits() & mask.bits() != s.bits() & mask.bits() {
                return Ok(false);
            }
        }
        let tuple_ok = |f: &TupleFilter, t: Option<TupleView<'_>>| {
            f.is_empty() || t.as_ref().is_some_and(|t| f.matches(t))
        };
        if !self.orig.is_empty() && !tuple_ok(&self.orig, e.orig()?) {
            return Ok(false);
        }
        Ok(self.reply.is_empty() || tuple_ok(&self.reply, e.reply()?))
    }
}
