//! A blocking netlink socket that checks who answers and which request an answer belongs to.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use netlink_sys::{Socket, SocketAddr};
use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeVal;

use crate::error::{libc_errno, DecodeError, Error, Result};
use crate::netlink::emit::set_sequence;
use crate::netlink::frame::{flags, Control, Frame, Frames, Header, NLMSG_HDRLEN};
use crate::netns::Netns;

mod reader;

pub use reader::{
    ReaderReport as DumpReaderReport, DEPTH as DUMP_READER_DEPTH,
    START_AFTER as DUMP_READER_START_AFTER,
};

/// netlink protocol number of nfnetlink.
pub const NETLINK_NETFILTER: isize = 12;
/// netlink protocol number of generic netlink.
pub const NETLINK_GENERIC: isize = 16;

/// Default size of the user-space receive buffer (the kernel fills at most 32 KiB per datagram).
pub const DEFAULT_RECV_BUFFER: usize = 64 * 1024;
/// Default kernel socket receive buffer (SO_RCVBUF) for request sockets.
pub const DEFAULT_SO_RCVBUF: usize = 1 << 20;

/// Options for opening a socket.
#[derive(Clone, Debug)]
pub struct SocketOptions {
    /// Kernel receive buffer size (SO_RCVBUFFORCE when allowed, else SO_RCVBUF).
    pub so_rcvbuf: usize,
    /// Timeout of every blocking receive; `None` waits forever.
    pub recv_timeout: Option<Duration>,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            so_rcvbuf: DEFAULT_SO_RCVBUF,
            recv_timeout: Some(Duration::from_secs(30)),
        }
    }
}

/// Which way a recorded datagram went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From this socket to the kernel.
    Sent,
    /// From the kernel to this socket.
    Received,
}

/// A callback that sees every datagram sent and received (for captures and fixtures).
pub type Recorder = Box<dyn FnMut(Direction, &[u8]) + Send>;

/// Makes the recorder of each socket opened while it is installed; gets the netlink protocol.
pub type RecorderFactory = std::sync::Arc<dyn Fn(isize) -> Recorder + Send + Sync>;

/// The process-wide recorder factory (see [`set_global_recorder`]).
static GLOBAL_RECORDER: std::sync::Mutex<Option<RecorderFactory>> = std::sync::Mutex::new(None);

/// Installs (or with `None` removes) a factory whose recorder every socket opened afterwards
/// gets, so that a whole command can be captured; returns the factory it replaces.
pub fn set_global_recorder(factory: Option<RecorderFactory>) -> Option<RecorderFactory> {
    let mut slot = GLOBAL_RECORDER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    std::mem::replace(&mut *slot, factory)
}

/// A recorder from the process-wide factory, if one is installed.
fn global_recorder(protocol: isize) -> Option<Recorder> {
    let factory = GLOBAL_RECORDER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    factory.map(|f| f(protocol))
}

/// A netlink socket with a receive buffer and sequence numbering.
pub struct NlSocket {
    recorder: Option<Recorder>,
    sock: Arc<Socket>,
    /// The dump reader thread while one runs (see [`NlSocket::set_dump_reader`]).
    reader: Option<reader::Reader>,
    /// Whether long dumps are received on a reader thread.
    dump_reader: bool,
    /// The report of the last reader thread that ran to its end.
    reader_report: Option<reader::ReaderReport>,
    /// The sequence number of a dump whose answer was not read to its end (a dump dropped
    /// or suspended part-way): the kernel refuses another dump (EBUSY) until it is.
    open_dump: Option<u32>,
    port: u32,
    next_seq: u32,
    buf: Vec<u8>,
    len: usize,
    pos: usize,
    dropped_foreign: u64,
    dropped_stray: u64,
}

impl NlSocket {
    /// Opens a socket of `protocol` inside `netns`.
    pub fn open(protocol: isize, netns: &Netns, opts: &SocketOptions) -> Result<Self> {
        let sock = netns.run(|| {
            let mut sock =
                Socket::new(protocol).map_err(|e| Error::io("open netlink socket", e))?;
            sock.bind_auto()
                .map_err(|e| Error::io("bind netlink socket", e))?;
            Ok(sock)
        })?;
        let mut addr = SocketAddr::new(0, 0);
        sock.get_address(&mut addr)
            .map_err(|e| Error::io("getsockname", e))?;
        // Extended ACK gives the kernel's error text; failure is harmless (old kernels).
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_cap_ack(true);
        let s = NlSocket {
            recorder: global_recorder(protocol),
            sock: Arc::new(sock),
            reader: None,
            dump_reader: dump_reader_default(),
            reader_report: None,
            open_dump: None,
            port: addr.port_number(),
            next_seq: seed_sequence(),
            buf: vec![0; DEFAULT_RECV_BUFFER],
            len: 0,
            pos: 0,
            dropped_foreign: 0,
            dropped_stray: 0,
        };
        s.set_rcvbuf(opts.so_rcvbuf)?;
        s.set_recv_timeout(opts.recv_timeout)?;
        Ok(s)
    }

    /// Sets the kernel receive buffer, forcing past `rmem_max` when privileged.
    pub fn set_rcvbuf(&self, size: usize) -> Result<()> {
        if setsockopt(&*self.sock, sockopt::RcvBufForce, &size).is_err() {
            setsockopt(&*self.sock, sockopt::RcvBuf, &size)
                .map_err(|e| Error::io("SO_RCVBUF", io::Error::from_raw_os_error(e as i32)))?;
        }
        Ok(())
    }

    /// Sets the timeout of blocking receives (`None` = wait forever).
    pub fn set_recv_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        let tv = match timeout {
            Some(d) => TimeVal::new(
                i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                i64::from(d.subsec_micros()),
            ),
            None => TimeVal::new(0, 0),
        };
        setsockopt(&*self.sock, sockopt::ReceiveTimeout, &tv)
            .map_err(|e| Error::io("SO_RCVTIMEO", io::Error::from_raw_os_error(e as i32)))
    }

    /// Whether long dumps receive on a reader thread while the caller decodes (the
    /// default on machines with more than one CPU; the environment variable
    /// `IPVSCT_DUMP_READER=0` or `1` overrides it). A dump then takes about the kernel's
    /// time, not the kernel's time plus the decoder's; the entries, their order and every
    /// check are the same. See the `reader` module of `socket`.
    pub fn set_dump_reader(&mut self, on: bool) {
        self.dump_reader = on;
    }

    /// Whether long dumps receive on a reader thread ([`NlSocket::set_dump_reader`]).
    pub fn dump_reader(&self) -> bool {
        self.dump_reader
    }

    /// Whether a reader thread is receiving for this socket now.
    pub fn reader_running(&self) -> bool {
        self.reader.is_some()
    }

    /// How the last dump's reader thread and the caller waited for each other (kept
    /// until the next thread ends): the time the decoding held the kernel's dump up.
    /// `None` if no reader thread has run to its end on this socket.
    pub fn dump_reader_report(&self) -> Option<DumpReaderReport> {
        self.reader_report
    }

    /// Waits for the reader thread to end and keeps its report.
    fn end_reader(&mut self) {
        if let Some(mut r) = self.reader.take() {
            r.join();
            self.reader_report = Some(r.report());
        }
    }

    /// Installs (or removes) a recorder that sees every datagram sent and received.
    pub fn set_recorder(&mut self, recorder: Option<Recorder>) {
        self.recorder = recorder;
    }

    /// The underlying netlink-sys socket.
    pub fn inner(&self) -> &Socket {
        &self.sock
    }

    /// This socket's port id.
    pub fn port(&self) -> u32 {
        self.port
    }

    /// Messages dropped because they did not come from the kernel (sender port id not 0).
    pub fn dropped_foreign(&self) -> u64 {
        self.dropped_foreign
    }

    /// Messages dropped because their sequence number or port id belonged to another request.
    pub fn dropped_stray(&self) -> u64 {
        self.dropped_stray
    }

    /// Allocates the next sequence number.
    pub fn next_sequence(&mut self) -> u32 {
        self.next_seq = self.next_seq.wrapping_add(1).max(1);
        self.next_seq
    }

    /// Sends one finished message, giving it a fresh sequence number, which is returned.
    pub fn send(&mut self, msg: &mut [u8], op: &'static str) -> Result<u32> {
        let seq = self.next_sequence();
        set_sequence(msg, seq);
        self.send_raw(msg, op)?;
        Ok(seq)
    }

    /// Sends bytes as they are (one or several messages with sequence numbers already set).
    pub fn send_raw(&mut self, bytes: &[u8], op: &'static str) -> Result<()> {
        let kernel = SocketAddr::new(0, 0);
        if let Some(r) = self.recorder.as_mut() {
            r(Direction::Sent, bytes);
        }
        // Pending unread data belongs to an earlier request; forget it.
        self.len = 0;
        self.pos = 0;
        let n = self
            .sock
            .send_to(bytes, &kernel, 0)
            .map_err(|e| Error::io(op, e))?;
        if n != bytes.len() {
            return Err(Error::io(
                op,
                io::Error::new(io::ErrorKind::WriteZero, "short netlink send"),
            ));
        }
        Ok(())
    }

    /// Receives one datagram from the kernel into the buffer, dropping anything not from port 0.
    ///
    /// Returns the number of bytes received.
    pub fn recv(&mut self, op: &'static str) -> Result<usize> {
        if self.reader.is_some() {
            if let Some(r) = self.recv_from_reader(op) {
                return r;
            }
        }
        // Bounded: foreign senders are dropped, at most this many in a row.
        for _ in 0..1024 {
            let mut slice = &mut self.buf[..];
            match self.sock.recv_from(&mut slice, libc_msg_trunc()) {
                Ok((n, addr)) => {
                    if addr.port_number() != 0 {
                        self.dropped_foreign += 1;
                        continue;
                    }
                    return self.received(n);
                }
                Err(e) if e.raw_os_error() == Some(libc_errno::EINTR) => continue,
                Err(e) => return Err(Error::io(op, e)),
            }
        }
        Err(Error::io(
            op,
            io::Error::other("too many messages from non-kernel senders"),
        ))
    }

    /// [`NlSocket::recv`] while a reader thread receives: its next datagram, or `None` once
    /// it has stopped (the reader is then gone and the caller receives itself).
    fn recv_from_reader(&mut self, op: &'static str) -> Option<Result<usize>> {
        let reader = self.reader.as_mut()?;
        let filled = match reader.next() {
            Some(Ok(f)) => f,
            Some(Err(e)) => {
                self.end_reader();
                return Some(Err(Error::io(op, e)));
            }
            None => {
                self.end_reader();
                return None;
            }
        };
        let old = std::mem::replace(&mut self.buf, filled.buf);
        reader.recycle(old);
        if filled.last {
            // It returns right after sending this.
            self.end_reader();
        }
        self.dropped_foreign += filled.foreign;
        Some(self.received(filled.len))
    }

    /// Takes a datagram of `n` bytes (as the kernel reported it) now in the buffer.
    fn received(&mut self, n: usize) -> Result<usize> {
        if n > self.buf.len() {
            return Err(Error::Decode(DecodeError::new(
                crate::error::DecodeErrorKind::Truncated {
                    needed: n,
                    available: self.buf.len(),
                },
                crate::error::AttrPath::ROOT,
                0,
            )));
        }
        self.len = n;
        self.pos = 0;
        if let Some(r) = self.recorder.as_mut() {
            r(Direction::Received, self.buf.get(..n).unwrap_or_default());
        }
        Ok(n)
    }

    /// Hands the rest of the answer to `seq` to a reader thread, unless one runs, the
    /// datagram in the buffer ends that answer, or no thread can be started.
    fn start_reader(&mut self, seq: u32) {
        if self.reader.is_some() || reader::ends_answer(self.datagram(), seq, self.port) {
            return;
        }
        self.reader = reader::Reader::start(Arc::clone(&self.sock), seq, self.port, self.buf.len());
    }

    /// The bytes of the last datagram not yet consumed.
    pub fn pending(&self) -> &[u8] {
        self.buf.get(self.pos..self.len).unwrap_or_default()
    }

    /// The whole last datagram.
    pub fn datagram(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// Starts reading the answer to request `seq`.
    pub fn exchange(&mut self, seq: u32, request: &'static str) -> Exchange<'_> {
        self.resume(ExchangeState::start(seq, request, false))
    }

    /// Starts reading the answer to dump request `seq`: as [`NlSocket::exchange`], and a
    /// long answer is received on a reader thread if [`NlSocket::dump_reader`] is on.
    pub fn dump_exchange(&mut self, seq: u32, request: &'static str) -> Exchange<'_> {
        self.open_dump = Some(seq);
        let threaded = self.dump_reader;
        self.resume(ExchangeState::start(seq, request, threaded))
    }

    /// Reads to its end, and drops, the answer of a dump left unfinished on this socket (a
    /// dump dropped or suspended part-way), so that the kernel takes a new dump request.
    /// Its errors are dropped with it. Call before sending a dump request.
    pub fn finish_open_dump(&mut self) {
        if let Some(seq) = self.open_dump.take() {
            let _ = self
                .resume(ExchangeState::start(seq, "unfinished dump", false))
                .drain();
        }
    }

    /// Continues reading an answer set aside with [`Exchange::suspend`]. No other request
    /// may have been sent on this socket in between (sending drops unread data).
    pub fn resume(&mut self, state: ExchangeState) -> Exchange<'_> {
        Exchange {
            sock: self,
            seq: state.seq,
            request: state.request,
            finished: state.finished,
            interrupted: state.interrupted,
            received: state.received,
            threaded: state.threaded,
        }
    }
}

impl std::fmt::Debug for NlSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NlSocket")
            .field("port", &self.port)
            .field("next_seq", &self.next_seq)
            .field("buffered", &(self.len - self.pos.min(self.len)))
            .field("dropped_foreign", &self.dropped_foreign)
            .field("dropped_stray", &self.dropped_stray)
            .field("recording", &self.recorder.is_some())
            .finish()
    }
}

/// Whether long dumps use a reader thread by default: `IPVSCT_DUMP_READER` if it is `0`
/// or `1`, else whether this process may run on more than one CPU.
fn dump_reader_default() -> bool {
    match std::env::var("IPVSCT_DUMP_READER").as_deref() {
        Ok("0") => false,
        Ok("1") => true,
        _ => std::thread::available_parallelism().is_ok_and(|n| n.get() > 1),
    }
}

fn libc_msg_trunc() -> i32 {
    nix::sys::socket::MsgFlags::MSG_TRUNC.bits()
}

fn seed_sequence() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or(1)
}

/// What [`Exchange::next_frame`] found.
#[derive(Debug)]
pub enum Step<'a> {
    /// A data message of this request.
    Data(Frame<'a>),
    /// The answer is complete.
    Finished,
}

/// Where a data frame sits in the receive buffer (see [`Exchange::next_meta`]).
#[derive(Clone, Copy, Debug)]
pub struct FrameMeta {
    /// Its header.
    pub header: Header,
    /// Its offset in the receive buffer.
    pub offset: usize,
}

/// Where the reading of one answer stands, without the socket borrow (see [`Exchange::suspend`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExchangeState {
    seq: u32,
    request: &'static str,
    finished: bool,
    interrupted: bool,
    received: u32,
    threaded: bool,
}

impl ExchangeState {
    /// An answer to `seq` of which nothing was read yet; `threaded`: whether a reader
    /// thread may receive the rest of a long one.
    fn start(seq: u32, request: &'static str, threaded: bool) -> Self {
        ExchangeState {
            seq,
            request,
            finished: false,
            interrupted: false,
            received: 0,
            threaded,
        }
    }
}

/// Reading the answer to one request: only its frames, until DONE or ACK.
///
/// A receive timeout ([`Error::Timeout`]) does not end the exchange: calling
/// [`Exchange::next_meta`] again waits for the rest of the same answer.
#[derive(Debug)]
pub struct Exchange<'s> {
    sock: &'s mut NlSocket,
    seq: u32,
    request: &'static str,
    finished: bool,
    interrupted: bool,
    /// Datagrams received for this answer so far (counted up to the reader's start).
    received: u32,
    /// Whether the rest of a long answer may go to a reader thread.
    threaded: bool,
}

impl<'s> Exchange<'s> {
    /// True once the kernel flagged NLM_F_DUMP_INTR on any message of this answer.
    pub fn interrupted(&self) -> bool {
        self.interrupted
    }

    /// True once DONE or the final ACK was read.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The socket.
    pub fn socket(&self) -> &NlSocket {
        self.sock
    }

    /// Releases the socket borrow, keeping the position in the answer for [`NlSocket::resume`].
    pub fn suspend(self) -> ExchangeState {
        ExchangeState {
            seq: self.seq,
            request: self.request,
            finished: self.finished,
            interrupted: self.interrupted,
            received: self.received,
            threaded: self.threaded,
        }
    }

    /// Returns the next data frame of this request, or `Finished`.
    pub fn next_frame(&mut self) -> Result<Step<'_>> {
        match self.next_meta()? {
            Some(meta) => Ok(Step::Data(self.frame(&meta))),
            None => Ok(Step::Finished),
        }
    }

    /// The frame described by `meta` (from [`Exchange::next_meta`]). Its header is read
    /// again from the receive buffer (where `meta` found it): a header copied out of
    /// `meta` would be read with wide loads that stall on the narrow stores that wrote it.
    #[inline]
    pub fn frame(&self, meta: &FrameMeta) -> Frame<'_> {
        let end = (meta.offset + meta.header.length as usize).min(self.sock.len);
        let header = self
            .sock
            .buf
            .get(meta.offset..)
            .and_then(|b| b.first_chunk::<NLMSG_HDRLEN>())
            .map_or(meta.header, Header::parse);
        Frame {
            header,
            payload: self
                .sock
                .buf
                .get(meta.offset + NLMSG_HDRLEN..end)
                .unwrap_or_default(),
            offset: meta.offset,
        }
    }

    /// Advances to the next data frame of this request and describes it without
    /// borrowing; `None` once the answer is complete.
    #[inline]
    pub fn next_meta(&mut self) -> Result<Option<FrameMeta>> {
        if self.finished {
            return Ok(None);
        }
        // The common case inline (its result stays in registers), the rest out of line.
        match self.next_data_fast() {
            Some(meta) => Ok(Some(meta)),
            None => {
                let next = self.next_meta_slow();
                if self.finished && self.sock.open_dump == Some(self.seq) {
                    self.sock.open_dump = None;
                }
                next
            }
        }
    }

    /// [`Exchange::next_meta`] past the fast path: receiving, control messages, strays.
    #[inline(never)]
    fn next_meta_slow(&mut self) -> Result<Option<FrameMeta>> {
        // Bounded by the number of stray/no-op messages tolerated in a row.
        for _ in 0..100_000 {
            if self.sock.pos >= self.sock.len {
                self.sock.recv(self.request)?;
                if self.threaded && self.received < reader::START_AFTER {
                    self.received += 1;
                    if self.received == reader::START_AFTER {
                        self.sock.start_reader(self.seq);
                    }
                }
                if self.sock.len == 0 {
                    continue;
                }
            }
            let start = self.sock.pos;
            let (frame_end, header, control) = {
                let pending = self.sock.pending();
                let frame = match Frames::new(pending).next() {
                    Some(Ok(f)) => f,
                    Some(Err(mut e)) => {
                        e.offset += start;
                        self.finished = true;
                        return Err(e.into());
                    }
                    None => {
                        self.sock.pos = self.sock.len;
                        continue;
                    }
                };
                let end = crate::netlink::attr::align4(frame.header.length as usize);
                let control = if frame.header.sequence == self.seq
                    && (frame.header.port == self.sock.port || frame.header.port == 0)
                {
                    Some(frame.control(self.request))
                } else {
                    None
                };
                (end, frame.header, control)
            };
            self.sock.pos = (start + frame_end).min(self.sock.len);
            let Some(control) = control else {
                self.sock.dropped_stray += 1;
                continue;
            };
            if header.flags & flags::NLM_F_DUMP_INTR != 0 {
                self.interrupted = true;
            }
            match control {
                Err(mut e) => {
                    e.offset += start;
                    self.finished = true;
                    return Err(e.into());
                }
                Ok(Control::Data) => {
                    return Ok(Some(FrameMeta {
                        header,
                        offset: start,
                    }));
                }
                Ok(Control::Noop) => continue,
                Ok(Control::Ack) | Ok(Control::Done(None)) => {
                    self.finished = true;
                    return Ok(None);
                }
                Ok(Control::Done(Some(e))) | Ok(Control::Error(e)) => {
                    self.finished = true;
                    return Err(Error::from_kernel(e));
                }
                Ok(Control::Overrun) => {
                    self.finished = true;
                    return Err(Error::io(
                        self.request,
                        io::Error::from_raw_os_error(libc_errno::ENOBUFS),
                    ));
                }
            }
        }
        self.finished = true;
        Err(Error::io(
            self.request,
            io::Error::other("too many unrelated messages"),
        ))
    }

    /// The common case of [`Exchange::next_meta`] without its general checks: the next
    /// frame of the current datagram is whole, ours, not a control message and not
    /// flagged DUMP_INTR. Anything else (including the end of the datagram) is `None`,
    /// and the general path takes it.
    #[inline(always)]
    fn next_data_fast(&mut self) -> Option<FrameMeta> {
        let start = self.sock.pos;
        let rest = self.sock.buf.get(start..self.sock.len)?;
        let header = Header::parse(rest.first_chunk::<NLMSG_HDRLEN>()?);
        let len = header.length as usize;
        let ours =
            header.sequence == self.seq && (header.port == self.sock.port || header.port == 0);
        // Types below NLMSG_MIN_TYPE (16) are control messages.
        if len < NLMSG_HDRLEN
            || len > rest.len()
            || !ours
            || header.message_type < 16
            || header.flags & flags::NLM_F_DUMP_INTR != 0
        {
            return None;
        }
        self.sock.pos = (start + crate::netlink::attr::align4(len)).min(self.sock.len);
        Some(FrameMeta {
            header,
            offset: start,
        })
    }

    /// Reads to the end of the answer, discarding data; used after an early stop.
    pub fn drain(&mut self) -> Result<()> {
        // Bounded: each loop consumes at least one frame or fails.
        for _ in 0..10_000_000 {
            if self.next_meta()?.is_none() {
                return Ok(());
            }
        }
        Ok(())
    }
}
