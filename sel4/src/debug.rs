//! Text output for the root task: to its own serial port once [`use_serial`] has installed one
//! (a [`crate::serial::Uart`] through its I/O-port cap), else through the debug kernel's
//! `DebugPutChar`. Either way one kernel entry or two per byte: slow, but it needs no IPC buffer
//! and no memory, so it works from any thread of the root task and in a panic.
//!
//! A release kernel has no `DebugPutChar`: a root task for it installs its serial port first.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::cap::IoPort;
use crate::serial::Uart;
use crate::syscall;

/// The installed serial port: the I/O-port cap's CPtr in the high 48 bits, the base port in the
/// low 16; 0 while none is installed.
static SERIAL: AtomicU64 = AtomicU64::new(0);

/// Sends all further output to `uart` (initialise it first).
pub fn use_serial(uart: Uart, ports: IoPort) {
    SERIAL.store(ports.bits() << 16 | u64::from(uart.base()), Ordering::SeqCst);
}

/// The installed serial port, if any.
pub fn serial() -> Option<Uart> {
    match SERIAL.load(Ordering::SeqCst) {
        0 => None,
        word => Some(Uart::new(IoPort::new(word >> 16), word as u16)),
    }
}

/// Writes `text` to the console.
pub fn put_str(text: &str) {
    put_bytes(text.as_bytes());
}

/// Writes bytes to the console as they are (a client's output need not be UTF-8).
pub fn put_bytes(bytes: &[u8]) {
    match serial() {
        // Nothing to do on failure: this is the channel failures would be reported on.
        Some(uart) => drop(uart.put_bytes(bytes)),
        None => {
            for &byte in bytes {
                syscall::debug_put_char(byte);
            }
        }
    }
}

/// A [`core::fmt::Write`] sink for the console.
#[derive(Clone, Copy, Debug, Default)]
pub struct DebugWriter;

impl core::fmt::Write for DebugWriter {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        put_str(text);
        Ok(())
    }
}

/// Halts the machine through the debug kernel.
pub fn halt() -> ! {
    loop {
        syscall::debug_halt();
    }
}

/// Prints to the console.
#[macro_export]
macro_rules! debug_print {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = write!($crate::debug::DebugWriter, $($arg)*);
    }};
}

/// Prints a line to the console.
#[macro_export]
macro_rules! debug_println {
    () => { $crate::debug::put_str("\n") };
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::debug::DebugWriter, $($arg)*);
    }};
}
