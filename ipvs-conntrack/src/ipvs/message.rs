//! One IPVS generic netlink message decoded by its command: a service, a destination,
//! a sync daemon, the timeouts or the info.
//!
//! Design: IPVS messages are small and few (one per service or destination), so each
//! is decoded in one pass straight into owned structs; unknown attributes are kept as
//! [`RawAttr`]. A separate zero-copy view would add nothing here.

use crate::error::{AttrPath, DecodeError, DecodeErrorKind, PathElem};
use crate::ipvs::addr::AddressFamily;
use crate::ipvs::config::Timeouts;
use crate::ipvs::daemon::SyncDaemon;
use crate::ipvs::dest::Destination;
use crate::ipvs::info::Info;
use crate::ipvs::service::{Service, ServiceKey};
use crate::ipvs::wire::*;
use crate::netlink::attr::{RawAttr, Seen};
use crate::netlink::frame::Frame;
use crate::netlink::genl::GenlMessage;
use crate::open_enum::open_enum;

open_enum! {
    /// IPVS generic netlink commands (`IPVS_CMD_*`).
    pub enum Command: u8 {
        /// IPVS_CMD_NEW_SERVICE (also every service in a dump).
        NewService = IPVS_CMD_NEW_SERVICE => "NEW_SERVICE",
        /// IPVS_CMD_SET_SERVICE.
        SetService = IPVS_CMD_SET_SERVICE => "SET_SERVICE",
        /// IPVS_CMD_DEL_SERVICE.
        DelService = IPVS_CMD_DEL_SERVICE => "DEL_SERVICE",
        /// IPVS_CMD_GET_SERVICE.
        GetService = IPVS_CMD_GET_SERVICE => "GET_SERVICE",
        /// IPVS_CMD_NEW_DEST (also every destination in a dump).
        NewDest = IPVS_CMD_NEW_DEST => "NEW_DEST",
        /// IPVS_CMD_SET_DEST.
        SetDest = IPVS_CMD_SET_DEST => "SET_DEST",
        /// IPVS_CMD_DEL_DEST.
        DelDest = IPVS_CMD_DEL_DEST => "DEL_DEST",
        /// IPVS_CMD_GET_DEST.
        GetDest = IPVS_CMD_GET_DEST => "GET_DEST",
        /// IPVS_CMD_NEW_DAEMON (also every daemon in a dump).
        NewDaemon = IPVS_CMD_NEW_DAEMON => "NEW_DAEMON",
        /// IPVS_CMD_DEL_DAEMON.
        DelDaemon = IPVS_CMD_DEL_DAEMON => "DEL_DAEMON",
        /// IPVS_CMD_GET_DAEMON.
        GetDaemon = IPVS_CMD_GET_DAEMON => "GET_DAEMON",
        /// IPVS_CMD_SET_CONFIG (also the reply to GET_CONFIG).
        SetConfig = IPVS_CMD_SET_CONFIG => "SET_CONFIG",
        /// IPVS_CMD_GET_CONFIG.
        GetConfig = IPVS_CMD_GET_CONFIG => "GET_CONFIG",
        /// IPVS_CMD_SET_INFO (the reply to GET_INFO).
        SetInfo = IPVS_CMD_SET_INFO => "SET_INFO",
        /// IPVS_CMD_GET_INFO.
        GetInfo = IPVS_CMD_GET_INFO => "GET_INFO",
        /// IPVS_CMD_ZERO.
        Zero = IPVS_CMD_ZERO => "ZERO",
        /// IPVS_CMD_FLUSH.
        Flush = IPVS_CMD_FLUSH => "FLUSH",
    }
}

/// What an IPVS message carries.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Body {
    /// A full service (NEW_SERVICE replies).
    Service(Service),
    /// A destination (NEW_DEST replies), with the service key when the message has one.
    Dest(Option<ServiceKey>, Destination),
    /// A sync daemon (NEW_DAEMON replies).
    Daemon(SyncDaemon),
    /// The timeouts (SET_CONFIG replies).
    Config(Timeouts),
    /// The info (SET_INFO replies).
    Info(Info),
    /// A command whose body this decoder does not interpret.
    Other,
}

/// One decoded IPVS message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The command.
    pub cmd: Command,
    /// The family version in the header.
    pub version: u8,
    /// The decoded body.
    pub body: Body,
    /// Top-level attributes not used by the body, in order.
    pub unknown: Vec<RawAttr>,
}

impl Message {
    /// Decodes a reply frame. `dest_af` is the family to assume for destinations
    /// whose message carries neither IPVS_DEST_ATTR_ADDR_FAMILY nor a service.
    pub fn from_frame(frame: &Frame<'_>, dest_af: AddressFamily) -> Result<Message, DecodeError> {
        let msg = GenlMessage::from_frame(frame)?;
        let root = if msg.header.cmd == IPVS_CMD_SET_INFO {
            IPVS_INFO_ATTR_NAMES
        } else {
            IPVS_CMD_ATTR_NAMES
        };
        Self::decode(&msg, dest_af)
            .map_err(|e| e.resolve(msg.attrs, msg.attrs_offset, root, child_names))
    }

    fn decode(msg: &GenlMessage<'_>, dest_af: AddressFamily) -> Result<Message, DecodeError> {
        let cmd = Command::from(msg.header.cmd);
        let mut unknown = Vec::new();
        let mut seen = Seen::default();
        let body = match cmd {
            Command::SetInfo => {
                let mut version = None;
                let mut size = None;
                for attr in msg.iter(IPVS_INFO_ATTR_NAMES) {
                    let attr = attr?;
                    seen.check(&attr)?;
                    match attr.kind() {
                        IPVS_INFO_ATTR_VERSION => version = Some(attr.ne32()?),
                        IPVS_INFO_ATTR_CONN_TAB_SIZE => size = Some(attr.ne32()?),
                        _ => unknown.push(attr.to_raw()),
                    }
                }
                let need = |kind| top_missing(msg, IPVS_INFO_ATTR_NAMES, kind);
                Body::Info(Info {
                    version: version.ok_or_else(|| need(IPVS_INFO_ATTR_VERSION))?,
                    conn_tab_size: size.ok_or_else(|| need(IPVS_INFO_ATTR_CONN_TAB_SIZE))?,
                })
            }
            _ => {
                let mut svc_nest = None;
                let mut dest_nest = None;
                let mut daemon = None;
                let mut timeouts = Timeouts::default();
                for attr in msg.iter(IPVS_CMD_ATTR_NAMES) {
                    let attr = attr?;
                    seen.check(&attr)?;
                    match attr.kind() {
                        IPVS_CMD_ATTR_SERVICE => svc_nest = Some(attr),
                        IPVS_CMD_ATTR_DEST => dest_nest = Some(attr),
                        IPVS_CMD_ATTR_DAEMON => daemon = Some(SyncDaemon::decode(&attr)?),
                        _ => {
                            if !timeouts.take(&attr)? {
                                unknown.push(attr.to_raw());
                            }
                        }
                    }
                }
                let need = |kind| top_missing(msg, IPVS_CMD_ATTR_NAMES, kind);
                match cmd {
                    Command::NewService => Body::Service(Service::decode(
                        &svc_nest.ok_or_else(|| need(IPVS_CMD_ATTR_SERVICE))?,
                    )?),
                    Command::NewDest => {
                        let key = svc_nest.as_ref().map(ServiceKey::decode).transpose()?;
                        let af = key.map(|k| k.af).unwrap_or(dest_af);
                        let nest = dest_nest.ok_or_else(|| need(IPVS_CMD_ATTR_DEST))?;
                        Body::Dest(key, Destination::decode(&nest, af)?)
                    }
                    Command::NewDaemon => {
                        Body::Daemon(daemon.ok_or_else(|| need(IPVS_CMD_ATTR_DAEMON))?)
                    }
                    Command::SetConfig => Body::Config(timeouts),
                    _ => {
                        if let Some(a) = svc_nest {
                            unknown.insert(0, a.to_raw());
                        }
                        if let Some(a) = dest_nest {
                            unknown.push(a.to_raw());
                        }
                        Body::Other
                    }
                }
            }
        };
        Ok(Message {
            cmd,
            version: msg.header.version,
            body,
            unknown,
        })
    }
}

fn top_missing(msg: &GenlMessage<'_>, names: &'static [&'static str], kind: u16) -> DecodeError {
    DecodeError::new(
        DecodeErrorKind::Missing,
        AttrPath::ROOT.push(PathElem::new(names, kind)),
        msg.attrs_offset,
    )
}

/// The error for a message whose command is not the one expected.
pub(crate) fn unexpected(frame: &Frame<'_>) -> DecodeError {
    DecodeError::new(
        DecodeErrorKind::UnexpectedMessage {
            message_type: frame.header.message_type,
        },
        AttrPath::ROOT,
        frame.offset,
    )
}
