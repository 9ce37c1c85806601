//! Autoscaling benchmarks: does the capacity follow a load that blocks, and
//! does it stay out of the way of a load that computes?
//!
//! Run with
//!
//! ```text
//! cargo bench -p stealpool-benches --bench autoscale                 # 5 interleaved rounds
//! cargo bench -p stealpool-benches --bench autoscale -- --rounds 9   # more rounds
//! cargo bench -p stealpool-benches --bench autoscale -- --test       # smoke test: one short round
//! cargo bench -p stealpool-benches --bench autoscale -- --only sleep # one workload (sleep or cpu)
//! cargo bench -p stealpool-benches --bench autoscale -- --only cpu --variant on   # one side of on/off
//!                                               # (for `perf stat -e instructions`)
//! ```
//!
//! A plain `main` (no criterion): each figure is one run of a whole
//! workload on a fresh pool, the contenders take turns within each round
//! (A, B, C, D, A, B, …), and the medians and ratios are printed. It
//! measures; it asserts nothing.
//!
//! # Workloads
//!
//! * **`sleep`**: 3,200 tasks that each sleep 1 ms, submitted from one
//!   outside thread and awaited (the ideal with 64 threads is 50 ms):
//!   - `autoscale`: stealpool with the default capacity (the core count),
//!     `max_capacity(64)` and `Autoscale::new(1, 64)`;
//!   - `tuned_64`: stealpool built with capacity 64;
//!   - `tokio_blocking`: `spawn_blocking` on a tokio runtime with
//!     `max_blocking_threads(64)`, every handle awaited;
//!   - `rusty_pool`: `rusty_pool::ThreadPool::new(cores, 64, 60 s)`, which
//!     grows toward 64 threads while its queue is non-empty, then `join()`.
//!
//!   The autoscaled run also reports its peak capacity and how long after
//!   the last task the capacity was back at or below the core count.
//! * **`cpu`**: computing loads with autoscale on and off (capacity = cores):
//!   100,000 empty tasks, 200 tasks that spin 2 ms each, and a fork-join
//!   `fib(28)` through `Pool::join`; the autoscaled runs report the peak
//!   capacity seen by a sampler thread (1 ms period).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use stealpool::{Autoscale, Pool};

const SLEEP_TASKS: usize = 3_200;
const EMPTY_TASKS: usize = 100_000;
const SPIN_TASKS: usize = 200;

fn cores() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

fn autoscaled() -> Pool {
    Pool::builder()
        .max_capacity(64)
        .autoscale(Autoscale::new(1, 64))
        .build()
        .expect("build")
}

fn fixed(capacity: usize) -> Pool {
    Pool::builder()
        .capacity(capacity)
        .max_capacity(64)
        .build()
        .expect("build")
}

/// Samples `pool.capacity()` every millisecond until dropped; the peak.
struct Sampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicUsize>,
    /// Milliseconds from the start until the capacity first reached 64.
    to_64: Arc<AtomicUsize>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Sampler {
    fn new(pool: &Pool) -> Sampler {
        let (stop, peak) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let to_64 = Arc::new(AtomicUsize::new(usize::MAX));
        let (s, p, t, pool) = (stop.clone(), peak.clone(), to_64.clone(), pool.clone());
        let start = Instant::now();
        let thread = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let capacity = pool.capacity();
                p.fetch_max(capacity, Ordering::Relaxed);
                if capacity >= 64 {
                    t.fetch_min(start.elapsed().as_millis() as usize, Ordering::Relaxed);
                }
                thread::sleep(Duration::from_millis(1));
            }
        });
        Sampler {
            stop,
            peak,
            to_64,
            thread: Some(thread),
        }
    }

    /// The peak capacity and the milliseconds it took to reach 64, if it did.
    fn peak(mut self) -> (usize, Option<usize>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        let to_64 = self.to_64.load(Ordering::Relaxed);
        (
            self.peak.load(Ordering::Relaxed),
            (to_64 != usize::MAX).then_some(to_64),
        )
    }
}

fn sleep_tasks(pool: &Pool, tasks: usize) -> Duration {
    let start = Instant::now();
    for _ in 0..tasks {
        pool.submit(|| thread::sleep(Duration::from_millis(1))).unwrap();
    }
    pool.wait_idle();
    start.elapsed()
}

fn sleep_tokio(tasks: usize) -> Duration {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores())
        .max_blocking_threads(64)
        .build()
        .expect("tokio");
    let start = Instant::now();
    rt.block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|_| tokio::task::spawn_blocking(|| thread::sleep(Duration::from_millis(1))))
            .collect();
        for handle in handles {
            handle.await.unwrap();
        }
    });
    let elapsed = start.elapsed();
    rt.shutdown_background();
    elapsed
}

fn sleep_rusty(tasks: usize) -> Duration {
    let pool = rusty_pool::ThreadPool::new(cores(), 64, Duration::from_secs(60));
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    for _ in 0..tasks {
        let done = done.clone();
        pool.execute(move || {
            thread::sleep(Duration::from_millis(1));
            done.fetch_add(1, Ordering::Release);
        });
    }
    pool.join();
    // `join` was seen returning before the last task finished (see
    // benches/peers/benches/peers.rs): wait for the count too.
    while done.load(Ordering::Acquire) < tasks {
        thread::yield_now();
    }
    let elapsed = start.elapsed();
    pool.shutdown();
    elapsed
}

fn empty_tasks(pool: &Pool, tasks: usize) -> Duration {
    let start = Instant::now();
    for _ in 0..tasks {
        pool.submit(|| ()).unwrap();
    }
    pool.wait_idle();
    start.elapsed()
}

fn spin_tasks(pool: &Pool, tasks: usize) -> Duration {
    let start = Instant::now();
    for _ in 0..tasks {
        pool.submit(|| {
            let begin = Instant::now();
            while begin.elapsed() < Duration::from_millis(2) {
                std::hint::spin_loop();
            }
        })
        .unwrap();
    }
    pool.wait_idle();
    start.elapsed()
}

fn fib(pool: &Pool, n: u32) -> u64 {
    if n < 2 {
        return u64::from(n);
    }
    let (a, b) = pool.join(|| fib(pool, n - 1), || fib(pool, n - 2));
    a + b
}

fn fork_join(pool: &Pool, n: u32) -> Duration {
    let start = Instant::now();
    std::hint::black_box(fib(pool, n));
    start.elapsed()
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--test");
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(if smoke { 1 } else { 5 });
    let scale = if smoke { 10 } else { 1 };
    let only = |part: &str| !args.iter().any(|a| a == "--only") || args.iter().any(|a| a == part);
    let variant = args
        .iter()
        .position(|a| a == "--variant")
        .and_then(|i| args.get(i + 1).cloned());
    let runs = |side: &str| variant.as_deref().map_or(true, |v| v == side);
    let cores = cores();
    println!("autoscale bench: {cores} cores, {rounds} interleaved rounds");

    // Blocking load.
    if only("sleep") {
        let names = ["autoscale", "tuned_64", "tokio_blocking", "rusty_pool"];
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
        let (mut peaks, mut settle) = (Vec::new(), Vec::new());
        let tasks = SLEEP_TASKS / scale;
        for _ in 0..rounds {
            let pool = autoscaled();
            let sampler = Sampler::new(&pool);
            times[0].push(sleep_tasks(&pool, tasks));
            let done = Instant::now();
            while pool.capacity() > cores && done.elapsed() < Duration::from_secs(10) {
                thread::sleep(Duration::from_millis(1));
            }
            settle.push(done.elapsed());
            peaks.push(sampler.peak());
            drop(pool);
            let pool = fixed(64);
            times[1].push(sleep_tasks(&pool, tasks));
            drop(pool);
            times[2].push(sleep_tokio(tasks));
            times[3].push(sleep_rusty(tasks));
        }
        println!(
            "\nsleep: {tasks} tasks x 1 ms (ideal with 64 threads: {:.0} ms)",
            tasks as f64 / 64.0
        );
        let reference = median(&mut times[1].clone());
        for (name, samples) in names.iter().zip(&mut times) {
            let m = median(samples);
            println!(
                "  {name:<15} median {:>8.1} ms  ({:.2}x tuned_64)  runs {:?}",
                ms(m),
                m.as_secs_f64() / reference.as_secs_f64(),
                samples.iter().map(|d| format!("{:.1}", ms(*d))).collect::<Vec<_>>()
            );
        }
        println!(
            "  autoscale: (peak capacity, ms to reach 64) {peaks:?}; back to <= {cores} after {:?}",
            settle.iter().map(|d| format!("{:.0} ms", ms(*d))).collect::<Vec<_>>()
        );
    }
    if !only("cpu") {
        return;
    }

    // Computing loads, autoscale on vs off.
    let cpu = |label: &str, run: &dyn Fn(&Pool) -> Duration| {
        let (mut on, mut off, mut peaks) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            // On first in even rounds, off first in odd ones.
            for turn in 0..2 {
                let on_turn = (round + turn) % 2 == 0;
                if !runs(if on_turn { "on" } else { "off" }) {
                    continue;
                }
                if on_turn {
                    let pool = Pool::builder()
                        .capacity(cores)
                        .max_capacity(64)
                        .autoscale(Autoscale::new(1, 64))
                        .build()
                        .expect("build");
                    let sampler = Sampler::new(&pool);
                    on.push(run(&pool));
                    peaks.push(sampler.peak().0);
                } else {
                    off.push(run(&fixed(cores)));
                }
            }
        }
        if on.is_empty() || off.is_empty() {
            let (side, samples) = if on.is_empty() {
                ("off", &mut off)
            } else {
                ("on", &mut on)
            };
            println!(
                "  {label:<22} {side} {:>8.2} ms  peak capacity {peaks:?}",
                ms(median(samples))
            );
            return;
        }
        let (m_on, m_off) = (median(&mut on), median(&mut off));
        println!(
            "  {label:<22} on {:>8.2} ms  off {:>8.2} ms  on/off {:.3}  peak capacity {peaks:?}",
            ms(m_on),
            ms(m_off),
            m_on.as_secs_f64() / m_off.as_secs_f64()
        );
    };
    println!("\ncpu: autoscale on vs off, capacity {cores}");
    cpu(&format!("empty x {}", EMPTY_TASKS / scale), &|pool| {
        empty_tasks(pool, EMPTY_TASKS / scale)
    });
    cpu(&format!("spin 2 ms x {}", SPIN_TASKS / scale), &|pool| {
        spin_tasks(pool, SPIN_TASKS / scale)
    });
    let n = if smoke { 18 } else { 28 };
    cpu(&format!("fork-join fib({n})"), &|pool| fork_join(pool, n));
}
