//! A pool vs one OS thread per job: wall time and peak memory.
//!
//! The Rust take on the "ants vs goroutines" study: many short blocking jobs
//! (by default `thread::sleep`, standing in for a call to a slow service) run
//! through a stealpool `Pool` at several capacities, and then with one
//! `std::thread` per job, the way one would start a goroutine per job. Each
//! variant runs in a fresh child process of this example (the same binary,
//! the variant picked by an environment variable), one after the other, so
//! that peak memory figures do not mix: the peak is the child's `VmHWM`
//! (peak resident set) from `/proc/self/status`, Linux only.
//!
//! The thread-per-job variant spawns every job at once and joins finished
//! threads as it goes; if the OS refuses a thread (thread or memory limits)
//! it waits for the oldest running one and retries, and counts the refusals
//! in `spawn_errors`.
//!
//! Defaults: 10 000 jobs of a 1 ms sleep, pools of capacity 100, 1000 and
//! 10 000: about 4 s in all on a 2-core machine. The study's scale is
//! `--jobs 100000` (about 35 s there, most of it in the big pools, whose
//! idle workers search every slot for work).
//!
//! ```sh
//! cargo run --release --example vs_threads
//! cargo run --release --example vs_threads -- --jobs 100000 --job-us 10000 --caps 1000,10000
//! cargo run --release --example vs_threads -- --work spin --job-us 50     # CPU jobs instead of sleeps
//! ```
//!
//! Output: one row per variant with `completed` (jobs that ran: must equal
//! the job count), `wall_ms`, `jobs_per_s`, `peak_rss_mib`, `threads` (the
//! most OS threads that ran jobs: pool workers started, or job threads alive
//! at once) and `spawn_errors`.

use std::collections::VecDeque;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use stealpool::Pool;

/// Set in a child: the variant it runs (`pool/CAP`, `threads` or `idle`).
const VARIANT_ENV: &str = "STEALPOOL_VS_THREADS_VARIANT";

#[derive(Clone, Copy, PartialEq)]
enum Work {
    Sleep,
    Spin,
}

struct Args {
    jobs: usize,
    job: Duration,
    work: Work,
    caps: Vec<usize>,
}

fn usage() -> ! {
    eprintln!(
        "usage: vs_threads [--jobs N] [--job-us U] [--work sleep|spin] [--caps C1,C2,...]\n\
         defaults: --jobs 10000 --job-us 1000 --work sleep --caps 100,1000,10000"
    );
    std::process::exit(2);
}

fn number(s: &str) -> usize {
    s.replace('_', "").parse().unwrap_or_else(|_| usage())
}

fn parse_args() -> Args {
    let mut parsed = Args {
        jobs: 10_000,
        job: Duration::from_micros(1000),
        work: Work::Sleep,
        caps: vec![100, 1000, 10_000],
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_string(), Some(value.to_string())),
            None => (arg.clone(), None),
        };
        let value = inline.or_else(|| args.next()).unwrap_or_else(|| usage());
        match name.as_str() {
            "--jobs" => parsed.jobs = number(&value),
            "--job-us" => parsed.job = Duration::from_micros(number(&value) as u64),
            "--work" => {
                parsed.work = match value.as_str() {
                    "sleep" => Work::Sleep,
                    "spin" => Work::Spin,
                    _ => usage(),
                }
            }
            "--caps" => parsed.caps = value.split(',').map(number).collect(),
            _ => usage(),
        }
    }
    if parsed.jobs == 0 || parsed.caps.is_empty() || parsed.caps.contains(&0) {
        usage();
    }
    parsed
}

fn job(work: Work, d: Duration) {
    match work {
        Work::Sleep => thread::sleep(d),
        Work::Spin => {
            let start = Instant::now();
            while start.elapsed() < d {
                std::hint::spin_loop();
            }
        }
    }
}

/// A field of `/proc/self/status` in kB (`VmHWM`, `VmRSS`); `None` where
/// there is no procfs.
fn proc_status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    line[field.len() + 1..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// What a child measured.
#[derive(Default)]
struct Outcome {
    completed: usize,
    wall: Duration,
    peak_rss_kb: Option<u64>,
    threads: usize,
    spawn_errors: usize,
    first_error: Option<String>,
}

fn run_pool(args: &Args, capacity: usize) -> Result<Outcome, Box<dyn std::error::Error>> {
    let done = Arc::new(AtomicUsize::new(0));
    let (work, d) = (args.work, args.job);
    let start = Instant::now();
    let pool = Pool::builder()
        .capacity(capacity)
        .max_capacity(capacity)
        // Sleeping jobs: pinning thousands of workers to 2 cores buys nothing.
        .pin_workers(false)
        .build()?;
    for _ in 0..args.jobs {
        let done = done.clone();
        pool.submit(move || {
            job(work, d);
            done.fetch_add(1, Ordering::Relaxed);
        })
        .map_err(|e| format!("submit: {e}"))?;
    }
    pool.wait_idle();
    let threads = pool.stats().live_workers;
    pool.shutdown();
    Ok(Outcome {
        completed: done.load(Ordering::Relaxed),
        wall: start.elapsed(),
        threads,
        ..Outcome::default()
    })
}

fn run_threads(args: &Args) -> Outcome {
    let done = Arc::new(AtomicUsize::new(0));
    let alive = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (work, d) = (args.work, args.job);
    let mut outcome = Outcome::default();
    let start = Instant::now();
    let mut running = VecDeque::new();
    for _ in 0..args.jobs {
        loop {
            let (done, alive, peak) = (done.clone(), alive.clone(), peak.clone());
            let spawned = thread::Builder::new().spawn(move || {
                let now = alive.fetch_add(1, Ordering::Relaxed) + 1;
                peak.fetch_max(now, Ordering::Relaxed);
                job(work, d);
                done.fetch_add(1, Ordering::Relaxed);
                alive.fetch_sub(1, Ordering::Relaxed);
            });
            match spawned {
                Ok(handle) => {
                    running.push_back(handle);
                    break;
                }
                Err(e) => {
                    // The OS is out of threads (or memory for their stacks):
                    // wait for the oldest job thread, then try again.
                    outcome.spawn_errors += 1;
                    outcome.first_error.get_or_insert_with(|| e.to_string());
                    match running.pop_front() {
                        Some(oldest) => oldest.join().expect("a job thread panicked"),
                        None => thread::sleep(Duration::from_millis(1)),
                    }
                }
            }
        }
        // Join the threads that finished, as a goroutine would just vanish:
        // an unjoined thread keeps its stack.
        while running.front().is_some_and(|h| h.is_finished()) {
            running.pop_front().unwrap().join().expect("a job thread panicked");
        }
    }
    for handle in running {
        handle.join().expect("a job thread panicked");
    }
    outcome.wall = start.elapsed();
    outcome.completed = done.load(Ordering::Relaxed);
    outcome.threads = peak.load(Ordering::Relaxed);
    outcome
}

/// In a child: runs `variant` and prints one `RESULT` line.
fn child(variant: &str, args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let outcome = if variant == "threads" {
        run_threads(args)
    } else if variant == "idle" {
        Outcome::default()
    } else if let Some(cap) = variant.strip_prefix("pool/") {
        run_pool(args, cap.parse()?)?
    } else {
        return Err(format!("unknown variant {variant:?}").into());
    };
    let peak = proc_status_kb("VmHWM");
    println!(
        "RESULT completed={} wall_us={} peak_rss_kb={} threads={} spawn_errors={} first_error={}",
        outcome.completed,
        outcome.wall.as_micros(),
        peak.map_or("-".to_string(), |kb| kb.to_string()),
        outcome.threads,
        outcome.spawn_errors,
        outcome
            .first_error
            .unwrap_or_default()
            .replace(char::is_whitespace, "_"),
    );
    Ok(())
}

/// Runs `variant` in a fresh process of this binary; its figures, or why
/// not.
fn run_child(variant: &str) -> Result<Outcome, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let output = Command::new(exe)
        .args(std::env::args().skip(1))
        .env(VARIANT_ENV, variant)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("start the child: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("child {}: {}", output.status, stderr.trim()));
    }
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .ok_or_else(|| format!("no RESULT line from the child: {stdout}{stderr}"))?;
    let mut outcome = Outcome::default();
    for field in line.split(' ') {
        let (name, value) = field.split_once('=').unwrap_or((field, ""));
        let parse = |v: &str| v.parse::<u64>().map_err(|_| format!("bad {name} in {line:?}"));
        match name {
            "completed" => outcome.completed = parse(value)? as usize,
            "wall_us" => outcome.wall = Duration::from_micros(parse(value)?),
            "peak_rss_kb" => outcome.peak_rss_kb = parse(value).ok(),
            "threads" => outcome.threads = parse(value)? as usize,
            "spawn_errors" => outcome.spawn_errors = parse(value)? as usize,
            "first_error" if !value.is_empty() => outcome.first_error = Some(value.replace('_', " ")),
            _ => {}
        }
    }
    Ok(outcome)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args();
    if let Ok(variant) = std::env::var(VARIANT_ENV) {
        return child(&variant, &args);
    }

    let what = match args.work {
        Work::Sleep => "thread::sleep",
        Work::Spin => "spin",
    };
    println!(
        "vs_threads: {} jobs of {what}({} µs); each variant in a fresh process, one after the other",
        args.jobs,
        args.job.as_micros()
    );
    let baseline = run_child("idle").ok().and_then(|o| o.peak_rss_kb);
    let mib = |kb: u64| format!("{:.1}", kb as f64 / 1024.0);
    println!(
        "peak RSS of a child that runs no job: {} MiB\n",
        baseline.map_or("-".to_string(), mib)
    );

    let variants: Vec<String> = args
        .caps
        .iter()
        .map(|cap| format!("pool/{cap}"))
        .chain(["threads".to_string()])
        .collect();
    println!(
        "{:<12} {:>10} {:>9} {:>11} {:>13} {:>8} {:>13}",
        "variant", "completed", "wall_ms", "jobs_per_s", "peak_rss_mib", "threads", "spawn_errors"
    );
    let mut failed = false;
    let mut notes = Vec::new();
    for variant in &variants {
        match run_child(variant) {
            Ok(o) => {
                println!(
                    "{variant:<12} {:>10} {:>9.1} {:>11.0} {:>13} {:>8} {:>13}",
                    o.completed,
                    o.wall.as_secs_f64() * 1e3,
                    o.completed as f64 / o.wall.as_secs_f64().max(1e-9),
                    o.peak_rss_kb.map_or("-".to_string(), mib),
                    o.threads,
                    o.spawn_errors
                );
                if o.completed != args.jobs {
                    failed = true;
                    notes.push(format!(
                        "{variant}: only {} of {} jobs completed",
                        o.completed, args.jobs
                    ));
                }
                if let Some(e) = o.first_error {
                    notes.push(format!("{variant}: the OS refused {} thread(s): {e}", o.spawn_errors));
                }
            }
            Err(e) => {
                failed = true;
                println!("{variant:<12} FAILED");
                notes.push(format!("{variant}: {e}"));
            }
        }
    }
    println!();
    for note in &notes {
        println!("note: {note}");
    }
    println!(
        "peak_rss_mib: the child's VmHWM (peak resident memory: touched stack pages, queued jobs, allocator), \
         not virtual memory; threads: most OS threads that ran jobs"
    );
    if failed {
        std::process::exit(1);
    }
    Ok(())
}
