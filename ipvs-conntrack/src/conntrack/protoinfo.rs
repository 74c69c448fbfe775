//! Per-protocol state (CTA_PROTOINFO): TCP state, window scales and flags; SCTP state and
//! verification tags; DCCP state, role and handshake sequence.

use crate::conntrack::wire::*;
use crate::error::DecodeError;
use crate::netlink::attr::HeaderPositions;
use crate::netlink::attr::{for_each_attr, header_word, headers_match, Attr, RawAttr};
use crate::netlink::emit::MessageBuilder;
use crate::open_enum::open_enum;

open_enum! {
    /// TCP connection tracking state (`enum tcp_conntrack`).
    pub enum TcpState: u8 {
        /// TCP_CONNTRACK_NONE.
        None = 0 => "NONE",
        /// TCP_CONNTRACK_SYN_SENT.
        SynSent = 1 => "SYN_SENT",
        /// TCP_CONNTRACK_SYN_RECV.
        SynRecv = 2 => "SYN_RECV",
        /// TCP_CONNTRACK_ESTABLISHED.
        Established = 3 => "ESTABLISHED",
        /// TCP_CONNTRACK_FIN_WAIT.
        FinWait = 4 => "FIN_WAIT",
        /// TCP_CONNTRACK_CLOSE_WAIT.
        CloseWait = 5 => "CLOSE_WAIT",
        /// TCP_CONNTRACK_LAST_ACK.
        LastAck = 6 => "LAST_ACK",
        /// TCP_CONNTRACK_TIME_WAIT.
        TimeWait = 7 => "TIME_WAIT",
        /// TCP_CONNTRACK_CLOSE.
        Close = 8 => "CLOSE",
        /// TCP_CONNTRACK_SYN_SENT2 (formerly TCP_CONNTRACK_LISTEN): simultaneous open.
        SynSent2 = 9 => "SYN_SENT2",
        /// TCP_CONNTRACK_MAX (not a real state).
        Max = 10 => "MAX",
        /// TCP_CONNTRACK_IGNORE (not a real state).
        Ignore = 11 => "IGNORE",
        /// TCP_CONNTRACK_RETRANS (timeout class, not a state).
        Retrans = 12 => "RETRANS",
        /// TCP_CONNTRACK_UNACK (timeout class, not a state).
        Unack = 13 => "UNACK",
    }
}

open_enum! {
    /// SCTP connection tracking state (`enum sctp_conntrack`).
    pub enum SctpState: u8 {
        /// SCTP_CONNTRACK_NONE.
        None = 0 => "NONE",
        /// SCTP_CONNTRACK_CLOSED.
        Closed = 1 => "CLOSED",
        /// SCTP_CONNTRACK_COOKIE_WAIT.
        CookieWait = 2 => "COOKIE_WAIT",
        /// SCTP_CONNTRACK_COOKIE_ECHOED.
        CookieEchoed = 3 => "COOKIE_ECHOED",
        /// SCTP_CONNTRACK_ESTABLISHED.
        Established = 4 => "ESTABLISHED",
        /// SCTP_CONNTRACK_SHUTDOWN_SENT.
        ShutdownSent = 5 => "SHUTDOWN_SENT",
        /// SCTP_CONNTRACK_SHUTDOWN_RECD.
        ShutdownRecd = 6 => "SHUTDOWN_RECD",
        /// SCTP_CONNTRACK_SHUTDOWN_ACK_SENT.
        ShutdownAckSent = 7 => "SHUTDOWN_ACK_SENT",
        /// SCTP_CONNTRACK_HEARTBEAT_SENT.
        HeartbeatSent = 8 => "HEARTBEAT_SENT",
        /// SCTP_CONNTRACK_HEARTBEAT_ACKED (no longer used).
        HeartbeatAcked = 9 => "HEARTBEAT_ACKED",
    }
}

open_enum! {
    /// DCCP connection tracking state (`enum ct_dccp_states`).
    pub enum DccpState: u8 {
        /// CT_DCCP_NONE.
        None = 0 => "NONE",
        /// CT_DCCP_REQUEST.
        Request = 1 => "REQUEST",
        /// CT_DCCP_RESPOND.
        Respond = 2 => "RESPOND",
        /// CT_DCCP_PARTOPEN.
        PartOpen = 3 => "PARTOPEN",
        /// CT_DCCP_OPEN.
        Open = 4 => "OPEN",
        /// CT_DCCP_CLOSEREQ.
        CloseReq = 5 => "CLOSEREQ",
        /// CT_DCCP_CLOSING.
        Closing = 6 => "CLOSING",
        /// CT_DCCP_TIMEWAIT.
        TimeWait = 7 => "TIMEWAIT",
        /// CT_DCCP_IGNORE.
        Ignore = 8 => "IGNORE",
        /// CT_DCCP_INVALID.
        Invalid = 9 => "INVALID",
    }
}

open_enum! {
    /// DCCP role (`enum ct_dccp_roles`).
    pub enum DccpRole: u8 {
        /// CT_DCCP_ROLE_CLIENT.
        Client = 0 => "CLIENT",
        /// CT_DCCP_ROLE_SERVER.
        Server = 1 => "SERVER",
    }
}

bitflags::bitflags! {
    /// TCP conntrack per-direction flags (`IP_CT_TCP_FLAG_*`). Unknown bits are kept.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct TcpFlags: u8 {
        /// IP_CT_TCP_FLAG_WINDOW_SCALE.
        const WINDOW_SCALE = 0x01;
        /// IP_CT_TCP_FLAG_SACK_PERM.
        const SACK_PERM = 0x02;
        /// IP_CT_TCP_FLAG_CLOSE_INIT.
        const CLOSE_INIT = 0x04;
        /// IP_CT_TCP_FLAG_BE_LIBERAL.
        const BE_LIBERAL = 0x08;
        /// IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED.
        const DATA_UNACKNOWLEDGED = 0x10;
        /// IP_CT_TCP_FLAG_MAXACK_SET.
        const MAXACK_SET = 0x20;
        /// IP_CT_EXP_CHALLENGE_ACK.
        const CHALLENGE_ACK = 0x40;
        /// IP_CT_TCP_SIMULTANEOUS_OPEN.
        const SIMULTANEOUS_OPEN = 0x80;
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for TcpFlags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.bits())
    }
}

/// A flags/mask pair (`struct nf_ct_tcp_flags`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TcpFlagsMask {
    /// Flags.
    pub flags: TcpFlags,
    /// Which flags to change (requests only; the kernel sends a mask too).
    pub mask: TcpFlags,
}

/// TCP protocol info.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TcpInfo {
    /// Conntrack TCP state.
    pub state: Option<TcpState>,
    /// Window scale of the original direction.
    pub wscale_original: Option<u8>,
    /// Window scale of the reply direction.
    pub wscale_reply: Option<u8>,
    /// Flags of the original direction.
    pub flags_original: Option<TcpFlagsMask>,
    /// Flags of the reply direction.
    pub flags_reply: Option<TcpFlagsMask>,
}

/// SCTP protocol info.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SctpInfo {
    /// Conntrack SCTP state.
    pub state: Option<SctpState>,
    /// Verification tag of the original direction.
    pub vtag_original: Option<u32>,
    /// Verification tag of the reply direction.
    pub vtag_reply: Option<u32>,
}

/// DCCP protocol info.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DccpInfo {
    /// Conntrack DCCP state.
    pub state: Option<DccpState>,
    /// Role of the original sender.
    pub role: Option<DccpRole>,
    /// Handshake sequence number.
    pub handshake_seq: Option<u64>,
}

/// CTA_PROTOINFO, decoded.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ProtoInfo {
    /// CTA_PROTOINFO_TCP.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub tcp: Option<TcpInfo>,
    /// CTA_PROTOINFO_SCTP.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub sctp: Option<SctpInfo>,
    /// CTA_PROTOINFO_DCCP.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub dccp: Option<DccpInfo>,
    /// Attributes this library does not know (at any depth), in order.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Vec::is_empty"))]
    pub unknown: Vec<RawAttr>,
}

fn flags_mask(a: &Attr<'_>) -> Result<TcpFlagsMask, DecodeError> {
    let v = a.be16()?.to_be_bytes();
    Ok(TcpFlagsMask {
        flags: TcpFlags::from_bits_retain(v[0]),
        mask: TcpFlags::from_bits_retain(v[1]),
    })
}

/// The value bytes of the CTA_PROTOINFO nest the kernel sends for TCP
/// (`tcp_to_nlattr`): state, both window scales, both flag/mask pairs, in that order.
const TCP_TEMPLATE: [(usize, u32); 6] = [
    (0, header_word(44, CTA_PROTOINFO_TCP)),
    (4, header_word(5, CTA_PROTOINFO_TCP_STATE)),
    (12, header_word(5, CTA_PROTOINFO_TCP_WSCALE_ORIGINAL)),
    (20, header_word(5, CTA_PROTOINFO_TCP_WSCALE_REPLY)),
    (28, header_word(6, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL)),
    (36, header_word(6, CTA_PROTOINFO_TCP_FLAGS_REPLY)),
];

/// The TCP layout the kernel sends, decoded without the general walk; `None` for any other
/// layout (which the checked path then decodes).
#[inline]
pub(crate) fn tcp_template(v: &[u8]) -> Option<TcpInfo> {
    let v: &[u8; 44] = v.try_into().ok()?;
    if !headers_match(v, &TCP_TEMPLATE) {
        return None;
    }
    Some(tcp_values(v))
}

/// Header positions (in the CTA_PROTOINFO value) of the TCP layout, when `v` has it.
pub(crate) fn tcp_form(v: &[u8]) -> Option<HeaderPositions> {
    tcp_template(v).map(|_| HeaderPositions::of(&TCP_TEMPLATE, TCP_TEMPLATE.len()))
}

/// The values of a CTA_PROTOINFO value whose headers are those of the TCP layout.
#[inline(always)]
pub(crate) fn tcp_values(v: &[u8; 44]) -> TcpInfo {
    let pair = |at: usize| TcpFlagsMask {
        flags: TcpFlags::from_bits_retain(v[at]),
        mask: TcpFlags::from_bits_retain(v[at + 1]),
    };
    TcpInfo {
        state: Some(TcpState::from(v[8])),
        wscale_original: Some(v[16]),
        wscale_reply: Some(v[24]),
        flags_original: Some(pair(32)),
        flags_reply: Some(pair(40)),
    }
}

impl ProtoInfo {
    /// Decodes a CTA_PROTOINFO nest. `unknown` collection only allocates if unknown attributes exist.
    #[inline]
    pub fn parse(nest: &Attr<'_>) -> Result<ProtoInfo, DecodeError> {
        match tcp_template(nest.value()) {
            Some(tcp) => Ok(ProtoInfo {
                tcp: Some(tcp),
                ..ProtoInfo::default()
            }),
            None => Self::parse_checked(nest),
        }
    }

    /// The general, checked path of [`ProtoInfo::parse`].
    #[inline(never)]
    fn parse_checked(nest: &Attr<'_>) -> Result<ProtoInfo, DecodeError> {
        let mut out = ProtoInfo::default();
        let unknown = &mut out.unknown;
        let (tcp, sctp, dccp) = (&mut out.tcp, &mut out.sctp, &mut out.dccp);
        for_each_attr(nest.value(), nest.offset(), CTA_PROTOINFO_NAMES, |a| {
            match a.kind() {
                CTA_PROTOINFO_TCP => {
                    let t = tcp.insert(TcpInfo::default());
                    for_each_attr(a.value(), a.offset(), CTA_PROTOINFO_TCP_NAMES, |x| {
                        match x.kind() {
                            CTA_PROTOINFO_TCP_STATE => t.state = Some(TcpState::from(x.u8()?)),
                            CTA_PROTOINFO_TCP_WSCALE_ORIGINAL => t.wscale_original = Some(x.u8()?),
                            CTA_PROTOINFO_TCP_WSCALE_REPLY => t.wscale_reply = Some(x.u8()?),
                            CTA_PROTOINFO_TCP_FLAGS_ORIGINAL => {
                                t.flags_original = Some(flags_mask(&x)?)
                            }
                            CTA_PROTOINFO_TCP_FLAGS_REPLY => t.flags_reply = Some(flags_mask(&x)?),
                            _ => unknown.push(x.to_raw()),
                        }
                        Ok(())
                    })?;
                }
                CTA_PROTOINFO_SCTP => {
                    let s = sctp.insert(SctpInfo::default());
                    for_each_attr(a.value(), a.offset(), CTA_PROTOINFO_SCTP_NAMES, |x| {
                        match x.kind() {
                            CTA_PROTOINFO_SCTP_STATE => s.state = Some(SctpState::from(x.u8()?)),
                            CTA_PROTOINFO_SCTP_VTAG_ORIGINAL => s.vtag_original = Some(x.be32()?),
                            CTA_PROTOINFO_SCTP_VTAG_REPLY => s.vtag_reply = Some(x.be32()?),
                            _ => unknown.push(x.to_raw()),
                        }
                        Ok(())
                    })?;
                }
                CTA_PROTOINFO_DCCP => {
                    let d = dccp.insert(DccpInfo::default());
                    for_each_attr(a.value(), a.offset(), CTA_PROTOINFO_DCCP_NAMES, |x| {
                        match x.kind() {
                            CTA_PROTOINFO_DCCP_STATE => d.state = Some(DccpState::from(x.u8()?)),
                            CTA_PROTOINFO_DCCP_ROLE => d.role = Some(DccpRole::from(x.u8()?)),
                            CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ => d.handshake_seq = Some(x.be64()?),
                            CTA_PROTOINFO_DCCP_PAD => {}
                            _ => unknown.push(x.to_raw()),
                        }
                        Ok(())
                    })?;
                }
                _ => unknown.push(a.to_raw()),
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Appends this as CTA_PROTOINFO to a request.
    pub fn emit(&self, b: &mut MessageBuilder) {
        let n = b.begin_nest(CTA_PROTOINFO);
        if let Some(t) = &self.tcp {
            let m = b.begin_nest(CTA_PROTOINFO_TCP);
            if let Some(s) = t.state {
                b.put_u8(CTA_PROTOINFO_TCP_STATE, s.value());
            }
            if let Some(v) = t.wscale_original {
                b.put_u8(CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, v);
            }
            if let Some(v) = t.wscale_reply {
                b.put_u8(CTA_PROTOINFO_TCP_WSCALE_REPLY, v);
            }
            if let Some(f) = t.flags_original {
                b.put_bytes(
                    CTA_PROTOINFO_TCP_FLAGS_ORIGINAL,
                    &[f.flags.bits(), f.mask.bits()],
                );
            }
            if let Some(f) = t.flags_reply {
                b.put_bytes(
                    CTA_PROTOINFO_TCP_FLAGS_REPLY,
                    &[f.flags.bits(), f.mask.bits()],
                );
            }
            b.end_nest(m);
        }
        if let Some(s) = &self.sctp {
            let m = b.begin_nest(CTA_PROTOINFO_SCTP);
            if let Some(v) = s.state {
                b.put_u8(CTA_PROTOINFO_SCTP_STATE, v.value());
            }
            if let Some(v) = s.vtag_original {
                b.put_be32(CTA_PROTOINFO_SCTP_VTAG_ORIGINAL, v);
            }
            if let Some(v) = s.vtag_reply {
                b.put_be32(CTA_PROTOINFO_SCTP_VTAG_REPLY, v);
            }
            b.end_nest(m);
        }
        if let Some(d) = &self.dccp {
            let m = b.begin_nest(CTA_PROTOINFO_DCCP);
            if let Some(v) = d.state {
                b.put_u8(CTA_PROTOINFO_DCCP_STATE, v.value());
            }
            if let Some(v) = d.role {
                b.put_u8(CTA_PROTOINFO_DCCP_ROLE, v.value());
            }
            if let Some(v) = d.handshake_seq {
                b.put_be64(CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ, v);
            }
            b.end_nest(m);
        }
        b.end_nest(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AttrPath;
    use crate::netlink::attr::test_util::{first_value, nested_attr};
    use crate::netlink::attr::Attrs;
    use crate::netlink::frame::Frames;
    use proptest::prelude::*;

    /// The template must decline or agree with the checked path, for any bytes.
    fn check_agreement(value: &[u8]) {
        let buf = nested_attr(CTA_PROTOINFO, value);
        let a = Attr::at(&buf, 0, 0, CTA_NAMES).unwrap();
        let checked = ProtoInfo::parse_checked(&a);
        if let Some(t) = tcp_template(value) {
            let want = ProtoInfo {
                tcp: Some(t),
                ..ProtoInfo::default()
            };
            assert_eq!(checked, Ok(want), "template disagrees on {value:02x?}");
        }
        assert_eq!(
            ProtoInfo::parse(&a),
            checked,
            "parse disagrees on {value:02x?}"
        );
    }

    fn emitted_value(p: &ProtoInfo) -> Vec<u8> {
        let mut b = MessageBuilder::new(0x0100, 0);
        p.emit(&mut b);
        first_value(&b.finish())
    }

    proptest! {
        #[test]
        fn tcp_template_agrees_with_checked_path(
            state in any::<u8>(),
            ws in any::<(u8, u8)>(),
            fl in any::<(u8, u8, u8, u8)>(),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
        ) {
            let pair = |f, m| TcpFlagsMask {
                flags: TcpFlags::from_bits_retain(f),
                mask: TcpFlags::from_bits_retain(m),
            };
            let p = ProtoInfo {
                tcp: Some(TcpInfo {
                    state: Some(TcpState::from(state)),
                    wscale_original: Some(ws.0),
                    wscale_reply: Some(ws.1),
                    flags_original: Some(pair(fl.0, fl.1)),
                    flags_reply: Some(pair(fl.2, fl.3)),
                }),
                ..ProtoInfo::default()
            };
            let mut v = emitted_value(&p);
            prop_assert!(tcp_template(&v).is_some(), "the full TCP layout is the template");
            check_agreement(&v);
            for (at, x) in flips {
                let i = at % v.len();
                v[i] = x;
            }
            check_agreement(&v);
        }
    }

    /// Real kernel bytes (recorded fixture, kernel 6.18): every TCP protocol info matches
    /// the template, and the template agrees with the checked path.
    #[test]
    fn template_covers_recorded_kernel_protoinfo() {
        let data = include_bytes!("../../../tests/fixtures/dump_all.bin");
        let mut tcp = 0;
        for f in Frames::new(data).flatten() {
            if f.payload.len() < 4 || f.header.message_type < 16 {
                continue;
            }
            for a in Attrs::new(&f.payload[4..], 20, AttrPath::ROOT, CTA_NAMES).flatten() {
                if a.kind() == CTA_PROTOINFO {
                    check_agreement(a.value());
                    if ProtoInfo::parse_checked(&a).unwrap().tcp.is_some() {
                        tcp += 1;
                        assert!(tcp_template(a.value()).is_some());
                    }
                }
            }
        }
        assert!(tcp >= 3, "fixture has {tcp} TCP entries");
    }
}
