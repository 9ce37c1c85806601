//! A worker thread: its main loop, its search for work and its sleep
//! (`keep_alive.rs`: its idle life; `adaptive.rs`: adaptive pinning).

mod adaptive;
mod block;
pub(crate) mod cross;
pub(crate) mod early_count;
mod join_frames;
mod keep_alive;
mod siblings;

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::time::{Duration, Instant};

use adaptive::AdaptivePin;
pub(crate) use join_frames::{JoinFrame, JoinFrames};
use keep_alive::{Parked, Suspension};

use crate::observe::report::{Level, Topic};
use crate::scheduler::job::JobRef;
use crate::scheduler::latch::{Latch, LatchOwner};
use crate::scheduler::observed;
use crate::scheduler::pinning::{self, AdaptivePolicy, WorkerPin};
use crate::scheduler::queue::{Steal, Worker};
use crate::scheduler::registry::{Shared, WorkerCounters};
use crate::sync::{fence, lock, spin_hint, thread, wait, Arc, Ordering};

/// How a worker searches before it announces sleep: [`SPIN_ROUNDS`] rounds
/// of exponentially longer busy-waiting between scans of the queues (255
/// spin hints in all), then rounds of [`SPIN_HINTS`] spin hints until
/// [`SPIN_FOR`] has passed; then it parks. A task handed off within tens of
/// microseconds is taken without a futex wake, and a worker that runs out
/// of work makes no system call before it parks. (The search used to yield
/// 32 rounds, as rayon yields 32 and more; one yield was tried too. On an
/// idle core a `sched_yield` is busy-waiting with a system call in it; on a
/// core shared with another runnable thread it hands that thread the core
/// for up to a time slice, a context switch each, while the worker stays
/// counted as searching, so a submit meanwhile wakes nobody and its task
/// waits for the neighbour's slice: with one core kept busy, a single
/// yield per search still left a tenth of idle wake-ups waiting 2-7 ms,
/// none without it.)
const SPIN_ROUNDS: u32 = 8;
/// Spin hints between two scans once the exponential rounds are over
/// (about a microsecond).
const SPIN_HINTS: u32 = 32;
/// How long the search keeps busy-waiting after its exponential rounds:
/// about what a futex wake-up costs a task here (a few tens of
/// microseconds on a VM), so a hand-off that comes this soon is taken at
/// once and one that comes later pays the wake-up it would have paid.
const SPIN_FOR: Duration = Duration::from_micros(40);

/// Rounds a worker waiting inside the pool (`wait_until`: a `join`, a
/// scope; `cross.rs`: a wait on another pool) helps, spins and yields
/// before it blocks on its latch.
#[cfg(not(loom))]
const WAIT_ROUNDS: u32 = 40;
#[cfg(loom)]
const WAIT_ROUNDS: u32 = 1;

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
    /// Whether the job `execute` runs now may count itself done
    /// (`early_count.rs`).
    early: Cell<u8>,
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
    // Always: every scope spawn and inside submit comes through here, and
    // left to the compiler it stopped being inlined into `Scope::push`
    // (11 instructions per nested spawn, `.ci/icount`).
    #[inline(always)]
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
            // later submits start on other workers (worker/README.md, "Where
            // work goes", I11).
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

    /// Runs one job while the worker waits inside a task (`help_once`, a
    /// `join` running its own second half), catching a panic of a
    /// `submit`ted closure (other job kinds catch their own) and counting it.
    #[inline]
    pub(crate) fn execute(&self, job: JobRef) {
        // The waiting task's state comes back after this job
        // (`early_count.rs`).
        let outer = self.early.replace(early_count::NESTED);
        self.run(job);
        self.early.set(outer);
    }

    /// Runs one job (as `execute`) from the main loop, or nested.
    #[inline]
    fn run(&self, job: JobRef) {
        // The one test an unobserved pool pays per task (observed.rs).
        if let Some(observer) = &self.shared.config.task_observer {
            // Counted after its `on_task_end` hook, never early.
            return early_count::unarmed(|| observed::execute_observed(self, observer, job));
        }
        self.shared
            .run_job(job, || self.note_panic(), || self.count_completed());
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
            if self.broadcast_pending() {
                self.run_broadcasts();
                continue;
            }
            if idle_rounds < WAIT_ROUNDS {
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
                // A broadcaster unparks us after queueing a share (it may
                // be the very task we wait for).
                if self.broadcast_pending() {
                    self.run_broadcasts();
                    continue;
                }
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
                    // (worker/README.md, I14.)
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
                if self.broadcast_pending() {
                    self.run_broadcasts();
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
            // Announce sleep, then the final checks (sleep/README.md, I1).
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
            if self.broadcast_pending() {
                // After the fence of `announce_sleep`, against the
                // broadcaster's push → fence → wake (`scheduler/broadcast.rs`).
                shared.sleep.retract_sleep(self.index);
                self.found_work();
                searching = false;
                idle_since = None;
                self.run_broadcasts();
                continue;
            }
            if shared.is_closed_and_drained() {
                shared.sleep.retract_sleep(self.index);
                shared.sleep.end_searching();
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
    /// new capacity (worker/README.md, I12).
    #[inline]
    fn run_task(&self, job: JobRef) -> bool {
        let counters = self.counters();
        // SeqCst: the store half of the Dekker pair above.
        counters.busy.store(true, Ordering::SeqCst);
        if self.index >= self.shared.capacity_now() {
            self.give_back_task(job);
            return false;
        }
        self.run(job);
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

    /// A searching worker found work. The last searcher to stop hands the
    /// search on if more work is queued (sleep/README.md, I3): it wakes a sleeper, or
    /// starts a thread for an empty slot, so a burst fans out; a worker that
    /// took the only queued task goes straight to it.
    #[inline]
    fn found_work(&self) {
        self.counters().busy_time.start();
        if self.shared.sleep.end_searching() {
            self.hand_on_search();
        }
    }

    /// The last searcher stopped searching: submitters that saw it
    /// searching woke nobody. Store (the searching count, in
    /// `end_searching`) → fence → read (the queues), against the
    /// submitter's push → fence → read (the count): either the submitter
    /// saw no searcher and notified itself, or this scan sees its task (or
    /// a worker that took it meanwhile); then it notifies as the submitter
    /// would have: wakes a sleeper, or starts a thread for a slot without
    /// one (sleep/README.md, I1 and I3; worker/README.md, I14; loom
    /// `last_searcher_takes_one_task_while_a_submit_skips_its_wake`).
    #[cold]
    #[inline(never)]
    fn hand_on_search(&self) {
        let shared = &self.shared;
        fence(Ordering::SeqCst);
        if shared.has_queued_work() {
            Shared::notify_new_work(shared);
        }
    }

    /// A searcher above a shrunk capacity stops searching to suspend.
    /// Submitters that saw it searching woke nobody: if work is queued, it
    /// hands that on (wakes a sleeper below the capacity, or starts a
    /// thread). Store (the searching count) → fence → read (the queues),
    /// against the submitter's push → fence → read (the count)
    /// (worker/README.md, I14).
    #[cold]
    fn leave_search_for_suspension(&self) {
        self.shared.sleep.end_searching();
        self.hand_on_search();
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

    /// Searches for a while before the worker gives up (the pacing is
    /// described at [`SPIN_ROUNDS`]). The rounds after the exponential ones
    /// read the clock, and adaptive pinning times them: a round that takes
    /// long means another thread held the core meanwhile.
    fn search(&self) -> Option<JobRef> {
        let mut round = 0;
        // When the busy-waiting ends (set at the first timed round).
        let mut spin_until = None;
        // Adaptive pinning: when the previous timed round began.
        let mut round_began = None;
        loop {
            if let Some(job) = self.steal() {
                return Some(job);
            }
            if self.shared.is_closed() {
                // Draining: go straight to the exit check.
                return None;
            }
            if cfg!(loom) {
                // One round (a spin hint is a loom yield): the models
                // explore the protocol, not the pacing.
                spin_hint();
                return None;
            }
            if round < SPIN_ROUNDS {
                spin(1 << round);
                round += 1;
                continue;
            }
            let now = Instant::now();
            if self.is_adaptive() {
                self.time_round(round_began, now);
                round_began = Some(now);
            }
            if now >= *spin_until.get_or_insert_with(|| now + SPIN_FOR) {
                return None;
            }
            spin(SPIN_HINTS);
        }
    }
}

/// Busy-waits `hints` spin hints.
#[inline]
fn spin(hints: u32) {
    for _ in 0..hints {
        spin_hint();
    }
}

/// A waiting worker's pause: busy-waits for the first rounds
/// (exponentially longer), then yields.
#[inline]
fn backoff(round: u32) {
    if round < SPIN_ROUNDS {
        spin(1 << round);
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
                pending_wake: Cell::new(None),
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
        early: Cell::new(early_count::TOP),
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
