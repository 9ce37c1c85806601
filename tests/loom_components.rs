//! loom models of single components, each on its own: the latch, the
//! parker, and `join` on a worker's pending-join frames.
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
