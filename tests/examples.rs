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

#[test]
fn offload_counts_every_request_once_and_the_pool_agrees() {
    // A short overload: 150 requests, 1 ms apart, each about as long as
    // the deadline allows two workers to keep up with. The example itself
    // asserts that its counts add up and match the pool's figures; how many
    // make their deadline depends on the machine, so only the sum is
    // checked here.
    let (code, stdout, stderr) = run_example(
        "offload",
        &[
            "--requests",
            "150",
            "--work",
            "20000",
            "--deadline-ms",
            "20",
            "--gap-us",
            "1000",
        ],
    );
    assert_eq!(
        code,
        Some(0),
        "the example failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("answered in time: "))
        .unwrap_or_else(|| panic!("no summary line:\n{stdout}"));
    let total: usize = line
        .trim_start_matches("answered in time: ")
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().unwrap())
        .enumerate()
        .filter(|&(i, _)| i != 1) // the "/150"
        .map(|(_, n)| n)
        .sum();
    assert_eq!(total, 150, "{line}");
    assert!(stdout.contains("pool: completed "), "{stdout}");
}

#[test]
fn early_stop_finds_a_hit_and_accounts_for_every_chunk() {
    let (code, stdout, stderr) = run_example("early_stop", &["--bits", "14", "--chunk", "2048"]);
    assert_eq!(
        code,
        Some(0),
        "the example failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // A miss over 64 times the expected range has odds of about e^-64.
    assert!(stdout.contains("(verified)"), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("chunks: spawned ")), "{stdout}");
}
