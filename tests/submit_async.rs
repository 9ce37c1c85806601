//! `submit_async`, `spawn_async`, `FuncPool::invoke_async`: waiting for room
//! in a full queue without blocking the thread.

mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use common::{block_worker, Watchdog};
use stealpool::{FuncPool, Pool, SubmitError};

fn bounded(capacity: usize, limit: usize) -> Pool {
    Pool::builder()
        .capacity(capacity)
        .queue_limit(limit)
        .pin_workers(false)
        .build()
        .expect("build a pool")
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
}

/// A waker that counts its wake-ups.
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

struct DropCount(Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The queue is full (one worker blocked, one task waiting, limit 1). On a
/// current-thread runtime, a submitter loops over `submit_async` while a
/// second task of the same runtime is the only thing that can release the
/// worker. A submit that blocked the thread would deadlock here (the
/// watchdog would fail the test); the releaser checks that the submitter is
/// indeed waiting (`blocked_submitters == 1`) when it runs.
#[test]
fn submit_async_on_a_current_thread_runtime_with_a_full_queue() {
    let _w = Watchdog::new("submit_async_on_a_current_thread_runtime", 60);
    let pool = bounded(1, 1);
    let release = block_worker(&pool);
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    pool.submit(move || {
        r.fetch_add(1, Ordering::SeqCst);
    })
    .expect("fills the queue");
    assert!(matches!(
        pool.submit_timeout(|| (), Duration::ZERO),
        Err(SubmitError::Timeout(_))
    ));
    let runtime = current_thread_runtime();
    let waiting_when_released = runtime.block_on(async {
        let p = pool.clone();
        let releaser = tokio::spawn(async move {
            let waiting = p.stats().blocked_submitters;
            release.open();
            waiting
        });
        for _ in 0..20 {
            let ran = ran.clone();
            pool.submit_async(move || {
                ran.fetch_add(1, Ordering::SeqCst);
            })
            .await
            .expect("admitted once there is room");
        }
        releaser.await.expect("the releaser ran")
    });
    assert_eq!(
        waiting_when_released, 1,
        "the async submitter was waiting, not blocking"
    );
    pool.wait_idle();
    assert_eq!(ran.load(Ordering::SeqCst), 21);
    let stats = pool.stats();
    assert_eq!(stats.blocked_submitters, 0);
    assert!(stats.wait_count >= 1, "the wait is counted: {stats:?}");
}

#[test]
fn spawn_async_and_invoke_async_wait_the_same_way() {
    let _w = Watchdog::new("spawn_async_and_invoke_async", 60);
    let pool = bounded(1, 1);
    let release = block_worker(&pool);
    pool.submit(|| ()).expect("fills the queue");
    let runtime = current_thread_runtime();
    let total = runtime.block_on(async {
        tokio::spawn(async move { release.open() });
        let mut total = 0;
        for i in 0..10u64 {
            let handle = pool.spawn_async(move || i).await.expect("admitted");
            total += handle.await.expect("no panic");
        }
        total
    });
    assert_eq!(total, 45);

    let sum = Arc::new(AtomicUsize::new(0));
    let s = sum.clone();
    let (release, wait) = mpsc::channel::<()>();
    let wait = std::sync::Mutex::new(wait);
    let fp = FuncPool::builder()
        .capacity(1)
        .queue_limit(1)
        .build(move |x: usize| {
            if x == 0 {
                let _ = wait.lock().unwrap().recv();
            }
            s.fetch_add(x, Ordering::SeqCst);
        })
        .expect("build");
    fp.invoke(0).expect("the blocker");
    runtime.block_on(async {
        let mut release = Some(release);
        for x in 1..=100 {
            let mut invoke = pin!(fp.invoke_async(x));
            // The first full queue lets the releaser go (once).
            if let Some(release) = release.take() {
                tokio::spawn(async move { release.send(()).unwrap() });
            }
            (&mut invoke).await.expect("admitted");
        }
    });
    fp.wait_idle();
    assert_eq!(sum.load(Ordering::SeqCst), 5050);
}

/// A waiting future dropped before it completes drops its closure unrun,
/// leaves the waiting submitters, and takes no room with it: a later submit
/// gets the place.
#[test]
fn a_dropped_waiting_future_leaves_and_drops_its_closure() {
    let _w = Watchdog::new("a_dropped_waiting_future", 60);
    let pool = bounded(1, 1);
    let release = block_worker(&pool);
    pool.submit(|| ()).expect("fills the queue");
    let drops = Arc::new(AtomicUsize::new(0));
    let guard = DropCount(drops.clone());
    let waker_state = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let waker = Waker::from(waker_state.clone());
    let mut cx = Context::from_waker(&waker);
    {
        let mut submit = pin!(pool.submit_async(move || drop(guard)));
        assert!(submit.as_mut().poll(&mut cx).is_pending(), "the queue is full");
        assert_eq!(pool.stats().blocked_submitters, 1);
    }
    assert_eq!(pool.stats().blocked_submitters, 0, "the dropped future left");
    assert_eq!(drops.load(Ordering::SeqCst), 1, "its closure was dropped");
    // A second waiter is woken when room opens.
    let mut submit = pin!(pool.submit_async(|| ()));
    assert!(submit.as_mut().poll(&mut cx).is_pending());
    release.open();
    assert!(
        common::wait_until(Duration::from_secs(30), || waker_state.0.load(Ordering::SeqCst) > 0),
        "the waiting submitter was never woken"
    );
    assert!(matches!(submit.as_mut().poll(&mut cx), Poll::Ready(Ok(()))));
    pool.wait_idle();
    assert_eq!(pool.stats().completed, 3);
}

/// Refusals: a shutdown wakes a waiting future with `Closed(f)`; a
/// nonblocking pool answers `Full` at once; `max_blocked_submitters` counts
/// waiting futures.
#[test]
fn async_refusals_hand_the_closure_back() {
    let _w = Watchdog::new("async_refusals", 60);
    let waker_state = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let waker = Waker::from(waker_state.clone());
    let mut cx = Context::from_waker(&waker);
    let marker = Arc::new(AtomicUsize::new(0));
    let mark = |value: usize| {
        let marker = marker.clone();
        move || marker.store(value, Ordering::SeqCst)
    };

    let pool = bounded(1, 1);
    let release = block_worker(&pool);
    pool.submit(|| ()).expect("fills the queue");
    let mut submit = pin!(pool.submit_async(mark(17)));
    assert!(submit.as_mut().poll(&mut cx).is_pending());
    let p = pool.clone();
    let closer = std::thread::spawn(move || p.shutdown_background());
    closer.join().unwrap();
    assert!(
        waker_state.0.load(Ordering::SeqCst) > 0,
        "the close woke the waiting submitter"
    );
    match submit.as_mut().poll(&mut cx) {
        Poll::Ready(Err(SubmitError::Closed(f))) => f.into_inner()(),
        other => panic!(
            "expected Closed with the closure, got {:?}",
            other.map(|r| r.map_err(|e| e.to_string()))
        ),
    }
    assert_eq!(marker.load(Ordering::SeqCst), 17, "the very closure came back");
    release.open();

    let pool = Pool::builder()
        .capacity(1)
        .queue_limit(1)
        .nonblocking(true)
        .build()
        .expect("build");
    let release = block_worker(&pool);
    pool.submit(|| ()).expect("fills the queue");
    let mut submit = pin!(pool.submit_async(mark(5)));
    match submit.as_mut().poll(&mut cx) {
        Poll::Ready(Err(SubmitError::Full(f))) => f.into_inner()(),
        _ => panic!("a nonblocking pool refuses at once"),
    }
    assert_eq!(marker.load(Ordering::SeqCst), 5);
    release.open();

    let pool = Pool::builder()
        .capacity(1)
        .queue_limit(1)
        .max_blocked_submitters(1)
        .build()
        .expect("build");
    let release = block_worker(&pool);
    pool.submit(|| ()).expect("fills the queue");
    let mut first = pin!(pool.submit_async(mark(1)));
    assert!(first.as_mut().poll(&mut cx).is_pending());
    let mut second = pin!(pool.submit_async(mark(2)));
    match second.as_mut().poll(&mut cx) {
        Poll::Ready(Err(SubmitError::Full(f))) => f.into_inner()(),
        _ => panic!("one submitter already waits: the second is refused"),
    }
    assert_eq!(marker.load(Ordering::SeqCst), 2);
    release.open();
    assert!(
        common::wait_until(Duration::from_secs(30), || first.as_mut().poll(&mut cx).is_ready()),
        "the first waiter never got in"
    );
}

/// Many async submitters on one current-thread runtime, a queue of two:
/// every task is admitted and runs once.
#[test]
fn many_async_submitters_share_a_small_queue() {
    let _w = Watchdog::new("many_async_submitters", 60);
    let pool = bounded(2, 2);
    let ran = Arc::new(AtomicUsize::new(0));
    let runtime = current_thread_runtime();
    runtime.block_on(async {
        let mut submitters = Vec::new();
        for _ in 0..4 {
            let (pool, ran) = (pool.clone(), ran.clone());
            submitters.push(tokio::spawn(async move {
                for _ in 0..250 {
                    let ran = ran.clone();
                    pool.submit_async(move || {
                        ran.fetch_add(1, Ordering::Relaxed);
                    })
                    .await
                    .expect("admitted");
                }
            }));
        }
        for submitter in submitters {
            submitter.await.expect("a submitter");
        }
    });
    pool.wait_idle();
    assert_eq!(ran.load(Ordering::Relaxed), 1000);
    assert_eq!(pool.stats().blocked_submitters, 0);
}
