//! The state of a connection across protocols, as the kernel's timeout logic sees it.

use crate::conntrack::protoinfo::{DccpState, ProtoInfo, SctpState, TcpState};
use crate::conntrack::status::Status;
use crate::conntrack::tuple::*;
use crate::open_enum::open_enum;

open_enum! {
    /// UDP, UDP-Lite and GRE pseudo-states, which select the timeout the kernel applies.
    pub enum UdpState: u8 {
        /// No reply seen yet: the `unreplied` timeout applies.
        Unreplied = 0 => "UNREPLIED",
        /// Replies seen but not yet a stream (not ASSURED): the `unreplied` timeout applies.
        Replied = 1 => "REPLIED",
        /// A stream (ASSURED): the `replied` (stream) timeout applies.
        Stream = 2 => "STREAM",
    }
}

/// Connection state of an entry, by protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// TCP state.
    Tcp(TcpState),
    /// SCTP state.
    Sctp(SctpState),
    /// DCCP state.
    Dccp(DccpState),
    /// UDP or UDP-Lite pseudo-state.
    Udp(UdpState),
    /// GRE pseudo-state.
    Gre(UdpState),
    /// ICMP / ICMPv6 (one timeout, no states).
    Icmp,
    /// Any other protocol (the generic timeout).
    Generic,
    /// A TCP/SCTP/DCCP entry without protocol info (e.g. a filtered message).
    Unknown,
}

impl State {
    /// Derives the state from the L4 protocol, protocol info and status bits.
    pub fn derive(proto: u8, info: Option<&ProtoInfo>, status: Status) -> State {
        let udp_like = || {
            if status.contains(Status::ASSURED) {
                UdpState::Stream
            } else if status.contains(Status::SEEN_REPLY) {
                UdpState::Replied
            } else {
                UdpState::Unreplied
            }
        };
        match proto {
            IPPROTO_TCP => info
                .and_then(|i| i.tcp.as_ref())
                .and_then(|t| t.state)
                .map_or(State::Unknown, State::Tcp),
            IPPROTO_SCTP => info
                .and_then(|i| i.sctp.as_ref())
                .and_then(|t| t.state)
                .map_or(State::Unknown, State::Sctp),
            IPPROTO_DCCP => info
                .and_then(|i| i.dccp.as_ref())
                .and_then(|t| t.state)
                .map_or(State::Unknown, State::Dccp),
            IPPROTO_UDP | IPPROTO_UDPLITE => State::Udp(udp_like()),
            IPPROTO_GRE => State::Gre(if status.contains(Status::SEEN_REPLY) {
                UdpState::Stream
            } else {
                UdpState::Unreplied
            }),
            IPPROTO_ICMP | IPPROTO_ICMPV6 => State::Icmp,
            _ => State::Generic,
        }
    }

    /// Name of the state (`TIME_WAIT`, `UNREPLIED`, …), `None` for stateless protocols.
    pub fn name(&self) -> Option<&'static str> {
        match self {
            State::Tcp(s) => Some(s.name()),
            State::Sctp(s) => Some(s.name()),
            State::Dccp(s) => Some(s.name()),
            State::Udp(s) | State::Gre(s) => Some(s.name()),
            State::Icmp | State::Generic | State::Unknown => None,
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name().unwrap_or("-"))
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for State {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.name() {
            Some(n) => s.serialize_str(n),
            None => s.serialize_none(),
        }
    }
}
