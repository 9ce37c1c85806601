//! Fork-join: `Pool::join`.

use std::panic::{self, AssertUnwindSafe};

use crate::scheduler::{JobRef, JoinFrame, Latch, StackJob, WorkerThread};
use crate::unwind::{drop_payload, first_panic_of};

/// What `join` needs of the thread it runs on: a worker's pending-join
/// frames, its deque and its way of waiting. [`WorkerThread`] is the one
/// host in the pool; the loom component model of join frames
/// (`tests/loom_components.rs`) runs the same [`join_in_worker`] on a host
/// made of the real frames, deque and parker alone. Static dispatch: the
/// worker's `join` compiles to what it would without the trait.
pub(crate) trait JoinHost {
    /// A latch this thread can wait on while helping with other work.
    fn new_latch(&self) -> Latch;
    /// Links a `join`'s frame, private until offered.
    ///
    /// # Safety
    /// As for `JoinFrames::link`: the frame stays put until unlinked with
    /// [`JoinHost::unlink_join`], newest first.
    unsafe fn link_join(&self, frame: &JoinFrame);
    /// Publishes the oldest private half if a thief could use it.
    fn offer_join_work(&self);
    /// Unlinks the newest frame: its job if still private, `None` if
    /// published.
    fn unlink_join(&self, frame: &JoinFrame) -> Option<JobRef>;
    /// Pops this thread's own deque (LIFO).
    fn pop(&self) -> Option<JobRef>;
    /// Runs a job popped from the deque.
    fn execute(&self, job: JobRef);
    /// Runs other work until `latch` is set, publishing every private half
    /// first.
    fn wait_until(&self, latch: &Latch);
}

impl JoinHost for WorkerThread {
    #[inline]
    fn new_latch(&self) -> Latch {
        WorkerThread::new_latch(self)
    }
    #[inline]
    unsafe fn link_join(&self, frame: &JoinFrame) {
        // SAFETY: forwarded from the caller.
        unsafe { WorkerThread::link_join(self, frame) }
    }
    #[inline]
    fn offer_join_work(&self) {
        WorkerThread::offer_join_work(self)
    }
    #[inline]
    fn unlink_join(&self, frame: &JoinFrame) -> Option<JobRef> {
        WorkerThread::unlink_join(self, frame)
    }
    #[inline]
    fn pop(&self) -> Option<JobRef> {
        WorkerThread::pop(self)
    }
    #[inline]
    fn execute(&self, job: JobRef) {
        WorkerThread::execute(self, job)
    }
    #[inline]
    fn wait_until(&self, latch: &Latch) {
        WorkerThread::wait_until(self, latch)
    }
}

/// `join` on a worker: keep `b` private in a frame of this worker's
/// pending joins, publishing it (or an older private half) only when a
/// thief could take it; run `a`; then run `b` inline if it stayed private,
/// or take it back from the deque, or help with other work until the thief
/// that took it finishes it.
pub(crate) fn join_in_worker<W, A, B, RA, RB>(worker: &W, a: A, b: B) -> (RA, RB)
where
    W: JoinHost,
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    let job_b = StackJob::new(b, worker.new_latch());
    // SAFETY: `job_b` stays in this frame until its latch is set or it is
    // taken back unrun (inline, or popped back); every path below does one
    // or the other.
    let frame = JoinFrame::new(unsafe { job_b.as_job_ref(false) });
    // SAFETY: `frame` lives in this stack frame and is unlinked on every
    // path below before it ends (`a`'s panic is caught first); anything
    // linked while `a` runs is nested inside it and unlinked before `a`
    // returns.
    unsafe { worker.link_join(&frame) };
    // The fence-free push when it publishes: every path below either takes
    // `b` back or waits for it while running queued work, so a missed
    // wake-up only costs parallelism (the sleep protocol's join exemption).
    worker.offer_join_work();

    let result_a = match panic::catch_unwind(AssertUnwindSafe(a)) {
        Ok(value) => value,
        Err(payload) => {
            // `b` still runs (it may be stolen and borrow from this frame:
            // let it finish, or run it here) before unwinding. Only `a`'s
            // panic is re-raised; `b`'s payload (if it panicked too) is
            // dropped here, where a panicking `Drop` is contained, not
            // during the unwind, where it would abort.
            if worker.unlink_join(&frame).is_some() {
                if let Err(payload_b) = panic::catch_unwind(AssertUnwindSafe(|| job_b.run_inline())) {
                    drop_payload(payload_b);
                }
            } else {
                worker.wait_until(&job_b.latch);
                job_b.into_result().discard();
            }
            panic::resume_unwind(payload);
        }
    };

    if worker.unlink_join(&frame).is_some() {
        // Nobody was offered `b`: run it here, with no synchronisation.
        return (result_a, job_b.run_inline());
    }
    while !job_b.latch.probe() {
        match worker.pop() {
            Some(job) if job.is_stack_job(&job_b) => {
                // Published but nobody stole it: run it here.
                return (result_a, job_b.run_inline());
            }
            // Tasks `a` submitted sit above `b` in the LIFO deque.
            Some(job) => worker.execute(job),
            None => {
                // `b` was stolen: help with other work until it is done.
                worker.wait_until(&job_b.latch);
                break;
            }
        }
    }
    (result_a, job_b.into_result().into_return_value())
}

/// `join` on a shut-down pool: both closures on the calling thread, `b` even
/// if `a` panicked, then the first panic re-raised.
#[cold]
pub(crate) fn join_on_caller<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA,
    B: FnOnce() -> RB,
{
    let result_a = panic::catch_unwind(AssertUnwindSafe(a));
    let result_b = panic::catch_unwind(AssertUnwindSafe(b));
    first_panic_of(result_a, result_b)
}
