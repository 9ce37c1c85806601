//! Per-worker state for a `FuncPool` built with `build_with_state`: made by a
//! factory on a worker's first invocation, passed `&mut` to every call on that
//! worker, health-checked while the worker idles, dropped when its thread
//! exits.
//!
//! Cell `i` is touched only by the thread that owns worker slot `i` (its
//! invocations, its idle hook, its exit hook). A slot's next thread starts
//! only after the previous one ran its exit hook and gave the slot's deque
//! back under a mutex, so two threads never use one cell, and the new thread
//! sees the cell emptied.

use std::cell::{Cell, UnsafeCell};
use std::time::Duration;

use crate::sync::{AtomicUsize, Ordering};

pub(crate) type FactoryFn<S> = dyn Fn() -> S + Send + Sync;
pub(crate) type CheckFn<S> = dyn Fn(&mut S) -> bool + Send + Sync;

/// One worker's state.
struct StateCell<S> {
    /// Set while the state is lent out (guards against re-entry).
    in_use: Cell<bool>,
    state: UnsafeCell<Option<S>>,
}

/// Every worker's state, the factory and the health check.
pub(crate) struct StateCells<S> {
    cells: Box<[StateCell<S>]>,
    factory: Box<FactoryFn<S>>,
    check: Option<(Duration, Box<CheckFn<S>>)>,
    /// States alive now (for stats).
    live: AtomicUsize,
}

// SAFETY: cell `i` is used only by the thread owning worker slot `i` (module
// docs); states move between threads only in the sense that a slot's
// successive threads each make their own, hence `S: Send`.
unsafe impl<S: Send> Sync for StateCells<S> {}
// SAFETY: as above.
unsafe impl<S: Send> Send for StateCells<S> {}

/// Clears a cell's `in_use` flag however the borrow ends (a panicking call).
struct Lent<'a>(&'a Cell<bool>);

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

impl<S: Send> StateCells<S> {
    pub(crate) fn new(workers: usize, factory: Box<FactoryFn<S>>, check: Option<(Duration, Box<CheckFn<S>>)>) -> Self {
        StateCells {
            cells: (0..workers)
                .map(|_| StateCell {
                    in_use: Cell::new(false),
                    state: UnsafeCell::new(None),
                })
                .collect(),
            factory,
            check,
            live: AtomicUsize::new(0),
        }
    }

    /// States alive now.
    pub(crate) fn live(&self) -> usize {
        // Relaxed: a display figure.
        self.live.load(Ordering::Relaxed)
    }

    /// The health check's interval, if there is one.
    pub(crate) fn check_interval(&self) -> Option<Duration> {
        self.check.as_ref().map(|(interval, _)| *interval)
    }

    /// Runs `f` with worker `index`'s state, making it first if need be. A
    /// panicking factory is the caller's (the task's) panic; no state is
    /// stored then.
    ///
    /// # Safety
    /// Must be called on the thread that owns worker slot `index`.
    pub(crate) unsafe fn with<R>(&self, index: usize, f: impl FnOnce(&mut S) -> R) -> R {
        let cell = &self.cells[index];
        assert!(
            !cell.in_use.replace(true),
            "stealpool: a FuncPool function re-entered its own worker's state"
        );
        let _lent = Lent(&cell.in_use);
        // SAFETY: only this thread touches this cell (the caller's promise),
        // and `in_use` rules out a second borrow on this thread.
        let slot = unsafe { &mut *cell.state.get() };
        if slot.is_none() {
            *slot = Some((self.factory)());
            // Relaxed: a display figure.
            self.live.fetch_add(1, Ordering::Relaxed);
        }
        f(slot.as_mut().expect("state was just made"))
    }

    /// Runs `f` with a fresh state that is dropped right after (an argument
    /// run outside a worker of its pool).
    pub(crate) fn with_temporary<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        let mut state = (self.factory)();
        f(&mut state)
    }

    /// The health check for worker `index` (an idle worker, on its thread):
    /// a state that fails it is dropped and made again.
    ///
    /// # Safety
    /// As for [`StateCells::with`].
    pub(crate) unsafe fn check(&self, index: usize) {
        let Some((_, check)) = &self.check else { return };
        let cell = &self.cells[index];
        if cell.in_use.replace(true) {
            return;
        }
        let _lent = Lent(&cell.in_use);
        // SAFETY: as in `with`.
        let slot = unsafe { &mut *cell.state.get() };
        let Some(state) = slot.as_mut() else { return };
        if check(state) {
            return;
        }
        // Failed: drop it now; make a new one now, so the next call finds
        // it ready (if the factory panics, the next call makes it). Counted
        // gone before the drop, which may panic (the panic is the caller's
        // to contain; the count stays true).
        let failed = slot.take();
        // Relaxed: a display figure.
        self.live.fetch_sub(1, Ordering::Relaxed);
        drop(failed);
        *slot = Some((self.factory)());
        self.live.fetch_add(1, Ordering::Relaxed);
    }

    /// Worker `index`'s thread exits: drop its state.
    ///
    /// # Safety
    /// As for [`StateCells::with`].
    pub(crate) unsafe fn drop_state(&self, index: usize) {
        let cell = &self.cells[index];
        // SAFETY: as in `with`; no borrow is live (the worker is leaving).
        let slot = unsafe { &mut *cell.state.get() };
        if let Some(state) = slot.take() {
            // Counted gone before the drop, which may panic.
            // Relaxed: a display figure.
            self.live.fetch_sub(1, Ordering::Relaxed);
            drop(state);
        }
    }
}
