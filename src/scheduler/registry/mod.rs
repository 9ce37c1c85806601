//! The state every worker and every handle shares: queues, worker slots,
//! counters, the lifecycle word and the idle waiters.

mod drain;
pub(crate) mod idle;
mod ledger;
pub(crate) mod lending;
pub(crate) mod siblings;
mod snapshot;
pub(crate) mod threads;

pub(crate) use drain::steal_retrying;

use idle::IdleWaiters;
use lending::Lending;
use siblings::Siblings;

use crossbeam_utils::CachePadded;

use std::panic::{self, AssertUnwindSafe};

use crate::config::{Config, Pinning};
use crate::observe::busy::BusyTime;
use crate::scheduler::autoscale::AutoscaleCell;
use crate::scheduler::backpressure::Backpressure;
use crate::scheduler::broadcast::Inboxes;
use crate::scheduler::job::JobRef;
use crate::scheduler::queue::{Injector, Stealer, Worker};
use crate::scheduler::registry::threads::Control;
use crate::scheduler::sleep::Sleep;
use crate::sync::{fence, lock, Arc, AtomicBool, AtomicU64, AtomicUsize, Condvar, Mutex, OnceLock, Ordering};
use crate::unwind::{deliver_panic, Payload};

/// The lifecycle word: bit 0 is CLOSED, the rest counts tasks accepted from
/// outside the pool (so an accept and a close are ordered by one RMW each).
const CLOSED: u64 = 1;
const ONE_ACCEPTED: u64 = 2;

/// Counters a worker writes (only its own thread does) and anyone reads.
#[derive(Default)]
pub(crate) struct WorkerCounters {
    /// Counted tasks this worker submitted from inside its tasks.
    pub(crate) submitted: AtomicU64,
    /// Counted tasks this worker finished running (panicked or not).
    pub(crate) completed: AtomicU64,
    /// Tasks that panicked on this worker.
    pub(crate) panicked: AtomicU64,
    /// Tasks taken from other workers' deques.
    pub(crate) stolen: AtomicU64,
    /// Times this worker parked (sleep or suspension).
    pub(crate) parks: AtomicU64,
    /// Whether the worker is running a task now.
    pub(crate) busy: AtomicBool,
    /// This slot's threads have pushed from inside a task with the light
    /// half of the asymmetric barrier (set once, with a fence, before the
    /// first such push: `WorkerThread::push`). Sleepers pay the heavy half
    /// only while some worker that is not idle has it.
    pub(crate) pushes_inside: AtomicBool,
    /// Whether the slot has a live thread (set by the starter, cleared by
    /// the thread as it leaves; both under the control lock).
    pub(crate) live: AtomicBool,
    /// The thread's home core id + 1 (0: not pinned), for stats.
    pub(crate) home_core: AtomicUsize,
    /// Whether the thread is pinned to its home core now.
    pub(crate) pinned: AtomicBool,
    /// Time spent running tasks (see `observe/busy.rs`).
    pub(crate) busy_time: BusyTime,
    /// Times adaptive pinning let the thread off its core.
    pub(crate) pin_releases: AtomicU64,
    /// Why the worker's slot is lent now (`LendReason` bits; 0: not lent).
    /// Changed only under the control lock (`registry/lending.rs`).
    pub(crate) lending: AtomicUsize,
}

impl WorkerCounters {
    /// Adds one to a counter only this worker writes: a load and a store,
    /// no RMW. Release so a reader that sees the new value (Acquire) also
    /// sees everything this worker did before (see `all_tasks_done`).
    #[inline]
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Release);
    }
}

/// One worker's place in the pool. It outlives the worker's thread.
pub(crate) struct WorkerSlot {
    /// The thieves' end of the worker's deque, made with the deque when the
    /// slot's first thread starts (an unused slot costs no deque buffer).
    pub(crate) stealer: OnceLock<Stealer<JobRef>>,
    /// The owner's end, parked here while no thread owns it.
    pub(crate) deque: Mutex<Option<Worker<JobRef>>>,
    /// Signalled when a leaving thread puts the deque back (a thread
    /// started for the same slot waits for it; see `run_worker`).
    pub(crate) deque_returned: Condvar,
    pub(crate) counters: CachePadded<WorkerCounters>,
}

impl WorkerSlot {
    /// Makes the slot's deque if it has none yet (under the control lock,
    /// before the slot's first thread starts).
    fn make_deque(&self) {
        if self.stealer.get().is_none() {
            let deque = Worker::new_lifo();
            let _ = self.stealer.set(deque.stealer());
            *lock(&self.deque) = Some(deque);
        }
    }
}

/// Everything the pool's threads and handles share.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) injector: CachePadded<Injector<JobRef>>,
    /// One slot per possible worker, `max_capacity` of them.
    pub(crate) slots: Box<[WorkerSlot]>,
    pub(crate) sleep: Sleep,
    lifecycle: CachePadded<AtomicU64>,
    /// The capacity: workers with a lower index may run tasks.
    capacity: CachePadded<AtomicUsize>,
    /// Slots below the capacity without a live thread (changed only under
    /// the control lock; read lock-free by submitters deciding whether to
    /// start a thread).
    pub(crate) missing: AtomicUsize,
    /// Slots that ever had a thread are `0..started_high`: the only ones
    /// whose deques can hold work, so thieves scan no further.
    started_high: AtomicUsize,
    /// Live worker threads (changed only under the control lock).
    pub(crate) live_threads: AtomicUsize,
    /// Live `Pool` handles; the last one to go shuts the pool down. In its
    /// own cache line: `Pool::current()` inside tasks writes it twice per
    /// call, from every worker, and whichever fields shared its line (the
    /// compiler picks the order) would bounce with it; padded, children
    /// submitted through `Pool::current()` do not depend on `Shared`'s
    /// layout.
    handles: CachePadded<AtomicUsize>,
    idle: IdleWaiters,
    /// Thread starts and exits, tune, reboot (see `threads.rs`).
    pub(crate) control: Mutex<Control>,
    /// Signalled when a worker thread leaves.
    pub(crate) exited: Condvar,
    /// The queue limit, when one is set.
    pub(crate) backpressure: Option<Backpressure>,
    /// Tasks taken out unrun by `shutdown_now` (they count as done).
    withdrawn: AtomicU64,
    /// Of those, the ones run since with `Task::run` (stats count them as
    /// completed instead of withdrawn).
    handed_back_run: AtomicU64,
    /// Tasks a waiter ran itself because no worker thread could start.
    pub(crate) ran_by_waiters: AtomicU64,
    /// Refused submits of any kind.
    rejected: AtomicU64,
    /// Tasks cancelled through their handle and then dropped unrun where the
    /// pool reached them (a worker, or `shutdown_now`): they count as done.
    cancelled: AtomicU64,
    /// The pool was let go (`shutdown_background`, or a `shutdown_timeout`
    /// that gave up): dropping the last handle does not wait for it again.
    detached: AtomicBool,
    /// The base capacity and the slots lent by blocked workers, from which
    /// the capacity is computed (`registry/lending.rs`).
    pub(crate) lending: Lending,
    /// The autoscaler's settings, monitor thread and samples
    /// (`scheduler/autoscale/`).
    pub(crate) autoscale: AutoscaleCell,
    /// The other sub-pools of a `MultiPool` that steals across
    /// (`registry/siblings.rs`).
    pub(crate) siblings: Siblings,
    /// Each slot's pending `Pool::broadcast` shares (`scheduler/broadcast.rs`).
    pub(crate) broadcasts: Inboxes,
    /// Counted tasks of this pool run by a sibling pool's worker.
    ran_by_siblings: AtomicU64,
    /// Workers of sibling pools announced asleep now (a hint for a
    /// saturated submit; `registry/siblings.rs`).
    sibling_sleepers: AtomicUsize,
    /// Sibling pools with a slot below their capacity and no thread (a
    /// hint for a saturated submit; `registry/siblings.rs`).
    siblings_lacking_threads: AtomicUsize,
}

impl Shared {
    pub(crate) fn new(config: Config) -> Self {
        let workers = config.max_capacity;
        let slots = (0..workers)
            .map(|_| {
                let slot = WorkerSlot {
                    stealer: OnceLock::new(),
                    deque: Mutex::new(None),
                    deque_returned: Condvar::new(),
                    counters: CachePadded::new(WorkerCounters::default()),
                };
                // Under loom every deque exists from the start, so the
                // (unmodelled) OnceLock is set before any model thread runs.
                #[cfg(loom)]
                slot.make_deque();
                slot
            })
            .collect();
        Shared {
            injector: CachePadded::new(Injector::new()),
            slots,
            // Wakers stamp the time only for adaptive pinning, which
            // measures how long its workers take to run once woken.
            sleep: Sleep::new(
                workers,
                !cfg!(loom) && config.pinning == Pinning::Adaptive && crate::scheduler::pinning::CAN_WIDEN,
            ),
            lifecycle: CachePadded::new(AtomicU64::new(0)),
            capacity: CachePadded::new(AtomicUsize::new(config.capacity)),
            missing: AtomicUsize::new(config.capacity),
            live_threads: AtomicUsize::new(0),
            started_high: AtomicUsize::new(if cfg!(loom) { workers } else { 0 }),
            handles: CachePadded::new(AtomicUsize::new(1)),
            idle: IdleWaiters::new(),
            control: Mutex::new(Control::new(workers)),
            exited: Condvar::new(),
            backpressure: config
                .queue_limit
                .map(|limit| Backpressure::new(limit, config.nonblocking, config.max_blocked_submitters)),
            withdrawn: AtomicU64::new(0),
            handed_back_run: AtomicU64::new(0),
            ran_by_waiters: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            detached: AtomicBool::new(false),
            lending: Lending::new(config.capacity, config.max_capacity),
            autoscale: AutoscaleCell::new(config.capacity, workers),
            siblings: Siblings::default(),
            broadcasts: Inboxes::new(workers),
            ran_by_siblings: AtomicU64::new(0),
            sibling_sleepers: AtomicUsize::new(0),
            siblings_lacking_threads: AtomicUsize::new(0),
            config,
        }
    }

    /// The capacity now.
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        // Relaxed: a worker that reads a stale capacity runs at most the task
        // it is taking; every protocol decision that matters re-reads it
        // after a SeqCst fence (see `registry/threads.rs`, `worker/`).
        self.capacity.load(Ordering::Relaxed)
    }

    /// The capacity, read as the load half of a Dekker pair (a worker's
    /// busy flag against `set_capacity`; see `WorkerThread::run_task`).
    #[inline]
    pub(crate) fn capacity_now(&self) -> usize {
        // SeqCst: in the single total order with `set_capacity`'s swap.
        self.capacity.load(Ordering::SeqCst)
    }

    /// Sets the capacity (under the control lock). SeqCst: the tuner's store
    /// and its scan of worker states form a Dekker pair with the workers'
    /// announce-then-check (registry/README.md, I18; worker/README.md, I12).
    pub(crate) fn set_capacity(&self, capacity: usize) -> usize {
        let previous = self.capacity.swap(capacity, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        previous
    }

    /// Whether the pool refuses new work.
    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        // Relaxed: a hint for fast refusal; the decisive check is the RMW in
        // `accept_outside` (or, inside the pool, the running parent task).
        self.lifecycle.load(Ordering::Relaxed) & CLOSED != 0
    }

    /// Counts a task submitted from outside the pool, unless the pool is
    /// closed. Must be called *before* the task is pushed.
    #[inline]
    pub(crate) fn accept_outside(&self) -> bool {
        if self.is_closed() {
            return false;
        }
        // SeqCst RMW on the lifecycle word: an accept and `close` are totally
        // ordered, so a worker that read CLOSED together with the count (one
        // load of this word in `all_tasks_done`) sees every accepted task,
        // and every later accept sees CLOSED and backs out.
        let previous = self.lifecycle.fetch_add(ONE_ACCEPTED, Ordering::SeqCst);
        if previous & CLOSED != 0 {
            self.back_out_accept();
            return false;
        }
        true
    }

    #[cold]
    fn back_out_accept(&self) {
        self.lifecycle.fetch_sub(ONE_ACCEPTED, Ordering::SeqCst);
        // A draining worker may have seen our count and gone to sleep
        // waiting for a task that will never come: wake everyone to re-check.
        self.sleep.notify_all();
        // So may a `wait_idle` (inside `shutdown`) with no worker left to
        // wake it. The SeqCst fence orders our decrement before reading
        // `waiters`; it pairs with the fence in `wait_idle` (loom
        // `shutdown_racing_submit`).
        fence(Ordering::SeqCst);
        self.notify_idle_waiters();
    }

    /// Closes the pool. Returns whether this call closed it.
    pub(crate) fn close(&self) -> bool {
        // SeqCst: see `accept_outside`.
        let previous = self.lifecycle.fetch_or(CLOSED, Ordering::SeqCst);
        // Sleepers re-check and drain or exit; suspended workers exit;
        // blocked submitters get their closures back.
        self.sleep.notify_all();
        self.sleep.resume_all();
        if let Some(backpressure) = &self.backpressure {
            backpressure.wake_all();
        }
        // The autoscaler's monitor leaves.
        self.autoscale.poke();
        previous & CLOSED == 0
    }

    /// Opens a closed pool again (reboot, under the control lock, after
    /// every old thread left).
    pub(crate) fn reopen(&self) {
        // SeqCst: see `accept_outside`.
        self.lifecycle.fetch_and(!CLOSED, Ordering::SeqCst);
    }

    /// Pushes a counted job from outside the pool (already accepted).
    #[inline]
    pub(crate) fn inject(this: &Arc<Self>, job: JobRef) {
        this.injector.push(job);
        Shared::notify_new_work(this);
    }

    /// After publishing work: wake a sleeper if nobody searches, or start a
    /// thread if nobody is there to take it and the capacity allows one.
    #[inline]
    pub(crate) fn notify_new_work(this: &Arc<Self>) {
        if this.sleep.notify_new_work(this.capacity()) {
            Shared::nobody_awake_for_new_work(this);
        }
    }

    /// After a push from inside the pool onto the pusher's own deque: as
    /// [`Shared::notify_new_work`], without the fence where the asymmetric
    /// barrier covers it (`Sleep::notify_new_inside_work`). The reads of
    /// `missing` and the siblings' hints that follow pair with the heavy
    /// half a leaving worker pays after updating them (`threads.rs`).
    #[inline]
    pub(crate) fn notify_new_inside_work(this: &Arc<Self>) {
        if this.sleep.notify_new_inside_work(this.capacity()) {
            Shared::nobody_awake_for_new_work(this);
        }
    }

    /// Nobody is awake to take new work: start a thread, or hand the work
    /// to a sibling pool (both out of line).
    #[inline]
    fn nobody_awake_for_new_work(this: &Arc<Self>) {
        // Relaxed is enough for `missing`: it is read after the SeqCst
        // fence in `Sleep::notify_new_work`, which pairs with the fence a
        // leaving worker issues after updating it, or, from an inside push,
        // after the light half of the barrier, which pairs with the heavy
        // half the leaving worker pays (`registry/threads.rs`).
        if this.missing.load(Ordering::Relaxed) > 0 {
            Shared::start_missing_worker(this);
        } else if this.siblings.any() {
            this.hand_work_to_a_sibling();
        }
    }

    /// After pushing the second half of a `join` onto a worker's own deque:
    /// as [`Shared::notify_new_work`], without the fence (the owner runs
    /// the job itself if nobody takes it; see `Sleep::notify_new_join_work`).
    #[inline]
    pub(crate) fn notify_new_join_work(this: &Arc<Self>) {
        // Relaxed `missing`: a hint, as the sleep word is here.
        if this.sleep.notify_new_join_work(this.capacity()) && this.missing.load(Ordering::Relaxed) > 0 {
            Shared::start_missing_worker(this);
        }
    }

    /// The stealers of every slot that ever had a thread.
    #[inline]
    pub(crate) fn stealers(&self) -> impl Iterator<Item = &Stealer<JobRef>> {
        self.slots[..self.started_high()]
            .iter()
            .filter_map(|slot| slot.stealer.get())
    }

    /// A worker announcing sleep (`idle` workers, itself included, were
    /// idle at its announcement; read after its fence): may a worker be
    /// between a light push and its read of the sleep word? Not if every
    /// started worker was idle (any that starts a task later writes the
    /// word after the announcement first: ending its search, woken, or
    /// beginning its first search, a new thread's deque being empty), nor
    /// if no started worker ever pushed from inside: each sets its flag
    /// and fences before its first light push, so either this read sees
    /// the flag or that worker's reads see the announcement.
    #[inline]
    pub(crate) fn may_race_a_light_push(&self, idle: u64) -> bool {
        let started = self.started_high();
        // Relaxed: ordered by the pusher's fence and ours (above).
        idle < started as u64
            && self.slots[..started]
                .iter()
                .any(|slot| slot.counters.pushes_inside.load(Ordering::Relaxed))
    }

    /// How many slots (from 0) ever had a thread.
    #[inline]
    pub(crate) fn started_high(&self) -> usize {
        // SeqCst: read after a thief's SeqCst fence (the final scan before
        // sleeping), paired with the starter's SeqCst update: either the
        // scan covers a newly started worker's deque, or that worker's
        // pushes come after the thief's fence and their submitter's fence
        // sees the thief asleep and wakes it (sleep/README.md, I1).
        self.started_high.load(Ordering::SeqCst)
    }

    /// A thread is about to start in slot `index` (under the control lock).
    pub(crate) fn note_started(&self, index: usize) {
        self.slots[index].make_deque();
        // SeqCst: see `started_high`.
        self.started_high.fetch_max(index + 1, Ordering::SeqCst);
    }

    /// Whether any queue holds a task (a snapshot; a cold-path scan).
    #[cold]
    pub(crate) fn has_queued_work(&self) -> bool {
        !self.injector.is_empty() || self.stealers().any(|stealer| !stealer.is_empty())
    }

    /// Counts a refused submit.
    pub(crate) fn count_rejected(&self) {
        // Relaxed: a display figure.
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// A new `Pool` handle from a live one.
    pub(crate) fn add_handle(&self) {
        // Relaxed: the count only decides who shuts down; the Arc keeps the
        // memory alive independently, and the clone comes from a live
        // handle.
        self.handles.fetch_add(1, Ordering::Relaxed);
    }

    /// A new `Pool` handle, unless the last one is already gone (the pool
    /// is shutting down): `Pool::current` from a worker.
    pub(crate) fn add_handle_if_open(&self) -> bool {
        let mut count = self.handles.load(Ordering::Relaxed);
        loop {
            if count == 0 {
                return false;
            }
            // Relaxed: as in `add_handle`.
            match self
                .handles
                .compare_exchange_weak(count, count + 1, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => count = actual,
            }
        }
    }

    /// A `Pool` handle is dropped. Returns whether it was the last one.
    pub(crate) fn drop_handle(&self) -> bool {
        // AcqRel: the last dropper sees every other handle's uses before it
        // shuts down.
        self.handles.fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// Runs a job taken from this pool's queues, catching a panic of a
    /// `submit`ted closure (other kinds catch their own): the one place a job
    /// runs. `note_panic` counts a panic; `count_completed` frees a counted
    /// job's place in a bounded queue (`release_room`) and counts it as done.
    #[inline]
    pub(crate) fn run_job(&self, job: JobRef, note_panic: impl FnOnce(), count_completed: impl FnOnce()) {
        // SAFETY: jobs in this pool's queues are alive until run or discarded.
        if !unsafe { job.try_start() } {
            self.drop_cancelled(job);
            return;
        }
        let counted = job.is_counted();
        // SAFETY: jobs in this pool's queues are alive until run (heap jobs
        // own their data; stack jobs' owners wait for their latch).
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| unsafe { job.execute() }));
        if let Err(payload) = outcome {
            note_panic();
            self.handle_panic(payload);
        }
        if counted {
            count_completed();
        }
    }

    /// Marks the pool let go: the last handle's drop closes it and returns.
    pub(crate) fn detach(&self) {
        // Relaxed: read by the last handle's drop, which a shared handle
        // count (AcqRel) orders after every other handle's calls.
        self.detached.store(true, Ordering::Relaxed);
    }

    /// A reboot starts the pool afresh: its last handle's drop waits again.
    pub(crate) fn attach(&self) {
        // Relaxed: as in `detach`.
        self.detached.store(false, Ordering::Relaxed);
    }

    /// Whether the pool was let go (see `detach`).
    pub(crate) fn is_detached(&self) -> bool {
        // Relaxed: as in `detach`.
        self.detached.load(Ordering::Relaxed)
    }

    /// Hands a task's panic to the panic handler (or prints it).
    #[cold]
    pub(crate) fn handle_panic(&self, payload: Payload) {
        deliver_panic(self.config.panic_handler.as_ref(), Some(&self.config.reporter), payload);
    }
}
