//! `FuncPoolBuilder`: a [`Builder`] plus what only a `FuncPool` has (the
//! function, per-worker state, the health check).

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use crate::error::BuildError;
use crate::func::core::{FuncCore, FuncCoreOf};
use crate::func::stateless::StatelessCore;
use crate::func::states::{CheckFn, StateCells};
use crate::func::FuncPool;
use crate::hooks::WorkerHooks;
use crate::pool::builder::Builder;
use crate::sync::StdArc;

/// Configures and starts a [`FuncPool`]. Every setting of [`Builder`] but
/// [`autoscale`](Builder::autoscale) is here under the same name (a
/// function that may block can call [`block_in_place`](crate::block_in_place));
/// [`FuncPoolBuilder::health_check`] and
/// [`FuncPoolBuilder::build_with_state`] are a `FuncPool`'s own.
///
/// ```
/// use std::time::Duration;
///
/// struct Conn { healthy: bool }
/// let fp = stealpool::FuncPool::builder()
///     .capacity(2)
///     .health_check(Duration::from_secs(1), |conn: &mut Conn| conn.healthy)
///     .build_with_state(|| Conn { healthy: true }, |conn: &mut Conn, job: u32| {
///         assert!(conn.healthy && job < 100);
///     })?;
/// fp.invoke(7)?;
/// fp.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct FuncPoolBuilder<A> {
    builder: Builder,
    /// `(interval, Box<Box<CheckFn<S>>>)`, typed when `build_with_state`
    /// knows `S`.
    check: Option<(Duration, Box<dyn Any + Send + Sync>)>,
    _argument: PhantomData<fn(A)>,
}

impl<A> fmt::Debug for FuncPoolBuilder<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FuncPoolBuilder")
            .field("builder", &self.builder)
            .field("health_check", &self.check.as_ref().map(|(interval, _)| interval))
            .finish()
    }
}

macro_rules! forward {
    ($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*)) => {
        $(#[$doc])*
        pub fn $name(mut self, $($arg: $ty),*) -> Self {
            self.builder = self.builder.$name($($arg),*);
            self
        }
    };
}

impl<A: Send + 'static> FuncPoolBuilder<A> {
    pub(crate) fn new() -> Self {
        FuncPoolBuilder::from_builder(Builder::new())
    }

    /// A `FuncPool` builder with a `Pool` builder's settings (a
    /// `MultiFuncPool`'s sub-pools).
    pub(crate) fn from_builder(builder: Builder) -> Self {
        FuncPoolBuilder {
            builder,
            check: None,
            _argument: PhantomData,
        }
    }

    forward!(
        /// As [`Builder::capacity`].
        ///
        /// ```
        /// let fp = stealpool::FuncPool::builder().capacity(2).build(|_: u8| ())?;
        /// assert_eq!(fp.capacity(), 2);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        capacity(workers: usize)
    );
    forward!(
        /// As [`Builder::max_capacity`].
        ///
        /// ```
        /// let fp = stealpool::FuncPool::builder().capacity(1).max_capacity(3).build(|_: u8| ())?;
        /// assert_eq!(fp.max_capacity(), 3);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        max_capacity(workers: usize)
    );
    forward!(
        /// As [`Builder::stack_size`].
        ///
        /// ```
        /// let fp = stealpool::FuncPool::builder().stack_size(1 << 20).build(|_: u8| ())?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        stack_size(bytes: usize)
    );
    forward!(
        /// As [`Builder::pin_workers`].
        ///
        /// ```
        /// let fp = stealpool::FuncPool::builder().pin_workers(false).build(|_: u8| ())?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pin_workers(pin: bool)
    );
    forward!(
        /// As [`Builder::pinning`].
        ///
        /// ```
        /// use stealpool::{FuncPool, Pinning};
        /// let fp = FuncPool::builder().pinning(Pinning::Strict).build(|_: u8| ())?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pinning(pinning: crate::Pinning)
    );
    /// As [`Builder::on_thread_start`]. Runs before the worker's state (if
    /// any) is made.
    ///
    /// ```
    /// let fp = stealpool::FuncPool::builder().on_thread_start(|i| assert!(i < 64)).build(|_: u8| ())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_thread_start(mut self, hook: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.builder = self.builder.on_thread_start(hook);
        self
    }
    /// As [`Builder::on_thread_stop`]. Runs before the worker's state (if
    /// any) is dropped.
    ///
    /// ```
    /// let fp = stealpool::FuncPool::builder().on_thread_stop(|i| assert!(i < 64)).build(|_: u8| ())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_thread_stop(mut self, hook: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.builder = self.builder.on_thread_stop(hook);
        self
    }
    /// As [`Builder::on_task_start`]: once per invocation.
    ///
    /// ```
    /// let fp = stealpool::FuncPool::builder().on_task_start(|e| assert!(!e.panicked())).build(|_: u8| ())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_task_start(mut self, hook: impl Fn(&crate::TaskEvent) + Send + Sync + 'static) -> Self {
        self.builder = self.builder.on_task_start(hook);
        self
    }
    /// As [`Builder::on_task_end`]: once per invocation.
    ///
    /// ```
    /// let fp = stealpool::FuncPool::builder().on_task_end(|e| assert!(!e.panicked())).build(|_: u8| ())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_task_end(mut self, hook: impl Fn(&crate::TaskEvent) + Send + Sync + 'static) -> Self {
        self.builder = self.builder.on_task_end(hook);
        self
    }
    forward!(
        /// As [`Builder::measure_queue_delay`].
        ///
        /// ```
        /// let fp = stealpool::FuncPool::builder().measure_queue_delay(true).build(|_: u8| ())?;
        /// assert!(fp.stats().queue_delay.is_some());
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        measure_queue_delay(measure: bool)
    );
    /// As [`Builder::pin_to_cores`].
    ///
    /// ```
    /// let fp = stealpool::FuncPool::builder().capacity(1).pin_to_cores([0]).build(|_: u8| ())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pin_to_cores(mut self, cores: impl IntoIterator<Item = usize>) -> Self {
        self.builder = self.builder.pin_to_cores(cores);
        self
    }
    forward!(
        /// As [`Builder::prealloc`].
        ///
        /// ```
        /// let fp = stealpool::FuncPool::builder().capacity(2).prealloc(true).build(|_: u8| ())?;
        /// assert_eq!(fp.stats().live_workers, 2);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        prealloc(prealloc: bool)
    );
    forward!(
        /// As [`Builder::min_workers`].
        ///
        /// ```
        /// let fp = stealpool::FuncPool::builder().capacity(2).min_workers(1).build(|_: u8| ())?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        min_workers(workers: usize)
    );
    forward!(
        /// As [`Builder::keep_alive`].
        ///
        /// ```
        /// use std::time::Duration;
        /// let fp = stealpool::FuncPool::builder().keep_alive(Duration::from_secs(5)).build(|_: u8| ())?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        keep_alive(idle: Duration)
    );
    forward!(
        /// As [`Builder::queue_limit`].
        ///
        /// ```
        /// let fp = stealpool::FuncPool::builder().queue_limit(100).build(|_: u8| ())?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        queue_limit(tasks: usize)
    );
    forward!(
        /// As [`Builder::nonblocking`].
        ///
        /// ```
        /// let fp = stealpool::FuncPool::builder().queue_limit(1).nonblocking(true).build(|_: u8| ())?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        nonblocking(nonblocking: bool)
    );
    forward!(
        /// As [`Builder::max_blocked_submitters`].
        ///
        /// ```
        /// let fp = stealpool::FuncPool::builder().queue_limit(1).max_blocked_submitters(2).build(|_: u8| ())?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        max_blocked_submitters(submitters: usize)
    );
    forward!(
        /// As [`Builder::fifo`]: arguments invoked from outside start in
        /// invocation order as far as the workers allow.
        ///
        /// ```
        /// let fp = stealpool::FuncPool::builder().capacity(2).fifo(true).build(|_: u8| ())?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        fifo(strict: bool)
    );

    /// As [`Builder::thread_name`].
    ///
    /// ```
    /// let fp = stealpool::FuncPool::builder().thread_name(|i| format!("fp-{i}")).build(|_: u8| ())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn thread_name(mut self, name: impl Fn(usize) -> String + Send + Sync + 'static) -> Self {
        self.builder = self.builder.thread_name(name);
        self
    }

    /// As [`Builder::panic_handler`]: panics of the function and of the state
    /// factory go here.
    ///
    /// ```
    /// let fp = stealpool::FuncPool::builder().panic_handler(|_| eprintln!("oops")).build(|_: u8| ())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn panic_handler(mut self, handler: impl Fn(Box<dyn Any + Send>) + Send + Sync + 'static) -> Self {
        self.builder = self.builder.panic_handler(handler);
        self
    }

    /// Idle workers check their state every `interval` and make it again if
    /// `check` returns false. Only with
    /// [`build_with_state`](FuncPoolBuilder::build_with_state) (whose state
    /// type must be `S`); a check that panics counts as a task panic and
    /// keeps the state.
    ///
    /// ```
    /// use std::time::Duration;
    /// let fp = stealpool::FuncPool::builder()
    ///     .health_check(Duration::from_millis(100), |n: &mut u64| *n < 1000)
    ///     .build_with_state(|| 0u64, |n: &mut u64, add: u64| *n += add)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn health_check<S: 'static>(
        mut self,
        interval: Duration,
        check: impl Fn(&mut S) -> bool + Send + Sync + 'static,
    ) -> Self {
        let check: Box<CheckFn<S>> = Box::new(check);
        self.check = Some((interval, Box::new(check)));
        self
    }

    /// Builds a pool that calls `func(arg)` for every invoked argument.
    ///
    /// # Errors
    ///
    /// As [`Builder::build`]; [`BuildError::HealthCheckWithoutState`] if a
    /// health check was set (there is no state to check).
    ///
    /// ```
    /// let fp = stealpool::FuncPool::builder().capacity(2).build(|line: String| println!("{line}"))?;
    /// fp.invoke("hello".to_owned())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build(self, func: impl Fn(A) + Send + Sync + 'static) -> Result<FuncPool<A>, BuildError> {
        if self.check.is_some() {
            return Err(BuildError::HealthCheckWithoutState);
        }
        // No state to find per call: the stateless core calls `func`
        // directly.
        let core = StatelessCore::new(func);
        let hooks: StdArc<dyn WorkerHooks> = core.clone();
        let pool = self.builder.hooks(hooks).hidden().build()?;
        let core: StdArc<dyn FuncCoreOf<A>> = core;
        Ok(FuncPool::from_parts(pool, core))
    }

    /// Builds a pool whose workers each keep a state: made by `factory` on
    /// a worker's first call, passed to every `func(&mut state, arg)` on that
    /// worker, dropped when the worker's thread exits (keep-alive,
    /// shutdown). A panicking factory is a task panic, not a dead pool.
    ///
    /// # Errors
    ///
    /// As [`Builder::build`]; [`BuildError::HealthCheckStateMismatch`] if
    /// the health check was written for another state type;
    /// [`BuildError::ZeroHealthCheckInterval`] for a zero interval.
    ///
    /// ```
    /// let fp = stealpool::FuncPool::builder()
    ///     .capacity(2)
    ///     .build_with_state(|| String::with_capacity(64), |buf: &mut String, word: &'static str| {
    ///         buf.clear();
    ///         buf.push_str(word);
    ///     })?;
    /// fp.invoke("reused buffer")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build_with_state<S, M, F>(self, factory: M, func: F) -> Result<FuncPool<A>, BuildError>
    where
        S: Send + 'static,
        M: Fn() -> S + Send + Sync + 'static,
        F: Fn(&mut S, A) + Send + Sync + 'static,
    {
        let check = match self.check {
            None => None,
            Some((interval, _)) if interval.is_zero() => return Err(BuildError::ZeroHealthCheckInterval),
            Some((interval, check)) => match check.downcast::<Box<CheckFn<S>>>() {
                Ok(check) => Some((interval, *check)),
                Err(_) => return Err(BuildError::HealthCheckStateMismatch),
            },
        };
        // Validate the pool's settings first: the states need its size.
        let workers = self.builder.configured_max_capacity()?;
        let states = StateCells::new(workers, Box::new(factory), check);
        let core = FuncCore::new(states, func);
        let hooks: StdArc<dyn WorkerHooks> = core.clone();
        let pool = self.builder.hooks(hooks).hidden().build()?;
        let core: StdArc<dyn FuncCoreOf<A>> = core;
        Ok(FuncPool::from_parts(pool, core))
    }
}
