//! The exception hierarchy (`ipvsct.Error` and its subclasses) and the mapping from
//! the core's [`Error`] to it.

use ipvs_conntrack::{DecodeError, Error};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};
use pyo3::IntoPyObjectExt;

/// The exception classes, created once per interpreter.
pub struct Exceptions {
    /// `ipvsct.Error`: base of every error of this package.
    pub error: Py<PyType>,
    /// `ipvsct.NetlinkError`: the kernel answered with an errno.
    pub netlink: Py<PyType>,
    /// `ipvsct.DecodeError`: bytes that do not decode.
    pub decode: Py<PyType>,
    /// `ipvsct.PermissionError`: CAP_NET_ADMIN is missing.
    pub permission: Py<PyType>,
    /// `ipvsct.NamespaceError`: a network namespace cannot be opened or entered.
    pub namespace: Py<PyType>,
    /// `ipvsct.TimeoutError`: the kernel did not answer in time.
    pub timeout: Py<PyType>,
    /// `ipvsct.DumpInterruptedError`: the table changed during a dump.
    pub dump_interrupted: Py<PyType>,
    /// `ipvsct.UnsupportedError`: the running kernel lacks a feature.
    pub unsupported: Py<PyType>,
}

static EXCEPTIONS: PyOnceLock<Exceptions> = PyOnceLock::new();

/// Creates a class `name` with `bases` in module `ipvsct` through `type(...)`
/// (so that a class can have two bases, e.g. `PermissionError`).
fn new_class(
    py: Python<'_>,
    name: &str,
    bases: &[&Bound<'_, PyAny>],
    doc: &str,
    attrs: &[(&str, Py<PyAny>)],
) -> PyResult<Py<PyType>> {
    let ns = PyDict::new(py);
    ns.set_item("__module__", "ipvsct")?;
    ns.set_item("__doc__", doc)?;
    for (k, v) in attrs {
        ns.set_item(*k, v)?;
    }
    let bases = PyTuple::new(py, bases)?;
    let cls = py.get_type::<PyType>().call1((name, bases, ns))?;
    Ok(cls.cast_into::<PyType>()?.unbind())
}

fn create(py: Python<'_>) -> PyResult<Exceptions> {
    let builtins = py.import("builtins")?;
    let none = || py.None();
    let exception = builtins.getattr("Exception")?;
    let value_error = builtins.getattr("ValueError")?;
    let b_permission = builtins.getattr("PermissionError")?;
    let b_timeout = builtins.getattr("TimeoutError")?;

    let error = new_class(
        py,
        "Error",
        &[&exception],
        "Base class of every error raised by ipvsct.",
        &[("errno", none())],
    )?;
    let err = error.bind(py).clone().into_any();
    let netlink = new_class(
        py,
        "NetlinkError",
        &[&err],
        "The kernel answered a request with an error: `errno`, the kernel's extended-ACK \
         `message` (or None), the `request` that failed and the `offset` of the offending \
         attribute in it (or None).",
        &[("message", none()), ("request", none()), ("offset", none())],
    )?;
    let decode = new_class(
        py,
        "DecodeError",
        &[&err, &value_error],
        "Bytes that do not decode: `kind` of fault, attribute `path` and byte `offset`.",
        &[("kind", none()), ("path", none()), ("offset", none())],
    )?;
    // The builtin comes first so that OSError's errno/strerror win over Error.errno.
    let permission = new_class(
        py,
        "PermissionError",
        &[&b_permission, &err],
        "The caller lacks CAP_NET_ADMIN in the target network namespace.",
        &[("operation", none())],
    )?;
    let namespace = new_class(
        py,
        "NamespaceError",
        &[&err],
        "A network namespace could not be opened or entered (`netns`, `errno`).",
        &[("netns", none())],
    )?;
    let timeout = new_class(
        py,
        "TimeoutError",
        &[&b_timeout, &err],
        "The kernel did not answer within the client's timeout.",
        &[("operation", none())],
    )?;
    let dump_interrupted = new_class(
        py,
        "DumpInterruptedError",
        &[&err],
        "The kernel flagged the dump as interrupted (NLM_F_DUMP_INTR): the table changed \
         while it was read; the entries already returned may be inconsistent.",
        &[],
    )?;
    let unsupported = new_class(
        py,
        "UnsupportedError",
        &[&err],
        "The running kernel does not support a feature (`feature`, `detail`).",
        &[("feature", none()), ("detail", none())],
    )?;
    Ok(Exceptions {
        error,
        netlink,
        decode,
        permission,
        namespace,
        timeout,
        dump_interrupted,
        unsupported,
    })
}

/// The exception classes of this interpreter.
pub fn exceptions(py: Python<'_>) -> PyResult<&Exceptions> {
    EXCEPTIONS.get_or_try_init(py, || create(py))
}

/// Builds an exception instance of `cls` with `args` and extra attributes.
fn raise(
    py: Python<'_>,
    cls: &Py<PyType>,
    args: Bound<'_, PyTuple>,
    attrs: &[(&str, Py<PyAny>)],
) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let exc = cls.bind(py).call1(args)?;
        for (k, v) in attrs {
            exc.setattr(*k, v)?;
        }
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|e| e)
}

fn obj<'py, T>(py: Python<'py>, v: T) -> Py<PyAny>
where
    T: IntoPyObject<'py>,
{
    v.into_py_any(py).unwrap_or_else(|_| py.None())
}

/// Converts a decode error to `ipvsct.DecodeError`.
pub fn decode_error(py: Python<'_>, e: &DecodeError) -> PyErr {
    let Ok(x) = exceptions(py) else {
        return PyValueError::new_err(e.to_string());
    };
    let args = PyTuple::new(py, [e.to_string()]);
    let Ok(args) = args else {
        return PyValueError::new_err(e.to_string());
    };
    raise(
        py,
        &x.decode,
        args,
        &[
            ("kind", obj(py, kind_name(e))),
            ("path", obj(py, e.path.to_string())),
            ("offset", obj(py, e.offset)),
        ],
    )
}

/// Short name of a decode fault (`truncated`, `wrong_size`, …).
fn kind_name(e: &DecodeError) -> &'static str {
    use ipvs_conntrack::DecodeErrorKind as K;
    match e.kind {
        K::Truncated { .. } => "truncated",
        K::LengthTooSmall { .. } => "length_too_small",
        K::WrongSize { .. } => "wrong_size",
        K::Duplicate => "duplicate",
        K::Missing => "missing",
        K::BadString => "bad_string",
        K::UnexpectedMessage { .. } => "unexpected_message",
        K::InvalidValue => "invalid_value",
        _ => "other",
    }
}

/// Converts a core error to the matching Python exception.
pub fn to_py(py: Python<'_>, e: Error) -> PyErr {
    let x = match exceptions(py) {
        Ok(x) => x,
        Err(err) => return err,
    };
    let text = e.to_string();
    let tuple1 = |s: &str| PyTuple::new(py, [s]);
    let simple = |cls: &Py<PyType>, attrs: &[(&str, Py<PyAny>)]| match tuple1(&text) {
        Ok(args) => raise(py, cls, args, attrs),
        Err(err) => err,
    };
    let errno = obj(py, e.errno());
    match &e {
        Error::Kernel(k) => simple(
            &x.netlink,
            &[
                ("errno", obj(py, k.errno)),
                ("message", obj(py, k.message.clone())),
                ("request", obj(py, k.request)),
                ("offset", obj(py, k.offset)),
            ],
        ),
        Error::Permission { op } => {
            match PyTuple::new(py, [obj(py, 1i32), obj(py, text.as_str())]) {
                Ok(args) => raise(py, &x.permission, args, &[("operation", obj(py, *op))]),
                Err(err) => err,
            }
        }
        Error::Namespace { netns, .. } => simple(
            &x.namespace,
            &[("netns", obj(py, netns.as_str())), ("errno", errno)],
        ),
        Error::Timeout { op } => match PyTuple::new(py, [obj(py, 11i32), obj(py, text.as_str())]) {
            Ok(args) => raise(py, &x.timeout, args, &[("operation", obj(py, *op))]),
            Err(err) => err,
        },
        Error::Decode(d) => decode_error(py, d),
        Error::DumpInterrupted => simple(&x.dump_interrupted, &[]),
        Error::Unsupported { feature, detail } => simple(
            &x.unsupported,
            &[
                ("feature", obj(py, *feature)),
                ("detail", obj(py, detail.as_str())),
            ],
        ),
        Error::InvalidRequest(msg) => PyValueError::new_err(msg.clone()),
        _ => simple(&x.error, &[("errno", errno)]),
    }
}

/// A timeout raised by this package's own wait loop (no core error behind it).
pub fn timeout_error(py: Python<'_>, op: &'static str, seconds: f64) -> PyErr {
    let text = format!("{op}: timed out waiting for the kernel ({seconds} s)");
    let x = match exceptions(py) {
        Ok(x) => x,
        Err(err) => return err,
    };
    match PyTuple::new(py, [obj(py, 11i32), obj(py, text)]) {
        Ok(args) => raise(py, &x.timeout, args, &[("operation", obj(py, op))]),
        Err(err) => err,
    }
}

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let x = exceptions(py)?;
    m.add("Error", x.error.clone_ref(py))?;
    m.add("NetlinkError", x.netlink.clone_ref(py))?;
    m.add("DecodeError", x.decode.clone_ref(py))?;
    m.add("PermissionError", x.permission.clone_ref(py))?;
    m.add("NamespaceError", x.namespace.clone_ref(py))?;
    m.add("TimeoutError", x.timeout.clone_ref(py))?;
    m.add("DumpInterruptedError", x.dump_interrupted.clone_ref(py))?;
    m.add("UnsupportedError", x.unsupported.clone_ref(py))?;
    Ok(())
}
