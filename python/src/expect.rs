//! `ipvsct.Expectation` (a connection a helper expects) and `ipvsct.ExpectNat`, plus the
//! expectation calls of `Conntrack` (dump, create, delete, flush).

use ipvs_conntrack::conntrack::expect::{
    exact_mask, ExpectDeleteRequest, ExpectFlags, ExpectNat as CoreNat, ExpectRequest,
    Expectation as CoreExpectation,
};
use ipvs_conntrack::conntrack::Tuple as CoreTuple;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyType};

use crate::entry::{short_tuple, Entry, Tuple};
use crate::enums;
use crate::values::{py_repr, raw_dicts, raw_list, MessageInfo};

static EXPECT_FLAGS: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `ipvsct.ExpectFlags` of a flag word.
fn flags_py<'py>(py: Python<'py>, f: ExpectFlags) -> PyResult<Bound<'py, PyAny>> {
    EXPECT_FLAGS
        .import(py, "ipvsct._enums", "ExpectFlags")?
        .call1((f.bits(),))
}

/// The NAT part of an expectation: direction and the saved address and port.
#[pyclass(frozen, eq, hash, module = "ipvsct", name = "ExpectNat")]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExpectNat {
    inner: CoreNat,
}

#[pymethods]
impl ExpectNat {
    /// CTA_EXPECT_NAT_DIR: 0 original, 1 reply.
    #[getter]
    fn dir(&self) -> u32 {
        self.inner.dir
    }
    /// CTA_EXPECT_NAT_TUPLE (the source fields are the ones used).
    #[getter]
    fn tuple(&self) -> Tuple {
        Tuple::from(&self.inner.tuple)
    }
    /// The attributes as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("dir", self.inner.dir)?;
        d.set_item("tuple", self.tuple().to_dict(py)?)?;
        Ok(d)
    }
    fn __repr__(&self) -> String {
        format!(
            "ExpectNat(dir={}, tuple={})",
            self.inner.dir,
            short_tuple(&self.inner.tuple)
        )
    }
}

/// An expectation: a connection a helper (or user space) announced before it exists.
#[pyclass(frozen, eq, module = "ipvsct", name = "Expectation")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    pub(crate) inner: CoreExpectation,
}

impl From<CoreExpectation> for Expectation {
    fn from(inner: CoreExpectation) -> Self {
        Expectation { inner }
    }
}

#[pymethods]
impl Expectation {
    /// Address family.
    #[getter]
    fn family<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        enums::family(py, self.inner.family)
    }
    /// The message it came in.
    #[getter]
    fn message(&self) -> MessageInfo {
        MessageInfo::from(&self.inner.message)
    }
    /// CTA_EXPECT_MASTER: original tuple of the master connection.
    #[getter]
    fn master(&self) -> Tuple {
        Tuple::from(&self.inner.master)
    }
    /// CTA_EXPECT_TUPLE: the expected connection's tuple.
    #[getter]
    fn tuple(&self) -> Tuple {
        Tuple::from(&self.inner.tuple)
    }
    /// CTA_EXPECT_MASK: which bits of `tuple` must match.
    #[getter]
    fn mask(&self) -> Tuple {
        Tuple::from(&self.inner.mask)
    }
    /// Seconds left.
    #[getter]
    fn timeout(&self) -> Option<u32> {
        self.inner.timeout
    }
    /// CTA_EXPECT_ID.
    #[getter]
    fn id(&self) -> Option<u32> {
        self.inner.id
    }
    /// The master's helper.
    #[getter]
    fn helper(&self) -> Option<String> {
        self.inner.helper.clone()
    }
    /// Zone.
    #[getter]
    fn zone(&self) -> Option<u16> {
        self.inner.zone
    }
    /// CTA_EXPECT_FLAGS.
    #[getter]
    fn flags<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.flags.map(|f| flags_py(py, f)).transpose()
    }
    /// CTA_EXPECT_CLASS: the helper's expectation class.
    #[getter]
    fn class_(&self) -> Option<u32> {
        self.inner.class
    }
    /// CTA_EXPECT_NAT.
    #[getter]
    fn nat(&self) -> Option<ExpectNat> {
        self.inner.nat.clone().map(|inner| ExpectNat { inner })
    }
    /// CTA_EXPECT_FN: the function run when the expectation matches.
    #[getter]
    fn expect_fn(&self) -> Option<String> {
        self.inner.expect_fn.clone()
    }
    /// Attributes this library does not know, in order.
    #[getter]
    fn unknown<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        raw_list(py, &self.inner.unknown)
    }

    /// The attributes as a dict.
    pub fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let e = &self.inner;
        let d = PyDict::new(py);
        d.set_item("family", self.family(py)?)?;
        d.set_item("message", self.message().to_dict(py)?)?;
        d.set_item("master", self.master().to_dict(py)?)?;
        d.set_item("tuple", self.tuple().to_dict(py)?)?;
        d.set_item("mask", self.mask().to_dict(py)?)?;
        d.set_item("timeout", e.timeout)?;
        d.set_item("id", e.id)?;
        d.set_item("helper", e.helper.clone())?;
        d.set_item("zone", e.zone)?;
        d.set_item("flags", self.flags(py)?)?;
        d.set_item("class_", e.class)?;
        d.set_item("nat", self.nat().map(|n| n.to_dict(py)).transpose()?)?;
        d.set_item("expect_fn", e.expect_fn.clone())?;
        d.set_item("unknown", raw_dicts(py, &e.unknown)?)?;
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let e = &self.inner;
        Ok(format!(
            "<Expectation {} master={} helper={} timeout={} id={}>",
            short_tuple(&e.tuple),
            short_tuple(&e.master),
            py_repr(py, e.helper.clone())?,
            py_repr(py, e.timeout)?,
            py_repr(py, e.id)?,
        ))
    }
}

/// A tuple argument: a `Tuple`, or an `Entry` (its original tuple and zone).
pub fn tuple_arg(v: &Bound<'_, PyAny>, what: &str) -> PyResult<(CoreTuple, Option<u16>)> {
    if let Ok(t) = v.cast::<Tuple>() {
        let mut t = t.get().inner.clone();
        let zone = t.zone.take();
        return Ok((t, zone));
    }
    if let Ok(e) = v.cast::<Entry>() {
        let e = &e.get().inner;
        let mut t = e.orig.clone();
        let zone = t.zone.take().or(e.zone);
        t.unknown.clear();
        return Ok((t, zone));
    }
    Err(PyTypeError::new_err(format!(
        "{what} must be an ipvsct.Tuple or an ipvsct.Entry"
    )))
}

/// The arguments of `Conntrack.create_expectation()`.
pub struct ExpectArgs<'a, 'py> {
    /// The master connection (Tuple or Entry).
    pub master: &'a Bound<'py, PyAny>,
    /// The expected tuple.
    pub expected: &'a Bound<'py, PyAny>,
    /// Seconds.
    pub timeout: u32,
    /// The mask (default: exact match).
    pub mask: Option<&'a Bound<'py, PyAny>>,
    /// Zone.
    pub zone: Option<u16>,
    /// Helper name.
    pub helper: Option<String>,
    /// Flags.
    pub flags: Option<u32>,
    /// Class.
    pub class: Option<u32>,
    /// NAT direction and tuple.
    pub nat: Option<(u32, &'a Bound<'py, PyAny>)>,
    /// Expectation function.
    pub expect_fn: Option<String>,
    /// Update an existing expectation's timeout instead of creating one.
    pub update: bool,
}

/// Builds the create/update request.
pub fn expect_request(a: &ExpectArgs<'_, '_>) -> PyResult<ExpectRequest> {
    let (master, mzone) = tuple_arg(a.master, "master")?;
    let (tuple, _) = tuple_arg(a.expected, "expected")?;
    let mut r = ExpectRequest::new(master, tuple.clone(), a.timeout);
    r.mask = match a.mask {
        Some(m) => tuple_arg(m, "mask")?.0,
        None => exact_mask(&tuple),
    };
    r.zone = a.zone.or(mzone);
    r.helper = a.helper.clone();
    r.flags = a.flags.map(ExpectFlags::from_bits_retain);
    r.class = a.class;
    if let Some((dir, t)) = a.nat {
        r.nat = Some(CoreNat {
            dir,
            tuple: tuple_arg(t, "nat tuple")?.0,
        });
    }
    r.expect_fn = a.expect_fn.clone();
    r.update = a.update;
    Ok(r)
}

/// Builds the delete request: an `Expectation` (tuple, zone, id) or an expected `Tuple`.
pub fn delete_request(
    target: &Bound<'_, PyAny>,
    zone: Option<u16>,
    id: Option<u32>,
) -> PyResult<ExpectDeleteRequest> {
    let mut r = if let Ok(e) = target.cast::<Expectation>() {
        ExpectDeleteRequest::expectation(&e.get().inner)
    } else if let Ok(t) = target.cast::<Tuple>() {
        let mut t = t.get().inner.clone();
        let z = t.zone.take();
        let mut r = ExpectDeleteRequest::new(t);
        r.zone = z;
        r
    } else {
        return Err(PyTypeError::new_err(
            "delete_expectation() takes an ipvsct.Expectation or the expected ipvsct.Tuple",
        ));
    };
    if zone.is_some() {
        r.zone = zone;
    }
    if id.is_some() {
        r.id = id;
    }
    Ok(r)
}
