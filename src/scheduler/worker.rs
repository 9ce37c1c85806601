//! A worker thread: its main loop, its search for work and its sleep.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::time::{Duration, Instant};

use core_affinity::CoreId;

use crate::scheduler::job::JobRef;
use crate::scheduler::latch::{Latch, LatchOwner};
use crate::scheduler::pinning;
use crate::scheduler::pinning::{AdaptivePolicy, PinAction, Wait, WorkerPin};
use crate::scheduler::queue::{Steal, Worker};
use crate::scheduler::registry::{Shared, WorkerCounters};
use crate::sync::{fence, lock, spin_hint, thread, wait, Arc, Ordering};

/// Rounds a worker searches before it announces sleep. rayon spins 32 rounds
/// with `yield_now`; we spin a few rounds with exponential busy-waiting and
/// then yield, so a ping-pong of tasks rarely pays a futex wake while an idle
/// pool stops burning CPU within microseconds.
#[cfg(not(loom))]
const SEARCH_ROUNDS: u32 = 40;
#[cfg(loom)]
const SEARCH_ROUNDS: u32 = 1;
/// Of those, the rounds that busy-wait (the rest yield the CPU).
const SPIN_ROUNDS: u32 = 8;

#[cfg(not(loom))]
std::thread_local! {
    static CURRENT: Cell<*const WorkerThread> = const { Cell::new(ptr::null()) };
}
#[cfg(loom)]
loom::thread_local! {
    static CURRENT: Cell<*const WorkerThread> = Cell::new(ptr::null());
}

/// The state a worker thread keeps on its own stack.
pub(crate) struct WorkerThread {
    pub(crate) shared: Arc<Shared>,
    pub(crate) index: usize,
    deque: Worker<JobRef>,
    rng: Cell<u64>,
    /// Adaptive pinning's state, for a worker pinned adaptively.
    adaptive: Option<AdaptivePin>,
}

/// A worker's adaptive pinning: its home core, where it may go instead,
/// and the policy deciding between them (`pinning.rs`).
struct AdaptivePin {
    home: CoreId,
    widen_to: Vec<CoreId>,
    policy: RefCell<AdaptivePolicy>,
}

impl WorkerThread {
    /// The worker running on this thread, if this is a worker thread.
    #[inline]
    pub(crate) fn current() -> Option<&'static WorkerThread> {
        let pointer = CURRENT.with(|current| current.get());
        // SAFETY: CURRENT is set only by `run_worker` to a WorkerThread on
        // that thread's stack, and cleared before that frame ends; it is
        // thread-local, so no other thread sees it. The 'static lifetime is a
        // white lie confined to this thread: callers use it only during a
        // task, which runs inside `run_worker`'s frame.
        unsafe { pointer.as_ref() }
    }

    /// The worker running on this thread, if it belongs to `shared`'s pool.
    #[inline]
    pub(crate) fn current_in(shared: &Shared) -> Option<&'static WorkerThread> {
        WorkerThread::current().filter(|worker| ptr::eq(&*worker.shared, shared))
    }

    fn counters(&self) -> &WorkerCounters {
        &self.shared.slots[self.index].counters
    }

    /// Pushes a job onto this worker's own deque and wakes a sleeper if
    /// nobody is searching. Never blocks.
    #[inline]
    pub(crate) fn push(&self, job: JobRef) {
        self.deque.push(job);
        Shared::notify_new_work(&self.shared);
    }

    /// Pushes a counted task submitted from inside one of this pool's tasks.
    /// Never blocks, even over the queue limit.
    #[inline]
    pub(crate) fn push_counted(&self, job: JobRef) {
        // Counted before it is pushed: see `Shared::all_tasks_done`.
        WorkerCounters::bump(&self.counters().submitted);
        self.push(job);
    }

    /// Pops from the own deque (LIFO).
    #[inline]
    pub(crate) fn pop(&self) -> Option<JobRef> {
        self.deque.pop()
    }

    /// A latch this worker can wait on while helping with other work.
    pub(crate) fn new_latch(&self) -> Latch {
        Latch::new(LatchOwner::Worker(self.shared.sleep.parker(self.index).clone()))
    }

    fn next_random(&self) -> usize {
        // xorshift64: cheap, good enough to spread the choice of victims.
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        x as usize
    }

    /// One full pass over the injector and every other worker's deque.
    /// Retries until a pass ends without a `Retry`, so an empty answer means
    /// every queue was seen empty (the sleep protocol relies on this).
    pub(crate) fn steal(&self) -> Option<JobRef> {
        let shared = &*self.shared;
        loop {
            let mut retry = false;
            // The injector first: outside submits land there, and a batch
            // amortises its contended head over up to 32 tasks.
            match shared.injector.steal_batch_and_pop(&self.deque) {
                Steal::Success(job) => return Some(job),
                Steal::Retry => retry = true,
                Steal::Empty => {}
            }
            // Only slots that ever had a thread can hold work.
            let workers = shared.started_high();
            let start = self.next_random() % workers.max(1);
            for offset in 0..workers {
                let victim = (start + offset) % workers;
                if victim == self.index {
                    continue;
                }
                let Some(stealer) = shared.slots[victim].stealer.get() else {
                    continue;
                };
                // A cheap look first: stealing pins crossbeam's epoch even
                // from an empty deque, which costs with many workers.
                // `is_empty` reads the deque's ends after a SeqCst fence, so
                // the final scan before sleeping stays exact.
                if stealer.is_empty() {
                    continue;
                }
                match stealer.steal_batch_and_pop(&self.deque) {
                    Steal::Success(job) => {
                        WorkerCounters::bump(&self.counters().stolen);
                        return Some(job);
                    }
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
            }
            if !retry {
                return None;
            }
        }
    }

    /// Runs one job, catching a panic of a `submit`ted closure (other job
    /// kinds catch their own) and counting it.
    #[inline]
    pub(crate) fn execute(&self, job: JobRef) {
        let counted = job.is_counted();
        // SAFETY: jobs in this pool's queues are alive until run (heap jobs
        // own their data; stack jobs' owners wait for their latch).
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| unsafe { job.execute() }));
        if let Err(payload) = outcome {
            self.note_panic();
            self.shared.handle_panic(payload);
        }
        if counted {
            if let Some(backpressure) = &self.shared.backpressure {
                // The task leaves the pool: room for a blocked submitter.
                backpressure.release(1);
            }
            WorkerCounters::bump(&self.counters().completed);
        }
    }

    /// Counts a panic of a task on this worker.
    #[cold]
    pub(crate) fn note_panic(&self) {
        WorkerCounters::bump(&self.counters().panicked);
    }

    /// Runs other work until `latch` is set: how `join`, `scope` and
    /// `JoinHandle::join` wait inside the pool without blocking it.
    pub(crate) fn wait_until(&self, latch: &Latch) {
        let mut idle_rounds = 0;
        while !latch.probe() {
            if let Some(job) = self.pop().or_else(|| self.steal()) {
                self.execute(job);
                idle_rounds = 0;
                continue;
            }
            if idle_rounds < SEARCH_ROUNDS {
                backoff(idle_rounds);
                idle_rounds += 1;
                continue;
            }
            self.wait_until_cold(latch);
        }
    }

    #[cold]
    fn wait_until_cold(&self, latch: &Latch) {
        // Nothing to help with: the awaited job runs on another worker.
        if latch.announce_sleep() {
            let parker = self.shared.sleep.parker(self.index);
            while !latch.probe() {
                parker.park();
            }
        }
    }

    /// The main loop: run local work, search, sleep, until the pool is
    /// closed and drained (or the thread expires, or is suspended and the
    /// pool closes).
    /// Returns true if the thread expired (keep-alive), already accounted
    /// as gone by `try_retire`.
    fn main_loop(&self) -> bool {
        let shared = &*self.shared;
        // Whether this worker is counted as searching in the sleep word.
        let mut searching = false;
        // When this worker last ran out of work (its keep-alive clock). A
        // wake-up that brings no work does not restart it: a worker woken
        // by a chain wake-up or a leaving peer goes back to sleep with the
        // same deadline.
        let mut idle_since: Option<Instant> = None;
        loop {
            if self.index >= shared.target() {
                if searching {
                    self.leave_search_for_suspension();
                }
                if shared.is_closed() {
                    // Above the capacity and closed: nothing to finish here
                    // (the deque goes back to the injector); the workers
                    // below the capacity drain the queue.
                    if self.hand_back_local_work() {
                        Shared::notify_new_work(&self.shared);
                    }
                    // The last task may have run here: `wait_idle` waiters
                    // and the parked workers (which exit once the pool is
                    // drained) re-check. `notify_all` fences first. (Found
                    // by tests/model.rs: shutdown after a shrink hung on a
                    // worker parked below the capacity.)
                    shared.sleep.notify_all();
                    shared.notify_idle_waiters();
                    return false;
                }
                match self.suspend() {
                    Suspension::Resumed { searching: now } => searching = now,
                    Suspension::Retired => return true,
                }
                continue;
            }
            if !searching {
                if let Some(job) = self.pop() {
                    idle_since = None;
                    self.run_task(job);
                    continue;
                }
                shared.sleep.begin_searching();
                searching = true;
                shared.notify_idle_waiters();
            }
            if let Some(job) = self.search() {
                self.found_work();
                searching = false;
                idle_since = None;
                self.run_task(job);
                continue;
            }
            // Announce sleep, then the final checks (rule 2).
            shared.sleep.announce_sleep(self.index);
            if self.index >= shared.target() {
                // Shrunk while we searched: back to the top to suspend.
                shared.sleep.retract_sleep(self.index);
                continue;
            }
            if let Some(job) = self.steal() {
                shared.sleep.retract_sleep(self.index);
                self.found_work();
                searching = false;
                idle_since = None;
                self.run_task(job);
                continue;
            }
            if shared.is_closed_and_drained() {
                shared.sleep.retract_sleep(self.index);
                shared.sleep.end_searching(false);
                // Wake the others so they see the drained pool too.
                shared.sleep.notify_all();
                return false;
            }
            WorkerCounters::bump(&self.counters().parks);
            if self.adaptive.is_some() {
                self.before_park();
            }
            let idle_interval = shared.config.hooks.as_ref().and_then(|hooks| hooks.idle_interval());
            if shared.config.keep_alive.is_none() && idle_interval.is_none() {
                shared.sleep.park_until_woken(self.index);
            } else {
                let since = *idle_since.get_or_insert_with(Instant::now);
                match self.park_with_deadlines(since, idle_interval) {
                    Parked::Woken => {}
                    Parked::Expired => return true,
                    // Kept for `min_workers`: a new keep-alive period.
                    Parked::Kept => {
                        idle_since = Some(Instant::now());
                        continue;
                    }
                }
            }
            if self.adaptive.is_some() {
                self.after_wake();
            }
            // Woken (or kept): we are counted as searching again.
        }
    }

    /// Runs a task taken by the main loop, unless the capacity shrank below
    /// this worker meanwhile: then the task goes back to the injector and the
    /// caller suspends. Returns whether the task ran.
    ///
    /// The busy flag and the capacity form a Dekker pair with `tune`: the
    /// worker stores busy, then reads the capacity; the tuner swaps the
    /// capacity (all SeqCst). Either the worker sees the new capacity and
    /// backs off, or its busy store precedes the swap, so the task counts as
    /// "running when `tune` happened" — the only tasks allowed to exceed the
    /// new capacity (ARCHITECTURE.md, "Capacity", invariant C2).
    #[inline]
    fn run_task(&self, job: JobRef) -> bool {
        let counters = self.counters();
        // SeqCst: the store half of the Dekker pair above.
        counters.busy.store(true, Ordering::SeqCst);
        if self.index >= self.shared.target_now() {
            self.give_back_task(job);
            return false;
        }
        self.execute(job);
        // Relaxed: only stats read it after the task (a display figure).
        counters.busy.store(false, Ordering::Relaxed);
        true
    }

    /// The capacity shrank under us after we took `job`: hand it back.
    #[cold]
    #[inline(never)]
    fn give_back_task(&self, job: JobRef) {
        // Relaxed: the task never started; nobody orders anything on it.
        self.counters().busy.store(false, Ordering::Relaxed);
        self.shared.injector.push(job);
        Shared::notify_new_work(&self.shared);
    }

    /// A searching worker found work. The last searcher to stop wakes one
    /// more sleeper (rule 4); if there is none, but the capacity has slots
    /// without a thread and more work is queued, it starts one, so a burst
    /// fans out to threads started on demand too.
    #[inline]
    fn found_work(&self) {
        let shared = &self.shared;
        if shared.sleep.end_searching(true) && self.missing_after_fence() && shared.has_queued_work() {
            Shared::start_missing_worker(shared);
        }
    }

    /// A searcher above a shrunk capacity stops searching to suspend.
    /// Submitters that saw it searching woke nobody: if work is queued, it
    /// hands that on (wakes a sleeper below the capacity, or starts a
    /// thread). Store (the searching count) → fence → read (the queues),
    /// against the submitter's push → fence → read (the count). (Found by
    /// tests/model.rs: a task submitted right after `tune(1)` waited for the
    /// next submit.)
    #[cold]
    fn leave_search_for_suspension(&self) {
        let shared = &self.shared;
        shared.sleep.end_searching(false);
        fence(Ordering::SeqCst);
        if shared.has_queued_work() {
            Shared::notify_new_work(shared);
        }
    }

    /// Whether the capacity has slots without a thread, read as one side of
    /// a Dekker pair with `tune`: our queued work (a stolen batch in our
    /// deque) is published, then the fence, then the read of `missing`; the
    /// tuner stores `missing`, fences, then scans the queues. Either we see
    /// the new slots or the tuner sees our queued work and starts threads
    /// (found by the loom model `tune_grow_then_submit_while_the_worker_takes_work`:
    /// without the fence both sides could miss each other and two tasks
    /// waiting on each other ran on one thread).
    #[cold]
    fn missing_after_fence(&self) -> bool {
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence above (see the pairing in `tune_locked`).
        self.shared.missing.load(Ordering::Relaxed) > 0
    }

    /// Parks until woken, running the idle hook every `idle_interval` and
    /// expiring `keep_alive` after `idle_since`. A keep-alive or interval
    /// too long for an `Instant` to hold means "never".
    #[cold]
    fn park_with_deadlines(&self, idle_since: Instant, idle_interval: Option<Duration>) -> Parked {
        let shared = &self.shared;
        let expires_at = shared
            .config
            .keep_alive
            .and_then(|keep_alive| idle_since.checked_add(keep_alive));
        loop {
            let check_at = idle_interval.and_then(|interval| Instant::now().checked_add(interval));
            let deadline = match (expires_at, check_at) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => {
                    // Neither deadline fits in an `Instant`: never expire.
                    shared.sleep.park_until_woken(self.index);
                    return Parked::Woken;
                }
            };
            if shared.sleep.park_until_woken_or(self.index, deadline) {
                return Parked::Woken;
            }
            if expires_at.is_some_and(|at| Instant::now() >= at) {
                return self.expire();
            }
            // Still announced asleep: a submit that comes now wakes us as
            // usual, and we see it when we park again.
            if let Some(hooks) = &shared.config.hooks {
                let index = self.index;
                if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| hooks.on_idle(index))) {
                    self.note_panic();
                    shared.handle_panic(payload);
                }
            }
        }
    }

    /// Keep-alive ran out while asleep: leave, unless woken meanwhile or
    /// needed to stay (then the worker is searching again).
    #[cold]
    fn expire(&self) -> Parked {
        let shared = &self.shared;
        if !shared.sleep.retract_sleep(self.index) {
            // A waker got there first: we are searching, carry on.
            return Parked::Woken;
        }
        if !shared.try_retire(self.index) {
            return Parked::Kept;
        }
        // Gone from the accounting; leaving the search chains a wake-up if
        // we were the last searcher (rule 4).
        shared.sleep.end_searching(true);
        self.hand_on_late_work();
        Parked::Expired
    }

    /// The final scan of a worker that is already accounted as gone (after
    /// the fence in `try_retire`/`try_retire_suspended`): work that arrived
    /// while it left goes back to the injector for the others (or a new
    /// thread).
    fn hand_on_late_work(&self) {
        let shared = &self.shared;
        let mut handed_back = false;
        if let Some(job) = self.steal() {
            shared.injector.push(job);
            handed_back = true;
        }
        handed_back |= self.hand_back_local_work();
        if handed_back {
            // May start a thread for this very slot: it waits for our deque
            // (`run_worker`), we never wait for it.
            Shared::notify_new_work(shared);
        }
    }

    /// Moves every task in the own deque to the injector.
    fn hand_back_local_work(&self) -> bool {
        let mut moved = false;
        while let Some(job) = self.pop() {
            self.shared.injector.push(job);
            moved = true;
        }
        moved
    }

    /// Parks above the capacity until resumed (by `tune` growing or by
    /// `close`), or until `keep_alive` retires the thread.
    #[cold]
    fn suspend(&self) -> Suspension {
        let shared = &self.shared;
        // Hand the deque back first: suspended workers hold no work.
        if self.hand_back_local_work() {
            Shared::notify_new_work(shared);
        }
        // The last task may have run here, on a worker that now stops
        // without searching: `wait_idle` must re-check. The fence pairs with
        // the one in `wait_idle` (as `begin_searching`'s does).
        fence(Ordering::SeqCst);
        shared.notify_idle_waiters();
        shared.sleep.announce_suspend(self.index);
        // A suspended thread is retired after `keep_alive` (none, or one too
        // long for an `Instant`: never).
        let retire_at = shared
            .config
            .keep_alive
            .and_then(|keep_alive| Instant::now().checked_add(keep_alive));
        loop {
            // After `announce_suspend`'s fence: pairs with the tuner's (and
            // the closer's) store-then-fence-then-scan.
            if self.index < shared.target() || shared.is_closed() {
                // Cancelled ourselves: not searching. Lost the race to a
                // resumer: it counted us as searching.
                let searching = !shared.sleep.cancel_suspend(self.index);
                return Suspension::Resumed { searching };
            }
            if !shared.sleep.still_suspended(self.index) {
                return Suspension::Resumed { searching: true };
            }
            WorkerCounters::bump(&self.counters().parks);
            match retire_at {
                None => shared.sleep.park_while_suspended(self.index),
                Some(at) if Instant::now() < at => shared.sleep.park_while_suspended_until(self.index, at),
                Some(_) => return self.retire_suspended(),
            }
        }
    }

    /// A suspended worker's keep-alive ran out: its thread leaves, unless a
    /// resumer got there first or the capacity grew (or the pool closed)
    /// meanwhile; `try_retire_suspended` decides under the control lock,
    /// which `tune` holds while it moves the capacity.
    #[cold]
    fn retire_suspended(&self) -> Suspension {
        let shared = &self.shared;
        if !shared.sleep.cancel_suspend(self.index) {
            return Suspension::Resumed { searching: true };
        }
        if shared.try_retire_suspended(self.index) {
            Suspension::Retired
        } else {
            Suspension::Resumed { searching: false }
        }
    }

    /// Searches for a while, backing off, before the worker gives up.
    fn search(&self) -> Option<JobRef> {
        // Adaptive pinning: when the previous yielding round began.
        let mut round_began = None;
        for round in 0..SEARCH_ROUNDS {
            if round > SPIN_ROUNDS && self.is_adaptive() {
                round_began = Some(self.time_round(round_began));
            }
            if let Some(job) = self.steal() {
                return Some(job);
            }
            if self.shared.is_closed() {
                // Draining: go straight to the exit check.
                return None;
            }
            backoff(round);
        }
        None
    }
}

impl WorkerThread {
    /// Whether this worker is pinned adaptively (its yields and wake-ups
    /// are measured, at home and away).
    #[inline]
    fn is_adaptive(&self) -> bool {
        self.adaptive.is_some()
    }

    /// Adaptive pinning, after a waker released this worker: a slow
    /// wake-up may move it (off its core, or back).
    #[cold]
    fn after_wake(&self) {
        let now = Instant::now();
        if let Some(delay) = self.shared.sleep.wake_delay(self.index, now) {
            self.observe_delay(Wait::Wake, delay, now);
        }
    }

    /// A searching worker's yielding rounds, timed: a round (a scan of the
    /// queues and a yield, microseconds on a core of its own) that takes
    /// long means the worker was off its core meanwhile, in the yield or
    /// preempted around it, so another thread keeps the core busy. Timed
    /// from the start of one round to the start of the next, so the round
    /// that ends by finding work counts too. (The yields run on the slow
    /// path already; one clock read a round is small next to the system
    /// call.) Returns when this round began.
    #[cold]
    fn time_round(&self, previous_round_began: Option<Instant>) -> Instant {
        let now = Instant::now();
        if let Some(began) = previous_round_began {
            self.observe_delay(Wait::Yield, now.saturating_duration_since(began), now);
        }
        now
    }

    /// Feeds one measurement to the adaptive policy and applies its answer.
    fn observe_delay(&self, kind: Wait, delay: Duration, now: Instant) {
        let Some(adaptive) = &self.adaptive else { return };
        let shared = &self.shared;
        let room_elsewhere = || {
            // Relaxed: hints. Cores without a worker of ours, or a worker
            // of ours asleep, may be free; other processes' load we cannot
            // see (the policy learns it by moving, see `pinning.rs`).
            shared.live_threads.load(Ordering::Relaxed) <= adaptive.widen_to.len() || shared.sleep.sleeping() > 0
        };
        let action = adaptive.policy.borrow_mut().observe(kind, delay, now, room_elsewhere);
        match action {
            PinAction::Stay => {}
            PinAction::Release => {
                if pinning::widen_current(&adaptive.widen_to) {
                    let counters = self.counters();
                    // Relaxed: display figures.
                    counters.pinned.store(false, Ordering::Relaxed);
                    WorkerCounters::bump(&counters.pin_releases);
                }
            }
            PinAction::Repin => self.repin(adaptive.home),
        }
    }

    /// Back to the home core.
    fn repin(&self, home: CoreId) {
        if pinning::pin_current(home) {
            // Relaxed: a display figure.
            self.counters().pinned.store(true, Ordering::Relaxed);
        }
    }

    /// Adaptive pinning, before parking: a released worker tries its home
    /// core again once its back-off has passed (the next wake-up tells).
    #[cold]
    fn before_park(&self) {
        let Some(adaptive) = &self.adaptive else { return };
        let mut policy = adaptive.policy.borrow_mut();
        if policy.wants_clock_before_park() && policy.before_park(Instant::now()) == PinAction::Repin {
            drop(policy);
            self.repin(adaptive.home);
        }
    }
}

/// How a suspension ended.
enum Suspension {
    /// Back to the main loop; `searching`: counted as searching (a resumer
    /// did that).
    Resumed { searching: bool },
    /// Keep-alive retired the thread; it is accounted as gone.
    Retired,
}

/// How a park with a keep-alive ended.
enum Parked {
    /// Woken (or the keep-alive cannot expire): searching again.
    Woken,
    /// The thread expired and is accounted as gone.
    Expired,
    /// The keep-alive ran out but the worker stays (`min_workers`).
    Kept,
}

/// Busy-waits for the first rounds (exponentially longer), then yields.
#[inline]
fn backoff(round: u32) {
    if round < SPIN_ROUNDS {
        for _ in 0..(1u32 << round) {
            spin_hint();
        }
    } else {
        thread::yield_now();
    }
}

/// The body of every worker thread.
pub(crate) fn run_worker(shared: Arc<Shared>, index: usize, pin: Option<WorkerPin>) {
    // Pinning is best effort: a refused pin leaves the thread unpinned (and
    // adaptive pinning off for it). The home core stays claimed until the
    // thread exits (`pin` lives to the end of this frame).
    let mut adaptive = None;
    if let Some(pin) = &pin {
        let home = pin.home.core();
        if pinning::pin_current(home) {
            let counters = &shared.slots[index].counters;
            // Relaxed: display figures.
            counters.home_core.store(home.id + 1, Ordering::Relaxed);
            counters.pinned.store(true, Ordering::Relaxed);
            adaptive = pin.widen_to.clone().map(|widen_to| AdaptivePin {
                home,
                widen_to,
                policy: RefCell::new(AdaptivePolicy::new(Instant::now())),
            });
        }
    }
    // The slot's previous thread may still be on its way out with the
    // deque: wait until it puts it back (it needs no lock we hold).
    let deque = {
        let slot = &shared.slots[index];
        let mut guard = lock(&slot.deque);
        loop {
            if let Some(deque) = guard.take() {
                break deque;
            }
            guard = wait(&slot.deque_returned, guard);
        }
    };
    let worker = WorkerThread {
        shared,
        index,
        deque,
        rng: Cell::new(0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1)),
        adaptive,
    };
    CURRENT.with(|current| current.set(&worker));
    // A panic here would be a bug in the pool (tasks' panics are caught
    // where they run); still, the thread's accounting must be undone, or
    // `shutdown` would wait for it forever.
    let expired = match panic::catch_unwind(AssertUnwindSafe(|| worker.main_loop())) {
        Ok(expired) => expired,
        Err(payload) => {
            eprintln!(
                "stealpool: worker {index} failed (a bug in stealpool, please report it): {}",
                crate::unwind::panic_message(&*payload)
            );
            false
        }
    };
    CURRENT.with(|current| current.set(ptr::null()));
    let WorkerThread {
        shared, index, deque, ..
    } = worker;
    if !expired {
        shared.leave(index);
    }
    if let Some(hooks) = &shared.config.hooks {
        // Before the deque goes back: the slot's next thread starts only
        // after that, so it never sees this thread's per-worker data.
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| hooks.on_exit(index))) {
            shared.handle_panic(payload);
        }
    }
    // Give the deque back to the slot, so a restarted worker can own it
    // (one may already wait for it).
    let slot = &shared.slots[index];
    // Relaxed: display figures (the slot reads as unpinned until its next
    // thread pins itself).
    slot.counters.home_core.store(0, Ordering::Relaxed);
    slot.counters.pinned.store(false, Ordering::Relaxed);
    *lock(&slot.deque) = Some(deque);
    slot.deque_returned.notify_all();
    drop(pin);
}
