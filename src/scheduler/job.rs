//! Type-erased jobs: what the queues hold.
//!
//! A [`JobRef`] is two words and a flag: a pointer to the job's data and the
//! function that runs it. Closures submitted with `submit` live in one `Box`
//! ([`HeapJob`]): that box is the only heap allocation a submitted task costs.
//! The second half of a `join` lives on the joining thread's stack
//! ([`StackJob`]) and costs no allocation at all.

use std::any::Any;
use std::cell::UnsafeCell;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;

use crate::scheduler::latch::Latch;
use crate::unwind::drop_payload;

/// What kind of job a [`JobRef`] is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum JobKind {
    /// A counted task (`submit`) that `shutdown_now` may hand back.
    Task,
    /// A counted task with a `JoinHandle` (`spawn`), handed back like
    /// `Task`; its data starts with a [`WithdrawHeader`], through which
    /// `shutdown_now` resolves the handle when it takes the task out.
    Spawned,
    /// A counted job that must run in the pool: a scope spawn or an outside
    /// `join` (someone waits for it; it is never handed back).
    Bound,
    /// The uncounted second half of a `join` inside the pool.
    Stack,
}

/// A queued unit of work, erased to a pointer and a function.
pub(crate) struct JobRef {
    data: NonNull<()>,
    execute: unsafe fn(NonNull<()>),
    discard: unsafe fn(NonNull<()>),
    kind: JobKind,
}

// SAFETY: a JobRef is only ever built from jobs whose closures are `Send`
// (`HeapJob::into_job_ref` and `StackJob::as_job_ref` require it), and the
// data it points to is touched by exactly one thread: whichever runs it.
unsafe impl Send for JobRef {}

impl JobRef {
    /// A job from raw parts (`FuncPool` invocations: the data is an argument
    /// slot, see `func/slots.rs`).
    ///
    /// # Safety
    /// `execute` and `discard` must be sound to call once (either one) with
    /// `data`, from any thread, until then `data` must stay valid, and what
    /// `data` points to must be `Send`.
    pub(crate) unsafe fn from_raw(
        data: NonNull<()>,
        execute: unsafe fn(NonNull<()>),
        discard: unsafe fn(NonNull<()>),
        kind: JobKind,
    ) -> JobRef {
        JobRef {
            data,
            execute,
            discard,
            kind,
        }
    }

    /// The data pointer (`FuncPool` takes a handed-back argument out of it).
    pub(crate) fn data(&self) -> NonNull<()> {
        self.data
    }

    /// Runs the job, consuming it.
    ///
    /// # Safety
    /// The data behind the pointer must still be alive (heap jobs own theirs;
    /// a stack job's owner waits on its latch before its frame ends).
    #[inline]
    pub(crate) unsafe fn execute(self) {
        // SAFETY: forwarded from the caller.
        unsafe { (self.execute)(self.data) }
    }

    /// Drops the job without running it. Only `Task` jobs are ever
    /// discarded (`shutdown_now` hands back no other kind).
    ///
    /// # Safety
    /// As for [`JobRef::execute`].
    pub(crate) unsafe fn discard(self) {
        // SAFETY: forwarded from the caller.
        unsafe { (self.discard)(self.data) }
    }

    /// `shutdown_now` took this job out of the queues to hand it back: a
    /// spawned task's `JoinHandle` resolves now (with an error), so nobody
    /// waits for a task that may never run. Other kinds need nothing.
    ///
    /// # Safety
    /// As for [`JobRef::execute`]; the job is not consumed.
    pub(crate) unsafe fn notify_withdrawn(&self) {
        if self.kind == JobKind::Spawned {
            // SAFETY: `Spawned` jobs are made only by `JobRef::spawned`,
            // whose data starts with a `WithdrawHeader` (`#[repr(C)]` in
            // the caller's type), alive until the job runs or is discarded.
            let header = unsafe { self.data.cast::<WithdrawHeader>().as_ref() };
            // SAFETY: the header's function expects this very data.
            unsafe { (header.withdraw)(self.data) }
        }
    }

    /// A boxed spawned task: `data` came from `Box::into_raw` of a
    /// `#[repr(C)]` type whose first field is a [`WithdrawHeader`].
    ///
    /// # Safety
    /// As for [`JobRef::from_raw`], and the header's `withdraw` must be
    /// sound to call (any number of times) with `data` until the job runs
    /// or is discarded.
    pub(crate) unsafe fn spawned(
        data: NonNull<()>,
        execute: unsafe fn(NonNull<()>),
        discard: unsafe fn(NonNull<()>),
    ) -> JobRef {
        JobRef {
            data,
            execute,
            discard,
            kind: JobKind::Spawned,
        }
    }

    /// Whether this job is counted in `submitted`/`completed` (every heap job
    /// is; the stack half of a `join` is covered by the counted job that
    /// called `join`).
    #[inline]
    pub(crate) fn is_counted(&self) -> bool {
        self.kind != JobKind::Stack
    }

    /// The job's kind.
    #[inline]
    pub(crate) fn kind(&self) -> JobKind {
        self.kind
    }

    /// The identity of the job, for `join` to recognise its own half.
    #[inline]
    pub(crate) fn id(&self) -> *const () {
        self.data.as_ptr()
    }
}

/// The first field of a spawned task's data: what `shutdown_now` calls
/// when it takes the task out (see [`JobRef::notify_withdrawn`]).
#[repr(C)]
pub(crate) struct WithdrawHeader {
    pub(crate) withdraw: unsafe fn(NonNull<()>),
}

/// A boxed closure: the form every `submit` and scope spawn takes.
pub(crate) struct HeapJob;

impl HeapJob {
    /// Boxes `f` (the task's one allocation) and erases it into a [`JobRef`].
    ///
    /// The closure may borrow (`'scope`): the caller promises it runs or is
    /// discarded before those borrows end (a `Scope` waits for all its jobs).
    pub(crate) fn into_job_ref<F: FnOnce() + Send>(f: F, kind: JobKind) -> JobRef {
        debug_assert!(matches!(kind, JobKind::Task | JobKind::Bound));
        let data = Box::into_raw(Box::new(f));
        JobRef {
            // SAFETY: Box::into_raw never returns null.
            data: unsafe { NonNull::new_unchecked(data) }.cast(),
            execute: Self::execute::<F>,
            discard: Self::discard::<F>,
            kind,
        }
    }

    /// Runs the boxed closure.
    ///
    /// # Safety
    /// `data` came from `into_job_ref::<F>` and was neither run nor
    /// discarded before (each `JobRef` is consumed once).
    unsafe fn execute<F: FnOnce()>(data: NonNull<()>) {
        // SAFETY: `data` came from `Box::into_raw(Box<F>)` in `into_job_ref`
        // and each JobRef is executed or discarded exactly once.
        let f = unsafe { Box::from_raw(data.cast::<F>().as_ptr()) };
        f();
    }

    /// Drops the boxed closure unrun.
    ///
    /// # Safety
    /// As for [`HeapJob::execute`].
    unsafe fn discard<F>(data: NonNull<()>) {
        // SAFETY: as in `execute`.
        drop(unsafe { Box::from_raw(data.cast::<F>().as_ptr()) });
    }
}

/// How a job ended.
pub(crate) enum JobResult<R> {
    None,
    Ok(R),
    Panic(Box<dyn Any + Send>),
}

impl<R> JobResult<R> {
    /// The value, or the panic resumed on this thread.
    pub(crate) fn into_return_value(self) -> R {
        match self {
            JobResult::Ok(value) => value,
            JobResult::Panic(payload) => panic::resume_unwind(payload),
            JobResult::None => unreachable!("job result taken before the job ran"),
        }
    }

    /// Drops the result unseen; a panic payload is dropped safely.
    pub(crate) fn discard(self) {
        if let JobResult::Panic(payload) = self {
            drop_payload(payload);
        }
    }
}

/// A job that lives in its owner's stack frame; its owner waits on `latch`
/// (or takes the job back unrun) before the frame ends.
pub(crate) struct StackJob<F, R> {
    pub(crate) latch: Latch,
    func: UnsafeCell<Option<F>>,
    result: UnsafeCell<JobResult<R>>,
}

impl<F, R> StackJob<F, R>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    pub(crate) fn new(func: F, latch: Latch) -> Self {
        StackJob {
            latch,
            func: UnsafeCell::new(Some(func)),
            result: UnsafeCell::new(JobResult::None),
        }
    }

    /// Erases the job. `counted` says whether it is counted as a submitted
    /// task (true when it is injected from outside the pool).
    ///
    /// # Safety
    /// `self` must stay where it is until the latch is set or the job is
    /// taken back with [`StackJob::run_inline`].
    pub(crate) unsafe fn as_job_ref(&self, counted: bool) -> JobRef {
        JobRef {
            // SAFETY: a reference is never null.
            data: NonNull::from(self).cast(),
            execute: Self::execute,
            discard: Self::never_discarded,
            kind: if counted { JobKind::Bound } else { JobKind::Stack },
        }
    }

    /// Runs the job on the thread that took it and sets the latch.
    ///
    /// # Safety
    /// `data` points to a `StackJob` of this type whose owner has not seen
    /// its latch set (so the frame is alive), and the job runs once.
    unsafe fn execute(data: NonNull<()>) {
        // SAFETY: the owner keeps the job alive until the latch is set below.
        let this = unsafe { data.cast::<Self>().as_ref() };
        // SAFETY: exactly one thread runs the job; the owner reads `func` and
        // `result` only after the latch (Acquire) or after popping it back.
        let func = unsafe { (*this.func.get()).take() }.expect("stack job run twice");
        let result = match panic::catch_unwind(AssertUnwindSafe(func)) {
            Ok(value) => JobResult::Ok(value),
            Err(payload) => JobResult::Panic(payload),
        };
        // SAFETY: as above; the latch's Release publishes this write.
        unsafe { *this.result.get() = result };
        // SAFETY: after this the owner may free `this`; `set` touches nothing
        // of it once the state is published. A stack job runs on a thread
        // running this pool's jobs (a worker, or a thread draining stranded
        // work), which keeps the owner's pool alive through `set`.
        unsafe { Latch::set(&this.latch) };
    }

    /// Never called: only `Task` and `Spawned` jobs are handed back.
    ///
    /// # Safety
    /// None needed (it panics); `unsafe` only to fit the `JobRef` table.
    unsafe fn never_discarded(_data: NonNull<()>) {
        unreachable!("a stack job is never handed out of its pool, so never discarded");
    }

    /// Runs the job on the owner's thread after popping it back unrun.
    pub(crate) fn run_inline(self) -> R {
        let func = self.func.into_inner().expect("stack job already ran");
        func()
    }

    /// The job's result, once the latch is set.
    pub(crate) fn into_result(self) -> JobResult<R> {
        self.result.into_inner()
    }
}
