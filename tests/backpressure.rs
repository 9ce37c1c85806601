//! Backpressure: `queue_limit`, `nonblocking`, blocking submits and what
//! wakes them (room, `tune` growing, shutdown), `submit_timeout`,
//! `max_blocked_submitters`, the wait/reject counters of `stats()`, and
//! submits from inside a task, which never block and are never refused for
//! room.
//!
//! Every test blocks the pool's only worker on a gate, so that the queue
//! fills deterministically: tasks accepted while the worker is blocked stay
//! queued until the test opens the gate. All tests run one at a time
//! (SERIAL); the machine has 2 cores.
//!
//! "A submit is blocked" is observed through `stats().blocked_submitters`
//! (polled) and through the submitting thread not having returned; no
//! assertion depends on timing.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use stealpool::{Pool, SubmitError};

mod common;
use common::*;

/// A counter that tasks bump, to observe which closures ran.
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

/// Capacity 1, queue_limit `limit`, `pin_workers(false)`.
fn bounded(limit: usize) -> stealpool::Builder {
    Pool::builder().capacity(1).pin_workers(false).queue_limit(limit)
}

/// What a submit on a helper thread came to. The refused closure is called
/// on that thread, so its side effect shows it really was handed back.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    Closed,
    Full,
    Timeout,
}

fn outcome<F: FnOnce()>(r: Result<(), SubmitError<F>>) -> Outcome {
    match r {
        Ok(()) => Outcome::Ok,
        Err(SubmitError::Closed(f)) => {
            f.into_inner()();
            Outcome::Closed
        }
        Err(SubmitError::Full(f)) => {
            f.into_inner()();
            Outcome::Full
        }
        Err(SubmitError::Timeout(f)) => {
            f.into_inner()();
            Outcome::Timeout
        }
    }
}

/// Runs `submit` on a new thread; the receiver gets its outcome.
fn submit_on_thread(pool: &Pool, task: impl FnOnce() + Send + 'static) -> mpsc::Receiver<Outcome> {
    let (tx, rx) = mpsc::channel();
    let pool = pool.clone();
    thread::spawn(move || {
        let _ = tx.send(outcome(pool.submit(task)));
    });
    rx
}

fn wait_blocked(pool: &Pool, n: usize) {
    assert!(
        wait_until(SOON, || pool.stats().blocked_submitters == n),
        "expected {n} blocked submitter(s), stats: {:?}",
        pool.stats()
    );
}

#[test]
fn nonblocking_full_queue_hands_back_the_same_closure() {
    let _s = serial();
    let _w = Watchdog::new("nonblocking_full_queue_hands_back_the_same_closure", 60);
    let pool = bounded(2).nonblocking(true).build().expect("build");
    let gate = block_worker(&pool);
    let queued = Count::default();
    pool.submit(queued.task()).expect("1st submit: room for 2");
    pool.submit(queued.task()).expect("2nd submit: room for 2");
    assert_eq!(pool.stats().queued, 2);

    let refused = Count::default();
    let marker = Arc::new(());
    let m = marker.clone();
    let r = refused.clone();
    let t0 = Instant::now();
    match pool.submit(move || {
        drop(m);
        r.0.fetch_add(1, Ordering::SeqCst);
    }) {
        Err(SubmitError::Full(f)) => {
            assert!(t0.elapsed() < SOON, "nonblocking submit waited");
            assert_eq!(Arc::strong_count(&marker), 2, "the refused closure was dropped");
            assert_eq!(refused.get(), 0, "the refused closure ran");
            f.into_inner()();
        }
        Err(e) => panic!("expected Full, got {e:?}"),
        Ok(()) => panic!("3rd submit accepted with queue_limit(2) and the worker blocked"),
    }
    assert_eq!(refused.get(), 1, "the closure handed back is the one submitted");
    assert_eq!(Arc::strong_count(&marker), 1);

    // spawn is refused the same way, and its closure still yields its value.
    match pool.spawn(|| 40 + 2) {
        Err(e) => {
            assert!(e.is_full(), "{e:?}");
            assert!(!e.is_closed() && !e.is_timeout());
            assert!(!e.to_string().is_empty());
            assert_eq!((e.into_inner())(), 42);
        }
        Ok(_) => panic!("spawn accepted into a full queue"),
    }
    let st = pool.stats();
    assert_eq!(st.rejected, 2, "{st:?}");
    assert_eq!(st.wait_count, 0, "nonblocking submits never wait: {st:?}");
    assert_eq!(st.blocked_submitters, 0);

    gate.open();
    pool.wait_idle();
    assert_eq!(queued.get(), 2);
    assert_eq!(refused.get(), 1, "a refused closure also ran in the pool");
    // Room again.
    pool.submit(queued.task()).expect("submit after the queue drained");
    pool.wait_idle();
    assert_eq!(queued.get(), 3);
    assert_eq!(pool.stats().submitted, 4, "blocker + 3 accepted");
    pool.shutdown();
}

#[test]
fn blocking_submit_waits_for_room() {
    let _s = serial();
    let _w = Watchdog::new("blocking_submit_waits_for_room", 60);
    let pool = bounded(2).build().expect("build"); // blocking is the default
    let gate = block_worker(&pool);
    let ran = Count::default();
    pool.submit(ran.task()).expect("submit");
    pool.submit(ran.task()).expect("submit");
    let third = submit_on_thread(&pool, ran.task());

    wait_blocked(&pool, 1);
    assert_eq!(
        third.try_recv(),
        Err(mpsc::TryRecvError::Empty),
        "the 3rd submit returned although the queue is full"
    );
    assert_eq!(pool.stats().queued, 2);

    gate.open();
    assert_eq!(
        third.recv_timeout(SOON),
        Ok(Outcome::Ok),
        "the blocked submit did not return Ok once the worker made room"
    );
    pool.wait_idle();
    assert_eq!(ran.get(), 3);
    let st = pool.stats();
    assert_eq!(st.blocked_submitters, 0, "{st:?}");
    assert_eq!(st.wait_count, 1, "one submit had to wait: {st:?}");
    assert!(st.wait_time > Duration::ZERO, "{st:?}");
    assert_eq!(st.rejected, 0, "{st:?}");
    pool.shutdown();
}

#[test]
fn submit_timeout_hands_back_the_closure() {
    let _s = serial();
    let _w = Watchdog::new("submit_timeout_hands_back_the_closure", 60);
    let pool = bounded(1).build().expect("build");
    let gate = block_worker(&pool);
    let ran = Count::default();
    pool.submit(ran.task()).expect("submit");

    let refused = Count::default();
    const T: Duration = Duration::from_millis(50);
    let t0 = Instant::now();
    match pool.submit_timeout(refused.task(), T) {
        Err(SubmitError::Timeout(f)) => {
            let waited = t0.elapsed();
            assert!(waited >= T, "gave up after {waited:?}, before the {T:?} timeout");
            assert_eq!(refused.get(), 0);
            f.into_inner()();
        }
        Err(e) => panic!("expected Timeout, got {e:?}"),
        Ok(()) => panic!("submit_timeout accepted into a full queue"),
    }
    assert_eq!(refused.get(), 1, "the closure handed back is the one submitted");
    let st = pool.stats();
    assert_eq!(st.rejected, 1, "{st:?}");
    assert_eq!(st.wait_count, 1, "the timed-out submit had to wait: {st:?}");
    assert!(st.wait_time >= T, "waited at least {T:?}: {st:?}");
    assert_eq!(st.blocked_submitters, 0, "{st:?}");

    // With room, submit_timeout is accepted.
    gate.open();
    pool.wait_idle();
    pool.submit_timeout(ran.task(), Duration::from_secs(30))
        .expect("submit_timeout with room");
    pool.wait_idle();
    assert_eq!(ran.get(), 2);

    // On a closed pool: Closed, with the closure.
    pool.shutdown();
    match pool.submit_timeout(refused.task(), T) {
        Err(SubmitError::Closed(f)) => f.into_inner()(),
        Err(e) => panic!("expected Closed, got {e:?}"),
        Ok(()) => panic!("submit_timeout accepted on a shut-down pool"),
    }
    assert_eq!(refused.get(), 2);
}

#[test]
fn max_blocked_submitters_refuses_the_next_waiter_at_once() {
    let _s = serial();
    let _w = Watchdog::new("max_blocked_submitters_refuses_the_next_waiter_at_once", 60);
    let pool = bounded(1).max_blocked_submitters(1).build().expect("build");
    let gate = block_worker(&pool);
    let ran = Count::default();
    pool.submit(ran.task()).expect("submit");
    let first = submit_on_thread(&pool, ran.task());
    wait_blocked(&pool, 1);

    // A second would-be waiter is refused at once (on a helper thread, so a
    // wrongly blocking submit fails the test instead of hanging it).
    let refused = Count::default();
    let second = submit_on_thread(&pool, refused.task());
    assert_eq!(
        second.recv_timeout(SOON),
        Ok(Outcome::Full),
        "with max_blocked_submitters(1) and one submitter blocked, the next must get Full"
    );
    assert_eq!(refused.get(), 1, "Full handed back the submitted closure");
    assert_eq!(pool.stats().blocked_submitters, 1);
    assert_eq!(
        first.try_recv(),
        Err(mpsc::TryRecvError::Empty),
        "the first submitter is still waiting"
    );
    // submit_timeout counts as a waiter too.
    match pool.submit_timeout(refused.task(), Duration::from_secs(30)) {
        Err(SubmitError::Full(f)) => f.into_inner()(),
        Err(e) => panic!("expected Full, got {e:?}"),
        Ok(()) => panic!("accepted into a full queue"),
    }
    assert_eq!(refused.get(), 2);

    gate.open();
    assert_eq!(first.recv_timeout(SOON), Ok(Outcome::Ok));
    pool.wait_idle();
    assert_eq!(ran.get(), 2);
    let st = pool.stats();
    assert_eq!(st.rejected, 2, "{st:?}");
    assert_eq!(st.wait_count, 1, "{st:?}");
    assert!(st.wait_time > Duration::ZERO, "{st:?}");
    pool.shutdown();
}

#[test]
fn shutdown_wakes_blocked_submitters_with_closed() {
    let _s = serial();
    let _w = Watchdog::new("shutdown_wakes_blocked_submitters_with_closed", 60);
    let pool = bounded(1).build().expect("build");
    let gate = block_worker(&pool);
    let ran = Count::default();
    pool.submit(ran.task()).expect("submit");

    let refused = Count::default();
    let blocked = submit_on_thread(&pool, refused.task());
    let timed = {
        let (tx, rx) = mpsc::channel();
        let (pool, task) = (pool.clone(), refused.task());
        thread::spawn(move || {
            let _ = tx.send(outcome(pool.submit_timeout(task, Duration::from_secs(30))));
        });
        rx
    };
    wait_blocked(&pool, 2);

    // Graceful shutdown waits for the blocked worker, so run it on a thread.
    let shutter = {
        let pool = pool.clone();
        thread::spawn(move || pool.shutdown())
    };
    assert_eq!(
        blocked.recv_timeout(SOON),
        Ok(Outcome::Closed),
        "a blocked submit must be woken by shutdown with Closed"
    );
    assert_eq!(
        timed.recv_timeout(SOON),
        Ok(Outcome::Closed),
        "a waiting submit_timeout must be woken by shutdown with Closed"
    );
    assert!(!gate.is_open(), "they woke while the worker was still blocked");
    assert_eq!(refused.get(), 2, "both closures came back");
    assert!(pool.is_closed());
    assert_eq!(pool.stats().blocked_submitters, 0);

    gate.open();
    shutter.join().expect("shutdown panicked");
    assert_eq!(
        ran.get(),
        1,
        "the accepted queued task ran during the graceful shutdown"
    );
    assert!(pool.stats().rejected >= 2, "{:?}", pool.stats());
}

#[test]
fn growing_capacity_wakes_a_blocked_submitter() {
    let _s = serial();
    let _w = Watchdog::new("growing_capacity_wakes_a_blocked_submitter", 60);
    let pool = bounded(1).max_capacity(2).build().expect("build");
    let gate = block_worker(&pool);
    let ran = Count::default();
    pool.submit(ran.task()).expect("submit");
    let blocked = submit_on_thread(&pool, ran.task());
    wait_blocked(&pool, 1);
    assert_eq!(blocked.try_recv(), Err(mpsc::TryRecvError::Empty));

    // A second worker takes the queued task: room appears.
    pool.tune(2).expect("tune(2)");
    assert_eq!(
        blocked.recv_timeout(SOON),
        Ok(Outcome::Ok),
        "growing capacity (a new worker drains the queue) must wake the blocked submitter"
    );
    assert!(!gate.is_open());
    // Both tasks ran on the new worker while the first is still blocked.
    assert!(
        wait_until(SOON, || ran.get() == 2),
        "{} of 2 tasks ran on the new worker",
        ran.get()
    );
    gate.open();
    pool.wait_idle();
    assert_eq!(pool.stats().wait_count, 1);
    pool.shutdown();
}

#[test]
fn submits_from_inside_a_task_never_block_or_get_refused() {
    let _s = serial();
    let _w = Watchdog::new("submits_from_inside_a_task_never_block_or_get_refused", 60);
    for nonblocking in [false, true] {
        let pool = bounded(1).nonblocking(nonblocking).build().expect("build");
        let children = Count::default();
        let filler = Count::default();
        let go = Arc::new(AtomicBool::new(false));
        let (entered_tx, entered_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        let (inner, g, ch) = (pool.clone(), go.clone(), children.clone());
        pool.submit(move || {
            entered_tx.send(()).unwrap();
            assert!(wait_until(Duration::from_secs(30), || g.load(Ordering::SeqCst)));
            // The queue is full and this task occupies the only worker: a
            // blocking submit here could never get room.
            let results: Vec<bool> = (0..10).map(|_| inner.submit(ch.task()).is_ok()).collect();
            done_tx.send(results).unwrap();
        })
        .expect("submit parent");
        entered_rx.recv_timeout(SOON).expect("parent did not start");
        pool.submit(filler.task()).expect("the one queue slot");
        // The queue is full for outside submitters.
        let probe = Count::default();
        match pool.submit_timeout(probe.task(), Duration::from_millis(1)) {
            Err(SubmitError::Timeout(f)) | Err(SubmitError::Full(f)) => f.into_inner()(),
            Err(e) => panic!("expected Full/Timeout, got {e:?}"),
            Ok(()) => panic!("queue_limit(1) with one queued task accepted another"),
        }
        assert_eq!(probe.get(), 1);

        go.store(true, Ordering::SeqCst);
        let results = done_rx.recv_timeout(SOON).unwrap_or_else(|_| {
            panic!("nonblocking={nonblocking}: submits from inside a task blocked on a full queue (deadlock)")
        });
        assert_eq!(
            results,
            vec![true; 10],
            "nonblocking={nonblocking}: submits from inside a task were refused"
        );
        pool.wait_idle();
        assert_eq!(children.get(), 10, "nonblocking={nonblocking}: children lost");
        assert_eq!(filler.get(), 1);
        let st = pool.stats();
        assert_eq!(st.submitted, 12, "{st:?}");
        assert_eq!(st.completed, 12, "{st:?}");
        pool.shutdown();
    }
}

/// A burst into an idle pool whose threads start on demand is not refused
/// while workers are free: the limit is `queue_limit` tasks *waiting*, on
/// top of the `capacity` that may run (the tcp_server example's case: 4
/// simultaneous connections to an idle pool of capacity 4 are all
/// answered, none "busy").
#[test]
fn a_burst_into_an_idle_pool_fills_the_free_workers_first() {
    let _s = serial();
    let _w = Watchdog::new("a_burst_into_an_idle_pool_fills_the_free_workers_first", 60);
    let pool = Pool::builder()
        .capacity(4)
        .pin_workers(false)
        .queue_limit(1)
        .nonblocking(true)
        .build()
        .unwrap();
    let gate = Arc::new(AtomicBool::new(false));
    let ran = Count::default();
    // Capacity (4) + queue_limit (1) tasks fit at once, before any starts.
    for i in 0..5 {
        let (gate, done) = (gate.clone(), ran.task());
        pool.submit(move || {
            assert!(
                wait_until(Duration::from_secs(30), || gate.load(Ordering::SeqCst)),
                "gate never opened"
            );
            done();
        })
        .unwrap_or_else(|e| panic!("task {i} of a 5-task burst refused: {e}"));
    }
    let refused = Count::default();
    assert_eq!(
        outcome(pool.submit(refused.task())),
        Outcome::Full,
        "a 6th task fits nowhere"
    );
    assert_eq!(refused.get(), 1, "the refused closure came back");
    gate.store(true, Ordering::SeqCst);
    pool.wait_idle();
    assert_eq!(ran.get(), 5);
    // Room again once they finished.
    assert_eq!(outcome(pool.submit(ran.task())), Outcome::Ok);
    pool.wait_idle();
    assert_eq!(ran.get(), 6);
    pool.shutdown();
}
