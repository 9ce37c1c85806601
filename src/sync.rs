//! The synchronisation facade.
//!
//! Every atomic, lock, condition variable and thread the protocol uses is
//! imported from here. Under `--cfg loom` the same names resolve to
//! [loom]'s model-checked versions, so the protocol in `scheduler/sleep`,
//! `scheduler/latch.rs` and `scheduler/registry` is explored by the models in
//! `tests/loom.rs` without a line of it changing.
//!
//! `StdArc` and `OnceLock` are `std`'s under loom too (below, with why). A
//! few more things come from `std` directly, each where it is used with a
//! word on why: measurements that are not part of the protocol (adaptive
//! pinning's wake stamps), the process-wide core allocator, and the
//! thread-locals naming the current worker (loom's `thread_local!` under
//! loom, which the models reach) and the stranded-work drains (never
//! touched under loom: no thread start fails there).
//!
//! [loom]: https://docs.rs/loom

#[cfg(not(loom))]
mod imp {
    pub(crate) use std::sync::atomic::{
        fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
    };
    pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};
    pub(crate) use std::thread;

    /// A hint for a short busy-wait round.
    #[inline]
    pub(crate) fn spin_hint() {
        std::hint::spin_loop();
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::sync::atomic::{
        fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
    };
    pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
    pub(crate) use loom::thread;

    /// Under loom a spin must yield, or the model never lets the other thread run.
    #[inline]
    pub(crate) fn spin_hint() {
        loom::thread::yield_now();
    }
}

pub(crate) use imp::*;

/// `std`'s `Arc`, also under loom: for what the user hands in (closures,
/// hooks, panic handlers) and for handles whose reference counts are not
/// part of the protocol, so the models need not track them.
pub(crate) use std::sync::Arc as StdArc;

/// A cell set once (a slot's stealer, made with its first thread). Not
/// modelled: under loom every deque exists from the start, so it is set
/// before any model thread runs.
pub(crate) use std::sync::OnceLock;

/// What a lock or a wait returns, with poisoning ignored: the pool never
/// panics while holding one of its own locks, and user code never runs
/// under them, so a poisoned lock guards consistent data. This is the one
/// poison-ignoring helper: [`lock`], [`wait`] and [`wait_timeout`] apply it
/// to the facade's primitives, and the two `std` locks that stay outside
/// the facade (the autoscale monitor's state, which never runs under loom,
/// and the process-wide core usage, a `static`) call it directly.
pub(crate) fn unpoisoned<G>(result: std::sync::LockResult<G>) -> G {
    result.unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Locks a mutex, ignoring poisoning (see [`unpoisoned`]).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    unpoisoned(mutex.lock())
}

/// Waits on a condition variable, ignoring poisoning (see [`unpoisoned`]).
pub(crate) fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    unpoisoned(condvar.wait(guard))
}

/// Waits on a condition variable for at most `timeout`, ignoring poisoning.
pub(crate) fn wait_timeout<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: std::time::Duration,
) -> MutexGuard<'a, T> {
    unpoisoned(condvar.wait_timeout(guard, timeout)).0
}
