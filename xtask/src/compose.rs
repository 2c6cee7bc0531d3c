//! Composing a bootable root task: the packed boot image appended to the root task's ELF as its last
//! loadable segment.
//!
//! The root task's link script ends its image with a one-page zero placeholder starting at the symbol
//! `__apps_start`, in its own `PT_LOAD` (the one with the highest `p_vaddr`). Composition copies the
//! ELF, points that program header at the image appended at the next page boundary of the file
//! (`p_offset`), sizes it to the image (`p_filesz = p_memsz`), and makes it read-only. Section headers
//! stay as they were: the kernel loads by program headers alone. A root task that finds zeroes at
//! `__apps_start` runs its self-test; one that finds the image magic runs the image.
//!
//! The kernel gives every 4 KiB page of the root task's loaded range a slot in the root CNode, so the
//! span of the composed ELF is checked against [`SPAN_LIMIT_PAGES`].

use anyhow::{bail, ensure, Context, Result};

/// Bytes in a page.
pub const PAGE_SIZE: u64 = 4096;
/// The symbol the placeholder segment starts at.
pub const APPS_START_SYMBOL: &str = "__apps_start";
/// The most pages the root task's loaded range may span. The root CNode has 2^18 slots
/// (`CONFIG_ROOT_CNODE_SIZE_BITS` in `kernel/autoconf.h`); the kernel's own caps, bootinfo's untyped
/// caps and the pager's working slots (pool frames and cap copies: a large pool needs most) need
/// the rest.
pub const SPAN_LIMIT_PAGES: u64 = 60_000;

const PT_LOAD: u32 = 1;
const PF_R: u32 = 4;
const SHT_SYMTAB: u32 = 2;
const ELF_HEADER_SIZE: usize = 64;
const PROGRAM_HEADER_SIZE: usize = 56;
const SECTION_HEADER_SIZE: usize = 64;
const SYMBOL_SIZE: usize = 24;

/// The loaded range of a root task: from its lowest page to the end of its highest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Span {
    pub first: u64,
    pub end: u64,
}

impl Span {
    pub fn pages(&self) -> u64 {
        (self.end - self.first) / PAGE_SIZE
    }
}

/// A root task ELF with its placeholder found and checked.
#[derive(Clone, Debug)]
pub struct RootTask<'a> {
    bytes: &'a [u8],
    /// Index of the placeholder's program header.
    placeholder: usize,
    /// `__apps_start`.
    pub apps_start: u64,
    /// The loaded range before composition.
    pub span: Span,
}

/// A composed root task.
pub struct Composed {
    pub bytes: Vec<u8>,
    /// `__apps_start`, where the image is loaded.
    pub apps_start: u64,
    /// File offset of the image.
    pub image_offset: u64,
    pub image_length: u64,
    /// The loaded range after composition.
    pub span: Span,
}

struct ProgramHeader {
    kind: u32,
    offset: u64,
    vaddr: u64,
    file_size: u64,
    memory_size: u64,
}

pub(crate) fn u16_at(bytes: &[u8], offset: usize) -> Result<u16> {
    let field = bytes.get(offset..offset + 2).context("ELF field past the end of the file")?;
    Ok(u16::from_le_bytes(field.try_into().expect("two bytes")))
}

fn u32_at(bytes: &[u8], offset: usize) -> Result<u32> {
    let field = bytes.get(offset..offset + 4).context("ELF field past the end of the file")?;
    Ok(u32::from_le_bytes(field.try_into().expect("four bytes")))
}

pub(crate) fn u64_at(bytes: &[u8], offset: usize) -> Result<u64> {
    let field = bytes.get(offset..offset + 8).context("ELF field past the end of the file")?;
    Ok(u64::from_le_bytes(field.try_into().expect("eight bytes")))
}

fn to_usize(value: u64, what: &str) -> Result<usize> {
    usize::try_from(value).with_context(|| format!("{what} {value:#x} does not fit in memory"))
}

impl<'a> RootTask<'a> {
    /// Reads the program headers and the symbol table and checks the placeholder protocol.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        ensure!(bytes.len() >= ELF_HEADER_SIZE, "the file is shorter than an ELF header");
        ensure!(bytes[..4] == *b"\x7fELF", "not an ELF file");
        ensure!(bytes[4] == 2 && bytes[5] == 1, "not a little-endian ELF64 file");
        let headers = Self::program_headers(bytes)?;
        let (placeholder, last) = headers
            .iter()
            .enumerate()
            .filter(|(_, h)| h.kind == PT_LOAD && h.memory_size > 0)
            .max_by_key(|(_, h)| h.vaddr)
            .context("no PT_LOAD program header")?;
        let apps_start = symbol_value(bytes, APPS_START_SYMBOL)?.with_context(|| {
            format!(
                "the root task has no `{APPS_START_SYMBOL}` symbol: it predates pager mode (its link \
                 script must end with a one-page placeholder segment starting there)"
            )
        })?;
        ensure!(
            apps_start.is_multiple_of(PAGE_SIZE),
            "`{APPS_START_SYMBOL}` is {apps_start:#x}, not page aligned"
        );
        ensure!(
            last.vaddr == apps_start,
            "the last PT_LOAD (program header {placeholder}) starts at {:#x}, not at `{APPS_START_SYMBOL}` \
             ({apps_start:#x})",
            last.vaddr
        );
        ensure!(
            last.memory_size == PAGE_SIZE && last.file_size <= PAGE_SIZE,
            "the placeholder PT_LOAD at {apps_start:#x} has p_memsz {:#x} and p_filesz {:#x}, expected one \
             page (this root task may already be composed)",
            last.memory_size,
            last.file_size
        );
        let start = to_usize(last.offset, "placeholder offset")?;
        let contents = bytes
            .get(start..start + to_usize(last.file_size, "placeholder size")?)
            .context("the placeholder segment lies past the end of the file")?;
        ensure!(
            contents.iter().all(|&b| b == 0),
            "the placeholder at {apps_start:#x} is not zero (this root task is already composed)"
        );
        let span = span(&headers);
        Ok(Self { bytes, placeholder, apps_start, span })
    }

    fn program_headers(bytes: &[u8]) -> Result<Vec<ProgramHeader>> {
        let table = to_usize(u64_at(bytes, 32)?, "e_phoff")?;
        let entry_size = usize::from(u16_at(bytes, 54)?);
        let count = usize::from(u16_at(bytes, 56)?);
        ensure!(entry_size == PROGRAM_HEADER_SIZE, "e_phentsize is {entry_size}, not {PROGRAM_HEADER_SIZE}");
        (0..count)
            .map(|index| {
                let at = table + index * PROGRAM_HEADER_SIZE;
                Ok(ProgramHeader {
                    kind: u32_at(bytes, at)?,
                    offset: u64_at(bytes, at + 8)?,
                    vaddr: u64_at(bytes, at + 16)?,
                    file_size: u64_at(bytes, at + 32)?,
                    memory_size: u64_at(bytes, at + 40)?,
                })
            })
            .collect()
    }

    /// Appends `image` (a page multiple) and rewrites the placeholder's program header to load it.
    /// Fails when the composed root task would span more than [`SPAN_LIMIT_PAGES`].
    pub fn compose(&self, image: &[u8]) -> Result<Composed> {
        ensure!(
            !image.is_empty() && (image.len() as u64).is_multiple_of(PAGE_SIZE),
            "the boot image is {} bytes, not a positive multiple of the page size",
            image.len()
        );
        let image_length = image.len() as u64;
        let image_offset = (self.bytes.len() as u64).next_multiple_of(PAGE_SIZE);
        let span = Span { first: self.span.first, end: self.span.end.max(self.apps_start + image_length) };
        if span.pages() > SPAN_LIMIT_PAGES {
            bail!(
                "the composed root task would span {} pages ({} of root task, {} of boot image); the root \
                 CNode (2^18 slots, CONFIG_ROOT_CNODE_SIZE_BITS in kernel/autoconf.h) gives one slot per \
                 page and this project allows at most {SPAN_LIMIT_PAGES}: make the apps smaller or fewer",
                span.pages(),
                self.span.pages() - 1,
                image_length / PAGE_SIZE
            );
        }
        let mut bytes = self.bytes.to_vec();
        bytes.resize(to_usize(image_offset, "image offset")?, 0);
        bytes.extend_from_slice(image);
        let header = to_usize(u64_at(self.bytes, 32)?, "e_phoff")? + self.placeholder * PROGRAM_HEADER_SIZE;
        bytes[header + 4..header + 8].copy_from_slice(&PF_R.to_le_bytes());
        bytes[header + 8..header + 16].copy_from_slice(&image_offset.to_le_bytes());
        bytes[header + 32..header + 40].copy_from_slice(&image_length.to_le_bytes());
        bytes[header + 40..header + 48].copy_from_slice(&image_length.to_le_bytes());
        bytes[header + 48..header + 56].copy_from_slice(&PAGE_SIZE.to_le_bytes());
        Ok(Composed { bytes, apps_start: self.apps_start, image_offset, image_length, span })
    }
}

/// From the lowest page to the end of the highest page of every header that occupies memory (the
/// seL4 5.0 loader maps those, whatever their type).
fn span(headers: &[ProgramHeader]) -> Span {
    let loaded = headers.iter().filter(|h| h.memory_size > 0);
    let first = loaded.clone().map(|h| h.vaddr & !(PAGE_SIZE - 1)).min().unwrap_or(0);
    let end = loaded.map(|h| (h.vaddr + h.memory_size).next_multiple_of(PAGE_SIZE)).max().unwrap_or(0);
    Span { first, end }
}

/// The value of a symbol in the ELF's `.symtab`; `None` when there is no such symbol (or no table).
fn symbol_value(bytes: &[u8], name: &str) -> Result<Option<u64>> {
    let table = to_usize(u64_at(bytes, 40)?, "e_shoff")?;
    let entry_size = usize::from(u16_at(bytes, 58)?);
    let count = usize::from(u16_at(bytes, 60)?);
    if table == 0 || count == 0 {
        return Ok(None);
    }
    ensure!(entry_size == SECTION_HEADER_SIZE, "e_shentsize is {entry_size}, not {SECTION_HEADER_SIZE}");
    let section = |index: usize| -> Result<(u32, usize, usize, usize)> {
        let at = table + index * SECTION_HEADER_SIZE;
        Ok((
            u32_at(bytes, at + 4)?,
            to_usize(u64_at(bytes, at + 24)?, "sh_offset")?,
            to_usize(u64_at(bytes, at + 32)?, "sh_size")?,
            u32_at(bytes, at + 40)? as usize,
        ))
    };
    for index in 0..count {
        let (kind, offset, size, link) = section(index)?;
        if kind != SHT_SYMTAB {
            continue;
        }
        ensure!(link < count, "the symbol table's string table index {link} is out of range");
        let (_, strings_offset, strings_size, _) = section(link)?;
        let strings =
            bytes.get(strings_offset..strings_offset + strings_size).context("string table out of file")?;
        let symbols = bytes.get(offset..offset + size).context("symbol table out of file")?;
        for symbol in symbols.chunks_exact(SYMBOL_SIZE) {
            let name_offset = u32_at(symbol, 0)? as usize;
            let Some(tail) = strings.get(name_offset..) else { continue };
            let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
            if &tail[..end] == name.as_bytes() {
                return Ok(Some(u64_at(symbol, 8)?));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A synthetic static root task: text at 0x400000, data+bss, then the placeholder page at
    /// `apps_start` in its own PT_LOAD, with a symbol table naming `__apps_start`.
    pub(crate) fn synthetic_root_task(placeholder_file_size: u64) -> Vec<u8> {
        let apps_start: u64 = 0x40_3000;
        let phnum = 3u16;
        let phoff = ELF_HEADER_SIZE as u64;
        let text_offset = 0x1000u64;
        let data_offset = 0x2000u64;
        let placeholder_offset = 0x3000u64;
        let strtab_offset = placeholder_offset + placeholder_file_size;
        let strings = b"\0_start\0__apps_start\0";
        let symtab_offset = (strtab_offset + strings.len() as u64).next_multiple_of(8);
        let symbols = 3u64;
        let shoff = symtab_offset + symbols * SYMBOL_SIZE as u64;
        let mut elf = vec![0u8; shoff as usize + 3 * SECTION_HEADER_SIZE];
        let put = |elf: &mut Vec<u8>, at: u64, value: &[u8]| {
            elf[at as usize..at as usize + value.len()].copy_from_slice(value)
        };
        put(&mut elf, 0, &[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
        put(&mut elf, 16, &2u16.to_le_bytes());
        put(&mut elf, 18, &62u16.to_le_bytes());
        put(&mut elf, 20, &1u32.to_le_bytes());
        put(&mut elf, 24, &0x40_0000u64.to_le_bytes());
        put(&mut elf, 32, &phoff.to_le_bytes());
        put(&mut elf, 40, &shoff.to_le_bytes());
        put(&mut elf, 52, &(ELF_HEADER_SIZE as u16).to_le_bytes());
        put(&mut elf, 54, &(PROGRAM_HEADER_SIZE as u16).to_le_bytes());
        put(&mut elf, 56, &phnum.to_le_bytes());
        put(&mut elf, 58, &(SECTION_HEADER_SIZE as u16).to_le_bytes());
        put(&mut elf, 60, &3u16.to_le_bytes());
        put(&mut elf, 62, &2u16.to_le_bytes()); // e_shstrndx: section names share .strtab
        let segments: [(u32, u64, u64, u64, u64); 3] = [
            (5, text_offset, 0x40_0000, 0x10, 0x10),
            (6, data_offset, 0x40_1000, 0x20, 0x1800),
            (4, placeholder_offset, apps_start, placeholder_file_size, PAGE_SIZE),
        ];
        for (index, (flags, offset, vaddr, filesz, memsz)) in segments.into_iter().enumerate() {
            let at = phoff + (index * PROGRAM_HEADER_SIZE) as u64;
            put(&mut elf, at, &PT_LOAD.to_le_bytes());
            put(&mut elf, at + 4, &flags.to_le_bytes());
            put(&mut elf, at + 8, &offset.to_le_bytes());
            put(&mut elf, at + 16, &vaddr.to_le_bytes());
            put(&mut elf, at + 24, &vaddr.to_le_bytes());
            put(&mut elf, at + 32, &filesz.to_le_bytes());
            put(&mut elf, at + 40, &memsz.to_le_bytes());
            put(&mut elf, at + 48, &PAGE_SIZE.to_le_bytes());
        }
        put(&mut elf, text_offset, &[0xeb, 0xfe]);
        put(&mut elf, data_offset, &[0x55; 0x20]);
        put(&mut elf, strtab_offset, strings);
        // Symbol 0 is null; 1: _start; 2: __apps_start.
        for (index, (name, value)) in [(1u32, 0x40_0000u64), (8, apps_start)].into_iter().enumerate() {
            let at = symtab_offset + ((index + 1) * SYMBOL_SIZE) as u64;
            put(&mut elf, at, &name.to_le_bytes());
            put(&mut elf, at + 4, &[0x10]); // STB_GLOBAL, STT_NOTYPE
            put(&mut elf, at + 6, &1u16.to_le_bytes());
            put(&mut elf, at + 8, &value.to_le_bytes());
        }
        // Section 0 null; 1: .symtab linked to 2: .strtab.
        let at = shoff + SECTION_HEADER_SIZE as u64;
        put(&mut elf, at + 4, &SHT_SYMTAB.to_le_bytes());
        put(&mut elf, at + 24, &symtab_offset.to_le_bytes());
        put(&mut elf, at + 32, &(symbols * SYMBOL_SIZE as u64).to_le_bytes());
        put(&mut elf, at + 40, &2u32.to_le_bytes());
        put(&mut elf, at + 56, &(SYMBOL_SIZE as u64).to_le_bytes());
        let at = shoff + 2 * SECTION_HEADER_SIZE as u64;
        put(&mut elf, at + 4, &3u32.to_le_bytes()); // SHT_STRTAB
        put(&mut elf, at + 24, &strtab_offset.to_le_bytes());
        put(&mut elf, at + 32, &(strings.len() as u64).to_le_bytes());
        elf
    }

    fn image(pages: usize) -> Vec<u8> {
        let mut image: Vec<u8> = (0..pages * PAGE_SIZE as usize).map(|i| (i % 251) as u8).collect();
        image[..8].copy_from_slice(b"SEL4PGR1");
        image
    }

    #[test]
    fn finds_the_placeholder_and_the_span() {
        for filesz in [0, PAGE_SIZE] {
            let elf = synthetic_root_task(filesz);
            let root_task = RootTask::parse(&elf).unwrap();
            assert_eq!(root_task.apps_start, 0x40_3000);
            assert_eq!(root_task.placeholder, 2);
            assert_eq!(root_task.span, Span { first: 0x40_0000, end: 0x40_4000 });
            assert_eq!(root_task.span.pages(), 4);
        }
    }

    #[test]
    fn rewrites_the_last_program_header_and_appends_the_image() {
        let elf = synthetic_root_task(PAGE_SIZE);
        let image = image(3);
        let composed = RootTask::parse(&elf).unwrap().compose(&image).unwrap();
        let expected_offset = (elf.len() as u64).next_multiple_of(PAGE_SIZE);
        assert_eq!(composed.image_offset, expected_offset);
        assert_eq!(composed.bytes.len() as u64, expected_offset + 3 * PAGE_SIZE);
        assert_eq!(&composed.bytes[..elf.len()][..ELF_HEADER_SIZE], &elf[..ELF_HEADER_SIZE]);
        assert!(composed.bytes[elf.len()..expected_offset as usize].iter().all(|&b| b == 0));
        assert_eq!(&composed.bytes[expected_offset as usize..], &image[..]);
        assert_eq!(composed.span, Span { first: 0x40_0000, end: 0x40_6000 });

        // The earlier headers are untouched; the last one loads the image read-only.
        let headers = RootTask::program_headers(&composed.bytes).unwrap();
        let original = RootTask::program_headers(&elf).unwrap();
        let table = ELF_HEADER_SIZE..ELF_HEADER_SIZE + 2 * PROGRAM_HEADER_SIZE;
        assert_eq!(&composed.bytes[table.clone()], &elf[table]);
        assert_eq!(headers.len(), original.len());
        let last = &headers[2];
        assert_eq!(
            (last.kind, last.offset, last.vaddr, last.file_size, last.memory_size),
            (PT_LOAD, expected_offset, 0x40_3000, 3 * PAGE_SIZE, 3 * PAGE_SIZE)
        );
        let last_at = ELF_HEADER_SIZE + 2 * PROGRAM_HEADER_SIZE;
        assert_eq!(u32_at(&composed.bytes, last_at + 4).unwrap(), PF_R);
        assert_eq!(u64_at(&composed.bytes, last_at + 48).unwrap(), PAGE_SIZE);
        // Nothing but the placeholder's header changed in the original part of the file.
        let mut expected = elf.clone();
        expected[last_at..last_at + PROGRAM_HEADER_SIZE]
            .copy_from_slice(&composed.bytes[last_at..last_at + PROGRAM_HEADER_SIZE]);
        assert_eq!(&composed.bytes[..elf.len()], &expected[..]);
    }

    #[test]
    fn an_independent_reader_sees_the_composed_segment() {
        use object::read::elf::{ElfFile64, FileHeader as _, ProgramHeader as _};
        use object::{Object, ObjectSymbol};
        let elf = synthetic_root_task(0);
        let image = image(2);
        let composed = RootTask::parse(&elf).unwrap().compose(&image).unwrap();
        let file = ElfFile64::<object::LittleEndian>::parse(composed.bytes.as_slice()).unwrap();
        let endian = file.endian();
        let headers = file.elf_header().program_headers(endian, composed.bytes.as_slice()).unwrap();
        let last = headers.iter().max_by_key(|h| h.p_vaddr(endian)).unwrap();
        assert_eq!(last.p_type(endian), object::elf::PT_LOAD);
        assert_eq!(last.p_flags(endian), object::elf::PF_R);
        assert_eq!(last.p_memsz(endian), 2 * PAGE_SIZE);
        assert_eq!(last.p_align(endian), PAGE_SIZE);
        assert_eq!(last.data(endian, composed.bytes.as_slice()).unwrap(), &image[..]);
        let symbol = file.symbols().find(|s| s.name() == Ok(APPS_START_SYMBOL)).unwrap();
        assert_eq!(symbol.address(), last.p_vaddr(endian));
    }

    #[test]
    fn composition_is_deterministic() {
        let elf = synthetic_root_task(PAGE_SIZE);
        let image = image(2);
        let one = RootTask::parse(&elf).unwrap().compose(&image).unwrap().bytes;
        let two = RootTask::parse(&elf).unwrap().compose(&image).unwrap().bytes;
        assert_eq!(one, two);
    }

    #[test]
    fn refuses_a_composed_or_foreign_root_task_and_oversized_images() {
        let elf = synthetic_root_task(PAGE_SIZE);
        let composed = RootTask::parse(&elf).unwrap().compose(&image(1)).unwrap();
        let error = RootTask::parse(&composed.bytes).unwrap_err().to_string();
        assert!(error.contains("already composed"), "{error}");

        let mut no_symbol = elf.clone();
        let at = no_symbol.windows(12).position(|w| w == b"__apps_start").unwrap();
        no_symbol[at] = b'X';
        let error = RootTask::parse(&no_symbol).unwrap_err().to_string();
        assert!(error.contains("no `__apps_start` symbol"), "{error}");

        let root_task = RootTask::parse(&elf).unwrap();
        let error = root_task.compose(&[0; 100]).err().unwrap().to_string();
        assert!(error.contains("not a positive multiple"), "{error}");
        // The synthetic root task spans 3 pages before its placeholder.
        let fits = (SPAN_LIMIT_PAGES - 3) as usize;
        assert!(root_task.compose(&vec![0; fits * PAGE_SIZE as usize]).is_ok());
        let error = root_task.compose(&vec![0; (fits + 1) * PAGE_SIZE as usize]).err().unwrap().to_string();
        assert!(error.contains("60001 pages") && error.contains("autoconf.h"), "{error}");
    }
}
