//! The error a failed call records, the per-thread "last error", and the calls that read it.

use std::cell::RefCell;
use std::ffi::c_char;

use ipvs_conntrack::{DecodeError, Error};

use crate::boundary::{boundary_keep_error, boundary_value};
use crate::cstr;
use crate::ptr::{Out, OutSlice};
use crate::result::ipvsct_result;
use crate::result::ipvsct_result::*;

/// Size of `ipvsct_error.message` (bytes, including the NUL).
pub const IPVSCT_ERROR_MESSAGE_LEN: usize = 512;
/// Size of `ipvsct_error.extack` (bytes, including the NUL).
pub const IPVSCT_EXTACK_LEN: usize = 256;
/// Size of `ipvsct_error.attr_path` (bytes, including the NUL).
pub const IPVSCT_ATTR_PATH_LEN: usize = 128;

/// `ipvsct_error.fields`: `errno_value` is set.
pub const IPVSCT_ERROR_HAS_ERRNO: u32 = 0x1;
/// `ipvsct_error.fields`: `extack` holds the kernel's extended-ACK message.
pub const IPVSCT_ERROR_HAS_EXTACK: u32 = 0x2;
/// `ipvsct_error.fields`: `extack_offset` is set.
pub const IPVSCT_ERROR_HAS_EXTACK_OFFSET: u32 = 0x4;
/// `ipvsct_error.fields`: `attr_path` and `decode_offset` are set (decode errors).
pub const IPVSCT_ERROR_HAS_DECODE_LOCATION: u32 = 0x8;
/// `ipvsct_error.fields`: a string did not fit its field and was cut.
pub const IPVSCT_ERROR_TRUNCATED: u32 = 0x80000000;

/// A failure, as recorded for `ipvsct_error_last` (and delivered for kernel error messages
/// by `ipvsct_decode`). Plain data: copy it freely.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
#[allow(non_camel_case_types)]
pub struct ipvsct_error {
    /// The `ipvsct_result` of the failed call (IPVSCT_OK if there is no error).
    pub code: i32,
    /// The positive errno behind the failure (kernel answer or system call), 0 if none.
    pub errno_value: i32,
    /// Which optional fields are set (`IPVSCT_ERROR_HAS_*`, `IPVSCT_ERROR_TRUNCATED`).
    pub fields: u32,
    /// Kernel extended-ACK offset of the rejected attribute in the request (NLMSGERR_ATTR_OFFS).
    pub extack_offset: u32,
    /// Byte offset in the decoded buffer where the bytes that failed to decode start.
    pub decode_offset: u64,
    /// The whole message, NUL-terminated (it includes the extack text and errno when there are some).
    pub message: [c_char; IPVSCT_ERROR_MESSAGE_LEN],
    /// The kernel's extended-ACK text (NLMSGERR_ATTR_MSG), NUL-terminated, "" if none.
    pub extack: [c_char; IPVSCT_EXTACK_LEN],
    /// Attribute path of a decode failure, e.g. "CTA_TUPLE_ORIG/CTA_TUPLE_IP", "" if none.
    pub attr_path: [c_char; IPVSCT_ATTR_PATH_LEN],
}

/// A failure inside the library, before it becomes a result code and the last error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FfiError {
    /// The result code.
    pub code: ipvsct_result,
    /// Human-readable message.
    pub message: String,
    /// errno, if any.
    pub errno: Option<i32>,
    /// Kernel extended-ACK text.
    pub extack: Option<String>,
    /// Kernel extended-ACK offset.
    pub extack_offset: Option<u32>,
    /// Attribute path and byte offset of a decode failure.
    pub decode: Option<(String, usize)>,
}

impl FfiError {
    /// An error with a code and message only.
    pub(crate) fn new(code: ipvsct_result, message: impl Into<String>) -> Self {
        FfiError {
            code,
            message: message.into(),
            errno: None,
            extack: None,
            extack_offset: None,
            decode: None,
        }
    }

    /// A NULL required pointer.
    pub(crate) fn null(name: &str) -> Self {
        Self::new(
            IPVSCT_ERR_NULL_ARGUMENT,
            format!("argument `{name}` is NULL"),
        )
    }

    /// An argument out of range.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(IPVSCT_ERR_INVALID_ARGUMENT, message)
    }

    /// A caller's buffer that is too small.
    pub(crate) fn too_small(message: impl Into<String>) -> Self {
        Self::new(IPVSCT_ERR_BUFFER_TOO_SMALL, message)
    }

    /// The C view of this error.
    pub(crate) fn to_c(&self) -> ipvsct_error {
        let mut fields = 0;
        let (message, cut_m) = cstr::fixed(&self.message);
        let (extack, cut_e) = cstr::fixed(self.extack.as_deref().unwrap_or(""));
        let (attr_path, cut_p) = cstr::fixed(self.decode.as_ref().map_or("", |d| d.0.as_str()));
        if cut_m || cut_e || cut_p {
            fields |= IPVSCT_ERROR_TRUNCATED;
        }
        if self.errno.is_some() {
            fields |= IPVSCT_ERROR_HAS_ERRNO;
        }
        if self.extack.is_some() {
            fields |= IPVSCT_ERROR_HAS_EXTACK;
        }
        if self.extack_offset.is_some() {
            fields |= IPVSCT_ERROR_HAS_EXTACK_OFFSET;
        }
        if self.decode.is_some() {
            fields |= IPVSCT_ERROR_HAS_DECODE_LOCATION;
        }
        ipvsct_error {
            code: self.code as i32,
            errno_value: self.errno.unwrap_or(0),
            fields,
            extack_offset: self.extack_offset.unwrap_or(0),
            decode_offset: self.decode.as_ref().map_or(0, |d| d.1 as u64),
            message,
            extack,
            attr_path,
        }
    }
}

impl From<DecodeError> for FfiError {
    fn from(e: DecodeError) -> Self {
        FfiError::from(Error::Decode(e))
    }
}

impl From<Error> for FfiError {
    fn from(e: Error) -> Self {
        let mut f = FfiError::new(ipvsct_result::of(&e), e.to_string());
        f.errno = e.errno();
        match &e {
            Error::Kernel(k) => {
                f.extack = k.message.clone();
                f.extack_offset = k.offset;
            }
            Error::Decode(d) => f.decode = Some((d.path.to_string(), d.offset)),
            _ => {}
        }
        f
    }
}

thread_local! {
    static LAST: RefCell<Option<FfiError>> = const { RefCell::new(None) };
}

/// Records `e` as this thread's last error.
pub(crate) fn set_last(e: FfiError) {
    let _ = LAST.try_with(|l| {
        if let Ok(mut slot) = l.try_borrow_mut() {
            *slot = Some(e);
        }
    });
}

/// A copy of this thread's last error.
pub(crate) fn last() -> Option<FfiError> {
    LAST.try_with(|l| l.try_borrow().ok().and_then(|s| s.clone()))
        .ok()
        .flatten()
}

fn clear_last() {
    let _ = LAST.try_with(|l| {
        if let Ok(mut slot) = l.try_borrow_mut() {
            *slot = None;
        }
    });
}

/// Copies this thread's last error into `*out` (code IPVSCT_OK and empty strings if there is none).
///
/// The last error is kept per thread, like errno: every call that fails records it and it
/// stays until the next failing call or `ipvsct_error_clear`. The `ipvsct_error_*` calls
/// never change it, even when they fail. Thread-safe.
///
/// # Safety
/// `out` is NULL or points to a writable `ipvsct_error`.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_error_last(out: *mut ipvsct_error) -> ipvsct_result {
    boundary_keep_error(|| {
        // SAFETY: the caller passes NULL or a writable ipvsct_error (contract above).
        let out = unsafe { Out::new(out, "out") }?;
        let e = last().unwrap_or_else(|| FfiError::new(IPVSCT_OK, ""));
        out.write(e.to_c());
        Ok(IPVSCT_OK)
    })
}

/// Writes this thread's last error message (with the kernel's extended-ACK text and errno
/// when present) into `buf` as a NUL-terminated string; "" if there is no error.
///
/// Returns IPVSCT_ERR_BUFFER_TOO_SMALL and writes nothing if the message and its NUL do not
/// fit in `buf_len` bytes (see `ipvsct_error_message_len`). Never changes the last error.
/// Thread-safe.
///
/// # Safety
/// `buf` is NULL or points to `buf_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn ipvsct_error_message(buf: *mut c_char, buf_len: usize) -> ipvsct_result {
    boundary_keep_error(|| {
        // SAFETY: the caller passes NULL or `buf_len` writable bytes (contract above).
        let mut out = unsafe { OutSlice::new(buf, buf_len, "buf") }?;
        let msg = last().map(|e| e.message).unwrap_or_default();
        if msg.len() >= out.len() {
            return Err(FfiError::too_small(format!(
                "the message needs {} bytes, the buffer has {}",
                msg.len() + 1,
                out.len()
            )));
        }
        for (i, b) in msg.bytes().chain(std::iter::once(0)).enumerate() {
            out.set(i, b as c_char);
        }
        Ok(IPVSCT_OK)
    })
}

/// Bytes `ipvsct_error_message` needs for this thread's last error message, including the NUL.
///
/// Thread-safe; never fails.
#[no_mangle]
pub extern "C" fn ipvsct_error_message_len() -> usize {
    boundary_value(1, || last().map_or(1, |e| e.message.len() + 1))
}

/// Forgets this thread's last error. Thread-safe; never fails.
#[no_mangle]
pub extern "C" fn ipvsct_error_clear() {
    boundary_value((), clear_last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn text(b: &[c_char]) -> String {
        // SAFETY: the buffers tested here are NUL-terminated by construction.
        unsafe { CStr::from_ptr(b.as_ptr()) }
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn kernel_error_keeps_errno_and_extack() {
        let e = FfiError::from(Error::Kernel(ipvs_conntrack::KernelError {
            errno: 22,
            message: Some("bad attr".into()),
            offset: Some(24),
            request: "conntrack get",
        }));
        assert_eq!(e.code, IPVSCT_ERR_KERNEL);
        let c = e.to_c();
        assert_eq!(c.code, -11);
        assert_eq!(c.errno_value, 22);
        assert_eq!(c.extack_offset, 24);
        assert_eq!(
            c.fields,
            IPVSCT_ERROR_HAS_ERRNO | IPVSCT_ERROR_HAS_EXTACK | IPVSCT_ERROR_HAS_EXTACK_OFFSET
        );
        assert_eq!(text(&c.extack), "bad attr");
        let m = text(&c.message);
        assert!(m.contains("bad attr") && m.contains("errno 22"), "{m}");
    }

    #[test]
    fn last_error_round_trip_and_message_buffer_rules() {
        ipvsct_error_clear();
        assert_eq!(ipvsct_error_message_len(), 1);
        set_last(FfiError::invalid("12345"));
        assert_eq!(ipvsct_error_message_len(), 6);
        let mut small = [0 as c_char; 5];
        // SAFETY: `small` is 5 writable bytes.
        let r = unsafe { ipvsct_error_message(small.as_mut_ptr(), small.len()) };
        assert_eq!(r, IPVSCT_ERR_BUFFER_TOO_SMALL);
        assert_eq!(small, [0; 5], "nothing written on failure");
        let mut buf = [1 as c_char; 6];
        // SAFETY: `buf` is 6 writable bytes.
        let r = unsafe { ipvsct_error_message(buf.as_mut_ptr(), buf.len()) };
        assert_eq!(r, IPVSCT_OK);
        assert_eq!(text(&buf), "12345");
        // The failed calls above did not replace the last error.
        // SAFETY: NULL is allowed and reported.
        let r = unsafe { ipvsct_error_message(std::ptr::null_mut(), 10) };
        assert_eq!(r, IPVSCT_ERR_NULL_ARGUMENT);
        let mut info = std::mem::MaybeUninit::<ipvsct_error>::uninit();
        // SAFETY: `info` is writable.
        let r = unsafe { ipvsct_error_last(info.as_mut_ptr()) };
        assert_eq!(r, IPVSCT_OK);
        // SAFETY: ipvsct_error_last returned OK, so it wrote the struct.
        let info = unsafe { info.assume_init() };
        assert_eq!(info.code, IPVSCT_ERR_INVALID_ARGUMENT as i32);
        assert_eq!(text(&info.message), "12345");
        ipvsct_error_clear();
        assert!(last().is_none());
    }

    #[test]
    fn decode_error_has_path_and_offset() {
        let bytes = [8u8, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        let err = ipvs_conntrack::netlink::frame::Frames::new(&bytes)
            .next()
            .unwrap()
            .unwrap_err();
        let c = FfiError::from(err).to_c();
        assert_eq!(c.code, IPVSCT_ERR_DECODE as i32);
        assert_eq!(
            c.fields & IPVSCT_ERROR_HAS_DECODE_LOCATION,
            IPVSCT_ERROR_HAS_DECODE_LOCATION
        );
        assert_eq!(text(&c.attr_path), "<message>");
        assert_eq!(c.decode_offset, 0);
    }
}
