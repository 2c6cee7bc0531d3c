//! large-bss-unaligned: a 6 MiB `.bss` array on a 4 KiB boundary only, every page touched.
//!
//! Its segment starts just above the image's read-only data (apps/link.ld), not on a 2 MiB
//! boundary: under the `large-pages` policy the spans wholly inside it are large pages and the
//! pages at its two ends, whose spans it does not fill, fall back to 4 KiB pages
//! (manifests/large-pages.toml).
#![cfg_attr(target_os = "none", no_std)]
#![no_main]
#![deny(unsafe_code)]

use core::hint::black_box;
use core::sync::atomic::AtomicU64;

use app_runtime::{println, Context};

#[path = "../../large-bss/src/touch.rs"]
mod touch;

app_runtime::entry!(main);

const PAGES: usize = 1536;

#[repr(C, align(4096))]
struct Pages([AtomicU64; PAGES * touch::WORDS_PER_PAGE]);

static SPAN: Pages = Pages([const { AtomicU64::new(0) }; PAGES * touch::WORDS_PER_PAGE]);

fn main(_context: &Context) -> i32 {
    let words = &black_box(&SPAN).0;
    match touch::touch_every_page(words) {
        Ok(pages) => {
            println!("touched {pages} pages");
            println!("large-bss-unaligned: ok");
            0
        }
        Err(code) => code,
    }
}
