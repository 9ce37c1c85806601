//! Where workers run: the pinning modes, the process-wide core allocator,
//! and the adaptive policy that lets a worker off its core while another
//! process holds it.
//!
//! A pinned worker keeps its deque and its tasks' data in one core's caches,
//! which pays on a quiet machine. On a shared one the core may be busy with
//! another process: the worker then waits for the kernel's time slice while
//! other cores idle (on 2 cores with one busy neighbour, a task submitted to
//! an idle pool started ~1.8 ms later pinned against ~10 µs unpinned).
//! Adaptive pinning measures how long the worker waits for its core where
//! it waits anyway: every wake-up (the waker stamps the time on its slow
//! path, the worker reads the clock when it runs) and every timed round of
//! its search (a round that takes long means another thread ran on the core).
//! After [`STRIKES`] slow ones in a row it moves the worker to the pool's
//! other cores (all but the busy one). It tries its home core again after a
//! back-off (doubling while the core stays busy), re-pinning as it goes to
//! sleep so the next wake-up is the probe. Nothing is measured on the paths
//! that find work, nor while a worker is released.

use std::sync::atomic::AtomicUsize;
use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};

use core_affinity::CoreId;

use crate::config::Pinning;
use crate::sync::unpoisoned;

/// A wait longer than this (from the waker's stamp to the worker running,
/// or one search round) counts as a sign that the worker's core is busy.
/// An idle core's wake-up takes tens of microseconds even on a noisy VM; a
/// core held by another runnable thread makes the worker wait for a time
/// slice (~1.8 ms measured on 2 and on 16 cores).
pub(crate) const SLOW_WAKE: Duration = Duration::from_micros(500);
/// Slow waits within [`WINDOW`] that move a worker (off its core, or
/// back): one or two alone may be a hiccup of the host.
pub(crate) const STRIKES: u8 = 3;
/// The window in which [`STRIKES`] slow waits must fall. A neighbour that
/// keeps the core busy costs the worker a wait every time slice (a few
/// milliseconds); a quiet core has none in a long time.
pub(crate) const WINDOW: Duration = Duration::from_millis(50);
/// How long a released worker stays off its core before it tries again,
/// at first; doubled after every try that fails, up to [`MAX_BACKOFF`].
pub(crate) const BASE_BACKOFF: Duration = Duration::from_millis(500);
/// The longest a released worker waits before it tries its core again.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long after its thread starts a worker begins to measure.
pub(crate) const ARM_DELAY: Duration = Duration::from_millis(100);

/// Where a worker waited for its core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// From a waker's stamp to running.
    Wake = 0,
    /// Through one timed round of its search (a scan and a busy-wait).
    Search = 1,
}

/// What the policy tells the worker to do with its affinity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PinAction {
    Stay,
    /// Let the worker off its home: run on the pool's other cores.
    Release,
    /// Pin to the home core again.
    Repin,
}

/// The adaptive policy of one worker, as a plain state machine (no clock,
/// no syscalls) so its decisions can be tested exactly.
///
/// Pinned, [`STRIKES`] slow waits in a row let the worker off its home core
/// (onto the pool's other cores). Released, it keeps measuring: if it waits
/// just as long over there, its home was not the problem (the whole machine
/// is busy, or the host stalled), so it goes back home at once and does not
/// leave again for a back-off. Otherwise it tries its home core again after
/// the back-off, as it goes to sleep.
#[derive(Debug)]
pub(crate) struct AdaptivePolicy {
    pinned: bool,
    /// Per kind of wait: when the current window of slow waits began, and
    /// how many fell in it. A busy neighbour does not make every wait slow
    /// (the worker runs between its time slices), so the evidence is
    /// [`STRIKES`] slow waits within [`WINDOW`], whatever quick ones come
    /// between; each kind counts on its own (the kernel may let a search
    /// run on and still make a woken thread wait).
    strikes: [(Option<Instant>, u8); 2],
    /// While released: when to try the home core again.
    repin_at: Option<Instant>,
    backoff: Duration,
    /// While pinned after a re-pin: when the back-off resets (the core has
    /// been fine for a while).
    calm_at: Option<Instant>,
    /// No release before this (a release that did not help came back).
    hold_until: Option<Instant>,
    /// Measurements count from this moment: a thread's first moments (its
    /// stack faulted in, a pool of threads starting and pinning at once)
    /// are slow for reasons that say nothing about the core. (Arming at the
    /// first sleep instead was tried: a worker on a busy core may never get
    /// through a search to sleep, and then was never let off.)
    armed_at: Option<Instant>,
}

impl AdaptivePolicy {
    pub(crate) fn new(started: Instant) -> Self {
        AdaptivePolicy {
            pinned: true,
            strikes: [(None, 0); 2],
            repin_at: None,
            backoff: BASE_BACKOFF,
            calm_at: None,
            hold_until: None,
            armed_at: started.checked_add(ARM_DELAY),
        }
    }

    #[cfg(test)]
    pub(crate) fn is_pinned(&self) -> bool {
        self.pinned
    }

    /// The worker waited `delay` for a core (`kind`: from a waker's stamp
    /// to running, or through one round of its search). `room_elsewhere`
    /// is asked before a release: whether any other core might be free (a
    /// worker of the pool asleep, or cores without one). With every other
    /// core busy with the pool's own workers, moving only adds churn.
    pub(crate) fn observe(
        &mut self,
        kind: Wait,
        delay: Duration,
        now: Instant,
        room_elsewhere: impl FnOnce() -> bool,
    ) -> PinAction {
        if self.armed_at.map_or(true, |at| now < at) {
            return PinAction::Stay;
        }
        if delay < SLOW_WAKE {
            if self.pinned && self.calm_at.is_some_and(|at| now >= at) {
                // Pinned and quick for as long as the last back-off: the
                // next trouble starts from the base again.
                self.backoff = BASE_BACKOFF;
                self.calm_at = None;
            }
            return PinAction::Stay;
        }
        let (began, count) = &mut self.strikes[kind as usize];
        match began {
            Some(at) if now.saturating_duration_since(*at) <= WINDOW => *count += 1,
            _ => {
                *began = Some(now);
                *count = 1;
            }
        }
        if *count < STRIKES {
            return PinAction::Stay;
        }
        self.strikes = [(None, 0); 2];
        if !self.pinned {
            // Just as slow away from home: go back, and stay a while.
            self.pinned = true;
            self.repin_at = None;
            self.calm_at = None;
            self.hold_until = now.checked_add(self.backoff);
            return PinAction::Repin;
        }
        if self.hold_until.is_some_and(|until| now < until) || !room_elsewhere() {
            return PinAction::Stay;
        }
        self.pinned = false;
        self.calm_at = None;
        self.repin_at = now.checked_add(self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        PinAction::Release
    }

    /// The worker is about to sleep: time to try its home core again?
    pub(crate) fn before_park(&mut self, now: Instant) -> PinAction {
        match self.repin_at {
            Some(at) if !self.pinned && now >= at => {
                self.pinned = true;
                self.repin_at = None;
                self.strikes = [(None, 0); 2];
                // If the next waits are quick for as long as this back-off,
                // the core is calm again (see `observe`).
                self.calm_at = now.checked_add(self.backoff);
                PinAction::Repin
            }
            _ => PinAction::Stay,
        }
    }

    /// A released worker found no other core of the pool that may be free
    /// (every sibling awake): away from home it only shares a core with a
    /// busy worker of its own pool, so it goes back, and holds there for
    /// the back-off (a release that did not help). Stays if pinned.
    pub(crate) fn no_room_elsewhere(&mut self, now: Instant) -> PinAction {
        if self.pinned {
            return PinAction::Stay;
        }
        self.pinned = true;
        self.repin_at = None;
        self.calm_at = None;
        self.strikes = [(None, 0); 2];
        self.hold_until = now.checked_add(self.backoff);
        PinAction::Repin
    }

    /// Whether `before_park` needs the clock (only a released worker does).
    pub(crate) fn wants_clock_before_park(&self) -> bool {
        !self.pinned
    }
}

/// Where one pool's workers may run.
#[derive(Debug, Clone)]
pub(crate) struct Placement {
    pub(crate) mode: Pinning,
    /// The cores the pool may use: home cores come from here, and an
    /// adaptive worker that is let off its core may run on any of them.
    pub(crate) cores: Vec<CoreId>,
    /// The user chose the cores (`pin_to_cores`): worker `i`'s home is
    /// `cores[i mod n]`, exactly; otherwise homes are allocated least used
    /// first across the process.
    pub(crate) exact: bool,
}

/// Whether this platform can widen a thread's affinity to a set of cores.
pub(crate) const CAN_WIDEN: bool = cfg!(any(target_os = "linux", target_os = "android"));

impl Placement {
    /// The placement for a pool, or `None` if its workers run unpinned.
    pub(crate) fn new(mode: Pinning, chosen: Option<&[usize]>) -> Option<Placement> {
        if cfg!(loom) || mode == Pinning::Off || (mode == Pinning::Adaptive && !CAN_WIDEN) {
            return None;
        }
        let all = core_affinity::get_core_ids()?;
        let cores: Vec<CoreId> = match chosen {
            None => all,
            Some(chosen) => chosen.iter().filter_map(|&i| all.get(i).copied()).collect(),
        };
        if cores.is_empty() {
            return None;
        }
        Some(Placement {
            mode,
            cores,
            exact: chosen.is_some(),
        })
    }

    /// Claims worker `index`'s home core (for the thread about to start).
    pub(crate) fn claim_home(&self, index: usize) -> CoreClaim {
        let core = if self.exact {
            self.cores[index % self.cores.len()]
        } else {
            least_used(&self.cores)
        };
        let mut usage = unpoisoned(CORE_USAGE.lock());
        if usage.len() <= core.id {
            usage.resize(core.id + 1, 0);
        }
        usage[core.id] += 1;
        CoreClaim(core)
    }
}

/// How many live workers, across every pool of the process, call each core
/// (by id) home. Locked with poisoning ignored: a panic while holding it
/// cannot leave the counts half-written (each update is one increment or
/// decrement).
static CORE_USAGE: StdMutex<Vec<usize>> = StdMutex::new(Vec::new());

/// Where ties between equally used cores start: spread by process, so that
/// several processes using the library do not all begin on core 0.
static TIE_START: AtomicUsize = AtomicUsize::new(usize::MAX);

/// The least used of `cores`; ties go to the first at or after this
/// process's tie start.
fn least_used(cores: &[CoreId]) -> CoreId {
    // Relaxed: any value is a fine tie start; racing initialisers agree.
    let mut start = TIE_START.load(std::sync::atomic::Ordering::Relaxed);
    if start == usize::MAX {
        start = std::process::id() as usize;
        TIE_START.store(start, std::sync::atomic::Ordering::Relaxed);
    }
    let usage = unpoisoned(CORE_USAGE.lock());
    let used = |core: &CoreId| usage.get(core.id).copied().unwrap_or(0);
    let n = cores.len();
    (0..n)
        .map(|k| cores[(start + k) % n])
        .min_by_key(used)
        .expect("a placement has at least one core")
}

/// What a starting worker thread needs to place itself: its home core
/// and, for adaptive pinning, the cores it may widen to.
#[derive(Debug)]
pub(crate) struct WorkerPin {
    pub(crate) home: CoreClaim,
    /// Where it goes while its home is busy: `Some` for
    /// [`Pinning::Adaptive`] with more than one core.
    pub(crate) widen_to: Option<Vec<CoreId>>,
}

impl Placement {
    /// Claims a home for worker `index` and says how it may move: off its
    /// home, to the pool's other cores. (Widening to every core including
    /// the busy one was tried: the kernel's wake-up placement then often
    /// kept the worker where it was, behind the busy thread.)
    pub(crate) fn worker_pin(&self, index: usize) -> WorkerPin {
        let home = self.claim_home(index);
        let widen_to = (self.mode == Pinning::Adaptive && self.cores.len() > 1).then(|| {
            let home = home.core().id;
            self.cores.iter().copied().filter(|core| core.id != home).collect()
        });
        WorkerPin { home, widen_to }
    }
}

/// A worker thread's claim on its home core, released when the thread
/// exits (dropped at the end of `run_worker`).
#[derive(Debug)]
pub(crate) struct CoreClaim(CoreId);

impl CoreClaim {
    pub(crate) fn core(&self) -> CoreId {
        self.0
    }
}

impl Drop for CoreClaim {
    fn drop(&mut self) {
        let mut usage = unpoisoned(CORE_USAGE.lock());
        if let Some(count) = usage.get_mut(self.0.id) {
            *count = count.saturating_sub(1);
        }
    }
}

/// Pins the calling thread to `core`. Best effort: false if refused.
pub(crate) fn pin_current(core: CoreId) -> bool {
    core_affinity::set_for_current(core)
}

/// Lets the calling thread run on any of `cores` (and only those). Best effort: false if
/// refused or unsupported.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn widen_current(cores: &[CoreId]) -> bool {
    // SAFETY: `cpu_set_t` is a plain bit array; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let capacity = std::mem::size_of::<libc::cpu_set_t>() * 8;
    for core in cores.iter().filter(|core| core.id < capacity) {
        // SAFETY: the index is below the set's size (checked above).
        unsafe { libc::CPU_SET(core.id, &mut set) };
    }
    // SAFETY: pid 0 is the calling thread; the pointer and size describe
    // the set above, which outlives the call.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0 }
}

/// See the Linux version: no affinity masks here (adaptive pinning is off
/// on such platforms, so this is never called).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn widen_current(_cores: &[CoreId]) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slow() -> Duration {
        SLOW_WAKE * 4
    }

    /// A policy whose worker started long enough ago to measure.
    fn armed() -> AdaptivePolicy {
        AdaptivePolicy::new(Instant::now() - ARM_DELAY * 2)
    }

    #[test]
    fn nothing_counts_in_a_threads_first_moments() {
        let t0 = Instant::now();
        let mut policy = AdaptivePolicy::new(t0);
        for _ in 0..STRIKES * 3 {
            assert_eq!(policy.observe(Wait::Search, slow(), t0, || true), PinAction::Stay);
        }
        assert_eq!(strike_out(&mut policy, t0 + ARM_DELAY), PinAction::Release);
    }

    /// Feeds `STRIKES` slow waits; returns the last answer.
    fn strike_out(policy: &mut AdaptivePolicy, now: Instant) -> PinAction {
        (0..STRIKES)
            .map(|_| policy.observe(Wait::Wake, slow(), now, || true))
            .last()
            .unwrap()
    }

    #[test]
    fn slow_waits_spread_out_are_forgiven_a_burst_of_them_releases() {
        let mut now = Instant::now();
        let mut policy = armed();
        for _ in 0..5 {
            for _ in 1..STRIKES {
                assert_eq!(policy.observe(Wait::Wake, slow(), now, || true), PinAction::Stay);
            }
            now += WINDOW * 2;
        }
        assert!(policy.is_pinned());
        // Quick waits between slow ones do not clear the evidence.
        for _ in 1..STRIKES {
            assert_eq!(policy.observe(Wait::Wake, slow(), now, || true), PinAction::Stay);
            assert_eq!(
                policy.observe(Wait::Wake, Duration::from_micros(10), now, || true),
                PinAction::Stay
            );
        }
        assert_eq!(
            policy.observe(Wait::Wake, slow(), now + WINDOW / 2, || true),
            PinAction::Release
        );
        assert!(!policy.is_pinned());
    }

    #[test]
    fn no_release_while_every_other_core_is_busy_with_the_pool() {
        let t0 = Instant::now();
        let mut policy = armed();
        for _ in 0..STRIKES {
            assert_eq!(policy.observe(Wait::Wake, slow(), t0, || false), PinAction::Stay);
        }
        assert!(policy.is_pinned());
        assert_eq!(strike_out(&mut policy, t0), PinAction::Release);
    }

    #[test]
    fn each_kind_of_wait_counts_on_its_own() {
        let t0 = Instant::now();
        let mut policy = armed();
        for _ in 1..STRIKES {
            assert_eq!(policy.observe(Wait::Wake, slow(), t0, || true), PinAction::Stay);
        }
        // A slow search round is not a third slow wake-up.
        assert_eq!(policy.observe(Wait::Search, slow(), t0, || true), PinAction::Stay);
        assert_eq!(policy.observe(Wait::Wake, slow(), t0, || true), PinAction::Release);
        // Search rounds count on their own too.
        let mut policy = armed();
        assert_eq!(
            (0..STRIKES)
                .map(|_| policy.observe(Wait::Search, slow(), t0, || true))
                .last(),
            Some(PinAction::Release)
        );
    }

    #[test]
    fn a_released_worker_repins_after_the_backoff_which_doubles_while_the_core_stays_busy() {
        let t0 = Instant::now();
        let mut policy = armed();
        assert_eq!(strike_out(&mut policy, t0), PinAction::Release);
        // Quick away from home: it stays away until the back-off passes.
        assert_eq!(
            policy.observe(Wait::Wake, Duration::from_micros(10), t0, || true),
            PinAction::Stay
        );
        assert_eq!(policy.before_park(t0 + BASE_BACKOFF / 2), PinAction::Stay);
        let t1 = t0 + BASE_BACKOFF;
        assert_eq!(policy.before_park(t1), PinAction::Repin);
        assert!(policy.is_pinned());
        // Still busy: released again, and the next try waits twice as long.
        assert_eq!(strike_out(&mut policy, t1), PinAction::Release);
        assert_eq!(policy.before_park(t1 + BASE_BACKOFF), PinAction::Stay);
        assert_eq!(policy.before_park(t1 + BASE_BACKOFF * 2), PinAction::Repin);
    }

    #[test]
    fn a_release_that_does_not_help_goes_home_and_holds() {
        let t0 = Instant::now();
        let mut policy = armed();
        assert_eq!(strike_out(&mut policy, t0), PinAction::Release);
        // Just as slow elsewhere: back home at once ...
        assert_eq!(strike_out(&mut policy, t0), PinAction::Repin);
        assert!(policy.is_pinned());
        // ... and no new release during the hold, however slow.
        assert_eq!(strike_out(&mut policy, t0), PinAction::Stay);
        // (The hold lasts the back-off, doubled by the release.)
        assert_eq!(strike_out(&mut policy, t0 + BASE_BACKOFF), PinAction::Stay);
        assert_eq!(strike_out(&mut policy, t0 + BASE_BACKOFF * 2), PinAction::Release);
    }

    #[test]
    fn a_released_worker_with_no_room_elsewhere_goes_home_and_holds() {
        let start = Instant::now();
        let mut policy = AdaptivePolicy::new(start);
        let armed = start + ARM_DELAY + Duration::from_millis(1);
        // Three slow waits within the window: released.
        let mut action = PinAction::Stay;
        for i in 0..STRIKES {
            let at = armed + Duration::from_millis(u64::from(i));
            action = policy.observe(Wait::Wake, SLOW_WAKE * 2, at, || true);
        }
        assert_eq!(action, PinAction::Release);
        let later = armed + Duration::from_millis(10);
        assert_eq!(policy.no_room_elsewhere(later), PinAction::Repin);
        assert!(policy.is_pinned());
        assert_eq!(policy.no_room_elsewhere(later), PinAction::Stay, "already home");
        // Holding: more slow waits do not release it again before the back-off.
        for i in 0..STRIKES {
            let at = later + Duration::from_millis(u64::from(i));
            assert_eq!(policy.observe(Wait::Wake, SLOW_WAKE * 2, at, || true), PinAction::Stay);
        }
    }

    #[test]
    fn the_backoff_is_capped_and_resets_once_the_core_is_calm() {
        let mut now = Instant::now();
        let mut policy = armed();
        for _ in 0..20 {
            assert_eq!(strike_out(&mut policy, now), PinAction::Release);
            now += MAX_BACKOFF;
            assert_eq!(policy.before_park(now), PinAction::Repin);
        }
        assert_eq!(policy.backoff, MAX_BACKOFF);
        // Quick waits for a whole back-off: back to the base.
        now += MAX_BACKOFF;
        assert_eq!(
            policy.observe(Wait::Wake, Duration::from_micros(5), now, || true),
            PinAction::Stay
        );
        assert_eq!(policy.backoff, BASE_BACKOFF);
    }

    #[test]
    fn ties_spread_and_claims_are_released() {
        let cores: Vec<CoreId> = (1000..1003).map(|id| CoreId { id }).collect();
        let placement = Placement {
            mode: Pinning::Strict,
            cores: cores.clone(),
            exact: false,
        };
        let a = placement.claim_home(0);
        let b = placement.claim_home(1);
        let c = placement.claim_home(2);
        let mut homes = vec![a.core().id, b.core().id, c.core().id];
        homes.sort_unstable();
        assert_eq!(
            homes,
            vec![1000, 1001, 1002],
            "three claims on three free cores use all three"
        );
        let freed = b.core();
        drop(b);
        assert_eq!(
            placement.claim_home(3).core(),
            freed,
            "the least used core is the one just freed"
        );
    }
}
