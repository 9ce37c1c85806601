//! Start order: with `Builder::fifo(true)` tasks submitted from outside the
//! pool start in submission order as far as the workers allow; tasks
//! spawned inside a task keep LIFO locality; `spawn_fifo` and `scope_fifo`
//! start in spawn order.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::time::Duration;

use common::{named_builder, serial, wait_until, Watchdog, SOON};
use stealpool::Pool;

/// threadpool's `test_shrink`, on stealpool with strict start order: the
/// first six tasks wait on one barrier with the caller, the next four on
/// another, on a pool of six. It deadlocks unless the first six tasks are
/// the ones that start first (with batches, the default, a worker takes
/// several of the first tasks into its own deque while later tasks start
/// elsewhere: this test hangs there).
#[test]
fn the_first_tasks_submitted_are_the_first_to_start() {
    let _s = serial();
    let _w = Watchdog::new("the_first_tasks_submitted_are_the_first_to_start", 240);
    for round in 0..20 {
        let pool = named_builder("so-shrink-", 6)
            .max_capacity(6)
            .fifo(true)
            .build()
            .expect("build");
        let (b0, b1) = (Arc::new(Barrier::new(7)), Arc::new(Barrier::new(7)));
        for _ in 0..6 {
            let (b0, b1) = (b0.clone(), b1.clone());
            pool.submit(move || {
                b0.wait();
                b1.wait();
            })
            .expect("submit");
        }
        let (b2, b3) = (Arc::new(Barrier::new(5)), Arc::new(Barrier::new(5)));
        for _ in 0..4 {
            let (b2, b3) = (b2.clone(), b3.clone());
            pool.submit(move || {
                b2.wait();
                b3.wait();
            })
            .expect("submit");
        }
        // Hangs (the watchdog fails the test) if a task of the second group
        // took one of the six workers first.
        b0.wait();
        pool.tune(4).expect("tune(4)");
        assert_eq!(pool.stats().busy_workers, 6, "round {round}: the first six run");
        b1.wait();
        b2.wait();
        b3.wait();
        pool.wait_idle();
        assert_eq!(pool.stats().completed, 10, "round {round}");
        pool.shutdown();
    }
}

/// With one submitter, task `i` starts only after every task before it was
/// taken, and a taken task starts at once on the worker that took it, so
/// at most `capacity - 1` earlier tasks can still be unstarted when `i`
/// starts: its start rank is at least `i - (capacity - 1)`. (Batches, the
/// default, break this by dozens of places.)
#[test]
fn outside_tasks_start_in_submission_order_as_far_as_the_workers_allow() {
    let _s = serial();
    let _w = Watchdog::new(
        "outside_tasks_start_in_submission_order_as_far_as_the_workers_allow",
        120,
    );
    const TASKS: usize = 20_000;
    for capacity in [1, 2, 4] {
        let pool = named_builder("so-rank-", capacity).fifo(true).build().expect("build");
        let next_rank = Arc::new(AtomicUsize::new(0));
        let worst = Arc::new(Mutex::new((0usize, 0usize)));
        for i in 0..TASKS {
            let (next_rank, worst) = (next_rank.clone(), worst.clone());
            pool.submit(move || {
                let rank = next_rank.fetch_add(1, SeqCst);
                let behind = i.saturating_sub(rank);
                if behind > 0 {
                    let mut worst = worst.lock().unwrap();
                    if behind > worst.0 {
                        *worst = (behind, i);
                    }
                }
            })
            .expect("submit");
        }
        pool.wait_idle();
        let (behind, at) = *worst.lock().unwrap();
        assert!(
            behind < capacity,
            "capacity {capacity}: task {at} started {behind} places early (at most {} allowed)",
            capacity - 1
        );
        pool.shutdown();
    }
}

/// Tasks a task submits go onto its worker's own deque, LIFO: on one worker
/// the last one submitted runs first (locality for divide and conquer).
#[test]
fn tasks_spawned_inside_a_task_run_newest_first_on_their_worker() {
    let _s = serial();
    let _w = Watchdog::new("tasks_spawned_inside_a_task_run_newest_first_on_their_worker", 60);
    let pool = named_builder("so-lifo-", 1).build().expect("build");
    let order = Arc::new(Mutex::new(Vec::new()));
    let (p, o) = (pool.clone(), order.clone());
    pool.submit(move || {
        for i in 0..5 {
            let o = o.clone();
            p.submit(move || o.lock().unwrap().push(i)).expect("inside submit");
        }
    })
    .expect("submit");
    pool.wait_idle();
    assert_eq!(*order.lock().unwrap(), [4, 3, 2, 1, 0]);
}

/// `spawn_fifo` from inside a task: the spawned tasks start in spawn order
/// (one worker: exactly), unlike `spawn`'s LIFO.
#[test]
fn spawn_fifo_inside_a_task_starts_in_spawn_order() {
    let _s = serial();
    let _w = Watchdog::new("spawn_fifo_inside_a_task_starts_in_spawn_order", 60);
    let pool = named_builder("so-fifo-", 1).build().expect("build");
    let order = Arc::new(Mutex::new(Vec::new()));
    let (p, o) = (pool.clone(), order.clone());
    let handles = pool
        .spawn(move || {
            (0..5)
                .map(|i| {
                    let o = o.clone();
                    p.spawn_fifo(move || {
                        o.lock().unwrap().push(i);
                        i * 10
                    })
                    .expect("spawn_fifo")
                })
                .collect::<Vec<_>>()
        })
        .expect("spawn")
        .join()
        .expect("parent");
    let results: Vec<i32> = handles.into_iter().map(|h| h.join().expect("child")).collect();
    assert_eq!(results, [0, 10, 20, 30, 40]);
    assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4]);
    // A handle's result is published before the task counts as completed.
    pool.wait_idle();
    assert_eq!(pool.stats().completed, 6);
}

/// `scope_fifo` inside the pool starts its spawns in spawn order, `scope`
/// newest first (both on one worker, where the order is exact).
#[test]
fn scope_fifo_starts_spawns_in_order_and_scope_newest_first() {
    let _s = serial();
    let _w = Watchdog::new("scope_fifo_starts_spawns_in_order_and_scope_newest_first", 60);
    let pool = named_builder("so-sfifo-", 1).build().expect("build");
    let record = |fifo: bool| {
        let order = Mutex::new(Vec::new());
        let order = &order;
        pool.install(|| {
            if fifo {
                pool.scope_fifo(|s| {
                    for i in 0..5 {
                        s.spawn(move || order.lock().unwrap().push(i));
                    }
                })
            } else {
                pool.scope(|s| {
                    for i in 0..5 {
                        s.spawn(move || order.lock().unwrap().push(i));
                    }
                })
            }
        });
        let recorded = order.lock().unwrap().clone();
        recorded
    };
    assert_eq!(record(true), [0, 1, 2, 3, 4]);
    assert_eq!(record(false), [4, 3, 2, 1, 0]);
}

/// One worker runs a queue that built up behind it front to back, with
/// batches (the default) or without.
#[test]
fn a_queue_behind_a_busy_worker_starts_front_to_back() {
    let _s = serial();
    let _w = Watchdog::new("a_queue_behind_a_busy_worker_starts_front_to_back", 60);
    for fifo in [false, true] {
        let pool: Pool = named_builder("so-busy-", 1).fifo(fifo).build().expect("build");
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let started = Arc::new(AtomicUsize::new(0));
        let s = started.clone();
        pool.submit(move || {
            s.fetch_add(1, SeqCst);
            release_rx.recv_timeout(Duration::from_secs(60)).ok();
        })
        .expect("blocker");
        assert!(wait_until(SOON, || started.load(SeqCst) == 1));
        let order = Arc::new(Mutex::new(Vec::new()));
        for i in 0..100 {
            let o = order.clone();
            pool.submit(move || o.lock().unwrap().push(i)).expect("submit");
        }
        release_tx.send(()).expect("release");
        pool.wait_idle();
        assert_eq!(*order.lock().unwrap(), (0..100).collect::<Vec<_>>(), "fifo({fifo})");
    }
}
