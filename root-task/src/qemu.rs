//! Leaving QEMU with a status: a write to the `isa-debug-exit` device (I/O port 0xf4) makes
//! QEMU exit with `value << 1 | 1`.

use sel4::init;

/// The `iobase` of `-device isa-debug-exit,iobase=0xf4,iosize=0x04`.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;
/// Written on success: QEMU exits with status 33.
pub const PASS_VALUE: u8 = 0x10;
/// Written on failure: QEMU exits with status 35.
pub const FAIL_VALUE: u8 = 0x11;

/// Outcome to report to whoever runs QEMU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Status 33.
    Pass,
    /// Status 35.
    Fail,
}

/// Exits QEMU. Without the debug-exit device the write does nothing and the root task suspends
/// itself (a release kernel has no `DebugHalt`), which leaves the machine idle.
pub fn exit(outcome: Outcome) -> ! {
    let value = match outcome {
        Outcome::Pass => PASS_VALUE,
        Outcome::Fail => FAIL_VALUE,
    };
    if let Err(error) = init::IO_PORT.out8(DEBUG_EXIT_PORT, value) {
        sel4::debug_println!("root-task: cannot write the QEMU exit port: {error}");
    }
    let _ = init::TCB.suspend();
    loop {
        sel4::syscall::yield_now();
    }
}
