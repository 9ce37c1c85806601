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
// Called from inside one of the pool's own tasks (the table in docs/guide/tasks.md).
// ---------------------------------------------------------------------------

#[test]
fn wait_idle_inside_own_task_panics_with_a_clear_message() {
    // Also: shutdown.rs `wait_idle_from_inside_a_task_panics`.
    let _s = serial();
    let _w = Watchdog::new("wait_idle_inside_own_task_panics_with_a_clear_message", 60);
    const P: &str = "mu-widle-";
    let handled = Arc::new(Mutex::new(Vec::new()));
    let h2 = handled.clone();
    let pool = named_builder(P, 1)
        .panic_handler(move |payload| h2.lock().unwrap().push(panic_message(&*payload)))
        .build()
        .expect("build");
    let check = |message: &str| {
        assert!(
            message.contains("wait_idle") && message.contains("inside"),
            "the panic must name the problem, got {message:?}"
        );
    };
    // spawn: the panic is the task's, so its JoinHandle gets it.
    let inner = pool.clone();
    let h = pool.spawn(move || inner.wait_idle()).expect("spawn");
    let payload = join_timeout(h)
        .expect_err("wait_idle inside its own pool must panic")
        .into_panic();
    check(&panic_message(&*payload));
    // submit: the panic goes to the panic handler, like any task panic.
    let inner = pool.clone();
    pool.submit(move || inner.wait_idle()).expect("submit");
    // Through Pool::current() too.
    pool.submit(|| Pool::current().expect("inside a worker").wait_idle())
        .expect("submit");
    pool.wait_idle();
    let handled = handled.lock().unwrap().clone();
    assert_eq!(handled.len(), 2, "{handled:?}");
    handled.iter().for_each(|m| check(m));
    assert_eq!(pool.stats().panicked, 3);
    // The worker survived.
    let done = Count::default();
    pool.submit(done.task()).expect("submit");
    pool.wait_idle();
    assert_eq!(done.get(), 1);
    assert_eq!(threads_named(P), 1);
    pool.shutdown();
}

/// Starts a task on a 1-worker `pool` that waits for `go`, then calls `call`
/// with a clone of the pool and sends back what it returned and how long the
/// call took. Queues `queued` counting tasks behind it (they cannot start
/// before the call returns: the only worker runs the caller).
fn call_inside_with_queue<R: Send + 'static>(
    pool: &Pool,
    queued: usize,
    call: impl FnOnce(&Pool) -> R + Send + 'static,
) -> (R, Duration, Count, usize) {
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (back_tx, back_rx) = mpsc::channel();
    let (entered_tx, entered_rx) = mpsc::channel();
    let inner = pool.clone();
    let done = Count::default();
    let d = done.clone();
    pool.submit(move || {
        entered_tx.send(()).unwrap();
        go_rx.recv_timeout(Duration::from_secs(30)).expect("go signal");
        let t0 = Instant::now();
        let r = call(&inner);
        let took = t0.elapsed();
        // Queued tasks that ran while the call was made (must be none).
        let ran_meanwhile = d.get();
        back_tx.send((r, took, ran_meanwhile)).unwrap();
    })
    .expect("submit caller");
    entered_rx.recv_timeout(SOON).expect("the calling task did not start");
    for _ in 0..queued {
        pool.submit(done.task()).expect("submit queued");
    }
    go_tx.send(()).unwrap();
    let (r, took, ran_meanwhile) = back_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the call inside the pool's own task did not return (deadlock)");
    (r, took, done, ran_meanwhile)
}

#[test]
fn shutdown_inside_own_task_closes_and_returns_at_once() {
    // Also: shutdown.rs `shutdown_from_inside_a_task_returns`.
    let _s = serial();
    let _w = Watchdog::new("shutdown_inside_own_task_closes_and_returns_at_once", 60);
    const P: &str = "mu-sdin-";
    let pool = named_builder(P, 1).build().expect("build");
    let (closed, took, done, ran_meanwhile) = call_inside_with_queue(&pool, 100, |p| {
        p.shutdown();
        p.is_closed()
    });
    assert!(closed, "shutdown inside a task must close the pool");
    assert_eq!(ran_meanwhile, 0, "shutdown inside returned only after the queue ran?");
    assert!(took < SOON, "shutdown inside a task took {took:?}");
    assert!(pool.submit(|| ()).unwrap_err().is_closed());
    // Nobody outside calls shutdown: the workers drain and exit by themselves.
    assert!(
        wait_until(SOON, || done.get() == 100),
        "{} of 100 queued tasks ran after an inside shutdown",
        done.get()
    );
    assert_threads_gone(P, "after the workers drained an inside shutdown");
    pool.shutdown(); // from outside now: returns at once
    assert_eq!(pool.stats().live_workers, 0);
}

#[test]
fn shutdown_timeout_inside_own_task_is_err_at_once_and_closes() {
    let _s = serial();
    let _w = Watchdog::new("shutdown_timeout_inside_own_task_is_err_at_once_and_closes", 60);
    const P: &str = "mu-stoin-";
    let pool = named_builder(P, 1).build().expect("build");
    // A long timeout: "at once" means it does not even start waiting.
    let (result, took, done, ran_meanwhile) = call_inside_with_queue(&pool, 100, |p| {
        (p.shutdown_timeout(Duration::from_secs(60)), p.is_closed())
    });
    assert_eq!(result, (Err(ShutdownTimeout), true));
    assert!(took < SOON, "shutdown_timeout(60 s) inside a task took {took:?}");
    assert_eq!(ran_meanwhile, 0);
    assert!(!ShutdownTimeout.to_string().is_empty());
    assert!(pool.submit(|| ()).unwrap_err().is_closed());
    assert!(
        wait_until(SOON, || done.get() == 100),
        "{} of 100 queued tasks ran",
        done.get()
    );
    assert_threads_gone(P, "after the workers drained");
    assert_eq!(pool.shutdown_timeout(SOON), Ok(()), "from outside it succeeds");
}

#[test]
fn shutdown_now_inside_own_task_hands_back_without_joining() {
    let _s = serial();
    let _w = Watchdog::new("shutdown_now_inside_own_task_hands_back_without_joining", 60);
    const P: &str = "mu-snin-";
    let pool = named_builder(P, 1).build().expect("build");
    let ((tasks, closed), took, done, ran_meanwhile) =
        call_inside_with_queue(&pool, 100, |p| (p.shutdown_now(), p.is_closed()));
    assert!(closed);
    assert!(took < SOON, "shutdown_now inside a task took {took:?}");
    assert_eq!(ran_meanwhile, 0);
    assert_eq!(tasks.len(), 100, "every queued task comes back");
    // The worker exits on its own once the calling task returns.
    assert_threads_gone(P, "after an inside shutdown_now");
    assert_eq!(done.get(), 0, "a handed-back task also ran in the pool");
    let st = pool.stats();
    assert_eq!((st.queued, st.submitted, st.completed), (0, 101, 1), "{st:?}");
    for task in tasks {
        task.run();
    }
    assert_eq!(done.get(), 100, "each handed-back task runs once by hand");
    pool.shutdown();
}

#[test]
fn reboot_inside_own_task_is_refused() {
    let _s = serial();
    let _w = Watchdog::new("reboot_inside_own_task_is_refused", 60);
    const P: &str = "mu-rbin-";
    let pool = named_builder(P, 2).build().expect("build");
    // On a running pool...
    let inner = pool.clone();
    let h = pool.spawn(move || inner.reboot()).expect("spawn");
    match join_timeout(h) {
        Ok(Err(e @ RebootError::InsideOwnTask)) => assert!(!e.to_string().is_empty()),
        Ok(other) => panic!("reboot inside must be Err(InsideOwnTask), got {other:?}"),
        Err(_) => panic!("reboot inside panicked"),
    }
    assert!(!pool.is_closed(), "a refused reboot changed the pool");
    // ... and on one it just shut down itself.
    let inner = pool.clone();
    let h = pool
        .spawn(move || {
            inner.shutdown();
            inner.reboot()
        })
        .expect("spawn");
    assert!(matches!(join_timeout(h), Ok(Err(RebootError::InsideOwnTask))));
    assert!(pool.is_closed());
    // From outside, reboot waits for the old threads and opens it again.
    pool.reboot().expect("reboot from outside");
    let done = Count::default();
    pool.submit(done.task()).expect("submit after reboot");
    pool.wait_idle();
    assert_eq!(done.get(), 1);
    pool.shutdown();
    assert_threads_gone(P, "after shutdown");
}

#[test]
fn tune_inside_own_task_works() {
    let _s = serial();
    let _w = Watchdog::new("tune_inside_own_task_works", 60);
    const P: &str = "mu-tunin-";
    let pool = named_builder(P, 1).max_capacity(4).build().expect("build");
    let inner = pool.clone();
    let h = pool
        .spawn(move || {
            let zero = matches!(inner.tune(0), Err(TuneError::Zero));
            let above = matches!(inner.tune(5), Err(TuneError::AboveMax { requested: 5, max: 4 }));
            inner.tune(2).expect("tune(2) inside a task");
            let grown = inner.capacity();
            // This task keeps the first worker: the child can only run on a
            // second one, which the grow made possible.
            let (tx, rx) = mpsc::channel();
            inner
                .submit(move || tx.send(thread::current().id()).unwrap())
                .expect("submit child");
            let child = rx.recv_timeout(SOON).ok();
            inner.tune(1).expect("tune(1) inside a task");
            (zero, above, grown, child.map(|id| id != thread::current().id()))
        })
        .expect("spawn");
    assert_eq!(
        join_timeout(h).ok(),
        Some((true, true, 2, Some(true))),
        "(tune(0) refused, tune(5) refused, capacity after tune(2), child ran on another worker)"
    );
    assert_eq!((pool.capacity(), pool.stats().capacity), (1, 1));
    pool.shutdown();
    assert_threads_gone(P, "after shutdown");
}

#[test]
fn scope_join_and_join_handles_inside_own_task_work() {
    // Also: scope_join.rs `scope_and_join_inside_the_only_worker_do_not_deadlock`,
    // `join_and_scope_inside_submitted_task`.
    let _s = serial();
    let _w = Watchdog::new("scope_join_and_join_handles_inside_own_task_work", 60);
    for capacity in [1, 2] {
        let pool = named_builder("mu-scin-", capacity).build().expect("build");
        let inner = pool.clone();
        let h = pool
            .spawn(move || {
                let mut data = vec![1u64; 64];
                inner.scope(|s| {
                    for chunk in data.chunks_mut(8) {
                        s.spawn(move || chunk.iter_mut().for_each(|x| *x *= 3));
                    }
                });
                let (a, b) = inner.join(|| 20, || 22);
                // JoinHandle::join inside: the worker runs the child itself if need be.
                let child = inner.spawn(|| 7).expect("spawn child").join().expect("child panicked");
                (data.iter().sum::<u64>(), a + b, child)
            })
            .expect("spawn");
        assert_eq!(join_timeout(h).ok(), Some((192, 42, 7)), "capacity {capacity}");
        pool.shutdown();
    }
}

#[test]
fn submit_inside_own_task_on_a_full_bounded_queue_never_blocks_or_fails() {
    // Also: backpressure.rs `submits_from_inside_a_task_never_block_or_get_refused`.
    let _s = serial();
    let _w = Watchdog::new(
        "submit_inside_own_task_on_a_full_bounded_queue_never_blocks_or_fails",
        60,
    );
    for nonblocking in [false, true] {
        let pool = named_builder("mu-fullin-", 1)
            .queue_limit(1)
            .nonblocking(nonblocking)
            .build()
            .expect("build");
        let children = Count::default();
        let filler = Count::default();
        let ch = children.clone();
        let (results, took, _, _) = call_inside_with_queue(&pool, 1, move |p| {
            // The queue is full and this task holds the only worker: waiting
            // for room here could never end.
            let mut ok = Vec::new();
            for _ in 0..5 {
                ok.push(p.submit(ch.task()).is_ok());
                ok.push(p.submit_timeout(ch.task(), Duration::from_millis(1)).is_ok());
            }
            ok.push(p.spawn(ch.task()).is_ok());
            ok
        });
        // (call_inside_with_queue filled the one queue place before "go".)
        assert_eq!(
            results,
            vec![true; 11],
            "nonblocking={nonblocking}: an inside submit was refused"
        );
        assert!(took < SOON, "nonblocking={nonblocking}: inside submits took {took:?}");
        pool.wait_idle();
        assert_eq!(children.get(), 11, "nonblocking={nonblocking}: children lost");
        assert_eq!(pool.stats().rejected, 0);
        // Outside, the limit holds as usual.
        let gate = block_worker(&pool);
        pool.submit(filler.task()).expect("the one queue place");
        match pool.submit_timeout(filler.task(), Duration::from_millis(1)) {
            Err(SubmitError::Full(f)) | Err(SubmitError::Timeout(f)) => f.into_inner()(),
            other => panic!(
                "nonblocking={nonblocking}: expected Full/Timeout, got {:?}",
                other.err()
            ),
        }
        gate.open();
        pool.wait_idle();
        assert_eq!(filler.get(), 2);
        pool.shutdown();
    }
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

// ---------------------------------------------------------------------------
// FuncPool: the same refusals hand the argument back.
// ---------------------------------------------------------------------------

/// An argument with an identity; `Hold` blocks the only worker until its
/// receiver gets a message or its sender is dropped.
enum Arg {
    Hold(mpsc::Sender<()>, Mutex<mpsc::Receiver<()>>),
    Value(u32),
}

fn value(arg: Arg) -> u32 {
    match arg {
        Arg::Value(v) => v,
        Arg::Hold(..) => panic!("got the blocker back"),
    }
}

fn func_pool(limit: usize, nonblocking: bool) -> (FuncPool<Arg>, Arc<Mutex<Vec<u32>>>) {
    let ran = Arc::new(Mutex::new(Vec::new()));
    let seen = ran.clone();
    let fp = FuncPool::builder()
        .capacity(1)
        .pin_workers(false)
        .thread_name(|i| format!("mu-fp-{i}"))
        .queue_limit(limit)
        .nonblocking(nonblocking)
        .build(move |arg: Arg| match arg {
            Arg::Hold(entered, release) => {
                entered.send(()).unwrap();
                let _ = release.lock().unwrap().recv_timeout(Duration::from_secs(60));
            }
            Arg::Value(v) => seen.lock().unwrap().push(v),
        })
        .expect("build");
    (fp, ran)
}

/// Blocks the FuncPool's only worker; drop the sender to release it.
fn hold(fp: &FuncPool<Arg>) -> mpsc::Sender<()> {
    let (release_tx, release_rx) = mpsc::channel();
    let (entered_tx, entered_rx) = mpsc::channel();
    fp.invoke(Arg::Hold(entered_tx, Mutex::new(release_rx)))
        .unwrap_or_else(|_| panic!("blocker refused"));
    entered_rx.recv_timeout(SOON).expect("blocker did not start");
    release_tx
}

#[test]
fn func_pool_refusals_hand_the_argument_back() {
    // Also: func_pool.rs `every_refusal_hands_the_argument_back`,
    // `shutdown_now_hands_back_every_unrun_argument`.
    let _s = serial();
    let _w = Watchdog::new("func_pool_refusals_hand_the_argument_back", 60);
    let expect_back = |outcome: Result<(), SubmitError<Arg>>, kind: &str, v: u32| match outcome {
        Err(e) => {
            let got = match &e {
                SubmitError::Full(_) => "Full",
                SubmitError::Timeout(_) => "Timeout",
                SubmitError::Closed(_) => "Closed",
            };
            assert!(!e.to_string().is_empty());
            assert_eq!(got, kind, "argument {v}");
            assert_eq!(value(e.into_inner()), v, "the very argument comes back");
        }
        Ok(()) => panic!("argument {v} accepted, expected {kind}"),
    };

    // Full and Timeout: queue limit 1, the worker held, one queued.
    let (fp, ran) = func_pool(1, true);
    let release = hold(&fp);
    fp.invoke(Arg::Value(1)).unwrap_or_else(|_| panic!("room for one"));
    expect_back(fp.invoke(Arg::Value(2)), "Full", 2);
    expect_back(
        fp.invoke_timeout(Arg::Value(3), Duration::from_millis(10)),
        "Timeout",
        3,
    );
    expect_back(fp.invoke_timeout(Arg::Value(4), Duration::ZERO), "Timeout", 4);
    // shutdown_now hands back the queued one; later invokes are Closed.
    let releaser = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        drop(release);
    });
    let back: Vec<u32> = fp.shutdown_now().into_iter().map(value).collect();
    releaser.join().unwrap();
    assert_eq!(back, [1]);
    expect_back(fp.invoke(Arg::Value(5)), "Closed", 5);
    expect_back(fp.invoke_timeout(Arg::Value(6), Duration::from_secs(1)), "Closed", 6);
    assert!(ran.lock().unwrap().is_empty(), "nothing but the blocker ran");
    assert_eq!(fp.stats().rejected, 5);

    // Closed after shutdown and after shutdown_timeout; reboot reopens.
    let (fp, ran) = func_pool(8, false);
    fp.invoke(Arg::Value(10))
        .unwrap_or_else(|_| panic!("open pool refused"));
    fp.shutdown();
    expect_back(fp.invoke(Arg::Value(11)), "Closed", 11);
    fp.reboot().expect("reboot");
    fp.invoke(Arg::Value(12))
        .unwrap_or_else(|_| panic!("rebooted pool refused"));
    assert_eq!(fp.shutdown_timeout(SOON), Ok(()));
    expect_back(fp.invoke(Arg::Value(13)), "Closed", 13);
    assert_eq!(*ran.lock().unwrap(), [10, 12], "accepted arguments ran once");
    assert_threads_gone("mu-fp-", "after FuncPool shutdown");
}

#[test]
fn func_pool_bad_settings_are_the_same_build_errors() {
    // Also: func_pool.rs `invalid_health_check_settings_are_refused`.
    let _s = serial();
    let _w = Watchdog::new("func_pool_bad_settings_are_the_same_build_errors", 60);
    let b = || {
        FuncPool::<u8>::builder()
            .pin_workers(false)
            .thread_name(|i| format!("mu-fpb-{i}"))
    };
    let f = |_: u8| ();
    let cases: Vec<(&str, Result<FuncPool<u8>, BuildError>)> = vec![
        ("capacity(0)", b().capacity(0).build(f)),
        (
            "nonblocking without queue_limit",
            b().capacity(1).nonblocking(true).build(f),
        ),
        ("keep_alive(ZERO)", b().capacity(1).keep_alive(Duration::ZERO).build(f)),
        ("min_workers > capacity", b().capacity(1).min_workers(2).build(f)),
        ("max_capacity < capacity", b().capacity(2).max_capacity(1).build(f)),
    ];
    for (what, outcome) in cases {
        let error = outcome.err().unwrap_or_else(|| panic!("{what}: built a FuncPool"));
        let ok = match what {
            "capacity(0)" => matches!(error, BuildError::ZeroCapacity),
            "nonblocking without queue_limit" => matches!(error, BuildError::NonblockingWithoutQueueLimit),
            "keep_alive(ZERO)" => matches!(error, BuildError::ZeroKeepAlive),
            "min_workers > capacity" => matches!(error, BuildError::MinWorkersAboveCapacity { .. }),
            _ => matches!(error, BuildError::MaxCapacityBelowCapacity { .. }),
        };
        assert!(ok, "{what}: wrong variant {error:?}");
        shown(&error);
    }
    assert_eq!(threads_named("mu-fpb-"), 0);
    let fp = b().capacity(1).max_capacity(2).build(f).expect("build");
    assert!(matches!(fp.tune(0), Err(TuneError::Zero)));
    assert!(matches!(fp.tune(3), Err(TuneError::AboveMax { requested: 3, max: 2 })));
    assert_eq!(fp.capacity(), 1);
    fp.shutdown();
}

/// What the FuncPool's function is asked to do with its own pool.
enum Inside {
    WaitIdle,
    Reboot(mpsc::Sender<String>),
    /// Says it started, waits for `go` (the outside fills the queue
    /// meanwhile), then invokes five `Leaf`s from inside.
    Fanout(mpsc::Sender<()>, Mutex<mpsc::Receiver<()>>, mpsc::Sender<Vec<bool>>),
    Leaf,
}

#[test]
fn func_pool_misuse_inside_its_own_function() {
    let _s = serial();
    let _w = Watchdog::new("func_pool_misuse_inside_its_own_function", 60);
    // The function reaches its own pool through this cell, emptied at the end
    // (a handle kept inside the function would keep the pool alive).
    let cell: Arc<Mutex<Option<FuncPool<Inside>>>> = Arc::new(Mutex::new(None));
    let handled = Arc::new(Mutex::new(Vec::new()));
    let leaves = Count::default();
    let (c, h, l) = (cell.clone(), handled.clone(), leaves.clone());
    let fp = FuncPool::builder()
        .capacity(1)
        .pin_workers(false)
        .thread_name(|i| format!("mu-fpin-{i}"))
        .queue_limit(1)
        .nonblocking(true)
        .panic_handler(move |payload| h.lock().unwrap().push(panic_message(&*payload)))
        .build(move |job: Inside| {
            let me = c.lock().unwrap().clone().expect("the pool is in the cell");
            match job {
                Inside::WaitIdle => me.wait_idle(),
                Inside::Reboot(tx) => tx.send(format!("{:?}", me.reboot())).unwrap(),
                Inside::Fanout(entered, go, tx) => {
                    entered.send(()).unwrap();
                    go.lock().unwrap().recv_timeout(Duration::from_secs(30)).expect("go");
                    tx.send((0..5).map(|_| me.invoke(Inside::Leaf).is_ok()).collect())
                        .unwrap();
                }
                Inside::Leaf => {
                    l.0.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
        .expect("build");
    *cell.lock().unwrap() = Some(fp.clone());
    let ok = |r: Result<(), SubmitError<Inside>>| assert!(r.is_ok(), "refused");

    // wait_idle inside the function: a task panic, to the panic handler.
    ok(fp.invoke(Inside::WaitIdle));
    fp.wait_idle();
    let messages = handled.lock().unwrap().clone();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].contains("wait_idle"), "{messages:?}");

    // reboot inside: InsideOwnTask.
    let (tx, rx) = mpsc::channel();
    ok(fp.invoke(Inside::Reboot(tx)));
    assert_eq!(rx.recv_timeout(SOON).ok().as_deref(), Some("Err(InsideOwnTask)"));

    // invoke inside on a full queue: accepted, never blocks.
    let (go_tx, go_rx) = mpsc::channel();
    let (res_tx, res_rx) = mpsc::channel();
    let (entered_tx, entered_rx) = mpsc::channel();
    ok(fp.invoke(Inside::Fanout(entered_tx, Mutex::new(go_rx), res_tx)));
    // Sent from inside the function: its queue place is free by then.
    entered_rx.recv_timeout(SOON).expect("Fanout did not start");
    ok(fp.invoke(Inside::Leaf)); // the one queue place
    match fp.invoke(Inside::Leaf) {
        Err(SubmitError::Full(leaf)) => assert!(matches!(leaf.into_inner(), Inside::Leaf)),
        other => panic!(
            "outside invoke on a full queue: expected Full(Leaf), got {:?}",
            other.err()
        ),
    }
    go_tx.send(()).unwrap();
    assert_eq!(
        res_rx.recv_timeout(SOON).ok(),
        Some(vec![true; 5]),
        "inside invokes refused or blocked"
    );
    fp.wait_idle();
    assert_eq!(leaves.get(), 6);
    cell.lock().unwrap().take();
    fp.shutdown();
    assert_threads_gone("mu-fpin-", "after shutdown");
}
