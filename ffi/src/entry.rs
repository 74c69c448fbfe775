//! Conntrack entries in C form: tuples, state and its timeout, status, mark, zone, counters,
//! timestamps, labels, helper and the per-protocol details agents read.

use std::ffi::c_char;
use std::sync::OnceLock;

use ipvs_conntrack::conntrack::{
    Counters, DccpState, DumpStep, Entry, EntryView, MessageInfo, ProtoInfo, SctpState,
    ShapedEntry, State, StateTimeouts, TcpState, Timestamp, UdpState,
};

use ipvs_conntrack::conntrack::wire::{
    CTA_COUNTERS_ORIG, CTA_COUNTERS_REPLY, CTA_HELP, CTA_LABELS_MASK, CTA_MARK_MASK, CTA_NAT_DST,
    CTA_NAT_SRC, CTA_SECCTX, CTA_SEQ_ADJ_ORIG, CTA_SEQ_ADJ_REPLY, CTA_STATUS_MASK, CTA_SYNPROXY,
    CTA_TIMESTAMP, CTA_TUPLE_MASTER,
};
use ipvs_conntrack::DecodeError;

use crate::cstr;
use crate::entry_fill;
use crate::tuple::ipvsct_tuple;

/// Size of `ipvsct_ct_entry.state_name` (bytes, including the NUL).
pub const IPVSCT_STATE_NAME_LEN: usize = 24;
/// Size of `ipvsct_ct_entry.helper` (bytes, including the NUL; the kernel's NF_CT_HELPER_NAME_LEN).
pub const IPVSCT_HELPER_NAME_LEN: usize = 16;
/// Number of 32-bit words in `ipvsct_ct_entry.labels` (128 label bits, the kernel's maximum).
pub const IPVSCT_LABEL_WORDS: usize = 4;

/// `ipvsct_ct_entry.state_kind`: a TCP/SCTP/DCCP entry without protocol info.
pub const IPVSCT_STATE_KIND_UNKNOWN: u8 = 0;
/// `ipvsct_ct_entry.state_kind`: `state` is a TCP conntrack state (TCP_CONNTRACK_*).
pub const IPVSCT_STATE_KIND_TCP: u8 = 1;
/// `ipvsct_ct_entry.state_kind`: `state` is an SCTP conntrack state (SCTP_CONNTRACK_*).
pub const IPVSCT_STATE_KIND_SCTP: u8 = 2;
/// `ipvsct_ct_entry.state_kind`: `state` is a DCCP conntrack state (CT_DCCP_*).
pub const IPVSCT_STATE_KIND_DCCP: u8 = 3;
/// `ipvsct_ct_entry.state_kind`: UDP/UDP-Lite pseudo-state (0 UNREPLIED, 1 REPLIED, 2 STREAM).
pub const IPVSCT_STATE_KIND_UDP: u8 = 4;
/// `ipvsct_ct_entry.state_kind`: GRE pseudo-state (0 UNREPLIED, 2 STREAM).
pub const IPVSCT_STATE_KIND_GRE: u8 = 5;
/// `ipvsct_ct_entry.state_kind`: ICMP/ICMPv6 (no states; `state` is 0).
pub const IPVSCT_STATE_KIND_ICMP: u8 = 6;
/// `ipvsct_ct_entry.state_kind`: another protocol (the generic timeout; `state` is 0).
pub const IPVSCT_STATE_KIND_GENERIC: u8 = 7;

/// `ipvsct_ct_entry.fields`: `master` is set (an expected connection).
pub const IPVSCT_CT_ENTRY_HAS_MASTER: u32 = 0x1;
/// `ipvsct_ct_entry.fields`: `timeout` is set.
pub const IPVSCT_CT_ENTRY_HAS_TIMEOUT: u32 = 0x2;
/// `ipvsct_ct_entry.fields`: `state_timeout` is set.
pub const IPVSCT_CT_ENTRY_HAS_STATE_TIMEOUT: u32 = 0x4;
/// `ipvsct_ct_entry.fields`: `mark` is set.
pub const IPVSCT_CT_ENTRY_HAS_MARK: u32 = 0x8;
/// `ipvsct_ct_entry.fields`: `zone` is set.
pub const IPVSCT_CT_ENTRY_HAS_ZONE: u32 = 0x10;
/// `ipvsct_ct_entry.fields`: `counters_orig` is set (needs net.netfilter.nf_conntrack_acct=1).
pub const IPVSCT_CT_ENTRY_HAS_COUNTERS_ORIG: u32 = 0x20;
/// `ipvsct_ct_entry.fields`: `counters_reply` is set.
pub const IPVSCT_CT_ENTRY_HAS_COUNTERS_REPLY: u32 = 0x40;
/// `ipvsct_ct_entry.fields`: `use_count` is set.
pub const IPVSCT_CT_ENTRY_HAS_USE: u32 = 0x80;
/// `ipvsct_ct_entry.fields`: `id` is set.
pub const IPVSCT_CT_ENTRY_HAS_ID: u32 = 0x100;
/// `ipvsct_ct_entry.fields`: `secmark` is set.
pub const IPVSCT_CT_ENTRY_HAS_SECMARK: u32 = 0x200;
/// `ipvsct_ct_entry.fields`: `timestamp_start` is set (needs nf_conntrack_timestamp=1).
pub const IPVSCT_CT_ENTRY_HAS_TIMESTAMP_START: u32 = 0x400;
/// `ipvsct_ct_entry.fields`: `timestamp_stop` is set (destroy events).
pub const IPVSCT_CT_ENTRY_HAS_TIMESTAMP_STOP: u32 = 0x800;
/// `ipvsct_ct_entry.fields`: `labels` is set.
pub const IPVSCT_CT_ENTRY_HAS_LABELS: u32 = 0x1000;
/// `ipvsct_ct_entry.fields`: `helper` is set.
pub const IPVSCT_CT_ENTRY_HAS_HELPER: u32 = 0x2000;
/// `ipvsct_ct_entry.fields`: `tcp_wscale_orig` is set.
pub const IPVSCT_CT_ENTRY_HAS_TCP_WSCALE_ORIG: u32 = 0x4000;
/// `ipvsct_ct_entry.fields`: `tcp_wscale_reply` is set.
pub const IPVSCT_CT_ENTRY_HAS_TCP_WSCALE_REPLY: u32 = 0x8000;
/// `ipvsct_ct_entry.fields`: `tcp_flags_orig` and `tcp_flags_orig_mask` are set.
pub const IPVSCT_CT_ENTRY_HAS_TCP_FLAGS_ORIG: u32 = 0x10000;
/// `ipvsct_ct_entry.fields`: `tcp_flags_reply` and `tcp_flags_reply_mask` are set.
pub const IPVSCT_CT_ENTRY_HAS_TCP_FLAGS_REPLY: u32 = 0x20000;
/// `ipvsct_ct_entry.fields`: `sctp_vtag_orig` is set.
pub const IPVSCT_CT_ENTRY_HAS_SCTP_VTAG_ORIG: u32 = 0x40000;
/// `ipvsct_ct_entry.fields`: `sctp_vtag_reply` is set.
pub const IPVSCT_CT_ENTRY_HAS_SCTP_VTAG_REPLY: u32 = 0x80000;
/// `ipvsct_ct_entry.fields`: `dccp_role` is set.
pub const IPVSCT_CT_ENTRY_HAS_DCCP_ROLE: u32 = 0x100000;
/// `ipvsct_ct_entry.fields`: `dccp_handshake_seq` is set.
pub const IPVSCT_CT_ENTRY_HAS_DCCP_HANDSHAKE_SEQ: u32 = 0x200000;
/// `ipvsct_ct_entry.fields`: `event_time` is set.
pub const IPVSCT_CT_ENTRY_HAS_EVENT_TIME: u32 = 0x400000;
/// `ipvsct_ct_entry.fields`: the message carried attributes this struct does not hold
/// (unknown ones, or ones only the Rust API exposes such as sequence adjustment).
pub const IPVSCT_CT_ENTRY_HAS_MORE: u32 = 0x40000000;
/// `ipvsct_ct_entry.fields`: a string or the label bitmap did not fit its field and was cut.
pub const IPVSCT_CT_ENTRY_TRUNCATED: u32 = 0x80000000;

/// Packet and byte counters of one direction.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_counters {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

/// One conntrack entry. Which optional fields are meaningful is in `fields`
/// (`IPVSCT_CT_ENTRY_HAS_*`); absent ones are 0, except `timeout` and `state_timeout`,
/// which are IPVSCT_TIMEOUT_UNSET. Plain data: copy it freely.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_ct_entry {
    /// Original-direction counters (CTA_COUNTERS_ORIG).
    pub counters_orig: ipvsct_counters,
    /// Reply-direction counters (CTA_COUNTERS_REPLY).
    pub counters_reply: ipvsct_counters,
    /// Start time, nanoseconds since the epoch (CTA_TIMESTAMP_START).
    pub timestamp_start: u64,
    /// Stop time, nanoseconds since the epoch (CTA_TIMESTAMP_STOP; destroy events).
    pub timestamp_stop: u64,
    /// DCCP handshake sequence number.
    pub dccp_handshake_seq: u64,
    /// When the kernel generated the event, nanoseconds since the epoch (CTA_TIMESTAMP_EVENT;
    /// events only).
    pub event_time: u64,
    /// Original direction (always set).
    pub orig: ipvsct_tuple,
    /// Reply direction (always set).
    pub reply: ipvsct_tuple,
    /// Master connection of an expected connection.
    pub master: ipvsct_tuple,
    /// `IPVSCT_CT_ENTRY_HAS_*` bits.
    pub fields: u32,
    /// Status bits (IPS_*; the kernel always sends them, 0 if absent).
    pub status: u32,
    /// Seconds left before the entry expires, as the kernel sent it (IPVSCT_TIMEOUT_UNSET if absent).
    pub timeout: u32,
    /// Full timeout of the current state under the policy in force, in seconds
    /// (IPVSCT_TIMEOUT_UNSET if unknown, e.g. offline decoding).
    pub state_timeout: u32,
    /// Connection mark.
    pub mark: u32,
    /// Reference count (CTA_USE).
    pub use_count: u32,
    /// Entry id (CTA_ID).
    pub id: u32,
    /// Security mark (CTA_SECMARK).
    pub secmark: u32,
    /// SCTP verification tag, original direction.
    pub sctp_vtag_orig: u32,
    /// SCTP verification tag, reply direction.
    pub sctp_vtag_reply: u32,
    /// Label bitmap: label `n` is bit `n % 32` of word `n / 32`.
    pub labels: [u32; IPVSCT_LABEL_WORDS],
    /// Conntrack zone (CTA_ZONE).
    pub zone: u16,
    /// Netlink header flags of the message (NLM_F_*; NLM_F_CREATE marks a NEW event).
    pub nlmsg_flags: u16,
    /// nfnetlink resource id (the CPU for the dying/unconfirmed lists).
    pub res_id: u16,
    /// Address family (AF_INET 2, AF_INET6 10).
    pub family: u8,
    /// ctnetlink message: IPCTNL_MSG_CT_NEW (0) for dumps, lookups and new/update events,
    /// IPCTNL_MSG_CT_DELETE (2) for destroy events.
    pub msg_type: u8,
    /// Which protocol's states `state` counts in (`IPVSCT_STATE_KIND_*`).
    pub state_kind: u8,
    /// The state's kernel number within `state_kind`.
    pub state: u8,
    /// TCP window scale, original direction.
    pub tcp_wscale_orig: u8,
    /// TCP window scale, reply direction.
    pub tcp_wscale_reply: u8,
    /// TCP conntrack flags (IP_CT_TCP_FLAG_*), original direction.
    pub tcp_flags_orig: u8,
    /// Mask of `tcp_flags_orig`.
    pub tcp_flags_orig_mask: u8,
    /// TCP conntrack flags, reply direction.
    pub tcp_flags_reply: u8,
    /// Mask of `tcp_flags_reply`.
    pub tcp_flags_reply_mask: u8,
    /// DCCP role of the original sender (0 client, 1 server).
    pub dccp_role: u8,
    /// Name of the state ("TIME_WAIT", "UNREPLIED", "" for stateless protocols), NUL-terminated.
    pub state_name: [c_char; IPVSCT_STATE_NAME_LEN],
    /// Helper name ("ftp", …), NUL-terminated, "" if none.
    pub helper: [c_char; IPVSCT_HELPER_NAME_LEN],
    /// Zero.
    pub reserved: [u8; 7],
}

/// The C encoding of a state: (`IPVSCT_STATE_KIND_*`, the state's kernel number).
#[inline(always)]
pub(crate) fn state_parts(s: State) -> (u8, u8) {
    match s {
        State::Tcp(x) => (IPVSCT_STATE_KIND_TCP, x.value()),
        State::Sctp(x) => (IPVSCT_STATE_KIND_SCTP, x.value()),
        State::Dccp(x) => (IPVSCT_STATE_KIND_DCCP, x.value()),
        State::Udp(x) => (IPVSCT_STATE_KIND_UDP, x.value()),
        State::Gre(x) => (IPVSCT_STATE_KIND_GRE, x.value()),
        State::Icmp => (IPVSCT_STATE_KIND_ICMP, 0),
        State::Generic => (IPVSCT_STATE_KIND_GENERIC, 0),
        State::Unknown => (IPVSCT_STATE_KIND_UNKNOWN, 0),
    }
}

/// The state that [`state_parts`] encodes as (`kind`, `num`).
fn state_of(kind: u8, num: u8) -> State {
    match kind {
        IPVSCT_STATE_KIND_TCP => State::Tcp(TcpState::from(num)),
        IPVSCT_STATE_KIND_SCTP => State::Sctp(SctpState::from(num)),
        IPVSCT_STATE_KIND_DCCP => State::Dccp(DccpState::from(num)),
        IPVSCT_STATE_KIND_UDP => State::Udp(UdpState::from(num)),
        IPVSCT_STATE_KIND_GRE => State::Gre(UdpState::from(num)),
        IPVSCT_STATE_KIND_ICMP => State::Icmp,
        IPVSCT_STATE_KIND_GENERIC => State::Generic,
        _ => State::Unknown,
    }
}

/// A state's name in C form, and whether it was cut.
type StateName = ([c_char; IPVSCT_STATE_NAME_LEN], bool);

/// State numbers below this have their C name in [`STATE_NAMES`].
const NAMED_STATES: usize = 16;

/// The C name of every state [`state_parts`] encodes as (kind, number below
/// [`NAMED_STATES`]), made once from the core's names (`State::name`): a struct dump
/// copies it instead of measuring and copying the string for every entry.
static STATE_NAMES: OnceLock<[[StateName; NAMED_STATES]; 8]> = OnceLock::new();

/// The C names of the states [`state_parts`] encodes, made once.
fn state_names() -> &'static [[StateName; NAMED_STATES]; 8] {
    STATE_NAMES.get_or_init(|| {
        let mut t = [[([0; IPVSCT_STATE_NAME_LEN], false); NAMED_STATES]; 8];
        for (kind, row) in (0u8..).zip(t.iter_mut()) {
            for (num, slot) in (0u8..).zip(row.iter_mut()) {
                *slot = cstr::fixed(state_of(kind, num).name().unwrap_or(""));
            }
        }
        t
    })
}

/// The C name of state `s`, which [`state_parts`] encodes as (`kind`, `num`).
#[cfg(test)]
pub(crate) fn state_name(s: State, kind: u8, num: u8) -> StateName {
    let mut out = [0; IPVSCT_STATE_NAME_LEN];
    let cut = state_name_into(&mut out, s, kind, num);
    (out, cut)
}

/// Writes the C name of state `s` (encoded as (`kind`, `num`)) to `out`, straight from the
/// table (a name returned by value would be copied through the stack, and read back with
/// wide loads that stall on the narrow stores of the copy); whether it was cut.
#[inline(always)]
pub(crate) fn state_name_into(
    out: &mut [c_char; IPVSCT_STATE_NAME_LEN],
    s: State,
    kind: u8,
    num: u8,
) -> bool {
    match state_names()
        .get(usize::from(kind))
        .and_then(|row| row.get(usize::from(num)))
    {
        Some((name, cut)) => {
            *out = *name;
            *cut
        }
        None => unnamed_state(out, s),
    }
}

/// [`state_name_into`] of a state outside the table.
#[cold]
#[inline(never)]
fn unnamed_state(out: &mut [c_char; IPVSCT_STATE_NAME_LEN], s: State) -> bool {
    let (name, cut) = cstr::fixed(s.name().unwrap_or(""));
    *out = name;
    cut
}

/// Records `v` under `bit` and returns it (or the default when absent).
#[inline(always)]
pub(crate) fn take<T: Copy + Default>(fields: &mut u32, bit: u32, v: Option<T>) -> T {
    // Branch-free: this runs some twenty times per entry on the dump path.
    *fields |= bit & 0u32.wrapping_sub(u32::from(v.is_some()));
    v.unwrap_or_default()
}

/// Nests only the owned path decodes for the C struct (it reports their unknown members).
const OWNED_ONLY: u32 =
    1 << CTA_HELP | 1 << CTA_COUNTERS_ORIG | 1 << CTA_COUNTERS_REPLY | 1 << CTA_TIMESTAMP;
/// Nests the C struct does not hold (they set IPVSCT_CT_ENTRY_HAS_MORE).
const HELD_ELSEWHERE: u32 = 1 << CTA_NAT_SRC
    | 1 << CTA_NAT_DST
    | 1 << CTA_SEQ_ADJ_ORIG
    | 1 << CTA_SEQ_ADJ_REPLY
    | 1 << CTA_SECCTX
    | 1 << CTA_SYNPROXY;
/// Request-only scalars the C struct does not hold (they set IPVSCT_CT_ENTRY_HAS_MORE).
const HAS_MORE_SCALARS: u32 = 1 << CTA_LABELS_MASK | 1 << CTA_MARK_MASK | 1 << CTA_STATUS_MASK;

/// Whether a nested attribute decoded from a view is present; `None` if it is malformed.
#[inline(always)]
fn present<T>(r: Result<Option<T>, DecodeError>) -> Option<bool> {
    match r {
        Ok(x) => Some(x.is_some()),
        Err(_) => None,
    }
}

/// What an [`EntryView`] hands to [`entry_fill::fill`] (`view_tests` and `shape_tests`
/// require the same struct as from the owned entry).
pub(crate) struct Parts<'a> {
    pub(crate) family: u8,
    pub(crate) message: MessageInfo,
    pub(crate) state: State,
    pub(crate) orig: ipvsct_tuple,
    pub(crate) reply: ipvsct_tuple,
    pub(crate) master: Option<ipvsct_tuple>,
    pub(crate) status: u32,
    pub(crate) protoinfo: Option<&'a ProtoInfo>,
    pub(crate) helper: Option<&'a str>,
    /// The label bitmap (128 bits) and whether set bits past it were cut.
    pub(crate) labels: Option<([u32; IPVSCT_LABEL_WORDS], bool)>,
    /// The message carried attributes the C struct does not hold.
    pub(crate) more: bool,
    pub(crate) timeout: Option<u32>,
    pub(crate) state_timeout: Option<u32>,
    pub(crate) mark: Option<u32>,
    pub(crate) use_count: Option<u32>,
    pub(crate) id: Option<u32>,
    pub(crate) secmark: Option<u32>,
    pub(crate) zone: Option<u16>,
    pub(crate) counters_orig: Option<Counters>,
    pub(crate) counters_reply: Option<Counters>,
    pub(crate) timestamp: Option<Timestamp>,
    pub(crate) event_time: Option<u64>,
}

/// The C label bitmap of the set label bits `bits`, and whether some did not fit.
pub(crate) fn label_words(bits: impl Iterator<Item = u16>) -> ([u32; IPVSCT_LABEL_WORDS], bool) {
    let mut labels = [0u32; IPVSCT_LABEL_WORDS];
    let mut cut = false;
    for bit in bits {
        match labels.get_mut(usize::from(bit / 32)) {
            Some(w) => *w |= 1 << (bit % 32),
            None => cut = true,
        }
    }
    (labels, cut)
}

impl ipvsct_ct_entry {
    /// The C form of an owned entry.
    pub(crate) fn from_core(e: &Entry) -> Self {
        let mut c = Self::default();
        Self::fill_from_core(&mut c, e);
        c
    }

    /// Fills every field of `*out` with the C form of an owned entry, in place (on the
    /// dump path `*out` is the struct handed to the callback; nothing is built elsewhere
    /// and copied).
    #[inline]
    pub(crate) fn fill_from_core(out: &mut Self, e: &Entry) {
        entry_fill::fill(out, e);
    }

    /// Fills every field of `*out` with the C form of an entry of a common layout, read
    /// from its values (the dump path for most entries): the same struct as
    /// [`Self::fill_from_core`] of [`ShapedEntry::to_owned`], without building that entry.
    #[inline(always)]
    pub(crate) fn fill_from_shaped(out: &mut Self, s: &ShapedEntry<'_>) {
        entry_fill::fill(out, s);
    }

    /// Fills every field of `*out` with the C form of a dump step: the shaped entry's
    /// values, or the decoded entry.
    #[inline(always)]
    pub(crate) fn fill_from_step(out: &mut Self, step: &DumpStep<'_>) {
        match step {
            DumpStep::Shaped(s) => Self::fill_from_shaped(out, s),
            DumpStep::Entry(e) => Self::fill_from_core(out, e),
        }
    }

    /// [`Self::fill_from_view`] into a new struct (`None` where that returns false).
    #[cfg(test)]
    pub(crate) fn from_view(v: &EntryView<'_>, timeouts: Option<&StateTimeouts>) -> Option<Self> {
        let mut e = Self::default();
        Self::fill_from_view(&mut e, v, timeouts).then_some(e)
    }

    /// Fills `*out` with the C form of an entry view, with `state_timeout` joined from
    /// `timeouts` as the dump joins it into owned entries: exactly `from_core` of the
    /// view's owned, joined entry, without building it (no heap allocation, no
    /// intermediate struct). Returns true if it did.
    ///
    /// False (and `*out` untouched: it is written only after every check) where the view
    /// alone cannot give that exact result, and the caller builds the owned entry
    /// instead (which also yields the precise error of a malformed entry): a decode
    /// error anywhere, or a nest whose unknown members the view API
    /// does not report (CTA_COUNTERS_ORIG/REPLY, CTA_TIMESTAMP, a named CTA_HELP). The
    /// kernel sends those nests only with nf_conntrack_acct / nf_conntrack_timestamp on
    /// or a helper assigned.
    ///
    /// One case the view API cannot detect at all: a CTA_HELP or CTA_SECCTX nest
    /// without its name attribute but with unknown members (which the owned entry
    /// reports as `unknown_nested`, i.e. IPVSCT_CT_ENTRY_HAS_MORE). The kernel always
    /// puts the name first in both nests, so no kernel message is affected.
    #[inline]
    pub(crate) fn fill_from_view(
        out: &mut Self,
        v: &EntryView<'_>,
        timeouts: Option<&StateTimeouts>,
    ) -> bool {
        Self::view_into(out, v, timeouts).is_some()
    }

    #[inline(always)]
    fn view_into(
        out: &mut Self,
        v: &EntryView<'_>,
        timeouts: Option<&StateTimeouts>,
    ) -> Option<()> {
        // The order of the checks does not matter: any failure means the owned path.
        // Tuples are turned into C form at once (no tuple view is kept or moved around).
        let present_kinds = v.present();
        if present_kinds & OWNED_ONLY != 0 {
            return None;
        }
        // The core's tuple views (from the shape's known positions or the templates where
        // the layout allows, the checked decoder otherwise).
        let (orig, proto, orig_more) = match v.orig() {
            Ok(Some(t)) => (ipvsct_tuple::from_view(&t), t.proto(), t.has_unknown()),
            _ => return None,
        };
        let (reply, reply_more) = match v.reply() {
            Ok(Some(t)) => (ipvsct_tuple::from_view(&t), t.has_unknown()),
            _ => return None,
        };
        let status = v.status().unwrap_or_default();
        let protoinfo = v.protoinfo().ok()?;
        let (master, master_more) = if present_kinds & (1 << CTA_TUPLE_MASTER) == 0 {
            (None, false)
        } else {
            match v.master() {
                Ok(Some(t)) => (Some(ipvsct_tuple::from_view(&t)), t.has_unknown()),
                Ok(None) => (None, false),
                Err(_) => return None,
            }
        };
        // Present at all, these are attributes the C struct does not hold. Decoding them
        // (no short cut) also rejects what `to_owned` would reject.
        let has = |k: u16| present_kinds & (1 << k) != 0;
        let mut held_elsewhere = false;
        if present_kinds & HELD_ELSEWHERE != 0 {
            // Only the nests that are there are decoded (every dump entry made over
            // ctnetlink carries CTA_SYNPROXY, say, and none of the others).
            held_elsewhere |= has(CTA_NAT_SRC) && present(v.nat_src())?;
            held_elsewhere |= has(CTA_NAT_DST) && present(v.nat_dst())?;
            held_elsewhere |= has(CTA_SEQ_ADJ_ORIG) && present(v.seq_adj_orig())?;
            held_elsewhere |= has(CTA_SEQ_ADJ_REPLY) && present(v.seq_adj_reply())?;
            held_elsewhere |= has(CTA_SECCTX) && present(v.secctx())?;
            held_elsewhere |= has(CTA_SYNPROXY) && present(v.synproxy())?;
        }
        let more = held_elsewhere
            || orig_more
            || reply_more
            || master_more
            || present_kinds & HAS_MORE_SCALARS != 0
            || protoinfo.as_ref().is_some_and(|p| !p.unknown.is_empty())
            || v.has_unknown();
        let state = State::derive(proto, protoinfo.as_ref(), status);
        entry_fill::fill(
            out,
            &Parts {
                family: v.family().value(),
                message: v.message(),
                state,
                orig,
                reply,
                master,
                status: status.bits(),
                protoinfo: protoinfo.as_ref(),
                helper: None,
                labels: v.labels().map(|_| label_words(v.label_bits())),
                more,
                timeout: v.timeout(),
                state_timeout: timeouts.and_then(|t| t.for_state(proto, state)),
                mark: v.mark(),
                use_count: v.use_count(),
                id: v.id(),
                secmark: v.secmark(),
                zone: v.zone(),
                counters_orig: None,
                counters_reply: None,
                timestamp: None,
                event_time: v.event_time(),
            },
        );
        Some(())
    }
}

impl From<ipvs_conntrack::conntrack::Counters> for ipvsct_counters {
    fn from(c: ipvs_conntrack::conntrack::Counters) -> Self {
        ipvsct_counters {
            packets: c.packets,
            bytes: c.bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeouts::IPVSCT_TIMEOUT_UNSET;
    use ipvs_conntrack::conntrack::wire::{
        CTA_LABELS, CTA_SECCTX, CTA_SECCTX_NAME, CTA_STATUS, CTA_TIMEOUT, CTA_TUPLE_ORIG,
        CTA_TUPLE_REPLY, IPCTNL_MSG_CT_DELETE,
    };
    use ipvs_conntrack::conntrack::Tuple;
    use ipvs_conntrack::netlink::emit::MessageBuilder;
    use ipvs_conntrack::netlink::frame::Frames;
    use ipvs_conntrack::netlink::nfnetlink::{message_type, NfGenMsg, NFNL_SUBSYS_CTNETLINK};

    /// A UDP destroy event (status SEEN_REPLY), with what `extra` adds.
    fn udp_entry(extra: impl FnOnce(&mut MessageBuilder)) -> Entry {
        let orig = Tuple::with_ports(
            17,
            "10.0.0.1".parse().unwrap(),
            5000,
            "10.0.0.2".parse().unwrap(),
            53,
        );
        let mut b =
            MessageBuilder::new(message_type(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_DELETE), 0);
        b.put_raw(
            &NfGenMsg {
                family: 2,
                version: 0,
                res_id: 0,
            }
            .to_bytes(),
        );
        orig.emit(&mut b, CTA_TUPLE_ORIG);
        orig.reversed().emit(&mut b, CTA_TUPLE_REPLY);
        b.put_be32(CTA_STATUS, 0x2);
        extra(&mut b);
        let bytes = b.finish();
        let frame = Frames::new(&bytes).next().unwrap().unwrap();
        Entry::from_frame(&frame).unwrap()
    }

    #[test]
    fn state_name_table_holds_the_core_names() {
        let mut checked = 0;
        for kind in 0..=8u8 {
            for num in 0..=u8::MAX {
                let s = state_of(kind, num);
                let (k, n) = state_parts(s);
                if (k, n) != (kind, num) {
                    // Kinds without numbered states encode as number 0 only.
                    continue;
                }
                assert_eq!(
                    state_name(s, k, n),
                    cstr::fixed(s.name().unwrap_or("")),
                    "{s:?}"
                );
                checked += 1;
            }
        }
        assert!(checked > 4 * 256, "{checked}");
        let (name, cut) = state_name(State::Tcp(TcpState::from(3)), IPVSCT_STATE_KIND_TCP, 3);
        let text: Vec<u8> = name[..12].iter().map(|b| *b as u8).collect();
        assert_eq!((text.as_slice(), cut), (&b"ESTABLISHED\0"[..], false));
    }

    #[test]
    fn absent_timeouts_are_unset_and_state_is_named() {
        let c = ipvsct_ct_entry::from_core(&udp_entry(|_| {}));
        assert_eq!(c.timeout, IPVSCT_TIMEOUT_UNSET);
        assert_eq!(c.state_timeout, IPVSCT_TIMEOUT_UNSET);
        let bits = IPVSCT_CT_ENTRY_HAS_TIMEOUT | IPVSCT_CT_ENTRY_HAS_STATE_TIMEOUT;
        assert_eq!(c.fields & bits, 0);
        assert_eq!(
            (c.state_kind, c.state, c.msg_type),
            (IPVSCT_STATE_KIND_UDP, 1, 2)
        );
        let name: Vec<u8> = c.state_name[..8].iter().map(|b| *b as u8).collect();
        assert_eq!(name, b"REPLIED\0");
        assert_eq!(c.status, 0x2);
    }

    #[test]
    fn labels_past_128_bits_and_unheld_attributes_are_flagged() {
        let mut bitmap = [0u32; 8];
        for bit in [0u32, 33, 127, 200] {
            bitmap[(bit / 32) as usize] |= 1 << (bit % 32);
        }
        let bytes: Vec<u8> = bitmap.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let e = udp_entry(|b| {
            b.put_be32(CTA_TIMEOUT, 0);
            b.put_bytes(CTA_LABELS, &bytes);
        });
        let c = ipvsct_ct_entry::from_core(&e);
        assert_eq!(c.timeout, 0, "0 seconds left is a value");
        assert_eq!(c.labels, [1, 2, 0, 1 << 31]);
        assert_eq!(
            c.fields & IPVSCT_CT_ENTRY_TRUNCATED,
            IPVSCT_CT_ENTRY_TRUNCATED
        );
        assert_eq!(c.fields & IPVSCT_CT_ENTRY_HAS_MORE, 0);
        let e = udp_entry(|b| {
            let n = b.begin_nest(CTA_SECCTX);
            b.put_bytes(CTA_SECCTX_NAME, b"system_u:object_r:x\0");
            b.end_nest(n);
        });
        let c = ipvsct_ct_entry::from_core(&e);
        assert_eq!(
            c.fields & IPVSCT_CT_ENTRY_HAS_MORE,
            IPVSCT_CT_ENTRY_HAS_MORE
        );
    }
}
