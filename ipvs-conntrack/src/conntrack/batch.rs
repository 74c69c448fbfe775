//! Batching: many write requests per `sendmsg`, each acknowledged by the kernel and
//! matched back to its request by sequence number, so that no failure goes unreported.
//!
//! The kernel handles every message of a datagram in turn and queues one
//! acknowledgement (or error) per message on the sender's socket before `sendmsg`
//! returns. [`Conntrack::execute_batch`] therefore sends at most as many requests at a
//! time as the socket's receive buffer can hold acknowledgements for, reads all of
//! them, and only then sends the next datagram.

use std::collections::HashMap;
use std::io;
use std::time::{Duration, Instant};

use nix::sys::socket::{getsockopt, sockopt};

use crate::conntrack::client::Conntrack;
use crate::conntrack::request::WriteRequest;
use crate::error::{libc_errno, Error, KernelError, Result};
use crate::netlink::emit::set_sequence;
use crate::netlink::frame::{Control, Frames};
use crate::socket::NlSocket;

/// Default largest number of requests sent in one datagram.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
/// Default largest datagram sent (kept well below the default SO_SNDBUF).
pub const DEFAULT_MAX_DATAGRAM: usize = 64 * 1024;
/// Receive-buffer bytes reserved per outstanding acknowledgement (kernel skb truesize, rounded up).
pub const ACK_BUDGET: usize = 1024;

/// Requests encoded and validated, ready to be sent together.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    buf: Vec<u8>,
    slots: Vec<Slot>,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    offset: usize,
    len: usize,
    op: &'static str,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Batch::default()
    }

    /// An empty batch with room for `requests` requests of about `bytes_each` bytes.
    pub fn with_capacity(requests: usize, bytes_each: usize) -> Self {
        Batch {
            buf: Vec::with_capacity(requests.saturating_mul(bytes_each)),
            slots: Vec::with_capacity(requests),
        }
    }

    /// Validates and appends a request; returns its index in the batch.
    pub fn push(&mut self, req: &impl WriteRequest) -> Result<usize> {
        let offset = self.buf.len();
        req.encode_into(&mut self.buf)?;
        let len = self.buf.len() - offset;
        self.slots.push(Slot {
            offset,
            len,
            op: req.operation(),
        });
        Ok(self.slots.len() - 1)
    }

    /// Number of requests.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True if there are no requests.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Total encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        self.buf.len()
    }

    /// Removes every request.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.slots.clear();
    }

    /// The operation name of request `index`.
    pub fn operation(&self, index: usize) -> Option<&'static str> {
        self.slots.get(index).map(|s| s.op)
    }
}

/// Tuning of [`Conntrack::execute_batch_with`].
#[derive(Clone, Debug)]
pub struct BatchOptions {
    /// Largest number of requests per datagram (also capped by the receive buffer).
    pub max_in_flight: usize,
    /// Largest datagram in bytes.
    pub max_datagram: usize,
    /// How long to wait for acknowledgements before counting them as lost.
    pub ack_timeout: Duration,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_datagram: DEFAULT_MAX_DATAGRAM,
            ack_timeout: Duration::from_secs(30),
        }
    }
}

/// One request of a batch that the kernel refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchFailure {
    /// Index of the request in the batch.
    pub index: usize,
    /// The kernel's error (errno, extended-ACK message).
    pub error: KernelError,
}

/// What happened to every request of a batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Requests in the batch.
    pub requests: usize,
    /// Requests acknowledged with success.
    pub succeeded: usize,
    /// Requests the kernel refused, in batch order.
    pub failures: Vec<BatchFailure>,
    /// Requests with no acknowledgement at all (receive buffer overrun or timeout), in order.
    pub lost: Vec<usize>,
    /// Datagrams sent.
    pub datagrams: usize,
    /// Wall time of the whole exchange.
    pub elapsed: Duration,
}

impl BatchReport {
    /// True if every request was acknowledged with success.
    pub fn all_succeeded(&self) -> bool {
        self.failures.is_empty() && self.lost.is_empty() && self.succeeded == self.requests
    }

    /// True if every request got an answer (success or error).
    pub fn is_complete(&self) -> bool {
        self.lost.is_empty() && self.succeeded + self.failures.len() == self.requests
    }

    /// Requests per second.
    pub fn rate(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.requests as f64 / s
        } else {
            0.0
        }
    }

    /// The failures with errno `errno`.
    pub fn failures_with(&self, errno: i32) -> impl Iterator<Item = &BatchFailure> {
        self.failures.iter().filter(move |f| f.error.errno == errno)
    }
}

/// How many requests fit in one datagram given the receive buffer for their acks.
fn window(sock: &NlSocket, opts: &BatchOptions) -> usize {
    let rcvbuf = getsockopt(sock.inner(), sockopt::RcvBuf).unwrap_or(ACK_BUDGET * 256);
    // Keep half of the receive buffer free for anything else arriving.
    (rcvbuf / 2 / ACK_BUDGET).clamp(1, opts.max_in_flight.max(1))
}

/// Sends `batch` on `sock` and collects one answer per request.
pub(crate) fn run_batch(
    sock: &mut NlSocket,
    batch: &Batch,
    opts: &BatchOptions,
) -> Result<BatchReport> {
    let start = Instant::now();
    let mut report = BatchReport {
        requests: batch.len(),
        ..BatchReport::default()
    };
    let win = window(sock, opts);
    let saved_timeout = getsockopt(sock.inner(), sockopt::ReceiveTimeout).ok();
    sock.set_recv_timeout(Some(opts.ack_timeout))?;
    let result = run_windows(sock, batch, opts, win, &mut report);
    if let Some(tv) = saved_timeout {
        let secs = u64::try_from(tv.tv_sec()).unwrap_or(0);
        let micros = u32::try_from(tv.tv_usec()).unwrap_or(0);
        let d = Duration::from_secs(secs) + Duration::from_micros(u64::from(micros));
        let _ = sock.set_recv_timeout(if d.is_zero() { None } else { Some(d) });
    }
    report.failures.sort_by_key(|f| f.index);
    report.lost.sort_unstable();
    report.elapsed = start.elapsed();
    result.map(|()| report)
}

fn run_windows(
    sock: &mut NlSocket,
    batch: &Batch,
    opts: &BatchOptions,
    win: usize,
    report: &mut BatchReport,
) -> Result<()> {
    let mut chunk = Vec::with_capacity(opts.max_datagram);
    let mut pending: HashMap<u32, usize> = HashMap::with_capacity(win);
    let mut next = 0usize;
    // Bounded: every turn sends at least one request of the batch.
    while next < batch.slots.len() {
        chunk.clear();
        pending.clear();
        while let Some(slot) = batch.slots.get(next) {
            if pending.len() >= win
                || (!chunk.is_empty() && chunk.len() + slot.len > opts.max_datagram)
            {
                break;
            }
            let at = chunk.len();
            chunk.extend_from_slice(
                batch
                    .buf
                    .get(slot.offset..slot.offset + slot.len)
                    .unwrap_or_default(),
            );
            let seq = sock.next_sequence();
            if let Some(m) = chunk.get_mut(at..) {
                set_sequence(m, seq);
            }
            pending.insert(seq, next);
            next += 1;
        }
        sock.send_raw(&chunk, "conntrack batch send")?;
        report.datagrams += 1;
        collect_acks(sock, batch, &mut pending, report)?;
    }
    Ok(())
}

/// Reads answers until every request in `pending` has one, or they are declared lost.
fn collect_acks(
    sock: &mut NlSocket,
    batch: &Batch,
    pending: &mut HashMap<u32, usize>,
    report: &mut BatchReport,
) -> Result<()> {
    let port = sock.port();
    // Bounded: each receive either answers requests or ends the wait (overrun, timeout).
    while !pending.is_empty() {
        match sock.recv("conntrack batch acknowledgements") {
            Ok(_) => {}
            Err(e) if e.errno() == Some(libc_errno::ENOBUFS) => {
                // Acknowledgements were dropped: take what is still queued, then the rest is lost.
                drain_after_overrun(sock, batch, pending, report)?;
                break;
            }
            Err(Error::Timeout { .. }) => break,
            Err(e) => return Err(e),
        }
        for frame in Frames::new(sock.datagram()) {
            let frame = frame?;
            let h = frame.header;
            if h.port != port && h.port != 0 {
                continue;
            }
            let Some(index) = pending.get(&h.sequence).copied() else {
                continue;
            };
            let op = batch.operation(index).unwrap_or("conntrack batch");
            match frame.control(op)? {
                Control::Ack => {
                    pending.remove(&h.sequence);
                    report.succeeded += 1;
                }
                Control::Error(error) => {
                    pending.remove(&h.sequence);
                    if error.errno == libc_errno::EPERM {
                        return Err(Error::Permission { op });
                    }
                    report.failures.push(BatchFailure { index, error });
                }
                // Echoed data or multipart answers are not expected for write requests.
                _ => {}
            }
        }
    }
    report.lost.extend(pending.drain().map(|(_, i)| i));
    Ok(())
}

fn drain_after_overrun(
    sock: &mut NlSocket,
    batch: &Batch,
    pending: &mut HashMap<u32, usize>,
    report: &mut BatchReport,
) -> Result<()> {
    sock.set_recv_timeout(Some(Duration::from_millis(200)))?;
    // Bounded by the queued acknowledgements; ends at the first empty wait.
    for _ in 0..1_000_000 {
        match sock.recv("conntrack batch acknowledgements") {
            Ok(_) => {}
            Err(Error::Timeout { .. }) => break,
            Err(e) if e.errno() == Some(libc_errno::ENOBUFS) => continue,
            Err(e) => return Err(e),
        }
        for frame in Frames::new(sock.datagram()).flatten() {
            if let Some(index) = pending.get(&frame.header.sequence).copied() {
                let op = batch.operation(index).unwrap_or("conntrack batch");
                match frame.control(op) {
                    Ok(Control::Ack) => {
                        pending.remove(&frame.header.sequence);
                        report.succeeded += 1;
                    }
                    Ok(Control::Error(error)) => {
                        pending.remove(&frame.header.sequence);
                        report.failures.push(BatchFailure { index, error });
                    }
                    _ => {}
                }
            }
        }
        if pending.is_empty() {
            break;
        }
    }
    Ok(())
}

impl Conntrack {
    /// Sends every request of `batch`, many per datagram, and reports each one's outcome.
    ///
    /// Requests are independent: a failed one does not stop the others. The call
    /// fails as a whole only for socket errors or missing permission.
    pub fn execute_batch(&mut self, batch: &Batch) -> Result<BatchReport> {
        self.execute_batch_with(batch, &BatchOptions::default())
    }

    /// [`Conntrack::execute_batch`] with explicit tuning.
    pub fn execute_batch_with(
        &mut self,
        batch: &Batch,
        opts: &BatchOptions,
    ) -> Result<BatchReport> {
        run_batch(self.socket_mut(), batch, opts)
    }
}

/// Turns an incomplete report into an error naming what was lost (for callers that need all).
pub fn require_complete(report: &BatchReport) -> Result<()> {
    if report.is_complete() {
        return Ok(());
    }
    Err(Error::Io {
        op: "conntrack batch",
        source: io::Error::other(format!(
            "{} of {} requests got no acknowledgement (first lost index {:?})",
            report.lost.len(),
            report.requests,
            report.lost.first()
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::request::{CreateRequest, DeleteRequest};
    use crate::conntrack::tuple::{Tuple, IPPROTO_UDP};

    fn udp(i: u16) -> Tuple {
        Tuple::with_ports(
            IPPROTO_UDP,
            "10.0.0.1".parse().unwrap(),
            i,
            "10.0.0.2".parse().unwrap(),
            53,
        )
    }

    #[test]
    fn push_validates_and_keeps_messages_apart() {
        let mut b = Batch::new();
        assert_eq!(b.push(&CreateRequest::new(udp(1), 30)).unwrap(), 0);
        assert_eq!(b.push(&DeleteRequest::orig(udp(2))).unwrap(), 1);
        let mut bad = CreateRequest::new(udp(3), 30);
        bad.attrs.timeout = None;
        assert!(matches!(b.push(&bad), Err(Error::InvalidRequest(_))));
        assert_eq!(b.len(), 2);
        let frames: Vec<_> = Frames::new(&b.buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(b.operation(0), Some("conntrack create"));
        assert_eq!(b.operation(1), Some("conntrack delete"));
        assert_eq!(
            frames[0].header.length as usize + frames[1].header.length as usize,
            b.encoded_len()
        );
    }
}
