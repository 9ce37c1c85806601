//! A worker thread: its main loop, its search for work and its sleep
//! (`keep_alive.rs`: its idle life; `adaptive.rs`: adaptive pinning).

mod adaptive;
mod block;
mod capacity;
pub(crate) mod cross;
pub(crate) mod early_count;
mod join_frames;
mod keep_alive;
mod search;
mod siblings;
mod try_sleep;
mod wait;

use std::cell::{Cell, RefCell};
use std::ops::ControlFlow;
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::time::Instant;

use adaptive::AdaptivePin;
pub(crate) use join_frames::{latent_joins_for, JoinFrame, JoinFrames, LATENT_JOINS};
use try_sleep::SleepOutcome;
pub(crate) use wait::{backoff, WAIT_ROUNDS};

use crate::observe::report::{Level, Topic};
use crate::scheduler::job::JobRef;
use crate::scheduler::latch::{Latch, LatchOwner};
use crate::scheduler::observed;
use crate::scheduler::pinning::{self, AdaptivePolicy, WorkerPin};
use crate::scheduler::queue::Worker;
use crate::scheduler::registry::{Shared, WorkerCounters};
use crate::sync::{fence, lock, wait, Arc, Ordering};

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
    /// Adaptive pinning let this worker off its home core (one flag the
    /// task path tests: `WorkerThread::recheck_release`).
    released: Cell<bool>,
    /// Pending `join`s whose second halves are not published yet.
    join_frames: JoinFrames,
    /// How many private `join` frames to keep (`latent_joins`), refreshed
    /// from the capacity when a search finds work.
    latent_joins: Cell<usize>,
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
    /// nobody is searching. Never blocks. No fence where the asymmetric
    /// barrier is available (`Sleep::notify_new_inside_work`).
    #[inline]
    pub(crate) fn push(&self, job: JobRef) {
        self.deque.push(job);
        Shared::notify_new_inside_work(&self.shared);
    }

    /// Before this slot's first push from inside a task: mark it, so
    /// workers going to sleep pay the heavy half of the asymmetric barrier
    /// (`Shared::may_race_a_light_push`).
    #[cold]
    #[inline(never)]
    fn first_inside_push(&self) {
        // Relaxed store, then SeqCst fence: either a sleeper's read of the
        // flag (after its own fence) sees it, or every later read of the
        // sleep word by this thread sees that sleeper's announcement.
        self.counters().pushes_inside.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
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

    /// How many of this worker's `join` frames are private.
    #[inline]
    pub(crate) fn private_joins(&self) -> usize {
        self.join_frames.private_count()
    }

    /// How many private `join` frames this worker keeps before a `join`
    /// runs plainly: more in a bigger pool (`join_frames::latent_joins_for`
    /// the capacity, as of the worker's start or its last search).
    #[inline]
    pub(crate) fn latent_joins(&self) -> usize {
        self.latent_joins.get()
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
        let counters = self.counters();
        WorkerCounters::bump(&counters.submitted);
        // Relaxed: only this thread writes it (`first_inside_push`).
        if !counters.pushes_inside.load(Ordering::Relaxed) {
            self.first_inside_push();
        }
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

    /// The main loop: run local work, search, sleep, until the pool is
    /// closed and drained (or the thread expires, or is suspended and the
    /// pool closes). Each concern has its own helper: the capacity
    /// (`capacity.rs`), the search (`search.rs`), the sibling pools
    /// (`siblings.rs`), the sleep with its final checks, keep-alive and
    /// adaptive pinning (`try_sleep.rs`), the broadcast inbox
    /// (`scheduler/broadcast.rs`).
    /// Returns true if the thread expired (keep-alive), already accounted
    /// as gone by `try_retire`.
    fn main_loop(&self) -> bool {
        let shared = &*self.shared;
        // Whether this worker is counted as searching in the sleep word.
        let mut searching = false;
        // When this worker last ran out of work (its keep-alive clock): a
        // wake-up that brings no work does not restart it.
        let mut idle_since: Option<Instant> = None;
        // Its sibling pools count it asleep while this lives (`try_sleep`).
        let mut sibling_hint = None;
        loop {
            drop(sibling_hint.take());
            if self.index >= shared.capacity() {
                match self.above_capacity(&mut searching) {
                    ControlFlow::Continue(()) => continue,
                    ControlFlow::Break(expired) => return expired,
                }
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
                (searching, idle_since) = (false, None);
                self.run_task(job);
                continue;
            }
            if shared.siblings.any() && self.help_a_sibling() {
                // Ran a sibling pool's task (no longer searching).
                (searching, idle_since) = (false, None);
                continue;
            }
            match self.try_sleep(&mut idle_since, &mut sibling_hint) {
                SleepOutcome::Retracted | SleepOutcome::Woken => {}
                SleepOutcome::Work(job) => {
                    (searching, idle_since) = (false, None);
                    self.run_task(job);
                }
                SleepOutcome::Broadcasts => {
                    (searching, idle_since) = (false, None);
                    self.run_broadcasts();
                }
                SleepOutcome::Drained => return false,
                SleepOutcome::Expired => return true,
            }
        }
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
    let latent_joins = latent_joins_for(shared.capacity());
    let worker = WorkerThread {
        shared,
        index,
        deque,
        rng: Cell::new(0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1)),
        adaptive,
        released: Cell::new(false),
        join_frames: JoinFrames::new(),
        latent_joins: Cell::new(latent_joins),
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
