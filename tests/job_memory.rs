//! What a queued job costs the allocator: small closures live in the job
//! itself, larger ones (up to 64 bytes) in blocks that the pool's threads
//! recycle, so work spawned inside the pool stops allocating once warm.

use std::sync::atomic::{AtomicU64, Ordering};

use stealpool::{Pool, Scope};

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{Counting, ALLOCATIONS};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A binary tree of scope spawns; each closure captures the scope, the
/// depth and a counter reference: three words, too big to live in the job
/// itself, so it takes a job block.
fn node<'scope>(s: &'scope Scope<'scope, '_>, depth: u32, visited: &'scope AtomicU64) {
    visited.fetch_add(1, Ordering::Relaxed);
    if depth > 1 {
        s.spawn(move || node(s, depth - 1, visited));
        s.spawn(move || node(s, depth - 1, visited));
    }
}

fn tree(pool: &Pool, depth: u32) -> u64 {
    let visited = AtomicU64::new(0);
    let visited_ref = &visited;
    pool.scope(|s| {
        s.spawn(move || node(s, depth, visited_ref));
    });
    visited.load(Ordering::Relaxed)
}

#[test]
fn spawns_inside_the_pool_recycle_their_job_blocks() {
    // Smaller under Miri (an interpreter).
    const DEPTH: u32 = if cfg!(miri) { 6 } else { 14 };
    let nodes = (1u64 << DEPTH) - 1;
    let pool = Pool::builder().capacity(2).pin_workers(false).build().expect("pool");
    // Warm up: threads, deques, the blocks each thread keeps.
    for _ in 0..3 {
        assert_eq!(tree(&pool, DEPTH), nodes);
    }
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    const ROUNDS: u64 = 5;
    for _ in 0..ROUNDS {
        assert_eq!(tree(&pool, DEPTH), nodes);
    }
    let allocations = ALLOCATIONS.load(Ordering::SeqCst) - before;
    let spawns = ROUNDS * nodes;
    println!(
        "{spawns} scope spawns of three-word closures: {allocations} allocations ({:.4}/spawn)",
        allocations as f64 / spawns as f64
    );
    // Each job block goes back to the cache of the thread that ran the job,
    // and spawns come from the pool's own threads, so blocks circulate.
    // What may still allocate: a thread whose cache ran dry while another's
    // overflowed (blocks drift from one thread to the other with steals), a
    // deque buffer growing. A box per spawn would be one allocation each;
    // the bound leaves room for drift and still says "not one per spawn".
    assert!(
        allocations * 10 < spawns as usize,
        "{allocations} allocations for {spawns} spawns: job blocks are not being reused"
    );
    pool.shutdown();
}

#[test]
fn blocks_of_jobs_run_on_other_threads_are_not_leaked() {
    // Submits from outside take blocks on this thread and free them on the
    // workers, whose caches fill and then hand blocks back to the
    // allocator: the count of live blocks stays bounded (valgrind in CI
    // checks the leak side; here every submitted closure must run and
    // drop its capture exactly once).
    let pool = Pool::builder().capacity(2).pin_workers(false).build().expect("pool");
    let runs = std::sync::Arc::new(AtomicU64::new(0));
    const TASKS: u64 = if cfg!(miri) { 300 } else { 10_000 };
    for n in 0..TASKS {
        let runs = runs.clone();
        let (a, b) = (n, n % 3);
        pool.submit(move || {
            std::hint::black_box(a + b);
            runs.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap_or_else(|_| panic!("open pool refused a task"));
    }
    pool.wait_idle();
    assert_eq!(runs.load(Ordering::Relaxed), TASKS);
    assert_eq!(std::sync::Arc::strong_count(&runs), 1, "a closure was not dropped");
    pool.shutdown();
}
