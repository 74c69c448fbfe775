//! Conntrack control calls on `ipvsct_conntrack`: create, update, delete (by tuple or by
//! id), flush (all, family, filter) and the dump that zeroes counters.

use std::ffi::c_void;

use ipvs_conntrack::conntrack::{FlushRequest, Table};

use crate::boundary::boundary;
use crate::conntrack::{ipvsct_conntrack, ipvsct_ct_entry_cb};
use crate::entry::ipvsct_ct_entry;
use crate::error::FfiError;
use crate::filter::ipvsct_dump_filter;
use crate::ptr::{in_opt, in_ref, out_opt};
use crate::request::ipvsct_ct_request;
use crate::result::ipvsct_result;
use crate::result::ipvsct_result::*;

/// Creates the entry `*req` describes (IPCTNL_MSG_CT_NEW with NLM_F_CREATE|NLM_F_EXCL).
/// IPVSCT_ERR_KERNEL with errno EEXIST if an entry with the same tuple exists.
///
/// # Safety
/// `ct` is NULL or a live handle; `req` is NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_create(
    ct: *const ipvsct_conntrack,
    req: *const ipvsct_ct_request,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (ct, req) = unsafe { (in_ref(ct, "ct")?, in_ref(req, "req")?) };
        let r = req.to_create()?;
        ct.lock()?.ct.create(&r)?;
        Ok(IPVSCT_OK)
    })
}

/// Changes the entry whose original tuple is `req->orig` (IPCTNL_MSG_CT_NEW without
/// NLM_F_CREATE). IPVSCT_ERR_NOT_FOUND if there is none.
///
/// # Safety
/// `ct` is NULL or a live handle; `req` is NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_update(
    ct: *const ipvsct_conntrack,
    req: *const ipvsct_ct_request,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (ct, req) = unsafe { (in_ref(ct, "ct")?, in_ref(req, "req")?) };
        let r = req.to_update()?;
        ct.lock()?.ct.update(&r)?;
        Ok(IPVSCT_OK)
    })
}

/// Deletes the one entry with tuple `req->orig` (of direction `req->direction`), in
/// `req->zone` if set, and only if its id is `req->id` if that is set.
/// IPVSCT_ERR_NOT_FOUND if there is none.
///
/// # Safety
/// `ct` is NULL or a live handle; `req` is NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_delete(
    ct: *const ipvsct_conntrack,
    req: *const ipvsct_ct_request,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (ct, req) = unsafe { (in_ref(ct, "ct")?, in_ref(req, "req")?) };
        let r = req.to_delete()?;
        ct.lock()?.ct.delete(&r)?;
        Ok(IPVSCT_OK)
    })
}

/// Deletes the entry with CTA_ID `id`: finds it by dumping the table, then deletes it by
/// tuple and id (a reused tuple is never hit). Writes the deleted entry to `*deleted_out`
/// if it is not NULL. IPVSCT_ERR_NOT_FOUND if no entry has that id.
///
/// # Safety
/// `ct` is NULL or a live handle; `deleted_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_delete_by_id(
    ct: *const ipvsct_conntrack,
    id: u32,
    deleted_out: *mut ipvsct_ct_entry,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (ct, out) = unsafe { (in_ref(ct, "ct")?, out_opt(deleted_out, "deleted_out")?) };
        let mut l = ct.lock()?;
        let timeouts = l.state_timeouts();
        let mut e = l.ct.delete_by_id(id)?;
        if let Some(t) = timeouts {
            e.state_timeout = t.for_state(e.orig.proto, e.state);
        }
        if let Some(out) = out {
            out.write(ipvsct_ct_entry::from_core(&e));
        }
        Ok(IPVSCT_OK)
    })
}

/// Deletes every entry (`filter` NULL or all-zero), every entry of one family
/// (IPVSCT_DUMP_FILTER_HAS_FAMILY), or every entry matching the filter as the kernel
/// evaluates it (mark/mask, zone, status/mask, tuple fields with a family). The filter's
/// table must be IPVSCT_TABLE_MAIN and IPVSCT_DUMP_FILTER_USER_SPACE_ONLY is refused.
///
/// # Safety
/// `ct` is NULL or a live handle; `filter` is NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_flush(
    ct: *const ipvsct_conntrack,
    filter: *const ipvsct_dump_filter,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (ct, filter) = unsafe { (in_ref(ct, "ct")?, in_opt(filter)) };
        let (table, filter) = filter.copied().unwrap_or_default().to_core()?;
        if table != Table::Main {
            return Err(FfiError::invalid(
                "filter: a flush applies to the main table (IPVSCT_TABLE_MAIN)",
            ));
        }
        ct.lock()?.ct.flush(&FlushRequest::matching(filter))?;
        Ok(IPVSCT_OK)
    })
}

/// Zeroes the packet and byte counters of every entry matching `filter` (NULL for all;
/// evaluated by the kernel, main table only) in one dump (IPCTNL_MSG_CT_GET_CTRZERO), and
/// calls `cb` (if not NULL) with each entry as it was before zeroing.
///
/// Every matching entry is zeroed even if `cb` returns non-zero (it is then not called
/// again, and the result is IPVSCT_STOPPED). Writes the number of entries zeroed to
/// `*count_out` if it is not NULL. The handle stays locked while `cb` runs.
///
/// # Safety
/// `ct` is NULL or a live handle; `filter` is NULL or readable; `cb` is NULL or a valid
/// function; `count_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_zero_counters(
    ct: *const ipvsct_conntrack,
    filter: *const ipvsct_dump_filter,
    cb: ipvsct_ct_entry_cb,
    user: *mut c_void,
    count_out: *mut u64,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers (contract above).
        let (ct, filter, count_out) = unsafe {
            (
                in_ref(ct, "ct")?,
                in_opt(filter),
                out_opt(count_out, "count_out")?,
            )
        };
        let (table, filter) = filter.copied().unwrap_or_default().to_core()?;
        if table != Table::Main {
            return Err(FfiError::invalid(
                "filter: counters are zeroed in the main table (IPVSCT_TABLE_MAIN)",
            ));
        }
        let mut l = ct.lock()?;
        let timeouts = l.state_timeouts();
        let mut stopped = false;
        let mut first_err = None;
        let n = l.ct.for_each_zeroing(&filter, |v| {
            let Some(cb) = cb.filter(|_| !stopped && first_err.is_none()) else {
                return;
            };
            let mut e = match v.to_owned() {
                Ok(e) => e,
                Err(err) => {
                    first_err = Some(err);
                    return;
                }
            };
            if let Some(t) = &timeouts {
                e.state_timeout = t.for_state(e.orig.proto, e.state);
            }
            let c = ipvsct_ct_entry::from_core(&e);
            // SAFETY: `cb` is a valid function (contract); `c` outlives the call.
            if unsafe { cb(&c, user) } != 0 {
                stopped = true;
            }
        })?;
        if let Some(err) = first_err {
            return Err(err.into());
        }
        if let Some(out) = count_out {
            out.write(n);
        }
        Ok(if stopped { IPVSCT_STOPPED } else { IPVSCT_OK })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_arguments_are_rejected_before_any_system_call() {
        let r = ipvsct_ct_request::default();
        let mut e = std::mem::MaybeUninit::<ipvsct_ct_entry>::uninit();
        // SAFETY: NULL handles are allowed and reported.
        unsafe {
            assert_eq!(
                ipvsct_conntrack_create(std::ptr::null(), &r),
                IPVSCT_ERR_NULL_ARGUMENT
            );
            assert_eq!(
                ipvsct_conntrack_update(std::ptr::null(), &r),
                IPVSCT_ERR_NULL_ARGUMENT
            );
            assert_eq!(
                ipvsct_conntrack_delete(std::ptr::null(), std::ptr::null()),
                IPVSCT_ERR_NULL_ARGUMENT
            );
            assert_eq!(
                ipvsct_conntrack_delete_by_id(std::ptr::null(), 1, e.as_mut_ptr()),
                IPVSCT_ERR_NULL_ARGUMENT
            );
            assert_eq!(
                ipvsct_conntrack_flush(std::ptr::null(), std::ptr::null()),
                IPVSCT_ERR_NULL_ARGUMENT
            );
            assert_eq!(
                ipvsct_conntrack_zero_counters(
                    std::ptr::null(),
                    std::ptr::null(),
                    None,
                    std::ptr::null_mut(),
                    std::ptr::null_mut()
                ),
                IPVSCT_ERR_NULL_ARGUMENT
            );
        }
    }
}
