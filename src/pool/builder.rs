//! The pool's configuration and how a pool is started.

use std::any::Any;
use std::fmt;
use std::time::Duration;

use crate::config::Autoscale;
use crate::config::{Config, Pinning, Settings};
use crate::error::BuildError;
use crate::hooks::WorkerHooks;
use crate::pool::Pool;
use crate::scheduler::{Placement, Shared, StartError};
use crate::sync::{Arc, StdArc};

/// Configures and starts a [`Pool`]. Every setter takes and returns the
/// builder by value.
///
/// # Examples
///
/// ```
/// let pool = stealpool::Pool::builder()
///     .capacity(4)
///     .thread_name(|i| format!("stealpool-{i}"))
///     .stack_size(2 << 20)
///     .pinning(stealpool::Pinning::Strict)
///     .panic_handler(|payload| eprintln!("task panicked: {payload:?}"))
///     .build()?;
/// pool.submit(|| println!("hello from the pool"))?;
/// pool.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
#[derive(Clone)]
pub struct Builder {
    settings: Settings,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("capacity", &self.settings.capacity)
            .field("max_capacity", &self.settings.max_capacity)
            .field("prealloc", &self.settings.prealloc)
            .field("min_workers", &self.settings.min_workers)
            .field("keep_alive", &self.settings.keep_alive)
            .field("queue_limit", &self.settings.queue_limit)
            .field("nonblocking", &self.settings.nonblocking)
            .field("max_blocked_submitters", &self.settings.max_blocked_submitters)
            .field("thread_name", &self.settings.thread_name.as_ref().map(|_| ".."))
            .field("stack_size", &self.settings.stack_size)
            .field("pinning", &self.settings.pinning)
            .field("pin_cores", &self.settings.pin_cores)
            .field("panic_handler", &self.settings.panic_handler.as_ref().map(|_| ".."))
            .field("hooks", &self.settings.user_hooks)
            .finish()
    }
}

impl Builder {
    /// A builder with the defaults: one worker per available core, threads
    /// named `stealpool-{i}`, the platform's stack size, workers pinned to
    /// cores, no panic handler (see [`Builder::panic_handler`]).
    ///
    /// ```
    /// let pool = stealpool::Builder::new().build().unwrap();
    /// assert!(pool.capacity() >= 1);
    /// ```
    pub fn new() -> Self {
        Builder {
            settings: Settings::default(),
        }
    }

    /// Installs per-worker hooks (a `FuncPool`'s state).
    pub(crate) fn hooks(mut self, hooks: StdArc<dyn WorkerHooks>) -> Self {
        self.settings.hooks = Some(hooks);
        self
    }

    /// Hides the pool from `Pool::current()` on its own workers.
    pub(crate) fn hidden(mut self) -> Self {
        self.settings.hidden = true;
        self
    }

    /// Lets the capacity follow the load by itself within the
    /// [`Autoscale`] bounds (see there); `capacity` is where it starts.
    /// Off by default. It can be turned on, changed or off later with
    /// [`Pool::set_autoscale`](crate::Pool::set_autoscale).
    ///
    /// `build` fails with [`BuildError::InvalidAutoscale`](crate::BuildError::InvalidAutoscale)
    /// unless `1 <= min <= max <= max_capacity`.
    ///
    /// ```
    /// use stealpool::{Autoscale, Pool};
    /// let pool = Pool::builder().capacity(2).max_capacity(32).autoscale(Autoscale::new(1, 32)).build()?;
    /// assert_eq!(pool.capacity(), 2);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn autoscale(mut self, autoscale: Autoscale) -> Self {
        self.settings.autoscale = Some(autoscale);
        self
    }

    /// The `max_capacity` this builder will build with, after validating
    /// every setting (for wrappers that size per-worker data first).
    pub(crate) fn configured_max_capacity(&self) -> Result<usize, BuildError> {
        self.clone().into_config().map(|config| config.max_capacity)
    }

    /// How many workers run tasks at once. Default: the number of cores this
    /// process may run on. `0` makes [`build`](Builder::build) fail with
    /// [`BuildError::ZeroCapacity`].
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(3).build().unwrap();
    /// assert_eq!(pool.capacity(), 3);
    /// ```
    pub fn capacity(mut self, workers: usize) -> Self {
        self.settings.capacity = Some(workers);
        self
    }

    /// The ceiling for [`Pool::tune`]. Default: `max(capacity, 256)`. Below
    /// the capacity, [`build`](Builder::build) fails with
    /// [`BuildError::MaxCapacityBelowCapacity`]. Slots above the current
    /// capacity cost about 600 bytes each (measured: counters, sleep state,
    /// parker; the deque is made with the slot's first thread) and no thread
    /// until used.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).max_capacity(8).build().unwrap();
    /// assert_eq!(pool.max_capacity(), 8);
    /// assert!(pool.tune(9).is_err());
    /// ```
    pub fn max_capacity(mut self, workers: usize) -> Self {
        self.settings.max_capacity = Some(workers);
        self
    }

    /// Start every worker thread (up to the capacity) in `build`, so the
    /// first tasks pay no thread start. Default: `false`, threads start on
    /// demand: a submit that finds no idle worker starts one, up to the
    /// capacity. Pre-allocated workers do not expire (the default
    /// [`min_workers`](Builder::min_workers) becomes the capacity), and
    /// [`Pool::tune`] works on them like on any other.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(3).prealloc(true).build().unwrap();
    /// assert_eq!(pool.stats().live_workers, 3);
    /// ```
    pub fn prealloc(mut self, prealloc: bool) -> Self {
        self.settings.prealloc = prealloc;
        self
    }

    /// The number of worker threads that never expire with
    /// [`keep_alive`](Builder::keep_alive). Default: 0 (with `prealloc`, the
    /// capacity). Above the capacity, [`build`](Builder::build) fails with
    /// [`BuildError::MinWorkersAboveCapacity`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = stealpool::Pool::builder()
    ///     .capacity(4)
    ///     .min_workers(1)
    ///     .keep_alive(Duration::from_secs(30))
    ///     .build()
    ///     .unwrap();
    /// # drop(pool);
    /// ```
    pub fn min_workers(mut self, workers: usize) -> Self {
        self.settings.min_workers = Some(workers);
        self
    }

    /// How long an idle worker thread waits for work before it exits (down
    /// to [`min_workers`](Builder::min_workers) threads). Threads come back on
    /// demand. Default: idle threads never exit. `Duration::ZERO` makes
    /// [`build`](Builder::build) fail with [`BuildError::ZeroKeepAlive`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = stealpool::Pool::builder().keep_alive(Duration::from_secs(60)).build().unwrap();
    /// # drop(pool);
    /// ```
    pub fn keep_alive(mut self, idle: Duration) -> Self {
        self.settings.keep_alive = Some(idle);
        self
    }

    /// Bounds the queue: at most `tasks + capacity` tasks submitted from
    /// outside the pool are accepted and unfinished (waiting or running) at
    /// any moment. So once every worker is busy at most `tasks` wait, and a
    /// burst into an idle pool fills the free workers first. The bound counts
    /// tasks *admitted for* a free worker, not tasks it already started: under
    /// load up to `tasks + capacity` may sit in the queue for an instant
    /// (the workers they were admitted for are on their way to them), which
    /// is also the most [`Pool::shutdown_now`] can hand back (plus tasks
    /// submitted from inside the pool, below). The capacity is read at each
    /// submit, so `tune` moves the bound with it.
    ///
    /// `queue_limit(0)` admits a task only if a worker is free for it (ants'
    /// rule): a submit to a pool whose workers are all busy blocks until one
    /// finishes (or, with [`nonblocking`](Builder::nonblocking), returns
    /// [`SubmitError::Full`](crate::SubmitError::Full) at once).
    ///
    /// When the queue is full, `submit` from outside the pool blocks until
    /// there is room (or, with [`nonblocking`](Builder::nonblocking), returns
    /// [`SubmitError::Full`](crate::SubmitError::Full) at once). Submits from
    /// inside the pool's own tasks never block and are never refused for
    /// room: they may go over the limit, since waiting there could deadlock
    /// the pool. Default: unbounded.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().queue_limit(10_000).build().unwrap();
    /// # drop(pool);
    /// ```
    pub fn queue_limit(mut self, tasks: usize) -> Self {
        self.settings.queue_limit = Some(tasks);
        self
    }

    /// With a [`queue_limit`](Builder::queue_limit): refuse with
    /// [`SubmitError::Full`](crate::SubmitError::Full) instead of blocking
    /// when the queue is full. Default: `false` (block). `true` without a
    /// `queue_limit` makes [`build`](Builder::build) fail with
    /// [`BuildError::NonblockingWithoutQueueLimit`] (an unbounded queue is
    /// never full).
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().queue_limit(100).nonblocking(true).build().unwrap();
    /// # drop(pool);
    /// ```
    pub fn nonblocking(mut self, nonblocking: bool) -> Self {
        self.settings.nonblocking = nonblocking;
        self
    }

    /// With a [`queue_limit`](Builder::queue_limit): at most `submitters`
    /// threads wait for room at once; the next one gets
    /// [`SubmitError::Full`](crate::SubmitError::Full) at once. Default:
    /// unlimited. Without a `queue_limit`, [`build`](Builder::build) fails
    /// with [`BuildError::MaxBlockedSubmittersWithoutQueueLimit`].
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().queue_limit(100).max_blocked_submitters(4).build().unwrap();
    /// # drop(pool);
    /// ```
    pub fn max_blocked_submitters(mut self, submitters: usize) -> Self {
        self.settings.max_blocked_submitters = Some(submitters);
        self
    }

    /// Strict start order for tasks submitted from outside the pool: `true`
    /// makes workers take one task at a time from the shared FIFO queue and
    /// start it at once, so when task *i* starts every earlier task has been
    /// taken, and at most `capacity - 1` of them (taken by other workers an
    /// instant before) have not started yet. Code that is deadlock-free on a
    /// FIFO pool (the first `capacity` tasks waiting for each other) is then
    /// deadlock-free here too.
    ///
    /// Default: `false`: a worker takes a batch (up to half the queue, at
    /// most 33 tasks) and runs it oldest first, which pays the queue's
    /// contended head once per batch. Tasks still start in submission order
    /// within the queue and within each batch, but the rest of a batch waits
    /// behind the task its worker runs while later tasks may start on other
    /// workers. On a 2-core machine strict order cost 2.4x on a million tiny
    /// tasks from one thread (`submit_1m` in the peer benchmarks).
    ///
    /// Tasks submitted from inside a task go to the worker's own deque and
    /// run newest first there either way; [`Pool::spawn_fifo`] and
    /// [`Pool::scope_fifo`] send them through the FIFO queue instead.
    ///
    /// ```
    /// use std::sync::{Arc, Barrier};
    ///
    /// // Four tasks that wait for each other, then one more: with strict
    /// // order the fifth can never take a worker the first four need.
    /// let pool = stealpool::Pool::builder().capacity(4).fifo(true).build()?;
    /// let barrier = Arc::new(Barrier::new(4));
    /// for _ in 0..4 {
    ///     let barrier = barrier.clone();
    ///     pool.submit(move || {
    ///         barrier.wait();
    ///     })?;
    /// }
    /// pool.submit(|| ())?;
    /// pool.wait_idle();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fifo(mut self, strict: bool) -> Self {
        self.settings.fifo = strict;
        self
    }

    /// Names worker `i`'s thread. Default: `stealpool-{i}`. A panic in the
    /// closure while [`build`](Builder::build) starts pre-allocated threads
    /// makes it fail with [`BuildError::ThreadNamePanicked`], and a name
    /// holding a NUL byte (which no OS thread can take) with
    /// [`BuildError::InvalidThreadName`]; for a thread started later (on
    /// demand, by `tune`, by `reboot`) the thread gets the default name
    /// instead and the pool reports it once (a `log` record with the default
    /// `log` feature, else a line on stderr), so no work waits for a thread
    /// that cannot start.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder()
    ///     .capacity(1)
    ///     .thread_name(|i| format!("io-{i}"))
    ///     .build()
    ///     .unwrap();
    /// let name = pool.spawn(|| std::thread::current().name().map(String::from)).unwrap();
    /// assert_eq!(name.join().unwrap().as_deref(), Some("io-0"));
    /// ```
    pub fn thread_name<F>(mut self, name: F) -> Self
    where
        F: Fn(usize) -> String + Send + Sync + 'static,
    {
        self.settings.thread_name = Some(StdArc::new(name));
        self
    }

    /// The stack size of each worker thread, in bytes. Default: the
    /// platform's (what `std::thread::Builder` uses).
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().stack_size(4 << 20).build().unwrap();
    /// # drop(pool);
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.settings.stack_size = Some(bytes);
        self
    }

    /// How workers are placed on cores. Default: [`Pinning::Adaptive`]:
    /// each worker is pinned to a home core (least used first across every
    /// pool of the process, so a second pool starts on the cores the first
    /// left free), and is let off it while its wake-ups show another process
    /// keeps that core busy, so pinning never makes the pool slower than not
    /// pinning. [`Pinning::Strict`] keeps every worker on its core whatever
    /// runs there; [`Pinning::Off`] leaves placement to the OS. Pinning is
    /// best effort: where the platform refuses it, workers run unpinned.
    ///
    /// ```
    /// use stealpool::{Pinning, Pool};
    /// let pool = Pool::builder().pinning(Pinning::Off).build()?;
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn pinning(mut self, pinning: Pinning) -> Self {
        self.settings.pinning = pinning;
        self
    }

    /// Shorthand: `true` is [`Pinning::Strict`], `false` is
    /// [`Pinning::Off`] (see [`Builder::pinning`]; the default is
    /// [`Pinning::Adaptive`]).
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().pin_workers(false).build().unwrap();
    /// # drop(pool);
    /// ```
    pub fn pin_workers(mut self, pin: bool) -> Self {
        self.settings.pinning = if pin { Pinning::Strict } else { Pinning::Off };
        self
    }

    /// Pins worker `i` to the `i mod n`-th of these cores, exactly, instead
    /// of cores handed out from all the process may run on; sets
    /// [`Pinning::Strict`] (call [`Builder::pinning`] afterwards with
    /// [`Pinning::Adaptive`] to let busy workers run on any of these cores).
    /// Each number is a position in the list of allowed cores
    /// (`0..available`); positions past its end are ignored, and if none is
    /// left the workers run unpinned. Use it to give pools their own core
    /// sets (a [`MultiPool`](crate::MultiPool) does with
    /// [`split_cores`](crate::MultiPoolBuilder::split_cores)).
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).pin_to_cores([0]).build().unwrap();
    /// # drop(pool);
    /// ```
    pub fn pin_to_cores(mut self, cores: impl IntoIterator<Item = usize>) -> Self {
        self.settings.pinning = Pinning::Strict;
        self.settings.pin_cores = Some(cores.into_iter().collect());
        self
    }

    /// What happens to the payload of a panicking `submit`ted task (and of
    /// a panicking hook). Default: std's panic hook has printed the panic;
    /// the pool reports that a task panicked through the `log` facade (the
    /// default `log` feature; without it a line on stderr once per pool) and
    /// drops the payload. The worker survives either way, and
    /// [`Stats::panicked`](crate::Stats::panicked) counts the panic. A
    /// handler that panics itself is caught too (and reported the same way).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let seen = Arc::new(AtomicUsize::new(0));
    /// let counter = seen.clone();
    /// let pool = stealpool::Pool::builder()
    ///     .panic_handler(move |_payload| {
    ///         counter.fetch_add(1, Ordering::SeqCst);
    ///     })
    ///     .build()
    ///     .unwrap();
    /// pool.submit(|| panic!("boom")).unwrap();
    /// pool.wait_idle();
    /// assert_eq!(seen.load(Ordering::SeqCst), 1);
    /// ```
    pub fn panic_handler<H>(mut self, handler: H) -> Self
    where
        H: Fn(Box<dyn Any + Send>) + Send + Sync + 'static,
    {
        self.settings.panic_handler = Some(StdArc::new(handler));
        self
    }

    /// Runs `hook` on each new worker thread, before its first task, with
    /// the worker's index (set a thread priority, register the thread with
    /// a profiler, fill thread-local caches). Called exactly once per thread
    /// the pool starts: at build with `prealloc`, on demand, when `tune`
    /// grows the pool or keep-alive brought a thread back, after `reboot`.
    ///
    /// A panic in the hook is contained (the thread goes on to run tasks),
    /// counted in [`Stats::hook_panics`](crate::Stats::hook_panics) and
    /// handed to the [panic handler](Builder::panic_handler), if there is one.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let started = Arc::new(AtomicUsize::new(0));
    /// let count = started.clone();
    /// let pool = stealpool::Pool::builder()
    ///     .capacity(2)
    ///     .prealloc(true)
    ///     .on_thread_start(move |_index| {
    ///         count.fetch_add(1, Ordering::Relaxed);
    ///     })
    ///     .build()?;
    /// pool.shutdown(); // waits for the threads: each has run its hook
    /// assert_eq!(started.load(Ordering::Relaxed), 2);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn on_thread_start<F>(mut self, hook: F) -> Self
    where
        F: Fn(usize) + Send + Sync + 'static,
    {
        self.settings.user_hooks.on_thread_start = Some(StdArc::new(hook));
        self
    }

    /// Runs `hook` on each worker thread as it stops, after its last task,
    /// with the worker's index (flush thread-local buffers). Called exactly
    /// once per thread that started, whatever ends it: keep-alive, a
    /// `tune` that shrank the pool followed by keep-alive, shutdown, reboot.
    /// Panics are contained as for [`on_thread_start`](Builder::on_thread_start).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let stopped = Arc::new(AtomicUsize::new(0));
    /// let count = stopped.clone();
    /// let pool = stealpool::Pool::builder()
    ///     .capacity(2)
    ///     .prealloc(true)
    ///     .on_thread_stop(move |_index| {
    ///         count.fetch_add(1, Ordering::Relaxed);
    ///     })
    ///     .build()?;
    /// pool.shutdown();
    /// assert_eq!(stopped.load(Ordering::Relaxed), 2);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn on_thread_stop<F>(mut self, hook: F) -> Self
    where
        F: Fn(usize) + Send + Sync + 'static,
    {
        self.settings.user_hooks.on_thread_stop = Some(StdArc::new(hook));
        self
    }

    /// Runs `hook` on the worker just before each task starts: every task
    /// counted in [`Stats::submitted`](crate::Stats::submitted) (`submit`,
    /// `spawn`, scope spawns, a `join` called from outside the pool as one
    /// task; the halves of a `join` inside a task are part of that task). The
    /// [`TaskEvent`](crate::TaskEvent) tells the worker and, with
    /// [`measure_queue_delay`](Builder::measure_queue_delay), how long the
    /// task waited. A pool with a task hook pays a few nanoseconds per task
    /// for it; a pool without pays nothing. Panics are contained as for
    /// [`on_thread_start`](Builder::on_thread_start): the task still runs.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let started = Arc::new(AtomicUsize::new(0));
    /// let count = started.clone();
    /// let pool = stealpool::Pool::builder()
    ///     .on_task_start(move |_event| {
    ///         count.fetch_add(1, Ordering::Relaxed);
    ///     })
    ///     .build()?;
    /// pool.submit(|| ())?;
    /// pool.wait_idle();
    /// assert_eq!(started.load(Ordering::Relaxed), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_task_start<F>(mut self, hook: F) -> Self
    where
        F: Fn(&crate::TaskEvent) + Send + Sync + 'static,
    {
        self.settings.user_hooks.on_task_start = Some(StdArc::new(hook));
        self
    }

    /// Runs `hook` on the worker right after each task ends, panicked or
    /// not, with how long it ran ([`TaskEvent::ran_for`](crate::TaskEvent::ran_for))
    /// and whether it panicked. The task counts as completed (for
    /// `wait_idle` and [`Stats::completed`](crate::Stats::completed)) only
    /// after the hook returned. Panics are contained as for
    /// [`on_thread_start`](Builder::on_thread_start).
    ///
    /// ```
    /// use std::sync::Mutex;
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let longest = Arc::new(Mutex::new(Duration::ZERO));
    /// let record = longest.clone();
    /// let pool = stealpool::Pool::builder()
    ///     .on_task_end(move |event| {
    ///         let mut longest = record.lock().unwrap();
    ///         *longest = (*longest).max(event.ran_for());
    ///     })
    ///     .build()?;
    /// pool.submit(|| std::thread::sleep(Duration::from_millis(2)))?;
    /// pool.wait_idle();
    /// assert!(*longest.lock().unwrap() >= Duration::from_millis(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_task_end<F>(mut self, hook: F) -> Self
    where
        F: Fn(&crate::TaskEvent) + Send + Sync + 'static,
    {
        self.settings.user_hooks.on_task_end = Some(StdArc::new(hook));
        self
    }

    /// Measures how long each task waits between its submit and its start
    /// (default `false`). Each submit then reads the clock once and wraps
    /// its task with the time (a small allocation); the figures appear in
    /// [`Stats::queue_delay`](crate::Stats::queue_delay) and
    /// [`TaskEvent::queued_for`](crate::TaskEvent::queued_for). Off, a
    /// submit pays one test of a flag.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().measure_queue_delay(true).build()?;
    /// pool.submit(|| ())?;
    /// pool.wait_idle();
    /// assert_eq!(pool.stats().queue_delay.map(|d| d.count), Some(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn measure_queue_delay(mut self, measure: bool) -> Self {
        self.settings.user_hooks.measure_queue_delay = measure;
        self
    }

    /// Builds the pool (and, with [`prealloc`](Builder::prealloc), starts its
    /// worker threads).
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroCapacity`] for `capacity(0)`, and the other
    /// [`BuildError`] variants for settings that contradict each other;
    /// with `prealloc`, [`BuildError::ThreadNamePanicked`] if the naming
    /// closure panics and [`BuildError::Spawn`] if the OS refuses a thread.
    /// On error no thread of the pool is left running.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).build()?;
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn build(self) -> Result<Pool, BuildError> {
        let config = self.into_config()?;
        let prealloc = config.prealloc;
        let placement = Placement::new(config.pinning, config.pin_cores.as_deref());
        let autoscale = config.autoscale;
        let shared = Arc::new(Shared::new(config));
        shared.set_placement(placement);
        if autoscale.is_some() {
            // Validated with the other settings: it cannot fail.
            let _ = Shared::set_autoscale(&shared, autoscale);
        }
        let pool = Pool::from_shared(shared.clone());
        if prealloc {
            let started = Shared::start_all(&shared, false);
            if let Err(error) = started {
                // Closes and joins whatever started.
                pool.shutdown();
                return Err(match error {
                    StartError::Spawn(error) => BuildError::Spawn(error),
                    StartError::NamePanicked(index) => BuildError::ThreadNamePanicked(index),
                    StartError::NameInvalid(index) => BuildError::InvalidThreadName(index),
                });
            }
        }
        Ok(pool)
    }

    /// Validates the settings.
    fn into_config(self) -> Result<Config, BuildError> {
        self.settings.validate()
    }
}
