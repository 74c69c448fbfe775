//! State timeouts in C form: the timeouts in force for every protocol state, and one
//! cttimeout policy as the kernel sends it.

use std::ffi::c_char;

use ipvs_conntrack::conntrack::timeout::{DccpTimeouts, SctpTimeouts, TcpTimeouts, UdpTimeouts};
use ipvs_conntrack::conntrack::{StateTimeouts, TimeoutPolicy, TimeoutSource};

use crate::cstr;

/// A timeout value that is unknown (the kernel or the sysctls did not give it).
pub const IPVSCT_TIMEOUT_UNSET: u32 = 0xFFFFFFFF;
/// `ipvsct_ct_timeouts.source`: read over cttimeout (IPCTNL_MSG_TIMEOUT_DEFAULT_GET).
pub const IPVSCT_TIMEOUT_SOURCE_CTTIMEOUT: u32 = 1;
/// `ipvsct_ct_timeouts.source`: read from the `net.netfilter.nf_conntrack_*timeout*` sysctls.
pub const IPVSCT_TIMEOUT_SOURCE_SYSCTL: u32 = 2;
/// Number of values in `ipvsct_ct_timeout_policy.values`.
pub const IPVSCT_TIMEOUT_VALUES_LEN: usize = 16;
/// Size of `ipvsct_ct_timeout_policy.name` (bytes, including the NUL; CTNL_TIMEOUT_NAME_MAX).
pub const IPVSCT_TIMEOUT_NAME_LEN: usize = 32;

fn v(x: Option<u32>) -> u32 {
    x.unwrap_or(IPVSCT_TIMEOUT_UNSET)
}

/// TCP state timeouts in seconds (IPVSCT_TIMEOUT_UNSET when unknown).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types, missing_docs)]
pub struct ipvsct_tcp_timeouts {
    pub syn_sent: u32,
    pub syn_recv: u32,
    pub established: u32,
    pub fin_wait: u32,
    pub close_wait: u32,
    pub last_ack: u32,
    pub time_wait: u32,
    pub close: u32,
    pub syn_sent2: u32,
    pub retrans: u32,
    pub unack: u32,
}

/// UDP, UDP-Lite and GRE timeouts in seconds (IPVSCT_TIMEOUT_UNSET when unknown).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_udp_timeouts {
    /// Before a reply, and until the flow is a stream.
    pub unreplied: u32,
    /// Once the flow is a stream (ASSURED).
    pub replied: u32,
}

/// SCTP state timeouts in seconds (IPVSCT_TIMEOUT_UNSET when unknown).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types, missing_docs)]
pub struct ipvsct_sctp_timeouts {
    pub closed: u32,
    pub cookie_wait: u32,
    pub cookie_echoed: u32,
    pub established: u32,
    pub shutdown_sent: u32,
    pub shutdown_recd: u32,
    pub shutdown_ack_sent: u32,
    pub heartbeat_sent: u32,
    pub heartbeat_acked: u32,
}

/// DCCP state timeouts in seconds (IPVSCT_TIMEOUT_UNSET when unknown).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types, missing_docs)]
pub struct ipvsct_dccp_timeouts {
    pub request: u32,
    pub respond: u32,
    pub partopen: u32,
    pub open: u32,
    pub closereq: u32,
    pub closing: u32,
    pub timewait: u32,
}

/// The state timeouts in force in a network namespace, for every protocol, in seconds.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_ct_timeouts {
    /// Where the values came from (`IPVSCT_TIMEOUT_SOURCE_*`).
    pub source: u32,
    /// TCP.
    pub tcp: ipvsct_tcp_timeouts,
    /// UDP.
    pub udp: ipvsct_udp_timeouts,
    /// UDP-Lite.
    pub udplite: ipvsct_udp_timeouts,
    /// SCTP.
    pub sctp: ipvsct_sctp_timeouts,
    /// DCCP.
    pub dccp: ipvsct_dccp_timeouts,
    /// ICMP.
    pub icmp: u32,
    /// ICMPv6.
    pub icmpv6: u32,
    /// GRE.
    pub gre: ipvsct_udp_timeouts,
    /// Other protocols (the generic timeout).
    pub generic: u32,
}

impl From<&TcpTimeouts> for ipvsct_tcp_timeouts {
    fn from(t: &TcpTimeouts) -> Self {
        ipvsct_tcp_timeouts {
            syn_sent: v(t.syn_sent),
            syn_recv: v(t.syn_recv),
            established: v(t.established),
            fin_wait: v(t.fin_wait),
            close_wait: v(t.close_wait),
            last_ack: v(t.last_ack),
            time_wait: v(t.time_wait),
            close: v(t.close),
            syn_sent2: v(t.syn_sent2),
            retrans: v(t.retrans),
            unack: v(t.unack),
        }
    }
}

impl From<&UdpTimeouts> for ipvsct_udp_timeouts {
    fn from(t: &UdpTimeouts) -> Self {
        ipvsct_udp_timeouts {
            unreplied: v(t.unreplied),
            replied: v(t.replied),
        }
    }
}

impl From<&SctpTimeouts> for ipvsct_sctp_timeouts {
    fn from(t: &SctpTimeouts) -> Self {
        ipvsct_sctp_timeouts {
            closed: v(t.closed),
            cookie_wait: v(t.cookie_wait),
            cookie_echoed: v(t.cookie_echoed),
            established: v(t.established),
            shutdown_sent: v(t.shutdown_sent),
            shutdown_recd: v(t.shutdown_recd),
            shutdown_ack_sent: v(t.shutdown_ack_sent),
            heartbeat_sent: v(t.heartbeat_sent),
            heartbeat_acked: v(t.heartbeat_acked),
        }
    }
}

impl From<&DccpTimeouts> for ipvsct_dccp_timeouts {
    fn from(t: &DccpTimeouts) -> Self {
        ipvsct_dccp_timeouts {
            request: v(t.request),
            respond: v(t.respond),
            partopen: v(t.partopen),
            open: v(t.open),
            closereq: v(t.closereq),
            closing: v(t.closing),
            timewait: v(t.timewait),
        }
    }
}

impl From<&StateTimeouts> for ipvsct_ct_timeouts {
    fn from(t: &StateTimeouts) -> Self {
        ipvsct_ct_timeouts {
            source: match t.source {
                TimeoutSource::Cttimeout => IPVSCT_TIMEOUT_SOURCE_CTTIMEOUT,
                TimeoutSource::Sysctl => IPVSCT_TIMEOUT_SOURCE_SYSCTL,
            },
            tcp: (&t.tcp).into(),
            udp: (&t.udp).into(),
            udplite: (&t.udplite).into(),
            sctp: (&t.sctp).into(),
            dccp: (&t.dccp).into(),
            icmp: v(t.icmp),
            icmpv6: v(t.icmpv6),
            gre: (&t.gre).into(),
            generic: v(t.generic),
        }
    }
}

/// `ipvsct_ct_timeout_policy.fields`: `name` is set (a named policy).
pub const IPVSCT_TIMEOUT_POLICY_HAS_NAME: u32 = 0x1;
/// `ipvsct_ct_timeout_policy.fields`: `use_count` is set.
pub const IPVSCT_TIMEOUT_POLICY_HAS_USE: u32 = 0x2;
/// `ipvsct_ct_timeout_policy.fields`: the message carried attributes this struct does not hold.
pub const IPVSCT_TIMEOUT_POLICY_HAS_MORE: u32 = 0x40000000;
/// `ipvsct_ct_timeout_policy.fields`: the name did not fit and was cut.
pub const IPVSCT_TIMEOUT_POLICY_TRUNCATED: u32 = 0x80000000;

/// One cttimeout policy (a protocol's default policy, or a named one).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_ct_timeout_policy {
    /// Timeouts in seconds indexed by the kernel's attribute number for the protocol
    /// (`values[7]` is CTA_TIMEOUT_TCP_TIME_WAIT for TCP); IPVSCT_TIMEOUT_UNSET if absent.
    pub values: [u32; IPVSCT_TIMEOUT_VALUES_LEN],
    /// Reference count of a named policy.
    pub use_count: u32,
    /// `IPVSCT_TIMEOUT_POLICY_*` bits.
    pub fields: u32,
    /// L3 protocol (AF_INET 2, AF_INET6 10).
    pub l3proto: u16,
    /// L4 protocol (IPPROTO_*).
    pub l4proto: u8,
    /// Zero.
    pub reserved: u8,
    /// Policy name, NUL-terminated, "" for default policies.
    pub name: [c_char; IPVSCT_TIMEOUT_NAME_LEN],
}

impl From<&TimeoutPolicy> for ipvsct_ct_timeout_policy {
    fn from(p: &TimeoutPolicy) -> Self {
        let mut values = [IPVSCT_TIMEOUT_UNSET; IPVSCT_TIMEOUT_VALUES_LEN];
        let mut fields = 0;
        for (k, x) in p.timeouts.values() {
            match values.get_mut(usize::from(k)) {
                Some(slot) => *slot = x,
                None => fields |= IPVSCT_TIMEOUT_POLICY_HAS_MORE,
            }
        }
        let (name, cut) = cstr::fixed(p.name.as_deref().unwrap_or(""));
        if p.name.is_some() {
            fields |= IPVSCT_TIMEOUT_POLICY_HAS_NAME;
        }
        if p.use_count.is_some() {
            fields |= IPVSCT_TIMEOUT_POLICY_HAS_USE;
        }
        if !p.unknown.is_empty() {
            fields |= IPVSCT_TIMEOUT_POLICY_HAS_MORE;
        }
        if cut {
            fields |= IPVSCT_TIMEOUT_POLICY_TRUNCATED;
        }
        ipvsct_ct_timeout_policy {
            values,
            use_count: p.use_count.unwrap_or(0),
            fields,
            l3proto: p.l3proto,
            l4proto: p.l4proto,
            reserved: 0,
            name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipvs_conntrack::conntrack::ProtoTimeouts;

    #[test]
    fn unknown_values_are_unset_and_policy_values_are_indexed_by_attribute() {
        let mut t = StateTimeouts::empty(TimeoutSource::Sysctl);
        t.tcp.time_wait = Some(120);
        t.udp.unreplied = Some(30);
        let c = ipvsct_ct_timeouts::from(&t);
        assert_eq!(c.source, IPVSCT_TIMEOUT_SOURCE_SYSCTL);
        assert_eq!(c.tcp.time_wait, 120);
        assert_eq!(c.tcp.established, IPVSCT_TIMEOUT_UNSET);
        assert_eq!(c.udp.unreplied, 30);
        assert_eq!(c.generic, IPVSCT_TIMEOUT_UNSET);
        let p = TimeoutPolicy {
            name: Some("web".into()),
            l3proto: 2,
            l4proto: 6,
            timeouts: ProtoTimeouts::Tcp(TcpTimeouts {
                time_wait: Some(9),
                ..TcpTimeouts::default()
            }),
            use_count: Some(1),
            unknown: vec![],
        };
        let c = ipvsct_ct_timeout_policy::from(&p);
        assert_eq!(c.values[7], 9);
        assert_eq!(c.values[3], IPVSCT_TIMEOUT_UNSET);
        assert_eq!(
            c.fields,
            IPVSCT_TIMEOUT_POLICY_HAS_NAME | IPVSCT_TIMEOUT_POLICY_HAS_USE
        );
        assert_eq!(
            c.name[..4],
            [b'w' as c_char, b'e' as c_char, b'b' as c_char, 0]
        );
    }
}
