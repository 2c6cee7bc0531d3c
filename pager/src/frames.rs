//! Frame accounting: pool frames retyped in batches, a free list, exact reference counts.
//!
//! A pool frame is counted once per mapping into a client and once per shared-pagemap entry; it goes
//! back to the free list when the count reaches zero (HelenOS `frame_free`). Image frames belong to the
//! boot image and are never freed, so they carry no count here.

use alloc::vec::Vec;

use crate::platform::{KernelError, RetypeFrames};
use crate::seed::FrameContent;
use crate::{ClientId, LargeFrame, PoolFrame};

#[derive(Clone, Copy, Debug)]
struct FrameRecord {
    references: u32,
    /// The client charged for the frame; `None` once that client has been removed.
    owner: Option<ClientId>,
    content: FrameContent,
}

/// The most objects one `Untyped_Retype` makes (seL4's `CONFIG_RETYPE_FAN_OUT_LIMIT`, 256 in
/// `kernel/autoconf.h` and in `sim`'s model).
pub const LARGEST_RETYPE: u32 = 256;

/// Why a frame could not be had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocationError {
    /// Every frame the image allows is in use.
    PoolExhausted { capacity: u32 },
    /// The kernel had no untyped memory for another frame.
    Kernel(KernelError),
}

/// The pool of frames the pager hands out.
///
/// Free frames come in two kinds. *Fresh* ones, retyped and never handed out, are all zeroes: seL4
/// clears untyped memory before it makes objects from it, so a zero fill can skip them. They are the
/// numbers from `fresh` to the end of `records`, handed out in order. *Recycled* ones held a client's
/// bytes and sit on the `free` stack. A zero fill takes a fresh frame first, a copy a recycled one
/// (it overwrites the whole page anyway), so recycling never costs a fill that was not needed.
#[derive(Debug)]
pub struct FrameTable {
    records: Vec<Option<FrameRecord>>,
    free: Vec<u32>,
    fresh: u32,
    capacity: u32,
    batch: u32,
    in_use: u32,
    /// Frames the pager keeps for itself for good (the shared zero frame): in use, never freed,
    /// counted apart from [`FrameCounts::in_use`].
    pinned: u32,
}

/// A frame just taken from the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allocation {
    pub frame: PoolFrame,
    /// The frame is fresh from the kernel: it holds only zeroes, and its own cap maps it nowhere
    /// (not even into the window, which [`crate::platform::FrameWindow::is_windowed`] tells of
    /// a recycled frame).
    pub zeroed: bool,
}

/// A snapshot of the frame pool's counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameCounts {
    /// Frames retyped from untyped so far.
    pub created: u32,
    /// Frames holding at least one reference.
    pub in_use: u32,
    /// Frames retyped and waiting on the free list.
    pub free: u32,
    /// The most frames the pool may create.
    pub capacity: u32,
    /// Frames the pager keeps for good, not in `in_use` (the shared zero frame, once made).
    pub pinned: u32,
}

impl FrameTable {
    /// A pool of at most `capacity` frames, retyped `batch` at a time.
    pub fn new(capacity: u32, batch: u32) -> Self {
        Self {
            records: Vec::new(),
            free: Vec::new(),
            fresh: 0,
            capacity,
            batch: batch.max(1),
            in_use: 0,
            pinned: 0,
        }
    }

    /// Takes a frame with one reference, charged to `owner`, to be filled with `content`.
    // The common case inline, the rest out of line: a zero fill (or mixed) takes a fresh frame while
    // there is one, and so does a copy while no recycled frame waits, which is a compare or two and a
    // store, not a call that pops a recycled frame only to push it back.
    #[inline(always)]
    pub fn allocate(
        &mut self,
        kernel: &mut impl RetypeFrames,
        owner: ClientId,
        content: FrameContent,
    ) -> Result<Allocation, AllocationError> {
        let fresh = self.fresh as usize;
        if fresh < self.records.len() && (content != FrameContent::Copy || self.free.is_empty()) {
            self.fresh += 1;
            self.records[fresh] = Some(FrameRecord { references: 1, owner: Some(owner), content });
            self.in_use += 1;
            return Ok(Allocation { frame: PoolFrame(fresh as u32), zeroed: true });
        }
        self.allocate_other(kernel, owner, content)
    }

    /// [`FrameTable::allocate`] past its common case: a copy (a recycled frame first), or no fresh
    /// frame left (a recycled one, or a refill).
    #[inline(never)]
    fn allocate_other(
        &mut self,
        kernel: &mut impl RetypeFrames,
        owner: ClientId,
        content: FrameContent,
    ) -> Result<Allocation, AllocationError> {
        let fresh_left = self.fresh < self.records.len() as u32;
        let allocation = match (content, self.free.pop()) {
            (FrameContent::Copy, Some(index)) => Self::recycled(index),
            (_, recycled) if fresh_left => {
                self.free.extend(recycled);
                self.take_fresh()
            }
            (_, Some(index)) => Self::recycled(index),
            (_, None) => {
                self.refill(kernel)?;
                self.take_fresh()
            }
        };
        self.records[allocation.frame.0 as usize] =
            Some(FrameRecord { references: 1, owner: Some(owner), content });
        self.in_use += 1;
        Ok(allocation)
    }

    fn take_fresh(&mut self) -> Allocation {
        let frame = PoolFrame(self.fresh);
        self.fresh += 1;
        Allocation { frame, zeroed: true }
    }

    fn recycled(index: u32) -> Allocation {
        Allocation { frame: PoolFrame(index), zeroed: false }
    }

    /// Adds `made` new frames' records at the end of the table.
    fn grow(&mut self, made: u32) {
        let created = self.records.len() + made as usize;
        self.records.resize(created, None);
    }

    fn refill(&mut self, kernel: &mut impl RetypeFrames) -> Result<(), AllocationError> {
        let created = self.records.len() as u32;
        let room = self.capacity - created;
        if room == 0 {
            return Err(AllocationError::PoolExhausted { capacity: self.capacity });
        }
        let made = kernel
            .retype_frames(PoolFrame(created), self.batch.min(room))
            .map_err(AllocationError::Kernel)?;
        // Only called with no fresh frame left, so the fresh range stays contiguous.
        debug_assert_eq!(self.fresh, created);
        self.grow(made);
        Ok(())
    }

    /// Makes sure about `pages` fresh frames are ready (fewer when the pool's capacity or untyped
    /// memory runs out), retyping them [`LARGEST_RETYPE`] at a time: for start-up work that knows
    /// how many frames it is about to take (eager loading), which so makes them in the fewest
    /// kernel entries. Best effort: a refused retype just leaves the rest to the usual refills.
    pub fn reserve(&mut self, kernel: &mut impl RetypeFrames, pages: u32) {
        loop {
            let created = self.records.len() as u32;
            let fresh_left = created - self.fresh;
            let room = self.capacity - created;
            let wanted = pages.saturating_sub(fresh_left).min(room).min(LARGEST_RETYPE);
            // New frames join the fresh ones at the end of the table.
            if wanted == 0 {
                return;
            }
            match kernel.retype_frames(PoolFrame(created), wanted) {
                Ok(made) => self.grow(made),
                Err(_) => return,
            }
        }
    }

    /// Makes a frame just allocated the pager's own for good: charged to nobody, never freed (it keeps
    /// the reference `allocate` gave it), and counted as pinned rather than in use.
    pub fn pin(&mut self, frame: PoolFrame) {
        self.record_mut(frame).owner = None;
        self.in_use -= 1;
        self.pinned += 1;
    }

    /// Adds a reference to an allocated frame.
    // Inline: a shared-pagemap hit takes one on every fault, and out of line it was a call.
    #[inline]
    pub fn add_reference(&mut self, frame: PoolFrame) {
        let record = self.record_mut(frame);
        record.references += 1;
    }

    /// Drops a reference. Returns `None` while references remain; when that was the last one the frame
    /// is free again and the result holds the client to uncharge (`None` when it has been removed).
    pub fn release(&mut self, frame: PoolFrame) -> Option<Option<ClientId>> {
        let record = self.record_mut(frame);
        record.references -= 1;
        if record.references > 0 {
            return None;
        }
        let owner = record.owner;
        self.records[frame.0 as usize] = None;
        self.free.push(frame.0);
        self.in_use -= 1;
        Some(owner)
    }

    /// Forgets `owner` as the client charged for its frames (it is being removed). Walks the whole table:
    /// removal is rare and the table is bounded by the pool's capacity.
    pub fn disown(&mut self, owner: ClientId) {
        for record in self.records.iter_mut().flatten().filter(|r| r.owner == Some(owner)) {
            record.owner = None;
        }
    }

    fn record_mut(&mut self, frame: PoolFrame) -> &mut FrameRecord {
        self.records[frame.0 as usize].as_mut().expect("reference to a free frame")
    }

    /// References held on `frame`, or 0 when it is free.
    pub fn references(&self, frame: PoolFrame) -> u32 {
        self.records.get(frame.0 as usize).copied().flatten().map_or(0, |r| r.references)
    }

    /// What `frame` was filled with, when it is in use.
    pub fn content(&self, frame: PoolFrame) -> Option<FrameContent> {
        self.records.get(frame.0 as usize).copied().flatten().map(|r| r.content)
    }

    /// Whether every frame the pool may have is in use: the next allocation would fail with
    /// [`AllocationError::PoolExhausted`].
    pub fn is_exhausted(&self) -> bool {
        self.free.is_empty()
            && self.fresh == self.records.len() as u32
            && self.records.len() as u32 >= self.capacity
    }

    /// The pool's counts.
    pub fn counts(&self) -> FrameCounts {
        FrameCounts {
            created: self.records.len() as u32,
            in_use: self.in_use,
            free: self.free.len() as u32 + (self.records.len() as u32 - self.fresh),
            capacity: self.capacity,
            pinned: self.pinned,
        }
    }
}

/// The pool of cap-copy slots, one per mapping of a frame into a client.
#[derive(Debug)]
pub struct SlotPool {
    next: u32,
    capacity: u32,
    free: Vec<u32>,
}

impl SlotPool {
    /// A pool of `capacity` slots numbered from zero.
    pub fn new(capacity: u32) -> Self {
        Self { next: 0, capacity, free: Vec::new() }
    }

    /// Takes a slot, or `None` when every slot is in use.
    pub fn take(&mut self) -> Option<crate::CopySlot> {
        if let Some(index) = self.free.pop() {
            return Some(crate::CopySlot(index));
        }
        if self.next == self.capacity {
            return None;
        }
        self.next += 1;
        Some(crate::CopySlot(self.next - 1))
    }

    /// Returns a slot.
    pub fn put(&mut self, slot: crate::CopySlot) {
        self.free.push(slot.0);
    }

    /// Slots in use.
    pub fn in_use(&self) -> u32 {
        self.next - self.free.len() as u32
    }

    /// The most slots there are.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }
}

impl FrameTable {
    /// Heap bytes the frame records and free list hold.
    pub fn metadata_bytes(&self) -> usize {
        self.records.capacity() * core::mem::size_of::<Option<FrameRecord>>()
            + self.free.capacity() * core::mem::size_of::<u32>()
    }
}

/// The pool of large (2 MiB) frames: retyped one at a time, each mapped by one client only (large
/// pages go to private anonymous memory), so a frame is either in use by its owner or free.
///
/// As in [`FrameTable`], a fresh frame is zero (seL4 clears untyped memory) and a recycled one must
/// be zeroed before it is mapped again: [`LargeAllocation::zeroed`] says which. Once the kernel
/// has no untyped memory left for a large frame, the pool stops asking (every later request would
/// cost a failing kernel call) and the pager falls back to 4 KiB pages.
#[derive(Debug)]
pub struct LargeFrameTable {
    /// Per created frame: the client charged for it while it is in use.
    owners: Vec<Option<ClientId>>,
    in_use: Vec<bool>,
    free: Vec<u32>,
    capacity: u32,
    in_use_count: u32,
    exhausted: bool,
}

/// A large frame just taken from the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LargeAllocation {
    pub frame: LargeFrame,
    /// Fresh from the kernel, so all zero; otherwise it must be zeroed before it is mapped.
    pub zeroed: bool,
}

/// A snapshot of the large-frame pool's counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LargeFrameCounts {
    /// Large frames retyped from untyped so far.
    pub created: u32,
    /// Large frames mapped in a client.
    pub in_use: u32,
    /// Large frames retyped and free.
    pub free: u32,
    /// The most large frames the pool may create.
    pub capacity: u32,
}

impl LargeFrameTable {
    /// A pool of at most `capacity` large frames.
    pub fn new(capacity: u32) -> Self {
        Self {
            owners: Vec::new(),
            in_use: Vec::new(),
            free: Vec::new(),
            capacity,
            in_use_count: 0,
            exhausted: capacity == 0,
        }
    }

    /// Whether a request could be met without asking the kernel in vain: a free frame, or room
    /// and untyped memory (as far as the pool knows) for a new one.
    pub fn available(&self) -> bool {
        !self.free.is_empty() || !self.exhausted
    }

    /// Takes a large frame charged to `owner`.
    pub fn allocate(
        &mut self,
        kernel: &mut impl RetypeFrames,
        owner: ClientId,
    ) -> Result<LargeAllocation, AllocationError> {
        let allocation = match self.free.pop() {
            Some(index) => LargeAllocation { frame: LargeFrame(index), zeroed: false },
            None => {
                let created = self.owners.len() as u32;
                if self.exhausted || created >= self.capacity {
                    self.exhausted = true;
                    return Err(AllocationError::PoolExhausted { capacity: self.capacity });
                }
                if let Err(error) = kernel.retype_large_frame(LargeFrame(created)) {
                    self.exhausted = true;
                    return Err(AllocationError::Kernel(error));
                }
                self.owners.push(None);
                self.in_use.push(false);
                LargeAllocation { frame: LargeFrame(created), zeroed: true }
            }
        };
        let index = allocation.frame.0 as usize;
        self.owners[index] = Some(owner);
        self.in_use[index] = true;
        self.in_use_count += 1;
        Ok(allocation)
    }

    /// Puts an in-use frame back on the free list; returns the client it was charged to.
    pub fn release(&mut self, frame: LargeFrame) -> Option<ClientId> {
        let index = frame.0 as usize;
        assert!(self.in_use[index], "release of a free large frame");
        self.in_use[index] = false;
        self.in_use_count -= 1;
        self.free.push(frame.0);
        self.owners[index].take()
    }

    /// Whether `frame` is mapped in a client now.
    pub fn is_in_use(&self, frame: LargeFrame) -> bool {
        self.in_use.get(frame.0 as usize).copied().unwrap_or(false)
    }

    /// The pool's counts.
    pub fn counts(&self) -> LargeFrameCounts {
        LargeFrameCounts {
            created: self.owners.len() as u32,
            in_use: self.in_use_count,
            free: self.free.len() as u32,
            capacity: self.capacity,
        }
    }
}
