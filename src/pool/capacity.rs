//! The capacity while the pool runs: `tune`, `set_autoscale`, and the
//! figures they move.

use crate::config::Autoscale;
use crate::error::TuneError;
use crate::pool::Pool;
use crate::scheduler::Shared;

impl Pool {
    /// Changes the capacity (how many workers may run tasks at once) while
    /// the pool runs.
    ///
    /// Growing resumes parked workers (or starts threads) before it
    /// returns, so queued tasks start at once. Shrinking lets the workers
    /// above the new capacity finish the task they run, hand their queued
    /// tasks back, and park; after those tasks end, at most `capacity` tasks
    /// run at once. No task is lost or run twice, whatever races with it.
    /// Tuning a shut-down pool sets the capacity its `reboot` starts with.
    ///
    /// While an [`Autoscale`] is on, `capacity` is its new starting point
    /// and the capacity moves to it clamped into the autoscaler's
    /// `min..=max` at once (a later `set_autoscale` with other bounds
    /// clamps the same starting point into those).
    ///
    /// # Errors
    ///
    /// [`TuneError::Zero`] for 0 and [`TuneError::AboveMax`] above
    /// [`Pool::max_capacity`]; the pool is unchanged.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).max_capacity(8).build()?;
    /// pool.tune(8)?;
    /// assert_eq!(pool.capacity(), 8);
    /// pool.tune(1)?;
    /// assert_eq!(pool.stats().capacity, 1);
    ///
    /// pool.set_autoscale(Some(stealpool::Autoscale::new(2, 6)))?;
    /// pool.tune(8)?;
    /// assert_eq!(pool.capacity(), 6);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tune(&self, capacity: usize) -> Result<(), TuneError> {
        let max = self.shared.config.max_capacity;
        if capacity == 0 {
            return Err(TuneError::Zero);
        }
        if capacity > max {
            return Err(TuneError::AboveMax {
                requested: capacity,
                max,
            });
        }
        Shared::tune(&self.shared, capacity);
        Ok(())
    }

    /// Turns the autoscaler on (`Some`, see [`Autoscale`]) or off
    /// (`None`).
    ///
    /// Off, the capacity goes back to the base the autoscaler last held
    /// (where its queue-delay rule, or a `tune` clamped into its bounds,
    /// left it): the slots it lent ahead of need go at once, and each slot
    /// it lent to a worker it saw blocked goes back as that worker returns
    /// from its task (it never rises meanwhile). Then only [`Pool::tune`]
    /// and [`block_in_place`](crate::block_in_place) move it. On, it
    /// starts from the current starting point (the built capacity or the
    /// last `tune`) clamped into `min..=max`.
    ///
    /// # Errors
    ///
    /// [`TuneError::InvalidAutoscale`] if the bounds do not fit (`min` at
    /// least 1, `max` at least `min` and at most
    /// [`Pool::max_capacity`]); the pool is unchanged.
    ///
    /// ```
    /// use stealpool::{Autoscale, Pool};
    ///
    /// let pool = Pool::builder().capacity(2).max_capacity(16).build()?;
    /// pool.set_autoscale(Some(Autoscale::new(1, 16)))?;
    /// assert!(pool.set_autoscale(Some(Autoscale::new(1, 17))).is_err());
    /// pool.set_autoscale(None)?;
    /// assert_eq!(pool.capacity(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_autoscale(&self, autoscale: Option<Autoscale>) -> Result<(), TuneError> {
        Shared::set_autoscale(&self.shared, autoscale)
    }

    /// The ceiling for [`Pool::tune`].
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).max_capacity(6).build().unwrap();
    /// assert_eq!(pool.max_capacity(), 6);
    /// ```
    pub fn max_capacity(&self) -> usize {
        self.shared.config.max_capacity
    }

    /// How many workers may run tasks at once.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(3).build().unwrap();
    /// assert_eq!(pool.capacity(), 3);
    /// ```
    pub fn capacity(&self) -> usize {
        self.shared.capacity()
    }
}
