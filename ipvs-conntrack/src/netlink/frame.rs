//! Netlink message frames borrowed from a receive buffer, and control messages
//! (NLMSG_DONE, NLMSG_ERROR with extended ACK).

use crate::error::{AttrPath, DecodeError, DecodeErrorKind, KernelError};
use crate::netlink::attr::{align4, Attrs};

/// Size of `struct nlmsghdr`.
pub const NLMSG_HDRLEN: usize = 16;

/// Netlink control message types.
pub mod msg_type {
    /// No operation.
    pub const NLMSG_NOOP: u16 = 1;
    /// Error or acknowledgement.
    pub const NLMSG_ERROR: u16 = 2;
    /// End of a multipart message.
    pub const NLMSG_DONE: u16 = 3;
    /// Data lost.
    pub const NLMSG_OVERRUN: u16 = 4;
}

/// Netlink header flags (`NLM_F_*`).
pub mod flags {
    /// A request.
    pub const NLM_F_REQUEST: u16 = 0x01;
    /// Part of a multipart message.
    pub const NLM_F_MULTI: u16 = 0x02;
    /// Ask for an acknowledgement.
    pub const NLM_F_ACK: u16 = 0x04;
    /// Echo this request.
    pub const NLM_F_ECHO: u16 = 0x08;
    /// The dump was inconsistent because of a sequence change.
    pub const NLM_F_DUMP_INTR: u16 = 0x10;
    /// The dump was filtered as requested.
    pub const NLM_F_DUMP_FILTERED: u16 = 0x20;
    /// Return the complete table (GET).
    pub const NLM_F_ROOT: u16 = 0x100;
    /// Return all matching entries (GET).
    pub const NLM_F_MATCH: u16 = 0x200;
    /// `NLM_F_ROOT | NLM_F_MATCH`.
    pub const NLM_F_DUMP: u16 = NLM_F_ROOT | NLM_F_MATCH;
    /// Replace an existing object (NEW).
    pub const NLM_F_REPLACE: u16 = 0x100;
    /// Do not touch an existing object (NEW).
    pub const NLM_F_EXCL: u16 = 0x200;
    /// Create if it does not exist (NEW).
    pub const NLM_F_CREATE: u16 = 0x400;
    /// Error message: the original request payload was cut.
    pub const NLM_F_CAPPED: u16 = 0x100;
    /// Error message: extended ACK TLVs follow.
    pub const NLM_F_ACK_TLVS: u16 = 0x200;
}

/// Extended ACK attribute types (`NLMSGERR_ATTR_*`).
pub mod extack {
    /// Error message string.
    pub const NLMSGERR_ATTR_MSG: u16 = 1;
    /// Offset of the invalid attribute in the request.
    pub const NLMSGERR_ATTR_OFFS: u16 = 2;
    /// Cookie.
    pub const NLMSGERR_ATTR_COOKIE: u16 = 3;
    /// Policy of the rejected attribute.
    pub const NLMSGERR_ATTR_POLICY: u16 = 4;
    /// Type of a missing required attribute.
    pub const NLMSGERR_ATTR_MISS_TYPE: u16 = 5;
    /// Offset of the nest where an attribute is missing.
    pub const NLMSGERR_ATTR_MISS_NEST: u16 = 6;
    /// Names, indexed by type.
    pub const NAMES: &[&str] = &[
        "NLMSGERR_ATTR_UNUSED",
        "NLMSGERR_ATTR_MSG",
        "NLMSGERR_ATTR_OFFS",
        "NLMSGERR_ATTR_COOKIE",
        "NLMSGERR_ATTR_POLICY",
        "NLMSGERR_ATTR_MISS_TYPE",
        "NLMSGERR_ATTR_MISS_NEST",
    ];
}

/// The fixed netlink message header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Total message length including this header.
    pub length: u32,
    /// Message type.
    pub message_type: u16,
    /// `NLM_F_*` flags.
    pub flags: u16,
    /// Sequence number.
    pub sequence: u32,
    /// Sender port id (0 for the kernel).
    pub port: u32,
}

impl Header {
    /// Reads a header (host byte order). Read directly: netlink-packet-core's accessors are
    /// not inlined and cost more than the rest of a view dump's frame handling (callgrind).
    #[inline(always)]
    pub fn parse(h: &[u8; NLMSG_HDRLEN]) -> Header {
        let word = |i: usize| u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        Header {
            length: word(0),
            message_type: u16::from_ne_bytes([h[4], h[5]]),
            flags: u16::from_ne_bytes([h[6], h[7]]),
            sequence: word(8),
            port: word(12),
        }
    }
}

/// One netlink message borrowed from a buffer.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// The header.
    pub header: Header,
    /// The bytes after the header, up to `header.length`.
    pub payload: &'a [u8],
    /// Absolute offset of the header in the scanned buffer.
    pub offset: usize,
}

/// What a frame is, for the request loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// A data message (not a control type).
    Data,
    /// NLMSG_DONE; carries the kernel's error if the dump failed.
    Done(Option<KernelError>),
    /// NLMSG_ERROR with error 0: an acknowledgement.
    Ack,
    /// NLMSG_ERROR with a non-zero error.
    Error(KernelError),
    /// NLMSG_NOOP.
    Noop,
    /// NLMSG_OVERRUN.
    Overrun,
}

impl<'a> Frame<'a> {
    /// True if NLM_F_MULTI is set.
    pub fn is_multi(&self) -> bool {
        self.header.flags & flags::NLM_F_MULTI != 0
    }

    /// True if NLM_F_DUMP_INTR is set.
    pub fn is_dump_interrupted(&self) -> bool {
        self.header.flags & flags::NLM_F_DUMP_INTR != 0
    }

    /// Classifies the frame, decoding NLMSG_ERROR / NLMSG_DONE bodies; `request` names the request for errors.
    pub fn control(&self, request: &'static str) -> Result<Control, DecodeError> {
        match self.header.message_type {
            msg_type::NLMSG_NOOP => Ok(Control::Noop),
            msg_type::NLMSG_OVERRUN => Ok(Control::Overrun),
            msg_type::NLMSG_DONE => {
                // The payload is an int status (absent in some very old kernels).
                let status = match self.payload.get(..4) {
                    Some(b) => i32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
                    None => 0,
                };
                if status < 0 {
                    let tlvs = self.payload.get(4..).unwrap_or_default();
                    let mut err = parse_extack(tlvs, self.offset + NLMSG_HDRLEN + 4, request)?;
                    err.errno = status.saturating_neg();
                    Ok(Control::Done(Some(err)))
                } else {
                    Ok(Control::Done(None))
                }
            }
            msg_type::NLMSG_ERROR => {
                let need = 4 + NLMSG_HDRLEN;
                let body = self.payload;
                if body.len() < need {
                    return Err(DecodeError::new(
                        DecodeErrorKind::Truncated {
                            needed: need,
                            available: body.len(),
                        },
                        AttrPath::ROOT,
                        self.offset + NLMSG_HDRLEN,
                    ));
                }
                let code = i32::from_ne_bytes([body[0], body[1], body[2], body[3]]);
                if code == 0 {
                    return Ok(Control::Ack);
                }
                if code > 0 {
                    // The kernel sends a negated errno; a positive one is not an errno.
                    return Err(DecodeError::new(
                        DecodeErrorKind::InvalidValue,
                        AttrPath::ROOT,
                        self.offset + NLMSG_HDRLEN,
                    ));
                }
                // The original request follows: its header, and its payload unless capped.
                let orig_len = u32::from_ne_bytes([body[4], body[5], body[6], body[7]]) as usize;
                let skip = if self.header.flags & flags::NLM_F_CAPPED != 0 {
                    NLMSG_HDRLEN
                } else {
                    align4(orig_len.max(NLMSG_HDRLEN))
                };
                let tlv_start = 4 + skip;
                let tlvs = if self.header.flags & flags::NLM_F_ACK_TLVS != 0 {
                    body.get(tlv_start..).unwrap_or_default()
                } else {
                    &[]
                };
                let mut err = parse_extack(tlvs, self.offset + NLMSG_HDRLEN + tlv_start, request)?;
                err.errno = code.saturating_neg();
                Ok(Control::Error(err))
            }
            _ => Ok(Control::Data),
        }
    }
}

/// Decodes extended-ACK TLVs into a [`KernelError`] (errno left 0 for the caller to fill).
fn parse_extack(
    tlvs: &[u8],
    base: usize,
    request: &'static str,
) -> Result<KernelError, DecodeError> {
    let mut err = KernelError {
        errno: 0,
        message: None,
        offset: None,
        request,
    };
    for attr in Attrs::new(tlvs, base, AttrPath::ROOT, extack::NAMES) {
        let attr = attr?;
        match attr.kind() {
            extack::NLMSGERR_ATTR_MSG => err.message = Some(attr.str()?.to_owned()),
            extack::NLMSGERR_ATTR_OFFS => err.offset = Some(attr.ne32()?),
            _ => {}
        }
    }
    Ok(err)
}

/// Iterator over the netlink messages in a buffer.
///
/// Yields `Err` once on a malformed header, then stops.
#[derive(Clone, Debug)]
pub struct Frames<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Frames<'a> {
    /// Iterates the messages in `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Frames {
            buf,
            pos: 0,
            failed: false,
        }
    }

    /// Offset of the next frame.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        if rest.is_empty() {
            return None;
        }
        let fail = |s: &mut Self, kind| {
            s.failed = true;
            Some(Err(DecodeError::new(kind, AttrPath::ROOT, s.pos)))
        };
        if rest.len() < NLMSG_HDRLEN {
            return fail(
                self,
                DecodeErrorKind::Truncated {
                    needed: NLMSG_HDRLEN,
                    available: rest.len(),
                },
            );
        }
        let header = Header::parse(rest.first_chunk::<NLMSG_HDRLEN>()?); // length checked above
        let length = header.length as usize;
        if length < NLMSG_HDRLEN {
            return fail(
                self,
                DecodeErrorKind::LengthTooSmall {
                    length,
                    minimum: NLMSG_HDRLEN,
                },
            );
        }
        if length > rest.len() {
            return fail(
                self,
                DecodeErrorKind::Truncated {
                    needed: length,
                    available: rest.len(),
                },
            );
        }
        let frame = Frame {
            header,
            payload: rest.get(NLMSG_HDRLEN..length).unwrap_or_default(),
            offset: self.pos,
        };
        self.pos = self.pos.saturating_add(align4(length));
        Some(Ok(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: u32, ty: u16, flags: u16) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&len.to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(&flags.to_ne_bytes());
        v.extend_from_slice(&7u32.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v
    }

    #[test]
    fn done_and_error_with_extack() {
        let mut buf = header(20, msg_type::NLMSG_DONE, flags::NLM_F_MULTI);
        buf.extend_from_slice(&0i32.to_ne_bytes());
        // NLMSG_ERROR -22, capped, with MSG "bad attr" and OFFS 24
        let msg = b"bad attr\0";
        let msg_attr_len = 4 + msg.len();
        let body_len = 4 + 16 + align4(msg_attr_len) + 8;
        let mut err = header(
            (16 + body_len) as u32,
            msg_type::NLMSG_ERROR,
            flags::NLM_F_CAPPED | flags::NLM_F_ACK_TLVS,
        );
        err.extend_from_slice(&(-22i32).to_ne_bytes());
        err.extend_from_slice(&header(40, 0x0101, 5));
        err.extend_from_slice(&(msg_attr_len as u16).to_ne_bytes());
        err.extend_from_slice(&1u16.to_ne_bytes());
        err.extend_from_slice(msg);
        err.resize(err.len() + align4(msg_attr_len) - msg_attr_len, 0);
        err.extend_from_slice(&8u16.to_ne_bytes());
        err.extend_from_slice(&2u16.to_ne_bytes());
        err.extend_from_slice(&24u32.to_ne_bytes());
        buf.extend_from_slice(&err);

        let frames: Vec<_> = Frames::new(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(frames.len(), 2);
        assert!(frames[0].is_multi());
        assert_eq!(frames[0].control("t").unwrap(), Control::Done(None));
        match frames[1].control("t").unwrap() {
            Control::Error(e) => {
                assert_eq!(e.errno, 22);
                assert_eq!(e.message.as_deref(), Some("bad attr"));
                assert_eq!(e.offset, Some(24));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn every_truncation_errors() {
        let mut buf = header(24, 0x0100, 0);
        buf.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        for cut in 1..buf.len() {
            let r: Result<Vec<_>, _> = Frames::new(&buf[..cut]).collect();
            assert!(r.is_err(), "cut {cut}");
        }
    }
}
