//! Panicking tasks: workers survive, the panic handler receives payloads,
//! a panicking panic handler is survived too, and `stats().panicked` counts.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;

use stealpool::Pool;

mod common;
use common::*;

fn panic_message(payload: &(dyn std::any::Any + Send)) -> Option<String> {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
}

/// Runs `capacity` tasks that all wait for each other, which forces every
/// worker to take exactly one; returns the set of worker thread ids.
/// (A barrier with a 10 s bound rather than std's Barrier, so a missing
/// worker fails the test instead of hanging it.)
fn worker_ids(pool: &Pool) -> HashSet<ThreadId> {
    let n = pool.capacity();
    let arrived = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    for _ in 0..n {
        let (arrived, tx) = (arrived.clone(), tx.clone());
        pool.submit(move || {
            arrived.fetch_add(1, Ordering::SeqCst);
            let all = wait_until(Duration::from_secs(10), || arrived.load(Ordering::SeqCst) >= n);
            tx.send((thread::current().id(), all)).unwrap();
        })
        .expect("submit");
    }
    let mut ids = HashSet::new();
    for _ in 0..n {
        let (id, all) = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("barrier task did not run");
        assert!(
            all,
            "only {} of {n} workers ran a task concurrently",
            arrived.load(Ordering::SeqCst)
        );
        ids.insert(id);
    }
    assert_eq!(ids.len(), n);
    ids
}

#[test]
fn panics_do_not_kill_workers() {
    let _w = Watchdog::new("panics_do_not_kill_workers", 60);
    let pool = Pool::builder()
        .capacity(2)
        .pin_workers(false)
        .panic_handler(|_| {})
        .build()
        .expect("build");
    let before = worker_ids(&pool);

    for i in 0..100 {
        pool.submit(move || panic!("task {i} panics")).expect("submit");
    }
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..100 {
        let ran = ran.clone();
        pool.submit(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .expect("submit");
    }
    pool.wait_idle();
    assert_eq!(
        ran.load(Ordering::SeqCst),
        100,
        "normal tasks after panicking ones must all run"
    );
    let st = pool.stats();
    assert_eq!(st.panicked, 100, "stats().panicked");
    assert_eq!(st.completed, 202, "panicked tasks count as completed too");
    assert_eq!(st.live_workers, 2);

    // The very same worker threads are still serving tasks.
    let after = worker_ids(&pool);
    assert_eq!(before, after, "worker threads were replaced: panics killed workers");
}

#[test]
fn default_panic_handler_keeps_pool_working() {
    // No custom handler at all; pinning left at its default.
    let _w = Watchdog::new("default_panic_handler_keeps_pool_working", 60);
    let pool = Pool::builder().capacity(2).build().expect("build");
    for _ in 0..20 {
        pool.submit(|| panic!("default handler")).expect("submit");
    }
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..20 {
        let ran = ran.clone();
        pool.submit(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .expect("submit");
    }
    pool.wait_idle();
    assert_eq!(ran.load(Ordering::SeqCst), 20);
    assert_eq!(pool.stats().panicked, 20);
}

#[test]
fn custom_panic_handler_receives_payloads() {
    let _w = Watchdog::new("custom_panic_handler_receives_payloads", 60);
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let numbers: Arc<Mutex<Vec<u32>>> = Arc::default();
    let (s2, n2) = (seen.clone(), numbers.clone());
    let pool = Pool::builder()
        .capacity(2)
        .pin_workers(false)
        .panic_handler(move |payload| {
            if let Some(n) = payload.downcast_ref::<u32>() {
                n2.lock().unwrap().push(*n);
            } else {
                s2.lock()
                    .unwrap()
                    .push(panic_message(&*payload).unwrap_or_else(|| "<unknown>".into()));
            }
        })
        .build()
        .expect("build");

    for i in 0..10 {
        pool.submit(move || panic!("task {i} failed")).expect("submit");
    }
    pool.submit(|| panic!("static str payload")).expect("submit");
    for n in [7u32, 8, 9] {
        pool.submit(move || std::panic::panic_any(n)).expect("submit");
    }
    // Panics in spawn()ed tasks go to their JoinHandle, not to the handler.
    let h = pool.spawn(|| -> u8 { panic!("spawned panic") }).expect("spawn");
    assert!(h.join().is_err());
    pool.wait_idle();

    // The handler runs as part of the task, so this normally holds right
    // after wait_idle; a 10 s bound tolerates a handler invoked just after.
    assert!(
        wait_until(Duration::from_secs(10), || seen.lock().unwrap().len()
            + numbers.lock().unwrap().len()
            >= 14),
        "panic handler saw {} payloads, expected 14",
        seen.lock().unwrap().len() + numbers.lock().unwrap().len()
    );
    let mut msgs = seen.lock().unwrap().clone();
    msgs.sort();
    let mut expected: Vec<String> = (0..10).map(|i| format!("task {i} failed")).collect();
    expected.push("static str payload".into());
    expected.sort();
    assert_eq!(msgs, expected, "payload messages seen by the handler");
    let mut nums = numbers.lock().unwrap().clone();
    nums.sort();
    assert_eq!(nums, vec![7, 8, 9]);
    assert_eq!(pool.stats().panicked, 15, "14 submitted + 1 spawned panic");
}

#[test]
fn panicking_panic_handler_does_not_kill_worker() {
    let _w = Watchdog::new("panicking_panic_handler_does_not_kill_worker", 60);
    let handler_calls = Arc::new(AtomicUsize::new(0));
    let hc = handler_calls.clone();
    let pool = Pool::builder()
        .capacity(2)
        .pin_workers(false)
        .panic_handler(move |payload| {
            hc.fetch_add(1, Ordering::SeqCst);
            panic!("handler itself panics while handling {:?}", panic_message(&*payload));
        })
        .build()
        .expect("build");
    let before = worker_ids(&pool);

    for i in 0..20 {
        pool.submit(move || panic!("task {i}")).expect("submit");
    }
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..100 {
        let ran = ran.clone();
        pool.submit(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .expect("submit");
    }
    pool.wait_idle();
    assert_eq!(
        ran.load(Ordering::SeqCst),
        100,
        "tasks after a panicking panic handler must still run"
    );
    assert_eq!(handler_calls.load(Ordering::SeqCst), 20);
    assert_eq!(pool.stats().panicked, 20);
    let h = pool.spawn(|| 1 + 1).expect("spawn");
    assert_eq!(h.join().ok(), Some(2));
    let after = worker_ids(&pool);
    assert_eq!(
        before, after,
        "worker threads were replaced after the panic handler panicked"
    );
    pool.shutdown();
}

#[test]
fn panics_inside_nested_tasks_are_contained() {
    let _w = Watchdog::new("panics_inside_nested_tasks_are_contained", 60);
    let handled = Arc::new(AtomicUsize::new(0));
    let h2 = handled.clone();
    let pool = Pool::builder()
        .capacity(2)
        .pin_workers(false)
        .panic_handler(move |_| {
            h2.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .expect("build");
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..10 {
        let ran = ran.clone();
        pool.submit(move || {
            let p = Pool::current().expect("inside a worker");
            for j in 0..10 {
                let ran = ran.clone();
                p.submit(move || {
                    if j % 2 == 0 {
                        panic!("child {j}");
                    }
                    ran.fetch_add(1, Ordering::SeqCst);
                })
                .expect("nested submit");
            }
            panic!("parent panics after submitting its children");
        })
        .expect("submit");
    }
    pool.wait_idle();
    assert_eq!(ran.load(Ordering::SeqCst), 50);
    assert!(wait_until(Duration::from_secs(10), || handled.load(Ordering::SeqCst) == 60));
    assert_eq!(pool.stats().panicked, 60);
    assert_eq!(pool.stats().completed, 110);
}
