//! Where a worker looks for work and how long: one pass over the queues
//! (`steal`), the paced search before it announces sleep (`search`), and
//! what the last searcher to find work hands on (sleep/README.md, I3).

use std::time::{Duration, Instant};

use crate::scheduler::job::JobRef;
use crate::scheduler::queue::Steal;
use crate::scheduler::registry::{Shared, WorkerCounters};
use crate::scheduler::worker::{join_frames, WorkerThread};
use crate::sync::{fence, spin_hint, Ordering};

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
pub(super) const SPIN_ROUNDS: u32 = 8;
/// Spin hints between two scans once the exponential rounds are over
/// (about a microsecond).
const SPIN_HINTS: u32 = 32;
/// How long the search keeps busy-waiting after its exponential rounds:
/// about what a futex wake-up costs a task here (a few tens of
/// microseconds on a VM), so a hand-off that comes this soon is taken at
/// once and one that comes later pays the wake-up it would have paid.
const SPIN_FOR: Duration = Duration::from_micros(40);

impl WorkerThread {
    pub(super) fn next_random(&self) -> usize {
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

    /// Searches for a while before the worker gives up (the pacing is
    /// described at [`SPIN_ROUNDS`]). The rounds after the exponential ones
    /// read the clock, and adaptive pinning times them: a round that takes
    /// long means another thread held the core meanwhile.
    pub(super) fn search(&self) -> Option<JobRef> {
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

    /// A searching worker found work. The last searcher to stop hands the
    /// search on if more work is queued (sleep/README.md, I3): it wakes a sleeper, or
    /// starts a thread for an empty slot, so a burst fans out; a worker that
    /// took the only queued task goes straight to it.
    #[inline]
    pub(super) fn found_work(&self) {
        self.counters().busy_time.start();
        // A capacity `tune` changed shows here (`WorkerThread::latent_joins`).
        self.latent_joins
            .set(join_frames::latent_joins_for(self.shared.capacity()));
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
    pub(super) fn hand_on_search(&self) {
        let shared = &self.shared;
        fence(Ordering::SeqCst);
        if shared.has_queued_work() {
            Shared::notify_new_work(shared);
        }
    }
}

/// Busy-waits `hints` spin hints.
#[inline]
pub(super) fn spin(hints: u32) {
    for _ in 0..hints {
        spin_hint();
    }
}
