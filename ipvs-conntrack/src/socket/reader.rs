//! The dump reader thread: receives the rest of a long dump on another thread while the
//! caller decodes, so that a dump takes about the kernel's time instead of the kernel's
//! time plus the decoder's.
//!
//! The kernel builds each datagram of a dump inside the `recvmsg` call that asks for it.
//! Once a dump has filled [`START_AFTER`] datagrams, [`Exchange`](super::Exchange) hands the
//! receiving to a [`Reader`]: a thread that calls `recvmsg` on the same socket and passes
//! whole datagrams, in order, through a queue of at most [`DEPTH`] buffers. The caller's
//! [`NlSocket::recv`](super::NlSocket::recv) then takes the next filled buffer instead of
//! receiving, and gives its previous one back. Nothing else changes: the caller still
//! checks every message (sequence, port, DONE, errors, NLM_F_DUMP_INTR).
//!
//! The thread stops after the datagram that ends the answer to the dump's sequence number
//! (DONE, ERROR or OVERRUN, a message without NLM_F_MULTI, or bytes it cannot frame),
//! after a receive error (passed on, so the caller sees it as it would have), or when the
//! caller is gone. It never receives past the end of the dump's answer, so the socket's
//! later requests are read by the caller as before. Memory is bounded by [`DEPTH`] + 2
//! buffers.
//!
//! A side that waits is woken only when it has work in hand ([`WAKE_CALLER_AT`],
//! [`WAKE_READER_AT`]), and both sides time their waits: the [`ReaderReport`] says how long
//! the caller's decoding held the kernel's dump up (the thread waiting for room, and the
//! caller's lag behind the last datagram).

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netlink_sys::Socket;

use crate::error::libc_errno;
use crate::netlink::frame::msg_type::{NLMSG_DONE, NLMSG_ERROR, NLMSG_OVERRUN};
use crate::netlink::frame::{flags, Frames};

/// Datagrams a dump receives on the caller's thread before the reader takes over (a dump
/// that ends sooner never starts a thread).
pub const START_AFTER: u32 = 2;

/// Filled buffers the reader may be ahead of the caller.
pub const DEPTH: usize = 8;

/// Filled datagrams that wake a caller waiting for one (or the reader's last). Each wake-up
/// costs both CPUs a futex call and, on a virtual machine, an interrupt between them; a
/// caller that decodes faster than the kernel fills would otherwise sleep and wake once
/// per datagram.
pub const WAKE_CALLER_AT: usize = 4;

/// Free places in the queue that wake a reader waiting for one.
pub const WAKE_READER_AT: usize = 4;

/// How a dump's reader thread and its caller waited for each other: how much the caller's
/// decoding held the kernel's dump up, measured directly rather than by comparing the
/// times of two dumps (which vary with the kernel's speed from run to run).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReaderReport {
    /// Datagrams the thread received.
    pub datagrams: u64,
    /// Time the thread waited for a free place in the queue: while it waits, the kernel
    /// builds nothing, so this is the time the decoding held the dump up.
    pub reader_waited: Duration,
    /// Time the caller waited for a datagram: the decoder idle, the kernel the limit.
    pub caller_waited: Duration,
    /// Datagrams queued, the last one included, when the thread received the last one:
    /// what the caller still had to decode once the kernel had finished.
    pub queued_at_end: u32,
    /// Time from the thread's last datagram to the caller taking it: the decoding that
    /// came after the kernel's last datagram (all but the last datagram's own).
    pub caller_behind_at_end: Duration,
}

impl ReaderReport {
    /// The time the decoding added to the dump: `reader_waited + caller_behind_at_end`.
    pub fn held_up(&self) -> Duration {
        self.reader_waited + self.caller_behind_at_end
    }
}

/// One datagram received by the reader.
#[derive(Debug)]
pub(crate) struct Filled {
    /// The buffer, holding the datagram at its start.
    pub buf: Vec<u8>,
    /// The datagram's length as the kernel reported it (with MSG_TRUNC: larger than the
    /// buffer if it was cut).
    pub len: usize,
    /// Datagrams from senders other than the kernel, dropped before this one.
    pub foreign: u64,
    /// Whether this is the reader's last datagram (it ends the answer).
    pub last: bool,
}

/// What the reader passes on: a datagram, or the receive error that stopped it.
type Item = Result<Filled, io::Error>;

/// The queue between the reader and the caller. A mutex and two condition variables, so
/// that a side with nothing to do sleeps at once (a spinning wait would take CPU time, and
/// on a virtual CPU that shares its core, the reader's speed).
#[derive(Debug, Default)]
struct Queue {
    state: Mutex<QueueState>,
    /// Signalled when a datagram is added or the reader stops.
    filled_cv: Condvar,
    /// Signalled when a datagram is taken or the caller is gone.
    space_cv: Condvar,
}

#[derive(Debug, Default)]
struct QueueState {
    filled: VecDeque<Item>,
    /// Buffers given back by the caller, for the reader to fill again.
    empty: Vec<Vec<u8>>,
    /// The reader has stopped: nothing more will be added.
    stopped: bool,
    /// The caller is gone: the reader stops at its next turn.
    gone: bool,
    /// The caller sleeps on `filled_cv` (a signal when it is not would be a wasted call).
    caller_waiting: bool,
    /// The reader sleeps on `space_cv`.
    reader_waiting: bool,
    /// The report so far (the caller's fields are kept in [`Reader`]).
    report: ReaderReport,
    /// When the last datagram was added.
    last_added: Option<Instant>,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // The state stays consistent if a holder panicked: every update is one push/pop.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a datagram (or the error that stops the reader) once there is room; wakes the
    /// caller if it waits and [`WAKE_CALLER_AT`] datagrams or the last are ready. False if
    /// the caller is gone.
    fn add(&self, item: Item) -> bool {
        let last = item.as_ref().map_or(true, |f| f.last);
        let wake = {
            let mut q = self.lock();
            // Bounded: each wake-up follows removals or the caller's leaving.
            if q.filled.len() >= DEPTH && !q.gone {
                let since = Instant::now();
                while q.filled.len() >= DEPTH && !q.gone {
                    q.reader_waiting = true;
                    q = self
                        .space_cv
                        .wait(q)
                        .unwrap_or_else(PoisonError::into_inner);
                    q.reader_waiting = false;
                }
                q.report.reader_waited += since.elapsed();
            }
            if q.gone {
                return false;
            }
            q.filled.push_back(item);
            q.report.datagrams += 1;
            if last {
                q.report.queued_at_end = u32::try_from(q.filled.len()).unwrap_or(u32::MAX);
                q.last_added = Some(Instant::now());
            }
            q.caller_waiting && (last || q.filled.len() >= WAKE_CALLER_AT)
        };
        if wake {
            self.filled_cv.notify_one();
        }
        true
    }
}

/// The handle of a running reader thread.
#[derive(Debug)]
pub(crate) struct Reader {
    queue: Arc<Queue>,
    thread: Option<JoinHandle<()>>,
    /// Time the caller waited for datagrams.
    caller_waited: Duration,
    /// Time from the last datagram's addition to the caller taking it.
    caller_behind_at_end: Duration,
}

impl Reader {
    /// Starts a reader of the rest of the answer to `seq` on `sock` (whose port is
    /// `port`), into buffers of `buf_size` bytes. `None` if no thread could be started
    /// (the caller then goes on receiving itself).
    pub(crate) fn start(sock: Arc<Socket>, seq: u32, port: u32, buf_size: usize) -> Option<Self> {
        let queue = Arc::new(Queue::default());
        let theirs = Arc::clone(&queue);
        let thread = std::thread::Builder::new()
            .name("ipvsct-dump-reader".into())
            .spawn(move || {
                let stop = Stop(&theirs);
                run(&sock, seq, port, buf_size, stop.0);
            })
            .ok()?;
        Some(Reader::with(queue, thread))
    }

    /// The handle of `thread`, which fills `queue`.
    fn with(queue: Arc<Queue>, thread: JoinHandle<()>) -> Self {
        Reader {
            queue,
            thread: Some(thread),
            caller_waited: Duration::ZERO,
            caller_behind_at_end: Duration::ZERO,
        }
    }

    /// How the thread and the caller waited for each other so far.
    pub(crate) fn report(&self) -> ReaderReport {
        ReaderReport {
            caller_waited: self.caller_waited,
            caller_behind_at_end: self.caller_behind_at_end,
            ..self.queue.lock().report
        }
    }

    /// The next datagram, in order; `None` once the reader has stopped and everything it
    /// received was taken.
    pub(crate) fn next(&mut self) -> Option<Item> {
        let mut q = self.queue.lock();
        // Bounded: each wake-up follows an addition or the reader's stop.
        loop {
            if let Some(item) = q.filled.pop_front() {
                if q.filled.is_empty() {
                    if let Some(at) = q.last_added.take() {
                        self.caller_behind_at_end = at.elapsed();
                    }
                }
                let free = DEPTH.saturating_sub(q.filled.len());
                let wake = q.reader_waiting && free >= WAKE_READER_AT;
                drop(q);
                if wake {
                    self.queue.space_cv.notify_one();
                }
                return Some(item);
            }
            if q.stopped {
                drop(q);
                self.join();
                return None;
            }
            q.caller_waiting = true;
            let since = Instant::now();
            q = self
                .queue
                .filled_cv
                .wait(q)
                .unwrap_or_else(PoisonError::into_inner);
            self.caller_waited += since.elapsed();
            q.caller_waiting = false;
        }
    }

    /// Gives a buffer back for the reader to fill again.
    pub(crate) fn recycle(&self, buf: Vec<u8>) {
        let mut q = self.queue.lock();
        // More than DEPTH + 1 spare buffers are never needed: the rest are freed.
        if q.empty.len() <= DEPTH {
            q.empty.push(buf);
        }
    }

    /// Waits for the thread to end, once it has sent its last datagram or error.
    pub(crate) fn join(&mut self) {
        if let Some(t) = self.thread.take() {
            // The thread has stopped, or stops right after its last datagram; a panic in
            // it ends the queue early, which the caller sees as the end of the datagrams.
            let _ = t.join();
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // The reader stops at its next turn (after at most one more receive, which the
        // kernel answers at once while a dump runs); it is not waited for.
        self.queue.lock().gone = true;
        self.queue.space_cv.notify_one();
    }
}

/// Marks the queue stopped when the reader thread ends, also by a panic: then with an error
/// after the last datagram, since one it had received may be lost.
struct Stop<'q>(&'q Queue);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        let mut q = self.0.lock();
        if std::thread::panicking() {
            q.filled
                .push_back(Err(io::Error::other("the dump reader thread panicked")));
        }
        q.stopped = true;
        drop(q);
        self.0.filled_cv.notify_one();
    }
}

/// The reader thread's loop.
fn run(sock: &Socket, seq: u32, port: u32, buf_size: usize, queue: &Queue) {
    // Bounded: every turn receives one datagram of a dump the kernel ends with DONE, or
    // stops; the bound only guards against a kernel that never does (2^32 datagrams).
    for _ in 0..u32::MAX {
        let spare = {
            let mut q = queue.lock();
            if q.gone {
                return;
            }
            q.empty.pop()
        };
        let mut buf = spare.unwrap_or_else(|| vec![0; buf_size]);
        let item = receive(sock, &mut buf);
        let last = match &item {
            Ok((len, _)) => {
                ends_answer(buf.get(..*len).unwrap_or(&buf), seq, port) || *len > buf.len()
            }
            Err(_) => true,
        };
        let item = item.map(|(len, foreign)| Filled {
            buf,
            len,
            foreign,
            last,
        });
        if !queue.add(item) || last {
            return;
        }
    }
}

/// Receives one datagram from the kernel into `buf`: its length and how many datagrams
/// from other senders were dropped first.
fn receive(sock: &Socket, buf: &mut [u8]) -> io::Result<(usize, u64)> {
    let mut foreign = 0u64;
    // Bounded as `NlSocket::recv`: at most this many foreign datagrams or interruptions.
    for _ in 0..1024 {
        let mut slice = &mut *buf;
        match sock.recv_from(&mut slice, super::libc_msg_trunc()) {
            Ok((n, addr)) => {
                if addr.port_number() != 0 {
                    foreign += 1;
                    continue;
                }
                return Ok((n, foreign));
            }
            Err(e) if e.raw_os_error() == Some(libc_errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(
        "too many messages from non-kernel senders",
    ))
}

/// Whether `datagram` holds the end of the answer to `seq` for `port`.
pub(crate) fn ends_answer(datagram: &[u8], seq: u32, port: u32) -> bool {
    for frame in Frames::new(datagram) {
        let Ok(f) = frame else {
            // Bytes that do not frame: the caller reports them; nothing after is read.
            return true;
        };
        let h = &f.header;
        if h.sequence != seq || (h.port != port && h.port != 0) {
            continue;
        }
        if matches!(h.message_type, NLMSG_ERROR | NLMSG_DONE | NLMSG_OVERRUN)
            || h.flags & flags::NLM_F_MULTI == 0
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::frame::NLMSG_HDRLEN;

    fn message(kind: u16, flags_: u16, seq: u32, port: u32) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&(NLMSG_HDRLEN as u32 + 4).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&flags_.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&port.to_ne_bytes());
        m.extend_from_slice(&[0; 4]);
        m
    }

    fn filled(len: usize, last: bool) -> Item {
        Ok(Filled {
            buf: vec![0; 8],
            len,
            foreign: 0,
            last,
        })
    }

    /// A reader whose thread runs `body` (in place of receiving) and then stops as the
    /// real one does.
    fn fake_reader(body: impl FnOnce(&Queue) + Send + 'static) -> Reader {
        let queue = Arc::new(Queue::default());
        let theirs = Arc::clone(&queue);
        let thread = std::thread::spawn(move || {
            let stop = Stop(&theirs);
            body(stop.0);
        });
        Reader::with(queue, thread)
    }

    /// Adds a datagram as the reader thread does.
    fn push(q: &Queue, item: Item) {
        assert!(q.add(item), "the caller is there");
    }

    /// Waits (bounded) until `cond` holds of the queue's state.
    fn until(q: &Queue, cond: impl Fn(&QueueState) -> bool) -> bool {
        for _ in 0..5000 {
            if cond(&q.lock()) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        false
    }

    #[test]
    fn datagrams_come_in_order_then_the_end() {
        let mut r = fake_reader(|q| {
            for i in 1..=3 {
                push(q, filled(i, i == 3));
            }
        });
        let lens: Vec<usize> = std::iter::from_fn(|| r.next())
            .map(|i| i.expect("datagram").len)
            .collect();
        assert_eq!(lens, [1, 2, 3]);
        assert!(r.thread.is_none(), "joined at the end");
    }

    #[test]
    fn a_reader_that_panics_ends_with_an_error() {
        let mut r = fake_reader(|q| {
            push(q, filled(1, false));
            panic!("a test of the reader's end");
        });
        assert_eq!(r.next().expect("first").expect("datagram").len, 1);
        let err = r.next().expect("an error").expect_err("not a datagram");
        assert!(err.to_string().contains("panicked"), "{err}");
        assert!(r.next().is_none());
    }

    #[test]
    fn a_waiting_caller_sleeps_until_enough_datagrams_or_the_last() {
        use std::sync::atomic::{AtomicBool, Ordering};
        static SLEPT_THROUGH_FEWER: AtomicBool = AtomicBool::new(false);
        let mut r = fake_reader(|q| {
            assert!(until(q, |s| s.caller_waiting), "the caller waits");
            for i in 1..WAKE_CALLER_AT {
                push(q, filled(i, false));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
            let s = q.lock();
            let fewer = s.caller_waiting && s.filled.len() == WAKE_CALLER_AT - 1;
            SLEPT_THROUGH_FEWER.store(fewer, Ordering::SeqCst);
            drop(s);
            push(q, filled(WAKE_CALLER_AT, false));
            // Taken them all, the caller waits again; the last datagram alone wakes it.
            assert!(until(q, |s| s.caller_waiting && s.filled.is_empty()));
            push(q, filled(WAKE_CALLER_AT + 1, true));
            // Keep the thread (and so the queue's `stopped`) until the caller has it.
            assert!(until(q, |s| s.filled.is_empty()));
        });
        assert_eq!(r.next().expect("first").expect("datagram").len, 1);
        assert!(
            SLEPT_THROUGH_FEWER.load(Ordering::SeqCst),
            "woken with fewer than WAKE_CALLER_AT datagrams"
        );
        let lens: Vec<usize> = std::iter::from_fn(|| r.next())
            .map(|i| i.expect("datagram").len)
            .collect();
        assert_eq!(lens, (2..=WAKE_CALLER_AT + 1).collect::<Vec<_>>());
        let report = r.report();
        assert_eq!(report.datagrams, WAKE_CALLER_AT as u64 + 1);
        assert!(
            report.caller_waited >= Duration::from_millis(50),
            "{report:?}"
        );
        assert_eq!(
            report.reader_waited,
            Duration::ZERO,
            "the queue never filled"
        );
        assert_eq!(report.queued_at_end, 1, "the caller had taken the rest");
    }

    #[test]
    fn a_full_queue_holds_the_reader_until_enough_places_are_free() {
        let mut r = fake_reader(|q| {
            for i in 1..=DEPTH {
                push(q, filled(i, false));
            }
            // This one waits for room: the caller takes WAKE_READER_AT before it goes on.
            push(q, filled(DEPTH + 1, true));
        });
        assert!(until(&r.queue, |s| s.reader_waiting && s.filled.len() == DEPTH));
        for i in 1..WAKE_READER_AT {
            assert_eq!(r.next().expect("taken").expect("datagram").len, i);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(
            r.queue.lock().reader_waiting,
            "woken with fewer than WAKE_READER_AT free places"
        );
        let lens: Vec<usize> = std::iter::from_fn(|| r.next())
            .map(|i| i.expect("datagram").len)
            .collect();
        assert_eq!(lens, (WAKE_READER_AT..=DEPTH + 1).collect::<Vec<_>>());
        let report = r.report();
        assert_eq!(report.datagrams, DEPTH as u64 + 1);
        assert!(
            report.reader_waited >= Duration::from_millis(50),
            "{report:?}"
        );
        assert!(report.held_up() >= report.reader_waited);
        assert!(
            (1..=DEPTH as u32).contains(&report.queued_at_end),
            "{report:?}"
        );
    }

    #[test]
    fn the_answer_ends_at_done_error_overrun_or_a_single_part_message() {
        let multi = flags::NLM_F_MULTI;
        let data = message(0x0100, multi, 7, 42);
        assert!(!ends_answer(&[data.clone(), data.clone()].concat(), 7, 42));
        for end in [NLMSG_DONE, NLMSG_ERROR, NLMSG_OVERRUN] {
            assert!(ends_answer(
                &[data.clone(), message(end, multi, 7, 42)].concat(),
                7,
                42
            ));
        }
        // A message without NLM_F_MULTI is a whole answer.
        assert!(ends_answer(&message(0x0100, 0, 7, 0), 7, 42));
        // Another request's DONE, or another port's, does not end this one.
        assert!(!ends_answer(&message(NLMSG_DONE, multi, 8, 42), 7, 42));
        assert!(!ends_answer(&message(NLMSG_DONE, multi, 7, 43), 7, 42));
        // Bytes that do not frame end it (the caller reports them).
        assert!(ends_answer(&[0xff; 7], 7, 42));
        assert!(!ends_answer(&[], 7, 42));
    }
}
