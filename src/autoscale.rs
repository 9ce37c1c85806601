//! `Autoscale`: the settings of a pool whose capacity follows its load.

use std::time::Duration;

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
    /// assert_eq!(scale.queue_delay_target(), Duration::from_millis(5));
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
    /// assert!(!scale.detects_blocking());
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

    /// The queue delay above which it grows.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(stealpool::Autoscale::new(1, 4).queue_delay_target(), Duration::from_millis(2));
    /// ```
    pub fn queue_delay_target(&self) -> Duration {
        self.target_queue_delay
    }

    /// Whether blocked workers lend their slot.
    ///
    /// ```
    /// assert!(stealpool::Autoscale::new(1, 4).detects_blocking());
    /// ```
    pub fn detects_blocking(&self) -> bool {
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
