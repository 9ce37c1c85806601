//! The queue limit's exact bound, and `queue_limit(0)`: a task is admitted
//! only if a worker is free for it (ants' rule), blocking or refusing.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use common::{named_builder, serial, wait_until, Watchdog, SOON};
use stealpool::SubmitError;

/// Tasks that hold their worker until released; returns the release sender.
fn hold_workers(pool: &stealpool::Pool, n: usize) -> Vec<mpsc::Sender<()>> {
    let started = Arc::new(AtomicUsize::new(0));
    let releases = (0..n)
        .map(|_| {
            let (tx, rx) = mpsc::channel::<()>();
            let started = started.clone();
            pool.submit(move || {
                started.fetch_add(1, SeqCst);
                rx.recv_timeout(Duration::from_secs(60)).ok();
            })
            .unwrap_or_else(|e| panic!("holder refused: {e:?}"));
            tx
        })
        .collect();
    assert!(
        wait_until(SOON, || started.load(SeqCst) == n),
        "holders did not all start"
    );
    releases
}

#[test]
fn queue_limit_zero_nonblocking_admits_a_task_only_for_a_free_worker() {
    let _s = serial();
    let _w = Watchdog::new("queue_limit_zero_nonblocking_admits_a_task_only_for_a_free_worker", 60);
    let pool = named_builder("ql0-nb-", 2)
        .queue_limit(0)
        .nonblocking(true)
        .build()
        .expect("build");
    let releases = hold_workers(&pool, 2);
    // Both workers busy: nothing may wait.
    let (tx, rx) = mpsc::channel();
    match pool.submit(move || tx.send(1).unwrap()) {
        Err(SubmitError::Full(task)) => task.into_inner()(), // the closure comes back
        other => panic!("expected Full with both workers busy, got {other:?}"),
    }
    assert_eq!(rx.recv().unwrap(), 1);
    // One worker frees: exactly one task is admitted again.
    releases[0].send(()).unwrap();
    // `completed` is counted after the task's place is given back.
    assert!(
        wait_until(SOON, || pool.stats().completed == 1),
        "worker 0 did not free"
    );
    let (tx, rx) = mpsc::channel::<()>();
    pool.submit(move || {
        rx.recv_timeout(Duration::from_secs(60)).ok();
    })
    .expect("a worker is free: admitted");
    assert!(pool.submit(|| ()).unwrap_err().is_full(), "no worker free again");
    tx.send(()).unwrap();
    releases[1].send(()).unwrap();
    pool.wait_idle();
    assert_eq!(pool.stats().rejected, 2);
}

#[test]
fn queue_limit_zero_blocks_the_submitter_until_a_worker_is_free() {
    let _s = serial();
    let _w = Watchdog::new("queue_limit_zero_blocks_the_submitter_until_a_worker_is_free", 60);
    let pool = named_builder("ql0-b-", 1).queue_limit(0).build().expect("build");
    let releases = hold_workers(&pool, 1);
    let ran = Arc::new(AtomicUsize::new(0));
    let submitter = {
        let (pool, ran) = (pool.clone(), ran.clone());
        thread::spawn(move || {
            pool.submit(move || {
                ran.fetch_add(1, SeqCst);
            })
            .is_ok()
        })
    };
    assert!(
        wait_until(SOON, || pool.stats().blocked_submitters == 1),
        "the submitter did not block with the only worker busy"
    );
    assert_eq!(ran.load(SeqCst), 0);
    assert_eq!(pool.stats().submitted, 1, "nothing admitted while the worker is busy");
    releases[0].send(()).unwrap();
    assert!(submitter.join().unwrap(), "admitted once the worker was free");
    pool.wait_idle();
    assert_eq!(ran.load(SeqCst), 1);
    assert!(pool.stats().wait_count >= 1);
}

/// The documented bound: at most `queue_limit + capacity` outside tasks are
/// accepted and unfinished, whether or not the workers have started theirs
/// yet. So `shutdown_now` hands back up to `queue_limit + capacity` tasks,
/// not only `queue_limit`: those admitted for a free worker that had not
/// started them yet come back too.
#[test]
fn the_bound_is_queue_limit_plus_capacity_accepted_and_unfinished() {
    let _s = serial();
    let _w = Watchdog::new("the_bound_is_queue_limit_plus_capacity_accepted_and_unfinished", 60);
    const LIMIT: usize = 5;
    const CAPACITY: usize = 2;
    for round in 0..10 {
        // Threads start on demand: the burst races the workers' start.
        let pool = named_builder("ql-bound-", CAPACITY)
            .queue_limit(LIMIT)
            .nonblocking(true)
            .build()
            .expect("build");
        let started = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut accepted = 0;
        loop {
            let (started, release) = (started.clone(), release.clone());
            let task = move || {
                started.fetch_add(1, SeqCst);
                wait_until(Duration::from_secs(60), || release.load(SeqCst));
            };
            match pool.submit(task) {
                Ok(()) => accepted += 1,
                Err(SubmitError::Full(_)) => break,
                Err(other) => panic!("round {round}: {other:?}"),
            }
            assert!(
                accepted <= LIMIT + CAPACITY,
                "round {round}: above queue_limit + capacity"
            );
        }
        // Nothing finishes, so exactly the bound was admitted.
        assert_eq!(accepted, LIMIT + CAPACITY, "round {round}");
        let releaser = {
            let (pool, release) = (pool.clone(), release.clone());
            thread::spawn(move || {
                // `shutdown_now` empties the queues right after closing, then
                // waits for the running tasks: let them go once it closed.
                wait_until(SOON, || pool.is_closed());
                thread::sleep(Duration::from_millis(20));
                release.store(true, SeqCst);
            })
        };
        let handed_back = pool.shutdown_now().len();
        releaser.join().unwrap();
        let ran = started.load(SeqCst);
        assert_eq!(
            handed_back + ran,
            LIMIT + CAPACITY,
            "round {round}: every accepted task either ran or came back"
        );
        assert!(
            (LIMIT..=LIMIT + CAPACITY).contains(&handed_back),
            "round {round}: {handed_back} handed back"
        );
    }
}
