//! `MultiFuncPool<A>`: several `FuncPool`s running one function behind one
//! handle (Go ants' `MultiPoolWithFunc`), with the same strategies as
//! `MultiPool`.

use std::fmt;
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::error::{BuildError, RebootError, ShutdownTimeout, SubmitError, TuneError};
use crate::func::builder::FuncPoolBuilder;
use crate::func::FuncPool;
use crate::multi::lifecycle;
use crate::multi::routing::least_loaded;
use crate::multi::LoadBalancing;
use crate::pool::builder::Builder;
use crate::stats::Stats;
use crate::sync::{Arc, AtomicUsize, Ordering};

/// Several [`FuncPool`]s running the same function behind one handle; each
/// argument goes to one of them, chosen by a [`LoadBalancing`] strategy (Go
/// ants' `MultiPoolWithFunc`). Built with
/// [`MultiPoolBuilder::build_func`](crate::MultiPoolBuilder::build_func).
///
/// A cheap handle: clones share the sub-pools, which shut down when the
/// last clone is dropped (as a [`FuncPool`] whose last handle is dropped).
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use stealpool::{LoadBalancing, MultiPool};
///
/// let seen = Arc::new(AtomicUsize::new(0));
/// let counter = seen.clone();
/// let mfp = MultiPool::builder()
///     .pools(2)
///     .capacity_per_pool(2)
///     .strategy(LoadBalancing::LeastTasks)
///     .build_func(move |bytes: Vec<u8>| {
///         counter.fetch_add(bytes.len(), Ordering::Relaxed);
///     })?;
/// let handle = mfp.clone();
/// handle.invoke(vec![1, 2, 3])?;
/// mfp.invoke(vec![4])?;
/// mfp.wait_idle();
/// assert_eq!(seen.load(Ordering::Relaxed), 4);
/// assert!(mfp.pool(2).is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct MultiFuncPool<A> {
    inner: Arc<Inner<A>>,
}

struct Inner<A> {
    pools: Box<[FuncPool<A>]>,
    /// Per sub-pool, with [`LoadBalancing::LeastTasks`]: arguments accepted
    /// and not yet run (raised before the invoke; lowered when the function
    /// returns or panics, on refusal, and by `shutdown_now` for the
    /// arguments it hands back).
    loads: Box<[Arc<CachePadded<AtomicUsize>>]>,
    strategy: LoadBalancing,
    /// The next sub-pool for [`LoadBalancing::RoundRobin`].
    turn: CachePadded<AtomicUsize>,
}

/// Lowers a load by one when dropped: an argument finished (or its run
/// panicked).
struct Lower<'a>(&'a AtomicUsize);

impl Drop for Lower<'_> {
    fn drop(&mut self) {
        // Relaxed: a hint for choosing a sub-pool; the RMW keeps it exact.
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<A> Clone for MultiFuncPool<A> {
    fn clone(&self) -> Self {
        MultiFuncPool {
            inner: self.inner.clone(),
        }
    }
}

impl<A: Send + 'static> MultiFuncPool<A> {
    /// Builds one `FuncPool` running `func` per builder.
    pub(crate) fn build<F>(builders: Vec<Builder>, strategy: LoadBalancing, func: F) -> Result<Self, BuildError>
    where
        F: Fn(A) + Send + Sync + 'static,
    {
        let func = Arc::new(func);
        let loads: Box<[_]> = builders
            .iter()
            .map(|_| Arc::new(CachePadded::new(AtomicUsize::new(0))))
            .collect();
        let mut pools = Vec::with_capacity(builders.len());
        for (builder, load) in builders.into_iter().zip(loads.iter()) {
            let func = func.clone();
            let builder = FuncPoolBuilder::from_builder(builder);
            // On error, returning drops the pools built so far, which shuts
            // them down.
            let pool = match strategy {
                LoadBalancing::LeastTasks => {
                    let load = load.clone();
                    builder.build(move |arg| {
                        // Lowered when the function returns or panics.
                        let _done = Lower(&load);
                        func(arg);
                    })?
                }
                LoadBalancing::RoundRobin => builder.build(move |arg| func(arg))?,
            };
            pools.push(pool);
        }
        Ok(MultiFuncPool {
            inner: Arc::new(Inner {
                pools: pools.into_boxed_slice(),
                loads,
                strategy,
                turn: CachePadded::new(AtomicUsize::new(0)),
            }),
        })
    }

    /// Runs the function on `arg` in one of the sub-pools, chosen by the
    /// strategy. As [`FuncPool::invoke`]: lock-free from outside unless a
    /// bounded queue is full (then it blocks until there is room, as the
    /// sub-pools are configured), never blocking from inside the function.
    /// With [`LoadBalancing::RoundRobin`] a `Full` refusal is offered to the
    /// least loaded other sub-pool once.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Closed`] (shut down) or [`SubmitError::Full`] (a full
    /// queue with `nonblocking`, or too many blocked submitters), with the
    /// argument itself.
    ///
    /// ```
    /// let mfp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(1).build_func(|_: u32| ())?;
    /// mfp.invoke(7)?;
    /// mfp.shutdown();
    /// assert_eq!(mfp.invoke(8).unwrap_err().into_inner(), 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn invoke(&self, arg: A) -> Result<(), SubmitError<A>> {
        self.invoke_with(arg, None)
    }

    /// Like [`MultiFuncPool::invoke`], but waits at most `timeout` for room
    /// in a full queue (as [`FuncPool::invoke_timeout`]).
    ///
    /// # Errors
    ///
    /// [`SubmitError::Timeout`] if no room opened in time,
    /// [`SubmitError::Closed`] or [`SubmitError::Full`]; all with the
    /// argument itself.
    ///
    /// ```
    /// use std::time::Duration;
    /// let mfp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(1).build_func(|_: u32| ())?;
    /// mfp.invoke_timeout(1, Duration::from_millis(10))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn invoke_timeout(&self, arg: A, timeout: Duration) -> Result<(), SubmitError<A>> {
        self.invoke_with(arg, Some(timeout))
    }

    fn invoke_with(&self, arg: A, timeout: Option<Duration>) -> Result<(), SubmitError<A>> {
        let inner = &*self.inner;
        let invoke = |pool: &FuncPool<A>, arg: A| match timeout {
            None => pool.invoke(arg),
            Some(timeout) => pool.invoke_timeout(arg, timeout),
        };
        match inner.strategy {
            LoadBalancing::LeastTasks => {
                let index = least_loaded(&inner.loads);
                // Relaxed: a hint for choosing a sub-pool (see `LoadToken`).
                inner.loads[index].fetch_add(1, Ordering::Relaxed);
                invoke(&inner.pools[index], arg).map_err(|error| {
                    // Refused: it will never run.
                    inner.loads[index].fetch_sub(1, Ordering::Relaxed);
                    error
                })
            }
            LoadBalancing::RoundRobin => {
                // Relaxed: only spreads invokes; any interleaving is a fair turn.
                let first = inner.turn.fetch_add(1, Ordering::Relaxed) % inner.pools.len();
                match invoke(&inner.pools[first], arg) {
                    Err(SubmitError::Full(arg)) => {
                        let other = (0..inner.pools.len()).filter(|&i| i != first).min_by_key(|&i| {
                            let stats = inner.pools[i].stats();
                            stats.queued + stats.busy_workers
                        });
                        match other {
                            Some(other) => invoke(&inner.pools[other], arg.into_inner()),
                            None => Err(SubmitError::Full(arg)),
                        }
                    }
                    result => result,
                }
            }
        }
    }

    /// Blocks until every sub-pool is idle (as [`FuncPool::wait_idle`] on
    /// each, in turn; it panics inside the function).
    ///
    /// ```
    /// let mfp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(1).build_func(|_: u8| ())?;
    /// mfp.invoke(1)?;
    /// mfp.wait_idle();
    /// assert_eq!(mfp.stats().completed, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_idle(&self) {
        for pool in self.inner.pools.iter() {
            pool.wait_idle();
        }
    }

    /// Sub-pool `index`, or `None` if there are not that many.
    ///
    /// ```
    /// let mfp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(1).build_func(|_: u8| ())?;
    /// assert!(mfp.pool(1).is_some());
    /// assert!(mfp.pool(2).is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pool(&self, index: usize) -> Option<&FuncPool<A>> {
        self.inner.pools.get(index)
    }

    /// Every sub-pool, in order.
    ///
    /// ```
    /// let mfp = stealpool::MultiPool::builder().pools(3).capacity_per_pool(1).build_func(|_: u8| ())?;
    /// assert_eq!(mfp.pools().len(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pools(&self) -> &[FuncPool<A>] {
        &self.inner.pools
    }

    /// The strategy spreading the arguments.
    ///
    /// ```
    /// use stealpool::{LoadBalancing, MultiPool};
    /// let mfp = MultiPool::builder().pools(1).capacity_per_pool(1).build_func(|_: u8| ())?;
    /// assert_eq!(mfp.strategy(), LoadBalancing::RoundRobin);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn strategy(&self) -> LoadBalancing {
        self.inner.strategy
    }

    /// Changes every sub-pool's capacity (as [`FuncPool::tune`]).
    ///
    /// # Errors
    ///
    /// [`TuneError`] for 0 or above the sub-pools' maximum; nothing changes.
    ///
    /// ```
    /// let mfp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(1).build_func(|_: u8| ())?;
    /// mfp.tune(3)?;
    /// assert_eq!(mfp.capacity(), 6);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tune(&self, capacity_per_pool: usize) -> Result<(), TuneError> {
        // Every sub-pool has the same ceiling: the first fails or none does.
        for pool in self.inner.pools.iter() {
            pool.tune(capacity_per_pool)?;
        }
        Ok(())
    }

    /// The total capacity.
    ///
    /// ```
    /// let mfp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(2).build_func(|_: u8| ())?;
    /// assert_eq!(mfp.capacity(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.inner.pools.iter().map(FuncPool::capacity).sum()
    }

    /// The sum of the sub-pools' figures (as [`MultiPool::stats`](crate::MultiPool::stats)).
    ///
    /// ```
    /// let mfp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(1).build_func(|_: u8| ())?;
    /// assert_eq!(mfp.stats().capacity, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> Stats {
        let mut total = Stats::default();
        for pool in self.inner.pools.iter() {
            crate::multi::add_stats(&mut total, &pool.stats());
        }
        total
    }

    /// Whether some sub-pool refuses new work.
    ///
    /// ```
    /// let mfp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(1).build_func(|_: u8| ())?;
    /// assert!(!mfp.is_closed());
    /// mfp.shutdown();
    /// assert!(mfp.is_closed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.pools.iter().any(FuncPool::is_closed)
    }

    /// Shuts every sub-pool down gracefully: all close first, then each runs
    /// what it accepted and joins its threads.
    ///
    /// ```
    /// let mfp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(1).build_func(|_: u8| ())?;
    /// mfp.invoke(1)?;
    /// mfp.shutdown();
    /// assert_eq!(mfp.stats().completed, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(&self) {
        lifecycle::shutdown_all(&self.inner.pools);
    }

    /// Like [`MultiFuncPool::shutdown`], giving up once `timeout` has passed
    /// in all. Every sub-pool is closed either way.
    ///
    /// # Errors
    ///
    /// [`ShutdownTimeout`] if some sub-pool did not finish in time.
    ///
    /// ```
    /// use std::time::Duration;
    /// let mfp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(1).build_func(|_: u8| ())?;
    /// mfp.shutdown_timeout(Duration::from_secs(10))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown_timeout(&self, timeout: Duration) -> Result<(), ShutdownTimeout> {
        lifecycle::shutdown_all_timeout(&self.inner.pools, timeout)
    }

    /// Shuts every sub-pool down at once and hands back the arguments that
    /// never ran, sub-pool 0's first (as [`FuncPool::shutdown_now`]; all
    /// sub-pools close before any is drained).
    ///
    /// ```
    /// let mfp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(1).build_func(|_: u8| ())?;
    /// let unrun: Vec<u8> = mfp.shutdown_now();
    /// assert!(unrun.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown_now(&self) -> Vec<A> {
        let inner = &*self.inner;
        lifecycle::close_all(&self.inner.pools);
        // Every queue is emptied before any running call is waited for
        // (as `MultiPool::shutdown_now`).
        let mut unrun = Vec::new();
        for (pool, load) in inner.pools.iter().zip(inner.loads.iter()) {
            let handed_back = pool.withdraw_queued();
            if inner.strategy == LoadBalancing::LeastTasks {
                // Relaxed: as in `invoke_with`; these will never run.
                load.fetch_sub(handed_back.len(), Ordering::Relaxed);
            }
            unrun.extend(handed_back);
        }
        for pool in inner.pools.iter() {
            pool.finish_shutdown_now();
        }
        unrun
    }

    /// Starts every shut-down sub-pool again (as [`FuncPool::reboot`]).
    ///
    /// # Errors
    ///
    /// The first sub-pool's error, after every sub-pool was tried.
    ///
    /// ```
    /// let mfp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(1).build_func(|_: u8| ())?;
    /// mfp.shutdown();
    /// mfp.reboot()?;
    /// mfp.invoke(1)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reboot(&self) -> Result<(), RebootError> {
        let mut first_error = None;
        for pool in self.inner.pools.iter() {
            if let Err(error) = pool.reboot() {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl<A> fmt::Debug for MultiFuncPool<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiFuncPool")
            .field("pools", &self.inner.pools.len())
            .field("strategy", &self.inner.strategy)
            .finish_non_exhaustive()
    }
}
