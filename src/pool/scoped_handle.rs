//! `ScopedJoinHandle`: the result of one closure spawned in a scope.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::thread::Result as ThreadResult;

use crate::scheduler::{cross, help_while_draining, put_job_value, take_job_value, Shared, WorkerThread};
use crate::sync::{lock, wait, wait_timeout, AtomicU8, Condvar, Mutex, Ordering};
use crate::unwind::{drop_payload, Payload};

// Each bit of a packet's state is set at most once, by its one owner (the
// spawn sets FINISHED, `join` WAITING, the handle's drop HANDLE_GONE): an
// add of the bit is the same as an or, and compiles to one `lock xadd`
// where an or whose old value is used becomes a compare-exchange loop.

/// The spawn finished: `result` is written.
const FINISHED: u8 = 1;
/// The handle is gone: whoever comes second (spawn or handle) disposes of
/// the result and frees the task.
const HANDLE_GONE: u8 = 2;
/// The handle waits on its scope's [`HandleWaiters`]: the spawn must
/// notify.
const WAITING: u8 = 4;

/// Where the handles of one scope block (shared by all of them, so a
/// spawn carries no lock of its own): a spawn notifies it only when its
/// handle announced a wait.
pub(crate) struct HandleWaiters {
    lock: Mutex<()>,
    finished: Condvar,
}

impl HandleWaiters {
    pub(crate) fn new() -> Self {
        HandleWaiters {
            lock: Mutex::new(()),
            finished: Condvar::new(),
        }
    }
}

/// Where a scoped spawn leaves its result for its handle. `state` decides
/// who owns the result and who frees the task, with no lock on the common
/// paths: the spawn's run and the handle's drop each first load it, and
/// take over at once if the other side is done (a handle dropped before
/// the spawn ran, a spawn finished before its handle went); otherwise one
/// RMW each (FINISHED, HANDLE_GONE) decides, the second to come disposing
/// of both. A blocking `join` sets WAITING under the waiters' lock.
pub(crate) struct ScopedPacket<T> {
    state: AtomicU8,
    /// Written once by the spawn before it sets FINISHED (Release); read by
    /// whoever owns it after seeing FINISHED (Acquire): the handle if it is
    /// alive, else the spawn itself.
    result: UnsafeCell<Option<ThreadResult<T>>>,
    /// Frees the [`ScopedTask`] this packet heads, whatever its closure
    /// type: called once, by whichever of the spawn and the handle is done
    /// last.
    release: unsafe fn(NonNull<ScopedPacket<T>>),
}

impl<T> ScopedPacket<T> {
    fn is_finished(&self) -> bool {
        // Acquire: pairs with the Release in `ScopedTask::run` (the result
        // is visible).
        self.state.load(Ordering::Acquire) & FINISHED != 0
    }
}

/// A scoped spawn in one job block (`put_job_value`: no allocation once
/// the thread's cache is warm, for closures that fit), shared by the queued
/// job and the handle, which sees only the packet at its head.
#[repr(C)]
pub(crate) struct ScopedTask<F, T> {
    /// First, so a pointer to the task is a pointer to its packet.
    packet: ScopedPacket<T>,
    /// Taken once, by whoever runs the job.
    task: UnsafeCell<Option<F>>,
}

/// A pointer to a stored [`ScopedTask`] that its job carries.
pub(crate) struct SpawnedTask<F, T>(NonNull<ScopedTask<F, T>>);

// SAFETY: the task is touched by the one thread that runs the job and,
// through the packet's state word, by the handle; `F` and `T` are `Send`
// (required by `Scope::spawn`).
unsafe impl<F: Send, T: Send> Send for SpawnedTask<F, T> {}

impl<F, T> ScopedTask<F, T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    /// Stores `task` for one spawn: the job's pointer and the handle's.
    pub(crate) fn store(task: F) -> (SpawnedTask<F, T>, NonNull<ScopedPacket<T>>) {
        let stored = put_job_value(ScopedTask {
            packet: ScopedPacket {
                state: AtomicU8::new(0),
                result: UnsafeCell::new(None),
                release: Self::release,
            },
            task: UnsafeCell::new(Some(task)),
        });
        (SpawnedTask(stored), stored.cast())
    }

    /// Frees the task.
    ///
    /// # Safety
    /// `packet` heads a `ScopedTask<F, T>` made by `store` (`repr(C)`, first
    /// field), freed once, when neither the job nor the handle uses it.
    unsafe fn release(packet: NonNull<ScopedPacket<T>>) {
        // SAFETY: forwarded from the caller.
        drop(unsafe { take_job_value(packet.cast::<Self>()) });
    }

    /// Runs the closure (the job's one run) and leaves its result for the
    /// handle. If the handle is already gone the result is the spawn's: it
    /// frees the task and returns a panic for the scope to keep
    /// (`Pool::scope` re-raises it, as for a spawn nobody joined).
    pub(crate) fn run(spawned: SpawnedTask<F, T>, waiters: &HandleWaiters) -> Option<Payload> {
        let this = spawned.0;
        // SAFETY: alive until released, which happens below (handle gone)
        // or in the handle's drop after it sees FINISHED (set below, after
        // our last use of the task).
        let task_ref = unsafe { this.as_ref() };
        // SAFETY: only the job's one run touches `task`.
        let task = unsafe { (*task_ref.task.get()).take() }.expect("a scoped spawn runs once");
        let result = panic::catch_unwind(AssertUnwindSafe(task));
        // A handle dropped at once (`s.spawn_handle(..);`): a
        // plain load tells, with no read-modify-write. Acquire pairs with
        // the handle's AcqRel RMW in its drop, its last use of the task:
        // once HANDLE_GONE is seen, the task is ours alone.
        if task_ref.packet.state.load(Ordering::Acquire) & HANDLE_GONE != 0 {
            // SAFETY: the handle is gone: nobody uses the task after us.
            unsafe { Self::release(this.cast()) };
            return result.err();
        }
        let panicked = result.is_err();
        // SAFETY: before FINISHED only the spawn touches `result`.
        unsafe { *task_ref.packet.result.get() = Some(result) };
        // AcqRel: Release publishes the result to the handle; Acquire sees
        // the handle's last use if it is gone (then the result is ours).
        let before = task_ref.packet.state.fetch_add(FINISHED, Ordering::AcqRel);
        if before & HANDLE_GONE != 0 {
            // SAFETY: the handle is gone and saw no FINISHED: ours alone.
            let result = unsafe { (*task_ref.packet.result.get()).take() };
            // SAFETY: the handle is gone: nobody uses the task after us.
            unsafe { Self::release(this.cast()) };
            return match result {
                Some(Err(payload)) => Some(payload),
                _ => None,
            };
        }
        // From here the handle may free the task at any moment: only
        // `before` and the scope's waiters are used.
        if panicked {
            // Kept for the handle (a resumed panic is counted by the scope).
            if let Some(worker) = WorkerThread::current() {
                worker.note_panic();
            }
        }
        if before & WAITING != 0 {
            // The handle waits under the lock: notify under it, so the
            // wake-up cannot fall between its check and its wait.
            let _guard = lock(&waiters.lock);
            waiters.finished.notify_all();
        }
        None
    }
}

/// A handle to a closure spawned with
/// [`Scope::spawn_handle`](crate::Scope::spawn_handle),
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
///     let left = s.spawn_handle(|| numbers[..50].iter().sum::<u64>());
///     let right = s.spawn_handle(|| numbers[50..].iter().sum::<u64>());
///     left.join().unwrap() + right.join().unwrap()
/// });
/// assert_eq!(total, 5050);
/// ```
pub struct ScopedJoinHandle<'scope, T> {
    packet: NonNull<ScopedPacket<T>>,
    shared: &'scope Shared,
    /// The scope's first unjoined panic (re-raised by `Pool::scope`).
    scope_panic: &'scope Mutex<Option<Payload>>,
    /// Where this handle blocks if it must.
    waiters: &'scope HandleWaiters,
    /// The handle may own the result (a `T`).
    result: PhantomData<T>,
}

// SAFETY: the packet is shared with the spawn only through its state word
// (see `ScopedPacket`), the result is handed out by value, and `T: Send`.
unsafe impl<T: Send> Send for ScopedJoinHandle<'_, T> {}
// SAFETY: `&self` methods only read the state word.
unsafe impl<T: Send> Sync for ScopedJoinHandle<'_, T> {}

impl<'scope, T> ScopedJoinHandle<'scope, T> {
    pub(crate) fn new(
        packet: NonNull<ScopedPacket<T>>,
        shared: &'scope Shared,
        scope_panic: &'scope Mutex<Option<Payload>>,
        waiters: &'scope HandleWaiters,
    ) -> Self {
        ScopedJoinHandle {
            packet,
            shared,
            scope_panic,
            waiters,
            result: PhantomData,
        }
    }

    fn packet(&self) -> &ScopedPacket<T> {
        // SAFETY: the task is released only by the last of the spawn and
        // the handle: while the handle lives, by nobody else.
        unsafe { self.packet.as_ref() }
    }

    /// Waits for the closure and returns its value, or `Err(payload)` if it
    /// panicked (then the scope does not re-raise that panic).
    ///
    /// Inside one of the pool's tasks the worker runs other queued tasks
    /// while it waits, as [`JoinHandle::join`](crate::JoinHandle::join) does;
    /// inside a task of another pool, that pool's queued tasks.
    ///
    /// # Errors
    ///
    /// The panic payload, as [`std::thread::ScopedJoinHandle::join`].
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).build().unwrap();
    /// pool.scope(|s| {
    ///     let bad = s.spawn_handle(|| -> u8 { panic!("caught here") });
    ///     assert!(bad.join().is_err()); // handled: `scope` does not panic
    /// });
    /// ```
    pub fn join(self) -> ThreadResult<T> {
        let packet = self.packet();
        if let Some(worker) = WorkerThread::current_in(self.shared) {
            while !packet.is_finished() && worker.help_once() {}
        } else {
            help_while_draining(|| packet.is_finished());
        }
        if !packet.is_finished() {
            // A worker of another pool runs its own pool's work while it
            // waits: the spawn may wait for that work (`worker/cross.rs`).
            let cross = WorkerThread::current().filter(|worker| !std::ptr::eq(&*worker.shared, self.shared));
            let mut guard = lock(&self.waiters.lock);
            // AcqRel: announces the wait (the spawn notifies under the lock
            // if it sees this) and reads FINISHED in the same RMW order.
            let mut state = packet.state.fetch_add(WAITING, Ordering::AcqRel);
            while state & FINISHED == 0 {
                guard = match cross {
                    None => wait(&self.waiters.finished, guard),
                    Some(worker) => {
                        drop(guard);
                        while !packet.is_finished() && worker.help_once() {}
                        let guard = lock(&self.waiters.lock);
                        if packet.is_finished() {
                            guard
                        } else {
                            wait_timeout(&self.waiters.finished, guard, cross::CROSS_POLL)
                        }
                    }
                };
                state = packet.state.load(Ordering::Acquire);
            }
        }
        // SAFETY: FINISHED is set (Acquire) and the handle is alive, so the
        // result is the handle's, written once.
        let result = unsafe { (*packet.result.get()).take() };
        // Dropping `self` now frees the task (FINISHED is set).
        result.expect("a finished scoped spawn has its result until joined")
    }

    /// Whether the closure has finished.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(1).build().unwrap();
    /// pool.scope(|s| {
    ///     let handle = s.spawn_handle(|| 1);
    ///     while !handle.is_finished() {
    ///         std::thread::yield_now();
    ///     }
    ///     assert_eq!(handle.join().unwrap(), 1);
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.packet().is_finished()
    }
}

impl<T> Drop for ScopedJoinHandle<'_, T> {
    fn drop(&mut self) {
        // AcqRel: Acquire sees the result if the spawn finished (then it is
        // ours to dispose of, and the task ours to free); Release hands both
        // to the spawn otherwise.
        let packet = self.packet();
        // A finished spawn never touches the task again: a plain load
        // (Acquire, pairing with the spawn's AcqRel RMW that set FINISHED)
        // is enough to take it over; otherwise the RMW decides.
        let before = if packet.state.load(Ordering::Acquire) & FINISHED != 0 {
            FINISHED
        } else {
            packet.state.fetch_add(HANDLE_GONE, Ordering::AcqRel)
        };
        if before & FINISHED == 0 {
            return;
        }
        // SAFETY: FINISHED seen and the spawn saw no HANDLE_GONE: ours.
        let unseen = unsafe { (*packet.result.get()).take() };
        let release = packet.release;
        // SAFETY: the spawn is done with the task (FINISHED is its last
        // use) and this handle's last use was the line above.
        unsafe { release(self.packet) };
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
