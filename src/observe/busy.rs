//! Busy time: how long a worker has spent at work.
//!
//! Measured per *stretch*, as tokio measures its workers' busy duration
//! (between unpark and park): a stretch begins when the worker finds work
//! and ends when it parks (asleep or suspended) or its thread exits. So the
//! figure covers the tasks and the short search a worker makes between
//! tasks and before it parks (at most a few dozen spin and yield rounds),
//! never the time it is parked. A worker under steady load reads no clock
//! at all; the two reads per stretch sit next to the park and the wake-up,
//! which cost a futex call anyway.
//!
//! One worker writes its slot's figure, anyone reads it. The open stretch is
//! included in a read, so the figure grows while a long task runs; writer
//! and readers agree through a sequence lock, so a reader never counts a
//! stretch twice or loses one that just closed (the figure never goes
//! backwards, which a Prometheus counter needs).

use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Nanoseconds since a process-wide epoch, plus one (0 means "no stretch").
fn now_nanos() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1
}

/// One worker slot's busy time.
#[derive(Default)]
pub(crate) struct BusyTime {
    /// Even: stable; odd: the owner is writing.
    seq: AtomicU64,
    /// When the open stretch began (`now_nanos`), 0 when none is open.
    since: AtomicU64,
    /// The closed stretches, in nanoseconds.
    total: AtomicU64,
    /// The largest figure any reader returned: a reader whose clock ran a
    /// little ahead of the owner's (it read the clock after the owner read
    /// its own to close the stretch) would otherwise see the figure shrink
    /// by that difference on the next read.
    high: AtomicU64,
}

impl BusyTime {
    /// The owning worker found work: opens a stretch unless one is open.
    #[inline]
    pub(crate) fn start(&self) {
        // Relaxed: only the owner writes `since`; this reads its own write.
        if self.since.load(Ordering::Relaxed) == 0 {
            self.write(0, now_nanos());
        }
    }

    /// The owning worker ran out of work: closes the open stretch, if any.
    #[inline]
    pub(crate) fn stop(&self) {
        // Relaxed: as in `start`.
        let since = self.since.load(Ordering::Relaxed);
        if since != 0 {
            let ran = now_nanos().saturating_sub(since);
            self.write(ran, 0);
        }
    }

    /// The owner adds `ran` to the total and sets `since`, as one update.
    fn write(&self, ran: u64, since: u64) {
        // Relaxed loads: only the owner writes these.
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq + 1, Ordering::Relaxed);
        // Release fence: a reader that sees any store below also sees the
        // odd sequence number (its Acquire fence pairs with this one).
        fence(Ordering::Release);
        let total = self.total.load(Ordering::Relaxed);
        self.total.store(total + ran, Ordering::Relaxed);
        self.since.store(since, Ordering::Relaxed);
        // Release: a reader that loads the even number sees both stores.
        self.seq.store(seq + 2, Ordering::Release);
    }

    /// The busy time so far, the open stretch included; never less than
    /// an earlier read returned.
    pub(crate) fn read(&self) -> Duration {
        loop {
            // Acquire: pairs with the final Release store of `write`.
            let before = self.seq.load(Ordering::Acquire);
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            // Relaxed: validated by the sequence number below.
            let total = self.total.load(Ordering::Relaxed);
            let since = self.since.load(Ordering::Relaxed);
            // Acquire fence: if either load saw a value written after the
            // owner's Release fence, the load below sees the odd number.
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == before {
                let open = if since == 0 {
                    0
                } else {
                    now_nanos().saturating_sub(since)
                };
                let figure = total.saturating_add(open);
                // Relaxed: the RMW alone makes reads monotone (one
                // modification order); nothing else is ordered on it.
                let high = self.high.fetch_max(figure, Ordering::Relaxed);
                return Duration::from_nanos(figure.max(high));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stretches_add_up_and_the_open_one_counts() {
        let busy = BusyTime::default();
        assert_eq!(busy.read(), Duration::ZERO);
        busy.stop(); // nothing open: no change
        assert_eq!(busy.read(), Duration::ZERO);
        busy.start();
        std::thread::sleep(Duration::from_millis(5));
        busy.start(); // already open: keeps the first start
        let open = busy.read();
        assert!(open >= Duration::from_millis(5), "{open:?}");
        busy.stop();
        let closed = busy.read();
        assert!(closed >= open);
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(busy.read(), closed, "no stretch open: the figure stays");
    }

    #[test]
    fn a_reader_never_sees_the_figure_go_backwards() {
        let busy = std::sync::Arc::new(BusyTime::default());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (busy, stop) = (busy.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    busy.start();
                    busy.stop();
                }
            })
        };
        let mut last = Duration::ZERO;
        // Fewer reads under Miri (an interpreter), still racing the writer.
        let reads = if cfg!(miri) { 300 } else { 200_000 };
        for _ in 0..reads {
            let now = busy.read();
            assert!(now >= last, "went back from {last:?} to {now:?}");
            last = now;
        }
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
    }
}
