//! The idle accounting and the park/unpark protocol.
//!
//! One packed word counts the workers that are *searching* (looking for work
//! without having found any) and the workers that are *sleeping* (announced
//! and parked, or about to park). Every submit reads it once; the slow path
//! (actually waking somebody) scans the per-worker sleep states.
//!
//! The protocol, by the invariant each step keeps (I1–I5: their proofs and
//! the loom models that check them are in `README.md` beside this file; the
//! packed word is `counters.rs`):
//!
//! * I1, the submitter's side: a submitter publishes work, then
//!   `fence(SeqCst)`, then reads the word. It wakes one sleeper only if
//!   nobody is searching and somebody sleeps.
//! * I1, the sleeper's side: a worker announces sleep (searching → sleeping
//!   in one RMW), then `fence(SeqCst)` (and the heavy half of the
//!   asymmetric barrier, `barrier.rs`, which lets pushes from inside a task
//!   skip their fence), then re-scans every queue before parking.
//! * I2: whoever wins the CAS on a worker's sleep state (SLEEPING → AWAKE)
//!   does that worker's accounting: the waker on a wake, the worker itself
//!   when it retracts. A worker is never counted twice and a herd never
//!   wakes for one task: one submit wakes at most one worker.
//! * I3: a woken worker starts out searching. A searcher that finds work
//!   stops searching; if it was the last searcher, it fences and looks at
//!   the queues, and if work is still queued it notifies as a submitter
//!   would (the chain wake-up), so a burst fans out one worker at a time
//!   while a single task wakes a single worker.
//! * I5: resuming a suspended worker (`tune` growing, `close`) goes through
//!   the same accounting as a wake: the resumer wins the CAS out of
//!   SUSPENDED and counts the worker as searching.

pub(crate) mod barrier;
mod counters;

use std::sync::atomic::{AtomicU64 as StdAtomicU64, Ordering as StdOrdering};
use std::time::{Duration, Instant};

use counters::{AtomicCounts, Counts};
use crossbeam_utils::CachePadded;

use crate::scheduler::parker::Parker;
use crate::sync::{fence, Arc, AtomicU8, AtomicUsize, Ordering};

/// A worker's sleep state, one per worker (`SleepSlot::state`). Not a
/// latch's state: a worker blocked on a latch (`LatchState::OwnerBlocked`)
/// stays `Awake` here.
#[repr(u8)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum WorkerState {
    /// Running, searching, or on its way to sleep (not yet announced).
    Awake = 0,
    /// Announced asleep: counted as sleeping in the sleep word, parked or
    /// about to park; woken only through `Sleep::wake` (I2).
    Sleeping = 1,
    /// Parked because the worker's index is at or above the capacity: not
    /// counted as sleeping, never woken by a submit, only by `resume`.
    Suspended = 2,
    /// A waker won the CAS out of `Sleeping` or `Suspended` and is updating
    /// the counts on the worker's behalf; `Awake` (and an unpark) follows at
    /// once. The worker never acts as "counted searching" before that (see
    /// `settle`): otherwise its `end_searching` could run before the waker's
    /// increment and drive the count below zero (`README.md`, I2).
    Waking = 3,
}

/// A [`WorkerState`] in an atomic byte: the same operations, typed.
struct AtomicWorkerState(AtomicU8);

impl AtomicWorkerState {
    fn new(state: WorkerState) -> Self {
        AtomicWorkerState(AtomicU8::new(state as u8))
    }

    #[inline]
    fn decode(byte: u8) -> WorkerState {
        match byte {
            0 => WorkerState::Awake,
            1 => WorkerState::Sleeping,
            2 => WorkerState::Suspended,
            _ => WorkerState::Waking,
        }
    }

    #[inline]
    fn load(&self, order: Ordering) -> WorkerState {
        Self::decode(self.0.load(order))
    }

    #[inline]
    fn store(&self, state: WorkerState, order: Ordering) {
        self.0.store(state as u8, order);
    }

    #[inline]
    fn compare_exchange(
        &self,
        current: WorkerState,
        new: WorkerState,
        success: Ordering,
        failure: Ordering,
    ) -> Result<WorkerState, WorkerState> {
        self.0
            .compare_exchange(current as u8, new as u8, success, failure)
            .map(Self::decode)
            .map_err(Self::decode)
    }
}

/// One worker's sleep state and parking spot.
struct SleepSlot {
    state: CachePadded<AtomicWorkerState>,
    parker: Arc<Parker>,
    /// When the last waker released this worker, in nanoseconds since
    /// `Sleep::epoch` (0: never), for adaptive pinning. A std atomic even
    /// under loom: a measurement, ordered by the state word, not part of
    /// the protocol.
    woken_at: StdAtomicU64,
}

/// The pool's idle accounting.
pub(crate) struct Sleep {
    counters: AtomicCounts,
    slots: Box<[SleepSlot]>,
    /// Workers parked as SUSPENDED (for stats).
    suspended: AtomicUsize,
    /// Whether wakers stamp the time (adaptive pinning measures wake-ups).
    stamp_wakes: bool,
    /// Whether the asymmetric barrier is available (`barrier.rs`): pushes
    /// from inside the pool then skip their fence, and a worker going to
    /// sleep or leaving pays the heavy half instead.
    light_pushes: bool,
    epoch: Instant,
}

impl Sleep {
    pub(crate) fn new(workers: usize, stamp_wakes: bool) -> Self {
        let slots = (0..workers)
            .map(|_| SleepSlot {
                state: CachePadded::new(AtomicWorkerState::new(WorkerState::Awake)),
                parker: Arc::new(Parker::new()),
                woken_at: StdAtomicU64::new(0),
            })
            .collect();
        Sleep {
            counters: AtomicCounts::new(),
            slots,
            suspended: AtomicUsize::new(0),
            stamp_wakes,
            light_pushes: barrier::available(),
            epoch: Instant::now(),
        }
    }

    /// How long ago a waker released worker `index` (called by the worker
    /// itself right after it was woken), if wakers stamp the time.
    #[cold]
    pub(crate) fn wake_delay(&self, index: usize, now: Instant) -> Option<Duration> {
        // Relaxed: the waker stored it before its Release store of AWAKE,
        // which our Acquire load of the state (the park loop) has seen.
        let stamp = self.slots[index].woken_at.load(StdOrdering::Relaxed);
        if stamp == 0 {
            return None;
        }
        let since_epoch = u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX);
        Some(Duration::from_nanos(since_epoch.saturating_sub(stamp - 1)))
    }

    /// The parker of worker `index` (latches park their owner on it too).
    pub(crate) fn parker(&self, index: usize) -> &Arc<Parker> {
        &self.slots[index].parker
    }

    /// How many workers are sleeping now (a snapshot: tests, and adaptive
    /// pinning asking whether the pool has an idle core to move to).
    pub(crate) fn sleeping(&self) -> usize {
        // Relaxed: a hint, not part of the protocol.
        self.counters.load(Ordering::Relaxed).sleeping() as usize
    }

    /// Whether any worker is searching or sleeping (a hint: a pending
    /// `join` publishes its work when somebody could take it).
    #[inline]
    pub(crate) fn has_idle_workers(&self) -> bool {
        // Relaxed: a hint; a wrong answer costs a push or some parallelism,
        // never liveness (the joiner runs its own private halves).
        self.counters.load(Ordering::Relaxed) != Counts::NONE
    }

    /// Whether worker `index` is announced asleep (a snapshot, for stats).
    pub(crate) fn is_sleeping(&self, index: usize) -> bool {
        self.slots[index].state.load(Ordering::Relaxed) == WorkerState::Sleeping
    }

    /// A waker took worker `index` out of SLEEPING/SUSPENDED: wait (on the
    /// parker; the waker unparks after its store) until it has done the
    /// accounting and stored AWAKE.
    fn settle(&self, index: usize) {
        let slot = &self.slots[index];
        // Acquire pairs with the waker's Release store of AWAKE: its count
        // update is visible before we act as counted.
        while slot.state.load(Ordering::Acquire) == WorkerState::Waking {
            slot.parker.park();
        }
    }

    /// The waker's side: after winning the CAS to WAKING and updating the
    /// counts, release the worker.
    fn finish_wake(&self, index: usize) {
        let slot = &self.slots[index];
        if self.stamp_wakes {
            // On the waker's slow path (an unpark follows): one clock read.
            let nanos = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
            // Relaxed: published by the Release store below.
            slot.woken_at.store(nanos + 1, StdOrdering::Relaxed);
        }
        // Release: the count update before it is visible to the worker's
        // Acquire load in `settle` or its park loop.
        slot.state.store(WorkerState::Awake, Ordering::Release);
        slot.parker.unpark();
    }

    /// Whether worker `index` is suspended (a snapshot, for stats).
    pub(crate) fn is_suspended(&self, index: usize) -> bool {
        self.slots[index].state.load(Ordering::Relaxed) == WorkerState::Suspended
    }

    /// A worker ran out of local work and starts searching.
    pub(crate) fn begin_searching(&self) {
        // SeqCst RMW + fence: the worker's next reads of the queues must not
        // be satisfied from before a submitter that read "nobody searching"
        // (I1, the sleeper's side of the submitter's fence; `README.md`).
        self.counters.add_searching(Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// A searching worker stops searching: it found work, or it leaves the
    /// search (to suspend, to run a sibling pool's task, to exit).
    ///
    /// Returns true when it was the last searcher. A submitter that saw it
    /// searching woke nobody, so the caller must then hand the search on
    /// (I1, I3): `fence(SeqCst)`, look whether work is still queued, and if
    /// so notify as a submitter would. Nothing is woken here: a worker that
    /// took the only queued task wakes nobody.
    pub(crate) fn end_searching(&self) -> bool {
        // SeqCst: part of the single order the wake-up proof reasons about
        // (the caller's fence follows it before the queues are read).
        let previous = self.counters.sub_searching(Ordering::SeqCst);
        debug_assert!(previous.searching() > 0, "end_searching without begin_searching");
        previous.searching() == 1
    }

    /// I1, the sleeper's side, first half: searching → sleeping. The caller must re-scan all
    /// queues afterwards and then either [`Sleep::retract_sleep`] or
    /// [`Sleep::park_until_woken`].
    ///
    /// `started` reads how many worker slots ever had a thread (SeqCst,
    /// `Shared::started_high`), for the barrier's shortcut below.
    pub(crate) fn announce_sleep(&self, index: usize, may_race_a_light_push: impl FnOnce(u64) -> bool) {
        // Relaxed store: published to wakers by the SeqCst RMW right after.
        self.slots[index].state.store(WorkerState::Sleeping, Ordering::Relaxed);
        // searching - 1, sleeping + 1 in one step (we are searching).
        let before = self.counters.searching_to_sleeping(Ordering::SeqCst);
        // The crossing-point fence: between announcing sleep and the final
        // scan of the queues (`README.md`, I1).
        fence(Ordering::SeqCst);
        // The heavy half only where a light push may be racing us: the
        // caller reads, after our fence, whether some worker that is not
        // idle (`before`'s count of idle workers against those started)
        // has ever pushed from inside (`README.md`, "Inside pushes and the
        // asymmetric barrier").
        if self.light_pushes && may_race_a_light_push(before.sleeping() + before.searching()) {
            barrier::heavy();
        }
    }
    /// The heavy half of the asymmetric barrier (`barrier.rs`) for a
    /// worker leaving for good, after its SeqCst fence: from here on its
    /// reads see every push whose pusher read the sleep word without
    /// seeing this worker's last write (`README.md`, I1, "Inside pushes
    /// and the asymmetric barrier").
    #[inline]
    pub(crate) fn pair_with_light_pushes(&self) {
        if self.light_pushes {
            barrier::heavy();
        }
    }

    /// The final scan found something: take the announcement back. The
    /// worker is searching afterwards, whoever did the accounting.
    ///
    /// Returns whether the worker retracted it itself (false: a waker had
    /// already woken it).
    pub(crate) fn retract_sleep(&self, index: usize) -> bool {
        // I2: if we win the CAS we undo our own accounting; if a waker
        // won it, the waker already moved us to searching.
        if self.slots[index]
            .state
            .compare_exchange(
                WorkerState::Sleeping,
                WorkerState::Awake,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            self.counters.sleeping_to_searching(Ordering::SeqCst);
            true
        } else {
            self.settle(index);
            false
        }
    }

    /// I1, the sleeper's side, second half: park until a waker moves us to AWAKE. The worker
    /// is counted as searching when this returns (the waker did that).
    pub(crate) fn park_until_woken(&self, index: usize) {
        let slot = &self.slots[index];
        // Acquire pairs with the waker's Release store of AWAKE
        // (`finish_wake`), so the work it published before waking us, and
        // its count update, are visible when we search again.
        while matches!(
            slot.state.load(Ordering::Acquire),
            WorkerState::Sleeping | WorkerState::Waking
        ) {
            slot.parker.park();
        }
    }

    /// As [`Sleep::park_until_woken`], but gives up at `deadline` (keep-alive).
    /// Returns true if woken, false on timeout (still announced asleep).
    pub(crate) fn park_until_woken_or(&self, index: usize, deadline: Instant) -> bool {
        let slot = &self.slots[index];
        // Acquire: as in `park_until_woken`.
        while matches!(
            slot.state.load(Ordering::Acquire),
            WorkerState::Sleeping | WorkerState::Waking
        ) {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            slot.parker.park_timeout(deadline - now);
        }
        true
    }

    /// Suspension, first half: the worker announces SUSPENDED. The caller
    /// then re-checks the capacity and the closed flag (after the fence) and
    /// either cancels or parks.
    pub(crate) fn announce_suspend(&self, index: usize) {
        // Relaxed store, published by the SeqCst RMW and fence that follow;
        // pairs with the fence in `Shared::tune`/`close` before their scans.
        self.slots[index].state.store(WorkerState::Suspended, Ordering::Relaxed);
        self.suspended.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Takes a suspension back. Returns true if the worker did it itself
    /// (it is not searching); false if a resumer got there first (it is
    /// counted as searching).
    pub(crate) fn cancel_suspend(&self, index: usize) -> bool {
        if self.slots[index]
            .state
            .compare_exchange(
                WorkerState::Suspended,
                WorkerState::Awake,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            self.suspended.fetch_sub(1, Ordering::SeqCst);
            true
        } else {
            self.settle(index);
            false
        }
    }

    /// Parks while suspended. Returns when resumed, or spuriously: callers
    /// loop, re-checking their conditions.
    pub(crate) fn park_while_suspended(&self, index: usize) {
        let slot = &self.slots[index];
        // Acquire pairs with the resumer's Release store of AWAKE.
        if matches!(
            slot.state.load(Ordering::Acquire),
            WorkerState::Suspended | WorkerState::Waking
        ) {
            slot.parker.park();
        }
    }

    /// As [`Sleep::park_while_suspended`], giving up at `deadline`
    /// (keep-alive); callers loop and re-check the clock.
    pub(crate) fn park_while_suspended_until(&self, index: usize, deadline: Instant) {
        let slot = &self.slots[index];
        // Acquire: as in `park_while_suspended`.
        if matches!(
            slot.state.load(Ordering::Acquire),
            WorkerState::Suspended | WorkerState::Waking
        ) {
            let now = Instant::now();
            if now < deadline {
                slot.parker.park_timeout(deadline - now);
            }
        }
    }

    /// Whether worker `index` is still suspended.
    pub(crate) fn still_suspended(&self, index: usize) -> bool {
        // Acquire: as in `park_while_suspended`.
        matches!(
            self.slots[index].state.load(Ordering::Acquire),
            WorkerState::Suspended | WorkerState::Waking
        )
    }

    /// Resumes worker `index` if it is suspended; it starts out searching.
    /// Goes through the same accounting as every other wake (I5).
    pub(crate) fn resume(&self, index: usize) -> bool {
        let slot = &self.slots[index];
        // Relaxed pre-check, as in `wake` (ordered by the callers' fences).
        if slot.state.load(Ordering::Relaxed) != WorkerState::Suspended {
            return false;
        }
        if slot
            .state
            .compare_exchange(
                WorkerState::Suspended,
                WorkerState::Waking,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            self.suspended.fetch_sub(1, Ordering::SeqCst);
            self.counters.add_searching(Ordering::SeqCst);
            self.finish_wake(index);
            true
        } else {
            false
        }
    }

    /// Wakes worker `index` if it sleeps: every wake goes through here
    /// (`notify_one_among`, `notify_all`, a shrink waking workers above the new
    /// capacity so they suspend). I2: the winner of the CAS moves the
    /// worker from sleeping to searching, then releases it (`finish_wake`).
    pub(crate) fn wake(&self, index: usize) -> bool {
        let slot = &self.slots[index];
        // Relaxed pre-check: scans (`notify_all`) write no line in vain; the
        // CAS decides.
        if slot.state.load(Ordering::Relaxed) != WorkerState::Sleeping {
            return false;
        }
        if slot
            .state
            .compare_exchange(
                WorkerState::Sleeping,
                WorkerState::Waking,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            self.counters.sleeping_to_searching(Ordering::SeqCst);
            self.finish_wake(index);
            true
        } else {
            false
        }
    }

    /// I1, the submitter's side: called after publishing work. Wakes one sleeper among the
    /// first `active` workers if nobody is searching for work already.
    /// Returns true when nobody is awake to take the work (nobody searching
    /// and nobody could be woken): the caller may have to start a thread.
    #[inline]
    pub(crate) fn notify_new_work(&self, active: usize) -> bool {
        // The crossing-point fence between publishing work and reading the
        // counts; pairs with the fence in `announce_sleep`.
        fence(Ordering::SeqCst);
        self.wake_one_unless_searching(active)
    }

    /// After a push from inside the pool (a task's `submit`, `spawn`, a
    /// scope spawn): the same decisions as [`Sleep::notify_new_work`], with
    /// the fence paid only where a searcher is trusted to carry the task.
    /// Without the asymmetric barrier it is `notify_new_work`.
    ///
    /// With it (`README.md`, I1, "Inside pushes and the asymmetric
    /// barrier"): every worker that parks or leaves after this read pairs
    /// its heavy half with our light one, so its re-scan sees the push, or
    /// this read sees it announced. Hence: nobody asleep → nobody to wake
    /// (true if nobody searches either, as the fenced path returns);
    /// sleepers and no searcher → wake one, as the fenced path would. Only
    /// "somebody sleeps and somebody searches" defers to a searcher, whose
    /// look after its search pairs with a fence, not with the heavy half:
    /// that case takes the fenced path.
    #[inline]
    pub(crate) fn notify_new_inside_work(&self, active: usize) -> bool {
        if !self.light_pushes {
            return self.notify_new_work(active);
        }
        barrier::light();
        // Relaxed: ordered against sleepers by the barrier pair above.
        let word = self.counters.load(Ordering::Relaxed);
        if word.sleeping() == 0 {
            return word.searching() == 0;
        }
        if word.searching() == 0 {
            return !self.notify_one_cold(active);
        }
        self.notify_new_work_cold(active)
    }

    #[cold]
    #[inline(never)]
    fn notify_new_work_cold(&self, active: usize) -> bool {
        self.notify_new_work(active)
    }

    /// I1's one exception (the join exemption), for the second half of a `join` pushed onto
    /// its owner's deque: the same decision without the fence. A sleeper
    /// this read misses (its announcement and our push crossing) costs
    /// parallelism, never liveness: the owner pops the job back itself, or
    /// waits for it by running queued work (`README.md`, "The join
    /// exemption"). The next push by the owner reads the word again and
    /// wakes that sleeper. Returns as [`Sleep::notify_new_work`].
    #[inline]
    pub(crate) fn notify_new_join_work(&self, active: usize) -> bool {
        // No fence: a hint (see above); the fenced path decides whenever a
        // lost wake-up could strand work.
        self.wake_one_unless_searching(active)
    }

    /// I1's decision, after the caller's fence (or, for a join half,
    /// none): wake one sleeper among the first `active` unless somebody
    /// searches. Returns true when nobody is awake to take the work.
    #[inline]
    fn wake_one_unless_searching(&self, active: usize) -> bool {
        // Relaxed: ordered by the caller's fence where one is needed.
        let word = self.counters.load(Ordering::Relaxed);
        if word.searching() > 0 {
            return false;
        }
        !(word.sleeping() > 0 && self.notify_one_cold(active))
    }

    #[cold]
    #[inline(never)]
    fn notify_one_cold(&self, active: usize) -> bool {
        self.notify_one_among(active)
    }

    /// Wakes one sleeping worker among the first `active` (those below the
    /// capacity: waking one above it would only make it suspend).
    fn notify_one_among(&self, active: usize) -> bool {
        // `wake` pre-checks with a Relaxed load, so the scan writes no line in
        // vain; the winner of its CAS does the accounting (I2).
        (0..active.min(self.slots.len())).any(|index| self.wake(index))
    }

    /// Wakes every sleeping worker (shutdown, exit chains).
    pub(crate) fn notify_all(&self) {
        // The fence orders the caller's state change (closing the pool, a
        // completed task) before the scan, pairing with `announce_sleep`.
        fence(Ordering::SeqCst);
        // One pass: every worker asleep now gets a wake (a worker that
        // announces sleep after our fence sees the caller's change in its
        // re-scan). O(slots), not O(slots x sleepers).
        for index in 0..self.slots.len() {
            self.wake(index);
        }
    }

    /// Resumes every suspended worker (closing the pool: they exit).
    pub(crate) fn resume_all(&self) {
        // As in `notify_all`, pairing with `announce_suspend`.
        fence(Ordering::SeqCst);
        for index in 0..self.slots.len() {
            self.resume(index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_counts_do_not_interfere() {
        let sleep = Sleep::new(2, false);
        sleep.begin_searching();
        sleep.begin_searching();
        let word = sleep.counters.load(Ordering::Relaxed);
        assert_eq!((word.searching(), word.sleeping()), (2, 0));
        sleep.announce_sleep(0, |_| true);
        let word = sleep.counters.load(Ordering::Relaxed);
        assert_eq!((word.searching(), word.sleeping()), (1, 1));
        sleep.retract_sleep(0);
        let word = sleep.counters.load(Ordering::Relaxed);
        assert_eq!((word.searching(), word.sleeping()), (2, 0));
        assert!(!sleep.end_searching(), "one searcher is left");
        assert!(sleep.end_searching(), "the last searcher");
        let word = sleep.counters.load(Ordering::Relaxed);
        assert_eq!((word.searching(), word.sleeping()), (0, 0));
    }

    #[test]
    fn a_wake_moves_exactly_one_sleeper_to_searching() {
        let sleep = Sleep::new(3, false);
        for i in 0..3 {
            sleep.begin_searching();
            sleep.announce_sleep(i, |_| true);
        }
        assert_eq!(sleep.sleeping(), 3);
        assert!(sleep.notify_one_among(3));
        let word = sleep.counters.load(Ordering::Relaxed);
        assert_eq!((word.searching(), word.sleeping()), (1, 2));
        // The woken worker's retract finds its state already AWAKE and does
        // not count itself a second time.
        sleep.retract_sleep(0);
        let word = sleep.counters.load(Ordering::Relaxed);
        assert_eq!((word.searching(), word.sleeping()), (1, 2));
        sleep.notify_all();
        assert_eq!(sleep.sleeping(), 0);
        assert!(!sleep.notify_one_among(3));
    }
}
