//! An app's address space from the app ABI's list of its areas ([`abi::app_areas`]).
//!
//! The one place that list becomes areas: the root task, xtask's dry run and the host model lay an
//! app out through [`Pager::add_app`] (or [`Pager::add_app_area`], one area at a time), so an
//! instance looks the same everywhere and every overlap, the IPC buffer page's included, is found
//! by the pager's own area check. Dependency direction: `abi` ← `pager` (the ABI crate knows
//! nothing of the pager).

use core::fmt;

use abi::{AppArea, AppLayout, Attachment, Span};

use crate::area::{AreaKind, Backend};
use crate::elf::Segment;
use crate::pager::{Pager, PagerError};
use crate::policy::Policy;
use crate::{ClientId, ImageId, Rights, SharedId};

impl Segment {
    /// The pages the segment takes, as the app ABI writes a span.
    pub fn span(&self) -> Span {
        let (base, end) = self.page_range();
        Span::from_range(base, end)
    }
}

/// An area of an app that could not be added, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppAreaError {
    /// The area being added (`None`: the app's image is unknown).
    pub area: Option<AppArea>,
    pub error: PagerError,
}

impl fmt::Display for AppAreaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.area {
            Some(area) => write!(f, "{area}: {}", self.error),
            None => write!(f, "{}", self.error),
        }
    }
}

impl<P: Policy> Pager<'_, P> {
    /// Gives `client` every area of an app instance running `image`: the list of
    /// [`abi::app_areas`] for the image's segments, `layout` and `attachments`. `regions[n]` is
    /// the shared object of the image's region `n`.
    ///
    /// Stops at the first area that cannot be added and names it; the areas added before it stay
    /// (the caller removes the client).
    pub fn add_app(
        &mut self,
        client: ClientId,
        image: ImageId,
        layout: &AppLayout,
        attachments: impl IntoIterator<Item = Attachment>,
        regions: &[SharedId],
    ) -> Result<(), AppAreaError> {
        let unknown = AppAreaError { area: None, error: PagerError::UnknownImage(image) };
        // A copy (the segment table and a reference to the bytes), so the pager can be changed
        // while the list is walked.
        let elf = self.image(image).ok_or(unknown)?.clone();
        for area in abi::app_areas(elf.segments().iter().map(Segment::span), layout, attachments) {
            self.add_app_area(client, image, &area, regions)
                .map_err(|error| AppAreaError { area: Some(area), error })?;
        }
        Ok(())
    }

    /// Adds one area of [`abi::app_areas`]' list to `client`, whose image is `image`. A segment's
    /// area is made from the image's own segment (its span in `area` is for reports); a region's
    /// shared object is `regions[n]` for region `n`.
    pub fn add_app_area(
        &mut self,
        client: ClientId,
        image: ImageId,
        area: &AppArea,
        regions: &[SharedId],
    ) -> Result<(), PagerError> {
        match *area {
            AppArea::Segment { index, .. } => {
                let elf = self.image(image).ok_or(PagerError::UnknownImage(image))?;
                let segment = *elf
                    .segments()
                    .get(usize::from(index))
                    .ok_or(PagerError::UnknownSegment { image, index })?;
                let (base, end) = segment.page_range();
                let backend = Backend::Segment { image, segment };
                let area = self.new_area(base, end, segment.rights, backend, AreaKind::Segment(index));
                let limit = self.config().max_areas_per_client;
                Ok(self.client_mut(client)?.insert_area(area, limit)?)
            }
            AppArea::IpcBuffer => {
                let Span { base, size } = area.span();
                self.add_reserved(client, base, size, AreaKind::IpcBuffer)
            }
            AppArea::Heap(Span { base, size }) => {
                self.add_anonymous(client, base, size, Rights::READ_WRITE, AreaKind::Heap)
            }
            AppArea::Stack { top, size } => self.add_stack(client, top, size).map(drop),
            AppArea::Region(Attachment { region, span, writable }) => {
                let shared =
                    *regions.get(usize::from(region)).ok_or(PagerError::UnknownRegion(SharedId(region)))?;
                let rights = if writable { Rights::READ_WRITE } else { Rights::READ };
                self.attach_region(client, shared, span.base, span.size, rights, AreaKind::Region(region))
            }
        }
    }
}
