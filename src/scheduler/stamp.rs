//! Queue-delay stamps: in a pool built with `measure_queue_delay(true)`,
//! each submitted task travels with the time of its submit.
//!
//! The stamp wraps the task's `JobRef` in a small box with its own table of
//! functions, so jobs of unmeasured pools (and the job layout itself) are
//! untouched: measuring costs one clock read and one allocation per task,
//! not measuring costs one test of a `bool` per submit. A worker that runs a
//! stamped job unwraps it first (`unstamp`), and so does `shutdown_now`
//! before it hands a task back, so nothing downstream sees the wrapper.

use std::ptr::NonNull;
use std::time::{Duration, Instant};

use crate::scheduler::job::{ptr_of, JobData, JobKind, JobOps, JobRef};

/// A task and the time it was submitted.
struct Stamped {
    job: JobRef,
    at: Instant,
}

/// The stamped tables, one per kind a stamped job may have (a job's kind
/// lives in its table): only counted submits are stamped.
static STAMPED_TASK_OPS: JobOps = stamped_ops(JobKind::Task);
static STAMPED_BOUND_OPS: JobOps = stamped_ops(JobKind::Bound);

const fn stamped_ops(kind: JobKind) -> JobOps {
    JobOps {
        kind,
        execute: execute_stamped,
        discard: discard_stamped,
        withdraw: Some(withdraw_stamped),
        start: Some(start_stamped),
    }
}

/// Wraps `job` with the time now (a pool that measures queue delays; the
/// submit path tests the setting first, see `Admission::push`).
#[inline]
pub(crate) fn stamp(job: JobRef) -> JobRef {
    let kind = job.kind();
    let boxed = Box::new(Stamped {
        job,
        at: Instant::now(),
    });
    let ops = match kind {
        JobKind::Task => &STAMPED_TASK_OPS,
        JobKind::Bound => &STAMPED_BOUND_OPS,
        JobKind::Stack => unreachable!("the second half of a join is never stamped"),
    };
    // SAFETY: the box is leaked into the job and taken back exactly once, by
    // `execute_stamped`, `discard_stamped` or `unstamp`; `Stamped` is
    // `Send` (a `JobRef` is, an `Instant` is).
    unsafe { JobRef::from_raw(NonNull::from(Box::leak(boxed)).cast(), ops) }
}

/// Takes the stamp off a job: the job itself and how long ago it was
/// submitted (`None` for a job without a stamp).
#[inline]
pub(crate) fn unstamp(job: JobRef) -> (JobRef, Option<Duration>) {
    if job.has_ops(&STAMPED_TASK_OPS) || job.has_ops(&STAMPED_BOUND_OPS) {
        // SAFETY: made by `stamp` (its table), so its data is the leaked box;
        // the job is consumed here, so the box is taken back once.
        let stamped = unsafe { Box::from_raw(job.data().cast::<Stamped>().as_ptr()) };
        (stamped.job, Some(stamped.at.elapsed()))
    } else {
        (job, None)
    }
}

/// The boxed `Stamped` in a stamped job's data.
///
/// # Safety
/// `data` is the data of a job made by `stamp`, not yet taken back.
unsafe fn take(data: JobData) -> Box<Stamped> {
    // SAFETY: `stamp` stored the leaked box's pointer (caller).
    unsafe { Box::from_raw(ptr_of(&data).cast::<Stamped>().as_ptr()) }
}

/// Runs a stamped job that no worker unwrapped (a task handed back by
/// `shutdown_now` and run by its caller, or one run by a waiter).
unsafe fn execute_stamped(data: JobData) {
    // SAFETY: the table is only paired with `stamp`'s data (caller).
    let stamped = unsafe { take(data) };
    // SAFETY: the inner job is alive until run or dropped, as the outer one.
    unsafe { stamped.job.execute() }
}

unsafe fn discard_stamped(data: JobData) {
    // SAFETY: as in `execute_stamped`.
    let stamped = unsafe { take(data) };
    // SAFETY: as in `execute_stamped`.
    unsafe { stamped.job.discard() }
}

unsafe fn withdraw_stamped(data: &JobData) -> bool {
    // SAFETY: the box is alive until the job is run or dropped (caller);
    // only a shared reference is taken.
    let stamped = unsafe { &*ptr_of(data).cast::<Stamped>().as_ptr() };
    // SAFETY: forwarded: the inner job is queued-but-unrun as the outer one.
    unsafe { stamped.job.notify_withdrawn() }
}

unsafe fn start_stamped(data: &JobData) -> bool {
    // SAFETY: as in `withdraw_stamped`.
    let stamped = unsafe { &*ptr_of(data).cast::<Stamped>().as_ptr() };
    // SAFETY: forwarded: the inner job is about to run as the outer one.
    unsafe { stamped.job.try_start() }
}
