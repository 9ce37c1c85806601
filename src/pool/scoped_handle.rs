//! `ScopedJoinHandle`: the result of one closure spawned in a scope.

use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::thread::Result as ThreadResult;

use crate::scheduler::{help_while_draining, Shared, WorkerThread};
use crate::sync::{lock, wait, Arc, Condvar, Mutex};
use crate::unwind::{drop_payload, Payload};

/// Where a scoped spawn leaves its result for its handle.
pub(crate) struct ScopedPacket<T> {
    state: Mutex<ScopedState<T>>,
    finished: Condvar,
}

struct ScopedState<T> {
    result: Option<ThreadResult<T>>,
    finished: bool,
    handle_alive: bool,
}

impl<T> ScopedPacket<T> {
    pub(crate) fn new() -> Self {
        ScopedPacket {
            state: Mutex::new(ScopedState {
                result: None,
                finished: false,
                handle_alive: true,
            }),
            finished: Condvar::new(),
        }
    }

    /// Runs the spawned closure and keeps its result for the handle. A panic
    /// whose handle is already gone is resumed: the scope's own catch keeps
    /// it and `Pool::scope` re-raises it, as for a spawn without a handle.
    pub(crate) fn run<F: FnOnce() -> T>(&self, task: F) {
        let result = panic::catch_unwind(AssertUnwindSafe(task));
        let mut state = lock(&self.state);
        state.finished = true;
        let unclaimed = match result {
            Err(payload) if !state.handle_alive => Some(payload),
            result => {
                if result.is_err() {
                    if let Some(worker) = WorkerThread::current() {
                        worker.note_panic();
                    }
                }
                state.result = Some(result);
                None
            }
        };
        drop(state);
        self.finished.notify_all();
        if let Some(payload) = unclaimed {
            panic::resume_unwind(payload);
        }
    }
}

/// A handle to a closure spawned with [`Scope::spawn`](crate::Scope::spawn),
/// like [`std::thread::ScopedJoinHandle`].
///
/// [`join`](ScopedJoinHandle::join) waits for the closure and returns its
/// value, or `Err(payload)` if it panicked; a panic returned this way is not
/// raised again by [`Pool::scope`](crate::Pool::scope). Dropping the handle
/// leaves the closure running; the scope waits for it anyway, and re-raises
/// its panic if nobody joined it.
///
/// # Examples
///
/// ```
/// let pool = stealpool::Pool::builder().capacity(2).build().unwrap();
/// let numbers: Vec<u64> = (1..=100).collect();
/// let total = pool.scope(|s| {
///     let left = s.spawn(|| numbers[..50].iter().sum::<u64>());
///     let right = s.spawn(|| numbers[50..].iter().sum::<u64>());
///     left.join().unwrap() + right.join().unwrap()
/// });
/// assert_eq!(total, 5050);
/// ```
pub struct ScopedJoinHandle<'scope, T> {
    packet: Arc<ScopedPacket<T>>,
    shared: &'scope Shared,
    /// The scope's first unjoined panic (re-raised by `Pool::scope`).
    scope_panic: &'scope Mutex<Option<Payload>>,
    scope: PhantomData<&'scope ()>,
}

impl<'scope, T> ScopedJoinHandle<'scope, T> {
    pub(crate) fn new(
        packet: Arc<ScopedPacket<T>>,
        shared: &'scope Shared,
        scope_panic: &'scope Mutex<Option<Payload>>,
    ) -> Self {
        ScopedJoinHandle {
            packet,
            shared,
            scope_panic,
            scope: PhantomData,
        }
    }

    /// Waits for the closure and returns its value, or `Err(payload)` if it
    /// panicked (then the scope does not re-raise that panic).
    ///
    /// Inside one of the pool's tasks the worker runs other queued tasks
    /// while it waits, as [`JoinHandle::join`](crate::JoinHandle::join) does.
    ///
    /// # Errors
    ///
    /// The panic payload, as [`std::thread::ScopedJoinHandle::join`].
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).build().unwrap();
    /// pool.scope(|s| {
    ///     let bad = s.spawn(|| -> u8 { panic!("caught here") });
    ///     assert!(bad.join().is_err()); // handled: `scope` does not panic
    /// });
    /// ```
    pub fn join(self) -> ThreadResult<T> {
        if let Some(worker) = WorkerThread::current_in(self.shared) {
            while !self.is_finished() && worker.help_once() {}
        } else {
            help_while_draining(|| self.is_finished());
        }
        let mut state = lock(&self.packet.state);
        while !state.finished {
            state = wait(&self.packet.finished, state);
        }
        state
            .result
            .take()
            .expect("a finished scoped spawn has its result until joined")
    }

    /// Whether the closure has finished.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(1).build().unwrap();
    /// pool.scope(|s| {
    ///     let handle = s.spawn(|| 1);
    ///     while !handle.is_finished() {
    ///         std::thread::yield_now();
    ///     }
    ///     assert_eq!(handle.join().unwrap(), 1);
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        lock(&self.packet.state).finished
    }
}

impl<T> Drop for ScopedJoinHandle<'_, T> {
    fn drop(&mut self) {
        let mut state = lock(&self.packet.state);
        state.handle_alive = false;
        let unseen = state.result.take();
        drop(state);
        if let Some(Err(payload)) = unseen {
            // Nobody joined it: the scope re-raises it (the first one only).
            let mut first = lock(self.scope_panic);
            if first.is_none() {
                *first = Some(payload);
            } else {
                drop(first);
                drop_payload(payload);
            }
        }
    }
}

impl<T> fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedJoinHandle")
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}
