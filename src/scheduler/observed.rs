//! The observed paths: a worker's thread hooks, and running a task in a
//! pool with task hooks or queue delays measured. Everything here is out of
//! line and reached through one test of a field of the pool's config, so a
//! pool without hooks runs none of it (observe/README.md).

use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::observe::event::{self, TaskEvent};
use crate::observe::report::{Level, Topic};
use crate::observe::user_hooks::TaskObserver;
use crate::scheduler::job::JobRef;
use crate::scheduler::registry::{Shared, WorkerCounters};
use crate::scheduler::stamp;
use crate::scheduler::worker::WorkerThread;
use crate::unwind::{deliver_panic, drop_payload, panic_message};

/// Runs a user hook; a panic is contained, counted and reported like a
/// task's (to the panic handler if there is one), and the worker goes on.
#[cold]
pub(crate) fn contain(shared: &Shared, which: &str, hook: impl FnOnce()) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(hook)) {
        let reporter = &shared.config.reporter;
        // Relaxed: a display figure.
        reporter.hook_panics.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        reporter.report(
            Topic::HookPanicked,
            Level::Warn,
            format_args!("the {which} hook panicked: {}", panic_message(&*payload)),
        );
        match &shared.config.panic_handler {
            Some(_) => deliver_panic(shared.config.panic_handler.as_ref(), Some(reporter), payload),
            None => drop_payload(payload),
        }
    }
}

/// On a new worker thread, before its first task.
#[cold]
#[inline(never)]
pub(crate) fn thread_started(shared: &Shared, index: usize) {
    if let Some(hook) = &shared.config.thread_hooks.on_start {
        contain(shared, "on_thread_start", || hook(index));
    }
}

/// On a worker thread, after its last task.
#[cold]
#[inline(never)]
pub(crate) fn thread_stopped(shared: &Shared, index: usize) {
    if let Some(hook) = &shared.config.thread_hooks.on_stop {
        contain(shared, "on_thread_stop", || hook(index));
    }
}

/// Runs one job on `worker` in an observed pool: records its queue delay,
/// calls the task hooks around it, and counts it done only after
/// `on_task_end` returned (so `wait_idle` returns after the hooks too).
/// Jobs that are not tasks (the halves of a `join`) get no hooks.
#[cold]
#[inline(never)]
pub(crate) fn execute_observed(worker: &WorkerThread, observer: &TaskObserver, job: JobRef) {
    let shared = &*worker.shared;
    let (job, queued_for) = stamp::unstamp(job);
    // SAFETY: jobs in this pool's queues are alive until run or discarded.
    if !unsafe { job.try_start() } {
        // Cancelled through its handle: dropped unrun, no task hooks.
        shared.drop_cancelled(job);
        return;
    }
    let counted = job.is_counted();
    if let (Some(delays), Some(waited)) = (&observer.delays, queued_for) {
        delays.record(worker.index, waited);
    }
    let mut event = TaskEvent {
        worker: worker.index,
        queued_for: queued_for.unwrap_or(Duration::ZERO),
        ran_for: Duration::ZERO,
        panicked: false,
    };
    if counted {
        if let Some(hook) = &observer.on_start {
            contain(shared, "on_task_start", || hook(&event));
        }
    }
    let started = observer.on_end.is_some().then(Instant::now);
    let outer = event::begin_watch();
    // SAFETY: as in `Shared::run_job`: jobs in this pool's queues are alive
    // until run.
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| unsafe { job.execute() }));
    let caught_inside = event::end_watch(outer);
    event.panicked = caught_inside || outcome.is_err();
    if let Err(payload) = outcome {
        worker.note_panic();
        shared.handle_panic(payload);
    }
    if !counted {
        return;
    }
    if let (Some(hook), Some(started)) = (&observer.on_end, started) {
        event.ran_for = started.elapsed();
        contain(shared, "on_task_end", || hook(&event));
    }
    if let Some(backpressure) = &shared.backpressure {
        backpressure.release(1);
    }
    WorkerCounters::bump(&shared.slots[worker.index].counters.completed);
}
