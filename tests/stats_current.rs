//! `Pool::current`, `stats()`, builder options and error types, and the
//! auto-trait guarantees of the public types.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use stealpool::{BuildError, Builder, JoinHandle, Pool, Refused, Stats, SubmitError};

mod common;
use common::*;

fn assert_clone_send_sync<T: Clone + Send + Sync + 'static>() {}
fn assert_send<T: Send>() {}
fn assert_error<E: std::error::Error + 'static>() {}
fn assert_error_val<E: std::error::Error>(_: &E) {}

#[test]
fn public_types_have_the_promised_traits() {
    assert_clone_send_sync::<Pool>();
    assert_send::<JoinHandle<Vec<u8>>>();
    assert_error::<BuildError>();
    let _builder: Builder = Pool::builder();
    let _stats: Stats = Pool::builder()
        .capacity(1)
        .pin_workers(false)
        .build()
        .expect("build")
        .stats();
}

#[test]
fn current_is_none_outside_and_some_inside() {
    let _w = Watchdog::new("current_is_none_outside_and_some_inside", 60);
    assert!(Pool::current().is_none(), "test thread is not a pool worker");
    let a = Pool::builder()
        .capacity(3)
        .pin_workers(false)
        .thread_name(|i| format!("stc-a-{i}"))
        .build()
        .expect("build a");
    let b = Pool::builder()
        .capacity(2)
        .pin_workers(false)
        .thread_name(|i| format!("stc-b-{i}"))
        .build()
        .expect("build b");
    assert!(
        Pool::current().is_none(),
        "building a pool does not make this thread a worker"
    );

    // Inside pool a: current() is a (capacity 3), and submitting through it
    // runs the task on one of a's threads.
    let (tx, rx) = mpsc::channel();
    a.submit(move || {
        let cur = Pool::current().expect("Some inside a worker");
        let cap = cur.capacity();
        let tx2 = tx.clone();
        cur.submit(move || {
            let name = thread::current().name().map(str::to_owned);
            let inner_cap = Pool::current().map(|p| p.capacity());
            tx2.send(("nested", name, inner_cap)).unwrap();
        })
        .expect("submit through Pool::current()");
        tx.send(("outer", thread::current().name().map(str::to_owned), Some(cap)))
            .unwrap();
    })
    .expect("submit");
    let mut got: Vec<_> = (0..2)
        .map(|_| rx.recv_timeout(Duration::from_secs(30)).expect("task did not report"))
        .collect();
    got.sort();
    for (what, name, cap) in got {
        let name = name.expect("worker threads are named");
        assert!(
            name.starts_with("stc-a-"),
            "{what} task ran on thread {name:?}, not on pool a"
        );
        assert_eq!(cap, Some(3), "{what}: Pool::current() is not pool a");
    }

    // Inside pool b: current() is b.
    let h = b
        .spawn(|| Pool::current().map(|p| (p.capacity(), p.stats().capacity)))
        .expect("spawn");
    assert_eq!(join_timeout(h).ok(), Some(Some((2, 2))));

    // current() from a submits lands in a's stats, not b's.
    a.wait_idle();
    b.wait_idle();
    assert_eq!(a.stats().submitted, 2);
    assert_eq!(b.stats().submitted, 1);

    // A plain std thread is still outside any pool.
    assert!(thread::spawn(|| Pool::current().is_none()).join().unwrap());
    // And once back outside, still None here.
    assert!(Pool::current().is_none());
}

#[test]
fn stats_track_busy_queued_and_completed() {
    let _w = Watchdog::new("stats_track_busy_queued_and_completed", 60);
    let pool = Pool::builder().capacity(2).pin_workers(false).build().expect("build");
    let st = pool.stats();
    assert_eq!(st.capacity, 2);
    assert_eq!(pool.capacity(), 2);
    assert_eq!((st.submitted, st.completed, st.panicked), (0, 0, 0));
    assert_eq!(st.queued, 0);
    assert_eq!(st.busy_workers, 0);
    assert!(st.live_workers <= st.capacity);

    // Block both workers.
    let gate = Arc::new(AtomicBool::new(false));
    let entered = Arc::new(AtomicUsize::new(0));
    for _ in 0..2 {
        let (gate, entered) = (gate.clone(), entered.clone());
        pool.submit(move || {
            entered.fetch_add(1, Ordering::SeqCst);
            assert!(
                wait_until(Duration::from_secs(30), || gate.load(Ordering::SeqCst)),
                "gate never opened"
            );
        })
        .expect("submit");
    }
    assert!(
        wait_until(Duration::from_secs(10), || entered.load(Ordering::SeqCst) == 2),
        "both workers should pick up a blocking task"
    );
    // Generous bound: busy_workers may be updated just after the task starts.
    assert!(
        wait_until(Duration::from_secs(10), || pool.stats().busy_workers == 2),
        "busy_workers = {} while both workers are blocked",
        pool.stats().busy_workers
    );
    let st = pool.stats();
    assert!(st.busy_workers <= st.live_workers, "{st:?}");
    assert_eq!(st.live_workers, 2, "{st:?}");

    // Queue 5 more: nobody can take them.
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..5 {
        let done = done.clone();
        pool.submit(move || {
            done.fetch_add(1, Ordering::SeqCst);
        })
        .expect("submit");
    }
    let st = pool.stats();
    assert_eq!(st.queued, 5, "queued while all workers are blocked: {st:?}");
    assert_eq!(st.submitted, 7);
    assert_eq!(st.completed, 0);
    assert_eq!(done.load(Ordering::SeqCst), 0);

    gate.store(true, Ordering::SeqCst);
    pool.wait_idle();
    assert_eq!(done.load(Ordering::SeqCst), 5);
    let st = pool.stats();
    assert_eq!(st.queued, 0, "{st:?}");
    assert_eq!(st.busy_workers, 0, "{st:?}");
    assert_eq!(st.submitted, 7, "{st:?}");
    assert_eq!(st.completed, st.submitted, "{st:?}");
    assert_eq!(st.panicked, 0);
    assert!(st.busy_workers <= st.live_workers);
    assert!(st.live_workers <= st.capacity);

    // Idle workers go to sleep eventually (bounded wait, 10 s).
    assert!(
        wait_until(Duration::from_secs(10), || {
            let s = pool.stats();
            s.sleeping_workers == s.live_workers
        }),
        "idle workers never all reported sleeping: {:?}",
        pool.stats()
    );
}

#[test]
fn stats_after_many_tasks_and_spawns() {
    // Default pinning here on purpose.
    let _w = Watchdog::new("stats_after_many_tasks_and_spawns", 60);
    let pool = Pool::builder().capacity(2).build().expect("build");
    let n = Arc::new(AtomicUsize::new(0));
    for _ in 0..5000 {
        let n = n.clone();
        pool.submit(move || {
            n.fetch_add(1, Ordering::SeqCst);
        })
        .expect("submit");
    }
    let hs: Vec<_> = (0..500).map(|i| pool.spawn(move || i).expect("spawn")).collect();
    for (i, h) in hs.into_iter().enumerate() {
        assert_eq!(h.join().ok(), Some(i));
    }
    pool.wait_idle();
    let st = pool.stats();
    assert_eq!(n.load(Ordering::SeqCst), 5000);
    assert_eq!(st.submitted, 5500, "{st:?}");
    assert_eq!(st.completed, 5500, "{st:?}");
    assert_eq!(st.queued, 0);
    assert_eq!(st.busy_workers, 0);
    assert!(st.busy_workers <= st.live_workers);
    assert!(st.live_workers <= st.capacity);
    assert!(
        st.stolen <= st.completed,
        "stolen {} > completed {}",
        st.stolen,
        st.completed
    );
}

#[test]
fn zero_capacity_is_a_build_error() {
    match Pool::builder().capacity(0).build() {
        Err(BuildError::ZeroCapacity) => {}
        Err(e) => panic!("expected ZeroCapacity, got {e:?}"),
        Ok(_) => panic!("capacity 0 must not build"),
    }
    let e = match Pool::builder().capacity(0).pin_workers(false).build() {
        Err(e) => e,
        Ok(_) => panic!("capacity 0 must not build"),
    };
    assert_error_val(&e);
    assert!(!e.to_string().is_empty(), "BuildError Display is empty");
    assert!(!format!("{e:?}").is_empty());
}

#[test]
fn default_pool_and_builder_options() {
    let _w = Watchdog::new("default_pool_and_builder_options", 60);
    let pool = Pool::new().expect("Pool::new");
    assert!(pool.capacity() >= 1);
    assert_eq!(pool.stats().capacity, pool.capacity());
    assert!(!pool.is_closed());
    let h = pool.spawn(|| "hi").expect("spawn");
    assert_eq!(join_timeout(h).ok(), Some("hi"));
    pool.shutdown();
    assert!(pool.is_closed());

    // thread_name is applied to the workers.
    let pool = Pool::builder()
        .capacity(1)
        .pin_workers(false)
        .thread_name(|i| format!("opt-name-{i}"))
        .build()
        .expect("build");
    let h = pool
        .spawn(|| thread::current().name().map(str::to_owned))
        .expect("spawn");
    assert_eq!(join_timeout(h).ok(), Some(Some("opt-name-0".to_string())));

    // stack_size is applied: a 4 MiB stack frame needs more than the usual
    // 2 MiB default, but fits in 16 MiB.
    let pool = Pool::builder()
        .capacity(1)
        .pin_workers(false)
        .stack_size(16 << 20)
        .build()
        .expect("build");
    let h = pool
        .spawn(|| {
            let big = [1u8; 4 << 20];
            std::hint::black_box(&big).iter().map(|&b| b as usize).sum::<usize>()
        })
        .expect("spawn");
    assert_eq!(join_timeout(h).ok(), Some(4 << 20));
}

#[test]
fn submit_error_formats_without_debug_closure() {
    // Closures are not Debug; Display/Debug/Error must still work.
    let e = SubmitError::Closed(Refused::new(|| {}));
    assert_error_val(&e);
    let closed = (e.to_string(), format!("{e:?}"));
    assert!(e.is_closed() && !e.is_full() && !e.is_timeout());
    let e = SubmitError::Full(Refused::new(|| {}));
    let full = (e.to_string(), format!("{e:?}"));
    assert!(e.is_full() && !e.is_closed() && !e.is_timeout());
    let e = SubmitError::Timeout(Refused::new(|| {}));
    let timeout = (e.to_string(), format!("{e:?}"));
    assert!(e.is_timeout() && !e.is_closed() && !e.is_full());
    for (d, dbg) in [&closed, &full, &timeout] {
        assert!(!d.is_empty() && !dbg.is_empty());
    }
    assert!(
        closed.0 != full.0 && full.0 != timeout.0 && closed.0 != timeout.0,
        "Display should tell the variants apart: {closed:?} {full:?} {timeout:?}"
    );
    // into_inner gives back the payload for every variant.
    assert_eq!(SubmitError::Full(Refused::new(5u8)).into_inner(), 5);
    assert_eq!(SubmitError::Timeout(Refused::new("t")).into_inner(), "t");
    let hit = Arc::new(AtomicUsize::new(0));
    let h2 = hit.clone();
    (SubmitError::Closed(Refused::new(move || {
        h2.fetch_add(1, Ordering::SeqCst);
    }))
    .into_inner())();
    assert_eq!(hit.load(Ordering::SeqCst), 1);

    // A real one from a closed pool, as a Box<dyn Error>.
    let pool = Pool::builder().capacity(1).pin_workers(false).build().expect("build");
    pool.shutdown();
    let err = pool.submit(|| {}).unwrap_err();
    let boxed: Box<dyn std::error::Error> = Box::new(err);
    assert!(!boxed.to_string().is_empty());
}
