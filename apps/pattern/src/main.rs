//! pattern: runs the reference pattern its manifest's `argument` describes over its heap.
//!
//! The description is one line of `trace::pattern` (`sequential pages=N passes=P`, `random pages=N
//! count=C seed=X`, ...), the same generator the simulator turns into a trace
//! (`sim::replay::pattern_trace`), so the same pattern runs on seL4 and in the simulator. Each
//! reference reads one byte of its page of the heap, or writes one; a written page is checked
//! when read again, so a page the pager lost would show. Prints the description, the references
//! made and the pages touched, then `pattern: ok`, and exits 0; a bad description, a pattern
//! larger than the heap or a wrong byte exits 1 with the reason.
#![cfg_attr(target_os = "none", no_std)]
#![no_main]
#![deny(unsafe_code)]

use app_runtime::{println, Context, ARGUMENT_LIMIT, PAGE_SIZE};
use trace::pattern::Pattern;

app_runtime::entry!(main);

/// Written into a page's first byte on a write reference.
const MARK: u8 = 0xA5;

fn main(context: &Context) -> i32 {
    let mut buffer = [0u8; ARGUMENT_LIMIT];
    let Ok(description) = core::str::from_utf8(app_runtime::argument(&mut buffer)) else {
        println!("pattern: the argument is not UTF-8");
        return 1;
    };
    let pattern = match Pattern::parse(description) {
        Ok(pattern) => pattern,
        Err(error) => {
            println!("pattern: {description:?}: {error}");
            return 1;
        }
    };
    let (Some(_), size) = (context.heap_base(), context.heap_size()) else {
        println!("pattern: no heap (give the app one in the manifest)");
        return 1;
    };
    if u64::from(pattern.pages) * PAGE_SIZE > size {
        println!("pattern: {} pages do not fit in a heap of {size} bytes", pattern.pages);
        return 1;
    }
    let heap = match sel4::area::take(context.heap_area()) {
        Ok(heap) => heap,
        Err(error) => {
            println!("pattern: the heap: {error:?}");
            return 1;
        }
    };
    // Pages written so far: at most 32 Ki pages (128 MiB) are tracked, one bit each.
    let mut written = [0u64; 512];
    let mut touched = [0u64; 512];
    let mut references = 0u64;
    for reference in pattern.references() {
        let page = reference.page as usize;
        let offset = page * PAGE_SIZE as usize;
        let bit = (page % 64) as u32;
        let was_written = written.get(page / 64).is_some_and(|w| w & (1 << bit) != 0);
        if let Some(t) = touched.get_mut(page / 64) {
            *t |= 1 << bit;
        }
        if reference.write {
            heap[offset].write(MARK);
            if let Some(w) = written.get_mut(page / 64) {
                *w |= 1 << bit;
            }
        } else {
            let byte = sel4::area::read_byte(heap, offset).unwrap_or(0xFF);
            let expected = if was_written { MARK } else { 0 };
            if byte != expected {
                println!("pattern: page {page} reads {byte:#x}, expected {expected:#x}");
                return 1;
            }
        }
        references += 1;
    }
    let pages: u32 = touched.iter().map(|w| w.count_ones()).sum();
    println!("pattern: {description}: {references} references, {pages} pages touched");
    println!("pattern: ok");
    0
}
