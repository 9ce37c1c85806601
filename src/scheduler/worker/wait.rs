//! How a worker waits inside the pool for a latch (`join`, `scope`): it
//! helps with queued work, spins, and at last blocks on the latch.

use crate::scheduler::latch::Latch;
use crate::scheduler::worker::search::{spin, SPIN_ROUNDS};
use crate::scheduler::worker::WorkerThread;
use crate::sync::thread;

/// Rounds a worker waiting inside the pool (`wait_until`: a `join`, a
/// scope; `cross.rs`: a wait on another pool) helps, spins and yields
/// before it blocks on its latch.
#[cfg(not(loom))]
pub(crate) const WAIT_ROUNDS: u32 = 40;
#[cfg(loom)]
pub(crate) const WAIT_ROUNDS: u32 = 1;

impl WorkerThread {
    /// Runs one queued task (own deque first, then stolen) while waiting
    /// for something else. Returns whether there was one.
    #[inline]
    pub(crate) fn help_once(&self) -> bool {
        match self.pop().or_else(|| self.steal()) {
            Some(job) => {
                self.execute(job);
                true
            }
            None => false,
        }
    }

    /// Runs other work until `latch` is set: how `join` and `scope` wait
    /// inside the pool without blocking it (`JoinHandle::join` helps the
    /// same way until nothing is queued, then blocks on its packet: its
    /// task runs elsewhere).
    pub(crate) fn wait_until(&self, latch: &Latch) {
        // Halves of enclosing joins that nobody was offered yet: offer
        // them now (this worker runs them itself if nobody else does).
        self.publish_all_join_work();
        let mut idle_rounds = 0;
        while !latch.probe() {
            if self.help_once() {
                idle_rounds = 0;
                continue;
            }
            if self.broadcast_pending() {
                self.run_broadcasts();
                continue;
            }
            if idle_rounds < WAIT_ROUNDS {
                backoff(idle_rounds);
                idle_rounds += 1;
                continue;
            }
            self.block_on_latch(latch);
        }
    }

    /// The join wait's park: nothing to help with, the awaited job runs on
    /// another worker, so block until the latch is set (or a broadcast
    /// share arrives).
    ///
    /// This is a second park loop beside [`WorkerThread::try_sleep`], on
    /// the same parker but outside the sleep word: a worker blocked here is
    /// neither searching nor counted asleep, so `notify_new_work` never
    /// picks it, and only the latch's setter (or a broadcaster) unparks it
    /// (sleep/README.md, I5: a latch's unpark is never counted as a wake).
    /// Sending it through the sleep protocol instead (rayon's one loop)
    /// would let a wake meant for new work land on a worker that must go
    /// back to its latch, and make the latch's unpark a counted wake: a
    /// change to I1–I5 that needs its own loom models, so the two waits
    /// stay apart.
    #[cold]
    fn block_on_latch(&self, latch: &Latch) {
        if latch.announce_block() {
            let parker = self.shared.sleep.parker(self.index);
            while !latch.probe() {
                // A broadcaster unparks us after queueing a share (it may
                // be the very task we wait for).
                if self.broadcast_pending() {
                    self.run_broadcasts();
                    continue;
                }
                parker.park();
            }
        }
    }
}

/// A waiting worker's pause: busy-waits for the first rounds
/// (exponentially longer), then yields.
#[inline]
pub(crate) fn backoff(round: u32) {
    if round < SPIN_ROUNDS {
        spin(1 << round);
    } else {
        thread::yield_now();
    }
}
