//! Building netlink request messages: header, family header, attributes and nests.

use netlink_packet_core::NlaBuffer;

use crate::netlink::attr::{align4, NLA_F_NESTED, NLA_HDRLEN};
use crate::netlink::frame::NLMSG_HDRLEN;

/// An in-progress netlink message.
#[derive(Clone, Debug)]
pub struct MessageBuilder {
    buf: Vec<u8>,
    start: usize,
}

/// A nest opened by [`MessageBuilder::begin_nest`]; close it with [`MessageBuilder::end_nest`].
#[must_use = "a nest must be closed with end_nest"]
#[derive(Debug)]
pub struct Nest(usize);

impl MessageBuilder {
    /// Starts a message of `message_type` with `flags` (sequence and port are set when sent).
    pub fn new(message_type: u16, flags: u16) -> Self {
        Self::append_to(Vec::with_capacity(256), message_type, flags)
    }

    /// Starts a message at the end of `buf` (to batch several messages in one buffer).
    pub fn append_to(mut buf: Vec<u8>, message_type: u16, flags: u16) -> Self {
        let start = buf.len();
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&message_type.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        MessageBuilder { buf, start }
    }

    /// Appends raw bytes (a family header such as `nfgenmsg` or `genlmsghdr`).
    pub fn put_raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self.pad();
        self
    }

    fn pad(&mut self) {
        let len = self.buf.len() - self.start;
        self.buf.resize(self.start + align4(len), 0);
    }

    fn header(&mut self, kind: u16, value_len: usize) {
        let at = self.buf.len();
        self.buf.resize(at + NLA_HDRLEN, 0);
        let len = u16::try_from(NLA_HDRLEN + value_len).unwrap_or(u16::MAX);
        let mut nla = NlaBuffer::new(&mut self.buf[at..]);
        nla.set_length(len);
        nla.set_kind(kind);
        if kind & NLA_F_NESTED != 0 {
            nla.set_nested_flag();
        }
    }

    /// Appends an attribute with raw value bytes.
    pub fn put_bytes(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        self.header(kind, value.len());
        self.buf.extend_from_slice(value);
        self.pad();
        self
    }

    /// Appends a u8 attribute.
    pub fn put_u8(&mut self, kind: u16, v: u8) -> &mut Self {
        self.put_bytes(kind, &[v])
    }
    /// Appends a big-endian u16 attribute.
    pub fn put_be16(&mut self, kind: u16, v: u16) -> &mut Self {
        self.put_bytes(kind, &v.to_be_bytes())
    }
    /// Appends a big-endian u32 attribute.
    pub fn put_be32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.put_bytes(kind, &v.to_be_bytes())
    }
    /// Appends a big-endian u64 attribute.
    pub fn put_be64(&mut self, kind: u16, v: u64) -> &mut Self {
        self.put_bytes(kind, &v.to_be_bytes())
    }
    /// Appends a host-endian u16 attribute.
    pub fn put_ne16(&mut self, kind: u16, v: u16) -> &mut Self {
        self.put_bytes(kind, &v.to_ne_bytes())
    }
    /// Appends a host-endian u32 attribute.
    pub fn put_ne32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.put_bytes(kind, &v.to_ne_bytes())
    }
    /// Appends a NUL-terminated string attribute.
    pub fn put_str(&mut self, kind: u16, s: &str) -> &mut Self {
        self.header(kind, s.len() + 1);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
        self.pad();
        self
    }

    /// Opens a nested attribute (NLA_F_NESTED is set).
    pub fn begin_nest(&mut self, kind: u16) -> Nest {
        let at = self.buf.len();
        self.header(kind | NLA_F_NESTED, 0);
        Nest(at)
    }

    /// Closes a nest, fixing its length.
    pub fn end_nest(&mut self, nest: Nest) -> &mut Self {
        let len = u16::try_from(self.buf.len() - nest.0).unwrap_or(u16::MAX);
        NlaBuffer::new(&mut self.buf[nest.0..]).set_length(len);
        self
    }

    /// Length of this message so far.
    pub fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// True if only the netlink header is present.
    pub fn is_empty(&self) -> bool {
        self.len() <= NLMSG_HDRLEN
    }

    /// Finishes the message, setting its length; returns the whole buffer.
    pub fn finish(mut self) -> Vec<u8> {
        let len = u32::try_from(self.len()).unwrap_or(u32::MAX);
        self.buf[self.start..self.start + 4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// Writes `sequence` and `port` into the header of the message at the start of `msg`.
pub fn set_sequence(msg: &mut [u8], sequence: u32) {
    if let Some(s) = msg.get_mut(8..12) {
        s.copy_from_slice(&sequence.to_ne_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AttrPath;
    use crate::netlink::attr::Attrs;
    use crate::netlink::frame::Frames;

    #[test]
    fn nest_round_trip() {
        let mut b = MessageBuilder::new(0x0101, 1);
        b.put_raw(&[2, 0, 0, 0]);
        let n = b.begin_nest(1);
        b.put_be32(3, 0xdead_beef).put_str(4, "ftp");
        b.end_nest(n);
        b.put_u8(9, 5);
        let msg = b.finish();
        let f = Frames::new(&msg).next().unwrap().unwrap();
        assert_eq!(f.header.length as usize, msg.len());
        let attrs: Vec<_> = Attrs::new(&f.payload[4..], 0, AttrPath::ROOT, &[])
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(attrs.len(), 2);
        assert!(attrs[0].is_nested());
        let inner: Vec<_> = attrs[0].nested(&[]).collect::<Result<_, _>>().unwrap();
        assert_eq!(inner[0].be32().unwrap(), 0xdead_beef);
        assert_eq!(inner[1].str().unwrap(), "ftp");
        assert_eq!(attrs[1].u8().unwrap(), 5);
    }
}
