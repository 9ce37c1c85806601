//! Broadcast inboxes: one per worker slot, holding the shares of
//! `Pool::broadcast` that only that slot's thread may run.
//!
//! A broadcaster pushes one share per target slot under the control lock,
//! then wakes each target (`Shared::deliver_broadcast`). A worker looks at
//! its inbox where it would otherwise go idle: when its own deque runs
//! empty (before it searches), in the final check before it parks (after
//! announcing sleep, against the broadcaster's push-then-fence-then-wake),
//! while it waits for a latch (`join`, `scope`), and while it is suspended
//! above the capacity. Every share is run exactly once, or abandoned (when
//! its slot's thread leaves: the pool shut down), and either way counted
//! down, so the broadcaster, which waits for the count, never hangs on a
//! thread that is gone.

use std::mem;

use crate::scheduler::registry::Shared;
use crate::scheduler::worker::WorkerThread;
use crate::sync::{fence, lock, Arc, AtomicBool, Mutex, Ordering};

/// One target's share of a broadcast: the broadcast's state on the
/// broadcaster's stack, type-erased, and its position among the targets.
pub(crate) struct Share {
    job: *const (),
    position: usize,
    run: unsafe fn(*const (), usize, usize),
    abandon: unsafe fn(*const (), usize),
}

// SAFETY: a `Share` moves to the target's thread through the inbox. The
// state it points to is `Sync` (the broadcast's closure is `Sync`, its
// results and panic sit behind locks, its counters are atomics) and stays
// alive until every share has been run or abandoned: the broadcaster waits
// for that count before its frame ends (`pool/broadcast.rs`).
unsafe impl Send for Share {}

impl Share {
    /// # Safety
    /// `job` must point to a broadcast state that `run` and `abandon`
    /// accept and that outlives the share's `run` or `abandon` call.
    pub(crate) unsafe fn new(
        job: *const (),
        position: usize,
        run: unsafe fn(*const (), usize, usize),
        abandon: unsafe fn(*const (), usize),
    ) -> Share {
        Share {
            job,
            position,
            run,
            abandon,
        }
    }

    /// Runs the share on worker `index` (the calling thread).
    pub(crate) fn run(self, index: usize) {
        // SAFETY: `new`'s contract; each share is consumed once.
        unsafe { (self.run)(self.job, self.position, index) }
    }

    /// The share's thread left before it ran it.
    fn abandon(self) {
        // SAFETY: as in `run`.
        unsafe { (self.abandon)(self.job, self.position) }
    }
}

/// A slot's inbox.
struct Inbox {
    /// Whether `shares` may hold something: the one load a worker pays on
    /// its way to idling. Set and cleared under the `shares` lock.
    pending: AtomicBool,
    shares: Mutex<Vec<Share>>,
}

/// Every slot's inbox.
pub(crate) struct Inboxes {
    slots: Box<[Inbox]>,
}

impl Inboxes {
    pub(crate) fn new(slots: usize) -> Self {
        Inboxes {
            slots: (0..slots)
                .map(|_| Inbox {
                    pending: AtomicBool::new(false),
                    shares: Mutex::new(Vec::new()),
                })
                .collect(),
        }
    }

    /// Whether slot `index` has a share waiting.
    #[inline]
    pub(crate) fn pending(&self, index: usize) -> bool {
        // Relaxed: where a miss could strand a share, the caller has
        // fenced (the final check before parking: announce → fence → this
        // load, against push → fence → wake), or a parker's token orders
        // it (a latch wait, a suspension: push → unpark, Release, against
        // park's Acquire). Seeing `true` leads to the lock, which orders
        // the shares themselves.
        self.slots[index].pending.load(Ordering::Relaxed)
    }

    /// Queues a share for slot `index` (under the control lock).
    pub(crate) fn push(&self, index: usize, share: Share) {
        let inbox = &self.slots[index];
        let mut shares = lock(&inbox.shares);
        shares.push(share);
        // Relaxed: under the lock (see `pending`).
        inbox.pending.store(true, Ordering::Relaxed);
    }

    fn take(&self, index: usize) -> Vec<Share> {
        let inbox = &self.slots[index];
        let mut shares = lock(&inbox.shares);
        // Relaxed: under the lock (see `pending`).
        inbox.pending.store(false, Ordering::Relaxed);
        mem::take(&mut *shares)
    }

    /// Slot `index`'s thread is leaving (under the control lock, in
    /// `forget_thread_locked`): what it never ran is abandoned, so no
    /// broadcaster waits for a thread that is gone.
    pub(crate) fn abandon(&self, index: usize) {
        if self.pending(index) {
            for share in self.take(index) {
                share.abandon();
            }
        }
    }
}

impl Shared {
    /// After the shares are queued (and the control lock released): wakes
    /// every target that sleeps, so it finds its share in its final check
    /// before it parks again, and unparks the others, which may wait for a
    /// latch or sit suspended (both look at the inbox before they park).
    #[cold]
    pub(crate) fn deliver_broadcast(&self, targets: impl Iterator<Item = usize>) {
        // Pairs with the fence after `announce_sleep` (a worker's final
        // check reads `pending` after it): either the worker sees the share
        // or we see it asleep and wake it (as I1 for a submit).
        fence(Ordering::SeqCst);
        for index in targets {
            if !self.sleep.wake(index) {
                // Not asleep: a spurious unpark is harmless (every park
                // loops on its condition).
                self.sleep.parker(index).unpark();
            }
        }
    }
}

impl WorkerThread {
    /// Whether a broadcast share waits for this worker.
    #[inline]
    pub(crate) fn broadcast_pending(&self) -> bool {
        self.shared.broadcasts.pending(self.index)
    }

    /// Runs every broadcast share waiting for this worker.
    #[cold]
    #[inline(never)]
    pub(crate) fn run_broadcasts(&self) {
        for share in self.shared.broadcasts.take(self.index) {
            share.run(self.index);
        }
    }
}

impl Shared {
    /// Queues a broadcast under the control lock: `None` on a closed pool;
    /// else starts a thread for every slot below the capacity that has
    /// none, takes the slots below the capacity with a live thread as the
    /// targets (ascending), lets `prepare` size the broadcast to them, and
    /// pushes `share(position)` to every target but `caller` (which runs
    /// its share itself). Returns the targets.
    #[cold]
    pub(crate) fn queue_broadcast(
        this: &Arc<Self>,
        caller: Option<usize>,
        prepare: impl FnOnce(usize),
        share: impl Fn(usize) -> Share,
    ) -> Option<Vec<usize>> {
        let mut control = lock(&this.control);
        if this.is_closed() {
            return None;
        }
        // A slot the OS refuses a thread for is left out (it has none live).
        let _ = Shared::start_all_locked(this, &mut control, true);
        let targets: Vec<usize> = (0..this.capacity())
            // Relaxed: `live` changes only under the control lock, held here.
            .filter(|&index| this.slots[index].counters.live.load(Ordering::Relaxed))
            .collect();
        prepare(targets.len());
        for (position, &index) in targets.iter().enumerate() {
            if Some(index) != caller {
                this.broadcasts.push(index, share(position));
            }
        }
        drop(control);
        Some(targets)
    }
}
