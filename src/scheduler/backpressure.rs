//! The queue limit: how many accepted tasks may wait, and the submitters
//! that wait for room.
//!
//! Only pools built with `queue_limit` have one, so an unbounded pool pays
//! nothing for it. A bounded pool pays one shared RMW per task on each side
//! (reserve on submit, release when the task finishes or is handed back).

use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::scheduler::admission::{Refusal, Room};
use crate::sync::{fence, lock, wait, wait_timeout, AtomicU64, AtomicUsize, Condvar, Mutex, Ordering};

/// A pool's queue limit and its waiting submitters.
pub(crate) struct Backpressure {
    limit: usize,
    /// Counted tasks accepted and not yet finished (waiting or running).
    queued: CachePadded<AtomicUsize>,
    nonblocking: bool,
    max_blocked: Option<usize>,
    /// Submitters waiting for room now.
    blocked: AtomicUsize,
    lock: Mutex<()>,
    room: Condvar,
    /// Submits that had to wait, and their total wait in nanoseconds.
    pub(crate) wait_count: AtomicU64,
    pub(crate) wait_nanos: AtomicU64,
}

impl Backpressure {
    /// A queue limit of `limit` waiting tasks; `nonblocking`: a full queue
    /// refuses at once; `max_blocked`: at most this many submitters wait.
    pub(crate) fn new(limit: usize, nonblocking: bool, max_blocked: Option<usize>) -> Self {
        Backpressure {
            limit,
            queued: CachePadded::new(AtomicUsize::new(0)),
            nonblocking,
            max_blocked,
            blocked: AtomicUsize::new(0),
            lock: Mutex::new(()),
            room: Condvar::new(),
            wait_count: AtomicU64::new(0),
            wait_nanos: AtomicU64::new(0),
        }
    }

    /// Submitters blocked now.
    pub(crate) fn blocked(&self) -> usize {
        self.blocked.load(Ordering::Relaxed)
    }

    /// Takes a place in the pool if one is free: fewer than `limit +
    /// capacity` tasks waiting or running.
    fn try_reserve(&self, capacity: usize) -> bool {
        let limit = self.limit.saturating_add(capacity);
        // SeqCst: the read of `queued` here and the write in `release` form a
        // Dekker pair with `blocked` (see `reserve`).
        let mut queued = self.queued.load(Ordering::SeqCst);
        loop {
            if queued >= limit {
                return false;
            }
            match self
                .queued
                .compare_exchange_weak(queued, queued + 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return true,
                Err(actual) => queued = actual,
            }
        }
    }

    /// Takes a place for a task from inside the pool: never blocks, may go
    /// over the limit (waiting there could deadlock the pool).
    pub(crate) fn reserve_unbounded(&self) {
        self.queued.fetch_add(1, Ordering::SeqCst);
    }

    /// Takes a place for a task from outside the pool, waiting for room as
    /// configured: not at all when nonblocking, until `deadline` if given,
    /// else until there is room. `is_closed` is re-checked at every wake.
    pub(crate) fn reserve(
        &self,
        room: Room,
        capacity: impl Fn() -> usize,
        is_closed: impl Fn() -> bool,
    ) -> Result<(), Refusal> {
        if self.try_reserve(capacity()) {
            return Ok(());
        }
        let deadline = match room {
            Room::AsConfigured if self.nonblocking => return Err(Refusal::Full),
            Room::AsConfigured | Room::Forever => None,
            Room::Until(deadline) => Some(deadline),
            Room::Unlimited => {
                self.reserve_unbounded();
                return Ok(());
            }
        };
        self.reserve_cold(deadline, capacity, is_closed)
    }

    #[cold]
    fn reserve_cold(
        &self,
        deadline: Option<Instant>,
        capacity: impl Fn() -> usize,
        is_closed: impl Fn() -> bool,
    ) -> Result<(), Refusal> {
        let started = Instant::now();
        let mut guard = lock(&self.lock);
        // Count ourselves blocked before the last check, so a worker that
        // frees a place after it sees us (SeqCst RMW + fence, pairing with
        // the fence in `release`) and takes the lock to notify.
        let blocked_before = self.blocked.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let outcome = if self.max_blocked.is_some_and(|max| blocked_before >= max) {
            Err(Refusal::Full)
        } else {
            loop {
                if is_closed() {
                    break Err(Refusal::Closed);
                }
                if self.try_reserve(capacity()) {
                    break Ok(());
                }
                match deadline {
                    None => guard = wait(&self.room, guard),
                    Some(deadline) => {
                        let now = Instant::now();
                        if now >= deadline {
                            break Err(Refusal::Timeout);
                        }
                        guard = wait_timeout(&self.room, guard, deadline - now);
                    }
                }
            }
        };
        self.blocked.fetch_sub(1, Ordering::SeqCst);
        drop(guard);
        if !matches!(outcome, Err(Refusal::Full)) {
            self.wait_count.fetch_add(1, Ordering::Relaxed);
            let waited = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.wait_nanos.fetch_add(waited, Ordering::Relaxed);
        }
        outcome
    }

    /// Gives back places: `count` tasks finished (or were withdrawn, or a
    /// reservation was not used). Wakes blocked submitters.
    #[inline]
    pub(crate) fn release(&self, count: usize) {
        self.queued.fetch_sub(count, Ordering::SeqCst);
        // Pairs with the fence in `reserve_cold`.
        fence(Ordering::SeqCst);
        if self.blocked.load(Ordering::Relaxed) > 0 {
            self.wake_cold(count);
        }
    }

    #[cold]
    #[inline(never)]
    fn wake_cold(&self, count: usize) {
        let _guard = lock(&self.lock);
        if count == 1 {
            self.room.notify_one();
        } else {
            self.room.notify_all();
        }
    }

    /// Wakes every blocked submitter to re-check (shutdown, tune).
    pub(crate) fn wake_all(&self) {
        let _guard = lock(&self.lock);
        self.room.notify_all();
    }

    /// Waiting time so far.
    pub(crate) fn wait_time(&self) -> Duration {
        Duration::from_nanos(self.wait_nanos.load(Ordering::Relaxed))
    }
}
