//! Argument slots: where `FuncPool::invoke` puts an argument, so that the
//! queues carry only a pointer to it and an invocation allocates nothing once
//! the pool is warm.
//!
//! Slots live in chunks that double in size (64, 128, 256, ... slots) and are
//! never freed before the pool is: a slot's address is stable, so a queued
//! job can point at it. Free slots form a lock-free stack (Treiber) whose head
//! carries a tag against ABA: `(tag << 32) | (index + 1)`, 0 meaning empty.
//! Taking a slot is one CAS; giving it back is one CAS. Growing (only when
//! every slot is in use) takes a mutex and allocates one chunk.

use std::cell::UnsafeCell;
use std::mem::{self, MaybeUninit};
use std::ptr::{self, NonNull};

use crossbeam_utils::CachePadded;

use crate::scheduler::{ptr_of, JobData, JobKind, JobOps, JobRef};
use crate::sync::{lock, AtomicPtr, AtomicU32, AtomicU64, Mutex, Ordering};

/// Slots in the first chunk; chunk `k` has `FIRST_CHUNK << k`.
const FIRST_CHUNK: usize = 64;
/// Chunks at most: 64 * (2^26 - 1) slots, more than a `u32` index needs.
const CHUNKS: usize = 26;

/// Runs one argument: `(body, arg)`, where `body` is what `ArgSlots::new` was given.
pub(crate) type RunFn<A> = unsafe fn(*const (), A);

/// One argument's place.
struct Slot<A> {
    /// The next free slot's index + 1 while this one is free.
    next: AtomicU32,
    index: u32,
    /// The slots this one belongs to (for the job to give it back).
    owner: *const ArgSlots<A>,
    value: UnsafeCell<MaybeUninit<A>>,
}

/// A `FuncPool`'s argument slots and the function that runs an argument.
pub(crate) struct ArgSlots<A> {
    chunks: [AtomicPtr<Slot<A>>; CHUNKS],
    /// The free stack's head: `(tag << 32) | (index + 1)`.
    free: CachePadded<AtomicU64>,
    /// Chunks allocated so far (only growers, under this lock, change it).
    grown: Mutex<usize>,
    /// What runs an argument, and the data it needs (the `FuncPool`'s body,
    /// kept alive by whoever keeps these slots alive).
    run: RunFn<A>,
    body: *const (),
}

// SAFETY: the raw pointers are to the slots' own chunks and to the body,
// which the owner keeps alive as long as these slots; arguments cross threads
// (hence `A: Send`), each slot's value is touched by one thread at a time (the
// one that took the slot from the free stack, then the one that runs the job,
// ordered by the queue's Release/Acquire hand-over).
unsafe impl<A: Send> Send for ArgSlots<A> {}
// SAFETY: as above; shared use goes through atomics and the grow mutex.
unsafe impl<A: Send> Sync for ArgSlots<A> {}

/// Chunk `k` and the offset in it of slot `index`.
fn locate(index: usize) -> (usize, usize) {
    let block = index / FIRST_CHUNK + 1;
    let chunk = (usize::BITS - 1 - block.leading_zeros()) as usize;
    let first = FIRST_CHUNK * ((1 << chunk) - 1);
    (chunk, index - first)
}

impl<A: Send> ArgSlots<A> {
    /// Empty slots that run arguments with `run(body, arg)`.
    pub(crate) fn new(run: RunFn<A>, body: *const ()) -> Self {
        ArgSlots {
            chunks: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            free: CachePadded::new(AtomicU64::new(0)),
            grown: Mutex::new(0),
            run,
            body,
        }
    }

    fn slot(&self, index: usize) -> &Slot<A> {
        let (chunk, offset) = locate(index);
        // Acquire pairs with the Release store in `grow`: the chunk's slots
        // are initialised before anyone sees the pointer.
        let base = self.chunks[chunk].load(Ordering::Acquire);
        debug_assert!(!base.is_null(), "slot index in a chunk not yet allocated");
        // SAFETY: `index` came from the free stack, so its chunk exists (it
        // was pushed after the chunk was published) and has `FIRST_CHUNK <<
        // chunk` slots; chunks are freed only when `self` is dropped.
        unsafe { &*base.add(offset) }
    }

    /// Puts `arg` in a free slot and makes the job that runs it.
    ///
    /// Must be called on slots that live as long as the job may run (the
    /// owner keeps them in an `Arc` the pool's hooks hold).
    pub(crate) fn job_for(&self, arg: A) -> JobRef {
        if InlineArg::<A>::FITS {
            return InlineArg::job(self, arg);
        }
        let slot = self.take_slot();
        // SAFETY: the slot came off the free stack: nobody else touches its
        // value until the job made here is run or discarded.
        unsafe { (*slot.value.get()).write(arg) };
        // SAFETY: `execute_slot`/`discard_slot` take the value out once and
        // give the slot back; the slot outlives the job (see above); `A:
        // Send`.
        unsafe { JobRef::from_raw(NonNull::from(slot).cast(), &SlotOps::<A>::OPS) }
    }

    /// Takes the argument back out of a job made by [`ArgSlots::job_for`]
    /// on these slots, without running it (`shutdown_now`).
    ///
    /// # Safety
    /// `job` must come from `self.job_for` and not have run or been
    /// discarded; it must not be used afterwards.
    pub(crate) unsafe fn take_back(&self, job: JobRef) -> A {
        // Which of the two forms `job_for` made follows from the type alone.
        // (Not from the job's table: a constant's address is not unique, so
        // `&InlineArg::<A>::OPS` here may differ from the one in `job`.)
        if InlineArg::<A>::FITS {
            // SAFETY: made by `InlineArg::job` (`FITS`), not run (caller).
            let this = unsafe { InlineArg::<A>::take(job.into_data()) };
            debug_assert!(ptr::eq(this.owner, self));
            return this.arg;
        }
        // SAFETY: a `FuncPool` job, made by `job_for` with `from_raw`.
        let slot = unsafe { job.data() }.cast::<Slot<A>>();
        // SAFETY: forwarded from the caller: the slot holds an argument.
        let slot = unsafe { slot.as_ref() };
        debug_assert!(ptr::eq(slot.owner, self));
        // SAFETY: the value was written by `job_for` and is read once.
        let arg = unsafe { (*slot.value.get()).assume_init_read() };
        self.give_back(slot);
        arg
    }

    #[inline]
    fn take_slot(&self) -> &Slot<A> {
        // Acquire pairs with the Release in `give_back`/`grow`: the popped
        // slot's `next` and its emptied value are visible.
        let mut head = self.free.load(Ordering::Acquire);
        loop {
            let top = head as u32;
            if top == 0 {
                return self.grow();
            }
            let slot = self.slot(top as usize - 1);
            // Relaxed: if another thread popped this slot meanwhile, the tag
            // changed and the CAS below fails, whatever we read here.
            let next = slot.next.load(Ordering::Relaxed);
            let tagged = ((head >> 32).wrapping_add(1) << 32) | u64::from(next);
            match self
                .free
                .compare_exchange_weak(head, tagged, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => return slot,
                Err(current) => head = current,
            }
        }
    }

    /// Returns a slot (its value already moved out) to the free stack.
    #[inline]
    fn give_back(&self, slot: &Slot<A>) {
        self.push_chain(slot, slot);
    }

    /// Pushes the chain `first ..= last` (already linked through `next`,
    /// but for `last`'s) onto the free stack: the one Treiber push.
    #[inline]
    fn push_chain(&self, first: &Slot<A>, last: &Slot<A>) {
        let mut head = self.free.load(Ordering::Relaxed);
        loop {
            // Relaxed: published by the Release CAS below.
            last.next.store(head as u32, Ordering::Relaxed);
            let tagged = ((head >> 32).wrapping_add(1) << 32) | u64::from(first.index + 1);
            // Release: the next taker sees `next` and that the value was
            // moved out (pairs with the Acquire in `take_slot`).
            match self
                .free
                .compare_exchange_weak(head, tagged, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(current) => head = current,
            }
        }
    }

    /// Every slot is in use: allocate the next chunk, keep its first slot,
    /// push the rest.
    #[cold]
    #[inline(never)]
    fn grow(&self) -> &Slot<A> {
        let mut grown = lock(&self.grown);
        // Someone may have grown (or given slots back) while we waited.
        // Relaxed: a hint; `take_slot` re-reads with Acquire.
        if self.free.load(Ordering::Relaxed) as u32 != 0 {
            drop(grown);
            return self.take_slot();
        }
        let chunk = *grown;
        assert!(
            chunk < CHUNKS,
            "stealpool: FuncPool argument slots exhausted (over 4 billion queued)"
        );
        let len = FIRST_CHUNK << chunk;
        let first = FIRST_CHUNK * ((1 << chunk) - 1);
        let slots: Box<[Slot<A>]> = (0..len)
            .map(|offset| {
                let index = (first + offset) as u32;
                Slot {
                    // Chained: offset k's next is offset k+1 (index + 1 + 1);
                    // the last one's is patched when pushed.
                    next: AtomicU32::new(index + 2),
                    index,
                    owner: self,
                    value: UnsafeCell::new(MaybeUninit::uninit()),
                }
            })
            .collect();
        let base = Box::into_raw(slots) as *mut Slot<A>;
        // Release: the slots' contents before the pointer (see `slot`).
        self.chunks[chunk].store(base, Ordering::Release);
        *grown = chunk + 1;
        drop(grown);
        // SAFETY: just allocated with `len >= 64` slots.
        let (mine, rest_first, rest_last) = unsafe { (&*base, &*base.add(1), &*base.add(len - 1)) };
        // Push slots 1..len as one chain.
        self.push_chain(rest_first, rest_last);
        mine
    }
}

impl<A> Drop for ArgSlots<A> {
    fn drop(&mut self) {
        let grown = *lock(&self.grown);
        for chunk in 0..grown {
            let base = self.chunks[chunk].load(Ordering::Relaxed);
            let len = FIRST_CHUNK << chunk;
            // SAFETY: allocated in `grow` as a boxed slice of `len` slots and
            // freed only here. Values still inside would be arguments of jobs
            // never run nor discarded, which the pool does not allow (every
            // accepted job runs or is handed back before the pool is
            // dropped), so no value needs dropping.
            drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(base, len)) });
        }
    }
}

/// An argument small enough to travel in the job itself, beside a pointer
/// to its slots' owner (which knows the function): no slot, no shared free
/// stack, no allocation. A `u64` or a reference fits.
#[repr(C)]
struct InlineArg<A> {
    owner: *const ArgSlots<A>,
    arg: A,
}

impl<A: Send> InlineArg<A> {
    /// Whether it fits in a job's data (size and alignment).
    const FITS: bool =
        mem::size_of::<Self>() <= mem::size_of::<JobData>() && mem::align_of::<Self>() <= mem::align_of::<JobData>();
    const OPS: JobOps = JobOps {
        kind: JobKind::Task,
        execute: Self::execute,
        discard: Self::discard,
        withdraw: None,
        start: None,
    };

    fn job(owner: &ArgSlots<A>, arg: A) -> JobRef {
        let mut data = JobData::uninit();
        // SAFETY: `Self` fits in the storage, size and alignment (`FITS`).
        unsafe { ptr::write(data.as_mut_ptr().cast::<Self>(), InlineArg { owner, arg }) };
        // SAFETY: `execute`/`discard` read the value written here once; the
        // owner outlives the job (as for slots); `A: Send`.
        unsafe { JobRef::from_parts(data, &Self::OPS) }
    }

    /// Moves the value out of the data.
    ///
    /// # Safety
    /// `data` was made by [`InlineArg::job`] and is consumed once.
    unsafe fn take(data: JobData) -> Self {
        // SAFETY: written as a `Self` by `job` (caller).
        unsafe { ptr::read(data.as_ptr().cast::<Self>()) }
    }

    /// Runs the argument.
    ///
    /// # Safety
    /// As for [`InlineArg::take`]; the owner is alive.
    unsafe fn execute(data: JobData) {
        // SAFETY: forwarded from the caller.
        let this = unsafe { Self::take(data) };
        // SAFETY: the owner outlives its jobs.
        let owner = unsafe { &*this.owner };
        // SAFETY: `run` and `body` were given together to `ArgSlots::new` by
        // the owner, which keeps `body` alive as long as the slots.
        unsafe { (owner.run)(owner.body, this.arg) }
    }

    /// Drops the argument unrun.
    ///
    /// # Safety
    /// As for [`InlineArg::take`].
    unsafe fn discard(data: JobData) {
        // SAFETY: forwarded from the caller.
        drop(unsafe { Self::take(data) }.arg);
    }
}

/// The job table of a slot holding an `A`.
struct SlotOps<A>(std::marker::PhantomData<A>);

impl<A: Send> SlotOps<A> {
    const OPS: JobOps = JobOps {
        kind: JobKind::Task,
        execute: execute_slot::<A>,
        discard: discard_slot::<A>,
        withdraw: None,
        start: None,
    };
}

/// The job function: take the argument out, free the slot, run it.
///
/// # Safety
/// `data` is a slot handed out by `job_for` of an `ArgSlots<A>` that is
/// still alive, holding an argument not yet taken (each job is consumed
/// once: run or discarded).
unsafe fn execute_slot<A: Send>(data: JobData) {
    // SAFETY: `data` holds a slot made by `job_for` (see `JobRef::from_raw`'s
    // contract there) whose owner outlives the job.
    let slot = unsafe { ptr_of(&data).cast::<Slot<A>>().as_ref() };
    // SAFETY: the owner outlives its slots' jobs.
    let owner = unsafe { &*slot.owner };
    // SAFETY: written by `job_for`, read exactly once (this job runs once).
    let arg = unsafe { (*slot.value.get()).assume_init_read() };
    owner.give_back(slot);
    // SAFETY: `run` and `body` were given together to `ArgSlots::new` by
    // the owner, which keeps `body` alive as long as the slots.
    unsafe { (owner.run)(owner.body, arg) }
}

/// The discard function: drop the argument, free the slot.
///
/// # Safety
/// As for [`execute_slot`].
unsafe fn discard_slot<A: Send>(data: JobData) {
    // SAFETY: as in `execute_slot`.
    let slot = unsafe { ptr_of(&data).cast::<Slot<A>>().as_ref() };
    // SAFETY: as in `execute_slot`.
    let owner = unsafe { &*slot.owner };
    // SAFETY: as in `execute_slot`.
    let arg = unsafe { (*slot.value.get()).assume_init_read() };
    owner.give_back(slot);
    drop(arg);
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn locate_maps_indices_to_doubling_chunks() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(63), (0, 63));
        assert_eq!(locate(64), (1, 0));
        assert_eq!(locate(191), (1, 127));
        assert_eq!(locate(192), (2, 0));
        assert_eq!(locate(192 + 255), (2, 255));
        assert_eq!(locate(448), (3, 0));
    }

    /// An argument too wide to travel in the job: it takes a slot.
    type Wide = [u64; 2];

    // A `u64` travels in the job, a `Wide` does not.
    const _: () = assert!(!InlineArg::<Wide>::FITS && InlineArg::<u64>::FITS);

    /// The test's run function (adds the first half).
    ///
    /// # Safety
    /// `body` points to a live `AtomicU64`.
    unsafe fn add(body: *const (), arg: Wide) {
        // SAFETY: the tests pass a pointer to a live AtomicU64.
        let total = unsafe { &*(body as *const std::sync::atomic::AtomicU64) };
        total.fetch_add(arg[0], std::sync::atomic::Ordering::Relaxed);
    }

    /// As `add`, for a `u64`, which travels in the job itself.
    ///
    /// # Safety
    /// As for `add`.
    unsafe fn add_small(body: *const (), arg: u64) {
        // SAFETY: as in `add`.
        unsafe { add(body, [arg, 0]) }
    }

    #[test]
    fn small_arguments_travel_in_the_job_and_come_back_once() {
        let total = std::sync::atomic::AtomicU64::new(0);
        let slots = ArgSlots::<u64>::new(add_small, &total as *const _ as *const ());
        let jobs: Vec<JobRef> = (1..=100).map(|i| slots.job_for(i)).collect();
        // No slot was taken, so no chunk was ever allocated.
        assert_eq!(*lock(&slots.grown), 0);
        let mut back = 0;
        for (i, job) in jobs.into_iter().enumerate() {
            if i % 2 == 0 {
                // SAFETY: each job runs once.
                unsafe { job.execute() };
            } else {
                // SAFETY: made by `slots.job_for`, not run.
                back += unsafe { slots.take_back(job) };
            }
        }
        let ran = total.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(
            (ran, back),
            ((1..=100).step_by(2).sum::<u64>(), (2..=100).step_by(2).sum::<u64>())
        );
    }

    #[test]
    fn slots_are_reused_and_every_argument_runs_or_comes_back_once() {
        let total = std::sync::atomic::AtomicU64::new(0);
        let slots = ArgSlots::<Wide>::new(add, &total as *const _ as *const ());
        // 200 at once: three chunks (64 + 128 + 256).
        let jobs: Vec<JobRef> = (1..=200).map(|i| slots.job_for([i, 0])).collect();
        assert_eq!(*lock(&slots.grown), 3);
        let mut back = 0;
        for (i, job) in jobs.into_iter().enumerate() {
            if i % 2 == 0 {
                // SAFETY: each job runs once.
                unsafe { job.execute() };
            } else {
                // SAFETY: made by `slots.job_for`, not run.
                back += unsafe { slots.take_back(job) }[0];
            }
        }
        let ran = total.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(ran + back, (1..=200).sum::<u64>());
        // All slots are free again: another 448 fit without growing.
        let jobs: Vec<JobRef> = (0..448).map(|i| slots.job_for([i, 0])).collect();
        assert_eq!(*lock(&slots.grown), 3);
        for job in jobs {
            // SAFETY: each job is discarded once.
            unsafe { job.discard() };
        }
    }

    #[test]
    fn concurrent_takers_and_givers_never_share_a_slot() {
        let total = std::sync::atomic::AtomicU64::new(0);
        let slots = ArgSlots::<Wide>::new(add, &total as *const _ as *const ());
        // Fewer rounds under Miri (an interpreter): still 4 threads
        // taking and giving slots concurrently.
        const ROUNDS: u64 = if cfg!(miri) { 16 } else { 2_000 };
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let slots = &slots;
                s.spawn(move || {
                    for round in 0..ROUNDS {
                        let jobs: Vec<JobRef> = (0..8)
                            .map(|i| slots.job_for([t * 1_000_000 + round * 8 + i, 0]))
                            .collect();
                        for job in jobs {
                            // SAFETY: each job runs once.
                            unsafe { job.execute() };
                        }
                    }
                });
            }
        });
        let expected: u64 = (0..4u64)
            .map(|t| (0..ROUNDS * 8).map(|k| t * 1_000_000 + k).sum::<u64>())
            .sum();
        assert_eq!(total.load(std::sync::atomic::Ordering::Relaxed), expected);
    }
}
