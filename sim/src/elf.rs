//! An ELF64 x86_64 executable builder for tests, with raw access to every header field.
//!
//! [`ElfBuilder`] lays segments out the way a linker does — each segment's file bytes at an offset
//! congruent to its address modulo the page size — and [`ElfBuilder::layout`] hands back the headers as
//! plain structs so a test can corrupt any field before [`ElfLayout::to_bytes`] serialises them.
//! [`ElfBuilder::expected_byte`] states what a loaded client must read at an address, straight from the
//! ELF rules, for tests to compare against.

/// `p_flags` bits.
pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;
pub const PF_R: u32 = 4;
/// Read-only data.
pub const FLAGS_R: u32 = PF_R;
/// Writable data.
pub const FLAGS_RW: u32 = PF_R | PF_W;
/// Code.
pub const FLAGS_RX: u32 = PF_R | PF_X;

/// `p_type` of a loadable segment.
pub const PT_LOAD: u32 = 1;
/// `p_type` of a note segment: present in real files, ignored by loaders.
pub const PT_NOTE: u32 = 4;

const PAGE: u64 = 4096;
const FILE_HEADER_BYTES: usize = 64;
const PROGRAM_HEADER_BYTES: usize = 56;

/// One segment to build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentSpec {
    /// `p_vaddr`.
    pub vaddr: u64,
    /// The file bytes (`p_filesz` is their length).
    pub bytes: Vec<u8>,
    /// `p_memsz`.
    pub memory_size: u64,
    /// `p_flags`.
    pub flags: u32,
}

/// The ELF64 file header, field by field (`e_ident` split into the parts tests corrupt).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawFileHeader {
    pub magic: [u8; 4],
    pub class: u8,
    pub data: u8,
    pub ident_version: u8,
    pub kind: u16,
    pub machine: u16,
    pub version: u32,
    pub entry: u64,
    pub program_header_offset: u64,
    pub section_header_offset: u64,
    pub flags: u32,
    pub header_size: u16,
    pub program_header_size: u16,
    pub program_header_count: u16,
    pub section_header_size: u16,
    pub section_header_count: u16,
    pub section_name_index: u16,
}

/// One ELF64 program header, field by field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawProgramHeader {
    pub kind: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub paddr: u64,
    pub file_size: u64,
    pub memory_size: u64,
    pub align: u64,
}

/// A laid-out file: headers plus the body bytes after them, ready to corrupt and serialise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElfLayout {
    pub header: RawFileHeader,
    pub program_headers: Vec<RawProgramHeader>,
    /// The whole file; the headers are written over its start by [`ElfLayout::to_bytes`].
    pub body: Vec<u8>,
}

impl ElfLayout {
    /// The file bytes: the body with the headers written over its start (at `e_phoff` for the
    /// program headers), growing the file if a corrupted offset points past it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut file = self.body.clone();
        let h = &self.header;
        let mut header = Vec::with_capacity(FILE_HEADER_BYTES);
        header.extend_from_slice(&h.magic);
        header.extend_from_slice(&[h.class, h.data, h.ident_version]);
        header.extend_from_slice(&[0; 9]);
        header.extend_from_slice(&h.kind.to_le_bytes());
        header.extend_from_slice(&h.machine.to_le_bytes());
        header.extend_from_slice(&h.version.to_le_bytes());
        header.extend_from_slice(&h.entry.to_le_bytes());
        header.extend_from_slice(&h.program_header_offset.to_le_bytes());
        header.extend_from_slice(&h.section_header_offset.to_le_bytes());
        header.extend_from_slice(&h.flags.to_le_bytes());
        for half in [
            h.header_size,
            h.program_header_size,
            h.program_header_count,
            h.section_header_size,
            h.section_header_count,
            h.section_name_index,
        ] {
            header.extend_from_slice(&half.to_le_bytes());
        }
        place(&mut file, 0, &header);
        let mut table = Vec::with_capacity(self.program_headers.len() * PROGRAM_HEADER_BYTES);
        for p in &self.program_headers {
            table.extend_from_slice(&p.kind.to_le_bytes());
            table.extend_from_slice(&p.flags.to_le_bytes());
            for word in [p.offset, p.vaddr, p.paddr, p.file_size, p.memory_size, p.align] {
                table.extend_from_slice(&word.to_le_bytes());
            }
        }
        // A corrupted offset far past any sane file is left out rather than allocating gigabytes.
        if let Ok(at) = usize::try_from(h.program_header_offset) {
            if at <= file.len() + (1 << 20) {
                place(&mut file, at, &table);
            }
        }
        file
    }
}

fn place(file: &mut Vec<u8>, at: usize, bytes: &[u8]) {
    if file.len() < at + bytes.len() {
        file.resize(at + bytes.len(), 0);
    }
    file[at..at + bytes.len()].copy_from_slice(bytes);
}

/// Builds a valid static x86_64 executable (ET_EXEC) from segments.
#[derive(Clone, Debug, Default)]
pub struct ElfBuilder {
    segments: Vec<SegmentSpec>,
    entry: Option<u64>,
    notes: usize,
}

impl ElfBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a PT_LOAD segment. Segments keep the order they are added in.
    pub fn segment(mut self, vaddr: u64, bytes: impl Into<Vec<u8>>, memory_size: u64, flags: u32) -> Self {
        self.segments.push(SegmentSpec { vaddr, bytes: bytes.into(), memory_size, flags });
        self
    }

    /// Sets `e_entry`; by default the start of the first executable segment.
    pub fn entry(mut self, entry: u64) -> Self {
        self.entry = Some(entry);
        self
    }

    /// Adds `count` PT_NOTE program headers before the loadable ones, as real toolchains emit.
    pub fn notes(mut self, count: usize) -> Self {
        self.notes = count;
        self
    }

    /// The segments as added.
    pub fn segments(&self) -> &[SegmentSpec] {
        &self.segments
    }

    /// The headers and body, each segment's bytes at an offset congruent to its address mod 4096.
    pub fn layout(&self) -> ElfLayout {
        let count = self.notes + self.segments.len();
        let headers_end = (FILE_HEADER_BYTES + count * PROGRAM_HEADER_BYTES) as u64;
        let mut body = vec![0; headers_end as usize];
        let mut program_headers = Vec::with_capacity(count);
        for _ in 0..self.notes {
            program_headers.push(RawProgramHeader {
                kind: PT_NOTE,
                flags: PF_R,
                offset: 0,
                vaddr: 0,
                paddr: 0,
                file_size: 0,
                memory_size: 0,
                align: 4,
            });
        }
        for segment in &self.segments {
            let cursor = body.len() as u64;
            // The smallest offset at or after the cursor with the address's page offset.
            let offset = cursor + (segment.vaddr.wrapping_sub(cursor) % PAGE);
            body.resize(offset as usize, 0);
            body.extend_from_slice(&segment.bytes);
            program_headers.push(RawProgramHeader {
                kind: PT_LOAD,
                flags: segment.flags,
                offset,
                vaddr: segment.vaddr,
                paddr: segment.vaddr,
                file_size: segment.bytes.len() as u64,
                memory_size: segment.memory_size,
                align: PAGE,
            });
        }
        let entry = self
            .entry
            .unwrap_or_else(|| self.segments.iter().find(|s| s.flags & PF_X != 0).map_or(0, |s| s.vaddr));
        let header = RawFileHeader {
            magic: [0x7f, b'E', b'L', b'F'],
            class: 2,
            data: 1,
            ident_version: 1,
            kind: 2,
            machine: 62,
            version: 1,
            entry,
            program_header_offset: FILE_HEADER_BYTES as u64,
            section_header_offset: 0,
            flags: 0,
            header_size: FILE_HEADER_BYTES as u16,
            program_header_size: PROGRAM_HEADER_BYTES as u16,
            program_header_count: count as u16,
            section_header_size: 64,
            section_header_count: 0,
            section_name_index: 0,
        };
        ElfLayout { header, program_headers, body }
    }

    /// The file bytes.
    pub fn build(&self) -> Vec<u8> {
        self.layout().to_bytes()
    }

    /// What a client loaded from this file reads at `vaddr`: the file byte inside
    /// `[p_vaddr, p_vaddr + p_filesz)`, zero elsewhere in the pages the segment occupies, `None` where no
    /// segment is.
    pub fn expected_byte(&self, vaddr: u64) -> Option<u8> {
        let segment = self.segments.iter().find(|s| {
            let start = s.vaddr & !(PAGE - 1);
            let end = (s.vaddr + s.memory_size).next_multiple_of(PAGE);
            s.memory_size > 0 && vaddr >= start && vaddr < end
        })?;
        let inside = vaddr.checked_sub(segment.vaddr).filter(|i| *i < segment.bytes.len() as u64);
        Some(inside.map_or(0, |i| segment.bytes[i as usize]))
    }
}
