//! Type-erased jobs: what the queues hold.
//!
//! A [`JobRef`] is three words (24 bytes on 64-bit targets): two words of
//! data and a pointer to the static table of functions that run or drop it
//! ([`JobOps`]), which also says the job's kind. The data is a
//! pointer to the job (a boxed closure, the second half of a `join` on its
//! owner's stack, a `FuncPool` argument slot, a spawned task) or, for a
//! submitted closure of up to two words (what it captures: a reference, an
//! `Arc`, a couple of integers), the closure itself: such a task costs no
//! heap allocation at all. Larger closures of up to 64 bytes live in a block
//! of the running thread's job cache (`job_cache.rs`: no allocator call once
//! warm), still larger ones in one `Box` ([`HeapJob`]).

use std::any::Any;
use std::cell::UnsafeCell;
use std::mem::{self, MaybeUninit};
use std::panic::{self, AssertUnwindSafe};
use std::ptr::{self, NonNull};

use crate::scheduler::job_cache;
use crate::scheduler::latch::Latch;
use crate::unwind::drop_payload;

/// What kind of job a [`JobRef`] is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum JobKind {
    /// A counted task (`submit`, `spawn`, `invoke`) that `shutdown_now` may
    /// hand back.
    Task,
    /// A counted job that must run in the pool: a scope spawn or an outside
    /// `join` (someone waits for it; it is never handed back).
    Bound,
    /// The uncounted second half of a `join` inside the pool.
    Stack,
}

/// A job's two words of data: a pointer to the job, or a small closure
/// itself. Copied bytewise with the `JobRef` (every Rust value may be moved
/// that way), and read back only with the type it was written with.
///
/// Two separate words rather than one two-word array: a pair of scalars is
/// passed to `execute` in two registers and copied word by word, where an
/// array travels through memory and is copied with one 16-byte move that
/// cannot take its bytes from the two 8-byte stores that just wrote them
/// (a store-forwarding stall on every job).
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct JobData {
    first: MaybeUninit<*mut ()>,
    second: MaybeUninit<*mut ()>,
}

impl JobData {
    /// Data to write a value into. Both words start as null, not
    /// uninitialised: a closure of one word then leaves no hole that a later
    /// 16-byte copy of the job would read from memory written long before
    /// (measured: 1M outside submits 67 → 58 ns per task, 2-core VM).
    #[inline]
    pub(crate) const fn uninit() -> JobData {
        JobData {
            first: MaybeUninit::new(std::ptr::null_mut()),
            second: MaybeUninit::new(std::ptr::null_mut()),
        }
    }

    /// The start of the storage, to read a value written there.
    #[inline]
    pub(crate) fn as_ptr(&self) -> *const JobData {
        self
    }

    /// The start of the storage, to write a value there.
    #[inline]
    pub(crate) fn as_mut_ptr(&mut self) -> *mut JobData {
        self
    }
}

/// The functions that run or drop a job's data, and its kind (one static
/// table per job type and kind, so a `JobRef` carries one pointer for all).
pub(crate) struct JobOps {
    pub(crate) kind: JobKind,
    pub(crate) execute: unsafe fn(JobData),
    pub(crate) discard: unsafe fn(JobData),
    /// Called (without consuming the job) when `shutdown_now` takes it out
    /// to hand it back: a spawned task's handle learns it (see
    /// [`JobRef::notify_withdrawn`]); returns false for a task cancelled
    /// through its handle (not handed back, but dropped). `None` for every
    /// other job.
    pub(crate) withdraw: Option<unsafe fn(&JobData) -> bool>,
    /// Called (without consuming the job) right before it runs: claims the
    /// start against a racing cancellation and returns false if the task
    /// was cancelled (see [`JobRef::try_start`]). `None` for jobs that
    /// cannot be cancelled.
    pub(crate) start: Option<unsafe fn(&JobData) -> bool>,
}

/// Data holding a pointer (for jobs that live elsewhere).
#[inline]
pub(crate) fn data_from_ptr(pointer: NonNull<()>) -> JobData {
    let mut data = JobData::uninit();
    // SAFETY: the storage is two pointers wide and pointer-aligned.
    unsafe { ptr::write(data.as_mut_ptr().cast::<*mut ()>(), pointer.as_ptr()) };
    data
}

/// The pointer in data made by [`data_from_ptr`].
///
/// # Safety
/// `data` was made by `data_from_ptr`.
#[inline]
pub(crate) unsafe fn ptr_of(data: &JobData) -> NonNull<()> {
    // SAFETY: written as a non-null pointer by `data_from_ptr` (caller).
    unsafe { NonNull::new_unchecked(ptr::read(data.as_ptr().cast::<*mut ()>())) }
}

/// A queued unit of work, erased to its data and a table of functions.
pub(crate) struct JobRef {
    data: JobData,
    ops: &'static JobOps,
}

// SAFETY: a JobRef is only ever built from jobs whose closures are `Send`
// (`HeapJob::into_job_ref` and `StackJob::as_job_ref` require it), and the
// data it points to is touched by exactly one thread: whichever runs it.
unsafe impl Send for JobRef {}

impl JobRef {
    /// A job from a pointer and its table (`FuncPool` invocations: the data
    /// is an argument slot, see `func/slots.rs`).
    ///
    /// # Safety
    /// `ops.execute` and `ops.discard` must be sound to call once (either
    /// one) with data holding `data` (see [`ptr_of`]), from any thread;
    /// until then `data` must stay valid, and what it points to must be
    /// `Send`.
    pub(crate) unsafe fn from_raw(data: NonNull<()>, ops: &'static JobOps) -> JobRef {
        JobRef {
            data: data_from_ptr(data),
            ops,
        }
    }

    /// A job from its data and its table (`FuncPool` invocations whose
    /// argument fits beside a pointer in the data).
    ///
    /// # Safety
    /// `ops.execute` and `ops.discard` must be sound to call once (either
    /// one) with `data`, from any thread, and what `data` holds must be
    /// `Send`.
    pub(crate) unsafe fn from_parts(data: JobData, ops: &'static JobOps) -> JobRef {
        JobRef { data, ops }
    }

    /// Whether this job was made with the table `ops` (so its data has the
    /// layout that table expects). Only for tables in a `static`: a
    /// constant has no unique address (two uses of `&CONST` may point to
    /// two copies, and Miri makes them do so).
    #[inline]
    pub(crate) fn has_ops(&self, ops: &'static JobOps) -> bool {
        ptr::eq(self.ops, ops)
    }

    /// The job's data, neither run nor dropped.
    ///
    /// # Safety
    /// The caller takes over what the data holds (runs or drops it once).
    pub(crate) unsafe fn into_data(self) -> JobData {
        self.data
    }

    /// The data pointer (`FuncPool` takes a handed-back argument out of it).
    ///
    /// # Safety
    /// The job was made by [`JobRef::from_raw`].
    pub(crate) unsafe fn data(&self) -> NonNull<()> {
        // SAFETY: `from_raw` stored a pointer (caller).
        unsafe { ptr_of(&self.data) }
    }

    /// Runs the job, consuming it.
    ///
    /// # Safety
    /// The data behind the pointer must still be alive (heap jobs own theirs;
    /// a stack job's owner waits on its latch before its frame ends).
    #[inline]
    pub(crate) unsafe fn execute(self) {
        // SAFETY: forwarded from the caller; the table matches the data
        // (each constructor pairs them).
        unsafe { (self.ops.execute)(self.data) }
    }

    /// Drops the job without running it. Only `Task` jobs are ever
    /// discarded (`shutdown_now` hands back no other kind).
    ///
    /// # Safety
    /// As for [`JobRef::execute`].
    pub(crate) unsafe fn discard(self) {
        // SAFETY: as in `execute`.
        unsafe { (self.ops.discard)(self.data) }
    }

    /// `shutdown_now` took this job out of the queues to hand it back: a
    /// spawned task's `JoinHandle` learns it now, so nobody waits for a
    /// task that may never run. Other jobs need nothing. Returns false if
    /// the task was cancelled: it is discarded instead of handed back.
    ///
    /// # Safety
    /// As for [`JobRef::execute`]; the job is not consumed.
    pub(crate) unsafe fn notify_withdrawn(&self) -> bool {
        match self.ops.withdraw {
            // SAFETY: the table matches the data; not consumed (caller).
            Some(withdraw) => unsafe { withdraw(&self.data) },
            None => true,
        }
    }

    /// Claims the job's start: false if it was cancelled through its
    /// handle, and then it must be discarded, not run. Jobs that cannot be
    /// cancelled always start.
    ///
    /// # Safety
    /// As for [`JobRef::execute`]; the job is not consumed.
    #[inline]
    pub(crate) unsafe fn try_start(&self) -> bool {
        match self.ops.start {
            // SAFETY: the table matches the data; not consumed (caller).
            Some(start) => unsafe { start(&self.data) },
            None => true,
        }
    }

    /// Whether this job is counted in `submitted`/`completed` (every heap job
    /// is; the stack half of a `join` is covered by the counted job that
    /// called `join`).
    #[inline]
    pub(crate) fn is_counted(&self) -> bool {
        self.ops.kind != JobKind::Stack
    }

    /// The job's kind.
    #[inline]
    pub(crate) fn kind(&self) -> JobKind {
        self.ops.kind
    }

    /// Whether this is the stack job `job` erased by
    /// [`StackJob::as_job_ref`] (its owner recognising it when it pops it
    /// back): a stack job, then the same address.
    #[inline]
    pub(crate) fn is_stack_job<F, R>(&self, job: &StackJob<F, R>) -> bool
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        // The kind first: only a stack job (`as_job_ref`, the only maker of
        // `Stack` tables) holds a pointer in its first word (an inline
        // closure's bytes may be uninitialised there). Not the table's
        // address: a constant's address is not unique, so
        // `&StackJob::<F, R>::STACK_OPS` here may differ from the one in the
        // job. A pointer to `job`, a live stack job of this frame, is this
        // job and no other.
        self.ops.kind == JobKind::Stack
            // SAFETY: a `Stack` table's jobs store a pointer (`as_job_ref`).
            && ptr::eq(unsafe { ptr_of(&self.data) }.as_ptr().cast_const(), (job as *const StackJob<F, R>).cast())
    }
}

/// A closure job: inline in the `JobRef` when it fits in two words, else in
/// one `Box`. The form every `submit` and scope spawn takes.
pub(crate) struct HeapJob<F>(F);

impl<F: FnOnce() + Send> HeapJob<F> {
    /// Whether `F` fits in a job's data (size and alignment).
    const INLINE: bool =
        mem::size_of::<F>() <= mem::size_of::<JobData>() && mem::align_of::<F>() <= mem::align_of::<JobData>();
    const INLINE_TASK_OPS: JobOps = Self::inline_ops(JobKind::Task);
    const INLINE_BOUND_OPS: JobOps = Self::inline_ops(JobKind::Bound);
    const BOXED_TASK_OPS: JobOps = Self::boxed_ops(JobKind::Task);
    const BOXED_BOUND_OPS: JobOps = Self::boxed_ops(JobKind::Bound);

    const fn inline_ops(kind: JobKind) -> JobOps {
        JobOps {
            kind,
            execute: Self::execute_inline,
            discard: Self::discard_inline,
            withdraw: None,
            start: None,
        }
    }

    const fn boxed_ops(kind: JobKind) -> JobOps {
        JobOps {
            kind,
            execute: Self::execute_boxed,
            discard: Self::discard_boxed,
            withdraw: None,
            start: None,
        }
    }

    /// Erases `f` into a [`JobRef`]: stored inline if it fits, else out of
    /// line (a block of this thread's job cache, or a `Box` beyond it).
    ///
    /// The closure may borrow (`'scope`): the caller promises it runs or is
    /// discarded before those borrows end (a `Scope` waits for all its jobs).
    #[inline]
    pub(crate) fn into_job_ref(f: F, kind: JobKind) -> JobRef {
        debug_assert!(matches!(kind, JobKind::Task | JobKind::Bound));
        if Self::INLINE {
            let mut data = JobData::uninit();
            // SAFETY: `F` fits in the storage, size and alignment (`INLINE`).
            unsafe { ptr::write(data.as_mut_ptr().cast::<F>(), f) };
            JobRef {
                data,
                ops: if kind == JobKind::Task {
                    &Self::INLINE_TASK_OPS
                } else {
                    &Self::INLINE_BOUND_OPS
                },
            }
        } else {
            // A job block of this thread's cache when `F` fits one (no
            // allocator call once warm), else a `Box`.
            let stored = job_cache::put_job_value(f);
            JobRef {
                data: data_from_ptr(stored.cast()),
                ops: if kind == JobKind::Task {
                    &Self::BOXED_TASK_OPS
                } else {
                    &Self::BOXED_BOUND_OPS
                },
            }
        }
    }

    /// Runs the closure stored in the data.
    ///
    /// # Safety
    /// `data` was made by `into_job_ref::<F>` with `INLINE` true, and is
    /// consumed once (run or discarded).
    unsafe fn execute_inline(data: JobData) {
        // SAFETY: written as an `F` by `into_job_ref`, read once (caller).
        let f = unsafe { ptr::read(data.as_ptr().cast::<F>()) };
        f();
    }

    /// Drops the closure stored in the data unrun.
    ///
    /// # Safety
    /// As for [`HeapJob::execute_inline`].
    unsafe fn discard_inline(data: JobData) {
        // SAFETY: as in `execute_inline`.
        drop(unsafe { ptr::read(data.as_ptr().cast::<F>()) });
    }

    /// Runs the boxed closure.
    ///
    /// # Safety
    /// `data` was made by `into_job_ref::<F>` with `INLINE` false, and is
    /// consumed once (run or discarded).
    unsafe fn execute_boxed(data: JobData) {
        // SAFETY: `data` holds what `job_cache::put_job_value::<F>` returned in
        // `into_job_ref`, and each JobRef is executed or discarded exactly
        // once. The block is free again before `f` runs: its own spawns
        // reuse it.
        let f = unsafe { job_cache::take_job_value(ptr_of(&data).cast::<F>()) };
        f();
    }

    /// Drops the boxed closure unrun.
    ///
    /// # Safety
    /// As for [`HeapJob::execute_boxed`].
    unsafe fn discard_boxed(data: JobData) {
        // SAFETY: as in `execute_boxed`.
        drop(unsafe { job_cache::take_job_value(ptr_of(&data).cast::<F>()) });
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
            data: data_from_ptr(NonNull::from(self).cast()),
            ops: if counted { &Self::BOUND_OPS } else { &Self::STACK_OPS },
        }
    }

    const STACK_OPS: JobOps = Self::ops(JobKind::Stack);
    const BOUND_OPS: JobOps = Self::ops(JobKind::Bound);

    const fn ops(kind: JobKind) -> JobOps {
        JobOps {
            kind,
            execute: Self::execute,
            discard: Self::never_discarded,
            withdraw: None,
            start: None,
        }
    }

    /// Runs the job on the thread that took it and sets the latch.
    ///
    /// # Safety
    /// `data` holds a pointer to a `StackJob` of this type whose owner has not seen
    /// its latch set (so the frame is alive), and the job runs once.
    unsafe fn execute(data: JobData) {
        // SAFETY: `as_job_ref` stored a pointer to the job, which its owner
        // keeps alive until the latch is set below.
        let this = unsafe { ptr_of(&data).cast::<Self>().as_ref() };
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

    /// Never called: only `Task` jobs are handed back.
    ///
    /// # Safety
    /// None needed (it panics); `unsafe` only to fit the `JobRef` table.
    unsafe fn never_discarded(_data: JobData) {
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn a_job_is_three_words_and_an_empty_slot_costs_nothing_more() {
        assert_eq!(mem::size_of::<JobRef>(), 3 * mem::size_of::<usize>());
        // The table reference is the niche: a popped `Option<JobRef>` is no
        // larger than the job.
        assert_eq!(mem::size_of::<Option<JobRef>>(), 3 * mem::size_of::<usize>());
    }

    #[test]
    fn two_word_closures_are_stored_inline_larger_ones_boxed() {
        fn inline<F: FnOnce() + Send>(_: &F) -> bool {
            HeapJob::<F>::INLINE
        }
        let counter = Arc::new(AtomicUsize::new(0));
        let (a, b) = (counter.clone(), counter.clone());
        let two_words = move || {
            a.fetch_add(1, Ordering::Relaxed);
            let _ = b;
        };
        assert!(inline(&two_words));
        let (c, d, e) = (1u64, 2u64, 3u64);
        let three_words = move || {
            std::hint::black_box(c + d + e);
        };
        assert!(!inline(&three_words));
        // Two words in size, but aligned to 16: boxed.
        let wide = 0u128;
        let aligned = move || {
            std::hint::black_box(wide);
        };
        assert_eq!(mem::size_of_val(&aligned), 16);
        assert_eq!(inline(&aligned), mem::align_of::<u128>() <= mem::align_of::<JobData>());
    }

    #[test]
    fn inline_and_boxed_jobs_run_or_drop_their_captures_once() {
        let counter = Arc::new(AtomicUsize::new(0));
        let runs = Arc::new(AtomicUsize::new(0));
        // Inline (an Arc and a reference-sized Arc: two words).
        let (c, r) = (counter.clone(), runs.clone());
        let job = HeapJob::into_job_ref(
            move || {
                let _c = c;
                r.fetch_add(1, Ordering::Relaxed);
            },
            JobKind::Task,
        );
        assert_eq!(Arc::strong_count(&counter), 2);
        // SAFETY: a fresh heap job, run once.
        unsafe { job.execute() };
        assert_eq!((runs.load(Ordering::Relaxed), Arc::strong_count(&counter)), (1, 1));
        let c = counter.clone();
        let job = HeapJob::into_job_ref(move || drop(c), JobKind::Task);
        // SAFETY: a fresh heap job, discarded once.
        unsafe { job.discard() };
        assert_eq!(Arc::strong_count(&counter), 1);
        // Boxed (three words).
        let (c, r, n) = (counter.clone(), runs.clone(), 7u64);
        let job = HeapJob::into_job_ref(
            move || {
                let _c = c;
                r.fetch_add(n as usize, Ordering::Relaxed);
            },
            JobKind::Task,
        );
        // SAFETY: as above.
        unsafe { job.execute() };
        assert_eq!((runs.load(Ordering::Relaxed), Arc::strong_count(&counter)), (8, 1));
    }
}
