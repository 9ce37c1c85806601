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

use std::time::Duration;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use stealpool::{Builder, Pool, SubmitError, SubmitErrorKind};

/// The capacity protocol: tune, reboot, the queue limit, keep-alive.
#[path = "loom/capacity.rs"]
mod capacity;
use capacity::*;

/// `loom::model` with room for the pool's thread starts: a model whose
/// workers start on demand (and chain-start each other) takes more
/// scheduling branches than loom's default allows, though none spins.
fn model<F: Fn() + Sync + Send + 'static>(f: F) {
    check(None, f);
}

/// As [`model`], with at most `bound` preemptions (or fewer, if
/// `LOOM_MAX_PREEMPTIONS` says so). For the models with two workers and a
/// third thread or a blocking task: at the suite's bound of 2 each explores
/// over half a million interleavings (72 s to over 4 minutes on 2 cores),
/// at 1 a few thousand to ~150,000 (under a second to 30 s), and bound 1
/// still catches the broken variants of the protocol they were checked
/// against (a missing fence, resume, thread start or wake-up in `tune`,
/// `suspend` or the queue limit). `STEALPOOL_LOOM_UNCAPPED=1` lifts the cap
/// for a deep run.
fn model_bounded<F: Fn() + Sync + Send + 'static>(bound: usize, f: F) {
    check(Some(bound), f);
}

fn check<F: Fn() + Sync + Send + 'static>(cap: Option<usize>, f: F) {
    let mut builder = loom::model::Builder::new();
    builder.max_branches = 20_000;
    if let Some(cap) = cap.filter(|_| std::env::var_os("STEALPOOL_LOOM_UNCAPPED").is_none()) {
        builder.preemption_bound = Some(builder.preemption_bound.map_or(cap, |bound| bound.min(cap)));
    }
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

/// The chain wake-up happens only while work is still queued, so its one
/// racy case must hand the search on: the last searcher takes a task (A)
/// while a concurrent submit (B) saw it searching and woke nobody. A blocks
/// until B has run, so B needs the other worker: the searcher's look at
/// the queues after its `end_searching` (and the fence) sees B and wakes
/// the sleeper, or the submitter saw no searcher and woke it itself. A
/// searcher that chains no wake-up strands B: a loom deadlock (checked by
/// removing the hand-on; it fails at bound 1).
#[test]
fn last_searcher_takes_one_task_while_a_submit_skips_its_wake() {
    model_bounded(1, || {
        let pool = small(2, 2).prealloc(true).build().expect("pool builds");
        // Both workers announced asleep first (a schedule loom would
        // otherwise reach only with a second preemption).
        while pool.stats().sleeping_workers < 2 {
            loom::thread::yield_now();
        }
        let ran = Arc::new(AtomicUsize::new(0));
        submit_gated_pair(&pool, &ran);
        pool.wait_idle();
        assert_eq!(ran.load(Ordering::Relaxed), 11);
        pool.shutdown();
    });
}

/// As above with the second worker not started yet (threads start on
/// demand): the last searcher's hand-on starts it for B.
#[test]
fn last_searcher_starts_a_thread_for_a_task_left_queued() {
    model_bounded(1, || {
        let pool = small(2, 2).build().expect("pool builds");
        let ran = Arc::new(AtomicUsize::new(0));
        submit_gated_pair(&pool, &ran);
        pool.wait_idle();
        assert_eq!(ran.load(Ordering::Relaxed), 11);
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

/// `join` inside the pool, whose second half is pushed without the sleep
/// protocol's fence, while the other worker goes to sleep: the wake-up may
/// be missed (the model explores stale reads of the sleep word), but both
/// halves still run and the task ends: the owner pops its second half back
/// or waits for the thief, and `wait_idle` returns.
#[test]
fn join_inside_racing_a_worker_going_to_sleep() {
    model(|| {
        let pool = pool(2);
        let sum = Arc::new(AtomicUsize::new(0));
        let total = sum.clone();
        let inner_pool = pool.clone();
        pool.submit(move || {
            let (a, b) = inner_pool.join(|| 1, || 2);
            total.fetch_add(a + b, Ordering::Relaxed);
        })
        .unwrap_or_else(|_| panic!("open pool refused a task"));
        pool.wait_idle();
        assert_eq!(sum.load(Ordering::Relaxed), 3);
        pool.shutdown();
    });
}

/// Nested joins inside the pool keep their second halves private until a
/// thief could take one, then publish the oldest: whichever worker runs
/// which half, every half runs once and the results come back.
#[test]
fn nested_joins_publish_their_oldest_half_to_an_idle_worker() {
    model_bounded(1, || {
        let pool = pool(2);
        let sum = Arc::new(AtomicUsize::new(0));
        let total = sum.clone();
        let inner_pool = pool.clone();
        pool.submit(move || {
            let p = &inner_pool;
            let ((a, b), c) = p.join(|| p.join(|| 1, || 2), || 4);
            total.fetch_add(a + b + c, Ordering::Relaxed);
        })
        .unwrap_or_else(|_| panic!("open pool refused a task"));
        pool.wait_idle();
        assert_eq!(sum.load(Ordering::Relaxed), 7);
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

/// Spawn credits (`pool/scope_credit.rs`): a scoped job that spawns two
/// more counts them with one batch added to `pending` and hands the unspent
/// part back when it ends, while the spawns run on the other worker and
/// finish first or last. The owner must wake only after all three ran
/// (a count that reached zero early would free the scope under them: loom
/// reports it as a causality violation or a wrong sum). Checked to fail:
/// handing back one credit too many ends the scope before the last spawn.
#[test]
fn a_scoped_job_spending_credits_keeps_the_scope_open_until_its_spawns_end() {
    model(|| {
        let pool = pool(2);
        let ran = AtomicUsize::new(0);
        pool.scope(|s| {
            s.spawn(|| {
                s.spawn(|| {
                    ran.fetch_add(1, Ordering::Relaxed);
                });
                s.spawn(|| {
                    ran.fetch_add(10, Ordering::Relaxed);
                });
                ran.fetch_add(100, Ordering::Relaxed);
            });
        });
        assert_eq!(ran.load(Ordering::Relaxed), 111);
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

/// A spawned task counts as completed, and its worker as not busy, before
/// its handle has the result; and `wait_idle` sees it done only after the
/// result is there (the count is made under the handle's lock, after the
/// result is marked finished).
#[test]
fn a_joined_task_is_counted_and_an_idle_pool_has_its_result() {
    model(|| {
        let pool = pool(1);
        let first = pool.spawn(|| 7).unwrap_or_else(|_| panic!("open pool refused a task"));
        assert_eq!(first.join().unwrap(), 7);
        let stats = pool.stats();
        assert_eq!((stats.completed, stats.busy_workers), (1, 0));
        let second = pool.spawn(|| 8).unwrap_or_else(|_| panic!("open pool refused a task"));
        pool.wait_idle();
        assert!(second.is_finished());
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

// ---------------------------------------------------------------------------
// Cancellation and async submitters.
// ---------------------------------------------------------------------------

/// `JoinHandle::cancel` racing the worker that takes the task: one CAS on
/// the task's start word decides, so exactly one of "ran" and "cancelled"
/// happens, the handle says which, and the pool counts it once (completed
/// or cancelled), so `wait_idle` returns and the worker exits.
#[test]
fn cancel_racing_a_workers_start() {
    model(|| {
        let pool = pool(1);
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = ran.clone();
        let handle = pool
            .spawn(move || {
                counter.fetch_add(1, Ordering::Relaxed);
                5
            })
            .unwrap_or_else(|_| panic!("open pool refused a task"));
        let cancelled = handle.cancel();
        let result = handle.join();
        pool.wait_idle();
        let stats = pool.stats();
        if cancelled {
            assert!(result.unwrap_err().is_cancelled());
            assert_eq!(ran.load(Ordering::Relaxed), 0, "a cancelled task ran");
            assert_eq!((stats.completed, stats.cancelled), (0, 1));
        } else {
            assert_eq!(result.unwrap(), 5);
            assert_eq!(ran.load(Ordering::Relaxed), 1);
            assert_eq!((stats.completed, stats.cancelled), (1, 0));
        }
        pool.shutdown();
    });
}

/// Cancellation racing `shutdown_now`'s drain. The only worker is held by a
/// gated task (started before the spawn), and the gate opens right after
/// the cancel, so the task cannot start first: the cancel always wins. Whether the drain saw the
/// task before the cancel (handed back; `Task::run` then finds it
/// cancelled), after it (dropped, not handed back), or a worker reached it
/// first (dropped there), it never runs, the handle is cancelled, and the
/// figures add up.
#[test]
fn cancel_racing_shutdown_now() {
    model_bounded(1, || {
        let pool = small(1, 1).build().expect("pool builds");
        let (gate, started) = (Gate::new(), Gate::new());
        let ran = Arc::new(AtomicUsize::new(0));
        {
            let (gate, started, ran) = (gate.clone(), started.clone(), ran.clone());
            pool.submit(move || {
                started.open();
                gate.wait();
                ran.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap_or_else(|_| panic!("open pool refused a task"));
        }
        // The only worker is held from here on.
        started.wait();
        let counter = ran.clone();
        let handle = Arc::new(
            pool.spawn(move || {
                counter.fetch_add(10, Ordering::Relaxed);
            })
            .unwrap_or_else(|_| panic!("open pool refused a task")),
        );
        let canceller = {
            let (handle, gate) = (handle.clone(), gate.clone());
            loom::thread::spawn(move || {
                let cancelled = handle.cancel();
                gate.open();
                cancelled
            })
        };
        let unrun = pool.shutdown_now();
        assert!(
            canceller.join().unwrap(),
            "nothing could start the task before the cancel"
        );
        for task in unrun {
            task.run();
        }
        let stats = pool.stats();
        assert_eq!(ran.load(Ordering::Relaxed), 1, "the cancelled task ran");
        assert!(handle.is_finished());
        // The spawn is withdrawn (handed back, then not run) or cancelled
        // (dropped by the drain or the worker): exactly one of them.
        assert_eq!(
            (stats.completed, stats.withdrawn + stats.cancelled),
            (1, 1),
            "{stats:?}"
        );
        assert_eq!(stats.completed + stats.withdrawn + stats.cancelled, stats.submitted);
    });
}

/// An async submitter (`submit_async`, polled by loom's `block_on`) on a
/// full queue: as `blocked_submitter_woken_by_room`, with the waker list in
/// place of the condvar. A lost wake-up is a loom deadlock.
#[test]
fn async_submitter_woken_by_room() {
    model(|| {
        let pool = small(1, 1).queue_limit(1).build().expect("pool builds");
        let ran = Arc::new(AtomicUsize::new(0));
        let gate = Gate::new();
        submit_adding(&pool, &ran, 1);
        submit_gated(&pool, &gate, &ran, 10);
        let counter = ran.clone();
        loom::future::block_on(pool.submit_async(move || {
            counter.fetch_add(100, Ordering::Relaxed);
        }))
        .unwrap_or_else(|_| panic!("open pool refused a task"));
        gate.open();
        pool.wait_idle();
        assert_eq!(ran.load(Ordering::Relaxed), 111);
        pool.shutdown();
    });
}

/// `shutdown_background` racing the worker taking the queued task, then the
/// last handle dropped: the drop does not wait, the task still runs, and
/// the worker exits on its own (loom fails a model whose thread never ends).
#[test]
fn shutdown_background_then_drop() {
    model(|| {
        let pool = pool(1);
        let ran = Arc::new(AtomicUsize::new(0));
        submit_adding(&pool, &ran, 1);
        pool.shutdown_background();
        assert!(pool.submit(|| ()).is_err(), "closed at once");
        drop(pool);
        // Read after loom joined every thread: see `last_handle_dropped_inside_a_task`.
        let _ = ran;
    });
}

/// A scoped handle joined while its spawn may be running, and another
/// dropped while its spawn may be running: the state word's RMWs decide who
/// owns each result (the join waits under the lock only after announcing
/// WAITING, and the spawn notifies under it), so the join returns the
/// value, nothing is lost or read twice, and the scope ends.
#[test]
fn scoped_handle_join_and_drop_race_the_spawn() {
    model(|| {
        let pool = pool(1);
        let value = pool.scope(|s| {
            let joined = s.spawn_handle(|| 3);
            let dropped = s.spawn_handle(|| 4);
            drop(dropped);
            joined.join().unwrap()
        });
        assert_eq!(value, 3);
        pool.shutdown();
    });
}

// ---------------------------------------------------------------------------
// block_in_place: lending a slot.
// ---------------------------------------------------------------------------

/// Submits task A (+1), which blocks *in place* until task B (+10) has run,
/// then B. On a capacity-1 pool only the slot A lends can run B: a lend that
/// starts or wakes nobody is a loom deadlock.
fn submit_gated_pair_in_place(pool: &Pool, ran: &Arc<AtomicUsize>) {
    let gate = Gate::new();
    let (task_gate, counter) = (gate.clone(), ran.clone());
    pool.submit(move || {
        stealpool::block_in_place(|| task_gate.wait());
        counter.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap_or_else(|_| panic!("open pool refused a task"));
    submit_opening(pool, &gate, ran, 10);
}

/// Lending a slot racing a normal wake-up: A lends the only slot while B is
/// submitted (the second worker starts for B, or B lands while A still
/// runs), and taking it back shrinks the capacity under a worker that may
/// be searching, running B or going to sleep. Both run once, `wait_idle`
/// returns, the capacity is 1 again and shutdown joins every thread.
#[test]
fn block_in_place_lends_the_slot_to_a_queued_task() {
    model_bounded(1, || {
        let pool = small(1, 2).build().expect("pool builds");
        let ran = Arc::new(AtomicUsize::new(0));
        submit_gated_pair_in_place(&pool, &ran);
        pool.wait_idle();
        assert_eq!(ran.load(Ordering::Relaxed), 11);
        assert_eq!(pool.capacity(), 1);
        pool.shutdown();
    });
}

/// Lending and taking back racing `tune`: another thread tunes 1 -> 2
/// while A blocks in place and lends its slot. Whichever order the lock
/// takes them in, B runs, and once A is back the capacity is the tuned 2
/// (the lent slot is not added on top of the ceiling, nor lost).
#[test]
fn block_in_place_racing_tune() {
    model_bounded(1, || {
        let pool = small(1, 2).build().expect("pool builds");
        let ran = Arc::new(AtomicUsize::new(0));
        let tuner = {
            let pool = pool.clone();
            loom::thread::spawn(move || pool.tune(2).expect("valid capacity"))
        };
        submit_gated_pair_in_place(&pool, &ran);
        tuner.join().unwrap();
        pool.wait_idle();
        assert_eq!(ran.load(Ordering::Relaxed), 11);
        assert_eq!(pool.capacity(), 2);
        pool.shutdown();
    });
}

/// Lending and taking back racing shutdown: the pool closes while A blocks
/// in place with B queued. Both still run (accepted work is never lost,
/// a lent slot on a closed pool still drains it) and shutdown returns.
#[test]
fn block_in_place_racing_shutdown() {
    model_bounded(1, || {
        let pool = small(1, 2).build().expect("pool builds");
        let ran = Arc::new(AtomicUsize::new(0));
        submit_gated_pair_in_place(&pool, &ran);
        pool.shutdown();
        assert_eq!(ran.load(Ordering::Relaxed), 11);
    });
}

/// A broadcast racing the only worker going to sleep: the worker either
/// sees its share in the final check before it parks, or the broadcaster
/// sees it asleep and wakes it (`scheduler/broadcast.rs`, B2). Either way
/// the share runs once and the broadcast returns.
#[test]
fn broadcast_racing_the_worker_going_to_sleep() {
    model(|| {
        let pool = pool(1);
        pool.prestart().expect("a loom thread starts");
        let seen = pool.broadcast(|ctx| ctx.index()).expect("open pool");
        assert_eq!(seen, [0]);
        pool.shutdown();
    });
}

/// A broadcast racing a shutdown: every target runs its share (`Ok`) or the
/// share of a thread that left is abandoned (`Closed`); never a hang (B5).
#[test]
fn broadcast_racing_shutdown() {
    model(|| {
        let pool = pool(1);
        let closer = {
            let pool = pool.clone();
            loom::thread::spawn(move || pool.shutdown())
        };
        match pool.broadcast(|ctx| ctx.index()) {
            Ok(seen) => assert_eq!(seen, [0]),
            Err(error) => assert_eq!(error, SubmitErrorKind::Closed),
        }
        closer.join().unwrap();
    });
}

/// A broadcast racing a `tune` that shrinks the capacity below one of its
/// targets: that worker runs its share before it parks above the capacity
/// (or is no target at all, if the shrink came first); never a hang.
#[test]
fn broadcast_racing_tune_shrink() {
    model_bounded(1, || {
        let pool = pool(2);
        pool.prestart().expect("loom threads start");
        let tuner = {
            let pool = pool.clone();
            loom::thread::spawn(move || pool.tune(1).expect("valid"))
        };
        let seen = pool.broadcast(|ctx| ctx.index()).expect("open pool");
        assert!(seen == [0, 1] || seen == [0], "{seen:?}");
        tuner.join().unwrap();
        pool.shutdown();
    });
}
