//! Worker threads coming and going: starting on demand, leaving (keep-alive
//! expiry, shutdown), tuning the capacity, joining, rebooting.
//!
//! Everything here runs under the control lock, which no worker holds while
//! running a task and nobody holds while joining a thread that may still
//! need it.

use std::io;
use std::panic::{self, AssertUnwindSafe};

use crate::registry::Shared;
use crate::sync::{fence, lock, thread, Arc, MutexGuard, Ordering};
use crate::worker::run_worker;

/// What the control lock protects.
pub(crate) struct Control {
    /// Each slot's thread, if one was started and not yet joined.
    handles: Vec<Option<thread::JoinHandle<()>>>,
    /// Threads that left (keep-alive) and whose slot got a new thread
    /// before they were joined. Joined when finished, or at shutdown.
    retired: Vec<thread::JoinHandle<()>>,
    /// Cores to pin worker `i` to (`i mod n`), if pinning.
    cores: Option<Vec<core_affinity::CoreId>>,
}

impl Control {
    pub(crate) fn new(slots: usize) -> Self {
        Control {
            handles: (0..slots).map(|_| None).collect(),
            retired: Vec::new(),
            cores: None,
        }
    }
}

/// Why a thread could not be started.
pub(crate) enum StartError {
    Spawn(io::Error),
    NamePanicked(usize),
}

impl Shared {
    /// Records the cores to pin to (once, at build).
    pub(crate) fn set_cores(&self, cores: Option<Vec<core_affinity::CoreId>>) {
        lock(&self.control).cores = cores;
    }

    /// Starts a thread for slot `index` (which must have none live).
    pub(crate) fn start_worker_locked(
        this: &Arc<Self>,
        control: &mut MutexGuard<'_, Control>,
        index: usize,
        fallback_name: bool,
    ) -> Result<(), StartError> {
        let slot = &this.slots[index];
        debug_assert!(!slot.counters.live.load(Ordering::Relaxed));
        // The slot's previous thread (if any) has left its main loop, but
        // may still be on its way out (it may even be the calling thread, in
        // `expire`): never join it here. The new thread waits for the deque
        // to come back (`run_worker`); the old handle is joined later.
        if let Some(previous) = control.handles[index].take() {
            control.retired.push(previous);
        }
        Self::reap_retired_locked(control);
        this.note_started(index);
        let name = match &this.config.thread_name {
            Some(name) => match panic::catch_unwind(AssertUnwindSafe(|| name(index))) {
                Ok(name) => name,
                // At build (pre-allocation) the error goes to the caller.
                Err(_) if !fallback_name => return Err(StartError::NamePanicked(index)),
                // On demand there is no caller to tell, and refusing the
                // thread would strand the work that asked for it: use the
                // default name and say so.
                Err(_) => {
                    eprintln!("stealpool: the thread_name closure panicked for worker {index}; using the default name");
                    format!("stealpool-{index}")
                }
            },
            None => format!("stealpool-{index}"),
        };
        let mut builder = thread::Builder::new().name(name);
        if let Some(bytes) = this.config.stack_size {
            builder = builder.stack_size(bytes);
        }
        let core = control.cores.as_ref().map(|cores| cores[index % cores.len()]);
        // Counted live before the thread runs, so nobody starts a second one.
        // Relaxed: these counters change only under the control lock.
        slot.counters.live.store(true, Ordering::Relaxed);
        this.live_threads.fetch_add(1, Ordering::Relaxed);
        if index < this.target() {
            this.missing.fetch_sub(1, Ordering::Relaxed);
        }
        let shared = this.clone();
        match builder.spawn(move || run_worker(shared, index, core)) {
            Ok(handle) => {
                control.handles[index] = Some(handle);
                Ok(())
            }
            Err(error) => {
                this.forget_thread_locked(index);
                Err(StartError::Spawn(error))
            }
        }
    }

    /// Joins the retired threads that have finished (they never block us).
    fn reap_retired_locked(control: &mut MutexGuard<'_, Control>) {
        #[cfg(not(loom))]
        {
            let mut i = 0;
            while i < control.retired.len() {
                if control.retired[i].is_finished() {
                    let _ = control.retired.swap_remove(i).join();
                } else {
                    i += 1;
                }
            }
        }
        #[cfg(loom)]
        let _ = control;
    }

    /// Undoes a thread's accounting (it leaves, or never started).
    fn forget_thread_locked(&self, index: usize) {
        self.slots[index].counters.live.store(false, Ordering::Relaxed);
        self.live_threads.fetch_sub(1, Ordering::Relaxed);
        if index < self.target() {
            self.missing.fetch_add(1, Ordering::Relaxed);
        }
        self.exited.notify_all();
    }

    /// A worker thread leaves (keep-alive expiry or shutdown). After this it
    /// may only put its deque back and return.
    pub(crate) fn leave(&self, index: usize) {
        let control = lock(&self.control);
        self.forget_thread_locked(index);
        drop(control);
        // Pairs with the fence in `Sleep::notify_new_work`: a submitter that
        // saw nobody awake either sees `missing` go up (and starts a thread)
        // or its work is seen by the leaving worker's final scan.
        fence(Ordering::SeqCst);
    }

    /// Keep-alive: may this idle worker's thread expire? If so it is
    /// already accounted as gone (see `leave`).
    pub(crate) fn try_retire(&self, index: usize) -> bool {
        let control = lock(&self.control);
        // Relaxed: changed only under the lock we hold.
        if self.is_closed() || self.live_threads.load(Ordering::Relaxed) <= self.config.min_workers {
            return false;
        }
        self.forget_thread_locked(index);
        drop(control);
        // As in `leave`.
        fence(Ordering::SeqCst);
        true
    }

    /// A submit found nobody awake to take its work and the capacity has
    /// room for another thread: start one.
    #[cold]
    #[inline(never)]
    pub(crate) fn start_missing_worker(this: &Arc<Self>) {
        let mut control = lock(&this.control);
        if this.is_closed_and_drained() {
            return;
        }
        let Some(index) = (0..this.target()).find(|&i| !this.slots[i].counters.live.load(Ordering::Relaxed)) else {
            return;
        };
        match Shared::start_worker_locked(this, &mut control, index, true) {
            Ok(()) => {}
            Err(StartError::Spawn(error)) => {
                eprintln!("stealpool: could not start worker {index}: {error}");
                drop(control);
                // Relaxed: a hint; see `run_stranded`.
                if this.live_threads.load(Ordering::Relaxed) == 0 {
                    // No thread at all, and the OS refuses one: the caller
                    // runs what waits (as a "caller runs" policy would), so
                    // accepted work never waits for a thread that cannot
                    // exist. A live worker, or the next start, takes over.
                    this.run_stranded();
                }
            }
            // Not returned with the default-name fallback.
            Err(StartError::NamePanicked(_)) => {}
        }
    }

    /// Starts threads for every slot below the capacity that has none.
    /// `fallback_name`: if `thread_name` panics, use the default name
    /// (false: fail with `NamePanicked`, as `build` does).
    pub(crate) fn start_all_locked(
        this: &Arc<Self>,
        control: &mut MutexGuard<'_, Control>,
        fallback_name: bool,
    ) -> Result<(), StartError> {
        for index in 0..this.target() {
            if !this.slots[index].counters.live.load(Ordering::Relaxed) {
                Shared::start_worker_locked(this, control, index, fallback_name)?;
            }
        }
        Ok(())
    }

    /// Changes the capacity (already validated). See ARCHITECTURE.md,
    /// "Capacity".
    pub(crate) fn tune_locked(this: &Arc<Self>, control: &mut MutexGuard<'_, Control>, capacity: usize) {
        let previous = this.set_target(capacity);
        // Recount the slots below the new capacity without a thread.
        let missing = (0..capacity)
            .filter(|&i| !this.slots[i].counters.live.load(Ordering::Relaxed))
            .count();
        this.missing.store(missing, Ordering::Relaxed);
        if capacity < previous {
            // Sleepers above the new capacity wake, see it, and suspend;
            // busy ones do so after their task.
            for index in capacity..previous {
                this.sleep.wake(index);
            }
        } else if capacity > previous {
            for index in previous..capacity {
                this.sleep.resume(index);
            }
            // The fence pairs with `WorkerThread::missing_after_fence`: a
            // worker that read the old `missing` had its queued work
            // published before its fence, so the scan below sees it.
            fence(Ordering::SeqCst);
            if !this.is_closed() && (this.config.prealloc || this.has_queued_work()) {
                // Queued work (or a pre-allocated pool) must not wait for the
                // next submit to start a thread.
                if let Err(StartError::Spawn(error)) = Shared::start_all_locked(this, control, true) {
                    eprintln!("stealpool: could not start a worker while tuning: {error}");
                }
            }
            // Blocked submitters re-check: more workers make room sooner.
            if let Some(backpressure) = &this.backpressure {
                backpressure.wake_all();
            }
        }
    }

    /// Takes the join handles of threads that have left (their slot is not
    /// live; retired ones too), to join them without the lock. A pool that
    /// was rebooted meanwhile keeps its new threads' handles.
    pub(crate) fn take_exited_handles_locked(
        &self,
        control: &mut MutexGuard<'_, Control>,
    ) -> Vec<thread::JoinHandle<()>> {
        let mut handles = Vec::new();
        for (index, handle) in control.handles.iter_mut().enumerate() {
            // Relaxed: `live` changes only under the control lock we hold.
            if !self.slots[index].counters.live.load(Ordering::Relaxed) {
                handles.extend(handle.take());
            }
        }
        handles.append(&mut control.retired);
        handles
    }

    /// Takes every join handle out (to join them without the lock).
    pub(crate) fn take_handles_locked(control: &mut MutexGuard<'_, Control>) -> Vec<thread::JoinHandle<()>> {
        let mut handles: Vec<_> = control.handles.iter_mut().filter_map(Option::take).collect();
        handles.append(&mut control.retired);
        handles
    }
}
