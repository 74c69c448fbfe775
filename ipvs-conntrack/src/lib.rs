//! # ipvs-conntrack
//!
//! Typed, streaming access to the Linux kernel's connection tracker (ctnetlink,
//! cttimeout) and, later, IPVS — every message decoded into structs that carry
//! their state timeouts.
//!
//! ## Contract
//! * Decoding is total: any byte sequence yields a value or a [`DecodeError`]
//!   naming the kind of fault, the attribute path and the byte offset. No input
//!   makes the decoders panic, and this crate has no `unsafe` code.
//! * Dumps stream: memory is bounded by one receive buffer, whatever the table size.
//!   [`conntrack::EntryView`] borrows from that buffer; [`conntrack::Entry`] owns.
//! * Nothing is lost silently: unknown attributes are kept as raw bytes; an
//!   interrupted dump (NLM_F_DUMP_INTR) ends with [`Error::DumpInterrupted`];
//!   messages from senders other than the kernel are dropped and counted.
//!
//! ```no_run
//! use ipvs_conntrack::conntrack::{Conntrack, DumpFilter};
//! use ipvs_conntrack::Netns;
//!
//! let mut ct = Conntrack::open(&Netns::named("blue"))?;
//! for entry in ct.dump(&DumpFilter::all())? {
//!     let e = entry?;
//!     println!("{} {} {:?}s left of {:?}s", e.orig.src, e.state, e.timeout, e.state_timeout);
//! }
//! # Ok::<(), ipvs_conntrack::Error>(())
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(ipvsct_prefetch, feature(hint_prefetch))]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub(crate) mod open_enum;

pub mod capacity;
#[cfg(feature = "capture")]
pub mod capture;
pub mod conntrack;
pub mod error;
pub mod ipvs;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod netlink;
pub mod netns;
pub mod socket;

pub use error::{AttrPath, DecodeError, DecodeErrorKind, Error, KernelError, Result};
pub use netns::Netns;
