//! `MultiPool`: building and its errors, thread names per sub-pool, the
//! closure handed back on every refusal, `LeastTasks` steering around a
//! blocked sub-pool (and its load counts going back down on every path),
//! `RoundRobin` spreading and its one retry on `Full`, `tune`, summed
//! `stats`, `wait_idle` across sub-pools, shutdown variants and reboot.
//!
//! Which sub-pool ran a task is read from the running thread's name
//! (`{prefix}-{pool}-{i}`, the default `stealpool-{pool}-{i}` or a prefix
//! unique to the test).
//!
//! No assertion depends on timing. Where a test waits for something that
//! happens "soon" (a blocked task starts, a refusal comes back), it polls with
//! a generous bound that only a broken pool (or a machine stalled for
//! seconds) reaches; every test has a watchdog that turns a hang into a
//! failure.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use stealpool::{BuildError, LoadBalancing, MultiPool, Pool, Refused, SubmitError, TuneError};

mod common;
use common::*;

/// Shutdown, reboot, tune, stats and wait_idle across the sub-pools.
#[path = "multi_pool/lifecycle.rs"]
mod lifecycle;

const STRATEGIES: [LoadBalancing; 2] = [LoadBalancing::RoundRobin, LoadBalancing::LeastTasks];

/// `pools` sub-pools of `capacity` workers, threads named
/// `{prefix}-{pool}-{i}`, panics silenced (tests that panic count them).
/// Strictly isolated (`steal_across(false)`): these tests observe where a
/// task was routed through the name of the thread that runs it, and keep
/// tasks queued behind blocked sub-pools; an idle worker of another
/// sub-pool would take them. The tests of stealing across turn it on.
fn multi(prefix: &'static str, pools: usize, capacity: usize, strategy: LoadBalancing) -> stealpool::MultiPoolBuilder {
    MultiPool::builder()
        .steal_across(false)
        .pools(pools)
        .capacity_per_pool(capacity)
        .strategy(strategy)
        .pool_builder(Pool::builder().panic_handler(|_| ()))
        .thread_name(move |pool, i| format!("{prefix}-{pool}-{i}"))
}

/// The sub-pool index in the current thread's name `{prefix}-{pool}-{i}`.
fn current_sub_pool() -> usize {
    let name = thread::current()
        .name()
        .map(String::from)
        .expect("worker threads are named");
    let mut parts = name.rsplitn(3, '-');
    let _worker = parts.next();
    parts
        .next()
        .and_then(|pool| pool.parse().ok())
        .unwrap_or_else(|| panic!("not a sub-pool worker name: {name}"))
}

/// A closure with an identity: running it sends `id` on the channel, so a
/// closure handed back and run shows it is the very one submitted.
fn tagged(tx: &mpsc::Sender<u64>, id: u64) -> impl FnOnce() + Send + 'static {
    let tx = tx.clone();
    move || tx.send(id).unwrap()
}

/// Runs a refused closure and checks that it is the one with `id`.
fn expect_handed_back<F: FnOnce()>(error: SubmitError<F>, rx: &mpsc::Receiver<u64>, id: u64) {
    error.into_inner()();
    assert_eq!(rx.try_recv(), Ok(id), "a different closure came back");
}

#[test]
fn build_errors() {
    let _w = Watchdog::new("build_errors", 60);
    let zero_pools = MultiPool::builder().pools(0).build().unwrap_err();
    assert!(matches!(zero_pools, BuildError::ZeroPools), "{zero_pools:?}");
    assert!(!zero_pools.to_string().is_empty());
    let zero_capacity = MultiPool::builder().pools(2).capacity_per_pool(0).build().unwrap_err();
    assert!(matches!(zero_capacity, BuildError::ZeroCapacity), "{zero_capacity:?}");
    // The template's own validation applies to each sub-pool.
    let below = MultiPool::builder()
        .pools(2)
        .capacity_per_pool(3)
        .pool_builder(Pool::builder().max_capacity(2))
        .build()
        .unwrap_err();
    assert!(
        matches!(
            below,
            BuildError::MaxCapacityBelowCapacity {
                capacity: 3,
                max_capacity: 2
            }
        ),
        "{below:?}"
    );
    // Without capacity_per_pool, the template's capacity stays.
    let mp = MultiPool::builder()
        .pools(3)
        .pool_builder(Pool::builder().capacity(2).max_capacity(5))
        .build()
        .expect("build");
    assert_eq!(mp.capacity(), 6);
    assert!(mp
        .pools()
        .iter()
        .all(|pool| pool.capacity() == 2 && pool.max_capacity() == 5));
    assert_eq!(mp.strategy(), LoadBalancing::RoundRobin, "the default strategy");
}

#[test]
fn thread_names_say_which_sub_pool() {
    let _w = Watchdog::new("thread_names_say_which_sub_pool", 60);
    // Isolated: the probe must run on the sub-pool it was spawned on.
    let mp = MultiPool::builder()
        .steal_across(false)
        .pools(3)
        .capacity_per_pool(2)
        .build()
        .expect("build");
    for pool in 0..3 {
        let name = mp
            .pool(pool)
            .unwrap()
            .spawn(|| thread::current().name().map(String::from))
            .unwrap();
        let name = name.join().unwrap().expect("named");
        assert!(
            name == format!("stealpool-{pool}-0") || name == format!("stealpool-{pool}-1"),
            "{name}"
        );
    }
    let custom = multi("names", 2, 1, LoadBalancing::RoundRobin).build().expect("build");
    let name = custom
        .pool(1)
        .unwrap()
        .spawn(|| thread::current().name().map(String::from))
        .unwrap();
    assert_eq!(name.join().unwrap().as_deref(), Some("names-1-0"));
}

#[test]
fn closed_hands_back_the_very_closure() {
    let _w = Watchdog::new("closed_hands_back_the_very_closure", 60);
    for strategy in STRATEGIES {
        let mp = multi("closed", 2, 1, strategy).build().expect("build");
        let (tx, rx) = mpsc::channel();
        mp.submit(tagged(&tx, 1)).unwrap();
        mp.shutdown();
        assert_eq!(rx.try_recv(), Ok(1), "{strategy:?}: shutdown ran what it accepted");
        assert!(mp.is_closed());
        for id in 2..6 {
            match mp.submit(tagged(&tx, id)) {
                Err(error @ SubmitError::Closed(_)) => expect_handed_back(error, &rx, id),
                other => panic!("{strategy:?}: expected Closed, got {other:?}"),
            }
        }
        match mp.submit_timeout(tagged(&tx, 9), Duration::from_secs(1)) {
            Err(error @ SubmitError::Closed(_)) => expect_handed_back(error, &rx, 9),
            other => panic!("{strategy:?}: expected Closed, got {other:?}"),
        }
        // Closed is not retried: each refusal is one sub-pool's.
        assert_eq!(mp.stats().rejected, 5, "{strategy:?}");
    }
}

#[test]
fn full_and_timeout_hand_back_the_very_closure() {
    let _w = Watchdog::new("full_and_timeout_hand_back_the_very_closure", 60);
    for strategy in STRATEGIES {
        let mp = multi("full", 2, 1, strategy)
            .pool_builder(Pool::builder().queue_limit(1).nonblocking(true))
            .build()
            .expect("build");
        // Both workers blocked, both queues full.
        let gates: Vec<Gate> = mp.pools().iter().map(block_worker).collect();
        for pool in mp.pools() {
            pool.submit(|| ()).expect("one place in the queue");
        }
        let (tx, rx) = mpsc::channel();
        for id in 0..6 {
            let start = Instant::now();
            match mp.submit(tagged(&tx, id)) {
                Err(error @ SubmitError::Full(_)) => expect_handed_back(error, &rx, id),
                other => panic!("{strategy:?}: expected Full, got {other:?}"),
            }
            assert!(start.elapsed() < SOON, "{strategy:?}: a nonblocking submit waited");
        }
        // submit_timeout waits even on a nonblocking pool, then gives up.
        match mp.submit_timeout(tagged(&tx, 7), Duration::from_millis(20)) {
            Err(error @ SubmitError::Timeout(_)) => expect_handed_back(error, &rx, 7),
            other => panic!("{strategy:?}: expected Timeout, got {other:?}"),
        }
        drop(gates);
        mp.wait_idle();
        assert_eq!(
            rx.try_recv(),
            Err(mpsc::TryRecvError::Empty),
            "{strategy:?}: a refused closure also ran"
        );
        let stats = mp.stats();
        assert_eq!((stats.submitted, stats.completed), (4, 4), "{strategy:?}: {stats:?}");
    }
}

#[test]
fn round_robin_retries_full_once_on_the_other_sub_pool() {
    let _w = Watchdog::new("round_robin_retries_full_once_on_the_other_sub_pool", 60);
    let mp = multi("rrfull", 2, 1, LoadBalancing::RoundRobin)
        .pool_builder(Pool::builder().queue_limit(1).nonblocking(true))
        .build()
        .expect("build");
    let gate = block_worker(mp.pool(0).unwrap());
    mp.pool(0).unwrap().submit(|| ()).expect("one place in the queue");
    // A single submitter: its turns go 0, 1, 0, 1. Sub-pool 0 is full, so
    // the turns on it are retried on sub-pool 1; each task is awaited
    // before the next, so sub-pool 1 always has room.
    let (tx, rx) = mpsc::channel();
    for _ in 0..4 {
        let tx = tx.clone();
        mp.submit(move || tx.send(current_sub_pool()).unwrap())
            .expect("retried on sub-pool 1");
        assert_eq!(rx.recv_timeout(SOON), Ok(1));
    }
    drop(gate);
    mp.wait_idle();
    assert_eq!(mp.pool(0).unwrap().stats().rejected, 2, "two first tries on sub-pool 0");
    assert_eq!(
        mp.pool(0).unwrap().stats().completed,
        2,
        "the blocker and the task queued behind it"
    );
    assert_eq!(mp.pool(1).unwrap().stats().completed, 4);
}

#[test]
fn closed_sub_pool_is_never_retried() {
    let _w = Watchdog::new("closed_sub_pool_is_never_retried", 60);
    // RoundRobin, one submitter: exactly every other turn hits the closed
    // sub-pool, and comes back Closed although sub-pool 1 has room.
    let mp = multi("rrclosed", 2, 1, LoadBalancing::RoundRobin)
        .build()
        .expect("build");
    mp.pool(0).unwrap().shutdown();
    assert!(mp.is_closed(), "one closed sub-pool makes the multi-pool closed");
    let outcomes: Vec<bool> = (0..10).map(|_| mp.submit(|| ()).is_ok()).collect();
    assert_eq!(outcomes, [false, true].repeat(5));
    mp.wait_idle();
    assert_eq!(mp.pool(1).unwrap().stats().completed, 5);
}

/// Puts a blocking task on sub-pool `target` *through the multi-pool*
/// (`LeastTasks`), so that it counts in `target`'s load. Tries that land
/// elsewhere return at once and are awaited (their sub-pool's count is back
/// at zero before the next try). Needs `target`'s count to be among the
/// lowest, which ties going round then reach.
fn counted_blocker(mp: &MultiPool, target: usize) -> Gate {
    let open = Arc::new(AtomicBool::new(false));
    let (landed_tx, landed_rx) = mpsc::channel();
    for _ in 0..100 {
        let (o, landed_tx) = (open.clone(), landed_tx.clone());
        mp.submit(move || {
            let pool = current_sub_pool();
            landed_tx.send(pool).unwrap();
            if pool == target {
                assert!(
                    wait_until(Duration::from_secs(60), || o.load(Ordering::SeqCst)),
                    "gate never opened"
                );
            }
        })
        .unwrap();
        let pool = landed_rx.recv_timeout(SOON).expect("task did not start");
        if pool == target {
            return Gate(open);
        }
        mp.pool(pool).unwrap().wait_idle();
    }
    panic!("no submit went to sub-pool {target}");
}

/// Submits a task that reports its sub-pool, waits for it to finish, and
/// returns the sub-pool (or the refusal, with the closure dropped).
fn probe_one(mp: &MultiPool) -> Result<usize, SubmitError<()>> {
    let (tx, rx) = mpsc::channel();
    mp.submit(move || tx.send(current_sub_pool()).unwrap())
        .map_err(|error| match error {
            SubmitError::Closed(_) => SubmitError::Closed(Refused::new(())),
            SubmitError::Full(_) => SubmitError::Full(Refused::new(())),
            SubmitError::Timeout(_) => SubmitError::Timeout(Refused::new(())),
        })?;
    let pool = rx.recv_timeout(SOON).expect("the task did not run");
    // Finished, so its count is back down before the next submit.
    mp.pool(pool).unwrap().wait_idle();
    Ok(pool)
}

#[test]
fn least_tasks_steers_around_a_blocked_sub_pool() {
    let _w = Watchdog::new("least_tasks_steers_around_a_blocked_sub_pool", 60);
    let mp = multi("steer", 3, 1, LoadBalancing::LeastTasks).build().expect("build");
    let _gate = counted_blocker(&mp, 0);

    // Sub-pool 0's only worker is blocked (load 1); the others are idle
    // (load 0). Every task must go around sub-pool 0; with RoundRobin a
    // third of them would queue behind the blocked task and never report.
    let mut used = BTreeSet::new();
    for _ in 0..30 {
        let pool = probe_one(&mp).expect("accepted");
        assert_ne!(pool, 0);
        used.insert(pool);
    }
    // Ties between the idle sub-pools go round.
    assert_eq!(used, BTreeSet::from([1, 2]));
    assert_eq!(mp.pool(0).unwrap().stats().completed, 0, "the blocker is still running");
}

/// With `LeastTasks` and every count at zero, consecutive submits from a
/// fresh thread (each awaited) visit every sub-pool. A sub-pool whose count
/// stayed up (while the others' are zero) would be skipped.
fn assert_every_load_is_zero(mp: &Arc<MultiPool>) {
    let mp2 = mp.clone();
    let used: BTreeSet<usize> = thread::spawn(move || {
        (0..mp2.pools().len())
            .map(|_| probe_one(&mp2).expect("accepted"))
            .collect()
    })
    .join()
    .unwrap();
    assert_eq!(
        used,
        (0..mp.pools().len()).collect(),
        "a sub-pool's load count did not go back to zero"
    );
}

#[test]
fn least_tasks_counts_go_back_down_on_every_path() {
    let _w = Watchdog::new("least_tasks_counts_go_back_down_on_every_path", 60);
    // Every path is taken on sub-pool 0 only: equal leftovers on both
    // sub-pools would not show.
    let mp = Arc::new(
        multi("counts", 2, 1, LoadBalancing::LeastTasks)
            .pool_builder(Pool::builder().queue_limit(2).nonblocking(true).panic_handler(|_| ()))
            .build()
            .expect("build"),
    );
    assert_every_load_is_zero(&mp);

    // Tasks that panic on sub-pool 0 (and return on sub-pool 1); each
    // awaited, so both counts are zero at each submit and ties go round.
    let mut panics = 0;
    for _ in 0..10 {
        let (tx, rx) = mpsc::channel();
        mp.submit(move || {
            let pool = current_sub_pool();
            tx.send(pool).unwrap();
            assert!(pool != 0, "a task on sub-pool 0 panics");
        })
        .unwrap();
        let pool = rx.recv_timeout(SOON).expect("the task did not run");
        mp.pool(pool).unwrap().wait_idle();
        panics += usize::from(pool == 0);
    }
    assert_eq!(panics, 5, "ties alternate between the two sub-pools");
    assert_eq!(mp.stats().panicked, 5);
    assert_every_load_is_zero(&mp);

    // Refused for room by sub-pool 0 (blocked, queue full); sub-pool 1 takes
    // the others.
    {
        let _gate = block_worker(mp.pool(0).unwrap());
        mp.pool(0).unwrap().submit(|| ()).unwrap();
        mp.pool(0).unwrap().submit(|| ()).unwrap();
        let outcomes: Vec<_> = (0..6).map(|_| probe_one(&mp)).collect();
        let full = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, Err(SubmitError::Full(_))))
            .count();
        let on_1 = outcomes.iter().filter(|outcome| matches!(outcome, Ok(1))).count();
        assert_eq!((full, on_1), (3, 3), "{outcomes:?}");
    }
    mp.wait_idle();
    assert_every_load_is_zero(&mp);

    // Refused because sub-pool 0 is closed.
    mp.pool(0).unwrap().shutdown();
    let outcomes: Vec<_> = (0..6).map(|_| probe_one(&mp)).collect();
    let closed = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Err(SubmitError::Closed(_))))
        .count();
    assert_eq!(closed, 3, "{outcomes:?}");
    mp.reboot().unwrap();
    assert_every_load_is_zero(&mp);

    // Handed back by shutdown_now: one task of sub-pool 0 dropped unrun, the
    // others run by the caller. A counted blocker on sub-pool 1 steers the
    // submits to sub-pool 0, whose worker is blocked (uncounted), until two
    // wait there (a tie may put one behind the blocker on sub-pool 1).
    let gate1 = counted_blocker(&mp, 1);
    let gate0 = block_worker(mp.pool(0).unwrap());
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        if mp.pool(0).unwrap().stats().queued == 2 {
            break;
        }
        let ran = ran.clone();
        mp.submit(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    assert_eq!(mp.pool(0).unwrap().stats().queued, 2);
    let queued = mp.stats().queued;
    let releaser = {
        let mp = mp.clone();
        thread::spawn(move || {
            // shutdown_now drains sub-pool i while its worker is blocked,
            // then waits for that worker: open each gate once its queue is
            // drained (and not before, or the worker would run the tasks).
            for (pool, gate) in [gate0, gate1].iter().enumerate() {
                assert!(wait_until(SOON * 3, || {
                    mp.pool(pool).unwrap().is_closed() && mp.pool(pool).unwrap().stats().queued == 0
                }));
                gate.open();
            }
        })
    };
    let mut unrun = mp.shutdown_now();
    releaser.join().unwrap();
    assert_eq!(unrun.len(), queued);
    drop(unrun.remove(0)); // sub-pool 0's come first
    for task in unrun {
        task.run();
    }
    assert_eq!(ran.load(Ordering::SeqCst), queued - 1);
    mp.reboot().unwrap();
    assert_every_load_is_zero(&mp);
}

#[test]
fn round_robin_spreads_evenly() {
    let _w = Watchdog::new("round_robin_spreads_evenly", 60);
    let mp = multi("rr", 4, 1, LoadBalancing::RoundRobin).build().expect("build");
    let ran: Arc<[AtomicUsize; 4]> = Arc::new(Default::default());
    // One submitter, no refusal: the turns go 0, 1, 2, 3, 0, ...
    for _ in 0..400 {
        let ran = ran.clone();
        mp.submit(move || {
            ran[current_sub_pool()].fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    mp.wait_idle();
    for (pool, count) in ran.iter().enumerate() {
        assert_eq!(count.load(Ordering::SeqCst), 100, "sub-pool {pool}");
        assert_eq!(mp.pool(pool).unwrap().stats().completed, 100, "sub-pool {pool}");
    }
}

/// The cores this thread may run on, as the kernel lists them.
fn allowed_cpus_of_this_thread() -> String {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .map(|list| list.trim().to_owned())
        .unwrap_or_default()
}

#[test]
fn split_cores_gives_each_sub_pool_its_own_cores() {
    let _w = Watchdog::new("split_cores_gives_each_sub_pool_its_own_cores", 60);
    let Some(cores) = core_affinity_count() else {
        println!("skipped: cannot read this process's allowed cores");
        return;
    };
    if cores < 2 {
        println!("skipped: fewer than 2 cores to split");
        return;
    }
    // Strict isolation: each probe must run on its own sub-pool's worker
    // (an idle worker of the other sub-pool would otherwise take it first).
    let mp = MultiPool::builder()
        .pools(2)
        .capacity_per_pool(1)
        .split_cores()
        .steal_across(false)
        .build()
        .unwrap();
    let mut seen = Vec::new();
    for index in 0..2 {
        let h = mp.pool(index).unwrap().spawn(allowed_cpus_of_this_thread).unwrap();
        seen.push(h.join().unwrap());
    }
    println!("sub-pool cores: {seen:?}");
    assert!(seen.iter().all(|list| !list.is_empty()), "{seen:?}");
    assert_ne!(seen[0], seen[1], "both sub-pools pinned to the same cores: {seen:?}");
    mp.shutdown();
}

/// How many cores this process may run on (None if unknown).
fn core_affinity_count() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let list = status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))?;
    let mut count = 0;
    for part in list.trim().split(',') {
        let mut ends = part.split('-').map(|n| n.parse::<usize>().ok());
        match (ends.next()?, ends.next()) {
            (Some(a), Some(Some(b))) => count += b - a + 1,
            (Some(_), None) => count += 1,
            _ => return None,
        }
    }
    Some(count)
}

#[test]
fn spawn_returns_results_from_either_strategy_and_hands_back_on_refusal() {
    let _w = Watchdog::new(
        "spawn_returns_results_from_either_strategy_and_hands_back_on_refusal",
        60,
    );
    for strategy in [LoadBalancing::LeastTasks, LoadBalancing::RoundRobin] {
        let mp = MultiPool::builder()
            .pools(2)
            .capacity_per_pool(1)
            .strategy(strategy)
            .build()
            .unwrap();
        let handles: Vec<_> = (0..20u64).map(|i| mp.spawn(move || i * i).unwrap()).collect();
        let results: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(results, (0..20u64).map(|i| i * i).collect::<Vec<_>>());
        let panicked = mp.spawn(|| panic!("boom")).unwrap();
        assert!(panicked.join().is_err());
        mp.wait_idle();
        assert_eq!(mp.stats().completed, 21);
        mp.shutdown();
        match mp.spawn(|| 5) {
            Err(SubmitError::Closed(task)) => assert_eq!(task.into_inner()(), 5),
            Err(other) => panic!("expected Closed, got {other}"),
            Ok(_) => panic!("a closed multi-pool accepted a spawn"),
        }
    }
}

/// Hierarchical stealing: two capacity-1 sub-pools, one whose worker is
/// blocked; a burst of 100 tiny tasks with `LeastTasks` puts some behind the
/// blocked worker, and the other sub-pool's worker takes them. The blocked
/// task waits until all 100 ran (10 s bound): without stealing across it
/// would wait for tasks queued behind itself and time out.
#[test]
fn an_idle_sub_pool_runs_the_tasks_queued_behind_a_blocked_one() {
    let _w = Watchdog::new("idle_sub_pool_helps", 60);
    let mp = multi("across", 2, 1, LoadBalancing::LeastTasks)
        .steal_across(true)
        .build()
        .expect("build");
    let done = Arc::new(AtomicUsize::new(0));
    let (finished_tx, finished_rx) = mpsc::channel();
    let d = done.clone();
    mp.pool(0)
        .expect("sub-pool")
        .submit(move || {
            let all = wait_until(Duration::from_secs(10), || d.load(Ordering::SeqCst) == 100);
            finished_tx.send(all).unwrap();
        })
        .unwrap();
    let started = Instant::now();
    for _ in 0..100 {
        let done = done.clone();
        mp.submit(move || {
            done.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    assert!(
        finished_rx.recv().unwrap(),
        "only {} of 100 tasks ran while sub-pool 0 was blocked",
        done.load(Ordering::SeqCst)
    );
    println!("100 tasks done in {:?} with one sub-pool blocked", started.elapsed());
    mp.wait_idle();
    let stats = mp.stats();
    assert_eq!((stats.submitted, stats.completed), (101, 101));
}

/// `steal_across(false)`: a task queued behind a blocked sub-pool stays
/// there while the other sub-pool idles, and runs once the blocker ends.
#[test]
fn strict_isolation_keeps_tasks_on_their_sub_pool() {
    let _w = Watchdog::new("strict_isolation", 60);
    let mp = multi("strict", 2, 1, LoadBalancing::RoundRobin).build().expect("build");
    let gate = block_worker(mp.pool(0).expect("sub-pool"));
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    mp.pool(0)
        .expect("sub-pool")
        .submit(move || {
            assert_eq!(current_sub_pool(), 0);
            r.store(true, Ordering::SeqCst);
        })
        .unwrap();
    // Sub-pool 1 is idle and sees nothing of sub-pool 0's queue.
    thread::sleep(Duration::from_millis(50));
    assert!(!ran.load(Ordering::SeqCst));
    assert_eq!(mp.pool(1).expect("sub-pool").stats().completed, 0);
    gate.open();
    mp.wait_idle();
    assert!(ran.load(Ordering::SeqCst));
}

/// Stealing across on a fresh `MultiPool` (threads on demand): a sub-pool
/// that never had work has no thread, and none started for the tasks queued
/// behind a blocked sibling, which waited for the blocker though the other
/// sub-pool had room for a thread. The queued task must run on sub-pool 1
/// while the blocker still blocks (10 s bound; it starts in microseconds).
#[test]
fn a_sub_pool_without_a_thread_starts_one_for_work_queued_behind_a_blocked_sibling() {
    let _w = Watchdog::new("sibling_without_a_thread", 60);
    let mp = multi("nothread", 2, 1, LoadBalancing::RoundRobin)
        .steal_across(true)
        .build()
        .expect("build");
    let (pool0, pool1) = (mp.pool(0).expect("sub-pool"), mp.pool(1).expect("sub-pool"));
    assert_eq!(pool1.stats().live_workers, 0, "threads start on demand");
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    pool0
        .submit(move || {
            entered_tx.send(()).unwrap();
            let _ = release_rx.recv_timeout(Duration::from_secs(30));
        })
        .unwrap();
    entered_rx.recv_timeout(SOON).expect("the blocker started");
    let (ran_tx, ran_rx) = mpsc::channel();
    pool0.submit(move || ran_tx.send(current_sub_pool()).unwrap()).unwrap();
    let ran_on = ran_rx.recv_timeout(SOON);
    release_tx.send(()).unwrap();
    assert_eq!(
        ran_on,
        Ok(1),
        "the task queued behind the blocked sub-pool 0 did not run on sub-pool 1 (no thread started there)"
    );
    mp.wait_idle();
    let stats = mp.stats();
    assert_eq!((stats.submitted, stats.completed), (2, 2));
}
