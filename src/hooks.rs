//! Per-worker hooks: what a pool built for a [`FuncPool`](crate::FuncPool)
//! runs on its workers besides tasks (health checks of idle workers' state,
//! dropping that state when a worker's thread exits).

use std::time::Duration;

/// Called by a worker thread about itself, never about another worker, so an
/// implementation may keep per-worker data indexed by `index` without locks.
pub(crate) trait WorkerHooks: Send + Sync {
    /// How often an idle (parked) worker calls [`WorkerHooks::on_idle`];
    /// `None`: never.
    fn idle_interval(&self) -> Option<Duration>;
    /// The worker has been parked for an interval. Runs on the worker's
    /// thread, while it is still counted as asleep (a waker that comes
    /// meanwhile finds it awake afterwards). A panic is contained.
    fn on_idle(&self, index: usize);
    /// The worker's thread is about to exit (keep-alive, shutdown). A panic
    /// is contained.
    fn on_exit(&self, index: usize);
}
