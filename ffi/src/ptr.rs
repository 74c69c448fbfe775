//! Checked views of the raw pointers C passes in: NULL becomes IPVSCT_ERR_NULL_ARGUMENT and
//! impossible lengths IPVSCT_ERR_INVALID_ARGUMENT before anything is read or written.
//!
//! Each constructor is `unsafe` with one contract: a non-NULL pointer is valid for what
//! the C declaration says. After construction, reading and writing are safe.

use std::ffi::{c_char, CStr};
use std::marker::PhantomData;
use std::ptr::NonNull;

use crate::error::FfiError;

/// Largest byte length a Rust slice may span.
const MAX_BYTES: usize = isize::MAX as usize;

/// Checks that `len` values of `T` can form a slice.
fn check_len<T>(len: usize, name: &str) -> Result<(), FfiError> {
    let size = std::mem::size_of::<T>().max(1);
    match len.checked_mul(size) {
        Some(bytes) if bytes <= MAX_BYTES => Ok(()),
        _ => Err(FfiError::invalid(format!(
            "argument `{name}`: length {len} is impossible for a buffer"
        ))),
    }
}

/// An output pointer checked for NULL; writing through it is safe.
#[derive(Debug)]
pub(crate) struct Out<'a, T: Copy> {
    ptr: NonNull<T>,
    _borrow: PhantomData<&'a mut T>,
}

impl<'a, T: Copy> Out<'a, T> {
    /// An output slot over a Rust value (for calls that share a loop with C outputs).
    pub(crate) fn from_mut(v: &'a mut T) -> Self {
        Out {
            ptr: NonNull::from(v),
            _borrow: PhantomData,
        }
    }

    /// Checks `p` for NULL.
    ///
    /// # Safety
    /// `p` is NULL or valid for writing one aligned `T` for `'a`.
    pub(crate) unsafe fn new(p: *mut T, name: &str) -> Result<Self, FfiError> {
        NonNull::new(p)
            .map(|ptr| Out {
                ptr,
                _borrow: PhantomData,
            })
            .ok_or_else(|| FfiError::null(name))
    }

    /// Writes the value (the old content is not read or dropped).
    pub(crate) fn write(self, v: T) {
        // SAFETY: `new`'s contract: the pointer is valid for writing one aligned T.
        unsafe { self.ptr.as_ptr().write(v) }
    }
}

/// An optional output pointer: NULL gives `None`.
///
/// # Safety
/// `p` is NULL or valid for writing one `T`.
pub(crate) unsafe fn out_opt<'a, T: Copy>(
    p: *mut T,
    name: &str,
) -> Result<Option<Out<'a, T>>, FfiError> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract; non-NULL.
    unsafe { Out::new(p, name) }.map(Some)
}

/// A caller's output array checked for NULL and length; element writes are bounds-checked.
#[derive(Debug)]
pub(crate) struct OutSlice<'a, T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    _borrow: PhantomData<&'a mut [T]>,
}

impl<'a, T: Copy> OutSlice<'a, T> {
    /// Checks `p` for NULL and `len` for size.
    ///
    /// # Safety
    /// `p` is NULL or valid for writing `len` aligned `T`s for `'a`.
    pub(crate) unsafe fn new(p: *mut T, len: usize, name: &str) -> Result<Self, FfiError> {
        let ptr = NonNull::new(p).ok_or_else(|| FfiError::null(name))?;
        check_len::<T>(len, name)?;
        Ok(OutSlice {
            ptr,
            len,
            _borrow: PhantomData,
        })
    }

    /// Like [`OutSlice::new`], but NULL with `len == 0` is allowed and gives `None`.
    ///
    /// # Safety
    /// As for [`OutSlice::new`].
    pub(crate) unsafe fn new_or_query(
        p: *mut T,
        len: usize,
        name: &str,
    ) -> Result<Option<Self>, FfiError> {
        if p.is_null() && len == 0 {
            return Ok(None);
        }
        // SAFETY: forwarded contract.
        unsafe { Self::new(p, len, name) }.map(Some)
    }

    /// Number of elements.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Writes element `i`; returns false (and writes nothing) if `i` is out of bounds.
    pub(crate) fn set(&mut self, i: usize, v: T) -> bool {
        if i >= self.len {
            return false;
        }
        // SAFETY: `i < len`, and `new`'s contract makes `len` elements writable.
        unsafe { self.ptr.as_ptr().add(i).write(v) };
        true
    }
}

/// An input byte buffer.
///
/// # Safety
/// `p` is NULL or valid for reading `len` bytes that stay unchanged for `'a`.
pub(crate) unsafe fn in_bytes<'a>(
    p: *const u8,
    len: usize,
    name: &str,
) -> Result<&'a [u8], FfiError> {
    if p.is_null() {
        return Err(FfiError::null(name));
    }
    check_len::<u8>(len, name)?;
    // SAFETY: non-NULL, `len` bytes readable (contract), and len <= isize::MAX (checked).
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// A required input reference.
///
/// # Safety
/// `p` is NULL or points to a valid, aligned `T` that stays unchanged for `'a`.
pub(crate) unsafe fn in_ref<'a, T>(p: *const T, name: &str) -> Result<&'a T, FfiError> {
    // SAFETY: the contract makes a non-NULL `p` valid for reads.
    unsafe { p.as_ref() }.ok_or_else(|| FfiError::null(name))
}

/// An optional input reference (NULL gives `None`).
///
/// # Safety
/// `p` is NULL or points to a valid, aligned `T` that stays unchanged for `'a`.
pub(crate) unsafe fn in_opt<'a, T>(p: *const T) -> Option<&'a T> {
    // SAFETY: the contract makes a non-NULL `p` valid for reads.
    unsafe { p.as_ref() }
}

/// An optional NUL-terminated input string (NULL gives `None`).
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that stays unchanged for `'a`.
pub(crate) unsafe fn in_cstr<'a>(p: *const c_char) -> Option<&'a CStr> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-NULL and NUL-terminated (contract).
    Some(unsafe { CStr::from_ptr(p) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::ipvsct_result::*;

    #[test]
    fn out_writes_and_rejects_null() {
        let mut v = 0u32;
        // SAFETY: `v` is a writable u32.
        let o = unsafe { Out::new(&mut v as *mut u32, "v") }.unwrap();
        o.write(7);
        assert_eq!(v, 7);
        // SAFETY: NULL is allowed.
        let e = unsafe { Out::<u32>::new(std::ptr::null_mut(), "out") }.unwrap_err();
        assert_eq!(e.code, IPVSCT_ERR_NULL_ARGUMENT);
        assert_eq!(e.message, "argument `out` is NULL");
    }

    #[test]
    fn out_slice_bounds_and_query_mode() {
        let mut a = [0u16; 3];
        // SAFETY: `a` has 3 writable elements.
        let mut s = unsafe { OutSlice::new(a.as_mut_ptr(), a.len(), "a") }.unwrap();
        assert!(s.set(2, 9));
        assert!(!s.set(3, 9));
        assert_eq!(s.len(), 3);
        assert_eq!(a, [0, 0, 9]);
        // SAFETY: NULL with 0 is the documented size query.
        let q = unsafe { OutSlice::<u16>::new_or_query(std::ptr::null_mut(), 0, "a") };
        assert!(q.unwrap().is_none());
        // SAFETY: NULL is checked before any use.
        let e = unsafe { OutSlice::<u16>::new_or_query(std::ptr::null_mut(), 4, "a") };
        assert_eq!(e.unwrap_err().code, IPVSCT_ERR_NULL_ARGUMENT);
        let mut one = [0u64; 1];
        // SAFETY: the impossible length is rejected before the pointer is used.
        let e = unsafe { OutSlice::new(one.as_mut_ptr(), usize::MAX / 4, "big") };
        assert_eq!(e.unwrap_err().code, IPVSCT_ERR_INVALID_ARGUMENT);
    }

    #[test]
    fn inputs() {
        let bytes = [1u8, 2, 3];
        // SAFETY: `bytes` is 3 readable bytes.
        assert_eq!(
            unsafe { in_bytes(bytes.as_ptr(), 3, "b") }.unwrap(),
            &[1, 2, 3]
        );
        // SAFETY: the impossible length is rejected before the pointer is used.
        let e = unsafe { in_bytes(bytes.as_ptr(), usize::MAX, "b") }.unwrap_err();
        assert_eq!(e.code, IPVSCT_ERR_INVALID_ARGUMENT);
        // SAFETY: NULL is allowed and reported.
        let e = unsafe { in_bytes(std::ptr::null(), 0, "b") }.unwrap_err();
        assert_eq!(e.code, IPVSCT_ERR_NULL_ARGUMENT);
        let x = 5i32;
        // SAFETY: `x` is a valid i32; NULL is allowed.
        unsafe {
            assert_eq!(*in_ref(&x as *const i32, "x").unwrap(), 5);
            assert!(in_ref::<i32>(std::ptr::null(), "x").is_err());
            assert_eq!(in_opt(&x as *const i32), Some(&5));
            assert_eq!(in_opt::<i32>(std::ptr::null()), None);
        }
        let s = c"blue";
        // SAFETY: a C string literal is NUL-terminated; NULL is allowed.
        unsafe {
            assert_eq!(in_cstr(s.as_ptr()).unwrap().to_bytes(), b"blue");
            assert!(in_cstr(std::ptr::null()).is_none());
        }
    }
}
