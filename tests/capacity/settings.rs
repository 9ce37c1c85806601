//! Capacity settings: what `tune` refuses, what the builder refuses, and
//! pre-allocated against on-demand threads.

use super::*;

#[test]
fn tune_errors_change_nothing() {
    let _s = serial();
    let _w = Watchdog::new("tune_errors_change_nothing", 60);
    let pool = builder("cap-err-", 3, 5).build().expect("build");
    assert_eq!(pool.max_capacity(), 5);
    assert_eq!(pool.stats().max_capacity, 5);

    match pool.tune(0) {
        Err(TuneError::Zero) => {}
        other => panic!("tune(0) must be Err(TuneError::Zero), got {other:?}"),
    }
    assert_eq!(pool.capacity(), 3, "a failed tune(0) changed the capacity");
    match pool.tune(6) {
        Err(TuneError::AboveMax { requested, max, .. }) => {
            assert_eq!((requested, max), (6, 5));
        }
        other => panic!("tune(6) with max_capacity 5 must be Err(AboveMax), got {other:?}"),
    }
    match pool.tune(usize::MAX) {
        Err(TuneError::AboveMax { requested, max, .. }) => {
            assert_eq!((requested, max), (usize::MAX, 5));
        }
        other => panic!("tune(usize::MAX) must be Err(AboveMax), got {other:?}"),
    }
    assert_eq!(pool.capacity(), 3, "a failed tune above max changed the capacity");
    assert_eq!(pool.stats().capacity, 3);
    let e: Box<dyn std::error::Error> = Box::new(pool.tune(0).unwrap_err());
    assert!(!e.to_string().is_empty());

    // The pool still works at its old capacity, and the bounds are inclusive.
    rendezvous(&pool, 3);
    pool.tune(5).expect("tune(max)");
    assert_eq!(pool.capacity(), 5);
    rendezvous(&pool, 5);
    pool.tune(1).expect("tune(1)");
    assert_eq!(pool.capacity(), 1);
    pool.shutdown();
}

#[test]
fn builder_rejects_inconsistent_capacity_settings() {
    let _s = serial();
    let _w = Watchdog::new("builder_rejects_inconsistent_capacity_settings", 60);
    assert!(matches!(
        Pool::builder().capacity(4).max_capacity(3).build(),
        Err(BuildError::MaxCapacityBelowCapacity { .. })
    ));
    assert!(matches!(
        Pool::builder().capacity(2).min_workers(3).build(),
        Err(BuildError::MinWorkersAboveCapacity { .. })
    ));
    assert!(matches!(
        Pool::builder().capacity(2).keep_alive(Duration::ZERO).build(),
        Err(BuildError::ZeroKeepAlive)
    ));
    assert!(matches!(
        Pool::builder().capacity(2).nonblocking(true).build(),
        Err(BuildError::NonblockingWithoutQueueLimit)
    ));
    assert!(matches!(
        Pool::builder().capacity(2).max_blocked_submitters(3).build(),
        Err(BuildError::MaxBlockedSubmittersWithoutQueueLimit { submitters: 3 })
    ));
    // Default ceiling: max(capacity, 256).
    let p = Pool::builder().capacity(4).pin_workers(false).build().expect("build");
    assert_eq!((p.capacity(), p.max_capacity()), (4, 256));
    // Only slots that have or had a thread are listed, not all 256.
    assert!(p.worker_stats().is_empty());
    p.shutdown();
    let p = Pool::builder().capacity(300).pin_workers(false).build().expect("build");
    assert_eq!((p.capacity(), p.max_capacity()), (300, 300));
    p.shutdown();
    // max_capacity == capacity is allowed; min_workers == capacity too.
    let p = Pool::builder()
        .capacity(2)
        .max_capacity(2)
        .min_workers(2)
        .pin_workers(false)
        .build()
        .expect("build");
    assert!(matches!(p.tune(3), Err(TuneError::AboveMax { .. })));
    p.shutdown();
}

#[test]
fn prealloc_starts_every_worker_in_build() {
    let _s = serial();
    let _w = Watchdog::new("prealloc_starts_every_worker_in_build", 60);
    const P: &str = "cap-pre-";
    let pool = builder(P, 3, 6).prealloc(true).build().expect("build");
    // build() started the threads: counted live before it returned.
    assert_eq!(
        pool.stats().live_workers,
        3,
        "prealloc(true), capacity 3: live_workers right after build"
    );
    // A thread sets its own OS name as it starts, so give the names a moment.
    assert!(
        wait_until(SOON, || threads_named(P) == 3),
        "prealloc(true), capacity 3: {} threads named {P:?}* without any task",
        threads_named(P)
    );
    assert_eq!(pool.stats().submitted, 0);
    let ws = pool.worker_stats();
    for w in &ws[..3] {
        assert!(
            !matches!(w.state, WorkerState::NotStarted | WorkerState::Suspended),
            "prealloc: worker {} is {:?}",
            w.index,
            w.state
        );
    }
    for w in &ws[3..] {
        assert!(
            matches!(w.state, WorkerState::NotStarted),
            "slot {} >= capacity has a thread: {:?}",
            w.index,
            w.state
        );
    }
    // Never more than capacity, and not a thread more after running tasks.
    let h = pool.spawn(|| 5).expect("spawn");
    assert_eq!(h.join().ok(), Some(5));
    pool.wait_idle();
    assert_eq!(threads_named(P), 3);
    assert_eq!(pool.stats().live_workers, 3);
    pool.shutdown();
    assert!(
        wait_until(SOON, || threads_named(P) == 0),
        "{} threads named {P:?}* alive after shutdown",
        threads_named(P)
    );
}

#[test]
fn without_prealloc_threads_start_on_demand() {
    let _s = serial();
    let _w = Watchdog::new("without_prealloc_threads_start_on_demand", 60);
    const P: &str = "cap-lazy-";
    let pool = builder(P, 3, 6).build().expect("build");
    assert_eq!(
        pool.stats().live_workers,
        0,
        "prealloc(false): live_workers right after build"
    );
    // No thread starts by itself (give a wrongly started one time to show up).
    thread::sleep(Duration::from_millis(50));
    assert_eq!(threads_named(P), 0, "prealloc(false): threads started without any task");
    assert_eq!(pool.stats().live_workers, 0);
    assert!(pool
        .worker_stats()
        .iter()
        .all(|w| matches!(w.state, WorkerState::NotStarted)));

    let h = pool
        .spawn(|| thread::current().name().map(str::to_owned))
        .expect("spawn");
    let name = h.join().expect("task").expect("worker threads are named");
    assert!(name.starts_with(P), "task ran on {name:?}");
    assert!(pool.stats().live_workers >= 1, "a task ran, yet live_workers = 0");
    assert!(
        (1..=3).contains(&threads_named(P)),
        "{} threads named {P:?}*",
        threads_named(P)
    );
    pool.shutdown();
}

#[test]
fn tune_on_a_preallocated_pool_grows_and_shrinks() {
    let _s = serial();
    let _w = Watchdog::new("tune_on_a_preallocated_pool_grows_and_shrinks", 60);
    const P: &str = "cap-pret-";
    let pool = builder(P, 2, 4).prealloc(true).build().expect("build");
    assert!(wait_until(SOON, || threads_named(P) == 2));

    pool.tune(4).expect("tune(4)");
    let names = rendezvous(&pool, 4);
    assert!(names.iter().all(|n| n.starts_with(P)), "{names:?}");
    assert!(wait_until(SOON, || pool.stats().live_workers == 4));

    pool.tune(1).expect("tune(1)");
    pool.wait_idle();
    let c = Arc::new(Concurrency::default());
    for _ in 0..50 {
        pool.submit(c.task(Duration::from_micros(500))).expect("submit");
    }
    pool.wait_idle();
    assert_eq!(c.ran.load(Ordering::SeqCst), 50);
    assert_eq!(
        c.max.load(Ordering::SeqCst),
        1,
        "capacity 1 after shrinking a preallocated pool"
    );

    pool.tune(3).expect("tune(3)");
    rendezvous(&pool, 3);
    pool.shutdown();
    assert!(wait_until(SOON, || threads_named(P) == 0));
}
