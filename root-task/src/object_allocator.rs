//! Kernel objects from the boot info's non-device untyped memory, and a frame pool that
//! retypes frames in batches.
//!
//! The allocator mirrors each untyped's free index the way the kernel moves it (aligned up to
//! the object size, then advanced), so it can choose an untyped with room without asking: one
//! already cleared, else the smallest fresh one that fits, since seL4 clears an untyped whole on
//! its first retype. Its estimate never undercounts use; when the kernel still says
//! `NotEnoughMemory` the untyped is written off and the next one tried.

use sel4::{init, CPtr, Frame, Object, ObjectType, SlotRange, UntypedInfo};

use crate::cspace::SlotAllocator;

/// More than the kernel's `CONFIG_MAX_NUM_BOOTINFO_UNTYPED_CAPS`.
const MAX_UNTYPED: usize = 256;

/// Why an allocation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocationError {
    /// The root CNode is full.
    OutOfSlots,
    /// No untyped has room.
    OutOfMemory,
    /// The kernel refused the retype for another reason.
    Kernel(sel4::Error),
}

#[derive(Clone, Copy, Debug)]
struct UntypedRecord {
    info: UntypedInfo,
    /// Bytes from the start that the kernel may have used.
    watermark: u64,
}

/// Creates kernel objects in non-device untyped memory.
#[derive(Debug)]
pub struct ObjectAllocator {
    untyped: [Option<UntypedRecord>; MAX_UNTYPED],
    count: usize,
    /// Bytes handed out as objects.
    allocated: u64,
    /// The next retype's untyped must be fresh and at least this big ([`Self::clear_ahead`]).
    clear_ahead: u64,
    /// The untyped of the last retype (an index; `u32` keeps the allocator, and the platform that
    /// holds it, the size they were: `Option<usize>` measured 4 instructions more in every fault
    /// class's median, a layout effect).
    last: Option<u32>,
}

impl ObjectAllocator {
    /// Uses the non-device untypeds of `list` (device memory is left alone).
    pub fn new(list: impl Iterator<Item = UntypedInfo>) -> ObjectAllocator {
        let mut allocator = ObjectAllocator {
            untyped: [None; MAX_UNTYPED],
            count: 0,
            allocated: 0,
            clear_ahead: 0,
            last: None,
        };
        for info in list.filter(|info| !info.is_device).take(MAX_UNTYPED) {
            allocator.untyped[allocator.count] = Some(UntypedRecord { info, watermark: 0 });
            allocator.count += 1;
        }
        allocator
    }

    /// Number of untypeds in use.
    pub fn untyped_count(&self) -> usize {
        self.count
    }

    /// Bytes handed out so far.
    pub fn allocated_bytes(&self) -> u64 {
        self.allocated
    }

    /// Makes the next retype take a fresh untyped of at least `bytes` (the smallest), so that seL4
    /// clears all of it then (at boot) rather than piecemeal on the objects after it (a client's
    /// chunk, the first frame refills). When no fresh untyped is that big, the choice is as usual.
    pub fn clear_ahead(&mut self, bytes: u64) {
        self.clear_ahead = bytes;
        self.last = None;
    }

    /// Index of the untyped for `count` objects of 2^`size_bits` bytes. seL4 hands out boot
    /// untypeds as used up and so clears an untyped whole on its first retype (`resetUntypedCap` in
    /// 5.0's `src/object/untyped.c`), never again while objects of it live: memory already cleared
    /// costs nothing, a fresh untyped its whole size. So, of the untypeds with room: the last one
    /// retyped from (cleared, and the common case, the pool's next refill, without a scan), else
    /// the one whose retype clears least, then the one left with least room (best fit), then the
    /// first.
    fn choose(&self, size_bits: u8, count: u64) -> Option<usize> {
        let object_size = 1u64 << size_bits;
        let bytes = object_size.checked_mul(count)?;
        let room_left = |index: usize| {
            let record = self.untyped[index].as_ref()?;
            let end = record.watermark.next_multiple_of(object_size).checked_add(bytes)?;
            Some((record, record.info.size().checked_sub(end)?))
        };
        if let Some(last) = self.last.map(|last| last as usize).filter(|&last| room_left(last).is_some()) {
            return Some(last);
        }
        let candidates = (0..self.count).filter_map(|index| {
            let (record, room) = room_left(index)?;
            let fresh = record.watermark == 0;
            let cleared = if fresh { record.info.size() } else { 0 };
            let ahead = self.clear_ahead > 0 && fresh && record.info.size() >= self.clear_ahead;
            Some((!ahead, cleared, room, index))
        });
        candidates.min().map(|(_, _, _, index)| index)
    }

    fn commit(&mut self, index: usize, size_bits: u8, count: u64) {
        if let Some(record) = self.untyped[index].as_mut() {
            let object_size = 1u64 << size_bits;
            record.watermark = record.watermark.next_multiple_of(object_size) + object_size * count;
            self.allocated += object_size * count;
            self.clear_ahead = 0;
            self.last = Some(index as u32); // index < MAX_UNTYPED
        }
    }

    fn write_off(&mut self, index: usize) {
        if let Some(record) = self.untyped[index].as_mut() {
            record.watermark = record.info.size();
        }
    }

    /// Retypes `count` objects of `object_type` (2^`size_bits` bytes each) into `slots`.
    pub fn retype_into(
        &mut self,
        object_type: ObjectType,
        size_bits: u8,
        slots: SlotRange,
    ) -> Result<UntypedInfo, AllocationError> {
        let count = slots.len();
        loop {
            let index = self.choose(size_bits, count).ok_or(AllocationError::OutOfMemory)?;
            let Some(record) = self.untyped[index] else {
                return Err(AllocationError::OutOfMemory);
            };
            // Depth 0: the root CNode itself is the destination, slots.start the offset.
            match record.info.cap.retype(object_type, size_bits, init::CNODE, 0, 0, slots.start, count) {
                Ok(()) => {
                    self.commit(index, size_bits, count);
                    return Ok(record.info);
                }
                Err(sel4::Error::NotEnoughMemory { .. }) => self.write_off(index),
                Err(error) => return Err(AllocationError::Kernel(error)),
            }
        }
    }

    /// `count` objects of type `T` in fresh consecutive slots.
    pub fn allocate_batch<T: Object>(
        &mut self,
        slots: &mut SlotAllocator,
        count: u64,
    ) -> Result<SlotRange, AllocationError> {
        let range = slots.allocate_range(count).ok_or(AllocationError::OutOfSlots)?;
        self.retype_into(T::TYPE, T::SIZE_BITS, range)?;
        Ok(range)
    }

    /// One object of type `T` in a fresh slot, with the untyped it came from.
    pub fn allocate<T: Object>(
        &mut self,
        slots: &mut SlotAllocator,
    ) -> Result<(T, UntypedInfo), AllocationError> {
        let slot = slots.allocate().ok_or(AllocationError::OutOfSlots)?;
        match self.retype_into(T::TYPE, T::SIZE_BITS, SlotRange { start: slot.bits(), end: slot.bits() + 1 })
        {
            Ok(untyped) => Ok((T::from_cptr(slot), untyped)),
            Err(error) => {
                slots.free(slot);
                Err(error)
            }
        }
    }
}

/// Frames retyped in batches of this many.
pub const FRAME_BATCH: u64 = 16;
const FREE_FRAMES_CAPACITY: usize = 256;

/// 4 KiB frames, retyped [`FRAME_BATCH`] at a time, with a free list for reuse.
#[derive(Debug)]
pub struct FramePool {
    batch: SlotRange,
    free: [u64; FREE_FRAMES_CAPACITY],
    free_count: usize,
}

impl Default for FramePool {
    fn default() -> Self {
        Self::new()
    }
}

impl FramePool {
    /// An empty pool.
    pub const fn new() -> FramePool {
        FramePool { batch: SlotRange { start: 0, end: 0 }, free: [0; FREE_FRAMES_CAPACITY], free_count: 0 }
    }

    /// A frame: a freed one, else the next of the current batch, else a new batch.
    pub fn allocate(
        &mut self,
        objects: &mut ObjectAllocator,
        slots: &mut SlotAllocator,
    ) -> Result<Frame, AllocationError> {
        if self.free_count > 0 {
            self.free_count -= 1;
            return Ok(Frame::from_cptr(CPtr::new(self.free[self.free_count])));
        }
        if self.batch.is_empty() {
            self.batch = objects.allocate_batch::<Frame>(slots, FRAME_BATCH)?;
        }
        let frame = Frame::new(self.batch.start);
        self.batch.start += 1;
        Ok(frame)
    }

    /// Returns an unmapped frame. Its contents are not cleared. Returns `false` (and keeps
    /// nothing) when the free list is full.
    pub fn free(&mut self, frame: Frame) -> bool {
        if self.free_count == FREE_FRAMES_CAPACITY {
            return false;
        }
        self.free[self.free_count] = frame.bits();
        self.free_count += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sel4::Untyped;

    fn untyped(slot: u64, size_bits: u8, is_device: bool) -> UntypedInfo {
        UntypedInfo { cap: Untyped::new(slot), paddr: slot << 20, size_bits, is_device }
    }

    #[test]
    fn skips_device_memory_and_full_untypeds() {
        let list = [untyped(10, 12, false), untyped(11, 20, true), untyped(12, 16, false)];
        let mut objects = ObjectAllocator::new(list.into_iter());
        assert_eq!(objects.untyped_count(), 2);
        // A 4 KiB frame fits the 4 KiB untyped exactly, once.
        assert_eq!(objects.choose(12, 1), Some(0));
        objects.commit(0, 12, 1);
        assert_eq!(objects.choose(12, 1), Some(1));
        // 16 frames need 64 KiB: the 64 KiB untyped.
        assert_eq!(objects.choose(12, 16), Some(1));
        assert_eq!(objects.choose(12, 17), None);
    }

    #[test]
    fn mirrors_kernel_alignment() {
        let mut objects = ObjectAllocator::new([untyped(10, 13, false)].into_iter());
        objects.commit(0, 4, 1); // an endpoint: watermark 16
                                 // A 4 KiB frame aligns up to 4096, so one more frame fits, not two.
        assert_eq!(objects.choose(12, 1), Some(0));
        assert_eq!(objects.choose(12, 2), None);
        objects.commit(0, 12, 1);
        assert_eq!(objects.allocated_bytes(), 16 + 4096);
        objects.write_off(0);
        assert_eq!(objects.choose(4, 1), None);
    }

    /// Bytes seL4 clears for what `objects` has retyped: every untyped touched, whole.
    fn cleared_bytes(objects: &ObjectAllocator) -> u64 {
        objects.untyped[..objects.count]
            .iter()
            .flatten()
            .filter(|r| r.watermark > 0)
            .map(|r| r.info.size())
            .sum()
    }

    #[test]
    fn prefers_cleared_memory_then_the_smallest_fresh_untyped() {
        // Boot order, big before small.
        let list =
            [untyped(10, 25, false), untyped(11, 20, false), untyped(12, 21, false), untyped(13, 20, false)];
        let mut objects = ObjectAllocator::new(list.into_iter());
        // 256 frames (1 MiB): the first 1 MiB untyped, not the 32 MiB one before it.
        assert_eq!(objects.choose(12, 256), Some(1));
        objects.commit(1, 12, 256);
        // Then the other 1 MiB one, before the 2 MiB one; ties go to the first.
        assert_eq!(objects.choose(12, 256), Some(3));
        objects.commit(3, 12, 128);
        objects.commit(0, 12, 1);
        // The last untyped retyped from while it has room, though another cleared one has less.
        assert_eq!(objects.choose(12, 1), Some(0));
        objects.commit(2, 12, 512);
        // The last one is full: of the cleared ones, the one left with least room (best fit),
        // not a fresh one.
        assert_eq!(objects.choose(12, 1), Some(3));
        assert_eq!(objects.choose(12, 200), Some(0));
        assert_eq!(cleared_bytes(&objects), (1 << 25) + (1 << 20) * 2 + (1 << 21));
    }

    #[test]
    fn clears_ahead_once_then_fills_what_it_cleared() {
        let list = [untyped(10, 12, false), untyped(11, 21, false), untyped(12, 20, false)];
        let mut objects = ObjectAllocator::new(list.into_iter());
        objects.clear_ahead(1 << 20);
        // An endpoint: the smallest fresh untyped of at least 1 MiB, not the 4 KiB one.
        assert_eq!(objects.choose(4, 1), Some(2));
        objects.commit(2, 4, 1);
        // After that retype, the usual choice: the memory already cleared.
        assert_eq!(objects.choose(4, 1), Some(2));
        assert_eq!(objects.choose(12, 255), Some(2));
        // Nothing fresh is big enough: the usual choice.
        objects.clear_ahead(1 << 22);
        assert_eq!(objects.choose(12, 1), Some(2));
    }

    /// The pool's first 16 MiB in 1 MiB retypes from the boot memory map of a 512 MiB QEMU guest with
    /// the root CNode at 2^18 slots (its untyped list in boot order), as eager loading retypes them.
    #[test]
    fn the_pool_clears_little_more_than_it_uses() {
        let bits = [
            20, 21, 21, 20, 16, 13, 12, 25, 26, 27, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 12, 14, 15,
            16, 18, 21, 21, 20, 19, 18, 17, 16, 12,
        ];
        let list = bits.iter().enumerate().map(|(index, &bits)| untyped(10 + index as u64, bits, false));
        let mut objects = ObjectAllocator::new(list);
        for _ in 0..16 {
            let index = objects.choose(12, 256).unwrap();
            objects.commit(index, 12, 256);
        }
        // 18 MiB cleared for 16 MiB used (the last 2 MiB from a 4 MiB untyped); first-fit took the
        // untypeds in boot order and cleared 38 MiB, a 32 MiB one for 11 MiB of it.
        assert_eq!(cleared_bytes(&objects), 18 << 20);
    }
}
