//! The state every worker and every handle shares: queues, worker slots,
//! counters, the lifecycle word and the idle waiters.

pub(crate) mod idle;
pub(crate) mod threads;

use crossbeam_utils::CachePadded;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::config::{Config, Pinning};
use crate::scheduler::backpressure::Backpressure;
use crate::scheduler::job::JobRef;
use crate::scheduler::queue::{Injector, Stealer, Worker};
use crate::scheduler::registry::threads::Control;
use crate::scheduler::sleep::Sleep;
use crate::sync::{fence, lock, wait_timeout, Arc, AtomicBool, AtomicU64, AtomicUsize, Condvar, Mutex, Ordering};
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
    /// Whether the slot has a live thread (set by the starter, cleared by
    /// the thread as it leaves; both under the control lock).
    pub(crate) live: AtomicBool,
    /// The thread's home core id + 1 (0: not pinned), for stats.
    pub(crate) home_core: AtomicUsize,
    /// Whether the thread is pinned to its home core now.
    pub(crate) pinned: AtomicBool,
    /// Times adaptive pinning let the thread off its core.
    pub(crate) pin_releases: AtomicU64,
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
    pub(crate) fn make_deque(&self) {
        if self.stealer.get().is_none() {
            let deque = Worker::new_lifo();
            let _ = self.stealer.set(deque.stealer());
            *lock(&self.deque) = Some(deque);
        }
    }
}

/// People blocked in `wait_idle`.
pub(crate) struct IdleWaiters {
    waiters: AtomicUsize,
    lock: Mutex<()>,
    condvar: Condvar,
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
    target: CachePadded<AtomicUsize>,
    /// Slots below the capacity without a live thread (changed only under
    /// the control lock; read lock-free by submitters deciding whether to
    /// start a thread).
    pub(crate) missing: AtomicUsize,
    /// Slots that ever had a thread are `0..started_high`: the only ones
    /// whose deques can hold work, so thieves scan no further.
    started_high: AtomicUsize,
    /// Live worker threads (changed only under the control lock).
    pub(crate) live_threads: AtomicUsize,
    /// Live `Pool` handles; the last one to go shuts the pool down.
    pub(crate) handles: AtomicUsize,
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
    pub(crate) rejected: AtomicU64,
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
            target: CachePadded::new(AtomicUsize::new(config.capacity)),
            missing: AtomicUsize::new(config.capacity),
            live_threads: AtomicUsize::new(0),
            started_high: AtomicUsize::new(if cfg!(loom) { workers } else { 0 }),
            handles: AtomicUsize::new(1),
            idle: IdleWaiters {
                waiters: AtomicUsize::new(0),
                lock: Mutex::new(()),
                condvar: Condvar::new(),
            },
            control: Mutex::new(Control::new(workers)),
            exited: Condvar::new(),
            backpressure: config.queue_limit.map(|limit| Backpressure::new(limit, &config)),
            withdrawn: AtomicU64::new(0),
            handed_back_run: AtomicU64::new(0),
            ran_by_waiters: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            config,
        }
    }

    /// The capacity now.
    #[inline]
    pub(crate) fn target(&self) -> usize {
        // Relaxed: a worker that reads a stale capacity runs at most the task
        // it is taking; every protocol decision that matters re-reads it
        // after a SeqCst fence (see `threads.rs`, `worker.rs`).
        self.target.load(Ordering::Relaxed)
    }

    /// The capacity, read as the load half of a Dekker pair (a worker's
    /// busy flag against `set_target`; see `WorkerThread::run_task`).
    #[inline]
    pub(crate) fn target_now(&self) -> usize {
        // SeqCst: in the single total order with `set_target`'s swap.
        self.target.load(Ordering::SeqCst)
    }

    /// Sets the capacity (under the control lock). SeqCst: the tuner's store
    /// and its scan of worker states form a Dekker pair with the workers'
    /// announce-then-check (ARCHITECTURE.md, "Capacity").
    pub(crate) fn set_target(&self, capacity: usize) -> usize {
        let previous = self.target.swap(capacity, Ordering::SeqCst);
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
        // `waiters`; it pairs with the fence in `wait_idle` (found by the
        // loom model `shutdown_racing_submit`).
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
        if this.sleep.notify_new_work(this.target()) && this.missing.load(Ordering::Relaxed) > 0 {
            // Relaxed is enough for `missing`: it is read after the SeqCst
            // fence in `notify_new_work`, which pairs with the fence a
            // leaving worker issues after updating it (`threads.rs`).
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

    /// How many slots (from 0) ever had a thread.
    #[inline]
    pub(crate) fn started_high(&self) -> usize {
        // SeqCst: read after a thief's SeqCst fence (the final scan before
        // sleeping), paired with the starter's SeqCst update: either the
        // scan covers a newly started worker's deque, or that worker's
        // pushes come after the thief's fence and their submitter's fence
        // sees the thief asleep and wakes it (the sleep protocol's rule 1).
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

    /// Counts tasks `shutdown_now` took out unrun: they will never complete.
    pub(crate) fn withdraw(&self, tasks: u64) {
        // Release: pairs with the Acquire in `all_tasks_done`.
        self.withdrawn.fetch_add(tasks, Ordering::Release);
    }

    /// Tasks submitted so far (accepted from outside + from inside).
    pub(crate) fn submitted(&self) -> u64 {
        let inside: u64 = self
            .slots
            .iter()
            .map(|s| s.counters.submitted.load(Ordering::Relaxed))
            .sum();
        (self.lifecycle.load(Ordering::Relaxed) / ONE_ACCEPTED) + inside
    }

    /// A task `shutdown_now` handed back was run with `Task::run`.
    pub(crate) fn count_handed_back_run(&self) {
        // Relaxed: a display figure; `all_tasks_done` counts the task as
        // done since it was withdrawn.
        self.handed_back_run.fetch_add(1, Ordering::Relaxed);
    }

    /// Tasks `shutdown_now` handed back that were not run (yet).
    pub(crate) fn withdrawn(&self) -> u64 {
        // Relaxed: display figures. Read the runs first: a run counted
        // between the two loads then shows as still withdrawn, never as a
        // negative count.
        let run = self.handed_back_run.load(Ordering::Relaxed);
        self.withdrawn.load(Ordering::Relaxed).saturating_sub(run)
    }

    /// Tasks completed (run, panicked or not) so far.
    pub(crate) fn completed(&self) -> u64 {
        let by_workers: u64 = self
            .slots
            .iter()
            .map(|s| s.counters.completed.load(Ordering::Relaxed))
            .sum();
        by_workers + self.ran_by_waiters.load(Ordering::Relaxed) + self.handed_back_run.load(Ordering::Relaxed)
    }

    /// Whether every counted task that was ever accepted has completed (or
    /// was handed back unrun by `shutdown_now`).
    ///
    /// Reads all `completed` counters first (Acquire), then all `submitted`
    /// counters. A task's submission is counted before the task is pushed,
    /// and a task's children are counted before the task's own completion,
    /// so every completion we see brings its submission (and its children's)
    /// into view: equal sums mean nothing is pending. ARCHITECTURE.md,
    /// "Counting without a shared counter", has the proof.
    pub(crate) fn all_tasks_done(&self) -> bool {
        // Acquire pairs with `WorkerCounters::bump`'s Release.
        let completed: u64 = self
            .slots
            .iter()
            .map(|s| s.counters.completed.load(Ordering::Acquire))
            .sum();
        // Acquire pairs with the Release in `withdraw`; read with the
        // completions, before the submissions, for the same reason.
        let withdrawn = self.withdrawn.load(Ordering::Acquire) + self.ran_by_waiters.load(Ordering::Acquire);
        let inside: u64 = self
            .slots
            .iter()
            .map(|s| s.counters.submitted.load(Ordering::Acquire))
            .sum();
        // SeqCst: ordered with accepts and `close` on the same word.
        let outside = self.lifecycle.load(Ordering::SeqCst) / ONE_ACCEPTED;
        completed + withdrawn == outside + inside
    }

    /// Whether the pool is closed and has nothing left to run: workers exit.
    pub(crate) fn is_closed_and_drained(&self) -> bool {
        // The lifecycle word is read again inside `all_tasks_done`, after the
        // completion counters; CLOSED never clears while workers run.
        self.is_closed() && self.all_tasks_done()
    }

    /// Called by a worker that ran out of work: wakes `wait_idle` callers so
    /// they re-check. The caller has just issued a SeqCst fence
    /// (`begin_searching`), which pairs with the one in `wait_idle`.
    #[inline]
    pub(crate) fn notify_idle_waiters(&self) {
        if self.idle.waiters.load(Ordering::Relaxed) > 0 {
            self.notify_idle_waiters_cold();
        }
    }

    #[cold]
    #[inline(never)]
    fn notify_idle_waiters_cold(&self) {
        let _guard = lock(&self.idle.lock);
        self.idle.condvar.notify_all();
    }

    /// Blocks until every accepted task has completed.
    pub(crate) fn wait_idle(this: &Arc<Self>) {
        Shared::wait_idle_until_or_forever(this, None);
    }

    /// As [`Shared::wait_idle`], giving up at `deadline`. Returns whether
    /// the pool became idle.
    pub(crate) fn wait_idle_until(this: &Arc<Self>, deadline: Instant) -> bool {
        Shared::wait_idle_until_or_forever(this, Some(deadline))
    }

    /// How often a waiter re-checks whether work waits with no thread to run
    /// it (a thread start the OS refused): then it tries to start one again.
    const RETRY_START: Duration = Duration::from_millis(100);

    fn wait_idle_until_or_forever(this: &Arc<Self>, deadline: Option<Instant>) -> bool {
        if this.all_tasks_done() {
            return true;
        }
        let mut guard = lock(&this.idle.lock);
        // SeqCst RMW + fence before the check: pairs with the fence a worker
        // issues between its last completion and reading `waiters`, so either
        // it sees us waiting or we see its completion. The lock covers the
        // gap between the check and the wait.
        this.idle.waiters.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let idle = loop {
            if this.all_tasks_done() {
                break true;
            }
            let now = Instant::now();
            if deadline.is_some_and(|deadline| now >= deadline) {
                break false;
            }
            // Relaxed: a hint; a thread that starts meanwhile is harmless.
            // (Not under loom: no start fails there, and the models stay
            // as small as they were.)
            if cfg!(not(loom)) && this.live_threads.load(Ordering::Relaxed) == 0 {
                // Work waits and no thread runs: a start failed (the OS
                // refused a thread). Try again, without our lock.
                drop(guard);
                Shared::start_missing_worker(this);
                // Still none: run what waits here, one job per round.
                let ran = this.live_threads.load(Ordering::Relaxed) == 0 && this.run_one_stranded();
                guard = lock(&this.idle.lock);
                if this.all_tasks_done() {
                    break true;
                }
                if ran {
                    continue;
                }
            }
            let wait = deadline.map_or(Self::RETRY_START, |deadline| (deadline - now).min(Self::RETRY_START));
            guard = wait_timeout(&this.idle.condvar, guard, wait);
        };
        this.idle.waiters.fetch_sub(1, Ordering::Relaxed);
        drop(guard);
        idle
    }

    /// Hands a task's panic to the panic handler (or prints it).
    #[cold]
    pub(crate) fn handle_panic(&self, payload: Payload) {
        deliver_panic(self.config.panic_handler.as_ref(), payload);
    }
}
