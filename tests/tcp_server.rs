//! The `tcp_server` example over real loopback TCP: it runs as a child
//! process (`cargo run --example tcp_server`, the same cargo and target
//! directory as this test run, as in tests/examples.rs) and real clients
//! drive it: ACKs, `ERROR_SERVER_BUSY` under overload with no client left
//! without an answer, `TUNE`, `STATS`, `STOP` / `START`, and `--seconds`.
//!
//! Every wait has a generous bound that only catches a hung server; nothing
//! asserts on timing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Building the example (the library is already built) and starting it.
const START_LIMIT: Duration = Duration::from_secs(300);
/// Any one reply. Replies take milliseconds; the bound catches a hang.
const REPLY_LIMIT: Duration = Duration::from_secs(60);
/// The server stops by itself after this, should this process die without
/// killing it.
const SAFETY_SECONDS: &str = "600";

/// The example running as a child process; killed on drop (also when a
/// test panics).
struct Server {
    child: Child,
    addr: SocketAddr,
    /// Its stdout so far.
    stdout: Arc<Mutex<String>>,
    /// Its stderr so far (cargo's too).
    stderr: Arc<Mutex<String>>,
    /// The threads that read both pipes to their end.
    readers: Vec<thread::JoinHandle<()>>,
}

impl Server {
    /// Starts `tcp_server ARGS` and waits for its `listening on ADDR` line.
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO"))
            .args(["run", "--quiet", "--example", "tcp_server", "--"])
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cargo run --example tcp_server");
        let stdout_text: Arc<Mutex<String>> = Arc::default();
        let stderr_text: Arc<Mutex<String>> = Arc::default();
        let (addr_tx, addr_rx) = mpsc::channel();
        // Both pipes are read to the end, so the server never blocks on a
        // full pipe; the first `listening on` line gives the address.
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let out = Arc::clone(&stdout_text);
        let stdout_reader = thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = addr_tx.send(addr.trim().to_string());
                }
                let mut out = out.lock().unwrap();
                out.push_str(&line);
                out.push('\n');
            }
        });
        let mut stderr = child.stderr.take().expect("piped stderr");
        let err = Arc::clone(&stderr_text);
        let stderr_reader = thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut buf) {
                err.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stdout: stdout_text,
            stderr: stderr_text,
            readers: vec![stdout_reader, stderr_reader],
        };
        let addr = addr_rx
            .recv_timeout(START_LIMIT)
            .unwrap_or_else(|error| panic!("no `listening on` line ({error}); {}", server.output()));
        server.addr = addr.parse().unwrap_or_else(|_| panic!("bad address {addr:?}"));
        server
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Both outputs, for failure messages.
    fn output(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.stdout(), self.stderr.lock().unwrap())
    }

    fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// One request on a fresh connection; returns the one-line answer.
    fn ask(&self, line: &str) -> String {
        self.connect().ask(line)
    }

    /// `STATS` on a fresh connection, parsed.
    fn stats(&self) -> Stats {
        Stats::parse(&self.ask("STATS"))
    }

    /// Waits for the server to exit by itself, and for the last of its
    /// output.
    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the server") {
                for reader in self.readers.drain(..) {
                    reader.join().expect("output reader");
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit within {limit:?}; {}",
                self.output()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // `cargo run` execs the example, so this is the server itself.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client connection, one line out, one line back.
struct Client {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, REPLY_LIMIT).expect("connect to the server");
        stream.set_read_timeout(Some(REPLY_LIMIT)).unwrap();
        stream.set_write_timeout(Some(REPLY_LIMIT)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Client { stream, reader }
    }

    /// Sends a line. A refused connection may be closed already when the
    /// line goes out; its answer is still there to read, so a failed write
    /// is left for `reply` to judge.
    fn send(&mut self, line: &str) {
        let _ = self.stream.write_all(format!("{line}\n").as_bytes());
    }

    /// The next answer line, without its newline. Panics on a timeout or a
    /// connection closed without an answer.
    fn reply(&mut self) -> String {
        self.try_reply().unwrap_or_else(|error| panic!("{error}"))
    }

    fn try_reply(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Err("the server closed the connection without an answer".into()),
            Ok(_) => Ok(line.trim_end_matches(['\r', '\n']).to_string()),
            Err(error) => Err(format!("no answer: {error}")),
        }
    }

    fn ask(&mut self, line: &str) -> String {
        self.send(line);
        self.reply()
    }

    /// After a refusal the server closes the connection: nothing more comes.
    fn assert_closed(&mut self) {
        let mut rest = String::new();
        // EOF, or a reset if our line reached the closed socket.
        if let Ok(n) = self.reader.read_to_string(&mut rest) {
            assert_eq!((n, rest.as_str()), (0, ""), "more after a refusal");
        }
    }
}

/// A parsed `STATS key=value ...` line.
struct Stats(String);

impl Stats {
    fn parse(line: &str) -> Stats {
        assert!(line.starts_with("STATS "), "not a STATS line: {line:?}");
        Stats(line.to_string())
    }

    fn get(&self, key: &str) -> String {
        self.0
            .split_whitespace()
            .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {key} in {:?}", self.0))
            .to_string()
    }

    fn num(&self, key: &str) -> u64 {
        let value = self.get(key);
        value
            .parse()
            .unwrap_or_else(|_| panic!("{key}={value:?} in {:?}", self.0))
    }
}

#[test]
fn every_client_gets_an_ack_or_a_busy_answer() {
    let server = Server::start(&[
        "--capacity",
        "1",
        "--max-capacity",
        "8",
        "--min-workers",
        "1",
        "--queue-limit",
        "1",
        "--work-ms",
        "200",
        "--seconds",
        SAFETY_SECONDS,
    ]);

    // Plain requests, and several lines on one connection, in order.
    assert_eq!(server.ask("hello"), "ACK hello");
    let mut client = server.connect();
    client.send("one\ntwo\nthree");
    let replies: Vec<String> = (0..3).map(|_| client.reply()).collect();
    assert_eq!(replies, ["ACK one", "ACK two", "ACK three"]);
    drop(client);

    // Full, step by step: one connection holds the only worker (its ACK
    // proves it runs), the next one waits in the queue of 1, the one after
    // that is refused at once; freeing the worker serves the queued one.
    let mut held = server.connect();
    assert_eq!(held.ask("held"), "ACK held");
    let mut queued = server.connect();
    queued.send("queued");
    let mut refused = server.connect();
    refused.send("refused");
    assert_eq!(refused.reply(), "ERROR_SERVER_BUSY");
    refused.assert_closed();
    drop(held);
    assert_eq!(queued.reply(), "ACK queued");
    drop(queued);

    // Overload: 20 clients at once against 1 worker, a queue of 1 and
    // 200 ms per request. Each gets exactly one of the two answers.
    const CLIENTS: usize = 20;
    let before = server.stats();
    let start = Arc::new(Barrier::new(CLIENTS));
    let addr = server.addr;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let start = start.clone();
            thread::spawn(move || {
                start.wait();
                let mut client = Client::connect(addr);
                client.send(&format!("client {i}"));
                client.try_reply()
            })
        })
        .collect();
    let (mut acks, mut busy) = (0, 0);
    for (i, client) in clients.into_iter().enumerate() {
        match client.join().expect("client thread").as_deref() {
            Ok("ERROR_SERVER_BUSY") => busy += 1,
            Ok(ack) if ack == format!("ACK client {i}") => acks += 1,
            other => panic!("client {i}: {other:?}; server {}", server.output()),
        }
    }
    assert_eq!(acks + busy, CLIENTS, "every client answered once");
    assert!(acks >= 1, "no client was served");
    assert!(busy >= 1, "no client was refused ({acks} ACKs)");

    // The server counted the same, and the pool refused exactly those.
    let after = server.stats();
    assert_eq!(after.num("busy_answers") - before.num("busy_answers"), busy as u64);
    assert_eq!(after.num("acks") - before.num("acks"), acks as u64);
    assert_eq!(after.num("rejected") - before.num("rejected"), busy as u64);
    assert_eq!(after.num("accepted") - before.num("accepted"), CLIENTS as u64 + 1);
    println!("{CLIENTS} clients: {acks} ACK, {busy} ERROR_SERVER_BUSY");
}

#[test]
fn tune_stop_and_start_at_runtime() {
    let server = Server::start(&[
        "--capacity",
        "1",
        "--max-capacity",
        "8",
        "--min-workers",
        "1",
        "--keep-alive-ms",
        "200",
        "--queue-limit",
        "1",
        "--seconds",
        SAFETY_SECONDS,
    ]);
    assert_eq!(server.stats().num("capacity"), 1);

    // Invalid capacities are refused and change nothing.
    for bad in ["TUNE 0", "TUNE 9", "TUNE lots", "TUNE"] {
        let answer = server.ask(bad);
        assert!(answer.starts_with("ERR "), "{bad:?} -> {answer:?}");
    }
    assert_eq!(server.stats().num("capacity"), 1);

    // Grow to 4: four connections are served at once (each ACK proves its
    // handler runs), a fifth waits in the queue and a sixth is refused.
    assert_eq!(server.ask("TUNE 4"), "OK capacity 4");
    let stats = server.stats();
    assert_eq!((stats.num("capacity"), stats.num("max_capacity")), (4, 8));
    let held: Vec<Client> = (0..4)
        .map(|i| {
            let mut client = server.connect();
            assert_eq!(client.ask(&format!("held {i}")), format!("ACK held {i}"));
            client
        })
        .collect();
    let mut queued = server.connect();
    queued.send("queued");
    let mut refused = server.connect();
    assert_eq!(refused.ask("refused"), "ERROR_SERVER_BUSY");
    drop(held);
    assert_eq!(queued.reply(), "ACK queued");
    drop(queued);

    // Idle threads above min_workers expire (keep-alive 200 ms); the one
    // answering STATS is alive, so at most one other may remain.
    let deadline = Instant::now() + REPLY_LIMIT;
    loop {
        let stats = server.stats();
        if stats.num("live_workers") <= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "workers never expired: {}", stats.0);
        thread::sleep(Duration::from_millis(300));
    }

    // STOP: a graceful shutdown; new connections are refused as stopped.
    let mut control = server.connect();
    assert_eq!(control.ask("STOP"), "OK stopped");
    let mut late = server.connect();
    assert_eq!(late.ask("hello"), "ERROR_SERVER_STOPPED");
    late.assert_closed();
    let stopped = Stats::parse(&control.ask("STATS"));
    assert_eq!(stopped.get("closed"), "true");
    assert!(stopped.num("stopped_answers") >= 1);
    let answer = control.ask("hello");
    assert!(
        answer.starts_with("ERR "),
        "a plain request on a control session -> {answer:?}"
    );

    // START: the same pool runs again, with the capacity it was tuned to.
    assert_eq!(control.ask("START"), "OK started");
    assert_eq!(server.ask("again"), "ACK again");
    let started = server.stats();
    assert_eq!((started.get("closed").as_str(), started.num("capacity")), ("false", 4));

    // The control session still tunes; STOP and START again.
    assert_eq!(control.ask("TUNE 2"), "OK capacity 2");
    assert_eq!(control.ask("STOP"), "OK stopped");
    assert_eq!(server.ask("hello"), "ERROR_SERVER_STOPPED");
    assert_eq!(control.ask("START"), "OK started");
    assert_eq!(server.ask("once more"), "ACK once more");
    assert_eq!(server.stats().num("capacity"), 2);
}

#[test]
fn seconds_option_stops_the_server_by_itself() {
    let mut server = Server::start(&["--seconds", "1"]);
    let status = server.wait_exit(REPLY_LIMIT);
    let (stdout, output) = (server.stdout(), server.output());
    assert!(status.success(), "exit {status}; {output}");
    assert!(stdout.starts_with("listening on 127.0.0.1:"), "{output}");
    assert!(
        stdout.lines().any(|line| line.starts_with("done: STATS ")),
        "no summary line; {output}"
    );
}

#[test]
fn a_silent_client_is_disconnected_and_frees_its_worker() {
    let server = Server::start(&[
        "--capacity",
        "1",
        "--queue-limit",
        "1",
        "--timeout-ms",
        "300",
        "--seconds",
        SAFETY_SECONDS,
    ]);
    // The silent client takes the only worker (STATS on its connection
    // proves its handler runs), then says nothing more; the next client
    // waits in the queue until the read timeout frees the worker.
    let mut silent = server.connect();
    assert!(silent.ask("STATS").starts_with("STATS "));
    let mut waiting = server.connect();
    waiting.send("waiting");
    assert_eq!(silent.reply(), "ERR idle timeout");
    silent.assert_closed();
    assert_eq!(waiting.reply(), "ACK waiting");
}
