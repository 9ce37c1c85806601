//! The shutdown drain: `shutdown_now` takes every queued task out of the
//! pool (registry/README.md, I25).

use crate::scheduler::job::{JobKind, JobRef};
use crate::scheduler::queue::Steal;
use crate::scheduler::registry::Shared;
use crate::sync::Arc;

impl Shared {
    /// The first half of `shutdown_now`: closes the pool, takes every queued
    /// task out (counted as withdrawn), resolves the handles of the spawned
    /// ones for tasks of a pool that join them (registry/README.md, I25),
    /// and puts back what must run in the pool.
    pub(crate) fn withdraw_queued(this: &Arc<Self>) -> Vec<JobRef> {
        let shared = this;
        shared.close();
        let mut unrun = Vec::new();
        let mut keep = Vec::new();
        // A queue-delay stamp comes off: what is handed back is the task.
        let mut sort = |job: JobRef| {
            let job = crate::scheduler::stamp::unstamp(job).0;
            match job.kind() {
                JobKind::Task => unrun.push(job),
                JobKind::Bound | JobKind::Stack => keep.push(job),
            }
        };
        while let Some(job) = steal_retrying(|| shared.injector.steal()) {
            sort(job);
        }
        for stealer in shared.stealers() {
            while let Some(job) = steal_retrying(|| stealer.steal()) {
                sort(job);
            }
        }
        let mut handed_back = Vec::with_capacity(unrun.len());
        for job in unrun {
            // A running task may be joining one of these handles: it gets its
            // error now instead of waiting for a task that sits in the
            // caller's hands. A task cancelled through its handle is not
            // handed back but dropped (and counted cancelled).
            // SAFETY: just taken out of the queues, alive until run or
            // dropped as a `Task`.
            if unsafe { job.notify_withdrawn() } {
                handed_back.push(job);
            } else {
                shared.drop_cancelled(job);
            }
        }
        let unrun = handed_back;
        // Withdrawn tasks count as done, and their places in the queue free.
        shared.withdraw(unrun.len() as u64);
        if let Some(backpressure) = &shared.backpressure {
            backpressure.release(unrun.len());
        }
        for job in keep {
            shared.injector.push(job);
        }
        // Sleeping workers re-check: what is left to run, or the drained pool.
        shared.sleep.notify_all();
        Shared::notify_new_work(shared);
        unrun
    }
}

/// One job from `steal`, retrying while it asks to (`None`: empty).
pub(crate) fn steal_retrying(mut steal: impl FnMut() -> Steal<JobRef>) -> Option<JobRef> {
    loop {
        match steal() {
            Steal::Success(job) => return Some(job),
            Steal::Empty => return None,
            Steal::Retry => {}
        }
    }
}
