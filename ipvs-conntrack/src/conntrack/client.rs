//! The blocking conntrack client: streaming dumps, get, count, per-CPU stats and state timeouts.

use std::ops::ControlFlow;

use crate::conntrack::entry::{Entry, EntryView};
use crate::conntrack::filter::DumpFilter;
use crate::conntrack::layout::LayoutCache;
use crate::conntrack::shape::ShapedEntry;
use crate::conntrack::stats::{CpuStats, GlobalStats};
use crate::conntrack::timeout::{
    from_sysctls, StateTimeouts, TimeoutPolicy, TimeoutSource, DEFAULT_POLICY_PROTOCOLS,
};
use crate::conntrack::tuple::Tuple;
use crate::conntrack::wire::*;
use crate::error::{libc_errno, Error, Result};
use crate::netlink::emit::MessageBuilder;
use crate::netlink::frame::flags::*;
use crate::netlink::frame::Frame;
use crate::netlink::nfnetlink::{
    message_type, NfGenMsg, NFNETLINK_V0, NFNL_SUBSYS_CTNETLINK, NFNL_SUBSYS_CTNETLINK_TIMEOUT,
};
use crate::netns::Netns;
use crate::socket::{Exchange, ExchangeState, NlSocket, SocketOptions, NETLINK_NETFILTER};

/// Which list of connections a dump reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    /// The main table (IPCTNL_MSG_CT_GET).
    Main,
    /// Entries being destroyed (IPCTNL_MSG_CT_GET_DYING).
    Dying,
    /// Entries not yet confirmed (IPCTNL_MSG_CT_GET_UNCONFIRMED).
    Unconfirmed,
}

/// A client for the connection tracking table of one network namespace.
#[derive(Debug)]
pub struct Conntrack {
    sock: NlSocket,
    netns: Netns,
    timeouts: Option<StateTimeouts>,
    join_timeouts: bool,
}

fn request(msg: u8, subsys: u8, flags: u16, family: u8) -> MessageBuilder {
    let mut b = MessageBuilder::new(message_type(subsys, msg), NLM_F_REQUEST | flags);
    b.put_raw(
        &NfGenMsg {
            family,
            version: NFNETLINK_V0,
            res_id: 0,
        }
        .to_bytes(),
    );
    b
}

impl Conntrack {
    /// Opens a client in the caller's namespace.
    pub fn new() -> Result<Self> {
        Self::open(&Netns::Current)
    }

    /// Opens a client in `netns`.
    pub fn open(netns: &Netns) -> Result<Self> {
        Self::with_options(netns, &SocketOptions::default())
    }

    /// Opens a client in `netns` with socket options.
    pub fn with_options(netns: &Netns, opts: &SocketOptions) -> Result<Self> {
        Ok(Conntrack {
            sock: NlSocket::open(NETLINK_NETFILTER, netns, opts)?,
            netns: netns.clone(),
            timeouts: None,
            join_timeouts: true,
        })
    }

    /// The namespace this client works in.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// The underlying socket (for counters of dropped foreign/stray messages).
    pub fn socket(&self) -> &NlSocket {
        &self.sock
    }

    /// The underlying socket, mutable (to install a recorder, change buffer sizes or timeouts).
    pub fn socket_mut(&mut self) -> &mut NlSocket {
        &mut self.sock
    }

    /// Whether dumps fill `Entry::state_timeout` (default true; costs one timeout read per client).
    pub fn set_join_timeouts(&mut self, on: bool) {
        self.join_timeouts = on;
    }

    /// Uses these state timeouts for `state_timeout` instead of reading the defaults.
    pub fn set_state_timeouts(&mut self, t: StateTimeouts) {
        self.timeouts = Some(t);
    }

    fn cached_timeouts(&mut self) -> Option<StateTimeouts> {
        if !self.join_timeouts {
            return None;
        }
        if self.timeouts.is_none() {
            self.timeouts = self.default_timeouts().ok();
        }
        self.timeouts.clone()
    }

    /// Starts a streaming dump of the main table.
    ///
    /// Memory stays bounded by the receive buffer whatever the table size. If the
    /// kernel flags NLM_F_DUMP_INTR the dump still returns every entry it read and
    /// then yields one final [`Error::DumpInterrupted`] (it is not restarted).
    pub fn dump(&mut self, filter: &DumpFilter) -> Result<Dump<'_>> {
        self.dump_table(Table::Main, filter)
    }

    /// Whether long dumps receive on a reader thread while the caller decodes
    /// ([`NlSocket::set_dump_reader`]; on by default with more than one CPU).
    pub fn set_dump_reader(&mut self, on: bool) {
        self.sock.set_dump_reader(on);
    }

    /// How the last threaded dump's reader thread and the decoding waited for each other:
    /// the time the decoding held the kernel's dump up ([`NlSocket::dump_reader_report`]).
    pub fn dump_reader_report(&self) -> Option<crate::socket::DumpReaderReport> {
        self.sock.dump_reader_report()
    }

    /// Starts a streaming dump of `table`.
    pub fn dump_table(&mut self, table: Table, filter: &DumpFilter) -> Result<Dump<'_>> {
        filter.validate()?;
        let timeouts = self.cached_timeouts();
        let msg = match table {
            Table::Main => IPCTNL_MSG_CT_GET,
            Table::Dying => IPCTNL_MSG_CT_GET_DYING,
            Table::Unconfirmed => IPCTNL_MSG_CT_GET_UNCONFIRMED,
        };
        let mut b = request(
            msg,
            NFNL_SUBSYS_CTNETLINK,
            NLM_F_DUMP,
            filter.nfgen_family(),
        );
        if table == Table::Main {
            filter.emit(&mut b);
        }
        let mut bytes = b.finish();
        // A dump dropped part-way would make the kernel refuse this one (EBUSY).
        self.sock.finish_open_dump();
        let seq = self.sock.send(&mut bytes, "conntrack dump")?;
        Ok(Dump {
            ex: self.sock.dump_exchange(seq, "conntrack dump"),
            parts: Box::new(DumpParts {
                layouts: LayoutCache::new(),
                // Entries are checked in user space only when there is something to check.
                filter: (filter != &DumpFilter::default()).then(|| filter.clone()),
                timeouts,
                reported_intr: false,
                kernel_filter: filter.has_kernel_attrs() && !filter.user_space_only,
            }),
        })
    }

    /// Continues a dump set aside with [`Dump::suspend`]. No other request may have been
    /// sent with this client in between (sending drops the dump's unread data).
    pub fn resume(&mut self, state: DumpState) -> Dump<'_> {
        Dump {
            ex: self.sock.resume(state.ex),
            parts: state.parts,
        }
    }

    /// Dumps into a `Vec` (the whole table in memory; prefer [`Conntrack::dump`] for large tables).
    pub fn list(&mut self, filter: &DumpFilter) -> Result<Vec<Entry>> {
        self.dump(filter)?.collect()
    }

    /// Zero-copy dump: calls `f` with every matching entry view until it returns `Break`
    /// (with `Err` to stop the dump with that error). Returns the number of entries passed to `f`.
    pub fn for_each_view<F>(&mut self, filter: &DumpFilter, mut f: F) -> Result<u64>
    where
        F: FnMut(&EntryView<'_>) -> ControlFlow<Result<()>>,
    {
        let mut dump = self.dump(filter)?;
        let mut n = 0u64;
        while let Some(v) = dump.next_view() {
            let v = v?;
            n += 1;
            if let ControlFlow::Break(r) = f(&v) {
                dump.stop()?;
                r?;
                break;
            }
        }
        Ok(n)
    }

    /// Sends one request and calls `f` with every data frame of its answer until DONE/ACK.
    pub(crate) fn transact<F>(
        &mut self,
        mut bytes: Vec<u8>,
        op: &'static str,
        mut f: F,
    ) -> Result<()>
    where
        F: FnMut(&Frame<'_>) -> Result<()>,
    {
        let seq = self.sock.send(&mut bytes, op)?;
        let mut ex = self.sock.exchange(seq, op);
        while let Some(meta) = ex.next_meta()? {
            f(&ex.frame(&meta))?;
        }
        Ok(())
    }

    /// Gets one entry by its original tuple (and zone, if the tuple has one).
    pub fn get(&mut self, orig: &Tuple) -> Result<Entry> {
        let family = if orig.src.is_ipv4() { 2 } else { 10 };
        let mut b = request(IPCTNL_MSG_CT_GET, NFNL_SUBSYS_CTNETLINK, NLM_F_ACK, family);
        // The zone travels as CTA_TUPLE_ZONE inside the tuple; adding CTA_ZONE as well
        // makes the kernel refuse the request with EINVAL.
        orig.emit(&mut b, CTA_TUPLE_ORIG);
        let bytes = b.finish();
        let timeouts = self.cached_timeouts();
        let mut found = None;
        self.transact(bytes, "conntrack get", |frame| {
            if found.is_none() {
                let mut e = Entry::from_frame(frame)?;
                join(&mut e, timeouts.as_ref());
                found = Some(e);
            }
            Ok(())
        })?;
        found.ok_or(Error::Kernel(crate::error::KernelError {
            errno: libc_errno::ENOENT,
            message: None,
            offset: None,
            request: "conntrack get",
        }))
    }

    /// Global entry count and `nf_conntrack_max` (IPCTNL_MSG_CT_GET_STATS; never dumps the table).
    pub fn count(&mut self) -> Result<GlobalStats> {
        let bytes = request(IPCTNL_MSG_CT_GET_STATS, NFNL_SUBSYS_CTNETLINK, NLM_F_ACK, 0).finish();
        let mut out = None;
        self.transact(bytes, "conntrack count", |frame| {
            out = Some(GlobalStats::from_frame(frame)?);
            Ok(())
        })?;
        out.ok_or_else(|| Error::Unsupported {
            feature: "IPCTNL_MSG_CT_GET_STATS",
            detail: "the kernel acknowledged without sending statistics".into(),
        })
    }

    /// Per-CPU statistics (IPCTNL_MSG_CT_GET_STATS_CPU).
    pub fn cpu_stats(&mut self) -> Result<Vec<CpuStats>> {
        let bytes = request(
            IPCTNL_MSG_CT_GET_STATS_CPU,
            NFNL_SUBSYS_CTNETLINK,
            NLM_F_DUMP,
            0,
        )
        .finish();
        let mut out = Vec::new();
        self.transact(bytes, "conntrack per-CPU stats", |frame| {
            out.push(CpuStats::from_frame(frame)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Reads one protocol's default timeout policy over cttimeout.
    pub fn default_policy(&mut self, l3proto: u16, l4proto: u8) -> Result<TimeoutPolicy> {
        let mut b = request(
            IPCTNL_MSG_TIMEOUT_DEFAULT_GET,
            NFNL_SUBSYS_CTNETLINK_TIMEOUT,
            NLM_F_ACK,
            0,
        );
        b.put_be16(CTA_TIMEOUT_L3PROTO, l3proto);
        b.put_u8(CTA_TIMEOUT_L4PROTO, l4proto);
        let mut out = None;
        let r = self.transact(b.finish(), "cttimeout default-get", |frame| {
            out = Some(TimeoutPolicy::from_frame(frame)?);
            Ok(())
        });
        match r {
            Err(Error::Kernel(k))
                if k.errno == libc_errno::EOPNOTSUPP || k.errno == libc_errno::ENOENT =>
            {
                return Err(Error::Unsupported {
                    feature: "cttimeout (nfnetlink_cttimeout)",
                    detail: k.to_string(),
                })
            }
            r => r?,
        }
        out.ok_or_else(|| Error::Unsupported {
            feature: "cttimeout default-get",
            detail: "no policy in the answer".into(),
        })
    }

    /// The default state timeouts of every protocol: over cttimeout, or from the
    /// namespace's sysctls where cttimeout is unavailable.
    pub fn default_timeouts(&mut self) -> Result<StateTimeouts> {
        let mut t = StateTimeouts::empty(TimeoutSource::Cttimeout);
        let mut any = false;
        for (l3, l4) in DEFAULT_POLICY_PROTOCOLS {
            match self.default_policy(l3, l4) {
                Ok(p) => {
                    t.set(&p.timeouts);
                    any = true;
                }
                Err(Error::Unsupported { .. }) | Err(Error::Kernel(_)) => {}
                Err(e) => return Err(e),
            }
        }
        if any {
            return Ok(t);
        }
        self.sysctl_timeouts()
    }

    /// The state timeouts from the namespace's `net.netfilter.nf_conntrack_*timeout*` sysctls.
    pub fn sysctl_timeouts(&self) -> Result<StateTimeouts> {
        self.netns.run(|| {
            let dir = std::path::Path::new("/proc/sys/net/netfilter");
            if !dir.exists() {
                return Err(Error::Unsupported {
                    feature: "nf_conntrack sysctls",
                    detail: "/proc/sys/net/netfilter is absent".into(),
                });
            }
            Ok(from_sysctls(|name| {
                std::fs::read_to_string(dir.join(name))
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
            }))
        })
    }
}

/// Fills `state_timeout` from the policy.
fn join(e: &mut Entry, t: Option<&StateTimeouts>) {
    if let Some(t) = t {
        e.state_timeout = t.for_state(e.orig.proto, e.state);
    }
}

/// A streaming dump. Iterate it for owned [`Entry`] values, or call
/// [`Dump::next_view`] for zero-copy views borrowed from the receive buffer.
#[derive(Debug)]
pub struct Dump<'c> {
    ex: Exchange<'c>,
    parts: Box<DumpParts>,
}

/// What a dump keeps besides its exchange. Boxed: iterator wrappers move a dump in and
/// out of [`DumpState`] on every call (the C iterator once per entry), which then moves
/// a pointer, not the filter and the timeouts.
#[derive(Debug)]
struct DumpParts {
    layouts: LayoutCache,
    filter: Option<DumpFilter>,
    timeouts: Option<StateTimeouts>,
    reported_intr: bool,
    kernel_filter: bool,
}

/// A dump set aside with [`Dump::suspend`], without the client borrow.
#[derive(Debug)]
pub struct DumpState {
    ex: ExchangeState,
    parts: Box<DumpParts>,
}

impl<'c> Dump<'c> {
    /// Releases the client borrow, keeping the position in the dump for [`Conntrack::resume`].
    pub fn suspend(self) -> DumpState {
        DumpState {
            ex: self.ex.suspend(),
            parts: self.parts,
        }
    }

    /// The next matching entry as a view into the receive buffer. After an
    /// [`Error::Timeout`] the dump is still open: calling again continues it.
    pub fn next_view(&mut self) -> Option<Result<EntryView<'_>>> {
        let p = &mut *self.parts;
        next_view(
            &mut self.ex,
            &mut p.layouts,
            p.filter.as_ref(),
            &mut p.reported_intr,
            p.kernel_filter,
        )
    }

    /// Whether the kernel flagged the dump as interrupted so far.
    pub fn interrupted(&self) -> bool {
        self.ex.interrupted()
    }

    /// Whether a reader thread receives the rest of this dump now
    /// ([`Conntrack::set_dump_reader`]).
    pub fn threaded(&self) -> bool {
        self.ex.socket().reader_running()
    }

    /// The state timeouts joined into owned entries.
    pub fn state_timeouts(&self) -> Option<&StateTimeouts> {
        self.parts.timeouts.as_ref()
    }

    /// Stops early, reading and discarding the rest of the kernel's answer.
    pub fn stop(&mut self) -> Result<()> {
        self.ex.drain()
    }
}

/// Maps a kernel rejection of filter attributes to [`Error::Unsupported`].
fn map_filter_err(e: Error, kernel_filter: bool) -> Error {
    match e {
        Error::Kernel(k)
            if kernel_filter
                && (k.errno == libc_errno::EOPNOTSUPP || k.errno == libc_errno::EINVAL) =>
        {
            Error::Unsupported {
                feature: "kernel-side conntrack dump filter (CTA_FILTER/CTA_ZONE/CTA_STATUS_MASK)",
                detail: format!("{k}; retry with DumpFilter::user_space_only = true"),
            }
        }
        other => other,
    }
}

/// One step of a dump: the next matching entry view, the final DUMP_INTR report, or the end.
fn next_view<'a>(
    ex: &'a mut Exchange<'_>,
    layouts: &mut LayoutCache,
    filter: Option<&DumpFilter>,
    reported_intr: &mut bool,
    kernel_filter: bool,
) -> Option<Result<EntryView<'a>>> {
    let frame = match next_frame(ex, layouts, filter, reported_intr, kernel_filter)? {
        Ok(f) => f,
        Err(e) => return Some(Err(e)),
    };
    Some(match EntryView::from_frame_cached(&frame, layouts) {
        Ok(v) => Ok(v),
        Err(e) => Err(Error::from(e)),
    })
}

/// One step of a dump: the next matching entry message, the final DUMP_INTR report, or
/// the end.
#[inline(always)]
fn next_frame<'a>(
    ex: &'a mut Exchange<'_>,
    layouts: &mut LayoutCache,
    filter: Option<&DumpFilter>,
    reported_intr: &mut bool,
    kernel_filter: bool,
) -> Option<Result<Frame<'a>>> {
    // Bounded by the number of frames in the answer; each turn consumes one frame.
    let meta = loop {
        let meta = match ex.next_meta() {
            Err(e) => return Some(Err(map_filter_err(e, kernel_filter))),
            Ok(None) => {
                if ex.interrupted() && !*reported_intr {
                    *reported_intr = true;
                    return Some(Err(Error::DumpInterrupted));
                }
                return None;
            }
            Ok(Some(meta)) => meta,
        };
        let Some(filter) = filter else {
            break meta;
        };
        // A filtered dump decodes matching entries twice (here and below); the kernel
        // normally filters already, so this second look is only a guarantee.
        match EntryView::from_frame_cached(&ex.frame(&meta), layouts)
            .and_then(|v| filter.matches(&v))
        {
            Err(e) => return Some(Err(e.into())),
            Ok(true) => break meta,
            Ok(false) => {}
        }
    };
    Some(Ok(ex.frame(&meta)))
}

/// The owned entry of a view without a shape (out of line: the shaped path writes its
/// entry in place).
#[inline(never)]
fn build_general(v: &EntryView<'_>, timeouts: Option<&StateTimeouts>) -> Option<Result<Entry>> {
    v.build(timeouts)
}

/// One step of a dump as the owned and C paths take it.
enum Next<'a> {
    /// The end of the dump.
    End,
    /// An error (the dump may go on after a timeout).
    Failed(Error),
    /// An entry whose body has its layout's shape: read from its values.
    Shaped(ShapedEntry<'a>),
    /// Any other entry, with the state timeouts the dump joins.
    Other(EntryView<'a>, Option<&'a StateTimeouts>),
}

impl Dump<'_> {
    /// The next entry: one whose body matches its layout's shape as a [`ShapedEntry`]
    /// (no view is built: the frame's body goes straight to the shape), any other as a
    /// view.
    #[inline(always)]
    fn next_shaped(&mut self) -> Next<'_> {
        let p = &mut *self.parts;
        let timeouts = p.timeouts.as_ref();
        let frame = match next_frame(
            &mut self.ex,
            &mut p.layouts,
            p.filter.as_ref(),
            &mut p.reported_intr,
            p.kernel_filter,
        ) {
            None => return Next::End,
            Some(Err(e)) => return Next::Failed(e),
            Some(Ok(f)) => f,
        };
        let (family, message, body, offset) = match EntryView::frame_body(&frame) {
            Ok(parts) => parts,
            Err(e) => return Next::Failed(e.into()),
        };
        let Some(way) = p.layouts.shape_hit(body) else {
            // Checked, remembered, and shaped if the layout repeats.
            return match p.layouts.parse_shaped(family, message, body, offset) {
                Ok((v, Some(shape))) => Next::Shaped(ShapedEntry::new(&v, shape, timeouts)),
                Ok((v, None)) => Next::Other(v, timeouts),
                Err(e) => Next::Failed(e.into()),
            };
        };
        match p.layouts.shape(way) {
            Some(shape) => Next::Shaped(ShapedEntry::from_parts(
                family, message, body, offset, shape, timeouts,
            )),
            // Not reached (a hit has a shape); the checked decoder answers all the same.
            None => match EntryView::parse_body(family, message, body, offset) {
                Ok(v) => Next::Other(v, timeouts),
                Err(e) => Next::Failed(e.into()),
            },
        }
    }

    /// The next entry written into `out`, for a caller that reuses entries (an entry is
    /// large: this spares moving it): the same entries, errors and end as
    /// [`Iterator::next`]. `out` keeps its old value after an error or the end.
    pub fn next_into(&mut self, out: &mut Entry) -> Option<Result<()>> {
        match self.next_shaped() {
            Next::End => None,
            Next::Shaped(s) => {
                s.write_into(out);
                Some(Ok(()))
            }
            Next::Other(v, t) => build_general(&v, t).map(|r| r.map(|e| *out = e)),
            Next::Failed(e) => Some(Err(e)),
        }
    }
}

/// What [`Dump::next_step`] read.
// The large variant is the rare one (entries without a shape), and the caller takes the
// value apart at once.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum DumpStep<'a> {
    /// An entry of a common layout, to be read from its values.
    Shaped(ShapedEntry<'a>),
    /// Any other entry, decoded.
    Entry(Entry),
}

impl Dump<'_> {
    /// The next entry in the cheapest form for a caller that copies values into its own
    /// structure (the C API's entry): an entry of a common layout is handed out as a
    /// [`ShapedEntry`] to read values from, without building an [`Entry`]; any other
    /// entry is decoded. The same entries, errors and end as [`Iterator::next`].
    // Inlined into the caller so that the step's values stay in registers (moved through
    // memory they are read back with wide loads that stall on the narrow stores).
    #[inline(always)]
    pub fn next_step(&mut self) -> Option<Result<DumpStep<'_>>> {
        match self.next_shaped() {
            Next::End => None,
            Next::Shaped(s) => Some(Ok(DumpStep::Shaped(s))),
            Next::Other(v, t) => build_general(&v, t).map(|r| r.map(DumpStep::Entry)),
            Next::Failed(e) => Some(Err(e)),
        }
    }
}

impl Iterator for Dump<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        match self.next_shaped() {
            Next::End => None,
            Next::Shaped(s) => Some(Ok(s.to_owned())),
            Next::Other(v, t) => build_general(&v, t),
            Next::Failed(e) => Some(Err(e)),
        }
    }
}
