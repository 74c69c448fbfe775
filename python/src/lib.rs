//! The native module `ipvsct._native`: pyo3 classes over the owned types of
//! `ipvs-conntrack`, re-exported by the pure-Python package `ipvsct`.
//!
//! A thin shell: every byte is decoded by the core crate. Calls that talk to the
//! kernel release the GIL; dumps wait in short slices and check for signals in
//! between, so Ctrl-C stops them promptly.

// The core's `Error` is large (it carries a `DecodeError`); results cross each
// call boundary once, so boxing it here would only add allocations.
#![allow(clippy::result_large_err)]

mod client;
mod columns;
mod cursor;
mod decode;
mod entry;
mod enums;
mod errors;
mod filter;
mod timeouts;
mod values;

use pyo3::prelude::*;

/// The `ipvsct._native` module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<client::Conntrack>()?;
    m.add_class::<client::DumpIterator>()?;
    m.add_class::<entry::Entry>()?;
    m.add_class::<entry::Tuple>()?;
    m.add_class::<entry::ProtoInfo>()?;
    m.add_class::<entry::TcpInfo>()?;
    m.add_class::<entry::SctpInfo>()?;
    m.add_class::<entry::DccpInfo>()?;
    m.add_class::<entry::TcpFlagsMask>()?;
    m.add_class::<values::Counters>()?;
    m.add_class::<values::Timestamp>()?;
    m.add_class::<values::SeqAdj>()?;
    m.add_class::<values::Synproxy>()?;
    m.add_class::<values::NatRange>()?;
    m.add_class::<values::Helper>()?;
    m.add_class::<values::MessageInfo>()?;
    m.add_class::<values::RawAttr>()?;
    m.add_class::<values::GlobalStats>()?;
    m.add_class::<values::CpuStats>()?;
    m.add_class::<values::Stats>()?;
    m.add_class::<values::TcpTimeouts>()?;
    m.add_class::<values::UdpTimeouts>()?;
    m.add_class::<values::SctpTimeouts>()?;
    m.add_class::<values::DccpTimeouts>()?;
    m.add_class::<timeouts::StateTimeouts>()?;
    m.add_class::<timeouts::TimeoutPolicy>()?;
    m.add_function(wrap_pyfunction!(decode::decode, m)?)?;
    m.add_function(wrap_pyfunction!(enums::core_enum_names, m)?)?;
    Ok(())
}
