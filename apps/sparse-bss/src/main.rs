//! sparse-bss: a 4 MiB `.bss` of which only every 16th page is ever touched.
//!
//! The pager maps nothing ahead of time under its default policy, so the app should cost one
//! fault and one frame per page it touches (64 of 1024), not 1024: its per-area report is the
//! thing to look at. Each touched page is checked to read zero (first and last word), then
//! written with a value naming the page, and all of them are re-read at the end.
#![cfg_attr(target_os = "none", no_std)]
#![no_main]
#![deny(unsafe_code)]

use core::hint::black_box;
use core::sync::atomic::{AtomicU64, Ordering};

use app_runtime::{println, Context};

app_runtime::entry!(main);

const WORDS_PER_PAGE: usize = 4096 / 8;
const PAGES: usize = 1024;
/// Touch one page in this many.
const STRIDE: usize = 16;

/// Page aligned, so each touched stretch of words is exactly one page.
#[repr(C, align(4096))]
struct Pages([AtomicU64; PAGES * WORDS_PER_PAGE]);

static SPARSE: Pages = Pages([const { AtomicU64::new(0) }; PAGES * WORDS_PER_PAGE]);

fn page_value(page: usize) -> u64 {
    0x5A00_0000_0000_0000 | page as u64
}

fn main(_context: &Context) -> i32 {
    let words = &black_box(&SPARSE).0;
    let mut touched = 0;
    for page in (0..PAGES).step_by(STRIDE) {
        let first = &words[page * WORDS_PER_PAGE];
        let last = &words[(page + 1) * WORDS_PER_PAGE - 1];
        let (first_value, last_value) = (first.load(Ordering::Relaxed), last.load(Ordering::Relaxed));
        if first_value != 0 || last_value != 0 {
            println!("page {page} is not zero: {first_value:#x} .. {last_value:#x}");
            return 1;
        }
        first.store(page_value(page), Ordering::Relaxed);
        last.store(!page_value(page), Ordering::Relaxed);
        touched += 1;
    }
    for page in (0..PAGES).step_by(STRIDE) {
        let first = words[page * WORDS_PER_PAGE].load(Ordering::Relaxed);
        let last = words[(page + 1) * WORDS_PER_PAGE - 1].load(Ordering::Relaxed);
        if first != page_value(page) || last != !page_value(page) {
            println!("page {page} lost its values: {first:#x} .. {last:#x}");
            return 1;
        }
    }
    println!("touched {touched} of {PAGES} pages");
    println!("sparse-bss: ok");
    0
}
