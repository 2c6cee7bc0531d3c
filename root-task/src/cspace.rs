//! Slots of the root CNode: a bump allocator over the boot info's empty range with a small
//! free list, and cap operations addressed by slot number.
//!
//! The root CNode's guard makes every CPtr resolve at depth 64 (the word size), so a slot
//! number is both its CPtr and its index at that depth.

use sel4::{init, CPtr, CapRights, SlotRange};

/// Depth at which a slot number names a slot of the root CNode.
pub const ROOT_DEPTH: u8 = sel4::abi::WORD_BITS;

/// Slots returned to the allocator and not yet handed out again.
const FREE_LIST_CAPACITY: usize = 256;

/// Hands out empty slots of the root CNode.
#[derive(Debug)]
pub struct SlotAllocator {
    next: u64,
    end: u64,
    free: [u64; FREE_LIST_CAPACITY],
    free_count: usize,
}

impl SlotAllocator {
    /// Allocates from `empty`, the boot info's empty slot range.
    pub fn new(empty: SlotRange) -> SlotAllocator {
        SlotAllocator { next: empty.start, end: empty.end, free: [0; FREE_LIST_CAPACITY], free_count: 0 }
    }

    /// One empty slot.
    pub fn allocate(&mut self) -> Option<CPtr> {
        if self.free_count > 0 {
            self.free_count -= 1;
            return Some(CPtr::new(self.free[self.free_count]));
        }
        self.allocate_range(1).map(|range| CPtr::new(range.start))
    }

    /// `count` consecutive empty slots (a batch retype fills consecutive slots).
    pub fn allocate_range(&mut self, count: u64) -> Option<SlotRange> {
        let start = self.next;
        let end = start.checked_add(count).filter(|end| *end <= self.end)?;
        self.next = end;
        Some(SlotRange { start, end })
    }

    /// Returns an empty slot. When the free list is full the slot is dropped (leaked), which
    /// costs a slot but never hands out a slot twice.
    pub fn free(&mut self, slot: CPtr) {
        if self.free_count < FREE_LIST_CAPACITY {
            self.free[self.free_count] = slot.bits();
            self.free_count += 1;
        }
    }

    /// Slots still available.
    pub fn remaining(&self) -> u64 {
        self.end - self.next + self.free_count as u64
    }
}

/// Copies the cap in slot `source` into the empty slot `destination`, masking `rights`.
pub fn copy(destination: CPtr, source: CPtr, rights: CapRights) -> sel4::Result<()> {
    init::CNODE.copy(destination.bits(), ROOT_DEPTH, init::CNODE, source.bits(), ROOT_DEPTH, rights)
}

/// Like [`copy`], and sets the badge of an endpoint or notification cap.
pub fn mint(destination: CPtr, source: CPtr, rights: CapRights, badge: u64) -> sel4::Result<()> {
    init::CNODE.mint(destination.bits(), ROOT_DEPTH, init::CNODE, source.bits(), ROOT_DEPTH, rights, badge)
}

/// Deletes the cap in `slot`, leaving it empty.
pub fn delete(slot: CPtr) -> sel4::Result<()> {
    init::CNODE.delete(slot.bits(), ROOT_DEPTH)
}

/// Deletes every cap derived from the cap in `slot` (the cap itself stays).
pub fn revoke(slot: CPtr) -> sel4::Result<()> {
    init::CNODE.revoke(slot.bits(), ROOT_DEPTH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bumps_then_reuses_freed_slots() {
        let mut slots = SlotAllocator::new(SlotRange { start: 100, end: 105 });
        assert_eq!(slots.allocate(), Some(CPtr::new(100)));
        assert_eq!(slots.allocate_range(3), Some(SlotRange { start: 101, end: 104 }));
        assert_eq!(slots.allocate_range(2), None);
        slots.free(CPtr::new(102));
        assert_eq!(slots.remaining(), 2);
        assert_eq!(slots.allocate(), Some(CPtr::new(102)));
        assert_eq!(slots.allocate(), Some(CPtr::new(104)));
        assert_eq!(slots.allocate(), None);
    }
}
