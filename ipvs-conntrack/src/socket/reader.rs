//! The dump reader thread: receives the rest of a long dump on another thread while the
//! caller decodes, so that a dump takes about the kernel's time instead of the kernel's
//! time plus the decoder's.
//!
//! The kernel builds each datagram of a dump inside the `recvmsg` call that asks for it.
//! Once a dump has filled [`START_AFTER`] datagrams, [`Exchange`](super::Exchange) hands the
//! receiving to a [`Reader`]: a thread that calls `recvmsg` on the same socket and passes
//! whole datagrams, in order, through a channel of [`DEPTH`] buffers. The caller's
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

use std::io;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;

use netlink_sys::Socket;

use crate::error::libc_errno;
use crate::netlink::frame::{flags, Frames};

/// Datagrams a dump receives on the caller's thread before the reader takes over (a dump
/// that ends sooner never starts a thread).
pub const START_AFTER: u32 = 2;

/// Filled buffers the reader may be ahead of the caller.
pub const DEPTH: usize = 4;

/// Netlink control message types that end an answer.
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;

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

/// The handle of a running reader thread.
#[derive(Debug)]
pub(crate) struct Reader {
    filled: Receiver<Item>,
    empty: SyncSender<Vec<u8>>,
    thread: Option<JoinHandle<()>>,
}

impl Reader {
    /// Starts a reader of the rest of the answer to `seq` on `sock` (whose port is
    /// `port`), into buffers of `buf_size` bytes. `None` if no thread could be started
    /// (the caller then goes on receiving itself).
    pub(crate) fn start(sock: Arc<Socket>, seq: u32, port: u32, buf_size: usize) -> Option<Self> {
        let (filled_tx, filled) = sync_channel::<Item>(DEPTH);
        let (empty, empty_rx) = sync_channel::<Vec<u8>>(DEPTH + 1);
        let thread = std::thread::Builder::new()
            .name("ipvsct-dump-reader".into())
            .spawn(move || run(&sock, seq, port, buf_size, &filled_tx, &empty_rx))
            .ok()?;
        Some(Reader {
            filled,
            empty,
            thread: Some(thread),
        })
    }

    /// The next datagram, in order; `None` once the reader has stopped and everything it
    /// received was taken.
    pub(crate) fn next(&mut self) -> Option<Item> {
        match self.filled.recv() {
            Ok(item) => Some(item),
            Err(_) => {
                self.join();
                None
            }
        }
    }

    /// Gives a buffer back for the reader to fill again.
    pub(crate) fn recycle(&self, buf: Vec<u8>) {
        // A full queue of empty buffers only means this one is freed.
        let _ = self.empty.try_send(buf);
    }

    /// Waits for the thread to end, once it has sent its last datagram or error.
    pub(crate) fn join(&mut self) {
        if let Some(t) = self.thread.take() {
            // The thread has stopped (its sender is gone); a panic in it was already
            // reported by its end of the channel closing early.
            let _ = t.join();
        }
    }
}

/// The reader thread's loop.
fn run(
    sock: &Socket,
    seq: u32,
    port: u32,
    buf_size: usize,
    filled: &SyncSender<Item>,
    empty: &Receiver<Vec<u8>>,
) {
    // Bounded: every turn receives one datagram of a dump the kernel ends with DONE, or
    // stops; the bound only guards against a kernel that never does (2^32 datagrams).
    for _ in 0..u32::MAX {
        let mut buf = match empty.try_recv() {
            Ok(b) => b,
            Err(TryRecvError::Empty) => vec![0; buf_size],
            Err(TryRecvError::Disconnected) => return,
        };
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
        if filled.send(item).is_err() || last {
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
