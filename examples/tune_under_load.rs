//! Tuning capacity under a changing load.
//!
//! A load generator ramps its submission rate up and down (one sine-shaped
//! swell over the run) with tasks of 100-500 µs of busy work each, while a
//! controller looks at the queue every tick (100 ms) and `tune`s the pool
//! between 1 and its `max_capacity`: more workers while the queue grows,
//! fewer while it is nearly empty. One line per tick shows capacity, busy
//! workers, queue length and throughput.
//!
//! ```sh
//! cargo run --release --example tune_under_load            # 6 s
//! cargo run --release --example tune_under_load -- 12      # 12 s
//! cargo run --release --example tune_under_load -- --ticks 5
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use stealpool::Pool;

const TICK: Duration = Duration::from_millis(100);
/// A bounded queue, so the generator feels backpressure at the peak.
const QUEUE_LIMIT: usize = 1000;

fn usage() -> ! {
    eprintln!("usage: tune_under_load [SECONDS] [--ticks N]");
    std::process::exit(2);
}

/// The number of ticks to run, from `[SECONDS] [--ticks N]` (default 6 s).
fn parse_ticks() -> u32 {
    let mut ticks = None;
    let mut seconds = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--ticks" {
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
    ticks
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
    let ticks = parse_ticks();
    let total = TICK * ticks;
    let cores = thread::available_parallelism().map_or(2, |n| n.get());
    let max = (2 * cores).clamp(2, 16);
    let pool = Pool::builder()
        .capacity(1)
        .max_capacity(max)
        .queue_limit(QUEUE_LIMIT)
        .thread_name(|i| format!("tune-demo-{i}"))
        .pin_workers(false)
        .build()?;

    // Peak rate: more than the machine can do (a task averages 300 µs, so a
    // core does about 3300 a second), so the queue builds up at the peak.
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
                    let work = Duration::from_micros(100 + seed % 401);
                    // Blocks while the queue is full: backpressure.
                    if pool.submit(move || busy(work)).is_err() {
                        return;
                    }
                }
                thread::sleep(Duration::from_millis(2));
            }
        })
    };

    // The controller: one tune per tick, from the queue length.
    let mut completed_before = 0u64;
    let mut next = start + TICK;
    for _ in 0..ticks {
        thread::sleep(next.saturating_duration_since(Instant::now()));
        next += TICK;
        let st = pool.stats();
        let cap = pool.capacity();
        let per_worker = st.queued / cap.max(1);
        let wanted = if per_worker > 200 {
            cap + 1 + per_worker / 1000
        } else if st.queued < 20 * cap && st.busy_workers < cap {
            cap - 1
        } else {
            cap
        };
        let wanted = wanted.clamp(1, max);
        if wanted != cap {
            pool.tune(wanted)?;
        }
        let throughput = (st.completed - completed_before) as f64 / TICK.as_secs_f64();
        completed_before = st.completed;
        println!(
            "t={:.1}s cap {cap:2} {} busy {:2} {} queued {:5} {} {:6.0}/s{}",
            start.elapsed().as_secs_f64(),
            bar(cap, max, max),
            st.busy_workers,
            bar(st.busy_workers, max, max),
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
        "done: {} tasks in {:.1}s, {} submits waited {:?} in all, {} refused; final capacity {}",
        st.completed,
        start.elapsed().as_secs_f64(),
        st.wait_count,
        st.wait_time,
        st.rejected,
        pool.capacity()
    );
    assert_eq!(st.completed, st.submitted, "every accepted task ran");
    pool.shutdown();
    Ok(())
}
