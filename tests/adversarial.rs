//! Adversarial inputs and unlucky timings that a pool's users can run into,
//! each of which must end in the documented behaviour, never in a hang, a
//! process abort or wrong figures:
//!
//! * a `thread_name` closure that returns a name with an interior NUL byte
//!   (the OS cannot take it), with and without pre-allocation;
//! * `shutdown_now` while a running task waits on a `JoinHandle` whose task
//!   is still queued (the parent must see an error, not wait forever);
//! * `MultiPool::shutdown_now` hands back what every sub-pool had queued,
//!   not only what the first one had;
//! * a pool that cannot start any thread (an impossible stack size): the
//!   caller runs the work, for `join`, `scope`, `spawn` and long chains of
//!   submits from inside tasks, without growing its stack per task;
//! * panic payloads whose `Drop` panics (in `join`, in `scope`): they must
//!   be contained, not abort the process;
//! * `FuncPool` per-worker state whose `Drop` panics: the state and worker
//!   counts still go back to zero;
//! * threads suspended above a shrunk capacity retire after `keep_alive`;
//! * huge durations (`keep_alive`, timeouts, health-check intervals) mean
//!   "forever", never an overflow;
//! * the last idle thread retires one `keep_alive` after going idle;
//! * `Stats::withdrawn` (tasks handed back by `shutdown_now` and not run)
//!   keeps `submitted == completed + withdrawn + cancelled + queued +
//!   busy_workers`.
//!
//! All tests run one at a time (`serial`) under a watchdog. Anything that
//! could hang is run on a helper thread with a bound ([`within`]), so a hang
//! fails the test with a message instead of stopping the whole binary. A few
//! failures can only show as a process abort (a stack overflow, a panic
//! while panicking): the binary dying is then the failure.
//!
//! These may run on a small, noisy machine (2 cores): every time bound is
//! generous, and where a scenario needs an order of events, it waits for the
//! event (a closed pool, a task that started) rather than for a duration.

use std::any::Any;
use std::panic::{self, panic_any, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use stealpool::{FuncPool, MultiPool, Pool, Stats};

mod common;
use common::*;

/// Panic payloads and FuncPool states whose Drop panics.
#[path = "adversarial/panicking_drops.rs"]
mod panicking_drops;

/// Huge durations mean forever; the last idle thread retires on time.
#[path = "adversarial/durations.rs"]
mod durations;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A payload's message, or a placeholder for a non-string payload.
fn message(payload: &(dyn Any + Send)) -> String {
    panic_message(payload).unwrap_or_else(|| "<non-string panic payload>".to_owned())
}

/// Runs `f` on a helper thread and returns its result. Fails the test with
/// a message naming `what` if `f` panics or does not return within
/// `timeout` (the helper then stays blocked; the test fails anyway).
fn within<T: Send + 'static>(timeout: Duration, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(panic::catch_unwind(AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => panic!("{what} panicked: {}", message(&*payload)),
        Err(_) => panic!("{what} did not return within {timeout:?} (hung)"),
    }
}

/// Submits `n` tasks that all wait until every one of them is running, and
/// returns once they have all finished. Fails if they never all ran at once
/// (within [`SOON`]); the tasks are released either way.
fn all_busy_at_once(pool: &Pool, n: usize, what: &str) {
    let arrived = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(AtomicBool::new(false));
    for _ in 0..n {
        let (a, r) = (arrived.clone(), release.clone());
        pool.submit(move || {
            a.fetch_add(1, Ordering::SeqCst);
            // Bounded far beyond every watchdog, so a failing test never
            // leaves a worker blocked forever.
            wait_until(Duration::from_secs(60), || r.load(Ordering::SeqCst));
        })
        .unwrap_or_else(|e| panic!("{what}: submit: {e:?}"));
    }
    let all = wait_until(SOON, || arrived.load(Ordering::SeqCst) == n);
    let seen = arrived.load(Ordering::SeqCst);
    let stats = pool.stats();
    release.store(true, Ordering::SeqCst);
    pool.wait_idle();
    assert!(
        all,
        "{what}: only {seen} of {n} tasks were running at once after {SOON:?}; stats then: {stats:?}"
    );
}

/// `submitted == completed + withdrawn + cancelled + queued + busy_workers`,
/// read at a quiescent point.
fn assert_identity(stats: &Stats, when: &str) {
    assert_eq!(
        stats.submitted,
        stats.completed + stats.withdrawn + stats.cancelled + stats.queued as u64 + stats.busy_workers as u64,
        "{when}: submitted != completed + withdrawn + cancelled + queued + busy_workers: {stats:?}"
    );
}

/// Opens `gate` 300 ms after `closed` first holds: a blocked worker is
/// released only well after `shutdown_now` closed the pool (and, right after
/// closing, took the queues), never because the queues were drained. 300 ms
/// leaves room for a descheduled caller between closing and draining.
fn open_after_close(gate: Arc<AtomicBool>, closed: impl Fn() -> bool + Send + 'static) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        wait_until(Duration::from_secs(30), &closed);
        thread::sleep(Duration::from_millis(300));
        gate.store(true, Ordering::SeqCst);
    })
}

/// Holds one more handle of a pool, leaked if the test fails: the last
/// handle's drop shuts the pool down, which may hang on the very defect the
/// test looks for, and would turn a clear failure into a watchdog exit.
struct KeepOnFailure<T>(Option<T>);

/// `pool.shutdown()` on a helper thread, failing the test if it hangs.
fn shutdown_within_soon(pool: &Pool) {
    let p = pool.clone();
    within(SOON, "shutdown", move || p.shutdown());
}

impl<T> Drop for KeepOnFailure<T> {
    fn drop(&mut self) {
        if thread::panicking() {
            std::mem::forget(self.0.take());
        }
    }
}

/// A panic payload whose destructor panics.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("payload dropped");
    }
}

/// Disposes of a payload caught by the test without running a `Bomb`'s
/// destructor (which would panic in the test itself).
fn defuse(payload: Box<dyn Any + Send>) {
    if payload.is::<Bomb>() {
        std::mem::forget(payload);
    }
}

// ---------------------------------------------------------------------------
// A thread name with an interior NUL byte
// ---------------------------------------------------------------------------

/// `std::thread::Builder::spawn` panics on a name with an interior NUL. With
/// pre-allocation, `build` must return: either a pool whose threads got the
/// default name, or a clear error. No panic may escape.
#[test]
fn thread_name_with_nul_and_prealloc_builds_or_fails_cleanly() {
    let _s = serial();
    let _w = Watchdog::new("thread_name_with_nul_and_prealloc_builds_or_fails_cleanly", 60);
    let built = within(SOON, "build with a NUL thread name and prealloc", || {
        Pool::builder()
            .capacity(2)
            .thread_name(|i| format!("w\0{i}"))
            .prealloc(true)
            .build()
    });
    match built {
        Err(e) => {
            let text = e.to_string();
            assert!(!text.trim().is_empty(), "empty Display for {e:?}");
        }
        Ok(pool) => {
            let _keep = KeepOnFailure(Some(pool.clone()));
            let (tx, rx) = mpsc::channel();
            pool.submit(move || {
                let _ = tx.send(thread::current().name().map(String::from));
            })
            .expect("submit");
            let name = rx
                .recv_timeout(SOON)
                .expect("the task did not run on a pool built with a NUL thread name");
            assert!(
                name.as_deref().is_some_and(|n| n.starts_with("stealpool-")),
                "a worker whose name the OS refuses must get the default name stealpool-{{i}}, got {name:?}"
            );
            let p = pool.clone();
            within(SOON, "shutdown", move || p.shutdown());
        }
    }
}

/// Without pre-allocation the first submit starts the thread: it must
/// neither panic nor hang, and the task must run (on a thread with the
/// default name).
#[test]
fn thread_name_with_nul_without_prealloc_runs_the_first_task() {
    let _s = serial();
    let _w = Watchdog::new("thread_name_with_nul_without_prealloc_runs_the_first_task", 60);
    let pool = Pool::builder()
        .capacity(2)
        .thread_name(|i| format!("w\0{i}"))
        .build()
        .expect("build starts no thread without prealloc");
    let _keep = KeepOnFailure(Some(pool.clone()));
    let (tx, rx) = mpsc::channel();
    let p = pool.clone();
    let accepted = within(SOON, "the first submit", move || {
        p.submit(move || {
            let _ = tx.send(thread::current().name().map(String::from));
        })
        .is_ok()
    });
    assert!(accepted, "the first submit was refused");
    let name = rx
        .recv_timeout(SOON)
        .expect("the first task did not run within 10 s (stranded: no thread could start)");
    assert!(
        name.as_deref().is_some_and(|n| n.starts_with("stealpool-")),
        "a worker whose name the OS refuses must get the default name stealpool-{{i}}, got {name:?}"
    );
    // A second task too (the pool's accounting survived the first start).
    let (tx, rx) = mpsc::channel();
    pool.submit(move || tx.send(()).unwrap()).expect("submit");
    rx.recv_timeout(SOON).expect("the second task did not run");
    shutdown_within_soon(&pool);
}

// ---------------------------------------------------------------------------
// shutdown_now against a task joining its own queued child
// ---------------------------------------------------------------------------

/// A running task spawns a child (queued behind it on a 1-worker pool) and
/// joins it after `shutdown_now` took the child out. `shutdown_now` must
/// return with the child, and the parent's `join` must return at once with
/// the child cancelled (waiting would deadlock: `shutdown_now` waits for the
/// parent). A cancelled task never runs, so running the handed-back child
/// afterwards does nothing (and it stays counted as withdrawn). Repeated: the
/// parent waits for the pool to close and the child to be withdrawn, so
/// every round takes the same path.
#[test]
fn shutdown_now_while_a_task_joins_its_queued_child() {
    let _s = serial();
    let _w = Watchdog::new("shutdown_now_while_a_task_joins_its_queued_child", 120);
    for round in 0..20 {
        let pool = named_builder("adv-snj-", 1).build().expect("build");
        let _keep = KeepOnFailure(Some(pool.clone()));
        let (ready_tx, ready_rx) = mpsc::channel();
        let (out_tx, out_rx) = mpsc::channel::<Result<u32, String>>();
        let child_ran = Arc::new(AtomicBool::new(false));
        let p = pool.clone();
        let ran = child_ran.clone();
        pool.submit(move || {
            let child = p
                .spawn(move || {
                    ran.store(true, Ordering::SeqCst);
                    7u32
                })
                .expect("spawn the child");
            ready_tx.send(()).unwrap();
            // Join only once shutdown_now has closed the pool and taken the
            // child out (queued falls to 0 then); bounded, in case it never
            // does.
            wait_until(SOON, || p.is_closed() && p.stats().queued == 0);
            let _ = out_tx.send(child.join().map_err(|error| {
                if error.is_cancelled() {
                    "cancelled".to_owned()
                } else {
                    message(&*error.into_panic())
                }
            }));
        })
        .expect("submit the parent");
        ready_rx.recv_timeout(SOON).expect("the parent task did not start");
        let p = pool.clone();
        let unrun = within(SOON, "shutdown_now with a parent joining its queued child", move || {
            p.shutdown_now()
        });
        assert_eq!(unrun.len(), 1, "round {round}: the queued child must be handed back");
        let outcome = out_rx
            .recv_timeout(SOON)
            .expect("the parent task never finished its join");
        match outcome {
            Ok(value) => {
                panic!("round {round}: the child was handed back unrun, yet the parent's join returned Ok({value})")
            }
            Err(text) => assert_eq!(
                text, "cancelled",
                "round {round}: the parent's join should return the child cancelled"
            ),
        }
        assert!(
            !child_ran.load(Ordering::SeqCst),
            "round {round}: the child ran in the pool"
        );
        let completed = pool.stats().completed;
        // The caller runs the handed-back child: no panic, and since its
        // handle cancelled it, it does not run.
        for task in unrun {
            let run = panic::catch_unwind(AssertUnwindSafe(|| task.run()));
            assert!(
                run.is_ok(),
                "round {round}: running the handed-back child panicked: {}",
                run.err().map(|p| message(&*p)).unwrap_or_default()
            );
        }
        assert!(
            !child_ran.load(Ordering::SeqCst),
            "round {round}: Task::run ran a child whose join already returned it cancelled"
        );
        let stats = pool.stats();
        assert_eq!(
            (stats.completed, stats.withdrawn),
            (completed, 1),
            "round {round}: the cancelled child must stay withdrawn, not completed: {stats:?}"
        );
    }
    assert_threads_gone("adv-snj-", "after the rounds");
}

// ---------------------------------------------------------------------------
// MultiPool::shutdown_now
// ---------------------------------------------------------------------------

/// Two sub-pools of one worker, each busy, each with 100 tasks queued.
/// `shutdown_now` must hand back all 200 and none of them may run. The
/// blockers are released on a timer after the pools close, not after the
/// queues were taken (that would hide a sub-pool drained too late).
#[test]
fn multi_pool_shutdown_now_hands_back_every_queued_task() {
    let _s = serial();
    let _w = Watchdog::new("multi_pool_shutdown_now_hands_back_every_queued_task", 60);
    let mp = Arc::new(
        MultiPool::builder()
            .pools(2)
            .capacity_per_pool(1)
            .thread_name(|pool, i| format!("adv-mp-{pool}-{i}"))
            .build()
            .expect("build"),
    );
    let _keep = KeepOnFailure(Some(mp.clone()));
    let gate = Arc::new(AtomicBool::new(false));
    // Opens the blockers if the test fails before the timer does.
    let _gate = Gate(gate.clone());
    let entered = Arc::new(AtomicUsize::new(0));
    for index in 0..2 {
        let (g, e) = (gate.clone(), entered.clone());
        mp.pool(index)
            .unwrap()
            .submit(move || {
                e.fetch_add(1, Ordering::SeqCst);
                wait_until(Duration::from_secs(60), || g.load(Ordering::SeqCst));
            })
            .expect("submit a blocker");
    }
    assert!(
        wait_until(SOON, || entered.load(Ordering::SeqCst) == 2),
        "both blockers must be running"
    );
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..200 {
        let r = ran.clone();
        mp.submit(move || {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .expect("submit");
    }
    let queued: Vec<usize> = mp.pools().iter().map(|p| p.stats().queued).collect();
    assert_eq!(queued, [100, 100], "round robin spreads 200 tasks evenly");
    let (p0, p1) = (mp.pool(0).unwrap().clone(), mp.pool(1).unwrap().clone());
    let opener = open_after_close(gate.clone(), move || p0.is_closed() && p1.is_closed());
    let m = mp.clone();
    let unrun = within(SOON, "MultiPool::shutdown_now", move || m.shutdown_now());
    opener.join().unwrap();
    let ran_before_drop = ran.load(Ordering::SeqCst);
    let handed_back = unrun.len();
    drop(unrun);
    assert_eq!(
        (handed_back, ran_before_drop),
        (200, 0),
        "shutdown_now must hand back all 200 queued tasks (100 per sub-pool) and run none; \
         handed back {handed_back}, ran {ran_before_drop}"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 0, "dropping the handed-back tasks ran them");
    assert!(wait_until(SOON, || mp
        .pools()
        .iter()
        .all(|p| p.stats().live_workers == 0)));
}

// ---------------------------------------------------------------------------
// No worker thread can start: the caller runs the work
// ---------------------------------------------------------------------------

/// A pool whose every thread start is refused by the OS (a 4 EiB stack).
fn pool_without_threads() -> Pool {
    named_builder("adv-nothr-", 2)
        .stack_size(1 << 62)
        .build()
        .expect("build starts no thread without prealloc")
}

#[test]
fn no_thread_can_start_join_runs_on_the_caller() {
    let _s = serial();
    let _w = Watchdog::new("no_thread_can_start_join_runs_on_the_caller", 60);
    let pool = pool_without_threads();
    let _keep = KeepOnFailure(Some(pool.clone()));
    let p = pool.clone();
    let joined = within(SOON, "join on a pool that cannot start a thread", move || {
        panic::catch_unwind(AssertUnwindSafe(|| p.join(|| 1, || 2))).map_err(|payload| message(&*payload))
    });
    assert_eq!(joined, Ok((1, 2)));
    assert_eq!(threads_named("adv-nothr-"), 0);
    shutdown_within_soon(&pool);
}

fn chain(p: Pool, n: u32, count: Arc<AtomicU32>) {
    count.fetch_add(1, Ordering::SeqCst);
    if n > 0 {
        let q = p.clone();
        let _ = p.submit(move || chain(q, n - 1, count));
    }
}

/// Each task submits the next, 100 000 deep. The caller runs them, but one
/// after the other: a caller that ran each submit's task inside that submit
/// would overflow its stack (the failure then is the test binary aborting).
#[test]
fn no_thread_can_start_a_long_submit_chain_does_not_overflow_the_stack() {
    let _s = serial();
    let _w = Watchdog::new(
        "no_thread_can_start_a_long_submit_chain_does_not_overflow_the_stack",
        60,
    );
    let pool = pool_without_threads();
    let _keep = KeepOnFailure(Some(pool.clone()));
    let count = Arc::new(AtomicU32::new(0));
    let (p, c) = (pool.clone(), count.clone());
    within(Duration::from_secs(40), "a chain of 100 000 submits", move || {
        let q = p.clone();
        p.submit(move || chain(q, 100_000, c)).expect("submit");
        p.wait_idle();
    });
    assert_eq!(count.load(Ordering::SeqCst), 100_001);
    shutdown_within_soon(&pool);
}

#[test]
fn no_thread_can_start_scope_and_spawn_run_on_the_caller() {
    let _s = serial();
    let _w = Watchdog::new("no_thread_can_start_scope_and_spawn_run_on_the_caller", 60);
    let pool = pool_without_threads();
    let _keep = KeepOnFailure(Some(pool.clone()));
    let p = pool.clone();
    let sums = within(SOON, "scope on a pool that cannot start a thread", move || {
        let numbers: Vec<u64> = (1..=100).collect();
        let mut halves = [0u64; 2];
        let (left, right) = halves.split_at_mut(1);
        p.scope(|s| {
            s.spawn(|| left[0] = numbers[..50].iter().sum());
            s.spawn(|| right[0] = numbers[50..].iter().sum());
        });
        halves
    });
    assert_eq!(sums, [1275, 3775]);
    let p = pool.clone();
    let value = within(SOON, "spawn + join on a pool that cannot start a thread", move || {
        p.spawn(|| 6 * 7)
            .expect("spawn")
            .join()
            .map_err(|error| message(&*error.into_panic()))
    });
    assert_eq!(value, Ok(42));
    shutdown_within_soon(&pool);
}

// ---------------------------------------------------------------------------
// Suspended threads above a shrunk capacity
// ---------------------------------------------------------------------------

/// 64 threads run at once, then the capacity shrinks to 8: the 56 suspended
/// threads must retire after `keep_alive` like idle ones (down to
/// `min_workers` once all are idle), and threads start again on demand when
/// the capacity grows.
#[test]
fn suspended_threads_above_a_shrunk_capacity_retire_after_keep_alive() {
    let _s = serial();
    let _w = Watchdog::new("suspended_threads_above_a_shrunk_capacity_retire_after_keep_alive", 60);
    const P: &str = "adv-tune-";
    let pool = named_builder(P, 8)
        .max_capacity(64)
        .keep_alive(Duration::from_millis(300))
        .min_workers(2)
        .build()
        .expect("build");
    let _keep = KeepOnFailure(Some(pool.clone()));
    pool.tune(64).expect("tune(64)");
    all_busy_at_once(&pool, 64, "64 tasks at capacity 64");
    pool.tune(8).expect("tune(8)");
    // keep_alive is 300 ms; 10 s only matters on an overloaded machine.
    assert!(
        wait_until(SOON, || threads_named(P) <= 8 && pool.stats().live_workers <= 8),
        "threads suspended above capacity 8 never retired: {} threads alive, {:?}",
        threads_named(P),
        pool.stats()
    );
    assert!(
        wait_until(SOON, || threads_named(P) == 2 && pool.stats().live_workers == 2),
        "all idle: the threads should retire down to min_workers 2: {} alive, {:?}",
        threads_named(P),
        pool.stats()
    );
    pool.tune(16).expect("tune(16)");
    all_busy_at_once(&pool, 16, "16 tasks at capacity 16");
    shutdown_within_soon(&pool);
    assert_threads_gone(P, "after shutdown");
}

// ---------------------------------------------------------------------------
// Stats::withdrawn
// ---------------------------------------------------------------------------

/// Ten tasks queued behind a busy worker are handed back by `shutdown_now`:
/// `withdrawn` counts them, and moves to `completed` as the caller runs them
/// (not when it drops them); the identity holds at every step.
#[test]
fn withdrawn_tasks_keep_the_stats_identity() {
    let _s = serial();
    let _w = Watchdog::new("withdrawn_tasks_keep_the_stats_identity", 60);
    let pool = named_builder("adv-wd-", 1).build().expect("build");
    let _keep = KeepOnFailure(Some(pool.clone()));
    let gate = block_worker(&pool);
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..10 {
        let r = ran.clone();
        pool.submit(move || {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .expect("submit");
    }
    let stats = pool.stats();
    assert_eq!(
        (stats.submitted, stats.queued, stats.busy_workers),
        (11, 10, 1),
        "{stats:?}"
    );
    assert_identity(&stats, "before shutdown_now");
    let p = pool.clone();
    let opener = open_after_close(gate.0.clone(), move || p.is_closed());
    let p = pool.clone();
    let mut unrun = within(SOON, "shutdown_now", move || p.shutdown_now());
    opener.join().unwrap();
    assert_eq!(unrun.len(), 10, "the 10 queued tasks are handed back");
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    let stats = pool.stats();
    assert_eq!(
        (
            stats.submitted,
            stats.completed,
            stats.withdrawn,
            stats.queued,
            stats.busy_workers
        ),
        (11, 1, 10, 0, 0),
        "after shutdown_now: {stats:?}"
    );
    assert_identity(&stats, "after shutdown_now");
    for task in unrun.drain(..4) {
        task.run();
    }
    assert_eq!(ran.load(Ordering::SeqCst), 4);
    let stats = pool.stats();
    assert_eq!(
        (stats.submitted, stats.completed, stats.withdrawn, stats.queued),
        (11, 5, 6, 0),
        "after running 4 handed-back tasks: {stats:?}"
    );
    assert_identity(&stats, "after running 4 handed-back tasks");
    drop(unrun);
    assert_eq!(ran.load(Ordering::SeqCst), 4);
    let stats = pool.stats();
    assert_eq!(
        (stats.submitted, stats.completed, stats.withdrawn, stats.queued),
        (11, 5, 6, 0),
        "after dropping the other 6: {stats:?}"
    );
    assert_identity(&stats, "after dropping the other 6");
    drop(gate);
    assert_threads_gone("adv-wd-", "after shutdown_now");
}

/// A task submits a child from inside the pool and then blocks, out of the
/// pool's sight, until the child has run (a channel): only the other
/// worker can run the child, so the submit must not lose its wake-up
/// however it races that worker going to sleep (inside pushes skip their
/// fence where the asymmetric barrier is available; the sleeper pays its
/// heavy half). The parent spins a little longer each round first, so the
/// submit lands at every point of the other worker's search and sleep. A
/// lost wake-up would leave the parent waiting: it gives up after 10 s
/// (generous for a loaded 2-core machine; a round takes microseconds) and
/// the test fails.
#[test]
fn a_task_blocking_on_its_own_inside_submit_is_never_stranded() {
    let pool = Pool::builder().capacity(2).build().expect("build");
    for round in 0..3000u64 {
        let (done_tx, done_rx) = mpsc::channel();
        let p = pool.clone();
        pool.submit(move || {
            let spin = Instant::now();
            while spin.elapsed() < Duration::from_micros(round % 80) {
                std::hint::spin_loop();
            }
            let (tx, rx) = mpsc::channel();
            p.submit(move || tx.send(()).expect("the parent waits"))
                .expect("submit from inside");
            let ran = rx.recv_timeout(Duration::from_secs(10)).is_ok();
            done_tx.send(ran).expect("the test waits");
        })
        .expect("submit the parent");
        let ran = done_rx.recv().expect("the parent task ended without an answer");
        assert!(ran, "round {round}: the child of a blocked parent was never run");
    }
    pool.shutdown();
}
