//! Counting a spawned task done before its handle has the result.
//!
//! A worker counts a task as completed (and itself as no longer busy) after
//! the task ran. For a `spawn`ed task that was too late: its handle had the
//! result already, so `stats()` read right after `join()` often missed the
//! task (`completed` one short, the worker still busy). So the handle's
//! packet has the task counted, under the packet's lock, after it marked
//! the result finished and before it lets go of the lock; the worker's own
//! count then skips it. Whoever sees the result (through that lock) sees
//! the count, and whoever sees the count (`all_tasks_done`, Acquire, so
//! `wait_idle`) sees the result marked finished (written before the count's
//! Release store, on the same thread).
//!
//! A cell of the worker says what the job running on it now is: the
//! worker's own task (`TOP`: counting it also clears the busy flag), a job
//! run while a task waits (`NESTED`, set and restored around it by
//! `execute`), or a job that some other code runs and counts its own way
//! (`UNARMED`: `Task::run`, a stranded job, a sibling pool's job, an
//! observed pool's task, all cold paths that set and restore it). The
//! `COUNTED` bit says the job counted itself; the worker's count clears it
//! instead of counting. Each early count is followed by its own job's count
//! before any other job's on this thread (the rest of the packet's
//! completion runs no job), so one bit is enough.
//!
//! Cost on the path of a `submit`ted task: a byte load and a test in the
//! worker's count (no store: the cell stays `TOP` in the main loop).

use crate::scheduler::registry::WorkerCounters;
use crate::scheduler::worker::WorkerThread;
use crate::sync::Ordering;

/// The worker's own task (the main loop's state).
pub(super) const TOP: u8 = 0;
/// A job run while a task waits (`execute`).
pub(super) const NESTED: u8 = 1;
/// A job run and counted by other code: no early count.
pub(super) const UNARMED: u8 = 2;
/// The running job counted itself (a bit over `TOP` or `NESTED`).
const COUNTED: u8 = 4;

impl WorkerThread {
    /// The spawned task this worker runs returned: count it as completed
    /// (and, for the worker's own task, the worker as not busy) now, unless
    /// other code runs it. Called under the task's packet lock.
    /// Returns whether a blocked submitter must be woken once the caller
    /// let go of the lock (`wake_room`): its waker may be any code.
    #[inline(never)]
    fn count_early(&self) -> bool {
        let state = self.early.get();
        if state != TOP && state != NESTED {
            return false;
        }
        self.early.set(state | COUNTED);
        let wake = self
            .shared
            .backpressure
            .as_ref()
            .is_some_and(|backpressure| backpressure.release_quietly(1));
        let counters = self.counters();
        WorkerCounters::bump(&counters.completed);
        if state == TOP {
            // Relaxed: a display figure, published by the packet lock the
            // caller holds (`run_task` stores it again after the task).
            counters.busy.store(false, Ordering::Relaxed);
        }
        wake
    }

    /// The worker's count of a job it ran (`run_job`'s `count_completed`):
    /// frees its place in a bounded queue and counts it, unless the job
    /// counted itself.
    #[inline]
    pub(super) fn count_completed(&self) {
        let state = self.early.get();
        if state & COUNTED == 0 {
            self.shared.release_room();
            WorkerCounters::bump(&self.counters().completed);
        } else {
            self.early.set(state & !COUNTED);
        }
    }
}

/// A spawned task returned and its result is marked finished: counts it
/// now if the calling thread is a worker running it (see the module docs).
/// Returns whether the caller must call [`wake_room`] after it let go of
/// its lock (a submitter blocked on the queue limit waits for the room).
#[inline]
pub(crate) fn count_spawned_task() -> bool {
    WorkerThread::current().is_some_and(WorkerThread::count_early)
}

/// Wakes the submitter [`count_spawned_task`] freed room for.
#[cold]
pub(crate) fn wake_room() {
    if let Some(backpressure) = WorkerThread::current().and_then(|worker| worker.shared.backpressure.as_ref()) {
        backpressure.wake_released(1);
    }
}

/// Runs `run` (which runs a job and counts it its own way) with no early
/// count on this thread.
pub(crate) fn unarmed<R>(run: impl FnOnce() -> R) -> R {
    match WorkerThread::current() {
        Some(worker) => {
            let outer = worker.early.replace(UNARMED);
            let result = run();
            worker.early.set(outer);
            result
        }
        None => run(),
    }
}
