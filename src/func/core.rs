//! A `FuncPool`'s core: the function, the argument slots and the
//! per-worker states, reached by the jobs and by the worker hooks.

use std::ptr;
use std::time::Duration;

use crate::func::slots::ArgSlots;
use crate::func::states::StateCells;
use crate::hooks::WorkerHooks;
use crate::scheduler::WorkerThread;
use crate::sync::StdArc;

/// What a `FuncPool<A>` needs from its core without knowing the state and
/// function types.
pub(crate) trait FuncCoreOf<A>: Send + Sync {
    fn slots(&self) -> &ArgSlots<A>;
    fn live_states(&self) -> usize;
}

/// The function, the per-worker states and the argument slots. The inner
/// pool's hooks hold it, so it lives as long as any worker that may run one
/// of its jobs.
pub(crate) struct FuncCore<A, S, F> {
    slots: ArgSlots<A>,
    states: StateCells<S>,
    func: F,
}

impl<A, S, F> FuncCore<A, S, F>
where
    A: Send + 'static,
    S: Send + 'static,
    F: Fn(&mut S, A) + Send + Sync + 'static,
{
    /// A core whose slots run arguments through `func` with the states.
    pub(crate) fn new(states: StateCells<S>, func: F) -> StdArc<Self> {
        StdArc::new_cyclic(|me| FuncCore {
            // The slots run arguments with `run_one`, given a pointer to this
            // very core: its address is fixed once inside the `Arc`.
            slots: ArgSlots::new(Self::run_one, me.as_ptr() as *const ()),
            states,
            func,
        })
    }

    /// Runs one argument (the job function behind every invocation).
    ///
    /// # Safety
    /// `core` must point to a live `FuncCore<A, S, F>` (the slots' owner).
    unsafe fn run_one(core: *const (), arg: A) {
        // SAFETY: forwarded from the caller.
        let core = unsafe { &*(core as *const Self) };
        match core.own_worker() {
            // SAFETY: we are on worker `index`'s thread.
            Some(index) => unsafe { core.states.with(index, |state| (core.func)(state, arg)) },
            None => core.states.with_temporary(|state| (core.func)(state, arg)),
        }
    }

    /// The index of the worker running this code, if it is one of this
    /// core's pool.
    fn own_worker(&self) -> Option<usize> {
        let worker = WorkerThread::current()?;
        let hooks = worker.shared.config.hooks.as_ref()?;
        let ours = ptr::eq(StdArc::as_ptr(hooks) as *const (), self as *const Self as *const ());
        ours.then_some(worker.index)
    }
}

impl<A, S, F> FuncCoreOf<A> for FuncCore<A, S, F>
where
    A: Send + 'static,
    S: Send + 'static,
    F: Fn(&mut S, A) + Send + Sync + 'static,
{
    fn slots(&self) -> &ArgSlots<A> {
        &self.slots
    }

    fn live_states(&self) -> usize {
        self.states.live()
    }
}

impl<A, S, F> WorkerHooks for FuncCore<A, S, F>
where
    A: Send + 'static,
    S: Send + 'static,
    F: Fn(&mut S, A) + Send + Sync + 'static,
{
    fn idle_interval(&self) -> Option<Duration> {
        self.states.check_interval()
    }

    fn on_idle(&self, index: usize) {
        // SAFETY: hooks run on worker `index`'s own thread.
        unsafe { self.states.check(index) }
    }

    fn on_exit(&self, index: usize) {
        // SAFETY: as in `on_idle`.
        unsafe { self.states.drop_state(index) }
    }
}
