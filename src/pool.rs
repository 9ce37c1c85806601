//! The public handle: `Pool`.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};

use crate::builder::Builder;
use crate::error::{BuildError, SubmitError};
use crate::job::{HeapJob, JobRef, StackJob};
use crate::join::{join_in_worker, join_on_caller};
use crate::join_handle::{JoinHandle, Packet};
use crate::latch::Latch;
use crate::registry::Shared;
use crate::scope::Scope;
use crate::stats::Stats;
use crate::sync::{lock, Arc, Ordering};
use crate::worker::WorkerThread;

/// A work-stealing thread pool.
///
/// `Pool` is a cheap handle: clones share one pool, and it is `Send + Sync`.
/// When the last handle is dropped the pool shuts down gracefully (as
/// [`Pool::shutdown`]); if that happens inside one of the pool's own tasks,
/// the pool closes without waiting and its workers finish the queue and exit
/// on their own.
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

/// Where an accepted task goes.
pub(crate) enum Admission<'a> {
    /// Submitted from one of the pool's own workers: its deque.
    Inside(&'a WorkerThread),
    /// Submitted from any other thread: the injector.
    Outside,
}

impl Admission<'_> {
    /// Decides whether `shared`'s pool takes a new counted task now, and
    /// counts it if so. `None`: the pool is closed.
    #[inline]
    pub(crate) fn admit(shared: &Shared) -> Option<Admission<'_>> {
        match WorkerThread::current_in(shared) {
            // Inside: the submitting task itself is counted and running, so
            // the workers cannot have drained; the closed check only decides
            // whether new work is refused.
            Some(worker) if !shared.is_closed() => Some(Admission::Inside(worker)),
            Some(_) => None,
            None if shared.accept_outside() => Some(Admission::Outside),
            None => None,
        }
    }

    /// Pushes the admitted task.
    #[inline]
    pub(crate) fn push(self, shared: &Shared, job: JobRef) {
        match self {
            Admission::Inside(worker) => worker.push_counted(job),
            Admission::Outside => shared.inject(job),
        }
    }
}

impl Pool {
    pub(crate) fn from_shared(shared: Arc<Shared>) -> Pool {
        Pool { shared }
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
    /// From outside the pool this is lock-free: one push onto the global
    /// injector and one read of the idle word, waking a worker only if none
    /// is awake to find the task. From inside one of the pool's tasks it
    /// pushes onto that worker's own deque and never blocks, so tasks that
    /// submit tasks cannot deadlock the pool. The closure is boxed once: the
    /// task's only allocation.
    ///
    /// A panic in `task` is caught: the worker keeps running, the panic
    /// handler gets the payload and [`Stats::panicked`] counts it.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Closed`] with the closure itself if the pool is shut
    /// down.
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
        match Admission::admit(&self.shared) {
            Some(admission) => {
                admission.push(&self.shared, HeapJob::into_job_ref(task));
                Ok(())
            }
            None => Err(SubmitError::Closed(task)),
        }
    }

    /// Runs `task` on the pool and returns a handle to its result.
    ///
    /// [`JoinHandle::join`] blocks for the result (inside the pool it runs
    /// other tasks while it waits); `JoinHandle` is also a `Future`. A panic
    /// in `task` comes back as `Err(payload)` and is counted in
    /// [`Stats::panicked`]; if the handle was dropped, the payload goes to the
    /// panic handler instead.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Closed`] with the closure itself if the pool is shut
    /// down.
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
        let Some(admission) = Admission::admit(&self.shared) else {
            return Err(SubmitError::Closed(task));
        };
        let packet = Arc::new(Packet::new(self.shared.config.panic_handler.clone()));
        let handle = JoinHandle::new(packet.clone(), &self.shared);
        admission.push(&self.shared, HeapJob::into_job_ref(move || packet.run(task)));
        Ok(handle)
    }

    /// Runs `body` with a [`Scope`] whose spawned closures may borrow from
    /// the caller's stack, and returns once every one of them has finished,
    /// like [`std::thread::scope`].
    ///
    /// The body runs on the calling thread; spawned closures run on the pool.
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
        let worker = WorkerThread::current_in(&self.shared);
        let latch = match worker {
            Some(worker) => worker.new_latch(),
            None => Latch::for_current_thread(),
        };
        let scope = Scope::new(&self.shared, latch);
        let result = panic::catch_unwind(AssertUnwindSafe(|| body(&scope)));
        scope.wait_for_spawns(worker);
        let value = match result {
            Ok(value) => value,
            Err(payload) => panic::resume_unwind(payload),
        };
        scope.resume_spawn_panic();
        value
    }

    /// Runs `a` and `b`, potentially in parallel, and returns both results.
    ///
    /// Inside the pool, `b` is offered to thieves while the calling worker
    /// runs `a`; if nobody took it, the worker runs `b` itself (no allocation
    /// either way). From outside, the whole `join` runs on the pool and the
    /// caller blocks. A panic in either closure is re-raised after both
    /// finished. On a shut down pool both run on the calling thread.
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
        if !self.shared.accept_outside() {
            return join_on_caller(a, b);
        }
        let job = StackJob::new(
            move || {
                let worker = WorkerThread::current().expect("an injected job runs on a worker");
                join_in_worker(worker, a, b)
            },
            Latch::for_current_thread(),
        );
        // SAFETY: `job` stays in this frame until its latch is set, which
        // `wait_blocking` waits for.
        self.shared.inject(unsafe { job.as_job_ref(true) });
        job.latch.wait_blocking();
        job.into_result().into_return_value()
    }

    /// Blocks until nothing is queued or running: every task accepted so far
    /// (and every task those tasks submitted) has finished.
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
        self.shared.wait_idle();
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
        // Holding the lock while joining makes a second, racing `shutdown`
        // wait until the threads are really gone.
        let mut threads = lock(&self.shared.threads);
        for thread in threads.drain(..) {
            // Workers catch every task panic, so a join error would be a bug
            // in the pool itself; there is nothing left to clean up either way.
            let _ = thread.join();
        }
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
        self.shared.config.capacity
    }

    /// A snapshot of the pool's figures.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).build().unwrap();
    /// let stats = pool.stats();
    /// assert!(stats.busy_workers <= stats.live_workers);
    /// ```
    pub fn stats(&self) -> Stats {
        let shared = &*self.shared;
        // Completed first, then submitted: see `Shared::all_tasks_done`, this
        // order keeps `completed <= submitted` in the snapshot.
        let completed = shared.completed();
        let submitted = shared.submitted().max(completed);
        let mut live_workers = 0;
        let mut busy_workers = 0;
        let mut sleeping_workers = 0;
        let mut panicked = 0;
        let mut stolen = 0;
        for (index, slot) in shared.slots.iter().enumerate() {
            let counters = &slot.counters;
            // Relaxed: figures for display, each individually coherent.
            let live = counters.live.load(Ordering::Relaxed);
            live_workers += usize::from(live);
            busy_workers += usize::from(live && counters.busy.load(Ordering::Relaxed));
            sleeping_workers += usize::from(live && shared.sleep.is_sleeping(index));
            panicked += counters.panicked.load(Ordering::Relaxed);
            stolen += counters.stolen.load(Ordering::Relaxed);
        }
        let pending = usize::try_from(submitted - completed).unwrap_or(usize::MAX);
        Stats {
            capacity: shared.config.capacity,
            live_workers,
            busy_workers,
            sleeping_workers,
            queued: pending.saturating_sub(busy_workers),
            submitted,
            completed,
            panicked,
            stolen,
        }
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
        let handles = &worker.shared.handles;
        let mut count = handles.load(Ordering::Relaxed);
        loop {
            if count == 0 {
                return None;
            }
            // Relaxed: the count only decides who shuts down; the Arc keeps
            // the memory alive independently.
            match handles.compare_exchange_weak(count, count + 1, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => {
                    return Some(Pool {
                        shared: worker.shared.clone(),
                    })
                }
                Err(actual) => count = actual,
            }
        }
    }
}

impl Clone for Pool {
    fn clone(&self) -> Self {
        // Relaxed: as in `current`; the clone comes from a live handle.
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        Pool {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // AcqRel: the last dropper sees every other handle's uses before it
        // shuts down.
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shutdown();
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
