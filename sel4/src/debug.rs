//! Text output through the debug kernel's `DebugPutChar`, one syscall per byte. Slow, but it
//! needs no driver, no IPC buffer and no memory, so it works from any thread and in a panic.

use crate::syscall;

/// Writes `text` to the kernel console.
pub fn put_str(text: &str) {
    for byte in text.bytes() {
        syscall::debug_put_char(byte);
    }
}

/// A [`core::fmt::Write`] sink for the kernel console.
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

/// Prints to the kernel console.
#[macro_export]
macro_rules! debug_print {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = write!($crate::debug::DebugWriter, $($arg)*);
    }};
}

/// Prints a line to the kernel console.
#[macro_export]
macro_rules! debug_println {
    () => { $crate::debug::put_str("\n") };
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::debug::DebugWriter, $($arg)*);
    }};
}
