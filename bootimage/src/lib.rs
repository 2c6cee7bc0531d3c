//! The packed system image: a table describing apps, regions and policy, then the app ELFs, each
//! starting on a page boundary.
//!
//! The xtask writes it and appends it to the root task's ELF as its last loadable segment; the root
//! task reads it in place at boot. Page alignment is the point: an ELF that starts on a page of the
//! root task's boot image has its read-only pages mapped from the boot image's own frames, shared by
//! every instance, with no copy.
//!
//! Layout (little-endian, no padding, read with zerocopy):
//! `Header`, `AppRecord` × apps, `RegionRecord` × regions, `AttachmentRecord` × attachments,
//! `ShareRecord` × shares, zero padding to a page, then the ELFs, each page aligned. Everything
//! is checked by [`BootImage::parse`] before the root task trusts it.

#![no_std]
#![forbid(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;

use zerocopy::little_endian::{I32, U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Bytes in a page.
pub const PAGE_SIZE: usize = 4096;
/// The first eight bytes of an image.
pub const MAGIC: [u8; 8] = *b"SEL4PGR1";
/// The layout version this crate reads and writes. Version 2 added [`Header::copy_slot_limit`]
/// and [`AppRecord::runs`] (in what was a reserved field); version 3 the share table
/// ([`Header::share_count`], in what was a reserved field, and [`ShareRecord`]) and
/// [`AppRecord::time_limit_ms`]; version 4 the recording mode ([`Header::trace`],
/// [`Header::trace_window`]) and [`AppRecord::argument`]; version 5 the per-area policy:
/// [`AppRecord::policy`] and [`AppRecord::fault_around`], and [`AttachmentRecord::policy`] (in what
/// was a reserved byte); version 6 [`AppRecord::bench_floor`] and eviction: [`AppRecord::evict`] and
/// [`Header::store_bytes`].
pub const VERSION: u32 = 6;
/// Bytes of a name field (UTF-8, NUL padded): the app ABI's longest name.
pub const NAME_LENGTH: usize = abi::NAME_LIMIT;

/// The image header.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct Header {
    pub magic: [u8; 8],
    pub version: U32,
    /// Bytes of the whole image, a multiple of the page size.
    pub total_length: U32,
    pub app_count: U16,
    pub region_count: U16,
    pub attachment_count: U16,
    /// Records in the share table.
    pub share_count: U16,
    /// One of the app ABI's [`abi::policy`] numbers.
    pub policy: U32,
    /// Pages ahead for fault-around.
    pub policy_pages: U32,
    /// Frames the pager may retype for clients in all.
    pub frame_capacity: U32,
    /// The most cap-copy slots the pager may use (0: as many as the root task has room for).
    pub copy_slot_limit: U32,
    /// 1: the pager records every fault and streams the trace over serial (`cargo xtask trace`);
    /// 0: a normal image.
    pub trace: U16,
    /// While recording: the most pages a client keeps mapped (0: no window).
    pub trace_window: U16,
    /// Bytes the compressed store of evicted dirty pages may hold (0: no app evicts).
    pub store_bytes: U32,
    pub name: [u8; NAME_LENGTH],
}

/// One app: its ELF and how each instance's address space is laid out.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct AppRecord {
    pub name: [u8; NAME_LENGTH],
    /// Page index of the ELF from the image start.
    pub elf_page: U32,
    pub elf_length: U32,
    pub instances: U16,
    pub attachment_first: U16,
    pub attachment_count: U16,
    /// Runs of each instance, at least 1: a run that exits with [`AppRecord::expected_exit`] is
    /// followed by a fresh client for the same instance until this many have run.
    pub runs: U16,
    /// Heap area (zero size: none).
    pub heap_base: U32,
    pub heap_size: U32,
    /// Stack area `[top - size, top)`, with a guard page below.
    pub stack_top: U32,
    pub stack_size: U32,
    /// Pool frames one instance may hold (0: no budget).
    pub frame_budget: U32,
    /// What a client at its budget does: an [`eviction`] number (stop, fifo or clock).
    pub evict: u8,
    pub reserved: [u8; 3],
    /// The exit code the manifest expects, for the pager's report.
    pub expected_exit: I32,
    /// Milliseconds of guest time a client of this app may run before the pager stops it.
    pub time_limit_ms: U32,
    /// This app's records in the share table: the apps it may share areas into.
    pub share_first: U16,
    pub share_count: U16,
    /// The policy ([`abi::policy`] number) of each area kind: text, rodata, data, bss, heap, stack
    /// (a writable segment's file pages are data, its pages past the file end bss; an executable
    /// segment is text, any other read-only one rodata).
    pub policy: [u8; 6],
    /// Fault-around windows of the app's fault-around areas: pages after a faulting page holding
    /// file bytes, and after a faulting page of zeroes.
    pub fault_around: [u8; 2],
    /// The manifest's `argument`, UTF-8, NUL padded (the app reads it with the argument call).
    pub argument: [u8; abi::ARGUMENT_LIMIT],
    /// 1: the bench's floor client, whose invalid-opcode faults the pager steps over (`ud2`, two
    /// bytes); 0: any other app, stopped on one.
    pub bench_floor: u8,
}

/// What a client does at its frame budget ([`AppRecord::evict`]).
pub mod eviction {
    /// It is stopped (the manifest's `evict = "none"`, the default).
    pub const NONE: u8 = 0;
    /// It evicts the page resident longest.
    pub const FIFO: u8 = 1;
    /// It evicts by clock with unmap sampling.
    pub const CLOCK: u8 = 2;
}

/// A named shared region.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct RegionRecord {
    pub name: [u8; NAME_LENGTH],
    pub size: U32,
}

/// A region attached to an app at an address.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct AttachmentRecord {
    pub region: U16,
    pub writable: u8,
    /// The region's policy in this app ([`abi::policy`] number).
    pub policy: u8,
    pub address: U32,
}

/// An app that another may share areas into (the manifest's `share_to`).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct ShareRecord {
    /// Index of the destination app.
    pub app: U16,
}

/// Why bytes are not a valid image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    TooShort,
    BadMagic,
    UnsupportedVersion(u32),
    /// `total_length` is not a page multiple or exceeds the bytes present.
    BadLength {
        total_length: u32,
        available: usize,
    },
    /// The record tables run past the first ELF page.
    TablesTooLong,
    /// An app's ELF lies outside the image or before the tables end.
    ElfOutOfImage {
        app: usize,
    },
    /// An app's attachments name records that do not exist.
    BadAttachments {
        app: usize,
    },
    /// An attachment names a region that does not exist.
    BadRegion {
        attachment: usize,
    },
    /// An app's share records do not exist, or name an app that does not.
    BadShares {
        app: usize,
    },
    /// An app's instances are to run zero times.
    NoRuns {
        app: usize,
    },
    /// An app's eviction number is none of [`eviction`]'s.
    BadEviction {
        app: usize,
    },
    /// A name is not UTF-8.
    BadName,
}

impl core::fmt::Display for FormatError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooShort => f.write_str("image shorter than its header"),
            Self::BadMagic => f.write_str("image magic is not SEL4PGR1"),
            Self::UnsupportedVersion(v) => write!(f, "image layout version {v}, expected {VERSION}"),
            Self::BadLength { total_length, available } => {
                write!(f, "image length {total_length} is not page aligned or exceeds {available} bytes")
            }
            Self::TablesTooLong => f.write_str("image tables run past the first ELF"),
            Self::ElfOutOfImage { app } => write!(f, "app {app}: ELF lies outside the image"),
            Self::BadAttachments { app } => write!(f, "app {app}: attachments out of range"),
            Self::BadRegion { attachment } => write!(f, "attachment {attachment}: no such region"),
            Self::BadShares { app } => write!(f, "app {app}: share records out of range"),
            Self::NoRuns { app } => write!(f, "app {app}: runs is 0, not at least 1"),
            Self::BadEviction { app } => write!(f, "app {app}: eviction number is not 0, 1 or 2"),
            Self::BadName => f.write_str("a name is not UTF-8"),
        }
    }
}

/// A checked image, borrowed in place.
#[derive(Clone, Copy, Debug)]
pub struct BootImage<'a> {
    bytes: &'a [u8],
    header: &'a Header,
    apps: &'a [AppRecord],
    regions: &'a [RegionRecord],
    attachments: &'a [AttachmentRecord],
    shares: &'a [ShareRecord],
}

impl<'a> BootImage<'a> {
    /// Checks every offset, length and index in the tables.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, FormatError> {
        let (header, rest) = Header::ref_from_prefix(bytes).map_err(|_| FormatError::TooShort)?;
        if header.magic != MAGIC {
            return Err(FormatError::BadMagic);
        }
        if header.version.get() != VERSION {
            return Err(FormatError::UnsupportedVersion(header.version.get()));
        }
        let total_length = header.total_length.get();
        let total = total_length as usize;
        if !total.is_multiple_of(PAGE_SIZE) || total > bytes.len() {
            return Err(FormatError::BadLength { total_length, available: bytes.len() });
        }
        let bytes = &bytes[..total];
        let too_long = FormatError::TablesTooLong;
        let (apps, rest) = <[AppRecord]>::ref_from_prefix_with_elems(rest, header.app_count.get().into())
            .map_err(|_| too_long)?;
        let (regions, rest) =
            <[RegionRecord]>::ref_from_prefix_with_elems(rest, header.region_count.get().into())
                .map_err(|_| too_long)?;
        let (attachments, rest) =
            <[AttachmentRecord]>::ref_from_prefix_with_elems(rest, header.attachment_count.get().into())
                .map_err(|_| too_long)?;
        let (shares, _) = <[ShareRecord]>::ref_from_prefix_with_elems(rest, header.share_count.get().into())
            .map_err(|_| too_long)?;
        let tables_end = core::mem::size_of::<Header>()
            + core::mem::size_of_val(apps)
            + core::mem::size_of_val(regions)
            + core::mem::size_of_val(attachments)
            + core::mem::size_of_val(shares);
        if tables_end > total {
            return Err(FormatError::TablesTooLong);
        }
        for (index, app) in apps.iter().enumerate() {
            let start = app.elf_page.get() as usize * PAGE_SIZE;
            let end = start.checked_add(app.elf_length.get() as usize);
            if start < tables_end || end.is_none_or(|end| end > total) {
                return Err(FormatError::ElfOutOfImage { app: index });
            }
            let first = usize::from(app.attachment_first.get());
            if first + usize::from(app.attachment_count.get()) > attachments.len() {
                return Err(FormatError::BadAttachments { app: index });
            }
            if app.runs.get() == 0 {
                return Err(FormatError::NoRuns { app: index });
            }
            if app.evict > eviction::CLOCK {
                return Err(FormatError::BadEviction { app: index });
            }
            let first = usize::from(app.share_first.get());
            let records = shares.get(first..first + usize::from(app.share_count.get()));
            if records.is_none_or(|records| records.iter().any(|r| usize::from(r.app.get()) >= apps.len())) {
                return Err(FormatError::BadShares { app: index });
            }
            name(&app.name)?;
        }
        for (index, attachment) in attachments.iter().enumerate() {
            if usize::from(attachment.region.get()) >= regions.len() {
                return Err(FormatError::BadRegion { attachment: index });
            }
        }
        for region in regions {
            name(&region.name)?;
        }
        name(&header.name)?;
        Ok(Self { bytes, header, apps, regions, attachments, shares })
    }

    pub fn header(&self) -> &'a Header {
        self.header
    }

    /// The image's name.
    pub fn name(&self) -> &'a str {
        name(&self.header.name).expect("checked in parse")
    }

    pub fn apps(&self) -> &'a [AppRecord] {
        self.apps
    }

    pub fn regions(&self) -> &'a [RegionRecord] {
        self.regions
    }

    /// The attachments of one app.
    pub fn attachments_of(&self, app: &AppRecord) -> &'a [AttachmentRecord] {
        let first = usize::from(app.attachment_first.get());
        &self.attachments[first..first + usize::from(app.attachment_count.get())]
    }

    /// Whether `app` may share areas into the app at index `destination` (the manifest's
    /// `share_to`).
    pub fn may_share(&self, app: &AppRecord, destination: usize) -> bool {
        let first = usize::from(app.share_first.get());
        self.shares[first..first + usize::from(app.share_count.get())]
            .iter()
            .any(|record| usize::from(record.app.get()) == destination)
    }

    /// An app's ELF bytes.
    pub fn elf(&self, app: &AppRecord) -> &'a [u8] {
        let start = app.elf_page.get() as usize * PAGE_SIZE;
        &self.bytes[start..start + app.elf_length.get() as usize]
    }
}

impl AppRecord {
    /// The app's name.
    pub fn name(&self) -> &str {
        name(&self.name).unwrap_or("?")
    }

    /// The app's argument: its bytes up to the first NUL.
    pub fn argument(&self) -> &[u8] {
        let length = self.argument.iter().position(|&b| b == 0).unwrap_or(self.argument.len());
        &self.argument[..length]
    }

    /// The app's heap and stack in the app ABI's terms.
    pub fn layout(&self) -> abi::AppLayout {
        let heap = match self.heap_size.get() {
            0 => None,
            size => Some(abi::Span { base: u64::from(self.heap_base.get()), size: u64::from(size) }),
        };
        abi::AppLayout {
            heap,
            stack_top: u64::from(self.stack_top.get()),
            stack_size: u64::from(self.stack_size.get()),
        }
    }
}

impl BootImage<'_> {
    /// The regions attached to an app, in the app ABI's terms (`region` indexes [`Self::regions`]).
    pub fn app_attachments<'s>(&'s self, app: &AppRecord) -> impl Iterator<Item = abi::Attachment> + 's {
        self.attachments_of(app).iter().map(|attachment| {
            let region = attachment.region.get();
            let size = self.regions[usize::from(region)].size.get();
            let span = abi::Span { base: u64::from(attachment.address.get()), size: u64::from(size) };
            abi::Attachment { region, span, writable: attachment.writable != 0 }
        })
    }
}

impl RegionRecord {
    /// The region's name.
    pub fn name(&self) -> &str {
        name(&self.name).unwrap_or("?")
    }
}

fn name(field: &[u8; NAME_LENGTH]) -> Result<&str, FormatError> {
    let length = field.iter().position(|&b| b == 0).unwrap_or(NAME_LENGTH);
    core::str::from_utf8(&field[..length]).map_err(|_| FormatError::BadName)
}

/// Encodes a name field; `None` when it does not fit.
pub fn encode_name(text: &str) -> Option<[u8; NAME_LENGTH]> {
    let mut field = [0; NAME_LENGTH];
    if text.len() > NAME_LENGTH || text.as_bytes().contains(&0) {
        return None;
    }
    field[..text.len()].copy_from_slice(text.as_bytes());
    Some(field)
}

#[cfg(feature = "alloc")]
mod writer;
#[cfg(feature = "alloc")]
pub use writer::{AppSpec, AttachmentSpec, ImageSpec, RegionSpec};

/// The time limit a default [`AppSpec`] gets: the manifest's default (manifest crate).
pub const DEFAULT_TIME_LIMIT_MS: u32 = 30_000;
