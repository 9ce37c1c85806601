//! `MultiPool` against one `Pool` of the same total capacity, with several
//! outside threads submitting at once.
//!
//! Run with
//!
//! ```text
//! cargo bench -p stealpool-benches --bench multi_pool                 # full run (about 20 s)
//! cargo bench -p stealpool-benches --bench multi_pool -- --test       # smoke test: every benchmark once
//! cargo bench -p stealpool-benches --bench multi_pool -- least        # one benchmark only (criterion filter)
//! ```
//!
//! # Group `outside_submitters`
//!
//! `SUBMITTERS` (2) outside threads each submit `TASKS_PER_SUBMITTER`
//! (200,000) small tasks (a 64-step LCG on the task's index, its result
//! through `black_box`: no shared state per task), then the bench thread
//! calls `wait_idle`. One iteration is all of that: from spawning the
//! submitters (`std::thread::scope`, two thread starts: microseconds against
//! the tens of milliseconds of an iteration) until `wait_idle` returns. Each
//! iteration checks that `stats().completed` went up by every task.
//!
//! * `pool_2`: one `Pool`, capacity 2.
//! * `multi_2x1_round_robin`: `MultiPool`, 2 sub-pools of capacity 1,
//!   `LoadBalancing::RoundRobin` (one shared relaxed counter per submit).
//! * `multi_2x1_least_tasks`: the same with `LoadBalancing::LeastTasks` (a
//!   load per sub-pool read on each submit; the chosen one counted up before
//!   the submit and down when the task finishes).
//! * `..._isolated`: the same two with `steal_across(false)` (the default
//!   lets an idle sub-pool's worker take the other's tasks, and a submit to
//!   a saturated sub-pool look for a sleeping worker of the other).
//!
//! Every pool is built once, outside the timing, `pin_workers(false)`, no
//! queue limit, threads started on demand and kept. `sample_size(10)`,
//! `warm_up_time(1 s)`, `measurement_time(3 s)`, flat sampling.
//!
//! What the sharding can save: one pool's outside submits all push onto one
//! injector and do one RMW each on one lifecycle word; with sub-pools the
//! two submitters mostly meet on different ones. What it costs: the choice of
//! sub-pool, and (isolated) a worker cannot steal from another sub-pool's queue.

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, Bencher, BenchmarkGroup, Criterion, SamplingMode, Throughput};
use stealpool::{LoadBalancing, MultiPool, Pool, Stats, SubmitError};

const SUBMITTERS: usize = 2;
const TASKS_PER_SUBMITTER: u64 = 200_000;
const TOTAL_CAPACITY: usize = 2;

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(SUBMITTERS as u64 * TASKS_PER_SUBMITTER));
}

/// The task body: a few nanoseconds of arithmetic, nothing shared.
#[inline]
fn small_work(seed: u64) {
    let mut x = seed;
    for _ in 0..64 {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
    }
    black_box(x);
}

/// What a benchmark needs of a pool: submit from any thread, wait, count.
trait Target: Sync {
    fn submit_task<F: FnOnce() + Send + 'static>(&self, task: F) -> Result<(), SubmitError<F>>;
    fn wait_idle(&self);
    fn stats(&self) -> Stats;
}

impl Target for Pool {
    fn submit_task<F: FnOnce() + Send + 'static>(&self, task: F) -> Result<(), SubmitError<F>> {
        self.submit(task)
    }
    fn wait_idle(&self) {
        Pool::wait_idle(self);
    }
    fn stats(&self) -> Stats {
        Pool::stats(self)
    }
}

impl Target for MultiPool {
    fn submit_task<F: FnOnce() + Send + 'static>(&self, task: F) -> Result<(), SubmitError<F>> {
        self.submit(task)
    }
    fn wait_idle(&self) {
        MultiPool::wait_idle(self);
    }
    fn stats(&self) -> Stats {
        MultiPool::stats(self)
    }
}

fn outside_submitters<T: Target>(b: &mut Bencher<'_>, target: &T) {
    b.iter_custom(|iters| {
        let mut elapsed = Duration::ZERO;
        for _ in 0..iters {
            let before = target.stats().completed;
            let start = Instant::now();
            thread::scope(|scope| {
                for submitter in 0..SUBMITTERS as u64 {
                    scope.spawn(move || {
                        let base = submitter * TASKS_PER_SUBMITTER;
                        for i in base..base + TASKS_PER_SUBMITTER {
                            if let Err(error) = target.submit_task(move || small_work(i)) {
                                panic!("refused: {error}");
                            }
                        }
                    });
                }
            });
            target.wait_idle();
            elapsed += start.elapsed();
            let ran = target.stats().completed - before;
            assert_eq!(ran, SUBMITTERS as u64 * TASKS_PER_SUBMITTER, "tasks lost");
        }
        elapsed
    });
}

fn multi(strategy: LoadBalancing, steal_across: bool) -> MultiPool {
    MultiPool::builder()
        .steal_across(steal_across)
        .pools(2)
        .capacity_per_pool(TOTAL_CAPACITY / 2)
        .strategy(strategy)
        .build()
        .expect("build MultiPool")
}

fn bench_outside_submitters(c: &mut Criterion) {
    let mut group = c.benchmark_group("outside_submitters");
    configure(&mut group);
    {
        let pool = Pool::builder()
            .capacity(TOTAL_CAPACITY)
            .pin_workers(false)
            .build()
            .expect("build Pool");
        group.bench_function("pool_2", |b| outside_submitters(b, &pool));
        pool.shutdown();
    }
    for (name, strategy, steal_across) in [
        ("multi_2x1_round_robin", LoadBalancing::RoundRobin, true),
        ("multi_2x1_least_tasks", LoadBalancing::LeastTasks, true),
        ("multi_2x1_round_robin_isolated", LoadBalancing::RoundRobin, false),
        ("multi_2x1_least_tasks_isolated", LoadBalancing::LeastTasks, false),
    ] {
        let mp = multi(strategy, steal_across);
        group.bench_function(name, |b| outside_submitters(b, &mp));
        mp.shutdown();
    }
    group.finish();
}

criterion_group!(multi_pool, bench_outside_submitters);
criterion_main!(multi_pool);
