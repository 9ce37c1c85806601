//! `FuncPool`: arguments handed back on every refusal, no allocation per
//! invoke once warm, per-worker state made at most once per worker thread,
//! rebuilt after a failed health check, dropped when threads exit; the
//! capacity features work the same as on `Pool`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use stealpool::{BuildError, FuncPool, Pool, SubmitError};

mod common;
use common::*;

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{Counting, ALLOCATIONS};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Polls `cond` every millisecond for up to `timeout`.
fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
    true
}

#[test]
fn invoke_allocates_nothing_per_task_once_warm() {
    let _s = serial();
    const N: usize = 100_000;
    let total = Arc::new(AtomicU64::new(0));
    let sum = total.clone();
    let fp = FuncPool::builder()
        .capacity(2)
        .pin_workers(false)
        .build(move |n: u64| {
            sum.fetch_add(n, Ordering::Relaxed);
        })
        .unwrap();
    // Warm up: argument slots, deques and threads exist afterwards.
    for n in 0..N as u64 {
        fp.invoke(n).unwrap();
    }
    fp.wait_idle();

    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for n in 0..N as u64 {
        fp.invoke(n).unwrap();
    }
    fp.wait_idle();
    let invoke_allocs = ALLOCATIONS.load(Ordering::SeqCst) - before;
    assert_eq!(total.load(Ordering::Relaxed), 2 * (0..N as u64).sum::<u64>());

    // The same with Pool::submit: a closure of two words (an `Arc` and a
    // `u64` here) is stored in the job itself, so it allocates no more than
    // `invoke` does; a larger one takes a job block per task, which (from an
    // outside thread, whose block cache the workers never refill) comes from
    // the allocator.
    let pool = Pool::builder().capacity(2).pin_workers(false).build().unwrap();
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for n in 0..N as u64 {
        let total = total.clone();
        pool.submit(move || {
            total.fetch_add(n, Ordering::Relaxed);
        })
        .unwrap();
    }
    pool.wait_idle();
    let small_allocs = ALLOCATIONS.load(Ordering::SeqCst) - before;
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for n in 0..N as u64 {
        let total = total.clone();
        let extra = n % 2;
        pool.submit(move || {
            // Three words: `total`, `n` and `extra`.
            total.fetch_add(n + extra, Ordering::Relaxed);
        })
        .unwrap();
    }
    pool.wait_idle();
    let large_allocs = ALLOCATIONS.load(Ordering::SeqCst) - before;
    println!(
        "{N} invokes: {invoke_allocs} allocations ({:.4}/task); {N} submits of a two-word closure: {small_allocs} \
         ({:.4}/task); of a three-word closure: {large_allocs} ({:.4}/task)",
        invoke_allocs as f64 / N as f64,
        small_allocs as f64 / N as f64,
        large_allocs as f64 / N as f64
    );
    // The argument itself never allocates. What remains is the global
    // injector's own storage: crossbeam-deque's `Injector` allocates one
    // block per 63 pushed entries (for any task kind), so the bound is
    // 1/63 per task plus a little slack for a deque buffer growing.
    assert!(
        invoke_allocs <= N / 50,
        "{invoke_allocs} allocations for {N} invokes: more than the injector's blocks"
    );
    assert!(
        small_allocs <= N / 50,
        "{small_allocs} allocations for {N} submits of a two-word closure: it should live in the job"
    );
    assert!(
        large_allocs >= N,
        "a three-word closure submitted from outside takes a new block per task: {large_allocs} < {N}?"
    );
    fp.shutdown();
    pool.shutdown();
}

/// Blocks the only worker of `fp` (which must run `Job::Block` as "wait on
/// the channel") until the returned sender is dropped or sent to.
enum Job {
    Block(mpsc::Sender<()>, Arc<Mutex<mpsc::Receiver<()>>>),
    Value(u32),
}

fn blocking_pool(limit: Option<usize>, nonblocking: bool) -> (FuncPool<Job>, Arc<Mutex<Vec<u32>>>) {
    let ran = Arc::new(Mutex::new(Vec::new()));
    let seen = ran.clone();
    let mut builder = FuncPool::builder()
        .capacity(1)
        .pin_workers(false)
        .nonblocking(nonblocking);
    if let Some(limit) = limit {
        builder = builder.queue_limit(limit);
    }
    let fp = builder
        .build(move |job: Job| match job {
            Job::Block(entered, release) => {
                entered.send(()).unwrap();
                let _ = release.lock().unwrap().recv_timeout(Duration::from_secs(30));
            }
            Job::Value(v) => seen.lock().unwrap().push(v),
        })
        .unwrap();
    (fp, ran)
}

/// Occupies the pool's only worker; drop the sender to release it.
fn block(fp: &FuncPool<Job>) -> mpsc::Sender<()> {
    let (release_tx, release_rx) = mpsc::channel();
    let (entered_tx, entered_rx) = mpsc::channel();
    fp.invoke(Job::Block(entered_tx, Arc::new(Mutex::new(release_rx))))
        .unwrap_or_else(|_| panic!("blocker refused"));
    entered_rx.recv_timeout(SOON).expect("blocker did not start");
    release_tx
}

fn value_of(job: Job) -> u32 {
    match job {
        Job::Value(v) => v,
        Job::Block(..) => panic!("got a blocker back"),
    }
}

#[test]
fn every_refusal_hands_the_argument_back() {
    let _s = serial();
    // Full: nonblocking, queue limit 1, the worker blocked, one queued.
    let (fp, ran) = blocking_pool(Some(1), true);
    let release = block(&fp);
    fp.invoke(Job::Value(1)).unwrap_or_else(|_| panic!("room for one"));
    match fp.invoke(Job::Value(2)) {
        Err(SubmitError::Full(job)) => assert_eq!(value_of(job.into_inner()), 2),
        other => panic!("expected Full(2), got {:?}", other.map_err(|e| e.to_string())),
    }
    // Timeout: even a nonblocking pool waits with invoke_timeout.
    match fp.invoke_timeout(Job::Value(3), Duration::from_millis(20)) {
        Err(SubmitError::Timeout(job)) => assert_eq!(value_of(job.into_inner()), 3),
        other => panic!("expected Timeout(3), got {:?}", other.map_err(|e| e.to_string())),
    }
    drop(release);
    fp.wait_idle();
    assert_eq!(*ran.lock().unwrap(), [1]);
    assert_eq!(fp.stats().rejected, 2);
    // Closed.
    fp.shutdown();
    match fp.invoke(Job::Value(4)) {
        Err(SubmitError::Closed(job)) => assert_eq!(value_of(job.into_inner()), 4),
        other => panic!("expected Closed(4), got {:?}", other.map_err(|e| e.to_string())),
    }
}

#[test]
fn shutdown_now_hands_back_every_unrun_argument() {
    let _s = serial();
    let (fp, ran) = blocking_pool(None, false);
    let release = block(&fp);
    for v in 0..50 {
        fp.invoke(Job::Value(v)).unwrap_or_else(|_| panic!("open pool refused"));
    }
    // Released once `shutdown_now` took the 50 out, so none of them starts
    // first (a timer here raced the drain under Miri, whose clock advances
    // with every instruction interpreted).
    let releaser = {
        let fp = fp.clone();
        thread::spawn(move || {
            while fp.stats().withdrawn < 50 {
                thread::yield_now();
            }
            drop(release);
        })
    };
    let mut back: Vec<u32> = fp.shutdown_now().into_iter().map(value_of).collect();
    releaser.join().unwrap();
    back.sort_unstable();
    assert_eq!(
        back,
        (0..50).collect::<Vec<_>>(),
        "every queued argument comes back once"
    );
    assert!(ran.lock().unwrap().is_empty(), "nothing queued ran after shutdown_now");
    assert_eq!(fp.stats().queued, 0);
}

#[test]
fn each_worker_thread_makes_its_state_at_most_once() {
    let _s = serial();
    let made = Arc::new(Mutex::new(HashMap::<thread::ThreadId, usize>::new()));
    let made_by = made.clone();
    let fp = FuncPool::builder()
        .capacity(2)
        .pin_workers(false)
        .build_with_state(
            move || {
                *made_by.lock().unwrap().entry(thread::current().id()).or_insert(0) += 1;
                0u64
            },
            |calls: &mut u64, _: u32| *calls += 1,
        )
        .unwrap();
    const N: u32 = if cfg!(miri) { 200 } else { 10_000 };
    for i in 0..N {
        fp.invoke(i).unwrap();
        if i % (N / 10) == 0 {
            fp.wait_idle();
        }
    }
    fp.wait_idle();
    let made = made.lock().unwrap().clone();
    assert!(
        !made.is_empty() && made.len() <= 2,
        "states made on {} threads",
        made.len()
    );
    assert!(
        made.values().all(|&n| n == 1),
        "a thread made its state twice: {made:?}"
    );
    assert_eq!(fp.stats().live_states, made.len());
    assert!(Pool::current().is_none());
    fp.shutdown();
    assert_eq!(fp.stats().live_states, 0, "shutdown drops every state");
}

/// A state that knows its generation and counts its drops.
struct Conn {
    generation: usize,
    drops: Arc<AtomicUsize>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_failed_health_check_rebuilds_the_state() {
    let _s = serial();
    let generations = Arc::new(AtomicUsize::new(0));
    let drops = Arc::new(AtomicUsize::new(0));
    let healthy = Arc::new(AtomicBool::new(true));
    let (tx, rx) = mpsc::channel::<usize>();
    let tx = Mutex::new(tx);
    let fp = {
        let (generations, drops, healthy) = (generations.clone(), drops.clone(), healthy.clone());
        FuncPool::builder()
            .capacity(1)
            .pin_workers(false)
            .health_check(Duration::from_millis(10), move |_: &mut Conn| {
                healthy.load(Ordering::SeqCst)
            })
            .build_with_state(
                move || Conn {
                    generation: generations.fetch_add(1, Ordering::SeqCst),
                    drops: drops.clone(),
                },
                move |conn: &mut Conn, _: ()| tx.lock().unwrap().send(conn.generation).unwrap(),
            )
            .unwrap()
    };
    fp.invoke(()).unwrap();
    assert_eq!(rx.recv_timeout(SOON).unwrap(), 0);
    // Healthy: idle checks keep it.
    thread::sleep(Duration::from_millis(50));
    assert_eq!(generations.load(Ordering::SeqCst), 1, "a healthy state was rebuilt");
    // Unhealthy: the idle worker drops it and makes a new one.
    healthy.store(false, Ordering::SeqCst);
    assert!(
        wait_until(SOON, || generations.load(Ordering::SeqCst) >= 2
            && drops.load(Ordering::SeqCst) >= 1),
        "the failed state was not rebuilt"
    );
    healthy.store(true, Ordering::SeqCst);
    let made = generations.load(Ordering::SeqCst);
    thread::sleep(Duration::from_millis(30));
    let made_after = generations.load(Ordering::SeqCst);
    fp.invoke(()).unwrap();
    let seen = rx.recv_timeout(SOON).unwrap();
    assert!(
        seen >= 1 && seen + 1 == made_after,
        "the call used state {seen}, latest is {}",
        made_after - 1
    );
    assert!(made_after <= made + 1, "kept rebuilding a healthy state");
    assert_eq!(fp.stats().live_states, 1);
    fp.shutdown();
    assert_eq!(
        drops.load(Ordering::SeqCst),
        generations.load(Ordering::SeqCst),
        "every state dropped once"
    );
}

#[test]
fn states_are_dropped_when_idle_threads_expire() {
    let _s = serial();
    let drops = Arc::new(AtomicUsize::new(0));
    let made = Arc::new(AtomicUsize::new(0));
    let fp = {
        let (drops, made) = (drops.clone(), made.clone());
        FuncPool::builder()
            .capacity(2)
            .pin_workers(false)
            .keep_alive(Duration::from_millis(50))
            .build_with_state(
                move || {
                    made.fetch_add(1, Ordering::SeqCst);
                    Conn {
                        generation: 0,
                        drops: drops.clone(),
                    }
                },
                |_: &mut Conn, _: u8| {},
            )
            .unwrap()
    };
    for _ in 0..if cfg!(miri) { 20 } else { 100 } {
        fp.invoke(1).unwrap();
    }
    fp.wait_idle();
    // States were made (whether they are still alive at this instant
    // depends on how long `wait_idle` took against the keep-alive: under
    // Miri's clock, 5 µs per basic block interpreted, they may be gone).
    assert!(made.load(Ordering::SeqCst) >= 1);
    assert!(
        wait_until(SOON, || fp.stats().live_workers == 0),
        "idle threads did not expire: {:?}",
        fp.stats()
    );
    // A thread counts as gone (`live_workers`) once it has decided to
    // leave, a moment before it drops its state on the way out (the figures
    // of one snapshot are each coherent, not a consistent cut): wait for
    // the drops, which must come without another call.
    assert!(
        wait_until(SOON, || fp.stats().live_states == 0
            && drops.load(Ordering::SeqCst) == made.load(Ordering::SeqCst)),
        "expired threads did not drop their states: {:?}, {} of {} dropped",
        fp.stats(),
        drops.load(Ordering::SeqCst),
        made.load(Ordering::SeqCst)
    );
    // Threads and states come back on demand: the call makes a new state
    // (whether it is still alive afterwards depends on the keep-alive
    // against the clock, as above).
    let made_before = made.load(Ordering::SeqCst);
    fp.invoke(1).unwrap();
    fp.wait_idle();
    assert_eq!(
        made.load(Ordering::SeqCst),
        made_before + 1,
        "no state made for the new thread"
    );
    assert!(fp.stats().live_states <= 1);
    fp.shutdown();
    assert_eq!(
        drops.load(Ordering::SeqCst),
        made.load(Ordering::SeqCst),
        "every state dropped once"
    );
}

#[test]
fn a_panicking_factory_is_a_task_panic_not_a_dead_pool() {
    let _s = serial();
    let first = Arc::new(AtomicBool::new(true));
    let ran = Arc::new(AtomicUsize::new(0));
    let fp = {
        let (first, ran) = (first.clone(), ran.clone());
        FuncPool::builder()
            .capacity(1)
            .pin_workers(false)
            .panic_handler(|_| {})
            .build_with_state(
                move || {
                    if first.swap(false, Ordering::SeqCst) {
                        panic!("cannot connect");
                    }
                    7u32
                },
                move |state: &mut u32, add: u32| {
                    ran.fetch_add((*state + add) as usize, Ordering::SeqCst);
                },
            )
            .unwrap()
    };
    fp.invoke(1).unwrap();
    fp.wait_idle();
    assert_eq!(fp.stats().panicked, 1);
    assert_eq!(fp.stats().live_states, 0);
    fp.invoke(1).unwrap();
    fp.wait_idle();
    assert_eq!(ran.load(Ordering::SeqCst), 8);
    assert_eq!(fp.stats().live_states, 1);
}

#[test]
fn capacity_features_work_on_a_func_pool() {
    let _s = serial();
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = ran.clone();
    let fp = FuncPool::builder()
        .capacity(1)
        .max_capacity(4)
        .prealloc(true)
        .pin_workers(false)
        .build(move |_: u8| {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    assert_eq!(fp.stats().live_workers, 1);
    fp.tune(4).unwrap();
    assert_eq!(fp.capacity(), 4);
    assert!(fp.tune(5).is_err());
    let mut accepted = 0;
    const PER_CYCLE: usize = if cfg!(miri) { 10 } else { 100 };
    for cycle in 0..5 {
        for _ in 0..PER_CYCLE {
            if fp.invoke(cycle).is_ok() {
                accepted += 1;
            }
        }
        fp.shutdown();
        assert!(fp.is_closed());
        fp.reboot().unwrap();
    }
    fp.wait_idle();
    assert_eq!(ran.load(Ordering::SeqCst), accepted);
    assert_eq!(accepted, 5 * PER_CYCLE);
    fp.shutdown_timeout(SOON).unwrap();
}

#[test]
fn invalid_health_check_settings_are_refused() {
    let b = FuncPool::<u8>::builder().health_check(Duration::from_secs(1), |_: &mut u32| true);
    assert!(matches!(b.build(|_| ()), Err(BuildError::HealthCheckWithoutState)));
    let b = FuncPool::<u8>::builder().health_check(Duration::from_secs(1), |_: &mut u32| true);
    assert!(matches!(
        b.build_with_state(|| 0u64, |_: &mut u64, _| ()),
        Err(BuildError::HealthCheckStateMismatch)
    ));
    let b = FuncPool::<u8>::builder().health_check(Duration::ZERO, |_: &mut u32| true);
    assert!(matches!(
        b.build_with_state(|| 0u32, |_: &mut u32, _| ()),
        Err(BuildError::ZeroHealthCheckInterval)
    ));
    assert!(matches!(
        FuncPool::<u8>::builder().capacity(0).build(|_| ()),
        Err(BuildError::ZeroCapacity)
    ));
}
