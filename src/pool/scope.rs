//! `Scope`: spawned closures that may borrow from the caller's stack.

use std::fmt;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::panic::{self, AssertUnwindSafe};

use crossbeam_utils::CachePadded;

use crate::pool::scope_credit;
use crate::pool::scoped_handle::{HandleWaiters, ScopedJoinHandle, ScopedTask, SpawnedTask};
use crate::scheduler::{cross, Admission, HeapJob, JobKind, Latch, Room, Shared, WorkerThread};
use crate::sync::{lock, Arc, AtomicUsize, Mutex, Ordering};
use crate::unwind::{drop_payload, Payload};

/// A scope to spawn borrowing closures on the pool, from
/// [`Pool::scope`](crate::Pool::scope). Like [`std::thread::Scope`]:
/// `'scope` is the scope's own lifetime, `'env` that of the borrowed data.
///
/// # Examples
///
/// ```
/// let pool = stealpool::Pool::builder().capacity(2).build().unwrap();
/// let words = ["steal", "pool"];
/// let total = std::sync::atomic::AtomicUsize::new(0);
/// pool.scope(|s| {
///     for word in &words {
///         let total = &total;
///         s.spawn(move || {
///             total.fetch_add(word.len(), std::sync::atomic::Ordering::Relaxed);
///         });
///     }
/// });
/// assert_eq!(total.into_inner(), 9);
/// ```
///
/// # What the borrow checker refuses
///
/// Spawned closures run while the body goes on, on other threads, so they
/// follow the rules of [`std::thread::scope`]. A spawned closure may not
/// borrow what the body itself owns (it ends before the spawns do; `move`
/// it in instead):
///
/// ```compile_fail,E0373
/// let pool = stealpool::Pool::builder().capacity(1).build().unwrap();
/// pool.scope(|s| {
///     let local = vec![1, 2, 3];
///     s.spawn(|| println!("{local:?}"));
/// });
/// ```
///
/// Two spawns may not both borrow the same data mutably, nor the body
/// change what a spawn reads:
///
/// ```compile_fail,E0499
/// let pool = stealpool::Pool::builder().capacity(1).build().unwrap();
/// let mut total = 0;
/// pool.scope(|s| {
///     s.spawn(|| total += 1);
///     s.spawn(|| total += 1);
/// });
/// ```
///
/// ```compile_fail,E0502
/// let pool = stealpool::Pool::builder().capacity(1).build().unwrap();
/// let mut data = vec![1];
/// pool.scope(|s| {
///     s.spawn(|| println!("{data:?}"));
///     data.push(2);
/// });
/// ```
///
/// What a spawn captures must be `Send` (an `Rc` is not; an `Arc` is):
///
/// ```compile_fail,E0277
/// let pool = stealpool::Pool::builder().capacity(1).build().unwrap();
/// let shared = std::rc::Rc::new(5);
/// pool.scope(|s| {
///     s.spawn(|| println!("{shared}"));
/// });
/// ```
///
/// Neither the scope nor a [`ScopedJoinHandle`] outlives the call to
/// `scope`: joining happens inside it.
///
/// ```compile_fail,E0521
/// let pool = stealpool::Pool::builder().capacity(1).build().unwrap();
/// let mut escaped = None;
/// pool.scope(|s| escaped = Some(s));
/// ```
///
/// ```compile_fail,E0521
/// let pool = stealpool::Pool::builder().capacity(1).build().unwrap();
/// let mut handle = None;
/// pool.scope(|s| handle = Some(s.spawn_handle(|| 1)));
/// ```
///
/// ```compile_fail
/// // "lifetime may not live long enough": the handle is tied to the scope.
/// let pool = stealpool::Pool::builder().capacity(1).build().unwrap();
/// let handle = pool.scope(|s| s.spawn_handle(|| 1));
/// assert_eq!(handle.join().unwrap(), 1);
/// ```
pub struct Scope<'scope, 'env: 'scope> {
    /// Spawned closures not yet finished, plus one for the body. On a cache
    /// line of its own: every spawn and every finish writes it, while the
    /// fields every spawn reads (`shared`, `fifo`) stay shared unmodified
    /// in the spawning worker's cache.
    pending: CachePadded<AtomicUsize>,
    shared: &'scope Arc<Shared>,
    /// Spawns go to the pool's FIFO injector, also from inside the pool
    /// (`Pool::scope_fifo`).
    fifo: bool,
    /// The first panic of a spawned closure that nobody joined.
    panic: Mutex<Option<Payload>>,
    /// Where handles of this scope's spawns block.
    waiters: HandleWaiters,
    /// Set when `pending` reaches zero.
    latch: Latch,
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

// The spawn credit keeps its count in the low bits of a scope's address.
const _: () = assert!(std::mem::align_of::<Scope<'static, 'static>>() > scope_credit::CREDITS);

/// A pointer to a scope that a spawned job carries.
struct ScopeRef<'scope, 'env>(*const Scope<'scope, 'env>);

// SAFETY: the pointee is `Sync` (atomics, a mutex, a latch and a shared
// reference), and the scope outlives every job it spawned: `Pool::scope`
// waits for `pending` to reach zero before the scope's frame ends.
unsafe impl Send for ScopeRef<'_, '_> {}

impl<'scope, 'env> ScopeRef<'scope, 'env> {
    /// Runs a closure spawned with [`Scope::spawn`]: no handle, so nothing
    /// but the closure, its panic (kept for the scope) and the count. A
    /// method (not a field access) so the job's closure captures the whole
    /// `Send` wrapper.
    #[inline]
    fn run<F: FnOnce()>(self, task: MaybeUninit<F>) {
        // SAFETY: `spawn` made it initialised; it is read once, here.
        let task = unsafe { task.assume_init() };
        // Its spawns into this scope spend a credit (`scope_credit.rs`).
        let unspent = scope_credit::run_with_credit(self.0.cast(), || {
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(task)) {
                // SAFETY: see the `Send` impl: the scope is alive until this
                // job decrements `pending`, which comes after this borrow
                // ends.
                unsafe { &*self.0 }.keep_unjoined_panic(payload);
            }
        });
        // SAFETY: this job and its unspent credits are counted in
        // `pending`, and no reference to the scope is held across the call
        // (the owner may free the scope as soon as the count reaches zero).
        unsafe { Scope::finish(self.0, 1 + unspent) };
    }

    /// Runs a task spawned with [`Scope::spawn_handle`], leaving its result
    /// for its handle.
    fn run_task<F, T>(self, spawned: MaybeUninit<SpawnedTask<F, T>>)
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        // SAFETY: `spawn_handle` made it initialised; it is read once, here.
        let spawned = unsafe { spawned.assume_init() };
        // SAFETY: as in `run`.
        let scope = unsafe { &*self.0 };
        // The task catches its own panic; one its handle will never see
        // comes back here.
        if let Some(payload) = ScopedTask::run(spawned, &scope.waiters) {
            scope.keep_unjoined_panic(payload);
        }
        // SAFETY: the scope is alive (above); `scope` is not used after.
        unsafe { Scope::finish_one(self.0) };
    }
}

impl<'scope, 'env> Scope<'scope, 'env> {
    pub(crate) fn new(shared: &'scope Arc<Shared>, latch: Latch, fifo: bool) -> Self {
        Scope {
            pending: CachePadded::new(AtomicUsize::new(1)),
            shared,
            fifo,
            panic: Mutex::new(None),
            waiters: HandleWaiters::new(),
            latch,
            scope: PhantomData,
            env: PhantomData,
        }
    }

    /// Spawns `task` on the pool, like rayon's `Scope::spawn`. It may
    /// borrow anything that outlives the scope, and it may spawn more
    /// (capture `s` itself). [`Pool::scope`] returns only after every
    /// spawned closure finished, and re-raises the first panic of one.
    /// For a closure's result, or to wait for one closure alone, spawn it
    /// with [`Scope::spawn_handle`].
    ///
    /// Never blocks and is never refused: a
    /// [`queue_limit`](crate::Builder::queue_limit) does not apply (the scope
    /// waits for its spawns anyway), and if the pool is shut down, `task`
    /// runs inline on the calling thread. Spawned inside the pool, a task
    /// goes to the worker's own deque (newest first there); in a
    /// [`Pool::scope_fifo`](crate::Pool::scope_fifo), to the pool's FIFO
    /// queue. A closure that captures one word (a reference) is queued
    /// with no allocation at all; larger ones take a block of the
    /// spawning thread's job cache (no allocator call once it is warm) or,
    /// past 64 bytes, a `Box`.
    ///
    /// [`Pool::scope`]: crate::Pool::scope
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).build().unwrap();
    /// let mut squares = vec![0u64; 8];
    /// pool.scope(|s| {
    ///     for (i, square) in squares.iter_mut().enumerate() {
    ///         s.spawn(move || *square = (i * i) as u64);
    ///     }
    /// });
    /// assert_eq!(squares[7], 49);
    /// ```
    pub fn spawn<F>(&'scope self, task: F)
    where
        F: FnOnce() + Send + 'scope,
    {
        self.count_spawn();
        let scope = ScopeRef(self);
        // The task travels as `MaybeUninit`: what it captures (often `&Scope`
        // itself) is then no argument of the job's call or of `run`, whose
        // references would have to stay valid until those calls return,
        // past the last `finish_one`, after which the owner frees the
        // scope (Miri: `tests/job_memory.rs`). Free at run time.
        let task = MaybeUninit::new(task);
        self.push(move || scope.run(task));
    }

    /// Spawns `task` on the pool and returns a handle to its result, like
    /// [`std::thread::Scope::spawn`]. Otherwise as [`Scope::spawn`]; the
    /// handle costs a little per spawn (a result slot shared with the job,
    /// and one more atomic read-modify-write on each side), so spawn with
    /// [`Scope::spawn`] whatever needs none. A panic returned by
    /// [`ScopedJoinHandle::join`] is not re-raised by [`Pool::scope`].
    ///
    /// [`Pool::scope`]: crate::Pool::scope
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).build().unwrap();
    /// let numbers: Vec<u64> = (1..=8).collect();
    /// let sum = pool.scope(|s| {
    ///     let left = s.spawn_handle(|| numbers[..4].iter().map(|i| i * i).sum::<u64>());
    ///     let right = s.spawn_handle(|| numbers[4..].iter().map(|i| i * i).sum::<u64>());
    ///     left.join().unwrap() + right.join().unwrap()
    /// });
    /// assert_eq!(sum, 204);
    /// ```
    pub fn spawn_handle<F, T>(&'scope self, task: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        // One job block (no allocation once this thread's cache is warm,
        // for closures that fit), shared by the job and the handle; the job
        // itself (two words: the scope and the task) is stored inline.
        let (spawned, packet) = ScopedTask::store(task);
        let handle = ScopedJoinHandle::new(packet, self.shared, &self.panic, &self.waiters);
        self.count_spawn();
        let scope = ScopeRef(self);
        // As in `spawn`: no reference the task holds is an argument of a
        // call that outlives the last `finish_one`.
        let spawned = MaybeUninit::new(spawned);
        self.push(move || scope.run_task(spawned));
        handle
    }

    /// Counts a spawn in `pending` before it is queued: from a job of this
    /// scope, usually by spending the job's credit (`scope_credit.rs`).
    #[inline]
    fn count_spawn(&self) {
        let add = scope_credit::count_spawn((self as *const Self).cast());
        if add > 0 {
            // Relaxed: the job that decrements this cannot start before the
            // push that follows, which publishes the increment (and every
            // later push of the same job publishes it again).
            self.pending.fetch_add(add, Ordering::Relaxed);
        }
    }

    /// Queues one spawned job (counted in `pending` already), or runs it
    /// here on a shut down pool.
    #[inline]
    fn push<J: FnOnce() + Send + 'scope>(&self, job: J) {
        match Admission::admit(self.shared, Room::Unlimited) {
            Ok(admission) if self.fifo => admission.push_fifo(self.shared, HeapJob::into_job_ref(job, JobKind::Bound)),
            Ok(admission) => admission.push(self.shared, HeapJob::into_job_ref(job, JobKind::Bound)),
            Err(_) => job(),
        }
    }

    /// Keeps the panic of a spawned closure that nobody joined: the first
    /// one is re-raised by `Pool::scope`, later ones are dropped.
    #[cold]
    fn keep_unjoined_panic(&self, payload: Payload) {
        if let Some(worker) = WorkerThread::current() {
            worker.note_panic();
        }
        let mut first = lock(&self.panic);
        if first.is_none() {
            *first = Some(payload);
        } else {
            drop(first);
            // Only the first panic is re-raised.
            drop_payload(payload);
        }
    }

    /// One spawned closure (or the body) finished.
    ///
    /// A pointer, not `&self`: the owner may free the scope (its frame ends)
    /// as soon as the latch is set, while this call is still running, and a
    /// reference argument must stay valid until its function returns (Miri
    /// reports the frame's deallocation under such a reference).
    ///
    /// # Safety
    /// `this` points to a live scope whose `pending` counts this caller.
    unsafe fn finish_one(this: *const Self) {
        // SAFETY: forwarded from the caller.
        unsafe { Scope::finish(this, 1) }
    }

    /// A spawned job finished, handing back `count` (itself and its unspent
    /// credits). As [`Scope::finish_one`].
    ///
    /// # Safety
    /// `this` points to a live scope whose `pending` counts these `count`.
    unsafe fn finish(this: *const Self, count: usize) {
        // SAFETY: alive until the latch is set (caller); the reference is not
        // used after the decrement.
        let pending = unsafe { &(*this).pending };
        // AcqRel: Release publishes this job's writes; the last decrement
        // acquires everyone's and the latch passes them on to the owner.
        if pending.fetch_sub(count, Ordering::AcqRel) == count {
            // SAFETY: the latch is alive: the owner waits for it before the
            // scope's frame ends, and we touch nothing after setting it. The
            // last spawn ends on a thread running the pool's jobs (or inside
            // the scope, on a closed pool), which keeps the pool alive.
            unsafe { Latch::set(std::ptr::addr_of!((*this).latch)) };
        }
    }

    /// The body returned (or panicked): wait for every spawned closure.
    pub(crate) fn wait_for_spawns(&self, worker: Option<&WorkerThread>) {
        // SAFETY: the owner's own count; the owner frees nothing before the
        // latch (below).
        unsafe { Scope::finish_one(self) };
        match worker {
            Some(worker) => worker.wait_until(&self.latch),
            // The latch is `cross::caller_latch()`'s (`Pool::scope_with`).
            None => cross::wait_for_other_pool(&self.latch),
        }
    }

    /// The body panicked: its panic is the one re-raised, so a spawned
    /// closure's payload is dropped here, safely, not during the unwind.
    pub(crate) fn discard_spawn_panic(&self) {
        let payload = lock(&self.panic).take();
        if let Some(payload) = payload {
            drop_payload(payload);
        }
    }

    /// Re-raises the first panic of a spawned closure, if any.
    pub(crate) fn resume_spawn_panic(&self) {
        if let Some(payload) = lock(&self.panic).take() {
            panic::resume_unwind(payload);
        }
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("pending", &self.pending.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
