//! The sleep word: how many workers are searching and how many are
//! sleeping, packed into one atomic so that a submitter reads both in one
//! load and a worker moves from one count to the other in one RMW.
//!
//! The low 32 bits count sleepers, the high 32 bits searchers. Moving a
//! worker between the two is one `fetch_add` of a wrapping difference,
//! exact because the count it leaves is at least one (32 bits each suffice:
//! a pool has at most `MAX_WORKERS` = 2^16 workers).

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicU64, Ordering};

const ONE_SLEEPING: u64 = 1;
const ONE_SEARCHING: u64 = 1 << 32;
const SLEEPING_MASK: u64 = ONE_SEARCHING - 1;

/// A snapshot of the word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Counts(u64);

impl Counts {
    /// Nobody searching, nobody sleeping.
    pub(super) const NONE: Counts = Counts(0);

    /// Workers searching for work.
    #[inline]
    pub(super) fn searching(self) -> u64 {
        self.0 >> 32
    }

    /// Workers announced asleep.
    #[inline]
    pub(super) fn sleeping(self) -> u64 {
        self.0 & SLEEPING_MASK
    }
}

/// The word itself, on its own cache line. Every method takes the ordering
/// from its caller, which says why (`sleep/mod.rs`).
pub(super) struct AtomicCounts(CachePadded<AtomicU64>);

impl AtomicCounts {
    #[inline]
    pub(super) fn new() -> Self {
        AtomicCounts(CachePadded::new(AtomicU64::new(0)))
    }

    #[inline]
    pub(super) fn load(&self, ordering: Ordering) -> Counts {
        Counts(self.0.load(ordering))
    }

    /// One more searcher (a worker begins to search, or is resumed).
    #[inline]
    pub(super) fn add_searching(&self, ordering: Ordering) -> Counts {
        Counts(self.0.fetch_add(ONE_SEARCHING, ordering))
    }

    /// One searcher fewer. Returns the counts before.
    #[inline]
    pub(super) fn sub_searching(&self, ordering: Ordering) -> Counts {
        Counts(self.0.fetch_sub(ONE_SEARCHING, ordering))
    }

    /// A searcher announces sleep (searching - 1, sleeping + 1).
    #[inline]
    pub(super) fn searching_to_sleeping(&self, ordering: Ordering) -> Counts {
        Counts(self.0.fetch_add(ONE_SLEEPING.wrapping_sub(ONE_SEARCHING), ordering))
    }

    /// A sleeper is woken or retracts (sleeping - 1, searching + 1).
    #[inline]
    pub(super) fn sleeping_to_searching(&self, ordering: Ordering) -> Counts {
        Counts(self.0.fetch_add(ONE_SEARCHING.wrapping_sub(ONE_SLEEPING), ordering))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn counts(word: &AtomicCounts) -> (u64, u64) {
        let now = word.load(Ordering::Relaxed);
        (now.searching(), now.sleeping())
    }

    #[test]
    fn the_two_halves_do_not_interfere() {
        let word = AtomicCounts::new();
        for _ in 0..3 {
            word.add_searching(Ordering::Relaxed);
        }
        assert_eq!(counts(&word), (3, 0));
        word.searching_to_sleeping(Ordering::Relaxed);
        word.searching_to_sleeping(Ordering::Relaxed);
        assert_eq!(counts(&word), (1, 2));
        let before = word.sleeping_to_searching(Ordering::Relaxed);
        assert_eq!((before.searching(), before.sleeping()), (1, 2));
        assert_eq!(counts(&word), (2, 1));
        word.sub_searching(Ordering::Relaxed);
        word.sub_searching(Ordering::Relaxed);
        assert_eq!(counts(&word), (0, 1));
    }

    #[test]
    fn full_halves_stay_apart() {
        let word = AtomicCounts::new();
        // The most workers a pool may have, all asleep, then all searching.
        let most = 1u64 << 16;
        for _ in 0..most {
            word.add_searching(Ordering::Relaxed);
            word.searching_to_sleeping(Ordering::Relaxed);
        }
        assert_eq!(counts(&word), (0, most));
        for _ in 0..most {
            word.sleeping_to_searching(Ordering::Relaxed);
        }
        assert_eq!(counts(&word), (most, 0));
    }
}
