//! `ScopedJoinHandle`: the result of one closure spawned in a scope.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::thread::Result as ThreadResult;

use crate::scheduler::{help_while_draining, Shared, WorkerThread};
use crate::sync::{lock, wait, AtomicU8, Condvar, Mutex, Ordering, StdArc};
use crate::unwind::{drop_payload, Payload};

/// The spawn finished: `result` is written.
const FINISHED: u8 = 1;
/// The handle is gone: whoever comes second (spawn or handle) disposes of
/// the result.
const HANDLE_GONE: u8 = 2;
/// The handle waits on `finished` under `lock`: the spawn must notify.
const WAITING: u8 = 4;

/// Where a scoped spawn leaves its result for its handle. The common path
/// (the handle dropped or joined after the spawn finished) takes no lock:
/// two RMWs on `state` decide who owns the result.
pub(crate) struct ScopedPacket<T> {
    state: AtomicU8,
    /// Written once by the spawn before it sets FINISHED (Release); read by
    /// whoever owns it after seeing FINISHED (Acquire): the handle if it is
    /// alive, else the spawn itself.
    result: UnsafeCell<Option<ThreadResult<T>>>,
    lock: Mutex<()>,
    finished: Condvar,
}

// SAFETY: `result` is touched by one thread at a time, as the state word
// hands it over (see the field); `T: Send` lets the value cross threads.
unsafe impl<T: Send> Sync for ScopedPacket<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for ScopedPacket<T> {}

impl<T> ScopedPacket<T> {
    pub(crate) fn new() -> Self {
        ScopedPacket {
            state: AtomicU8::new(0),
            result: UnsafeCell::new(None),
            lock: Mutex::new(()),
            finished: Condvar::new(),
        }
    }

    /// Runs the spawned closure and keeps its result for the handle. A panic
    /// whose handle is already gone is resumed: the scope's own catch keeps
    /// it and `Pool::scope` re-raises it, as for a spawn without a handle.
    pub(crate) fn run<F: FnOnce() -> T>(&self, task: F) {
        let result = panic::catch_unwind(AssertUnwindSafe(task));
        let panicked = result.is_err();
        // SAFETY: before FINISHED only the spawn touches `result`.
        unsafe { *self.result.get() = Some(result) };
        // AcqRel: Release publishes the result to the handle; Acquire sees
        // the handle's last use if it is gone (then the result is ours).
        let before = self.state.fetch_or(FINISHED, Ordering::AcqRel);
        if before & HANDLE_GONE != 0 {
            // SAFETY: the handle is gone and saw no FINISHED: ours alone.
            let result = unsafe { (*self.result.get()).take() };
            if let Some(Err(payload)) = result {
                panic::resume_unwind(payload);
            }
            return;
        }
        if panicked {
            // Kept for the handle (a resumed panic is counted by the scope).
            if let Some(worker) = WorkerThread::current() {
                worker.note_panic();
            }
        }
        if before & WAITING != 0 {
            // The handle waits under the lock: notify under it, so the
            // wake-up cannot fall between its check and its wait.
            let _guard = lock(&self.lock);
            self.finished.notify_all();
        }
    }

    fn is_finished(&self) -> bool {
        // Acquire: pairs with the Release in `run` (the result is visible).
        self.state.load(Ordering::Acquire) & FINISHED != 0
    }
}

/// A scoped spawn in its one allocation: the closure and its packet, shared
/// by the queued job and the handle (which sees only the packet).
pub(crate) struct ScopedTask<F, T> {
    packet: ScopedPacket<T>,
    /// Taken once, by whoever runs the job.
    task: UnsafeCell<Option<F>>,
}

// SAFETY: `task` is taken by the one thread that runs the job, and the
// packet hands its result over by its state word; `F` and `T` are `Send`.
unsafe impl<F: Send, T: Send> Sync for ScopedTask<F, T> {}
// SAFETY: as above.
unsafe impl<F: Send, T: Send> Send for ScopedTask<F, T> {}

impl<F: FnOnce() -> T, T> ScopedTask<F, T> {
    pub(crate) fn new(task: F) -> Self {
        ScopedTask {
            packet: ScopedPacket::new(),
            task: UnsafeCell::new(Some(task)),
        }
    }

    /// Runs the closure (once: the job that calls this runs once).
    pub(crate) fn run(&self) {
        // SAFETY: only the job's one run touches `task`.
        let task = unsafe { (*self.task.get()).take() }.expect("a scoped spawn runs once");
        self.packet.run(task);
    }
}

/// What a handle sees of its `ScopedTask`: the packet, whatever the closure.
pub(crate) trait HasPacket<T>: Send + Sync {
    fn packet(&self) -> &ScopedPacket<T>;
}

impl<F: Send, T: Send> HasPacket<T> for ScopedTask<F, T> {
    fn packet(&self) -> &ScopedPacket<T> {
        &self.packet
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
    task: StdArc<dyn HasPacket<T> + 'scope>,
    shared: &'scope Shared,
    /// The scope's first unjoined panic (re-raised by `Pool::scope`).
    scope_panic: &'scope Mutex<Option<Payload>>,
    scope: PhantomData<&'scope ()>,
}

impl<'scope, T> ScopedJoinHandle<'scope, T> {
    pub(crate) fn new(
        task: StdArc<dyn HasPacket<T> + 'scope>,
        shared: &'scope Shared,
        scope_panic: &'scope Mutex<Option<Payload>>,
    ) -> Self {
        ScopedJoinHandle {
            task,
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
        let packet = self.task.packet();
        if let Some(worker) = WorkerThread::current_in(self.shared) {
            while !packet.is_finished() && worker.help_once() {}
        } else {
            help_while_draining(|| packet.is_finished());
        }
        if !packet.is_finished() {
            let mut guard = lock(&packet.lock);
            // AcqRel: announces the wait (the spawn notifies under the lock
            // if it sees this) and reads FINISHED in the same RMW order.
            let mut state = packet.state.fetch_or(WAITING, Ordering::AcqRel);
            while state & FINISHED == 0 {
                guard = wait(&packet.finished, guard);
                state = packet.state.load(Ordering::Acquire);
            }
        }
        // SAFETY: FINISHED is set (Acquire) and the handle is alive, so the
        // result is the handle's, written once.
        let result = unsafe { (*packet.result.get()).take() };
        result.expect("a finished scoped spawn has its result until joined")
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
        self.task.packet().is_finished()
    }
}

impl<T> Drop for ScopedJoinHandle<'_, T> {
    fn drop(&mut self) {
        // AcqRel: Acquire sees the result if the spawn finished (then it is
        // ours to dispose of); Release hands it to the spawn otherwise.
        let packet = self.task.packet();
        let before = packet.state.fetch_or(HANDLE_GONE, Ordering::AcqRel);
        if before & FINISHED == 0 {
            return;
        }
        // SAFETY: FINISHED seen and the spawn saw no HANDLE_GONE: ours.
        let unseen = unsafe { (*packet.result.get()).take() };
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
