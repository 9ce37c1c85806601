//! Leaks: no worker thread outlives the pool however it ends
//! (shutdown, the last handle dropped outside or inside a task,
//! `shutdown_now`, keep-alive expiry), the pool's own state is freed with
//! its last handle, nothing a task captured is kept after the task ran or
//! was handed back and dropped, and memory does not keep growing over
//! bursts of many small tasks.
//!
//! "The pool's state is freed" is observed through a sentinel `Arc` that the
//! `thread_name` and `panic_handler` closures capture: the pool keeps those
//! closures until its shared state is dropped, so the sentinel's strong count
//! falls back to 1 only then (a reference cycle or a worker thread that never
//! exits would keep it up).
//!
//! Worker threads are identified by their OS thread name (set through
//! `Builder::thread_name`, read back from /proc/self/task/*/comm), with a
//! prefix unique to each test. All tests in this file run one at a time
//! (SERIAL): thread counts and the memory figures of one test must not be
//! disturbed by another.
//!
//! Under valgrind (definite leaks), a quick subset:
//!
//! ```text
//! valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1 \
//!     target/debug/deps/leaks-<hash> no_thread_left --test-threads=1
//! ```

use std::fs;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use stealpool::{FuncPool, Pool, Task};

mod common;
use common::*;

/// Checks that the pool whose closures captured `sentinel` was freed.
fn assert_pool_freed(sentinel: &Arc<()>, when: &str) {
    assert!(
        wait_until(SOON, || Arc::strong_count(sentinel) == 1),
        "the pool's shared state is still alive {when} ({} references to its closures' captures)",
        Arc::strong_count(sentinel) - 1
    );
}

/// A builder whose closures capture the returned sentinel.
fn tracked(prefix: &'static str, capacity: usize) -> (stealpool::Builder, Arc<()>) {
    let sentinel = Arc::new(());
    let (s1, s2) = (sentinel.clone(), sentinel.clone());
    let builder = Pool::builder()
        .capacity(capacity)
        .pin_workers(false)
        .thread_name(move |i| {
            let _ = &s1;
            format!("{prefix}{i}")
        })
        .panic_handler(move |_| {
            let _ = &s2;
        });
    (builder, sentinel)
}

/// Submits `k` tasks that wait until all `k` run at once, so `k` worker
/// threads exist when it returns.
fn rendezvous(pool: &Pool, k: usize) {
    let arrived = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    for _ in 0..k {
        let (arrived, tx) = (arrived.clone(), tx.clone());
        pool.submit(move || {
            arrived.fetch_add(1, Ordering::SeqCst);
            let met = wait_until(Duration::from_secs(30), || arrived.load(Ordering::SeqCst) >= k);
            let _ = tx.send(met);
        })
        .expect("submit rendezvous task");
    }
    for i in 0..k {
        let met = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("only {i} of {k} rendezvous tasks finished"));
        assert!(met, "the pool never ran {k} tasks at once");
    }
}

#[test]
fn no_thread_left_after_shutdown() {
    // Also: shutdown.rs `graceful_shutdown_runs_all_queued_work_and_joins_threads`,
    // lifecycle.rs `no_thread_outlives_shutdown_from_any_state`.
    let _s = serial();
    let _w = Watchdog::new("no_thread_left_after_shutdown", 120);
    for prealloc in [false, true] {
        const P: &str = "lk-sd-";
        let (builder, sentinel) = tracked(P, 3);
        let pool = builder.max_capacity(4).prealloc(prealloc).build().expect("build");
        rendezvous(&pool, 3);
        assert_eq!(threads_named(P), 3);
        pool.shutdown();
        // shutdown joined them: gone at once, no polling needed.
        assert_eq!(threads_named(P), 0, "prealloc={prealloc}: threads alive after shutdown");
        assert_eq!(pool.stats().live_workers, 0);
        drop(pool);
        assert_eq!(
            Arc::strong_count(&sentinel),
            1,
            "prealloc={prealloc}: pool state not freed"
        );
    }
}

#[test]
fn no_thread_left_after_the_last_handle_drops_outside() {
    // Also: shutdown.rs `dropping_last_handle_runs_queued_work_and_stops_threads`.
    let _s = serial();
    let _w = Watchdog::new("no_thread_left_after_the_last_handle_drops_outside", 120);
    const P: &str = "lk-drop-";
    let (builder, sentinel) = tracked(P, 2);
    let pool = builder.build().expect("build");
    rendezvous(&pool, 2);
    // Clones dropped on other threads first.
    let clones: Vec<_> = (0..4).map(|_| pool.clone()).collect();
    for clone in clones {
        thread::spawn(move || drop(clone)).join().unwrap();
    }
    assert_eq!(threads_named(P), 2, "dropping clones must not shut the pool down");
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..1000 {
        let ran = ran.clone();
        pool.submit(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .expect("submit");
    }
    drop(pool); // the last handle: a graceful shutdown that joins
    assert_eq!(ran.load(Ordering::SeqCst), 1000, "accepted work lost at the last drop");
    assert_eq!(threads_named(P), 0, "threads alive after the last handle dropped");
    assert_eq!(
        Arc::strong_count(&sentinel),
        1,
        "pool state not freed after the last handle dropped"
    );
    assert_eq!(Arc::strong_count(&ran), 1, "a task's captures were kept");
}

#[test]
fn no_thread_left_after_the_last_handle_drops_inside_a_task() {
    // Also: shutdown.rs `last_handle_dropped_inside_a_task_does_not_deadlock`.
    let _s = serial();
    let _w = Watchdog::new("no_thread_left_after_the_last_handle_drops_inside_a_task", 120);
    const P: &str = "lk-dropin-";
    let (builder, sentinel) = tracked(P, 2);
    let pool = builder.build().expect("build");
    rendezvous(&pool, 2);
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel();
    let inner = pool.clone();
    pool.submit(move || {
        go_rx.recv_timeout(Duration::from_secs(30)).expect("go");
        drop(inner); // the last handle dies on a worker thread
        done_tx.send(()).unwrap();
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
    drop(pool); // not the last: the task holds one
    assert_eq!(threads_named(P), 2);
    go_tx.send(()).unwrap();
    done_rx
        .recv_timeout(SOON)
        .expect("the task that dropped the last handle did not go on");
    // Nobody joins them: the workers drain the queue and exit by themselves.
    assert_threads_gone(P, "after the last handle dropped inside a task");
    assert_eq!(ran.load(Ordering::SeqCst), 100, "accepted work lost");
    assert_pool_freed(&sentinel, "after its workers exited");
    assert_eq!(Arc::strong_count(&ran), 1, "a task's captures were kept");
}

#[test]
fn no_thread_left_after_shutdown_now_and_dropped_tasks_free_their_captures() {
    // Also: lifecycle.rs `shutdown_now_hands_back_every_queued_task`,
    // `dropping_a_handed_back_spawn_task_fails_its_join_handle`.
    let _s = serial();
    let _w = Watchdog::new(
        "no_thread_left_after_shutdown_now_and_dropped_tasks_free_their_captures",
        120,
    );
    const P: &str = "lk-now-";
    let (builder, sentinel) = tracked(P, 1);
    let pool = builder.build().expect("build");
    let gate = block_worker(&pool);
    let capture = Arc::new(());
    for _ in 0..1000 {
        let c = capture.clone();
        pool.submit(move || drop(c)).expect("submit");
    }
    let c = capture.clone();
    let spawned = pool.spawn(move || drop(c)).expect("spawn");
    assert_eq!(Arc::strong_count(&capture), 1002);
    let (tx, rx) = mpsc::channel::<Vec<Task>>();
    let p = pool.clone();
    let stopper = thread::spawn(move || tx.send(p.shutdown_now()).unwrap());
    assert!(
        wait_until(SOON, || pool.stats().queued == 0),
        "shutdown_now did not empty the queue"
    );
    gate.open();
    let tasks = rx.recv_timeout(SOON).expect("shutdown_now did not return");
    stopper.join().unwrap();
    assert_eq!(tasks.len(), 1001);
    assert_eq!(threads_named(P), 0, "threads alive after shutdown_now");
    drop(tasks); // unrun: the closures and what they captured are dropped
    assert_eq!(Arc::strong_count(&capture), 1, "dropped Tasks kept their captures");
    assert!(spawned.join().is_err(), "a dropped spawn Task fails its JoinHandle");
    drop(pool);
    assert_eq!(Arc::strong_count(&sentinel), 1, "pool state not freed");
}

#[test]
fn no_thread_left_after_keep_alive_expiry() {
    // Also: capacity.rs `keep_alive_retires_idle_threads_down_to_min_workers`.
    let _s = serial();
    let _w = Watchdog::new("no_thread_left_after_keep_alive_expiry", 120);
    const P: &str = "lk-ka-";
    const KEEP_ALIVE: Duration = Duration::from_millis(50);
    let (builder, sentinel) = tracked(P, 3);
    let pool = builder.min_workers(0).keep_alive(KEEP_ALIVE).build().expect("build");
    for round in 0..3 {
        rendezvous(&pool, 3);
        // The pool stays open; its idle threads leave on their own...
        assert_threads_gone(P, &format!("(round {round}) after keep-alive expiry"));
        assert!(
            wait_until(SOON, || pool.stats().live_workers == 0),
            "{:?}",
            pool.stats()
        );
        assert!(!pool.is_closed());
        // ... and an idle pool starts none again by itself.
        thread::sleep(KEEP_ALIVE * 4);
        assert_eq!(threads_named(P), 0, "(round {round}) an idle pool started a thread");
    }
    // Threads come back on demand, then the last handle ends it all.
    rendezvous(&pool, 2);
    drop(pool);
    assert_eq!(threads_named(P), 0, "threads alive after the last handle dropped");
    assert_eq!(Arc::strong_count(&sentinel), 1, "pool state not freed");
}

#[test]
fn no_thread_left_by_a_func_pool_and_its_states_and_arguments_are_dropped() {
    // Also: func_pool.rs `states_are_dropped_when_idle_threads_expire`.
    let _s = serial();
    let _w = Watchdog::new(
        "no_thread_left_by_a_func_pool_and_its_states_and_arguments_are_dropped",
        120,
    );
    const P: &str = "lk-fp-";
    let states = Arc::new(()); // each state holds a clone
    let args = Arc::new(()); // each argument holds a clone
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Arc::new(Mutex::new(release_rx));
    let s = states.clone();
    let fp = FuncPool::builder()
        .capacity(2)
        .pin_workers(false)
        .thread_name(|i| format!("{P}{i}"))
        .build_with_state(
            move || s.clone(),
            move |_state: &mut Arc<()>, (hold, _arg): (bool, Arc<()>)| {
                if hold {
                    let _ = release_rx.lock().unwrap().recv_timeout(Duration::from_secs(60));
                }
            },
        )
        .expect("build");
    for _ in 0..1000 {
        fp.invoke((false, args.clone())).unwrap_or_else(|_| panic!("refused"));
    }
    fp.wait_idle();
    assert_eq!(Arc::strong_count(&args), 1, "run arguments were kept");
    // The sentinel itself, the factory's capture, and one per worker state.
    assert!(Arc::strong_count(&states) > 2, "no state was made");
    // Both workers held, then arguments queued and handed back unrun.
    fp.invoke((true, args.clone())).unwrap_or_else(|_| panic!("refused"));
    fp.invoke((true, args.clone())).unwrap_or_else(|_| panic!("refused"));
    assert!(wait_until(SOON, || fp.stats().busy_workers == 2));
    for _ in 0..100 {
        fp.invoke((false, args.clone())).unwrap_or_else(|_| panic!("refused"));
    }
    let releaser = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        drop(release_tx);
    });
    let back = fp.shutdown_now();
    releaser.join().unwrap();
    assert_eq!(back.len(), 100);
    drop(back);
    assert_eq!(Arc::strong_count(&args), 1, "handed-back arguments were kept");
    assert_threads_gone(P, "after FuncPool::shutdown_now");
    assert_eq!(fp.stats().live_states, 0);
    assert_eq!(
        Arc::strong_count(&states),
        2,
        "states outlived their threads (1 + the factory's)"
    );
    drop(fp);
    assert_eq!(
        Arc::strong_count(&states),
        1,
        "the FuncPool's factory was not freed with its last handle"
    );
}

/// The process's resident set size in KiB.
fn rss_kib() -> usize {
    let status = fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS line");
    line.split_whitespace()
        .nth(1)
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS value")
}

/// Memory returns after bursts of many small tasks: 20 bursts of `BURST`
/// tasks. In each, both workers are held while the tasks are submitted, so
/// the whole burst sits in the queue at once (boxed closures and the
/// injector's blocks: tens of MiB at the peak), then they are released and
/// run it, then `wait_idle`. RSS may rise over the first bursts (the
/// allocator's arenas and caches reach their working size), so the baseline
/// is the RSS after burst 5; after burst 20 it must be within max(16 MiB,
/// 25 %) of it. A leak of even one small allocation per task (a boxed closure
/// is a 32-byte malloc chunk) over the 15 bursts in between would add
/// 15 x BURST x 32 B, about 229 MiB at 500k per burst, far above the bound; a
/// leak of the queue's blocks would add the burst's peak each time.
/// (RSS does not fall back after a burst: glibc keeps the freed chunks in its
/// arenas for reuse. Observed on 2 cores: about 39 MiB with a burst queued,
/// the same after it ran, +28 KiB from burst 5 to burst 20.) Allocator noise (fragmentation, per-thread caches, whether glibc trims the
/// heap) is a few MiB.
///
/// BURST is 500k, not 1M, to keep the test near 10 s in a debug build on 2
/// cores; the bound scales with it.
#[test]
fn memory_does_not_grow_over_bursts_of_small_tasks() {
    let _s = serial();
    let _w = Watchdog::new("memory_does_not_grow_over_bursts_of_small_tasks", 240);
    const P: &str = "lk-mem-";
    const BURSTS: usize = 20;
    const BURST: usize = 500_000;
    const BASELINE_AFTER: usize = 5;
    let (builder, sentinel) = tracked(P, 2);
    let pool = builder.build().expect("build");
    let ran = Arc::new(AtomicUsize::new(0));
    let mut peak = Vec::with_capacity(BURSTS);
    let mut rss = Vec::with_capacity(BURSTS);
    let t0 = Instant::now();
    for _ in 0..BURSTS {
        let gates = [block_worker(&pool), block_worker(&pool)];
        for i in 0..BURST {
            let ran = ran.clone();
            pool.submit(move || {
                std::hint::black_box(i);
                ran.fetch_add(1, Ordering::Relaxed);
            })
            .expect("submit");
        }
        peak.push(rss_kib());
        drop(gates);
        pool.wait_idle();
        rss.push(rss_kib());
    }
    let took = t0.elapsed();
    assert_eq!(ran.load(Ordering::Relaxed), BURSTS * BURST, "tasks lost");
    let base = rss[BASELINE_AFTER - 1];
    let last = rss[BURSTS - 1];
    let bound = base + (16 * 1024).max(base / 4);
    println!("{BURSTS} bursts of {BURST} queued tasks in {took:?}");
    println!("VmRSS with the burst queued (KiB): {peak:?}");
    println!("VmRSS after each burst ran (KiB): {rss:?}");
    println!("after burst {BASELINE_AFTER}: {base} KiB, after burst {BURSTS}: {last} KiB, bound {bound} KiB");
    assert!(
        last <= bound,
        "RSS keeps growing over task bursts: {base} KiB after burst {BASELINE_AFTER}, {last} KiB after burst \
         {BURSTS} (bound {bound} KiB); all: {rss:?}"
    );
    pool.shutdown();
    assert_eq!(threads_named(P), 0);
    drop(pool);
    assert_eq!(Arc::strong_count(&sentinel), 1, "pool state not freed");
    assert_eq!(Arc::strong_count(&ran), 1, "a task's captures were kept");
}

/// Cancelled spawns, a dropped `TaskSet`, a dropped waiting `submit_async`
/// future and `shutdown_background` with the last handle dropped: every
/// closure and what it captured is freed (the cancelled jobs when the worker
/// reaches them), the threads exit on their own, and the pool's state goes.
#[test]
fn no_thread_left_after_cancellations_and_shutdown_background_and_captures_are_freed() {
    let _s = serial();
    let _w = Watchdog::new("no_thread_left_after_cancellations", 120);
    const P: &str = "lk-cancel-";
    let (builder, sentinel) = tracked(P, 1);
    let pool = builder.queue_limit(300).build().expect("build");
    let gate = block_worker(&pool);
    let capture = Arc::new(());
    let mut handles = Vec::new();
    for _ in 0..100 {
        let c = capture.clone();
        handles.push(pool.spawn(move || drop(c)).expect("spawn"));
    }
    assert!(handles.iter().all(|h| h.cancel()), "queued tasks are cancellable");
    let mut set = stealpool::TaskSet::new(&pool);
    for _ in 0..100 {
        let c = capture.clone();
        set.spawn(move || drop(c)).expect("spawn into the set");
    }
    drop(set);
    // 300 waiting + 1 running: the queue is full.
    for _ in 0..100 {
        let c = capture.clone();
        pool.submit(move || drop(c)).expect("fill the queue");
    }
    {
        // The queue is full: this future waits, then is dropped unpolled.
        let c = capture.clone();
        let waker = std::task::Waker::from(Arc::new(NoWake));
        let mut cx = std::task::Context::from_waker(&waker);
        let mut submit = std::pin::pin!(pool.submit_async(move || drop(c)));
        assert!(std::future::Future::poll(submit.as_mut(), &mut cx).is_pending());
    }
    pool.shutdown_background();
    drop(pool);
    gate.open();
    assert!(
        wait_until(SOON, || threads_named(P) == 0),
        "threads alive after shutdown_background"
    );
    assert_eq!(
        Arc::strong_count(&capture),
        1,
        "a cancelled or dropped task kept its captures"
    );
    for handle in handles {
        assert!(handle.join().unwrap_err().is_cancelled());
    }
    assert_pool_freed(&sentinel, "after shutdown_background and the last drop");
}

struct NoWake;

impl std::task::Wake for NoWake {
    fn wake(self: Arc<Self>) {}
}
