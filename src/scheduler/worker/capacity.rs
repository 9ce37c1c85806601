//! The capacity seen from a worker's side: the busy/capacity check before
//! a task runs (worker/README.md, I12), and what a worker above a shrunk
//! capacity does (suspends, or exits once the pool is closed).

use std::ops::ControlFlow;

use crate::scheduler::job::JobRef;
use crate::scheduler::registry::Shared;
use crate::scheduler::worker::keep_alive::Suspension;
use crate::scheduler::worker::WorkerThread;
use crate::sync::Ordering;

impl WorkerThread {
    /// The main loop's turn for a worker at or above the capacity: it stops
    /// searching and suspends until the capacity grows back, or, once the
    /// pool is closed, hands its deque back and exits. `Continue` once
    /// resumed (`searching` updated); `Break(expired)` to end the thread,
    /// `expired` as the main loop returns it.
    #[cold]
    pub(super) fn above_capacity(&self, searching: &mut bool) -> ControlFlow<bool> {
        let shared = &*self.shared;
        self.counters().busy_time.stop();
        if *searching {
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
            return ControlFlow::Break(false);
        }
        match self.suspend() {
            Suspension::Resumed { searching: now } => {
                *searching = now;
                ControlFlow::Continue(())
            }
            Suspension::Retired => ControlFlow::Break(true),
        }
    }

    /// Runs a task taken by the main loop, unless the capacity shrank below
    /// this worker meanwhile: then the task goes back to the injector and the
    /// caller suspends. Returns whether the task ran.
    ///
    /// The capacity read after taking the task decides: the tuner swaps the
    /// capacity and the worker reads it (both SeqCst). Either the worker
    /// sees the new capacity and backs off, or its read precedes the swap in
    /// the single order, so the task counts as "running when `tune`
    /// happened" — the only tasks allowed to exceed the new capacity
    /// (worker/README.md, I12). Nothing else orders on it: the busy flag
    /// is a display figure, so it costs a plain store, not a locked one.
    #[inline]
    pub(super) fn run_task(&self, job: JobRef) -> bool {
        if self.released.get() {
            self.recheck_release();
        }
        let counters = self.counters();
        // Relaxed: only stats and autoscale's sampling read it (display
        // figures); I12 rests on the capacity read alone.
        counters.busy.store(true, Ordering::Relaxed);
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

    /// A searcher above a shrunk capacity stops searching to suspend.
    /// Submitters that saw it searching woke nobody: if work is queued, it
    /// hands that on (wakes a sleeper below the capacity, or starts a
    /// thread). Store (the searching count) → fence → read (the queues),
    /// against the submitter's push → fence → read (the count)
    /// (worker/README.md, I14).
    #[cold]
    pub(super) fn leave_search_for_suspension(&self) {
        self.shared.sleep.end_searching();
        self.hand_on_search();
    }

    /// Moves every task in the own deque to the injector.
    pub(super) fn hand_back_local_work(&self) -> bool {
        let mut moved = false;
        while let Some(job) = self.pop() {
            self.shared.injector.push(job);
            moved = true;
        }
        moved
    }
}
