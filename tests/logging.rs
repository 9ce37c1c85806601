//! Where the pool's messages go: through the `log` facade (the default
//! feature) or, without it, to stderr once per pool; and a task's panic is
//! printed once (by std's panic hook), never repeated by the pool.
//!
//! The stderr checks run this test binary again as a child process (the
//! `child_*` tests do nothing unless `STEALPOOL_LOGGING_CHILD` is set) and
//! read what it wrote.

mod common;
use common::*;

use std::process::Command;

const CHILD: &str = "STEALPOOL_LOGGING_CHILD";
const MESSAGE: &str = "expected panic 7f3a";

/// Five tasks panic in a pool without a panic handler; then a hook panics
/// five times.
#[test]
fn child_panics_without_a_handler() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let pool = named_builder("lg-child-", 1).build().unwrap();
    for _ in 0..5 {
        pool.submit(|| panic!("{MESSAGE}")).unwrap();
    }
    pool.wait_idle();
    assert_eq!(pool.stats().panicked, 5);
    pool.shutdown();
    let pool = named_builder("lg-hook-", 1)
        .on_task_end(|_| panic!("hook {MESSAGE}"))
        .build()
        .unwrap();
    for _ in 0..5 {
        pool.submit(|| ()).unwrap();
    }
    pool.wait_idle();
    assert_eq!(pool.stats().hook_panics, 5);
    pool.shutdown();
}

/// A pool whose `thread_name` panics for every worker: each thread starts
/// under the default name, four starts in all (one on the first submit,
/// three more as `tune(4)` finds queued work).
fn pool_whose_thread_names_panic() {
    let pool = stealpool::Pool::builder()
        .capacity(1)
        .max_capacity(4)
        .pin_workers(false)
        .thread_name(|i| panic!("thread_name {MESSAGE} {i}"))
        .build()
        .unwrap();
    let (release, gate) = std::sync::mpsc::channel::<()>();
    pool.submit(move || gate.recv().unwrap()).unwrap();
    for _ in 0..3 {
        pool.submit(|| ()).unwrap();
    }
    pool.tune(4).unwrap();
    assert_eq!(pool.stats().live_workers, 4, "every slot started a thread");
    release.send(()).unwrap();
    pool.wait_idle();
    pool.shutdown();
}

#[test]
fn child_thread_names_panic() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    pool_whose_thread_names_panic();
}

/// Runs `test` of this binary as a child; returns its stderr.
fn child_stderr(test: &str) -> String {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run the test binary as a child");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "the child failed:\n{stderr}");
    stderr
}

#[test]
fn a_task_panic_is_printed_once_not_repeated_by_the_pool() {
    let _serial = serial();
    let stderr = child_stderr("child_panics_without_a_handler");
    let task_lines = stderr
        .lines()
        .filter(|l| l.contains(MESSAGE) && !l.contains("hook"))
        .count();
    // std's panic hook prints each task's message once; the pool never
    // prints the message again.
    assert_eq!(task_lines, 5, "each task's message once:\n{stderr}");
    let own_lines = stderr.lines().filter(|l| l.starts_with("stealpool:")).count();
    if cfg!(feature = "log") {
        // No logger installed: the pool's records go nowhere.
        assert_eq!(own_lines, 0, "the pool wrote to stderr itself:\n{stderr}");
    } else {
        // One line per kind of message per pool: the task panics (first
        // pool) and the hook panics (second pool).
        assert_eq!(own_lines, 2, "once per kind per pool:\n{stderr}");
    }
}

#[test]
fn a_thread_start_trouble_is_said_once_per_pool_whatever_the_sink() {
    let _serial = serial();
    let stderr = child_stderr("child_thread_names_panic");
    let own_lines = stderr.lines().filter(|l| l.starts_with("stealpool:")).count();
    // Without `log`: one line for four fallbacks. With it and no logger
    // installed: nothing on stderr from the pool.
    let expected = if cfg!(feature = "log") { 0 } else { 1 };
    assert_eq!(own_lines, expected, "once per pool:\n{stderr}");
}

#[cfg(feature = "log")]
mod through_log {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    /// Every record of target `stealpool`.
    static RECORDS: Mutex<Vec<(log::Level, String)>> = Mutex::new(Vec::new());

    struct Capture;

    impl log::Log for Capture {
        fn enabled(&self, _: &log::Metadata) -> bool {
            true
        }
        fn log(&self, record: &log::Record) {
            if record.target() == "stealpool" {
                RECORDS
                    .lock()
                    .unwrap()
                    .push((record.level(), record.args().to_string()));
            }
        }
        fn flush(&self) {}
    }

    #[test]
    fn task_and_hook_panics_are_log_records_one_per_event() {
        let _serial = serial();
        let _watchdog = Watchdog::new("log records", 60);
        log::set_logger(&Capture).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
        let pool = named_builder("lg-log-", 1)
            .on_thread_start(|_| panic!("start {MESSAGE}"))
            .build()
            .unwrap();
        for _ in 0..3 {
            pool.submit(|| panic!("{MESSAGE}")).unwrap();
        }
        pool.wait_idle();
        pool.shutdown();
        assert!(wait_until(Duration::from_secs(10), || RECORDS.lock().unwrap().len() >= 4));
        let records = RECORDS.lock().unwrap().clone();
        let tasks = records
            .iter()
            .filter(|(level, text)| {
                *level == log::Level::Error && text.contains("a task panicked") && text.contains(MESSAGE)
            })
            .count();
        let hooks = records
            .iter()
            .filter(|(level, text)| {
                *level == log::Level::Warn && text.contains("on_thread_start") && text.contains(MESSAGE)
            })
            .count();
        assert_eq!((tasks, hooks), (3, 1), "{records:?}");
        // Four threads fell back to the default name: one fact, one record.
        pool_whose_thread_names_panic();
        let names = RECORDS
            .lock()
            .unwrap()
            .iter()
            .filter(|(level, text)| *level == log::Level::Warn && text.contains("thread_name closure panicked"))
            .count();
        assert_eq!(names, 1, "{:?}", RECORDS.lock().unwrap());
    }
}
