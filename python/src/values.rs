//! Small frozen value classes mirroring plain structs of the core (counters, timestamps,
//! NAT ranges, statistics, per-protocol timeouts, …), and the helpers they share.

use ipvs_conntrack::conntrack::entry as core_entry;
use ipvs_conntrack::conntrack::stats as core_stats;
use ipvs_conntrack::conntrack::timeout as core_timeout;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use pyo3::IntoPyObjectExt;
use std::net::IpAddr;

/// `repr()` of a value converted to Python.
pub fn py_repr<'py, T>(py: Python<'py>, v: T) -> PyResult<String>
where
    T: IntoPyObject<'py>,
{
    Ok(v.into_bound_py_any(py)?.repr()?.to_string())
}

/// A point in time as an aware `datetime.datetime` in UTC.
pub fn py_time(py: Python<'_>, t: std::time::SystemTime) -> PyResult<Bound<'_, PyAny>> {
    let secs = match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    };
    let dt = py.import("datetime")?;
    let utc = dt.getattr("timezone")?.getattr("utc")?;
    dt.getattr("datetime")?
        .call_method1("fromtimestamp", (secs, utc))
}

/// Declares a frozen Python class with read-only attributes copied from a core struct,
/// plus `__repr__`, `__eq__`, `__hash__` and `to_dict()`.
macro_rules! value_class {
    (
        $(#[$meta:meta])*
        $name:ident = $pyname:literal from $core:ty {
            $( $(#[$fmeta:meta])* $field:ident: $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[pyclass(frozen, get_all, eq, hash, module = "ipvsct", name = $pyname)]
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl From<&$core> for $name {
            fn from(c: &$core) -> Self {
                $name { $( $field: c.$field.clone(), )* }
            }
        }

        #[pymethods]
        impl $name {
            fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
                let parts: Vec<String> = vec![
                    $( format!("{}={}", stringify!($field), $crate::values::py_repr(py, self.$field.clone())?), )*
                ];
                Ok(format!("{}({})", $pyname, parts.join(", ")))
            }

            /// The attributes as a dict.
            pub fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
                let d = PyDict::new(py);
                $( d.set_item(stringify!($field), self.$field.clone())?; )*
                Ok(d)
            }
        }
    };
}

value_class! {
    /// Packet and byte counters of one direction.
    Counters = "Counters" from core_entry::Counters {
        /// Packets.
        packets: u64,
        /// Bytes.
        bytes: u64,
    }
}

value_class! {
    /// Start and stop time of a connection, nanoseconds since the epoch.
    Timestamp = "Timestamp" from core_entry::Timestamp {
        /// CTA_TIMESTAMP_START.
        start: Option<u64>,
        /// CTA_TIMESTAMP_STOP.
        stop: Option<u64>,
    }
}

value_class! {
    /// TCP sequence adjustment of one direction.
    SeqAdj = "SeqAdj" from core_entry::SeqAdj {
        /// CTA_SEQADJ_CORRECTION_POS.
        correction_pos: Option<u32>,
        /// CTA_SEQADJ_OFFSET_BEFORE.
        offset_before: Option<i32>,
        /// CTA_SEQADJ_OFFSET_AFTER.
        offset_after: Option<i32>,
    }
}

value_class! {
    /// SYN proxy state.
    Synproxy = "Synproxy" from core_entry::Synproxy {
        /// CTA_SYNPROXY_ISN.
        isn: Option<u32>,
        /// CTA_SYNPROXY_ITS.
        its: Option<u32>,
        /// CTA_SYNPROXY_TSOFF.
        tsoff: Option<u32>,
    }
}

value_class! {
    /// A NAT range.
    NatRange = "NatRange" from core_entry::NatRange {
        /// Lowest address.
        min_ip: Option<IpAddr>,
        /// Highest address.
        max_ip: Option<IpAddr>,
        /// Lowest port.
        min_port: Option<u16>,
        /// Highest port.
        max_port: Option<u16>,
    }
}

value_class! {
    /// The ctnetlink message an entry came in.
    MessageInfo = "MessageInfo" from core_entry::MessageInfo {
        /// IPCTNL_MSG_CT_* message number.
        msg: u8,
        /// Netlink header flags.
        flags: u16,
        /// nfnetlink resource id.
        res_id: u16,
    }
}

value_class! {
    /// Global table size: entries now and `nf_conntrack_max`.
    GlobalStats = "GlobalStats" from core_stats::GlobalStats {
        /// Entries in the table now.
        entries: u32,
        /// `nf_conntrack_max`.
        max_entries: Option<u32>,
    }
}

value_class! {
    /// Per-CPU conntrack counters (absent counters are None).
    CpuStats = "CpuStats" from core_stats::CpuStats {
        /// CPU number.
        cpu: u16,
        /// CTA_STATS_SEARCHED.
        searched: Option<u32>,
        /// CTA_STATS_FOUND.
        found: Option<u32>,
        /// CTA_STATS_NEW.
        new: Option<u32>,
        /// CTA_STATS_INVALID.
        invalid: Option<u32>,
        /// CTA_STATS_IGNORE.
        ignore: Option<u32>,
        /// CTA_STATS_DELETE.
        delete: Option<u32>,
        /// CTA_STATS_DELETE_LIST.
        delete_list: Option<u32>,
        /// CTA_STATS_INSERT.
        insert: Option<u32>,
        /// CTA_STATS_INSERT_FAILED.
        insert_failed: Option<u32>,
        /// CTA_STATS_DROP.
        drop: Option<u32>,
        /// CTA_STATS_EARLY_DROP.
        early_drop: Option<u32>,
        /// CTA_STATS_ERROR.
        error: Option<u32>,
        /// CTA_STATS_SEARCH_RESTART.
        search_restart: Option<u32>,
        /// CTA_STATS_CLASH_RESOLVE.
        clash_resolve: Option<u32>,
        /// CTA_STATS_CHAIN_TOOLONG.
        chaintoolong: Option<u32>,
    }
}

value_class! {
    /// TCP state timeouts in seconds.
    TcpTimeouts = "TcpTimeouts" from core_timeout::TcpTimeouts {
        /// SYN_SENT.
        syn_sent: Option<u32>,
        /// SYN_RECV.
        syn_recv: Option<u32>,
        /// ESTABLISHED.
        established: Option<u32>,
        /// FIN_WAIT.
        fin_wait: Option<u32>,
        /// CLOSE_WAIT.
        close_wait: Option<u32>,
        /// LAST_ACK.
        last_ack: Option<u32>,
        /// TIME_WAIT.
        time_wait: Option<u32>,
        /// CLOSE.
        close: Option<u32>,
        /// SYN_SENT2.
        syn_sent2: Option<u32>,
        /// Retransmissions (RETRANS).
        retrans: Option<u32>,
        /// Unacknowledged data (UNACK).
        unack: Option<u32>,
    }
}

value_class! {
    /// Unreplied/replied timeouts in seconds (UDP, UDP-Lite, GRE).
    UdpTimeouts = "UdpTimeouts" from core_timeout::UdpTimeouts {
        /// Before a reply (and until the flow is a stream).
        unreplied: Option<u32>,
        /// Once the flow is a stream (ASSURED).
        replied: Option<u32>,
    }
}

value_class! {
    /// SCTP state timeouts in seconds.
    SctpTimeouts = "SctpTimeouts" from core_timeout::SctpTimeouts {
        /// CLOSED.
        closed: Option<u32>,
        /// COOKIE_WAIT.
        cookie_wait: Option<u32>,
        /// COOKIE_ECHOED.
        cookie_echoed: Option<u32>,
        /// ESTABLISHED.
        established: Option<u32>,
        /// SHUTDOWN_SENT.
        shutdown_sent: Option<u32>,
        /// SHUTDOWN_RECD.
        shutdown_recd: Option<u32>,
        /// SHUTDOWN_ACK_SENT.
        shutdown_ack_sent: Option<u32>,
        /// HEARTBEAT_SENT.
        heartbeat_sent: Option<u32>,
        /// HEARTBEAT_ACKED.
        heartbeat_acked: Option<u32>,
    }
}

value_class! {
    /// DCCP state timeouts in seconds.
    DccpTimeouts = "DccpTimeouts" from core_timeout::DccpTimeouts {
        /// REQUEST.
        request: Option<u32>,
        /// RESPOND.
        respond: Option<u32>,
        /// PARTOPEN.
        partopen: Option<u32>,
        /// OPEN.
        open: Option<u32>,
        /// CLOSEREQ.
        closereq: Option<u32>,
        /// CLOSING.
        closing: Option<u32>,
        /// TIMEWAIT.
        timewait: Option<u32>,
    }
}

/// The helper assigned to an entry.
#[pyclass(frozen, eq, hash, module = "ipvsct", name = "Helper")]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Helper {
    /// CTA_HELP_NAME.
    #[pyo3(get)]
    pub name: String,
    info: Vec<u8>,
}

impl From<&core_entry::Helper> for Helper {
    fn from(h: &core_entry::Helper) -> Self {
        Helper {
            name: h.name.clone(),
            info: h.info.clone(),
        }
    }
}

#[pymethods]
impl Helper {
    /// CTA_HELP_INFO (helper-private bytes).
    #[getter]
    fn info<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.info)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Helper(name={}, info={})",
            py_repr(py, &self.name)?,
            py_repr(py, self.info(py))?
        ))
    }

    /// The attributes as a dict.
    pub fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("name", &self.name)?;
        d.set_item("info", self.info(py))?;
        Ok(d)
    }
}

/// An attribute this library does not know, kept as raw bytes.
#[pyclass(frozen, eq, hash, module = "ipvsct", name = "RawAttr")]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RawAttr {
    /// Attribute type number.
    #[pyo3(get)]
    pub kind: u16,
    /// Whether NLA_F_NESTED was set.
    #[pyo3(get)]
    pub nested: bool,
    value: Vec<u8>,
}

impl From<&ipvs_conntrack::netlink::RawAttr> for RawAttr {
    fn from(a: &ipvs_conntrack::netlink::RawAttr) -> Self {
        RawAttr {
            kind: a.kind,
            nested: a.nested,
            value: a.value.clone(),
        }
    }
}

#[pymethods]
impl RawAttr {
    /// The value bytes.
    #[getter]
    fn value<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.value)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "RawAttr(kind={}, nested={}, value={})",
            self.kind,
            if self.nested { "True" } else { "False" },
            py_repr(py, self.value(py))?
        ))
    }

    /// The attributes as a dict.
    pub fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("kind", self.kind)?;
        d.set_item("nested", self.nested)?;
        d.set_item("value", self.value(py))?;
        Ok(d)
    }
}

/// A list of raw attributes as Python objects.
pub fn raw_list<'py>(
    py: Python<'py>,
    attrs: &[ipvs_conntrack::netlink::RawAttr],
) -> PyResult<Bound<'py, pyo3::types::PyList>> {
    pyo3::types::PyList::new(py, attrs.iter().map(RawAttr::from))
}

/// `to_dict()` of each raw attribute.
pub fn raw_dicts<'py>(
    py: Python<'py>,
    attrs: &[ipvs_conntrack::netlink::RawAttr],
) -> PyResult<Bound<'py, pyo3::types::PyList>> {
    let l = pyo3::types::PyList::empty(py);
    for a in attrs {
        l.append(RawAttr::from(a).to_dict(py)?)?;
    }
    Ok(l)
}

/// Table size, `nf_conntrack_max` and per-CPU counters.
#[pyclass(frozen, get_all, eq, module = "ipvsct", name = "Stats")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Entries in the table now.
    pub entries: u32,
    /// `nf_conntrack_max` (None if the kernel did not say).
    pub max_entries: Option<u32>,
    /// Counters of each CPU.
    pub per_cpu: Vec<CpuStats>,
    /// Counters summed over CPUs.
    pub total: CpuStats,
}

#[pymethods]
impl Stats {
    /// Entries that still fit before the table is full (`max_entries - entries`).
    #[getter]
    fn headroom(&self) -> Option<i64> {
        self.max_entries
            .map(|m| i64::from(m) - i64::from(self.entries))
    }

    /// Fraction of the table in use (`entries / max_entries`).
    #[getter]
    fn usage(&self) -> Option<f64> {
        self.max_entries
            .filter(|m| *m > 0)
            .map(|m| f64::from(self.entries) / f64::from(m))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Stats(entries={}, max_entries={}, cpus={}, headroom={})",
            self.entries,
            py_repr(py, self.max_entries)?,
            self.per_cpu.len(),
            py_repr(py, self.headroom())?
        ))
    }

    /// The attributes as a dict (counters as dicts).
    pub fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("entries", self.entries)?;
        d.set_item("max_entries", self.max_entries)?;
        let l = pyo3::types::PyList::empty(py);
        for c in &self.per_cpu {
            l.append(c.to_dict(py)?)?;
        }
        d.set_item("per_cpu", l)?;
        d.set_item("total", self.total.to_dict(py)?)?;
        Ok(d)
    }
}
