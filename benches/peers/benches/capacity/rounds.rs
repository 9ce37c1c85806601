//! The grow latency and the churn ratio as interleaved rounds, with
//! percentiles, outside criterion.
//!
//! ```text
//! cargo bench -p stealpool-benches --bench capacity -- --rounds 5                  # both figures
//! cargo bench -p stealpool-benches --bench capacity -- --rounds 9 --only grow      # or churn
//! cargo bench -p stealpool-benches --bench capacity -- --rounds 5 --pinning off    # adaptive (default), strict, off
//! ```
//!
//! * **grow**: per round and placement, a fresh `prealloc` pool of capacity
//!   2 (the given pinning), [`GROWS`] times `tune(1)`, wait until worker 1
//!   is suspended, then `grow_once` (worker 0 blocked, one task queued,
//!   `tune(2)` until that task starts). The tuning thread is placed on
//!   purpose, because where it runs decides the figure: on a VM, waking a
//!   pinned worker whose home core is idle (a halted virtual CPU) costs tens
//!   of microseconds more than waking it on the waker's own core, which the
//!   worker gets as soon as the waker blocks. Placements, in rotated order:
//!   - `other core`: the tuning thread pinned to a core of the pool other
//!     than worker 1's home (a tuner anywhere else: the common case),
//!   - `same core`: pinned to worker 1's home core (the best case),
//!   - `unplaced`: wherever the OS puts it (what criterion's
//!     `thread_suspended` measures); the line says on how many grows it sat
//!     on worker 1's home core.
//!
//!   With `--pinning off` workers have no home, so only `unplaced` runs.
//! * **churn**: one pool of capacity `max(2, cores)`; per round [`PAIR`]
//!   steady rounds and [`PAIR`] rounds under churn (100,000 small tasks
//!   each, as the criterion group), the order alternating by round, so that
//!   the machine's other load falls on both alike. Prints the median of the
//!   per-round ratios churn / steady.
//!
//! At the end: the medians over the rounds.

use std::time::{Duration, Instant};
use std::{env, thread};

use core_affinity::CoreId;
use stealpool::{Pinning, Pool, WorkerState};

use super::{grow_once_on, report_churn, stealpool_round, threads, wait_for, Churner, GrowSamples};

/// Grows per round and placement.
const GROWS: usize = 200;
/// Steady rounds and churn rounds per round of the churn figure.
const PAIR: usize = 5;

/// Whether the command line asks for this driver rather than criterion.
pub fn requested() -> bool {
    env::args().any(|arg| arg == "--rounds")
}

struct Args {
    rounds: usize,
    grow: bool,
    churn: bool,
    pinning: Pinning,
}

fn parse_args() -> Args {
    let args: Vec<String> = env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|arg| arg == flag)
            .and_then(|at| args.get(at + 1))
            .cloned()
    };
    let rounds = value("--rounds").and_then(|v| v.parse().ok()).unwrap_or(5);
    let only = value("--only");
    let pinning = match value("--pinning").as_deref() {
        None | Some("adaptive") => Pinning::Adaptive,
        Some("strict") => Pinning::Strict,
        Some("off") => Pinning::Off,
        Some(other) => panic!("--pinning {other}: expected adaptive, strict or off"),
    };
    Args {
        rounds,
        grow: only.as_deref().map_or(true, |o| o == "grow"),
        churn: only.as_deref().map_or(true, |o| o == "churn"),
        pinning,
    }
}

/// Where the tuning thread runs during a grow figure.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Placement {
    OtherCore,
    SameCore,
    Unplaced,
}

impl Placement {
    fn name(self) -> &'static str {
        match self {
            Placement::OtherCore => "other core",
            Placement::SameCore => "same core",
            Placement::Unplaced => "unplaced",
        }
    }
}

pub fn main() {
    let args = parse_args();
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    println!(
        "capacity rounds: {} rounds, pinning {:?}, {} cores; grow = {GROWS} grows per placement, \
         churn = {PAIR} steady + {PAIR} churn rounds of 100,000 tasks per round",
        args.rounds,
        args.pinning,
        cores.len()
    );
    let placements: Vec<Placement> = if args.pinning == Pinning::Off || cores.len() < 2 {
        vec![Placement::Unplaced]
    } else {
        vec![Placement::OtherCore, Placement::SameCore, Placement::Unplaced]
    };
    let mut grow: Vec<(Placement, Vec<(f64, f64)>)> = placements.iter().map(|&p| (p, Vec::new())).collect();
    let mut on_home = (0, 0);
    let mut ratios = Vec::new();
    for round in 0..args.rounds {
        if args.grow {
            for k in 0..placements.len() {
                let placement = placements[(round + k) % placements.len()];
                let samples = grow_figure(args.pinning, placement, &cores);
                println!("round {round} grow {:<10}: {}", placement.name(), samples.summary());
                if placement == Placement::Unplaced && samples.placed > 0 {
                    println!(
                        "  the tuning thread sat on worker 1's home core in {} of {} grows",
                        samples.on_home, samples.placed
                    );
                    on_home.0 += samples.on_home;
                    on_home.1 += samples.placed;
                }
                let figures = &mut grow.iter_mut().find(|(p, _)| *p == placement).expect("listed").1;
                figures.push((samples.p(0.5), samples.p(0.99)));
            }
        }
        if args.churn {
            let (steady, churn) = churn_figure(args.pinning, round % 2 == 1);
            println!(
                "round {round} churn: steady {:.2} ms, churn {:.2} ms per 100k tasks (medians of {PAIR}): {:.3}x",
                steady,
                churn,
                churn / steady
            );
            report_churn("  churn thread");
            ratios.push(churn / steady);
        }
    }
    println!("medians over {} rounds:", args.rounds);
    for (placement, figures) in &grow {
        if figures.is_empty() {
            continue;
        }
        let p50: Vec<f64> = figures.iter().map(|f| f.0).collect();
        let p99: Vec<f64> = figures.iter().map(|f| f.1).collect();
        println!(
            "  grow {:<10}: p50 {:.1} µs, p99 {:.1} µs (p99 per round {})",
            placement.name(),
            median(&p50),
            median(&p99),
            list(&p99)
        );
    }
    if on_home.1 > 0 {
        println!(
            "  unplaced: the tuning thread sat on worker 1's home core in {} of {} grows",
            on_home.0, on_home.1
        );
    }
    if !ratios.is_empty() {
        println!(
            "  churn / steady: {:.3}x (per round {})",
            median(&ratios),
            list(&ratios)
        );
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

fn list(values: &[f64]) -> String {
    values.iter().map(|v| format!("{v:.2}")).collect::<Vec<_>>().join(", ")
}

/// [`GROWS`] grows on a fresh pool, the tuning thread placed as asked (a
/// thread of its own, so the placement ends with it).
fn grow_figure(pinning: Pinning, placement: Placement, cores: &[CoreId]) -> GrowSamples {
    let cores = cores.to_vec();
    thread::spawn(move || {
        let pool = Pool::builder()
            .capacity(2)
            .max_capacity(2)
            .prealloc(true)
            .pinning(pinning)
            .build()
            .expect("build stealpool::Pool");
        let home = || pool.worker_stats()[1].home_core;
        // Each thread pins itself as it starts (best effort: a refused pin
        // leaves it without a home).
        let deadline = Instant::now() + Duration::from_secs(1);
        while pinning != Pinning::Off && home().is_none() && Instant::now() < deadline {
            thread::yield_now();
        }
        let target = match (placement, home()) {
            (Placement::SameCore, Some(home)) => cores.iter().copied().find(|c| c.id == home),
            (Placement::OtherCore, Some(home)) => cores.iter().copied().find(|c| c.id != home),
            _ => None,
        };
        if placement != Placement::Unplaced && target.is_none() {
            println!("  worker 1 has no home core here: the tuning thread runs unplaced");
        }
        if let Some(core) = target {
            assert!(core_affinity::set_for_current(core), "could not pin the tuning thread");
        }
        let mut samples = GrowSamples::default();
        for i in 0..=GROWS {
            pool.tune(1).expect("tune(1)");
            wait_for("worker 1 to suspend after tune(1)", || {
                pool.worker_stats()[1].state == WorkerState::Suspended
            });
            let (elapsed, cpu) = grow_once_on(&pool);
            // The first grow warms up (the probe's channel, the pages).
            if i > 0 {
                samples.push(elapsed, cpu, home());
            }
        }
        pool.shutdown();
        samples
    })
    .join()
    .expect("grow figure panicked")
}

/// [`PAIR`] steady and [`PAIR`] churn rounds on one pool, in the given
/// order; returns the medians (ms per round): (steady, churn).
fn churn_figure(pinning: Pinning, churn_first: bool) -> (f64, f64) {
    let hi = threads().max(2);
    let pool = Pool::builder()
        .capacity(hi)
        .max_capacity(hi)
        .pinning(pinning)
        .build()
        .expect("build stealpool::Pool");
    // Warm up: threads started, pages touched.
    stealpool_round(&pool);
    let timed = |pool: &Pool| {
        let start = Instant::now();
        stealpool_round(pool);
        start.elapsed()
    };
    let steady_side = |pool: &Pool| (0..PAIR).map(|_| timed(pool)).collect::<Vec<Duration>>();
    let churn_side = |pool: &Pool| {
        let tuner = pool.clone();
        let churn = Churner::start(hi, move |n| tuner.tune(n).expect("tune"));
        let times: Vec<Duration> = (0..PAIR).map(|_| timed(pool)).collect();
        churn.stop();
        times
    };
    let (steady, churn) = if churn_first {
        let churn = churn_side(&pool);
        (steady_side(&pool), churn)
    } else {
        let steady = steady_side(&pool);
        (steady, churn_side(&pool))
    };
    pool.shutdown();
    let ms = |times: Vec<Duration>| median(&times.iter().map(|t| t.as_secs_f64() * 1e3).collect::<Vec<_>>());
    (ms(steady), ms(churn))
}
