//! The processor's time-stamp counter, the one clock a benchmark can trust under QEMU.
//!
//! Under `-icount shift=0` QEMU advances the TSC by one per guest instruction, so the difference of
//! two readings is an exact, repeatable instruction count; on real hardware or without icount it
//! is an ordinary cycle count. seL4 5.0 leaves `CR4.TSD` clear, so user threads may read it.

/// Reads the time-stamp counter (`rdtsc`).
///
/// `rdtsc` is not serializing: a reading may be taken before earlier instructions retire. Under
/// QEMU TCG instructions retire in order, so the readings are exact there.
///
/// The reading is a compiler barrier too: no memory access moves across it, so an interval holds
/// what the source puts between its two readings (the compiler would otherwise hoist loads of
/// what follows a reading above it, into the interval).
#[inline(always)]
pub fn timestamp() -> u64 {
    use core::sync::atomic::{compiler_fence, Ordering};
    compiler_fence(Ordering::SeqCst);
    // SAFETY: `rdtsc` reads a counter into edx:eax and touches no memory; seL4 leaves CR4.TSD
    // clear, so it cannot fault in user mode.
    let stamp = unsafe { core::arch::x86_64::_rdtsc() };
    compiler_fence(Ordering::SeqCst);
    stamp
}
