//! ELF64 x86_64 executables, read in place and validated into segment descriptors.
//!
//! Every field the pager later relies on is checked here once, so the fault path can do plain
//! arithmetic: offsets and sizes lie inside the file, addresses lie inside the user range, loadable
//! segments are sorted and never share a page.

use core::fmt;

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

use crate::{page_align_down, page_align_up, Rights, PAGE_SIZE, USER_ADDRESS_LIMIT};

/// The most loadable segments one image may have; real executables have two to four.
pub const MAX_SEGMENTS: usize = 16;
/// The most program headers the parser walks; a larger count is a malformed file.
pub const MAX_PROGRAM_HEADERS: usize = 64;

const ELF_MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];
const CLASS_64: u8 = 2;
const DATA_LITTLE_ENDIAN: u8 = 1;
const VERSION_CURRENT: u8 = 1;
const TYPE_EXECUTABLE: u16 = 2;
const MACHINE_X86_64: u16 = 62;
const PT_LOAD: u32 = 1;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

/// The ELF64 file header, as it lies in the file.
#[derive(FromBytes, KnownLayout, Immutable, Unaligned, Debug)]
#[repr(C)]
pub struct FileHeader {
    pub ident: [u8; 16],
    pub kind: U16,
    pub machine: U16,
    pub version: U32,
    pub entry: U64,
    pub program_header_offset: U64,
    pub section_header_offset: U64,
    pub flags: U32,
    pub header_size: U16,
    pub program_header_size: U16,
    pub program_header_count: U16,
    pub section_header_size: U16,
    pub section_header_count: U16,
    pub section_name_index: U16,
}

/// One ELF64 program header, as it lies in the file.
#[derive(FromBytes, KnownLayout, Immutable, Unaligned, Debug)]
#[repr(C)]
pub struct ProgramHeader {
    pub kind: U32,
    pub flags: U32,
    pub offset: U64,
    pub vaddr: U64,
    pub paddr: U64,
    pub file_size: U64,
    pub memory_size: U64,
    pub align: U64,
}

/// Why a file is not an executable the pager can load. Each variant names the offending field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// The file is shorter than the ELF header.
    TooShort { length: usize },
    /// The first four bytes are not `\x7fELF`.
    BadMagic,
    /// `e_ident[EI_CLASS]` is not ELFCLASS64.
    NotElf64 { class: u8 },
    /// `e_ident[EI_DATA]` is not little-endian.
    NotLittleEndian { data: u8 },
    /// `e_ident[EI_VERSION]` is not 1.
    BadIdentVersion { version: u8 },
    /// `e_version` is not 1.
    BadVersion { version: u32 },
    /// `e_type` is not ET_EXEC (a relocatable, shared or PIE file).
    NotExecutable { kind: u16 },
    /// `e_machine` is not EM_X86_64.
    WrongMachine { machine: u16 },
    /// `e_phentsize` is not the size of an ELF64 program header.
    BadProgramHeaderSize { size: u16 },
    /// `e_phnum` is zero or above [`MAX_PROGRAM_HEADERS`].
    BadProgramHeaderCount { count: u16 },
    /// The program header table does not lie inside the file.
    ProgramHeadersOutOfFile { offset: u64, count: u16 },
    /// More PT_LOAD segments than [`MAX_SEGMENTS`].
    TooManySegments { count: usize },
    /// No PT_LOAD segment.
    NoLoadableSegment,
    /// `p_filesz > p_memsz`.
    FileSizeExceedsMemorySize { segment: usize, file_size: u64, memory_size: u64 },
    /// `p_offset + p_filesz` overflows or lies past the end of the file.
    SegmentOutOfFile { segment: usize, offset: u64, file_size: u64 },
    /// `p_offset` and `p_vaddr` differ modulo the page size, so no page maps file to memory.
    MisalignedSegment { segment: usize, offset: u64, vaddr: u64 },
    /// `p_align` is neither 0, 1 nor a power of two.
    BadAlignment { segment: usize, align: u64 },
    /// `p_vaddr + p_memsz` overflows or reaches past the user address limit.
    SegmentOutsideUserRange { segment: usize, vaddr: u64, memory_size: u64 },
    /// The segment covers page zero, which stays unmapped so null dereferences fault.
    SegmentInNullPage { segment: usize },
    /// PT_LOAD segments are not sorted by `p_vaddr`.
    SegmentsUnsorted { segment: usize },
    /// Two PT_LOAD segments overlap or share a page.
    SegmentsOverlap { first: usize, second: usize },
    /// `e_entry` does not lie inside an executable segment.
    EntryNotExecutable { entry: u64 },
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooShort { length } => write!(f, "file is {length} bytes, shorter than an ELF64 header"),
            Self::BadMagic => write!(f, "not an ELF file (bad magic)"),
            Self::NotElf64 { class } => write!(f, "e_ident[EI_CLASS] is {class}, not ELFCLASS64"),
            Self::NotLittleEndian { data } => write!(f, "e_ident[EI_DATA] is {data}, not little-endian"),
            Self::BadIdentVersion { version } => write!(f, "e_ident[EI_VERSION] is {version}, not 1"),
            Self::BadVersion { version } => write!(f, "e_version is {version}, not 1"),
            Self::NotExecutable { kind } => {
                write!(f, "e_type is {kind}, not ET_EXEC (static, non-PIE executables only)")
            }
            Self::WrongMachine { machine } => write!(f, "e_machine is {machine}, not EM_X86_64"),
            Self::BadProgramHeaderSize { size } => write!(f, "e_phentsize is {size}, not 56"),
            Self::BadProgramHeaderCount { count } => {
                write!(f, "e_phnum is {count} (1 to {MAX_PROGRAM_HEADERS} allowed)")
            }
            Self::ProgramHeadersOutOfFile { offset, count } => {
                write!(f, "{count} program headers at e_phoff {offset:#x} run past the end of the file")
            }
            Self::TooManySegments { count } => {
                write!(f, "{count} PT_LOAD segments, at most {MAX_SEGMENTS} supported")
            }
            Self::NoLoadableSegment => write!(f, "no PT_LOAD segment"),
            Self::FileSizeExceedsMemorySize { segment, file_size, memory_size } => write!(
                f,
                "segment {segment}: p_filesz {file_size:#x} exceeds p_memsz {memory_size:#x}"
            ),
            Self::SegmentOutOfFile { segment, offset, file_size } => write!(
                f,
                "segment {segment}: p_offset {offset:#x} + p_filesz {file_size:#x} lies past the end of the file"
            ),
            Self::MisalignedSegment { segment, offset, vaddr } => write!(
                f,
                "segment {segment}: p_offset {offset:#x} and p_vaddr {vaddr:#x} differ modulo the page size"
            ),
            Self::BadAlignment { segment, align } => {
                write!(f, "segment {segment}: p_align {align:#x} is not a power of two")
            }
            Self::SegmentOutsideUserRange { segment, vaddr, memory_size } => write!(
                f,
                "segment {segment}: p_vaddr {vaddr:#x} + p_memsz {memory_size:#x} reaches past the user limit {USER_ADDRESS_LIMIT:#x} (seL4 5.0 reports fault addresses in 32 bits)"
            ),
            Self::SegmentInNullPage { segment } => {
                write!(f, "segment {segment}: covers page zero, which must stay unmapped")
            }
            Self::SegmentsUnsorted { segment } => {
                write!(f, "segment {segment}: PT_LOAD segments are not sorted by p_vaddr")
            }
            Self::SegmentsOverlap { first, second } => {
                write!(f, "segments {first} and {second} overlap or share a page")
            }
            Self::EntryNotExecutable { entry } => {
                write!(f, "e_entry {entry:#x} is not inside an executable segment")
            }
        }
    }
}

/// A validated PT_LOAD segment: the HelenOS `elf_segment_header_t` the backend works from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// `p_vaddr`: where the first file byte lands.
    pub vaddr: u64,
    /// `p_offset`: where those bytes start in the file.
    pub offset: u64,
    /// `p_filesz`: bytes taken from the file; the rest of `memory_size` is zero.
    pub file_size: u64,
    /// `p_memsz`.
    pub memory_size: u64,
    /// Rights from `p_flags`.
    pub rights: Rights,
}

impl Segment {
    /// First byte after the file-backed part (HelenOS's `start_anon`).
    pub const fn file_end(&self) -> u64 {
        self.vaddr + self.file_size
    }

    /// The page-aligned address range the segment occupies.
    pub const fn page_range(&self) -> (u64, u64) {
        (page_align_down(self.vaddr), page_align_up(self.vaddr + self.memory_size))
    }
}

/// A validated executable: its entry point and loadable segments, borrowing the file bytes.
#[derive(Clone, Debug)]
pub struct ElfImage<'a> {
    bytes: &'a [u8],
    entry: u64,
    segments: heapless::Vec<Segment, MAX_SEGMENTS>,
}

impl<'a> ElfImage<'a> {
    /// Reads and validates an executable in place.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ElfError> {
        let (header, _) =
            FileHeader::ref_from_prefix(bytes).map_err(|_| ElfError::TooShort { length: bytes.len() })?;
        if header.ident[..4] != ELF_MAGIC {
            return Err(ElfError::BadMagic);
        }
        if header.ident[4] != CLASS_64 {
            return Err(ElfError::NotElf64 { class: header.ident[4] });
        }
        if header.ident[5] != DATA_LITTLE_ENDIAN {
            return Err(ElfError::NotLittleEndian { data: header.ident[5] });
        }
        if header.ident[6] != VERSION_CURRENT {
            return Err(ElfError::BadIdentVersion { version: header.ident[6] });
        }
        if header.version.get() != u32::from(VERSION_CURRENT) {
            return Err(ElfError::BadVersion { version: header.version.get() });
        }
        if header.kind.get() != TYPE_EXECUTABLE {
            return Err(ElfError::NotExecutable { kind: header.kind.get() });
        }
        if header.machine.get() != MACHINE_X86_64 {
            return Err(ElfError::WrongMachine { machine: header.machine.get() });
        }
        let entry_size = header.program_header_size.get();
        if usize::from(entry_size) != core::mem::size_of::<ProgramHeader>() {
            return Err(ElfError::BadProgramHeaderSize { size: entry_size });
        }
        let count = header.program_header_count.get();
        if count == 0 || usize::from(count) > MAX_PROGRAM_HEADERS {
            return Err(ElfError::BadProgramHeaderCount { count });
        }
        let table_offset = header.program_header_offset.get();
        let out_of_file = ElfError::ProgramHeadersOutOfFile { offset: table_offset, count };
        let table =
            usize::try_from(table_offset).ok().and_then(|start| bytes.get(start..)).ok_or(out_of_file)?;
        let (headers, _) =
            <[ProgramHeader]>::ref_from_prefix_with_elems(table, count.into()).map_err(|_| out_of_file)?;

        let mut segments = heapless::Vec::new();
        // The PT_LOAD index of `segments.last()`; empty segments in between are skipped.
        let mut previous_index = 0;
        let loads = headers.iter().filter(|h| h.kind.get() == PT_LOAD);
        for (index, header) in loads.enumerate() {
            let segment = validate_segment(index, header, bytes.len())?;
            if segment.memory_size == 0 {
                continue; // Occupies no memory; nothing to map.
            }
            if let Some(previous) = segments.last() {
                let previous: &Segment = previous;
                if segment.vaddr < previous.vaddr {
                    return Err(ElfError::SegmentsUnsorted { segment: index });
                }
                if segment.page_range().0 < previous.page_range().1 {
                    return Err(ElfError::SegmentsOverlap { first: previous_index, second: index });
                }
            }
            segments.push(segment).map_err(|_| ElfError::TooManySegments { count: index + 1 })?;
            previous_index = index;
        }
        if segments.is_empty() {
            return Err(ElfError::NoLoadableSegment);
        }
        let entry = header.entry.get();
        let entry_ok =
            segments.iter().any(|s| s.rights.execute && entry >= s.vaddr && entry < s.vaddr + s.memory_size);
        if !entry_ok {
            return Err(ElfError::EntryNotExecutable { entry });
        }
        Ok(Self { bytes, entry, segments })
    }

    /// `e_entry`.
    pub const fn entry(&self) -> u64 {
        self.entry
    }

    /// The loadable segments, sorted by address, none sharing a page.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The whole file.
    pub const fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

fn validate_segment(index: usize, header: &ProgramHeader, file_length: usize) -> Result<Segment, ElfError> {
    let vaddr = header.vaddr.get();
    let offset = header.offset.get();
    let file_size = header.file_size.get();
    let memory_size = header.memory_size.get();
    let align = header.align.get();
    if file_size > memory_size {
        return Err(ElfError::FileSizeExceedsMemorySize { segment: index, file_size, memory_size });
    }
    match offset.checked_add(file_size) {
        Some(end) if end <= file_length as u64 => {}
        _ => return Err(ElfError::SegmentOutOfFile { segment: index, offset, file_size }),
    }
    if align > 1 && !align.is_power_of_two() {
        return Err(ElfError::BadAlignment { segment: index, align });
    }
    if offset % PAGE_SIZE != vaddr % PAGE_SIZE {
        return Err(ElfError::MisalignedSegment { segment: index, offset, vaddr });
    }
    match vaddr.checked_add(memory_size) {
        Some(end) if end <= USER_ADDRESS_LIMIT => {}
        _ => return Err(ElfError::SegmentOutsideUserRange { segment: index, vaddr, memory_size }),
    }
    if memory_size > 0 && vaddr < PAGE_SIZE {
        return Err(ElfError::SegmentInNullPage { segment: index });
    }
    let flags = header.flags.get();
    let rights = Rights { read: flags & PF_R != 0, write: flags & PF_W != 0, execute: flags & PF_X != 0 };
    Ok(Segment { vaddr, offset, file_size, memory_size, rights })
}
