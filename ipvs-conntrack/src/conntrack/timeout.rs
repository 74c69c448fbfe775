//! State timeout policies (NFNL_SUBSYS_CTNETLINK_TIMEOUT) and the timeouts in force for
//! each protocol state, read over cttimeout or from the `nf_conntrack_*timeout*` sysctls.

use crate::conntrack::protoinfo::{DccpState, SctpState, TcpState};
use crate::conntrack::state::{State, UdpState};
use crate::conntrack::tuple::*;
use crate::conntrack::wire::*;
use crate::error::{AttrPath, DecodeError, DecodeErrorKind};
use crate::netlink::attr::{Attr, Attrs, RawAttr, Seen};
use crate::netlink::emit::MessageBuilder;
use crate::netlink::frame::{Frame, NLMSG_HDRLEN};
use crate::netlink::nfnetlink::{
    split_type, NfGenMsg, NFGENMSG_LEN, NFNL_SUBSYS_CTNETLINK_TIMEOUT,
};

/// TCP state timeouts in seconds (`CTA_TIMEOUT_TCP_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[allow(missing_docs)]
pub struct TcpTimeouts {
    pub syn_sent: Option<u32>,
    pub syn_recv: Option<u32>,
    pub established: Option<u32>,
    pub fin_wait: Option<u32>,
    pub close_wait: Option<u32>,
    pub last_ack: Option<u32>,
    pub time_wait: Option<u32>,
    pub close: Option<u32>,
    pub syn_sent2: Option<u32>,
    pub retrans: Option<u32>,
    pub unack: Option<u32>,
}

/// Unreplied/replied timeouts in seconds (UDP, UDP-Lite, GRE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct UdpTimeouts {
    /// Before a reply (and until the flow is a stream).
    pub unreplied: Option<u32>,
    /// Once the flow is a stream (ASSURED).
    pub replied: Option<u32>,
}

/// SCTP state timeouts in seconds (`CTA_TIMEOUT_SCTP_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[allow(missing_docs)]
pub struct SctpTimeouts {
    pub closed: Option<u32>,
    pub cookie_wait: Option<u32>,
    pub cookie_echoed: Option<u32>,
    pub established: Option<u32>,
    pub shutdown_sent: Option<u32>,
    pub shutdown_recd: Option<u32>,
    pub shutdown_ack_sent: Option<u32>,
    pub heartbeat_sent: Option<u32>,
    pub heartbeat_acked: Option<u32>,
}

/// DCCP state timeouts in seconds (`CTA_TIMEOUT_DCCP_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[allow(missing_docs)]
pub struct DccpTimeouts {
    pub request: Option<u32>,
    pub respond: Option<u32>,
    pub partopen: Option<u32>,
    pub open: Option<u32>,
    pub closereq: Option<u32>,
    pub closing: Option<u32>,
    pub timewait: Option<u32>,
}

/// The timeouts of one L4 protocol (the CTA_TIMEOUT_DATA nest).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum ProtoTimeouts {
    /// TCP.
    Tcp(TcpTimeouts),
    /// UDP.
    Udp(UdpTimeouts),
    /// UDP-Lite.
    UdpLite(UdpTimeouts),
    /// SCTP.
    Sctp(SctpTimeouts),
    /// DCCP.
    Dccp(DccpTimeouts),
    /// ICMP.
    Icmp(Option<u32>),
    /// ICMPv6.
    Icmpv6(Option<u32>),
    /// GRE.
    Gre(UdpTimeouts),
    /// Any other protocol: the generic timeout.
    Generic(Option<u32>),
}

/// A timeout policy: the default one of a protocol, or a named one (`nfct timeout`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TimeoutPolicy {
    /// CTA_TIMEOUT_NAME (absent for default policies).
    pub name: Option<String>,
    /// CTA_TIMEOUT_L3PROTO (an AF_* value).
    pub l3proto: u16,
    /// CTA_TIMEOUT_L4PROTO.
    pub l4proto: u8,
    /// CTA_TIMEOUT_DATA.
    pub timeouts: ProtoTimeouts,
    /// CTA_TIMEOUT_USE (reference count of named policies).
    pub use_count: Option<u32>,
    /// Attributes this library does not know, in order.
    pub unknown: Vec<RawAttr>,
}

fn decode_data(
    l4: u8,
    a: &Attr<'_>,
    unknown: &mut Vec<RawAttr>,
) -> Result<ProtoTimeouts, DecodeError> {
    let names: &'static [&'static str] = match l4 {
        IPPROTO_TCP => CTA_TIMEOUT_TCP_NAMES,
        IPPROTO_UDP => CTA_TIMEOUT_UDP_NAMES,
        IPPROTO_UDPLITE => CTA_TIMEOUT_UDPLITE_NAMES,
        IPPROTO_SCTP => CTA_TIMEOUT_SCTP_NAMES,
        IPPROTO_DCCP => CTA_TIMEOUT_DCCP_NAMES,
        IPPROTO_ICMP => CTA_TIMEOUT_ICMP_NAMES,
        IPPROTO_ICMPV6 => CTA_TIMEOUT_ICMPV6_NAMES,
        IPPROTO_GRE => CTA_TIMEOUT_GRE_NAMES,
        _ => CTA_TIMEOUT_GENERIC_NAMES,
    };
    let mut vals = [None::<u32>; 16];
    let mut seen = Seen::default();
    for x in a.nested(names) {
        let x = x?;
        seen.check(&x)?;
        let k = usize::from(x.kind());
        match vals.get_mut(k) {
            Some(slot) if k > 0 && k < names.len() => *slot = Some(x.be32()?),
            _ => unknown.push(x.to_raw()),
        }
    }
    let v = |i: usize| vals.get(i).copied().flatten();
    Ok(match l4 {
        IPPROTO_TCP => ProtoTimeouts::Tcp(TcpTimeouts {
            syn_sent: v(1),
            syn_recv: v(2),
            established: v(3),
            fin_wait: v(4),
            close_wait: v(5),
            last_ack: v(6),
            time_wait: v(7),
            close: v(8),
            syn_sent2: v(9),
            retrans: v(10),
            unack: v(11),
        }),
        IPPROTO_UDP | IPPROTO_UDPLITE | IPPROTO_GRE => {
            let u = UdpTimeouts {
                unreplied: v(1),
                replied: v(2),
            };
            match l4 {
                IPPROTO_UDP => ProtoTimeouts::Udp(u),
                IPPROTO_UDPLITE => ProtoTimeouts::UdpLite(u),
                _ => ProtoTimeouts::Gre(u),
            }
        }
        IPPROTO_SCTP => ProtoTimeouts::Sctp(SctpTimeouts {
            closed: v(1),
            cookie_wait: v(2),
            cookie_echoed: v(3),
            established: v(4),
            shutdown_sent: v(5),
            shutdown_recd: v(6),
            shutdown_ack_sent: v(7),
            heartbeat_sent: v(8),
            heartbeat_acked: v(9),
        }),
        IPPROTO_DCCP => ProtoTimeouts::Dccp(DccpTimeouts {
            request: v(1),
            respond: v(2),
            partopen: v(3),
            open: v(4),
            closereq: v(5),
            closing: v(6),
            timewait: v(7),
        }),
        IPPROTO_ICMP => ProtoTimeouts::Icmp(v(1)),
        IPPROTO_ICMPV6 => ProtoTimeouts::Icmpv6(v(1)),
        _ => ProtoTimeouts::Generic(v(1)),
    })
}

impl ProtoTimeouts {
    /// The values in attribute order (index = `CTA_TIMEOUT_<PROTO>_*` type).
    pub fn values(&self) -> Vec<(u16, u32)> {
        let list: Vec<Option<u32>> = match self {
            ProtoTimeouts::Tcp(t) => vec![
                t.syn_sent,
                t.syn_recv,
                t.established,
                t.fin_wait,
                t.close_wait,
                t.last_ack,
                t.time_wait,
                t.close,
                t.syn_sent2,
                t.retrans,
                t.unack,
            ],
            ProtoTimeouts::Udp(u) | ProtoTimeouts::UdpLite(u) | ProtoTimeouts::Gre(u) => {
                vec![u.unreplied, u.replied]
            }
            ProtoTimeouts::Sctp(s) => vec![
                s.closed,
                s.cookie_wait,
                s.cookie_echoed,
                s.established,
                s.shutdown_sent,
                s.shutdown_recd,
                s.shutdown_ack_sent,
                s.heartbeat_sent,
                s.heartbeat_acked,
            ],
            ProtoTimeouts::Dccp(d) => vec![
                d.request, d.respond, d.partopen, d.open, d.closereq, d.closing, d.timewait,
            ],
            ProtoTimeouts::Icmp(x) | ProtoTimeouts::Icmpv6(x) | ProtoTimeouts::Generic(x) => {
                vec![*x]
            }
        };
        list.into_iter()
            .enumerate()
            .filter_map(|(i, v)| Some((u16::try_from(i + 1).ok()?, v?)))
            .collect()
    }

    /// The kernel's name for each value's attribute, paired with the value.
    pub fn named_values(&self) -> Vec<(&'static str, u32)> {
        let names = match self {
            ProtoTimeouts::Tcp(_) => CTA_TIMEOUT_TCP_NAMES,
            ProtoTimeouts::Udp(_) => CTA_TIMEOUT_UDP_NAMES,
            ProtoTimeouts::UdpLite(_) => CTA_TIMEOUT_UDPLITE_NAMES,
            ProtoTimeouts::Gre(_) => CTA_TIMEOUT_GRE_NAMES,
            ProtoTimeouts::Sctp(_) => CTA_TIMEOUT_SCTP_NAMES,
            ProtoTimeouts::Dccp(_) => CTA_TIMEOUT_DCCP_NAMES,
            ProtoTimeouts::Icmp(_) => CTA_TIMEOUT_ICMP_NAMES,
            ProtoTimeouts::Icmpv6(_) => CTA_TIMEOUT_ICMPV6_NAMES,
            ProtoTimeouts::Generic(_) => CTA_TIMEOUT_GENERIC_NAMES,
        };
        self.values()
            .into_iter()
            .map(|(k, v)| (names.get(usize::from(k)).copied().unwrap_or("?"), v))
            .collect()
    }

    /// Appends this as CTA_TIMEOUT_DATA.
    pub fn emit(&self, b: &mut MessageBuilder) {
        let n = b.begin_nest(CTA_TIMEOUT_DATA);
        for (k, v) in self.values() {
            b.put_be32(k, v);
        }
        b.end_nest(n);
    }
}

impl TimeoutPolicy {
    /// Decodes a cttimeout message (default or named policy).
    pub fn from_frame(frame: &Frame<'_>) -> Result<TimeoutPolicy, DecodeError> {
        let (subsys, _) = split_type(frame.header.message_type);
        if subsys != NFNL_SUBSYS_CTNETLINK_TIMEOUT {
            return Err(DecodeError::new(
                DecodeErrorKind::UnexpectedMessage {
                    message_type: frame.header.message_type,
                },
                AttrPath::ROOT,
                frame.offset,
            ));
        }
        let base = frame.offset + NLMSG_HDRLEN;
        NfGenMsg::parse(frame.payload, base)?;
        let body = frame.payload.get(NFGENMSG_LEN..).unwrap_or_default();
        let off = base + NFGENMSG_LEN;
        Self::parse_body(body, off)
            .map_err(|e| e.resolve(body, off, CTA_TIMEOUT_NAMES, child_names))
    }

    /// Decodes the attributes of a cttimeout message.
    pub fn parse_body(body: &[u8], offset: usize) -> Result<TimeoutPolicy, DecodeError> {
        let mut name = None;
        let mut l3 = None;
        let mut l4 = None;
        let mut data = None;
        let mut use_count = None;
        let mut unknown = Vec::new();
        let mut seen = Seen::default();
        for a in Attrs::new(body, offset, AttrPath::ROOT, CTA_TIMEOUT_NAMES) {
            let a = a?;
            seen.check(&a)?;
            match a.kind() {
                CTA_TIMEOUT_NAME => name = Some(a.str()?.to_owned()),
                CTA_TIMEOUT_L3PROTO => l3 = Some(a.be16()?),
                CTA_TIMEOUT_L4PROTO => l4 = Some(a.u8()?),
                CTA_TIMEOUT_DATA => data = Some(a),
                CTA_TIMEOUT_USE => use_count = Some(a.be32()?),
                _ => unknown.push(a.to_raw()),
            }
        }
        let missing = || DecodeError::new(DecodeErrorKind::Missing, AttrPath::ROOT, offset);
        let l4proto = l4.ok_or_else(missing)?;
        let timeouts = match data {
            Some(d) => decode_data(l4proto, &d, &mut unknown)?,
            None => return Err(missing()),
        };
        Ok(TimeoutPolicy {
            name,
            l3proto: l3.unwrap_or(0),
            l4proto,
            timeouts,
            use_count,
            unknown,
        })
    }
}

/// Where a set of state timeouts came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum TimeoutSource {
    /// IPCTNL_MSG_TIMEOUT_DEFAULT_GET over cttimeout.
    Cttimeout,
    /// The `net.netfilter.nf_conntrack_*timeout*` sysctls of the namespace.
    Sysctl,
}

/// The state timeouts in force in a namespace, for every protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct StateTimeouts {
    /// Where these values came from.
    pub source: TimeoutSource,
    /// TCP.
    pub tcp: TcpTimeouts,
    /// UDP.
    pub udp: UdpTimeouts,
    /// UDP-Lite.
    pub udplite: UdpTimeouts,
    /// SCTP.
    pub sctp: SctpTimeouts,
    /// DCCP.
    pub dccp: DccpTimeouts,
    /// ICMP.
    pub icmp: Option<u32>,
    /// ICMPv6.
    pub icmpv6: Option<u32>,
    /// GRE.
    pub gre: UdpTimeouts,
    /// Generic (other protocols).
    pub generic: Option<u32>,
}

impl StateTimeouts {
    /// An empty set (every value unknown).
    pub fn empty(source: TimeoutSource) -> Self {
        StateTimeouts {
            source,
            tcp: TcpTimeouts::default(),
            udp: UdpTimeouts::default(),
            udplite: UdpTimeouts::default(),
            sctp: SctpTimeouts::default(),
            dccp: DccpTimeouts::default(),
            icmp: None,
            icmpv6: None,
            gre: UdpTimeouts::default(),
            generic: None,
        }
    }

    /// Stores one protocol's policy.
    pub fn set(&mut self, t: &ProtoTimeouts) {
        match t {
            ProtoTimeouts::Tcp(x) => self.tcp = *x,
            ProtoTimeouts::Udp(x) => self.udp = *x,
            ProtoTimeouts::UdpLite(x) => self.udplite = *x,
            ProtoTimeouts::Sctp(x) => self.sctp = *x,
            ProtoTimeouts::Dccp(x) => self.dccp = *x,
            ProtoTimeouts::Icmp(x) => self.icmp = *x,
            ProtoTimeouts::Icmpv6(x) => self.icmpv6 = *x,
            ProtoTimeouts::Gre(x) => self.gre = *x,
            ProtoTimeouts::Generic(x) => self.generic = *x,
        }
    }

    /// The full timeout of `state` for L4 protocol `proto`, in seconds.
    #[inline]
    pub fn for_state(&self, proto: u8, state: State) -> Option<u32> {
        match state {
            State::Tcp(s) => tcp_state_timeout(&self.tcp, s),
            State::Sctp(s) => sctp_state_timeout(&self.sctp, s),
            State::Dccp(s) => dccp_state_timeout(&self.dccp, s),
            State::Udp(s) => {
                let u = if proto == IPPROTO_UDPLITE {
                    &self.udplite
                } else {
                    &self.udp
                };
                udp_state_timeout(u, s)
            }
            State::Gre(s) => udp_state_timeout(&self.gre, s),
            State::Icmp => {
                if proto == IPPROTO_ICMPV6 {
                    self.icmpv6
                } else {
                    self.icmp
                }
            }
            State::Generic => self.generic,
            State::Unknown => None,
        }
    }
}

fn udp_state_timeout(u: &UdpTimeouts, s: UdpState) -> Option<u32> {
    match s {
        UdpState::Unreplied | UdpState::Replied => u.unreplied,
        UdpState::Stream => u.replied,
        UdpState::Unknown(_) => None,
    }
}

fn tcp_state_timeout(t: &TcpTimeouts, s: TcpState) -> Option<u32> {
    match s {
        TcpState::SynSent => t.syn_sent,
        TcpState::SynRecv => t.syn_recv,
        TcpState::Established => t.established,
        TcpState::FinWait => t.fin_wait,
        TcpState::CloseWait => t.close_wait,
        TcpState::LastAck => t.last_ack,
        TcpState::TimeWait => t.time_wait,
        TcpState::Close => t.close,
        TcpState::SynSent2 => t.syn_sent2,
        TcpState::Retrans => t.retrans,
        TcpState::Unack => t.unack,
        _ => None,
    }
}

fn sctp_state_timeout(t: &SctpTimeouts, s: SctpState) -> Option<u32> {
    match s {
        SctpState::Closed => t.closed,
        SctpState::CookieWait => t.cookie_wait,
        SctpState::CookieEchoed => t.cookie_echoed,
        SctpState::Established => t.established,
        SctpState::ShutdownSent => t.shutdown_sent,
        SctpState::ShutdownRecd => t.shutdown_recd,
        SctpState::ShutdownAckSent => t.shutdown_ack_sent,
        SctpState::HeartbeatSent => t.heartbeat_sent,
        SctpState::HeartbeatAcked => t.heartbeat_acked,
        _ => None,
    }
}

fn dccp_state_timeout(t: &DccpTimeouts, s: DccpState) -> Option<u32> {
    match s {
        DccpState::Request => t.request,
        DccpState::Respond => t.respond,
        DccpState::PartOpen => t.partopen,
        DccpState::Open => t.open,
        DccpState::CloseReq => t.closereq,
        DccpState::Closing => t.closing,
        DccpState::TimeWait => t.timewait,
        _ => None,
    }
}

/// The L4 protocols whose default policies are read, with the L3 family used to ask.
pub const DEFAULT_POLICY_PROTOCOLS: [(u16, u8); 9] = [
    (2, IPPROTO_TCP),
    (2, IPPROTO_UDP),
    (2, IPPROTO_UDPLITE),
    (2, IPPROTO_SCTP),
    (2, IPPROTO_DCCP),
    (2, IPPROTO_ICMP),
    (10, IPPROTO_ICMPV6),
    (2, IPPROTO_GRE),
    (2, 255),
];

/// Reads the state timeouts from a `/proc/sys/net/netfilter`-style directory.
///
/// `read` returns the content of a sysctl file by name (`None` if absent).
pub fn from_sysctls(read: impl Fn(&str) -> Option<u32>) -> StateTimeouts {
    let tcp = |s: &str| read(&format!("nf_conntrack_tcp_timeout_{s}"));
    let sctp = |s: &str| read(&format!("nf_conntrack_sctp_timeout_{s}"));
    let dccp = |s: &str| read(&format!("nf_conntrack_dccp_timeout_{s}"));
    let mut t = StateTimeouts::empty(TimeoutSource::Sysctl);
    t.tcp = TcpTimeouts {
        syn_sent: tcp("syn_sent"),
        syn_recv: tcp("syn_recv"),
        established: tcp("established"),
        fin_wait: tcp("fin_wait"),
        close_wait: tcp("close_wait"),
        last_ack: tcp("last_ack"),
        time_wait: tcp("time_wait"),
        close: tcp("close"),
        // No sysctl exists for SYN_SENT2; the kernel's default equals SYN_SENT.
        syn_sent2: tcp("syn_sent"),
        retrans: tcp("max_retrans"),
        unack: tcp("unacknowledged"),
    };
    t.udp = UdpTimeouts {
        unreplied: read("nf_conntrack_udp_timeout"),
        replied: read("nf_conntrack_udp_timeout_stream"),
    };
    t.udplite = t.udp;
    t.sctp = SctpTimeouts {
        closed: sctp("closed"),
        cookie_wait: sctp("cookie_wait"),
        cookie_echoed: sctp("cookie_echoed"),
        established: sctp("established"),
        shutdown_sent: sctp("shutdown_sent"),
        shutdown_recd: sctp("shutdown_recd"),
        shutdown_ack_sent: sctp("shutdown_ack_sent"),
        heartbeat_sent: sctp("heartbeat_sent"),
        heartbeat_acked: sctp("heartbeat_acked"),
    };
    t.dccp = DccpTimeouts {
        request: dccp("request"),
        respond: dccp("respond"),
        partopen: dccp("partopen"),
        open: dccp("open"),
        closereq: dccp("closereq"),
        closing: dccp("closing"),
        timewait: dccp("timewait"),
    };
    t.icmp = read("nf_conntrack_icmp_timeout");
    t.icmpv6 = read("nf_conntrack_icmpv6_timeout");
    t.gre = UdpTimeouts {
        unreplied: read("nf_conntrack_gre_timeout"),
        replied: read("nf_conntrack_gre_timeout_stream"),
    };
    t.generic = read("nf_conntrack_generic_timeout");
    t
}
