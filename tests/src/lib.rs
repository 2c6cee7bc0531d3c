//! Shared fixtures for the pager's host tests: a reference executable covering every seed case, and
//! deterministic byte patterns.

#![forbid(unsafe_code)]

use pager::{BuiltinPolicy, PagerConfig, Policy};
use sim::elf::{ElfBuilder, FLAGS_R, FLAGS_RW, FLAGS_RX};
use sim::{BootImage, ModelConfig, Session};

/// Deterministic, non-periodic bytes (splitmix64), so a page read from the wrong offset cannot match.
pub fn pattern(seed: u64, length: usize) -> Vec<u8> {
    let mut state = seed;
    let mut bytes = Vec::with_capacity(length + 8);
    while bytes.len() < length {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        bytes.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    bytes.truncate(length);
    bytes
}

/// The reference executable's segments, one per seed case. Addresses are chosen so every page of
/// interest falls in a distinct case.
pub mod reference {
    /// Code, read-execute: pages 0 and 1 lie wholly in the file (image frames); page 2 holds the last
    /// 0x123 file bytes and zeroes above them (mixed, `pad_hi` only).
    pub const TEXT: u64 = 0x0040_0000;
    pub const TEXT_FILE_SIZE: u64 = 0x2123;
    /// Read-only data: one page of file, then half a page of zeroes (a read-only zero page).
    pub const RODATA: u64 = 0x0060_0000;
    pub const RODATA_FILE_SIZE: u64 = 0x1000;
    pub const RODATA_MEMORY_SIZE: u64 = 0x1800;
    /// Writable data starting 0x10 into its page: page 0 mixed (`pad_lo` 0x10), page 1 a copy, page 2
    /// mixed (the last 0x10 file bytes, `pad_hi` 0xff0), pages 3 and 4 zero (`p_filesz < p_memsz`).
    pub const DATA: u64 = 0x0080_0010;
    pub const DATA_FILE_SIZE: u64 = 0x2000;
    pub const DATA_MEMORY_SIZE: u64 = 0x4000;
    /// A small writable segment inside one page, with both `pad_lo` (0x100) and `pad_hi` (0xd00).
    pub const SMALL: u64 = 0x00a0_0100;
    pub const SMALL_FILE_SIZE: u64 = 0x200;
    pub const SMALL_MEMORY_SIZE: u64 = 0x300;
    /// `p_filesz == 0` (pure .bss) starting mid-page.
    pub const BSS: u64 = 0x00c0_0800;
    pub const BSS_MEMORY_SIZE: u64 = 0x1800;

    /// Segment numbers, as the pager's `AreaKind::Segment` names them.
    pub const TEXT_SEGMENT: u8 = 0;
    pub const RODATA_SEGMENT: u8 = 1;
    pub const DATA_SEGMENT: u8 = 2;
    pub const SMALL_SEGMENT: u8 = 3;
    pub const BSS_SEGMENT: u8 = 4;
}

/// The reference executable (see [`reference`]).
pub fn reference_elf() -> ElfBuilder {
    use reference::*;
    ElfBuilder::new()
        .segment(TEXT, pattern(1, TEXT_FILE_SIZE as usize), TEXT_FILE_SIZE, FLAGS_RX)
        .segment(RODATA, pattern(2, RODATA_FILE_SIZE as usize), RODATA_MEMORY_SIZE, FLAGS_R)
        .segment(DATA, pattern(3, DATA_FILE_SIZE as usize), DATA_MEMORY_SIZE, FLAGS_RW)
        .segment(SMALL, pattern(4, SMALL_FILE_SIZE as usize), SMALL_MEMORY_SIZE, FLAGS_RW)
        .segment(BSS, Vec::new(), BSS_MEMORY_SIZE, FLAGS_RW)
}

/// Another executable, placed first in [`reference_boot_image`] so the reference file's image page
/// numbers differ from its file page numbers.
pub fn other_elf() -> ElfBuilder {
    ElfBuilder::new().segment(0x0040_0000, pattern(98, 3 * 4096 - 100), 3 * 4096, FLAGS_RX)
}

/// A boot image holding [`other_elf`] (file 0) then the reference executable (file 1).
pub fn reference_boot_image() -> BootImage {
    BootImage::new().with(&other_elf().build()).with(&reference_elf().build())
}

/// Index of the reference executable in [`reference_boot_image`].
pub const REFERENCE_FILE: usize = 1;

/// A session over `boot` with the given capacities and policy.
pub fn session_with<P: Policy>(
    boot: &BootImage,
    pager_config: PagerConfig,
    kernel_config: ModelConfig,
    policy: P,
) -> Session<'_, P> {
    Session::new(boot, pager_config, kernel_config, policy).expect("the test images are valid")
}

/// The seed policy with default capacities.
pub fn default_session(boot: &BootImage) -> Session<'_, BuiltinPolicy> {
    session_with(boot, PagerConfig::default(), ModelConfig::default(), BuiltinPolicy::Seed)
}
