//! Conntrack and expectation events (NFNLGRP_CONNTRACK_*): a typed stream of NEW /
//! UPDATE / DESTROY events with explicit overrun reporting and table resynchronisation.
//!
//! Events come from the kernel (port 0) with sequence number 0, one message per
//! datagram; they are not answers to a request, so the stream reads datagrams
//! itself instead of going through [`crate::socket::Exchange`].
//!
//! ## Overruns
//! When the socket's receive buffer is full the kernel drops events and the next
//! receive fails with ENOBUFS. The stream turns that into an [`Event::Overrun`]
//! item (how many receives failed in a row, since when) and keeps delivering what
//! arrives next: an overrun is never swallowed and never ends the stream. Events
//! were lost, so a caller that keeps a picture of the table calls
//! [`EventStream::resync`] with its [`TableView`]: the stream dumps the table and
//! returns every difference as a [`Change`].
//!
//! ## Receive buffer and reliable delivery
//! The kernel receive buffer defaults to [`DEFAULT_EVENT_RCVBUF`] (8 MiB, forced
//! past `net.core.rmem_max` when the caller has CAP_NET_ADMIN; the kernel doubles it
//! for its bookkeeping), which holds about 13 000 events (13 107 UDP NEW events
//! measured on Linux 6.18) before the kernel starts dropping; set
//! [`EventOptions::rcvbuf`] for more or less.
//!
//! [`EventOptions::reliable`] sets NETLINK_BROADCAST_ERROR and NETLINK_NO_ENOBUFS:
//! the kernel then learns when an event could not be queued, and conntrack keeps
//! the event instead of dropping it — a DESTROY event keeps its entry on the dying
//! list until it is delivered, NEW/UPDATE events are sent again with the next packet
//! of the flow. The cost: a reader that falls behind holds kernel memory (dying
//! entries still count against `nf_conntrack_max`, so new connections can be
//! dropped when the table fills), deletion is delayed, and no overrun is reported
//! because the kernel never signals ENOBUFS on such a socket.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use crate::conntrack::client::Conntrack;
use crate::conntrack::entry::{Entry, EntryView, Family};
use crate::conntrack::expect::Expectation;
use crate::conntrack::filter::DumpFilter;
use crate::conntrack::layout::LayoutCache;
use crate::conntrack::timeout::StateTimeouts;
use crate::conntrack::tuple::Tuple;
use crate::conntrack::wire::*;
use crate::error::{libc_errno, AttrPath, DecodeError, DecodeErrorKind, Error, Result};
use crate::netlink::attr::Attrs;
use crate::netlink::frame::flags::{NLM_F_CREATE, NLM_F_EXCL};
use crate::netlink::frame::{msg_type, Frame, Frames, NLMSG_HDRLEN};
use crate::netlink::nfnetlink::{
    split_type, NFGENMSG_LEN, NFNL_SUBSYS_CTNETLINK, NFNL_SUBSYS_CTNETLINK_EXP,
};
use crate::netns::Netns;
use crate::socket::{NlSocket, SocketOptions, NETLINK_NETFILTER};

pub use crate::conntrack::wire::CTA_TIMESTAMP_EVENT;

/// How many times [`EventStream::resync`] dumps when the kernel reports the dump interrupted.
pub const RESYNC_ATTEMPTS: u32 = 5;

/// Default kernel receive buffer of an event socket (8 MiB).
pub const DEFAULT_EVENT_RCVBUF: usize = 8 << 20;

bitflags::bitflags! {
    /// The event groups to subscribe to (bit `n - 1` is multicast group `n`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct EventGroups: u32 {
        /// NFNLGRP_CONNTRACK_NEW.
        const NEW = 1 << 0;
        /// NFNLGRP_CONNTRACK_UPDATE.
        const UPDATE = 1 << 1;
        /// NFNLGRP_CONNTRACK_DESTROY.
        const DESTROY = 1 << 2;
        /// NFNLGRP_CONNTRACK_EXP_NEW.
        const EXP_NEW = 1 << 3;
        /// NFNLGRP_CONNTRACK_EXP_UPDATE (not used by current kernels).
        const EXP_UPDATE = 1 << 4;
        /// NFNLGRP_CONNTRACK_EXP_DESTROY.
        const EXP_DESTROY = 1 << 5;
        /// Every conntrack group.
        const CONNTRACK = Self::NEW.bits() | Self::UPDATE.bits() | Self::DESTROY.bits();
        /// Every expectation group.
        const EXPECT = Self::EXP_NEW.bits() | Self::EXP_UPDATE.bits() | Self::EXP_DESTROY.bits();
    }
}

impl EventGroups {
    /// The multicast group numbers (NFNLGRP_*) in this set.
    pub fn group_numbers(&self) -> impl Iterator<Item = u32> + '_ {
        let bits = self.bits();
        (1..=6u32).filter(move |g| bits & (1 << (g - 1)) != 0)
    }
}

/// What happened to a connection or expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum EventKind {
    /// Created (IPCTNL_MSG_*_NEW with NLM_F_CREATE|NLM_F_EXCL).
    New,
    /// Changed (IPCTNL_MSG_CT_NEW without those flags).
    Update,
    /// Destroyed (IPCTNL_MSG_*_DELETE).
    Destroy,
}

impl EventKind {
    /// Lower-case name (`new`, `update`, `destroy`).
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::New => "new",
            EventKind::Update => "update",
            EventKind::Destroy => "destroy",
        }
    }

    /// Classifies a message by its ctnetlink message number and netlink flags.
    pub fn of_message(msg: u8, flags: u16) -> Option<EventKind> {
        match msg {
            IPCTNL_MSG_CT_NEW => {
                if flags & (NLM_F_CREATE | NLM_F_EXCL) == NLM_F_CREATE | NLM_F_EXCL {
                    Some(EventKind::New)
                } else {
                    Some(EventKind::Update)
                }
            }
            IPCTNL_MSG_CT_DELETE => Some(EventKind::Destroy),
            _ => None,
        }
    }
}

/// A conntrack event: what happened and the entry as the kernel described it.
///
/// UPDATE events carry only what the kernel sends for the change (tuples, id, status
/// and timeout always; protocol info, mark, labels, helper when relevant). DESTROY
/// events carry counters and start/stop timestamps when `nf_conntrack_acct` and
/// `nf_conntrack_timestamp` are on (see [`set_accounting`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ConntrackEvent {
    /// NEW, UPDATE or DESTROY.
    pub kind: EventKind,
    /// The entry (with `state_timeout` joined when the stream knows the timeouts).
    pub entry: Entry,
    /// CTA_TIMESTAMP_EVENT: when the kernel generated the event (ns, needs timestamps on).
    pub event_time: Option<u64>,
}

/// An expectation event.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ExpectEvent {
    /// NEW or DESTROY.
    pub kind: EventKind,
    /// The expectation.
    pub expectation: Expectation,
}

/// Events were lost: the receive buffer overflowed (ENOBUFS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Overrun {
    /// Receives that failed with ENOBUFS in a row, this one included.
    pub failed_receives: u64,
    /// Overruns since the stream was opened.
    pub total: u64,
    /// When the first receive of this run failed.
    pub since: SystemTime,
    /// When this receive failed.
    pub at: SystemTime,
}

/// One item of an event stream.
// Nearly every item is a conntrack event: boxing it would cost an allocation per event.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(tag = "type", rename_all = "lowercase"))]
pub enum Event {
    /// A connection was created, changed or destroyed.
    Conntrack(ConntrackEvent),
    /// An expectation was created or destroyed.
    Expect(ExpectEvent),
    /// Events were lost; the stream goes on.
    Overrun(Overrun),
}

/// Which events the stream passes on, checked on the raw message before decoding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only these families (empty = all).
    pub families: Vec<Family>,
    /// Only these L4 protocols of the original (or master) tuple (empty = all).
    pub protocols: Vec<u8>,
}

impl EventFilter {
    /// Passes everything.
    pub fn all() -> Self {
        EventFilter::default()
    }

    /// Only `family`.
    pub fn family(mut self, f: Family) -> Self {
        self.families.push(f);
        self
    }

    /// Only L4 protocol `p` (may be called several times).
    pub fn protocol(mut self, p: u8) -> Self {
        self.protocols.push(p);
        self
    }

    fn is_all(&self) -> bool {
        self.families.is_empty() && self.protocols.is_empty()
    }

    /// Decides from the raw frame, reading only the family byte and the protocol number.
    pub fn passes(&self, frame: &Frame<'_>) -> bool {
        if self.is_all() {
            return true;
        }
        let family = frame.payload.first().copied().unwrap_or(0);
        if !self.families.is_empty() && !self.families.iter().any(|f| f.value() == family) {
            return false;
        }
        if self.protocols.is_empty() {
            return true;
        }
        match peek_protocol(frame) {
            Some(p) => self.protocols.contains(&p),
            None => false,
        }
    }
}

/// The L4 protocol number of the first tuple (CTA_TUPLE_ORIG or CTA_EXPECT_MASTER, both type 1).
fn peek_protocol(frame: &Frame<'_>) -> Option<u8> {
    let body = frame.payload.get(NFGENMSG_LEN..)?;
    let tuple = Attrs::new(body, 0, AttrPath::ROOT, &[])
        .map_while(|a| a.ok())
        .find(|a| a.kind() == CTA_TUPLE_ORIG)?;
    let proto = tuple
        .nested(&[])
        .map_while(|a| a.ok())
        .find(|a| a.kind() == CTA_TUPLE_PROTO)?;
    let num = proto
        .nested(&[])
        .map_while(|a| a.ok())
        .find(|a| a.kind() == CTA_PROTO_NUM)?;
    num.u8().ok()
}

/// How an event stream is opened.
#[derive(Clone, Debug)]
pub struct EventOptions {
    /// Groups to subscribe to.
    pub groups: EventGroups,
    /// Kernel receive buffer in bytes (default [`DEFAULT_EVENT_RCVBUF`]).
    pub rcvbuf: usize,
    /// NETLINK_BROADCAST_ERROR + NETLINK_NO_ENOBUFS (see the module documentation for the cost).
    pub reliable: bool,
    /// How long one [`EventStream::next_event`] waits; `None` waits forever.
    pub recv_timeout: Option<Duration>,
    /// Messages to skip without decoding them.
    pub filter: EventFilter,
    /// Fill `Entry::state_timeout` from the namespace's default timeouts (read once at open).
    pub join_timeouts: bool,
}

impl Default for EventOptions {
    fn default() -> Self {
        EventOptions {
            groups: EventGroups::CONNTRACK,
            rcvbuf: DEFAULT_EVENT_RCVBUF,
            reliable: false,
            recv_timeout: None,
            filter: EventFilter::default(),
            join_timeouts: true,
        }
    }
}

impl EventOptions {
    /// Options subscribing to `groups`, defaults otherwise.
    pub fn groups(groups: EventGroups) -> Self {
        EventOptions {
            groups,
            ..EventOptions::default()
        }
    }
}

/// Counters of a stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventStats {
    /// Event messages received (before filtering).
    pub received: u64,
    /// Messages skipped by the [`EventFilter`].
    pub filtered: u64,
    /// Messages that were neither conntrack nor expectation events (skipped).
    pub other: u64,
    /// Receives that failed with ENOBUFS.
    pub overruns: u64,
}

/// A blocking stream of conntrack / expectation events from one network namespace.
///
/// Iterating yields `Result<Event>`; a decode error concerns one message only and the
/// stream continues after it. With a receive timeout set, an idle wait yields
/// [`Error::Timeout`] from the iterator (and `Ok(None)` from [`EventStream::next_event`]).
#[derive(Debug)]
pub struct EventStream {
    sock: NlSocket,
    netns: Netns,
    opts: EventOptions,
    timeouts: Option<StateTimeouts>,
    /// Offset of the next unread frame in the last datagram.
    pos: usize,
    len: usize,
    stats: EventStats,
    run: Option<(u64, SystemTime)>,
    dumper: Option<Conntrack>,
    /// Entry layouts seen in events (for [`EventStream::next_view`]).
    layouts: LayoutCache,
}

/// Where the frame to hand out sits in the receive buffer.
enum Found {
    Frame { start: usize },
    Overrun(Overrun),
    Timeout,
}

impl EventStream {
    /// Subscribes to `groups` in `netns` with default options.
    pub fn open(netns: &Netns, groups: EventGroups) -> Result<Self> {
        Self::with_options(netns, &EventOptions::groups(groups))
    }

    /// Subscribes with explicit options.
    pub fn with_options(netns: &Netns, opts: &EventOptions) -> Result<Self> {
        if opts.groups.is_empty() {
            return Err(Error::InvalidRequest(
                "event stream: subscribe to at least one group".into(),
            ));
        }
        let sock = NlSocket::open(
            NETLINK_NETFILTER,
            netns,
            &SocketOptions {
                so_rcvbuf: opts.rcvbuf,
                recv_timeout: opts.recv_timeout,
            },
        )?;
        for g in opts.groups.group_numbers() {
            sock.inner()
                .add_membership(g)
                .map_err(|e| Error::io("subscribe to conntrack events", e))?;
        }
        if opts.reliable {
            sock.inner()
                .set_broadcast_error(true)
                .map_err(|e| Error::io("NETLINK_BROADCAST_ERROR", e))?;
            sock.inner()
                .set_no_enobufs(true)
                .map_err(|e| Error::io("NETLINK_NO_ENOBUFS", e))?;
        }
        let timeouts = if opts.join_timeouts {
            Conntrack::open(netns)
                .and_then(|mut c| c.default_timeouts())
                .ok()
        } else {
            None
        };
        Ok(EventStream {
            sock,
            netns: netns.clone(),
            opts: opts.clone(),
            timeouts,
            pos: 0,
            len: 0,
            stats: EventStats::default(),
            run: None,
            dumper: None,
            layouts: LayoutCache::new(),
        })
    }

    /// The namespace of the stream.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// The options the stream was opened with.
    pub fn options(&self) -> &EventOptions {
        &self.opts
    }

    /// Counters: events received, filtered, overruns.
    pub fn stats(&self) -> EventStats {
        self.stats
    }

    /// The underlying socket (port id, foreign-sender counter).
    pub fn socket(&self) -> &NlSocket {
        &self.sock
    }

    /// Changes the kernel receive buffer.
    pub fn set_rcvbuf(&mut self, bytes: usize) -> Result<()> {
        self.opts.rcvbuf = bytes;
        self.sock.set_rcvbuf(bytes)
    }

    /// Changes how long a receive waits (`None` = forever).
    pub fn set_recv_timeout(&mut self, t: Option<Duration>) -> Result<()> {
        self.opts.recv_timeout = t;
        self.sock.set_recv_timeout(t)
    }

    /// Uses these state timeouts for `Entry::state_timeout` (e.g. a bound policy's).
    pub fn set_state_timeouts(&mut self, t: Option<StateTimeouts>) {
        self.timeouts = t;
    }

    /// Finds the next event frame, receiving as needed.
    fn find(&mut self) -> Result<Found> {
        // Bounded: every turn consumes a frame or a receive; the caller's timeout bounds waits.
        loop {
            if self.pos >= self.len {
                match self.sock.recv("receive conntrack events") {
                    Ok(n) => {
                        self.pos = 0;
                        self.len = n;
                        self.run = None;
                    }
                    Err(e) if e.errno() == Some(libc_errno::ENOBUFS) => {
                        self.pos = 0;
                        self.len = 0;
                        self.stats.overruns += 1;
                        let now = SystemTime::now();
                        let (n, since) = match self.run {
                            Some((n, since)) => (n + 1, since),
                            None => (1, now),
                        };
                        self.run = Some((n, since));
                        return Ok(Found::Overrun(Overrun {
                            failed_receives: n,
                            total: self.stats.overruns,
                            since,
                            at: now,
                        }));
                    }
                    Err(Error::Timeout { .. }) => return Ok(Found::Timeout),
                    Err(e) => return Err(e),
                }
                continue;
            }
            let start = self.pos;
            let dg = self
                .sock
                .datagram()
                .get(start..self.len)
                .unwrap_or_default();
            let frame = match Frames::new(dg).next() {
                Some(Ok(f)) => f,
                Some(Err(mut e)) => {
                    self.pos = self.len;
                    e.offset += start;
                    return Err(e.into());
                }
                None => {
                    self.pos = self.len;
                    continue;
                }
            };
            self.pos =
                (start + crate::netlink::attr::align4(frame.header.length as usize)).min(self.len);
            let (subsys, _) = split_type(frame.header.message_type);
            let is_event = frame.header.message_type >= 0x100
                && (subsys == NFNL_SUBSYS_CTNETLINK || subsys == NFNL_SUBSYS_CTNETLINK_EXP);
            if !is_event {
                if frame.header.message_type != msg_type::NLMSG_NOOP {
                    self.stats.other += 1;
                }
                continue;
            }
            self.stats.received += 1;
            if !self.opts.filter.passes(&frame) {
                self.stats.filtered += 1;
                continue;
            }
            return Ok(Found::Frame { start });
        }
    }

    fn frame_at(&self, start: usize) -> Result<Frame<'_>> {
        frame_in(&self.sock, self.len, start)
    }

    /// The next event, decoded and owned; `Ok(None)` when the receive timeout expired.
    pub fn next_event(&mut self) -> Result<Option<Event>> {
        let start = match self.find()? {
            Found::Frame { start } => start,
            Found::Overrun(o) => return Ok(Some(Event::Overrun(o))),
            Found::Timeout => return Ok(None),
        };
        let timeouts = self.timeouts.clone();
        let frame = self.frame_at(start)?;
        decode_event(&frame, timeouts.as_ref()).map(Some)
    }

    /// The next event as a zero-copy view into the receive buffer; `Ok(None)` on timeout.
    pub fn next_view(&mut self) -> Result<Option<EventView<'_>>> {
        let start = match self.find()? {
            Found::Frame { start } => start,
            Found::Overrun(o) => return Ok(Some(EventView::Overrun(o))),
            Found::Timeout => return Ok(None),
        };
        let frame = frame_in(&self.sock, self.len, start)?;
        let (subsys, msg) = split_type(frame.header.message_type);
        if subsys == NFNL_SUBSYS_CTNETLINK_EXP {
            let e = Expectation::from_frame(&frame)?;
            let kind = exp_kind(msg, frame.header.flags);
            return Ok(Some(EventView::Expect(ExpectEvent {
                kind,
                expectation: e,
            })));
        }
        let kind = EventKind::of_message(msg, frame.header.flags).ok_or_else(|| {
            Error::Decode(DecodeError::new(
                DecodeErrorKind::UnexpectedMessage {
                    message_type: frame.header.message_type,
                },
                AttrPath::ROOT,
                frame.offset,
            ))
        })?;
        let entry = EntryView::from_frame_cached(&frame, &mut self.layouts)?;
        Ok(Some(EventView::Conntrack { kind, entry }))
    }

    /// Dumps the table and brings `view` up to date, returning every difference found:
    /// entries missed while events were lost (after an [`Event::Overrun`]), entries
    /// whose state, status, mark, labels or helper changed, and entries gone.
    ///
    /// The events still queued on the socket are read and discarded first (the dump
    /// supersedes them): after an overrun the kernel drops every further event, without
    /// reporting a new overrun, until the queue has been read empty
    /// (net/netlink/af_netlink.c), so a dump taken before that could miss changes.
    pub fn resync(&mut self, view: &mut TableView) -> Result<Vec<Change>> {
        self.drain_queue()?;
        if self.dumper.is_none() {
            let mut c = Conntrack::open(&self.netns)?;
            if let Some(t) = &self.timeouts {
                c.set_state_timeouts(t.clone());
            } else {
                c.set_join_timeouts(false);
            }
            self.dumper = Some(c);
        }
        let dumper = match self.dumper.as_mut() {
            Some(d) => d,
            None => return Err(Error::InvalidRequest("no dump client".into())),
        };
        // Events keep changing the table while it is dumped; an interrupted dump is retried.
        let mut attempt = 0;
        let fresh = loop {
            attempt += 1;
            match TableView::from_table(dumper, &DumpFilter::all()) {
                Err(Error::DumpInterrupted) if attempt < RESYNC_ATTEMPTS => continue,
                other => break other?,
            }
        };
        Ok(view.replace_with(fresh))
    }
}

impl EventStream {
    /// Reads the socket queue empty (bounded by [`DRAIN_LIMIT`]), discarding the events.
    ///
    /// Overruns met while draining are part of the resync (the dump that follows
    /// supersedes whatever was lost), so they do not count in [`EventStats::overruns`].
    fn drain_queue(&mut self) -> Result<()> {
        let overruns = self.stats.overruns;
        let saved = self.opts.recv_timeout;
        self.sock.set_recv_timeout(Some(Duration::from_millis(2)))?;
        let start = std::time::Instant::now();
        let mut result = Ok(());
        while start.elapsed() < DRAIN_LIMIT {
            match self.next_view() {
                Ok(None) => break,
                Ok(Some(_)) | Err(Error::Decode(_)) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.stats.overruns = overruns;
        self.run = None;
        self.sock.set_recv_timeout(saved)?;
        result
    }
}

/// Longest time [`EventStream::resync`] spends reading the queue empty before dumping.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(5);

fn exp_kind(msg: u8, flags: u16) -> EventKind {
    if msg == IPCTNL_MSG_EXP_DELETE {
        EventKind::Destroy
    } else if flags & (NLM_F_CREATE | NLM_F_EXCL) == NLM_F_CREATE | NLM_F_EXCL {
        EventKind::New
    } else {
        EventKind::Update
    }
}

/// Decodes one event message (conntrack or expectation).
pub fn decode_event(frame: &Frame<'_>, timeouts: Option<&StateTimeouts>) -> Result<Event> {
    let (subsys, msg) = split_type(frame.header.message_type);
    if subsys == NFNL_SUBSYS_CTNETLINK_EXP {
        return Ok(Event::Expect(ExpectEvent {
            kind: exp_kind(msg, frame.header.flags),
            expectation: Expectation::from_frame(frame)?,
        }));
    }
    let unexpected = || {
        Error::Decode(DecodeError::new(
            DecodeErrorKind::UnexpectedMessage {
                message_type: frame.header.message_type,
            },
            AttrPath::ROOT,
            frame.offset,
        ))
    };
    if subsys != NFNL_SUBSYS_CTNETLINK {
        return Err(unexpected());
    }
    let kind = EventKind::of_message(msg, frame.header.flags).ok_or_else(unexpected)?;
    let mut entry = Entry::from_frame(frame)?;
    let event_time = entry.event_time;
    if let Some(t) = timeouts {
        entry.state_timeout = t.for_state(entry.orig.proto, entry.state);
    }
    Ok(Event::Conntrack(ConntrackEvent {
        kind,
        entry,
        event_time,
    }))
}

/// The frame at `start` of the last `len` bytes received on `sock`.
fn frame_in(sock: &NlSocket, len: usize, start: usize) -> Result<Frame<'_>> {
    let dg = sock.datagram().get(..len).unwrap_or_default();
    let mut frames = Frames::new(dg.get(start..).unwrap_or_default());
    match frames.next() {
        Some(Ok(mut f)) => {
            f.offset = start;
            Ok(f)
        }
        Some(Err(e)) => Err(e.into()),
        None => Err(DecodeError::new(
            DecodeErrorKind::Truncated {
                needed: NLMSG_HDRLEN,
                available: 0,
            },
            AttrPath::ROOT,
            start,
        )
        .into()),
    }
}

/// A zero-copy event (see [`EventStream::next_view`]).
// Nearly every item is a conntrack event: boxing it would defeat the zero-copy view.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum EventView<'a> {
    /// A conntrack event whose entry borrows the receive buffer.
    Conntrack {
        /// NEW, UPDATE or DESTROY.
        kind: EventKind,
        /// The entry.
        entry: EntryView<'a>,
    },
    /// An expectation event.
    Expect(ExpectEvent),
    /// Events were lost.
    Overrun(Overrun),
}

impl Iterator for EventStream {
    type Item = Result<Event>;

    /// Blocks for the next event; yields [`Error::Timeout`] when a receive timeout is set and expires.
    fn next(&mut self) -> Option<Result<Event>> {
        match self.next_event() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => Some(Err(Error::Timeout {
                op: "receive conntrack events",
            })),
            Err(e) => Some(Err(e)),
        }
    }
}

/// Identifies a connection across events and dumps: zone and original tuple.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnKey {
    /// CTA_ZONE (0 when absent).
    pub zone: u16,
    /// Original tuple (zone and unknown attributes cleared).
    pub orig: TupleKey,
}

/// The hashable part of a tuple.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TupleKey {
    /// Source address.
    pub src: std::net::IpAddr,
    /// Destination address.
    pub dst: std::net::IpAddr,
    /// L4 protocol.
    pub proto: u8,
    /// Source port.
    pub src_port: Option<u16>,
    /// Destination port.
    pub dst_port: Option<u16>,
    /// ICMP type.
    pub icmp_type: Option<u8>,
    /// ICMP code.
    pub icmp_code: Option<u8>,
    /// ICMP id.
    pub icmp_id: Option<u16>,
}

impl From<&Tuple> for TupleKey {
    fn from(t: &Tuple) -> Self {
        TupleKey {
            src: t.src,
            dst: t.dst,
            proto: t.proto,
            src_port: t.src_port,
            dst_port: t.dst_port,
            icmp_type: t.icmp_type,
            icmp_code: t.icmp_code,
            icmp_id: t.icmp_id,
        }
    }
}

impl ConnKey {
    /// The key of the connection with original tuple `orig` in `zone`.
    pub fn new(zone: u16, orig: &Tuple) -> ConnKey {
        ConnKey {
            zone,
            orig: TupleKey::from(orig),
        }
    }

    /// The key of an entry.
    pub fn of(e: &Entry) -> ConnKey {
        ConnKey {
            zone: e.zone.or(e.orig.zone).unwrap_or(0),
            orig: TupleKey::from(&e.orig),
        }
    }
}

/// A difference found by [`EventStream::resync`].
// Every variant holds whole entries; boxing them would only add allocations.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// In the table, not in the view.
    Added(Entry),
    /// In both, with a different state, status, mark, labels, helper or reply tuple.
    Updated {
        /// As the view had it.
        old: Entry,
        /// As the table has it.
        new: Entry,
    },
    /// In the view, no longer in the table.
    Removed(Entry),
}

impl Change {
    /// The event this change stands for (NEW, UPDATE or DESTROY of the entry).
    pub fn to_event(&self) -> ConntrackEvent {
        let (kind, entry) = match self {
            Change::Added(e) => (EventKind::New, e.clone()),
            Change::Updated { new, .. } => (EventKind::Update, new.clone()),
            Change::Removed(e) => (EventKind::Destroy, e.clone()),
        };
        ConntrackEvent {
            kind,
            entry,
            event_time: None,
        }
    }
}

/// A caller-held picture of the conntrack table, kept current from events and
/// repaired with [`EventStream::resync`] after an overrun.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableView {
    entries: HashMap<ConnKey, Entry>,
}

/// True if two versions of an entry differ in what a table watcher cares about.
fn significant_change(a: &Entry, b: &Entry) -> bool {
    a.state != b.state
        || a.status != b.status
        || a.mark.unwrap_or(0) != b.mark.unwrap_or(0)
        || a.labels.as_ref().map(|l| &l.0) != b.labels.as_ref().map(|l| &l.0)
        || a.helper.as_ref().map(|h| &h.name) != b.helper.as_ref().map(|h| &h.name)
        || TupleKey::from(&a.reply) != TupleKey::from(&b.reply)
}

impl TableView {
    /// An empty view.
    pub fn new() -> Self {
        TableView::default()
    }

    /// A view of what `ct` dumps for `filter`.
    pub fn from_table(ct: &mut Conntrack, filter: &DumpFilter) -> Result<Self> {
        let mut v = TableView::new();
        for e in ct.dump(filter)? {
            let e = e?;
            v.entries.insert(ConnKey::of(&e), e);
        }
        Ok(v)
    }

    /// Number of connections.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry of a connection.
    pub fn get(&self, key: &ConnKey) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Every connection.
    pub fn iter(&self) -> impl Iterator<Item = (&ConnKey, &Entry)> {
        self.entries.iter()
    }

    /// Applies an event: NEW inserts, UPDATE merges the attributes the event carries,
    /// DESTROY removes. Returns true if the view changed.
    pub fn apply(&mut self, ev: &Event) -> bool {
        let Event::Conntrack(ev) = ev else {
            return false;
        };
        let key = ConnKey::of(&ev.entry);
        match ev.kind {
            EventKind::Destroy => self.entries.remove(&key).is_some(),
            EventKind::New => {
                self.entries.insert(key, ev.entry.clone());
                true
            }
            EventKind::Update => {
                match self.entries.get_mut(&key) {
                    Some(old) => merge(old, &ev.entry),
                    None => {
                        self.entries.insert(key, ev.entry.clone());
                    }
                }
                true
            }
        }
    }

    /// Replaces the content with `fresh`, returning the differences.
    pub fn replace_with(&mut self, fresh: TableView) -> Vec<Change> {
        let mut changes = Vec::new();
        for (k, new) in &fresh.entries {
            match self.entries.get(k) {
                None => changes.push(Change::Added(new.clone())),
                Some(old) if significant_change(old, new) => changes.push(Change::Updated {
                    old: old.clone(),
                    new: new.clone(),
                }),
                Some(_) => {}
            }
        }
        for (k, old) in &self.entries {
            if !fresh.entries.contains_key(k) {
                changes.push(Change::Removed(old.clone()));
            }
        }
        *self = fresh;
        changes
    }

    /// The keys, sorted (for comparisons).
    pub fn keys(&self) -> Vec<ConnKey> {
        let mut k: Vec<_> = self.entries.keys().cloned().collect();
        k.sort();
        k
    }
}

/// Merges the attributes an UPDATE event carries into the stored entry.
fn merge(old: &mut Entry, new: &Entry) {
    old.status = new.status;
    old.reply = new.reply.clone();
    macro_rules! take {
        ($($f:ident),*) => { $( if new.$f.is_some() { old.$f = new.$f.clone(); } )* };
    }
    take!(
        protoinfo,
        helper,
        timeout,
        state_timeout,
        mark,
        counters_orig,
        counters_reply,
        id,
        seq_adj_orig,
        seq_adj_reply,
        secmark,
        labels,
        synproxy,
        timestamp,
        master
    );
    if new.protoinfo.is_some() || new.state != crate::conntrack::state::State::Unknown {
        old.state = new.state;
    }
}

/// Turns connection accounting (`nf_conntrack_acct`, packet/byte counters) and
/// timestamps (`nf_conntrack_timestamp`) on or off in `netns`, so that DESTROY events
/// (and dumps) carry counters and start/stop times. Affects connections created afterwards.
pub fn set_accounting(netns: &Netns, acct: bool, timestamps: bool) -> Result<()> {
    netns.run(|| {
        for (name, on) in [
            ("nf_conntrack_acct", acct),
            ("nf_conntrack_timestamp", timestamps),
        ] {
            let path = std::path::Path::new("/proc/sys/net/netfilter").join(name);
            std::fs::write(&path, if on { "1" } else { "0" })
                .map_err(|e| Error::io("write nf_conntrack sysctl", e))?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::request::{CreateRequest, DeleteRequest, WriteRequest};
    use crate::conntrack::tuple::{IPPROTO_TCP, IPPROTO_UDP};

    fn udp(p: u16) -> Tuple {
        Tuple::with_ports(
            IPPROTO_UDP,
            "10.0.0.1".parse().unwrap(),
            p,
            "10.0.0.2".parse().unwrap(),
            53,
        )
    }

    /// An encoded create request is a valid stand-in for a NEW event message.
    fn event_bytes(t: Tuple, flags: u16) -> Vec<u8> {
        let mut m = CreateRequest::new(t, 30).encode().unwrap();
        m[6..8].copy_from_slice(&flags.to_ne_bytes());
        m
    }

    #[test]
    fn kinds_follow_message_and_flags() {
        assert_eq!(
            EventKind::of_message(IPCTNL_MSG_CT_NEW, NLM_F_CREATE | NLM_F_EXCL),
            Some(EventKind::New)
        );
        assert_eq!(
            EventKind::of_message(IPCTNL_MSG_CT_NEW, 0),
            Some(EventKind::Update)
        );
        assert_eq!(
            EventKind::of_message(IPCTNL_MSG_CT_DELETE, 0),
            Some(EventKind::Destroy)
        );
        assert_eq!(EventKind::of_message(IPCTNL_MSG_CT_GET, 0), None);
        let g: Vec<u32> = (EventGroups::NEW | EventGroups::EXP_DESTROY)
            .group_numbers()
            .collect();
        assert_eq!(g, [NFNLGRP_CONNTRACK_NEW, NFNLGRP_CONNTRACK_EXP_DESTROY]);
    }

    #[test]
    fn filter_reads_family_and_protocol_only() {
        let m = event_bytes(udp(1), NLM_F_CREATE | NLM_F_EXCL);
        let f = Frames::new(&m).next().unwrap().unwrap();
        assert!(EventFilter::all().passes(&f));
        assert!(EventFilter::all().protocol(IPPROTO_UDP).passes(&f));
        assert!(!EventFilter::all().protocol(IPPROTO_TCP).passes(&f));
        assert!(EventFilter::all().family(Family::Ipv4).passes(&f));
        assert!(!EventFilter::all().family(Family::Ipv6).passes(&f));
        // A message cut inside the tuple has no readable protocol: filtered out, no panic.
        let cut = &m[..40];
        let mut c = cut.to_vec();
        c[..4].copy_from_slice(&40u32.to_ne_bytes());
        let f = Frames::new(&c).next().unwrap().unwrap();
        assert!(!EventFilter::all().protocol(IPPROTO_UDP).passes(&f));
    }

    #[test]
    fn decode_event_strips_event_timestamp() {
        let mut m = event_bytes(udp(2), NLM_F_CREATE | NLM_F_EXCL);
        // Append CTA_TIMESTAMP_EVENT = 0x0102030405060708.
        m.extend_from_slice(&12u16.to_ne_bytes());
        m.extend_from_slice(&CTA_TIMESTAMP_EVENT.to_ne_bytes());
        m.extend_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        let len = m.len() as u32;
        m[..4].copy_from_slice(&len.to_ne_bytes());
        let f = Frames::new(&m).next().unwrap().unwrap();
        match decode_event(&f, None).unwrap() {
            Event::Conntrack(ev) => {
                assert_eq!(ev.kind, EventKind::New);
                assert_eq!(ev.event_time, Some(0x0102_0304_0506_0708));
                assert!(ev.entry.unknown.is_empty());
                assert_eq!(ev.entry.orig, udp(2));
            }
            other => panic!("unexpected {other:?}"),
        }
        // A delete request has the DELETE message type: a DESTROY event.
        let d = DeleteRequest::orig(udp(2)).encode().unwrap();
        let f = Frames::new(&d).next().unwrap().unwrap();
        // It lacks a reply tuple, so the owned entry cannot be built: a typed error.
        assert!(matches!(decode_event(&f, None), Err(Error::Decode(_))));
    }

    #[test]
    fn table_view_applies_events_and_reports_differences() {
        let entry = |p: u16| {
            let m = event_bytes(udp(p), NLM_F_CREATE | NLM_F_EXCL);
            let f = Frames::new(&m).next().unwrap().unwrap();
            Entry::from_frame(&f).unwrap()
        };
        let mut view = TableView::new();
        for p in 1..=3 {
            assert!(view.apply(&Event::Conntrack(ConntrackEvent {
                kind: EventKind::New,
                entry: entry(p),
                event_time: None,
            })));
        }
        assert!(view.apply(&Event::Conntrack(ConntrackEvent {
            kind: EventKind::Destroy,
            entry: entry(3),
            event_time: None,
        })));
        assert_eq!(view.len(), 2);
        let mut fresh = TableView::new();
        let mut changed = entry(2);
        changed.mark = Some(9);
        for e in [changed, entry(4)] {
            fresh.entries.insert(ConnKey::of(&e), e);
        }
        let mut changes = view.replace_with(fresh);
        changes.sort_by_key(|c| match c {
            Change::Added(e) | Change::Removed(e) | Change::Updated { new: e, .. } => {
                e.orig.src_port
            }
        });
        assert_eq!(changes.len(), 3);
        assert!(matches!(&changes[0], Change::Removed(e) if e.orig.src_port == Some(1)));
        assert!(
            matches!(&changes[1], Change::Updated { old, new } if old.mark.is_none() && new.mark == Some(9))
        );
        assert!(matches!(&changes[2], Change::Added(e) if e.orig.src_port == Some(4)));
        assert_eq!(changes[2].to_event().kind, EventKind::New);
        assert_eq!(view.len(), 2);
    }
}
