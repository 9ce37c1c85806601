//! Helpers the integration tests share: one-at-a-time execution, a watchdog
//! that turns a hang into a failure, bounded polling, and thread counting
//! through `/proc/self/task`.
//!
//! Each test binary uses a subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use stealpool::JoinHandle;

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs the tests of one binary one at a time (thread counts and timing of
/// one test must not be disturbed by another on a 2-core machine).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Turns a hang into a test failure: if the guard is not dropped within
/// `secs`, the whole test process exits with a message on the real stderr.
pub struct Watchdog(Option<mpsc::Sender<()>>);

impl Watchdog {
    pub fn new(name: &'static str, secs: u64) -> Self {
        // Miri's clock advances 5 µs per basic block it interprets, so a
        // test's clock time there is roughly its interpretation time: far
        // longer than natively. (A hang under Miri is reported by Miri as a
        // deadlock.)
        let secs = if cfg!(miri) { secs * 10 } else { secs };
        let (tx, rx) = mpsc::channel::<()>();
        thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(Duration::from_secs(secs)) {
                let _ = writeln!(std::io::stderr(), "WATCHDOG: test `{name}` hung for more than {secs} s");
                std::process::exit(101);
            }
        });
        Watchdog(Some(tx))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.0.take());
    }
}

/// Polls `cond` every millisecond until it holds (true) or `timeout` passes
/// (false).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// Number of live threads of this process whose OS name starts with `prefix`.
pub fn threads_named(prefix: &str) -> usize {
    let Ok(dir) = fs::read_dir("/proc/self/task") else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter(|e| {
            fs::read_to_string(e.path().join("comm"))
                .map(|c| c.trim_end().starts_with(prefix))
                .unwrap_or(false)
        })
        .count()
}

/// `JoinHandle::join` with a 30 s bound (joined on a helper thread).
pub fn join_timeout<T: Send + 'static>(h: JoinHandle<T>) -> Result<T, stealpool::JoinError> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(h.join());
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("JoinHandle::join did not return within 30 s")
}

/// The message of a panic payload, if it is a string.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> Option<String> {
    if let Some(s) = payload.downcast_ref::<&str>() {
        Some((*s).to_owned())
    } else {
        payload.downcast_ref::<String>().cloned()
    }
}

/// Holds a worker with a task until opened. Dropping it opens it too, so a
/// failing test never leaves a worker blocked (declare it after the pool:
/// it is dropped first, then the pool's drop can shut down).
pub struct Gate(pub std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Gate {
    pub fn open(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn is_open(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.open();
    }
}

/// Occupies one worker of `pool` until the gate opens (bounded at 300 s, far
/// beyond every test's watchdog); returns once the blocking task runs.
pub fn block_worker(pool: &stealpool::Pool) -> Gate {
    use std::sync::atomic::{AtomicBool, Ordering};
    let open = std::sync::Arc::new(AtomicBool::new(false));
    let (entered_tx, entered_rx) = mpsc::channel();
    let o = open.clone();
    pool.submit(move || {
        entered_tx.send(()).unwrap();
        wait_until(Duration::from_secs(300), || o.load(Ordering::SeqCst));
    })
    .unwrap_or_else(|e| panic!("submit blocker: {e:?}"));
    entered_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the blocking task did not start");
    Gate(open)
}

/// Bound for things that happen "at once" (a thread exits after being told
/// to, a task starts, a blocked submitter wakes): microseconds in practice;
/// 10 s only matters on a badly overloaded machine.
pub const SOON: Duration = Duration::from_secs(10);

/// Asserts that no thread named `prefix*` is left (within [`SOON`]).
pub fn assert_threads_gone(prefix: &str, when: &str) {
    assert!(
        wait_until(SOON, || threads_named(prefix) == 0),
        "{when}: {} worker thread(s) named {prefix:?}* still alive {SOON:?} after shutdown",
        threads_named(prefix)
    );
}

/// A builder whose threads are named `{prefix}{i}` (to count them), unpinned.
pub fn named_builder(prefix: &'static str, capacity: usize) -> stealpool::Builder {
    stealpool::Pool::builder()
        .capacity(capacity)
        .pin_workers(false)
        .thread_name(move |i| format!("{prefix}{i}"))
}

/// Runs `cargo run --quiet --example NAME -- ARGS` with the test run's own
/// cargo and target directory (examples are not binaries of the package, so
/// there is no `CARGO_BIN_EXE_*` for them); returns (exit code, stdout,
/// stderr). Building plus a short run takes seconds; after 300 s the child
/// is killed and the test panics (a hung example).
pub fn run_example(name: &str, args: &[&str]) -> (Option<i32>, String, String) {
    use std::io::Read;
    use std::process::{Command, Stdio};
    const LIMIT: Duration = Duration::from_secs(300);
    let mut child = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--example", name, "--"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cargo");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
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
        status.code(),
        out_reader.join().unwrap_or_default(),
        err_reader.join().unwrap_or_default(),
    )
}
