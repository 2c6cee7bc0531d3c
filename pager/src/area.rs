//! Areas: the pieces of a client address space and what backs each (HelenOS `as_area_t`).

use alloc::collections::BTreeMap;

use crate::elf::Segment;
use crate::evict::EvictCounts;
use crate::fault::Access;
use crate::policy::{AreaPolicy, Mode};
use crate::resident::ResidentPages;
use crate::seed::{Image, SeedPages};
use crate::stats::FaultCounts;
use crate::{
    page_align_up, CopySlot, ImageId, LargeFrame, Rights, SharedId, LARGE_PAGE_SIZE, PAGES_PER_LARGE_PAGE,
    PAGE_SIZE,
};

/// What fills an area's pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A loadable segment of an image (HelenOS `elf_backend`).
    Segment { image: ImageId, segment: Segment },
    /// Zero-filled memory: heap, stack, shared regions.
    Anonymous,
    /// Never mapped: the page below a stack. Touching it is a reported stack overflow.
    Guard,
    /// Never mapped by the pager and never served: a page the root task maps itself (the IPC
    /// buffer). It is an area so that no other area can cover it; a fault there is refused.
    Reserved,
}

/// What an area is, for reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AreaKind {
    /// PT_LOAD segment number `n` of the client's image.
    Segment(u8),
    Heap,
    Stack,
    StackGuard,
    /// Named shared region number `n` of the image.
    Region(u16),
    /// An area another client shared into this one.
    SharedIn,
    /// The client's IPC buffer page (reserved, see [`Backend::Reserved`]).
    IpcBuffer,
}

impl core::fmt::Display for AreaKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Segment(n) => write!(f, "segment {n}"),
            Self::Heap => f.write_str("heap"),
            Self::Stack => f.write_str("stack"),
            Self::StackGuard => f.write_str("stack guard"),
            Self::Region(n) => write!(f, "region {n}"),
            Self::SharedIn => f.write_str("shared area"),
            Self::IpcBuffer => f.write_str("IPC buffer page"),
        }
    }
}

/// A whole 2 MiB span of an area that a large-pages policy covers, once it has been touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LargeSpan {
    /// Mapped with one large frame through the copy in `slot`.
    Mapped { frame: LargeFrame, slot: CopySlot },
    /// Served in 4 KiB pages (no large frame could be had when it was first touched): their page
    /// table holds the page-directory slot a large page would need (seL4 refuses a large mapping
    /// over it), so the span stays small.
    Small,
}

/// One area of one client.
#[derive(Debug)]
pub struct Area {
    pub(crate) base: u64,
    pub(crate) end: u64,
    pub(crate) rights: Rights,
    pub(crate) backend: Backend,
    pub(crate) kind: AreaKind,
    pub(crate) shared: Option<SharedId>,
    pub(crate) resident: ResidentPages,
    pub(crate) faults: FaultCounts,
    pub(crate) policy: AreaPolicy,
    /// Some pages may be mapped read-only first (zero-page or cow, in an area no pagemap shares):
    /// the one flag the fault path reads before it looks at the rules.
    pub(crate) read_only_first: bool,
    /// The fault path's plain case for this area: no page read-only first and no fault-around
    /// in its rules, so a fault is one resolution by the seed's cases (`Pager::handle_fault`).
    pub(crate) plain: bool,
    /// The plain case but for pages read-only first: zero-page or cow and no fault-around
    /// (`Pager::serve_read_only_first`).
    pub(crate) read_only_plain: bool,
    /// The seed's common cases for this area's pages, worked out when it was made.
    pub(crate) seed: SeedPages,
    /// The accesses a fault here may make ([`Access::bit`]): `check_access`'s answer worked out
    /// once, so the fault path tests one bit and asks it only to name a refusal.
    pub(crate) accesses: u8,
    /// Pages after a faulting one to map as well, when an advise call set it (sequential or
    /// random); `None` leaves it to the policy.
    pub(crate) fault_around: Option<u32>,
    /// The 2 MiB spans a large-pages policy has decided, by span number (address >> 21).
    pub(crate) large: BTreeMap<u32, LargeSpan>,
    /// Spans in `large` that are mapped with a large frame.
    pub(crate) large_mapped: u32,
    /// What eviction did to this area's pages (an evicting client's).
    pub(crate) evict: EvictCounts,
}

impl Area {
    /// An area of `kind` from `base` to `end` backed by `backend` (whose image, if any, is in
    /// `images`), with the seed's rules.
    pub(crate) fn new(
        base: u64,
        end: u64,
        rights: Rights,
        backend: Backend,
        kind: AreaKind,
        images: &[Image<'_>],
    ) -> Self {
        Self {
            seed: SeedPages::of(backend, images),
            accesses: match backend {
                Backend::Guard | Backend::Reserved => 0,
                Backend::Segment { .. } | Backend::Anonymous => {
                    let bit = |allowed: bool, access: Access| if allowed { access.bit() } else { 0 };
                    Access::Read.bit()
                        | bit(rights.write, Access::Write)
                        | bit(rights.execute, Access::Execute)
                }
            },
            base,
            end,
            rights,
            backend,
            kind,
            shared: None,
            resident: ResidentPages::default(),
            faults: FaultCounts::default(),
            policy: AreaPolicy::SEED,
            read_only_first: false,
            plain: true,
            read_only_plain: false,
            fault_around: None,
            large: BTreeMap::new(),
            large_mapped: 0,
            evict: EvictCounts::default(),
        }
    }

    /// Puts `policy` in force. A shared area never maps pages read-only first: its pagemap holds the
    /// one frame every client maps, so a write must not give the writer a frame of its own.
    pub(crate) fn set_policy(&mut self, policy: AreaPolicy) {
        self.policy = policy;
        let stand_in = |mode| matches!(mode, Mode::ZeroPage | Mode::Cow);
        self.read_only_first =
            self.shared.is_none() && (stand_in(policy.file.mode) || stand_in(policy.zero.mode));
        let around = policy.file.around | policy.zero.around != 0;
        self.plain = !self.read_only_first && !around;
        self.read_only_plain = self.read_only_first && !around;
    }

    /// The policy in force.
    pub fn policy(&self) -> AreaPolicy {
        self.policy
    }

    /// The span number of the whole 2 MiB span around `vaddr` when a large frame may back it: the
    /// span lies wholly in this area, the area is private and writable, and every page of the span
    /// is zero-filled (anonymous memory, or a segment's part at or above its file end).
    pub(crate) fn large_span(&self, vaddr: u64) -> Option<u32> {
        let base = vaddr & !(LARGE_PAGE_SIZE - 1);
        if base < self.base
            || base + LARGE_PAGE_SIZE > self.end
            || self.shared.is_some()
            || !self.rights.write
        {
            return None;
        }
        let zero_filled = match self.backend {
            Backend::Anonymous => true,
            Backend::Segment { segment, .. } => base >= page_align_up(segment.file_end()),
            Backend::Guard | Backend::Reserved => false,
        };
        zero_filled.then_some((base / LARGE_PAGE_SIZE) as u32)
    }

    /// First address.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// First address past the end.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The index of the page holding `address`, an address this area covers.
    #[inline(always)]
    pub(crate) fn page_index(&self, address: u64) -> u32 {
        ((address - self.base) / PAGE_SIZE) as u32
    }

    /// Size in pages.
    pub fn pages(&self) -> u32 {
        ((self.end - self.base) / PAGE_SIZE) as u32
    }

    pub fn rights(&self) -> Rights {
        self.rights
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn kind(&self) -> AreaKind {
        self.kind
    }

    /// The shared object, when the area is shared.
    pub fn shared(&self) -> Option<SharedId> {
        self.shared
    }

    /// Pages resident now (a large page counts as the 512 pages it maps).
    pub fn resident_pages(&self) -> u32 {
        self.resident.count() + self.large_mapped * PAGES_PER_LARGE_PAGE
    }

    /// Large pages mapped in this area now.
    pub fn large_pages(&self) -> u32 {
        self.large_mapped
    }

    /// The fault-around an advise call set here (pages after the faulting one), if any.
    pub fn fault_around_advice(&self) -> Option<u32> {
        self.fault_around
    }

    /// Faults served or refused in this area.
    pub fn faults(&self) -> &FaultCounts {
        &self.faults
    }

    /// What eviction did to this area's pages (all zero unless its client evicts).
    pub fn evict_counts(&self) -> &EvictCounts {
        &self.evict
    }

    /// The frame and cap-copy slot of the resident page holding `address`, if there is one (the
    /// recording window of the root task unmaps and remaps pages through their slots).
    pub fn resident_at(&self, address: u64) -> Option<crate::resident::ResidentPage> {
        if !self.contains(address) {
            return None;
        }
        self.resident.at(self.page_index(address))
    }

    pub(crate) fn contains(&self, address: u64) -> bool {
        address >= self.base && address < self.end
    }
}

/// Why an area could not be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AreaError {
    /// Base or size is not a multiple of the page size, or the size is zero.
    Unaligned { base: u64, size: u64 },
    /// The area would reach past the user address limit or cover page zero.
    OutsideUserRange { base: u64, size: u64 },
    /// The area overlaps an existing one.
    Overlaps { base: u64, size: u64, existing: AreaKind },
    /// The client already has as many areas as allowed.
    TooManyAreas { limit: usize },
}

impl core::fmt::Display for AreaError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::Unaligned { base, size } => {
                write!(f, "area at {base:#x} of {size:#x} bytes is empty or not page aligned")
            }
            Self::OutsideUserRange { base, size } => write!(
                f,
                "area at {base:#x} of {size:#x} bytes lies outside {:#x}..{:#x}",
                PAGE_SIZE,
                crate::USER_ADDRESS_LIMIT
            ),
            Self::Overlaps { base, size, existing } => {
                write!(f, "area at {base:#x} of {size:#x} bytes overlaps the {existing}")
            }
            Self::TooManyAreas { limit } => write!(f, "more than {limit} areas in one client"),
        }
    }
}
