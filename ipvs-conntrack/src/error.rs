//! Error types: [`Error`] for requests, [`DecodeError`] for bytes that do not parse.

use std::fmt;
use std::io;

/// A table of attribute names indexed by attribute type (element 0 names the nest's UNSPEC).
pub type Names = &'static [&'static str];

/// Maps (parent nest's name table, attribute type) to the name table of that attribute's
/// nested attributes, if it is a nest. Used to rebuild full paths for errors.
pub type ChildNames = fn(Names, u16) -> Option<Names>;

/// Maximum nesting depth recorded in an [`AttrPath`].
const PATH_DEPTH: usize = 8;

/// One step of an attribute path: the attribute type and the name table of its nest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathElem {
    names: Names,
    kind: u16,
}

impl PathElem {
    /// Creates a path element for attribute `kind` named through `names` (indexed by type).
    pub const fn new(names: Names, kind: u16) -> Self {
        PathElem { names, kind }
    }

    /// Attribute type number (without the NLA_F_NESTED / NLA_F_NET_BYTEORDER bits).
    pub fn kind(&self) -> u16 {
        self.kind
    }

    /// Kernel name of the attribute (e.g. `CTA_TUPLE_ORIG`), if the type is known.
    pub fn name(&self) -> Option<&'static str> {
        self.names
            .get(usize::from(self.kind))
            .copied()
            .filter(|n| !n.is_empty())
    }
}

impl fmt::Display for PathElem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "attr#{}", self.kind),
        }
    }
}

/// The chain of nested attributes that leads to a decode error, outermost first.
///
/// Built only when an error happens (decoding never pays for it).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AttrPath {
    elems: Vec<PathElem>,
}

impl AttrPath {
    /// The empty path (the message itself).
    pub const ROOT: AttrPath = AttrPath { elems: Vec::new() };

    /// Returns this path extended by one element (deeper levels than the limit are elided).
    pub fn push(mut self, elem: PathElem) -> AttrPath {
        if self.elems.len() < PATH_DEPTH {
            self.elems.push(elem);
        }
        self
    }

    /// The elements of the path, outermost first.
    pub fn iter(&self) -> impl Iterator<Item = PathElem> + '_ {
        self.elems.iter().copied()
    }

    /// Number of elements in the path.
    pub fn len(&self) -> usize {
        self.elems.len()
    }

    /// True for the message itself (no attribute).
    pub fn is_empty(&self) -> bool {
        self.elems.is_empty()
    }

    /// The innermost element, if any.
    pub fn last(&self) -> Option<PathElem> {
        self.elems.last().copied()
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("<message>");
        }
        for (i, e) in self.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// What went wrong while decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// A header or length field asks for more bytes than the buffer holds.
    Truncated {
        /// Bytes the field asked for.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// A length field smaller than the header it belongs to.
    LengthTooSmall {
        /// The length field's value.
        length: usize,
        /// The smallest valid value.
        minimum: usize,
    },
    /// A fixed-size value (integer, address) with the wrong size.
    WrongSize {
        /// Size the attribute type requires.
        expected: usize,
        /// Size found.
        actual: usize,
    },
    /// The same attribute appears twice in one nest.
    Duplicate,
    /// A required attribute is absent.
    Missing,
    /// A string attribute that is not valid UTF-8 or lacks its NUL terminator.
    BadString,
    /// A message of a type this decoder does not handle.
    UnexpectedMessage {
        /// The netlink message type found.
        message_type: u16,
    },
    /// A value outside what the field can hold (for example a label bitmap past 2^16 bits).
    InvalidValue,
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeErrorKind::Truncated { needed, available } => {
                write!(f, "truncated: needs {needed} bytes, {available} available")
            }
            DecodeErrorKind::LengthTooSmall { length, minimum } => {
                write!(f, "length field {length} is below the minimum {minimum}")
            }
            DecodeErrorKind::WrongSize { expected, actual } => {
                write!(f, "wrong size: expected {expected} bytes, found {actual}")
            }
            DecodeErrorKind::Duplicate => f.write_str("duplicate attribute"),
            DecodeErrorKind::Missing => f.write_str("required attribute missing"),
            DecodeErrorKind::BadString => f.write_str("string is not NUL-terminated UTF-8"),
            DecodeErrorKind::UnexpectedMessage { message_type } => {
                write!(f, "unexpected message type {message_type:#06x}")
            }
            DecodeErrorKind::InvalidValue => f.write_str("invalid value"),
        }
    }
}

/// Bytes that do not decode: what, where (attribute path) and at which byte offset.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at {path} (byte offset {offset})")]
pub struct DecodeError {
    /// What went wrong.
    pub kind: DecodeErrorKind,
    /// The attribute nest chain, outermost first.
    pub path: AttrPath,
    /// Byte offset from the start of the decoded buffer.
    pub offset: usize,
}

impl DecodeError {
    /// Creates a decode error.
    pub fn new(kind: DecodeErrorKind, path: AttrPath, offset: usize) -> Self {
        DecodeError { kind, path, offset }
    }

    /// Rebuilds the full attribute path of this error by walking `body` (the attributes of
    /// the message, whose first byte is at absolute offset `base`) down to the error's offset.
    ///
    /// `root` names the top-level attributes and `child` gives the names of nested ones.
    /// The path found replaces the current one when it is at least as deep.
    pub fn resolve(mut self, body: &[u8], base: usize, root: Names, child: ChildNames) -> Self {
        let mut path = AttrPath::ROOT;
        let mut buf = body;
        let mut buf_base = base;
        let mut names = Some(root);
        // Framing errors (from the attribute iterator) sit at an attribute header: the
        // attribute whose header starts there, or a nest around it, holds the offset. The
        // others (from a decoder, through `Attr::error`) sit at the value of the attribute
        // the decoder named last, which may be empty: the attribute and the nests around it
        // hold the offset in (header start, end]. At a nest's first value byte the
        // decoder's own innermost name tells the nest from its first member.
        let framing = matches!(
            self.kind,
            DecodeErrorKind::Truncated { .. } | DecodeErrorKind::LengthTooSmall { .. }
        );
        let last_named = self.path.last();
        let targets = |names: Option<Names>, kind: u16| {
            !framing
                && last_named.is_some_and(|last| {
                    last.kind == kind
                        && (names.is_none() || last.names.first() == names.and_then(|n| n.first()))
                })
        };
        // Bounded by PATH_DEPTH levels, each a bounded walk over `buf`.
        for _ in 0..PATH_DEPTH {
            let mut pos = 0usize;
            let mut next = None;
            while let Some(hdr) = buf.get(pos..pos + 4) {
                let len = usize::from(u16::from_ne_bytes([hdr[0], hdr[1]]));
                let kind =
                    u16::from_ne_bytes([hdr[2], hdr[3]]) & crate::netlink::attr::NLA_TYPE_MASK;
                let nested =
                    u16::from_ne_bytes([hdr[2], hdr[3]]) & crate::netlink::attr::NLA_F_NESTED != 0;
                let start = buf_base + pos;
                if len < 4 || self.offset < start {
                    break;
                }
                let end = start + len;
                let holds = if framing {
                    self.offset < end.max(start + 4)
                } else {
                    start < self.offset && self.offset <= end
                };
                if holds {
                    next = Some((kind, nested, pos, len));
                    break;
                }
                pos += crate::netlink::attr::align4(len);
            }
            let Some((kind, nested, pos, len)) = next else {
                break;
            };
            path = path.push(PathElem::new(names.unwrap_or(&[]), kind));
            let value_start = buf_base + pos + 4;
            let child_names = names.and_then(|n| child(n, kind));
            // An error at a nest's first value byte is about the nest itself when the
            // decoder named that nest as the error's innermost attribute.
            if self.offset < value_start
                || (self.offset == value_start && targets(names, kind))
                || !(nested || child_names.is_some())
            {
                break;
            }
            buf = buf
                .get(pos + 4..pos + len.min(buf.len() - pos))
                .unwrap_or_default();
            buf_base = value_start;
            names = child_names;
        }
        if path.len() >= self.path.len() {
            // Keep the innermost name table the decoder knew if the walk had none.
            if let (Some(last), Some(mine)) = (path.elems.last_mut(), self.path.last()) {
                if last.kind == mine.kind && last.names.is_empty() {
                    last.names = mine.names;
                }
            }
            self.path = path;
        }
        self
    }
}

/// An error reported by the kernel in an NLMSG_ERROR (or a failed NLMSG_DONE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelError {
    /// Positive errno value (e.g. 2 for ENOENT).
    pub errno: i32,
    /// Extended-ACK message text (NLMSGERR_ATTR_MSG), if the kernel sent one.
    pub message: Option<String>,
    /// Extended-ACK offset of the offending attribute in the request (NLMSGERR_ATTR_OFFS).
    pub offset: Option<u32>,
    /// Which request failed.
    pub request: &'static str,
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let os = io::Error::from_raw_os_error(self.errno);
        write!(f, "{} failed: {} (errno {})", self.request, os, self.errno)?;
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        }
        if let Some(o) = self.offset {
            write!(f, " [at request offset {o}]")?;
        }
        Ok(())
    }
}

/// Any failure of a library call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A socket-level I/O failure.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The kernel answered with an error.
    #[error("{0}")]
    Kernel(KernelError),
    /// The caller lacks CAP_NET_ADMIN (EPERM from the kernel or the socket).
    #[error("{op}: permission denied: this needs CAP_NET_ADMIN in the target network namespace (run as root)")]
    Permission {
        /// What was being done.
        op: &'static str,
    },
    /// A network namespace could not be opened or entered.
    #[error("network namespace {netns}: {source}")]
    Namespace {
        /// The namespace as given.
        netns: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The running kernel does not support a feature.
    #[error("not supported by the running kernel: {feature} ({detail})")]
    Unsupported {
        /// The feature.
        feature: &'static str,
        /// What the kernel said.
        detail: String,
    },
    /// The kernel's answer did not decode.
    #[error("decode error: {0}")]
    Decode(#[from] DecodeError),
    /// The kernel marked the dump NLM_F_DUMP_INTR: the table changed while it was read.
    #[error("dump interrupted (NLM_F_DUMP_INTR): the table changed during the dump; the entries returned may be inconsistent, retry for a consistent view")]
    DumpInterrupted,
    /// A blocking receive reached its configured timeout.
    #[error("{op}: timed out waiting for the kernel")]
    Timeout {
        /// What was being done.
        op: &'static str,
    },
    /// The request was rejected before being sent.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl Error {
    /// Builds an error from an errno the kernel returned for `request`.
    pub(crate) fn from_kernel(e: KernelError) -> Error {
        match e.errno {
            libc_errno::EPERM | libc_errno::EACCES => Error::Permission { op: e.request },
            _ => Error::Kernel(e),
        }
    }

    /// Wraps an I/O error, turning EPERM/EACCES into [`Error::Permission`] and timeouts into [`Error::Timeout`].
    pub(crate) fn io(op: &'static str, source: io::Error) -> Error {
        match source.raw_os_error() {
            Some(libc_errno::EPERM) | Some(libc_errno::EACCES) => Error::Permission { op },
            Some(libc_errno::EAGAIN) => Error::Timeout { op },
            _ => Error::Io { op, source },
        }
    }

    /// The errno behind this error, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Kernel(k) => Some(k.errno),
            Error::Io { source, .. } | Error::Namespace { source, .. } => source.raw_os_error(),
            Error::Permission { .. } => Some(libc_errno::EPERM),
            Error::Timeout { .. } => Some(libc_errno::EAGAIN),
            _ => None,
        }
    }

    /// True when the kernel answered ENOENT (no such entry).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Kernel(k) if k.errno == libc_errno::ENOENT)
    }
}

/// The errno values this crate inspects (Linux numbering).
pub(crate) mod libc_errno {
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const EINTR: i32 = 4;
    pub const EAGAIN: i32 = 11;
    pub const EACCES: i32 = 13;
    pub const EINVAL: i32 = 22;
    pub const ENOBUFS: i32 = 105;
    pub const EOPNOTSUPP: i32 = 95;
}

/// Result alias for library calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;
