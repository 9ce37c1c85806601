//! Panic payloads whose `Drop` panics (in `join`, in `scope`), and `FuncPool` states whose `Drop` panics: contained, and counted gone.

use super::*;

// ---------------------------------------------------------------------------
// Panic payloads whose Drop panics
// ---------------------------------------------------------------------------

/// Both halves of a `join` panic with a payload whose `Drop` panics. One
/// payload comes back; the other must be dropped where its panic is
/// contained. Called from outside, from inside a worker (where the second
/// half may or may not be stolen: repeated), and on a shut-down pool (both
/// halves run on the caller). A failure aborts the process.
/// `pool.join` of two halves that both panic with a `Bomb`: whether it
/// panicked (as it must) rather than returned; the payload is defused.
fn join_two_bombs(pool: &Pool) -> bool {
    match panic::catch_unwind(AssertUnwindSafe(|| {
        pool.join(|| -> u8 { panic_any(Bomb) }, || -> u8 { panic_any(Bomb) })
    })) {
        Ok(_) => false,
        Err(payload) => {
            defuse(payload);
            true
        }
    }
}

#[test]
fn join_with_two_payloads_that_panic_on_drop_never_aborts() {
    let _s = serial();
    let _w = Watchdog::new("join_with_two_payloads_that_panic_on_drop_never_aborts", 60);
    let pool = named_builder("adv-bomb-", 2)
        .panic_handler(defuse)
        .build()
        .expect("build");
    let _keep = KeepOnFailure(Some(pool.clone()));
    for _ in 0..10 {
        let p = pool.clone();
        let outcome = within(SOON, "join from outside", move || join_two_bombs(&p));
        assert!(outcome, "join from outside: both halves panicked, join returned");
    }
    for _ in 0..10 {
        let p = pool.clone();
        let inside = pool.spawn(move || join_two_bombs(&p)).expect("spawn");
        match join_timeout(inside) {
            Ok(panicked) => assert!(panicked, "join inside a worker: both halves panicked, join returned"),
            Err(error) => {
                let payload = error.into_panic();
                let text = message(&*payload);
                defuse(payload);
                panic!("the task running the join died: {text}");
            }
        }
    }
    // The pool still works.
    assert_eq!(join_timeout(pool.spawn(|| 5).expect("spawn")).ok(), Some(5));
    shutdown_within_soon(&pool);
    // A shut-down pool runs both halves on the caller.
    let p = pool.clone();
    let outcome = within(SOON, "join on a shut-down pool", move || join_two_bombs(&p));
    assert!(outcome, "join on a shut-down pool: both halves panicked, join returned");
    assert_threads_gone("adv-bomb-", "after shutdown");
}

/// A scope whose body and spawned closures all panic with payloads whose
/// `Drop` panics: one payload is re-raised, the others are dropped where
/// their panics are contained. From outside and from inside a worker.
#[test]
fn scope_with_payloads_that_panic_on_drop_never_aborts() {
    let _s = serial();
    let _w = Watchdog::new("scope_with_payloads_that_panic_on_drop_never_aborts", 60);
    let pool = named_builder("adv-sbomb-", 2)
        .panic_handler(defuse)
        .build()
        .expect("build");
    let _keep = KeepOnFailure(Some(pool.clone()));
    fn bombs_everywhere(p: &Pool, body_panics: bool) -> bool {
        match panic::catch_unwind(AssertUnwindSafe(|| {
            p.scope(|s| {
                s.spawn(|| panic_any(Bomb));
                s.spawn(|| panic_any(Bomb));
                if body_panics {
                    panic_any(Bomb);
                }
            })
        })) {
            Ok(()) => false,
            Err(payload) => {
                defuse(payload);
                true
            }
        }
    }
    for round in 0..10 {
        for body_panics in [true, false] {
            let p = pool.clone();
            let outcome = within(SOON, "scope from outside", move || bombs_everywhere(&p, body_panics));
            assert!(
                outcome,
                "round {round}: scope from outside returned although everything panicked"
            );
            let p = pool.clone();
            let inside = pool.spawn(move || bombs_everywhere(&p, body_panics)).expect("spawn");
            match join_timeout(inside) {
                Ok(panicked) => assert!(
                    panicked,
                    "round {round}: scope inside a worker returned although everything panicked"
                ),
                Err(error) => {
                    let payload = error.into_panic();
                    let text = message(&*payload);
                    defuse(payload);
                    panic!("the task running the scope died: {text}");
                }
            }
        }
    }
    assert_eq!(join_timeout(pool.spawn(|| 5).expect("spawn")).ok(), Some(5));
    shutdown_within_soon(&pool);
    assert_threads_gone("adv-sbomb-", "after shutdown");
}

// ---------------------------------------------------------------------------
// FuncPool state whose Drop panics
// ---------------------------------------------------------------------------

/// A per-worker state whose destructor panics.
struct BadState;

impl Drop for BadState {
    fn drop(&mut self) {
        panic!("state dropped");
    }
}

/// However a state goes (shutdown, keep-alive expiry, failed health check),
/// a panicking destructor must not leave it counted alive, nor the worker.
#[test]
fn func_pool_state_whose_drop_panics_is_still_counted_gone() {
    let _s = serial();
    let _w = Watchdog::new("func_pool_state_whose_drop_panics_is_still_counted_gone", 60);
    // The destructors' panics go to the panic handler: keep them quiet.
    let quiet = |_payload: Box<dyn Any + Send>| {};

    // Shutdown.
    let (tx, rx) = mpsc::channel();
    let fp = FuncPool::builder()
        .capacity(2)
        .pin_workers(false)
        .thread_name(|i| format!("adv-fpst-{i}"))
        .panic_handler(quiet)
        .build_with_state(
            || BadState,
            move |_: &mut BadState, n: u32| {
                let _ = tx.send(n);
            },
        )
        .expect("build");
    let _keep = KeepOnFailure(Some(fp.clone()));
    fp.invoke(1).expect("invoke");
    assert_eq!(rx.recv_timeout(SOON), Ok(1));
    fp.wait_idle();
    assert_eq!(fp.stats().live_states, 1);
    let f = fp.clone();
    within(SOON, "FuncPool::shutdown", move || f.shutdown());
    let stats = fp.stats();
    assert_eq!(
        (stats.live_workers, stats.live_states),
        (0, 0),
        "after shutdown, with a state whose drop panicked: {stats:?}"
    );
    assert_threads_gone("adv-fpst-", "after shutdown");

    // Keep-alive expiry.
    let (tx, rx) = mpsc::channel();
    let fp = FuncPool::builder()
        .capacity(1)
        .pin_workers(false)
        .thread_name(|i| format!("adv-fpka-{i}"))
        .keep_alive(Duration::from_millis(100))
        .min_workers(0)
        .panic_handler(quiet)
        .build_with_state(
            || BadState,
            move |_: &mut BadState, n: u32| {
                let _ = tx.send(n);
            },
        )
        .expect("build");
    let _keep = KeepOnFailure(Some(fp.clone()));
    fp.invoke(1).expect("invoke");
    assert_eq!(rx.recv_timeout(SOON), Ok(1));
    fp.wait_idle();
    let gone = wait_until(SOON, || {
        let s = fp.stats();
        s.live_workers == 0 && s.live_states == 0
    });
    assert!(
        gone,
        "after keep-alive expiry, with a state whose drop panicked: {:?}",
        fp.stats()
    );
    // A new thread and state come back on demand.
    fp.invoke(2).expect("invoke");
    assert_eq!(rx.recv_timeout(SOON), Ok(2));
    fp.wait_idle();
    let f = fp.clone();
    within(SOON, "FuncPool::shutdown", move || f.shutdown());
    let stats = fp.stats();
    assert_eq!((stats.live_workers, stats.live_states), (0, 0), "{stats:?}");

    // A failed health check drops the state (panicking) and makes another.
    let (tx, rx) = mpsc::channel();
    let checks = Arc::new(AtomicUsize::new(0));
    let c = checks.clone();
    let fp = FuncPool::builder()
        .capacity(1)
        .pin_workers(false)
        .thread_name(|i| format!("adv-fphc-{i}"))
        .panic_handler(quiet)
        .health_check(Duration::from_millis(10), move |_: &mut BadState| {
            c.fetch_add(1, Ordering::SeqCst);
            false
        })
        .build_with_state(
            || BadState,
            move |_: &mut BadState, n: u32| {
                let _ = tx.send(n);
            },
        )
        .expect("build");
    let _keep = KeepOnFailure(Some(fp.clone()));
    // Each round: a call makes a state (if none is ready), the check fails
    // and drops it (its destructor panics). Whether a new state is made at
    // once or on the next call, the one worker holds at most one state, and
    // the count says so.
    for round in 1..=2u32 {
        fp.invoke(round).expect("invoke");
        assert_eq!(rx.recv_timeout(SOON), Ok(round));
        fp.wait_idle();
        assert!(
            wait_until(SOON, || checks.load(Ordering::SeqCst) >= round as usize),
            "round {round}: the health check never ran"
        );
        assert!(
            fp.stats().live_states <= 1,
            "one worker holds at most one state, after {round} failed health check(s): {:?}",
            fp.stats()
        );
    }
    let f = fp.clone();
    within(SOON, "FuncPool::shutdown", move || f.shutdown());
    let stats = fp.stats();
    assert_eq!(
        (stats.live_workers, stats.live_states),
        (0, 0),
        "after failed health checks and shutdown: {stats:?}"
    );
}
