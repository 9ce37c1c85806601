//! `FuncPool::invoke` against `Pool::submit`: what a recycled argument slot
//! saves over a boxed closure.
//!
//! Run with
//!
//! ```text
//! cargo bench -p stealpool-benches --bench func_pool                 # full run (under a minute on 2 cores)
//! cargo bench -p stealpool-benches --bench func_pool -- --test       # smoke test: every benchmark once
//! cargo bench -p stealpool-benches --bench func_pool -- invoke_vs    # one group only (criterion filter)
//! ```
//!
//! Every pool is built once per group, outside the timing loop, with
//! `capacity(2)` and `pin_workers(false)` (other settings default: no queue
//! limit, threads started on demand and kept). Groups use `sample_size(10)`,
//! `warm_up_time(1 s)`, `measurement_time(3 s)`, flat sampling.
//!
//! # Groups
//!
//! * **`invoke_vs_submit`**: from the bench thread (outside the pool),
//!   `JOBS` small jobs, job `i` adding `i` (a `u64`) to a counter, then
//!   `wait_idle`; every iteration checks that every job ran.
//!   - `invoke`: `FuncPool<u64>` whose function adds its argument to an
//!     `Arc<AtomicU64>` it captured once (`fetch_add`, Relaxed); the queued
//!     job carries the `u64` itself (arguments wider than a word take a
//!     recycled slot), no allocation per job.
//!   - `submit_arc`: `Pool::submit` of a closure capturing the `u64` and a
//!     clone of an `Arc<AtomicU64>` (two words: stored in the queued job
//!     itself, no allocation), plus the `Arc`'s reference count going up on
//!     the bench thread and down on a worker (on the same cache line as the
//!     counter).
//!   - `submit_static`: `Pool::submit` of a closure capturing the `u64` and a
//!     `&'static AtomicU64`: also two words, inline, without the reference
//!     count traffic. This is the like-for-like comparison with `invoke`
//!     (same 16-byte payload, same one shared atomic per job). (Before
//!     closures of two words were stored inline, both submits boxed each
//!     closure; `invoke` was then 1.4–1.5× faster.)
//!   - `submit_boxed`: as `submit_static` with a third captured word (a
//!     `black_box`ed zero added to the argument): the closure no longer fits
//!     in the queued job and is boxed, one allocation per task — what every
//!     `submit` of a closure bigger than two words pays, and what `invoke`
//!     saves.
//!   - `invoke_state`: `FuncPool<u64>` built with `build_with_state`, whose
//!     per-worker state is a plain `u64` accumulator: no shared atomic per
//!     job. The states flush into a shared total when their threads exit;
//!     the group checks that total after shutting the pool down, and each
//!     iteration checks `stats().completed`.
//!
//!   Throughput is `Elements(JOBS)`: criterion's `thrpt` line gives jobs/s,
//!   and time per iteration / `JOBS` is ns/job.
//!
//! * **`invoke_latency`**: invoke-to-start latency on an idle pool. Before each
//!   measurement the bench thread sleeps 1 ms so the workers have gone idle /
//!   parked; then it takes `Instant::now()`, invokes (or submits) one job
//!   whose first action is to send its own `Instant::now()` back over a
//!   `std::sync::mpsc` channel, and blocks in `recv`. Each criterion sample
//!   runs at most `LAT_MAX_REAL` real measurements and reports their
//!   **median** (p50), scaled to the iteration count criterion asked for.
//!   - `invoke`: `FuncPool<mpsc::Sender<Instant>>`,
//!   - `submit`: `Pool::submit` of a closure capturing the sender.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, Bencher, BenchmarkGroup, Criterion, SamplingMode, Throughput};
use stealpool::{FuncPool, Pool, SubmitError};

// ---------------------------------------------------------------------------
// Shared set-up
// ---------------------------------------------------------------------------

const CAPACITY: usize = 2;

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sampling_mode(SamplingMode::Flat);
}

fn build_pool() -> Pool {
    Pool::builder()
        .capacity(CAPACITY)
        .pin_workers(false)
        .build()
        .expect("build stealpool::Pool")
}

/// Retries a refused job (with a yield) while the pool reports `Full`.
#[inline]
fn retry_full<T>(mut value: T, mut send: impl FnMut(T) -> Result<(), SubmitError<T>>) {
    loop {
        match send(value) {
            Ok(()) => return,
            Err(e) if e.is_full() => {
                value = e.into_inner();
                thread::yield_now();
            }
            Err(e) => panic!("stealpool refused a job: {e}"),
        }
    }
}

fn submit<F: FnOnce() + Send + 'static>(pool: &Pool, task: F) {
    retry_full(task, |task| pool.submit(task));
}

fn invoke<A: Send + 'static>(fp: &FuncPool<A>, arg: A) {
    retry_full(arg, |arg| fp.invoke(arg));
}

// ---------------------------------------------------------------------------
// (a) invoke_vs_submit
// ---------------------------------------------------------------------------

const JOBS: u64 = 1_000_000;
/// What one iteration adds up: `0 + 1 + ... + (JOBS - 1)`.
const JOBS_SUM: u64 = JOBS * (JOBS - 1) / 2;

/// The counter of `submit_static` (a `&'static`, so the closure needs no
/// reference count).
static STATIC_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The job body shared by `invoke`, `submit_arc` and `submit_static`.
#[inline]
fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// `invoke_state`'s per-worker state: a local sum, flushed into `total`
/// when the worker's thread exits (drops its state).
struct Accumulator {
    sum: u64,
    total: Arc<AtomicU64>,
}

impl Drop for Accumulator {
    fn drop(&mut self) {
        self.total.fetch_add(self.sum, Ordering::Relaxed);
    }
}

fn bench_invoke_vs_submit(c: &mut Criterion) {
    let mut group = c.benchmark_group("invoke_vs_submit");
    configure(&mut group);
    group.throughput(Throughput::Elements(JOBS));

    {
        let counter = Arc::new(AtomicU64::new(0));
        let in_func = counter.clone();
        let fp = FuncPool::builder()
            .capacity(CAPACITY)
            .pin_workers(false)
            .build(move |n: u64| add(&in_func, n))
            .expect("build stealpool::FuncPool");
        group.bench_function("invoke", |b| {
            b.iter(|| {
                counter.store(0, Ordering::Relaxed);
                for n in 0..JOBS {
                    invoke(&fp, black_box(n));
                }
                fp.wait_idle();
                assert_eq!(counter.load(Ordering::Relaxed), JOBS_SUM);
            })
        });
        fp.shutdown();
    }
    {
        let pool = build_pool();
        let counter = Arc::new(AtomicU64::new(0));
        group.bench_function("submit_arc", |b| {
            b.iter(|| {
                counter.store(0, Ordering::Relaxed);
                for n in 0..JOBS {
                    let n = black_box(n);
                    let counter = counter.clone();
                    submit(&pool, move || add(&counter, n));
                }
                pool.wait_idle();
                assert_eq!(counter.load(Ordering::Relaxed), JOBS_SUM);
            })
        });
        let counter: &'static AtomicU64 = &STATIC_COUNTER;
        group.bench_function("submit_static", |b| {
            b.iter(|| {
                counter.store(0, Ordering::Relaxed);
                for n in 0..JOBS {
                    let n = black_box(n);
                    submit(&pool, move || add(counter, n));
                }
                pool.wait_idle();
                assert_eq!(counter.load(Ordering::Relaxed), JOBS_SUM);
            })
        });
        group.bench_function("submit_boxed", |b| {
            b.iter(|| {
                counter.store(0, Ordering::Relaxed);
                for n in 0..JOBS {
                    let n = black_box(n);
                    // A third captured word: too big to store inline.
                    let zero = black_box(0u64);
                    submit(&pool, move || add(counter, n + zero));
                }
                pool.wait_idle();
                assert_eq!(counter.load(Ordering::Relaxed), JOBS_SUM);
            })
        });
        pool.shutdown();
    }
    {
        let total = Arc::new(AtomicU64::new(0));
        let in_factory = total.clone();
        let fp = FuncPool::builder()
            .capacity(CAPACITY)
            .pin_workers(false)
            .build_with_state(
                move || Accumulator {
                    sum: 0,
                    total: in_factory.clone(),
                },
                |acc: &mut Accumulator, n: u64| acc.sum = acc.sum.wrapping_add(n),
            )
            .expect("build stealpool::FuncPool with state");
        let mut iterations = 0u64;
        group.bench_function("invoke_state", |b| {
            b.iter(|| {
                let before = fp.stats().completed;
                for n in 0..JOBS {
                    invoke(&fp, black_box(n));
                }
                fp.wait_idle();
                assert_eq!(fp.stats().completed - before, JOBS);
                iterations += 1;
            })
        });
        // Threads exit, states drop and flush their sums.
        fp.shutdown();
        assert_eq!(total.load(Ordering::Relaxed), JOBS_SUM.wrapping_mul(iterations));
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// (b) invoke_latency
// ---------------------------------------------------------------------------

/// Idle time before each measurement, so that workers have parked.
const LAT_IDLE: Duration = Duration::from_millis(1);
/// Upper bound on real measurements per criterion sample.
const LAT_MAX_REAL: u64 = 100;

/// Measures invoke-to-start latency: `send` must hand the sender to a job
/// that sends `Instant::now()` as its first action. Each sample reports the
/// median of its real measurements, scaled to `iters`.
fn latency_p50<S: FnMut(mpsc::Sender<Instant>)>(b: &mut Bencher<'_>, mut send: S) {
    b.iter_custom(|iters| {
        let real = iters.clamp(1, LAT_MAX_REAL);
        let (tx, rx) = mpsc::channel::<Instant>();
        let mut samples: Vec<Duration> = (0..real)
            .map(|_| {
                thread::sleep(LAT_IDLE);
                let tx = tx.clone();
                let before = Instant::now();
                send(tx);
                let started = rx.recv().expect("latency job did not run");
                started.saturating_duration_since(before)
            })
            .collect();
        samples.sort_unstable();
        let p50 = samples[samples.len() / 2];
        let nanos = p50.as_nanos() * u128::from(iters);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    });
}

fn stamp(tx: mpsc::Sender<Instant>) {
    let now = Instant::now();
    let _ = tx.send(now);
}

fn bench_invoke_latency(c: &mut Criterion) {
    let mut group = c.benchmark_group("invoke_latency");
    configure(&mut group);

    {
        let fp = FuncPool::builder()
            .capacity(CAPACITY)
            .pin_workers(false)
            .build(stamp)
            .expect("build stealpool::FuncPool");
        group.bench_function("invoke", |b| latency_p50(b, |tx| invoke(&fp, tx)));
        fp.shutdown();
    }
    {
        let pool = build_pool();
        group.bench_function("submit", |b| latency_p50(b, |tx| submit(&pool, move || stamp(tx))));
        pool.shutdown();
    }
    group.finish();
}

criterion_group!(func_pool, bench_invoke_vs_submit, bench_invoke_latency);
criterion_main!(func_pool);
