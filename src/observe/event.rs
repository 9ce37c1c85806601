//! What a task hook is told about a task.

use std::cell::Cell;
use std::time::Duration;

/// One task, as the task hooks see it: [`Builder::on_task_start`] before it
/// runs and [`Builder::on_task_end`] after.
///
/// [`Builder::on_task_start`]: crate::Builder::on_task_start
/// [`Builder::on_task_end`]: crate::Builder::on_task_end
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// let slow = Arc::new(AtomicU64::new(0));
/// let counter = slow.clone();
/// let pool = stealpool::Pool::builder()
///     .capacity(2)
///     .measure_queue_delay(true)
///     .on_task_end(move |e: &stealpool::TaskEvent| {
///         if e.queued_for() + e.ran_for() > std::time::Duration::from_secs(1) {
///             counter.fetch_add(1, Ordering::Relaxed);
///         }
///     })
///     .build()?;
/// pool.submit(|| ())?;
/// pool.wait_idle();
/// assert_eq!(slow.load(Ordering::Relaxed), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskEvent {
    pub(crate) worker: usize,
    pub(crate) queued_for: Duration,
    pub(crate) ran_for: Duration,
    pub(crate) panicked: bool,
}

impl TaskEvent {
    /// The index of the worker running the task.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder()
    ///     .capacity(2)
    ///     .on_task_start(|e: &stealpool::TaskEvent| assert!(e.worker() < 2))
    ///     .build()?;
    /// pool.submit(|| ())?;
    /// pool.wait_idle();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// How long the task waited between its submit and its start. Measured
    /// only with [`Builder::measure_queue_delay`]`(true)`; zero otherwise.
    ///
    /// [`Builder::measure_queue_delay`]: crate::Builder::measure_queue_delay
    ///
    /// ```
    /// let pool = stealpool::Pool::builder()
    ///     .on_task_start(|e: &stealpool::TaskEvent| assert_eq!(e.queued_for(), std::time::Duration::ZERO))
    ///     .build()?;
    /// pool.submit(|| ())?;
    /// pool.wait_idle();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn queued_for(&self) -> Duration {
        self.queued_for
    }

    /// How long the task ran (zero in [`Builder::on_task_start`]).
    ///
    /// [`Builder::on_task_start`]: crate::Builder::on_task_start
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = stealpool::Pool::builder()
    ///     .on_task_end(|e: &stealpool::TaskEvent| assert!(e.ran_for() >= Duration::from_millis(5)))
    ///     .build()?;
    /// pool.submit(|| std::thread::sleep(Duration::from_millis(5)))?;
    /// pool.wait_idle();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ran_for(&self) -> Duration {
        self.ran_for
    }

    /// Whether the task panicked (false in [`Builder::on_task_start`]). A
    /// panic counts however it is delivered: to the panic handler
    /// (`submit`), to a `JoinHandle` (`spawn`) or to a scope.
    ///
    /// [`Builder::on_task_start`]: crate::Builder::on_task_start
    ///
    /// ```
    /// let pool = stealpool::Pool::builder()
    ///     .panic_handler(|_| ())
    ///     .on_task_end(|e: &stealpool::TaskEvent| assert!(e.panicked()))
    ///     .build()?;
    /// pool.submit(|| panic!("expected"))?;
    /// pool.wait_idle();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn panicked(&self) -> bool {
        self.panicked
    }
}

std::thread_local! {
    /// Set when a task's panic is caught inside the job itself (a spawned
    /// task's packet, a scope spawn), so an observed run can tell.
    static CAUGHT: Cell<bool> = const { Cell::new(false) };
}

/// A task's panic was caught inside its job (`spawn`, scope spawns). Costs
/// nothing unless a task panicked.
#[cold]
pub(crate) fn note_caught_panic() {
    CAUGHT.with(|caught| caught.set(true));
}

/// Starts watching for a caught panic; returns the enclosing task's flag,
/// to hand back to [`end_watch`] (tasks nest: a task that joins runs
/// others while it waits).
pub(crate) fn begin_watch() -> bool {
    CAUGHT.with(|caught| caught.replace(false))
}

/// Whether a panic was caught since [`begin_watch`]; restores the
/// enclosing task's flag.
pub(crate) fn end_watch(outer: bool) -> bool {
    CAUGHT.with(|caught| caught.replace(outer))
}
