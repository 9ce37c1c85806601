//! One-shot latches: how a thread waits for a job that another thread runs.
//!
//! A latch goes UNSET → SET once. Its owner may announce that it is going to
//! block (UNSET → OWNER_BLOCKED) and then parks until it sees SET; the setter swaps
//! in SET and unparks the owner only if the previous state was OWNER_BLOCKED. The
//! owner frees the latch (it lives in the owner's stack frame) as soon as it
//! sees SET, so the setter must not touch the latch after publishing SET: it
//! copies the owner's handle first.
//!
//! A worker-owned latch names its owner's parker by address, with no
//! reference count: the parker lives in the pool's shared state, and whoever
//! sets such a latch runs a job of that same pool and so keeps the pool alive
//! until `set` returns (a worker holds the pool's `Arc`, a thread running
//! stranded work borrows a handle). That saves a pair of contended atomic
//! RMWs on the parker's count per `join` and per scope, which profiling of a
//! fine-grained `join` put at about a third of its cost (rayon's latches
//! borrow the registry the same way).

use std::ptr::NonNull;

use crate::scheduler::parker::Parker;
use crate::sync::{thread, Arc, AtomicU8, Ordering};

/// A latch's state (stored as its `u8` in `Latch::state`).
#[repr(u8)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum LatchState {
    /// Not set; the owner has not announced that it blocks.
    Unset = 0,
    /// Not set; the owner announced that it blocks on it (and may be parked):
    /// the setter must unpark it. (Not a worker's sleep in the sleep
    /// protocol: `sleep::WorkerState::Sleeping` is that.)
    OwnerBlocked = 1,
    /// Set, once; final.
    Set = 2,
}

const UNSET: u8 = LatchState::Unset as u8;
const OWNER_BLOCKED: u8 = LatchState::OwnerBlocked as u8;
const SET: u8 = LatchState::Set as u8;

/// Who waits on a latch, and so who must be unparked when it is set.
pub(crate) enum LatchOwner {
    /// A worker of the pool: it helps with other work while it waits and
    /// parks on its own worker parker (in the pool's shared state; see the
    /// module docs for why it needs no reference count).
    Worker(NonNull<Parker>),
    /// A thread outside the pool: it parks with `thread::park`.
    Thread(thread::Thread),
    /// A worker of *another* pool, waiting for a job of this one while it
    /// runs its own pool's work (`worker/cross.rs`). The setter runs a job
    /// of this pool, which keeps nothing of the owner's pool alive, so the
    /// owner's parker is held by a count of its own (one RMW per wait
    /// across pools, a path that blocks anyway).
    CrossWorker(Arc<Parker>),
}

// SAFETY: `Worker` points to a `Parker`, which is `Sync` (atomics, a mutex
// and a condvar); it is only used to `unpark`, while the pool that owns it is
// alive (`Latch::set`'s contract). `Thread` and `Arc<Parker>` are
// `Send + Sync` themselves.
unsafe impl Send for LatchOwner {}
// SAFETY: as above.
unsafe impl Sync for LatchOwner {}

impl LatchOwner {
    /// A worker's parker, by address.
    pub(crate) fn worker(parker: &Parker) -> LatchOwner {
        LatchOwner::Worker(NonNull::from(parker))
    }

    /// # Safety
    /// For `Worker`, the pool owning the parker must be alive.
    unsafe fn unpark(&self) {
        match self {
            // SAFETY: the caller keeps the parker's pool alive.
            LatchOwner::Worker(parker) => unsafe { parker.as_ref() }.unpark(),
            LatchOwner::Thread(thread) => thread.unpark(),
            LatchOwner::CrossWorker(parker) => parker.unpark(),
        }
    }

    fn clone_handle(&self) -> LatchOwner {
        match self {
            LatchOwner::Worker(parker) => LatchOwner::Worker(*parker),
            LatchOwner::Thread(thread) => LatchOwner::Thread(thread.clone()),
            LatchOwner::CrossWorker(parker) => LatchOwner::CrossWorker(parker.clone()),
        }
    }
}

/// A one-shot latch (see the module docs).
pub(crate) struct Latch {
    state: AtomicU8,
    owner: LatchOwner,
}

impl Latch {
    pub(crate) fn new(owner: LatchOwner) -> Self {
        Latch {
            state: AtomicU8::new(UNSET),
            owner,
        }
    }

    /// A latch owned by the calling thread, which is not a worker.
    pub(crate) fn for_current_thread() -> Self {
        Latch::new(LatchOwner::Thread(thread::current()))
    }

    /// Whether the latch is set. Acquire pairs with the Release in `set`, so
    /// everything the setter wrote (a job's result) is visible after `true`.
    #[inline]
    pub(crate) fn probe(&self) -> bool {
        self.state.load(Ordering::Acquire) == SET
    }

    /// The owner announces it is about to park. Returns false if the latch
    /// is already set (then it must not park).
    pub(crate) fn announce_block(&self) -> bool {
        // Acquire on failure: if it is SET we will read the job's result next.
        match self
            .state
            .compare_exchange(UNSET, OWNER_BLOCKED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(state) => state == OWNER_BLOCKED,
        }
    }

    /// Sets the latch and wakes its owner if it sleeps.
    ///
    /// # Safety
    /// `this` must be valid when called. It may be freed by its owner at any
    /// moment after the state becomes SET, and this function does not touch
    /// it after that. For a worker-owned latch, the caller keeps the owner's
    /// pool alive until this returns (it runs a job of that pool).
    pub(crate) unsafe fn set(this: *const Latch) {
        // SAFETY: valid until SET is published (caller's contract).
        let latch = unsafe { &*this };
        // Fast path: the owner is not asleep, so nobody needs waking. AcqRel:
        // Release publishes the job's result to the owner's Acquire probe.
        if latch
            .state
            .compare_exchange(UNSET, SET, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        // The owner announced sleep (state is OWNER_BLOCKED: SET is set only here,
        // once). Copy its handle *before* publishing SET, because the latch
        // may be gone right after.
        let owner = latch.owner.clone_handle();
        // AcqRel: Release as above.
        let previous = latch.state.swap(SET, Ordering::AcqRel);
        debug_assert_eq!(previous, OWNER_BLOCKED);
        // SAFETY: the caller keeps the owner's pool (and so its parker)
        // alive until we return.
        unsafe { owner.unpark() };
    }

    /// Blocks the calling (owner, non-worker) thread until the latch is set.
    pub(crate) fn wait_blocking(&self) {
        while !self.probe() {
            if self.announce_block() {
                while !self.probe() {
                    thread::park();
                }
            }
        }
    }
}
