//! A dump that outlives one call: its own socket plus the suspended [`DumpState`],
//! advanced in bounded steps so the caller can release the GIL and check for
//! signals between them.

use std::time::{Duration, Instant};

use ipvs_conntrack::conntrack::timeout::StateTimeouts;
use ipvs_conntrack::conntrack::{
    Conntrack as CoreConntrack, Dump, DumpFilter, DumpState, Entry as CoreEntry, EntryView, Table,
};
use ipvs_conntrack::socket::{SocketOptions, DEFAULT_SO_RCVBUF};
use ipvs_conntrack::{Error, Netns};
use pyo3::prelude::*;

use crate::entry_pool::PooledEntry;
use crate::errors::{timeout_error, to_py};

/// How long one receive waits before control returns to Python (for Ctrl-C).
pub const POLL: Duration = Duration::from_millis(100);

/// Entries handled per step (between two signal checks).
pub const STEP: usize = 1024;

/// What one step of a dump did.
#[derive(Debug)]
pub enum Step {
    /// Handled a full step of entries; the dump goes on.
    Progress,
    /// Handled this many entries, then no datagram came within [`POLL`]; the dump goes on.
    Waiting(usize),
    /// Reached the end.
    End,
    /// Failed; the dump is over.
    Failed(Error),
}

/// A dump in progress on a socket of its own.
#[derive(Debug)]
pub struct Cursor {
    ct: CoreConntrack,
    state: Option<DumpState>,
    /// A filter checked here rather than in the kernel (`kernel_filter=False`), so that
    /// entries that do not match still count towards a step's bound.
    local: Option<DumpFilter>,
}

impl Cursor {
    /// The report of this cursor's dump reader thread, once it has run to its end.
    pub fn reader_report(&self) -> Option<ipvs_conntrack::socket::DumpReaderReport> {
        self.ct.dump_reader_report()
    }

    /// Opens a socket in `netns` (receives wait at most [`POLL`]) and sends the dump request.
    pub fn start(
        netns: &Netns,
        table: Table,
        filter: &DumpFilter,
        timeouts: Option<StateTimeouts>,
        dump_reader: Option<bool>,
    ) -> Result<Cursor, Error> {
        filter.validate()?;
        let opts = SocketOptions {
            so_rcvbuf: DEFAULT_SO_RCVBUF,
            recv_timeout: Some(POLL),
        };
        let mut ct = CoreConntrack::with_options(netns, &opts)?;
        if let Some(on) = dump_reader {
            ct.set_dump_reader(on);
        }
        match timeouts {
            Some(t) => ct.set_state_timeouts(t),
            None => ct.set_join_timeouts(false),
        }
        let (request, local) = if filter.user_space_only {
            let mut family_only = DumpFilter::all();
            family_only.family = filter.family;
            (family_only, Some(filter.clone()))
        } else {
            (filter.clone(), None)
        };
        let state = ct.dump_table(table, &request)?.suspend();
        Ok(Cursor {
            ct,
            state: Some(state),
            local,
        })
    }

    /// Passes the matching entries among the next `max` to `sink`, as views with the
    /// state timeouts in force; `sink` may fail the dump.
    pub fn step_views(
        &mut self,
        max: usize,
        mut sink: impl FnMut(&EntryView<'_>, Option<&StateTimeouts>) -> Result<(), Error>,
    ) -> Step {
        let local = self.local.take();
        let outcome = self.step_with(max, |dump, timeouts| {
            let v = match dump.next_view()? {
                Ok(v) => v,
                Err(e) => return Some(Err(e)),
            };
            if let Some(f) = &local {
                match f.matches(&v) {
                    Ok(true) => {}
                    Ok(false) => return Some(Ok(false)),
                    Err(e) => return Some(Err(e.into())),
                }
            }
            Some(sink(&v, timeouts).map(|()| true))
        });
        self.local = local;
        outcome
    }

    /// Like [`Cursor::step_views`], with owned entries (state timeouts joined).
    pub fn step_entries(&mut self, max: usize, mut sink: impl FnMut(CoreEntry)) -> Step {
        if self.local.is_some() {
            return self.step_views(max, |v, t| {
                let mut e = v.to_owned()?;
                if let Some(t) = t {
                    e.state_timeout = t.for_state(e.orig.proto, e.state);
                }
                sink(e);
                Ok(())
            });
        }
        // Without a user-space filter: the dump's own owned entries (built from values
        // only where the layout's shape allows, state timeouts joined).
        self.step_with(max, |dump, _| {
            Some(dump.next()?.map(|e| {
                sink(e);
                true
            }))
        })
    }

    /// [`Cursor::step_entries`] into pooled boxes: without a user-space filter, each entry
    /// is written straight into a box from the pool (no move of the large entry).
    pub fn step_pooled(&mut self, max: usize, mut sink: impl FnMut(PooledEntry)) -> Step {
        if self.local.is_some() {
            return self.step_entries(max, |e| sink(PooledEntry::new(e)));
        }
        self.step_with(max, |dump, _| {
            let Some(mut slot) = PooledEntry::take() else {
                return Some(dump.next()?.map(|e| {
                    sink(PooledEntry::new(e));
                    true
                }));
            };
            // On the end or an error the box goes back to the pool.
            Some(dump.next_into(slot.entry_mut())?.map(|()| {
                sink(slot);
                true
            }))
        })
    }

    /// Runs `one` for at most `max` entries of the dump: it reads the next entry and says
    /// whether it was passed on (`Ok(false)`: filtered out); a receive timeout pauses.
    fn step_with(
        &mut self,
        max: usize,
        mut one: impl FnMut(&mut Dump<'_>, Option<&StateTimeouts>) -> Option<Result<bool, Error>>,
    ) -> Step {
        let Some(state) = self.state.take() else {
            return Step::End;
        };
        let mut dump = self.ct.resume(state);
        let timeouts = dump.state_timeouts().cloned();
        let mut seen = 0;
        let mut passed = 0;
        let outcome = loop {
            if seen >= max {
                break Step::Progress;
            }
            match one(&mut dump, timeouts.as_ref()) {
                None => break Step::End,
                Some(Ok(p)) => {
                    seen += 1;
                    passed += usize::from(p);
                }
                Some(Err(Error::Timeout { .. })) => break Step::Waiting(passed),
                Some(Err(e)) => break Step::Failed(e),
            }
        };
        if matches!(outcome, Step::Progress | Step::Waiting(_)) {
            self.state = Some(dump.suspend());
        }
        outcome
    }
}

/// Runs `step` (with the GIL released) until the dump ends, checking for signals
/// between steps; fails if no entry arrives for `timeout`.
pub fn run_to_end<F>(
    py: Python<'_>,
    timeout: Duration,
    op: &'static str,
    mut step: F,
) -> PyResult<()>
where
    F: FnMut() -> Step + Send,
{
    let mut last_progress = Instant::now();
    loop {
        match py.detach(&mut step) {
            Step::Progress => last_progress = Instant::now(),
            Step::Waiting(n) => {
                if n > 0 {
                    last_progress = Instant::now();
                } else if last_progress.elapsed() >= timeout {
                    return Err(timeout_error(py, op, timeout.as_secs_f64()));
                }
            }
            Step::End => return Ok(()),
            Step::Failed(e) => return Err(to_py(py, e)),
        }
        py.check_signals()?;
    }
}
