//! Timeout policies from Python: `{"established": 600, …}` dicts (the names
//! `TimeoutPolicy.timeouts` uses) turned into the core's per-protocol timeouts.

use ipvs_conntrack::conntrack::timeout::{
    DccpTimeouts, ProtoTimeouts, SctpTimeouts, TcpTimeouts, UdpTimeouts,
};
use ipvs_conntrack::conntrack::tuple::*;
use ipvs_conntrack::conntrack::wire::*;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use ipvs_conntrack::conntrack::Family;

use crate::entry::proto_from_py;
use crate::filter::family_from_py;
use crate::timeouts::short_name;

/// The L4 protocol of a policy: a number, a name, or `"generic"` (255).
pub fn policy_proto(v: &Bound<'_, PyAny>) -> PyResult<u8> {
    if let Ok(s) = v.cast::<PyString>() {
        if s.to_cow()?.eq_ignore_ascii_case("generic") {
            return Ok(255);
        }
    }
    proto_from_py(v)
}

/// The L3 protocol of a policy: AF_INET unless `family=` says otherwise.
pub fn policy_family(v: Option<&Bound<'_, PyAny>>) -> PyResult<u16> {
    match v.filter(|v| !v.is_none()) {
        None => Ok(u16::from(Family::Ipv4.value())),
        Some(v) => Ok(u16::from(family_from_py(v)?.value())),
    }
}

fn names_of(proto: u8) -> &'static [&'static str] {
    match proto {
        IPPROTO_TCP => CTA_TIMEOUT_TCP_NAMES,
        IPPROTO_UDP => CTA_TIMEOUT_UDP_NAMES,
        IPPROTO_UDPLITE => CTA_TIMEOUT_UDPLITE_NAMES,
        IPPROTO_SCTP => CTA_TIMEOUT_SCTP_NAMES,
        IPPROTO_DCCP => CTA_TIMEOUT_DCCP_NAMES,
        IPPROTO_ICMP => CTA_TIMEOUT_ICMP_NAMES,
        IPPROTO_ICMPV6 => CTA_TIMEOUT_ICMPV6_NAMES,
        IPPROTO_GRE => CTA_TIMEOUT_GRE_NAMES,
        _ => CTA_TIMEOUT_GENERIC_NAMES,
    }
}

/// Builds the timeouts of `proto` from `{state name: seconds}`; unknown names are errors.
pub fn proto_timeouts(proto: u8, d: &Bound<'_, PyDict>) -> PyResult<ProtoTimeouts> {
    let names = names_of(proto);
    let short: Vec<String> = names.iter().map(|n| short_name(n)).collect();
    let mut v = vec![None::<u32>; names.len()];
    for (k, val) in d.iter() {
        let k: String = k
            .extract()
            .map_err(|_| PyTypeError::new_err("timeouts keys must be state names (str)"))?;
        let idx = short
            .iter()
            .enumerate()
            .skip(1)
            .find(|(_, s)| s.eq_ignore_ascii_case(&k))
            .map(|(i, _)| i)
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "unknown timeout {k:?} for protocol {proto} (known: {})",
                    short.get(1..).unwrap_or_default().join(", ")
                ))
            })?;
        let secs: u32 = val.extract().map_err(|_| {
            PyValueError::new_err(format!("timeout {k:?} must be seconds (0..2**32)"))
        })?;
        if let Some(slot) = v.get_mut(idx) {
            *slot = Some(secs);
        }
    }
    let g = |i: usize| v.get(i).copied().flatten();
    let udp = || UdpTimeouts {
        unreplied: g(1),
        replied: g(2),
    };
    Ok(match proto {
        IPPROTO_TCP => ProtoTimeouts::Tcp(TcpTimeouts {
            syn_sent: g(1),
            syn_recv: g(2),
            established: g(3),
            fin_wait: g(4),
            close_wait: g(5),
            last_ack: g(6),
            time_wait: g(7),
            close: g(8),
            syn_sent2: g(9),
            retrans: g(10),
            unack: g(11),
        }),
        IPPROTO_UDP => ProtoTimeouts::Udp(udp()),
        IPPROTO_UDPLITE => ProtoTimeouts::UdpLite(udp()),
        IPPROTO_GRE => ProtoTimeouts::Gre(udp()),
        IPPROTO_SCTP => ProtoTimeouts::Sctp(SctpTimeouts {
            closed: g(1),
            cookie_wait: g(2),
            cookie_echoed: g(3),
            established: g(4),
            shutdown_sent: g(5),
            shutdown_recd: g(6),
            shutdown_ack_sent: g(7),
            heartbeat_sent: g(8),
            heartbeat_acked: g(9),
        }),
        IPPROTO_DCCP => ProtoTimeouts::Dccp(DccpTimeouts {
            request: g(1),
            respond: g(2),
            partopen: g(3),
            open: g(4),
            closereq: g(5),
            closing: g(6),
            timewait: g(7),
        }),
        IPPROTO_ICMP => ProtoTimeouts::Icmp(g(1)),
        IPPROTO_ICMPV6 => ProtoTimeouts::Icmpv6(g(1)),
        _ => ProtoTimeouts::Generic(g(1)),
    })
}
