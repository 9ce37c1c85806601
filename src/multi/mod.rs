//! `MultiPool`: several independent pools behind one handle, with a
//! load-balancing strategy choosing where each task goes.
//!
//! One pool's outside submits all meet on its injector and its lifecycle
//! word. With many submitting threads those two cache lines become the
//! bottleneck; a `MultiPool` shards them: each task goes to one of `pools`
//! sub-pools (each a full [`Pool`], with its own injector, workers and
//! counters), chosen by [`LoadBalancing`].

pub(crate) mod builder;
mod func;
mod lifecycle;
mod routing;

use std::fmt;
use std::time::Duration;

use crossbeam_utils::CachePadded;

pub use builder::{LoadBalancing, MultiPoolBuilder};
pub use func::MultiFuncPool;
use routing::LoadToken;

use crate::error::{RebootError, ShutdownTimeout, SubmitError, TuneError};
use crate::pool::task::Task;
use crate::pool::Pool;
use crate::scheduler::Room;
use crate::stats::Stats;
use crate::sync::{Arc, AtomicUsize};

/// Several independent [`Pool`]s behind one handle; each task goes to one of
/// them, chosen by a [`LoadBalancing`] strategy (like Go ants' `MultiPool`).
///
/// A single pool's outside submits all meet on its injector and its
/// lifecycle word; with many submitting threads, sharding them over
/// sub-pools spreads that traffic. A worker with nothing to do in its own
/// sub-pool takes tasks from the others before it sleeps, so no task waits
/// behind a blocked sub-pool while a worker is idle;
/// [`MultiPoolBuilder::steal_across`]`(false)` keeps each task on the
/// sub-pool it was given to.
///
/// Every operation on the whole (`tune`, `shutdown`, `reboot`, `stats`)
/// applies to each sub-pool; [`MultiPool::pool`] gives one sub-pool for
/// anything else. Dropping the `MultiPool` drops its handles to the
/// sub-pools, which shut down as any [`Pool`] whose last handle is dropped.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use stealpool::{LoadBalancing, MultiPool};
///
/// let mp = MultiPool::builder()
///     .pools(4)
///     .capacity_per_pool(2)
///     .strategy(LoadBalancing::LeastTasks)
///     .build()?;
/// let done = Arc::new(AtomicUsize::new(0));
/// for _ in 0..100 {
///     let done = done.clone();
///     mp.submit(move || {
///         done.fetch_add(1, Ordering::Relaxed);
///     })?;
/// }
/// mp.wait_idle();
/// assert_eq!(done.load(Ordering::Relaxed), 100);
/// mp.tune(3)?;
/// assert_eq!(mp.stats().capacity, 12);
/// mp.shutdown();
/// assert!(mp.submit(|| ()).unwrap_err().is_closed());
/// mp.reboot()?;
/// mp.submit(|| ())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct MultiPool {
    /// Shared by every clone: a `MultiPool` is a cheap handle, like `Pool`.
    inner: Arc<MultiInner>,
}

/// What every clone of a `MultiPool` shares.
pub(crate) struct MultiInner {
    pools: Box<[Pool]>,
    /// Per sub-pool: tasks submitted through [`LoadBalancing::LeastTasks`]
    /// and not finished yet. Each in its own allocation and cache line: a
    /// task holds its sub-pool's counter (through a [`LoadToken`]) and may
    /// outlive the `MultiPool`.
    loads: Box<[Arc<CachePadded<AtomicUsize>>]>,
    strategy: LoadBalancing,
    /// The next sub-pool for [`LoadBalancing::RoundRobin`] (modulo the count).
    turn: CachePadded<AtomicUsize>,
}

impl MultiInner {
    pub(crate) fn new(pools: Box<[Pool]>, strategy: LoadBalancing) -> MultiInner {
        let loads = pools
            .iter()
            .map(|_| Arc::new(CachePadded::new(AtomicUsize::new(0))))
            .collect();
        MultiInner {
            pools,
            loads,
            strategy,
            turn: CachePadded::new(AtomicUsize::new(0)),
        }
    }
}

/// Adds `part`'s figures to `total` (capacities and counts alike).
pub(crate) fn add_stats(total: &mut Stats, part: &Stats) {
    // Destructured in full, so a new field of `Stats` fails to compile here
    // until it is summed too.
    let Stats {
        capacity,
        max_capacity,
        live_workers,
        busy_workers,
        sleeping_workers,
        queued,
        submitted,
        completed,
        withdrawn,
        cancelled,
        panicked,
        stolen,
        blocked_submitters,
        wait_count,
        wait_time,
        rejected,
        free_capacity,
        live_states,
        busy_time,
        queue_delay,
        hook_panics,
        blocked_workers,
        autoscale_steps,
    } = *part;
    total.capacity += capacity;
    total.max_capacity += max_capacity;
    total.live_workers += live_workers;
    total.busy_workers += busy_workers;
    total.sleeping_workers += sleeping_workers;
    total.queued += queued;
    total.submitted += submitted;
    total.completed += completed;
    total.withdrawn += withdrawn;
    total.cancelled += cancelled;
    total.panicked += panicked;
    total.stolen += stolen;
    total.blocked_submitters += blocked_submitters;
    total.wait_count += wait_count;
    total.wait_time += wait_time;
    total.rejected += rejected;
    total.free_capacity += free_capacity;
    total.live_states += live_states;
    total.busy_time += busy_time;
    total.queue_delay = crate::observe::QueueDelay::merge(total.queue_delay, queue_delay);
    total.hook_panics += hook_panics;
    total.blocked_workers += blocked_workers;
    total.autoscale_steps += autoscale_steps;
}

impl MultiPool {
    pub(crate) fn from_inner(inner: MultiInner) -> MultiPool {
        MultiPool { inner: Arc::new(inner) }
    }

    /// A [`MultiPoolBuilder`] with the default settings.
    ///
    /// ```
    /// let mp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(1).build()?;
    /// assert_eq!(mp.capacity(), 2);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn builder() -> MultiPoolBuilder {
        MultiPoolBuilder::new()
    }

    /// Runs `task` on one of the sub-pools, chosen by the strategy (see
    /// [`LoadBalancing`]). Otherwise as [`Pool::submit`]: lock-free and
    /// never blocking unless the sub-pools have a `queue_limit` and the
    /// chosen one is full (then it blocks until there is room, or refuses
    /// as configured); from inside a sub-pool's task it never blocks. The
    /// closure travels with a load counter (boxed once when that makes it
    /// wider than two words); a panic is caught and counted.
    ///
    /// # Errors
    ///
    /// As [`Pool::submit`], from the sub-pool that refused (with
    /// [`LoadBalancing::RoundRobin`], a `Full` one was already offered to a
    /// second sub-pool): [`SubmitError::Closed`] or [`SubmitError::Full`]
    /// with the closure itself; never `Timeout`.
    ///
    /// ```
    /// let mp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(1).build()?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// mp.submit(move || tx.send(42).unwrap())?;
    /// assert_eq!(rx.recv()?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn submit<F>(&self, task: F) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.submit_with_room(task, Room::AsConfigured)
    }

    /// Runs `task` on a sub-pool chosen by the strategy and returns a handle
    /// to its result, as [`Pool::spawn`] (blocking as [`MultiPool::submit`]).
    /// With [`LoadBalancing::RoundRobin`] a `Full` refusal is offered to the
    /// least loaded other sub-pool once.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Closed`] or [`SubmitError::Full`] with the closure
    /// itself; never `Timeout`.
    ///
    /// ```
    /// let mp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(1).build()?;
    /// let answer = mp.spawn(|| 6 * 7)?;
    /// assert_eq!(answer.join().unwrap(), 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn<F, T>(&self, task: F) -> Result<crate::JoinHandle<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let room = Room::AsConfigured;
        match self.inner.strategy {
            LoadBalancing::LeastTasks => {
                let index = self.least_loaded();
                // Counted before the submit, as in `submit_counted`; the
                // token goes with the task (or is dropped on refusal).
                let token = LoadToken::new(&self.inner.loads[index]);
                self.inner.pools[index].spawn_guarded(task, token, room)
            }
            LoadBalancing::RoundRobin => {
                let first = self.next_in_turn();
                match self.inner.pools[first].spawn_guarded(task, (), room) {
                    Err(SubmitError::Full(task)) => self.retry_full(first, task.into_inner(), |pool, task| {
                        pool.spawn_guarded(task, (), room)
                    }),
                    result => result,
                }
            }
        }
    }

    /// Like [`MultiPool::submit`], but waits at most `timeout` for room in a
    /// full queue (as [`Pool::submit_timeout`]). With
    /// [`LoadBalancing::RoundRobin`], a `Full` refusal (too many blocked
    /// submitters) is offered to a second sub-pool with the same deadline.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Timeout`] if no room opened in time,
    /// [`SubmitError::Closed`] or [`SubmitError::Full`]; all with the
    /// closure itself.
    ///
    /// ```
    /// use std::time::Duration;
    /// use stealpool::{MultiPool, Pool};
    ///
    /// let mp = MultiPool::builder()
    ///     .pools(2)
    ///     .capacity_per_pool(1)
    ///     .pool_builder(Pool::builder().queue_limit(1))
    ///     .build()?;
    /// mp.submit_timeout(|| (), Duration::from_millis(10))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_timeout<F>(&self, task: F, timeout: Duration) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.submit_with_room(task, Pool::room_for(Some(timeout)))
    }

    /// Blocks until every sub-pool is idle: every task accepted before the
    /// call has finished, and so has every task those tasks submitted, to
    /// any sub-pool (it waits for each sub-pool in turn, and goes round again
    /// while tasks were submitted meanwhile).
    ///
    /// # Panics
    ///
    /// If called from inside one of the sub-pools' own tasks (as
    /// [`Pool::wait_idle`]).
    ///
    /// ```
    /// let mp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(1).build()?;
    /// for _ in 0..10 {
    ///     mp.submit(|| std::thread::sleep(std::time::Duration::from_millis(1)))?;
    /// }
    /// mp.wait_idle();
    /// assert_eq!(mp.stats().completed, 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_idle(&self) {
        let mut submitted = self.submitted();
        loop {
            for pool in self.inner.pools.iter() {
                pool.wait_idle();
            }
            // A task that finished during this round may have submitted to
            // a sub-pool already waited for. Its submission is counted before
            // its own completion, which the waits saw: if the total did not
            // move, nothing was submitted since the round began.
            let now = self.submitted();
            if now == submitted {
                return;
            }
            submitted = now;
        }
    }

    /// Tasks the sub-pools accepted so far, in all.
    fn submitted(&self) -> u64 {
        self.inner.pools.iter().map(|pool| pool.stats().submitted).sum()
    }

    /// Changes every sub-pool's capacity to `capacity_per_pool` (see
    /// [`Pool::tune`]).
    ///
    /// # Errors
    ///
    /// [`TuneError::Zero`] for 0 and [`TuneError::AboveMax`] above the
    /// sub-pools' `max_capacity` (the same for all: they share the
    /// template); nothing is changed.
    ///
    /// ```
    /// let mp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(1).build()?;
    /// mp.tune(3)?;
    /// assert!(mp.pools().iter().all(|pool| pool.capacity() == 3));
    /// assert!(mp.tune(0).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tune(&self, capacity_per_pool: usize) -> Result<(), TuneError> {
        // Sub-pools tuned to another ceiling through `pool(i)` cannot exist
        // (`max_capacity` is fixed at build), so either the first tune fails
        // and nothing changed, or none does.
        for pool in self.inner.pools.iter() {
            pool.tune(capacity_per_pool)?;
        }
        Ok(())
    }

    /// The sum of the sub-pools' figures. Every field is the sum of that
    /// field over the sub-pools ([`Stats::capacity`] is the total capacity).
    /// [`Stats::rejected`] counts the sub-pools' refusals, including a
    /// [`LoadBalancing::RoundRobin`] first try that a second sub-pool then
    /// accepted.
    ///
    /// ```
    /// let mp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(2).build()?;
    /// mp.submit(|| ())?;
    /// mp.wait_idle();
    /// let stats = mp.stats();
    /// assert_eq!((stats.capacity, stats.submitted, stats.completed), (4, 1, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> Stats {
        let mut total = Stats::default();
        for pool in self.inner.pools.iter() {
            add_stats(&mut total, &pool.stats());
        }
        total
    }

    /// Sub-pool `index`, or `None` if there are not that many (ants'
    /// `ErrInvalidPoolIndex`).
    ///
    /// ```
    /// let mp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(1).build()?;
    /// let one = mp.pool(1).expect("two sub-pools");
    /// one.submit(|| ())?; // straight to sub-pool 1
    /// one.wait_idle();
    /// assert_eq!(one.stats().completed, 1);
    /// assert!(mp.pool(2).is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pool(&self, index: usize) -> Option<&Pool> {
        self.inner.pools.get(index)
    }

    /// Every sub-pool, in order.
    ///
    /// ```
    /// let mp = stealpool::MultiPool::builder().pools(3).capacity_per_pool(1).build()?;
    /// assert_eq!(mp.pools().len(), 3);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn pools(&self) -> &[Pool] {
        &self.inner.pools
    }

    /// The strategy spreading the tasks.
    ///
    /// ```
    /// use stealpool::{LoadBalancing, MultiPool};
    /// let mp = MultiPool::builder().build()?;
    /// assert_eq!(mp.strategy(), LoadBalancing::RoundRobin);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn strategy(&self) -> LoadBalancing {
        self.inner.strategy
    }

    /// The total capacity: the sum of the sub-pools' capacities.
    ///
    /// ```
    /// let mp = stealpool::MultiPool::builder().pools(3).capacity_per_pool(2).build()?;
    /// assert_eq!(mp.capacity(), 6);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.inner.pools.iter().map(Pool::capacity).sum()
    }

    /// Whether some sub-pool refuses new work (it was shut down).
    ///
    /// ```
    /// let mp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(1).build()?;
    /// assert!(!mp.is_closed());
    /// mp.pool(1).unwrap().shutdown();
    /// assert!(mp.is_closed());
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.pools.iter().any(Pool::is_closed)
    }

    /// Shuts every sub-pool down gracefully (see [`Pool::shutdown`]): all
    /// close first, then each runs what it accepted and joins its threads.
    ///
    /// ```
    /// let mp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(1).build()?;
    /// mp.submit(|| ())?;
    /// mp.shutdown();
    /// assert!(mp.is_closed());
    /// assert_eq!(mp.stats().completed, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(&self) {
        lifecycle::shutdown_all(&self.inner.pools);
    }

    /// Like [`MultiPool::shutdown`], but gives up waiting once `timeout` has
    /// passed in all (see [`Pool::shutdown_timeout`]). Every sub-pool is
    /// closed either way.
    ///
    /// # Errors
    ///
    /// [`ShutdownTimeout`] if some sub-pool did not finish in time.
    ///
    /// ```
    /// use std::time::Duration;
    /// let mp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(1).build()?;
    /// mp.submit(|| ())?;
    /// mp.shutdown_timeout(Duration::from_secs(10))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown_timeout(&self, timeout: Duration) -> Result<(), ShutdownTimeout> {
        lifecycle::shutdown_all_timeout(&self.inner.pools, timeout)
    }

    /// Shuts every sub-pool down at once (see [`Pool::shutdown_now`]): all
    /// close first, then the tasks that never started are taken out of every
    /// sub-pool and handed back, sub-pool 0's first.
    ///
    /// ```
    /// let mp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(1).build()?;
    /// let unrun = mp.shutdown_now();
    /// assert!(unrun.is_empty());
    /// assert!(mp.is_closed());
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    #[must_use = "the returned tasks were accepted and never ran: run them (Task::run) or drop them on purpose"]
    pub fn shutdown_now(&self) -> Vec<Task> {
        lifecycle::close_all(&self.inner.pools);
        // Every queue is emptied before any running task is waited for:
        // otherwise the sub-pools behind the first would run their queues
        // while it waits.
        let mut unrun = Vec::new();
        for pool in self.inner.pools.iter() {
            unrun.extend(pool.withdraw_queued());
        }
        for pool in self.inner.pools.iter() {
            pool.finish_shutdown_now();
        }
        unrun
    }

    /// Starts every shut-down sub-pool again (see [`Pool::reboot`]); running
    /// sub-pools are left as they are.
    ///
    /// # Errors
    ///
    /// The first sub-pool's error, after every sub-pool was tried (the
    /// others are running again).
    ///
    /// ```
    /// let mp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(1).build()?;
    /// mp.shutdown();
    /// mp.reboot()?;
    /// assert!(!mp.is_closed());
    /// mp.submit(|| ())?;
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

impl fmt::Debug for MultiPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiPool")
            .field("pools", &self.inner.pools.len())
            .field("strategy", &self.inner.strategy)
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}
