//! Pinning on a shared machine: stealpool's `Pinning::Adaptive` (the
//! default), `Strict` and `Off`, next to rayon, on a quiet machine and with
//! a busy neighbour (another process spinning on one core, at the same
//! priority).
//!
//! Run with
//!
//! ```text
//! cargo bench -p stealpool-benches --bench contention              # 3 interleaved rounds
//! cargo bench -p stealpool-benches --bench contention -- --quick   # 1 short round (a smoke test)
//! cargo bench -p stealpool-benches --bench contention -- --quiet-only --rounds 9   # the quiet machine only
//! cargo bench -p stealpool-benches --bench contention -- --busy 0,7  # the neighbour on these cores only
//! ```
//!
//! For every scenario (quiet, then a neighbour on each core in turn) and
//! every round, each contender gets a fresh pool of one worker per core and
//! two measurements, contenders interleaved (A, B, C, D, A, B, C, D, ...):
//!
//! * **cold wake**: a task submitted to an idle pool (2 ms after the last
//!   one, so the workers have parked), the time from before `submit` to the
//!   task's first instruction; p50 of 200 such wake-ups;
//! * **throughput**: 200,000 tiny tasks submitted from one outside thread
//!   and awaited (ns per task).
//!
//! The table shows, per scenario and contender, the median over rounds and
//! the ratio to `Off` (unpinned) and to rayon. The neighbour is
//! a shell loop pinned with `taskset -c CORE` (a bounded counting loop of a
//! few minutes), a child of this process killed after its scenario; without
//! `taskset` the busy scenarios are skipped. No timings are asserted: this prints figures.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use stealpool::{Pinning, Pool};

#[derive(Clone, Copy, PartialEq)]
enum Contender {
    Adaptive,
    Strict,
    Off,
    Rayon,
}

impl Contender {
    const ALL: [Contender; 4] = [Contender::Adaptive, Contender::Strict, Contender::Off, Contender::Rayon];

    fn name(self) -> &'static str {
        match self {
            Contender::Adaptive => "stealpool Adaptive (default)",
            Contender::Strict => "stealpool Strict",
            Contender::Off => "stealpool Off",
            Contender::Rayon => "rayon",
        }
    }
}

/// A pool under test, behind one interface.
enum Subject {
    Stealpool(Pool),
    Rayon(rayon::ThreadPool),
}

impl Subject {
    fn new(contender: Contender, workers: usize) -> Subject {
        let pinning = match contender {
            Contender::Adaptive => Pinning::Adaptive,
            Contender::Strict => Pinning::Strict,
            Contender::Off => Pinning::Off,
            Contender::Rayon => {
                return Subject::Rayon(
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(workers)
                        .build()
                        .expect("rayon pool"),
                )
            }
        };
        Subject::Stealpool(
            Pool::builder()
                .capacity(workers)
                .pinning(pinning)
                .prealloc(true)
                .build()
                .expect("stealpool pool"),
        )
    }

    /// Times adaptive pinning let a worker off its core so far.
    fn pin_releases(&self) -> u64 {
        match self {
            Subject::Stealpool(pool) => pool.worker_stats().iter().map(|w| w.pin_releases).sum(),
            Subject::Rayon(_) => 0,
        }
    }

    fn submit(&self, task: impl FnOnce() + Send + 'static) {
        match self {
            Subject::Stealpool(pool) => pool.submit(task).unwrap_or_else(|_| panic!("refused")),
            Subject::Rayon(pool) => pool.spawn(task),
        }
    }
}

const WAKES: usize = 200;
const IDLE: Duration = Duration::from_millis(2);
const TASKS: usize = 200_000;

/// p50 of `WAKES` cold wake-ups.
fn cold_wake(subject: &Subject) -> Duration {
    let (tx, rx) = mpsc::channel::<Instant>();
    let mut samples = Vec::with_capacity(WAKES);
    for _ in 0..WAKES {
        thread::sleep(IDLE);
        let tx = tx.clone();
        let before = Instant::now();
        subject.submit(move || {
            let _ = tx.send(Instant::now());
        });
        let started = rx.recv().expect("the task ran");
        samples.push(started.saturating_duration_since(before));
    }
    median(&mut samples)
}

/// Nanoseconds per task for `TASKS` tiny tasks from one outside thread.
fn throughput(subject: &Subject) -> Duration {
    static DONE: AtomicUsize = AtomicUsize::new(0);
    DONE.store(0, Ordering::Relaxed);
    let started = Instant::now();
    for _ in 0..TASKS {
        subject.submit(|| {
            DONE.fetch_add(1, Ordering::Relaxed);
        });
    }
    while DONE.load(Ordering::Relaxed) < TASKS {
        thread::yield_now();
    }
    started.elapsed() / TASKS as u32
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// Another process spinning on one core; killed on drop.
struct Neighbour(Child);

impl Neighbour {
    fn on_core(core: usize) -> Option<Neighbour> {
        // A bounded loop (minutes in dash), in case this process dies
        // without running destructors; one process, so `kill` stops it.
        Command::new("taskset")
            .args([
                "-c",
                &core.to_string(),
                "sh",
                "-c",
                "i=0; while [ $i -lt 300000000 ]; do i=$((i+1)); done",
            ])
            .stdin(Stdio::null())
            .spawn()
            .ok()
            .map(Neighbour)
    }
}

impl Drop for Neighbour {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|arg| arg == "--quick" || arg == "--test");
    let value_of = |flag: &str| args.iter().position(|arg| arg == flag).and_then(|i| args.get(i + 1));
    let rounds = value_of("--rounds")
        .and_then(|n| n.parse().ok())
        .unwrap_or(if quick { 1 } else { 3 });
    let only_quiet = args.iter().any(|arg| arg == "--quiet-only");
    let cores: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|core| core.id)
        .collect();
    let workers = cores.len().max(1);
    let mut scenarios: Vec<(String, Option<usize>)> = vec![("quiet".to_owned(), None)];
    // `--busy 0,5`: the neighbour on these cores only (many-core machines).
    let busy_only: Option<Vec<usize>> =
        value_of("--busy").map(|list| list.split(',').filter_map(|core| core.parse().ok()).collect());
    if cores.len() > 1 && !only_quiet {
        for &core in cores
            .iter()
            .filter(|core| busy_only.as_ref().map_or(true, |only| only.contains(core)))
        {
            scenarios.push((format!("core {core} busy"), Some(core)));
        }
    }
    println!("contention: {workers} workers, {rounds} rounds, cold wake = p50 of {WAKES}, throughput = {TASKS} tasks");
    println!();
    println!(
        "| scenario | contender | cold wake p50 | vs Off | vs rayon | throughput ns/task | vs Off | vs rayon | pin releases |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (scenario, busy) in scenarios {
        let _neighbour = match busy {
            None => None,
            Some(core) => match Neighbour::on_core(core) {
                Some(neighbour) => Some(neighbour),
                None => {
                    println!("| {scenario} | (skipped: no taskset) | | | | | | | |");
                    continue;
                }
            },
        };
        thread::sleep(Duration::from_millis(100));
        let mut wakes = vec![Vec::new(); Contender::ALL.len()];
        let mut rates = vec![Vec::new(); Contender::ALL.len()];
        let mut releases = vec![0u64; Contender::ALL.len()];
        for _ in 0..rounds {
            for (i, &contender) in Contender::ALL.iter().enumerate() {
                let subject = Subject::new(contender, workers);
                thread::sleep(Duration::from_millis(20));
                wakes[i].push(cold_wake(&subject));
                rates[i].push(throughput(&subject));
                releases[i] += subject.pin_releases();
            }
        }
        let wake: Vec<Duration> = wakes.iter_mut().map(|w| median(w)).collect();
        let rate: Vec<Duration> = rates.iter_mut().map(|r| median(r)).collect();
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-12);
        let off = Contender::ALL.iter().position(|&c| c == Contender::Off).unwrap();
        let rayon = Contender::ALL.iter().position(|&c| c == Contender::Rayon).unwrap();
        for (i, contender) in Contender::ALL.iter().enumerate() {
            println!(
                "| {scenario} | {} | {:.1} µs | {:.2}× | {:.2}× | {} | {:.2}× | {:.2}× | {} |",
                contender.name(),
                wake[i].as_secs_f64() * 1e6,
                ratio(wake[i], wake[off]),
                ratio(wake[i], wake[rayon]),
                rate[i].as_nanos(),
                ratio(rate[i], rate[off]),
                ratio(rate[i], rate[rayon]),
                releases[i],
            );
        }
    }
}
