//! The public handle: `Pool`.

pub(crate) mod block_in_place;
pub(crate) mod broadcast;
pub(crate) mod builder;
pub(crate) mod current;
pub(crate) mod global;
pub(crate) mod join;
pub(crate) mod join_error;
pub(crate) mod join_handle;
pub(crate) mod lifecycle;
pub(crate) mod scope;
pub(crate) mod scoped_handle;
pub(crate) mod submit_async;
pub(crate) mod task;
pub(crate) mod task_set;
pub(crate) mod yield_now;

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::config::Autoscale;
use crate::error::{BuildError, RebootError, ShutdownTimeout, SubmitError, TuneError};
use crate::pool::builder::Builder;
use crate::pool::join::{join_in_worker, join_on_caller};
use crate::pool::join_handle::{JoinHandle, Packet, SpawnJob};
use crate::pool::scope::Scope;
use crate::pool::task::Task;
use crate::pool::task_set::SetMember;
use crate::scheduler::{cross, Admission, HeapJob, JobKind, JobRef, Refusal, Room, Shared, StackJob, WorkerThread};
use crate::stats::{Stats, WorkerStats};
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

    /// Runs `task` on the pool.
    ///
    /// **Blocking.** From outside the pool, on a pool without a
    /// [`queue_limit`](Builder::queue_limit), this is lock-free and never
    /// blocks: one atomic read-modify-write that counts the task (and sees
    /// whether the pool is closed), one push onto the global injector, then
    /// a fence and one read of the idle word, waking a worker only if none
    /// is awake to find the task. With a
    /// `queue_limit` and a full queue it blocks until a place frees (or
    /// refuses at once with [`nonblocking`](Builder::nonblocking), or when
    /// [`max_blocked_submitters`](Builder::max_blocked_submitters) threads
    /// already wait). From inside one of the pool's tasks it pushes onto
    /// that worker's own deque and never blocks, whatever the limit, so
    /// tasks that submit tasks cannot deadlock the pool. A closure that
    /// captures at most two words (a reference, an `Arc`, a couple of
    /// integers) is stored in the queued job itself, with no allocation; a
    /// larger one of up to 64 bytes takes a block of the calling thread's job
    /// cache (workers recycle theirs, so work submitted inside the pool stops
    /// allocating once warm), and a larger one still is boxed.
    ///
    /// **Start order.** Tasks submitted from outside wait in one FIFO queue.
    /// By default a worker takes a batch of them and runs it oldest first,
    /// so the rest of its batch may wait behind a long task while later
    /// tasks start on other workers; with [`Builder::fifo`] a worker takes
    /// one at a time and they start in submission order as far as the
    /// workers allow. Tasks submitted from inside a task go to that
    /// worker's own deque and run newest first there (locality); use
    /// [`Pool::spawn_fifo`] for FIFO order.
    ///
    /// A panic in `task` is caught: the worker keeps running, the panic
    /// handler gets the payload and [`Stats::panicked`] counts it.
    ///
    /// **Caller runs.** If the operating system refuses to start a worker
    /// thread while the pool has none alive (a thread limit, a stack size it
    /// cannot map), `submit` runs the queued tasks on the calling thread
    /// before it returns, so accepted work never waits for a thread that
    /// cannot exist; the first worker that does start takes over. Tasks
    /// those tasks submit are queued and run by the same loop, one after
    /// another, never by recursion. The refusal is reported once per pool
    /// (a `log` record with the default `log` feature, else a line on
    /// stderr).
    ///
    /// # Errors
    ///
    /// Each with the closure itself:
    /// * [`SubmitError::Closed`] if the pool is shut down (also while this
    ///   call waited for room);
    /// * [`SubmitError::Full`] on a pool with a `queue_limit`, from outside
    ///   only: the queue is full and the pool is `nonblocking`, or
    ///   `max_blocked_submitters` threads already wait for room.
    ///
    /// Never [`SubmitError::Timeout`] (that is [`Pool::submit_timeout`]'s).
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).build()?;
    /// pool.submit(|| println!("running on {:?}", std::thread::current().name()))?;
    /// pool.wait_idle();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn submit<F>(&self, task: F) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.submit_with_room(task, Room::AsConfigured)
    }

    #[inline]
    fn submit_with_room<F>(&self, task: F, room: Room) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        match Admission::admit(&self.shared, room) {
            Ok(admission) => {
                admission.push(&self.shared, HeapJob::into_job_ref(task, JobKind::Task));
                Ok(())
            }
            Err(refusal) => Err(self.refuse(refusal, task)),
        }
    }

    /// Admits a counted task and pushes the job `into_job` makes of `value`;
    /// on refusal `value` comes back untouched. The building block of
    /// `FuncPool::invoke` (an argument, no closure) and `MultiPool::submit`
    /// (a closure with a load counter).
    #[inline]
    pub(crate) fn submit_mapped<T>(
        &self,
        value: T,
        room: Room,
        into_job: impl FnOnce(T) -> JobRef,
    ) -> Result<(), SubmitError<T>> {
        match Admission::admit(&self.shared, room) {
            Ok(admission) => {
                admission.push(&self.shared, into_job(value));
                Ok(())
            }
            Err(refusal) => Err(self.refuse(refusal, value)),
        }
    }

    /// The room a submit with an optional timeout asks for.
    pub(crate) fn room_for(timeout: Option<Duration>) -> Room {
        match timeout {
            None => Room::AsConfigured,
            Some(timeout) => Instant::now().checked_add(timeout).map_or(Room::Forever, Room::Until),
        }
    }

    #[cold]
    fn refuse<F>(&self, refusal: Refusal, task: F) -> SubmitError<F> {
        self.shared.count_rejected();
        refusal.with(task)
    }

    /// Like [`Pool::submit`], but waits at most `timeout` for room in a full
    /// queue (see [`Builder::queue_limit`]), even on a nonblocking pool.
    /// Without a `queue_limit`, or from inside the pool's own tasks, it never
    /// blocks (as [`Pool::submit`]).
    ///
    /// # Errors
    ///
    /// Each with the closure itself: [`SubmitError::Timeout`] if no room
    /// opened in time; [`SubmitError::Closed`] if the pool is (or gets) shut
    /// down; [`SubmitError::Full`] if
    /// [`max_blocked_submitters`](Builder::max_blocked_submitters) threads
    /// already wait for room.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = stealpool::Pool::builder().capacity(1).queue_limit(1).build()?;
    /// pool.submit_timeout(|| (), Duration::from_millis(10))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_timeout<F>(&self, task: F, timeout: Duration) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.submit_with_room(task, Pool::room_for(Some(timeout)))
    }

    /// Runs `task` on the pool and returns a handle to its result.
    ///
    /// Queued and blocking exactly as [`Pool::submit`]: never blocks inside
    /// the pool or without a [`queue_limit`](Builder::queue_limit); from
    /// outside, a full bounded queue blocks it until there is room (or it
    /// refuses, as configured). The task costs two allocations: the task
    /// itself and its result's packet, which the handle shares.
    ///
    /// [`JoinHandle::join`] blocks for the result (inside the pool it runs
    /// other tasks while it waits); `JoinHandle` is also a `Future`. A panic
    /// in `task` comes back as `Err(payload)` and is counted in
    /// [`Stats::panicked`]; if the handle was dropped, the payload goes to the
    /// panic handler instead.
    ///
    /// # Errors
    ///
    /// As [`Pool::submit`], each with the closure itself:
    /// [`SubmitError::Closed`] if the pool is shut down;
    /// [`SubmitError::Full`] from outside a pool with a `queue_limit` that is
    /// `nonblocking` (or has `max_blocked_submitters` waiting). Never
    /// `Timeout`.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).build()?;
    /// let handle = pool.spawn(|| 6 * 7)?;
    /// assert_eq!(handle.join().unwrap(), 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn<F, T>(&self, task: F) -> Result<JoinHandle<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_guarded(task, (), Room::AsConfigured)
    }

    /// Like [`Pool::spawn`], but from inside one of the pool's tasks the
    /// task goes to the pool's shared FIFO queue instead of the worker's
    /// own LIFO deque, so tasks spawned this way start oldest first (rayon's
    /// `spawn_fifo`): exactly on one worker, and as far as the workers allow
    /// on several with [`Builder::fifo`] (by default a worker takes them in
    /// batches, see [`Pool::submit`]). From outside the pool it is the same
    /// as [`Pool::spawn`]. Blocking and errors as [`Pool::spawn`].
    ///
    /// # Errors
    ///
    /// As [`Pool::spawn`]: [`SubmitError::Closed`], and on a pool with a
    /// [`queue_limit`](Builder::queue_limit) [`SubmitError::Full`] (only
    /// from outside the pool), each with the closure itself.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// let pool = stealpool::Pool::builder().capacity(1).build()?;
    /// let order = Arc::new(Mutex::new(Vec::new()));
    /// let inner = (pool.clone(), order.clone());
    /// pool.spawn(move || {
    ///     let (pool, order) = inner;
    ///     for i in 0..3 {
    ///         let order = order.clone();
    ///         let _ = pool.spawn_fifo(move || order.lock().unwrap().push(i));
    ///     }
    /// })?
    /// .join()
    /// .unwrap();
    /// pool.wait_idle();
    /// assert_eq!(*order.lock().unwrap(), [0, 1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn_fifo<F, T>(&self, task: F) -> Result<JoinHandle<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let admission = match Admission::admit(&self.shared, Room::AsConfigured) {
            Ok(admission) => admission,
            Err(refusal) => return Err(self.refuse(refusal, task)),
        };
        let packet = Arc::new(Packet::new(self.shared.config.panic_handler.clone(), None));
        let handle = JoinHandle::new(packet.clone(), &self.shared);
        admission.push_fifo(&self.shared, SpawnJob::into_job_ref(packet, task, ()));
        Ok(handle)
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
    /// blocked by a [`queue_limit`](Builder::queue_limit).
    ///
    /// Called from a task of *another* pool, the calling worker runs its own
    /// pool's queued tasks while it waits (as [`Pool::join`],
    /// [`Pool::scope`] and [`JoinHandle::join`] do across pools), so pools
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
    /// comes; with a [`keep_alive`](Builder::keep_alive) they expire like
    /// any idle thread (down to [`min_workers`](Builder::min_workers)). On a
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

    /// [`Pool::spawn`] with a value that lives as long as the task: dropped
    /// after it ran, when it is dropped unrun, or at once on refusal
    /// (`MultiPool`'s load counter).
    pub(crate) fn spawn_guarded<F, T, G>(&self, task: F, guard: G, room: Room) -> Result<JoinHandle<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
        G: Send + 'static,
    {
        self.spawn_member(task, guard, room, None)
    }

    /// [`Pool::spawn_guarded`] for a task that may belong to a `TaskSet`.
    pub(crate) fn spawn_member<F, T, G>(
        &self,
        task: F,
        guard: G,
        room: Room,
        member: Option<SetMember>,
    ) -> Result<JoinHandle<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
        G: Send + 'static,
    {
        let admission = match Admission::admit(&self.shared, room) {
            Ok(admission) => admission,
            Err(refusal) => return Err(self.refuse(refusal, task)),
        };
        Ok(self.push_spawned(admission, task, guard, member))
    }

    /// Pushes an admitted spawned task and returns its handle.
    pub(crate) fn push_spawned<F, T, G>(
        &self,
        admission: Admission<'_>,
        task: F,
        guard: G,
        member: Option<SetMember>,
    ) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
        G: Send + 'static,
    {
        let packet = Arc::new(Packet::new(self.shared.config.panic_handler.clone(), member));
        let handle = JoinHandle::new(packet.clone(), &self.shared);
        admission.push(&self.shared, SpawnJob::into_job_ref(packet, task, guard));
        handle
    }

    /// Runs `body` with a [`Scope`] whose spawned closures may borrow from
    /// the caller's stack, and returns once every one of them has finished,
    /// like [`std::thread::scope`].
    ///
    /// The body runs on the calling thread; spawned closures run on the pool.
    /// [`Scope::spawn`] never blocks and is never refused (a
    /// [`queue_limit`](Builder::queue_limit) does not apply to it: the scope
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
    /// Inside the pool, `b` is offered to thieves while the calling worker
    /// runs `a`; if nobody took it, the worker runs `b` itself (no allocation
    /// either way). From outside, the whole `join` runs on the pool and the
    /// caller blocks until both finished. Never refused and never held back
    /// by a [`queue_limit`](Builder::queue_limit). A panic in either closure
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
    /// wait for itself forever. (Use [`Pool::scope`] or [`JoinHandle`]s to
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
    /// A spawned task that is handed back completes its [`JoinHandle`] when
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

    /// The figures of each worker slot that has or had a thread: slots
    /// `0..n`, where `n` is the highest slot ever started plus one (threads
    /// start in slot order, so this is every slot that ever ran). A slot
    /// whose thread exited (keep-alive, shutdown) reads
    /// [`WorkerState::NotStarted`](crate::WorkerState::NotStarted) and
    /// keeps its counts. Slots never used up to
    /// [`max_capacity`](Pool::max_capacity) are left out, so a fresh pool
    /// with threads on demand returns an empty list.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).max_capacity(64).build().unwrap();
    /// assert!(pool.worker_stats().is_empty()); // no thread yet
    /// pool.prestart().unwrap();
    /// let workers = pool.worker_stats();
    /// assert_eq!(workers.len(), 2);
    /// assert_eq!(workers[1].index, 1);
    /// ```
    pub fn worker_stats(&self) -> Vec<WorkerStats> {
        self.shared.worker_stats()
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

    /// How many workers may run tasks at once.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(3).build().unwrap();
    /// assert_eq!(pool.capacity(), 3);
    /// ```
    pub fn capacity(&self) -> usize {
        self.shared.capacity()
    }

    /// A snapshot of the pool's figures.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).build().unwrap();
    /// let stats = pool.stats();
    /// assert!(stats.busy_workers <= stats.live_workers);
    /// ```
    pub fn stats(&self) -> Stats {
        self.shared.stats()
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
