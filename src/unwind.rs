//! Panics crossing the pool: handing a payload to the panic handler, reading
//! its message, and dropping a payload that nobody will see.
//!
//! A panic payload is user data: its `Drop` may itself panic. Dropped during
//! an unwind, that would abort the process, and dropped on a worker it would
//! kill the worker; so every payload the pool discards goes through
//! [`drop_payload`], which contains such a panic.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

use crate::config::PanicHandlerFn;
use crate::observe::report::{self, Level, Reporter, Topic};
use crate::sync::StdArc;

/// A panic payload.
pub(crate) type Payload = Box<dyn Any + Send>;

/// Drops a payload nobody will see; a panic in its `Drop` is contained.
#[cold]
pub(crate) fn drop_payload(payload: Payload) {
    if let Err(second) = panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        // The payload's drop panicked with a payload of its own: give up on
        // that one without running its destructor (it could panic again,
        // and there is nowhere left to contain it).
        std::mem::forget(second);
    }
}

/// Drops whatever is left of a panic result (`Err(payload)`) safely.
#[inline]
pub(crate) fn discard<T>(result: Result<T, Payload>) {
    if let Err(payload) = result {
        drop_payload(payload);
    }
}

/// Re-raises the first panic of two results, after dropping the second
/// payload safely; otherwise returns both values.
pub(crate) fn first_panic_of<A, B>(a: Result<A, Payload>, b: Result<B, Payload>) -> (A, B) {
    match (a, b) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(payload), b) => {
            discard(b);
            panic::resume_unwind(payload)
        }
        (Ok(a), Err(payload)) => {
            drop(a);
            panic::resume_unwind(payload)
        }
    }
}

/// Gives a panic payload to `handler`; without one, the panic was already
/// printed by std's panic hook, so the pool only reports that it was one of
/// its tasks (see `observe/report.rs`), never the message again. A handler
/// that panics, or a payload whose drop panics, is contained: the calling
/// worker keeps running. `reporter` is the pool's, `None` where no pool is
/// at hand (a process-wide one is used).
#[cold]
pub(crate) fn deliver_panic(handler: Option<&StdArc<PanicHandlerFn>>, reporter: Option<&Reporter>, payload: Payload) {
    let reporter = reporter.unwrap_or(&report::PROCESS);
    match handler {
        Some(handler) => {
            let handler = handler.clone();
            if let Err(second) = panic::catch_unwind(AssertUnwindSafe(move || handler(payload))) {
                reporter.report(
                    Topic::HandlerPanicked,
                    Level::Error,
                    format_args!("the panic handler itself panicked: {}", panic_message(&*second)),
                );
                drop_payload(second);
            }
        }
        None => {
            if cfg!(feature = "log") {
                reporter.report(
                    Topic::TaskPanicked,
                    Level::Error,
                    format_args!("a task panicked: {}", panic_message(&*payload)),
                );
            } else {
                reporter.report(
                    Topic::TaskPanicked,
                    Level::Error,
                    format_args!(
                        "a task panicked (the panic hook printed it above); set a panic handler to \
                         receive the payloads, Stats::panicked counts them"
                    ),
                );
            }
            drop_payload(payload);
        }
    }
}

/// The message of a panic payload, when it is a string.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        message
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message
    } else {
        "Box<dyn Any>"
    }
}
