//! The seL4 root task: the user-level ELF pager, or, without a boot image, a self-test of the binding.
//!
//! At boot it looks at `__apps_start` ([`boot_image`]): a packed boot image there means pager mode
//! ([`pager_mode`]): every app instance becomes a client with its own thread, CSpace and VSpace
//! ([`client`]), started, ended and torn down by [`lifecycle`], the portable `pager` crate decides
//! how each page fault is served and [`platform`] carries its decisions out with capability
//! invocations, and [`fault_loop`] serves faults and app calls until every client has exited or
//! been stopped. The zero placeholder means
//! self-test mode ([`selftest`]): retype, map, and a fault round trip with a second thread. Either
//! way the run ends with one marker line, `[test] PASS` or `[test] FAIL: <reason>`, and a QEMU exit
//! status.
//!
//! Design principles: all kernel access goes through the `sel4` crate; every kernel error is
//! reported with the step that hit it, never swallowed; nothing a client does can make the root
//! task panic; the marker line is printed exactly once, whether the run ends normally or in a
//! panic.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]
// Off target only the host unit tests use the modules.
#![cfg_attr(not(target_os = "none"), allow(dead_code))]

extern crate alloc;

mod boot_image;
mod client;
mod costs;
mod cspace;
mod fault_loop;
mod floor;
mod heap;
mod lifecycle;
mod object_allocator;
mod pager_mode;
mod platform;
mod qemu;
mod recorder;
mod report;
mod selftest;
mod timer;
mod vspace;

use core::sync::atomic::{AtomicBool, Ordering};

use sel4::BootInfo;

use crate::qemu::Outcome;

#[cfg(target_os = "none")]
sel4::root_task!(boot);

/// Set once the marker line is out, so a later panic does not print a second one.
static MARKER_PRINTED: AtomicBool = AtomicBool::new(false);

/// Prints the marker line (once) and exits QEMU.
fn finish(outcome: Outcome, reason: core::fmt::Arguments<'_>) -> ! {
    if !MARKER_PRINTED.swap(true, Ordering::SeqCst) {
        match outcome {
            Outcome::Pass => sel4::debug_println!("[test] PASS"),
            Outcome::Fail => sel4::debug_println!("[test] FAIL: {}", reason),
        }
    }
    qemu::exit(outcome)
}

fn boot(bootinfo: &BootInfo<'static>) -> ! {
    // The root task owns COM1 and is its only writer: no debug syscall is needed (a release kernel
    // has none), and a debug kernel's console is given another port (xtask's qemu.rs).
    let uart = sel4::serial::Uart::new(sel4::init::IO_PORT, sel4::serial::COM1);
    if uart.init().is_ok() {
        sel4::debug::use_serial(uart, sel4::init::IO_PORT);
    }
    if sel4::logger::init(log::LevelFilter::Info).is_err() {
        finish(Outcome::Fail, format_args!("logger already set"));
    }
    log_summary(bootinfo);
    match boot_image::find(bootinfo) {
        boot_image::Contents::Placeholder => match selftest::run(bootinfo) {
            Ok(()) => finish(Outcome::Pass, format_args!("")),
            Err(failure) => finish(Outcome::Fail, format_args!("{failure}")),
        },
        boot_image::Contents::Image(located) => match pager_mode::run(bootinfo, located) {
            Ok(()) => finish(Outcome::Pass, format_args!("")),
            Err(reason) => finish(Outcome::Fail, format_args!("{reason}")),
        },
        boot_image::Contents::Invalid(error) => finish(Outcome::Fail, format_args!("{error}")),
    }
}

fn log_summary(bootinfo: &BootInfo<'_>) {
    let (mut total, mut device, mut largest) = (0u64, 0u64, 0u8);
    for untyped in bootinfo.untyped_list() {
        total += untyped.size();
        if untyped.is_device {
            device += untyped.size();
        } else {
            largest = largest.max(untyped.size_bits);
        }
    }
    let untyped = bootinfo.untyped();
    let empty = bootinfo.empty();
    let image = bootinfo.user_image_frames();
    let paging = bootinfo.user_image_paging();
    log::info!(
        "boot info: node {} of {}, root CNode 2^{} slots, IPC buffer at {:#x}, TSC {} MHz",
        bootinfo.node_id(),
        bootinfo.node_count(),
        bootinfo.cnode_size_bits(),
        bootinfo.ipc_buffer_address(),
        bootinfo.arch_info()
    );
    log::info!(
        "untyped: {} caps in slots {}..{}, {} bytes total, {} non-device ({} device), largest non-device 2^{}",
        untyped.len(),
        untyped.start,
        untyped.end,
        total,
        total - device,
        device,
        largest
    );
    log::info!(
        "empty slots {}..{} ({}), image frames {}..{} ({} pages), image paging {}..{}",
        empty.start,
        empty.end,
        empty.len(),
        image.start,
        image.end,
        image.len(),
        paging.start,
        paging.end
    );
}

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    // One line: the marker must not be split by the multi-line default format.
    match info.location() {
        Some(location) => finish(Outcome::Fail, format_args!("panic at {location}: {}", info.message())),
        None => finish(Outcome::Fail, format_args!("panic: {}", info.message())),
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("root-task runs on seL4 only: build it for x86_64-unknown-none (cargo xtask run)");
    std::process::exit(1);
}
