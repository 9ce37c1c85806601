//! Waiting across pools: a thread that hands a job to a pool and waits for
//! it (`install`, `join`, `scope` from outside that pool). Blocking is fine
//! for a plain thread, but a worker of *another* pool that blocks stops its
//! own pool's work too, and two pools that wait for each other (`install`
//! from A into B into A, with every worker of A waiting in B) never finish.
//! Such a worker runs its own pool's work while it waits instead (rayon's
//! `install` from a worker of another registry does the same).

use std::time::Duration;

use crate::scheduler::help_while_draining;
use crate::scheduler::latch::{Latch, LatchOwner};
use crate::scheduler::worker::{backoff, WorkerThread, WAIT_ROUNDS};

/// How often a worker waiting across pools looks for its own pool's work
/// once it found none: new work of its own pool wakes sleeping workers, not
/// one that waits inside a task, so it must look by itself. A millisecond
/// keeps a cycle between pools moving (each turn of it waits at most this
/// long) at the cost of a wake-up per millisecond while such a wait lasts.
pub(crate) const CROSS_POLL: Duration = Duration::from_millis(1);

/// A latch for a job the calling thread hands to another pool (not the one
/// it is a worker of, if any) and then waits for with
/// [`wait_for_other_pool`] on the same thread.
pub(crate) fn caller_latch() -> Latch {
    match WorkerThread::current() {
        Some(worker) => Latch::new(LatchOwner::CrossWorker(
            worker.shared.sleep.parker(worker.index).clone(),
        )),
        None => Latch::for_current_thread(),
    }
}

/// Waits for a latch made by [`caller_latch`] on this thread: a worker runs
/// its own pool's work meanwhile; another thread runs stranded work of the
/// pools it drains (`help_while_draining`), then blocks.
pub(crate) fn wait_for_other_pool(latch: &Latch) {
    match WorkerThread::current() {
        Some(worker) => worker.wait_until_cross(latch),
        None => {
            help_while_draining(|| latch.probe());
            latch.wait_blocking();
        }
    }
}

impl WorkerThread {
    /// Runs this worker's own pool's work until `latch` (set by a job of
    /// another pool, owned by this worker's parker) is set.
    #[cold]
    fn wait_until_cross(&self, latch: &Latch) {
        // Halves of enclosing joins nobody was offered yet: offer them now,
        // as `wait_until` does (this worker may park below).
        self.publish_all_join_work();
        let mut idle_rounds = 0;
        while !latch.probe() {
            if self.help_once() {
                idle_rounds = 0;
                continue;
            }
            // A broadcast of this worker's own pool runs its share here too,
            // as in `wait_until` (I49: no broadcast waits for a worker that
            // waits on another pool).
            if self.broadcast_pending() {
                self.run_broadcasts();
                continue;
            }
            if idle_rounds < WAIT_ROUNDS {
                backoff(idle_rounds);
                idle_rounds += 1;
                continue;
            }
            // The setter unparks this parker once the latch says SLEEPING;
            // a token left by the sleep protocol (the parker is this
            // worker's) only shortens one wait.
            if latch.announce_block() && !latch.probe() {
                self.shared.sleep.parker(self.index).park_timeout(CROSS_POLL);
            }
        }
    }
}
