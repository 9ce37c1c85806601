//! Shutdown: graceful draining, `SubmitError::Closed` giving the closure
//! back, idempotence, drop-to-shutdown (also from inside a task), shutdown
//! and wait_idle from inside a task, and "no worker thread left behind".
//!
//! Worker threads are identified by their OS thread name (set through
//! `Builder::thread_name`, read back from /proc/self/task/*/comm), with a
//! prefix unique to each test, so counts are not disturbed by the test
//! harness's own threads. All tests in this file additionally run one at a
//! time (SERIAL), which also keeps the 2-core machine from being oversubscribed.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use stealpool::{Pool, SubmitError};

mod common;
use common::*;

fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// Generous bound for "threads are gone": thread exit after join is
/// immediate in practice; 10 s only matters on a badly overloaded machine.
const THREADS_GONE: Duration = Duration::from_secs(10);

fn assert_threads_gone(prefix: &str) {
    assert!(
        wait_until(THREADS_GONE, || threads_named(prefix) == 0),
        "{} worker thread(s) named {prefix:?}* still alive {THREADS_GONE:?} after shutdown",
        threads_named(prefix)
    );
}

fn named_pool(prefix: &'static str, capacity: usize) -> Pool {
    Pool::builder()
        .capacity(capacity)
        .pin_workers(false)
        .thread_name(move |i| format!("{prefix}{i}"))
        .build()
        .expect("build")
}

/// Runs a few tasks so that (lazily started) workers certainly exist, and
/// checks that they carry the configured names.
fn warm_up(pool: &Pool, prefix: &str) {
    let (tx, rx) = mpsc::channel();
    for _ in 0..pool.capacity() * 4 {
        let tx = tx.clone();
        pool.submit(move || {
            let _ = tx.send(thread::current().name().map(str::to_owned));
        })
        .expect("submit");
    }
    for _ in 0..pool.capacity() * 4 {
        let name = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("warm-up task did not run");
        let name = name.expect("worker threads must be named");
        assert!(
            name.starts_with(prefix),
            "worker named {name:?}, expected prefix {prefix:?}"
        );
    }
    let n = threads_named(prefix);
    assert!(
        (1..=pool.capacity()).contains(&n),
        "expected 1..={} OS threads named {prefix:?}*, found {n}",
        pool.capacity()
    );
}

/// Blocks every worker of a `capacity`-sized pool on a gate. Returns the
/// gate; set it to release them.
fn block_workers(pool: &Pool) -> Arc<AtomicBool> {
    let gate = Arc::new(AtomicBool::new(false));
    let entered = Arc::new(AtomicUsize::new(0));
    for _ in 0..pool.capacity() {
        let (gate, entered) = (gate.clone(), entered.clone());
        pool.submit(move || {
            entered.fetch_add(1, Ordering::SeqCst);
            assert!(
                wait_until(Duration::from_secs(30), || gate.load(Ordering::SeqCst)),
                "gate never opened"
            );
        })
        .expect("submit gate");
    }
    assert!(
        wait_until(Duration::from_secs(10), || entered.load(Ordering::SeqCst)
            == pool.capacity()),
        "not all {} workers picked up a gate task",
        pool.capacity()
    );
    gate
}

fn open_gate_later(gate: Arc<AtomicBool>, after: Duration) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        thread::sleep(after);
        gate.store(true, Ordering::SeqCst);
    })
}

#[test]
fn graceful_shutdown_runs_all_queued_work_and_joins_threads() {
    let _s = serial();
    let _w = Watchdog::new("graceful_shutdown_runs_all_queued_work_and_joins_threads", 60);
    const P: &str = "sd-grace-";
    const N: usize = 10_000;
    let pool = named_pool(P, 2);
    warm_up(&pool, P);
    let gate = block_workers(&pool);

    let ran = Arc::new(AtomicUsize::new(0));
    for i in 0..N {
        let ran = ran.clone();
        pool.submit(move || {
            std::hint::black_box(i.wrapping_mul(2654435761));
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .expect("submit");
    }
    // Everything is still queued: both workers sit at the gate.
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert!(
        pool.stats().queued > 0,
        "stats().queued is 0 although {N} tasks wait behind blocked workers"
    );
    let opener = open_gate_later(gate, Duration::from_millis(100));

    pool.shutdown();

    // shutdown() is graceful: when it returns everything accepted has run.
    assert_eq!(
        ran.load(Ordering::SeqCst),
        N,
        "shutdown returned before all queued tasks ran"
    );
    assert!(pool.is_closed());
    let st = pool.stats();
    assert_eq!(st.completed, (N + 2 + 8) as u64, "completed = gates + warm-up + queued");
    assert_eq!(st.queued, 0);
    assert_threads_gone(P);
    assert!(
        wait_until(THREADS_GONE, || pool.stats().live_workers == 0),
        "stats().live_workers = {} after shutdown",
        pool.stats().live_workers
    );
    opener.join().unwrap();
}

#[test]
fn submit_after_shutdown_gives_back_the_same_closure() {
    let _s = serial();
    let _w = Watchdog::new("submit_after_shutdown_gives_back_the_same_closure", 60);
    let pool = named_pool("sd-closed-", 2);
    pool.shutdown();
    assert!(pool.is_closed());

    // Via pattern matching on Closed(f).
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    match pool.submit(move || {
        c.fetch_add(1, Ordering::SeqCst);
    }) {
        Err(SubmitError::Closed(f)) => f.into_inner()(),
        Err(other) => panic!("expected SubmitError::Closed, got {other:?}"),
        Ok(()) => panic!("submit on a shut-down pool must fail"),
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the returned closure is the one we submitted, run exactly once"
    );

    // Via into_inner(), with a captured marker value.
    let marker = Arc::new(String::from("marker-7f3a"));
    let m = marker.clone();
    let err = pool
        .submit(move || {
            assert_eq!(m.as_str(), "marker-7f3a");
            drop(m);
        })
        .unwrap_err();
    assert!(err.is_closed());
    assert!(!err.is_full());
    assert!(!err.is_timeout());
    assert!(!err.to_string().is_empty());
    assert_eq!(
        Arc::strong_count(&marker),
        2,
        "the closure (and its captures) must not be dropped by submit"
    );
    let f = err.into_inner();
    f();
    assert_eq!(
        Arc::strong_count(&marker),
        1,
        "calling the returned closure consumed its capture"
    );

    // spawn: the returned closure still produces its value.
    let secret = 0x5EED_u64;
    match pool.spawn(move || secret * 3) {
        Err(e) => {
            assert!(e.is_closed());
            assert_eq!((e.into_inner())(), 0x5EED * 3);
        }
        Ok(_) => panic!("spawn on a shut-down pool must fail"),
    }
    // The rejected closures were not counted as submitted.
    assert_eq!(pool.stats().submitted, 0);
}

#[test]
fn shutdown_is_idempotent_and_shared_by_clones() {
    let _s = serial();
    let _w = Watchdog::new("shutdown_is_idempotent_and_shared_by_clones", 60);
    const P: &str = "sd-idem-";
    let pool = named_pool(P, 2);
    warm_up(&pool, P);
    let clone = pool.clone();
    assert!(!clone.is_closed());
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..100 {
        let ran = ran.clone();
        clone
            .submit(move || {
                ran.fetch_add(1, Ordering::SeqCst);
            })
            .expect("submit");
    }
    // Two concurrent shutdowns, then more sequential ones.
    let c2 = clone.clone();
    let t = thread::spawn(move || c2.shutdown());
    pool.shutdown();
    t.join().expect("concurrent shutdown panicked");
    pool.shutdown();
    clone.shutdown();
    assert_eq!(ran.load(Ordering::SeqCst), 100);
    assert!(pool.is_closed() && clone.is_closed());
    assert!(
        clone.submit(|| {}).unwrap_err().is_closed(),
        "a clone of a shut-down pool is closed too"
    );
    assert_threads_gone(P);
}

#[test]
fn dropping_a_clone_does_not_shut_down() {
    let _s = serial();
    let _w = Watchdog::new("dropping_a_clone_does_not_shut_down", 60);
    let pool = named_pool("sd-clone-", 2);
    let clone = pool.clone();
    drop(pool);
    assert!(!clone.is_closed());
    let h = clone.spawn(|| 11).expect("pool must stay open while a handle exists");
    assert_eq!(join_timeout(h).ok(), Some(11));
}

#[test]
fn dropping_last_handle_runs_queued_work_and_stops_threads() {
    let _s = serial();
    let _w = Watchdog::new("dropping_last_handle_runs_queued_work_and_stops_threads", 60);
    const P: &str = "sd-drop-";
    let pool = named_pool(P, 2);
    warm_up(&pool, P);
    let gate = block_workers(&pool);
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..1000 {
        let ran = ran.clone();
        pool.submit(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .expect("submit");
    }
    let blocked = pool
        .spawn(|| {
            thread::sleep(Duration::from_millis(10));
            "queued result"
        })
        .expect("spawn");
    let opener = open_gate_later(gate, Duration::from_millis(100));
    drop(pool);
    // A JoinHandle of a task accepted before the drop still resolves.
    assert_eq!(join_timeout(blocked).ok(), Some("queued result"));
    assert!(
        wait_until(THREADS_GONE, || ran.load(Ordering::SeqCst) == 1000),
        "only {} of 1000 queued tasks ran after the last handle was dropped",
        ran.load(Ordering::SeqCst)
    );
    assert_threads_gone(P);
    opener.join().unwrap();
}

#[test]
fn last_handle_dropped_inside_a_task_does_not_deadlock() {
    let _s = serial();
    let _w = Watchdog::new("last_handle_dropped_inside_a_task_does_not_deadlock", 60);
    const P: &str = "sd-intask-";
    let handler_calls = Arc::new(AtomicUsize::new(0));
    let hc = handler_calls.clone();
    let pool = Pool::builder()
        .capacity(2)
        .pin_workers(false)
        .thread_name(|i| format!("{P}{i}"))
        .panic_handler(move |_| {
            hc.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .expect("build");
    warm_up(&pool, P);

    let inner = pool.clone();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<&'static str>();
    pool.submit(move || {
        go_rx.recv_timeout(Duration::from_secs(30)).expect("go signal");
        drop(inner); // the last Pool handle dies on a worker thread
        done_tx.send("dropped").unwrap();
    })
    .expect("submit");
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..100 {
        let ran = ran.clone();
        pool.submit(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .expect("submit");
    }
    drop(pool); // not the last handle: the task still holds one
    go_tx.send(()).unwrap();

    assert_eq!(
        done_rx.recv_timeout(Duration::from_secs(30)),
        Ok("dropped"),
        "the task that dropped the last handle did not get past the drop"
    );
    assert!(
        wait_until(THREADS_GONE, || ran.load(Ordering::SeqCst) == 100),
        "only {} of 100 accepted tasks ran",
        ran.load(Ordering::SeqCst)
    );
    assert_threads_gone(P);
    assert_eq!(
        handler_calls.load(Ordering::SeqCst),
        0,
        "a task panicked while dropping the last handle"
    );
}

#[test]
fn shutdown_from_inside_a_task_returns() {
    let _s = serial();
    let _w = Watchdog::new("shutdown_from_inside_a_task_returns", 60);
    const P: &str = "sd-inside-";
    let pool = named_pool(P, 2);
    warm_up(&pool, P);
    let inner = pool.clone();
    let (tx, rx) = mpsc::channel();
    pool.submit(move || {
        inner.shutdown();
        tx.send(inner.is_closed()).unwrap();
    })
    .expect("submit");
    // Race more submissions against the in-task shutdown: whatever is
    // accepted must run, whatever is refused comes back as Closed.
    let ran = Arc::new(AtomicUsize::new(0));
    let mut accepted = 0;
    for _ in 0..2000 {
        let ran = ran.clone();
        match pool.submit(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        }) {
            Ok(()) => accepted += 1,
            Err(e) => assert!(e.is_closed(), "unexpected error {e:?}"),
        }
    }
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(30)),
        Ok(true),
        "shutdown() called from inside a task did not return (or pool not closed)"
    );
    assert!(pool.is_closed());
    assert!(pool.submit(|| {}).unwrap_err().is_closed());
    pool.shutdown(); // from outside now: must return as well
    assert!(
        wait_until(THREADS_GONE, || ran.load(Ordering::SeqCst) == accepted),
        "{} of {accepted} accepted tasks ran",
        ran.load(Ordering::SeqCst)
    );
    assert_threads_gone(P);
}

#[test]
fn wait_idle_from_inside_a_task_panics() {
    let _s = serial();
    let _w = Watchdog::new("wait_idle_from_inside_a_task_panics", 60);
    let pool = named_pool("sd-widle-", 2);
    let inner = pool.clone();
    let h = pool.spawn(move || inner.wait_idle()).expect("spawn");
    assert!(
        join_timeout(h).is_err(),
        "wait_idle() inside the pool's own task must panic (observed as Err from join)"
    );
    // Also via Pool::current().
    let h = pool
        .spawn(|| Pool::current().expect("inside a worker").wait_idle())
        .expect("spawn");
    assert!(join_timeout(h).is_err());
    // The pool is unharmed.
    let h = pool.spawn(|| 3).expect("spawn");
    assert_eq!(join_timeout(h).ok(), Some(3));
    pool.wait_idle();
    assert_eq!(pool.stats().panicked, 2);
}

#[test]
fn wait_idle_on_another_pool_from_inside_a_task_is_fine() {
    // Only waiting on *your own* pool is forbidden.
    let _s = serial();
    let _w = Watchdog::new("wait_idle_on_another_pool_from_inside_a_task_is_fine", 60);
    let a = named_pool("sd-pa-", 1);
    let b = named_pool("sd-pb-", 1);
    let ran = Arc::new(AtomicUsize::new(0));
    let (b2, r2) = (b.clone(), ran.clone());
    let h = a
        .spawn(move || {
            for _ in 0..10 {
                let r = r2.clone();
                b2.submit(move || {
                    r.fetch_add(1, Ordering::SeqCst);
                })
                .expect("submit to b");
            }
            b2.wait_idle();
            r2.load(Ordering::SeqCst)
        })
        .expect("spawn");
    assert_eq!(join_timeout(h).ok(), Some(10));
}

#[test]
fn scope_and_join_on_closed_pool_run_inline() {
    let _s = serial();
    let _w = Watchdog::new("scope_and_join_on_closed_pool_run_inline", 60);
    let pool = named_pool("sd-inline-", 2);
    pool.shutdown();
    let me = thread::current().id();
    let ids = Mutex::new(Vec::new());
    let mut data = [0u32; 8];
    pool.scope(|s| {
        for x in data.iter_mut() {
            let ids = &ids;
            s.spawn(move || {
                *x = 5;
                ids.lock().unwrap().push(thread::current().id());
            });
        }
    });
    assert_eq!(data, [5; 8], "scope spawns on a closed pool were lost");
    let ids = ids.into_inner().unwrap();
    assert_eq!(ids.len(), 8);
    assert!(
        ids.iter().all(|&t| t == me),
        "closed-pool scope spawns must run on the caller's thread"
    );
    let (a, b) = pool.join(|| thread::current().id(), || thread::current().id());
    assert_eq!((a, b), (me, me));
}
