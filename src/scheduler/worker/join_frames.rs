//! A worker's pending `join`s whose second halves nobody can see yet.
//!
//! A `join` inside the pool does not always publish its second half `b` to
//! thieves. It links a frame (on its own stack) into this list and
//! publishes `b` only when somebody could take it: when the worker's deque
//! is empty (so a thief looking at this worker would find nothing) or when
//! a worker of the pool is idle. Then it publishes the *oldest* private
//! `b` on this thread — the biggest piece of work left, as a thief
//! stealing from the old end of a deque would take — which need not be the
//! current join's. A `b` still private when its `a` returns runs inline:
//! no deque push, no pop, no fence. Fine-grained fork-join then costs
//! little more than the recursion itself while every worker is busy, and
//! falls back to publishing one `b` at a time as soon as one is not. (The
//! idea is heartbeat scheduling's — publish rarely, the oldest first — with
//! "a thief is waiting" as the beat instead of a timer.)
//!
//! A worker keeps at most [`LATENT_JOINS`] private frames. A `join` that
//! finds that many links none: it makes the same offer (publishing an
//! older half if a thief could take one) and then runs `a` and `b` as two
//! plain calls, with no job, latch or frame. Its `b` is younger than each
//! of the private halves a thief gets first (in a balanced recursion, no
//! bigger), and as those are published or run the worker links frames
//! again. (chili
//! runs such joins as plain calls too, deciding by its queue's length.)
//! What a plain `join` gives up: its `b` runs after its `a` on this thread
//! even if a thief comes meanwhile and the older halves are gone.
//!
//! Frames nest strictly (each `join` unlinks its frame before it returns,
//! and everything run meanwhile on this thread is nested inside it), so
//! the list is a stack: the published frames form its bottom part, the
//! private ones the top part, and [`JoinFrames::oldest_private`] is where
//! the two meet.
//!
//! Only the worker's own thread touches its list (a `WorkerThread` is not
//! `Sync`), so plain `Cell`s suffice.

use std::cell::Cell;
use std::ptr;

use crate::scheduler::job::JobRef;

/// How many private frames a worker keeps at least: a `join` that finds
/// this many runs `a` then `b` as plain calls (they are younger, so
/// smaller, than every private half, which thieves get first). A pool with
/// more workers keeps more ([`latent_joins_for`]).
#[cfg(not(loom))]
pub(crate) const LATENT_JOINS: usize = 3;
/// Under loom two: the two-join models keep two private frames (so that
/// "publish the oldest" has a choice), the three-join one reaches the
/// plain path.
#[cfg(loom)]
pub(crate) const LATENT_JOINS: usize = 2;

/// How many private frames a worker of a pool of `workers` keeps: enough
/// that in a balanced recursion the work it keeps out of thieves' reach is
/// at most a quarter of a fair share. The private halves are the oldest,
/// so the largest: with `k` of them, what the worker keeps to itself below
/// them is `1 / 2^k` of its work, and `k = log2(workers) + 2` makes that
/// `1 / (4 * workers)`. Three for one or two workers, six for 16, eight
/// for 64.
/// (Under loom always [`LATENT_JOINS`], which the models are written for.)
#[inline]
pub(crate) fn latent_joins_for(workers: usize) -> usize {
    if cfg!(loom) {
        return LATENT_JOINS;
    }
    let log2 = (usize::BITS - workers.saturating_sub(1).leading_zeros()) as usize;
    LATENT_JOINS.max(log2 + 2)
}

/// One pending `join`: its second half, until it is published or taken
/// back to run inline.
pub(crate) struct JoinFrame {
    /// `b`'s job while it is private; `None` once published.
    job: Cell<Option<JobRef>>,
    /// The next older frame (null: none).
    older: Cell<*const JoinFrame>,
    /// The next newer frame (null: none).
    newer: Cell<*const JoinFrame>,
}

impl JoinFrame {
    /// A frame for `b`'s job, not linked yet.
    #[inline]
    pub(crate) fn new(job: JobRef) -> Self {
        JoinFrame {
            job: Cell::new(Some(job)),
            older: Cell::new(ptr::null()),
            newer: Cell::new(ptr::null()),
        }
    }
}

/// A worker's list of pending `join` frames.
pub(crate) struct JoinFrames {
    /// The newest frame (null: none).
    newest: Cell<*const JoinFrame>,
    /// The oldest frame whose job is still private (null: none).
    oldest_private: Cell<*const JoinFrame>,
    /// How many frames are private (from `oldest_private` to `newest`).
    private: Cell<usize>,
}

impl JoinFrames {
    pub(crate) const fn new() -> Self {
        JoinFrames {
            newest: Cell::new(ptr::null()),
            oldest_private: Cell::new(ptr::null()),
            private: Cell::new(0),
        }
    }

    /// Links `frame` as the newest (private) frame.
    ///
    /// # Safety
    /// `frame` stays where it is until [`JoinFrames::unlink`] unlinks it,
    /// which must happen before any older frame is unlinked (frames nest).
    #[inline]
    pub(crate) unsafe fn link(&self, frame: &JoinFrame) {
        let newest = self.newest.get();
        frame.older.set(newest);
        if !newest.is_null() {
            // SAFETY: a linked frame is alive (`link`'s contract).
            unsafe { (*newest).newer.set(frame) };
        }
        self.newest.set(frame);
        if self.oldest_private.get().is_null() {
            self.oldest_private.set(frame);
        }
        self.private.set(self.private.get() + 1);
    }

    /// Unlinks `frame`, the newest frame, and returns its job if it was
    /// still private (the caller runs it inline), `None` if it was
    /// published (the caller takes it back from the deque or waits for
    /// the thief).
    #[inline]
    pub(crate) fn unlink(&self, frame: &JoinFrame) -> Option<JobRef> {
        debug_assert!(ptr::eq(self.newest.get(), frame), "join frames unlinked out of order");
        let older = frame.older.get();
        self.newest.set(older);
        if !older.is_null() {
            // SAFETY: older frames are alive while a newer one is linked
            // (`link`'s contract).
            unsafe { (*older).newer.set(ptr::null()) };
        }
        if ptr::eq(self.oldest_private.get(), frame) {
            // It was the only private frame: every older one is published.
            self.oldest_private.set(ptr::null());
        }
        let job = frame.job.take();
        if job.is_some() {
            self.private.set(self.private.get() - 1);
        }
        job
    }

    /// Takes the job of the oldest private frame, marking that frame
    /// published: the caller pushes it where thieves can see it.
    #[inline]
    pub(crate) fn publish_oldest(&self) -> Option<JobRef> {
        let oldest = self.oldest_private.get();
        if oldest.is_null() {
            return None;
        }
        // SAFETY: linked frames are alive (`link`'s contract).
        let frame = unsafe { &*oldest };
        // Every frame newer than a private one is private too.
        self.oldest_private.set(frame.newer.get());
        self.private.set(self.private.get() - 1);
        frame.job.take()
    }

    /// How many frames are private: a `join` that finds [`LATENT_JOINS`]
    /// of them runs its halves one after the other, linking no frame.
    #[inline]
    pub(crate) fn private_count(&self) -> usize {
        self.private.get()
    }

    /// Whether any frame's job is still private (`block_in_place` and the
    /// like publish them all before the worker stops taking part).
    #[inline]
    pub(crate) fn has_private(&self) -> bool {
        !self.oldest_private.get().is_null()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    #[test]
    fn bigger_pools_keep_more_private_halves() {
        use super::latent_joins_for;
        let kept: Vec<usize> = [1, 2, 3, 4, 8, 16, 64, 100]
            .iter()
            .map(|&n| latent_joins_for(n))
            .collect();
        assert_eq!(kept, [3, 3, 4, 4, 5, 6, 8, 9]);
    }

    use super::*;
    use crate::scheduler::job::{HeapJob, JobKind};

    fn job() -> JobRef {
        HeapJob::into_job_ref(|| {}, JobKind::Task)
    }

    fn run(job: JobRef) {
        // SAFETY: a fresh inline job, run once.
        unsafe { job.execute() };
    }

    #[test]
    fn the_oldest_private_frame_is_published_first_and_the_rest_stay_private() {
        let frames = JoinFrames::new();
        let (outer, middle, inner) = (JoinFrame::new(job()), JoinFrame::new(job()), JoinFrame::new(job()));
        // SAFETY: the frames outlive their links and are unlinked newest
        // first below.
        unsafe {
            frames.link(&outer);
            frames.link(&middle);
            frames.link(&inner);
        }
        assert_eq!(frames.private_count(), 3);
        // Published oldest first.
        run(frames.publish_oldest().expect("outer is private"));
        assert!(outer.job.take().is_none());
        run(frames.publish_oldest().expect("middle is private"));
        assert!(frames.has_private());
        assert_eq!(frames.private_count(), 1);
        // Unlinked newest first: the private one comes back to run inline,
        // the published ones do not.
        run(frames.unlink(&inner).expect("inner stayed private"));
        assert!(!frames.has_private());
        assert_eq!(frames.private_count(), 0);
        assert!(frames.unlink(&middle).is_none());
        assert!(frames.unlink(&outer).is_none());
        assert!(frames.publish_oldest().is_none());
    }

    #[test]
    fn a_frame_linked_after_publishing_is_the_next_to_publish() {
        let frames = JoinFrames::new();
        let (outer, inner) = (JoinFrame::new(job()), JoinFrame::new(job()));
        // SAFETY: as above.
        unsafe { frames.link(&outer) };
        run(frames.publish_oldest().expect("outer is private"));
        assert!(!frames.has_private());
        // SAFETY: as above.
        unsafe { frames.link(&inner) };
        assert_eq!(frames.private_count(), 1);
        run(frames.publish_oldest().expect("inner is private"));
        assert!(frames.unlink(&inner).is_none());
        assert!(frames.unlink(&outer).is_none());
        assert_eq!(frames.private_count(), 0);
    }
}
