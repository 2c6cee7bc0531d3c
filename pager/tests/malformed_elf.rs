//! Table tests of the ELF64 parser: every malformed file maps to one exact `ElfError`, and valid files
//! map to exact segment descriptors.
//!
//! The files are built by a small ELF64 writer below. Its default output is a valid two-segment
//! static executable (text r-x, data rw- with a bss tail); each row corrupts one thing.

use pager::elf::{ElfError, ElfImage, MAX_PROGRAM_HEADERS, MAX_SEGMENTS};
use pager::{Rights, Segment, PAGE_SIZE, USER_ADDRESS_LIMIT};

const HEADER_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;

const PT_NULL: u32 = 0;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const PT_PHDR: u32 = 6;
const PT_GNU_STACK: u32 = 0x6474_e551;

const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

/// Where the default text segment lies: right after the header and two program headers.
const TEXT_OFFSET: u64 = 0xb0;
const TEXT_VADDR: u64 = 0x40_1000 + TEXT_OFFSET;
const TEXT_SIZE: u64 = 0x40;
/// The default data segment: 0x10 file bytes and a bss tail up to one page.
const DATA_OFFSET: u64 = TEXT_OFFSET + TEXT_SIZE;
const DATA_VADDR: u64 = 0x40_2000 + DATA_OFFSET;
const DATA_FILE_SIZE: u64 = 0x10;
const DATA_MEMORY_SIZE: u64 = 0x1000;
/// The natural length of the default file.
const DEFAULT_LENGTH: usize = (DATA_OFFSET + DATA_FILE_SIZE) as usize;

// ---------------------------------------------------------------------------------------------------
// A small ELF64 writer.
// ---------------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
struct Phdr {
    kind: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    paddr: u64,
    file_size: u64,
    memory_size: u64,
    align: u64,
}

fn load(offset: u64, vaddr: u64, file_size: u64, memory_size: u64, flags: u32) -> Phdr {
    Phdr { kind: PT_LOAD, flags, offset, vaddr, paddr: vaddr, file_size, memory_size, align: PAGE_SIZE }
}

fn other(kind: u32) -> Phdr {
    Phdr { kind, flags: PF_R, offset: 0, vaddr: 0, paddr: 0, file_size: 0, memory_size: 0, align: 0 }
}

#[derive(Clone, Debug)]
struct Elf {
    ident: [u8; 16],
    kind: u16,
    machine: u16,
    version: u32,
    entry: u64,
    phoff: u64,
    phentsize: u16,
    /// `e_phnum`; `None` writes the number of `phdrs`.
    phnum: Option<u16>,
    phdrs: Vec<Phdr>,
    /// The file length; `None` is just long enough for the header, the table and every segment's bytes.
    length: Option<usize>,
}

impl Elf {
    /// A valid static x86_64 executable with a text and a data segment.
    fn valid() -> Self {
        let mut ident = [0; 16];
        ident[..4].copy_from_slice(b"\x7fELF");
        ident[4] = 2; // ELFCLASS64
        ident[5] = 1; // ELFDATA2LSB
        ident[6] = 1; // EV_CURRENT
        Self {
            ident,
            kind: 2,     // ET_EXEC
            machine: 62, // EM_X86_64
            version: 1,
            entry: TEXT_VADDR,
            phoff: HEADER_SIZE as u64,
            phentsize: PHDR_SIZE as u16,
            phnum: None,
            phdrs: vec![
                load(TEXT_OFFSET, TEXT_VADDR, TEXT_SIZE, TEXT_SIZE, PF_R | PF_X),
                load(DATA_OFFSET, DATA_VADDR, DATA_FILE_SIZE, DATA_MEMORY_SIZE, PF_R | PF_W),
            ],
            length: None,
        }
    }

    /// The default file with one change applied.
    fn with(change: impl FnOnce(&mut Self)) -> Self {
        let mut elf = Self::valid();
        change(&mut elf);
        elf
    }

    fn text(&mut self) -> &mut Phdr {
        &mut self.phdrs[0]
    }

    fn data(&mut self) -> &mut Phdr {
        &mut self.phdrs[1]
    }

    /// Bytes reachable through the table and segments, ignoring absurd (overflowing or huge) ends.
    fn natural_length(&self) -> usize {
        const SANE: u64 = 1 << 20;
        let table_end = self.phoff.saturating_add((self.phdrs.len() * PHDR_SIZE) as u64);
        let segment_ends = self.phdrs.iter().filter_map(|p| p.offset.checked_add(p.file_size));
        let end = core::iter::once(table_end)
            .chain(segment_ends)
            .filter(|&end| end <= SANE)
            .fold(HEADER_SIZE as u64, u64::max);
        end as usize
    }

    fn bytes(&self) -> Vec<u8> {
        let length = self.length.unwrap_or_else(|| self.natural_length());
        // Build a buffer covering everything, then cut it to the requested length.
        let mut out = vec![0u8; length.max(self.natural_length())];
        // Segment contents first (a recognisable pattern), so headers written later win on overlap.
        for (n, p) in self.phdrs.iter().enumerate() {
            if let Some(end) = p.offset.checked_add(p.file_size).filter(|&end| end <= out.len() as u64) {
                for (i, byte) in out[p.offset as usize..end as usize].iter_mut().enumerate() {
                    *byte = (i as u8).wrapping_mul(7).wrapping_add(n as u8);
                }
            }
        }
        let mut header = Vec::with_capacity(HEADER_SIZE);
        header.extend_from_slice(&self.ident);
        header.extend_from_slice(&self.kind.to_le_bytes());
        header.extend_from_slice(&self.machine.to_le_bytes());
        header.extend_from_slice(&self.version.to_le_bytes());
        header.extend_from_slice(&self.entry.to_le_bytes());
        header.extend_from_slice(&self.phoff.to_le_bytes());
        header.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
        header.extend_from_slice(&0u32.to_le_bytes()); // e_flags
        header.extend_from_slice(&(HEADER_SIZE as u16).to_le_bytes()); // e_ehsize
        header.extend_from_slice(&self.phentsize.to_le_bytes());
        let phnum = self.phnum.unwrap_or(self.phdrs.len() as u16);
        header.extend_from_slice(&phnum.to_le_bytes());
        header.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
        header.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
        header.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
        assert_eq!(header.len(), HEADER_SIZE);
        out[..HEADER_SIZE].copy_from_slice(&header);

        if let Ok(mut at) = usize::try_from(self.phoff) {
            for p in &self.phdrs {
                if at.checked_add(PHDR_SIZE).is_none_or(|end| end > out.len()) {
                    break;
                }
                let mut entry = Vec::with_capacity(PHDR_SIZE);
                entry.extend_from_slice(&p.kind.to_le_bytes());
                entry.extend_from_slice(&p.flags.to_le_bytes());
                for field in [p.offset, p.vaddr, p.paddr, p.file_size, p.memory_size, p.align] {
                    entry.extend_from_slice(&field.to_le_bytes());
                }
                out[at..at + PHDR_SIZE].copy_from_slice(&entry);
                at += PHDR_SIZE;
            }
        }
        out.truncate(length);
        out
    }
}

/// `count` one-page PT_LOAD segments, the first executable, each on its own page.
fn many_segments(count: usize) -> Elf {
    Elf::with(|e| {
        let base = (HEADER_SIZE + count * PHDR_SIZE) as u64;
        e.phdrs = (0..count as u64)
            .map(|i| {
                let flags = if i == 0 { PF_R | PF_X } else { PF_R };
                load(base + i * 0x10, 0x40_0000 + (i + 1) * PAGE_SIZE + base + i * 0x10, 0x10, 0x10, flags)
            })
            .collect();
        e.entry = e.phdrs[0].vaddr;
    })
}

// ---------------------------------------------------------------------------------------------------
// Malformed files.
// ---------------------------------------------------------------------------------------------------

struct Case {
    name: &'static str,
    bytes: fn() -> Vec<u8>,
    error: ElfError,
    /// Substrings the `Display` message must contain (the field it names).
    message: &'static [&'static str],
}

fn cases() -> Vec<Case> {
    use ElfError::*;
    let len = DEFAULT_LENGTH as u64;
    vec![
        // --- The file header -----------------------------------------------------------------------
        Case { name: "empty file", bytes: Vec::new, error: TooShort { length: 0 }, message: &["0 bytes"] },
        Case {
            name: "one byte short of a header",
            bytes: || Elf::valid().bytes()[..HEADER_SIZE - 1].to_vec(),
            error: TooShort { length: 63 },
            message: &["63 bytes"],
        },
        Case {
            name: "short garbage is too short before it is bad magic",
            bytes: || vec![0xaa; 10],
            error: TooShort { length: 10 },
            message: &["10 bytes"],
        },
        Case {
            name: "header alone with zero magic",
            bytes: || vec![0; HEADER_SIZE],
            error: BadMagic,
            message: &["magic"],
        },
        Case {
            name: "magic byte 0 wrong",
            bytes: || Elf::with(|e| e.ident[0] = 0x7e).bytes(),
            error: BadMagic,
            message: &["magic"],
        },
        Case {
            name: "magic byte 3 wrong (lower-case f)",
            bytes: || Elf::with(|e| e.ident[3] = b'f').bytes(),
            error: BadMagic,
            message: &["magic"],
        },
        Case {
            name: "ELFCLASS32",
            bytes: || Elf::with(|e| e.ident[4] = 1).bytes(),
            error: NotElf64 { class: 1 },
            message: &["EI_CLASS", "is 1"],
        },
        Case {
            name: "ELFCLASSNONE",
            bytes: || Elf::with(|e| e.ident[4] = 0).bytes(),
            error: NotElf64 { class: 0 },
            message: &["EI_CLASS"],
        },
        Case {
            name: "big-endian",
            bytes: || Elf::with(|e| e.ident[5] = 2).bytes(),
            error: NotLittleEndian { data: 2 },
            message: &["EI_DATA", "is 2"],
        },
        Case {
            name: "ELFDATANONE",
            bytes: || Elf::with(|e| e.ident[5] = 0).bytes(),
            error: NotLittleEndian { data: 0 },
            message: &["EI_DATA"],
        },
        Case {
            name: "e_ident[EI_VERSION] 0",
            bytes: || Elf::with(|e| e.ident[6] = 0).bytes(),
            error: BadIdentVersion { version: 0 },
            message: &["e_ident[EI_VERSION] is 0"],
        },
        Case {
            name: "e_ident[EI_VERSION] 255",
            bytes: || Elf::with(|e| e.ident[6] = 0xff).bytes(),
            error: BadIdentVersion { version: 255 },
            message: &["e_ident[EI_VERSION] is 255"],
        },
        Case {
            name: "e_version 0",
            bytes: || Elf::with(|e| e.version = 0).bytes(),
            error: BadVersion { version: 0 },
            message: &["e_version is 0"],
        },
        Case {
            name: "e_version u32::MAX",
            bytes: || Elf::with(|e| e.version = u32::MAX).bytes(),
            error: BadVersion { version: u32::MAX },
            message: &["e_version is 4294967295"],
        },
        Case {
            name: "ET_DYN (PIE or shared object)",
            bytes: || Elf::with(|e| e.kind = 3).bytes(),
            error: NotExecutable { kind: 3 },
            message: &["e_type", "is 3"],
        },
        Case {
            name: "ET_REL",
            bytes: || Elf::with(|e| e.kind = 1).bytes(),
            error: NotExecutable { kind: 1 },
            message: &["e_type"],
        },
        Case {
            name: "ET_CORE",
            bytes: || Elf::with(|e| e.kind = 4).bytes(),
            error: NotExecutable { kind: 4 },
            message: &["e_type"],
        },
        Case {
            name: "EM_386",
            bytes: || Elf::with(|e| e.machine = 3).bytes(),
            error: WrongMachine { machine: 3 },
            message: &["e_machine", "is 3"],
        },
        Case {
            name: "EM_AARCH64",
            bytes: || Elf::with(|e| e.machine = 183).bytes(),
            error: WrongMachine { machine: 183 },
            message: &["e_machine"],
        },
        Case {
            name: "e_phentsize 0",
            bytes: || Elf::with(|e| e.phentsize = 0).bytes(),
            error: BadProgramHeaderSize { size: 0 },
            message: &["e_phentsize", "is 0"],
        },
        Case {
            name: "e_phentsize of ELF32 (32)",
            bytes: || Elf::with(|e| e.phentsize = 32).bytes(),
            error: BadProgramHeaderSize { size: 32 },
            message: &["e_phentsize"],
        },
        Case {
            name: "e_phentsize 57",
            bytes: || Elf::with(|e| e.phentsize = 57).bytes(),
            error: BadProgramHeaderSize { size: 57 },
            message: &["e_phentsize"],
        },
        Case {
            name: "e_phnum 0",
            bytes: || Elf::with(|e| e.phnum = Some(0)).bytes(),
            error: BadProgramHeaderCount { count: 0 },
            message: &["e_phnum", "is 0"],
        },
        Case {
            name: "e_phnum 65",
            bytes: || Elf::with(|e| e.phnum = Some(MAX_PROGRAM_HEADERS as u16 + 1)).bytes(),
            error: BadProgramHeaderCount { count: 65 },
            message: &["e_phnum", "is 65"],
        },
        Case {
            name: "e_phnum PN_XNUM (0xffff)",
            bytes: || Elf::with(|e| e.phnum = Some(u16::MAX)).bytes(),
            error: BadProgramHeaderCount { count: u16::MAX },
            message: &["e_phnum"],
        },
        // --- The program header table ---------------------------------------------------------------
        Case {
            name: "table one byte past the end of the file",
            bytes: || Elf::with(|e| e.length = Some(HEADER_SIZE + 2 * PHDR_SIZE - 1)).bytes(),
            error: ProgramHeadersOutOfFile { offset: 64, count: 2 },
            message: &["e_phoff 0x40", "2 program headers"],
        },
        Case {
            name: "e_phnum larger than the table present",
            bytes: || Elf::with(|e| e.phnum = Some(4)).bytes(),
            error: ProgramHeadersOutOfFile { offset: 64, count: 4 },
            message: &["e_phoff"],
        },
        Case {
            name: "e_phoff at the end of the file",
            bytes: || {
                Elf::with(|e| {
                    e.phoff = DEFAULT_LENGTH as u64;
                    e.length = Some(DEFAULT_LENGTH);
                })
                .bytes()
            },
            error: ProgramHeadersOutOfFile { offset: len, count: 2 },
            message: &["e_phoff"],
        },
        Case {
            name: "e_phoff past the end of the file",
            bytes: || Elf::with(|e| e.phoff = 0x10_0000).bytes(),
            error: ProgramHeadersOutOfFile { offset: 0x10_0000, count: 2 },
            message: &["e_phoff 0x100000"],
        },
        Case {
            name: "e_phoff u64::MAX",
            bytes: || Elf::with(|e| e.phoff = u64::MAX).bytes(),
            error: ProgramHeadersOutOfFile { offset: u64::MAX, count: 2 },
            message: &["e_phoff 0xffffffffffffffff"],
        },
        Case {
            name: "e_phoff u64::MAX - 55 (offset + size overflows)",
            bytes: || Elf::with(|e| e.phoff = u64::MAX - 55).bytes(),
            error: ProgramHeadersOutOfFile { offset: u64::MAX - 55, count: 2 },
            message: &["e_phoff"],
        },
        Case {
            name: "e_phoff 2^63",
            bytes: || Elf::with(|e| e.phoff = 1 << 63).bytes(),
            error: ProgramHeadersOutOfFile { offset: 1 << 63, count: 2 },
            message: &["e_phoff"],
        },
        // --- Segment counts ----------------------------------------------------------------------------
        Case {
            name: "17 PT_LOAD segments",
            bytes: || many_segments(MAX_SEGMENTS + 1).bytes(),
            error: TooManySegments { count: 17 },
            message: &["17 PT_LOAD", "at most 16"],
        },
        Case {
            name: "no program header is PT_LOAD",
            bytes: || Elf::with(|e| e.phdrs = vec![other(PT_NOTE), other(PT_GNU_STACK)]).bytes(),
            error: NoLoadableSegment,
            message: &["PT_LOAD"],
        },
        Case {
            name: "only PT_NULL headers",
            bytes: || Elf::with(|e| e.phdrs = vec![other(PT_NULL); 3]).bytes(),
            error: NoLoadableSegment,
            message: &["PT_LOAD"],
        },
        Case {
            name: "every PT_LOAD has p_memsz 0",
            bytes: || {
                Elf::with(|e| {
                    for p in &mut e.phdrs {
                        p.file_size = 0;
                        p.memory_size = 0;
                    }
                })
                .bytes()
            },
            error: NoLoadableSegment,
            message: &["no PT_LOAD"],
        },
        // --- One segment's fields -----------------------------------------------------------------------
        Case {
            name: "p_filesz one past p_memsz",
            bytes: || Elf::with(|e| e.text().memory_size = TEXT_SIZE - 1).bytes(),
            error: FileSizeExceedsMemorySize { segment: 0, file_size: TEXT_SIZE, memory_size: TEXT_SIZE - 1 },
            message: &["segment 0", "p_filesz 0x40", "p_memsz 0x3f"],
        },
        Case {
            name: "p_filesz with p_memsz 0",
            bytes: || Elf::with(|e| e.data().memory_size = 0).bytes(),
            error: FileSizeExceedsMemorySize { segment: 1, file_size: DATA_FILE_SIZE, memory_size: 0 },
            message: &["segment 1", "p_filesz", "p_memsz"],
        },
        Case {
            name: "segment one byte past the end of the file",
            bytes: || Elf::with(|e| e.length = Some(DEFAULT_LENGTH - 1)).bytes(),
            error: SegmentOutOfFile { segment: 1, offset: DATA_OFFSET, file_size: DATA_FILE_SIZE },
            message: &["segment 1", "p_offset 0xf0", "p_filesz 0x10"],
        },
        Case {
            name: "p_offset past the end of the file",
            bytes: || {
                Elf::with(|e| {
                    e.text().offset = 0x10_0000 + TEXT_OFFSET;
                    e.length = Some(DEFAULT_LENGTH);
                })
                .bytes()
            },
            error: SegmentOutOfFile { segment: 0, offset: 0x10_0000 + TEXT_OFFSET, file_size: TEXT_SIZE },
            message: &["p_offset", "p_filesz"],
        },
        Case {
            name: "p_offset + p_filesz overflows u64",
            bytes: || {
                Elf::with(|e| {
                    let d = e.data();
                    d.offset = u64::MAX - 0xf; // Keeps p_offset = p_vaddr (mod page).
                    d.vaddr = 0x40_3000 - 0x10;
                    d.file_size = 0x10;
                })
                .bytes()
            },
            error: SegmentOutOfFile { segment: 1, offset: u64::MAX - 0xf, file_size: 0x10 },
            message: &["p_offset 0xfffffffffffffff0", "p_filesz 0x10"],
        },
        Case {
            name: "p_offset + p_filesz wraps to exactly zero",
            bytes: || {
                Elf::with(|e| {
                    let t = e.text();
                    t.offset = 1 << 63;
                    t.file_size = 1 << 63;
                    t.memory_size = 1 << 63;
                })
                .bytes()
            },
            error: SegmentOutOfFile { segment: 0, offset: 1 << 63, file_size: 1 << 63 },
            message: &["p_offset", "p_filesz"],
        },
        Case {
            name: "p_align 3",
            bytes: || Elf::with(|e| e.text().align = 3).bytes(),
            error: BadAlignment { segment: 0, align: 3 },
            message: &["segment 0", "p_align 0x3"],
        },
        Case {
            name: "p_align page + 1",
            bytes: || Elf::with(|e| e.data().align = PAGE_SIZE + 1).bytes(),
            error: BadAlignment { segment: 1, align: PAGE_SIZE + 1 },
            message: &["segment 1", "p_align 0x1001"],
        },
        Case {
            name: "p_align u64::MAX",
            bytes: || Elf::with(|e| e.data().align = u64::MAX).bytes(),
            error: BadAlignment { segment: 1, align: u64::MAX },
            message: &["p_align"],
        },
        Case {
            name: "p_offset and p_vaddr differ modulo the page size",
            bytes: || Elf::with(|e| e.text().vaddr = TEXT_VADDR + 8).bytes(),
            error: MisalignedSegment { segment: 0, offset: TEXT_OFFSET, vaddr: TEXT_VADDR + 8 },
            message: &["segment 0", "p_offset 0xb0", "p_vaddr 0x4010b8"],
        },
        Case {
            name: "page-aligned p_vaddr with unaligned p_offset",
            bytes: || {
                Elf::with(|e| {
                    e.data().vaddr = 0x40_2000;
                    e.entry = TEXT_VADDR;
                })
                .bytes()
            },
            error: MisalignedSegment { segment: 1, offset: DATA_OFFSET, vaddr: 0x40_2000 },
            message: &["p_offset", "p_vaddr"],
        },
        Case {
            name: "segment ends one byte above 4 GiB",
            bytes: || {
                Elf::with(|e| {
                    let d = e.data();
                    d.vaddr = USER_ADDRESS_LIMIT - PAGE_SIZE + DATA_OFFSET;
                    d.memory_size = PAGE_SIZE - DATA_OFFSET + 1;
                })
                .bytes()
            },
            error: SegmentOutsideUserRange {
                segment: 1,
                vaddr: USER_ADDRESS_LIMIT - PAGE_SIZE + DATA_OFFSET,
                memory_size: PAGE_SIZE - DATA_OFFSET + 1,
            },
            message: &["segment 1", "p_vaddr 0xfffff0f0", "p_memsz 0xf11", "0x100000000"],
        },
        Case {
            name: "segment entirely above 4 GiB",
            bytes: || Elf::with(|e| e.data().vaddr = USER_ADDRESS_LIMIT + DATA_OFFSET).bytes(),
            error: SegmentOutsideUserRange {
                segment: 1,
                vaddr: USER_ADDRESS_LIMIT + DATA_OFFSET,
                memory_size: DATA_MEMORY_SIZE,
            },
            message: &["p_vaddr", "p_memsz"],
        },
        Case {
            name: "segment at the top of the 64-bit space",
            bytes: || Elf::with(|e| e.text().vaddr = 0xffff_ffff_ffff_f000 + TEXT_OFFSET).bytes(),
            error: SegmentOutsideUserRange {
                segment: 0,
                vaddr: 0xffff_ffff_ffff_f000 + TEXT_OFFSET,
                memory_size: TEXT_SIZE,
            },
            message: &["p_vaddr", "p_memsz"],
        },
        Case {
            name: "p_vaddr + p_memsz overflows u64",
            bytes: || {
                Elf::with(|e| {
                    let d = e.data();
                    d.vaddr = 0xffff_ffff_ffff_f000 + DATA_OFFSET;
                    d.memory_size = u64::MAX;
                })
                .bytes()
            },
            error: SegmentOutsideUserRange {
                segment: 1,
                vaddr: 0xffff_ffff_ffff_f000 + DATA_OFFSET,
                memory_size: u64::MAX,
            },
            message: &["p_vaddr", "p_memsz 0xffffffffffffffff"],
        },
        Case {
            name: "huge p_memsz from a low p_vaddr",
            bytes: || Elf::with(|e| e.data().memory_size = 1 << 40).bytes(),
            error: SegmentOutsideUserRange { segment: 1, vaddr: DATA_VADDR, memory_size: 1 << 40 },
            message: &["p_memsz 0x10000000000"],
        },
        Case {
            name: "segment in page zero",
            bytes: || Elf::with(|e| e.text().vaddr = TEXT_OFFSET).bytes(),
            error: SegmentInNullPage { segment: 0 },
            message: &["segment 0", "page zero"],
        },
        Case {
            name: "segment ending in page zero's last byte",
            bytes: || {
                Elf::with(|e| {
                    let d = e.data();
                    d.vaddr = DATA_OFFSET;
                    d.memory_size = PAGE_SIZE - DATA_OFFSET;
                })
                .bytes()
            },
            error: SegmentInNullPage { segment: 1 },
            message: &["segment 1", "page zero"],
        },
        // --- Segments together ---------------------------------------------------------------------------
        Case {
            name: "segments in descending p_vaddr",
            bytes: || Elf::with(|e| e.phdrs.swap(0, 1)).bytes(),
            error: SegmentsUnsorted { segment: 1 },
            message: &["segment 1", "p_vaddr"],
        },
        Case {
            name: "segments overlapping by bytes",
            bytes: || {
                Elf::with(|e| {
                    e.text().memory_size = 0x100; // Text's memory now covers 0x4010b0..0x4011b0.
                    e.data().vaddr = 0x40_1000 + DATA_OFFSET;
                })
                .bytes()
            },
            error: SegmentsOverlap { first: 0, second: 1 },
            message: &["segments 0 and 1"],
        },
        Case {
            name: "segments at the same p_vaddr",
            bytes: || {
                Elf::with(|e| {
                    let d = e.data();
                    d.offset = TEXT_OFFSET;
                    d.vaddr = TEXT_VADDR;
                })
                .bytes()
            },
            error: SegmentsOverlap { first: 0, second: 1 },
            message: &["segments 0 and 1"],
        },
        Case {
            name: "segments sharing one page without sharing a byte",
            // Text covers 0x4010b0..0x4010f0, data starts at 0x4010f0: adjacent bytes, same page.
            bytes: || Elf::with(|e| e.data().vaddr = 0x40_1000 + DATA_OFFSET).bytes(),
            error: SegmentsOverlap { first: 0, second: 1 },
            message: &["share a page"],
        },
        Case {
            name: "bss tail reaching into the next segment's page",
            bytes: || {
                Elf::with(|e| {
                    // Text's memory runs one byte into the page the data segment starts in.
                    e.text().memory_size = 0x40_2000 - TEXT_VADDR + 1;
                })
                .bytes()
            },
            error: SegmentsOverlap { first: 0, second: 1 },
            message: &["segments 0 and 1"],
        },
        Case {
            name: "overlap reported against the previous mapped segment, past an empty one",
            bytes: || {
                Elf::with(|e| {
                    e.data().vaddr = 0x40_1000 + DATA_OFFSET; // Shares text's page.
                    e.phdrs.insert(1, load(0, 0x50_0000, 0, 0, PF_R)); // Order: text, empty, data.
                })
                .bytes()
            },
            error: SegmentsOverlap { first: 0, second: 2 },
            message: &["segments 0 and 2"],
        },
        Case {
            name: "segment indices count PT_LOAD headers only",
            bytes: || {
                Elf::with(|e| {
                    e.phdrs.insert(0, other(PT_NOTE));
                    e.phdrs.insert(0, other(PT_PHDR));
                    e.phdrs[3].align = 6; // The data segment: program header 3, PT_LOAD 1.
                })
                .bytes()
            },
            error: BadAlignment { segment: 1, align: 6 },
            message: &["segment 1"],
        },
        // --- The entry point -----------------------------------------------------------------------------
        Case {
            name: "entry in a non-executable segment",
            bytes: || Elf::with(|e| e.entry = DATA_VADDR).bytes(),
            error: EntryNotExecutable { entry: DATA_VADDR },
            message: &["e_entry 0x4020f0"],
        },
        Case {
            name: "entry one past the executable segment",
            bytes: || Elf::with(|e| e.entry = TEXT_VADDR + TEXT_SIZE).bytes(),
            error: EntryNotExecutable { entry: TEXT_VADDR + TEXT_SIZE },
            message: &["e_entry"],
        },
        Case {
            name: "entry one below the executable segment",
            bytes: || Elf::with(|e| e.entry = TEXT_VADDR - 1).bytes(),
            error: EntryNotExecutable { entry: TEXT_VADDR - 1 },
            message: &["e_entry"],
        },
        Case {
            name: "entry zero",
            bytes: || Elf::with(|e| e.entry = 0).bytes(),
            error: EntryNotExecutable { entry: 0 },
            message: &["e_entry 0x0"],
        },
        Case {
            name: "entry u64::MAX",
            bytes: || Elf::with(|e| e.entry = u64::MAX).bytes(),
            error: EntryNotExecutable { entry: u64::MAX },
            message: &["e_entry"],
        },
        Case {
            name: "no executable segment at all",
            bytes: || Elf::with(|e| e.text().flags = PF_R).bytes(),
            error: EntryNotExecutable { entry: TEXT_VADDR },
            message: &["executable segment"],
        },
        Case {
            name: "entry in an executable segment of p_memsz 0 (skipped)",
            bytes: || {
                Elf::with(|e| {
                    e.text().flags = PF_R;
                    e.phdrs.insert(0, load(0, 0x30_0000, 0, 0, PF_R | PF_X));
                    e.entry = 0x30_0000;
                })
                .bytes()
            },
            error: EntryNotExecutable { entry: 0x30_0000 },
            message: &["e_entry 0x300000"],
        },
    ]
}

/// One name per `ElfError` variant; the exhaustive match fails to compile when a variant is added.
fn variant(error: &ElfError) -> &'static str {
    match error {
        ElfError::TooShort { .. } => "TooShort",
        ElfError::BadMagic => "BadMagic",
        ElfError::NotElf64 { .. } => "NotElf64",
        ElfError::NotLittleEndian { .. } => "NotLittleEndian",
        ElfError::BadIdentVersion { .. } => "BadIdentVersion",
        ElfError::BadVersion { .. } => "BadVersion",
        ElfError::NotExecutable { .. } => "NotExecutable",
        ElfError::WrongMachine { .. } => "WrongMachine",
        ElfError::BadProgramHeaderSize { .. } => "BadProgramHeaderSize",
        ElfError::BadProgramHeaderCount { .. } => "BadProgramHeaderCount",
        ElfError::ProgramHeadersOutOfFile { .. } => "ProgramHeadersOutOfFile",
        ElfError::TooManySegments { .. } => "TooManySegments",
        ElfError::NoLoadableSegment => "NoLoadableSegment",
        ElfError::FileSizeExceedsMemorySize { .. } => "FileSizeExceedsMemorySize",
        ElfError::SegmentOutOfFile { .. } => "SegmentOutOfFile",
        ElfError::MisalignedSegment { .. } => "MisalignedSegment",
        ElfError::BadAlignment { .. } => "BadAlignment",
        ElfError::SegmentOutsideUserRange { .. } => "SegmentOutsideUserRange",
        ElfError::SegmentInNullPage { .. } => "SegmentInNullPage",
        ElfError::SegmentsUnsorted { .. } => "SegmentsUnsorted",
        ElfError::SegmentsOverlap { .. } => "SegmentsOverlap",
        ElfError::EntryNotExecutable { .. } => "EntryNotExecutable",
    }
}

const ALL_VARIANTS: [&str; 22] = [
    "TooShort",
    "BadMagic",
    "NotElf64",
    "NotLittleEndian",
    "BadIdentVersion",
    "BadVersion",
    "NotExecutable",
    "WrongMachine",
    "BadProgramHeaderSize",
    "BadProgramHeaderCount",
    "ProgramHeadersOutOfFile",
    "TooManySegments",
    "NoLoadableSegment",
    "FileSizeExceedsMemorySize",
    "SegmentOutOfFile",
    "MisalignedSegment",
    "BadAlignment",
    "SegmentOutsideUserRange",
    "SegmentInNullPage",
    "SegmentsUnsorted",
    "SegmentsOverlap",
    "EntryNotExecutable",
];

#[test]
fn malformed_files_are_rejected_with_the_exact_error() {
    let mut failures = Vec::new();
    for case in cases() {
        let bytes = (case.bytes)();
        match ElfImage::parse(&bytes) {
            Err(error) if error == case.error => {}
            Err(error) => failures.push(format!("{}: expected {:?}, got {:?}", case.name, case.error, error)),
            Ok(image) => failures.push(format!(
                "{}: expected {:?}, but parsed {:?}",
                case.name,
                case.error,
                image.segments()
            )),
        }
    }
    assert!(failures.is_empty(), "{} case(s) failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn error_messages_name_the_field() {
    let mut failures = Vec::new();
    for case in cases() {
        let message = case.error.to_string();
        for wanted in case.message {
            if !message.contains(wanted) {
                failures.push(format!("{}: {message:?} does not contain {wanted:?}", case.name));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_error_variant_is_covered() {
    let cases = cases();
    let mut names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "case names must be unique");
    for wanted in ALL_VARIANTS {
        assert!(
            cases.iter().any(|c| variant(&c.error) == wanted),
            "no malformed-file case expects ElfError::{wanted}"
        );
    }
}

#[test]
fn default_writer_output_is_the_expected_length() {
    assert_eq!(Elf::valid().bytes().len(), DEFAULT_LENGTH);
    assert_eq!(DEFAULT_LENGTH, 0x100);
}

/// Every truncation of a valid file is rejected (never a panic, never an accepted short file).
#[test]
fn every_proper_prefix_of_a_valid_file_is_rejected() {
    let bytes = Elf::valid().bytes();
    for cut in 0..bytes.len() {
        let error = ElfImage::parse(&bytes[..cut]).expect_err("a truncated file parsed");
        let expected = match cut {
            0..HEADER_SIZE => ElfError::TooShort { length: cut },
            _ if cut < HEADER_SIZE + 2 * PHDR_SIZE => {
                ElfError::ProgramHeadersOutOfFile { offset: 64, count: 2 }
            }
            _ if cut < (TEXT_OFFSET + TEXT_SIZE) as usize => {
                ElfError::SegmentOutOfFile { segment: 0, offset: TEXT_OFFSET, file_size: TEXT_SIZE }
            }
            _ => ElfError::SegmentOutOfFile { segment: 1, offset: DATA_OFFSET, file_size: DATA_FILE_SIZE },
        };
        assert_eq!(error, expected, "cut at {cut}");
    }
}

// ---------------------------------------------------------------------------------------------------
// Valid files.
// ---------------------------------------------------------------------------------------------------

fn text_segment() -> Segment {
    Segment {
        vaddr: TEXT_VADDR,
        offset: TEXT_OFFSET,
        file_size: TEXT_SIZE,
        memory_size: TEXT_SIZE,
        rights: Rights::READ_EXECUTE,
    }
}

fn data_segment() -> Segment {
    Segment {
        vaddr: DATA_VADDR,
        offset: DATA_OFFSET,
        file_size: DATA_FILE_SIZE,
        memory_size: DATA_MEMORY_SIZE,
        rights: Rights::READ_WRITE,
    }
}

struct ValidCase {
    name: &'static str,
    elf: fn() -> Elf,
    entry: u64,
    segments: fn() -> Vec<Segment>,
}

fn valid_cases() -> Vec<ValidCase> {
    vec![
        ValidCase {
            name: "default text and data",
            elf: Elf::valid,
            entry: TEXT_VADDR,
            segments: || vec![text_segment(), data_segment()],
        },
        ValidCase {
            name: "p_memsz-0 PT_LOADs are skipped, wherever they point",
            elf: || {
                Elf::with(|e| {
                    // Below the previous segment, in page zero, sharing text's page: none of it matters.
                    e.phdrs.insert(1, load(0, 0x1000, 0, 0, PF_R));
                    e.phdrs.insert(1, load(0, 0, 0, 0, PF_R | PF_W | PF_X));
                    e.phdrs.insert(1, load(TEXT_OFFSET, TEXT_VADDR, 0, 0, PF_R));
                    // In page zero, at the very end of the file.
                    e.phdrs.push(load(0x190, 0x190, 0, 0, PF_R));
                    // The table (0x40..0x190) now covers the segment bytes; the parser reads no content.
                    assert_eq!(e.natural_length(), 0x190);
                })
            },
            entry: TEXT_VADDR,
            segments: || vec![text_segment(), data_segment()],
        },
        ValidCase {
            name: "non-PT_LOAD headers are ignored, even with absurd fields",
            elf: || {
                Elf::with(|e| {
                    let wild = Phdr {
                        kind: PT_PHDR,
                        flags: u32::MAX,
                        offset: u64::MAX,
                        vaddr: 0,
                        paddr: u64::MAX,
                        file_size: u64::MAX,
                        memory_size: 1,
                        align: 3,
                    };
                    e.phdrs.insert(0, wild);
                    e.phdrs.insert(2, Phdr { kind: PT_NOTE, ..wild });
                    e.phdrs.push(Phdr { kind: PT_GNU_STACK, ..wild });
                    e.phdrs.push(Phdr { kind: 0x7000_0000, ..wild }); // PT_LOPROC
                    e.phdrs.push(Phdr { kind: u32::MAX, ..wild });
                    // The table now covers the segment bytes, which the parser never reads.
                })
            },
            entry: TEXT_VADDR,
            segments: || vec![text_segment(), data_segment()],
        },
        ValidCase {
            name: "entry in the bss tail of an executable segment",
            elf: || {
                Elf::with(|e| {
                    e.text().memory_size = 0x100;
                    e.entry = TEXT_VADDR + 0xff;
                })
            },
            entry: TEXT_VADDR + 0xff,
            segments: || vec![Segment { memory_size: 0x100, ..text_segment() }, data_segment()],
        },
        ValidCase {
            name: "entry in the second of two executable segments",
            elf: || {
                Elf::with(|e| {
                    e.data().flags = PF_R | PF_W | PF_X;
                    e.entry = DATA_VADDR + DATA_MEMORY_SIZE - 1;
                })
            },
            entry: DATA_VADDR + DATA_MEMORY_SIZE - 1,
            segments: || {
                let rwx = Rights { read: true, write: true, execute: true };
                vec![text_segment(), Segment { rights: rwx, ..data_segment() }]
            },
        },
        ValidCase {
            name: "segments on adjacent pages",
            elf: || {
                Elf::with(|e| {
                    e.text().memory_size = 0x40_2000 - TEXT_VADDR;
                })
            },
            entry: TEXT_VADDR,
            segments: || {
                vec![Segment { memory_size: 0x40_2000 - TEXT_VADDR, ..text_segment() }, data_segment()]
            },
        },
        ValidCase {
            name: "last segment ends exactly at 4 GiB, first starts at page one",
            elf: || {
                Elf::with(|e| {
                    e.text().vaddr = PAGE_SIZE + TEXT_OFFSET;
                    e.entry = PAGE_SIZE + TEXT_OFFSET;
                    let d = e.data();
                    d.vaddr = USER_ADDRESS_LIMIT - PAGE_SIZE + DATA_OFFSET;
                    d.memory_size = PAGE_SIZE - DATA_OFFSET;
                })
            },
            entry: PAGE_SIZE + TEXT_OFFSET,
            segments: || {
                vec![
                    Segment { vaddr: PAGE_SIZE + TEXT_OFFSET, ..text_segment() },
                    Segment {
                        vaddr: USER_ADDRESS_LIMIT - PAGE_SIZE + DATA_OFFSET,
                        memory_size: PAGE_SIZE - DATA_OFFSET,
                        ..data_segment()
                    },
                ]
            },
        },
        ValidCase {
            name: "p_align 0, 1 and 2 MiB are all accepted",
            elf: || {
                Elf::with(|e| {
                    e.phdrs[0].align = 0;
                    e.phdrs[1].align = 1;
                    e.phdrs.push(Phdr { align: 0x20_0000, ..load(0, 0x60_0000, 0, 0x10, PF_R) });
                })
            },
            entry: TEXT_VADDR,
            segments: || {
                let bss = Segment {
                    vaddr: 0x60_0000,
                    offset: 0,
                    file_size: 0,
                    memory_size: 0x10,
                    rights: Rights::READ,
                };
                vec![text_segment(), data_segment(), bss]
            },
        },
        ValidCase {
            name: "segment ending exactly at the end of the file, p_filesz 0 at the end",
            elf: || {
                Elf::with(|e| {
                    e.phdrs.push(load(DEFAULT_LENGTH as u64, 0x70_0000 + DEFAULT_LENGTH as u64, 0, 1, 0));
                })
            },
            entry: TEXT_VADDR,
            segments: || {
                let none = Rights { read: false, write: false, execute: false };
                let bss = Segment {
                    vaddr: 0x70_0000 + DEFAULT_LENGTH as u64,
                    offset: DEFAULT_LENGTH as u64,
                    file_size: 0,
                    memory_size: 1,
                    rights: none,
                };
                vec![text_segment(), data_segment(), bss]
            },
        },
        ValidCase {
            name: "exactly 16 PT_LOAD segments and 64 program headers",
            elf: || {
                let mut elf = many_segments(MAX_SEGMENTS);
                let extra = MAX_PROGRAM_HEADERS - MAX_SEGMENTS;
                // Append PT_NULL headers after the segment bytes, moving the table there.
                let table_at = elf.natural_length() as u64;
                elf.phoff = table_at;
                elf.phdrs.extend(std::iter::repeat_n(other(PT_NULL), extra));
                elf
            },
            entry: many_segments(MAX_SEGMENTS).entry,
            segments: || {
                many_segments(MAX_SEGMENTS)
                    .phdrs
                    .iter()
                    .map(|p| Segment {
                        vaddr: p.vaddr,
                        offset: p.offset,
                        file_size: p.file_size,
                        memory_size: p.memory_size,
                        rights: if p.flags & PF_X != 0 { Rights::READ_EXECUTE } else { Rights::READ },
                    })
                    .collect()
            },
        },
    ]
}

#[test]
fn valid_files_parse_to_the_exact_segments() {
    for case in valid_cases() {
        let bytes = (case.elf)().bytes();
        let image =
            ElfImage::parse(&bytes).unwrap_or_else(|e| panic!("{}: rejected: {e} ({e:?})", case.name));
        assert_eq!(image.entry(), case.entry, "{}: entry", case.name);
        assert_eq!(image.segments(), (case.segments)().as_slice(), "{}: segments", case.name);
        assert!(core::ptr::eq(image.bytes(), bytes.as_slice()), "{}: bytes() is the input", case.name);
    }
}

#[test]
fn rights_follow_p_flags() {
    for flags in 0..8u32 {
        let elf = Elf::with(|e| e.data().flags = flags | 0xf0_0000); // High (OS-specific) bits ignored.
        let bytes = elf.bytes();
        let image = ElfImage::parse(&bytes).expect("valid");
        let rights = image.segments()[1].rights;
        let expected =
            Rights { read: flags & PF_R != 0, write: flags & PF_W != 0, execute: flags & PF_X != 0 };
        assert_eq!(rights, expected, "p_flags {flags:#x}");
    }
}

/// Writes the valid files and every malformed one into the directory named by `PAGER_ELF_SEEDS`, as
/// a starting corpus for the `elf_parse` fuzz target:
/// `PAGER_ELF_SEEDS="$PWD/fuzz/corpus/elf_parse" cargo test -p pager --test malformed_elf -- --ignored`
/// from the repository root (an absolute path: the test runs in `pager/`); `cargo xtask fuzz` does it.
#[test]
#[ignore = "writes fuzz seeds; run on demand"]
fn write_fuzz_seeds() {
    let Some(directory) = std::env::var_os("PAGER_ELF_SEEDS") else {
        eprintln!("PAGER_ELF_SEEDS is not set; nothing written");
        return;
    };
    let directory = std::path::PathBuf::from(directory);
    std::fs::create_dir_all(&directory).expect("create the seed directory");
    let valid = valid_cases().into_iter().map(|c| (c.name, (c.elf)().bytes()));
    let malformed = cases().into_iter().map(|c| (c.name, (c.bytes)()));
    for (n, (_, bytes)) in valid.chain(malformed).enumerate() {
        std::fs::write(directory.join(format!("seed-{n:03}")), bytes).expect("write a seed");
    }
}
