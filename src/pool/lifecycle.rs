//! A pool's lifecycle: waiting for it (`wait_idle`), closing it
//! (`shutdown`, `shutdown_timeout`, `shutdown_now`), letting it go without
//! waiting (`shutdown_background`), and opening it again (`reboot`).

use std::time::{Duration, Instant};

use crate::error::{RebootError, ShutdownTimeout};
use crate::pool::task::Task;
use crate::pool::Pool;
use crate::scheduler::{Shared, WorkerThread};

impl Pool {
    /// Shuts the pool down without waiting: refuses new work and returns at
    /// once, while the workers run every task already accepted and then exit
    /// on their own (like tokio's `Runtime::shutdown_background`, or ants'
    /// `Release`). Dropping the last handle afterwards does not wait either.
    ///
    /// Nothing accepted is dropped: queued tasks run as after
    /// [`Pool::shutdown`]. Use [`Pool::wait_idle`] to wait for them later, or
    /// [`Pool::shutdown`] to wait for them and join the threads; a
    /// [`Pool::reboot`] waits for the old threads to exit, then opens the
    /// pool again.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let pool = stealpool::Pool::builder().capacity(1).build()?;
    /// let ran = Arc::new(AtomicUsize::new(0));
    /// for _ in 0..10 {
    ///     let ran = ran.clone();
    ///     pool.submit(move || {
    ///         std::thread::sleep(std::time::Duration::from_millis(1));
    ///         ran.fetch_add(1, Ordering::Relaxed);
    ///     })?;
    /// }
    /// pool.shutdown_background(); // returns at once
    /// assert!(pool.submit(|| ()).is_err());
    /// pool.wait_idle(); // the queued tasks still run
    /// assert_eq!(ran.load(Ordering::Relaxed), 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown_background(&self) {
        self.shared.detach();
        self.shared.close();
    }

    /// Blocks until the pool is idle: nothing queued or running, so every
    /// task accepted before the call (and every task those tasks submitted)
    /// has finished.
    ///
    /// Exactly: it returns once the pool has been idle at some moment after
    /// the call began. With several threads waiting, every one that was
    /// waiting when the pool went idle returns, even if one of them (or
    /// anyone) submits new work before the others wake: they do not wait
    /// for that work (like the waves of threadpool's `join`). Work accepted
    /// after the idle moment is not waited for; call `wait_idle` again.
    ///
    /// # Panics
    ///
    /// If called from inside one of this pool's own tasks: that task would
    /// wait for itself forever. (Use [`Pool::scope`] or [`JoinHandle`](crate::JoinHandle)s to
    /// wait for work from inside the pool.)
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).build()?;
    /// for _ in 0..10 {
    ///     pool.submit(|| std::thread::sleep(std::time::Duration::from_millis(1)))?;
    /// }
    /// pool.wait_idle();
    /// assert_eq!(pool.stats().completed, 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_idle(&self) {
        if WorkerThread::current_in(&self.shared).is_some() {
            panic!(
                "stealpool: Pool::wait_idle called from inside one of the pool's own tasks; \
                 it would wait for itself forever (use Pool::scope or JoinHandle::join instead)"
            );
        }
        Shared::wait_idle(&self.shared);
    }

    /// Shuts the pool down gracefully: refuses new work, runs everything
    /// already accepted, and joins every worker thread. Idempotent; callers
    /// racing each other all return after the threads are gone.
    ///
    /// Called from inside one of the pool's own tasks it cannot wait for its
    /// own thread: it closes the pool and returns at once, and the workers
    /// finish the queue and exit on their own.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).build()?;
    /// pool.submit(|| ())?;
    /// pool.shutdown();
    /// assert!(pool.is_closed());
    /// assert!(pool.submit(|| ()).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(&self) {
        self.shared.close();
        if WorkerThread::current_in(&self.shared).is_some() {
            return;
        }
        // Everything accepted runs (threads start on demand if need be) ...
        Shared::wait_idle(&self.shared);
        // ... then every thread leaves and is joined.
        self.shared.join_threads(None);
    }

    /// Like [`Pool::shutdown`], but gives up waiting after `timeout`. The
    /// pool is closed either way; on timeout its threads still run the
    /// accepted work and exit on their own.
    ///
    /// Called from inside one of the pool's own tasks it cannot wait for its
    /// own thread: it closes the pool and returns `Err(ShutdownTimeout)` at
    /// once.
    ///
    /// # Errors
    ///
    /// [`ShutdownTimeout`] if the work or the threads did not finish in time.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = stealpool::Pool::builder().capacity(2).build()?;
    /// pool.submit(|| ())?;
    /// pool.shutdown_timeout(Duration::from_secs(10))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown_timeout(&self, timeout: Duration) -> Result<(), ShutdownTimeout> {
        self.shared.close();
        if WorkerThread::current_in(&self.shared).is_some() {
            return Err(ShutdownTimeout);
        }
        let deadline = Instant::now().checked_add(timeout);
        let finished = match deadline {
            Some(deadline) => {
                Shared::wait_idle_until(&self.shared, deadline) && self.shared.join_threads(Some(deadline))
            }
            None => {
                Shared::wait_idle(&self.shared);
                self.shared.join_threads(None)
            }
        };
        if finished {
            Ok(())
        } else {
            // Gave up: dropping the last handle must not wait after all.
            self.shared.detach();
            Err(ShutdownTimeout)
        }
    }

    /// Shuts down at once: refuses new work, takes every queued task that
    /// never started out of the queues and hands it back, lets the running
    /// tasks finish, and joins the threads. [`Task::run`] runs a returned
    /// task; nothing accepted is dropped unrun unless you drop its `Task`.
    ///
    /// A spawned task that is handed back completes its [`JoinHandle`](crate::JoinHandle) when
    /// you run the `Task` (or with `Err` when you drop it); a running task of
    /// the pool that joins such a handle gets `Err` at once, since this call
    /// waits for that task before it returns the handed-back ones.
    ///
    /// Scope spawns and the halves of `join`s stay in the pool (their
    /// callers wait for them) and run before the threads exit. From inside
    /// one of the pool's own tasks it returns without joining (as
    /// [`Pool::shutdown`]).
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(1).build()?;
    /// let unrun = pool.shutdown_now();
    /// assert!(unrun.is_empty());
    /// assert!(pool.is_closed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use = "the returned tasks were accepted and never ran: run them (Task::run) or drop them on purpose"]
    pub fn shutdown_now(&self) -> Vec<Task> {
        let unrun = self.withdraw_queued();
        self.finish_shutdown_now();
        unrun
    }

    /// The first half of `shutdown_now`: closes the pool and takes every
    /// queued task out (`MultiPool` does this for every sub-pool before it
    /// waits on any).
    #[must_use]
    pub(crate) fn withdraw_queued(&self) -> Vec<Task> {
        let shared = &self.shared;
        shared.close();
        let unrun = Shared::withdraw_queued(shared);
        unrun.into_iter().map(|job| Task::new(job, shared.clone())).collect()
    }

    /// The second half of `shutdown_now`: waits for the running tasks and
    /// joins the threads (not from inside one of the pool's own tasks).
    pub(crate) fn finish_shutdown_now(&self) {
        let shared = &self.shared;
        if WorkerThread::current_in(shared).is_none() {
            Shared::wait_idle(shared);
            self.shared.join_threads(None);
        }
    }

    /// Starts a shut-down pool again with the same configuration (and the
    /// capacity it was last tuned to). On a running pool it does nothing and
    /// returns `Ok`.
    ///
    /// It first waits for the previous shutdown to finish: every accepted
    /// task run and every old thread gone (a shutdown that timed out, or one
    /// called from inside a task, may still be draining). Racing `submit`,
    /// `shutdown` and `tune` calls are safe: every submit is either accepted
    /// and run exactly once, or refused with its closure handed back.
    ///
    /// # Errors
    ///
    /// [`RebootError::InsideOwnTask`] from inside one of the pool's own
    /// tasks (the caller's thread is one of those it would wait for);
    /// [`RebootError::Spawn`] if a pre-allocated pool could not start a
    /// thread (the pool is open; threads start on demand).
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).build()?;
    /// pool.shutdown();
    /// assert!(pool.submit(|| ()).is_err());
    /// pool.reboot()?;
    /// pool.submit(|| ())?;
    /// pool.wait_idle();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reboot(&self) -> Result<(), RebootError> {
        if WorkerThread::current_in(&self.shared).is_some() {
            return Err(RebootError::InsideOwnTask);
        }
        Shared::reboot(&self.shared)?;
        // A running pool again: its last handle's drop waits for it.
        self.shared.attach();
        Shared::restart_monitor(&self.shared);
        Ok(())
    }

    /// Whether the pool refuses new work (it was shut down).
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(1).build().unwrap();
    /// assert!(!pool.is_closed());
    /// pool.shutdown();
    /// assert!(pool.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }
}
