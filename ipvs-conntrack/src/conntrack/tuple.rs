//! Connection tuples (CTA_TUPLE_ORIG / REPLY / MASTER): addresses, L4 protocol, ports, ICMP, zone.

use std::net::IpAddr;

use crate::conntrack::wire::*;
use crate::error::{DecodeError, DecodeErrorKind};
use crate::netlink::attr::HeaderPositions;
use crate::netlink::attr::{for_each_attr, header_word, walk, word_at, Attr, RawAttr, HEADER_MASK};
use crate::netlink::emit::MessageBuilder;

/// IP protocol number of ICMP.
pub const IPPROTO_ICMP: u8 = 1;
/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;
/// IP protocol number of DCCP.
pub const IPPROTO_DCCP: u8 = 33;
/// IP protocol number of GRE.
pub const IPPROTO_GRE: u8 = 47;
/// IP protocol number of ICMPv6.
pub const IPPROTO_ICMPV6: u8 = 58;
/// IP protocol number of SCTP.
pub const IPPROTO_SCTP: u8 = 132;
/// IP protocol number of UDP-Lite.
pub const IPPROTO_UDPLITE: u8 = 136;

/// Short lower-case name of an L4 protocol (`tcp`, `udp`, …), or `None`.
pub fn proto_name(proto: u8) -> Option<&'static str> {
    Some(match proto {
        IPPROTO_ICMP => "icmp",
        IPPROTO_TCP => "tcp",
        IPPROTO_UDP => "udp",
        IPPROTO_DCCP => "dccp",
        IPPROTO_GRE => "gre",
        IPPROTO_ICMPV6 => "icmpv6",
        IPPROTO_SCTP => "sctp",
        IPPROTO_UDPLITE => "udplite",
        _ => return None,
    })
}

/// Parses an L4 protocol name or number.
pub fn proto_from_name(s: &str) -> Option<u8> {
    (0..=255u8)
        .find(|p| proto_name(*p).is_some_and(|n| n.eq_ignore_ascii_case(s)))
        .or_else(|| s.parse().ok())
}

/// The scalar fields of a tuple, shared by [`TupleView`] and [`Tuple`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Fields {
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

/// A checked, borrowed tuple.
#[derive(Clone, Copy, Debug)]
pub struct TupleView<'a> {
    f: Fields,
    /// The nest's value bytes and their absolute offset (for [`TupleView::unknown`]).
    value: &'a [u8],
    offset: usize,
    has_unknown: bool,
}

/// A connection tuple, owned.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Tuple {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// L4 protocol number.
    pub proto: u8,
    /// Source port (TCP, UDP, SCTP, DCCP, UDP-Lite; GRE key).
    pub src_port: Option<u16>,
    /// Destination port.
    pub dst_port: Option<u16>,
    /// ICMP / ICMPv6 type.
    pub icmp_type: Option<u8>,
    /// ICMP / ICMPv6 code.
    pub icmp_code: Option<u8>,
    /// ICMP / ICMPv6 identifier.
    pub icmp_id: Option<u16>,
    /// Tuple zone (CTA_TUPLE_ZONE).
    pub zone: Option<u16>,
    /// Attributes this library does not know, in order.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Vec::is_empty"))]
    pub unknown: Vec<RawAttr>,
}

fn known_tuple(kind: u16) -> bool {
    matches!(kind, CTA_TUPLE_IP | CTA_TUPLE_PROTO | CTA_TUPLE_ZONE)
}

fn known_ip(kind: u16) -> bool {
    (CTA_IP_V4_SRC..=CTA_IP_V6_DST).contains(&kind)
}

fn known_proto(kind: u16) -> bool {
    (CTA_PROTO_NUM..=CTA_PROTO_ICMPV6_CODE).contains(&kind)
}

/// Sets `slot` from a value of exactly `N` bytes; false if the size is wrong.
#[inline(always)]
fn take<const N: usize, T>(slot: &mut Option<T>, v: &[u8], f: impl FnOnce([u8; N]) -> T) -> bool {
    match <[u8; N]>::try_from(v) {
        Ok(b) => {
            *slot = Some(f(b));
            true
        }
        Err(_) => false,
    }
}

/// The bytes at `at`, if in range.
#[inline(always)]
fn bytes<const N: usize>(v: &[u8], at: usize) -> Option<[u8; N]> {
    v.get(at..at + N)?.try_into().ok()
}

/// Template decoding of the layout the kernel sends for TCP, UDP, SCTP, DCCP and UDP-Lite
/// tuples (`ctnetlink_dump_tuples`): the address pair of `AL`-byte addresses, then
/// protocol number, source port and destination port, then an optional zone. Every header
/// is compared with the one that layout has, so anything else (ICMP, unknown or reordered
/// attributes) returns `None` for the general walk.
#[inline(always)]
fn fields_ported<const AL: usize>(v: &[u8], src_t: u16, dst_t: u16) -> Option<Fields> {
    let zone = ported_zone::<AL>(v)?;
    if !ported_headers_match::<AL>(v, src_t, dst_t, zone) {
        return None;
    }
    ported_values::<AL>(v, zone)
}

/// Whether a ported layout of `AL`-byte addresses has the zone attribute (`None`: the
/// length fits neither form).
#[inline(always)]
fn ported_zone<const AL: usize>(v: &[u8]) -> Option<bool> {
    match v.len().checked_sub(4 + 2 * (4 + AL) + 28)? {
        0 => Some(false),
        8 => Some(true),
        _ => None,
    }
}

/// The header words (flag bits masked) of the ported layout, by position in the nest value.
const fn ported_headers<const AL: usize>(src_t: u16, dst_t: u16) -> [(usize, u32); 8] {
    const fn n(x: usize) -> u16 {
        x as u16
    }
    let ip = 4 + 2 * (4 + AL);
    [
        (0, header_word(n(ip), CTA_TUPLE_IP)),
        (4, header_word(n(4 + AL), src_t)),
        (8 + AL, header_word(n(4 + AL), dst_t)),
        (ip, header_word(28, CTA_TUPLE_PROTO)),
        (ip + 4, header_word(5, CTA_PROTO_NUM)),
        (ip + 12, header_word(6, CTA_PROTO_SRC_PORT)),
        (ip + 20, header_word(6, CTA_PROTO_DST_PORT)),
        (ip + 28, header_word(6, CTA_TUPLE_ZONE)),
    ]
}

/// Whether the headers of `v` are those of the ported layout (with or without the zone).
#[inline(always)]
fn ported_headers_match<const AL: usize>(v: &[u8], src_t: u16, dst_t: u16, zone: bool) -> bool {
    let h = ported_headers::<AL>(src_t, dst_t);
    let n = if zone { 8 } else { 7 };
    h[..n]
        .iter()
        .all(|&(at, w)| word_at(v, at) & HEADER_MASK == w)
}

/// The values of a nest whose headers are those of the ported layout.
#[inline(always)]
fn ported_values<const AL: usize>(v: &[u8], zone: bool) -> Option<Fields> {
    let ip = 4 + 2 * (4 + AL);
    let end = ip + 28;
    // One length test up front covers every read below (they then need no test each).
    if v.len() < end + if zone { 8 } else { 0 } {
        return None;
    }
    let addr = |at| -> Option<IpAddr> {
        Some(if AL == 4 {
            IpAddr::from(bytes::<4>(v, at)?)
        } else {
            IpAddr::from(bytes::<16>(v, at)?)
        })
    };
    let be16 = |at| bytes::<2>(v, at).map(u16::from_be_bytes);
    Some(Fields {
        src: addr(8)?,
        dst: addr(12 + AL)?,
        proto: bytes::<1>(v, ip + 8)?[0],
        src_port: Some(be16(ip + 16)?),
        dst_port: Some(be16(ip + 24)?),
        icmp_type: None,
        icmp_code: None,
        icmp_id: None,
        zone: if zone { Some(be16(end + 4)?) } else { None },
    })
}

/// The form of a tuple nest value in the kernel's ported layout, for an entry shape:
/// whether its addresses are IPv6, whether it has the zone, and the header positions
/// (in the value) the template compares; `None` for any other layout.
pub(crate) fn ported_form(v: &[u8]) -> Option<(bool, bool, HeaderPositions)> {
    let (v6, zone, h) = match v.len() {
        48 | 56 => {
            let zone = ported_zone::<4>(v)?;
            let ok = ported_headers_match::<4>(v, CTA_IP_V4_SRC, CTA_IP_V4_DST, zone);
            (false, zone, ok.then(|| ported_headers::<4>(0, 0))?)
        }
        72 | 80 => {
            let zone = ported_zone::<16>(v)?;
            let ok = ported_headers_match::<16>(v, CTA_IP_V6_SRC, CTA_IP_V6_DST, zone);
            (true, zone, ok.then(|| ported_headers::<16>(0, 0))?)
        }
        _ => return None,
    };
    let n = if zone { 8 } else { 7 };
    Some((v6, zone, HeaderPositions::of(&h, n)))
}

/// Position of the CTA_PROTO_NUM value in a tuple nest of the ported layout.
#[inline(always)]
const fn ported_proto_at(v6: bool) -> usize {
    let al = if v6 { 16 } else { 4 };
    4 + 2 * (4 + al) + 8
}

/// The L4 protocol of a tuple nest value whose headers are known to be those of the
/// ported layout (see [`ported_tuple`]).
#[inline(always)]
pub(crate) fn ported_proto(v: &[u8], v6: bool) -> Option<u8> {
    v.get(ported_proto_at(v6)).copied()
}

/// The owned tuple of a nest value whose headers are known to be those of the ported
/// layout (an entry shape matched): values only, no header is read. Values out of range,
/// which a nest of that layout never has, read as zeros.
#[inline(always)]
pub(crate) fn ported_tuple(v: &[u8], v6: bool, zone: bool) -> Tuple {
    let be16 = |at: usize| bytes::<2>(v, at).map_or(0, u16::from_be_bytes);
    let al = if v6 { 16 } else { 4 };
    let ip = 4 + 2 * (4 + al);
    let addr = |at: usize| -> IpAddr {
        if v6 {
            IpAddr::from(bytes::<16>(v, at).unwrap_or([0; 16]))
        } else {
            IpAddr::from(bytes::<4>(v, at).unwrap_or([0; 4]))
        }
    };
    Tuple {
        src: addr(8),
        dst: addr(12 + al),
        proto: ported_proto(v, v6).unwrap_or(0),
        src_port: Some(be16(ip + 16)),
        dst_port: Some(be16(ip + 24)),
        icmp_type: None,
        icmp_code: None,
        icmp_id: None,
        zone: zone.then(|| be16(ip + 32)),
        unknown: Vec::new(),
    }
}

/// The template fast paths: IPv4 and IPv6 tuples with ports.
#[inline(always)]
fn fields_template(v: &[u8]) -> Option<Fields> {
    match v.len() {
        48 | 56 => fields_ported::<4>(v, CTA_IP_V4_SRC, CTA_IP_V4_DST),
        72 | 80 => fields_ported::<16>(v, CTA_IP_V6_SRC, CTA_IP_V6_DST),
        _ => None,
    }
}

/// The L4 protocol of a tuple nest whose first attributes are the kernel's address pair
/// (IPv4 or IPv6) and a protocol nest starting with CTA_PROTO_NUM, or `None`. Only the
/// headers on the way are read: what the checked search (`proto_num`) reads to get there.
#[inline]
pub(crate) fn tuple_proto_fast(v: &[u8]) -> Option<u8> {
    let ip = match word_at(v, 0) & HEADER_MASK {
        w if w == header_word(20, CTA_TUPLE_IP) => 20,
        w if w == header_word(44, CTA_TUPLE_IP) => 44,
        _ => return None,
    };
    let hdr = v.get(ip..ip + 4)?;
    let proto_len = usize::from(u16::from_ne_bytes([hdr[0], hdr[1]]));
    let proto_kind = u16::from_ne_bytes([hdr[2], hdr[3]]) & crate::netlink::attr::NLA_TYPE_MASK;
    let ok = proto_kind == CTA_TUPLE_PROTO
        && proto_len >= 12
        && ip + proto_len <= v.len()
        && word_at(v, ip + 4) & HEADER_MASK == header_word(5, CTA_PROTO_NUM);
    if !ok {
        return None;
    }
    v.get(ip + 8).copied()
}

/// The fast path of [`TupleView::parse`]: `None` for anything it does not decode exactly
/// as the checked path would (malformed, unknown or repeated attributes, missing fields).
#[inline(always)]
fn fields_fast(nest: &[u8]) -> Option<Fields> {
    let (mut src, mut dst, mut proto) = (None, None, None);
    let (mut src_port, mut dst_port) = (None, None);
    let (mut icmp_type, mut icmp_code, mut icmp_id, mut zone) = (None, None, None, None);
    let v4 = |b: [u8; 4]| IpAddr::from(b);
    let v6 = |b: [u8; 16]| IpAddr::from(b);
    let ok = walk(nest, |kind, v| match kind {
        CTA_TUPLE_IP => {
            walk(v, |k, v| match k {
                CTA_IP_V4_SRC => take(&mut src, v, v4),
                CTA_IP_V4_DST => take(&mut dst, v, v4),
                CTA_IP_V6_SRC => take(&mut src, v, v6),
                CTA_IP_V6_DST => take(&mut dst, v, v6),
                _ => false,
            }) && src.is_some()
                && dst.is_some()
        }
        CTA_TUPLE_PROTO => {
            walk(v, |k, v| match k {
                CTA_PROTO_NUM => take(&mut proto, v, |[b]: [u8; 1]| b),
                CTA_PROTO_SRC_PORT => take(&mut src_port, v, u16::from_be_bytes),
                CTA_PROTO_DST_PORT => take(&mut dst_port, v, u16::from_be_bytes),
                CTA_PROTO_ICMP_ID | CTA_PROTO_ICMPV6_ID => {
                    take(&mut icmp_id, v, u16::from_be_bytes)
                }
                CTA_PROTO_ICMP_TYPE | CTA_PROTO_ICMPV6_TYPE => {
                    take(&mut icmp_type, v, |[b]: [u8; 1]| b)
                }
                CTA_PROTO_ICMP_CODE | CTA_PROTO_ICMPV6_CODE => {
                    take(&mut icmp_code, v, |[b]: [u8; 1]| b)
                }
                _ => false,
            }) && proto.is_some()
        }
        CTA_TUPLE_ZONE => take(&mut zone, v, u16::from_be_bytes),
        _ => false,
    });
    if !ok {
        return None;
    }
    Some(Fields {
        src: src?,
        dst: dst?,
        proto: proto?,
        src_port,
        dst_port,
        icmp_type,
        icmp_code,
        icmp_id,
        zone,
    })
}

impl<'a> TupleView<'a> {
    /// The tuple of a nest value known to be in the ported layout (an entry shape matched):
    /// values only, no header is read.
    #[inline(always)]
    pub(crate) fn from_known(value: &'a [u8], offset: usize, v6: bool, zone: bool) -> Option<Self> {
        let f = if v6 {
            ported_values::<16>(value, zone)?
        } else {
            ported_values::<4>(value, zone)?
        };
        Some(TupleView {
            f,
            value,
            offset,
            has_unknown: false,
        })
    }

    /// Parses and checks a CTA_TUPLE_* nest.
    #[inline]
    pub fn parse(nest: &Attr<'a>) -> Result<Self, DecodeError> {
        match fields_template(nest.value()).or_else(|| fields_fast(nest.value())) {
            Some(f) => Ok(TupleView {
                f,
                value: nest.value(),
                offset: nest.offset(),
                has_unknown: false,
            }),
            None => Self::parse_checked(nest),
        }
    }

    /// The tuple if `nest` has the kernel's usual layout for ported protocols (the
    /// template path alone; `None` means "use [`TupleView::parse`]").
    #[inline(always)]
    pub(crate) fn from_template(nest: &Attr<'a>) -> Option<Self> {
        fields_template(nest.value()).map(|f| TupleView {
            f,
            value: nest.value(),
            offset: nest.offset(),
            has_unknown: false,
        })
    }

    /// The checked path of [`TupleView::parse`]: decodes any tuple, names any fault.
    #[cold]
    #[inline(never)]
    fn parse_checked(nest: &Attr<'a>) -> Result<Self, DecodeError> {
        let mut src = None;
        let mut dst = None;
        let mut proto = None;
        let mut src_port = None;
        let mut dst_port = None;
        let mut icmp_type = None;
        let mut icmp_code = None;
        let mut icmp_id = None;
        let mut zone = None;
        let mut has_unknown = false;
        for_each_attr(nest.value(), nest.offset(), CTA_TUPLE_NAMES, |a| {
            match a.kind() {
                CTA_TUPLE_IP => {
                    for_each_attr(a.value(), a.offset(), CTA_IP_NAMES, |ip| {
                        match ip.kind() {
                            CTA_IP_V4_SRC => src = Some(IpAddr::V4(ip.ipv4()?)),
                            CTA_IP_V4_DST => dst = Some(IpAddr::V4(ip.ipv4()?)),
                            CTA_IP_V6_SRC => src = Some(IpAddr::V6(ip.ipv6()?)),
                            CTA_IP_V6_DST => dst = Some(IpAddr::V6(ip.ipv6()?)),
                            _ => has_unknown = true,
                        }
                        Ok(())
                    })?;
                    if src.is_none() || dst.is_none() {
                        return Err(a.error(DecodeErrorKind::Missing));
                    }
                }
                CTA_TUPLE_PROTO => {
                    for_each_attr(a.value(), a.offset(), CTA_PROTO_NAMES, |p| {
                        match p.kind() {
                            CTA_PROTO_NUM => proto = Some(p.u8()?),
                            CTA_PROTO_SRC_PORT => src_port = Some(p.be16()?),
                            CTA_PROTO_DST_PORT => dst_port = Some(p.be16()?),
                            CTA_PROTO_ICMP_ID | CTA_PROTO_ICMPV6_ID => icmp_id = Some(p.be16()?),
                            CTA_PROTO_ICMP_TYPE | CTA_PROTO_ICMPV6_TYPE => {
                                icmp_type = Some(p.u8()?)
                            }
                            CTA_PROTO_ICMP_CODE | CTA_PROTO_ICMPV6_CODE => {
                                icmp_code = Some(p.u8()?)
                            }
                            _ => has_unknown = true,
                        }
                        Ok(())
                    })?;
                    if proto.is_none() {
                        return Err(a.error(DecodeErrorKind::Missing));
                    }
                }
                CTA_TUPLE_ZONE => zone = Some(a.be16()?),
                _ => has_unknown = true,
            }
            Ok(())
        })?;
        let (Some(src), Some(dst), Some(proto)) = (src, dst, proto) else {
            return Err(nest.error(DecodeErrorKind::Missing));
        };
        Ok(TupleView {
            f: Fields {
                src,
                dst,
                proto,
                src_port,
                dst_port,
                icmp_type,
                icmp_code,
                icmp_id,
                zone,
            },
            value: nest.value(),
            offset: nest.offset(),
            has_unknown,
        })
    }

    /// Source address.
    pub fn src(&self) -> IpAddr {
        self.f.src
    }
    /// Destination address.
    pub fn dst(&self) -> IpAddr {
        self.f.dst
    }
    /// L4 protocol number.
    pub fn proto(&self) -> u8 {
        self.f.proto
    }
    /// Source port.
    pub fn src_port(&self) -> Option<u16> {
        self.f.src_port
    }
    /// Destination port.
    pub fn dst_port(&self) -> Option<u16> {
        self.f.dst_port
    }
    /// ICMP type.
    pub fn icmp_type(&self) -> Option<u8> {
        self.f.icmp_type
    }
    /// ICMP code.
    pub fn icmp_code(&self) -> Option<u8> {
        self.f.icmp_code
    }
    /// ICMP id.
    pub fn icmp_id(&self) -> Option<u16> {
        self.f.icmp_id
    }
    /// Tuple zone.
    pub fn zone(&self) -> Option<u16> {
        self.f.zone
    }

    /// Whether the tuple has attributes this library does not know (at any depth).
    #[inline]
    pub fn has_unknown(&self) -> bool {
        self.has_unknown
    }

    /// Collects the unknown attributes (at any depth of the tuple), in order.
    #[inline]
    pub fn unknown(&self) -> Vec<RawAttr> {
        if !self.has_unknown {
            return Vec::new();
        }
        self.collect_unknown()
    }

    #[inline(never)]
    fn collect_unknown(&self) -> Vec<RawAttr> {
        let mut out = Vec::new();
        let nest = crate::netlink::attr::Attrs::new(
            self.value,
            self.offset,
            crate::error::AttrPath::ROOT,
            CTA_TUPLE_NAMES,
        );
        for a in nest.flatten() {
            match a.kind() {
                CTA_TUPLE_IP => out.extend(
                    a.nested(CTA_IP_NAMES)
                        .flatten()
                        .filter(|x| !known_ip(x.kind()))
                        .map(|x| x.to_raw()),
                ),
                CTA_TUPLE_PROTO => out.extend(
                    a.nested(CTA_PROTO_NAMES)
                        .flatten()
                        .filter(|x| !known_proto(x.kind()))
                        .map(|x| x.to_raw()),
                ),
                k if !known_tuple(k) => out.push(a.to_raw()),
                _ => {}
            }
        }
        out
    }

    /// Converts to an owned [`Tuple`].
    #[inline]
    pub fn to_owned(&self) -> Tuple {
        let f = self.f;
        Tuple {
            src: f.src,
            dst: f.dst,
            proto: f.proto,
            src_port: f.src_port,
            dst_port: f.dst_port,
            icmp_type: f.icmp_type,
            icmp_code: f.icmp_code,
            icmp_id: f.icmp_id,
            zone: f.zone,
            unknown: self.unknown(),
        }
    }
}

impl Tuple {
    /// A TCP/UDP/SCTP/… tuple with ports.
    pub fn with_ports(proto: u8, src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Self {
        Tuple {
            src,
            dst,
            proto,
            src_port: Some(sport),
            dst_port: Some(dport),
            icmp_type: None,
            icmp_code: None,
            icmp_id: None,
            zone: None,
            unknown: Vec::new(),
        }
    }

    /// An ICMP (IPv4) or ICMPv6 (IPv6) echo tuple.
    pub fn icmp(src: IpAddr, dst: IpAddr, icmp_type: u8, icmp_code: u8, id: u16) -> Self {
        let proto = if src.is_ipv4() {
            IPPROTO_ICMP
        } else {
            IPPROTO_ICMPV6
        };
        Tuple {
            src,
            dst,
            proto,
            src_port: None,
            dst_port: None,
            icmp_type: Some(icmp_type),
            icmp_code: Some(icmp_code),
            icmp_id: Some(id),
            zone: None,
            unknown: Vec::new(),
        }
    }

    /// The reverse direction (addresses and ports swapped; ICMP echo request→reply).
    pub fn reversed(&self) -> Tuple {
        let icmp_type = match (self.proto, self.icmp_type) {
            (IPPROTO_ICMP, Some(8)) => Some(0),
            (IPPROTO_ICMP, Some(0)) => Some(8),
            (IPPROTO_ICMPV6, Some(128)) => Some(129),
            (IPPROTO_ICMPV6, Some(129)) => Some(128),
            (_, t) => t,
        };
        Tuple {
            src: self.dst,
            dst: self.src,
            src_port: self.dst_port,
            dst_port: self.src_port,
            icmp_type,
            unknown: Vec::new(),
            ..self.clone()
        }
    }

    /// Appends this tuple as nest `kind` (CTA_TUPLE_ORIG, …) to a request.
    pub fn emit(&self, b: &mut MessageBuilder, kind: u16) {
        let t = b.begin_nest(kind);
        let ip = b.begin_nest(CTA_TUPLE_IP);
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                b.put_bytes(CTA_IP_V4_SRC, &s.octets());
                b.put_bytes(CTA_IP_V4_DST, &d.octets());
            }
            (s, d) => {
                b.put_bytes(CTA_IP_V6_SRC, &to_v6(s).octets());
                b.put_bytes(CTA_IP_V6_DST, &to_v6(d).octets());
            }
        }
        b.end_nest(ip);
        emit_proto(
            b,
            self.proto,
            [self.src_port, self.dst_port, self.icmp_id],
            [self.icmp_type, self.icmp_code],
        );
        if let Some(z) = self.zone {
            b.put_be16(CTA_TUPLE_ZONE, z);
        }
        b.end_nest(t);
    }
}

/// Appends a CTA_TUPLE_PROTO nest: the protocol, then the set fields of
/// `[src port, dst port, ICMP id]` and `[ICMP type, ICMP code]` (ICMPv6 kinds for ICMPv6).
pub(crate) fn emit_proto(
    b: &mut MessageBuilder,
    proto: u8,
    be16: [Option<u16>; 3],
    u8s: [Option<u8>; 2],
) {
    let v6 = proto == IPPROTO_ICMPV6;
    let n = b.begin_nest(CTA_TUPLE_PROTO);
    b.put_u8(CTA_PROTO_NUM, proto);
    let id = if v6 {
        CTA_PROTO_ICMPV6_ID
    } else {
        CTA_PROTO_ICMP_ID
    };
    for (kind, v) in [CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT, id]
        .into_iter()
        .zip(be16)
    {
        if let Some(v) = v {
            b.put_be16(kind, v);
        }
    }
    let (ty, code) = if v6 {
        (CTA_PROTO_ICMPV6_TYPE, CTA_PROTO_ICMPV6_CODE)
    } else {
        (CTA_PROTO_ICMP_TYPE, CTA_PROTO_ICMP_CODE)
    };
    for (kind, v) in [ty, code].into_iter().zip(u8s) {
        if let Some(v) = v {
            b.put_u8(kind, v);
        }
    }
    b.end_nest(n);
}

fn to_v6(a: IpAddr) -> std::net::Ipv6Addr {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AttrPath;
    use crate::netlink::attr::test_util::{first_value, nested_attr};
    use crate::netlink::attr::Attrs;
    use crate::netlink::frame::Frames;

    fn round_trip(t: &Tuple) -> Tuple {
        let buf = nested_attr(CTA_TUPLE_ORIG, &emitted_value(t));
        let a = Attr::at(&buf, 0, 0, CTA_NAMES).unwrap();
        TupleView::parse(&a).unwrap().to_owned()
    }

    #[test]
    fn tcp_v4_and_icmp_v6_round_trip() {
        let t = Tuple::with_ports(
            IPPROTO_TCP,
            "10.0.0.1".parse().unwrap(),
            40000,
            "10.0.0.2".parse().unwrap(),
            80,
        );
        assert_eq!(round_trip(&t), t);
        let mut i = Tuple::icmp(
            "fd00::1".parse().unwrap(),
            "fd00::2".parse().unwrap(),
            128,
            0,
            7,
        );
        i.zone = Some(3);
        assert_eq!(round_trip(&i), i);
        assert_eq!(i.reversed().icmp_type, Some(129));
    }

    #[test]
    fn missing_address_is_typed_error() {
        let mut b = MessageBuilder::new(0x0100, 0);
        let t = b.begin_nest(CTA_TUPLE_ORIG);
        let ip = b.begin_nest(CTA_TUPLE_IP);
        b.put_bytes(CTA_IP_V4_SRC, &[1, 2, 3, 4]);
        b.end_nest(ip);
        b.end_nest(t);
        let msg = b.finish();
        let f = Frames::new(&msg).next().unwrap().unwrap();
        let a = Attrs::new(f.payload, 16, AttrPath::ROOT, CTA_NAMES)
            .next()
            .unwrap()
            .unwrap();
        let e = TupleView::parse(&a)
            .unwrap_err()
            .resolve(f.payload, 16, CTA_NAMES, child_names);
        assert_eq!(e.kind, DecodeErrorKind::Missing);
        assert_eq!(e.path.to_string(), "CTA_TUPLE_ORIG/CTA_TUPLE_IP");
    }

    /// The fast paths must decline or agree with the checked path, for any bytes.
    fn check_agreement(value: &[u8]) {
        let buf = nested_attr(CTA_TUPLE_ORIG, value);
        let a = Attr::at(&buf, 0, 0, CTA_NAMES).unwrap();
        let checked = TupleView::parse_checked(&a).map(|t| (t.f, t.has_unknown));
        for (name, fast) in [
            ("template", fields_template(value)),
            ("walk", fields_fast(value)),
        ] {
            if let Some(f) = fast {
                assert_eq!(
                    checked,
                    Ok((f, false)),
                    "{name} path disagrees on {value:02x?}"
                );
            }
        }
        let parsed = TupleView::parse(&a).map(|t| (t.f, t.has_unknown));
        assert_eq!(
            parsed, checked,
            "parse disagrees with the checked path on {value:02x?}"
        );
    }

    fn tuple_strategy() -> impl proptest::strategy::Strategy<Value = Tuple> {
        use proptest::prelude::*;
        (
            any::<bool>(),
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            prop_oneof![
                Just(IPPROTO_TCP),
                Just(IPPROTO_UDP),
                Just(IPPROTO_ICMP),
                any::<u8>()
            ],
            any::<(u16, u16, u8, u8, u16)>(),
            proptest::option::of(any::<u16>()),
        )
            .prop_map(|(v6, s, d, proto, (sp, dp, it, ic, id), zone)| {
                let (src, dst) = if v6 {
                    (IpAddr::from(s), IpAddr::from(d))
                } else {
                    (
                        IpAddr::from([s[0], s[1], s[2], s[3]]),
                        IpAddr::from([d[0], d[1], d[2], d[3]]),
                    )
                };
                let mut t = if proto == IPPROTO_ICMP {
                    Tuple::icmp(src, dst, it, ic, id)
                } else {
                    Tuple::with_ports(proto, src, sp, dst, dp)
                };
                t.zone = zone;
                t
            })
    }

    fn emitted_value(t: &Tuple) -> Vec<u8> {
        let mut b = MessageBuilder::new(0x0100, 0);
        t.emit(&mut b, CTA_TUPLE_ORIG);
        first_value(&b.finish())
    }

    proptest::proptest! {
        #[test]
        fn fast_paths_agree_with_checked_path(
            t in tuple_strategy(),
            flips in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 0..3),
        ) {
            let mut v = emitted_value(&t);
            check_agreement(&v);
            if !v.is_empty() {
                for (at, x) in flips {
                    let i = at % v.len();
                    v[i] = x;
                }
                check_agreement(&v);
            }
        }
    }

    #[test]
    fn template_decodes_the_kernel_layout() {
        let t = Tuple::with_ports(
            IPPROTO_TCP,
            "fd00::1".parse().unwrap(),
            40000,
            "fd00::2".parse().unwrap(),
            443,
        );
        let v = emitted_value(&t);
        let f = fields_template(&v).expect("template matches the emitted layout");
        assert_eq!(f.src_port, Some(40000));
        assert_eq!(f.dst, "fd00::2".parse::<IpAddr>().unwrap());
        let mut z = t.clone();
        z.zone = Some(7);
        assert_eq!(fields_template(&emitted_value(&z)).unwrap().zone, Some(7));
    }

    /// On real kernel bytes (recorded fixture, kernel 6.18) the template decodes every TCP
    /// and UDP tuple, and agrees with the checked path on all of them.
    #[test]
    fn template_covers_recorded_kernel_tuples() {
        let data = include_bytes!("../../../tests/fixtures/dump_all.bin");
        let (mut ported, mut templated) = (0, 0);
        for f in Frames::new(data).flatten() {
            if f.payload.len() < 4 || f.header.message_type < 16 {
                continue;
            }
            for a in Attrs::new(&f.payload[4..], 20, AttrPath::ROOT, CTA_NAMES).flatten() {
                if a.kind() != CTA_TUPLE_ORIG && a.kind() != CTA_TUPLE_REPLY {
                    continue;
                }
                check_agreement(a.value());
                let t = TupleView::parse_checked(&a).unwrap();
                if matches!(t.proto(), IPPROTO_TCP | IPPROTO_UDP) {
                    ported += 1;
                    templated += usize::from(fields_template(a.value()).is_some());
                }
            }
        }
        assert!(ported >= 10, "fixture has {ported} TCP/UDP tuples");
        assert_eq!(templated, ported);
    }
}
