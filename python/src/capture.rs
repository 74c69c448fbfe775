//! `ipvsct.decode_pcap(path)`: a netlink capture (pcap or pcapng, LINKTYPE_NETLINK, as
//! `tcpdump -i nlmon0` or `ipvsct capture` write it) decoded into `CapturedMessage`s whose
//! `body` is the same object the live calls return.

use std::path::PathBuf;

use ipvs_conntrack::capture::{
    decode_pcap_file, direction_name, Body, CaptureError, DecodeOptions, DecodedMessage,
};
use ipvs_conntrack::{Error, KernelError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use pyo3::IntoPyObjectExt;

use crate::entry::Entry;
use crate::errors::{decode_error, to_py};
use crate::expect::Expectation;
use crate::ipvs_values::{Destination, GenlFamily, IpvsInfo, IpvsTimeouts, Service, SyncDaemon};
use crate::records::record;
use crate::timeouts::{StateTimeouts, TimeoutPolicy};
use crate::values::{CpuStats, GlobalStats};

record! {
    /// Per-CPU expectation counters.
    ExpectCpuStats = "ExpectCpuStats" {
        /// CPU number.
        cpu: u16,
        /// Expectations matched by a new connection.
        new: Option<u32>,
        /// Expectations created.
        create: Option<u32>,
        /// Expectations deleted.
        delete: Option<u32>,
    }
}

/// One netlink message of a capture: its header, its kernel name, and what it carries.
#[pyclass(frozen, module = "ipvsct", name = "CapturedMessage")]
pub struct CapturedMessage {
    /// 1-based pcap record number (Wireshark's frame number).
    #[pyo3(get)]
    frame: usize,
    /// Capture time, seconds since the epoch.
    #[pyo3(get)]
    timestamp: f64,
    /// `sent` (to the kernel) or `received` (from it).
    #[pyo3(get)]
    direction: &'static str,
    /// Netlink protocol (12 NETLINK_NETFILTER, 16 NETLINK_GENERIC).
    #[pyo3(get)]
    protocol: u16,
    /// nlmsg_type.
    #[pyo3(get)]
    message_type: u16,
    /// nlmsg_flags.
    #[pyo3(get)]
    flags: u16,
    /// nlmsg_seq.
    #[pyo3(get)]
    seq: u32,
    /// nlmsg_pid.
    #[pyo3(get)]
    port: u32,
    /// Kernel name of the type (`IPCTNL_MSG_CT_NEW`, `NLMSG_DONE`, `IPVS_CMD_NEW_SERVICE`…).
    #[pyo3(get)]
    name: String,
    /// What it is: `entry`, `expectation`, `stats`, `cpu_stats`, `timeout_policy`,
    /// `family`, `ipvs_service`, `ipvs_dest`, `ipvs_daemon`, `ipvs_config`, `ipvs_info`,
    /// `ack`, `done`, `error`, `noop`, `overrun`, `request`, `other` or `invalid`.
    #[pyo3(get)]
    kind: &'static str,
    /// The decoded object; for `error` a `NetlinkError` and for `invalid` a `DecodeError`
    /// instance (not raised); None for messages without a body.
    #[pyo3(get)]
    body: Py<PyAny>,
}

#[pymethods]
impl CapturedMessage {
    /// The attributes as a dict (the body as a dict when it has `to_dict()`).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("frame", self.frame)?;
        d.set_item("timestamp", self.timestamp)?;
        d.set_item("direction", self.direction)?;
        d.set_item("protocol", self.protocol)?;
        d.set_item("message_type", self.message_type)?;
        d.set_item("flags", self.flags)?;
        d.set_item("seq", self.seq)?;
        d.set_item("port", self.port)?;
        d.set_item("name", &self.name)?;
        d.set_item("kind", self.kind)?;
        d.set_item(
            "body",
            crate::records::plain(py, self.body.bind(py).clone())?,
        )?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "<CapturedMessage frame={} {} {} {}>",
            self.frame, self.direction, self.name, self.kind
        )
    }
}

fn kernel_error(py: Python<'_>, k: &KernelError) -> Py<PyAny> {
    to_py(py, Error::Kernel(k.clone()))
        .into_value(py)
        .into_any()
}

fn body_py(py: Python<'_>, b: &Body) -> PyResult<Py<PyAny>> {
    Ok(match b {
        Body::Entry(e) => Entry::from_core(py, e.clone())?.into_py_any(py)?,
        Body::Expectation(e) => Expectation::from(e.clone()).into_py_any(py)?,
        Body::Stats(s) => GlobalStats::from(s).into_py_any(py)?,
        Body::CpuStats(s) => CpuStats::from(s).into_py_any(py)?,
        Body::ExpectCpuStats(s) => ExpectCpuStats {
            cpu: s.cpu,
            new: s.new,
            create: s.create,
            delete: s.delete,
        }
        .into_py_any(py)?,
        Body::TimeoutPolicy(p) => TimeoutPolicy { inner: p.clone() }.into_py_any(py)?,
        Body::Family(f) => GenlFamily::from(f).into_py_any(py)?,
        Body::IpvsService(s) => Service::from(s).into_py_any(py)?,
        Body::IpvsDest(k, d) => Destination::new(*k, d).into_py_any(py)?,
        Body::IpvsDaemon(d) => SyncDaemon::from(d).into_py_any(py)?,
        Body::IpvsConfig(t) => IpvsTimeouts::from(t).into_py_any(py)?,
        Body::IpvsInfo(i) => IpvsInfo::from(i).into_py_any(py)?,
        Body::Error(k) => kernel_error(py, k),
        Body::Invalid(e) => decode_error(py, e).into_value(py).into_any(),
        Body::Ack | Body::Done | Body::Noop | Body::Overrun | Body::Request | Body::Other => {
            py.None()
        }
    })
}

fn message(py: Python<'_>, m: &DecodedMessage) -> PyResult<CapturedMessage> {
    Ok(CapturedMessage {
        frame: m.frame,
        timestamp: m.timestamp.as_secs_f64(),
        direction: direction_name(m.direction),
        protocol: m.protocol,
        message_type: m.header.message_type,
        flags: m.header.flags,
        seq: m.header.sequence,
        port: m.header.port,
        name: m.name.to_string(),
        kind: m.body.kind(),
        body: body_py(py, &m.body)?,
    })
}

/// A decoded capture: its messages, and what the decoder learned from it.
#[pyclass(frozen, module = "ipvsct", name = "Capture")]
pub struct Capture {
    /// Every netlink message, in capture order.
    #[pyo3(get)]
    messages: Py<PyList>,
    /// Number of pcap records (datagrams).
    #[pyo3(get)]
    records: usize,
    /// The IPVS generic netlink family id used (given, or found in the capture).
    #[pyo3(get)]
    ipvs_family: Option<u16>,
    /// The default state timeouts found in the capture (joined into its entries).
    #[pyo3(get)]
    timeouts: Option<StateTimeouts>,
}

#[pymethods]
impl Capture {
    /// The bodies of one kind (`"entry"`, `"ipvs_service"`, …), in capture order.
    fn bodies<'py>(&self, py: Python<'py>, kind: &str) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for m in self.messages.bind(py).iter() {
            let m = m.cast_into::<CapturedMessage>()?;
            let m = m.get();
            if m.kind == kind {
                out.append(m.body.bind(py))?;
            }
        }
        Ok(out)
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.messages.bind(py).len()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "<Capture records={} messages={} ipvs_family={}>",
            self.records,
            self.messages.bind(py).len(),
            self.ipvs_family
                .map_or_else(|| "None".to_owned(), |f| f.to_string())
        )
    }
}

fn capture_error(py: Python<'_>, path: &std::path::Path, e: CaptureError) -> PyErr {
    match e {
        CaptureError::Io { source, .. } => pyo3::exceptions::PyOSError::new_err((
            source.raw_os_error().unwrap_or(0),
            source.to_string(),
            path.display().to_string(),
        )),
        other => {
            let Ok(x) = crate::errors::exceptions(py) else {
                return pyo3::exceptions::PyValueError::new_err(other.to_string());
            };
            PyErr::from_type(
                x.decode.bind(py).clone(),
                format!("{}: {other}", path.display()),
            )
        }
    }
}

/// Decodes a netlink capture file (pcap or pcapng of LINKTYPE_NETLINK) into a `Capture`.
/// `ipvs_family` is the IPVS generic netlink id when the capture lacks the nlctrl lookup.
#[pyfunction]
#[pyo3(signature = (path, *, ipvs_family=None))]
pub fn decode_pcap(py: Python<'_>, path: PathBuf, ipvs_family: Option<u16>) -> PyResult<Capture> {
    let opts = DecodeOptions {
        ipvs_family_id: ipvs_family,
    };
    let decoded = py
        .detach(|| decode_pcap_file(&path, &opts))
        .map_err(|e| capture_error(py, &path, e))?;
    let messages = PyList::empty(py);
    for m in &decoded.messages {
        messages.append(message(py, m)?)?;
    }
    Ok(Capture {
        messages: messages.unbind(),
        records: decoded.records,
        ipvs_family: decoded.ipvs_family_id,
        timeouts: decoded.timeouts.map(|inner| StateTimeouts { inner }),
    })
}
