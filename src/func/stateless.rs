//! The core of a `FuncPool` built without per-worker state
//! ([`FuncPoolBuilder::build`](crate::FuncPoolBuilder::build)): the
//! function and the argument slots, and nothing to look up per call.
//!
//! A stateful core (`core.rs`) must find the running worker's state for
//! every argument (a thread-local read, a check that the worker is one of
//! its own pool's, a borrow flag); a stateless one calls the function
//! directly.

use std::time::Duration;

use crate::func::core::FuncCoreOf;
use crate::func::slots::ArgSlots;
use crate::hooks::WorkerHooks;
use crate::sync::StdArc;

/// The function and the argument slots. The inner pool's hooks hold it (as
/// they hold a stateful core), so it lives as long as any worker that may
/// run one of its jobs, even when a task kept a handle to the inner pool.
pub(crate) struct StatelessCore<A, F> {
    slots: ArgSlots<A>,
    func: F,
}

impl<A, F> StatelessCore<A, F>
where
    A: Send + 'static,
    F: Fn(A) + Send + Sync + 'static,
{
    /// A core whose slots run arguments through `func`.
    pub(crate) fn new(func: F) -> StdArc<Self> {
        StdArc::new_cyclic(|me| StatelessCore {
            // As in `FuncCore::new`: the address is fixed inside the `Arc`.
            slots: ArgSlots::new(Self::run_one, me.as_ptr() as *const ()),
            func,
        })
    }

    /// Runs one argument.
    ///
    /// # Safety
    /// `core` must point to a live `StatelessCore<A, F>` (the slots' owner).
    unsafe fn run_one(core: *const (), arg: A) {
        // SAFETY: forwarded from the caller.
        let core = unsafe { &*(core as *const Self) };
        (core.func)(arg);
    }
}

impl<A, F> FuncCoreOf<A> for StatelessCore<A, F>
where
    A: Send + 'static,
    F: Fn(A) + Send + Sync + 'static,
{
    fn slots(&self) -> &ArgSlots<A> {
        &self.slots
    }

    fn live_states(&self) -> usize {
        0
    }
}

impl<A, F> WorkerHooks for StatelessCore<A, F>
where
    A: Send + 'static,
    F: Fn(A) + Send + Sync + 'static,
{
    fn idle_interval(&self) -> Option<Duration> {
        None
    }

    fn on_idle(&self, _index: usize) {}

    fn on_exit(&self, _index: usize) {}
}
