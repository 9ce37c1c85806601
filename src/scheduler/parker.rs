//! A per-worker parking spot built on the sync facade, so loom can see it.
//!
//! The design is the classic token parker (std's generic one, crossbeam's
//! `Parker`): `unpark` always leaves a NOTIFIED token before it notifies, and
//! `park` consumes the token. A token set before `park` is never lost, and a
//! stray token only makes one `park` return early; every caller parks in a
//! loop that re-checks its own condition, so an early return is harmless.

use std::time::Duration;

use crate::sync::{lock, wait, wait_timeout, AtomicUsize, Condvar, Mutex, Ordering};

const EMPTY: usize = 0;
const PARKED: usize = 1;
const NOTIFIED: usize = 2;

/// One thread's parking spot.
pub(crate) struct Parker {
    state: AtomicUsize,
    lock: Mutex<()>,
    condvar: Condvar,
}

impl Parker {
    pub(crate) fn new() -> Self {
        Parker {
            state: AtomicUsize::new(EMPTY),
            lock: Mutex::new(()),
            condvar: Condvar::new(),
        }
    }

    /// Blocks until a token is available, then consumes it. May return early
    /// (spuriously); callers re-check their condition in a loop.
    pub(crate) fn park(&self) {
        self.park_for(None);
    }

    /// As [`Parker::park`], but returns after `timeout` at the latest.
    pub(crate) fn park_timeout(&self, timeout: Duration) {
        self.park_for(Some(timeout));
    }

    /// The one park body: consumes a token, waiting for one (at most
    /// `timeout`, if given).
    fn park_for(&self, timeout: Option<Duration>) {
        // Fast path: a token is already there. Acquire pairs with the Release
        // swap in `unpark`, so whatever the unparker wrote before is visible.
        if self
            .state
            .compare_exchange(NOTIFIED, EMPTY, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        let mut guard = lock(&self.lock);
        // Relaxed is enough: the lock orders this against `unpark`'s
        // lock/notify, and the token itself is consumed with Acquire below.
        match self
            .state
            .compare_exchange(EMPTY, PARKED, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => {}
            Err(NOTIFIED) => {
                // The token arrived while we took the lock. Acquire: see above.
                self.state.swap(EMPTY, Ordering::Acquire);
                return;
            }
            Err(other) => unreachable!("parker in impossible state {other}"),
        }
        match timeout {
            None => loop {
                guard = wait(&self.condvar, guard);
                if self
                    .state
                    .compare_exchange(NOTIFIED, EMPTY, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return;
                }
                // Spurious condvar wake-up: still PARKED, wait again.
            },
            Some(timeout) => {
                let guard = wait_timeout(&self.condvar, guard, timeout);
                // Whether notified or timed out, leave EMPTY; Acquire as
                // above.
                self.state.swap(EMPTY, Ordering::Acquire);
                drop(guard);
            }
        }
    }

    /// Leaves a token and wakes the parked thread, if any.
    pub(crate) fn unpark(&self) {
        // Release: everything written before `unpark` is visible to the thread
        // that consumes this token with Acquire in `park`.
        match self.state.swap(NOTIFIED, Ordering::Release) {
            EMPTY | NOTIFIED => return,
            PARKED => {}
            other => unreachable!("parker in impossible state {other}"),
        }
        // The parked thread holds the lock from its PARKED store until it is
        // inside `wait`; taking the lock here means it is really waiting, so
        // the notification cannot fall between its check and its wait.
        drop(lock(&self.lock));
        self.condvar.notify_one();
    }
}
