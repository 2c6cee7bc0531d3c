//! advise: the advise call from inside a client, each kind checked by what the client reads.
//!
//! On a 64-page `.bss` array: will-need on pages 0–15, then writes to them (no fault: they were
//! resolved ahead); dont-need on the same pages, then reads (zeroes again: the frames went, and
//! each page faults anew); sequential, then a walk over pages 32–63 (two faults of 16 pages);
//! random, then a walk over pages 16–31 (one fault a page). On its data segment: a page of the
//! ELF's values is overwritten, dropped with dont-need and read again: the ELF's values are back.
//! Last, ranges the pager must refuse with an error code (outside every area, the stack's guard
//! page, an unaligned start), which never stop the client. The manifest's `[[expect.stats]]`
//! count the faults and frames that prove each step.
#![cfg_attr(target_os = "none", no_std)]
#![no_main]
#![deny(unsafe_code)]

use core::hint::black_box;
use core::sync::atomic::{AtomicU64, Ordering};

use app_runtime::{advise, println, Advice, AdviseError, Context, PAGE_SIZE};

app_runtime::entry!(main);

const WORDS_PER_PAGE: usize = 4096 / 8;
const DATA_PAGES: usize = 2;

/// The ELF's value of data word `index`.
const fn data_value(index: usize) -> u64 {
    0xDA7A_0000_0000_0000 | (index as u64).wrapping_mul(0x9E37_79B9)
}

const fn data_words() -> [AtomicU64; DATA_PAGES * WORDS_PER_PAGE] {
    let mut words = [const { AtomicU64::new(0) }; DATA_PAGES * WORDS_PER_PAGE];
    let mut index = 0;
    while index < words.len() {
        words[index] = AtomicU64::new(data_value(index));
        index += 1;
    }
    words
}

/// Page aligned, so each page of it is a whole page of the data segment's file bytes.
#[repr(C, align(4096))]
struct DataPages([AtomicU64; DATA_PAGES * WORDS_PER_PAGE]);

static DATA: DataPages = DataPages(data_words());

const BSS_PAGES: usize = 64;

/// Page aligned and all zero: the pager serves it as zero-filled pages. Atomics, so the compiler
/// rereads what the pager changed under them (a dont-need) after each call.
#[repr(C, align(4096))]
struct BssPages([AtomicU64; BSS_PAGES * WORDS_PER_PAGE]);

static BSS: BssPages = BssPages([const { AtomicU64::new(0) }; BSS_PAGES * WORDS_PER_PAGE]);

fn bss_value(page: usize) -> u64 {
    0x0B55_0000_0000_0000 | page as u64
}

fn check(step: &str, ok: bool) -> Result<(), i32> {
    if ok {
        Ok(())
    } else {
        println!("advise: {step} failed");
        Err(1)
    }
}

fn run() -> Result<(), i32> {
    let bss = &black_box(&BSS).0;
    let base = bss.as_ptr() as u64;
    let page = |n: usize| base + n as u64 * PAGE_SIZE;
    let word = |n: usize| &bss[n * WORDS_PER_PAGE];
    let last_word = |n: usize| &bss[(n + 1) * WORDS_PER_PAGE - 1];

    // will-need: 16 pages resolved at once; writing them then takes no fault.
    check("will-need", advise(page(0), 16 * PAGE_SIZE, Advice::WillNeed) == Ok(16))?;
    for n in 0..16 {
        word(n).store(bss_value(n), Ordering::Relaxed);
    }
    println!("will-need: 16 pages resolved");

    // dont-need: the 16 frames go; each page reads zero again.
    check("dont-need", advise(page(0), 16 * PAGE_SIZE, Advice::DontNeed) == Ok(16))?;
    for n in 0..16 {
        let (first, last) = (word(n), last_word(n));
        check("dont-need re-read", first.load(Ordering::Relaxed) == 0 && last.load(Ordering::Relaxed) == 0)?;
    }
    println!("dont-need: 16 pages dropped, zeroes again");

    // dont-need on the data segment: the ELF's bytes come back.
    let data = &black_box(&DATA).0;
    let data_page = data.as_ptr() as u64;
    check("data aligned", data_page.is_multiple_of(PAGE_SIZE))?;
    for item in &data[..WORDS_PER_PAGE] {
        item.store(0, Ordering::Relaxed);
    }
    check("data dont-need", advise(data_page, PAGE_SIZE, Advice::DontNeed) == Ok(1))?;
    let restored =
        data[..WORDS_PER_PAGE].iter().enumerate().all(|(i, w)| w.load(Ordering::Relaxed) == data_value(i));
    check("data re-read", restored)?;
    println!("dont-need: the data page reads the ELF's bytes again");

    // sequential: pages 32..64 in two faults.
    check("sequential", advise(page(32), PAGE_SIZE, Advice::Sequential) == Ok(0))?;
    for n in 32..64 {
        word(n).store(bss_value(n), Ordering::Relaxed);
    }
    // random: pages 16..32 one fault each.
    check("random", advise(page(16), PAGE_SIZE, Advice::Random) == Ok(0))?;
    for n in 16..32 {
        word(n).store(bss_value(n), Ordering::Relaxed);
    }
    let kept = (16..64).all(|n| word(n).load(Ordering::Relaxed) == bss_value(n));
    check("sequential and random pages", kept)?;
    println!("sequential and random: 48 pages written");

    // Errors, never a stop: no area at 0x1000 (under the image), a range from the text into
    // nothing below it, an unaligned start, an empty range.
    check("outside", advise(0x1000, PAGE_SIZE, Advice::WillNeed) == Err(AdviseError::OutsideAreas))?;
    // The image starts at 0x400000 (apps/link.ld): the page below it is in no area.
    let text = 0x40_0000;
    check(
        "straddling",
        advise(text - PAGE_SIZE, 2 * PAGE_SIZE, Advice::DontNeed) == Err(AdviseError::OutsideAreas),
    )?;
    check("unaligned", advise(base + 8, PAGE_SIZE, Advice::WillNeed) == Err(AdviseError::Invalid))?;
    check("empty", advise(base, 0, Advice::WillNeed) == Err(AdviseError::Invalid))?;
    println!("errors: outside, straddling, unaligned and empty refused");
    Ok(())
}

fn main(_context: &Context) -> i32 {
    match run() {
        Ok(()) => {
            println!("advise: ok");
            0
        }
        Err(code) => code,
    }
}
