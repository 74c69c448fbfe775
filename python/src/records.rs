//! `record!`: frozen Python classes whose attributes are plain fields (numbers, strings,
//! addresses, other records), with `__repr__`, `__eq__` and a `to_dict()` that turns
//! nested records into dicts; and the small value wrappers such fields use.

use std::net::{IpAddr, SocketAddr};
use std::time::SystemTime;

use ipvs_conntrack::conntrack::Family;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::enums;
use crate::values::py_time;

/// A value with nested `to_dict()`-able objects turned into dicts (lists and tuples too).
pub fn plain<'py>(py: Python<'py>, v: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if let Ok(l) = v.cast::<PyList>() {
        let out = PyList::empty(py);
        for x in l.iter() {
            out.append(plain(py, x)?)?;
        }
        return Ok(out.into_any());
    }
    if let Ok(t) = v.cast::<PyTuple>() {
        let items = t
            .iter()
            .map(|x| plain(py, x))
            .collect::<PyResult<Vec<_>>>()?;
        return Ok(PyTuple::new(py, items)?.into_any());
    }
    if !v.is_instance_of::<PyDict>() && v.hasattr("to_dict")? {
        return v.call_method0("to_dict");
    }
    Ok(v)
}

/// Declares a frozen record class: read-only attributes, `__repr__`, `__eq__`, `to_dict()`.
macro_rules! record {
    (
        $(#[$meta:meta])*
        $name:ident = $pyname:literal {
            $( $(#[$fmeta:meta])* $field:ident: $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[pyclass(frozen, get_all, eq, module = "ipvsct", name = $pyname)]
        #[derive(Clone, Debug, PartialEq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        #[pymethods]
        impl $name {
            fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
                let parts: Vec<String> = vec![
                    $( format!("{}={}", stringify!($field), $crate::values::py_repr(py, self.$field.clone())?), )*
                ];
                Ok(format!("{}({})", $pyname, parts.join(", ")))
            }

            /// The attributes as a dict (nested objects as dicts).
            pub fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
                use pyo3::IntoPyObjectExt;
                let d = pyo3::types::PyDict::new(py);
                $( d.set_item(
                    stringify!($field),
                    $crate::records::plain(py, self.$field.clone().into_bound_py_any(py)?)?,
                )?; )*
                Ok(d)
            }
        }
    };
}

pub(crate) use record;

/// An address family, shown to Python as `ipvsct.Family`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FamilyValue(pub u8);

impl<'py> IntoPyObject<'py> for FamilyValue {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;
    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        enums::family(py, Family::from(self.0))
    }
}

/// A point in time, shown to Python as an aware `datetime` (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeValue(pub SystemTime);

impl<'py> IntoPyObject<'py> for TimeValue {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;
    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py_time(py, self.0)
    }
}

/// An address and port, shown to Python as `(ipaddress, port)`.
pub type Endpoint = (IpAddr, u16);

/// `(address, port)` of a socket address.
pub fn endpoint(s: &SocketAddr) -> Endpoint {
    (s.ip(), s.port())
}
