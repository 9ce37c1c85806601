//! `MultiPool` as a cheap handle, `pool(i)` out of range, and
//! `MultiFuncPool` (ants' `MultiPoolWithFunc`).

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{serial, wait_until, Watchdog, SOON};
use stealpool::{LoadBalancing, MultiPool, Pool};

#[test]
fn multi_pool_clones_share_the_sub_pools_and_pool_index_is_checked() {
    let _s = serial();
    let _w = Watchdog::new("multi_pool_clones_share_the_sub_pools_and_pool_index_is_checked", 60);
    let mp = MultiPool::builder()
        .pools(2)
        .capacity_per_pool(1)
        .build()
        .expect("build");
    let other = mp.clone();
    let from_thread = {
        let mp = mp.clone();
        thread::spawn(move || mp.submit(|| ()).is_ok())
    };
    assert!(from_thread.join().unwrap());
    other.submit(|| ()).expect("submit through a clone");
    mp.wait_idle();
    assert_eq!(mp.stats().completed, 2, "both clones feed the same sub-pools");
    assert!(std::ptr::eq(mp.pool(0).unwrap(), other.pool(0).unwrap()));
    assert!(mp.pool(1).is_some());
    assert!(mp.pool(2).is_none());
    assert!(mp.pool(usize::MAX).is_none());
    // Dropping a clone shuts nothing down; the last one does.
    drop(other);
    mp.submit(|| ()).expect("still open after a clone was dropped");
    let sub = mp.pool(0).unwrap().clone();
    drop(mp);
    // The sub-pool handle we kept keeps sub-pool 0 open.
    assert!(!sub.is_closed());
}

#[test]
fn multi_func_pool_runs_every_argument_once_across_sub_pools() {
    let _s = serial();
    let _w = Watchdog::new("multi_func_pool_runs_every_argument_once_across_sub_pools", 60);
    for strategy in [LoadBalancing::RoundRobin, LoadBalancing::LeastTasks] {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let mfp = MultiPool::builder()
            .pools(3)
            .capacity_per_pool(1)
            .strategy(strategy)
            .thread_name(|pool, i| format!("mfp-{pool}-{i}"))
            .build_func(move |n: u32| {
                let pool = thread::current().name().unwrap().to_owned();
                s.lock().unwrap().push((n, pool));
            })
            .expect("build");
        let clone = mfp.clone();
        for n in 0..300 {
            clone.invoke(n).expect("invoke");
        }
        mfp.wait_idle();
        let seen = seen.lock().unwrap();
        let mut args: Vec<u32> = seen.iter().map(|(n, _)| *n).collect();
        args.sort_unstable();
        assert_eq!(args, (0..300).collect::<Vec<_>>(), "{strategy:?}");
        let pools: HashSet<&str> = seen.iter().map(|(_, name)| &name[..5]).collect();
        assert_eq!(pools.len(), 3, "{strategy:?}: every sub-pool got work: {pools:?}");
        assert_eq!(mfp.stats().completed, 300);
        assert_eq!(mfp.capacity(), 3);
        assert!(mfp.pool(3).is_none());
        mfp.shutdown();
        assert!(mfp.invoke(7).unwrap_err().is_closed());
    }
}

#[test]
fn multi_func_pool_least_tasks_steers_around_a_busy_sub_pool_and_hands_back_arguments() {
    let _s = serial();
    let _w = Watchdog::new(
        "multi_func_pool_least_tasks_steers_around_a_busy_sub_pool_and_hands_back_arguments",
        60,
    );
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Arc::new(Mutex::new(release_rx));
    let blocked = Arc::new(AtomicUsize::new(0));
    let total = Arc::new(AtomicU64::new(0));
    let (b, t) = (blocked.clone(), total.clone());
    let mfp = MultiPool::builder()
        .pools(2)
        .capacity_per_pool(1)
        .strategy(LoadBalancing::LeastTasks)
        .build_func(move |n: u64| {
            if n == 0 {
                b.fetch_add(1, SeqCst);
                let _ = release_rx.lock().unwrap().recv_timeout(Duration::from_secs(60));
            }
            t.fetch_add(n, SeqCst);
        })
        .expect("build");
    mfp.invoke(0).expect("blocker");
    assert!(wait_until(SOON, || blocked.load(SeqCst) == 1));
    // The blocked sub-pool has load 1: a quick argument goes to the other.
    for n in 1..=10 {
        mfp.invoke(n).expect("invoke");
        // Completed is counted after the argument's load went back down.
        assert!(
            wait_until(SOON, || mfp.stats().completed == n),
            "argument {n} waited behind the blocked sub-pool"
        );
    }
    release_tx.send(()).unwrap();
    mfp.wait_idle();
    // Both sub-pools blocked, three arguments queued: shutdown_now hands
    // them back (and the loads go back to zero with them).
    mfp.invoke(0).expect("blocker");
    mfp.invoke(0).expect("blocker");
    assert!(
        wait_until(SOON, || blocked.load(SeqCst) == 3),
        "one blocker per sub-pool"
    );
    for n in 50..53 {
        mfp.invoke(n).expect("queued");
    }
    let releaser = {
        let mfp = mfp.clone();
        thread::spawn(move || {
            wait_until(SOON, || mfp.is_closed());
            thread::sleep(Duration::from_millis(20));
            release_tx.send(()).unwrap();
            release_tx.send(()).unwrap();
        })
    };
    let mut unrun = mfp.shutdown_now();
    releaser.join().unwrap();
    unrun.sort_unstable();
    assert_eq!(unrun, [50, 51, 52]);
    let refused = mfp.invoke(5).expect_err("closed");
    assert!(refused.is_closed());
    assert_eq!(refused.into_inner(), 5);
    mfp.reboot().expect("reboot");
    mfp.invoke(100).expect("invoke after reboot");
    mfp.wait_idle();
    assert_eq!(total.load(SeqCst), 55 + 100);
}

#[test]
fn multi_pool_sub_pools_are_plain_pools() {
    let _s = serial();
    let mp = MultiPool::builder()
        .pools(2)
        .capacity_per_pool(1)
        .build()
        .expect("build");
    let p: &Pool = mp.pool(1).expect("sub-pool 1");
    assert_eq!(p.spawn(|| 5).unwrap().join().unwrap(), 5);
}
