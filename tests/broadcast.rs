//! `Pool::broadcast`: once on every worker of the capacity, started on
//! demand, from outside or inside the pool, under `tune`, after shutdown;
//! never hanging on a worker that is suspended, waiting or gone.

mod common;
use common::*;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::Duration;

use stealpool::{current_thread_index, Pool, SubmitErrorKind};

#[test]
fn a_fresh_pool_starts_its_threads_and_runs_once_on_each() {
    let _serial = serial();
    let _dog = Watchdog::new("fresh_pool", 60);
    let pool = named_builder("bcast-fresh-", 3).max_capacity(8).build().unwrap();
    assert_eq!(pool.stats().live_workers, 0);
    let seen = pool
        .broadcast(|ctx| {
            let name = thread::current().name().unwrap().to_string();
            (ctx.index(), ctx.num_workers(), current_thread_index(), name)
        })
        .unwrap();
    assert_eq!(seen.len(), 3);
    for (position, (index, workers, current, name)) in seen.into_iter().enumerate() {
        assert_eq!((index, workers, current), (position, 3, Some(position)));
        assert_eq!(
            name,
            format!("bcast-fresh-{position}"),
            "ran on another worker's thread"
        );
    }
    assert_eq!(pool.stats().live_workers, 3);
    // Not tasks: nothing counted.
    assert_eq!(pool.stats().submitted, 0);
}

#[test]
fn the_workers_taking_part_follow_tune() {
    let _serial = serial();
    let _dog = Watchdog::new("follows_tune", 60);
    let pool = Pool::builder().capacity(4).max_capacity(8).build().unwrap();
    assert_eq!(pool.broadcast(|ctx| ctx.index()).unwrap(), [0, 1, 2, 3]);
    pool.tune(2).unwrap();
    // Workers 2 and 3 are parked above the capacity: they take no part.
    assert_eq!(pool.broadcast(|ctx| ctx.index()).unwrap(), [0, 1]);
    pool.tune(6).unwrap();
    assert_eq!(pool.broadcast(|ctx| ctx.num_workers()).unwrap(), [6; 6]);
}

#[test]
fn a_target_tuned_away_before_its_turn_still_runs_it_on_its_way_to_park() {
    let _serial = serial();
    let _dog = Watchdog::new("tuned_away", 60);
    let pool = Pool::builder().capacity(2).max_capacity(2).build().unwrap();
    pool.prestart().unwrap();
    // Two tasks on the two workers at once; the one on worker 1 stays busy
    // until released, the one on worker 0 returns.
    let (release, wait) = mpsc::channel::<()>();
    let wait = Arc::new(std::sync::Mutex::new(Some(wait)));
    let both = Arc::new(Barrier::new(3));
    for _ in 0..2 {
        let (wait, both) = (wait.clone(), both.clone());
        pool.submit(move || {
            both.wait();
            if current_thread_index() == Some(1) {
                let wait = wait.lock().unwrap().take().unwrap();
                wait.recv().unwrap();
            }
        })
        .unwrap();
    }
    both.wait();
    let (ran_tx, ran_rx) = mpsc::channel();
    let broadcaster = {
        let pool = pool.clone();
        thread::spawn(move || {
            pool.broadcast(move |ctx| {
                ran_tx.send(ctx.index()).unwrap();
                ctx.index()
            })
        })
    };
    // The idle worker 0 ran its share; the busy worker 1 cannot yet.
    assert_eq!(ran_rx.recv().unwrap(), 0);
    // Worker 1's slot goes above the capacity: after its task it parks,
    // running its share first.
    pool.tune(1).unwrap();
    release.send(()).unwrap();
    assert_eq!(broadcaster.join().unwrap().unwrap(), [0, 1]);
    assert_eq!(ran_rx.recv().unwrap(), 1);
    assert_eq!(pool.broadcast(|ctx| ctx.index()).unwrap(), [0]);
}

#[test]
fn from_inside_a_worker_the_caller_runs_its_share_and_broadcasts_may_cross() {
    let _serial = serial();
    let _dog = Watchdog::new("from_inside", 60);
    // One worker: the caller is the only target.
    let one = Pool::builder().capacity(1).build().unwrap();
    let inner = one.clone();
    let seen = one
        .spawn(move || inner.broadcast(|ctx| ctx.index()))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(seen.unwrap(), [0]);
    // Two workers broadcasting at the same time: each runs the other's
    // share while it waits for its own broadcast.
    let pool = Pool::builder().capacity(2).build().unwrap();
    pool.prestart().unwrap();
    let both = Arc::new(Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (pool_inner, both) = (pool.clone(), both.clone());
            pool.spawn(move || {
                both.wait();
                pool_inner.broadcast(|ctx| ctx.index()).unwrap()
            })
            .unwrap()
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().unwrap(), [0, 1]);
    }
}

#[test]
fn a_worker_waiting_in_a_scope_runs_the_share_of_the_task_it_waits_for() {
    let _serial = serial();
    let _dog = Watchdog::new("waiting_in_scope", 60);
    let pool = Pool::builder().capacity(2).build().unwrap();
    pool.prestart().unwrap();
    let inner = pool.clone();
    let result = pool.install(move || {
        let (started_tx, started) = mpsc::channel();
        let mut seen = Vec::new();
        inner.scope(|s| {
            let inner = &inner;
            let seen = &mut seen;
            // Taken by the other worker (this one blocks below), which then
            // broadcasts and needs this worker's share while this worker
            // waits for the spawn to finish.
            s.spawn(move || {
                started_tx.send(()).unwrap();
                *seen = inner.broadcast(|ctx| ctx.index()).unwrap();
            });
            started.recv().unwrap();
        });
        seen
    });
    assert_eq!(result, [0, 1]);
}

#[test]
fn a_panic_comes_back_after_every_worker_ran_it() {
    let _serial = serial();
    let _dog = Watchdog::new("panic", 60);
    let pool = Pool::builder().capacity(3).build().unwrap();
    let ran = AtomicUsize::new(0);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.broadcast(|ctx| {
            ran.fetch_add(1, Ordering::SeqCst);
            if ctx.index() == 1 {
                panic!("worker 1 says no");
            }
        })
    }));
    let payload = outcome.expect_err("the panic is re-raised");
    assert_eq!(panic_message(&*payload).as_deref(), Some("worker 1 says no"));
    assert_eq!(ran.load(Ordering::SeqCst), 3);
    // The workers are fine.
    assert_eq!(pool.broadcast(|ctx| ctx.index()).unwrap(), [0, 1, 2]);
    assert_eq!(pool.spawn(|| 7).unwrap().join().unwrap(), 7);
}

#[test]
fn after_shutdown_it_refuses_at_once() {
    let _serial = serial();
    let _dog = Watchdog::new("after_shutdown", 60);
    let pool = Pool::builder().capacity(2).build().unwrap();
    pool.shutdown();
    let ran = AtomicUsize::new(0);
    let refused = pool.broadcast(|_| ran.fetch_add(1, Ordering::SeqCst));
    assert_eq!(refused.unwrap_err(), SubmitErrorKind::Closed);
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    pool.reboot().unwrap();
    assert_eq!(pool.broadcast(|ctx| ctx.index()).unwrap(), [0, 1]);
}

#[test]
fn racing_shutdown_ends_in_a_result_or_closed_never_a_hang() {
    let _serial = serial();
    let _dog = Watchdog::new("racing_shutdown", 120);
    for round in 0..50 {
        let pool = Pool::builder().capacity(3).build().unwrap();
        let closer = {
            let pool = pool.clone();
            thread::spawn(move || {
                if round % 2 == 0 {
                    thread::yield_now();
                }
                pool.shutdown_background();
            })
        };
        match pool.broadcast(|ctx| ctx.index()) {
            Ok(seen) => assert_eq!(seen, [0, 1, 2]),
            Err(error) => assert_eq!(error, SubmitErrorKind::Closed),
        }
        closer.join().unwrap();
    }
}

#[test]
fn sleeping_expiring_and_busy_workers_all_take_their_share() {
    let _serial = serial();
    let _dog = Watchdog::new("sleeping_expiring_busy", 120);
    let pool = Pool::builder()
        .capacity(3)
        .keep_alive(Duration::from_millis(5))
        .build()
        .unwrap();
    let threads = Arc::new(std::sync::Mutex::new(HashSet::new()));
    for round in 0..30 {
        // Some rounds find the workers asleep, some expiring or gone (their
        // keep-alive is shorter than the pause), some busy with tasks.
        if round % 3 == 1 {
            for _ in 0..20 {
                pool.submit(|| thread::sleep(Duration::from_micros(200))).unwrap();
            }
        }
        let threads = threads.clone();
        let seen = pool
            .broadcast(move |ctx| {
                threads.lock().unwrap().insert(thread::current().id());
                ctx.index()
            })
            .unwrap();
        assert_eq!(seen, [0, 1, 2], "round {round}");
        thread::sleep(Duration::from_millis(round % 7));
    }
    pool.wait_idle();
    assert!(threads.lock().unwrap().len() >= 3);
}
