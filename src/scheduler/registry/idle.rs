//! Waiting for an idle pool (`wait_idle` and the waiters' wake-ups), and
//! "caller runs": when the OS refuses every worker thread, the threads that
//! submit or wait run the queued work themselves, so accepted work never
//! waits for a thread that cannot exist.
//!
//! A stranded job may itself submit, `join`, open a scope or join a handle.
//! Running those from inside the submit would recurse once per task (a chain
//! of 100,000 submits overflows the stack), so a thread that is already
//! running one pool's stranded work only queues more of it: the drain loop
//! further up its stack picks it up. A thread that waits while it drains
//! (a `join`, a scope, a `JoinHandle::join` inside a stranded job) runs the
//! stranded work of the pools it drains meanwhile, since nobody else may.

use std::cell::RefCell;
use std::ptr;
use std::time::{Duration, Instant};

use crate::scheduler::registry::{steal_retrying, Shared};
use crate::sync::{fence, lock, wait_timeout, Arc, AtomicUsize, Condvar, Mutex, Ordering};

// Plain std thread-local (not the loom facade): no thread start fails under
// loom, so this state is never touched there.
std::thread_local! {
    /// The pools whose stranded work this thread is running, innermost
    /// last. Each entry is alive: its `Draining` guard is in a frame further
    /// up this thread's stack, borrowing the pool's `Shared`.
    static DRAINING: RefCell<Vec<*const Shared>> = const { RefCell::new(Vec::new()) };
}

/// Marks the calling thread as draining a pool for as long as it lives.
struct Draining(*const Shared);

impl Draining {
    /// Whether this thread is running `shared`'s stranded work already.
    fn is_draining(shared: &Shared) -> bool {
        DRAINING.with(|pools| pools.borrow().iter().any(|&pool| ptr::eq(pool, shared)))
    }

    fn enter(shared: &Shared) -> Draining {
        DRAINING.with(|pools| pools.borrow_mut().push(shared));
        Draining(shared)
    }
}

impl Drop for Draining {
    fn drop(&mut self) {
        DRAINING.with(|pools| {
            let mut pools = pools.borrow_mut();
            if let Some(at) = pools.iter().rposition(|&pool| ptr::eq(pool, self.0)) {
                pools.remove(at);
            }
        });
    }
}

/// People blocked in `wait_idle`.
pub(super) struct IdleWaiters {
    waiters: AtomicUsize,
    lock: Mutex<()>,
    condvar: Condvar,
}

impl IdleWaiters {
    pub(crate) fn new() -> Self {
        IdleWaiters {
            waiters: AtomicUsize::new(0),
            lock: Mutex::new(()),
            condvar: Condvar::new(),
        }
    }
}

impl Shared {
    /// Called by a worker that ran out of work: wakes `wait_idle` callers so
    /// they re-check. The caller has just issued a SeqCst fence
    /// (`begin_searching`), which pairs with the one in `wait_idle`.
    #[inline]
    pub(crate) fn notify_idle_waiters(&self) {
        if self.idle.waiters.load(Ordering::Relaxed) > 0 {
            self.notify_idle_waiters_cold();
        }
    }

    #[cold]
    #[inline(never)]
    fn notify_idle_waiters_cold(&self) {
        let _guard = lock(&self.idle.lock);
        self.idle.condvar.notify_all();
    }

    /// Blocks until every accepted task has completed.
    pub(crate) fn wait_idle(this: &Arc<Self>) {
        Shared::wait_idle_until_or_forever(this, None);
    }

    /// As [`Shared::wait_idle`], giving up at `deadline`. Returns whether
    /// the pool became idle.
    pub(crate) fn wait_idle_until(this: &Arc<Self>, deadline: Instant) -> bool {
        Shared::wait_idle_until_or_forever(this, Some(deadline))
    }

    /// How often a waiter re-checks whether work waits with no thread to run
    /// it (a thread start the OS refused): then it tries to start one again.
    const RETRY_START: Duration = Duration::from_millis(100);

    fn wait_idle_until_or_forever(this: &Arc<Self>, deadline: Option<Instant>) -> bool {
        if this.all_tasks_done() {
            return true;
        }
        let mut guard = lock(&this.idle.lock);
        // SeqCst RMW + fence before the check: pairs with the fence a worker
        // issues between its last completion and reading `waiters`, so either
        // it sees us waiting or we see its completion. The lock covers the
        // gap between the check and the wait.
        this.idle.waiters.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let idle = loop {
            if this.all_tasks_done() {
                break true;
            }
            let now = Instant::now();
            if deadline.is_some_and(|deadline| now >= deadline) {
                break false;
            }
            // Relaxed: a hint; a thread that starts meanwhile is harmless.
            // (Not under loom: no start fails there, and the models stay
            // as small as they were.)
            if cfg!(not(loom)) && this.live_threads.load(Ordering::Relaxed) == 0 {
                // Work waits and no thread runs: a start failed (the OS
                // refused a thread). Try again, without our lock.
                drop(guard);
                Shared::start_missing_worker(this);
                // Still none: run what waits here, one job per round.
                let ran = this.live_threads.load(Ordering::Relaxed) == 0 && this.run_one_stranded();
                guard = lock(&this.idle.lock);
                if this.all_tasks_done() {
                    break true;
                }
                if ran {
                    continue;
                }
            }
            let wait = deadline.map_or(Self::RETRY_START, |deadline| (deadline - now).min(Self::RETRY_START));
            guard = wait_timeout(&this.idle.condvar, guard, wait);
        };
        this.idle.waiters.fetch_sub(1, Ordering::Relaxed);
        drop(guard);
        idle
    }

    /// Runs queued jobs on the calling thread while no worker thread is
    /// alive (a thread start failed). On a thread that is already running
    /// this pool's stranded work, does nothing: the outer loop runs what was
    /// queued (see the module docs).
    #[cold]
    pub(crate) fn run_stranded(&self) {
        if Draining::is_draining(self) {
            return;
        }
        let _draining = Draining::enter(self);
        // Relaxed: a hint; a worker that starts meanwhile takes the rest.
        while self.live_threads.load(Ordering::Relaxed) == 0 && self.run_one_stranded() {}
    }

    /// No worker thread could start (the OS refused): a waiter runs one
    /// queued job itself, so `wait_idle`/`shutdown` end instead of waiting
    /// forever. Returns whether it found one.
    #[cold]
    fn run_one_stranded(&self) -> bool {
        let Some(job) = self.take_any_job() else {
            return false;
        };
        let _draining = (!Draining::is_draining(self)).then(|| Draining::enter(self));
        // No worker runs, so no stack job is queued: every job here owns its
        // data. A panic is not counted per worker (there is none).
        self.run_job(
            job,
            || {},
            // Release: pairs with the Acquire in `all_tasks_done`.
            || {
                self.ran_by_waiters.fetch_add(1, Ordering::Release);
            },
        );
        true
    }

    /// One job from the injector or any deque, if there is one.
    fn take_any_job(&self) -> Option<crate::scheduler::job::JobRef> {
        steal_retrying(|| self.injector.steal())
            .or_else(|| self.stealers().find_map(|stealer| steal_retrying(|| stealer.steal())))
    }
}

/// How long a draining waiter sleeps when it found nothing to run: what it
/// waits for runs on another thread (a worker that started meanwhile, or
/// another drainer), which it cannot be woken by.
const POLL: Duration = Duration::from_millis(1);

/// Called by a thread outside any pool before it blocks for `done`: if it
/// is running stranded work (see the module docs), what it waits for may be
/// queued behind it, so it runs the stranded work of the pools it drains
/// until `done`. Returns at once on any other thread (the caller then
/// blocks as usual).
#[cold]
pub(crate) fn help_while_draining(done: impl Fn() -> bool) {
    while !done() {
        let pools = DRAINING.with(|pools| pools.borrow().clone());
        if pools.is_empty() {
            return;
        }
        let mut ran = false;
        for pool in pools {
            // SAFETY: see `DRAINING`: the pool's `Shared` is borrowed by a
            // guard in a frame further up this thread's stack.
            let pool = unsafe { &*pool };
            // Relaxed: a hint, as in `run_stranded`.
            if pool.live_threads.load(Ordering::Relaxed) == 0 && pool.run_one_stranded() {
                ran = true;
                break;
            }
        }
        if !ran {
            std::thread::sleep(POLL);
        }
    }
}
