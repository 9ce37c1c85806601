//! An early stop with a `TaskSet`: search a range in chunks on the pool,
//! and once one chunk finds a hit, cancel the chunks that have not started
//! and tell the running ones to stop.
//!
//! The search looks for a nonce whose hash has `--bits` leading zero bits
//! (a toy proof of work). Chunks are spawned a few at a time; between
//! spawns, `try_join_next` collects the chunks that already finished
//! without waiting, so a hit found early stops the spawning too. After
//! the hit, `cancel_all` withdraws every queued chunk (it never runs) and
//! a shared flag makes the running ones return early.
//!
//! Run it with `cargo run --release --example early_stop` (options:
//! `--bits N`, `--chunk SIZE`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use stealpool::{Pool, TaskSet};

/// What one chunk of the search did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Hit(u64),
    Miss,
    /// Saw the stop flag and returned before the end of its range.
    Stopped,
}

fn hash(nonce: u64) -> u64 {
    // splitmix64's finaliser: every input bit moves every output bit.
    let mut z = nonce.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn search(range: std::ops::Range<u64>, bits: u32, stop: &AtomicBool) -> Chunk {
    for (i, nonce) in range.enumerate() {
        // Relaxed: a hint to stop early; the hit itself comes back through
        // the task's result.
        if i % 1024 == 0 && stop.load(Ordering::Relaxed) {
            return Chunk::Stopped;
        }
        if hash(nonce).leading_zeros() >= bits {
            stop.store(true, Ordering::Relaxed);
            return Chunk::Hit(nonce);
        }
    }
    Chunk::Miss
}

/// The chunks' outcomes, counted.
#[derive(Default)]
struct Tally {
    /// The smallest nonce found (two running chunks may both hit).
    first_hit: Option<u64>,
    hits: u64,
    misses: u64,
    stopped: u64,
    cancelled: u64,
}

impl Tally {
    fn record(&mut self, result: Result<Chunk, stealpool::JoinError>) {
        match result {
            Ok(Chunk::Hit(nonce)) => {
                self.hits += 1;
                self.first_hit = Some(self.first_hit.map_or(nonce, |h| h.min(nonce)));
            }
            Ok(Chunk::Miss) => self.misses += 1,
            Ok(Chunk::Stopped) => self.stopped += 1,
            Err(error) if error.is_cancelled() => self.cancelled += 1,
            Err(error) => panic!("a chunk failed: {error}"),
        }
    }
}

fn parse_args() -> (u32, u64) {
    let (mut bits, mut chunk) = (22, 1 << 16);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|v| v.parse::<u64>().ok());
        match (arg.as_str(), value) {
            ("--bits", Some(v)) => bits = v as u32,
            ("--chunk", Some(v)) => chunk = v.max(1),
            _ => panic!("usage: early_stop [--bits N] [--chunk SIZE]"),
        }
    }
    (bits, chunk)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (bits, chunk) = parse_args();
    let pool = Pool::builder().build()?;
    // Room for 64 times the expected number of hashes: a miss is
    // possible, with odds of about e^-64.
    let chunks = ((1u64 << bits) * 64).div_ceil(chunk);
    let in_flight = 4 * pool.capacity();
    let stop = Arc::new(AtomicBool::new(false));
    let mut set = TaskSet::new(&pool);

    let mut spawned = 0u64;
    let mut tally = Tally::default();

    // Spawn while nothing was found, keeping a few chunks per worker queued;
    // collect finished chunks without waiting between spawns.
    while spawned < chunks && tally.first_hit.is_none() {
        if set.len() < in_flight {
            let (stop, start) = (stop.clone(), spawned * chunk);
            set.spawn(move || search(start..start + chunk, bits, &stop))?;
            spawned += 1;
        } else if let Some(result) = set.join_next() {
            tally.record(result);
        }
        while let Some(result) = set.try_join_next() {
            tally.record(result);
        }
    }
    // A hit (or the end of the range): withdraw what has not started, and
    // collect the rest, which return early once they see the flag.
    stop.store(true, Ordering::Relaxed);
    let withdrawn = set.cancel_all();
    while let Some(result) = set.join_next() {
        tally.record(result);
    }
    let Tally {
        first_hit,
        hits,
        misses,
        stopped,
        cancelled,
    } = tally;
    match first_hit {
        Some(nonce) => {
            assert!(hash(nonce).leading_zeros() >= bits, "a wrong hit");
            println!("found nonce {nonce} with {bits} leading zero bits (verified)");
        }
        None => println!("no nonce with {bits} leading zero bits in the range"),
    }
    let ran = hits + misses + stopped;
    println!(
        "chunks: spawned {spawned} of {chunks}, ran {ran} (hits {hits}, misses {misses}, stopped early {stopped}), \
         cancelled before they started {cancelled} (withdrawn by cancel_all: {withdrawn})"
    );
    assert_eq!(spawned, ran + cancelled, "every chunk ran or was cancelled, once");
    pool.shutdown();
    Ok(())
}
