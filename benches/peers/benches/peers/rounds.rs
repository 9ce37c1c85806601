//! Interleaved rounds, each library in its own process.
//!
//! `cargo bench -p stealpool-benches --bench peers -- --rounds R` runs R rounds; in each round it
//! starts this same binary once per library (`--lib NAME`, the order rotated
//! by one each round), and that child builds only its own library's pool,
//! runs every workload the library can do, and prints one `result` line per
//! figure. The parent prints each child's figures as they come (stderr) and
//! at the end a markdown table of the medians over the rounds, with the
//! ratios stealpool / best peer and stealpool / rayon (lower is better
//! everywhere).
//!
//! A child measures each timed workload once to warm up, then
//! [`TIMED_RUNS`] times, and reports the median of those; the latency and
//! memory workloads are one run each (a few thousand samples).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use stealpool::Pool;

use super::{
    alloc, build_chili, build_executors, build_rayon, build_rusty_pool, build_stealpool, build_threadpool, build_tokio,
    check_sorted, chili_fib_fine, chili_merge_sort, rayon_fib_fine, rayon_merge_sort, seq_fib, seq_merge_sort,
    sort_input, sp_fib_fine, sp_merge_sort, sp_submit, threads, tiny, wait_counter, ExecPool, FIB_FINE_N, SORT_LEN,
    SUBMIT_TASKS, TREE_DEPTH, TREE_TASKS,
};
use executors::Executor;

/// Every library the parent runs, in the first round's order.
const LIBS: [&str; 8] = [
    "stealpool",
    "rayon",
    "chili",
    "tokio",
    "threadpool",
    "rusty_pool",
    "executors",
    "sequential",
];

/// Timed runs per workload in one child, after one warm-up run.
const TIMED_RUNS: usize = 3;

/// Whether the command line asks for this driver rather than criterion.
pub fn requested() -> bool {
    std::env::args().any(|a| a == "--rounds" || a == "--lib")
}

struct Args {
    rounds: usize,
    lib: Option<String>,
    libs: Vec<String>,
    only: Vec<String>,
}

fn parse_args() -> Args {
    let mut args = Args {
        rounds: 3,
        lib: None,
        libs: LIBS.iter().map(|s| s.to_string()).collect(),
        only: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().unwrap_or_else(|| panic!("{name} needs a value"));
        match a.as_str() {
            "--rounds" => args.rounds = value("--rounds").parse().expect("--rounds takes a number of rounds"),
            "--lib" => args.lib = Some(value("--lib")),
            "--libs" => args.libs = value("--libs").split(',').map(str::to_string).collect(),
            "--only" => args.only = value("--only").split(',').map(str::to_string).collect(),
            // cargo bench appends `--bench`.
            "--bench" => {}
            other => {
                panic!("unknown argument {other:?}; use --rounds R [--libs a,b] [--only workload,..] or --lib NAME")
            }
        }
    }
    for lib in args.libs.iter().chain(&args.lib) {
        assert!(LIBS.contains(&lib.as_str()), "unknown library {lib:?}; known: {LIBS:?}");
    }
    args
}

/// Runs the driver: the parent (`--rounds`) or one child (`--lib`).
pub fn main() {
    let args = parse_args();
    match &args.lib {
        Some(lib) => run_child(lib, &args.only),
        None => run_parent(&args),
    }
}

// ---------------------------------------------------------------------------
// The parent: rounds, children, medians, the table
// ---------------------------------------------------------------------------

/// (workload, unit) -> library -> one value per round.
type Results = BTreeMap<(String, String), BTreeMap<String, Vec<f64>>>;

fn run_parent(args: &Args) {
    let exe = std::env::current_exe().expect("path of this bench binary");
    let mut results = Results::new();
    for round in 0..args.rounds {
        for i in 0..args.libs.len() {
            let lib = &args.libs[(i + round) % args.libs.len()];
            let mut cmd = Command::new(&exe);
            cmd.args(["--lib", lib]);
            if !args.only.is_empty() {
                cmd.args(["--only", &args.only.join(",")]);
            }
            let out = cmd
                .stderr(Stdio::inherit())
                .output()
                .unwrap_or_else(|e| panic!("starting the {lib} child: {e}"));
            assert!(out.status.success(), "the {lib} child failed: {}", out.status);
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let mut f = line.split('\t');
                if f.next() != Some("result") {
                    continue;
                }
                let (Some(workload), Some(unit), Some(value)) = (f.next(), f.next(), f.next()) else {
                    panic!("malformed result line from {lib}: {line:?}");
                };
                let value: f64 = value.parse().expect("a number in a result line");
                eprintln!("round {} {lib:>10} {workload:<22} {value:>12.2} {unit}", round + 1);
                results
                    .entry((workload.to_string(), unit.to_string()))
                    .or_default()
                    .entry(lib.clone())
                    .or_default()
                    .push(value);
            }
        }
    }
    print_table(&args.libs, &results, args.rounds);
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn print_table(libs: &[String], results: &Results, rounds: usize) {
    println!(
        "\nMedians of {rounds} interleaved rounds, {} worker threads; lower is better.\n",
        threads()
    );
    let mut header = String::from("| workload | unit |");
    let mut rule = String::from("| --- | --- |");
    for lib in libs {
        header += &format!(" {lib} |");
        rule += " --- |";
    }
    println!("{header} stealpool / best peer | stealpool / rayon |");
    println!("{rule} --- | --- |");
    // The order workloads are reported in by a child.
    let order = |w: &str| WORKLOADS.iter().position(|x| w.starts_with(x)).unwrap_or(usize::MAX);
    let mut rows: Vec<_> = results.iter().collect();
    rows.sort_by_key(|((w, _), _)| (order(w), w.clone()));
    for ((workload, unit), by_lib) in rows {
        let medians: BTreeMap<&str, f64> = by_lib
            .iter()
            .map(|(lib, v)| (lib.as_str(), median(&mut v.clone())))
            .collect();
        let mut row = format!("| {workload} | {unit} |");
        for lib in libs {
            match medians.get(lib.as_str()) {
                Some(v) => row += &format!(" {} |", fmt_value(*v)),
                None => row += " – |",
            }
        }
        let sp = medians.get("stealpool").copied();
        let best_peer = medians
            .iter()
            .filter(|(lib, _)| !matches!(**lib, "stealpool" | "sequential"))
            .min_by(|a, b| a.1.total_cmp(b.1));
        let ratio = |peer: Option<f64>| match (sp, peer) {
            (Some(s), Some(p)) if p > 0.0 && s / p < 0.1 => format!("{:.4}×", s / p),
            (Some(s), Some(p)) if p > 0.0 => format!("{:.2}×", s / p),
            _ => "–".to_string(),
        };
        let best = match best_peer {
            Some((lib, v)) => format!("{} ({lib})", ratio(Some(*v))),
            None => "–".to_string(),
        };
        println!("{row} {best} | {} |", ratio(medians.get("rayon").copied()));
    }
}

fn fmt_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

// ---------------------------------------------------------------------------
// The child: one library, every workload it can do
// ---------------------------------------------------------------------------

/// The workloads, in report order (`--only` takes these names).
const WORKLOADS: [&str; 9] = [
    "submit_1m",
    "two_submitters",
    "spawn_tree",
    "spawn_tree_scope",
    "join_fib27",
    "merge_sort_10m",
    "latency_idle",
    "hot_wake",
    "mem_per_task",
];

fn report(workload: &str, unit: &str, value: f64) {
    println!("result\t{workload}\t{unit}\t{value}");
}

fn run_child(lib: &str, only: &[String]) {
    let wanted = |w: &str| only.is_empty() || only.iter().any(|o| o == w);
    let n = threads();
    match lib {
        "stealpool" => {
            let pool = build_stealpool(n);
            spawner_workloads(&pool, n, &wanted);
            if wanted("spawn_tree_scope") {
                let ns = per_task(
                    TREE_TASKS,
                    median_run(|| {
                        super::TREE_COUNTER.store(0, Ordering::Relaxed);
                        let t = Instant::now();
                        pool.scope(|s| {
                            s.spawn(move || super::sp_scope_node(s, TREE_DEPTH));
                        });
                        let d = t.elapsed();
                        super::check_tree();
                        d
                    }),
                );
                report("spawn_tree_scope", "ns/task", ns);
            }
            join_workloads(
                &wanted,
                |n| sp_fib_fine(&pool, n),
                |v, buf| sp_merge_sort(&pool, v, buf),
            );
        }
        "rayon" => {
            let pool = Arc::new(build_rayon(n));
            spawner_workloads(&RayonPool(pool.clone()), n, &wanted);
            if wanted("spawn_tree_scope") {
                let ns = per_task(
                    TREE_TASKS,
                    median_run(|| {
                        super::TREE_COUNTER.store(0, Ordering::Relaxed);
                        let t = Instant::now();
                        pool.scope(|s| s.spawn(|s| super::rayon_scope_node(s, TREE_DEPTH)));
                        let d = t.elapsed();
                        super::check_tree();
                        d
                    }),
                );
                report("spawn_tree_scope", "ns/task", ns);
            }
            join_workloads(
                &wanted,
                |n| pool.install(|| rayon_fib_fine(n)),
                |v, buf| pool.install(|| rayon_merge_sort(v, buf)),
            );
        }
        "chili" => {
            let pool = build_chili(n);
            let scope = RefCell::new(pool.scope());
            join_workloads(
                &wanted,
                |n| chili_fib_fine(&mut scope.borrow_mut(), n),
                |v, buf| chili_merge_sort(&mut scope.borrow_mut(), v, buf),
            );
        }
        "tokio" => {
            let rt = build_tokio(n);
            spawner_workloads(&TokioHandle(rt.handle().clone()), n, &wanted);
        }
        "threadpool" => spawner_workloads(&build_threadpool(n), n, &wanted),
        "rusty_pool" => spawner_workloads(&build_rusty_pool(n), n, &wanted),
        "executors" => {
            let pool = build_executors(n);
            spawner_workloads(&pool, n, &wanted);
            pool.shutdown().expect("shut down the executors pool");
        }
        "sequential" => join_workloads(&wanted, seq_fib, seq_merge_sort),
        other => unreachable!("checked in parse_args: {other}"),
    }
}

/// One warm-up run, then the median of [`TIMED_RUNS`]; `run` returns the
/// time of the part it measures.
fn median_run(mut run: impl FnMut() -> Duration) -> Duration {
    run();
    let mut times: Vec<Duration> = (0..TIMED_RUNS).map(|_| run()).collect();
    times.sort();
    times[TIMED_RUNS / 2]
}

fn per_task(tasks: usize, d: Duration) -> f64 {
    d.as_nanos() as f64 / tasks as f64
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The fork-join workloads: fine-grained `fib(27)` and the merge sort.
fn join_workloads(wanted: &dyn Fn(&str) -> bool, fib: impl Fn(u32) -> u64, sort: impl Fn(&mut [u64], &mut [u64])) {
    if wanted("join_fib27") {
        let expected = seq_fib(FIB_FINE_N);
        let d = median_run(|| {
            let t = Instant::now();
            let r = fib(black_box(FIB_FINE_N));
            let d = t.elapsed();
            assert_eq!(r, expected);
            d
        });
        report("join_fib27", "ms", millis(d));
    }
    if wanted("merge_sort_10m") {
        let input = sort_input(SORT_LEN);
        let mut data = vec![0u64; SORT_LEN];
        let mut buf = vec![0u64; SORT_LEN];
        let d = median_run(|| {
            data.copy_from_slice(&input);
            let t = Instant::now();
            sort(&mut data, &mut buf);
            let d = t.elapsed();
            check_sorted(&input, &data);
            d
        });
        report("merge_sort_10m", "ms", millis(d));
    }
}

// ---------------------------------------------------------------------------
// Workloads over any pool that runs closures
// ---------------------------------------------------------------------------

/// A handle that queues a closure on its pool, from outside the pool or
/// from inside one of its tasks (then each library's own inside path:
/// rayon's, tokio's and executors' push onto the worker's local queue).
pub trait Spawner: Clone + Send + 'static {
    fn spawn<F: FnOnce() + Send + 'static>(&self, f: F);
}

impl Spawner for Pool {
    fn spawn<F: FnOnce() + Send + 'static>(&self, f: F) {
        sp_submit(self, f);
    }
}

#[derive(Clone)]
struct RayonPool(Arc<rayon::ThreadPool>);

impl Spawner for RayonPool {
    fn spawn<F: FnOnce() + Send + 'static>(&self, f: F) {
        self.0.spawn(f);
    }
}

#[derive(Clone)]
struct TokioHandle(tokio::runtime::Handle);

impl Spawner for TokioHandle {
    fn spawn<F: FnOnce() + Send + 'static>(&self, f: F) {
        // Detached: the JoinHandle is dropped, as for the others.
        drop(self.0.spawn(async move { f() }));
    }
}

impl Spawner for threadpool::ThreadPool {
    fn spawn<F: FnOnce() + Send + 'static>(&self, f: F) {
        self.execute(f);
    }
}

impl Spawner for rusty_pool::ThreadPool {
    fn spawn<F: FnOnce() + Send + 'static>(&self, f: F) {
        self.execute(f);
    }
}

impl Spawner for ExecPool {
    fn spawn<F: FnOnce() + Send + 'static>(&self, f: F) {
        self.execute(f);
    }
}

static ROUND_COUNTER: AtomicUsize = AtomicUsize::new(0);

fn spawner_workloads<S: Spawner>(s: &S, workers: usize, wanted: &dyn Fn(&str) -> bool) {
    let counter: &'static AtomicUsize = &ROUND_COUNTER;
    if wanted("submit_1m") {
        let d = median_run(|| {
            counter.store(0, Ordering::Relaxed);
            let t = Instant::now();
            for _ in 0..SUBMIT_TASKS {
                s.spawn(move || tiny(counter));
            }
            wait_counter(counter, SUBMIT_TASKS);
            t.elapsed()
        });
        report("submit_1m", "ns/task", per_task(SUBMIT_TASKS, d));
    }
    if wanted("two_submitters") {
        let d = median_run(|| {
            counter.store(0, Ordering::Relaxed);
            let t = Instant::now();
            thread::scope(|scope| {
                for _ in 0..2 {
                    let s = s.clone();
                    scope.spawn(move || {
                        for _ in 0..SUBMIT_TASKS / 2 {
                            s.spawn(move || tiny(counter));
                        }
                    });
                }
            });
            wait_counter(counter, SUBMIT_TASKS);
            t.elapsed()
        });
        report("two_submitters", "ns/task", per_task(SUBMIT_TASKS, d));
    }
    if wanted("spawn_tree") {
        let d = median_run(|| {
            counter.store(0, Ordering::Relaxed);
            let t = Instant::now();
            let child = s.clone();
            s.spawn(move || tree_node(child, counter, TREE_DEPTH));
            wait_counter(counter, TREE_TASKS);
            t.elapsed()
        });
        report("spawn_tree", "ns/task", per_task(TREE_TASKS, d));
    }
    if wanted("latency_idle") {
        let (p50, p99) = idle_latency(s);
        report("latency_idle_p50", "µs", p50);
        report("latency_idle_p99", "µs", p99);
    }
    if wanted("hot_wake") {
        let (p50, p99, gave_up) = hot_wake(s);
        report("hot_wake_p50", "µs", p50);
        report("hot_wake_p99", "µs", p99);
        report("hot_wake_not_taken", "%", gave_up);
    }
    if wanted("mem_per_task") {
        let counts = mem_per_task(s, workers);
        let per_task = |count: isize| count as f64 / MEM_TASKS as f64;
        report("mem_per_task", "B/task", per_task(counts.bytes));
        report("mem_per_task_peak", "B/task", per_task(counts.peak));
        report("mem_per_task_malloc", "B/task", per_task(counts.usable));
        report("mem_allocs_per_task", "blocks/task", per_task(counts.blocks));
    }
}

/// A node of the spawn tree: counts itself, then spawns its two children
/// through a clone of the handle it captured (the one way every peer has).
fn tree_node<S: Spawner>(s: S, counter: &'static AtomicUsize, depth: u32) {
    black_box(counter.fetch_add(1, Ordering::Relaxed));
    if depth > 1 {
        let child = s.clone();
        s.spawn(move || tree_node(child, counter, depth - 1));
        let child = s.clone();
        s.spawn(move || tree_node(child, counter, depth - 1));
    }
}

/// p50 and p99 in µs of sorted nanosecond samples.
fn percentiles(mut nanos: Vec<u64>) -> (f64, f64) {
    nanos.sort_unstable();
    let at = |q: f64| nanos[((nanos.len() - 1) as f64 * q).round() as usize] as f64 / 1e3;
    (at(0.50), at(0.99))
}

/// Submissions measured by `latency_idle`.
const IDLE_SAMPLES: usize = 200;

/// Idle wake-up: sleep 1 ms so the workers park, take `Instant::now()`,
/// submit a task whose first action is `Instant::now()`; the difference,
/// over [`IDLE_SAMPLES`] submissions.
fn idle_latency<S: Spawner>(s: &S) -> (f64, f64) {
    let (tx, rx) = mpsc::channel::<Instant>();
    let mut samples = Vec::with_capacity(IDLE_SAMPLES);
    for _ in 0..IDLE_SAMPLES {
        thread::sleep(Duration::from_millis(1));
        let tx = tx.clone();
        let before = Instant::now();
        s.spawn(move || {
            let _ = tx.send(Instant::now());
        });
        let started = rx.recv().expect("latency task did not run");
        samples.push(nanos(started.saturating_duration_since(before)));
    }
    percentiles(samples)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Hand-offs measured by `hot_wake`, after [`HOT_WARMUP`] unmeasured ones.
const HOT_LINKS: usize = 2_000;
const HOT_WARMUP: usize = 200;
/// How long each link works (spinning on the clock) before it hands off:
/// about how long the worker that takes the next link has been idle.
const HOT_WORK: Duration = Duration::from_micros(20);
/// How long a link that handed off keeps its worker busy at most, waiting
/// for another worker to start the next link. A bound, so that a pool
/// whose next task only the submitting worker can run (tokio's LIFO slot
/// cannot be stolen) is measured at about this, not hung.
const HOT_WAIT: Duration = Duration::from_micros(500);

/// A gate threads wait at until it is opened.
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn new() -> Self {
        Gate {
            open: Mutex::new(false),
            opened: Condvar::new(),
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }

    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }
}

struct Chain {
    latency_ns: Vec<AtomicU64>,
    /// How many links have started.
    started: AtomicUsize,
    /// Measured hand-offs whose spawner stopped waiting at [`HOT_WAIT`].
    gave_up: AtomicUsize,
    done: Gate,
}

/// Hot ping-pong: a chain of tasks handing off to each other. Each link
/// works for [`HOT_WORK`], takes `Instant::now()`, spawns the next link
/// from inside the pool, and keeps its worker busy until another worker has
/// started that link (at most [`HOT_WAIT`]). So the pool is never idle, and
/// every hand-off goes to a worker that finished a task about `HOT_WORK`
/// ago (spinning, searching or just parked): with two workers the links
/// ping-pong between them. Latency of a hand-off = the next link's first
/// `Instant::now()` minus the one taken just before the `spawn` call.
///
/// Returns p50 and p99 in µs, and the percentage of measured hand-offs that
/// no other worker started within [`HOT_WAIT`].
fn hot_wake<S: Spawner>(s: &S) -> (f64, f64, f64) {
    let chain = Arc::new(Chain {
        latency_ns: (0..HOT_WARMUP + HOT_LINKS).map(|_| AtomicU64::new(0)).collect(),
        started: AtomicUsize::new(0),
        gave_up: AtomicUsize::new(0),
        done: Gate::new(),
    });
    let (next, c) = (s.clone(), chain.clone());
    let at = Instant::now();
    s.spawn(move || hot_link(next, c, 0, at));
    chain.done.wait();
    let samples = chain.latency_ns[HOT_WARMUP..]
        .iter()
        .map(|l| l.load(Ordering::Relaxed))
        .collect();
    let (p50, p99) = percentiles(samples);
    let gave_up = chain.gave_up.load(Ordering::Relaxed) as f64 * 100.0 / HOT_LINKS as f64;
    (p50, p99, gave_up)
}

fn hot_link<S: Spawner>(s: S, chain: Arc<Chain>, k: usize, submitted: Instant) {
    let started = Instant::now();
    // Relaxed: a flag the predecessor polls; no data travels with it.
    chain.started.store(k + 1, Ordering::Relaxed);
    // Relaxed: read after `done` is opened, whose lock orders it.
    chain.latency_ns[k].store(nanos(started.saturating_duration_since(submitted)), Ordering::Relaxed);
    if k + 1 == chain.latency_ns.len() {
        chain.done.open();
        return;
    }
    spin_until(|| false, started + HOT_WORK);
    let (next, c) = (s.clone(), chain.clone());
    let at = Instant::now();
    s.spawn(move || hot_link(next, c, k + 1, at));
    let handed_off = || chain.started.load(Ordering::Relaxed) > k + 1;
    spin_until(handed_off, at + HOT_WAIT);
    if k + 1 >= HOT_WARMUP && !handed_off() {
        // Relaxed: a statistic read after `done` is opened.
        chain.gave_up.fetch_add(1, Ordering::Relaxed);
    }
}

/// Busy-waits until `done()` or the deadline.
fn spin_until(done: impl Fn() -> bool, deadline: Instant) {
    while !done() && Instant::now() < deadline {
        std::hint::spin_loop();
    }
}

/// Tasks queued by `mem_per_task`.
const MEM_TASKS: usize = 1_000_000;
static MEM_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Memory per queued task: block every worker on a gate, then queue
/// [`MEM_TASKS`] closures capturing 8 bytes (a `&'static AtomicUsize`) from
/// this thread and count heap allocations meanwhile (see `alloc.rs`).
/// Returns the counts once all are queued; then the gate opens and every
/// task runs.
fn mem_per_task<S: Spawner>(s: &S, workers: usize) -> alloc::Counts {
    let gate = Arc::new(Gate::new());
    let blocked = Arc::new(AtomicUsize::new(0));
    for _ in 0..workers {
        let (gate, blocked) = (gate.clone(), blocked.clone());
        s.spawn(move || {
            // Release/Acquire: pairs with the load below; only a count.
            blocked.fetch_add(1, Ordering::Release);
            gate.wait();
        });
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while blocked.load(Ordering::Acquire) < workers {
        assert!(
            Instant::now() < deadline,
            "mem_per_task: only {} of {workers} workers took a blocking task within 10 s",
            blocked.load(Ordering::Acquire)
        );
        thread::sleep(Duration::from_micros(100));
    }
    let counter: &'static AtomicUsize = &MEM_COUNTER;
    counter.store(0, Ordering::Relaxed);
    alloc::start();
    for _ in 0..MEM_TASKS {
        s.spawn(move || tiny(counter));
    }
    let counts = alloc::stop();
    gate.open();
    wait_counter(counter, MEM_TASKS);
    counts
}
