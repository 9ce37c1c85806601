//! The asymmetric barrier that lets a push from inside the pool skip its
//! fence (`README.md`, "Inside pushes and the asymmetric barrier").
//!
//! The pusher's half (`light`) orders only the compiler; the sleeper's half
//! (`heavy`), on its rare path, asks the kernel to run a full memory
//! barrier on every CPU that is running a thread of this process
//! (`membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, Linux 4.14 and later).
//! A thread that is not running has passed a context switch, itself a full
//! barrier. So for every pusher, wherever it is between its push and its
//! read of the sleep word, the effect is that of a SeqCst fence there:
//! either the sleeper's re-scan sees the push, or the pusher's read sees
//! the sleeper's announcement. This is the pairing of the Linux kernel's
//! `sys_membarrier` documentation and of userspace RCU.
//!
//! Where the kernel lacks it or refuses it (an older kernel, a seccomp
//! filter, valgrind), and under Miri (no such system call), `available`
//! is false and every push keeps its fence. Under loom the heavy half is
//! modelled by the fence the sleeper already issues and the light half by
//! a SeqCst fence: the models check the decisions built on the barrier,
//! with the barrier's own guarantee taken as given.

/// Whether the heavy half is available, so pushes may use the light half.
/// Asked once per pool, when it is built; registers the process with the
/// kernel on the first call (the registration is process-wide and stays).
pub(crate) fn available() -> bool {
    imp::available()
}

/// The pusher's half: between publishing a job and reading the sleep word.
#[inline(always)]
pub(crate) fn light() {
    imp::light();
}

/// The sleeper's half: after its announcement (and its own SeqCst fence),
/// before its re-scan. Only called where [`available`] said true.
#[cold]
pub(crate) fn heavy() {
    imp::heavy();
}

#[cfg(all(any(target_os = "linux", target_os = "android"), not(miri), not(loom)))]
mod imp {
    use std::sync::atomic::{compiler_fence, AtomicU8, Ordering};

    // The commands of membarrier(2) (linux/membarrier.h).
    const CMD_QUERY: libc::c_int = 0;
    const CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
    const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

    const UNKNOWN: u8 = 0;
    const YES: u8 = 1;
    const NO: u8 = 2;

    /// The process's answer, once known. Relaxed throughout: the
    /// registration is a system call the kernel orders, and a pool reads
    /// this once, while it is built, before any of its threads exist.
    static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);

    fn membarrier(command: libc::c_int) -> libc::c_long {
        // SAFETY: membarrier takes two integer arguments and touches no
        // memory of ours; an unknown command is refused with an error.
        unsafe { libc::syscall(libc::SYS_membarrier, command, 0 as libc::c_uint, 0 as libc::c_int) }
    }

    pub(super) fn available() -> bool {
        match STATE.load(Ordering::Relaxed) {
            YES => true,
            NO => false,
            _ => {
                let commands = membarrier(CMD_QUERY);
                let ok = commands >= 0
                    && commands & libc::c_long::from(CMD_PRIVATE_EXPEDITED) != 0
                    && membarrier(CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
                // Two pools racing here both register: harmless.
                STATE.store(if ok { YES } else { NO }, Ordering::Relaxed);
                ok
            }
        }
    }

    #[inline(always)]
    pub(super) fn light() {
        // Keeps the compiler from moving the read of the sleep word above
        // the push; the processor's side is the heavy half's job.
        compiler_fence(Ordering::SeqCst);
    }

    pub(super) fn heavy() {
        // Registered (`available` said yes), so it cannot fail: a full
        // barrier on every CPU running one of our threads, then return.
        let _ = membarrier(CMD_PRIVATE_EXPEDITED);
    }
}

#[cfg(loom)]
mod imp {
    use crate::sync::{fence, Ordering};

    pub(super) fn available() -> bool {
        true
    }

    #[inline(always)]
    pub(super) fn light() {
        // The barrier's guarantee, as a model can state it: a SeqCst fence
        // at this point of the pusher (see the module's docs).
        fence(Ordering::SeqCst);
    }

    pub(super) fn heavy() {
        // The sleeper's own SeqCst fence, just before, is its half.
    }
}

#[cfg(all(not(loom), any(miri, not(any(target_os = "linux", target_os = "android")))))]
mod imp {
    pub(super) fn available() -> bool {
        false
    }

    #[inline(always)]
    pub(super) fn light() {}

    pub(super) fn heavy() {}
}
