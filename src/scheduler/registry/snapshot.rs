//! The stats snapshot: `Pool::stats` and `Pool::worker_stats` read from
//! the shared counters (display figures, Relaxed).

use std::time::Duration;

use crate::scheduler::backpressure::Backpressure;
use crate::scheduler::registry::Shared;
use crate::stats::{Stats, WorkerState, WorkerStats};
use crate::sync::Ordering;

impl Shared {
    /// Each worker slot's figures (see `Pool::worker_stats`).
    pub(crate) fn worker_stats(&self) -> Vec<WorkerStats> {
        let shared = self;
        // Only slots that have or had a thread (see `Pool::worker_stats`).
        shared.slots[..shared.started_high().min(shared.slots.len())]
            .iter()
            .enumerate()
            .map(|(index, slot)| {
                let counters = &slot.counters;
                // Relaxed: display figures, each individually coherent.
                let state = if !counters.live.load(Ordering::Relaxed) {
                    WorkerState::NotStarted
                } else if shared.sleep.is_suspended(index) {
                    WorkerState::Suspended
                } else if shared.sleep.is_sleeping(index) {
                    WorkerState::Sleeping
                } else if counters.busy.load(Ordering::Relaxed) {
                    WorkerState::Busy
                } else {
                    WorkerState::Idle
                };
                WorkerStats {
                    index,
                    state,
                    tasks_run: counters.completed.load(Ordering::Relaxed),
                    busy_time: counters.busy_time.read(),
                    steals: counters.stolen.load(Ordering::Relaxed),
                    parks: counters.parks.load(Ordering::Relaxed),
                    home_core: counters.home_core.load(Ordering::Relaxed).checked_sub(1),
                    pinned: counters.pinned.load(Ordering::Relaxed),
                    pin_releases: counters.pin_releases.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// A snapshot of the pool's figures (see `Pool::stats`).
    pub(crate) fn stats(&self) -> Stats {
        let shared = self;
        // Completed first, then submitted: see `Shared::all_tasks_done`, this
        // order keeps `completed <= submitted` in the snapshot.
        let completed = shared.completed();
        let withdrawn = shared.withdrawn();
        let cancelled = shared.cancelled();
        let submitted = shared.submitted().max(completed + withdrawn + cancelled);
        let mut live_workers = 0;
        let mut busy_workers = 0;
        let mut sleeping_workers = 0;
        let mut panicked = 0;
        let mut stolen = 0;
        let mut busy_time = Duration::ZERO;
        for (index, slot) in shared.slots.iter().enumerate() {
            let counters = &slot.counters;
            // Relaxed: figures for display, each individually coherent.
            let live = counters.live.load(Ordering::Relaxed);
            live_workers += usize::from(live);
            busy_workers += usize::from(live && counters.busy.load(Ordering::Relaxed));
            sleeping_workers += usize::from(live && shared.sleep.is_sleeping(index));
            panicked += counters.panicked.load(Ordering::Relaxed);
            stolen += counters.stolen.load(Ordering::Relaxed);
            busy_time += counters.busy_time.read();
        }
        // Handed back by `shutdown_now`: neither queued nor completed.
        let pending = usize::try_from(submitted - completed - withdrawn - cancelled).unwrap_or(usize::MAX);
        let backpressure = shared.backpressure.as_ref();
        let capacity = shared.capacity();
        Stats {
            capacity,
            free_capacity: capacity.saturating_sub(busy_workers),
            max_capacity: shared.config.max_capacity,
            blocked_submitters: backpressure.map_or(0, Backpressure::blocked),
            wait_count: backpressure.map_or(0, |b| b.wait_count.load(Ordering::Relaxed)),
            wait_time: backpressure.map_or(Duration::ZERO, Backpressure::wait_time),
            rejected: shared.rejected.load(Ordering::Relaxed),
            live_states: 0,
            blocked_workers: shared.blocked_workers(),
            autoscale_steps: shared.autoscale.steps(),
            live_workers,
            busy_workers,
            sleeping_workers,
            queued: pending.saturating_sub(busy_workers),
            submitted,
            completed,
            withdrawn,
            cancelled,
            panicked,
            stolen,
            busy_time,
            queue_delay: shared
                .config
                .task_observer
                .as_ref()
                .and_then(|observer| observer.delays.as_ref())
                .map(|delays| delays.snapshot()),
            hook_panics: shared.config.reporter.hook_panics(),
        }
    }
}
