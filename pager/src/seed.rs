//! The seed's cases (HelenOS `backend_elf.c`): which frame backs a page, how a new one is filled, and
//! how it is mapped when paging structures are missing.
//!
//! For a page no shared pagemap holds, [`classify`] decides its [`PageSource`] from the area's
//! segment alone: the image's own frame, or a new pool frame whose [`FrameContent`] is a copy of the
//! file, zeroes, or both. That one decision gives the fault its class, the frame pool its choice of
//! frame, the fill its bytes and sharing its rule (a page whose frame is the image's needs no pagemap
//! entry). [`fill`] writes a new frame through the window (mapping it there before its first
//! write); [`map_frame`] maps it with the frame's own cap (a fresh frame of zeroes) or a cap copy,
//! after making the paging structures the client lacks, with [`map_with_missing_levels`] as the
//! fallback for any still missing; the root task maps its own frames with that helper too.

use crate::area::{Area, Backend};
use crate::elf::ElfImage;
use crate::fault::RefusalReason;
use crate::frames::{Allocation, SlotPool};
use crate::platform::{KernelError, MapError, MappingCap, PagingLevel, Platform};
use crate::structures::PagingStructures;
use crate::{page_align_down, ClientId, CopySlot, FrameRef, ImagePage, Rights, PAGE_SIZE};

const PAGE: usize = PAGE_SIZE as usize;

/// What a new pool frame holds. (An image frame is not new: it holds the file's page as it is.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameContent {
    /// A copy of one page of a writable segment's file bytes.
    Copy,
    /// All zeroes (.bss, heap, stack, shared regions).
    Zero,
    /// File bytes in the middle, zero padding on one or both sides.
    Mixed,
}

/// An executable registered with the pager, and where its file starts in the boot image.
pub(crate) struct Image<'img> {
    pub(crate) elf: ElfImage<'img>,
    /// The boot-image page holding the file's first byte (the file is page aligned there).
    pub(crate) first_page: u32,
}

/// Where a page's contents come from: the seed's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PageSource<'img> {
    /// The image's own frame: no pool frame, no copy.
    Image(ImagePage),
    /// A new pool frame, filled as described.
    New(NewFrame<'img>),
}

/// How to fill a new frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NewFrame<'img> {
    /// All zeroes.
    Zero,
    /// A whole page of the file (a writable segment's page wholly inside it): one write, with
    /// nothing for the window to check.
    Copy(&'img [u8; PAGE]),
    /// The file's `bytes` after `pad_lo` zeroes, and zeroes after them to the page's end: a page
    /// straddling the segment's start or its file end.
    Mixed { bytes: &'img [u8], pad_lo: usize },
}

impl NewFrame<'_> {
    /// The content class of the filled frame.
    pub(crate) fn content(&self) -> FrameContent {
        match self {
            Self::Zero => FrameContent::Zero,
            Self::Copy(_) => FrameContent::Copy,
            Self::Mixed { .. } => FrameContent::Mixed,
        }
    }
}

/// The page of `file` from byte `start`, if the file holds all of it.
fn file_page(file: &[u8], start: usize) -> Option<&[u8; PAGE]> {
    file.get(start..)?.first_chunk::<PAGE>()
}

/// The seed's cases for page `index` of an area, with one addition: a straddling page of a
/// read-only segment whose pads are already zeroes in the file is served as the image's own frame.
/// What the client reads is the same as a copy with zeroed pads, and it costs no frame and no copy
/// (HelenOS copies every partial page). That is the usual last page of a text or read-only data
/// segment, since linkers pad segments apart with zeroes. The page must lie wholly inside the file,
/// so that the image's frame holds exactly those bytes.
// Inlined: out of line it costs every fault some twenty instructions on seL4 (`cargo xtask bench`).
#[inline(always)]
pub(crate) fn classify<'img>(area: &Area, index: u32, images: &[Image<'img>]) -> PageSource<'img> {
    let Backend::Segment { image, segment } = area.backend else {
        return PageSource::New(NewFrame::Zero);
    };
    // Addresses in the segment's own terms, so an area shared in at another base reads the same bytes.
    let page = page_align_down(segment.vaddr) + u64::from(index) * PAGE_SIZE;
    let start_anon = segment.file_end();
    let image = &images[usize::from(image.0)];
    let image_page = |page_offset: u64| ImagePage(image.first_page + (page_offset / PAGE_SIZE) as u32);
    if page >= segment.vaddr && page + PAGE_SIZE <= start_anon {
        let file_offset = segment.offset + (page - segment.vaddr);
        if segment.rights.write {
            // The ELF parser checked that the segment's file bytes lie inside the file.
            let page = file_page(image.elf.bytes(), file_offset as usize).expect("a segment inside its file");
            PageSource::New(NewFrame::Copy(page))
        } else {
            PageSource::Image(image_page(file_offset))
        }
    } else if page >= start_anon {
        PageSource::New(NewFrame::Zero)
    } else {
        let pad_lo = segment.vaddr.saturating_sub(page);
        let pad_hi = (page + PAGE_SIZE).saturating_sub(start_anon);
        let file_offset = segment.offset + (page + pad_lo - segment.vaddr);
        let page_offset = file_offset - pad_lo;
        let file = image.elf.bytes();
        if !segment.rights.write && padded_with_zeroes(file, page_offset, pad_lo, pad_hi) {
            PageSource::Image(image_page(page_offset))
        } else if pad_lo + pad_hi >= PAGE_SIZE {
            // A straddling page with no file bytes in it (p_filesz == 0) is just a zero page.
            PageSource::New(NewFrame::Zero)
        } else {
            let (pad_lo, pad_hi) = (pad_lo as usize, pad_hi as usize);
            let start = file_offset as usize;
            let bytes = &file[start..start + PAGE - pad_lo - pad_hi];
            PageSource::New(NewFrame::Mixed { bytes, pad_lo })
        }
    }
}

/// The seed's common cases for an area's pages, worked out once when the area is made: a fault on
/// a page of zeroes, or on a segment's page wholly inside the file (the image's own frame when
/// read-only, a copy of it when writable), then finds its source with a comparison or two, where
/// [`classify`] works through the segment's addresses and the image each time. Every other page (a
/// straddling page) still takes [`classify`], and [`SeedPages::source`] answers exactly as it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SeedPages {
    /// Pages from this index on hold only zeroes (at or above the file end; 0 for anonymous
    /// memory): `classify`'s `page >= start_anon`.
    zero_from: u32,
    /// Pages `image_from..image_to` are the image's own frames (a read-only segment's pages wholly
    /// inside the file), page `image_from` boot-image page `image_page` and the rest in order.
    image_from: u32,
    image_to: u32,
    image_page: u32,
    /// Pages `copy_from..copy_to` are copies (a writable segment's pages wholly inside the file):
    /// page `copy_from` is page `file_page` of image `image`'s file (a page-aligned offset there:
    /// the ELF parser takes only segments whose `p_offset` is congruent to `p_vaddr`), the rest in
    /// order. Apart from the image range, so an image frame's fault takes the same comparisons as
    /// before.
    copy_from: u32,
    copy_to: u32,
    image: u16,
    file_page: u32,
}

impl SeedPages {
    /// No common case: every page takes [`classify`].
    const NONE: Self = Self {
        zero_from: u32::MAX,
        image_from: 0,
        image_to: 0,
        image_page: 0,
        copy_from: 0,
        copy_to: 0,
        image: 0,
        file_page: 0,
    };

    /// The common cases of an area backed by `backend`, whose image (if any) is in `images`.
    pub(crate) fn of(backend: Backend, images: &[Image<'_>]) -> Self {
        let Backend::Segment { image: image_id, segment } = backend else {
            // Anonymous memory is all zeroes (a guard or reserved page is never served).
            return Self { zero_from: 0, ..Self::NONE };
        };
        let Some(image) = images.get(usize::from(image_id.0)) else {
            return Self::NONE;
        };
        let first = page_align_down(segment.vaddr);
        let file_end = segment.file_end();
        let zero_from = u32::try_from((file_end - first).div_ceil(PAGE_SIZE)).unwrap_or(u32::MAX);
        // The pages wholly inside the file: from the first at or above `vaddr` to the last that
        // ends by the file end. A writable segment's are copies.
        let image_from = u32::from(segment.vaddr != first);
        let image_to = u32::try_from((file_end - first) / PAGE_SIZE).unwrap_or(0);
        let file_offset = segment.offset + (first + u64::from(image_from) * PAGE_SIZE - segment.vaddr);
        // A copy's bytes are a page of the file, taken on each fault: the range must be whole pages
        // of it (as the parser's checks make it; were it not, `classify` would serve these pages).
        let file_pages = (image.elf.bytes().len() / PAGE) as u64;
        let copy_fits = file_offset.is_multiple_of(PAGE_SIZE)
            && file_offset / PAGE_SIZE + u64::from(image_to.saturating_sub(image_from)) <= file_pages;
        if image_to <= image_from || (segment.rights.write && !copy_fits) {
            return Self { zero_from, ..Self::NONE };
        }
        if segment.rights.write {
            let (copy_from, copy_to) = (image_from, image_to);
            let file_page = (file_offset / PAGE_SIZE) as u32;
            return Self { zero_from, copy_from, copy_to, image: image_id.0, file_page, ..Self::NONE };
        }
        let image_page = image.first_page + (file_offset / PAGE_SIZE) as u32;
        Self { zero_from, image_from, image_to, image_page, ..Self::NONE }
    }

    /// Whether page `index` holds only zeroes (at or above the file end, or anonymous memory).
    #[inline(always)]
    pub(crate) fn is_zero(&self, index: u32) -> bool {
        index >= self.zero_from
    }

    /// Where page `index` of `area` (whose common cases these are) comes from: [`classify`]'s
    /// answer, by comparisons for the common cases.
    #[inline(always)]
    pub(crate) fn source<'img>(&self, area: &Area, index: u32, images: &[Image<'img>]) -> PageSource<'img> {
        let offset = index.wrapping_sub(self.image_from);
        let source = if index >= self.zero_from {
            PageSource::New(NewFrame::Zero)
        } else if offset < self.image_to - self.image_from {
            PageSource::Image(ImagePage(self.image_page + offset))
        } else if index.wrapping_sub(self.copy_from) < self.copy_to - self.copy_from {
            let page = self.file_page + index.wrapping_sub(self.copy_from);
            // There, as `of` checked: the fallback is never taken.
            let (pages, _) = images[usize::from(self.image)].elf.bytes().as_chunks::<PAGE>();
            match pages.get(page as usize) {
                Some(bytes) => PageSource::New(NewFrame::Copy(bytes)),
                None => return classify_elsewhere(area, index, images),
            }
        } else {
            return classify(area, index, images);
        };
        debug_assert_eq!(source, classify(area, index, images), "page {index} of {:?}", area.backend);
        source
    }
}

/// [`classify`] out of line, for a branch of the fault path that is never taken: inlined there a
/// second time, it cost every class a few instructions per fault (`cargo xtask bench`).
#[cold]
#[inline(never)]
fn classify_elsewhere<'img>(area: &Area, index: u32, images: &[Image<'img>]) -> PageSource<'img> {
    classify(area, index, images)
}

/// The image's own frame holding page `index` of a writable segment's area, when that page lies wholly
/// in the file (what [`classify`] copies as [`FrameContent::Copy`]): the frame cow maps read-only
/// until the first write.
pub(crate) fn image_frame_of(area: &Area, index: u32, images: &[Image<'_>]) -> Option<ImagePage> {
    let Backend::Segment { image, segment } = area.backend else {
        return None;
    };
    let page = page_align_down(segment.vaddr) + u64::from(index) * PAGE_SIZE;
    if page < segment.vaddr || page + PAGE_SIZE > segment.file_end() {
        return None;
    }
    let file_offset = segment.offset + (page - segment.vaddr);
    let first_page = images.get(usize::from(image.0))?.first_page;
    Some(ImagePage(first_page + (file_offset / PAGE_SIZE) as u32))
}

/// Whether the file holds a whole page at `page_offset` whose first `pad_lo` and last `pad_hi`
/// bytes are zero.
fn padded_with_zeroes(bytes: &[u8], page_offset: u64, pad_lo: u64, pad_hi: u64) -> bool {
    let page = usize::try_from(page_offset).ok().and_then(|start| bytes.get(start..start.checked_add(PAGE)?));
    page.is_some_and(|page| all_zero(&page[..pad_lo as usize]) && all_zero(&page[PAGE - pad_hi as usize..]))
}

/// Whether every byte is zero: eight at a time, OR-ed together with no early exit (the pads are
/// zero in every packed image, so the whole of them is read anyway), which the compiler turns into
/// a loop over 16-byte vectors. Byte by byte it was some 12,000 instructions for a segment's last
/// page, the fault on it included.
fn all_zero(bytes: &[u8]) -> bool {
    let (words, tail) = bytes.as_chunks::<8>();
    let word_bits = words.iter().fold(0, |bits, word| bits | u64::from_ne_bytes(*word));
    let tail_bits = tail.iter().fold(0, |bits, byte| bits | byte);
    word_bits == 0 && tail_bits == 0
}

/// Fills a new frame through the window, mapping it there first when it must be written and
/// never was (the window is lazy). Zeroes already there (a fresh frame) are not written again.
/// Returns whether the frame's own cap is free to map it into the client: a fresh frame that
/// needed no fill is in no window, so the client's mapping needs no cap copy. A copy into a fresh
/// frame, the commonest fill, is one platform call ([`FrameWindow::window_and_write_page`]).
// Inlined, as `map_frame` is: the fault path calls both from another module, which may lie in another
// codegen unit, and out of line they cost every fault a call each (`cargo xtask bench`). Always: with
// the callers zero-page and cow add, a plain hint no longer kept it inline.
#[inline(always)]
pub(crate) fn fill(
    platform: &mut impl Platform,
    allocation: Allocation,
    new: &NewFrame<'_>,
) -> Result<bool, KernelError> {
    let frame = allocation.frame;
    if allocation.zeroed {
        match *new {
            NewFrame::Zero => return Ok(true),
            NewFrame::Copy(bytes) => return platform.window_and_write_page(frame, bytes).map(|()| false),
            NewFrame::Mixed { .. } => platform.map_window(frame)?,
        }
    } else if !platform.is_windowed(frame) {
        platform.map_window(frame)?;
    }
    match *new {
        NewFrame::Copy(bytes) => platform.write_page(frame, bytes),
        NewFrame::Mixed { bytes, pad_lo } => {
            let end = pad_lo + bytes.len();
            zero(platform, allocation, 0, pad_lo);
            platform.write_frame(frame, pad_lo, bytes);
            zero(platform, allocation, end, PAGE - end);
        }
        NewFrame::Zero => zero(platform, allocation, 0, PAGE),
    }
    Ok(false)
}

/// Zeroes part of a new frame, unless it is known to be all zeroes already.
fn zero(platform: &mut impl Platform, allocation: Allocation, offset: usize, length: usize) {
    if !allocation.zeroed && length > 0 {
        platform.zero_frame(allocation.frame, offset, length);
    }
}

/// Maps a frame into a client (HelenOS `page_mapping_insert`): with the pool frame's own cap when
/// `own_cap` (a fresh frame in no window), else with a new cap copy. Paging structures the client
/// lacks are made first (`structures` knows which), so the map does not fail for one; should it
/// still find a level missing, that level is made and the map tried again. Returns the copy slot
/// ([`CopySlot::OWN`] for the frame's own cap).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn map_frame(
    platform: &mut impl Platform,
    slots: &mut SlotPool,
    structures: &mut PagingStructures,
    client: ClientId,
    vaddr: u64,
    frame: FrameRef,
    own_cap: bool,
    rights: Rights,
) -> Result<CopySlot, RefusalReason> {
    let large = matches!(frame, FrameRef::Large(_));
    if !structures.covers(vaddr, large) {
        structures
            .make_missing(platform, client, vaddr, large)
            .map_err(|(level, error)| RefusalReason::NoPagingStructure { level, error })?;
    }
    let cap = match frame {
        FrameRef::Pool(pool) if own_cap => MappingCap::Own(pool),
        _ => {
            let slot = slots.take().ok_or(RefusalReason::OutOfSlots { capacity: slots.capacity() })?;
            if let Err(error) = platform.copy_frame_cap(frame, slot) {
                slots.put(slot);
                return Err(RefusalReason::Kernel(error));
            }
            MappingCap::Copy(slot)
        }
    };
    // The map itself inline; only a map that still finds a level missing (the structures were made
    // above, so the kernel and the record disagree) goes on out of line.
    let mapped = match platform.map_page(client, vaddr, cap, rights) {
        Ok(()) => Ok(()),
        Err(error) => map_again(platform, structures, client, vaddr, cap, rights, error),
    };
    let reason = match mapped {
        Ok(()) => {
            return Ok(match cap {
                MappingCap::Copy(slot) => slot,
                MappingCap::Own(_) => CopySlot::OWN,
            })
        }
        Err(LevelsError::Map(error)) => RefusalReason::Kernel(error),
        Err(LevelsError::Level { level, error }) => RefusalReason::NoPagingStructure { level, error },
        Err(LevelsError::StillMissing(level)) => RefusalReason::Kernel(KernelError::LevelStillMissing(level)),
    };
    if let MappingCap::Copy(slot) = cap {
        discard_copy(platform, slots, slot);
    }
    Err(reason)
}

/// [`map_frame`]'s map after its first try failed with `first`: [`map_with_missing_levels`] from
/// that answer on (the first try is not made again).
#[cold]
#[inline(never)]
fn map_again(
    platform: &mut impl Platform,
    structures: &mut PagingStructures,
    client: ClientId,
    vaddr: u64,
    cap: MappingCap,
    rights: Rights,
    first: MapError,
) -> Result<(), LevelsError<KernelError, KernelError>> {
    let mut first = Some(first);
    map_with_missing_levels(
        platform,
        |platform| match first.take() {
            Some(error) => Err(error),
            None => platform.map_page(client, vaddr, cap, rights),
        },
        |platform, level| structures.make_level(platform, client, vaddr, level),
    )
}

/// Deletes a cap copy that never became a mapping; a slot the kernel would not empty stays out of
/// the pool.
fn discard_copy(platform: &mut impl Platform, slots: &mut SlotPool, slot: CopySlot) {
    if platform.delete_copy(slot).is_ok() {
        slots.put(slot);
    }
}

/// Why [`map_with_missing_levels`] gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LevelsError<K, E> {
    /// The map failed for a reason other than a missing level.
    Map(K),
    /// A missing paging structure could not be made.
    Level { level: PagingLevel, error: E },
    /// The map still found `level` missing after it had been made: the maker and the kernel
    /// disagree about the address space.
    StillMissing(PagingLevel),
}

/// Maps with `map`; each time it finds a paging structure missing, makes that level with
/// `make_level` and tries again (HelenOS `page_mapping_insert`, seL4's `FailedLookup`). One
/// helper for the pager's client mappings and the root task's own, so the loop and its end case
/// live in one place: a level reported missing again after it was made ends the loop, so it runs
/// at most four times (three levels below the PML4, then the map).
///
/// Both steps get `context` (the platform), so neither has to hold it.
#[inline]
pub fn map_with_missing_levels<C: ?Sized, K, E>(
    context: &mut C,
    mut map: impl FnMut(&mut C) -> Result<(), MapError<K>>,
    mut make_level: impl FnMut(&mut C, PagingLevel) -> Result<(), E>,
) -> Result<(), LevelsError<K, E>> {
    let mut made = 0u8;
    loop {
        match map(context) {
            Ok(()) => return Ok(()),
            Err(MapError::Kernel(error)) => return Err(LevelsError::Map(error)),
            Err(MapError::MissingLevel(level)) => {
                let bit = 1u8 << level as u8;
                if made & bit != 0 {
                    return Err(LevelsError::StillMissing(level));
                }
                made |= bit;
                make_level(context, level).map_err(|error| LevelsError::Level { level, error })?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{map_with_missing_levels, LevelsError};
    use crate::platform::{MapError, PagingLevel};

    /// A toy address space: which levels exist, top down; the map reports the first one missing.
    struct Space {
        present: [bool; 3],
        tries: u32,
        /// Make a level without it showing up (a maker that lies).
        broken: Option<PagingLevel>,
    }

    const LEVELS: [PagingLevel; 3] = [PagingLevel::Pdpt, PagingLevel::PageDirectory, PagingLevel::PageTable];

    fn map(space: &mut Space) -> Result<(), MapError<&'static str>> {
        space.tries += 1;
        match space.present.iter().position(|p| !p) {
            Some(missing) => Err(MapError::MissingLevel(LEVELS[missing])),
            None => Ok(()),
        }
    }

    fn make(space: &mut Space, level: PagingLevel) -> Result<(), &'static str> {
        if space.broken != Some(level) {
            space.present[level as usize] = true;
        }
        Ok(())
    }

    #[test]
    fn all_zero_reads_every_byte() {
        let mut bytes = [0u8; 45];
        assert!(super::all_zero(&bytes) && super::all_zero(&bytes[..0]) && super::all_zero(&bytes[3..]));
        for at in [0, 7, 8, 39, 40, 44] {
            bytes[at] = 1;
            assert!(!super::all_zero(&bytes), "a byte at {at}");
            assert!(super::all_zero(&bytes[at + 1..]), "after {at}");
            bytes[at] = 0;
        }
    }

    #[test]
    fn makes_each_missing_level_then_maps() {
        let mut space = Space { present: [false; 3], tries: 0, broken: None };
        assert_eq!(map_with_missing_levels(&mut space, map, make), Ok(()));
        assert_eq!((space.present, space.tries), ([true; 3], 4));
        let mut space = Space { present: [true, true, false], tries: 0, broken: None };
        assert_eq!(map_with_missing_levels(&mut space, map, make), Ok(()));
        assert_eq!(space.tries, 2);
    }

    #[test]
    fn a_level_still_missing_after_it_was_made_is_named() {
        let mut space =
            Space { present: [true, false, false], tries: 0, broken: Some(PagingLevel::PageTable) };
        let result = map_with_missing_levels(&mut space, map, make);
        assert_eq!(result, Err(LevelsError::StillMissing(PagingLevel::PageTable)));
        assert_eq!(space.tries, 3);
    }

    #[test]
    fn errors_of_the_map_and_the_maker_are_passed_on() {
        let mut space = Space { present: [false; 3], tries: 0, broken: None };
        let result = map_with_missing_levels(&mut space, map, |_, _| Err("no memory"));
        assert_eq!(result, Err(LevelsError::Level { level: PagingLevel::Pdpt, error: "no memory" }));
        let result = map_with_missing_levels(&mut space, |_| Err(MapError::Kernel("refused")), make);
        assert_eq!(result, Err(LevelsError::Map::<_, &str>("refused")));
    }
}
