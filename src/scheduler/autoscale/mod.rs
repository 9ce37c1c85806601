//! The autoscaler: a monitor thread per pool that lends the slots of
//! blocked workers and moves the capacity with the queue delay
//! (`monitor.rs`), what it reads from the OS (`cpu.rs`), and the state it
//! shares with the pool (here).
//!
//! The monitor is not part of the wake-up protocol: it only calls what
//! `tune` calls (under the control lock), so the capacity invariants hold
//! whatever it decides. It uses `std`'s locks and atomics directly (not
//! the loom facade): it never runs under loom, whose models drive the
//! lending it uses through `block_in_place` instead.

pub(crate) mod cpu;
mod monitor;
mod queue_rule;

use std::sync::atomic::{fence, AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::Autoscale;
use crate::error::TuneError;
use crate::scheduler::registry::lending::LendReason;
use crate::scheduler::registry::Shared;
use crate::sync::{lock, unpoisoned, Arc};

/// The autoscaler's state in a pool.
pub(crate) struct AutoscaleCell {
    /// Whether an autoscaler is set: pools without one pay one Relaxed load
    /// per wake-up from a park.
    enabled: AtomicBool,
    /// The monitor waits, with no timeout, for a poke (see `note_woken`).
    dormant: AtomicBool,
    state: Mutex<MonitorState>,
    /// Wakes the monitor: a poke, new settings, the pool closing.
    wake: Condvar,
    /// The starting point: the built capacity or the last `tune`.
    start: AtomicUsize,
    /// Moves of the queue-delay rule (`Stats::autoscale_steps`).
    steps: AtomicU64,
    /// Each slot's thread CPU clock (`cpu::NO_CLOCK`: none).
    clocks: Box<[AtomicI64]>,
    /// Each slot's kernel thread id (0: none).
    tids: Box<[AtomicI64]>,
}

pub(super) struct MonitorState {
    settings: Option<Autoscale>,
    /// A monitor thread is in its loop (it clears this, under this lock,
    /// as it leaves).
    running: bool,
    /// Set by a poke, cleared by the monitor as it wakes.
    poked: bool,
    thread: Option<JoinHandle<()>>,
}

impl AutoscaleCell {
    pub(crate) fn new(capacity: usize, slots: usize) -> Self {
        AutoscaleCell {
            enabled: AtomicBool::new(false),
            dormant: AtomicBool::new(false),
            state: Mutex::new(MonitorState {
                settings: None,
                running: false,
                poked: false,
                thread: None,
            }),
            wake: Condvar::new(),
            start: AtomicUsize::new(capacity),
            steps: AtomicU64::new(0),
            clocks: (0..slots).map(|_| AtomicI64::new(cpu::NO_CLOCK)).collect(),
            tids: (0..slots).map(|_| AtomicI64::new(0)).collect(),
        }
    }

    /// Moves of the queue-delay rule so far.
    pub(crate) fn steps(&self) -> u64 {
        // Relaxed: a display figure.
        self.steps.load(Ordering::Relaxed)
    }

    /// `tune` moved the starting point.
    pub(crate) fn set_start(&self, capacity: usize) {
        // Relaxed: a hint the monitor reads on its next tick.
        self.start.store(capacity, Ordering::Relaxed);
    }

    /// A worker woke from a park (or its thread started): a dormant monitor
    /// must look again. Store (the worker's state: awake) → fence → read
    /// `dormant`, against the monitor's store `dormant` → fence → read the
    /// workers' states: either the monitor sees the worker awake, or the
    /// worker sees the monitor dormant and pokes it.
    #[inline]
    pub(crate) fn note_woken(&self) {
        // Relaxed: a pool without an autoscaler never has a dormant monitor
        // to poke; one set later starts awake and looks for itself.
        if self.enabled.load(Ordering::Relaxed) {
            self.poke_if_dormant();
        }
    }

    #[cold]
    fn poke_if_dormant(&self) {
        // SeqCst: the fence of the pairing described in `note_woken`.
        fence(Ordering::SeqCst);
        if self.dormant.load(Ordering::Relaxed) {
            self.poke();
        }
    }

    /// Wakes the monitor now (new settings, the pool closing, a poke).
    pub(crate) fn poke(&self) {
        unpoisoned(self.state.lock()).poked = true;
        self.wake.notify_all();
    }

    /// Records slot `index`'s thread CPU clock (its own thread calls this).
    pub(crate) fn note_thread_started(&self, index: usize) {
        // Relaxed: the monitor reads it as a hint; a missed clock only
        // delays one sample.
        self.clocks[index].store(cpu::current_thread_clock(), Ordering::Relaxed);
        self.tids[index].store(cpu::current_thread_id(), Ordering::Relaxed);
        self.note_woken();
    }

    /// Slot `index`'s thread leaves: its clock goes with it.
    pub(crate) fn note_thread_leaving(&self, index: usize) {
        // Relaxed: as in `note_thread_started`.
        self.clocks[index].store(cpu::NO_CLOCK, Ordering::Relaxed);
        self.tids[index].store(0, Ordering::Relaxed);
    }

    fn tid(&self, index: usize) -> i64 {
        // Relaxed: as in `note_thread_started`.
        self.tids[index].load(Ordering::Relaxed)
    }

    fn clock(&self, index: usize) -> i64 {
        // Relaxed: see `note_thread_started`.
        self.clocks[index].load(Ordering::Relaxed)
    }

    /// Waits until the monitor thread (if any) has left, unless the pool was
    /// reopened meanwhile (a `reboot` keeps its monitor). Called by
    /// `join_threads`, never under the control lock.
    pub(crate) fn join_monitor(&self, closed: impl Fn() -> bool) {
        let mut state = unpoisoned(self.state.lock());
        loop {
            if !state.running {
                let thread = state.thread.take();
                drop(state);
                if let Some(thread) = thread {
                    let _ = thread.join();
                }
                return;
            }
            if !closed() {
                return;
            }
            state = unpoisoned(self.wake.wait_timeout(state, Duration::from_millis(10))).0;
        }
    }
}

impl Shared {
    /// Turns the autoscaler on with `setting`, or off (`None`: the capacity
    /// goes back to the base the autoscaler last held; the slots it lent to
    /// blocked workers go back as those workers return, see
    /// `monitor::Monitor::drain`).
    ///
    /// Everything is decided under the control lock, the settings included
    /// (control, then the monitor's state lock: the order `tune` and the
    /// monitor's drain use too), so a `tune` racing this call clamps by the
    /// bounds in force when it takes the lock, never by stale ones.
    pub(crate) fn set_autoscale(this: &Arc<Self>, setting: Option<Autoscale>) -> Result<(), TuneError> {
        let max_capacity = this.config.max_capacity;
        if let Some(scale) = setting.filter(|scale| !scale.fits(max_capacity)) {
            return Err(TuneError::InvalidAutoscale {
                min: scale.min,
                max: scale.max,
                max_capacity,
            });
        }
        let cell = &this.autoscale;
        let mut control = lock(&this.control);
        match setting {
            Some(scale) => {
                Shared::set_lending_ceiling_locked(this, &mut control, scale.max);
                let start = cell.start.load(Ordering::Relaxed);
                Shared::set_base_capacity_locked(this, &mut control, scale.clamp(start));
            }
            None => {
                // The base stays where the autoscaler left it (always
                // inside its bounds: `tune` clamps while it is on). The
                // slots lent ahead of detection go at once; those lent to
                // workers seen blocked stay until each worker returns (the
                // monitor drains them and then leaves), under the old
                // ceiling, so they never raise the capacity past where it
                // was. With none lent, the ceiling is `max_capacity` now.
                this.lending.clear_anticipated();
                let base = this.lending.base();
                Shared::set_base_capacity_locked(this, &mut control, base);
                if !this.any_detected_lend() {
                    Shared::set_lending_ceiling_locked(this, &mut control, max_capacity);
                }
            }
        }
        let mut state = unpoisoned(cell.state.lock());
        state.settings = setting;
        // Relaxed: see `note_woken`; also read by the drain under the
        // control lock we hold.
        cell.enabled.store(setting.is_some(), Ordering::Relaxed);
        if setting.is_some() && !state.running && !this.is_closed() {
            Shared::spawn_monitor(this, &mut state);
        }
        state.poked = true;
        drop(state);
        drop(control);
        cell.wake.notify_all();
        Ok(())
    }

    /// `tune` under the control lock: the starting point moves to
    /// `capacity`, and the base to it, clamped into the autoscaler's bounds
    /// while one is on (the monitor would otherwise take a base outside
    /// them as its own, or take seconds to walk it back).
    pub(crate) fn tune_base_locked(
        this: &Arc<Self>,
        control: &mut crate::sync::MutexGuard<'_, crate::scheduler::registry::threads::Control>,
        capacity: usize,
    ) {
        let cell = &this.autoscale;
        cell.set_start(capacity);
        // The settings change only under the control lock we hold.
        let base = unpoisoned(cell.state.lock())
            .settings
            .map_or(capacity, |scale| scale.clamp(capacity));
        Shared::set_base_capacity_locked(this, control, base);
    }

    /// Whether the monitor lent a slot to a blocked worker that still holds it.
    fn any_detected_lend(&self) -> bool {
        (0..self.slots.len()).any(|index| self.is_lent_for(index, LendReason::Detected))
    }

    /// Starts the monitor of a pool with an autoscaler after `reboot`.
    pub(crate) fn restart_monitor(this: &Arc<Self>) {
        let mut state = unpoisoned(this.autoscale.state.lock());
        if state.settings.is_some() && !state.running && !this.is_closed() {
            Shared::spawn_monitor(this, &mut state);
        }
    }

    fn spawn_monitor(this: &Arc<Self>, state: &mut MonitorState) {
        #[cfg(not(loom))]
        {
            if let Some(old) = state.thread.take() {
                // It left its loop (`running` is false): joining is short.
                let _ = old.join();
            }
            let shared = this.clone();
            let spawned = std::thread::Builder::new()
                .name("stealpool-scale".into())
                .spawn(move || monitor::run(shared));
            match spawned {
                Ok(thread) => {
                    state.running = true;
                    state.thread = Some(thread);
                }
                // The pool runs on at the capacity it has: autoscaling is
                // an optimisation, and the pool's messages say why it is off.
                Err(error) => this.config.reporter.report(
                    crate::observe::report::Topic::MonitorRefused,
                    crate::observe::report::Level::Warn,
                    format_args!("could not start the autoscale monitor: {error}"),
                ),
            }
        }
        #[cfg(loom)]
        let _ = (this, state);
    }

    /// Takes back every slot the monitor lent; with the autoscaler off,
    /// lent slots may again raise the capacity up to `max_capacity`.
    pub(crate) fn take_back_detected_locked(
        this: &Arc<Self>,
        control: &mut crate::sync::MutexGuard<'_, crate::scheduler::registry::threads::Control>,
    ) {
        this.lending.clear_anticipated();
        for index in 0..this.slots.len() {
            if this.is_lent_for(index, LendReason::Detected) {
                Shared::take_back_slot_locked(this, control, index, LendReason::Detected);
            }
        }
        Shared::raise_ceiling_if_off_locked(this, control);
    }

    /// With the autoscaler off and no slot lent by its monitor any more,
    /// the ceiling of lent slots is `max_capacity` again.
    pub(crate) fn raise_ceiling_if_off_locked(
        this: &Arc<Self>,
        control: &mut crate::sync::MutexGuard<'_, crate::scheduler::registry::threads::Control>,
    ) {
        // Relaxed: `enabled` is written under the control lock we hold.
        if !this.autoscale.enabled.load(Ordering::Relaxed) && !this.any_detected_lend() {
            Shared::set_lending_ceiling_locked(this, control, this.config.max_capacity);
        }
    }
}
