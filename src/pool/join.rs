//! Fork-join: `Pool::join`.

use std::panic::{self, AssertUnwindSafe};

use crate::scheduler::{JobRef, JoinFrame, Latch, StackJob, WorkerThread, LATENT_JOINS};
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
    /// How many linked frames are still private (a `join` that finds
    /// [`JoinHost::latent_joins`] of them links none).
    fn private_joins(&self) -> usize;
    /// How many private frames this host keeps before a `join` runs its
    /// halves as plain calls.
    fn latent_joins(&self) -> usize {
        LATENT_JOINS
    }
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
    fn private_joins(&self) -> usize {
        WorkerThread::private_joins(self)
    }
    #[inline]
    fn latent_joins(&self) -> usize {
        WorkerThread::latent_joins(self)
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
/// that took it finishes it. With `LATENT_JOINS` private frames already
/// linked, no frame: offer an older half, then `a` and `b` as plain calls
/// (`worker/join_frames.rs`).
pub(crate) fn join_in_worker<W, A, B, RA, RB>(worker: &W, a: A, b: B) -> (RA, RB)
where
    W: JoinHost,
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    if worker.private_joins() >= worker.latent_joins() {
        // Enough private halves, all older than this one, wait for a thief
        // (the oldest first): this `join` is a pair of calls. It still
        // makes the offer, so a thief that shows up meanwhile gets one of
        // them at the next `join` of any depth.
        worker.offer_join_work();
        return join_in_sequence(a, b);
    }
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

/// `a` then `b` on this thread; `b` runs even if `a` panicked, and `a`'s
/// panic is re-raised after it (as `join_in_worker` does).
#[inline(always)]
fn join_in_sequence<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA,
    B: FnOnce() -> RB,
{
    match panic::catch_unwind(AssertUnwindSafe(a)) {
        Ok(result_a) => (result_a, b()),
        Err(payload) => {
            if let Err(payload_b) = panic::catch_unwind(AssertUnwindSafe(b)) {
                drop_payload(payload_b);
            }
            panic::resume_unwind(payload)
        }
    }
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

#[cfg(all(test, not(loom)))]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    use super::*;
    use crate::scheduler::worker::JoinFrames;

    /// The host, carried into the closures: `join_in_worker` runs every
    /// closure on the calling thread here (nobody steals), so the reference
    /// never leaves it.
    #[derive(Clone, Copy)]
    struct Here<'a>(&'a Host);
    // SAFETY: see above: used only on the thread that made it.
    unsafe impl Send for Here<'_> {}
    // SAFETY: as above (the closures borrow it).
    unsafe impl Sync for Here<'_> {}
    impl std::ops::Deref for Here<'_> {
        type Target = Host;
        fn deref(&self) -> &Host {
            self.0
        }
    }

    /// One thread standing in for a worker: the real frames, a plain
    /// queue for its deque, and a switch saying whether a thief is idle
    /// (nobody ever takes a half here: the host runs what it published).
    struct Host {
        frames: JoinFrames,
        deque: RefCell<VecDeque<JobRef>>,
        thief_idle: Cell<bool>,
    }

    impl Host {
        fn new() -> Self {
            Host {
                frames: JoinFrames::new(),
                deque: RefCell::new(VecDeque::new()),
                thief_idle: Cell::new(false),
            }
        }
    }

    impl JoinHost for Host {
        fn new_latch(&self) -> Latch {
            Latch::for_current_thread()
        }
        unsafe fn link_join(&self, frame: &JoinFrame) {
            // SAFETY: forwarded from the caller.
            unsafe { self.frames.link(frame) }
        }
        fn offer_join_work(&self) {
            if self.thief_idle.get() {
                if let Some(job) = self.frames.publish_oldest() {
                    self.deque.borrow_mut().push_back(job);
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
            self.deque.borrow_mut().pop_back()
        }
        fn execute(&self, job: JobRef) {
            // SAFETY: a job popped from this host's queue runs once, here.
            unsafe { job.execute() }
        }
        fn wait_until(&self, latch: &Latch) {
            while !latch.probe() {
                let job = self.pop().expect("a single thread waits only for what it queued");
                self.execute(job);
            }
        }
    }

    #[test]
    fn a_join_under_the_latent_limit_links_no_frame_and_still_offers_the_oldest_half() {
        assert_eq!(LATENT_JOINS, 3, "the nesting below is written for three");
        let owned = Host::new();
        let host = Here(&owned);
        let ran = AtomicU32::new(0);
        // Relaxed: one thread (an atomic only because the halves are Send).
        let run = |bit: u32| ran.fetch_or(bit, Ordering::Relaxed);
        let results = join_in_worker(
            &*host,
            || {
                join_in_worker(
                    &*host,
                    || {
                        join_in_worker(
                            &*host,
                            || {
                                assert_eq!(host.private_joins(), 3);
                                host.thief_idle.set(true);
                                join_in_worker(
                                    &*host,
                                    || {
                                        // No frame of its own, and its offer
                                        // published the oldest half.
                                        assert_eq!(host.private_joins(), 2);
                                        assert_eq!(host.deque.borrow().len(), 1);
                                        run(1);
                                        4
                                    },
                                    || {
                                        run(2);
                                        5
                                    },
                                )
                            },
                            || {
                                run(4);
                                3
                            },
                        )
                    },
                    || {
                        run(8);
                        2
                    },
                )
            },
            || {
                run(16);
                1
            },
        );
        assert_eq!(results, ((((4, 5), 3), 2), 1));
        assert_eq!(ran.load(Ordering::Relaxed), 31, "every half ran");
        assert!(host.deque.borrow().is_empty(), "the published half was taken back");
        assert_eq!(host.private_joins(), 0);
    }

    #[test]
    fn a_plain_join_runs_b_after_a_panicked_and_re_raises_a_panic() {
        let owned = Host::new();
        let host = Here(&owned);
        // Relaxed below: one thread, as above.
        let b_ran = AtomicBool::new(false);
        let nested = || {
            join_in_worker(
                &*host,
                || {
                    join_in_worker(
                        &*host,
                        || {
                            join_in_worker(
                                &*host,
                                || {
                                    assert_eq!(host.private_joins(), 3);
                                    join_in_worker(&*host, || panic!("a"), || b_ran.store(true, Ordering::Relaxed))
                                },
                                || (),
                            )
                        },
                        || (),
                    )
                },
                || (),
            )
        };
        let payload = panic::catch_unwind(AssertUnwindSafe(nested)).expect_err("a's panic comes back");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"a"));
        assert!(b_ran.load(Ordering::Relaxed), "b ran although a panicked");
        assert_eq!(host.private_joins(), 0);
    }
}
