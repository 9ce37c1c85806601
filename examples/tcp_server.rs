//! A TCP ack server on a bounded, tunable pool: pool-manager's example
//! server done with stealpool.
//!
//! The acceptor hands every connection to a [`Pool`] with a floor and a
//! ceiling of workers (`min_workers`, `capacity`, `max_capacity`), idle
//! expiry (`keep_alive`) and a bounded queue (`queue_limit`) that does not
//! block (`nonblocking(true)`). When every worker is busy and the queue is
//! full, `submit` hands the connection's closure back in
//! `SubmitError::Full(f)` (`f.into_inner()` is the closure) and the acceptor itself answers
//! `ERROR_SERVER_BUSY` and closes the connection, as pool-manager does; while
//! the pool is stopped it answers `ERROR_SERVER_STOPPED`. A connection
//! occupies one worker for as long as it is open (pool-manager's model), so
//! clients get a read timeout: a stuck client cannot hold a worker forever.
//! The pool holds at most `capacity + queue_limit` connections, served or
//! waiting, so a burst into an idle server fills the free workers first and
//! only then the queue.
//!
//! The protocol is one line in, one line out:
//!
//! | line          | answer                                              |
//! | ------------- | --------------------------------------------------- |
//! | anything else | `ACK <line>` (after `--work-ms` of pretend work)    |
//! | `TUNE <n>`    | `OK capacity <n>`, or `ERR <why>` (`Pool::tune`)    |
//! | `STATS`       | `STATS capacity=.. live_workers=.. ...` (one line)  |
//! | `STOP`        | `OK stopped` once the pool has shut down gracefully |
//! | `START`       | `OK started` once the pool runs again (`reboot`)    |
//!
//! `STOP` waits for every accepted connection to finish (as pool-manager's
//! `Stop`), which a pool task could not do for itself, so a connection that
//! sends `STOP` or `START` leaves the pool: it becomes a control session on a
//! thread of its own, which still answers `TUNE`, `STATS`, `STOP` and
//! `START` (and `ERR` to anything else), and is the way to `START` a stopped
//! server, since new connections then get `ERROR_SERVER_STOPPED`.
//!
//! ```sh
//! cargo run --example tcp_server                      # port chosen by the OS, runs until Ctrl-C
//! cargo run --example tcp_server -- 7878 --seconds 60 # port 7878, stops by itself after 60 s
//! cargo run --example tcp_server -- --capacity 1 --queue-limit 1 --work-ms 500   # easy to overload
//! ```
//!
//! The first line on stdout is `listening on 127.0.0.1:PORT`. Poke it with
//! `nc 127.0.0.1 PORT` and type lines: `hello`, `STATS`, `TUNE 4`, `STOP`,
//! `START`. To see `ERROR_SERVER_BUSY`, hold a few `nc` sessions open on a
//! server with `--capacity 1 --queue-limit 1`, or run a burst:
//! `for i in $(seq 20); do (echo hi | nc -q 2 127.0.0.1 PORT &); done`.
//! `--help` lists every option.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use stealpool::{Pool, SubmitError};

/// The longest request line taken; a longer one ends the connection.
const MAX_LINE: usize = 4096;

const USAGE: &str = "\
usage: tcp_server [PORT] [OPTIONS]
  PORT / --port N      port on 127.0.0.1 (default 0: the OS chooses)
  --capacity N         workers that serve connections at once (default 2)
  --max-capacity N     ceiling for TUNE (default 16)
  --min-workers N      threads that never expire (default 1)
  --keep-alive-ms N    idle threads above min-workers exit after this (default 10000)
  --queue-limit N      accepted connections that may wait for a worker (default 4)
  --work-ms N          pretend work per request line (default 0)
  --timeout-ms N       a client silent this long is disconnected (default 30000)
  --seconds N          stop by itself after N seconds (default: run until killed)";

/// The command line.
struct Options {
    port: u16,
    capacity: usize,
    max_capacity: usize,
    min_workers: usize,
    keep_alive: Duration,
    queue_limit: usize,
    work: Duration,
    client_timeout: Duration,
    run_for: Option<Duration>,
}

fn usage(problem: &str) -> ! {
    eprintln!("tcp_server: {problem}\n{USAGE}");
    std::process::exit(2);
}

fn parse_options() -> Options {
    let mut options = Options {
        port: 0,
        capacity: 2,
        max_capacity: 16,
        min_workers: 1,
        keep_alive: Duration::from_secs(10),
        queue_limit: 4,
        work: Duration::ZERO,
        client_timeout: Duration::from_secs(30),
        run_for: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        if !arg.starts_with("--") {
            options.port = arg.parse().unwrap_or_else(|_| usage(&format!("not a port: {arg:?}")));
            continue;
        }
        let value = args.next().unwrap_or_else(|| usage(&format!("{arg} needs a value")));
        let bad = || -> ! { usage(&format!("{arg} takes a whole number, not {value:?}")) };
        let count = || value.parse::<usize>().unwrap_or_else(|_| bad());
        let millis = || Duration::from_millis(value.parse().unwrap_or_else(|_| bad()));
        match arg.as_str() {
            "--port" => options.port = value.parse().unwrap_or_else(|_| bad()),
            "--capacity" => options.capacity = count(),
            "--max-capacity" => options.max_capacity = count(),
            "--min-workers" => options.min_workers = count(),
            "--keep-alive-ms" => options.keep_alive = millis(),
            "--queue-limit" => options.queue_limit = count(),
            "--work-ms" => options.work = millis(),
            // A zero timeout is refused by the socket: take 1 ms.
            "--timeout-ms" => options.client_timeout = millis().max(Duration::from_millis(1)),
            "--seconds" => options.run_for = Some(Duration::from_secs(value.parse().unwrap_or_else(|_| bad()))),
            _ => usage(&format!("unknown option {arg}")),
        }
    }
    options
}

/// A line on stdout; a closed stdout must not take a thread down with it.
fn log(line: &str) {
    let _ = writeln!(io::stdout(), "{line}");
}

/// One side of a connection shared by the acceptor and the closure it
/// submits: if the pool refuses the closure, the acceptor still holds the
/// socket to answer busy on. Reads and writes go through `&TcpStream`.
#[derive(Clone)]
struct Conn(Arc<TcpStream>);

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

impl Conn {
    /// Writes one answer line.
    fn answer(&self, line: &str) -> io::Result<()> {
        (&*self.0).write_all(format!("{line}\n").as_bytes())
    }
}

/// What a request line asks for.
enum Line<'a> {
    Tune(&'a str),
    Stats,
    Stop,
    Start,
    Request(&'a str),
}

impl<'a> Line<'a> {
    fn parse(line: &'a str) -> Line<'a> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let is = |word: &str, command: &str| word.eq_ignore_ascii_case(command);
        match words.as_slice() {
            [word] if is(word, "STATS") => Line::Stats,
            [word] if is(word, "STOP") => Line::Stop,
            [word] if is(word, "START") => Line::Start,
            [word, n] if is(word, "TUNE") => Line::Tune(n),
            [word, ..] if is(word, "TUNE") => Line::Tune(""),
            _ => Line::Request(line),
        }
    }
}

/// Reads one line (without its `\n` or `\r\n`); `Ok(None)` when the client
/// closed the connection. A line over [`MAX_LINE`] bytes is an error.
fn read_line(reader: &mut BufReader<Conn>) -> io::Result<Option<String>> {
    let mut bytes = Vec::new();
    reader
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut bytes)?;
    if bytes.is_empty() {
        return Ok(None);
    }
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    } else if bytes.len() > MAX_LINE {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
    }
    // A last line without `\n` (the client closed its side) counts too.
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// What the server shares with its connections.
struct Server {
    pool: Pool,
    work: Duration,
    accepted: AtomicU64,
    acks: AtomicU64,
    busy_answers: AtomicU64,
    stopped_answers: AtomicU64,
}

impl Server {
    fn tune(&self, arg: &str) -> String {
        let Ok(capacity) = arg.parse::<usize>() else {
            return format!("ERR usage: TUNE <n>, n from 1 to {}", self.pool.max_capacity());
        };
        match self.pool.tune(capacity) {
            Ok(()) => {
                log(&format!("capacity -> {capacity}"));
                format!("OK capacity {capacity}")
            }
            Err(error) => format!("ERR {error}"),
        }
    }

    fn stats(&self) -> String {
        let s = self.pool.stats();
        let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        format!(
            "STATS capacity={} max_capacity={} live_workers={} busy_workers={} sleeping_workers={} queued={} \
             submitted={} completed={} rejected={} closed={} accepted={} acks={} busy_answers={} stopped_answers={}",
            s.capacity,
            s.max_capacity,
            s.live_workers,
            s.busy_workers,
            s.sleeping_workers,
            s.queued,
            s.submitted,
            s.completed,
            s.rejected,
            self.pool.is_closed(),
            count(&self.accepted),
            count(&self.acks),
            count(&self.busy_answers),
            count(&self.stopped_answers),
        )
    }

    /// Graceful, like pool-manager's `Stop`: refuses new connections at once,
    /// then waits for every accepted one to finish. Never called on a worker.
    fn stop(&self) -> String {
        log("stopping: waiting for the open connections");
        self.pool.shutdown();
        log("pool stopped");
        "OK stopped".to_string()
    }

    fn start(&self) -> String {
        match self.pool.reboot() {
            Ok(()) => {
                log("pool started");
                "OK started".to_string()
            }
            Err(error) => format!("ERR {error}"),
        }
    }
}

/// Serves one connection on a pool worker, line by line, until the client
/// closes it, goes silent for the read timeout, or sends `STOP`/`START`.
fn serve(conn: Conn, server: Arc<Server>) {
    let mut reader = BufReader::new(conn.clone());
    loop {
        let line = match read_line(&mut reader) {
            Ok(Some(line)) => line,
            Ok(None) => return,
            Err(error) => return goodbye(&conn, &error),
        };
        let answer = match Line::parse(&line) {
            Line::Request(request) => {
                thread::sleep(server.work);
                server.acks.fetch_add(1, Ordering::Relaxed);
                format!("ACK {request}")
            }
            Line::Tune(n) => server.tune(n),
            Line::Stats => server.stats(),
            Line::Stop | Line::Start => {
                // `shutdown` waits for this very task and `reboot` for this
                // very thread: hand the connection (and anything it already
                // sent) to a thread outside the pool, and free the worker.
                let session = thread::Builder::new().name("control".into());
                let spawned = session.spawn(move || control_session(reader, &line, &server));
                if let Err(error) = spawned {
                    // The closure (and with it the connection) is gone.
                    eprintln!("tcp_server: no thread for a control session: {error}");
                }
                return;
            }
        };
        if conn.answer(&answer).is_err() {
            return;
        }
    }
}

/// A connection that sent `STOP` or `START`, served on its own thread.
fn control_session(mut reader: BufReader<Conn>, first: &str, server: &Server) {
    let conn = reader.get_ref().clone();
    let mut line = Some(first.to_string());
    loop {
        let text = match line.take() {
            Some(text) => text,
            None => match read_line(&mut reader) {
                Ok(Some(text)) => text,
                Ok(None) => return,
                Err(error) => return goodbye(&conn, &error),
            },
        };
        let answer = match Line::parse(&text) {
            Line::Tune(n) => server.tune(n),
            Line::Stats => server.stats(),
            Line::Stop => server.stop(),
            Line::Start => server.start(),
            Line::Request(_) => "ERR a control session takes TUNE <n>, STATS, STOP or START".to_string(),
        };
        if conn.answer(&answer).is_err() {
            return;
        }
    }
}

/// Tells a client why it is disconnected (best effort) before the socket
/// closes.
fn goodbye(conn: &Conn, error: &io::Error) {
    let why = match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => "ERR idle timeout",
        io::ErrorKind::InvalidData => "ERR line too long",
        _ => return, // reset or broken: nobody to tell
    };
    let _ = conn.answer(why);
}

/// The acceptor answers a refused connection itself and closes it.
fn refuse(conn: &Conn, answer: &str) {
    let _ = conn.answer(answer);
    let _ = conn.0.shutdown(Shutdown::Both);
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = parse_options();
    let pool = Pool::builder()
        .capacity(options.capacity)
        .max_capacity(options.max_capacity)
        .min_workers(options.min_workers)
        .keep_alive(options.keep_alive)
        .queue_limit(options.queue_limit)
        .nonblocking(true)
        .thread_name(|i| format!("conn-{i}"))
        .build()
        .unwrap_or_else(|error| usage(&error.to_string()));
    let server = Arc::new(Server {
        pool,
        work: options.work,
        accepted: AtomicU64::new(0),
        acks: AtomicU64::new(0),
        busy_answers: AtomicU64::new(0),
        stopped_answers: AtomicU64::new(0),
    });
    let listener = TcpListener::bind(("127.0.0.1", options.port))?;
    let addr = listener.local_addr()?;
    // The first line: tests (and people) read the port from it.
    log(&format!("listening on {addr}"));

    let quit = Arc::new(AtomicBool::new(false));
    if let Some(run_for) = options.run_for {
        let quit = quit.clone();
        thread::spawn(move || {
            thread::sleep(run_for);
            quit.store(true, Ordering::SeqCst);
            // Wake the acceptor out of `accept`.
            let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        });
    }

    accept_loop(&listener, &server, &options, &quit);

    // Graceful: every accepted connection is served to its end (bounded by
    // the client read timeout), then the workers exit.
    server.pool.shutdown();
    log(&format!("done: {}", server.stats()));
    Ok(())
}

fn accept_loop(listener: &TcpListener, server: &Arc<Server>, options: &Options, quit: &AtomicBool) {
    for stream in listener.incoming() {
        if quit.load(Ordering::SeqCst) {
            return;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(error) => {
                // Out of descriptors, or a client gave up mid-handshake:
                // back off a moment and go on accepting.
                eprintln!("tcp_server: accept: {error}");
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if let Err(error) = configure(&stream, options.client_timeout) {
            eprintln!("tcp_server: socket setup: {error}");
            continue;
        }
        server.accepted.fetch_add(1, Ordering::Relaxed);
        let conn = Conn(Arc::new(stream));
        let task = {
            let (conn, server) = (conn.clone(), server.clone());
            move || serve(conn, server)
        };
        match server.pool.submit(task) {
            Ok(()) => {}
            Err(SubmitError::Full(task) | SubmitError::Timeout(task)) => {
                // Every worker is busy and the queue is full (a nonblocking
                // `submit` never waits, so `Timeout` does not come up here).
                server.busy_answers.fetch_add(1, Ordering::Relaxed);
                refuse(&conn, "ERROR_SERVER_BUSY");
                // The closure came back unrun. All it holds is a second
                // handle on this connection (just answered and shut) and one
                // on the server: dropping it deliberately closes the socket.
                drop(task);
            }
            Err(SubmitError::Closed(task)) => {
                server.stopped_answers.fetch_add(1, Ordering::Relaxed);
                refuse(&conn, "ERROR_SERVER_STOPPED");
                // As above: refused unrun, dropped on purpose.
                drop(task);
            }
        }
    }
}

/// Timeouts on a client socket, so a silent or stuck client cannot hold a
/// worker (or the acceptor) forever.
fn configure(stream: &TcpStream, timeout: Duration) -> io::Result<()> {
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)
}
