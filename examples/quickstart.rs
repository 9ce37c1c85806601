//! The classic worker-pool pattern done right: submit closures, collect
//! their results, shut down.
//!
//! Run it with `cargo run --release --example quickstart`.

use std::sync::mpsc;

use stealpool::Pool;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Three workers, like the classic Go example's three goroutines.
    let pool = Pool::builder().capacity(3).build()?;

    // Submit ten tasks; each sends its result back on a channel.
    let (results, received) = mpsc::channel();
    for task in 0..10u64 {
        let results = results.clone();
        pool.submit(move || {
            let name = std::thread::current().name().unwrap_or("?").to_string();
            results.send((task, task * task, name)).expect("main is listening");
        })?;
    }
    drop(results);

    // Results with a handle, too.
    let sum = pool.spawn(|| (1..=100u64).sum::<u64>())?;

    let mut collected: Vec<_> = received.iter().collect();
    collected.sort();
    for (task, square, worker) in &collected {
        println!("task {task:2} -> {square:3} (on {worker})");
    }
    println!("sum 1..=100 = {}", sum.join().expect("the task did not panic"));

    // Graceful: everything accepted has run; new work is refused.
    pool.shutdown();
    assert!(pool.submit(|| ()).is_err());
    println!("{} tasks completed; pool shut down", pool.stats().completed);
    Ok(())
}
