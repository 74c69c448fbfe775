//! Boxes of decoded entries, kept for reuse: a dump makes and frees one `Entry` per
//! connection, and the allocator's cost for a box this large (most of a kilobyte) is a
//! noticeable part of iterating a table from Python.

use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::sync::Mutex;

use ipvs_conntrack::conntrack::Entry as CoreEntry;

/// Boxes kept at most (about 0.8 MiB: a few receive buffers' worth of entries).
const KEPT: usize = 1024;

/// Boxes of dropped entries, ready for new ones. Their stale entries are dropped when
/// the box is reused (or when the pool is full). (Boxes, not entries: a box moves to and
/// from an `Entry` without copying the entry.)
#[allow(clippy::vec_box)]
static POOL: Mutex<Vec<Box<CoreEntry>>> = Mutex::new(Vec::new());

/// A decoded entry whose box goes back to the pool when it is dropped.
#[derive(Debug)]
pub struct PooledEntry(ManuallyDrop<Box<CoreEntry>>);

impl PooledEntry {
    /// `e` in a box from the pool (or a new one).
    pub fn new(e: CoreEntry) -> PooledEntry {
        match PooledEntry::take() {
            Some(mut p) => {
                // The stale entry is dropped here, outside the pool's lock.
                *p.entry_mut() = e;
                p
            }
            None => PooledEntry(ManuallyDrop::new(Box::new(e))),
        }
    }

    /// A box from the pool, holding a stale entry to be overwritten (`None` if the pool is
    /// empty).
    pub fn take() -> Option<PooledEntry> {
        let b = POOL.lock().unwrap_or_else(|p| p.into_inner()).pop()?;
        Some(PooledEntry(ManuallyDrop::new(b)))
    }

    /// The entry, to be overwritten in place.
    pub fn entry_mut(&mut self) -> &mut CoreEntry {
        &mut self.0
    }
}

impl Deref for PooledEntry {
    type Target = CoreEntry;
    fn deref(&self) -> &CoreEntry {
        &self.0
    }
}

impl Drop for PooledEntry {
    fn drop(&mut self) {
        // SAFETY: the box is taken exactly once, here, and `self.0` is not used after.
        let b = unsafe { ManuallyDrop::take(&mut self.0) };
        let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < KEPT {
            pool.push(b);
        } else {
            drop(pool);
            drop(b);
        }
    }
}
