//! The three configurable IPVS timeouts (IPVS_CMD_GET_CONFIG / IPVS_CMD_SET_CONFIG).

use crate::error::{DecodeError, Result};
use crate::ipvs::service::invalid;
use crate::ipvs::wire::*;
use crate::netlink::attr::Attr;
use crate::netlink::emit::MessageBuilder;

/// The configurable timeouts, in seconds: TCP ESTABLISHED, TCP FIN_WAIT and UDP.
///
/// In a request `None` (or 0) leaves the kernel's value unchanged; in a reply
/// `None` means the kernel lacks that protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Timeouts {
    /// TCP ESTABLISHED timeout (ipvsadm's `tcp`).
    pub tcp: Option<u32>,
    /// TCP FIN_WAIT timeout (ipvsadm's `tcpfin`).
    pub tcp_fin: Option<u32>,
    /// UDP timeout (ipvsadm's `udp`).
    pub udp: Option<u32>,
}

impl Timeouts {
    /// Takes `attr` if it is one of the three top-level timeout attributes; returns whether it was.
    pub fn take(&mut self, attr: &Attr<'_>) -> Result<bool, DecodeError> {
        let slot = match attr.kind() {
            IPVS_CMD_ATTR_TIMEOUT_TCP => &mut self.tcp,
            IPVS_CMD_ATTR_TIMEOUT_TCP_FIN => &mut self.tcp_fin,
            IPVS_CMD_ATTR_TIMEOUT_UDP => &mut self.udp,
            _ => return Ok(false),
        };
        *slot = Some(attr.ne32()?);
        Ok(true)
    }

    /// Checks a request: at least one value, none 0 (0 would silently mean "unchanged").
    pub fn validate(&self) -> Result<()> {
        let vals = [self.tcp, self.tcp_fin, self.udp];
        if vals.iter().all(Option::is_none) {
            return invalid("no timeout to set".into());
        }
        if vals.contains(&Some(0)) {
            return invalid("a timeout of 0 would leave the kernel's value unchanged".into());
        }
        if vals.iter().flatten().any(|&v| v > i32::MAX as u32 / 1000) {
            return invalid(format!(
                "a timeout above {} seconds overflows the kernel's jiffies",
                i32::MAX / 1000
            ));
        }
        Ok(())
    }

    /// Appends the attributes that are set.
    pub fn emit(&self, b: &mut MessageBuilder) {
        for (kind, v) in [
            (IPVS_CMD_ATTR_TIMEOUT_TCP, self.tcp),
            (IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, self.tcp_fin),
            (IPVS_CMD_ATTR_TIMEOUT_UDP, self.udp),
        ] {
            if let Some(v) = v {
                b.put_ne32(kind, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{AttrPath, Error};
    use crate::netlink::attr::Attrs;

    #[test]
    fn emit_take_and_validate() {
        let t = Timeouts {
            tcp: Some(900),
            tcp_fin: None,
            udp: Some(30),
        };
        t.validate().unwrap();
        let mut b = MessageBuilder::new(0x30, 0);
        t.emit(&mut b);
        let msg = b.finish();
        let mut back = Timeouts::default();
        for a in Attrs::new(&msg[16..], 16, AttrPath::ROOT, IPVS_CMD_ATTR_NAMES) {
            assert!(back.take(&a.unwrap()).unwrap());
        }
        assert_eq!(back, t);
        for bad in [
            Timeouts::default(),
            Timeouts { tcp: Some(0), ..t },
            Timeouts {
                udp: Some(u32::MAX),
                ..t
            },
        ] {
            assert!(matches!(bad.validate(), Err(Error::InvalidRequest(_))));
        }
    }
}
