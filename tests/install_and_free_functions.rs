//! `Pool::install` and the free functions `join`, `scope`, `spawn`: the pool
//! running the caller, or the global pool outside any pool.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::thread;

use common::{named_builder, serial, Watchdog};
use stealpool::Pool;

fn thread_name() -> String {
    thread::current().name().unwrap_or("").to_owned()
}

#[test]
fn install_runs_on_a_worker_and_returns_the_result_borrowing_the_stack() {
    let _s = serial();
    let _w = Watchdog::new(
        "install_runs_on_a_worker_and_returns_the_result_borrowing_the_stack",
        60,
    );
    let pool = named_builder("inst-", 2).build().expect("build");
    let data: Vec<u64> = (1..=1000).collect();
    let (sum, name, current) = pool.install(|| (data.iter().sum::<u64>(), thread_name(), Pool::current().is_some()));
    assert_eq!(sum, 500_500);
    assert!(name.starts_with("inst-"), "ran on {name:?}");
    assert!(current);
    // Inside the same pool: inline, on the calling worker.
    let (outer, inner) = pool.install(|| (thread_name(), pool.install(thread_name)));
    assert_eq!(outer, inner);
    // A panic comes back to the caller.
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.install(|| panic!("boom"))));
    assert!(caught.is_err());
    // On a shut-down pool: on the calling thread.
    pool.shutdown();
    assert_eq!(pool.install(thread_name), thread_name());
}

#[test]
fn free_functions_use_the_pool_running_the_caller() {
    let _s = serial();
    let _w = Watchdog::new("free_functions_use_the_pool_running_the_caller", 60);
    let pool = named_builder("free-", 2).build().expect("build");
    let names = pool.install(|| {
        let (a, b) = stealpool::join(thread_name, thread_name);
        let spawned = stealpool::spawn(thread_name).expect("spawn").join().expect("join");
        let mut scoped = String::new();
        stealpool::scope(|s| {
            s.spawn(|| scoped = thread_name());
        });
        [a, b, spawned, scoped]
    });
    for name in names {
        assert!(name.starts_with("free-"), "ran on {name:?}, not on the caller's pool");
    }
    // Work through the free functions is counted by that pool.
    assert!(pool.stats().submitted >= 2, "{:?}", pool.stats());
}

#[test]
fn free_functions_outside_any_pool_use_the_global_pool() {
    let _s = serial();
    let _w = Watchdog::new("free_functions_outside_any_pool_use_the_global_pool", 60);
    let global = stealpool::spawn(thread_name).expect("spawn").join().expect("join");
    assert!(global.starts_with("stealpool-global-"), "{global:?}");
    let (a, b) = stealpool::join(thread_name, thread_name);
    assert!(
        a.starts_with("stealpool-global-") || b.starts_with("stealpool-global-"),
        "{a:?} {b:?}"
    );
    let hits = AtomicUsize::new(0);
    stealpool::scope(|s| {
        for _ in 0..10 {
            s.spawn(|| {
                if thread_name().starts_with("stealpool-global-") {
                    hits.fetch_add(1, SeqCst);
                }
            });
        }
    });
    assert_eq!(hits.load(SeqCst), 10);
    // The same pool every time, with the default capacity.
    assert!(std::ptr::eq(stealpool::global_pool(), stealpool::global_pool()));
    assert!(stealpool::global_pool().capacity() >= 1);
    // A recursive join from outside runs on the global pool all the way down.
    fn fib(n: u64) -> u64 {
        if n < 2 {
            return n;
        }
        let (a, b) = stealpool::join(|| fib(n - 1), || fib(n - 2));
        a + b
    }
    assert_eq!(fib(20), 6765);
}
