//! A conntrack entry: the checked zero-copy [`EntryView`] over one ctnetlink message and
//! the owned [`Entry`] built from it.

use std::net::IpAddr;

use crate::conntrack::layout::LayoutCache;
use crate::conntrack::protoinfo::{tcp_template, ProtoInfo, TcpState};
use crate::conntrack::shape::Shape;
use crate::conntrack::state::State;
use crate::conntrack::status::Status;
use crate::conntrack::timeout::StateTimeouts;
use crate::conntrack::tuple::{
    ported_proto, tuple_proto_fast, Tuple, TupleView, IPPROTO_DCCP, IPPROTO_SCTP, IPPROTO_TCP,
};
use crate::conntrack::wire::*;
use crate::error::{AttrPath, DecodeError, DecodeErrorKind};
use crate::netlink::attr::HeaderPositions;
use crate::netlink::attr::{
    align4, for_each_attr, header_word, headers_match, Attr, Attrs, RawAttr, NLA_HDRLEN,
    NLA_TYPE_MASK,
};
use crate::netlink::frame::{Frame, NLMSG_HDRLEN};
use crate::netlink::nfnetlink::{split_type, NfGenMsg, NFGENMSG_LEN, NFNL_SUBSYS_CTNETLINK};
use crate::open_enum::open_enum;

open_enum! {
    /// Address family of an entry (`nfgenmsg.nfgen_family`).
    pub enum Family: u8 {
        /// AF_UNSPEC.
        Unspec = 0 => "unspec",
        /// AF_INET.
        Ipv4 = 2 => "ipv4",
        /// AF_INET6.
        Ipv6 = 10 => "ipv6",
    }
}

/// Packet and byte counters of one direction (CTA_COUNTERS_ORIG / REPLY).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Counters {
    /// Packets (CTA_COUNTERS_PACKETS, or the 32-bit CTA_COUNTERS32_PACKETS).
    pub packets: u64,
    /// Bytes (CTA_COUNTERS_BYTES, or the 32-bit CTA_COUNTERS32_BYTES).
    pub bytes: u64,
}

/// Start and stop time of a connection, nanoseconds since the epoch (CTA_TIMESTAMP).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Timestamp {
    /// CTA_TIMESTAMP_START.
    pub start: Option<u64>,
    /// CTA_TIMESTAMP_STOP (destroy events only).
    pub stop: Option<u64>,
}

/// TCP sequence adjustment of one direction (CTA_SEQ_ADJ_ORIG / REPLY).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SeqAdj {
    /// CTA_SEQADJ_CORRECTION_POS.
    pub correction_pos: Option<u32>,
    /// CTA_SEQADJ_OFFSET_BEFORE.
    pub offset_before: Option<i32>,
    /// CTA_SEQADJ_OFFSET_AFTER.
    pub offset_after: Option<i32>,
}

/// SYN proxy state (CTA_SYNPROXY).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Synproxy {
    /// CTA_SYNPROXY_ISN.
    pub isn: Option<u32>,
    /// CTA_SYNPROXY_ITS.
    pub its: Option<u32>,
    /// CTA_SYNPROXY_TSOFF.
    pub tsoff: Option<u32>,
}

/// A NAT range (CTA_NAT_SRC / CTA_NAT_DST).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct NatRange {
    /// CTA_NAT_V4_MINIP / CTA_NAT_V6_MINIP.
    pub min_ip: Option<IpAddr>,
    /// CTA_NAT_V4_MAXIP / CTA_NAT_V6_MAXIP.
    pub max_ip: Option<IpAddr>,
    /// CTA_PROTONAT_PORT_MIN.
    pub min_port: Option<u16>,
    /// CTA_PROTONAT_PORT_MAX.
    pub max_port: Option<u16>,
}

/// A connection label bitmap (CTA_LABELS / CTA_LABELS_MASK): indices of the set bits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Labels(pub Vec<u16>);

impl Labels {
    /// Decodes a label bitmap (an array of host-endian 32-bit words).
    pub fn from_bitmap(bytes: &[u8]) -> Labels {
        Labels(label_bits(bytes).collect())
    }

    /// Encodes as a bitmap of `len` bytes (rounded up to whole 32-bit words, at least 16).
    pub fn to_bitmap(&self) -> Vec<u8> {
        let max = self
            .0
            .iter()
            .copied()
            .max()
            .map_or(0, |m| usize::from(m) + 1);
        let words = max.div_ceil(32).max(4);
        let mut w = vec![0u32; words];
        for &b in &self.0 {
            if let Some(x) = w.get_mut(usize::from(b) / 32) {
                *x |= 1 << (b % 32);
            }
        }
        w.iter().flat_map(|x| x.to_ne_bytes()).collect()
    }
}

/// Iterates the set bit indices of a label bitmap without allocating.
pub fn label_bits(bytes: &[u8]) -> impl Iterator<Item = u16> + '_ {
    bytes.chunks(4).enumerate().flat_map(|(wi, chunk)| {
        let mut word = [0u8; 4];
        for (d, s) in word.iter_mut().zip(chunk) {
            *d = *s;
        }
        let w = u32::from_ne_bytes(word);
        (0..32u32)
            .filter(move |b| w & (1 << b) != 0)
            .map(move |b| u16::try_from(wi * 32 + b as usize).unwrap_or(u16::MAX))
    })
}

/// Helper assigned to the entry (CTA_HELP).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Helper {
    /// CTA_HELP_NAME.
    pub name: String,
    /// CTA_HELP_INFO (helper-private bytes).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Vec::is_empty"))]
    pub info: Vec<u8>,
}

/// The helper of an entry, borrowed from the receive buffer (CTA_HELP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HelperView<'a> {
    /// CTA_HELP_NAME.
    pub name: &'a str,
    /// CTA_HELP_INFO (helper-private bytes).
    pub info: Option<&'a [u8]>,
}

/// The ctnetlink message an entry came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MessageInfo {
    /// IPCTNL_MSG_CT_* message number (NEW for dumps and creations, DELETE for destroy events).
    pub msg: u8,
    /// Netlink header flags (NLM_F_CREATE|NLM_F_EXCL mark a NEW event).
    pub flags: u16,
    /// nfnetlink resource id (the CPU for dying/unconfirmed lists).
    pub res_id: u16,
}

/// Largest entry body (attributes after `nfgenmsg`) [`EntryView`] indexes: attribute
/// positions are kept as 16-bit multiples of 4.
pub const MAX_ENTRY_BODY: usize = (u16::MAX as usize - 1) * 4;

/// Number of top-level attribute slots (CTA_UNSPEC ..= CTA_TIMESTAMP_EVENT).
const SLOTS: usize = 28;

/// A checked zero-copy view of one conntrack entry message.
///
/// Building it walks the top-level attributes once: every length is checked, duplicates
/// and wrong-size integers are rejected, and the position of each known attribute is
/// remembered. Nothing is allocated and nested attributes are not decoded until asked
/// for: scalar accessors cannot fail, nested ones decode on demand and return a typed
/// error (with the full attribute path) for malformed nests.
///
/// Entry messages longer than [`MAX_ENTRY_BODY`] are refused with
/// [`DecodeErrorKind::InvalidValue`] (the kernel's are below 1 KiB).
#[derive(Clone, Copy, Debug)]
pub struct EntryView<'a> {
    family: Family,
    message: MessageInfo,
    body: &'a [u8],
    base: usize,
    ix: Index,
    /// Value positions known from the layout's shape (all 0 when the view has none).
    known: Known,
}

/// Value positions of a view whose body matched its layout's shape: the parts there are
/// in the kernel's usual form, so their values are read without looking at headers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(align(8))]
pub(crate) struct Known {
    /// Value position of CTA_TUPLE_ORIG in the ported form (0: not known).
    pub(crate) orig: u16,
    /// Its length, and whether its addresses are IPv6 and it has the zone.
    pub(crate) orig_len: u16,
    pub(crate) orig_v6: bool,
    pub(crate) orig_zone: bool,
    /// Value position of CTA_PROTOINFO in TCP's layout (0: not known or absent).
    pub(crate) tcp: u16,
}

/// Where the attributes of an entry body are: what [`EntryView::parse_body`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(align(8))]
pub(crate) struct Index {
    /// Header position / 4 + 1 of each known attribute in `body` (0 = absent).
    slots: [u16; 32],
    /// Bit `k` set when attribute type `k` is present.
    present: u32,
    has_unknown: bool,
}

/// Size a top-level attribute must have, for the fixed-size ones.
const fn fixed_size(kind: u16) -> Option<usize> {
    match kind {
        CTA_STATUS | CTA_TIMEOUT | CTA_MARK | CTA_USE | CTA_ID | CTA_SECMARK | CTA_MARK_MASK
        | CTA_STATUS_MASK => Some(4),
        CTA_ZONE => Some(2),
        CTA_TIMESTAMP_EVENT => Some(8),
        _ => None,
    }
}

/// The top-level types [`EntryView`] indexes (CTA_TUPLE_ORIG ..= CTA_TIMESTAMP_EVENT
/// except CTA_FILTER, which only requests carry; CTA_UNSPEC and CTA_FILTER are kept
/// among the unknown attributes).
const SLOT_MASK: u32 = ((1 << SLOTS) - 1) & !(1 << CTA_UNSPEC) & !(1 << CTA_FILTER);

/// Per top-level type below 32: the attribute length (header included) it must have, or 0
/// for any.
const SLOT_LEN: [u8; 32] = {
    let mut t = [0u8; 32];
    let mut k = 0;
    while k < 32 {
        if let Some(n) = fixed_size(k as u16) {
            t[k] = (n + NLA_HDRLEN) as u8;
        }
        k += 1;
    }
    t
};

/// The attribute types [`EntryView::to_owned`] skips in one test when none is present.
const RARE: u32 = {
    let kinds = [
        CTA_TUPLE_MASTER,
        CTA_HELP,
        CTA_NAT_SRC,
        CTA_NAT_DST,
        CTA_COUNTERS_ORIG,
        CTA_COUNTERS_REPLY,
        CTA_SEQ_ADJ_ORIG,
        CTA_SEQ_ADJ_REPLY,
        CTA_SECCTX,
        CTA_TIMESTAMP,
        CTA_LABELS,
        CTA_LABELS_MASK,
    ];
    let mut m = 0u32;
    let mut i = 0;
    while i < kinds.len() {
        m |= 1 << kinds[i];
        i += 1;
    }
    m
};

/// The rare nests an entry shape covers: accounting and timestamps, when they are on.
const SHAPED_RARE: u32 =
    (1 << CTA_COUNTERS_ORIG) | (1 << CTA_COUNTERS_REPLY) | (1 << CTA_TIMESTAMP);

/// Header words (by position in the value) of the CTA_COUNTERS_* layout the kernel sends
/// (`ctnetlink_dump_counters`: 64-bit packets then bytes, no padding on x86-64).
const COUNTERS_TEMPLATE: [(usize, u32); 2] = [
    (0, header_word(12, CTA_COUNTERS_PACKETS)),
    (12, header_word(12, CTA_COUNTERS_BYTES)),
];

/// Header words of the CTA_TIMESTAMP layout the kernel sends: start, and stop when set.
const TIMESTAMP_TEMPLATE: [(usize, u32); 2] = [
    (0, header_word(12, CTA_TIMESTAMP_START)),
    (12, header_word(12, CTA_TIMESTAMP_STOP)),
];

/// Header positions (in the value) of the kernel's CTA_COUNTERS_* layout, when `v` has it.
pub(crate) fn counters_form(v: &[u8]) -> Option<HeaderPositions> {
    (v.len() == 24 && headers_match(v, &COUNTERS_TEMPLATE))
        .then(|| HeaderPositions::of(&COUNTERS_TEMPLATE, 2))
}

/// The values of a CTA_COUNTERS_* value in the kernel's layout.
#[inline(always)]
pub(crate) fn counters_values(v: &[u8; 24]) -> Counters {
    let be64 = |at: usize| {
        u64::from_be_bytes([
            v[at],
            v[at + 1],
            v[at + 2],
            v[at + 3],
            v[at + 4],
            v[at + 5],
            v[at + 6],
            v[at + 7],
        ])
    };
    Counters {
        packets: be64(4),
        bytes: be64(16),
    }
}

/// Header positions (in the value) of the kernel's CTA_TIMESTAMP layout (start, or start
/// and stop), when `v` has it.
pub(crate) fn timestamp_form(v: &[u8]) -> Option<HeaderPositions> {
    let n = match v.len() {
        12 => 1,
        24 => 2,
        _ => return None,
    };
    headers_match(v, &TIMESTAMP_TEMPLATE[..n]).then(|| HeaderPositions::of(&TIMESTAMP_TEMPLATE, n))
}

/// Where nest decoders put attributes they do not know: (parent attribute type, attribute).
type Unknown = Vec<(u16, RawAttr)>;

fn counters(a: &Attr<'_>, unk: &mut Unknown) -> Result<Counters, DecodeError> {
    let mut c = Counters::default();
    for_each_attr(a.value(), a.offset(), CTA_COUNTERS_NAMES, |x| {
        match x.kind() {
            CTA_COUNTERS_PACKETS => c.packets = x.be64()?,
            CTA_COUNTERS_BYTES => c.bytes = x.be64()?,
            CTA_COUNTERS32_PACKETS => c.packets = u64::from(x.be32()?),
            CTA_COUNTERS32_BYTES => c.bytes = u64::from(x.be32()?),
            CTA_COUNTERS_PAD => {}
            _ => unk.push((a.kind(), x.to_raw())),
        }
        Ok(())
    })?;
    Ok(c)
}

fn timestamp(a: &Attr<'_>, unk: &mut Unknown) -> Result<Timestamp, DecodeError> {
    let mut t = Timestamp::default();
    for_each_attr(a.value(), a.offset(), CTA_TIMESTAMP_NAMES, |x| {
        match x.kind() {
            CTA_TIMESTAMP_START => t.start = Some(x.be64()?),
            CTA_TIMESTAMP_STOP => t.stop = Some(x.be64()?),
            CTA_TIMESTAMP_PAD => {}
            _ => unk.push((a.kind(), x.to_raw())),
        }
        Ok(())
    })?;
    Ok(t)
}

fn seqadj(a: &Attr<'_>, unk: &mut Unknown) -> Result<SeqAdj, DecodeError> {
    let mut s = SeqAdj::default();
    for_each_attr(a.value(), a.offset(), CTA_SEQADJ_NAMES, |x| {
        match x.kind() {
            CTA_SEQADJ_CORRECTION_POS => s.correction_pos = Some(x.be32()?),
            CTA_SEQADJ_OFFSET_BEFORE => s.offset_before = Some(x.be32()? as i32),
            CTA_SEQADJ_OFFSET_AFTER => s.offset_after = Some(x.be32()? as i32),
            _ => unk.push((a.kind(), x.to_raw())),
        }
        Ok(())
    })?;
    Ok(s)
}

fn synproxy(a: &Attr<'_>, unk: &mut Unknown) -> Result<Synproxy, DecodeError> {
    let mut s = Synproxy::default();
    for_each_attr(a.value(), a.offset(), CTA_SYNPROXY_NAMES, |x| {
        match x.kind() {
            CTA_SYNPROXY_ISN => s.isn = Some(x.be32()?),
            CTA_SYNPROXY_ITS => s.its = Some(x.be32()?),
            CTA_SYNPROXY_TSOFF => s.tsoff = Some(x.be32()?),
            _ => unk.push((a.kind(), x.to_raw())),
        }
        Ok(())
    })?;
    Ok(s)
}

/// Header words (by position in the value) of the CTA_SYNPROXY layout the kernel sends.
const SYNPROXY_TEMPLATE: [(usize, u32); 3] = [
    (0, header_word(8, CTA_SYNPROXY_ISN)),
    (8, header_word(8, CTA_SYNPROXY_ITS)),
    (16, header_word(8, CTA_SYNPROXY_TSOFF)),
];

/// The CTA_SYNPROXY layout the kernel sends (ISN, ITS, TSOFF), decoded without the general
/// walk; `None` for any other layout.
#[inline]
fn synproxy_template(v: &[u8]) -> Option<Synproxy> {
    let v: &[u8; 24] = v.try_into().ok()?;
    headers_match(v, &SYNPROXY_TEMPLATE).then(|| synproxy_values(v))
}

/// Header positions (in the CTA_SYNPROXY value) of the kernel's layout, when `v` has it.
pub(crate) fn synproxy_form(v: &[u8]) -> Option<HeaderPositions> {
    synproxy_template(v).map(|_| HeaderPositions::of(&SYNPROXY_TEMPLATE, 3))
}

/// The values of a CTA_SYNPROXY value whose headers are those of the kernel's layout.
#[inline(always)]
pub(crate) fn synproxy_values(v: &[u8; 24]) -> Synproxy {
    let word = |at: usize| [v[at], v[at + 1], v[at + 2], v[at + 3]];
    Synproxy {
        isn: Some(u32::from_be_bytes(word(4))),
        its: Some(u32::from_be_bytes(word(12))),
        tsoff: Some(u32::from_be_bytes(word(20))),
    }
}

/// Decodes a CTA_NAT_SRC / CTA_NAT_DST nest.
pub(crate) fn nat_range(a: &Attr<'_>, unk: &mut Unknown) -> Result<NatRange, DecodeError> {
    let mut n = NatRange::default();
    for_each_attr(a.value(), a.offset(), CTA_NAT_NAMES, |x| {
        match x.kind() {
            CTA_NAT_V4_MINIP => n.min_ip = Some(IpAddr::V4(x.ipv4()?)),
            CTA_NAT_V4_MAXIP => n.max_ip = Some(IpAddr::V4(x.ipv4()?)),
            CTA_NAT_V6_MINIP => n.min_ip = Some(IpAddr::V6(x.ipv6()?)),
            CTA_NAT_V6_MAXIP => n.max_ip = Some(IpAddr::V6(x.ipv6()?)),
            CTA_NAT_PROTO => {
                for_each_attr(x.value(), x.offset(), CTA_PROTONAT_NAMES, |p| {
                    match p.kind() {
                        CTA_PROTONAT_PORT_MIN => n.min_port = Some(p.be16()?),
                        CTA_PROTONAT_PORT_MAX => n.max_port = Some(p.be16()?),
                        _ => unk.push((CTA_NAT_PROTO, p.to_raw())),
                    }
                    Ok(())
                })?;
            }
            _ => unk.push((a.kind(), x.to_raw())),
        }
        Ok(())
    })?;
    Ok(n)
}

fn secctx<'a>(a: &Attr<'a>, unk: &mut Unknown) -> Result<Option<&'a str>, DecodeError> {
    let mut name = None;
    for_each_attr(a.value(), a.offset(), CTA_SECCTX_NAMES, |x| {
        match x.kind() {
            CTA_SECCTX_NAME => name = Some(x.str()?),
            _ => unk.push((CTA_SECCTX, x.to_raw())),
        }
        Ok(())
    })?;
    Ok(name)
}

impl<'a> EntryView<'a> {
    /// Decodes a ctnetlink entry message from one netlink frame.
    pub fn from_frame(frame: &Frame<'a>) -> Result<Self, DecodeError> {
        Self::from_frame_with(frame, Self::parse_body)
    }

    /// [`EntryView::from_frame`] through a cache of entry layouts (for dumps and event
    /// streams, whose entries repeat few layouts); the result is the same.
    // Inlined so that the view is built where the caller keeps it (a view returned through
    // memory is copied with wide loads that stall on the narrow stores that wrote it).
    #[inline(always)]
    pub fn from_frame_cached(
        frame: &Frame<'a>,
        cache: &mut LayoutCache,
    ) -> Result<Self, DecodeError> {
        Self::from_frame_with(frame, |f, m, b, o| cache.parse_view(f, m, b, o))
    }

    /// [`EntryView::from_frame_cached`], with the shape of the entry's layout when its
    /// body has one (owned entries are then built from values only).
    #[inline(always)]
    pub(crate) fn from_frame_shaped<'c>(
        frame: &Frame<'a>,
        cache: &'c mut LayoutCache,
    ) -> Result<(Self, Option<&'c Shape>), DecodeError> {
        Self::from_frame_with(frame, |f, m, b, o| cache.parse_shaped(f, m, b, o))
    }

    #[inline(always)]
    fn from_frame_with<T>(
        frame: &Frame<'a>,
        parse: impl FnOnce(u8, MessageInfo, &'a [u8], usize) -> Result<T, DecodeError>,
    ) -> Result<T, DecodeError> {
        let (family, message, body, offset) = Self::frame_body(frame)?;
        parse(family, message, body, offset)
    }

    /// The parts of a ctnetlink entry message before its attributes: the family, the
    /// message, the body (the attributes after `nfgenmsg`) and the body's absolute offset.
    #[inline(always)]
    pub(crate) fn frame_body(
        frame: &Frame<'a>,
    ) -> Result<(u8, MessageInfo, &'a [u8], usize), DecodeError> {
        let (subsys, msg) = split_type(frame.header.message_type);
        if subsys != NFNL_SUBSYS_CTNETLINK {
            return Err(DecodeError::new(
                DecodeErrorKind::UnexpectedMessage {
                    message_type: frame.header.message_type,
                },
                AttrPath::ROOT,
                frame.offset,
            ));
        }
        let base = frame.offset + NLMSG_HDRLEN;
        let gen = NfGenMsg::parse(frame.payload, base)?;
        let body = frame.payload.get(NFGENMSG_LEN..).unwrap_or_default();
        Ok((
            gen.family,
            MessageInfo {
                msg,
                flags: frame.header.flags,
                res_id: gen.res_id,
            },
            body,
            base + NFGENMSG_LEN,
        ))
    }

    /// Checks the attributes of an entry (the bytes after `nfgenmsg`, starting at absolute
    /// offset `offset`) and indexes them.
    pub fn parse_body(
        family: u8,
        message: MessageInfo,
        body: &'a [u8],
        offset: usize,
    ) -> Result<Self, DecodeError> {
        let mut v = EntryView {
            family: Family::from(family),
            message,
            body,
            base: offset,
            ix: Index {
                slots: [0; 32],
                present: 0,
                has_unknown: false,
            },
            known: Known::default(),
        };
        if body.len() > MAX_ENTRY_BODY {
            return Err(DecodeError::new(
                DecodeErrorKind::InvalidValue,
                AttrPath::ROOT,
                offset,
            ));
        }
        // One tight pass over the headers (hot path: no Attr values are built). Any fault
        // is reported by re-running the checked iterator, which names it precisely.
        let n = body.len();
        let mut pos = 0usize;
        let mut seen = 0u32;
        let mut unknown = false;
        while let Some(&[l0, l1, t0, t1]) = body.get(pos..pos + NLA_HDRLEN) {
            let len = usize::from(u16::from_ne_bytes([l0, l1]));
            let kind = usize::from(u16::from_ne_bytes([t0, t1]) & NLA_TYPE_MASK);
            // `n - pos >= NLA_HDRLEN` here.
            if len < NLA_HDRLEN || len > n - pos {
                return Err(v.slow_error(pos));
            }
            let bit = if kind < 32 { 1u32 << kind } else { 0 };
            if bit & SLOT_MASK != 0 {
                let want = usize::from(SLOT_LEN[kind & 31]);
                if seen & bit != 0 || (want != 0 && want != len) {
                    return Err(v.slow_error(pos));
                }
                seen |= bit;
                // `pos` is a multiple of 4 below MAX_ENTRY_BODY: the quotient fits.
                v.ix.slots[kind & 31] = (pos / 4) as u16 + 1;
            } else {
                unknown = true;
            }
            pos += align4(len);
        }
        if pos < n {
            return Err(v.slow_error(pos));
        }
        v.ix.has_unknown = unknown;
        v.ix.present = seen;
        Ok(v)
    }

    /// A view from an index computed before for a body of the same layout
    /// ([`crate::conntrack::layout::LayoutCache`]).
    #[inline]
    pub(crate) fn from_index(
        family: Family,
        message: MessageInfo,
        body: &'a [u8],
        offset: usize,
        ix: Index,
    ) -> Self {
        EntryView {
            family,
            message,
            body,
            base: offset,
            ix,
            known: Known::default(),
        }
    }

    /// The same view, with value positions its layout's shape guarantees.
    #[inline(always)]
    pub(crate) fn with_known(mut self, known: Known) -> Self {
        self.known = known;
        self
    }

    /// The index of this view's body.
    pub(crate) fn index(&self) -> Index {
        self.ix
    }

    /// The absolute offset of the body.
    pub(crate) fn base(&self) -> usize {
        self.base
    }

    /// The body (the attributes after `nfgenmsg`) this view indexes.
    pub(crate) fn body(&self) -> &'a [u8] {
        self.body
    }

    /// Where the value of top-level attribute `kind` is in the body, and its length.
    pub(crate) fn value_span(&self, kind: u16) -> Option<(usize, usize)> {
        let a = self.attr(kind)?;
        Some((a.offset().checked_sub(self.base)?, a.value().len()))
    }

    /// Whether none of the rarely present nests and no unknown attribute is in the entry
    /// (the entries [`EntryView::build`] makes in one step).
    pub(crate) fn is_common(&self) -> bool {
        self.ix.present & RARE == 0 && !self.ix.has_unknown
    }

    /// Whether the entry has no unknown attribute and no rare nest but the counters and the
    /// timestamp (the entries an entry shape may cover).
    pub(crate) fn is_shapeable(&self) -> bool {
        self.ix.present & RARE & !SHAPED_RARE == 0 && !self.ix.has_unknown
    }

    /// The precise error for the fault the fast scan found at header position `pos`.
    #[cold]
    fn slow_error(&self, pos: usize) -> DecodeError {
        let at = |kind| DecodeError::new(kind, AttrPath::ROOT, self.base + pos);
        let mut seen = [false; SLOTS];
        for a in Attrs::new(self.body, self.base, AttrPath::ROOT, CTA_NAMES) {
            let a = match a {
                Ok(a) => a,
                Err(e) => return e.resolve(self.body, self.base, CTA_NAMES, child_names),
            };
            if let Some(s) = seen.get_mut(usize::from(a.kind())) {
                if *s && a.kind() != 0 && a.kind() != CTA_FILTER {
                    return a.error(DecodeErrorKind::Duplicate);
                }
                *s = true;
            }
            if let Some(n) = fixed_size(a.kind()) {
                if a.value().len() != n {
                    return a.error(DecodeErrorKind::WrongSize {
                        expected: n,
                        actual: a.value().len(),
                    });
                }
            }
        }
        at(DecodeErrorKind::InvalidValue)
    }

    /// The attribute of type `kind`, if present.
    #[inline]
    fn attr(&self, kind: u16) -> Option<Attr<'a>> {
        let slot = *self.ix.slots.get(usize::from(kind))?;
        if slot == 0 {
            return None;
        }
        Attr::at(self.body, (usize::from(slot) - 1) * 4, self.base, CTA_NAMES)
    }

    /// The value of a fixed-size attribute (its size was checked when indexing).
    #[inline]
    fn fixed<const N: usize>(&self, kind: u16) -> Option<[u8; N]> {
        let slot = usize::from(*self.ix.slots.get(usize::from(kind))?);
        if slot == 0 {
            return None;
        }
        let at = (slot - 1) * 4 + NLA_HDRLEN;
        self.body.get(at..at + N)?.try_into().ok()
    }

    #[inline]
    fn be32(&self, kind: u16) -> Option<u32> {
        self.fixed(kind).map(u32::from_be_bytes)
    }

    /// Runs a nested decoder on attribute `kind`, naming the full path on error.
    fn nest<T>(
        &self,
        kind: u16,
        f: impl FnOnce(&Attr<'a>) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        match self.attr(kind) {
            Some(a) => f(&a)
                .map(Some)
                .map_err(|e| e.resolve(self.body, self.base, CTA_NAMES, child_names)),
            None => Ok(None),
        }
    }

    /// The top-level attribute types present: bit `k` is set when type `k` (< 32, known to
    /// this library) is in the message.
    #[inline]
    pub fn present(&self) -> u32 {
        self.ix.present
    }

    /// Whether the message has top-level attributes this library does not know.
    #[inline]
    pub fn has_unknown(&self) -> bool {
        self.ix.has_unknown
    }

    /// The top-level attribute of type `kind` (known to this library) as it is on the wire,
    /// for decoding it in a way the typed accessors do not offer.
    #[inline]
    pub fn raw(&self, kind: u16) -> Option<Attr<'a>> {
        self.attr(kind)
    }

    /// Address family.
    pub fn family(&self) -> Family {
        self.family
    }
    /// The message this entry came in.
    pub fn message(&self) -> MessageInfo {
        self.message
    }
    /// CTA_TIMEOUT: seconds left.
    #[inline]
    pub fn timeout(&self) -> Option<u32> {
        self.be32(CTA_TIMEOUT)
    }
    /// CTA_STATUS.
    #[inline]
    pub fn status(&self) -> Option<Status> {
        self.be32(CTA_STATUS).map(Status::from_bits_retain)
    }
    /// CTA_MARK.
    #[inline]
    pub fn mark(&self) -> Option<u32> {
        self.be32(CTA_MARK)
    }
    /// CTA_MARK_MASK.
    #[inline]
    pub fn mark_mask(&self) -> Option<u32> {
        self.be32(CTA_MARK_MASK)
    }
    /// CTA_USE: reference count.
    #[inline]
    pub fn use_count(&self) -> Option<u32> {
        self.be32(CTA_USE)
    }
    /// CTA_ID.
    #[inline]
    pub fn id(&self) -> Option<u32> {
        self.be32(CTA_ID)
    }
    /// CTA_SECMARK (obsolete).
    pub fn secmark(&self) -> Option<u32> {
        self.be32(CTA_SECMARK)
    }
    /// CTA_STATUS_MASK.
    pub fn status_mask(&self) -> Option<u32> {
        self.be32(CTA_STATUS_MASK)
    }
    /// CTA_ZONE.
    pub fn zone(&self) -> Option<u16> {
        self.fixed(CTA_ZONE).map(u16::from_be_bytes)
    }
    /// CTA_TIMESTAMP_EVENT (ns), sent with events by kernels ≥ 5.19 when timestamps are on.
    pub fn event_time(&self) -> Option<u64> {
        self.fixed(CTA_TIMESTAMP_EVENT).map(u64::from_be_bytes)
    }
    /// CTA_LABELS bitmap bytes.
    pub fn labels(&self) -> Option<&'a [u8]> {
        self.attr(CTA_LABELS).map(|a| a.value())
    }
    /// CTA_LABELS_MASK bitmap bytes.
    pub fn labels_mask(&self) -> Option<&'a [u8]> {
        self.attr(CTA_LABELS_MASK).map(|a| a.value())
    }
    /// The set bits of CTA_LABELS.
    pub fn label_bits(&self) -> impl Iterator<Item = u16> + 'a {
        label_bits(self.labels().unwrap_or_default())
    }
    /// CTA_TUPLE_ORIG.
    #[inline]
    pub fn orig(&self) -> Result<Option<TupleView<'a>>, DecodeError> {
        self.tuple(CTA_TUPLE_ORIG)
    }
    /// CTA_TUPLE_REPLY.
    #[inline]
    pub fn reply(&self) -> Result<Option<TupleView<'a>>, DecodeError> {
        self.tuple(CTA_TUPLE_REPLY)
    }

    /// A tuple nest: the template path inline, the general one out of line.
    #[inline(always)]
    fn tuple(&self, kind: u16) -> Result<Option<TupleView<'a>>, DecodeError> {
        if kind == CTA_TUPLE_ORIG && self.known.orig != 0 {
            if let Some(t) = self.known_orig() {
                return Ok(Some(t));
            }
        }
        match self.attr(kind) {
            None => Ok(None),
            Some(a) => match TupleView::from_template(&a) {
                Some(t) => Ok(Some(t)),
                None => self.tuple_general(kind),
            },
        }
    }

    /// The original tuple at its known position (the shape matched, so no header is read).
    #[inline(always)]
    fn known_orig(&self) -> Option<TupleView<'a>> {
        let k = self.known;
        let at = usize::from(k.orig);
        let value = self.body.get(at..at + usize::from(k.orig_len))?;
        TupleView::from_known(value, self.base + at, k.orig_v6, k.orig_zone)
    }

    #[inline(never)]
    fn tuple_general(&self, kind: u16) -> Result<Option<TupleView<'a>>, DecodeError> {
        self.nest(kind, TupleView::parse)
    }
    /// CTA_TUPLE_MASTER.
    pub fn master(&self) -> Result<Option<TupleView<'a>>, DecodeError> {
        self.nest(CTA_TUPLE_MASTER, TupleView::parse)
    }
    /// CTA_PROTOINFO.
    pub fn protoinfo(&self) -> Result<Option<ProtoInfo>, DecodeError> {
        self.nest(CTA_PROTOINFO, ProtoInfo::parse)
    }
    /// CTA_COUNTERS_ORIG.
    pub fn counters_orig(&self) -> Result<Option<Counters>, DecodeError> {
        self.nest(CTA_COUNTERS_ORIG, |a| counters(a, &mut Vec::new()))
    }
    /// CTA_COUNTERS_REPLY.
    pub fn counters_reply(&self) -> Result<Option<Counters>, DecodeError> {
        self.nest(CTA_COUNTERS_REPLY, |a| counters(a, &mut Vec::new()))
    }
    /// CTA_TIMESTAMP.
    pub fn timestamp(&self) -> Result<Option<Timestamp>, DecodeError> {
        self.nest(CTA_TIMESTAMP, |a| timestamp(a, &mut Vec::new()))
    }
    /// CTA_SEQ_ADJ_ORIG.
    pub fn seq_adj_orig(&self) -> Result<Option<SeqAdj>, DecodeError> {
        self.nest(CTA_SEQ_ADJ_ORIG, |a| seqadj(a, &mut Vec::new()))
    }
    /// CTA_SEQ_ADJ_REPLY.
    pub fn seq_adj_reply(&self) -> Result<Option<SeqAdj>, DecodeError> {
        self.nest(CTA_SEQ_ADJ_REPLY, |a| seqadj(a, &mut Vec::new()))
    }
    /// CTA_SYNPROXY.
    pub fn synproxy(&self) -> Result<Option<Synproxy>, DecodeError> {
        if self.ix.present & (1 << CTA_SYNPROXY) == 0 {
            return Ok(None);
        }
        if let Some(s) = self
            .attr(CTA_SYNPROXY)
            .and_then(|a| synproxy_template(a.value()))
        {
            return Ok(Some(s));
        }
        self.nest(CTA_SYNPROXY, |a| synproxy(a, &mut Vec::new()))
    }
    /// CTA_NAT_SRC.
    pub fn nat_src(&self) -> Result<Option<NatRange>, DecodeError> {
        self.nest(CTA_NAT_SRC, |a| nat_range(a, &mut Vec::new()))
    }
    /// CTA_NAT_DST.
    pub fn nat_dst(&self) -> Result<Option<NatRange>, DecodeError> {
        self.nest(CTA_NAT_DST, |a| nat_range(a, &mut Vec::new()))
    }
    /// CTA_SECCTX name.
    pub fn secctx(&self) -> Result<Option<&'a str>, DecodeError> {
        Ok(self
            .nest(CTA_SECCTX, |a| secctx(a, &mut Vec::new()))?
            .flatten())
    }
    /// CTA_HELP: helper name and private info bytes.
    pub fn helper(&self) -> Result<Option<HelperView<'a>>, DecodeError> {
        Ok(self.nest(CTA_HELP, |a| help(a, &mut Vec::new()))?.flatten())
    }

    /// The L4 protocol number from the original tuple, read without decoding the tuple.
    #[inline]
    pub fn proto(&self) -> Result<Option<u8>, DecodeError> {
        match self.known_proto() {
            Some(p) => Ok(Some(p)),
            None => self.proto_general(),
        }
    }

    /// The protocol at its known position, when the layout's shape gives the tuple's.
    #[inline(always)]
    fn known_proto(&self) -> Option<u8> {
        if self.known.orig == 0 {
            return None;
        }
        let at = usize::from(self.known.orig);
        let value = self.body.get(at..at + usize::from(self.known.orig_len))?;
        ported_proto(value, self.known.orig_v6)
    }

    /// [`EntryView::proto`] from the headers.
    fn proto_general(&self) -> Result<Option<u8>, DecodeError> {
        if let Some(p) = self
            .attr(CTA_TUPLE_ORIG)
            .and_then(|a| tuple_proto_fast(a.value()))
        {
            return Ok(Some(p));
        }
        Ok(self.nest(CTA_TUPLE_ORIG, proto_num)?.flatten())
    }

    /// The connection state, derived from the protocol, protocol info and status; reads
    /// only what it needs (for TCP only the state byte).
    #[inline]
    pub fn state(&self) -> Result<State, DecodeError> {
        if self.known.tcp != 0 && self.known_proto() == Some(IPPROTO_TCP) {
            // TCP's layout is known: the state byte is the first value.
            let at = usize::from(self.known.tcp) + 8;
            return Ok(self
                .body
                .get(at)
                .map_or(State::Unknown, |&b| State::Tcp(TcpState::from(b))));
        }
        self.state_general()
    }

    /// [`EntryView::state`] from the headers.
    fn state_general(&self) -> Result<State, DecodeError> {
        let proto = self.proto()?.unwrap_or(0);
        let status = self.status().unwrap_or_default();
        let info = match proto {
            IPPROTO_TCP => {
                if let Some(t) = self
                    .attr(CTA_PROTOINFO)
                    .and_then(|a| tcp_template(a.value()))
                {
                    return Ok(t.state.map_or(State::Unknown, State::Tcp));
                }
                let st = self.nest(CTA_PROTOINFO, tcp_state)?.flatten();
                return Ok(st.map_or(State::Unknown, State::Tcp));
            }
            IPPROTO_SCTP | IPPROTO_DCCP => self.protoinfo()?,
            _ => None,
        };
        Ok(State::derive(proto, info.as_ref(), status))
    }

    /// Top-level attributes this library does not know, in order (and unknown CTA_HELP members).
    pub fn unknown(&self) -> Vec<RawAttr> {
        let mut out = Vec::new();
        if !self.ix.has_unknown {
            return out;
        }
        for a in Attrs::new(self.body, self.base, AttrPath::ROOT, CTA_NAMES).flatten() {
            if usize::from(a.kind()) >= SLOTS || a.kind() == 0 || a.kind() == CTA_FILTER {
                out.push(a.to_raw());
            }
        }
        out
    }

    /// Builds the owned [`Entry`] (every attribute decoded); `state_timeout` is left `None`.
    pub fn to_owned(&self) -> Result<Entry, DecodeError> {
        self.build(None).unwrap_or_else(|| Err(self.missing()))
    }

    /// The error for an entry without its tuples.
    fn missing(&self) -> DecodeError {
        DecodeError::new(DecodeErrorKind::Missing, AttrPath::ROOT, self.base)
    }

    /// [`EntryView::to_owned`] with `state_timeout` joined from `timeouts`, returned as the
    /// caller's error type (built in place: `Entry` is large).
    #[inline(always)]
    pub(crate) fn build<E: From<DecodeError>>(
        &self,
        timeouts: Option<&StateTimeouts>,
    ) -> Option<Result<Entry, E>> {
        macro_rules! tri {
            ($e:expr) => {
                match $e {
                    Ok(v) => v,
                    Err(e) => return Some(Err(E::from(e))),
                }
            };
        }
        let orig = tri!(self.orig().and_then(|t| t.ok_or_else(|| self.missing())));
        let reply = tri!(self.reply().and_then(|t| t.ok_or_else(|| self.missing()))).to_owned();
        let status = self.status().unwrap_or_default();
        let protoinfo = tri!(self.protoinfo());
        let state = State::derive(orig.proto(), protoinfo.as_ref(), status);
        let state_timeout = timeouts.and_then(|t| t.for_state(orig.proto(), state));
        if self.is_common() {
            // The common case: none of the rarely present nests, no unknown attributes.
            let synproxy = tri!(self.synproxy());
            let orig = orig.to_owned();
            return Some(Ok(Entry {
                family: self.family,
                message: self.message,
                state,
                orig,
                reply,
                master: None,
                status,
                protoinfo,
                helper: None,
                nat_src: None,
                nat_dst: None,
                timeout: self.timeout(),
                state_timeout,
                mark: self.mark(),
                mark_mask: self.mark_mask(),
                counters_orig: None,
                counters_reply: None,
                use_count: self.use_count(),
                id: self.id(),
                seq_adj_orig: None,
                seq_adj_reply: None,
                secmark: self.secmark(),
                zone: self.zone(),
                secctx: None,
                timestamp: None,
                event_time: self.event_time(),
                labels: None,
                labels_mask: None,
                synproxy,
                status_mask: self.status_mask(),
                unknown: Vec::new(),
                unknown_nested: Vec::new(),
            }));
        }
        Some(
            self.build_general(orig, reply, status, protoinfo, state, state_timeout)
                .map_err(E::from),
        )
    }

    /// [`EntryView::build`] for entries with rare nests or unknown attributes.
    #[inline(never)]
    fn build_general(
        &self,
        orig: TupleView<'a>,
        reply: Tuple,
        status: Status,
        protoinfo: Option<ProtoInfo>,
        state: State,
        state_timeout: Option<u32>,
    ) -> Result<Entry, DecodeError> {
        let mut unk = Vec::new();
        let helper = self
            .nest(CTA_HELP, |a| help(a, &mut unk))?
            .flatten()
            .map(|h| Helper {
                name: h.name.to_owned(),
                info: h.info.map(<[u8]>::to_vec).unwrap_or_default(),
            });
        Ok(Entry {
            family: self.family,
            message: self.message,
            state,
            orig: orig.to_owned(),
            reply,
            master: self.master()?.map(|t| t.to_owned()),
            status,
            protoinfo,
            helper,
            nat_src: self.nest(CTA_NAT_SRC, |a| nat_range(a, &mut unk))?,
            nat_dst: self.nest(CTA_NAT_DST, |a| nat_range(a, &mut unk))?,
            timeout: self.timeout(),
            state_timeout,
            mark: self.mark(),
            mark_mask: self.mark_mask(),
            counters_orig: self.nest(CTA_COUNTERS_ORIG, |a| counters(a, &mut unk))?,
            counters_reply: self.nest(CTA_COUNTERS_REPLY, |a| counters(a, &mut unk))?,
            use_count: self.use_count(),
            id: self.id(),
            seq_adj_orig: self.nest(CTA_SEQ_ADJ_ORIG, |a| seqadj(a, &mut unk))?,
            seq_adj_reply: self.nest(CTA_SEQ_ADJ_REPLY, |a| seqadj(a, &mut unk))?,
            secmark: self.secmark(),
            zone: self.zone(),
            secctx: self
                .nest(CTA_SECCTX, |a| secctx(a, &mut unk))?
                .flatten()
                .map(str::to_owned),
            timestamp: self.nest(CTA_TIMESTAMP, |a| timestamp(a, &mut unk))?,
            event_time: self.event_time(),
            labels: self.labels().map(Labels::from_bitmap),
            labels_mask: self.labels_mask().map(Labels::from_bitmap),
            synproxy: self.nest(CTA_SYNPROXY, |a| synproxy(a, &mut unk))?,
            status_mask: self.status_mask(),
            unknown: self.unknown(),
            unknown_nested: unk,
        })
    }
}

/// CTA_HELP: name and info.
fn help<'a>(a: &Attr<'a>, unk: &mut Unknown) -> Result<Option<HelperView<'a>>, DecodeError> {
    let mut name = None;
    let mut info = None;
    for_each_attr(a.value(), a.offset(), CTA_HELP_NAMES, |x| {
        match x.kind() {
            CTA_HELP_NAME => name = Some(x.str()?),
            CTA_HELP_INFO => info = Some(x.value()),
            _ => unk.push((CTA_HELP, x.to_raw())),
        }
        Ok(())
    })?;
    Ok(name.map(|name| HelperView { name, info }))
}

/// CTA_PROTO_NUM inside a tuple nest.
fn proto_num(a: &Attr<'_>) -> Result<Option<u8>, DecodeError> {
    for x in a.nested(CTA_TUPLE_NAMES) {
        let x = x?;
        if x.kind() == CTA_TUPLE_PROTO {
            for p in x.nested(CTA_PROTO_NAMES) {
                let p = p?;
                if p.kind() == CTA_PROTO_NUM {
                    return p.u8().map(Some);
                }
            }
        }
    }
    Ok(None)
}

/// CTA_PROTOINFO_TCP_STATE inside CTA_PROTOINFO.
fn tcp_state(a: &Attr<'_>) -> Result<Option<TcpState>, DecodeError> {
    for x in a.nested(CTA_PROTOINFO_NAMES) {
        let x = x?;
        if x.kind() == CTA_PROTOINFO_TCP {
            for t in x.nested(CTA_PROTOINFO_TCP_NAMES) {
                let t = t?;
                if t.kind() == CTA_PROTOINFO_TCP_STATE {
                    return t.u8().map(|s| Some(TcpState::from(s)));
                }
            }
        }
    }
    Ok(None)
}

/// A conntrack entry, owned and typed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Entry {
    /// Address family.
    pub family: Family,
    /// Message this entry came in.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub message: MessageInfo,
    /// Connection state (TCP/SCTP/DCCP state, or UDP/GRE/ICMP pseudo-state).
    pub state: State,
    /// Original direction tuple.
    pub orig: Tuple,
    /// Reply direction tuple.
    pub reply: Tuple,
    /// Master connection tuple (expected connections).
    pub master: Option<Tuple>,
    /// Status bits.
    pub status: Status,
    /// Protocol info.
    pub protoinfo: Option<ProtoInfo>,
    /// Helper.
    pub helper: Option<Helper>,
    /// Source NAT range (requests; not dumped by the kernel).
    pub nat_src: Option<NatRange>,
    /// Destination NAT range (requests; not dumped by the kernel).
    pub nat_dst: Option<NatRange>,
    /// Seconds left before the entry expires, as the kernel sent it.
    pub timeout: Option<u32>,
    /// Full timeout of the current state under the policy in force, in seconds.
    pub state_timeout: Option<u32>,
    /// Connection mark.
    pub mark: Option<u32>,
    /// Mark mask (requests).
    pub mark_mask: Option<u32>,
    /// Original direction counters.
    pub counters_orig: Option<Counters>,
    /// Reply direction counters.
    pub counters_reply: Option<Counters>,
    /// Reference count.
    pub use_count: Option<u32>,
    /// Entry id.
    pub id: Option<u32>,
    /// Original direction sequence adjustment.
    pub seq_adj_orig: Option<SeqAdj>,
    /// Reply direction sequence adjustment.
    pub seq_adj_reply: Option<SeqAdj>,
    /// Security mark (obsolete).
    pub secmark: Option<u32>,
    /// Conntrack zone.
    pub zone: Option<u16>,
    /// Security context name.
    pub secctx: Option<String>,
    /// Start/stop timestamps.
    pub timestamp: Option<Timestamp>,
    /// When the kernel generated the event (CTA_TIMESTAMP_EVENT, ns; events only).
    pub event_time: Option<u64>,
    /// Set label bits.
    pub labels: Option<Labels>,
    /// Label mask bits (requests).
    pub labels_mask: Option<Labels>,
    /// SYN proxy state.
    pub synproxy: Option<Synproxy>,
    /// Status mask (requests).
    pub status_mask: Option<u32>,
    /// Top-level attributes this library does not know, in order.
    pub unknown: Vec<RawAttr>,
    /// Attributes this library does not know inside CTA_COUNTERS_*, CTA_TIMESTAMP,
    /// CTA_SEQ_ADJ_*, CTA_SYNPROXY, CTA_NAT_* (and their CTA_NAT_PROTO), CTA_HELP and
    /// CTA_SECCTX, each with the type of the attribute it was found in. Unknown tuple
    /// and protocol-info attributes are in [`Tuple::unknown`] and [`ProtoInfo::unknown`].
    pub unknown_nested: Vec<(u16, RawAttr)>,
}

impl Entry {
    /// Decodes one entry message frame into an owned entry.
    pub fn from_frame(frame: &Frame<'_>) -> Result<Entry, DecodeError> {
        EntryView::from_frame(frame)?.to_owned()
    }

    /// Estimated seconds since the last refresh of the state timer (`state_timeout - timeout`).
    pub fn seconds_since_refresh(&self) -> Option<u32> {
        Some(self.state_timeout?.saturating_sub(self.timeout?))
    }
}

#[cfg(test)]
mod template_tests {
    use super::*;
    use crate::netlink::emit::MessageBuilder;
    use crate::netlink::frame::Frames;
    use proptest::prelude::*;

    proptest! {
        /// The CTA_SYNPROXY template declines or agrees with the checked decoder.
        #[test]
        fn synproxy_template_agrees_with_checked_path(
            vals in any::<(u32, u32, u32)>(),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
        ) {
            let mut b = MessageBuilder::new(0x0100, 0);
            let n = b.begin_nest(CTA_SYNPROXY);
            b.put_be32(CTA_SYNPROXY_ISN, vals.0);
            b.put_be32(CTA_SYNPROXY_ITS, vals.1);
            b.put_be32(CTA_SYNPROXY_TSOFF, vals.2);
            b.end_nest(n);
            let mut msg = b.finish();
            let len = msg.len();
            prop_assert!(synproxy_template(&msg[20..]).is_some());
            for (at, x) in flips {
                msg[20 + at % (len - 20)] = x;
            }
            let f = Frames::new(&msg).next().unwrap().unwrap();
            let a = Attr::at(f.payload, 0, 16, CTA_NAMES).unwrap();
            let mut unk = Vec::new();
            let checked = synproxy(&a, &mut unk);
            if let Some(s) = synproxy_template(a.value()) {
                prop_assert_eq!(checked, Ok(s));
                prop_assert!(unk.is_empty());
            }
        }
    }

    proptest! {
        /// The protocol short cut agrees with the checked search whenever it answers.
        #[test]
        fn proto_short_cut_agrees_with_checked_search(
            v6 in any::<bool>(),
            proto in any::<u8>(),
            ports in any::<(u16, u16)>(),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
        ) {
            let (s, d): (std::net::IpAddr, std::net::IpAddr) = if v6 {
                ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap())
            } else {
                ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap())
            };
            let t = Tuple::with_ports(proto, s, ports.0, d, ports.1);
            let mut b = MessageBuilder::new(0x0100, 0);
            t.emit(&mut b, CTA_TUPLE_ORIG);
            let mut msg = b.finish();
            let len = msg.len();
            prop_assert_eq!(tuple_proto_fast(&msg[20..]), Some(proto));
            for (at, x) in flips {
                msg[20 + at % (len - 20)] = x;
            }
            let f = Frames::new(&msg).next().unwrap().unwrap();
            let a = Attr::at(f.payload, 0, 16, CTA_NAMES).unwrap();
            if let Some(p) = tuple_proto_fast(a.value()) {
                prop_assert_eq!(proto_num(&a), Ok(Some(p)));
            }
        }
    }
}
