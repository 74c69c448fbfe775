//! A conntrack entry: the checked zero-copy [`EntryView`] over one ctnetlink message and
//! the owned [`Entry`] built from it.

use std::net::IpAddr;

use crate::conntrack::protoinfo::{ProtoInfo, TcpState};
use crate::conntrack::state::State;
use crate::conntrack::status::Status;
use crate::conntrack::tuple::{Tuple, TupleView, IPPROTO_DCCP, IPPROTO_SCTP, IPPROTO_TCP};
use crate::conntrack::wire::*;
use crate::error::{AttrPath, DecodeError, DecodeErrorKind};
use crate::netlink::attr::{
    align4, for_each_attr, Attr, Attrs, RawAttr, NLA_HDRLEN, NLA_TYPE_MASK,
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

/// Number of top-level attribute slots (CTA_UNSPEC ..= CTA_TIMESTAMP_EVENT).
const SLOTS: usize = 28;

/// A checked zero-copy view of one conntrack entry message.
///
/// Building it walks the top-level attributes once: every length is checked, duplicates
/// and wrong-size integers are rejected, and the position of each known attribute is
/// remembered. Nothing is allocated and nested attributes are not decoded until asked
/// for: scalar accessors cannot fail, nested ones decode on demand and return a typed
/// error (with the full attribute path) for malformed nests.
#[derive(Clone, Copy, Debug)]
pub struct EntryView<'a> {
    family: Family,
    message: MessageInfo,
    body: &'a [u8],
    base: usize,
    /// Header position + 1 of each known attribute in `body` (0 = absent).
    slots: [u32; SLOTS],
    has_unknown: bool,
}

/// Size a top-level attribute must have, for the fixed-size ones.
fn fixed_size(kind: u16) -> Option<usize> {
    match kind {
        CTA_STATUS | CTA_TIMEOUT | CTA_MARK | CTA_USE | CTA_ID | CTA_SECMARK | CTA_MARK_MASK
        | CTA_STATUS_MASK => Some(4),
        CTA_ZONE => Some(2),
        CTA_TIMESTAMP_EVENT => Some(8),
        _ => None,
    }
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
            slots: [0; SLOTS],
            has_unknown: false,
        };
        // One tight pass over the headers (hot path: no Attr values are built). Any fault
        // is reported by re-running the checked iterator, which names it precisely.
        let mut pos = 0usize;
        while let Some(&[l0, l1, t0, t1]) = body.get(pos..pos + NLA_HDRLEN) {
            let len = usize::from(u16::from_ne_bytes([l0, l1]));
            let kind = u16::from_ne_bytes([t0, t1]) & NLA_TYPE_MASK;
            if len < NLA_HDRLEN || pos + len > body.len() {
                return Err(v.slow_error(pos));
            }
            match v.slots.get_mut(usize::from(kind)) {
                Some(slot) if kind != 0 && kind != CTA_FILTER => {
                    let bad_size = fixed_size(kind).is_some_and(|n| n != len - NLA_HDRLEN);
                    if *slot != 0 || bad_size {
                        return Err(v.slow_error(pos));
                    }
                    // Header position + 1; u32 is enough (netlink messages are < 4 GiB).
                    *slot = pos as u32 + 1;
                }
                _ => v.has_unknown = true,
            }
            pos += align4(len);
        }
        if pos < body.len() {
            return Err(v.slow_error(pos));
        }
        Ok(v)
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
        let pos = *self.slots.get(usize::from(kind))?;
        if pos == 0 {
            return None;
        }
        Attr::at(self.body, pos as usize - 1, self.base, CTA_NAMES)
    }

    #[inline]
    fn be32(&self, kind: u16) -> Option<u32> {
        self.attr(kind).and_then(|a| a.be32().ok())
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

    /// Address family.
    pub fn family(&self) -> Family {
        self.family
    }
    /// The message this entry came in.
    pub fn message(&self) -> MessageInfo {
        self.message
    }
    /// CTA_TIMEOUT: seconds left.
    pub fn timeout(&self) -> Option<u32> {
        self.be32(CTA_TIMEOUT)
    }
    /// CTA_STATUS.
    pub fn status(&self) -> Option<Status> {
        self.be32(CTA_STATUS).map(Status::from_bits_retain)
    }
    /// CTA_MARK.
    pub fn mark(&self) -> Option<u32> {
        self.be32(CTA_MARK)
    }
    /// CTA_MARK_MASK.
    pub fn mark_mask(&self) -> Option<u32> {
        self.be32(CTA_MARK_MASK)
    }
    /// CTA_USE: reference count.
    pub fn use_count(&self) -> Option<u32> {
        self.be32(CTA_USE)
    }
    /// CTA_ID.
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
        self.attr(CTA_ZONE).and_then(|a| a.be16().ok())
    }
    /// CTA_TIMESTAMP_EVENT (ns), sent with events by kernels ≥ 5.19 when timestamps are on.
    pub fn event_time(&self) -> Option<u64> {
        self.attr(CTA_TIMESTAMP_EVENT).and_then(|a| a.be64().ok())
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
    pub fn orig(&self) -> Result<Option<TupleView<'a>>, DecodeError> {
        self.nest(CTA_TUPLE_ORIG, TupleView::parse)
    }
    /// CTA_TUPLE_REPLY.
    pub fn reply(&self) -> Result<Option<TupleView<'a>>, DecodeError> {
        self.nest(CTA_TUPLE_REPLY, TupleView::parse)
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
    pub fn proto(&self) -> Result<Option<u8>, DecodeError> {
        Ok(self.nest(CTA_TUPLE_ORIG, proto_num)?.flatten())
    }

    /// The connection state, derived from the protocol, protocol info and status; reads
    /// only what it needs (for TCP only the state byte).
    pub fn state(&self) -> Result<State, DecodeError> {
        let proto = self.proto()?.unwrap_or(0);
        let status = self.status().unwrap_or_default();
        let info = match proto {
            IPPROTO_TCP => {
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
        if !self.has_unknown {
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
        let missing = || DecodeError::new(DecodeErrorKind::Missing, AttrPath::ROOT, self.base);
        let orig = self.orig()?.ok_or_else(missing)?;
        let reply = self.reply()?.ok_or_else(missing)?.to_owned();
        let status = self.status().unwrap_or_default();
        let protoinfo = self.protoinfo()?;
        let state = State::derive(orig.proto(), protoinfo.as_ref(), status);
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
            state_timeout: None,
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
