//! Which pages of an area are mapped in one client, and by which frame and cap copy.
//!
//! Every fault asks this table whether a page is resident, so a lookup must be cheap; and there is a
//! table per area per client, so it must be small both when an area is touched densely (text, data, a
//! filled heap) and when it is touched here and there (a 1 GiB heap or .bss touched once a megabyte,
//! a stack near its top). A page's record is 8 bytes (frame number and cap-copy slot). The table keeps
//! the cost near that in both cases, and unlike a B-tree it has no heap node per page:
//!
//! - The area's page indices are cut into *chunks* of [`CHUNK_PAGES`] (16 MiB of address space), and a
//!   chunk into [`LEAVES_PER_CHUNK`] *leaves* of [`LEAF_PAGES`]. Only chunks holding a resident page
//!   exist, in a vector sorted by chunk number and searched by binary search: an area lies below
//!   4 GiB, so there are at most 256, and a small area has one. An untouched stretch of a large area
//!   thus costs nothing, where a vector indexed by leaf pays for every leaf up to the highest.
//! - A leaf with at most [`SPARSE_MAX`] pages is *sparse*: its pages sit in two sorted arrays shared by
//!   the chunk's sparse leaves, their offsets in the chunk (`u16`) and their records, 10 bytes a page,
//!   found by binary search (pages touched in ascending order skip it). The bound keeps the arrays to
//!   64 × 4 pages, so an insertion moves little of them.
//! - A leaf with more is *dense*: a 64-bit map of its resident pages and their records in page order,
//!   a page's record at the count of map bits below its own. It holds what it has (a 32-byte header
//!   and a doubling array), where a plain 64-record array would cost 512 bytes for five pages; full, it
//!   is that plain array, and the count is skipped when every lower bit is set. It turns sparse again
//!   when fewer than [`DENSE_MIN`] pages remain, a gap that keeps a leaf near the threshold from
//!   converting on every fault.
//! - The table keeps its dense leaves in one vector in index order; a chunk has a map of its dense
//!   leaves and the count of dense leaves before it, which with the map bits below a leaf's give the
//!   leaf's place. So a chunk header is 64 bytes, what a very sparse area pays per chunk touched.
//!
//! So a densely touched area costs about 8.5 bytes a page, a sparse one about 10 plus the vectors'
//! growth slack and a chunk header per 16 MiB touched. Every allocation is a power of two in size
//! (64- and 32-byte headers, 2- and 8-byte elements, capacities that double and halve), so the root
//! task's power-of-two allocator rounds nothing up and the bytes counted here are the bytes used.
//! Making a leaf dense or sparse moves the headers of the area's later dense leaves. Vectors give
//! memory back as they drain, and an empty table holds no heap at all.
//!
//! A fault looks a page up and, if it is not resident, maps it and records it: [`ResidentPages::find`]
//! answers with the page or a [`Vacancy`], where it would go, and [`ResidentPages::fill`] records it
//! there without searching again. A vacancy may be older than a change that moved what it points
//! at, so filling checks its position against the table first (a few comparisons: a position names
//! a gap between neighbours) and inserts the page by a new search when it no longer holds. The table
//! remembers the dense leaf it last recorded a page in and keeps that leaf in itself (an empty
//! stand-in holds its place in the vector of dense leaves; the table is 88 bytes), so the next
//! fault in that leaf goes straight to it, with no chunk search, bounds check or pointer to follow;
//! and a page joining that leaf above its others, the usual case, takes an inline path with no call
//! (unless the leaf's records must grow) and no count of map bits, which checks only the leaf and
//! the page's bit.

use alloc::vec::Vec;
use core::iter;
use core::mem::size_of;
use core::ops::Range;

use crate::{CopySlot, FrameRef};

/// Pages per leaf, the unit that is sparse or dense: one bit each in a dense leaf's map.
pub const LEAF_PAGES: usize = 64;
/// Leaves per chunk: one bit each in the chunk's map of dense leaves.
pub const LEAVES_PER_CHUNK: usize = 64;
/// Pages per chunk (16 MiB of address space).
pub const CHUNK_PAGES: usize = LEAF_PAGES * LEAVES_PER_CHUNK;
/// Most pages a sparse leaf holds; one more makes it dense. Made dense, five pages cost a 32-byte
/// header and 8 records (96 bytes) against 50 in the shared arrays, and the cost per page falls as the
/// leaf fills; the bound keeps a chunk's shared arrays to 64 × 4 pages, so inserting stays cheap.
pub const SPARSE_MAX: usize = 4;
/// A dense leaf left with fewer pages than this turns sparse again.
pub const DENSE_MIN: usize = 2;

const LEAF_SHIFT: u32 = LEAF_PAGES.trailing_zeros();
const CHUNK_SHIFT: u32 = CHUNK_PAGES.trailing_zeros();

/// One resident page: the frame mapped there and the cap copy that maps it ([`CopySlot::OWN`]:
/// the pool frame's own cap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResidentPage {
    pub frame: FrameRef,
    pub slot: CopySlot,
}

impl ResidentPage {
    /// The cap that maps the page.
    pub fn cap(&self) -> crate::MappingCap {
        match (self.slot, self.frame) {
            (CopySlot::OWN, FrameRef::Pool(frame)) => crate::MappingCap::Own(frame),
            (slot, _) => crate::MappingCap::Copy(slot),
        }
    }
}

/// Where a page that [`ResidentPages::find`] did not find would go in that table.
#[derive(Clone, Copy, Debug)]
pub struct Vacancy {
    index: u32,
    /// A [`Place`] in 32 bits ([`Place::to_bits`]).
    place: u32,
}

// A vacancy is 8 bytes, a register: the fault path carries one across the kernel calls that map its
// page, and the out-of-line search returns one. Filling checks a position against the table before
// it uses it (the vacancy may be older than a change that moved what it points at), so no count of
// changes is kept, and a position cut short in the 32 bits is only a stale one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// The table's last dense leaf (`last_leaf`), whose map bit for the page is clear.
    Last,
    /// Another dense leaf, whose map bit for the page is clear: rare enough to be found again.
    Dense,
    /// A new chunk, at this position in `chunks`.
    Chunk(u32),
    /// Chunk `chunks[c]`'s shared arrays, at this position.
    Sparse(u32, u32),
}

impl Place {
    /// Two bits of kind, then the positions: a chunk's in 30 bits, the shared arrays' chunk and
    /// position in 15 each (a table has at most 256 chunks, a chunk's arrays at most 256 pages).
    const fn to_bits(self) -> u32 {
        match self {
            Self::Last => 0,
            Self::Dense => 1,
            Self::Chunk(c) => 2 | c << 2,
            Self::Sparse(c, i) => 3 | (c & 0x7FFF) << 2 | i << 17,
        }
    }

    const fn from_bits(bits: u32) -> Self {
        match bits & 3 {
            0 => Self::Last,
            1 => Self::Dense,
            2 => Self::Chunk(bits >> 2),
            _ => Self::Sparse(bits >> 2 & 0x7FFF, bits >> 17),
        }
    }
}

/// A page's record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    frame: u32,
    slot: u32,
}

impl Entry {
    fn of(page: ResidentPage) -> Self {
        Self { frame: page.frame.to_bits(), slot: page.slot.0 }
    }

    fn page(self) -> ResidentPage {
        ResidentPage { frame: FrameRef::from_bits(self.frame), slot: CopySlot(self.slot) }
    }
}

/// The resident pages of one area in one client.
pub struct ResidentPages {
    /// Chunks holding at least one resident page, by ascending `key`.
    chunks: Vec<Chunk>,
    /// Every dense leaf, in index order; a chunk's are contiguous, from its `dense_before`.
    dense: Vec<DenseLeaf>,
    /// The dense leaf a page was last recorded in, as its leaf number in the area ([`NO_LEAF`]: none)
    /// and its place in `dense`: pages are mostly touched near the last, so a fault there skips the
    /// chunk search and the rank of the chunk's dense map. `dense` changes shape only in `make_dense`,
    /// which points this at the new leaf, and `make_sparse`, which clears it.
    last_leaf: u32,
    last_dense: u32,
    /// The last dense leaf itself, kept here while `dense[last_dense]` holds an empty stand-in: the
    /// fault path reaches it at a fixed place, with no bounds check and no pointer to follow.
    /// Empty when there is no last leaf.
    last: DenseLeaf,
}

/// `last_leaf` when there is none: above every leaf number of a 32-bit page index.
const NO_LEAF: u32 = u32::MAX;

impl Default for ResidentPages {
    fn default() -> Self {
        Self {
            chunks: Vec::new(),
            dense: Vec::new(),
            last_leaf: NO_LEAF,
            last_dense: 0,
            last: DenseLeaf::EMPTY,
        }
    }
}

impl core::fmt::Debug for ResidentPages {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ResidentPages").field("count", &self.count()).finish()
    }
}

impl ResidentPages {
    /// The page at `index`, when resident.
    pub fn at(&self, index: u32) -> Option<ResidentPage> {
        self.find(index).ok()
    }

    /// The page at `index` when resident, or else where it would go: the fault path asks whether a
    /// page is resident and, mapping it, records it there, so [`Self::fill`] need not search again.
    // Always inlined: with callers besides the fault path (zero-page, cow) the compiler kept it out
    // of line, which cost every fault some twenty instructions (`cargo xtask bench`).
    #[inline(always)]
    pub fn find(&self, index: u32) -> Result<ResidentPage, Vacancy> {
        if index >> LEAF_SHIFT == self.last_leaf {
            return match self.last.get(index as usize % LEAF_PAGES) {
                Some(entry) => Ok(entry.page()),
                None => Err(Vacancy { index, place: Place::Last.to_bits() }),
            };
        }
        self.find_other(index).map(Entry::page)
    }

    /// [`Self::find`] outside the last dense leaf: out of line, so the fault path does not pay for
    /// the registers it needs, and cold (about one fault in ten), so its layout favours the rest.
    #[cold]
    #[inline(never)]
    fn find_other(&self, index: u32) -> Result<Entry, Vacancy> {
        let vacancy = |place: Place| Vacancy { index, place: place.to_bits() };
        let c = match self.chunk_position(index) {
            Ok(c) => c,
            Err(c) => return Err(vacancy(Place::Chunk(c as u32))),
        };
        let chunk = &self.chunks[c];
        let offset = index as usize % CHUNK_PAGES;
        let entry = match chunk.dense_position(offset >> LEAF_SHIFT) {
            Some(n) => match self.leaf(n).get(offset % LEAF_PAGES) {
                Some(entry) => entry,
                None => return Err(vacancy(Place::Dense)),
            },
            None => match chunk.sparse_position(offset) {
                Ok(i) => chunk.records[i],
                Err(i) => return Err(vacancy(Place::Sparse(c as u32, i as u32))),
            },
        };
        Ok(entry)
    }

    /// Records `page` where `find` saw room for it. A vacancy found before the table last changed
    /// may point at the wrong place; if it does, the page is inserted by a new search.
    #[inline]
    pub fn fill(&mut self, vacancy: Vacancy, page: ResidentPage) {
        // The common case, a page of the last dense leaf above its others (pages are often touched
        // in ascending order), is inline and makes no call: its record goes last, with no count of
        // map bits and nothing moved, and the vector grows itself (doubling, out of line) when full.
        // The rest is out of line, so the fault path does not pay for the registers it needs. It
        // checks the leaf and the page's bit afresh, whatever the vacancy says.
        let index = vacancy.index;
        if index >> LEAF_SHIFT == self.last_leaf {
            let page_in_leaf = index as usize % LEAF_PAGES;
            let bit = 1 << page_in_leaf;
            // No page at or above this one.
            if self.last.map < bit {
                self.last.map |= bit;
                self.last.records.push(Entry::of(page));
                return;
            }
        }
        self.fill_other(vacancy, Entry::of(page));
    }

    /// [`Self::fill`] for a new chunk, the shared arrays, a dense leaf that must move records up or
    /// is not the last, or a stale vacancy.
    #[cold]
    #[inline(never)]
    fn fill_other(&mut self, vacancy: Vacancy, entry: Entry) {
        let (index, place) = (vacancy.index, Place::from_bits(vacancy.place));
        let offset = index as usize % CHUNK_PAGES;
        match place {
            Place::Sparse(c, i) if self.is_sparse_vacancy(index, c as usize, i as usize) => {
                let (c, i) = (c as usize, i as usize);
                let chunk = &mut self.chunks[c];
                let leaf = offset >> LEAF_SHIFT;
                let pages = chunk.leaf_pages(leaf, i);
                if pages.len() < SPARSE_MAX {
                    chunk.offsets.insert(i, offset as u16);
                    chunk.records.insert(i, entry);
                } else {
                    self.make_dense(c, leaf, pages).insert_new(offset % LEAF_PAGES, entry);
                }
            }
            Place::Chunk(c) if self.is_chunk_vacancy(index, c as usize) => {
                let c = c as usize;
                // Most areas fit in one chunk: room for one, not the vector's first four.
                if self.chunks.capacity() == 0 {
                    self.chunks.reserve_exact(1);
                }
                let dense_before =
                    self.chunks.get(c).map_or(self.dense.len(), |next| next.dense_before as usize);
                let mut chunk = Chunk::new(index >> CHUNK_SHIFT, dense_before);
                chunk.offsets.push(offset as u16);
                chunk.records.push(entry);
                self.chunks.insert(c, chunk);
            }
            Place::Last if index >> LEAF_SHIFT == self.last_leaf => {
                self.fill_dense(index, self.last_dense as usize, entry);
            }
            Place::Dense => {
                let c = self.chunk_position(index).ok();
                match c.and_then(|c| self.chunks[c].dense_position(offset >> LEAF_SHIFT)) {
                    Some(n) => self.fill_dense(index, n, entry),
                    None => self.insert(index, entry.page()),
                }
            }
            _ => self.insert(index, entry.page()),
        }
    }

    /// Whether position `i` of chunk `chunks[c]`'s shared arrays is where page `index`, of a sparse
    /// leaf and not resident, goes.
    fn is_sparse_vacancy(&self, index: u32, c: usize, i: usize) -> bool {
        let Some(chunk) = self.chunks.get(c) else { return false };
        let offset = index as usize % CHUNK_PAGES;
        let (below, above) = (chunk.offsets.get(..i), chunk.offsets.get(i..));
        chunk.key == index >> CHUNK_SHIFT
            && chunk.dense_map & 1 << (offset >> LEAF_SHIFT) == 0
            && below.is_some_and(|below| below.last().is_none_or(|&last| usize::from(last) < offset))
            && above.is_some_and(|above| above.first().is_none_or(|&first| usize::from(first) > offset))
    }

    /// Whether position `c` of `chunks` is where the chunk of page `index`, which has none, goes.
    fn is_chunk_vacancy(&self, index: u32, c: usize) -> bool {
        let key = index >> CHUNK_SHIFT;
        c <= self.chunks.len()
            && (c == 0 || self.chunks[c - 1].key < key)
            && self.chunks.get(c).is_none_or(|next| next.key > key)
    }

    /// Records `entry` at `index` in dense leaf `dense[n]`, the index's leaf, and remembers the
    /// leaf; or inserts it by a new search if another vacancy filled the page since.
    // Inlined into fill_other's two uses: left to the compiler it went out of line, a call more.
    #[inline(always)]
    fn fill_dense(&mut self, index: u32, n: usize, entry: Entry) {
        let page_in_leaf = index as usize % LEAF_PAGES;
        if self.leaf(n).map & 1 << page_in_leaf != 0 {
            return self.insert(index, entry.page());
        }
        debug_assert_eq!(
            self.chunk_position(index)
                .ok()
                .and_then(|c| self.chunks[c].dense_position((index as usize % CHUNK_PAGES) >> LEAF_SHIFT)),
            Some(n),
            "a stale vacancy"
        );
        self.make_last(index >> LEAF_SHIFT, n).insert_new(page_in_leaf, entry);
    }

    /// Records `page` at `index`; the index was not resident (if it was, the page replaces it).
    pub fn insert(&mut self, index: u32, page: ResidentPage) {
        match self.find(index) {
            Err(vacancy) => self.fill(vacancy, page),
            Ok(_) => {
                debug_assert!(false, "page {index} already resident");
                self.remove(index);
                self.insert(index, page);
            }
        }
    }

    /// Forgets the page at `index` and returns what was there.
    pub fn remove(&mut self, index: u32) -> Option<ResidentPage> {
        let c = self.chunk_position(index).ok()?;
        let offset = index as usize % CHUNK_PAGES;
        let leaf = offset >> LEAF_SHIFT;
        let chunk = &mut self.chunks[c];
        let entry = match chunk.dense_position(leaf) {
            Some(n) => {
                let entry = self.leaf_mut(n).remove(offset % LEAF_PAGES)?;
                if (self.leaf(n).map.count_ones() as usize) < DENSE_MIN {
                    self.make_sparse(c, leaf, n);
                }
                entry
            }
            None => {
                let i = chunk.sparse_position(offset).ok()?;
                chunk.offsets.remove(i);
                let entry = chunk.records.remove(i);
                shrink(&mut chunk.offsets);
                shrink(&mut chunk.records);
                entry
            }
        };
        if self.chunks[c].is_empty() {
            self.chunks.remove(c);
            shrink(&mut self.chunks);
        }
        Some(entry.page())
    }

    /// How many pages are resident.
    pub fn count(&self) -> u32 {
        // Counted when asked (reports), so recording a page does not keep a count.
        let sparse: usize = self.chunks.iter().map(|chunk| chunk.offsets.len()).sum();
        let dense: usize = self.dense.iter().chain([&self.last]).map(|leaf| leaf.records.len()).sum();
        (sparse + dense) as u32
    }

    /// Every resident page with its index, in index order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, ResidentPage)> + '_ {
        self.chunks.iter().flat_map(|chunk| {
            let base = chunk.key << CHUNK_SHIFT;
            chunk.iter(self).map(move |(offset, entry)| (base + offset as u32, entry.page()))
        })
    }

    /// Heap bytes this table holds.
    pub fn metadata_bytes(&self) -> usize {
        let sparse: usize = self.chunks.iter().map(Chunk::sparse_bytes).sum();
        // The last leaf's stand-in holds nothing.
        let dense: usize = self
            .dense
            .iter()
            .chain([&self.last])
            .map(|leaf| leaf.records.capacity() * size_of::<Entry>())
            .sum();
        self.chunks.capacity() * size_of::<Chunk>()
            + self.dense.capacity() * size_of::<DenseLeaf>()
            + sparse
            + dense
    }

    /// Where the chunk of `index` is in `chunks`, or where it would go.
    fn chunk_position(&self, index: u32) -> Result<usize, usize> {
        let key = index >> CHUNK_SHIFT;
        match self.chunks.last() {
            // The likeliest: most areas have one chunk, and an area filling up grows at its top.
            Some(last) if last.key == key => Ok(self.chunks.len() - 1),
            _ => self.chunks.binary_search_by_key(&key, |chunk| chunk.key),
        }
    }

    /// Moves sparse leaf `leaf` of chunk `c`, at `pages` of its shared arrays, into a new dense leaf
    /// and returns it.
    fn make_dense(&mut self, c: usize, leaf: usize, pages: Range<usize>) -> &mut DenseLeaf {
        let chunk = &mut self.chunks[c];
        let chunk_key = chunk.key;
        // Room for as many pages again as it starts with: a power of two, as doubling keeps it.
        let mut dense = DenseLeaf { map: 0, records: Vec::with_capacity(2 * SPARSE_MAX) };
        for (offset, entry) in chunk.offsets.drain(pages.clone()).zip(chunk.records.drain(pages)) {
            dense.map |= 1 << (usize::from(offset) % LEAF_PAGES);
            dense.records.push(entry);
        }
        // The shared arrays keep their room: a chunk filling up will want it for its next leaf.
        chunk.dense_map |= 1 << leaf;
        let n = chunk.dense_position(leaf).expect("just made dense");
        // Later dense leaves move; the new one is where the next pages will likely go.
        self.put_last_back();
        self.dense.insert(n, dense);
        for later in &mut self.chunks[c + 1..] {
            later.dense_before += 1;
        }
        self.make_last(chunk_key * LEAVES_PER_CHUNK as u32 + leaf as u32, n)
    }

    /// Dense leaf `dense[n]`, wherever it is kept.
    fn leaf(&self, n: usize) -> &DenseLeaf {
        if n == self.last_dense as usize && self.last_leaf != NO_LEAF {
            &self.last
        } else {
            &self.dense[n]
        }
    }

    /// [`Self::leaf`], to change.
    fn leaf_mut(&mut self, n: usize) -> &mut DenseLeaf {
        if n == self.last_dense as usize && self.last_leaf != NO_LEAF {
            &mut self.last
        } else {
            &mut self.dense[n]
        }
    }

    /// Makes dense leaf `leaf`, `dense[n]`, the last leaf, kept in `last`, and returns it.
    fn make_last(&mut self, leaf: u32, n: usize) -> &mut DenseLeaf {
        if self.last_leaf != leaf {
            self.put_last_back();
            core::mem::swap(&mut self.last, &mut self.dense[n]);
            (self.last_leaf, self.last_dense) = (leaf, n as u32);
        }
        &mut self.last
    }

    /// Puts the last leaf back into `dense` (before `dense` changes shape), leaving none.
    fn put_last_back(&mut self) {
        if self.last_leaf != NO_LEAF {
            core::mem::swap(&mut self.last, &mut self.dense[self.last_dense as usize]);
            self.last_leaf = NO_LEAF;
        }
    }

    /// Moves dense leaf `leaf` of chunk `c`, `dense[n]`, back into the chunk's shared arrays.
    fn make_sparse(&mut self, c: usize, leaf: usize, n: usize) {
        // Later dense leaves move.
        self.put_last_back();
        let dense = self.dense.remove(n);
        shrink(&mut self.dense);
        for later in &mut self.chunks[c + 1..] {
            later.dense_before -= 1;
        }
        let chunk = &mut self.chunks[c];
        chunk.dense_map &= !(1 << leaf);
        let first = leaf * LEAF_PAGES;
        let (Ok(at) | Err(at)) = chunk.sparse_position(first);
        reserve(&mut chunk.offsets, dense.records.len());
        reserve(&mut chunk.records, dense.records.len());
        chunk.offsets.splice(at..at, SetBits(dense.map).map(|bit| (first + bit) as u16));
        chunk.records.splice(at..at, dense.records);
    }
}

/// The resident pages of [`CHUNK_PAGES`] pages from `key * CHUNK_PAGES`; offsets count from there.
/// 64 bytes.
struct Chunk {
    key: u32,
    /// Dense leaves of the chunks before this one: where this chunk's first is in the table's `dense`.
    dense_before: u32,
    /// Bit `l` set: leaf `l` is dense, and is `dense[dense_before + n]`, `n` counting the set bits
    /// below `l`.
    dense_map: u64,
    /// Offsets of the pages of the sparse leaves, ascending; `records[i]` is the page at `offsets[i]`.
    offsets: Vec<u16>,
    records: Vec<Entry>,
}

impl Chunk {
    fn new(key: u32, dense_before: usize) -> Self {
        Self {
            key,
            dense_before: dense_before as u32,
            dense_map: 0,
            offsets: Vec::new(),
            records: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.dense_map == 0 && self.offsets.is_empty()
    }

    /// Where leaf `leaf` is in the table's `dense`, when it is dense.
    fn dense_position(&self, leaf: usize) -> Option<usize> {
        if self.dense_map & (1 << leaf) == 0 {
            return None;
        }
        Some(self.dense_before as usize + rank(self.dense_map, leaf))
    }

    /// Where the page at `offset` is in the shared arrays, or where it would go.
    fn sparse_position(&self, offset: usize) -> Result<usize, usize> {
        let offset = offset as u16;
        match self.offsets.last() {
            // Pages are often touched in ascending order: past the last, no search.
            Some(&last) if last < offset => Err(self.offsets.len()),
            _ => self.offsets.binary_search(&offset),
        }
    }

    /// Where sparse leaf `leaf`'s pages are in the shared arrays, given a position among them (at most
    /// `SPARSE_MAX` either side, so a scan).
    fn leaf_pages(&self, leaf: usize, at: usize) -> Range<usize> {
        let first = (leaf * LEAF_PAGES) as u16;
        let in_leaf = |offset: u16| offset.wrapping_sub(first) < LEAF_PAGES as u16;
        let before = self.offsets[..at].iter().rev().take_while(|&&offset| in_leaf(offset)).count();
        let after = self.offsets[at..].iter().take_while(|&&offset| in_leaf(offset)).count();
        at - before..at + after
    }

    /// Every page with its offset, ascending: the shared arrays merged with the chunk's dense leaves
    /// (taken from `table`).
    fn iter<'a>(&'a self, table: &'a ResidentPages) -> impl Iterator<Item = (usize, Entry)> + 'a {
        let mut sparse = self
            .offsets
            .iter()
            .map(|&offset| usize::from(offset))
            .zip(self.records.iter().copied())
            .peekable();
        let first = self.dense_before as usize;
        let mut dense = SetBits(self.dense_map)
            .zip((first..first + self.dense_map.count_ones() as usize).map(|n| table.leaf(n)))
            .flat_map(|(leaf, dense)| {
                let first = leaf * LEAF_PAGES;
                SetBits(dense.map).map(move |bit| first + bit).zip(dense.records.iter().copied())
            })
            .peekable();
        iter::from_fn(move || {
            let sparse_first = match (sparse.peek(), dense.peek()) {
                (Some(s), Some(d)) => s.0 < d.0,
                (s, _) => s.is_some(),
            };
            if sparse_first {
                sparse.next()
            } else {
                dense.next()
            }
        })
    }

    /// Heap bytes of the shared arrays.
    fn sparse_bytes(&self) -> usize {
        self.offsets.capacity() * size_of::<u16>() + self.records.capacity() * size_of::<Entry>()
    }
}

/// A leaf with its own records: which of its pages are resident, and their records in page order, so
/// a page's record is at the count of set bits below its own. 32 bytes.
struct DenseLeaf {
    map: u64,
    records: Vec<Entry>,
}

impl DenseLeaf {
    /// No pages, and no heap.
    const EMPTY: Self = Self { map: 0, records: Vec::new() };

    /// The bit of `page` and where its record is or would go.
    fn locate(&self, page: usize) -> (u64, usize) {
        (1 << page, rank(self.map, page))
    }

    fn get(&self, page: usize) -> Option<Entry> {
        if self.map >> page & 1 == 0 {
            return None;
        }
        Some(self.records[rank(self.map, page)])
    }

    /// Records `entry` at `page`, which is not resident.
    fn insert_new(&mut self, page: usize, entry: Entry) {
        let (bit, rank) = self.locate(page);
        debug_assert_eq!(self.map & bit, 0);
        self.map |= bit;
        self.records.insert(rank, entry);
    }

    fn remove(&mut self, page: usize) -> Option<Entry> {
        let (bit, rank) = self.locate(page);
        if self.map & bit == 0 {
            return None;
        }
        self.map &= !bit;
        let entry = self.records.remove(rank);
        shrink(&mut self.records);
        Some(entry)
    }
}

/// The positions of the set bits of a map, ascending.
struct SetBits(u64);

impl Iterator for SetBits {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        (self.0 != 0).then(|| {
            let bit = self.0.trailing_zeros() as usize;
            self.0 &= self.0 - 1;
            bit
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let count = self.0.count_ones() as usize;
        (count, Some(count))
    }
}

impl ExactSizeIterator for SetBits {}

/// How many bits of `map` below `position` are set: a record's place among its map's.
fn rank(map: u64, position: usize) -> usize {
    let below = (1 << position) - 1;
    // All set is common (a full leaf or chunk, or pages touched in order) and needs no count, which
    // without a popcount instruction (none in the baseline x86-64 the pager builds for) is a dozen
    // dependent operations.
    if map & below == below {
        position
    } else {
        (map & below).count_ones() as usize
    }
}

/// Makes room for `additional` more elements, keeping the capacity a power of two as ordinary growth
/// does (so the root task's power-of-two allocator rounds nothing up).
fn reserve<T>(vector: &mut Vec<T>, additional: usize) {
    let wanted = (vector.len() + additional).next_power_of_two();
    vector.reserve(wanted - vector.len());
}

/// Gives a draining vector's memory back: all of it once empty, half of it once a quarter full (so
/// growing again does not reallocate at once, and a power-of-two capacity stays one).
fn shrink<T>(vector: &mut Vec<T>) {
    if vector.is_empty() {
        *vector = Vec::new();
    } else if vector.len() <= vector.capacity() / 4 {
        vector.shrink_to(vector.capacity() / 2);
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use super::*;
    use crate::PoolFrame;

    fn page(n: u32) -> ResidentPage {
        ResidentPage { frame: FrameRef::Pool(PoolFrame(n)), slot: CopySlot(n ^ 0x5555) }
    }

    fn table(indices: impl IntoIterator<Item = u32>) -> ResidentPages {
        let mut table = ResidentPages::default();
        for index in indices {
            table.insert(index, page(index));
        }
        table
    }

    /// Dense leaves and sparse pages of the chunk holding `index`.
    fn shape(table: &ResidentPages, index: u32) -> (u32, usize) {
        let chunk = &table.chunks[table.chunk_position(index).expect("a chunk")];
        (chunk.dense_map.count_ones(), chunk.offsets.len())
    }

    /// The layout's invariants: chunks sorted and not empty, `dense_before` the count of earlier dense
    /// leaves, shared arrays in step and sorted, dense leaves with a record per map bit and at least
    /// `DENSE_MIN` pages, sparse leaves with at most `SPARSE_MAX`, and every capacity a power of two
    /// (or none).
    fn check_layout(table: &ResidentPages) {
        let mut dense = 0;
        for (i, chunk) in table.chunks.iter().enumerate() {
            assert!(!chunk.is_empty());
            assert!(i == 0 || table.chunks[i - 1].key < chunk.key);
            assert_eq!(chunk.dense_before as usize, dense);
            dense += chunk.dense_map.count_ones() as usize;
            assert_eq!(chunk.offsets.len(), chunk.records.len());
            assert!(chunk.offsets.windows(2).all(|w| w[0] < w[1]));
            for leaf in 0..LEAVES_PER_CHUNK {
                let first = (leaf * LEAF_PAGES) as u16;
                let sparse = chunk.offsets.iter().filter(|o| (first..first + 64).contains(o)).count();
                match chunk.dense_position(leaf) {
                    Some(n) => {
                        let leaf = table.leaf(n);
                        assert_eq!(sparse, 0);
                        assert_eq!(leaf.map.count_ones() as usize, leaf.records.len());
                        assert!(leaf.records.len() >= DENSE_MIN);
                        assert!(leaf.records.capacity().is_power_of_two());
                    }
                    None => assert!(sparse <= SPARSE_MAX),
                }
            }
            for capacity in [chunk.offsets.capacity(), chunk.records.capacity()] {
                assert!(capacity == 0 || capacity.is_power_of_two(), "capacity {capacity}");
            }
        }
        assert_eq!(table.dense.len(), dense);
        if table.last_leaf != NO_LEAF {
            let index = table.last_leaf << LEAF_SHIFT;
            let chunk = &table.chunks[table.chunk_position(index).expect("the last leaf's chunk")];
            let leaf = (index as usize % CHUNK_PAGES) >> LEAF_SHIFT;
            assert_eq!(chunk.dense_position(leaf), Some(table.last_dense as usize), "the last leaf");
            let stand_in = &table.dense[table.last_dense as usize];
            assert_eq!((stand_in.map, stand_in.records.capacity()), (0, 0), "the last leaf's stand-in");
        } else {
            assert_eq!((table.last.map, table.last.records.capacity()), (0, 0), "no last leaf");
        }
        for capacity in [table.chunks.capacity(), table.dense.capacity()] {
            assert!(capacity == 0 || capacity.is_power_of_two(), "capacity {capacity}");
        }
    }

    /// Every page of `table` is the one inserted at its index, `iter` lists exactly `indices`, and the
    /// layout holds.
    fn check(table: &ResidentPages, indices: &[u32]) {
        check_layout(table);
        let listed: Vec<u32> = table.iter().map(|(index, _)| index).collect();
        assert_eq!(listed, indices);
        for (index, resident) in table.iter() {
            assert_eq!(resident, page(index));
            assert_eq!(table.at(index), Some(page(index)));
        }
        assert_eq!(table.count() as usize, indices.len());
    }

    #[test]
    fn a_leaf_turns_dense_past_the_threshold_and_sparse_when_drained() {
        // Leaf 3 of chunk 0, with neighbours in leaves 2 and 4 that stay sparse, and a later chunk.
        let first = 3 * LEAF_PAGES as u32;
        let later = CHUNK_PAGES as u32 + 5;
        let mut leaf: Vec<u32> = (first..first + SPARSE_MAX as u32).collect();
        let others = [first - 1, first + 64, later];
        let mut t = table(leaf.iter().copied().chain(others));
        assert_eq!(shape(&t, first), (0, SPARSE_MAX + 2));
        let all = |leaf: &[u32]| {
            let mut all: Vec<u32> = leaf.iter().copied().chain(others).collect();
            all.sort_unstable();
            all
        };
        check(&t, &all(&leaf));

        t.insert(first + 63, page(first + 63));
        leaf.push(first + 63);
        assert_eq!(shape(&t, first), (1, 2), "one more page makes the leaf dense");
        assert_eq!(t.chunks[1].dense_before, 1);
        check(&t, &all(&leaf));

        // Drain to DENSE_MIN pages: still dense; one fewer: sparse again, and the leaf freed.
        while leaf.len() > DENSE_MIN {
            let index = leaf.remove(0);
            assert_eq!(t.remove(index), Some(page(index)));
            assert_eq!(t.remove(index), None);
        }
        assert_eq!(shape(&t, first), (1, 2));
        check(&t, &all(&leaf));
        let index = leaf.remove(0);
        assert_eq!(t.remove(index), Some(page(index)));
        assert_eq!(shape(&t, first), (0, DENSE_MIN + 1));
        assert_eq!((t.dense.capacity(), t.chunks[1].dense_before), (0, 0), "the dense leaf is gone");
        check(&t, &all(&leaf));
    }

    #[test]
    fn a_vacancy_found_before_a_change_still_fills_the_right_place() {
        // Vacancies in each place (a new chunk, the shared arrays, a dense leaf), each made stale by
        // a change in front of it that moves what it points at.
        let c1 = CHUNK_PAGES as u32;
        let mut indices: Vec<u32> = (64..80).chain([3, c1 + 5]).collect();
        let mut t = table(indices.iter().copied());
        for (index, change) in [(2 * c1, 7 * c1), (200, 130), (100, 90), (81, 60)] {
            let vacancy = t.find(index).expect_err("not resident");
            t.insert(change, page(change));
            t.fill(vacancy, page(index));
            indices.extend([change, index]);
            indices.sort_unstable();
            check(&t, &indices);
        }
        // And fresh ones fill where they were found.
        for index in [4, 82, 3 * c1] {
            let vacancy = t.find(index).expect_err("not resident");
            t.fill(vacancy, page(index));
            indices.push(index);
        }
        indices.sort_unstable();
        check(&t, &indices);
    }

    #[test]
    fn a_place_fits_its_bits() {
        let places = [
            Place::Last,
            Place::Dense,
            Place::Chunk(0),
            Place::Chunk(256),
            Place::Chunk(1 << 20),
            Place::Sparse(0, 0),
            Place::Sparse(256, 256),
            Place::Sparse(0x7FFF, 0x7FFF),
        ];
        for place in places {
            assert_eq!(Place::from_bits(place.to_bits()), place);
        }
    }

    #[test]
    fn removing_every_page_frees_everything() {
        // Dense leaves, sparse pages and five chunks, the last near the top of a 4 GiB area.
        let mut indices: Vec<u32> =
            (0..300).chain((5000..9000).step_by(7)).chain([0x1_0000, 0xF_FFFF]).collect();
        let mut t = table(indices.iter().copied());
        assert_eq!(t.chunks.len(), 5);
        // Leaves with more than SPARSE_MAX pages are dense: 0 to 4, and those with a page every 7.
        let pages_in = |leaf: u32| indices.iter().filter(|i| **i >> LEAF_SHIFT == leaf).count();
        let dense = (0..1 << 14).filter(|leaf| pages_in(*leaf) > SPARSE_MAX).count();
        assert_eq!((t.dense.len(), dense), (68, 68));
        assert!(t.metadata_bytes() > 0);
        // Remove in an order unlike the insertion's.
        indices.sort_unstable_by_key(|i| (i % 13, *i));
        for (n, index) in indices.iter().enumerate() {
            assert_eq!(t.remove(*index), Some(page(*index)));
            if n % 64 == 0 {
                check_layout(&t);
            }
        }
        assert_eq!(t.count(), 0);
        assert_eq!((t.chunks.capacity(), t.dense.capacity()), (0, 0));
        assert_eq!(t.metadata_bytes(), 0);
        assert_eq!(t.iter().count(), 0);
    }

    #[test]
    fn iteration_is_in_index_order_across_leaf_kinds() {
        // Chunk 0: sparse pages in leaves 0, 2 and 3 around dense leaf 1 and before dense leaf 5;
        // chunk 1: dense leaf 0; chunk 3: one sparse page. Inserted from the top down.
        let c1 = CHUNK_PAGES as u32;
        let mut indices: Vec<u32> = [1, 63, 128, 200, 3 * c1 + 17]
            .into_iter()
            .chain(64..128)
            .chain(5 * 64..6 * 64)
            .chain(c1..c1 + 64)
            .collect();
        let t = table(indices.iter().rev().copied());
        assert_eq!(shape(&t, 0), (2, 4));
        assert_eq!(shape(&t, c1), (1, 0));
        assert_eq!(shape(&t, 3 * c1), (0, 1));
        indices.sort_unstable();
        check(&t, &indices);
        for absent in [2, 6 * 64, c1 + 64, 2 * c1, 3 * c1 + 16] {
            assert_eq!(t.at(absent), None);
        }
    }

    /// A few thousand random insertions, removals and lookups, some of them through vacancies kept
    /// across other changes, against a plain map: every answer and the layout agree with it.
    #[test]
    fn random_changes_agree_with_a_plain_map() {
        use alloc::collections::BTreeMap;
        // xorshift64: the same sequence on every run.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut random = move |below: u32| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % u64::from(below)) as u32
        };
        // Pages near a few places (the start, a leaf boundary, a later chunk), so leaves turn dense
        // and sparse again, and now and then anywhere below 4 GiB.
        let index = |random: &mut dyn FnMut(u32) -> u32| match random(8) {
            0 => random(1 << 20),
            1 => CHUNK_PAGES as u32 * 5 + random(200),
            2 | 3 => 3 * LEAF_PAGES as u32 - 40 + random(120),
            _ => random(400),
        };
        for round in 0..4 {
            let (mut t, mut model) = (ResidentPages::default(), BTreeMap::new());
            for step in 0..3000 {
                let at = index(&mut random);
                match random(10) {
                    // Insert through a vacancy, at once or after another change elsewhere.
                    0..=4 => {
                        let Err(vacancy) = t.find(at) else {
                            assert!(model.contains_key(&at));
                            continue;
                        };
                        assert!(!model.contains_key(&at), "page {at} is resident");
                        if random(2) == 0 {
                            // Another page, or one resident (its removal may take a chunk away).
                            let other = match random(2) {
                                0 if !model.is_empty() => {
                                    *model.keys().nth(random(model.len() as u32) as usize).unwrap()
                                }
                                _ => index(&mut random),
                            };
                            if other != at {
                                match t.find(other) {
                                    Err(_) => {
                                        t.insert(other, page(other));
                                        model.insert(other, page(other));
                                    }
                                    Ok(_) => {
                                        assert_eq!(t.remove(other), model.remove(&other));
                                    }
                                }
                            }
                        }
                        t.fill(vacancy, page(at));
                        model.insert(at, page(at));
                    }
                    // Remove, and now and then a whole stretch (leaves turn sparse, chunks go).
                    5..=7 => {
                        let last = if random(8) == 0 { at + random(300) } else { at };
                        for index in at..=last {
                            assert_eq!(t.remove(index), model.remove(&index));
                        }
                    }
                    _ => assert_eq!(t.at(at), model.get(&at).copied()),
                }
                if step % 97 == 0 {
                    check_layout(&t);
                    assert_eq!(t.count() as usize, model.len(), "round {round} step {step}");
                }
            }
            let indices: Vec<u32> = model.keys().copied().collect();
            check(&t, &indices);
            for index in indices {
                assert_eq!(t.remove(index), Some(page(index)));
            }
            assert_eq!(t.metadata_bytes(), 0);
        }
    }

    #[test]
    fn metadata_bytes_in_each_shape() {
        #[cfg(target_pointer_width = "64")]
        assert_eq!((size_of::<Chunk>(), size_of::<DenseLeaf>()), (64, 32), "power-of-two blocks");
        #[cfg(target_pointer_width = "64")]
        assert_eq!(size_of::<ResidentPages>(), 88, "the table, last leaf included");
        let header = size_of::<Chunk>();
        let sparse = |c: &Chunk| c.offsets.capacity() * 2 + c.records.capacity() * 8;
        assert_eq!(ResidentPages::default().metadata_bytes(), 0);

        // One page: one chunk header and the sparse arrays' first allocations.
        let t = table([700]);
        assert_eq!(t.chunks.capacity(), 1, "a table's first chunk takes no spare room");
        assert_eq!(t.metadata_bytes(), header + sparse(&t.chunks[0]));

        // A full leaf: its 32-byte header (in a vector with room for more) and 512 bytes of records,
        // plus what the shared arrays kept from before the leaf turned dense.
        let t = table(0..64);
        assert_eq!(shape(&t, 0), (1, 0));
        assert_eq!(t.leaf(0).records.capacity(), 64);
        assert_eq!(t.metadata_bytes(), header + t.dense.capacity() * 32 + 512 + sparse(&t.chunks[0]));

        // A dense chunk costs under 8.6 bytes a page.
        let t = table(0..CHUNK_PAGES as u32);
        assert_eq!(shape(&t, 0), (LEAVES_PER_CHUNK as u32, 0));
        assert!(t.metadata_bytes() * 5 < CHUNK_PAGES * 43, "{}", t.metadata_bytes());

        // One page per 16 MiB over 4 GiB: a chunk per page, no vector spanning the area.
        let t = table((0..256).map(|n| n << CHUNK_SHIFT));
        let arrays: usize = t.chunks.iter().map(sparse).sum();
        assert_eq!(t.chunks.capacity(), 256);
        assert_eq!(t.metadata_bytes(), 256 * header + arrays);
        assert!(t.chunks.iter().all(|c| c.offsets.len() == 1));
        check_layout(&t);
    }
}
