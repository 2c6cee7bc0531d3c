//! large-bss: a 64 MiB `.bss` array aligned to 2 MiB, every page touched.
//!
//! Under the `large-pages` policy each of its 32 spans is one 2 MiB frame and one fault; under
//! `seed` it is 16,384 faults (manifests/large-pages.toml). What it reads does not depend on the
//! policy: zeroes first, then what it wrote.
#![cfg_attr(target_os = "none", no_std)]
#![no_main]
#![deny(unsafe_code)]

use core::hint::black_box;
use core::sync::atomic::AtomicU64;

use app_runtime::{println, Context};

#[path = "touch.rs"]
mod touch;

app_runtime::entry!(main);

const PAGES: usize = 16 * 1024;

/// 2 MiB aligned, so its 64 MiB are 32 whole large-page spans.
#[repr(C, align(2097152))]
struct Pages([AtomicU64; PAGES * touch::WORDS_PER_PAGE]);

static BIG: Pages = Pages([const { AtomicU64::new(0) }; PAGES * touch::WORDS_PER_PAGE]);

fn main(_context: &Context) -> i32 {
    let words = &black_box(&BIG).0;
    match touch::touch_every_page(words) {
        Ok(pages) => {
            println!("touched {pages} pages at {:#x}", words.as_ptr() as u64);
            println!("large-bss: ok");
            0
        }
        Err(code) => code,
    }
}
