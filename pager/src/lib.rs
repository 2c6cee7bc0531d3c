//! The portable core of a user-level ELF pager: areas, fault resolution, shared pagemaps, frames.
//!
//! A client address space is a set of [`Area`]s, each backed by a segment of an ELF image, by zeroes, or
//! by nothing (a stack guard, or a reserved page such as the IPC buffer). An app's areas come from the
//! app ABI's list (`abi::app_areas`, added by [`Pager::add_app`]); the `abi` crate is the pager's only
//! dependency of the project's own, and it knows nothing of the pager. When a client touches an unmapped page, [`Pager::handle_fault`] finds the
//! area, checks the access, decides which frame backs the page — following HelenOS's
//! `backend_elf.c` case by case — fills it and maps it through the [`platform`] traits.
//!
//! Design principles:
//! - **Portable and checked on the host.** `no_std`, no `unsafe`, no kernel types: everything the kernel
//!   does is behind [`platform`]'s small traits, which the seL4 root task and the host model implement.
//! - **The pager decides, the kernel obeys.** Frame numbers, cap-copy slots and paging-structure requests
//!   are chosen here and counted exactly, so accounting can be checked to the frame after teardown.
//! - **Clients cannot hurt the pager.** Every client-caused failure is a typed [`FaultRefusal`] naming
//!   the client, address, access and reason; nothing panics on a client's behalf and nothing leaks.
//! - **Policy is separate from semantics.** A [`Policy`] picks when and how many pages to resolve; what
//!   a page holds is fixed by the ELF file.
//!
//! Memory: the pager uses `alloc` (a heap the root task sizes from the image) for its tables, with every
//! capacity — clients, areas, frames, cap-copy slots — fixed by [`PagerConfig`] and checked, so a heap
//! sized for the configuration cannot run out. Small fixed sets (segments) use `heapless`.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod advise;
pub mod app;
pub mod area;
pub mod elf;
pub mod evict;
pub mod fault;
pub mod frames;
pub mod pager;
pub mod platform;
pub mod policy;
pub mod resident;
pub mod seed;
pub mod stats;
pub mod store;
pub mod structures;

pub use advise::{Advice, AdviseError};
pub use app::AppAreaError;
pub use area::{Area, AreaError, AreaKind, Backend};
pub use elf::{ElfError, ElfImage, Segment};
pub use evict::{EvictCounts, EvictMode};
pub use fault::{Access, Fault, FaultClass, FaultRefusal, FaultResolution, RefusalReason};
pub use frames::{Allocation, AllocationError, FrameCounts, LargeFrameCounts};
pub use pager::{Client, Pager, PagerConfig, PagerError, ShareError, TeardownReport};
pub use platform::{KernelError, MapError, MappingCap, PagingLevel, Platform};
pub use policy::{AppPolicy, AreaPolicy, AreaView, BuiltinPolicy, Mode, PageRule, Policy, PolicyKind};
pub use seed::{map_with_missing_levels, FrameContent, LevelsError};
pub use stats::FaultCounts;
pub use store::{StoreCounts, StoredPages};
pub use structures::PagingStructures;

/// Bytes in a page, the pager's unit of areas, faults and accounting.
pub const PAGE_SIZE: u64 = 4096;

/// Bytes in a large page (an x86_64 2 MiB page, seL4's `LargePage`), which a large-pages policy maps
/// for a whole aligned span of an anonymous area in one go.
pub const LARGE_PAGE_SIZE: u64 = 2 << 20;

/// Pages a large page covers; a large frame is charged as this many frames.
pub const PAGES_PER_LARGE_PAGE: u32 = (LARGE_PAGE_SIZE / PAGE_SIZE) as u32;

/// Client areas stay below 4 GiB: seL4 5.0 on x86_64 passes fault addresses through a `uint32_t`
/// (`handleVMFault`), so a fault above this limit would reach the pager truncated.
pub const USER_ADDRESS_LIMIT: u64 = 1 << 32;

/// Rounds down to a page boundary.
pub const fn page_align_down(address: u64) -> u64 {
    address & !(PAGE_SIZE - 1)
}

/// Rounds up to a page boundary (saturating at the top page).
pub const fn page_align_up(address: u64) -> u64 {
    match address.checked_add(PAGE_SIZE - 1) {
        Some(a) => page_align_down(a),
        None => page_align_down(u64::MAX),
    }
}

/// Access rights of an area or mapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rights {
    pub read: bool,
    pub write: bool,
    pub execute: bool,
}

impl Rights {
    pub const READ: Self = Self { read: true, write: false, execute: false };
    pub const READ_WRITE: Self = Self { read: true, write: true, execute: false };
    pub const READ_EXECUTE: Self = Self { read: true, write: false, execute: true };
}

impl core::fmt::Display for Rights {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let flag = |on, c| if on { c } else { '-' };
        write!(f, "{}{}{}", flag(self.read, 'r'), flag(self.write, 'w'), flag(self.execute, 'x'))
    }
}

/// A client of the pager.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub u16);

/// An ELF image registered with the pager.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ImageId(pub u16);

/// A shared object: the pagemap behind an area shared by several clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SharedId(pub u16);

/// A frame retyped from untyped memory, numbered by the pager.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolFrame(pub u32);

/// A page of the boot image (on seL4, one of bootinfo's `userImageFrames`), numbered from its first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImagePage(pub u32);

/// A large (2 MiB) frame retyped from untyped memory of at least 2 MiB, numbered by the pager.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeFrame(pub u32);

/// A slot holding one copy of a frame cap, numbered by the pager; each mapping owns one, but a
/// mapping made with a pool frame's own cap ([`CopySlot::OWN`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CopySlot(pub u32);

impl CopySlot {
    /// Stands for "no copy: the pool frame's own cap" in a resident page's record (no slot pool
    /// reaches this number).
    pub const OWN: Self = Self(u32::MAX);
}

/// Page tables a client's paging-structure retype makes at once: a page table then costs one
/// `PageTable_Map` and an eighth of an `Untyped_Retype` (the root task retypes them from the
/// client's chunk; `sim` counts its retypes by the same number).
pub const PAGE_TABLE_BATCH: u32 = 8;

/// The frame behind a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrameRef {
    /// A pager frame: counted, and freed with its last reference.
    Pool(PoolFrame),
    /// A frame of the boot image: shared by every instance, never freed.
    Image(ImagePage),
    /// A large frame mapping a whole 2 MiB span of one client's anonymous area.
    Large(LargeFrame),
}

impl FrameRef {
    const IMAGE_BIT: u32 = 1 << 31;
    /// Set with [`Self::IMAGE_BIT`] for a large frame, so pool numbers keep their plain encoding.
    const LARGE_BIT: u32 = 1 << 30;

    /// A 32-bit encoding for compact tables (pool numbers stay below 2^31, image and large-frame
    /// numbers below 2^30).
    pub const fn to_bits(self) -> u32 {
        match self {
            Self::Pool(PoolFrame(n)) => n,
            Self::Image(ImagePage(n)) => n | Self::IMAGE_BIT,
            Self::Large(LargeFrame(n)) => n | Self::IMAGE_BIT | Self::LARGE_BIT,
        }
    }

    /// The inverse of [`FrameRef::to_bits`].
    pub const fn from_bits(bits: u32) -> Self {
        if bits & Self::IMAGE_BIT == 0 {
            Self::Pool(PoolFrame(bits))
        } else if bits & Self::LARGE_BIT == 0 {
            Self::Image(ImagePage(bits & !Self::IMAGE_BIT))
        } else {
            Self::Large(LargeFrame(bits & !(Self::IMAGE_BIT | Self::LARGE_BIT)))
        }
    }
}
