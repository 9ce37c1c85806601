//! The pool's figures: `stats` and `worker_stats`.

use crate::pool::Pool;
use crate::stats::{Stats, WorkerStats};

impl Pool {
    /// The figures of each worker slot that has or had a thread: slots
    /// `0..n`, where `n` is the highest slot ever started plus one (threads
    /// start in slot order, so this is every slot that ever ran). A slot
    /// whose thread exited (keep-alive, shutdown) reads
    /// [`WorkerState::NotStarted`](crate::WorkerState::NotStarted) and
    /// keeps its counts. Slots never used up to
    /// [`max_capacity`](Pool::max_capacity) are left out, so a fresh pool
    /// with threads on demand returns an empty list.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).max_capacity(64).build().unwrap();
    /// assert!(pool.worker_stats().is_empty()); // no thread yet
    /// pool.prestart().unwrap();
    /// let workers = pool.worker_stats();
    /// assert_eq!(workers.len(), 2);
    /// assert_eq!(workers[1].index, 1);
    /// ```
    pub fn worker_stats(&self) -> Vec<WorkerStats> {
        self.shared.worker_stats()
    }

    /// A snapshot of the pool's figures.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).build().unwrap();
    /// let stats = pool.stats();
    /// assert!(stats.busy_workers <= stats.live_workers);
    /// ```
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }
}
