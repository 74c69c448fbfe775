//! A dump that outlives one call: its own socket plus the suspended [`DumpState`],
//! advanced in bounded steps so the caller can release the GIL and check for
//! signals between them.

use std::time::{Duration, Instant};

use ipvs_conntrack::conntrack::timeout::StateTimeouts;
use ipvs_conntrack::conntrack::{
    Conntrack as CoreConntrack, DumpFilter, DumpState, Entry as CoreEntry, EntryView, Table,
};
use ipvs_conntrack::socket::{SocketOptions, DEFAULT_SO_RCVBUF};
use ipvs_conntrack::{Error, Netns};
use pyo3::prelude::*;

use crate::errors::{to_py, timeout_error};

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
}

impl Cursor {
    /// Opens a socket in `netns` (receives wait at most [`POLL`]) and sends the dump request.
    pub fn start(
        netns: &Netns,
        table: Table,
        filter: &DumpFilter,
        timeouts: Option<StateTimeouts>,
    ) -> Result<Cursor, Error> {
        let opts = SocketOptions {
            so_rcvbuf: DEFAULT_SO_RCVBUF,
            recv_timeout: Some(POLL),
        };
        let mut ct = CoreConntrack::with_options(netns, &opts)?;
        match timeouts {
            Some(t) => ct.set_state_timeouts(t),
            None => ct.set_join_timeouts(false),
        }
        let state = ct.dump_table(table, filter)?.suspend();
        Ok(Cursor {
            ct,
            state: Some(state),
        })
    }

    /// Passes up to `max` owned entries (state timeouts joined) to `sink`.
    pub fn step_entries(&mut self, max: usize, mut sink: impl FnMut(CoreEntry)) -> Step {
        let Some(state) = self.state.take() else {
            return Step::End;
        };
        let mut dump = self.ct.resume(state);
        let mut n = 0;
        let outcome = loop {
            if n >= max {
                break Step::Progress;
            }
            match dump.next() {
                None => break Step::End,
                Some(Ok(e)) => {
                    sink(e);
                    n += 1;
                }
                Some(Err(Error::Timeout { .. })) => break Step::Waiting(n),
                Some(Err(e)) => break Step::Failed(e),
            }
        };
        if matches!(outcome, Step::Progress | Step::Waiting(_)) {
            self.state = Some(dump.suspend());
        }
        outcome
    }

    /// Passes up to `max` entry views, with the state timeouts in force, to `sink`.
    pub fn step_views(
        &mut self,
        max: usize,
        mut sink: impl FnMut(&EntryView<'_>, Option<&StateTimeouts>),
    ) -> Step {
        let Some(state) = self.state.take() else {
            return Step::End;
        };
        let mut dump = self.ct.resume(state);
        let timeouts = dump.state_timeouts().cloned();
        let mut n = 0;
        let outcome = loop {
            if n >= max {
                break Step::Progress;
            }
            match dump.next_view() {
                None => break Step::End,
                Some(Ok(v)) => {
                    sink(&v, timeouts.as_ref());
                    n += 1;
                }
                Some(Err(Error::Timeout { .. })) => break Step::Waiting(n),
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
pub fn run_to_end<F>(py: Python<'_>, timeout: Duration, op: &'static str, mut step: F) -> PyResult<()>
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
