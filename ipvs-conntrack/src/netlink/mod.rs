//! The netlink layer: frames from a receive buffer, attributes, control messages and request building.

pub mod attr;
pub mod emit;
pub mod frame;
pub mod genl;
pub mod nfnetlink;
pub mod read_ahead;

pub use attr::{Attr, Attrs, RawAttr};
pub use frame::{Control, Frame, Frames, Header};
