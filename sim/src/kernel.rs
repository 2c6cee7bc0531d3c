//! The model kernel: untyped memory, frame objects, cap copies and x86_64 address spaces.
//!
//! Each operation checks the same preconditions as seL4 5.0's decode functions, in the same order, and
//! fails with the error code the real kernel would return. Where the pager broke a rule — one the
//! kernel enforces, or one the pager promises (image frames read-only, frames filled only while no copy
//! of them exists) — the model also records a [`Violation`], so a test can assert the list is empty
//! even when the pager swallowed the error.
//!
//! Deleting a cap follows 5.0's rule (`finaliseCap`'s `final` test): it unmaps the frame only when it
//! is the last cap to it. A copy never is (the pool frame's original cap stays with the pager, the
//! image frame's with the root task), so a copy deleted while mapped leaves its mapping behind,
//! with no cap to account for it: a *stale* mapping, which only destroying the address space
//! removes. [`CopyFrameCaps::delete_copy`] unmaps first, as the root task does; the teardown delete
//! does not, and the model checks that its stale mappings go with their address space.
//!
//! A pool frame's own (original) cap maps once too: into the pager's window
//! ([`FrameWindow::map_window`], for good, before the frame's first fill: the window's reads and
//! writes need it) or into one client ([`MappingCap::Own`], a fresh frame that only holds zeroes),
//! never both. It is never deleted, so the pager unmaps it before the frame is used again; an
//! address space destroyed under it is the pager's mistake too.
//!
//! Paging structures are retyped as the root task retypes them: a page directory or PDPT one at a
//! time, page tables [`pager::PAGE_TABLE_BATCH`] at a time per client; each is mapped by a call of
//! its own, and the retypes are counted in [`ModelCounters::retype_calls`].
//!
//! Large (2 MiB) frames follow seL4 5.0's x86_64 rules for `X86_LargePage`: each is retyped from
//! untyped memory of at least 2 MiB (the model keeps a count of such objects,
//! [`ModelConfig::large_frames`]); `Page_Map` of its copy needs a 2 MiB-aligned address and fills a
//! page-directory slot, so a missing PDPT or page directory is reported as for any page but no page
//! table is needed; a slot that holds a page table refuses it (`DeleteFirst`), and so does a slot
//! holding a large page when a page table is asked for there. A 4 KiB map under a large page finds
//! no page table (`lookupPTSlot` fails with 21 bits left), as on seL4.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use pager::platform::{CopyFrameCaps, FrameWindow, MapPages, RetypeFrames};
use pager::{
    ClientId, CopySlot, FrameRef, ImagePage, KernelError, LargeFrame, MapError, MappingCap, PagingLevel,
    PoolFrame, Rights,
};

/// Bytes in a frame object (a 4 KiB x86 page).
pub const FRAME_BYTES: usize = 4096;
const PAGE: u64 = FRAME_BYTES as u64;

/// Bytes in a large frame object (an x86_64 2 MiB page).
pub const LARGE_FRAME_BYTES: usize = 2 << 20;
const LARGE: u64 = LARGE_FRAME_BYTES as u64;

/// Bytes of untyped memory one paging structure (PDPT, page directory, page table) takes on x86_64.
pub const PAGING_STRUCTURE_BYTES: u64 = 4096;

/// First address past the user half of an x86_64 address space (the lower canonical half).
pub const USER_TOP: u64 = 1 << 47;

/// seL4's error codes (`libsel4/include/sel4/errors.h`), as the model returns them in
/// [`KernelError::Failed`].
pub mod error_code {
    pub const INVALID_ARGUMENT: u32 = 1;
    pub const INVALID_CAPABILITY: u32 = 2;
    pub const RANGE_ERROR: u32 = 4;
    pub const ALIGNMENT_ERROR: u32 = 5;
    pub const FAILED_LOOKUP: u32 = 6;
    pub const DELETE_FIRST: u32 = 8;
}

/// The model's resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelConfig {
    /// Untyped memory the pager may retype, in bytes. Frames and paging structures both draw on it.
    pub untyped_bytes: u64,
    /// The most objects one retype may ask for (`CONFIG_RETYPE_FAN_OUT_LIMIT`); more is a RangeError.
    pub retype_fan_out: u32,
    /// Frames per untyped object, when the budget is split into several (as bootinfo lists many
    /// untypeds). One retype draws on one untyped only, so it may create fewer frames than asked.
    pub untyped_object_frames: Option<u64>,
    /// Untyped objects of at least 2 MiB set aside for large frames: how many large frames the
    /// pager can retype (each one whole object; 4 KiB frames never draw on them).
    pub large_frames: u32,
}

impl ModelConfig {
    /// A budget of `frames` 4 KiB objects, frames and paging structures together.
    pub fn with_untyped_frames(frames: u64) -> Self {
        Self { untyped_bytes: frames * PAGE, ..Self::default() }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        // 256 MiB: more than any test asks for unless it sets out to exhaust it.
        Self { untyped_bytes: 256 << 20, retype_fan_out: 256, untyped_object_frames: None, large_frames: 64 }
    }
}

/// A rule the pager broke. The real kernel would have refused most of these with an error the pager
/// might ignore; the model keeps a record so nothing slips by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// Frames must be retyped in order from the next unused pool number.
    RetypeOutOfOrder { expected: PoolFrame, asked: PoolFrame },
    /// A retype asked for no objects, or more than the fan-out limit (seL4: RangeError).
    RetypeCount { count: u32 },
    /// A cap copy went into a slot that already holds one (seL4: DeleteFirst).
    CopyIntoOccupiedSlot { slot: CopySlot, frame: FrameRef },
    /// A copy of a frame that was never created, or lies outside the boot image (seL4: FailedLookup).
    CopyOfMissingFrame { frame: FrameRef },
    /// A delete of a slot holding nothing. seL4 itself accepts it silently; the model flags it because
    /// it means the pager's slot bookkeeping disagrees with the CSpace.
    DeleteOfEmptySlot { slot: CopySlot },
    /// An unmap through a slot holding nothing (seL4: InvalidCapability).
    UnmapOfEmptySlot { slot: CopySlot },
    /// A map through a slot holding nothing (seL4: InvalidCapability).
    MapOfEmptySlot { slot: CopySlot },
    /// A map of a copy that is mapped already: a cap maps in one place only (seL4: InvalidCapability).
    MapOfMappedCopy { slot: CopySlot, client: ClientId, vaddr: u64 },
    /// A map at an address that is mapped already (seL4: DeleteFirst).
    MapOverMapping { client: ClientId, vaddr: u64 },
    /// A map at an address that is not page aligned (seL4: AlignmentError).
    MapUnaligned { client: ClientId, vaddr: u64 },
    /// A map past the user half of the address space (seL4: InvalidArgument).
    MapOutsideUserRange { client: ClientId, vaddr: u64 },
    /// A map or paging-structure request for a client with no address space (seL4: InvalidCapability).
    NoAddressSpace { client: ClientId },
    /// Large frames must be retyped in order from the next unused number.
    LargeRetypeOutOfOrder { expected: LargeFrame, asked: LargeFrame },
    /// A large page mapped at an address that is not 2 MiB aligned (seL4: AlignmentError).
    LargeMapUnaligned { client: ClientId, vaddr: u64 },
    /// A large page mapped over a page table (seL4: DeleteFirst): the span's first 4 KiB page made
    /// it, so the large page had to be chosen before.
    LargePageOverPageTable { client: ClientId, vaddr: u64 },
    /// A page table asked for where a large page is mapped (seL4: DeleteFirst).
    PageTableOverLargePage { client: ClientId, vaddr: u64 },
    /// The window zeroed a large frame that was never created.
    WindowOnMissingLargeFrame { frame: LargeFrame },
    /// The window zeroed a large frame while a cap copy of it exists or a stale mapping reaches it.
    WindowOnLiveLargeFrame { frame: LargeFrame },
    /// An image frame mapped with write rights: every instance shares it, so a write would corrupt all.
    ImageFrameMappedWritable { client: ClientId, vaddr: u64, page: ImagePage },
    /// A paging structure requested where one exists already (seL4: DeleteFirst).
    PagingStructureExists { client: ClientId, vaddr: u64, level: PagingLevel },
    /// A paging structure requested below a missing one (seL4: FailedLookup).
    PagingStructureAboveMissing { client: ClientId, vaddr: u64, level: PagingLevel },
    /// The window wrote to a frame that was never created.
    WindowOnMissingFrame { frame: PoolFrame },
    /// The window wrote past the end of a frame.
    WindowOutOfFrame { frame: PoolFrame, offset: usize, length: usize },
    /// The window filled a frame while a cap copy of it exists: some client may see the change.
    WindowOnLiveFrame { frame: PoolFrame },
    /// An address space was created twice.
    AddressSpaceExists { client: ClientId },
    /// An address space was destroyed with pages still mapped through live copies: the pager forgot
    /// some mappings. (Stale mappings, whose copies were deleted, go with the space as on seL4.)
    AddressSpaceDestroyedWithMappings { client: ClientId, mappings: usize },
    /// The window filled a frame that an address space still maps through a deleted copy (a stale
    /// mapping): the copy was deleted without an unmap and the space was not destroyed, so that
    /// client sees the frame's new contents.
    WindowOnStaleMapping { frame: PoolFrame, client: ClientId, vaddr: u64 },
    /// The window read a frame a client may be writing: mapped writable somewhere (through a live
    /// copy or a stale mapping), so the bytes read (an evicted page on its way to the store) may
    /// not be the page's final ones.
    WindowReadOfWritableFrame { frame: PoolFrame, client: ClientId, vaddr: u64 },
    /// The window read a frame that was never created.
    WindowReadOfMissingFrame { frame: PoolFrame },
    /// The window read or wrote a frame its own cap does not map there (the root task would fault).
    WindowNotMapped { frame: PoolFrame },
    /// A pool frame's own cap was mapped (into a client or the window) while it maps the frame
    /// already, or the frame was never created (seL4: InvalidCapability, FailedLookup).
    OwnCapMapped { frame: PoolFrame },
    /// An unmap of a pool frame's own cap that maps it into the window (the root task refuses it,
    /// making no kernel call: the window is for good).
    UnmapOfWindowedFrame { frame: PoolFrame },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// Why a client's memory access did not go through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryFault {
    /// The first byte that could not be accessed.
    pub address: u64,
    pub kind: MemoryFaultKind,
}

/// The x86 page-fault causes the model distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryFaultKind {
    /// No page is mapped there (error-code bit 0 clear).
    NotMapped,
    /// A write to a page mapped without write rights (error-code bits 0 and 1 set).
    ReadOnly,
}

/// Counts of every operation the pager asked the model for, failures included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModelCounters {
    pub retype_calls: u64,
    pub frames_created: u64,
    pub large_frames_created: u64,
    pub copy_calls: u64,
    pub delete_calls: u64,
    /// Maps of frames: into clients (copies and own caps) and into the window.
    pub map_calls: u64,
    /// Map calls that failed because a paging structure was missing.
    pub missing_level_failures: u64,
    /// Maps of paging structures (their retypes are in `retype_calls`).
    pub paging_structure_calls: u64,
    pub paging_structures_created: u64,
    pub unmap_calls: u64,
    /// Calls that returned an error of any kind.
    pub failed_calls: u64,
    /// Writes and zeroings through the pager's window (plain memory accesses, not kernel calls).
    pub window_writes: u64,
    pub window_zeroes: u64,
    pub window_large_zeroes: u64,
    /// Whole-frame reads through the window (an evicted dirty page on its way to the store).
    pub window_reads: u64,
}

impl ModelCounters {
    /// Kernel entries the pager made (window accesses are not kernel calls).
    pub fn invocations(&self) -> u64 {
        self.retype_calls
            + self.copy_calls
            + self.delete_calls
            + self.map_calls
            + self.paging_structure_calls
            + self.unmap_calls
    }
}

/// The model's maps looked up on every fault or reference: hashed (deterministically), where the
/// order of their keys matters nowhere or is sorted out when listed.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// A small set, in order: a frame has one copy or none nearly always, so a set of one lives inline
/// and only a larger one takes a (sorted) vector.
#[derive(Clone, Debug)]
struct SmallSet<T> {
    /// The element of a set of at most one (`many` empty).
    one: Option<T>,
    /// The elements of a set of two or more.
    many: Vec<T>,
}

impl<T> Default for SmallSet<T> {
    fn default() -> Self {
        Self { one: None, many: Vec::new() }
    }
}

impl<T: Ord + Copy> SmallSet<T> {
    fn insert(&mut self, value: T) {
        if !self.many.is_empty() {
            if let Err(at) = self.many.binary_search(&value) {
                self.many.insert(at, value);
            }
            return;
        }
        match self.one {
            None => self.one = Some(value),
            Some(one) if one == value => {}
            Some(one) => {
                self.many.extend([one.min(value), one.max(value)]);
                self.one = None;
            }
        }
    }

    fn remove(&mut self, value: &T) {
        if self.many.is_empty() {
            if self.one.as_ref() == Some(value) {
                self.one = None;
            }
            return;
        }
        if let Ok(at) = self.many.binary_search(value) {
            self.many.remove(at);
            if self.many.len() == 1 {
                self.one = self.many.pop();
            }
        }
    }

    fn len(&self) -> usize {
        usize::from(self.one.is_some()) + self.many.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn first(&self) -> Option<&T> {
        self.one.as_ref().or_else(|| self.many.first())
    }
}

impl<'a, T> IntoIterator for &'a SmallSet<T> {
    type Item = &'a T;
    type IntoIter = std::iter::Chain<std::option::Iter<'a, T>, std::slice::Iter<'a, T>>;

    fn into_iter(self) -> Self::IntoIter {
        self.one.iter().chain(self.many.iter())
    }
}

/// A value for each frame, by kind and number (frames are numbered densely from 0), made empty on
/// first use and kept when emptied, so a frame's copies come and go without allocating.
#[derive(Debug)]
struct PerFrame<T> {
    pool: Vec<T>,
    image: Vec<T>,
    large: Vec<T>,
}

impl<T: Default> PerFrame<T> {
    fn new() -> Self {
        Self { pool: Vec::new(), image: Vec::new(), large: Vec::new() }
    }

    fn kind(&self, frame: FrameRef) -> (&Vec<T>, usize) {
        match frame {
            FrameRef::Pool(PoolFrame(n)) => (&self.pool, n as usize),
            FrameRef::Image(ImagePage(n)) => (&self.image, n as usize),
            FrameRef::Large(LargeFrame(n)) => (&self.large, n as usize),
        }
    }

    fn get(&self, frame: FrameRef) -> Option<&T> {
        let (values, index) = self.kind(frame);
        values.get(index)
    }

    fn get_mut(&mut self, frame: FrameRef) -> &mut T {
        let (values, index) = match frame {
            FrameRef::Pool(PoolFrame(n)) => (&mut self.pool, n as usize),
            FrameRef::Image(ImagePage(n)) => (&mut self.image, n as usize),
            FrameRef::Large(LargeFrame(n)) => (&mut self.large, n as usize),
        };
        if values.len() <= index {
            values.resize_with(index + 1, T::default);
        }
        &mut values[index]
    }
}

/// The cap copies by slot: the pager numbers its slots densely from 0, so those below
/// [`CopySlots::DENSE`] sit in a vector; any other slot a test names goes to a map.
#[derive(Debug, Default)]
struct CopySlots {
    dense: Vec<Option<CapCopy>>,
    sparse: FastMap<CopySlot, CapCopy>,
    count: usize,
}

impl CopySlots {
    const DENSE: u32 = 1 << 20;

    fn len(&self) -> usize {
        self.count
    }

    fn get(&self, slot: &CopySlot) -> Option<&CapCopy> {
        if slot.0 < Self::DENSE {
            self.dense.get(slot.0 as usize).and_then(Option::as_ref)
        } else {
            self.sparse.get(slot)
        }
    }

    fn get_mut(&mut self, slot: &CopySlot) -> Option<&mut CapCopy> {
        if slot.0 < Self::DENSE {
            self.dense.get_mut(slot.0 as usize).and_then(Option::as_mut)
        } else {
            self.sparse.get_mut(slot)
        }
    }

    fn contains_key(&self, slot: &CopySlot) -> bool {
        self.get(slot).is_some()
    }

    /// Puts `copy` in the empty `slot`.
    fn insert(&mut self, slot: CopySlot, copy: CapCopy) {
        if slot.0 < Self::DENSE {
            let index = slot.0 as usize;
            if self.dense.len() <= index {
                self.dense.resize(index + 1, None);
            }
            self.dense[index] = Some(copy);
        } else {
            self.sparse.insert(slot, copy);
        }
        self.count += 1;
    }

    fn remove(&mut self, slot: &CopySlot) -> Option<CapCopy> {
        let removed = if slot.0 < Self::DENSE {
            self.dense.get_mut(slot.0 as usize).and_then(Option::take)
        } else {
            self.sparse.remove(slot)
        };
        self.count -= usize::from(removed.is_some());
        removed
    }
}

impl std::ops::Index<&CopySlot> for CopySlots {
    type Output = CapCopy;

    fn index(&self, slot: &CopySlot) -> &CapCopy {
        self.get(slot).expect("a copy in the slot")
    }
}

/// Where a copy is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MappingPlace {
    pub client: ClientId,
    pub vaddr: u64,
}

/// One page mapped in one client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub client: ClientId,
    pub vaddr: u64,
    pub slot: CopySlot,
    pub frame: FrameRef,
    pub rights: Rights,
    /// The copy in `slot` was deleted without unmapping it: nothing accounts for this mapping any
    /// more, and only destroying the address space removes it.
    pub stale: bool,
}

#[derive(Clone, Copy, Debug)]
struct CapCopy {
    frame: FrameRef,
    mapped_at: Option<MappingPlace>,
}

#[derive(Clone, Copy, Debug)]
struct PageEntry {
    slot: CopySlot,
    frame: FrameRef,
    rights: Rights,
    /// The copy in `slot` is gone (see [`Mapping::stale`]).
    stale: bool,
}

impl PageEntry {
    fn to_mapping(self, client: ClientId, vaddr: u64) -> Mapping {
        Mapping { client, vaddr, slot: self.slot, frame: self.frame, rights: self.rights, stale: self.stale }
    }
}

/// A VSpace's page tables (by the index of the 2 MiB each covers) and the 4 KiB pages mapped in
/// them, each table's 512 entries side by side as on x86_64: a walk is one hashed lookup and an
/// index, and neighbouring pages share a table. The last table found is remembered, so the run of
/// lookups one fault makes (is it mapped, map it), and a teardown's walk in address order, hash
/// once per table. A table exists only under its PDPT and directory (the model refuses it
/// otherwise, and structures go only with their space), so a page whose table exists needs no walk
/// of the levels above.
#[derive(Debug)]
struct PageTables {
    /// Table number (in `tables`) by the index of the 2 MiB it covers.
    index: FastMap<u64, u32>,
    tables: Vec<(u64, Box<[Option<PageEntry>]>)>,
    /// The last lookup's key and table number (`u32::MAX`: none yet).
    last: std::cell::Cell<(u64, u32)>,
    pages: usize,
}

impl Default for PageTables {
    fn default() -> Self {
        Self {
            index: FastMap::default(),
            tables: Vec::new(),
            last: std::cell::Cell::new((0, u32::MAX)),
            pages: 0,
        }
    }
}

const TABLE_ENTRIES: usize = 512;

impl PageTables {
    fn key(vaddr: u64) -> u64 {
        vaddr >> LARGE.trailing_zeros()
    }

    /// The number of the table covering `vaddr`, if it exists.
    fn find(&self, vaddr: u64) -> Option<usize> {
        let key = Self::key(vaddr);
        let (last_key, last) = self.last.get();
        if last != u32::MAX && last_key == key {
            return Some(last as usize);
        }
        let found = *self.index.get(&key)?;
        self.last.set((key, found));
        Some(found as usize)
    }

    fn has_table(&self, vaddr: u64) -> bool {
        self.find(vaddr).is_some()
    }

    fn add_table(&mut self, vaddr: u64) {
        let key = Self::key(vaddr);
        if !self.index.contains_key(&key) {
            self.index.insert(key, self.tables.len() as u32);
            self.tables.push((key, vec![None; TABLE_ENTRIES].into_boxed_slice()));
        }
    }

    fn table_count(&self) -> usize {
        self.tables.len()
    }

    fn slot(vaddr: u64) -> usize {
        ((vaddr >> PAGE.trailing_zeros()) as usize) % TABLE_ENTRIES
    }

    fn get(&self, vaddr: &u64) -> Option<&PageEntry> {
        self.tables[self.find(*vaddr)?].1[Self::slot(*vaddr)].as_ref()
    }

    fn get_mut(&mut self, vaddr: &u64) -> Option<&mut PageEntry> {
        let table = self.find(*vaddr)?;
        self.tables[table].1[Self::slot(*vaddr)].as_mut()
    }

    fn contains_key(&self, vaddr: &u64) -> bool {
        self.get(vaddr).is_some()
    }

    /// Maps a page-aligned `vaddr`, whose table exists (the map checked the walk first).
    fn insert(&mut self, vaddr: u64, entry: PageEntry) {
        let table = self.find(vaddr).expect("a page table, checked");
        let old = self.tables[table].1[Self::slot(vaddr)].replace(entry);
        self.pages += usize::from(old.is_none());
    }

    fn remove(&mut self, vaddr: &u64) -> Option<PageEntry> {
        let table = self.find(*vaddr)?;
        let removed = self.tables[table].1[Self::slot(*vaddr)].take();
        self.pages -= usize::from(removed.is_some());
        removed
    }

    fn len(&self) -> usize {
        self.pages
    }

    /// The entry slot of a page-aligned `vaddr`, when its table exists.
    fn slot_mut(&mut self, vaddr: u64) -> Option<&mut Option<PageEntry>> {
        let table = self.find(vaddr)?;
        Some(&mut self.tables[table].1[Self::slot(vaddr)])
    }

    /// Every page mapped, by address.
    fn iter(&self) -> impl Iterator<Item = (u64, &PageEntry)> {
        let mut tables: Vec<&(u64, Box<[Option<PageEntry>]>)> = self.tables.iter().collect();
        tables.sort_unstable_by_key(|(table, _)| *table);
        tables.into_iter().flat_map(|(table, entries)| {
            let base = table << LARGE.trailing_zeros();
            entries
                .iter()
                .enumerate()
                .filter_map(move |(i, e)| e.as_ref().map(|e| (base + i as u64 * PAGE, e)))
        })
    }
}

/// The VSpaces by client: clients are numbered densely from 0, so a vector by number (in the order
/// of the numbers, as a map by client would list them).
#[derive(Debug, Default)]
struct Spaces {
    by_client: Vec<Option<AddressSpace>>,
}

impl Spaces {
    fn contains_key(&self, client: &ClientId) -> bool {
        self.get(client).is_some()
    }

    fn get(&self, client: &ClientId) -> Option<&AddressSpace> {
        self.by_client.get(usize::from(client.0)).and_then(Option::as_ref)
    }

    fn get_mut(&mut self, client: &ClientId) -> Option<&mut AddressSpace> {
        self.by_client.get_mut(usize::from(client.0)).and_then(Option::as_mut)
    }

    fn insert(&mut self, client: ClientId, space: AddressSpace) {
        let index = usize::from(client.0);
        if self.by_client.len() <= index {
            self.by_client.resize_with(index + 1, || None);
        }
        self.by_client[index] = Some(space);
    }

    fn remove(&mut self, client: &ClientId) -> Option<AddressSpace> {
        self.by_client.get_mut(usize::from(client.0)).and_then(Option::take)
    }

    fn iter(&self) -> impl Iterator<Item = (ClientId, &AddressSpace)> {
        self.by_client.iter().enumerate().filter_map(|(n, space)| Some((ClientId(n as u16), space.as_ref()?)))
    }

    fn values(&self) -> impl Iterator<Item = &AddressSpace> {
        self.by_client.iter().flatten()
    }
}

impl std::ops::Index<&ClientId> for Spaces {
    type Output = AddressSpace;

    fn index(&self, client: &ClientId) -> &AddressSpace {
        self.get(client).expect("an address space")
    }
}

/// One client's VSpace: which paging structures exist (by the index of the region each covers) and
/// which pages are mapped.
#[derive(Debug, Default)]
struct AddressSpace {
    /// Page tables retyped in the last batch and not mapped yet.
    spare_tables: u32,
    pdpts: BTreeSet<u64>,
    directories: BTreeSet<u64>,
    /// The page tables and the 4 KiB pages they map.
    pages: PageTables,
    /// Large pages by their 2 MiB-aligned address: each fills the page-directory slot of its span.
    large_pages: BTreeMap<u64, PageEntry>,
}

/// The address bits each level's index keeps: a PDPT covers 512 GiB, a directory 1 GiB, a table 2 MiB.
const fn level_shift(level: PagingLevel) -> u32 {
    match level {
        PagingLevel::Pdpt => 39,
        PagingLevel::PageDirectory => 30,
        PagingLevel::PageTable => 21,
    }
}

const LEVELS: [PagingLevel; 3] = [PagingLevel::Pdpt, PagingLevel::PageDirectory, PagingLevel::PageTable];

impl AddressSpace {
    fn has(&self, level: PagingLevel, vaddr: u64) -> bool {
        match level {
            PagingLevel::Pdpt => self.pdpts.contains(&(vaddr >> level_shift(level))),
            PagingLevel::PageDirectory => self.directories.contains(&(vaddr >> level_shift(level))),
            PagingLevel::PageTable => self.pages.has_table(vaddr),
        }
    }

    fn add_structure(&mut self, level: PagingLevel, vaddr: u64) {
        match level {
            PagingLevel::Pdpt => _ = self.pdpts.insert(vaddr >> level_shift(level)),
            PagingLevel::PageDirectory => _ = self.directories.insert(vaddr >> level_shift(level)),
            PagingLevel::PageTable => self.pages.add_table(vaddr),
        }
    }

    /// The first level a walk to `vaddr` finds missing, as seL4's `lookupPTSlot` reports it.
    fn missing_level(&self, vaddr: u64) -> Option<PagingLevel> {
        LEVELS.into_iter().find(|&level| !self.has(level, vaddr))
    }

    fn structure_count(&self) -> usize {
        self.pdpts.len() + self.directories.len() + self.pages.table_count()
    }

    /// The page-sized or large entry at the mapping address `vaddr` (a page's, or a large page's
    /// 2 MiB-aligned base).
    fn entry_at(&self, vaddr: u64, large: bool) -> Option<&PageEntry> {
        if large {
            self.large_pages.get(&vaddr)
        } else {
            self.pages.get(&vaddr)
        }
    }

    fn entry_at_mut(&mut self, vaddr: u64, large: bool) -> Option<&mut PageEntry> {
        if large {
            self.large_pages.get_mut(&vaddr)
        } else {
            self.pages.get_mut(&vaddr)
        }
    }

    /// Every mapping, 4 KiB pages by address, then large pages by address.
    fn entries(&self) -> impl Iterator<Item = (u64, &PageEntry)> {
        self.pages.iter().chain(self.large_pages.iter().map(|(&vaddr, entry)| (vaddr, entry)))
    }

    /// The mapping that covers `vaddr`: its page's, or the large page over its span.
    fn covering(&self, vaddr: u64) -> Option<(u64, &PageEntry)> {
        let page = vaddr & !(PAGE - 1);
        let span = vaddr & !(LARGE - 1);
        self.pages.get(&page).map(|e| (page, e)).or_else(|| self.large_pages.get(&span).map(|e| (span, e)))
    }
}

fn is_large(frame: FrameRef) -> bool {
    matches!(frame, FrameRef::Large(_))
}

/// Every frame's bytes, as physical memory would hold them.
#[derive(Debug)]
struct Contents {
    /// Pool frames by number.
    pool: Vec<Box<[u8; FRAME_BYTES]>>,
    /// Large frames by number, 2 MiB each.
    large: Vec<Box<[u8]>>,
    /// The boot image, page aligned; `ImagePage(n)` is bytes `n * 4096 ..`.
    boot_image: Vec<u8>,
}

/// A strict model of the seL4 objects the pager uses. See the crate documentation.
#[derive(Debug)]
pub struct ModelKernel {
    config: ModelConfig,
    untyped_used: u64,
    /// Pool frames and large frames created so far (their numbers are `0..` these).
    pool_frames: u32,
    large_frames: u32,
    /// Pages of the boot image.
    image_pages: u32,
    /// The frames' bytes, unless the kernel was made with [`ModelKernel::without_contents`].
    contents: Option<Contents>,
    copies: CopySlots,
    /// Every copy slot holding a copy of a frame: lets "is this frame live" and "who maps it" stay cheap.
    copies_of: PerFrame<SmallSet<CopySlot>>,
    /// Every stale mapping of a frame (its copy deleted while mapped, its space not yet destroyed).
    stale_of: PerFrame<SmallSet<MappingPlace>>,
    spaces: Spaces,
    /// Per pool frame: where its own cap maps it.
    own_caps: Vec<OwnCap>,
    violations: Vec<Violation>,
    counters: ModelCounters,
}

/// Where a pool frame's own cap maps it: nowhere, into the window (for good) or into one client.
#[derive(Clone, Copy, Debug, Default)]
struct OwnCap {
    windowed: bool,
    mapped_at: Option<MappingPlace>,
}

impl ModelKernel {
    /// A kernel with `config`'s untyped memory and `boot_image` as the root task's image frames.
    /// The image is padded with zeroes to a whole number of pages.
    pub fn new(config: ModelConfig, boot_image: &[u8]) -> Self {
        let mut image = boot_image.to_vec();
        image.resize(image.len().next_multiple_of(FRAME_BYTES), 0);
        let mut kernel = Self::without_contents(config, image.len());
        kernel.contents = Some(Contents { pool: Vec::new(), large: Vec::new(), boot_image: image });
        kernel
    }

    /// A kernel that keeps no frame's bytes, for a replay (`sim::replay`), whose counts never depend
    /// on them: every object, cap, mapping and rule is modelled as by [`ModelKernel::new`], but the
    /// window's writes go nowhere, [`ModelKernel::frame_contents`] answers `None` and
    /// [`ModelKernel::read`] and [`ModelKernel::write`] panic. With the bytes go the checks of what
    /// a client would see of them (a window write to a frame some copy or stale mapping reaches) and
    /// the index by frame they need, so [`ModelKernel::copies_of`] and
    /// [`ModelKernel::mappings_of`] panic too. `boot_image_bytes` is the image's length.
    pub fn without_contents(config: ModelConfig, boot_image_bytes: usize) -> Self {
        Self {
            config,
            untyped_used: 0,
            pool_frames: 0,
            large_frames: 0,
            image_pages: boot_image_bytes.div_ceil(FRAME_BYTES) as u32,
            contents: None,
            copies: CopySlots::default(),
            copies_of: PerFrame::new(),
            stale_of: PerFrame::new(),
            spaces: Spaces::default(),
            own_caps: Vec::new(),
            violations: Vec::new(),
            counters: ModelCounters::default(),
        }
    }

    /// Makes room for cap copies in slots `0..slots` up front (a replay knows the pager's count),
    /// so the table of copies never grows, and copies itself, while a trace runs.
    pub fn reserve_copy_slots(&mut self, slots: u32) {
        let wanted = slots.min(CopySlots::DENSE) as usize;
        self.copies.dense.reserve(wanted.saturating_sub(self.copies.dense.len()));
    }

    /// The resources in force.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Rules the pager broke so far, oldest first.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Operation counts so far.
    pub fn counters(&self) -> &ModelCounters {
        &self.counters
    }

    /// Untyped bytes not yet retyped.
    pub fn untyped_bytes_left(&self) -> u64 {
        self.config.untyped_bytes - self.untyped_used
    }

    /// Pool frames created so far (the next retype must start at this number).
    pub fn frames_created(&self) -> u32 {
        self.pool_frames
    }

    /// Large frames created so far (the next large retype must be this number).
    pub fn large_frames_created(&self) -> u32 {
        self.large_frames
    }

    /// Cap copies that exist now.
    pub fn live_copies(&self) -> usize {
        self.copies.len()
    }

    /// Cap copies of `frame` that exist now.
    ///
    /// # Panics
    ///
    /// On a kernel that keeps no contents (see [`ModelKernel::without_contents`]).
    pub fn copies_of(&self, frame: FrameRef) -> usize {
        assert!(self.keeps_contents(), "a kernel without contents keeps no copies by frame");
        self.copies_of.get(frame).map_or(0, SmallSet::len)
    }

    /// Pages boot image frames cover.
    pub fn boot_image_pages(&self) -> u32 {
        self.image_pages
    }

    /// Whether frames' bytes are kept (see [`ModelKernel::without_contents`]).
    pub fn keeps_contents(&self) -> bool {
        self.contents.is_some()
    }

    /// The bytes of a frame, as physical memory holds them now (`None` for a frame that does not
    /// exist, or when the kernel keeps no contents).
    pub fn frame_contents(&self, frame: FrameRef) -> Option<&[u8]> {
        let contents = self.contents.as_ref()?;
        match frame {
            FrameRef::Pool(PoolFrame(n)) => contents.pool.get(n as usize).map(|f| &f[..]),
            FrameRef::Image(ImagePage(n)) => {
                let start = n as usize * FRAME_BYTES;
                contents.boot_image.get(start..start + FRAME_BYTES)
            }
            FrameRef::Large(LargeFrame(n)) => contents.large.get(n as usize).map(|f| &f[..]),
        }
    }

    /// Gives `client` an empty VSpace (a PML4 assigned to an ASID pool). The root task does this, not
    /// the pager, so it draws on no untyped budget here.
    pub fn create_address_space(&mut self, client: ClientId) {
        if self.spaces.contains_key(&client) {
            self.violations.push(Violation::AddressSpaceExists { client });
            return;
        }
        self.spaces.insert(client, AddressSpace::default());
    }

    /// Destroys `client`'s VSpace and its paging structures, and with them its stale mappings (see
    /// the module documentation). Pages still mapped there through live copies mean the pager kept
    /// copies of a client it removed: a violation. Those copies stay, unmapped, as seL4's would.
    pub fn destroy_address_space(&mut self, client: ClientId) {
        let Some(space) = self.spaces.remove(&client) else {
            self.violations.push(Violation::NoAddressSpace { client });
            return;
        };
        let mut mapped = 0;
        for (vaddr, entry) in space.entries() {
            if entry.stale {
                self.forget_stale(entry.frame, MappingPlace { client, vaddr });
            } else if entry.slot == CopySlot::OWN {
                // The own cap keeps its mapping on seL4 (and a later map of it fails): the pager
                // should have unmapped it.
                mapped += 1;
            } else {
                mapped += 1;
                if let Some(copy) = self.copies.get_mut(&entry.slot) {
                    copy.mapped_at = None;
                }
            }
        }
        if mapped > 0 {
            self.violations.push(Violation::AddressSpaceDestroyedWithMappings { client, mappings: mapped });
        }
    }

    /// Every stale mapping (a copy deleted while mapped, in a space not yet destroyed), by client and
    /// address. Outside a teardown, each is a page a client still reaches that the pager no longer
    /// accounts for.
    pub fn stale_mappings(&self) -> Vec<Mapping> {
        self.spaces
            .iter()
            .flat_map(|(client, space)| {
                space.entries().filter(|(_, e)| e.stale).map(move |(vaddr, e)| e.to_mapping(client, vaddr))
            })
            .collect()
    }

    fn forget_stale(&mut self, frame: FrameRef, place: MappingPlace) {
        if self.keeps_contents() {
            self.stale_of.get_mut(frame).remove(&place);
        }
    }

    /// `CNode_Delete` of the copy in `slot`, by seL4 5.0's rule: the frame is unmapped only when the
    /// deleted cap is the last one to it (`finaliseCap`'s `final`), which a copy never is here (see the
    /// module documentation). So a mapped copy's mapping stays, stale.
    fn delete_cap(&mut self, slot: CopySlot) -> Result<(), KernelError> {
        let Some(copy) = self.copies.remove(&slot) else {
            return Err(self.refuse(Violation::DeleteOfEmptySlot { slot }, error_code::INVALID_CAPABILITY));
        };
        if let Some(place) = copy.mapped_at {
            let large = is_large(copy.frame);
            if let Some(entry) =
                self.spaces.get_mut(&place.client).and_then(|s| s.entry_at_mut(place.vaddr, large))
            {
                entry.stale = true;
                if self.contents.is_some() {
                    self.stale_of.get_mut(copy.frame).insert(place);
                }
            }
        }
        if self.keeps_contents() {
            self.copies_of.get_mut(copy.frame).remove(&slot);
        }
        Ok(())
    }

    /// `X86_Page_Unmap` of the copy in `slot`: `Ok(false)` when it was not mapped.
    fn unmap_copy(&mut self, slot: CopySlot) -> Result<bool, KernelError> {
        let Some(copy) = self.copies.get_mut(&slot) else {
            return Err(self.refuse(Violation::UnmapOfEmptySlot { slot }, error_code::INVALID_CAPABILITY));
        };
        let Some(place) = copy.mapped_at.take() else {
            return Ok(false);
        };
        let large = is_large(copy.frame);
        if let Some(space) = self.spaces.get_mut(&place.client) {
            if large {
                space.large_pages.remove(&place.vaddr);
            } else {
                space.pages.remove(&place.vaddr);
            }
        }
        Ok(true)
    }

    /// Whether `client` has a VSpace.
    pub fn has_address_space(&self, client: ClientId) -> bool {
        self.spaces.contains_key(&client)
    }

    /// Paging structures (PDPTs, page directories, page tables) in `client`'s VSpace.
    pub fn paging_structures(&self, client: ClientId) -> usize {
        self.spaces.get(&client).map_or(0, AddressSpace::structure_count)
    }

    /// Whether the paging structure `level` covering `vaddr` exists in `client`'s VSpace.
    pub fn has_paging_structure(&self, client: ClientId, vaddr: u64, level: PagingLevel) -> bool {
        self.spaces.get(&client).is_some_and(|s| s.has(level, vaddr))
    }

    /// The mapping that covers `vaddr` in `client`: its page's, or a large page's (whose `vaddr`
    /// is then the 2 MiB-aligned base and whose frame is a [`FrameRef::Large`]).
    pub fn mapping(&self, client: ClientId, vaddr: u64) -> Option<Mapping> {
        let (base, entry) = self.spaces.get(&client)?.covering(vaddr)?;
        Some(entry.to_mapping(client, base))
    }

    /// Every mapping in `client`, 4 KiB pages by address, then large pages by address.
    pub fn mappings(&self, client: ClientId) -> Vec<Mapping> {
        let Some(space) = self.spaces.get(&client) else {
            return Vec::new();
        };
        space.entries().map(|(vaddr, e)| e.to_mapping(client, vaddr)).collect()
    }

    /// Mappings (4 KiB and large) across every address space.
    pub fn mapped_pages(&self) -> usize {
        self.spaces.values().map(|s| s.pages.len() + s.large_pages.len()).sum()
    }

    /// Large pages mapped across every address space.
    pub fn mapped_large_pages(&self) -> usize {
        self.spaces.values().map(|s| s.large_pages.len()).sum()
    }

    /// Every mapping of `frame`, in any client: through its live copies, then stale ones.
    ///
    /// # Panics
    ///
    /// On a kernel that keeps no contents (see [`ModelKernel::without_contents`]).
    pub fn mappings_of(&self, frame: FrameRef) -> Vec<Mapping> {
        assert!(self.keeps_contents(), "a kernel without contents keeps no mappings by frame");
        let own = match frame {
            FrameRef::Pool(pool) => self.own_caps.get(pool.0 as usize).and_then(|own| own.mapped_at),
            _ => None,
        };
        let live = own.into_iter().chain(
            self.copies_of.get(frame).into_iter().flatten().filter_map(|slot| self.copies[slot].mapped_at),
        );
        let stale = self.stale_of.get(frame).into_iter().flatten().copied();
        let large = is_large(frame);
        live.chain(stale)
            .map(|place| {
                let entry = self.spaces[&place.client].entry_at(place.vaddr, large).expect("indexed mapping");
                entry.to_mapping(place.client, place.vaddr)
            })
            .collect()
    }

    /// The clients that map `frame` with write rights, each once, in order.
    pub fn writable_mappers(&self, frame: FrameRef) -> Vec<ClientId> {
        let clients: BTreeSet<ClientId> =
            self.mappings_of(frame).into_iter().filter(|m| m.rights.write).map(|m| m.client).collect();
        clients.into_iter().collect()
    }

    /// Every frame mapped writable somewhere, with its writable mappings.
    pub fn writable_frames(&self) -> BTreeMap<FrameRef, Vec<Mapping>> {
        let mut frames: BTreeMap<FrameRef, Vec<Mapping>> = BTreeMap::new();
        for (client, space) in self.spaces.iter() {
            for (vaddr, entry) in space.entries().filter(|(_, e)| e.rights.write) {
                frames.entry(entry.frame).or_default().push(entry.to_mapping(client, vaddr));
            }
        }
        frames
    }

    /// Whether `client` may access the page containing `vaddr` as the CPU would check it: any mapping
    /// allows reads and instruction fetches (seL4 5.0 never sets NX), writes need write rights.
    pub fn check_access(&self, client: ClientId, vaddr: u64, write: bool) -> Result<(), MemoryFault> {
        match self.mapping(client, vaddr) {
            None => Err(MemoryFault { address: vaddr, kind: MemoryFaultKind::NotMapped }),
            Some(m) if write && !m.rights.write => {
                Err(MemoryFault { address: vaddr, kind: MemoryFaultKind::ReadOnly })
            }
            Some(_) => Ok(()),
        }
    }

    /// [`ModelKernel::check_access`] as a yes or no, without describing the fault: what a replay
    /// asks of every reference.
    #[inline]
    pub fn allows(&self, client: ClientId, vaddr: u64, write: bool) -> bool {
        let Some(space) = self.spaces.get(&client) else { return false };
        let entry = match space.pages.get(&(vaddr & !(PAGE - 1))) {
            Some(entry) => entry,
            None => match space.large_pages.get(&(vaddr & !(LARGE - 1))) {
                Some(entry) => entry,
                None => return false,
            },
        };
        !write || entry.rights.write
    }

    /// Reads `length` bytes of `client`'s memory at `vaddr`, through its mappings.
    ///
    /// # Panics
    ///
    /// On a kernel that keeps no contents, once a page is mapped.
    pub fn read(&self, client: ClientId, vaddr: u64, length: usize) -> Result<Vec<u8>, MemoryFault> {
        let mut bytes = Vec::with_capacity(length);
        let mut address = vaddr;
        while bytes.len() < length {
            self.check_access(client, address, false)?;
            let mapping = self.mapping(client, address).expect("checked");
            let offset = (address - mapping.vaddr) as usize;
            let contents = self.frame_contents(mapping.frame).expect("a mapped frame exists, with contents");
            let take = (contents.len() - offset).min(length - bytes.len());
            bytes.extend_from_slice(&contents[offset..offset + take]);
            address += take as u64;
        }
        Ok(bytes)
    }

    /// Writes `bytes` into `client`'s memory at `vaddr`, through its mappings. All or nothing: every
    /// page is checked first (a real `rep movsb` would have written the pages before the faulting one,
    /// but tests are simpler when a failed write changes nothing).
    ///
    /// # Panics
    ///
    /// On a kernel that keeps no contents, once every page is mapped.
    pub fn write(&mut self, client: ClientId, vaddr: u64, bytes: &[u8]) -> Result<(), MemoryFault> {
        let end = vaddr + bytes.len() as u64;
        let mut page = vaddr & !(PAGE - 1);
        while page < end {
            self.check_access(client, page.max(vaddr), true)?;
            page += PAGE;
        }
        let mut address = vaddr;
        let mut rest = bytes;
        while !rest.is_empty() {
            let mapping = self.mapping(client, address).expect("checked");
            let offset = (address - mapping.vaddr) as usize;
            let frame = self.frame_bytes_mut(mapping.frame);
            let take = (frame.len() - offset).min(rest.len());
            frame[offset..offset + take].copy_from_slice(&rest[..take]);
            address += take as u64;
            rest = &rest[take..];
        }
        Ok(())
    }

    fn frame_bytes_mut(&mut self, frame: FrameRef) -> &mut [u8] {
        let contents = self.contents.as_mut().expect("a kernel that keeps contents");
        match frame {
            FrameRef::Pool(PoolFrame(n)) => &mut contents.pool[n as usize][..],
            FrameRef::Image(ImagePage(n)) => {
                let start = n as usize * FRAME_BYTES;
                &mut contents.boot_image[start..start + FRAME_BYTES]
            }
            FrameRef::Large(LargeFrame(n)) => &mut contents.large[n as usize][..],
        }
    }

    fn frame_exists(&self, frame: FrameRef) -> bool {
        match frame {
            FrameRef::Pool(PoolFrame(n)) => n < self.pool_frames,
            FrameRef::Image(ImagePage(n)) => n < self.image_pages,
            FrameRef::Large(LargeFrame(n)) => n < self.large_frames,
        }
    }

    /// Records a violation and returns the kernel error that goes with it.
    fn refuse(&mut self, violation: Violation, code: u32) -> KernelError {
        self.violations.push(violation);
        self.counters.failed_calls += 1;
        KernelError::Failed(code)
    }

    fn window_check(&mut self, frame: PoolFrame, offset: usize, length: usize) -> bool {
        if frame.0 >= self.pool_frames {
            self.violations.push(Violation::WindowOnMissingFrame { frame });
            return false;
        }
        if offset.checked_add(length).is_none_or(|end| end > FRAME_BYTES) {
            self.violations.push(Violation::WindowOutOfFrame { frame, offset, length });
            return false;
        }
        if !self.own_caps[frame.0 as usize].windowed {
            self.violations.push(Violation::WindowNotMapped { frame });
            return false;
        }
        if !self.keeps_contents() {
            // No bytes, so none a client could see change (and no index of copies by frame).
            return true;
        }
        // Still written, as the real window would be: the damage is what the tests should see.
        if self.copies_of(FrameRef::Pool(frame)) > 0 {
            self.violations.push(Violation::WindowOnLiveFrame { frame });
        }
        if let Some(place) = self.stale_of.get(FrameRef::Pool(frame)).and_then(|p| p.first()) {
            let (client, vaddr) = (place.client, place.vaddr);
            self.violations.push(Violation::WindowOnStaleMapping { frame, client, vaddr });
        }
        true
    }
}

impl RetypeFrames for ModelKernel {
    fn retype_frames(&mut self, first: PoolFrame, count: u32) -> Result<u32, KernelError> {
        self.counters.retype_calls += 1;
        let expected = PoolFrame(self.pool_frames);
        if count == 0 || count > self.config.retype_fan_out {
            // seL4 checks the fan-out before anything else; the pager never needs to exceed it.
            return Err(self.refuse(Violation::RetypeCount { count }, error_code::RANGE_ERROR));
        }
        if first < expected {
            let violation = Violation::RetypeOutOfOrder { expected, asked: first };
            return Err(self.refuse(violation, error_code::DELETE_FIRST));
        }
        if first > expected {
            // The kernel would accept a gap; the pager's numbering says it never makes one.
            let violation = Violation::RetypeOutOfOrder { expected, asked: first };
            return Err(self.refuse(violation, error_code::INVALID_ARGUMENT));
        }
        let mut room = self.untyped_bytes_left() / PAGE;
        if let Some(object_frames) = self.config.untyped_object_frames.filter(|f| *f > 0) {
            // What is left of the untyped object the next frame would come from.
            let used_frames = self.untyped_used / PAGE;
            room = room.min(object_frames - used_frames % object_frames);
        }
        let affordable = room.min(u64::from(count)) as u32;
        if affordable == 0 {
            self.counters.failed_calls += 1;
            return Err(KernelError::OutOfMemory);
        }
        if let Some(contents) = &mut self.contents {
            contents.pool.extend((0..affordable).map(|_| Box::new([0; FRAME_BYTES])));
        }
        self.pool_frames += affordable;
        self.own_caps.resize(self.pool_frames as usize, OwnCap::default());
        self.untyped_used += u64::from(affordable) * PAGE;
        self.counters.frames_created += u64::from(affordable);
        Ok(affordable)
    }

    fn retype_large_frame(&mut self, frame: LargeFrame) -> Result<(), KernelError> {
        self.counters.retype_calls += 1;
        let expected = LargeFrame(self.large_frames);
        if frame != expected {
            let violation = Violation::LargeRetypeOutOfOrder { expected, asked: frame };
            return Err(self.refuse(violation, error_code::DELETE_FIRST));
        }
        if self.large_frames >= self.config.large_frames {
            self.counters.failed_calls += 1;
            return Err(KernelError::OutOfMemory);
        }
        if let Some(contents) = &mut self.contents {
            contents.large.push(vec![0; LARGE_FRAME_BYTES].into_boxed_slice());
        }
        self.large_frames += 1;
        self.counters.large_frames_created += 1;
        Ok(())
    }
}

impl CopyFrameCaps for ModelKernel {
    fn copy_frame_cap(&mut self, frame: FrameRef, slot: CopySlot) -> Result<(), KernelError> {
        self.counters.copy_calls += 1;
        if !self.frame_exists(frame) {
            return Err(self.refuse(Violation::CopyOfMissingFrame { frame }, error_code::FAILED_LOOKUP));
        }
        if self.copies.contains_key(&slot) {
            let violation = Violation::CopyIntoOccupiedSlot { slot, frame };
            return Err(self.refuse(violation, error_code::DELETE_FIRST));
        }
        self.copies.insert(slot, CapCopy { frame, mapped_at: None });
        if self.keeps_contents() {
            self.copies_of.get_mut(frame).insert(slot);
        }
        Ok(())
    }

    /// Unmap, then delete, as the root task does: two kernel calls, counted as such.
    fn delete_copy(&mut self, slot: CopySlot) -> Result<(), KernelError> {
        self.counters.delete_calls += 1;
        if !self.copies.contains_key(&slot) {
            return Err(self.refuse(Violation::DeleteOfEmptySlot { slot }, error_code::INVALID_CAPABILITY));
        }
        self.counters.unmap_calls += 1;
        self.unmap_copy(slot)?;
        self.delete_cap(slot)
    }

    /// The bare delete: a mapped copy leaves a stale mapping, for the space's destruction to remove.
    fn delete_copy_in_teardown(&mut self, slot: CopySlot) -> Result<(), KernelError> {
        self.counters.delete_calls += 1;
        self.delete_cap(slot)
    }
}

impl MapPages for ModelKernel {
    fn map_page(
        &mut self,
        client: ClientId,
        vaddr: u64,
        cap: MappingCap,
        rights: Rights,
    ) -> Result<(), MapError> {
        self.counters.map_calls += 1;
        // The checks of `decodeX86FrameInvocation`, in its order.
        let copy = match cap {
            MappingCap::Copy(slot) => {
                let Some(copy) = self.copies.get(&slot).copied() else {
                    let violation = Violation::MapOfEmptySlot { slot };
                    return Err(MapError::Kernel(self.refuse(violation, error_code::INVALID_CAPABILITY)));
                };
                if copy.mapped_at.is_some() {
                    let violation = Violation::MapOfMappedCopy { slot, client, vaddr };
                    return Err(MapError::Kernel(self.refuse(violation, error_code::INVALID_CAPABILITY)));
                }
                copy
            }
            MappingCap::Own(frame) => {
                if !self.own_cap_free(frame) {
                    let violation = Violation::OwnCapMapped { frame };
                    return Err(MapError::Kernel(self.refuse(violation, error_code::INVALID_CAPABILITY)));
                }
                CapCopy { frame: FrameRef::Pool(frame), mapped_at: None }
            }
        };
        let slot = match cap {
            MappingCap::Copy(slot) => slot,
            MappingCap::Own(_) => CopySlot::OWN,
        };
        if !self.spaces.contains_key(&client) {
            let violation = Violation::NoAddressSpace { client };
            return Err(MapError::Kernel(self.refuse(violation, error_code::INVALID_CAPABILITY)));
        }
        let large = is_large(copy.frame);
        let size = if large { LARGE } else { PAGE };
        if vaddr.checked_add(size).is_none_or(|top| top > USER_TOP) {
            let violation = Violation::MapOutsideUserRange { client, vaddr };
            return Err(MapError::Kernel(self.refuse(violation, error_code::INVALID_ARGUMENT)));
        }
        if large && !vaddr.is_multiple_of(LARGE) {
            let violation = Violation::LargeMapUnaligned { client, vaddr };
            return Err(MapError::Kernel(self.refuse(violation, error_code::ALIGNMENT_ERROR)));
        }
        if large {
            return self.map_large_page(client, vaddr, cap, copy.frame, rights);
        }
        if !vaddr.is_multiple_of(PAGE) {
            let violation = Violation::MapUnaligned { client, vaddr };
            return Err(MapError::Kernel(self.refuse(violation, error_code::ALIGNMENT_ERROR)));
        }
        // The usual case first: the page's table exists (so do the levels above it) and its entry
        // is empty, and the copy is not an image frame's mapped writable.
        let image_writable = matches!(copy.frame, FrameRef::Image(_)) && rights.write;
        if !image_writable {
            let space = self.spaces.get_mut(&client).expect("checked");
            if let Some(entry @ None) = space.pages.slot_mut(vaddr) {
                *entry = Some(PageEntry { slot, frame: copy.frame, rights, stale: false });
                space.pages.pages += 1;
                // A cap copy or a pool frame's own cap: each records where it is mapped its own way.
                self.set_mapped(cap, MappingPlace { client, vaddr });
                return Ok(());
            }
        }
        let space = &self.spaces[&client];
        if let Some(level) = space.missing_level(vaddr) {
            // The ordinary protocol: the pager creates the level and retries. Not a violation.
            self.counters.missing_level_failures += 1;
            self.counters.failed_calls += 1;
            return Err(MapError::MissingLevel(level));
        }
        if space.pages.contains_key(&vaddr) {
            let violation = Violation::MapOverMapping { client, vaddr };
            return Err(MapError::Kernel(self.refuse(violation, error_code::DELETE_FIRST)));
        }
        if let (FrameRef::Image(page), true) = (copy.frame, rights.write) {
            // seL4 would map it: the boot image caps carry full rights. The model does too, so a test
            // that writes through it sees every other instance's memory change.
            self.violations.push(Violation::ImageFrameMappedWritable { client, vaddr, page });
        }
        let space = self.spaces.get_mut(&client).expect("checked");
        space.pages.insert(vaddr, PageEntry { slot, frame: copy.frame, rights, stale: false });
        self.set_mapped(cap, MappingPlace { client, vaddr });
        Ok(())
    }

    fn map_paging_structure(
        &mut self,
        client: ClientId,
        vaddr: u64,
        level: PagingLevel,
    ) -> Result<(), KernelError> {
        let span = vaddr & !(LARGE - 1);
        let under_large = self.spaces.get(&client).is_some_and(|s| s.large_pages.contains_key(&span));
        self.counters.paging_structure_calls += 1;
        let Some(space) = self.spaces.get(&client) else {
            return Err(self.refuse(Violation::NoAddressSpace { client }, error_code::INVALID_CAPABILITY));
        };
        let above = match level {
            PagingLevel::Pdpt => None,
            PagingLevel::PageDirectory => Some(PagingLevel::Pdpt),
            PagingLevel::PageTable => Some(PagingLevel::PageDirectory),
        };
        if above.is_some_and(|above| !space.has(above, vaddr)) {
            let violation = Violation::PagingStructureAboveMissing { client, vaddr, level };
            return Err(self.refuse(violation, error_code::FAILED_LOOKUP));
        }
        if space.has(level, vaddr) {
            let violation = Violation::PagingStructureExists { client, vaddr, level };
            return Err(self.refuse(violation, error_code::DELETE_FIRST));
        }
        if level == PagingLevel::PageTable && under_large {
            let violation = Violation::PageTableOverLargePage { client, vaddr: span };
            return Err(self.refuse(violation, error_code::DELETE_FIRST));
        }
        // The object is retyped before it is mapped: no untyped, no structure. Page tables come
        // from a retype of a batch (counted once per batch), the other levels one at a time.
        if self.untyped_bytes_left() < PAGING_STRUCTURE_BYTES {
            self.counters.failed_calls += 1;
            return Err(KernelError::OutOfMemory);
        }
        self.untyped_used += PAGING_STRUCTURE_BYTES;
        let space = self.spaces.get_mut(&client).expect("checked");
        if level != PagingLevel::PageTable {
            self.counters.retype_calls += 1;
        } else if space.spare_tables == 0 {
            self.counters.retype_calls += 1;
            space.spare_tables = pager::PAGE_TABLE_BATCH - 1;
        } else {
            space.spare_tables -= 1;
        }
        space.add_structure(level, vaddr);
        self.counters.paging_structures_created += 1;
        Ok(())
    }

    fn unmap_page(&mut self, cap: MappingCap) -> Result<(), KernelError> {
        if let MappingCap::Own(frame) = cap {
            if self.is_windowed(frame) {
                self.violations.push(Violation::UnmapOfWindowedFrame { frame });
                return Err(KernelError::WindowedFrame(frame));
            }
        }
        self.counters.unmap_calls += 1;
        // Unmapping a cap that is not mapped succeeds and does nothing, as on seL4.
        match cap {
            MappingCap::Copy(slot) => self.unmap_copy(slot).map(|_| ()),
            MappingCap::Own(frame) => {
                let Some(own) = self.own_caps.get_mut(frame.0 as usize) else {
                    let violation = Violation::OwnCapMapped { frame };
                    return Err(self.refuse(violation, error_code::INVALID_CAPABILITY));
                };
                if let Some(place) = own.mapped_at.take() {
                    // A destroyed space has nothing left to unmap: the cap's mapping just goes.
                    if let Some(space) = self.spaces.get_mut(&place.client) {
                        space.pages.remove(&place.vaddr);
                    }
                }
                Ok(())
            }
        }
    }
}

impl ModelKernel {
    /// The rest of `Page_Map` for a large frame's copy (`decodeX86FrameInvocation`'s
    /// `X86_LargePage` case): the page-directory slot is looked up (a missing PDPT or directory is
    /// reported as for any page), must not hold a page table, and must be empty.
    fn map_large_page(
        &mut self,
        client: ClientId,
        vaddr: u64,
        cap: MappingCap,
        frame: FrameRef,
        rights: Rights,
    ) -> Result<(), MapError> {
        let MappingCap::Copy(slot) = cap else {
            unreachable!("a large frame has no own cap in a client");
        };
        let space = &self.spaces[&client];
        if let Some(level) = space.missing_level(vaddr).filter(|&l| l != PagingLevel::PageTable) {
            self.counters.missing_level_failures += 1;
            self.counters.failed_calls += 1;
            return Err(MapError::MissingLevel(level));
        }
        if space.has(PagingLevel::PageTable, vaddr) {
            let violation = Violation::LargePageOverPageTable { client, vaddr };
            return Err(MapError::Kernel(self.refuse(violation, error_code::DELETE_FIRST)));
        }
        if space.large_pages.contains_key(&vaddr) {
            let violation = Violation::MapOverMapping { client, vaddr };
            return Err(MapError::Kernel(self.refuse(violation, error_code::DELETE_FIRST)));
        }
        let space = self.spaces.get_mut(&client).expect("checked");
        space.large_pages.insert(vaddr, PageEntry { slot, frame, rights, stale: false });
        self.set_mapped(cap, MappingPlace { client, vaddr });
        Ok(())
    }

    /// Whether pool frame `frame` exists and its own cap maps it nowhere.
    fn own_cap_free(&self, frame: PoolFrame) -> bool {
        self.own_caps.get(frame.0 as usize).is_some_and(|own| !own.windowed && own.mapped_at.is_none())
    }

    /// Records where a map (checked) put the frame `cap` names.
    fn set_mapped(&mut self, cap: MappingCap, place: MappingPlace) {
        match cap {
            MappingCap::Copy(slot) => self.copies.get_mut(&slot).expect("checked").mapped_at = Some(place),
            MappingCap::Own(frame) => self.own_caps[frame.0 as usize].mapped_at = Some(place),
        }
    }
}

impl FrameWindow for ModelKernel {
    fn map_window(&mut self, frame: PoolFrame) -> Result<(), KernelError> {
        self.counters.map_calls += 1;
        if !self.own_cap_free(frame) {
            return Err(self.refuse(Violation::OwnCapMapped { frame }, error_code::INVALID_CAPABILITY));
        }
        self.own_caps[frame.0 as usize].windowed = true;
        Ok(())
    }

    fn is_windowed(&self, frame: PoolFrame) -> bool {
        self.own_caps.get(frame.0 as usize).is_some_and(|own| own.windowed)
    }

    fn zero_large_frame(&mut self, frame: LargeFrame) {
        self.counters.window_large_zeroes += 1;
        if frame.0 >= self.large_frames {
            self.violations.push(Violation::WindowOnMissingLargeFrame { frame });
            return;
        }
        let reference = FrameRef::Large(frame);
        if self.keeps_contents()
            && (self.copies_of(reference) > 0 || self.stale_of.get(reference).is_some_and(|p| !p.is_empty()))
        {
            self.violations.push(Violation::WindowOnLiveLargeFrame { frame });
        }
        if let Some(contents) = &mut self.contents {
            contents.large[frame.0 as usize].fill(0);
        }
    }

    fn read_frame(&mut self, frame: PoolFrame, bytes: &mut [u8; 4096]) {
        self.counters.window_reads += 1;
        if frame.0 >= self.pool_frames {
            self.violations.push(Violation::WindowReadOfMissingFrame { frame });
            bytes.fill(0);
            return;
        }
        let Some(contents) = &self.contents else {
            // No bytes kept: a replay's pages read as zeroes.
            bytes.fill(0);
            return;
        };
        bytes.copy_from_slice(&contents.pool[frame.0 as usize][..]);
        if let Some(mapping) = self.mappings_of(FrameRef::Pool(frame)).into_iter().find(|m| m.rights.write) {
            let (client, vaddr) = (mapping.client, mapping.vaddr);
            self.violations.push(Violation::WindowReadOfWritableFrame { frame, client, vaddr });
        }
    }

    fn write_frame(&mut self, frame: PoolFrame, offset: usize, bytes: &[u8]) {
        self.counters.window_writes += 1;
        if self.window_check(frame, offset, bytes.len()) {
            if let Some(contents) = &mut self.contents {
                contents.pool[frame.0 as usize][offset..offset + bytes.len()].copy_from_slice(bytes);
            }
        }
    }

    fn zero_frame(&mut self, frame: PoolFrame, offset: usize, length: usize) {
        self.counters.window_zeroes += 1;
        if self.window_check(frame, offset, length) {
            if let Some(contents) = &mut self.contents {
                contents.pool[frame.0 as usize][offset..offset + length].fill(0);
            }
        }
    }
}
