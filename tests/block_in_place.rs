//! `block_in_place`: a blocked worker lends its slot, so the tasks queued
//! behind it (in the injector and in its own deque) start while it blocks;
//! the slot comes back when the closure returns or panics; outside a pool
//! it just runs the closure.
//!
//! Most tests prove "started while the worker was blocked" without timing:
//! the blocking closure waits for a message that only the queued task sends
//! (with a 10 s timeout that only a broken pool reaches). One test measures
//! the start latency the way a user would see it, with a generous bound.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use stealpool::{block_in_place, Pool};

mod common;
use common::*;

const PATIENCE: Duration = Duration::from_secs(10);

/// A door a blocked task waits at (polling, at most `PATIENCE`).
#[derive(Default)]
struct Door(std::sync::atomic::AtomicBool);

impl Door {
    fn open(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn wait(&self) {
        assert!(
            wait_until(PATIENCE, || self.0.load(Ordering::SeqCst)),
            "the door never opened"
        );
    }
}

fn pool(capacity: usize, max: usize) -> Pool {
    Pool::builder()
        .capacity(capacity)
        .max_capacity(max)
        .build()
        .expect("pool builds")
}

#[test]
fn outside_a_pool_it_just_runs_the_closure() {
    assert_eq!(block_in_place(|| 40 + 2), 42);
    let pool = pool(1, 2);
    assert_eq!(pool.stats().capacity, 1);
    assert_eq!(pool.stats().blocked_workers, 0);
}

#[test]
fn a_task_queued_behind_the_only_blocked_worker_runs_while_it_blocks() {
    let _serial = serial();
    let _watchdog = Watchdog::new("queued_behind_blocked", 60);
    let pool = pool(1, 2);
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let blocked = pool
        .spawn(move || {
            started_tx.send(()).unwrap();
            // Without the lent slot this waits for a task that can only run
            // after it: the timeout turns that into a failure.
            block_in_place(|| release_rx.recv_timeout(PATIENCE).is_ok())
        })
        .unwrap();
    started_rx.recv().unwrap();
    pool.submit(move || release_tx.send(()).unwrap()).unwrap();
    assert!(
        blocked.join().unwrap(),
        "the queued task did not run while the worker blocked"
    );
    pool.wait_idle();
    // The slot came back.
    assert_eq!(pool.capacity(), 1);
    assert_eq!(pool.stats().blocked_workers, 0);
}

#[test]
fn the_blocked_workers_own_queue_is_handed_on() {
    let _serial = serial();
    let _watchdog = Watchdog::new("own_queue_handed_on", 60);
    let pool = pool(1, 2);
    let ran = Arc::new(AtomicUsize::new(0));
    let inner = pool.clone();
    let counter = ran.clone();
    let all_ran = pool
        .spawn(move || {
            let (done_tx, done_rx) = mpsc::channel();
            // Submitted from inside a task: these go to this worker's deque.
            for _ in 0..5 {
                let counter = counter.clone();
                let done_tx = done_tx.clone();
                inner
                    .submit(move || {
                        counter.fetch_add(1, Ordering::SeqCst);
                        done_tx.send(()).unwrap();
                    })
                    .unwrap();
            }
            block_in_place(|| (0..5).all(|_| done_rx.recv_timeout(PATIENCE).is_ok()))
        })
        .unwrap();
    assert!(
        all_ran.join().unwrap(),
        "tasks in the blocked worker's deque waited for it"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 5);
}

#[test]
fn capacity_and_stats_show_the_lent_slot_and_tune_moves_the_base() {
    let _serial = serial();
    let _watchdog = Watchdog::new("stats_show_lent_slot", 60);
    let pool = pool(1, 8);
    let gate = Arc::new(Door::default());
    let (started_tx, started_rx) = mpsc::channel();
    let task_gate = gate.clone();
    pool.submit(move || {
        block_in_place(|| {
            started_tx.send(()).unwrap();
            // Nested: the slot is lent once.
            block_in_place(|| task_gate.wait())
        })
    })
    .unwrap();
    started_rx.recv().unwrap();
    let stats = pool.stats();
    assert_eq!((stats.capacity, stats.blocked_workers), (2, 1));
    // `tune` moves the base; the lent slot stays on top.
    pool.tune(3).unwrap();
    assert_eq!(pool.capacity(), 4);
    gate.open();
    pool.wait_idle();
    assert!(
        wait_until(PATIENCE, || pool.capacity() == 3),
        "capacity {}",
        pool.capacity()
    );
    assert_eq!(pool.stats().blocked_workers, 0);
}

#[test]
fn a_panic_in_the_closure_gives_the_slot_back() {
    let _serial = serial();
    let _watchdog = Watchdog::new("panic_gives_slot_back", 60);
    let pool = pool(1, 2);
    let handle = pool
        .spawn(|| {
            panic::catch_unwind(AssertUnwindSafe(|| {
                block_in_place(|| panic!("blocked and failed"));
            }))
            .is_err()
        })
        .unwrap();
    assert!(handle.join().unwrap());
    assert_eq!(pool.capacity(), 1);
    assert_eq!(pool.stats().blocked_workers, 0);
}

#[test]
fn with_no_room_to_lend_the_closure_still_runs() {
    let _serial = serial();
    let pool = pool(1, 1);
    let handle = pool.spawn(|| block_in_place(|| 5)).unwrap();
    assert_eq!(handle.join().unwrap(), 5);
    assert_eq!(pool.capacity(), 1);
}

#[test]
fn shutdown_while_a_worker_blocks_in_place_loses_nothing() {
    let _serial = serial();
    let _watchdog = Watchdog::new("shutdown_while_blocked", 60);
    let pool = pool(1, 4);
    let ran = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Door::default());
    let (started_tx, started_rx) = mpsc::channel();
    let task_gate = gate.clone();
    pool.submit(move || {
        started_tx.send(()).unwrap();
        block_in_place(|| task_gate.wait());
    })
    .unwrap();
    started_rx.recv().unwrap();
    for _ in 0..20 {
        let ran = ran.clone();
        pool.submit(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    let opener = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        gate.open();
    });
    pool.shutdown();
    opener.join().unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 20);
    assert_eq!(pool.stats().live_workers, 0);
}

/// The latency a user sees: the only worker sits in `block_in_place(||
/// sleep(200 ms))` and a task is submitted. Without the lent slot it starts
/// after the sleep (≥ 200 ms); with it, after a thread start (about 0.1 ms
/// here). The bound, 150 ms, sits between the two with three orders of
/// magnitude to spare on the fast side, so only a broken lend (or a machine
/// stalled for most of the sleep) fails it. The measured latency is printed.
#[test]
fn a_task_submitted_while_the_only_worker_blocks_starts_within_a_few_ms() {
    let _serial = serial();
    let _watchdog = Watchdog::new("start_latency", 60);
    let pool = pool(1, 2);
    let (started_tx, started_rx) = mpsc::channel();
    pool.submit(move || {
        started_tx.send(()).unwrap();
        block_in_place(|| thread::sleep(Duration::from_millis(200)));
    })
    .unwrap();
    started_rx.recv().unwrap();
    // Let the worker get inside the closure.
    assert!(wait_until(PATIENCE, || pool.stats().blocked_workers == 1));
    let submitted = Instant::now();
    let latency = pool.spawn(move || submitted.elapsed()).unwrap().join().unwrap();
    println!("start latency while the only worker blocks in place: {latency:?}");
    assert!(latency < Duration::from_millis(150), "started after {latency:?}");
    pool.wait_idle();
}
