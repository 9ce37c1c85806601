//! The queue limit: how many accepted tasks may wait, and the submitters
//! that wait for room.
//!
//! Only pools built with `queue_limit` have one, so an unbounded pool pays
//! nothing for it. A bounded pool pays one shared RMW per task on each side
//! (reserve on submit, release when the task finishes or is handed back).

use std::task::{Context, Poll, Waker};
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
    /// Async submitters (`submit_async`) waiting for room: their wakers, by
    /// key. Counted in `blocked` like the threads on `room`, and woken
    /// wherever those are notified.
    wakers: Mutex<Vec<(u64, Waker)>>,
    /// The next async submitter's key.
    next_key: AtomicU64,
}

/// An async submitter's place among the submitters waiting for room.
#[derive(Default)]
pub(crate) struct AsyncWait {
    /// Set once it waits: it is counted in `blocked` and may have a waker
    /// in the list under this key.
    key: Option<u64>,
    since: Option<Instant>,
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
            wakers: Mutex::new(Vec::new()),
            next_key: AtomicU64::new(0),
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
        if self.release_quietly(count) {
            self.wake_cold(count);
        }
    }

    /// [`Backpressure::release`] without waking anyone: returns whether a
    /// blocked submitter must be woken ([`Backpressure::wake_released`]),
    /// for a caller that holds a lock no submitter's waker may meet.
    #[inline]
    pub(crate) fn release_quietly(&self, count: usize) -> bool {
        self.queued.fetch_sub(count, Ordering::SeqCst);
        // Pairs with the fence in `reserve_cold`.
        fence(Ordering::SeqCst);
        self.blocked.load(Ordering::Relaxed) > 0
    }

    /// The wake-up [`Backpressure::release_quietly`] asked for.
    #[cold]
    pub(crate) fn wake_released(&self, count: usize) {
        self.wake_cold(count);
    }

    #[cold]
    #[inline(never)]
    fn wake_cold(&self, count: usize) {
        {
            let _guard = lock(&self.lock);
            if count == 1 {
                self.room.notify_one();
            } else {
                self.room.notify_all();
            }
        }
        self.wake_async();
    }

    /// Wakes every blocked submitter to re-check (shutdown, tune).
    pub(crate) fn wake_all(&self) {
        {
            let _guard = lock(&self.lock);
            self.room.notify_all();
        }
        self.wake_async();
    }

    /// Wakes every waiting async submitter (each re-polls: one takes the
    /// room, the others put their wakers back). All of them, not one: a
    /// woken future may be dropped instead of polled, and would take the
    /// wake-up with it. A cold path: it runs only while submitters wait.
    fn wake_async(&self) {
        let woken = std::mem::take(&mut *lock(&self.wakers));
        for (_, waker) in woken {
            waker.wake();
        }
    }

    /// One poll of an async submit from outside the pool: `Ready(Ok)` once
    /// it holds a place, `Ready(Err)` if refused (nonblocking, too many
    /// waiting, closed), else `Pending` with its waker registered.
    ///
    /// The Dekker pair of `reserve_cold`, with the waker list in place of
    /// the condvar: the waker goes into the list (under its mutex) before
    /// the submitter is counted in `blocked` (SeqCst RMW) and before every
    /// re-check (fence, then `try_reserve`); `release` frees the place,
    /// fences, reads `blocked` and then takes the list's mutex. Either the
    /// re-check sees the room, or `release` sees the count and finds the
    /// waker (a woken submitter puts its waker back before re-checking, and
    /// a `release` that found the list empty meanwhile published its room
    /// through that mutex). scheduler/README.md, I8.
    pub(crate) fn poll_reserve(
        &self,
        wait: &mut AsyncWait,
        cx: &mut Context<'_>,
        capacity: impl Fn() -> usize,
        is_closed: impl Fn() -> bool,
    ) -> Poll<Result<(), Refusal>> {
        let key = match wait.key {
            Some(key) => key,
            None => {
                if self.try_reserve(capacity()) {
                    return Poll::Ready(Ok(()));
                }
                if self.nonblocking {
                    return Poll::Ready(Err(Refusal::Full));
                }
                // Relaxed: a unique number is all it needs.
                let key = self.next_key.fetch_add(1, Ordering::Relaxed);
                self.put_waker(key, cx.waker());
                // SeqCst: the counting half of the Dekker pair above.
                let blocked_before = self.blocked.fetch_add(1, Ordering::SeqCst);
                wait.key = Some(key);
                wait.since = Some(Instant::now());
                if self.max_blocked.is_some_and(|max| blocked_before >= max) {
                    self.finish_async(wait, false);
                    return Poll::Ready(Err(Refusal::Full));
                }
                key
            }
        };
        self.put_waker(key, cx.waker());
        // Pairs with the fence in `release`.
        fence(Ordering::SeqCst);
        if is_closed() {
            self.finish_async(wait, true);
            return Poll::Ready(Err(Refusal::Closed));
        }
        if self.try_reserve(capacity()) {
            self.finish_async(wait, true);
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }

    /// Puts (or refreshes) an async submitter's waker in the list.
    fn put_waker(&self, key: u64, waker: &Waker) {
        let mut wakers = lock(&self.wakers);
        match wakers.iter_mut().find(|(k, _)| *k == key) {
            Some((_, old)) if old.will_wake(waker) => {}
            Some((_, old)) => *old = waker.clone(),
            None => wakers.push((key, waker.clone())),
        }
    }

    /// An async submitter stops waiting (done, refused, or its future
    /// dropped): out of the list and the count; `waited`: counted in the
    /// wait figures.
    pub(crate) fn finish_async(&self, wait: &mut AsyncWait, waited: bool) {
        let Some(key) = wait.key.take() else {
            return;
        };
        let removed = {
            let mut wakers = lock(&self.wakers);
            wakers
                .iter()
                .position(|(k, _)| *k == key)
                .map(|at| wakers.swap_remove(at))
        };
        // Dropped outside the lock (a waker's drop is foreign code).
        drop(removed);
        self.blocked.fetch_sub(1, Ordering::SeqCst);
        if let (true, Some(since)) = (waited, wait.since.take()) {
            self.wait_count.fetch_add(1, Ordering::Relaxed);
            let waited = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.wait_nanos.fetch_add(waited, Ordering::Relaxed);
        }
    }

    /// Waiting time so far.
    pub(crate) fn wait_time(&self) -> Duration {
        Duration::from_nanos(self.wait_nanos.load(Ordering::Relaxed))
    }
}
