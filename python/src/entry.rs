//! `ipvsct.Entry` and what it holds: tuples and protocol info. An entry comes with the
//! Python objects of its most read attributes (`orig`, `state`, `timeout`,
//! `state_timeout`: struct members, read without calling into Rust); the others are
//! made when read.

use std::net::IpAddr;
use std::sync::Mutex;

use ipvs_conntrack::conntrack::protoinfo as core_pi;
use ipvs_conntrack::conntrack::tuple::{proto_from_name, proto_name, IPPROTO_ICMP, IPPROTO_ICMPV6};
use ipvs_conntrack::conntrack::{Entry as CoreEntry, Labels, State, Tuple as CoreTuple};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use pyo3::IntoPyObjectExt;

use crate::addr;
use crate::entry_pool::PooledEntry;
use crate::enums;
use crate::values::{
    py_repr, raw_dicts, raw_list, Counters, Helper, MessageInfo, NatRange, RawAttr, SeqAdj,
    Synproxy, Timestamp,
};

/// Parses an L4 protocol given from Python: a number or a name (`"tcp"`, `"udp"`, …).
pub fn proto_from_py(v: &Bound<'_, PyAny>) -> PyResult<u8> {
    if let Ok(s) = v.cast::<PyString>() {
        let s = s.to_cow()?;
        return proto_from_name(&s)
            .ok_or_else(|| PyValueError::new_err(format!("unknown L4 protocol {s:?}")));
    }
    let n: i64 = v
        .extract()
        .map_err(|_| PyTypeError::new_err("proto must be an int or a protocol name"))?;
    u8::try_from(n).map_err(|_| PyValueError::new_err(format!("L4 protocol {n} is not 0..=255")))
}

/// A connection tuple: addresses, L4 protocol, ports or ICMP fields, zone.
#[pyclass(frozen, eq, hash, module = "ipvsct", name = "Tuple")]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tuple {
    pub(crate) inner: CoreTuple,
}

impl From<&CoreTuple> for Tuple {
    fn from(t: &CoreTuple) -> Self {
        Tuple { inner: t.clone() }
    }
}

#[pymethods]
impl Tuple {
    /// Builds a tuple (for `Conntrack.get`); addresses as strings or `ipaddress` objects.
    #[new]
    #[pyo3(signature = (src, dst, proto, *, src_port=None, dst_port=None, icmp_type=None, icmp_code=None, icmp_id=None, zone=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        src: IpAddr,
        dst: IpAddr,
        proto: &Bound<'_, PyAny>,
        src_port: Option<u16>,
        dst_port: Option<u16>,
        icmp_type: Option<u8>,
        icmp_code: Option<u8>,
        icmp_id: Option<u16>,
        zone: Option<u16>,
    ) -> PyResult<Self> {
        if src.is_ipv4() != dst.is_ipv4() {
            return Err(PyValueError::new_err(
                "src and dst must both be IPv4 or both be IPv6",
            ));
        }
        let proto = proto_from_py(proto)?;
        Ok(Tuple {
            inner: CoreTuple {
                src,
                dst,
                proto,
                src_port,
                dst_port,
                icmp_type,
                icmp_code,
                icmp_id,
                zone,
                unknown: Vec::new(),
            },
        })
    }

    /// Source address.
    #[getter]
    fn src<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        addr::ip(py, self.inner.src)
    }
    /// Destination address.
    #[getter]
    fn dst<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        addr::ip(py, self.inner.dst)
    }
    /// L4 protocol number.
    #[getter]
    fn proto(&self) -> u8 {
        self.inner.proto
    }
    /// L4 protocol name (`tcp`, `udp`, …), or None if unknown.
    #[getter]
    fn proto_name(&self) -> Option<&'static str> {
        proto_name(self.inner.proto)
    }
    /// Source port (TCP, UDP, SCTP, DCCP, UDP-Lite; GRE key).
    #[getter]
    fn src_port(&self) -> Option<u16> {
        self.inner.src_port
    }
    /// Destination port.
    #[getter]
    fn dst_port(&self) -> Option<u16> {
        self.inner.dst_port
    }
    /// ICMP / ICMPv6 type.
    #[getter]
    fn icmp_type(&self) -> Option<u8> {
        self.inner.icmp_type
    }
    /// ICMP / ICMPv6 code.
    #[getter]
    fn icmp_code(&self) -> Option<u8> {
        self.inner.icmp_code
    }
    /// ICMP / ICMPv6 identifier.
    #[getter]
    fn icmp_id(&self) -> Option<u16> {
        self.inner.icmp_id
    }
    /// Tuple zone (CTA_TUPLE_ZONE).
    #[getter]
    fn zone(&self) -> Option<u16> {
        self.inner.zone
    }
    /// Attributes this library does not know, in order.
    #[getter]
    fn unknown<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        raw_list(py, &self.inner.unknown)
    }

    /// The reverse direction (addresses and ports swapped; ICMP echo request and reply).
    fn reversed(&self) -> Tuple {
        Tuple {
            inner: self.inner.reversed(),
        }
    }

    /// The attributes as a dict.
    pub fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let t = &self.inner;
        let d = PyDict::new(py);
        d.set_item("src", addr::ip(py, t.src)?)?;
        d.set_item("dst", addr::ip(py, t.dst)?)?;
        d.set_item("proto", t.proto)?;
        d.set_item("src_port", t.src_port)?;
        d.set_item("dst_port", t.dst_port)?;
        d.set_item("icmp_type", t.icmp_type)?;
        d.set_item("icmp_code", t.icmp_code)?;
        d.set_item("icmp_id", t.icmp_id)?;
        d.set_item("zone", t.zone)?;
        d.set_item("unknown", raw_dicts(py, &t.unknown)?)?;
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let t = &self.inner;
        let mut parts = vec![
            format!("src={}", py_repr(py, t.src)?),
            format!("dst={}", py_repr(py, t.dst)?),
            format!("proto={}", t.proto),
        ];
        let opt = [
            ("src_port", t.src_port.map(u32::from)),
            ("dst_port", t.dst_port.map(u32::from)),
            ("icmp_type", t.icmp_type.map(u32::from)),
            ("icmp_code", t.icmp_code.map(u32::from)),
            ("icmp_id", t.icmp_id.map(u32::from)),
            ("zone", t.zone.map(u32::from)),
        ];
        for (k, v) in opt {
            if let Some(v) = v {
                parts.push(format!("{k}={v}"));
            }
        }
        Ok(format!("Tuple({})", parts.join(", ")))
    }

    fn __str__(&self) -> String {
        short_tuple(&self.inner)
    }
}

/// `tcp 10.0.0.1:1000 -> 10.0.0.2:80` (IPv6 addresses in brackets when a port follows).
pub(crate) fn short_tuple(t: &CoreTuple) -> String {
    let addr = |a: IpAddr, p: Option<u16>| match (a, p) {
        (IpAddr::V6(v6), Some(p)) => format!("[{v6}]:{p}"),
        (a, Some(p)) => format!("{a}:{p}"),
        (a, None) => a.to_string(),
    };
    let proto = proto_name(t.proto).map_or_else(|| t.proto.to_string(), str::to_owned);
    let mut s = format!(
        "{proto} {} -> {}",
        addr(t.src, t.src_port),
        addr(t.dst, t.dst_port)
    );
    if matches!(t.proto, IPPROTO_ICMP | IPPROTO_ICMPV6) {
        if let (Some(ty), Some(code), Some(id)) = (t.icmp_type, t.icmp_code, t.icmp_id) {
            s.push_str(&format!(" type={ty} code={code} id={id}"));
        }
    }
    s
}

/// A flags/mask pair of TCP conntrack flags.
#[pyclass(frozen, eq, hash, module = "ipvsct", name = "TcpFlagsMask")]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TcpFlagsMask {
    inner: core_pi::TcpFlagsMask,
}

#[pymethods]
impl TcpFlagsMask {
    /// The flags.
    #[getter]
    fn flags<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        enums::tcp_flags(py, self.inner.flags)
    }
    /// Which flags the pair changes.
    #[getter]
    fn mask<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        enums::tcp_flags(py, self.inner.mask)
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "TcpFlagsMask(flags={}, mask={})",
            py_repr(py, self.flags(py)?)?,
            py_repr(py, self.mask(py)?)?
        ))
    }
    /// The attributes as a dict.
    pub fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("flags", self.flags(py)?)?;
        d.set_item("mask", self.mask(py)?)?;
        Ok(d)
    }
}

fn flags_mask(f: Option<core_pi::TcpFlagsMask>) -> Option<TcpFlagsMask> {
    f.map(|inner| TcpFlagsMask { inner })
}

/// TCP protocol info.
#[pyclass(frozen, eq, hash, module = "ipvsct", name = "TcpInfo")]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TcpInfo {
    inner: core_pi::TcpInfo,
}

#[pymethods]
impl TcpInfo {
    /// Conntrack TCP state.
    #[getter]
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner
            .state
            .map(|s| enums::tcp_state(py, s))
            .transpose()
    }
    /// Window scale of the original direction.
    #[getter]
    fn wscale_original(&self) -> Option<u8> {
        self.inner.wscale_original
    }
    /// Window scale of the reply direction.
    #[getter]
    fn wscale_reply(&self) -> Option<u8> {
        self.inner.wscale_reply
    }
    /// Flags of the original direction.
    #[getter]
    fn flags_original(&self) -> Option<TcpFlagsMask> {
        flags_mask(self.inner.flags_original)
    }
    /// Flags of the reply direction.
    #[getter]
    fn flags_reply(&self) -> Option<TcpFlagsMask> {
        flags_mask(self.inner.flags_reply)
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "TcpInfo(state={}, wscale_original={}, wscale_reply={}, flags_original={}, flags_reply={})",
            py_repr(py, self.state(py)?)?,
            py_repr(py, self.inner.wscale_original)?,
            py_repr(py, self.inner.wscale_reply)?,
            py_repr(py, self.flags_original())?,
            py_repr(py, self.flags_reply())?,
        ))
    }
    /// The attributes as a dict.
    pub fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("state", self.state(py)?)?;
        d.set_item("wscale_original", self.inner.wscale_original)?;
        d.set_item("wscale_reply", self.inner.wscale_reply)?;
        d.set_item(
            "flags_original",
            self.flags_original().map(|f| f.to_dict(py)).transpose()?,
        )?;
        d.set_item(
            "flags_reply",
            self.flags_reply().map(|f| f.to_dict(py)).transpose()?,
        )?;
        Ok(d)
    }
}

/// SCTP protocol info.
#[pyclass(frozen, eq, hash, module = "ipvsct", name = "SctpInfo")]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SctpInfo {
    inner: core_pi::SctpInfo,
}

#[pymethods]
impl SctpInfo {
    /// Conntrack SCTP state.
    #[getter]
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner
            .state
            .map(|s| enums::sctp_state(py, s))
            .transpose()
    }
    /// Verification tag of the original direction.
    #[getter]
    fn vtag_original(&self) -> Option<u32> {
        self.inner.vtag_original
    }
    /// Verification tag of the reply direction.
    #[getter]
    fn vtag_reply(&self) -> Option<u32> {
        self.inner.vtag_reply
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "SctpInfo(state={}, vtag_original={}, vtag_reply={})",
            py_repr(py, self.state(py)?)?,
            py_repr(py, self.inner.vtag_original)?,
            py_repr(py, self.inner.vtag_reply)?,
        ))
    }
    /// The attributes as a dict.
    pub fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("state", self.state(py)?)?;
        d.set_item("vtag_original", self.inner.vtag_original)?;
        d.set_item("vtag_reply", self.inner.vtag_reply)?;
        Ok(d)
    }
}

/// DCCP protocol info.
#[pyclass(frozen, eq, hash, module = "ipvsct", name = "DccpInfo")]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DccpInfo {
    inner: core_pi::DccpInfo,
}

#[pymethods]
impl DccpInfo {
    /// Conntrack DCCP state.
    #[getter]
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner
            .state
            .map(|s| enums::dccp_state(py, s))
            .transpose()
    }
    /// Role of the original sender.
    #[getter]
    fn role<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.role.map(|r| enums::dccp_role(py, r)).transpose()
    }
    /// Handshake sequence number.
    #[getter]
    fn handshake_seq(&self) -> Option<u64> {
        self.inner.handshake_seq
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "DccpInfo(state={}, role={}, handshake_seq={})",
            py_repr(py, self.state(py)?)?,
            py_repr(py, self.role(py)?)?,
            py_repr(py, self.inner.handshake_seq)?,
        ))
    }
    /// The attributes as a dict.
    pub fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("state", self.state(py)?)?;
        d.set_item("role", self.role(py)?)?;
        d.set_item("handshake_seq", self.inner.handshake_seq)?;
        Ok(d)
    }
}

/// Per-protocol state (CTA_PROTOINFO).
#[pyclass(frozen, eq, hash, module = "ipvsct", name = "ProtoInfo")]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProtoInfo {
    inner: core_pi::ProtoInfo,
}

#[pymethods]
impl ProtoInfo {
    /// TCP info, if present.
    #[getter]
    fn tcp(&self) -> Option<TcpInfo> {
        self.inner.tcp.clone().map(|inner| TcpInfo { inner })
    }
    /// SCTP info, if present.
    #[getter]
    fn sctp(&self) -> Option<SctpInfo> {
        self.inner.sctp.clone().map(|inner| SctpInfo { inner })
    }
    /// DCCP info, if present.
    #[getter]
    fn dccp(&self) -> Option<DccpInfo> {
        self.inner.dccp.clone().map(|inner| DccpInfo { inner })
    }
    /// Attributes this library does not know (at any depth), in order.
    #[getter]
    fn unknown<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        raw_list(py, &self.inner.unknown)
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "ProtoInfo(tcp={}, sctp={}, dccp={})",
            py_repr(py, self.tcp())?,
            py_repr(py, self.sctp())?,
            py_repr(py, self.dccp())?,
        ))
    }
    /// The attributes as a dict.
    pub fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("tcp", self.tcp().map(|x| x.to_dict(py)).transpose()?)?;
        d.set_item("sctp", self.sctp().map(|x| x.to_dict(py)).transpose()?)?;
        d.set_item("dccp", self.dccp().map(|x| x.to_dict(py)).transpose()?)?;
        d.set_item("unknown", raw_dicts(py, &self.inner.unknown)?)?;
        Ok(d)
    }
}

/// A conntrack entry with its state and state timeout (frozen).
///
/// The attributes nearly every caller reads are Python objects made with the entry and
/// exposed as struct members (Python reads them without calling into Rust); the others
/// are made from the decoded entry when read.
#[pyclass(frozen, eq, module = "ipvsct", name = "Entry")]
#[derive(Debug)]
pub struct Entry {
    /// Original direction tuple.
    #[pyo3(get)]
    orig: Py<Tuple>,
    /// Connection state (member of TcpState, SctpState, DccpState or UdpState), None for stateless protocols.
    #[pyo3(get)]
    state: Py<PyAny>,
    /// Seconds left before the entry expires, as the kernel sent it.
    #[pyo3(get)]
    timeout: Py<PyAny>,
    /// Full timeout of the current state under the policy in force, in seconds.
    #[pyo3(get)]
    state_timeout: Py<PyAny>,
    /// The decoded entry (every other attribute is made from it).
    pub(crate) inner: PooledEntry,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        // The Python-object fields are made from `inner`.
        *self.inner == *other.inner
    }
}

/// Number of slots of [`STATE_TIMEOUT_INTS`] (a power of two).
const STATE_TIMEOUT_SLOTS: usize = 16;

/// Python ints of recent state timeouts, by slot (direct-mapped on the value): the state
/// timeouts of a dump take few values (one per protocol state under the policy in
/// force), so entries share their int objects instead of each making one.
static STATE_TIMEOUT_INTS: Mutex<[IntSlot; STATE_TIMEOUT_SLOTS]> =
    Mutex::new([const { None }; STATE_TIMEOUT_SLOTS]);

/// A slot of [`STATE_TIMEOUT_INTS`]: a value and its Python int.
type IntSlot = Option<(u32, Py<PyAny>)>;

/// The Python int of a state timeout (None if absent), shared with recent entries.
fn state_timeout_int(py: Python<'_>, v: Option<u32>) -> PyResult<Py<PyAny>> {
    let Some(v) = v else {
        return Ok(py.None());
    };
    let slot =
        (v.wrapping_mul(0x9e37_79b1) >> (32 - STATE_TIMEOUT_SLOTS.trailing_zeros())) as usize;
    // Nothing is dropped and no Python code runs under the lock (a dropped object could
    // run Python code that comes back here).
    {
        let cache = STATE_TIMEOUT_INTS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(Some((k, o))) = cache.get(slot) {
            if *k == v {
                return Ok(o.clone_ref(py));
            }
        }
    }
    let o = v.into_pyobject(py)?.into_any().unbind();
    let _evicted = {
        let mut cache = STATE_TIMEOUT_INTS.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get_mut(slot)
            .and_then(|s| s.replace((v, o.clone_ref(py))))
    };
    Ok(o)
}

/// The Python objects of an entry's member attributes other than `orig`.
struct Members {
    state: Py<PyAny>,
    timeout: Py<PyAny>,
    state_timeout: Py<PyAny>,
}

impl Members {
    /// The objects of `e`'s attributes.
    fn new(py: Python<'_>, e: &CoreEntry) -> PyResult<Members> {
        Ok(Members {
            state: state_object(py, e.state)?,
            timeout: timeout_int(py, e.timeout)?,
            state_timeout: state_timeout_int(py, e.state_timeout)?,
        })
    }
}

/// The Python object of `Entry.state`.
fn state_object(py: Python<'_>, s: State) -> PyResult<Py<PyAny>> {
    Ok(enums::state(py, s)?.map_or_else(|| py.None(), Bound::unbind))
}

/// The Python int of `Entry.timeout` (None if absent).
fn timeout_int(py: Python<'_>, v: Option<u32>) -> PyResult<Py<PyAny>> {
    Ok(match v {
        Some(v) => v.into_pyobject(py)?.into_any().unbind(),
        None => py.None(),
    })
}

/// `make(new)` unless `new` equals `old` (then the object made of `old` is kept).
fn changed<V: PartialEq + Copy>(
    py: Python<'_>,
    old: V,
    new: V,
    make: fn(Python<'_>, V) -> PyResult<Py<PyAny>>,
) -> PyResult<Option<Py<PyAny>>> {
    if old == new {
        Ok(None)
    } else {
        make(py, new).map(Some)
    }
}

/// Whether the caller's reference to `o` is the only one (then nothing else can see `o`:
/// these classes take no weak references).
fn unique<T>(o: &Py<T>) -> bool {
    // SAFETY: `o` is a live object (the caller holds a reference), and the caller is
    // attached to the interpreter, whose lock guards reference counts (this is an abi3
    // module: the free-threaded interpreter does not load it).
    unsafe { pyo3::ffi::Py_REFCNT(o.as_ptr()) == 1 }
}

/// A pointer for writing the Rust value of `o`, derived from the object pointer (the
/// value lives inside the object, at the offset where `get` finds it).
fn value_ptr<T: pyo3::PyClass<Frozen = pyo3::pyclass::boolean_struct::True> + Sync>(
    o: &Py<T>,
) -> *mut T {
    let base = o.as_ptr().cast::<u8>();
    let offset = std::ptr::from_ref(o.get()) as usize - base as usize;
    base.wrapping_add(offset).cast::<T>()
}

impl Entry {
    /// The Python entry of a decoded entry.
    pub fn new(py: Python<'_>, inner: PooledEntry) -> PyResult<Entry> {
        let m = Members::new(py, &inner)?;
        Ok(Entry::with(
            Py::new(py, Tuple::from(&inner.orig))?,
            m,
            inner,
        ))
    }

    /// The entry of these objects.
    fn with(orig: Py<Tuple>, m: Members, inner: PooledEntry) -> Entry {
        Entry {
            orig,
            state: m.state,
            timeout: m.timeout,
            state_timeout: m.state_timeout,
            inner,
        }
    }

    /// The Python entry of a decoded entry, written into `old` (and its `orig` into
    /// `old.orig`) instead of a new object when nothing else refers to it any more: as
    /// CPython's own iterators reuse their result tuples, a dump iterator reuses the
    /// entry its caller has let go of, saving the allocation and deallocation of two
    /// objects per entry. Nobody can tell: an object is reused only when no one else
    /// holds a reference to it.
    pub fn recycle(
        py: Python<'_>,
        old: Option<Py<Entry>>,
        inner: PooledEntry,
    ) -> PyResult<Py<Entry>> {
        let Some(old) = old.filter(unique) else {
            return Py::new(py, Entry::new(py, inner)?);
        };
        // The new objects first: making them may run Python code (a garbage collection
        // and its finalizers), which could get hold of `old` (`gc.get_objects()`); the
        // uniqueness checks that allow the writes come after, with no Python code
        // between them and the writes.
        // Only the member objects whose values changed are replaced (consecutive
        // entries often share a state, a state timeout or a timeout).
        let was = &old.get().inner;
        let state = changed(py, was.state, inner.state, state_object)?;
        let timeout = changed(py, was.timeout, inner.timeout, timeout_int)?;
        let state_timeout = changed(
            py,
            was.state_timeout,
            inner.state_timeout,
            state_timeout_int,
        )?;
        let new_orig = if unique(&old.get().orig) {
            None
        } else {
            Some(Py::new(py, Tuple::from(&inner.orig))?)
        };
        if !unique(&old) || (new_orig.is_none() && !unique(&old.get().orig)) {
            drop(old);
            let orig = match new_orig {
                Some(t) => t,
                None => Py::new(py, Tuple::from(&inner.orig))?,
            };
            return Py::new(py, Entry::with(orig, Members::new(py, &inner)?, inner));
        }
        let e = value_ptr(&old);
        // SAFETY: `old` (and, unless replaced, its `orig`) is referenced only by us and,
        // being frozen, is borrowed by no one: no reference to its value is alive while
        // the value is written through the object pointer (the value sits in pyo3's
        // `UnsafeCell`). The replaced objects are dropped after the writes.
        let stale = unsafe {
            let stale_orig = match new_orig {
                Some(t) => Some(std::mem::replace(&mut (*e).orig, t)),
                None => {
                    let t = value_ptr(&(*e).orig);
                    (*t).inner.clone_from(&inner.orig);
                    None
                }
            };
            (
                stale_orig,
                state.map(|o| std::mem::replace(&mut (*e).state, o)),
                timeout.map(|o| std::mem::replace(&mut (*e).timeout, o)),
                state_timeout.map(|o| std::mem::replace(&mut (*e).state_timeout, o)),
                std::mem::replace(&mut (*e).inner, inner),
            )
        };
        drop(stale);
        Ok(old)
    }

    /// [`Entry::new`] of an entry by value.
    pub fn from_core(py: Python<'_>, inner: CoreEntry) -> PyResult<Entry> {
        Entry::new(py, PooledEntry::new(inner))
    }
}

fn labels(l: &Option<Labels>) -> Option<Vec<u16>> {
    l.as_ref().map(|l| l.0.clone())
}

#[pymethods]
impl Entry {
    /// Address family.
    #[getter]
    fn family<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        enums::family(py, self.inner.family)
    }
    /// The ctnetlink message this entry came in.
    #[getter]
    fn message(&self) -> MessageInfo {
        MessageInfo::from(&self.inner.message)
    }
    /// L4 protocol number (of the original tuple).
    #[getter]
    fn proto(&self) -> u8 {
        self.inner.orig.proto
    }
    /// Reply direction tuple.
    #[getter]
    fn reply(&self) -> Tuple {
        Tuple::from(&self.inner.reply)
    }
    /// Master connection tuple (expected connections).
    #[getter]
    fn master(&self) -> Option<Tuple> {
        self.inner.master.as_ref().map(Tuple::from)
    }
    /// Status bits.
    #[getter]
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        enums::status(py, self.inner.status)
    }
    /// Protocol info.
    #[getter]
    fn protoinfo(&self) -> Option<ProtoInfo> {
        self.inner
            .protoinfo
            .clone()
            .map(|inner| ProtoInfo { inner })
    }
    /// Helper.
    #[getter]
    fn helper(&self) -> Option<Helper> {
        self.inner.helper.as_ref().map(Helper::from)
    }
    /// Source NAT range (requests; not dumped by the kernel).
    #[getter]
    fn nat_src(&self) -> Option<NatRange> {
        self.inner.nat_src.as_ref().map(NatRange::from)
    }
    /// Destination NAT range (requests; not dumped by the kernel).
    #[getter]
    fn nat_dst(&self) -> Option<NatRange> {
        self.inner.nat_dst.as_ref().map(NatRange::from)
    }
    /// Estimated seconds since the state timer was last refreshed (`state_timeout - timeout`).
    #[getter]
    fn seconds_since_refresh(&self) -> Option<u32> {
        self.inner.seconds_since_refresh()
    }
    /// Connection mark.
    #[getter]
    fn mark(&self) -> Option<u32> {
        self.inner.mark
    }
    /// Mark mask (requests).
    #[getter]
    fn mark_mask(&self) -> Option<u32> {
        self.inner.mark_mask
    }
    /// Original direction counters.
    #[getter]
    fn counters_orig(&self) -> Option<Counters> {
        self.inner.counters_orig.as_ref().map(Counters::from)
    }
    /// Reply direction counters.
    #[getter]
    fn counters_reply(&self) -> Option<Counters> {
        self.inner.counters_reply.as_ref().map(Counters::from)
    }
    /// Reference count.
    #[getter]
    fn use_count(&self) -> Option<u32> {
        self.inner.use_count
    }
    /// Entry id.
    #[getter]
    fn id(&self) -> Option<u32> {
        self.inner.id
    }
    /// Original direction sequence adjustment.
    #[getter]
    fn seq_adj_orig(&self) -> Option<SeqAdj> {
        self.inner.seq_adj_orig.as_ref().map(SeqAdj::from)
    }
    /// Reply direction sequence adjustment.
    #[getter]
    fn seq_adj_reply(&self) -> Option<SeqAdj> {
        self.inner.seq_adj_reply.as_ref().map(SeqAdj::from)
    }
    /// Security mark (obsolete).
    #[getter]
    fn secmark(&self) -> Option<u32> {
        self.inner.secmark
    }
    /// Conntrack zone.
    #[getter]
    fn zone(&self) -> Option<u16> {
        self.inner.zone
    }
    /// Security context name.
    #[getter]
    fn secctx(&self) -> Option<String> {
        self.inner.secctx.clone()
    }
    /// Start/stop timestamps.
    #[getter]
    fn timestamp(&self) -> Option<Timestamp> {
        self.inner.timestamp.as_ref().map(Timestamp::from)
    }
    /// CTA_TIMESTAMP_EVENT: when an event happened, nanoseconds since the epoch (events only).
    #[getter]
    fn event_time(&self) -> Option<u64> {
        self.inner.event_time
    }
    /// Set label bits.
    #[getter]
    fn labels(&self) -> Option<Vec<u16>> {
        labels(&self.inner.labels)
    }
    /// Label mask bits (requests).
    #[getter]
    fn labels_mask(&self) -> Option<Vec<u16>> {
        labels(&self.inner.labels_mask)
    }
    /// SYN proxy state.
    #[getter]
    fn synproxy(&self) -> Option<Synproxy> {
        self.inner.synproxy.as_ref().map(Synproxy::from)
    }
    /// Status mask (requests).
    #[getter]
    fn status_mask(&self) -> Option<u32> {
        self.inner.status_mask
    }
    /// Top-level attributes this library does not know, in order.
    #[getter]
    fn unknown<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        raw_list(py, &self.inner.unknown)
    }

    /// Unknown attributes inside known nests, each with the type of the nest it was in.
    #[getter]
    fn unknown_nested<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(
            py,
            self.inner
                .unknown_nested
                .iter()
                .map(|(parent, a)| (*parent, RawAttr::from(a))),
        )
    }

    /// Every attribute as plain Python values (nested objects as dicts).
    pub fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let e = &self.inner;
        let d = PyDict::new(py);
        let opt_dict = |v: Option<Bound<'py, PyDict>>| -> PyResult<Bound<'py, PyAny>> {
            v.into_bound_py_any(py)
        };
        d.set_item("family", self.family(py)?)?;
        d.set_item("message", self.message().to_dict(py)?)?;
        d.set_item("state", self.state.bind(py))?;
        d.set_item("orig", self.orig.get().to_dict(py)?)?;
        d.set_item("reply", self.reply().to_dict(py)?)?;
        d.set_item(
            "master",
            opt_dict(self.master().map(|t| t.to_dict(py)).transpose()?)?,
        )?;
        d.set_item("status", self.status(py)?)?;
        d.set_item(
            "protoinfo",
            opt_dict(self.protoinfo().map(|p| p.to_dict(py)).transpose()?)?,
        )?;
        d.set_item(
            "helper",
            opt_dict(self.helper().map(|h| h.to_dict(py)).transpose()?)?,
        )?;
        d.set_item(
            "nat_src",
            opt_dict(self.nat_src().map(|n| n.to_dict(py)).transpose()?)?,
        )?;
        d.set_item(
            "nat_dst",
            opt_dict(self.nat_dst().map(|n| n.to_dict(py)).transpose()?)?,
        )?;
        d.set_item("timeout", e.timeout)?;
        d.set_item("state_timeout", e.state_timeout)?;
        d.set_item("mark", e.mark)?;
        d.set_item("mark_mask", e.mark_mask)?;
        d.set_item(
            "counters_orig",
            opt_dict(self.counters_orig().map(|c| c.to_dict(py)).transpose()?)?,
        )?;
        d.set_item(
            "counters_reply",
            opt_dict(self.counters_reply().map(|c| c.to_dict(py)).transpose()?)?,
        )?;
        d.set_item("use_count", e.use_count)?;
        d.set_item("id", e.id)?;
        d.set_item(
            "seq_adj_orig",
            opt_dict(self.seq_adj_orig().map(|s| s.to_dict(py)).transpose()?)?,
        )?;
        d.set_item(
            "seq_adj_reply",
            opt_dict(self.seq_adj_reply().map(|s| s.to_dict(py)).transpose()?)?,
        )?;
        d.set_item("secmark", e.secmark)?;
        d.set_item("zone", e.zone)?;
        d.set_item("secctx", e.secctx.clone())?;
        d.set_item(
            "timestamp",
            opt_dict(self.timestamp().map(|t| t.to_dict(py)).transpose()?)?,
        )?;
        d.set_item("event_time", e.event_time)?;
        d.set_item("labels", labels(&e.labels))?;
        d.set_item("labels_mask", labels(&e.labels_mask))?;
        d.set_item(
            "synproxy",
            opt_dict(self.synproxy().map(|s| s.to_dict(py)).transpose()?)?,
        )?;
        d.set_item("status_mask", e.status_mask)?;
        d.set_item("unknown", raw_dicts(py, &e.unknown)?)?;
        let nested = PyList::empty(py);
        for (parent, a) in &e.unknown_nested {
            nested.append((*parent, RawAttr::from(a).to_dict(py)?))?;
        }
        d.set_item("unknown_nested", nested)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let e = &self.inner;
        let mut s = format!("<Entry {} {}", short_tuple(&e.orig), e.state);
        let opt = |v: Option<u32>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        s.push_str(&format!(
            " timeout={}/{}",
            opt(e.timeout),
            opt(e.state_timeout)
        ));
        let names: Vec<_> = e.status.names().collect();
        if !names.is_empty() {
            s.push_str(&format!(" status={}", names.join("|")));
        }
        if let Some(m) = e.mark.filter(|m| *m != 0) {
            s.push_str(&format!(" mark={m}"));
        }
        if let Some(z) = e.zone {
            s.push_str(&format!(" zone={z}"));
        }
        if let Some(id) = e.id {
            s.push_str(&format!(" id={id}"));
        }
        s.push('>');
        s
    }
}
