//! The lock behind every thread-safe handle: calls from several threads serialize on it,
//! and a call on a handle from inside one of its own callbacks (same thread) gets
//! IPVSCT_ERR_BUSY instead of deadlocking.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::error::FfiError;
use crate::result::ipvsct_result::IPVSCT_ERR_BUSY;

/// A small number unique to the calling thread (never 0).
fn thread_token() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static TOKEN: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    TOKEN.try_with(|t| *t).unwrap_or(u64::MAX)
}

/// A value shared by the threads of a C program, locked per call.
#[derive(Debug)]
pub(crate) struct Guarded<T> {
    inner: Mutex<T>,
    holder: AtomicU64,
    /// The handle's C type name, for the BUSY message.
    what: &'static str,
}

/// The value, locked by the calling thread until this is dropped.
pub(crate) struct Locked<'a, T> {
    guard: MutexGuard<'a, T>,
    holder: &'a AtomicU64,
}

impl<T> Deref for Locked<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for Locked<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T> Drop for Locked<'_, T> {
    fn drop(&mut self) {
        // Runs before `guard` unlocks, so the holder is never stale for another thread.
        self.holder.store(0, Ordering::Release);
    }
}

impl<T> Guarded<T> {
    /// Wraps `value`; `what` names the handle type in errors.
    pub(crate) fn new(value: T, what: &'static str) -> Self {
        Guarded {
            inner: Mutex::new(value),
            holder: AtomicU64::new(0),
            what,
        }
    }

    /// Locks for the calling thread; IPVSCT_ERR_BUSY if this thread holds the lock already
    /// (a call from inside one of the handle's callbacks).
    pub(crate) fn lock(&self) -> Result<Locked<'_, T>, FfiError> {
        let me = thread_token();
        if self.holder.load(Ordering::Acquire) == me {
            return Err(FfiError::new(
                IPVSCT_ERR_BUSY,
                format!(
                    "the {} handle is in use by a callback on this thread; \
                     use another handle inside callbacks",
                    self.what
                ),
            ));
        }
        // A panic while locked was already turned into IPVSCT_ERR_PANIC; the clients
        // recover (the next request discards what is left of the interrupted one).
        let guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        self.holder.store(me, Ordering::Release);
        Ok(Locked {
            guard,
            holder: &self.holder,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_thread_relock_is_busy_and_other_threads_wait() {
        let g = Guarded::new(5u32, "test");
        {
            let mut l = g.lock().unwrap();
            *l += 1;
            let e = g.lock().err().unwrap();
            assert_eq!(e.code, IPVSCT_ERR_BUSY);
            assert!(e.message.contains("the test handle"), "{}", e.message);
        }
        std::thread::scope(|s| {
            s.spawn(|| *g.lock().unwrap() += 10);
        });
        assert_eq!(*g.lock().unwrap(), 16);
    }
}
