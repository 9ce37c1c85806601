//! The task queues: `crossbeam-deque` normally, a loom-visible stand-in under
//! `--cfg loom`.
//!
//! crossbeam-deque uses `core` atomics directly, so loom cannot see inside it.
//! Under loom the same three types (`Injector`, `Worker`, `Stealer`) are
//! replaced by small mutex-protected queues with the same interface and the
//! same order (the worker deque is LIFO for its owner and FIFO for thieves,
//! the injector is FIFO), as tokio does for its local queue.

pub(crate) use crossbeam_deque::Steal;

#[cfg(not(loom))]
pub(crate) use crossbeam_deque::{Injector, Stealer, Worker};

#[cfg(loom)]
pub(crate) use self::model::{Injector, Stealer, Worker};

#[cfg(loom)]
mod model {
    use super::Steal;
    use crate::sync::{lock, Arc, Mutex};
    use std::collections::VecDeque;

    /// Loom stand-in for `crossbeam_deque::Worker` (LIFO for the owner).
    pub(crate) struct Worker<T> {
        queue: Arc<Mutex<VecDeque<T>>>,
    }

    /// Loom stand-in for `crossbeam_deque::Stealer` (takes the oldest task).
    pub(crate) struct Stealer<T> {
        queue: Arc<Mutex<VecDeque<T>>>,
    }

    /// Loom stand-in for `crossbeam_deque::Injector` (FIFO).
    pub(crate) struct Injector<T> {
        queue: Mutex<VecDeque<T>>,
    }

    impl<T> Worker<T> {
        pub(crate) fn new_lifo() -> Self {
            Worker {
                queue: Arc::new(Mutex::new(VecDeque::new())),
            }
        }
        pub(crate) fn push(&self, task: T) {
            lock(&self.queue).push_back(task);
        }
        pub(crate) fn pop(&self) -> Option<T> {
            lock(&self.queue).pop_back()
        }
        pub(crate) fn is_empty(&self) -> bool {
            lock(&self.queue).is_empty()
        }
        pub(crate) fn stealer(&self) -> Stealer<T> {
            Stealer {
                queue: self.queue.clone(),
            }
        }
    }

    impl<T> Stealer<T> {
        pub(crate) fn is_empty(&self) -> bool {
            lock(&self.queue).is_empty()
        }
        pub(crate) fn steal(&self) -> Steal<T> {
            steal_one(&self.queue)
        }
        pub(crate) fn steal_batch_and_pop(&self, dest: &Worker<T>) -> Steal<T> {
            steal_batch(&self.queue, dest)
        }
    }

    impl<T> Injector<T> {
        pub(crate) fn new() -> Self {
            Injector {
                queue: Mutex::new(VecDeque::new()),
            }
        }
        pub(crate) fn push(&self, task: T) {
            lock(&self.queue).push_back(task);
        }
        pub(crate) fn steal(&self) -> Steal<T> {
            steal_one(&self.queue)
        }
        pub(crate) fn is_empty(&self) -> bool {
            lock(&self.queue).is_empty()
        }
        pub(crate) fn steal_batch_and_pop(&self, dest: &Worker<T>) -> Steal<T> {
            steal_batch(&self.queue, dest)
        }
    }

    /// Takes the oldest task of a queue.
    fn steal_one<T>(queue: &Mutex<VecDeque<T>>) -> Steal<T> {
        match lock(queue).pop_front() {
            Some(task) => Steal::Success(task),
            None => Steal::Empty,
        }
    }

    /// Takes the oldest task and moves up to half of the rest into `dest`,
    /// as crossbeam does (capped small, so the models stay small).
    fn steal_batch<T>(queue: &Mutex<VecDeque<T>>, dest: &Worker<T>) -> Steal<T> {
        let mut queue = lock(queue);
        let first = match queue.pop_front() {
            Some(task) => task,
            None => return Steal::Empty,
        };
        let extra = (queue.len() / 2).min(2);
        let moved: Vec<T> = queue.drain(..extra).collect();
        drop(queue);
        for task in moved {
            dest.push(task);
        }
        Steal::Success(first)
    }
}
