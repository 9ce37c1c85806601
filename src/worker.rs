//! A worker thread: its main loop, its search for work and its sleep.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::ptr;

use crate::job::JobRef;
use crate::latch::{Latch, LatchOwner};
use crate::queue::{Steal, Worker};
use crate::registry::{Shared, WorkerCounters};
use crate::sync::{lock, spin_hint, thread, Arc, Ordering};

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
        self.shared.sleep.notify_new_work();
    }

    /// Pushes a counted task submitted from inside one of this pool's tasks.
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
            let workers = shared.slots.len();
            let start = self.next_random() % workers;
            for offset in 0..workers {
                let victim = (start + offset) % workers;
                if victim == self.index {
                    continue;
                }
                match shared.slots[victim].stealer.steal_batch_and_pop(&self.deque) {
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
    /// closed and drained.
    fn main_loop(&self) {
        let shared = &*self.shared;
        let counters = self.counters();
        // Whether this worker is counted as searching in the sleep word.
        let mut searching = false;
        loop {
            if !searching {
                if let Some(job) = self.pop() {
                    counters.busy.store(true, Ordering::Relaxed);
                    self.execute(job);
                    counters.busy.store(false, Ordering::Relaxed);
                    continue;
                }
                shared.sleep.begin_searching();
                searching = true;
                shared.notify_idle_waiters();
            }
            if let Some(job) = self.search() {
                shared.sleep.end_searching(true);
                searching = false;
                counters.busy.store(true, Ordering::Relaxed);
                self.execute(job);
                counters.busy.store(false, Ordering::Relaxed);
                continue;
            }
            // Announce sleep, then the final scan (rule 2).
            shared.sleep.announce_sleep(self.index);
            if let Some(job) = self.steal() {
                shared.sleep.retract_sleep(self.index);
                shared.sleep.end_searching(true);
                searching = false;
                counters.busy.store(true, Ordering::Relaxed);
                self.execute(job);
                counters.busy.store(false, Ordering::Relaxed);
                continue;
            }
            if shared.is_closed_and_drained() {
                shared.sleep.retract_sleep(self.index);
                shared.sleep.end_searching(false);
                // Wake the others so they see the drained pool too.
                shared.sleep.notify_all();
                return;
            }
            shared.sleep.park_until_woken(self.index);
            // Woken: we are counted as searching again.
        }
    }

    /// Searches for a while, backing off, before the worker gives up.
    fn search(&self) -> Option<JobRef> {
        for round in 0..SEARCH_ROUNDS {
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
pub(crate) fn run_worker(shared: Arc<Shared>, index: usize, core: Option<core_affinity::CoreId>) {
    #[cfg(not(loom))]
    if let Some(core) = core {
        // Pinning is best effort: a refused pin leaves the thread unpinned.
        let _ = core_affinity::set_for_current(core);
    }
    #[cfg(loom)]
    let _ = core;
    let deque = lock(&shared.slots[index].deque)
        .take()
        .expect("worker slot's deque is owned by a live thread");
    let worker = WorkerThread {
        shared,
        index,
        deque,
        rng: Cell::new(0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1)),
    };
    let counters = worker.counters();
    counters.live.store(true, Ordering::Relaxed);
    CURRENT.with(|current| current.set(&worker));
    worker.main_loop();
    CURRENT.with(|current| current.set(ptr::null()));
    counters.live.store(false, Ordering::Relaxed);
    // Give the deque back to the slot, so a restarted worker can own it.
    let WorkerThread {
        shared, index, deque, ..
    } = worker;
    *lock(&shared.slots[index].deque) = Some(deque);
}
