//! The dense touch both large-bss apps run: every page of a `.bss` array read (it must be zero),
//! then written with a value naming it, then all read back. Shared by `#[path]`.

use core::sync::atomic::{AtomicU64, Ordering};

use app_runtime::println;

pub const WORDS_PER_PAGE: usize = 4096 / 8;

fn page_value(page: usize) -> u64 {
    0x1A46_0000_0000_0000 | page as u64
}

/// Touches every page of `words`; returns the pages touched, or the exit code of a failed check.
pub fn touch_every_page(words: &[AtomicU64]) -> Result<usize, i32> {
    let pages = words.len() / WORDS_PER_PAGE;
    for page in 0..pages {
        let (first, last) = (&words[page * WORDS_PER_PAGE], &words[(page + 1) * WORDS_PER_PAGE - 1]);
        let (first_value, last_value) = (first.load(Ordering::Relaxed), last.load(Ordering::Relaxed));
        if first_value != 0 || last_value != 0 {
            println!("page {page} is not zero: {first_value:#x} .. {last_value:#x}");
            return Err(1);
        }
        first.store(page_value(page), Ordering::Relaxed);
        last.store(!page_value(page), Ordering::Relaxed);
    }
    for page in 0..pages {
        let first = words[page * WORDS_PER_PAGE].load(Ordering::Relaxed);
        let last = words[(page + 1) * WORDS_PER_PAGE - 1].load(Ordering::Relaxed);
        if first != page_value(page) || last != !page_value(page) {
            println!("page {page} lost its values: {first:#x} .. {last:#x}");
            return Err(1);
        }
    }
    Ok(pages)
}
