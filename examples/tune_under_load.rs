//! Capacity under a changing load.
//!
//! A load generator ramps its submission rate up and down (one sine-shaped
//! swell over the run). In the first half its tasks *block* (each sleeps
//! 1-3 ms, as a task waiting on a disk or a service would); in the second
//! half they *compute* (100-500 µs of busy work each). One line per tick
//! (100 ms) shows capacity, busy and blocked workers, queue length and
//! throughput.
//!
//! By default the pool's own autoscaler moves the capacity
//! ([`stealpool::Autoscale`]): up while blocked workers leave cores idle and
//! tasks wait, back to the core count when the tasks compute. With
//! `--manual`, the example's own controller looks at the queue every tick
//! and `tune`s the pool instead: more workers while the queue grows, fewer
//! while it is nearly empty (what the autoscaler's queue-delay rule does,
//! without knowing which workers block).
//!
//! ```sh
//! cargo run --release --example tune_under_load              # 6 s, autoscaler
//! cargo run --release --example tune_under_load -- --manual  # 6 s, manual tune
//! cargo run --release --example tune_under_load -- 12        # 12 s
//! cargo run --release --example tune_under_load -- --ticks 5
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use stealpool::{Autoscale, Pool};

const TICK: Duration = Duration::from_millis(100);
/// A bounded queue, so the generator feels backpressure at the peak.
const QUEUE_LIMIT: usize = 1000;

fn usage() -> ! {
    eprintln!("usage: tune_under_load [SECONDS] [--ticks N] [--manual]");
    std::process::exit(2);
}

/// The number of ticks to run, from `[SECONDS] [--ticks N]` (default 6 s),
/// and whether `--manual` was given.
fn parse_args() -> (u32, bool) {
    let mut ticks = None;
    let mut seconds = None;
    let mut manual = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--manual" {
            manual = true;
        } else if arg == "--ticks" {
            let n = args
                .next()
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or_else(|| usage());
            ticks = Some(n);
        } else if let Some(n) = arg.strip_prefix("--ticks=") {
            ticks = Some(n.parse::<u32>().unwrap_or_else(|_| usage()));
        } else if let Ok(s) = arg.parse::<f64>() {
            seconds = Some(s);
        } else {
            usage();
        }
    }
    let ticks = ticks.unwrap_or_else(|| (seconds.unwrap_or(6.0) / TICK.as_secs_f64()).round() as u32);
    if ticks == 0 {
        usage();
    }
    (ticks, manual)
}

/// Spins for `d`: CPU work, not sleep.
fn busy(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// `[####    ]`: `value` of `full`, `width` characters.
fn bar(value: usize, full: usize, width: usize) -> String {
    let filled = if full == 0 {
        0
    } else {
        (value.min(full) * width).div_ceil(full)
    };
    format!("[{}{}]", "#".repeat(filled), " ".repeat(width - filled))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (ticks, manual) = parse_args();
    let total = TICK * ticks;
    let cores = thread::available_parallelism().map_or(2, |n| n.get());
    let max = (8 * cores).clamp(8, 64);
    let builder = Pool::builder()
        .max_capacity(max)
        .queue_limit(QUEUE_LIMIT)
        .thread_name(|i| format!("tune-demo-{i}"))
        .pin_workers(false);
    let pool = if manual {
        builder.capacity(1).build()?
    } else {
        // Starts at the core count; moves within 1..=max by itself.
        builder.capacity(cores).autoscale(Autoscale::new(1, max)).build()?
    };
    println!(
        "{} on {cores} cores, max_capacity {max}; tasks block in the first half, compute in the second",
        if manual { "manual tune" } else { "autoscale" }
    );

    // Peak rate: more than the machine can do while the tasks compute (a
    // task averages 300 µs, so a core does about 3300 a second), so the
    // queue builds up at the peak; while they block (2 ms on average), only
    // many more workers than cores keep up.
    let peak_rate = 4000.0 * cores as f64;
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let generator = {
        let (pool, stop) = (pool.clone(), stop.clone());
        thread::spawn(move || {
            let mut owed = 0.0;
            let mut seed = 0x2545_F491_4F6C_DD1D_u64;
            let mut last = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                let phase = (now - start).as_secs_f64() / total.as_secs_f64();
                // One swell: 0 -> peak -> 0 (a raised cosine), with a floor.
                let rate = peak_rate * (0.05 + 0.95 * 0.5 * (1.0 - (2.0 * std::f64::consts::PI * phase).cos()));
                owed += rate * (now - last).as_secs_f64();
                last = now;
                while owed >= 1.0 {
                    owed -= 1.0;
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    // Blocks while the queue is full: backpressure.
                    let blocks = phase < 0.5;
                    let wait = Duration::from_micros(if blocks { 1000 + seed % 2001 } else { 100 + seed % 401 });
                    let submitted = pool.submit(move || {
                        if blocks {
                            thread::sleep(wait);
                        } else {
                            busy(wait);
                        }
                    });
                    if submitted.is_err() {
                        return;
                    }
                }
                thread::sleep(Duration::from_millis(2));
            }
        })
    };

    // The manual controller: one tune per tick, from the queue length.
    let mut completed_before = 0u64;
    let mut next = start + TICK;
    for _ in 0..ticks {
        thread::sleep(next.saturating_duration_since(Instant::now()));
        next += TICK;
        let st = pool.stats();
        let cap = st.capacity;
        let per_worker = st.queued / cap.max(1);
        let wanted = if per_worker > 200 {
            cap + 1 + per_worker / 1000
        } else if st.queued < 20 * cap && st.busy_workers < cap {
            cap - 1
        } else {
            cap
        };
        let wanted = if manual { wanted.clamp(1, max) } else { cap };
        if wanted != cap {
            pool.tune(wanted)?;
        }
        let throughput = (st.completed - completed_before) as f64 / TICK.as_secs_f64();
        completed_before = st.completed;
        println!(
            "t={:.1}s cap {cap:2} {} busy {:2} blocked {:2} queued {:5} {} {:6.0}/s{}",
            start.elapsed().as_secs_f64(),
            bar(cap, max, 32),
            st.busy_workers,
            st.blocked_workers,
            st.queued,
            bar(st.queued, QUEUE_LIMIT, 20),
            throughput,
            if wanted != cap {
                format!("  -> tune({wanted})")
            } else {
                String::new()
            },
        );
    }

    stop.store(true, Ordering::Relaxed);
    generator.join().expect("generator panicked");
    pool.wait_idle();
    let st = pool.stats();
    println!(
        "done: {} tasks in {:.1}s, {} submits waited {:?} in all, {} refused; final capacity {}; {} autoscale steps",
        st.completed,
        start.elapsed().as_secs_f64(),
        st.wait_count,
        st.wait_time,
        st.rejected,
        pool.capacity(),
        st.autoscale_steps
    );
    assert_eq!(st.completed, st.submitted, "every accepted task ran");
    pool.shutdown();
    Ok(())
}
