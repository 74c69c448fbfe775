//! IPVS connection states, their per-protocol timeout tables (kernel defaults plus the
//! three configurable values) and how the kernel counts a connection: active or inactive.
//!
//! IPVS keeps its own connection table, separate from conntrack, with its own state
//! machines (`net/netfilter/ipvs/ip_vs_proto_{tcp,udp,sctp}.c`). A destination's
//! ActiveConn counts TCP and SCTP connections in ESTABLISHED; every other connection
//! entry (TIME_WAIT, FIN_WAIT, CLOSE, SYN_RECV, any UDP entry...) is in InActConn
//! until its timer expires. Persistence templates are counted apart (PersistConn).

use std::fmt;

use crate::ipvs::addr::Protocol;
use crate::ipvs::config::Timeouts;
use crate::open_enum::open_enum;

open_enum! {
    /// IPVS TCP states (`IP_VS_TCP_S_*`), named as `/proc/net/ip_vs_conn` prints them.
    pub enum TcpState: u8 {
        /// IP_VS_TCP_S_NONE.
        None = 0 => "NONE",
        /// IP_VS_TCP_S_ESTABLISHED.
        Established = 1 => "ESTABLISHED",
        /// IP_VS_TCP_S_SYN_SENT.
        SynSent = 2 => "SYN_SENT",
        /// IP_VS_TCP_S_SYN_RECV.
        SynRecv = 3 => "SYN_RECV",
        /// IP_VS_TCP_S_FIN_WAIT.
        FinWait = 4 => "FIN_WAIT",
        /// IP_VS_TCP_S_TIME_WAIT.
        TimeWait = 5 => "TIME_WAIT",
        /// IP_VS_TCP_S_CLOSE.
        Close = 6 => "CLOSE",
        /// IP_VS_TCP_S_CLOSE_WAIT.
        CloseWait = 7 => "CLOSE_WAIT",
        /// IP_VS_TCP_S_LAST_ACK.
        LastAck = 8 => "LAST_ACK",
        /// IP_VS_TCP_S_LISTEN.
        Listen = 9 => "LISTEN",
        /// IP_VS_TCP_S_SYNACK.
        Synack = 10 => "SYNACK",
    }
}

open_enum! {
    /// IPVS SCTP states (`IP_VS_SCTP_S_*`), named as `/proc/net/ip_vs_conn` prints them.
    pub enum SctpState: u8 {
        /// IP_VS_SCTP_S_NONE.
        None = 0 => "NONE",
        /// IP_VS_SCTP_S_INIT1.
        Init1 = 1 => "INIT1",
        /// IP_VS_SCTP_S_INIT.
        Init = 2 => "INIT",
        /// IP_VS_SCTP_S_COOKIE_SENT.
        CookieSent = 3 => "C-SENT",
        /// IP_VS_SCTP_S_COOKIE_REPLIED.
        CookieReplied = 4 => "C-REPLIED",
        /// IP_VS_SCTP_S_COOKIE_WAIT.
        CookieWait = 5 => "C-WAIT",
        /// IP_VS_SCTP_S_COOKIE.
        Cookie = 6 => "COOKIE",
        /// IP_VS_SCTP_S_COOKIE_ECHOED.
        CookieEchoed = 7 => "C-ECHOED",
        /// IP_VS_SCTP_S_ESTABLISHED.
        Established = 8 => "ESTABLISHED",
        /// IP_VS_SCTP_S_SHUTDOWN_SENT.
        ShutdownSent = 9 => "S-SENT",
        /// IP_VS_SCTP_S_SHUTDOWN_RECEIVED.
        ShutdownReceived = 10 => "S-RECEIVED",
        /// IP_VS_SCTP_S_SHUTDOWN_ACK_SENT.
        ShutdownAckSent = 11 => "S-ACK-SENT",
        /// IP_VS_SCTP_S_REJECTED.
        Rejected = 12 => "REJECTED",
        /// IP_VS_SCTP_S_CLOSED.
        Closed = 13 => "CLOSED",
    }
}

open_enum! {
    /// States of persistence templates (`IP_VS_CTPL_S_*`).
    pub enum TemplateState: u8 {
        /// IP_VS_CTPL_S_NONE.
        None = 0 => "NONE",
        /// IP_VS_CTPL_S_ASSURED.
        Assured = 1 => "ASSURED",
    }
}

/// The state of an IPVS connection entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConnState {
    /// A TCP connection.
    Tcp(TcpState),
    /// A UDP connection (IPVS UDP has one state, printed `UDP`).
    Udp,
    /// An SCTP connection.
    Sctp(SctpState),
    /// A persistence template.
    Template(TemplateState),
    /// A state name this library does not know, as printed.
    Other(String),
}

impl ConnState {
    /// Interprets a state name as `/proc/net/ip_vs_conn` prints it for `protocol`.
    ///
    /// `ASSURED`, and `NONE` for protocol IP (firewall-mark templates), are templates.
    pub fn parse(protocol: Protocol, name: &str) -> ConnState {
        if name == "ASSURED" {
            return ConnState::Template(TemplateState::Assured);
        }
        let known = match protocol {
            Protocol::Tcp => TcpState::from_name(name).map(ConnState::Tcp),
            Protocol::Udp => (name == "UDP").then_some(ConnState::Udp),
            Protocol::Sctp => SctpState::from_name(name).map(ConnState::Sctp),
            Protocol::Ip => (name == "NONE").then_some(ConnState::Template(TemplateState::None)),
            _ => None,
        };
        known.unwrap_or_else(|| ConnState::Other(name.to_owned()))
    }

    /// The name as the kernel prints it.
    pub fn name(&self) -> &str {
        match self {
            ConnState::Tcp(s) => s.name(),
            ConnState::Udp => "UDP",
            ConnState::Sctp(s) => s.name(),
            ConnState::Template(s) => s.name(),
            ConnState::Other(s) => s,
        }
    }

    /// How the kernel counts a connection entry in this state.
    pub fn activity(&self) -> Activity {
        match self {
            ConnState::Tcp(TcpState::Established) | ConnState::Sctp(SctpState::Established) => {
                Activity::Active
            }
            ConnState::Template(_) => Activity::Persistent,
            _ => Activity::Inactive,
        }
    }
}

impl fmt::Display for ConnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for ConnState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Which counter of its destination a connection entry is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Activity {
    /// ActiveConn: TCP or SCTP in ESTABLISHED.
    Active,
    /// InActConn: every other connection entry, until it expires.
    Inactive,
    /// PersistConn: a persistence template.
    Persistent,
}

impl fmt::Display for Activity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Activity::Active => "active",
            Activity::Inactive => "inactive",
            Activity::Persistent => "persistent",
        })
    }
}

/// Number of TCP states in the table.
pub const TCP_STATES: usize = 11;
/// Number of SCTP states in the table.
pub const SCTP_STATES: usize = 14;

/// The kernel's default TCP timeouts in seconds, indexed by [`TcpState`] value.
pub const DEFAULT_TCP: [u32; TCP_STATES] = [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120];
/// The kernel's default UDP timeout in seconds.
pub const DEFAULT_UDP: u32 = 300;
/// The kernel's SCTP timeouts in seconds, indexed by [`SctpState`] value (61 s is its maximum RTO).
pub const DEFAULT_SCTP: [u32; SCTP_STATES] = [2, 4, 61, 61, 61, 61, 61, 61, 900, 61, 61, 61, 4, 61];

/// The IPVS state timeout tables in force: kernel defaults with the three configurable values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StateTimeoutTable {
    /// TCP timeouts in seconds, indexed by [`TcpState`] value.
    pub tcp: [u32; TCP_STATES],
    /// The UDP timeout in seconds.
    pub udp: u32,
    /// SCTP timeouts in seconds, indexed by [`SctpState`] value.
    pub sctp: [u32; SCTP_STATES],
}

impl Default for StateTimeoutTable {
    fn default() -> Self {
        StateTimeoutTable {
            tcp: DEFAULT_TCP,
            udp: DEFAULT_UDP,
            sctp: DEFAULT_SCTP,
        }
    }
}

impl StateTimeoutTable {
    /// Kernel defaults with the values of `config` (TCP ESTABLISHED, TCP FIN_WAIT, UDP) applied.
    pub fn from_config(config: &Timeouts) -> Self {
        let mut t = StateTimeoutTable::default();
        t.apply(config);
        t
    }

    /// Applies the configurable values that are set (and non-zero).
    pub fn apply(&mut self, config: &Timeouts) {
        if let Some(v) = config.tcp.filter(|&v| v > 0) {
            self.tcp[usize::from(TcpState::Established.value())] = v;
        }
        if let Some(v) = config.tcp_fin.filter(|&v| v > 0) {
            self.tcp[usize::from(TcpState::FinWait.value())] = v;
        }
        if let Some(v) = config.udp.filter(|&v| v > 0) {
            self.udp = v;
        }
    }

    /// Full timeout in seconds of a connection entering `state`; `None` for templates
    /// (their timeout is the service's persistence timeout) and unknown states.
    pub fn for_state(&self, state: &ConnState) -> Option<u32> {
        match state {
            ConnState::Tcp(s) => self.tcp.get(usize::from(s.value())).copied(),
            ConnState::Udp => Some(self.udp),
            ConnState::Sctp(s) => self.sctp.get(usize::from(s.value())).copied(),
            ConnState::Template(_) | ConnState::Other(_) => None,
        }
    }

    /// Every (protocol, state, seconds) of the tables, for display.
    pub fn entries(&self) -> Vec<(Protocol, ConnState, u32)> {
        let mut out = Vec::new();
        for (i, v) in self.tcp.iter().enumerate() {
            let s = TcpState::from(u8::try_from(i).unwrap_or(u8::MAX));
            out.push((Protocol::Tcp, ConnState::Tcp(s), *v));
        }
        out.push((Protocol::Udp, ConnState::Udp, self.udp));
        for (i, v) in self.sctp.iter().enumerate() {
            let s = SctpState::from(u8::try_from(i).unwrap_or(u8::MAX));
            out.push((Protocol::Sctp, ConnState::Sctp(s), *v));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_and_activity() {
        let tw = ConnState::parse(Protocol::Tcp, "TIME_WAIT");
        assert_eq!(tw, ConnState::Tcp(TcpState::TimeWait));
        assert_eq!(tw.activity(), Activity::Inactive);
        assert_eq!(
            ConnState::parse(Protocol::Tcp, "ESTABLISHED").activity(),
            Activity::Active
        );
        assert_eq!(
            ConnState::parse(Protocol::Udp, "UDP").activity(),
            Activity::Inactive
        );
        assert_eq!(
            ConnState::parse(Protocol::Sctp, "ESTABLISHED"),
            ConnState::Sctp(SctpState::Established)
        );
        assert_eq!(
            ConnState::parse(Protocol::Sctp, "S-ACK-SENT"),
            ConnState::Sctp(SctpState::ShutdownAckSent)
        );
        assert_eq!(
            ConnState::parse(Protocol::Tcp, "ASSURED").activity(),
            Activity::Persistent
        );
        assert_eq!(
            ConnState::parse(Protocol::Ip, "NONE"),
            ConnState::Template(TemplateState::None)
        );
        assert_eq!(
            ConnState::parse(Protocol::Tcp, "BUG!"),
            ConnState::Other("BUG!".into())
        );
        assert_eq!(
            ConnState::parse(Protocol::Tcp, "FIN_WAIT").to_string(),
            "FIN_WAIT"
        );
    }

    #[test]
    fn table_defaults_and_config() {
        let t = StateTimeoutTable::default();
        assert_eq!(t.for_state(&ConnState::Tcp(TcpState::TimeWait)), Some(120));
        assert_eq!(
            t.for_state(&ConnState::Tcp(TcpState::Established)),
            Some(900)
        );
        assert_eq!(t.for_state(&ConnState::Tcp(TcpState::Close)), Some(10));
        assert_eq!(t.for_state(&ConnState::Udp), Some(300));
        assert_eq!(
            t.for_state(&ConnState::Sctp(SctpState::Established)),
            Some(900)
        );
        assert_eq!(t.for_state(&ConnState::Sctp(SctpState::Rejected)), Some(4));
        assert_eq!(
            t.for_state(&ConnState::Template(TemplateState::Assured)),
            None
        );
        assert_eq!(t.for_state(&ConnState::Tcp(TcpState::Unknown(11))), None);

        let c = StateTimeoutTable::from_config(&Timeouts {
            tcp: Some(60),
            tcp_fin: Some(5),
            udp: Some(0),
        });
        assert_eq!(
            c.for_state(&ConnState::Tcp(TcpState::Established)),
            Some(60)
        );
        assert_eq!(c.for_state(&ConnState::Tcp(TcpState::FinWait)), Some(5));
        assert_eq!(c.for_state(&ConnState::Tcp(TcpState::TimeWait)), Some(120));
        assert_eq!(c.for_state(&ConnState::Udp), Some(300));
        assert_eq!(c.entries().len(), TCP_STATES + 1 + SCTP_STATES);
    }
}
