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
    /// The idle generation: raised (under this lock) each time a waiter
    /// sees the pool idle while others wait. A waiter that registered at
    /// generation `g` and finds a later one returns even if work was
    /// submitted since: the pool was idle after its call began.
    lock: Mutex<u64>,
    condvar: Condvar,
}

impl IdleWaiters {
    pub(crate) fn new() -> Self {
        IdleWaiters {
            waiters: AtomicUsize::new(0),
            lock: Mutex::new(0),
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
            // Others may be waiting for this very idle moment: release them
            // before our caller can submit more. The fence orders our reads
            // of the counters before the read of `waiters`, pairing with a
            // waiter's register-then-fence: a waiter we miss registered
            // after this idle moment, and checks for itself.
            fence(Ordering::SeqCst);
            if this.idle.waiters.load(Ordering::Relaxed) > 0 {
                this.release_idle_waiters(&mut lock(&this.idle.lock));
            }
            return true;
        }
        let mut guard = lock(&this.idle.lock);
        let registered_at = *guard;
        // SeqCst RMW + fence before the check: pairs with the fence a worker
        // issues between its last completion and reading `waiters`, so either
        // it sees us waiting or we see its completion. The lock covers the
        // gap between the check and the wait.
        this.idle.waiters.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let idle = loop {
            if this.all_tasks_done() {
                this.release_idle_waiters(&mut guard);
                break true;
            }
            if *guard != registered_at {
                // Another waiter saw the pool idle after we registered (work
                // submitted since is not ours to wait for).
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
                    this.release_idle_waiters(&mut guard);
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

    /// The pool is idle now: every waiter registered so far returns (a new
    /// generation), even if one of them submits work before the others
    /// wake. Called with the waiters' lock held.
    fn release_idle_waiters(&self, generation: &mut u64) {
        *generation = generation.wrapping_add(1);
        self.idle.condvar.notify_all();
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
        // Counted here, never early by a worker of another pool that waits
        // (`worker/early_count.rs`).
        crate::scheduler::worker::early_count::unarmed(|| {
            self.run_job(
                job,
                || {},
                // Release: pairs with the Acquire in `all_tasks_done`.
                || {
                    self.release_room();
                    self.ran_by_waiters.fetch_add(1, Ordering::Release);
                },
            )
        });
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

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    use std::sync::{mpsc, Arc as StdArc};
    use std::thread;
    use std::time::{Duration, Instant};

    use crate::Pool;

    /// Polls `cond` for up to 10 s (generous: it holds within microseconds).
    fn soon(mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// Waves, like threadpool's join tests: several threads wait for the
    /// pool to go idle, and the first to return submits new work at once.
    /// Every thread that was waiting when the pool went idle returns in that
    /// wave, not at the next idle moment (before the idle generation, the
    /// others saw the new work and kept waiting: here, forever, since the
    /// new work waits for all of them).
    #[test]
    fn every_waiter_waiting_when_the_pool_went_idle_returns() {
        const WAITERS: usize = 4;
        // Fewer waves under Miri (an interpreter).
        const WAVES: usize = if cfg!(miri) { 3 } else { 20 };
        let pool = Pool::builder().capacity(2).pin_workers(false).build().unwrap();
        for wave in 0..WAVES {
            let (gate_tx, gate_rx) = mpsc::channel::<()>();
            pool.submit(move || {
                gate_rx.recv_timeout(Duration::from_secs(60)).ok();
            })
            .unwrap();
            // Work each returning waiter submits: held until every waiter
            // of this wave returned.
            let hold = StdArc::new(AtomicBool::new(true));
            let returned = StdArc::new(AtomicUsize::new(0));
            let waiters: Vec<_> = (0..WAITERS)
                .map(|_| {
                    let (pool, hold, returned) = (pool.clone(), hold.clone(), returned.clone());
                    thread::spawn(move || {
                        pool.wait_idle();
                        returned.fetch_add(1, SeqCst);
                        let hold = hold.clone();
                        pool.submit(move || {
                            let deadline = Instant::now() + Duration::from_secs(60);
                            while hold.load(SeqCst) && Instant::now() < deadline {
                                thread::sleep(Duration::from_micros(100));
                            }
                        })
                        .unwrap();
                    })
                })
                .collect();
            let idle = &pool.shared().idle;
            assert!(
                soon(|| idle.waiters.load(SeqCst) == WAITERS),
                "wave {wave}: the waiters did not all register"
            );
            gate_tx.send(()).unwrap();
            let all_returned = soon(|| returned.load(SeqCst) == WAITERS);
            hold.store(false, SeqCst);
            assert!(
                all_returned,
                "wave {wave}: only {} of {WAITERS} waiters returned when the pool went idle",
                returned.load(SeqCst)
            );
            for waiter in waiters {
                waiter.join().unwrap();
            }
            pool.wait_idle();
        }
        assert_eq!(pool.stats().completed, (WAVES * (1 + WAITERS)) as u64);
    }

    /// A waiter that registers after the idle moment it could have seen
    /// waits for its own: `wait_idle` never returns while work accepted
    /// before the call is unfinished.
    #[test]
    fn a_later_waiter_still_waits_for_work_accepted_before_its_call() {
        let pool = Pool::builder().capacity(1).pin_workers(false).build().unwrap();
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let done = StdArc::new(AtomicBool::new(false));
        let d = done.clone();
        pool.submit(move || {
            gate_rx.recv_timeout(Duration::from_secs(60)).ok();
            d.store(true, SeqCst);
        })
        .unwrap();
        let waiter = {
            let (pool, done) = (pool.clone(), done.clone());
            thread::spawn(move || {
                pool.wait_idle();
                done.load(SeqCst)
            })
        };
        assert!(soon(|| pool.shared().idle.waiters.load(SeqCst) == 1));
        gate_tx.send(()).unwrap();
        assert!(waiter.join().unwrap(), "wait_idle returned before the task finished");
    }
}
