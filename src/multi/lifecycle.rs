//! Closing and shutting down the sub-pools of a multi-pool, shared by
//! `MultiPool` and `MultiFuncPool`: every sub-pool closes before any is
//! waited for, so no sub-pool takes new work while another drains.

use std::time::{Duration, Instant};

use crate::error::ShutdownTimeout;
use crate::func::FuncPool;
use crate::pool::Pool;

/// What the multi-pools need of a sub-pool to shut it down.
pub(crate) trait SubPool {
    fn shutdown(&self);
    fn shutdown_timeout(&self, timeout: Duration) -> Result<(), ShutdownTimeout>;
}

impl SubPool for Pool {
    fn shutdown(&self) {
        Pool::shutdown(self);
    }

    fn shutdown_timeout(&self, timeout: Duration) -> Result<(), ShutdownTimeout> {
        Pool::shutdown_timeout(self, timeout)
    }
}

impl<A: Send + 'static> SubPool for FuncPool<A> {
    fn shutdown(&self) {
        FuncPool::shutdown(self);
    }

    fn shutdown_timeout(&self, timeout: Duration) -> Result<(), ShutdownTimeout> {
        FuncPool::shutdown_timeout(self, timeout)
    }
}

/// Closes every sub-pool without waiting.
pub(crate) fn close_all<P: SubPool>(pools: &[P]) {
    for pool in pools {
        // A zero timeout closes the pool and gives up waiting at once; the
        // `Err(ShutdownTimeout)` that follows is expected.
        let _ = pool.shutdown_timeout(Duration::ZERO);
    }
}

/// Closes every sub-pool, then waits for each to run what it accepted and
/// join its threads.
pub(crate) fn shutdown_all<P: SubPool>(pools: &[P]) {
    close_all(pools);
    for pool in pools {
        pool.shutdown();
    }
}

/// As [`shutdown_all`], giving up once `timeout` has passed in all; every
/// sub-pool is closed either way.
pub(crate) fn shutdown_all_timeout<P: SubPool>(pools: &[P], timeout: Duration) -> Result<(), ShutdownTimeout> {
    let deadline = Instant::now().checked_add(timeout);
    close_all(pools);
    let mut result = Ok(());
    for pool in pools {
        let left = deadline.map_or(timeout, |deadline| deadline.saturating_duration_since(Instant::now()));
        if pool.shutdown_timeout(left).is_err() {
            result = Err(ShutdownTimeout);
        }
    }
    result
}
