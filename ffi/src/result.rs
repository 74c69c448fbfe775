//! The result code every call returns, and its mapping from the core crate's errors.

use std::ffi::c_char;

use ipvs_conntrack::Error;

/// Result of every call: 0 and positive values are successes, negative values are failures
/// (details through `ipvsct_error_last` / `ipvsct_error_message`).
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum ipvsct_result {
    /// Success; the outputs were written.
    IPVSCT_OK = 0,
    /// An iterator has no more items; nothing was written.
    IPVSCT_DONE = 1,
    /// A callback asked to stop early (or a call's item limit was reached); the outputs were written.
    IPVSCT_STOPPED = 2,
    /// Events were read until none was ready, and at least one was an OVERRUN (the kernel
    /// dropped events): the outputs were written; resynchronise (`ipvsct_events_resync`).
    IPVSCT_OVERRUN_SEEN = 3,
    /// The value an accessor (`ipvsct_ct_view_*`) was asked for is not in the entry: nothing
    /// was written. Not a failure: the last error is untouched.
    IPVSCT_ABSENT = 4,
    /// A required pointer argument was NULL.
    IPVSCT_ERR_NULL_ARGUMENT = -1,
    /// An argument is out of range: bad length, unknown flag bits, bad address family, invalid filter.
    IPVSCT_ERR_INVALID_ARGUMENT = -2,
    /// A caller's buffer is too small for the result; nothing was written.
    IPVSCT_ERR_BUFFER_TOO_SMALL = -3,
    /// The handle is in use by a callback running on this thread (re-entrant call).
    IPVSCT_ERR_BUSY = -4,
    /// The library panicked (a bug); the panic was stopped at the boundary.
    IPVSCT_ERR_PANIC = -5,
    /// A socket-level I/O failure (errno set).
    IPVSCT_ERR_IO = -10,
    /// The kernel answered with an error (errno and extended-ACK text set).
    IPVSCT_ERR_KERNEL = -11,
    /// The kernel answered ENOENT: no such entry.
    IPVSCT_ERR_NOT_FOUND = -12,
    /// Permission denied: CAP_NET_ADMIN is needed in the target network namespace.
    IPVSCT_ERR_PERMISSION = -13,
    /// The network namespace could not be opened or entered (errno set).
    IPVSCT_ERR_NAMESPACE = -14,
    /// The running kernel does not support the feature.
    IPVSCT_ERR_UNSUPPORTED = -15,
    /// Bytes did not decode (attribute path and byte offset set).
    IPVSCT_ERR_DECODE = -16,
    /// The dump was interrupted (NLM_F_DUMP_INTR): the entries delivered may be inconsistent.
    IPVSCT_ERR_DUMP_INTERRUPTED = -17,
    /// A blocking receive timed out.
    IPVSCT_ERR_TIMEOUT = -18,
    /// The kernel dropped messages (NLMSG_OVERRUN / ENOBUFS): data was lost.
    IPVSCT_ERR_OVERRUN = -19,
    /// Any other failure.
    IPVSCT_ERR_OTHER = -99,
}

use ipvsct_result::*;

/// Linux ENOENT.
const ENOENT: i32 = 2;
/// Linux ENOBUFS.
const ENOBUFS: i32 = 105;

impl ipvsct_result {
    /// The result code for a core error.
    pub(crate) fn of(e: &Error) -> ipvsct_result {
        match e {
            Error::Io { source, .. } if source.raw_os_error() == Some(ENOBUFS) => {
                IPVSCT_ERR_OVERRUN
            }
            Error::Io { .. } => IPVSCT_ERR_IO,
            Error::Kernel(k) if k.errno == ENOENT => IPVSCT_ERR_NOT_FOUND,
            Error::Kernel(_) => IPVSCT_ERR_KERNEL,
            Error::Permission { .. } => IPVSCT_ERR_PERMISSION,
            Error::Namespace { .. } => IPVSCT_ERR_NAMESPACE,
            Error::Unsupported { .. } => IPVSCT_ERR_UNSUPPORTED,
            Error::Decode(_) => IPVSCT_ERR_DECODE,
            Error::DumpInterrupted => IPVSCT_ERR_DUMP_INTERRUPTED,
            Error::Timeout { .. } => IPVSCT_ERR_TIMEOUT,
            Error::InvalidRequest(_) => IPVSCT_ERR_INVALID_ARGUMENT,
            _ => IPVSCT_ERR_OTHER,
        }
    }

    /// Every code, for lookups by value.
    pub(crate) const ALL: [ipvsct_result; 21] = [
        IPVSCT_OK,
        IPVSCT_DONE,
        IPVSCT_STOPPED,
        IPVSCT_OVERRUN_SEEN,
        IPVSCT_ABSENT,
        IPVSCT_ERR_NULL_ARGUMENT,
        IPVSCT_ERR_INVALID_ARGUMENT,
        IPVSCT_ERR_BUFFER_TOO_SMALL,
        IPVSCT_ERR_BUSY,
        IPVSCT_ERR_PANIC,
        IPVSCT_ERR_IO,
        IPVSCT_ERR_KERNEL,
        IPVSCT_ERR_NOT_FOUND,
        IPVSCT_ERR_PERMISSION,
        IPVSCT_ERR_NAMESPACE,
        IPVSCT_ERR_UNSUPPORTED,
        IPVSCT_ERR_DECODE,
        IPVSCT_ERR_DUMP_INTERRUPTED,
        IPVSCT_ERR_TIMEOUT,
        IPVSCT_ERR_OVERRUN,
        IPVSCT_ERR_OTHER,
    ];

    /// The code for a raw value, if it is one.
    pub(crate) fn from_raw(v: i32) -> Option<ipvsct_result> {
        Self::ALL.iter().copied().find(|r| *r as i32 == v)
    }

    /// The constant's name as a NUL-terminated static string.
    pub(crate) fn name_z(self) -> &'static [u8] {
        match self {
            IPVSCT_OK => b"IPVSCT_OK\0",
            IPVSCT_DONE => b"IPVSCT_DONE\0",
            IPVSCT_STOPPED => b"IPVSCT_STOPPED\0",
            IPVSCT_OVERRUN_SEEN => b"IPVSCT_OVERRUN_SEEN\0",
            IPVSCT_ABSENT => b"IPVSCT_ABSENT\0",
            IPVSCT_ERR_NULL_ARGUMENT => b"IPVSCT_ERR_NULL_ARGUMENT\0",
            IPVSCT_ERR_INVALID_ARGUMENT => b"IPVSCT_ERR_INVALID_ARGUMENT\0",
            IPVSCT_ERR_BUFFER_TOO_SMALL => b"IPVSCT_ERR_BUFFER_TOO_SMALL\0",
            IPVSCT_ERR_BUSY => b"IPVSCT_ERR_BUSY\0",
            IPVSCT_ERR_PANIC => b"IPVSCT_ERR_PANIC\0",
            IPVSCT_ERR_IO => b"IPVSCT_ERR_IO\0",
            IPVSCT_ERR_KERNEL => b"IPVSCT_ERR_KERNEL\0",
            IPVSCT_ERR_NOT_FOUND => b"IPVSCT_ERR_NOT_FOUND\0",
            IPVSCT_ERR_PERMISSION => b"IPVSCT_ERR_PERMISSION\0",
            IPVSCT_ERR_NAMESPACE => b"IPVSCT_ERR_NAMESPACE\0",
            IPVSCT_ERR_UNSUPPORTED => b"IPVSCT_ERR_UNSUPPORTED\0",
            IPVSCT_ERR_DECODE => b"IPVSCT_ERR_DECODE\0",
            IPVSCT_ERR_DUMP_INTERRUPTED => b"IPVSCT_ERR_DUMP_INTERRUPTED\0",
            IPVSCT_ERR_TIMEOUT => b"IPVSCT_ERR_TIMEOUT\0",
            IPVSCT_ERR_OVERRUN => b"IPVSCT_ERR_OVERRUN\0",
            IPVSCT_ERR_OTHER => b"IPVSCT_ERR_OTHER\0",
        }
    }
}

/// The name of a result code (`"IPVSCT_ERR_NOT_FOUND"`), or `"IPVSCT_UNKNOWN_RESULT"`; a static string.
///
/// Thread-safe; never fails.
#[no_mangle]
pub extern "C" fn ipvsct_result_name(result: i32) -> *const c_char {
    const UNKNOWN: &[u8] = b"IPVSCT_UNKNOWN_RESULT\0";
    crate::boundary::boundary_value(UNKNOWN.as_ptr().cast(), || {
        let name: &'static [u8] = match ipvsct_result::from_raw(result) {
            Some(r) => r.name_z(),
            None => UNKNOWN,
        };
        name.as_ptr().cast()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;
    use std::io;

    fn name(r: i32) -> String {
        // SAFETY: ipvsct_result_name returns a pointer to a static NUL-terminated string.
        unsafe { CStr::from_ptr(ipvsct_result_name(r)) }
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn names_round_trip_and_unknown_values_are_named() {
        assert_eq!(name(0), "IPVSCT_OK");
        assert_eq!(name(-12), "IPVSCT_ERR_NOT_FOUND");
        assert_eq!(name(-19), "IPVSCT_ERR_OVERRUN");
        assert_eq!(name(3), "IPVSCT_OVERRUN_SEEN");
        assert_eq!(name(12345), "IPVSCT_UNKNOWN_RESULT");
        for r in ipvsct_result::ALL {
            assert_eq!(ipvsct_result::from_raw(r as i32), Some(r));
            assert_eq!(name(r as i32), format!("{r:?}"));
        }
    }

    #[test]
    fn core_errors_map_to_distinct_codes() {
        let kernel = |errno| {
            Error::Kernel(ipvs_conntrack::KernelError {
                errno,
                message: None,
                offset: None,
                request: "t",
            })
        };
        assert_eq!(ipvsct_result::of(&kernel(2)), IPVSCT_ERR_NOT_FOUND);
        assert_eq!(ipvsct_result::of(&kernel(22)), IPVSCT_ERR_KERNEL);
        let overrun = Error::Io {
            op: "t",
            source: io::Error::from_raw_os_error(105),
        };
        assert_eq!(ipvsct_result::of(&overrun), IPVSCT_ERR_OVERRUN);
        assert_eq!(
            ipvsct_result::of(&Error::DumpInterrupted),
            IPVSCT_ERR_DUMP_INTERRUPTED
        );
        assert_eq!(
            ipvsct_result::of(&Error::Timeout { op: "t" }),
            IPVSCT_ERR_TIMEOUT
        );
    }
}
