//! `Pool::broadcast`: one closure run once on every worker of the pool.

use std::panic::{self, AssertUnwindSafe};

use crate::error::SubmitErrorKind;
use crate::pool::Pool;
use crate::scheduler::{Latch, Share, Shared, WorkerThread};
use crate::sync::{lock, AtomicBool, AtomicUsize, Mutex, Ordering};
use crate::unwind::{drop_payload, Payload};

/// Where a [`Pool::broadcast`] closure runs: which worker, and how many
/// take part (rayon's `BroadcastContext`).
///
/// ```
/// let pool = stealpool::Pool::builder().capacity(3).build()?;
/// let seen = pool.broadcast(|ctx| (ctx.index(), ctx.num_workers()))?;
/// assert_eq!(seen, [(0, 3), (1, 3), (2, 3)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BroadcastContext {
    index: usize,
    num_workers: usize,
}

impl BroadcastContext {
    /// The index of the worker running the closure: the same as
    /// [`current_thread_index`](crate::current_thread_index) there.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).build()?;
    /// let same = pool.broadcast(|ctx| Some(ctx.index()) == stealpool::current_thread_index())?;
    /// assert_eq!(same, [true, true]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many workers the broadcast runs on (the length of the `Vec` it
    /// returns).
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).build()?;
    /// assert_eq!(pool.broadcast(|ctx| ctx.num_workers())?, [2, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn num_workers(&self) -> usize {
        self.num_workers
    }
}

/// A broadcast's state, on the broadcaster's stack until every share has
/// been run or abandoned.
struct BroadcastJob<'a, F, R> {
    op: &'a F,
    /// Set under the control lock before any share is queued.
    num_workers: AtomicUsize,
    /// Shares not yet run or abandoned; the last one sets `latch`.
    remaining: AtomicUsize,
    results: Mutex<Vec<Option<R>>>,
    panic: Mutex<Option<Payload>>,
    /// A target's thread left before it ran its share (the pool shut down).
    abandoned: AtomicBool,
    latch: Latch,
}

impl<F, R> BroadcastJob<'_, F, R>
where
    F: Fn(BroadcastContext) -> R + Sync,
    R: Send,
{
    fn share(&self, position: usize) -> Share {
        // SAFETY: `self` outlives every share: `broadcast` waits for the
        // count of shares run or abandoned before its frame ends, and the
        // functions get back the very type they were made for.
        unsafe {
            Share::new(
                (self as *const Self).cast(),
                position,
                Self::run_erased,
                Self::abandon_erased,
            )
        }
    }

    /// # Safety
    /// `job` comes from `share` and is still alive (see `share`).
    unsafe fn run_erased(job: *const (), position: usize, index: usize) {
        // SAFETY: the caller's contract.
        let job = unsafe { &*job.cast::<Self>() };
        job.run(position, index);
    }

    /// # Safety
    /// As `run_erased`.
    unsafe fn abandon_erased(job: *const (), _position: usize) {
        // SAFETY: the caller's contract.
        let job = unsafe { &*job.cast::<Self>() };
        // Relaxed: read by the broadcaster after the latch (Acquire),
        // published by `count_down`'s AcqRel chain and the latch's Release.
        job.abandoned.store(true, Ordering::Relaxed);
        job.count_down();
    }

    fn run(&self, position: usize, index: usize) {
        let context = BroadcastContext {
            index,
            // Relaxed: stored under the control lock before the share was
            // queued; the inbox's lock ordered it before this read.
            num_workers: self.num_workers.load(Ordering::Relaxed),
        };
        match panic::catch_unwind(AssertUnwindSafe(|| (self.op)(context))) {
            Ok(value) => lock(&self.results)[position] = Some(value),
            Err(payload) => {
                let mut first = lock(&self.panic);
                match first.as_ref() {
                    None => *first = Some(payload),
                    Some(_) => {
                        drop(first);
                        drop_payload(payload);
                    }
                }
            }
        }
        self.count_down();
    }

    fn count_down(&self) {
        // AcqRel: the last share acquires what every earlier one did and
        // publishes it with the latch's Release. After the decrement a share
        // that is not the last never touches the job again: the broadcaster
        // may be gone.
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            // SAFETY: the job (and its latch) is alive until the latch is
            // set; the setter runs on a worker of the pool, or on a worker
            // leaving it, either holding the pool's state alive.
            unsafe { Latch::set(&self.latch) };
        }
    }
}

impl Pool {
    /// Runs `op` once on every worker of the pool and returns the results
    /// in worker order (rayon's `broadcast`): per-thread setup, a flush of
    /// per-worker buffers, a look at every worker.
    ///
    /// **Which workers.** Every slot below the pool's
    /// [capacity](Pool::capacity) at the time of the call (slots lent by
    /// [`block_in_place`](crate::block_in_place) included). A slot without
    /// a thread yet gets one first (threads start on demand otherwise), so
    /// a fresh pool of capacity 4 runs `op` on 4 workers; a slot whose
    /// thread the operating system refuses is left out. Workers above the
    /// capacity, parked after a [`Pool::tune`] that shrank it, do not take
    /// part. The set is fixed at the call: a worker whose slot falls above
    /// the capacity before it got to `op` (a `tune` racing the broadcast)
    /// still runs it, on its way to park; slots added later do not.
    /// [`BroadcastContext`] tells each call its worker's index and how many
    /// workers take part.
    ///
    /// **When.** A worker runs `op` when it next looks for work: after the
    /// task it runs now, once its own queue is empty (it does not first
    /// drain the shared queue or steal), or while it waits inside
    /// [`Pool::join`] or [`Pool::scope`]. The call returns when every one
    /// has run it. A worker blocked outside the pool's own waits — inside
    /// `block_in_place`, on a lock or a channel, or in
    /// [`JoinHandle::join`](crate::JoinHandle::join) or
    /// [`TaskSet::join_next`](crate::TaskSet::join_next) once there was
    /// nothing left for it to help with — runs `op` when it returns to the
    /// pool; a broadcast from the very task such a worker waits for would
    /// wait forever.
    ///
    /// **From inside one of the pool's tasks** the calling worker runs its
    /// own share at once, then runs other queued tasks (and the shares of
    /// other broadcasts) while it waits, as [`Pool::join`] does, so
    /// broadcasts from several workers at once do not deadlock.
    ///
    /// `op` is not a task: it is not counted in [`Stats`](crate::Stats),
    /// not held back by a [`queue_limit`](crate::Builder::queue_limit), not
    /// seen by the task hooks, and not waited for by [`Pool::wait_idle`].
    /// If `op` panics on any worker, the panic is re-raised here after
    /// every worker ran it (the workers keep running).
    ///
    /// # Errors
    ///
    /// [`SubmitErrorKind::Closed`] if the pool is shut down, and nothing
    /// ran; or if it was shut down during the call before every worker got
    /// to `op` (the workers that did ran it, and their results are
    /// dropped).
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    ///
    /// std::thread_local! {
    ///     static SEEN: RefCell<u64> = const { RefCell::new(0) };
    /// }
    /// let pool = stealpool::Pool::builder().capacity(4).build()?;
    /// // Tasks add to a per-thread buffer, with no contention ...
    /// pool.scope(|s| {
    ///     for i in 1..=100 {
    ///         s.spawn(move || SEEN.with(|seen| *seen.borrow_mut() += i));
    ///     }
    /// });
    /// // ... and one broadcast flushes every worker's.
    /// let total = AtomicU64::new(0);
    /// let flushed = pool.broadcast(|_ctx| {
    ///     total.fetch_add(SEEN.with(|seen| seen.replace(0)), Ordering::Relaxed);
    /// })?;
    /// assert_eq!(flushed.len(), 4);
    /// assert_eq!(total.load(Ordering::Relaxed), 5050);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn broadcast<F, R>(&self, op: F) -> Result<Vec<R>, SubmitErrorKind>
    where
        F: Fn(BroadcastContext) -> R + Sync,
        R: Send,
    {
        let worker = WorkerThread::current_in(self.shared());
        let job = BroadcastJob {
            op: &op,
            num_workers: AtomicUsize::new(0),
            remaining: AtomicUsize::new(0),
            results: Mutex::new(Vec::new()),
            panic: Mutex::new(None),
            abandoned: AtomicBool::new(false),
            latch: match worker {
                Some(worker) => worker.new_latch(),
                None => Latch::for_current_thread(),
            },
        };
        let caller = worker.map(|worker| worker.index);
        let prepare = |targets: usize| {
            // Relaxed: published to the shares by the inbox locks (and to us
            // by program order).
            job.num_workers.store(targets, Ordering::Relaxed);
            job.remaining.store(targets, Ordering::Relaxed);
            lock(&job.results).resize_with(targets, || None);
        };
        let targets = Shared::queue_broadcast(self.shared(), caller, prepare, |position| job.share(position))
            .ok_or(SubmitErrorKind::Closed)?;
        if targets.is_empty() {
            // No thread could start: nobody to run it.
            return Ok(Vec::new());
        }
        self.shared()
            .deliver_broadcast(targets.iter().copied().filter(|&index| Some(index) != caller));
        match worker {
            Some(worker) => {
                if let Some(position) = targets.iter().position(|&index| index == worker.index) {
                    job.run(position, worker.index);
                }
                worker.wait_until(&job.latch);
            }
            None => job.latch.wait_blocking(),
        }
        // Every share has been run or abandoned: the job is ours again.
        if let Some(payload) = lock(&job.panic).take() {
            panic::resume_unwind(payload);
        }
        // Relaxed: after the latch's Acquire (see `abandon_erased`).
        if job.abandoned.load(Ordering::Relaxed) {
            return Err(SubmitErrorKind::Closed);
        }
        let results = std::mem::take(&mut *lock(&job.results));
        Ok(results
            .into_iter()
            .map(|result| result.expect("stealpool: a broadcast share neither ran nor was abandoned"))
            .collect())
    }
}
