//! Address families, IP protocols and the 16-byte address fields of IPVS messages.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{DecodeError, DecodeErrorKind};
use crate::ipvs::wire::*;
use crate::netlink::attr::Attr;
use crate::open_enum::open_enum;

open_enum! {
    /// Address family of a service, destination or connection (`AF_*`).
    pub enum AddressFamily: u16 {
        /// AF_INET.
        Inet = AF_INET => "inet",
        /// AF_INET6.
        Inet6 = AF_INET6 => "inet6",
    }
}

impl AddressFamily {
    /// The family of an address.
    pub fn of(addr: &IpAddr) -> AddressFamily {
        match addr {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        }
    }

    /// The unspecified address of this family (`0.0.0.0` or `::`).
    pub fn unspecified(&self) -> IpAddr {
        match self {
            AddressFamily::Inet => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            _ => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    }
}

open_enum! {
    /// IP protocol of a virtual service or connection (`IPPROTO_*`), named as IPVS names it.
    pub enum Protocol: u16 {
        /// IPPROTO_IP (persistence templates of firewall-mark services).
        Ip = IPPROTO_IP => "IP",
        /// IPPROTO_ICMP.
        Icmp = IPPROTO_ICMP => "ICMP",
        /// IPPROTO_TCP.
        Tcp = IPPROTO_TCP => "TCP",
        /// IPPROTO_UDP.
        Udp = IPPROTO_UDP => "UDP",
        /// IPPROTO_ESP.
        Esp = IPPROTO_ESP => "ESP",
        /// IPPROTO_AH.
        Ah = IPPROTO_AH => "AH",
        /// IPPROTO_ICMPV6.
        Icmpv6 = IPPROTO_ICMPV6 => "ICMPv6",
        /// IPPROTO_SCTP.
        Sctp = IPPROTO_SCTP => "SCTP",
    }
}

impl Protocol {
    /// Parses the kernel's protocol name as `/proc/net/ip_vs_conn` prints it (`TCP`, `IP_47`, ...).
    pub fn from_proc_name(s: &str) -> Option<Protocol> {
        if let Some(n) = s.strip_prefix("IP_") {
            return n.parse::<u16>().ok().map(Protocol::from);
        }
        Protocol::from_name(s)
    }

    /// True for the protocols a virtual service can be defined for (TCP, UDP, SCTP).
    pub fn is_service_protocol(&self) -> bool {
        matches!(self, Protocol::Tcp | Protocol::Udp | Protocol::Sctp)
    }
}

/// Decodes an IPVS address attribute (16 bytes, IPv4 in the first 4) for family `af`.
///
/// Exactly 4 bytes are accepted for IPv4 too. An unknown family keeps the 16 bytes as IPv6.
pub fn decode_addr(attr: &Attr<'_>, af: AddressFamily) -> Result<IpAddr, DecodeError> {
    let v = attr.value();
    match (af, v.len()) {
        (AddressFamily::Inet, 4 | 16) => {
            let b: [u8; 4] = v
                .get(..4)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| wrong(attr, 16))?;
            Ok(IpAddr::V4(Ipv4Addr::from(b)))
        }
        (_, 16) => {
            let b: [u8; 16] = v.try_into().map_err(|_| wrong(attr, 16))?;
            Ok(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => Err(wrong(attr, 16)),
    }
}

fn wrong(attr: &Attr<'_>, expected: usize) -> DecodeError {
    attr.error(DecodeErrorKind::WrongSize {
        expected,
        actual: attr.value().len(),
    })
}

/// The 16-byte wire form of an address (IPv4 in the first 4 bytes, the rest zero).
pub fn encode_addr(addr: &IpAddr) -> [u8; 16] {
    let mut out = [0u8; 16];
    match addr {
        IpAddr::V4(a) => out[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => out = a.octets(),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names() {
        assert_eq!(Protocol::from_proc_name("TCP"), Some(Protocol::Tcp));
        assert_eq!(Protocol::from_proc_name("sctp"), Some(Protocol::Sctp));
        assert_eq!(
            Protocol::from_proc_name("IP_47"),
            Some(Protocol::Unknown(47))
        );
        assert_eq!(Protocol::from_proc_name("IP"), Some(Protocol::Ip));
        assert_eq!(Protocol::from_proc_name("IP_x"), None);
        assert_eq!(Protocol::Icmpv6.to_string(), "ICMPv6");
        assert!(Protocol::Sctp.is_service_protocol());
        assert!(!Protocol::Ah.is_service_protocol());
    }

    #[test]
    fn address_codec() {
        let a: IpAddr = "10.1.2.3".parse().unwrap();
        let e = encode_addr(&a);
        assert_eq!(&e[..4], &[10, 1, 2, 3]);
        assert!(e[4..].iter().all(|&b| b == 0));
        let b: IpAddr = "2001:db8::7".parse().unwrap();
        assert_eq!(
            encode_addr(&b),
            "2001:db8::7".parse::<Ipv6Addr>().unwrap().octets()
        );
        assert_eq!(AddressFamily::of(&b), AddressFamily::Inet6);
        assert_eq!(AddressFamily::Inet.unspecified().to_string(), "0.0.0.0");
    }
}
