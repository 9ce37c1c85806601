//! Capacity-at-runtime benchmarks (issue "Capacity at runtime").
//!
//! Run with
//!
//! ```text
//! cargo bench -p stealpool-benches --bench capacity                 # full run (well under 2 minutes on 2 cores)
//! cargo bench -p stealpool-benches --bench capacity -- --test       # smoke test: every benchmark once
//! cargo bench -p stealpool-benches --bench capacity -- churn        # one group only (criterion filter)
//! cargo bench -p stealpool-benches --bench capacity -- --rounds 5   # grow percentiles by placement, churn interleaved
//! ```
//!
//! The last form (`capacity/rounds.rs`) is the one to quote for the grow
//! latency's p99 and the churn ratio: criterion's figures below are means of
//! one process's run, and both move with things the library does not
//! choose (see the two groups).
//!
//! # Groups
//!
//! * **`tune_grow_takes_effect`**: the only worker of a capacity-1 pool is
//!   blocked by a task, one more task is queued; the time from calling
//!   `pool.tune(2)` until that queued task starts running (`Instant::now()`
//!   taken as the task's first action):
//!   - `thread_not_started`: slot 1 never had a thread (`prealloc(false)`,
//!     a fresh pool per measurement), so the grow has to start one,
//!   - `thread_suspended`: `prealloc(true)` pool of capacity 2 tuned down to
//!     1 (slot 1 parks as `Suspended`), then grown back: the grow only
//!     resumes the parked thread. After the group it prints the p50/p99 of
//!     every grow and on how many the tuning thread ran on the resumed
//!     worker's home core, which decides the figure: the grow is one
//!     wake-up of a pinned thread, and on a VM a wake-up sent to an idle
//!     core (a halted virtual CPU) costs 10–50 µs more, varying with the
//!     host, than one onto the waker's own core, which the worker gets as
//!     soon as the waker blocks.
//!     Where the OS runs this thread is fixed for most of a run, so one
//!     process's figure sits in one mode or the other; `--rounds` places
//!     the tuning thread on purpose and reports both.
//!
//! * **`throughput_under_churn`**: 100,000 small tasks (32 xorshift rounds each)
//!   submitted from one outside thread and awaited, at steady capacity
//!   `HI = max(2, cores)` vs. the same while another thread swings the
//!   capacity between 1 and `HI` every ~100 µs (a `thread::sleep(100 µs)`
//!   between tunes, so the real period is longer; the achieved rate is
//!   printed). Peer: `threadpool` with `set_num_threads` churn. The issue's
//!   target is churn ≥ 0.9× steady throughput; this file measures, it does
//!   not assert that. The two criterion figures are taken one after the
//!   other, a second each: on a shared machine their ratio moves by tens of
//!   percent from run to run of the same build; `--rounds` alternates
//!   steady and churn rounds on one pool instead.
//!
//! * **`idle_worker_memory`**: not a timing. Before criterion starts, the
//!   binary re-runs itself (one child process per figure, so that one pool's
//!   freed memory and glibc's cached thread stacks do not bias the next)
//!   and prints how much `VmRSS` / `VmSize` (from `/proc/self/status`) grow
//!   per idle, parked worker: stealpool `prealloc(true)` with 8 and 64
//!   workers, `threadpool` with 8 and 64 threads, and 8 / 64 bare
//!   `std::thread`s blocked in `park` as the floor.
//!
//! * **`shutdown_latency_empty`**: the time of a graceful shutdown of an
//!   idle pool (empty queue, every worker parked), capacity 2 and 8, build
//!   time excluded:
//!   - `stealpool`: `prealloc(true)` pool, `pool.shutdown()` (joins every
//!     worker thread before it returns),
//!   - `threadpool_join_drop`: `join()` + drop of the last handle. Returns
//!     *without* waiting for the threads: they exit on their own once the
//!     channel is closed, so this is not the same amount of work,
//!   - `threadpool_until_exited`: the same, then waits until every thread ran
//!     its thread-local destructors (exit counted by a TLS guard): comparable
//!     with stealpool's join,
//!   - `rayon_until_exited`: `drop(rayon::ThreadPool)` returns at once
//!     (rayon only signals termination, it never joins), so we wait until
//!     every thread's `exit_handler` ran.
//!
//! Latency-style groups time only part of each round (the rest is building
//! and settling the pool), so like `peers.rs` they run at most a few real
//! rounds per criterion sample and scale the sum to the iteration count
//! criterion asked for; this keeps the wall time bounded.

use std::cell::RefCell;
use std::fs;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    black_box, criterion_group, Bencher, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use stealpool::{Pool, WorkerState};

#[path = "capacity/rounds.rs"]
mod rounds;

// ---------------------------------------------------------------------------
// Shared set-up
// ---------------------------------------------------------------------------

/// Cores this process may run on.
fn threads() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// Short groups: the whole run must stay well under 2 minutes on 2 cores.
fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sampling_mode(SamplingMode::Flat);
}

/// Bound on "soon" waits (a worker parks, a task starts): only a hung pool
/// (or a machine stalled for seconds) reaches it, and then we panic with a
/// message instead of hanging the benchmark.
const SOON: Duration = Duration::from_secs(10);

/// Idle time before each timed action, so that spinning workers have parked.
const SETTLE: Duration = Duration::from_millis(1);

/// Polls `cond` (yielding) until it holds; panics with `what` after `SOON`.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + SOON;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {SOON:?} waiting for {what}");
        thread::yield_now();
    }
}

/// Runs `round` (which returns the time of its timed part) at most `max_real`
/// times and scales the sum to the `iters` criterion asked for.
fn sampled(iters: u64, max_real: u64, mut round: impl FnMut() -> Duration) -> Duration {
    let real = iters.clamp(1, max_real);
    let total: Duration = (0..real).map(|_| round()).sum();
    let nanos = total.as_nanos() * u128::from(iters) / u128::from(real);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

// ---------------------------------------------------------------------------
// (1) tune_grow_takes_effect
// ---------------------------------------------------------------------------

/// Upper bound on real grow measurements per criterion sample.
const GROW_MAX_REAL: u64 = 30;

/// One grow measurement on `pool` (capacity 1 now, its only active worker
/// idle): blocks that worker with a task, queues a probe task, then times
/// `tune(2)` until the probe's first instruction. Leaves the blocker released
/// and the pool idle.
fn grow_once(pool: &Pool) -> Duration {
    grow_once_on(pool).0
}

/// As [`grow_once`], and the core the calling (tuning) thread ran on just
/// before it called `tune(2)`, where the OS tells.
fn grow_once_on(pool: &Pool) -> (Duration, Option<usize>) {
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    pool.submit(move || {
        let _ = started_tx.send(());
        let _ = release_rx.recv_timeout(SOON);
    })
    .expect("submit blocker");
    started_rx.recv_timeout(SOON).expect("blocker task did not start");

    let (probe_tx, probe_rx) = mpsc::channel::<Instant>();
    pool.submit(move || {
        let now = Instant::now();
        let _ = probe_tx.send(now);
    })
    .expect("submit probe");
    thread::sleep(SETTLE);
    assert!(
        probe_rx.try_recv().is_err(),
        "the probe ran before the grow: capacity 1 ran two tasks at once ({:?})",
        pool.worker_stats()
    );

    let cpu = current_cpu();
    let before = Instant::now();
    pool.tune(2).expect("tune(2)");
    let started = probe_rx
        .recv_timeout(SOON)
        .unwrap_or_else(|_| panic!("queued task did not start after tune(2): {:?}", pool.worker_stats()));
    let elapsed = started.saturating_duration_since(before);

    let _ = release_tx.send(());
    pool.wait_idle();
    (elapsed, cpu)
}

/// The core the calling thread runs on now, where the OS tells.
fn current_cpu() -> Option<usize> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: no arguments; returns -1 on failure.
        usize::try_from(unsafe { libc::sched_getcpu() }).ok()
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        None
    }
}

/// Grow latencies of one run, with whether the tuning thread sat on the
/// resumed worker's home core; printed as percentiles after the group.
#[derive(Default)]
struct GrowSamples {
    micros: Vec<f64>,
    on_home: usize,
    placed: usize,
}

impl GrowSamples {
    fn push(&mut self, elapsed: Duration, tuner_cpu: Option<usize>, home: Option<usize>) {
        self.micros.push(elapsed.as_secs_f64() * 1e6);
        if let (Some(cpu), Some(home)) = (tuner_cpu, home) {
            self.placed += 1;
            self.on_home += usize::from(cpu == home);
        }
    }

    /// `p50 / p90 / p99 / max` in µs (nearest rank).
    fn summary(&self) -> String {
        let mut sorted = self.micros.clone();
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
        if sorted.is_empty() {
            return "no samples".into();
        }
        format!(
            "p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, max {:.1} µs over {} grows",
            at(0.5),
            at(0.9),
            at(0.99),
            at(1.0),
            sorted.len()
        )
    }

    fn p(&self, q: f64) -> f64 {
        let mut sorted = self.micros.clone();
        sorted.sort_by(f64::total_cmp);
        sorted
            .get(((sorted.len().max(1) - 1) as f64 * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    }
}

/// `tune(1 -> 2)` latency until a queued task starts, grown slot without a
/// thread vs. with a suspended thread.
fn bench_tune_grow(c: &mut Criterion) {
    let mut group = c.benchmark_group("tune_grow_takes_effect");
    configure(&mut group);

    // A fresh on-demand pool per round: slot 1 has never had a thread, so
    // the measured time includes starting one (inside `tune`).
    group.bench_function("thread_not_started", |b| {
        b.iter_custom(|iters| {
            sampled(iters, GROW_MAX_REAL, || {
                let pool = Pool::builder()
                    .capacity(1)
                    .max_capacity(2)
                    .build()
                    .expect("build stealpool::Pool");
                let elapsed = grow_once(&pool);
                assert_eq!(pool.stats().live_workers, 2);
                pool.shutdown();
                elapsed
            })
        })
    });

    // One pre-allocated pool: each round tunes it down to 1 (slot 1's thread
    // parks as Suspended) and measures the grow back to 2.
    {
        let pool = Pool::builder()
            .capacity(2)
            .max_capacity(2)
            .prealloc(true)
            .build()
            .expect("build stealpool::Pool");
        let samples = RefCell::new(GrowSamples::default());
        group.bench_function("thread_suspended", |b| {
            b.iter_custom(|iters| {
                sampled(iters, GROW_MAX_REAL, || {
                    pool.tune(1).expect("tune(1)");
                    wait_for("worker 1 to suspend after tune(1)", || {
                        pool.worker_stats()[1].state == WorkerState::Suspended
                    });
                    let (elapsed, cpu) = grow_once_on(&pool);
                    samples
                        .borrow_mut()
                        .push(elapsed, cpu, pool.worker_stats()[1].home_core);
                    elapsed
                })
            })
        });
        pool.shutdown();
        let samples = samples.into_inner();
        if !samples.micros.is_empty() {
            println!("thread_suspended: {} (warm-up included)", samples.summary());
            if samples.placed > 0 {
                println!(
                    "  the tuning thread ran on the resumed worker's home core in {} of {} grows: this \
                     decides the mode (see the header; `-- --rounds N` places it on purpose)",
                    samples.on_home, samples.placed
                );
            }
        }
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// (2) throughput_under_churn
// ---------------------------------------------------------------------------

/// Tasks per iteration.
const CHURN_TASKS: usize = 100_000;
/// Pause between two `tune` / `set_num_threads` calls of the churn thread.
const CHURN_PERIOD: Duration = Duration::from_micros(100);
/// Counts finished tasks, to check that every task ran.
static CHURN_COUNTER: AtomicUsize = AtomicUsize::new(0);
/// Capacity changes made by the churn threads (to print the achieved rate).
static CHURN_TUNES: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds the churn threads ran (to print the achieved rate).
static CHURN_NANOS: AtomicU64 = AtomicU64::new(0);

/// The task body: a little dependent arithmetic (32 xorshift64 rounds,
/// which the compiler cannot fold; a few tens of ns), then a count.
#[inline]
fn small_task(seed: u64) {
    let mut x = seed | 1;
    for _ in 0..32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    black_box(x);
    CHURN_COUNTER.fetch_add(1, Ordering::Relaxed);
}

/// Spin (yielding) until `CHURN_COUNTER` reaches `CHURN_TASKS`.
fn wait_churn_counter() {
    wait_for("every churn task to finish", || {
        CHURN_COUNTER.load(Ordering::Acquire) >= CHURN_TASKS
    });
}

/// A thread that calls `set(1)`, `set(hi)`, `set(1)`, ... with
/// `CHURN_PERIOD` sleeps in between until stopped; `stop` returns the
/// capacity to `hi`.
struct Churner {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Churner {
    /// Starts the churn thread.
    fn start(hi: usize, mut set: impl FnMut(usize) + Send + 'static) -> Churner {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            let begin = Instant::now();
            let mut tunes = 0u64;
            while !flag.load(Ordering::Relaxed) {
                set(if tunes % 2 == 0 { 1 } else { hi });
                tunes += 1;
                thread::sleep(CHURN_PERIOD);
            }
            set(hi);
            CHURN_TUNES.fetch_add(tunes, Ordering::Relaxed);
            let nanos = u64::try_from(begin.elapsed().as_nanos()).unwrap_or(u64::MAX);
            CHURN_NANOS.fetch_add(nanos, Ordering::Relaxed);
        });
        Churner {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the churn thread and waits for it (capacity back at `hi`).
    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("churn thread panicked");
        }
    }
}

/// Prints (and resets) the churn rate achieved since the last call.
fn report_churn(label: &str) {
    let tunes = CHURN_TUNES.swap(0, Ordering::Relaxed);
    let nanos = CHURN_NANOS.swap(0, Ordering::Relaxed);
    if tunes > 0 {
        println!(
            "{label}: {tunes} capacity changes, one every {:.1} µs on average; {} threads in the process now",
            nanos as f64 / tunes as f64 / 1000.0,
            process_threads()
        );
    }
}

/// One stealpool iteration: submit every task from this thread, `wait_idle`.
fn stealpool_round(pool: &Pool) {
    CHURN_COUNTER.store(0, Ordering::Relaxed);
    for i in 0..CHURN_TASKS as u64 {
        pool.submit(move || small_task(i)).expect("stealpool submit");
    }
    pool.wait_idle();
    assert_eq!(
        CHURN_COUNTER.load(Ordering::Acquire),
        CHURN_TASKS,
        "wait_idle returned before every task ran"
    );
}

/// One threadpool iteration: `execute` every task, `join`, then the counter
/// wait (`join` can return while the last task still runs, see peers.rs).
fn threadpool_round(pool: &threadpool::ThreadPool) {
    CHURN_COUNTER.store(0, Ordering::Relaxed);
    for i in 0..CHURN_TASKS as u64 {
        pool.execute(move || small_task(i));
    }
    pool.join();
    wait_churn_counter();
}

/// 100k small tasks at steady capacity vs. under capacity churn, stealpool
/// and threadpool.
fn bench_churn(c: &mut Criterion) {
    let hi = threads().max(2);
    let mut group = c.benchmark_group("throughput_under_churn");
    configure(&mut group);
    group.throughput(Throughput::Elements(CHURN_TASKS as u64));

    let build = || {
        Pool::builder()
            .capacity(hi)
            .max_capacity(hi)
            .build()
            .expect("build stealpool::Pool")
    };
    {
        // Steady: capacity `hi` throughout.
        let pool = build();
        group.bench_function("stealpool_steady", |b| b.iter(|| stealpool_round(&pool)));
        pool.shutdown();
    }
    {
        // Churn: `tune(1)` / `tune(hi)` from another thread during the rounds.
        let pool = build();
        group.bench_function("stealpool_churn", |b| {
            b.iter_custom(|iters| {
                let tuner = pool.clone();
                let churn = Churner::start(hi, move |n| tuner.tune(n).expect("tune"));
                let start = Instant::now();
                for _ in 0..iters {
                    stealpool_round(&pool);
                }
                let elapsed = start.elapsed();
                churn.stop();
                elapsed
            })
        });
        report_churn("stealpool_churn");
        pool.shutdown();
    }
    {
        // Steady: `hi` threads throughout.
        let pool = threadpool::ThreadPool::new(hi);
        group.bench_function("threadpool_steady", |b| b.iter(|| threadpool_round(&pool)));
        pool.join();
    }
    {
        // Churn: `set_num_threads(1)` / `set_num_threads(hi)` from another thread.
        let pool = threadpool::ThreadPool::new(hi);
        group.bench_function("threadpool_churn", |b| {
            b.iter_custom(|iters| {
                let mut tuner = pool.clone();
                let churn = Churner::start(hi, move |n| tuner.set_num_threads(n));
                let start = Instant::now();
                for _ in 0..iters {
                    threadpool_round(&pool);
                }
                let elapsed = start.elapsed();
                churn.stop();
                elapsed
            })
        });
        report_churn("threadpool_churn");
        pool.join();
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// (3) idle_worker_memory (printed before criterion runs)
// ---------------------------------------------------------------------------

/// Environment variable that turns the binary into a memory probe child.
const PROBE_ENV: &str = "STEALPOOL_CAPACITY_MEMORY_PROBE";

/// `VmRSS`, `VmSize` (KiB) and `Threads` of this process.
#[derive(Clone, Copy, Debug)]
struct ProcStatus {
    rss_kib: u64,
    vm_kib: u64,
    threads: u64,
}

/// Reads `/proc/self/status`.
fn proc_status() -> ProcStatus {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/self/status"))
    };
    ProcStatus {
        rss_kib: field("VmRSS:"),
        vm_kib: field("VmSize:"),
        threads: field("Threads:"),
    }
}

/// Threads of this process now.
fn process_threads() -> u64 {
    proc_status().threads
}

/// Child mode: starts `n` idle workers of `kind`, lets them park, and prints
/// `before_rss before_vm after_rss after_vm` (KiB) on stdout. Never returns.
fn memory_probe_child(spec: &str) -> ! {
    let (kind, n) = spec.split_once(':').expect("probe spec is KIND:N");
    let n: usize = n.parse().expect("probe worker count");
    // Let the process's one-time start-up settle before the first reading.
    thread::sleep(Duration::from_millis(20));
    let before = proc_status();
    // Keep whatever was built alive until the process exits.
    let keep: Box<dyn std::any::Any> = match kind {
        "stealpool" => {
            let pool = Pool::builder()
                .capacity(n)
                .max_capacity(n)
                .prealloc(true)
                .build()
                .expect("build stealpool::Pool");
            wait_for("every stealpool worker to park", || pool.stats().sleeping_workers == n);
            Box::new(pool)
        }
        "threadpool" => {
            // Threads start in `new` and block on the job channel at once.
            let pool = threadpool::ThreadPool::new(n);
            wait_for("every threadpool thread to start", || {
                process_threads() == before.threads + n as u64
            });
            Box::new(pool)
        }
        "std_thread" => {
            // Bare threads parked forever: the floor any pool pays per thread.
            let handles: Vec<_> = (0..n)
                .map(|_| {
                    thread::spawn(|| loop {
                        thread::park();
                    })
                })
                .collect();
            wait_for("every std thread to start", || {
                process_threads() == before.threads + n as u64
            });
            Box::new(handles)
        }
        other => panic!("unknown probe kind {other}"),
    };
    thread::sleep(Duration::from_millis(100));
    let after = proc_status();
    assert_eq!(after.threads, before.threads + n as u64, "thread count of the probe");
    println!(
        "{} {} {} {}",
        before.rss_kib, before.vm_kib, after.rss_kib, after.vm_kib
    );
    std::mem::forget(keep);
    std::process::exit(0)
}

/// Runs one probe child (with glibc's `MALLOC_ARENA_MAX=1` if `one_arena`);
/// returns (RSS growth, VmSize growth) in KiB.
fn probe(kind: &str, n: usize, one_arena: bool) -> Option<(i64, i64)> {
    let exe = std::env::current_exe().ok()?;
    let mut command = Command::new(exe);
    command.env(PROBE_ENV, format!("{kind}:{n}"));
    if one_arena {
        command.env("MALLOC_ARENA_MAX", "1");
    }
    let output = command.output().ok()?;
    if !output.status.success() {
        eprintln!(
            "memory probe {kind}:{n} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let v: Vec<i64> = text.split_whitespace().filter_map(|s| s.parse().ok()).collect();
    match v[..] {
        [rss0, vm0, rss1, vm1] => Some((rss1 - rss0, vm1 - vm0)),
        _ => None,
    }
}

/// Prints the per-idle-worker memory figures of stealpool, threadpool and
/// bare std threads (8 and 64 of each, each in its own child process).
fn memory_report() {
    const SMALL: usize = 8;
    const LARGE: usize = 64;
    println!("idle_worker_memory: growth of /proc/self/status after starting N idle, parked workers");
    println!(
        "  thread stack size: std default 2 MiB (RUST_MIN_STACK={}); stealpool and threadpool \
         set none, so they use it; stacks are mapped, mostly untouched, so VmSize shows them and \
         VmRSS does not; per-thread kernel memory (kernel stack, task_struct) is in neither",
        std::env::var("RUST_MIN_STACK").unwrap_or_else(|_| "unset".into())
    );
    println!(
        "  {:<11} {:>4} {:>12} {:>12} {:>14} {:>14}",
        "kind", "N", "RSS total", "RSS/worker", "VmSize total", "VmSize/worker"
    );
    for kind in ["stealpool", "threadpool", "std_thread"] {
        let small = probe(kind, SMALL, false);
        let large = probe(kind, LARGE, false);
        for (n, figures) in [(SMALL, small), (LARGE, large)] {
            match figures {
                Some((rss, vm)) => println!(
                    "  {kind:<11} {n:>4} {:>8} KiB {:>8.1} KiB {:>10} KiB {:>10.1} KiB",
                    rss,
                    rss as f64 / n as f64,
                    vm,
                    vm as f64 / n as f64
                ),
                None => println!("  {kind:<11} {n:>4}  (probe failed)"),
            }
        }
        if let (Some((rss_s, vm_s)), Some((rss_l, vm_l))) = (small, large) {
            let extra = (LARGE - SMALL) as f64;
            println!(
                "  {kind:<11} marginal ({SMALL}->{LARGE}): {:.1} KiB RSS, {:.1} KiB VmSize per worker",
                (rss_l - rss_s) as f64 / extra,
                (vm_l - vm_s) as f64 / extra
            );
        }
        // glibc gives threads that allocate their own malloc arena (64 MiB of
        // address space each, up to 8 per core), which dominates VmSize
        // above; with one arena, VmSize growth is the stacks themselves.
        if let Some((rss, vm)) = probe(kind, LARGE, true) {
            println!(
                "  {kind:<11} {LARGE} with MALLOC_ARENA_MAX=1: {:.1} KiB RSS, {:.1} KiB VmSize per worker",
                rss as f64 / LARGE as f64,
                vm as f64 / LARGE as f64
            );
        }
    }
}

// ---------------------------------------------------------------------------
// (4) shutdown_latency_empty
// ---------------------------------------------------------------------------

/// Upper bound on real shutdown measurements per criterion sample.
const SHUTDOWN_MAX_REAL: u64 = 20;
/// Threads of the current `threadpool` / `rayon` pool that have exited.
static EXITED: AtomicUsize = AtomicUsize::new(0);

/// Counts its thread's exit in `EXITED` when thread-local storage is torn down.
struct ExitGuard;

impl Drop for ExitGuard {
    fn drop(&mut self) {
        EXITED.fetch_add(1, Ordering::AcqRel);
    }
}

thread_local! {
    /// Installed once per threadpool thread, dropped when the thread exits.
    static EXIT_GUARD: RefCell<Option<ExitGuard>> = const { RefCell::new(None) };
}

/// A `threadpool` with all `n` threads started (each ran one barrier task and
/// installed an `ExitGuard`), idle and parked.
fn parked_threadpool(n: usize) -> threadpool::ThreadPool {
    let pool = threadpool::ThreadPool::new(n);
    let barrier = Arc::new(Barrier::new(n));
    for _ in 0..n {
        let barrier = barrier.clone();
        pool.execute(move || {
            barrier.wait();
            EXIT_GUARD.with(|guard| *guard.borrow_mut() = Some(ExitGuard));
        });
    }
    pool.join();
    thread::sleep(SETTLE);
    pool
}

/// Waits until `n` pool threads counted their exit in `EXITED`.
fn wait_exited(n: usize) {
    wait_for("every pool thread to exit", || EXITED.load(Ordering::Acquire) >= n);
}

/// Shutdown of an idle pool with every worker parked, capacity 2 and 8,
/// stealpool vs. threadpool vs. rayon.
fn bench_shutdown(c: &mut Criterion) {
    let mut group = c.benchmark_group("shutdown_latency_empty");
    configure(&mut group);

    for n in [2usize, 8] {
        // `Pool::shutdown` on a prealloc pool whose workers all sleep: close,
        // wake, join every thread.
        group.bench_with_input(BenchmarkId::new("stealpool", n), &n, |b: &mut Bencher<'_>, &n| {
            b.iter_custom(|iters| {
                sampled(iters, SHUTDOWN_MAX_REAL, || {
                    let pool = Pool::builder()
                        .capacity(n)
                        .max_capacity(n)
                        .prealloc(true)
                        .build()
                        .expect("build stealpool::Pool");
                    wait_for("every stealpool worker to park", || pool.stats().sleeping_workers == n);
                    thread::sleep(SETTLE);
                    let start = Instant::now();
                    pool.shutdown();
                    let elapsed = start.elapsed();
                    // The drop of the last handle (a no-op shutdown) is not timed.
                    drop(pool);
                    elapsed
                })
            })
        });
        // `join()` + drop of the last handle: returns without waiting for the
        // threads, which exit on their own when the channel closes.
        group.bench_with_input(BenchmarkId::new("threadpool_join_drop", n), &n, |b, &n| {
            b.iter_custom(|iters| {
                sampled(iters, SHUTDOWN_MAX_REAL, || {
                    EXITED.store(0, Ordering::Release);
                    let pool = parked_threadpool(n);
                    let start = Instant::now();
                    pool.join();
                    drop(pool);
                    let elapsed = start.elapsed();
                    // Untimed: let the threads go before the next round.
                    wait_exited(n);
                    elapsed
                })
            })
        });
        // The same, timed until every thread has exited (as stealpool's join).
        group.bench_with_input(BenchmarkId::new("threadpool_until_exited", n), &n, |b, &n| {
            b.iter_custom(|iters| {
                sampled(iters, SHUTDOWN_MAX_REAL, || {
                    EXITED.store(0, Ordering::Release);
                    let pool = parked_threadpool(n);
                    let start = Instant::now();
                    pool.join();
                    drop(pool);
                    wait_exited(n);
                    start.elapsed()
                })
            })
        });
        // `drop(rayon::ThreadPool)` does not wait for its threads (it only
        // signals them), so the time runs until every `exit_handler` ran.
        group.bench_with_input(BenchmarkId::new("rayon_until_exited", n), &n, |b, &n| {
            b.iter_custom(|iters| {
                sampled(iters, SHUTDOWN_MAX_REAL, || {
                    EXITED.store(0, Ordering::Release);
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(n)
                        .exit_handler(|_| {
                            EXITED.fetch_add(1, Ordering::AcqRel);
                        })
                        .build()
                        .expect("build rayon::ThreadPool");
                    // Every thread started and ran something; then let them sleep.
                    pool.broadcast(|_| ());
                    thread::sleep(SETTLE);
                    let start = Instant::now();
                    drop(pool);
                    wait_exited(n);
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(capacity, bench_tune_grow, bench_churn, bench_shutdown);

/// As `criterion_main!`, plus the memory figures first (and the probe-child
/// mode they need).
fn main() {
    if let Ok(spec) = std::env::var(PROBE_ENV) {
        memory_probe_child(&spec);
    }
    if rounds::requested() {
        rounds::main();
        return;
    }
    memory_report();
    capacity();
    Criterion::default().configure_from_args().final_summary();
}
