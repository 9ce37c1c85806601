//! Submits for async callers: waiting for room in a full queue without
//! blocking the thread.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::SubmitError;
use crate::pool::join_handle::JoinHandle;
use crate::pool::Pool;
use crate::scheduler::backpressure::AsyncWait;
use crate::scheduler::{Admission, HeapJob, JobKind, JobRef, Refusal, Shared};

/// Waits, as a future, until the pool admits one task.
struct Admit<'a> {
    shared: &'a Shared,
    wait: AsyncWait,
}

impl<'a> Future for Admit<'a> {
    type Output = Result<Admission<'a>, Refusal>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        Admission::poll_admit(this.shared, &mut this.wait, cx)
    }
}

impl Drop for Admit<'_> {
    fn drop(&mut self) {
        // Dropped while waiting: leave the waiting submitters.
        Admission::abandon_async(self.shared, &mut self.wait);
    }
}

impl Pool {
    fn admit_async(&self) -> Admit<'_> {
        Admit {
            shared: &self.shared,
            wait: AsyncWait::default(),
        }
    }

    /// [`Pool::submit`] for async code: where `submit` would block the
    /// thread for room in a full queue (see [`Builder::queue_limit`]), this
    /// future waits for room without blocking, so it is safe on an async
    /// runtime's own threads (a blocked executor thread could never run the
    /// code that makes the room). It needs no particular runtime.
    ///
    /// Otherwise it behaves as `submit`: it completes at once when there is
    /// room or no limit, and inside one of the pool's tasks. A nonblocking
    /// pool refuses a full queue at once; with
    /// [`Builder::max_blocked_submitters`], waiting futures count as blocked
    /// submitters (and in [`Stats::blocked_submitters`](crate::Stats::blocked_submitters)).
    /// Dropping the future before it completes drops `task` unsubmitted.
    ///
    /// # Errors
    ///
    /// With the closure itself: [`SubmitError::Closed`] if the pool is (or
    /// gets) shut down, [`SubmitError::Full`] where `submit` would return it.
    ///
    /// [`Builder::queue_limit`]: crate::Builder::queue_limit
    /// [`Builder::max_blocked_submitters`]: crate::Builder::max_blocked_submitters
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(1).queue_limit(4).build()?;
    /// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    /// runtime.block_on(async {
    ///     for i in 0..100 {
    ///         pool.submit_async(move || drop(i)).await.unwrap();
    ///     }
    /// });
    /// pool.wait_idle();
    /// assert_eq!(pool.stats().completed, 100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn submit_async<F>(&self, task: F) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.submit_mapped_async(task, |task| HeapJob::into_job_ref(task, JobKind::Task))
            .await
    }

    /// [`Pool::spawn`] for async code: waits for room in a full queue as
    /// [`Pool::submit_async`] does, then returns the task's handle (itself
    /// a future).
    ///
    /// # Errors
    ///
    /// As [`Pool::submit_async`].
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(1).queue_limit(1).build()?;
    /// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    /// let total = runtime.block_on(async {
    ///     let mut total = 0;
    ///     for i in 0..10u64 {
    ///         let handle = pool.spawn_async(move || i * i).await.unwrap();
    ///         total += handle.await.unwrap();
    ///     }
    ///     total
    /// });
    /// assert_eq!(total, 285);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn spawn_async<F, T>(&self, task: F) -> Result<JoinHandle<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let admitted = self.admit_async().await;
        match admitted {
            Ok(admission) => Ok(self.push_spawned(admission, task, (), None)),
            Err(refusal) => Err(self.refuse(refusal, task)),
        }
    }

    /// Admits a counted task as [`Pool::submit_async`] does and pushes the
    /// job `into_job` makes of `value`; on refusal `value` comes back.
    pub(crate) async fn submit_mapped_async<T>(
        &self,
        value: T,
        into_job: impl FnOnce(T) -> JobRef,
    ) -> Result<(), SubmitError<T>> {
        let admitted = self.admit_async().await;
        match admitted {
            Ok(admission) => {
                admission.push(&self.shared, into_job(value));
                Ok(())
            }
            Err(refusal) => Err(self.refuse(refusal, value)),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::Pool;

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn the_futures_are_send() {
        let pool = Pool::builder().capacity(1).build().unwrap();
        assert_send(&pool.submit_async(|| ()));
        assert_send(&pool.spawn_async(|| 1));
    }
}
