//! Mapping frames into a VSpace, creating the paging structures on the way.
//!
//! `Page_Map` fails with `FailedLookup` when a level is missing; the bits left name it (39: no
//! PDPT, 30: no page directory, 21: no page table). The mapper creates that level, maps it,
//! and retries, so one call covers an address space that starts empty.

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
    /// Still failing after creating every level (should not happen).
    TooManyRetries,
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

/// Maps frames into one VSpace.
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
        // At most one retry per level, plus the final attempt.
        for _ in 0..4 {
            let error = match frame.map(self.vspace, address, rights, VmAttributes::default()) {
                Ok(()) => return Ok(()),
                Err(error) => error,
            };
            match error.missing_level_bits_left() {
                Some(bits_left::MISSING_PDPT) => {
                    let (pdpt, _) = objects.allocate::<Pdpt>(slots).map_err(MapError::Allocation)?;
                    pdpt.map(self.vspace, address, VmAttributes::default()).map_err(MapError::Kernel)?;
                    self.statistics.pdpts += 1;
                }
                Some(bits_left::MISSING_PAGE_DIRECTORY) => {
                    let (directory, _) =
                        objects.allocate::<PageDirectory>(slots).map_err(MapError::Allocation)?;
                    directory.map(self.vspace, address, VmAttributes::default()).map_err(MapError::Kernel)?;
                    self.statistics.page_directories += 1;
                }
                Some(bits_left::MISSING_PAGE_TABLE) => {
                    let (table, _) = objects.allocate::<PageTable>(slots).map_err(MapError::Allocation)?;
                    table.map(self.vspace, address, VmAttributes::default()).map_err(MapError::Kernel)?;
                    self.statistics.page_tables += 1;
                }
                _ => return Err(MapError::Kernel(error)),
            }
        }
        Err(MapError::TooManyRetries)
    }
}
