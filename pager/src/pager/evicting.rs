//! The fault path of evicting clients ([`crate::evict`]): room made by eviction before a frame is
//! taken, pages mapped read-only until written, soft refaults, the store's refaults, and the
//! eviction of one page (dropped when clean, compressed into the store when dirty).
//!
//! A child of `pager.rs`, so the seed's path stays as it was: an evicting client's fault leaves
//! it at [`Pager::serve_general`] and comes here; the seed's helpers (`classify`, `fill`,
//! `map_frame`) and the zero-page and cow paths are called, not copied. An evicting client's fault
//! resolves one page (no fault-around, no large pages).

use super::*;
use crate::evict::Step;
use crate::frames::{Allocation, AllocationError};
use crate::seed::FrameContent;
use crate::store::{StoreFull, StoredPages};

const PAGE: usize = PAGE_SIZE as usize;

impl<P: Policy> Pager<'_, P> {
    /// Eviction's counts, all clients together (removed ones included).
    pub fn evict_counts(&self) -> EvictCounts {
        self.evict_counts
    }

    /// The compressed store's gauges.
    pub fn store_counts(&self) -> StoreCounts {
        self.store.counts()
    }

    /// Client `client`'s pages in the compressed store now, and their stored bytes (none once it
    /// is removed).
    pub fn stored_pages(&self, client: ClientId) -> StoredPages {
        self.store.client_counts(client)
    }

    /// Gives the pager a clock (on seL4 the TSC, which counts instructions under QEMU's `-icount`)
    /// read before and after each compression and decompression; the differences add up in
    /// [`EvictCounts::compress_ticks`] and [`EvictCounts::decompress_ticks`].
    pub fn set_meter(&mut self, meter: fn() -> u64) {
        self.meter = Some(meter);
    }

    fn now(&self) -> u64 {
        self.meter.map_or(0, |meter| meter())
    }

    fn tracker_mut(&mut self, client: ClientId) -> &mut Tracker {
        self.clients[usize::from(client.0)]
            .as_mut()
            .and_then(|c| c.tracker.as_deref_mut())
            .expect("an evicting client")
    }

    /// Adds to eviction's counts: the pager's, the client's and the area's.
    fn count(&mut self, client: ClientId, area_index: usize, add: impl Fn(&mut EvictCounts)) {
        add(&mut self.evict_counts);
        if let Some(target) = self.clients[usize::from(client.0)].as_mut() {
            if let Some(tracker) = target.tracker.as_deref_mut() {
                add(&mut tracker.counts);
            }
            add(&mut target.areas[area_index].evict);
        }
    }

    /// Serves a checked fault of an evicting client.
    pub(super) fn serve_evicting(
        &mut self,
        platform: &mut impl Platform,
        client: ClientId,
        fault: Fault,
        area_index: usize,
    ) -> Result<FaultResolution, FaultRefusal> {
        let area = &self.clients[usize::from(client.0)].as_ref().expect("live client").areas[area_index];
        let index = area.page_index(fault.address);
        match self.resolve_evicting(platform, client, area_index, index, fault.access, true) {
            Ok((class, frame)) => {
                self.record(client, area_index, class);
                let page = page_align_down(fault.address);
                Ok(FaultResolution { class, page, frame, pages_mapped: class.pages() })
            }
            Err(reason) => self.refuse(client, fault, Some(area_index), reason),
        }
    }

    /// Resolves page `index` of an evicting client's area for `access`, evicting to make room
    /// when `may_evict` (a fault; start-up work and advice take only free room).
    pub(super) fn resolve_evicting(
        &mut self,
        platform: &mut impl Platform,
        client: ClientId,
        area_index: usize,
        index: u32,
        access: Access,
        may_evict: bool,
    ) -> Result<(FaultClass, FrameRef), RefusalReason> {
        let zero_frame = self.zero_frame;
        let target = self.clients[usize::from(client.0)].as_mut().expect("live client");
        let area = &target.areas[area_index];
        let vaddr = area.base + u64::from(index) * PAGE_SIZE;
        let vpn = (vaddr / PAGE_SIZE) as u32;
        let (rights, read_only_first, shared) = (area.rights, area.read_only_first, area.shared.is_some());
        let write = access == Access::Write;

        if let Some(page) = area.resident.at(index) {
            let tracker = target.tracker.as_deref_mut().expect("an evicting client");
            if let Some(state) = tracker.get_mut(vpn) {
                let class = if state.soft {
                    // The clock hand unmapped it: the same frame again, and the page referenced.
                    state.soft = false;
                    state.dirty |= write;
                    FaultClass::RefaultSoft
                } else if write && !state.dirty {
                    // Mapped read-only to learn its first write (0x7): writable now, and dirty.
                    state.dirty = true;
                    let _ = platform.unmap_page(page.cap());
                    FaultClass::Dirty
                } else {
                    return Ok((FaultClass::Spurious, page.frame));
                };
                let rights = Rights { write: rights.write && state.dirty, ..rights };
                remap(platform, &mut target.structures, client, vaddr, page.cap(), rights)?;
                return Ok((class, page.frame));
            }
            // Not the client's own frame (a stand-in of zero-page or cow, the image's, a pagemap's):
            // the usual way, where a write to a stand-in takes a frame, which is then the client's.
            let takes_frame = write && read_only_first && read_only_stand_in(page.frame, zero_frame);
            if takes_frame {
                self.make_room(platform, client, may_evict)?;
            }
            let resolved =
                self.resolve_fault(platform, client, area_index, index, access, read_only_first, false)?;
            if matches!(resolved.0, FaultClass::Upgrade | FaultClass::CowCopy) {
                self.tracker_mut(client).add(vpn, true);
            }
            return Ok(resolved);
        }

        if !shared && self.store.contains(client, vpn) {
            return self.refault_store(platform, client, area_index, index, vpn, may_evict);
        }
        if shared {
            // A pagemap's page, never evicted: it may still take a frame, charged to the client.
            self.make_room(platform, client, may_evict)?;
            return self.resolve_page(platform, client, area_index, index);
        }
        if read_only_first && !write {
            // Zero-page, cow: a read may map a shared frame read-only (the zero frame is made from
            // the pool on first use).
            let served = match self.resolve_read_only_first(platform, client, area_index, index) {
                Some(Err(RefusalReason::OutOfFrames(_))) if may_evict => {
                    self.make_room(platform, client, true)?;
                    self.resolve_read_only_first(platform, client, area_index, index)
                }
                served => served,
            };
            if let Some(served) = served {
                return served;
            }
        }
        let target = self.clients[usize::from(client.0)].as_ref().expect("live client");
        let new = match classify(&target.areas[area_index], index, &self.images) {
            PageSource::Image(page) => {
                let resolved = self.resolve_page(platform, client, area_index, index)?;
                debug_assert_eq!(resolved.1, FrameRef::Image(page));
                return Ok(resolved);
            }
            PageSource::New(new) => new,
        };
        self.make_room(platform, client, may_evict)?;
        let allocation = self.allocate(platform, client, new.content(), may_evict)?;
        let own_cap = match fill(platform, allocation, &new) {
            Ok(own_cap) => own_cap,
            Err(error) => {
                self.frames.release(allocation.frame);
                return Err(RefusalReason::Kernel(error));
            }
        };
        // Writable pages are mapped read-only until written, so the pager learns they are dirty.
        let mapped_rights = Rights { write: rights.write && write, ..rights };
        let class = FaultClass::NewFrame(new.content());
        self.map_own(platform, client, area_index, index, allocation, own_cap, mapped_rights, write)
            .map(|frame| (class, frame))
    }

    /// Maps a frame just allocated for the client (and charged here) at page `index`, and tracks
    /// it; on failure the frame goes back.
    #[allow(clippy::too_many_arguments)]
    fn map_own(
        &mut self,
        platform: &mut impl Platform,
        client: ClientId,
        area_index: usize,
        index: u32,
        allocation: Allocation,
        own_cap: bool,
        rights: Rights,
        dirty: bool,
    ) -> Result<FrameRef, RefusalReason> {
        let Self { clients, slots, .. } = self;
        let target = clients[usize::from(client.0)].as_mut().expect("live client");
        target.charged += 1;
        let vaddr = target.areas[area_index].base + u64::from(index) * PAGE_SIZE;
        let frame = FrameRef::Pool(allocation.frame);
        match map_frame(platform, slots, &mut target.structures, client, vaddr, frame, own_cap, rights) {
            Ok(slot) => {
                target.areas[area_index].resident.insert(index, ResidentPage { frame, slot });
                let tracker = target.tracker.as_deref_mut().expect("an evicting client");
                tracker.add((vaddr / PAGE_SIZE) as u32, dirty);
                Ok(frame)
            }
            Err(reason) => {
                self.release_frame(allocation.frame);
                Err(reason)
            }
        }
    }

    /// A touch of a page evicted to the store: decompressed into a fresh frame, mapped with the
    /// area's rights (it is dirty: the store no longer has it).
    fn refault_store(
        &mut self,
        platform: &mut impl Platform,
        client: ClientId,
        area_index: usize,
        index: u32,
        vpn: u32,
        may_evict: bool,
    ) -> Result<(FaultClass, FrameRef), RefusalReason> {
        self.make_room(platform, client, may_evict)?;
        // Every byte is written: a recycled frame, as a copy takes.
        let allocation = self.allocate(platform, client, FrameContent::Copy, may_evict)?;
        if !platform.is_windowed(allocation.frame) {
            if let Err(error) = platform.map_window(allocation.frame) {
                self.frames.release(allocation.frame);
                return Err(RefusalReason::Kernel(error));
            }
        }
        let mut buffer = core::mem::take(&mut self.page_buffer);
        buffer.resize(PAGE, 0);
        let page: &mut [u8; PAGE] = (&mut buffer[..]).try_into().expect("a page");
        let start = self.now();
        let stored = self.store.take(client, vpn, page).expect("the store holds the page");
        let ticks = self.now().wrapping_sub(start);
        platform.write_page(allocation.frame, page);
        self.count(client, area_index, |c| {
            c.decompressions += 1;
            c.bytes_out += u64::from(stored);
            c.decompress_ticks += ticks;
        });
        let rights =
            self.clients[usize::from(client.0)].as_ref().expect("live client").areas[area_index].rights;
        let mapped = self.map_own(platform, client, area_index, index, allocation, false, rights, true);
        if mapped.is_err() {
            // The page's only copy is in the buffer: back into the store (it came out of it, so it
            // fits again).
            let _ = self.store.put(client, vpn, page);
        }
        self.page_buffer = buffer;
        mapped.map(|frame| (FaultClass::RefaultStore, frame))
    }

    /// A pool frame for `client`; when the pool or the kernel has none and `may_evict`, evicts from
    /// the client most over its share until one is free.
    fn allocate(
        &mut self,
        platform: &mut impl Platform,
        client: ClientId,
        content: FrameContent,
        may_evict: bool,
    ) -> Result<Allocation, RefusalReason> {
        loop {
            match self.frames.allocate(platform, client, content) {
                Ok(allocation) => return Ok(allocation),
                Err(error) if may_evict && self.evict_for_pool(platform)? => {
                    let _: AllocationError = error;
                }
                Err(error) => return Err(RefusalReason::OutOfFrames(error)),
            }
        }
    }

    /// Makes room for one more frame charged to `client`: under its budget (evicting its own pages)
    /// and in the pool (evicting from the client most over its share). Without `may_evict`, only
    /// checks.
    fn make_room(
        &mut self,
        platform: &mut impl Platform,
        client: ClientId,
        may_evict: bool,
    ) -> Result<(), RefusalReason> {
        loop {
            let target = self.clients[usize::from(client.0)].as_ref().expect("live client");
            let Some(budget) = target.budget.filter(|b| target.charged >= *b) else { break };
            if !may_evict || !self.evict_one(platform, client)? {
                return Err(RefusalReason::OverBudget { budget });
            }
        }
        while self.frames.is_exhausted() {
            if !may_evict || !self.evict_for_pool(platform)? {
                let capacity = self.config.frame_capacity;
                return Err(RefusalReason::OutOfFrames(AllocationError::PoolExhausted { capacity }));
            }
        }
        Ok(())
    }

    /// The evicting client with an evictable page that is most over its share of the pool,
    /// `min(budget, pool frames / live clients)`; ties go to the lowest number.
    fn pool_victim(&self) -> Option<ClientId> {
        let live = self.clients().count().max(1) as u32;
        let even = self.config.frame_capacity / live;
        self.clients()
            .filter(|(_, c)| c.tracker.as_ref().is_some_and(|t| t.len() > 0))
            .max_by_key(|(id, c)| {
                let share = c.budget.map_or(even, |b| b.min(even));
                (i64::from(c.charged) - i64::from(share), core::cmp::Reverse(*id))
            })
            .map(|(id, _)| id)
    }

    /// For a client that does not evict, refused for `reason`: when the pool (or the kernel's
    /// untyped memory) had no frame, evicts one page from the client most over its share.
    /// `Ok(true)` when a frame was freed (the fault is tried again), `Ok(false)` when there is
    /// nothing to evict or the reason is another.
    pub(super) fn evicted_for_pool(
        &mut self,
        platform: &mut impl Platform,
        reason: &RefusalReason,
    ) -> Result<bool, RefusalReason> {
        match reason {
            RefusalReason::OutOfFrames(
                AllocationError::PoolExhausted { .. }
                | AllocationError::Kernel(crate::KernelError::OutOfMemory),
            ) => self.evict_for_pool(platform),
            _ => Ok(false),
        }
    }

    /// Evicts one page for the pool; `false` when no client has one to give.
    fn evict_for_pool(&mut self, platform: &mut impl Platform) -> Result<bool, RefusalReason> {
        match self.pool_victim() {
            Some(victim) => self.evict_one(platform, victim),
            None => Ok(false),
        }
    }

    /// Evicts one of `victim`'s pages by its mode (the clock soft-unmaps pages on the way);
    /// `false` when it has none. A dirty page the full store cannot take is left soft-unmapped and
    /// the first clean page in order goes instead; with none, the store is full.
    fn evict_one(&mut self, platform: &mut impl Platform, victim: ClientId) -> Result<bool, RefusalReason> {
        loop {
            match self.tracker_mut(victim).next_step() {
                None => return Ok(false),
                Some(Step::SoftUnmap(vpn)) => {
                    let (area_index, page) = self.tracked_page(victim, vpn);
                    let _ = platform.unmap_page(page.cap());
                    self.count(victim, area_index, |c| c.soft_unmaps += 1);
                }
                Some(Step::Evict(vpn)) => {
                    let needed = match self.evict_page(platform, victim, vpn) {
                        Ok(()) => return Ok(true),
                        Err(EvictError::Refused(reason)) => return Err(reason),
                        Err(EvictError::Full(StoreFull { needed })) => needed,
                    };
                    if let Some(clean) = self.tracker_mut(victim).first_clean() {
                        return match self.evict_page(platform, victim, clean) {
                            Ok(()) => Ok(true),
                            Err(EvictError::Refused(reason)) => Err(reason),
                            Err(EvictError::Full(_)) => unreachable!("a clean page needs no store"),
                        };
                    }
                    let (area_index, _) = self.tracked_page(victim, vpn);
                    self.count(victim, area_index, |c| c.store_full += 1);
                    let counts = self.store.counts();
                    return Err(RefusalReason::StoreFull {
                        capacity: counts.capacity,
                        used: counts.used,
                        needed,
                    });
                }
            }
        }
    }

    /// The area and resident page of a tracked page.
    fn tracked_page(&self, client: ClientId, vpn: u32) -> (usize, ResidentPage) {
        let target = self.clients[usize::from(client.0)].as_ref().expect("live client");
        let address = u64::from(vpn) * PAGE_SIZE;
        let area_index = target.area_index(address).expect("a tracked page lies in an area");
        let area = &target.areas[area_index];
        let page = area.resident.at(area.page_index(address));
        (area_index, page.expect("a tracked page is resident"))
    }

    /// Evicts tracked page `vpn` of `victim`: unmapped and dropped when clean; when dirty, read
    /// (after the unmap, so nothing writes it meanwhile) into the store first. A dirty page the
    /// store cannot take stays, soft-unmapped (its next touch maps it again).
    fn evict_page(
        &mut self,
        platform: &mut impl Platform,
        victim: ClientId,
        vpn: u32,
    ) -> Result<(), EvictError> {
        let (area_index, mut page) = self.tracked_page(victim, vpn);
        let FrameRef::Pool(frame) = page.frame else { unreachable!("only pool frames are tracked") };
        let dirty = self.tracker_mut(victim).get_mut(vpn).expect("tracked").dirty;
        if dirty {
            if page.slot == CopySlot::OWN {
                // Its own cap maps it into the client, and the window needs that cap to read it:
                // the client's mapping moves to a copy first.
                page = self.move_to_copy(platform, victim, area_index, vpn, frame)?;
            }
            let _ = platform.unmap_page(page.cap());
            if !platform.is_windowed(frame) {
                platform.map_window(frame).map_err(|e| EvictError::Refused(RefusalReason::Kernel(e)))?;
            }
            let mut buffer = core::mem::take(&mut self.page_buffer);
            buffer.resize(PAGE, 0);
            let bytes: &mut [u8; PAGE] = (&mut buffer[..]).try_into().expect("a page");
            platform.read_frame(frame, bytes);
            let start = self.now();
            let put = self.store.put(victim, vpn, bytes);
            let ticks = self.now().wrapping_sub(start);
            self.page_buffer = buffer;
            match put {
                Ok(PutOutcome::Zero) => self.count(victim, area_index, |c| c.zero_pages += 1),
                Ok(outcome) => {
                    let stored = match outcome {
                        PutOutcome::Compressed { bytes } => u64::from(bytes),
                        _ => PAGE_SIZE,
                    };
                    self.count(victim, area_index, |c| {
                        c.compressions += 1;
                        c.incompressible += u64::from(outcome == PutOutcome::Raw);
                        c.bytes_in += PAGE_SIZE;
                        c.bytes_stored += stored;
                        c.compress_ticks += ticks;
                    });
                }
                Err(full) => {
                    self.tracker_mut(victim).get_mut(vpn).expect("tracked").soft = true;
                    return Err(EvictError::Full(full));
                }
            }
        }
        self.tracker_mut(victim).take(vpn);
        let target = self.clients[usize::from(victim.0)].as_mut().expect("live client");
        let area = &mut target.areas[area_index];
        area.resident.remove(area.page_index(u64::from(vpn) * PAGE_SIZE));
        self.drop_mapping(platform, page);
        self.count(victim, area_index, |c| {
            if dirty {
                c.evictions_dirty += 1;
            } else {
                c.evictions_clean += 1;
            }
        });
        Ok(())
    }

    /// Moves the mapping of tracked page `vpn`, made with its pool frame's own cap, to a cap copy
    /// (unmapped: the page is soft-unmapped until it is touched or evicted).
    fn move_to_copy(
        &mut self,
        platform: &mut impl Platform,
        client: ClientId,
        area_index: usize,
        vpn: u32,
        frame: PoolFrame,
    ) -> Result<ResidentPage, EvictError> {
        let _ = platform.unmap_page(crate::MappingCap::Own(frame));
        self.tracker_mut(client).get_mut(vpn).expect("tracked").soft = true;
        let capacity = self.slots.capacity();
        let slot = self.slots.take().ok_or(EvictError::Refused(RefusalReason::OutOfSlots { capacity }))?;
        if let Err(error) = platform.copy_frame_cap(FrameRef::Pool(frame), slot) {
            self.slots.put(slot);
            return Err(EvictError::Refused(RefusalReason::Kernel(error)));
        }
        let page = ResidentPage { frame: FrameRef::Pool(frame), slot };
        let area = &mut self.clients[usize::from(client.0)].as_mut().expect("live client").areas[area_index];
        let index = area.page_index(u64::from(vpn) * PAGE_SIZE);
        area.resident.remove(index);
        area.resident.insert(index, page);
        Ok(page)
    }

    /// Forgets page `index` of an evicting client's area everywhere eviction keeps it (the page
    /// was unmapped or advised away: its contents go, as they do for any client).
    pub(super) fn forget_evictable(&mut self, client: ClientId, area_index: usize, index: u32) {
        let target = self.clients[usize::from(client.0)].as_mut().expect("live client");
        let vpn = ((target.areas[area_index].base / PAGE_SIZE) as u32) + index;
        if let Some(tracker) = target.tracker.as_deref_mut() {
            tracker.remove(vpn);
            self.store.discard(client, vpn);
        }
    }

    /// Whether an evicting client's area holds pages eviction keeps (tracked or stored), which a
    /// pagemap could not follow.
    pub(super) fn has_evictable(&self, client: ClientId, area: &Area) -> bool {
        let target = self.clients[usize::from(client.0)].as_ref().expect("live client");
        let vpns = (area.base / PAGE_SIZE) as u32..(area.end / PAGE_SIZE) as u32;
        target.tracker.as_ref().is_some_and(|t| t.any_in(vpns.clone()) || self.store.any_in(client, vpns))
    }
}

use crate::store::PutOutcome;

/// Why a page could not be evicted.
enum EvictError {
    /// Dirty, and the store had no room for it.
    Full(StoreFull),
    /// The kernel refused a step.
    Refused(RefusalReason),
}

/// Maps a resident page's kept copy again (after the clock's or the dirty tracking's unmap).
fn remap(
    platform: &mut impl Platform,
    structures: &mut crate::PagingStructures,
    client: ClientId,
    vaddr: u64,
    cap: crate::MappingCap,
    rights: Rights,
) -> Result<(), RefusalReason> {
    let mapped = crate::seed::map_with_missing_levels(
        platform,
        |platform| platform.map_page(client, vaddr, cap, rights),
        |platform, level| structures.make_level(platform, client, vaddr, level),
    );
    mapped.map_err(|error| match error {
        crate::seed::LevelsError::Map(error) => RefusalReason::Kernel(error),
        crate::seed::LevelsError::Level { level, error } => RefusalReason::NoPagingStructure { level, error },
        crate::seed::LevelsError::StillMissing(level) => {
            RefusalReason::Kernel(crate::KernelError::LevelStillMissing(level))
        }
    })
}
