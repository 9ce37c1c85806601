//! # stealpool
//!
//! A lock-free, work-stealing thread pool whose capacity can be tuned while
//! it runs.
//!
//! Each worker thread owns a [crossbeam-deque] deque and is pinned to a core
//! (adaptively: a worker whose core another process keeps busy runs
//! elsewhere until it is free again, see [`Pinning`]);
//! a global injector takes work from outside threads; idle workers steal from
//! each other and then sleep, with a wake-up protocol that loses no task,
//! never wakes a herd for one task, and burns no CPU while idle.
//!
//! ```
//! use stealpool::Pool;
//!
//! let pool = Pool::builder().capacity(4).build()?;
//!
//! // Fire and forget, from any thread (lock-free) or from inside a task.
//! pool.submit(|| println!("hello from a worker"))?;
//!
//! // A result through a handle (also a Future).
//! let answer = pool.spawn(|| 6 * 7)?;
//! assert_eq!(answer.join().unwrap(), 42);
//!
//! // Borrow the stack, like std::thread::scope.
//! let mut data = vec![1, 2, 3];
//! pool.scope(|s| {
//!     for x in data.iter_mut() {
//!         s.spawn(move || *x *= 10);
//!     }
//! });
//! assert_eq!(data, [10, 20, 30]);
//!
//! // Fork-join.
//! let (a, b) = pool.join(|| 1 + 1, || 2 + 2);
//! assert_eq!((a, b), (2, 4));
//!
//! pool.wait_idle();
//! println!("{:?}", pool.stats());
//! pool.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Guides
//!
//! * [Tasks, results and waiting](guide::tasks): submit, spawn, `TaskSet`,
//!   cancellation, scopes and `join`, panics, calls from inside the pool.
//! * [Start order](guide::start_order): batches, strict FIFO, LIFO inside
//!   the pool.
//! * [Capacity and `tune`](guide::capacity): threads on demand,
//!   keep-alive, the queue limit, the ways a pool ends.
//! * [Capacity that follows the load](guide::load_following):
//!   [`Autoscale`], [`block_in_place`], and when to use which.
//! * [`FuncPool` and `MultiPool`](guide::func_and_multi_pool).
//! * [Observing a pool](guide::observing): stats, hooks, queue delay, busy
//!   time, the `log` and `serde` features.
//! * [Coming from ants](guide::coming_from_ants): Go's ants, call by call.
//! * [Benchmarks](guide::benchmarks): the figures, the machine, the
//!   commands.
//!
//! # Features
//!
//! * `log` (default): the pool's few messages (a thread the OS refused, a
//!   panic with no handler, a hook that panicked) go through the
//!   [`log`](https://docs.rs/log) facade, target `stealpool`, a record per
//!   panic and one per pool for a thread that cannot start; without it, to
//!   stderr, each kind once per pool.
//! * `serde`: `Serialize` for [`Stats`], [`WorkerStats`] and [`QueueDelay`].
//!
//! How the scheduler works, and the invariants that keep it from losing a
//! task with the tests and loom models that check each, is written beside
//! the code: `ARCHITECTURE.md` and a `README.md` per source folder in the
//! repository.
//!
//! [crossbeam-deque]: https://docs.rs/crossbeam-deque

#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_debug_implementations)]

mod config;
mod error;
mod func;
mod hooks;
#[cfg(loom)]
#[doc(hidden)]
pub mod loom_components;
mod multi;
mod observe;
mod pool;
mod scheduler;
mod stats;
mod sync;
mod unwind;

pub use config::{Autoscale, Pinning};
pub use error::{BuildError, RebootError, Refused, ShutdownTimeout, SubmitError, SubmitErrorKind, TuneError};
pub use func::builder::FuncPoolBuilder;
pub use func::FuncPool;
pub use multi::{LoadBalancing, MultiFuncPool, MultiPool, MultiPoolBuilder};
pub use observe::{QueueDelay, TaskEvent};
pub use pool::block_in_place::block_in_place;
pub use pool::broadcast::BroadcastContext;
pub use pool::builder::Builder;
pub use pool::current::{current_num_threads, current_thread_index};
pub use pool::global::{global_pool, join, scope, spawn};
pub use pool::join_error::JoinError;
pub use pool::join_handle::JoinHandle;
pub use pool::scope::Scope;
pub use pool::scoped_handle::ScopedJoinHandle;
pub use pool::task::Task;
pub use pool::task_set::TaskSet;
pub use pool::yield_now::{yield_local, yield_now, Yield};
pub use pool::Pool;
pub use stats::{Stats, WorkerState, WorkerStats};

/// Guides: how to use the pool, topic by topic, each with tested examples.
pub mod guide {
    #[doc = include_str!("../docs/guide/tasks.md")]
    pub mod tasks {}
    #[doc = include_str!("../docs/guide/start_order.md")]
    pub mod start_order {}
    #[doc = include_str!("../docs/guide/capacity.md")]
    pub mod capacity {}
    #[doc = include_str!("../docs/guide/load_following.md")]
    pub mod load_following {}
    #[doc = include_str!("../docs/guide/func_and_multi_pool.md")]
    pub mod func_and_multi_pool {}
    #[doc = include_str!("../docs/guide/observing.md")]
    pub mod observing {}
    #[doc = include_str!("../docs/guide/coming_from_ants.md")]
    pub mod coming_from_ants {}
    #[doc = include_str!("../docs/guide/benchmarks.md")]
    pub mod benchmarks {}
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
