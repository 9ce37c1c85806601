//! loom models of single components, each on its own: the latch, the
//! parker, `join` on a worker's pending-join frames, and the sleep
//! protocol against a push from inside the pool.
//!
//! Run with the other models (`.ci/run`):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom \
//!     cargo test --release --test loom_components
//! ```
//!
//! `tests/loom.rs` drives the whole pool; these drive one component with
//! two or three threads, so loom explores every interleaving within the
//! preemption bound in well under a second each. They reach the scheduler
//! through `stealpool::loom_components`, which exists only under
//! `--cfg loom` and forwards to the real items. A lost wake-up shows as
//! loom's "deadlock"; a missing Release/Acquire pair as a causality
//! violation on a `loom::cell::UnsafeCell` written by one thread and read
//! by the other.
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use stealpool::loom_components::{JoinThread, Latch, Parker};

/// A pointer to a latch another thread sets (the owner keeps it alive
/// until it sees SET, as a stack job's owner does).
struct LatchPtr(*const Latch);
// SAFETY: the latch is set through `Latch::set`, which is what a thread
// running a stack job does with the pointer it carries.
unsafe impl Send for LatchPtr {}

/// A value written by one thread and read by another after a
/// synchronising operation: loom reports a causality violation if the
/// read is not ordered after the write.
#[derive(Clone)]
struct Handoff(Arc<UnsafeCell<usize>>);
// SAFETY: loom checks every access to the cell for a data race.
unsafe impl Send for Handoff {}
// SAFETY: as above.
unsafe impl Sync for Handoff {}

/// The join thread, carried into a closure `a`: `join` runs `a` on the
/// joining thread itself (only `b` may be stolen), so the reference never
/// leaves it (a worker's `a` finds its worker in a thread-local instead).
#[derive(Clone, Copy)]
struct OnHost<'a>(&'a JoinThread);
// SAFETY: see above: used only on the joining thread.
unsafe impl Send for OnHost<'_> {}

impl Handoff {
    fn new() -> Self {
        Handoff(Arc::new(UnsafeCell::new(0)))
    }
    fn write(&self, value: usize) {
        // SAFETY: loom checks the access: only the writer before the
        // handoff, only the reader after it.
        self.0.with_mut(|cell| unsafe { *cell = value });
    }
    fn read(&self) -> usize {
        // SAFETY: as above.
        self.0.with(|cell| unsafe { *cell })
    }
}

/// An idle thief: says it is idle, then looks for a published half until
/// it has run one or the join is over (`done`), yielding between looks,
/// as a searching worker would (a yield lets loom run the joining thread
/// without spending a preemption, so the steal can come after any step of
/// the join).
fn idle_thief(thief: stealpool::loom_components::Thief, done: Arc<AtomicBool>) -> thread::JoinHandle<bool> {
    thread::spawn(move || {
        thief.announce_idle();
        loop {
            if thief.steal_and_run() {
                return true;
            }
            // SeqCst: a plain flag; any ordering would do.
            if done.load(Ordering::SeqCst) {
                return false;
            }
            thread::yield_now();
        }
    })
}

// ---------------------------------------------------------------------------
// Latch (I45)
// ---------------------------------------------------------------------------

/// A setter racing a thread that probes, announces it blocks and parks
/// (`wait_blocking`): the owner always wakes (no lost unpark, whether the
/// set comes before the probe, between the probe and the announcement, or
/// after it), and sees what the setter wrote before `set` (Release in
/// `set`, Acquire in `probe`).
#[test]
fn latch_set_racing_a_blocking_wait() {
    loom::model(|| {
        let latch = Latch::for_current_thread();
        let result = Handoff::new();
        let setter = {
            let (latch, result) = (LatchPtr(&latch), result.clone());
            thread::spawn(move || {
                let latch = latch;
                result.write(42);
                // SAFETY: the owner waits for SET before `latch` goes.
                unsafe { Latch::set(latch.0) };
            })
        };
        latch.wait_blocking();
        assert_eq!(result.read(), 42);
        setter.join().unwrap();
    });
}

/// The worker's way of waiting on a latch it owns (probe, announce, park
/// on its parker until the probe sees SET), with a stray token left on the
/// parker by an earlier wake-up: the stray token makes one park return
/// early, the loop re-checks, and the setter's unpark is never lost.
#[test]
fn latch_owned_by_a_worker_parker_wakes_it_past_a_stray_token() {
    loom::model(|| {
        let parker = Arc::new(Parker::new());
        parker.unpark(); // the stray token
        let latch = Latch::owned_by(&parker);
        let result = Handoff::new();
        let setter = {
            let (latch, result, keep) = (LatchPtr(&latch), result.clone(), parker.clone());
            thread::spawn(move || {
                let latch = latch;
                result.write(7);
                // SAFETY: the owner waits for SET before `latch` goes;
                // `keep` holds the parker past the unpark.
                unsafe { Latch::set(latch.0) };
                drop(keep);
            })
        };
        while !latch.probe() {
            if latch.announce_block() {
                while !latch.probe() {
                    parker.park();
                }
            }
        }
        assert_eq!(result.read(), 7);
        setter.join().unwrap();
    });
}

// ---------------------------------------------------------------------------
// Parker (I46)
// ---------------------------------------------------------------------------

/// An unpark before the park leaves a token: the park returns at once,
/// through its fast path, and sees what the unparker wrote (the token's
/// Release/Acquire is the only thing ordering the two: the parker learns
/// of the unpark through a Relaxed flag).
#[test]
fn parker_unpark_before_park_leaves_a_token() {
    loom::model(|| {
        let parker = Arc::new(Parker::new());
        let data = Handoff::new();
        let unparked = Arc::new(AtomicBool::new(false));
        let unparker = {
            let (parker, data, unparked) = (parker.clone(), data.clone(), unparked.clone());
            thread::spawn(move || {
                data.write(1);
                parker.unpark();
                unparked.store(true, Ordering::Relaxed);
            })
        };
        while !unparked.load(Ordering::Relaxed) {
            thread::yield_now();
        }
        parker.park();
        assert_eq!(data.read(), 1);
        unparker.join().unwrap();
    });
}

/// An unpark racing the park, at any point of it (before the fast path,
/// while the parker takes its lock, between marking itself PARKED and
/// waiting): the one token is never lost, the park returns only by
/// consuming it, and the unparker's writes are visible after it.
#[test]
fn parker_unpark_racing_park_is_never_lost() {
    loom::model(|| {
        let parker = Arc::new(Parker::new());
        let data = Handoff::new();
        let unparker = {
            let (parker, data) = (parker.clone(), data.clone());
            thread::spawn(move || {
                data.write(2);
                parker.unpark();
            })
        };
        parker.park();
        assert_eq!(data.read(), 2);
        unparker.join().unwrap();
    });
}

/// Two unparkers, each after its own event, and a parker that parks until
/// it has seen both: tokens coalesce (a second unpark before the park adds
/// nothing), but the thread is never left parked with an event unseen.
#[test]
fn parker_two_unparkers_leave_no_event_unseen() {
    loom::model(|| {
        let parker = Arc::new(Parker::new());
        let events = Arc::new(AtomicUsize::new(0));
        let unparkers: Vec<_> = (0..2)
            .map(|_| {
                let (parker, events) = (parker.clone(), events.clone());
                thread::spawn(move || {
                    // Relaxed: the parker's Release/Acquire orders it.
                    events.fetch_add(1, Ordering::Relaxed);
                    parker.unpark();
                })
            })
            .collect();
        while events.load(Ordering::Relaxed) < 2 {
            parker.park();
        }
        for unparker in unparkers {
            unparker.join().unwrap();
        }
    });
}

// ---------------------------------------------------------------------------
// Join frames (I47)
// ---------------------------------------------------------------------------

/// One `join` whose half a thief may take: the thief says it is idle at
/// any point (before the offer, so the half is published; after it, so it
/// stays private and runs inline) and looks for it until the join is over. `b`
/// runs exactly once, on one thread or the other, and `join` returns its
/// result, written by the thief when it ran there (Release on the latch).
#[test]
fn join_frames_a_join_racing_an_idle_thief() {
    loom::model(|| {
        let (host, thief) = JoinThread::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let thief = idle_thief(thief, done.clone());
        let result = Handoff::new();
        let (a, b) = host.join(
            || 1,
            || {
                runs.fetch_add(1, Ordering::Relaxed);
                result.write(2);
                "b"
            },
        );
        assert_eq!((a, b), (1, "b"));
        assert_eq!(result.read(), 2, "b's write is visible after join");
        assert_eq!(runs.load(Ordering::Relaxed), 1, "b ran exactly once");
        done.store(true, Ordering::SeqCst);
        thief.join().unwrap();
    });
}

/// Nested joins, `join(a1 = join(a2, b2), b1)`, with a thief that becomes
/// idle at any point and then steals the first half it finds. What is published is always the
/// oldest private half: `b1` before `b2`, so the thief, which takes the
/// oldest published half, never runs `b2`. A half still private when its
/// `a` returns runs inline; a join never waits for a half that was not
/// published (loom would report the park as a deadlock). Each half runs
/// exactly once.
#[test]
fn join_frames_publish_the_oldest_half_and_never_wait_for_a_private_one() {
    loom::model(|| {
        let (host, thief) = JoinThread::new();
        let thief_ran_b2 = Arc::new(AtomicBool::new(false));
        let runs = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let thief_thread = idle_thief(thief, done.clone());
        let on_host = thread::current().id();
        let inner = OnHost(&host);
        let (runs_b2, thief_ran_b2_flag) = (runs.clone(), thief_ran_b2.clone());
        let ((a2, b2), b1) = host.join(
            move || {
                let (inner, runs, thief_ran_b2) = (inner, runs_b2, thief_ran_b2_flag);
                inner.0.join(
                    || 2,
                    || {
                        runs.fetch_add(1, Ordering::Relaxed);
                        if thread::current().id() != on_host {
                            thief_ran_b2.store(true, Ordering::Relaxed);
                        }
                        3
                    },
                )
            },
            || {
                runs.fetch_add(10, Ordering::Relaxed);
                1
            },
        );
        assert_eq!((a2, b2, b1), (2, 3, 1));
        done.store(true, Ordering::SeqCst);
        thief_thread.join().unwrap();
        assert_eq!(runs.load(Ordering::Relaxed), 11, "each half ran exactly once");
        assert!(
            !thief_ran_b2.load(Ordering::Relaxed),
            "the thief got the newer half while the older one was private"
        );
    });
}

/// Three nested joins, `join(a1 = join(a2 = join(a3, b3), b2), b1)`, with
/// a thief that becomes idle at any point and steals the first half it
/// finds. A worker keeps two private frames under loom (`LATENT_JOINS`),
/// so the innermost join takes both paths: while `b1` and `b2` are private
/// it links no frame, only offers (publishing `b1` if the thief is idle by
/// then), and runs `a3` then `b3` as plain calls; once `b1` is published
/// it links its frame. Either way the thief gets the oldest private half
/// (never `b3`, nor `b2` while `b1` was private), nothing waits for a half
/// that was not published, and each half runs exactly once, on one thread.
#[test]
fn join_frames_a_join_over_the_latent_limit_runs_plainly_and_offers_the_oldest_half() {
    loom::model(|| {
        let (host, thief) = JoinThread::new();
        let runs = Arc::new(AtomicUsize::new(0));
        // Which halves ran on the thief (bit 1: b1, 2: b2, 4: b3).
        let stolen = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let thief_thread = idle_thief(thief, done.clone());
        let on_host = thread::current().id();
        let inner = OnHost(&host);
        let half = |bit: usize, runs: Arc<AtomicUsize>, stolen: Arc<AtomicUsize>| {
            move || {
                runs.fetch_add(bit, Ordering::Relaxed);
                if thread::current().id() != on_host {
                    stolen.fetch_or(bit, Ordering::Relaxed);
                }
                bit
            }
        };
        let (b3, b2, b1) = (
            half(4, runs.clone(), stolen.clone()),
            half(2, runs.clone(), stolen.clone()),
            half(1, runs.clone(), stolen.clone()),
        );
        let (((a3, b3), b2), b1) = host.join(
            move || {
                let inner = inner;
                inner.0.join(
                    move || {
                        let inner = inner;
                        inner.0.join(|| 3, b3)
                    },
                    b2,
                )
            },
            b1,
        );
        assert_eq!((a3, b3, b2, b1), (3, 4, 2, 1));
        done.store(true, Ordering::SeqCst);
        thief_thread.join().unwrap();
        assert_eq!(runs.load(Ordering::Relaxed), 7, "each half ran exactly once");
        let stolen = stolen.load(Ordering::Relaxed);
        assert!(
            stolen == 0 || stolen == 1,
            "the thief got {stolen:#b}, not the oldest half"
        );
    });
}

// ---------------------------------------------------------------------------
// The sleep protocol against a push from inside the pool (I1)
// ---------------------------------------------------------------------------

/// A one-task queue made of atomics, standing in for a worker's deque: a
/// push is a Release store, a scan an Acquire load, as crossbeam's `push`
/// and `is_empty` are (the pool's loom queues are behind a lock, which
/// would order the push before or after the scan and hide the race these
/// models are about).
#[derive(Clone)]
struct OneTask(Arc<AtomicUsize>);

impl OneTask {
    fn new() -> Self {
        OneTask(Arc::new(AtomicUsize::new(0)))
    }
    fn push(&self) {
        // Release: as crossbeam's store of the deque's bottom index.
        self.0.store(1, Ordering::Release);
    }
    fn is_queued(&self) -> bool {
        // Acquire: as crossbeam's loads in `is_empty`.
        self.0.load(Ordering::Acquire) != 0
    }
    /// Takes the task if it is queued (whoever wins runs it).
    fn take(&self) -> bool {
        // AcqRel: the winner of the CAS runs the task.
        self.0
            .compare_exchange(1, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// Worker 1 of a two-worker pool runs out of work: it searches (one scan
/// here), announces sleep, re-scans, and parks until woken, taking the
/// task if any scan finds it; it leaves once `closed` (a shutdown's
/// `notify_all`). Returns whether it ran the task.
fn worker_going_to_sleep(
    sleep: Arc<stealpool::loom_components::Sleep>,
    task: OneTask,
    closed: Arc<AtomicBool>,
) -> thread::JoinHandle<bool> {
    thread::spawn(move || {
        sleep.begin_searching();
        loop {
            if task.take() {
                sleep.end_searching();
                return true;
            }
            // SeqCst: read after the fences of the protocol; any ordering
            // would do for a flag set before `notify_all`'s fence.
            if closed.load(Ordering::SeqCst) {
                sleep.end_searching();
                return false;
            }
            sleep.announce_sleep(1);
            // The re-scan after the announcement's fence (I1).
            if task.is_queued() || closed.load(Ordering::SeqCst) {
                sleep.retract_sleep(1);
                continue;
            }
            // Woken: counted as searching again; scan again.
            sleep.park_until_woken(1);
        }
    })
}

/// I1 for a push from inside the pool whose pusher does not come back to
/// its deque (its task blocks until the pushed task has run, as a task
/// waiting on a channel fed by a sibling does): the worker going to sleep
/// must run it. With the submitter's fence (`notify_new_work`) either the
/// re-scan sees the push or the pusher sees the sleeper and wakes it.
/// Checked to fail: without the re-scan after `announce_sleep` loom reports
/// a deadlock.
#[test]
fn inside_push_racing_a_worker_going_to_sleep_is_never_stranded() {
    inside_push_is_run_by_the_worker_going_to_sleep(|sleep| {
        sleep.notify_new_work(2);
    });
}

/// I1 for an inside push with the asymmetric barrier
/// (`Sleep::notify_new_inside_work`; under loom its light half is a SeqCst
/// fence, the barrier's guarantee taken as given): the decisions built on
/// it (nobody asleep: wake nobody; sleepers and no searcher: wake one)
/// still hand a task whose pusher never comes back to the worker going to
/// sleep. Checked to fail: with "sleepers and no searcher" waking nobody
/// loom reports a deadlock.
#[test]
fn inside_push_with_the_asymmetric_barrier_is_never_stranded() {
    inside_push_is_run_by_the_worker_going_to_sleep(|sleep| {
        sleep.notify_new_inside_work(2);
    });
}

/// Worker 0 runs a task that pushes onto its own deque (deciding the wake
/// with `notify`), then blocks until the pushed task has run: it never
/// takes the task itself, so worker 1, going to sleep, must run it.
fn inside_push_is_run_by_the_worker_going_to_sleep(notify: fn(&stealpool::loom_components::Sleep)) {
    loom::model(move || {
        let sleep = Arc::new(stealpool::loom_components::Sleep::new(2));
        let task = OneTask::new();
        let closed = Arc::new(AtomicBool::new(false));
        let sleeper = worker_going_to_sleep(sleep.clone(), task.clone(), closed);
        task.push();
        notify(&sleep);
        assert!(sleeper.join().unwrap(), "the worker going to sleep must run the task");
    });
}

/// Why an inside push keeps the fence: with the unfenced decision (the
/// join exemption's) the pusher's read of the word and the sleeper's
/// re-scan can both miss the other's write (a store-load race), and a task
/// whose pusher does not come back to its deque is stranded: the sleeper
/// parks on an empty re-scan and the pusher, done, has woken nobody. The
/// model records, in a plain std atomic that follows loom's schedule
/// rather than its memory model, that the sleeper re-scanned in vain and
/// is parking, and looks whether it is still asleep once the pusher is
/// done; it ends with a shutdown (so the stranded
/// execution is not a loom deadlock, which would abort the test) and the
/// test asserts that loom found such an execution. If it ever stops
/// finding one, the unfenced decision has become safe for every push, or
/// the model has lost its teeth: either way this must be looked at.
#[test]
fn inside_push_without_the_fence_can_strand_a_task_its_pusher_does_not_run() {
    use std::sync::atomic::{AtomicBool as StdBool, Ordering as Std};
    static STRANDED: StdBool = StdBool::new(false);
    STRANDED.store(false, Std::SeqCst);
    loom::model(|| {
        // Per execution: the sleeper's re-scan found nothing and it parks.
        let parking = std::sync::Arc::new(StdBool::new(false));
        let sleep = Arc::new(stealpool::loom_components::Sleep::new(2));
        let task = OneTask::new();
        let closed = Arc::new(AtomicBool::new(false));
        let sleeper = {
            let (sleep, task, closed) = (sleep.clone(), task.clone(), closed.clone());
            let parking = parking.clone();
            thread::spawn(move || {
                sleep.begin_searching();
                loop {
                    // SeqCst: as in `worker_going_to_sleep`.
                    if closed.load(Ordering::SeqCst) {
                        sleep.end_searching();
                        return;
                    }
                    if task.take() {
                        sleep.end_searching();
                        return;
                    }
                    sleep.announce_sleep(1);
                    if task.is_queued() || closed.load(Ordering::SeqCst) {
                        sleep.retract_sleep(1);
                        continue;
                    }
                    parking.store(true, Std::SeqCst);
                    sleep.park_until_woken(1);
                }
            })
        };
        task.push();
        sleep.notify_new_join_work(2);
        // The pusher is done and will not come back (its task blocks), and
        // only the sleeper takes the task, so it is still queued. The
        // sleeper re-scanned in vain and nobody woke it: stranded. Only
        // this thread could have woken it, so its own read of the state is
        // exact.
        if parking.load(Std::SeqCst) && sleep.is_sleeping(1) {
            STRANDED.store(true, Std::SeqCst);
        }
        closed.store(true, Ordering::SeqCst);
        sleep.notify_all();
        sleeper.join().unwrap();
    });
    assert!(
        STRANDED.load(Std::SeqCst),
        "loom found no execution in which the unfenced push strands the task"
    );
}

/// What the unfenced decision does guarantee (the join exemption's rule,
/// and rayon's for every local push): a task whose pusher comes back to its
/// own deque runs exactly once, by the pusher or by the worker going to
/// sleep; a missed wake-up costs only parallelism. The model ends with a
/// shutdown (`notify_all`), so a sleeper that missed the push is not a
/// deadlock here, only an idle worker.
#[test]
fn inside_push_without_the_fence_is_run_once_when_its_pusher_comes_back() {
    loom::model(|| {
        let sleep = Arc::new(stealpool::loom_components::Sleep::new(2));
        let task = OneTask::new();
        let closed = Arc::new(AtomicBool::new(false));
        let sleeper = worker_going_to_sleep(sleep.clone(), task.clone(), closed.clone());
        task.push();
        sleep.notify_new_join_work(2);
        // The pusher's task returns and its worker pops its own deque.
        let by_pusher = task.take();
        // Shutdown: the flag, then `notify_all` (its fence pairs with the
        // sleeper's announcement, as in `Shared::close`).
        closed.store(true, Ordering::SeqCst);
        sleep.notify_all();
        let by_sleeper = sleeper.join().unwrap();
        assert!(by_pusher != by_sleeper, "the task runs exactly once");
    });
}

/// I1's searchers carry a task (the fence of `hand_on_search`, which the
/// pool models cannot reach: their queues are behind a lock). Worker 1 is
/// searching and worker 2 asleep when worker 0 pushes from inside a task
/// and never comes back to its deque. The submit may see worker 1
/// searching and wake nobody; worker 1 then finds other work (which, in
/// the worst case, blocks: it never takes the task), and as the last
/// searcher it fences and looks at the queues, as `hand_on_search` does,
/// and wakes worker 2 if the task is still queued. Worker 2 must run it.
/// Checked to fail: without the fence between `end_searching` and the look
/// loom reports a deadlock (both the submit and the look may miss the
/// other's write).
#[test]
fn the_last_searcher_hands_on_an_inside_push_that_saw_it_searching() {
    last_searcher_hands_on(|sleep| {
        sleep.notify_new_work(3);
    });
}

/// The same with the asymmetric barrier's decision
/// (`Sleep::notify_new_inside_work`): seeing a searcher and a sleeper it
/// takes the fenced path, so the searcher's look pairs with its fence.
#[test]
fn the_last_searcher_hands_on_an_inside_push_with_the_asymmetric_barrier() {
    last_searcher_hands_on(|sleep| {
        sleep.notify_new_inside_work(3);
    });
}

/// Worker 0 pushes with `notify` and never comes back; worker 1 searches,
/// worker 2 sleeps (see above).
fn last_searcher_hands_on(notify: fn(&stealpool::loom_components::Sleep)) {
    loom::model(move || {
        let sleep = Arc::new(stealpool::loom_components::Sleep::new(3));
        let task = OneTask::new();
        // Worker 2 searched in vain and sleeps; worker 1 searches.
        sleep.begin_searching();
        sleep.announce_sleep(2);
        sleep.begin_searching();
        let searcher = {
            let (sleep, task) = (sleep.clone(), task.clone());
            thread::spawn(move || {
                // Found other work: stops searching, and hands the search
                // on as the last searcher (`hand_on_search`).
                if sleep.end_searching() {
                    loom::sync::atomic::fence(Ordering::SeqCst);
                    if task.is_queued() {
                        sleep.notify_new_work(3);
                    }
                }
            })
        };
        let sleeper = {
            let (sleep, task) = (sleep.clone(), task.clone());
            thread::spawn(move || loop {
                // Woken: counted as searching.
                sleep.park_until_woken(2);
                if task.take() {
                    sleep.end_searching();
                    return;
                }
                // Woken for nothing (a stray token: the parker's): back to
                // sleep by the protocol.
                sleep.announce_sleep(2);
                if task.is_queued() {
                    sleep.retract_sleep(2);
                    assert!(task.take(), "only this worker takes the task");
                    sleep.end_searching();
                    return;
                }
            })
        };
        task.push();
        notify(&sleep);
        searcher.join().unwrap();
        sleeper.join().unwrap();
    });
}
