//! The worker's side of `block_in_place`: lend the slot, hand the local
//! deque on, run the blocking closure, take the slot back.

use crate::scheduler::registry::lending::LendReason;
use crate::scheduler::registry::Shared;
use crate::scheduler::worker::WorkerThread;

impl WorkerThread {
    /// Runs `blocking` with this worker's slot lent to another worker
    /// (registry/README.md, "Lent slots").
    pub(crate) fn block_in_place<R>(&self, blocking: impl FnOnce() -> R) -> R {
        if self.shared.is_lent_for(self.index, LendReason::Explicit) {
            // Nested: the slot is lent already (only this thread lends it
            // explicitly, so the hint is exact here).
            return blocking();
        }
        Shared::lend_slot(&self.shared, self.index, LendReason::Explicit);
        // Taken back however `blocking` ends, a panic included.
        let _take_back = TakeBack { worker: self };
        // The tasks queued behind us must not wait for us: they go to the
        // injector, where the worker that got our slot (or any idle one)
        // takes them, and someone is woken for them. That includes the
        // halves of enclosing joins nobody was offered yet.
        self.publish_all_join_work();
        if self.hand_back_local_work() {
            Shared::notify_new_work(&self.shared);
        }
        blocking()
    }
}

/// Takes an explicitly lent slot back when dropped.
struct TakeBack<'a> {
    worker: &'a WorkerThread,
}

impl Drop for TakeBack<'_> {
    fn drop(&mut self) {
        // If the capacity is now below this worker, it finishes the task it
        // runs and then suspends by the normal rules (worker/README.md, I12).
        Shared::take_back_slot(&self.worker.shared, self.worker.index, LendReason::Explicit);
    }
}
