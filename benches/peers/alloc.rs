//! A counting global allocator for the `mem_per_task` workload.
//!
//! Every allocation goes to [`System`]. While a measurement window is open
//! ([`start`] .. [`stop`]) each allocation, reallocation and deallocation
//! also moves a signed byte count, and the highest value the count reached
//! is kept. Outside a window the only extra cost is one relaxed load of a
//! flag, so the timed workloads of the same binary are not slowed by a
//! shared counter bouncing between cores.
//!
//! Blocks freed inside a window that were allocated before it count as
//! negative bytes; `mem_per_task` opens its window only once the pool's
//! workers are blocked, so nothing else allocates or frees meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

/// Forwards to [`System`], counting bytes while a window is open.
pub struct CountingAlloc;

/// Whether a window is open. Relaxed everywhere: the window is opened and
/// closed by the measuring thread, which also makes every counted
/// allocation; allocations on other threads that see the flag late are
/// exactly the stray ones the window is meant to keep out.
static COUNTING: AtomicBool = AtomicBool::new(false);
/// Bytes allocated minus bytes freed since the window opened.
static CURRENT: AtomicIsize = AtomicIsize::new(0);
/// The highest `CURRENT` seen since the window opened.
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn grew(bytes: usize) {
    let bytes = isize::try_from(bytes).unwrap_or(isize::MAX);
    // Relaxed: a statistic read after `stop`, on the thread that allocated.
    let now = CURRENT.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(bytes: usize) {
    let bytes = isize::try_from(bytes).unwrap_or(isize::MAX);
    // Relaxed: as in `grew`.
    CURRENT.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged and returns its result; the counting touches only atomics.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() && COUNTING.load(Ordering::Relaxed) {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() && COUNTING.load(Ordering::Relaxed) {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) };
        if COUNTING.load(Ordering::Relaxed) {
            shrank(layout.size());
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() && COUNTING.load(Ordering::Relaxed) {
            shrank(layout.size());
            grew(new_size);
        }
        new
    }
}

/// Opens a window: the count and its peak start at zero.
pub fn start() {
    CURRENT.store(0, Ordering::Relaxed);
    PEAK.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
}

/// Closes the window; returns (bytes still allocated, peak bytes), both
/// relative to the moment it opened.
pub fn stop() -> (isize, isize) {
    COUNTING.store(false, Ordering::Relaxed);
    (CURRENT.load(Ordering::Relaxed), PEAK.load(Ordering::Relaxed))
}
