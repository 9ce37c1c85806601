//! `FuncPool::invoke_async`: an invocation that waits for room without
//! blocking the thread.

use crate::error::SubmitError;
use crate::func::FuncPool;

impl<A: Send + 'static> FuncPool<A> {
    /// [`FuncPool::invoke`] for async code: waits for room in a full queue
    /// without blocking the thread, as
    /// [`Pool::submit_async`](crate::Pool::submit_async) does (same rules,
    /// same errors). Dropping the future before it completes drops `arg`.
    ///
    /// # Errors
    ///
    /// As [`Pool::submit_async`](crate::Pool::submit_async), with the
    /// argument itself.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    ///
    /// let sum = Arc::new(AtomicU64::new(0));
    /// let adder = sum.clone();
    /// let fp = stealpool::FuncPool::builder()
    ///     .capacity(1)
    ///     .queue_limit(2)
    ///     .build(move |x: u64| { adder.fetch_add(x, Ordering::Relaxed); })?;
    /// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    /// runtime.block_on(async {
    ///     for x in 1..=100 {
    ///         fp.invoke_async(x).await.unwrap();
    ///     }
    /// });
    /// fp.wait_idle();
    /// assert_eq!(sum.load(Ordering::Relaxed), 5050);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn invoke_async(&self, arg: A) -> Result<(), SubmitError<A>> {
        let slots = self.core.slots();
        self.pool.submit_mapped_async(arg, |arg| slots.job_for(arg)).await
    }
}
