//! Observing a pool live over HTTP: stats, per-worker stats and Prometheus
//! metrics while a load runs, with the crates a service would use:
//! `tiny_http` for the endpoint, `serde_json` for JSON and
//! `prometheus-client` for the OpenMetrics text format.
//!
//! A generator submits tasks of varying duration (mostly short sleeps, like
//! I/O, some short bursts of CPU work) at a rate that swells and ebbs, and a
//! tuner changes the pool's capacity every second. The pool measures how
//! long its tasks wait in the queue (`measure_queue_delay`), and its thread
//! hooks count the worker threads that come and go. Meanwhile these are
//! served on 127.0.0.1:
//!
//! * `GET /stats`: `pool.stats()` as plain text, one `name: value` a line
//! * `GET /stats.json`: the same plus `pool.worker_stats()`, as JSON
//! * `GET /metrics`: OpenMetrics text (gauges, counters, queue delay p50/p99,
//!   per-worker busy time and tasks labelled `worker="i"`)
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
//! curl -s localhost:9100/metrics | grep queue_delay
//! watch -n 0.5 curl -s localhost:9100/workers
//! ```
//!
//! With the crate's `serde` feature, `serde_json::to_value(pool.stats())`
//! gives the JSON of `Stats` directly; this example spells the fields out so
//! it builds without it.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::{json, Value};
use stealpool::{Pool, Stats, WorkerState, WorkerStats};
use tiny_http::{Header, Response, Server};

const MAX_CAPACITY: usize = 8;
/// The capacities the tuner cycles through, one a second.
const TUNE_PLAN: [usize; 8] = [2, 4, 8, 6, 3, 1, 5, 8];
const QUEUE_LIMIT: usize = 2000;

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

/// Thread starts and stops, counted by the pool's thread hooks.
#[derive(Default)]
struct Threads {
    started: AtomicU64,
    stopped: AtomicU64,
}

/// The figures of one `Stats`, by name, as integers (durations apart).
fn stat_fields(st: &Stats) -> [(&'static str, u64); 15] {
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
        ("hook_panics", st.hook_panics),
    ]
}

/// The figures of one `Stats` that are durations, in seconds.
fn stat_seconds(st: &Stats) -> Vec<(&'static str, f64)> {
    let mut fields = vec![
        ("wait_time_seconds", st.wait_time.as_secs_f64()),
        ("busy_time_seconds", st.busy_time.as_secs_f64()),
    ];
    if let Some(delay) = st.queue_delay {
        fields.extend([
            ("queue_delay_p50_seconds", delay.p50.as_secs_f64()),
            ("queue_delay_p99_seconds", delay.p99.as_secs_f64()),
            ("queue_delay_max_seconds", delay.max.as_secs_f64()),
        ]);
    }
    fields
}

fn stats_text(st: &Stats, uptime: Duration) -> String {
    let mut out = String::new();
    for (name, value) in stat_fields(st) {
        let _ = writeln!(out, "{name}: {value}");
    }
    for (name, value) in stat_seconds(st) {
        let _ = writeln!(out, "{name}: {value:.6}");
    }
    let _ = writeln!(out, "uptime_seconds: {:.3}", uptime.as_secs_f64());
    out
}

fn stats_json(st: &Stats, workers: &[WorkerStats], threads: &Threads, uptime: Duration) -> Value {
    let mut object = serde_json::Map::new();
    for (name, value) in stat_fields(st) {
        object.insert(name.into(), json!(value));
    }
    for (name, value) in stat_seconds(st) {
        object.insert(name.into(), json!(value));
    }
    object.insert("uptime_seconds".into(), json!(uptime.as_secs_f64()));
    object.insert(
        "queue_delay".into(),
        match st.queue_delay {
            Some(d) => json!({
                "count": d.count,
                "total_seconds": d.total.as_secs_f64(),
                "max_seconds": d.max.as_secs_f64(),
                "p50_seconds": d.p50.as_secs_f64(),
                "p99_seconds": d.p99.as_secs_f64(),
            }),
            None => Value::Null,
        },
    );
    object.insert("threads_started".into(), json!(threads.started.load(Ordering::Relaxed)));
    object.insert("threads_stopped".into(), json!(threads.stopped.load(Ordering::Relaxed)));
    let workers: Vec<Value> = workers
        .iter()
        .map(|w| {
            json!({
                "index": w.index,
                "state": state_name(w.state),
                "tasks_run": w.tasks_run,
                "steals": w.steals,
                "parks": w.parks,
                "busy_seconds": w.busy_time.as_secs_f64(),
            })
        })
        .collect();
    object.insert("workers".into(), Value::Array(workers));
    Value::Object(object)
}

type Labels = Vec<(String, String)>;

/// The pool's figures as Prometheus metrics. `prometheus-client` keeps
/// metrics that the program updates as things happen; the pool keeps its
/// own figures, so each scrape copies a fresh `Stats` into them first.
struct Metrics {
    registry: Registry,
    gauges: Vec<(&'static str, Gauge)>,
    counters: Vec<(&'static str, Counter)>,
    seconds: Vec<(&'static str, Gauge<f64, AtomicU64>)>,
    busy_seconds: Counter<f64, AtomicU64>,
    worker_tasks: Family<Labels, Counter>,
    worker_busy: Family<Labels, Counter<f64, AtomicU64>>,
    worker_state: Family<Labels, Gauge>,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("stealpool");
        let gauges: Vec<(&'static str, Gauge)> = [
            ("capacity", "Workers that may run tasks at once (as last tuned)"),
            ("max_capacity", "The ceiling for tune"),
            ("live_workers", "Worker threads alive"),
            ("busy_workers", "Workers running a task"),
            ("sleeping_workers", "Workers parked for lack of work"),
            ("queued_tasks", "Tasks accepted and not yet started (an estimate)"),
            ("blocked_submitters", "Submitters waiting for room in a full queue"),
        ]
        .into_iter()
        .map(|(name, help)| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            (name, gauge)
        })
        .collect();
        // Registered without `_total`: the OpenMetrics encoder adds it.
        let counters: Vec<(&'static str, Counter)> = [
            ("tasks_submitted", "Tasks accepted"),
            ("tasks_completed", "Tasks that finished running, panicked or not"),
            ("tasks_panicked", "Tasks that panicked"),
            ("steals", "Times a worker took work from another worker's deque"),
            ("submit_waits", "Submits that had to wait for room"),
            ("submits_rejected", "Submits refused (closed, full or timed out)"),
            ("queue_delay_tasks", "Tasks whose queue delay was measured"),
        ]
        .into_iter()
        .map(|(name, help)| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            (name, counter)
        })
        .collect();
        let seconds: Vec<(&'static str, Gauge<f64, AtomicU64>)> = [
            (
                "queue_delay_p50_seconds",
                "Median wait between submit and start, recent tasks",
            ),
            ("queue_delay_p99_seconds", "99th percentile of that wait, recent tasks"),
            ("queue_delay_max_seconds", "Longest of that wait, recent tasks"),
        ]
        .into_iter()
        .map(|(name, help)| {
            let gauge = Gauge::<f64, AtomicU64>::default();
            registry.register(name, help, gauge.clone());
            (name, gauge)
        })
        .collect();
        let busy_seconds = Counter::<f64, AtomicU64>::default();
        registry.register(
            "busy_seconds",
            "Time workers spent running tasks.",
            busy_seconds.clone(),
        );
        let worker_tasks = Family::<Labels, Counter>::default();
        registry.register("worker_tasks_run", "Tasks each worker ran.", worker_tasks.clone());
        let worker_busy = Family::<Labels, Counter<f64, AtomicU64>>::default();
        registry.register(
            "worker_busy_seconds",
            "Time each worker spent running tasks",
            worker_busy.clone(),
        );
        let worker_state = Family::<Labels, Gauge>::default();
        registry.register(
            "worker_state",
            "1 for the state each worker is in, 0 for the others",
            worker_state.clone(),
        );
        Metrics {
            registry,
            gauges,
            counters,
            seconds,
            busy_seconds,
            worker_tasks,
            worker_busy,
            worker_state,
        }
    }

    /// Copies a snapshot in and encodes it.
    fn render(&self, st: &Stats, workers: &[WorkerStats]) -> String {
        let delay = st.queue_delay.unwrap_or_default();
        for (name, gauge) in &self.gauges {
            gauge.set(match *name {
                "capacity" => st.capacity,
                "max_capacity" => st.max_capacity,
                "live_workers" => st.live_workers,
                "busy_workers" => st.busy_workers,
                "sleeping_workers" => st.sleeping_workers,
                "queued_tasks" => st.queued,
                _ => st.blocked_submitters,
            } as i64);
        }
        for (name, counter) in &self.counters {
            // The pool's counters only grow: store the pool's figure.
            counter.inner().store(
                match *name {
                    "tasks_submitted" => st.submitted,
                    "tasks_completed" => st.completed,
                    "tasks_panicked" => st.panicked,
                    "steals" => st.stolen,
                    "submit_waits" => st.wait_count,
                    "submits_rejected" => st.rejected,
                    _ => delay.count,
                },
                Ordering::Relaxed,
            );
        }
        for (name, gauge) in &self.seconds {
            gauge.set(
                match *name {
                    "queue_delay_p50_seconds" => delay.p50,
                    "queue_delay_p99_seconds" => delay.p99,
                    _ => delay.max,
                }
                .as_secs_f64(),
            );
        }
        self.busy_seconds
            .inner()
            .store(st.busy_time.as_secs_f64().to_bits(), Ordering::Relaxed);
        for w in workers {
            let worker = vec![("worker".to_string(), w.index.to_string())];
            self.worker_tasks
                .get_or_create(&worker)
                .inner()
                .store(w.tasks_run, Ordering::Relaxed);
            self.worker_busy
                .get_or_create(&worker)
                .inner()
                .store(w.busy_time.as_secs_f64().to_bits(), Ordering::Relaxed);
            for state in STATES {
                let labels = vec![
                    ("worker".to_string(), w.index.to_string()),
                    ("state".to_string(), state.to_string()),
                ];
                self.worker_state
                    .get_or_create(&labels)
                    .set(i64::from(state_name(w.state) == state));
            }
        }
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

fn workers_table(workers: &[WorkerStats]) -> String {
    let mut out = String::from("worker  state        tasks_run     steals      parks   busy_ms\n");
    for w in workers {
        let _ = writeln!(
            out,
            "{:>6}  {:<11} {:>10} {:>10} {:>10} {:>9}",
            w.index,
            state_name(w.state),
            w.tasks_run,
            w.steals,
            w.parks,
            w.busy_time.as_millis()
        );
    }
    out
}

const INDEX: &str = "stealpool observe example\n\n\
    GET /stats       the pool's figures, one `name: value` a line\n\
    GET /stats.json  the same plus each worker's, as JSON\n\
    GET /metrics     OpenMetrics text for Prometheus\n\
    GET /workers     a table of the workers\n";

fn header(value: &str) -> Header {
    Header::from_bytes("Content-Type", value).expect("a valid header")
}

/// Answers one request.
fn respond(request: tiny_http::Request, pool: &Pool, metrics: &Metrics, threads: &Threads, started: Instant) {
    let text = "text/plain; charset=utf-8";
    let path = request.url().split('?').next().unwrap_or("").to_string();
    let response = match (request.method(), path.as_str()) {
        (tiny_http::Method::Get, "/") => Response::from_string(INDEX).with_header(header(text)),
        (tiny_http::Method::Get, "/stats") => {
            Response::from_string(stats_text(&pool.stats(), started.elapsed())).with_header(header(text))
        }
        (tiny_http::Method::Get, "/stats.json") => {
            let body = stats_json(&pool.stats(), &pool.worker_stats(), threads, started.elapsed());
            Response::from_string(body.to_string()).with_header(header("application/json"))
        }
        (tiny_http::Method::Get, "/metrics") => {
            Response::from_string(metrics.render(&pool.stats(), &pool.worker_stats()))
                .with_header(header("application/openmetrics-text; version=1.0.0; charset=utf-8"))
        }
        (tiny_http::Method::Get, "/workers") => {
            Response::from_string(workers_table(&pool.worker_stats())).with_header(header(text))
        }
        (tiny_http::Method::Get, _) => Response::from_string("not found\n")
            .with_status_code(404)
            .with_header(header(text)),
        _ => Response::from_string("method not allowed\n")
            .with_status_code(405)
            .with_header(header(text)),
    };
    // A client that went away is its own problem.
    let _ = request.respond(response);
}

/// Serves requests until `stop`.
fn serve(server: Server, pool: Pool, threads: Arc<Threads>, stop: Arc<AtomicBool>, started: Instant) {
    let metrics = Metrics::new();
    while !stop.load(Ordering::SeqCst) {
        match server.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(request)) => respond(request, &pool, &metrics, &threads, started),
            Ok(None) => {}
            Err(e) => {
                eprintln!("http: {e}");
                return;
            }
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args();
    let started = Instant::now();
    let threads = Arc::new(Threads::default());
    let (on_start, on_stop) = (threads.clone(), threads.clone());
    let pool = Pool::builder()
        .capacity(TUNE_PLAN[0])
        .max_capacity(MAX_CAPACITY)
        .queue_limit(QUEUE_LIMIT)
        .pin_workers(false)
        .keep_alive(Duration::from_secs(2))
        .thread_name(|i| format!("observe-{i}"))
        .measure_queue_delay(true)
        .on_thread_start(move |_| {
            on_start.started.fetch_add(1, Ordering::Relaxed);
        })
        .on_thread_stop(move |_| {
            on_stop.stopped.fetch_add(1, Ordering::Relaxed);
        })
        .build()?;

    let server = Server::http(("127.0.0.1", args.port)).map_err(|e| e.to_string())?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or("the server is not on an IP address")?;
    println!("listening on http://{addr}");
    println!("endpoints: /stats /stats.json /metrics /workers");

    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let (pool, threads, stop) = (pool.clone(), threads.clone(), stop.clone());
        thread::Builder::new()
            .name("http".into())
            .spawn(move || serve(server, pool, threads, stop, started))?
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
        let delay = st.queue_delay.unwrap_or_default();
        let wanted = TUNE_PLAN[second % TUNE_PLAN.len()];
        println!(
            "t={second:>3}s cap {} live {} busy {} queued {:>4} completed {:>7} wait p50 {:>7.2?} p99 {:>7.2?}  -> tune({wanted})",
            st.capacity, st.live_workers, st.busy_workers, st.queued, st.completed, delay.p50, delay.p99
        );
        pool.tune(wanted)?;
    }

    stop.store(true, Ordering::SeqCst);
    generator.join().expect("the generator panicked");
    // Drain what is queued at full capacity.
    pool.tune(MAX_CAPACITY)?;
    pool.wait_idle();
    server.join().expect("the server panicked");
    let st = pool.stats();
    println!(
        "done: {} tasks in {:.1}s, {} stolen, {} submits waited {:.3}s in all, {} refused, \
         workers busy {:.1}s, {} threads started",
        st.completed,
        started.elapsed().as_secs_f64(),
        st.stolen,
        st.wait_count,
        st.wait_time.as_secs_f64(),
        st.rejected,
        st.busy_time.as_secs_f64(),
        threads.started.load(Ordering::Relaxed)
    );
    pool.shutdown();
    Ok(())
}
