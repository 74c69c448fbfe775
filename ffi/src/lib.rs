//! # libipvsct: the C ABI of ipvs-conntrack
//!
//! Builds `libipvsct.so` (soname `libipvsct.so.<major>`) and `libipvsct.a`; the header
//! `include/ipvsct.h` is generated from this crate by cbindgen (see `ffi/cbindgen.toml`,
//! whose header text states the conventions every call follows).
//!
//! Every exported function runs inside a panic boundary, checks every
//! pointer for NULL before use, writes its outputs only on success and records failures
//! as the calling thread's last error. `unsafe` code lives here only, each block with the
//! reason it is sound; the unit tests (pointer and buffer helpers, offline decoding,
//! argument checks) also run under Miri.
#![allow(non_camel_case_types)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod addr;
pub mod batch;
pub mod boundary;
pub mod capacity;
pub mod conntrack;
pub mod cstr;
pub mod dump;
pub mod entry;
mod entry_fill;
pub mod error;
pub mod events;
pub mod expect;
pub mod filter;
pub mod ipvs;
pub mod ipvs_types;
pub mod lock;
pub mod message;
pub mod policy;
pub mod ptr;
pub mod request;
pub mod result;
pub mod stats;
pub mod timeouts;
pub mod tuple;
pub mod version;
pub mod view;
pub mod write;

#[cfg(test)]
mod layout_tests;
#[cfg(test)]
mod shape_tests;
#[cfg(test)]
mod view_tests;
