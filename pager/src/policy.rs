//! Pager policies: the choices around the seed's fault cases, not the cases themselves.
//!
//! The fault cases (image frame, copy, zero, mixed, pagemap hit) are fixed by the ELF semantics and live
//! in the pager; a policy only chooses *when* and *how many* pages go through them. That keeps a new
//! policy from changing what a client reads. Planned extensions and where they hook in:
//! large pages are [`Policy::large_pages`], consulted before a span's first page is resolved;
//! zero-page sharing and copy-on-write would add a `read_only_first` choice consulted before a frame is
//! allocated, with an upgrade path for write faults on resident read-only pages.

use crate::area::{AreaKind, Backend};

/// What a policy sees of an area.
#[derive(Clone, Copy, Debug)]
pub struct AreaView {
    pub kind: AreaKind,
    pub backend: Backend,
    pub pages: u32,
}

/// A pager policy.
pub trait Policy {
    /// A short name for reports.
    fn name(&self) -> &'static str;

    /// How many pages after the faulting one to resolve as well, within the area.
    fn fault_around(&self, _area: &AreaView) -> u32 {
        0
    }

    /// Whether to resolve every page of the area before the client starts.
    fn populate_at_start(&self, _area: &AreaView) -> bool {
        false
    }

    /// Whether a fault in the area maps a whole 2 MiB large page where it can: the pager takes one
    /// for a span that lies wholly in the area, is private and zero-filled, and is still untouched,
    /// and falls back to 4 KiB pages otherwise (no large frame left, the client's budget).
    fn large_pages(&self, _area: &AreaView) -> bool {
        false
    }
}

/// The policies an image can name. Configuration is data: a manifest picks one of these.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BuiltinPolicy {
    /// HelenOS's behaviour: one page per fault, nothing ahead of time.
    #[default]
    Seed,
    /// Every segment and the stack mapped before the client starts, as seL4_libs' sel4utils loads.
    Eager,
    /// The faulting page and up to `pages` following ones in the same area.
    FaultAround { pages: u32 },
    /// One 2 MiB frame per aligned span of anonymous memory (bss, heap, stack), one fault for 512
    /// pages; 4 KiB pages elsewhere and where a span is not whole.
    LargePages,
}

impl Policy for BuiltinPolicy {
    fn name(&self) -> &'static str {
        match self {
            Self::Seed => "seed",
            Self::Eager => "eager",
            Self::FaultAround { .. } => "fault-around",
            Self::LargePages => "large-pages",
        }
    }

    fn fault_around(&self, area: &AreaView) -> u32 {
        match (self, area.backend) {
            (_, Backend::Guard) => 0,
            (Self::FaultAround { pages }, _) => *pages,
            _ => 0,
        }
    }

    fn populate_at_start(&self, area: &AreaView) -> bool {
        matches!(self, Self::Eager)
            && (matches!(area.backend, Backend::Segment { .. }) || area.kind == AreaKind::Stack)
    }

    fn large_pages(&self, area: &AreaView) -> bool {
        // Segments too: their zero-filled part is the .bss (the pager checks each span is all zero).
        matches!(self, Self::LargePages)
            && matches!(area.kind, AreaKind::Heap | AreaKind::Stack | AreaKind::Segment(_))
    }
}
