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

use ipvs_conntrack::conntrack::timeout::{
    StateTimeouts as CoreStateTimeouts, TimeoutPolicy as CorePolicy,
};
use ipvs_conntrack::conntrack::{Batch, FlushRequest};
use ipvs_conntrack::conntrack::{
    Conntrack as CoreConntrack, CpuStats as CoreCpuStats, DumpFilter, Entry as CoreEntry, Table,
};
use ipvs_conntrack::socket::{SocketOptions, DEFAULT_SO_RCVBUF};
use ipvs_conntrack::{Error, Netns};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::columns::Columns;
use crate::cursor::{run_to_end, Cursor, Step, STEP};
use crate::entry::{Entry, Tuple};
use crate::entry_pool::PooledEntry;
use crate::errors::{exceptions, timeout_error, to_py};
use crate::events::{self, EventArgs, EventIterator};
use crate::expect::{self, ExpectArgs, Expectation};
use crate::filter::family_from_py;
use crate::filter::{build, FilterArgs};
use crate::policy;
use crate::timeouts::StateTimeouts;
use crate::timeouts::TimeoutPolicy;
use crate::values::{py_repr, CpuStats, Stats};
use crate::write::{self, BatchResult, CreateArgs, DeleteTarget, UpdateArgs};

/// Locks a mutex, ignoring poisoning (a panic never leaves these states half-written).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `ipvsct.Error("… is closed")`.
pub(crate) fn closed(py: Python<'_>, what: &str) -> PyErr {
    match exceptions(py) {
        Ok(x) => PyErr::from_type(x.error.bind(py).clone(), format!("{what} is closed")),
        Err(e) => e,
    }
}

/// Parses `netns=`: None, an `ip netns` name, a path (str or os.PathLike) or a pid.
pub(crate) fn netns_from_py(v: Option<&Bound<'_, PyAny>>) -> PyResult<Netns> {
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

/// Adds "item N" to an error about one item of `create_many()`.
fn annotate(py: Python<'_>, e: PyErr, index: usize) -> PyErr {
    let msg = format!("create_many() item {index}: {}", e.value(py));
    if e.is_instance_of::<PyValueError>(py) {
        PyValueError::new_err(msg)
    } else if e.is_instance_of::<PyTypeError>(py) {
        PyTypeError::new_err(msg)
    } else {
        e
    }
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
    /// Whether long dumps receive on a reader thread (`None`: the library's default).
    dump_reader: Option<bool>,
    client: Mutex<Option<Client>>,
}

impl Conntrack {
    /// The namespace this client works in.
    pub(crate) fn namespace(&self) -> &Netns {
        &self.netns
    }

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
        let reader = self.dump_reader;
        py.detach(|| Cursor::start(netns, table, filter, timeouts, reader))
            .map_err(|e| to_py(py, e))
    }
}

#[pymethods]
impl Conntrack {
    /// Opens a client for the table of `netns` (None: this process's namespace).
    /// `dump_reader`: whether long dumps receive on a thread of their own while Python
    /// decodes (None: on with more than one CPU, or as IPVSCT_DUMP_READER=0|1 says).
    #[new]
    #[pyo3(signature = (netns=None, *, timeout=30.0, dump_reader=None))]
    fn new(
        py: Python<'_>,
        netns: Option<&Bound<'_, PyAny>>,
        timeout: f64,
        dump_reader: Option<bool>,
    ) -> PyResult<Self> {
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
        let mut ct = py
            .detach(|| CoreConntrack::with_options(&netns, &opts))
            .map_err(|e| to_py(py, e))?;
        if let Some(on) = dump_reader {
            ct.set_dump_reader(on);
        }
        Ok(Conntrack {
            netns,
            timeout,
            dump_reader,
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

    /// Whether long dumps receive on a reader thread while Python decodes.
    #[getter]
    fn dump_reader(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_client(py, |c| Ok(c.ct.socket().dump_reader()))
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
                reader_report: None,
            }),
            returned: Mutex::new(Returned::default()),
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
            out.append(Entry::from_core(py, e)?)?;
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
        r.map(|e| Entry::from_core(py, e)).transpose()
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

    // ---- events ------------------------------------------------------------------

    /// Subscribes to the kernel's events: an iterator of `Event`, `ExpectEvent` and
    /// `Overrun` objects (an overrun is yielded, and the iteration goes on).
    #[pyo3(signature = (new=true, update=true, destroy=true, expect=false, family=None, proto=None, rcvbuf=None, reliable=false, resync=false))]
    #[allow(clippy::too_many_arguments)]
    fn events(
        &self,
        py: Python<'_>,
        new: bool,
        update: bool,
        destroy: bool,
        expect: bool,
        family: Option<&Bound<'_, PyAny>>,
        proto: Option<&Bound<'_, PyAny>>,
        rcvbuf: Option<usize>,
        reliable: bool,
        resync: bool,
    ) -> PyResult<EventIterator> {
        events::open(
            py,
            &self.netns,
            &EventArgs {
                new,
                update,
                destroy,
                expect,
                family,
                proto,
                rcvbuf,
                reliable,
                resync,
            },
        )
    }

    /// `events()` as an async iterator (`async for ev in ct.events_async(): …`); waits on
    /// the event loop (`loop.add_reader`) without blocking it.
    #[pyo3(signature = (new=true, update=true, destroy=true, expect=false, family=None, proto=None, rcvbuf=None, reliable=false, resync=false))]
    #[allow(clippy::too_many_arguments)]
    fn events_async<'py>(
        &self,
        py: Python<'py>,
        new: bool,
        update: bool,
        destroy: bool,
        expect: bool,
        family: Option<&Bound<'py, PyAny>>,
        proto: Option<&Bound<'py, PyAny>>,
        rcvbuf: Option<usize>,
        reliable: bool,
        resync: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let it = self.events(
            py, new, update, destroy, expect, family, proto, rcvbuf, reliable, resync,
        )?;
        py.import("ipvsct._aio")?
            .getattr("AsyncEventIterator")?
            .call1((Py::new(py, it)?,))
    }

    // ---- write path ----------------------------------------------------------------

    /// Creates an entry from its original tuple (or recreates a dumped `Entry`).
    #[pyo3(signature = (orig, *, reply=None, timeout=None, zone=None, status=None, mark=None, labels=None, state=None, vtags=None, helper=None, nat_src=None, nat_dst=None, master=None))]
    #[allow(clippy::too_many_arguments)]
    fn create<'py>(
        &self,
        py: Python<'py>,
        orig: Bound<'py, PyAny>,
        reply: Option<Bound<'py, PyAny>>,
        timeout: Option<u32>,
        zone: Option<u16>,
        status: Option<u32>,
        mark: Option<u32>,
        labels: Option<Vec<u16>>,
        state: Option<Bound<'py, PyAny>>,
        vtags: Option<(u32, u32)>,
        helper: Option<String>,
        nat_src: Option<Bound<'py, PyAny>>,
        nat_dst: Option<Bound<'py, PyAny>>,
        master: Option<Bound<'py, PyAny>>,
    ) -> PyResult<()> {
        let req = write::create_request(&CreateArgs {
            orig: Some(orig),
            reply,
            timeout,
            zone,
            status,
            mark,
            labels,
            state,
            vtags,
            helper,
            nat_src,
            nat_dst,
            master,
        })?;
        self.with_client(py, move |c| c.ct.create(&req))
    }

    /// Creates many entries in batches (many requests per datagram); returns what
    /// happened to each (`BatchResult.errors[i]` is None or the error of item `i`).
    /// Items are `Entry` objects (recreated) or dicts of `create()` keyword arguments.
    #[pyo3(signature = (entries, *, max_in_flight=None, ack_timeout=None))]
    fn create_many(
        &self,
        py: Python<'_>,
        entries: &Bound<'_, PyAny>,
        max_in_flight: Option<usize>,
        ack_timeout: Option<f64>,
    ) -> PyResult<BatchResult> {
        let opts = write::batch_options(max_in_flight, ack_timeout)?;
        let mut batch = Batch::new();
        for (i, item) in entries.try_iter()?.enumerate() {
            let item = item?;
            let args = if let Ok(d) = item.cast::<PyDict>() {
                CreateArgs::from_dict(d)
            } else if item.cast::<Entry>().is_ok() {
                Ok(CreateArgs {
                    orig: Some(item.clone()),
                    ..CreateArgs::default()
                })
            } else {
                Err(PyTypeError::new_err(
                    "create_many() items must be Entry objects or dicts of create() arguments",
                ))
            };
            let req = args
                .and_then(|a| write::create_request(&a))
                .map_err(|e| annotate(py, e, i))?;
            batch
                .push(&req)
                .map_err(|e| annotate(py, to_py(py, e), i))?;
            if i % STEP == STEP - 1 {
                py.check_signals()?;
            }
        }
        let report = self.with_client(py, move |c| c.ct.execute_batch_with(&batch, &opts))?;
        BatchResult::new(py, report)
    }

    /// Changes an existing entry (a `Tuple`, or an `Entry`); NetlinkError ENOENT if absent.
    #[pyo3(signature = (target, *, zone=None, timeout=None, status=None, mark=None, mark_mask=None, labels=None, labels_mask=None, state=None, vtags=None, helper=None))]
    #[allow(clippy::too_many_arguments)]
    fn update(
        &self,
        py: Python<'_>,
        target: &Bound<'_, PyAny>,
        zone: Option<u16>,
        timeout: Option<u32>,
        status: Option<u32>,
        mark: Option<u32>,
        mark_mask: Option<u32>,
        labels: Option<Vec<u16>>,
        labels_mask: Option<Vec<u16>>,
        state: Option<&Bound<'_, PyAny>>,
        vtags: Option<(u32, u32)>,
        helper: Option<String>,
    ) -> PyResult<()> {
        let req = write::update_request(&UpdateArgs {
            target,
            zone,
            timeout,
            status,
            mark,
            mark_mask,
            labels,
            labels_mask,
            state,
            vtags,
            helper,
        })?;
        self.with_client(py, move |c| c.ct.update(&req))
    }

    /// Deletes one entry: by `Entry` (its tuple, zone and id), by `Tuple` (`reply=True`
    /// for a reply tuple), or by `id=` alone (found by a dump).
    #[pyo3(signature = (target=None, *, id=None, zone=None, reply=false))]
    fn delete(
        &self,
        py: Python<'_>,
        target: Option<&Bound<'_, PyAny>>,
        id: Option<u32>,
        zone: Option<u16>,
        reply: bool,
    ) -> PyResult<()> {
        match write::delete_request(target, id, zone, reply)? {
            DeleteTarget::Request(req) => self.with_client(py, move |c| c.ct.delete(&req)),
            DeleteTarget::Id(id) => self.with_client(py, move |c| c.ct.delete_by_id(id).map(drop)),
        }
    }

    /// Deletes every entry, or those matching the filter (evaluated by the kernel).
    #[pyo3(signature = (family=None, mark=None, zone=None, status=None, *, proto=None, src=None, dst=None, src_port=None, dst_port=None, reply_src=None, reply_dst=None))]
    #[allow(clippy::too_many_arguments)]
    fn flush(
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
    ) -> PyResult<()> {
        let (filter, _) = build(&FilterArgs {
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
            table: "main",
            kernel_filter: true,
        })?;
        let req = FlushRequest::matching(filter);
        self.with_client(py, move |c| c.ct.flush(&req))
    }

    // ---- expectations --------------------------------------------------------------

    /// Every expectation of the namespace (`family` narrows it).
    #[pyo3(signature = (family=None))]
    fn expectations(
        &self,
        py: Python<'_>,
        family: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<Expectation>> {
        let family = family
            .filter(|f| !f.is_none())
            .map(family_from_py)
            .transpose()?;
        let all = self.with_client(py, move |c| c.ct.expectations(family))?;
        Ok(all.into_iter().map(Expectation::from).collect())
    }

    /// Creates an expectation for `expected` on behalf of `master` (whose connection
    /// must have a helper); `update=True` changes an existing one's timeout.
    #[pyo3(signature = (master, expected, *, timeout, mask=None, zone=None, helper=None, flags=None, class_=None, nat=None, expect_fn=None, update=false))]
    #[allow(clippy::too_many_arguments)]
    fn create_expectation(
        &self,
        py: Python<'_>,
        master: &Bound<'_, PyAny>,
        expected: &Bound<'_, PyAny>,
        timeout: u32,
        mask: Option<&Bound<'_, PyAny>>,
        zone: Option<u16>,
        helper: Option<String>,
        flags: Option<u32>,
        class_: Option<u32>,
        nat: Option<(u32, Bound<'_, PyAny>)>,
        expect_fn: Option<String>,
        update: bool,
    ) -> PyResult<()> {
        let req = expect::expect_request(&ExpectArgs {
            master,
            expected,
            timeout,
            mask,
            zone,
            helper,
            flags,
            class: class_,
            nat: nat.as_ref().map(|(d, t)| (*d, t)),
            expect_fn,
            update,
        })?;
        self.with_client(py, move |c| c.ct.create_expectation(&req))
    }

    /// Deletes one expectation: an `Expectation` (tuple, zone, id) or its expected `Tuple`.
    #[pyo3(signature = (target, *, zone=None, id=None))]
    fn delete_expectation(
        &self,
        py: Python<'_>,
        target: &Bound<'_, PyAny>,
        zone: Option<u16>,
        id: Option<u32>,
    ) -> PyResult<()> {
        let req = expect::delete_request(target, zone, id)?;
        self.with_client(py, move |c| c.ct.delete_expectation(&req))
    }

    /// Deletes every expectation, or those of one helper.
    #[pyo3(signature = (helper=None))]
    fn flush_expectations(&self, py: Python<'_>, helper: Option<String>) -> PyResult<()> {
        self.with_client(py, move |c| c.ct.flush_expectations(helper.as_deref()))
    }

    // ---- timeout policies ----------------------------------------------------------

    /// Every named timeout policy (`nfct timeout list`).
    fn timeout_policies(&self, py: Python<'_>) -> PyResult<Vec<TimeoutPolicy>> {
        let all = self.with_client(py, |c| c.ct.timeout_policies())?;
        Ok(all
            .into_iter()
            .map(|inner| TimeoutPolicy { inner })
            .collect())
    }

    /// One named policy, or None if there is none of that name.
    fn timeout_policy(&self, py: Python<'_>, name: String) -> PyResult<Option<TimeoutPolicy>> {
        let r = self.with_client(py, move |c| match c.ct.timeout_policy(&name) {
            Ok(p) => Ok(Some(p)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        })?;
        Ok(r.map(|inner| TimeoutPolicy { inner }))
    }

    /// Creates a named policy for `proto` from `{state: seconds}`; `replace=True` sets an
    /// existing one anew (values not given fall back to the defaults).
    #[pyo3(signature = (name, proto, timeouts, *, family=None, replace=false))]
    fn add_timeout_policy(
        &self,
        py: Python<'_>,
        name: String,
        proto: &Bound<'_, PyAny>,
        timeouts: &Bound<'_, PyDict>,
        family: Option<&Bound<'_, PyAny>>,
        replace: bool,
    ) -> PyResult<()> {
        let l4 = policy::policy_proto(proto)?;
        let t = policy::proto_timeouts(l4, timeouts)?;
        let l3 = policy::policy_family(family)?;
        let p = CorePolicy::named(name, l3, t);
        self.with_client(py, move |c| {
            if replace {
                c.ct.replace_timeout_policy(&p)
            } else {
                c.ct.add_timeout_policy(&p)
            }
        })
    }

    /// Deletes a named policy (NetlinkError EBUSY while in use, ENOENT if absent).
    fn delete_timeout_policy(&self, py: Python<'_>, name: String) -> PyResult<()> {
        self.with_client(py, move |c| c.ct.delete_timeout_policy(&name))
    }

    /// Sets a protocol's default timeouts in this namespace from `{state: seconds}`
    /// (states not given keep their value); entries dumped afterwards use them.
    #[pyo3(signature = (proto, timeouts, *, family=None))]
    fn set_default_timeouts(
        &self,
        py: Python<'_>,
        proto: &Bound<'_, PyAny>,
        timeouts: &Bound<'_, PyDict>,
        family: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let l4 = policy::policy_proto(proto)?;
        let t = policy::proto_timeouts(l4, timeouts)?;
        let l3 = policy::policy_family(family)?;
        self.with_client(py, move |c| {
            c.ct.set_default_policy(l3, &t)?;
            c.join = None;
            Ok(())
        })
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
    /// Entries received and not yet returned (at most one step's worth), boxed once
    /// when decoded (the Python `Entry` keeps the box).
    buf: VecDeque<PooledEntry>,
    /// The error that ended the dump, raised once `buf` is empty.
    failed: Option<Error>,
    /// The dump reader thread's report, kept when the cursor ends.
    reader_report: Option<ipvs_conntrack::socket::DumpReaderReport>,
}

/// What one `__next__` attempt found.
enum Next {
    Entry(PooledEntry),
    /// Nothing to return yet, the dump goes on; `true` if the kernel sent nothing within the poll time.
    Again(bool),
    End,
    Failed(Error),
}

impl IterState {
    /// Returns a buffered entry, or receives the next step's worth first.
    fn next(&mut self) -> Next {
        if let Some(e) = self.buf.pop_front() {
            return Next::Entry(e);
        }
        if let Some(e) = self.failed.take() {
            return Next::Failed(e);
        }
        let Some(cursor) = self.cursor.as_mut() else {
            return Next::End;
        };
        let buf = &mut self.buf;
        let step = cursor.step_pooled(STEP, |e| buf.push_back(e));
        let waiting = matches!(step, Step::Waiting(_));
        let ended = !matches!(step, Step::Progress | Step::Waiting(_));
        if let Step::Failed(e) = step {
            self.failed = Some(e);
        }
        if ended {
            self.reader_report = self.cursor.take().and_then(|c| c.reader_report());
        }
        if let Some(e) = self.buf.pop_front() {
            return Next::Entry(e);
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

/// The entries the last two `__next__` calls returned. The older one is written over for
/// the next entry if nothing else refers to it any more ([`Entry::recycle`]): in
/// `for e in dump`, the loop variable holds the newer one when `__next__` runs.
#[derive(Default)]
struct Returned {
    older: Option<Py<Entry>>,
    newer: Option<Py<Entry>>,
}

/// A streaming dump: iterate it for `Entry` objects. Holds one receive buffer's worth of
/// entries, and the last two entries it returned (to reuse once they are let go of).
#[pyclass(frozen, module = "ipvsct", name = "DumpIterator")]
pub struct DumpIterator {
    timeout: Duration,
    state: Mutex<IterState>,
    /// Only locked with `try_lock`, and never while Python code may run (dropping or
    /// making objects can run it, and it may come back here).
    returned: Mutex<Returned>,
}

impl DumpIterator {
    /// The Python entry of `e`, in a returned entry no longer in use if there is one.
    fn entry(&self, py: Python<'_>, e: PooledEntry) -> PyResult<Py<Entry>> {
        let old = self
            .returned
            .try_lock()
            .ok()
            .and_then(|mut r| r.older.take());
        let entry = Entry::recycle(py, old, e)?;
        let evicted = match self.returned.try_lock() {
            Ok(mut r) => {
                let older = r.newer.replace(entry.clone_ref(py));
                std::mem::replace(&mut r.older, older)
            }
            Err(_) => None,
        };
        drop(evicted);
        Ok(entry)
    }

    /// Lets go of the returned entries.
    fn forget_returned(&self) {
        let r = match self.returned.try_lock() {
            Ok(mut r) => std::mem::take(&mut *r),
            Err(_) => return,
        };
        drop(r);
    }
}

#[pymethods]
impl DumpIterator {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<Entry>>> {
        // Fast path: an entry is already buffered (no GIL release needed).
        if let Ok(mut g) = self.state.try_lock() {
            if let Some(e) = g.buf.pop_front() {
                drop(g);
                return self.entry(py, e).map(Some);
            }
        }
        let mut heard = Instant::now();
        loop {
            match py.detach(|| lock(&self.state).next()) {
                Next::Entry(e) => return self.entry(py, e).map(Some),
                Next::End => {
                    self.forget_returned();
                    return Ok(None);
                }
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

    /// How the dump reader thread and this iteration waited for each other, once a
    /// threaded dump has ended (None before, or if the dump ran without the thread):
    /// seconds the thread waited for room (the kernel held up by the decoding), seconds
    /// Python waited for the kernel, seconds from the last datagram to Python taking it,
    /// datagrams queued at the end, datagrams received, and `held_up`, the first plus the third.
    #[getter]
    fn reader_report<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        // Without the GIL: `__next__` holds the state's lock while it receives.
        let Some(r) = py.detach(|| lock(&self.state).reader_report) else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        d.set_item("datagrams", r.datagrams)?;
        d.set_item("reader_waited", r.reader_waited.as_secs_f64())?;
        d.set_item("caller_waited", r.caller_waited.as_secs_f64())?;
        d.set_item("caller_behind_at_end", r.caller_behind_at_end.as_secs_f64())?;
        d.set_item("queued_at_end", r.queued_at_end)?;
        d.set_item("held_up", r.held_up().as_secs_f64())?;
        Ok(Some(d))
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
        self.forget_returned();
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
