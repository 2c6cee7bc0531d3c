//! stack: grows the stack a page at a time, then overflows it into the guard page.
//!
//! Each level of recursion keeps a page-sized frame live across the call below it, so the stack
//! grows by at least a page per level and every page is touched (the frame is filled, and the
//! target's stack probes touch pages in order anyway). First it recurses to [`DEPTH`] levels and
//! prints the depth reached, a stack the manifest's 64 KiB holds; then it recurses without end,
//! which must touch the guard page below the stack and be stopped with `stack overflow`.
#![cfg_attr(target_os = "none", no_std)]
#![no_main]
#![deny(unsafe_code)]

use core::hint::black_box;

use app_runtime::{println, Context};

app_runtime::entry!(main);

/// Levels of the first, bounded recursion: 8 pages and a bit, well inside a 64 KiB stack.
const DEPTH: u64 = 8;
const FRAME_BYTES: usize = 4096;

/// Recurses until `depth == limit`; returns the depth reached.
#[inline(never)]
fn descend(depth: u64, limit: u64) -> u64 {
    let mut frame = [depth as u8; FRAME_BYTES];
    black_box(&mut frame);
    if depth == limit {
        return depth;
    }
    let reached = descend(depth + 1, limit);
    // Keeps the frame live across the call: no tail call, no reuse of the page.
    black_box(&frame);
    reached
}

fn main(_context: &Context) -> i32 {
    let reached = descend(1, DEPTH);
    println!("reached depth {reached}");
    println!("recursing without limit");
    let reached = descend(1, u64::MAX);
    // Not reached: the pager stops the app at the guard page.
    println!("FAILED: recursed to depth {reached} without overflowing");
    1
}
