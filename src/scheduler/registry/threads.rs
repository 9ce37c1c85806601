//! Worker threads coming and going: starting on demand, leaving (keep-alive
//! expiry, shutdown), tuning the capacity, joining, rebooting.
//!
//! Everything here runs under the control lock, which no worker holds while
//! running a task and nobody holds while joining a thread that may still
//! need it.

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::time::Instant;

use crate::error::RebootError;
use crate::observe::report::{Level, Topic};
use crate::scheduler::pinning::Placement;
use crate::scheduler::registry::Shared;
use crate::scheduler::worker::run_worker;
use crate::sync::{fence, lock, thread, wait, wait_timeout, Arc, MutexGuard, Ordering};
use crate::unwind::{drop_payload, panic_message};

/// What the control lock protects.
pub(crate) struct Control {
    /// Each slot's thread, if one was started and not yet joined.
    handles: Vec<Option<thread::JoinHandle<()>>>,
    /// Threads that left (keep-alive) and whose slot got a new thread
    /// before they were joined. Joined when finished, or at shutdown.
    retired: Vec<thread::JoinHandle<()>>,
    /// Where workers run, if they are pinned.
    placement: Option<Placement>,
}

impl Control {
    pub(crate) fn new(slots: usize) -> Self {
        Control {
            handles: (0..slots).map(|_| None).collect(),
            retired: Vec::new(),
            placement: None,
        }
    }
}

/// Why a thread could not be started.
pub(crate) enum StartError {
    Spawn(io::Error),
    NamePanicked(usize),
    NameInvalid(usize),
}

impl Shared {
    /// Records where workers run (once, at build).
    pub(crate) fn set_placement(&self, placement: Option<Placement>) {
        lock(&self.control).placement = placement;
    }

    /// Starts a thread for slot `index` (which must have none live).
    fn start_worker_locked(
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
        let name = this.thread_name(index, fallback_name)?;
        let mut builder = thread::Builder::new().name(name);
        if let Some(bytes) = this.config.stack_size {
            builder = builder.stack_size(bytes);
        }
        // The home core is claimed now and released when the thread exits
        // (or right away, if it never starts).
        let pin = control.placement.as_ref().map(|placement| placement.worker_pin(index));
        // Counted live before the thread runs, so nobody starts a second one.
        // Relaxed: these counters change only under the control lock.
        slot.counters.live.store(true, Ordering::Relaxed);
        this.live_threads.fetch_add(1, Ordering::Relaxed);
        if index < this.capacity() {
            let before = this.missing.fetch_sub(1, Ordering::Relaxed);
            this.note_missing_locked(before, before - 1);
        }
        let shared = this.clone();
        // `spawn` reports a refusal as an error, but it panics on some bad
        // input (a name with a NUL byte is checked above; a future check
        // might not be): a panic is a refusal too, or the slot would stay
        // counted live for a thread that never existed.
        let spawned = panic::catch_unwind(AssertUnwindSafe(move || {
            builder.spawn(move || run_worker(shared, index, pin))
        }))
        .unwrap_or_else(|payload| {
            let message = format!("std::thread::Builder::spawn panicked: {}", panic_message(&*payload));
            drop_payload(payload);
            Err(io::Error::new(io::ErrorKind::InvalidInput, message))
        });
        match spawned {
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

    /// The name for slot `index`'s thread. A `thread_name` that panics or
    /// returns a name the OS cannot take (a NUL byte) fails a build
    /// (`fallback_name` false: the error goes to the caller); on demand
    /// there is no caller to tell, and refusing the thread would strand the
    /// work that asked for it, so the default name is used and the pool
    /// reports it (once per pool).
    fn thread_name(&self, index: usize, fallback_name: bool) -> Result<String, StartError> {
        let default = || format!("stealpool-{index}");
        let Some(name) = &self.config.thread_name else {
            return Ok(default());
        };
        match panic::catch_unwind(AssertUnwindSafe(|| name(index))) {
            Ok(name) if !name.contains('\0') => Ok(name),
            Ok(_) if !fallback_name => Err(StartError::NameInvalid(index)),
            Ok(_) => {
                self.config.reporter.report(
                    Topic::NameInvalid,
                    Level::Warn,
                    format_args!(
                        "the thread_name closure returned a name with a NUL byte (worker {index}); \
                         using the default name"
                    ),
                );
                Ok(default())
            }
            Err(payload) => {
                drop_payload(payload);
                if !fallback_name {
                    return Err(StartError::NamePanicked(index));
                }
                self.config.reporter.report(
                    Topic::NamePanicked,
                    Level::Warn,
                    format_args!("the thread_name closure panicked (worker {index}); using the default name"),
                );
                Ok(default())
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
        // Broadcasts push only to live slots, under this lock: what this
        // thread did not run, nobody will.
        self.broadcasts.abandon(index);
        self.live_threads.fetch_sub(1, Ordering::Relaxed);
        if index < self.capacity() {
            let before = self.missing.fetch_add(1, Ordering::Relaxed);
            self.note_missing_locked(before, before + 1);
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
        // or its work is seen by the leaving worker's final scan. The heavy
        // half does the same for a push from inside that skipped its fence
        // (`Sleep::notify_new_inside_work`).
        fence(Ordering::SeqCst);
        self.sleep.pair_with_light_pushes();
    }

    /// Keep-alive: may this idle worker's thread expire? If so it is
    /// already accounted as gone (see `leave`).
    ///
    /// `min_workers` counts the threads below the capacity: suspended
    /// threads above it retire on their own (`try_retire_suspended`) and
    /// never keep a worker of the capacity alive, nor does a worker above a
    /// capacity that shrank while it slept count against the minimum.
    pub(crate) fn try_retire(&self, index: usize) -> bool {
        let control = lock(&self.control);
        let capacity = self.capacity();
        // Relaxed: changed only under the lock we hold.
        let live_below_capacity = capacity.saturating_sub(self.missing.load(Ordering::Relaxed));
        if self.is_closed() || (index < capacity && live_below_capacity <= self.config.min_workers) {
            return false;
        }
        if self.broadcasts.pending(index) {
            // A broadcast share came while we slept (pushed under this
            // lock): run it first; the keep-alive starts over.
            return false;
        }
        self.forget_thread_locked(index);
        drop(control);
        // As in `leave`.
        fence(Ordering::SeqCst);
        self.sleep.pair_with_light_pushes();
        true
    }

    /// Keep-alive of a suspended worker (it already cancelled its
    /// suspension): its thread leaves if it is still above the capacity and
    /// the pool is open. Decided under the control lock, which `tune` holds
    /// while it moves the capacity and recounts `missing`: either we leave
    /// first (and `tune` counts the slot as missing, starting a thread if
    /// work waits), or we see the grown capacity and stay.
    pub(crate) fn try_retire_suspended(&self, index: usize) -> bool {
        let control = lock(&self.control);
        if self.is_closed() || index < self.capacity() {
            return false;
        }
        self.forget_thread_locked(index);
        drop(control);
        // As in `leave` (a suspended worker holds no work and is not counted
        // in the sleep word, so nothing else is owed).
        fence(Ordering::SeqCst);
        self.sleep.pair_with_light_pushes();
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
        let Some(index) = (0..this.capacity()).find(|&i| !this.slots[i].counters.live.load(Ordering::Relaxed)) else {
            return;
        };
        match Shared::start_worker_locked(this, &mut control, index, true) {
            Ok(()) => {}
            Err(StartError::Spawn(error)) => {
                this.config.reporter.report(
                    Topic::SpawnRefused,
                    Level::Warn,
                    format_args!(
                        "could not start worker {index}: {error}; queued work runs on the submitting \
                         or waiting thread until a worker starts"
                    ),
                );
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
            Err(StartError::NamePanicked(_) | StartError::NameInvalid(_)) => {}
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
        for index in 0..this.capacity() {
            if !this.slots[index].counters.live.load(Ordering::Relaxed) {
                Shared::start_worker_locked(this, control, index, fallback_name)?;
            }
        }
        Ok(())
    }

    /// Starts threads for every slot below the capacity that has none (a
    /// pre-allocating build).
    pub(crate) fn start_all(this: &Arc<Self>, fallback_name: bool) -> Result<(), StartError> {
        let mut control = lock(&this.control);
        Shared::start_all_locked(this, &mut control, fallback_name)
    }

    /// Starts a thread for every slot below the capacity that has none
    /// (`Pool::prestart`). Returns how many started; nothing on a closed
    /// pool (its threads are leaving).
    pub(crate) fn prestart(this: &Arc<Self>) -> Result<usize, io::Error> {
        let mut control = lock(&this.control);
        if this.is_closed() {
            return Ok(0);
        }
        let mut started = 0;
        for index in 0..this.capacity() {
            // Relaxed: `live` changes only under the control lock, held here.
            if !this.slots[index].counters.live.load(Ordering::Relaxed) {
                match Shared::start_worker_locked(this, &mut control, index, true) {
                    Ok(()) => started += 1,
                    Err(StartError::Spawn(error)) => return Err(error),
                    // Not returned with the default-name fallback.
                    Err(StartError::NamePanicked(_) | StartError::NameInvalid(_)) => {}
                }
            }
        }
        Ok(started)
    }

    /// Changes the capacity (already validated), under the control lock.
    /// Slots lent by blocked workers stay lent on top of it
    /// (`registry/lending.rs`).
    pub(crate) fn tune(this: &Arc<Self>, capacity: usize) {
        let mut control = lock(&this.control);
        Shared::tune_base_locked(this, &mut control, capacity);
    }

    /// Changes the capacity (already validated). See registry/README.md,
    /// "Capacity".
    pub(crate) fn tune_locked(this: &Arc<Self>, control: &mut MutexGuard<'_, Control>, capacity: usize) {
        let previous = this.set_capacity(capacity);
        // Recount the slots below the new capacity without a thread.
        let missing = (0..capacity)
            .filter(|&i| !this.slots[i].counters.live.load(Ordering::Relaxed))
            .count();
        let before = this.missing.swap(missing, Ordering::Relaxed);
        this.note_missing_locked(before, missing);
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
            // The fence pairs with the one in `WorkerThread::hand_on_search`
            // (a last searcher; `missing` is read after `notify_new_work`'s
            // fence): a worker that read the old `missing` had its queued
            // work published before its fence, so the scan below sees it.
            fence(Ordering::SeqCst);
            if !this.is_closed() && (this.config.prealloc || this.has_queued_work()) {
                // Queued work (or a pre-allocated pool) must not wait for the
                // next submit to start a thread.
                if let Err(StartError::Spawn(error)) = Shared::start_all_locked(this, control, true) {
                    this.config.reporter.report(
                        Topic::SpawnRefused,
                        Level::Warn,
                        format_args!("could not start a worker while tuning: {error}"),
                    );
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

    /// Joins the threads of a closed pool. Returns false if `deadline`
    /// passed first.
    pub(crate) fn join_threads(&self, deadline: Option<Instant>) -> bool {
        let mut control = lock(&self.control);
        // Relaxed: `live_threads` changes only under the lock we hold.
        while self.live_threads.load(Ordering::Relaxed) > 0 && self.is_closed() {
            control = match deadline {
                None => wait(&self.exited, control),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    wait_timeout(&self.exited, control, deadline - now)
                }
            };
        }
        // Only threads that left: if a `reboot` won a race with us, the pool
        // runs again and its new threads are not ours to wait for.
        let handles = self.take_exited_handles_locked(&mut control);
        drop(control);
        for handle in handles {
            // The thread has left (or belongs to a rebooted pool that is
            // running again, whose threads took no handle of ours: handles
            // are taken only here and by the starter of a slot's next
            // thread). Workers catch every task panic, so a join error would
            // be a bug in the pool; there is nothing left to clean up.
            let _ = handle.join();
        }
        self.autoscale.join_monitor(|| self.is_closed());
        true
    }

    /// Starts a closed pool again (see `Pool::reboot`; the caller checked
    /// it is not one of the pool's own workers).
    pub(crate) fn reboot(this: &Arc<Self>) -> Result<(), RebootError> {
        let shared = this;
        let mut control = lock(&shared.control);
        loop {
            if !shared.is_closed() {
                // Never closed, or another `reboot` won the race.
                return Ok(());
            }
            // Relaxed: changed only under the lock (released while we wait).
            if shared.live_threads.load(Ordering::Relaxed) > 0 {
                // Re-check CLOSED after every wake: a racing `reboot` may
                // have reopened the pool and started new threads, which
                // will not exit for us.
                control = wait(&shared.exited, control);
                continue;
            }
            // Every old thread has left its loop; join what a shutdown did
            // not. Never under the lock: a thread on its way out may still
            // take it (an expiring worker that found late work starts a
            // thread for it).
            let handles = Shared::take_handles_locked(&mut control);
            if handles.is_empty() {
                break;
            }
            drop(control);
            for handle in handles {
                let _ = handle.join();
            }
            control = lock(&shared.control);
        }
        shared.reopen();
        if shared.config.prealloc {
            if let Err(StartError::Spawn(error)) = Shared::start_all_locked(shared, &mut control, true) {
                return Err(RebootError::Spawn(error));
            }
        }
        Ok(())
    }
}
