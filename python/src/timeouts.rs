//! `ipvsct.StateTimeouts` (the state timeouts in force, per protocol) and
//! `ipvsct.TimeoutPolicy` (one cttimeout policy message).

use ipvs_conntrack::conntrack::timeout::{
    ProtoTimeouts, StateTimeouts as CoreStateTimeouts, TimeoutPolicy as CorePolicy, TimeoutSource,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::entry::proto_from_py;
use crate::enums;
use crate::values::{py_repr, raw_list, DccpTimeouts, SctpTimeouts, TcpTimeouts, UdpTimeouts};

/// The state timeouts in force in a namespace, for every protocol, in seconds.
#[pyclass(frozen, eq, module = "ipvsct", name = "StateTimeouts")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateTimeouts {
    pub(crate) inner: CoreStateTimeouts,
}

fn source_name(s: TimeoutSource) -> &'static str {
    match s {
        TimeoutSource::Cttimeout => "cttimeout",
        TimeoutSource::Sysctl => "sysctl",
    }
}

#[pymethods]
impl StateTimeouts {
    /// Where the values came from: `"cttimeout"` or `"sysctl"`.
    #[getter]
    fn source(&self) -> &'static str {
        source_name(self.inner.source)
    }
    /// TCP.
    #[getter]
    fn tcp(&self) -> TcpTimeouts {
        TcpTimeouts::from(&self.inner.tcp)
    }
    /// UDP.
    #[getter]
    fn udp(&self) -> UdpTimeouts {
        UdpTimeouts::from(&self.inner.udp)
    }
    /// UDP-Lite.
    #[getter]
    fn udplite(&self) -> UdpTimeouts {
        UdpTimeouts::from(&self.inner.udplite)
    }
    /// SCTP.
    #[getter]
    fn sctp(&self) -> SctpTimeouts {
        SctpTimeouts::from(&self.inner.sctp)
    }
    /// DCCP.
    #[getter]
    fn dccp(&self) -> DccpTimeouts {
        DccpTimeouts::from(&self.inner.dccp)
    }
    /// ICMP.
    #[getter]
    fn icmp(&self) -> Option<u32> {
        self.inner.icmp
    }
    /// ICMPv6.
    #[getter]
    fn icmpv6(&self) -> Option<u32> {
        self.inner.icmpv6
    }
    /// GRE.
    #[getter]
    fn gre(&self) -> UdpTimeouts {
        UdpTimeouts::from(&self.inner.gre)
    }
    /// Other protocols.
    #[getter]
    fn generic(&self) -> Option<u32> {
        self.inner.generic
    }

    /// The full timeout of `state` (an enum member or a name; None for stateless
    /// protocols) for L4 protocol `proto` (number or name), in seconds.
    #[pyo3(signature = (proto, state=None))]
    fn for_state(
        &self,
        proto: &Bound<'_, PyAny>,
        state: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<u32>> {
        let p = proto_from_py(proto)?;
        let none = pyo3::types::PyNone::get(proto.py()).to_owned().into_any();
        let s = enums::state_from_py(p, state.unwrap_or(&none))?;
        Ok(self.inner.for_state(p, s))
    }

    /// Every value as nested dicts (`{"tcp": {"established": 432000, …}, …}`).
    pub fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("source", self.source())?;
        d.set_item("tcp", self.tcp().to_dict(py)?)?;
        d.set_item("udp", self.udp().to_dict(py)?)?;
        d.set_item("udplite", self.udplite().to_dict(py)?)?;
        d.set_item("sctp", self.sctp().to_dict(py)?)?;
        d.set_item("dccp", self.dccp().to_dict(py)?)?;
        d.set_item("icmp", self.inner.icmp)?;
        d.set_item("icmpv6", self.inner.icmpv6)?;
        d.set_item("gre", self.gre().to_dict(py)?)?;
        d.set_item("generic", self.inner.generic)?;
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "StateTimeouts(source={}, tcp.established={}, udp={}/{}, icmp={}, generic={})",
            py_repr(py, self.source())?,
            py_repr(py, self.inner.tcp.established)?,
            py_repr(py, self.inner.udp.unreplied)?,
            py_repr(py, self.inner.udp.replied)?,
            py_repr(py, self.inner.icmp)?,
            py_repr(py, self.inner.generic)?,
        ))
    }
}

/// One timeout policy: a protocol's default policy, or a named one (`nfct timeout`).
#[pyclass(frozen, eq, module = "ipvsct", name = "TimeoutPolicy")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeoutPolicy {
    pub(crate) inner: CorePolicy,
}

/// `CTA_TIMEOUT_TCP_SYN_SENT` → `syn_sent`.
pub(crate) fn short_name(kernel: &str) -> String {
    let rest = kernel.strip_prefix("CTA_TIMEOUT_").unwrap_or(kernel);
    let rest = rest.split_once('_').map_or(rest, |(_, r)| r);
    rest.to_ascii_lowercase()
}

fn values_dict<'py>(py: Python<'py>, t: &ProtoTimeouts) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (name, v) in t.named_values() {
        d.set_item(short_name(name), v)?;
    }
    Ok(d)
}

#[pymethods]
impl TimeoutPolicy {
    /// Policy name (None for default policies).
    #[getter]
    fn name(&self) -> Option<String> {
        self.inner.name.clone()
    }
    /// L3 protocol (an AF_* value).
    #[getter]
    fn l3proto(&self) -> u16 {
        self.inner.l3proto
    }
    /// L4 protocol number.
    #[getter]
    fn l4proto(&self) -> u8 {
        self.inner.l4proto
    }
    /// The timeouts by state name (`{"syn_sent": 120, …}`; `{"timeout": 600}` for one-value protocols).
    #[getter]
    fn timeouts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        values_dict(py, &self.inner.timeouts)
    }
    /// Reference count of a named policy.
    #[getter]
    fn use_count(&self) -> Option<u32> {
        self.inner.use_count
    }
    /// Attributes this library does not know, in order.
    #[getter]
    fn unknown<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyList>> {
        raw_list(py, &self.inner.unknown)
    }
    /// The attributes as a dict.
    pub fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("name", self.name())?;
        d.set_item("l3proto", self.inner.l3proto)?;
        d.set_item("l4proto", self.inner.l4proto)?;
        d.set_item("timeouts", self.timeouts(py)?)?;
        d.set_item("use_count", self.inner.use_count)?;
        Ok(d)
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "TimeoutPolicy(name={}, l3proto={}, l4proto={}, timeouts={})",
            py_repr(py, self.name())?,
            self.inner.l3proto,
            self.inner.l4proto,
            py_repr(py, self.timeouts(py)?)?,
        ))
    }
}
