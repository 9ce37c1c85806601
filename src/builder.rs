//! The pool's configuration and how a pool is started.

use std::any::Any;
use std::fmt;
use std::sync::Arc as StdArc;
use std::time::Duration;

use crate::error::BuildError;
use crate::hooks::WorkerHooks;
use crate::pinning::{Pinning, Placement};
use crate::pool::Pool;
use crate::registry::Shared;
use crate::sync::{lock, Arc};
use crate::threads::StartError;

pub(crate) type ThreadNameFn = dyn Fn(usize) -> String + Send + Sync;
pub(crate) type PanicHandlerFn = dyn Fn(Box<dyn Any + Send>) + Send + Sync;

/// The settings a pool runs with.
pub(crate) struct Config {
    /// The capacity at build (and the floor `reboot` does not change:
    /// reboot keeps the tuned capacity).
    pub(crate) capacity: usize,
    pub(crate) max_capacity: usize,
    pub(crate) thread_name: Option<StdArc<ThreadNameFn>>,
    pub(crate) stack_size: Option<usize>,
    pub(crate) pinning: Pinning,
    /// The cores to pin to (indices into the cores this process may run
    /// on), if not all of them.
    pub(crate) pin_cores: Option<Vec<usize>>,
    pub(crate) panic_handler: Option<StdArc<PanicHandlerFn>>,
    pub(crate) prealloc: bool,
    pub(crate) min_workers: usize,
    pub(crate) keep_alive: Option<Duration>,
    pub(crate) queue_limit: Option<usize>,
    pub(crate) nonblocking: bool,
    pub(crate) max_blocked_submitters: Option<usize>,
    /// Per-worker hooks (a `FuncPool`'s per-worker state).
    pub(crate) hooks: Option<StdArc<dyn WorkerHooks>>,
    /// `Pool::current()` returns `None` on this pool's workers (a
    /// `FuncPool`'s inner pool is not handed out).
    pub(crate) hidden: bool,
}

/// The default ceiling for `tune`: generous, and never below the capacity.
const DEFAULT_MAX_CAPACITY: usize = 256;

/// The most worker slots a pool may have: every slot is allocated at build
/// (about 600 bytes each, 39 MiB at this bound), and the idle counts are
/// packed into 32-bit halves of one word. Far beyond what threads on one
/// machine can use.
pub(crate) const MAX_WORKERS: usize = 1 << 16;

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
    capacity: Option<usize>,
    max_capacity: Option<usize>,
    thread_name: Option<StdArc<ThreadNameFn>>,
    stack_size: Option<usize>,
    pinning: Pinning,
    pin_cores: Option<Vec<usize>>,
    panic_handler: Option<StdArc<PanicHandlerFn>>,
    prealloc: bool,
    min_workers: Option<usize>,
    keep_alive: Option<Duration>,
    queue_limit: Option<usize>,
    nonblocking: bool,
    max_blocked_submitters: Option<usize>,
    hooks: Option<StdArc<dyn WorkerHooks>>,
    hidden: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("capacity", &self.capacity)
            .field("max_capacity", &self.max_capacity)
            .field("prealloc", &self.prealloc)
            .field("min_workers", &self.min_workers)
            .field("keep_alive", &self.keep_alive)
            .field("queue_limit", &self.queue_limit)
            .field("nonblocking", &self.nonblocking)
            .field("max_blocked_submitters", &self.max_blocked_submitters)
            .field("thread_name", &self.thread_name.as_ref().map(|_| ".."))
            .field("stack_size", &self.stack_size)
            .field("pinning", &self.pinning)
            .field("pin_cores", &self.pin_cores)
            .field("panic_handler", &self.panic_handler.as_ref().map(|_| ".."))
            .finish()
    }
}

impl Builder {
    /// A builder with the defaults: one worker per available core, threads
    /// named `stealpool-{i}`, the platform's stack size, workers pinned to
    /// cores, panics printed to stderr.
    ///
    /// ```
    /// let pool = stealpool::Builder::new().build().unwrap();
    /// assert!(pool.capacity() >= 1);
    /// ```
    pub fn new() -> Self {
        Builder {
            capacity: None,
            max_capacity: None,
            thread_name: None,
            stack_size: None,
            pinning: Pinning::Adaptive,
            pin_cores: None,
            panic_handler: None,
            prealloc: false,
            min_workers: None,
            keep_alive: None,
            queue_limit: None,
            nonblocking: false,
            max_blocked_submitters: None,
            hooks: None,
            hidden: false,
        }
    }

    /// Installs per-worker hooks (a `FuncPool`'s state).
    pub(crate) fn hooks(mut self, hooks: StdArc<dyn WorkerHooks>) -> Self {
        self.hooks = Some(hooks);
        self
    }

    /// Hides the pool from `Pool::current()` on its own workers.
    pub(crate) fn hidden(mut self) -> Self {
        self.hidden = true;
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
        self.capacity = Some(workers);
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
        self.max_capacity = Some(workers);
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
        self.prealloc = prealloc;
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
        self.min_workers = Some(workers);
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
        self.keep_alive = Some(idle);
        self
    }

    /// At most `tasks` accepted tasks wait for a worker: the pool holds at
    /// most `tasks + capacity` tasks, waiting or running, so a burst into an
    /// idle pool fills the free workers first. When the queue is full,
    /// `submit` from outside the pool blocks until there is room (or, with
    /// [`nonblocking`](Builder::nonblocking), returns
    /// [`SubmitError::Full`](crate::SubmitError::Full) at once). Submits from
    /// inside the pool's own tasks never block and are never refused for
    /// room: they may go over the limit, since waiting there could deadlock
    /// the pool. Default: unbounded. `0` makes [`build`](Builder::build) fail
    /// with [`BuildError::ZeroQueueLimit`].
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().queue_limit(10_000).build().unwrap();
    /// # drop(pool);
    /// ```
    pub fn queue_limit(mut self, tasks: usize) -> Self {
        self.queue_limit = Some(tasks);
        self
    }

    /// With a [`queue_limit`](Builder::queue_limit): refuse with
    /// [`SubmitError::Full`](crate::SubmitError::Full) instead of blocking
    /// when the queue is full. Default: `false` (block).
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().queue_limit(100).nonblocking(true).build().unwrap();
    /// # drop(pool);
    /// ```
    pub fn nonblocking(mut self, nonblocking: bool) -> Self {
        self.nonblocking = nonblocking;
        self
    }

    /// With a [`queue_limit`](Builder::queue_limit): at most `submitters`
    /// threads wait for room at once; the next one gets
    /// [`SubmitError::Full`](crate::SubmitError::Full) at once. Default:
    /// unlimited.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().queue_limit(100).max_blocked_submitters(4).build().unwrap();
    /// # drop(pool);
    /// ```
    pub fn max_blocked_submitters(mut self, submitters: usize) -> Self {
        self.max_blocked_submitters = Some(submitters);
        self
    }

    /// Names worker `i`'s thread. Default: `stealpool-{i}`. A panic in the
    /// closure while [`build`](Builder::build) starts pre-allocated threads
    /// makes it fail with [`BuildError::ThreadNamePanicked`], and a name
    /// holding a NUL byte (which no OS thread can take) with
    /// [`BuildError::InvalidThreadName`]; for a thread started later (on
    /// demand, by `tune`, by `reboot`) the thread gets the default name
    /// instead and a message goes to stderr (once per pool), so no work waits
    /// for a thread that cannot start.
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
        self.thread_name = Some(StdArc::new(name));
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
        self.stack_size = Some(bytes);
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
        self.pinning = pinning;
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
        self.pinning = if pin { Pinning::Strict } else { Pinning::Off };
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
        self.pinning = Pinning::Strict;
        self.pin_cores = Some(cores.into_iter().collect());
        self
    }

    /// What happens to the payload of a panicking `submit`ted task. Default:
    /// print it to stderr. The worker survives either way, and
    /// [`Stats::panicked`](crate::Stats::panicked) counts the panic. A
    /// handler that panics itself is caught too (and reported on stderr).
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
        self.panic_handler = Some(StdArc::new(handler));
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
        let shared = Arc::new(Shared::new(config));
        shared.set_placement(placement);
        let pool = Pool::from_shared(shared.clone());
        if prealloc {
            let mut control = lock(&shared.control);
            let started = Shared::start_all_locked(&shared, &mut control, false);
            drop(control);
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
        let capacity = self.capacity.unwrap_or_else(num_cpus::get);
        if capacity == 0 {
            return Err(BuildError::ZeroCapacity);
        }
        for requested in [Some(capacity), self.max_capacity].into_iter().flatten() {
            if requested > MAX_WORKERS {
                return Err(BuildError::CapacityTooLarge {
                    requested,
                    max: MAX_WORKERS,
                });
            }
        }
        let max_capacity = self.max_capacity.unwrap_or(capacity.max(DEFAULT_MAX_CAPACITY));
        if max_capacity < capacity {
            return Err(BuildError::MaxCapacityBelowCapacity { capacity, max_capacity });
        }
        let min_workers = self.min_workers.unwrap_or(if self.prealloc { capacity } else { 0 });
        if min_workers > capacity {
            return Err(BuildError::MinWorkersAboveCapacity { min_workers, capacity });
        }
        if self.keep_alive == Some(Duration::ZERO) {
            return Err(BuildError::ZeroKeepAlive);
        }
        if self.queue_limit == Some(0) {
            return Err(BuildError::ZeroQueueLimit);
        }
        Ok(Config {
            capacity,
            max_capacity,
            thread_name: self.thread_name,
            stack_size: self.stack_size,
            pinning: self.pinning,
            pin_cores: self.pin_cores,
            panic_handler: self.panic_handler,
            prealloc: self.prealloc,
            min_workers,
            keep_alive: self.keep_alive,
            queue_limit: self.queue_limit,
            nonblocking: self.nonblocking,
            max_blocked_submitters: self.max_blocked_submitters,
            hooks: self.hooks,
            hidden: self.hidden,
        })
    }
}
