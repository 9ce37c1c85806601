//! Under `--cfg loom` only: the scheduler's single components with a public
//! face, for the component models in `tests/loom_components.rs` (a latch, a
//! parker, `join` on its own frames, the sleep protocol's accounting, as
//! tokio models its parts one by one).
//! Every item forwards to the real one; the join host below is the real
//! frames, deque and parker that a worker gives `join`, without the pool
//! around them. Nothing here exists in a normal build.

#![allow(missing_docs, missing_debug_implementations, clippy::new_without_default)]

use crate::pool::join::{join_in_worker, JoinHost};
use crate::scheduler::queue::{Steal, Stealer, Worker};
use crate::scheduler::{self, JobRef, JoinFrame, JoinFrames, LatchOwner};
use crate::sync::{Arc, AtomicBool, Ordering};

/// A per-worker token parker (`scheduler/parker.rs`).
pub struct Parker(scheduler::Parker);

impl Parker {
    pub fn new() -> Self {
        Parker(scheduler::Parker::new())
    }

    /// Waits for a token and consumes it.
    pub fn park(&self) {
        self.0.park();
    }

    /// Leaves a token and wakes the parked thread, if any.
    pub fn unpark(&self) {
        self.0.unpark();
    }
}

/// A one-shot latch (`scheduler/latch.rs`).
#[repr(transparent)]
pub struct Latch(scheduler::Latch);

impl Latch {
    /// Owned by the calling thread, which waits with `wait_blocking`.
    pub fn for_current_thread() -> Self {
        Latch(scheduler::Latch::for_current_thread())
    }

    /// Owned by a worker that parks on `parker` (named by address: the
    /// parker must outlive every `set`).
    pub fn owned_by(parker: &Parker) -> Self {
        Latch(scheduler::Latch::new(LatchOwner::worker(&parker.0)))
    }

    pub fn probe(&self) -> bool {
        self.0.probe()
    }

    pub fn announce_block(&self) -> bool {
        self.0.announce_block()
    }

    /// # Safety
    /// As for the real `Latch::set`: `this` is valid until SET is
    /// published, and a worker owner's parker outlives the call.
    pub unsafe fn set(this: *const Latch) {
        // SAFETY: `Latch` is a transparent wrapper; the rest is the caller's.
        unsafe { scheduler::Latch::set(this.cast()) }
    }

    pub fn wait_blocking(&self) {
        self.0.wait_blocking();
    }
}

/// A thread running `join` (the pool's own `join_in_worker`) on its own
/// frames, deque and parker.
///
/// It publishes its oldest private half when the [`Thief`] has said it is
/// idle: the worker's other reason, an empty deque, is left out so that a
/// half can stay private while the deque is empty and the models reach
/// "publish the oldest" with two private halves. Under loom a worker keeps
/// two private frames (`LATENT_JOINS`), so a `join` nested in two private
/// ones takes the plain path (offer, then two calls) and one nested in a
/// published one links its frame: the three-join model reaches both.
pub struct JoinThread {
    frames: JoinFrames,
    deque: Worker<JobRef>,
    parker: Arc<Parker>,
    thief_idle: Arc<AtomicBool>,
}

/// Another thread that may take a published half.
pub struct Thief {
    stealer: Stealer<JobRef>,
    /// Keeps the join thread's parker alive through a `set` (a worker
    /// running a pool's job keeps the pool, and so its parkers, alive).
    _parker: Arc<Parker>,
    idle: Arc<AtomicBool>,
}

impl JoinThread {
    pub fn new() -> (JoinThread, Thief) {
        let deque = Worker::new_lifo();
        let parker = Arc::new(Parker::new());
        let thief_idle = Arc::new(AtomicBool::new(false));
        let thief = Thief {
            stealer: deque.stealer(),
            _parker: parker.clone(),
            idle: thief_idle.clone(),
        };
        let host = JoinThread {
            frames: JoinFrames::new(),
            deque,
            parker,
            thief_idle,
        };
        (host, thief)
    }

    /// `join(a, b)` exactly as a worker runs it.
    pub fn join<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce() -> RA + Send,
        B: FnOnce() -> RB + Send,
        RA: Send,
        RB: Send,
    {
        join_in_worker(self, a, b)
    }

    fn publish(&self, job: JobRef) {
        self.deque.push(job);
    }
}

impl JoinHost for JoinThread {
    fn new_latch(&self) -> scheduler::Latch {
        scheduler::Latch::new(LatchOwner::worker(&self.parker.0))
    }

    unsafe fn link_join(&self, frame: &JoinFrame) {
        // SAFETY: forwarded from the caller.
        unsafe { self.frames.link(frame) }
    }

    fn offer_join_work(&self) {
        // SeqCst: the thief's store and this load are the "somebody is
        // idle" handshake, a model of the sleep word's.
        if self.thief_idle.load(Ordering::SeqCst) {
            if let Some(job) = self.frames.publish_oldest() {
                self.publish(job);
            }
        }
    }

    fn private_joins(&self) -> usize {
        self.frames.private_count()
    }

    fn unlink_join(&self, frame: &JoinFrame) -> Option<JobRef> {
        self.frames.unlink(frame)
    }

    fn pop(&self) -> Option<JobRef> {
        self.deque.pop()
    }

    fn execute(&self, job: JobRef) {
        // SAFETY: a job popped from this thread's deque runs once, here.
        unsafe { job.execute() }
    }

    /// As the worker's `wait_until`, with its own deque as the only work
    /// to help with: publish every private half, run what the deque holds,
    /// then park until the latch is set.
    fn wait_until(&self, latch: &scheduler::Latch) {
        while let Some(job) = self.frames.publish_oldest() {
            self.publish(job);
        }
        while !latch.probe() {
            if let Some(job) = self.deque.pop() {
                self.execute(job);
            } else if latch.announce_block() {
                while !latch.probe() {
                    self.parker.park();
                }
            }
        }
    }
}

impl Thief {
    /// From now on the join thread publishes its oldest private half at
    /// each offer.
    pub fn announce_idle(&self) {
        // SeqCst: see `offer_join_work`.
        self.idle.store(true, Ordering::SeqCst);
    }

    /// Steals the oldest published half and runs it; false if there was
    /// none.
    pub fn steal_and_run(&self) -> bool {
        match self.stealer.steal() {
            Steal::Success(job) => {
                // SAFETY: a stolen job runs once, here; its owner waits for
                // its latch (or it would have popped it back), and this
                // thief keeps the owner's parker alive.
                unsafe { job.execute() };
                true
            }
            Steal::Empty | Steal::Retry => false,
        }
    }
}

/// The sleep protocol's accounting and parking (`scheduler/sleep/`), for
/// models that drive a worker going to sleep against a pusher, with a
/// queue of their own made of atomics (the pool's loom queues sit behind a
/// lock, which orders a push and a scan and so hides the store-load race
/// the sleep fences exist for).
pub struct Sleep(scheduler::sleep::Sleep);

impl Sleep {
    pub fn new(workers: usize) -> Self {
        Sleep(scheduler::sleep::Sleep::new(workers, false))
    }

    pub fn begin_searching(&self) {
        self.0.begin_searching();
    }

    /// True when this was the last searcher.
    pub fn end_searching(&self) -> bool {
        self.0.end_searching()
    }

    pub fn announce_sleep(&self, index: usize) {
        // Every worker counted as possibly busy: the heavy half always
        // (a no-op under loom, whose light half is a fence).
        self.0.announce_sleep(index, |_| true);
    }

    pub fn retract_sleep(&self, index: usize) -> bool {
        self.0.retract_sleep(index)
    }

    pub fn park_until_woken(&self, index: usize) {
        self.0.park_until_woken(index);
    }

    /// The fenced decision of a submit (true: nobody awake to take it).
    pub fn notify_new_work(&self, active: usize) -> bool {
        self.0.notify_new_work(active)
    }

    /// The decision of a push from inside the pool (true: nobody awake):
    /// under loom the asymmetric barrier's light half is a SeqCst fence
    /// (`scheduler/sleep/barrier.rs`).
    pub fn notify_new_inside_work(&self, active: usize) -> bool {
        self.0.notify_new_inside_work(active)
    }

    /// The unfenced decision of a `join` half (true: nobody awake).
    pub fn notify_new_join_work(&self, active: usize) -> bool {
        self.0.notify_new_join_work(active)
    }

    /// Wakes every sleeper (shutdown): fence, then one pass.
    pub fn notify_all(&self) {
        self.0.notify_all();
    }

    /// Whether worker `index` is announced asleep (a Relaxed snapshot).
    pub fn is_sleeping(&self, index: usize) -> bool {
        self.0.is_sleeping(index)
    }
}
