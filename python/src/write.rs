//! The write path of `Conntrack`: create, update, delete, flush and batched creation
//! (`create_many`, reported item by item in `ipvsct.BatchResult`).

use std::net::IpAddr;
use std::time::Duration;

use ipvs_conntrack::conntrack::batch::{BatchOptions, BatchReport};
use ipvs_conntrack::conntrack::protoinfo::{DccpInfo, ProtoInfo, SctpInfo, TcpInfo};
use ipvs_conntrack::conntrack::{
    CreateRequest, DeleteRequest, Labels, NatRange, State, Status, UpdateRequest,
};
use ipvs_conntrack::Error;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::entry::Entry;
use crate::enums::state_from_py;
use crate::errors::{timeout_error, to_py};
use crate::expect::tuple_arg;

/// The keyword arguments `create()` takes (also the keys of `create_many()` dicts).
pub const CREATE_KEYS: &[&str] = &[
    "orig", "reply", "timeout", "zone", "status", "mark", "labels", "state", "vtags", "helper",
    "nat_src", "nat_dst", "master",
];

/// What `create()` was given.
#[derive(Default)]
pub struct CreateArgs<'py> {
    /// The original tuple (`Tuple`), or an `Entry` to recreate.
    pub orig: Option<Bound<'py, PyAny>>,
    /// The reply tuple (default: `orig` reversed).
    pub reply: Option<Bound<'py, PyAny>>,
    /// Seconds until expiry.
    pub timeout: Option<u32>,
    /// Zone.
    pub zone: Option<u16>,
    /// Status bits.
    pub status: Option<u32>,
    /// Mark.
    pub mark: Option<u32>,
    /// Label bits.
    pub labels: Option<Vec<u16>>,
    /// Protocol state (TCP, SCTP, DCCP).
    pub state: Option<Bound<'py, PyAny>>,
    /// SCTP verification tags (original, reply).
    pub vtags: Option<(u32, u32)>,
    /// Helper name.
    pub helper: Option<String>,
    /// Source NAT: an address or `(address, port)`.
    pub nat_src: Option<Bound<'py, PyAny>>,
    /// Destination NAT: an address or `(address, port)`.
    pub nat_dst: Option<Bound<'py, PyAny>>,
    /// Master connection (Tuple or Entry).
    pub master: Option<Bound<'py, PyAny>>,
}

impl<'py> CreateArgs<'py> {
    /// Reads the arguments from a dict of `create()` keyword arguments.
    pub fn from_dict(d: &Bound<'py, PyDict>) -> PyResult<Self> {
        for k in d.keys() {
            let k: String = k
                .extract()
                .map_err(|_| PyTypeError::new_err("create_many(): dict keys must be strings"))?;
            if !CREATE_KEYS.contains(&k.as_str()) {
                return Err(PyTypeError::new_err(format!(
                    "create_many(): unknown key {k:?} (create() takes {})",
                    CREATE_KEYS.join(", ")
                )));
            }
        }
        let get = |k: &str| -> PyResult<Option<Bound<'py, PyAny>>> {
            Ok(d.get_item(k)?.filter(|v| !v.is_none()))
        };
        fn ext<'py, T: for<'a> FromPyObject<'a, 'py>>(
            v: Option<Bound<'py, PyAny>>,
            k: &str,
        ) -> PyResult<Option<T>> {
            v.map(|v| {
                v.extract::<T>().map_err(|_| {
                    PyTypeError::new_err(format!("create_many(): bad value for {k:?}"))
                })
            })
            .transpose()
        }
        Ok(CreateArgs {
            orig: get("orig")?,
            reply: get("reply")?,
            timeout: ext(get("timeout")?, "timeout")?,
            zone: ext(get("zone")?, "zone")?,
            status: ext(get("status")?, "status")?,
            mark: ext(get("mark")?, "mark")?,
            labels: ext(get("labels")?, "labels")?,
            state: get("state")?,
            vtags: ext(get("vtags")?, "vtags")?,
            helper: ext(get("helper")?, "helper")?,
            nat_src: get("nat_src")?,
            nat_dst: get("nat_dst")?,
            master: get("master")?,
        })
    }
}

/// Protocol info for a state given from Python (`vtags` for SCTP).
fn protoinfo(
    proto: u8,
    state: &Bound<'_, PyAny>,
    vtags: Option<(u32, u32)>,
) -> PyResult<ProtoInfo> {
    let mut p = ProtoInfo::default();
    match state_from_py(proto, state)? {
        State::Tcp(s) => {
            p.tcp = Some(TcpInfo {
                state: Some(s),
                ..TcpInfo::default()
            })
        }
        State::Sctp(s) => {
            let (o, r) = vtags.ok_or_else(|| {
                PyValueError::new_err("an SCTP state needs vtags=(original, reply)")
            })?;
            p.sctp = Some(SctpInfo {
                state: Some(s),
                vtag_original: Some(o),
                vtag_reply: Some(r),
            })
        }
        State::Dccp(s) => {
            p.dccp = Some(DccpInfo {
                state: Some(s),
                ..DccpInfo::default()
            })
        }
        other => {
            return Err(PyValueError::new_err(format!(
                "state {other} cannot be set: only TCP, SCTP and DCCP entries carry a state"
            )))
        }
    }
    Ok(p)
}

/// A NAT target: an address, or `(address, port)`.
fn nat_range(v: &Bound<'_, PyAny>) -> PyResult<NatRange> {
    let (ip, port): (IpAddr, Option<u16>) = if let Ok(t) = v.cast::<PyTuple>() {
        t.extract()
            .map_err(|_| PyTypeError::new_err("NAT must be an address or (address, port)"))?
    } else {
        (
            v.extract()
                .map_err(|_| PyTypeError::new_err("NAT must be an address or (address, port)"))?,
            None,
        )
    };
    Ok(NatRange {
        min_ip: Some(ip),
        max_ip: Some(ip),
        min_port: port,
        max_port: port,
    })
}

/// Builds a create request.
pub fn create_request(a: &CreateArgs<'_>) -> PyResult<CreateRequest> {
    let orig = a
        .orig
        .as_ref()
        .ok_or_else(|| PyTypeError::new_err("create(): the original tuple is required"))?;
    let mut req = if let Ok(e) = orig.cast::<Entry>() {
        CreateRequest::from_entry(&e.get().inner)
    } else {
        let (t, zone) = tuple_arg(orig, "orig")?;
        let timeout = a.timeout.ok_or_else(|| {
            PyValueError::new_err("create(): timeout= is required for a new entry")
        })?;
        let mut r = CreateRequest::new(t, timeout);
        r.zone = zone;
        r
    };
    if let Some(r) = &a.reply {
        req.reply = tuple_arg(r, "reply")?.0;
    }
    if let Some(t) = a.timeout {
        req.attrs.timeout = Some(t);
    }
    if a.zone.is_some() {
        req.zone = a.zone;
    }
    if let Some(s) = a.status {
        req.attrs.status = Some(Status::from_bits_retain(s));
    }
    if a.mark.is_some() {
        req.attrs.mark = a.mark;
    }
    if let Some(l) = &a.labels {
        req.attrs.labels = Some(Labels(l.clone()));
    }
    if let Some(s) = &a.state {
        req.attrs.protoinfo = Some(protoinfo(req.orig.proto, s, a.vtags)?);
    }
    if a.helper.is_some() {
        req.attrs.helper = a.helper.clone();
    }
    if let Some(n) = &a.nat_src {
        req.nat_src = Some(nat_range(n)?);
    }
    if let Some(n) = &a.nat_dst {
        req.nat_dst = Some(nat_range(n)?);
    }
    if let Some(m) = &a.master {
        req.master = Some(tuple_arg(m, "master")?.0);
    }
    Ok(req)
}

/// What `update()` was given.
pub struct UpdateArgs<'a, 'py> {
    /// The entry (Tuple or Entry).
    pub target: &'a Bound<'py, PyAny>,
    /// Zone.
    pub zone: Option<u16>,
    /// New timeout.
    pub timeout: Option<u32>,
    /// Status bits to set.
    pub status: Option<u32>,
    /// New mark.
    pub mark: Option<u32>,
    /// Which mark bits change.
    pub mark_mask: Option<u32>,
    /// New label bits.
    pub labels: Option<Vec<u16>>,
    /// Which label bits change.
    pub labels_mask: Option<Vec<u16>>,
    /// New protocol state.
    pub state: Option<&'a Bound<'py, PyAny>>,
    /// SCTP verification tags.
    pub vtags: Option<(u32, u32)>,
    /// Helper ("" detaches).
    pub helper: Option<String>,
}

/// Builds an update request.
pub fn update_request(a: &UpdateArgs<'_, '_>) -> PyResult<UpdateRequest> {
    let (t, zone) = tuple_arg(a.target, "update() target")?;
    let mut req = UpdateRequest::new(t);
    req.zone = a.zone.or(zone);
    req.attrs.timeout = a.timeout;
    req.attrs.status = a.status.map(Status::from_bits_retain);
    req.attrs.mark = a.mark;
    req.attrs.mark_mask = a.mark_mask;
    req.attrs.labels = a.labels.clone().map(Labels);
    req.attrs.labels_mask = a.labels_mask.clone().map(Labels);
    if let Some(s) = a.state {
        req.attrs.protoinfo = Some(protoinfo(req.orig.proto, s, a.vtags)?);
    }
    req.attrs.helper = a.helper.clone();
    Ok(req)
}

/// How `delete()` finds its entry.
pub enum DeleteTarget {
    /// By tuple (and optionally id).
    Request(DeleteRequest),
    /// By id alone (found by a dump).
    Id(u32),
}

/// Builds a delete request.
pub fn delete_request(
    target: Option<&Bound<'_, PyAny>>,
    id: Option<u32>,
    zone: Option<u16>,
    reply: bool,
) -> PyResult<DeleteTarget> {
    let Some(target) = target.filter(|t| !t.is_none()) else {
        return match id {
            Some(id) => Ok(DeleteTarget::Id(id)),
            None => Err(PyTypeError::new_err(
                "delete() takes a Tuple, an Entry or id=",
            )),
        };
    };
    let mut req = if let Ok(e) = target.cast::<Entry>() {
        if reply {
            return Err(PyValueError::new_err(
                "reply=True applies to a Tuple, not to an Entry",
            ));
        }
        DeleteRequest::entry(&e.get().inner)
    } else {
        let (t, z) = tuple_arg(target, "delete() target")?;
        let mut r = if reply {
            DeleteRequest::reply(t)
        } else {
            DeleteRequest::orig(t)
        };
        r.zone = z;
        r
    };
    if zone.is_some() {
        req.zone = zone;
    }
    if id.is_some() {
        req.id = id;
    }
    Ok(DeleteTarget::Request(req))
}

/// Batch tuning from Python arguments.
pub fn batch_options(
    max_in_flight: Option<usize>,
    ack_timeout: Option<f64>,
) -> PyResult<BatchOptions> {
    let mut o = BatchOptions::default();
    if let Some(n) = max_in_flight {
        if n == 0 {
            return Err(PyValueError::new_err("max_in_flight must be at least 1"));
        }
        o.max_in_flight = n;
    }
    if let Some(t) = ack_timeout {
        if !(t.is_finite() && t > 0.0) {
            return Err(PyValueError::new_err(
                "ack_timeout must be a positive number of seconds",
            ));
        }
        o.ack_timeout = Duration::from_secs_f64(t);
    }
    Ok(o)
}

/// What happened to each request of `create_many()`.
#[pyclass(frozen, module = "ipvsct", name = "BatchResult")]
pub struct BatchResult {
    /// Requests sent.
    #[pyo3(get)]
    requests: usize,
    /// Requests the kernel acknowledged with success.
    #[pyo3(get)]
    succeeded: usize,
    /// Indices of the requests the kernel refused, in order.
    #[pyo3(get)]
    failed: Vec<usize>,
    /// Indices of the requests that got no answer at all (receive buffer overrun, timeout).
    #[pyo3(get)]
    lost: Vec<usize>,
    /// Datagrams sent.
    #[pyo3(get)]
    datagrams: usize,
    /// Seconds the whole exchange took.
    #[pyo3(get)]
    elapsed: f64,
    errors: Py<PyList>,
}

impl BatchResult {
    /// Converts the core's report: one error object (or None) per request.
    pub fn new(py: Python<'_>, r: BatchReport) -> PyResult<Self> {
        let errors: Vec<Option<Py<PyAny>>> = (0..r.requests).map(|_| None).collect();
        let list = PyList::new(py, errors)?;
        for f in &r.failures {
            let e = to_py(py, Error::Kernel(f.error.clone()));
            list.set_item(f.index, e.value(py))?;
        }
        for i in &r.lost {
            let e = timeout_error(py, "conntrack batch acknowledgement", 0.0);
            list.set_item(*i, e.value(py))?;
        }
        Ok(BatchResult {
            requests: r.requests,
            succeeded: r.succeeded,
            failed: r.failures.iter().map(|f| f.index).collect(),
            lost: r.lost.clone(),
            datagrams: r.datagrams,
            elapsed: r.elapsed.as_secs_f64(),
            errors: list.unbind(),
        })
    }
}

#[pymethods]
impl BatchResult {
    /// One item per request: None if it succeeded, else the exception it would have
    /// raised alone (`NetlinkError` with the kernel's errno; `TimeoutError` if lost).
    #[getter]
    fn errors<'py>(&self, py: Python<'py>) -> Bound<'py, PyList> {
        self.errors.bind(py).clone()
    }

    /// True if every request succeeded.
    #[getter]
    fn ok(&self) -> bool {
        self.failed.is_empty() && self.lost.is_empty() && self.succeeded == self.requests
    }

    fn __repr__(&self) -> String {
        format!(
            "BatchResult(requests={}, succeeded={}, failed={}, lost={}, datagrams={}, elapsed={:.3})",
            self.requests,
            self.succeeded,
            self.failed.len(),
            self.lost.len(),
            self.datagrams,
            self.elapsed
        )
    }
}
