//! `Pool::prestart`, `worker_stats` listing only slots that have or had a
//! thread, and `SubmitError::kind` for `?` into boxed errors.

mod common;

use std::cell::Cell;
use std::error::Error;
use std::time::Duration;

use common::{named_builder, serial, threads_named, wait_until, Watchdog, SOON};
use stealpool::{SubmitError, SubmitErrorKind, WorkerState};

#[test]
fn prestart_starts_a_thread_for_every_worker_of_the_capacity() {
    let _s = serial();
    let _w = Watchdog::new("prestart_starts_a_thread_for_every_worker_of_the_capacity", 60);
    const P: &str = "pre-";
    let pool = named_builder(P, 3).max_capacity(8).build().expect("build");
    assert_eq!(pool.stats().live_workers, 0);
    assert_eq!(pool.prestart().expect("prestart"), 3);
    assert_eq!(pool.stats().live_workers, 3);
    assert!(wait_until(SOON, || threads_named(P) == 3));
    assert_eq!(pool.prestart().expect("prestart again"), 0, "nothing missing");
    // The current capacity, as tuned.
    pool.tune(5).expect("tune");
    assert_eq!(pool.prestart().expect("prestart after grow"), 2);
    assert_eq!(pool.stats().live_workers, 5);
    // Threads it started run tasks like any other.
    pool.submit(|| ()).unwrap();
    pool.wait_idle();
    pool.shutdown();
    assert_eq!(pool.prestart().expect("prestart when closed"), 0);
    assert!(wait_until(SOON, || threads_named(P) == 0));
}

#[test]
fn prestarted_threads_expire_with_keep_alive() {
    let _s = serial();
    let _w = Watchdog::new("prestarted_threads_expire_with_keep_alive", 60);
    const P: &str = "pre-ka-";
    let pool = named_builder(P, 2)
        .keep_alive(Duration::from_millis(50))
        .build()
        .expect("build");
    assert_eq!(pool.prestart().unwrap(), 2);
    assert!(
        wait_until(SOON, || pool.stats().live_workers == 0),
        "idle prestarted threads stay: {:?}",
        pool.stats()
    );
}

#[test]
fn worker_stats_lists_only_slots_that_have_or_had_a_thread() {
    let _s = serial();
    let _w = Watchdog::new("worker_stats_lists_only_slots_that_have_or_had_a_thread", 60);
    let pool = named_builder("ws-", 2).build().expect("build"); // max_capacity 256
    assert!(pool.worker_stats().is_empty(), "{:?}", pool.worker_stats());
    pool.submit(|| ()).unwrap();
    pool.wait_idle();
    let after_one = pool.worker_stats();
    assert!(
        (1..=2).contains(&after_one.len()),
        "one task on capacity 2: {} slots listed",
        after_one.len()
    );
    pool.prestart().unwrap();
    let workers = pool.worker_stats();
    assert_eq!(workers.len(), 2);
    assert!(workers.iter().enumerate().all(|(i, w)| w.index == i));
    assert!(workers.iter().all(|w| w.state != WorkerState::NotStarted));
    assert_eq!(workers.iter().map(|w| w.tasks_run).sum::<u64>(), 1);
    // After shutdown the slots stay listed (they had a thread), as NotStarted.
    pool.shutdown();
    let workers = pool.worker_stats();
    assert_eq!(workers.len(), 2);
    assert!(workers.iter().all(|w| w.state == WorkerState::NotStarted));
}

/// A closure that is `Send` but not `Sync`.
fn not_sync_task() -> impl FnOnce() + Send + 'static {
    let cell = Cell::new(1);
    move || cell.set(2)
}

fn submit_boxed(pool: &stealpool::Pool) -> Result<(), Box<dyn Error + Send + Sync>> {
    // `?` straight on `SubmitError<F>` needs `F: Sync` for this error type
    // (E0277 otherwise); the kind needs nothing.
    pool.submit(not_sync_task()).map_err(SubmitError::into_kind)?;
    Ok(())
}

fn submit_kind(pool: &stealpool::Pool) -> Result<(), SubmitErrorKind> {
    pool.submit(not_sync_task())?; // From<SubmitError<F>> for the kind
    Ok(())
}

#[test]
fn submit_error_kind_converts_into_boxed_send_sync_errors_for_any_closure() {
    let _s = serial();
    let pool = named_builder("kind-", 1).build().expect("build");
    submit_boxed(&pool).expect("open pool");
    submit_kind(&pool).expect("open pool");
    pool.shutdown();
    let error = submit_boxed(&pool).unwrap_err();
    assert_eq!(error.to_string(), "task refused: the pool is shut down");
    assert_eq!(
        *error.downcast_ref::<SubmitErrorKind>().expect("the kind inside"),
        SubmitErrorKind::Closed
    );
    assert_eq!(submit_kind(&pool), Err(SubmitErrorKind::Closed));
    // The kind matches the variant, and keeping the closure stays possible.
    let refused = pool.submit(not_sync_task()).unwrap_err();
    assert_eq!(refused.kind(), SubmitErrorKind::Closed);
    refused.into_inner()();
    fn is_plain_error<E: Error + Copy + Send + Sync + 'static>(_: E) {}
    is_plain_error(SubmitErrorKind::Full);
    let full = stealpool::Pool::builder()
        .capacity(1)
        .queue_limit(0)
        .nonblocking(true)
        .pin_workers(false)
        .build()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    full.submit(move || {
        rx.recv_timeout(Duration::from_secs(60)).ok();
    })
    .unwrap();
    assert_eq!(full.submit(|| ()).unwrap_err().into_kind(), SubmitErrorKind::Full);
    assert_eq!(
        full.submit_timeout(|| (), Duration::from_millis(1)).unwrap_err().kind(),
        SubmitErrorKind::Timeout
    );
    tx.send(()).unwrap();
}
