//! `yield_now` / `yield_local`: one pending task of the current pool runs
//! on the yielding worker, from the places each one may look.

mod common;
use common::*;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;

use stealpool::{block_in_place, current_thread_index, yield_local, yield_now, Pool, Yield};

#[test]
fn none_outside_a_pool() {
    assert_eq!(yield_now(), None);
    assert_eq!(yield_local(), None);
}

#[test]
fn yield_local_leaves_the_shared_queue_and_yield_now_takes_from_it() {
    let _serial = serial();
    let _dog = Watchdog::new("local_vs_shared", 60);
    let pool = Pool::builder().capacity(1).build().unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let outside = pool.clone();
    let flag = ran.clone();
    let (local, after_local, shared, after_shared) = pool.install(move || {
        // Submitted from another thread: it lands in the shared queue, which
        // the only worker (this one) does not look at while we run.
        thread::spawn(move || outside.submit(move || flag.store(true, Ordering::SeqCst)).unwrap())
            .join()
            .unwrap();
        let local = yield_local();
        let after_local = ran.load(Ordering::SeqCst);
        let shared = yield_now();
        (local, after_local, shared, ran.load(Ordering::SeqCst))
    });
    assert_eq!(local, Some(Yield::Idle));
    assert!(!after_local, "yield_local ran a task of the shared queue");
    assert_eq!(shared, Some(Yield::Executed));
    assert!(after_shared);
    assert_eq!(pool.install(yield_now), Some(Yield::Idle));
}

#[test]
fn the_yielded_task_runs_on_the_caller_s_thread_and_its_panic_is_caught() {
    let _serial = serial();
    let _dog = Watchdog::new("panic_in_yield", 60);
    let pool = Pool::builder().capacity(1).panic_handler(|_| {}).build().unwrap();
    let (outcome, same_thread) = pool.install(|| {
        let me = thread::current().id();
        let (tx, rx) = mpsc::channel();
        stealpool::spawn(move || tx.send(thread::current().id()).unwrap()).unwrap();
        let first = yield_local();
        let same = rx.try_recv() == Ok(me);
        pool.submit(|| panic!("a yielded task panics")).unwrap();
        let second = yield_local();
        ((first, second), same)
    });
    assert_eq!(outcome, (Some(Yield::Executed), Some(Yield::Executed)));
    assert!(same_thread);
    pool.wait_idle();
    assert_eq!(pool.stats().panicked, 1);
}

#[test]
fn many_yields_drain_the_own_queue_newest_first() {
    let _serial = serial();
    let _dog = Watchdog::new("drain_own_queue", 60);
    let pool = Pool::builder().capacity(1).build().unwrap();
    let order = pool.install(|| {
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        for i in 0..5 {
            let order = order.clone();
            stealpool::spawn(move || order.lock().unwrap().push(i)).unwrap();
        }
        let mut executed = 0;
        while yield_local() == Some(Yield::Executed) {
            executed += 1;
        }
        assert_eq!(executed, 5);
        let order = order.lock().unwrap().clone();
        order
    });
    assert_eq!(order, [4, 3, 2, 1, 0]);
}

#[test]
fn a_worker_above_the_capacity_or_with_a_lent_slot_takes_nothing() {
    let _serial = serial();
    let _dog = Watchdog::new("above_capacity", 60);
    let pool = Pool::builder().capacity(2).max_capacity(4).build().unwrap();
    pool.prestart().unwrap();
    let both_running = Arc::new(Barrier::new(3));
    let tuned = Arc::new(Barrier::new(3));
    // Worker 0 stays busy until worker 1 has looked, so it cannot steal
    // worker 1's child first.
    let looked = Arc::new(Barrier::new(2));
    let child_ran = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    for _ in 0..2 {
        let (both_running, tuned, looked, child_ran, tx) = (
            both_running.clone(),
            tuned.clone(),
            looked.clone(),
            child_ran.clone(),
            tx.clone(),
        );
        let queued = pool.clone();
        pool.submit(move || {
            let index = current_thread_index().unwrap();
            if index == 0 {
                // Below the capacity, but inside block_in_place its place is
                // lent: it takes nothing, though a task is queued.
                let outcome = block_in_place(|| {
                    queued.submit(|| ()).unwrap(); // onto this worker's own queue
                    yield_local()
                });
                tx.send(("lent", outcome, 0)).unwrap();
            }
            both_running.wait();
            if index == 1 {
                let child_ran = child_ran.clone();
                stealpool::spawn(move || {
                    child_ran.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
            }
            tuned.wait(); // the test thread shrank the capacity to 1
            if index == 1 {
                let outcome = yield_now();
                tx.send(("above", outcome, child_ran.load(Ordering::SeqCst))).unwrap();
            }
            looked.wait();
        })
        .unwrap();
    }
    both_running.wait();
    pool.tune(1).unwrap();
    tuned.wait();
    for _ in 0..2 {
        let (case, outcome, ran) = rx.recv().unwrap();
        assert_eq!(outcome, Some(Yield::Idle), "{case}");
        assert_eq!(ran, 0, "the worker above the capacity ran its child");
    }
    pool.wait_idle();
    // The child ran after all, on the worker below the capacity.
    assert_eq!(child_ran.load(Ordering::SeqCst), 1);
}
