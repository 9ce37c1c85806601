//! `Task`: a queued task handed back by `shutdown_now`.

use std::fmt;

use std::panic::{self, AssertUnwindSafe};

use crate::scheduler::{early_count, JobRef, Shared};
use crate::sync::Arc;

/// A task that was accepted but never started, handed back by
/// [`Pool::shutdown_now`](crate::Pool::shutdown_now).
///
/// [`Task::run`] runs it on the calling thread. Dropping it drops the closure
/// unrun; for a task from [`Pool::spawn`](crate::Pool::spawn), its
/// [`JoinHandle`](crate::JoinHandle) then returns a
/// [`JoinError`](crate::JoinError) with `is_cancelled()` instead of waiting
/// forever (and a task of the pool that joins it gets that cancellation at
/// once, see [`JoinHandle::join`](crate::JoinHandle::join)). If the handle
/// cancels the task first ([`JoinHandle::cancel`](crate::JoinHandle::cancel)),
/// `run` drops it without running it.
///
/// # Examples
///
/// ```
/// use std::sync::mpsc;
///
/// let pool = stealpool::Pool::builder().capacity(1).build()?;
/// let (release, blocked) = mpsc::channel::<()>();
/// let (started, running) = mpsc::channel::<()>();
/// pool.submit(move || {                                   // occupies the only worker
///     started.send(()).unwrap();
///     let _ = blocked.recv();
/// })?;
/// running.recv()?;
/// for i in 0..3 {
///     pool.submit(move || println!("task {i}"))?;          // queued
/// }
/// let stopper = std::thread::spawn(move || {
///     std::thread::sleep(std::time::Duration::from_millis(50));
///     release.send(()).unwrap();
/// });
/// let unrun = pool.shutdown_now();
/// stopper.join().unwrap();
/// assert_eq!(unrun.len(), 3);
/// for task in unrun {
///     task.run(); // prints "task 0", "task 1", "task 2" on this thread
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping a Task drops the accepted task unrun; call Task::run"]
pub struct Task {
    job: Option<JobRef>,
    /// The pool it came from: a task run here counts as completed there.
    shared: Arc<Shared>,
}

impl Task {
    pub(crate) fn new(job: JobRef, shared: Arc<Shared>) -> Self {
        Task { job: Some(job), shared }
    }

    /// Runs the task on the calling thread; the pool's
    /// [`Stats::completed`](crate::Stats::completed) counts it (and
    /// [`Stats::withdrawn`](crate::Stats::withdrawn) no longer does). A
    /// panic in a `submit`ted closure propagates to the caller; a `spawn`ed
    /// one's result (or panic) goes to its [`JoinHandle`](crate::JoinHandle).
    ///
    /// ```
    /// # let pool = stealpool::Pool::builder().capacity(1).build().unwrap();
    /// for task in pool.shutdown_now() {
    ///     task.run();
    /// }
    /// ```
    pub fn run(mut self) {
        if let Some(job) = self.job.take() {
            // SAFETY: a handed-back task is a heap job that owns its data and
            // has not run; taking it out of `self` means it runs (or is
            // discarded) once.
            if !unsafe { job.try_start() } {
                // Its handle cancelled it meanwhile: it never runs (and stays
                // counted as withdrawn).
                // SAFETY: as above.
                unsafe { job.discard() };
                return;
            }
            // Counted below, never early by a worker running it inside its
            // own task (`worker/early_count.rs`).
            // SAFETY: as above.
            let outcome = early_count::unarmed(|| panic::catch_unwind(AssertUnwindSafe(|| unsafe { job.execute() })));
            // Counted however it ended, as a worker counts a task.
            self.shared.count_handed_back_run();
            if let Err(payload) = outcome {
                panic::resume_unwind(payload);
            }
        }
    }
}

impl Task {
    /// The job inside, for `FuncPool::shutdown_now` to take its argument
    /// back; the caller becomes responsible for running or discarding it.
    pub(crate) fn into_job_ref(mut self) -> JobRef {
        self.job.take().expect("a Task holds its job until run or dropped")
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if let Some(job) = self.job.take() {
            // SAFETY: as in `run`; it is discarded once instead.
            unsafe { job.discard() }
        }
    }
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task").finish_non_exhaustive()
    }
}
