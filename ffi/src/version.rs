//! The library's version, as constants for the compiler and a string for the running library.

use std::ffi::c_char;

/// Major version of the header (the shared library's soname is `libipvsct.so.MAJOR`).
pub const IPVSCT_VERSION_MAJOR: u32 = 0;
/// Minor version of the header.
pub const IPVSCT_VERSION_MINOR: u32 = 1;
/// Patch version of the header.
pub const IPVSCT_VERSION_PATCH: u32 = 0;

const VERSION_Z: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The running library's version, "MAJOR.MINOR.PATCH", a static NUL-terminated string.
///
/// Thread-safe; never fails.
#[no_mangle]
pub extern "C" fn ipvsct_version() -> *const c_char {
    crate::boundary::boundary_value(VERSION_Z.as_ptr().cast(), || VERSION_Z.as_ptr().cast())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn constants_match_the_crate_version() {
        // SAFETY: ipvsct_version returns a static NUL-terminated string.
        let v = unsafe { CStr::from_ptr(ipvsct_version()) }
            .to_str()
            .unwrap();
        assert_eq!(
            v,
            format!("{IPVSCT_VERSION_MAJOR}.{IPVSCT_VERSION_MINOR}.{IPVSCT_VERSION_PATCH}")
        );
        assert_eq!(v, env!("CARGO_PKG_VERSION"));
    }
}
