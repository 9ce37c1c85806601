//! `current_thread_index` / `current_num_threads`: the index is the
//! worker's slot, below the pool's slot count whatever the capacity does.

mod common;
use common::*;

use std::collections::HashSet;
use std::sync::{Arc, Barrier, Mutex};

use stealpool::{current_num_threads, current_thread_index, FuncPool, Pool};

#[test]
fn none_outside_and_the_global_bound() {
    let _serial = serial();
    assert_eq!(current_thread_index(), None);
    assert_eq!(current_num_threads(), stealpool::global_pool().max_capacity());
    let pool = Pool::builder().capacity(2).build().unwrap();
    assert_eq!(pool.current_thread_index(), None);
}

#[test]
fn workers_running_at_once_have_distinct_indices_below_the_bound() {
    let _serial = serial();
    let _dog = Watchdog::new("distinct_indices", 60);
    let pool = Pool::builder().capacity(4).max_capacity(6).build().unwrap();
    // Four tasks that wait for each other run on four workers at once.
    let barrier = Arc::new(Barrier::new(4));
    let seen = Arc::new(Mutex::new(Vec::new()));
    for _ in 0..4 {
        let (barrier, seen, inner) = (barrier.clone(), seen.clone(), pool.clone());
        pool.submit(move || {
            let index = current_thread_index().unwrap();
            assert_eq!(inner.current_thread_index(), Some(index));
            seen.lock().unwrap().push((index, current_num_threads()));
            barrier.wait();
        })
        .unwrap();
    }
    pool.wait_idle();
    let seen = seen.lock().unwrap();
    let indices: HashSet<usize> = seen.iter().map(|&(index, _)| index).collect();
    assert_eq!(indices.len(), 4, "{seen:?}");
    for &(index, bound) in seen.iter() {
        assert_eq!(bound, 6);
        assert!(index < 4, "a worker above the capacity ran a task: {seen:?}");
    }
}

#[test]
fn a_buffer_sized_once_stays_valid_across_tune() {
    let _serial = serial();
    let _dog = Watchdog::new("across_tune", 60);
    let pool = Pool::builder().capacity(1).max_capacity(8).build().unwrap();
    let slots = pool.install(current_num_threads);
    assert_eq!(slots, 8);
    let buffers: Arc<Vec<Mutex<u64>>> = Arc::new((0..slots).map(|_| Mutex::new(0)).collect());
    let mut total = 0;
    for capacity in [8, 3, 8, 1, 5] {
        pool.tune(capacity).unwrap();
        for i in 0..200u64 {
            let buffers = buffers.clone();
            total += i;
            pool.submit(move || {
                assert_eq!(current_num_threads(), 8, "the bound moved");
                *buffers[current_thread_index().unwrap()].lock().unwrap() += i;
            })
            .unwrap();
        }
        pool.wait_idle();
    }
    let sum: u64 = buffers.iter().map(|b| *b.lock().unwrap()).sum();
    assert_eq!(sum, total);
    assert_eq!(pool.stats().panicked, 0);
}

#[test]
fn another_pool_s_worker_is_not_this_pool_s() {
    let _serial = serial();
    let a = Pool::builder().capacity(1).build().unwrap();
    let b = Pool::builder().capacity(1).max_capacity(3).build().unwrap();
    let b_inside = b.clone();
    let (free, of_b) = a
        .spawn(move || (current_thread_index(), b_inside.current_thread_index()))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(free, Some(0));
    assert_eq!(of_b, None);
    // Nested install: the index and the bound follow the innermost worker.
    let b_inside = b.clone();
    let inner = a.install(move || b_inside.install(|| (current_thread_index(), current_num_threads())));
    assert_eq!(inner, (Some(0), 3));
}

#[test]
fn func_pool_handlers_see_their_worker_index() {
    let _serial = serial();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let fp = FuncPool::builder()
        .capacity(2)
        .max_capacity(2)
        .build(move |_: u32| {
            record
                .lock()
                .unwrap()
                .push((current_thread_index(), current_num_threads()))
        })
        .unwrap();
    for n in 0..20 {
        fp.invoke(n).unwrap();
    }
    fp.wait_idle();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 20);
    for &(index, bound) in seen.iter() {
        assert!(index.unwrap() < bound && bound == 2, "{seen:?}");
    }
}
