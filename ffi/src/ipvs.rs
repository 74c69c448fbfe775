//! The IPVS handle (`ipvsct_ipvs`): services, destinations, statistics, timeouts, info,
//! sync daemons and the connection table of one network namespace, and their control.

use std::ffi::{c_char, c_int, c_void};

use ipvs_conntrack::ipvs::conn::{ConnReader, ConnTable};
use ipvs_conntrack::ipvs::timeouts::StateTimeoutTable;
use ipvs_conntrack::ipvs::{DaemonState, Ipvs};

use crate::boundary::{boundary, boundary_value};
use crate::conntrack::parse_netns;
use crate::error::FfiError;
use crate::ipvs_types::*;
use crate::lock::Guarded;
use crate::ptr::{in_bytes, in_opt, in_ref, out_opt, Out};
use crate::result::ipvsct_result;
use crate::result::ipvsct_result::*;

/// `ipvsct_ipvs_conn_decode` table: the format of /proc/net/ip_vs_conn.
pub const IPVSCT_IPVS_CONN_TABLE: u32 = 0;
/// `ipvsct_ipvs_conn_decode` table: the format of /proc/net/ip_vs_conn_sync (with origins).
pub const IPVSCT_IPVS_CONN_SYNC_TABLE: u32 = 1;

/// A client for the IPVS tables of one network namespace (opaque).
///
/// Thread-safe: calls serialize on an internal lock. The list calls read everything (or,
/// for connections, open the table) before the first callback and unlock, so callbacks
/// may call the same handle.
pub struct ipvsct_ipvs {
    inner: Guarded<IpvsInner>,
}

struct IpvsInner {
    ipvs: Ipvs,
}

/// Callback for services; the pointer is valid only during the call. Return 0 to go on,
/// anything else to stop. It must not unwind or longjmp out of the library.
#[allow(non_camel_case_types)]
pub type ipvsct_ipvs_service_cb =
    Option<unsafe extern "C" fn(service: *const ipvsct_ipvs_service, user: *mut c_void) -> c_int>;
/// Callback for destinations (as `ipvsct_ipvs_service_cb`).
#[allow(non_camel_case_types)]
pub type ipvsct_ipvs_dest_cb =
    Option<unsafe extern "C" fn(dest: *const ipvsct_ipvs_dest, user: *mut c_void) -> c_int>;
/// Callback for sync daemons (as `ipvsct_ipvs_service_cb`).
#[allow(non_camel_case_types)]
pub type ipvsct_ipvs_daemon_cb =
    Option<unsafe extern "C" fn(daemon: *const ipvsct_ipvs_daemon, user: *mut c_void) -> c_int>;
/// Callback for connection entries (as `ipvsct_ipvs_service_cb`).
#[allow(non_camel_case_types)]
pub type ipvsct_ipvs_conn_cb =
    Option<unsafe extern "C" fn(conn: *const ipvsct_ipvs_conn, user: *mut c_void) -> c_int>;

/// Calls `cb` with each item (converted by `conv`) until it returns non-zero.
fn deliver<T, C>(
    items: impl IntoIterator<Item = Result<T, FfiError>>,
    conv: impl Fn(&T) -> C,
    cb: unsafe extern "C" fn(*const C, *mut c_void) -> c_int,
    user: *mut c_void,
    count_out: Option<Out<'_, usize>>,
) -> Result<ipvsct_result, FfiError> {
    let mut n = 0usize;
    let mut result = IPVSCT_OK;
    for item in items {
        let c = conv(&item?);
        n += 1;
        // SAFETY: `cb` is a valid function (the callers' contract); `c` outlives the call.
        if unsafe { cb(&c, user) } != 0 {
            result = IPVSCT_STOPPED;
            break;
        }
    }
    if let Some(out) = count_out {
        out.write(n);
    }
    Ok(result)
}

/// Opens an IPVS client in network namespace `netns` (NULL, a path or an `ip netns` name,
/// as for `ipvsct_conntrack_open`) and writes it to `*out`. IPVSCT_ERR_UNSUPPORTED when the
/// kernel has no IPVS (module ip_vs not loaded).
///
/// # Safety
/// `netns` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ipvs_open(
    netns: *const c_char,
    out: *mut *mut ipvsct_ipvs,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or a writable pointer (contract above).
        let out = unsafe { Out::new(out, "out") }?;
        // SAFETY: the caller passes NULL or a NUL-terminated string (contract above).
        let ns = unsafe { parse_netns(netns) }?;
        let ipvs = Ipvs::open(&ns)?;
        let h = ipvsct_ipvs {
            inner: Guarded::new(IpvsInner { ipvs }, "ipvs"),
        };
        out.write(Box::into_raw(Box::new(h)));
        Ok(IPVSCT_OK)
    })
}

/// Closes the client and frees the handle; NULL is ignored.
///
/// # Safety
/// `ipvs` is NULL or a handle from `ipvsct_ipvs_open` not yet freed, and no other thread
/// is using it.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ipvs_free(ipvs: *mut ipvsct_ipvs) {
    boundary_value((), || {
        if !ipvs.is_null() {
            // SAFETY: a live handle made by Box::into_raw in ipvsct_ipvs_open (contract).
            drop(unsafe { Box::from_raw(ipvs) });
        }
    })
}

/// Writes the IPVS version and connection table size to `*out`.
///
/// # Safety
/// `ipvs` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ipvs_get_info(
    ipvs: *const ipvsct_ipvs,
    out: *mut ipvsct_ipvs_info,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (h, out) = unsafe { (in_ref(ipvs, "ipvs")?, Out::new(out, "out")?) };
        let i = h.inner.lock()?.ipvs.info()?;
        out.write((&i).into());
        Ok(IPVSCT_OK)
    })
}

/// Writes the three configurable timeouts (TCP, TCP FIN_WAIT, UDP) to `*out`.
///
/// # Safety
/// `ipvs` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ipvs_get_config(
    ipvs: *const ipvsct_ipvs,
    out: *mut ipvsct_ipvs_config,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (h, out) = unsafe { (in_ref(ipvs, "ipvs")?, Out::new(out, "out")?) };
        let t = h.inner.lock()?.ipvs.config()?;
        out.write(ipvsct_ipvs_config::from_core(&t));
        Ok(IPVSCT_OK)
    })
}

/// Sets the configurable timeouts of `*config` that are not IPVSCT_TIMEOUT_UNSET
/// (`ipvsadm --set`); at least one must be set, none 0.
///
/// # Safety
/// `ipvs` is NULL or a live handle; `config` is NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ipvs_set_timeouts(
    ipvs: *const ipvsct_ipvs,
    config: *const ipvsct_ipvs_config,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (h, config) = unsafe { (in_ref(ipvs, "ipvs")?, in_ref(config, "config")?) };
        h.inner.lock()?.ipvs.set_timeouts(&config.to_core())?;
        Ok(IPVSCT_OK)
    })
}

/// Calls `cb` with every virtual service (with statistics), writing their number to
/// `*count_out` if not NULL. Returns IPVSCT_OK, or IPVSCT_STOPPED if `cb` returned non-zero.
///
/// # Safety
/// `ipvs` is NULL or a live handle; `cb` is NULL or a valid function; `count_out` is NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ipvs_services(
    ipvs: *const ipvsct_ipvs,
    cb: ipvsct_ipvs_service_cb,
    user: *mut c_void,
    count_out: *mut usize,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (h, count_out) = unsafe { (in_ref(ipvs, "ipvs")?, out_opt(count_out, "count_out")?) };
        let cb = cb.ok_or_else(|| FfiError::null("cb"))?;
        let all = h.inner.lock()?.ipvs.services()?;
        deliver(
            all.into_iter().map(Ok),
            ipvsct_ipvs_service::from_core,
            cb,
            user,
            count_out,
        )
    })
}

/// Writes the service `*key` (with statistics) to `*out`. IPVSCT_ERR_KERNEL with errno
/// ESRCH if there is no such service.
///
/// # Safety
/// `ipvs` is NULL or a live handle; `key` is NULL or readable; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ipvs_service_get(
    ipvs: *const ipvsct_ipvs,
    key: *const ipvsct_ipvs_service_key,
    out: *mut ipvsct_ipvs_service,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (h, key, out) = unsafe {
            (
                in_ref(ipvs, "ipvs")?,
                in_ref(key, "key")?,
                Out::new(out, "out")?,
            )
        };
        let key = key.to_core("key")?;
        let s = h.inner.lock()?.ipvs.service(&key)?;
        out.write(ipvsct_ipvs_service::from_core(&s));
        Ok(IPVSCT_OK)
    })
}

/// Calls `cb` with every destination of service `*key` (with their ActiveConn, InActConn
/// and statistics); none when the service does not exist.
///
/// # Safety
/// `ipvs` is NULL or a live handle; `key` is NULL or readable; `cb` is NULL or a valid
/// function; `count_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ipvs_dests(
    ipvs: *const ipvsct_ipvs,
    key: *const ipvsct_ipvs_service_key,
    cb: ipvsct_ipvs_dest_cb,
    user: *mut c_void,
    count_out: *mut usize,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (h, key, count_out) = unsafe {
            (
                in_ref(ipvs, "ipvs")?,
                in_ref(key, "key")?,
                out_opt(count_out, "count_out")?,
            )
        };
        let cb = cb.ok_or_else(|| FfiError::null("cb"))?;
        let key = key.to_core("key")?;
        let all = h.inner.lock()?.ipvs.destinations(&key)?;
        deliver(
            all.into_iter().map(Ok),
            ipvsct_ipvs_dest::from_core,
            cb,
            user,
            count_out,
        )
    })
}

/// Calls `cb` with every running sync daemon (master first).
///
/// # Safety
/// `ipvs` is NULL or a live handle; `cb` is NULL or a valid function; `count_out` is NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ipvs_daemons(
    ipvs: *const ipvsct_ipvs,
    cb: ipvsct_ipvs_daemon_cb,
    user: *mut c_void,
    count_out: *mut usize,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (h, count_out) = unsafe { (in_ref(ipvs, "ipvs")?, out_opt(count_out, "count_out")?) };
        let cb = cb.ok_or_else(|| FfiError::null("cb"))?;
        let all = h.inner.lock()?.ipvs.daemons()?;
        deliver(
            all.into_iter().map(Ok),
            ipvsct_ipvs_daemon::from_core,
            cb,
            user,
            count_out,
        )
    })
}

/// Streams the connection table (/proc/net/ip_vs_conn of the handle's namespace) into
/// `cb`: each entry with its state, seconds to expire, the full timeout of its state under
/// the timeouts in force, and whether its destination counts it as active, inactive or
/// persistent. Memory does not grow with the table.
///
/// # Safety
/// `ipvs` is NULL or a live handle; `cb` is NULL or a valid function; `count_out` is NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ipvs_connections(
    ipvs: *const ipvsct_ipvs,
    cb: ipvsct_ipvs_conn_cb,
    user: *mut c_void,
    count_out: *mut usize,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (h, count_out) = unsafe { (in_ref(ipvs, "ipvs")?, out_opt(count_out, "count_out")?) };
        let cb = cb.ok_or_else(|| FfiError::null("cb"))?;
        let (table, reader) = {
            let mut l = h.inner.lock()?;
            let table = l.ipvs.state_timeouts()?;
            (table, l.ipvs.connections()?)
        };
        deliver(
            reader.map(|r| r.map_err(FfiError::from)),
            |c| ipvsct_ipvs_conn::from_core(c, &table),
            cb,
            user,
            count_out,
        )
    })
}

/// Adds the virtual service `*service` (see `ipvsct_ipvs_service` for what is sent).
///
/// # Safety
/// `ipvs` is NULL or a live handle; `service` is NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ipvs_service_add(
    ipvs: *const ipvsct_ipvs,
    service: *const ipvsct_ipvs_service,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (h, s) = unsafe { (in_ref(ipvs, "ipvs")?, in_ref(service, "service")?) };
        let spec = s.to_spec()?;
        h.inner.lock()?.ipvs.add_service(&spec)?;
        Ok(IPVSCT_OK)
    })
}

/// Changes the virtual service `service->key` (scheduler, flags, timeout, netmask, engine).
///
/// # Safety
/// `ipvs` is NULL or a live handle; `service` is NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ipvs_service_edit(
    ipvs: *const ipvsct_ipvs,
    service: *const ipvsct_ipvs_service,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (h, s) = unsafe { (in_ref(ipvs, "ipvs")?, in_ref(service, "service")?) };
        let spec = s.to_spec()?;
        h.inner.lock()?.ipvs.edit_service(&spec)?;
        Ok(IPVSCT_OK)
    })
}

/// Deletes the virtual service `*key` and its destinations.
///
/// # Safety
/// `ipvs` is NULL or a live handle; `key` is NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ipvs_service_delete(
    ipvs: *const ipvsct_ipvs,
    key: *const ipvsct_ipvs_service_key,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (h, key) = unsafe { (in_ref(ipvs, "ipvs")?, in_ref(key, "key")?) };
        let key = key.to_core("key")?;
        h.inner.lock()?.ipvs.del_service(&key)?;
        Ok(IPVSCT_OK)
    })
}

/// Adds the destination `*dest` to service `*key`.
///
/// # Safety
/// `ipvs` is NULL or a live handle; `key` and `dest` are NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ipvs_dest_add(
    ipvs: *const ipvsct_ipvs,
    key: *const ipvsct_ipvs_service_key,
    dest: *const ipvsct_ipvs_dest,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (h, key, dest) = unsafe {
            (
                in_ref(ipvs, "ipvs")?,
                in_ref(key, "key")?,
                in_ref(dest, "dest")?,
            )
        };
        let key = key.to_core("key")?;
        let spec = dest.to_spec(&key)?;
        h.inner.lock()?.ipvs.add_dest(&key, &spec)?;
        Ok(IPVSCT_OK)
    })
}

/// Changes the destination `dest->addr`:`dest->port` of service `*key` (forwarding method,
/// weight, thresholds, tunnel).
///
/// # Safety
/// `ipvs` is NULL or a live handle; `key` and `dest` are NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ipvs_dest_edit(
    ipvs: *const ipvsct_ipvs,
    key: *const ipvsct_ipvs_service_key,
    dest: *const ipvsct_ipvs_dest,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (h, key, dest) = unsafe {
            (
                in_ref(ipvs, "ipvs")?,
                in_ref(key, "key")?,
                in_ref(dest, "dest")?,
            )
        };
        let key = key.to_core("key")?;
        let spec = dest.to_spec(&key)?;
        h.inner.lock()?.ipvs.edit_dest(&key, &spec)?;
        Ok(IPVSCT_OK)
    })
}

/// Deletes the destination `dest->addr`:`dest->port` from service `*key` (the other
/// members of `*dest` are ignored).
///
/// # Safety
/// `ipvs` is NULL or a live handle; `key` and `dest` are NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ipvs_dest_delete(
    ipvs: *const ipvsct_ipvs,
    key: *const ipvsct_ipvs_service_key,
    dest: *const ipvsct_ipvs_dest,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (h, key, dest) = unsafe {
            (
                in_ref(ipvs, "ipvs")?,
                in_ref(key, "key")?,
                in_ref(dest, "dest")?,
            )
        };
        let key = key.to_core("key")?;
        let addr = std::net::SocketAddr::new(dest.addr.to_ip("dest.addr")?, dest.port);
        h.inner.lock()?.ipvs.del_dest(&key, addr)?;
        Ok(IPVSCT_OK)
    })
}

/// Zeroes the counters of service `*key` and its destinations, or of everything if `key`
/// is NULL.
///
/// # Safety
/// `ipvs` is NULL or a live handle; `key` is NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ipvs_zero(
    ipvs: *const ipvsct_ipvs,
    key: *const ipvsct_ipvs_service_key,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (h, key) = unsafe { (in_ref(ipvs, "ipvs")?, in_opt(key)) };
        let key = key.map(|k| k.to_core("key")).transpose()?;
        h.inner.lock()?.ipvs.zero(key.as_ref())?;
        Ok(IPVSCT_OK)
    })
}

/// Deletes every service and destination of the namespace.
///
/// # Safety
/// `ipvs` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ipvs_flush(ipvs: *const ipvsct_ipvs) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or a live handle (contract above).
        let h = unsafe { in_ref(ipvs, "ipvs") }?;
        h.inner.lock()?.ipvs.flush()?;
        Ok(IPVSCT_OK)
    })
}

/// Starts the sync daemon `*daemon` (see `ipvsct_ipvs_daemon` for what is sent).
///
/// # Safety
/// `ipvs` is NULL or a live handle; `daemon` is NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ipvs_daemon_start(
    ipvs: *const ipvsct_ipvs,
    daemon: *const ipvsct_ipvs_daemon,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (h, d) = unsafe { (in_ref(ipvs, "ipvs")?, in_ref(daemon, "daemon")?) };
        let spec = d.to_spec()?;
        h.inner.lock()?.ipvs.start_daemon(&spec)?;
        Ok(IPVSCT_OK)
    })
}

/// Stops the sync daemon of role `state` (`IPVSCT_IPVS_DAEMON_MASTER` or `_BACKUP`).
///
/// # Safety
/// `ipvs` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ipvs_daemon_stop(
    ipvs: *const ipvsct_ipvs,
    state: u32,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or a live handle (contract above).
        let h = unsafe { in_ref(ipvs, "ipvs") }?;
        if state != IPVSCT_IPVS_DAEMON_MASTER && state != IPVSCT_IPVS_DAEMON_BACKUP {
            return Err(FfiError::invalid(format!(
                "state: {state} is neither IPVSCT_IPVS_DAEMON_MASTER nor _BACKUP"
            )));
        }
        h.inner.lock()?.ipvs.stop_daemon(DaemonState::from(state))?;
        Ok(IPVSCT_OK)
    })
}

/// Decodes IPVS connection table text (the content of /proc/net/ip_vs_conn, or of
/// ip_vs_conn_sync with `table` IPVSCT_IPVS_CONN_SYNC_TABLE; the header line is skipped)
/// into `cb`, with state timeouts from `*config` (NULL: the kernel defaults).
///
/// Stops at the first line that does not parse (IPVSCT_ERR_IO with the line in the last
/// error; the entries before it were delivered). Thread-safe; needs no IPVS.
///
/// # Safety
/// `text` is NULL or `text_len` readable bytes; `config` is NULL or readable; `cb` is NULL
/// or a valid function; `count_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_ipvs_conn_decode(
    text: *const c_char,
    text_len: usize,
    table: u32,
    config: *const ipvsct_ipvs_config,
    cb: ipvsct_ipvs_conn_cb,
    user: *mut c_void,
    count_out: *mut usize,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers and lengths (contract above).
        let (bytes, config, count_out) = unsafe {
            (
                in_bytes(text.cast(), text_len, "text")?,
                in_opt(config),
                out_opt(count_out, "count_out")?,
            )
        };
        let cb = cb.ok_or_else(|| FfiError::null("cb"))?;
        let table_kind = match table {
            IPVSCT_IPVS_CONN_TABLE => ConnTable::Conn,
            IPVSCT_IPVS_CONN_SYNC_TABLE => ConnTable::Sync,
            t => {
                return Err(FfiError::invalid(format!(
                    "table: {t} is neither IPVSCT_IPVS_CONN_TABLE nor IPVSCT_IPVS_CONN_SYNC_TABLE"
                )))
            }
        };
        let timeouts = match config {
            Some(c) => StateTimeoutTable::from_config(&c.to_core()),
            None => StateTimeoutTable::default(),
        };
        let reader = ConnReader::new(bytes, table_kind);
        deliver(
            reader.map(|r| r.map_err(FfiError::from)),
            |c| ipvsct_ipvs_conn::from_core(c, &timeouts),
            cb,
            user,
            count_out,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" fn count(c: *const ipvsct_ipvs_conn, user: *mut c_void) -> c_int {
        // SAFETY: the library passes a valid entry; `user` is the test's Vec.
        unsafe { (*user.cast::<Vec<ipvsct_ipvs_conn>>()).push(*c) };
        0
    }

    #[test]
    fn conn_text_decodes_with_configured_timeouts() {
        let text =
            "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n\
TCP 0A000102 E1A4 0A000001 0050 0A000302 0050 ESTABLISHED     899\n\
UDP 0A000102 9C40 0A000001 0035 0A000202 0035 UDP             299\n";
        let cfg = ipvsct_ipvs_config {
            tcp: 1000,
            tcp_fin: IPVSCT_TIMEOUT_UNSET_FOR_TESTS,
            udp: 33,
            reserved: 0,
        };
        let mut got: Vec<ipvsct_ipvs_conn> = Vec::new();
        let mut n = 0usize;
        // SAFETY: valid buffer, config, callback and outputs.
        let r = unsafe {
            ipvsct_ipvs_conn_decode(
                text.as_ptr().cast(),
                text.len(),
                IPVSCT_IPVS_CONN_TABLE,
                &cfg,
                Some(count),
                (&mut got as *mut Vec<ipvsct_ipvs_conn>).cast(),
                &mut n,
            )
        };
        assert_eq!(r, IPVSCT_OK);
        assert_eq!(n, 2);
        assert_eq!(
            (got[0].state_timeout, got[0].activity, got[0].expires),
            (1000, IPVSCT_IPVS_ACTIVE, 899)
        );
        assert_eq!(
            (got[1].state_timeout, got[1].activity),
            (33, IPVSCT_IPVS_INACTIVE)
        );
        let bad = "TCP zz\n";
        // SAFETY: as above.
        let r = unsafe {
            ipvsct_ipvs_conn_decode(
                bad.as_ptr().cast(),
                bad.len(),
                IPVSCT_IPVS_CONN_TABLE,
                std::ptr::null(),
                Some(count),
                (&mut got as *mut Vec<ipvsct_ipvs_conn>).cast(),
                &mut n,
            )
        };
        assert_eq!(r, IPVSCT_ERR_IO);
        assert_eq!(n, 2, "count untouched on failure");
    }

    const IPVSCT_TIMEOUT_UNSET_FOR_TESTS: u32 = crate::timeouts::IPVSCT_TIMEOUT_UNSET;

    #[test]
    fn null_arguments_are_reported() {
        let mut i = ipvsct_ipvs_info::default();
        let mut h: *mut ipvsct_ipvs = std::ptr::null_mut();
        // SAFETY: NULL arguments are allowed and reported.
        unsafe {
            assert_eq!(
                ipvsct_ipvs_get_info(std::ptr::null(), &mut i),
                IPVSCT_ERR_NULL_ARGUMENT
            );
            assert_eq!(
                ipvsct_ipvs_open(c"".as_ptr(), &mut h),
                IPVSCT_ERR_INVALID_ARGUMENT
            );
            assert_eq!(
                ipvsct_ipvs_daemon_stop(std::ptr::null(), 1),
                IPVSCT_ERR_NULL_ARGUMENT
            );
            ipvsct_ipvs_free(std::ptr::null_mut());
        }
        assert!(h.is_null());
    }
}
