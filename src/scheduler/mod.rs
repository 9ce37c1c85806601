//! The scheduler: queues, jobs, the sleep protocol, the worker loop, the
//! shared registry of a pool's state, and the threads that come and go.
//!
//! This folder is the engine every public type drives; nothing outside it
//! names a file in it, only the items re-exported here. Inside, the files
//! import each other freely but for one rule: the leaves (`parker`,
//! `queue`, `latch`, `job`, `sleep`, `backpressure`, `pinning`) import no
//! other file of the folder except `job_cache` (jobs take their blocks
//! from it), `parker` (latches and sleep park on it),
//! `latch` (jobs carry one) and `admission`'s vocabulary (`Room`,
//! `Refusal`: what a submit asks for and why it was refused, which the
//! queue limit speaks too). The one loop is `registry` ↔ `worker`: a
//! submit may start a thread (`registry/threads.rs`) whose body is the
//! worker loop, which calls back into the registry.

pub(crate) mod admission;
pub(crate) mod autoscale;
pub(crate) mod backpressure;
pub(crate) mod broadcast;
pub(crate) mod job;
pub(crate) mod job_cache;
pub(crate) mod latch;
pub(crate) mod observed;
pub(crate) mod parker;
pub(crate) mod pinning;
pub(crate) mod queue;
pub(crate) mod registry;
pub(crate) mod sleep;
pub(crate) mod stamp;
pub(crate) mod worker;

pub(crate) use admission::{Admission, Refusal, Room};
pub(crate) use broadcast::Share;
pub(crate) use job::{ptr_of, HeapJob, JobData, JobKind, JobOps, JobRef, StackJob};
pub(crate) use job_cache::{put_job_value, take_job_value};
pub(crate) use latch::Latch;
pub(crate) use pinning::Placement;
pub(crate) use registry::idle::help_while_draining;
pub(crate) use registry::threads::StartError;
pub(crate) use registry::Shared;
pub(crate) use worker::{cross, early_count, JoinFrame, WorkerThread, LATENT_JOINS};

/// The single components the loom component models drive on their own
/// (`crate::loom_components`).
#[cfg(loom)]
pub(crate) use {latch::LatchOwner, parker::Parker, worker::JoinFrames};
