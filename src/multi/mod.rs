//! `MultiPool`: several independent pools behind one handle, with a
//! load-balancing strategy choosing where each task goes.
//!
//! One pool's outside submits all meet on its injector and its lifecycle
//! word. With many submitting threads those two cache lines become the
//! bottleneck; a `MultiPool` shards them: each task goes to one of `pools`
//! sub-pools (each a full [`Pool`], with its own injector, workers and
//! counters), chosen by [`LoadBalancing`].

use std::cell::Cell;
use std::fmt;
use std::sync::Arc as StdArc;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::error::{BuildError, RebootError, ShutdownTimeout, SubmitError, TuneError};
use crate::pool::builder::Builder;
use crate::pool::task::Task;
use crate::pool::Pool;
use crate::scheduler::{HeapJob, JobKind, Room};
use crate::stats::Stats;
use crate::sync::{Arc, AtomicUsize, Ordering};

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
    /// [`SubmitError::Full`], the task is offered once more, to the other
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
        }
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

/// Several independent [`Pool`]s behind one handle; each task goes to one of
/// them, chosen by a [`LoadBalancing`] strategy (like Go ants' `MultiPool`).
///
/// A single pool's outside submits all meet on its injector and its
/// lifecycle word; with many submitting threads, sharding them over
/// sub-pools spreads that traffic. Work does not move between sub-pools: a
/// task runs on the sub-pool it was given to (its workers steal only from
/// each other).
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
pub struct MultiPool {
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

/// One task counted in its sub-pool's load: counts up when made, down when
/// dropped. It travels inside the task's closure, so the count goes down when
/// the task finishes, panics, or is dropped unrun (a `Task` from
/// `shutdown_now`), and at once when the submit is refused.
struct LoadToken(Arc<CachePadded<AtomicUsize>>);

impl LoadToken {
    fn new(load: &Arc<CachePadded<AtomicUsize>>) -> Self {
        // Relaxed: the count is only a hint for choosing a sub-pool; nothing
        // else is published through it, and a stale read only makes one
        // choice less than ideal.
        load.fetch_add(1, Ordering::Relaxed);
        LoadToken(load.clone())
    }
}

impl Drop for LoadToken {
    fn drop(&mut self) {
        // Relaxed: as in `new`; the RMW itself keeps the count exact.
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The refused value of `error`, mapped by `map`, with the same reason.
fn map_refused<T, U>(error: SubmitError<T>, map: impl FnOnce(T) -> U) -> SubmitError<U> {
    match error {
        SubmitError::Closed(value) => SubmitError::Closed(map(value)),
        SubmitError::Full(value) => SubmitError::Full(map(value)),
        SubmitError::Timeout(value) => SubmitError::Timeout(map(value)),
    }
}

/// Adds `part`'s figures to `total` (capacities and counts alike).
fn add_stats(total: &mut Stats, part: &Stats) {
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
        panicked,
        stolen,
        blocked_submitters,
        wait_count,
        wait_time,
        rejected,
        free_capacity,
        live_states,
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
    total.panicked += panicked;
    total.stolen += stolen;
    total.blocked_submitters += blocked_submitters;
    total.wait_count += wait_count;
    total.wait_time += wait_time;
    total.rejected += rejected;
    total.free_capacity += free_capacity;
    total.live_states += live_states;
}

std::thread_local! {
    /// Where this thread's next `LeastTasks` scan starts, so that ties
    /// (typically: every sub-pool idle) do not all go to sub-pool 0.
    static SCAN_START: Cell<usize> = const { Cell::new(0) };
}

impl MultiPool {
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
    /// [`LoadBalancing`]). Otherwise as [`Pool::submit`]: lock-free unless a
    /// bounded queue is full, the closure boxed once, a panic caught and
    /// counted.
    ///
    /// # Errors
    ///
    /// As [`Pool::submit`], from the sub-pool that refused (with
    /// [`LoadBalancing::RoundRobin`], a `Full` one was already offered to a
    /// second sub-pool): [`SubmitError::Closed`] or [`SubmitError::Full`]
    /// with the closure itself.
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
    /// to its result, as [`Pool::spawn`]. With
    /// [`LoadBalancing::RoundRobin`] a `Full` refusal is offered to the least
    /// loaded other sub-pool once.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Closed`] or [`SubmitError::Full`] with the closure
    /// itself.
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
        match self.strategy {
            LoadBalancing::LeastTasks => {
                let index = self.least_loaded();
                // Counted before the submit, as in `submit_counted`; the
                // token goes with the task (or is dropped on refusal).
                let token = LoadToken::new(&self.loads[index]);
                self.pools[index].spawn_guarded(task, token, room)
            }
            LoadBalancing::RoundRobin => {
                let first = self.next_in_turn();
                match self.pools[first].spawn_guarded(task, (), room) {
                    Err(SubmitError::Full(task)) => {
                        match (0..self.pools.len())
                            .filter(|&index| index != first)
                            .min_by_key(|&index| {
                                let stats = self.pools[index].stats();
                                stats.queued + stats.busy_workers
                            }) {
                            Some(other) => self.pools[other].spawn_guarded(task, (), room),
                            None => Err(SubmitError::Full(task)),
                        }
                    }
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

    #[inline]
    fn submit_with_room<F>(&self, task: F, room: Room) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        match self.strategy {
            LoadBalancing::LeastTasks => self.submit_counted(self.least_loaded(), task, room),
            LoadBalancing::RoundRobin => {
                let first = self.next_in_turn();
                match self.submit_plain(first, task, room) {
                    Err(SubmitError::Full(task)) => self.retry_full(first, task, room),
                    result => result,
                }
            }
        }
    }

    /// Offers a task that sub-pool `refused` found `Full` to the least
    /// loaded other sub-pool, once.
    #[cold]
    fn retry_full<F>(&self, refused: usize, task: F, room: Room) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        // `stats` scans the sub-pool's worker slots: fine on this cold path,
        // and it sees every task, also those submitted to a sub-pool
        // directly.
        let other = (0..self.pools.len())
            .filter(|&index| index != refused)
            .min_by_key(|&index| {
                let stats = self.pools[index].stats();
                stats.queued + stats.busy_workers
            });
        match other {
            Some(other) => self.submit_plain(other, task, room),
            None => Err(SubmitError::Full(task)),
        }
    }

    /// Submits to sub-pool `index` exactly as [`Pool::submit`] does.
    #[inline]
    fn submit_plain<F>(&self, index: usize, task: F, room: Room) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.pools[index].submit_mapped(task, room, |task| HeapJob::into_job_ref(task, JobKind::Task))
    }

    /// Submits to sub-pool `index` with the task counted in its load.
    #[inline]
    fn submit_counted<F>(&self, index: usize, task: F, room: Room) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        // Counted before the submit, so that concurrent submitters see it
        // while this one may still wait for room.
        let token = LoadToken::new(&self.loads[index]);
        self.pools[index]
            .submit_mapped((task, token), room, |(task, token)| {
                HeapJob::into_job_ref(
                    move || {
                        let _token = token;
                        task();
                    },
                    JobKind::Task,
                )
            })
            // The refused token is dropped here: the count goes back down.
            .map_err(|error| map_refused(error, |(task, _token)| task))
    }

    /// The next sub-pool in turn.
    #[inline]
    fn next_in_turn(&self) -> usize {
        // Relaxed: only spreads submits; any interleaving is a fair turn.
        self.turn.fetch_add(1, Ordering::Relaxed) % self.pools.len()
    }

    /// The sub-pool with the smallest load, scanning from a start that moves
    /// on with each call on this thread (ties go round).
    #[inline]
    fn least_loaded(&self) -> usize {
        let count = self.loads.len();
        let start = SCAN_START.with(|start| {
            let value = start.get();
            start.set(value.wrapping_add(1));
            value % count
        });
        let mut best = start;
        // Relaxed: a hint (see `LoadToken`).
        let mut best_load = self.loads[start].load(Ordering::Relaxed);
        let mut index = start;
        for _ in 1..count {
            if best_load == 0 {
                break;
            }
            index += 1;
            if index == count {
                index = 0;
            }
            // Relaxed: a hint (see `LoadToken`).
            let load = self.loads[index].load(Ordering::Relaxed);
            if load < best_load {
                best = index;
                best_load = load;
            }
        }
        best
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
            for pool in self.pools.iter() {
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
        self.pools.iter().map(|pool| pool.stats().submitted).sum()
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
        for pool in self.pools.iter() {
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
        for pool in self.pools.iter() {
            add_stats(&mut total, &pool.stats());
        }
        total
    }

    /// Sub-pool `index`.
    ///
    /// # Panics
    ///
    /// If `index` is not below the number of sub-pools.
    ///
    /// ```
    /// let mp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(1).build()?;
    /// mp.pool(1).submit(|| ())?; // straight to sub-pool 1
    /// mp.pool(1).wait_idle();
    /// assert_eq!(mp.pool(1).stats().completed, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pool(&self, index: usize) -> &Pool {
        &self.pools[index]
    }

    /// Every sub-pool, in order.
    ///
    /// ```
    /// let mp = stealpool::MultiPool::builder().pools(3).capacity_per_pool(1).build()?;
    /// assert_eq!(mp.pools().len(), 3);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn pools(&self) -> &[Pool] {
        &self.pools
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
        self.strategy
    }

    /// The total capacity: the sum of the sub-pools' capacities.
    ///
    /// ```
    /// let mp = stealpool::MultiPool::builder().pools(3).capacity_per_pool(2).build()?;
    /// assert_eq!(mp.capacity(), 6);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.pools.iter().map(Pool::capacity).sum()
    }

    /// Whether some sub-pool refuses new work (it was shut down).
    ///
    /// ```
    /// let mp = stealpool::MultiPool::builder().pools(2).capacity_per_pool(1).build()?;
    /// assert!(!mp.is_closed());
    /// mp.pool(1).shutdown();
    /// assert!(mp.is_closed());
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.pools.iter().any(Pool::is_closed)
    }

    /// Closes every sub-pool without waiting, so that no sub-pool takes new
    /// work while another drains.
    fn close_all(&self) {
        for pool in self.pools.iter() {
            // A zero timeout closes the pool and gives up waiting at once;
            // the `Err(ShutdownTimeout)` that follows is expected.
            let _ = pool.shutdown_timeout(Duration::ZERO);
        }
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
        self.close_all();
        for pool in self.pools.iter() {
            pool.shutdown();
        }
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
        let deadline = Instant::now().checked_add(timeout);
        self.close_all();
        let mut result = Ok(());
        for pool in self.pools.iter() {
            let left = deadline.map_or(timeout, |deadline| deadline.saturating_duration_since(Instant::now()));
            if pool.shutdown_timeout(left).is_err() {
                result = Err(ShutdownTimeout);
            }
        }
        result
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
    pub fn shutdown_now(&self) -> Vec<Task> {
        self.close_all();
        // Every queue is emptied before any running task is waited for:
        // otherwise the sub-pools behind the first would run their queues
        // while it waits.
        let mut unrun = Vec::new();
        for pool in self.pools.iter() {
            unrun.extend(pool.withdraw_queued());
        }
        for pool in self.pools.iter() {
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
        for pool in self.pools.iter() {
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
            .field("pools", &self.pools.len())
            .field("strategy", &self.strategy)
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}
