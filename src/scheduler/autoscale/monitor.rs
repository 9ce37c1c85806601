//! The monitor thread: every tick it looks at the busy workers (blocked or
//! computing?) and the queue (how long do tasks wait?), and lends slots or
//! moves the base capacity; while the pool is idle it waits for a poke.

use std::sync::atomic::{fence, Ordering};
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use super::cpu::{self, IdleCores};
use super::queue_rule::{QueueRule, Window};
use super::{AutoscaleCell, MonitorState};
use crate::config::Autoscale;
use crate::scheduler::registry::lending::LendReason;
use crate::scheduler::registry::Shared;
use crate::sync::{lock, unpoisoned, Arc};

/// How often the monitor looks while workers are busy.
const TICK: Duration = Duration::from_millis(1);
/// How often it looks while workers are busy and none looks blocked.
const CALM_TICK: Duration = Duration::from_millis(4);
/// How often it looks while nothing runs but the capacity is still above
/// its starting point (it shrinks it).
const IDLE_TICK: Duration = Duration::from_millis(20);
/// How long a busy worker must stay off the CPU to count as blocked.
const GRACE: Duration = Duration::from_millis(1);
/// How long the system's answer on whether a worker waits holds.
const RECHECK: Duration = Duration::from_millis(10);
/// A worker is off the CPU over a tick if it used less than this share of it.
const OFF_CPU_SHARE: f64 = 0.25;
/// The shortest window over which the queue delay is estimated.
const MIN_WINDOW: Duration = Duration::from_millis(20);

/// What the monitor remembers about one slot between ticks.
#[derive(Clone, Copy, Default)]
struct SlotSample {
    cpu: Option<Duration>,
    completed: u64,
    /// When the current busy, off-CPU (or, without CPU clocks, busy without
    /// progress) stretch began.
    stuck_since: Option<Instant>,
    /// When the system was last asked whether the worker waits (rather
    /// than runs or waits for a core), and its answer.
    checked: Option<(Instant, bool)>,
}

struct Monitor {
    shared: Arc<Shared>,
    slots: Vec<SlotSample>,
    last_tick: Instant,
    idle_cores: IdleCores,
    cores: usize,
    window_start: Instant,
    window_completed: u64,
    rule: QueueRule,
}

/// The monitor thread's body: runs until the pool closes or the
/// autoscaler is turned off and the slots it lent are back, then takes
/// back whatever it still lent.
pub(super) fn run(shared: Arc<Shared>) {
    let now = Instant::now();
    let mut idle_cores = IdleCores::new();
    // The first reading: the next one, a window later, has a span.
    let _ = idle_cores.sample();
    let mut monitor = Monitor {
        slots: vec![SlotSample::default(); shared.slots.len()],
        last_tick: now,
        idle_cores,
        cores: num_cpus::get().max(1),
        window_start: now,
        window_completed: shared.completed(),
        rule: QueueRule::default(),
        shared,
    };
    let owner = monitor.shared.clone();
    let cell = &owner.autoscale;
    let mut state = unpoisoned(cell.state.lock());
    loop {
        state = monitor.watch(cell, state);
        // Leaving with the pool closed, or turned off with nothing left to
        // drain: nothing stays lent.
        drop(state);
        {
            let shared = &monitor.shared;
            let mut control = lock(&shared.control);
            Shared::take_back_detected_locked(shared, &mut control);
        }
        state = unpoisoned(cell.state.lock());
        // A `set_autoscale` that turned it on again meanwhile found this
        // monitor running and started none: it goes on.
        if state.settings.is_none() || monitor.shared.is_closed() {
            break;
        }
    }
    state.running = false;
    drop(state);
    cell.wake.notify_all();
}

impl Monitor {
    /// The monitor's loop: looks, waits, goes dormant while the pool idles;
    /// turned off, drains. Returns (with the state lock held) once the pool
    /// closes or, turned off, nothing lent is left.
    fn watch<'a>(
        &mut self,
        cell: &'a AutoscaleCell,
        mut state: MutexGuard<'a, MonitorState>,
    ) -> MutexGuard<'a, MonitorState> {
        while !self.shared.is_closed() {
            state.poked = false;
            let Some(settings) = state.settings else {
                // Turned off: the slots lent to blocked workers go back as
                // those workers return.
                drop(state);
                let lent = self.drain();
                state = unpoisoned(cell.state.lock());
                if !lent {
                    return state;
                }
                if !state.poked {
                    state = wait_timeout(cell, state, CALM_TICK);
                }
                continue;
            };
            drop(state);
            let pause = self.tick(settings);
            state = unpoisoned(cell.state.lock());
            match pause {
                Some(pause) => {
                    if !state.poked {
                        state = wait_timeout(cell, state, pause);
                    }
                }
                None => {
                    // Dormant: store, fence, look again (see `note_woken`).
                    cell.dormant.store(true, Ordering::Relaxed);
                    fence(Ordering::SeqCst);
                    if self.pool_is_idle() {
                        while !state.poked && state.settings.is_some() && !self.shared.is_closed() {
                            state = cell.wake.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
                        }
                    }
                    cell.dormant.store(false, Ordering::Relaxed);
                    self.restart_clocks();
                }
            }
        }
        state
    }

    /// With the autoscaler off: takes back the slot of each worker seen
    /// blocked that has returned (no longer busy, or a task finished since
    /// the last look). Returns whether any slot is still lent for a block.
    fn drain(&mut self) -> bool {
        let shared = self.shared.clone();
        let mut lent = false;
        for index in 0..shared.started_high() {
            if !shared.is_lent_for(index, LendReason::Detected) {
                continue;
            }
            let counters = &shared.slots[index].counters;
            // Relaxed: samples; a stale one delays the take-back by a look.
            let busy = counters.live.load(Ordering::Relaxed) && counters.busy.load(Ordering::Relaxed);
            let completed = counters.completed.load(Ordering::Relaxed);
            if !busy || completed != self.slots[index].completed {
                Shared::take_back_slot(&shared, index, LendReason::Detected);
            } else {
                lent = true;
            }
        }
        lent
    }

    /// One look. Returns how long to wait before the next, or `None` when
    /// the pool is idle and nothing is left to undo (go dormant).
    fn tick(&mut self, settings: Autoscale) -> Option<Duration> {
        let now = Instant::now();
        let span = now.duration_since(self.last_tick);
        self.last_tick = now;
        let queued = self.shared.has_queued_work();
        let busy = self.look_at_workers(settings, now, span, queued);
        self.queue_rule(settings, now);
        let start = settings.clamp(self.shared.autoscale.start.load(Ordering::Relaxed));
        let lending = &self.shared.lending;
        let settled = lending.base() <= start && lending.lent() == 0 && lending.anticipated() == 0;
        // Looking every millisecond costs the monitor about 3 % of a core
        // on the development VM (measured with 1,000 spins of 2 ms): only
        // while a worker looks stuck or a slot is lent; otherwise every
        // `CALM_TICK` (a blocked worker is then seen within that, plus the
        // grace period).
        let watchful = lending.lent() > 0
            || lending.anticipated() > 0
            || self.slots.iter().any(|sample| sample.stuck_since.is_some());
        if busy > 0 || queued {
            Some(if watchful { TICK } else { CALM_TICK })
        } else if !settled || !self.pool_is_idle() {
            Some(IDLE_TICK)
        } else {
            None
        }
    }

    /// Samples every worker; lends the slots of those blocked while work
    /// waits, takes back the slots of those running
    /// again. Returns the busy workers.
    fn look_at_workers(&mut self, settings: Autoscale, now: Instant, span: Duration, queued: bool) -> usize {
        let shared = self.shared.clone();
        let mut busy_count = 0;
        let mut blocked_count = 0;
        let mut to_lend = Vec::new();
        for index in 0..shared.started_high() {
            let counters = &shared.slots[index].counters;
            // Relaxed: samples; a stale one delays a decision by a tick.
            let busy = counters.live.load(Ordering::Relaxed) && counters.busy.load(Ordering::Relaxed);
            let completed = counters.completed.load(Ordering::Relaxed);
            let cpu = cpu::thread_cpu_time(shared.autoscale.clock(index));
            let sample = &mut self.slots[index];
            let previous = *sample;
            sample.cpu = cpu;
            sample.completed = completed;
            if !busy || shared.is_lent_for(index, LendReason::Explicit) || !settings.detect_blocking {
                sample.stuck_since = None;
                // A worker caught between two tasks while work waits keeps
                // its lent slot (it is about to block again, most likely);
                // one with nothing to do gives it back.
                let between_tasks = !busy && queued && settings.detect_blocking;
                if shared.is_lent_for(index, LendReason::Detected) && !between_tasks {
                    Shared::take_back_slot(&shared, index, LendReason::Detected);
                }
                busy_count += usize::from(busy);
                continue;
            }
            busy_count += 1;
            let stuck = match (cpu, previous.cpu) {
                // Off the CPU for most of the tick.
                (Some(now_cpu), Some(before)) => {
                    now_cpu.saturating_sub(before).as_secs_f64() < span.as_secs_f64() * OFF_CPU_SHARE
                }
                (Some(_), None) => false,
                // No CPU clock: no task finished since the last tick.
                (None, _) => completed == previous.completed,
            };
            if stuck {
                // The stretch began at the previous tick.
                sample.stuck_since.get_or_insert(now - span);
            } else {
                sample.stuck_since = None;
            }
            let blocked = sample
                .stuck_since
                .is_some_and(|since| now.duration_since(since) >= GRACE);
            let lent = shared.is_lent_for(index, LendReason::Detected);
            // Off the CPU because it waits, not because others took its core
            // (preempted on a busy machine): asked of the system at most
            // every `RECHECK` per worker (a file read per worker per look
            // would cost percents of a core), lent or not, so a worker
            // lent while it slept and now computes, starved of a core,
            // gives its slot back.
            let waiting = blocked && {
                let due = sample.checked.map_or(true, |(at, _)| now.duration_since(at) >= RECHECK);
                if due {
                    let answer = cpu::thread_is_waiting(shared.autoscale.tid(index)) != Some(false);
                    sample.checked = Some((now, answer));
                }
                sample.checked.map_or(true, |(_, answer)| answer)
            };
            blocked_count += usize::from(waiting);
            if waiting && !lent {
                to_lend.push(index);
            } else if !waiting && lent {
                Shared::take_back_slot(&shared, index, LendReason::Detected);
            }
        }
        // Lending keeps the workers that compute at the base capacity, so
        // it needs no idle core; it needs work for the extra worker.
        if queued {
            for index in to_lend {
                Shared::lend_slot(&shared, index, LendReason::Detected);
            }
        }
        self.anticipate(settings, queued, busy_count, blocked_count);
        busy_count
    }

    /// Lends slots ahead of detection while work waits and workers block:
    /// with `busy` workers of which `blocked` are off the CPU, keeping
    /// `base` of them running takes about `base × busy / (busy − blocked)`
    /// slots (all of them, up to the ceiling, when every busy worker
    /// blocks), approached at most by doubling per look, never lowered
    /// while the blocking lasts, and given back by halves once no work
    /// waits or nothing blocks. Without it, each new
    /// worker lends its slot only once it is seen blocked itself: the
    /// capacity grew by one slot per look (measured: 92 ms from 2 to 64
    /// slots under 1 ms sleeps, 1 ms looks).
    fn anticipate(&self, settings: Autoscale, queued: bool, busy: usize, blocked: usize) {
        let shared = &self.shared;
        let lending = &shared.lending;
        let (base, lent, anticipated) = (lending.base(), lending.lent(), lending.anticipated());
        let wanted = if queued && blocked > 0 && settings.detect_blocking {
            let running = busy.saturating_sub(blocked);
            let target = if running == 0 {
                settings.max
            } else {
                (base * busy).div_ceil(running)
            };
            let capacity = shared.capacity();
            let target = target.min(capacity.saturating_mul(2)).min(settings.max);
            // Never less while the blocking lasts: workers not yet seen
            // blocked count as running and would make it swing.
            target.saturating_sub(base + lent).max(anticipated)
        } else if busy == 0 && !queued {
            // Nothing runs and nothing waits: the blocking phase is over.
            0
        } else {
            anticipated / 2
        };
        if wanted != anticipated {
            Shared::set_anticipated(shared, wanted);
        }
    }

    /// Whether another thread would find a core: the machine's idle cores
    /// (Linux), or else fewer workers computing than cores.
    fn cores_idle(&mut self, running: usize) -> bool {
        match self.idle_cores.sample() {
            Some(idle) => idle >= 0.5,
            // Where the system says (Linux), wait for its first answer.
            None if cfg!(any(target_os = "linux", target_os = "android")) => false,
            None => running < self.cores,
        }
    }

    /// Estimates the queue delay over the window and lets the rule
    /// (`queue_rule.rs`) move the base capacity.
    fn queue_rule(&mut self, settings: Autoscale, now: Instant) {
        let window = now.duration_since(self.window_start);
        if window < settings.target_queue_delay.max(MIN_WINDOW) {
            return;
        }
        let shared = self.shared.clone();
        let completed = shared.completed();
        let finished = completed.saturating_sub(self.window_completed);
        self.window_start = now;
        self.window_completed = completed;
        let stats = shared.stats();
        let waiting = stats.queued as f64;
        // Little's law: a task queued now waits about queue length / rate.
        let rate = finished as f64 / window.as_secs_f64();
        let delay = if waiting == 0.0 {
            0.0
        } else if rate == 0.0 {
            f64::INFINITY
        } else {
            waiting / rate
        };
        let base = shared.lending.base();
        let start = settings.clamp(shared.autoscale.start.load(Ordering::Relaxed));
        let running = stats.busy_workers.saturating_sub(stats.blocked_workers);
        let over_target = delay > settings.target_queue_delay.as_secs_f64();
        // Idle cores matter only when it would grow (the read is a file).
        let cores_idle = over_target && self.cores_idle(running);
        let window = Window {
            over_target,
            cores_idle,
            base,
            start,
        };
        if let Some(moved) = self.rule.step(settings, now, window) {
            self.move_base(moved);
        }
    }

    fn move_base(&self, base: usize) {
        let shared = &self.shared;
        let mut control = lock(&shared.control);
        // Re-read under the lock: a `tune` may have moved it meanwhile.
        if shared.lending.base() != base {
            Shared::set_base_capacity_locked(shared, &mut control, base);
            // Relaxed: a display figure.
            shared.autoscale.steps.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every live worker parked and nothing queued (after the dormant
    /// fence: see `AutoscaleCell::note_woken`).
    fn pool_is_idle(&self) -> bool {
        let shared = &self.shared;
        let parked = (0..shared.started_high()).all(|index| {
            // Relaxed: ordered by the caller's fence.
            !shared.slots[index].counters.live.load(Ordering::Relaxed)
                || shared.sleep.is_sleeping(index)
                || shared.sleep.is_suspended(index)
        });
        parked && !shared.has_queued_work()
    }

    /// After a dormant wait: the samples are stale.
    fn restart_clocks(&mut self) {
        let now = Instant::now();
        self.last_tick = now;
        self.window_start = now;
        self.window_completed = self.shared.completed();
        for sample in &mut self.slots {
            *sample = SlotSample::default();
        }
    }
}

/// Waits on the monitor's condition variable for at most `pause`.
fn wait_timeout<'a>(
    cell: &AutoscaleCell,
    state: MutexGuard<'a, MonitorState>,
    pause: Duration,
) -> MutexGuard<'a, MonitorState> {
    cell.wake
        .wait_timeout(state, pause)
        .map_or_else(|poisoned| poisoned.into_inner().0, |(state, _)| state)
}
