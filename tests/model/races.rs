//! Races the property tests reach by chance, made deterministic.

use super::*;

// ---------------------------------------------------------------------------
// Races the properties above reach by chance, made deterministic
// ---------------------------------------------------------------------------

/// Polls `cond` for up to 10 s.
fn soon(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        thread::sleep(Duration::from_millis(1));
    }
    false
}

/// A worker above the capacity that leaves a closed pool wakes the parked
/// workers, or a worker below the capacity stays `Sleeping` in a closed
/// pool with nothing left to run and `shutdown` (`join_threads`) waits for
/// it forever. The race, made deterministic:
///
/// 1. worker 1 runs a task; worker 0 is idle and parks;
/// 2. `tune(1)`: worker 1 is now above the capacity (it finishes its task);
/// 3. `shutdown` closes the pool: worker 0 is woken, sees the pool closed but
///    not drained (worker 1's task is still running) and parks again;
/// 4. worker 1's task ends: the pool is drained. Worker 1, above the
///    capacity in a closed pool, exits through the early return at the top
///    of `WorkerThread::main_loop`; that exit notifies the parked workers as
///    well as the `wait_idle` waiters, so worker 0 re-checks
///    `is_closed_and_drained` and leaves.
///
/// The same exit path serves the other order: a `shutdown_timeout` that
/// timed out (the pool closed, still draining), then `tune` down while the
/// last task runs on a worker now above the capacity; the next `reboot` (or
/// `shutdown`) needs worker 0 woken the same way.
#[test]
fn a_shutdown_after_a_shrink_wakes_the_parked_workers() {
    let pool = Pool::builder()
        .capacity(2)
        .max_capacity(2)
        .pin_workers(false)
        .thread_name(|i| format!("regress-{i}"))
        .build()
        .expect("build");
    // One blocking task on each worker, told apart by thread name.
    let (started_tx, started_rx) = mpsc::channel::<(String, mpsc::Sender<()>)>();
    for _ in 0..2 {
        let started_tx = started_tx.clone();
        pool.submit(move || {
            let (release_tx, release_rx) = mpsc::channel();
            let name = thread::current().name().unwrap_or_default().to_string();
            started_tx.send((name, release_tx)).expect("report start");
            let _ = release_rx.recv_timeout(Duration::from_secs(30));
        })
        .expect("submit");
    }
    let mut releases = BTreeMap::new();
    for _ in 0..2 {
        let (name, release) = started_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("both tasks start");
        releases.insert(name, release);
    }
    let release = |name: &str| releases[name].send(()).expect("release");
    release("regress-0");
    assert!(
        soon(|| pool.worker_stats()[0].state == WorkerState::Sleeping),
        "worker 0 parks"
    );
    pool.tune(1).expect("tune(1)");
    let parks = pool.worker_stats()[0].parks;
    let (done_tx, done_rx) = mpsc::channel();
    let closer = pool.clone();
    thread::spawn(move || {
        closer.shutdown();
        let _ = done_tx.send(());
    });
    assert!(soon(|| pool.is_closed()), "shutdown closes the pool");
    assert!(
        soon(|| {
            let worker = pool.worker_stats()[0];
            worker.state == WorkerState::Sleeping && worker.parks > parks
        }),
        "worker 0 is woken by the close and parks again (the pool is not drained yet)"
    );
    release("regress-1");
    let returned = done_rx.recv_timeout(Duration::from_secs(10)).is_ok();
    assert!(
        returned,
        "shutdown did not return within 10 s of the last task's end: {:?}, workers {:?}",
        pool.stats(),
        pool.worker_stats()
    );
}

/// A worker that leaves the search to suspend hands the search on, or a
/// task submitted right after a shrink waits in the injector with no thread
/// below the capacity to run it (`wait_idle` hangs with the pool open,
/// capacity 1, worker 0's thread gone by keep-alive, worker 1 `Suspended`,
/// `queued: 2`). The race, made deterministic:
///
/// 1. worker 0's thread expires (keep-alive) while worker 1 runs a task;
///    then worker 1 parks, idle;
/// 2. `tune(1)` wakes worker 1 (above the new capacity) so it can suspend:
///    the waker counts it as *searching*;
/// 3. a `submit` right after sees a searcher, so it neither wakes nor starts
///    anyone (sleep invariant I1: the searcher will find the task);
/// 4. worker 1 sees it is above the capacity, leaves the search at the top
///    of `WorkerThread::main_loop` and suspends. It acts on
///    `end_searching(true)`'s "nobody else is awake, start a thread" answer
///    there, as `found_work` does (wake or start someone if work waits);
///    ignoring it would leave the task in the injector until some later
///    submit started a thread.
#[test]
fn a_submit_right_after_a_shrink_is_run() {
    let pool = Pool::builder()
        .capacity(2)
        .max_capacity(2)
        .keep_alive(Duration::from_millis(20))
        .pin_workers(false)
        .thread_name(|i| format!("regress-{i}"))
        .build()
        .expect("build");
    let (started_tx, started_rx) = mpsc::channel::<(String, mpsc::Sender<()>)>();
    for _ in 0..2 {
        let started_tx = started_tx.clone();
        pool.submit(move || {
            let (release_tx, release_rx) = mpsc::channel();
            let name = thread::current().name().unwrap_or_default().to_string();
            started_tx.send((name, release_tx)).expect("report start");
            let _ = release_rx.recv_timeout(Duration::from_secs(30));
        })
        .expect("submit");
    }
    let mut releases = BTreeMap::new();
    for _ in 0..2 {
        let (name, release) = started_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("both tasks start");
        releases.insert(name, release);
    }
    releases["regress-0"].send(()).expect("release worker 0");
    assert!(
        soon(|| pool.worker_stats()[0].state == WorkerState::NotStarted),
        "worker 0's thread expires"
    );
    releases["regress-1"].send(()).expect("release worker 1");
    assert!(
        soon(|| pool.worker_stats()[1].state == WorkerState::Sleeping),
        "worker 1 parks"
    );
    pool.tune(1).expect("tune(1)");
    let ran = Arc::new(AtomicU8::new(0));
    let flag = ran.clone();
    pool.submit(move || flag.store(1, SeqCst)).expect("submit");
    assert!(
        soon(|| ran.load(SeqCst) == 1),
        "the task submitted right after tune(1) did not run within 10 s: {:?}, workers {:?}",
        pool.stats(),
        pool.worker_stats()
    );
    pool.wait_idle();
}
