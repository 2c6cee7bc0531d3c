//! The pager's platform traits on seL4 5.0: frames, cap copies, mappings and the fill window.
//!
//! Numbering follows the pager's choices onto fixed slots of the root CNode:
//! - pool frame `n` is the cap in `frames.start + n`, retyped in batches from the boot info's
//!   untyped memory. Before its first fill that original cap maps it, for good, into the root
//!   task's own VSpace at `window + n * 4096`, so filling a frame is a plain memory copy; a fresh
//!   frame that only ever holds zeroes is never windowed, and that cap maps it into its first
//!   client instead (no copy);
//! - large frame `n` is the cap in `large_frames.start + n`, a 2 MiB frame retyped from an untyped
//!   of at least 2 MiB when a client first needs it and mapped once into the root task's VSpace at
//!   `large_window + n * 2 MiB` (a page-directory slot each), so zeroing a recycled one is a memset;
//! - copy slot `n` is `copies.start + n`, holding the `CNode_Copy` that maps one page in a client;
//! - image page `n` is `userImageFrames.start + n`: the boot image's own frames;
//! - client `c` owns the block of `block_slots` slots at `blocks.start + c * block_slots`: its
//!   untyped chunk of 2^`chunk_bits` bytes, then every object retyped from that chunk (TCB, CNode,
//!   PML4, IPC buffer frame, paging structures: page tables [`pager::PAGE_TABLE_BATCH`] to a retype,
//!   the spares kept for the client's next ones). Revoking the chunk deletes them all and gives the
//!   memory back for the next client in the block.
//!
//! Every kernel entry the root task makes while serving clients is made here, and counted
//! ([`Sel4Platform::kernel_entries`]): the pager's calls, those that make and start a client's objects and
//! the fault loop's `ReplyRecv` and `Recv` ([`Sel4Platform::receive`]). The report's kernel figures
//! are differences of this one count. The calls are timed too ([`Sel4Platform::kernel_ticks`]), all
//! but the waits for a message.

use alloc::vec::Vec;
use core::num::NonZeroU64;

use pager::platform::{CopyFrameCaps, FrameWindow, MapPages, RetypeFrames};
use pager::{
    ClientId, CopySlot, FrameRef, ImagePage, KernelError, LargeFrame, LevelsError, MapError, MappingCap,
    PagingLevel, PoolFrame, Rights, LARGE_PAGE_SIZE,
};
use sel4::{
    init, CPtr, CapRights, Endpoint, Frame, InvocationLabel, MessageInfo, ObjectType, PageDirectory,
    PageTable, Pdpt, Pml4, Received, SlotRange, Untyped, VmAttributes,
};

use crate::cspace::{self, SlotAllocator};
use crate::object_allocator::{AllocationError, ObjectAllocator};
use crate::vspace::{self, Mapper};

/// Bytes in a page.
const PAGE: u64 = 4096;
/// Bytes one page table maps.
const PAGE_TABLE_SPAN: u64 = 1 << 21;
/// Each client's untyped chunk is at least 2^`CHUNK_BITS` bytes (256 KiB: its TCB, CNode, PML4, IPC
/// buffer and up to 59 paging structures, as many as the block has slots for).
pub const CHUNK_BITS: u8 = 18;
/// Slots per client block, at least.
pub const BLOCK_SLOTS: u64 = 64;
/// Slots of a block beside the page tables of a pool mapped densely: the chunk, TCB, CNode, PML4,
/// IPC buffer, the PDPT and page directories, and the page tables of the other areas.
const BLOCK_SPARE_SLOTS: u64 = 16;

/// Each client's room for kernel objects in an image of `frame_capacity` pool frames: a block of
/// at least [`BLOCK_SLOTS`] slots and a chunk of at least 2^[`CHUNK_BITS`] bytes, more in an image
/// whose pool is large enough that one client mapping all of it densely needs more page tables
/// (one per 512 frames) than that. So a client may hold the whole pool; paging structures for
/// pages touched sparsely past that room are refused as before.
pub fn client_room(frame_capacity: u32) -> (u64, u8) {
    let slots = BLOCK_SLOTS.max(u64::from(frame_capacity).div_ceil(512) + BLOCK_SPARE_SLOTS);
    // Every object is at most a page: a page per slot is room enough.
    let bits = (slots * PAGE).next_power_of_two().trailing_zeros() as u8;
    (slots, bits.max(CHUNK_BITS))
}
/// Slot of the untyped chunk in a block.
const CHUNK_SLOT: u64 = 0;
/// The first slot of a block that objects are retyped into.
const FIRST_OBJECT_SLOT: u64 = 1;

/// Where the window onto pool frames starts in the root task's VSpace: PML4 slot 2 (1 TiB),
/// far from the image at 4 MiB and from the self-test's addresses.
pub const WINDOW_BASE: u64 = 0x100_0000_0000;

/// Where the window onto large frames starts: PML4 slot 4 (2 TiB), 2 MiB per frame.
pub const LARGE_WINDOW_BASE: u64 = 0x200_0000_0000;
/// Bytes one page directory maps.
const PAGE_DIRECTORY_SPAN: u64 = 1 << 30;

/// Why the platform could not be set up.
#[derive(Clone, Copy, Debug)]
pub enum SetupError {
    /// The window's paging structures could not be made.
    Window(vspace::MapError),
}

impl core::fmt::Display for SetupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Window(error) => write!(f, "window paging structures: {error}"),
        }
    }
}

/// One client's kernel objects, as far as mapping needs them.
#[derive(Clone, Copy, Debug, Default)]
struct Space {
    /// The chunk untyped exists in the block (it outlives its clients).
    chunk_ready: bool,
    /// Bytes of the chunk the kernel may have used.
    watermark: u64,
    /// Next free slot index in the block.
    next_slot: u64,
    /// Paging structures created in this client's VSpace.
    structures: u32,
    /// Page tables retyped by the last batch and not yet mapped, from slot index `spare_table`
    /// of the block on (other objects may have been retyped after the batch).
    spare_tables: u64,
    spare_table: u64,
}

/// The slot ranges the platform owns.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub frames: SlotRange,
    /// Large-frame caps (empty when the policy maps no large pages).
    pub large_frames: SlotRange,
    pub copies: SlotRange,
    pub blocks: SlotRange,
    pub image_frames: SlotRange,
    /// Slots per client block and the bits of its untyped chunk ([`client_room`]).
    pub block_slots: u64,
    pub chunk_bits: u8,
}

/// A slot range as the fault path reads it, its first slot and how many: finding slot `index` is
/// one comparison and an add ([`SlotRange::slot`] tests `start + index` for overflow too, two
/// instructions more on each of a fault's one to three lookups).
#[derive(Clone, Copy, Debug)]
struct Slots {
    start: u64,
    count: u64,
}

impl Slots {
    fn of(range: SlotRange) -> Self {
        Self { start: range.start, count: range.len() }
    }

    /// The slot at `index`, if the range has it. `start + index` is below the range's end, so it
    /// does not overflow.
    #[inline(always)]
    fn slot(self, index: u32) -> Option<CPtr> {
        let index = u64::from(index);
        (index < self.count).then(|| CPtr::new(self.start + index))
    }
}

/// The seL4 implementation of the pager's platform.
pub struct Sel4Platform {
    layout: Layout,
    /// `layout.copies` and `layout.image_frames`, for the lookups on the fault path.
    copy_slots: Slots,
    image_slots: Slots,
    objects: ObjectAllocator,
    spaces: Vec<Space>,
    /// Each block's PML4 (its cap's slot) while a client lives there, by client number. Apart
    /// from `spaces` and 8 bytes a client, so that every map's lookup is one indexed load (in a
    /// `Space`, with a tag of its own, it was two more instructions).
    pml4s: Vec<Option<NonZeroU64>>,
    frames_created: u32,
    large_frames_created: u32,
    entries: u64,
    /// Time-stamp ticks spent in those entries.
    ticks: u64,
    /// One bit per boot-image page ever mapped into a client.
    image_pages_mapped: Vec<u64>,
    /// One bit per pool frame mapped into the window (by `map_window`, for good).
    windowed: Vec<u64>,
}

/// The pager's view of a kernel error: out of memory named, any other by its code.
fn kernel_error(error: sel4::Error) -> KernelError {
    match error {
        sel4::Error::NotEnoughMemory { .. } => KernelError::OutOfMemory,
        other => KernelError::Failed(other.code() as u32),
    }
}

/// A pool frame known to be mapped into the window: made only by `Sel4Platform::window_frame`
/// (after that map succeeded) and `Sel4Platform::windowed` (from the bit the map set), so
/// holding one is what lets `window_bytes` touch the frame's bytes.
#[derive(Clone, Copy)]
struct InWindow(PoolFrame);

/// The pager's view of a failed `Page_Map`: a missing paging level named, else the kernel error.
/// Out of line: the map is inline on the fault path, and its error is rare.
#[cold]
#[inline(never)]
fn map_error(error: sel4::Error) -> MapError {
    match vspace::missing_level(error) {
        MapError::MissingLevel(level) => MapError::MissingLevel(level),
        MapError::Kernel(error) => MapError::Kernel(kernel_error(error)),
    }
}

/// The pager's name for the access the binding decoded from a VM fault.
pub fn pager_access(access: sel4::Access) -> pager::Access {
    match access {
        sel4::Access::Read => pager::Access::Read,
        sel4::Access::Write => pager::Access::Write,
        sel4::Access::Execute => pager::Access::Execute,
    }
}

impl Sel4Platform {
    /// A platform over the given slot ranges, with `objects` for frames and client chunks.
    pub fn new(layout: Layout, objects: ObjectAllocator) -> Self {
        let clients = (layout.blocks.len() / layout.block_slots) as usize;
        let image_words = (layout.image_frames.len() as usize).div_ceil(64);
        Self {
            layout,
            copy_slots: Slots::of(layout.copies),
            image_slots: Slots::of(layout.image_frames),
            objects,
            spaces: alloc::vec![Space::default(); clients],
            pml4s: alloc::vec![None; clients],
            frames_created: 0,
            large_frames_created: 0,
            entries: 0,
            ticks: 0,
            image_pages_mapped: alloc::vec![0; image_words],
            windowed: Vec::new(),
        }
    }

    /// Creates the paging structures of the window onto `pages` pool frames, so that mapping a
    /// new pool frame there is one `Page_Map`.
    pub fn prepare_window(&mut self, slots: &mut SlotAllocator, pages: u32) -> Result<(), SetupError> {
        let end = WINDOW_BASE + u64::from(pages) * PAGE;
        self.prepare_structures::<PageTable>(slots, WINDOW_BASE, end, PAGE_TABLE_SPAN, |table, address| {
            table.map(init::VSPACE, address, VmAttributes::default())
        })
    }

    /// Creates the page directories of the window onto the large frames (one per GiB), so that
    /// mapping a new large frame there is one `Page_Map`.
    pub fn prepare_large_window(&mut self, slots: &mut SlotAllocator) -> Result<(), SetupError> {
        let end = LARGE_WINDOW_BASE + self.layout.large_frames.len() * LARGE_PAGE_SIZE;
        let map =
            |directory: PageDirectory, address| directory.map(init::VSPACE, address, VmAttributes::default());
        self.prepare_structures::<PageDirectory>(slots, LARGE_WINDOW_BASE, end, PAGE_DIRECTORY_SPAN, map)
    }

    /// Makes and maps one paging structure of type `T` per `span` bytes of `base..end` in the root
    /// task's own VSpace (with any level above it that is missing).
    fn prepare_structures<T: sel4::Object + Copy>(
        &mut self,
        slots: &mut SlotAllocator,
        base: u64,
        end: u64,
        span: u64,
        map: impl Fn(T, u64) -> sel4::Result<()>,
    ) -> Result<(), SetupError> {
        let mut mapper = Mapper::new(init::VSPACE);
        let mut address = base;
        while address < end {
            let (structure, _) = self
                .objects
                .allocate::<T>(slots)
                .map_err(|error| SetupError::Window(vspace::MapError::Allocation(error)))?;
            mapper
                .map_with(&mut self.objects, slots, address, || map(structure, address))
                .map_err(SetupError::Window)?;
            address += span;
        }
        Ok(())
    }

    /// Large frames retyped so far.
    pub fn large_frames_created(&self) -> u32 {
        self.large_frames_created
    }

    /// Kernel entries made through this platform so far.
    pub fn kernel_entries(&self) -> u64 {
        self.entries
    }

    /// Time-stamp ticks spent inside the kernel calls made through this platform so far.
    pub fn kernel_ticks(&self) -> u64 {
        self.ticks
    }

    /// Ticks that timing one kernel call adds to the code around it, outside the call's own
    /// interval (the time stamps and the sums): measured by timing a call that does nothing, less
    /// the distance of two bare time stamps. Under `-icount` a fixed count of instructions, which
    /// the report takes out of the pager's code per fault. The counts stay as they were.
    pub fn timing_overhead(&mut self) -> u64 {
        let (entries, ticks) = (self.entries, self.ticks);
        let bare_start = sel4::timestamp();
        let bare = sel4::timestamp().wrapping_sub(bare_start);
        let start = sel4::timestamp();
        let _ = self.invoke(|| core::hint::black_box(Ok::<(), sel4::Error>(())));
        let total = sel4::timestamp().wrapping_sub(start);
        let inner = self.ticks - ticks;
        (self.entries, self.ticks) = (entries, ticks);
        total.saturating_sub(inner + bare)
    }

    /// Ticks of one 4 KiB copy as a copy fault makes it (`window_and_write_page`, `write_page`): a
    /// `memcpy` of a whole page from a page-aligned source (a file page in the boot image) to a
    /// page-aligned destination (the window), with its call. Under `-icount` its instructions depend only on the length and
    /// the alignment, so one copy between two aligned heap pages, timed once at start-up less the
    /// distance of two bare time stamps, is what every copy fault's copy costs: the report gives it
    /// apart, and the fault path is not timed for it.
    pub fn page_copy_ticks() -> u64 {
        #[repr(C, align(4096))]
        struct Page([u8; PAGE as usize]);
        let (mut to, from) = (
            alloc::boxed::Box::new(Page([0; PAGE as usize])),
            alloc::boxed::Box::new(Page([0; PAGE as usize])),
        );
        // Whole pages at addresses the compiler cannot see, as the fault path copies them (a page's
        // bytes into the window's page): the same `memcpy` call, with no length to check.
        let (to, from): (&mut [u8; PAGE as usize], &[u8; PAGE as usize]) =
            core::hint::black_box((&mut to.0, &from.0));
        let bare_start = sel4::timestamp();
        let bare = sel4::timestamp().wrapping_sub(bare_start);
        let start = sel4::timestamp();
        to.copy_from_slice(from);
        let total = sel4::timestamp().wrapping_sub(start);
        core::hint::black_box(to);
        total.saturating_sub(bare)
    }

    /// Makes one kernel call, counting the entry and the ticks it took. Every kernel call the root
    /// task makes while serving clients goes through here or [`Sel4Platform::receive`].
    pub fn invoke<T>(&mut self, call: impl FnOnce() -> sel4::Result<T>) -> sel4::Result<T> {
        let start = sel4::timestamp();
        let result = call();
        self.count_call(start);
        result
    }

    /// Kernel entries of one [`Sel4Platform::receive`].
    pub const RECEIVE_ENTRIES: u64 = 1;

    /// Replies with `reply`, if there is one, and waits for the next message on `endpoint`
    /// (`ReplyRecv`, else `Recv`). Counted as one kernel entry; its ticks are not, being mostly the
    /// wait for a client.
    pub fn receive(&mut self, endpoint: Endpoint, reply: Option<(MessageInfo, [u64; 4])>) -> Received {
        let received = match reply {
            Some((info, registers)) => endpoint.reply_recv(info, registers),
            None => endpoint.recv(),
        };
        self.entries += Self::RECEIVE_ENTRIES;
        received
    }

    /// Replies to the last caller through the implicit reply cap (`Reply`), for an answer the
    /// fault loop does not send with its `ReplyRecv`. Counted as one kernel entry.
    pub fn reply(&mut self, info: MessageInfo, registers: [u64; 4]) {
        let start = sel4::timestamp();
        sel4::reply(info, registers);
        self.count_call(start);
    }

    /// Counts one kernel call that began at time stamp `start` and has just returned.
    fn count_call(&mut self, start: u64) {
        self.ticks += sel4::timestamp().wrapping_sub(start);
        self.entries += 1;
    }

    /// `X86_Page_Unmap`. On seL4 5.0, unmapping a frame cap that is not mapped returns without
    /// writing a reply (`decodeX86FrameInvocation` leaves the thread `Running`, not `Restart`), so
    /// the caller gets its own message info back, label `X86PageUnmap`: nothing was mapped, which
    /// is what was asked for.
    fn unmap_frame(&mut self, frame: Frame) -> Result<(), KernelError> {
        match self.invoke(|| frame.unmap()) {
            Ok(()) => Ok(()),
            Err(sel4::Error::Unknown { label }) if label == InvocationLabel::X86PageUnmap.value() => Ok(()),
            Err(error) => Err(kernel_error(error)),
        }
    }

    /// Pool frames retyped so far.
    pub fn frames_created(&self) -> u32 {
        self.frames_created
    }

    /// Distinct boot-image pages ever mapped into a client.
    pub fn distinct_image_pages(&self) -> u32 {
        self.image_pages_mapped.iter().map(|w| w.count_ones()).sum()
    }

    fn block(&self, client: ClientId) -> u64 {
        self.layout.blocks.start + u64::from(client.0) * self.layout.block_slots
    }

    fn space(&mut self, client: ClientId) -> Result<&mut Space, KernelError> {
        self.spaces.get_mut(usize::from(client.0)).ok_or(KernelError::UnknownClient(client))
    }

    /// The PML4 of a live client.
    pub fn pml4(&self, client: ClientId) -> Option<Pml4> {
        let slot = self.pml4s.get(usize::from(client.0)).copied().flatten()?;
        Some(Pml4::new(slot.get()))
    }

    /// Paging structures made in a client's VSpace (the IPC buffer's included).
    pub fn paging_structures(&self, client: ClientId) -> u32 {
        self.spaces.get(usize::from(client.0)).map_or(0, |s| s.structures)
    }

    /// Makes sure the block of `client` has its untyped chunk, with nothing retyped from it.
    pub fn open_space(&mut self, client: ClientId) -> Result<(), KernelError> {
        let chunk_slot = self.block(client) + CHUNK_SLOT;
        let space = *self.space(client)?;
        if !space.chunk_ready {
            let range = SlotRange { start: chunk_slot, end: chunk_slot + 1 };
            let start = sel4::timestamp();
            let retyped = self.objects.retype_into(ObjectType::Untyped, self.layout.chunk_bits, range);
            self.count_call(start);
            match retyped {
                Ok(_) => {}
                Err(AllocationError::OutOfMemory) => return Err(KernelError::OutOfMemory),
                Err(AllocationError::OutOfSlots) => return Err(KernelError::OutOfSlots),
                Err(AllocationError::Kernel(error)) => return Err(kernel_error(error)),
            }
        }
        *self.space(client)? = Space {
            chunk_ready: true,
            watermark: 0,
            next_slot: FIRST_OBJECT_SLOT,
            structures: 0,
            spare_tables: 0,
            spare_table: 0,
        };
        self.forget_pml4(client);
        Ok(())
    }

    /// Retypes one object from the client's chunk into the next slot of its block.
    /// `size_bits` is the retype argument, `memory_bits` the object's size in bytes (log2).
    pub fn retype_in_chunk(
        &mut self,
        client: ClientId,
        object_type: ObjectType,
        size_bits: u8,
        memory_bits: u8,
    ) -> Result<CPtr, KernelError> {
        self.retype_many_in_chunk(client, object_type, size_bits, memory_bits, 1).map(|(slot, _)| slot)
    }

    /// Retypes up to `count` objects alike from the client's chunk into the next slots of its
    /// block, in one call: as many as the block has slots and the chunk has room for (at least
    /// one). Returns the first slot and how many were made.
    fn retype_many_in_chunk(
        &mut self,
        client: ClientId,
        object_type: ObjectType,
        size_bits: u8,
        memory_bits: u8,
        count: u64,
    ) -> Result<(CPtr, u64), KernelError> {
        let block = self.block(client);
        let space = *self.space(client)?;
        if !space.chunk_ready || space.next_slot >= self.layout.block_slots {
            return Err(KernelError::OutOfSlots);
        }
        let size = 1u64 << memory_bits;
        let start = space.watermark.next_multiple_of(size);
        let room = ((1u64 << self.layout.chunk_bits).saturating_sub(start)) / size;
        let count = count.min(self.layout.block_slots - space.next_slot).min(room);
        if count == 0 {
            return Err(KernelError::OutOfMemory);
        }
        let slot = block + space.next_slot;
        let chunk = Untyped::new(block + CHUNK_SLOT);
        self.invoke(|| chunk.retype(object_type, size_bits, init::CNODE, 0, 0, slot, count))
            .map_err(kernel_error)?;
        let space = self.space(client)?;
        space.watermark = start + size * count;
        space.next_slot += count;
        Ok((CPtr::new(slot), count))
    }

    /// Records the client's PML4 (retyped and assigned an ASID by the caller).
    pub fn set_pml4(&mut self, client: ClientId, pml4: Pml4) -> Result<(), KernelError> {
        let entry = self.pml4s.get_mut(usize::from(client.0)).ok_or(KernelError::UnknownClient(client))?;
        // A PML4 is never in slot 0, the null cap's.
        *entry = Some(NonZeroU64::new(pml4.cptr().bits()).ok_or(KernelError::NoAddressSpace(client))?);
        Ok(())
    }

    /// Maps a frame the caller owns (the IPC buffer) into a client, making paging structures.
    pub fn map_own_frame(
        &mut self,
        client: ClientId,
        frame: Frame,
        vaddr: u64,
        rights: Rights,
    ) -> Result<(), KernelError> {
        pager::map_with_missing_levels(
            self,
            |platform| platform.map(client, frame, vaddr, rights),
            |platform, level| platform.map_paging_structure(client, vaddr, level),
        )
        .map_err(|error| match error {
            LevelsError::Map(error) | LevelsError::Level { error, .. } => error,
            LevelsError::StillMissing(level) => KernelError::LevelStillMissing(level),
        })
    }

    /// Inline: it is the fault path's `Page_Map` (through `map_page`), which would otherwise pay a
    /// call of its own around the kernel's.
    #[inline(always)]
    fn map(&mut self, client: ClientId, frame: Frame, vaddr: u64, rights: Rights) -> Result<(), MapError> {
        let pml4 = self.pml4(client).ok_or(MapError::Kernel(KernelError::NoAddressSpace(client)))?;
        // Read, and write when the mapping is writable: an OR of the write bit, not a choice.
        let write = u64::from(rights.write) * CapRights::WRITE.to_word();
        let cap_rights = CapRights::from_word(CapRights::READ.to_word() | write);
        self.invoke(|| frame.map(pml4, vaddr, cap_rights, VmAttributes::default())).map_err(map_error)
    }

    /// Deletes every object of the client's block (revoking its chunk) and forgets its VSpace.
    pub fn close_space(&mut self, client: ClientId) -> Result<(), KernelError> {
        let chunk = CPtr::new(self.block(client) + CHUNK_SLOT);
        let space = *self.space(client)?;
        if space.chunk_ready {
            self.invoke(|| cspace::revoke(chunk)).map_err(kernel_error)?;
        }
        let space = self.space(client)?;
        space.watermark = 0;
        space.next_slot = FIRST_OBJECT_SLOT;
        space.structures = 0;
        space.spare_tables = 0;
        self.forget_pml4(client);
        Ok(())
    }

    /// The client's block holds no PML4 any more.
    fn forget_pml4(&mut self, client: ClientId) {
        if let Some(entry) = self.pml4s.get_mut(usize::from(client.0)) {
            *entry = None;
        }
    }

    /// The frame cap a mapping is made with: a copy's slot, or a pool frame's own.
    fn mapping_cap(&self, cap: MappingCap) -> Result<Frame, KernelError> {
        match cap {
            MappingCap::Copy(slot) => {
                self.copy_slots.slot(slot.0).map(Frame::from_cptr).ok_or(KernelError::OutOfSlots)
            }
            MappingCap::Own(frame) if frame.0 < self.frames_created => Ok(self.pool_frame(frame)),
            MappingCap::Own(frame) => Err(KernelError::FrameOutOfOrder { asked: frame }),
        }
    }

    /// The slot of a page table for the client: a spare from its last batch, else the first of a
    /// new batch retyped from its chunk (one call for up to [`pager::PAGE_TABLE_BATCH`]).
    fn spare_page_table(&mut self, client: ClientId) -> Result<CPtr, KernelError> {
        let space = *self.space(client)?;
        if space.spare_tables > 0 {
            let slot = self.block(client) + space.spare_table;
            let space = self.space(client)?;
            space.spare_tables -= 1;
            space.spare_table += 1;
            return Ok(CPtr::new(slot));
        }
        let bits = sel4::abi::PAGE_TABLE_BITS;
        let batch = u64::from(pager::PAGE_TABLE_BATCH);
        let (slot, made) = self.retype_many_in_chunk(client, ObjectType::PageTable, bits, bits, batch)?;
        let space = self.space(client)?;
        space.spare_tables = made - 1;
        space.spare_table = space.next_slot - space.spare_tables;
        Ok(slot)
    }

    /// The cap of pool frame `frame`.
    fn pool_frame(&self, frame: PoolFrame) -> Frame {
        Frame::new(self.layout.frames.start + u64::from(frame.0))
    }

    fn window(frame: PoolFrame) -> u64 {
        WINDOW_BASE + u64::from(frame.0) * PAGE
    }

    fn large_window(frame: LargeFrame) -> u64 {
        LARGE_WINDOW_BASE + u64::from(frame.0) * LARGE_PAGE_SIZE
    }

    /// The cap slot of large frame `frame`.
    fn large_frame_slot(&self, frame: LargeFrame) -> Option<CPtr> {
        self.layout.large_frames.slot(u64::from(frame.0))
    }

    /// Copies the cap of large frame `frame` into the copy slot `destination`.
    #[cold]
    #[inline(never)]
    fn copy_large_frame_cap(&mut self, frame: LargeFrame, destination: CPtr) -> Result<(), KernelError> {
        let source = self.large_frame_slot(frame).ok_or(KernelError::OutOfSlots)?;
        self.invoke(|| cspace::copy(destination, source, CapRights::READ_WRITE)).map_err(kernel_error)
    }

    /// Maps pool frame `frame` into the window with its own cap, for good.
    #[inline(always)]
    fn window_frame(&mut self, frame: PoolFrame) -> Result<InWindow, KernelError> {
        if frame.0 >= self.frames_created {
            return Err(KernelError::FrameOutOfOrder { asked: frame });
        }
        let cap = self.pool_frame(frame);
        let window = Self::window(frame);
        self.invoke(|| cap.map(init::VSPACE, window, CapRights::READ_WRITE, VmAttributes::default()))
            .map_err(kernel_error)?;
        // Frames below `frames_created` have their bit (`retype_frames`), so the word is there (had
        // it not been, the frame would stay out of the window for `window_page`, which panics).
        let index = frame.0 as usize;
        if let Some(word) = self.windowed.get_mut(index / 64) {
            *word |= 1 << (index % 64);
        }
        Ok(InWindow(frame))
    }

    /// `frame`, if `window_frame` has mapped it into the window.
    fn windowed(&self, frame: PoolFrame) -> Option<InWindow> {
        let index = frame.0 as usize;
        let bit = self.windowed.get(index / 64).is_some_and(|word| word & (1 << (index % 64)) != 0);
        bit.then_some(InWindow(frame))
    }

    /// The window bytes of a windowed pool frame.
    fn window_page(&mut self, frame: PoolFrame) -> &mut [u8; PAGE as usize] {
        let Some(frame) = self.windowed(frame) else {
            panic!("pool frame {} is not in the window", frame.0);
        };
        self.window_bytes(frame)
    }

    /// The window bytes of `frame`.
    fn window_bytes(&mut self, frame: InWindow) -> &mut [u8; PAGE as usize] {
        // SAFETY: an `InWindow` is made only by `window_frame`, after its map of the frame's
        // original cap read-write at `window(frame)` in this VSpace succeeded, or by `windowed`,
        // from the bit that map set. The frame was retyped (`window_frame` checks it against
        // `frames_created`) and stays mapped there for the root task's life: a pool frame's
        // original cap is never deleted, and `unmap_page` refuses to unmap a windowed one. Only
        // this platform touches the window, and the returned borrow is tied to `&mut self`, so
        // there is no other reference to these bytes.
        unsafe { &mut *(Self::window(frame.0) as *mut [u8; PAGE as usize]) }
    }
}

impl RetypeFrames for Sel4Platform {
    fn retype_large_frame(&mut self, frame: LargeFrame) -> Result<(), KernelError> {
        if frame.0 != self.large_frames_created {
            return Err(KernelError::Failed(sel4::Error::DeleteFirst.code() as u32));
        }
        let slot = self.large_frame_slot(frame).ok_or(KernelError::OutOfSlots)?;
        let start = sel4::timestamp();
        let range = SlotRange { start: slot.bits(), end: slot.bits() + 1 };
        let retyped = self.objects.retype_into(ObjectType::LargePage, sel4::abi::LARGE_PAGE_BITS, range);
        self.count_call(start);
        match retyped {
            Ok(_) => {}
            Err(AllocationError::OutOfMemory) => return Err(KernelError::OutOfMemory),
            Err(AllocationError::OutOfSlots) => return Err(KernelError::OutOfSlots),
            Err(AllocationError::Kernel(error)) => return Err(kernel_error(error)),
        }
        // The original cap maps once, into the window (clients get copies).
        let cap = Frame::from_cptr(slot);
        let window = Self::large_window(frame);
        let mapped =
            self.invoke(|| cap.map(init::VSPACE, window, CapRights::READ_WRITE, VmAttributes::default()));
        if let Err(error) = mapped {
            let _ = self.invoke(|| cspace::delete(slot));
            return Err(kernel_error(error));
        }
        self.large_frames_created += 1;
        Ok(())
    }

    fn retype_frames(&mut self, first: PoolFrame, count: u32) -> Result<u32, KernelError> {
        if first.0 != self.frames_created {
            return Err(KernelError::FrameOutOfOrder { asked: first });
        }
        let room = self.layout.frames.len().saturating_sub(u64::from(first.0));
        let mut count = u64::from(count).min(room);
        if count == 0 {
            return Err(KernelError::OutOfSlots);
        }
        let start = self.layout.frames.start + u64::from(first.0);
        // Ask for the whole batch; when no untyped has room for it, for fewer.
        loop {
            let started = sel4::timestamp();
            let retyped =
                self.objects.retype_into(ObjectType::Page4K, 12, SlotRange { start, end: start + count });
            self.count_call(started);
            match retyped {
                Ok(_) => break,
                Err(AllocationError::OutOfMemory) if count > 1 => count /= 2,
                Err(AllocationError::OutOfMemory) => return Err(KernelError::OutOfMemory),
                Err(AllocationError::OutOfSlots) => return Err(KernelError::OutOfSlots),
                Err(AllocationError::Kernel(error)) => return Err(kernel_error(error)),
            }
        }
        // No window maps here: a frame is windowed before its first fill (`map_window`), and a
        // fresh one that only ever holds zeroes never is. Its window bit is made now, so that
        // `map_window` sets it with one OR.
        self.frames_created += count as u32;
        self.windowed.resize((self.frames_created as usize).div_ceil(64), 0);
        Ok(count as u32)
    }
}

impl CopyFrameCaps for Sel4Platform {
    /// A hint: LLVM then inlines it at the shared-pagemap hit (where it pays) and keeps it out of
    /// line for the seed's image frames (measured with `cargo xtask profile`).
    #[inline]
    fn copy_frame_cap(&mut self, frame: FrameRef, slot: CopySlot) -> Result<(), KernelError> {
        let destination = self.copy_slots.slot(slot.0).ok_or(KernelError::OutOfSlots)?;
        let (source, rights) = match frame {
            FrameRef::Pool(frame) => (self.pool_frame(frame).cptr(), CapRights::READ_WRITE),
            // Out of line: one large fault maps 512 pages, and the common path stays as it was.
            FrameRef::Large(frame) => return self.copy_large_frame_cap(frame, destination),
            FrameRef::Image(ImagePage(page)) => {
                let source = self.image_slots.slot(page).ok_or(KernelError::NoImagePage(ImagePage(page)))?;
                if let Some(word) = self.image_pages_mapped.get_mut(page as usize / 64) {
                    *word |= 1 << (page % 64);
                }
                // Image frames are the root task's own: clients only ever read them.
                (source, CapRights::READ)
            }
        };
        self.invoke(|| cspace::copy(destination, source, rights)).map_err(kernel_error)
    }

    /// On seL4 5.0 deleting a frame cap unmaps it only when it is the last cap to the frame
    /// (`Arch_finaliseCap` checks `final`), and a copy never is: so unmap first.
    fn delete_copy(&mut self, slot: CopySlot) -> Result<(), KernelError> {
        let slot = self.copy_slots.slot(slot.0).ok_or(KernelError::OutOfSlots)?;
        self.unmap_frame(Frame::from_cptr(slot))?;
        self.invoke(|| cspace::delete(slot)).map_err(kernel_error)
    }

    /// The client is suspended and its VSpace is revoked right after (`close_space`): the mapping
    /// goes with its paging structures, so the delete alone does.
    fn delete_copy_in_teardown(&mut self, slot: CopySlot) -> Result<(), KernelError> {
        let slot = self.copy_slots.slot(slot.0).ok_or(KernelError::OutOfSlots)?;
        self.invoke(|| cspace::delete(slot)).map_err(kernel_error)
    }
}

impl MapPages for Sel4Platform {
    /// Inline in the pager's fault path (`seed::map_frame`): out of line, its call saved and
    /// restored registers of its own and returned its result through memory.
    #[inline(always)]
    fn map_page(
        &mut self,
        client: ClientId,
        vaddr: u64,
        cap: MappingCap,
        rights: Rights,
    ) -> Result<(), MapError> {
        let frame = self.mapping_cap(cap).map_err(MapError::Kernel)?;
        self.map(client, frame, vaddr, rights)
    }

    fn map_paging_structure(
        &mut self,
        client: ClientId,
        vaddr: u64,
        level: PagingLevel,
    ) -> Result<(), KernelError> {
        let pml4 = self.pml4(client).ok_or(KernelError::NoAddressSpace(client))?;
        let (object_type, bits) = match level {
            PagingLevel::Pdpt => (ObjectType::Pdpt, sel4::abi::PDPT_BITS),
            PagingLevel::PageDirectory => (ObjectType::PageDirectory, sel4::abi::PAGE_DIRECTORY_BITS),
            PagingLevel::PageTable => (ObjectType::PageTable, sel4::abi::PAGE_TABLE_BITS),
        };
        let slot = match level {
            PagingLevel::PageTable => self.spare_page_table(client)?,
            _ => self.retype_in_chunk(client, object_type, bits, bits)?,
        };
        let attributes = VmAttributes::default();
        self.invoke(|| match level {
            PagingLevel::Pdpt => Pdpt::from_cptr(slot).map(pml4, vaddr, attributes),
            PagingLevel::PageDirectory => PageDirectory::from_cptr(slot).map(pml4, vaddr, attributes),
            PagingLevel::PageTable => PageTable::from_cptr(slot).map(pml4, vaddr, attributes),
        })
        .map_err(kernel_error)?;
        self.space(client)?.structures += 1;
        Ok(())
    }

    fn unmap_page(&mut self, cap: MappingCap) -> Result<(), KernelError> {
        // The window is for good (what `window_bytes` relies on), whatever the caller asks.
        if let MappingCap::Own(frame) = cap {
            if self.windowed(frame).is_some() {
                return Err(KernelError::WindowedFrame(frame));
            }
        }
        let frame = self.mapping_cap(cap)?;
        self.unmap_frame(frame)
    }
}

impl FrameWindow for Sel4Platform {
    fn map_window(&mut self, frame: PoolFrame) -> Result<(), KernelError> {
        self.window_frame(frame).map(|_| ())
    }

    fn is_windowed(&self, frame: PoolFrame) -> bool {
        self.windowed(frame).is_some()
    }

    // One call from the fault path, the window's map inlined in it: a copy into a fresh frame then
    // costs the pager one call and one return, not two (`cargo xtask bench`: 10 fewer per copy).
    #[inline(never)]
    fn window_and_write_page(&mut self, frame: PoolFrame, bytes: &[u8; 4096]) -> Result<(), KernelError> {
        let frame = self.window_frame(frame)?;
        self.window_bytes(frame).copy_from_slice(bytes);
        Ok(())
    }

    fn write_frame(&mut self, frame: PoolFrame, offset: usize, bytes: &[u8]) {
        self.window_page(frame)[offset..offset + bytes.len()].copy_from_slice(bytes);
    }

    fn write_page(&mut self, frame: PoolFrame, bytes: &[u8; 4096]) {
        self.window_page(frame).copy_from_slice(bytes);
    }

    fn zero_frame(&mut self, frame: PoolFrame, offset: usize, length: usize) {
        self.window_page(frame)[offset..offset + length].fill(0);
    }

    fn read_frame(&mut self, frame: PoolFrame, bytes: &mut [u8; 4096]) {
        bytes.copy_from_slice(&self.window_page(frame)[..]);
    }

    fn zero_large_frame(&mut self, frame: LargeFrame) {
        assert!(frame.0 < self.large_frames_created, "large frame {} was never created", frame.0);
        // SAFETY: large frame `frame` was retyped and its original cap mapped read-write at
        // `large_window(frame)` in this VSpace by `retype_large_frame` (checked just above), and
        // stays mapped for the root task's life: the cap is never deleted or unmapped. Only this
        // platform touches the window, and the borrow ends within this call.
        let bytes = unsafe {
            core::slice::from_raw_parts_mut(Self::large_window(frame) as *mut u8, LARGE_PAGE_SIZE as usize)
        };
        bytes.fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_find_what_the_range_holds() {
        let slots = Slots::of(SlotRange { start: 10, end: 13 });
        assert_eq!(slots.slot(2), Some(CPtr::new(12)));
        assert_eq!(slots.slot(3), None);
        assert_eq!(slots.slot(u32::MAX), None);
        assert_eq!(Slots::of(SlotRange { start: 13, end: 10 }).slot(0), None, "a reversed range has none");
        let top = Slots::of(SlotRange { start: u64::MAX - 2, end: u64::MAX });
        assert_eq!(top.slot(1), Some(CPtr::new(u64::MAX - 1)));
        assert_eq!(top.slot(2), None, "no wrap past the end");
    }

    #[test]
    fn a_client_has_room_for_a_dense_pool() {
        // The default pool (and anything up to 24,576 frames) keeps the 64-slot, 256 KiB room.
        assert_eq!(client_room(4096), (64, 18));
        assert_eq!(client_room(24_576), (64, 18));
        // 102,400 frames: 200 page tables and the fixed objects, in a 1 MiB chunk.
        assert_eq!(client_room(102_400), (216, 20));
        let (slots, bits) = client_room(u32::MAX);
        assert!(slots * PAGE <= 1 << bits);
    }
}
