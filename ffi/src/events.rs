//! The event handle (`ipvsct_events`): a subscription to conntrack / expectation events
//! with a pollable file descriptor, a non-blocking drain into a callback, overruns as a
//! distinct event kind, and resynchronisation after events were lost.

use std::ffi::{c_char, c_int, c_void};
use std::os::fd::AsRawFd;
use std::time::{SystemTime, UNIX_EPOCH};

use ipvs_conntrack::conntrack::{
    Conntrack, DumpFilter, Event, EventFilter, EventGroups, EventKind, EventOptions, EventStream,
    Family, Overrun, TableView,
};
use ipvs_conntrack::Error;

use crate::boundary::{boundary, boundary_value};
use crate::conntrack::parse_netns;
use crate::entry::ipvsct_ct_entry;
use crate::error::FfiError;
use crate::expect::ipvsct_ct_expect;
use crate::lock::Guarded;
use crate::ptr::{in_opt, in_ref, Out};
use crate::result::ipvsct_result;
use crate::result::ipvsct_result::*;

/// Event group: new connections (NFNLGRP_CONNTRACK_NEW).
pub const IPVSCT_EVENTS_NEW: u32 = 0x1;
/// Event group: connection updates (NFNLGRP_CONNTRACK_UPDATE).
pub const IPVSCT_EVENTS_UPDATE: u32 = 0x2;
/// Event group: destroyed connections (NFNLGRP_CONNTRACK_DESTROY).
pub const IPVSCT_EVENTS_DESTROY: u32 = 0x4;
/// Event group: new expectations (NFNLGRP_CONNTRACK_EXP_NEW).
pub const IPVSCT_EVENTS_EXP_NEW: u32 = 0x8;
/// Event group: expectation updates (NFNLGRP_CONNTRACK_EXP_UPDATE; unused by current kernels).
pub const IPVSCT_EVENTS_EXP_UPDATE: u32 = 0x10;
/// Event group: destroyed expectations (NFNLGRP_CONNTRACK_EXP_DESTROY).
pub const IPVSCT_EVENTS_EXP_DESTROY: u32 = 0x20;
/// Every conntrack event group.
pub const IPVSCT_EVENTS_CONNTRACK: u32 = 0x7;
/// Every expectation event group.
pub const IPVSCT_EVENTS_EXPECT: u32 = 0x38;

/// `ipvsct_events_options.flags`: reliable delivery (NETLINK_BROADCAST_ERROR and
/// NETLINK_NO_ENOBUFS): the kernel keeps events a full buffer could not take (destroyed
/// entries wait on the dying list) and never reports an overrun; a slow reader then
/// holds kernel memory and can make the table fill up.
pub const IPVSCT_EVENTS_RELIABLE: u32 = 0x1;
/// `ipvsct_events_options.flags`: do not read the default state timeouts at open
/// (entries then have no `state_timeout`).
pub const IPVSCT_EVENTS_NO_STATE_TIMEOUTS: u32 = 0x2;
/// `ipvsct_events_options.flags`: keep a picture of the table in the handle (a dump at
/// open, then every event), so that `ipvsct_events_resync` reports exactly what changed.
/// Memory then grows with the table.
pub const IPVSCT_EVENTS_KEEP_TABLE: u32 = 0x4;

const OPTION_BITS: u32 = 0x7;
const GROUP_BITS: u32 = 0x3f;

/// Number of entries of `ipvsct_events_options.protocols`.
pub const IPVSCT_EVENTS_MAX_PROTOCOLS: usize = 8;

/// `ipvsct_event.kind`: a connection was created (`data.entry`).
pub const IPVSCT_EVENT_NEW: u32 = 1;
/// `ipvsct_event.kind`: a connection changed (`data.entry`; only what changed is set).
pub const IPVSCT_EVENT_UPDATE: u32 = 2;
/// `ipvsct_event.kind`: a connection was destroyed (`data.entry`, with counters and stop
/// time when accounting and timestamps are on).
pub const IPVSCT_EVENT_DESTROY: u32 = 3;
/// `ipvsct_event.kind`: an expectation was created (`data.expect`).
pub const IPVSCT_EVENT_EXP_NEW: u32 = 4;
/// `ipvsct_event.kind`: an expectation changed (`data.expect`).
pub const IPVSCT_EVENT_EXP_UPDATE: u32 = 5;
/// `ipvsct_event.kind`: an expectation was destroyed (`data.expect`).
pub const IPVSCT_EVENT_EXP_DESTROY: u32 = 6;
/// `ipvsct_event.kind`: the kernel dropped events because the receive buffer was full
/// (`data.overrun`); the stream goes on; call `ipvsct_events_resync` to repair.
pub const IPVSCT_EVENT_OVERRUN: u32 = 7;

/// Size of `ipvsct_event_data` in 8-byte words.
pub const IPVSCT_EVENT_DATA_WORDS: usize = 48;

/// How an event subscription is opened; all-zero (`{0}`) or NULL means the defaults.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_events_options {
    /// `IPVSCT_EVENTS_RELIABLE`, `IPVSCT_EVENTS_NO_STATE_TIMEOUTS`, `IPVSCT_EVENTS_KEEP_TABLE`.
    pub flags: u32,
    /// Kernel receive buffer in bytes (0: 8 MiB, about 13 000 events; forced past
    /// net.core.rmem_max with CAP_NET_ADMIN).
    pub rcvbuf: u32,
    /// Only events of this family (AF_INET 2 or AF_INET6 10; 0 for all).
    pub family: u8,
    /// How many entries of `protocols` are used (0 for every protocol).
    pub protocols_len: u8,
    /// Zero.
    pub reserved: [u8; 2],
    /// Only events whose original (or master) tuple has one of these L4 protocols.
    pub protocols: [u8; IPVSCT_EVENTS_MAX_PROTOCOLS],
}

/// What an OVERRUN event reports.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_overrun {
    /// Receives that failed with ENOBUFS in a row, this one included.
    pub failed_receives: u64,
    /// Overruns since the subscription was opened.
    pub total: u64,
    /// When the first receive of this run failed, nanoseconds since the epoch.
    pub since_ns: u64,
    /// When this receive failed, nanoseconds since the epoch.
    pub at_ns: u64,
}

/// The body of an `ipvsct_event`; `kind` says which member is valid.
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(non_camel_case_types)]
pub union ipvsct_event_data {
    /// IPVSCT_EVENT_NEW, _UPDATE, _DESTROY.
    pub entry: ipvsct_ct_entry,
    /// IPVSCT_EVENT_EXP_NEW, _EXP_UPDATE, _EXP_DESTROY.
    pub expect: ipvsct_ct_expect,
    /// IPVSCT_EVENT_OVERRUN.
    pub overrun: ipvsct_overrun,
    /// Room for members of later versions.
    pub reserved: [u64; IPVSCT_EVENT_DATA_WORDS],
}

/// One event, tagged by `kind`. Only ever handed out by the library (by pointer, valid
/// during the callback); copy it to keep it.
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(non_camel_case_types)]
pub struct ipvsct_event {
    /// `IPVSCT_EVENT_*`.
    pub kind: u32,
    /// Zero.
    pub reserved: u32,
    /// The event's body.
    pub data: ipvsct_event_data,
}

/// Counters of a subscription.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_events_stats {
    /// Event messages received (before filtering).
    pub received: u64,
    /// Messages skipped by the family/protocol filter.
    pub filtered: u64,
    /// Messages that were neither conntrack nor expectation events.
    pub other: u64,
    /// Receives that failed with ENOBUFS (each is one OVERRUN event).
    pub overruns: u64,
    /// Connections in the kept table (IPVSCT_EVENTS_KEEP_TABLE), else 0.
    pub table_entries: u64,
}

/// Callback for events; `event` is valid only during the call. Return 0 to go on,
/// anything else to stop. It must not unwind or longjmp out of the library.
#[allow(non_camel_case_types)]
pub type ipvsct_event_cb =
    Option<unsafe extern "C" fn(event: *const ipvsct_event, user: *mut c_void) -> c_int>;

/// A conntrack event subscription (opaque).
///
/// Thread-safe: calls serialize on an internal lock; a call on the handle from inside its
/// own callback returns IPVSCT_ERR_BUSY. `ipvsct_events_fd` never waits for the lock.
pub struct ipvsct_events {
    inner: Guarded<EventsInner>,
    fd: c_int,
}

struct EventsInner {
    stream: EventStream,
    view: Option<TableView>,
}

fn ns_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl ipvsct_overrun {
    fn from_core(o: &Overrun) -> Self {
        ipvsct_overrun {
            failed_receives: o.failed_receives,
            total: o.total,
            since_ns: ns_since_epoch(o.since),
            at_ns: ns_since_epoch(o.at),
        }
    }
}

impl ipvsct_event {
    fn empty(kind: u32) -> Self {
        ipvsct_event {
            kind,
            reserved: 0,
            data: ipvsct_event_data {
                reserved: [0; IPVSCT_EVENT_DATA_WORDS],
            },
        }
    }

    /// The C form of an event.
    pub(crate) fn from_core(e: &Event) -> Self {
        match e {
            Event::Conntrack(c) => {
                let kind = match c.kind {
                    EventKind::New => IPVSCT_EVENT_NEW,
                    EventKind::Update => IPVSCT_EVENT_UPDATE,
                    EventKind::Destroy => IPVSCT_EVENT_DESTROY,
                };
                let mut ev = Self::empty(kind);
                ev.data.entry = ipvsct_ct_entry::from_core(&c.entry);
                ev
            }
            Event::Expect(x) => {
                let kind = match x.kind {
                    EventKind::New => IPVSCT_EVENT_EXP_NEW,
                    EventKind::Update => IPVSCT_EVENT_EXP_UPDATE,
                    EventKind::Destroy => IPVSCT_EVENT_EXP_DESTROY,
                };
                let mut ev = Self::empty(kind);
                ev.data.expect = ipvsct_ct_expect::from_core(&x.expectation);
                ev
            }
            Event::Overrun(o) => {
                let mut ev = Self::empty(IPVSCT_EVENT_OVERRUN);
                ev.data.overrun = ipvsct_overrun::from_core(o);
                ev
            }
        }
    }
}

impl ipvsct_events_options {
    /// The core options for `groups`, checked.
    fn to_core(self, groups: u32) -> Result<EventOptions, FfiError> {
        if groups == 0 || groups & !GROUP_BITS != 0 {
            return Err(FfiError::invalid(format!(
                "groups: {groups:#x} is not a non-empty set of IPVSCT_EVENTS_* group bits"
            )));
        }
        if self.flags & !OPTION_BITS != 0 {
            return Err(FfiError::invalid(format!(
                "options: unknown bits {:#x} in flags",
                self.flags & !OPTION_BITS
            )));
        }
        let mut filter = EventFilter::all();
        match self.family {
            0 => {}
            2 | 10 => filter = filter.family(Family::from(self.family)),
            f => {
                return Err(FfiError::invalid(format!(
                    "options: family {f} is neither 0, AF_INET (2) nor AF_INET6 (10)"
                )))
            }
        }
        let n = usize::from(self.protocols_len);
        let protocols = self.protocols.get(..n).ok_or_else(|| {
            FfiError::invalid(format!(
                "options: protocols_len {n} is above {IPVSCT_EVENTS_MAX_PROTOCOLS}"
            ))
        })?;
        for p in protocols {
            filter = filter.protocol(*p);
        }
        let mut o = EventOptions::groups(EventGroups::from_bits_retain(groups));
        if self.rcvbuf > 0 {
            o.rcvbuf = self.rcvbuf as usize;
        }
        o.reliable = self.flags & IPVSCT_EVENTS_RELIABLE != 0;
        o.join_timeouts = self.flags & IPVSCT_EVENTS_NO_STATE_TIMEOUTS == 0;
        o.recv_timeout = None;
        o.filter = filter;
        Ok(o)
    }
}

/// Subscribes to the event `groups` (`IPVSCT_EVENTS_*` bits) of network namespace `netns`
/// (NULL, a path or an `ip netns` name, as for `ipvsct_conntrack_open`) and writes the
/// handle to `*out`. `options` NULL means the defaults.
///
/// The socket is non-blocking: wait on `ipvsct_events_fd` with poll/epoll/select, then
/// call `ipvsct_events_drain`.
///
/// # Safety
/// `netns` is NULL or a NUL-terminated string; `options` is NULL or readable; `out` is NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_events_open(
    netns: *const c_char,
    groups: u32,
    options: *const ipvsct_events_options,
    out: *mut *mut ipvsct_events,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (out, options) = unsafe { (Out::new(out, "out")?, in_opt(options)) };
        // SAFETY: the caller passes NULL or a NUL-terminated string (contract above).
        let ns = unsafe { parse_netns(netns) }?;
        let options = options.copied().unwrap_or_default();
        let opts = options.to_core(groups)?;
        let stream = EventStream::with_options(&ns, &opts)?;
        stream
            .socket()
            .inner()
            .set_non_blocking(true)
            .map_err(|source| Error::Io {
                op: "make the event socket non-blocking",
                source,
            })?;
        let view = if options.flags & IPVSCT_EVENTS_KEEP_TABLE != 0 {
            let mut c = Conntrack::open(&ns)?;
            c.set_join_timeouts(false);
            Some(TableView::from_table(&mut c, &DumpFilter::all())?)
        } else {
            None
        };
        let fd = stream.socket().inner().as_raw_fd();
        let handle = ipvsct_events {
            inner: Guarded::new(EventsInner { stream, view }, "events"),
            fd,
        };
        out.write(Box::into_raw(Box::new(handle)));
        Ok(IPVSCT_OK)
    })
}

/// Writes the subscription's file descriptor to `*fd_out`: it polls readable (POLLIN) when
/// events are ready. It belongs to the handle: do not read from or close it.
///
/// # Safety
/// `ev` is NULL or a live handle; `fd_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_events_fd(
    ev: *const ipvsct_events,
    fd_out: *mut c_int,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (ev, out) = unsafe { (in_ref(ev, "ev")?, Out::new(fd_out, "fd_out")?) };
        out.write(ev.fd);
        Ok(IPVSCT_OK)
    })
}

/// Delivers every event that is ready, without waiting, to `cb` (in kernel order), and
/// returns when none is left or after `max_events` events (0 for no limit).
///
/// Results: IPVSCT_OK when nothing more was ready; IPVSCT_OVERRUN_SEEN likewise, but an
/// IPVSCT_EVENT_OVERRUN event was among those delivered (events were lost: call
/// `ipvsct_events_resync`); IPVSCT_STOPPED when `cb` returned non-zero or `max_events`
/// were delivered (more may be ready). On these, writes the number of events delivered to
/// `*count_out` if it is not NULL. On IPVSCT_ERR_DECODE one message did not decode (the
/// last error says where); the next call goes on after it. The handle stays locked while
/// `cb` runs.
///
/// # Safety
/// `ev` is NULL or a live handle; `cb` is NULL or a valid function; `count_out` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_events_drain(
    ev: *mut ipvsct_events,
    max_events: u64,
    cb: ipvsct_event_cb,
    user: *mut c_void,
    count_out: *mut u64,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or a live handle (contract above).
        let ev = unsafe { in_ref(ev.cast_const(), "ev") }?;
        // SAFETY: as above.
        let count_out = (!count_out.is_null())
            .then(|| unsafe { Out::new(count_out, "count_out") })
            .transpose()?;
        let cb = cb.ok_or_else(|| FfiError::null("cb"))?;
        let mut l = ev.inner.lock()?;
        let inner = &mut *l;
        let mut n = 0u64;
        let mut overrun = false;
        let mut result = IPVSCT_OK;
        // Bounded: every turn consumes one queued event; the socket never waits.
        loop {
            if max_events > 0 && n >= max_events {
                result = IPVSCT_STOPPED;
                break;
            }
            let Some(event) = inner.stream.next_event()? else {
                break;
            };
            if let Some(view) = inner.view.as_mut() {
                view.apply(&event);
            }
            overrun |= matches!(event, Event::Overrun(_));
            let c = ipvsct_event::from_core(&event);
            n += 1;
            // SAFETY: `cb` is a valid function (contract); `c` outlives the call.
            if unsafe { cb(&c, user) } != 0 {
                result = IPVSCT_STOPPED;
                break;
            }
        }
        if result == IPVSCT_OK && overrun {
            result = IPVSCT_OVERRUN_SEEN;
        }
        if let Some(out) = count_out {
            out.write(n);
        }
        Ok(result)
    })
}

/// Repairs after an overrun: reads and discards the events still queued (the kernel drops
/// everything after an overrun until the queue has been read empty), dumps the table and
/// delivers the differences to `cb` as NEW (missed connections), UPDATE (changed state,
/// status, mark, labels, helper or reply tuple) and DESTROY (gone) events.
///
/// With IPVSCT_EVENTS_KEEP_TABLE the differences are against the kept picture; without
/// it there is no picture, so every entry of the table arrives as a NEW event (a full
/// snapshot) and nothing as DESTROY. The dump is held in memory during the call. Returns
/// IPVSCT_OK or IPVSCT_STOPPED (if `cb` returned non-zero; the picture is up to date
/// anyway), writing the number of events delivered to `*count_out` if it is not NULL.
///
/// # Safety
/// `ev` is NULL or a live handle; `cb` is NULL or a valid function; `count_out` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_events_resync(
    ev: *mut ipvsct_events,
    cb: ipvsct_event_cb,
    user: *mut c_void,
    count_out: *mut u64,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or a live handle (contract above).
        let ev = unsafe { in_ref(ev.cast_const(), "ev") }?;
        // SAFETY: as above.
        let count_out = (!count_out.is_null())
            .then(|| unsafe { Out::new(count_out, "count_out") })
            .transpose()?;
        let cb = cb.ok_or_else(|| FfiError::null("cb"))?;
        let mut l = ev.inner.lock()?;
        let inner = &mut *l;
        let mut scratch = TableView::new();
        let view = inner.view.as_mut().unwrap_or(&mut scratch);
        let changes = inner.stream.resync(view)?;
        let mut n = 0u64;
        let mut result = IPVSCT_OK;
        for change in &changes {
            let c = ipvsct_event::from_core(&Event::Conntrack(change.to_event()));
            n += 1;
            // SAFETY: `cb` is a valid function (contract); `c` outlives the call.
            if unsafe { cb(&c, user) } != 0 {
                result = IPVSCT_STOPPED;
                break;
            }
        }
        if let Some(out) = count_out {
            out.write(n);
        }
        Ok(result)
    })
}

/// Writes the subscription's counters to `*out`.
///
/// # Safety
/// `ev` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_events_get_stats(
    ev: *const ipvsct_events,
    out: *mut ipvsct_events_stats,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (ev, out) = unsafe { (in_ref(ev, "ev")?, Out::new(out, "out")?) };
        let l = ev.inner.lock()?;
        let s = l.stream.stats();
        out.write(ipvsct_events_stats {
            received: s.received,
            filtered: s.filtered,
            other: s.other,
            overruns: s.overruns,
            table_entries: l.view.as_ref().map_or(0, |v| v.len() as u64),
        });
        Ok(IPVSCT_OK)
    })
}

/// Unsubscribes, closes the socket and frees the handle; NULL is ignored.
///
/// # Safety
/// `ev` is NULL or a handle from `ipvsct_events_open` not yet freed, and no other thread
/// is using it.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_events_free(ev: *mut ipvsct_events) {
    boundary_value((), || {
        if !ev.is_null() {
            // SAFETY: a live handle made by Box::into_raw in ipvsct_events_open (contract).
            drop(unsafe { Box::from_raw(ev) });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipvs_conntrack::conntrack::{ConntrackEvent, Entry, Tuple};
    use std::time::Duration;

    #[test]
    fn options_are_checked() {
        let o = ipvsct_events_options::default();
        assert_eq!(o.to_core(0).unwrap_err().code, IPVSCT_ERR_INVALID_ARGUMENT);
        assert!(o.to_core(0x40).unwrap_err().message.contains("0x40"));
        let c = o.to_core(IPVSCT_EVENTS_CONNTRACK).unwrap();
        assert_eq!(c.groups, EventGroups::CONNTRACK);
        assert!(c.join_timeouts && !c.reliable);
        let o = ipvsct_events_options {
            flags: IPVSCT_EVENTS_RELIABLE | IPVSCT_EVENTS_NO_STATE_TIMEOUTS,
            rcvbuf: 4096,
            family: 10,
            protocols_len: 2,
            protocols: [6, 17, 0, 0, 0, 0, 0, 0],
            ..Default::default()
        };
        let c = o
            .to_core(IPVSCT_EVENTS_DESTROY | IPVSCT_EVENTS_EXP_NEW)
            .unwrap();
        assert_eq!(c.groups, EventGroups::DESTROY | EventGroups::EXP_NEW);
        assert_eq!(c.rcvbuf, 4096);
        assert!(c.reliable && !c.join_timeouts);
        assert_eq!(c.filter.protocols, [6, 17]);
        assert_eq!(c.filter.families, [Family::Ipv6]);
        for bad in [
            ipvsct_events_options {
                protocols_len: 9,
                ..Default::default()
            },
            ipvsct_events_options {
                family: 3,
                ..Default::default()
            },
            ipvsct_events_options {
                flags: 0x100,
                ..Default::default()
            },
        ] {
            assert_eq!(
                bad.to_core(1).unwrap_err().code,
                IPVSCT_ERR_INVALID_ARGUMENT
            );
        }
    }

    #[test]
    fn events_convert_by_kind() {
        let at = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_000_123);
        let o = ipvsct_event::from_core(&Event::Overrun(Overrun {
            failed_receives: 2,
            total: 5,
            since: at,
            at: at + Duration::from_secs(1),
        }));
        assert_eq!(o.kind, IPVSCT_EVENT_OVERRUN);
        // SAFETY: `kind` says which member was written.
        let ov = unsafe { o.data.overrun };
        assert_eq!(
            (ov.failed_receives, ov.total, ov.since_ns, ov.at_ns),
            (2, 5, 1_700_000_000_000_000_123, 1_700_000_001_000_000_123)
        );
        let orig = Tuple::with_ports(
            17,
            "10.0.0.1".parse().unwrap(),
            1,
            "10.0.0.2".parse().unwrap(),
            2,
        );
        let bytes = ipvs_conntrack::conntrack::WriteRequest::encode(
            &ipvs_conntrack::conntrack::CreateRequest::new(orig.clone(), 30),
        )
        .unwrap();
        let frame = ipvs_conntrack::netlink::frame::Frames::new(&bytes)
            .next()
            .unwrap()
            .unwrap();
        let entry = Entry::from_frame(&frame).unwrap();
        let e = ipvsct_event::from_core(&Event::Conntrack(ConntrackEvent {
            kind: EventKind::Destroy,
            entry,
            event_time: None,
        }));
        assert_eq!(e.kind, IPVSCT_EVENT_DESTROY);
        // SAFETY: `kind` says which member was written.
        let en = unsafe { e.data.entry };
        assert_eq!((en.orig.src_port, en.orig.dst_port, en.timeout), (1, 2, 30));
    }

    #[test]
    fn null_arguments_are_reported() {
        let mut fd: c_int = -7;
        let mut h: *mut ipvsct_events = std::ptr::null_mut();
        // SAFETY: NULL arguments are allowed and reported; outputs are writable.
        unsafe {
            assert_eq!(
                ipvsct_events_fd(std::ptr::null(), &mut fd),
                IPVSCT_ERR_NULL_ARGUMENT
            );
            assert_eq!(
                ipvsct_events_drain(
                    std::ptr::null_mut(),
                    0,
                    None,
                    std::ptr::null_mut(),
                    std::ptr::null_mut()
                ),
                IPVSCT_ERR_NULL_ARGUMENT
            );
            assert_eq!(
                ipvsct_events_open(std::ptr::null(), 0, std::ptr::null(), &mut h),
                IPVSCT_ERR_INVALID_ARGUMENT
            );
            ipvsct_events_free(std::ptr::null_mut());
        }
        assert_eq!(fd, -7);
        assert!(h.is_null());
    }
}
