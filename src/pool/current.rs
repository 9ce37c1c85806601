//! Which worker runs the caller: `current_thread_index` and
//! `current_num_threads`, for per-worker buffers.

use crate::pool::global::global_pool;
use crate::pool::Pool;
use crate::scheduler::WorkerThread;

/// The index of the worker thread running the caller, in its pool: `None`
/// outside any pool's worker (rayon's `current_thread_index`).
///
/// The index is the worker's slot, from 0, and is always below
/// [`current_num_threads`] called on the same thread, which is the pool's
/// [`max_capacity`](Pool::max_capacity): a figure fixed for the pool's
/// life. So a buffer of `current_num_threads()` places, one per worker,
/// stays valid whatever [`Pool::tune`], the
/// [autoscaler](crate::Autoscale) or
/// [`block_in_place`](crate::block_in_place) do to the capacity later: the
/// capacity never exceeds `max_capacity`, and a worker's index never
/// changes while its thread lives.
///
/// Two threads never run with the same index at once (a slot's next
/// thread starts its work only after the previous one has left), so the
/// place `index` of such a buffer is used by one thread at a time. But one
/// thread may run several tasks nested, each seeing the same index: a task
/// that waits inside the pool ([`Pool::join`], [`Pool::scope`],
/// [`JoinHandle::join`](crate::JoinHandle::join),
/// [`yield_now`](crate::yield_now)) may run other tasks meanwhile. Keep a
/// borrow of the place out of such calls (a `RefCell` would tell you).
///
/// Inside a [`FuncPool`](crate::FuncPool) handler it is that pool's
/// worker index; inside a task that a [`MultiPool`](crate::MultiPool)
/// sub-pool's worker took from a sibling sub-pool it is that worker's
/// index in its own sub-pool. A task run on a thread outside the pool
/// (when no worker thread could start, see [`Pool::submit`]) sees `None`.
///
/// ```
/// use std::sync::Mutex;
///
/// let pool = stealpool::Pool::builder().capacity(4).max_capacity(8).build()?;
/// assert_eq!(stealpool::current_thread_index(), None);
///
/// // One partial sum per worker, no contention between them.
/// let slots = pool.install(stealpool::current_num_threads);
/// assert_eq!(slots, 8);
/// let partial: Vec<Mutex<u64>> = (0..slots).map(|_| Mutex::new(0)).collect();
/// pool.scope(|s| {
///     for i in 1..=100u64 {
///         let partial = &partial;
///         s.spawn(move || {
///             let index = stealpool::current_thread_index().unwrap();
///             *partial[index].lock().unwrap() += i;
///         });
///     }
/// });
/// let total: u64 = partial.iter().map(|p| *p.lock().unwrap()).sum();
/// assert_eq!(total, 5050);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[inline]
pub fn current_thread_index() -> Option<usize> {
    WorkerThread::current().map(|worker| worker.index)
}

/// The bound of [`current_thread_index`] on this thread: the
/// [`max_capacity`](Pool::max_capacity) of the pool whose worker runs the
/// caller, or the [`global_pool`]'s outside any pool (building it if need
/// be; rayon's `current_num_threads`).
///
/// `current_thread_index() < current_num_threads()` always holds on the
/// same thread, and the figure never changes for a pool, so a per-worker
/// buffer sized by it never needs to grow (see [`current_thread_index`]).
///
/// It is the number of worker *slots*, not of threads running now: a
/// pool's capacity can be anything up to it, and by default it is at least
/// 256 (see [`Builder::max_capacity`](crate::Builder::max_capacity)). To
/// split work into one piece per worker, use [`Pool::capacity`] instead.
///
/// ```
/// let pool = stealpool::Pool::builder().capacity(2).max_capacity(4).build()?;
/// let (index, slots) = pool.install(|| (stealpool::current_thread_index(), stealpool::current_num_threads()));
/// assert!(index.unwrap() < slots);
/// assert_eq!(slots, 4);
/// // Outside any pool: the global pool's.
/// assert_eq!(stealpool::current_num_threads(), stealpool::global_pool().max_capacity());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn current_num_threads() -> usize {
    match WorkerThread::current() {
        Some(worker) => worker.shared.config.max_capacity,
        None => global_pool().max_capacity(),
    }
}

impl Pool {
    /// The index of the worker running the caller if it is one of this
    /// pool's workers, else `None` (rayon's
    /// `ThreadPool::current_thread_index`). Below
    /// [`Pool::max_capacity`]; see [`current_thread_index`] for what the
    /// index promises.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).build()?;
    /// let other = stealpool::Pool::builder().capacity(1).build()?;
    /// assert_eq!(pool.current_thread_index(), None);
    /// let (inner, other_inner) = (pool.clone(), other.clone());
    /// let seen = pool.spawn(move || (inner.current_thread_index(), other_inner.current_thread_index()))?;
    /// let (mine, theirs) = seen.join().unwrap();
    /// assert!(mine.unwrap() < 2);
    /// assert_eq!(theirs, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn current_thread_index(&self) -> Option<usize> {
        WorkerThread::current_in(self.shared()).map(|worker| worker.index)
    }
}
