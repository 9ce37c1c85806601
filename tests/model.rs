//! Property tests: random sequences of pool operations, issued from one to
//! three threads, checked against a simple reference model.
//!
//! The operations: `submit`, `submit_timeout`, `spawn` (the handle joined
//! later or dropped at once), tasks that submit tasks from inside the pool
//! (nested), tasks that panic, `tune` (in and out of range), `wait_idle`,
//! `stats`, `shutdown`, `shutdown_timeout`, `shutdown_now` (each handed-back
//! `Task` run or dropped), `shutdown_background`, `reboot`, cancelling the
//! kept handles, and spawning with an immediate cancel (racing the start),
//! on pools with random capacities, ceilings, keep-alives and queue limits.
//!
//! Every task has a unique id; a per-id record counts where its closure ran
//! (in the pool, on the caller after a refusal, on the caller after
//! `shutdown_now` handed it back) or that it was dropped unrun, and what its
//! submit answered. The model:
//!
//! * every accepted task (`Ok` from submit/spawn, outside or nested) runs in
//!   the pool exactly once, or is handed back by `shutdown_now` exactly once
//!   (and then runs on the caller or is dropped, as the test chose), or was
//!   cancelled through its handle and is dropped unrun exactly once;
//! * `JoinHandle::cancel` returned true exactly for tasks that never ran;
//! * every refused closure comes back to its caller (which runs it) and
//!   never runs in the pool;
//! * at quiescent points (after `wait_idle` with no operation in flight, and
//!   right after `shutdown`/`shutdown_now` in single-threaded parts) the
//!   stats agree: `submitted` = accepted, `completed` = ran in the pool or
//!   by hand after being handed back, `withdrawn` = handed back and not run,
//!   `cancelled` = cancelled and dropped by the pool,
//!   `completed + withdrawn + cancelled + queued + busy == submitted`, `queued == 0`, `panicked` =
//!   panicking tasks that ran in the pool, `rejected` = refusals,
//!   `capacity` = the last successful `tune` (while tasks may sit in
//!   `block_in_place`, at least that: they lend their slots; once the case
//!   turned the autoscaler on, anything in `1..=max_capacity`);
//! * `tune` out of range returns the right error and leaves the capacity
//!   unchanged; in range it succeeds;
//! * a submit answers as the pool's state says: `Closed` when (and only
//!   when, where the state is known) the pool is shut down, `Full`/`Timeout`
//!   only with a queue limit;
//! * `JoinHandle::join` returns the task's value, its panic, or a
//!   cancellation, as the task's record says;
//! * a finished `shutdown` (any kind) leaves no live worker thread;
//! * nothing hangs: each case runs on its own thread and fails if it does not
//!   finish within `CASE_LIMIT` (with a report of where each thread is and
//!   the pool's figures).
//!
//! Concurrent parts start their threads together at a barrier; their checks
//! are made after joining them, on sets and counts (no order), plus what
//! linearizability allows (the final capacity is some thread's last
//! successful `tune`; the final open/closed state is consistent with the
//! lifecycle operations issued).
//!
//! `PROPTEST_CASES=N` runs N cases per property instead of 256. The tests
//! at the end pin down, deterministically, races these properties can
//! reach only by chance.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Barrier, Mutex, Once};
use std::thread;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use stealpool::{Autoscale, JoinError, JoinHandle, Pool, SubmitError, TuneError, WorkerState};

/// Races the properties reach by chance, made deterministic.
#[path = "model/races.rs"]
mod races;

/// A case that has not finished after this long counts as hung.
const CASE_LIMIT: Duration = Duration::from_secs(30);

/// How long a "slow" task sleeps: long enough that queues build up behind it
/// (so `shutdown_now` has something to hand back), short enough for CI.
const SLOW: Duration = Duration::from_micros(300);

/// Ids per case; the strategies stay far below (≤ 30 ops × ≤ 8 tasks).
const MAX_IDS: usize = 4096;

// ---------------------------------------------------------------------------
// The operations (what proptest generates and shrinks)
// ---------------------------------------------------------------------------

/// A task: whether it panics (after submitting its children), whether it
/// sleeps a little first, and the tasks it submits from inside.
#[derive(Clone, Debug)]
struct Node {
    panics: bool,
    slow: bool,
    /// A slow task sleeps inside `block_in_place` (its slot is lent while
    /// it sleeps).
    in_place: bool,
    children: Vec<Node>,
}

#[derive(Clone, Copy, Debug)]
enum QueueLimit {
    Unbounded,
    Blocking(usize),
    Nonblocking(usize),
}

#[derive(Clone, Debug)]
struct Config {
    capacity: usize,
    max_capacity: usize,
    prealloc: bool,
    keep_alive_ms: Option<u64>,
    queue: QueueLimit,
}

#[derive(Clone, Debug)]
enum Op {
    Submit(Node),
    /// `count` slow leaf tasks in a row: a backlog for `shutdown_now`.
    SubmitMany(usize),
    SubmitTimeout(Node, u64),
    Spawn {
        task: Node,
        keep: bool,
    },
    /// Joins every handle this thread kept so far.
    JoinHandles,
    /// Cancels every handle this thread kept so far (they stay kept, to be
    /// joined later).
    CancelHandles,
    /// Spawns and cancels at once (racing the task's start); the handle is
    /// kept, to be joined later.
    SpawnCancel(Node),
    Tune(usize),
    WaitIdle,
    Stats,
    Shutdown,
    ShutdownTimeout(u64),
    /// Bit `i % 32` of `run_mask` set: run the `i`th handed-back task, else
    /// drop it.
    ShutdownNow {
        run_mask: u32,
    },
    ShutdownBackground,
    Reboot,
    /// `set_autoscale(Some(Autoscale::new(1, max_capacity)))` or `None`.
    Autoscale(bool),
}

impl Op {
    fn closes(&self) -> bool {
        matches!(
            self,
            Op::Shutdown | Op::ShutdownTimeout(_) | Op::ShutdownNow { .. } | Op::ShutdownBackground
        )
    }
}

#[derive(Clone, Debug)]
enum Segment {
    /// Operations from the test thread alone: exact checks after each.
    Seq(Vec<Op>),
    /// Each inner list on its own thread, started together at a barrier.
    Par(Vec<Vec<Op>>),
}

#[derive(Clone, Debug)]
struct Case {
    config: Config,
    segments: Vec<Segment>,
}

fn node_strategy() -> impl Strategy<Value = Node> {
    let leaf = (
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.25),
        prop::bool::weighted(0.3),
    )
        .prop_map(|(panics, slow, in_place)| Node {
            panics,
            slow,
            in_place,
            children: Vec::new(),
        });
    leaf.prop_recursive(2, 7, 2, |inner| {
        (
            prop::bool::weighted(0.15),
            prop::bool::weighted(0.25),
            prop::bool::weighted(0.3),
            prop::collection::vec(inner, 0..=2),
        )
            .prop_map(|(panics, slow, in_place, children)| Node {
                panics,
                slow,
                in_place,
                children,
            })
    })
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => node_strategy().prop_map(Op::Submit),
        2 => (1usize..=8).prop_map(Op::SubmitMany),
        1 => (node_strategy(), 0u64..3).prop_map(|(node, ms)| Op::SubmitTimeout(node, ms)),
        3 => (node_strategy(), any::<bool>()).prop_map(|(task, keep)| Op::Spawn { task, keep }),
        1 => Just(Op::JoinHandles),
        1 => Just(Op::CancelHandles),
        2 => node_strategy().prop_map(Op::SpawnCancel),
        3 => (0usize..=7).prop_map(Op::Tune),
        2 => Just(Op::WaitIdle),
        1 => Just(Op::Stats),
        1 => Just(Op::Shutdown),
        1 => (0u64..3).prop_map(Op::ShutdownTimeout),
        2 => any::<u32>().prop_map(|run_mask| Op::ShutdownNow { run_mask }),
        1 => Just(Op::ShutdownBackground),
        1 => any::<bool>().prop_map(Op::Autoscale),
        2 => Just(Op::Reboot),
    ]
}

fn config_strategy() -> impl Strategy<Value = Config> {
    let queue = prop_oneof![
        3 => Just(QueueLimit::Unbounded),
        1 => (1usize..=4).prop_map(QueueLimit::Blocking),
        1 => (1usize..=4).prop_map(QueueLimit::Nonblocking),
    ];
    let keep_alive = prop_oneof![Just(None), Just(Some(2u64)), Just(Some(50u64))];
    (1usize..=3, 0usize..=3, any::<bool>(), keep_alive, queue).prop_map(
        |(capacity, extra, prealloc, keep_alive_ms, queue)| Config {
            capacity,
            max_capacity: capacity + extra,
            prealloc,
            keep_alive_ms,
            queue,
        },
    )
}

fn sequential_case() -> impl Strategy<Value = Case> {
    (config_strategy(), prop::collection::vec(op_strategy(), 1..=30)).prop_map(|(config, ops)| Case {
        config,
        segments: vec![Segment::Seq(ops)],
    })
}

fn concurrent_case() -> impl Strategy<Value = Case> {
    let segment = prop_oneof![
        1 => prop::collection::vec(op_strategy(), 1..=6).prop_map(Segment::Seq),
        2 => prop::collection::vec(prop::collection::vec(op_strategy(), 1..=4), 2..=3).prop_map(Segment::Par),
    ];
    (config_strategy(), prop::collection::vec(segment, 1..=3)).prop_map(|(config, segments)| Case { config, segments })
}

// ---------------------------------------------------------------------------
// Records: what happened to each task id
// ---------------------------------------------------------------------------

const ACCEPTED: u8 = 1;
const REFUSED: u8 = 2;

#[derive(Default)]
struct Record {
    /// 0 (not submitted), ACCEPTED or REFUSED.
    outcome: AtomicU8,
    /// How many times an outcome was recorded (must be 0 or 1).
    answers: AtomicU32,
    panics: AtomicU8,
    /// Ran on one of the pool's workers.
    in_pool: AtomicU32,
    /// Ran on the caller after its submit was refused.
    returned: AtomicU32,
    /// Ran on the caller after `shutdown_now` handed it back.
    handed_back_ran: AtomicU32,
    /// Dropped unrun (a handed-back `Task` the test dropped, or ran after
    /// its handle cancelled it).
    dropped: AtomicU32,
    /// Dropped unrun by the pool after its handle cancelled it.
    cancelled_dropped: AtomicU32,
    /// `JoinHandle::cancel` returned true for it.
    cancel_won: AtomicU32,
    /// Ran somewhere none of the above: never expected.
    stray: AtomicU32,
}

/// Where the code running now was called from (set around the calls that
/// run refused closures and handed-back tasks on the caller).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Normal,
    Returned,
    HandedBack,
}

thread_local! {
    static CONTEXT: Cell<Context> = const { Cell::new(Context::Normal) };
}

fn with_context<R>(context: Context, f: impl FnOnce() -> R) -> R {
    struct Restore(Context);
    impl Drop for Restore {
        fn drop(&mut self) {
            CONTEXT.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CONTEXT.with(|c| c.replace(context)));
    f()
}

/// The payload of the tasks' intentional panics (the panic hook stays quiet
/// for it).
struct Intentional;

fn quiet_intentional_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<Intentional>() {
                default(info);
            }
        }));
    });
}

/// What a `JoinHandle::join` returned.
#[derive(Debug, PartialEq, Eq)]
enum Joined {
    Value(usize),
    Panicked,
    Cancelled,
    Other(String),
}

fn joined(result: Result<usize, JoinError>) -> Joined {
    match result {
        Ok(value) => Joined::Value(value),
        Err(error) if error.is_cancelled() => Joined::Cancelled,
        Err(error) => {
            let payload = error.into_panic();
            if payload.is::<Intentional>() {
                return Joined::Panicked;
            }
            let text = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "<non-string payload>".into());
            Joined::Other(text)
        }
    }
}

/// Everything a case shares with its threads and tasks.
struct Env {
    pool: Pool,
    config: Config,
    records: Vec<Record>,
    next_id: AtomicUsize,
    /// Tasks `shutdown_now` handed back, in all.
    handed_back: AtomicU64,
    /// (id, what its handle's `join` returned).
    joins: Mutex<Vec<(usize, Joined)>>,
    /// Violations seen inside tasks (where returning an error is not possible).
    errors: Mutex<Vec<String>>,
    /// The operation each op thread is in now (printed if the case hangs).
    current: Mutex<BTreeMap<String, String>>,
    /// The autoscaler was on at some point: from then on the capacity is
    /// the pool's to choose (within 1..=max_capacity), not the model's.
    autoscaled: AtomicBool,
}

impl Env {
    /// Whether the pool's capacity `now` agrees with the model's `expected`:
    /// exactly, or — while tasks may hold lent slots (`lent_possible`) —
    /// at least `expected`; any value in range once the autoscaler ran.
    fn capacity_agrees(&self, now: usize, expected: usize, lent_possible: bool) -> bool {
        let max = self.config.max_capacity;
        if self.autoscaled.load(SeqCst) {
            (1..=max).contains(&now)
        } else if lent_possible {
            (expected..=max).contains(&now)
        } else {
            now == expected
        }
    }
}

impl Env {
    fn new_id(&self, panics: bool) -> usize {
        let id = self.next_id.fetch_add(1, SeqCst);
        assert!(id < MAX_IDS, "more than {MAX_IDS} task ids in one case");
        self.records[id].panics.store(u8::from(panics), SeqCst);
        id
    }

    fn answer(&self, id: usize, outcome: u8) {
        let record = &self.records[id];
        record.outcome.store(outcome, SeqCst);
        record.answers.fetch_add(1, SeqCst);
    }

    fn record_run(&self, id: usize) {
        let record = &self.records[id];
        let counter = match CONTEXT.with(Cell::get) {
            Context::Returned => &record.returned,
            _ if Pool::current().is_some() => &record.in_pool,
            Context::HandedBack => &record.handed_back_ran,
            Context::Normal => &record.stray,
        };
        counter.fetch_add(1, SeqCst);
    }

    fn set_current(&self, thread: &str, what: &str) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        current.insert(thread.to_string(), what.to_string());
    }

    /// What a hang report shows: where each op thread is, and the pool's figures.
    fn hang_report(&self) -> String {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut report = String::new();
        for (thread, what) in current {
            let _ = writeln!(report, "  {thread}: {what}");
        }
        let _ = writeln!(report, "  closed: {}, {:?}", self.pool.is_closed(), self.pool.stats());
        for worker in self.pool.worker_stats() {
            let _ = writeln!(report, "  {worker:?}");
        }
        report
    }

    fn error(&self, message: String) {
        self.errors.lock().unwrap_or_else(|e| e.into_inner()).push(message);
    }
}

/// Counts a drop of the task's closure without its run.
struct Unrun {
    env: Arc<Env>,
    id: usize,
    armed: bool,
}

impl Drop for Unrun {
    fn drop(&mut self) {
        if self.armed {
            let record = &self.env.records[self.id];
            // The test drops handed-back tasks (and runs them) in the
            // `HandedBack` context; anywhere else the pool dropped a
            // cancelled task.
            match CONTEXT.with(Cell::get) {
                Context::HandedBack => record.dropped.fetch_add(1, SeqCst),
                _ => record.cancelled_dropped.fetch_add(1, SeqCst),
            };
        }
    }
}

/// A task's closure and its id. Running it records the run, sleeps if slow,
/// submits its children, then panics or returns its id.
fn make_task(env: &Arc<Env>, node: Node) -> (usize, impl FnOnce() -> usize + Send + 'static) {
    let id = env.new_id(node.panics);
    let mut guard = Unrun {
        env: env.clone(),
        id,
        armed: true,
    };
    let task = move || {
        guard.armed = false;
        let env = &guard.env;
        env.record_run(id);
        if node.slow && node.in_place {
            stealpool::block_in_place(|| thread::sleep(SLOW));
        } else if node.slow {
            thread::sleep(SLOW);
        }
        for child in node.children {
            submit_nested(env, child);
        }
        if node.panics {
            panic::panic_any(Intentional);
        }
        id
    };
    (id, task)
}

/// Runs a refused closure on the caller (catching its intentional panic).
fn run_returned(f: impl FnOnce()) {
    with_context(Context::Returned, || {
        let _ = panic::catch_unwind(AssertUnwindSafe(f));
    });
}

/// A child's submit, from inside its parent task (which runs in the pool,
/// or on a caller if the parent was refused or handed back).
fn submit_nested(env: &Arc<Env>, node: Node) {
    let inside = CONTEXT.with(Cell::get) != Context::Returned && Pool::current().is_some();
    let (id, task) = make_task(env, node);
    match env.pool.submit(move || {
        task();
    }) {
        Ok(()) => env.answer(id, ACCEPTED),
        Err(error) => {
            env.answer(id, REFUSED);
            if inside && !error.is_closed() {
                env.error(format!(
                    "nested submit from inside the pool refused with {error:?} (task {id})"
                ));
            }
            run_returned(error.into_inner());
        }
    }
}

/// Running operations (the runner, the checks, the segments).
#[path = "model/runner.rs"]
mod runner;
use runner::*;

/// Runs a case on its own thread, failing it if it panics or hangs.
fn run_case(case: Case) -> Result<(), TestCaseError> {
    let (tx, rx) = mpsc::channel();
    let (env_tx, env_rx) = mpsc::channel();
    let body = thread::Builder::new()
        .name("model-case".into())
        .spawn(move || {
            let _ = tx.send(execute(case, env_tx));
        })
        .expect("spawn the case thread");
    match rx.recv_timeout(CASE_LIMIT) {
        Ok(result) => {
            let _ = body.join();
            result.map_err(TestCaseError::fail)
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let payload = body.join().err();
            let text = payload
                .as_ref()
                .and_then(|p| {
                    p.downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                })
                .unwrap_or_default();
            Err(TestCaseError::fail(format!("the case panicked: {text}")))
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            // The case's threads are left behind, blocked.
            let report = env_rx.try_recv().map(|env| env.hang_report()).unwrap_or_default();
            let _ = writeln!(std::io::stderr(), "model: a case hung for {CASE_LIMIT:?}:\n{report}");
            Err(TestCaseError::fail(format!(
                "hung: not finished within {CASE_LIMIT:?}:\n{report}"
            )))
        }
    }
}

/// `cases` per test; `PROPTEST_CASES` in the environment overrides it (to
/// stress the pool locally: `PROPTEST_CASES=5000 cargo test --test model`).
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(cases),
        // A hang costs CASE_LIMIT per shrink step: bound the shrinking.
        max_shrink_time: 120_000,
        // Regressions are kept as #[test]s in this file, not in a side file.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// One thread: every answer and figure is checked exactly, after every
    /// operation.
    #[test]
    fn sequential_ops_match_the_model(case in sequential_case()) {
        run_case(case)?;
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Sequential parts and parts where 2–3 threads race (started at a
    /// barrier); the model checks sets and counts after each part.
    #[test]
    fn concurrent_ops_match_the_model(case in concurrent_case()) {
        run_case(case)?;
    }
}
