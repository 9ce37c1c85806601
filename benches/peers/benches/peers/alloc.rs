//! A counting global allocator for the `mem_per_task` workload.
//!
//! Every allocation goes to [`System`]. While a measurement window is open
//! ([`start`] .. [`stop`]) each allocation, reallocation and deallocation
//! also moves signed counts: the bytes asked for (`Layout::size`, and the
//! highest value that count reached), the blocks, and on Linux the bytes
//! malloc actually set aside for them (`malloc_usable_size`, which rounds
//! small requests up: glibc gives an 8- or 16-byte request 24 usable bytes,
//! plus an 8-byte header this count leaves out). Outside a window the only extra cost is one relaxed load of a
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
/// Blocks allocated minus blocks freed since the window opened.
static BLOCKS: AtomicIsize = AtomicIsize::new(0);
/// As `CURRENT`, in the sizes malloc reports for the blocks.
static USABLE: AtomicIsize = AtomicIsize::new(0);

fn signed(bytes: usize) -> isize {
    isize::try_from(bytes).unwrap_or(isize::MAX)
}

// All counts are Relaxed: statistics read after `stop`, on the thread that
// made the counted allocations.

fn grew(bytes: usize, usable: usize) {
    let bytes = signed(bytes);
    let now = CURRENT.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
    USABLE.fetch_add(signed(usable), Ordering::Relaxed);
}

fn shrank(bytes: usize, usable: usize) {
    CURRENT.fetch_sub(signed(bytes), Ordering::Relaxed);
    USABLE.fetch_sub(signed(usable), Ordering::Relaxed);
}

/// What malloc set aside for the live block at `ptr` of `size` bytes.
#[cfg(target_os = "linux")]
fn usable(ptr: *mut u8, _size: usize) -> usize {
    // SAFETY: `ptr` is a live block from `System`, which allocates with the
    // malloc family on Linux.
    unsafe { libc::malloc_usable_size(ptr.cast()) }
}

#[cfg(not(target_os = "linux"))]
fn usable(_ptr: *mut u8, size: usize) -> usize {
    size
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged and returns its result; the counting touches only atomics.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() && COUNTING.load(Ordering::Relaxed) {
            grew(layout.size(), usable(ptr, layout.size()));
            BLOCKS.fetch_add(1, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() && COUNTING.load(Ordering::Relaxed) {
            grew(layout.size(), usable(ptr, layout.size()));
            BLOCKS.fetch_add(1, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            shrank(layout.size(), usable(ptr, layout.size()));
            BLOCKS.fetch_sub(1, Ordering::Relaxed);
        }
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) };
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let counting = COUNTING.load(Ordering::Relaxed);
        let old_usable = if counting { usable(ptr, layout.size()) } else { 0 };
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() && counting {
            shrank(layout.size(), old_usable);
            grew(new_size, usable(new, new_size));
        }
        new
    }
}

/// What a window counted, each relative to the moment it opened.
pub struct Counts {
    /// Bytes asked for and not yet freed.
    pub bytes: isize,
    /// The highest `bytes` reached.
    pub peak: isize,
    /// Blocks not yet freed.
    pub blocks: isize,
    /// As `bytes`, in the sizes malloc set aside (Linux; else as `bytes`).
    pub usable: isize,
}

/// Opens a window: every count starts at zero.
pub fn start() {
    for count in [&CURRENT, &PEAK, &BLOCKS, &USABLE] {
        count.store(0, Ordering::Relaxed);
    }
    COUNTING.store(true, Ordering::Relaxed);
}

/// Closes the window and returns its counts.
pub fn stop() -> Counts {
    COUNTING.store(false, Ordering::Relaxed);
    Counts {
        bytes: CURRENT.load(Ordering::Relaxed),
        peak: PEAK.load(Ordering::Relaxed),
        blocks: BLOCKS.load(Ordering::Relaxed),
        usable: USABLE.load(Ordering::Relaxed),
    }
}
