//! Queue delay: how long tasks wait between their submit and their start,
//! kept per worker in a ring of recent samples (only in pools built with
//! `measure_queue_delay(true)`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long tasks waited in the queue, from
/// [`Stats::queue_delay`](crate::Stats::queue_delay) (pools built with
/// [`Builder::measure_queue_delay`](crate::Builder::measure_queue_delay)).
///
/// As a Prometheus summary: `count` and `total` cover every measured task
/// since the pool was built (they only grow), `max`, `p50` and `p99` the
/// recent window: the last [`QueueDelay::WINDOW`] tasks each worker ran.
///
/// ```
/// let pool = stealpool::Pool::builder().capacity(1).measure_queue_delay(true).build()?;
/// for _ in 0..10 {
///     pool.submit(|| ())?;
/// }
/// pool.wait_idle();
/// let delay = pool.stats().queue_delay.expect("measured");
/// assert_eq!(delay.count, 10);
/// assert!(delay.p50 <= delay.p99 && delay.p99 <= delay.max);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct QueueDelay {
    /// Tasks measured since the pool was built.
    pub count: u64,
    /// Their summed wait.
    pub total: Duration,
    /// The longest wait in the window.
    pub max: Duration,
    /// The median wait in the window.
    pub p50: Duration,
    /// The 99th percentile of the window's waits.
    pub p99: Duration,
}

impl QueueDelay {
    /// How many recent tasks per worker the window keeps.
    pub const WINDOW: usize = 256;

    /// The figures of `samples` (the window) with the lifetime `count` and
    /// `total`.
    pub(crate) fn from_window(count: u64, total: Duration, mut samples: Vec<u64>) -> QueueDelay {
        samples.sort_unstable();
        // Nearest rank: the smallest sample with at least q of them at or below it.
        let rank = |q: f64| -> Duration {
            if samples.is_empty() {
                return Duration::ZERO;
            }
            let k = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            Duration::from_nanos(samples[k - 1])
        };
        QueueDelay {
            count,
            total,
            max: Duration::from_nanos(samples.last().copied().unwrap_or(0)),
            p50: rank(0.50),
            p99: rank(0.99),
        }
    }

    /// Two pools' figures as one (a `MultiPool`): counts and totals add up,
    /// the window figures are the larger of the two (an upper bound: the
    /// samples themselves are not merged).
    pub(crate) fn merge(a: Option<QueueDelay>, b: Option<QueueDelay>) -> Option<QueueDelay> {
        match (a, b) {
            (Some(a), Some(b)) => Some(QueueDelay {
                count: a.count + b.count,
                total: a.total + b.total,
                max: a.max.max(b.max),
                p50: a.p50.max(b.p50),
                p99: a.p99.max(b.p99),
            }),
            (a, b) => a.or(b),
        }
    }
}

/// One worker slot's ring of recent waits (nanoseconds). Only the slot's
/// thread writes; anyone reads.
struct Ring {
    samples: Box<[AtomicU64]>,
    /// Samples written since the pool was built.
    written: AtomicU64,
    /// Their sum, in nanoseconds.
    total: AtomicU64,
}

/// Every slot's ring (`max_capacity` of them, 2 KiB each, allocated when the
/// pool is built with queue delays measured).
pub(crate) struct DelayWindow {
    rings: Box<[Ring]>,
}

impl DelayWindow {
    pub(crate) fn new(slots: usize) -> Self {
        DelayWindow {
            rings: (0..slots)
                .map(|_| Ring {
                    samples: (0..QueueDelay::WINDOW).map(|_| AtomicU64::new(0)).collect(),
                    written: AtomicU64::new(0),
                    total: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    /// Worker `slot` started a task that waited `waited`.
    pub(crate) fn record(&self, slot: usize, waited: Duration) {
        let ring = &self.rings[slot];
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        // Relaxed loads: only this slot's thread writes its ring (a slot's
        // next thread starts after the previous one gave its deque back
        // under the slot's mutex, which orders the two).
        let written = ring.written.load(Ordering::Relaxed);
        ring.samples[(written % QueueDelay::WINDOW as u64) as usize].store(nanos, Ordering::Relaxed);
        let total = ring.total.load(Ordering::Relaxed);
        ring.total.store(total.saturating_add(nanos), Ordering::Relaxed);
        // Release: a reader that sees the count sees the sample too.
        ring.written.store(written + 1, Ordering::Release);
    }

    /// The figures over every slot. A read while workers write may mix a
    /// sample or two from just before and just after; each is a real wait.
    pub(crate) fn snapshot(&self) -> QueueDelay {
        let mut count = 0;
        let mut total = 0u64;
        let mut samples = Vec::new();
        for ring in self.rings.iter() {
            // Acquire: pairs with the Release in `record`.
            let written = ring.written.load(Ordering::Acquire);
            if written == 0 {
                continue;
            }
            count += written;
            total = total.saturating_add(ring.total.load(Ordering::Relaxed));
            let kept = written.min(QueueDelay::WINDOW as u64) as usize;
            samples.extend(ring.samples[..kept].iter().map(|s| s.load(Ordering::Relaxed)));
        }
        QueueDelay::from_window(count, Duration::from_nanos(total), samples)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_over_the_window() {
        let window = DelayWindow::new(2);
        for ms in 1..=100 {
            window.record((ms % 2) as usize, Duration::from_millis(ms));
        }
        let d = window.snapshot();
        assert_eq!(d.count, 100);
        assert_eq!(d.total, Duration::from_millis(5050));
        assert_eq!(d.p50, Duration::from_millis(50));
        assert_eq!(d.p99, Duration::from_millis(99));
        assert_eq!(d.max, Duration::from_millis(100));
    }

    #[test]
    fn the_window_forgets_old_samples_but_counts_them() {
        let window = DelayWindow::new(1);
        window.record(0, Duration::from_secs(10));
        for _ in 0..QueueDelay::WINDOW {
            window.record(0, Duration::from_micros(1));
        }
        let d = window.snapshot();
        assert_eq!(d.count, QueueDelay::WINDOW as u64 + 1);
        assert!(d.total >= Duration::from_secs(10));
        assert_eq!(d.max, Duration::from_micros(1), "the old wait left the window");
    }

    #[test]
    fn nothing_measured_reads_as_zeros() {
        assert_eq!(DelayWindow::new(3).snapshot(), QueueDelay::default());
    }
}
