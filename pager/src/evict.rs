//! Eviction under memory pressure: a mode per client (none, FIFO, clock by unmap sampling), the
//! pages an evicting client holds in frames of its own, and what eviction counted.
//!
//! seL4 5.0 shows a user-level pager neither accessed nor dirty bits on x86_64, so both are learnt
//! from faults, and every decision is driven by fault counts, never by time (runs repeat exactly):
//! - **Dirty.** An evicting client's writable pages are mapped read-only until their first write;
//!   that write faults (x86 error code 0x7) and the pager remaps the same frame writable
//!   ([`crate::FaultClass::Dirty`]). A page never written is *clean*: it holds exactly what the seed's
//!   path would fill it with again.
//! - **Referenced (clock).** The hand *soft-unmaps* a resident page: unmapped, frame and cap copy
//!   kept. A touch maps the same frame again ([`crate::FaultClass::RefaultSoft`]: no copy, no
//!   allocation), which is the page's reference; a page still soft-unmapped when the hand comes
//!   round again is evicted. FIFO evicts the page resident longest.
//!
//! An evicted clean page is dropped (its next touch takes the seed's path); a dirty one goes to the
//! pager's compressed store ([`crate::store`]) and its next touch decompresses it into a fresh frame
//! ([`crate::FaultClass::RefaultStore`]).
//!
//! **What can be evicted**: a page of a private area mapped from a pool frame the client's own fault
//! made (copy, zero, mixed, and the frames zero-page's upgrade and cow's copy made). Never: image
//! frames and the shared zero frame (they cost the pool nothing), pages of shared areas (a pagemap
//! frame is mapped by other clients too), large frames (an evicting client is served in 4 KiB pages).
//!
//! **Whom the pool takes from.** When the image's frame pool is exhausted, the pager evicts from the
//! evicting client with the most frames over its *share*: `min(budget, pool frames / live clients)`
//! (a client with a budget below the even split has its budget as its share, so its unused room goes
//! to the others). Ties go to the lowest client number. A client with mode none is never a victim.

use alloc::collections::{BTreeMap, VecDeque};

/// How a client's pages are replaced when it reaches its budget or the pool is exhausted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EvictMode {
    /// No eviction: a client at its budget, or finding the pool exhausted, is stopped (the pager's
    /// behaviour without this module, exactly).
    #[default]
    None,
    /// The page resident longest goes first.
    Fifo,
    /// Clock by unmap sampling (second chance): see the module documentation.
    Clock,
}

impl EvictMode {
    /// Every mode, in the order of their codes.
    pub const ALL: [Self; 3] = [Self::None, Self::Fifo, Self::Clock];

    /// The name manifests and reports use.
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Fifo => "fifo",
            Self::Clock => "clock",
        }
    }

    /// The mode a name stands for.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|mode| mode.name() == name)
    }

    /// The boot image's number for the mode (0 none, 1 fifo, 2 clock).
    pub const fn code(self) -> u32 {
        match self {
            Self::None => 0,
            Self::Fifo => 1,
            Self::Clock => 2,
        }
    }

    /// The mode of a boot-image number.
    pub fn from_code(code: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|mode| mode.code() == code)
    }

    /// Whether a client in this mode is kept running by eviction.
    pub const fn evicts(self) -> bool {
        !matches!(self, Self::None)
    }
}

impl core::fmt::Display for EvictMode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// What eviction did: the pager's totals, and per client and per area (an eviction counts in the
/// client and area that lost the page, a decompression in those that faulted it back).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvictCounts {
    /// Clean pages dropped (their next touch takes the seed's path).
    pub evictions_clean: u64,
    /// Dirty pages moved to the store.
    pub evictions_dirty: u64,
    /// Pages the clock hand soft-unmapped (frame kept) to sample their reference.
    pub soft_unmaps: u64,
    /// Dirty pages that were all zeroes: stored as a marker, no bytes, not compressed.
    pub zero_pages: u64,
    /// Dirty pages compressed (the rest of `evictions_dirty`).
    pub compressions: u64,
    /// Of those, pages that did not shrink and are stored as they are.
    pub incompressible: u64,
    /// Bytes given to the compressor (4096 per compression).
    pub bytes_in: u64,
    /// Bytes the store took for them (compressed, or raw when that was no smaller).
    pub bytes_stored: u64,
    /// Stored pages taken back out on a touch (zero markers included).
    pub decompressions: u64,
    /// Stored bytes read back by those.
    pub bytes_out: u64,
    /// Meter ticks spent compressing and decompressing ([`crate::Pager::set_meter`]; 0 without one).
    pub compress_ticks: u64,
    pub decompress_ticks: u64,
    /// Faults refused because the store was full.
    pub store_full: u64,
}

impl EvictCounts {
    /// Pages evicted, clean and dirty.
    pub fn evictions(&self) -> u64 {
        self.evictions_clean + self.evictions_dirty
    }

    /// The compression ratio of the pages compressed so far, in thousandths (bytes given to the
    /// compressor per byte stored × 1000); `None` before the first compression. Zero markers are
    /// not in it.
    pub fn ratio_milli(&self) -> Option<u64> {
        (self.bytes_stored > 0).then(|| self.bytes_in * 1000 / self.bytes_stored)
    }

    /// Adds `other`'s counts to these (a report's sum over areas or clients).
    pub fn add(&mut self, other: &Self) {
        let Self {
            evictions_clean,
            evictions_dirty,
            soft_unmaps,
            zero_pages,
            compressions,
            incompressible,
            bytes_in,
            bytes_stored,
            decompressions,
            bytes_out,
            compress_ticks,
            decompress_ticks,
            store_full,
        } = *other;
        self.evictions_clean += evictions_clean;
        self.evictions_dirty += evictions_dirty;
        self.soft_unmaps += soft_unmaps;
        self.zero_pages += zero_pages;
        self.compressions += compressions;
        self.incompressible += incompressible;
        self.bytes_in += bytes_in;
        self.bytes_stored += bytes_stored;
        self.decompressions += decompressions;
        self.bytes_out += bytes_out;
        self.compress_ticks += compress_ticks;
        self.decompress_ticks += decompress_ticks;
        self.store_full += store_full;
    }
}

/// An evictable page's state, learnt from faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tracked {
    /// Written since it was filled: evicting it must keep its bytes.
    pub(crate) dirty: bool,
    /// Unmapped by the clock hand, frame and copy kept.
    pub(crate) soft: bool,
    /// Its entry in the ring; an entry with another ticket is left over from an earlier life of
    /// the page (unmapped, evicted) and is skipped.
    ticket: u32,
}

/// What the replacement order asks the pager to do next with a page (by virtual page number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Evict it.
    Evict(u32),
    /// Clock: soft-unmap it (it was mapped when the hand came).
    SoftUnmap(u32),
}

/// An evicting client's evictable pages, by virtual page number (areas lie below 4 GiB), in the
/// order they became resident.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    pub(crate) mode: EvictMode,
    pages: BTreeMap<u32, Tracked>,
    /// FIFO order, and the clock's circle with its hand at the front.
    ring: VecDeque<(u32, u32)>,
    next_ticket: u32,
    pub(crate) counts: EvictCounts,
}

impl Tracker {
    pub(crate) fn new(mode: EvictMode) -> Self {
        Self { mode, ..Self::default() }
    }

    /// A page just made resident in a frame of the client's own, mapped (and writable when dirty).
    pub(crate) fn add(&mut self, vpn: u32, dirty: bool) {
        let ticket = self.next_ticket;
        self.next_ticket = self.next_ticket.wrapping_add(1);
        self.pages.insert(vpn, Tracked { dirty, soft: false, ticket });
        self.ring.push_back((vpn, ticket));
    }

    pub(crate) fn get_mut(&mut self, vpn: u32) -> Option<&mut Tracked> {
        self.pages.get_mut(&vpn)
    }

    /// Forgets a page (evicted, unmapped, or advised away).
    pub(crate) fn remove(&mut self, vpn: u32) -> Option<Tracked> {
        self.pages.remove(&vpn)
    }

    /// Whether a page in `vpns` is tracked.
    pub(crate) fn any_in(&self, vpns: core::ops::Range<u32>) -> bool {
        self.pages.range(vpns).next().is_some()
    }

    /// Pages tracked (resident in the client's own frames).
    pub(crate) fn len(&self) -> usize {
        self.pages.len()
    }

    /// The next step of the replacement order, `None` when no page is evictable. FIFO evicts the
    /// front page; the clock soft-unmaps a mapped page under the hand and moves on, and evicts one
    /// still soft-unmapped. After at most one turn of soft-unmaps every page is soft, so the caller
    /// loops until an eviction at most `len() + 1` times.
    pub(crate) fn next_step(&mut self) -> Option<Step> {
        while let Some((vpn, ticket)) = self.ring.pop_front() {
            let Some(page) = self.pages.get_mut(&vpn).filter(|p| p.ticket == ticket) else {
                continue; // Left over from an earlier life of the page.
            };
            if self.mode == EvictMode::Clock && !page.soft {
                page.soft = true;
                self.ring.push_back((vpn, ticket));
                return Some(Step::SoftUnmap(vpn));
            }
            // Until the pager carries the eviction out: it puts the page back if it cannot.
            self.ring.push_front((vpn, ticket));
            return Some(Step::Evict(vpn));
        }
        None
    }

    /// Takes page `vpn`, which [`Self::next_step`] named for eviction, out of the order.
    pub(crate) fn take(&mut self, vpn: u32) -> Option<Tracked> {
        if self.ring.front().is_some_and(|&(front, _)| front == vpn) {
            self.ring.pop_front();
        }
        self.pages.remove(&vpn)
    }

    /// The first clean page in replacement order (what goes instead of a dirty page the full store
    /// cannot take).
    pub(crate) fn first_clean(&self) -> Option<u32> {
        self.ring
            .iter()
            .find(|(vpn, ticket)| self.pages.get(vpn).is_some_and(|p| p.ticket == *ticket && !p.dirty))
            .map(|&(vpn, _)| vpn)
    }

    /// Heap bytes the tracker holds (an estimate: a B-tree entry and a ring slot per page).
    pub(crate) fn metadata_bytes(&self) -> usize {
        self.pages.len() * 24 + self.ring.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::{EvictMode, Step, Tracker};

    #[test]
    fn names_and_codes_round_trip() {
        for mode in EvictMode::ALL {
            assert_eq!(EvictMode::from_name(mode.name()), Some(mode));
            assert_eq!(EvictMode::from_code(mode.code()), Some(mode));
        }
        assert_eq!(EvictMode::from_name("lru"), None);
        assert_eq!(EvictMode::from_code(3), None);
        assert!(!EvictMode::None.evicts() && EvictMode::Clock.evicts());
    }

    #[test]
    fn fifo_names_the_oldest_page_and_skips_forgotten_ones() {
        let mut tracker = Tracker::new(EvictMode::Fifo);
        for vpn in [7, 3, 9] {
            tracker.add(vpn, false);
        }
        tracker.remove(7);
        assert_eq!(tracker.next_step(), Some(Step::Evict(3)));
        assert!(tracker.take(3).is_some());
        // A page made resident again goes to the back, its old entry ignored.
        tracker.add(7, true);
        assert_eq!(tracker.next_step(), Some(Step::Evict(9)));
        tracker.take(9);
        assert_eq!(tracker.next_step(), Some(Step::Evict(7)));
        tracker.take(7);
        assert_eq!(tracker.next_step(), None);
    }

    #[test]
    fn the_clock_gives_a_second_chance() {
        let mut tracker = Tracker::new(EvictMode::Clock);
        tracker.add(1, false);
        tracker.add(2, false);
        assert_eq!(tracker.next_step(), Some(Step::SoftUnmap(1)));
        assert_eq!(tracker.next_step(), Some(Step::SoftUnmap(2)));
        // Page 1 is touched again (remapped): its second chance.
        tracker.get_mut(1).unwrap().soft = false;
        assert_eq!(tracker.next_step(), Some(Step::SoftUnmap(1)));
        assert_eq!(tracker.next_step(), Some(Step::Evict(2)));
        tracker.take(2);
        assert_eq!(tracker.next_step(), Some(Step::Evict(1)));
    }

    #[test]
    fn the_first_clean_page_is_found_in_order() {
        let mut tracker = Tracker::new(EvictMode::Fifo);
        tracker.add(4, true);
        tracker.add(5, false);
        tracker.add(6, false);
        assert_eq!(tracker.first_clean(), Some(5));
        tracker.get_mut(5).unwrap().dirty = true;
        assert_eq!(tracker.first_clean(), Some(6));
    }
}
