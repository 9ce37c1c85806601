//! Where the pool's own messages go: the `log` facade (the default `log`
//! feature), or else stderr, each kind of message once per pool.
//!
//! The pool has few things to say, all on cold paths: the OS refused a
//! thread, `thread_name` failed, a task panicked with no panic handler
//! installed, the panic handler or a hook panicked, a worker failed (a
//! bug). Through `log`, the user's logger decides what is shown, each
//! panic a record under the target `stealpool`. Without `log`, a line on
//! stderr for the first event of each kind and silence after it: a pool
//! whose tasks all panic must not flood stderr (`Stats` counts every
//! event). A thread that cannot start is one fact however often the pool
//! retries it (every submit, every slot of a `tune(200)`), so it is said
//! once per pool through either sink.
//!
//! This is the pool's one "say it once" mechanism: a bit per [`Topic`] in
//! the pool's [`Reporter`], set with one atomic `fetch_or`, so any thread
//! may report without holding a lock.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// How serious a message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    Error,
    Warn,
}

/// The kinds of message, one bit each (for "once per pool").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Topic {
    /// A task panicked and no panic handler was set.
    TaskPanicked = 1,
    /// The panic handler panicked.
    HandlerPanicked = 2,
    /// A thread or task hook panicked.
    HookPanicked = 4,
    /// A worker's loop panicked (a bug in the pool).
    WorkerFailed = 8,
    /// The OS refused a worker thread.
    SpawnRefused = 16,
    /// `thread_name` panicked; the default name was used.
    NamePanicked = 32,
    /// `thread_name` returned a name the OS cannot take (a NUL byte); the
    /// default name was used.
    NameInvalid = 64,
    /// The OS refused the autoscale monitor's thread; the pool runs on at
    /// the capacity it has.
    MonitorRefused = 128,
}

impl Topic {
    /// Whether each event of this kind is a `log` record of its own. A
    /// panic is an event of its own (the user's logger may want each, and
    /// `Stats` counts each). A thread the OS refuses, or a name that cannot
    /// be used, is one fact retried on every start: once per pool through
    /// either sink, or a refused `tune(200)` would log a line per slot.
    fn each_event_logged(self) -> bool {
        match self {
            Topic::TaskPanicked | Topic::HandlerPanicked | Topic::HookPanicked | Topic::WorkerFailed => true,
            Topic::SpawnRefused | Topic::NamePanicked | Topic::NameInvalid | Topic::MonitorRefused => false,
        }
    }
}

/// What a pool has reported: the kinds said on stderr, and the hook panics.
#[derive(Default, Debug)]
pub(crate) struct Reporter {
    said: AtomicU32,
    /// Hooks (thread or task) that panicked.
    pub(crate) hook_panics: AtomicU64,
}

impl Reporter {
    /// Reports one event of kind `topic`: a `log` record per event for the
    /// kinds that log each (see [`Topic`]), else a message for the first
    /// event of its kind in this pool only.
    #[cold]
    #[inline(never)]
    pub(crate) fn report(&self, topic: Topic, level: Level, message: fmt::Arguments<'_>) {
        if cfg!(feature = "log") && topic.each_event_logged() {
            emit(level, message);
        } else {
            // Relaxed: only decides who prints; nothing else is ordered on it.
            let bit = topic as u32;
            if self.said.fetch_or(bit, Ordering::Relaxed) & bit == 0 {
                emit(level, format_args!("{message} (reported once per pool)"));
            }
        }
    }

    /// Hook panics so far.
    pub(crate) fn hook_panics(&self) -> u64 {
        // Relaxed: a display figure.
        self.hook_panics.load(Ordering::Relaxed)
    }
}

/// Panics outside any pool's reach (a `JoinHandle` dropped with its task's
/// panic unseen) are reported through this process-wide reporter.
pub(crate) static PROCESS: Reporter = Reporter {
    said: AtomicU32::new(0),
    hook_panics: AtomicU64::new(0),
};

/// Writes one message: a `log` record, or a line on stderr.
#[cold]
fn emit(level: Level, message: fmt::Arguments<'_>) {
    #[cfg(feature = "log")]
    {
        let level = match level {
            Level::Error => log::Level::Error,
            Level::Warn => log::Level::Warn,
        };
        log::log!(target: "stealpool", level, "{message}");
    }
    #[cfg(not(feature = "log"))]
    {
        let _ = level;
        eprintln!("stealpool: {message}");
    }
}
