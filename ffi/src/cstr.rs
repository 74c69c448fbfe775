//! Fixed-size, NUL-terminated C string buffers filled from Rust strings.

use std::ffi::c_char;

/// Copies `s` into `dst` as a NUL-terminated string and zeroes the rest of `dst`.
///
/// A string that does not fit is cut at a UTF-8 character boundary so that the NUL still
/// fits. Returns true if `s` was cut (always true for a non-empty `s` and an empty `dst`).
pub(crate) fn fill(dst: &mut [c_char], s: &str) -> bool {
    let Some(room) = dst.len().checked_sub(1) else {
        return !s.is_empty();
    };
    let mut n = s.len().min(room);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    let bytes = s.as_bytes().get(..n).unwrap_or_default();
    let mut src = bytes.iter().copied();
    for d in dst.iter_mut() {
        *d = src.next().unwrap_or(0) as c_char;
    }
    n < s.len()
}

/// A new `N`-byte buffer holding `s` (see [`fill`]) and whether `s` was cut.
pub(crate) fn fixed<const N: usize>(s: &str) -> ([c_char; N], bool) {
    let mut b = [0; N];
    let cut = fill(&mut b, s);
    (b, cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(b: &[c_char]) -> Vec<u8> {
        b.iter().map(|c| *c as u8).collect()
    }

    #[test]
    fn fits_with_nul_and_zeroed_tail() {
        let (b, cut) = fixed::<8>("abc");
        assert!(!cut);
        assert_eq!(text(&b), b"abc\0\0\0\0\0");
    }

    #[test]
    fn exact_fit_and_cut_by_one() {
        let (b, cut) = fixed::<4>("abc");
        assert!(!cut);
        assert_eq!(text(&b), b"abc\0");
        let (b, cut) = fixed::<4>("abcd");
        assert!(cut);
        assert_eq!(text(&b), b"abc\0");
    }

    #[test]
    fn cut_never_splits_a_character() {
        // "é" is two bytes: with room for 2 bytes, "aé" keeps only "a".
        let (b, cut) = fixed::<3>("aé");
        assert!(cut);
        assert_eq!(text(&b), b"a\0\0");
        let (b, cut) = fixed::<4>("aé");
        assert!(!cut);
        assert_eq!(text(&b), "aé\0".as_bytes());
    }

    #[test]
    fn empty_buffer_reports_cut_only_for_non_empty_strings() {
        let mut empty: [c_char; 0] = [];
        assert!(fill(&mut empty, "x"));
        assert!(!fill(&mut empty, ""));
    }
}
