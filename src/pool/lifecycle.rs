//! Letting a pool go without waiting for it: `shutdown_background`.

use crate::pool::Pool;

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
}
