//! What the operating system tells about CPU time: each worker thread's CPU
//! clock (is a busy worker computing, or blocked?) and the machine's idle
//! cores (would another thread find a core?).
//!
//! Linux (and Android) only, through `libc`: `pthread_getcpuclockid` names
//! a thread's CPU clock so that *another* thread (the monitor) can read it
//! with `clock_gettime`, which neither `std` nor any other dependency of
//! ours offers; idle cores come from `/proc/stat`. Elsewhere both answer
//! `None` and the monitor falls back to what the pool itself sees. So they
//! do under Miri, which can run neither these foreign calls nor (isolated)
//! read `/proc`: pools still run there, as on a platform without the clocks.

use std::time::{Duration, Instant};

/// A thread's CPU clock id, as stored in an `AtomicI64` (`NO_CLOCK`: none).
pub(crate) const NO_CLOCK: i64 = i64::MIN;

/// The calling thread's CPU clock, if the platform has one.
#[cfg(all(any(target_os = "linux", target_os = "android"), not(miri)))]
pub(crate) fn current_thread_clock() -> i64 {
    let mut id: libc::clockid_t = 0;
    // SAFETY: `pthread_self` is the calling thread, alive for the call;
    // `id` is a valid place for the answer.
    let rc = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut id) };
    if rc == 0 {
        i64::from(id)
    } else {
        NO_CLOCK
    }
}

#[cfg(not(all(any(target_os = "linux", target_os = "android"), not(miri))))]
pub(crate) fn current_thread_clock() -> i64 {
    NO_CLOCK
}

/// The calling thread's kernel id (0 where there is none to read).
#[cfg(all(any(target_os = "linux", target_os = "android"), not(miri)))]
pub(crate) fn current_thread_id() -> i64 {
    // SAFETY: `gettid` has no preconditions and cannot fail.
    i64::from(unsafe { libc::gettid() })
}

#[cfg(not(all(any(target_os = "linux", target_os = "android"), not(miri))))]
pub(crate) fn current_thread_id() -> i64 {
    0
}

/// Whether thread `tid` of this process sleeps or waits on I/O (`S`, `D`
/// in `/proc/self/task/<tid>/stat`) rather than runs or waits for a core
/// (`R`). A thread whose CPU clock stands still because other threads
/// took its core is *not* blocked: lending its slot would only add a
/// thread to a machine that has no core for it. `None` where the system
/// does not say (the monitor then trusts the clock alone).
#[cfg(all(any(target_os = "linux", target_os = "android"), not(miri)))]
pub(crate) fn thread_is_waiting(tid: i64) -> Option<bool> {
    if tid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // The name field may hold spaces and parentheses: the state follows
    // the last ')'.
    let state = stat[stat.rfind(')')? + 1..].split_whitespace().next()?;
    Some(matches!(state, "S" | "D"))
}

#[cfg(not(all(any(target_os = "linux", target_os = "android"), not(miri))))]
pub(crate) fn thread_is_waiting(_tid: i64) -> Option<bool> {
    None
}

/// The CPU time a thread has used, read through its clock id. `None` if
/// the clock is gone (the thread exited: `clock_gettime` says `EINVAL`).
/// A thread id the kernel reused for another thread would read that
/// thread's clock: the worker clears its id before it exits, so only a read
/// racing the exit can see it, and one wrong sample only delays a decision.
#[cfg(all(any(target_os = "linux", target_os = "android"), not(miri)))]
pub(crate) fn thread_cpu_time(clock: i64) -> Option<Duration> {
    let id = libc::clockid_t::try_from(clock).ok()?;
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid place for the answer; a stale clock id is
    // reported as an error, never undefined behaviour.
    let rc = unsafe { libc::clock_gettime(id, &mut now) };
    if rc != 0 {
        return None;
    }
    Some(Duration::new(
        u64::try_from(now.tv_sec).ok()?,
        u32::try_from(now.tv_nsec).ok()?,
    ))
}

#[cfg(not(all(any(target_os = "linux", target_os = "android"), not(miri))))]
pub(crate) fn thread_cpu_time(_clock: i64) -> Option<Duration> {
    None
}

/// The machine's idle cores, averaged between two reads of `/proc/stat`
/// at least `MIN_SPAN` apart (a shorter span is all rounding: the kernel
/// counts in 10 ms ticks).
pub(crate) struct IdleCores {
    last: Option<(Instant, u64, u64)>,
    idle_cores: Option<f64>,
    cores: usize,
}

const MIN_SPAN: Duration = Duration::from_millis(20);
const MAX_SPAN: Duration = Duration::from_millis(250);

impl IdleCores {
    pub(crate) fn new() -> Self {
        IdleCores {
            last: None,
            idle_cores: None,
            cores: num_cpus::get().max(1),
        }
    }

    /// Idle cores over the last span (re-read when the span is long
    /// enough), or `None` where the system does not say.
    pub(crate) fn sample(&mut self) -> Option<f64> {
        let now = Instant::now();
        if self.last.is_some_and(|(at, _, _)| now.duration_since(at) < MIN_SPAN) {
            return self.idle_cores;
        }
        let (idle, total) = read_proc_stat()?;
        // A reading older than `MAX_SPAN` says little about now: start a
        // new span (no answer until it is long enough).
        if self.last.is_some_and(|(at, _, _)| now.duration_since(at) > MAX_SPAN) {
            self.last = None;
            self.idle_cores = None;
        }
        if let Some((_, last_idle, last_total)) = self.last {
            let total_delta = total.saturating_sub(last_total);
            if total_delta > 0 {
                let idle_delta = idle.saturating_sub(last_idle);
                self.idle_cores = Some(idle_delta as f64 / total_delta as f64 * self.cores as f64);
            }
        }
        self.last = Some((now, idle, total));
        self.idle_cores
    }
}

/// `(idle + iowait, total)` jiffies from the first line of `/proc/stat`.
#[cfg(all(any(target_os = "linux", target_os = "android"), not(miri)))]
fn read_proc_stat() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    parse_cpu_line(text.lines().next()?)
}

#[cfg(not(all(any(target_os = "linux", target_os = "android"), not(miri))))]
fn read_proc_stat() -> Option<(u64, u64)> {
    None
}

/// `cpu  user nice system idle iowait irq softirq steal ...` →
/// `(idle + iowait, sum of all but guest times)`.
// Only the Linux reader (and the tests) use it.
#[cfg_attr(
    not(all(any(target_os = "linux", target_os = "android"), not(miri))),
    allow(dead_code)
)]
fn parse_cpu_line(line: &str) -> Option<(u64, u64)> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let values: Vec<u64> = fields.take(8).map(str::parse).collect::<Result<_, _>>().ok()?;
    if values.len() < 5 {
        return None;
    }
    Some((values[3] + values[4], values.iter().sum()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_line_parses_idle_and_total() {
        let line = "cpu  100 5 50 800 20 3 2 0 0 0";
        assert_eq!(parse_cpu_line(line), Some((820, 980)));
        assert_eq!(parse_cpu_line("cpu0 1 2 3 4 5"), None);
        assert_eq!(parse_cpu_line("cpu 1 2"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    #[cfg_attr(
        miri,
        ignore = "reads thread CPU clocks (pthread_getcpuclockid, clock_gettime) and /proc: foreign calls Miri cannot run"
    )]
    fn a_threads_clock_moves_while_it_computes_and_stands_still_while_it_sleeps() {
        let clock = current_thread_clock();
        assert_ne!(clock, NO_CLOCK);
        let before = thread_cpu_time(clock).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        let slept = thread_cpu_time(clock).unwrap() - before;
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let computed = thread_cpu_time(clock).unwrap() - before - slept;
        assert!(computed > slept, "computing {computed:?} vs sleeping {slept:?}");
        // This thread is running now; a sleeping one reads as waiting.
        assert_eq!(thread_is_waiting(current_thread_id()), Some(false));
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let sleeper = std::thread::spawn(move || {
            tid_tx.send(current_thread_id()).unwrap();
            let _ = stop_rx.recv_timeout(Duration::from_secs(10));
        });
        let tid = tid_rx.recv().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while thread_is_waiting(tid) != Some(true) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(thread_is_waiting(tid), Some(true));
        stop_tx.send(()).unwrap();
        sleeper.join().unwrap();
    }
}
