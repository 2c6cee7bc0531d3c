//! Memory that this thread's pager maps for it on demand, handed once to safe code as a slice.
//!
//! A client of a pager gets anonymous areas (the heap of docs/app-abi.md) that are mapped on first
//! touch. Safe Rust can use such an area only as memory it owns, so [`take`] turns one into a
//! `&'static mut [MaybeUninit<u8>]`, the form safe allocators take (`linked_list_allocator`'s
//! `init_from_slice`): the one unsafe step lives here, in the binding, like the IPC buffer's.
//!
//! [`take`] takes no address from its caller, only an [`EntryArea`]: the heap area of the entry
//! registers, which only the binding's own app `_start` (the `app` feature, [`crate::runtime`])
//! makes. So the range is one the pager maps read-write for this thread and keeps apart from the
//! program's segments, stack and other areas (docs/app-abi.md), and safe code has no other way to
//! its bytes. [`take`] checks that there is one (not empty, above page 0, page aligned, ending at
//! or below 4 GiB: seL4 5.0 reports fault addresses in 32 bits, so a pager keeps every area there)
//! and hands it out once (a second call could hand out the same bytes twice).

use core::fmt;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::abi::PAGE_SIZE;

/// Areas end at or below this: seL4 5.0 reports x86_64 fault addresses in 32 bits.
pub const ADDRESS_LIMIT: u64 = 1 << 32;

/// Why an area cannot be taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AreaError {
    /// No area: base 0 or size 0.
    Empty,
    /// Base or size is not a multiple of the page size.
    Unaligned {
        /// Base address.
        base: u64,
        /// Size in bytes.
        size: u64,
    },
    /// The range ends above [`ADDRESS_LIMIT`] or wraps around.
    OutOfRange {
        /// Base address.
        base: u64,
        /// Size in bytes.
        size: u64,
    },
    /// An area was taken already in this program.
    AlreadyTaken,
}

/// The heap area of the entry registers (rsi base, 0 for none; rdx size), as only the `app`
/// feature's `_start` makes it: what [`take`] hands out. A copy names the same area, which [`take`]
/// still hands out once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryArea {
    base: u64,
    size: u64,
}

impl EntryArea {
    // Only the `app` feature's `_start` on the seL4 target (and tests) make one.
    #[cfg_attr(not(all(target_os = "none", feature = "app")), allow(dead_code))]
    pub(crate) const fn from_entry_registers(base: u64, size: u64) -> EntryArea {
        EntryArea { base, size }
    }

    /// Base address, 0 when the manifest gives no heap.
    pub const fn base(&self) -> u64 {
        self.base
    }

    /// Size in bytes.
    pub const fn size(&self) -> u64 {
        self.size
    }
}

impl fmt::Display for AreaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AreaError::Empty => f.write_str("no area (base or size 0)"),
            AreaError::Unaligned { base, size } => {
                write!(f, "area {base:#x} + {size:#x} is not page aligned")
            }
            AreaError::OutOfRange { base, size } => {
                write!(f, "area {base:#x} + {size:#x} does not end at or below 4 GiB")
            }
            AreaError::AlreadyTaken => f.write_str("an area was taken already"),
        }
    }
}

/// Set by the first successful [`take`].
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Checks the range's shape: non-empty, page aligned, below [`ADDRESS_LIMIT`].
fn check(base: u64, size: u64) -> Result<(), AreaError> {
    if base == 0 || size == 0 {
        return Err(AreaError::Empty);
    }
    let page = PAGE_SIZE as u64;
    if !base.is_multiple_of(page) || !size.is_multiple_of(page) {
        return Err(AreaError::Unaligned { base, size });
    }
    match base.checked_add(size) {
        Some(end) if end <= ADDRESS_LIMIT => Ok(()),
        _ => Err(AreaError::OutOfRange { base, size }),
    }
}

/// The heap area that this thread's pager maps for it, as memory the program owns from now on.
/// Once per program; see the module doc.
pub fn take(area: EntryArea) -> Result<&'static mut [MaybeUninit<u8>], AreaError> {
    let EntryArea { base, size } = area;
    check(base, size)?;
    if TAKEN.swap(true, Ordering::AcqRel) {
        return Err(AreaError::AlreadyTaken);
    }
    // SAFETY: `from_raw_parts_mut` needs a non-null pointer to `size` bytes valid for reads and
    // writes, one object, no other reference to them, and `size <= isize::MAX`. The range is
    // non-null, below 4 GiB (so `size` fits) and the heap area of the entry registers, which only
    // the binding's `_start` makes an `EntryArea` of: an area the pager maps read-write for this
    // thread for as long as it lives, apart from all the program's other memory (the module doc);
    // `TAKEN` makes this the only slice `take` ever returns. `MaybeUninit<u8>` asks nothing of the
    // bytes' contents.
    Ok(unsafe { core::slice::from_raw_parts_mut(base as usize as *mut MaybeUninit<u8>, size as usize) })
}

/// Reads byte `index` of a taken area as the pager filled it, without the program having written
/// it: the read a client makes to fault a page in (a program that wrote the byte reads it as
/// usual). `None` past the area's end.
pub fn read_byte(area: &[MaybeUninit<u8>], index: usize) -> Option<u8> {
    let byte = area.get(index)?;
    // SAFETY: `read_volatile` needs a pointer valid for a one-byte read, which a reference into the
    // slice is. The byte's value was put there by the pager (every page of an area is filled,
    // zeroes or the file's bytes, before it is mapped), outside the program's view: the volatile
    // read takes it as the hardware finds it, like memory another agent writes.
    Some(unsafe { core::ptr::read_volatile(byte.as_ptr()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_range_is_no_area() {
        assert_eq!(check(0, 0x1000), Err(AreaError::Empty));
        assert_eq!(check(0x8000_0000, 0), Err(AreaError::Empty));
    }

    #[test]
    fn an_unaligned_range_is_refused() {
        assert_eq!(check(0x8000_0010, 0x1000), Err(AreaError::Unaligned { base: 0x8000_0010, size: 0x1000 }));
        assert_eq!(check(0x8000_0000, 0x1001), Err(AreaError::Unaligned { base: 0x8000_0000, size: 0x1001 }));
    }

    #[test]
    fn a_range_past_4_gib_is_refused() {
        assert_eq!(check(0xFFFF_F000, 0x1000), Ok(()));
        assert_eq!(
            check(0xFFFF_F000, 0x2000),
            Err(AreaError::OutOfRange { base: 0xFFFF_F000, size: 0x2000 })
        );
        let wraps = u64::MAX - 0xFFF;
        assert_eq!(check(wraps, 0x2000), Err(AreaError::OutOfRange { base: wraps, size: 0x2000 }));
    }

    #[test]
    fn a_bad_range_takes_nothing() {
        // An entry without a heap: no area. A refusal never reaches the one-shot flag, so the
        // program could still take its area.
        let none = EntryArea::from_entry_registers(0, 0);
        assert_eq!(take(none).map(|slice| slice.len()), Err(AreaError::Empty));
        assert!(!TAKEN.load(Ordering::Acquire));
    }
}
