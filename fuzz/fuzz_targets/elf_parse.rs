//! Parses arbitrary bytes as an ELF64 executable. Rejections must be typed errors (never panics), and
//! every accepted file must satisfy the invariants the fault path relies on without re-checking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pager::elf::{ElfImage, MAX_SEGMENTS};
use pager::{page_align_down, page_align_up, PAGE_SIZE, USER_ADDRESS_LIMIT};

fuzz_target!(|data: &[u8]| {
    let image = match ElfImage::parse(data) {
        Ok(image) => image,
        Err(error) => {
            // Formatting an error must not panic either.
            let message = error.to_string();
            assert!(!message.is_empty());
            return;
        }
    };
    check(data, &image);
});

fn check(data: &[u8], image: &ElfImage<'_>) {
    assert!(core::ptr::eq(image.bytes(), data), "bytes() is not the input");
    assert!(data.starts_with(b"\x7fELF"), "accepted without the ELF magic");

    let segments = image.segments();
    assert!(!segments.is_empty(), "accepted with no segment");
    assert!(segments.len() <= MAX_SEGMENTS, "{} segments", segments.len());

    for (n, s) in segments.iter().enumerate() {
        assert!(s.memory_size > 0, "segment {n}: empty segment kept: {s:?}");
        assert!(s.file_size <= s.memory_size, "segment {n}: p_filesz > p_memsz: {s:?}");
        let file_end = s.offset.checked_add(s.file_size);
        assert!(
            file_end.is_some_and(|end| end <= data.len() as u64),
            "segment {n}: file bytes outside the {}-byte file: {s:?}",
            data.len()
        );
        let end = s.vaddr.checked_add(s.memory_size);
        assert!(end.is_some_and(|end| end <= USER_ADDRESS_LIMIT), "segment {n}: above 4 GiB: {s:?}");
        assert!(s.vaddr >= PAGE_SIZE, "segment {n}: in page zero: {s:?}");
        assert_eq!(s.offset % PAGE_SIZE, s.vaddr % PAGE_SIZE, "segment {n}: misaligned: {s:?}");
        // The helpers the fault path uses must agree with plain arithmetic.
        assert_eq!(s.file_end(), s.vaddr + s.file_size);
        let (low, high) = s.page_range();
        assert_eq!((low, high), (page_align_down(s.vaddr), page_align_up(s.vaddr + s.memory_size)));
        assert!(low < high && high <= USER_ADDRESS_LIMIT, "segment {n}: page range {low:#x}..{high:#x}");
    }
    for (n, pair) in segments.windows(2).enumerate() {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(a.vaddr < b.vaddr, "segments {n} and {}: unsorted: {a:?} {b:?}", n + 1);
        assert!(
            a.page_range().1 <= b.page_range().0,
            "segments {n} and {}: share a page: {a:?} {b:?}",
            n + 1
        );
    }

    let entry = image.entry();
    let inside =
        segments.iter().any(|s| s.rights.execute && entry >= s.vaddr && entry - s.vaddr < s.memory_size);
    assert!(inside, "entry {entry:#x} is not in an executable segment: {segments:?}");
}
