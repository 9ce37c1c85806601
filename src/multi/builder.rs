//! `MultiPoolBuilder` and `LoadBalancing`: how a `MultiPool` is set up.

use std::fmt;

use crossbeam_utils::CachePadded;

use crate::error::BuildError;
use crate::multi::MultiPool;
use crate::pool::builder::Builder;
use crate::pool::Pool;
use crate::scheduler::Shared;
use crate::sync::{Arc, AtomicUsize, StdArc};

type PoolThreadNameFn = dyn Fn(usize, usize) -> String + Send + Sync;

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
            steal_across: true,
        }
    }

    /// Whether a worker with nothing to do in its own sub-pool takes tasks
    /// from the other sub-pools before it sleeps (default true): its own
    /// deque, its sub-pool's injector and workers first, then the
    /// siblings'. A submit that finds every worker of its sub-pool busy
    /// also wakes a sleeping worker of another sub-pool, so no task waits
    /// behind a blocked sub-pool while any worker is idle. A task run that
    /// way counts in its own sub-pool's stats; `Pool::current()` inside it
    /// names the sub-pool of the worker running it. `false` keeps the
    /// sub-pools strictly apart (each task runs on the sub-pool it was
    /// given to).
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
    /// assert_eq!(mp.pool(1).capacity(), 3);
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
    /// assert_eq!(mp.pool(0).max_capacity(), 8);
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
    /// let name = mp.pool(1).spawn(|| std::thread::current().name().map(String::from))?;
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
        if self.pools == 0 {
            return Err(BuildError::ZeroPools);
        }
        let names = self
            .thread_name
            .unwrap_or_else(|| StdArc::new(|pool, i| format!("stealpool-{pool}-{i}")));
        let mut pools = Vec::with_capacity(self.pools);
        for index in 0..self.pools {
            let names = names.clone();
            let mut builder = self
                .template
                .clone()
                .pin_workers(false)
                .thread_name(move |i| names(index, i));
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
            // On error, returning drops the pools built so far: each was its
            // last handle, so it shuts down.
            pools.push(builder.build()?);
        }
        if self.steal_across {
            let shared: Vec<_> = pools.iter().map(Pool::shared).collect();
            Shared::link_siblings(&shared);
        }
        let loads = (0..self.pools)
            .map(|_| Arc::new(CachePadded::new(AtomicUsize::new(0))))
            .collect();
        Ok(MultiPool {
            pools: pools.into_boxed_slice(),
            loads,
            strategy: self.strategy,
            turn: CachePadded::new(AtomicUsize::new(0)),
        })
    }
}
