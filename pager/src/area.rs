//! Areas: the pieces of a client address space and what backs each (HelenOS `as_area_t`).

use crate::elf::Segment;
use crate::resident::ResidentPages;
use crate::stats::FaultCounts;
use crate::{ImageId, Rights, SharedId, PAGE_SIZE};

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
}

impl Area {
    pub(crate) fn new(base: u64, end: u64, rights: Rights, backend: Backend, kind: AreaKind) -> Self {
        Self {
            base,
            end,
            rights,
            backend,
            kind,
            shared: None,
            resident: ResidentPages::default(),
            faults: FaultCounts::default(),
        }
    }

    /// First address.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// First address past the end.
    pub fn end(&self) -> u64 {
        self.end
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

    /// Pages resident now.
    pub fn resident_pages(&self) -> u32 {
        self.resident.count()
    }

    /// Faults served or refused in this area.
    pub fn faults(&self) -> &FaultCounts {
        &self.faults
    }

    /// The frame and cap-copy slot of the resident page holding `address`, if there is one (the
    /// recording window of the root task unmaps and remaps pages through their slots).
    pub fn resident_at(&self, address: u64) -> Option<crate::resident::ResidentPage> {
        if !self.contains(address) {
            return None;
        }
        self.resident.at(((address - self.base) / crate::PAGE_SIZE) as u32)
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
