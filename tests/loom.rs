//! loom models of the scheduler protocol.
//!
//! Run with (as `.ci/run` does):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test loom
//! ```
//!
//! Each model drives the real `Pool` (its worker threads are loom threads,
//! its atomics, locks and parkers loom's, its deques a loom-visible
//! stand-in), so every interleaving of the protocol within the preemption
//! bound is explored. A lost wake-up shows up as loom's "deadlock" failure:
//! every thread blocked, one of them forever.
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use stealpool::{Pool, SubmitError};

/// `loom::model` with room for the pool's thread starts: a model whose
/// workers start on demand (and chain-start each other) takes more
/// scheduling branches than loom's default allows, though none spins.
fn model<F: Fn() + Sync + Send + 'static>(f: F) {
    let mut builder = loom::model::Builder::new();
    builder.max_branches = 20_000;
    builder.check(f);
}

fn pool(capacity: usize) -> Pool {
    Pool::builder()
        .capacity(capacity)
        // As many slots as workers: every slot is loom state to explore.
        .max_capacity(capacity)
        .pin_workers(false)
        .build()
        .expect("pool builds")
}

/// A submit racing the only worker going to sleep: the task runs and
/// `wait_idle` returns (no lost wake-up on either side).
#[test]
fn submit_racing_worker_going_to_sleep() {
    model(|| {
        let pool = pool(1);
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = ran.clone();
        pool.submit(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap_or_else(|_| panic!("open pool refused a task"));
        pool.wait_idle();
        assert_eq!(ran.load(Ordering::Relaxed), 1);
        pool.shutdown();
    });
}

/// Two submits while two workers go to sleep: both tasks run, nobody is
/// stranded asleep while work waits (and one submit wakes at most one).
#[test]
fn two_submits_two_sleepers() {
    model(|| {
        let pool = pool(2);
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..2 {
            let counter = ran.clone();
            pool.submit(move || {
                counter.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap_or_else(|_| panic!("open pool refused a task"));
        }
        pool.wait_idle();
        assert_eq!(ran.load(Ordering::Relaxed), 2);
        pool.shutdown();
    });
}

/// Shutdown racing a submit: an accepted task runs before `shutdown`
/// returns; a refused one comes back to its caller.
#[test]
fn shutdown_racing_submit() {
    model(|| {
        let pool = pool(1);
        let ran = Arc::new(AtomicUsize::new(0));
        let submitter = {
            let pool = pool.clone();
            let ran = ran.clone();
            loom::thread::spawn(move || {
                let result = pool.submit(move || {
                    ran.fetch_add(1, Ordering::Relaxed);
                });
                match result {
                    Ok(()) => true,
                    Err(SubmitError::Closed(task)) => {
                        drop(task);
                        false
                    }
                    Err(_) => panic!("unexpected refusal"),
                }
            })
        };
        pool.shutdown();
        let accepted = submitter.join().unwrap();
        assert_eq!(ran.load(Ordering::Relaxed), usize::from(accepted));
    });
}

/// A task submitted from inside a task (onto the worker's own deque) is
/// taken by the other, sleeping worker or by its owner: it runs either way.
#[test]
fn nested_submit_wakes_or_runs_locally() {
    model(|| {
        let pool = pool(2);
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = ran.clone();
        let inner_pool = pool.clone();
        pool.submit(move || {
            inner_pool
                .submit(move || {
                    counter.fetch_add(1, Ordering::Relaxed);
                })
                .unwrap_or_else(|_| panic!("open pool refused a nested task"));
        })
        .unwrap_or_else(|_| panic!("open pool refused a task"));
        pool.wait_idle();
        assert_eq!(ran.load(Ordering::Relaxed), 1);
        pool.shutdown();
    });
}

/// `join` from outside the pool: both halves run, results come back.
#[test]
fn join_from_outside() {
    model(|| {
        let pool = pool(2);
        let (a, b) = pool.join(|| 1, || 2);
        assert_eq!((a, b), (1, 2));
        pool.shutdown();
    });
}

/// A scope spawn and the owner's latch: the owner wakes when the spawn ends.
#[test]
fn scope_waits_for_its_spawn() {
    model(|| {
        let pool = pool(1);
        let ran = AtomicUsize::new(0);
        pool.scope(|s| {
            s.spawn(|| {
                ran.fetch_add(1, Ordering::Relaxed);
            });
        });
        assert_eq!(ran.load(Ordering::Relaxed), 1);
        pool.shutdown();
    });
}

/// A spawned task's result reaches a blocked `join`.
#[test]
fn join_handle_wakes_joiner() {
    model(|| {
        let pool = pool(1);
        let handle = pool.spawn(|| 7).unwrap_or_else(|_| panic!("open pool refused a task"));
        assert_eq!(handle.join().unwrap(), 7);
        pool.shutdown();
    });
}

/// The last handle dropped inside a task: no deadlock, no panic, and the
/// workers exit on their own (loom fails the model if a thread never ends).
#[test]
fn last_handle_dropped_inside_a_task() {
    model(|| {
        let pool = pool(1);
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = ran.clone();
        let inner = pool.clone();
        pool.submit(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            drop(inner);
        })
        .unwrap_or_else(|_| panic!("open pool refused a task"));
        drop(pool);
        // Whichever handle went last, the task ran before the pool ended.
        // (If the task's handle was last, the worker is detached; loom
        // still requires it to terminate.)
        let _ = ran;
    });
}
