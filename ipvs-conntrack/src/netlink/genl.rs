//! Generic netlink: the `genlmsghdr` family header and family resolution through nlctrl.

use crate::error::{AttrPath, DecodeError, DecodeErrorKind, Error, Result};
use crate::netlink::attr::{Attrs, Seen};
use crate::netlink::emit::MessageBuilder;
use crate::netlink::frame::flags::{NLM_F_ACK, NLM_F_REQUEST};
use crate::netlink::frame::{Frame, NLMSG_HDRLEN};
use crate::socket::{NlSocket, Step};

/// Size of `struct genlmsghdr`.
pub const GENL_HDRLEN: usize = 4;
/// Family id of the generic netlink controller (nlctrl).
pub const GENL_ID_CTRL: u16 = 0x10;
/// Version of the nlctrl protocol spoken here.
pub const CTRL_VERSION: u8 = 2;

/// nlctrl command: family announcement / reply to GETFAMILY.
pub const CTRL_CMD_NEWFAMILY: u8 = 1;
/// nlctrl command: ask for a family by name or id.
pub const CTRL_CMD_GETFAMILY: u8 = 3;

/// nlctrl attribute: family id (u16).
pub const CTRL_ATTR_FAMILY_ID: u16 = 1;
/// nlctrl attribute: family name (string).
pub const CTRL_ATTR_FAMILY_NAME: u16 = 2;
/// nlctrl attribute: family version (u32).
pub const CTRL_ATTR_VERSION: u16 = 3;
/// nlctrl attribute: size of the family's own header (u32).
pub const CTRL_ATTR_HDRSIZE: u16 = 4;
/// nlctrl attribute: highest attribute type of the family (u32).
pub const CTRL_ATTR_MAXATTR: u16 = 5;
/// nlctrl attribute: nested list of operations.
pub const CTRL_ATTR_OPS: u16 = 6;
/// nlctrl attribute: nested list of multicast groups.
pub const CTRL_ATTR_MCAST_GROUPS: u16 = 7;

/// Names of the nlctrl attributes, indexed by type.
pub const CTRL_ATTR_NAMES: &[&str] = &[
    "CTRL_ATTR_UNSPEC",
    "CTRL_ATTR_FAMILY_ID",
    "CTRL_ATTR_FAMILY_NAME",
    "CTRL_ATTR_VERSION",
    "CTRL_ATTR_HDRSIZE",
    "CTRL_ATTR_MAXATTR",
    "CTRL_ATTR_OPS",
    "CTRL_ATTR_MCAST_GROUPS",
    "CTRL_ATTR_POLICY",
    "CTRL_ATTR_OP_POLICY",
    "CTRL_ATTR_OP",
];

/// The generic netlink family header (`struct genlmsghdr`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GenlHeader {
    /// Command.
    pub cmd: u8,
    /// Family protocol version.
    pub version: u8,
    /// Reserved (0).
    pub reserved: u16,
}

impl GenlHeader {
    /// Parses the header at the start of `payload`; `offset` is its absolute position.
    pub fn parse(payload: &[u8], offset: usize) -> Result<Self, DecodeError> {
        match payload.get(..GENL_HDRLEN) {
            Some(&[cmd, version, a, b]) => Ok(GenlHeader {
                cmd,
                version,
                reserved: u16::from_ne_bytes([a, b]),
            }),
            _ => Err(DecodeError::new(
                DecodeErrorKind::Truncated {
                    needed: GENL_HDRLEN,
                    available: payload.len(),
                },
                AttrPath::ROOT,
                offset,
            )),
        }
    }

    /// The header bytes.
    pub fn to_bytes(&self) -> [u8; GENL_HDRLEN] {
        let r = self.reserved.to_ne_bytes();
        [self.cmd, self.version, r[0], r[1]]
    }
}

/// One generic netlink message: its header and its attributes.
#[derive(Clone, Copy, Debug)]
pub struct GenlMessage<'a> {
    /// The family header.
    pub header: GenlHeader,
    /// The attribute bytes after the family header.
    pub attrs: &'a [u8],
    /// Absolute offset of `attrs` in the receive buffer.
    pub attrs_offset: usize,
}

impl<'a> GenlMessage<'a> {
    /// Splits a frame into family header and attributes.
    pub fn from_frame(frame: &Frame<'a>) -> Result<Self, DecodeError> {
        let off = frame.offset + NLMSG_HDRLEN;
        let header = GenlHeader::parse(frame.payload, off)?;
        Ok(GenlMessage {
            header,
            attrs: frame.payload.get(GENL_HDRLEN..).unwrap_or_default(),
            attrs_offset: off + GENL_HDRLEN,
        })
    }

    /// Iterates the top-level attributes; `names` names their types.
    pub fn iter(&self, names: &'static [&'static str]) -> Attrs<'a> {
        Attrs::new(self.attrs, self.attrs_offset, AttrPath::ROOT, names)
    }
}

/// Starts a generic netlink request for `family` with `cmd` and `version`.
pub fn request(family: u16, cmd: u8, version: u8, flags: u16) -> MessageBuilder {
    let mut b = MessageBuilder::new(family, NLM_F_REQUEST | flags);
    b.put_raw(
        &GenlHeader {
            cmd,
            version,
            reserved: 0,
        }
        .to_bytes(),
    );
    b
}

/// What nlctrl says about a generic netlink family.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct FamilyInfo {
    /// The family id to use as netlink message type.
    pub id: u16,
    /// The family name.
    pub name: String,
    /// The family protocol version.
    pub version: u32,
    /// Size of the family-specific header after `genlmsghdr`.
    pub hdrsize: u32,
    /// Highest attribute type the family accepts.
    pub maxattr: u32,
}

impl FamilyInfo {
    /// Decodes an nlctrl NEWFAMILY message.
    pub fn from_frame(frame: &Frame<'_>) -> Result<FamilyInfo, DecodeError> {
        let msg = GenlMessage::from_frame(frame)?;
        let mut id = None;
        let mut name = None;
        let mut version = 0;
        let mut hdrsize = 0;
        let mut maxattr = 0;
        let mut seen = Seen::default();
        for attr in msg.iter(CTRL_ATTR_NAMES) {
            let attr = attr?;
            seen.check(&attr)?;
            match attr.kind() {
                CTRL_ATTR_FAMILY_ID => id = Some(attr.ne16()?),
                CTRL_ATTR_FAMILY_NAME => name = Some(attr.str()?.to_owned()),
                CTRL_ATTR_VERSION => version = attr.ne32()?,
                CTRL_ATTR_HDRSIZE => hdrsize = attr.ne32()?,
                CTRL_ATTR_MAXATTR => maxattr = attr.ne32()?,
                _ => {}
            }
        }
        let missing = |kind| {
            DecodeError::new(
                DecodeErrorKind::Missing,
                AttrPath::ROOT.push(crate::error::PathElem::new(CTRL_ATTR_NAMES, kind)),
                msg.attrs_offset,
            )
        };
        Ok(FamilyInfo {
            id: id.ok_or_else(|| missing(CTRL_ATTR_FAMILY_ID))?,
            name: name.ok_or_else(|| missing(CTRL_ATTR_FAMILY_NAME))?,
            version,
            hdrsize,
            maxattr,
        })
    }
}

/// Asks nlctrl for the family called `name`.
///
/// A family the kernel does not know (module not loaded) gives
/// [`Error::Unsupported`] naming `feature`.
pub fn resolve_family(
    sock: &mut NlSocket,
    name: &str,
    feature: &'static str,
) -> Result<FamilyInfo> {
    let mut b = request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, CTRL_VERSION, NLM_F_ACK);
    b.put_str(CTRL_ATTR_FAMILY_NAME, name);
    let mut bytes = b.finish();
    let seq = sock.send(&mut bytes, "nlctrl getfamily")?;
    let mut ex = sock.exchange(seq, "nlctrl getfamily");
    let mut found = None;
    loop {
        match ex.next_frame() {
            Ok(Step::Data(frame)) => {
                if found.is_none() {
                    found = Some(FamilyInfo::from_frame(&frame)?);
                }
            }
            Ok(Step::Finished) => break,
            Err(e) if e.is_not_found() => {
                return Err(Error::Unsupported {
                    feature,
                    detail: format!(
                    "the generic netlink family {name:?} is not registered (is the module loaded?)"
                ),
                })
            }
            Err(e) => return Err(e),
        }
    }
    found.ok_or_else(|| Error::Unsupported {
        feature,
        detail: format!("nlctrl sent no answer for family {name:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::frame::Frames;

    #[test]
    fn header_round_trip_and_truncation() {
        let h = GenlHeader {
            cmd: 3,
            version: 2,
            reserved: 0,
        };
        assert_eq!(GenlHeader::parse(&h.to_bytes(), 0).unwrap(), h);
        for cut in 0..GENL_HDRLEN {
            let err = GenlHeader::parse(&h.to_bytes()[..cut], 7).unwrap_err();
            assert_eq!(err.offset, 7);
            assert!(matches!(err.kind, DecodeErrorKind::Truncated { .. }));
        }
    }

    #[test]
    fn family_info_decodes_and_requires_id() {
        let mut b = request(GENL_ID_CTRL, CTRL_CMD_NEWFAMILY, 2, 0);
        b.put_ne16(CTRL_ATTR_FAMILY_ID, 0x25)
            .put_str(CTRL_ATTR_FAMILY_NAME, "IPVS")
            .put_ne32(CTRL_ATTR_VERSION, 1)
            .put_ne32(CTRL_ATTR_HDRSIZE, 0)
            .put_ne32(CTRL_ATTR_MAXATTR, 6);
        let msg = b.finish();
        let f = Frames::new(&msg).next().unwrap().unwrap();
        let info = FamilyInfo::from_frame(&f).unwrap();
        assert_eq!(
            info,
            FamilyInfo {
                id: 0x25,
                name: "IPVS".into(),
                version: 1,
                hdrsize: 0,
                maxattr: 6
            }
        );

        let mut b = request(GENL_ID_CTRL, CTRL_CMD_NEWFAMILY, 2, 0);
        b.put_str(CTRL_ATTR_FAMILY_NAME, "IPVS");
        let msg = b.finish();
        let f = Frames::new(&msg).next().unwrap().unwrap();
        let err = FamilyInfo::from_frame(&f).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::Missing);
        assert_eq!(err.path.to_string(), "CTRL_ATTR_FAMILY_ID");
    }
}
