//! A per-thread cache of job blocks: the memory of a boxed job (a closure
//! too big to store in its `JobRef`, a scope spawn with its scope pointer)
//! is taken from and given back to the running thread's cache instead of
//! the global allocator.
//!
//! A pool's jobs are born and die in waves: a task spawns children, runs,
//! and its block is free again a moment later, often on the same thread (a
//! stolen job frees its block on the thief, whose cache then serves the
//! thief's own spawns). The system allocator's per-thread cache is small
//! (glibc keeps 7 blocks a size) and a tree of spawns overflows it at every
//! level: a spawn-heavy workload spent a third of its instructions in
//! `malloc`/`free`. Here each thread keeps up to [`CACHED`] blocks of one
//! size; blocks move between threads with the jobs (no atomics: a block
//! belongs to whichever thread holds it), and a full cache, or a thread
//! whose cache is gone (thread exit), hands blocks back to the allocator.
//!
//! [`put_job_value`] and [`take_job_value`] are what jobs use: a value that fits a block goes
//! there, a larger one into a `Box`.
//!
//! Under `--cfg loom` the cache is off (loom's threads share one OS thread,
//! so a thread-local here would be shared state loom cannot see).

use std::alloc::{self, Layout};
use std::ptr::NonNull;

/// The size of a cached block: jobs up to this size (and [`BLOCK_ALIGN`])
/// use the cache, larger ones the allocator directly.
pub(crate) const BLOCK_SIZE: usize = 64;
/// The alignment of a cached block.
pub(crate) const BLOCK_ALIGN: usize = 16;
/// Blocks a thread keeps at most (4 KiB).
#[cfg(not(loom))]
const CACHED: usize = 64;

/// The layout of every cached block.
fn block_layout() -> Layout {
    // 64 is a multiple of 16 and 16 a power of two: never fails.
    Layout::from_size_align(BLOCK_SIZE, BLOCK_ALIGN).expect("a valid block layout")
}

/// Whether a value of type `T` fits in a cached block.
pub(crate) const fn fits<T>() -> bool {
    std::mem::size_of::<T>() <= BLOCK_SIZE && std::mem::align_of::<T>() <= BLOCK_ALIGN && std::mem::size_of::<T>() > 0
}

#[cfg(not(loom))]
mod cache {
    use std::cell::{Cell, UnsafeCell};
    use std::ptr::{self, NonNull};

    use super::{block_layout, CACHED};

    /// One thread's free blocks: `blocks[..len]`.
    pub(super) struct Cache {
        len: Cell<usize>,
        blocks: UnsafeCell<[*mut u8; CACHED]>,
    }

    impl Cache {
        pub(super) const fn new() -> Self {
            Cache {
                len: Cell::new(0),
                blocks: UnsafeCell::new([ptr::null_mut(); CACHED]),
            }
        }

        #[inline]
        pub(super) fn pop(&self) -> Option<NonNull<u8>> {
            let len = self.len.get();
            if len == 0 {
                return None;
            }
            self.len.set(len - 1);
            // SAFETY: the cache is thread-local and these methods call out to
            // nothing while they touch the array, so no other reference to it
            // exists; `len - 1 < CACHED`.
            let block = unsafe { (*self.blocks.get())[len - 1] };
            // Every stored block came from `push`'s non-null pointer.
            NonNull::new(block)
        }

        /// Keeps `block`; false when the cache is full (the caller frees it).
        #[inline]
        pub(super) fn push(&self, block: NonNull<u8>) -> bool {
            let len = self.len.get();
            if len == CACHED {
                return false;
            }
            // SAFETY: as in `pop`; `len < CACHED`.
            unsafe { (*self.blocks.get())[len] = block.as_ptr() };
            self.len.set(len + 1);
            true
        }
    }

    impl Drop for Cache {
        fn drop(&mut self) {
            let layout = block_layout();
            for &block in &self.blocks.get_mut()[..*self.len.get_mut()] {
                // SAFETY: every cached block was allocated with `layout`
                // (`alloc_block`) and is owned by this cache alone.
                unsafe { std::alloc::dealloc(block, layout) };
            }
        }
    }

    std::thread_local! {
        pub(super) static CACHE: Cache = const { Cache::new() };
    }
}

/// A block of [`BLOCK_SIZE`] bytes aligned to [`BLOCK_ALIGN`]: from this
/// thread's cache if it has one, else from the allocator.
#[inline]
pub(crate) fn alloc_block() -> NonNull<u8> {
    #[cfg(not(loom))]
    {
        // `try_with` fails only while this thread's locals are being torn
        // down: then the allocator serves.
        if let Some(block) = cache::CACHE.try_with(cache::Cache::pop).ok().flatten() {
            return block;
        }
    }
    alloc_from_allocator()
}

#[cold]
fn alloc_from_allocator() -> NonNull<u8> {
    let layout = block_layout();
    // SAFETY: the layout's size is not zero.
    let block = unsafe { alloc::alloc(layout) };
    NonNull::new(block).unwrap_or_else(|| alloc::handle_alloc_error(layout))
}

/// Gives a block back: to this thread's cache, or to the allocator when the
/// cache is full or gone.
///
/// # Safety
/// `block` came from [`alloc_block`] (on any thread), is not used after
/// this call, and whatever it held has been moved out or dropped.
#[inline]
pub(crate) unsafe fn free_block(block: NonNull<u8>) {
    #[cfg(not(loom))]
    {
        if cache::CACHE.try_with(|cache| cache.push(block)).unwrap_or(false) {
            return;
        }
    }
    // SAFETY: allocated with this layout (`alloc_block`), owned by us.
    unsafe { alloc::dealloc(block.as_ptr(), block_layout()) };
}

/// Moves `value` out of line for a job: into a cached block if it fits
/// one, else into a `Box`. [`take_job_value`] gets it back.
#[inline]
pub(crate) fn put_job_value<T>(value: T) -> NonNull<T> {
    if fits::<T>() {
        let block = alloc_block().cast::<T>();
        // SAFETY: the block is BLOCK_SIZE bytes aligned to BLOCK_ALIGN,
        // which `T` fits, and is ours until freed.
        unsafe { block.as_ptr().write(value) };
        block
    } else {
        // SAFETY: `Box::into_raw` never returns null.
        unsafe { NonNull::new_unchecked(Box::into_raw(Box::new(value))) }
    }
}

/// Moves a value stored by [`put_job_value`] back out and frees its memory.
///
/// # Safety
/// `stored` came from `put_job_value::<T>` and is taken once; nothing uses it after.
#[inline]
pub(crate) unsafe fn take_job_value<T>(stored: NonNull<T>) -> T {
    if fits::<T>() {
        // SAFETY: `put_job_value` wrote a `T` there; read once (caller).
        let value = unsafe { stored.as_ptr().read() };
        // SAFETY: from `alloc_block`; its value was just moved out.
        unsafe { free_block(stored.cast()) };
        value
    } else {
        // SAFETY: `put_job_value` made it with `Box::into_raw` (caller:
        // taken once).
        *unsafe { Box::from_raw(stored.as_ptr()) }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn put_and_take_move_small_and_large_values_and_drop_nothing() {
        let counted = std::sync::Arc::new(());
        let small = put_job_value((counted.clone(), 7u64));
        let large = put_job_value((counted.clone(), [1u64; 16]));
        assert_eq!(std::sync::Arc::strong_count(&counted), 3);
        // SAFETY: each from `put_job_value`, taken once.
        let (small, large) = unsafe { (take_job_value(small), take_job_value(large)) };
        assert_eq!((small.1, large.1[15]), (7, 1));
        drop((small, large));
        assert_eq!(std::sync::Arc::strong_count(&counted), 1);
    }

    #[test]
    fn a_freed_block_is_the_next_one_handed_out_on_the_same_thread() {
        let first = alloc_block();
        // SAFETY: from `alloc_block`, unused after.
        unsafe { free_block(first) };
        let again = alloc_block();
        assert_eq!(first, again);
        // SAFETY: as above.
        unsafe { free_block(again) };
    }

    #[test]
    fn blocks_are_aligned_and_a_full_cache_frees_the_rest() {
        let blocks: Vec<_> = (0..3 * CACHED).map(|_| alloc_block()).collect();
        for block in &blocks {
            assert_eq!(block.as_ptr() as usize % BLOCK_ALIGN, 0);
        }
        for block in blocks {
            // SAFETY: each from `alloc_block`, freed once.
            unsafe { free_block(block) };
        }
        // The cache holds at most CACHED of them; the others went back to
        // the allocator (this test checks the count).
        let kept = cache::CACHE.with(|cache| {
            let mut n = 0;
            let mut held = Vec::new();
            while let Some(block) = cache.pop() {
                n += 1;
                held.push(block);
            }
            for block in held {
                cache.push(block);
            }
            n
        });
        assert_eq!(kept, CACHED);
    }

    #[test]
    fn blocks_move_between_threads_with_their_jobs() {
        /// The block itself crosses (its provenance with it, not an integer).
        struct Block(NonNull<u8>);
        // SAFETY: a block is plain memory owned by whoever holds it.
        unsafe impl Send for Block {}
        let block = Block(alloc_block());
        let address = block.0.as_ptr() as usize;
        let freed_on = std::thread::spawn(move || {
            let block = block;
            // SAFETY: from `alloc_block` on the spawning thread, freed once
            // here: blocks belong to whoever holds them.
            unsafe { free_block(block.0) };
            // The other thread's cache now serves it.
            let again = alloc_block();
            let same = again.as_ptr() as usize == address;
            // SAFETY: as above.
            unsafe { free_block(again) };
            same
        })
        .join()
        .expect("thread");
        assert!(freed_on);
    }
}
