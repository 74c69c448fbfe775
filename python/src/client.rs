//! `ipvsct.Conntrack` (one namespace's connection tracking table) and `ipvsct.DumpIterator`.
//!
//! Every call that talks to the kernel runs with the GIL released. Dumps run on a
//! socket of their own whose receives wait at most [`POLL`](crate::cursor::POLL), so
//! Ctrl-C is seen between waits, and other calls on the same client may run while a
//! dump is being iterated.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ipvs_conntrack::conntrack::timeout::StateTimeouts as CoreStateTimeouts;
use ipvs_conntrack::conntrack::{
    Conntrack as CoreConntrack, CpuStats as CoreCpuStats, DumpFilter, Entry as CoreEntry, Table,
};
use ipvs_conntrack::socket::{SocketOptions, DEFAULT_SO_RCVBUF};
use ipvs_conntrack::{Error, Netns};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

use crate::columns::Columns;
use crate::cursor::{run_to_end, Cursor, Step, STEP};
use crate::entry::{Entry, Tuple};
use crate::errors::{exceptions, timeout_error, to_py};
use crate::filter::{build, FilterArgs};
use crate::timeouts::StateTimeouts;
use crate::values::{py_repr, CpuStats, Stats};

/// Locks a mutex, ignoring poisoning (a panic never leaves these states half-written).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `ipvsct.Error("… is closed")`.
fn closed(py: Python<'_>, what: &str) -> PyErr {
    match exceptions(py) {
        Ok(x) => PyErr::from_type(x.error.bind(py).clone(), format!("{what} is closed")),
        Err(e) => e,
    }
}

/// Parses `netns=`: None, an `ip netns` name, a path (str or os.PathLike) or a pid.
fn netns_from_py(v: Option<&Bound<'_, PyAny>>) -> PyResult<Netns> {
    let Some(v) = v else {
        return Ok(Netns::Current);
    };
    if v.is_none() {
        return Ok(Netns::Current);
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(Netns::parse(&s.to_cow()?));
    }
    if let Ok(pid) = v.extract::<u32>() {
        if v.is_instance_of::<pyo3::types::PyBool>() {
            return Err(PyTypeError::new_err("netns must not be a bool"));
        }
        return Ok(Netns::pid(pid));
    }
    if let Ok(p) = v.extract::<PathBuf>() {
        return Ok(Netns::path(p));
    }
    Err(PyTypeError::new_err(
        "netns must be None, a namespace name, a path or a process id",
    ))
}

/// The core client and what it caches.
struct Client {
    ct: CoreConntrack,
    /// State timeouts joined into dumped entries (read once; None if unreadable).
    join: Option<Option<CoreStateTimeouts>>,
}

impl Client {
    fn join_timeouts(&mut self) -> Option<CoreStateTimeouts> {
        if self.join.is_none() {
            self.join = Some(self.ct.default_timeouts().ok());
        }
        self.join.clone().flatten()
    }
}

/// The connection tracking table of one network namespace.
#[pyclass(frozen, module = "ipvsct", name = "Conntrack")]
pub struct Conntrack {
    netns: Netns,
    timeout: Duration,
    client: Mutex<Option<Client>>,
}

impl Conntrack {
    /// Runs `f` on the core client with the GIL released.
    fn with_client<T, F>(&self, py: Python<'_>, f: F) -> PyResult<T>
    where
        T: Send,
        F: FnOnce(&mut Client) -> Result<T, Error> + Send,
    {
        let r = py.detach(|| {
            let mut g = lock(&self.client);
            g.as_mut().map(f)
        });
        match r {
            None => Err(closed(py, "Conntrack")),
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(to_py(py, e)),
        }
    }

    /// Starts a dump on a socket of its own.
    fn start(&self, py: Python<'_>, filter: &DumpFilter, table: Table) -> PyResult<Cursor> {
        let timeouts = self.with_client(py, |c| Ok(c.join_timeouts()))?;
        let netns = &self.netns;
        py.detach(|| Cursor::start(netns, table, filter, timeouts))
            .map_err(|e| to_py(py, e))
    }
}

#[pymethods]
impl Conntrack {
    /// Opens a client for the table of `netns` (None: this process's namespace).
    #[new]
    #[pyo3(signature = (netns=None, *, timeout=30.0))]
    fn new(py: Python<'_>, netns: Option<&Bound<'_, PyAny>>, timeout: f64) -> PyResult<Self> {
        if !(timeout.is_finite() && timeout > 0.0) {
            return Err(PyValueError::new_err(
                "timeout must be a positive number of seconds",
            ));
        }
        let timeout = Duration::from_secs_f64(timeout);
        let netns = netns_from_py(netns)?;
        let opts = SocketOptions {
            so_rcvbuf: DEFAULT_SO_RCVBUF,
            recv_timeout: Some(timeout),
        };
        let ct = py
            .detach(|| CoreConntrack::with_options(&netns, &opts))
            .map_err(|e| to_py(py, e))?;
        Ok(Conntrack {
            netns,
            timeout,
            client: Mutex::new(Some(Client { ct, join: None })),
        })
    }

    /// The namespace as given (None for this process's namespace).
    #[getter]
    fn netns(&self) -> Option<String> {
        match &self.netns {
            Netns::Current => None,
            other => Some(other.to_string()),
        }
    }

    /// Seconds a call waits for the kernel before raising TimeoutError.
    #[getter]
    fn timeout(&self) -> f64 {
        self.timeout.as_secs_f64()
    }

    /// Streams the table: an iterator of `Entry`, filtered in the kernel (and checked again here).
    #[pyo3(signature = (family=None, mark=None, zone=None, status=None, *, proto=None, src=None, dst=None, src_port=None, dst_port=None, reply_src=None, reply_dst=None, table="main", kernel_filter=true))]
    #[allow(clippy::too_many_arguments)]
    fn dump(
        &self,
        py: Python<'_>,
        family: Option<&Bound<'_, PyAny>>,
        mark: Option<&Bound<'_, PyAny>>,
        zone: Option<u16>,
        status: Option<&Bound<'_, PyAny>>,
        proto: Option<&Bound<'_, PyAny>>,
        src: Option<std::net::IpAddr>,
        dst: Option<std::net::IpAddr>,
        src_port: Option<u16>,
        dst_port: Option<u16>,
        reply_src: Option<std::net::IpAddr>,
        reply_dst: Option<std::net::IpAddr>,
        table: &str,
        kernel_filter: bool,
    ) -> PyResult<DumpIterator> {
        let (filter, table) = build(&FilterArgs {
            family,
            mark,
            zone,
            status,
            proto,
            src,
            dst,
            src_port,
            dst_port,
            reply_src,
            reply_dst,
            table,
            kernel_filter,
        })?;
        let cursor = self.start(py, &filter, table)?;
        Ok(DumpIterator {
            timeout: self.timeout,
            state: Mutex::new(IterState {
                cursor: Some(cursor),
                buf: VecDeque::new(),
                failed: None,
            }),
        })
    }

    /// The whole (filtered) table as a list of `Entry` (prefer `dump()` for large tables).
    #[pyo3(signature = (family=None, mark=None, zone=None, status=None, *, proto=None, src=None, dst=None, src_port=None, dst_port=None, reply_src=None, reply_dst=None, table="main", kernel_filter=true))]
    #[allow(clippy::too_many_arguments)]
    fn list<'py>(
        &self,
        py: Python<'py>,
        family: Option<&Bound<'py, PyAny>>,
        mark: Option<&Bound<'py, PyAny>>,
        zone: Option<u16>,
        status: Option<&Bound<'py, PyAny>>,
        proto: Option<&Bound<'py, PyAny>>,
        src: Option<std::net::IpAddr>,
        dst: Option<std::net::IpAddr>,
        src_port: Option<u16>,
        dst_port: Option<u16>,
        reply_src: Option<std::net::IpAddr>,
        reply_dst: Option<std::net::IpAddr>,
        table: &str,
        kernel_filter: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        let (filter, table) = build(&FilterArgs {
            family,
            mark,
            zone,
            status,
            proto,
            src,
            dst,
            src_port,
            dst_port,
            reply_src,
            reply_dst,
            table,
            kernel_filter,
        })?;
        let mut cursor = self.start(py, &filter, table)?;
        let mut all: Vec<CoreEntry> = Vec::new();
        run_to_end(py, self.timeout, "conntrack dump", || {
            cursor.step_entries(STEP, |e| all.push(e))
        })?;
        // Converting is a few hundred milliseconds for a large table: stay interruptible.
        let out = PyList::empty(py);
        for (i, e) in all.into_iter().enumerate() {
            if i % STEP == STEP - 1 {
                py.check_signals()?;
            }
            out.append(Entry::from(e))?;
        }
        Ok(out)
    }

    /// The (filtered) table as a pandas DataFrame, one row per entry, built column-wise.
    #[pyo3(signature = (family=None, mark=None, zone=None, status=None, *, proto=None, src=None, dst=None, src_port=None, dst_port=None, reply_src=None, reply_dst=None, table="main", kernel_filter=true))]
    #[allow(clippy::too_many_arguments)]
    fn dataframe<'py>(
        &self,
        py: Python<'py>,
        family: Option<&Bound<'py, PyAny>>,
        mark: Option<&Bound<'py, PyAny>>,
        zone: Option<u16>,
        status: Option<&Bound<'py, PyAny>>,
        proto: Option<&Bound<'py, PyAny>>,
        src: Option<std::net::IpAddr>,
        dst: Option<std::net::IpAddr>,
        src_port: Option<u16>,
        dst_port: Option<u16>,
        reply_src: Option<std::net::IpAddr>,
        reply_dst: Option<std::net::IpAddr>,
        table: &str,
        kernel_filter: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let frame = py.import("ipvsct._frame")?;
        // Fail before dumping when pandas is missing.
        frame.call_method0("require_pandas")?;
        let (filter, table) = build(&FilterArgs {
            family,
            mark,
            zone,
            status,
            proto,
            src,
            dst,
            src_port,
            dst_port,
            reply_src,
            reply_dst,
            table,
            kernel_filter,
        })?;
        let mut cursor = self.start(py, &filter, table)?;
        let mut cols = Columns::default();
        run_to_end(py, self.timeout, "conntrack dump", || {
            cursor.step_views(STEP, |v, t| Ok(cols.push(v, t)?))
        })?;
        frame.call_method1("build", (cols.into_py(py)?,))
    }

    /// The entry with this original tuple, or None. `orig` may be an `Entry` (to read it
    /// again); `zone` defaults to the tuple's zone, or the entry's.
    #[pyo3(signature = (orig, *, zone=None))]
    fn get(
        &self,
        py: Python<'_>,
        orig: &Bound<'_, PyAny>,
        zone: Option<u16>,
    ) -> PyResult<Option<Entry>> {
        let mut t = if let Ok(e) = orig.cast::<Entry>() {
            let e = e.get();
            let mut t = e.inner.orig.clone();
            t.zone = t.zone.or(e.inner.zone);
            t
        } else if let Ok(t) = orig.cast::<Tuple>() {
            t.get().inner.clone()
        } else {
            return Err(PyTypeError::new_err("get() takes a Tuple or an Entry"));
        };
        if zone.is_some() {
            t.zone = zone;
        }
        let r = self.with_client(py, move |c| match c.ct.get(&t) {
            Ok(e) => Ok(Some(e)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        })?;
        Ok(r.map(Entry::from))
    }

    /// Number of entries in the table now (never dumps the table).
    fn count(&self, py: Python<'_>) -> PyResult<u32> {
        self.with_client(py, |c| c.ct.count().map(|s| s.entries))
    }

    /// Table size, `nf_conntrack_max` and the per-CPU counters.
    fn stats(&self, py: Python<'_>) -> PyResult<Stats> {
        let (global, cpus) = self.with_client(py, |c| Ok((c.ct.count()?, c.ct.cpu_stats()?)))?;
        let total = CoreCpuStats::sum(&cpus);
        Ok(Stats {
            entries: global.entries,
            max_entries: global.max_entries,
            per_cpu: cpus.iter().map(CpuStats::from).collect(),
            total: CpuStats::from(&total),
        })
    }

    /// The default state timeouts (over cttimeout, or the namespace's sysctls).
    fn default_timeouts(&self, py: Python<'_>) -> PyResult<StateTimeouts> {
        let inner = self.with_client(py, |c| c.ct.default_timeouts())?;
        Ok(StateTimeouts { inner })
    }

    /// The state timeouts from the namespace's `nf_conntrack_*timeout*` sysctls.
    fn sysctl_timeouts(&self, py: Python<'_>) -> PyResult<StateTimeouts> {
        let inner = self.with_client(py, |c| c.ct.sysctl_timeouts())?;
        Ok(StateTimeouts { inner })
    }

    /// Closes the socket; later calls raise `ipvsct.Error`. Running dumps are not affected.
    fn close(&self, py: Python<'_>) {
        let old = py.detach(|| lock(&self.client).take());
        drop(old);
    }

    /// True once `close()` was called.
    #[getter]
    fn closed(&self, py: Python<'_>) -> bool {
        py.detach(|| lock(&self.client).is_none())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "<ipvsct.Conntrack netns={} timeout={}>",
            py_repr(py, self.netns())?,
            py_repr(py, self.timeout())?
        ))
    }
}

/// What a dump iterator holds between two `__next__` calls.
struct IterState {
    cursor: Option<Cursor>,
    /// Entries received and not yet returned (at most one step's worth).
    buf: VecDeque<CoreEntry>,
    /// The error that ended the dump, raised once `buf` is empty.
    failed: Option<Error>,
}

/// What one `__next__` attempt found.
enum Next {
    Entry(Box<CoreEntry>),
    /// Nothing to return yet, the dump goes on; `true` if the kernel sent nothing within the poll time.
    Again(bool),
    End,
    Failed(Error),
}

impl IterState {
    /// Returns a buffered entry, or receives the next step's worth first.
    fn next(&mut self) -> Next {
        if let Some(e) = self.buf.pop_front() {
            return Next::Entry(Box::new(e));
        }
        if let Some(e) = self.failed.take() {
            return Next::Failed(e);
        }
        let Some(cursor) = self.cursor.as_mut() else {
            return Next::End;
        };
        let buf = &mut self.buf;
        let step = cursor.step_entries(STEP, |e| buf.push_back(e));
        let waiting = matches!(step, Step::Waiting(_));
        match step {
            Step::End => self.cursor = None,
            Step::Failed(e) => {
                self.cursor = None;
                self.failed = Some(e);
            }
            Step::Progress | Step::Waiting(_) => {}
        }
        if let Some(e) = self.buf.pop_front() {
            return Next::Entry(Box::new(e));
        }
        if self.cursor.is_some() {
            return Next::Again(waiting);
        }
        match self.failed.take() {
            Some(e) => Next::Failed(e),
            None => Next::End,
        }
    }
}

/// A streaming dump: iterate it for `Entry` objects. Holds one receive buffer's worth of entries.
#[pyclass(frozen, module = "ipvsct", name = "DumpIterator")]
pub struct DumpIterator {
    timeout: Duration,
    state: Mutex<IterState>,
}

#[pymethods]
impl DumpIterator {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Entry>> {
        // Fast path: an entry is already buffered (no GIL release needed).
        if let Ok(mut g) = self.state.try_lock() {
            if let Some(e) = g.buf.pop_front() {
                return Ok(Some(Entry::from(e)));
            }
        }
        let mut heard = Instant::now();
        loop {
            match py.detach(|| lock(&self.state).next()) {
                Next::Entry(e) => return Ok(Some(Entry::from(*e))),
                Next::End => return Ok(None),
                Next::Failed(e) => return Err(to_py(py, e)),
                Next::Again(waiting) => {
                    py.check_signals()?;
                    if !waiting {
                        heard = Instant::now();
                    } else if heard.elapsed() >= self.timeout {
                        return Err(timeout_error(
                            py,
                            "conntrack dump",
                            self.timeout.as_secs_f64(),
                        ));
                    }
                }
            }
        }
    }

    /// Stops the dump and closes its socket (the kernel discards the rest).
    fn close(&self, py: Python<'_>) {
        let old = py.detach(|| {
            let mut g = lock(&self.state);
            g.buf.clear();
            g.failed = None;
            g.cursor.take()
        });
        drop(old);
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close(py);
        false
    }
}
