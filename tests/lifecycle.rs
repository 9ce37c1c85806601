//! Lifecycle: `shutdown_now` handing back the unrun tasks, `shutdown_timeout`,
//! `reboot` (also racing submitters), and "no worker thread left behind"
//! after a shutdown from any state (shrunk, keep-alive expired, rebooted,
//! preallocated and suspended).
//!
//! Worker threads are identified by their OS thread name (set through
//! `Builder::thread_name`, read back from /proc/self/task/*/comm), with a
//! prefix unique to each test. All tests run one at a time (SERIAL); the
//! machine has 2 cores. No assertion depends on timing; waits for things
//! that happen "soon" are polls with generous, explained bounds.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use stealpool::{JoinHandle, Pool, ShutdownTimeout, SubmitError, Task};

mod common;
use common::*;

/// Panics seen on threads of this process, as (thread name, message). A
/// worker thread must never panic outside a task; tasks in the tests that
/// check this never panic either. Installed once; chains to the previous hook.
static PANICS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

fn record_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let name = thread::current().name().unwrap_or("<unnamed>").to_owned();
            PANICS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((name, info.to_string()));
            previous(info);
        }));
    });
}

fn panics_on(prefix: &str) -> Vec<(String, String)> {
    PANICS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(name, _)| name.starts_with(prefix))
        .cloned()
        .collect()
}

/// Submits `k` tasks that each wait (up to 10 s) until all `k` run at once,
/// so `k` worker threads must exist. Panics if they never all meet.
fn rendezvous(pool: &Pool, k: usize) {
    let arrived = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    for _ in 0..k {
        let (arrived, tx) = (arrived.clone(), tx.clone());
        pool.submit(move || {
            arrived.fetch_add(1, Ordering::SeqCst);
            let met = wait_until(Duration::from_secs(10), || arrived.load(Ordering::SeqCst) >= k);
            let _ = tx.send((met, thread::current().id()));
        })
        .expect("submit rendezvous task");
    }
    let mut threads = HashSet::new();
    for i in 0..k {
        let (met, id) = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("only {i} of {k} rendezvous tasks finished within 30 s"));
        assert!(met, "{k} tasks never ran at once (capacity {})", pool.capacity());
        threads.insert(id);
    }
    assert_eq!(threads.len(), k);
}

/// Calls `shutdown_now` on a helper thread while one worker is blocked at
/// `gate`. `shutdown_now` may wait for running tasks (it lets them finish),
/// so if it has not returned within 500 ms the gate is opened: first, though,
/// up to 10 s for the queue to be seen empty (`stats().queued == 0`: the
/// queued tasks were taken out while the worker was still blocked).
///
/// Returns the handed-back tasks and whether nothing queued can have started
/// before being taken out (shutdown_now returned with the worker still
/// blocked, or the queue was seen empty before the gate opened).
fn shutdown_now_releasing(pool: &Pool, gate: &Gate) -> (Vec<Task>, bool) {
    let (tx, rx) = mpsc::channel();
    let p = pool.clone();
    thread::spawn(move || {
        let _ = tx.send(p.shutdown_now());
    });
    match rx.recv_timeout(Duration::from_millis(500)) {
        Ok(tasks) => (tasks, true),
        Err(_) => {
            let drained_first = wait_until(SOON, || pool.stats().queued == 0);
            gate.open();
            let tasks = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("shutdown_now did not return within 30 s of the running task finishing");
            (tasks, drained_first)
        }
    }
}

#[test]
fn shutdown_now_hands_back_every_queued_task() {
    let _s = serial();
    let _w = Watchdog::new("shutdown_now_hands_back_every_queued_task", 60);
    const P: &str = "lc-snow-";
    const N: usize = 1000;
    const SPAWNS: usize = 10;
    let pool = named_builder(P, 1).build().expect("build");
    let gate = block_worker(&pool);

    let slots: Arc<Vec<AtomicU8>> = Arc::new((0..N).map(|_| AtomicU8::new(0)).collect());
    let in_pool = Arc::new(AtomicUsize::new(0));
    for i in 0..N {
        let (slots, in_pool) = (slots.clone(), in_pool.clone());
        pool.submit(move || {
            slots[i].fetch_add(1, Ordering::SeqCst);
            if Pool::current().is_some() {
                in_pool.fetch_add(1, Ordering::SeqCst);
            }
        })
        .expect("submit");
    }
    let handles: Vec<JoinHandle<usize>> = (0..SPAWNS)
        .map(|i| {
            let in_pool = in_pool.clone();
            pool.spawn(move || {
                if Pool::current().is_some() {
                    in_pool.fetch_add(1, Ordering::SeqCst);
                }
                i * 11
            })
            .expect("spawn")
        })
        .collect();
    assert_eq!(in_pool.load(Ordering::SeqCst), 0, "the only worker is blocked");

    let (tasks, none_started) = shutdown_now_releasing(&pool, &gate);
    assert!(pool.is_closed());
    assert!(pool.submit(|| ()).unwrap_err().is_closed());
    gate.open();
    let returned = tasks.len();
    let ran_in_pool = in_pool.load(Ordering::SeqCst);
    println!("shutdown_now handed back {returned} tasks (taken out while the worker was blocked: {none_started})");
    if none_started {
        // The worker was blocked from before the first submit until the
        // queue was emptied: nothing queued can have started.
        assert_eq!(returned, N + SPAWNS, "shutdown_now must hand back every queued task");
    }
    let st = pool.stats();
    assert_eq!(st.queued, 0, "nothing is queued after shutdown_now returned: {st:?}");

    // The pool runs nothing more; nothing handed back ran already.
    assert_threads_gone(P, "after shutdown_now");
    let ran_in_pool_final = in_pool.load(Ordering::SeqCst);
    assert_eq!(
        ran_in_pool, ran_in_pool_final,
        "tasks ran in the pool after shutdown_now returned"
    );
    for t in tasks {
        t.run();
    }
    let mut bad = Vec::new();
    for (i, s) in slots.iter().enumerate() {
        let v = s.load(Ordering::SeqCst);
        if v != 1 {
            bad.push((i, v));
        }
    }
    assert!(
        bad.is_empty(),
        "after running the handed-back tasks, not every accepted task ran exactly once (index, count): {:?}",
        &bad[..bad.len().min(10)]
    );
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(
            join_timeout(h).ok(),
            Some(i * 11),
            "a spawn's Task run by hand must complete its JoinHandle"
        );
    }
    assert_eq!(
        ran_in_pool_final + returned,
        N + SPAWNS,
        "accepted != ran in the pool + handed back"
    );
    // shutdown after shutdown_now returns at once.
    pool.shutdown();
}

#[test]
fn dropping_a_handed_back_spawn_task_fails_its_join_handle() {
    let _s = serial();
    let _w = Watchdog::new("dropping_a_handed_back_spawn_task_fails_its_join_handle", 60);
    const P: &str = "lc-drop-";
    let pool = named_builder(P, 1).build().expect("build");
    let gate = block_worker(&pool);
    let ran = Arc::new(AtomicUsize::new(0));
    let capture = Arc::new(());
    let handles: Vec<JoinHandle<u32>> = (0..3)
        .map(|i| {
            let (ran, capture) = (ran.clone(), capture.clone());
            pool.spawn(move || {
                let _keep = capture;
                ran.fetch_add(1, Ordering::SeqCst);
                i
            })
            .expect("spawn")
        })
        .collect();
    let (tasks, _) = shutdown_now_releasing(&pool, &gate);
    gate.open();
    let returned = tasks.len();
    assert!(returned <= 3);
    drop(tasks);
    assert_threads_gone(P, "after shutdown_now");
    let ran_in_pool = ran.load(Ordering::SeqCst);
    assert_eq!(ran_in_pool + returned, 3, "every spawn either ran or was handed back");
    assert_eq!(Arc::strong_count(&capture), 1, "dropped Tasks must drop their closures");

    let mut errs = 0;
    for h in handles {
        // Bounded: join_timeout fails the test if a handle hangs.
        match join_timeout(h) {
            Ok(_) => {}
            Err(_) => errs += 1,
        }
    }
    assert_eq!(
        errs, returned,
        "every JoinHandle whose Task was dropped unrun must return Err (and the others Ok)"
    );
}

#[test]
fn shutdown_timeout_gives_up_then_succeeds() {
    let _s = serial();
    let _w = Watchdog::new("shutdown_timeout_gives_up_then_succeeds", 60);
    const P: &str = "lc-sdto-";
    const T: Duration = Duration::from_millis(200);
    let pool = named_builder(P, 2).build().expect("build");
    let gate = block_worker(&pool);
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..10 {
        let ran = ran.clone();
        pool.submit(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .expect("submit");
    }

    let t0 = Instant::now();
    let r: Result<(), ShutdownTimeout> = pool.shutdown_timeout(T);
    let took = t0.elapsed();
    assert!(r.is_err(), "shutdown_timeout returned Ok while a task is still blocked");
    assert!(took >= T, "shutdown_timeout gave up after {took:?}, before its {T:?}");
    assert!(took < SOON, "shutdown_timeout({T:?}) took {took:?}");
    assert!(
        pool.is_closed(),
        "shutdown_timeout closes the pool even when it times out"
    );
    match pool.submit(|| ()) {
        Err(SubmitError::Closed(_)) => {}
        other => panic!("expected Closed after shutdown_timeout, got {:?}", other.err()),
    }
    // The other worker still drains what was accepted.
    assert!(
        wait_until(SOON, || ran.load(Ordering::SeqCst) == 10),
        "{} of 10 accepted tasks ran",
        ran.load(Ordering::SeqCst)
    );
    assert!(
        threads_named(P) >= 1,
        "the blocked worker's thread is still running its task"
    );

    gate.open();
    let r: Result<(), ShutdownTimeout> = pool.shutdown_timeout(SOON);
    assert!(
        r.is_ok(),
        "shutdown_timeout did not finish within {SOON:?} once the task was released"
    );
    assert_threads_gone(P, "after shutdown_timeout");
    assert_eq!(pool.stats().live_workers, 0);
}

#[test]
fn reboot_after_a_timed_out_shutdown_waits_for_the_old_threads() {
    let _s = serial();
    let _w = Watchdog::new("reboot_after_a_timed_out_shutdown_waits_for_the_old_threads", 60);
    const P: &str = "lc-rbto-";
    let pool = named_builder(P, 1).build().expect("build");
    let gate = block_worker(&pool);
    assert!(pool.shutdown_timeout(Duration::from_millis(20)).is_err());

    let (tx, rx) = mpsc::channel();
    let p = pool.clone();
    thread::spawn(move || {
        let _ = tx.send(p.reboot().is_ok());
    });
    // While the old worker is stuck in its task, reboot must not return.
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "reboot returned while the previous shutdown's thread was still running a task"
    );
    gate.open();
    assert_eq!(rx.recv_timeout(SOON), Ok(true), "reboot failed or did not return");
    assert!(!pool.is_closed());
    let h = pool
        .spawn(|| thread::current().name().map(str::to_owned))
        .expect("spawn after reboot");
    let name = join_timeout(h).expect("task").expect("named");
    assert!(name.starts_with(P), "{name:?}");
    pool.shutdown();
    assert_threads_gone(P, "after reboot + shutdown");
}

#[test]
fn reboot_cycles_under_concurrent_submitters_lose_nothing() {
    let _s = serial();
    let _w = Watchdog::new("reboot_cycles_under_concurrent_submitters_lose_nothing", 120);
    const P: &str = "lc-rbcy-";
    const CYCLES: usize = 30;
    const PER: usize = 1_000_000;
    let pool = named_builder(P, 2).build().expect("build");
    let slots: &'static [AtomicU8] = Box::leak((0..2 * PER).map(|_| AtomicU8::new(0)).collect::<Box<[_]>>());
    let ran_in_pool = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));

    let submitters: Vec<_> = (0..2)
        .map(|t| {
            let (pool, ran_in_pool, stop) = (pool.clone(), ran_in_pool.clone(), stop.clone());
            thread::spawn(move || {
                let (mut accepted, mut refused) = (0usize, 0usize);
                for (i, slot) in slots[t * PER..(t + 1) * PER].iter().enumerate() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let rip = ran_in_pool.clone();
                    let r = pool.submit(move || {
                        slot.fetch_add(1, Ordering::SeqCst);
                        if Pool::current().is_some() {
                            rip.fetch_add(1, Ordering::SeqCst);
                        }
                    });
                    match r {
                        Ok(()) => accepted += 1,
                        Err(SubmitError::Closed(f)) => {
                            refused += 1;
                            f.into_inner()(); // runs here: slot set, not counted as ran in the pool
                        }
                        Err(e) => panic!("unexpected refusal {e:?} (unbounded queue)"),
                    }
                    if i % 8 == 7 {
                        thread::sleep(Duration::from_micros(20));
                    }
                }
                (accepted, refused)
            })
        })
        .collect();

    for cycle in 0..CYCLES {
        thread::sleep(Duration::from_millis(5));
        pool.shutdown();
        assert!(pool.is_closed(), "cycle {cycle}");
        thread::sleep(Duration::from_millis(1));
        pool.reboot()
            .unwrap_or_else(|e| panic!("cycle {cycle}: reboot failed: {e:?}"));
        assert!(!pool.is_closed(), "cycle {cycle}: closed after reboot");
    }
    thread::sleep(Duration::from_millis(5));
    stop.store(true, Ordering::SeqCst);
    let (mut accepted, mut refused) = (0, 0);
    for s in submitters {
        let (a, r) = s.join().expect("submitter panicked");
        accepted += a;
        refused += r;
    }
    pool.wait_idle();
    pool.shutdown();

    assert_eq!(
        ran_in_pool.load(Ordering::SeqCst),
        accepted,
        "accepted tasks != tasks run by the pool across {CYCLES} shutdown/reboot cycles (refused {refused})"
    );
    let used: usize = accepted + refused;
    let ones = slots.iter().filter(|s| s.load(Ordering::SeqCst) == 1).count();
    let more = slots.iter().filter(|s| s.load(Ordering::SeqCst) > 1).count();
    assert_eq!(more, 0, "{more} tasks ran more than once");
    assert_eq!(
        ones, used,
        "every accepted task ran in the pool and every refused closure came back and ran"
    );
    println!("{CYCLES} cycles: {accepted} accepted, {refused} refused (handed back)");
    assert_threads_gone(P, "after the reboot cycles");
}

#[test]
fn reboot_on_a_running_pool_is_a_no_op_and_keeps_the_tuned_capacity() {
    let _s = serial();
    let _w = Watchdog::new("reboot_on_a_running_pool_is_a_no_op_and_keeps_the_tuned_capacity", 60);
    const P: &str = "lc-rbno-";
    let pool = named_builder(P, 2).max_capacity(4).build().expect("build");
    rendezvous(&pool, 2);
    pool.reboot().expect("reboot on a running pool is Ok");
    assert!(!pool.is_closed());
    assert_eq!(pool.capacity(), 2);
    let h = pool.spawn(|| 9).expect("spawn after a no-op reboot");
    assert_eq!(join_timeout(h).ok(), Some(9));
    assert!(threads_named(P) <= 2, "a no-op reboot started threads");

    pool.tune(3).expect("tune(3)");
    pool.shutdown();
    assert_threads_gone(P, "after shutdown");
    pool.reboot().expect("reboot");
    assert_eq!(pool.capacity(), 3, "reboot keeps the current (tuned) capacity");
    assert_eq!(pool.max_capacity(), 4);
    rendezvous(&pool, 3);
    pool.shutdown();
    assert_threads_gone(P, "after reboot + shutdown");
}

#[test]
fn no_thread_outlives_shutdown_from_any_state() {
    let _s = serial();
    let _w = Watchdog::new("no_thread_outlives_shutdown_from_any_state", 90);

    // Shrunk: suspended workers must exit too.
    const A: &str = "lc-nt-shr-";
    let pool = named_builder(A, 3).max_capacity(4).build().expect("build");
    rendezvous(&pool, 3);
    pool.tune(1).expect("tune(1)");
    pool.wait_idle();
    pool.shutdown();
    assert!(pool.is_closed());
    assert_threads_gone(A, "after tune shrink");
    assert_eq!(pool.stats().live_workers, 0);

    // Keep-alive expired (down to min_workers 1, and to 0). Expiring
    // threads leave quietly: no panic on a worker thread, and an idle pool
    // starts no thread again by itself.
    record_panics();
    for min in [1, 0] {
        const B: &str = "lc-nt-ka-";
        const KEEP_ALIVE: Duration = Duration::from_millis(50);
        let pool = named_builder(B, 3)
            .min_workers(min)
            .keep_alive(KEEP_ALIVE)
            .build()
            .expect("build");
        rendezvous(&pool, 3);
        assert!(
            wait_until(SOON, || threads_named(B) == min),
            "min_workers {min}: {} threads after keep-alive expiry",
            threads_named(B)
        );
        thread::sleep(KEEP_ALIVE * 4);
        assert_eq!(
            threads_named(B),
            min,
            "min_workers {min}: an idle pool started threads again"
        );
        assert_eq!(pool.stats().live_workers, min);
        assert_eq!(
            panics_on(B),
            vec![],
            "min_workers {min}: worker threads panicked outside any task"
        );
        pool.shutdown();
        assert!(pool.is_closed());
        assert_threads_gone(B, "after keep-alive expiry");
        assert_eq!(pool.stats().live_workers, 0);
    }

    // Rebooted (twice).
    const C: &str = "lc-nt-rb-";
    let pool = named_builder(C, 2).build().expect("build");
    for _ in 0..2 {
        rendezvous(&pool, 2);
        pool.shutdown();
        assert_threads_gone(C, "after shutdown before reboot");
        pool.reboot().expect("reboot");
    }
    rendezvous(&pool, 2);
    pool.shutdown();
    assert!(pool.is_closed());
    assert_threads_gone(C, "after reboot");

    // Preallocated, then shrunk at once (workers suspended without ever
    // running a task), shut down by dropping the last handle.
    const D: &str = "lc-nt-pre-";
    let pool = named_builder(D, 4).prealloc(true).build().expect("build");
    assert!(wait_until(SOON, || threads_named(D) == 4));
    pool.tune(1).expect("tune(1)");
    drop(pool);
    assert_threads_gone(D, "after dropping a shrunk preallocated pool");

    // Closed by shutdown_now while idle.
    const E: &str = "lc-nt-now-";
    let pool = named_builder(E, 2).build().expect("build");
    rendezvous(&pool, 2);
    assert!(pool.shutdown_now().is_empty(), "an idle pool has nothing to hand back");
    assert!(pool.is_closed());
    assert_threads_gone(E, "after shutdown_now");
}
