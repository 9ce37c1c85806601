//! Seeing inside a running pool: the hooks a user installs (thread and task
//! events), the figures only an observed pool measures (queue delay), the
//! busy time every worker keeps, and where the pool's own messages go.
//!
//! A leaf, like `stats` and `hooks`: the scheduler calls into it on cold
//! paths only (see `scheduler/observed.rs` and `scheduler/stamp.rs`).

pub(crate) mod busy;
pub(crate) mod event;
pub(crate) mod queue_delay;
pub(crate) mod report;
pub(crate) mod user_hooks;

pub use event::TaskEvent;
pub use queue_delay::QueueDelay;
