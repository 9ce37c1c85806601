//! The examples run for real: `cargo run --example ...` as a child process
//! (examples are not binaries of the package, so there is no
//! `CARGO_BIN_EXE_*` for them). The child uses the same cargo and the same
//! target directory as the test run, so it only has to build the example.

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Building the example (the library is already built) plus a 0.5 s run:
/// seconds in practice. The bound only catches a hung example.
const LIMIT: Duration = Duration::from_secs(300);

/// Runs `cargo run --quiet --example NAME -- ARGS`; returns (success,
/// stdout, stderr). Kills the child and panics after LIMIT.
fn run_example(name: &str, args: &[&str]) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--example", name, "--"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cargo");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for cargo") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "example {name} did not finish within {LIMIT:?}; stdout so far:\n{}",
                out_reader.join().unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    (
        status.success(),
        out_reader.join().unwrap_or_default(),
        err_reader.join().unwrap_or_default(),
    )
}

#[test]
fn tune_under_load_runs_and_prints_one_line_per_tick() {
    let (ok, stdout, stderr) = run_example("tune_under_load", &["--ticks", "5"]);
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
