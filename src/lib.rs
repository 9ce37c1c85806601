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
//! See `ARCHITECTURE.md` for the scheduler's design and the proof that no
//! wake-up is lost.
//!
//! [crossbeam-deque]: https://docs.rs/crossbeam-deque

#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_debug_implementations)]

mod autoscale;
mod block_in_place;
mod config;
mod error;
mod func;
mod hooks;
mod multi;
mod observe;
mod pool;
mod scheduler;
mod stats;
mod sync;
mod unwind;

pub use autoscale::Autoscale;
pub use block_in_place::block_in_place;
pub use config::Pinning;
pub use error::{BuildError, RebootError, Refused, ShutdownTimeout, SubmitError, SubmitErrorKind, TuneError};
pub use func::builder::FuncPoolBuilder;
pub use func::FuncPool;
pub use multi::{LoadBalancing, MultiFuncPool, MultiPool, MultiPoolBuilder};
pub use observe::{QueueDelay, TaskEvent};
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
