//! `JoinHandle`: the result of a spawned task, by blocking or as a `Future`.

use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll, Waker};
use std::thread::Result as ThreadResult;

use crate::config::PanicHandlerFn;
use crate::scheduler::{help_while_draining, ptr_of, JobData, JobKind, JobOps, JobRef, Shared, WorkerThread};
use crate::sync::{lock, wait, Arc, Condvar, Mutex, StdArc};
use crate::unwind::deliver_panic;

/// Where a spawned task leaves its result.
pub(crate) struct Packet<T> {
    state: Mutex<PacketState<T>>,
    finished: Condvar,
    panic_handler: Option<StdArc<PanicHandlerFn>>,
}

struct PacketState<T> {
    result: Option<ThreadResult<T>>,
    finished: bool,
    waker: Option<Waker>,
    handle_alive: bool,
    /// Handed back unrun by `shutdown_now` (it may still be run by hand).
    withdrawn: bool,
}

impl<T> Packet<T> {
    pub(crate) fn new(panic_handler: Option<StdArc<PanicHandlerFn>>) -> Self {
        Packet {
            state: Mutex::new(PacketState {
                result: None,
                finished: false,
                waker: None,
                handle_alive: true,
                withdrawn: false,
            }),
            finished: Condvar::new(),
            panic_handler,
        }
    }

    /// Runs the task and stores its result (or panic) for the handle.
    pub(crate) fn run<F: FnOnce() -> T>(&self, task: F) {
        let result = panic::catch_unwind(AssertUnwindSafe(task));
        if result.is_err() {
            if let Some(worker) = WorkerThread::current() {
                worker.note_panic();
            }
        }
        self.complete(result);
    }

    /// Stores the result for the handle and wakes whoever waits.
    fn complete(&self, result: ThreadResult<T>) {
        let mut state = lock(&self.state);
        debug_assert!(!state.finished, "a spawned task completes once");
        // If the handle is gone, nobody will ever see a panic: hand it to
        // the panic handler rather than swallow it.
        let orphaned_panic = if state.handle_alive {
            state.result = Some(result);
            None
        } else {
            result.err()
        };
        state.finished = true;
        let waker = state.waker.take();
        drop(state);
        self.finished.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
        if let Some(payload) = orphaned_panic {
            deliver_panic(self.panic_handler.as_ref(), None, payload);
        }
    }

    /// `shutdown_now` handed the task back: a task of a pool blocked on the
    /// handle returns an error now (see `JoinHandle::join`); wake it.
    fn mark_withdrawn(&self) {
        lock(&self.state).withdrawn = true;
        self.finished.notify_all();
    }
}

/// The error `JoinHandle::join` returns inside a pool's task when
/// `shutdown_now` took the awaited task out of the queue unrun.
const WITHDRAWN: &str = "stealpool: the task was handed back unrun by shutdown_now";

/// The error a `JoinHandle` returns when its task was dropped unrun.
const DROPPED_UNRUN: &str = "stealpool: the task was dropped unrun after shutdown_now";

/// A spawned task in its one allocation: the closure, its handle's packet,
/// and a value that lives as long as the task (`MultiPool`'s load counter,
/// or `()`).
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
    /// Boxes the task (its one allocation) and erases it into a job.
    pub(crate) fn into_job_ref(packet: Arc<Packet<T>>, task: F, guard: G) -> JobRef {
        let job = Box::new(SpawnJob { packet, task, guard });
        // SAFETY: `Box::into_raw` is never null; the data is `Send` (all
        // fields are), and the three functions of `OPS` each expect exactly
        // this type behind the pointer.
        unsafe {
            JobRef::from_raw(
                NonNull::new_unchecked(Box::into_raw(job)).cast(),
                &Self::OPS,
                JobKind::Task,
            )
        }
    }

    /// Runs the task and completes the handle.
    ///
    /// # Safety
    /// `data` came from `into_job_ref` of this type and is consumed once
    /// (run or discarded).
    const OPS: JobOps = JobOps {
        execute: Self::execute,
        discard: Self::discard,
        withdraw: Some(Self::withdraw),
    };

    unsafe fn execute(data: JobData) {
        // SAFETY: `data` holds the pointer from `Box::into_raw` in
        // `into_job_ref`, and a job is executed or discarded exactly once.
        let job = unsafe { Box::from_raw(ptr_of(&data).cast::<Self>().as_ptr()) };
        let SpawnJob {
            packet, task, guard, ..
        } = *job;
        // Dropped after the task, however it ends.
        let _guard = guard;
        packet.run(task);
    }

    /// Drops the task unrun; the handle gets an error.
    ///
    /// # Safety
    /// As for `execute`.
    unsafe fn discard(data: JobData) {
        // SAFETY: as in `execute`.
        let job = unsafe { Box::from_raw(ptr_of(&data).cast::<Self>().as_ptr()) };
        job.packet.complete(Err(Box::new(DROPPED_UNRUN)));
    }

    /// Marks the handle's packet withdrawn, without consuming the job.
    ///
    /// # Safety
    /// `data` came from `into_job_ref` of this type and has not been run or
    /// discarded yet.
    unsafe fn withdraw(data: &JobData) {
        // SAFETY: alive until executed or discarded (`notify_withdrawn`'s
        // contract); only the packet is touched, through a shared reference.
        let job = unsafe { ptr_of(data).cast::<Self>().as_ref() };
        job.packet.mark_withdrawn();
    }
}

/// A handle to a task started with [`Pool::spawn`](crate::Pool::spawn).
///
/// [`join`](JoinHandle::join) blocks for the result; the handle is also a
/// [`Future`] with the same output, so async code can `.await` it. A panic in
/// the task comes back as `Err(payload)`. Dropping the handle detaches the
/// task (it still runs); a panic of a detached task goes to the pool's panic
/// handler.
///
/// # Examples
///
/// ```
/// let pool = stealpool::Pool::builder().capacity(2).build()?;
/// let ok = pool.spawn(|| "fine")?;
/// let bad = pool.spawn(|| -> u8 { panic!("oops") })?;
/// assert_eq!(ok.join().unwrap(), "fine");
/// assert!(bad.join().is_err());
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
// SAFETY: as above; `&JoinHandle` only offers `is_finished`.
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    pub(crate) fn new(packet: Arc<Packet<T>>, pool: &Shared) -> Self {
        JoinHandle { packet, pool }
    }

    /// Waits for the task and returns its result, or `Err(payload)` if it
    /// panicked.
    ///
    /// Called from inside one of the same pool's tasks, the worker runs other
    /// queued tasks while it waits (so a pool of one worker cannot deadlock
    /// on its own queue), and blocks only once the awaited task is running
    /// elsewhere.
    ///
    /// Helping is per pool: a task of pool A that joins a handle of pool B
    /// blocks its worker without running B's queue. If A has one worker and
    /// B's task in turn joins a handle of a task queued in A, the two wait
    /// for each other forever; give such pools enough workers, or wait for
    /// the other pool's result outside the pool.
    ///
    /// If [`Pool::shutdown_now`](crate::Pool::shutdown_now) hands the task
    /// back unrun, the handle gets the result of [`Task::run`](crate::Task::run)
    /// if the caller runs it, or `Err` if the `Task` is dropped. Inside a
    /// pool's task, though, `join` returns `Err` at once (the payload is a
    /// `&str` saying the task was handed back): `shutdown_now` waits for the
    /// running tasks before it returns the handed-back ones, so waiting
    /// there would never end.
    ///
    /// # Panics
    ///
    /// If the result was already taken by polling the handle as a `Future`.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(1).build()?;
    /// let handle = pool.spawn(|| 2 + 2)?;
    /// assert_eq!(handle.join().unwrap(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(self) -> ThreadResult<T> {
        if let Some(worker) = WorkerThread::current().filter(|worker| std::ptr::eq(&*worker.shared, self.pool)) {
            // Until nothing is queued anywhere: then the awaited task is
            // running elsewhere, and the packet's condvar tells us when.
            while !self.is_finished() && worker.help_once() {}
        } else {
            // Outside the pool, on a thread running stranded work ("caller
            // runs"), the task may be queued behind us.
            help_while_draining(|| self.is_finished());
        }
        // Inside any pool's task, a handed-back task is not waited for: the
        // `shutdown_now` that holds it may be waiting for this very task.
        let inside_a_pool = WorkerThread::current().is_some();
        let mut state = lock(&self.packet.state);
        while !state.finished {
            if state.withdrawn && inside_a_pool {
                return Err(Box::new(WITHDRAWN));
            }
            state = wait(&self.packet.finished, state);
        }
        state
            .result
            .take()
            .expect("JoinHandle::join: the result was already taken by polling the handle")
    }

    /// Whether the task has finished (its result is ready).
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
    type Output = ThreadResult<T>;

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
        if let Some(Err(payload)) = unseen {
            deliver_panic(self.packet.panic_handler.as_ref(), None, payload);
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
