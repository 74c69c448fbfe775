//! The conntrack handle (`ipvsct_conntrack`): open and free, count, per-CPU statistics,
//! state timeouts, lookups and callback dumps.

use std::ffi::{c_char, c_int, c_void, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use ipvs_conntrack::conntrack::{Conntrack, Dump, EntryView, StateTimeouts};
use ipvs_conntrack::socket::SocketOptions;
use ipvs_conntrack::DecodeError;
use ipvs_conntrack::Netns;

use crate::boundary::{boundary, boundary_value};
use crate::entry::ipvsct_ct_entry;
use crate::error::FfiError;
use crate::filter::ipvsct_dump_filter;
use crate::lock::{Guarded, Locked};
use crate::ptr::{in_cstr, in_opt, in_ref, Out, OutSlice};
use crate::result::ipvsct_result;
use crate::result::ipvsct_result::*;
use crate::stats::{ipvsct_ct_cpu_stats, ipvsct_ct_global_stats};
use crate::timeouts::ipvsct_ct_timeouts;
use crate::tuple::ipvsct_tuple;

/// A client for the conntrack table of one network namespace (opaque).
///
/// Thread-safe: calls on one handle from several threads are serialized on an internal
/// lock. A call on the handle from inside one of its own dump callbacks returns
/// IPVSCT_ERR_BUSY instead of deadlocking.
pub struct ipvsct_conntrack {
    inner: Guarded<Inner>,
}

/// The state behind the handle's lock.
pub(crate) struct Inner {
    /// The core client.
    pub ct: Conntrack,
    /// Its namespace (dump iterators open their own socket there).
    pub netns: Netns,
    /// Its socket options.
    pub opts: SocketOptions,
    timeouts: Option<Option<StateTimeouts>>,
}

impl Inner {
    /// The default state timeouts, read once per handle (`None` if they cannot be read).
    pub(crate) fn state_timeouts(&mut self) -> Option<StateTimeouts> {
        if self.timeouts.is_none() {
            let t = self.ct.default_timeouts().ok();
            if let Some(t) = &t {
                self.ct.set_state_timeouts(t.clone());
            }
            self.timeouts = Some(t);
        }
        self.timeouts.clone().flatten()
    }

    /// Forgets the cached state timeouts (after the defaults were changed).
    pub(crate) fn forget_state_timeouts(&mut self) {
        self.timeouts = None;
    }
}

impl ipvsct_conntrack {
    fn new(netns: Netns) -> Result<Self, FfiError> {
        let opts = SocketOptions::default();
        let ct = Conntrack::with_options(&netns, &opts)?;
        Ok(ipvsct_conntrack {
            inner: Guarded::new(
                Inner {
                    ct,
                    netns,
                    opts,
                    timeouts: None,
                },
                "conntrack",
            ),
        })
    }

    /// Locks the handle for the calling thread; IPVSCT_ERR_BUSY if this thread holds it already.
    pub(crate) fn lock(&self) -> Result<Locked<'_, Inner>, FfiError> {
        self.inner.lock()
    }
}

/// Parses the `netns` argument: NULL for the caller's namespace, a path if it contains
/// '/', an `ip netns` name otherwise.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string.
pub(crate) unsafe fn parse_netns(p: *const c_char) -> Result<Netns, FfiError> {
    // SAFETY: forwarded contract: NULL or a NUL-terminated string.
    let Some(s) = (unsafe { in_cstr(p) }) else {
        return Ok(Netns::Current);
    };
    let bytes = s.to_bytes();
    if bytes.is_empty() {
        return Err(FfiError::invalid(
            "netns: empty string (pass NULL for the caller's namespace)",
        ));
    }
    if bytes.contains(&b'/') {
        return Ok(Netns::path(OsStr::from_bytes(bytes)));
    }
    let name = s
        .to_str()
        .map_err(|_| FfiError::invalid("netns: a namespace name must be UTF-8"))?;
    Ok(Netns::named(name))
}

/// Opens a conntrack client in the caller's network namespace into `*out`.
///
/// Needs CAP_NET_ADMIN for most calls (IPVSCT_ERR_PERMISSION otherwise).
///
/// # Safety
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_new(out: *mut *mut ipvsct_conntrack) -> ipvsct_result {
    // SAFETY: forwarded contract; NULL netns means the caller's namespace.
    unsafe { ipvsct_conntrack_open(std::ptr::null(), out) }
}

/// Opens a conntrack client in network namespace `netns` into `*out`: NULL for the
/// caller's namespace, a path (contains '/', e.g. "/proc/1234/ns/net"), or an `ip netns`
/// name ("blue" = /run/netns/blue). The calling thread never changes namespace.
///
/// IPVSCT_ERR_NAMESPACE (with errno) if the namespace cannot be opened or entered.
///
/// # Safety
/// `netns` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_open(
    netns: *const c_char,
    out: *mut *mut ipvsct_conntrack,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or a writable pointer (contract above).
        let out = unsafe { Out::new(out, "out") }?;
        // SAFETY: the caller passes NULL or a NUL-terminated string (contract above).
        let ns = unsafe { parse_netns(netns) }?;
        let handle = Box::new(ipvsct_conntrack::new(ns)?);
        out.write(Box::into_raw(handle));
        Ok(IPVSCT_OK)
    })
}

/// Closes the client and frees the handle; NULL is ignored.
///
/// # Safety
/// `ct` is NULL or a handle from `ipvsct_conntrack_new`/`_open` not yet freed, and no other
/// thread is using it.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_free(ct: *mut ipvsct_conntrack) {
    boundary_value((), || {
        if !ct.is_null() {
            // SAFETY: a live handle made by Box::into_raw in ipvsct_conntrack_open (contract).
            drop(unsafe { Box::from_raw(ct) });
        }
    })
}

/// Sets how long a call waits for the kernel before IPVSCT_ERR_TIMEOUT, in milliseconds
/// (0 = forever; the default is 30000). Applies to this handle and to dumps started later.
///
/// # Safety
/// `ct` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_set_recv_timeout(
    ct: *mut ipvsct_conntrack,
    timeout_ms: u32,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or a live handle (contract above).
        let ct = unsafe { in_ref(ct, "ct") }?;
        let mut l = ct.lock()?;
        let t = (timeout_ms > 0).then(|| Duration::from_millis(u64::from(timeout_ms)));
        l.ct.socket().set_recv_timeout(t)?;
        l.opts.recv_timeout = t;
        Ok(IPVSCT_OK)
    })
}

/// Turns the dump reader thread on (`on` non-zero) or off (0) for this handle's dumps and
/// the iterators started from it later. With it, a long dump (more than two datagrams)
/// receives on a thread of the library's own while your callback runs, so the whole dump
/// takes about the kernel's time; the entries, their order and every check are the same.
/// The default is on when the process may use more than one CPU; the environment variable
/// IPVSCT_DUMP_READER=0 or 1, read when a handle is opened, overrides it.
///
/// # Safety
/// `ct` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_set_dump_reader(
    ct: *mut ipvsct_conntrack,
    on: c_int,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or a live handle (contract above).
        let ct = unsafe { in_ref(ct, "ct") }?;
        ct.lock()?.ct.set_dump_reader(on != 0);
        Ok(IPVSCT_OK)
    })
}

/// How the last dump on a reader thread and your callback waited for each other: what
/// the decoding added to the kernel's time. Durations in nanoseconds.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_dump_reader_report {
    /// Datagrams the thread received.
    pub datagrams: u64,
    /// Time the thread waited for room in its queue (the kernel's dump held up).
    pub reader_waited_ns: u64,
    /// Time the callback side waited for a datagram (the kernel the limit).
    pub caller_waited_ns: u64,
    /// Time from the thread's last datagram to the callback side taking it.
    pub caller_behind_at_end_ns: u64,
    /// Datagrams queued, the last included, when the thread received the last one.
    pub queued_at_end: u32,
    /// Zero.
    pub reserved: u32,
}

/// Writes the report of the last dump of this handle that ran on the reader thread to the
/// end (`ipvsct_conntrack_set_dump_reader`) to `*out`; IPVSCT_ABSENT if none has.
/// `reader_waited_ns + caller_behind_at_end_ns` is the time the decoding added to the dump.
///
/// # Safety
/// `ct` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_dump_reader_report(
    ct: *const ipvsct_conntrack,
    out: *mut ipvsct_dump_reader_report,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or a live handle / writable struct (contract above).
        let (ct, out) = unsafe { (in_ref(ct, "ct")?, Out::new(out, "out")?) };
        let Some(r) = ct.lock()?.ct.dump_reader_report() else {
            return Ok(IPVSCT_ABSENT);
        };
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        out.write(ipvsct_dump_reader_report {
            datagrams: r.datagrams,
            reader_waited_ns: ns(r.reader_waited),
            caller_waited_ns: ns(r.caller_waited),
            caller_behind_at_end_ns: ns(r.caller_behind_at_end),
            queued_at_end: r.queued_at_end,
            reserved: 0,
        });
        Ok(IPVSCT_OK)
    })
}

/// Writes the number of entries in the table and `nf_conntrack_max` to `*out`, without
/// dumping the table (IPCTNL_MSG_CT_GET_STATS).
///
/// # Safety
/// `ct` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_count(
    ct: *const ipvsct_conntrack,
    out: *mut ipvsct_ct_global_stats,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or a live handle / writable struct (contract above).
        let (ct, out) = unsafe { (in_ref(ct, "ct")?, Out::new(out, "out")?) };
        let s = ct.lock()?.ct.count()?;
        out.write((&s).into());
        Ok(IPVSCT_OK)
    })
}

/// Writes the per-CPU counters (one element per CPU) to `out[0..out_len)` and their number
/// to `*count_out`.
///
/// Pass `out` NULL and `out_len` 0 to learn the number only. IPVSCT_ERR_BUFFER_TOO_SMALL
/// (nothing written) if there are more CPUs than `out_len`.
///
/// # Safety
/// `ct` is NULL or a live handle; `out` is NULL or `out_len` writable elements;
/// `count_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_cpu_stats(
    ct: *const ipvsct_conntrack,
    out: *mut ipvsct_ct_cpu_stats,
    out_len: usize,
    count_out: *mut usize,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers and lengths (contract above).
        let (ct, out, count_out) = unsafe {
            (
                in_ref(ct, "ct")?,
                OutSlice::new_or_query(out, out_len, "out")?,
                Out::new(count_out, "count_out")?,
            )
        };
        let all = ct.lock()?.ct.cpu_stats()?;
        if let Some(mut out) = out {
            if all.len() > out.len() {
                return Err(FfiError::too_small(format!(
                    "out: {} CPUs reported, room for {}",
                    all.len(),
                    out.len()
                )));
            }
            for (i, s) in all.iter().enumerate() {
                out.set(i, s.into());
            }
        }
        count_out.write(all.len());
        Ok(IPVSCT_OK)
    })
}

/// Writes the default state timeouts of every protocol to `*out`: read over cttimeout, or
/// from the namespace's sysctls where cttimeout is unavailable (see `out->source`).
///
/// # Safety
/// `ct` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_default_timeouts(
    ct: *const ipvsct_conntrack,
    out: *mut ipvsct_ct_timeouts,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or a live handle / writable struct (contract above).
        let (ct, out) = unsafe { (in_ref(ct, "ct")?, Out::new(out, "out")?) };
        let t = ct.lock()?.ct.default_timeouts()?;
        out.write((&t).into());
        Ok(IPVSCT_OK)
    })
}

/// Writes the state timeouts from the namespace's `net.netfilter.nf_conntrack_*timeout*`
/// sysctls to `*out`.
///
/// # Safety
/// `ct` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_sysctl_timeouts(
    ct: *const ipvsct_conntrack,
    out: *mut ipvsct_ct_timeouts,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or a live handle / writable struct (contract above).
        let (ct, out) = unsafe { (in_ref(ct, "ct")?, Out::new(out, "out")?) };
        let t = ct.lock()?.ct.sysctl_timeouts()?;
        out.write((&t).into());
        Ok(IPVSCT_OK)
    })
}

/// Looks up the entry whose original tuple is `*orig` (src, dst and proto required; ports
/// or ICMP fields as the protocol needs; zone if set) and writes it to `*out`, with its
/// state timeout. IPVSCT_ERR_NOT_FOUND (errno ENOENT) if there is none.
///
/// # Safety
/// `ct` is NULL or a live handle; `orig` is NULL or readable; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_get(
    ct: *const ipvsct_conntrack,
    orig: *const ipvsct_tuple,
    out: *mut ipvsct_ct_entry,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (ct, orig, out) = unsafe {
            (
                in_ref(ct, "ct")?,
                in_ref(orig, "orig")?,
                Out::new(out, "out")?,
            )
        };
        let tuple = orig.to_core("orig")?;
        let mut l = ct.lock()?;
        l.state_timeouts();
        let e = l.ct.get(&tuple)?;
        out.write(ipvsct_ct_entry::from_core(&e));
        Ok(IPVSCT_OK)
    })
}

/// Callback for entries; `entry` is valid only during the call (a dump passes the same
/// struct each time, overwritten with the next entry: copy it to keep it). Return 0 to
/// go on, anything else to stop. It must not unwind or longjmp out of the library.
#[allow(non_camel_case_types)]
pub type ipvsct_ct_entry_cb =
    Option<unsafe extern "C" fn(entry: *const ipvsct_ct_entry, user: *mut c_void) -> c_int>;

/// Streams the table (or `filter`'s part of it; NULL for everything) and calls `cb` with
/// each entry, with its state timeout. Memory does not grow with the table.
///
/// Returns IPVSCT_OK at the end, or IPVSCT_STOPPED if `cb` returned non-zero; on both,
/// writes the number of entries passed to `cb` to `*count_out` if it is not NULL.
/// IPVSCT_ERR_DUMP_INTERRUPTED after the last entry if the table changed during the dump
/// (every entry read was still passed to `cb`). The handle stays locked while `cb` runs:
/// calls on the same handle from `cb` return IPVSCT_ERR_BUSY.
///
/// # Safety
/// `ct` is NULL or a live handle; `filter` is NULL or readable; `cb` is NULL or a valid
/// function; `count_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_dump(
    ct: *const ipvsct_conntrack,
    filter: *const ipvsct_dump_filter,
    cb: ipvsct_ct_entry_cb,
    user: *mut c_void,
    count_out: *mut u64,
) -> ipvsct_result {
    // Each entry is converted from the core's owned entry into this one struct: the
    // callback's pointer is valid only during the call (documented on
    // `ipvsct_ct_entry_cb`), and the next entry overwrites it.
    let mut e = ipvsct_ct_entry::default();
    boundary(|| {
        // SAFETY: forwarded contract.
        unsafe {
            callback_dump(ct, filter, count_out, cb, |cb, dump, _| {
                Some(match next_entry(dump, &mut e)? {
                    // SAFETY: `cb` is a valid function (contract); `e` outlives the call.
                    Ok(()) => Ok(cb(&e, user) != 0),
                    Err(err) => Err(err),
                })
            })
        }
    })
}

/// The common part of the callback dumps: the arguments, the locked handle, the dump and
/// the timeouts it joins (cloned once), the count, the early stop and errors (the socket
/// is left clean for the next request); `step` passes one entry to the callback and says
/// whether it asked to stop; `None` at the end.
///
/// # Safety
/// `ct` is NULL or a live handle; `filter` is NULL or readable; `count_out` is NULL or
/// writable.
pub(crate) unsafe fn callback_dump<C: Copy>(
    ct: *const ipvsct_conntrack,
    filter: *const ipvsct_dump_filter,
    count_out: *mut u64,
    cb: Option<C>,
    mut step: impl FnMut(
        C,
        &mut Dump<'_>,
        Option<&StateTimeouts>,
    ) -> Option<Result<bool, ipvs_conntrack::Error>>,
) -> Result<ipvsct_result, FfiError> {
    // SAFETY: the caller passes NULL or valid pointers (contract above).
    let (ct, filter) = unsafe { (in_ref(ct, "ct")?, in_opt(filter)) };
    // SAFETY: as above.
    let count_out = (!count_out.is_null())
        .then(|| unsafe { Out::new(count_out, "count_out") })
        .transpose()?;
    let cb = cb.ok_or_else(|| FfiError::null("cb"))?;
    let (table, filter) = filter.copied().unwrap_or_default().to_core()?;
    let mut l = ct.lock()?;
    l.state_timeouts();
    let mut dump = l.ct.dump_table(table, &filter)?;
    let timeouts = dump.state_timeouts().cloned();
    let mut n = 0u64;
    let mut result = IPVSCT_OK;
    // Bounded by the number of entries in the kernel's answer.
    loop {
        match step(cb, &mut dump, timeouts.as_ref()) {
            None => break,
            Some(Ok(stop)) => {
                n += 1;
                if stop {
                    let _ = dump.stop();
                    result = IPVSCT_STOPPED;
                    break;
                }
            }
            Some(Err(err)) => {
                // Leave the socket clean for the next request (the first error counts).
                let _ = dump.stop();
                return Err(err.into());
            }
        }
    }
    if let Some(out) = count_out {
        out.write(n);
    }
    Ok(result)
}

/// Reads the next entry of `dump` into `*out` in C form, with the state timeout the dump
/// joins ([`Dump::state_timeouts`]): the same value, error or end as `dump.next()`
/// followed by `ipvsct_ct_entry::from_core`. An entry of a common layout is converted
/// from its values ([`Dump::next_step`]), without building the owned entry. `*out` is
/// unspecified after an error or the end.
#[inline]
pub(crate) fn next_entry(
    dump: &mut Dump<'_>,
    out: &mut ipvsct_ct_entry,
) -> Option<Result<(), ipvs_conntrack::Error>> {
    // Matched where it lies (`?` would move the step, copying its large variant).
    match dump.next_step() {
        None => None,
        Some(Ok(ref step)) => {
            ipvsct_ct_entry::fill_from_step(out, step);
            Some(Ok(()))
        }
        Some(Err(err)) => Some(Err(err)),
    }
}

/// Fills `*out` with the C form of the entry view `v`, its state timeout joined from
/// `timeouts`: [`ipvsct_ct_entry::fill_from_view`] where it can, else the owned entry
/// (joined as `Dump` joins it) for the rare entry the view cannot render exactly. The
/// same struct as `from_core` of the joined owned entry. `*out` is unspecified after an
/// error.
pub(crate) fn fill_entry(
    v: &EntryView<'_>,
    timeouts: Option<&StateTimeouts>,
    out: &mut ipvsct_ct_entry,
) -> Result<(), DecodeError> {
    if ipvsct_ct_entry::fill_from_view(out, v, timeouts) {
        return Ok(());
    }
    let mut e = v.to_owned()?;
    if let Some(t) = timeouts {
        e.state_timeout = t.for_state(e.orig.proto, e.state);
    }
    ipvsct_ct_entry::fill_from_core(out, &e);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netns_argument_forms() {
        let latin1 = [b'n', 0xe9, 0];
        // SAFETY: NULL, C string literals and a NUL-terminated array.
        unsafe {
            assert_eq!(parse_netns(std::ptr::null()).unwrap(), Netns::Current);
            assert_eq!(parse_netns(c"blue".as_ptr()).unwrap(), Netns::named("blue"));
            assert_eq!(
                parse_netns(c"/proc/1/ns/net".as_ptr()).unwrap(),
                Netns::path("/proc/1/ns/net")
            );
            assert_eq!(
                parse_netns(c"".as_ptr()).unwrap_err().code,
                IPVSCT_ERR_INVALID_ARGUMENT
            );
            assert_eq!(
                parse_netns(latin1.as_ptr().cast()).unwrap_err().code,
                IPVSCT_ERR_INVALID_ARGUMENT
            );
        }
    }

    #[test]
    fn null_handles_are_rejected_before_any_system_call() {
        let mut g = ipvsct_ct_global_stats::default();
        let mut n = 0usize;
        let mut t = std::mem::MaybeUninit::<ipvsct_ct_timeouts>::uninit();
        // SAFETY: NULL handles are allowed and reported; the outputs are writable.
        unsafe {
            assert_eq!(
                ipvsct_conntrack_count(std::ptr::null(), &mut g),
                IPVSCT_ERR_NULL_ARGUMENT
            );
            assert_eq!(
                ipvsct_conntrack_cpu_stats(std::ptr::null(), std::ptr::null_mut(), 0, &mut n),
                IPVSCT_ERR_NULL_ARGUMENT
            );
            assert_eq!(
                ipvsct_conntrack_default_timeouts(std::ptr::null(), t.as_mut_ptr()),
                IPVSCT_ERR_NULL_ARGUMENT
            );
            assert_eq!(
                ipvsct_conntrack_open(c"x".as_ptr(), std::ptr::null_mut()),
                IPVSCT_ERR_NULL_ARGUMENT
            );
            assert_eq!(
                ipvsct_conntrack_dump(
                    std::ptr::null(),
                    std::ptr::null(),
                    None,
                    std::ptr::null_mut(),
                    std::ptr::null_mut()
                ),
                IPVSCT_ERR_NULL_ARGUMENT
            );
            ipvsct_conntrack_free(std::ptr::null_mut());
        }
        assert_eq!(n, 0, "outputs untouched on failure");
        assert_eq!(g, ipvsct_ct_global_stats::default());
    }
}
