//! Waiting across pools: a worker of pool A that waits for work it handed
//! to pool B (`install`, `join`, `scope`, `JoinHandle::join`) keeps running
//! A's queued work meanwhile, so cycles between pools (A waits for B, which
//! waits for A) finish instead of hanging.
//!
//! Each case runs on a helper thread and the test waits for it with a
//! 20 s bound: a hang (what these cycles did) fails the test instead of
//! the CI job. The cycles finish in milliseconds.

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{named_builder, serial};
use stealpool::Pool;

const BOUND: Duration = Duration::from_secs(20);

/// Runs `body` on a helper thread; fails the test if it takes over [`BOUND`].
fn finishes<T: Send + 'static>(what: &str, body: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(body());
    });
    rx.recv_timeout(BOUND)
        .unwrap_or_else(|_| panic!("{what}: still waiting after {BOUND:?} (the pools wait for each other)"))
}

fn pools(capacity: usize) -> (Pool, Pool) {
    let a = named_builder("cross-a", capacity).build().expect("build a");
    let b = named_builder("cross-b", capacity).build().expect("build b");
    (a, b)
}

#[test]
fn nested_install_across_two_one_worker_pools_returns() {
    let _s = serial();
    let (a, b) = pools(1);
    let value = finishes("a.install(b.install(a.install))", move || {
        let value = a.install(|| b.install(|| a.install(|| 7)));
        (value, a, b)
    })
    .0;
    assert_eq!(value, 7);
}

#[test]
fn nested_install_cycles_from_many_callers_all_finish() {
    let _s = serial();
    let (a, b) = pools(2);
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let finished = finishes("4 callers, both directions", move || {
        let callers: Vec<_> = (0..4u64)
            .map(|i| {
                let (a, b) = (a.clone(), b.clone());
                thread::spawn(move || {
                    let (first, second) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
                    (0..20u64)
                        .map(|j| first.install(|| second.install(|| first.install(|| i * 100 + j))))
                        .sum::<u64>()
                })
            })
            .collect();
        callers
            .into_iter()
            .enumerate()
            .map(|(i, caller)| (i, caller.join().expect("caller")))
            .collect::<Vec<_>>()
    });
    assert_eq!(finished.len(), 4);
    for (i, sum) in finished {
        assert_eq!(sum, (0..20u64).map(|j| i as u64 * 100 + j).sum::<u64>());
    }
}

#[test]
fn join_and_scope_across_pools_keep_the_waiting_worker_running_its_own_pool() {
    let _s = serial();
    let (a, b) = pools(1);
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let (a2, b2) = (a.clone(), b.clone());
    let (joined, scoped) = finishes("join and scope across pools", move || {
        // `Pool::join` from A's only worker into B, whose halves wait for A.
        let joined = a2.install(|| {
            let (x, y) = b2.join(|| a2.install(|| 1), || a2.install(|| 2));
            x + y
        });
        // `Pool::scope` from A's only worker into B, whose spawns wait for A.
        let mut cells = [0u32; 4];
        a2.install(|| {
            b2.scope(|s| {
                for (i, cell) in cells.iter_mut().enumerate() {
                    let a = &a2;
                    s.spawn(move || *cell = a.install(|| i as u32 + 1));
                }
            })
        });
        (joined, cells)
    });
    assert_eq!(joined, 3);
    assert_eq!(scoped, [1, 2, 3, 4]);
    drop((a, b));
}

#[test]
fn join_handle_across_pools_keeps_the_waiting_worker_running_its_own_pool() {
    let _s = serial();
    let (a, b) = pools(1);
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let (a2, b2) = (a.clone(), b.clone());
    let value = finishes("JoinHandle::join across pools", move || {
        let a3 = a2.clone();
        // A's only worker joins a task of B that waits for a task of A.
        let joined = a2.install(move || {
            let inner = a3.clone();
            let handle = b2
                .spawn(move || inner.spawn(|| 40).expect("spawn on a").join().expect("inner"))
                .expect("spawn on b");
            handle.join().expect("outer")
        });
        // And with a deadline.
        let a4 = a2.clone();
        let b3 = b.clone();
        let timed = a2.install(move || {
            let inner = a4.clone();
            let handle = b3.spawn(move || inner.install(|| 2)).expect("spawn on b");
            handle
                .join_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("timed out"))
                .expect("timed")
        });
        joined + timed
    });
    assert_eq!(value, 42);
    drop(a);
}

#[test]
fn scoped_handle_join_across_pools_keeps_the_waiting_worker_running_its_own_pool() {
    let _s = serial();
    let (a, b) = pools(1);
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let (a2, b2) = (a.clone(), b.clone());
    let value = finishes("ScopedJoinHandle::join across pools", move || {
        // A's only worker runs B's scope body and joins a spawn of B that
        // waits for a task of A.
        a2.install(|| {
            b2.scope(|s| {
                let a = &a2;
                let handle = s.spawn_handle(move || a.install(|| 5));
                handle.join().expect("no panic")
            })
        })
    });
    assert_eq!(value, 5);
    drop((a, b));
}

#[test]
fn task_set_join_next_across_pools_keeps_the_waiting_worker_running_its_own_pool() {
    let _s = serial();
    let (a, b) = pools(1);
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let (a2, b2) = (a.clone(), b.clone());
    let value = finishes("TaskSet::join_next across pools", move || {
        let a3 = a2.clone();
        // A's only worker waits on a set of B's tasks that wait for A.
        a2.install(move || {
            let mut set = stealpool::TaskSet::new(&b2);
            for i in 0..3u32 {
                let a = a3.clone();
                set.spawn(move || a.install(|| i + 1)).expect("spawn on b");
            }
            let mut sum = 0;
            while let Some(result) = set.join_next() {
                sum += result.expect("no panic");
            }
            sum
        })
    });
    assert_eq!(value, 6);
    drop((a, b));
}

/// The only worker of `a` waits inside `b.install` for a gate that opens
/// only after `a.broadcast` returned: the waiting worker runs its share
/// while it waits on the other pool, or the broadcast never returns.
#[test]
fn a_worker_waiting_on_another_pool_runs_its_broadcast_share() {
    let _s = serial();
    let (a, b) = pools(1);
    let a = std::sync::Arc::new(a);
    let shares = finishes("a.broadcast while a's worker waits in b.install", move || {
        let (entered_tx, entered_rx) = mpsc::channel();
        let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let waiter = {
            let (a, open) = (a.clone(), open.clone());
            thread::spawn(move || {
                a.install(|| {
                    b.install(|| {
                        entered_tx.send(()).unwrap();
                        while !open.load(std::sync::atomic::Ordering::Acquire) {
                            thread::yield_now();
                        }
                    })
                })
            })
        };
        entered_rx.recv().unwrap();
        let shares = a.broadcast(|ctx| ctx.index()).expect("open pool");
        open.store(true, std::sync::atomic::Ordering::Release);
        waiter.join().unwrap();
        shares
    });
    assert_eq!(shares, vec![0]);
}
