//! The capacity protocol under loom: tune, reboot, the queue limit,
//! keep-alive.

use super::*;

// ---------------------------------------------------------------------------
// The capacity protocol: tune, reboot, the queue limit, keep-alive.
// ---------------------------------------------------------------------------

/// `pool()`'s settings as a builder, for models that need more of them.
pub(super) fn small(capacity: usize, max_capacity: usize) -> Builder {
    Pool::builder()
        .capacity(capacity)
        .max_capacity(max_capacity)
        .pin_workers(false)
}

/// A one-shot gate a task can block on (loom's lock and condvar, so a gate
/// that never opens is a loom deadlock, not a hang).
pub(super) struct Gate {
    open: Mutex<bool>,
    condvar: Condvar,
}

impl Gate {
    pub(super) fn new() -> Arc<Gate> {
        Arc::new(Gate {
            open: Mutex::new(false),
            condvar: Condvar::new(),
        })
    }

    pub(super) fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.condvar.notify_all();
    }

    pub(super) fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.condvar.wait(open).unwrap();
        }
    }
}

/// Submits a task that adds `amount` to `counter`; the pool must accept it.
pub(super) fn submit_adding(pool: &Pool, counter: &Arc<AtomicUsize>, amount: usize) {
    let counter = counter.clone();
    pool.submit(move || {
        counter.fetch_add(amount, Ordering::Relaxed);
    })
    .unwrap_or_else(|_| panic!("open pool refused a task"));
}

/// Submits a task that waits for `gate`, then adds `amount` to `counter`.
pub(super) fn submit_gated(pool: &Pool, gate: &Arc<Gate>, counter: &Arc<AtomicUsize>, amount: usize) {
    let (gate, counter) = (gate.clone(), counter.clone());
    pool.submit(move || {
        gate.wait();
        counter.fetch_add(amount, Ordering::Relaxed);
    })
    .unwrap_or_else(|_| panic!("open pool refused a task"));
}

/// Submits a task that adds `amount` to `counter`, then opens `gate`.
pub(super) fn submit_opening(pool: &Pool, gate: &Arc<Gate>, counter: &Arc<AtomicUsize>, amount: usize) {
    let (gate, counter) = (gate.clone(), counter.clone());
    pool.submit(move || {
        counter.fetch_add(amount, Ordering::Relaxed);
        gate.open();
    })
    .unwrap_or_else(|_| panic!("open pool refused a task"));
}

/// Grows `pool` to 2 from another thread while the gated pair is submitted:
/// B needs the second worker, whichever way the grow and the pair race.
pub(super) fn grow_to_two_while_submitting_a_gated_pair(pool: Pool) {
    let ran = Arc::new(AtomicUsize::new(0));
    let tuner = {
        let pool = pool.clone();
        loom::thread::spawn(move || pool.tune(2).expect("valid capacity"))
    };
    submit_gated_pair(&pool, &ran);
    pool.wait_idle();
    assert_eq!(ran.load(Ordering::Relaxed), 11);
    tuner.join().unwrap();
    pool.shutdown();
}

/// Submits task A (+1), which blocks until task B (+10) has run, then B:
/// while A holds a worker, B needs another one.
pub(super) fn submit_gated_pair(pool: &Pool, ran: &Arc<AtomicUsize>) {
    let gate = Gate::new();
    submit_gated(pool, &gate, ran, 1);
    submit_opening(pool, &gate, ran, 10);
}

/// Shrinking 2 -> 1 from one thread while another submits, both workers
/// started: a worker above the new capacity that took the task gives it
/// back (or runs it, if it took it before the shrink), a sleeping one is
/// woken to suspend. The task runs exactly once, `wait_idle` returns and
/// shutdown joins both workers, the suspended one included.
#[test]
fn tune_shrink_racing_submit() {
    model_bounded(1, || {
        let pool = small(2, 2).prealloc(true).build().expect("pool builds");
        let ran = Arc::new(AtomicUsize::new(0));
        let tuner = {
            let pool = pool.clone();
            loom::thread::spawn(move || pool.tune(1).expect("valid capacity"))
        };
        submit_adding(&pool, &ran, 1);
        tuner.join().unwrap();
        pool.wait_idle();
        assert_eq!(ran.load(Ordering::Relaxed), 1);
        assert_eq!(pool.capacity(), 1);
        pool.shutdown();
    });
}

/// Shrinking 2 -> 1 while a task submits another onto its worker's own
/// deque: the other worker may steal it, a worker above the new capacity
/// hands its deque back to the injector as it suspends, or gives back a
/// task it took after the shrink. Each task runs exactly once (distinct
/// increments: 1 + 10).
#[test]
fn tune_shrink_racing_nested_submit_and_steal() {
    model_bounded(1, || {
        let pool = small(2, 2).prealloc(true).build().expect("pool builds");
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = ran.clone();
        let inner_pool = pool.clone();
        pool.submit(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            let counter = counter.clone();
            inner_pool
                .submit(move || {
                    counter.fetch_add(10, Ordering::Relaxed);
                })
                .unwrap_or_else(|_| panic!("open pool refused a nested task"));
        })
        .unwrap_or_else(|_| panic!("open pool refused a task"));
        pool.tune(1).expect("valid capacity");
        pool.wait_idle();
        assert_eq!(ran.load(Ordering::Relaxed), 11);
        pool.shutdown();
    });
}

/// After `tune(1)` returns, tasks submitted later run one at a time (the
/// capacity's promise, invariant I12 in src/scheduler/worker/README.md), although worker 1 is
/// still live above the capacity and may take one of them with a stale
/// capacity: it must give it back instead of running it.
#[test]
fn tune_shrink_bounds_later_tasks() {
    model_bounded(1, || {
        let pool = small(2, 2).prealloc(true).build().expect("pool builds");
        pool.tune(1).expect("valid capacity");
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let ran = Arc::new(AtomicUsize::new(0));
        for amount in [1, 10] {
            let (running, most, ran) = (running.clone(), most.clone(), ran.clone());
            pool.submit(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                ran.fetch_add(amount, Ordering::Relaxed);
                running.fetch_sub(1, Ordering::SeqCst);
            })
            .unwrap_or_else(|_| panic!("open pool refused a task"));
        }
        pool.wait_idle();
        assert_eq!(ran.load(Ordering::Relaxed), 11);
        assert_eq!(most.load(Ordering::SeqCst), 1, "two tasks ran at once at capacity 1");
        pool.shutdown();
    });
}

/// Shrinking 2 -> 1 and at once growing back to 2, racing worker 1 on its
/// way into suspension (woken by the shrink, or still starting); then two
/// tasks, A blocking until B has run, so whichever worker takes A, B needs
/// the other one. If the grow and the suspension miss each other (worker 1
/// parks SUSPENDED under capacity 2 and nobody resumes it), B never runs
/// and loom reports the deadlock.
#[test]
fn tune_grow_racing_suspend() {
    model_bounded(1, || {
        let pool = small(2, 2).prealloc(true).build().expect("pool builds");
        pool.tune(1).expect("valid capacity");
        pool.tune(2).expect("valid capacity");
        let ran = Arc::new(AtomicUsize::new(0));
        submit_gated_pair(&pool, &ran);
        pool.wait_idle();
        assert_eq!(ran.load(Ordering::Relaxed), 11);
        pool.shutdown();
    });
}

/// Growing 1 -> 2 from another thread while the only worker takes (or
/// runs) task A and task B is submitted: the second worker's thread must
/// start, by the submit (if it sees the new capacity), by `tune` (if it
/// sees B queued) or by the worker's fan-out as it stops searching. A
/// blocks until B has run, so a start all three skip is a loom deadlock.
#[test]
fn tune_grow_racing_submit_to_a_busy_worker() {
    model_bounded(1, || {
        let pool = small(1, 2).build().expect("pool builds");
        grow_to_two_while_submitting_a_gated_pair(pool);
    });
}

/// As above, with the grow between the two submits, on the submitting
/// thread. Without a fence after the last searcher's `end_searching` (now
/// the one in `WorkerThread::hand_on_search`) a thread start is lost:
///
/// 1. `submit(A)` starts worker 0 (`missing` drops to 0). Worker 0, counted
///    searching, steals A, ends its search as the last searcher
///    (`end_searching`, a SeqCst RMW) and reads `missing` = 0, true then:
///    no fan-out. It runs A, which waits for B.
/// 2. `tune(2)` stores `missing = 1`, finds the injector empty (A is taken)
///    and starts nothing.
/// 3. `submit(B)` pushes B, fences (SeqCst) and reads the sleep word, which
///    may still show worker 0 searching: without a fence after its
///    `end_searching` RMW nothing orders that before the submitter's fence
///    (C++20 allows the old value, and so does loom, which orders SeqCst
///    through fences only). "Somebody is searching": no wake, no start.
///
/// B would wait in the injector while A waits for B: worker 1 never starts
/// although the capacity is 2 (weak memory only; on x86 the RMW is a full
/// barrier).
#[test]
fn tune_grow_then_submit_while_the_worker_takes_work() {
    model_bounded(1, || {
        let pool = small(1, 2).build().expect("pool builds");
        let ran = Arc::new(AtomicUsize::new(0));
        let gate = Gate::new();
        submit_gated(&pool, &gate, &ran, 1);
        pool.tune(2).expect("valid capacity");
        submit_opening(&pool, &gate, &ran, 10);
        pool.wait_idle();
        assert_eq!(ran.load(Ordering::Relaxed), 11);
        pool.shutdown();
    });
}

/// `reboot` racing `shutdown`, with a task accepted before either: the task
/// runs exactly once, both calls return, and afterwards the pool is either
/// running (a submit is accepted and runs) or closed (the submit hands its
/// closure back). The submit comes before the racing shutdown is joined: a
/// shutdown that lost the race must not wait for (join) the threads of the
/// rebooted pool, which do not exit. A final shutdown joins whatever
/// threads there are.
#[test]
fn reboot_racing_shutdown() {
    model(|| {
        let pool = pool(1);
        let ran = Arc::new(AtomicUsize::new(0));
        submit_adding(&pool, &ran, 1);
        let closer = {
            let pool = pool.clone();
            loom::thread::spawn(move || pool.shutdown())
        };
        pool.reboot().expect("reboot from outside the pool");
        let counter = ran.clone();
        match pool.submit(move || {
            counter.fetch_add(10, Ordering::Relaxed);
        }) {
            Ok(()) => {}
            Err(SubmitError::Closed(task)) => {
                assert!(pool.is_closed());
                // The very closure comes back: running it here counts.
                task.into_inner()();
            }
            Err(_) => panic!("unexpected refusal"),
        }
        closer.join().unwrap();
        pool.wait_idle();
        assert_eq!(ran.load(Ordering::Relaxed), 11);
        pool.shutdown();
    });
}

/// Queue limit 1 at capacity 1: two tasks may be in the pool (waiting or
/// running), so the third submit blocks until one of them finishes. Task B
/// waits for a gate that opens only after that submit returned, so the
/// only thing that can wake it is task A finishing (room). All three run; a
/// lost room wake-up is a loom deadlock.
#[test]
fn blocked_submitter_woken_by_room() {
    model(|| {
        let pool = small(1, 1).queue_limit(1).build().expect("pool builds");
        let ran = Arc::new(AtomicUsize::new(0));
        let gate = Gate::new();
        submit_adding(&pool, &ran, 1);
        submit_gated(&pool, &gate, &ran, 10);
        submit_adding(&pool, &ran, 100);
        gate.open();
        pool.wait_idle();
        assert_eq!(ran.load(Ordering::Relaxed), 111);
        pool.shutdown();
    });
}

/// Queue limit 1 at capacity 1: the only worker is held by task A (gated)
/// and task B waits behind it, so a third submit blocks. A shutdown from
/// another thread must wake it with `SubmitError::Closed` and the closure
/// back; nothing else can wake it (the gate opens only after it returned),
/// so a lost wake is a deadlock. The accepted tasks still run.
#[test]
fn blocked_submitter_woken_by_shutdown() {
    model(|| {
        let pool = small(1, 1).queue_limit(1).build().expect("pool builds");
        let ran = Arc::new(AtomicUsize::new(0));
        let gate = Gate::new();
        submit_gated(&pool, &gate, &ran, 1);
        submit_adding(&pool, &ran, 10);
        let submitter = {
            let pool = pool.clone();
            let ran = ran.clone();
            loom::thread::spawn(move || {
                match pool.submit(move || {
                    ran.fetch_add(100, Ordering::Relaxed);
                }) {
                    // The very closure comes back: run it here.
                    Err(SubmitError::Closed(task)) => task.into_inner()(),
                    Ok(()) => panic!("a full pool took a task while its worker was held"),
                    Err(_) => panic!("unexpected refusal"),
                }
            })
        };
        let closer = {
            let pool = pool.clone();
            loom::thread::spawn(move || pool.shutdown())
        };
        submitter.join().unwrap();
        gate.open();
        closer.join().unwrap();
        assert_eq!(ran.load(Ordering::Relaxed), 111);
    });
}

/// Queue limit 1 at capacity 1 of 2: tasks A and B (both gated) fill the
/// pool, so a third submit blocks; growing to 2 raises the room to 3 (the
/// limit plus the capacity) and must wake it: nothing else can (no task
/// finishes before the gate opens, which happens only after the submit
/// returned). The grow also starts a worker for B, which waits at the gate.
#[test]
fn blocked_submitter_woken_by_tune_grow() {
    model_bounded(1, || {
        let pool = small(1, 2).queue_limit(1).build().expect("pool builds");
        let ran = Arc::new(AtomicUsize::new(0));
        let gate = Gate::new();
        submit_gated(&pool, &gate, &ran, 1);
        submit_gated(&pool, &gate, &ran, 10);
        let submitter = {
            let pool = pool.clone();
            let ran = ran.clone();
            loom::thread::spawn(move || submit_adding(&pool, &ran, 100))
        };
        pool.tune(2).expect("valid capacity");
        submitter.join().unwrap();
        gate.open();
        pool.wait_idle();
        assert_eq!(ran.load(Ordering::Relaxed), 111);
        pool.shutdown();
    });
}

/// Keep-alive expiry racing a submit.
///
/// Under loom, time does not pass in the model: `Condvar::wait_timeout` is
/// a plain `wait` (loom 0.7: "TODO: implement timing out"), so
/// `Parker::park_timeout` returns only when unparked, while `Instant` is
/// still the real clock (`Sleep::park_until_woken_or`, `worker.rs`). A
/// keep-alive long enough to be reached by chance would make the model
/// depend on wall-clock time, which loom cannot replay. Two settings are
/// deterministic: a keep-alive so long it never runs out (a plain park), or
/// one so short (1 ns) that the deadline has always passed by the time the
/// worker checks it, after a loom atomic load: every park of an idle worker
/// expires at once. This model uses the latter, so the worker goes through
/// `expire` (retract, `try_retire`, the final scan, handing work back)
/// every time it runs out of work, racing the second submit, which must
/// wake it, find it searching, or start a new thread for the slot.
#[test]
fn keep_alive_expiry_racing_submit() {
    model(|| {
        let pool = small(1, 1)
            .min_workers(0)
            .keep_alive(Duration::from_nanos(1))
            .build()
            .expect("pool builds");
        let ran = Arc::new(AtomicUsize::new(0));
        submit_adding(&pool, &ran, 1);
        // The worker now runs out of work and expires, racing the next submit.
        pool.wait_idle();
        submit_adding(&pool, &ran, 10);
        pool.wait_idle();
        assert_eq!(ran.load(Ordering::Relaxed), 11);
        pool.shutdown();
    });
}

/// A suspended worker whose keep-alive runs out, racing a grow that needs
/// it back. With a 1 ns keep-alive, worker 1 (suspended by the shrink to 1)
/// retires the moment it parks; the grow back to 2 comes from another
/// thread while the gated pair (A blocks until B ran) is submitted, so B
/// needs a second worker. `try_retire_suspended` and `tune` decide under
/// the control lock: either the worker leaves first and `tune` counts its
/// slot as missing (and starts a thread for queued work, or the submit
/// does), or it sees the grown capacity and stays. A thread that left
/// while `tune` still counted it live would strand B: a loom deadlock.
#[test]
fn suspended_keep_alive_expiry_racing_tune_grow() {
    model_bounded(1, || {
        let pool = small(2, 2)
            .min_workers(0)
            .keep_alive(Duration::from_nanos(1))
            .prealloc(true)
            .build()
            .expect("pool builds");
        pool.tune(1).expect("valid capacity");
        grow_to_two_while_submitting_a_gated_pair(pool);
    });
}
