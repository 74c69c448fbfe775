//! The dump iterator (`ipvsct_dump`): a live, streaming dump on its own socket, read one
//! entry at a time with `ipvsct_dump_next`.

use ipvs_conntrack::conntrack::{Conntrack, DumpState};

use crate::boundary::{boundary, boundary_value};
use crate::conntrack::{ipvsct_conntrack, next_entry};
use crate::entry::ipvsct_ct_entry;
use crate::filter::ipvsct_dump_filter;
use crate::ptr::{in_opt, in_ref, Out};
use crate::result::ipvsct_result;
use crate::result::ipvsct_result::*;

/// A dump in progress (opaque): its own netlink socket in the namespace of the handle
/// that started it, and the kernel's answer being read.
///
/// Not thread-safe: use it from one thread at a time (it may move between threads). It
/// does not borrow the `ipvsct_conntrack` that made it, which may be used or freed meanwhile.
pub struct ipvsct_dump {
    conn: Conntrack,
    /// The position in the kernel's answer (with the state timeouts it joins); `None`
    /// once the dump is over.
    state: Option<DumpState>,
}

/// Starts a streaming dump of the table (or `filter`'s part of it; NULL for everything)
/// on a new socket in `ct`'s namespace, and writes the iterator to `*out`.
///
/// # Safety
/// `ct` is NULL or a live handle; `filter` is NULL or readable; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_dump_new(
    ct: *const ipvsct_conntrack,
    filter: *const ipvsct_dump_filter,
    out: *mut *mut ipvsct_dump,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (ct, filter, out) =
            unsafe { (in_ref(ct, "ct")?, in_opt(filter), Out::new(out, "out")?) };
        let (table, filter) = filter.copied().unwrap_or_default().to_core()?;
        let (netns, opts, timeouts, reader) = {
            let mut l = ct.lock()?;
            let t = l.state_timeouts();
            (
                l.netns.clone(),
                l.opts.clone(),
                t,
                l.ct.socket().dump_reader(),
            )
        };
        let mut conn = Conntrack::with_options(&netns, &opts)?;
        conn.set_dump_reader(reader);
        if let Some(t) = timeouts {
            conn.set_state_timeouts(t);
        }
        let state = conn.dump_table(table, &filter)?.suspend();
        out.write(Box::into_raw(Box::new(ipvsct_dump {
            conn,
            state: Some(state),
        })));
        Ok(IPVSCT_OK)
    })
}

/// Reads the next entry of the dump into `*out` (with its state timeout).
///
/// IPVSCT_OK with an entry; IPVSCT_DONE at the end (nothing written; again on later
/// calls). IPVSCT_ERR_DUMP_INTERRUPTED once after the last entry if the table changed
/// during the dump. After IPVSCT_ERR_DECODE or IPVSCT_ERR_TIMEOUT the next call goes on
/// with the dump; after other errors the next call returns IPVSCT_DONE.
///
/// # Safety
/// `dump` is NULL or a live iterator not used by another thread; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_dump_next(
    dump: *mut ipvsct_dump,
    out: *mut ipvsct_ct_entry,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or a live iterator used by this thread only, and a
        // writable entry (contract above).
        let (dump, out) = unsafe { (dump.as_mut(), Out::new(out, "out")?) };
        let dump = dump.ok_or_else(|| crate::error::FfiError::null("dump"))?;
        let Some(state) = dump.state.take() else {
            return Ok(IPVSCT_DONE);
        };
        // Only this iterator sends on `conn`, so the suspended dump is intact.
        let mut live = dump.conn.resume(state);
        // The core's owned entry in C form, with the dump's state timeouts (see
        // `next_entry`).
        let mut e = ipvsct_ct_entry::default();
        let item = next_entry(&mut live, &mut e);
        if item.is_some() {
            dump.state = Some(live.suspend());
        }
        match item {
            None => Ok(IPVSCT_DONE),
            Some(Ok(())) => {
                out.write(e);
                Ok(IPVSCT_OK)
            }
            Some(Err(e)) => Err(e.into()),
        }
    })
}

/// Ends the dump (early or not), closes its socket and frees the iterator; NULL is ignored.
///
/// # Safety
/// `dump` is NULL or a live iterator not yet freed and not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_dump_free(dump: *mut ipvsct_dump) {
    boundary_value((), || {
        if !dump.is_null() {
            // SAFETY: a live iterator made by Box::into_raw in ipvsct_dump_new (contract).
            drop(unsafe { Box::from_raw(dump) });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_arguments_are_reported() {
        let mut e = std::mem::MaybeUninit::<ipvsct_ct_entry>::uninit();
        let mut d: *mut ipvsct_dump = std::ptr::null_mut();
        // SAFETY: NULL arguments are allowed and reported; the outputs are writable.
        unsafe {
            assert_eq!(
                ipvsct_dump_next(std::ptr::null_mut(), e.as_mut_ptr()),
                IPVSCT_ERR_NULL_ARGUMENT
            );
            assert_eq!(
                ipvsct_dump_new(std::ptr::null(), std::ptr::null(), &mut d),
                IPVSCT_ERR_NULL_ARGUMENT
            );
            ipvsct_dump_free(std::ptr::null_mut());
        }
        assert!(d.is_null());
    }
}
