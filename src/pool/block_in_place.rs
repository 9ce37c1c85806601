//! `block_in_place`: run blocking code inside a task without holding up the
//! tasks queued behind it.

use crate::scheduler::WorkerThread;

/// Runs `f`, which may block (file or network I/O, a lock, a sleep), without
/// holding up the pool.
///
/// Called inside a pool task, the worker lends its place in the capacity to
/// another worker while `f` runs: one that sleeps is woken, or a new thread
/// is started, up to [`Pool::max_capacity`](crate::Pool::max_capacity) (or
/// the [`Autoscale`](crate::Autoscale) maximum while one is set). The tasks
/// waiting in the blocked worker's own queue are handed to the others
/// first, so nothing queued waits for `f`. When `f` returns (or panics),
/// the worker takes its place back; if the pool is then over its capacity,
/// the extra worker finishes its task and parks, as after a
/// [`Pool::tune`](crate::Pool::tune) that shrinks. While the slot is lent,
/// [`Stats::capacity`](crate::Stats::capacity) is one higher and
/// [`Stats::blocked_workers`](crate::Stats::blocked_workers) counts the
/// worker.
///
/// Outside a pool task it just runs `f`. A nested call runs `f` in the
/// slot already lent. With no room left below the ceiling (every slot in
/// use), `f` runs and queued tasks wait for a worker as usual.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use stealpool::{block_in_place, Pool};
///
/// let pool = Pool::builder().capacity(1).max_capacity(4).build()?;
/// let slow = pool.spawn(|| block_in_place(|| {
///     std::thread::sleep(Duration::from_millis(50));
///     7
/// }))?;
/// // Runs while the only worker is blocked above: its slot is lent.
/// let quick = pool.spawn(|| 6 * 7)?;
/// assert_eq!(quick.join().unwrap(), 42);
/// assert_eq!(slow.join().unwrap(), 7);
/// // Outside the pool, it just runs the closure.
/// assert_eq!(block_in_place(|| 1 + 1), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn block_in_place<R>(f: impl FnOnce() -> R) -> R {
    match WorkerThread::current() {
        Some(worker) => worker.block_in_place(f),
        None => f(),
    }
}
