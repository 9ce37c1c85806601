//! The public handle: `Pool`.

pub(crate) mod block_in_place;
pub(crate) mod broadcast;
pub(crate) mod builder;
mod capacity;
pub(crate) mod current;
pub(crate) mod global;
pub(crate) mod join;
pub(crate) mod join_error;
pub(crate) mod join_handle;
pub(crate) mod lifecycle;
pub(crate) mod scope;
pub(crate) mod scope_credit;
pub(crate) mod scoped_handle;
mod stats;
mod submit;
pub(crate) mod submit_async;
pub(crate) mod task;
pub(crate) mod task_set;
pub(crate) mod yield_now;

use std::fmt;
use std::panic::{self, AssertUnwindSafe};

use crate::error::BuildError;
use crate::pool::builder::Builder;
use crate::pool::join::{join_in_worker, join_on_caller};
use crate::pool::scope::Scope;
use crate::scheduler::{cross, Admission, Room, Shared, StackJob, WorkerThread};
use crate::sync::Arc;

/// A work-stealing thread pool.
///
/// `Pool` is a cheap handle: clones share one pool, and it is `Send + Sync`.
///
/// **Dropping the last handle blocks:** it runs [`Pool::shutdown`], which
/// waits until every accepted task has run and every worker thread has
/// exited. To return at once instead, call [`Pool::shutdown_background`]
/// (the queued tasks still run) or [`Pool::shutdown_now`] (they are handed
/// back) first. Dropping never waits after `shutdown_background`, nor after
/// a [`Pool::shutdown_timeout`] that gave up (until a [`Pool::reboot`]); and
/// inside one of the pool's own tasks it closes the pool without waiting, the
/// workers finishing the queue and exiting on their own.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let pool = stealpool::Pool::builder().capacity(4).build()?;
/// let done = Arc::new(AtomicUsize::new(0));
/// for _ in 0..100 {
///     let done = done.clone();
///     pool.submit(move || {
///         done.fetch_add(1, Ordering::Relaxed);
///     })?;
/// }
/// pool.wait_idle();
/// assert_eq!(done.load(Ordering::Relaxed), 100);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Pool {
    shared: Arc<Shared>,
}

impl Pool {
    pub(crate) fn from_shared(shared: Arc<Shared>) -> Pool {
        Pool { shared }
    }

    /// The pool's shared state (a `MultiPool` links its sub-pools'; the
    /// crate's unit tests look inside).
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// A [`Builder`] with the default settings.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).build().unwrap();
    /// assert_eq!(pool.capacity(), 2);
    /// ```
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// A pool with the default settings (one worker per core).
    ///
    /// # Errors
    ///
    /// As [`Builder::build`].
    ///
    /// ```
    /// let pool = stealpool::Pool::new()?;
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn new() -> Result<Pool, BuildError> {
        Builder::new().build()
    }

    /// Runs `f` on one of the pool's workers and returns its result, like
    /// rayon's `install`: code inside `f` that calls [`Pool::current`],
    /// [`join`](crate::join), [`scope`](crate::scope) or
    /// [`spawn`](crate::spawn) uses this pool. `f` may borrow from the
    /// caller's stack; the caller blocks until it returns (a panic in `f` is
    /// re-raised here).
    ///
    /// Called from inside one of this pool's own tasks, `f` runs inline, on
    /// the calling worker. On a shut-down pool `f` runs on the calling
    /// thread (as [`Pool::join`] does there). Never refused and never
    /// blocked by a [`queue_limit`](crate::Builder::queue_limit).
    ///
    /// Called from a task of *another* pool, the calling worker runs its own
    /// pool's queued tasks while it waits (as [`Pool::join`],
    /// [`Pool::scope`] and [`JoinHandle::join`](crate::JoinHandle::join) do across pools), so pools
    /// that install into each other finish even when every worker of one
    /// waits in the other: `a.install(|| b.install(|| a.install(f)))` on
    /// one-worker pools returns. Such a worker looks for new work of its own
    /// pool about every millisecond while it waits.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).build()?;
    /// let numbers: Vec<u64> = (1..=100).collect();
    /// let sum = pool.install(|| {
    ///     assert!(stealpool::Pool::current().is_some());
    ///     let (a, b) = stealpool::join(|| numbers[..50].iter().sum::<u64>(), || numbers[50..].iter().sum::<u64>());
    ///     a + b
    /// });
    /// assert_eq!(sum, 5050);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn install<F, R>(&self, f: F) -> R
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        if WorkerThread::current_in(&self.shared).is_some() {
            return f();
        }
        self.install_from_outside(f)
    }

    #[cold]
    fn install_from_outside<F, R>(&self, f: F) -> R
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        if Admission::admit(&self.shared, Room::Unlimited).is_err() {
            return f();
        }
        // From a worker of another pool, that worker runs its own pool's
        // work while it waits (`worker/cross.rs`).
        let job = StackJob::new(f, cross::caller_latch());
        // SAFETY: `job` stays in this frame until its latch is set, which
        // `wait_for_other_pool` waits for.
        Shared::inject(&self.shared, unsafe { job.as_job_ref(true) });
        cross::wait_for_other_pool(&job.latch);
        job.into_result().into_return_value()
    }

    /// Starts a thread for every worker of the current capacity that has
    /// none yet, so the next tasks pay no thread start (rusty_pool's
    /// `start_core_threads`; [`Builder::prealloc`] does this at build).
    /// Returns how many threads it started. The threads idle until work
    /// comes; with a [`keep_alive`](crate::Builder::keep_alive) they expire like
    /// any idle thread (down to [`min_workers`](crate::Builder::min_workers)). On a
    /// shut-down pool it starts nothing and returns `Ok(0)`.
    ///
    /// # Errors
    ///
    /// The operating system's error if it refused a thread; the threads
    /// started before it keep running, and the missing ones start on demand.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(3).build()?;
    /// assert_eq!(pool.stats().live_workers, 0); // threads start on demand
    /// assert_eq!(pool.prestart()?, 3);
    /// assert_eq!(pool.stats().live_workers, 3);
    /// assert_eq!(pool.prestart()?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn prestart(&self) -> std::io::Result<usize> {
        Shared::prestart(&self.shared)
    }

    /// Runs `body` with a [`Scope`] whose spawned closures may borrow from
    /// the caller's stack, and returns once every one of them has finished,
    /// like [`std::thread::scope`].
    ///
    /// The body runs on the calling thread; spawned closures run on the pool.
    /// [`Scope::spawn`] never blocks and is never refused (a
    /// [`queue_limit`](crate::Builder::queue_limit) does not apply to it: the scope
    /// waits for its spawns anyway); `scope` itself blocks until every
    /// spawn has finished.
    /// Called from inside one of the pool's tasks, the waiting worker runs
    /// other tasks meanwhile, so nested scopes never deadlock. If the body or
    /// any spawned closure panics, the panic is re-raised here after all of
    /// them finished (the body's first, else the first spawn's). On a shut
    /// down pool, spawned closures run inline on the spawning thread.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).build()?;
    /// let mut halves = [0u64; 2];
    /// let numbers: Vec<u64> = (1..=100).collect();
    /// let (left, right) = halves.split_at_mut(1);
    /// pool.scope(|s| {
    ///     s.spawn(|| left[0] = numbers[..50].iter().sum());
    ///     s.spawn(|| right[0] = numbers[50..].iter().sum());
    /// });
    /// assert_eq!(halves[0] + halves[1], 5050);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn scope<'env, F, R>(&self, body: F) -> R
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
    {
        self.scope_with(false, body)
    }

    /// Like [`Pool::scope`], but the closures spawned in it start oldest
    /// first, like rayon's `scope_fifo`: they go through the pool's shared
    /// FIFO queue instead of the spawning worker's own LIFO deque (the
    /// order is as strict as [`Pool::spawn_fifo`]'s). Spawns from outside
    /// the pool already take that queue, so there the two scopes are alike.
    ///
    /// ```
    /// use std::sync::Mutex;
    /// let pool = stealpool::Pool::builder().capacity(1).build()?;
    /// let order = Mutex::new(Vec::new());
    /// pool.install(|| {
    ///     pool.scope_fifo(|s| {
    ///         for i in 0..4 {
    ///             let order = &order;
    ///             s.spawn(move || order.lock().unwrap().push(i));
    ///         }
    ///     })
    /// });
    /// assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3]); // one worker: exactly in order
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn scope_fifo<'env, F, R>(&self, body: F) -> R
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
    {
        self.scope_with(true, body)
    }

    fn scope_with<'env, F, R>(&self, fifo: bool, body: F) -> R
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
    {
        let worker = WorkerThread::current_in(&self.shared);
        let latch = match worker {
            Some(worker) => worker.new_latch(),
            None => cross::caller_latch(),
        };
        let scope = Scope::new(&self.shared, latch, fifo);
        let result = panic::catch_unwind(AssertUnwindSafe(|| body(&scope)));
        scope.wait_for_spawns(worker);
        let value = match result {
            Ok(value) => value,
            Err(payload) => {
                scope.discard_spawn_panic();
                panic::resume_unwind(payload)
            }
        };
        scope.resume_spawn_panic();
        value
    }

    /// Runs `a` and `b`, potentially in parallel, and returns both results.
    ///
    /// Inside the pool, `b` waits in a frame on the calling worker's stack
    /// while the worker runs `a`, and is offered to thieves when one could
    /// take it (the worker's deque is empty or a worker is idle); if nobody
    /// took it, the worker runs `b` itself (no allocation either way). A
    /// worker keeps three such halves waiting at most, the outermost: a
    /// `join` nested inside them runs `a` then `b` as plain calls, leaving
    /// thieves the bigger, outer halves first. From outside, the whole `join` runs on the pool and the
    /// caller blocks until both finished. Never refused and never held back
    /// by a [`queue_limit`](crate::Builder::queue_limit). A panic in either closure
    /// is re-raised after both finished. On a shut down pool both run on the
    /// calling thread.
    ///
    /// "Potentially" is meant: `a` must not wait for something only `b`
    /// does (a channel, a barrier). When no other worker is free to take
    /// `b` — a one-worker pool, or every other worker busy or just falling
    /// asleep — `b` runs after `a` on the same thread, as in rayon. Tasks
    /// that must run at the same time belong in [`Pool::scope`] spawns or
    /// separate submits.
    ///
    /// ```
    /// fn fib(pool: &stealpool::Pool, n: u64) -> u64 {
    ///     if n < 10 {
    ///         return (1..=n).fold((0, 1), |(a, b), _| (b, a + b)).0;
    ///     }
    ///     let (a, b) = pool.join(|| fib(pool, n - 1), || fib(pool, n - 2));
    ///     a + b
    /// }
    /// let pool = stealpool::Pool::builder().capacity(2).build().unwrap();
    /// assert_eq!(fib(&pool, 20), 6765);
    /// ```
    pub fn join<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce() -> RA + Send,
        B: FnOnce() -> RB + Send,
        RA: Send,
        RB: Send,
    {
        if let Some(worker) = WorkerThread::current_in(&self.shared) {
            return join_in_worker(worker, a, b);
        }
        self.join_from_outside(a, b)
    }

    #[cold]
    fn join_from_outside<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce() -> RA + Send,
        B: FnOnce() -> RB + Send,
        RA: Send,
        RB: Send,
    {
        if Admission::admit(&self.shared, Room::Unlimited).is_err() {
            return join_on_caller(a, b);
        }
        let shared: &Shared = &self.shared;
        let job = StackJob::new(
            move || match WorkerThread::current_in(shared) {
                Some(worker) => join_in_worker(worker, a, b),
                // No worker thread could start: the job runs stranded, on
                // a thread outside the pool ("caller runs").
                None => join_on_caller(a, b),
            },
            cross::caller_latch(),
        );
        // SAFETY: `job` stays in this frame until its latch is set, which
        // `wait_for_other_pool` waits for.
        Shared::inject(&self.shared, unsafe { job.as_job_ref(true) });
        cross::wait_for_other_pool(&job.latch);
        job.into_result().into_return_value()
    }

    /// The pool whose worker is running the calling code, if any.
    ///
    /// Returns `None` outside any pool, and also inside a pool whose last
    /// handle is already gone (it is shutting down).
    ///
    /// ```
    /// use stealpool::Pool;
    ///
    /// assert!(Pool::current().is_none());
    /// let pool = Pool::builder().capacity(1).build().unwrap();
    /// let inside = pool.spawn(|| Pool::current().is_some()).unwrap();
    /// assert!(inside.join().unwrap());
    /// ```
    pub fn current() -> Option<Pool> {
        let worker = WorkerThread::current()?;
        if worker.shared.config.hidden {
            // A `FuncPool`'s inner pool is never handed out.
            return None;
        }
        if !worker.shared.add_handle_if_open() {
            return None;
        }
        Some(Pool {
            shared: worker.shared.clone(),
        })
    }
}

impl Clone for Pool {
    fn clone(&self) -> Self {
        self.shared.add_handle();
        Pool {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if self.shared.drop_handle() {
            if self.shared.is_detached() {
                // `shutdown_background`, or a `shutdown_timeout` that gave
                // up: closed already; the threads finish on their own.
                self.shared.close();
            } else {
                self.shutdown();
            }
        }
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}
