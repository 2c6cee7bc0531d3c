//! hello: the first app under the pager, checking every kind of segment as it is faulted in.
//!
//! Each check reads a table with known contents from one section, through `black_box` so the
//! compiler cannot answer from its own copy of the constants and the bytes really come from the
//! pages the pager mapped: a marker placed in `.text` (the read-only, executable segment, mapped
//! from the image's frames), a table in `.rodata`, a table in `.data` (copied on first touch, then
//! written and re-read) and a table in `.bss` (zero on first touch, then written and re-read). The
//! tables span more than one page, so each check takes several faults. One line per check, then
//! `hello: ok` and exit 0; any mismatch prints what was read and exits 1.
#![cfg_attr(target_os = "none", no_std)]
#![no_main]
#![deny(unsafe_code)]

use core::hint::black_box;
use core::sync::atomic::{AtomicU64, Ordering};

use app_runtime::{println, Context};

app_runtime::entry!(main);

/// Bytes of the marker kept in `.text`.
const TEXT_MARKER_BYTES: [u8; 32] = *b"pager hello: bytes kept in .text";
/// Words of the `.rodata` and `.data` tables: 4800 bytes, so each crosses a page boundary.
const TABLE_WORDS: usize = 600;
/// Words of the `.bss` table: two pages.
const BSS_WORDS: usize = 1024;

// `link_section` places the marker among the code: reading it reads the executable segment.
#[allow(unsafe_code)]
#[link_section = ".text.hello_marker"]
static TEXT_MARKER: [u8; 32] = TEXT_MARKER_BYTES;

static RODATA_TABLE: [u64; TABLE_WORDS] = rodata_table();
static DATA_TABLE: [AtomicU64; TABLE_WORDS] = data_table();
static BSS_TABLE: [AtomicU64; BSS_WORDS] = [const { AtomicU64::new(0) }; BSS_WORDS];

/// A value for each word that no two words, tables or zero pages share.
const fn pattern(seed: u64, index: usize) -> u64 {
    (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed
}

const RODATA_SEED: u64 = 0x0D0D_A7A0_0000_0000;
const DATA_SEED: u64 = 0x0DA7_A000_0000_0000;

const fn rodata_table() -> [u64; TABLE_WORDS] {
    let mut table = [0; TABLE_WORDS];
    let mut index = 0;
    while index < TABLE_WORDS {
        table[index] = pattern(RODATA_SEED, index);
        index += 1;
    }
    table
}

const fn data_table() -> [AtomicU64; TABLE_WORDS] {
    let mut table = [const { AtomicU64::new(0) }; TABLE_WORDS];
    let mut index = 0;
    while index < TABLE_WORDS {
        table[index] = AtomicU64::new(pattern(DATA_SEED, index));
        index += 1;
    }
    table
}

/// The first word that differs from what was expected.
struct Mismatch {
    what: &'static str,
    index: usize,
    expected: u64,
    found: u64,
}

impl core::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} word {}: expected {:#x}, found {:#x}", self.what, self.index, self.expected, self.found)
    }
}

fn expect(what: &'static str, index: usize, expected: u64, found: u64) -> Result<(), Mismatch> {
    if expected == found {
        Ok(())
    } else {
        Err(Mismatch { what, index, expected, found })
    }
}

/// A section check: reads a table and returns the first mismatch.
type Check = fn() -> Result<(), Mismatch>;

fn check_text() -> Result<(), Mismatch> {
    let marker = black_box(&TEXT_MARKER);
    for (index, (&expected, &found)) in TEXT_MARKER_BYTES.iter().zip(marker.iter()).enumerate() {
        expect("text marker byte", index, expected.into(), found.into())?;
    }
    Ok(())
}

fn check_rodata() -> Result<(), Mismatch> {
    let table = black_box(&RODATA_TABLE);
    for (index, &found) in table.iter().enumerate() {
        expect("rodata", index, pattern(RODATA_SEED, index), found)?;
    }
    Ok(())
}

fn check_data() -> Result<(), Mismatch> {
    let table = black_box(&DATA_TABLE);
    for (index, word) in table.iter().enumerate() {
        expect("data (initial)", index, pattern(DATA_SEED, index), word.load(Ordering::Relaxed))?;
    }
    for (index, word) in table.iter().enumerate() {
        word.store(!pattern(DATA_SEED, index), Ordering::Relaxed);
    }
    for (index, word) in table.iter().enumerate() {
        expect("data (written)", index, !pattern(DATA_SEED, index), word.load(Ordering::Relaxed))?;
    }
    Ok(())
}

fn check_bss() -> Result<(), Mismatch> {
    let table = black_box(&BSS_TABLE);
    for (index, word) in table.iter().enumerate() {
        expect("bss (initial)", index, 0, word.load(Ordering::Relaxed))?;
    }
    for (index, word) in table.iter().enumerate() {
        word.store(pattern(0, index), Ordering::Relaxed);
    }
    for (index, word) in table.iter().enumerate() {
        expect("bss (written)", index, pattern(0, index), word.load(Ordering::Relaxed))?;
    }
    Ok(())
}

fn main(_context: &Context) -> i32 {
    let checks: [(&str, Check); 4] =
        [("text", check_text), ("rodata", check_rodata), ("data", check_data), ("bss", check_bss)];
    let mut failures = 0;
    for (section, check) in checks {
        match check() {
            Ok(()) => println!("{section}: ok"),
            Err(mismatch) => {
                println!("{section}: FAILED: {mismatch}");
                failures += 1;
            }
        }
    }
    if failures == 0 {
        println!("hello: ok");
        0
    } else {
        println!("hello: {failures} checks FAILED");
        1
    }
}
