//! Where a `MultiPool` sends each task: round robin with one retry on a
//! full sub-pool, or the least loaded sub-pool by a per-sub-pool count of
//! unfinished tasks.

use std::cell::Cell;

use crossbeam_utils::CachePadded;

use crate::error::{Refused, SubmitError};
use crate::multi::{LoadBalancing, MultiPool};
use crate::pool::Pool;
use crate::scheduler::{HeapJob, JobKind, Room};
use crate::sync::{Arc, AtomicUsize, Ordering};

/// One task counted in its sub-pool's load: counts up when made, down when
/// dropped. It travels inside the task's closure, so the count goes down when
/// the task finishes, panics, or is dropped unrun (a `Task` from
/// `shutdown_now`), and at once when the submit is refused.
pub(super) struct LoadToken(Arc<CachePadded<AtomicUsize>>);

impl LoadToken {
    pub(super) fn new(load: &Arc<CachePadded<AtomicUsize>>) -> Self {
        // Relaxed: the count is only a hint for choosing a sub-pool; nothing
        // else is published through it, and a stale read only makes one
        // choice less than ideal.
        load.fetch_add(1, Ordering::Relaxed);
        LoadToken(load.clone())
    }
}

impl Drop for LoadToken {
    fn drop(&mut self) {
        // Relaxed: as in `new`; the RMW itself keeps the count exact.
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The refused value of `error`, mapped by `map`, with the same reason.
fn map_refused<T, U>(error: SubmitError<T>, map: impl FnOnce(T) -> U) -> SubmitError<U> {
    match error {
        SubmitError::Closed(value) => SubmitError::Closed(Refused::new(map(value.into_inner()))),
        SubmitError::Full(value) => SubmitError::Full(Refused::new(map(value.into_inner()))),
        SubmitError::Timeout(value) => SubmitError::Timeout(Refused::new(map(value.into_inner()))),
    }
}

std::thread_local! {
    /// Where this thread's next `LeastTasks` scan starts, so that ties
    /// (typically: every sub-pool idle) do not all go to sub-pool 0.
    static SCAN_START: Cell<usize> = const { Cell::new(0) };
}

impl MultiPool {
    #[inline]
    pub(super) fn submit_with_room<F>(&self, task: F, room: Room) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        match self.inner.strategy {
            LoadBalancing::LeastTasks => self.submit_counted(self.least_loaded(), task, room),
            LoadBalancing::RoundRobin => {
                let first = self.next_in_turn();
                match self.submit_plain(first, task, room) {
                    Err(SubmitError::Full(task)) => {
                        self.retry_full(first, task.into_inner(), |pool, task| Self::submit_to(pool, task, room))
                    }
                    result => result,
                }
            }
        }
    }

    /// Offers a task that sub-pool `refused` found `Full` to the least
    /// loaded other sub-pool, once: `offer` submits it there (a plain
    /// submit or a spawn).
    #[cold]
    pub(super) fn retry_full<V, R>(
        &self,
        refused: usize,
        value: V,
        offer: impl FnOnce(&Pool, V) -> Result<R, SubmitError<V>>,
    ) -> Result<R, SubmitError<V>> {
        // `stats` scans the sub-pool's worker slots: fine on this cold path,
        // and it sees every task, also those submitted to a sub-pool
        // directly.
        let other = (0..self.inner.pools.len())
            .filter(|&index| index != refused)
            .min_by_key(|&index| {
                let stats = self.inner.pools[index].stats();
                stats.queued + stats.busy_workers
            });
        match other {
            Some(other) => offer(&self.inner.pools[other], value),
            None => Err(SubmitError::Full(Refused::new(value))),
        }
    }

    /// Submits to sub-pool `index` exactly as [`Pool::submit`] does.
    #[inline]
    fn submit_plain<F>(&self, index: usize, task: F, room: Room) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        Self::submit_to(&self.inner.pools[index], task, room)
    }

    fn submit_to<F>(pool: &Pool, task: F, room: Room) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        pool.submit_mapped(task, room, |task| HeapJob::into_job_ref(task, JobKind::Task))
    }

    /// Submits to sub-pool `index` with the task counted in its load.
    #[inline]
    fn submit_counted<F>(&self, index: usize, task: F, room: Room) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        // Counted before the submit, so that concurrent submitters see it
        // while this one may still wait for room.
        let token = LoadToken::new(&self.inner.loads[index]);
        self.inner.pools[index]
            .submit_mapped((task, token), room, |(task, token)| {
                HeapJob::into_job_ref(
                    move || {
                        let _token = token;
                        task();
                    },
                    JobKind::Task,
                )
            })
            // The refused token is dropped here: the count goes back down.
            .map_err(|error| map_refused(error, |(task, _token)| task))
    }

    /// The next sub-pool in turn.
    #[inline]
    pub(super) fn next_in_turn(&self) -> usize {
        // Relaxed: only spreads submits; any interleaving is a fair turn.
        self.inner.turn.fetch_add(1, Ordering::Relaxed) % self.inner.pools.len()
    }

    /// The sub-pool with the smallest load (see [`least_loaded`]).
    #[inline]
    pub(super) fn least_loaded(&self) -> usize {
        least_loaded(&self.inner.loads)
    }
}

/// The index of the smallest load, scanning from a start that moves on with
/// each call on this thread (ties go round).
#[inline]
pub(super) fn least_loaded(loads: &[Arc<CachePadded<AtomicUsize>>]) -> usize {
    let count = loads.len();
    let start = SCAN_START.with(|start| {
        let value = start.get();
        start.set(value.wrapping_add(1));
        value % count
    });
    let mut best = start;
    // Relaxed: a hint (see `LoadToken`).
    let mut best_load = loads[start].load(Ordering::Relaxed);
    let mut index = start;
    for _ in 1..count {
        if best_load == 0 {
            break;
        }
        index += 1;
        if index == count {
            index = 0;
        }
        // Relaxed: a hint (see `LoadToken`).
        let load = loads[index].load(Ordering::Relaxed);
        if load < best_load {
            best = index;
            best_load = load;
        }
    }
    best
}
