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
    // Two block operations (copy, zero the tail) rather than a byte loop: entries fill
    // two of these per entry on the dump path.
    let (head, tail) = dst.split_at_mut(bytes.len());
    for (d, b) in head.iter_mut().zip(bytes) {
        *d = *b as c_char;
    }
    tail.fill(0);
    n < s.len()
}

/// A new `N`-byte buffer holding `s` (see [`fill`]) and whether `s` was cut.
pub(crate) fn fixed<const N: usize>(s: &str) -> ([c_char; N], bool) {
    // The same as `fill` on a fresh buffer, in bytes first (block copies: this runs
    // twice per entry on the dump path).
    let mut n = s.len().min(N.saturating_sub(1));
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    let mut b = [0u8; N];
    if let (Some(d), Some(src)) = (b.get_mut(..n), s.as_bytes().get(..n)) {
        d.copy_from_slice(src);
    }
    (b.map(|x| x as c_char), n < s.len())
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
    fn fixed_is_fill_on_a_fresh_buffer() {
        for s in [
            "",
            "a",
            "abc",
            "abcd",
            "aé",
            "éé",
            "TIME_WAIT",
            "ESTABLISHED_LONGER_THAN_24B",
        ] {
            let mut want = [1 as c_char; 4];
            let want_cut = fill(&mut want, s);
            assert_eq!(fixed::<4>(s), (want, want_cut), "{s:?} in 4");
            let mut want = [1 as c_char; 24];
            let want_cut = fill(&mut want, s);
            assert_eq!(fixed::<24>(s), (want, want_cut), "{s:?} in 24");
            assert_eq!(fixed::<0>(s).1, !s.is_empty(), "{s:?} in 0");
        }
    }

    #[test]
    fn empty_buffer_reports_cut_only_for_non_empty_strings() {
        let mut empty: [c_char; 0] = [];
        assert!(fill(&mut empty, "x"));
        assert!(!fill(&mut empty, ""));
    }
}
