//! The pool's configuration and how a pool is started.

use std::any::Any;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc as StdArc;

use crate::error::BuildError;
use crate::pool::Pool;
use crate::registry::Shared;
use crate::sync::{lock, thread, Arc};
use crate::worker::run_worker;

pub(crate) type ThreadNameFn = dyn Fn(usize) -> String + Send + Sync;
pub(crate) type PanicHandlerFn = dyn Fn(Box<dyn Any + Send>) + Send + Sync;

/// The settings a pool runs with.
pub(crate) struct Config {
    pub(crate) capacity: usize,
    pub(crate) thread_name: Option<StdArc<ThreadNameFn>>,
    pub(crate) stack_size: Option<usize>,
    pub(crate) pin_workers: bool,
    pub(crate) panic_handler: Option<StdArc<PanicHandlerFn>>,
}

/// Configures and starts a [`Pool`]. Every setter takes and returns the
/// builder by value.
///
/// # Examples
///
/// ```
/// let pool = stealpool::Pool::builder()
///     .capacity(4)
///     .thread_name(|i| format!("stealpool-{i}"))
///     .stack_size(2 << 20)
///     .pin_workers(true)
///     .panic_handler(|payload| eprintln!("task panicked: {payload:?}"))
///     .build()?;
/// pool.submit(|| println!("hello from the pool"))?;
/// pool.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder {
    capacity: Option<usize>,
    thread_name: Option<StdArc<ThreadNameFn>>,
    stack_size: Option<usize>,
    pin_workers: bool,
    panic_handler: Option<StdArc<PanicHandlerFn>>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("capacity", &self.capacity)
            .field("thread_name", &self.thread_name.as_ref().map(|_| ".."))
            .field("stack_size", &self.stack_size)
            .field("pin_workers", &self.pin_workers)
            .field("panic_handler", &self.panic_handler.as_ref().map(|_| ".."))
            .finish()
    }
}

impl Builder {
    /// A builder with the defaults: one worker per available core, threads
    /// named `stealpool-{i}`, the platform's stack size, workers pinned to
    /// cores, panics printed to stderr.
    ///
    /// ```
    /// let pool = stealpool::Builder::new().build().unwrap();
    /// assert!(pool.capacity() >= 1);
    /// ```
    pub fn new() -> Self {
        Builder {
            capacity: None,
            thread_name: None,
            stack_size: None,
            pin_workers: true,
            panic_handler: None,
        }
    }

    /// How many workers run tasks at once. Default: the number of cores this
    /// process may run on. `0` makes [`build`](Builder::build) fail with
    /// [`BuildError::ZeroCapacity`].
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(3).build().unwrap();
    /// assert_eq!(pool.capacity(), 3);
    /// ```
    pub fn capacity(mut self, workers: usize) -> Self {
        self.capacity = Some(workers);
        self
    }

    /// Names worker `i`'s thread. Default: `stealpool-{i}`. A panic in the
    /// closure makes [`build`](Builder::build) fail with
    /// [`BuildError::ThreadNamePanicked`].
    ///
    /// ```
    /// let pool = stealpool::Pool::builder()
    ///     .capacity(1)
    ///     .thread_name(|i| format!("io-{i}"))
    ///     .build()
    ///     .unwrap();
    /// let name = pool.spawn(|| std::thread::current().name().map(String::from)).unwrap();
    /// assert_eq!(name.join().unwrap().as_deref(), Some("io-0"));
    /// ```
    pub fn thread_name<F>(mut self, name: F) -> Self
    where
        F: Fn(usize) -> String + Send + Sync + 'static,
    {
        self.thread_name = Some(StdArc::new(name));
        self
    }

    /// The stack size of each worker thread, in bytes. Default: the
    /// platform's (what `std::thread::Builder` uses).
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().stack_size(4 << 20).build().unwrap();
    /// # drop(pool);
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Whether worker `i` is pinned to the `i mod n`-th core this process may
    /// run on. Default: `true`. Pinning is best effort: where the platform
    /// refuses it, the worker runs unpinned.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().pin_workers(false).build().unwrap();
    /// # drop(pool);
    /// ```
    pub fn pin_workers(mut self, pin: bool) -> Self {
        self.pin_workers = pin;
        self
    }

    /// What happens to the payload of a panicking `submit`ted task. Default:
    /// print it to stderr. The worker survives either way, and
    /// [`Stats::panicked`](crate::Stats::panicked) counts the panic. A
    /// handler that panics itself is caught too (and reported on stderr).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let seen = Arc::new(AtomicUsize::new(0));
    /// let counter = seen.clone();
    /// let pool = stealpool::Pool::builder()
    ///     .panic_handler(move |_payload| {
    ///         counter.fetch_add(1, Ordering::SeqCst);
    ///     })
    ///     .build()
    ///     .unwrap();
    /// pool.submit(|| panic!("boom")).unwrap();
    /// pool.wait_idle();
    /// assert_eq!(seen.load(Ordering::SeqCst), 1);
    /// ```
    pub fn panic_handler<H>(mut self, handler: H) -> Self
    where
        H: Fn(Box<dyn Any + Send>) + Send + Sync + 'static,
    {
        self.panic_handler = Some(StdArc::new(handler));
        self
    }

    /// Starts the pool's worker threads.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroCapacity`] for `capacity(0)`,
    /// [`BuildError::ThreadNamePanicked`] if the naming closure panics,
    /// [`BuildError::Spawn`] if the OS refuses a thread. On error no thread
    /// of the pool is left running.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().capacity(2).build()?;
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn build(self) -> Result<Pool, BuildError> {
        let capacity = self.capacity.unwrap_or_else(num_cpus::get);
        if capacity == 0 {
            return Err(BuildError::ZeroCapacity);
        }
        let config = Config {
            capacity,
            thread_name: self.thread_name,
            stack_size: self.stack_size,
            pin_workers: self.pin_workers,
            panic_handler: self.panic_handler,
        };
        let shared = Arc::new(Shared::new(config));
        let pool = Pool::from_shared(shared.clone());
        match start_workers(&shared) {
            Ok(()) => Ok(pool),
            Err(error) => {
                // Closes and joins whatever started.
                pool.shutdown();
                Err(error)
            }
        }
    }
}

/// Starts one thread per worker slot.
fn start_workers(shared: &Arc<Shared>) -> Result<(), BuildError> {
    let config = &shared.config;
    let cores = if config.pin_workers && !cfg!(loom) {
        core_affinity::get_core_ids().filter(|cores| !cores.is_empty())
    } else {
        None
    };
    let mut threads = lock(&shared.threads);
    for index in 0..config.capacity {
        let name = match &config.thread_name {
            Some(name) => panic::catch_unwind(AssertUnwindSafe(|| name(index)))
                .map_err(|_| BuildError::ThreadNamePanicked(index))?,
            None => format!("stealpool-{index}"),
        };
        let mut builder = thread::Builder::new().name(name);
        if let Some(bytes) = config.stack_size {
            builder = builder.stack_size(bytes);
        }
        let core = cores.as_ref().map(|cores| cores[index % cores.len()]);
        let worker_shared = shared.clone();
        let handle = builder
            .spawn(move || run_worker(worker_shared, index, core))
            .map_err(BuildError::Spawn)?;
        threads.push(handle);
    }
    Ok(())
}
