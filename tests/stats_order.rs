//! What a reader of `Pool::stats` may rely on about tasks it has seen end
//! or run: a spawned task whose handle returned its result counts as
//! completed and its worker no longer as busy; a task seen running from
//! inside (held at a barrier) counts as busy.

mod common;

use std::sync::{Arc, Barrier};

use common::{serial, Watchdog};
use stealpool::Pool;

/// After `join` returns, `completed` includes the task and the worker that
/// ran it is not busy: for `spawn` and `spawn_fifo`, and whether the task
/// returned or panicked. (Before, the worker counted the task and cleared
/// its busy flag only after the handle had the result: `completed` lagged
/// in most of 2,000 rounds.)
#[test]
fn a_joined_task_counts_as_completed_and_its_worker_as_idle() {
    let _s = serial();
    let _w = Watchdog::new("a_joined_task_counts_as_completed", 120);
    let pool = Pool::builder()
        .capacity(2)
        .panic_handler(|_| ())
        .build()
        .expect("build");
    let rounds = 2_000u64;
    let mut lagged = Vec::new();
    for i in 1..=rounds {
        let handle = match i % 3 {
            0 => pool.spawn_fifo(move || i).unwrap(),
            1 => pool.spawn(move || i).unwrap(),
            _ => pool
                .spawn(move || {
                    if i % 100 == 2 {
                        panic!("round {i}");
                    }
                    i
                })
                .unwrap(),
        };
        let result = handle.join();
        assert!(result.as_ref().map_or(true, |&value| value == i));
        let stats = pool.stats();
        if stats.completed < i || stats.busy_workers != 0 {
            lagged.push((i, stats.completed, stats.busy_workers));
        }
    }
    assert!(
        lagged.is_empty(),
        "{} of {rounds} rounds saw the joined task uncounted or its worker busy, first (round, completed, busy): {:?}",
        lagged.len(),
        &lagged[..lagged.len().min(5)]
    );
    // The same through `try_join` after `is_finished`, and `join_timeout`.
    let handle = pool.spawn(|| 1).unwrap();
    while !handle.is_finished() {
        std::thread::yield_now();
    }
    let stats = pool.stats();
    assert_eq!((stats.completed, stats.busy_workers), (rounds + 1, 0));
    drop(handle);
    let handle = pool.spawn(|| 2).unwrap();
    let value = handle
        .join_timeout(std::time::Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("not finished within 30 s"))
        .expect("no panic");
    assert_eq!(value, 2);
    assert_eq!(pool.stats().completed, rounds + 2);
}

/// Tasks held between two barriers with the test count as busy while the
/// test reads between the barriers: at least the four held, and (with the
/// capacity 4) no more. (A worker whose *earlier* task returned a moment
/// ago may still count as busy for that moment, so the count is exact only
/// where, as here, the capacity leaves no room for such a worker.)
#[test]
fn tasks_seen_running_from_inside_count_as_busy() {
    let _s = serial();
    let _w = Watchdog::new("tasks_seen_running_count_as_busy", 120);
    let pool = Pool::builder().capacity(4).build().expect("build");
    for _ in 0..50 {
        let met = Arc::new(Barrier::new(5));
        let release = Arc::new(Barrier::new(5));
        for _ in 0..4 {
            let (met, release) = (met.clone(), release.clone());
            pool.submit(move || {
                met.wait();
                release.wait();
            })
            .unwrap();
        }
        met.wait();
        let busy = pool.stats().busy_workers;
        release.wait();
        assert_eq!(busy, 4, "4 tasks held at a barrier, {busy} workers busy");
    }
    pool.wait_idle();
}
