//! Virtual services: how one is identified ([`ServiceKey`]), what the kernel reports
//! ([`Service`]) and what is sent to create or change one ([`ServiceSpec`]).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

use crate::error::{DecodeError, DecodeErrorKind, Error, PathElem, Result};
use crate::ipvs::addr::{decode_addr, encode_addr, AddressFamily, Protocol};
use crate::ipvs::stats::{prefer64, Stats, StatsWidth};
use crate::ipvs::wire::*;
use crate::netlink::attr::{Attr, RawAttr, Seen};
use crate::netlink::emit::MessageBuilder;

bitflags::bitflags! {
    /// Virtual service flags (`IP_VS_SVC_F_*`). Unknown bits are kept.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct ServiceFlags: u32 {
        /// Persistent service: a client sticks to one real server.
        const PERSISTENT = IP_VS_SVC_F_PERSISTENT;
        /// The service is in the kernel's hash table (always set on listed services).
        const HASHED = IP_VS_SVC_F_HASHED;
        /// One-packet scheduling (UDP): every datagram is scheduled on its own.
        const ONEPACKET = IP_VS_SVC_F_ONEPACKET;
        /// Scheduler flag 1 (sh/mh: fallback).
        const SCHED1 = IP_VS_SVC_F_SCHED1;
        /// Scheduler flag 2 (sh/mh: hash the port too).
        const SCHED2 = IP_VS_SVC_F_SCHED2;
        /// Scheduler flag 3.
        const SCHED3 = IP_VS_SVC_F_SCHED3;
        const _ = !0;
    }
}

/// Kernel names (without `IP_VS_SVC_F_`) of the service flag bits, by bit index.
pub const SERVICE_FLAG_NAMES: [&str; 6] = [
    "PERSISTENT",
    "HASHED",
    "ONEPACKET",
    "SCHED1",
    "SCHED2",
    "SCHED3",
];

impl ServiceFlags {
    /// Names of the set bits (unknown bits as `BIT<n>`).
    pub fn names(&self) -> Vec<String> {
        let bits = self.bits();
        (0..32u32)
            .filter(|b| bits & (1 << b) != 0)
            .map(|b| match SERVICE_FLAG_NAMES.get(b as usize) {
                Some(n) => (*n).to_owned(),
                None => format!("BIT{b}"),
            })
            .collect()
    }

    /// Parses one flag name (case-insensitive, with or without `IP_VS_SVC_F_`).
    pub fn from_flag_name(name: &str) -> Option<ServiceFlags> {
        let up = name.to_ascii_uppercase();
        let n = up.strip_prefix("IP_VS_SVC_F_").unwrap_or(&up);
        let n = match n {
            "OPS" => "ONEPACKET",
            other => other,
        };
        SERVICE_FLAG_NAMES
            .iter()
            .position(|s| *s == n)
            .map(|i| ServiceFlags::from_bits_retain(1 << i))
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for ServiceFlags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_seq(self.names())
    }
}

/// The persistence granularity of a service (IPVS_SVC_ATTR_NETMASK).
///
/// The kernel keeps one 32-bit field: a network mask for IPv4 services and a
/// prefix length (host-endian) for IPv6 services.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Netmask {
    /// An IPv4 network mask.
    Mask(Ipv4Addr),
    /// An IPv6 prefix length.
    PrefixLen(u32),
}

impl Netmask {
    /// The default of ipvsadm: a host mask (`255.255.255.255` or `/128`).
    pub fn host(af: AddressFamily) -> Netmask {
        match af {
            AddressFamily::Inet6 => Netmask::PrefixLen(128),
            _ => Netmask::Mask(Ipv4Addr::BROADCAST),
        }
    }

    /// Interprets the 4 wire bytes for a service of family `af`.
    pub fn from_wire(bytes: [u8; 4], af: AddressFamily) -> Netmask {
        match af {
            AddressFamily::Inet6 => Netmask::PrefixLen(u32::from_ne_bytes(bytes)),
            _ => Netmask::Mask(Ipv4Addr::from(bytes)),
        }
    }

    /// The 4 wire bytes.
    pub fn to_wire(&self) -> [u8; 4] {
        match self {
            Netmask::Mask(m) => m.octets(),
            Netmask::PrefixLen(n) => n.to_ne_bytes(),
        }
    }

    /// The prefix length (for a mask: its number of leading ones, if the mask is contiguous).
    pub fn prefix_len(&self) -> Option<u32> {
        match self {
            Netmask::PrefixLen(n) => Some(*n),
            Netmask::Mask(m) => {
                let v = u32::from(*m);
                let ones = v.leading_ones();
                (v.checked_shl(ones).unwrap_or(0) == 0).then_some(ones)
            }
        }
    }
}

impl fmt::Display for Netmask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Netmask::Mask(m) => write!(f, "{m}"),
            Netmask::PrefixLen(n) => write!(f, "{n}"),
        }
    }
}

/// What a virtual service matches: protocol, address and port, or a firewall mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum ServiceTarget {
    /// A protocol/address/port service.
    Inet {
        /// TCP, UDP or SCTP.
        protocol: Protocol,
        /// The virtual address.
        addr: IpAddr,
        /// The virtual port (0 = every port, persistent services only).
        port: u16,
    },
    /// A firewall-mark service.
    Fwmark(u32),
}

/// Identifies one virtual service (the attributes the kernel looks a service up by).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ServiceKey {
    /// Address family of the service.
    pub af: AddressFamily,
    /// What the service matches.
    pub target: ServiceTarget,
}

impl ServiceKey {
    /// A protocol/address/port service.
    pub fn inet(protocol: Protocol, addr: SocketAddr) -> ServiceKey {
        ServiceKey {
            af: AddressFamily::of(&addr.ip()),
            target: ServiceTarget::Inet {
                protocol,
                addr: addr.ip(),
                port: addr.port(),
            },
        }
    }

    /// A TCP service.
    pub fn tcp(addr: SocketAddr) -> ServiceKey {
        Self::inet(Protocol::Tcp, addr)
    }

    /// A UDP service.
    pub fn udp(addr: SocketAddr) -> ServiceKey {
        Self::inet(Protocol::Udp, addr)
    }

    /// An SCTP service.
    pub fn sctp(addr: SocketAddr) -> ServiceKey {
        Self::inet(Protocol::Sctp, addr)
    }

    /// A firewall-mark service of family `af`.
    pub fn fwmark(af: AddressFamily, mark: u32) -> ServiceKey {
        ServiceKey {
            af,
            target: ServiceTarget::Fwmark(mark),
        }
    }

    /// The protocol, for protocol/address/port services.
    pub fn protocol(&self) -> Option<Protocol> {
        match self.target {
            ServiceTarget::Inet { protocol, .. } => Some(protocol),
            ServiceTarget::Fwmark(_) => None,
        }
    }

    /// The virtual address and port, for protocol/address/port services.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self.target {
            ServiceTarget::Inet { addr, port, .. } => Some(SocketAddr::new(addr, port)),
            ServiceTarget::Fwmark(_) => None,
        }
    }

    /// The firewall mark, for firewall-mark services.
    pub fn fwmark_value(&self) -> Option<u32> {
        match self.target {
            ServiceTarget::Fwmark(m) => Some(m),
            ServiceTarget::Inet { .. } => None,
        }
    }

    /// Checks what the kernel would reject or misread, before anything is sent.
    pub fn validate(&self) -> Result<()> {
        if !matches!(self.af, AddressFamily::Inet | AddressFamily::Inet6) {
            return invalid(format!(
                "service address family {} is not inet or inet6",
                self.af
            ));
        }
        match self.target {
            ServiceTarget::Inet { protocol, addr, .. } => {
                if !protocol.is_service_protocol() {
                    return invalid(format!(
                        "protocol {protocol} cannot have a virtual service (TCP, UDP or SCTP)"
                    ));
                }
                if AddressFamily::of(&addr) != self.af {
                    return invalid(format!(
                        "address {addr} does not belong to family {}",
                        self.af
                    ));
                }
            }
            ServiceTarget::Fwmark(0) => return invalid("firewall mark 0 is not a mark".into()),
            ServiceTarget::Fwmark(_) => {}
        }
        Ok(())
    }

    /// Appends the identifying attributes (inside an open service nest).
    pub fn emit_attrs(&self, b: &mut MessageBuilder) {
        b.put_ne16(IPVS_SVC_ATTR_AF, self.af.value());
        match self.target {
            ServiceTarget::Inet {
                protocol,
                addr,
                port,
            } => {
                b.put_ne16(IPVS_SVC_ATTR_PROTOCOL, protocol.value())
                    .put_bytes(IPVS_SVC_ATTR_ADDR, &encode_addr(&addr))
                    .put_be16(IPVS_SVC_ATTR_PORT, port);
            }
            ServiceTarget::Fwmark(m) => {
                b.put_ne32(IPVS_SVC_ATTR_FWMARK, m);
            }
        }
    }

    /// Appends an IPVS_CMD_ATTR_SERVICE nest holding only the key.
    pub fn emit_nest(&self, b: &mut MessageBuilder) {
        let n = b.begin_nest(IPVS_CMD_ATTR_SERVICE);
        self.emit_attrs(b);
        b.end_nest(n);
    }

    /// Decodes the key from a service nest (AF plus FWMARK, or PROTOCOL, ADDR and PORT).
    pub fn decode(nest: &Attr<'_>) -> Result<ServiceKey, DecodeError> {
        let mut p = KeyParts::default();
        let mut seen = Seen::default();
        for attr in nest.nested(IPVS_SVC_ATTR_NAMES) {
            let attr = attr?;
            seen.check(&attr)?;
            p.take(&attr)?;
        }
        p.finish(nest)
    }
}

/// The identifying attributes seen so far in a service nest.
#[derive(Default)]
struct KeyParts<'a> {
    af: Option<u16>,
    protocol: Option<u16>,
    addr: Option<Attr<'a>>,
    port: Option<u16>,
    fwmark: Option<u32>,
}

impl<'a> KeyParts<'a> {
    /// Takes `attr` if it is an identifying attribute; returns whether it was.
    fn take(&mut self, attr: &Attr<'a>) -> Result<bool, DecodeError> {
        match attr.kind() {
            IPVS_SVC_ATTR_AF => self.af = Some(attr.ne16()?),
            IPVS_SVC_ATTR_PROTOCOL => self.protocol = Some(attr.ne16()?),
            IPVS_SVC_ATTR_ADDR => self.addr = Some(*attr),
            IPVS_SVC_ATTR_PORT => self.port = Some(attr.be16()?),
            IPVS_SVC_ATTR_FWMARK => self.fwmark = Some(attr.ne32()?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(self, nest: &Attr<'_>) -> Result<ServiceKey, DecodeError> {
        let af = AddressFamily::from(
            self.af
                .ok_or_else(|| missing(nest, IPVS_SVC_ATTR_NAMES, IPVS_SVC_ATTR_AF))?,
        );
        // The kernel sends FWMARK only for firewall-mark services (a mark is never 0).
        if let Some(m) = self.fwmark.filter(|&m| m != 0) {
            return Ok(ServiceKey::fwmark(af, m));
        }
        let protocol = self
            .protocol
            .ok_or_else(|| missing(nest, IPVS_SVC_ATTR_NAMES, IPVS_SVC_ATTR_PROTOCOL))?;
        let addr = self
            .addr
            .ok_or_else(|| missing(nest, IPVS_SVC_ATTR_NAMES, IPVS_SVC_ATTR_ADDR))?;
        let port = self
            .port
            .ok_or_else(|| missing(nest, IPVS_SVC_ATTR_NAMES, IPVS_SVC_ATTR_PORT))?;
        Ok(ServiceKey {
            af,
            target: ServiceTarget::Inet {
                protocol: Protocol::from(protocol),
                addr: decode_addr(&addr, af)?,
                port,
            },
        })
    }
}

/// A `Missing` error for attribute `kind` of `nest`.
pub(crate) fn missing(nest: &Attr<'_>, names: &'static [&'static str], kind: u16) -> DecodeError {
    DecodeError::new(
        DecodeErrorKind::Missing,
        nest.path().push(PathElem::new(names, kind)),
        nest.offset(),
    )
}

pub(crate) fn invalid<T>(msg: String) -> Result<T> {
    Err(Error::InvalidRequest(msg))
}

impl fmt::Display for ServiceKey {
    /// `TCP 10.0.0.1:80`, `UDP [2001:db8::1]:53`, `FWM 7` (`FWM 7 inet6` for IPv6 marks).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.target {
            ServiceTarget::Inet {
                protocol,
                addr,
                port,
            } => write!(f, "{protocol} {}", SocketAddr::new(addr, port)),
            ServiceTarget::Fwmark(m) => {
                write!(f, "FWM {m}")?;
                if self.af != AddressFamily::Inet {
                    write!(f, " {}", self.af)?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for ServiceKey {
    type Err = Error;

    /// Parses `tcp:10.0.0.1:80`, `udp:[2001:db8::1]:53`, `sctp:...`, `fwmark:7` or `fwmark6:7`.
    fn from_str(s: &str) -> Result<ServiceKey> {
        let (kind, rest) = s.split_once(':').ok_or_else(|| {
            Error::InvalidRequest(format!(
                "service {s:?}: expected tcp|udp|sctp:ADDR:PORT or fwmark[6]:MARK"
            ))
        })?;
        let kind = kind.to_ascii_lowercase();
        if kind == "fwmark" || kind == "fwmark6" || kind == "fwm" || kind == "fwm6" {
            let mark = parse_mark(rest)
                .ok_or_else(|| Error::InvalidRequest(format!("bad firewall mark {rest:?}")))?;
            let af = if kind.ends_with('6') {
                AddressFamily::Inet6
            } else {
                AddressFamily::Inet
            };
            return Ok(ServiceKey::fwmark(af, mark));
        }
        let protocol = Protocol::from_name(&kind)
            .filter(Protocol::is_service_protocol)
            .ok_or_else(|| Error::InvalidRequest(format!("unknown service protocol {kind:?}")))?;
        let addr: SocketAddr = rest
            .parse()
            .map_err(|_| Error::InvalidRequest(format!("bad address:port {rest:?}")))?;
        Ok(ServiceKey::inet(protocol, addr))
    }
}

fn parse_mark(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// A virtual service as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Service {
    /// What identifies the service.
    pub key: ServiceKey,
    /// Scheduler name (`rr`, `wlc`, ...; `none` when it has none).
    pub scheduler: String,
    /// Persistence engine name (`sip`), if any.
    pub pe_name: Option<String>,
    /// Service flags.
    pub flags: ServiceFlags,
    /// The mask sent with the flags (the kernel sends all ones).
    pub flags_mask: u32,
    /// Persistence timeout in seconds.
    pub timeout: u32,
    /// Persistence granularity.
    pub netmask: Netmask,
    /// Statistics from the 32-bit nest (IPVS_SVC_ATTR_STATS).
    pub stats: Option<Stats>,
    /// Statistics from the 64-bit nest (IPVS_SVC_ATTR_STATS64).
    pub stats64: Option<Stats>,
    /// Attributes of the nest this library does not know, in order.
    pub unknown: Vec<RawAttr>,
}

impl Service {
    /// Decodes an IPVS_CMD_ATTR_SERVICE nest; the scheduler, flags, timeout and netmask must be present.
    pub fn decode(nest: &Attr<'_>) -> Result<Service, DecodeError> {
        let mut key = KeyParts::default();
        let mut seen = Seen::default();
        let mut scheduler = None;
        let mut pe_name = None;
        let mut flags = None;
        let mut timeout = None;
        let mut netmask = None;
        let mut stats = None;
        let mut stats64 = None;
        let mut unknown = Vec::new();
        for attr in nest.nested(IPVS_SVC_ATTR_NAMES) {
            let attr = attr?;
            seen.check(&attr)?;
            if key.take(&attr)? {
                continue;
            }
            match attr.kind() {
                IPVS_SVC_ATTR_SCHED_NAME => scheduler = Some(attr.str()?.to_owned()),
                IPVS_SVC_ATTR_PE_NAME => pe_name = Some(attr.str()?.to_owned()),
                IPVS_SVC_ATTR_FLAGS => {
                    let v = attr.value();
                    let b: [u8; 8] = v.try_into().map_err(|_| {
                        attr.error(DecodeErrorKind::WrongSize {
                            expected: 8,
                            actual: v.len(),
                        })
                    })?;
                    flags = Some((
                        u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
                        u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
                    ));
                }
                IPVS_SVC_ATTR_TIMEOUT => timeout = Some(attr.ne32()?),
                IPVS_SVC_ATTR_NETMASK => netmask = Some(attr.ne32()?.to_ne_bytes()),
                IPVS_SVC_ATTR_STATS => stats = Some(Stats::decode(&attr, StatsWidth::Bits32)?),
                IPVS_SVC_ATTR_STATS64 => stats64 = Some(Stats::decode(&attr, StatsWidth::Bits64)?),
                _ => unknown.push(attr.to_raw()),
            }
        }
        let key = key.finish(nest)?;
        let need = |kind| missing(nest, IPVS_SVC_ATTR_NAMES, kind);
        let (flags, flags_mask) = flags.ok_or_else(|| need(IPVS_SVC_ATTR_FLAGS))?;
        Ok(Service {
            key,
            scheduler: scheduler.ok_or_else(|| need(IPVS_SVC_ATTR_SCHED_NAME))?,
            pe_name,
            flags: ServiceFlags::from_bits_retain(flags),
            flags_mask,
            timeout: timeout.ok_or_else(|| need(IPVS_SVC_ATTR_TIMEOUT))?,
            netmask: Netmask::from_wire(
                netmask.ok_or_else(|| need(IPVS_SVC_ATTR_NETMASK))?,
                key.af,
            ),
            stats,
            stats64,
            unknown,
        })
    }

    /// The best statistics available: the 64-bit ones, else the 32-bit ones.
    pub fn best_stats(&self) -> Option<&Stats> {
        prefer64(&self.stats64, &self.stats)
    }

    /// True if the service is persistent.
    pub fn is_persistent(&self) -> bool {
        self.flags.contains(ServiceFlags::PERSISTENT)
    }

    /// The settings of this service as a spec (to edit it).
    pub fn to_spec(&self) -> ServiceSpec {
        ServiceSpec {
            key: self.key,
            scheduler: self.scheduler.clone(),
            flags: self.flags - ServiceFlags::HASHED,
            flags_mask: !0,
            timeout: self.timeout,
            netmask: Some(self.netmask),
            pe_name: self.pe_name.clone(),
        }
    }
}

/// What to send to add or edit a virtual service. Checked by [`ServiceSpec::validate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSpec {
    /// The service.
    pub key: ServiceKey,
    /// Scheduler name (`rr`, `wrr`, `lc`, `wlc`, `lblc`, `lblcr`, `dh`, `sh`, `sed`, `nq`, `fo`, `ovf`, `mh`, `twos`).
    pub scheduler: String,
    /// Flags to set (within `flags_mask`).
    pub flags: ServiceFlags,
    /// Which flag bits to change (all by default).
    pub flags_mask: u32,
    /// Persistence timeout in seconds (needs [`ServiceFlags::PERSISTENT`]).
    pub timeout: u32,
    /// Persistence granularity; `None` for a host mask.
    pub netmask: Option<Netmask>,
    /// Persistence engine (`sip`).
    pub pe_name: Option<String>,
}

impl ServiceSpec {
    /// A non-persistent service with scheduler `scheduler`.
    pub fn new(key: ServiceKey, scheduler: impl Into<String>) -> ServiceSpec {
        ServiceSpec {
            key,
            scheduler: scheduler.into(),
            flags: ServiceFlags::empty(),
            flags_mask: !0,
            timeout: 0,
            netmask: None,
            pe_name: None,
        }
    }

    /// Makes the service persistent for `timeout` seconds.
    pub fn persistent(mut self, timeout: u32) -> Self {
        self.flags |= ServiceFlags::PERSISTENT;
        self.timeout = timeout;
        self
    }

    /// Adds flags.
    pub fn with_flags(mut self, flags: ServiceFlags) -> Self {
        self.flags |= flags;
        self
    }

    /// Sets the persistence granularity.
    pub fn with_netmask(mut self, netmask: Netmask) -> Self {
        self.netmask = Some(netmask);
        self
    }

    /// Sets the persistence engine.
    pub fn with_pe(mut self, name: impl Into<String>) -> Self {
        self.pe_name = Some(name.into());
        self
    }

    /// Checks the combinations the kernel or ipvsadm reject, before anything is sent.
    pub fn validate(&self) -> Result<()> {
        self.key.validate()?;
        check_name("scheduler", &self.scheduler, IP_VS_SCHEDNAME_MAXLEN)?;
        if let Some(pe) = &self.pe_name {
            check_name("persistence engine", pe, IP_VS_PENAME_MAXLEN)?;
            if !self.flags.contains(ServiceFlags::PERSISTENT) {
                return invalid("a persistence engine needs a persistent service".into());
            }
        }
        let persistent = self.flags.contains(ServiceFlags::PERSISTENT);
        if persistent && self.timeout == 0 {
            return invalid("a persistent service needs a timeout above 0 seconds".into());
        }
        if let ServiceTarget::Inet { protocol, port, .. } = self.key.target {
            if port == 0 && !persistent {
                return invalid(
                    "port 0 (all ports) is only allowed for persistent services".into(),
                );
            }
            if self.flags.contains(ServiceFlags::ONEPACKET) && protocol != Protocol::Udp {
                return invalid("one-packet scheduling is only for UDP services".into());
            }
        }
        match (self.key.af, self.netmask) {
            (AddressFamily::Inet, Some(Netmask::PrefixLen(_))) => {
                return invalid("an IPv4 service takes a netmask, not a prefix length".into())
            }
            (AddressFamily::Inet6, Some(Netmask::Mask(_))) => {
                return invalid("an IPv6 service takes a prefix length, not a netmask".into())
            }
            (AddressFamily::Inet6, Some(Netmask::PrefixLen(n))) if !(1..=128).contains(&n) => {
                return invalid(format!("IPv6 prefix length {n} is not within 1..=128"))
            }
            (AddressFamily::Inet, Some(m @ Netmask::Mask(_))) if m.prefix_len().is_none() => {
                return invalid(format!("netmask {m} is not contiguous"))
            }
            _ => {}
        }
        Ok(())
    }

    /// Appends the full IPVS_CMD_ATTR_SERVICE nest.
    pub fn emit_nest(&self, b: &mut MessageBuilder) {
        let n = b.begin_nest(IPVS_CMD_ATTR_SERVICE);
        self.key.emit_attrs(b);
        b.put_str(IPVS_SVC_ATTR_SCHED_NAME, &self.scheduler);
        if let Some(pe) = &self.pe_name {
            b.put_str(IPVS_SVC_ATTR_PE_NAME, pe);
        }
        let mut fl = [0u8; 8];
        fl[..4].copy_from_slice(&self.flags.bits().to_ne_bytes());
        fl[4..].copy_from_slice(&self.flags_mask.to_ne_bytes());
        b.put_bytes(IPVS_SVC_ATTR_FLAGS, &fl)
            .put_ne32(IPVS_SVC_ATTR_TIMEOUT, self.timeout)
            .put_bytes(
                IPVS_SVC_ATTR_NETMASK,
                &self
                    .netmask
                    .unwrap_or_else(|| Netmask::host(self.key.af))
                    .to_wire(),
            );
        b.end_nest(n);
    }
}

/// Checks a kernel name field: non-empty, no NUL, shorter than `maxlen` bytes.
pub(crate) fn check_name(what: &str, name: &str, maxlen: usize) -> Result<()> {
    if name.is_empty() || name.len() >= maxlen || name.contains('\0') {
        return invalid(format!(
            "{what} name {name:?} must be 1 to {} bytes without NUL",
            maxlen - 1
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AttrPath;
    use crate::netlink::attr::Attrs;

    fn first_attr(msg: &[u8]) -> Attr<'_> {
        Attrs::new(&msg[16..], 16, AttrPath::ROOT, IPVS_CMD_ATTR_NAMES)
            .next()
            .unwrap()
            .unwrap()
    }

    #[test]
    fn key_parse_and_display() {
        let k: ServiceKey = "tcp:10.0.0.1:80".parse().unwrap();
        assert_eq!(k, ServiceKey::tcp("10.0.0.1:80".parse().unwrap()));
        assert_eq!(k.to_string(), "TCP 10.0.0.1:80");
        let k: ServiceKey = "udp:[2001:db8::1]:53".parse().unwrap();
        assert_eq!(k.af, AddressFamily::Inet6);
        assert_eq!(k.to_string(), "UDP [2001:db8::1]:53");
        let k: ServiceKey = "fwmark6:0x10".parse().unwrap();
        assert_eq!(k, ServiceKey::fwmark(AddressFamily::Inet6, 16));
        assert_eq!(k.to_string(), "FWM 16 inet6");
        assert!("icmp:1.2.3.4:0".parse::<ServiceKey>().is_err());
        assert!("tcp:1.2.3.4".parse::<ServiceKey>().is_err());
        assert!("fwmark:x".parse::<ServiceKey>().is_err());
    }

    #[test]
    fn spec_round_trips_through_decode() {
        let spec = ServiceSpec::new(ServiceKey::sctp("[2001:db8::5]:9".parse().unwrap()), "mh")
            .persistent(600)
            .with_flags(ServiceFlags::SCHED1)
            .with_netmask(Netmask::PrefixLen(64));
        spec.validate().unwrap();
        let mut b = MessageBuilder::new(0x30, 0);
        spec.emit_nest(&mut b);
        let msg = b.finish();
        let svc = Service::decode(&first_attr(&msg)).unwrap();
        assert_eq!(svc.key, spec.key);
        assert_eq!(svc.scheduler, "mh");
        assert_eq!(svc.flags, ServiceFlags::PERSISTENT | ServiceFlags::SCHED1);
        assert_eq!(svc.flags_mask, u32::MAX);
        assert_eq!(svc.timeout, 600);
        assert_eq!(svc.netmask, Netmask::PrefixLen(64));
        assert_eq!(svc.stats, None);
        assert_eq!(svc.to_spec(), spec);
    }

    #[test]
    fn fwmark_key_round_trip_and_missing_port() {
        let mut b = MessageBuilder::new(0x30, 0);
        ServiceKey::fwmark(AddressFamily::Inet, 9).emit_nest(&mut b);
        let msg = b.finish();
        assert_eq!(
            ServiceKey::decode(&first_attr(&msg)).unwrap(),
            ServiceKey::fwmark(AddressFamily::Inet, 9)
        );

        let mut b = MessageBuilder::new(0x30, 0);
        let n = b.begin_nest(IPVS_CMD_ATTR_SERVICE);
        b.put_ne16(IPVS_SVC_ATTR_AF, AF_INET)
            .put_ne16(IPVS_SVC_ATTR_PROTOCOL, IPPROTO_TCP)
            .put_bytes(IPVS_SVC_ATTR_ADDR, &[10, 0, 0, 1]);
        b.end_nest(n);
        let msg = b.finish();
        let err = ServiceKey::decode(&first_attr(&msg)).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::Missing);
        assert_eq!(
            err.path.to_string(),
            "IPVS_CMD_ATTR_SERVICE/IPVS_SVC_ATTR_PORT"
        );
    }

    #[test]
    fn invalid_specs_are_rejected() {
        let tcp = ServiceKey::tcp("10.0.0.1:80".parse().unwrap());
        let ok = ServiceSpec::new(tcp, "rr");
        ok.validate().unwrap();
        let bad = [
            ServiceSpec::new(tcp, ""),
            ServiceSpec::new(tcp, "a-very-long-scheduler"),
            ServiceSpec::new(ServiceKey::tcp("10.0.0.1:0".parse().unwrap()), "rr"),
            ServiceSpec::new(tcp, "rr").with_flags(ServiceFlags::ONEPACKET),
            ServiceSpec::new(tcp, "rr").with_flags(ServiceFlags::PERSISTENT),
            ServiceSpec::new(tcp, "rr").with_pe("sip"),
            ServiceSpec::new(tcp, "rr")
                .persistent(5)
                .with_netmask(Netmask::PrefixLen(24)),
            ServiceSpec::new(tcp, "rr")
                .persistent(5)
                .with_netmask(Netmask::Mask("255.0.255.0".parse().unwrap())),
            ServiceSpec::new(ServiceKey::tcp("[::1]:80".parse().unwrap()), "rr")
                .persistent(5)
                .with_netmask(Netmask::PrefixLen(129)),
            ServiceSpec::new(ServiceKey::fwmark(AddressFamily::Inet, 0), "rr"),
            ServiceSpec::new(
                ServiceKey::inet(Protocol::Icmp, "10.0.0.1:0".parse().unwrap()),
                "rr",
            )
            .persistent(5),
        ];
        for s in bad {
            assert!(
                matches!(s.validate(), Err(Error::InvalidRequest(_))),
                "{s:?} accepted"
            );
        }
        assert!(
            ServiceSpec::new(ServiceKey::udp("10.0.0.1:53".parse().unwrap()), "rr")
                .with_flags(ServiceFlags::ONEPACKET)
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn netmask_forms() {
        assert_eq!(
            Netmask::Mask("255.255.255.0".parse().unwrap()).prefix_len(),
            Some(24)
        );
        assert_eq!(Netmask::Mask(Ipv4Addr::BROADCAST).prefix_len(), Some(32));
        assert_eq!(Netmask::Mask(Ipv4Addr::UNSPECIFIED).prefix_len(), Some(0));
        assert_eq!(
            Netmask::Mask("255.0.255.0".parse().unwrap()).prefix_len(),
            None
        );
        assert_eq!(
            Netmask::from_wire(64u32.to_ne_bytes(), AddressFamily::Inet6),
            Netmask::PrefixLen(64)
        );
        assert_eq!(
            Netmask::from_wire([255, 255, 0, 0], AddressFamily::Inet).to_string(),
            "255.255.0.0"
        );
        assert_eq!(
            ServiceFlags::from_flag_name("ops"),
            Some(ServiceFlags::ONEPACKET)
        );
        assert_eq!(
            (ServiceFlags::PERSISTENT | ServiceFlags::from_bits_retain(1 << 9)).names(),
            ["PERSISTENT", "BIT9"]
        );
    }
}
