//! `shutdown_background`, and dropping the last handle without waiting
//! after it or after a `shutdown_timeout` that gave up.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::{threads_named, wait_until, Watchdog};
use stealpool::Pool;

fn named(prefix: &str, capacity: usize) -> Pool {
    let prefix = prefix.to_owned();
    Pool::builder()
        .capacity(capacity)
        .pin_workers(false)
        .thread_name(move |i| format!("{prefix}{i}"))
        .build()
        .expect("build a pool")
}

/// Returns while the only worker is blocked on a signal sent only after it
/// returned (so it cannot have waited for the queue: that would deadlock),
/// and fast: the bound is 1 s, generous on purpose (the call is a close and
/// a wake-up, microseconds; a 2-core machine shared with builds can still
/// deschedule the test thread for tens of milliseconds). The ten tasks
/// queued behind the blocker then run, new work is refused, and the threads
/// exit on their own.
#[test]
fn shutdown_background_returns_at_once_and_the_queue_still_runs() {
    let _w = Watchdog::new("shutdown_background_returns_at_once", 60);
    let pool = named("bg-a-", 1);
    let (release, wait) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel::<()>();
    pool.submit(move || {
        started_tx.send(()).unwrap();
        let _ = wait.recv();
    })
    .expect("submit the blocker");
    started
        .recv_timeout(Duration::from_secs(30))
        .expect("the blocker started");
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..10 {
        let ran = ran.clone();
        pool.submit(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .expect("submit");
    }
    let began = Instant::now();
    pool.shutdown_background();
    let took = began.elapsed();
    println!("shutdown_background returned in {took:?} with 10 tasks queued");
    assert!(took < Duration::from_secs(1), "shutdown_background took {took:?}");
    assert_eq!(ran.load(Ordering::SeqCst), 0, "the queue is still behind the blocker");
    assert!(pool.is_closed());
    assert!(pool.submit(|| ()).unwrap_err().is_closed());
    release.send(()).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || ran.load(Ordering::SeqCst) == 10),
        "the queued tasks did not run after shutdown_background"
    );
    assert!(
        wait_until(Duration::from_secs(30), || threads_named("bg-a-") == 0),
        "the worker threads did not exit on their own"
    );
}

/// Dropping the last handle after `shutdown_background` returns while a
/// task is still blocked (on a signal sent only after the drop returned).
#[test]
fn dropping_the_last_handle_after_shutdown_background_does_not_wait() {
    let _w = Watchdog::new("drop_after_shutdown_background", 60);
    let pool = named("bg-b-", 1);
    let (release, wait) = mpsc::channel::<()>();
    let (done_tx, done) = mpsc::channel::<()>();
    pool.submit(move || {
        let _ = wait.recv();
        done_tx.send(()).unwrap();
    })
    .expect("submit");
    pool.shutdown_background();
    drop(pool);
    release.send(()).unwrap();
    done.recv_timeout(Duration::from_secs(30))
        .expect("the task finished after the drop");
    assert!(
        wait_until(Duration::from_secs(30), || threads_named("bg-b-") == 0),
        "the worker thread did not exit on its own"
    );
}

/// Likewise after a `shutdown_timeout` that gave up; after a `reboot`, the
/// drop waits again (the pool runs anew).
#[test]
fn dropping_the_last_handle_after_a_shutdown_timeout_gave_up_does_not_wait() {
    let _w = Watchdog::new("drop_after_shutdown_timeout", 60);
    let pool = named("bg-c-", 1);
    let (release, wait) = mpsc::channel::<()>();
    let (done_tx, done) = mpsc::channel::<()>();
    pool.submit(move || {
        let _ = wait.recv();
        done_tx.send(()).unwrap();
    })
    .expect("submit");
    assert!(pool.shutdown_timeout(Duration::from_millis(10)).is_err());
    drop(pool);
    release.send(()).unwrap();
    done.recv_timeout(Duration::from_secs(30))
        .expect("the task finished after the drop");

    let pool = named("bg-d-", 1);
    pool.shutdown_background();
    pool.reboot().expect("reboot");
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..20 {
        let ran = ran.clone();
        pool.submit(move || {
            std::thread::sleep(Duration::from_millis(1));
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .expect("submit after the reboot");
    }
    drop(pool);
    assert_eq!(
        ran.load(Ordering::SeqCst),
        20,
        "after a reboot the drop waits for the queue"
    );
    assert_eq!(threads_named("bg-d-"), 0, "and joins the threads");
}
