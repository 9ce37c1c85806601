//! Observing a pool live over HTTP: stats, per-worker stats and Prometheus
//! metrics while a load runs.
//!
//! A generator submits tasks of varying duration (mostly short sleeps, like
//! I/O, some short bursts of CPU work) at a rate that swells and ebbs, and a
//! tuner changes the pool's capacity every second. Meanwhile a tiny
//! hand-written HTTP/1.1 server (`std::net`, one thread per connection, no
//! framework) serves the pool's figures on 127.0.0.1:
//!
//! * `GET /stats`: `pool.stats()` as plain text, one `name: value` a line
//! * `GET /stats.json`: the same plus `pool.worker_stats()`, as JSON
//! * `GET /metrics`: Prometheus text exposition format (gauges, counters,
//!   per-worker series labelled `worker="i"`)
//! * `GET /workers`: a per-worker table
//! * `GET /`: the list of endpoints; anything else is `404 Not Found`
//!
//! The first line on stdout is `listening on http://ADDR`; then one status
//! line per second, and a `done:` line at the end.
//!
//! ```sh
//! cargo run --release --example observe                        # 10 s on a free port
//! cargo run --release --example observe -- --port 9100 --seconds 60
//! cargo run --release --example observe -- --seconds 0         # until killed
//! curl -s localhost:9100/metrics | grep busy
//! watch -n 0.5 curl -s localhost:9100/workers
//! ```

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use stealpool::{Pool, Stats, WorkerState, WorkerStats};

const MAX_CAPACITY: usize = 8;
/// The capacities the tuner cycles through, one a second.
const TUNE_PLAN: [usize; 8] = [2, 4, 8, 6, 3, 1, 5, 8];
const QUEUE_LIMIT: usize = 2000;
/// A request head larger than this is refused.
const MAX_HEAD: usize = 8 * 1024;

struct Args {
    port: u16,
    /// 0: run until killed.
    seconds: f64,
}

fn usage() -> ! {
    eprintln!("usage: observe [--port PORT] [--seconds N]   (defaults: port 0 = any free one, 10 s; 0 s = forever)");
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut parsed = Args { port: 0, seconds: 10.0 };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_string(), Some(value.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| args.next()).unwrap_or_else(|| usage());
        match name.as_str() {
            "--port" => parsed.port = value().parse().unwrap_or_else(|_| usage()),
            "--seconds" => {
                parsed.seconds = value()
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .unwrap_or_else(|| usage())
            }
            _ => usage(),
        }
    }
    parsed
}

/// A xorshift generator: enough randomness for a load, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Spins for `d`: CPU work, not sleep.
fn busy(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// Submits tasks until `stop`: 85 % sleep 0.1-4 ms (I/O-like), 15 % spin
/// 50-400 µs (1.8 ms on average); the rate swells from 300/s to 3300/s and
/// back every 6 s: more than the pool runs at low capacities (a worker does
/// about 550 a second), so a queue builds up, up to the limit (backpressure).
fn generate(pool: &Pool, stop: &AtomicBool) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let start = Instant::now();
    let mut last = start;
    let mut owed = 0.0;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let phase = (now - start).as_secs_f64() / 6.0;
        let rate = 300.0 + 3000.0 * 0.5 * (1.0 - (2.0 * std::f64::consts::PI * phase).cos());
        owed += rate * (now - last).as_secs_f64();
        last = now;
        while owed >= 1.0 && !stop.load(Ordering::Relaxed) {
            owed -= 1.0;
            let r = rng.next();
            let (spin, d) = if r % 100 < 85 {
                (false, Duration::from_micros(100 + (r >> 8) % 3901))
            } else {
                (true, Duration::from_micros(50 + (r >> 8) % 351))
            };
            let task = move || if spin { busy(d) } else { thread::sleep(d) };
            // Blocks while the queue is full (backpressure); waits at most
            // 100 ms so that `stop` is noticed.
            match pool.submit_timeout(task, Duration::from_millis(100)) {
                Ok(()) => {}
                Err(e) if e.is_timeout() => {}
                Err(_) => return,
            }
        }
        thread::sleep(Duration::from_millis(2));
    }
}

fn state_name(state: WorkerState) -> &'static str {
    match state {
        WorkerState::NotStarted => "not_started",
        WorkerState::Busy => "busy",
        WorkerState::Idle => "idle",
        WorkerState::Sleeping => "sleeping",
        WorkerState::Suspended => "suspended",
        _ => "other",
    }
}

/// Every state a worker can report, for the one-hot `stealpool_worker_state`.
const STATES: [&str; 5] = ["not_started", "busy", "idle", "sleeping", "suspended"];

/// The figures of one `Stats`, by name, as integers (wait time apart).
fn stat_fields(st: &Stats) -> [(&'static str, u64); 14] {
    [
        ("capacity", st.capacity as u64),
        ("max_capacity", st.max_capacity as u64),
        ("live_workers", st.live_workers as u64),
        ("busy_workers", st.busy_workers as u64),
        ("sleeping_workers", st.sleeping_workers as u64),
        ("queued", st.queued as u64),
        ("submitted", st.submitted),
        ("completed", st.completed),
        ("panicked", st.panicked),
        ("stolen", st.stolen),
        ("blocked_submitters", st.blocked_submitters as u64),
        ("wait_count", st.wait_count),
        ("rejected", st.rejected),
        ("live_states", st.live_states as u64),
    ]
}

fn stats_text(st: &Stats, uptime: Duration) -> String {
    let mut out = String::new();
    for (name, value) in stat_fields(st) {
        let _ = writeln!(out, "{name}: {value}");
    }
    let _ = writeln!(out, "wait_time_seconds: {:.6}", st.wait_time.as_secs_f64());
    let _ = writeln!(out, "uptime_seconds: {:.3}", uptime.as_secs_f64());
    out
}

fn stats_json(st: &Stats, workers: &[WorkerStats], uptime: Duration) -> String {
    let mut out = String::from("{");
    for (name, value) in stat_fields(st) {
        let _ = write!(out, "\"{name}\":{value},");
    }
    let _ = write!(
        out,
        "\"wait_time_seconds\":{:.6},\"uptime_seconds\":{:.3},\"workers\":[",
        st.wait_time.as_secs_f64(),
        uptime.as_secs_f64()
    );
    for (i, w) in workers.iter().enumerate() {
        let _ = write!(
            out,
            "{}{{\"index\":{},\"state\":\"{}\",\"tasks_run\":{},\"steals\":{},\"parks\":{}}}",
            if i == 0 { "" } else { "," },
            w.index,
            state_name(w.state),
            w.tasks_run,
            w.steals,
            w.parks
        );
    }
    out.push_str("]}\n");
    out
}

/// One metric family: `# HELP`, `# TYPE`, then its samples.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: impl IntoIterator<Item = (String, String)>) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

fn metrics(st: &Stats, workers: &[WorkerStats], uptime: Duration) -> String {
    let mut out = String::new();
    let one = |v: u64| [(String::new(), v.to_string())];
    let gauges: [(&str, usize, &str); 8] = [
        (
            "capacity",
            st.capacity,
            "Workers that may run tasks at once (as last tuned).",
        ),
        ("max_capacity", st.max_capacity, "The ceiling for tune."),
        ("live_workers", st.live_workers, "Worker threads alive."),
        ("busy_workers", st.busy_workers, "Workers running a task."),
        (
            "sleeping_workers",
            st.sleeping_workers,
            "Workers parked for lack of work.",
        ),
        (
            "queued_tasks",
            st.queued,
            "Tasks accepted and not yet started (an estimate).",
        ),
        (
            "blocked_submitters",
            st.blocked_submitters,
            "Submitters waiting for room in a full queue.",
        ),
        (
            "live_states",
            st.live_states,
            "Per-worker states alive (FuncPool with state).",
        ),
    ];
    for (name, value, help) in gauges {
        family(&mut out, &format!("stealpool_{name}"), "gauge", help, one(value as u64));
    }
    let counters: [(&str, u64, &str); 6] = [
        ("tasks_submitted_total", st.submitted, "Tasks accepted."),
        (
            "tasks_completed_total",
            st.completed,
            "Tasks that finished running, panicked or not.",
        ),
        ("tasks_panicked_total", st.panicked, "Tasks that panicked."),
        (
            "steals_total",
            st.stolen,
            "Times a worker took work from another worker's deque.",
        ),
        (
            "submit_waits_total",
            st.wait_count,
            "Submits that had to wait for room.",
        ),
        (
            "submits_rejected_total",
            st.rejected,
            "Submits refused (closed, full or timed out).",
        ),
    ];
    for (name, value, help) in counters {
        family(&mut out, &format!("stealpool_{name}"), "counter", help, one(value));
    }
    family(
        &mut out,
        "stealpool_submit_wait_seconds_total",
        "counter",
        "Time submits spent waiting for room.",
        [(String::new(), format!("{:.6}", st.wait_time.as_secs_f64()))],
    );
    let per_worker = |f: fn(&WorkerStats) -> u64| {
        workers
            .iter()
            .map(move |w| (format!("{{worker=\"{}\"}}", w.index), f(w).to_string()))
            .collect::<Vec<_>>()
    };
    family(
        &mut out,
        "stealpool_worker_tasks_run_total",
        "counter",
        "Tasks run, per worker.",
        per_worker(|w| w.tasks_run),
    );
    family(
        &mut out,
        "stealpool_worker_steals_total",
        "counter",
        "Steals from other workers' deques, per worker.",
        per_worker(|w| w.steals),
    );
    family(
        &mut out,
        "stealpool_worker_parks_total",
        "counter",
        "Times a worker parked (asleep or suspended).",
        per_worker(|w| w.parks),
    );
    family(
        &mut out,
        "stealpool_worker_state",
        "gauge",
        "1 for the state each worker is in, 0 for the others.",
        workers.iter().flat_map(|w| {
            let now = state_name(w.state);
            STATES.iter().map(move |s| {
                (
                    format!("{{worker=\"{}\",state=\"{s}\"}}", w.index),
                    u8::from(now == *s).to_string(),
                )
            })
        }),
    );
    family(
        &mut out,
        "stealpool_example_uptime_seconds",
        "gauge",
        "Seconds since the example started.",
        [(String::new(), format!("{:.3}", uptime.as_secs_f64()))],
    );
    out
}

fn workers_table(st: &Stats, workers: &[WorkerStats]) -> String {
    let mut out = format!(
        "capacity {} of max {}, live {}, busy {}, queued {}, completed {}\n\n",
        st.capacity, st.max_capacity, st.live_workers, st.busy_workers, st.queued, st.completed
    );
    let _ = writeln!(
        out,
        "{:>6}  {:<11}  {:>10}  {:>8}  {:>8}",
        "worker", "state", "tasks_run", "steals", "parks"
    );
    for w in workers {
        let _ = writeln!(
            out,
            "{:>6}  {:<11}  {:>10}  {:>8}  {:>8}",
            w.index,
            state_name(w.state),
            w.tasks_run,
            w.steals,
            w.parks
        );
    }
    out
}

const INDEX: &str = "stealpool observe example\n\n\
    GET /stats       pool stats, plain text\n\
    GET /stats.json  pool and per-worker stats, JSON\n\
    GET /metrics     Prometheus text exposition format\n\
    GET /workers     per-worker table\n";

/// Status line, extra headers, content type, body.
type Response = (&'static str, &'static str, &'static str, String);

fn route(method: &str, path: &str, pool: &Pool, started: Instant) -> Response {
    const TEXT: &str = "text/plain; charset=utf-8";
    if method != "GET" && method != "HEAD" {
        return (
            "405 Method Not Allowed",
            "Allow: GET, HEAD\r\n",
            TEXT,
            "method not allowed\n".into(),
        );
    }
    let uptime = started.elapsed();
    match path {
        "/" => ("200 OK", "", TEXT, INDEX.into()),
        "/stats" => ("200 OK", "", TEXT, stats_text(&pool.stats(), uptime)),
        "/stats.json" => {
            let (st, workers) = (pool.stats(), pool.worker_stats());
            ("200 OK", "", "application/json", stats_json(&st, &workers, uptime))
        }
        "/metrics" => {
            let (st, workers) = (pool.stats(), pool.worker_stats());
            (
                "200 OK",
                "",
                "text/plain; version=0.0.4; charset=utf-8",
                metrics(&st, &workers, uptime),
            )
        }
        "/workers" => {
            let (st, workers) = (pool.stats(), pool.worker_stats());
            ("200 OK", "", TEXT, workers_table(&st, &workers))
        }
        _ => ("404 Not Found", "", TEXT, format!("no such page: {path}\n")),
    }
}

/// Reads the request head (request line and headers, up to the blank line).
/// `Ok(None)`: the client closed or sent too much.
fn read_head(stream: &TcpStream) -> io::Result<Option<Vec<String>>> {
    let mut reader = BufReader::new(stream.take(MAX_HEAD as u64));
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            return Ok(Some(lines));
        }
        lines.push(line);
    }
}

/// One connection: one request, one response, close (HTTP/1.1 with
/// `Connection: close`).
fn serve(mut stream: TcpStream, pool: &Pool, started: Instant) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let head = read_head(&stream)?;
    let request_line = head.as_ref().and_then(|lines| lines.first()).map(String::as_str);
    let parts: Vec<&str> = request_line.unwrap_or("").split_whitespace().collect();
    let (method, response) = match parts.as_slice() {
        [method, target, version] if version.starts_with("HTTP/1.") => {
            let path = target.split(['?', '#']).next().unwrap_or("");
            (*method, route(method, path, pool, started))
        }
        _ => (
            "GET",
            (
                "400 Bad Request",
                "",
                "text/plain; charset=utf-8",
                "bad request\n".into(),
            ),
        ),
    };
    let (status, extra, content_type, body) = response;
    let mut reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
         Connection: close\r\n{extra}\r\n",
        body.len()
    );
    if method != "HEAD" {
        reply.push_str(&body);
    }
    stream.write_all(reply.as_bytes())?;
    stream.flush()?;
    stream.shutdown(Shutdown::Write)
}

/// Accepts connections until `stop` (then one more connection wakes it).
fn accept_loop(listener: TcpListener, pool: Pool, stop: Arc<AtomicBool>, started: Instant) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let pool = pool.clone();
        // A thread per connection: a slow client never holds up the others,
        // and the pool under observation does not serve its own figures.
        let spawned = thread::Builder::new().name("http".into()).spawn(move || {
            if let Err(e) = serve(stream, &pool, started) {
                eprintln!("http: {e}");
            }
        });
        if let Err(e) = spawned {
            eprintln!("http: cannot start a thread: {e}");
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args();
    let started = Instant::now();
    let pool = Pool::builder()
        .capacity(TUNE_PLAN[0])
        .max_capacity(MAX_CAPACITY)
        .queue_limit(QUEUE_LIMIT)
        .pin_workers(false)
        .thread_name(|i| format!("observe-{i}"))
        .build()?;

    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], args.port)))?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}");
    println!("endpoints: /stats /stats.json /metrics /workers");

    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let (pool, stop) = (pool.clone(), stop.clone());
        thread::Builder::new()
            .name("http-accept".into())
            .spawn(move || accept_loop(listener, pool, stop, started))?
    };
    let generator = {
        let (pool, stop) = (pool.clone(), stop.clone());
        thread::Builder::new()
            .name("generator".into())
            .spawn(move || generate(&pool, &stop))?
    };

    // The tuner, which also prints a status line a second.
    let deadline = (args.seconds > 0.0).then(|| started + Duration::from_secs_f64(args.seconds));
    for second in 1usize.. {
        let next = started + Duration::from_secs(second as u64);
        if let Some(deadline) = deadline.filter(|deadline| next >= *deadline) {
            thread::sleep(deadline.saturating_duration_since(Instant::now()));
            break;
        }
        thread::sleep(next.saturating_duration_since(Instant::now()));
        let st = pool.stats();
        let wanted = TUNE_PLAN[second % TUNE_PLAN.len()];
        println!(
            "t={second:>3}s cap {} live {} busy {} queued {:>4} completed {:>7}  -> tune({wanted})",
            st.capacity, st.live_workers, st.busy_workers, st.queued, st.completed
        );
        pool.tune(wanted)?;
    }

    stop.store(true, Ordering::SeqCst);
    generator.join().expect("the generator panicked");
    // Drain what is queued at full capacity.
    pool.tune(MAX_CAPACITY)?;
    pool.wait_idle();
    // Wake the accept loop so that it sees `stop`.
    let _ = TcpStream::connect(addr);
    server.join().expect("the server panicked");
    let st = pool.stats();
    println!(
        "done: {} tasks in {:.1}s, {} stolen, {} submits waited {:.3}s in all, {} refused",
        st.completed,
        started.elapsed().as_secs_f64(),
        st.stolen,
        st.wait_count,
        st.wait_time.as_secs_f64(),
        st.rejected
    );
    pool.shutdown();
    Ok(())
}
