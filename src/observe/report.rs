//! Where the pool's own messages go: the `log` facade (the default `log`
//! feature), or else stderr, each kind of message once per pool.
//!
//! The pool has few things to say, all on cold paths: the OS refused a
//! thread, a task panicked with no panic handler installed, the panic
//! handler or a hook panicked, a worker failed (a bug). Through `log`, the
//! user's logger decides what is shown, each event a record under the
//! target `stealpool`. Without `log`, a line on stderr for the first event
//! of each kind and silence after it: a pool whose tasks all panic must not
//! flood stderr (`Stats` counts every event).

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
    TaskPanicked = 1,
    HandlerPanicked = 2,
    HookPanicked = 4,
    WorkerFailed = 8,
}

/// What a pool has reported: the kinds said on stderr, and the hook panics.
#[derive(Default, Debug)]
pub(crate) struct Reporter {
    said: AtomicU32,
    /// Hooks (thread or task) that panicked.
    pub(crate) hook_panics: AtomicU64,
}

impl Reporter {
    /// Reports one event of kind `topic`.
    #[cold]
    #[inline(never)]
    pub(crate) fn report(&self, topic: Topic, level: Level, message: fmt::Arguments<'_>) {
        if cfg!(feature = "log") {
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
pub(crate) fn emit(level: Level, message: fmt::Arguments<'_>) {
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
