//! `TaskSet`: spawned tasks joined in the order they finish.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::poll_fn;
use std::task::{Context, Poll, Waker};

use crate::error::SubmitError;
use crate::pool::join_error::JoinError;
use crate::pool::join_handle::JoinHandle;
use crate::pool::Pool;
use crate::scheduler::{cross, help_while_draining, Room, WorkerThread};
use crate::sync::{lock, wait, wait_timeout, Arc, Condvar, Mutex};

/// The ids of a set's tasks that finished (or were handed back by
/// `shutdown_now`), in the order they did.
pub(crate) struct ReadyQueue {
    state: Mutex<Ready>,
    ready: Condvar,
}

struct Ready {
    ids: VecDeque<u64>,
    /// The task polling `join_next_async`, if any (one at a time: it
    /// borrows the set mutably).
    waker: Option<Waker>,
}

/// A spawned task's membership in a set: what its packet tells when done.
pub(crate) struct SetMember {
    queue: Arc<ReadyQueue>,
    id: u64,
}

impl SetMember {
    /// The task finished (or was handed back): queue its id, wake the set.
    pub(crate) fn tell(&self) {
        let mut state = lock(&self.queue.state);
        state.ids.push_back(self.id);
        let waker = state.waker.take();
        drop(state);
        self.queue.ready.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// A set of tasks spawned on one pool, joined in the order they finish, like
/// tokio's `JoinSet`.
///
/// [`spawn`](TaskSet::spawn) runs a task on the pool;
/// [`join_next`](TaskSet::join_next) (or
/// [`join_next_async`](TaskSet::join_next_async)) returns the result of the
/// next task to finish, `None` once the set is empty. Dropping the set
/// cancels every task that has not started (see
/// [`JoinHandle::cancel`](crate::JoinHandle::cancel)); tasks already running
/// finish detached, a panic of theirs going to the pool's panic handler.
///
/// # Examples
///
/// ```
/// let pool = stealpool::Pool::builder().capacity(2).build()?;
/// let mut set = stealpool::TaskSet::new(&pool);
/// for i in 1..=3u64 {
///     set.spawn(move || i * 10)?;
/// }
/// let mut total = 0;
/// while let Some(result) = set.join_next() {
///     total += result?; // in the order the tasks finished
/// }
/// assert_eq!(total, 60);
/// assert!(set.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TaskSet<T> {
    pool: Pool,
    queue: Arc<ReadyQueue>,
    tasks: HashMap<u64, JoinHandle<T>>,
    next_id: u64,
}

impl<T: Send + 'static> TaskSet<T> {
    /// An empty set whose tasks run on `pool` (it keeps a handle to the
    /// pool).
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(1).build().unwrap();
    /// let set = stealpool::TaskSet::<u32>::new(&pool);
    /// assert!(set.is_empty());
    /// ```
    pub fn new(pool: &Pool) -> TaskSet<T> {
        TaskSet {
            pool: pool.clone(),
            queue: Arc::new(ReadyQueue {
                state: Mutex::new(Ready {
                    ids: VecDeque::new(),
                    waker: None,
                }),
                ready: Condvar::new(),
            }),
            tasks: HashMap::new(),
            next_id: 0,
        }
    }

    /// Runs `task` on the pool as a member of the set. It blocks, or is
    /// refused, exactly as [`Pool::spawn`] is.
    ///
    /// # Errors
    ///
    /// As [`Pool::spawn`], with the closure itself.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(1).build()?;
    /// let mut set = stealpool::TaskSet::new(&pool);
    /// set.spawn(|| "done")?;
    /// assert_eq!(set.len(), 1);
    /// assert_eq!(set.join_next().unwrap()?, "done");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn<F>(&mut self, task: F) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
    {
        let id = self.next_id;
        let member = SetMember {
            queue: self.queue.clone(),
            id,
        };
        let handle = self.pool.spawn_member(task, (), Room::AsConfigured, Some(member))?;
        self.next_id += 1;
        self.tasks.insert(id, handle);
        Ok(())
    }

    /// Waits for the next task of the set to finish and returns its result;
    /// `None` if the set is empty. Results come in the order the tasks
    /// finished (a cancelled task counts as finished when it was cancelled).
    ///
    /// Called from inside one of the pool's tasks, the worker runs other
    /// queued tasks while it waits, as [`JoinHandle::join`] does (from a
    /// task of another pool, that pool's queued tasks). A task
    /// [`Pool::shutdown_now`] handed back is returned as `JoinHandle::join`
    /// would return it (waiting for the `Task` to be run or dropped, or
    /// cancelled at once inside a pool's task).
    ///
    /// [`Pool::shutdown_now`]: crate::Pool::shutdown_now
    ///
    /// ```
    /// use std::sync::mpsc;
    /// let pool = stealpool::Pool::builder().capacity(2).build()?;
    /// let mut set = stealpool::TaskSet::new(&pool);
    /// let (release, wait) = mpsc::channel::<()>();
    /// set.spawn(move || { let _ = wait.recv(); "slow" })?;
    /// set.spawn(|| "fast")?;
    /// assert_eq!(set.join_next().unwrap()?, "fast");   // the slow one is still waiting
    /// release.send(())?;
    /// assert_eq!(set.join_next().unwrap()?, "slow");
    /// assert!(set.join_next().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use = "the result of a task is lost if not used; use `while set.join_next().is_some() {}` to only wait"]
    pub fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        loop {
            if self.tasks.is_empty() {
                return None;
            }
            let id = self.wait_ready();
            // An id may come twice (handed back, then run): the second finds
            // no handle.
            if let Some(handle) = self.tasks.remove(&id) {
                return Some(handle.join());
            }
        }
    }

    /// The result of a task of the set that has finished, without waiting
    /// (tokio's `JoinSet::try_join_next`): `None` if none has finished yet,
    /// or the set is empty. Results come in the order the tasks finished,
    /// as from [`TaskSet::join_next`], so a loop that spawns can collect
    /// what is ready as it goes. A task [`Pool::shutdown_now`] handed back
    /// counts as finished only once its `Task` is run or dropped.
    ///
    /// [`Pool::shutdown_now`]: crate::Pool::shutdown_now
    ///
    /// ```
    /// use std::sync::mpsc;
    /// let pool = stealpool::Pool::builder().capacity(2).build()?;
    /// let mut set = stealpool::TaskSet::new(&pool);
    /// let (release, wait) = mpsc::channel::<()>();
    /// set.spawn(move || { let _ = wait.recv(); "slow" })?;
    /// assert!(set.try_join_next().is_none()); // not finished: no waiting
    /// release.send(())?;
    /// let result = loop {
    ///     if let Some(result) = set.try_join_next() {
    ///         break result;
    ///     }
    ///     std::thread::yield_now(); // other work would go here
    /// };
    /// assert_eq!(result?, "slow");
    /// assert!(set.is_empty() && set.try_join_next().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use = "the result of a task is lost if not used"]
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        loop {
            // Each ready id is popped once: a handed-back task goes back
            // into the set, and its id comes again when it is run or
            // dropped (see `poll_join_next`), so this loop ends.
            let id = lock(&self.queue.state).ids.pop_front()?;
            if let Some(handle) = self.tasks.remove(&id) {
                match handle.try_join() {
                    Ok(result) => return Some(result),
                    Err(handle) => {
                        self.tasks.insert(id, handle);
                    }
                }
            }
        }
    }

    /// [`TaskSet::join_next`] for async code: waits without blocking the
    /// thread.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).build()?;
    /// let mut set = stealpool::TaskSet::new(&pool);
    /// set.spawn(|| 2)?;
    /// set.spawn(|| 3)?;
    /// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    /// let sum = runtime.block_on(async {
    ///     let mut sum = 0;
    ///     while let Some(result) = set.join_next_async().await {
    ///         sum += result.unwrap();
    ///     }
    ///     sum
    /// });
    /// assert_eq!(sum, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn join_next_async(&mut self) -> Option<Result<T, JoinError>> {
        poll_fn(|cx| self.poll_join_next(cx)).await
    }

    fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        loop {
            if self.tasks.is_empty() {
                return Poll::Ready(None);
            }
            let id = {
                let mut state = lock(&self.queue.state);
                match state.ids.pop_front() {
                    Some(id) => id,
                    None => {
                        match &state.waker {
                            Some(waker) if waker.will_wake(cx.waker()) => {}
                            _ => state.waker = Some(cx.waker().clone()),
                        }
                        return Poll::Pending;
                    }
                }
            };
            if let Some(handle) = self.tasks.remove(&id) {
                match handle.try_join() {
                    Ok(result) => return Poll::Ready(Some(result)),
                    // Handed back by `shutdown_now`, not finished: its id
                    // comes again when its `Task` is run or dropped.
                    Err(handle) => {
                        self.tasks.insert(id, handle);
                    }
                }
            }
        }
    }

    /// The next ready id, waiting for one (helping the pool meanwhile when
    /// called from one of its workers).
    fn wait_ready(&self) -> u64 {
        let queue = &self.queue;
        let ready = || !lock(&queue.state).ids.is_empty();
        if let Some(worker) = WorkerThread::current_in(&self.pool.shared) {
            while !ready() && worker.help_once() {}
        } else {
            help_while_draining(ready);
        }
        // A worker of another pool runs its own pool's work while it waits:
        // the tasks may wait for that work (`worker/cross.rs`).
        let cross = WorkerThread::current().filter(|worker| !std::ptr::eq(&*worker.shared, &*self.pool.shared));
        let mut state = lock(&queue.state);
        loop {
            if let Some(id) = state.ids.pop_front() {
                return id;
            }
            state = match cross {
                None => wait(&queue.ready, state),
                Some(worker) => {
                    drop(state);
                    while !ready() && worker.help_once() {}
                    let state = lock(&queue.state);
                    if state.ids.is_empty() {
                        wait_timeout(&queue.ready, state, cross::CROSS_POLL)
                    } else {
                        state
                    }
                }
            };
        }
    }
}

impl<T> TaskSet<T> {
    /// Tasks in the set: spawned and not yet returned by `join_next`.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(1).build().unwrap();
    /// let mut set = stealpool::TaskSet::new(&pool);
    /// set.spawn(|| ()).unwrap();
    /// assert_eq!(set.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether the set has no tasks.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(1).build().unwrap();
    /// assert!(stealpool::TaskSet::<()>::new(&pool).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Cancels every task of the set that has not started; returns how many
    /// it cancelled. They stay in the set: `join_next` returns them as
    /// cancelled ([`JoinError::is_cancelled`]).
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(1).build()?;
    /// let mut set = stealpool::TaskSet::new(&pool);
    /// let (release, wait) = std::sync::mpsc::channel::<()>();
    /// pool.submit(move || { let _ = wait.recv(); })?;   // occupies the only worker
    /// set.spawn(|| 1)?;
    /// set.spawn(|| 2)?;
    /// assert_eq!(set.cancel_all(), 2);
    /// release.send(())?;
    /// while let Some(result) = set.join_next() {
    ///     assert!(result.unwrap_err().is_cancelled());
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel_all(&mut self) -> usize {
        self.tasks.values().filter(|handle| handle.cancel()).count()
    }
}

impl<T> Drop for TaskSet<T> {
    fn drop(&mut self) {
        // What has not started never will; running tasks finish detached
        // (the handles drop with the map).
        for handle in self.tasks.values() {
            handle.cancel();
        }
    }
}

impl<T> fmt::Debug for TaskSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskSet")
            .field("len", &self.tasks.len())
            .finish_non_exhaustive()
    }
}
