//! The errors the pool hands back.

use std::fmt;

/// A task the pool refused, handed back to the caller with the reason.
///
/// Nothing submitted is ever silently dropped: every refusal returns the very
/// closure (or argument) that was refused, available through
/// [`SubmitError::into_inner`].
///
/// `Debug` does not require `F: Debug`, so `unwrap` and `expect` work on
/// any closure. The error is `Send + Sync + 'static` whatever the closure
/// is (given `F: Send + 'static`), so `?` turns it into
/// `Box<dyn Error + Send + Sync>` or an `anyhow::Error`: the closure sits
/// in a [`Refused`], which gives it out only by value, never behind a
/// shared reference. [`SubmitError::kind`] reads the reason alone.
///
/// # Examples
///
/// ```
/// use stealpool::{Pool, SubmitError};
///
/// let pool = Pool::builder().capacity(1).build().unwrap();
/// pool.shutdown();
/// let (tx, rx) = std::sync::mpsc::channel();
/// match pool.submit(move || tx.send(7).unwrap()) {
///     Err(SubmitError::Closed(task)) => task.into_inner()(), // the closure comes back; run it here
///     _ => unreachable!(),
/// }
/// assert_eq!(rx.recv().unwrap(), 7);
/// ```
pub enum SubmitError<F> {
    /// The pool is shut down (or shutting down) and takes no new work.
    Closed(Refused<F>),
    /// The queue is full and the pool does not block
    /// ([`Builder::nonblocking`](crate::Builder::nonblocking)), or too many
    /// submitters already wait
    /// ([`Builder::max_blocked_submitters`](crate::Builder::max_blocked_submitters)).
    Full(Refused<F>),
    /// No room opened in the queue within the given time.
    Timeout(Refused<F>),
}

impl<F> SubmitError<F> {
    /// The refused closure.
    ///
    /// ```
    /// # let pool = stealpool::Pool::builder().capacity(1).build().unwrap();
    /// pool.shutdown();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let task = pool.submit(move || tx.send("ran").unwrap()).unwrap_err().into_inner();
    /// task();
    /// assert_eq!(rx.recv().unwrap(), "ran");
    /// ```
    pub fn into_inner(self) -> F {
        match self {
            SubmitError::Closed(f) | SubmitError::Full(f) | SubmitError::Timeout(f) => f.into_inner(),
        }
    }

    /// Whether the pool was closed.
    ///
    /// ```
    /// # let pool = stealpool::Pool::builder().capacity(1).build().unwrap();
    /// pool.shutdown();
    /// assert!(pool.submit(|| ()).unwrap_err().is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, SubmitError::Closed(_))
    }

    /// Whether the queue was full.
    ///
    /// ```
    /// # let pool = stealpool::Pool::builder().capacity(1).build().unwrap();
    /// pool.shutdown();
    /// assert!(!pool.submit(|| ()).unwrap_err().is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, SubmitError::Full(_))
    }

    /// Whether waiting for room timed out.
    ///
    /// ```
    /// # let pool = stealpool::Pool::builder().capacity(1).build().unwrap();
    /// pool.shutdown();
    /// assert!(!pool.submit(|| ()).unwrap_err().is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, SubmitError::Timeout(_))
    }

    /// Why the task was refused, without the task: a `Copy` error that is
    /// `Send + Sync + 'static` whatever the closure is.
    ///
    /// ```
    /// use stealpool::SubmitErrorKind;
    /// # let pool = stealpool::Pool::builder().capacity(1).build().unwrap();
    /// pool.shutdown();
    /// let error = pool.submit(|| ()).unwrap_err();
    /// assert_eq!(error.kind(), SubmitErrorKind::Closed);
    /// let task = error.into_inner(); // the closure is still there
    /// # drop(task);
    /// ```
    pub fn kind(&self) -> SubmitErrorKind {
        match self {
            SubmitError::Closed(_) => SubmitErrorKind::Closed,
            SubmitError::Full(_) => SubmitErrorKind::Full,
            SubmitError::Timeout(_) => SubmitErrorKind::Timeout,
        }
    }

    /// Why the task was refused, dropping the refused closure (or
    /// argument): a `Copy` error, for code that does not want the closure
    /// back.
    ///
    /// ```
    /// fn start(pool: &stealpool::Pool) -> Result<(), stealpool::SubmitErrorKind> {
    ///     pool.submit(|| ()).map_err(stealpool::SubmitError::into_kind)?;
    ///     Ok(())
    /// }
    /// let pool = stealpool::Pool::builder().capacity(1).build().unwrap();
    /// start(&pool).unwrap();
    /// pool.shutdown();
    /// assert_eq!(start(&pool).unwrap_err().to_string(), "task refused: the pool is shut down");
    /// ```
    pub fn into_kind(self) -> SubmitErrorKind {
        self.kind()
    }

    fn reason(&self) -> &'static str {
        self.kind().reason()
    }
}

/// The closure (or argument) a refused submit hands back, inside a
/// [`SubmitError`].
///
/// It gives its content out only by value ([`Refused::into_inner`]) or
/// through an exclusive borrow ([`Refused::get_mut`]), never behind a
/// shared reference. That is what lets `Refused<F>`, and so
/// `SubmitError<F>`, be `Sync` for any `F`: a refused closure that is
/// `Send` but not `Sync` (one that captured a `Cell`, say) still converts
/// with `?` into `Box<dyn Error + Send + Sync>` or `anyhow::Error`.
///
/// ```
/// use std::cell::Cell;
/// use std::error::Error;
///
/// fn start(pool: &stealpool::Pool) -> Result<(), Box<dyn Error + Send + Sync>> {
///     let not_sync = Cell::new(1); // Send, not Sync
///     pool.submit(move || not_sync.set(2))?; // the error is Sync anyway
///     Ok(())
/// }
/// let pool = stealpool::Pool::builder().capacity(1).build().unwrap();
/// start(&pool).unwrap();
/// pool.shutdown();
/// assert_eq!(start(&pool).unwrap_err().to_string(), "task refused: the pool is shut down");
///
/// // Matching on the reason and taking the closure back:
/// match pool.spawn(|| 7) {
///     Err(stealpool::SubmitError::Closed(task)) => assert_eq!(task.into_inner()(), 7),
///     _ => unreachable!(),
/// }
/// ```
pub struct Refused<F>(F);

impl<F> Refused<F> {
    /// Wraps a value (for code that builds a [`SubmitError`] itself, such
    /// as a test double of a pool).
    ///
    /// ```
    /// use stealpool::{Refused, SubmitError};
    /// let error = SubmitError::Full(Refused::new(5));
    /// assert_eq!(error.into_inner(), 5);
    /// ```
    pub fn new(value: F) -> Self {
        Refused(value)
    }

    /// The refused closure (or argument).
    ///
    /// ```
    /// let value = stealpool::Refused::new("task");
    /// assert_eq!(value.into_inner(), "task");
    /// ```
    pub fn into_inner(self) -> F {
        self.0
    }

    /// The refused closure (or argument), borrowed exclusively.
    ///
    /// ```
    /// let mut value = stealpool::Refused::new(vec![1]);
    /// value.get_mut().push(2);
    /// assert_eq!(value.into_inner(), [1, 2]);
    /// ```
    pub fn get_mut(&mut self) -> &mut F {
        &mut self.0
    }
}

// SAFETY: `Sync` lets threads share `&Refused<F>`. Nothing reachable from a
// shared reference touches the content: the field is private, no `&self`
// method exists, `Debug` prints no content, and the value leaves only by
// value (`into_inner`) or through `&mut self` (`get_mut`), which no other
// thread can hold at the same time. Sharing `&Refused<F>` therefore never
// shares an `F`, whatever `F` is (as `std::sync::Exclusive`).
unsafe impl<F> Sync for Refused<F> {}

impl<F> fmt::Debug for Refused<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Refused(..)")
    }
}

/// Why a task was refused, without the task (see [`SubmitError::kind`]).
///
/// `Copy`, `Send`, `Sync` and `'static`: an error without the closure's
/// type parameter.
///
/// ```
/// use stealpool::{SubmitError, SubmitErrorKind};
///
/// let pool = stealpool::Pool::builder().capacity(1).build().unwrap();
/// pool.shutdown();
/// let kind: SubmitErrorKind = pool.submit(|| ()).unwrap_err().into();
/// assert_eq!(kind, SubmitErrorKind::Closed);
/// assert_eq!(kind.to_string(), "task refused: the pool is shut down");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SubmitErrorKind {
    /// As [`SubmitError::Closed`].
    Closed,
    /// As [`SubmitError::Full`].
    Full,
    /// As [`SubmitError::Timeout`].
    Timeout,
}

impl SubmitErrorKind {
    fn reason(self) -> &'static str {
        match self {
            SubmitErrorKind::Closed => "the pool is shut down",
            SubmitErrorKind::Full => "the pool's queue is full",
            SubmitErrorKind::Timeout => "timed out waiting for room in the pool's queue",
        }
    }
}

impl fmt::Display for SubmitErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task refused: {}", self.reason())
    }
}

impl std::error::Error for SubmitErrorKind {}

impl<F> From<SubmitError<F>> for SubmitErrorKind {
    fn from(error: SubmitError<F>) -> Self {
        error.into_kind()
    }
}

impl<F> fmt::Debug for SubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let variant = match self {
            SubmitError::Closed(_) => "Closed",
            SubmitError::Full(_) => "Full",
            SubmitError::Timeout(_) => "Timeout",
        };
        f.debug_tuple(variant).field(&format_args!("..")).finish()
    }
}

impl<F> fmt::Display for SubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task refused: {}", self.reason())
    }
}

impl<F> std::error::Error for SubmitError<F> {}

/// Why [`Builder::build`](crate::Builder::build) failed.
///
/// # Examples
///
/// ```
/// use stealpool::{BuildError, Pool};
///
/// let error = Pool::builder().capacity(0).build().unwrap_err();
/// assert!(matches!(error, BuildError::ZeroCapacity));
/// println!("{error}"); // "capacity must be at least 1"
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// `capacity(0)`: a pool needs at least one worker.
    ZeroCapacity,
    /// The operating system refused to start a worker thread.
    Spawn(std::io::Error),
    /// The `thread_name` closure panicked (for the given worker index).
    ThreadNamePanicked(usize),
    /// The `thread_name` closure returned a name the operating system cannot
    /// take (it holds a NUL byte), for the given worker index.
    InvalidThreadName(usize),
    /// `max_capacity` is below `capacity`.
    MaxCapacityBelowCapacity {
        /// The requested capacity.
        capacity: usize,
        /// The requested ceiling.
        max_capacity: usize,
    },
    /// The [`Autoscale`](crate::Autoscale) bounds do not fit: `min` must be
    /// at least 1, `max` at least `min` and at most `max_capacity`.
    InvalidAutoscale {
        /// The autoscaler's lowest capacity.
        min: usize,
        /// The autoscaler's highest capacity.
        max: usize,
        /// The pool's ceiling.
        max_capacity: usize,
    },
    /// `min_workers` is above `capacity`.
    MinWorkersAboveCapacity {
        /// The requested floor.
        min_workers: usize,
        /// The requested capacity.
        capacity: usize,
    },
    /// `keep_alive(Duration::ZERO)`: a worker would expire the moment it
    /// idles.
    ZeroKeepAlive,
    /// `nonblocking(true)` without a `queue_limit`: an unbounded queue is
    /// never full, so the setting would be silently ignored.
    NonblockingWithoutQueueLimit,
    /// `max_blocked_submitters(k)` without a `queue_limit`: nobody ever
    /// waits for room in an unbounded queue, so the setting would be
    /// silently ignored.
    MaxBlockedSubmittersWithoutQueueLimit {
        /// The requested bound.
        submitters: usize,
    },
    /// `capacity` or `max_capacity` above the most worker slots a pool may
    /// have (65,536: slots are allocated at build).
    CapacityTooLarge {
        /// The requested capacity or ceiling.
        requested: usize,
        /// The bound.
        max: usize,
    },
    /// [`MultiPoolBuilder::pools(0)`](crate::MultiPoolBuilder::pools): a
    /// multi-pool needs at least one sub-pool.
    ZeroPools,
    /// A `FuncPool` health check set, but the pool built without state
    /// (`build` instead of `build_with_state`).
    HealthCheckWithoutState,
    /// The `FuncPool` health check takes another state type than the one
    /// `build_with_state`'s factory makes.
    HealthCheckStateMismatch,
    /// A `FuncPool` health check every `Duration::ZERO`: idle workers would
    /// never rest.
    ZeroHealthCheckInterval,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroCapacity => write!(f, "capacity must be at least 1"),
            BuildError::CapacityTooLarge { requested, max } => {
                write!(
                    f,
                    "capacity {requested} is above the most worker slots a pool may have ({max})"
                )
            }
            BuildError::HealthCheckWithoutState => {
                write!(f, "a health check needs per-worker state: use build_with_state")
            }
            BuildError::HealthCheckStateMismatch => {
                write!(f, "the health check's state type differs from build_with_state's")
            }
            BuildError::ZeroHealthCheckInterval => write!(f, "the health check interval must be above zero"),
            BuildError::Spawn(error) => write!(f, "could not start a worker thread: {error}"),
            BuildError::ThreadNamePanicked(index) => {
                write!(f, "the thread_name closure panicked for worker {index}")
            }
            BuildError::InvalidThreadName(index) => {
                write!(
                    f,
                    "the thread_name closure returned a name with a NUL byte for worker {index}"
                )
            }
            BuildError::MaxCapacityBelowCapacity { capacity, max_capacity } => {
                write!(f, "max_capacity ({max_capacity}) is below capacity ({capacity})")
            }
            BuildError::InvalidAutoscale { min, max, max_capacity } => write!(
                f,
                "autoscale bounds {min}..={max} do not fit: need 1 <= min <= max <= max_capacity ({max_capacity})"
            ),
            BuildError::MinWorkersAboveCapacity { min_workers, capacity } => {
                write!(f, "min_workers ({min_workers}) is above capacity ({capacity})")
            }
            BuildError::ZeroKeepAlive => write!(f, "keep_alive must be longer than zero"),
            BuildError::NonblockingWithoutQueueLimit => {
                write!(
                    f,
                    "nonblocking(true) needs a queue_limit (an unbounded queue is never full)"
                )
            }
            BuildError::MaxBlockedSubmittersWithoutQueueLimit { submitters } => write!(
                f,
                "max_blocked_submitters({submitters}) needs a queue_limit (nobody waits for room in an unbounded queue)"
            ),
            BuildError::ZeroPools => write!(f, "a multi-pool needs at least one sub-pool"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Spawn(error) => Some(error),
            _ => None,
        }
    }
}

/// Why [`Pool::tune`](crate::Pool::tune) refused a capacity. The pool is
/// unchanged.
///
/// ```
/// use stealpool::{Pool, TuneError};
///
/// let pool = Pool::builder().capacity(2).max_capacity(4).build().unwrap();
/// assert_eq!(pool.tune(0), Err(TuneError::Zero));
/// assert_eq!(pool.tune(5), Err(TuneError::AboveMax { requested: 5, max: 4 }));
/// assert_eq!(pool.capacity(), 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TuneError {
    /// A capacity of 0: a pool needs at least one worker.
    Zero,
    /// Above the pool's `max_capacity`.
    AboveMax {
        /// The capacity asked for.
        requested: usize,
        /// The pool's ceiling.
        max: usize,
    },
    /// [`Pool::set_autoscale`](crate::Pool::set_autoscale) with bounds that
    /// do not fit: `min` must be at least 1, `max` at least `min` and at
    /// most `max_capacity`.
    InvalidAutoscale {
        /// The autoscaler's lowest capacity.
        min: usize,
        /// The autoscaler's highest capacity.
        max: usize,
        /// The pool's ceiling.
        max_capacity: usize,
    },
}

impl fmt::Display for TuneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TuneError::Zero => write!(f, "capacity must be at least 1"),
            TuneError::AboveMax { requested, max } => {
                write!(f, "capacity {requested} is above the pool's max_capacity {max}")
            }
            TuneError::InvalidAutoscale { min, max, max_capacity } => write!(
                f,
                "autoscale bounds {min}..={max} do not fit: need 1 <= min <= max <= max_capacity ({max_capacity})"
            ),
        }
    }
}

impl std::error::Error for TuneError {}

/// Why [`Pool::reboot`](crate::Pool::reboot) failed.
///
/// ```
/// let pool = stealpool::Pool::builder().capacity(1).build().unwrap();
/// pool.shutdown();
/// pool.reboot().unwrap();
/// assert!(!pool.is_closed());
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum RebootError {
    /// Called from inside one of the pool's own tasks: reboot waits for the
    /// old threads to exit, and the caller is one of them.
    InsideOwnTask,
    /// The OS refused a worker thread (pre-allocated pools start theirs
    /// in `reboot`). The pool is open; missing threads start on demand.
    Spawn(std::io::Error),
}

impl fmt::Display for RebootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RebootError::InsideOwnTask => {
                write!(f, "reboot called from inside one of the pool's own tasks")
            }
            RebootError::Spawn(error) => write!(f, "could not start a worker thread: {error}"),
        }
    }
}

impl std::error::Error for RebootError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RebootError::Spawn(error) => Some(error),
            RebootError::InsideOwnTask => None,
        }
    }
}

/// [`Pool::shutdown_timeout`](crate::Pool::shutdown_timeout) gave up waiting.
/// The pool is closed and its threads still finish the accepted work and
/// exit on their own.
///
/// ```
/// use std::time::Duration;
/// let pool = stealpool::Pool::builder().capacity(1).build().unwrap();
/// assert!(pool.shutdown_timeout(Duration::from_secs(5)).is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownTimeout;

impl fmt::Display for ShutdownTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the pool did not finish its work within the shutdown timeout")
    }
}

impl std::error::Error for ShutdownTimeout {}
