//! `yield_now` and `yield_local`: a long task lets one pending task of its
//! pool run on its own thread.

use crate::scheduler::WorkerThread;

/// What [`yield_now`] or [`yield_local`] did.
///
/// ```
/// use stealpool::Yield;
///
/// let pool = stealpool::Pool::builder().capacity(1).build()?;
/// let outcome = pool.install(stealpool::yield_now);
/// assert_eq!(outcome, Some(Yield::Idle)); // nothing else was queued
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Yield {
    /// One pending task ran (and returned) before the call did.
    Executed,
    /// No pending task was found (or this worker may not take one now).
    Idle,
}

/// Runs one pending task of the current pool on the calling worker, then
/// returns: a long task calls it now and then to let queued work through
/// (rayon's `yield_now`).
///
/// It looks where the worker's own loop looks: the worker's own queue
/// first (newest first), then the pool's shared queue, then the other
/// workers' queues (stealing). The task it finds runs to its end inside
/// this call, and may itself wait, spawn or yield; its panic is caught and
/// counted as any task's. Then the calling task goes on where it was.
///
/// Returns `None` outside any pool's worker, `Some(Yield::Executed)` if a
/// task ran, `Some(Yield::Idle)` if none was queued. It also takes no task,
/// and returns `Some(Yield::Idle)`, while the calling worker is above the
/// pool's capacity (after a [`Pool::tune`](crate::Pool::tune) that shrank
/// it: the worker may only finish its current task) or has lent its place
/// to another worker inside [`block_in_place`](crate::block_in_place).
/// Tasks of a [`MultiPool`](crate::MultiPool)'s sibling sub-pools are not
/// taken.
///
/// A task that yields may be overtaken by the task it runs: if the caller
/// holds a lock or a borrow the other task needs, that task waits for it
/// as it would on another thread, and here that means forever. Yield where
/// the task holds nothing shared.
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use stealpool::Yield;
///
/// let pool = stealpool::Pool::builder().capacity(1).build()?;
/// let flag = Arc::new(AtomicBool::new(false));
/// let seen = flag.clone();
/// let outcome = pool.install(|| {
///     // Queued behind us on the only worker: without the yield it would
///     // run after this closure.
///     stealpool::spawn(move || seen.store(true, Ordering::SeqCst)).unwrap();
///     let outcome = stealpool::yield_now();
///     assert!(flag.load(Ordering::SeqCst));
///     outcome
/// });
/// assert_eq!(outcome, Some(Yield::Executed));
/// assert_eq!(stealpool::yield_now(), None); // not on a worker
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn yield_now() -> Option<Yield> {
    let worker = WorkerThread::current()?;
    Some(run_one(worker, false))
}

/// Like [`yield_now`], but takes a task only from the calling worker's own
/// queue (the tasks it submitted or spawned itself, newest first), never
/// from the shared queue or another worker (rayon's `yield_local`): a
/// yield that keeps the work it runs local. `None` outside any pool's
/// worker; `Some(Yield::Idle)` when the own queue is empty, and in the
/// same cases as [`yield_now`].
///
/// ```
/// use stealpool::Yield;
///
/// let pool = stealpool::Pool::builder().capacity(1).build()?;
/// let outcome = pool.install(|| {
///     let first = stealpool::yield_local(); // our queue is empty
///     stealpool::spawn(|| ()).unwrap(); // now it holds one task
///     (first, stealpool::yield_local())
/// });
/// assert_eq!(outcome, (Some(Yield::Idle), Some(Yield::Executed)));
/// assert_eq!(stealpool::yield_local(), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn yield_local() -> Option<Yield> {
    let worker = WorkerThread::current()?;
    Some(run_one(worker, true))
}

fn run_one(worker: &WorkerThread, local_only: bool) -> Yield {
    let shared = &*worker.shared;
    // The worker runs a task now (the caller), so the capacity rule counts
    // it as running: another task may run nested in it only while the
    // worker is below the capacity. SeqCst (`capacity_now`): the same read
    // as `run_task`'s against `tune`'s swap; a worker that reads the old
    // capacity here runs the nested task inside the caller's own run, which
    // `tune` already counts as "running when it happened". A lent slot
    // (`block_in_place`) belongs to another worker meanwhile.
    if worker.index >= shared.capacity_now() || shared.is_lent(worker.index) {
        return Yield::Idle;
    }
    let found = if local_only {
        worker.pop()
    } else {
        worker.pop().or_else(|| worker.steal())
    };
    let Some(job) = found else {
        return Yield::Idle;
    };
    // The task may run long: the halves of enclosing joins that nobody was
    // offered yet go where other workers can take them meanwhile.
    worker.publish_all_join_work();
    worker.execute(job);
    Yield::Executed
}
