//! Handles: `JoinHandle::cancel`, `join_timeout`, `JoinError`, `TaskSet`,
//! `ScopedJoinHandle`, and what `shutdown_now` does to spawned tasks.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::{block_worker, Watchdog};
use stealpool::{JoinError, Pool, Stats, TaskSet};

fn pool(capacity: usize) -> Pool {
    Pool::builder()
        .capacity(capacity)
        .pin_workers(false)
        .build()
        .expect("build a pool")
}

/// Counts how often the value is dropped.
struct DropCount(Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn assert_identity(stats: &Stats) {
    assert_eq!(
        stats.completed + stats.withdrawn + stats.cancelled + stats.queued as u64 + stats.busy_workers as u64,
        stats.submitted,
        "every accepted task is in exactly one place: {stats:?}"
    );
}

// ---------------------------------------------------------------------------
// cancel
// ---------------------------------------------------------------------------

/// A task cancelled while it waits in the queue never runs; its closure is
/// dropped (once) when a worker reaches the queued job, not before; it
/// counts as cancelled, not completed.
#[test]
fn a_cancelled_queued_task_never_runs_and_its_closure_drops_when_reached() {
    let _w = Watchdog::new("a_cancelled_queued_task_never_runs", 60);
    let pool = pool(1);
    let release = block_worker(&pool);
    let (ran, drops) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let (r, guard) = (ran.clone(), DropCount(drops.clone()));
    let handle = pool
        .spawn(move || {
            let _guard = guard;
            r.store(true, Ordering::SeqCst);
        })
        .expect("spawn");
    assert!(handle.cancel(), "a queued task can be cancelled");
    assert!(!handle.cancel(), "a second cancel finds it cancelled already");
    assert!(handle.is_finished(), "a cancelled handle is finished");
    // The only worker is blocked: nobody has reached the job yet.
    assert_eq!(
        drops.load(Ordering::SeqCst),
        0,
        "the closure waits in the queue until reached"
    );
    assert_eq!(pool.stats().queued, 1);
    release.open();
    pool.wait_idle();
    assert!(!ran.load(Ordering::SeqCst), "a cancelled task ran");
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the closure is dropped once, where it was reached"
    );
    let error = handle.join().expect_err("a cancelled task has no result");
    assert!(error.is_cancelled() && !error.is_panic());
    let stats = pool.stats();
    assert_eq!(
        (stats.submitted, stats.completed, stats.cancelled),
        (2, 1, 1),
        "{stats:?}"
    );
    assert_identity(&stats);
}

/// A task that started cannot be cancelled; it finishes with its value.
#[test]
fn cancel_after_the_start_returns_false_and_the_task_finishes() {
    let _w = Watchdog::new("cancel_after_the_start_returns_false", 60);
    let pool = pool(1);
    let (started_tx, started) = mpsc::channel();
    let (release, wait) = mpsc::channel::<()>();
    let handle = pool
        .spawn(move || {
            started_tx.send(()).unwrap();
            let _ = wait.recv();
            7
        })
        .expect("spawn");
    started.recv_timeout(Duration::from_secs(30)).expect("started");
    assert!(!handle.cancel(), "a running task cannot be cancelled");
    release.send(()).unwrap();
    assert_eq!(handle.join().expect("runs to the end"), 7);
    let finished = pool.spawn(|| 8).expect("spawn");
    pool.wait_idle();
    assert!(!finished.cancel(), "a finished task cannot be cancelled");
    assert_eq!(finished.join().expect("value"), 8);
    assert_eq!(pool.stats().cancelled, 0);
}

/// Cancellation racing the task's start, over many rounds, from the
/// submitting thread and from a second thread: exactly one of "ran" and
/// "cancelled" each round, the closure dropped exactly once, and the
/// figures add up. Rounds where either side wins are both expected on a
/// pool of two workers; the counts are printed.
#[test]
fn cancel_racing_the_start_gives_exactly_one_of_ran_or_cancelled() {
    let _w = Watchdog::new("cancel_racing_the_start", 120);
    let pool = pool(2);
    // Fewer rounds under Miri (an interpreter; its scheduler varies the
    // interleaving by seed).
    let rounds = if cfg!(miri) { 24 } else { 4000 };
    let (mut ran_count, mut cancelled_count) = (0usize, 0usize);
    let canceller_barrier = Arc::new(Barrier::new(2));
    for round in 0..rounds {
        let ran = Arc::new(AtomicUsize::new(0));
        let drops = Arc::new(AtomicUsize::new(0));
        let (r, guard) = (ran.clone(), DropCount(drops.clone()));
        let handle = Arc::new(
            pool.spawn(move || {
                let _guard = guard;
                r.fetch_add(1, Ordering::SeqCst);
                round
            })
            .expect("spawn"),
        );
        // Vary who cancels and after how long, so both outcomes happen.
        let cancelled = if round % 2 == 0 {
            for _ in 0..(round % 64) {
                std::hint::spin_loop();
            }
            handle.cancel()
        } else {
            let (h, b) = (handle.clone(), canceller_barrier.clone());
            let other = thread::spawn(move || {
                b.wait();
                h.cancel()
            });
            canceller_barrier.wait();
            other.join().expect("canceller")
        };
        let handle = Arc::try_unwrap(handle).expect("the only handle left");
        let result = handle.join();
        pool.wait_idle();
        let runs = ran.load(Ordering::SeqCst);
        match (cancelled, result) {
            (true, Err(error)) if error.is_cancelled() => {
                assert_eq!(runs, 0, "round {round}: cancelled, yet it ran");
                cancelled_count += 1;
            }
            (false, Ok(value)) => {
                assert_eq!(
                    (runs, value),
                    (1, round),
                    "round {round}: not cancelled, so it ran once"
                );
                ran_count += 1;
            }
            (cancelled, result) => panic!("round {round}: cancel returned {cancelled}, join returned {result:?}"),
        }
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "round {round}: the closure dropped once"
        );
    }
    println!("{rounds} rounds: {ran_count} ran, {cancelled_count} cancelled");
    let stats = pool.stats();
    assert_eq!(stats.cancelled as usize, cancelled_count, "{stats:?}");
    assert_eq!(stats.completed as usize, ran_count, "{stats:?}");
    assert_identity(&stats);
}

/// Opens `release` (the pool's blocked worker) once `shutdown_now` has
/// taken `handed_back` tasks out of the queues, so none of them can start
/// first. (A timer here raced the drain: under Miri, whose clock advances
/// with every instruction interpreted, the worker was released first.)
fn release_once_drained(pool: &Pool, handed_back: u64, release: common::Gate) -> thread::JoinHandle<()> {
    let pool = pool.clone();
    thread::spawn(move || {
        while pool.stats().withdrawn < handed_back {
            thread::yield_now();
        }
        release.open();
    })
}

/// `shutdown_now` does not hand back a task cancelled in the queue (it
/// drops it, counted cancelled); a handed-back `Task` dropped resolves its
/// handle as cancelled; one that is run completes its handle normally.
#[test]
fn shutdown_now_and_cancellation() {
    let _w = Watchdog::new("shutdown_now_and_cancellation", 60);
    let pool = pool(1);
    let release = block_worker(&pool);
    let cancelled = pool.spawn(|| 1).expect("spawn");
    let dropped = pool.spawn(|| 2).expect("spawn");
    let run = pool.spawn(|| 3).expect("spawn");
    assert!(cancelled.cancel());
    let releaser = release_once_drained(&pool, 2, release);
    let mut unrun = pool.shutdown_now();
    releaser.join().unwrap();
    assert_eq!(unrun.len(), 2, "the cancelled task is not handed back");
    let to_run = unrun.pop().expect("the third spawn");
    drop(unrun);
    to_run.run();
    assert!(cancelled.join().unwrap_err().is_cancelled());
    assert!(
        dropped.join().unwrap_err().is_cancelled(),
        "a dropped Task cancels its handle"
    );
    assert_eq!(run.join().expect("Task::run completes the handle"), 3);
    let stats = pool.stats();
    assert_eq!(
        (stats.completed, stats.withdrawn, stats.cancelled),
        (2, 1, 1),
        "{stats:?}"
    );
    assert_identity(&stats);
}

/// A handed-back `Task` whose handle is cancelled before the caller runs it
/// does not run.
#[test]
fn a_handed_back_task_cancelled_through_its_handle_does_not_run() {
    let _w = Watchdog::new("a_handed_back_task_cancelled", 60);
    let pool = pool(1);
    let release = block_worker(&pool);
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let handle = pool.spawn(move || r.store(true, Ordering::SeqCst)).expect("spawn");
    let releaser = release_once_drained(&pool, 1, release);
    let unrun = pool.shutdown_now();
    releaser.join().unwrap();
    assert!(handle.cancel(), "handed back, not started: still cancellable");
    for task in unrun {
        task.run();
    }
    assert!(!ran.load(Ordering::SeqCst), "Task::run ran a cancelled task");
    assert!(handle.join().unwrap_err().is_cancelled());
    let stats = pool.stats();
    assert_eq!((stats.completed, stats.withdrawn), (1, 1), "{stats:?}");
}

// ---------------------------------------------------------------------------
// join_timeout and JoinError
// ---------------------------------------------------------------------------

/// Under load (both workers busy, a backlog behind them), `join_timeout`
/// gives the handle back when the task has not finished, and the result
/// once it has. No timing is asserted beyond "not finished before it could
/// have been": the task waits for a signal sent after the first timeout.
#[test]
fn join_timeout_under_load_gives_the_handle_back_then_the_result() {
    let _w = Watchdog::new("join_timeout_under_load", 60);
    let pool = pool(2);
    let release_a = block_worker(&pool);
    let release_b = block_worker(&pool);
    let backlog = Arc::new(AtomicUsize::new(0));
    const BACKLOG: usize = if cfg!(miri) { 20 } else { 200 };
    for _ in 0..BACKLOG {
        let backlog = backlog.clone();
        pool.submit(move || {
            backlog.fetch_add(1, Ordering::Relaxed);
        })
        .expect("submit");
    }
    let handle = pool.spawn(|| "late").expect("spawn");
    let handle = match handle.join_timeout(Duration::from_millis(20)) {
        Ok(result) => panic!("finished while both workers were blocked: {result:?}"),
        Err(handle) => handle,
    };
    assert!(!handle.is_finished());
    let handle = match handle.join_timeout(Duration::ZERO) {
        Ok(result) => panic!("a zero timeout found it finished: {result:?}"),
        Err(handle) => handle,
    };
    release_a.open();
    release_b.open();
    let result = handle
        .join_timeout(Duration::from_secs(30))
        .expect("finished within 30 s once the workers were free");
    assert_eq!(result.expect("no panic"), "late");
    pool.wait_idle();
    assert_eq!(backlog.load(Ordering::Relaxed), BACKLOG);
}

/// Inside the pool `join_timeout` runs queued tasks while it waits, so a
/// one-worker pool joins a task queued behind the joiner.
#[test]
fn join_timeout_inside_the_pool_helps() {
    let _w = Watchdog::new("join_timeout_inside_the_pool_helps", 60);
    let pool = pool(1);
    let p = pool.clone();
    let outer = pool
        .spawn(move || {
            let inner = p.spawn(|| 5).expect("spawn inside");
            match inner.join_timeout(Duration::from_secs(30)) {
                Ok(result) => result.expect("no panic"),
                Err(_) => panic!("the queued task was not run by the waiting worker"),
            }
        })
        .expect("spawn");
    assert_eq!(outer.join().expect("outer"), 5);
}

#[test]
fn join_error_converts_with_question_mark() {
    fn run(pool: &Pool) -> Result<u8, Box<dyn std::error::Error + Send + Sync>> {
        let value = pool.spawn(|| -> u8 { panic!("with a message") })?.join()?;
        Ok(value)
    }
    let pool = Pool::builder()
        .capacity(1)
        .panic_handler(|_| {})
        .build()
        .expect("build");
    let error = run(&pool).expect_err("the task panicked");
    assert_eq!(error.to_string(), "task panicked: with a message");
    let error = error.downcast::<JoinError>().expect("a JoinError");
    assert!(error.is_panic());
}

/// A refused closure that is `Send` but not `Sync` (it owns a `Cell`) still
/// leaves a `Send + Sync` error: `?` converts it, and the closure is still
/// in it (downcast back, it runs).
#[test]
fn submit_error_of_a_non_sync_closure_converts_with_question_mark() {
    use std::cell::Cell;
    use stealpool::{FuncPool, SubmitError};
    type Boxed = Box<dyn std::error::Error + Send + Sync>;

    fn submit_not_sync(pool: &Pool, ran: Arc<AtomicUsize>) -> Result<(), Boxed> {
        let not_sync = Cell::new(1u32);
        pool.submit(move || {
            not_sync.set(not_sync.get() + 1);
            ran.fetch_add(not_sync.get() as usize, Ordering::SeqCst);
        })?;
        Ok(())
    }
    fn invoke_not_sync(fp: &FuncPool<Cell<u32>>) -> Result<(), Boxed> {
        fp.invoke(Cell::new(3))?;
        Ok(())
    }
    fn assert_send_sync<T: Send + Sync + 'static>(_: &T) {}

    let pool = pool(1);
    let ran = Arc::new(AtomicUsize::new(0));
    submit_not_sync(&pool, ran.clone()).expect("accepted");
    pool.wait_idle();
    assert_eq!(ran.load(Ordering::SeqCst), 2);
    pool.shutdown();
    let error = submit_not_sync(&pool, ran.clone()).expect_err("closed");
    assert_eq!(error.to_string(), "task refused: the pool is shut down");
    // Through a generic helper too (what anyhow's `From` asks for).
    let refused = pool.submit(|| Cell::new(0u8).set(1)).expect_err("closed");
    assert_send_sync(&refused);

    let fp = FuncPool::builder()
        .capacity(1)
        .build(|cell: Cell<u32>| cell.set(0))
        .expect("build");
    invoke_not_sync(&fp).expect("accepted");
    fp.shutdown();
    let error = invoke_not_sync(&fp).expect_err("closed");
    let error = error
        .downcast::<SubmitError<Cell<u32>>>()
        .expect("the SubmitError itself");
    assert!(error.is_closed());
    assert_eq!(error.into_inner().get(), 3, "the argument came back through the box");
}

// ---------------------------------------------------------------------------
// TaskSet
// ---------------------------------------------------------------------------

/// Four tasks run at once, each waiting for its own signal; released in a
/// chosen order, `join_next` returns them in exactly that order.
#[test]
fn task_set_returns_results_in_completion_order() {
    let _w = Watchdog::new("task_set_returns_results_in_completion_order", 60);
    let pool = pool(4);
    let mut set = TaskSet::new(&pool);
    let mut releases = Vec::new();
    let (started_tx, started) = mpsc::channel();
    for i in 0..4usize {
        let (release, wait) = mpsc::channel::<()>();
        releases.push(release);
        let started_tx = started_tx.clone();
        set.spawn(move || {
            started_tx.send(()).unwrap();
            wait.recv().unwrap();
            i
        })
        .expect("spawn");
    }
    for _ in 0..4 {
        started.recv_timeout(Duration::from_secs(30)).expect("all four start");
    }
    assert_eq!(set.len(), 4);
    for i in [2usize, 0, 3, 1] {
        releases[i].send(()).unwrap();
        assert_eq!(set.join_next().expect("a task left").expect("no panic"), i);
    }
    assert!(set.is_empty());
    assert!(set.join_next().is_none());
}

/// Dropping a set cancels what has not started: none of it runs, every
/// closure is dropped, the pool counts them cancelled.
#[test]
fn dropping_a_task_set_cancels_what_has_not_started() {
    let _w = Watchdog::new("dropping_a_task_set_cancels", 60);
    let pool = pool(1);
    let release = block_worker(&pool);
    let ran = Arc::new(AtomicUsize::new(0));
    let drops = Arc::new(AtomicUsize::new(0));
    let mut set = TaskSet::new(&pool);
    for _ in 0..5 {
        let (ran, guard) = (ran.clone(), DropCount(drops.clone()));
        set.spawn(move || {
            let _guard = guard;
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .expect("spawn");
    }
    drop(set);
    release.open();
    pool.wait_idle();
    assert_eq!(ran.load(Ordering::SeqCst), 0, "a task of a dropped set ran");
    assert_eq!(drops.load(Ordering::SeqCst), 5);
    let stats = pool.stats();
    assert_eq!(stats.cancelled, 5, "{stats:?}");
    assert_identity(&stats);
}

/// Cancelled and panicking members come back through `join_next` too.
#[test]
fn task_set_reports_cancellations_and_panics() {
    let _w = Watchdog::new("task_set_reports_cancellations_and_panics", 60);
    let pool = Pool::builder()
        .capacity(1)
        .panic_handler(|_| {})
        .build()
        .expect("build");
    let release = block_worker(&pool);
    let mut set = TaskSet::new(&pool);
    set.spawn(|| -> u8 { panic!("member panic") }).expect("spawn");
    set.spawn(|| 1).expect("spawn");
    release.open();
    let mut outcomes = Vec::new();
    while let Some(result) = set.join_next() {
        outcomes.push(result.map_err(|e| e.to_string()));
    }
    outcomes.sort();
    assert_eq!(outcomes, [Ok(1), Err("task panicked: member panic".to_string())]);
    let release = block_worker(&pool);
    set.spawn(|| 2).expect("spawn");
    assert_eq!(set.cancel_all(), 1);
    release.open();
    assert!(set.join_next().expect("one member").unwrap_err().is_cancelled());
}

/// `join_next` inside the pool runs the set's queued tasks while it waits:
/// a one-worker pool does not deadlock.
#[test]
fn task_set_inside_a_one_worker_pool() {
    let _w = Watchdog::new("task_set_inside_a_one_worker_pool", 60);
    let pool = pool(1);
    let p = pool.clone();
    let sum = pool
        .spawn(move || {
            let mut set = TaskSet::new(&p);
            for i in 1..=10u64 {
                set.spawn(move || i).expect("spawn inside");
            }
            let mut sum = 0;
            while let Some(result) = set.join_next() {
                sum += result.expect("no panic");
            }
            sum
        })
        .expect("spawn");
    assert_eq!(sum.join().expect("outer"), 55);
}

/// `try_join_next` never waits: `None` while nothing finished, then the
/// finished results in order, while the set is still being filled.
#[test]
fn task_set_try_join_next_collects_without_waiting() {
    let _w = Watchdog::new("task_set_try_join_next", 60);
    let pool = pool(1);
    let release = block_worker(&pool);
    let mut set = TaskSet::new(&pool);
    set.spawn(|| 1).expect("spawn");
    set.spawn(|| 2).expect("spawn");
    assert!(set.try_join_next().is_none(), "nothing can have run yet");
    assert_eq!(set.len(), 2);
    release.open();
    let mut got = Vec::new();
    // Bounded polling: both run as soon as the worker is free.
    assert!(common::wait_until(Duration::from_secs(30), || {
        if let Some(result) = set.try_join_next() {
            got.push(result.expect("no panic"));
        }
        got.len() == 2
    }));
    got.sort();
    assert_eq!(got, [1, 2]);
    assert!(set.is_empty() && set.try_join_next().is_none());
    // Collecting while spawning: every result comes back exactly once.
    let mut sum = 0;
    for i in 1..=100u64 {
        set.spawn(move || i).expect("spawn");
        while let Some(result) = set.try_join_next() {
            sum += result.expect("no panic");
        }
    }
    while let Some(result) = set.join_next() {
        sum += result.expect("no panic");
    }
    assert_eq!(sum, 5050);
}

/// A task `shutdown_now` handed back is not finished for `try_join_next`
/// until its `Task` runs.
#[test]
fn task_set_try_join_next_skips_a_handed_back_task_until_it_runs() {
    let _w = Watchdog::new("task_set_try_join_next_handed_back", 60);
    let pool = pool(1);
    let release = block_worker(&pool);
    let mut set = TaskSet::new(&pool);
    set.spawn(|| 7).expect("spawn");
    let releaser = release_once_drained(&pool, 1, release);
    let mut unrun = pool.shutdown_now();
    releaser.join().unwrap();
    assert_eq!(unrun.len(), 1);
    assert!(set.try_join_next().is_none(), "handed back, not run: not finished");
    assert_eq!(set.len(), 1);
    unrun.pop().unwrap().run();
    assert_eq!(set.try_join_next().expect("ran").expect("no panic"), 7);
    assert!(set.is_empty());
}

#[test]
fn task_set_join_next_async_on_a_current_thread_runtime() {
    let _w = Watchdog::new("task_set_join_next_async", 60);
    let pool = pool(2);
    let mut set = TaskSet::new(&pool);
    let (release, wait) = mpsc::channel::<()>();
    set.spawn(move || {
        wait.recv().unwrap();
        1
    })
    .expect("spawn");
    set.spawn(|| 2).expect("spawn");
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let order = runtime.block_on(async move {
        let mut order = Vec::new();
        order.push(set.join_next_async().await.expect("a task").expect("ok"));
        // The first is still blocked: release it from the runtime's thread.
        release.send(()).unwrap();
        order.push(set.join_next_async().await.expect("a task").expect("ok"));
        assert!(set.join_next_async().await.is_none());
        order
    });
    assert_eq!(order, [2, 1]);
}

// ---------------------------------------------------------------------------
// ScopedJoinHandle
// ---------------------------------------------------------------------------

#[test]
fn scoped_handles_return_values_and_keep_joined_panics() {
    let _w = Watchdog::new("scoped_handles", 60);
    let pool = Pool::builder()
        .capacity(2)
        .panic_handler(|_| {})
        .build()
        .expect("build");
    let data = [1u64, 2, 3, 4];
    let (sum, panicked) = pool.scope(|s| {
        let a = s.spawn_handle(|| data[..2].iter().sum::<u64>());
        let b = s.spawn_handle(|| data[2..].iter().sum::<u64>());
        let bad = s.spawn_handle(|| -> u8 { std::panic::panic_any(9u32) });
        let payload = bad.join().expect_err("it panicked");
        (
            a.join().unwrap() + b.join().unwrap(),
            *payload.downcast::<u32>().unwrap(),
        )
    });
    assert_eq!(
        (sum, panicked),
        (10, 9),
        "a joined panic is not raised again by the scope"
    );
    // An unjoined panic is re-raised by the scope, whether or not its handle
    // was dropped before the spawn finished.
    for keep_handle in [false, true] {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.scope(|s| {
                let handle = s.spawn_handle(|| std::panic::panic_any(keep_handle));
                if keep_handle {
                    while !handle.is_finished() {
                        thread::yield_now();
                    }
                }
            })
        }));
        let payload = caught.expect_err("the scope re-raises an unjoined panic");
        assert_eq!(payload.downcast_ref::<bool>(), Some(&keep_handle));
    }
    // Joining inside the pool helps: nested scopes on one worker.
    let one = pool_with_one_worker();
    let p = one.clone();
    let nested = one
        .spawn(move || {
            p.scope(|s| {
                s.spawn_handle(|| p.scope(|t| t.spawn_handle(|| 42).join().unwrap()))
                    .join()
                    .unwrap()
            })
        })
        .expect("spawn");
    assert_eq!(nested.join().expect("no panic"), 42);
}

fn pool_with_one_worker() -> Pool {
    pool(1)
}
