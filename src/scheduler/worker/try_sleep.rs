//! A searching worker that found nothing tries to sleep: it announces
//! sleep, makes the final checks the sleep protocol requires
//! (`../sleep/README.md`, I1), and parks, with its keep-alive and idle
//! deadlines if it has any.

use std::time::Instant;

use crate::scheduler::job::JobRef;
use crate::scheduler::registry::siblings::SiblingSleepHint;
use crate::scheduler::registry::WorkerCounters;
use crate::scheduler::worker::keep_alive::Parked;
use crate::scheduler::worker::WorkerThread;

/// How [`WorkerThread::try_sleep`] ended.
pub(super) enum SleepOutcome {
    /// The final checks found a reason not to sleep (the capacity shrank,
    /// a sibling pool has work): the sleep was retracted and the worker,
    /// still searching, goes round again.
    Retracted,
    /// The final scan found a job: the sleep was retracted and the worker
    /// stopped searching; run it.
    Work(JobRef),
    /// A broadcast share is waiting: the sleep was retracted and the worker
    /// stopped searching; run the shares.
    Broadcasts,
    /// The worker slept and was woken (or kept for `min_workers`, with a
    /// new keep-alive period): it is counted as searching again.
    Woken,
    /// The pool is closed and drained: the worker leaves.
    Drained,
    /// The keep-alive ran out: the thread expired, already accounted as
    /// gone by `try_retire`.
    Expired,
}

impl WorkerThread {
    /// Announces sleep, makes the final checks, and parks until woken
    /// (sleep/README.md, I1). Called while counted as searching, after a
    /// search found nothing. `idle_since` is the keep-alive clock (set at
    /// the first park of an idle stretch, restarted when kept);
    /// `sibling_hint` keeps this worker counted asleep by its sibling pools
    /// until the caller drops it at the top of its next round.
    #[inline]
    pub(super) fn try_sleep(
        &self,
        idle_since: &mut Option<Instant>,
        sibling_hint: &mut Option<SiblingSleepHint>,
    ) -> SleepOutcome {
        let shared = &*self.shared;
        if shared.siblings.any() {
            *sibling_hint = Some(shared.announce_sleep_to_siblings());
        }
        // Announce sleep, then the final checks (sleep/README.md, I1).
        shared
            .sleep
            .announce_sleep(self.index, |idle| shared.may_race_a_light_push(idle));
        if self.index >= shared.capacity() {
            // Shrunk while we searched: back to the top to suspend.
            shared.sleep.retract_sleep(self.index);
            return SleepOutcome::Retracted;
        }
        if let Some(job) = self.steal() {
            shared.sleep.retract_sleep(self.index);
            self.found_work();
            return SleepOutcome::Work(job);
        }
        if shared.siblings.any() && shared.siblings_have_work() {
            // The final scan covers the siblings too (see
            // `Shared::wake_a_sibling`): search again, then help.
            shared.sleep.retract_sleep(self.index);
            return SleepOutcome::Retracted;
        }
        if self.broadcast_pending() {
            // After the fence of `announce_sleep`, against the
            // broadcaster's push → fence → wake (`scheduler/broadcast.rs`).
            shared.sleep.retract_sleep(self.index);
            self.found_work();
            return SleepOutcome::Broadcasts;
        }
        if shared.is_closed_and_drained() {
            shared.sleep.retract_sleep(self.index);
            shared.sleep.end_searching();
            // Wake the others so they see the drained pool too.
            shared.sleep.notify_all();
            return SleepOutcome::Drained;
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
                Parked::Expired => return SleepOutcome::Expired,
                // Kept for `min_workers`: a new keep-alive period.
                Parked::Kept => {
                    *idle_since = Some(Instant::now());
                    return SleepOutcome::Woken;
                }
            }
        }
        if self.adaptive.is_some() {
            self.after_wake();
        }
        shared.autoscale.note_woken();
        // Woken: we are counted as searching again.
        SleepOutcome::Woken
    }
}
