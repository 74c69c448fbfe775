//! The nfnetlink family header (`struct nfgenmsg`) and subsystem ids.

use crate::error::{AttrPath, DecodeError, DecodeErrorKind};

/// Size of `struct nfgenmsg`.
pub const NFGENMSG_LEN: usize = 4;
/// nfnetlink version 0.
pub const NFNETLINK_V0: u8 = 0;

/// Connection tracking subsystem.
pub const NFNL_SUBSYS_CTNETLINK: u8 = 1;
/// Expectation subsystem.
pub const NFNL_SUBSYS_CTNETLINK_EXP: u8 = 2;
/// Timeout policy subsystem.
pub const NFNL_SUBSYS_CTNETLINK_TIMEOUT: u8 = 8;

/// Composes a netlink message type from a subsystem and a message.
pub const fn message_type(subsys: u8, msg: u8) -> u16 {
    ((subsys as u16) << 8) | msg as u16
}

/// Splits a netlink message type into (subsystem, message).
pub const fn split_type(message_type: u16) -> (u8, u8) {
    ((message_type >> 8) as u8, (message_type & 0xff) as u8)
}

/// The family header that starts every nfnetlink payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NfGenMsg {
    /// Address family (AF_INET, AF_INET6, AF_UNSPEC).
    pub family: u8,
    /// nfnetlink version.
    pub version: u8,
    /// Resource id (big-endian on the wire).
    pub res_id: u16,
}

impl NfGenMsg {
    /// Parses the header at the start of `payload`; `offset` is its absolute position.
    pub fn parse(payload: &[u8], offset: usize) -> Result<Self, DecodeError> {
        match payload.get(..NFGENMSG_LEN) {
            Some(&[family, version, a, b]) => Ok(NfGenMsg {
                family,
                version,
                res_id: u16::from_be_bytes([a, b]),
            }),
            _ => Err(DecodeError::new(
                DecodeErrorKind::Truncated {
                    needed: NFGENMSG_LEN,
                    available: payload.len(),
                },
                AttrPath::ROOT,
                offset,
            )),
        }
    }

    /// The header bytes.
    pub fn to_bytes(&self) -> [u8; NFGENMSG_LEN] {
        let r = self.res_id.to_be_bytes();
        [self.family, self.version, r[0], r[1]]
    }
}
