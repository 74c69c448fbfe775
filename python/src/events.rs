//! `Conntrack.events()`: `ipvsct.EventIterator` over the kernel's conntrack and
//! expectation events, yielding `ipvsct.Event`, `ipvsct.ExpectEvent` and
//! `ipvsct.Overrun` objects (an overrun is an item, never an exception).
//!
//! Blocking iteration waits in slices of [`POLL`] with the GIL released and checks for
//! signals in between. `poll()` never blocks (the socket is switched to O_NONBLOCK), and
//! `fileno()` gives the socket for an event loop: `ipvsct._aio` builds the async
//! iterator on those two.

use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use ipvs_conntrack::conntrack::events::{
    Change, ConntrackEvent, Event as CoreEvent, EventFilter, EventGroups, EventKind, EventOptions,
    EventStream, ExpectEvent as CoreExpectEvent, Overrun as CoreOverrun, TableView,
};
use ipvs_conntrack::conntrack::{Conntrack as CoreConntrack, DumpFilter, Family};
use ipvs_conntrack::{Error, Netns};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};
use pyo3::IntoPyObjectExt;

use crate::cursor::POLL;
use crate::entry::{proto_from_py, Entry};
use crate::errors::to_py;
use crate::expect::Expectation;
use crate::filter::family_from_py;
use crate::values::{py_repr, py_time};

/// Locks a mutex, ignoring poisoning.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

static EVENT_KIND: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `ipvsct.EventKind` member of a kind.
fn kind_py<'py>(py: Python<'py>, k: EventKind) -> PyResult<Bound<'py, PyAny>> {
    EVENT_KIND
        .import(py, "ipvsct._enums", "EventKind")?
        .call1((k.name(),))
}

/// A conntrack event: what happened (`kind`) and the entry as the kernel described it.
#[pyclass(frozen, module = "ipvsct", name = "Event")]
pub struct Event {
    kind: EventKind,
    /// The entry (UPDATE events carry only what changed, plus tuples, id, status and timeout).
    #[pyo3(get)]
    entry: Py<Entry>,
    /// CTA_TIMESTAMP_EVENT: when the kernel generated the event, ns since the epoch.
    #[pyo3(get)]
    event_time: Option<u64>,
    /// True if this event was made by a resynchronisation after an overrun, not by the kernel.
    #[pyo3(get)]
    resync: bool,
}

impl Event {
    fn new(py: Python<'_>, ev: ConntrackEvent, resync: bool) -> PyResult<Self> {
        Ok(Event {
            kind: ev.kind,
            entry: Py::new(py, Entry::from_core(py, ev.entry)?)?,
            event_time: ev.event_time,
            resync,
        })
    }
}

#[pymethods]
impl Event {
    /// `EventKind.NEW`, `UPDATE` or `DESTROY`.
    #[getter]
    fn kind<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        kind_py(py, self.kind)
    }

    /// The attributes as a dict (the entry as a dict).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("kind", self.kind(py)?)?;
        d.set_item("entry", self.entry.get().to_dict(py)?)?;
        d.set_item("event_time", self.event_time)?;
        d.set_item("resync", self.resync)?;
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "<Event {}{} {}>",
            self.kind.name().to_ascii_uppercase(),
            if self.resync { " (resync)" } else { "" },
            self.entry.bind(py).repr()?
        ))
    }
}

/// An expectation event: `kind` and the `expectation`.
#[pyclass(frozen, module = "ipvsct", name = "ExpectEvent")]
pub struct ExpectEvent {
    kind: EventKind,
    /// The expectation.
    #[pyo3(get)]
    expectation: Py<Expectation>,
}

#[pymethods]
impl ExpectEvent {
    /// `EventKind.NEW` or `DESTROY`.
    #[getter]
    fn kind<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        kind_py(py, self.kind)
    }

    /// The attributes as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("kind", self.kind(py)?)?;
        d.set_item("expectation", self.expectation.get().to_dict(py)?)?;
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "<ExpectEvent {} {}>",
            self.kind.name().to_ascii_uppercase(),
            self.expectation.bind(py).repr()?
        ))
    }
}

/// Events were lost: the socket's receive buffer overflowed (ENOBUFS). The stream goes on.
#[pyclass(frozen, module = "ipvsct", name = "Overrun")]
pub struct Overrun {
    /// Receives that failed with ENOBUFS in a row, this one included.
    #[pyo3(get)]
    failed_receives: u64,
    /// Overruns since the stream was opened.
    #[pyo3(get)]
    total: u64,
    since: SystemTime,
    at: SystemTime,
}

#[pymethods]
impl Overrun {
    /// When the first receive of this run failed (`datetime`, UTC).
    #[getter]
    fn since<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py_time(py, self.since)
    }

    /// When this receive failed (`datetime`, UTC).
    #[getter]
    fn at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py_time(py, self.at)
    }

    /// The attributes as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("failed_receives", self.failed_receives)?;
        d.set_item("total", self.total)?;
        d.set_item("since", self.since(py)?)?;
        d.set_item("at", self.at(py)?)?;
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Overrun(failed_receives={}, total={}, at={})",
            self.failed_receives,
            self.total,
            py_repr(py, self.at(py)?)?
        ))
    }
}

/// One item of the stream, before conversion to Python.
// Nearly every item is a conntrack event: boxing it would cost an allocation per event.
#[allow(clippy::large_enum_variant)]
enum Item {
    Conntrack(ConntrackEvent, bool),
    Expect(CoreExpectEvent),
    Overrun(CoreOverrun),
}

impl Item {
    fn into_py(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match self {
            Item::Conntrack(ev, resync) => Event::new(py, ev, resync)?.into_py_any(py),
            Item::Expect(x) => ExpectEvent {
                kind: x.kind,
                expectation: Py::new(py, Expectation::from(x.expectation))?,
            }
            .into_py_any(py),
            Item::Overrun(o) => Overrun {
                failed_receives: o.failed_receives,
                total: o.total,
                since: o.since,
                at: o.at,
            }
            .into_py_any(py),
        }
    }
}

/// The open stream and what the iterator keeps beside it.
struct State {
    stream: EventStream,
    /// True while the socket is in O_NONBLOCK mode (`poll()`).
    nonblocking: bool,
    /// The receive timeout set on the socket in blocking mode.
    recv_timeout: Duration,
    /// The picture of the table kept for `resync=True`.
    view: Option<TableView>,
    /// Items to hand out before reading the socket again (resync changes).
    pending: VecDeque<Item>,
}

/// Whether a resync change passes the stream's family/protocol filter.
fn passes(filter: &EventFilter, e: &ipvs_conntrack::conntrack::Entry) -> bool {
    (filter.families.is_empty() || filter.families.contains(&e.family))
        && (filter.protocols.is_empty() || filter.protocols.contains(&e.orig.proto))
}

impl State {
    fn set_blocking(&mut self, timeout: Duration) -> Result<(), Error> {
        if self.nonblocking {
            self.stream
                .socket()
                .inner()
                .set_non_blocking(false)
                .map_err(|source| Error::Io {
                    op: "event socket O_NONBLOCK",
                    source,
                })?;
            self.nonblocking = false;
        }
        if self.recv_timeout != timeout {
            self.stream.set_recv_timeout(Some(timeout))?;
            self.recv_timeout = timeout;
        }
        Ok(())
    }

    fn set_nonblocking(&mut self) -> Result<(), Error> {
        if !self.nonblocking {
            self.stream
                .socket()
                .inner()
                .set_non_blocking(true)
                .map_err(|source| Error::Io {
                    op: "event socket O_NONBLOCK",
                    source,
                })?;
            self.nonblocking = true;
        }
        Ok(())
    }

    /// The next item; `Ok(None)` when nothing arrived within the socket's wait.
    fn next_item(&mut self) -> Result<Option<Item>, Error> {
        if let Some(i) = self.pending.pop_front() {
            return Ok(Some(i));
        }
        let ev = match self.stream.next_event()? {
            None => return Ok(None),
            Some(ev) => ev,
        };
        if let Some(view) = self.view.as_mut() {
            view.apply(&ev);
        }
        match ev {
            CoreEvent::Conntrack(c) => Ok(Some(Item::Conntrack(c, false))),
            CoreEvent::Expect(x) => Ok(Some(Item::Expect(x))),
            CoreEvent::Overrun(o) => {
                self.pending.push_back(Item::Overrun(o));
                if let Some(mut view) = self.view.take() {
                    let result = self.stream.resync(&mut view);
                    self.view = Some(view);
                    let filter = self.stream.options().filter.clone();
                    for c in result? {
                        let keep = match &c {
                            Change::Added(e) | Change::Removed(e) => passes(&filter, e),
                            Change::Updated { new, .. } => passes(&filter, new),
                        };
                        if keep {
                            self.pending.push_back(Item::Conntrack(c.to_event(), true));
                        }
                    }
                }
                Ok(self.pending.pop_front())
            }
        }
    }
}

/// Parses `proto=`: None, one protocol (number or name) or a list of them.
fn protocols(v: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<u8>> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    if v.is_instance_of::<pyo3::types::PyString>() || v.extract::<i64>().is_ok() {
        return Ok(vec![proto_from_py(v)?]);
    }
    let mut out = Vec::new();
    for p in v
        .try_iter()
        .map_err(|_| PyTypeError::new_err("proto must be a protocol or a list of protocols"))?
    {
        out.push(proto_from_py(&p?)?);
    }
    Ok(out)
}

/// Parses `family=`: None, one family or a list of them.
fn families(v: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<Family>> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    if let Ok(f) = family_from_py(v) {
        return Ok(vec![f]);
    }
    if v.is_instance_of::<pyo3::types::PyString>() {
        return Err(family_from_py(v)
            .err()
            .unwrap_or_else(|| PyValueError::new_err("family must be \"ipv4\" or \"ipv6\"")));
    }
    let mut out = Vec::new();
    for f in v
        .try_iter()
        .map_err(|_| PyTypeError::new_err("family must be a family or a list of families"))?
    {
        out.push(family_from_py(&f?)?);
    }
    Ok(out)
}

/// The arguments of `Conntrack.events()` and `events_async()`.
pub struct EventArgs<'a, 'py> {
    /// Subscribe to NEW.
    pub new: bool,
    /// Subscribe to UPDATE.
    pub update: bool,
    /// Subscribe to DESTROY.
    pub destroy: bool,
    /// Subscribe to expectation NEW/DESTROY.
    pub expect: bool,
    /// Only these families.
    pub family: Option<&'a Bound<'py, PyAny>>,
    /// Only these L4 protocols.
    pub proto: Option<&'a Bound<'py, PyAny>>,
    /// Kernel receive buffer in bytes.
    pub rcvbuf: Option<usize>,
    /// NETLINK_BROADCAST_ERROR + NETLINK_NO_ENOBUFS.
    pub reliable: bool,
    /// Keep a picture of the table and resynchronise after overruns.
    pub resync: bool,
}

/// Opens an event iterator in `netns`.
pub fn open(py: Python<'_>, netns: &Netns, a: &EventArgs<'_, '_>) -> PyResult<EventIterator> {
    let mut groups = EventGroups::empty();
    for (on, g) in [
        (a.new, EventGroups::NEW),
        (a.update, EventGroups::UPDATE),
        (a.destroy, EventGroups::DESTROY),
        (a.expect, EventGroups::EXP_NEW | EventGroups::EXP_DESTROY),
    ] {
        if on {
            groups |= g;
        }
    }
    if groups.is_empty() {
        return Err(PyValueError::new_err(
            "events(): subscribe to at least one kind of event",
        ));
    }
    if a.resync && a.reliable {
        return Err(PyValueError::new_err(
            "events(): reliable=True never reports overruns, so resync=True would never run",
        ));
    }
    let mut opts = EventOptions::groups(groups);
    if let Some(b) = a.rcvbuf {
        if b == 0 {
            return Err(PyValueError::new_err(
                "rcvbuf must be a positive byte count",
            ));
        }
        opts.rcvbuf = b;
    }
    opts.reliable = a.reliable;
    opts.recv_timeout = Some(POLL);
    opts.filter = EventFilter {
        families: families(a.family)?,
        protocols: protocols(a.proto)?,
    };
    let resync = a.resync;
    let state = py
        .detach(|| -> Result<State, Error> {
            let stream = EventStream::with_options(netns, &opts)?;
            // Subscribed first, dumped second: events racing the dump are applied on top.
            let view = if resync {
                let mut ct = CoreConntrack::open(netns)?;
                ct.set_join_timeouts(false);
                Some(TableView::from_table(&mut ct, &DumpFilter::all())?)
            } else {
                None
            };
            Ok(State {
                stream,
                nonblocking: false,
                recv_timeout: POLL,
                view,
                pending: VecDeque::new(),
            })
        })
        .map_err(|e| to_py(py, e))?;
    Ok(EventIterator {
        state: Mutex::new(Some(state)),
    })
}

/// The conntrack events of one namespace: iterate it (blocking, Ctrl-C stops it) for
/// `Event`, `ExpectEvent` and `Overrun` objects; `poll()` and `fileno()` serve event loops.
#[pyclass(frozen, module = "ipvsct", name = "EventIterator")]
pub struct EventIterator {
    state: Mutex<Option<State>>,
}

impl EventIterator {
    /// Waits for the next item until `deadline` (None: forever); Ok(None) at the deadline
    /// or once the iterator is closed.
    fn wait(&self, py: Python<'_>, deadline: Option<Instant>) -> PyResult<Option<Py<PyAny>>> {
        loop {
            let slice = match deadline {
                None => POLL,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    // SO_RCVTIMEO has microsecond resolution; zero would mean "forever".
                    left.min(POLL).max(Duration::from_micros(1))
                }
            };
            let r = py.detach(|| {
                let mut g = lock(&self.state);
                let Some(s) = g.as_mut() else {
                    return Ok(Err(()));
                };
                s.set_blocking(slice)?;
                s.next_item().map(Ok)
            });
            match r {
                Ok(Ok(Some(item))) => return item.into_py(py).map(Some),
                Ok(Ok(None)) => {}
                Ok(Err(())) => return Ok(None),
                Err(e) => return Err(to_py(py, e)),
            }
            py.check_signals()?;
        }
    }
}

#[pymethods]
impl EventIterator {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.wait(py, None)
    }

    /// The next item, waiting at most `timeout` seconds (None: forever); None if nothing came.
    #[pyo3(signature = (timeout=None))]
    fn get(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Py<PyAny>>> {
        let deadline = match timeout {
            None => None,
            Some(t) if t.is_finite() && t >= 0.0 => {
                Some(Instant::now() + Duration::from_secs_f64(t))
            }
            Some(_) => {
                return Err(PyValueError::new_err(
                    "timeout must be None or a number of seconds >= 0",
                ))
            }
        };
        self.wait(py, deadline)
    }

    /// The next item if one is ready, else None; never waits (for event loops).
    fn poll(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let r = py.detach(|| {
            let mut g = lock(&self.state);
            let Some(s) = g.as_mut() else {
                return Ok(None);
            };
            s.set_nonblocking()?;
            s.next_item()
        });
        match r {
            Ok(Some(item)) => item.into_py(py).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(to_py(py, e)),
        }
    }

    /// The socket's file descriptor (readable when events are queued).
    fn fileno(&self, py: Python<'_>) -> PyResult<i32> {
        let g = lock(&self.state);
        match g.as_ref() {
            Some(s) => Ok(s.stream.socket().inner().as_raw_fd()),
            None => Err(crate::client::closed(py, "EventIterator")),
        }
    }

    /// Counters: `received`, `filtered`, `other`, `overruns`.
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = lock(&self.state)
            .as_ref()
            .map(|s| s.stream.stats())
            .unwrap_or_default();
        let d = PyDict::new(py);
        d.set_item("received", s.received)?;
        d.set_item("filtered", s.filtered)?;
        d.set_item("other", s.other)?;
        d.set_item("overruns", s.overruns)?;
        Ok(d)
    }

    /// Number of connections in the picture kept for `resync=True` (None without it).
    #[getter]
    fn table_size(&self) -> Option<usize> {
        lock(&self.state)
            .as_ref()
            .and_then(|s| s.view.as_ref().map(TableView::len))
    }

    /// True once `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        lock(&self.state).is_none()
    }

    /// Unsubscribes and closes the socket; iteration ends.
    fn close(&self, py: Python<'_>) {
        let old = py.detach(|| lock(&self.state).take());
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
