//! Fixed-size IP addresses: an address family and 16 bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::FfiError;

/// AF_INET, as `ipvsct_addr.family`.
pub const IPVSCT_AF_INET: u16 = 2;
/// AF_INET6, as `ipvsct_addr.family`.
pub const IPVSCT_AF_INET6: u16 = 10;
/// Size of `ipvsct_addr.addr`.
pub const IPVSCT_ADDR_LEN: usize = 16;

/// An IPv4 or IPv6 address: `family` AF_INET with the 4 bytes first (the other 12 zero), or
/// AF_INET6 with 16 bytes; network byte order; family 0 for "no address".
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_addr {
    /// IPVSCT_AF_INET (2), IPVSCT_AF_INET6 (10), or 0.
    pub family: u16,
    /// Zero.
    pub reserved: u16,
    /// The address bytes, network byte order.
    pub addr: [u8; IPVSCT_ADDR_LEN],
}

impl ipvsct_addr {
    /// The C form of an address.
    pub(crate) fn from_ip(ip: IpAddr) -> Self {
        let (family, addr) = match ip {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                let addr = [a, b, c, d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
                (IPVSCT_AF_INET, addr)
            }
            IpAddr::V6(v6) => (IPVSCT_AF_INET6, v6.octets()),
        };
        ipvsct_addr {
            family,
            reserved: 0,
            addr,
        }
    }

    /// Writes the C form of `ip` to `*out` ([`Self::from_ip`], in place).
    #[inline(always)]
    pub(crate) fn fill_from_ip(out: &mut Self, ip: &IpAddr) {
        out.reserved = 0;
        match ip {
            IpAddr::V4(v4) => {
                out.family = IPVSCT_AF_INET;
                // The four octets, then zeros, as one little-endian number: one store
                // (a byte array literal compiled to four byte stores and the zeros).
                out.addr = u128::from(u32::from_le_bytes(v4.octets())).to_le_bytes();
            }
            IpAddr::V6(v6) => {
                out.family = IPVSCT_AF_INET6;
                out.addr = v6.octets();
            }
        }
    }

    /// The address, or an invalid-argument error naming `what` for an unknown family.
    pub(crate) fn to_ip(self, what: &str) -> Result<IpAddr, FfiError> {
        match self.family {
            IPVSCT_AF_INET => {
                let [a, b, c, d, ..] = self.addr;
                Ok(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
            }
            IPVSCT_AF_INET6 => Ok(IpAddr::V6(Ipv6Addr::from(self.addr))),
            f => Err(FfiError::invalid(format!(
                "{what}: address family {f} is neither AF_INET (2) nor AF_INET6 (10)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_and_v6_round_trip() {
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let a = ipvsct_addr::from_ip(v4);
        assert_eq!(a.family, 2);
        assert_eq!(a.addr[..4], [192, 0, 2, 7]);
        assert_eq!(a.addr[4..], [0; 12]);
        assert_eq!(a.to_ip("a").unwrap(), v4);
        let v6: IpAddr = "fd00::1:2".parse().unwrap();
        let a = ipvsct_addr::from_ip(v6);
        assert_eq!(a.family, 10);
        assert_eq!(a.addr[15], 2);
        assert_eq!(a.to_ip("a").unwrap(), v6);
    }

    #[test]
    fn unknown_family_is_invalid() {
        let a = ipvsct_addr {
            family: 7,
            ..Default::default()
        };
        let e = a.to_ip("orig.src").unwrap_err();
        assert!(
            e.message.starts_with("orig.src: address family 7"),
            "{}",
            e.message
        );
    }
}
