//! `MultiPoolBuilder` and `LoadBalancing`: how a `MultiPool` is set up.

use std::fmt;

use crate::error::BuildError;
use crate::multi::{MultiFuncPool, MultiInner, MultiPool};
use crate::observe::TaskEvent;
use crate::pool::builder::Builder;
use crate::pool::Pool;
use crate::scheduler::Shared;
use crate::sync::StdArc;

type PoolThreadNameFn = dyn Fn(usize, usize) -> String + Send + Sync;
type PoolThreadHookFn = dyn Fn(usize, usize) + Send + Sync;
type PoolTaskHookFn = dyn Fn(usize, &TaskEvent) + Send + Sync;

/// The hooks of a `MultiPool`: each is called with the sub-pool's index.
#[derive(Clone, Default)]
struct PoolHooks {
    on_thread_start: Option<StdArc<PoolThreadHookFn>>,
    on_thread_stop: Option<StdArc<PoolThreadHookFn>>,
    on_task_start: Option<StdArc<PoolTaskHookFn>>,
    on_task_end: Option<StdArc<PoolTaskHookFn>>,
    measure_queue_delay: Option<bool>,
}

impl PoolHooks {
    /// The template with sub-pool `pool`'s hooks installed.
    fn install(&self, pool: usize, mut builder: Builder) -> Builder {
        if let Some(hook) = self.on_thread_start.clone() {
            builder = builder.on_thread_start(move |i| hook(pool, i));
        }
        if let Some(hook) = self.on_thread_stop.clone() {
            builder = builder.on_thread_stop(move |i| hook(pool, i));
        }
        if let Some(hook) = self.on_task_start.clone() {
            builder = builder.on_task_start(move |e| hook(pool, e));
        }
        if let Some(hook) = self.on_task_end.clone() {
            builder = builder.on_task_end(move |e| hook(pool, e));
        }
        if let Some(measure) = self.measure_queue_delay {
            builder = builder.measure_queue_delay(measure);
        }
        builder
    }
}

/// How a [`MultiPool`] picks the sub-pool for each task.
///
/// ```
/// use stealpool::{LoadBalancing, MultiPool};
///
/// let mp = MultiPool::builder()
///     .pools(2)
///     .capacity_per_pool(1)
///     .strategy(LoadBalancing::LeastTasks)
///     .build()?;
/// assert_eq!(mp.strategy(), LoadBalancing::LeastTasks);
/// # Ok::<(), stealpool::BuildError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum LoadBalancing {
    /// Each submit takes the next sub-pool in turn (one shared counter, one
    /// relaxed RMW per submit). If that sub-pool refuses with
    /// [`SubmitError::Full`](crate::SubmitError::Full), the task is offered once more, to the other
    /// sub-pool with the fewest tasks queued or running; `Closed` and
    /// `Timeout` are never retried. The default.
    #[default]
    RoundRobin,
    /// Each submit goes to the sub-pool with the fewest tasks queued or
    /// running, counting the tasks submitted through the `MultiPool`. The
    /// counts are kept per sub-pool (one cache-padded counter each, up on
    /// submit, down when the task finishes), so choosing costs one load per
    /// sub-pool. Ties go to a different sub-pool on each submit of a thread.
    /// A refusal is never retried: when the least loaded sub-pool's queue is
    /// full, so are the others' (they share the capacity and queue limit).
    LeastTasks,
}

/// Configures and starts a [`MultiPool`].
///
/// Every sub-pool is built from one [`Builder`] template
/// ([`pool_builder`](MultiPoolBuilder::pool_builder)), so every per-pool
/// setting (`keep_alive`, `queue_limit`, `nonblocking`, `prealloc`,
/// `max_capacity`, `panic_handler`, ...) applies to each sub-pool on its
/// own. Three settings of the template are replaced:
///
/// * the capacity, by [`capacity_per_pool`](MultiPoolBuilder::capacity_per_pool)
///   when that is set;
/// * the thread names, by [`thread_name`](MultiPoolBuilder::thread_name)
///   (default `stealpool-{pool}-{i}`);
/// * pinning: sub-pools do not pin their workers, unless
///   [`split_cores`](MultiPoolBuilder::split_cores) gives each its own
///   cores (a multi-pool spreads its load over sub-pools, not cores).
///
/// ```
/// use std::time::Duration;
/// use stealpool::{LoadBalancing, MultiPool, Pool};
///
/// let mp = MultiPool::builder()
///     .pools(4)
///     .capacity_per_pool(2)
///     .strategy(LoadBalancing::LeastTasks)
///     .pool_builder(Pool::builder().keep_alive(Duration::from_secs(30)).queue_limit(1_000))
///     .thread_name(|pool, i| format!("io-{pool}-{i}"))
///     .build()?;
/// assert_eq!(mp.capacity(), 8);
/// # Ok::<(), stealpool::BuildError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
#[derive(Clone)]
pub struct MultiPoolBuilder {
    pools: usize,
    capacity_per_pool: Option<usize>,
    template: Builder,
    strategy: LoadBalancing,
    thread_name: Option<StdArc<PoolThreadNameFn>>,
    split_cores: bool,
    hooks: PoolHooks,
    steal_across: bool,
}

impl Default for MultiPoolBuilder {
    fn default() -> Self {
        MultiPoolBuilder::new()
    }
}

impl fmt::Debug for MultiPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiPoolBuilder")
            .field("pools", &self.pools)
            .field("capacity_per_pool", &self.capacity_per_pool)
            .field("template", &self.template)
            .field("strategy", &self.strategy)
            .field("thread_name", &self.thread_name.as_ref().map(|_| ".."))
            .field("split_cores", &self.split_cores)
            .field("steal_across", &self.steal_across)
            .finish()
    }
}

/// The number of sub-pools a builder makes unless told otherwise.
const DEFAULT_POOLS: usize = 2;

impl MultiPoolBuilder {
    /// A builder with the defaults: 2 sub-pools, [`LoadBalancing::RoundRobin`],
    /// and a default [`Builder`] as the template (so each sub-pool's capacity
    /// is the number of cores unless
    /// [`capacity_per_pool`](MultiPoolBuilder::capacity_per_pool) or the
    /// template says otherwise; threads start on demand).
    ///
    /// ```
    /// let mp = stealpool::MultiPoolBuilder::new().build()?;
    /// assert_eq!(mp.pools().len(), 2);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn new() -> Self {
        MultiPoolBuilder {
            pools: DEFAULT_POOLS,
            capacity_per_pool: None,
            template: Builder::new(),
            strategy: LoadBalancing::default(),
            thread_name: None,
            split_cores: false,
            hooks: PoolHooks::default(),
            steal_across: true,
        }
    }

    /// Whether a worker with nothing to do in its own sub-pool takes tasks
    /// from the other sub-pools before it sleeps (default true): its own
    /// deque, its sub-pool's injector and workers first, then the
    /// siblings'. A submit that finds every worker of its sub-pool busy
    /// also wakes a sleeping worker of another sub-pool, or starts one in a
    /// sub-pool that has room for a thread and none yet (threads start on
    /// demand), so no task waits behind a blocked sub-pool while a worker
    /// could take it. A task run that
    /// way counts in its own sub-pool's stats; `Pool::current()` inside it
    /// names the sub-pool of the worker running it. `false` keeps the
    /// sub-pools strictly apart (each task runs on the sub-pool it was
    /// given to). Sub-pools with task hooks
    /// ([`on_task_start`](MultiPoolBuilder::on_task_start),
    /// [`on_task_end`](MultiPoolBuilder::on_task_end)) or
    /// [`measure_queue_delay`](MultiPoolBuilder::measure_queue_delay) stay
    /// apart too: those hooks and figures belong to the workers of a task's
    /// own sub-pool. [`MultiFuncPool`] sub-pools are always apart.
    ///
    /// ```
    /// let mp = stealpool::MultiPool::builder().pools(2).steal_across(false).build()?;
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn steal_across(mut self, steal: bool) -> Self {
        self.steal_across = steal;
        self
    }

    /// How many sub-pools to build. `0` makes
    /// [`build`](MultiPoolBuilder::build) fail with [`BuildError::ZeroPools`].
    ///
    /// ```
    /// let mp = stealpool::MultiPool::builder().pools(3).capacity_per_pool(1).build()?;
    /// assert_eq!(mp.pools().len(), 3);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn pools(mut self, pools: usize) -> Self {
        self.pools = pools;
        self
    }

    /// Each sub-pool's capacity (overrides the template's; default: the
    /// template's). `0` makes
    /// [`build`](MultiPoolBuilder::build) fail with
    /// [`BuildError::ZeroCapacity`].
    ///
    /// ```
    /// let mp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(3).build()?;
    /// assert_eq!(mp.pool(1).unwrap().capacity(), 3);
    /// assert_eq!(mp.capacity(), 6);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn capacity_per_pool(mut self, workers: usize) -> Self {
        self.capacity_per_pool = Some(workers);
        self
    }

    /// The template every sub-pool is built from (see
    /// [`MultiPoolBuilder`] for the settings it does not decide).
    ///
    /// ```
    /// use stealpool::{MultiPool, Pool};
    ///
    /// let mp = MultiPool::builder()
    ///     .pools(2)
    ///     .pool_builder(Pool::builder().capacity(2).max_capacity(8))
    ///     .build()?;
    /// assert_eq!(mp.pool(0).unwrap().max_capacity(), 8);
    /// assert_eq!(mp.capacity(), 4);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn pool_builder(mut self, template: Builder) -> Self {
        self.template = template;
        self
    }

    /// How tasks are spread over the sub-pools. Default:
    /// [`LoadBalancing::RoundRobin`].
    ///
    /// ```
    /// use stealpool::{LoadBalancing, MultiPool};
    /// let mp = MultiPool::builder().strategy(LoadBalancing::LeastTasks).build()?;
    /// assert_eq!(mp.strategy(), LoadBalancing::LeastTasks);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn strategy(mut self, strategy: LoadBalancing) -> Self {
        self.strategy = strategy;
        self
    }

    /// Names worker `i` of sub-pool `pool`: `name(pool, i)`. Default:
    /// `stealpool-{pool}-{i}`. A panic in the closure makes
    /// [`build`](MultiPoolBuilder::build) fail with
    /// [`BuildError::ThreadNamePanicked`] for pre-allocated sub-pools.
    ///
    /// ```
    /// let mp = stealpool::MultiPool::builder()
    ///     .pools(2)
    ///     .capacity_per_pool(1)
    ///     .thread_name(|pool, i| format!("shard{pool}-w{i}"))
    ///     .build()?;
    /// let name = mp.pool(1).unwrap().spawn(|| std::thread::current().name().map(String::from))?;
    /// assert_eq!(name.join().unwrap().as_deref(), Some("shard1-w0"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn thread_name<F>(mut self, name: F) -> Self
    where
        F: Fn(usize, usize) -> String + Send + Sync + 'static,
    {
        self.thread_name = Some(StdArc::new(name));
        self
    }

    /// As [`Builder::on_thread_start`], with the sub-pool's index first:
    /// `hook(pool, worker)`. (Hooks set on the
    /// [`pool_builder`](MultiPoolBuilder::pool_builder) template apply too,
    /// without the sub-pool's index.)
    ///
    /// ```
    /// let mp = stealpool::MultiPool::builder()
    ///     .pools(2)
    ///     .on_thread_start(|pool, worker| assert!(pool < 2 && worker < 64))
    ///     .build()?;
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn on_thread_start<F>(mut self, hook: F) -> Self
    where
        F: Fn(usize, usize) + Send + Sync + 'static,
    {
        self.hooks.on_thread_start = Some(StdArc::new(hook));
        self
    }

    /// As [`Builder::on_thread_stop`], with the sub-pool's index first.
    ///
    /// ```
    /// let mp = stealpool::MultiPool::builder()
    ///     .on_thread_stop(|pool, worker| assert!(pool < 2 && worker < 64))
    ///     .build()?;
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn on_thread_stop<F>(mut self, hook: F) -> Self
    where
        F: Fn(usize, usize) + Send + Sync + 'static,
    {
        self.hooks.on_thread_stop = Some(StdArc::new(hook));
        self
    }

    /// As [`Builder::on_task_start`], with the sub-pool's index first.
    ///
    /// ```
    /// let mp = stealpool::MultiPool::builder()
    ///     .on_task_start(|pool, event| assert!(pool < 2 && !event.panicked()))
    ///     .build()?;
    /// mp.submit(|| ())?;
    /// mp.wait_idle();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_task_start<F>(mut self, hook: F) -> Self
    where
        F: Fn(usize, &TaskEvent) + Send + Sync + 'static,
    {
        self.hooks.on_task_start = Some(StdArc::new(hook));
        self
    }

    /// As [`Builder::on_task_end`], with the sub-pool's index first.
    ///
    /// ```
    /// let mp = stealpool::MultiPool::builder()
    ///     .on_task_end(|pool, event| assert!(pool < 2 && !event.panicked()))
    ///     .build()?;
    /// mp.submit(|| ())?;
    /// mp.wait_idle();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_task_end<F>(mut self, hook: F) -> Self
    where
        F: Fn(usize, &TaskEvent) + Send + Sync + 'static,
    {
        self.hooks.on_task_end = Some(StdArc::new(hook));
        self
    }

    /// As [`Builder::measure_queue_delay`], for every sub-pool.
    /// [`MultiPool::stats`] adds the counts and totals up; its `max`, `p50`
    /// and `p99` are the highest of the sub-pools' (each sub-pool's own
    /// figures are in `mp.pool(i)` (an `Option<&Pool>`), `.stats()`).
    ///
    /// ```
    /// let mp = stealpool::MultiPool::builder().measure_queue_delay(true).build()?;
    /// mp.submit(|| ())?;
    /// mp.wait_idle();
    /// assert_eq!(mp.stats().queue_delay.map(|d| d.count), Some(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn measure_queue_delay(mut self, measure: bool) -> Self {
        self.hooks.measure_queue_delay = Some(measure);
        self
    }

    /// Gives each sub-pool its own share of the cores this process may run
    /// on, and pins its workers there: sub-pool `p` of `k` gets the cores at
    /// positions `c` with `c mod k == p` (with fewer cores than sub-pools,
    /// some share one). Default: off (workers unpinned).
    ///
    /// ```
    /// let mp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(1).split_cores().build()?;
    /// assert_eq!(mp.pools().len(), 2);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn split_cores(mut self) -> Self {
        self.split_cores = true;
        self
    }

    /// Builds every sub-pool.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroPools`] for `pools(0)`; otherwise the first error of
    /// a sub-pool's [`Builder::build`] (for instance
    /// [`BuildError::ZeroCapacity`] for `capacity_per_pool(0)`). On error
    /// the sub-pools already built are shut down again.
    ///
    /// ```
    /// use stealpool::{BuildError, MultiPool};
    ///
    /// assert!(matches!(MultiPool::builder().pools(0).build(), Err(BuildError::ZeroPools)));
    /// assert!(matches!(
    ///     MultiPool::builder().capacity_per_pool(0).build(),
    ///     Err(BuildError::ZeroCapacity)
    /// ));
    /// ```
    pub fn build(self) -> Result<MultiPool, BuildError> {
        let strategy = self.strategy;
        let steal_across = self.steal_across;
        let mut pools = Vec::with_capacity(self.pools);
        for builder in self.sub_builders()? {
            // On error, returning drops the pools built so far: each was its
            // last handle, so it shuts down.
            pools.push(builder.build()?);
        }
        // Task hooks and queue-delay windows run on a task's own pool's
        // workers: pools that have them stay apart.
        let observed = pools.iter().any(|pool| pool.shared().config.task_observer.is_some());
        if steal_across && !observed {
            let shared: Vec<_> = pools.iter().map(Pool::shared).collect();
            Shared::link_siblings(&shared);
        }
        Ok(MultiPool::from_inner(MultiInner::new(
            pools.into_boxed_slice(),
            strategy,
        )))
    }

    /// Builds a [`MultiFuncPool`]: every sub-pool is a [`FuncPool`](crate::FuncPool) running
    /// `func`, configured as [`build`](MultiPoolBuilder::build) configures a
    /// sub-pool (Go ants' `MultiPoolWithFunc`).
    ///
    /// # Errors
    ///
    /// As [`build`](MultiPoolBuilder::build).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    ///
    /// let total = Arc::new(AtomicU64::new(0));
    /// let sum = total.clone();
    /// let mfp = stealpool::MultiPool::builder()
    ///     .pools(2)
    ///     .capacity_per_pool(1)
    ///     .build_func(move |n: u64| {
    ///         sum.fetch_add(n, Ordering::Relaxed);
    ///     })?;
    /// for n in 1..=10 {
    ///     mfp.invoke(n)?;
    /// }
    /// mfp.wait_idle();
    /// assert_eq!(total.load(Ordering::Relaxed), 55);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build_func<A, F>(self, func: F) -> Result<MultiFuncPool<A>, BuildError>
    where
        A: Send + 'static,
        F: Fn(A) + Send + Sync + 'static,
    {
        let strategy = self.strategy;
        let builders = self.sub_builders()?;
        MultiFuncPool::build(builders, strategy, func)
    }

    /// The builder of each sub-pool.
    fn sub_builders(self) -> Result<Vec<Builder>, BuildError> {
        if self.pools == 0 {
            return Err(BuildError::ZeroPools);
        }
        let names = self
            .thread_name
            .unwrap_or_else(|| StdArc::new(|pool, i| format!("stealpool-{pool}-{i}")));
        let mut builders = Vec::with_capacity(self.pools);
        for index in 0..self.pools {
            let names = names.clone();
            let mut builder = self
                .template
                .clone()
                .pin_workers(false)
                .thread_name(move |i| names(index, i));
            builder = self.hooks.install(index, builder);
            if let Some(capacity) = self.capacity_per_pool {
                builder = builder.capacity(capacity);
            }
            if self.split_cores {
                let available = num_cpus::get().max(1);
                let share: Vec<usize> = if available >= self.pools {
                    (index..available).step_by(self.pools).collect()
                } else {
                    vec![index % available]
                };
                builder = builder.pin_to_cores(share);
            }
            builders.push(builder);
        }
        Ok(builders)
    }
}
