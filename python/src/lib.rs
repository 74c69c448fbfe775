//! The native module `ipvsct._native`: pyo3 classes over the owned types of
//! `ipvs-conntrack`, re-exported by the pure-Python package `ipvsct`.
//!
//! A thin shell: every byte is decoded by the core crate. Calls that talk to the
//! kernel release the GIL; dumps wait in short slices and check for signals in
//! between, so Ctrl-C stops them promptly.

// The core's `Error` is large (it carries a `DecodeError`); results cross each
// call boundary once, so boxing it here would only add allocations.
#![allow(clippy::result_large_err)]

mod addr;
mod capacity;
mod capture;
mod client;
mod columns;
mod cursor;
mod decode;
mod entry;
mod entry_pool;
mod enums;
mod errors;
mod events;
mod expect;
mod filter;
mod ipvs;
mod ipvs_values;
mod policy;
mod records;
mod timeouts;
mod values;
mod write;

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
    m.add_class::<events::EventIterator>()?;
    m.add_class::<events::Event>()?;
    m.add_class::<events::ExpectEvent>()?;
    m.add_class::<events::Overrun>()?;
    m.add_class::<expect::Expectation>()?;
    m.add_class::<expect::ExpectNat>()?;
    m.add_class::<write::BatchResult>()?;
    m.add_class::<ipvs::Ipvs>()?;
    m.add_class::<ipvs_values::ServiceKey>()?;
    m.add_class::<ipvs_values::Service>()?;
    m.add_class::<ipvs_values::Destination>()?;
    m.add_class::<ipvs_values::IpvsStats>()?;
    m.add_class::<ipvs_values::SyncDaemon>()?;
    m.add_class::<ipvs_values::IpvsTimeouts>()?;
    m.add_class::<ipvs_values::IpvsInfo>()?;
    m.add_class::<ipvs_values::IpvsConnection>()?;
    m.add_class::<ipvs_values::ExplainedConn>()?;
    m.add_class::<ipvs_values::StateGroup>()?;
    m.add_class::<ipvs_values::DestReport>()?;
    m.add_class::<ipvs_values::ServiceReport>()?;
    m.add_class::<ipvs_values::Explanation>()?;
    m.add_class::<ipvs_values::GenlFamily>()?;
    m.add_class::<capture::Capture>()?;
    m.add_class::<capture::CapturedMessage>()?;
    m.add_class::<capture::ExpectCpuStats>()?;
    m.add_class::<capacity::StateCount>()?;
    m.add_class::<capacity::TroubleCounters>()?;
    m.add_class::<capacity::CapacityObservation>()?;
    m.add_class::<capacity::Suggestion>()?;
    m.add_class::<capacity::CapacityReport>()?;
    m.add_function(wrap_pyfunction!(decode::decode, m)?)?;
    m.add_function(wrap_pyfunction!(capture::decode_pcap, m)?)?;
    m.add_function(wrap_pyfunction!(capacity::capacity, m)?)?;
    m.add_function(wrap_pyfunction!(enums::core_enum_names, m)?)?;
    Ok(())
}
