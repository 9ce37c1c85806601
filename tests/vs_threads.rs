//! The `vs_threads` example for real, with small arguments: `cargo run
//! --example vs_threads` as a child process (the same cargo and target
//! directory as the test run), whose table must have one row per variant,
//! every one of them having completed every job, with figures that parse.
//! No timing is asserted: the machine may be busy.

use std::collections::HashMap;

mod common;
use common::*;

/// One row of the table.
#[derive(Debug)]
struct Row {
    completed: u64,
    wall_ms: f64,
    jobs_per_s: f64,
    /// `None` where the platform has no `/proc/self/status`.
    peak_rss_mib: Option<f64>,
    threads: u64,
    spawn_errors: u64,
}

const COLUMNS: [&str; 7] = [
    "variant",
    "completed",
    "wall_ms",
    "jobs_per_s",
    "peak_rss_mib",
    "threads",
    "spawn_errors",
];

/// The table: the rows after the header line, up to the first blank line,
/// by variant (in order).
fn parse_table(stdout: &str) -> Vec<(String, Row)> {
    let mut lines = stdout.lines().skip_while(|l| !l.starts_with("variant"));
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_else(|| panic!("no table header:\n{stdout}"))
        .split_whitespace()
        .collect();
    assert_eq!(header, COLUMNS, "table header");
    lines
        .take_while(|l| !l.trim().is_empty())
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(cells.len(), COLUMNS.len(), "row {line:?}");
            let int = |i: usize| -> u64 {
                cells[i]
                    .parse()
                    .unwrap_or_else(|_| panic!("{} is not a count in {line:?}", COLUMNS[i]))
            };
            let real = |i: usize| -> f64 {
                let x: f64 = cells[i]
                    .parse()
                    .unwrap_or_else(|_| panic!("{} is not a number in {line:?}", COLUMNS[i]));
                assert!(x.is_finite() && x >= 0.0, "{} out of range in {line:?}", COLUMNS[i]);
                x
            };
            let row = Row {
                completed: int(1),
                wall_ms: real(2),
                jobs_per_s: real(3),
                peak_rss_mib: (cells[4] != "-").then(|| real(4)),
                threads: int(5),
                spawn_errors: int(6),
            };
            (cells[0].to_string(), row)
        })
        .collect()
}

/// Runs the example and checks its table against `jobs` and the expected
/// variants; returns the rows.
fn run_and_check(args: &[&str], jobs: u64, variants: &[&str]) -> HashMap<String, Row> {
    let (code, stdout, stderr) = run_example("vs_threads", args);
    assert_eq!(code, Some(0), "vs_threads failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    let rows = parse_table(&stdout);
    let names: Vec<&str> = rows.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, variants, "one row per variant, in order:\n{stdout}");
    let linux = std::path::Path::new("/proc/self/status").exists();
    for (name, row) in &rows {
        assert_eq!(row.completed, jobs, "{name} did not complete every job:\n{stdout}");
        assert!(row.wall_ms > 0.0 && row.jobs_per_s > 0.0, "{name}: {row:?}");
        // jobs_per_s is completed / wall: the two columns must agree
        // (both are rounded for print, so loosely).
        let implied = jobs as f64 / (row.wall_ms / 1e3);
        assert!(
            (row.jobs_per_s - implied).abs() <= implied * 0.05 + 2.0,
            "{name}: jobs_per_s {} but {jobs} jobs in {} ms",
            row.jobs_per_s,
            row.wall_ms
        );
        if linux {
            let rss = row
                .peak_rss_mib
                .unwrap_or_else(|| panic!("{name}: no peak RSS on Linux"));
            assert!(rss > 0.0, "{name}: peak RSS {rss}");
        }
        assert!(row.threads >= 1, "{name}: no thread ran a job");
        if let Some(cap) = name.strip_prefix("pool/") {
            let cap: u64 = cap.parse().unwrap();
            assert!(row.threads <= cap, "{name}: {} workers started", row.threads);
            assert_eq!(row.spawn_errors, 0, "{name}: the pool variant spawns no job threads");
        } else {
            assert!(row.threads <= jobs, "{name}: {} threads alive at once", row.threads);
        }
    }
    rows.into_iter().collect()
}

#[test]
fn default_capacities_vs_a_thread_per_job() {
    run_and_check(
        &["--jobs", "2000", "--job-us", "200"],
        2000,
        &["pool/100", "pool/1000", "pool/10000", "threads"],
    );
}

#[test]
fn chosen_capacities_and_cpu_jobs() {
    let rows = run_and_check(
        &["--jobs", "300", "--job-us", "100", "--work", "spin", "--caps", "1,8"],
        300,
        &["pool/1", "pool/8", "threads"],
    );
    assert_eq!(
        rows["pool/1"].threads, 1,
        "a pool of capacity 1 runs jobs on one thread"
    );
}

#[test]
fn refuses_bad_arguments() {
    for args in [&["--jobs", "0"][..], &["--caps", "0"], &["--work", "nap"], &["--bogus"]] {
        let (code, stdout, _) = run_example("vs_threads", args);
        assert_eq!(code, Some(2), "{args:?} exited with {code:?}:\n{stdout}");
    }
}
