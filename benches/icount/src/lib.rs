//! stealpool's instruction-count benchmarks, a crate of their own so that
//! CI builds only stealpool, rayon and gungraun for them. The library is
//! empty: everything is under `benches/`. From the repository root:
//!
//! ```text
//! bash .ci/icount            # compare with icount-baseline.txt
//! bash .ci/icount --bless    # write the baseline after a change meant to move it
//! ```
