//! The panic boundary every exported function runs inside: a panic never crosses into C, it
//! becomes IPVSCT_ERR_PANIC (or a documented default value) and the last error.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{set_last, FfiError};
use crate::result::ipvsct_result;

fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

fn panic_error(payload: &(dyn Any + Send)) -> FfiError {
    FfiError::new(
        ipvsct_result::IPVSCT_ERR_PANIC,
        format!(
            "internal error (a panic in libipvsct, please report it): {}",
            panic_text(payload)
        ),
    )
}

/// Runs `f`; an `Err` becomes its code and this thread's last error, a panic becomes
/// IPVSCT_ERR_PANIC.
pub(crate) fn boundary<F>(f: F) -> ipvsct_result
where
    F: FnOnce() -> Result<ipvsct_result, FfiError>,
{
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            let code = e.code;
            set_last(e);
            code
        }
        Err(payload) => {
            set_last(panic_error(payload.as_ref()));
            ipvsct_result::IPVSCT_ERR_PANIC
        }
    }
}

/// Records a panic caught outside [`boundary`] (by a caller that runs `catch_unwind`
/// itself to keep its fast path lean) as the last error: IPVSCT_ERR_PANIC.
#[cold]
pub(crate) fn caught_panic(payload: Box<dyn Any + Send>) -> ipvsct_result {
    set_last(panic_error(payload.as_ref()));
    ipvsct_result::IPVSCT_ERR_PANIC
}

/// Records `e` as the last error and returns its code (the error path of a caller that
/// runs `catch_unwind` itself).
#[cold]
pub(crate) fn failed(e: FfiError) -> ipvsct_result {
    let code = e.code;
    set_last(e);
    code
}

/// Like [`boundary`] but never touches the last error (for the calls that read it).
pub(crate) fn boundary_keep_error<F>(f: F) -> ipvsct_result
where
    F: FnOnce() -> Result<ipvsct_result, FfiError>,
{
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => e.code,
        Err(_) => ipvsct_result::IPVSCT_ERR_PANIC,
    }
}

/// Runs `f` for a call without a result code; a panic yields `on_panic` (and the last error).
pub(crate) fn boundary_value<T, F>(on_panic: T, f: F) -> T
where
    F: FnOnce() -> T,
{
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(payload) => {
            set_last(panic_error(payload.as_ref()));
            on_panic
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::last;
    use crate::result::ipvsct_result::*;

    #[test]
    fn panic_becomes_result_code_and_last_error() {
        let r = boundary(|| -> Result<ipvsct_result, FfiError> { panic!("boom {}", 7) });
        assert_eq!(r, IPVSCT_ERR_PANIC);
        let e = last().unwrap();
        assert_eq!(e.code, IPVSCT_ERR_PANIC);
        assert!(e.message.ends_with("boom 7"), "{}", e.message);
        assert_eq!(boundary_value(42u32, || panic!("static")), 42);
        assert!(last().unwrap().message.ends_with("static"));
    }

    #[test]
    fn errors_set_last_error_and_keep_variant_does_not() {
        let r = boundary(|| Err(FfiError::invalid("first")));
        assert_eq!(r, IPVSCT_ERR_INVALID_ARGUMENT);
        let r = boundary_keep_error(|| Err(FfiError::null("x")));
        assert_eq!(r, IPVSCT_ERR_NULL_ARGUMENT);
        assert_eq!(last().unwrap().message, "first");
        assert_eq!(boundary(|| Ok(IPVSCT_DONE)), IPVSCT_DONE);
        assert_eq!(
            last().unwrap().message,
            "first",
            "success keeps the last error"
        );
    }
}
