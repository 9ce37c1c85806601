//! `Pool::scope` and `Pool::join`: borrowing stack data, nesting, panic
//! propagation, recursion, and use from inside pool tasks.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use stealpool::Pool;

mod common;
use common::*;

fn pool(capacity: usize) -> Pool {
    Pool::builder()
        .capacity(capacity)
        .pin_workers(false)
        .build()
        .expect("build")
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> Option<String> {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
}

fn fib_seq(n: u32) -> u64 {
    if n < 2 {
        n as u64
    } else {
        fib_seq(n - 1) + fib_seq(n - 2)
    }
}

/// The `fib` arguments the tests use: smaller under Miri (an interpreter),
/// still deep enough that joins nest, steal and wait.
const FIB_BIG: u32 = if cfg!(miri) { 8 } else { 20 };
const FIB_MID: u32 = if cfg!(miri) { 7 } else { 15 };
const FIB_SMALL: u32 = if cfg!(miri) { 6 } else { 12 };

fn fib_par(pool: &Pool, n: u32) -> u64 {
    if n < 2 {
        return n as u64;
    }
    let (a, b) = pool.join(|| fib_par(pool, n - 1), || fib_par(pool, n - 2));
    a + b
}

#[test]
fn scope_borrows_stack_data() {
    let _w = Watchdog::new("scope_borrows_stack_data", 60);
    let pool = pool(2);
    let data: Vec<usize> = (0..100).collect();
    let sum = AtomicUsize::new(0);
    let hits: Vec<AtomicUsize> = (0..100).map(|_| AtomicUsize::new(0)).collect();
    pool.scope(|s| {
        for i in 0..100 {
            let (data, sum, hits) = (&data, &sum, &hits);
            s.spawn(move || {
                sum.fetch_add(data[i] * 3, Ordering::SeqCst);
                hits[i].fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    // All spawns must have completed by the time scope() returns.
    assert_eq!(sum.load(Ordering::SeqCst), 3 * (0..100).sum::<usize>());
    for (i, h) in hits.iter().enumerate() {
        assert_eq!(
            h.load(Ordering::SeqCst),
            1,
            "spawn {i} ran {} times",
            h.load(Ordering::SeqCst)
        );
    }
}

#[test]
fn scope_mutably_borrows_disjoint_chunks() {
    let _w = Watchdog::new("scope_mutably_borrows_disjoint_chunks", 60);
    let pool = pool(2);
    let mut data = vec![0u64; if cfg!(miri) { 1_000 } else { 10_000 }];
    pool.scope(|s| {
        for (ci, chunk) in data.chunks_mut(100).enumerate() {
            s.spawn(move || {
                for (j, x) in chunk.iter_mut().enumerate() {
                    *x = ((ci * 100 + j) as u64) * 2 + 1;
                }
            });
        }
    });
    for (i, x) in data.iter().enumerate() {
        assert_eq!(*x, i as u64 * 2 + 1, "element {i}");
    }
}

#[test]
fn scope_body_runs_on_caller_thread() {
    let _w = Watchdog::new("scope_body_runs_on_caller_thread", 60);
    let pool = pool(2);
    let me = thread::current().id();
    let mut body_thread = None;
    pool.scope(|_s| {
        body_thread = Some(thread::current().id());
    });
    assert_eq!(body_thread, Some(me));
    // An empty scope returns promptly and the pool stays usable.
    pool.scope(|_s| {});
    let n = AtomicUsize::new(0);
    pool.scope(|s| {
        s.spawn(|| {
            n.fetch_add(1, Ordering::SeqCst);
        });
    });
    assert_eq!(n.load(Ordering::SeqCst), 1);
}

#[test]
fn nested_spawns_from_inside_scope_spawns() {
    let _w = Watchdog::new("nested_spawns_from_inside_scope_spawns", 60);
    let pool = pool(2);
    let outer = AtomicUsize::new(0);
    let inner = AtomicUsize::new(0);
    let innermost = AtomicUsize::new(0);
    let local = vec![1usize; 10];
    const OUTER: usize = if cfg!(miri) { 6 } else { 100 };
    pool.scope(|s| {
        for _ in 0..OUTER {
            let (outer, inner, innermost, local) = (&outer, &inner, &innermost, &local);
            s.spawn(move || {
                outer.fetch_add(1, Ordering::SeqCst);
                for x in local.iter() {
                    s.spawn(move || {
                        inner.fetch_add(*x, Ordering::SeqCst);
                        s.spawn(move || {
                            innermost.fetch_add(1, Ordering::SeqCst);
                        });
                    });
                }
            });
        }
    });
    assert_eq!(outer.load(Ordering::SeqCst), OUTER);
    assert_eq!(inner.load(Ordering::SeqCst), OUTER * 10);
    assert_eq!(innermost.load(Ordering::SeqCst), OUTER * 10);
}

#[test]
fn scope_reraises_spawn_panic_after_all_spawns_finish() {
    let _w = Watchdog::new("scope_reraises_spawn_panic_after_all_spawns_finish", 60);
    let pool = pool(2);
    let counter = AtomicUsize::new(0);
    let r = catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            let counter = &counter;
            for i in 0..100 {
                s.spawn(move || {
                    if i % 10 == 0 {
                        // Some spawns are slow, so they are still running
                        // when the panicking one has already finished.
                        thread::sleep(Duration::from_millis(20));
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                });
            }
            s.spawn(|| panic!("scope boom"));
            for _ in 0..100 {
                s.spawn(move || {
                    counter.fetch_add(1, Ordering::SeqCst);
                });
            }
        })
    }));
    let payload = r.expect_err("scope must re-raise the panic of a spawned closure");
    assert_eq!(panic_message(&*payload).as_deref(), Some("scope boom"));
    // Read immediately: every other spawn must have run before scope returned.
    assert_eq!(counter.load(Ordering::SeqCst), 200);

    // The pool is still fully usable afterwards.
    let n = AtomicUsize::new(0);
    pool.scope(|s| {
        for _ in 0..10 {
            s.spawn(|| {
                n.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    assert_eq!(n.load(Ordering::SeqCst), 10);
}

#[test]
fn scope_body_panic_waits_for_spawns() {
    let _w = Watchdog::new("scope_body_panic_waits_for_spawns", 60);
    let pool = pool(2);
    let counter = AtomicUsize::new(0);
    let r = catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            for _ in 0..20 {
                s.spawn(|| {
                    thread::sleep(Duration::from_millis(5));
                    counter.fetch_add(1, Ordering::SeqCst);
                });
            }
            panic!("body boom");
        })
    }));
    let payload = r.expect_err("a panic in the scope body must propagate");
    assert_eq!(panic_message(&*payload).as_deref(), Some("body boom"));
    // The spawns borrow `counter`; they must all be done before unwinding out.
    assert_eq!(counter.load(Ordering::SeqCst), 20);
}

#[test]
fn concurrent_scopes_from_many_threads() {
    let _w = Watchdog::new("concurrent_scopes_from_many_threads", 60);
    let pool = pool(2);
    thread::scope(|ts| {
        for t in 0..4usize {
            let pool = &pool;
            ts.spawn(move || {
                for round in 0..if cfg!(miri) { 2 } else { 20 } {
                    let mut out = vec![0usize; if cfg!(miri) { 8 } else { 50 }];
                    pool.scope(|s| {
                        for (i, o) in out.iter_mut().enumerate() {
                            s.spawn(move || *o = t * 1_000_000 + round * 1000 + i);
                        }
                    });
                    for (i, o) in out.iter().enumerate() {
                        assert_eq!(*o, t * 1_000_000 + round * 1000 + i);
                    }
                }
            });
        }
    });
}

#[test]
fn join_fib_from_outside_matches_sequential() {
    let _w = Watchdog::new("join_fib_from_outside_matches_sequential", 60);
    let pool = pool(2);
    assert_eq!(fib_par(&pool, FIB_BIG), fib_seq(FIB_BIG));
    assert_eq!(fib_seq(8), 21);
}

#[test]
fn join_fib_from_inside_tasks_matches_sequential() {
    let _w = Watchdog::new("join_fib_from_inside_tasks_matches_sequential", 60);
    let pool = pool(2);
    let handles: Vec<_> = (FIB_MID..=FIB_BIG)
        .map(|n| {
            pool.spawn(move || {
                let p = Pool::current().expect("inside a worker");
                (n, fib_par(&p, n))
            })
            .expect("spawn")
        })
        .collect();
    for h in handles {
        let (n, v) = join_timeout(h).expect("fib task panicked");
        assert_eq!(v, fib_seq(n), "fib({n})");
    }
}

#[test]
fn join_returns_both_results_and_borrows() {
    let _w = Watchdog::new("join_returns_both_results_and_borrows", 60);
    let pool = pool(2);
    let v: Vec<u64> = (1..=1000).collect();
    let (a, b) = pool.join(|| v[..500].iter().sum::<u64>(), || v[500..].iter().sum::<u64>());
    assert_eq!(a + b, 500_500);
    assert_eq!(a, 125_250);
    let (s, x) = pool.join(|| String::from("left"), || 7u8);
    assert_eq!((s.as_str(), x), ("left", 7));
    // Mutable borrows of disjoint halves.
    let mut w = vec![0u32; 100];
    let (l, r) = w.split_at_mut(50);
    pool.join(|| l.fill(1), || r.fill(2));
    assert_eq!(w.iter().sum::<u32>(), 50 + 100);
}

#[test]
fn join_reraises_left_panic() {
    let _w = Watchdog::new("join_reraises_left_panic", 60);
    let pool = pool(2);
    let started = AtomicBool::new(false);
    let finished = AtomicBool::new(false);
    let r = catch_unwind(AssertUnwindSafe(|| {
        pool.join(
            || -> u32 { panic!("left boom") },
            || {
                started.store(true, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(20));
                finished.store(true, Ordering::SeqCst);
                2u32
            },
        )
    }));
    let payload = r.expect_err("join must re-raise the left panic");
    assert_eq!(panic_message(&*payload).as_deref(), Some("left boom"));
    // The right closure borrows locals: if it started, it must have finished
    // before join unwound (otherwise it would outlive its borrows).
    assert!(
        !started.load(Ordering::SeqCst) || finished.load(Ordering::SeqCst),
        "join re-raised while the other closure was still running"
    );
    assert_eq!(pool.join(|| 1, || 2), (1, 2));
}

#[test]
fn join_reraises_right_panic() {
    let _w = Watchdog::new("join_reraises_right_panic", 60);
    let pool = pool(2);
    let started = AtomicBool::new(false);
    let finished = AtomicBool::new(false);
    let r = catch_unwind(AssertUnwindSafe(|| {
        pool.join(
            || {
                started.store(true, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(20));
                finished.store(true, Ordering::SeqCst);
                1u32
            },
            || -> u32 { panic!("right boom") },
        )
    }));
    let payload = r.expect_err("join must re-raise the right panic");
    assert_eq!(panic_message(&*payload).as_deref(), Some("right boom"));
    assert!(
        !started.load(Ordering::SeqCst) || finished.load(Ordering::SeqCst),
        "join re-raised while the other closure was still running"
    );
    assert_eq!(pool.join(|| 1, || 2), (1, 2));
}

#[test]
fn a_panicking_left_half_inside_the_pool_still_runs_a_private_right_half() {
    let _w = Watchdog::new(
        "a_panicking_left_half_inside_the_pool_still_runs_a_private_right_half",
        60,
    );
    // One worker: the outer join publishes its right half (the deque is
    // empty), the inner one keeps its right half private (the deque holds
    // the outer half, nobody is idle). The inner left half panics: the
    // private right half must still run, before the panic leaves the join.
    let pool = pool(1);
    let (tx, rx) = mpsc::channel();
    pool.submit(move || {
        let p = Pool::current().expect("inside a worker");
        let right_ran = AtomicBool::new(false);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            p.join(
                || {
                    p.join(
                        || -> u8 { panic!("inner left") },
                        || right_ran.store(true, Ordering::SeqCst),
                    )
                },
                || 7u8,
            )
        }));
        let message = caught.err().and_then(|payload| panic_message(&*payload));
        tx.send((message, right_ran.load(Ordering::SeqCst))).expect("send");
    })
    .unwrap_or_else(|_| panic!("open pool refused a task"));
    let (message, right_ran) = rx.recv_timeout(Duration::from_secs(30)).expect("the task ran");
    assert_eq!(message.as_deref(), Some("inner left"));
    assert!(right_ran, "the right half of a panicking join never ran");
}

#[test]
fn join_both_panic_reraises_one_of_them() {
    let _w = Watchdog::new("join_both_panic_reraises_one_of_them", 60);
    let pool = pool(2);
    for _ in 0..20 {
        let r = catch_unwind(AssertUnwindSafe(|| {
            pool.join(|| -> u8 { panic!("L") }, || -> u8 { panic!("R") })
        }));
        let payload = r.expect_err("must re-raise");
        let msg = panic_message(&*payload);
        assert!(
            matches!(msg.as_deref(), Some("L") | Some("R")),
            "unexpected payload {msg:?}"
        );
    }
    assert_eq!(pool.join(|| 3, || 4), (3, 4));
}

#[test]
fn join_and_scope_inside_submitted_task() {
    let _w = Watchdog::new("join_and_scope_inside_submitted_task", 60);
    let pool = pool(2);
    let (tx, rx) = mpsc::channel();
    pool.submit(move || {
        let p = Pool::current().expect("inside a worker");
        let local: Vec<u64> = (0..100).collect();
        let total = AtomicUsize::new(0);
        p.scope(|s| {
            for x in &local {
                let total = &total;
                s.spawn(move || {
                    total.fetch_add(*x as usize, Ordering::SeqCst);
                });
            }
        });
        let (a, b) = p.join(|| local.iter().sum::<u64>(), || fib_par(&p, FIB_MID));
        tx.send((total.load(Ordering::SeqCst), a, b)).unwrap();
    })
    .expect("submit");
    let (total, a, b) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("task did not report within 30 s");
    assert_eq!(total, 4950);
    assert_eq!(a, 4950);
    assert_eq!(b, fib_seq(FIB_MID));
}

#[test]
fn scope_and_join_inside_the_only_worker_do_not_deadlock() {
    // With capacity 1 the waiting worker is the only one: scope/join must
    // make progress by running the work themselves (or inline).
    let _w = Watchdog::new("scope_and_join_inside_the_only_worker_do_not_deadlock", 60);
    let pool = pool(1);
    let h = pool
        .spawn(|| {
            let p = Pool::current().expect("inside a worker");
            let n = AtomicUsize::new(0);
            p.scope(|s| {
                for _ in 0..50 {
                    s.spawn(|| {
                        n.fetch_add(1, Ordering::SeqCst);
                    });
                }
            });
            let f = fib_par(&p, FIB_MID);
            (n.load(Ordering::SeqCst), f)
        })
        .expect("spawn");
    let (n, f) = join_timeout(h).expect("task panicked");
    assert_eq!(n, 50);
    assert_eq!(f, fib_seq(FIB_MID));
}

#[test]
fn join_inside_scope_and_scope_inside_join() {
    let _w = Watchdog::new("join_inside_scope_and_scope_inside_join", 60);
    let pool = pool(2);
    let acc = AtomicUsize::new(0);
    pool.scope(|s| {
        for i in 0..10usize {
            let (pool, acc) = (&pool, &acc);
            s.spawn(move || {
                let (a, b) = pool.join(|| i, || i * 10);
                acc.fetch_add(a + b, Ordering::SeqCst);
            });
        }
    });
    assert_eq!(acc.load(Ordering::SeqCst), 11 * 45);
    let (x, y) = pool.join(
        || {
            let c = AtomicUsize::new(0);
            pool.scope(|s| {
                for _ in 0..10 {
                    s.spawn(|| {
                        c.fetch_add(1, Ordering::SeqCst);
                    });
                }
            });
            c.into_inner()
        },
        || fib_par(&pool, FIB_SMALL),
    );
    assert_eq!((x, y), (10, fib_seq(FIB_SMALL)));
}
