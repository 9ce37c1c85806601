//! A snapshot of a pool's figures.

/// A snapshot of a pool's figures, from [`Pool::stats`](crate::Pool::stats).
///
/// Each field is read without stopping the pool, so figures taken while it
/// runs are a moment's picture, but never an inconsistent one:
/// `busy_workers <= live_workers <= capacity` and `completed <= submitted`
/// always hold.
///
/// # Examples
///
/// ```
/// let pool = stealpool::Pool::builder().capacity(2).build().unwrap();
/// pool.submit(|| ()).unwrap();
/// pool.wait_idle();
/// let stats = pool.stats();
/// assert_eq!(stats.capacity, 2);
/// assert_eq!((stats.submitted, stats.completed, stats.queued), (1, 1, 0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// How many workers may run tasks at once.
    pub capacity: usize,
    /// Worker threads alive now.
    pub live_workers: usize,
    /// Workers running a task now.
    pub busy_workers: usize,
    /// Workers parked for lack of work.
    pub sleeping_workers: usize,
    /// Tasks accepted and not yet started (an estimate while the pool runs).
    pub queued: usize,
    /// Tasks accepted since the pool was built (`submit`, `spawn`, scope
    /// spawns; the halves of `join` are not counted).
    pub submitted: u64,
    /// Tasks that finished running, panicked or not.
    pub completed: u64,
    /// Tasks that panicked.
    pub panicked: u64,
    /// Times a worker took work from another worker's deque.
    pub stolen: u64,
}
