//! The hooks a user installs on a builder, and what a running pool keeps of
//! them.

use std::fmt;

use crate::observe::event::TaskEvent;
use crate::observe::queue_delay::DelayWindow;
use crate::sync::StdArc;

/// `on_thread_start` / `on_thread_stop`: called with the worker's index.
pub(crate) type ThreadHookFn = dyn Fn(usize) + Send + Sync;
/// `on_task_start` / `on_task_end`.
pub(crate) type TaskHookFn = dyn Fn(&TaskEvent) + Send + Sync;

/// What a builder has been told about observing its pool.
#[derive(Clone, Default)]
pub(crate) struct UserHooks {
    pub(crate) on_thread_start: Option<StdArc<ThreadHookFn>>,
    pub(crate) on_thread_stop: Option<StdArc<ThreadHookFn>>,
    pub(crate) on_task_start: Option<StdArc<TaskHookFn>>,
    pub(crate) on_task_end: Option<StdArc<TaskHookFn>>,
    pub(crate) measure_queue_delay: bool,
}

impl fmt::Debug for UserHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |hook: bool| if hook { "set" } else { "none" };
        f.debug_struct("Hooks")
            .field("on_thread_start", &set(self.on_thread_start.is_some()))
            .field("on_thread_stop", &set(self.on_thread_stop.is_some()))
            .field("on_task_start", &set(self.on_task_start.is_some()))
            .field("on_task_end", &set(self.on_task_end.is_some()))
            .field("measure_queue_delay", &self.measure_queue_delay)
            .finish()
    }
}

/// The thread hooks of a running pool.
#[derive(Default)]
pub(crate) struct ThreadHooks {
    pub(crate) on_start: Option<StdArc<ThreadHookFn>>,
    pub(crate) on_stop: Option<StdArc<ThreadHookFn>>,
}

/// What a running pool keeps to observe its tasks; it exists only when a
/// task hook is set or queue delays are measured, so an unobserved pool's
/// run path tests one `Option` and goes on.
pub(crate) struct TaskObserver {
    pub(crate) on_start: Option<StdArc<TaskHookFn>>,
    pub(crate) on_end: Option<StdArc<TaskHookFn>>,
    /// The queue-delay window, when measured.
    pub(crate) delays: Option<DelayWindow>,
}

impl UserHooks {
    /// Splits the settings into what a running pool keeps.
    pub(crate) fn into_parts(self, slots: usize) -> (ThreadHooks, Option<Box<TaskObserver>>) {
        let threads = ThreadHooks {
            on_start: self.on_thread_start,
            on_stop: self.on_thread_stop,
        };
        let observed = self.on_task_start.is_some() || self.on_task_end.is_some() || self.measure_queue_delay;
        let tasks = observed.then(|| {
            Box::new(TaskObserver {
                on_start: self.on_task_start,
                on_end: self.on_task_end,
                delays: self.measure_queue_delay.then(|| DelayWindow::new(slots)),
            })
        });
        (threads, tasks)
    }
}
