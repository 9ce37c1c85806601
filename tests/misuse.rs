//! Bad input and misuse: every case ends in a clear error or in the
//! documented behaviour (the guide `docs/guide/tasks.md`, "Calls from inside
//! the pool's own tasks"), never in a hang and never in lost work.
//!
//! This file is meant to be the complete list. Where a case is also tested
//! elsewhere (often in more depth), the test here is brief and names the
//! other test in a comment.
//!
//! Worker threads are identified by their OS thread name (set through
//! `Builder::thread_name`, read back from /proc/self/task/*/comm, 15
//! characters at most), with a prefix unique to each test. All tests run one
//! at a time (SERIAL): the machine has 2 cores, and thread counts of one test
//! must not be disturbed by another. Every test that could hang runs under a
//! Watchdog that ends the whole process with a message.
//!
//! Four tests here guard edges that are easy to get wrong (an absurd
//! capacity must be a `BuildError`, not a panic in `build`; a panicking
//! `thread_name` or a refused thread start must not strand the first task;
//! `submit_timeout(Duration::MAX)` must wait, not refuse at once); they are
//! written so that a failure shows as a failed assertion, not a hang.

use std::panic;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use stealpool::{BuildError, FuncPool, Pool, RebootError, ShutdownTimeout, SubmitError, Task, TuneError};

mod common;
use common::*;

/// Called from inside one of the pool's own tasks.
#[path = "misuse/inside.rs"]
mod inside;

/// FuncPool: the same refusals hand the argument back.
#[path = "misuse/func_pool.rs"]
mod func_pool;

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

/// A counter and tasks that bump it.
#[derive(Clone, Default)]
struct Count(Arc<AtomicUsize>);

impl Count {
    fn task(&self) -> impl FnOnce() + Send + 'static {
        let c = self.0.clone();
        move || {
            c.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A build error's Display, checked non-empty.
fn shown(error: &BuildError) -> String {
    let text = error.to_string();
    assert!(!text.trim().is_empty(), "empty Display for {error:?}");
    assert!(!format!("{error:?}").is_empty());
    text
}

// ---------------------------------------------------------------------------
// Bad settings: each the right BuildError, with a Display, and no thread.
// (Also: stats_current.rs `zero_capacity_is_a_build_error`, capacity.rs
// `builder_rejects_inconsistent_capacity_settings`.)
// ---------------------------------------------------------------------------

#[test]
fn capacity_zero_is_a_build_error() {
    let _s = serial();
    let _w = Watchdog::new("capacity_zero_is_a_build_error", 60);
    const P: &str = "mu-cap0-";
    for prealloc in [false, true] {
        match named_builder(P, 0).prealloc(prealloc).build() {
            Err(e @ BuildError::ZeroCapacity) => {
                assert!(shown(&e).contains("capacity"), "{e}");
            }
            Err(e) => panic!("capacity(0) must be ZeroCapacity, got {e:?}"),
            Ok(_) => panic!("capacity(0) built a pool"),
        }
        assert_eq!(threads_named(P), 0, "a refused build started a thread");
    }
}

#[test]
fn tune_zero_or_above_max_is_refused_and_changes_nothing() {
    // Also: capacity.rs `tune_errors_change_nothing` (with rendezvous proofs).
    let _s = serial();
    let _w = Watchdog::new("tune_zero_or_above_max_is_refused_and_changes_nothing", 60);
    let pool = named_builder("mu-tune-", 3).max_capacity(5).build().expect("build");
    match pool.tune(0) {
        Err(e @ TuneError::Zero) => assert!(!e.to_string().is_empty()),
        other => panic!("tune(0) must be Err(TuneError::Zero), got {other:?}"),
    }
    assert_eq!(
        (pool.capacity(), pool.stats().capacity),
        (3, 3),
        "tune(0) changed the capacity"
    );
    for requested in [6, 1000, usize::MAX] {
        match pool.tune(requested) {
            Err(e @ TuneError::AboveMax { .. }) => {
                let TuneError::AboveMax { requested: r, max } = e else {
                    unreachable!()
                };
                assert_eq!((r, max), (requested, 5));
                let text = e.to_string();
                assert!(text.contains(&requested.to_string()) && text.contains('5'), "{text}");
            }
            other => panic!("tune({requested}) with max_capacity 5 must be Err(AboveMax), got {other:?}"),
        }
        assert_eq!(
            (pool.capacity(), pool.stats().capacity),
            (3, 3),
            "a refused tune changed the capacity"
        );
    }
    // The pool works on, at its old capacity.
    let done = Count::default();
    for _ in 0..100 {
        pool.submit(done.task()).expect("submit");
    }
    pool.wait_idle();
    assert_eq!(done.get(), 100);
    // A shut-down pool refuses the same way.
    pool.shutdown();
    assert!(matches!(pool.tune(0), Err(TuneError::Zero)));
    assert!(matches!(pool.tune(6), Err(TuneError::AboveMax { .. })));
    assert_eq!(pool.capacity(), 3);
}

#[test]
fn queue_settings_without_a_queue_limit_are_build_errors() {
    let _s = serial();
    let _w = Watchdog::new("queue_settings_without_a_queue_limit_are_build_errors", 60);
    const P: &str = "mu-ql0-";
    match named_builder(P, 2).nonblocking(true).prealloc(true).build() {
        Err(e @ BuildError::NonblockingWithoutQueueLimit) => assert!(shown(&e).contains("queue_limit"), "{e}"),
        Err(e) => panic!("nonblocking without queue_limit must be refused, got {e:?}"),
        Ok(_) => panic!("nonblocking(true) without a queue_limit built a pool"),
    }
    match named_builder(P, 2).max_blocked_submitters(4).prealloc(true).build() {
        Err(e @ BuildError::MaxBlockedSubmittersWithoutQueueLimit { submitters: 4 }) => {
            assert!(shown(&e).contains("queue_limit"), "{e}")
        }
        Err(e) => panic!("max_blocked_submitters without queue_limit must be refused, got {e:?}"),
        Ok(_) => panic!("max_blocked_submitters(4) without a queue_limit built a pool"),
    }
    assert_eq!(threads_named(P), 0, "a refused build started a thread");
    // nonblocking(false) is the default and no contradiction.
    let pool = named_builder(P, 1)
        .nonblocking(false)
        .build()
        .expect("nonblocking(false) alone");
    pool.shutdown();
}

#[test]
fn keep_alive_zero_is_a_build_error() {
    let _s = serial();
    let _w = Watchdog::new("keep_alive_zero_is_a_build_error", 60);
    const P: &str = "mu-ka0-";
    match named_builder(P, 2).keep_alive(Duration::ZERO).prealloc(true).build() {
        Err(e @ BuildError::ZeroKeepAlive) => assert!(shown(&e).contains("keep_alive"), "{e}"),
        Err(e) => panic!("keep_alive(ZERO) must be ZeroKeepAlive, got {e:?}"),
        Ok(_) => panic!("keep_alive(ZERO) built a pool"),
    }
    assert_eq!(threads_named(P), 0, "a refused build started a thread");
    // The smallest non-zero keep-alive is fine.
    let pool = named_builder(P, 1)
        .keep_alive(Duration::from_nanos(1))
        .build()
        .expect("build");
    let done = Count::default();
    for _ in 0..50 {
        pool.submit(done.task()).expect("submit");
    }
    pool.shutdown();
    assert_eq!(done.get(), 50);
    assert_threads_gone(P, "after shutdown");
}

#[test]
fn min_workers_above_capacity_is_a_build_error() {
    let _s = serial();
    let _w = Watchdog::new("min_workers_above_capacity_is_a_build_error", 60);
    const P: &str = "mu-minw-";
    match named_builder(P, 2).min_workers(3).prealloc(true).build() {
        Err(e @ BuildError::MinWorkersAboveCapacity { .. }) => {
            let BuildError::MinWorkersAboveCapacity { min_workers, capacity } = &e else {
                unreachable!()
            };
            assert_eq!((*min_workers, *capacity), (3, 2));
            let text = shown(&e);
            assert!(text.contains('3') && text.contains('2'), "{text}");
        }
        Err(e) => panic!("min_workers(3) > capacity(2) must be MinWorkersAboveCapacity, got {e:?}"),
        Ok(_) => panic!("min_workers above capacity built a pool"),
    }
    assert_eq!(threads_named(P), 0, "a refused build started a thread");
}

#[test]
fn max_capacity_below_capacity_is_a_build_error() {
    let _s = serial();
    let _w = Watchdog::new("max_capacity_below_capacity_is_a_build_error", 60);
    const P: &str = "mu-maxc-";
    match named_builder(P, 4).max_capacity(3).prealloc(true).build() {
        Err(e @ BuildError::MaxCapacityBelowCapacity { .. }) => {
            let BuildError::MaxCapacityBelowCapacity { capacity, max_capacity } = &e else {
                unreachable!()
            };
            assert_eq!((*capacity, *max_capacity), (4, 3));
            let text = shown(&e);
            assert!(text.contains('4') && text.contains('3'), "{text}");
        }
        Err(e) => panic!("max_capacity(3) < capacity(4) must be MaxCapacityBelowCapacity, got {e:?}"),
        Ok(_) => panic!("max_capacity below capacity built a pool"),
    }
    assert_eq!(threads_named(P), 0, "a refused build started a thread");
    // max_capacity(0) is below every capacity.
    assert!(matches!(
        named_builder(P, 1).max_capacity(0).build(),
        Err(BuildError::MaxCapacityBelowCapacity { .. })
    ));
}

/// Found while writing these tests: an absurd `max_capacity` is not
/// validated. `Shared::new` allocates `max_capacity` worker slots up front,
/// so `capacity(usize::MAX)` (whose default ceiling is `usize::MAX`) panics
/// with "capacity overflow" inside `build`, and `max_capacity(1 << 40)` makes
/// the allocator abort the whole process ("memory allocation of
/// 281474976710656 bytes failed"), which no test can catch in-process.
#[test]
fn absurd_capacity_is_a_build_error_not_a_panic() {
    let _s = serial();
    let _w = Watchdog::new("absurd_capacity_is_a_build_error_not_a_panic", 60);
    let outcome = panic::catch_unwind(|| Pool::builder().capacity(usize::MAX).pin_workers(false).build().err());
    match outcome {
        Ok(Some(error)) => {
            shown(&error);
        }
        Ok(None) => panic!("capacity(usize::MAX) built a pool"),
        Err(payload) => panic!(
            "capacity(usize::MAX): build() panicked ({}) instead of returning a BuildError",
            panic_message(&*payload)
        ),
    }
}

// ---------------------------------------------------------------------------
// Panicking user callbacks.
// ---------------------------------------------------------------------------

#[test]
fn a_panicking_panic_handler_leaves_the_worker_running() {
    // Also: panics.rs `panicking_panic_handler_does_not_kill_worker`.
    let _s = serial();
    let _w = Watchdog::new("a_panicking_panic_handler_leaves_the_worker_running", 60);
    const P: &str = "mu-phnd-";
    let calls = Count::default();
    let c = calls.clone();
    // One worker: the very thread whose handler panicked must run the rest.
    let pool = named_builder(P, 1)
        .panic_handler(move |payload| {
            c.0.fetch_add(1, Ordering::SeqCst);
            panic!("the handler panics too, handling {:?}", panic_message(&*payload));
        })
        .build()
        .expect("build");
    let first = pool.spawn(|| thread::current().id()).expect("spawn");
    let worker = join_timeout(first).expect("no panic");
    for i in 0..10 {
        pool.submit(move || panic!("task {i} panics")).expect("submit");
    }
    let done = Count::default();
    for _ in 0..100 {
        pool.submit(done.task()).expect("submit");
    }
    pool.wait_idle();
    assert_eq!(calls.get(), 10, "the handler runs once per panicking task");
    assert_eq!(done.get(), 100, "tasks after a panicking panic handler must still run");
    assert_eq!(pool.stats().panicked, 10);
    let later = pool.spawn(|| thread::current().id()).expect("spawn");
    assert_eq!(
        join_timeout(later).ok(),
        Some(worker),
        "the worker thread was replaced after its panic handler panicked"
    );
    assert_eq!(threads_named(P), 1);
    pool.shutdown();
    assert_threads_gone(P, "after shutdown");
}

/// A `thread_name` closure that panics for the worker indices in `bad`.
fn name_panicking_for(prefix: &'static str, bad: &'static [usize]) -> impl Fn(usize) -> String + Send + Sync {
    move |i| {
        if bad.contains(&i) {
            panic!("thread_name refuses worker {i}");
        }
        format!("{prefix}{i}")
    }
}

#[test]
fn a_panicking_thread_name_with_prealloc_fails_the_build_and_leaves_no_thread() {
    let _s = serial();
    let _w = Watchdog::new(
        "a_panicking_thread_name_with_prealloc_fails_the_build_and_leaves_no_thread",
        60,
    );
    const P: &str = "mu-tnpre-";
    // The first, a middle and the last worker: the ones started before the
    // failure are shut down and joined by `build`.
    for (bad, expected) in [(&[0usize][..], 0usize), (&[1][..], 1), (&[2][..], 2), (&[1, 2][..], 1)] {
        let outcome = Pool::builder()
            .capacity(3)
            .prealloc(true)
            .pin_workers(false)
            .thread_name(name_panicking_for(P, bad))
            .build();
        match outcome {
            Err(e @ BuildError::ThreadNamePanicked(_)) => {
                let BuildError::ThreadNamePanicked(index) = &e else {
                    unreachable!()
                };
                assert_eq!(*index, expected, "ThreadNamePanicked names the first failing worker");
                assert!(shown(&e).contains(&expected.to_string()), "{e}");
            }
            Err(e) => panic!("expected ThreadNamePanicked({expected}), got {e:?}"),
            Ok(_) => panic!("a panicking thread_name with prealloc built a pool"),
        }
        // `build` joined what it started. A joined thread's /proc entry can
        // outlive the join by a moment (the kernel releases the task after
        // it wakes the joiner), so allow that moment; a thread left running
        // would stay forever.
        assert!(
            wait_until(SOON, || threads_named(P) == 0),
            "build failed but left worker threads running"
        );
    }
    // The same through a FuncPool.
    match FuncPool::builder()
        .capacity(2)
        .prealloc(true)
        .pin_workers(false)
        .thread_name(name_panicking_for(P, &[1]))
        .build(|_: u8| ())
    {
        Err(BuildError::ThreadNamePanicked(1)) => {}
        other => panic!("FuncPool: expected ThreadNamePanicked(1), got {:?}", other.err()),
    }
    assert_eq!(
        threads_named(P),
        0,
        "FuncPool build failed but left worker threads running"
    );
}

/// Without prealloc, threads are named when they start on demand, and the
/// naming panic has no caller to go to: the thread starts under the default
/// name and the pool reports it once. Every task runs, and the threads the
/// closure did name leave at shutdown.
#[test]
fn a_thread_name_panicking_for_one_worker_without_prealloc_loses_nothing() {
    let _s = serial();
    let _w = Watchdog::new(
        "a_thread_name_panicking_for_one_worker_without_prealloc_loses_nothing",
        60,
    );
    const P: &str = "mu-tnone-";
    let pool = Pool::builder()
        .capacity(3)
        .pin_workers(false)
        .thread_name(name_panicking_for(P, &[1]))
        .build()
        .expect("no thread starts in build without prealloc");
    let done = Count::default();
    for _ in 0..30 {
        let d = done.clone();
        pool.submit(move || {
            thread::sleep(Duration::from_millis(1));
            d.0.fetch_add(1, Ordering::SeqCst);
        })
        .expect("submit");
    }
    pool.wait_idle();
    assert_eq!(done.get(), 30);
    assert!(threads_named(P) >= 1);
    pool.shutdown();
    assert_threads_gone(P, "after shutdown");
}

/// Runs `pool.shutdown()` on a helper thread; whether it returned in time.
/// (On a timeout the helper stays blocked: the test fails anyway.)
fn shutdown_returns_within(pool: &Pool, timeout: Duration) -> bool {
    let (tx, rx) = mpsc::channel();
    let p = pool.clone();
    thread::spawn(move || {
        p.shutdown();
        let _ = tx.send(());
    });
    rx.recv_timeout(timeout).is_ok()
}

/// Submits one task to a pool that cannot start any thread, and checks
/// that it runs or comes back, and that shutdown returns. Never hangs: if
/// the task is stranded, `shutdown_now` (which needs no thread) takes it out
/// before the test fails.
fn first_submit_runs_or_comes_back(pool: &Pool, what: &str) {
    let (tx, rx) = mpsc::channel::<&'static str>();
    let tx2 = tx.clone();
    match pool.submit(move || tx2.send("ran in the pool").unwrap()) {
        Ok(()) => {}
        Err(refused) => {
            // Handed back: the caller still has the task.
            (refused.into_inner())();
            tx.send("came back").unwrap();
        }
    }
    match rx.recv_timeout(SOON) {
        Ok(_) => {}
        Err(_) => {
            let stranded = pool.shutdown_now();
            let count = stranded.len();
            for task in stranded {
                task.run();
            }
            panic!(
                "{what}: submit returned Ok, but the task did not run within {SOON:?}: no worker thread could \
                 be started, and the task sat in the queue ({count} task(s) taken back out by shutdown_now); \
                 wait_idle, shutdown and dropping the last handle would hang forever"
            );
        }
    }
    assert!(
        shutdown_returns_within(pool, SOON),
        "{what}: shutdown did not return within {SOON:?}"
    );
}

/// Without prealloc, a `thread_name` closure that panics for worker 0 (or
/// for every worker) would mean no thread can ever start: `submit` returns
/// `Ok` and the task would sit in the injector forever, with `wait_idle`,
/// `shutdown` and the last handle's drop hanging. The pool falls back to
/// the default name for a thread started on demand, so the task runs (or,
/// acceptable too, `submit` hands the closure back).
#[test]
fn a_thread_name_panicking_without_prealloc_never_strands_the_first_task() {
    let _s = serial();
    let _w = Watchdog::new(
        "a_thread_name_panicking_without_prealloc_never_strands_the_first_task",
        60,
    );
    const P: &str = "mu-tnall-";
    let pool = Pool::builder()
        .capacity(2)
        .pin_workers(false)
        .thread_name(name_panicking_for(P, &[0, 1]))
        .build()
        .expect("no thread starts in build without prealloc");
    first_submit_runs_or_comes_back(&pool, "thread_name panics");
    assert_threads_gone(P, "after shutdown");
}

/// The same root cause through another bad setting: a stack size the OS
/// cannot give. With prealloc, `build` reports it (checked here); without,
/// `start_missing_worker` prints "could not start worker 0" and the first
/// task is stranded as above.
#[test]
fn an_impossible_stack_size_with_prealloc_is_a_spawn_error() {
    let _s = serial();
    let _w = Watchdog::new("an_impossible_stack_size_with_prealloc_is_a_spawn_error", 60);
    const P: &str = "mu-stk-";
    match named_builder(P, 2).stack_size(1 << 62).prealloc(true).build() {
        Err(e @ BuildError::Spawn(_)) => {
            shown(&e);
            assert!(std::error::Error::source(&e).is_some(), "Spawn carries the io::Error");
        }
        Err(e) => panic!("expected BuildError::Spawn, got {e:?}"),
        Ok(_) => panic!("a 4 EiB stack was granted"),
    }
    assert_eq!(threads_named(P), 0);
}

#[test]
fn an_impossible_stack_size_without_prealloc_never_strands_the_first_task() {
    let _s = serial();
    let _w = Watchdog::new(
        "an_impossible_stack_size_without_prealloc_never_strands_the_first_task",
        60,
    );
    let pool = named_builder("mu-stk2-", 2).stack_size(1 << 62).build().expect("build");
    first_submit_runs_or_comes_back(&pool, "stack_size(1 << 62)");
}

// ---------------------------------------------------------------------------
// Shutdown with work that does not end, and with a very long queue.
// ---------------------------------------------------------------------------

#[test]
fn a_task_that_never_returns_makes_shutdown_timeout_give_up() {
    // Also: lifecycle.rs `shutdown_timeout_gives_up_then_succeeds`.
    let _s = serial();
    let _w = Watchdog::new("a_task_that_never_returns_makes_shutdown_timeout_give_up", 60);
    const P: &str = "mu-never-";
    const SHORT: Duration = Duration::from_millis(100);
    let pool = named_builder(P, 2).build().expect("build");
    let gate = block_worker(&pool); // "never" returns: until the end of the test
    let done = Count::default();
    for _ in 0..20 {
        pool.submit(done.task()).expect("submit");
    }
    for attempt in 0..2 {
        let t0 = Instant::now();
        let r = pool.shutdown_timeout(SHORT);
        let took = t0.elapsed();
        assert_eq!(r, Err(ShutdownTimeout), "attempt {attempt}");
        assert!(
            took >= SHORT,
            "attempt {attempt}: gave up after {took:?}, before {SHORT:?}"
        );
        assert!(
            took < SOON,
            "attempt {attempt}: shutdown_timeout({SHORT:?}) took {took:?}"
        );
        assert!(pool.is_closed());
        assert!(pool.submit(|| ()).unwrap_err().is_closed());
    }
    // The other worker drained the accepted work meanwhile.
    assert!(wait_until(SOON, || done.get() == 20), "{} of 20 ran", done.get());
    assert!(threads_named(P) >= 1, "the blocked worker is still there");
    gate.open();
    assert!(
        shutdown_returns_within(&pool, SOON),
        "shutdown did not return once the task was released"
    );
    assert_threads_gone(P, "after shutdown");
    assert_eq!(pool.stats().live_workers, 0);
}

#[test]
fn a_million_queued_tasks_all_come_back_from_shutdown_now() {
    // Also: lifecycle.rs `shutdown_now_hands_back_every_queued_task` (1,000
    // tasks and spawns).
    let _s = serial();
    let _w = Watchdog::new("a_million_queued_tasks_all_come_back_from_shutdown_now", 120);
    const P: &str = "mu-million-";
    const N: usize = 1_000_000;
    let pool = named_builder(P, 1).build().expect("build");
    let gate = block_worker(&pool);
    let runs: Arc<Vec<AtomicU8>> = Arc::new((0..N).map(|_| AtomicU8::new(0)).collect());
    for i in 0..N {
        let runs = runs.clone();
        pool.submit(move || {
            runs[i].fetch_add(1, Ordering::Relaxed);
        })
        .expect("submit");
    }
    assert_eq!(pool.stats().queued, N);
    // shutdown_now from outside waits for the running (blocked) task, so it
    // runs on a helper; the gate opens once the queue was emptied.
    let (tx, rx) = mpsc::channel::<Vec<Task>>();
    let p = pool.clone();
    let stopper = thread::spawn(move || tx.send(p.shutdown_now()).unwrap());
    assert!(
        wait_until(Duration::from_secs(60), || pool.stats().queued == 0),
        "shutdown_now did not empty the queue within 60 s: {:?}",
        pool.stats()
    );
    gate.open();
    let tasks = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("shutdown_now did not return after the running task ended");
    stopper.join().unwrap();
    assert_eq!(tasks.len(), N, "shutdown_now must hand back every queued task");
    assert!(
        runs.iter().all(|r| r.load(Ordering::Relaxed) == 0),
        "a queued task ran in the pool"
    );
    assert_threads_gone(P, "after shutdown_now");
    let st = pool.stats();
    assert_eq!(st.queued, 0, "{st:?}");
    assert_eq!(st.submitted, N as u64 + 1, "{st:?}");
    assert_eq!(st.completed, 1, "only the blocker ran in the pool: {st:?}");
    assert_eq!(st.withdrawn, N as u64, "every queued task was handed back: {st:?}");
    assert_eq!((st.live_workers, st.busy_workers), (0, 0), "{st:?}");
    for task in tasks {
        task.run();
    }
    let bad = runs.iter().filter(|r| r.load(Ordering::Relaxed) != 1).count();
    assert_eq!(bad, 0, "{bad} tasks did not run exactly once");
    // Tasks run by hand count as completed, no longer as withdrawn.
    let after = pool.stats();
    assert_eq!(
        (after.queued, after.submitted, after.completed, after.withdrawn),
        (0, N as u64 + 1, N as u64 + 1, 0)
    );
    pool.shutdown();
}

// ---------------------------------------------------------------------------
// Queue-limit edge inputs.
// ---------------------------------------------------------------------------

#[test]
fn zero_timeout_and_zero_blocked_submitters_refuse_at_once_with_the_closure() {
    // Also: backpressure.rs (the same refusals with ordinary settings).
    let _s = serial();
    let _w = Watchdog::new(
        "zero_timeout_and_zero_blocked_submitters_refuse_at_once_with_the_closure",
        60,
    );
    let pool = named_builder("mu-zero-", 1)
        .queue_limit(1)
        .max_blocked_submitters(0)
        .build()
        .expect("build");
    let gate = block_worker(&pool);
    let done = Count::default();
    pool.submit(done.task()).expect("the one queue place");
    let t0 = Instant::now();
    match pool.submit(done.task()) {
        Err(SubmitError::Full(f)) => f.into_inner()(),
        other => panic!(
            "max_blocked_submitters(0): expected Full at once, got {:?}",
            other.err()
        ),
    }
    match pool.submit_timeout(done.task(), Duration::ZERO) {
        Err(SubmitError::Full(f)) | Err(SubmitError::Timeout(f)) => f.into_inner()(),
        other => panic!("submit_timeout(ZERO): expected Full/Timeout, got {:?}", other.err()),
    }
    assert!(t0.elapsed() < SOON);
    assert_eq!(done.get(), 2, "both refused closures came back and ran");
    gate.open();
    pool.wait_idle();
    assert_eq!(done.get(), 3);
    pool.shutdown();
}

/// `submit_timeout` "waits at most `timeout` for room, even on a nonblocking
/// pool". A timeout too large for `Instant` (`Duration::MAX`, or any whose
/// seconds overflow the clock's i64) makes `checked_add` return `None`;
/// that must mean "wait without a deadline", not the pool's configured
/// policy (on a nonblocking pool, `Full` at once). The same path serves
/// `FuncPool::invoke_timeout`.
#[test]
fn submit_timeout_with_a_huge_timeout_waits_on_a_nonblocking_pool() {
    let _s = serial();
    let _w = Watchdog::new("submit_timeout_with_a_huge_timeout_waits_on_a_nonblocking_pool", 60);
    let pool = named_builder("mu-tmax-", 1)
        .queue_limit(1)
        .nonblocking(true)
        .build()
        .expect("build");
    let gate = block_worker(&pool);
    let done = Count::default();
    pool.submit(done.task()).expect("the one queue place");
    // Room opens after 200 ms.
    let g = gate.0.clone();
    let opener = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        g.store(true, Ordering::SeqCst);
    });
    let outcome = pool.submit_timeout(done.task(), Duration::MAX);
    opener.join().unwrap();
    match outcome {
        Ok(()) => {}
        Err(e) => {
            let full = e.is_full();
            (e.into_inner())();
            panic!("submit_timeout(Duration::MAX) gave up at once (full: {full}) instead of waiting for room");
        }
    }
    pool.wait_idle();
    assert_eq!(done.get(), 2);
    pool.shutdown();
}
