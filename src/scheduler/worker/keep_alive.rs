//! A worker's idle life: parking with keep-alive and idle-hook deadlines,
//! expiring, suspending above the capacity and retiring from there.

use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::scheduler::registry::{Shared, WorkerCounters};
use crate::scheduler::worker::WorkerThread;
use crate::sync::{fence, Ordering};

impl WorkerThread {
    /// Parks until woken, running the idle hook every `idle_interval` and
    /// expiring `keep_alive` after `idle_since`. A keep-alive or interval
    /// too long for an `Instant` to hold means "never".
    #[cold]
    pub(super) fn park_with_deadlines(&self, idle_since: Instant, idle_interval: Option<Duration>) -> Parked {
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
        // we were the last searcher (sleep/README.md, I3).
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

    /// Parks above the capacity until resumed (by `tune` growing or by
    /// `close`), or until `keep_alive` retires the thread.
    #[cold]
    pub(super) fn suspend(&self) -> Suspension {
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
            if self.index < shared.capacity() || shared.is_closed() {
                // Cancelled ourselves: not searching. Lost the race to a
                // resumer: it counted us as searching.
                let searching = !shared.sleep.cancel_suspend(self.index);
                return Suspension::Resumed { searching };
            }
            if !shared.sleep.still_suspended(self.index) {
                return Suspension::Resumed { searching: true };
            }
            if self.broadcast_pending() {
                // A share queued before the capacity shrank below us: the
                // broadcaster unparks us for it (`scheduler/broadcast.rs`).
                self.run_broadcasts();
                continue;
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
}

/// How a suspension ended.
pub(super) enum Suspension {
    /// Back to the main loop; `searching`: counted as searching (a resumer
    /// did that).
    Resumed { searching: bool },
    /// Keep-alive retired the thread; it is accounted as gone.
    Retired,
}

/// How a park with a keep-alive ended.
pub(super) enum Parked {
    /// Woken (or the keep-alive cannot expire): searching again.
    Woken,
    /// The thread expired and is accounted as gone.
    Expired,
    /// The keep-alive ran out but the worker stays (`min_workers`).
    Kept,
}
