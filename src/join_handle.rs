//! `JoinHandle`: the result of a spawned task, by blocking or as a `Future`.

use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc as StdArc;
use std::task::{Context, Poll, Waker};
use std::thread::Result as ThreadResult;

use crate::builder::PanicHandlerFn;
use crate::registry::{deliver_panic, Shared};
use crate::sync::{lock, wait, Arc, Condvar, Mutex};
use crate::worker::WorkerThread;

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
}

impl<T> Packet<T> {
    pub(crate) fn new(panic_handler: Option<StdArc<PanicHandlerFn>>) -> Self {
        Packet {
            state: Mutex::new(PacketState {
                result: None,
                finished: false,
                waker: None,
                handle_alive: true,
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
            deliver_panic(self.panic_handler.as_ref(), payload);
        }
    }
}

/// Completes a packet with an error if its task is dropped unrun (a
/// `Task` from `shutdown_now` dropped by its caller), so the `JoinHandle`
/// never waits forever.
pub(crate) struct PacketGuard<T> {
    packet: Option<Arc<Packet<T>>>,
}

impl<T> PacketGuard<T> {
    pub(crate) fn new(packet: Arc<Packet<T>>) -> Self {
        PacketGuard { packet: Some(packet) }
    }

    /// The task is about to run: the guard's job is done.
    pub(crate) fn disarm(mut self) -> Arc<Packet<T>> {
        self.packet.take().expect("a packet guard is disarmed once")
    }
}

impl<T> Drop for PacketGuard<T> {
    fn drop(&mut self) {
        if let Some(packet) = self.packet.take() {
            packet.complete(Err(Box::new(
                "stealpool: the task was dropped unrun after shutdown_now",
            )));
        }
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
            while !self.is_finished() {
                match worker.pop().or_else(|| worker.steal()) {
                    Some(job) => worker.execute(job),
                    // Nothing queued anywhere: the awaited task is running.
                    None => break,
                }
            }
        }
        let mut state = lock(&self.packet.state);
        while !state.finished {
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
            deliver_panic(self.packet.panic_handler.as_ref(), payload);
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
