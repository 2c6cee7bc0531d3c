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
    /// Counts a fault of `class` in each of `counts` (the pager's, its client's, its area's) with
    /// one dispatch on the class, not one per set: the fault path counts every fault three times.
    #[inline(always)]
    pub(crate) fn record_in(counts: [&mut FaultCounts; 3], class: FaultClass) {
        macro_rules! count {
            ($field:ident) => {
                for counts in counts {
                    counts.$field += 1;
                }
            };
        }
        match class {
            FaultClass::SharedHit => count!(shared_hit),
            FaultClass::ImageFrame => count!(image_frame),
            FaultClass::NewFrame(FrameContent::Copy) => count!(copy),
            FaultClass::NewFrame(FrameContent::Zero) => count!(zero),
            FaultClass::NewFrame(FrameContent::Mixed) => count!(mixed),
            FaultClass::Large => count!(large),
            FaultClass::Spurious => count!(spurious),
            FaultClass::ZeroShared => count!(zero_shared),
            FaultClass::Upgrade => count!(upgrade),
            FaultClass::CowCopy => count!(cow_copy),
            FaultClass::RefaultSoft => count!(refault_soft),
            FaultClass::RefaultStore => count!(refault_store),
            FaultClass::Dirty => count!(dirty),
        }
    }

    pub(crate) fn record_refusal(&mut self, _reason: &RefusalReason) {
        self.refused += 1;
    }

    /// How many of [`Self::by_class`]'s classes come before eviction's (`refault-soft`,
    /// `refault-store`, `dirty`), which only clients with an `evict` mode take.
    pub const BEFORE_EVICTION: usize = 9;

    /// Each class of served fault but `spurious`, with its count, as `[stats]` lines name and order
    /// them (the root task's report, a replay's total line, the agreement of the two, the
    /// experiments' tables).
    pub fn by_class(&self) -> impl Iterator<Item = (&'static str, u64)> {
        let mut counts = *self;
        counts.classes_mut().map(|(name, count)| (name, *count)).into_iter()
    }

    /// The count of the class `name` (as [`Self::by_class`] names it), to fill from a `[stats]`
    /// line; `None` for a name that is not a class.
    pub fn class_mut(&mut self, name: &str) -> Option<&mut u64> {
        self.classes_mut().into_iter().find(|(class, _)| *class == name).map(|(_, count)| count)
    }

    /// The one list of class names, in `[stats]` order.
    fn classes_mut(&mut self) -> [(&'static str, &mut u64); 12] {
        [
            ("image", &mut self.image_frame),
            ("copy", &mut self.copy),
            ("zero", &mut self.zero),
            ("mixed", &mut self.mixed),
            ("shared", &mut self.shared_hit),
            ("large", &mut self.large),
            ("zero-shared", &mut self.zero_shared),
            ("upgrade", &mut self.upgrade),
            ("cow-copy", &mut self.cow_copy),
            ("refault-soft", &mut self.refault_soft),
            ("refault-store", &mut self.refault_store),
            ("dirty", &mut self.dirty),
        ]
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

#[cfg(test)]
mod tests {
    use super::FaultCounts;
    use crate::fault::FaultClass;
    use crate::seed::FrameContent;

    #[test]
    fn record_in_counts_the_class_once_in_each_set() {
        let (mut pager, mut client, mut area) = Default::default();
        let classes = [
            FaultClass::ImageFrame,
            FaultClass::NewFrame(FrameContent::Zero),
            FaultClass::NewFrame(FrameContent::Zero),
            FaultClass::Spurious,
        ];
        for class in classes {
            FaultCounts::record_in([&mut pager, &mut client, &mut area], class);
        }
        let expected = FaultCounts { image_frame: 1, zero: 2, spurious: 1, ..Default::default() };
        assert_eq!((pager, client, area), (expected, expected, expected));
        assert_eq!(expected.served(), 4);
    }

    #[test]
    fn by_class_names_every_class_but_spurious_once() {
        let counts = FaultCounts {
            shared_hit: 1,
            image_frame: 2,
            copy: 3,
            zero: 4,
            mixed: 5,
            large: 6,
            spurious: 7,
            zero_shared: 8,
            upgrade: 9,
            cow_copy: 10,
            refault_soft: 11,
            refault_store: 12,
            dirty: 13,
            refused: 14,
        };
        let classes: alloc::vec::Vec<_> = counts.by_class().collect();
        assert_eq!(classes.iter().map(|(_, count)| count).sum::<u64>(), counts.served() - counts.spurious);
        let names: alloc::collections::BTreeSet<_> = classes.iter().map(|(name, _)| name).collect();
        assert_eq!(names.len(), classes.len());
        assert_eq!(classes[FaultCounts::BEFORE_EVICTION], ("refault-soft", 11));
    }

    #[test]
    fn class_mut_fills_what_by_class_reads() {
        let mut counts = FaultCounts::default();
        for (index, (name, _)) in FaultCounts::default().by_class().enumerate() {
            *counts.class_mut(name).unwrap() = index as u64 + 1;
        }
        assert!(counts.by_class().enumerate().all(|(index, (_, count))| count == index as u64 + 1));
        assert_eq!((counts.spurious, counts.refused), (0, 0));
        assert_eq!(counts.class_mut("spurious"), None);
    }
}
