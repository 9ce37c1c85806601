//! Snapshots of a pool's figures.

use std::time::Duration;

use crate::observe::QueueDelay;

/// A snapshot of a pool's figures, from [`Pool::stats`](crate::Pool::stats).
///
/// Each field is read without stopping the pool, so figures taken while it
/// runs are a moment's picture, but never an inconsistent one:
/// `busy_workers <= live_workers <= max_capacity` and `completed <=
/// submitted` always hold. (`live_workers` may exceed `capacity` right after
/// a shrink: suspended workers keep their threads until keep-alive retires
/// them.)
///
/// Every accepted task is in exactly one place, so whenever nothing is
/// being submitted or finished (a quiescent pool: idle, blocked on its
/// tasks, or shut down):
///
/// `submitted == completed + withdrawn + cancelled + queued + busy_workers`
///
/// # Examples
///
/// ```
/// let pool = stealpool::Pool::builder().capacity(2).build().unwrap();
/// pool.submit(|| ()).unwrap();
/// pool.wait_idle();
/// let stats = pool.stats();
/// assert_eq!(stats.capacity, 2);
/// assert_eq!((stats.submitted, stats.completed, stats.queued), (1, 1, 0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Stats {
    /// How many workers may run tasks at once now: as last tuned, plus the
    /// slots lent by blocked workers (see `blocked_workers`).
    pub capacity: usize,
    /// The ceiling for `tune`.
    pub max_capacity: usize,
    /// Worker threads alive now.
    pub live_workers: usize,
    /// Workers running a task now.
    ///
    /// A task seen running from inside (one that met the reader at a
    /// barrier and has not returned yet) counts. A spawned task whose
    /// [`JoinHandle`](crate::JoinHandle) has its result no longer makes its
    /// worker count. A worker whose `submit`ted task returned a moment ago
    /// may still count for that moment: nothing such a task did lets a
    /// reader see its return, so after a barrier with `n` running tasks
    /// this may read more than `n` while other workers end their tasks.
    pub busy_workers: usize,
    /// Workers parked for lack of work.
    pub sleeping_workers: usize,
    /// Tasks accepted and not yet started (an estimate while the pool runs).
    pub queued: usize,
    /// Tasks accepted since the pool was built (`submit`, `spawn`, scope
    /// spawns; the halves of `join` are not counted).
    pub submitted: u64,
    /// Tasks that finished running, panicked or not (also those handed
    /// back by `shutdown_now` and then run with [`Task::run`](crate::Task::run)).
    ///
    /// A spawned task counts here before its [`JoinHandle`](crate::JoinHandle)
    /// has the result: once `join` (or `try_join`, `is_finished`, `.await`)
    /// saw it, a later `stats()` includes the task. Every task counts here
    /// before [`Pool::wait_idle`](crate::Pool::wait_idle) sees it done. A
    /// `submit`ted task counts just after it returns, so a reader that saw
    /// something from inside it (a message it sent) may read this before it
    /// includes the task; `wait_idle` first, where that matters. In a pool
    /// with task hooks, a task counts after its `on_task_end` hook ran.
    pub completed: u64,
    /// Tasks [`Pool::shutdown_now`](crate::Pool::shutdown_now) handed back
    /// unrun and not run since.
    pub withdrawn: u64,
    /// Tasks cancelled through their handle
    /// ([`JoinHandle::cancel`](crate::JoinHandle::cancel), dropping a
    /// [`TaskSet`](crate::TaskSet)) before they started, and since dropped
    /// unrun by the pool. A cancelled task stays in the queue, counted in
    /// `queued`, until a worker reaches it and drops it without running it
    /// (or `shutdown_now` finds it); only then is it counted here. Never
    /// counted in `completed`. A task cancelled after `shutdown_now` handed
    /// it back stays counted in `withdrawn`.
    pub cancelled: u64,
    /// Tasks that panicked.
    pub panicked: u64,
    /// Times a worker took work from another worker's deque.
    pub stolen: u64,
    /// Submitters waiting for room in a full queue now.
    pub blocked_submitters: usize,
    /// Submits that had to wait for room.
    pub wait_count: u64,
    /// The total time submits spent waiting for room.
    pub wait_time: Duration,
    /// Submits refused (closed, full or timed out).
    pub rejected: u64,
    /// Tasks that could start at once: `capacity` minus the busy workers,
    /// never below zero (right after a shrink, workers above the new
    /// capacity may still finish tasks, so the busy workers may outnumber
    /// the capacity for a while).
    pub free_capacity: usize,
    /// Per-worker states alive now (a [`FuncPool`](crate::FuncPool) built
    /// with state; 0 for other pools). An expiring thread leaves
    /// `live_workers` a moment before it drops its state.
    pub live_states: usize,
    /// The summed time workers spent at work: from when a worker finds
    /// work until it parks again (its tasks, and the short search for more
    /// between tasks and before it parks; never the time it is parked).
    /// Grows while a task runs. Divided by the wall time, it is how many
    /// workers were busy on average.
    pub busy_time: Duration,
    /// How long tasks waited between submit and start; `None` unless the
    /// pool was built with
    /// [`Builder::measure_queue_delay`](crate::Builder::measure_queue_delay)`(true)`.
    pub queue_delay: Option<QueueDelay>,
    /// Hooks (`on_thread_start`, `on_task_end`, ...) that panicked. Each
    /// panic was contained: the worker and the task went on.
    pub hook_panics: u64,
    /// Workers that lent their slot because they are blocked: inside
    /// [`block_in_place`](crate::block_in_place), or seen busy and off the
    /// CPU by the autoscaler (see [`Autoscale`](crate::Autoscale)).
    /// `capacity` includes the slots they lent.
    pub blocked_workers: usize,
    /// Times the autoscaler moved the capacity for the queue delay (grows
    /// and shrinks; lent slots are counted in `blocked_workers` instead).
    pub autoscale_steps: u64,
}

/// What a worker is doing, from [`Pool::worker_stats`](crate::Pool::worker_stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum WorkerState {
    /// The slot has no thread (never started, or expired with keep-alive).
    NotStarted,
    /// Running a task.
    Busy,
    /// Awake without a task (looking for work).
    Idle,
    /// Parked for lack of work.
    Sleeping,
    /// Parked because its index is at or above the capacity.
    Suspended,
}

/// One worker's figures, from [`Pool::worker_stats`](crate::Pool::worker_stats).
///
/// ```
/// let pool = stealpool::Pool::builder().capacity(2).max_capacity(4).build().unwrap();
/// pool.submit(|| ()).unwrap();
/// pool.wait_idle();
/// let workers = pool.worker_stats(); // the slots that have or had a thread
/// assert!((1..=2).contains(&workers.len()));
/// assert_eq!(workers.iter().map(|w| w.tasks_run).sum::<u64>(), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct WorkerStats {
    /// The worker's index (its slot).
    pub index: usize,
    /// What it is doing now.
    pub state: WorkerState,
    /// Tasks it ran.
    pub tasks_run: u64,
    /// Time it spent at work (see [`Stats::busy_time`]).
    pub busy_time: Duration,
    /// Times it took work from another worker's deque.
    pub steals: u64,
    /// Times it parked (asleep or suspended).
    pub parks: u64,
    /// The id of the core its thread calls home (as `core_affinity` numbers
    /// cores), if the thread is pinned at all.
    pub home_core: Option<usize>,
    /// Whether the thread is on its home core now ([`Pinning::Adaptive`]
    /// lets it off while the core is busy with other work).
    ///
    /// [`Pinning::Adaptive`]: crate::Pinning::Adaptive
    pub pinned: bool,
    /// Times adaptive pinning let this slot's threads off their core.
    pub pin_releases: u64,
}
