//! Mapping into a VSpace, creating the paging structures on the way.
//!
//! `Page_Map` fails with `FailedLookup` when a level is missing; the bits left name it (39: no
//! PDPT, 30: no page directory, 21: no page table). [`missing_level`] reads that, and the pager's
//! [`pager::map_with_missing_levels`] (the one such loop, used for clients' pages too) creates the
//! level and retries, so one call covers an address space that starts empty.

use core::fmt;

use pager::PagingLevel;
use sel4::abi::bits_left;
use sel4::{CapRights, Frame, PageDirectory, PageTable, Pdpt, Pml4, VmAttributes};

use crate::cspace::SlotAllocator;
use crate::object_allocator::{AllocationError, ObjectAllocator};

/// Why a mapping failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// The kernel refused the map for a reason the mapper cannot fix.
    Kernel(sel4::Error),
    /// A missing paging structure could not be allocated.
    Allocation(AllocationError),
    /// The map still found this level missing after the mapper had made it.
    LevelStillMissing(PagingLevel),
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Kernel(error) => write!(f, "{error}"),
            Self::Allocation(error) => write!(f, "allocation failed: {error:?}"),
            Self::LevelStillMissing(level) => write!(f, "the {level} was made but is still missing"),
        }
    }
}

/// The paging level a failed map found missing, or the error as it is.
pub fn missing_level(error: sel4::Error) -> pager::MapError<sel4::Error> {
    match error.missing_level_bits_left() {
        Some(bits_left::MISSING_PDPT) => pager::MapError::MissingLevel(PagingLevel::Pdpt),
        Some(bits_left::MISSING_PAGE_DIRECTORY) => pager::MapError::MissingLevel(PagingLevel::PageDirectory),
        Some(bits_left::MISSING_PAGE_TABLE) => pager::MapError::MissingLevel(PagingLevel::PageTable),
        _ => pager::MapError::Kernel(error),
    }
}

/// Paging structures a mapper created, by level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PagingStatistics {
    /// PDPTs created.
    pub pdpts: u64,
    /// Page directories created.
    pub page_directories: u64,
    /// Page tables created.
    pub page_tables: u64,
}

/// Maps into one VSpace.
#[derive(Debug)]
pub struct Mapper {
    vspace: Pml4,
    statistics: PagingStatistics,
}

impl Mapper {
    /// A mapper for `vspace` (which must already be assigned to an ASID pool).
    pub fn new(vspace: Pml4) -> Mapper {
        Mapper { vspace, statistics: PagingStatistics::default() }
    }

    /// What this mapper created so far.
    pub fn statistics(&self) -> PagingStatistics {
        self.statistics
    }

    /// Maps `frame` at `address`, creating missing paging structures.
    pub fn map(
        &mut self,
        objects: &mut ObjectAllocator,
        slots: &mut SlotAllocator,
        frame: Frame,
        address: u64,
        rights: CapRights,
    ) -> Result<(), MapError> {
        let vspace = self.vspace;
        self.map_with(objects, slots, address, || frame.map(vspace, address, rights, VmAttributes::default()))
    }

    /// Runs `map` (a map into this VSpace at `address`), creating the paging structures it finds
    /// missing.
    pub fn map_with(
        &mut self,
        objects: &mut ObjectAllocator,
        slots: &mut SlotAllocator,
        address: u64,
        mut map: impl FnMut() -> sel4::Result<()>,
    ) -> Result<(), MapError> {
        let vspace = self.vspace;
        let make_level = |statistics: &mut PagingStatistics, level| {
            let attributes = VmAttributes::default();
            let (mapped, made) = match level {
                PagingLevel::Pdpt => {
                    let (pdpt, _) = objects.allocate::<Pdpt>(slots).map_err(MapError::Allocation)?;
                    (pdpt.map(vspace, address, attributes), &mut statistics.pdpts)
                }
                PagingLevel::PageDirectory => {
                    let (directory, _) =
                        objects.allocate::<PageDirectory>(slots).map_err(MapError::Allocation)?;
                    (directory.map(vspace, address, attributes), &mut statistics.page_directories)
                }
                PagingLevel::PageTable => {
                    let (table, _) = objects.allocate::<PageTable>(slots).map_err(MapError::Allocation)?;
                    (table.map(vspace, address, attributes), &mut statistics.page_tables)
                }
            };
            mapped.map_err(MapError::Kernel)?;
            *made += 1;
            Ok(())
        };
        pager::map_with_missing_levels(&mut self.statistics, |_| map().map_err(missing_level), make_level)
            .map_err(|error| match error {
                pager::LevelsError::Map(error) => MapError::Kernel(error),
                pager::LevelsError::Level { error, .. } => error,
                pager::LevelsError::StillMissing(level) => MapError::LevelStillMissing(level),
            })
    }
}
