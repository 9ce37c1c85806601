//! A tokio service that offloads CPU work to stealpool, with a deadline per
//! request and cancellation of work that can no longer be answered in time.
//!
//! Requests arrive faster than the pool can serve them (an overload). Each
//! handler spawns its CPU work with `spawn_async` (which waits for room
//! without blocking a tokio thread), then waits for the result until the
//! request's deadline with `tokio::time::timeout_at(deadline, &mut handle)`.
//! When the deadline passes first, `handle.cancel()` withdraws the work if
//! it has not started, so the pool spends no CPU on an answer nobody
//! waits for; work already running finishes and its result is discarded.
//!
//! Run it with `cargo run --release --example offload` (options:
//! `--requests N`, `--work ROUNDS`, `--deadline-ms MS`, `--gap-us US`).

use std::sync::Arc;
use std::time::Duration;

use stealpool::Pool;
use tokio::time::Instant;

/// What became of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The result came back before the deadline.
    InTime,
    /// The deadline passed before the work started: cancelled, never ran.
    Cancelled,
    /// The deadline passed while the work ran: it finished, unanswered.
    Late,
    /// The pool refused the work (shut down).
    Refused,
}

struct Options {
    requests: usize,
    work: u32,
    deadline: Duration,
    gap: Duration,
}

fn parse_args() -> Options {
    let mut options = Options {
        requests: 2_000,
        work: 200_000,
        deadline: Duration::from_millis(20),
        gap: Duration::from_micros(200),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{arg} needs a number"))
        };
        match arg.as_str() {
            "--requests" => options.requests = value() as usize,
            "--work" => options.work = value() as u32,
            "--deadline-ms" => options.deadline = Duration::from_millis(value()),
            "--gap-us" => options.gap = Duration::from_micros(value()),
            other => panic!("unknown option {other}"),
        }
    }
    options
}

/// The CPU work of one request: `rounds` steps of a xorshift generator.
fn work(seed: u64, rounds: u32) -> u64 {
    let mut x = seed | 1;
    for _ in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

/// One request: offload the work, wait for it until the deadline.
async fn handle_request(pool: Arc<Pool>, seed: u64, rounds: u32, deadline: Instant) -> Outcome {
    let mut handle = match pool.spawn_async(move || work(seed, rounds)).await {
        Ok(handle) => handle,
        Err(_refused) => return Outcome::Refused,
    };
    // `&mut handle`: on timeout the handle is still ours, to cancel.
    match tokio::time::timeout_at(deadline, &mut handle).await {
        Ok(Ok(_answer)) => Outcome::InTime,
        Ok(Err(error)) => panic!("the work failed: {error}"),
        Err(_elapsed) => {
            if handle.cancel() {
                Outcome::Cancelled
            } else {
                Outcome::Late
            }
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = parse_args();
    // Two tokio threads for the I/O side, two pool workers for the CPU side.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()?;
    let pool = Arc::new(Pool::builder().capacity(2).build()?);

    let outcomes = runtime.block_on(async {
        let mut requests = Vec::with_capacity(options.requests);
        for seed in 0..options.requests as u64 {
            let deadline = Instant::now() + options.deadline;
            requests.push(tokio::spawn(handle_request(pool.clone(), seed, options.work, deadline)));
            tokio::time::sleep(options.gap).await;
        }
        let mut outcomes = Vec::with_capacity(requests.len());
        for request in requests {
            outcomes.push(request.await.expect("a request handler panicked"));
        }
        outcomes
    });

    let count = |wanted: Outcome| outcomes.iter().filter(|&&o| o == wanted).count();
    let (in_time, cancelled, late, refused) = (
        count(Outcome::InTime),
        count(Outcome::Cancelled),
        count(Outcome::Late),
        count(Outcome::Refused),
    );
    pool.wait_idle();
    let stats = pool.stats();
    println!(
        "answered in time: {in_time}/{}, cancelled before they started: {cancelled}, \
         finished too late: {late}, refused: {refused}",
        outcomes.len()
    );
    println!(
        "pool: completed {}, cancelled {} (no CPU spent on them)",
        stats.completed, stats.cancelled
    );
    // Every request is counted once, and the pool agrees: what was
    // cancelled never ran, everything else ran exactly once.
    assert_eq!(in_time + cancelled + late + refused, options.requests);
    assert_eq!(stats.cancelled, cancelled as u64);
    assert_eq!(stats.completed, (in_time + late) as u64);
    pool.shutdown();
    Ok(())
}
