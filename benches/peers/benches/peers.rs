//! Peer comparison benchmarks: `stealpool` against `rayon`, `tokio`,
//! `threadpool`, `rusty_pool`, `executors` (its crossbeam work-stealing
//! pool) and `chili` (heartbeat-scheduled fork-join; it has `join` only, so
//! it appears in the fork-join workloads only).
//!
//! Two ways to run it. Criterion, every library in one process, each group
//! benchmarking its peers one after another:
//!
//! ```text
//! cargo bench -p stealpool-benches --bench peers                 # full run (several minutes on 2 cores)
//! cargo bench -p stealpool-benches --bench peers -- --test       # smoke test: every benchmark once
//! cargo bench -p stealpool-benches --bench peers -- submit_1m    # one group only (criterion filter)
//! ```
//!
//! Interleaved rounds, each library in its own process (this binary starts
//! itself once per library per round, rotating the order; see
//! `peers/rounds.rs`). It prints each figure as it comes and, at the end, a
//! markdown table of the medians over the rounds with the ratios stealpool
//! / best peer and stealpool / rayon. This is the one to quote on a noisy
//! machine, and the only one that runs `hot_wake` and `mem_per_task`:
//!
//! ```text
//! cargo bench -p stealpool-benches --bench peers -- --rounds 3                       # everything, 3 rounds
//! cargo bench -p stealpool-benches --bench peers -- --rounds 5 --only hot_wake,mem_per_task
//! cargo bench -p stealpool-benches --bench peers -- --rounds 3 --libs stealpool,rayon,chili --only join_fib27,merge_sort_10m
//! cargo bench -p stealpool-benches --bench peers -- --lib stealpool                  # one child's raw `result` lines
//! ```
//!
//! Workload names for `--only`: `submit_1m`, `two_submitters`, `spawn_tree`,
//! `spawn_tree_scope`, `join_fib27`, `merge_sort_10m`, `latency_idle`,
//! `hot_wake`, `mem_per_task`. Libraries for `--libs`/`--lib`: `stealpool`,
//! `rayon`, `chili`, `tokio`, `threadpool`, `rusty_pool`, `executors`,
//! `sequential` (the fork-join workloads on one thread, for reference). In
//! a child each timed workload runs once to warm up and then three times,
//! and the child reports the median of the three; in the rounds mode every
//! submit-style peer waits by spinning (`yield_now`) on the counter, and
//! children in `spawn_tree` are spawned through a clone of the pool handle
//! the parent node captured (the one way every peer has).
//!
//! Every peer is built once per group, outside the timing loop, with
//! `N = std::thread::available_parallelism()` worker threads:
//!
//! * `stealpool`: `Pool::builder().capacity(N)` (other settings default, so
//!   workers are pinned),
//! * `rayon`: a dedicated `rayon::ThreadPoolBuilder::new().num_threads(N)` pool,
//! * `tokio`: a multi-thread runtime with `worker_threads(N)`,
//! * `threadpool`: `threadpool::ThreadPool::new(N)`,
//! * `rusty_pool`: `rusty_pool::ThreadPool::new(N, N, 60 s)`, core threads
//!   started up front,
//! * `executors`: `crossbeam_workstealing_pool::pool_with_auto_parker(N)`
//!   (its small parker up to 32 threads), `Executor::execute`; shut down at
//!   the end of each group,
//! * `chili`: `chili::ThreadPool::with_config` with `thread_count: N` (the
//!   joining thread is one of the N; heartbeat interval default, 100 µs),
//!   one `Scope` per group reused by every iteration.
//!
//! The peers of one workload are benchmarked side by side in the same
//! criterion group, so criterion reports them together (`group/peer`).
//! Groups use `sample_size(10)`, `warm_up_time(1 s)`, `measurement_time(3 s)`.
//!
//! # Workloads
//!
//! * **`submit_1m`**: 1,000,000 tiny closures (each does a `black_box`ed
//!   `fetch_add(1, Relaxed)` on a shared `AtomicUsize`, reached through a
//!   captured `&'static`, so the closure is not zero-sized) are submitted
//!   from one thread outside the pool, then awaited with each peer's natural
//!   wait:
//!   - `stealpool`: `submit` + `wait_idle`,
//!   - `stealpool_spin`: `submit` + spin-`yield_now` until the counter reaches
//!     1,000,000 (the same wait as rayon and tokio),
//!   - `rayon`: `ThreadPool::spawn` + spin-yield on the counter,
//!   - `tokio`: `Runtime::spawn` (the `JoinHandle` is dropped) + spin-yield,
//!   - `threadpool`: `execute` + `join()`,
//!   - `rusty_pool`: `execute` + `join()`,
//!   - `executors`: `execute` + spin-yield on the counter.
//!
//!   `join()` of `rusty_pool` was seen returning while the last task was still
//!   in flight (a worker had taken it off the channel but not yet been counted
//!   busy), so both `join()`s are followed by the counter wait, which costs
//!   nothing when `join()` was exact. `stealpool`'s `wait_idle` is checked
//!   with an assertion instead: returning early is a bug there.
//!
//!   Throughput is `Elements(1_000_000)`: the reported time is per million
//!   tasks, so **milliseconds per iteration read as nanoseconds per task**.
//!
//! * **`two_submitters`**: the same million tiny closures, submitted from
//!   two outside threads at once (half each), then a spin-yield on the
//!   counter for every peer: what contends when several threads feed one
//!   pool (the injector's tail, the accept counter).
//!
//! * **`spawn_tree`**: tasks spawning tasks from inside the pool. A binary tree
//!   with 16 levels (65,535 tasks); every node bumps a counter, then spawns
//!   its two children. The root is itself a spawned task.
//!   - `stealpool_scope`: `pool.scope` with nested `s.spawn` (capturing `s`),
//!   - `stealpool_submit`: `Pool::submit` of the root, children via
//!     `Pool::current()` + `submit`, awaited with `wait_idle`,
//!   - `rayon_scope`: `pool.scope` with nested `s.spawn`,
//!   - `rayon_spawn`: `pool.spawn` of the root, children via `rayon::spawn`,
//!     spin-yield on the counter,
//!   - `tokio`: `Runtime::spawn` of the root, nested `tokio::spawn`,
//!     spin-yield on the counter,
//!   - `threadpool` / `rusty_pool` / `executors`: cloned pool handles
//!     captured by each node, `execute`, spin-yield on the counter (from a
//!     worker, `executors` pushes onto that worker's own deque).
//!
//!   Throughput is `Elements(65_535)`; ns/task = time / 65,535.
//!
//! * **`join_fib`**: recursive `fib(25)` with a fork-join at every level down
//!   to a sequential cutoff (`n < 12`).
//!   - `stealpool`: `pool.join` from the calling (outside) thread at the top and
//!     recursively inside the pool,
//!   - `stealpool_install`: the same recursion started inside the pool
//!     (`pool.spawn(..)` + `JoinHandle::join`, the task uses
//!     `Pool::current()`), the analogue of rayon's `install`,
//!   - `rayon`: `pool.install(|| fib)` with `rayon::join`,
//!   - `chili`: `Scope::join` from the bench thread (chili's joins always
//!     start on the calling thread),
//!   - `sequential`: plain recursion on the bench thread, for reference.
//!
//! * **`join_fib27`**: fine-grained fork-join: `fib(27)` with a `join` at
//!   every level down to `n < 2` (about 318,000 joins, each over almost no
//!   work), so the time is mostly what `join` itself costs. The same four
//!   contenders as `join_fib`, minus `stealpool_install`.
//!
//! * **`merge_sort_10m`**: a user's merge sort of 10,000,000 pseudo-random
//!   `u64` (xorshift64*, the same every run): split in halves, sort them
//!   with a fork-join, merge through a buffer of the same length and copy
//!   back; slices of at most 4,096 elements are sorted with
//!   `sort_unstable`. The same code with `pool.join`, `rayon::join` (inside
//!   `install`), chili's `Scope::join`, and sequentially. Memory-bound
//!   near the top of the recursion. Every result is checked (in order, and
//!   the same length, wrapping sum and xor as the input); the copy of the
//!   input and the check are not timed.
//!
//! * **`latency`**: submit-to-start latency on an idle pool. Before each
//!   measurement the bench thread sleeps 1 ms so the workers have gone idle /
//!   parked; then it takes `Instant::now()`, submits one task
//!   (`submit`, `spawn`, `spawn`, `execute`, `execute`), and the task sends
//!   its own `Instant::now()` back over a `std::sync::mpsc` channel (the bench
//!   thread blocks in `recv`, leaving the cores free). The reported time per
//!   iteration is the mean of `task_start - before_submit`. Because of the
//!   1 ms sleeps, each criterion sample runs at most 200 real measurements
//!   and scales their sum to the requested iteration count (criterion picks
//!   iteration counts from the reported times, which would otherwise make it
//!   ask for hundreds of thousands of 1 ms sleeps). In the rounds mode,
//!   `latency_idle` is the same measurement, 200 submits, reported as p50
//!   and p99.
//!
//! * **`hot_wake`** (rounds mode only): hand-off latency on a busy pool. A
//!   chain of 2,200 tasks, started by one outside submit. Each link takes
//!   `Instant::now()` as its first action and records it minus the instant
//!   its predecessor took just before its `spawn` call; then it works
//!   (spins on the clock) for 20 µs, takes `Instant::now()`, spawns the
//!   next link from inside the pool, and keeps its worker busy until
//!   another worker has started that link (at most 500 µs). So the pool is
//!   never idle and every hand-off is taken by a worker that finished a task
//!   about 20 µs earlier (spinning, searching or just parked); with two
//!   workers the links ping-pong between them. A library whose inside
//!   spawn only the spawning worker can run (tokio's LIFO slot is not
//!   stolen) shows about the 500 µs bound. p50 and p99 of the last 2,000
//!   hand-offs (the first 200 are warm-up), and `hot_wake_not_taken`: the
//!   percentage of them that no other worker had started when the 500 µs
//!   were up (a busy machine whose other processes hold the cores shows up
//!   here). The bench thread waits on a condvar meanwhile, leaving the
//!   cores to the pool.
//!
//! * **`mem_per_task`** (rounds mode only): heap bytes per queued task. One
//!   task per worker blocks its worker on a condvar; once all are blocked,
//!   the bench thread queues 1,000,000 closures capturing 8 bytes (a
//!   `&'static AtomicUsize`) while the binary's counting global allocator
//!   (`peers/alloc.rs`) counts bytes. `mem_per_task` is the bytes still
//!   allocated when the last one is queued divided by 1,000,000;
//!   `mem_per_task_peak` is the highest count seen meanwhile divided by the
//!   same (a queue that grows by copying peaks above what it keeps). Both
//!   count the bytes asked for (`Layout::size`); `mem_per_task_malloc`
//!   counts what malloc set aside for the same blocks
//!   (`malloc_usable_size`, Linux; glibc rounds an 8- or 16-byte box up to
//!   24 bytes and adds an 8-byte header not counted here), and
//!   `mem_allocs_per_task` the blocks still allocated per task. Then the
//!   workers are released and every task runs.

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, Bencher, BenchmarkGroup, Criterion, SamplingMode, Throughput};
use executors::Executor;
use stealpool::Pool;

#[path = "peers/alloc.rs"]
mod alloc;
#[path = "peers/rounds.rs"]
mod rounds;

/// Counts heap bytes for `mem_per_task` (one relaxed load per allocation
/// otherwise).
#[global_allocator]
static ALLOC: alloc::CountingAlloc = alloc::CountingAlloc;

// ---------------------------------------------------------------------------
// Shared set-up
// ---------------------------------------------------------------------------

fn threads() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sampling_mode(SamplingMode::Flat);
}

fn build_stealpool(n: usize) -> Pool {
    Pool::builder().capacity(n).build().expect("build stealpool::Pool")
}

fn build_rayon(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .expect("build rayon::ThreadPool")
}

fn build_tokio(n: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(n)
        .build()
        .expect("build tokio runtime")
}

fn build_threadpool(n: usize) -> threadpool::ThreadPool {
    threadpool::ThreadPool::new(n)
}

fn build_rusty_pool(n: usize) -> rusty_pool::ThreadPool {
    let pool = rusty_pool::ThreadPool::new(n, n, Duration::from_secs(60));
    pool.start_core_threads();
    pool
}

/// The `executors` crate's crossbeam work-stealing pool.
type ExecPool = executors::crossbeam_workstealing_pool::ThreadPool<executors::parker::DynParker>;

fn build_executors(n: usize) -> ExecPool {
    executors::crossbeam_workstealing_pool::pool_with_auto_parker(n)
}

/// chili's pool counts the thread that joins as one of its `n` (it starts
/// `n - 1` threads of its own).
fn build_chili(n: usize) -> chili::ThreadPool {
    chili::ThreadPool::with_config(chili::Config {
        thread_count: NonZeroUsize::new(n),
        ..chili::Config::default()
    })
}

/// `Pool::submit`, retrying (with a yield) if the pool reports `Full`.
fn sp_submit<F: FnOnce() + Send + 'static>(pool: &Pool, mut f: F) {
    loop {
        match pool.submit(f) {
            Ok(()) => return,
            Err(e) if e.is_full() => {
                f = e.into_inner();
                thread::yield_now();
            }
            Err(e) => panic!("stealpool submit failed: {e}"),
        }
    }
}

/// Spin (yielding) until `counter` reaches `target`.
fn wait_counter(counter: &AtomicUsize, target: usize) {
    while counter.load(Ordering::Acquire) < target {
        thread::yield_now();
    }
}

// ---------------------------------------------------------------------------
// (a) submit_1m
// ---------------------------------------------------------------------------

const SUBMIT_TASKS: usize = 1_000_000;
static SUBMIT_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The tiny task body shared by every peer.
#[inline]
fn tiny(counter: &AtomicUsize) {
    black_box(counter.fetch_add(1, Ordering::Relaxed));
}

fn check_submit() {
    assert_eq!(SUBMIT_COUNTER.load(Ordering::Acquire), SUBMIT_TASKS);
}

fn bench_submit_1m(c: &mut Criterion) {
    let n = threads();
    let counter: &'static AtomicUsize = &SUBMIT_COUNTER;
    let mut group = c.benchmark_group("submit_1m");
    configure(&mut group);
    group.throughput(Throughput::Elements(SUBMIT_TASKS as u64));

    {
        let pool = build_stealpool(n);
        group.bench_function("stealpool", |b| {
            b.iter(|| {
                counter.store(0, Ordering::Relaxed);
                for _ in 0..SUBMIT_TASKS {
                    sp_submit(&pool, move || tiny(counter));
                }
                pool.wait_idle();
                check_submit();
            })
        });
        group.bench_function("stealpool_spin", |b| {
            b.iter(|| {
                counter.store(0, Ordering::Relaxed);
                for _ in 0..SUBMIT_TASKS {
                    sp_submit(&pool, move || tiny(counter));
                }
                wait_counter(counter, SUBMIT_TASKS);
            })
        });
    }
    {
        let pool = build_rayon(n);
        group.bench_function("rayon", |b| {
            b.iter(|| {
                counter.store(0, Ordering::Relaxed);
                for _ in 0..SUBMIT_TASKS {
                    pool.spawn(move || tiny(counter));
                }
                wait_counter(counter, SUBMIT_TASKS);
            })
        });
    }
    {
        let rt = build_tokio(n);
        group.bench_function("tokio", |b| {
            b.iter(|| {
                counter.store(0, Ordering::Relaxed);
                for _ in 0..SUBMIT_TASKS {
                    // The JoinHandle is dropped (detached): same workload as the others.
                    drop(rt.spawn(async move { tiny(counter) }));
                }
                wait_counter(counter, SUBMIT_TASKS);
            })
        });
    }
    {
        let pool = build_threadpool(n);
        group.bench_function("threadpool", |b| {
            b.iter(|| {
                counter.store(0, Ordering::Relaxed);
                for _ in 0..SUBMIT_TASKS {
                    pool.execute(move || tiny(counter));
                }
                pool.join();
                // `join` can return while the last task is still running (it
                // checks the channel and idle counts, not the tasks), so make
                // sure every task really ran; a no-op when `join` was exact.
                wait_counter(counter, SUBMIT_TASKS);
            })
        });
    }
    {
        let pool = build_rusty_pool(n);
        group.bench_function("rusty_pool", |b| {
            b.iter(|| {
                counter.store(0, Ordering::Relaxed);
                for _ in 0..SUBMIT_TASKS {
                    pool.execute(move || tiny(counter));
                }
                pool.join();
                // `join` can return while the last task is still running (it
                // checks the channel and idle counts, not the tasks), so make
                // sure every task really ran; a no-op when `join` was exact.
                wait_counter(counter, SUBMIT_TASKS);
            })
        });
    }
    {
        let pool = build_executors(n);
        group.bench_function("executors", |b| {
            b.iter(|| {
                counter.store(0, Ordering::Relaxed);
                for _ in 0..SUBMIT_TASKS {
                    pool.execute(move || tiny(counter));
                }
                wait_counter(counter, SUBMIT_TASKS);
            })
        });
        pool.shutdown().expect("shut down the executors pool");
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// (b) spawn_tree
// ---------------------------------------------------------------------------

/// Levels of the binary tree: the root has depth `TREE_DEPTH`, leaves depth 1.
const TREE_DEPTH: u32 = 16;
const TREE_TASKS: usize = (1 << TREE_DEPTH) - 1;
static TREE_COUNTER: AtomicUsize = AtomicUsize::new(0);

fn tree_visit() {
    black_box(TREE_COUNTER.fetch_add(1, Ordering::Relaxed));
}

fn check_tree() {
    assert_eq!(TREE_COUNTER.load(Ordering::Acquire), TREE_TASKS);
}

fn sp_scope_node<'scope, 'env>(s: &'scope stealpool::Scope<'scope, 'env>, depth: u32) {
    tree_visit();
    if depth > 1 {
        s.spawn(move || sp_scope_node(s, depth - 1));
        s.spawn(move || sp_scope_node(s, depth - 1));
    }
}

fn sp_submit_node(depth: u32) {
    tree_visit();
    if depth > 1 {
        let pool = Pool::current().expect("running on a stealpool worker");
        sp_submit(&pool, move || sp_submit_node(depth - 1));
        sp_submit(&pool, move || sp_submit_node(depth - 1));
    }
}

fn rayon_scope_node(s: &rayon::Scope<'_>, depth: u32) {
    tree_visit();
    if depth > 1 {
        s.spawn(move |s| rayon_scope_node(s, depth - 1));
        s.spawn(move |s| rayon_scope_node(s, depth - 1));
    }
}

fn rayon_spawn_node(depth: u32) {
    tree_visit();
    if depth > 1 {
        // Inside a worker, `rayon::spawn` targets the current pool.
        rayon::spawn(move || rayon_spawn_node(depth - 1));
        rayon::spawn(move || rayon_spawn_node(depth - 1));
    }
}

fn tokio_node(depth: u32) {
    tree_visit();
    if depth > 1 {
        drop(tokio::spawn(async move { tokio_node(depth - 1) }));
        drop(tokio::spawn(async move { tokio_node(depth - 1) }));
    }
}

fn threadpool_node(pool: threadpool::ThreadPool, depth: u32) {
    tree_visit();
    if depth > 1 {
        let p = pool.clone();
        pool.execute(move || threadpool_node(p, depth - 1));
        let p = pool.clone();
        pool.execute(move || threadpool_node(p, depth - 1));
    }
}

fn rusty_node(pool: rusty_pool::ThreadPool, depth: u32) {
    tree_visit();
    if depth > 1 {
        let p = pool.clone();
        pool.execute(move || rusty_node(p, depth - 1));
        let p = pool.clone();
        pool.execute(move || rusty_node(p, depth - 1));
    }
}

fn executors_node(pool: ExecPool, depth: u32) {
    tree_visit();
    if depth > 1 {
        let p = pool.clone();
        pool.execute(move || executors_node(p, depth - 1));
        let p = pool.clone();
        pool.execute(move || executors_node(p, depth - 1));
    }
}

fn bench_spawn_tree(c: &mut Criterion) {
    let n = threads();
    let mut group = c.benchmark_group("spawn_tree");
    configure(&mut group);
    group.throughput(Throughput::Elements(TREE_TASKS as u64));

    {
        let pool = build_stealpool(n);
        group.bench_function("stealpool_scope", |b| {
            b.iter(|| {
                TREE_COUNTER.store(0, Ordering::Relaxed);
                pool.scope(|s| {
                    s.spawn(move || sp_scope_node(s, TREE_DEPTH));
                });
                check_tree();
            })
        });
        group.bench_function("stealpool_submit", |b| {
            b.iter(|| {
                TREE_COUNTER.store(0, Ordering::Relaxed);
                sp_submit(&pool, || sp_submit_node(TREE_DEPTH));
                pool.wait_idle();
                check_tree();
            })
        });
    }
    {
        let pool = build_rayon(n);
        group.bench_function("rayon_scope", |b| {
            b.iter(|| {
                TREE_COUNTER.store(0, Ordering::Relaxed);
                pool.scope(|s| s.spawn(|s| rayon_scope_node(s, TREE_DEPTH)));
                check_tree();
            })
        });
        group.bench_function("rayon_spawn", |b| {
            b.iter(|| {
                TREE_COUNTER.store(0, Ordering::Relaxed);
                pool.spawn(|| rayon_spawn_node(TREE_DEPTH));
                wait_counter(&TREE_COUNTER, TREE_TASKS);
            })
        });
    }
    {
        let rt = build_tokio(n);
        group.bench_function("tokio", |b| {
            b.iter(|| {
                TREE_COUNTER.store(0, Ordering::Relaxed);
                drop(rt.spawn(async { tokio_node(TREE_DEPTH) }));
                wait_counter(&TREE_COUNTER, TREE_TASKS);
            })
        });
    }
    {
        let pool = build_threadpool(n);
        group.bench_function("threadpool", |b| {
            b.iter(|| {
                TREE_COUNTER.store(0, Ordering::Relaxed);
                let p = pool.clone();
                pool.execute(move || threadpool_node(p, TREE_DEPTH));
                wait_counter(&TREE_COUNTER, TREE_TASKS);
            })
        });
    }
    {
        let pool = build_rusty_pool(n);
        group.bench_function("rusty_pool", |b| {
            b.iter(|| {
                TREE_COUNTER.store(0, Ordering::Relaxed);
                let p = pool.clone();
                pool.execute(move || rusty_node(p, TREE_DEPTH));
                wait_counter(&TREE_COUNTER, TREE_TASKS);
            })
        });
    }
    {
        let pool = build_executors(n);
        group.bench_function("executors", |b| {
            b.iter(|| {
                TREE_COUNTER.store(0, Ordering::Relaxed);
                let p = pool.clone();
                pool.execute(move || executors_node(p, TREE_DEPTH));
                wait_counter(&TREE_COUNTER, TREE_TASKS);
            })
        });
        pool.shutdown().expect("shut down the executors pool");
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// (c) join_fib
// ---------------------------------------------------------------------------

const FIB_N: u32 = 25;
const FIB_CUTOFF: u32 = 12;
const FIB_25: u64 = 75_025;

fn seq_fib(n: u32) -> u64 {
    if n < 2 {
        u64::from(n)
    } else {
        seq_fib(n - 1) + seq_fib(n - 2)
    }
}

fn sp_fib(pool: &Pool, n: u32) -> u64 {
    if n < FIB_CUTOFF {
        return seq_fib(n);
    }
    let (a, b) = pool.join(|| sp_fib(pool, n - 1), || sp_fib(pool, n - 2));
    a + b
}

fn rayon_fib(n: u32) -> u64 {
    if n < FIB_CUTOFF {
        return seq_fib(n);
    }
    let (a, b) = rayon::join(|| rayon_fib(n - 1), || rayon_fib(n - 2));
    a + b
}

fn chili_fib(s: &mut chili::Scope<'_>, n: u32) -> u64 {
    if n < FIB_CUTOFF {
        return seq_fib(n);
    }
    let (a, b) = s.join(|s| chili_fib(s, n - 1), |s| chili_fib(s, n - 2));
    a + b
}

fn bench_join_fib(c: &mut Criterion) {
    let n = threads();
    let mut group = c.benchmark_group("join_fib");
    configure(&mut group);

    {
        let pool = build_stealpool(n);
        group.bench_function("stealpool", |b| {
            b.iter(|| {
                let r = sp_fib(&pool, black_box(FIB_N));
                assert_eq!(r, FIB_25);
                r
            })
        });
        group.bench_function("stealpool_install", |b| {
            b.iter(|| {
                let fib_n = black_box(FIB_N);
                let r = pool
                    .spawn(move || {
                        let inner = Pool::current().expect("running on a stealpool worker");
                        sp_fib(&inner, fib_n)
                    })
                    .expect("stealpool spawn")
                    .join()
                    .expect("fib task panicked");
                assert_eq!(r, FIB_25);
                r
            })
        });
    }
    {
        let pool = build_rayon(n);
        group.bench_function("rayon", |b| {
            b.iter(|| {
                let r = pool.install(|| rayon_fib(black_box(FIB_N)));
                assert_eq!(r, FIB_25);
                r
            })
        });
    }
    {
        let pool = build_chili(n);
        let mut scope = pool.scope();
        group.bench_function("chili", |b| {
            b.iter(|| {
                let r = chili_fib(&mut scope, black_box(FIB_N));
                assert_eq!(r, FIB_25);
                r
            })
        });
    }
    group.bench_function("sequential", |b| {
        b.iter(|| {
            let r = seq_fib(black_box(FIB_N));
            assert_eq!(r, FIB_25);
            r
        })
    });
    group.finish();
}

// ---------------------------------------------------------------------------
// join_fib27: fork-join at every level
// ---------------------------------------------------------------------------

/// `fib(27)` with a `join` at every level down to `n < 2`: about 320,000
/// joins of almost no work each, what a join itself costs.
const FIB_FINE_N: u32 = 27;
const FIB_27: u64 = 196_418;

fn sp_fib_fine(pool: &Pool, n: u32) -> u64 {
    if n < 2 {
        return u64::from(n);
    }
    let (a, b) = pool.join(|| sp_fib_fine(pool, n - 1), || sp_fib_fine(pool, n - 2));
    a + b
}

fn rayon_fib_fine(n: u32) -> u64 {
    if n < 2 {
        return u64::from(n);
    }
    let (a, b) = rayon::join(|| rayon_fib_fine(n - 1), || rayon_fib_fine(n - 2));
    a + b
}

fn chili_fib_fine(s: &mut chili::Scope<'_>, n: u32) -> u64 {
    if n < 2 {
        return u64::from(n);
    }
    let (a, b) = s.join(|s| chili_fib_fine(s, n - 1), |s| chili_fib_fine(s, n - 2));
    a + b
}

fn bench_join_fib_fine(c: &mut Criterion) {
    let n = threads();
    let mut group = c.benchmark_group("join_fib27");
    configure(&mut group);
    {
        let pool = build_stealpool(n);
        group.bench_function("stealpool", |b| {
            b.iter(|| assert_eq!(sp_fib_fine(&pool, black_box(FIB_FINE_N)), FIB_27))
        });
    }
    {
        let pool = build_rayon(n);
        group.bench_function("rayon", |b| {
            b.iter(|| assert_eq!(pool.install(|| rayon_fib_fine(black_box(FIB_FINE_N))), FIB_27))
        });
    }
    {
        let pool = build_chili(n);
        let mut scope = pool.scope();
        group.bench_function("chili", |b| {
            b.iter(|| assert_eq!(chili_fib_fine(&mut scope, black_box(FIB_FINE_N)), FIB_27))
        });
    }
    group.bench_function("sequential", |b| {
        b.iter(|| assert_eq!(seq_fib(black_box(FIB_FINE_N)), FIB_27))
    });
    group.finish();
}

// ---------------------------------------------------------------------------
// merge_sort_10m: a memory-bound fork-join
// ---------------------------------------------------------------------------

/// Elements sorted by `merge_sort_10m`.
const SORT_LEN: usize = 10_000_000;
/// Slices of at most this many elements are sorted sequentially.
const SORT_CUTOFF: usize = 4096;

/// Pseudo-random input (xorshift64*), the same every run.
fn sort_input(len: usize) -> Vec<u64> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        })
        .collect()
}

/// Panics unless `sorted` is in order and holds the same multiset as
/// `input` (checked by length, wrapping sum and xor).
fn check_sorted(input: &[u64], sorted: &[u64]) {
    assert_eq!(input.len(), sorted.len());
    assert!(
        sorted.windows(2).all(|w| w[0] <= w[1]),
        "merge sort output is not sorted"
    );
    let digest = |v: &[u64]| v.iter().fold((0u64, 0u64), |(s, x), &e| (s.wrapping_add(e), x ^ e));
    assert_eq!(digest(input), digest(sorted), "merge sort lost or changed elements");
}

/// Merges the sorted halves `v[..mid]` and `v[mid..]` through `buf` (the
/// same length as `v`) back into `v`.
fn merge_halves(v: &mut [u64], mid: usize, buf: &mut [u64]) {
    let (left, right) = v.split_at(mid);
    let (mut i, mut j) = (0, 0);
    for out in buf.iter_mut() {
        if j == right.len() || (i < left.len() && left[i] <= right[j]) {
            *out = left[i];
            i += 1;
        } else {
            *out = right[j];
            j += 1;
        }
    }
    v.copy_from_slice(buf);
}

// The same merge sort four times; only the line that forks differs.

fn seq_merge_sort(v: &mut [u64], buf: &mut [u64]) {
    if v.len() <= SORT_CUTOFF {
        return v.sort_unstable();
    }
    let mid = v.len() / 2;
    let ((vl, vr), (bl, br)) = (v.split_at_mut(mid), buf.split_at_mut(mid));
    seq_merge_sort(vl, bl);
    seq_merge_sort(vr, br);
    merge_halves(v, mid, buf);
}

fn sp_merge_sort(pool: &Pool, v: &mut [u64], buf: &mut [u64]) {
    if v.len() <= SORT_CUTOFF {
        return v.sort_unstable();
    }
    let mid = v.len() / 2;
    let ((vl, vr), (bl, br)) = (v.split_at_mut(mid), buf.split_at_mut(mid));
    pool.join(|| sp_merge_sort(pool, vl, bl), || sp_merge_sort(pool, vr, br));
    merge_halves(v, mid, buf);
}

fn rayon_merge_sort(v: &mut [u64], buf: &mut [u64]) {
    if v.len() <= SORT_CUTOFF {
        return v.sort_unstable();
    }
    let mid = v.len() / 2;
    let ((vl, vr), (bl, br)) = (v.split_at_mut(mid), buf.split_at_mut(mid));
    rayon::join(|| rayon_merge_sort(vl, bl), || rayon_merge_sort(vr, br));
    merge_halves(v, mid, buf);
}

fn chili_merge_sort(s: &mut chili::Scope<'_>, v: &mut [u64], buf: &mut [u64]) {
    if v.len() <= SORT_CUTOFF {
        return v.sort_unstable();
    }
    let mid = v.len() / 2;
    let ((vl, vr), (bl, br)) = (v.split_at_mut(mid), buf.split_at_mut(mid));
    s.join(|s| chili_merge_sort(s, vl, bl), |s| chili_merge_sort(s, vr, br));
    merge_halves(v, mid, buf);
}

/// Times `sort` on a fresh copy of the input per iteration; the copy and
/// the check are not timed.
fn sort_iter(b: &mut Bencher<'_>, input: &[u64], mut sort: impl FnMut(&mut [u64], &mut [u64])) {
    let mut data = vec![0u64; input.len()];
    let mut buf = vec![0u64; input.len()];
    b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            data.copy_from_slice(input);
            let t = Instant::now();
            sort(&mut data, &mut buf);
            total += t.elapsed();
            check_sorted(input, &data);
        }
        total
    });
}

fn bench_merge_sort(c: &mut Criterion) {
    let n = threads();
    let input = sort_input(SORT_LEN);
    let mut group = c.benchmark_group("merge_sort_10m");
    configure(&mut group);
    {
        let pool = build_stealpool(n);
        group.bench_function("stealpool", |b| {
            sort_iter(b, &input, |v, buf| sp_merge_sort(&pool, v, buf))
        });
    }
    {
        let pool = build_rayon(n);
        group.bench_function("rayon", |b| {
            sort_iter(b, &input, |v, buf| pool.install(|| rayon_merge_sort(v, buf)))
        });
    }
    {
        let pool = build_chili(n);
        let mut scope = pool.scope();
        group.bench_function("chili", |b| {
            sort_iter(b, &input, |v, buf| chili_merge_sort(&mut scope, v, buf))
        });
    }
    group.bench_function("sequential", |b| sort_iter(b, &input, seq_merge_sort));
    group.finish();
}

// ---------------------------------------------------------------------------
// two outside submitters
// ---------------------------------------------------------------------------

/// Submits `SUBMIT_TASKS` tiny tasks from two outside threads at once (half
/// each) with `submit`, then waits until all ran.
fn from_two_threads(counter: &'static AtomicUsize, submit: impl Fn() + Sync) {
    counter.store(0, Ordering::Relaxed);
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..SUBMIT_TASKS / 2 {
                    submit();
                }
            });
        }
    });
    wait_counter(counter, SUBMIT_TASKS);
}

fn bench_two_submitters(c: &mut Criterion) {
    let n = threads();
    let counter: &'static AtomicUsize = &SUBMIT_COUNTER;
    let mut group = c.benchmark_group("two_submitters");
    configure(&mut group);
    group.throughput(Throughput::Elements(SUBMIT_TASKS as u64));
    {
        let pool = build_stealpool(n);
        group.bench_function("stealpool", |b| {
            b.iter(|| from_two_threads(counter, || sp_submit(&pool, move || tiny(counter))))
        });
    }
    {
        let pool = build_rayon(n);
        group.bench_function("rayon", |b| {
            b.iter(|| from_two_threads(counter, || pool.spawn(move || tiny(counter))))
        });
    }
    {
        let rt = build_tokio(n);
        group.bench_function("tokio", |b| {
            b.iter(|| from_two_threads(counter, || drop(rt.spawn(async move { tiny(counter) }))))
        });
    }
    {
        let pool = build_threadpool(n);
        group.bench_function("threadpool", |b| {
            b.iter(|| from_two_threads(counter, || pool.execute(move || tiny(counter))))
        });
    }
    {
        let pool = build_rusty_pool(n);
        group.bench_function("rusty_pool", |b| {
            b.iter(|| from_two_threads(counter, || pool.execute(move || tiny(counter))))
        });
    }
    {
        let pool = build_executors(n);
        group.bench_function("executors", |b| {
            b.iter(|| from_two_threads(counter, || pool.execute(move || tiny(counter))))
        });
        pool.shutdown().expect("shut down the executors pool");
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// (d) latency
// ---------------------------------------------------------------------------

/// Idle time before each measurement, so that workers have parked.
const LAT_IDLE: Duration = Duration::from_millis(1);
/// Upper bound on real measurements per criterion sample (see module docs).
const LAT_MAX_REAL: u64 = 200;

/// Measures submit-to-start latency. `submit` must hand the sender to a new
/// task that sends `Instant::now()` as its first action.
fn latency_iter<S: FnMut(mpsc::Sender<Instant>)>(b: &mut Bencher<'_>, mut submit: S) {
    b.iter_custom(|iters| {
        let real = iters.clamp(1, LAT_MAX_REAL);
        let (tx, rx) = mpsc::channel::<Instant>();
        let mut total = Duration::ZERO;
        for _ in 0..real {
            thread::sleep(LAT_IDLE);
            let tx = tx.clone();
            let before = Instant::now();
            submit(tx);
            let started = rx.recv().expect("latency task did not run");
            total += started.saturating_duration_since(before);
        }
        // Scale the sampled sum to the iteration count criterion asked for.
        let nanos = total.as_nanos() * u128::from(iters) / u128::from(real);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    });
}

fn stamp(tx: mpsc::Sender<Instant>) {
    let now = Instant::now();
    let _ = tx.send(now);
}

fn bench_latency(c: &mut Criterion) {
    let n = threads();
    let mut group = c.benchmark_group("latency");
    configure(&mut group);

    {
        let pool = build_stealpool(n);
        group.bench_function("stealpool", |b| {
            latency_iter(b, |tx| sp_submit(&pool, move || stamp(tx)))
        });
    }
    {
        let pool = build_rayon(n);
        group.bench_function("rayon", |b| latency_iter(b, |tx| pool.spawn(move || stamp(tx))));
    }
    {
        let rt = build_tokio(n);
        group.bench_function("tokio", |b| {
            latency_iter(b, |tx| drop(rt.spawn(async move { stamp(tx) })))
        });
    }
    {
        let pool = build_threadpool(n);
        group.bench_function("threadpool", |b| latency_iter(b, |tx| pool.execute(move || stamp(tx))));
    }
    {
        let pool = build_rusty_pool(n);
        group.bench_function("rusty_pool", |b| latency_iter(b, |tx| pool.execute(move || stamp(tx))));
    }
    {
        let pool = build_executors(n);
        group.bench_function("executors", |b| latency_iter(b, |tx| pool.execute(move || stamp(tx))));
        pool.shutdown().expect("shut down the executors pool");
    }
    group.finish();
}

criterion_group!(
    peers,
    bench_submit_1m,
    bench_two_submitters,
    bench_spawn_tree,
    bench_join_fib,
    bench_join_fib_fine,
    bench_merge_sort,
    bench_latency
);

fn main() {
    if rounds::requested() {
        rounds::main();
        return;
    }
    peers();
    Criterion::default().configure_from_args().final_summary();
}
