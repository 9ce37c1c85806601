//! The worker's side of stealing across sibling pools: with nothing in its
//! own pool, it runs one task from a sibling before it sleeps.

use crate::scheduler::registry::{Shared, WorkerCounters};
use crate::scheduler::worker::WorkerThread;
use crate::sync::{fence, Ordering};

impl WorkerThread {
    /// Takes and runs one job of a sibling pool. The worker is searching
    /// when called and is not when this returns true. Returns false (still
    /// searching) if no sibling had work.
    #[cold]
    #[inline(never)]
    pub(super) fn help_a_sibling(&self) -> bool {
        let shared = &self.shared;
        let Some((sibling, job)) = shared.steal_from_siblings(self.next_random()) else {
            return false;
        };
        // Stop searching before running someone else's task, and hand on
        // the search as a searcher leaving to suspend does: submitters that
        // saw us searching woke nobody (store → fence → read the queues).
        shared.sleep.end_searching();
        fence(Ordering::SeqCst);
        if shared.has_queued_work() {
            Shared::notify_new_work(shared);
        }
        let counters = self.counters();
        // Relaxed: a display figure; the capacity read below decides, as in
        // `run_task` (worker/README.md, I12).
        counters.busy.store(true, Ordering::Relaxed);
        if self.index >= shared.capacity_now() {
            // Shrunk under us: the job goes back to its own pool.
            counters.busy.store(false, Ordering::Relaxed);
            sibling.injector.push(job);
            Shared::notify_new_work(&sibling);
            return true;
        }
        WorkerCounters::bump(&counters.stolen);
        // The job runs with its own pool's accounting: its panic handler,
        // its queue limit, its completion count.
        // Counted in its own pool, never early in ours (`early_count.rs`).
        super::early_count::unarmed(|| {
            sibling.run_job(
                job,
                || self.note_panic(),
                || {
                    sibling.release_room();
                    sibling.count_ran_by_sibling();
                },
            )
        });
        // Relaxed: a display figure (as in `run_task`).
        counters.busy.store(false, Ordering::Relaxed);
        sibling.after_a_sibling_ran_a_job();
        true
    }
}
