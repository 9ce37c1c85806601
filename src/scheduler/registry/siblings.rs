//! Sibling pools: the other sub-pools of a `MultiPool` built with
//! `steal_across` (the default). A worker that found nothing in its own
//! pool takes work from its siblings' queues before it sleeps, and a
//! submit that found every worker of its pool busy wakes a sleeping worker
//! of a sibling, so no task waits while any worker of the group is idle.
//!
//! Siblings are named by `Weak` references: each sub-pool's state lives as
//! long as its own handles and threads, and links between them must not
//! keep a shut-down pool alive. Not modelled under loom (a `MultiPool` is
//! a group of pools, each of which the models check), where the list is
//! always empty.

use crate::scheduler::job::JobRef;
use crate::scheduler::queue::Steal;
use crate::scheduler::registry::Shared;
use crate::sync::{Arc, Ordering};

/// A worker counted asleep by its sibling pools; uncounted when dropped.
pub(crate) struct SiblingSleepHint {
    counted: Vec<Arc<Shared>>,
}

impl Drop for SiblingSleepHint {
    fn drop(&mut self) {
        for sibling in &self.counted {
            // Relaxed: a hint; a stale count only costs one needless visit.
            sibling.sibling_sleepers.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The sibling pools of one pool (empty unless linked).
#[derive(Default)]
pub(crate) struct Siblings {
    #[cfg(not(loom))]
    list: std::sync::OnceLock<Box<[std::sync::Weak<Shared>]>>,
}

impl Siblings {
    /// Whether this pool has siblings.
    #[inline]
    pub(crate) fn any(&self) -> bool {
        #[cfg(not(loom))]
        return self.list.get().is_some_and(|list| !list.is_empty());
        #[cfg(loom)]
        return false;
    }

    /// Calls `f` with each sibling still alive, starting at `start`,
    /// until it returns `Some`.
    fn find<T>(&self, start: usize, mut f: impl FnMut(&Arc<Shared>) -> Option<T>) -> Option<T> {
        #[cfg(not(loom))]
        {
            let list = self.list.get()?;
            let count = list.len();
            (0..count).find_map(|offset| f(&list[(start + offset) % count].upgrade()?))
        }
        #[cfg(loom)]
        {
            let _ = (start, &mut f);
            None
        }
    }
}

impl Shared {
    /// Makes each of `pools` a sibling of every other (once, at build).
    ///
    /// Each pool's list is set under its control lock, where its `missing`
    /// changes: its threads lacking before that are counted here, in each
    /// sibling's `siblings_lacking_threads`, and every change after it by
    /// `note_missing_locked`, so the hint never drifts.
    #[cfg(not(loom))]
    pub(crate) fn link_siblings(pools: &[&Arc<Shared>]) {
        for (index, pool) in pools.iter().enumerate() {
            let others: Box<[_]> = pools
                .iter()
                .enumerate()
                .filter(|&(other, _)| other != index)
                .map(|(_, other)| Arc::downgrade(other))
                .collect();
            let _control = crate::sync::lock(&pool.control);
            if pool.siblings.list.set(others).is_ok() && pool.missing.load(Ordering::Relaxed) > 0 {
                pool.tell_siblings_about_threads(true);
            }
        }
    }

    /// Under loom there are no sibling pools.
    #[cfg(loom)]
    pub(crate) fn link_siblings(_pools: &[&Arc<Shared>]) {}

    /// Takes one job from a sibling's injector or workers' deques (starting
    /// at sibling `start`), with the sibling it belongs to: it must run
    /// with that pool's accounting (`Shared::run_job` on the sibling).
    #[cold]
    pub(crate) fn steal_from_siblings(&self, start: usize) -> Option<(Arc<Shared>, JobRef)> {
        self.siblings.find(start, |sibling| {
            let job = sibling.steal_one()?;
            Some((sibling.clone(), job))
        })
    }

    /// Whether any sibling's queue holds work (the final scan before a
    /// worker with siblings sleeps).
    #[cold]
    pub(crate) fn siblings_have_work(&self) -> bool {
        self.siblings
            .find(0, |sibling| sibling.has_queued_work().then_some(()))
            .is_some()
    }

    /// A worker of this pool is about to announce sleep: each sibling
    /// counts it (`sibling_sleepers`) until the returned guard is dropped,
    /// so a sibling's saturated submit looks for it with one load of its
    /// own counter instead of visiting every sibling. The increments come
    /// before the sleeper's announce fence, the submitter reads the count
    /// after the fence in `notify_new_work`: either the submitter sees the
    /// count, or the sleeper's re-scan (which covers its siblings' queues)
    /// sees the task.
    #[cold]
    pub(crate) fn announce_sleep_to_siblings(&self) -> SiblingSleepHint {
        let mut counted = Vec::new();
        let _ = self.siblings.find(0, |sibling| {
            // Relaxed: ordered by the sleeper's SeqCst fence that follows.
            sibling.sibling_sleepers.fetch_add(1, Ordering::Relaxed);
            counted.push(sibling.clone());
            None::<()>
        });
        SiblingSleepHint { counted }
    }

    /// Whether a worker of a sibling pool is announced asleep (read after
    /// the fence in `notify_new_work`).
    #[inline]
    pub(crate) fn a_sibling_sleeps(&self) -> bool {
        // Relaxed: see `announce_sleep_to_siblings`.
        self.sibling_sleepers.load(Ordering::Relaxed) > 0
    }

    /// `missing` went from `before` to `after` (under the control lock):
    /// when it starts or stops lacking threads, the siblings' hints follow.
    #[inline]
    pub(crate) fn note_missing_locked(&self, before: usize, after: usize) {
        if (before == 0) != (after == 0) && self.siblings.any() {
            self.tell_siblings_about_threads(after > 0);
        }
    }

    #[cold]
    fn tell_siblings_about_threads(&self, lacking: bool) {
        let _ = self.siblings.find(0, |sibling| {
            // Relaxed: a hint, read after the fence in `notify_new_work`;
            // every change is made under this pool's control lock, so the
            // increments and decrements pair up.
            if lacking {
                sibling.siblings_lacking_threads.fetch_add(1, Ordering::Relaxed);
            } else {
                sibling.siblings_lacking_threads.fetch_sub(1, Ordering::Relaxed);
            }
            None::<()>
        });
    }

    /// Every worker of this pool is busy and no thread of its own can start
    /// (the cold end of `notify_new_work`): wake a sleeping worker of a
    /// sibling, or else start a thread in a sibling with room for one (a
    /// sub-pool that never had work has none). Either looks at this pool's
    /// queues before it sleeps.
    #[inline]
    pub(crate) fn hand_work_to_a_sibling(&self) {
        if self.a_sibling_sleeps() {
            self.wake_a_sibling();
        // Relaxed: see `tell_siblings_about_threads`.
        } else if self.siblings_lacking_threads.load(Ordering::Relaxed) > 0 {
            self.start_a_siblings_thread();
        }
    }

    #[cold]
    #[inline(never)]
    fn start_a_siblings_thread(&self) {
        let _ = self.siblings.find(0, |sibling| {
            // Relaxed: a hint; `start_missing_worker` decides under the
            // sibling's control lock.
            (sibling.missing.load(Ordering::Relaxed) > 0 && !sibling.is_closed()).then(|| {
                Shared::start_missing_worker(sibling);
            })
        });
    }

    /// Every worker of this pool is busy and no thread can start: wake a
    /// sleeping worker of a sibling, which looks here before it sleeps
    /// again. The sibling's own `notify_new_work` fences before it reads
    /// its sleep word, pairing with the sleeper's announce-fence-rescan,
    /// whose re-scan covers its siblings' queues (`siblings_have_work`).
    #[cold]
    #[inline(never)]
    pub(crate) fn wake_a_sibling(&self) {
        let _ = self.siblings.find(0, |sibling| {
            // `notify_new_work` is true when nobody there could be woken.
            (!sibling.sleep.notify_new_work(sibling.capacity())).then_some(())
        });
    }

    /// One job from this pool's injector or any of its deques (a thief
    /// from another pool, which has no deque of ours to fill).
    fn steal_one(&self) -> Option<JobRef> {
        loop {
            let mut retry = false;
            for steal in std::iter::once(self.injector.steal())
                .chain(self.stealers().filter(|s| !s.is_empty()).map(|s| s.steal()))
            {
                match steal {
                    Steal::Success(job) => return Some(job),
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
            }
            if !retry {
                return None;
            }
        }
    }

    /// A sibling's worker ran one of our jobs: it may have been the last
    /// one, which our own workers would have announced had they run it —
    /// to `wait_idle` callers, and, on a closed pool, to the parked workers
    /// waiting to see it drained (found as a shutdown that hung). The fence
    /// orders the completion count before the reads of the waiters and the
    /// sleep word (pairing with the fences in `wait_idle` and
    /// `announce_sleep`, as `begin_searching`'s fence does).
    #[cold]
    pub(crate) fn after_a_sibling_ran_a_job(&self) {
        crate::sync::fence(Ordering::SeqCst);
        self.notify_idle_waiters();
        if self.is_closed() {
            self.sleep.notify_all();
        }
    }

    /// Counts a counted job of this pool that a sibling's worker ran.
    pub(crate) fn count_ran_by_sibling(&self) {
        // Release: pairs with the Acquire in `all_tasks_done`, as a
        // worker's own completion count does.
        self.ran_by_siblings.fetch_add(1, Ordering::Release);
    }
}
