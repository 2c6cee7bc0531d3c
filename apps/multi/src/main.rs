//! multi: one ELF run as several instances, each checking that its `.data` and `.bss` are its own.
//!
//! Every instance starts from the image's initial values, whatever the others have written:
//! a pager that shared a writable segment's frames between instances would hand a later instance
//! an earlier one's values. Each instance checks the initial values, writes its instance number,
//! yields a few times so the others run and write theirs, and re-reads its own.
#![cfg_attr(target_os = "none", no_std)]
#![no_main]
#![deny(unsafe_code)]

use core::hint::black_box;
use core::sync::atomic::{AtomicU64, Ordering};

use app_runtime::{println, yield_now, Context};

app_runtime::entry!(main);

const INITIAL: u64 = 0x1417_0000_DA7A_0000;
/// Times to yield between writing and re-reading, so the other instances get to write too.
const YIELDS: usize = 20;

static DATA_SLOT: AtomicU64 = AtomicU64::new(INITIAL);
static BSS_SLOT: AtomicU64 = AtomicU64::new(0);

fn main(context: &Context) -> i32 {
    let instance = context.instance();
    let (data, bss) = (black_box(&DATA_SLOT), black_box(&BSS_SLOT));
    let (data_found, bss_found) = (data.load(Ordering::Relaxed), bss.load(Ordering::Relaxed));
    if data_found != INITIAL || bss_found != 0 {
        println!(
            "instance {instance}: initial values {data_found:#x} and {bss_found:#x}, not {INITIAL:#x} and 0"
        );
        return 1;
    }
    data.store(INITIAL | instance, Ordering::Relaxed);
    bss.store(instance + 1, Ordering::Relaxed);
    for _ in 0..YIELDS {
        yield_now();
    }
    let (data_found, bss_found) = (data.load(Ordering::Relaxed), bss.load(Ordering::Relaxed));
    if data_found != INITIAL | instance || bss_found != instance + 1 {
        println!(
            "instance {instance}: read back {data_found:#x} and {bss_found:#x}, another instance's values"
        );
        return 1;
    }
    println!("instance {instance} ok");
    0
}
