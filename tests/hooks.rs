//! Thread and task hooks, queue delay and busy time: each hook runs exactly
//! once per event, on the right thread, around every task; a hook's panic
//! is contained; the figures follow what the tasks did.

mod common;
use common::*;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;

use stealpool::{FuncPool, MultiPool, Pool, TaskEvent};

/// What the thread hooks saw: per thread, the index and how often each hook
/// ran on it.
#[derive(Default)]
struct ThreadLog {
    threads: Mutex<HashMap<ThreadId, (usize, usize, usize)>>,
}

impl ThreadLog {
    fn started(&self, index: usize) {
        let mut threads = self.threads.lock().unwrap();
        let entry = threads.entry(thread::current().id()).or_insert((index, 0, 0));
        assert_eq!(entry.0, index, "the same thread started under two indices");
        entry.1 += 1;
    }

    fn stopped(&self, index: usize) {
        let mut threads = self.threads.lock().unwrap();
        let entry = threads.entry(thread::current().id()).or_insert((index, 0, 0));
        assert_eq!(entry.0, index, "stopped under another index than it started");
        entry.2 += 1;
    }

    /// (threads seen, threads whose start and stop both ran exactly once).
    fn counts(&self) -> (usize, usize) {
        let threads = self.threads.lock().unwrap();
        let once = threads.values().filter(|(_, s, e)| (*s, *e) == (1, 1)).count();
        (threads.len(), once)
    }

    fn assert_each_once(&self, when: &str) {
        let threads = self.threads.lock().unwrap();
        for (id, (index, starts, stops)) in threads.iter() {
            assert_eq!(
                (*starts, *stops),
                (1, 1),
                "{when}: thread {id:?} (worker {index}) saw {starts} start(s) and {stops} stop(s)"
            );
        }
    }
}

/// Runs `n` tasks that all wait for each other, so `n` threads must run
/// at once (each task is on its own worker).
fn meet(pool: &Pool, n: usize) {
    let barrier = Arc::new(Barrier::new(n + 1));
    for _ in 0..n {
        let barrier = barrier.clone();
        pool.submit(move || {
            barrier.wait();
        })
        .unwrap();
    }
    barrier.wait();
    pool.wait_idle();
}

#[test]
fn thread_hooks_run_once_per_thread_through_keep_alive_tune_shutdown_and_reboot() {
    let _serial = serial();
    let _watchdog = Watchdog::new("thread hooks", 120);
    let log = Arc::new(ThreadLog::default());
    let (on_start, on_stop) = (log.clone(), log.clone());
    let pool = named_builder("hk-thr-", 2)
        .max_capacity(4)
        .keep_alive(Duration::from_millis(30))
        .on_thread_start(move |i| on_start.started(i))
        .on_thread_stop(move |i| on_stop.stopped(i))
        .build()
        .unwrap();
    let live = || pool.stats().live_workers;

    // Two threads on demand, then keep-alive lets both go.
    meet(&pool, 2);
    assert!(
        wait_until(SOON, || live() == 0),
        "keep-alive did not retire the threads"
    );
    assert!(
        wait_until(SOON, || log.counts() == (2, 2)),
        "after keep-alive: {:?}",
        log.counts()
    );

    // Grow to 4: four new threads; shrink to 1: the suspended ones expire.
    pool.tune(4).unwrap();
    meet(&pool, 4);
    pool.tune(1).unwrap();
    assert!(
        wait_until(SOON, || live() == 0),
        "threads above the shrunk capacity stayed"
    );
    assert!(
        wait_until(SOON, || log.counts() == (6, 6)),
        "after tune: {:?}",
        log.counts()
    );

    // Shutdown with threads live, reboot, new threads, shutdown again.
    pool.tune(2).unwrap();
    meet(&pool, 2);
    pool.shutdown();
    assert!(
        wait_until(SOON, || log.counts() == (8, 8)),
        "after shutdown: {:?}",
        log.counts()
    );
    pool.reboot().unwrap();
    meet(&pool, 2);
    pool.shutdown();
    assert_threads_gone("hk-thr-", "shutdown");
    let (seen, once) = log.counts();
    assert!(seen >= 10, "expected at least 10 threads over the test, saw {seen}");
    assert_eq!(seen, once);
    log.assert_each_once("end");
}

#[test]
fn thread_hooks_with_prealloc_run_on_the_worker_before_its_first_task() {
    let _serial = serial();
    let _watchdog = Watchdog::new("thread hooks prealloc", 60);
    let names = Arc::new(Mutex::new(Vec::new()));
    let seen = names.clone();
    let pool = named_builder("hk-pre-", 3)
        .prealloc(true)
        .on_thread_start(move |i| {
            let name = thread::current().name().map(String::from);
            seen.lock().unwrap().push((i, name));
        })
        .build()
        .unwrap();
    // prealloc: every thread starts at build (each runs its hook on itself).
    assert!(wait_until(SOON, || names.lock().unwrap().len() == 3));
    let mut started = names.lock().unwrap().clone();
    started.sort();
    assert_eq!(
        started,
        (0..3).map(|i| (i, Some(format!("hk-pre-{i}")))).collect::<Vec<_>>()
    );
    pool.shutdown();
}

thread_local! {
    /// A task's place in the hook sequence on its thread: 0 idle, 1 start
    /// hook ran, 2 the task ran.
    static PHASE: std::cell::Cell<u8> = const { std::cell::Cell::new(0) };
    /// The least `ran_for` the running task promised (it slept that long).
    static SLEPT: std::cell::Cell<Duration> = const { std::cell::Cell::new(Duration::ZERO) };
}

/// Counts hook calls and checks their order on each thread: start hook,
/// task, end hook.
#[derive(Default)]
struct TaskLog {
    starts: AtomicU64,
    ends: AtomicU64,
    out_of_order: AtomicU64,
    too_short: AtomicU64,
    implausible: AtomicU64,
    panicked: AtomicU64,
}

impl TaskLog {
    fn start(&self, e: &TaskEvent) {
        self.starts.fetch_add(1, Ordering::SeqCst);
        if PHASE.with(|p| p.replace(1)) != 0 || e.ran_for() != Duration::ZERO || e.panicked() {
            self.out_of_order.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn end(&self, e: &TaskEvent) {
        if PHASE.with(|p| p.replace(0)) != 2 {
            self.out_of_order.fetch_add(1, Ordering::SeqCst);
        }
        if e.ran_for() < SLEPT.with(|s| s.replace(Duration::ZERO)) {
            self.too_short.fetch_add(1, Ordering::SeqCst);
        }
        // A generous bound: nothing here runs for seconds.
        if e.ran_for() > Duration::from_secs(30) {
            self.implausible.fetch_add(1, Ordering::SeqCst);
        }
        if e.panicked() {
            self.panicked.fetch_add(1, Ordering::SeqCst);
        }
        self.ends.fetch_add(1, Ordering::SeqCst);
    }
}

/// The body of every task in the task-hook tests: checks that the start
/// hook ran just before it on this thread.
fn task_body(log: &TaskLog, sleep: Duration) {
    if PHASE.with(|p| p.replace(2)) != 1 {
        log.out_of_order.fetch_add(1, Ordering::SeqCst);
    }
    if !sleep.is_zero() {
        thread::sleep(sleep);
        SLEPT.with(|s| s.set(sleep));
    }
}

#[test]
fn task_hooks_see_every_task_once_in_order_with_plausible_durations() {
    let _serial = serial();
    let _watchdog = Watchdog::new("task hooks", 120);
    let log = Arc::new(TaskLog::default());
    let (a, b) = (log.clone(), log.clone());
    let pool = named_builder("hk-task-", 2)
        .panic_handler(|_| ())
        .on_task_start(move |e| a.start(e))
        .on_task_end(move |e| b.end(e))
        .build()
        .unwrap();
    let mut tasks = 0u64;
    // Outside submits, a few of them sleeping (ran_for must cover it).
    for i in 0..1_000u64 {
        let log = log.clone();
        let sleep = if i % 100 == 0 {
            Duration::from_millis(3)
        } else {
            Duration::ZERO
        };
        pool.submit(move || task_body(&log, sleep)).unwrap();
        tasks += 1;
    }
    // Spawns, and submits from inside tasks.
    let handles: Vec<_> = (0..100)
        .map(|_| {
            let log = log.clone();
            let inner = pool.clone();
            tasks += 2;
            pool.spawn(move || {
                task_body(&log, Duration::ZERO);
                let log2 = log.clone();
                inner.submit(move || task_body(&log2, Duration::ZERO)).unwrap();
            })
            .unwrap()
        })
        .collect();
    for handle in handles {
        join_timeout(handle).unwrap();
    }
    // Scope spawns.
    pool.scope(|s| {
        for _ in 0..100 {
            let log = &log;
            s.spawn(move || task_body(log, Duration::ZERO));
        }
    });
    tasks += 100;
    // Panicking tasks: the end hook sees them, once each.
    for _ in 0..10 {
        let log = log.clone();
        pool.submit(move || {
            task_body(&log, Duration::ZERO);
            panic!("expected test panic");
        })
        .unwrap();
        tasks += 1;
    }
    pool.wait_idle();
    // wait_idle returned: every end hook has run (a task counts as done
    // only after its end hook).
    assert_eq!(log.starts.load(Ordering::SeqCst), tasks);
    assert_eq!(log.ends.load(Ordering::SeqCst), tasks);
    assert_eq!(log.out_of_order.load(Ordering::SeqCst), 0, "hook/task order broken");
    assert_eq!(
        log.too_short.load(Ordering::SeqCst),
        0,
        "ran_for shorter than the task slept"
    );
    assert_eq!(log.implausible.load(Ordering::SeqCst), 0);
    assert_eq!(log.panicked.load(Ordering::SeqCst), 10);
    assert_eq!(pool.stats().completed, tasks);
    pool.shutdown();
}

#[test]
fn a_spawned_task_that_panics_is_reported_as_panicked() {
    let _serial = serial();
    let panicked = Arc::new(AtomicU64::new(0));
    let seen = panicked.clone();
    let pool = named_builder("hk-spp-", 1)
        .on_task_end(move |e| {
            if e.panicked() {
                seen.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build()
        .unwrap();
    let handle = pool.spawn(|| panic!("expected test panic")).unwrap();
    assert!(join_timeout(handle).is_err());
    pool.spawn(|| ()).unwrap().join().unwrap();
    pool.wait_idle();
    assert_eq!(panicked.load(Ordering::SeqCst), 1);
    pool.shutdown();
}

#[test]
fn queue_delay_p99_shows_a_task_held_back_in_the_queue() {
    let _serial = serial();
    let _watchdog = Watchdog::new("queue delay", 60);
    let queued = Arc::new(Mutex::new(Vec::new()));
    let seen = queued.clone();
    let pool = named_builder("hk-qd-", 1)
        .measure_queue_delay(true)
        .on_task_start(move |e| seen.lock().unwrap().push(e.queued_for()))
        .build()
        .unwrap();
    assert_eq!(pool.stats().queue_delay.map(|d| d.count), Some(0));
    // 99 tasks run at once; then the only worker is held for 200 ms while
    // one more task waits behind it.
    for _ in 0..99 {
        pool.submit(|| ()).unwrap();
    }
    pool.wait_idle();
    let (tx, rx) = mpsc::channel();
    pool.submit(move || {
        tx.send(()).unwrap();
        thread::sleep(Duration::from_millis(200));
    })
    .unwrap();
    rx.recv_timeout(SOON).unwrap();
    pool.submit(|| ()).unwrap();
    pool.wait_idle();
    let delay = pool.stats().queue_delay.expect("measured");
    assert_eq!(delay.count, 101);
    // The held-back task waited at least ~the 200 ms the blocker slept
    // after it was submitted (the sleep had begun before the submit).
    assert!(delay.max >= Duration::from_millis(150), "{delay:?}");
    // The figures are exactly those of the waits the hook was told
    // (nearest rank: p99 of 101 samples is the 100th smallest).
    let mut waits = queued.lock().unwrap().clone();
    assert_eq!(waits.len(), 101);
    waits.sort();
    assert_eq!(delay.max, *waits.last().unwrap());
    assert_eq!(delay.p99, waits[99]);
    assert_eq!(delay.p50, waits[50]);
    assert_eq!(delay.total, waits.iter().sum::<Duration>());
    assert!(delay.p50 < Duration::from_millis(150), "{delay:?}");
    pool.shutdown();
}

#[test]
fn queue_delay_p99_reflects_delayed_tasks_beyond_one_percent() {
    let _serial = serial();
    let _watchdog = Watchdog::new("queue delay p99", 60);
    let pool = named_builder("hk-qd2-", 1).measure_queue_delay(true).build().unwrap();
    // 100 quick tasks, then 5 that wait behind a 200 ms blocker: 5 of 105
    // waited long, more than 1 %, so p99 must be long too.
    for _ in 0..100 {
        pool.submit(|| ()).unwrap();
    }
    pool.wait_idle();
    let gate = block_worker(&pool);
    for _ in 0..5 {
        pool.submit(|| ()).unwrap();
    }
    thread::sleep(Duration::from_millis(200));
    gate.open();
    pool.wait_idle();
    let delay = pool.stats().queue_delay.unwrap();
    assert_eq!(delay.count, 106);
    assert!(delay.p99 >= Duration::from_millis(150), "{delay:?}");
    assert!(delay.p50 < Duration::from_millis(150), "{delay:?}");
    pool.shutdown();
}

#[test]
fn without_measuring_there_is_no_queue_delay_and_hooks_see_zero() {
    let _serial = serial();
    let zero = Arc::new(AtomicBool::new(true));
    let z = zero.clone();
    let pool = named_builder("hk-nqd-", 1)
        .on_task_start(move |e| {
            if e.queued_for() != Duration::ZERO {
                z.store(false, Ordering::SeqCst);
            }
        })
        .build()
        .unwrap();
    pool.submit(|| thread::sleep(Duration::from_millis(5))).unwrap();
    pool.submit(|| ()).unwrap();
    pool.wait_idle();
    assert!(zero.load(Ordering::SeqCst));
    assert_eq!(pool.stats().queue_delay, None);
    pool.shutdown();
}

#[test]
fn busy_time_adds_up_per_worker_and_grows_during_a_long_task() {
    let _serial = serial();
    let _watchdog = Watchdog::new("busy time", 60);
    let pool = named_builder("hk-busy-", 2).build().unwrap();
    assert_eq!(pool.stats().busy_time, Duration::ZERO);
    for _ in 0..4 {
        pool.submit(|| thread::sleep(Duration::from_millis(50))).unwrap();
    }
    pool.wait_idle();
    // A stretch ends when the worker parks: wait for both to park.
    let parked = |pool: &Pool| {
        let st = pool.stats();
        st.sleeping_workers == st.live_workers
    };
    assert!(wait_until(SOON, || parked(&pool)));
    let stats = pool.stats();
    let workers = pool.worker_stats();
    // Four 50 ms sleeps: at least 200 ms of busy time in all, and far
    // less than the time the workers were parked since (a generous bound).
    assert!(stats.busy_time >= Duration::from_millis(200), "{stats:?}");
    assert!(stats.busy_time < Duration::from_secs(5), "{stats:?}");
    let per_worker: Duration = workers.iter().map(|w| w.busy_time).sum();
    // The pool's figure is the sum of the workers' (read a moment later:
    // at least as large, and equal but for a worker just parking).
    assert!(per_worker >= stats.busy_time, "{per_worker:?} < {:?}", stats.busy_time);
    assert!(per_worker - stats.busy_time < Duration::from_millis(100));
    assert_eq!(workers.iter().map(|w| w.tasks_run).sum::<u64>(), 4);
    // While a task runs, the figure grows without waiting for it to end.
    let before = pool.stats().busy_time;
    let gate = block_worker(&pool);
    thread::sleep(Duration::from_millis(50));
    let during = pool.stats().busy_time;
    assert!(during >= before + Duration::from_millis(40), "{before:?} -> {during:?}");
    gate.open();
    pool.wait_idle();
    assert!(wait_until(SOON, || parked(&pool)));
    // Parked: it stays put.
    let idle = pool.stats().busy_time;
    thread::sleep(Duration::from_millis(100));
    // Two workers counted as busy while parked would add 200 ms; a worker
    // that announced its sleep but had not closed its stretch yet adds
    // microseconds.
    let later = pool.stats().busy_time;
    assert!(later - idle < Duration::from_millis(20), "{idle:?} -> {later:?}");
    pool.shutdown();
}

#[test]
fn hook_panics_are_contained_counted_and_handed_to_the_panic_handler() {
    let _serial = serial();
    let _watchdog = Watchdog::new("hook panics", 60);
    let handled = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let h = handled.clone();
    let pool = named_builder("hk-hp-", 2)
        .panic_handler(move |payload| {
            assert_eq!(panic_message(&*payload).as_deref(), Some("expected hook panic"));
            h.fetch_add(1, Ordering::SeqCst);
        })
        .on_thread_start(|_| panic!("expected hook panic"))
        .on_thread_stop(|_| panic!("expected hook panic"))
        .on_task_start(|_| panic!("expected hook panic"))
        .on_task_end(|_| panic!("expected hook panic"))
        .build()
        .unwrap();
    for _ in 0..50 {
        let ran = ran.clone();
        pool.submit(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    pool.wait_idle();
    // Every task ran despite both task hooks panicking around it.
    assert_eq!(ran.load(Ordering::SeqCst), 50);
    let threads = pool.stats().live_workers;
    assert!(threads >= 1);
    // The workers survived: more tasks run.
    let r = ran.clone();
    pool.spawn(move || r.fetch_add(1, Ordering::SeqCst))
        .unwrap()
        .join()
        .unwrap();
    pool.wait_idle();
    let stats = pool.stats();
    assert_eq!(stats.panicked, 0, "no task panicked");
    pool.shutdown();
    let started = threads as u64; // threads live before shutdown, each ran both thread hooks
    let stats_after = pool.stats();
    // 51 tasks x 2 task hooks, plus a start and a stop per thread.
    assert!(stats_after.hook_panics >= 102 + 2 * started, "{stats_after:?}");
    assert_eq!(stats_after.hook_panics, handled.load(Ordering::SeqCst) as u64);
    assert_eq!(stats.completed, 51);
}

#[test]
fn funcpool_and_multipool_run_the_hooks_too() {
    let _serial = serial();
    let _watchdog = Watchdog::new("funcpool and multipool hooks", 60);
    let (starts, ends, threads) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let (s, e, t) = (starts.clone(), ends.clone(), threads.clone());
    let fp = FuncPool::builder()
        .capacity(2)
        .pin_workers(false)
        .measure_queue_delay(true)
        .on_thread_start(move |_| {
            t.fetch_add(1, Ordering::SeqCst);
        })
        .on_task_start(move |_| {
            s.fetch_add(1, Ordering::SeqCst);
        })
        .on_task_end(move |_| {
            e.fetch_add(1, Ordering::SeqCst);
        })
        .build(|_: u64| ())
        .unwrap();
    for i in 0..500 {
        fp.invoke(i).unwrap();
    }
    fp.wait_idle();
    assert_eq!(starts.load(Ordering::SeqCst), 500);
    assert_eq!(ends.load(Ordering::SeqCst), 500);
    assert!(threads.load(Ordering::SeqCst) >= 1);
    assert_eq!(fp.stats().queue_delay.map(|d| d.count), Some(500));
    fp.shutdown();

    let per_pool: Arc<Vec<AtomicU64>> = Arc::new((0..3).map(|_| AtomicU64::new(0)).collect());
    let stops = Arc::new(AtomicU64::new(0));
    let (p, st) = (per_pool.clone(), stops.clone());
    let mp = MultiPool::builder()
        .pools(3)
        .capacity_per_pool(1)
        .measure_queue_delay(true)
        .on_task_end(move |pool, _| {
            p[pool].fetch_add(1, Ordering::SeqCst);
        })
        .on_thread_stop(move |pool, worker| {
            assert!(pool < 3 && worker == 0);
            st.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    for i in 0..3 {
        for _ in 0..10 {
            mp.pool(i).expect("sub-pool").submit(|| ()).unwrap();
        }
    }
    mp.wait_idle();
    let counts: Vec<u64> = per_pool.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    assert_eq!(counts, [10, 10, 10], "each sub-pool's hook is told its index");
    assert_eq!(mp.stats().queue_delay.map(|d| d.count), Some(30));
    mp.shutdown();
    assert_eq!(stops.load(Ordering::SeqCst), 3);
}

#[test]
fn shutdown_now_hands_back_measured_tasks_unwrapped() {
    let _serial = serial();
    let _watchdog = Watchdog::new("shutdown_now measured", 60);
    let fp = FuncPool::builder()
        .capacity(1)
        .pin_workers(false)
        .measure_queue_delay(true)
        .build(|ms: u64| thread::sleep(Duration::from_millis(ms)))
        .unwrap();
    fp.invoke(100).unwrap();
    for i in 0..20 {
        fp.invoke(i).unwrap();
    }
    let back = fp.shutdown_now();
    // Arguments come back as they went in (the stamp is not in the way):
    // the ones not yet started, each once. (In no promised order: a worker
    // may hold a batch of them in its deque, handed back after the
    // injector's.)
    let sent: Vec<u64> = std::iter::once(100).chain(0..20).collect();
    assert!(back.len() >= 19, "{back:?}");
    let mut sorted = back.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), back.len(), "an argument came back twice: {back:?}");
    assert!(back.iter().all(|arg| sent.contains(arg)), "{back:?}");
    // What did not come back ran (at most the one the worker had started).
    assert!(sent.len() - back.len() <= 1, "{back:?}");
    let pool = named_builder("hk-sn-", 1).measure_queue_delay(true).build().unwrap();
    let gate = block_worker(&pool);
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..5 {
        let ran = ran.clone();
        pool.submit(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    // shutdown_now waits for the running blocker: open its gate meanwhile.
    let opener = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        gate.open();
    });
    let tasks = pool.shutdown_now();
    opener.join().unwrap();
    assert_eq!(tasks.len(), 5);
    for task in tasks {
        task.run();
    }
    assert_eq!(ran.load(Ordering::SeqCst), 5);
}

#[test]
fn a_cancelled_task_gets_no_task_hooks_and_is_counted_cancelled() {
    let _serial = serial();
    let _watchdog = Watchdog::new("cancelled task and hooks", 60);
    let starts = Arc::new(AtomicU64::new(0));
    let seen = starts.clone();
    let pool = named_builder("hk-cancel-", 1)
        .measure_queue_delay(true)
        .on_task_start(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    // Hold the only worker, queue a task behind it, cancel that task.
    let (hold_tx, hold_rx) = mpsc::channel::<()>();
    let (held_tx, held_rx) = mpsc::channel::<()>();
    pool.submit(move || {
        held_tx.send(()).unwrap();
        let _ = hold_rx.recv();
    })
    .unwrap();
    held_rx.recv().unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    let queued = pool.spawn(move || flag.store(true, Ordering::SeqCst)).unwrap();
    assert!(queued.cancel(), "a task queued behind a held worker had not started");
    hold_tx.send(()).unwrap();
    pool.wait_idle();
    assert!(!ran.load(Ordering::SeqCst), "a cancelled task ran");
    let stats = pool.stats();
    assert_eq!(stats.cancelled, 1);
    // Only the holding task started (the cancelled one is dropped unrun,
    // even in a pool that stamps and observes every task).
    assert_eq!(starts.load(Ordering::SeqCst), 1);
    pool.shutdown();
}
