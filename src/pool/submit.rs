//! Submitting work: `submit`, `submit_timeout`, `spawn`, `spawn_fifo`, and
//! the admission and push paths they share with `TaskSet` and the async
//! submits.

use std::time::{Duration, Instant};

use crate::error::SubmitError;
use crate::pool::join_handle::{JoinHandle, Packet, SpawnJob};
use crate::pool::task_set::SetMember;
use crate::pool::Pool;
use crate::scheduler::{Admission, HeapJob, JobKind, JobRef, Refusal, Room};
use crate::sync::Arc;

impl Pool {
    /// Runs `task` on the pool.
    ///
    /// **Blocking.** From outside the pool, on a pool without a
    /// [`queue_limit`](crate::Builder::queue_limit), this is lock-free and never
    /// blocks: one atomic read-modify-write that counts the task (and sees
    /// whether the pool is closed), one push onto the global injector, then
    /// a fence and one read of the sleep word, waking a worker only if none
    /// is awake to find the task. With a
    /// `queue_limit` and a full queue it blocks until a place frees (or
    /// refuses at once with [`nonblocking`](crate::Builder::nonblocking), or when
    /// [`max_blocked_submitters`](crate::Builder::max_blocked_submitters) threads
    /// already wait). From inside one of the pool's tasks it pushes onto
    /// that worker's own deque and never blocks, whatever the limit, so
    /// tasks that submit tasks cannot deadlock the pool. A closure that
    /// captures at most two words (a reference, an `Arc`, a couple of
    /// integers) is stored in the queued job itself, with no allocation; a
    /// larger one of up to 64 bytes takes a block of the calling thread's job
    /// cache (workers recycle theirs, so work submitted inside the pool stops
    /// allocating once warm), and a larger one still is boxed.
    ///
    /// **Start order.** Tasks submitted from outside wait in one FIFO queue.
    /// By default a worker takes a batch of them and runs it oldest first,
    /// so the rest of its batch may wait behind a long task while later
    /// tasks start on other workers; with [`Builder::fifo`](crate::Builder::fifo) a worker takes
    /// one at a time and they start in submission order as far as the
    /// workers allow. Tasks submitted from inside a task go to that
    /// worker's own deque and run newest first there (locality); use
    /// [`Pool::spawn_fifo`] for FIFO order.
    ///
    /// A panic in `task` is caught: the worker keeps running, the panic
    /// handler gets the payload and [`Stats::panicked`](crate::Stats::panicked) counts it.
    ///
    /// **Caller runs.** If the operating system refuses to start a worker
    /// thread while the pool has none alive (a thread limit, a stack size it
    /// cannot map), `submit` runs the queued tasks on the calling thread
    /// before it returns, so accepted work never waits for a thread that
    /// cannot exist; the first worker that does start takes over. Tasks
    /// those tasks submit are queued and run by the same loop, one after
    /// another, never by recursion. The refusal is reported once per pool
    /// (a `log` record with the default `log` feature, else a line on
    /// stderr).
    ///
    /// # Errors
    ///
    /// Each with the closure itself:
    /// * [`SubmitError::Closed`] if the pool is shut down (also while this
    ///   call waited for room);
    /// * [`SubmitError::Full`] on a pool with a `queue_limit`, from outside
    ///   only: the queue is full and the pool is `nonblocking`, or
    ///   `max_blocked_submitters` threads already wait for room.
    ///
    /// Never [`SubmitError::Timeout`] (that is [`Pool::submit_timeout`]'s).
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).build()?;
    /// pool.submit(|| println!("running on {:?}", std::thread::current().name()))?;
    /// pool.wait_idle();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn submit<F>(&self, task: F) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.submit_with_room(task, Room::AsConfigured)
    }

    /// Admits a counted task and pushes the job `into_job` makes of `value`;
    /// on refusal `value` comes back untouched. The building block of
    /// `FuncPool::invoke` (an argument, no closure) and `MultiPool::submit`
    /// (a closure with a load counter).
    #[inline]
    pub(crate) fn submit_mapped<T>(
        &self,
        value: T,
        room: Room,
        into_job: impl FnOnce(T) -> JobRef,
    ) -> Result<(), SubmitError<T>> {
        match Admission::admit(&self.shared, room) {
            Ok(admission) => {
                admission.push(&self.shared, into_job(value));
                Ok(())
            }
            Err(refusal) => Err(self.refuse(refusal, value)),
        }
    }

    /// The room a submit with an optional timeout asks for.
    pub(crate) fn room_for(timeout: Option<Duration>) -> Room {
        match timeout {
            None => Room::AsConfigured,
            Some(timeout) => Instant::now().checked_add(timeout).map_or(Room::Forever, Room::Until),
        }
    }

    /// Like [`Pool::submit`], but waits at most `timeout` for room in a full
    /// queue (see [`Builder::queue_limit`](crate::Builder::queue_limit)), even on a nonblocking pool.
    /// Without a `queue_limit`, or from inside the pool's own tasks, it never
    /// blocks (as [`Pool::submit`]).
    ///
    /// # Errors
    ///
    /// Each with the closure itself: [`SubmitError::Timeout`] if no room
    /// opened in time; [`SubmitError::Closed`] if the pool is (or gets) shut
    /// down; [`SubmitError::Full`] if
    /// [`max_blocked_submitters`](crate::Builder::max_blocked_submitters) threads
    /// already wait for room.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = stealpool::Pool::builder().capacity(1).queue_limit(1).build()?;
    /// pool.submit_timeout(|| (), Duration::from_millis(10))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_timeout<F>(&self, task: F, timeout: Duration) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.submit_with_room(task, Pool::room_for(Some(timeout)))
    }

    /// Runs `task` on the pool and returns a handle to its result.
    ///
    /// Queued and blocking exactly as [`Pool::submit`]: never blocks inside
    /// the pool or without a [`queue_limit`](crate::Builder::queue_limit); from
    /// outside, a full bounded queue blocks it until there is room (or it
    /// refuses, as configured). The task costs two allocations: the task
    /// itself and its result's packet, which the handle shares.
    ///
    /// [`JoinHandle::join`](crate::JoinHandle::join) blocks for the result (inside the pool it runs
    /// other tasks while it waits); `JoinHandle` is also a `Future`. A panic
    /// in `task` comes back as `Err(payload)` and is counted in
    /// [`Stats::panicked`](crate::Stats::panicked); if the handle was dropped, the payload goes to the
    /// panic handler instead.
    ///
    /// # Errors
    ///
    /// As [`Pool::submit`], each with the closure itself:
    /// [`SubmitError::Closed`] if the pool is shut down;
    /// [`SubmitError::Full`] from outside a pool with a `queue_limit` that is
    /// `nonblocking` (or has `max_blocked_submitters` waiting). Never
    /// `Timeout`.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).build()?;
    /// let handle = pool.spawn(|| 6 * 7)?;
    /// assert_eq!(handle.join().unwrap(), 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn<F, T>(&self, task: F) -> Result<JoinHandle<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_guarded(task, (), Room::AsConfigured)
    }

    /// Like [`Pool::spawn`], but from inside one of the pool's tasks the
    /// task goes to the pool's shared FIFO queue instead of the worker's
    /// own LIFO deque, so tasks spawned this way start oldest first (rayon's
    /// `spawn_fifo`): exactly on one worker, and as far as the workers allow
    /// on several with [`Builder::fifo`](crate::Builder::fifo) (by default a worker takes them in
    /// batches, see [`Pool::submit`]). From outside the pool it is the same
    /// as [`Pool::spawn`]. Blocking and errors as [`Pool::spawn`].
    ///
    /// # Errors
    ///
    /// As [`Pool::spawn`]: [`SubmitError::Closed`], and on a pool with a
    /// [`queue_limit`](crate::Builder::queue_limit) [`SubmitError::Full`] (only
    /// from outside the pool), each with the closure itself.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// let pool = stealpool::Pool::builder().capacity(1).build()?;
    /// let order = Arc::new(Mutex::new(Vec::new()));
    /// let inner = (pool.clone(), order.clone());
    /// pool.spawn(move || {
    ///     let (pool, order) = inner;
    ///     for i in 0..3 {
    ///         let order = order.clone();
    ///         let _ = pool.spawn_fifo(move || order.lock().unwrap().push(i));
    ///     }
    /// })?
    /// .join()
    /// .unwrap();
    /// pool.wait_idle();
    /// assert_eq!(*order.lock().unwrap(), [0, 1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn_fifo<F, T>(&self, task: F) -> Result<JoinHandle<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let admission = match Admission::admit(&self.shared, Room::AsConfigured) {
            Ok(admission) => admission,
            Err(refusal) => return Err(self.refuse(refusal, task)),
        };
        let packet = Arc::new(Packet::new(self.shared.config.panic_handler.clone(), None));
        let handle = JoinHandle::new(packet.clone(), &self.shared);
        admission.push_fifo(&self.shared, SpawnJob::into_job_ref(packet, task, ()));
        Ok(handle)
    }

    /// [`Pool::spawn`] with a value that lives as long as the task: dropped
    /// after it ran, when it is dropped unrun, or at once on refusal
    /// (`MultiPool`'s load counter).
    pub(crate) fn spawn_guarded<F, T, G>(&self, task: F, guard: G, room: Room) -> Result<JoinHandle<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
        G: Send + 'static,
    {
        self.spawn_member(task, guard, room, None)
    }

    /// [`Pool::spawn_guarded`] for a task that may belong to a `TaskSet`.
    pub(crate) fn spawn_member<F, T, G>(
        &self,
        task: F,
        guard: G,
        room: Room,
        member: Option<SetMember>,
    ) -> Result<JoinHandle<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
        G: Send + 'static,
    {
        let admission = match Admission::admit(&self.shared, room) {
            Ok(admission) => admission,
            Err(refusal) => return Err(self.refuse(refusal, task)),
        };
        Ok(self.push_spawned(admission, task, guard, member))
    }

    /// Pushes an admitted spawned task and returns its handle.
    pub(crate) fn push_spawned<F, T, G>(
        &self,
        admission: Admission<'_>,
        task: F,
        guard: G,
        member: Option<SetMember>,
    ) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
        G: Send + 'static,
    {
        let packet = Arc::new(Packet::new(self.shared.config.panic_handler.clone(), member));
        let handle = JoinHandle::new(packet.clone(), &self.shared);
        admission.push(&self.shared, SpawnJob::into_job_ref(packet, task, guard));
        handle
    }

    #[inline]
    pub(super) fn submit_with_room<F>(&self, task: F, room: Room) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        match Admission::admit(&self.shared, room) {
            Ok(admission) => {
                admission.push(&self.shared, HeapJob::into_job_ref(task, JobKind::Task));
                Ok(())
            }
            Err(refusal) => Err(self.refuse(refusal, task)),
        }
    }

    #[cold]
    pub(super) fn refuse<F>(&self, refusal: Refusal, task: F) -> SubmitError<F> {
        self.shared.count_rejected();
        refusal.with(task)
    }
}
