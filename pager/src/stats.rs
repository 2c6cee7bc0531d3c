//! Counters: faults by class and by refusal. (Kernel calls are counted where they are made, by the
//! platform.)

use crate::fault::{FaultClass, RefusalReason};
use crate::seed::FrameContent;

/// Faults served, by class, and refused, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub shared_hit: u64,
    pub image_frame: u64,
    pub copy: u64,
    pub zero: u64,
    pub mixed: u64,
    /// Large (2 MiB) frames mapped, each for 512 pages.
    pub large: u64,
    pub spurious: u64,
    pub zero_shared: u64,
    pub upgrade: u64,
    pub cow_copy: u64,
    /// Evicting clients: soft-unmapped pages mapped again, stored pages brought back, first writes
    /// to pages mapped read-only to learn them.
    pub refault_soft: u64,
    pub refault_store: u64,
    pub dirty: u64,
    pub refused: u64,
}

impl FaultCounts {
    pub(crate) fn record(&mut self, class: FaultClass) {
        *match class {
            FaultClass::SharedHit => &mut self.shared_hit,
            FaultClass::ImageFrame => &mut self.image_frame,
            FaultClass::NewFrame(FrameContent::Copy) => &mut self.copy,
            FaultClass::NewFrame(FrameContent::Zero) => &mut self.zero,
            FaultClass::NewFrame(FrameContent::Mixed) => &mut self.mixed,
            FaultClass::Large => &mut self.large,
            FaultClass::Spurious => &mut self.spurious,
            FaultClass::ZeroShared => &mut self.zero_shared,
            FaultClass::Upgrade => &mut self.upgrade,
            FaultClass::CowCopy => &mut self.cow_copy,
            FaultClass::RefaultSoft => &mut self.refault_soft,
            FaultClass::RefaultStore => &mut self.refault_store,
            FaultClass::Dirty => &mut self.dirty,
        } += 1;
    }

    pub(crate) fn record_refusal(&mut self, _reason: &RefusalReason) {
        self.refused += 1;
    }

    /// Faults served (every class).
    pub fn served(&self) -> u64 {
        self.shared_hit
            + self.image_frame
            + self.copy
            + self.zero
            + self.mixed
            + self.large
            + self.spurious
            + self.zero_shared
            + self.upgrade
            + self.cow_copy
            + self.refault_soft
            + self.refault_store
            + self.dirty
    }
}
