//! The `observe` example for real: its HTTP endpoints are fetched with raw
//! HTTP/1.1 requests over a `TcpStream` while its load runs, and what they
//! return is checked for form (valid JSON, well-formed Prometheus text) and
//! for sense (invariants of the figures, a counter that grows).
//!
//! The example is built once with `cargo build --example observe` (the same
//! cargo and target directory as the test run) and its binary is started
//! directly, so the test can stop it: killing `cargo run` would leave the
//! example itself running.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// Building the example (the library is built already): seconds in
/// practice; the bound only catches a hang.
const BUILD_LIMIT: Duration = Duration::from_secs(300);
/// For anything the started example should do: generous, it only catches
/// a hang on a loaded machine.
const LIMIT: Duration = Duration::from_secs(30);

/// The example's binary, built once for all the tests here.
fn example_binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let mut child = Command::new(env!("CARGO"))
            .args([
                "build",
                "--example",
                "observe",
                "--message-format=json-render-diagnostics",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cargo build");
        let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let out = thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let err = thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + BUILD_LIMIT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for cargo") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("cargo build --example observe did not finish within {BUILD_LIMIT:?}");
            }
            thread::sleep(Duration::from_millis(20));
        };
        let (out, err) = (out.join().unwrap(), err.join().unwrap());
        assert!(status.success(), "cargo build --example observe failed:\n{err}");
        // The compiler-artifact message of the example carries its path.
        let line = out
            .lines()
            .find(|l| l.contains("\"compiler-artifact\"") && l.contains("\"executable\":\"") && l.contains("observe"))
            .unwrap_or_else(|| panic!("no executable in cargo's messages:\n{out}"));
        let message = match parse_json(line) {
            Ok(message) => message,
            Err(e) => panic!("cargo's message is not JSON ({e}): {line}"),
        };
        match message.get("executable") {
            Some(Json::Str(path)) => PathBuf::from(path),
            _ => panic!("no executable path in {line}"),
        }
    })
}

/// The running example; killed when dropped (also when a check panics).
struct Example {
    child: Child,
    lines: Receiver<String>,
    addr: SocketAddr,
    first_line: String,
}

impl Example {
    fn start(args: &[&str]) -> Example {
        let mut child = Command::new(example_binary())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the observe example");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first_line = match lines.recv_timeout(LIMIT) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no first line from the example ({e:?})");
            }
        };
        let mut example = Example {
            child,
            lines,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            first_line,
        };
        let addr = example
            .first_line
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| {
                panic!(
                    "the first line is not `listening on http://ADDR`: {:?}",
                    example.first_line
                )
            });
        example.addr = addr
            .trim_end_matches('/')
            .parse()
            .unwrap_or_else(|e| panic!("bad address {addr:?} in the first line: {e}"));
        assert!(example.addr.ip().is_loopback(), "not on loopback: {}", example.addr);
        assert_ne!(example.addr.port(), 0, "port 0 printed instead of the bound port");
        example
    }

    /// Waits for the example to exit by itself; returns (success, the
    /// stdout lines after the first).
    fn wait(mut self) -> (bool, Vec<String>) {
        let deadline = Instant::now() + LIMIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for the example") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the example did not stop by itself within {LIMIT:?}"
            );
            thread::sleep(Duration::from_millis(20));
        };
        let mut lines = Vec::new();
        loop {
            match self.lines.recv_timeout(LIMIT) {
                Ok(line) => lines.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("stdout not closed after the example exited"),
            }
        }
        (status.success(), lines)
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A response: status code, headers (names lowercased), body.
struct Response {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

/// A raw HTTP/1.1 GET.
fn get(addr: SocketAddr, path: &str) -> Response {
    let mut stream = TcpStream::connect_timeout(&addr, LIMIT).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    stream.set_write_timeout(Some(LIMIT)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: stealpool-test\r\nConnection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("read the response to {path}: {e}"));
    let raw = String::from_utf8(raw).unwrap_or_else(|_| panic!("the response to {path} is not UTF-8"));
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in the response to {path}: {raw:?}"));
    let mut head_lines = head.split("\r\n");
    let status_line = head_lines.next().unwrap();
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "status line {status_line:?}");
    let status = parts
        .next()
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status code in {status_line:?}"));
    let mut headers = HashMap::new();
    for line in head_lines {
        let (name, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("bad header line {line:?}"));
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("no Content-Length in the response to {path}"));
    assert_eq!(length, body.len(), "Content-Length of the response to {path}");
    Response {
        status,
        headers,
        body: body.to_string(),
    }
}

fn get_ok(addr: SocketAddr, path: &str) -> Response {
    let response = get(addr, path);
    assert_eq!(response.status, 200, "GET {path}:\n{}", response.body);
    response
}

#[path = "observe/json.rs"]
mod json;
#[path = "observe/prometheus.rs"]
mod prometheus;

use json::{parse_json, Json};
use prometheus::{check_exposition, Exposition};

// ---- the example ----

/// The `Stats` fields, all counts.
const STAT_KEYS: [&str; 14] = [
    "capacity",
    "max_capacity",
    "live_workers",
    "busy_workers",
    "sleeping_workers",
    "queued",
    "submitted",
    "completed",
    "panicked",
    "stolen",
    "blocked_submitters",
    "wait_count",
    "rejected",
    "live_states",
];

const STATES: [&str; 5] = ["not_started", "busy", "idle", "sleeping", "suspended"];

#[test]
fn serves_stats_json_metrics_and_workers_while_the_load_runs() {
    // Long enough never to end on its own during the test; killed at the end.
    let example = Example::start(&["--seconds", "120"]);
    let addr = example.addr;

    // /stats: `name: value` lines.
    let text = get_ok(addr, "/stats");
    assert!(text.headers["content-type"].starts_with("text/plain"));
    let fields: HashMap<&str, f64> = text
        .body
        .lines()
        .map(|line| {
            let (name, value) = line.split_once(": ").unwrap_or_else(|| panic!("/stats line {line:?}"));
            (
                name,
                value.parse().unwrap_or_else(|_| panic!("/stats value in {line:?}")),
            )
        })
        .collect();
    for key in STAT_KEYS
        .iter()
        .chain(&["wait_time_seconds", "busy_time_seconds", "queue_delay_p99_seconds"])
    {
        assert!(fields.contains_key(key), "/stats lacks {key}:\n{}", text.body);
    }

    // /stats.json: valid JSON, every figure a number, sane figures.
    let json = get_ok(addr, "/stats.json");
    assert!(json.headers["content-type"].starts_with("application/json"));
    let stats = parse_json(&json.body).unwrap_or_else(|e| panic!("/stats.json is not JSON ({e}):\n{}", json.body));
    let count = |key: &str| stats.count(key);
    for key in STAT_KEYS {
        count(key);
    }
    for key in [
        "wait_time_seconds",
        "busy_time_seconds",
        "queue_delay_p50_seconds",
        "queue_delay_p99_seconds",
    ] {
        assert!(
            matches!(stats.get(key), Some(Json::Num(t)) if *t >= 0.0),
            "{key} in {}",
            json.body
        );
    }
    // The pool measures queue delay: p50 <= p99 <= max, a count that grows.
    let delay = |key: &str| match stats.get(key) {
        Some(Json::Num(t)) => *t,
        other => panic!("{key}: {other:?}"),
    };
    assert!(delay("queue_delay_p50_seconds") <= delay("queue_delay_p99_seconds"));
    assert!(delay("queue_delay_p99_seconds") <= delay("queue_delay_max_seconds"));
    // The thread hooks counted at least the live workers' starts.
    assert!(stats.count("threads_started") >= count("live_workers"), "{}", json.body);
    let max = count("max_capacity") as usize;
    assert!(
        (1..=max as u64).contains(&count("capacity")),
        "capacity out of range:\n{}",
        json.body
    );
    assert!(count("busy_workers") <= count("live_workers"), "{}", json.body);
    assert!(count("live_workers") <= max as u64, "{}", json.body);
    assert!(count("completed") <= count("submitted"), "{}", json.body);
    let Some(Json::Arr(workers)) = stats.get("workers") else {
        panic!("no workers array in /stats.json:\n{}", json.body);
    };
    // One entry per slot that has or had a thread (threads start on demand).
    assert!(workers.len() <= max, "more entries than slots:\n{}", json.body);
    for (i, worker) in workers.iter().enumerate() {
        assert_eq!(worker.count("index"), i as u64);
        for key in ["tasks_run", "steals", "parks"] {
            worker.count(key);
        }
        assert!(
            matches!(worker.get("busy_seconds"), Some(Json::Num(t)) if *t >= 0.0),
            "worker {i}: {worker:?}"
        );
        assert!(
            matches!(worker.get("state"), Some(Json::Str(s)) if STATES.contains(&s.as_str())),
            "worker {i}: {worker:?}"
        );
    }

    // /metrics: well-formed exposition, the expected families, per-worker
    // series, a completed counter that grows while the load runs.
    let metrics = get_ok(addr, "/metrics");
    assert!(metrics.headers["content-type"].starts_with("application/openmetrics-text"));
    let first = check_exposition(&metrics.body);
    for (name, kind) in [
        ("stealpool_capacity", "gauge"),
        ("stealpool_live_workers", "gauge"),
        ("stealpool_busy_workers", "gauge"),
        ("stealpool_queued_tasks", "gauge"),
        ("stealpool_tasks_submitted", "counter"),
        ("stealpool_tasks_completed", "counter"),
        ("stealpool_steals", "counter"),
        ("stealpool_busy_seconds", "counter"),
        ("stealpool_queue_delay_tasks", "counter"),
        ("stealpool_queue_delay_p50_seconds", "gauge"),
        ("stealpool_queue_delay_p99_seconds", "gauge"),
        ("stealpool_worker_tasks_run", "counter"),
        ("stealpool_worker_busy_seconds", "counter"),
        ("stealpool_worker_state", "gauge"),
    ] {
        assert_eq!(
            first.types.get(name).map(String::as_str),
            Some(kind),
            "family {name}:\n{}",
            metrics.body
        );
    }
    // Series for the slots that have or had a thread: 0..listed, no gaps.
    let series = |i: usize| format!("stealpool_worker_tasks_run_total{{worker=\"{i}\"}}");
    let listed = (0..max).take_while(|&i| first.samples.contains_key(&series(i))).count();
    assert!(
        (listed..max).all(|i| !first.samples.contains_key(&series(i))),
        "gaps in the per-worker series:\n{}",
        metrics.body
    );
    for i in 0..listed {
        let busy = format!("stealpool_worker_busy_seconds_total{{worker=\"{i}\"}}");
        assert!(first.samples.contains_key(&busy), "no {busy}:\n{}", metrics.body);
        let in_one_state: f64 = STATES
            .iter()
            .map(|s| first.samples[&format!("stealpool_worker_state{{worker=\"{i}\",state=\"{s}\"}}")])
            .sum();
        assert_eq!(in_one_state, 1.0, "worker {i} is in {in_one_state} states");
    }
    let completed = |e: &Exposition| e.samples["stealpool_tasks_completed_total"];
    let deadline = Instant::now() + LIMIT;
    loop {
        thread::sleep(Duration::from_millis(300));
        let again = get_ok(addr, "/metrics");
        let second = check_exposition(&again.body);
        if completed(&second) > completed(&first) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "stealpool_tasks_completed_total did not grow past {} within {LIMIT:?}",
            completed(&first)
        );
    }

    // /workers: a header and one row per slot that has or had a thread.
    let table = get_ok(addr, "/workers");
    let rows: Vec<&str> = table
        .body
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert!(table
        .body
        .lines()
        .any(|l| l.contains("worker") && l.contains("state") && l.contains("tasks_run") && l.contains("busy_ms")));
    assert!((1..=max).contains(&rows.len()), "/workers rows:\n{}", table.body);
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells.len(), 6, "row {row:?}");
        assert_eq!(cells[0], i.to_string());
        assert!(STATES.contains(&cells[1]), "row {row:?}");
        assert!(cells[2..].iter().all(|c| c.parse::<u64>().is_ok()), "row {row:?}");
    }

    // Anything else: 404.
    for path in ["/nope", "/stats/x", "/metricsx"] {
        assert_eq!(get(addr, path).status, 404, "GET {path}");
    }
    drop(example);
}

#[test]
fn stops_by_itself_after_the_given_seconds() {
    let example = Example::start(&["--seconds", "1"]);
    let (ok, lines) = example.wait();
    assert!(ok, "the example failed:\n{}", lines.join("\n"));
    let last = lines.last().map(String::as_str).unwrap_or("");
    assert!(
        last.starts_with("done: "),
        "no done line at the end:\n{}",
        lines.join("\n")
    );
}
