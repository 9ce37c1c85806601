//! Instruction counts of the hot paths, on one worker, for stealpool and
//! rayon side by side: an outside submit (rayon: `ThreadPool::spawn`), a
//! nested scope spawn, a `join`, and a `FuncPool::invoke` (rayon has none).
//! Counted by callgrind through gungraun, so the figures are the same on
//! every run of the same build: `.ci/icount` turns them into instructions
//! per operation and fails when a stealpool figure rises more than 5 %
//! above `benches/icount/icount-baseline.txt`.
//!
//! ```text
//! bash .ci/icount            # run and compare with the baseline
//! bash .ci/icount --bless    # run and write the baseline
//! cargo bench -p stealpool-icount --bench icount    # the raw totals (needs gungraun-runner)
//! ```
//!
//! Each benchmark runs in its own process and is counted whole, every thread
//! (`EntryPoint::None`): starting the pool, the work, shutting down. Each
//! runs twice, with a small and a large number of operations (the id says
//! how many: `ops_N`), and the figure per operation is the difference of
//! the two totals over the difference of the counts, so the fixed costs
//! (process, pool, the first wake, shutdown) cancel out.
//!
//! What keeps the counts repeatable with threads: one worker, and nothing
//! that depends on timing inside the counted difference. Outside submits
//! and invokes queue behind a first task that holds the worker (the
//! submitter waits until it does), so the submitting thread never races a
//! worker that starts, wakes, runs and parks; once everything is queued the
//! worker is let go and runs the lot without sleeping, the last task
//! opening the gate the caller waits on. Nested spawns and joins run inside
//! the pool (`install`), where the one worker does everything while the
//! caller blocks.

// gungraun's `library_benchmark` expands to std items newer than stealpool's
// MSRV, which the bench crate shares for its lints; this benchmark only runs
// on a current toolchain (gungraun's own MSRV is higher anyway).
#![allow(clippy::incompatible_msrv)]

use std::hint::black_box;
use std::sync::{Arc, Condvar, Mutex};

use gungraun::{library_benchmark, library_benchmark_group, main, Callgrind, EntryPoint, LibraryBenchmarkConfig};

/// A one-shot gate: `wait` blocks until `open`.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

/// Holds the one worker in a task: `hold` runs on the worker, the caller
/// waits in `until_held` until it does (so no submit races the worker's
/// start or its first wake), and `release` lets it go.
#[derive(Default)]
struct Hold {
    held: Gate,
    released: Gate,
}

impl Hold {
    fn hold(&self) {
        self.held.open();
        self.released.wait();
    }

    fn until_held(&self) {
        self.held.wait();
    }

    fn release(&self) {
        self.released.open();
    }
}

fn stealpool_one_worker() -> stealpool::Pool {
    stealpool::Pool::builder().capacity(1).build().expect("pool")
}

fn rayon_one_worker() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("pool")
}

// ---------------------------------------------------------------------------
// Outside submit: one empty task from a thread outside the pool.
// ---------------------------------------------------------------------------

#[library_benchmark]
#[bench::ops_1000(1000)]
#[bench::ops_11000(11000)]
fn stealpool_submit(ops: usize) {
    let pool = stealpool_one_worker();
    let hold = Arc::new(Hold::default());
    let held = hold.clone();
    pool.submit(move || held.hold()).expect("open pool");
    hold.until_held();
    for _ in 0..ops {
        pool.submit(|| black_box(())).expect("open pool");
    }
    // One worker takes outside tasks in order: this one runs after the rest.
    // (Not `wait_idle`: it wakes every 100 ms to check for a failed thread
    // start, which under callgrind adds a count that depends on time.)
    let done = Arc::new(Gate::default());
    let last = done.clone();
    pool.submit(move || last.open()).expect("open pool");
    hold.release();
    done.wait();
    pool.shutdown();
}

#[library_benchmark]
#[bench::ops_1000(1000)]
#[bench::ops_11000(11000)]
fn rayon_submit(ops: usize) {
    let pool = rayon_one_worker();
    let hold = Arc::new(Hold::default());
    let held = hold.clone();
    pool.spawn(move || held.hold());
    hold.until_held();
    for _ in 0..ops {
        pool.spawn(|| black_box(()));
    }
    hold.release();
    // One worker takes outside jobs in order: this one runs after the rest.
    pool.install(|| ());
    drop(pool);
}

// ---------------------------------------------------------------------------
// Nested spawn: a binary tree of scope spawns, each node spawning two.
// ---------------------------------------------------------------------------

fn stealpool_node<'scope>(s: &'scope stealpool::Scope<'scope, '_>, depth: u32) {
    if depth > 0 {
        s.spawn(move || stealpool_node(s, depth - 1));
        s.spawn(move || stealpool_node(s, depth - 1));
    }
}

fn rayon_node<'scope>(s: &rayon::Scope<'scope>, depth: u32) {
    if depth > 0 {
        s.spawn(move |s| rayon_node(s, depth - 1));
        s.spawn(move |s| rayon_node(s, depth - 1));
    }
}

// Depth 9 spawns 2^10 - 2 = 1022 closures, depth 13 16382.
#[library_benchmark]
#[bench::ops_1022(9)]
#[bench::ops_16382(13)]
fn stealpool_scope_spawn(depth: u32) {
    let pool = stealpool_one_worker();
    pool.install(|| pool.scope(|s| stealpool_node(s, depth)));
    pool.shutdown();
}

#[library_benchmark]
#[bench::ops_1022(9)]
#[bench::ops_16382(13)]
fn rayon_scope_spawn(depth: u32) {
    let pool = rayon_one_worker();
    pool.install(|| rayon::scope(|s| rayon_node(s, depth)));
    drop(pool);
}

// ---------------------------------------------------------------------------
// join: a binary tree of joins.
// ---------------------------------------------------------------------------

fn stealpool_join_tree(depth: u32) {
    if depth > 0 {
        stealpool::join(|| stealpool_join_tree(depth - 1), || stealpool_join_tree(depth - 1));
    }
}

fn rayon_join_tree(depth: u32) {
    if depth > 0 {
        rayon::join(|| rayon_join_tree(depth - 1), || rayon_join_tree(depth - 1));
    }
}

// Depth 10 makes 2^10 - 1 = 1023 joins, depth 14 16383.
#[library_benchmark]
#[bench::ops_1023(10)]
#[bench::ops_16383(14)]
fn stealpool_join(depth: u32) {
    let pool = stealpool_one_worker();
    pool.install(|| stealpool_join_tree(depth));
    pool.shutdown();
}

#[library_benchmark]
#[bench::ops_1023(10)]
#[bench::ops_16383(14)]
fn rayon_join(depth: u32) {
    let pool = rayon_one_worker();
    pool.install(|| rayon_join_tree(depth));
    drop(pool);
}

// ---------------------------------------------------------------------------
// FuncPool::invoke from outside (no rayon counterpart).
// ---------------------------------------------------------------------------

/// The argument that holds the worker.
const HOLD: u64 = u64::MAX;
/// The argument that says every other one has run.
const DONE: u64 = u64::MAX - 1;

#[library_benchmark]
#[bench::ops_1000(1000)]
#[bench::ops_11000(11000)]
fn stealpool_invoke(ops: u64) {
    let hold = Arc::new(Hold::default());
    let done = Arc::new(Gate::default());
    let (held, last) = (hold.clone(), done.clone());
    let pool = stealpool::FuncPool::builder()
        .capacity(1)
        .build(move |n: u64| {
            if n == HOLD {
                held.hold();
            } else if n == DONE {
                last.open();
            } else {
                black_box(n);
            }
        })
        .expect("pool");
    pool.invoke(HOLD).expect("open pool");
    hold.until_held();
    for n in 0..ops {
        pool.invoke(n).expect("open pool");
    }
    // As in `stealpool_submit`: the last one in runs last.
    pool.invoke(DONE).expect("open pool");
    hold.release();
    done.wait();
    pool.shutdown();
}

library_benchmark_group!(
    name = one_worker,
    benchmarks = [
        stealpool_submit,
        rayon_submit,
        stealpool_scope_spawn,
        rayon_scope_spawn,
        stealpool_join,
        rayon_join,
        stealpool_invoke
    ]
);

main!(
    config = LibraryBenchmarkConfig::default().tool(Callgrind::default().entry_point(EntryPoint::None));
    library_benchmark_groups = one_worker
);
