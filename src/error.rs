//! The errors the pool hands back.

use std::fmt;

/// A task the pool refused, handed back to the caller with the reason.
///
/// Nothing submitted is ever silently dropped: every refusal returns the very
/// closure (or argument) that was refused, available through
/// [`SubmitError::into_inner`].
///
/// `Debug` does not require `F: Debug`, so `?` and `unwrap` work on any
/// closure.
///
/// # Examples
///
/// ```
/// use stealpool::{Pool, SubmitError};
///
/// let pool = Pool::builder().capacity(1).build().unwrap();
/// pool.shutdown();
/// match pool.submit(|| 7) {
///     Err(SubmitError::Closed(task)) => assert_eq!(task(), 7), // the closure comes back
///     _ => unreachable!(),
/// }
/// ```
pub enum SubmitError<F> {
    /// The pool is shut down (or shutting down) and takes no new work.
    Closed(F),
    /// The queue is full and the pool does not block (see the capacity
    /// controls of later versions).
    Full(F),
    /// No room opened in the queue within the given time.
    Timeout(F),
}

impl<F> SubmitError<F> {
    /// The refused closure.
    ///
    /// ```
    /// # let pool = stealpool::Pool::builder().capacity(1).build().unwrap();
    /// pool.shutdown();
    /// let task = pool.submit(|| "ran").unwrap_err().into_inner();
    /// assert_eq!(task(), "ran");
    /// ```
    pub fn into_inner(self) -> F {
        match self {
            SubmitError::Closed(f) | SubmitError::Full(f) | SubmitError::Timeout(f) => f,
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

    fn reason(&self) -> &'static str {
        match self {
            SubmitError::Closed(_) => "the pool is shut down",
            SubmitError::Full(_) => "the pool's queue is full",
            SubmitError::Timeout(_) => "timed out waiting for room in the pool's queue",
        }
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
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroCapacity => write!(f, "capacity must be at least 1"),
            BuildError::Spawn(error) => write!(f, "could not start a worker thread: {error}"),
            BuildError::ThreadNamePanicked(index) => {
                write!(f, "the thread_name closure panicked for worker {index}")
            }
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
