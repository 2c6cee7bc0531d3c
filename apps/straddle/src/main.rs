//! straddle: checks the pages where a writable segment's file-backed part meets its `.bss`.
//!
//! Its own linker script (`link.ld`) starts the writable segment 0xC00 into a page and ends the
//! file-backed part mid-page, with `.bss` going on in the same page. Three tables sit at the
//! edges: `DATA_HEAD` opens the segment, `DATA_TAIL` ends the file-backed part and `BSS_HEAD`
//! starts right after it. The app first checks that layout from its own addresses, then every
//! byte on both sides of the file end (known patterns below it, zeros above), then writes both
//! sides and re-reads them, so a pager that copies too much of the image, zeroes too little or
//! maps the straddling page twice shows up as a mismatch. Each instance writes its own values.
#![cfg_attr(target_os = "none", no_std)]
#![no_main]
#![deny(unsafe_code)]

use core::hint::black_box;
use core::sync::atomic::{AtomicU64, Ordering};

use app_runtime::{println, Context, PAGE_SIZE};

app_runtime::entry!(main);

/// Where the writable segment starts in its page (see `link.ld`).
const SEGMENT_PAGE_OFFSET: u64 = 0xC00;
const HEAD_WORDS: usize = 64;
/// Enough words that the tail crosses a page boundary and ends mid-page.
const TAIL_WORDS: usize = 700;
/// Two pages of `.bss` after the file end.
const BSS_WORDS: usize = 1024;
const WORD_BYTES: u64 = 8;

const HEAD_SEED: u64 = 0x4845_4144_0000_0000;
const TAIL_SEED: u64 = 0x5441_494C_0000_0000;

// `link_section` names the sections that `link.ld` places at the edges of the segment.
#[allow(unsafe_code)]
#[link_section = ".data.straddle_head"]
static DATA_HEAD: [AtomicU64; HEAD_WORDS] = table(HEAD_SEED);
#[allow(unsafe_code)]
#[link_section = ".straddle_data_tail"]
static DATA_TAIL: [AtomicU64; TAIL_WORDS] = table(TAIL_SEED);
#[allow(unsafe_code)]
#[link_section = ".bss.straddle_head"]
static BSS_HEAD: [AtomicU64; BSS_WORDS] = [const { AtomicU64::new(0) }; BSS_WORDS];

/// A non-zero value for each word, different in every table.
const fn pattern(seed: u64, index: usize) -> u64 {
    (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed
}

const fn table<const WORDS: usize>(seed: u64) -> [AtomicU64; WORDS] {
    let mut table = [const { AtomicU64::new(0) }; WORDS];
    let mut index = 0;
    while index < WORDS {
        table[index] = AtomicU64::new(pattern(seed, index));
        index += 1;
    }
    table
}

fn address<T>(item: &T) -> u64 {
    item as *const T as u64
}

/// Checks every word of `table` against `expected(index)`; prints the first difference.
fn check(what: &str, table: &[AtomicU64], expected: impl Fn(usize) -> u64) -> bool {
    for (index, word) in black_box(table).iter().enumerate() {
        let found = word.load(Ordering::Relaxed);
        if found != expected(index) {
            println!(
                "{what} word {index} at {:#x}: expected {:#x}, found {found:#x}",
                address(word),
                expected(index)
            );
            return false;
        }
    }
    true
}

fn check_layout() -> Result<(), &'static str> {
    let head = address(&DATA_HEAD);
    let file_end = address(&DATA_TAIL) + TAIL_WORDS as u64 * WORD_BYTES;
    let bss = address(&BSS_HEAD);
    println!("segment at {head:#x}, file end at {file_end:#x}, bss at {bss:#x}");
    if head % PAGE_SIZE != SEGMENT_PAGE_OFFSET {
        return Err("the data head is not where link.ld puts the segment start");
    }
    if file_end != bss {
        return Err("the bss head does not follow the data tail");
    }
    if file_end.is_multiple_of(PAGE_SIZE) {
        return Err("the file end is page aligned");
    }
    Ok(())
}

fn check_initial() -> bool {
    check("data head", &DATA_HEAD, |index| pattern(HEAD_SEED, index))
        && check("data tail", &DATA_TAIL, |index| pattern(TAIL_SEED, index))
        && check("bss head", &BSS_HEAD, |_| 0)
}

/// Writes both sides of the file end, the two words touching it first, and re-reads all of it.
fn check_writes(instance: u64) -> bool {
    let tail_value = |index: usize| !pattern(TAIL_SEED, index) ^ instance;
    let bss_value = |index: usize| pattern(instance, index);
    DATA_TAIL[TAIL_WORDS - 1].store(tail_value(TAIL_WORDS - 1), Ordering::Relaxed);
    BSS_HEAD[0].store(bss_value(0), Ordering::Relaxed);
    let neighbours_kept =
        check("data tail after writing its last word", &DATA_TAIL[..TAIL_WORDS - 1], |index| {
            pattern(TAIL_SEED, index)
        }) && check("bss head after writing its first word", &BSS_HEAD[1..], |_| 0);
    if !neighbours_kept {
        return false;
    }
    for (index, word) in DATA_TAIL.iter().enumerate() {
        word.store(tail_value(index), Ordering::Relaxed);
    }
    for (index, word) in BSS_HEAD.iter().enumerate() {
        word.store(bss_value(index), Ordering::Relaxed);
    }
    check("data tail (written)", &DATA_TAIL, tail_value)
        && check("bss head (written)", &BSS_HEAD, bss_value)
        && check("data head (untouched)", &DATA_HEAD, |index| pattern(HEAD_SEED, index))
}

fn main(context: &Context) -> i32 {
    if let Err(problem) = check_layout() {
        println!("layout: FAILED: {problem}");
        return 1;
    }
    println!("layout: ok");
    if !check_initial() {
        println!("initial contents: FAILED");
        return 1;
    }
    println!("initial contents: ok");
    if !check_writes(context.instance()) {
        println!("writes: FAILED");
        return 1;
    }
    println!("writes: ok");
    println!("straddle: ok");
    0
}
