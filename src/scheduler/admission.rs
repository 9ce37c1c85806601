//! Admission: whether a pool takes a new counted task now, where it goes,
//! and why it was refused.

use std::task::{Context, Poll};

use crate::error::{Refused, SubmitError};
use crate::scheduler::backpressure::AsyncWait;
use crate::scheduler::job::JobRef;
use crate::scheduler::registry::Shared;
use crate::scheduler::worker::WorkerThread;
use crate::sync::Arc;
use std::time::Instant;

/// Where an accepted task goes.
pub(crate) enum Admission<'a> {
    /// Submitted from one of the pool's own workers: its deque.
    Inside(&'a WorkerThread),
    /// Submitted from any other thread: the injector.
    Outside,
}

/// How a submit from outside the pool treats a full queue.
#[derive(Clone, Copy)]
pub(crate) enum Room {
    /// Block or refuse, as the pool is configured.
    AsConfigured,
    /// Wait for room until the deadline.
    Until(Instant),
    /// Wait for room with no deadline, even on a nonblocking pool (a
    /// timeout too long for `Instant` to hold).
    Forever,
    /// Ignore the limit (scope spawns and `join`: someone already waits for
    /// them, and refusing them would only move the work to the caller).
    Unlimited,
}

/// Why a task was not admitted.
#[derive(Clone, Copy)]
pub(crate) enum Refusal {
    Closed,
    Full,
    Timeout,
}

impl Refusal {
    pub(crate) fn with<F>(self, task: F) -> SubmitError<F> {
        match self {
            Refusal::Closed => SubmitError::Closed(Refused::new(task)),
            Refusal::Full => SubmitError::Full(Refused::new(task)),
            Refusal::Timeout => SubmitError::Timeout(Refused::new(task)),
        }
    }
}

impl Admission<'_> {
    /// Decides whether `shared`'s pool takes a new counted task now, and
    /// counts it (and its place in a bounded queue) if so.
    #[inline]
    pub(crate) fn admit(shared: &Shared, room: Room) -> Result<Admission<'_>, Refusal> {
        if let Some(worker) = WorkerThread::current_in(shared) {
            // Inside: the submitting task itself is counted and running, so
            // the workers cannot have drained; the closed check only decides
            // whether new work is refused. Never blocks on the queue limit.
            if shared.is_closed() {
                return Err(Refusal::Closed);
            }
            if let Some(backpressure) = &shared.backpressure {
                backpressure.reserve_unbounded();
            }
            return Ok(Admission::Inside(worker));
        }
        match (&shared.backpressure, room) {
            (None, _) => {
                if !shared.accept_outside() {
                    return Err(Refusal::Closed);
                }
            }
            (Some(backpressure), Room::Unlimited) => {
                if !shared.accept_outside() {
                    return Err(Refusal::Closed);
                }
                backpressure.reserve_unbounded();
            }
            (Some(backpressure), Room::AsConfigured | Room::Until(_) | Room::Forever) => {
                if shared.is_closed() {
                    return Err(Refusal::Closed);
                }
                backpressure.reserve(room, || shared.capacity(), || shared.is_closed())?;
                if !shared.accept_outside() {
                    backpressure.release(1);
                    return Err(Refusal::Closed);
                }
            }
        }
        Ok(Admission::Outside)
    }

    /// One poll of an async submit (`submit_async`): as [`Admission::admit`]
    /// with `Room::AsConfigured`, but where that would block the thread for
    /// room in a full queue, it registers `cx`'s waker and returns
    /// `Pending`. The caller passes the same `wait` to every poll and hands
    /// it to [`Admission::abandon_async`] if it stops polling.
    pub(crate) fn poll_admit<'a>(
        shared: &'a Shared,
        wait: &mut AsyncWait,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Admission<'a>, Refusal>> {
        let backpressure = match &shared.backpressure {
            // Outside the pool, on a bounded queue: the one case that waits.
            Some(backpressure) if WorkerThread::current_in(shared).is_none() => backpressure,
            // Never blocks.
            _ => return Poll::Ready(Admission::admit(shared, Room::AsConfigured)),
        };
        let reserved = backpressure.poll_reserve(wait, cx, || shared.capacity(), || shared.is_closed());
        match reserved {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(refusal)) => Poll::Ready(Err(refusal)),
            Poll::Ready(Ok(())) => {
                if shared.accept_outside() {
                    Poll::Ready(Ok(Admission::Outside))
                } else {
                    backpressure.release(1);
                    Poll::Ready(Err(Refusal::Closed))
                }
            }
        }
    }

    /// An async submit stopped polling before it was admitted (its future
    /// was dropped): it no longer waits for room.
    pub(crate) fn abandon_async(shared: &Shared, wait: &mut AsyncWait) {
        if let Some(backpressure) = &shared.backpressure {
            backpressure.finish_async(wait, false);
        }
    }

    /// Pushes the admitted task.
    #[inline(always)]
    pub(crate) fn push(self, shared: &Arc<Shared>, job: JobRef) {
        // The one test an unmeasured pool pays per submit (`stamp.rs`).
        if shared.config.measure_queue_delay {
            return self.push_stamped(shared, job);
        }
        match self {
            Admission::Inside(worker) => worker.push_counted(job),
            Admission::Outside => Shared::inject(shared, job),
        }
    }

    /// `push` in a pool that measures queue delays: the job travels with
    /// the time of its submit.
    #[cold]
    #[inline(never)]
    fn push_stamped(self, shared: &Arc<Shared>, job: JobRef) {
        let job = crate::scheduler::stamp::stamp(job);
        match self {
            Admission::Inside(worker) => worker.push_counted(job),
            Admission::Outside => Shared::inject(shared, job),
        }
    }

    /// Pushes the admitted task onto the pool's FIFO injector, also from
    /// inside the pool (`spawn_fifo`, `scope_fifo`): it starts after the
    /// tasks queued there before it.
    #[inline]
    pub(crate) fn push_fifo(self, shared: &Arc<Shared>, job: JobRef) {
        match self {
            Admission::Inside(worker) => worker.push_counted_fifo(job),
            Admission::Outside => Shared::inject(shared, job),
        }
    }
}
