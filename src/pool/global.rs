//! The free functions `join`, `scope` and `spawn`: they use the pool whose
//! worker runs the caller, or else a global pool built on first use.

use std::sync::OnceLock;

use crate::error::SubmitError;
use crate::pool::join::join_in_worker;
use crate::pool::join_handle::JoinHandle;
use crate::pool::scope::Scope;
use crate::pool::Pool;
use crate::scheduler::WorkerThread;

/// The global pool, built on first use of a free function outside any pool.
static GLOBAL: OnceLock<Pool> = OnceLock::new();

/// The global pool that [`join`], [`scope`] and [`spawn`] use outside any
/// pool, built on first use with the default settings of
/// [`Builder::new`](crate::Builder::new) and threads named
/// `stealpool-global-{i}`: one worker per core this process may run on,
/// threads started on demand (none until the first task) and never
/// expiring, adaptive pinning, no queue limit. It lives until the process
/// exits; shutting it down (through this handle) makes the free functions
/// refuse work from outside ([`spawn`] returns `Err(Closed)`; [`join`] and
/// [`scope`] then run on the calling thread).
///
/// ```
/// let pool = stealpool::global_pool();
/// assert!(pool.capacity() >= 1);
/// let name = pool.spawn(|| std::thread::current().name().map(String::from)).unwrap();
/// assert!(name.join().unwrap().unwrap().starts_with("stealpool-global-"));
/// ```
pub fn global_pool() -> &'static Pool {
    GLOBAL.get_or_init(|| {
        Pool::builder()
            .thread_name(|i| format!("stealpool-global-{i}"))
            .build()
            // Without pre-allocation `build` starts no thread, and the
            // default settings are valid: it cannot fail.
            .expect("stealpool: building the global pool with default settings")
    })
}

/// The pool running the caller: the worker's own pool (not the hidden
/// inner pool of a `FuncPool`), else the global pool.
fn with_current<R>(f: impl FnOnce(&Pool) -> R) -> R {
    match Pool::current() {
        Some(pool) => f(&pool),
        None => f(global_pool()),
    }
}

/// Runs `a` and `b`, potentially in parallel, on the pool running the
/// caller, or on the [`global_pool`] outside any pool (as [`Pool::join`]):
/// the caller blocks until both finished (a worker helps with other tasks
/// meanwhile); never refused.
///
/// ```
/// fn sum(v: &[u64]) -> u64 {
///     if v.len() < 1_000 {
///         return v.iter().sum();
///     }
///     let (left, right) = v.split_at(v.len() / 2);
///     let (a, b) = stealpool::join(|| sum(left), || sum(right));
///     a + b
/// }
/// let v: Vec<u64> = (1..=10_000).collect();
/// assert_eq!(sum(&v), 50_005_000);
/// ```
pub fn join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    if let Some(worker) = WorkerThread::current() {
        // The fast path of a recursive `join`: no handle taken. A
        // `FuncPool`'s inner pool is never used this way (as for
        // `Pool::current`).
        if !worker.shared.config.hidden {
            return join_in_worker(worker, a, b);
        }
    }
    global_pool().join(a, b)
}

/// Runs `body` with a [`Scope`] on the pool running the caller, or on the
/// [`global_pool`] outside any pool (as [`Pool::scope`]): blocks until
/// every spawn finished; spawns are never refused.
///
/// ```
/// let mut data = vec![1, 2, 3];
/// stealpool::scope(|s| {
///     for x in data.iter_mut() {
///         s.spawn(move || *x *= 10);
///     }
/// });
/// assert_eq!(data, [10, 20, 30]);
/// ```
pub fn scope<'env, F, R>(body: F) -> R
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
{
    with_current(|pool| pool.scope(body))
}

/// Runs `task` on the pool running the caller, or on the [`global_pool`]
/// outside any pool, and returns a handle to its result (as
/// [`Pool::spawn`]). Never blocks: inside a pool a submit never waits for
/// room, and the global pool has no queue limit.
///
/// # Errors
///
/// [`SubmitError::Closed`] with the closure itself if that pool is shut
/// down (never `Full` or `Timeout`).
///
/// ```
/// let handle = stealpool::spawn(|| 6 * 7)?;
/// assert_eq!(handle.join().unwrap(), 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn spawn<F, T>(task: F) -> Result<JoinHandle<T>, SubmitError<F>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    with_current(|pool| pool.spawn(task))
}
