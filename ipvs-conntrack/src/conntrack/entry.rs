//! A conntrack entry: the checked zero-copy [`EntryView`] over one ctnetlink message and
//! the owned [`Entry`] built from it.

use std::net::IpAddr;

use crate::conntrack::protoinfo::ProtoInfo;
use crate::conntrack::state::State;
use crate::conntrack::status::Status;
use crate::conntrack::tuple::{Tuple, TupleView};
use crate::conntrack::wire::*;
use crate::error::{AttrPath, DecodeError, DecodeErrorKind};
use crate::netlink::attr::{Attr, Attrs, RawAttr, Seen};
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

/// A checked, borrowed conntrack entry. Fixed-size fields are decoded; strings and
/// bitmaps borrow from the receive buffer. Building it allocates nothing unless
/// the message carries attributes this library does not know inside CTA_PROTOINFO.
#[derive(Clone, Debug)]
pub struct EntryView<'a> {
    /// Address family.
    pub family: Family,
    /// Message this entry came in.
    pub message: MessageInfo,
    /// CTA_TUPLE_ORIG.
    pub orig: Option<TupleView<'a>>,
    /// CTA_TUPLE_REPLY.
    pub reply: Option<TupleView<'a>>,
    /// CTA_TUPLE_MASTER.
    pub master: Option<TupleView<'a>>,
    /// CTA_STATUS.
    pub status: Option<Status>,
    /// CTA_PROTOINFO.
    pub protoinfo: Option<ProtoInfo>,
    /// CTA_HELP name.
    pub helper_name: Option<&'a str>,
    /// CTA_HELP info bytes.
    pub helper_info: Option<&'a [u8]>,
    /// CTA_NAT_SRC.
    pub nat_src: Option<NatRange>,
    /// CTA_NAT_DST.
    pub nat_dst: Option<NatRange>,
    /// CTA_TIMEOUT: seconds left.
    pub timeout: Option<u32>,
    /// CTA_MARK.
    pub mark: Option<u32>,
    /// CTA_MARK_MASK.
    pub mark_mask: Option<u32>,
    /// CTA_COUNTERS_ORIG.
    pub counters_orig: Option<Counters>,
    /// CTA_COUNTERS_REPLY.
    pub counters_reply: Option<Counters>,
    /// CTA_USE: reference count.
    pub use_count: Option<u32>,
    /// CTA_ID.
    pub id: Option<u32>,
    /// CTA_SEQ_ADJ_ORIG.
    pub seq_adj_orig: Option<SeqAdj>,
    /// CTA_SEQ_ADJ_REPLY.
    pub seq_adj_reply: Option<SeqAdj>,
    /// CTA_SECMARK (obsolete).
    pub secmark: Option<u32>,
    /// CTA_ZONE.
    pub zone: Option<u16>,
    /// CTA_SECCTX name.
    pub secctx: Option<&'a str>,
    /// CTA_TIMESTAMP.
    pub timestamp: Option<Timestamp>,
    /// CTA_LABELS bitmap bytes.
    pub labels: Option<&'a [u8]>,
    /// CTA_LABELS_MASK bitmap bytes.
    pub labels_mask: Option<&'a [u8]>,
    /// CTA_SYNPROXY.
    pub synproxy: Option<Synproxy>,
    /// CTA_STATUS_MASK.
    pub status_mask: Option<u32>,
    body: &'a [u8],
    body_offset: usize,
    has_unknown: bool,
}

fn counters(a: &Attr<'_>) -> Result<Counters, DecodeError> {
    let mut c = Counters::default();
    let mut seen = Seen::default();
    for x in a.nested(CTA_COUNTERS_NAMES) {
        let x = x?;
        seen.check(&x)?;
        match x.kind() {
            CTA_COUNTERS_PACKETS => c.packets = x.be64()?,
            CTA_COUNTERS_BYTES => c.bytes = x.be64()?,
            CTA_COUNTERS32_PACKETS => c.packets = u64::from(x.be32()?),
            CTA_COUNTERS32_BYTES => c.bytes = u64::from(x.be32()?),
            _ => {}
        }
    }
    Ok(c)
}

fn timestamp(a: &Attr<'_>) -> Result<Timestamp, DecodeError> {
    let mut t = Timestamp::default();
    let mut seen = Seen::default();
    for x in a.nested(CTA_TIMESTAMP_NAMES) {
        let x = x?;
        seen.check(&x)?;
        match x.kind() {
            CTA_TIMESTAMP_START => t.start = Some(x.be64()?),
            CTA_TIMESTAMP_STOP => t.stop = Some(x.be64()?),
            _ => {}
        }
    }
    Ok(t)
}

fn seqadj(a: &Attr<'_>) -> Result<SeqAdj, DecodeError> {
    let mut s = SeqAdj::default();
    let mut seen = Seen::default();
    for x in a.nested(CTA_SEQADJ_NAMES) {
        let x = x?;
        seen.check(&x)?;
        match x.kind() {
            CTA_SEQADJ_CORRECTION_POS => s.correction_pos = Some(x.be32()?),
            CTA_SEQADJ_OFFSET_BEFORE => s.offset_before = Some(x.be32()? as i32),
            CTA_SEQADJ_OFFSET_AFTER => s.offset_after = Some(x.be32()? as i32),
            _ => {}
        }
    }
    Ok(s)
}

fn synproxy(a: &Attr<'_>) -> Result<Synproxy, DecodeError> {
    let mut s = Synproxy::default();
    let mut seen = Seen::default();
    for x in a.nested(CTA_SYNPROXY_NAMES) {
        let x = x?;
        seen.check(&x)?;
        match x.kind() {
            CTA_SYNPROXY_ISN => s.isn = Some(x.be32()?),
            CTA_SYNPROXY_ITS => s.its = Some(x.be32()?),
            CTA_SYNPROXY_TSOFF => s.tsoff = Some(x.be32()?),
            _ => {}
        }
    }
    Ok(s)
}

/// Decodes a CTA_NAT_SRC / CTA_NAT_DST nest.
pub(crate) fn nat_range(a: &Attr<'_>) -> Result<NatRange, DecodeError> {
    let mut n = NatRange::default();
    let mut seen = Seen::default();
    for x in a.nested(CTA_NAT_NAMES) {
        let x = x?;
        seen.check(&x)?;
        match x.kind() {
            CTA_NAT_V4_MINIP => n.min_ip = Some(IpAddr::V4(x.ipv4()?)),
            CTA_NAT_V4_MAXIP => n.max_ip = Some(IpAddr::V4(x.ipv4()?)),
            CTA_NAT_V6_MINIP => n.min_ip = Some(IpAddr::V6(x.ipv6()?)),
            CTA_NAT_V6_MAXIP => n.max_ip = Some(IpAddr::V6(x.ipv6()?)),
            CTA_NAT_PROTO => {
                let mut s2 = Seen::default();
                for p in x.nested(CTA_PROTONAT_NAMES) {
                    let p = p?;
                    s2.check(&p)?;
                    match p.kind() {
                        CTA_PROTONAT_PORT_MIN => n.min_port = Some(p.be16()?),
                        CTA_PROTONAT_PORT_MAX => n.max_port = Some(p.be16()?),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(n)
}

fn secctx<'a>(a: &Attr<'a>) -> Result<Option<&'a str>, DecodeError> {
    let mut name = None;
    for x in a.nested(CTA_SECCTX_NAMES) {
        let x = x?;
        if x.kind() == CTA_SECCTX_NAME {
            name = Some(x.str()?);
        }
    }
    Ok(name)
}

impl<'a> EntryView<'a> {
    /// Decodes a ctnetlink entry message from one netlink frame.
    pub fn from_frame(frame: &Frame<'a>) -> Result<Self, DecodeError> {
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
        Self::parse_body(
            gen.family,
            MessageInfo {
                msg,
                flags: frame.header.flags,
                res_id: gen.res_id,
            },
            body,
            base + NFGENMSG_LEN,
        )
    }

    /// Decodes the attributes of an entry; on error the full attribute path is rebuilt.
    pub fn parse_body(
        family: u8,
        message: MessageInfo,
        body: &'a [u8],
        offset: usize,
    ) -> Result<Self, DecodeError> {
        Self::parse_body_inner(family, message, body, offset)
            .map_err(|e| e.resolve(body, offset, CTA_NAMES, child_names))
    }

    /// Decodes the attributes of an entry (the bytes after `nfgenmsg`), which start at `offset`.
    fn parse_body_inner(
        family: u8,
        message: MessageInfo,
        body: &'a [u8],
        offset: usize,
    ) -> Result<Self, DecodeError> {
        let mut v = EntryView {
            family: Family::from(family),
            message,
            orig: None,
            reply: None,
            master: None,
            status: None,
            protoinfo: None,
            helper_name: None,
            helper_info: None,
            nat_src: None,
            nat_dst: None,
            timeout: None,
            mark: None,
            mark_mask: None,
            counters_orig: None,
            counters_reply: None,
            use_count: None,
            id: None,
            seq_adj_orig: None,
            seq_adj_reply: None,
            secmark: None,
            zone: None,
            secctx: None,
            timestamp: None,
            labels: None,
            labels_mask: None,
            synproxy: None,
            status_mask: None,
            body,
            body_offset: offset,
            has_unknown: false,
        };
        let mut seen = Seen::default();
        for a in Attrs::new(body, offset, AttrPath::ROOT, CTA_NAMES) {
            let a = a?;
            seen.check(&a)?;
            match a.kind() {
                CTA_TUPLE_ORIG => v.orig = Some(TupleView::parse(&a)?),
                CTA_TUPLE_REPLY => v.reply = Some(TupleView::parse(&a)?),
                CTA_TUPLE_MASTER => v.master = Some(TupleView::parse(&a)?),
                CTA_STATUS => v.status = Some(Status::from_bits_retain(a.be32()?)),
                CTA_PROTOINFO => v.protoinfo = Some(ProtoInfo::parse(&a)?),
                CTA_HELP => {
                    for x in a.nested(CTA_HELP_NAMES) {
                        let x = x?;
                        match x.kind() {
                            CTA_HELP_NAME => v.helper_name = Some(x.str()?),
                            CTA_HELP_INFO => v.helper_info = Some(x.value()),
                            _ => v.has_unknown = true,
                        }
                    }
                }
                CTA_NAT_SRC => v.nat_src = Some(nat_range(&a)?),
                CTA_NAT_DST => v.nat_dst = Some(nat_range(&a)?),
                CTA_TIMEOUT => v.timeout = Some(a.be32()?),
                CTA_MARK => v.mark = Some(a.be32()?),
                CTA_MARK_MASK => v.mark_mask = Some(a.be32()?),
                CTA_COUNTERS_ORIG => v.counters_orig = Some(counters(&a)?),
                CTA_COUNTERS_REPLY => v.counters_reply = Some(counters(&a)?),
                CTA_USE => v.use_count = Some(a.be32()?),
                CTA_ID => v.id = Some(a.be32()?),
                CTA_SEQ_ADJ_ORIG => v.seq_adj_orig = Some(seqadj(&a)?),
                CTA_SEQ_ADJ_REPLY => v.seq_adj_reply = Some(seqadj(&a)?),
                CTA_SECMARK => v.secmark = Some(a.be32()?),
                CTA_ZONE => v.zone = Some(a.be16()?),
                CTA_SECCTX => v.secctx = secctx(&a)?,
                CTA_TIMESTAMP => v.timestamp = Some(timestamp(&a)?),
                CTA_LABELS => v.labels = Some(a.value()),
                CTA_LABELS_MASK => v.labels_mask = Some(a.value()),
                CTA_SYNPROXY => v.synproxy = Some(synproxy(&a)?),
                CTA_STATUS_MASK => v.status_mask = Some(a.be32()?),
                _ => v.has_unknown = true,
            }
        }
        Ok(v)
    }

    /// The L4 protocol number (from the original tuple).
    pub fn proto(&self) -> Option<u8> {
        self.orig.as_ref().map(|t| t.proto())
    }

    /// The connection state, derived from the protocol info and status.
    pub fn state(&self) -> State {
        State::derive(
            self.proto().unwrap_or(0),
            self.protoinfo.as_ref(),
            self.status.unwrap_or_default(),
        )
    }

    /// The set bits of CTA_LABELS.
    pub fn label_bits(&self) -> impl Iterator<Item = u16> + 'a {
        label_bits(self.labels.unwrap_or_default())
    }

    /// Top-level attributes this library does not know, in order (and unknown CTA_HELP members).
    pub fn unknown(&self) -> Vec<RawAttr> {
        let mut out = Vec::new();
        if !self.has_unknown {
            return out;
        }
        for a in Attrs::new(self.body, self.body_offset, AttrPath::ROOT, CTA_NAMES).flatten() {
            match a.kind() {
                CTA_HELP => out.extend(
                    a.nested(CTA_HELP_NAMES)
                        .flatten()
                        .filter(|x| !matches!(x.kind(), CTA_HELP_NAME | CTA_HELP_INFO))
                        .map(|x| x.to_raw()),
                ),
                k if k == 0 || k > CTA_STATUS_MASK || k == CTA_FILTER => out.push(a.to_raw()),
                _ => {}
            }
        }
        out
    }

    /// Builds the owned [`Entry`]; `state_timeout` is left `None` (see `Conntrack` for joined timeouts).
    pub fn to_owned(&self) -> Result<Entry, DecodeError> {
        let missing =
            |_| DecodeError::new(DecodeErrorKind::Missing, AttrPath::ROOT, self.body_offset);
        let orig = self.orig.as_ref().ok_or(()).map_err(missing)?.to_owned();
        let reply = self.reply.as_ref().ok_or(()).map_err(missing)?.to_owned();
        Ok(Entry {
            family: self.family,
            message: self.message,
            state: self.state(),
            orig,
            reply,
            master: self.master.as_ref().map(|t| t.to_owned()),
            status: self.status.unwrap_or_default(),
            protoinfo: self.protoinfo.clone(),
            helper: self.helper_name.map(|n| Helper {
                name: n.to_owned(),
                info: self.helper_info.map(<[u8]>::to_vec).unwrap_or_default(),
            }),
            nat_src: self.nat_src,
            nat_dst: self.nat_dst,
            timeout: self.timeout,
            state_timeout: None,
            mark: self.mark,
            mark_mask: self.mark_mask,
            counters_orig: self.counters_orig,
            counters_reply: self.counters_reply,
            use_count: self.use_count,
            id: self.id,
            seq_adj_orig: self.seq_adj_orig,
            seq_adj_reply: self.seq_adj_reply,
            secmark: self.secmark,
            zone: self.zone,
            secctx: self.secctx.map(str::to_owned),
            timestamp: self.timestamp,
            labels: self.labels.map(Labels::from_bitmap),
            labels_mask: self.labels_mask.map(Labels::from_bitmap),
            synproxy: self.synproxy,
            status_mask: self.status_mask,
            unknown: self.unknown(),
        })
    }
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
