//! Fast paths of the view accessors (`ipvsct_ct_view_orig`, `_reply`,
//! `_state_timeout`) and of the struct an entry view fills (`ipvsct_conntrack_dump`,
//! `ipvsct_ct_view_entry`): the layouts the kernel sends are decoded straight from the
//! attribute bytes into the C form, without the core's intermediate values (`IpAddr`,
//! `TupleView`, `State`, `ProtoInfo`).
//!
//! Each fast path accepts only bytes for which the core decoder takes its own template
//! path, and returns what that path gives; anything else returns `None` and the accessor
//! asks the core (which also names any fault). The unit tests below compare both on the
//! recorded kernel answers and on mutations of them.
//!
//! Nothing here can panic: the accessors run [`tuple`] and
//! [`TimeoutTable::state_timeout`] outside their `catch_unwind` (which costs as much as
//! the path itself). There is no indexing or slicing that could fail (the lints below
//! refuse it) and no unwrap; those two call into the core only for the non-panicking
//! lookups `EntryView::raw` / `status` and `Attr::value`; offsets are small constants
//! or lengths checked against the slice, so no arithmetic can overflow. ([`fill_entry`]
//! runs inside the dump's panic boundary.)
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented
)]

use ipvs_conntrack::conntrack::wire::{
    CTA_ID, CTA_IP_V4_DST, CTA_IP_V4_SRC, CTA_IP_V6_DST, CTA_IP_V6_SRC, CTA_MARK, CTA_PROTOINFO,
    CTA_PROTOINFO_TCP, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, CTA_PROTOINFO_TCP_FLAGS_REPLY,
    CTA_PROTOINFO_TCP_STATE, CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, CTA_PROTOINFO_TCP_WSCALE_REPLY,
    CTA_PROTO_DST_PORT, CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_SECMARK, CTA_STATUS, CTA_SYNPROXY,
    CTA_SYNPROXY_ISN, CTA_SYNPROXY_ITS, CTA_SYNPROXY_TSOFF, CTA_TIMEOUT, CTA_TUPLE_IP,
    CTA_TUPLE_ORIG, CTA_TUPLE_PROTO, CTA_TUPLE_REPLY, CTA_TUPLE_ZONE, CTA_USE, CTA_ZONE,
};
use ipvs_conntrack::conntrack::{EntryView, State, StateTimeouts, Status, TcpState, UdpState};
use ipvs_conntrack::netlink::attr::NLA_TYPE_MASK;

use crate::addr::{ipvsct_addr, IPVSCT_AF_INET, IPVSCT_AF_INET6};
use crate::cstr;
use crate::entry::{
    ipvsct_counters, ipvsct_ct_entry, IPVSCT_CT_ENTRY_HAS_ID, IPVSCT_CT_ENTRY_HAS_MARK,
    IPVSCT_CT_ENTRY_HAS_MORE, IPVSCT_CT_ENTRY_HAS_SECMARK, IPVSCT_CT_ENTRY_HAS_STATE_TIMEOUT,
    IPVSCT_CT_ENTRY_HAS_TCP_FLAGS_ORIG, IPVSCT_CT_ENTRY_HAS_TCP_FLAGS_REPLY,
    IPVSCT_CT_ENTRY_HAS_TCP_WSCALE_ORIG, IPVSCT_CT_ENTRY_HAS_TCP_WSCALE_REPLY,
    IPVSCT_CT_ENTRY_HAS_TIMEOUT, IPVSCT_CT_ENTRY_HAS_USE, IPVSCT_CT_ENTRY_HAS_ZONE,
    IPVSCT_CT_ENTRY_TRUNCATED, IPVSCT_HELPER_NAME_LEN, IPVSCT_LABEL_WORDS, IPVSCT_STATE_KIND_TCP,
    IPVSCT_STATE_KIND_UDP,
};
use crate::timeouts::IPVSCT_TIMEOUT_UNSET;
use crate::tuple::{
    ipvsct_tuple, IPVSCT_TUPLE_HAS_DST, IPVSCT_TUPLE_HAS_DST_PORT, IPVSCT_TUPLE_HAS_PROTO,
    IPVSCT_TUPLE_HAS_SRC, IPVSCT_TUPLE_HAS_SRC_PORT, IPVSCT_TUPLE_HAS_ZONE,
};

/// IPPROTO_TCP.
const TCP: u8 = 6;
/// IPPROTO_UDP.
const UDP: u8 = 17;
/// IPPROTO_UDPLITE.
const UDPLITE: u8 = 136;

/// An attribute header as the native-endian word it is on the wire (flag bits clear).
const fn hdr(len: u16, kind: u16) -> u32 {
    let l = len.to_ne_bytes();
    let k = kind.to_ne_bytes();
    u32::from_ne_bytes([l[0], l[1], k[0], k[1]])
}

/// Keeps the length and the type number of a header word (drops NLA_F_NESTED and
/// NLA_F_NET_BYTEORDER, as the core's decoders do).
const MASK: u32 = hdr(0xffff, NLA_TYPE_MASK);

/// The `M` bytes at `at` of `v` (zeros if out of range; the callers' offsets are
/// constants within `N`, so the check folds away).
#[inline(always)]
fn bytes<const N: usize, const M: usize>(v: &[u8; N], at: usize) -> [u8; M] {
    v.get(at..at.saturating_add(M))
        .and_then(|b| <[u8; M]>::try_from(b).ok())
        .unwrap_or([0; M])
}

/// The masked native-endian header word at `at` of `v` (0, which no header matches, if
/// out of range).
#[inline(always)]
fn header<const N: usize>(v: &[u8; N], at: usize) -> u32 {
    u32::from_ne_bytes(bytes(v, at)) & MASK
}

/// The big-endian 16-bit value at `at` of `v`.
#[inline(always)]
fn be16<const N: usize>(v: &[u8; N], at: usize) -> u16 {
    u16::from_be_bytes(bytes(v, at))
}

/// The kernel's tuple layout for ported protocols (TCP, UDP, SCTP, DCCP, UDP-Lite) with
/// `AL`-byte addresses, in `N = 4 + 2 * (4 + AL) + 28` bytes, then an optional zone
/// (8 more bytes): the checks and the values of the core's template path
/// (`fields_ported`), written in C form.
#[inline(always)]
fn ported<const N: usize, const AL: usize>(
    v: &[u8],
    family: u16,
    src_t: u16,
    dst_t: u16,
) -> Option<ipvsct_tuple> {
    const { assert!(N == 4 + 2 * (4 + AL) + 28 && AL <= 16) };
    let ip = 4 + 2 * (4 + AL);
    let (head, tail) = v.split_first_chunk::<N>()?;
    let zone = match tail.first_chunk::<8>() {
        None if tail.is_empty() => None,
        Some(t) if tail.len() == 8 => {
            if header(t, 0) != hdr(6, CTA_TUPLE_ZONE) {
                return None;
            }
            Some(be16(t, 4))
        }
        _ => return None,
    };
    // `ip` and `4 + AL` are below 65536 (N is 48 or 72).
    let ok = header(head, 0) == hdr(ip as u16, CTA_TUPLE_IP)
        && header(head, 4) == hdr((4 + AL) as u16, src_t)
        && header(head, 8 + AL) == hdr((4 + AL) as u16, dst_t)
        && header(head, ip) == hdr(28, CTA_TUPLE_PROTO)
        && header(head, ip + 4) == hdr(5, CTA_PROTO_NUM)
        && header(head, ip + 12) == hdr(6, CTA_PROTO_SRC_PORT)
        && header(head, ip + 20) == hdr(6, CTA_PROTO_DST_PORT);
    if !ok {
        return None;
    }
    let addr = |at: usize| {
        let mut addr = [0u8; 16];
        if let Some(d) = addr.first_chunk_mut::<AL>() {
            *d = bytes(head, at);
        }
        ipvsct_addr {
            family,
            reserved: 0,
            addr,
        }
    };
    let base = IPVSCT_TUPLE_HAS_SRC
        | IPVSCT_TUPLE_HAS_DST
        | IPVSCT_TUPLE_HAS_PROTO
        | IPVSCT_TUPLE_HAS_SRC_PORT
        | IPVSCT_TUPLE_HAS_DST_PORT;
    let [proto] = bytes(head, ip + 8);
    Some(ipvsct_tuple {
        src: addr(8),
        dst: addr(12 + AL),
        fields: if zone.is_some() {
            base | IPVSCT_TUPLE_HAS_ZONE
        } else {
            base
        },
        src_port: be16(head, ip + 16),
        dst_port: be16(head, ip + 24),
        icmp_id: 0,
        zone: zone.unwrap_or(0),
        proto,
        icmp_type: 0,
        icmp_code: 0,
        reserved: 0,
    })
}

/// The C form of a tuple nest's value if it has the kernel's layout for ported
/// protocols: what `ipvsct_tuple::from_view` gives for the core's `TupleView` of it.
/// `None` for any other layout.
#[inline(always)]
pub(crate) fn tuple(v: &[u8]) -> Option<ipvsct_tuple> {
    match v.len() {
        48 | 56 => ported::<48, 4>(v, IPVSCT_AF_INET, CTA_IP_V4_SRC, CTA_IP_V4_DST),
        72 | 80 => ported::<72, 16>(v, IPVSCT_AF_INET6, CTA_IP_V6_SRC, CTA_IP_V6_DST),
        _ => None,
    }
}

/// The value of the top-level attribute `kind` of `view` (empty if it is absent: no
/// fast path accepts an empty value).
#[inline(always)]
pub(crate) fn value<'a>(view: &EntryView<'a>, kind: u16) -> &'a [u8] {
    view.raw(kind).map_or(&[], |a| a.value())
}

/// The L4 protocol of a tuple nest's value, read as the core's first (unchecked-walk)
/// path reads it: the address pair of the kernel's layout, then a protocol nest of at
/// least 12 bytes that fits and starts with CTA_PROTO_NUM. `None` otherwise.
#[inline(always)]
fn tuple_proto(v: &[u8]) -> Option<u8> {
    let ip = match header(v.first_chunk::<4>()?, 0) {
        w if w == hdr(20, CTA_TUPLE_IP) => 20,
        w if w == hdr(44, CTA_TUPLE_IP) => 44,
        _ => return None,
    };
    let p: &[u8; 9] = v.get(ip..)?.first_chunk::<9>()?;
    let [l0, l1, t0, t1] = bytes(p, 0);
    let len = usize::from(u16::from_ne_bytes([l0, l1]));
    let kind = u16::from_ne_bytes([t0, t1]) & NLA_TYPE_MASK;
    // `ip + len` is below 65536 + 44.
    let ok = kind == CTA_TUPLE_PROTO
        && len >= 12
        && ip + len <= v.len()
        && header(p, 4) == hdr(5, CTA_PROTO_NUM);
    let [proto] = bytes(p, 8);
    ok.then_some(proto)
}

/// The CTA_PROTOINFO layout the kernel sends for TCP (state, both window scales, both
/// flag pairs): the core's template (`tcp_template`). Its state byte, or `None`.
#[inline(always)]
fn tcp_state(v: &[u8]) -> Option<u8> {
    let v: &[u8; 44] = v.try_into().ok()?;
    let ok = header(v, 0) == hdr(44, CTA_PROTOINFO_TCP)
        && header(v, 4) == hdr(5, CTA_PROTOINFO_TCP_STATE)
        && header(v, 12) == hdr(5, CTA_PROTOINFO_TCP_WSCALE_ORIGINAL)
        && header(v, 20) == hdr(5, CTA_PROTOINFO_TCP_WSCALE_REPLY)
        && header(v, 28) == hdr(6, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL)
        && header(v, 36) == hdr(6, CTA_PROTOINFO_TCP_FLAGS_REPLY);
    let [state] = bytes(v, 8);
    ok.then_some(state)
}

/// Whether a CTA_SYNPROXY value has the layout the kernel sends (ISN, ITS, TSOFF): the
/// core's template, for which `EntryView::synproxy` gives a value. False for anything
/// else (ask the core).
#[inline(always)]
pub(crate) fn synproxy(v: &[u8]) -> bool {
    let Ok(v) = <&[u8; 24]>::try_from(v) else {
        return false;
    };
    header(v, 0) == hdr(8, CTA_SYNPROXY_ISN)
        && header(v, 8) == hdr(8, CTA_SYNPROXY_ITS)
        && header(v, 16) == hdr(8, CTA_SYNPROXY_TSOFF)
}

/// A dump's state timeouts as tables, for the common protocols: built once per dump,
/// read with one index per entry.
pub(crate) struct TimeoutTable {
    /// Per TCP state number.
    tcp: [Option<u32>; 256],
    /// UDP, per [`udp_index`].
    udp: [Option<u32>; 3],
    /// UDP-Lite, per [`udp_index`].
    udplite: [Option<u32>; 3],
}

/// The UDP pseudo-states in [`udp_index`] order.
const UDP_STATES: [UdpState; 3] = [UdpState::Unreplied, UdpState::Replied, UdpState::Stream];

/// The UDP pseudo-state of status bits `status` (as `State::derive` derives it), as an
/// index into [`UDP_STATES`].
#[inline(always)]
fn udp_index(status: u32) -> usize {
    if status & Status::ASSURED.bits() != 0 {
        2
    } else if status & Status::SEEN_REPLY.bits() != 0 {
        1
    } else {
        0
    }
}

impl TimeoutTable {
    /// The tables of `t` (each value is `t.for_state` of that state).
    pub(crate) fn new(t: &StateTimeouts) -> Box<Self> {
        let mut tcp = [None; 256];
        for (s, slot) in (0..=u8::MAX).zip(tcp.iter_mut()) {
            *slot = t.for_state(TCP, State::Tcp(TcpState::from(s)));
        }
        Box::new(TimeoutTable {
            tcp,
            udp: UDP_STATES.map(|s| t.for_state(UDP, State::Udp(s))),
            udplite: UDP_STATES.map(|s| t.for_state(UDPLITE, State::Udp(s))),
        })
    }

    /// The state timeout of `view` as `StateTimeouts::for_state` gives it for the
    /// view's protocol and state, for TCP entries with the kernel's protocol info layout
    /// and for UDP and UDP-Lite entries. `None` (ask the core) for anything else.
    ///
    /// `proto` is the L4 protocol if the caller knows it from the original tuple's
    /// template ([`tuple`] accepted it); otherwise it is read from `orig()`, the value of
    /// CTA_TUPLE_ORIG, as the core reads it.
    #[inline(always)]
    pub(crate) fn state_timeout<'a>(
        &self,
        proto: Option<u8>,
        orig: impl FnOnce() -> &'a [u8],
        view: &EntryView<'_>,
    ) -> Option<Option<u32>> {
        let proto = match proto {
            Some(p) => p,
            None => tuple_proto(orig())?,
        };
        match proto {
            TCP => {
                let s = tcp_state(value(view, CTA_PROTOINFO))?;
                self.tcp.get(usize::from(s)).copied()
            }
            UDP | UDPLITE => {
                let status = view.status().map_or(0, |s| s.bits());
                let table = if proto == UDP {
                    &self.udp
                } else {
                    &self.udplite
                };
                table.get(udp_index(status)).copied()
            }
            _ => None,
        }
    }
}

/// The top-level attributes [`fill_entry`] handles: what the kernel sends for dumped
/// entries without accounting, timestamps, labels, helpers, NAT or sequence adjustment.
const COMMON: u32 = 1 << CTA_TUPLE_ORIG
    | 1 << CTA_TUPLE_REPLY
    | 1 << CTA_STATUS
    | 1 << CTA_TIMEOUT
    | 1 << CTA_MARK
    | 1 << CTA_USE
    | 1 << CTA_ID
    | 1 << CTA_SECMARK
    | 1 << CTA_ZONE
    | 1 << CTA_PROTOINFO
    | 1 << CTA_SYNPROXY;

/// The CTA_PROTOINFO layout the kernel sends for TCP, as the template reads it: state,
/// window scales (original, reply), flag pairs (flags, mask; original, reply).
struct Tcp {
    state: u8,
    wscale: [u8; 2],
    flags: [[u8; 2]; 2],
}

/// [`tcp_state`] with every field of the template.
#[inline(always)]
fn tcp_info(v: &[u8]) -> Option<Tcp> {
    let state = tcp_state(v)?;
    let v: &[u8; 44] = v.try_into().ok()?;
    let [w0] = bytes(v, 16);
    let [w1] = bytes(v, 24);
    Some(Tcp {
        state,
        wscale: [w0, w1],
        flags: [bytes(v, 32), bytes(v, 40)],
    })
}

/// `bit` if `v` is present, else 0.
#[inline(always)]
fn bit<T>(bit: u32, v: &Option<T>) -> u32 {
    if v.is_some() {
        bit
    } else {
        0
    }
}

/// Fills `*out` as `ipvsct_ct_entry::fill_from_view` fills it, for the entries the
/// kernel sends most: only [`COMMON`] attributes and no unknown ones, both tuples of the
/// kernel's layout for ported protocols ([`tuple`]), TCP with the kernel's protocol info
/// layout or UDP / UDP-Lite without protocol info, CTA_SYNPROXY (if present) of the
/// kernel's layout. Returns false, `*out` untouched, for anything else. The state
/// timeout comes from `table` if there is one, else from `timeouts`.
///
/// Every field is written (the struct literal names them all).
#[inline(always)]
pub(crate) fn fill_entry(
    out: &mut ipvsct_ct_entry,
    v: &EntryView<'_>,
    timeouts: Option<&StateTimeouts>,
    table: Option<&TimeoutTable>,
) -> bool {
    fill_entry_checked(out, v, timeouts, table).is_some()
}

/// [`fill_entry`], `None` where it declines.
#[inline(always)]
fn fill_entry_checked(
    out: &mut ipvsct_ct_entry,
    v: &EntryView<'_>,
    timeouts: Option<&StateTimeouts>,
    table: Option<&TimeoutTable>,
) -> Option<()> {
    let present = v.present();
    if present & !COMMON != 0 || v.has_unknown() {
        return None;
    }
    let orig = tuple(value(v, CTA_TUPLE_ORIG))?;
    let reply = tuple(value(v, CTA_TUPLE_REPLY))?;
    let synproxy = present & (1 << CTA_SYNPROXY) != 0;
    if synproxy && !self::synproxy(value(v, CTA_SYNPROXY)) {
        return None;
    }
    let status = v.status().map_or(0, |s| s.bits());
    let has_protoinfo = present & (1 << CTA_PROTOINFO) != 0;
    let (tcp, state, state_kind, state_num, state_timeout) = match orig.proto {
        TCP if has_protoinfo => {
            let tcp = tcp_info(value(v, CTA_PROTOINFO))?;
            let state = State::Tcp(TcpState::from(tcp.state));
            let st = match (timeouts, table) {
                (None, _) => None,
                (Some(_), Some(table)) => table.tcp.get(usize::from(tcp.state)).copied()?,
                (Some(t), None) => t.for_state(TCP, state),
            };
            let num = tcp.state;
            (Some(tcp), state, IPVSCT_STATE_KIND_TCP, num, st)
        }
        UDP | UDPLITE if !has_protoinfo => {
            let ix = udp_index(status);
            let state = State::Udp(*UDP_STATES.get(ix)?);
            let st = match (timeouts, table) {
                (None, _) => None,
                (Some(_), Some(table)) => {
                    let t = if orig.proto == UDP {
                        &table.udp
                    } else {
                        &table.udplite
                    };
                    t.get(ix).copied()?
                }
                (Some(t), None) => t.for_state(orig.proto, state),
            };
            // `ix` is below 3.
            (None, state, IPVSCT_STATE_KIND_UDP, ix as u8, st)
        }
        _ => return None,
    };
    let (state_name, cut_state) = cstr::fixed(state.name().unwrap_or(""));
    let (timeout, mark, use_count, id, secmark, zone) = (
        v.timeout(),
        v.mark(),
        v.use_count(),
        v.id(),
        v.secmark(),
        v.zone(),
    );
    let message = v.message();
    let tcp_bits = if tcp.is_some() {
        IPVSCT_CT_ENTRY_HAS_TCP_WSCALE_ORIG
            | IPVSCT_CT_ENTRY_HAS_TCP_WSCALE_REPLY
            | IPVSCT_CT_ENTRY_HAS_TCP_FLAGS_ORIG
            | IPVSCT_CT_ENTRY_HAS_TCP_FLAGS_REPLY
    } else {
        0
    };
    let fields = tcp_bits
        | bit(IPVSCT_CT_ENTRY_HAS_TIMEOUT, &timeout)
        | bit(IPVSCT_CT_ENTRY_HAS_STATE_TIMEOUT, &state_timeout)
        | bit(IPVSCT_CT_ENTRY_HAS_MARK, &mark)
        | bit(IPVSCT_CT_ENTRY_HAS_USE, &use_count)
        | bit(IPVSCT_CT_ENTRY_HAS_ID, &id)
        | bit(IPVSCT_CT_ENTRY_HAS_SECMARK, &secmark)
        | bit(IPVSCT_CT_ENTRY_HAS_ZONE, &zone)
        | if synproxy {
            IPVSCT_CT_ENTRY_HAS_MORE
        } else {
            0
        }
        | if cut_state {
            IPVSCT_CT_ENTRY_TRUNCATED
        } else {
            0
        };
    let (wscale, flags) = tcp.map_or(([0; 2], [[0; 2]; 2]), |t| (t.wscale, t.flags));
    let [[fo, fom], [fr, frm]] = flags;
    *out = ipvsct_ct_entry {
        counters_orig: ipvsct_counters::default(),
        counters_reply: ipvsct_counters::default(),
        timestamp_start: 0,
        timestamp_stop: 0,
        dccp_handshake_seq: 0,
        event_time: 0,
        orig,
        reply,
        master: ipvsct_tuple::default(),
        fields,
        status,
        timeout: timeout.unwrap_or(IPVSCT_TIMEOUT_UNSET),
        state_timeout: state_timeout.unwrap_or(IPVSCT_TIMEOUT_UNSET),
        mark: mark.unwrap_or(0),
        use_count: use_count.unwrap_or(0),
        id: id.unwrap_or(0),
        secmark: secmark.unwrap_or(0),
        sctp_vtag_orig: 0,
        sctp_vtag_reply: 0,
        labels: [0; IPVSCT_LABEL_WORDS],
        zone: zone.unwrap_or(0),
        nlmsg_flags: message.flags,
        res_id: message.res_id,
        family: v.family().value(),
        msg_type: message.msg,
        state_kind,
        state: state_num,
        tcp_wscale_orig: wscale[0],
        tcp_wscale_reply: wscale[1],
        tcp_flags_orig: fo,
        tcp_flags_orig_mask: fom,
        tcp_flags_reply: fr,
        tcp_flags_reply_mask: frm,
        dccp_role: 0,
        state_name,
        helper: [0; IPVSCT_HELPER_NAME_LEN],
        reserved: [0; 7],
    };
    Some(())
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
mod tests {
    use super::*;
    use ipvs_conntrack::conntrack::wire::{
        CTA_COUNTERS_ORIG, CTA_COUNTERS_REPLY, CTA_LABELS, CTA_TIMESTAMP,
    };
    use ipvs_conntrack::conntrack::TimeoutSource;
    use ipvs_conntrack::netlink::frame::Frames;

    /// Recorded kernel answers (compiled in, for Miri).
    const FIXTURES: &[&[u8]] = &[
        include_bytes!("../../tests/fixtures/dump_all.bin"),
        include_bytes!("../../tests/fixtures/dump_mark.bin"),
        include_bytes!("../../tests/fixtures/dump_zone.bin"),
        include_bytes!("../../tests/fixtures/dump_ipv6.bin"),
        include_bytes!("../../tests/fixtures/get_tcp.bin"),
    ];

    /// Timeouts with a distinct value for every state the tables hold.
    fn timeouts() -> StateTimeouts {
        let mut t = StateTimeouts::empty(TimeoutSource::Sysctl);
        t.tcp.syn_sent = Some(120);
        t.tcp.established = Some(432000);
        t.tcp.time_wait = Some(121);
        t.tcp.close = Some(10);
        t.udp.unreplied = Some(30);
        t.udp.replied = Some(180);
        t.udplite.unreplied = Some(31);
        t.udplite.replied = Some(181);
        t
    }

    /// `msg` (one netlink message holding an entry) without its top-level attributes of
    /// the kinds in `drop`.
    fn strip(msg: &[u8], drop: &[u16]) -> Vec<u8> {
        // Netlink header (16) and nfgenmsg (4), then the attributes.
        let mut out = msg[..20].to_vec();
        let mut pos = 20;
        while pos + 4 <= msg.len() {
            let len = usize::from(u16::from_ne_bytes([msg[pos], msg[pos + 1]]));
            let kind = u16::from_ne_bytes([msg[pos + 2], msg[pos + 3]]) & NLA_TYPE_MASK;
            let end = (pos + ((len + 3) & !3)).min(msg.len());
            if !drop.contains(&kind) {
                out.extend_from_slice(&msg[pos..end]);
            }
            pos = end;
        }
        let len = out.len() as u32;
        out[..4].copy_from_slice(&len.to_ne_bytes());
        out
    }

    /// Every entry message of the fixtures (netlink frames whose payload is an entry),
    /// and each again without the counters, timestamps and labels (the fixtures were
    /// recorded with accounting and timestamps on; the benchmark's table has neither).
    fn messages() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for buf in FIXTURES {
            for f in Frames::new(buf).flatten() {
                if EntryView::from_frame(&f).is_ok() {
                    let msg = &buf[f.offset..f.offset + f.header.length as usize];
                    out.push(msg.to_vec());
                    out.push(strip(
                        msg,
                        &[
                            CTA_COUNTERS_ORIG,
                            CTA_COUNTERS_REPLY,
                            CTA_TIMESTAMP,
                            CTA_LABELS,
                        ],
                    ));
                }
            }
        }
        assert!(out.len() >= 10, "fixtures hold entries");
        if cfg!(miri) {
            // Miri is slow: the first entry (as recorded and stripped), and the first
            // stripped TCP and UDP entries.
            let proto = |m: &Vec<u8>| {
                let f = Frames::new(m).next()?.ok()?;
                EntryView::from_frame(&f).ok()?.proto().ok()?
            };
            let mut keep: Vec<Vec<u8>> = out.iter().take(2).cloned().collect();
            for p in [TCP, UDP] {
                keep.extend(
                    out.iter()
                        .skip(1)
                        .step_by(2)
                        .find(|m| proto(m) == Some(p))
                        .cloned(),
                );
            }
            out = keep;
        }
        out
    }

    /// Compares every fast path with the core on one message; returns how many took a
    /// fast path (tuples, state timeout, synproxy, struct fills).
    fn compare(
        msg: &[u8],
        t: &StateTimeouts,
        table: &TimeoutTable,
    ) -> (usize, usize, usize, usize) {
        let Some(Ok(frame)) = Frames::new(msg).next() else {
            return (0, 0, 0, 0);
        };
        let Ok(v) = EntryView::from_frame(&frame) else {
            return (0, 0, 0, 0);
        };
        let mut hits = (0, 0, 0, 0);
        for (kind, core) in [(CTA_TUPLE_ORIG, v.orig()), (CTA_TUPLE_REPLY, v.reply())] {
            if let Some(fast) = tuple(value(&v, kind)) {
                let core = core.expect("fast path only where the core decodes");
                let core = core.expect("present");
                assert_eq!(fast, ipvsct_tuple::from_view(&core), "tuple {kind}");
                hits.0 += 1;
            }
        }
        if synproxy(value(&v, CTA_SYNPROXY)) {
            let core = v.synproxy().expect("fast path only where the core decodes");
            assert!(core.is_some(), "synproxy present");
            hits.2 += 1;
        }
        for (tt, tab) in [(None, None), (Some(t), Some(table)), (Some(t), None)] {
            // A struct full of another entry's values: every field must be overwritten,
            // or none if the fast path declines.
            let stale = ipvsct_ct_entry {
                fields: 0xdead_beef,
                labels: [7; IPVSCT_LABEL_WORDS],
                state_name: [1; crate::entry::IPVSCT_STATE_NAME_LEN],
                helper: [1; IPVSCT_HELPER_NAME_LEN],
                timeout: 5,
                mark: 7,
                master: ipvsct_tuple {
                    proto: 9,
                    ..Default::default()
                },
                reserved: [9; 7],
                ..Default::default()
            };
            let mut fast = stale;
            if fill_entry(&mut fast, &v, tt, tab) {
                let slow = ipvsct_ct_entry::from_view(&v, tt)
                    .expect("fast path only where the view path fills the struct");
                assert_eq!(fast, slow, "fast fill");
                hits.3 += 1;
            } else {
                assert_eq!(fast, stale, "a declined fast fill leaves *out untouched");
            }
        }
        let orig = || value(&v, CTA_TUPLE_ORIG);
        let known = tuple(orig()).map(|t| t.proto);
        if let Some(fast) = table.state_timeout(known, orig, &v) {
            assert_eq!(
                Some(fast),
                table.state_timeout(None, orig, &v),
                "proto known or not"
            );
            let state = v.state().expect("fast path only where the core decodes");
            let proto = v.proto().expect("proto").unwrap_or(0);
            assert_eq!(fast, t.for_state(proto, state), "state timeout");
            hits.1 += 1;
        }
        hits
    }

    #[test]
    fn fast_paths_agree_with_the_core_on_recorded_entries() {
        let t = timeouts();
        let table = TimeoutTable::new(&t);
        let msgs = messages();
        let (mut tuples, mut timeouts, mut synproxies, mut fills) = (0, 0, 0, 0);
        for m in &msgs {
            let (a, b, c, d) = compare(m, &t, &table);
            tuples += a;
            timeouts += b;
            synproxies += c;
            fills += d;
        }
        // Half the messages have no counters or timestamps; most of them are TCP or UDP.
        assert!(
            fills * 2 >= msgs.len(),
            "struct fills {fills} of {}",
            3 * msgs.len()
        );
        assert!(synproxies > 0, "some recorded entries carry CTA_SYNPROXY");
        // The recorded entries are TCP/UDP over IPv4/IPv6 (plus a few ICMP): most take
        // the fast paths.
        assert!(
            tuples >= msgs.len(),
            "tuples {tuples} of {}",
            2 * msgs.len()
        );
        assert!(
            timeouts * 2 >= msgs.len(),
            "timeouts {timeouts} of {}",
            msgs.len()
        );
    }

    #[test]
    fn fast_paths_agree_with_the_core_on_mutated_entries() {
        let t = timeouts();
        let table = TimeoutTable::new(&t);
        let msgs = messages();
        // A small deterministic generator (xorshift): byte flips anywhere after the
        // netlink header, which hit headers, lengths, values and padding.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let rounds = if cfg!(miri) { 20 } else { 20_000 };
        let mut fast = 0;
        for _ in 0..rounds {
            let mut m = msgs[next() as usize % msgs.len()].clone();
            for _ in 0..1 + next() % 3 {
                let i = 16 + next() as usize % (m.len() - 16);
                m[i] = match next() % 4 {
                    0 => m[i] ^ (1 << (next() % 8)),
                    1 => m[i].wrapping_add(4),
                    2 => m[i].wrapping_sub(4),
                    _ => next() as u8,
                };
            }
            let (a, b, c, d) = compare(&m, &t, &table);
            fast += a + b + c + d;
        }
        assert!(
            fast > rounds / 2,
            "mutations mostly keep a fast path: {fast}"
        );
    }

    #[test]
    fn tables_hold_for_state() {
        let t = timeouts();
        let table = TimeoutTable::new(&t);
        assert_eq!(table.tcp[3], Some(432000));
        assert_eq!(table.tcp[7], Some(121));
        assert_eq!(table.tcp[200], None);
        assert_eq!(table.udp, [Some(30), Some(30), Some(180)]);
        assert_eq!(table.udplite, [Some(31), Some(31), Some(181)]);
        assert_eq!(udp_index(0), 0);
        assert_eq!(udp_index(Status::SEEN_REPLY.bits()), 1);
        assert_eq!(udp_index((Status::SEEN_REPLY | Status::ASSURED).bits()), 2);
        assert_eq!(udp_index(Status::ASSURED.bits()), 2);
    }
}
