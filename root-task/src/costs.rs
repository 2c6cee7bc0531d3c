//! What served faults cost, by class: the figures behind `[stats] scope=class` and
//! `cargo xtask bench`.
//!
//! The fault loop stamps a fault message on arrival and again just before its reply; the platform
//! times each kernel call it makes. Under `-icount shift=0` the stamps are guest instructions and
//! repeat exactly. The mean of a class carries its rare expensive faults (a pool refill whose
//! retype first clears a whole untyped, a missing paging structure) — real costs, shared out — so
//! the median of the first [`SAMPLE_LIMIT`] faults is kept too: the common path.
//!
//! A zero fill into a shared area's pagemap (its first touch; the pager's class is a zero fill)
//! is kept apart, as `shared-first`: it pays for the pagemap insert, so `zero` holds the plain
//! anonymous and `.bss` zero faults only.
//!
//! Timing a kernel call costs instructions of its own (two time stamps, the sums), which land
//! outside the call's interval and so in the pager's code. The median of the pager's code per fault
//! leaves them out: the platform measures that cost once at start-up
//! (`Sel4Platform::timing_overhead`) and each fault's code sample is less that much per timed call.
//!
//! A copy fault's code includes its 4 KiB copy of file bytes (the `memcpy` of
//! `window_and_write_page`, or of `write_page` into a recycled frame). Its cost depends only on
//! length and alignment, so the platform measures it once at start-up, off the fault path
//! (`Sel4Platform::page_copy_ticks`), and the report gives it beside the medians: the copy class's
//! code less it is the fault path's own cost.

use alloc::vec::Vec;

use pager::{FaultClass, FrameContent, FrameRef};

/// Faults per class whose pager ticks are kept for the median.
pub const SAMPLE_LIMIT: usize = 4096;

/// The cost of the served faults of one class.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassCost {
    pub faults: u64,
    /// Kernel entries the pager made for them, each reply included, and the fewest for one fault
    /// (the common path: a pool refill or a missing paging structure adds to some).
    pub kernel_entries: u64,
    pub kernel_entries_min: u64,
    /// Time-stamp ticks from receiving each fault to replying, summed, and the extremes.
    pub ticks: u64,
    pub ticks_min: u64,
    pub ticks_max: u64,
    /// The part of `ticks` spent inside the pager's kernel calls (the reply not included).
    pub kernel_ticks: u64,
    /// The ticks of the first [`SAMPLE_LIMIT`] faults, and of them the ticks in the pager's own
    /// code: less its kernel calls and the timing of them. One push per fault: the record is on
    /// the next fault's path.
    samples: Vec<(u64, u64)>,
}

impl ClassCost {
    #[inline(always)]
    fn record(&mut self, ticks: u64, kernel_entries: u64, kernel_ticks: u64, timing_overhead: u64) {
        let first = self.faults == 0;
        self.ticks_min = if first { ticks } else { self.ticks_min.min(ticks) };
        self.kernel_entries_min =
            if first { kernel_entries } else { self.kernel_entries_min.min(kernel_entries) };
        self.ticks_max = self.ticks_max.max(ticks);
        self.faults += 1;
        self.ticks += ticks;
        self.kernel_ticks += kernel_ticks;
        self.kernel_entries += kernel_entries;
        if self.samples.len() < SAMPLE_LIMIT {
            // Every entry but the reply's was a timed call.
            let timing = kernel_entries.saturating_sub(1) * timing_overhead;
            self.samples.push((ticks, ticks.saturating_sub(kernel_ticks + timing)));
        }
    }

    /// The median ticks of the kept samples (the upper one of an even count); 0 with none.
    pub fn ticks_median(&self) -> u64 {
        median(self.samples.iter().map(|&(ticks, _)| ticks))
    }

    /// The median ticks in the pager's own code (kernel calls and their timing left out).
    pub fn code_ticks_median(&self) -> u64 {
        median(self.samples.iter().map(|&(_, code)| code))
    }
}

/// The median of `samples` (the upper one of an even count); 0 with none.
fn median(samples: impl Iterator<Item = u64>) -> u64 {
    let mut sorted: Vec<u64> = samples.collect();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
}

/// Served-fault costs by class, in [`FaultCosts::CLASSES`] order, and the kernel entries of the
/// faults that got no reply (their client was stopped instead).
#[derive(Clone, Debug, Default)]
pub struct FaultCosts {
    pub classes: [ClassCost; 14],
    unanswered_entries: u64,
    /// Ticks the timing of one kernel call adds outside its interval (`Sel4Platform::timing_overhead`).
    pub timing_overhead: u64,
    /// Ticks of one 4 KiB copy as a copy fault makes it (`Sel4Platform::page_copy_ticks`).
    pub page_copy_ticks: u64,
}

impl FaultCosts {
    /// The classes and the names reports give them. `shared-first` is the pager's zero fill
    /// into a shared pagemap ([`FaultCosts::record`] is told which zero fills those are).
    pub const CLASSES: [(FaultClass, &'static str); 14] = [
        (FaultClass::ImageFrame, "image"),
        (FaultClass::NewFrame(FrameContent::Copy), "copy"),
        (FaultClass::NewFrame(FrameContent::Zero), "zero"),
        (FaultClass::NewFrame(FrameContent::Zero), "shared-first"),
        (FaultClass::NewFrame(FrameContent::Mixed), "mixed"),
        (FaultClass::SharedHit, "shared"),
        (FaultClass::Spurious, "spurious"),
        (FaultClass::Large, "large"),
        (FaultClass::ZeroShared, "zero-shared"),
        (FaultClass::Upgrade, "upgrade"),
        (FaultClass::CowCopy, "cow-copy"),
        (FaultClass::RefaultSoft, "refault-soft"),
        (FaultClass::RefaultStore, "refault-store"),
        (FaultClass::Dirty, "dirty"),
    ];

    /// Where `shared-first` is in [`FaultCosts::CLASSES`].
    const SHARED_FIRST: usize = 3;

    /// Samples each class has room for from the start.
    const FIRST_SAMPLES: usize = 64;

    /// No costs yet, with room for each class's first samples: the record runs before each reply,
    /// so a class's first faults would otherwise each wait for an allocation (a class of one
    /// fault, its only one).
    pub fn new() -> Self {
        let mut costs = Self::default();
        for class in &mut costs.classes {
            class.samples.reserve(Self::FIRST_SAMPLES);
        }
        costs
    }

    /// Records a served fault that took `ticks` from arrival to reply; its kernel entries include
    /// the reply's. `into_pagemap`: the fault's frame went into a shared area's pagemap, so a zero
    /// fill is a `shared-first`.
    /// Inline: it runs on the fault's path, after its reply's stamp and before the reply.
    #[inline(always)]
    pub fn record(&mut self, served: Served, ticks: u64, into_pagemap: bool) {
        let index = match Self::index(served.class) {
            2 if into_pagemap => Self::SHARED_FIRST,
            index => index,
        };
        // After the fault's measured part (before its reply), outside every measured interval;
        // through the class's own function, for the profiler.
        let overhead = self.timing_overhead;
        (marks::ALL[index])(
            &mut self.classes[index],
            ticks,
            served.kernel_entries,
            served.kernel_ticks,
            overhead,
        );
    }

    /// Where `class` is in [`FaultCosts::CLASSES`] (a zero fill's first place, `zero`): a match,
    /// not a search, since the record is on the next fault's path.
    fn index(class: FaultClass) -> usize {
        match class {
            FaultClass::ImageFrame => 0,
            FaultClass::NewFrame(FrameContent::Copy) => 1,
            FaultClass::NewFrame(FrameContent::Zero) => 2,
            FaultClass::NewFrame(FrameContent::Mixed) => 4,
            FaultClass::SharedHit => 5,
            FaultClass::Spurious => 6,
            FaultClass::Large => 7,
            FaultClass::ZeroShared => 8,
            FaultClass::Upgrade => 9,
            FaultClass::CowCopy => 10,
            FaultClass::RefaultSoft => 11,
            FaultClass::RefaultStore => 12,
            FaultClass::Dirty => 13,
        }
    }

    /// Records the kernel entries spent on a fault that got no reply.
    pub fn unanswered(&mut self, kernel_entries: u64) {
        self.unanswered_entries += kernel_entries;
    }

    /// Kernel entries spent on VM faults, served or not, each reply included.
    pub fn kernel_entries(&self) -> u64 {
        self.classes.iter().map(|c| c.kernel_entries).sum::<u64>() + self.unanswered_entries
    }
}

/// One recording function per class, in [`FaultCosts::CLASSES`] order, each the whole of
/// [`ClassCost::record`]: `cargo xtask profile` (xtask/src/profile.rs) reads a fault's class from
/// the one its record runs, by symbol, in QEMU's log of executed instructions, at no cost beyond
/// the call the record takes anyway. Each keeps its own number, so no two are folded into one.
mod marks {
    use super::ClassCost;

    /// A class's record: the cost, then ticks, kernel entries, kernel ticks and timing overhead.
    pub type Record = fn(&mut ClassCost, u64, u64, u64, u64);

    macro_rules! marks {
        ($($index:literal $name:ident),*) => {
            $(
                #[inline(never)]
                pub fn $name(cost: &mut ClassCost, ticks: u64, entries: u64, kernel_ticks: u64, overhead: u64) {
                    core::hint::black_box($index);
                    cost.record(ticks, entries, kernel_ticks, overhead);
                }
            )*
            pub const ALL: [Record; 14] = [$($name),*];
        };
    }
    marks!(
        0 image,
        1 copy,
        2 zero,
        3 shared_first,
        4 mixed,
        5 shared,
        6 spurious,
        7 large,
        8 zero_shared,
        9 upgrade,
        10 cow_copy,
        11 refault_soft,
        12 refault_store,
        13 dirty
    );
}

/// A fault served by the message being handled, for its cost record.
#[derive(Clone, Copy, Debug)]
pub struct Served {
    pub class: FaultClass,
    /// The frame that now backs the page: a zero fill's pool frame with a second reference went
    /// into a shared pagemap too (`shared-first`).
    pub frame: FrameRef,
    /// Kernel entries (the pager's calls for it, then its reply's) and the ticks of the pager's.
    pub kernel_entries: u64,
    pub kernel_ticks: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use pager::PoolFrame;

    fn served(class: FaultClass, kernel_entries: u64) -> Served {
        Served { class, frame: FrameRef::Pool(PoolFrame(0)), kernel_entries, kernel_ticks: 100 }
    }

    #[test]
    fn keeps_totals_extremes_and_the_median() {
        let mut costs = FaultCosts::default();
        for (ticks, entries) in [(3500, 3), (1_300_000, 41), (3400, 3), (3600, 3)] {
            costs.record(served(FaultClass::NewFrame(FrameContent::Zero), entries), ticks, false);
        }
        costs.record(served(FaultClass::ImageFrame, 3), 3000, false);
        costs.unanswered(5);
        let zero = &costs.classes[2];
        assert_eq!((zero.faults, zero.ticks_min, zero.ticks_max), (4, 3400, 1_300_000));
        assert_eq!(zero.ticks, 3500 + 1_300_000 + 3400 + 3600);
        assert_eq!((zero.kernel_entries, zero.kernel_entries_min), (50, 3));
        assert_eq!(costs.kernel_entries(), 50 + 3 + 5, "every class and the faults without a reply");
        assert_eq!(zero.kernel_ticks, 400);
        assert_eq!(zero.ticks_median(), 3600);
        assert_eq!(costs.classes[0].faults, 1);
        assert_eq!(costs.classes[1], ClassCost::default());
        assert_eq!(costs.classes[1].ticks_median(), 0);
    }

    #[test]
    fn the_code_median_leaves_out_kernel_calls_and_their_timing() {
        let mut costs = FaultCosts { timing_overhead: 20, ..FaultCosts::default() };
        // Three entries: two timed calls (100 ticks inside them) and the reply.
        for ticks in [1000, 1100, 5000] {
            costs.record(served(FaultClass::ImageFrame, 3), ticks, false);
        }
        assert_eq!(costs.classes[0].code_ticks_median(), 1100 - 100 - 2 * 20);
    }

    #[test]
    fn the_median_uses_the_first_samples_only() {
        let mut costs = FaultCosts::default();
        for _ in 0..SAMPLE_LIMIT {
            costs.record(served(FaultClass::NewFrame(FrameContent::Copy), 2), 10, false);
        }
        for _ in 0..SAMPLE_LIMIT + 1 {
            costs.record(served(FaultClass::NewFrame(FrameContent::Copy), 2), 99, false);
        }
        assert_eq!(costs.classes[1].ticks_median(), 10);
        assert_eq!(costs.classes[1].faults, 2 * SAMPLE_LIMIT as u64 + 1);
        assert_eq!(costs.classes[1].ticks_max, 99);
    }

    #[test]
    fn a_zero_fill_into_a_pagemap_is_a_shared_first() {
        let mut costs = FaultCosts::default();
        let zero = FaultClass::NewFrame(FrameContent::Zero);
        costs.record(served(zero, 2), 3000, false);
        costs.record(served(zero, 2), 4000, true);
        costs.record(served(zero, 2), 4100, true);
        // Only a zero fill has a shared-first twin: a copy into a pagemap stays a copy.
        costs.record(served(FaultClass::NewFrame(FrameContent::Copy), 3), 5000, true);
        assert_eq!(FaultCosts::CLASSES[2].1, "zero");
        assert_eq!(FaultCosts::CLASSES[FaultCosts::SHARED_FIRST].1, "shared-first");
        assert_eq!((costs.classes[2].faults, costs.classes[2].ticks), (1, 3000));
        assert_eq!((costs.classes[3].faults, costs.classes[3].ticks), (2, 8100));
        assert_eq!(costs.classes[1].faults, 1);
    }

    #[test]
    fn every_class_is_recorded_in_its_own_place() {
        for (index, (class, name)) in FaultCosts::CLASSES.iter().enumerate() {
            if index == FaultCosts::SHARED_FIRST {
                continue;
            }
            assert_eq!(FaultCosts::index(*class), index, "{name}");
        }
    }
}
