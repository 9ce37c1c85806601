//! A worker thread: its main loop, its search for work and its sleep
//! (`keep_alive.rs`: its idle life; `adaptive.rs`: adaptive pinning).

mod adaptive;
mod block;
mod join_frames;
mod keep_alive;
mod siblings;

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::time::Instant;

use adaptive::AdaptivePin;
pub(crate) use join_frames::JoinFrame;
use join_frames::JoinFrames;
use keep_alive::{Parked, Suspension};

use crate::observe::report::{Level, Topic};
use crate::scheduler::job::JobRef;
use crate::scheduler::latch::{Latch, LatchOwner};
use crate::scheduler::observed;
use crate::scheduler::pinning::{self, AdaptivePolicy, WorkerPin};
use crate::scheduler::queue::{Steal, Worker};
use crate::scheduler::registry::{Shared, WorkerCounters};
use crate::sync::{fence, lock, spin_hint, thread, wait, Arc, Ordering};

/// Rounds a worker searches before it announces sleep. rayon spins 32 rounds
/// with `yield_now`; we spin a few rounds with exponential busy-waiting and
/// then yield, so a ping-pong of tasks rarely pays a futex wake while an idle
/// pool stops burning CPU within microseconds.
#[cfg(not(any(loom, miri)))]
const SEARCH_ROUNDS: u32 = 40;
#[cfg(loom)]
const SEARCH_ROUNDS: u32 = 1;
/// Under Miri every round (a steal from each deque and the injector) costs
/// an interpreter's time: a few rounds, and idle workers go to sleep sooner,
/// which checks the sleep protocol more often.
#[cfg(all(miri, not(loom)))]
const SEARCH_ROUNDS: u32 = 4;
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
    /// Pending `join`s whose second halves are not published yet.
    join_frames: JoinFrames,
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

    /// Pushes the second half of a `join` onto this worker's own deque. The
    /// caller must pop it back or wait for it by helping
    /// ([`WorkerThread::wait_until`]): the wake-up here is a hint without
    /// the sleep protocol's fence, so only a job its owner is sure to reach
    /// may be pushed this way.
    #[inline]
    pub(crate) fn push_join_half(&self, job: JobRef) {
        self.deque.push(job);
        Shared::notify_new_join_work(&self.shared);
    }

    /// Links a `join`'s frame; its second half stays private until
    /// [`WorkerThread::offer_join_work`] publishes it.
    ///
    /// # Safety
    /// As for `JoinFrames::link`: the frame stays put until unlinked with
    /// [`WorkerThread::unlink_join`], newest first.
    #[inline]
    pub(crate) unsafe fn link_join(&self, frame: &JoinFrame) {
        // SAFETY: forwarded from the caller.
        unsafe { self.join_frames.link(frame) }
    }

    /// Unlinks the newest `join` frame: its job if still private (run it
    /// inline), `None` if published.
    #[inline]
    pub(crate) fn unlink_join(&self, frame: &JoinFrame) -> Option<JobRef> {
        self.join_frames.unlink(frame)
    }

    /// Publishes the oldest private `join` half if a thief could use it:
    /// this worker's deque is empty (a thief looking here would find
    /// nothing), or some worker of the pool is idle (`join_frames.rs`).
    #[inline]
    pub(crate) fn offer_join_work(&self) {
        if self.deque.is_empty() || self.shared.sleep.has_idle_workers() {
            if let Some(job) = self.join_frames.publish_oldest() {
                self.push_join_half(job);
            }
        }
    }

    /// Publishes every private `join` half: before this worker waits for
    /// something (a scope, a handle, a stolen half) or blocks, since nobody
    /// else could run them meanwhile, and the wait may be long.
    #[inline]
    pub(crate) fn publish_all_join_work(&self) {
        if self.join_frames.has_private() {
            self.publish_all_join_work_cold();
        }
    }

    #[cold]
    fn publish_all_join_work_cold(&self) {
        while let Some(job) = self.join_frames.publish_oldest() {
            self.push_join_half(job);
        }
    }

    /// Pushes a counted task submitted from inside one of this pool's tasks.
    /// Never blocks, even over the queue limit.
    #[inline]
    pub(crate) fn push_counted(&self, job: JobRef) {
        // Counted before it is pushed: see `Shared::all_tasks_done`.
        WorkerCounters::bump(&self.counters().submitted);
        self.push(job);
    }

    /// Pushes a counted task submitted from inside one of this pool's tasks
    /// onto the injector instead of the own deque (`spawn_fifo`): it then
    /// starts in FIFO order with the other injected tasks. Never blocks.
    #[inline]
    pub(crate) fn push_counted_fifo(&self, job: JobRef) {
        // Counted before it is pushed, wherever it goes: see
        // `Shared::all_tasks_done`.
        WorkerCounters::bump(&self.counters().submitted);
        Shared::inject(&self.shared, job);
    }

    /// Pops from the own deque (LIFO).
    #[inline]
    pub(crate) fn pop(&self) -> Option<JobRef> {
        self.deque.pop()
    }

    /// A latch this worker can wait on while helping with other work.
    pub(crate) fn new_latch(&self) -> Latch {
        Latch::new(LatchOwner::worker(self.shared.sleep.parker(self.index)))
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
            // The injector first: outside submits land there. A batch
            // amortises its contended head over up to 33 tasks; with strict
            // start order (`Builder::fifo`) one task at a time, since a
            // batch waits in this deque behind the task we run now while
            // later submits start on other workers (ARCHITECTURE.md, "Where
            // work goes", O1).
            let taken = if shared.config.fifo {
                shared.injector.steal()
            } else {
                shared.injector.steal_batch_and_pop(&self.deque)
            };
            match taken {
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
        // The one test an unobserved pool pays per task (observed.rs).
        if let Some(observer) = &self.shared.config.task_observer {
            return observed::execute_observed(self, observer, job);
        }
        self.shared.run_job(
            job,
            || self.note_panic(),
            || WorkerCounters::bump(&self.counters().completed),
        );
    }

    /// Counts a panic of a task on this worker.
    #[cold]
    pub(crate) fn note_panic(&self) {
        crate::observe::event::note_caught_panic();
        WorkerCounters::bump(&self.counters().panicked);
    }

    /// Runs one queued task (own deque first, then stolen) while waiting
    /// for something else. Returns whether there was one.
    #[inline]
    pub(crate) fn help_once(&self) -> bool {
        match self.pop().or_else(|| self.steal()) {
            Some(job) => {
                self.execute(job);
                true
            }
            None => false,
        }
    }

    /// Runs other work until `latch` is set: how `join` and `scope` wait
    /// inside the pool without blocking it (`JoinHandle::join` helps the
    /// same way until nothing is queued, then blocks on its packet: its
    /// task runs elsewhere).
    pub(crate) fn wait_until(&self, latch: &Latch) {
        // Halves of enclosing joins that nobody was offered yet: offer
        // them now (this worker runs them itself if nobody else does).
        self.publish_all_join_work();
        let mut idle_rounds = 0;
        while !latch.probe() {
            if self.help_once() {
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
        if latch.announce_block() {
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
        // While this worker is announced asleep, its sibling pools count it
        // (`registry/siblings.rs`); dropped at the top of every round.
        let mut sibling_hint = None;
        loop {
            drop(sibling_hint.take());
            if self.index >= shared.capacity() {
                self.counters().busy_time.stop();
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
                    // drained) re-check. `notify_all` fences first.
                    // (ARCHITECTURE.md, C4b.)
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
            if shared.siblings.any() && self.help_a_sibling() {
                // Ran a sibling pool's task (no longer searching).
                searching = false;
                idle_since = None;
                continue;
            }
            if shared.siblings.any() {
                sibling_hint = Some(shared.announce_sleep_to_siblings());
            }
            // Announce sleep, then the final checks (rule 2).
            shared.sleep.announce_sleep(self.index);
            if self.index >= shared.capacity() {
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
            if shared.siblings.any() && shared.siblings_have_work() {
                // The final scan covers the siblings too (see
                // `Shared::wake_a_sibling`): search again, then help.
                shared.sleep.retract_sleep(self.index);
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
            self.counters().busy_time.stop();
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
            shared.autoscale.note_woken();
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
        if self.index >= self.shared.capacity_now() {
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
        self.counters().busy_time.start();
        let shared = &self.shared;
        if shared.sleep.end_searching(true) && self.missing_after_fence() && shared.has_queued_work() {
            Shared::start_missing_worker(shared);
        }
    }

    /// A searcher above a shrunk capacity stops searching to suspend.
    /// Submitters that saw it searching woke nobody: if work is queued, it
    /// hands that on (wakes a sleeper below the capacity, or starts a
    /// thread). Store (the searching count) → fence → read (the queues),
    /// against the submitter's push → fence → read (the count)
    /// (ARCHITECTURE.md, C4b).
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
    /// (ARCHITECTURE.md, C4b; loom `tune_grow_then_submit_while_the_worker_takes_work`).
    #[cold]
    fn missing_after_fence(&self) -> bool {
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence above (see the pairing in `tune_locked`).
        self.shared.missing.load(Ordering::Relaxed) > 0
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
        join_frames: JoinFrames::new(),
    };
    CURRENT.with(|current| current.set(&worker));
    if worker.shared.config.thread_hooks.on_start.is_some() {
        observed::thread_started(&worker.shared, index);
    }
    worker.shared.autoscale.note_thread_started(index);
    // A panic here would be a bug in the pool (tasks' panics are caught
    // where they run); still, the thread's accounting must be undone, or
    // `shutdown` would wait for it forever.
    let expired = match panic::catch_unwind(AssertUnwindSafe(|| worker.main_loop())) {
        Ok(expired) => expired,
        Err(payload) => {
            worker.shared.config.reporter.report(
                Topic::WorkerFailed,
                Level::Error,
                format_args!(
                    "worker {index} failed (a bug in stealpool, please report it): {}",
                    crate::unwind::panic_message(&*payload)
                ),
            );
            false
        }
    };
    worker.counters().busy_time.stop();
    if worker.shared.config.thread_hooks.on_stop.is_some() {
        observed::thread_stopped(&worker.shared, index);
    }
    CURRENT.with(|current| current.set(ptr::null()));
    let WorkerThread {
        shared, index, deque, ..
    } = worker;
    shared.autoscale.note_thread_leaving(index);
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
