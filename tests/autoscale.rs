//! The autoscaler: bounds are checked, a worker blocked without
//! `block_in_place` lends its slot (seen through its CPU clock on Linux),
//! queue delay on idle cores grows the capacity and calm shrinks it back,
//! computing tasks never push it past the cores, `set_autoscale(None)`
//! freezes it, and the monitor leaves with the pool.
//!
//! No assertion depends on timing: where something must happen "soon", the
//! test waits for it with a bound of seconds that only a broken autoscaler
//! (or a machine stalled that long) reaches. The tests run one at a time.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use stealpool::{Autoscale, BuildError, Pool, TuneError};

mod common;
use common::*;

const PATIENCE: Duration = Duration::from_secs(10);

fn monitors() -> usize {
    threads_named("stealpool-scale")
}

#[test]
fn bounds_that_do_not_fit_are_refused() {
    let _serial = serial();
    let built = Pool::builder()
        .capacity(2)
        .max_capacity(8)
        .autoscale(Autoscale::new(1, 9))
        .build();
    assert!(matches!(
        built,
        Err(BuildError::InvalidAutoscale {
            min: 1,
            max: 9,
            max_capacity: 8
        })
    ));
    assert!(matches!(
        Pool::builder()
            .capacity(2)
            .max_capacity(8)
            .autoscale(Autoscale::new(0, 4))
            .build(),
        Err(BuildError::InvalidAutoscale { .. })
    ));
    let pool = Pool::builder().capacity(2).max_capacity(8).build().unwrap();
    assert_eq!(
        pool.set_autoscale(Some(Autoscale::new(5, 4))),
        Err(TuneError::InvalidAutoscale {
            min: 5,
            max: 4,
            max_capacity: 8
        })
    );
    assert_eq!(pool.capacity(), 2);
    // The starting point is clamped into the bounds.
    pool.set_autoscale(Some(Autoscale::new(3, 8))).unwrap();
    assert_eq!(pool.capacity(), 3);
    pool.set_autoscale(None).unwrap();
    assert_eq!(pool.capacity(), 3);
}

#[cfg(target_os = "linux")]
#[test]
fn a_worker_blocked_without_a_hint_lends_its_slot() {
    let _serial = serial();
    let _watchdog = Watchdog::new("blocked_without_hint", 60);
    let pool = Pool::builder()
        .capacity(1)
        .max_capacity(4)
        // A long target: only the blocked-worker rule can let B in.
        .autoscale(Autoscale::new(1, 4).target_queue_delay(Duration::from_secs(3600)))
        .build()
        .unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let blocked = pool
        .spawn(move || {
            started_tx.send(()).unwrap();
            // Off the CPU: the monitor sees the thread's clock stand still.
            release_rx.recv_timeout(PATIENCE).is_ok()
        })
        .unwrap();
    started_rx.recv().unwrap();
    pool.submit(move || release_tx.send(()).unwrap()).unwrap();
    assert!(
        blocked.join().unwrap(),
        "the queued task did not run while the worker blocked"
    );
    pool.wait_idle();
    assert!(wait_until(PATIENCE, || pool.capacity() == 1 && pool.stats().blocked_workers == 0));
    assert_eq!(pool.stats().autoscale_steps, 0);
}

/// `(idle + iowait, total)` jiffies of the whole machine.
fn machine_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").expect("read /proc/stat");
    let values: Vec<u64> = stat
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|v| v.parse().unwrap())
        .collect();
    (values[3] + values[4], values.iter().sum())
}

/// The rule grows only while cores are idle, so what this test may assert
/// depends on the machine during the test, which it measures: with a core
/// or more idle on average, the capacity must have grown; with the machine
/// saturated by other processes (under a tenth of a core idle), it must not
/// have. Either way it never passes `max`, and after the load it shrinks
/// back to the start.
#[test]
fn queue_delay_grows_the_capacity_only_on_idle_cores_and_calm_shrinks_it_back() {
    let _serial = serial();
    let _watchdog = Watchdog::new("queue_delay_grows", 120);
    let cores = thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let pool = Pool::builder()
        .capacity(1)
        .max_capacity(16)
        .autoscale(Autoscale::new(1, 16).detect_blocking(false))
        .build()
        .unwrap();
    let mut peak = 0;
    let (idle_before, total_before) = machine_jiffies();
    // Sleeping tasks: the queue waits while the pool leaves its cores idle.
    let pressure = Instant::now();
    while pressure.elapsed() < Duration::from_secs(2) {
        for _ in 0..10 {
            pool.submit(|| thread::sleep(Duration::from_millis(2))).unwrap();
        }
        peak = peak.max(pool.capacity());
        thread::sleep(Duration::from_millis(20));
    }
    let (idle_after, total_after) = machine_jiffies();
    let idle_cores = (idle_after - idle_before) as f64 / (total_after - total_before).max(1) as f64 * cores;
    let grown = pool.stats();
    println!("idle cores {idle_cores:.2}, peak capacity {peak}, {grown:?}");
    assert!(peak <= 16);
    if idle_cores >= 1.0 {
        assert!(
            grown.autoscale_steps > 0 && peak > 1,
            "never grew with {idle_cores:.2} cores idle"
        );
    } else if idle_cores < 0.1 {
        assert_eq!(peak, 1, "grew on a saturated machine ({idle_cores:.2} cores idle)");
    }
    pool.wait_idle();
    assert!(
        wait_until(PATIENCE, || pool.capacity() == 1),
        "did not shrink back: {:?}",
        pool.stats()
    );
}

#[test]
fn computing_tasks_never_push_the_capacity_past_the_cores() {
    let _serial = serial();
    let _watchdog = Watchdog::new("computing_never_grows", 120);
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let pool = Pool::builder()
        .capacity(cores)
        .max_capacity(64)
        .autoscale(Autoscale::new(1, 64))
        .build()
        .unwrap();
    let mut peak = 0;
    for _ in 0..200 {
        pool.submit(|| {
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(2) {
                std::hint::spin_loop();
            }
        })
        .unwrap();
    }
    while pool.stats().completed < 200 {
        peak = peak.max(pool.capacity());
        thread::sleep(Duration::from_millis(1));
    }
    pool.wait_idle();
    assert!(
        peak <= cores + 1,
        "capacity rose to {peak} on {cores} cores for computing tasks"
    );
}

#[test]
fn turning_it_off_freezes_the_capacity_and_the_monitor_leaves() {
    let _serial = serial();
    let _watchdog = Watchdog::new("off_freezes", 60);
    let before = monitors();
    let pool = Pool::builder()
        .capacity(2)
        .max_capacity(8)
        .autoscale(Autoscale::new(1, 8))
        .build()
        .unwrap();
    // The thread names itself as it starts.
    assert!(wait_until(PATIENCE, || monitors() == before + 1));
    pool.tune(5).unwrap();
    assert_eq!(pool.capacity(), 5);
    pool.set_autoscale(None).unwrap();
    assert_eq!(pool.capacity(), 5);
    assert!(wait_until(PATIENCE, || monitors() == before));
    pool.set_autoscale(Some(Autoscale::new(1, 8))).unwrap();
    assert!(wait_until(PATIENCE, || monitors() == before + 1));
    pool.shutdown();
    assert_eq!(monitors(), before, "shutdown joins the monitor");
    pool.reboot().unwrap();
    assert!(wait_until(PATIENCE, || monitors() == before + 1), "reboot restarts it");
    drop(pool);
    assert_eq!(monitors(), before);
}

#[test]
fn freezing_a_pool_whose_autoscaler_never_ran_keeps_its_capacity_while_a_task_blocks_in_place() {
    // `set_autoscale(None)` takes off the live capacity only the explicit
    // lends that raised it: a lend that had no room to raise it (the pool
    // already at its maximum) must not freeze the pool one slot short.
    let pool = Pool::builder()
        .capacity(2)
        .max_capacity(2)
        .pin_workers(false)
        .build()
        .expect("pool");
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    pool.submit(move || {
        stealpool::block_in_place(|| {
            entered_tx.send(()).expect("send");
            let _ = release_rx.recv();
        });
    })
    .unwrap_or_else(|_| panic!("open pool refused a task"));
    entered_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the task blocked in place");
    pool.set_autoscale(None).expect("freeze");
    release_tx.send(()).expect("release");
    pool.wait_idle();
    assert_eq!(pool.capacity(), 2, "the freeze took a slot that was never lent");
    pool.shutdown();
}

#[cfg(target_os = "linux")]
#[test]
fn turning_it_off_gives_back_the_slots_lent_to_blocked_workers() {
    // Turning the autoscaler off while it lends slots to blocked workers
    // kept the lent capacity for good: 8 instead of the base 2, even on an
    // idle pool long after the blocking ended.
    let _serial = serial();
    let _watchdog = Watchdog::new("off_gives_back_lent_slots", 120);
    let before = monitors();
    let pool = Pool::builder()
        .capacity(2)
        .max_capacity(16)
        .pin_workers(false)
        // A long target: only the blocked-worker rule moves the capacity.
        .autoscale(Autoscale::new(2, 8).target_queue_delay(Duration::from_secs(3600)))
        .build()
        .unwrap();
    // Every task blocks (off the CPU) on the lock the test holds.
    let lock = std::sync::Arc::new(std::sync::RwLock::new(()));
    let held = lock.write().unwrap();
    for _ in 0..40 {
        let lock = lock.clone();
        pool.submit(move || drop(lock.read().unwrap())).unwrap();
    }
    assert!(
        wait_until(PATIENCE, || pool.capacity() == 8),
        "the autoscaler never lent the blocked workers' slots (capacity {})",
        pool.capacity()
    );
    pool.set_autoscale(None).unwrap();
    // Lent slots never raise the capacity past where it was, nor does the
    // higher `max_capacity` let them.
    assert!(
        pool.capacity() <= 8,
        "capacity {} after turning it off",
        pool.capacity()
    );
    drop(held);
    pool.wait_idle();
    assert_eq!(pool.stats().completed, 40);
    assert!(
        wait_until(PATIENCE, || pool.capacity() == 2 && pool.stats().blocked_workers == 0),
        "turned off on an idle pool, the capacity stayed {} (base 2), {} blocked",
        pool.capacity(),
        pool.stats().blocked_workers
    );
    assert!(
        wait_until(PATIENCE, || monitors() == before),
        "the monitor did not leave"
    );
    // Still at the base a while later: nothing moves it back up.
    thread::sleep(Duration::from_millis(300));
    assert_eq!(pool.capacity(), 2);
    // Off, `tune` moves it anywhere up to `max_capacity` again.
    pool.tune(16).unwrap();
    assert_eq!(pool.capacity(), 16);
}

#[test]
fn tune_under_the_autoscaler_is_clamped_into_its_bounds() {
    // `tune` outside the bounds set the capacity there (12 with a maximum of
    // 8, 1 with a minimum of 2), while building with such a capacity
    // clamped it.
    let _serial = serial();
    let pool = Pool::builder()
        .capacity(1)
        .max_capacity(16)
        .pin_workers(false)
        .autoscale(Autoscale::new(2, 8).target_queue_delay(Duration::from_secs(3600)))
        .build()
        .unwrap();
    assert_eq!(pool.capacity(), 2, "the built capacity is clamped");
    pool.tune(12).unwrap();
    assert_eq!(pool.capacity(), 8, "tune(12) under Autoscale::new(2, 8)");
    pool.tune(1).unwrap();
    assert_eq!(pool.capacity(), 2, "tune(1) under Autoscale::new(2, 8)");
    pool.tune(5).unwrap();
    assert_eq!(pool.capacity(), 5);
    // Still clamped on an idle pool a while later.
    pool.tune(1).unwrap();
    thread::sleep(Duration::from_millis(300));
    assert_eq!(pool.capacity(), 2);
    // Outside `max_capacity` it is still an error, autoscaler or not.
    assert!(matches!(pool.tune(17), Err(TuneError::AboveMax { .. })));
    assert_eq!(pool.tune(0), Err(TuneError::Zero));
    // New bounds clamp the last tune again; off, `tune` is free.
    pool.tune(12).unwrap();
    pool.set_autoscale(Some(Autoscale::new(3, 10))).unwrap();
    assert_eq!(pool.capacity(), 10);
    pool.set_autoscale(None).unwrap();
    assert_eq!(pool.capacity(), 10);
    pool.tune(12).unwrap();
    assert_eq!(pool.capacity(), 12);
    pool.tune(1).unwrap();
    assert_eq!(pool.capacity(), 1);
}
