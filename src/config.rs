//! A pool's settings: what a `Builder` collects (`Settings`), how it is
//! checked, and what a running pool keeps (`Config`); and the two public
//! settings types, `Pinning` and `Autoscale`.

use std::any::Any;
use std::time::Duration;

use crate::error::BuildError;
use crate::hooks::WorkerHooks;
use crate::observe::report::Reporter;
use crate::observe::user_hooks::{TaskObserver, ThreadHooks, UserHooks};
use crate::sync::StdArc;

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
    /// Workers take one task at a time from the injector (strict start
    /// order) instead of batches.
    pub(crate) fifo: bool,
    /// Per-worker hooks (a `FuncPool`'s per-worker state).
    pub(crate) hooks: Option<StdArc<dyn WorkerHooks>>,
    /// `Pool::current()` returns `None` on this pool's workers (a
    /// `FuncPool`'s inner pool is not handed out).
    pub(crate) hidden: bool,
    /// The user's `on_thread_start` / `on_thread_stop`.
    pub(crate) thread_hooks: ThreadHooks,
    /// Task hooks and the queue-delay window; `None` (the run path takes no
    /// detour) unless one is set.
    pub(crate) task_observer: Option<Box<TaskObserver>>,
    /// Whether submits stamp their tasks with the time (one clock read).
    pub(crate) measure_queue_delay: bool,
    /// Where the pool's messages go (see `observe/report.rs`).
    pub(crate) reporter: Reporter,
    /// The autoscaler's settings at build, if any.
    pub(crate) autoscale: Option<Autoscale>,
}

/// The default ceiling for `tune`: generous, and never below the capacity.
const DEFAULT_MAX_CAPACITY: usize = 256;

/// The most worker slots a pool may have: every slot is allocated at build
/// (about 600 bytes each, 39 MiB at this bound), and the idle counts are
/// packed into 32-bit halves of one word. Far beyond what threads on one
/// machine can use.
const MAX_WORKERS: usize = 1 << 16;

/// How a pool places its worker threads on cores (see
/// [`Builder::pinning`](crate::Builder::pinning)).
///
/// ```
/// use stealpool::{Pinning, Pool};
/// let pool = Pool::builder().capacity(2).pinning(Pinning::Strict).build()?;
/// # Ok::<(), stealpool::BuildError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Pinning {
    /// The default. Each worker is pinned to a home core (handed out least
    /// used first across every pool in the process), and is let off it while
    /// its wake-ups show the core is busy with other work: then it may run
    /// on the pool's other cores, and it tries its home core again later.
    /// On platforms without thread affinity masks (anything but Linux and
    /// Android) the workers run unpinned, as with [`Pinning::Off`].
    #[default]
    Adaptive,
    /// Each worker stays on its home core whatever else runs there (where
    /// the platform allows pinning at all).
    Strict,
    /// Workers are not pinned; the OS places them.
    Off,
}

/// Capacity that follows the load by itself (see
/// [`Builder::autoscale`](crate::Builder::autoscale) and
/// [`Pool::set_autoscale`](crate::Pool::set_autoscale)).
///
/// A monitor thread (one per pool, parked while the pool is idle) watches
/// the workers and moves the capacity within `min..=max`:
///
/// * **Blocked workers lend their slot** (`detect_blocking`, on by
///   default). A worker busy for longer than a short grace period whose
///   thread's CPU clock stood still meanwhile (Linux; elsewhere: a worker
///   that finished nothing for the grace period) is blocked on I/O, a lock
///   or a sleep. While tasks wait and a core is idle, its slot is lent to
///   another worker, as [`block_in_place`](crate::block_in_place) does, and
///   taken back as soon as it runs again.
/// * **Queue delay grows the capacity.** When queued tasks wait longer than
///   `target_queue_delay` (estimated from the queue length and the rate at
///   which tasks finish) *and* a core of the machine is idle, the capacity
///   grows by half. A backlog of computing tasks on a busy machine gains
///   nothing from more threads, so it does not grow then.
/// * **It shrinks back after the load ebbs**, halving toward the starting
///   point after each 100 ms without queue delay (hysteresis: a grow is
///   never undone within 100 ms, so it does not oscillate).
///
/// The starting point is the built capacity, or the last
/// [`Pool::tune`](crate::Pool::tune), clamped into `min..=max`; a `tune`
/// while the autoscaler is on is clamped the same way at once (the
/// capacity never leaves `min..=max` but for slots lent to workers blocked
/// in [`block_in_place`](crate::block_in_place)).
/// Turned off ([`Pool::set_autoscale(None)`](crate::Pool::set_autoscale)),
/// the capacity goes back to the base the autoscaler last held: the slots
/// it lent to blocked workers go back as those workers return.
/// [`Stats::capacity`](crate::Stats::capacity) is the live value,
/// [`Stats::blocked_workers`](crate::Stats::blocked_workers) counts the
/// lent slots and [`Stats::autoscale_steps`](crate::Stats::autoscale_steps)
/// the moves of the queue-delay rule.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use stealpool::{Autoscale, Pool};
///
/// let pool = Pool::builder()
///     .capacity(2)
///     .max_capacity(64)
///     .autoscale(
///         Autoscale::new(1, 64)
///             .target_queue_delay(Duration::from_millis(2))
///             .detect_blocking(true),
///     )
///     .build()?;
/// for _ in 0..64 {
///     pool.submit(|| std::thread::sleep(Duration::from_millis(1)))?;
/// }
/// pool.wait_idle();
/// assert!(pool.capacity() <= 64);
/// pool.set_autoscale(None)?; // back to the base it last held, at most 64
/// assert!(pool.capacity() <= 64);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Autoscale {
    pub(crate) min: usize,
    pub(crate) max: usize,
    pub(crate) target_queue_delay: Duration,
    pub(crate) detect_blocking: bool,
}

impl Autoscale {
    /// Capacity moves within `min..=max` by itself. `min` must be at least
    /// 1, `max` at least `min` and at most the pool's `max_capacity`
    /// (checked when the pool is built or the setting applied).
    ///
    /// ```
    /// let scale = stealpool::Autoscale::new(1, 16);
    /// assert_eq!((scale.min(), scale.max()), (1, 16));
    /// ```
    pub fn new(min: usize, max: usize) -> Self {
        Autoscale {
            min,
            max,
            target_queue_delay: Duration::from_millis(2),
            detect_blocking: true,
        }
    }

    /// Grow when queued tasks wait longer than `delay` and a core is idle
    /// (default 2 ms).
    ///
    /// ```
    /// use std::time::Duration;
    /// let scale = stealpool::Autoscale::new(1, 16).target_queue_delay(Duration::from_millis(5));
    /// assert_eq!(scale.get_target_queue_delay(), Duration::from_millis(5));
    /// ```
    pub fn target_queue_delay(mut self, delay: Duration) -> Self {
        self.target_queue_delay = delay;
        self
    }

    /// Whether a busy worker that is off the CPU lends its slot (default
    /// true).
    ///
    /// ```
    /// let scale = stealpool::Autoscale::new(1, 16).detect_blocking(false);
    /// assert!(!scale.get_detect_blocking());
    /// ```
    pub fn detect_blocking(mut self, detect: bool) -> Self {
        self.detect_blocking = detect;
        self
    }

    /// The lowest capacity it moves to.
    ///
    /// ```
    /// assert_eq!(stealpool::Autoscale::new(2, 8).min(), 2);
    /// ```
    pub fn min(&self) -> usize {
        self.min
    }

    /// The highest capacity it moves to (lent slots included).
    ///
    /// ```
    /// assert_eq!(stealpool::Autoscale::new(2, 8).max(), 8);
    /// ```
    pub fn max(&self) -> usize {
        self.max
    }

    /// The queue delay above which it grows (set with
    /// [`target_queue_delay`](Self::target_queue_delay); the `get_` prefix
    /// because the setter has the plain name, as in `std::process::Command`).
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(stealpool::Autoscale::new(1, 4).get_target_queue_delay(), Duration::from_millis(2));
    /// ```
    pub fn get_target_queue_delay(&self) -> Duration {
        self.target_queue_delay
    }

    /// Whether blocked workers lend their slot (set with
    /// [`detect_blocking`](Self::detect_blocking)).
    ///
    /// ```
    /// assert!(stealpool::Autoscale::new(1, 4).get_detect_blocking());
    /// ```
    pub fn get_detect_blocking(&self) -> bool {
        self.detect_blocking
    }

    /// Whether these bounds fit a pool with `max_capacity` slots.
    pub(crate) fn fits(&self, max_capacity: usize) -> bool {
        self.min >= 1 && self.min <= self.max && self.max <= max_capacity
    }

    /// `capacity` moved into `min..=max`.
    pub(crate) fn clamp(&self, capacity: usize) -> usize {
        capacity.clamp(self.min, self.max)
    }
}

/// What a `Builder` has been told, unchecked.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) capacity: Option<usize>,
    pub(crate) max_capacity: Option<usize>,
    pub(crate) thread_name: Option<StdArc<ThreadNameFn>>,
    pub(crate) stack_size: Option<usize>,
    pub(crate) pinning: Pinning,
    pub(crate) pin_cores: Option<Vec<usize>>,
    pub(crate) panic_handler: Option<StdArc<PanicHandlerFn>>,
    pub(crate) prealloc: bool,
    pub(crate) min_workers: Option<usize>,
    pub(crate) keep_alive: Option<Duration>,
    pub(crate) queue_limit: Option<usize>,
    pub(crate) nonblocking: bool,
    pub(crate) max_blocked_submitters: Option<usize>,
    pub(crate) fifo: bool,
    pub(crate) hooks: Option<StdArc<dyn WorkerHooks>>,
    pub(crate) hidden: bool,
    /// Thread and task hooks, queue-delay measuring.
    pub(crate) user_hooks: UserHooks,
    pub(crate) autoscale: Option<Autoscale>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
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
            fifo: false,
            hooks: None,
            hidden: false,
            user_hooks: UserHooks::default(),
            autoscale: None,
        }
    }
}

impl Settings {
    /// Checks every setting and fills in the defaults.
    pub(crate) fn validate(self) -> Result<Config, BuildError> {
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
        // The two settings that shape waiting for room mean nothing without
        // a queue limit: refuse them rather than ignore them.
        if self.queue_limit.is_none() {
            if self.nonblocking {
                return Err(BuildError::NonblockingWithoutQueueLimit);
            }
            if let Some(submitters) = self.max_blocked_submitters {
                return Err(BuildError::MaxBlockedSubmittersWithoutQueueLimit { submitters });
            }
        }
        let measure_queue_delay = self.user_hooks.measure_queue_delay;
        let (thread_hooks, task_observer) = self.user_hooks.into_parts(max_capacity);
        if let Some(scale) = self.autoscale.filter(|scale| !scale.fits(max_capacity)) {
            return Err(BuildError::InvalidAutoscale {
                min: scale.min,
                max: scale.max,
                max_capacity,
            });
        }
        Ok(Config {
            thread_hooks,
            task_observer,
            measure_queue_delay,
            reporter: Reporter::default(),
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
            fifo: self.fifo,
            hooks: self.hooks,
            hidden: self.hidden,
            autoscale: self.autoscale,
        })
    }
}
