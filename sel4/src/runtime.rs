//! Start-up on the seL4 target: the root task's `_start`, its stack and the hand-over to its
//! `main` (registered with [`crate::root_task!`]); behind the `app` feature, an app's `_start`,
//! which hands the entry registers to the app runtime's main (`__sel4_app_main`), the heap area's
//! as the [`crate::area::EntryArea`] that [`crate::area::take`] takes.

use core::cell::UnsafeCell;

/// A thread stack in static memory (it lands in `.bss`, so in the root task's image).
#[repr(C, align(4096))]
pub struct Stack<const SIZE: usize>(UnsafeCell<[u8; SIZE]>);

// SAFETY: Rust code never reads or writes the bytes through this type; they are only handed
// out as a raw stack-top address for one thread at a time to run on.
unsafe impl<const SIZE: usize> Sync for Stack<SIZE> {}

impl<const SIZE: usize> Stack<SIZE> {
    /// A zeroed stack.
    pub const fn new() -> Self {
        Stack(UnsafeCell::new([0; SIZE]))
    }

    /// One past the highest byte: the initial stack pointer (16-byte aligned).
    pub fn top(&self) -> u64 {
        self.0.get() as u64 + SIZE as u64
    }
}

impl<const SIZE: usize> Default for Stack<SIZE> {
    fn default() -> Self {
        Self::new()
    }
}

/// Size of the root task's initial stack.
pub const ROOT_STACK_SIZE: usize = 64 * 1024;

// Behind the `root-task` feature: apps link the binding too and bring their own `_start`.
#[cfg(all(target_os = "none", feature = "root-task"))]
mod entry {
    use super::*;
    use crate::bootinfo::BootInfo;

    static ROOT_STACK: Stack<ROOT_STACK_SIZE> = Stack::new();

    // The kernel enters the root task at the ELF entry with the boot info pointer in rdi and no
    // usable stack. Switch to ROOT_STACK (keeping rdi) and call into Rust; the call pushes the
    // return address so the callee sees the ABI's rsp + 8 alignment.
    core::arch::global_asm!(
        ".section .text._start, \"ax\", @progbits",
        ".global _start",
        ".type _start, @function",
        "_start:",
        "    lea rsp, [rip + {stack} + {size}]",
        "    xor ebp, ebp",
        "    call {rust_entry}",
        "    ud2",
        stack = sym ROOT_STACK,
        size = const ROOT_STACK_SIZE,
        rust_entry = sym rust_entry,
    );

    extern "Rust" {
        fn __sel4_root_task_main(bootinfo: &BootInfo<'static>) -> !;
    }

    extern "C" fn rust_entry(bootinfo: *const u8) -> ! {
        // SAFETY: the kernel passes the address of the boot info page, mapped read-write in the
        // root task's VSpace and never changed by the kernel after boot.
        match unsafe { BootInfo::from_pointer(bootinfo) } {
            Ok(bootinfo) => {
                // SAFETY: `root_task!` defines this symbol with exactly this signature; a root
                // task that forgets the macro fails to link rather than calling garbage.
                unsafe { __sel4_root_task_main(&bootinfo) }
            }
            Err(error) => {
                // The root task's serial port: a release kernel has neither DebugPutChar nor DebugHalt.
                let uart = crate::serial::Uart::new(crate::init::IO_PORT, crate::serial::COM1);
                if uart.init().is_ok() {
                    crate::debug::use_serial(uart, crate::init::IO_PORT);
                }
                crate::debug_println!("sel4 runtime: bad boot info: {:?}", error);
                let _ = crate::init::TCB.suspend();
                loop {
                    crate::syscall::yield_now();
                }
            }
        }
    }
}

// On the host both may be on (a workspace-wide build unifies features); neither defines anything.
#[cfg(all(target_os = "none", feature = "root-task", feature = "app"))]
compile_error!(
    "sel4: the `root-task` and `app` features each define `_start`: build the root task and the apps apart"
);

// Behind the `app` feature: the pager enters an app at `_start` as if calling it with the entry
// registers (docs/app-abi.md: rdi instance, rsi heap base, rdx heap size, rcx client).
#[cfg(all(target_os = "none", feature = "app"))]
mod app_entry {
    use crate::area::EntryArea;

    extern "Rust" {
        fn __sel4_app_main(instance: u64, heap: EntryArea, client: u64) -> !;
    }

    #[no_mangle]
    extern "C" fn _start(instance: u64, heap_base: u64, heap_size: u64, client: u64) -> ! {
        // The one place an `EntryArea` is made: from the registers the pager set.
        let heap = EntryArea::from_entry_registers(heap_base, heap_size);
        // SAFETY: the app runtime's `entry!` defines this symbol with exactly this signature; an
        // app without it fails to link rather than calling garbage.
        unsafe { __sel4_app_main(instance, heap, client) }
    }
}

/// Names the root task's `main`, a `fn(&BootInfo<'static>) -> !`, as the program entry.
#[macro_export]
macro_rules! root_task {
    ($main:path) => {
        #[no_mangle]
        fn __sel4_root_task_main(bootinfo: &$crate::BootInfo<'static>) -> ! {
            $main(bootinfo)
        }
    };
}
