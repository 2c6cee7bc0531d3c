//! Which pages of an area are mapped in one client, and by which frame and cap copy.
//!
//! A two-level table over the area's page index: a vector of optional leaves of [`LEAF_PAGES`] entries,
//! allocated on first use. A resident page costs 8 bytes in its leaf, so a dense area pays 8 bytes per
//! page and a sparse one pays at most one leaf (512 bytes) per touched page, with no per-entry heap node
//! as a B-tree would have.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::{CopySlot, FrameRef};

/// Pages per leaf.
pub const LEAF_PAGES: usize = 64;

/// One resident page: the frame mapped there and the cap copy that maps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResidentPage {
    pub frame: FrameRef,
    pub slot: CopySlot,
}

#[derive(Clone, Copy)]
struct Entry {
    frame: u32,
    slot: u32,
}

const EMPTY: Entry = Entry { frame: u32::MAX, slot: u32::MAX };
type Leaf = [Entry; LEAF_PAGES];

/// The resident pages of one area in one client.
#[derive(Default)]
pub struct ResidentPages {
    leaves: Vec<Option<Box<Leaf>>>,
    count: u32,
}

impl core::fmt::Debug for ResidentPages {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ResidentPages").field("count", &self.count).finish()
    }
}

impl ResidentPages {
    /// The page at `index`, when resident.
    pub fn at(&self, index: u32) -> Option<ResidentPage> {
        let leaf = self.leaves.get(index as usize / LEAF_PAGES)?.as_ref()?;
        decode(leaf[index as usize % LEAF_PAGES])
    }

    /// Records `page` at `index`; the index was not resident.
    pub fn insert(&mut self, index: u32, page: ResidentPage) {
        let leaf_index = index as usize / LEAF_PAGES;
        if self.leaves.len() <= leaf_index {
            self.leaves.resize_with(leaf_index + 1, || None);
        }
        let leaf = self.leaves[leaf_index].get_or_insert_with(|| Box::new([EMPTY; LEAF_PAGES]));
        let entry = &mut leaf[index as usize % LEAF_PAGES];
        debug_assert!(decode(*entry).is_none(), "page {index} already resident");
        *entry = Entry { frame: page.frame.to_bits(), slot: page.slot.0 };
        self.count += 1;
    }

    /// Forgets the page at `index` and returns what was there.
    pub fn remove(&mut self, index: u32) -> Option<ResidentPage> {
        let leaf_index = index as usize / LEAF_PAGES;
        let leaf = self.leaves.get_mut(leaf_index)?.as_mut()?;
        let entry = core::mem::replace(&mut leaf[index as usize % LEAF_PAGES], EMPTY);
        let page = decode(entry)?;
        self.count -= 1;
        if leaf.iter().all(|e| e.frame == EMPTY.frame) {
            self.leaves[leaf_index] = None;
        }
        Some(page)
    }

    /// How many pages are resident.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Every resident page with its index, in index order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, ResidentPage)> + '_ {
        self.leaves.iter().enumerate().flat_map(|(leaf_index, leaf)| {
            leaf.iter().flat_map(move |leaf| {
                leaf.iter().enumerate().filter_map(move |(i, e)| {
                    decode(*e).map(|page| ((leaf_index * LEAF_PAGES + i) as u32, page))
                })
            })
        })
    }

    /// Heap bytes this table holds.
    pub fn metadata_bytes(&self) -> usize {
        let leaves = self.leaves.iter().filter(|l| l.is_some()).count();
        self.leaves.capacity() * core::mem::size_of::<Option<Box<Leaf>>>()
            + leaves * core::mem::size_of::<Leaf>()
    }
}

fn decode(entry: Entry) -> Option<ResidentPage> {
    if entry.frame == EMPTY.frame {
        return None;
    }
    Some(ResidentPage { frame: FrameRef::from_bits(entry.frame), slot: CopySlot(entry.slot) })
}
