//! Filling the C entry from the core's values: an owned [`Entry`], a [`ShapedEntry`]
//! read where it lies in the receive buffer (the struct dump's common case), or the parts
//! an entry view gives (`ipvsct_ct_view_entry`). One mapping, [`fill`], serves all three.

use ipvs_conntrack::conntrack::{
    Counters, Entry, MessageInfo, ProtoInfo, ShapedEntry, State, TcpFlagsMask, TcpInfo, Timestamp,
};

use crate::cstr;
use crate::entry::*;
use crate::timeouts::IPVSCT_TIMEOUT_UNSET;
use crate::tuple::ipvsct_tuple;

/// The protocol details the C entry holds.
#[derive(Clone, Copy, Default)]
pub(crate) struct ProtoValues {
    wscale_orig: Option<u8>,
    wscale_reply: Option<u8>,
    flags_orig: Option<TcpFlagsMask>,
    flags_reply: Option<TcpFlagsMask>,
    sctp_vtag_orig: Option<u32>,
    sctp_vtag_reply: Option<u32>,
    dccp_handshake_seq: Option<u64>,
    dccp_role: Option<u8>,
}

impl ProtoValues {
    #[inline(always)]
    fn of(p: Option<&ProtoInfo>) -> Self {
        let Some(p) = p else {
            return ProtoValues::default();
        };
        let mut v = p.tcp.as_ref().map(ProtoValues::of_tcp).unwrap_or_default();
        if let Some(s) = &p.sctp {
            v.sctp_vtag_orig = s.vtag_original;
            v.sctp_vtag_reply = s.vtag_reply;
        }
        if let Some(d) = &p.dccp {
            v.dccp_handshake_seq = d.handshake_seq;
            v.dccp_role = d.role.map(|r| r.value());
        }
        v
    }

    #[inline(always)]
    fn of_tcp(t: &TcpInfo) -> Self {
        ProtoValues {
            wscale_orig: t.wscale_original,
            wscale_reply: t.wscale_reply,
            flags_orig: t.flags_original,
            flags_reply: t.flags_reply,
            ..ProtoValues::default()
        }
    }
}

/// Where [`fill`] takes an entry's values from.
pub(crate) trait EntrySource {
    fn family(&self) -> u8;
    fn message(&self) -> MessageInfo;
    fn state(&self) -> State;
    /// The state timeout of `state` (the entry's).
    fn state_timeout(&self, state: State) -> Option<u32>;
    fn fill_orig(&self, out: &mut ipvsct_tuple);
    fn fill_reply(&self, out: &mut ipvsct_tuple);
    /// Fills the master tuple; false (and `out` untouched) if there is none.
    fn fill_master(&self, out: &mut ipvsct_tuple) -> bool;
    fn status(&self) -> u32;
    fn proto_values(&self) -> ProtoValues;
    fn helper(&self) -> Option<&str>;
    /// The label bitmap and whether set bits past it were cut, if the entry has labels.
    fn labels(&self) -> Option<([u32; IPVSCT_LABEL_WORDS], bool)>;
    /// Whether the entry has parts the C struct does not hold.
    fn more(&self) -> bool;
    fn timeout(&self) -> Option<u32>;
    fn mark(&self) -> Option<u32>;
    fn use_count(&self) -> Option<u32>;
    fn id(&self) -> Option<u32>;
    fn secmark(&self) -> Option<u32>;
    fn zone(&self) -> Option<u16>;
    fn counters_orig(&self) -> Option<Counters>;
    fn counters_reply(&self) -> Option<Counters>;
    fn timestamp(&self) -> Option<Timestamp>;
    fn event_time(&self) -> Option<u64>;
}

impl EntrySource for Entry {
    #[inline(always)]
    fn family(&self) -> u8 {
        self.family.value()
    }
    #[inline(always)]
    fn message(&self) -> MessageInfo {
        self.message
    }
    #[inline(always)]
    fn state(&self) -> State {
        self.state
    }
    #[inline(always)]
    fn state_timeout(&self, _: State) -> Option<u32> {
        self.state_timeout
    }
    #[inline(always)]
    fn fill_orig(&self, out: &mut ipvsct_tuple) {
        ipvsct_tuple::fill_from_core(out, &self.orig);
    }
    #[inline(always)]
    fn fill_reply(&self, out: &mut ipvsct_tuple) {
        ipvsct_tuple::fill_from_core(out, &self.reply);
    }
    #[inline(always)]
    fn fill_master(&self, out: &mut ipvsct_tuple) -> bool {
        match &self.master {
            Some(m) => {
                ipvsct_tuple::fill_from_core(out, m);
                true
            }
            None => false,
        }
    }
    #[inline(always)]
    fn status(&self) -> u32 {
        self.status.bits()
    }
    #[inline(always)]
    fn proto_values(&self) -> ProtoValues {
        ProtoValues::of(self.protoinfo.as_ref())
    }
    #[inline(always)]
    fn helper(&self) -> Option<&str> {
        self.helper.as_ref().map(|h| h.name.as_str())
    }
    #[inline(always)]
    fn labels(&self) -> Option<([u32; IPVSCT_LABEL_WORDS], bool)> {
        self.labels
            .as_ref()
            .map(|l| label_words(l.0.iter().copied()))
    }
    #[inline(always)]
    fn more(&self) -> bool {
        // CTA_SYNPROXY first: every entry made over ctnetlink carries it.
        self.synproxy.is_some()
            || !self.unknown.is_empty()
            || !self.orig.unknown.is_empty()
            || !self.reply.unknown.is_empty()
            || !self.unknown_nested.is_empty()
            || self.master.as_ref().is_some_and(|m| !m.unknown.is_empty())
            || self
                .protoinfo
                .as_ref()
                .is_some_and(|p| !p.unknown.is_empty())
            || self.seq_adj_orig.is_some()
            || self.seq_adj_reply.is_some()
            || self.secctx.is_some()
            || self.nat_src.is_some()
            || self.nat_dst.is_some()
            || self.labels_mask.is_some()
            || self.mark_mask.is_some()
            || self.status_mask.is_some()
            || self.helper.as_ref().is_some_and(|h| !h.info.is_empty())
    }
    #[inline(always)]
    fn timeout(&self) -> Option<u32> {
        self.timeout
    }
    #[inline(always)]
    fn mark(&self) -> Option<u32> {
        self.mark
    }
    #[inline(always)]
    fn use_count(&self) -> Option<u32> {
        self.use_count
    }
    #[inline(always)]
    fn id(&self) -> Option<u32> {
        self.id
    }
    #[inline(always)]
    fn secmark(&self) -> Option<u32> {
        self.secmark
    }
    #[inline(always)]
    fn zone(&self) -> Option<u16> {
        self.zone
    }
    #[inline(always)]
    fn counters_orig(&self) -> Option<Counters> {
        self.counters_orig
    }
    #[inline(always)]
    fn counters_reply(&self) -> Option<Counters> {
        self.counters_reply
    }
    #[inline(always)]
    fn timestamp(&self) -> Option<Timestamp> {
        self.timestamp
    }
    #[inline(always)]
    fn event_time(&self) -> Option<u64> {
        self.event_time
    }
}

impl EntrySource for ShapedEntry<'_> {
    #[inline(always)]
    fn family(&self) -> u8 {
        ShapedEntry::family(self).value()
    }
    #[inline(always)]
    fn message(&self) -> MessageInfo {
        ShapedEntry::message(self)
    }
    #[inline(always)]
    fn state(&self) -> State {
        ShapedEntry::state(self)
    }
    #[inline(always)]
    fn state_timeout(&self, state: State) -> Option<u32> {
        self.state_timeouts()
            .and_then(|t| t.for_state(ShapedEntry::proto(self), state))
    }
    #[inline(always)]
    fn fill_orig(&self, out: &mut ipvsct_tuple) {
        // Through the tuple's view: nothing built that needs dropping.
        match self.orig_view() {
            Some(t) => ipvsct_tuple::fill_from_view(out, &t),
            None => ipvsct_tuple::fill_from_core(out, &self.orig()),
        }
    }
    #[inline(always)]
    fn fill_reply(&self, out: &mut ipvsct_tuple) {
        match self.reply_view() {
            Some(t) => ipvsct_tuple::fill_from_view(out, &t),
            None => ipvsct_tuple::fill_from_core(out, &self.reply()),
        }
    }
    #[inline(always)]
    fn fill_master(&self, _: &mut ipvsct_tuple) -> bool {
        false
    }
    #[inline(always)]
    fn status(&self) -> u32 {
        ShapedEntry::status(self).bits()
    }
    #[inline(always)]
    fn proto_values(&self) -> ProtoValues {
        self.tcp()
            .map(|t| ProtoValues::of_tcp(&t))
            .unwrap_or_default()
    }
    #[inline(always)]
    fn helper(&self) -> Option<&str> {
        None
    }
    #[inline(always)]
    fn labels(&self) -> Option<([u32; IPVSCT_LABEL_WORDS], bool)> {
        None
    }
    #[inline(always)]
    fn more(&self) -> bool {
        // The parts of a shaped entry the C struct does not hold: the SYN proxy and the
        // request-only masks (it has no unknown attributes and none of the rare nests).
        self.has_extras()
    }
    #[inline(always)]
    fn timeout(&self) -> Option<u32> {
        ShapedEntry::timeout(self)
    }
    #[inline(always)]
    fn mark(&self) -> Option<u32> {
        ShapedEntry::mark(self)
    }
    #[inline(always)]
    fn use_count(&self) -> Option<u32> {
        ShapedEntry::use_count(self)
    }
    #[inline(always)]
    fn id(&self) -> Option<u32> {
        ShapedEntry::id(self)
    }
    #[inline(always)]
    fn secmark(&self) -> Option<u32> {
        ShapedEntry::secmark(self)
    }
    #[inline(always)]
    fn zone(&self) -> Option<u16> {
        ShapedEntry::zone(self)
    }
    #[inline(always)]
    fn counters_orig(&self) -> Option<Counters> {
        ShapedEntry::counters_orig(self)
    }
    #[inline(always)]
    fn counters_reply(&self) -> Option<Counters> {
        ShapedEntry::counters_reply(self)
    }
    #[inline(always)]
    fn timestamp(&self) -> Option<Timestamp> {
        ShapedEntry::timestamp(self)
    }
    #[inline(always)]
    fn event_time(&self) -> Option<u64> {
        ShapedEntry::event_time(self)
    }
}

impl EntrySource for Parts<'_> {
    #[inline(always)]
    fn family(&self) -> u8 {
        self.family
    }
    #[inline(always)]
    fn message(&self) -> MessageInfo {
        self.message
    }
    #[inline(always)]
    fn state(&self) -> State {
        self.state
    }
    #[inline(always)]
    fn state_timeout(&self, _: State) -> Option<u32> {
        self.state_timeout
    }
    #[inline(always)]
    fn fill_orig(&self, out: &mut ipvsct_tuple) {
        *out = self.orig;
    }
    #[inline(always)]
    fn fill_reply(&self, out: &mut ipvsct_tuple) {
        *out = self.reply;
    }
    #[inline(always)]
    fn fill_master(&self, out: &mut ipvsct_tuple) -> bool {
        match self.master {
            Some(m) => {
                *out = m;
                true
            }
            None => false,
        }
    }
    #[inline(always)]
    fn status(&self) -> u32 {
        self.status
    }
    #[inline(always)]
    fn proto_values(&self) -> ProtoValues {
        ProtoValues::of(self.protoinfo)
    }
    #[inline(always)]
    fn helper(&self) -> Option<&str> {
        self.helper
    }
    #[inline(always)]
    fn labels(&self) -> Option<([u32; IPVSCT_LABEL_WORDS], bool)> {
        self.labels
    }
    #[inline(always)]
    fn more(&self) -> bool {
        self.more
    }
    #[inline(always)]
    fn timeout(&self) -> Option<u32> {
        self.timeout
    }
    #[inline(always)]
    fn mark(&self) -> Option<u32> {
        self.mark
    }
    #[inline(always)]
    fn use_count(&self) -> Option<u32> {
        self.use_count
    }
    #[inline(always)]
    fn id(&self) -> Option<u32> {
        self.id
    }
    #[inline(always)]
    fn secmark(&self) -> Option<u32> {
        self.secmark
    }
    #[inline(always)]
    fn zone(&self) -> Option<u16> {
        self.zone
    }
    #[inline(always)]
    fn counters_orig(&self) -> Option<Counters> {
        self.counters_orig
    }
    #[inline(always)]
    fn counters_reply(&self) -> Option<Counters> {
        self.counters_reply
    }
    #[inline(always)]
    fn timestamp(&self) -> Option<Timestamp> {
        self.timestamp
    }
    #[inline(always)]
    fn event_time(&self) -> Option<u64> {
        self.event_time
    }
}

/// Fills every field of `*out` with the C form of the entry `s`, in place (on the dump
/// path `*out` is the struct handed to the callback; nothing is built elsewhere and
/// copied).
#[inline(always)]
pub(crate) fn fill<S: EntrySource>(out: &mut ipvsct_ct_entry, s: &S) {
    // Every field is written: the pattern binds them all (no `..`), and an unused
    // binding would fail the build (warnings are errors in CI).
    let ipvsct_ct_entry {
        counters_orig: out_counters_orig,
        counters_reply: out_counters_reply,
        timestamp_start: out_timestamp_start,
        timestamp_stop: out_timestamp_stop,
        dccp_handshake_seq: out_dccp_handshake_seq,
        event_time: out_event_time,
        orig: out_orig,
        reply: out_reply,
        master: out_master,
        status: out_status,
        timeout: out_timeout,
        state_timeout: out_state_timeout,
        mark: out_mark,
        use_count: out_use_count,
        id: out_id,
        secmark: out_secmark,
        sctp_vtag_orig: out_sctp_vtag_orig,
        sctp_vtag_reply: out_sctp_vtag_reply,
        labels: out_labels,
        zone: out_zone,
        nlmsg_flags: out_nlmsg_flags,
        res_id: out_res_id,
        family: out_family,
        msg_type: out_msg_type,
        state_kind: out_state_kind,
        state: out_state,
        tcp_wscale_orig: out_tcp_wscale_orig,
        tcp_wscale_reply: out_tcp_wscale_reply,
        tcp_flags_orig: out_tcp_flags_orig,
        tcp_flags_orig_mask: out_tcp_flags_orig_mask,
        tcp_flags_reply: out_tcp_flags_reply,
        tcp_flags_reply_mask: out_tcp_flags_reply_mask,
        dccp_role: out_dccp_role,
        state_name: out_state_name,
        helper: out_helper,
        reserved: out_reserved,
        fields: out_fields,
    } = out;
    let mut f = if s.more() {
        IPVSCT_CT_ENTRY_HAS_MORE
    } else {
        0
    };
    let st = s.state();
    let (state_kind, state) = state_parts(st);
    let cut_state = state_name_into(out_state_name, st, state_kind, state);
    let cut_helper = match s.helper() {
        Some(h) => {
            f |= IPVSCT_CT_ENTRY_HAS_HELPER;
            cstr::fill(out_helper, h)
        }
        None => {
            *out_helper = [0; IPVSCT_HELPER_NAME_LEN];
            false
        }
    };
    let cut_labels = match s.labels() {
        Some((words, cut)) => {
            f |= IPVSCT_CT_ENTRY_HAS_LABELS;
            *out_labels = words;
            cut
        }
        None => {
            *out_labels = [0; IPVSCT_LABEL_WORDS];
            false
        }
    };
    if cut_state || cut_helper || cut_labels {
        f |= IPVSCT_CT_ENTRY_TRUNCATED;
    }
    let p = s.proto_values();
    if p.flags_orig.is_some() {
        f |= IPVSCT_CT_ENTRY_HAS_TCP_FLAGS_ORIG;
    }
    if p.flags_reply.is_some() {
        f |= IPVSCT_CT_ENTRY_HAS_TCP_FLAGS_REPLY;
    }
    *out_counters_orig = take(&mut f, IPVSCT_CT_ENTRY_HAS_COUNTERS_ORIG, s.counters_orig()).into();
    *out_counters_reply = take(
        &mut f,
        IPVSCT_CT_ENTRY_HAS_COUNTERS_REPLY,
        s.counters_reply(),
    )
    .into();
    let ts = s.timestamp().unwrap_or_default();
    *out_timestamp_start = take(&mut f, IPVSCT_CT_ENTRY_HAS_TIMESTAMP_START, ts.start);
    *out_timestamp_stop = take(&mut f, IPVSCT_CT_ENTRY_HAS_TIMESTAMP_STOP, ts.stop);
    *out_dccp_handshake_seq = take(
        &mut f,
        IPVSCT_CT_ENTRY_HAS_DCCP_HANDSHAKE_SEQ,
        p.dccp_handshake_seq,
    );
    *out_event_time = take(&mut f, IPVSCT_CT_ENTRY_HAS_EVENT_TIME, s.event_time());
    s.fill_orig(out_orig);
    s.fill_reply(out_reply);
    if s.fill_master(out_master) {
        f |= IPVSCT_CT_ENTRY_HAS_MASTER;
    } else {
        *out_master = ipvsct_tuple::default();
    }
    *out_status = s.status();
    let timeout = s.timeout();
    *out_timeout = timeout.unwrap_or(IPVSCT_TIMEOUT_UNSET);
    if timeout.is_some() {
        f |= IPVSCT_CT_ENTRY_HAS_TIMEOUT;
    }
    let state_timeout = s.state_timeout(st);
    *out_state_timeout = state_timeout.unwrap_or(IPVSCT_TIMEOUT_UNSET);
    if state_timeout.is_some() {
        f |= IPVSCT_CT_ENTRY_HAS_STATE_TIMEOUT;
    }
    *out_mark = take(&mut f, IPVSCT_CT_ENTRY_HAS_MARK, s.mark());
    *out_use_count = take(&mut f, IPVSCT_CT_ENTRY_HAS_USE, s.use_count());
    *out_id = take(&mut f, IPVSCT_CT_ENTRY_HAS_ID, s.id());
    *out_secmark = take(&mut f, IPVSCT_CT_ENTRY_HAS_SECMARK, s.secmark());
    *out_sctp_vtag_orig = take(&mut f, IPVSCT_CT_ENTRY_HAS_SCTP_VTAG_ORIG, p.sctp_vtag_orig);
    *out_sctp_vtag_reply = take(
        &mut f,
        IPVSCT_CT_ENTRY_HAS_SCTP_VTAG_REPLY,
        p.sctp_vtag_reply,
    );
    *out_zone = take(&mut f, IPVSCT_CT_ENTRY_HAS_ZONE, s.zone());
    let message = s.message();
    *out_nlmsg_flags = message.flags;
    *out_res_id = message.res_id;
    *out_family = s.family();
    *out_msg_type = message.msg;
    *out_state_kind = state_kind;
    *out_state = state;
    *out_tcp_wscale_orig = take(&mut f, IPVSCT_CT_ENTRY_HAS_TCP_WSCALE_ORIG, p.wscale_orig);
    *out_tcp_wscale_reply = take(&mut f, IPVSCT_CT_ENTRY_HAS_TCP_WSCALE_REPLY, p.wscale_reply);
    *out_tcp_flags_orig = p.flags_orig.map_or(0, |x| x.flags.bits());
    *out_tcp_flags_orig_mask = p.flags_orig.map_or(0, |x| x.mask.bits());
    *out_tcp_flags_reply = p.flags_reply.map_or(0, |x| x.flags.bits());
    *out_tcp_flags_reply_mask = p.flags_reply.map_or(0, |x| x.mask.bits());
    *out_dccp_role = take(&mut f, IPVSCT_CT_ENTRY_HAS_DCCP_ROLE, p.dccp_role);
    *out_reserved = [0; 7];
    *out_fields = f;
}
