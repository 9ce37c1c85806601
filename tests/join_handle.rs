//! `spawn` + `JoinHandle`: results, panics, `is_finished`, and polling the
//! handle as a `Future` with a hand-written waker.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use stealpool::{JoinHandle, Pool};

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

/// Waker that records that it was woken and unparks the polling thread.
struct FlagWaker {
    woken: AtomicBool,
    wakes: AtomicUsize,
    thread: Thread,
}

impl Wake for FlagWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        self.woken.store(true, Ordering::SeqCst);
        self.thread.unpark();
    }
}

/// Minimal executor: polls, and only re-polls after the waker fired (with a
/// 30 s bound, so a lost wake-up fails the test instead of hanging it).
/// Returns the output and how many times the future returned Pending.
fn block_on<F: Future + Unpin>(mut fut: F) -> (F::Output, usize) {
    let flag = Arc::new(FlagWaker {
        woken: AtomicBool::new(false),
        wakes: AtomicUsize::new(0),
        thread: thread::current(),
    });
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    let mut pendings = 0;
    loop {
        flag.woken.store(false, Ordering::SeqCst);
        match Pin::new(&mut fut).poll(&mut cx) {
            Poll::Ready(v) => return (v, pendings),
            Poll::Pending => pendings += 1,
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while !flag.woken.load(Ordering::SeqCst) {
            let now = Instant::now();
            assert!(
                now < deadline,
                "future returned Pending and its waker was not woken within 30 s (lost wake-up)"
            );
            thread::park_timeout(deadline - now);
        }
    }
}

fn assert_send<T: Send>() {}
fn assert_unpin<T: Unpin>() {}
fn assert_future<T: Future<Output = Result<R, stealpool::JoinError>>, R>() {}

#[test]
fn join_handle_is_send_unpin_future() {
    assert_send::<JoinHandle<i32>>();
    assert_send::<JoinHandle<String>>();
    assert_unpin::<JoinHandle<Vec<u8>>>();
    assert_future::<JoinHandle<u64>, u64>();
}

#[test]
fn spawn_returns_results_through_join() {
    let _w = Watchdog::new("spawn_returns_results_through_join", 60);
    let pool = pool(2);
    let handles: Vec<JoinHandle<u64>> = (0..if cfg!(miri) { 40 } else { 1000u64 })
        .map(|i| pool.spawn(move || i * i + 1).expect("spawn on an open pool"))
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let i = i as u64;
        match h.join() {
            Ok(v) => assert_eq!(v, i * i + 1),
            Err(_) => panic!("task {i} unexpectedly panicked"),
        }
    }
    // Non-Copy, heap-owning results survive the trip.
    let h = pool
        .spawn(|| vec![String::from("a"), String::from("bc")])
        .expect("spawn");
    assert_eq!(
        join_timeout(h).expect("no panic"),
        vec!["a".to_string(), "bc".to_string()]
    );
    // The classic example from the docs.
    let h = pool.spawn(|| 6 * 7).expect("spawn");
    assert_eq!(join_timeout(h).ok(), Some(42));
}

#[test]
fn panicking_spawn_returns_err_payload() {
    let _w = Watchdog::new("panicking_spawn_returns_err_payload", 60);
    let pool = pool(2);
    let h = pool.spawn(|| -> i32 { panic!("boom from task") }).expect("spawn");
    let payload = join_timeout(h)
        .expect_err("join must return Err for a panicking task")
        .into_panic();
    assert_eq!(payload.downcast_ref::<&str>().copied(), Some("boom from task"));

    // Formatted panic messages arrive as String payloads.
    let n = 7;
    let h = pool.spawn(move || -> u8 { panic!("formatted {n}") }).expect("spawn");
    let payload = join_timeout(h).expect_err("Err").into_panic();
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("formatted 7")
    );

    // Arbitrary payload types via panic_any.
    let h = pool
        .spawn(|| -> u8 { std::panic::panic_any(0xDEAD_BEEF_u32) })
        .expect("spawn");
    let payload = join_timeout(h).expect_err("Err").into_panic();
    assert_eq!(payload.downcast_ref::<u32>().copied(), Some(0xDEAD_BEEF));

    // The pool still works afterwards, and the panics were counted.
    let h = pool.spawn(|| 5).expect("spawn");
    assert_eq!(join_timeout(h).ok(), Some(5));
    pool.wait_idle();
    assert_eq!(pool.stats().panicked, 3);
}

#[test]
fn join_handle_as_future_ok_with_real_wakeup() {
    let _w = Watchdog::new("join_handle_as_future_ok_with_real_wakeup", 60);
    let pool = pool(2);
    let (go_tx, go_rx) = mpsc::channel::<()>();
    // The task cannot finish before the first poll because it waits for us.
    let h = pool
        .spawn(move || {
            go_rx.recv_timeout(Duration::from_secs(30)).expect("go signal");
            String::from("done")
        })
        .expect("spawn");

    let flag = Arc::new(FlagWaker {
        woken: AtomicBool::new(false),
        wakes: AtomicUsize::new(0),
        thread: thread::current(),
    });
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    let mut h = h;
    assert!(
        Pin::new(&mut h).poll(&mut cx).is_pending(),
        "task cannot be done before it is released"
    );
    assert!(!h.is_finished());
    go_tx.send(()).unwrap();
    // The waker registered by the Pending poll must be woken on completion.
    assert!(
        wait_until(Duration::from_secs(30), || flag.woken.load(Ordering::SeqCst)),
        "waker from the Pending poll was never woken"
    );
    let (out, _pendings) = block_on(h);
    assert_eq!(out.ok().as_deref(), Some("done"));
    assert!(flag.wakes.load(Ordering::SeqCst) >= 1);
}

#[test]
fn join_handle_as_future_panic_with_real_wakeup() {
    let _w = Watchdog::new("join_handle_as_future_panic_with_real_wakeup", 60);
    let pool = pool(2);
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let h = pool
        .spawn(move || -> u32 {
            go_rx.recv_timeout(Duration::from_secs(30)).expect("go signal");
            panic!("future boom")
        })
        .expect("spawn");
    // Release the task from another thread a little later, so the first poll
    // in block_on very likely sees Pending and the result arrives via wake().
    let releaser = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        go_tx.send(()).unwrap();
    });
    let (out, _pendings) = block_on(h);
    releaser.join().unwrap();
    let payload = out
        .expect_err("future must resolve to Err for a panicking task")
        .into_panic();
    assert_eq!(panic_message(&*payload).as_deref(), Some("future boom"));
}

#[test]
fn join_handle_future_already_finished_is_ready_immediately() {
    let _w = Watchdog::new("join_handle_future_already_finished_is_ready_immediately", 60);
    let pool = pool(2);
    let h = pool.spawn(|| 99u16).expect("spawn");
    assert!(
        wait_until(Duration::from_secs(10), || h.is_finished()),
        "is_finished never became true"
    );
    let (out, pendings) = block_on(h);
    assert_eq!(out.ok(), Some(99));
    assert_eq!(pendings, 0, "a finished handle must be Ready on the first poll");
}

#[test]
fn many_futures_polled_concurrently() {
    // Several threads each block_on their own handles while the pool is busy;
    // every wake-up must arrive (no lost wake-ups under contention).
    let _w = Watchdog::new("many_futures_polled_concurrently", 60);
    let pool = pool(2);
    let pollers: Vec<_> = (0..4u64)
        .map(|t| {
            let pool = pool.clone();
            thread::spawn(move || {
                // Fewer under Miri (an interpreter).
                for i in 0..if cfg!(miri) { 12 } else { 200u64 } {
                    let h = pool
                        .spawn(move || {
                            let mut x = i;
                            for _ in 0..(i % 50) * if cfg!(miri) { 2 } else { 100 } {
                                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(t));
                            }
                            (t, i, x)
                        })
                        .expect("spawn");
                    let (out, _) = block_on(h);
                    let (tt, ii, _) = out.expect("no panic");
                    assert_eq!((tt, ii), (t, i));
                }
            })
        })
        .collect();
    for p in pollers {
        p.join().expect("poller thread failed");
    }
}

#[test]
fn is_finished_eventually_true_for_ok_and_panic() {
    let _w = Watchdog::new("is_finished_eventually_true_for_ok_and_panic", 60);
    let pool = pool(2);
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let h_ok = pool
        .spawn(move || {
            go_rx.recv_timeout(Duration::from_secs(30)).expect("go");
            1
        })
        .expect("spawn");
    let h_panic = pool.spawn(|| -> i32 { panic!("x") }).expect("spawn");
    assert!(!h_ok.is_finished(), "blocked task reported finished");
    go_tx.send(()).unwrap();
    // Generous bound: these tasks take microseconds; 10 s only matters on a
    // hopelessly overloaded machine.
    assert!(
        wait_until(Duration::from_secs(10), || h_ok.is_finished()),
        "ok task never finished"
    );
    assert!(
        wait_until(Duration::from_secs(10), || h_panic.is_finished()),
        "panicking task never finished"
    );
    // is_finished is stable and join does not block afterwards.
    assert!(h_ok.is_finished());
    assert_eq!(h_ok.join().ok(), Some(1));
    assert!(h_panic.join().is_err());
}

#[test]
fn dropped_join_handle_detaches_task() {
    let _w = Watchdog::new("dropped_join_handle_detaches_task", 60);
    let pool = pool(2);
    let ran = Arc::new(AtomicUsize::new(0));
    const TASKS: usize = if cfg!(miri) { 20 } else { 100 };
    for _ in 0..TASKS {
        let ran = ran.clone();
        let h = pool
            .spawn(move || {
                ran.fetch_add(1, Ordering::SeqCst);
            })
            .expect("spawn");
        drop(h);
    }
    // Detached panicking task: the panic must not escape anywhere.
    drop(pool.spawn(|| -> u8 { panic!("detached") }).expect("spawn"));
    pool.wait_idle();
    assert_eq!(ran.load(Ordering::SeqCst), TASKS);
    let st = pool.stats();
    assert_eq!(st.completed, TASKS as u64 + 1);
    assert_eq!(st.panicked, 1);
}
