//! The completion ledger: what was submitted, completed, withdrawn and
//! cancelled, and the one test built on it, "every accepted task is done"
//! (`all_tasks_done`, registry/README.md, I22), which `wait_idle` and the
//! workers' exit wait for.

use crate::scheduler::job::JobRef;
use crate::scheduler::registry::{Shared, WorkerCounters, ONE_ACCEPTED};
use crate::sync::{AtomicU64, Ordering};

use std::panic::{self, AssertUnwindSafe};

impl Shared {
    /// Counts tasks `shutdown_now` took out unrun: they will never complete.
    pub(crate) fn withdraw(&self, tasks: u64) {
        // Release: pairs with the Acquire in `all_tasks_done`.
        self.withdrawn.fetch_add(tasks, Ordering::Release);
    }

    /// The sum of one per-worker counter over every slot.
    fn sum_over_slots(&self, counter: impl Fn(&WorkerCounters) -> &AtomicU64, ordering: Ordering) -> u64 {
        self.slots
            .iter()
            .map(|slot| counter(&slot.counters).load(ordering))
            .sum()
    }

    /// Tasks submitted so far (accepted from outside + from inside).
    pub(crate) fn submitted(&self) -> u64 {
        // Relaxed: display figures.
        let inside = self.sum_over_slots(|c| &c.submitted, Ordering::Relaxed);
        (self.lifecycle.load(Ordering::Relaxed) / ONE_ACCEPTED) + inside
    }

    /// A task `shutdown_now` handed back was run with `Task::run`.
    pub(crate) fn count_handed_back_run(&self) {
        // Relaxed: a display figure; `all_tasks_done` counts the task as
        // done since it was withdrawn.
        self.handed_back_run.fetch_add(1, Ordering::Relaxed);
    }

    /// Tasks `shutdown_now` handed back that were not run (yet).
    pub(crate) fn withdrawn(&self) -> u64 {
        // Relaxed: display figures. Read the runs first: a run counted
        // between the two loads then shows as still withdrawn, never as a
        // negative count.
        let run = self.handed_back_run.load(Ordering::Relaxed);
        self.withdrawn.load(Ordering::Relaxed).saturating_sub(run)
    }

    /// Tasks completed (run, panicked or not) so far.
    pub(crate) fn completed(&self) -> u64 {
        // Relaxed: display figures.
        let by_workers = self.sum_over_slots(|c| &c.completed, Ordering::Relaxed);
        by_workers
            + self.ran_by_waiters.load(Ordering::Relaxed)
            + self.handed_back_run.load(Ordering::Relaxed)
            + self.ran_by_siblings.load(Ordering::Relaxed)
    }

    /// Whether every counted task that was ever accepted has completed (or
    /// was handed back unrun by `shutdown_now`).
    ///
    /// Reads all `completed` counters first (Acquire), then all `submitted`
    /// counters. A task's submission is counted before the task is pushed,
    /// and a task's children are counted before the task's own completion,
    /// so every completion we see brings its submission (and its children's)
    /// into view: equal sums mean nothing is pending. registry/README.md,
    /// I22, has the proof.
    pub(crate) fn all_tasks_done(&self) -> bool {
        // Acquire pairs with `WorkerCounters::bump`'s Release.
        let completed = self.sum_over_slots(|c| &c.completed, Ordering::Acquire);
        // Acquire pairs with the Release in `withdraw`; read with the
        // completions, before the submissions, for the same reason.
        let withdrawn = self.withdrawn.load(Ordering::Acquire)
            + self.ran_by_waiters.load(Ordering::Acquire)
            + self.cancelled.load(Ordering::Acquire)
            + self.ran_by_siblings.load(Ordering::Acquire);
        let inside = self.sum_over_slots(|c| &c.submitted, Ordering::Acquire);
        // SeqCst: ordered with accepts and `close` on the same word.
        let outside = self.lifecycle.load(Ordering::SeqCst) / ONE_ACCEPTED;
        completed + withdrawn == outside + inside
    }

    /// Whether the pool is closed and has nothing left to run: workers exit.
    pub(crate) fn is_closed_and_drained(&self) -> bool {
        // The lifecycle word is read again inside `all_tasks_done`, after the
        // completion counters; CLOSED never clears while workers run.
        self.is_closed() && self.all_tasks_done()
    }

    /// A counted task leaves the pool: room for a blocked submitter. Each
    /// `count_completed` of `run_job` calls this first.
    #[inline]
    pub(crate) fn release_room(&self) {
        if let Some(backpressure) = &self.backpressure {
            backpressure.release(1);
        }
    }

    /// A task cancelled through its handle was reached in the queues: drop
    /// it unrun (its handle already has its error) and count it done, as
    /// `cancelled`, not `completed`. A panic in the closure's `Drop` goes to
    /// the panic handler like a task's own panic.
    #[cold]
    #[inline(never)]
    pub(crate) fn drop_cancelled(&self, job: JobRef) {
        // SAFETY: alive until run or discarded, and the cancellation means
        // it is never run: discarded once, here.
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| unsafe { job.discard() })) {
            self.handle_panic(payload);
        }
        if let Some(backpressure) = &self.backpressure {
            backpressure.release(1);
        }
        // Release: pairs with the Acquire in `all_tasks_done` (the job is
        // done, like a completion).
        self.cancelled.fetch_add(1, Ordering::Release);
    }

    /// Cancelled tasks the pool dropped unrun (see `drop_cancelled`).
    pub(crate) fn cancelled(&self) -> u64 {
        // Relaxed: a display figure.
        self.cancelled.load(Ordering::Relaxed)
    }
}
