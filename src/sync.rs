//! The synchronisation facade.
//!
//! Every atomic, lock, condition variable and thread the protocol uses is
//! imported from here. Under `--cfg loom` the same names resolve to
//! [loom]'s model-checked versions, so the protocol in `scheduler/sleep`,
//! `scheduler/latch.rs` and `scheduler/registry` is explored by the models in
//! `tests/loom.rs` without a line of it changing.
//!
//! A few things come from `std` directly on purpose, each where it is
//! used, with a word on why: measurements and hints that are not part of the
//! protocol (adaptive pinning's wake stamps and core counts), a pool's
//! public handles (`StdArc` for closures and hooks the user hands in, which
//! loom need not see), the process-wide core allocator, and the
//! thread-locals that name the current worker and the stranded-work drains
//! (loom's `thread_local!` for the first, which models reach).
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

/// Locks a mutex, ignoring poisoning: the pool never panics while holding one
/// of its own locks, and user code never runs under them.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Waits on a condition variable, ignoring poisoning (see [`lock`]).
pub(crate) fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    match condvar.wait(guard) {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Waits on a condition variable for at most `timeout`, ignoring poisoning.
pub(crate) fn wait_timeout<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: std::time::Duration,
) -> MutexGuard<'a, T> {
    match condvar.wait_timeout(guard, timeout) {
        Ok((guard, _)) => guard,
        Err(poisoned) => poisoned.into_inner().0,
    }
}
