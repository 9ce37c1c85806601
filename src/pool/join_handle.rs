//! `JoinHandle`: the result of a spawned task, by blocking or as a `Future`.

use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::config::PanicHandlerFn;
use crate::pool::join_error::JoinError;
use crate::pool::task_set::SetMember;
use crate::scheduler::{
    cross, early_count, help_while_draining, ptr_of, JobData, JobKind, JobOps, JobRef, Shared, WorkerThread,
};
use crate::sync::{lock, wait, wait_timeout, Arc, AtomicU8, Condvar, Mutex, Ordering, StdArc};
use crate::unwind::deliver_panic;

/// A spawned task's start word: QUEUED until a runner claims the start
/// (RUNNING) or a canceller wins (CANCELLED). One CAS decides, so a task
/// either runs or is cancelled, never both (pool/README.md,
/// I32).
const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
const CANCELLED: u8 = 2;

/// Where a spawned task leaves its result.
pub(crate) struct Packet<T> {
    state: Mutex<PacketState<T>>,
    finished: Condvar,
    /// QUEUED → RUNNING or QUEUED → CANCELLED, once.
    start: AtomicU8,
    panic_handler: Option<StdArc<PanicHandlerFn>>,
    /// The `TaskSet` told when the task finishes (or is handed back).
    member: Option<SetMember>,
}

struct PacketState<T> {
    result: Option<Result<T, JoinError>>,
    finished: bool,
    waker: Option<Waker>,
    handle_alive: bool,
    /// Handed back unrun by `shutdown_now` (it may still be run by hand).
    withdrawn: bool,
    /// The handle waits on `finished` (set under the mutex before it
    /// waits): only then is the condvar notified, which saves a syscall per
    /// task whose handle is joined after it finished, or never.
    waiting: bool,
}

impl<T> Packet<T> {
    pub(crate) fn new(panic_handler: Option<StdArc<PanicHandlerFn>>, member: Option<SetMember>) -> Self {
        Packet {
            state: Mutex::new(PacketState {
                result: None,
                finished: false,
                waker: None,
                handle_alive: true,
                withdrawn: false,
                waiting: false,
            }),
            finished: Condvar::new(),
            start: AtomicU8::new(QUEUED),
            panic_handler,
            member,
        }
    }

    /// Claims the start for a runner: false if the task was cancelled.
    fn try_start(&self) -> bool {
        // Relaxed: the CAS only decides who wins; the loser reads nothing
        // the winner wrote (RMWs on one word are totally ordered, so exactly
        // one of this and `cancel`'s CAS succeeds). The result travels under
        // the packet's mutex.
        self.start
            .compare_exchange(QUEUED, RUNNING, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// Cancels the task if it has not started: the handle resolves as
    /// cancelled now, and whoever reaches the queued job drops it unrun.
    pub(crate) fn cancel(&self) -> bool {
        // Relaxed: see `try_start`.
        let won = self
            .start
            .compare_exchange(QUEUED, CANCELLED, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok();
        if won {
            self.complete(Err(JoinError::cancelled()), false);
        }
        won
    }

    /// Whether a cancellation won the start word.
    fn is_cancelled(&self) -> bool {
        // Relaxed: a hint for `shutdown_now` (a cancellation after it is
        // handled by `Task::run`/`drop`, which claim the start themselves).
        self.start.load(Ordering::Relaxed) == CANCELLED
    }

    /// Runs the task (its start already claimed) and stores its result (or
    /// panic) for the handle.
    pub(crate) fn run<F: FnOnce() -> T>(&self, task: F) {
        let result = panic::catch_unwind(AssertUnwindSafe(task));
        if result.is_err() {
            if let Some(worker) = WorkerThread::current() {
                worker.note_panic();
            }
        }
        self.complete(result.map_err(JoinError::panic), true);
    }

    /// Stores the result for the handle and wakes whoever waits. `ran`: the
    /// task ran (it did not just get cancelled), so the worker running it
    /// counts it done before the handle can see the result
    /// (`worker/early_count.rs`).
    fn complete(&self, result: Result<T, JoinError>, ran: bool) {
        let mut state = lock(&self.state);
        debug_assert!(!state.finished, "a spawned task completes once");
        // If the handle is gone, nobody will ever see a panic: hand it to
        // the panic handler rather than swallow it.
        let orphaned = if state.handle_alive {
            state.result = Some(result);
            None
        } else {
            result.err()
        };
        state.finished = true;
        // An orphaned panic is counted after the panic handler ran, as
        // every task is counted after everything it does.
        let wake_room = ran && orphaned.is_none() && early_count::count_spawned_task();
        let waker = state.waker.take();
        let waiting = state.waiting;
        drop(state);
        if wake_room {
            early_count::wake_room();
        }
        if waiting {
            self.finished.notify_all();
        }
        if let Some(waker) = waker {
            waker.wake();
        }
        if let Some(member) = &self.member {
            member.tell();
        }
        if let Some(error) = orphaned {
            if let Ok(payload) = error.try_into_panic() {
                deliver_panic(self.panic_handler.as_ref(), None, payload);
            }
        }
    }

    /// `shutdown_now` handed the task back: a task of a pool blocked on the
    /// handle cancels it now (see `JoinHandle::join`); wake it.
    fn mark_withdrawn(&self) {
        let mut state = lock(&self.state);
        state.withdrawn = true;
        let waiting = state.waiting;
        drop(state);
        if waiting {
            self.finished.notify_all();
        }
        if let Some(member) = &self.member {
            member.tell();
        }
    }
}

/// A spawned task, boxed: the closure, a reference to its handle's packet
/// (the task's other allocation), and a value that lives as long as the
/// task (`MultiPool`'s load counter, or `()`).
pub(crate) struct SpawnJob<T, F, G> {
    packet: Arc<Packet<T>>,
    task: F,
    guard: G,
}

impl<T, F, G> SpawnJob<T, F, G>
where
    T: Send,
    F: FnOnce() -> T + Send,
    G: Send,
{
    /// Boxes the task and erases it into a job.
    pub(crate) fn into_job_ref(packet: Arc<Packet<T>>, task: F, guard: G) -> JobRef {
        let job = Box::new(SpawnJob { packet, task, guard });
        // SAFETY: `Box::into_raw` is never null; the data is `Send` (all
        // fields are), and the functions of `OPS` each expect exactly this
        // type behind the pointer.
        unsafe { JobRef::from_raw(NonNull::new_unchecked(Box::into_raw(job)).cast(), &Self::OPS) }
    }

    const OPS: JobOps = JobOps {
        kind: JobKind::Task,
        execute: Self::execute,
        discard: Self::discard,
        withdraw: Some(Self::withdraw),
        start: Some(Self::start),
    };

    /// Runs the task (its start claimed by `start`) and completes the handle.
    ///
    /// # Safety
    /// `data` came from `into_job_ref` of this type and is consumed once
    /// (run or discarded).
    unsafe fn execute(data: JobData) {
        // SAFETY: `data` holds the pointer from `Box::into_raw` in
        // `into_job_ref`, and a job is executed or discarded exactly once.
        let job = unsafe { Box::from_raw(ptr_of(&data).cast::<Self>().as_ptr()) };
        let SpawnJob { packet, task, guard } = *job;
        debug_assert_eq!(
            packet.start.load(Ordering::Relaxed),
            RUNNING,
            "run without claiming the start"
        );
        // Dropped after the task, however it ends.
        let _guard = guard;
        packet.run(task);
    }

    /// Drops the task unrun. Unless a cancellation already resolved the
    /// handle, this is one (a handed-back `Task` dropped): the handle gets
    /// `Err(JoinError)` with `is_cancelled()`.
    ///
    /// # Safety
    /// As for `execute`.
    unsafe fn discard(data: JobData) {
        // SAFETY: as in `execute`.
        let job = unsafe { Box::from_raw(ptr_of(&data).cast::<Self>().as_ptr()) };
        let SpawnJob { packet, task, guard } = *job;
        // The closure first: the handle resolves once what it owned is gone
        // (even if a `Drop` panics: the panic goes on after).
        let dropped = panic::catch_unwind(AssertUnwindSafe(move || {
            drop(task);
            drop(guard);
        }));
        packet.cancel();
        if let Err(payload) = dropped {
            panic::resume_unwind(payload);
        }
    }

    /// Marks the handle's packet withdrawn, without consuming the job;
    /// false (nothing marked) if the task was cancelled.
    ///
    /// # Safety
    /// `data` came from `into_job_ref` of this type and has not been run or
    /// discarded yet.
    unsafe fn withdraw(data: &JobData) -> bool {
        // SAFETY: alive until executed or discarded (`notify_withdrawn`'s
        // contract); only the packet is touched, through a shared reference.
        let job = unsafe { ptr_of(data).cast::<Self>().as_ref() };
        if job.packet.is_cancelled() {
            return false;
        }
        job.packet.mark_withdrawn();
        true
    }

    /// Claims the start against a racing `JoinHandle::cancel`.
    ///
    /// # Safety
    /// As for `withdraw`.
    unsafe fn start(data: &JobData) -> bool {
        // SAFETY: as in `withdraw`.
        let job = unsafe { ptr_of(data).cast::<Self>().as_ref() };
        job.packet.try_start()
    }
}

/// A handle to a task started with [`Pool::spawn`](crate::Pool::spawn).
///
/// [`join`](JoinHandle::join) blocks for the result,
/// [`join_timeout`](JoinHandle::join_timeout) for at most a while; the handle
/// is also a [`Future`] with the same output, so async code can `.await` it.
/// The result is `Err(JoinError)` if the task panicked
/// ([`JoinError::is_panic`], the payload in [`JoinError::into_panic`]) or was
/// cancelled before it started ([`JoinError::is_cancelled`]).
///
/// Dropping the handle detaches the task (it still runs); a panic of a
/// detached task goes to the pool's panic handler.
/// [`cancel`](JoinHandle::cancel) stops a task that has not started.
///
/// # Examples
///
/// ```
/// let pool = stealpool::Pool::builder().capacity(2).build()?;
/// let ok = pool.spawn(|| "fine")?;
/// let bad = pool.spawn(|| -> u8 { panic!("oops") })?;
/// assert_eq!(ok.join()?, "fine");
/// assert!(bad.join().unwrap_err().is_panic());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JoinHandle<T> {
    packet: Arc<Packet<T>>,
    /// The pool's identity, to recognise a `join` from its own workers.
    pool: *const Shared,
}

// SAFETY: `pool` is only compared, never dereferenced; the rest is
// `Arc<Packet<T>>`, which is Send + Sync when T is Send (the result crosses
// threads once, under the packet's mutex).
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: as above; `&JoinHandle` only offers `is_finished` and `cancel`,
// which touch the packet's mutex and start word, never the result.
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    pub(crate) fn new(packet: Arc<Packet<T>>, pool: &Shared) -> Self {
        JoinHandle { packet, pool }
    }

    /// Waits for the task and returns its result, or `Err(JoinError)` if it
    /// panicked or was cancelled.
    ///
    /// Once it returned, [`Pool::stats`](crate::Pool::stats) counts the task
    /// as completed and its worker no longer as busy for it (unless the
    /// pool has task hooks, where the count follows `on_task_end`, or a
    /// worker of another `MultiPool` sub-pool ran it, or the calling
    /// thread: then the count follows the result by a moment).
    ///
    /// Called from inside one of the same pool's tasks, the worker runs other
    /// queued tasks while it waits (so a pool of one worker cannot deadlock
    /// on its own queue), and blocks only once the awaited task is running
    /// elsewhere.
    ///
    /// Called from a task of another pool A (the handle's task runs in B),
    /// the worker runs A's queued tasks while it waits, looking for new ones
    /// about every millisecond: if B's task in turn waits for a task queued
    /// in A, the two finish even when A has one worker.
    ///
    /// If [`Pool::shutdown_now`](crate::Pool::shutdown_now) hands the task
    /// back unrun, the handle gets the result of [`Task::run`](crate::Task::run)
    /// if the caller runs it, or a cancellation if the `Task` is dropped.
    /// Inside a pool's task, though, `join` cancels such a task and returns
    /// the cancellation at once (unless the `Task` is already running):
    /// `shutdown_now` waits for the running tasks before it returns the
    /// handed-back ones, so waiting there would never end.
    ///
    /// # Errors
    ///
    /// [`JoinError`]: the task panicked ([`JoinError::is_panic`]) or was
    /// cancelled ([`JoinError::is_cancelled`]).
    ///
    /// # Panics
    ///
    /// If the result was already taken by polling the handle as a `Future`.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(1).build()?;
    /// let handle = pool.spawn(|| 2 + 2)?;
    /// assert_eq!(handle.join()?, 4);
    /// let stats = pool.stats();
    /// assert_eq!((stats.completed, stats.busy_workers), (1, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(self) -> Result<T, JoinError> {
        self.wait(None);
        self.take_result()
    }

    /// Like [`JoinHandle::join`], but waits at most `timeout`; on timeout the
    /// handle comes back (`Err(handle)`) to join, poll or cancel later.
    ///
    /// Inside one of the same pool's tasks the worker runs other queued
    /// tasks while it waits, as `join` does; it checks the clock between
    /// them, so a long task it picked up can make it return late.
    ///
    /// # Errors
    ///
    /// `Err(self)` if the task has not finished in time.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = stealpool::Pool::builder().capacity(1).build()?;
    /// let (release, wait) = std::sync::mpsc::channel::<()>();
    /// let slow = pool.spawn(move || wait.recv().is_ok())?;
    /// let slow = match slow.join_timeout(Duration::from_millis(10)) {
    ///     Ok(_) => unreachable!("the task waits for `release`"),
    ///     Err(handle) => handle, // not finished: the handle comes back
    /// };
    /// release.send(())?;
    /// assert!(slow.join_timeout(Duration::from_secs(60)).ok().unwrap()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_timeout(self, timeout: Duration) -> Result<Result<T, JoinError>, JoinHandle<T>> {
        if self.wait(Instant::now().checked_add(timeout)) {
            Ok(self.take_result())
        } else {
            Err(self)
        }
    }

    /// Waits until the task finished, or until `deadline` if given; returns
    /// whether it finished.
    fn wait(&self, deadline: Option<Instant>) -> bool {
        let past = |deadline: Option<Instant>| deadline.is_some_and(|deadline| Instant::now() >= deadline);
        if let Some(worker) = WorkerThread::current().filter(|worker| std::ptr::eq(&*worker.shared, self.pool)) {
            // Until nothing is queued anywhere: then the awaited task is
            // running elsewhere, and the packet's condvar tells us when.
            // Halves of enclosing joins nobody was offered yet go where
            // others can take them first: this thread may block below.
            worker.publish_all_join_work();
            while !self.is_finished() && !past(deadline) && worker.help_once() {}
        } else {
            // Outside the pool, on a thread running stranded work ("caller
            // runs"), the task may be queued behind us.
            help_while_draining(|| self.is_finished() || past(deadline));
        }
        // Inside any pool's task, a handed-back task is not waited for: the
        // `shutdown_now` that holds it may be waiting for this very task.
        let inside_a_pool = WorkerThread::current().is_some();
        // A worker of another pool runs its own pool's work while it waits:
        // the awaited task may itself wait for that work (`worker/cross.rs`).
        let cross = WorkerThread::current().filter(|worker| !std::ptr::eq(&*worker.shared, self.pool));
        let mut state = lock(&self.packet.state);
        loop {
            if state.finished {
                return true;
            }
            if state.withdrawn && inside_a_pool && self.packet.start.load(Ordering::Relaxed) == QUEUED {
                drop(state);
                // Resolves the handle unless a `Task::run` claimed it first
                // (then it finishes without us).
                self.packet.cancel();
                state = lock(&self.packet.state);
                continue;
            }
            if let Some(worker) = cross {
                drop(state);
                while !self.is_finished() && !past(deadline) && worker.help_once() {}
                state = lock(&self.packet.state);
                if state.finished {
                    return true;
                }
                let now = Instant::now();
                let pause = match deadline {
                    Some(deadline) if now >= deadline => return false,
                    Some(deadline) => (deadline - now).min(cross::CROSS_POLL),
                    None => cross::CROSS_POLL,
                };
                state.waiting = true;
                state = wait_timeout(&self.packet.finished, state, pause);
                continue;
            }
            match deadline {
                None => {
                    state.waiting = true;
                    state = wait(&self.packet.finished, state);
                }
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    state.waiting = true;
                    state = wait_timeout(&self.packet.finished, state, deadline - now);
                }
            }
        }
    }

    /// The result of a finished task.
    fn take_result(&self) -> Result<T, JoinError> {
        lock(&self.packet.state)
            .result
            .take()
            .expect("JoinHandle::join: the result was already taken by polling the handle")
    }

    /// The result if the task finished, else the handle back (`TaskSet`).
    pub(crate) fn try_join(self) -> Result<Result<T, JoinError>, JoinHandle<T>> {
        if self.is_finished() {
            Ok(self.take_result())
        } else {
            Err(self)
        }
    }

    /// Cancels the task if it has not started yet. Returns true if it was
    /// cancelled: it will never run, and the handle (`join`, `.await`)
    /// returns `Err(JoinError)` with [`JoinError::is_cancelled`]. Returns
    /// false if the task already started (it runs to the end), finished, or
    /// was cancelled before.
    ///
    /// A cancellation racing the task's start has exactly one winner: either
    /// the task runs and `cancel` returns false, or `cancel` returns true and
    /// the task never runs.
    ///
    /// The closure itself (and what it captured) is not dropped by `cancel`:
    /// the queued job stays where it is (a lock-free queue cannot remove from
    /// its middle), and the thread that reaches it (a worker taking it from a
    /// queue, or [`Pool::shutdown_now`](crate::Pool::shutdown_now)) drops the
    /// closure there without running it; such a task counts in
    /// [`Stats::cancelled`](crate::Stats::cancelled), not in `completed`.
    /// Until then it keeps its place in a bounded queue.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(1).build()?;
    /// let (release, wait) = std::sync::mpsc::channel::<()>();
    /// pool.submit(move || { let _ = wait.recv(); })?;      // occupies the only worker
    /// let queued = pool.spawn(|| unreachable!("cancelled before it started"))?;
    /// assert!(queued.cancel());
    /// release.send(())?;
    /// assert!(queued.join().unwrap_err().is_cancelled());
    ///
    /// let ran = pool.spawn(|| 1)?;
    /// pool.wait_idle();
    /// assert!(!ran.cancel()); // too late: it already ran
    /// assert_eq!(ran.join()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel(&self) -> bool {
        self.packet.cancel()
    }

    /// Whether the task has finished (its result is ready); true too once it
    /// was cancelled.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(1).build()?;
    /// let handle = pool.spawn(|| ())?;
    /// pool.wait_idle();
    /// assert!(handle.is_finished());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        lock(&self.packet.state).finished
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = lock(&self.packet.state);
        if state.finished {
            let result = state.result.take().expect("JoinHandle polled after it returned Ready");
            return Poll::Ready(result);
        }
        match &state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        let mut state = lock(&self.packet.state);
        state.handle_alive = false;
        let unseen = state.result.take();
        drop(state);
        if let Some(Err(error)) = unseen {
            if let Ok(payload) = error.try_into_panic() {
                deliver_panic(self.packet.panic_handler.as_ref(), None, payload);
            }
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}
