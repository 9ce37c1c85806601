//! Calls from inside one of the pool's own tasks: each ends in its documented behaviour.

use super::*;

// ---------------------------------------------------------------------------
// Called from inside one of the pool's own tasks (the table in docs/guide/tasks.md).
// ---------------------------------------------------------------------------

#[test]
fn wait_idle_inside_own_task_panics_with_a_clear_message() {
    // Also: shutdown.rs `wait_idle_from_inside_a_task_panics`.
    let _s = serial();
    let _w = Watchdog::new("wait_idle_inside_own_task_panics_with_a_clear_message", 60);
    const P: &str = "mu-widle-";
    let handled = Arc::new(Mutex::new(Vec::new()));
    let h2 = handled.clone();
    let pool = named_builder(P, 1)
        .panic_handler(move |payload| h2.lock().unwrap().push(panic_message(&*payload)))
        .build()
        .expect("build");
    let check = |message: &str| {
        assert!(
            message.contains("wait_idle") && message.contains("inside"),
            "the panic must name the problem, got {message:?}"
        );
    };
    // spawn: the panic is the task's, so its JoinHandle gets it.
    let inner = pool.clone();
    let h = pool.spawn(move || inner.wait_idle()).expect("spawn");
    let payload = join_timeout(h)
        .expect_err("wait_idle inside its own pool must panic")
        .into_panic();
    check(&panic_message(&*payload));
    // submit: the panic goes to the panic handler, like any task panic.
    let inner = pool.clone();
    pool.submit(move || inner.wait_idle()).expect("submit");
    // Through Pool::current() too.
    pool.submit(|| Pool::current().expect("inside a worker").wait_idle())
        .expect("submit");
    pool.wait_idle();
    let handled = handled.lock().unwrap().clone();
    assert_eq!(handled.len(), 2, "{handled:?}");
    handled.iter().for_each(|m| check(m));
    assert_eq!(pool.stats().panicked, 3);
    // The worker survived.
    let done = Count::default();
    pool.submit(done.task()).expect("submit");
    pool.wait_idle();
    assert_eq!(done.get(), 1);
    assert_eq!(threads_named(P), 1);
    pool.shutdown();
}

/// Starts a task on a 1-worker `pool` that waits for `go`, then calls `call`
/// with a clone of the pool and sends back what it returned and how long the
/// call took. Queues `queued` counting tasks behind it (they cannot start
/// before the call returns: the only worker runs the caller).
fn call_inside_with_queue<R: Send + 'static>(
    pool: &Pool,
    queued: usize,
    call: impl FnOnce(&Pool) -> R + Send + 'static,
) -> (R, Duration, Count, usize) {
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (back_tx, back_rx) = mpsc::channel();
    let (entered_tx, entered_rx) = mpsc::channel();
    let inner = pool.clone();
    let done = Count::default();
    let d = done.clone();
    pool.submit(move || {
        entered_tx.send(()).unwrap();
        go_rx.recv_timeout(Duration::from_secs(30)).expect("go signal");
        let t0 = Instant::now();
        let r = call(&inner);
        let took = t0.elapsed();
        // Queued tasks that ran while the call was made (must be none).
        let ran_meanwhile = d.get();
        back_tx.send((r, took, ran_meanwhile)).unwrap();
    })
    .expect("submit caller");
    entered_rx.recv_timeout(SOON).expect("the calling task did not start");
    for _ in 0..queued {
        pool.submit(done.task()).expect("submit queued");
    }
    go_tx.send(()).unwrap();
    let (r, took, ran_meanwhile) = back_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the call inside the pool's own task did not return (deadlock)");
    (r, took, done, ran_meanwhile)
}

#[test]
fn shutdown_inside_own_task_closes_and_returns_at_once() {
    // Also: shutdown.rs `shutdown_from_inside_a_task_returns`.
    let _s = serial();
    let _w = Watchdog::new("shutdown_inside_own_task_closes_and_returns_at_once", 60);
    const P: &str = "mu-sdin-";
    let pool = named_builder(P, 1).build().expect("build");
    let (closed, took, done, ran_meanwhile) = call_inside_with_queue(&pool, 100, |p| {
        p.shutdown();
        p.is_closed()
    });
    assert!(closed, "shutdown inside a task must close the pool");
    assert_eq!(ran_meanwhile, 0, "shutdown inside returned only after the queue ran?");
    assert!(took < SOON, "shutdown inside a task took {took:?}");
    assert!(pool.submit(|| ()).unwrap_err().is_closed());
    // Nobody outside calls shutdown: the workers drain and exit by themselves.
    assert!(
        wait_until(SOON, || done.get() == 100),
        "{} of 100 queued tasks ran after an inside shutdown",
        done.get()
    );
    assert_threads_gone(P, "after the workers drained an inside shutdown");
    pool.shutdown(); // from outside now: returns at once
    assert_eq!(pool.stats().live_workers, 0);
}

#[test]
fn shutdown_timeout_inside_own_task_is_err_at_once_and_closes() {
    let _s = serial();
    let _w = Watchdog::new("shutdown_timeout_inside_own_task_is_err_at_once_and_closes", 60);
    const P: &str = "mu-stoin-";
    let pool = named_builder(P, 1).build().expect("build");
    // A long timeout: "at once" means it does not even start waiting.
    let (result, took, done, ran_meanwhile) = call_inside_with_queue(&pool, 100, |p| {
        (p.shutdown_timeout(Duration::from_secs(60)), p.is_closed())
    });
    assert_eq!(result, (Err(ShutdownTimeout), true));
    assert!(took < SOON, "shutdown_timeout(60 s) inside a task took {took:?}");
    assert_eq!(ran_meanwhile, 0);
    assert!(!ShutdownTimeout.to_string().is_empty());
    assert!(pool.submit(|| ()).unwrap_err().is_closed());
    assert!(
        wait_until(SOON, || done.get() == 100),
        "{} of 100 queued tasks ran",
        done.get()
    );
    assert_threads_gone(P, "after the workers drained");
    assert_eq!(pool.shutdown_timeout(SOON), Ok(()), "from outside it succeeds");
}

#[test]
fn shutdown_now_inside_own_task_hands_back_without_joining() {
    let _s = serial();
    let _w = Watchdog::new("shutdown_now_inside_own_task_hands_back_without_joining", 60);
    const P: &str = "mu-snin-";
    let pool = named_builder(P, 1).build().expect("build");
    let ((tasks, closed), took, done, ran_meanwhile) =
        call_inside_with_queue(&pool, 100, |p| (p.shutdown_now(), p.is_closed()));
    assert!(closed);
    assert!(took < SOON, "shutdown_now inside a task took {took:?}");
    assert_eq!(ran_meanwhile, 0);
    assert_eq!(tasks.len(), 100, "every queued task comes back");
    // The worker exits on its own once the calling task returns.
    assert_threads_gone(P, "after an inside shutdown_now");
    assert_eq!(done.get(), 0, "a handed-back task also ran in the pool");
    let st = pool.stats();
    assert_eq!((st.queued, st.submitted, st.completed), (0, 101, 1), "{st:?}");
    for task in tasks {
        task.run();
    }
    assert_eq!(done.get(), 100, "each handed-back task runs once by hand");
    pool.shutdown();
}

#[test]
fn reboot_inside_own_task_is_refused() {
    let _s = serial();
    let _w = Watchdog::new("reboot_inside_own_task_is_refused", 60);
    const P: &str = "mu-rbin-";
    let pool = named_builder(P, 2).build().expect("build");
    // On a running pool...
    let inner = pool.clone();
    let h = pool.spawn(move || inner.reboot()).expect("spawn");
    match join_timeout(h) {
        Ok(Err(e @ RebootError::InsideOwnTask)) => assert!(!e.to_string().is_empty()),
        Ok(other) => panic!("reboot inside must be Err(InsideOwnTask), got {other:?}"),
        Err(_) => panic!("reboot inside panicked"),
    }
    assert!(!pool.is_closed(), "a refused reboot changed the pool");
    // ... and on one it just shut down itself.
    let inner = pool.clone();
    let h = pool
        .spawn(move || {
            inner.shutdown();
            inner.reboot()
        })
        .expect("spawn");
    assert!(matches!(join_timeout(h), Ok(Err(RebootError::InsideOwnTask))));
    assert!(pool.is_closed());
    // From outside, reboot waits for the old threads and opens it again.
    pool.reboot().expect("reboot from outside");
    let done = Count::default();
    pool.submit(done.task()).expect("submit after reboot");
    pool.wait_idle();
    assert_eq!(done.get(), 1);
    pool.shutdown();
    assert_threads_gone(P, "after shutdown");
}

#[test]
fn tune_inside_own_task_works() {
    let _s = serial();
    let _w = Watchdog::new("tune_inside_own_task_works", 60);
    const P: &str = "mu-tunin-";
    let pool = named_builder(P, 1).max_capacity(4).build().expect("build");
    let inner = pool.clone();
    let h = pool
        .spawn(move || {
            let zero = matches!(inner.tune(0), Err(TuneError::Zero));
            let above = matches!(inner.tune(5), Err(TuneError::AboveMax { requested: 5, max: 4 }));
            inner.tune(2).expect("tune(2) inside a task");
            let grown = inner.capacity();
            // This task keeps the first worker: the child can only run on a
            // second one, which the grow made possible.
            let (tx, rx) = mpsc::channel();
            inner
                .submit(move || tx.send(thread::current().id()).unwrap())
                .expect("submit child");
            let child = rx.recv_timeout(SOON).ok();
            inner.tune(1).expect("tune(1) inside a task");
            (zero, above, grown, child.map(|id| id != thread::current().id()))
        })
        .expect("spawn");
    assert_eq!(
        join_timeout(h).ok(),
        Some((true, true, 2, Some(true))),
        "(tune(0) refused, tune(5) refused, capacity after tune(2), child ran on another worker)"
    );
    assert_eq!((pool.capacity(), pool.stats().capacity), (1, 1));
    pool.shutdown();
    assert_threads_gone(P, "after shutdown");
}

#[test]
fn scope_join_and_join_handles_inside_own_task_work() {
    // Also: scope_join.rs `scope_and_join_inside_the_only_worker_do_not_deadlock`,
    // `join_and_scope_inside_submitted_task`.
    let _s = serial();
    let _w = Watchdog::new("scope_join_and_join_handles_inside_own_task_work", 60);
    for capacity in [1, 2] {
        let pool = named_builder("mu-scin-", capacity).build().expect("build");
        let inner = pool.clone();
        let h = pool
            .spawn(move || {
                let mut data = vec![1u64; 64];
                inner.scope(|s| {
                    for chunk in data.chunks_mut(8) {
                        s.spawn(move || chunk.iter_mut().for_each(|x| *x *= 3));
                    }
                });
                let (a, b) = inner.join(|| 20, || 22);
                // JoinHandle::join inside: the worker runs the child itself if need be.
                let child = inner.spawn(|| 7).expect("spawn child").join().expect("child panicked");
                (data.iter().sum::<u64>(), a + b, child)
            })
            .expect("spawn");
        assert_eq!(join_timeout(h).ok(), Some((192, 42, 7)), "capacity {capacity}");
        pool.shutdown();
    }
}

#[test]
fn submit_inside_own_task_on_a_full_bounded_queue_never_blocks_or_fails() {
    // Also: backpressure.rs `submits_from_inside_a_task_never_block_or_get_refused`.
    let _s = serial();
    let _w = Watchdog::new(
        "submit_inside_own_task_on_a_full_bounded_queue_never_blocks_or_fails",
        60,
    );
    for nonblocking in [false, true] {
        let pool = named_builder("mu-fullin-", 1)
            .queue_limit(1)
            .nonblocking(nonblocking)
            .build()
            .expect("build");
        let children = Count::default();
        let filler = Count::default();
        let ch = children.clone();
        let (results, took, _, _) = call_inside_with_queue(&pool, 1, move |p| {
            // The queue is full and this task holds the only worker: waiting
            // for room here could never end.
            let mut ok = Vec::new();
            for _ in 0..5 {
                ok.push(p.submit(ch.task()).is_ok());
                ok.push(p.submit_timeout(ch.task(), Duration::from_millis(1)).is_ok());
            }
            ok.push(p.spawn(ch.task()).is_ok());
            ok
        });
        // (call_inside_with_queue filled the one queue place before "go".)
        assert_eq!(
            results,
            vec![true; 11],
            "nonblocking={nonblocking}: an inside submit was refused"
        );
        assert!(took < SOON, "nonblocking={nonblocking}: inside submits took {took:?}");
        pool.wait_idle();
        assert_eq!(children.get(), 11, "nonblocking={nonblocking}: children lost");
        assert_eq!(pool.stats().rejected, 0);
        // Outside, the limit holds as usual.
        let gate = block_worker(&pool);
        pool.submit(filler.task()).expect("the one queue place");
        match pool.submit_timeout(filler.task(), Duration::from_millis(1)) {
            Err(SubmitError::Full(f)) | Err(SubmitError::Timeout(f)) => f.into_inner()(),
            other => panic!(
                "nonblocking={nonblocking}: expected Full/Timeout, got {:?}",
                other.err()
            ),
        }
        gate.open();
        pool.wait_idle();
        assert_eq!(filler.get(), 2);
        pool.shutdown();
    }
}
