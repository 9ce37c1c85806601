//! A worker's side of adaptive pinning (`scheduler/pinning.rs`): timing
//! its waits for its core and moving off its home core and back.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use core_affinity::CoreId;

use crate::scheduler::pinning::{self, AdaptivePolicy, PinAction, Wait};
use crate::scheduler::registry::WorkerCounters;
use crate::scheduler::worker::WorkerThread;
use crate::sync::Ordering;

/// A worker's adaptive pinning: its home core, where it may go instead,
/// and the policy deciding between them (`pinning.rs`).
pub(super) struct AdaptivePin {
    pub(super) home: CoreId,
    pub(super) widen_to: Vec<CoreId>,
    pub(super) policy: RefCell<AdaptivePolicy>,
    /// The last wake-up's delay and when the worker ran after it, measured
    /// as it woke and judged as it next goes to sleep (`before_park`), off
    /// the path from the wake-up to the task it was woken for.
    pub(super) pending_wake: Cell<Option<(Duration, Instant)>>,
}

impl WorkerThread {
    /// Whether this worker is pinned adaptively (its search rounds and wake-ups
    /// are measured, at home and away).
    #[inline]
    pub(super) fn is_adaptive(&self) -> bool {
        self.adaptive.is_some()
    }

    /// Adaptive pinning, after a waker released this worker: how long the
    /// wake-up took (one clock read). The policy judges it in
    /// [`WorkerThread::before_park`], so the task the worker was woken for
    /// waits for no policy and no affinity call.
    #[cold]
    pub(super) fn after_wake(&self) {
        let Some(adaptive) = &self.adaptive else { return };
        let now = Instant::now();
        if let Some(delay) = self.shared.sleep.wake_delay(self.index, now) {
            adaptive.pending_wake.set(Some((delay, now)));
        }
    }

    /// A searching worker's rounds after its first, exponential ones,
    /// timed: a round (a scan of the queues and a short busy-wait,
    /// microseconds on a core of its own) that takes long means the worker
    /// was preempted meanwhile, so another thread keeps the core busy. Timed from the start of one
    /// round (`now`) to the start of the next, so the round that ends by
    /// finding work counts too. (The search reads the clock for its own
    /// pacing there; the measurement adds no clock read.)
    #[cold]
    pub(super) fn time_round(&self, previous_round_began: Option<Instant>, now: Instant) {
        if let Some(began) = previous_round_began {
            self.observe_delay(Wait::Search, now.saturating_duration_since(began), now, false);
        }
    }

    /// Feeds one measurement to the adaptive policy and applies its answer.
    /// `announced`: this worker is announced asleep itself (it is about to
    /// park), so it is one of the sleepers the word counts.
    fn observe_delay(&self, kind: Wait, delay: Duration, now: Instant, announced: bool) {
        let Some(adaptive) = &self.adaptive else { return };
        let shared = &self.shared;
        let room_elsewhere = || {
            // Relaxed: hints. Cores without a worker of ours, or a worker
            // of ours asleep, may be free; other processes' load we cannot
            // see (the policy learns it by moving, see `pinning.rs`).
            shared.live_threads.load(Ordering::Relaxed) <= adaptive.widen_to.len()
                || shared.sleep.sleeping() > usize::from(announced)
        };
        let action = adaptive.policy.borrow_mut().observe(kind, delay, now, room_elsewhere);
        match action {
            PinAction::Stay => {}
            PinAction::Release => {
                if pinning::widen_current(&adaptive.widen_to) {
                    self.released.set(true);
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
        self.released.set(false);
        if pinning::pin_current(home) {
            // Relaxed: a display figure.
            self.counters().pinned.store(true, Ordering::Relaxed);
        }
    }

    /// A released worker is about to run a task: the release was made
    /// while another core of the pool looked free (a sibling asleep). If
    /// every sibling is awake now, the worker only shares a core with a
    /// busy one of its own: it goes home at once (and holds there for the
    /// back-off), instead of waiting for its next park, which a worker
    /// that always has work never reaches (`scheduler/README.md`,
    /// "Adaptive pinning").
    #[cold]
    #[inline(never)]
    pub(super) fn recheck_release(&self) {
        let Some(adaptive) = &self.adaptive else { return };
        let shared = &self.shared;
        // Relaxed: hints, as at the release (`observe_delay`).
        let room_elsewhere =
            shared.live_threads.load(Ordering::Relaxed) <= adaptive.widen_to.len() || shared.sleep.sleeping() > 0;
        if room_elsewhere {
            return;
        }
        let action = adaptive.policy.borrow_mut().no_room_elsewhere(Instant::now());
        if action == PinAction::Repin {
            self.repin(adaptive.home);
        }
    }

    /// Adaptive pinning, before parking: the last wake-up's delay is
    /// judged now (a slow one may move the worker off its core, or back,
    /// for the next wake-up), and a released worker tries its home core
    /// again once its back-off has passed (the next wake-up tells).
    #[cold]
    pub(super) fn before_park(&self) {
        let Some(adaptive) = &self.adaptive else { return };
        if let Some((delay, woken_at)) = adaptive.pending_wake.take() {
            // Called after `announce_sleep`: we count among the sleepers.
            self.observe_delay(Wait::Wake, delay, woken_at, true);
        }
        let mut policy = adaptive.policy.borrow_mut();
        if policy.wants_clock_before_park() && policy.before_park(Instant::now()) == PinAction::Repin {
            drop(policy);
            self.repin(adaptive.home);
        }
    }
}
