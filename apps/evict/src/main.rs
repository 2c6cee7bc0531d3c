//! evict: a working set larger than the frame budget, filled, then re-read and checked several times.
//!
//! The app takes all of its heap but a page for the allocator as one page-aligned array of pages;
//! the manifest gives it a heap four times its `frame_budget` (`manifests/evict.toml`), so the
//! pager must evict as it goes. It first writes every page with a pattern, then makes [`PASSES`]
//! passes over all of them in different orders (forward, backward, and two strides that visit
//! every page once), checking each page word for word against the pattern it should hold; the
//! second pass also rewrites every third page with a new version of its pattern, so pages that
//! came back from the store are changed and evicted again. A page that lost or mixed up data
//! fails the check.
//!
//! Beside the heap it reads [`DATA_PAGES`] pages of initialised, writable data (`.data`) in every
//! pass and never writes them: the pager copies each from the ELF on its first touch, and under
//! eviction drops it clean (it can copy it again) instead of storing it.
//!
//! The pattern mixes what a compressor meets: every eighth page is written all zeroes (a dirty
//! page the store keeps as a marker), the others alternate between pseudo-random words (which do
//! not compress), counters (which compress a little) and a short repeated text (which compresses
//! well). Prints one line and exits 0, or names the first wrong page and exits 1.
#![cfg_attr(target_os = "none", no_std)]
#![no_main]
#![deny(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use app_runtime::{println, Context, PAGE_SIZE};

app_runtime::entry_with_heap!(main);

/// Passes over the pages after the first fill.
const PASSES: u32 = 4;
/// The pass that also rewrites every third page.
const REWRITE_PASS: u32 = 2;
/// Words in a page.
const WORDS: usize = PAGE_SIZE as usize / 8;
const TEXT: &[u8; 64] = b"The pager evicts this page and brings it back unchanged, again. ";

/// Pages of [`DATA`].
const DATA_PAGES: usize = 16;
/// Words of [`DATA`].
const DATA_WORDS: usize = DATA_PAGES * WORDS;

/// Initialised data the app reads and never writes. Atomics make it a writable segment's (`.data`),
/// as a program's tables and initialised globals are, instead of read-only data the pager maps
/// from the image's own frames.
static DATA: [AtomicU64; DATA_WORDS] = {
    let mut data = [const { AtomicU64::new(0) }; DATA_WORDS];
    let mut index = 0;
    while index < DATA_WORDS {
        data[index] = AtomicU64::new(mix(index as u64 ^ 0xDA7A));
        index += 1;
    }
    data
};

/// One page of the working set, page aligned so each sits in a page of its own.
#[repr(C, align(4096))]
struct Page([u64; WORDS]);

/// SplitMix64's finaliser: a bijection that spreads every input bit over the output.
const fn mix(value: u64) -> u64 {
    let mut x = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Word `index` of page `page` in pattern version `version`.
fn word(page: usize, index: usize, version: u32) -> u64 {
    let (page64, index64, version64) = (page as u64, index as u64, u64::from(version));
    match page % 8 {
        7 => 0,
        0 | 3 | 6 => mix(page64 << 40 | version64 << 20 | index64),
        1 | 4 => (page64 << 32 | index64) + version64,
        _ => {
            let at = (index * 8 + page + version as usize) % TEXT.len();
            let bytes = core::array::from_fn(|i| TEXT[(at + i) % TEXT.len()]);
            u64::from_le_bytes(bytes)
        }
    }
}

fn fill(page: &mut Page, number: usize, version: u32) {
    for (index, slot) in page.0.iter_mut().enumerate() {
        *slot = word(number, index, version);
    }
}

/// The first word of `page` that differs from the pattern, if any.
fn first_difference(page: &Page, number: usize, version: u32) -> Option<(usize, u64)> {
    page.0
        .iter()
        .enumerate()
        .find(|&(index, &value)| value != word(number, index, version))
        .map(|(i, &v)| (i, v))
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// A step at least `from` that is coprime to `count`, so `k * step % count` visits every page once.
fn stride(count: usize, from: usize) -> usize {
    (from.max(1)..).find(|&step| gcd(step, count) == 1).unwrap_or(1)
}

fn main(context: &Context) -> i32 {
    // One page of the heap is left to the allocator's bookkeeping; nothing else is allocated.
    let count = (context.heap_size() / PAGE_SIZE).saturating_sub(1) as usize;
    if count < 2 {
        println!("evict: FAILED: the heap holds {count} pages; give it at least 3");
        return 1;
    }
    let mut pages: Vec<Page> = Vec::with_capacity(count);
    for number in 0..count {
        let mut page = Page([0; WORDS]);
        fill(&mut page, number, 0);
        pages.push(page);
    }
    // The version a page holds when a pass reaches it: rewritten pages change in the rewrite pass.
    let version = |number: usize, pass: u32| {
        if number.is_multiple_of(3) && pass > REWRITE_PASS {
            REWRITE_PASS
        } else {
            0
        }
    };
    let strides = [stride(count, count / 3), stride(count, count / 2 + 1)];
    for pass in 1..=PASSES {
        let data = DATA
            .iter()
            .enumerate()
            .position(|(i, word)| word.load(Ordering::Relaxed) != mix(i as u64 ^ 0xDA7A));
        if let Some(index) = data {
            println!(
                "evict: FAILED: pass {pass}: data word {index} is {:#x}",
                DATA[index].load(Ordering::Relaxed)
            );
            return 1;
        }
        for k in 0..count {
            let number = match pass {
                1 => k,
                2 => count - 1 - k,
                n => k * strides[(n as usize - 3) % 2] % count,
            };
            let expected = version(number, pass);
            if let Some((index, value)) = first_difference(&pages[number], number, expected) {
                println!(
                    "evict: FAILED: pass {pass}: page {number} word {index} is {value:#x}, not {:#x}",
                    word(number, index, expected)
                );
                return 1;
            }
            if pass == REWRITE_PASS && number.is_multiple_of(3) {
                fill(&mut pages[number], number, REWRITE_PASS);
            }
        }
    }
    let rewritten = (0..count).filter(|&number| version(number, PASSES + 1) != 0).count();
    println!(
        "evict: {count} pages written, {rewritten} rewritten, {DATA_PAGES} data pages read, checked in {PASSES} passes: every page as written: ok"
    );
    0
}
