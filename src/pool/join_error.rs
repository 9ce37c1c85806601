//! `JoinError`: why a spawned task has no result.

use std::any::Any;
use std::error::Error;
use std::fmt;

/// Why a [`JoinHandle`](crate::JoinHandle) (or a [`TaskSet`](crate::TaskSet))
/// has no result for its task: the task was cancelled before it started, or
/// it panicked.
///
/// A task is cancelled by [`JoinHandle::cancel`](crate::JoinHandle::cancel),
/// by dropping its [`TaskSet`](crate::TaskSet), or by
/// [`Pool::shutdown_now`](crate::Pool::shutdown_now) when the
/// [`Task`](crate::Task) it handed back is dropped instead of run.
///
/// `JoinError` is `Send + Sync + 'static`, so `?` turns it into
/// `Box<dyn Error + Send + Sync>` or `anyhow::Error`. A panic payload
/// (`Box<dyn Any + Send>`) is not `Sync`; the error gives it out only by
/// value ([`JoinError::into_panic`]), never behind a shared reference, which
/// is what lets the error itself be `Sync`. Its message (when the payload is
/// a string, as `panic!` makes it) is copied out when the error is made, for
/// `Display`.
///
/// # Examples
///
/// ```
/// let pool = stealpool::Pool::builder().capacity(1).build()?;
/// let bad = pool.spawn(|| -> u8 { panic!("oops") })?;
/// let error = bad.join().unwrap_err();
/// assert!(error.is_panic());
/// assert_eq!(error.to_string(), "task panicked: oops");
/// let payload = error.into_panic();
/// assert_eq!(payload.downcast_ref::<&str>(), Some(&"oops"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JoinError {
    repr: Repr,
}

enum Repr {
    Cancelled,
    Panic {
        payload: Payload,
        /// The payload's text, if it is a `&str` or a `String`.
        message: Option<String>,
    },
}

/// A panic payload that leaves only by value.
struct Payload(Box<dyn Any + Send>);

// SAFETY: `Payload` offers no access through a shared reference: nothing
// reads the box behind `&JoinError` (`Debug` and `Display` use the copied
// message), and the box leaves only by value, through `into_panic`, which
// takes the error by value. Sharing `&JoinError` between threads therefore
// never shares the (possibly non-`Sync`) payload.
unsafe impl Sync for Payload {}

impl JoinError {
    /// The task was cancelled before it started.
    pub(crate) fn cancelled() -> JoinError {
        JoinError { repr: Repr::Cancelled }
    }

    /// The task panicked with `payload`.
    pub(crate) fn panic(payload: Box<dyn Any + Send>) -> JoinError {
        let message = payload
            .downcast_ref::<&'static str>()
            .map(|text| (*text).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned());
        JoinError {
            repr: Repr::Panic {
                payload: Payload(payload),
                message,
            },
        }
    }

    /// Whether the task was cancelled before it started (it never ran).
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(1).build()?;
    /// let (release, wait) = std::sync::mpsc::channel::<()>();
    /// pool.submit(move || { let _ = wait.recv(); })?;   // occupies the only worker
    /// let queued = pool.spawn(|| 1)?;
    /// assert!(queued.cancel());
    /// release.send(())?;
    /// assert!(queued.join().unwrap_err().is_cancelled());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// Whether the task panicked.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(1).build()?;
    /// let error = pool.spawn(|| panic!("boom"))?.join().unwrap_err();
    /// assert!(error.is_panic() && !error.is_cancelled());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic { .. })
    }

    /// The task's panic payload, for [`std::panic::resume_unwind`].
    ///
    /// # Panics
    ///
    /// If the task was cancelled (check [`JoinError::is_panic`] first, or use
    /// [`JoinError::try_into_panic`]).
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(1).build()?;
    /// let error = pool.spawn(|| std::panic::panic_any(7u32))?.join().unwrap_err();
    /// assert_eq!(error.into_panic().downcast_ref::<u32>(), Some(&7));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_panic(self) -> Box<dyn Any + Send> {
        match self.try_into_panic() {
            Ok(payload) => payload,
            Err(_) => panic!("JoinError::into_panic called on a cancelled task's error"),
        }
    }

    /// The task's panic payload, or the error back if the task was
    /// cancelled.
    ///
    /// # Errors
    ///
    /// The error itself when it is a cancellation.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(1).build()?;
    /// let error = pool.spawn(|| panic!("boom"))?.join().unwrap_err();
    /// match error.try_into_panic() {
    ///     Ok(payload) => assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom")),
    ///     Err(cancelled) => unreachable!("{cancelled}"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send>, JoinError> {
        match self.repr {
            Repr::Panic { payload, .. } => Ok(payload.0),
            Repr::Cancelled => Err(self),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => f.write_str("task was cancelled before it started"),
            Repr::Panic {
                message: Some(message), ..
            } => write!(f, "task panicked: {message}"),
            Repr::Panic { message: None, .. } => f.write_str("task panicked"),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => f.write_str("JoinError::Cancelled"),
            Repr::Panic { message, .. } => f.debug_tuple("JoinError::Panic").field(message).finish(),
        }
    }
}

impl Error for JoinError {}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn join_error_is_send_sync_static() {
        fn check<E: Error + Send + Sync + 'static>() {}
        check::<JoinError>();
    }

    #[test]
    fn messages_and_payloads() {
        let cancelled = JoinError::cancelled();
        assert!(cancelled.is_cancelled() && !cancelled.is_panic());
        assert_eq!(cancelled.to_string(), "task was cancelled before it started");
        assert!(cancelled.try_into_panic().unwrap_err().is_cancelled());
        let owned = JoinError::panic(Box::new(String::from("owned")));
        assert_eq!(
            format!("{owned} / {owned:?}"),
            "task panicked: owned / JoinError::Panic(Some(\"owned\"))"
        );
        let opaque = JoinError::panic(Box::new(5u8));
        assert_eq!(opaque.to_string(), "task panicked");
        assert_eq!(opaque.into_panic().downcast_ref::<u8>(), Some(&5));
    }
}
