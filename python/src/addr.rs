//! `ipaddress.IPv4Address` / `IPv6Address` objects for decoded addresses, made cheaply.
//!
//! Calling the class runs its Python `__init__` (about 0.35 µs); instead the object is
//! allocated with `object.__new__` and its `_ip` slot set (what `__init__` does for an
//! int), after checking once that this gives objects equal to the constructor's (else
//! the constructor is used). Repeated addresses are kept in a small direct-mapped cache,
//! since real tables repeat addresses (virtual services, backends) heavily.

use std::net::IpAddr;
use std::sync::Mutex;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// Number of cache slots (a power of two).
const SLOTS: usize = 4096;

/// The recently made address objects, by slot (see [`slot`]).
static CACHE: Mutex<Vec<Slot>> = Mutex::new(Vec::new());

/// What the fast construction needs; `None` inside if the check failed.
static FAST: PyOnceLock<Option<Fast>> = PyOnceLock::new();

struct Fast {
    v4: Py<PyType>,
    v6: Py<PyType>,
    /// The slot descriptors `IPv4Address._ip`, `IPv6Address._ip` and
    /// `IPv6Address._scope_id`, with the function that sets a slot (`None` if the
    /// interpreter does not give it: then `setattr` is used).
    slots: Option<Slots>,
}

/// Slot descriptors of the address classes and their setter (see [`Fast`]).
struct Slots {
    v4_ip: Py<PyAny>,
    v6_ip: Py<PyAny>,
    v6_scope_id: Py<PyAny>,
    set: pyo3::ffi::descrsetfunc,
}

impl Slots {
    /// The descriptors, if they are slot members of one type whose setter the interpreter
    /// gives (`PyType_GetSlot` on a static type needs Python 3.10).
    fn load(v4: &Bound<'_, PyType>, v6: &Bound<'_, PyType>) -> Option<Slots> {
        let py = v4.py();
        let get = |t: &Bound<'_, PyType>, name: &str| -> Option<Py<PyAny>> {
            t.getattr(intern!(py, "__dict__"))
                .ok()?
                .get_item(name)
                .ok()
                .map(Bound::unbind)
        };
        let (v4_ip, v6_ip, v6_scope_id) = (get(v4, "_ip")?, get(v6, "_ip")?, get(v6, "_scope_id")?);
        let kind = v4_ip.bind(py).get_type();
        let same = v6_ip.bind(py).get_type().is(&kind) && v6_scope_id.bind(py).get_type().is(&kind);
        if !same || kind.name().ok()?.to_cow().ok()? != "member_descriptor" {
            return None;
        }
        // SAFETY: `kind` is a live type object; PyType_GetSlot returns the slot's function
        // pointer or NULL (with an exception set on interpreters that refuse static types,
        // which is cleared here).
        let f =
            unsafe { pyo3::ffi::PyType_GetSlot(kind.as_type_ptr(), pyo3::ffi::Py_tp_descr_set) };
        if f.is_null() {
            let _ = PyErr::take(py);
            return None;
        }
        // SAFETY: the Py_tp_descr_set slot of a type holds a `descrsetfunc`.
        let set =
            unsafe { std::mem::transmute::<*mut std::ffi::c_void, pyo3::ffi::descrsetfunc>(f) };
        Some(Slots {
            v4_ip,
            v6_ip,
            v6_scope_id,
            set,
        })
    }

    /// `descr.__set__(o, value)`.
    fn set(
        &self,
        descr: &Py<PyAny>,
        o: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        // SAFETY: `set` is the descriptor type's setter, called with live objects as it
        // expects (descriptor, instance, new value); it returns 0, or -1 with an exception
        // set, and does not steal references.
        let r = unsafe { (self.set)(descr.as_ptr(), o.as_ptr(), value.as_ptr()) };
        if r == 0 {
            Ok(())
        } else {
            Err(PyErr::fetch(o.py()))
        }
    }
}

/// The last upper half of an IPv6 address made into an int, and its int shifted into
/// place (`upper << 64`): the addresses of a table share few prefixes.
static UPPER: Mutex<Option<(u64, Py<PyAny>)>> = Mutex::new(None);

/// The Python int of an IPv6 address. Under the stable ABI, pyo3 makes a 128-bit int
/// from three ints, a shift and an or (about 0.9k instructions); here the shifted upper
/// half is kept for the next address with the same one.
fn v6_int<'py>(py: Python<'py>, v: u128) -> PyResult<Bound<'py, PyAny>> {
    let (upper, lower) = ((v >> 64) as u64, v as u64);
    let lower = lower.into_pyobject(py)?.into_any();
    if upper == 0 {
        return Ok(lower);
    }
    // Nothing is dropped and no Python code runs under the lock.
    let cached = {
        let last = UPPER.lock().unwrap_or_else(|p| p.into_inner());
        match &*last {
            Some((u, o)) if *u == upper => Some(o.clone_ref(py)),
            _ => None,
        }
    };
    let shifted = match cached {
        Some(o) => o.into_bound(py),
        None => {
            let o = upper.into_pyobject(py)?.lshift(64u32)?;
            let _evicted = UPPER
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .replace((upper, o.clone().unbind()));
            o
        }
    };
    shifted.bitor(lower)
}

/// The cache slot of an address (a multiplicative hash of its bits).
fn slot(a: &IpAddr) -> usize {
    let bits: u64 = match a {
        IpAddr::V4(v4) => u64::from(u32::from(*v4)),
        IpAddr::V6(v6) => {
            let b = u128::from(*v6);
            (b as u64) ^ ((b >> 64) as u64).rotate_left(29)
        }
    };
    (bits.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - SLOTS.trailing_zeros())) as usize
}

/// `ipaddress.ip_address(a)` through the constructor.
fn slow<'py>(py: Python<'py>, a: IpAddr) -> PyResult<Bound<'py, PyAny>> {
    a.into_pyobject(py)
}

impl Fast {
    fn load(py: Python<'_>) -> PyResult<Fast> {
        let ipaddress = py.import("ipaddress")?;
        let v4 = ipaddress.getattr("IPv4Address")?.cast_into::<PyType>()?;
        let v6 = ipaddress.getattr("IPv6Address")?.cast_into::<PyType>()?;
        Ok(Fast {
            slots: Slots::load(&v4, &v6),
            v4: v4.unbind(),
            v6: v6.unbind(),
        })
    }

    /// `object.__new__(cls)`: what it does for a class without `__new__` arguments,
    /// without the call.
    fn alloc<'py>(py: Python<'py>, cls: &Py<PyType>) -> PyResult<Bound<'py, PyAny>> {
        // SAFETY: `cls` is a live type object (held by `Fast`) and we are attached to the
        // interpreter; PyType_GenericAlloc returns a new reference or NULL with an
        // exception set, which `from_owned_ptr_or_err` turns into an error.
        unsafe {
            let o = pyo3::ffi::PyType_GenericAlloc(cls.bind(py).as_type_ptr(), 0);
            Bound::from_owned_ptr_or_err(py, o)
        }
    }

    fn make<'py>(&self, py: Python<'py>, a: IpAddr) -> PyResult<Bound<'py, PyAny>> {
        match (a, &self.slots) {
            (IpAddr::V4(v4), Some(s)) => {
                let o = Self::alloc(py, &self.v4)?;
                s.set(&s.v4_ip, &o, u32::from(v4).into_pyobject(py)?.as_any())?;
                Ok(o)
            }
            (IpAddr::V6(v6), Some(s)) => {
                let o = Self::alloc(py, &self.v6)?;
                s.set(&s.v6_ip, &o, &v6_int(py, u128::from(v6))?)?;
                s.set(&s.v6_scope_id, &o, py.None().bind(py))?;
                Ok(o)
            }
            (IpAddr::V4(v4), None) => {
                let o = Self::alloc(py, &self.v4)?;
                o.setattr(intern!(py, "_ip"), u32::from(v4))?;
                Ok(o)
            }
            (IpAddr::V6(v6), None) => {
                let o = Self::alloc(py, &self.v6)?;
                o.setattr(intern!(py, "_ip"), v6_int(py, u128::from(v6))?)?;
                o.setattr(intern!(py, "_scope_id"), py.None())?;
                Ok(o)
            }
        }
    }

    /// Whether fast objects equal the constructor's (same type, value, text and hash).
    fn check(&self, py: Python<'_>) -> PyResult<bool> {
        let samples: [IpAddr; 4] = [
            IpAddr::from([10, 1, 2, 3]),
            IpAddr::from([0, 0, 0, 0]),
            IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0x12, 0x3456]),
            IpAddr::from([0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201]),
        ];
        for a in samples {
            let (f, s) = (self.make(py, a)?, slow(py, a)?);
            if !f.get_type().is(s.get_type())
                || !f.eq(&s)?
                || f.str()?.to_cow()? != s.str()?.to_cow()?
                || f.repr()?.to_cow()? != s.repr()?.to_cow()?
                || f.hash()? != s.hash()?
            {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// A new `ipaddress` object of `a` (equal to `ipaddress.ip_address(str(a))`).
fn make<'py>(py: Python<'py>, a: IpAddr) -> PyResult<Bound<'py, PyAny>> {
    let fast = FAST.get_or_init(py, || {
        Fast::load(py).ok().filter(|f| f.check(py).unwrap_or(false))
    });
    match fast {
        Some(f) => f.make(py, a),
        None => slow(py, a),
    }
}

/// One cache slot: the last address that mapped here, and its object once the address
/// has been seen twice in a row in this slot (an address seen once is not kept: in a
/// stream of distinct addresses, keeping each would only delay its deallocation to a
/// moment when its memory is no longer in the CPU cache).
type Slot = Option<(IpAddr, Option<Py<PyAny>>)>;

/// What a look-up found.
enum Found {
    Hit(Py<PyAny>),
    /// Seen before in this slot: make the object and keep it.
    Again,
    /// Not seen: make the object (the slot now remembers the address); the object
    /// that was in the slot, if any, is to be dropped outside the lock.
    New(Option<Py<PyAny>>),
}

/// The `ipaddress` object of `a`, shared with earlier calls for recently repeated
/// addresses (address objects are immutable).
pub fn ip<'py>(py: Python<'py>, a: IpAddr) -> PyResult<Bound<'py, PyAny>> {
    let i = slot(&a);
    // Dropping a Python object can run Python code (weak reference callbacks), which
    // could come back here: nothing is dropped and no Python code runs under the lock.
    let found = {
        let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
        if cache.is_empty() {
            cache.resize_with(SLOTS, || None);
        }
        match cache.get_mut(i) {
            Some(Some((k, Some(o)))) if *k == a => Found::Hit(o.clone_ref(py)),
            Some(Some((k, None))) if *k == a => Found::Again,
            Some(s) => Found::New(s.replace((a, None)).and_then(|(_, o)| o)),
            None => Found::New(None),
        }
    };
    match found {
        Found::Hit(o) => Ok(o.into_bound(py)),
        Found::New(evicted) => {
            drop(evicted);
            make(py, a)
        }
        Found::Again => {
            let o = make(py, a)?;
            let _evicted = {
                let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
                cache
                    .get_mut(i)
                    .and_then(|s| s.replace((a, Some(o.clone().unbind()))))
            };
            Ok(o)
        }
    }
}
