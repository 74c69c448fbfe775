//! Batched conntrack writes: many requests per datagram, each with its own result.

use ipvs_conntrack::conntrack::{Batch, WriteRequest};
use ipvs_conntrack::Error;

use crate::boundary::boundary;
use crate::conntrack::ipvsct_conntrack;
use crate::error::FfiError;
use crate::ptr::{in_ref, out_opt, OutSlice};
use crate::request::ipvsct_ct_request;
use crate::result::ipvsct_result;
use crate::result::ipvsct_result::*;

/// `ipvsct_conntrack_batch` operation: create every entry.
pub const IPVSCT_BATCH_CREATE: u32 = 1;
/// `ipvsct_conntrack_batch` operation: update every entry.
pub const IPVSCT_BATCH_UPDATE: u32 = 2;
/// `ipvsct_conntrack_batch` operation: delete every entry.
pub const IPVSCT_BATCH_DELETE: u32 = 3;

/// Largest number of requests in one `ipvsct_conntrack_batch` call.
pub const IPVSCT_BATCH_MAX: usize = 1 << 22;

/// The outcome of one request of a batch.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_batch_result {
    /// IPVSCT_OK; IPVSCT_ERR_INVALID_ARGUMENT (refused before sending: see `ipvsct_error_last`
    /// only for the first such request); IPVSCT_ERR_KERNEL / _NOT_FOUND (the kernel refused it,
    /// `errno_value` says why: EEXIST, ENOENT, …); IPVSCT_ERR_TIMEOUT (no answer arrived).
    pub code: i32,
    /// The kernel's errno for a refused request, else 0.
    pub errno_value: i32,
}

/// What happened to a whole batch.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct ipvsct_batch_report {
    /// Requests given.
    pub requests: u64,
    /// Requests the kernel acknowledged with success.
    pub succeeded: u64,
    /// Requests the kernel refused.
    pub failed: u64,
    /// Requests refused before sending (invalid).
    pub invalid: u64,
    /// Requests without any answer (receive buffer overrun or timeout).
    pub lost: u64,
    /// Datagrams sent.
    pub datagrams: u64,
    /// Wall time of the exchange, nanoseconds.
    pub elapsed_ns: u64,
}

/// Sends `reqs_len` requests of operation `op` (`IPVSCT_BATCH_*`) many per datagram,
/// each acknowledged by the kernel and matched back to its request, and writes each
/// request's outcome to `results[i]` and the totals to `*report_out` (if not NULL).
///
/// Requests are independent: an invalid or refused one does not stop the others. The
/// call returns IPVSCT_OK when the exchange ran, whatever the single outcomes (check
/// `report_out->succeeded` or each result); it fails as a whole only for NULL or bad
/// arguments (`results_len` below `reqs_len`, more than IPVSCT_BATCH_MAX requests, an
/// unknown `op`), missing permission or socket errors, and then writes nothing.
///
/// # Safety
/// `ct` is NULL or a live handle; `reqs` is NULL or `reqs_len` readable requests;
/// `results` is NULL or `results_len` writable elements; `report_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_conntrack_batch(
    ct: *const ipvsct_conntrack,
    op: u32,
    reqs: *const ipvsct_ct_request,
    reqs_len: usize,
    results: *mut ipvsct_batch_result,
    results_len: usize,
    report_out: *mut ipvsct_batch_report,
) -> ipvsct_result {
    boundary(|| {
        // SAFETY: the caller passes NULL or valid pointers and lengths (contract above).
        let (ct, mut results, report_out) = unsafe {
            (
                in_ref(ct, "ct")?,
                OutSlice::new(results, results_len, "results")?,
                out_opt(report_out, "report_out")?,
            )
        };
        if reqs.is_null() {
            return Err(FfiError::null("reqs"));
        }
        if !(IPVSCT_BATCH_CREATE..=IPVSCT_BATCH_DELETE).contains(&op) {
            return Err(FfiError::invalid(format!(
                "op: {op} is not an IPVSCT_BATCH_* operation"
            )));
        }
        if reqs_len > IPVSCT_BATCH_MAX {
            return Err(FfiError::invalid(format!(
                "reqs_len: {reqs_len} requests, at most IPVSCT_BATCH_MAX ({IPVSCT_BATCH_MAX})"
            )));
        }
        // SAFETY: `reqs` is non-NULL and points to `reqs_len` readable requests (contract);
        // reqs_len * sizeof(ipvsct_ct_request) is at most 1 GiB (checked above).
        let reqs = unsafe { std::slice::from_raw_parts(reqs, reqs_len) };
        if results.len() < reqs_len {
            return Err(FfiError::too_small(format!(
                "results: room for {}, {reqs_len} requests",
                results.len()
            )));
        }
        let mut out = vec![ipvsct_batch_result::default(); reqs_len];
        let mut batch = Batch::with_capacity(reqs_len, 128);
        // Index in the batch -> index in `reqs`.
        let mut sent = Vec::with_capacity(reqs_len);
        let mut first_invalid = None;
        let mut invalid = 0u64;
        for (i, r) in reqs.iter().enumerate() {
            let pushed = match op {
                IPVSCT_BATCH_CREATE => r.to_create().and_then(|q| push(&mut batch, &q)),
                IPVSCT_BATCH_UPDATE => r.to_update().and_then(|q| push(&mut batch, &q)),
                _ => r.to_delete().and_then(|q| push(&mut batch, &q)),
            };
            match pushed {
                Ok(()) => sent.push(i),
                Err(e) => {
                    invalid += 1;
                    if let Some(slot) = out.get_mut(i) {
                        slot.code = e.code as i32;
                    }
                    first_invalid.get_or_insert(FfiError {
                        message: format!("request {i}: {}", e.message),
                        ..e
                    });
                }
            }
        }
        let report = ct.lock()?.ct.execute_batch(&batch)?;
        for &i in &sent {
            if let Some(r) = out.get_mut(i) {
                r.code = IPVSCT_OK as i32;
            }
        }
        for f in &report.failures {
            let Some(&i) = sent.get(f.index) else {
                continue;
            };
            if let Some(r) = out.get_mut(i) {
                r.code = ipvsct_result::of(&Error::Kernel(f.error.clone())) as i32;
                r.errno_value = f.error.errno;
            }
        }
        for &b in &report.lost {
            if let Some(r) = sent.get(b).and_then(|&i| out.get_mut(i)) {
                r.code = IPVSCT_ERR_TIMEOUT as i32;
            }
        }
        for (i, r) in out.into_iter().enumerate() {
            results.set(i, r);
        }
        if let Some(o) = report_out {
            o.write(ipvsct_batch_report {
                requests: reqs_len as u64,
                succeeded: report.succeeded as u64,
                failed: report.failures.len() as u64,
                invalid,
                lost: report.lost.len() as u64,
                datagrams: report.datagrams as u64,
                elapsed_ns: u64::try_from(report.elapsed.as_nanos()).unwrap_or(u64::MAX),
            });
        }
        // The first invalid request is the last error, for the caller to read.
        if let Some(e) = first_invalid {
            crate::error::set_last(e);
        }
        Ok(IPVSCT_OK)
    })
}

fn push(batch: &mut Batch, req: &impl WriteRequest) -> Result<(), FfiError> {
    batch.push(req).map(|_| ()).map_err(FfiError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::ipvsct_ct_request;

    #[test]
    fn bad_arguments_fail_as_a_whole() {
        let reqs = [ipvsct_ct_request::default(); 2];
        let mut res = [ipvsct_batch_result {
            code: 9,
            errno_value: 9,
        }; 1];
        // SAFETY: NULL handle is reported first; buffers are valid.
        unsafe {
            assert_eq!(
                ipvsct_conntrack_batch(
                    std::ptr::null(),
                    IPVSCT_BATCH_CREATE,
                    reqs.as_ptr(),
                    2,
                    res.as_mut_ptr(),
                    1,
                    std::ptr::null_mut()
                ),
                IPVSCT_ERR_NULL_ARGUMENT
            );
        }
        assert_eq!(res[0].code, 9);
    }
}
