//! `FuncPool<A>`: a pool that runs one function on many arguments, with no
//! allocation per invocation and optional per-worker state (ants'
//! `PoolWithFunc`, go-pooler's resources).
//!
//! It is a [`Pool`] underneath (same scheduler, same capacity control) whose
//! jobs point at argument slots (`slots.rs`) instead of boxed closures; the
//! function and the per-worker states live in its core (`core.rs`).

pub(crate) mod builder;
mod core;
mod invoke_async;
mod slots;
mod stateless;
mod states;

use std::fmt;
use std::time::Duration;

use crate::error::{RebootError, ShutdownTimeout, SubmitError, TuneError};
use crate::func::builder::FuncPoolBuilder;
use crate::func::core::FuncCoreOf;
use crate::pool::Pool;
use crate::stats::{Stats, WorkerStats};
use crate::sync::StdArc;

/// A pool that runs one function on many arguments: the queues carry the
/// arguments (in pre-allocated slots), so [`FuncPool::invoke`] makes no heap
/// allocation once the pool is warm.
///
/// Built with [`FuncPool::builder`]; every capacity feature of [`Pool`]
/// works the same (tune, pre-allocation, keep-alive, queue limits,
/// timeouts, shutdown variants, reboot, stats). With
/// [`FuncPoolBuilder::build_with_state`] each worker keeps a state (a
/// connection, a buffer) made on first use, health-checked while idle, and
/// dropped when the worker's thread exits.
///
/// Clones share one pool. The inner [`Pool`] is never handed out
/// ([`Pool::current`] is `None` inside the function).
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// let total = Arc::new(AtomicU64::new(0));
/// let sum = total.clone();
/// let fp = stealpool::FuncPool::builder()
///     .capacity(2)
///     .build(move |n: u64| {
///         sum.fetch_add(n, Ordering::Relaxed);
///     })?;
/// for n in 1..=100 {
///     fp.invoke(n)?;
/// }
/// fp.wait_idle();
/// assert_eq!(total.load(Ordering::Relaxed), 5050);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FuncPool<A> {
    pool: Pool,
    core: StdArc<dyn FuncCoreOf<A>>,
}

impl<A> Clone for FuncPool<A> {
    fn clone(&self) -> Self {
        FuncPool {
            pool: self.pool.clone(),
            core: self.core.clone(),
        }
    }
}

impl<A> fmt::Debug for FuncPool<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FuncPool")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl<A: Send + 'static> FuncPool<A> {
    /// A [`FuncPoolBuilder`] with the default settings.
    ///
    /// ```
    /// let fp = stealpool::FuncPool::builder().capacity(1).build(|s: String| drop(s))?;
    /// fp.invoke("hello".to_owned())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder() -> FuncPoolBuilder<A> {
        FuncPoolBuilder::new()
    }

    pub(crate) fn from_parts(pool: Pool, core: StdArc<dyn FuncCoreOf<A>>) -> Self {
        FuncPool { pool, core }
    }

    /// Runs the function on `arg`. From outside the pool: lock-free, and no
    /// allocation once warm (the argument goes into a recycled slot), unless
    /// a [`queue_limit`](FuncPoolBuilder::queue_limit) is set and the queue
    /// is full: then it blocks until there is room (or refuses, with
    /// `nonblocking` or when `max_blocked_submitters` already wait). From
    /// inside the function: onto the worker's own deque, never blocking.
    /// Start order as [`Pool::submit`] (strict with
    /// [`fifo`](FuncPoolBuilder::fifo)). Caller runs as
    /// [`Pool::submit`] when no thread can start.
    ///
    /// # Errors
    ///
    /// As [`Pool::submit`], with the argument itself handed back:
    /// `Closed(arg)` when shut down; `Full(arg)` from outside a bounded,
    /// nonblocking pool whose queue is full (or with `max_blocked_submitters`
    /// waiting). Never `Timeout`.
    ///
    /// ```
    /// let fp = stealpool::FuncPool::builder().capacity(1).build(|n: u32| assert!(n < 10))?;
    /// fp.invoke(3)?;
    /// fp.shutdown();
    /// assert_eq!(fp.invoke(4).unwrap_err().into_inner(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn invoke(&self, arg: A) -> Result<(), SubmitError<A>> {
        self.invoke_with(arg, None)
    }

    /// Like [`FuncPool::invoke`], but waits at most `timeout` for room in a
    /// full queue, even on a nonblocking pool (never blocks without a
    /// `queue_limit` or from inside the function).
    ///
    /// # Errors
    ///
    /// `Timeout(arg)` if no room opened in time; `Closed(arg)` if shut down;
    /// `Full(arg)` if `max_blocked_submitters` already wait.
    ///
    /// ```
    /// use std::time::Duration;
    /// let fp = stealpool::FuncPool::builder().capacity(1).queue_limit(8).build(|_: u8| ())?;
    /// fp.invoke_timeout(1, Duration::from_millis(10))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn invoke_timeout(&self, arg: A, timeout: Duration) -> Result<(), SubmitError<A>> {
        self.invoke_with(arg, Some(timeout))
    }

    #[inline]
    fn invoke_with(&self, arg: A, timeout: Option<Duration>) -> Result<(), SubmitError<A>> {
        let slots = self.core.slots();
        self.pool
            .submit_mapped(arg, Pool::room_for(timeout), |arg| slots.job_for(arg))
    }

    /// Blocks until every accepted argument has been run. As
    /// [`Pool::wait_idle`] (it panics inside the function).
    ///
    /// ```
    /// let fp = stealpool::FuncPool::builder().capacity(2).build(|_: u8| ())?;
    /// fp.invoke(1)?;
    /// fp.wait_idle();
    /// assert_eq!(fp.stats().completed, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_idle(&self) {
        self.pool.wait_idle();
    }

    /// Changes the capacity. As [`Pool::tune`].
    ///
    /// # Errors
    ///
    /// [`TuneError`] for 0 or above the maximum; nothing changes.
    ///
    /// ```
    /// let fp = stealpool::FuncPool::builder().capacity(1).max_capacity(8).build(|_: u8| ())?;
    /// fp.tune(8)?;
    /// assert_eq!(fp.capacity(), 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tune(&self, capacity: usize) -> Result<(), TuneError> {
        self.pool.tune(capacity)
    }

    /// The capacity now.
    ///
    /// ```
    /// let fp = stealpool::FuncPool::builder().capacity(3).build(|_: u8| ())?;
    /// assert_eq!(fp.capacity(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.pool.capacity()
    }

    /// The ceiling for [`FuncPool::tune`].
    ///
    /// ```
    /// let fp = stealpool::FuncPool::builder().capacity(1).max_capacity(4).build(|_: u8| ())?;
    /// assert_eq!(fp.max_capacity(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_capacity(&self) -> usize {
        self.pool.max_capacity()
    }

    /// Shuts down gracefully: every accepted argument runs, then the threads
    /// exit (dropping their states). As [`Pool::shutdown`].
    ///
    /// ```
    /// let fp = stealpool::FuncPool::builder().capacity(1).build(|_: u8| ())?;
    /// fp.invoke(1)?;
    /// fp.shutdown();
    /// assert!(fp.is_closed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(&self) {
        self.pool.shutdown();
    }

    /// As [`Pool::shutdown_timeout`].
    ///
    /// # Errors
    ///
    /// [`ShutdownTimeout`] if the work or the threads did not finish in time.
    ///
    /// ```
    /// use std::time::Duration;
    /// let fp = stealpool::FuncPool::builder().capacity(1).build(|_: u8| ())?;
    /// fp.shutdown_timeout(Duration::from_secs(5))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown_timeout(&self, timeout: Duration) -> Result<(), ShutdownTimeout> {
        self.pool.shutdown_timeout(timeout)
    }

    /// Closes the pool and returns at once; the accepted arguments still run
    /// and the threads exit on their own. As [`Pool::shutdown_background`].
    ///
    /// ```
    /// let fp = stealpool::FuncPool::builder().capacity(1).build(|_: u8| ())?;
    /// fp.invoke(1)?;
    /// fp.shutdown_background();
    /// assert!(fp.invoke(2).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown_background(&self) {
        self.pool.shutdown_background();
    }

    /// Shuts down at once and hands back every argument that never ran;
    /// running calls finish. As [`Pool::shutdown_now`].
    ///
    /// ```
    /// let fp = stealpool::FuncPool::builder().capacity(1).build(|_: u8| ())?;
    /// let unrun: Vec<u8> = fp.shutdown_now();
    /// assert!(unrun.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use = "the returned arguments were accepted and never run"]
    pub fn shutdown_now(&self) -> Vec<A> {
        let unrun = self.withdraw_queued();
        self.finish_shutdown_now();
        unrun
    }

    /// The first half of `shutdown_now`: closes the pool and takes every
    /// queued argument out (`MultiFuncPool` does this for every sub-pool
    /// before it waits on any).
    pub(crate) fn withdraw_queued(&self) -> Vec<A> {
        let slots = self.core.slots();
        self.pool
            .withdraw_queued()
            .into_iter()
            // SAFETY: the inner pool is never handed out, so every counted
            // task in it is an invocation made by `slots.job_for`, unrun.
            .map(|task| unsafe { slots.take_back(task.into_job_ref()) })
            .collect()
    }

    /// The second half of `shutdown_now`: waits for the running calls and
    /// joins the threads.
    pub(crate) fn finish_shutdown_now(&self) {
        self.pool.finish_shutdown_now();
    }

    /// Starts a shut-down pool again. As [`Pool::reboot`].
    ///
    /// # Errors
    ///
    /// As [`Pool::reboot`].
    ///
    /// ```
    /// let fp = stealpool::FuncPool::builder().capacity(1).build(|_: u8| ())?;
    /// fp.shutdown();
    /// fp.reboot()?;
    /// fp.invoke(1)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reboot(&self) -> Result<(), RebootError> {
        self.pool.reboot()
    }

    /// Whether the pool refuses new arguments.
    ///
    /// ```
    /// let fp = stealpool::FuncPool::builder().capacity(1).build(|_: u8| ())?;
    /// assert!(!fp.is_closed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.pool.is_closed()
    }

    /// A snapshot of the pool's figures; `live_states` counts the
    /// per-worker states alive now.
    ///
    /// ```
    /// let fp = stealpool::FuncPool::builder()
    ///     .capacity(1)
    ///     .build_with_state(|| Vec::<u8>::new(), |buf: &mut Vec<u8>, b: u8| buf.push(b))?;
    /// fp.invoke(1)?;
    /// fp.wait_idle();
    /// assert_eq!(fp.stats().live_states, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> Stats {
        let mut stats = self.pool.stats();
        stats.live_states = self.core.live_states();
        stats
    }

    /// Per-worker figures of the slots that have or had a thread. As
    /// [`Pool::worker_stats`].
    ///
    /// ```
    /// let fp = stealpool::FuncPool::builder().capacity(2).max_capacity(8).build(|_: u8| ())?;
    /// assert!(fp.worker_stats().is_empty()); // threads start on demand
    /// fp.prestart()?;
    /// assert_eq!(fp.worker_stats().len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn worker_stats(&self) -> Vec<WorkerStats> {
        self.pool.worker_stats()
    }

    /// Starts a thread for every worker of the current capacity that has
    /// none yet. As [`Pool::prestart`] (a worker's state is still made on
    /// its first call).
    ///
    /// # Errors
    ///
    /// The operating system's error if it refused a thread.
    ///
    /// ```
    /// let fp = stealpool::FuncPool::builder().capacity(2).build(|_: u8| ())?;
    /// assert_eq!(fp.prestart()?, 2);
    /// assert_eq!(fp.stats().live_workers, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn prestart(&self) -> std::io::Result<usize> {
        self.pool.prestart()
    }
}
