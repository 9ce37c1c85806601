//! An idle pool must not burn CPU. This file holds a single test so that no
//! other test of this binary runs concurrently and disturbs the measurement.

use std::fs;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use stealpool::Pool;

mod common;
use common::*;

/// utime + stime of the whole process, in clock ticks (fields 14 and 15 of
/// /proc/self/stat; parsed after the last ')' because the comm field may
/// contain spaces, which makes them the 12th and 13th fields from there).
fn process_cpu_ticks() -> u64 {
    let stat = fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    let rest = &stat[stat.rfind(')').expect("malformed /proc/self/stat") + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields[11].parse().expect("utime");
    let stime: u64 = fields[12].parse().expect("stime");
    utime + stime
}

/// Nanoseconds on CPU of the threads whose name starts with `prefix`, from
/// /proc/self/task/*/schedstat (first field). None if schedstat is missing.
fn named_threads_cpu_ns(prefix: &str) -> Option<u64> {
    let mut total = 0;
    let mut found = 0;
    for e in fs::read_dir("/proc/self/task").ok()?.filter_map(Result::ok) {
        let comm = fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if !comm.trim_end().starts_with(prefix) {
            continue;
        }
        let ss = fs::read_to_string(e.path().join("schedstat")).ok()?;
        total += ss.split_whitespace().next()?.parse::<u64>().ok()?;
        found += 1;
    }
    (found > 0).then_some(total)
}

fn measure(pool_desc: &str, prefix: &str) {
    let ns0 = named_threads_cpu_ns(prefix);
    let t0 = process_cpu_ticks();
    thread::sleep(Duration::from_secs(1));
    let t1 = process_cpu_ticks();
    let ns1 = named_threads_cpu_ns(prefix);

    // Ticks are 1/100 s (USER_HZ = 100 on Linux), so 1 % of one second is
    // one tick. Tick-based accounting can attribute one tick to us just by
    // rounding (the harness and this thread also wake up briefly), hence
    // the bound of 2 ticks: a pool spinning even 3 % of one core fails.
    let delta = t1 - t0;
    assert!(
        delta <= 2,
        "{pool_desc}: process used {delta} clock ticks of CPU during 1 s of idling (> 2 %)"
    );

    // Where schedstat exists it is exact (ns): the workers themselves must
    // stay under 1 % of one core (10 ms) over the second.
    if let (Some(a), Some(b)) = (ns0, ns1) {
        let used = b.saturating_sub(a);
        assert!(
            used < 10_000_000,
            "{pool_desc}: idle worker threads ran for {:.3} ms during 1 s (>= 1 %)",
            used as f64 / 1e6
        );
    }
}

#[test]
fn idle_pool_uses_under_one_percent_cpu() {
    let _w = Watchdog::new("idle_pool_uses_under_one_percent_cpu", 60);
    const P: &str = "idlecpu-";
    // Default pinning on purpose (this is how most users build the pool).
    let pool = Pool::builder()
        .capacity(2)
        .thread_name(|i| format!("{P}{i}"))
        .build()
        .expect("build");

    // 1. Freshly built, never used.
    thread::sleep(Duration::from_millis(200));
    measure("fresh pool", P);

    // 2. After a burst of work (including nested submits), once idle again.
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..1000 {
        let ran = ran.clone();
        pool.submit(move || {
            let p = Pool::current().expect("inside a worker");
            let r = ran.clone();
            p.submit(move || {
                r.fetch_add(1, Ordering::SeqCst);
            })
            .expect("nested submit");
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .expect("submit");
    }
    pool.wait_idle();
    assert_eq!(ran.load(Ordering::SeqCst), 2000);
    // Let any post-work spinning phase end before measuring.
    thread::sleep(Duration::from_millis(200));
    measure("pool after a burst of work", P);

    // 3. After a trickle of single tasks (each wakes a sleeping worker).
    for _ in 0..20 {
        let h = pool.spawn(|| 1).expect("spawn");
        assert_eq!(h.join().ok(), Some(1));
        thread::sleep(Duration::from_millis(5));
    }
    pool.wait_idle();
    thread::sleep(Duration::from_millis(200));
    measure("pool after a trickle of tasks", P);

    pool.shutdown();

    // 4. A pool with the autoscaler after a burst of blocking tasks: its
    // monitor thread waits for a poke (no timeout) once the capacity is
    // back at its starting point and every worker is parked.
    const A: &str = "idlescale-";
    let pool = Pool::builder()
        .capacity(2)
        .max_capacity(16)
        .autoscale(stealpool::Autoscale::new(1, 16))
        .thread_name(|i| format!("{A}{i}"))
        .build()
        .expect("build");
    for _ in 0..200 {
        pool.submit(|| thread::sleep(Duration::from_millis(1))).expect("submit");
    }
    pool.wait_idle();
    assert!(
        wait_until(Duration::from_secs(10), || pool.capacity() == 2),
        "capacity {} did not settle",
        pool.capacity()
    );
    thread::sleep(Duration::from_millis(300));
    measure("autoscaled pool after a blocking burst (workers)", A);
    measure("autoscaled pool after a blocking burst (monitor)", "stealpool-scale");
    pool.shutdown();
}
