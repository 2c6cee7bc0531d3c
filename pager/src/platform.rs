//! The kernel boundary: one small trait per thing the pager asks of the kernel.
//!
//! The pager decides *which* frame, which cap-copy slot and which address; an implementation only
//! carries the decision out. On seL4 the root task implements these with capability invocations; on
//! the host the `sim` crate implements them with a strict model of the same rules. Numbering is the
//! pager's: a [`PoolFrame`] or [`CopySlot`] index maps to a fixed CSpace slot in the implementation.

use crate::{ClientId, CopySlot, FrameRef, ImagePage, LargeFrame, PoolFrame, Rights};

/// The cap a client mapping is made with. seL4 maps a frame cap in one place only, so each
/// mapping of a frame has a cap of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MappingCap {
    /// A `CNode_Copy` of the frame's cap in a cap-copy slot.
    Copy(CopySlot),
    /// Pool frame's own (original) cap: a fresh frame that holds only zeroes is mapped into its
    /// first client with it, which saves the copy. That cap is then in no window; the pager unmaps
    /// it (it cannot be deleted) before the frame is used again.
    Own(PoolFrame),
}

/// A paging-structure level below the root (PML4 on x86_64) that a mapping may find missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PagingLevel {
    /// Page-directory pointer table: covers 512 GiB.
    Pdpt,
    /// Page directory: covers 1 GiB.
    PageDirectory,
    /// Page table: covers 2 MiB.
    PageTable,
}

impl core::fmt::Display for PagingLevel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Pdpt => "PDPT",
            Self::PageDirectory => "page directory",
            Self::PageTable => "page table",
        })
    }
}

/// A kernel operation that failed for a reason the pager can report but not fix.
///
/// No variant carries more than 4 bytes, so `Result<(), KernelError>` is 8 and comes back from a
/// platform call in a register, not through memory: every kernel call of the fault path returns
/// one (`cargo xtask bench`: 7 fewer instructions per copy fault, 14 per mixed one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelError {
    /// No untyped memory left for the object.
    OutOfMemory,
    /// No free slot left in the implementation's CSpace.
    OutOfSlots,
    /// The implementation keeps no objects for this client (its number is past the ones it was
    /// set up for).
    UnknownClient(ClientId),
    /// The client has no address space now (none made yet, or already destroyed).
    NoAddressSpace(ClientId),
    /// Pool frames are created in order, and `asked` is not the next one to create, or (to map or
    /// copy it) was not created yet. What was expected is the pool's count, which the caller knows.
    FrameOutOfOrder { asked: PoolFrame },
    /// The boot image has no such page.
    NoImagePage(ImagePage),
    /// A kernel error, with its code (`seL4_Error`).
    Failed(u32),
    /// A map still found this paging structure missing after it had been made.
    LevelStillMissing(PagingLevel),
    /// An unmap of a pool frame's own cap while it maps the frame into the pager's window, which
    /// is for good: the platform's writes there rely on it.
    WindowedFrame(PoolFrame),
}

// What the note on `KernelError` relies on.
const _: () = assert!(core::mem::size_of::<Result<(), KernelError>>() <= 8);

/// Why a page mapping failed; `K` is the kernel's error (the root task's own maps keep seL4's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError<K = KernelError> {
    /// The paging structure at this level is missing; create it and retry.
    MissingLevel(PagingLevel),
    /// The kernel refused for another reason.
    Kernel(K),
}

/// Retypes untyped memory into frame objects (HelenOS `frame_alloc`, in batches).
pub trait RetypeFrames {
    /// Creates up to `count` frames numbered from `first`, every byte zero (seL4 clears untyped
    /// memory before making objects of it). Returns how many were made (at least one), or an error
    /// when none could be.
    fn retype_frames(&mut self, first: PoolFrame, count: u32) -> Result<u32, KernelError>;

    /// Creates large (2 MiB) frame `frame`, every byte zero, from untyped memory of at least 2 MiB.
    /// Large frames are numbered in order from 0, like pool frames, in a numbering of their own.
    /// `OutOfMemory` when no untyped memory is left for one.
    fn retype_large_frame(&mut self, frame: LargeFrame) -> Result<(), KernelError>;
}

/// Makes and deletes the per-mapping copies of frame caps (a seL4 frame cap maps in one place only).
pub trait CopyFrameCaps {
    /// Copies the cap of `frame` into copy slot `slot`.
    fn copy_frame_cap(&mut self, frame: FrameRef, slot: crate::CopySlot) -> Result<(), KernelError>;
    /// Deletes the copy in `slot`, unmapping it first if it is mapped. (On seL4 5.0 deleting a frame
    /// cap unmaps the frame only when it is the last cap to it, and a copy never is.)
    fn delete_copy(&mut self, slot: crate::CopySlot) -> Result<(), KernelError>;
    /// Deletes the copy in `slot` of a client whose address space is destroyed next, without
    /// unmapping it: its mapping goes with the paging structures, and the client no longer runs.
    /// Used on a live address space, it would leave the page mapped with no cap to account for it.
    fn delete_copy_in_teardown(&mut self, slot: crate::CopySlot) -> Result<(), KernelError>;
}

/// Maps and unmaps pages in client address spaces.
pub trait MapPages {
    /// Maps the frame `cap` names at `vaddr` in `client`'s address space. A large
    /// frame's copy maps a 2 MiB page (`vaddr` 2 MiB aligned) in a page-directory slot: no page
    /// table is needed, so the only missing levels it reports are the PDPT and the page directory,
    /// and a slot already holding a page table refuses it (seL4's `DeleteFirst`).
    fn map_page(
        &mut self,
        client: ClientId,
        vaddr: u64,
        cap: MappingCap,
        rights: Rights,
    ) -> Result<(), MapError>;
    /// Creates and maps the missing paging structure `level` that covers `vaddr`. The pager asks
    /// before the first map that needs it (it knows which structures a client has); how the
    /// object is made (one retype of several page tables, say) is the implementation's.
    fn map_paging_structure(
        &mut self,
        client: ClientId,
        vaddr: u64,
        level: PagingLevel,
    ) -> Result<(), KernelError>;
    /// Unmaps the mapping made with `cap`, keeping the cap. Unmapping a cap that is not mapped, or
    /// whose address space is gone, succeeds and clears the cap's mapping (as on seL4). A pool
    /// frame's own cap that maps it into the window is refused ([`KernelError::WindowedFrame`]).
    fn unmap_page(&mut self, cap: MappingCap) -> Result<(), KernelError>;
}

/// Fills pool frames through the pager's own window onto them (no map or unmap per fill).
///
/// The window is lazy: a pool frame is mapped there (with its own cap, for good) only before it is
/// first written, so a fresh frame that only ever holds zeroes never is, and its own cap can map
/// it into a client instead. Every read or write of a frame's bytes must come after
/// [`FrameWindow::map_window`] for it. A frame whose own cap maps it into a client cannot be
/// windowed with that cap: reading such a frame (to compress it, say) needs a copy of its cap
/// mapped into the window, or the client's mapping moved to a copy first.
///
/// Which frames are windowed, the platform alone keeps: it made those mappings, and its reads and
/// writes must check them anyway (the pager asks [`FrameWindow::is_windowed`] of a recycled frame;
/// a fresh one is in no window).
pub trait FrameWindow {
    /// Maps pool frame `frame` into the window with its own cap. The pager calls it once per
    /// frame, before the first fill, and only while that cap maps the frame nowhere.
    fn map_window(&mut self, frame: PoolFrame) -> Result<(), KernelError>;
    /// Whether [`FrameWindow::map_window`] has mapped `frame` into the window.
    fn is_windowed(&self, frame: PoolFrame) -> bool;
    /// Maps a fresh frame into the window and writes a whole page, `bytes`, into it: a copy into a
    /// new frame, the commonest fill, in one call (the platform need not look up the window it has
    /// just made).
    fn window_and_write_page(&mut self, frame: PoolFrame, bytes: &[u8; 4096]) -> Result<(), KernelError> {
        self.map_window(frame)?;
        self.write_page(frame, bytes);
        Ok(())
    }
    /// Writes `bytes` into `frame` (windowed) at `offset`. The range lies inside the page.
    fn write_frame(&mut self, frame: PoolFrame, offset: usize, bytes: &[u8]);
    /// Writes a whole page into `frame` (windowed): a copy's fill, with no offset or length for
    /// the platform to check.
    fn write_page(&mut self, frame: PoolFrame, bytes: &[u8; 4096]) {
        self.write_frame(frame, 0, bytes);
    }
    /// Zeroes `length` bytes of `frame` (windowed) from `offset`. The range lies inside the page.
    fn zero_frame(&mut self, frame: PoolFrame, offset: usize, length: usize);
    /// Zeroes the whole of large frame `frame` (one recycled from an earlier client).
    fn zero_large_frame(&mut self, frame: LargeFrame);
    /// Copies the whole of `frame` into `bytes`: an evicted dirty page on its way to the store. The
    /// pager has unmapped it from its client first, so nothing writes it meanwhile.
    fn read_frame(&mut self, frame: PoolFrame, bytes: &mut [u8; 4096]);
}

/// Everything the pager needs from a kernel.
pub trait Platform: RetypeFrames + CopyFrameCaps + MapPages + FrameWindow {}

impl<T: RetypeFrames + CopyFrameCaps + MapPages + FrameWindow> Platform for T {}
