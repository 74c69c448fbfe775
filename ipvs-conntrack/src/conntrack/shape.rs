//! Entry shapes: for an entry layout whose every part has the form the kernel usually
//! sends, where each value sits, so that an entry of that layout is read from its values
//! only (owned entries built in place, views' tuple, protocol and TCP state).
//!
//! A shape is made once a layout repeats, from an entry that the checked decoder indexed
//! and whose tuples, TCP protocol info, SYN proxy, counters and timestamp nests have the
//! kernel's layouts. It keeps that body's header bytes (top-level and nested) under a mask.
//! Another body of the same length whose masked bytes are equal has the same headers at the
//! same places, so the checked decoder and the templates would give the same answers: its
//! values are read from the remembered positions. Anything else (ICMP tuples, SCTP/DCCP
//! info, other rare nests, unknown attributes) has no shape and takes the general path.

use crate::conntrack::entry::{
    counters_form, counters_values, synproxy_form, synproxy_values, timestamp_form, Counters,
    Entry, EntryView, Family, Known, MessageInfo, Synproxy, Timestamp,
};
use crate::conntrack::protoinfo::{tcp_form, tcp_values, ProtoInfo, TcpInfo};
use crate::conntrack::state::State;
use crate::conntrack::status::Status;
use crate::conntrack::timeout::StateTimeouts;
use crate::conntrack::tuple::{
    ported_form, ported_proto, ported_tuple, Tuple, TupleView, IPPROTO_TCP,
};
use crate::conntrack::wire::*;
use crate::netlink::attr::{align4, HeaderPositions, NLA_HDRLEN};

/// A tuple nest in the ported layout: where its value is, and its form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TupleAt {
    at: u16,
    len: u16,
    v6: bool,
    zone: bool,
}

impl TupleAt {
    #[inline(always)]
    fn value<'a>(&self, body: &'a [u8]) -> &'a [u8] {
        let at = usize::from(self.at);
        body.get(at..at + usize::from(self.len)).unwrap_or_default()
    }

    #[inline(always)]
    fn view<'a>(&self, body: &'a [u8], base: usize) -> Option<TupleView<'a>> {
        let at = usize::from(self.at);
        TupleView::from_known(self.value(body), base + at, self.v6, self.zone)
    }

    #[inline(always)]
    fn tuple(&self, body: &[u8]) -> Tuple {
        ported_tuple(self.value(body), self.v6, self.zone)
    }

    #[inline(always)]
    fn proto(&self, body: &[u8]) -> u8 {
        ported_proto(self.value(body), self.v6).unwrap_or(0)
    }
}

/// The scalar attributes an entry of the common form may carry, in [`Shape::scalars`] order.
const SCALARS: [u16; 10] = [
    CTA_STATUS,
    CTA_TIMEOUT,
    CTA_MARK,
    CTA_MARK_MASK,
    CTA_USE,
    CTA_ID,
    CTA_SECMARK,
    CTA_ZONE,
    CTA_STATUS_MASK,
    CTA_TIMESTAMP_EVENT,
];

/// Indices into [`SCALARS`] (and a shape's value positions of them).
mod scalar {
    pub(super) const STATUS: usize = 0;
    pub(super) const TIMEOUT: usize = 1;
    pub(super) const MARK: usize = 2;
    pub(super) const MARK_MASK: usize = 3;
    pub(super) const USE: usize = 4;
    pub(super) const ID: usize = 5;
    pub(super) const SECMARK: usize = 6;
    pub(super) const ZONE: usize = 7;
    pub(super) const STATUS_MASK: usize = 8;
    pub(super) const TIMESTAMP_EVENT: usize = 9;
}

/// Where the values of one entry layout are (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Body length.
    len: usize,
    /// Per whole block of the body: the remembered header bytes (0 elsewhere) and the mask
    /// (0xff on header bytes, 0 on values and padding).
    blocks: Box<[Block]>,
    /// The same for the body's last [`BLOCK`] bytes, when the body is not whole blocks.
    tail: Option<Block>,
    /// The mask over the whole body (for the tests).
    #[cfg(test)]
    mask: Vec<u8>,
    orig: TupleAt,
    reply: TupleAt,
    /// Value position of CTA_PROTOINFO in the TCP layout (0: absent).
    tcp: u16,
    /// Value position of CTA_SYNPROXY in the kernel's layout (0: absent).
    synproxy: u16,
    /// Value positions of CTA_COUNTERS_ORIG and CTA_COUNTERS_REPLY in the kernel's layout
    /// (0: absent).
    counters: [u16; 2],
    /// Value position of CTA_TIMESTAMP (0: absent), and whether it has the stop time.
    timestamp: u16,
    timestamp_stop: bool,
    /// Value position of each of [`SCALARS`] (0: absent; a value is never at 0).
    scalars: [u16; SCALARS.len()],
    /// What a view of a matching body may read without headers (kept whole: it is copied
    /// into every view as one word).
    known: Known,
    /// Whether the layout has CTA_SYNPROXY, CTA_MARK_MASK or CTA_STATUS_MASK.
    extras: bool,
}

/// Bytes compared per step (two vector registers).
const BLOCK: usize = 32;

/// Remembered bytes (`w`) and mask (`m`) of one block, aligned so that the comparison
/// takes them straight from memory (SSE2 folds only aligned loads into an operation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(16))]
struct Block {
    w: [u8; BLOCK],
    m: [u8; BLOCK],
}

/// Ors the masked difference of one block into `acc` (which stays zero while the header
/// bytes are equal).
#[inline(always)]
fn gather(acc: &mut [u8; BLOCK], b: &[u8], block: &Block) {
    let Block { w, m } = block;
    match <&[u8; BLOCK]>::try_from(b) {
        Ok(b) => {
            for i in 0..BLOCK {
                acc[i] |= (b[i] ^ w[i]) & m[i];
            }
        }
        Err(_) => acc[0] = 1,
    }
}

/// The `N` bytes at `at` of `body`; zeros if out of range, which a body that matches its
/// shape never is (every position was checked against the shape's length when it was made).
#[inline(always)]
fn bytes<const N: usize>(body: &[u8], at: usize) -> [u8; N] {
    body.get(at..at + N)
        .and_then(|b| b.try_into().ok())
        .unwrap_or([0; N])
}

impl Shape {
    /// The shape of `v`'s layout, if every part of `v` has the common form.
    #[cold]
    pub(crate) fn of(v: &EntryView<'_>) -> Option<Shape> {
        if !v.is_shapeable() {
            return None;
        }
        let body = v.body();
        if body.len() < BLOCK {
            return None;
        }
        // 0xff on every header byte the checked decoder and the templates rely on.
        let mut mask = vec![0u8; body.len()];
        let mut mark = |h: usize| -> Option<()> {
            mask.get_mut(h..h + NLA_HDRLEN)?.fill(0xff);
            Some(())
        };
        // Every top-level header (the index relies on all of them).
        let mut pos = 0;
        while pos + NLA_HDRLEN <= body.len() {
            mark(pos)?;
            let len = usize::from(u16::from_ne_bytes([body[pos], body[pos + 1]]));
            if len < NLA_HDRLEN {
                return None;
            }
            pos += align4(len);
        }
        let mut tuple = |kind: u16| -> Option<TupleAt> {
            let (at, len) = v.value_span(kind)?;
            let (v6, zone, hs) = ported_form(body.get(at..at + len)?)?;
            hs.iter().try_for_each(|h| mark(at + h))?;
            Some(TupleAt {
                at: u16::try_from(at).ok()?,
                len: u16::try_from(len).ok()?,
                v6,
                zone,
            })
        };
        let orig = tuple(CTA_TUPLE_ORIG)?;
        let reply = tuple(CTA_TUPLE_REPLY)?;
        let mut nested = |kind: u16, form: fn(&[u8]) -> Option<HeaderPositions>| -> Option<u16> {
            match v.value_span(kind) {
                None => Some(0),
                Some((at, len)) => {
                    let hs = form(body.get(at..at + len)?)?;
                    hs.iter().try_for_each(|h| mark(at + h))?;
                    u16::try_from(at).ok()
                }
            }
        };
        let tcp = nested(CTA_PROTOINFO, tcp_form)?;
        let synproxy = nested(CTA_SYNPROXY, synproxy_form)?;
        let counters = [
            nested(CTA_COUNTERS_ORIG, counters_form)?,
            nested(CTA_COUNTERS_REPLY, counters_form)?,
        ];
        let timestamp = nested(CTA_TIMESTAMP, timestamp_form)?;
        let timestamp_stop = v
            .value_span(CTA_TIMESTAMP)
            .is_some_and(|(_, len)| len == 24);
        let mut scalars = [0u16; SCALARS.len()];
        for (slot, kind) in scalars.iter_mut().zip(SCALARS) {
            if let Some((at, _)) = v.value_span(kind) {
                *slot = u16::try_from(at).ok()?;
            }
        }
        // Every value position the builder reads is inside the body.
        let inside = |at: u16, n: usize| usize::from(at) + n <= body.len();
        let ok = inside(orig.at, usize::from(orig.len))
            && inside(reply.at, usize::from(reply.len))
            && inside(tcp, 44)
            && inside(synproxy, 24)
            && counters.iter().all(|&at| inside(at, 24))
            && inside(timestamp, if timestamp_stop { 24 } else { 12 })
            && scalars.iter().zip(SCALARS).all(|(&at, kind)| {
                inside(
                    at,
                    match kind {
                        CTA_ZONE => 2,
                        CTA_TIMESTAMP_EVENT => 8,
                        _ => 4,
                    },
                )
            });
        if !ok {
            return None;
        }
        let block = |at: usize| -> Option<Block> {
            let (mut w, mut m) = ([0u8; BLOCK], [0u8; BLOCK]);
            m.copy_from_slice(mask.get(at..at + BLOCK)?);
            for i in 0..BLOCK {
                w[i] = body[at + i] & m[i];
            }
            Some(Block { w, m })
        };
        let blocks = (0..body.len() / BLOCK)
            .map(|i| block(i * BLOCK))
            .collect::<Option<_>>()?;
        let tail = match body.len() % BLOCK {
            0 => None,
            _ => Some(block(body.len() - BLOCK)?),
        };
        let known = Known {
            orig: orig.at,
            orig_len: orig.len,
            orig_v6: orig.v6,
            orig_zone: orig.zone,
            tcp,
        };
        let extras =
            synproxy != 0 || scalars[scalar::MARK_MASK] != 0 || scalars[scalar::STATUS_MASK] != 0;
        Some(Shape {
            extras,
            known,
            len: body.len(),
            blocks,
            tail,
            #[cfg(test)]
            mask,
            orig,
            reply,
            tcp,
            synproxy,
            counters,
            timestamp,
            timestamp_stop,
            scalars,
        })
    }

    /// The value positions a view of a matching body may read without headers.
    #[inline(always)]
    pub(crate) fn known(&self) -> Known {
        self.known
    }

    /// Whether `body` has this shape's headers (and length).
    #[inline]
    pub(crate) fn matches(&self, body: &[u8]) -> bool {
        if body.len() != self.len {
            return false;
        }
        // Differences are gathered lane by lane and looked at once, at the end.
        let mut acc = [0u8; BLOCK];
        for (b, block) in body.chunks_exact(BLOCK).zip(self.blocks.iter()) {
            gather(&mut acc, b, block);
        }
        // The last, partial block is compared as the body's last whole block (the bytes
        // it shares with the block before are compared twice).
        if let Some(block) = &self.tail {
            match body.len().checked_sub(BLOCK).and_then(|at| body.get(at..)) {
                Some(b) => gather(&mut acc, b, block),
                None => return false,
            }
        }
        acc == [0u8; BLOCK]
    }

    #[inline(always)]
    fn be32(body: &[u8], at: u16) -> Option<u32> {
        (at != 0).then(|| u32::from_be_bytes(bytes(body, usize::from(at))))
    }

    #[inline(always)]
    fn be16(body: &[u8], at: u16) -> Option<u16> {
        (at != 0).then(|| u16::from_be_bytes(bytes(body, usize::from(at))))
    }

    #[inline(always)]
    fn be64(body: &[u8], at: u16) -> Option<u64> {
        (at != 0).then(|| u64::from_be_bytes(bytes(body, usize::from(at))))
    }

    /// The owned entry of `v`, whose body [`Shape::matches`] this shape, with its state
    /// timeout from `timeouts` (always `Some`: the form of the iterators' items, so that
    /// the large entry is written once, in place).
    #[inline(always)]
    pub(crate) fn build<E>(
        &self,
        v: &EntryView<'_>,
        timeouts: Option<&StateTimeouts>,
    ) -> Option<Result<Entry, E>> {
        Some(Ok(ShapedEntry::new(v, self, timeouts).to_owned()))
    }
}

/// An entry of a common layout, read straight from its values (where its layout's shape
/// says they are) without building an [`Entry`]: what [`Dump::next_step`] hands out for
/// most entries of a dump.
///
/// Such an entry has the kernel's usual parts only: TCP/UDP-like tuples, TCP protocol
/// info, SYN proxy, counters, timestamp and scalars. It never has a master tuple, helper,
/// NAT ranges, sequence adjustments, security context, labels or unknown attributes, so
/// [`ShapedEntry::to_owned`] has those empty. Every accessor answers what the checked
/// decoder gives for the same bytes.
///
/// [`Dump::next_step`]: crate::conntrack::Dump::next_step
#[derive(Clone, Copy, Debug)]
pub struct ShapedEntry<'a> {
    body: &'a [u8],
    /// The body's absolute offset (for the tuple views' error offsets).
    base: usize,
    shape: &'a Shape,
    timeouts: Option<&'a StateTimeouts>,
    family: Family,
    message: MessageInfo,
}

impl<'a> ShapedEntry<'a> {
    /// The values of `v`, whose body matches `shape`.
    #[inline(always)]
    pub(crate) fn new(
        v: &EntryView<'a>,
        shape: &'a Shape,
        timeouts: Option<&'a StateTimeouts>,
    ) -> Self {
        ShapedEntry {
            body: v.body(),
            base: v.base(),
            shape,
            timeouts,
            family: v.family(),
            message: v.message(),
        }
    }

    /// The values of an entry body that matches `shape`, without a view.
    #[inline(always)]
    pub(crate) fn from_parts(
        family: u8,
        message: MessageInfo,
        body: &'a [u8],
        base: usize,
        shape: &'a Shape,
        timeouts: Option<&'a StateTimeouts>,
    ) -> Self {
        ShapedEntry {
            body,
            base,
            shape,
            timeouts,
            family: Family::from(family),
            message,
        }
    }

    #[inline(always)]
    fn scalar(&self, i: usize) -> u16 {
        self.shape.scalars.get(i).copied().unwrap_or(0)
    }

    /// The state timeouts the dump joins (`None` without them).
    #[inline(always)]
    pub fn state_timeouts(&self) -> Option<&'a StateTimeouts> {
        self.timeouts
    }
    /// Address family.
    #[inline(always)]
    pub fn family(&self) -> Family {
        self.family
    }
    /// The message this entry came in.
    #[inline(always)]
    pub fn message(&self) -> MessageInfo {
        self.message
    }
    /// Original direction tuple.
    #[inline(always)]
    pub fn orig(&self) -> Tuple {
        self.shape.orig.tuple(self.body)
    }
    /// Reply direction tuple.
    #[inline(always)]
    pub fn reply(&self) -> Tuple {
        self.shape.reply.tuple(self.body)
    }
    /// Original direction tuple as a view (nothing to free: for callers that copy its
    /// values into their own structure); `None` never happens for a matching body.
    #[inline(always)]
    pub fn orig_view(&self) -> Option<TupleView<'a>> {
        self.shape.orig.view(self.body, self.base)
    }
    /// Reply direction tuple as a view (see [`ShapedEntry::orig_view`]).
    #[inline(always)]
    pub fn reply_view(&self) -> Option<TupleView<'a>> {
        self.shape.reply.view(self.body, self.base)
    }
    /// L4 protocol number (of the original tuple).
    #[inline(always)]
    pub fn proto(&self) -> u8 {
        self.shape.orig.proto(self.body)
    }
    /// CTA_STATUS (empty if absent).
    #[inline(always)]
    pub fn status(&self) -> Status {
        Shape::be32(self.body, self.scalar(scalar::STATUS))
            .map_or(Status::empty(), Status::from_bits_retain)
    }
    /// CTA_PROTOINFO (TCP's, the only one a shape has).
    #[inline(always)]
    pub fn protoinfo(&self) -> Option<ProtoInfo> {
        self.tcp().map(|t| ProtoInfo {
            tcp: Some(t),
            ..ProtoInfo::default()
        })
    }
    /// CTA_PROTOINFO_TCP's values.
    #[inline(always)]
    pub fn tcp(&self) -> Option<TcpInfo> {
        let at = self.shape.tcp;
        (at != 0).then(|| tcp_values(&bytes(self.body, usize::from(at))))
    }
    /// Connection state (derived as [`State::derive`] does).
    #[inline(always)]
    pub fn state(&self) -> State {
        let proto = self.proto();
        // The only protocol info a shape has is TCP's: for the other protocols the state
        // comes from the status bits (or is unknown), as `State::derive` decides.
        match proto {
            IPPROTO_TCP => self
                .tcp()
                .and_then(|t| t.state)
                .map_or(State::Unknown, State::Tcp),
            _ => State::derive(proto, None, self.status()),
        }
    }
    /// Full timeout of the current state under the dump's policy (`None` without one).
    #[inline(always)]
    pub fn state_timeout(&self) -> Option<u32> {
        self.timeouts
            .and_then(|t| t.for_state(self.proto(), self.state()))
    }
    /// CTA_TIMEOUT: seconds left.
    #[inline(always)]
    pub fn timeout(&self) -> Option<u32> {
        Shape::be32(self.body, self.scalar(scalar::TIMEOUT))
    }
    /// CTA_MARK.
    #[inline(always)]
    pub fn mark(&self) -> Option<u32> {
        Shape::be32(self.body, self.scalar(scalar::MARK))
    }
    /// CTA_MARK_MASK.
    #[inline(always)]
    pub fn mark_mask(&self) -> Option<u32> {
        Shape::be32(self.body, self.scalar(scalar::MARK_MASK))
    }
    /// CTA_USE.
    #[inline(always)]
    pub fn use_count(&self) -> Option<u32> {
        Shape::be32(self.body, self.scalar(scalar::USE))
    }
    /// CTA_ID.
    #[inline(always)]
    pub fn id(&self) -> Option<u32> {
        Shape::be32(self.body, self.scalar(scalar::ID))
    }
    /// CTA_SECMARK.
    #[inline(always)]
    pub fn secmark(&self) -> Option<u32> {
        Shape::be32(self.body, self.scalar(scalar::SECMARK))
    }
    /// CTA_ZONE.
    #[inline(always)]
    pub fn zone(&self) -> Option<u16> {
        Shape::be16(self.body, self.scalar(scalar::ZONE))
    }
    /// CTA_STATUS_MASK.
    #[inline(always)]
    pub fn status_mask(&self) -> Option<u32> {
        Shape::be32(self.body, self.scalar(scalar::STATUS_MASK))
    }
    /// CTA_TIMESTAMP_EVENT.
    #[inline(always)]
    pub fn event_time(&self) -> Option<u64> {
        Shape::be64(self.body, self.scalar(scalar::TIMESTAMP_EVENT))
    }
    /// CTA_COUNTERS_ORIG.
    #[inline(always)]
    pub fn counters_orig(&self) -> Option<Counters> {
        self.shape.counters(self.body, 0)
    }
    /// CTA_COUNTERS_REPLY.
    #[inline(always)]
    pub fn counters_reply(&self) -> Option<Counters> {
        self.shape.counters(self.body, 1)
    }
    /// CTA_TIMESTAMP.
    #[inline(always)]
    pub fn timestamp(&self) -> Option<Timestamp> {
        self.shape.timestamp(self.body)
    }
    /// CTA_SYNPROXY.
    #[inline(always)]
    pub fn synproxy(&self) -> Option<Synproxy> {
        self.shape.synproxy(self.body)
    }
    /// Whether the entry has a part a dump entry does not: CTA_SYNPROXY (entries made over
    /// ctnetlink), or the request-only CTA_MARK_MASK or CTA_STATUS_MASK (what
    /// `synproxy`, `mark_mask` and `status_mask` answer, known from the shape alone).
    #[inline(always)]
    pub fn has_extras(&self) -> bool {
        self.shape.extras
    }

    /// The owned entry.
    #[inline(always)]
    pub fn to_owned(&self) -> Entry {
        let orig = self.orig();
        let protoinfo = self.protoinfo();
        let status = self.status();
        let state = State::derive(orig.proto, protoinfo.as_ref(), status);
        let state_timeout = self.timeouts.and_then(|t| t.for_state(orig.proto, state));
        Entry {
            family: self.family,
            message: self.message,
            state,
            reply: self.reply(),
            orig,
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
            counters_orig: self.counters_orig(),
            counters_reply: self.counters_reply(),
            use_count: self.use_count(),
            id: self.id(),
            seq_adj_orig: None,
            seq_adj_reply: None,
            secmark: self.secmark(),
            zone: self.zone(),
            secctx: None,
            timestamp: self.timestamp(),
            event_time: self.event_time(),
            labels: None,
            labels_mask: None,
            synproxy: self.synproxy(),
            status_mask: self.status_mask(),
            unknown: Vec::new(),
            unknown_nested: Vec::new(),
        }
    }

    /// [`ShapedEntry::to_owned`] written into an entry the caller reuses, field by field
    /// (`*out = entry` would build the large entry aside and copy it); its vectors keep
    /// their capacity.
    #[inline(always)]
    pub fn write_into(&self, out: &mut Entry) {
        // Every field is named (no `..`): a new field must be set here too.
        let Entry {
            family,
            message,
            state,
            orig,
            reply,
            master,
            status,
            protoinfo,
            helper,
            nat_src,
            nat_dst,
            timeout,
            state_timeout,
            mark,
            mark_mask,
            counters_orig,
            counters_reply,
            use_count,
            id,
            seq_adj_orig,
            seq_adj_reply,
            secmark,
            zone,
            secctx,
            timestamp,
            event_time,
            labels,
            labels_mask,
            synproxy,
            status_mask,
            unknown,
            unknown_nested,
        } = out;
        *family = self.family;
        *message = self.message;
        *orig = self.orig();
        *reply = self.reply();
        *master = None;
        *status = self.status();
        *protoinfo = self.protoinfo();
        *state = State::derive(orig.proto, protoinfo.as_ref(), *status);
        *state_timeout = self.timeouts.and_then(|t| t.for_state(orig.proto, *state));
        *helper = None;
        *nat_src = None;
        *nat_dst = None;
        *timeout = self.timeout();
        *mark = self.mark();
        *mark_mask = self.mark_mask();
        *counters_orig = self.counters_orig();
        *counters_reply = self.counters_reply();
        *use_count = self.use_count();
        *id = self.id();
        *seq_adj_orig = None;
        *seq_adj_reply = None;
        *secmark = self.secmark();
        *zone = self.zone();
        *secctx = None;
        *timestamp = self.timestamp();
        *event_time = self.event_time();
        *labels = None;
        *labels_mask = None;
        *synproxy = self.synproxy();
        *status_mask = self.status_mask();
        unknown.clear();
        unknown_nested.clear();
    }
}

impl Shape {
    /// CTA_SYNPROXY, if the layout has it.
    #[inline(always)]
    fn synproxy(&self, body: &[u8]) -> Option<Synproxy> {
        (self.synproxy != 0).then(|| synproxy_values(&bytes(body, usize::from(self.synproxy))))
    }

    /// CTA_COUNTERS_ORIG (`i` 0) or CTA_COUNTERS_REPLY (1), if the layout has it.
    #[inline(always)]
    fn counters(&self, body: &[u8], i: usize) -> Option<Counters> {
        let at = self.counters.get(i).copied().unwrap_or(0);
        (at != 0).then(|| counters_values(&bytes(body, usize::from(at))))
    }

    /// CTA_TIMESTAMP, if the layout has it.
    #[inline(always)]
    fn timestamp(&self, body: &[u8]) -> Option<Timestamp> {
        (self.timestamp != 0).then(|| {
            let at = usize::from(self.timestamp);
            Timestamp {
                start: Some(u64::from_be_bytes(bytes(body, at + 4))),
                stop: self
                    .timestamp_stop
                    .then(|| u64::from_be_bytes(bytes(body, at + 16))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::messages::EntryViews;
    use crate::conntrack::test_bodies::{bodies, info};
    use crate::netlink::frame::Frames;
    use proptest::prelude::*;

    /// Entries the batched write path created (TCP/IPv4 with SYN proxy, UDP, TCP/IPv6),
    /// dumped by kernel 6.18 (`dump_fill.bin`, see tests/fixtures/README.md).
    const FILL: &[u8] = include_bytes!("../../../tests/fixtures/dump_fill.bin");
    /// Real traffic with accounting and timestamps on (`dump_all.bin`).
    const ALL: &[u8] = include_bytes!("../../../tests/fixtures/dump_all.bin");
    /// Entries `conntrack -I` created with a zone, a tuple zone (IPv6 UDP) and ICMP.
    const ZONES: &[u8] = include_bytes!("../../../tests/fixtures/dump_created_zones.bin");

    /// The entries of the recordings that have a shape.
    fn shaped() -> Vec<(u8, Vec<u8>)> {
        let mut out = bodies(FILL);
        for data in [ZONES, ALL] {
            out.extend(
                bodies(data)
                    .into_iter()
                    .filter(|(f, b)| Shape::of(&view(*f, b).unwrap()).is_some()),
            );
        }
        out
    }

    fn view(family: u8, body: &[u8]) -> Result<EntryView<'_>, crate::error::DecodeError> {
        EntryView::parse_body(family, info(), body, 20)
    }

    #[test]
    fn recorded_fill_entries_have_shapes_that_build_the_checked_entry() {
        let all = bodies(FILL);
        assert_eq!(all.len(), 40);
        let mut shapes: Vec<Shape> = Vec::new();
        for (family, body) in &all {
            let v = view(*family, body).unwrap();
            let s = Shape::of(&v).expect("every entry of the fill has a shape");
            assert!(s.matches(body));
            let built: Entry = s.build::<()>(&v, None).unwrap().unwrap();
            assert_eq!(built, v.to_owned().unwrap());
            assert!(built.synproxy.is_some() || built.orig.proto != 6 || *family == 10);
            // Into an entry that holds another one (with heap parts): the same entry.
            let mut reused =
                Entry::from_frame(&Frames::new(ALL).flatten().nth(3).unwrap()).unwrap();
            reused.unknown.push(crate::netlink::attr::RawAttr {
                kind: 99,
                nested: false,
                value: vec![1, 2, 3],
            });
            ShapedEntry::new(&v, &s, None).write_into(&mut reused);
            assert_eq!(reused, built);
            if !shapes.contains(&s) {
                shapes.push(s);
            }
        }
        // TCP/IPv4, UDP/IPv4 and TCP/IPv6 layouts; each shape matches only its own kind.
        assert!(shapes.len() >= 3, "{} shapes", shapes.len());
        for s in &shapes {
            let n = all.iter().filter(|(_, b)| s.matches(b)).count();
            assert!(n >= 1 && n < all.len());
        }
    }

    #[test]
    fn request_masks_are_extras() {
        let mut synproxies = [0; 2];
        for ((family, body), kind) in shaped()
            .into_iter()
            .zip([CTA_MARK_MASK, CTA_STATUS_MASK].into_iter().cycle())
        {
            let mut with = body.clone();
            with.extend_from_slice(&8u16.to_ne_bytes());
            with.extend_from_slice(&kind.to_ne_bytes());
            with.extend_from_slice(&0xff00u32.to_be_bytes());
            for (b, masked) in [(&body, false), (&with, true)] {
                let v = view(family, b).unwrap();
                let shape = Shape::of(&v).expect("a mask keeps the layout shapeable");
                let s = ShapedEntry::new(&v, &shape, None);
                let synproxy = s.synproxy().is_some();
                synproxies[usize::from(synproxy)] += 1;
                assert_eq!(s.has_extras(), synproxy || masked, "kind {kind}");
                assert_eq!(s.mark_mask().is_some() || s.status_mask().is_some(), masked);
                assert_eq!(s.to_owned(), v.to_owned().unwrap());
            }
        }
        // Entries made over ctnetlink carry CTA_SYNPROXY; entries made by traffic do not.
        assert!(synproxies[0] > 0 && synproxies[1] > 0, "{synproxies:?}");
    }

    #[test]
    fn shaped_entries_answer_like_the_checked_decoder() {
        // A distinct timeout per sysctl name, so that a wrong state gives a wrong value.
        let t = crate::conntrack::timeout::from_sysctls(|name| {
            Some(
                name.bytes()
                    .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))),
            )
        });
        let all = shaped();
        let mut with_state_timeout = 0;
        for (family, body) in &all {
            let v = view(*family, body).unwrap();
            let shape = Shape::of(&v).unwrap();
            let s = ShapedEntry::new(&v, &shape, Some(&t));
            let mut want = v.to_owned().unwrap();
            want.state_timeout = t.for_state(want.orig.proto, want.state);
            with_state_timeout += usize::from(want.state_timeout.is_some());
            assert_eq!(s.to_owned(), want);
            assert_eq!(s.family(), want.family);
            assert_eq!(s.message(), want.message);
            assert_eq!(s.orig(), want.orig);
            assert_eq!(s.reply(), want.reply);
            assert_eq!(s.proto(), want.orig.proto);
            assert_eq!(s.status(), want.status);
            assert_eq!(s.protoinfo(), want.protoinfo);
            assert_eq!(s.tcp(), want.protoinfo.as_ref().and_then(|p| p.tcp.clone()));
            assert_eq!(s.state(), want.state);
            assert_eq!(s.state_timeout(), want.state_timeout);
            assert_eq!(s.timeout(), want.timeout);
            assert_eq!(s.mark(), want.mark);
            assert_eq!(s.mark_mask(), want.mark_mask);
            assert_eq!(s.use_count(), want.use_count);
            assert_eq!(s.id(), want.id);
            assert_eq!(s.secmark(), want.secmark);
            assert_eq!(s.zone(), want.zone);
            assert_eq!(s.status_mask(), want.status_mask);
            assert_eq!(s.event_time(), want.event_time);
            assert_eq!(s.counters_orig(), want.counters_orig);
            assert_eq!(s.counters_reply(), want.counters_reply);
            assert_eq!(s.timestamp(), want.timestamp);
            assert_eq!(s.synproxy(), want.synproxy);
            assert_eq!(
                s.has_extras(),
                want.synproxy.is_some() || want.mark_mask.is_some() || want.status_mask.is_some()
            );
            // Without timeouts (offline decoding) there is no state timeout.
            assert_eq!(ShapedEntry::new(&v, &shape, None).state_timeout(), None);
        }
        assert!(
            all.len() >= 40 && with_state_timeout >= 40,
            "{with_state_timeout} of {}",
            all.len()
        );
    }

    #[test]
    fn zones_have_shapes_and_icmp_has_none() {
        let all = bodies(ZONES);
        assert_eq!(all.len(), 3);
        let mut zones = 0;
        for (family, body) in &all {
            let v = view(*family, body).unwrap();
            let e = v.to_owned().unwrap();
            match Shape::of(&v) {
                Some(s) => {
                    assert!(s.matches(body));
                    let built: Entry = s.build::<()>(&v, None).unwrap().unwrap();
                    assert_eq!(built, e);
                    zones += usize::from(e.zone == Some(7)) + usize::from(e.orig.zone == Some(9));
                }
                None => assert_eq!(e.orig.proto, 1, "only the ICMP entry has no shape"),
            }
        }
        assert_eq!(zones, 2, "the entry zone and the tuple zone were built");
    }

    /// Real traffic recorded with accounting and timestamps on.
    const TRAFFIC: [&[u8]; 4] = [
        ALL,
        include_bytes!("../../../tests/fixtures/dump_ipv6.bin"),
        include_bytes!("../../../tests/fixtures/dump_mark.bin"),
        include_bytes!("../../../tests/fixtures/dump_zone.bin"),
    ];

    #[test]
    fn recorded_traffic_with_accounting_builds_through_shapes() {
        let (mut shaped, mut counted) = (0, 0);
        for data in TRAFFIC {
            for (family, body) in bodies(data) {
                let v = view(family, &body).unwrap();
                let want = v.to_owned().unwrap();
                match Shape::of(&v) {
                    Some(s) => {
                        assert!(s.matches(&body));
                        let got: Entry = s.build::<()>(&v, None).unwrap().unwrap();
                        assert_eq!(got, want);
                        shaped += 1;
                        counted += usize::from(
                            want.counters_orig.is_some_and(|c| c.packets > 0)
                                && want.timestamp.is_some_and(|t| t.start.is_some()),
                        );
                    }
                    // Without a shape: a rare nest besides counters and timestamp (labels,
                    // NAT, helper...), or a part the templates do not cover (ICMP, SCTP).
                    None => assert!(
                        !v.is_shapeable()
                            || !matches!(want.orig.proto, 6 | 17)
                            || want.protoinfo.as_ref().is_some_and(|p| p.tcp.is_none())
                    ),
                }
            }
        }
        assert!(shaped >= 5, "{shaped} shaped entries");
        assert!(counted >= 5, "{counted} with counters and a start time");
    }

    #[test]
    fn entries_with_other_rare_nests_have_no_shape() {
        for (family, body) in bodies(ALL) {
            let v = view(family, &body).unwrap();
            if !v.is_shapeable() {
                assert!(Shape::of(&v).is_none());
            }
        }
    }

    #[test]
    fn owned_iteration_with_shapes_equals_plain_decoding() {
        for data in [FILL, ALL, ZONES] {
            let twice = [data, data].concat();
            let plain: Vec<Entry> = Frames::new(&twice)
                .flatten()
                .filter(|f| f.header.message_type >= 16)
                .map(|f| Entry::from_frame(&f).unwrap())
                .collect();
            let owned: Vec<Entry> = EntryViews::new(&twice)
                .owned()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(owned, plain);
        }
    }

    /// Positions of the bytes a shape compares (its mask).
    fn header_bytes(s: &Shape) -> Vec<usize> {
        (0..s.len).filter(|&i| s.mask[i] != 0).collect()
    }

    proptest! {
        /// Any bytes: a body that matches a shape is indexed like the shape's layout and
        /// its shaped entry is the one the checked decoder builds.
        #[test]
        fn a_matching_body_builds_what_the_checked_decoder_builds(
            pick in any::<usize>(),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
            on_headers in any::<bool>(),
        ) {
            let all = shaped();
            let (family, body) = &all[pick % all.len()];
            let v = view(*family, body).unwrap();
            let s = Shape::of(&v).unwrap();
            let heads = header_bytes(&s);
            let mut m = body.clone();
            for (at, x) in flips {
                // Half the cases change header bytes, half anywhere.
                let i = if on_headers { heads[at % heads.len()] } else { at % m.len() };
                m[i] = x;
            }
            if s.matches(&m) {
                let checked = view(*family, &m).expect("a matching body indexes");
                prop_assert_eq!(checked.index(), v.index());
                // A view reading values at the shape's positions answers like the checked one.
                let known = checked.with_known(s.known());
                prop_assert_eq!(
                    known.orig().unwrap().map(|t| t.to_owned()),
                    checked.orig().unwrap().map(|t| t.to_owned())
                );
                prop_assert_eq!(known.proto(), checked.proto());
                prop_assert_eq!(known.state(), checked.state());
                let want = checked.to_owned().expect("a matching body decodes");
                let got: Entry = s.build::<()>(&checked, None).unwrap().unwrap();
                prop_assert_eq!(got, want);
            } else {
                prop_assert!(heads.iter().any(|&i| m[i] != body[i]));
            }
        }

        /// Values changed anywhere outside the headers always match, and build exactly.
        #[test]
        fn changed_values_keep_the_shape(
            pick in any::<usize>(),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..12),
        ) {
            let all = shaped();
            let (family, body) = &all[pick % all.len()];
            let v = view(*family, body).unwrap();
            let s = Shape::of(&v).unwrap();
            let values: Vec<usize> = (0..s.len).filter(|&i| s.mask[i] == 0).collect();
            let mut m = body.clone();
            for (at, x) in flips {
                m[values[at % values.len()]] = x;
            }
            prop_assert!(s.matches(&m));
            let checked = view(*family, &m).unwrap();
            let known = checked.with_known(s.known());
            prop_assert_eq!(
                known.orig().unwrap().map(|t| t.to_owned()),
                checked.orig().unwrap().map(|t| t.to_owned())
            );
            prop_assert_eq!(known.state(), checked.state());
            let got: Entry = s.build::<()>(&checked, None).unwrap().unwrap();
            prop_assert_eq!(got, checked.to_owned().unwrap());
        }
    }
}
