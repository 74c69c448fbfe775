//! Destinations (real servers): what the kernel reports ([`Destination`]) and what is
//! sent to add or change one ([`DestSpec`]).

use std::net::{IpAddr, SocketAddr};

use crate::error::{DecodeError, Result};
use crate::ipvs::addr::{decode_addr, encode_addr, AddressFamily};
use crate::ipvs::service::{invalid, missing, ServiceKey};
use crate::ipvs::stats::{prefer64, Stats, StatsWidth};
use crate::ipvs::wire::*;
use crate::netlink::attr::{Attr, RawAttr, Seen};
use crate::netlink::emit::MessageBuilder;
use crate::open_enum::open_enum;

open_enum! {
    /// How packets reach a real server (`IP_VS_CONN_F_*` forwarding methods).
    pub enum ForwardMethod: u32 {
        /// Masquerading (NAT).
        Masq = IP_VS_CONN_F_MASQ => "masq",
        /// Local node (the real server is the director itself).
        Local = IP_VS_CONN_F_LOCALNODE => "local",
        /// IP tunnelling (IPIP, GUE or GRE).
        Tunnel = IP_VS_CONN_F_TUNNEL => "tunnel",
        /// Direct routing (gatewaying).
        Route = IP_VS_CONN_F_DROUTE => "route",
        /// Cache bypass.
        Bypass = IP_VS_CONN_F_BYPASS => "bypass",
    }
}

impl ForwardMethod {
    /// The name ipvsadm prints in its Forward column (`Masq`, `Local`, `Tunnel`, `Route`, `Bypass`).
    pub fn ipvsadm_name(&self) -> &'static str {
        match self {
            ForwardMethod::Masq => "Masq",
            ForwardMethod::Local => "Local",
            ForwardMethod::Tunnel => "Tunnel",
            ForwardMethod::Route => "Route",
            ForwardMethod::Bypass => "Bypass",
            ForwardMethod::Unknown(_) => "Unknown",
        }
    }
}

open_enum! {
    /// Encapsulation of a tunnelling destination (`IP_VS_CONN_F_TUNNEL_TYPE_*`).
    pub enum TunnelType: u8 {
        /// IP in IP.
        Ipip = IP_VS_CONN_F_TUNNEL_TYPE_IPIP => "ipip",
        /// Generic UDP encapsulation.
        Gue = IP_VS_CONN_F_TUNNEL_TYPE_GUE => "gue",
        /// Generic routing encapsulation.
        Gre = IP_VS_CONN_F_TUNNEL_TYPE_GRE => "gre",
    }
}

bitflags::bitflags! {
    /// Tunnel encapsulation flags (`IP_VS_TUNNEL_ENCAP_FLAG_*`). Unknown bits are kept.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct TunnelFlags: u16 {
        /// Checksum the encapsulation header.
        const CSUM = IP_VS_TUNNEL_ENCAP_FLAG_CSUM;
        /// Remote checksum offload (GUE).
        const REMCSUM = IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM;
        const _ = !0;
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for TunnelFlags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut names = Vec::new();
        if self.contains(TunnelFlags::CSUM) {
            names.push("CSUM".to_owned());
        }
        if self.contains(TunnelFlags::REMCSUM) {
            names.push("REMCSUM".to_owned());
        }
        for b in 2..16u16 {
            if self.bits() & (1 << b) != 0 {
                names.push(format!("BIT{b}"));
            }
        }
        s.collect_seq(names)
    }
}

/// A destination (real server) of a virtual service, as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Destination {
    /// Address family of the destination (may differ from the service's for tunnels).
    pub af: AddressFamily,
    /// Real server address.
    pub addr: IpAddr,
    /// Real server port.
    pub port: u16,
    /// Forwarding method.
    pub fwd_method: ForwardMethod,
    /// Weight (0 = quiesced: no new connections).
    pub weight: u32,
    /// Upper connection threshold (0 = none).
    pub upper_threshold: u32,
    /// Lower connection threshold (0 = none).
    pub lower_threshold: u32,
    /// Active connections (ActiveConn): TCP and SCTP connections in ESTABLISHED.
    pub active_conns: u32,
    /// Inactive connections (InActConn): every other connection entry, until it expires.
    pub inactive_conns: u32,
    /// Persistence templates pointing at this destination.
    pub persist_conns: u32,
    /// Tunnel type (tunnelling only; kernels before 5.2 do not send it).
    pub tun_type: Option<TunnelType>,
    /// Tunnel (GUE) port.
    pub tun_port: Option<u16>,
    /// Tunnel flags.
    pub tun_flags: Option<TunnelFlags>,
    /// Statistics from the 32-bit nest.
    pub stats: Option<Stats>,
    /// Statistics from the 64-bit nest.
    pub stats64: Option<Stats>,
    /// Attributes of the nest this library does not know, in order.
    pub unknown: Vec<RawAttr>,
}

impl Destination {
    /// Decodes an IPVS_CMD_ATTR_DEST nest. `default_af` is used when the kernel
    /// sends no IPVS_DEST_ATTR_ADDR_FAMILY (kernels before 4.1): the service's family.
    pub fn decode(nest: &Attr<'_>, default_af: AddressFamily) -> Result<Destination, DecodeError> {
        let mut seen = Seen::default();
        let mut addr = None;
        let mut af = None;
        let mut port = None;
        let mut fwd = None;
        let mut weight = None;
        let mut u_thresh = 0;
        let mut l_thresh = 0;
        let mut active = 0;
        let mut inactive = 0;
        let mut persist = 0;
        let mut tun_type = None;
        let mut tun_port = None;
        let mut tun_flags = None;
        let mut stats = None;
        let mut stats64 = None;
        let mut unknown = Vec::new();
        for attr in nest.nested(IPVS_DEST_ATTR_NAMES) {
            let attr = attr?;
            seen.check(&attr)?;
            match attr.kind() {
                IPVS_DEST_ATTR_ADDR => addr = Some(attr),
                IPVS_DEST_ATTR_PORT => port = Some(attr.be16()?),
                IPVS_DEST_ATTR_FWD_METHOD => {
                    fwd = Some(ForwardMethod::from(attr.ne32()? & IP_VS_CONN_F_FWD_MASK))
                }
                IPVS_DEST_ATTR_WEIGHT => weight = Some(attr.ne32()?),
                IPVS_DEST_ATTR_U_THRESH => u_thresh = attr.ne32()?,
                IPVS_DEST_ATTR_L_THRESH => l_thresh = attr.ne32()?,
                IPVS_DEST_ATTR_ACTIVE_CONNS => active = attr.ne32()?,
                IPVS_DEST_ATTR_INACT_CONNS => inactive = attr.ne32()?,
                IPVS_DEST_ATTR_PERSIST_CONNS => persist = attr.ne32()?,
                IPVS_DEST_ATTR_ADDR_FAMILY => af = Some(AddressFamily::from(attr.ne16()?)),
                IPVS_DEST_ATTR_TUN_TYPE => tun_type = Some(TunnelType::from(attr.u8()?)),
                IPVS_DEST_ATTR_TUN_PORT => tun_port = Some(attr.be16()?),
                IPVS_DEST_ATTR_TUN_FLAGS => {
                    tun_flags = Some(TunnelFlags::from_bits_retain(attr.ne16()?))
                }
                IPVS_DEST_ATTR_STATS => stats = Some(Stats::decode(&attr, StatsWidth::Bits32)?),
                IPVS_DEST_ATTR_STATS64 => stats64 = Some(Stats::decode(&attr, StatsWidth::Bits64)?),
                _ => unknown.push(attr.to_raw()),
            }
        }
        let need = |kind| missing(nest, IPVS_DEST_ATTR_NAMES, kind);
        let af = af.unwrap_or(default_af);
        let addr = addr.ok_or_else(|| need(IPVS_DEST_ATTR_ADDR))?;
        Ok(Destination {
            af,
            addr: decode_addr(&addr, af)?,
            port: port.ok_or_else(|| need(IPVS_DEST_ATTR_PORT))?,
            fwd_method: fwd.ok_or_else(|| need(IPVS_DEST_ATTR_FWD_METHOD))?,
            weight: weight.ok_or_else(|| need(IPVS_DEST_ATTR_WEIGHT))?,
            upper_threshold: u_thresh,
            lower_threshold: l_thresh,
            active_conns: active,
            inactive_conns: inactive,
            persist_conns: persist,
            tun_type,
            tun_port,
            tun_flags,
            stats,
            stats64,
            unknown,
        })
    }

    /// The real server's address and port.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.addr, self.port)
    }

    /// The best statistics available: the 64-bit ones, else the 32-bit ones.
    pub fn best_stats(&self) -> Option<&Stats> {
        prefer64(&self.stats64, &self.stats)
    }

    /// The settings of this destination as a spec (to edit it).
    pub fn to_spec(&self) -> DestSpec {
        DestSpec {
            addr: self.addr,
            port: self.port,
            fwd_method: self.fwd_method,
            weight: self.weight,
            upper_threshold: self.upper_threshold,
            lower_threshold: self.lower_threshold,
            af: Some(self.af),
            tun_type: self
                .tun_type
                .filter(|_| self.fwd_method == ForwardMethod::Tunnel),
            tun_port: self
                .tun_port
                .filter(|&p| p != 0 && self.tun_type == Some(TunnelType::Gue)),
            tun_flags: self.tun_flags.filter(|f| !f.is_empty()),
        }
    }
}

/// What to send to add or edit a destination. Checked by [`DestSpec::validate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestSpec {
    /// Real server address.
    pub addr: IpAddr,
    /// Real server port (ignored by the kernel for direct routing and tunnelling of port-0 services).
    pub port: u16,
    /// Forwarding method.
    pub fwd_method: ForwardMethod,
    /// Weight.
    pub weight: u32,
    /// Upper connection threshold (0 = none).
    pub upper_threshold: u32,
    /// Lower connection threshold (0 = none).
    pub lower_threshold: u32,
    /// Address family to send; `None` sends the family of `addr`.
    pub af: Option<AddressFamily>,
    /// Tunnel type (tunnelling only).
    pub tun_type: Option<TunnelType>,
    /// GUE port (GUE only).
    pub tun_port: Option<u16>,
    /// Tunnel checksum flags (GUE/GRE only).
    pub tun_flags: Option<TunnelFlags>,
}

impl DestSpec {
    /// A destination with weight 1 and no thresholds.
    pub fn new(addr: SocketAddr, fwd_method: ForwardMethod) -> DestSpec {
        DestSpec {
            addr: addr.ip(),
            port: addr.port(),
            fwd_method,
            weight: 1,
            upper_threshold: 0,
            lower_threshold: 0,
            af: None,
            tun_type: None,
            tun_port: None,
            tun_flags: None,
        }
    }

    /// Sets the weight.
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Sets the upper and lower connection thresholds.
    pub fn thresholds(mut self, upper: u32, lower: u32) -> Self {
        self.upper_threshold = upper;
        self.lower_threshold = lower;
        self
    }

    /// Sets the tunnel type, GUE port and flags.
    pub fn tunnel(mut self, kind: TunnelType, port: Option<u16>, flags: TunnelFlags) -> Self {
        self.tun_type = Some(kind);
        self.tun_port = port;
        self.tun_flags = (!flags.is_empty()).then_some(flags);
        self
    }

    /// The family sent: `af`, else the family of the address.
    pub fn family(&self) -> AddressFamily {
        self.af.unwrap_or_else(|| AddressFamily::of(&self.addr))
    }

    /// Checks the combinations the kernel or ipvsadm reject, for a destination of `service`.
    pub fn validate(&self, service: &ServiceKey) -> Result<()> {
        service.validate()?;
        let af = self.family();
        if af != AddressFamily::of(&self.addr) {
            return invalid(format!(
                "address {} does not belong to family {af}",
                self.addr
            ));
        }
        if matches!(self.fwd_method, ForwardMethod::Unknown(_)) {
            return invalid(format!("unknown forwarding method {}", self.fwd_method));
        }
        if af != service.af && self.fwd_method != ForwardMethod::Tunnel {
            return invalid(format!(
                "a {af} destination of a {} service needs tunnelling",
                service.af
            ));
        }
        if i32::try_from(self.weight).is_err() {
            return invalid(format!("weight {} is above {}", self.weight, i32::MAX));
        }
        if self.upper_threshold != 0 && self.lower_threshold > self.upper_threshold {
            return invalid(format!(
                "lower threshold {} is above upper threshold {}",
                self.lower_threshold, self.upper_threshold
            ));
        }
        let tunnel_opts =
            self.tun_type.is_some() || self.tun_port.is_some() || self.tun_flags.is_some();
        if tunnel_opts && self.fwd_method != ForwardMethod::Tunnel {
            return invalid("tunnel options need the tunnel forwarding method".into());
        }
        let kind = self.tun_type.unwrap_or(TunnelType::Ipip);
        if let TunnelType::Unknown(n) = kind {
            return invalid(format!("unknown tunnel type {n}"));
        }
        match (kind, self.tun_port) {
            (TunnelType::Gue, None | Some(0)) => {
                return invalid("a GUE tunnel needs a non-zero tunnel port".into())
            }
            (TunnelType::Gue, Some(_)) | (_, None) => {}
            (_, Some(_)) => return invalid("a tunnel port is only for GUE tunnels".into()),
        }
        if let Some(f) = self.tun_flags {
            if kind == TunnelType::Ipip && !f.is_empty() {
                return invalid("IPIP tunnels take no checksum flags".into());
            }
            if f.contains(TunnelFlags::REMCSUM) && kind != TunnelType::Gue {
                return invalid("remote checksum offload is only for GUE tunnels".into());
            }
            if f.contains(TunnelFlags::CSUM | TunnelFlags::REMCSUM) {
                return invalid("CSUM and REMCSUM exclude each other".into());
            }
            if f.bits() & !(TunnelFlags::CSUM | TunnelFlags::REMCSUM).bits() != 0 {
                return invalid(format!("unknown tunnel flags {:#x}", f.bits()));
            }
        }
        Ok(())
    }

    /// Appends the full IPVS_CMD_ATTR_DEST nest.
    pub fn emit_nest(&self, b: &mut MessageBuilder) {
        let n = b.begin_nest(IPVS_CMD_ATTR_DEST);
        b.put_bytes(IPVS_DEST_ATTR_ADDR, &encode_addr(&self.addr))
            .put_be16(IPVS_DEST_ATTR_PORT, self.port)
            .put_ne16(IPVS_DEST_ATTR_ADDR_FAMILY, self.family().value())
            .put_ne32(IPVS_DEST_ATTR_FWD_METHOD, self.fwd_method.value())
            .put_ne32(IPVS_DEST_ATTR_WEIGHT, self.weight)
            .put_ne32(IPVS_DEST_ATTR_U_THRESH, self.upper_threshold)
            .put_ne32(IPVS_DEST_ATTR_L_THRESH, self.lower_threshold);
        if let Some(t) = self.tun_type {
            b.put_u8(IPVS_DEST_ATTR_TUN_TYPE, t.value());
        }
        if let Some(p) = self.tun_port {
            b.put_be16(IPVS_DEST_ATTR_TUN_PORT, p);
        }
        if let Some(f) = self.tun_flags {
            b.put_ne16(IPVS_DEST_ATTR_TUN_FLAGS, f.bits());
        }
        b.end_nest(n);
    }

    /// Appends an IPVS_CMD_ATTR_DEST nest holding only address, port and family (to delete).
    pub fn emit_key_nest(addr: SocketAddr, b: &mut MessageBuilder) {
        let n = b.begin_nest(IPVS_CMD_ATTR_DEST);
        b.put_bytes(IPVS_DEST_ATTR_ADDR, &encode_addr(&addr.ip()))
            .put_be16(IPVS_DEST_ATTR_PORT, addr.port())
            .put_ne16(
                IPVS_DEST_ATTR_ADDR_FAMILY,
                AddressFamily::of(&addr.ip()).value(),
            );
        b.end_nest(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{AttrPath, DecodeErrorKind, Error};
    use crate::netlink::attr::Attrs;

    fn decode(msg: &[u8], af: AddressFamily) -> Result<Destination, DecodeError> {
        let a = Attrs::new(&msg[16..], 16, AttrPath::ROOT, IPVS_CMD_ATTR_NAMES)
            .next()
            .unwrap()?;
        Destination::decode(&a, af)
    }

    #[test]
    fn spec_round_trip() {
        let spec = DestSpec::new("[2001:db8::9]:0".parse().unwrap(), ForwardMethod::Tunnel)
            .weight(7)
            .thresholds(100, 10)
            .tunnel(TunnelType::Gue, Some(6080), TunnelFlags::REMCSUM);
        let v4svc = ServiceKey::tcp("10.0.0.1:80".parse().unwrap());
        spec.validate(&v4svc).unwrap();
        let mut b = MessageBuilder::new(0x30, 0);
        spec.emit_nest(&mut b);
        let msg = b.finish();
        let d = decode(&msg, AddressFamily::Inet).unwrap();
        assert_eq!(d.af, AddressFamily::Inet6);
        assert_eq!(d.addr, "2001:db8::9".parse::<IpAddr>().unwrap());
        assert_eq!(d.fwd_method, ForwardMethod::Tunnel);
        assert_eq!(d.weight, 7);
        assert_eq!((d.upper_threshold, d.lower_threshold), (100, 10));
        assert_eq!(d.tun_type, Some(TunnelType::Gue));
        assert_eq!(d.tun_port, Some(6080));
        assert_eq!(d.tun_flags, Some(TunnelFlags::REMCSUM));
        assert_eq!(
            d.to_spec(),
            DestSpec {
                af: Some(AddressFamily::Inet6),
                ..spec
            }
        );
    }

    #[test]
    fn missing_family_falls_back_and_missing_weight_errors() {
        let mut b = MessageBuilder::new(0x30, 0);
        let n = b.begin_nest(IPVS_CMD_ATTR_DEST);
        b.put_bytes(
            IPVS_DEST_ATTR_ADDR,
            &encode_addr(&"10.9.8.7".parse().unwrap()),
        )
        .put_be16(IPVS_DEST_ATTR_PORT, 8080)
        .put_ne32(IPVS_DEST_ATTR_FWD_METHOD, 3)
        .put_ne32(IPVS_DEST_ATTR_WEIGHT, 2)
        .put_u8(63, 1);
        b.end_nest(n);
        let msg = b.finish();
        let d = decode(&msg, AddressFamily::Inet).unwrap();
        assert_eq!(d.socket_addr(), "10.9.8.7:8080".parse().unwrap());
        assert_eq!(d.fwd_method, ForwardMethod::Route);
        assert_eq!(d.unknown.len(), 1);

        let mut b = MessageBuilder::new(0x30, 0);
        let n = b.begin_nest(IPVS_CMD_ATTR_DEST);
        b.put_bytes(IPVS_DEST_ATTR_ADDR, &[0; 16])
            .put_be16(IPVS_DEST_ATTR_PORT, 1)
            .put_ne32(IPVS_DEST_ATTR_FWD_METHOD, 0);
        b.end_nest(n);
        let msg = b.finish();
        let err = decode(&msg, AddressFamily::Inet).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::Missing);
        assert_eq!(
            err.path.to_string(),
            "IPVS_CMD_ATTR_DEST/IPVS_DEST_ATTR_WEIGHT"
        );
    }

    #[test]
    fn invalid_specs_are_rejected() {
        let svc = ServiceKey::tcp("10.0.0.1:80".parse().unwrap());
        let rs: SocketAddr = "10.0.2.2:80".parse().unwrap();
        DestSpec::new(rs, ForwardMethod::Masq)
            .validate(&svc)
            .unwrap();
        DestSpec::new(rs, ForwardMethod::Tunnel)
            .tunnel(TunnelType::Gre, None, TunnelFlags::CSUM)
            .validate(&svc)
            .unwrap();
        let bad = [
            DestSpec::new("[::2]:80".parse().unwrap(), ForwardMethod::Masq),
            DestSpec::new(rs, ForwardMethod::Masq).weight(u32::MAX),
            DestSpec::new(rs, ForwardMethod::Masq).thresholds(5, 6),
            DestSpec::new(rs, ForwardMethod::Route).tunnel(
                TunnelType::Ipip,
                None,
                TunnelFlags::empty(),
            ),
            DestSpec::new(rs, ForwardMethod::Tunnel).tunnel(
                TunnelType::Gue,
                None,
                TunnelFlags::empty(),
            ),
            DestSpec::new(rs, ForwardMethod::Tunnel).tunnel(
                TunnelType::Gre,
                Some(5),
                TunnelFlags::empty(),
            ),
            DestSpec::new(rs, ForwardMethod::Tunnel).tunnel(
                TunnelType::Ipip,
                None,
                TunnelFlags::CSUM,
            ),
            DestSpec::new(rs, ForwardMethod::Tunnel).tunnel(
                TunnelType::Gre,
                None,
                TunnelFlags::REMCSUM,
            ),
            DestSpec::new(rs, ForwardMethod::Tunnel).tunnel(
                TunnelType::Gue,
                Some(1),
                TunnelFlags::CSUM | TunnelFlags::REMCSUM,
            ),
            DestSpec::new(rs, ForwardMethod::Unknown(6)),
        ];
        for d in bad {
            assert!(
                matches!(d.validate(&svc), Err(Error::InvalidRequest(_))),
                "{d:?} accepted"
            );
        }
    }
}
