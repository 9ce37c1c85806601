//! Capacity at runtime: `tune` while tasks are submitted (exactly-once),
//! the concurrency bound after a shrink, how quickly a grow starts queued
//! work, `tune`'s errors, `prealloc`, keep-alive expiry down to
//! `min_workers`, and `worker_stats`.
//!
//! Worker threads are identified by their OS thread name (set through
//! `Builder::thread_name`, read back from /proc/self/task/*/comm), with a
//! prefix unique to each test. All tests in this file run one at a time
//! (SERIAL): the machine has 2 cores, and thread counts of one test must not
//! be disturbed by another.
//!
//! No assertion depends on timing. Where a test must wait for something that
//! happens "soon" (a thread exits, a queued task starts), it polls with a
//! generous bound; only a broken pool (or a machine stalled for seconds)
//! reaches the bound.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use stealpool::{BuildError, Pool, TuneError, WorkerState, WorkerStats};

mod common;
use common::*;

/// The settings: tune errors, the builder's checks, pre-allocation.
#[path = "capacity/settings.rs"]
mod settings;

fn builder(prefix: &'static str, capacity: usize, max: usize) -> stealpool::Builder {
    Pool::builder()
        .capacity(capacity)
        .max_capacity(max)
        .pin_workers(false)
        .thread_name(move |i| format!("{prefix}{i}"))
}

/// Submits `k` tasks that each wait (up to 10 s) until all `k` run at the
/// same moment, so `k` distinct worker threads must be running them. Returns
/// the names of those threads. Panics if they never all met: the pool did
/// not run `k` tasks at once although it should have.
fn rendezvous(pool: &Pool, k: usize) -> HashSet<String> {
    let arrived = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    for _ in 0..k {
        let (arrived, tx) = (arrived.clone(), tx.clone());
        pool.submit(move || {
            arrived.fetch_add(1, Ordering::SeqCst);
            let met = wait_until(Duration::from_secs(10), || arrived.load(Ordering::SeqCst) >= k);
            let name = thread::current().name().unwrap_or("<unnamed>").to_owned();
            let _ = tx.send((met, name));
        })
        .expect("submit rendezvous task");
    }
    let mut names = HashSet::new();
    for i in 0..k {
        let (met, name) = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| {
            panic!(
                "only {i} of {k} rendezvous tasks finished within 30 s ({} started): \
                 the pool never ran {k} tasks at once (capacity {})",
                arrived.load(Ordering::SeqCst),
                pool.capacity()
            )
        });
        assert!(
            met,
            "a rendezvous task waited 10 s for {k} tasks to run at once, only {} arrived \
             (capacity {}); stats {:?}; workers {:?}",
            arrived.load(Ordering::SeqCst),
            pool.capacity(),
            pool.stats(),
            states(pool)
        );
        names.insert(name);
    }
    assert_eq!(
        names.len(),
        k,
        "{k} tasks ran at once, so on {k} distinct threads: {names:?}"
    );
    names
}

/// Tracks how many of its tasks run at the same time.
#[derive(Default)]
struct Concurrency {
    current: AtomicUsize,
    max: AtomicUsize,
    ran: AtomicUsize,
}

impl Concurrency {
    fn enter(&self) {
        let now = self.current.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.current.fetch_sub(1, Ordering::SeqCst);
        self.ran.fetch_add(1, Ordering::SeqCst);
    }

    /// A task that counts itself running for `hold`.
    fn task(self: &Arc<Self>, hold: Duration) -> impl FnOnce() + Send + 'static {
        let c = self.clone();
        move || {
            c.enter();
            thread::sleep(hold);
            c.leave();
        }
    }
}

fn state_name(s: &WorkerStats) -> String {
    format!("{:?}", s.state)
}

fn states(pool: &Pool) -> Vec<String> {
    pool.worker_stats().iter().map(state_name).collect()
}

#[test]
fn exactly_once_while_capacity_swings() {
    let _s = serial();
    let _w = Watchdog::new("exactly_once_while_capacity_swings", 120);
    const PER_THREAD: usize = 100_000;
    const THREADS: usize = 2;
    const TOTAL: usize = PER_THREAD * THREADS;
    const N: usize = 4;

    let pool = builder("cap-once-", N, 8).build().expect("build");
    let slots: &'static [AtomicU8] = Box::leak((0..TOTAL).map(|_| AtomicU8::new(0)).collect::<Box<[_]>>());

    let done: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let tuner = {
        let (pool, stop) = (pool.clone(), stop.clone());
        thread::spawn(move || {
            let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
            let mut tunes = 0usize;
            while !stop.load(Ordering::SeqCst) {
                // xorshift: jumps of any size, not only +-1.
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let n = (seed % N as u64) as usize + 1;
                pool.tune(n).unwrap_or_else(|e| panic!("tune({n}) failed: {e:?}"));
                assert_eq!(pool.capacity(), n, "capacity() right after tune({n})");
                let st = pool.stats();
                assert!(
                    st.busy_workers <= st.live_workers && st.live_workers <= st.max_capacity,
                    "invariant busy <= live <= max_capacity broken: {st:?}"
                );
                tunes += 1;
                thread::sleep(Duration::from_micros(300));
            }
            tunes
        })
    };

    let submitters: Vec<_> = (0..THREADS)
        .map(|t| {
            let pool = pool.clone();
            thread::spawn(move || {
                for slot in &slots[t * PER_THREAD..(t + 1) * PER_THREAD] {
                    pool.submit(move || {
                        // A little work, so the run spans many tunes.
                        std::hint::black_box((0..200u32).fold(0u32, |a, x| a.wrapping_mul(31).wrapping_add(x)));
                        slot.fetch_add(1, Ordering::SeqCst);
                        done.fetch_add(1, Ordering::SeqCst);
                    })
                    .expect("submit on an open pool with an unbounded queue must succeed");
                }
            })
        })
        .collect();
    for s in submitters {
        s.join().expect("submitter thread panicked");
    }
    // Keep swinging until every task ran (most are still queued when the
    // submitters finish). 60 s: the whole run takes well under a second.
    let all_ran = wait_until(Duration::from_secs(60), || done.load(Ordering::SeqCst) == TOTAL);
    stop.store(true, Ordering::SeqCst);
    let tunes = tuner.join().expect("tuner thread panicked");
    // Drain at whatever capacity the tuner left behind.
    let final_cap = pool.capacity();
    assert!(
        all_ran,
        "only {} of {TOTAL} tasks ran within 60 s while capacity swung; stats {:?}",
        done.load(Ordering::SeqCst),
        pool.stats()
    );
    pool.wait_idle();

    let mut bad = Vec::new();
    for (i, s) in slots.iter().enumerate() {
        let v = s.load(Ordering::SeqCst);
        if v != 1 {
            bad.push((i, v));
            if bad.len() >= 10 {
                break;
            }
        }
    }
    assert!(
        bad.is_empty(),
        "tasks not run exactly once while capacity swung (index, count): {bad:?}"
    );
    let st = pool.stats();
    assert_eq!(st.submitted, TOTAL as u64, "{st:?}");
    assert_eq!(
        st.completed, st.submitted,
        "completed != submitted after wait_idle: {st:?}"
    );
    assert_eq!(st.queued, 0, "{st:?}");
    println!("{tunes} tunes over 1..={N} while {TOTAL} tasks ran; drained at capacity {final_cap}");
    pool.shutdown();
}

#[test]
fn at_most_capacity_tasks_run_at_once_after_a_shrink() {
    let _s = serial();
    let _w = Watchdog::new("at_most_capacity_tasks_run_at_once_after_a_shrink", 60);
    let pool = builder("cap-peak-", 4, 8).build().expect("build");
    // Four threads certainly exist, so the shrink has workers to suspend.
    rendezvous(&pool, 4);

    let c = Arc::new(Concurrency::default());
    for _ in 0..200 {
        pool.submit(c.task(Duration::from_millis(1))).expect("submit");
    }
    // Shrink while those tasks are being run.
    assert!(
        wait_until(SOON, || c.ran.load(Ordering::SeqCst) >= 10),
        "the tracked tasks did not start"
    );
    pool.tune(1).expect("tune(1)");
    assert_eq!(pool.capacity(), 1);
    assert_eq!(pool.stats().capacity, 1);
    // Tasks running at tune time (on workers now suspended) finish here.
    pool.wait_idle();
    assert_eq!(c.ran.load(Ordering::SeqCst), 200, "tasks lost across the shrink");
    println!(
        "max concurrency before the shrink took effect: {}",
        c.max.load(Ordering::SeqCst)
    );

    // From now on at most one task at a time, whether submitted from
    // outside (injector) or from inside a task (the worker's own deque).
    c.max.store(0, Ordering::SeqCst);
    c.ran.store(0, Ordering::SeqCst);
    for _ in 0..50 {
        let (c2, pool2) = (c.clone(), pool.clone());
        pool.submit(move || {
            c2.enter();
            pool2
                .submit(c2.task(Duration::from_millis(1)))
                .expect("submit from inside a task");
            thread::sleep(Duration::from_millis(1));
            c2.leave();
        })
        .expect("submit");
    }
    pool.wait_idle();
    assert_eq!(c.ran.load(Ordering::SeqCst), 100, "50 tasks + 50 children must all run");
    assert_eq!(
        c.max.load(Ordering::SeqCst),
        1,
        "after tune(1) (and the tasks running at that time ended), tasks ran concurrently"
    );
    pool.shutdown();
}

#[test]
fn grow_starts_a_queued_task_while_the_only_worker_is_blocked() {
    let _s = serial();
    let _w = Watchdog::new("grow_starts_a_queued_task_while_the_only_worker_is_blocked", 60);
    let pool = builder("cap-grow-", 1, 4).build().expect("build");

    // Twice: first slot 1 has no thread yet (tune must start one), then
    // slot 1's thread exists but is suspended (tune must resume it).
    for round in ["thread not started", "worker suspended"] {
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (entered_tx, entered_rx) = mpsc::channel::<()>();
        pool.submit(move || {
            entered_tx.send(()).unwrap();
            release_rx
                .recv_timeout(Duration::from_secs(30))
                .expect("blocker never released");
        })
        .expect("submit blocker");
        entered_rx.recv_timeout(SOON).expect("the blocker task did not start");

        let (started_tx, started_rx) = mpsc::channel::<Instant>();
        pool.submit(move || started_tx.send(Instant::now()).unwrap())
            .expect("submit");
        // Capacity 1 and its worker is blocked: the task must not start.
        assert!(
            started_rx.recv_timeout(Duration::from_millis(50)).is_err(),
            "{round}: a second task started although capacity is 1 and its worker is blocked"
        );

        let t0 = Instant::now();
        pool.tune(2).expect("tune(2)");
        let tune_returned = t0.elapsed();
        let started = started_rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("{round}: the queued task did not start within 5 s of tune(2)"));
        println!(
            "{round}: tune(2) returned after {tune_returned:?}, the queued task started {:?} after tune was called",
            started.saturating_duration_since(t0)
        );
        // The first worker was still blocked all along: it cannot have run it.
        release_tx.send(()).unwrap();
        pool.wait_idle();

        pool.tune(1).expect("tune(1)");
        pool.wait_idle();
    }
    pool.shutdown();
}

#[test]
fn keep_alive_retires_idle_threads_down_to_min_workers() {
    let _s = serial();
    let _w = Watchdog::new("keep_alive_retires_idle_threads_down_to_min_workers", 60);
    const P: &str = "cap-ka-";
    const KEEP_ALIVE: Duration = Duration::from_millis(100);
    let pool = builder(P, 3, 3)
        .min_workers(1)
        .keep_alive(KEEP_ALIVE)
        .build()
        .expect("build");

    for round in 0..2 {
        // A burst that needs all 3 threads at once.
        println!("round {round}: {:?}", states(&pool));
        let names = rendezvous(&pool, 3);
        assert!(names.iter().all(|n| n.starts_with(P)), "{names:?}");
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..1000 {
            let ran = ran.clone();
            pool.submit(move || {
                ran.fetch_add(1, Ordering::SeqCst);
            })
            .expect("submit");
        }
        pool.wait_idle();
        assert_eq!(ran.load(Ordering::SeqCst), 1000, "round {round}: burst tasks lost");

        // Idle for longer than keep_alive: down to min_workers (1).
        assert!(
            wait_until(SOON, || threads_named(P) == 1 && pool.stats().live_workers == 1),
            "round {round}: {} threads named {P:?}*, live_workers {}, {SOON:?} after the burst \
             (keep_alive {KEEP_ALIVE:?}, min_workers 1)",
            threads_named(P),
            pool.stats().live_workers
        );
        let started = pool
            .worker_stats()
            .iter()
            .filter(|w| !matches!(w.state, WorkerState::NotStarted))
            .count();
        assert_eq!(
            started,
            1,
            "worker_stats shows {started} slots with a thread, expected 1: {:?}",
            states(&pool)
        );
        // And never below min_workers, however long it idles.
        thread::sleep(KEEP_ALIVE * 5);
        assert_eq!(threads_named(P), 1, "round {round}: went below min_workers");
        assert_eq!(pool.stats().live_workers, 1);
    }
    pool.shutdown();
    assert!(wait_until(SOON, || threads_named(P) == 0));
}

#[test]
fn worker_stats_track_slots_tasks_and_suspension() {
    let _s = serial();
    let _w = Watchdog::new("worker_stats_track_slots_tasks_and_suspension", 60);
    const P: &str = "cap-ws-";
    let pool = builder(P, 4, 6).build().expect("build");
    // Only slots that have or had a thread are listed: none yet.
    assert!(pool.worker_stats().is_empty(), "{:?}", states(&pool));

    let sum_matches_completed = |pool: &Pool| {
        let run: u64 = pool.worker_stats().iter().map(|w| w.tasks_run).sum();
        run == pool.stats().completed
    };
    let run_batch = |n: usize| {
        for _ in 0..n {
            pool.submit(|| {
                std::hint::black_box((0..100u64).sum::<u64>());
            })
            .expect("submit");
        }
        pool.wait_idle();
    };

    rendezvous(&pool, 4);
    let ws = pool.worker_stats();
    assert_eq!(
        ws.len(),
        4,
        "one WorkerStats per slot that had a thread: {:?}",
        states(&pool)
    );
    assert_eq!(
        ws.iter().map(|w| w.index).collect::<Vec<_>>(),
        (0..4).collect::<Vec<_>>()
    );
    run_batch(1000);
    // Per-worker counters may be published a moment after `completed`.
    assert!(
        wait_until(SOON, || sum_matches_completed(&pool)),
        "sum of tasks_run {} != completed {}",
        pool.worker_stats().iter().map(|w| w.tasks_run).sum::<u64>(),
        pool.stats().completed
    );
    assert_eq!(pool.stats().completed, 1004);

    pool.tune(2).expect("tune(2)");
    assert!(
        wait_until(SOON, || {
            let ws = pool.worker_stats();
            ws[2..4].iter().all(|w| matches!(w.state, WorkerState::Suspended))
        }),
        "workers 2 and 3 not Suspended after tune(2): {:?}",
        states(&pool)
    );
    let ws = pool.worker_stats();
    assert!(
        ws[..2].iter().all(|w| !matches!(w.state, WorkerState::Suspended)),
        "workers below capacity are suspended: {:?}",
        states(&pool)
    );
    assert_eq!(ws.len(), 4, "slots 4 and 5 never had a thread: {:?}", states(&pool));
    let suspended_runs: Vec<u64> = ws[2..4].iter().map(|w| w.tasks_run).collect();

    run_batch(1000);
    assert!(wait_until(SOON, || sum_matches_completed(&pool)));
    let ws = pool.worker_stats();
    assert_eq!(
        ws[2..4].iter().map(|w| w.tasks_run).collect::<Vec<_>>(),
        suspended_runs,
        "suspended workers ran tasks"
    );
    assert!(ws[2..4].iter().all(|w| matches!(w.state, WorkerState::Suspended)));

    pool.tune(4).expect("tune(4)");
    assert!(
        wait_until(SOON, || pool.worker_stats()[2..4]
            .iter()
            .all(|w| !matches!(w.state, WorkerState::Suspended))),
        "workers 2 and 3 still Suspended after tune(4): {:?}",
        states(&pool)
    );
    rendezvous(&pool, 4);
    assert!(wait_until(SOON, || sum_matches_completed(&pool)));
    pool.shutdown();
}

/// ants issue #196: `Free()` went negative after a shrink. Here the busy
/// workers above a shrunk capacity finish their tasks while `free_capacity`
/// stays 0 (never wraps), and the snapshot keeps `busy <= live`.
#[test]
fn free_capacity_never_goes_negative_after_a_shrink() {
    let _s = serial();
    let _w = Watchdog::new("free_capacity_never_goes_negative_after_a_shrink", 60);
    let pool = builder("cap-free-", 2, 2).prealloc(true).build().expect("build");
    let first = block_worker(&pool);
    let second = block_worker(&pool);
    pool.tune(1).expect("tune(1)");
    let stats = pool.stats();
    assert_eq!(
        (stats.capacity, stats.busy_workers, stats.free_capacity),
        (1, 2, 0),
        "{stats:?}"
    );
    assert!(stats.busy_workers <= stats.live_workers, "{stats:?}");
    drop(first);
    drop(second);
    pool.wait_idle();
    assert!(
        wait_until(SOON, || pool.stats().free_capacity == 1),
        "free capacity after the tasks ended: {:?}",
        pool.stats()
    );
    pool.shutdown();
}

/// A pool with 1,024 slots of which only a few ever get a thread: thieves
/// scan only the slots that had one (src/scheduler/worker/README.md, I17), and must still
/// find every task there. A task pushes 200 children onto its own deque and
/// then blocks until they all ran: they can only run if the other workers
/// (started on demand) steal them from that deque.
#[test]
fn thieves_find_work_in_every_started_deque_of_a_large_sparse_pool() {
    let _s = serial();
    let _w = Watchdog::new("thieves_find_work_in_every_started_deque_of_a_large_sparse_pool", 60);
    let pool = named_builder("cap-sparse-", 4).max_capacity(1024).build().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let (done, all_ran) = mpsc::channel();
    let p = pool.clone();
    let counter = ran.clone();
    pool.submit(move || {
        for _ in 0..200 {
            let counter = counter.clone();
            p.submit(move || {
                counter.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        }
        // Blocks this worker: the children must be stolen.
        let stolen = wait_until(Duration::from_secs(30), || counter.load(Ordering::SeqCst) == 200);
        done.send(stolen).unwrap();
    })
    .unwrap();
    assert_eq!(
        all_ran.recv_timeout(Duration::from_secs(40)),
        Ok(true),
        "children left in a busy worker's deque"
    );
    pool.wait_idle();
    assert_eq!(ran.load(Ordering::SeqCst), 200);
    assert!(pool.stats().stolen > 0);
    pool.shutdown();
}
