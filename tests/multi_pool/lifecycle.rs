//! A MultiPool's lifecycle and figures across its sub-pools: shutdown and
//! reboot cycles, tune, stats, wait_idle, the last handle's drop.

use super::*;

#[test]
fn shutdown_and_reboot_cycles_lose_nothing() {
    let _w = Watchdog::new("shutdown_and_reboot_cycles_lose_nothing", 120);
    // Both isolated and stealing across (a sub-pool's last task may then
    // run on the other sub-pool's worker while the first shuts down).
    for (strategy, across) in STRATEGIES.iter().flat_map(|&s| [(s, false), (s, true)]) {
        let mp = Arc::new(
            multi("cycles", 2, 1, strategy)
                .steal_across(across)
                .build()
                .expect("build"),
        );
        // Every closure bumps `ran` when it runs: on the pool if accepted, on
        // the submitter (handed back) if refused.
        let ran = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let submitters: Vec<_> = (0..2)
            .map(|_| {
                let (mp, ran, stop) = (mp.clone(), ran.clone(), stop.clone());
                thread::spawn(move || {
                    let (mut accepted, mut refused) = (0usize, 0usize);
                    while !stop.load(Ordering::SeqCst) {
                        let ran = ran.clone();
                        match mp.submit(move || {
                            ran.fetch_add(1, Ordering::SeqCst);
                        }) {
                            Ok(()) => accepted += 1,
                            Err(error) => {
                                assert!(error.is_closed(), "only Closed is possible here");
                                error.into_inner()();
                                refused += 1;
                                thread::yield_now();
                            }
                        }
                    }
                    (accepted, refused)
                })
            })
            .collect();
        for cycle in 0..10 {
            thread::sleep(Duration::from_millis(2));
            if cycle % 2 == 0 {
                mp.shutdown();
            } else {
                assert!(mp.shutdown_timeout(SOON).is_ok());
            }
            assert!(mp.is_closed());
            let stats = mp.stats();
            assert_eq!(
                (stats.live_workers, stats.busy_workers, stats.queued),
                (0, 0, 0),
                "{stats:?}"
            );
            mp.reboot().unwrap();
            assert!(!mp.is_closed());
        }
        stop.store(true, Ordering::SeqCst);
        let (mut accepted, mut refused) = (0, 0);
        for submitter in submitters {
            let (a, r) = submitter.join().unwrap();
            accepted += a;
            refused += r;
        }
        mp.shutdown();
        assert_eq!(
            ran.load(Ordering::SeqCst),
            accepted + refused,
            "{strategy:?}: lost or ran twice"
        );
        assert!(accepted > 0, "{strategy:?}: nothing was accepted");
        let stats = mp.stats();
        assert_eq!(stats.submitted as usize, accepted, "{strategy:?}");
        assert_eq!(stats.rejected as usize, refused, "{strategy:?}");
    }
}

#[test]
fn shutdown_timeout_reports_a_blocked_sub_pool() {
    let _w = Watchdog::new("shutdown_timeout_reports_a_blocked_sub_pool", 60);
    let mp = multi("timeout", 2, 1, LoadBalancing::RoundRobin)
        .build()
        .expect("build");
    let gate = block_worker(mp.pool(1).unwrap());
    assert!(
        mp.shutdown_timeout(Duration::from_millis(20)).is_err(),
        "sub-pool 1 cannot finish"
    );
    assert!(mp.pools().iter().all(Pool::is_closed), "closed either way");
    gate.open();
    mp.shutdown();
    assert_eq!(mp.stats().completed, 1);
}

#[test]
fn tune_sets_every_sub_pool() {
    let _w = Watchdog::new("tune_sets_every_sub_pool", 60);
    let mp = multi("tune", 3, 1, LoadBalancing::LeastTasks)
        .pool_builder(Pool::builder().max_capacity(4))
        .build()
        .expect("build");
    mp.tune(2).unwrap();
    assert!(mp.pools().iter().all(|pool| pool.capacity() == 2));
    assert_eq!(mp.capacity(), 6);
    assert_eq!(mp.stats().capacity, 6);
    assert_eq!(mp.tune(0), Err(TuneError::Zero));
    assert_eq!(mp.tune(5), Err(TuneError::AboveMax { requested: 5, max: 4 }));
    assert!(
        mp.pools().iter().all(|pool| pool.capacity() == 2),
        "a refused tune changes nothing"
    );
    // The new capacity is real: every sub-pool runs two blocked tasks at once.
    let gates: Vec<Gate> = mp
        .pools()
        .iter()
        .flat_map(|pool| [block_worker(pool), block_worker(pool)])
        .collect();
    assert_eq!(mp.stats().busy_workers, 6);
    drop(gates);
    mp.wait_idle();
}

#[test]
fn stats_are_the_sum_of_the_sub_pools() {
    let _w = Watchdog::new("stats_are_the_sum_of_the_sub_pools", 60);
    let mp = multi("stats", 3, 2, LoadBalancing::RoundRobin)
        .pool_builder(Pool::builder().max_capacity(5).panic_handler(|_| ()))
        .build()
        .expect("build");
    for i in 0..30 {
        mp.submit(move || assert!(i % 3 != 0, "every third task panics"))
            .unwrap();
    }
    mp.wait_idle();
    mp.pool(2).unwrap().shutdown();
    assert!(mp.submit(|| ()).is_ok()); // turn 30 % 3 == 0
    assert!(mp.submit(|| ()).is_ok());
    assert!(mp.submit(|| ()).is_err()); // sub-pool 2: closed, not retried
    mp.wait_idle();

    let total = mp.stats();
    let parts: Vec<_> = mp.pools().iter().map(Pool::stats).collect();
    assert_eq!(total.capacity, 6);
    assert_eq!(total.max_capacity, 15);
    assert_eq!(
        (total.submitted, total.completed, total.panicked, total.rejected),
        (32, 32, 10, 1)
    );
    assert_eq!((total.queued, total.busy_workers), (0, 0));
    // Figures that do not move once every sub-pool is idle: field by field.
    assert_eq!(total.submitted, parts.iter().map(|s| s.submitted).sum::<u64>());
    assert_eq!(total.completed, parts.iter().map(|s| s.completed).sum::<u64>());
    assert_eq!(total.panicked, parts.iter().map(|s| s.panicked).sum::<u64>());
    assert_eq!(total.rejected, parts.iter().map(|s| s.rejected).sum::<u64>());
    assert_eq!(total.stolen, parts.iter().map(|s| s.stolen).sum::<u64>());
    assert_eq!(total.wait_count, parts.iter().map(|s| s.wait_count).sum::<u64>());
    assert_eq!(parts.iter().map(|s| s.submitted).collect::<Vec<_>>(), [11, 11, 10]);
}

#[test]
fn wait_idle_waits_for_every_sub_pool() {
    let _w = Watchdog::new("wait_idle_waits_for_every_sub_pool", 60);
    for strategy in STRATEGIES {
        let mp = multi("idle", 3, 1, strategy).build().expect("build");
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..12 {
            let done = done.clone();
            mp.submit(move || {
                thread::sleep(Duration::from_millis(5));
                done.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        }
        mp.wait_idle();
        assert_eq!(done.load(Ordering::SeqCst), 12, "{strategy:?}");
        assert!(
            mp.pools().iter().all(|pool| pool.stats().completed > 0),
            "{strategy:?}: not spread"
        );
    }
}

#[test]
fn wait_idle_sees_work_submitted_to_a_sub_pool_already_waited_for() {
    let _w = Watchdog::new("wait_idle_sees_work_submitted_to_a_sub_pool_already_waited_for", 60);
    let mp = multi("cross", 2, 1, LoadBalancing::RoundRobin).build().expect("build");
    let done = Arc::new(Mutex::new(Vec::new()));
    let (pool0, done2) = (mp.pool(0).unwrap().clone(), done.clone());
    // A task on sub-pool 1 that, once sub-pool 0 has most likely been waited
    // for, submits a slow task to sub-pool 0. (If the machine stalls past
    // the sleep, the test still passes: it then only checks less.)
    mp.pool(1)
        .unwrap()
        .submit(move || {
            thread::sleep(Duration::from_millis(50));
            let done = done2.clone();
            pool0
                .submit(move || {
                    thread::sleep(Duration::from_millis(50));
                    done.lock().unwrap().push("child");
                })
                .unwrap();
            done2.lock().unwrap().push("parent");
        })
        .unwrap();
    mp.wait_idle();
    assert_eq!(*done.lock().unwrap(), ["parent", "child"]);
}

#[test]
fn dropping_the_multi_pool_runs_what_it_accepted() {
    let _w = Watchdog::new("dropping_the_multi_pool_runs_what_it_accepted", 60);
    let done = Arc::new(AtomicUsize::new(0));
    {
        let mp = multi("drop", 2, 1, LoadBalancing::LeastTasks).build().expect("build");
        for _ in 0..10 {
            let done = done.clone();
            mp.submit(move || {
                thread::sleep(Duration::from_millis(1));
                done.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        }
    }
    assert_eq!(done.load(Ordering::SeqCst), 10);
}
