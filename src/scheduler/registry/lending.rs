//! Lent slots: a worker that blocks (inside `block_in_place`, or found
//! blocked by the autoscaler's monitor) lends its place in the capacity to
//! another worker until it runs again.
//!
//! The capacity the workers obey is computed from three numbers, all
//! changed under the control lock:
//!
//! * the **base**: what `tune` (or the autoscaler) last asked for;
//! * the **lent** slots: workers whose slot is lent now (each counted once,
//!   whatever the reasons: an explicit `block_in_place` and a detected block
//!   of the same worker lend one slot);
//! * the **ceiling** lent slots may reach: `max_capacity`, or the
//!   autoscaler's maximum while one is set;
//! * the **anticipated** slots: lent by the autoscaler ahead of detection
//!   while blocked workers and queued work show that new workers block as
//!   the old ones did (so the capacity doubles per look instead of growing
//!   by one per detection).
//!
//! `capacity = max(base, min(base + lent + anticipated, ceiling))`, and every change goes
//! through `tune_locked`, so lending is a `tune` in disguise and inherits
//! its invariants (I12–I19: registry/README.md, worker/README.md): a grow
//! resumes suspended workers and starts threads for queued work, a shrink
//! lets the workers above the new value finish their task and suspend by
//! the normal rules.

use crate::scheduler::registry::threads::Control;
use crate::scheduler::registry::Shared;
use crate::sync::{lock, Arc, AtomicUsize, MutexGuard, Ordering};

/// Why a slot is lent (bits of a slot's `lending` word).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum LendReason {
    /// The task called `block_in_place`.
    Explicit = 1,
    /// The autoscaler's monitor saw the worker busy and off the CPU.
    Detected = 2,
}

/// The numbers the capacity is computed from (see the module docs). Every
/// field changes only under the control lock; Relaxed reads elsewhere are
/// display figures or hints.
pub(crate) struct Lending {
    base: AtomicUsize,
    lent: AtomicUsize,
    ceiling: AtomicUsize,
    anticipated: AtomicUsize,
}

impl Lending {
    pub(crate) fn new(capacity: usize, max_capacity: usize) -> Self {
        Lending {
            base: AtomicUsize::new(capacity),
            lent: AtomicUsize::new(0),
            ceiling: AtomicUsize::new(max_capacity),
            anticipated: AtomicUsize::new(0),
        }
    }

    /// The capacity these numbers give.
    fn capacity(&self) -> usize {
        // Relaxed: read under the control lock, which orders every write.
        let base = self.base.load(Ordering::Relaxed);
        let lent = self.lent.load(Ordering::Relaxed);
        let ceiling = self.ceiling.load(Ordering::Relaxed);
        let anticipated = self.anticipated.load(Ordering::Relaxed);
        base.max((base + lent + anticipated).min(ceiling))
    }

    /// Drops the slots lent ahead of detection (applied by the caller's
    /// next change, under the control lock).
    pub(crate) fn clear_anticipated(&self) {
        // Relaxed: under the control lock.
        self.anticipated.store(0, Ordering::Relaxed);
    }

    /// Slots lent ahead of detection now.
    pub(crate) fn anticipated(&self) -> usize {
        // Relaxed: a hint (the monitor's own figure).
        self.anticipated.load(Ordering::Relaxed)
    }

    /// The capacity `tune` or the autoscaler asked for last.
    pub(crate) fn base(&self) -> usize {
        // Relaxed: a hint outside the lock (the monitor's starting point).
        self.base.load(Ordering::Relaxed)
    }

    /// Slots lent now.
    pub(crate) fn lent(&self) -> usize {
        // Relaxed: a display figure.
        self.lent.load(Ordering::Relaxed)
    }
}

impl Shared {
    /// Sets the base capacity (already validated) and applies it: `tune`.
    pub(crate) fn set_base_capacity_locked(this: &Arc<Self>, control: &mut MutexGuard<'_, Control>, base: usize) {
        // Relaxed: under the control lock.
        this.lending.base.store(base, Ordering::Relaxed);
        Shared::apply_lending_locked(this, control);
    }

    /// Sets how far lent slots may raise the capacity (the autoscaler's
    /// maximum, or `max_capacity`) and applies it.
    pub(crate) fn set_lending_ceiling_locked(this: &Arc<Self>, control: &mut MutexGuard<'_, Control>, ceiling: usize) {
        let ceiling = ceiling.min(this.config.max_capacity);
        // Relaxed: under the control lock.
        this.lending.ceiling.store(ceiling, Ordering::Relaxed);
        Shared::apply_lending_locked(this, control);
    }

    /// Sets the slots lent ahead of detection (the autoscaler) and applies it.
    pub(crate) fn set_anticipated(this: &Arc<Self>, anticipated: usize) {
        let mut control = lock(&this.control);
        // Relaxed: under the control lock.
        this.lending.anticipated.store(anticipated, Ordering::Relaxed);
        Shared::apply_lending_locked(this, &mut control);
    }

    /// Moves the capacity to what the lending numbers give, if it differs.
    fn apply_lending_locked(this: &Arc<Self>, control: &mut MutexGuard<'_, Control>) {
        let capacity = this.lending.capacity();
        let previous = this.capacity();
        if capacity == previous {
            return;
        }
        Shared::tune_locked(this, control, capacity);
        // `tune` on a closed pool only sets the capacity for `reboot`. A
        // lent slot on a closed pool that still has work is different: the
        // lender blocks, the queue must drain without it, so the slot gets
        // a thread (found as a loom deadlock: `block_in_place_racing_shutdown`).
        // `tune_locked` fenced after recounting `missing`, so a submit that
        // raced it either is seen by this scan or starts the thread itself.
        if capacity > previous && this.is_closed() && !this.is_closed_and_drained() && this.has_queued_work() {
            let _ = Shared::start_all_locked(this, control, true);
        }
    }

    /// Lends slot `index`'s place for `reason`. Returns false if the slot
    /// was already lent for that reason (nothing changes).
    pub(crate) fn lend_slot(this: &Arc<Self>, index: usize, reason: LendReason) -> bool {
        let mut control = lock(&this.control);
        Shared::lend_slot_locked(this, &mut control, index, reason)
    }

    pub(crate) fn lend_slot_locked(
        this: &Arc<Self>,
        control: &mut MutexGuard<'_, Control>,
        index: usize,
        reason: LendReason,
    ) -> bool {
        let word = &this.slots[index].counters.lending;
        // Relaxed: changed only under the control lock we hold.
        let bits = word.load(Ordering::Relaxed);
        if bits & reason as usize != 0 {
            return false;
        }
        word.store(bits | reason as usize, Ordering::Relaxed);
        if bits == 0 {
            this.lending.lent.fetch_add(1, Ordering::Relaxed);
            Shared::apply_lending_locked(this, control);
        }
        true
    }

    /// Takes slot `index`'s place back for `reason`. Returns false if it
    /// was not lent for that reason.
    pub(crate) fn take_back_slot(this: &Arc<Self>, index: usize, reason: LendReason) -> bool {
        let mut control = lock(&this.control);
        Shared::take_back_slot_locked(this, &mut control, index, reason)
    }

    pub(crate) fn take_back_slot_locked(
        this: &Arc<Self>,
        control: &mut MutexGuard<'_, Control>,
        index: usize,
        reason: LendReason,
    ) -> bool {
        let word = &this.slots[index].counters.lending;
        // Relaxed: changed only under the control lock we hold.
        let bits = word.load(Ordering::Relaxed);
        if bits & reason as usize == 0 {
            return false;
        }
        let left = bits & !(reason as usize);
        word.store(left, Ordering::Relaxed);
        if left == 0 {
            this.lending.lent.fetch_sub(1, Ordering::Relaxed);
            Shared::apply_lending_locked(this, control);
        }
        true
    }

    /// Whether slot `index` is lent now (for any reason).
    pub(crate) fn is_lent(&self, index: usize) -> bool {
        // Relaxed: a display figure or a hint.
        self.slots[index].counters.lending.load(Ordering::Relaxed) != 0
    }

    /// Whether slot `index` is lent for `reason` now.
    pub(crate) fn is_lent_for(&self, index: usize, reason: LendReason) -> bool {
        // Relaxed: a hint; the decision is re-made under the lock.
        self.slots[index].counters.lending.load(Ordering::Relaxed) & reason as usize != 0
    }

    /// Workers whose slot is lent now (`Stats::blocked_workers`).
    pub(crate) fn blocked_workers(&self) -> usize {
        (0..self.slots.len()).filter(|&index| self.is_lent(index)).count()
    }
}
