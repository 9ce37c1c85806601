//! Spawn credits: a scoped job counts its own spawns into its scope with
//! one read-modify-write of the scope's `pending` per batch, not one per
//! spawn (`pool/README.md`, "Spawn credits").
//!
//! Every spawn must be counted in `pending` before it is queued, and every
//! finished job takes itself off. That counter is the one line every
//! worker of a busy scope writes: two contended RMWs per spawned job. A
//! job that spawns instead adds [`BATCH`] at its first spawn and spends
//! the surplus on its next spawns (a thread-local count, no atomic); when
//! it ends it takes off itself and whatever it did not spend, in its one
//! final RMW. `pending` never falls below the true count of unfinished
//! jobs (unspent credits only add to it), so it reaches zero exactly when
//! the last job ends and no credit is left.
//!
//! The credit belongs to the job running on this thread and to its scope
//! only: a spawn into another scope, or from code not running a scoped job
//! (the scope's body, another thread), counts itself with one RMW as
//! before. A job that runs other jobs while it waits (a nested scope, a
//! `join`) keeps its credit aside meanwhile: each job's credit is set up
//! and handed back around it ([`run_with_credit`]).

use std::cell::Cell;

/// Spawns counted by one RMW: enough that a loop of spawns pays a fraction
/// of one per spawn, while a job that spawns once hands the rest back in
/// the RMW it makes anyway.
pub(crate) const BATCH: usize = 8;

/// The scope whose job runs on this thread (its address, 0 for none) with
/// the job's unspent credits in the low bits: one word, read and written
/// whole (a two-word cell was copied as one 16-byte block that could not
/// take its bytes from the two 8-byte stores that wrote it, a stall per
/// spawn). A `Scope` is aligned to its cache-padded counter, so the bits
/// below its alignment are free.
pub(crate) const CREDITS: usize = 0x7;
const _: () = assert!(BATCH - 1 <= CREDITS);

#[cfg(not(loom))]
std::thread_local! {
    static CREDIT: Cell<usize> = const { Cell::new(0) };
}
// Under loom each model thread needs its own: loom's thread-locals.
#[cfg(loom)]
loom::thread_local! {
    static CREDIT: Cell<usize> = Cell::new(0);
}

/// What a spawn into `scope` must add to its `pending`: 0 if the running
/// job's credit covers it, [`BATCH`] if the running job is `scope`'s and
/// its credit ran out (the surplus is now credit), 1 otherwise.
#[inline]
pub(crate) fn count_spawn(scope: *const ()) -> usize {
    CREDIT.with(|credit| {
        let now = credit.get();
        if now & !CREDITS != scope as usize {
            return 1;
        }
        if now & CREDITS > 0 {
            credit.set(now - 1);
            return 0;
        }
        credit.set(now | (BATCH - 1));
        BATCH
    })
}

/// Runs `job`, a job of `scope`, with a credit of its own; returns the
/// credits it did not spend (to take off `pending` with the job itself).
/// The credit of whatever ran before comes back afterwards, also if `job`
/// unwinds (the caller catches a spawned closure's panic inside `job`, so
/// only a bug of the pool's own could unwind here, and that leaves the
/// scope waiting, with or without credits).
///
/// `scope` is the address of a live scope, aligned beyond [`CREDITS`].
#[inline]
pub(crate) fn run_with_credit(scope: *const (), job: impl FnOnce()) -> usize {
    struct Restore(usize);
    impl Drop for Restore {
        #[inline]
        fn drop(&mut self) {
            CREDIT.with(|credit| credit.set(self.0));
        }
    }
    debug_assert_eq!(scope as usize & CREDITS, 0, "a scope's address has free low bits");
    let restore = Restore(CREDIT.with(|credit| credit.replace(scope as usize)));
    job();
    let left = CREDIT.with(|credit| credit.get() & CREDITS);
    drop(restore);
    left
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_job_pays_once_per_batch_and_hands_back_the_rest() {
        let scope = 0x1000 as *const ();
        let mut added = 0;
        let left = run_with_credit(scope, || {
            for _ in 0..BATCH + 1 {
                added += count_spawn(scope);
            }
        });
        assert_eq!(added, 2 * BATCH, "two batches for BATCH + 1 spawns");
        assert_eq!(left, BATCH - 1, "the second batch paid for one spawn");
        assert_eq!(added - left, BATCH + 1, "the net count is the spawns");
    }

    #[test]
    fn spawns_into_another_scope_or_outside_a_job_count_one_each() {
        let (mine, other) = (0x1000 as *const (), 0x2000 as *const ());
        assert_eq!(count_spawn(mine), 1, "outside any job");
        let left = run_with_credit(mine, || {
            assert_eq!(count_spawn(other), 1);
            assert_eq!(count_spawn(mine), BATCH);
            // A nested job of the other scope keeps its own credit, and
            // ours comes back after it.
            let nested = run_with_credit(other, || {
                assert_eq!(count_spawn(other), BATCH);
                assert_eq!(count_spawn(mine), 1);
            });
            assert_eq!(nested, BATCH - 1);
            assert_eq!(count_spawn(mine), 0, "our credit survived the nested job");
        });
        assert_eq!(left, BATCH - 2);
        assert_eq!(count_spawn(mine), 1, "no credit once the job ended");
    }
}
