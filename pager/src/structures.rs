//! Which paging structures a client's address space has, so that a map is never tried before
//! the structures it needs exist.
//!
//! On seL4 a `Page_Map` into a missing level fails (`FailedLookup`), and the failed call costs a
//! kernel entry of its own. Every client area lies below [`USER_ADDRESS_LIMIT`] (4 GiB), so the
//! structures there fit a few bits: one PDPT, four page directories and 2,048 page tables (one
//! bit per 2 MiB span). The map path tests one bit; a missing structure is made first, top down.
//! An address above the limit (none of the pager's) is not tracked: its map finds missing levels
//! the old way, by failing.

use crate::platform::{KernelError, MapPages, PagingLevel};
use crate::{ClientId, USER_ADDRESS_LIMIT};

const TABLE_SHIFT: u32 = 21;
const DIRECTORY_SHIFT: u32 = 30;
const TABLE_WORDS: usize = (USER_ADDRESS_LIMIT >> TABLE_SHIFT) as usize / 64;

/// The paging structures one client's address space has below 4 GiB.
#[derive(Clone, Debug, Default)]
pub struct PagingStructures {
    pdpt: bool,
    /// One bit per GiB.
    directories: u8,
    /// One bit per 2 MiB span.
    tables: [u64; TABLE_WORDS],
    /// Structures made for this client (every level, every address).
    count: u32,
}

impl PagingStructures {
    /// Structures made so far.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether everything a map at `vaddr` needs exists: the page table, or for a large page
    /// (which fills a page-directory slot) the page directory.
    #[inline(always)]
    pub fn covers(&self, vaddr: u64, large: bool) -> bool {
        if vaddr >= USER_ADDRESS_LIMIT {
            // Not tracked: the map itself finds out.
            return true;
        }
        if large {
            return self.directories & (1 << (vaddr >> DIRECTORY_SHIFT)) != 0;
        }
        let span = (vaddr >> TABLE_SHIFT) as usize;
        self.tables[span / 64] & (1 << (span % 64)) != 0
    }

    fn has(&self, level: PagingLevel, vaddr: u64) -> bool {
        match level {
            PagingLevel::Pdpt => self.pdpt,
            PagingLevel::PageDirectory => self.directories & (1 << (vaddr >> DIRECTORY_SHIFT)) != 0,
            PagingLevel::PageTable => self.covers(vaddr, false),
        }
    }

    /// Records that `level` covering `vaddr` exists.
    fn record(&mut self, level: PagingLevel, vaddr: u64) {
        self.count += 1;
        if vaddr >= USER_ADDRESS_LIMIT {
            return;
        }
        match level {
            PagingLevel::Pdpt => self.pdpt = true,
            PagingLevel::PageDirectory => self.directories |= 1 << (vaddr >> DIRECTORY_SHIFT),
            PagingLevel::PageTable => {
                let span = (vaddr >> TABLE_SHIFT) as usize;
                self.tables[span / 64] |= 1 << (span % 64);
            }
        }
    }

    /// Makes the structure `level` covering `vaddr` and records it.
    pub fn make_level(
        &mut self,
        platform: &mut impl MapPages,
        client: ClientId,
        vaddr: u64,
        level: PagingLevel,
    ) -> Result<(), KernelError> {
        platform.map_paging_structure(client, vaddr, level)?;
        self.record(level, vaddr);
        Ok(())
    }

    /// Makes every structure a map at `vaddr` needs that the client lacks, top down (no page table
    /// for a `large` page). On failure, the level that could not be made and why.
    #[cold]
    #[inline(never)]
    pub fn make_missing(
        &mut self,
        platform: &mut impl MapPages,
        client: ClientId,
        vaddr: u64,
        large: bool,
    ) -> Result<(), (PagingLevel, KernelError)> {
        if vaddr >= USER_ADDRESS_LIMIT {
            return Ok(());
        }
        let levels: &[PagingLevel] = if large {
            &[PagingLevel::Pdpt, PagingLevel::PageDirectory]
        } else {
            &[PagingLevel::Pdpt, PagingLevel::PageDirectory, PagingLevel::PageTable]
        };
        for &level in levels {
            if !self.has(level, vaddr) {
                self.make_level(platform, client, vaddr, level).map_err(|error| (level, error))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_per_level() {
        let mut structures = PagingStructures::default();
        let vaddr = 0x4040_0000;
        assert!(!structures.covers(vaddr, false) && !structures.covers(vaddr, true));
        structures.record(PagingLevel::Pdpt, vaddr);
        structures.record(PagingLevel::PageDirectory, vaddr);
        assert!(structures.covers(vaddr, true) && !structures.covers(vaddr, false));
        structures.record(PagingLevel::PageTable, vaddr);
        assert!(structures.covers(vaddr, false));
        assert!(structures.covers(vaddr + 0x1f_f000, false), "the same 2 MiB span");
        assert!(!structures.covers(vaddr + 0x20_0000, false), "the next span");
        assert!(!structures.covers(0x4000, true), "another GiB");
        assert!(structures.covers(USER_ADDRESS_LIMIT, false), "above the limit: not tracked");
        assert_eq!(structures.count(), 3);
    }
}
