//! The compressed store: evicted dirty pages kept in the pager's own memory (there is no disk).
//!
//! A page goes in as an LZ4 block (`lz4_flex`, chosen over `miniz_oxide` by measured instructions
//! per page; see `docs/eviction.md`), as its raw bytes when compression would not shrink it, or, all
//! zeroes, as a marker with no bytes. The store holds at most its byte budget of stored bytes
//! ([`crate::PagerConfig::store_bytes`]); a page that does not fit is refused, and the pager stops
//! the client whose fault needed the room. Entries are keyed by client and virtual page number.
//!
//! Memory: each entry is its bytes in a heap allocation of their size (the root task's allocator
//! rounds that up to a power of two, so its heap needs up to twice the budget) plus a B-tree entry;
//! the compressor's hash table (8 KiB) and a page-sized buffer are allocated once, on first use.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use lz4_flex::block::{compress_into_with_table, decompress_into, get_maximum_output_size, CompressTable};

use crate::ClientId;

const PAGE: usize = crate::PAGE_SIZE as usize;

/// How a page is kept.
#[derive(Debug)]
enum Stored {
    /// All zeroes.
    Zero,
    /// Its bytes as they are (compression did not shrink it).
    Raw(Box<[u8]>),
    /// An LZ4 block.
    Lz4(Box<[u8]>),
}

impl Stored {
    fn bytes(&self) -> usize {
        match self {
            Self::Zero => 0,
            Self::Raw(b) | Self::Lz4(b) => b.len(),
        }
    }
}

/// What [`Store::put`] did with a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PutOutcome {
    Zero,
    Compressed { bytes: u32 },
    Raw,
}

/// The store's gauges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// The byte budget.
    pub capacity: u32,
    /// Bytes stored now.
    pub used: u32,
    /// The most bytes stored at once.
    pub peak: u32,
    /// Pages stored now (zero markers included).
    pub pages: u32,
    /// Of those, zero markers.
    pub zero_pages: u32,
}

/// One client's part of the store: its pages stored now (zero markers included) and their stored
/// bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoredPages {
    pub pages: u32,
    pub bytes: u32,
}

/// The store is full: the page needed `needed` bytes, `used` of `capacity` are taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StoreFull {
    pub(crate) needed: u32,
}

/// Evicted dirty pages, compressed.
#[derive(Default)]
pub(crate) struct Store {
    capacity: u32,
    used: u32,
    peak: u32,
    zero_pages: u32,
    entries: BTreeMap<u64, Stored>,
    /// The compressor's table and output buffer, made on first use.
    table: Option<Box<CompressTable>>,
    scratch: Vec<u8>,
}

impl core::fmt::Debug for Store {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Store").field("used", &self.used).field("pages", &self.entries.len()).finish()
    }
}

fn key(client: ClientId, vpn: u32) -> u64 {
    (u64::from(client.0) << 32) | u64::from(vpn)
}

impl Store {
    pub(crate) fn new(capacity: u32) -> Self {
        Self { capacity, ..Self::default() }
    }

    pub(crate) fn contains(&self, client: ClientId, vpn: u32) -> bool {
        self.entries.contains_key(&key(client, vpn))
    }

    /// Keeps `page` as client `client`'s page `vpn`.
    pub(crate) fn put(
        &mut self,
        client: ClientId,
        vpn: u32,
        page: &[u8; PAGE],
    ) -> Result<PutOutcome, StoreFull> {
        let (stored, outcome) = if page.iter().all(|&b| b == 0) {
            (Stored::Zero, PutOutcome::Zero)
        } else {
            let table = self.table.get_or_insert_with(|| Box::new(CompressTable::default()));
            if self.scratch.is_empty() {
                self.scratch = vec![0; get_maximum_output_size(PAGE)];
            }
            match compress_into_with_table(page, &mut self.scratch, table) {
                Ok(length) if length < PAGE => {
                    let fits = self.used as usize + length <= self.capacity as usize;
                    if !fits {
                        return Err(StoreFull { needed: length as u32 });
                    }
                    (
                        Stored::Lz4(self.scratch[..length].into()),
                        PutOutcome::Compressed { bytes: length as u32 },
                    )
                }
                // No smaller (or, which a page-sized buffer rules out, no room): kept as it is.
                _ => {
                    if self.used as usize + PAGE > self.capacity as usize {
                        return Err(StoreFull { needed: PAGE as u32 });
                    }
                    (Stored::Raw(page.as_slice().into()), PutOutcome::Raw)
                }
            }
        };
        self.used += stored.bytes() as u32;
        self.peak = self.peak.max(self.used);
        self.zero_pages += u32::from(matches!(stored, Stored::Zero));
        let old = self.entries.insert(key(client, vpn), stored);
        debug_assert!(old.is_none(), "a page stored twice");
        Ok(outcome)
    }

    /// Takes client `client`'s page `vpn` out into `page`; returns the stored bytes it took, or
    /// `None` when the store does not hold it.
    pub(crate) fn take(&mut self, client: ClientId, vpn: u32, page: &mut [u8; PAGE]) -> Option<u32> {
        let stored = self.entries.remove(&key(client, vpn))?;
        let bytes = stored.bytes() as u32;
        self.forget(&stored);
        match stored {
            Stored::Zero => page.fill(0),
            Stored::Raw(raw) => page.copy_from_slice(&raw),
            Stored::Lz4(block) => {
                // The store wrote the block from a whole page: anything else is a pager bug, and a
                // page of zeroes is what the client would then read rather than a panic.
                if !matches!(decompress_into(&block, page), Ok(PAGE)) {
                    debug_assert!(false, "a stored block did not decompress to a page");
                    page.fill(0);
                }
            }
        }
        Some(bytes)
    }

    /// Whether one of client `client`'s pages `vpns` is stored.
    pub(crate) fn any_in(&self, client: ClientId, vpns: core::ops::Range<u32>) -> bool {
        vpns.start < vpns.end
            && self.entries.range(key(client, vpns.start)..key(client, vpns.end)).next().is_some()
    }

    /// Drops client `client`'s page `vpn`, if stored; returns whether it was.
    pub(crate) fn discard(&mut self, client: ClientId, vpn: u32) -> bool {
        match self.entries.remove(&key(client, vpn)) {
            Some(stored) => {
                self.forget(&stored);
                true
            }
            None => false,
        }
    }

    /// Client `client`'s pages stored now and their bytes (counted from its entries: a report's
    /// question, not the fault path's).
    pub(crate) fn client_counts(&self, client: ClientId) -> StoredPages {
        let range = key(client, 0)..=key(client, u32::MAX);
        self.entries.range(range).fold(StoredPages::default(), |counts, (_, stored)| StoredPages {
            pages: counts.pages + 1,
            bytes: counts.bytes + stored.bytes() as u32,
        })
    }

    /// Drops every page of client `client` (its removal); returns how many.
    pub(crate) fn discard_client(&mut self, client: ClientId) -> u32 {
        let range = key(client, 0)..=key(client, u32::MAX);
        let keys: Vec<u64> = self.entries.range(range).map(|(k, _)| *k).collect();
        for k in &keys {
            let stored = self.entries.remove(k).expect("just listed");
            self.forget(&stored);
        }
        keys.len() as u32
    }

    fn forget(&mut self, stored: &Stored) {
        self.used -= stored.bytes() as u32;
        self.zero_pages -= u32::from(matches!(stored, Stored::Zero));
    }

    pub(crate) fn counts(&self) -> StoreCounts {
        StoreCounts {
            capacity: self.capacity,
            used: self.used,
            peak: self.peak,
            pages: self.entries.len() as u32,
            zero_pages: self.zero_pages,
        }
    }

    /// Heap bytes beyond the stored bytes: entries, the compressor's table and buffer.
    pub(crate) fn metadata_bytes(&self) -> usize {
        self.entries.len() * 32
            + self.table.as_ref().map_or(0, |_| core::mem::size_of::<CompressTable>() + 8192)
            + self.scratch.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::{PutOutcome, Store, StoreFull, StoredPages, PAGE};
    use crate::ClientId;

    fn patterned(seed: u8) -> [u8; PAGE] {
        let mut page = [0u8; PAGE];
        for (i, b) in page.iter_mut().enumerate() {
            *b = (i / 64) as u8 ^ seed;
        }
        page
    }

    #[test]
    fn pages_come_back_as_they_went_in() {
        let mut store = Store::new(1 << 20);
        let (a, b) = (ClientId(0), ClientId(1));
        let page = patterned(3);
        assert!(matches!(store.put(a, 10, &page), Ok(PutOutcome::Compressed { .. })));
        assert_eq!(store.put(b, 10, &[0; PAGE]), Ok(PutOutcome::Zero));
        // Incompressible bytes (an LCG's high bytes) are kept raw.
        let mut noise = [0u8; PAGE];
        let mut x = 12345u32;
        for byte in noise.iter_mut() {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            *byte = (x >> 24) as u8;
        }
        assert_eq!(store.put(a, 11, &noise), Ok(PutOutcome::Raw));
        assert_eq!(store.counts().pages, 3);
        assert_eq!(store.counts().zero_pages, 1);
        let mut out = [1u8; PAGE];
        assert!(store.take(a, 10, &mut out).is_some());
        assert_eq!(out, page);
        assert_eq!(store.take(b, 10, &mut out), Some(0));
        assert_eq!(out, [0; PAGE]);
        assert_eq!(store.take(a, 11, &mut out), Some(PAGE as u32));
        assert_eq!(out, noise);
        assert_eq!(store.take(a, 10, &mut out), None);
        assert_eq!((store.counts().used, store.counts().pages), (0, 0));
    }

    #[test]
    fn a_full_store_refuses_and_a_client_is_dropped_whole() {
        let mut store = Store::new(100);
        let page = patterned(1);
        let Err(StoreFull { needed }) = store.put(ClientId(0), 1, &page) else {
            panic!("a 100-byte store took a compressed page");
        };
        assert!(needed > 100);
        // A zero marker takes no bytes.
        assert_eq!(store.put(ClientId(0), 2, &[0; PAGE]), Ok(PutOutcome::Zero));
        let mut store = Store::new(1 << 16);
        for vpn in 0..5 {
            store.put(ClientId(2), vpn, &patterned(vpn as u8)).unwrap();
        }
        store.put(ClientId(3), 0, &page).unwrap();
        store.put(ClientId(3), 7, &[0; PAGE]).unwrap();
        let used = store.counts().used;
        let (two, three) = (store.client_counts(ClientId(2)), store.client_counts(ClientId(3)));
        assert_eq!((two.pages, three.pages), (5, 2));
        assert_eq!(two.bytes + three.bytes, used);
        assert_eq!(store.client_counts(ClientId(4)), StoredPages::default());
        assert_eq!(store.discard_client(ClientId(2)), 5);
        assert_eq!(store.client_counts(ClientId(2)), StoredPages::default());
        assert!(store.discard(ClientId(3), 7));
        assert_eq!(store.counts().pages, 1);
        assert!(store.discard(ClientId(3), 0));
        assert_eq!(store.counts().used, 0);
    }
}
