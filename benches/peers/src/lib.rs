//! stealpool's benchmarks, a crate of their own so that `cargo test` in
//! stealpool builds none of the peer runtimes they compare against. The
//! library is empty: everything is under `benches/`. From the repository
//! root:
//!
//! ```text
//! cargo bench -p stealpool-benches --bench peers -- --rounds 3
//! cargo bench -p stealpool-benches --bench capacity -- --test
//! ```
