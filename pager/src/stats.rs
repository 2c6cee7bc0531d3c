//! Counters: faults by class and by refusal, kernel operations issued.

use crate::fault::{FaultClass, RefusalReason};

/// Faults served, by class, and refused, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub shared_hit: u64,
    pub image_frame: u64,
    pub copy: u64,
    pub zero: u64,
    pub mixed: u64,
    pub spurious: u64,
    pub refused: u64,
}

impl FaultCounts {
    pub(crate) fn record(&mut self, class: FaultClass) {
        *match class {
            FaultClass::SharedHit => &mut self.shared_hit,
            FaultClass::ImageFrame => &mut self.image_frame,
            FaultClass::Copy => &mut self.copy,
            FaultClass::Zero => &mut self.zero,
            FaultClass::Mixed => &mut self.mixed,
            FaultClass::Spurious => &mut self.spurious,
        } += 1;
    }

    pub(crate) fn record_refusal(&mut self, _reason: &RefusalReason) {
        self.refused += 1;
    }

    /// Faults served (every class).
    pub fn served(&self) -> u64 {
        self.shared_hit + self.image_frame + self.copy + self.zero + self.mixed + self.spurious
    }
}

/// Kernel operations the pager asked its platform for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelOperations {
    pub retype: u64,
    pub copy_cap: u64,
    pub map_page: u64,
    pub map_paging_structure: u64,
    pub unmap_page: u64,
    pub delete_copy: u64,
}

impl KernelOperations {
    /// Every operation, added up.
    pub fn total(&self) -> u64 {
        self.retype
            + self.copy_cap
            + self.map_page
            + self.map_paging_structure
            + self.unmap_page
            + self.delete_copy
    }
}
