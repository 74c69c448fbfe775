//! Connection synchronisation daemons: what the kernel reports ([`SyncDaemon`]) and
//! what is sent to start one ([`DaemonSpec`]).

use std::net::{IpAddr, Ipv4Addr};

use crate::error::{DecodeError, Result};
use crate::ipvs::service::{check_name, invalid, missing};
use crate::ipvs::wire::*;
use crate::netlink::attr::{Attr, RawAttr, Seen};
use crate::netlink::emit::MessageBuilder;
use crate::open_enum::open_enum;

open_enum! {
    /// Role of a sync daemon (`IP_VS_STATE_*`).
    pub enum DaemonState: u32 {
        /// No daemon.
        None = IP_VS_STATE_NONE => "none",
        /// Sends the connection table (master).
        Master = IP_VS_STATE_MASTER => "master",
        /// Receives the connection table (backup).
        Backup = IP_VS_STATE_BACKUP => "backup",
    }
}

/// A running sync daemon as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SyncDaemon {
    /// Master or backup.
    pub state: DaemonState,
    /// Multicast interface.
    pub mcast_ifn: String,
    /// Sync id.
    pub sync_id: u32,
    /// Maximum sync message payload (kernels since 4.3).
    pub sync_maxlen: Option<u16>,
    /// Multicast group (IPv4 or IPv6), when one was configured.
    pub mcast_group: Option<IpAddr>,
    /// Multicast (base) port.
    pub mcast_port: Option<u16>,
    /// Multicast TTL.
    pub mcast_ttl: Option<u8>,
    /// Attributes of the nest this library does not know, in order.
    pub unknown: Vec<RawAttr>,
}

impl SyncDaemon {
    /// Decodes an IPVS_CMD_ATTR_DAEMON nest.
    pub fn decode(nest: &Attr<'_>) -> Result<SyncDaemon, DecodeError> {
        let mut seen = Seen::default();
        let mut state = None;
        let mut ifn = None;
        let mut sync_id = None;
        let mut d = SyncDaemon {
            state: DaemonState::None,
            mcast_ifn: String::new(),
            sync_id: 0,
            sync_maxlen: None,
            mcast_group: None,
            mcast_port: None,
            mcast_ttl: None,
            unknown: Vec::new(),
        };
        for attr in nest.nested(IPVS_DAEMON_ATTR_NAMES) {
            let attr = attr?;
            seen.check(&attr)?;
            match attr.kind() {
                IPVS_DAEMON_ATTR_STATE => state = Some(DaemonState::from(attr.ne32()?)),
                IPVS_DAEMON_ATTR_MCAST_IFN => ifn = Some(attr.str()?.to_owned()),
                IPVS_DAEMON_ATTR_SYNC_ID => sync_id = Some(attr.ne32()?),
                IPVS_DAEMON_ATTR_SYNC_MAXLEN => d.sync_maxlen = Some(attr.ne16()?),
                IPVS_DAEMON_ATTR_MCAST_GROUP => d.mcast_group = Some(IpAddr::V4(attr.ipv4()?)),
                IPVS_DAEMON_ATTR_MCAST_GROUP6 => d.mcast_group = Some(IpAddr::V6(attr.ipv6()?)),
                IPVS_DAEMON_ATTR_MCAST_PORT => d.mcast_port = Some(attr.ne16()?),
                IPVS_DAEMON_ATTR_MCAST_TTL => d.mcast_ttl = Some(attr.u8()?),
                _ => d.unknown.push(attr.to_raw()),
            }
        }
        let need = |kind| missing(nest, IPVS_DAEMON_ATTR_NAMES, kind);
        d.state = state.ok_or_else(|| need(IPVS_DAEMON_ATTR_STATE))?;
        d.mcast_ifn = ifn.ok_or_else(|| need(IPVS_DAEMON_ATTR_MCAST_IFN))?;
        d.sync_id = sync_id.ok_or_else(|| need(IPVS_DAEMON_ATTR_SYNC_ID))?;
        Ok(d)
    }
}

/// What to send to start a sync daemon. Checked by [`DaemonSpec::validate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonSpec {
    /// Master or backup.
    pub state: DaemonState,
    /// Multicast interface (it needs an IPv4 address for the default group).
    pub mcast_ifn: String,
    /// Sync id (0..=255 are carried in sync messages).
    pub sync_id: u32,
    /// Maximum sync message payload.
    pub sync_maxlen: Option<u16>,
    /// Multicast group; the kernel's default is 224.0.0.81.
    pub mcast_group: Option<IpAddr>,
    /// Multicast port; the kernel's default is 8848.
    pub mcast_port: Option<u16>,
    /// Multicast TTL (1..=255); the kernel's default is 1.
    pub mcast_ttl: Option<u8>,
}

impl DaemonSpec {
    /// A daemon of role `state` on interface `ifn` with sync id `sync_id` and kernel defaults.
    pub fn new(state: DaemonState, ifn: impl Into<String>, sync_id: u32) -> DaemonSpec {
        DaemonSpec {
            state,
            mcast_ifn: ifn.into(),
            sync_id,
            sync_maxlen: None,
            mcast_group: None,
            mcast_port: None,
            mcast_ttl: None,
        }
    }

    /// Checks what the kernel would reject, before anything is sent.
    pub fn validate(&self) -> Result<()> {
        if !matches!(self.state, DaemonState::Master | DaemonState::Backup) {
            return invalid(format!(
                "daemon state must be master or backup, not {}",
                self.state
            ));
        }
        check_name("interface", &self.mcast_ifn, IP_VS_IFNAME_MAXLEN)?;
        match self.mcast_group {
            Some(IpAddr::V4(g)) if !g.is_multicast() => {
                return invalid(format!("{g} is not a multicast group"))
            }
            Some(IpAddr::V6(g)) if !g.is_multicast() => {
                return invalid(format!("{g} is not a multicast group"))
            }
            _ => {}
        }
        if self.mcast_ttl == Some(0) {
            return invalid("multicast TTL must be 1 to 255".into());
        }
        if self.mcast_port == Some(0) {
            return invalid("multicast port 0 is not a port".into());
        }
        Ok(())
    }

    /// Appends the IPVS_CMD_ATTR_DAEMON nest.
    pub fn emit_nest(&self, b: &mut MessageBuilder) {
        let n = b.begin_nest(IPVS_CMD_ATTR_DAEMON);
        b.put_ne32(IPVS_DAEMON_ATTR_STATE, self.state.value())
            .put_str(IPVS_DAEMON_ATTR_MCAST_IFN, &self.mcast_ifn)
            .put_ne32(IPVS_DAEMON_ATTR_SYNC_ID, self.sync_id);
        if let Some(v) = self.sync_maxlen {
            b.put_ne16(IPVS_DAEMON_ATTR_SYNC_MAXLEN, v);
        }
        match self.mcast_group {
            Some(IpAddr::V4(g)) => {
                b.put_bytes(IPVS_DAEMON_ATTR_MCAST_GROUP, &g.octets());
            }
            Some(IpAddr::V6(g)) => {
                b.put_bytes(IPVS_DAEMON_ATTR_MCAST_GROUP6, &g.octets());
            }
            None => {}
        }
        if let Some(v) = self.mcast_port {
            b.put_ne16(IPVS_DAEMON_ATTR_MCAST_PORT, v);
        }
        if let Some(v) = self.mcast_ttl {
            b.put_u8(IPVS_DAEMON_ATTR_MCAST_TTL, v);
        }
        b.end_nest(n);
    }

    /// Appends the nest that stops the daemon of role `state`.
    pub fn emit_stop_nest(state: DaemonState, b: &mut MessageBuilder) {
        let n = b.begin_nest(IPVS_CMD_ATTR_DAEMON);
        b.put_ne32(IPVS_DAEMON_ATTR_STATE, state.value());
        b.end_nest(n);
    }
}

/// The kernel's default multicast group for sync messages.
pub const DEFAULT_MCAST_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
/// The kernel's default multicast port for sync messages.
pub const DEFAULT_MCAST_PORT: u16 = 8848;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{AttrPath, DecodeErrorKind, Error};
    use crate::netlink::attr::Attrs;

    fn decode(msg: &[u8]) -> Result<SyncDaemon, DecodeError> {
        let a = Attrs::new(&msg[16..], 16, AttrPath::ROOT, IPVS_CMD_ATTR_NAMES)
            .next()
            .unwrap()?;
        SyncDaemon::decode(&a)
    }

    #[test]
    fn spec_round_trip_v4_and_v6() {
        for group in ["239.1.2.3", "ff02::1:5"] {
            let spec = DaemonSpec {
                sync_maxlen: Some(1400),
                mcast_group: Some(group.parse().unwrap()),
                mcast_port: Some(9000),
                mcast_ttl: Some(3),
                ..DaemonSpec::new(DaemonState::Backup, "eth1", 42)
            };
            spec.validate().unwrap();
            let mut b = MessageBuilder::new(0x30, 0);
            spec.emit_nest(&mut b);
            let d = decode(&b.finish()).unwrap();
            assert_eq!(d.state, DaemonState::Backup);
            assert_eq!(d.mcast_ifn, "eth1");
            assert_eq!(d.sync_id, 42);
            assert_eq!(d.sync_maxlen, Some(1400));
            assert_eq!(d.mcast_group, Some(group.parse().unwrap()));
            assert_eq!(d.mcast_port, Some(9000));
            assert_eq!(d.mcast_ttl, Some(3));
        }
    }

    #[test]
    fn missing_ifn_is_an_error() {
        let mut b = MessageBuilder::new(0x30, 0);
        DaemonSpec::emit_stop_nest(DaemonState::Master, &mut b);
        let err = decode(&b.finish()).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::Missing);
        assert_eq!(
            err.path.to_string(),
            "IPVS_CMD_ATTR_DAEMON/IPVS_DAEMON_ATTR_MCAST_IFN"
        );
    }

    #[test]
    fn invalid_specs_are_rejected() {
        let ok = DaemonSpec::new(DaemonState::Master, "eth0", 1);
        ok.validate().unwrap();
        let bad = [
            DaemonSpec::new(DaemonState::None, "eth0", 1),
            DaemonSpec::new(DaemonState::Master, "", 1),
            DaemonSpec::new(DaemonState::Master, "sixteen-chars-xx", 1),
            DaemonSpec {
                mcast_group: Some("10.0.0.1".parse().unwrap()),
                ..ok.clone()
            },
            DaemonSpec {
                mcast_group: Some("2001:db8::1".parse().unwrap()),
                ..ok.clone()
            },
            DaemonSpec {
                mcast_ttl: Some(0),
                ..ok.clone()
            },
        ];
        for d in bad {
            assert!(
                matches!(d.validate(), Err(Error::InvalidRequest(_))),
                "{d:?}"
            );
        }
    }
}
