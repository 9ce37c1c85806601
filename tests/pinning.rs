//! Where workers run: home cores handed out least used first across pools,
//! exact placement with `pin_to_cores`, no placement with `Pinning::Off`,
//! and adaptive pinning letting a worker off a core that another thread
//! keeps busy.
//!
//! Affinity is read from inside the workers (`/proc/thread-self/status`,
//! Linux), so these tests check what the OS applied, not only what the pool
//! reports.
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use stealpool::{Pinning, Pool};

/// The cores the calling thread may run on.
fn my_cores() -> BTreeSet<usize> {
    let status = std::fs::read_to_string("/proc/thread-self/status").expect("/proc/thread-self/status");
    let list = status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list in status")
        .trim();
    let mut cores = BTreeSet::new();
    for part in list.split(',') {
        match part.split_once('-') {
            Some((a, b)) => cores.extend(a.parse::<usize>().unwrap()..=b.parse::<usize>().unwrap()),
            None => {
                cores.insert(part.parse::<usize>().unwrap());
            }
        }
    }
    cores
}

/// The cores each started worker of `pool` may run on, read by a task on
/// that worker: `capacity` tasks meet at a barrier so each runs on its own
/// worker.
fn worker_cores(pool: &Pool) -> Vec<(Option<usize>, BTreeSet<usize>)> {
    let n = pool.capacity();
    let barrier = Arc::new(std::sync::Barrier::new(n));
    let (tx, rx) = mpsc::channel();
    for _ in 0..n {
        let (barrier, tx) = (barrier.clone(), tx.clone());
        pool.submit(move || {
            barrier.wait();
            let _ = tx.send((thread::current().name().map(str::to_owned), my_cores()));
        })
        .unwrap();
    }
    let mut seen = Vec::new();
    for _ in 0..n {
        seen.push(rx.recv_timeout(SOON).expect("a worker reported its cores"));
    }
    pool.wait_idle();
    let stats = pool.worker_stats();
    seen.into_iter()
        .map(|(name, cores)| {
            let index: usize = name
                .and_then(|name| name.rsplit('-').next().and_then(|i| i.parse().ok()))
                .expect("worker named with its index");
            (stats[index].home_core, cores)
        })
        .collect()
}

fn available() -> usize {
    core_ids().len()
}

fn core_ids() -> BTreeSet<usize> {
    my_cores()
}

#[test]
fn two_default_pools_start_on_disjoint_cores() {
    let _s = serial();
    let _w = Watchdog::new("two_default_pools_start_on_disjoint_cores", 60);
    let n = available();
    if n < 2 {
        println!("one core: nothing to spread");
        return;
    }
    // Default pinning (the shared builder turns it off for other tests).
    let a = named_builder("pin-a-", n / 2)
        .pinning(Pinning::default())
        .prealloc(true)
        .build()
        .unwrap();
    let b = named_builder("pin-b-", n - n / 2)
        .pinning(Pinning::default())
        .prealloc(true)
        .build()
        .unwrap();
    let mut used = BTreeSet::new();
    for (pool, name) in [(&a, "a"), (&b, "b")] {
        for (home, cores) in worker_cores(pool) {
            let home = home.unwrap_or_else(|| panic!("pool {name}: a default worker has a home core"));
            assert_eq!(
                cores,
                BTreeSet::from([home]),
                "pool {name}: a quiet worker runs on its home core only"
            );
            assert!(used.insert(home), "core {home} is home to two workers: {used:?}");
        }
    }
    assert_eq!(used.len(), n, "the two pools together cover every core once");
    a.shutdown();
    b.shutdown();
    // Their cores are free again: a new pool of n workers uses them all.
    let c = named_builder("pin-c-", n)
        .pinning(Pinning::default())
        .prealloc(true)
        .build()
        .unwrap();
    let homes: BTreeSet<usize> = worker_cores(&c).into_iter().filter_map(|(home, _)| home).collect();
    assert_eq!(homes.len(), n, "cores freed by exited threads are handed out again");
    c.shutdown();
}

#[test]
fn pin_to_cores_pins_exactly_and_off_leaves_placement_to_the_os() {
    let _s = serial();
    let _w = Watchdog::new("pin_to_cores_pins_exactly_and_off_leaves_placement_to_the_os", 60);
    let all = core_ids();
    let last_position = all.len() - 1;
    let last_core = *all.iter().next_back().unwrap();
    let strict = named_builder("pin-x-", 2)
        .pin_to_cores([last_position])
        .prealloc(true)
        .build()
        .unwrap();
    for (home, cores) in worker_cores(&strict) {
        assert_eq!(home, Some(last_core));
        assert_eq!(cores, BTreeSet::from([last_core]));
    }
    strict.shutdown();
    let off = named_builder("pin-o-", 2)
        .pinning(Pinning::Off)
        .prealloc(true)
        .build()
        .unwrap();
    for (home, cores) in worker_cores(&off) {
        assert_eq!(home, None);
        assert_eq!(cores, all, "an unpinned worker may run on every core");
    }
    assert!(off.worker_stats().iter().all(|w| !w.pinned && w.pin_releases == 0));
    off.shutdown();
}

/// A shell loop that keeps a core busy for about a minute.
const SPIN: &str = "i=0; while [ $i -lt 60000000 ]; do i=$((i+1)); done";

/// Another process spinning on one core, as a busy neighbour would, pinned
/// with `taskset`. Falls back to a spinning thread of this process where
/// `taskset` is missing. Killed on drop.
enum BusyNeighbour {
    Process(std::process::Child),
    Thread(Arc<AtomicBool>, Option<thread::JoinHandle<()>>),
}

impl BusyNeighbour {
    fn on_core(core: usize) -> BusyNeighbour {
        // A bounded loop (about a minute in dash), so a test process killed
        // by its watchdog (no destructors run then) leaves no spinner behind
        // for long; one process, so killing it stops the spin.
        let child = std::process::Command::new("taskset")
            .args(["-c", &core.to_string(), "sh", "-c", SPIN])
            .stdin(std::process::Stdio::null())
            .spawn();
        match child {
            Ok(child) => BusyNeighbour::Process(child),
            Err(_) => {
                let stop = Arc::new(AtomicBool::new(false));
                let spinning = stop.clone();
                let spinner = thread::spawn(move || {
                    core_affinity::set_for_current(core_affinity::CoreId { id: core });
                    while !spinning.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                });
                BusyNeighbour::Thread(stop, Some(spinner))
            }
        }
    }
}

impl Drop for BusyNeighbour {
    fn drop(&mut self) {
        match self {
            BusyNeighbour::Process(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            BusyNeighbour::Thread(stop, spinner) => {
                stop.store(true, Ordering::Relaxed);
                if let Some(spinner) = spinner.take() {
                    let _ = spinner.join();
                }
            }
        }
    }
}

/// A neighbour spinning on worker 0's home core, at the same priority, makes
/// every wake-up of that worker wait for a time slice. Adaptive pinning must
/// notice and let the worker run elsewhere. Wake-ups are measured here too:
/// if this kernel woke the worker promptly anyway (it may preempt the
/// spinner at once), there is nothing to notice and no release is owed.
#[test]
fn adaptive_pinning_lets_a_worker_off_a_busy_core() {
    let _s = serial();
    let _w = Watchdog::new("adaptive_pinning_lets_a_worker_off_a_busy_core", 120);
    let all = core_ids();
    if all.len() < 2 {
        println!("one core: nowhere else to run");
        return;
    }
    let pool = named_builder("pin-ad-", 1)
        .pinning(Pinning::Adaptive)
        .prealloc(true)
        .build()
        .unwrap();
    let home = worker_cores(&pool)[0].0.expect("the worker has a home core");
    let neighbour = BusyNeighbour::on_core(home);
    thread::sleep(Duration::from_millis(20));
    let (tx, rx) = mpsc::channel::<Instant>();
    let mut delays = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    // Cold wake-ups until the worker is let off (or enough samples show
    // its wake-ups were quick).
    while pool.worker_stats()[0].pin_releases == 0 && delays.len() < 200 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(3));
        let tx = tx.clone();
        let before = Instant::now();
        pool.submit(move || {
            let _ = tx.send(Instant::now());
        })
        .unwrap();
        let started = rx.recv_timeout(SOON).expect("the task ran");
        delays.push(started.saturating_duration_since(before));
    }
    let released = pool.worker_stats()[0].pin_releases;
    let mut sorted = delays.clone();
    sorted.sort();
    let median = sorted[sorted.len() / 2];
    println!(
        "{} wake-ups with core {home} busy: median {median:?}, releases {released}",
        delays.len()
    );
    if released == 0 {
        assert!(
            median < Duration::from_micros(500),
            "wake-ups were slow (median {median:?}) but the worker was never let off its busy core"
        );
    } else {
        // Off its core now: it runs on the other cores, and says so.
        let (_, cores) = worker_cores(&pool)[0].clone();
        let others: BTreeSet<usize> = all.iter().copied().filter(|&core| core != home).collect();
        assert_eq!(
            cores, others,
            "a released worker runs on the cores other than its busy home"
        );
        assert!(!pool.worker_stats()[0].pinned);
    }
    drop(neighbour);
    pool.shutdown();
}
