//! The examples run for real: `cargo run --example ...` as a child process
//! (examples are not binaries of the package, so there is no
//! `CARGO_BIN_EXE_*` for them). The child uses the same cargo and the same
//! target directory as the test run, so it only has to build the example.

mod common;
use common::*;

#[test]
fn tune_under_load_runs_and_prints_one_line_per_tick() {
    for args in [&["--ticks", "5"][..], &["--ticks", "5", "--manual"][..]] {
        tune_under_load_prints_one_line_per_tick(args);
    }
}

fn tune_under_load_prints_one_line_per_tick(args: &[&str]) {
    let (code, stdout, stderr) = run_example("tune_under_load", args);
    let ok = code == Some(0);
    assert!(ok, "the example failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    let ticks: Vec<&str> = stdout.lines().filter(|l| l.starts_with("t=")).collect();
    assert!(
        ticks.len() >= 5,
        "expected at least 5 tick lines, got {}:\n{stdout}",
        ticks.len()
    );
    for line in &ticks {
        for part in ["cap ", "busy ", "queued ", "/s", "["] {
            assert!(line.contains(part), "tick line without {part:?}: {line:?}");
        }
    }
    assert!(
        stdout.lines().any(|l| l.starts_with("done:")),
        "no summary line:\n{stdout}"
    );
}

#[test]
fn quickstart_collects_every_result_and_shuts_down() {
    let (code, stdout, stderr) = run_example("quickstart", &[]);
    assert_eq!(
        code,
        Some(0),
        "the example failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // Ten tasks, each reporting its square, in order after sorting.
    let squares: Vec<u64> = stdout
        .lines()
        .filter(|l| l.starts_with("task "))
        .map(|l| {
            let value = l.split("->").nth(1).expect("a '->' in each task line");
            value.split_whitespace().next().unwrap().parse().expect("a number")
        })
        .collect();
    assert_eq!(squares, (0..10u64).map(|t| t * t).collect::<Vec<_>>(), "{stdout}");
    assert!(stdout.contains("sum 1..=100 = 5050"), "{stdout}");
    assert!(stdout.contains("11 tasks completed; pool shut down"), "{stdout}");
}
