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
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_debug_implementations)]

mod arg_slots;
mod backpressure;
mod builder;
mod error;
mod func_builder;
mod func_pool;
mod hooks;
mod job;
mod join;
mod join_handle;
mod latch;
mod multi_pool;
mod parker;
mod pinning;
mod pool;
mod queue;
mod registry;
mod scope;
mod sleep;
mod stats;
mod stranded;
mod sync;
mod task;
mod threads;
mod unwind;
mod worker;
mod worker_state;

pub use builder::Builder;
pub use error::{BuildError, RebootError, ShutdownTimeout, SubmitError, TuneError};
pub use func_builder::FuncPoolBuilder;
pub use func_pool::FuncPool;
pub use join_handle::JoinHandle;
pub use multi_pool::{LoadBalancing, MultiPool, MultiPoolBuilder};
pub use pinning::Pinning;
pub use pool::Pool;
pub use scope::Scope;
pub use stats::{Stats, WorkerState, WorkerStats};
pub use task::Task;
