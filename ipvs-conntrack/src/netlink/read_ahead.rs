//! Read-ahead over a buffer of netlink messages: prefetch hints for the bytes a decoder
//! reaches next, so that decoding a recording larger than the CPU caches does not wait on
//! memory. Active with the `nightly-prefetch` feature on a nightly compiler
//! (`core::hint::prefetch_read`); otherwise [`ReadAhead::advance`] does nothing.

/// How far ahead of the decoder the hints run, in bytes (about 17 entries of a dump).
pub const DISTANCE: usize = 4096;

/// The span one hint covers: a cache line.
pub const LINE: usize = 64;

/// Whether this build issues prefetch hints.
pub const ACTIVE: bool = cfg!(ipvsct_prefetch);

/// How far into one buffer the hints have been issued.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadAhead {
    next: usize,
}

impl ReadAhead {
    /// Starts at the beginning of a buffer.
    pub const fn new() -> Self {
        ReadAhead { next: 0 }
    }

    /// The offset up to which hints have been issued.
    pub const fn hinted(&self) -> usize {
        self.next
    }

    /// Hints the lines of `buf` from where the last call stopped up to `pos + DISTANCE`.
    #[inline(always)]
    pub fn advance(&mut self, buf: &[u8], pos: usize) {
        #[cfg(ipvsct_prefetch)]
        {
            let end = pos.saturating_add(DISTANCE).min(buf.len());
            // Bounded: each step moves one line towards `end`, which is within `buf`.
            while self.next < end {
                core::hint::prefetch_read(
                    buf.as_ptr().wrapping_add(self.next),
                    core::hint::Locality::L1,
                );
                self.next += LINE;
            }
        }
        #[cfg(not(ipvsct_prefetch))]
        let _ = (buf, pos);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `make test-rust` builds with the feature on nightly and sets IPVSCT_EXPECT_PREFETCH:
    /// then the hints must be compiled in (the build script's probe found the API).
    #[test]
    fn read_ahead_is_active_where_expected() {
        // Read at run time: what the build compiled in.
        let active = std::hint::black_box(ACTIVE);
        if std::env::var_os("IPVSCT_EXPECT_PREFETCH").is_some() {
            assert!(active, "nightly-prefetch build without prefetch hints");
        }
        if !cfg!(feature = "nightly-prefetch") {
            assert!(!active);
        }
    }

    #[test]
    fn hints_run_distance_ahead_and_stop_at_the_end() {
        let buf = vec![0u8; 3 * DISTANCE];
        let mut ra = ReadAhead::new();
        ra.advance(&buf, 0);
        let first = if ACTIVE { DISTANCE } else { 0 };
        assert_eq!(ra.hinted(), first);
        ra.advance(&buf, 100);
        assert_eq!(ra.hinted(), if ACTIVE { DISTANCE + 128 } else { 0 });
        ra.advance(&buf, 10 * DISTANCE);
        assert_eq!(ra.hinted(), if ACTIVE { 3 * DISTANCE } else { 0 });
        // Past the end nothing more is hinted.
        ra.advance(&buf, usize::MAX);
        assert_eq!(ra.hinted(), if ACTIVE { 3 * DISTANCE } else { 0 });
        let mut short = ReadAhead::new();
        short.advance(&buf[..100], 0);
        assert_eq!(short.hinted(), if ACTIVE { 128 } else { 0 });
    }
}
