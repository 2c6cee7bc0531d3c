//! The runtime of Rust apps: entry, exit, printing, sharing and a panic handler over the pager's calls.
//!
//! An app is a `#![no_main]` binary for `x86_64-unknown-none` (no_std there) that names its
//! `fn main(&Context) -> i32` with [`entry!`]. The pager enters `_start` (the `sel4` binding's) as if
//! it had been called with the instance number, heap base, heap size and client number
//! (docs/app-abi.md, "Entry state"); the runtime wraps them in a [`Context`], runs `main` and
//! [`exit`]s with its result. A panic prints its message and exits with [`PANIC_EXIT_CODE`].
//!
//! Design principles:
//! - **No unsafe code.** Every call to the pager is `seL4_Call` on CSpace slot 1 through the
//!   `sel4` crate's safe syscalls; message registers 4 and up go through its IPC buffer functions.
//!   The one attribute the entry needs, `#[no_mangle]` on the main the binding's `_start` calls,
//!   is emitted by [`entry!`].
//! - **The ABI's numbers come from the `abi` crate.** Labels, limits, status codes and the
//!   endpoint slot are the pager's own constants, not copies.
//! - **No hidden state.** No allocator and no globals: printing formats into a buffer on the
//!   stack and sends it with one call per [`PRINT_LIMIT`] bytes.
//! - **Host builds are stubs.** The apps are workspace members, so workspace-wide cargo commands
//!   compile them for the host too; there [`entry!`] makes a `main` that says where the program
//!   runs and fails, and the panic handler is left to `std`. An app's tests are its boots under the
//!   pager, so each app's `Cargo.toml` sets `test = false` and `bench = false` on its binary: a
//!   test harness could not run there (`#![no_main]` leaves the stub as the entry point).
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

use core::fmt;

use abi::{advise_status, label, share_status};
use sel4::{ipc_buffer, syscall, CPtr, MessageInfo};

// The ABI's page size, print limit (bytes one print call carries) and longest app name.
pub use abi::{Advice, ARGUMENT_LIMIT, NAME_LIMIT, PAGE_SIZE, PRINT_LIMIT};
/// The heap area as the binding's `_start` found it ([`Context::heap_area`]).
pub use sel4::area::EntryArea;

/// The exit code of a panicking app, as in Rust's test harness.
pub const PANIC_EXIT_CODE: i32 = 101;

/// The pager's endpoint, badged with this client's number.
const PAGER_ENDPOINT: CPtr = CPtr::new(abi::PAGER_ENDPOINT_SLOT);
/// Message registers that travel in CPU registers; the rest are in the IPC buffer.
const REGISTER_MESSAGE_WORDS: usize = 4;

/// What the pager tells an app when it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Context {
    instance: u64,
    heap: EntryArea,
    client: u64,
}

impl Context {
    /// This app's instance number, from 0.
    pub const fn instance(&self) -> u64 {
        self.instance
    }

    /// Base of the heap area, or `None` when the manifest gives no heap.
    pub const fn heap_base(&self) -> Option<u64> {
        match self.heap.base() {
            0 => None,
            base => Some(base),
        }
    }

    /// Size of the heap area in bytes (0 without a heap).
    pub const fn heap_size(&self) -> u64 {
        self.heap.size()
    }

    /// The heap area, for [`sel4::area::take`] (which hands it out once per program).
    pub const fn heap_area(&self) -> EntryArea {
        self.heap
    }

    /// The pager-wide client number, which names this client in the pager's reports.
    pub const fn client(&self) -> u64 {
        self.client
    }
}

/// Why the pager refused to share an area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShareError {
    /// No app of that name, no such instance, or a name the pager cannot hold.
    NoSuchDestination,
    /// The source address lies in none of my areas (or in a guard page).
    NoArea,
    /// The area does not fit at the destination address.
    DoesNotFit,
    /// The pager has no room for another shared object.
    TooManyShared,
    /// The manifest does not let my app share into that one (its `share_to` does not name it).
    NotPermitted,
    /// A code this runtime does not know.
    Unknown(u64),
}

impl ShareError {
    fn from_code(code: u64) -> Self {
        match code {
            share_status::NO_DESTINATION => ShareError::NoSuchDestination,
            share_status::NO_AREA => ShareError::NoArea,
            share_status::DOES_NOT_FIT => ShareError::DoesNotFit,
            share_status::TOO_MANY_SHARED => ShareError::TooManyShared,
            share_status::NOT_PERMITTED => ShareError::NotPermitted,
            other => ShareError::Unknown(other),
        }
    }
}

impl fmt::Display for ShareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShareError::NoSuchDestination => f.write_str("no such destination"),
            ShareError::NoArea => f.write_str("no area at the source address"),
            ShareError::DoesNotFit => f.write_str("the area does not fit at the destination address"),
            ShareError::TooManyShared => f.write_str("too many shared objects"),
            ShareError::NotPermitted => {
                f.write_str("not permitted: my app's share_to does not name the destination")
            }
            ShareError::Unknown(code) => write!(f, "unknown share error {code}"),
        }
    }
}

/// Why the pager did not (wholly) follow an advice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdviseError {
    /// Some page of the range lies outside my areas (or in a guard page). Nothing was done.
    OutsideAreas,
    /// The start is not page aligned or the length is 0. Nothing was done.
    Invalid,
    /// Will-need ran out of memory (my budget, the frame pool or the pager's slots) after
    /// resolving `pages` pages.
    NoMemory {
        /// Pages resolved before memory ran out.
        pages: u64,
    },
    /// A code this runtime does not know.
    Unknown(u64),
}

impl fmt::Display for AdviseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdviseError::OutsideAreas => f.write_str("the range lies outside my areas"),
            AdviseError::Invalid => f.write_str("the start is not page aligned or the length is 0"),
            AdviseError::NoMemory { pages } => write!(f, "out of memory after {pages} pages"),
            AdviseError::Unknown(code) => write!(f, "unknown advise error {code}"),
        }
    }
}

/// `seL4_Call` to the pager with `length` message registers; returns the reply's registers 0–3.
fn call(
    label: u64,
    length: usize,
    registers: [u64; REGISTER_MESSAGE_WORDS],
) -> [u64; REGISTER_MESSAGE_WORDS] {
    if label >= label::LIMIT {
        return [label::REFUSED, 0, 0, 0];
    }
    let info = MessageInfo::new(label, 0, 0, length as u64);
    syscall::call(PAGER_ENDPOINT, info, registers).registers
}

/// Packs `bytes` little-endian, 8 per word, into message registers from `first` on; returns the
/// number of words.
fn pack(bytes: &[u8], first: usize, registers: &mut [u64; REGISTER_MESSAGE_WORDS]) -> usize {
    for (index, piece) in bytes.chunks(8).enumerate() {
        let mut word = [0u8; 8];
        word[..piece.len()].copy_from_slice(piece);
        let value = u64::from_le_bytes(word);
        let register = first + index;
        match registers.get_mut(register) {
            Some(slot) => *slot = value,
            None => ipc_buffer::set_message_register(register, value),
        }
    }
    bytes.len().div_ceil(8)
}

/// Reads my app's argument (the manifest's `argument`) into `buffer`; returns its bytes (as many
/// as fit). Empty when the manifest gives none.
pub fn argument(buffer: &mut [u8; ARGUMENT_LIMIT]) -> &[u8] {
    let mut length = 0;
    loop {
        let reply = call(label::ARGUMENT, 1, [length as u64, 0, 0, 0]);
        let total = (reply[0] as usize).min(ARGUMENT_LIMIT);
        for word in &reply[1..] {
            for byte in word.to_le_bytes() {
                if length < total {
                    buffer[length] = byte;
                    length += 1;
                }
            }
        }
        if length >= total {
            return &buffer[..total];
        }
    }
}

/// Ends this client with `code`; its frames return to the pager's pool.
pub fn exit(code: i32) -> ! {
    loop {
        // The pager does not reply to exit; were it to, asking again is all a client can do.
        call(label::EXIT, 1, [i64::from(code) as u64, 0, 0, 0]);
    }
}

/// Prints bytes as they are, one call per [`PRINT_LIMIT`] bytes. The pager prefixes each line
/// with `[<app>#<instance>] `; a line longer than one call reaches it in pieces.
pub fn print_bytes(bytes: &[u8]) {
    for chunk in bytes.chunks(PRINT_LIMIT) {
        let mut registers = [chunk.len() as u64, 0, 0, 0];
        let words = pack(chunk, 1, &mut registers);
        call(label::PRINT, 1 + words, registers);
    }
}

/// Prints text as it is (no newline added).
pub fn print(text: &str) {
    print_bytes(text.as_bytes());
}

/// A [`fmt::Write`] sink that collects up to [`PRINT_LIMIT`] bytes and prints them in one call,
/// so a formatted line is one message however many pieces `format_args!` cuts it into.
pub struct Printer {
    buffer: [u8; PRINT_LIMIT],
    length: usize,
}

impl Printer {
    /// An empty printer.
    pub const fn new() -> Self {
        Printer { buffer: [0; PRINT_LIMIT], length: 0 }
    }

    /// Prints what has been collected.
    pub fn flush(&mut self) {
        print_bytes(&self.buffer[..self.length]);
        self.length = 0;
    }
}

impl Default for Printer {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Write for Printer {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut rest = text.as_bytes();
        while !rest.is_empty() {
            if self.length == PRINT_LIMIT {
                self.flush();
            }
            let take = rest.len().min(PRINT_LIMIT - self.length);
            self.buffer[self.length..self.length + take].copy_from_slice(&rest[..take]);
            self.length += take;
            rest = &rest[take..];
        }
        Ok(())
    }
}

/// Prints formatted text (what [`print!`] and [`println!`] expand to).
pub fn print_arguments(arguments: fmt::Arguments<'_>) {
    let mut printer = Printer::new();
    // Writing to a Printer cannot fail; only a Display impl could report an error, and a
    // partial line is still worth printing.
    let _ = fmt::write(&mut printer, arguments);
    printer.flush();
}

/// Prints formatted text through the pager.
#[macro_export]
macro_rules! print {
    ($($argument:tt)*) => {
        $crate::print_arguments(::core::format_args!($($argument)*))
    };
}

/// Prints a formatted line through the pager.
#[macro_export]
macro_rules! println {
    () => {
        $crate::print("\n")
    };
    ($($argument:tt)*) => {
        $crate::print_arguments(::core::format_args!("{}\n", ::core::format_args!($($argument)*)))
    };
}

/// Shares the area holding `my_address` into instance `destination_instance` of the app named
/// `destination_app`, at the page-aligned `destination_address` there (HelenOS's `elf_share`:
/// both clients see one set of frames from then on).
pub fn share(
    my_address: u64,
    destination_app: &str,
    destination_instance: u64,
    destination_address: u64,
) -> Result<(), ShareError> {
    let name = destination_app.as_bytes();
    if name.is_empty() || name.len() > NAME_LIMIT {
        return Err(ShareError::NoSuchDestination);
    }
    let mut registers = [my_address, destination_address, destination_instance, name.len() as u64];
    let words = pack(name, REGISTER_MESSAGE_WORDS, &mut registers);
    match call(label::SHARE, REGISTER_MESSAGE_WORDS + words, registers)[0] {
        share_status::OK => Ok(()),
        code => Err(ShareError::from_code(code)),
    }
}

/// Advises the pager about `length` bytes from the page-aligned `start` (rounded up to whole
/// pages). Returns the pages resolved (will-need) or dropped (dont-need); 0 for the others.
pub fn advise(start: u64, length: u64, advice: Advice) -> Result<u64, AdviseError> {
    let [status, pages, ..] = call(label::ADVISE, 3, [start, length, advice.code(), 0]);
    match status {
        advise_status::OK => Ok(pages),
        advise_status::OUTSIDE_AREAS => Err(AdviseError::OutsideAreas),
        advise_status::INVALID => Err(AdviseError::Invalid),
        advise_status::NO_MEMORY => Err(AdviseError::NoMemory { pages }),
        other => Err(AdviseError::Unknown(other)),
    }
}

/// Gives up the rest of this time slice.
pub fn yield_now() {
    syscall::yield_now();
}

/// Runs the app's `main` with the entry registers and exits with its result. Called only by the
/// `__sel4_app_main` that [`entry!`] defines.
#[doc(hidden)]
pub fn start(main: fn(&Context) -> i32, instance: u64, heap: EntryArea, client: u64) -> ! {
    let context = Context { instance, heap, client };
    exit(main(&context))
}

/// The opt-in heap: a global allocator over the app's heap area for apps whose main is named with
/// [`entry_with_heap!`] (beside [`entry!`]). The runtime itself allocates nothing.
pub mod heap;

/// Names the app's `fn main(&Context) -> i32` as the program entry.
///
/// On the pager's target it defines `__sel4_app_main`, which the `sel4` binding's `_start` calls
/// with the four entry registers (rdi, rsi, rdx, rcx); on the host, where apps are only compiled,
/// a C `main` that refuses to run.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[cfg(target_os = "none")]
        // `no_mangle` is the only unsafe thing here: the binding's `_start` calls it by name.
        #[allow(unsafe_code)]
        #[no_mangle]
        fn __sel4_app_main(instance: u64, heap: $crate::EntryArea, client: u64) -> ! {
            $crate::start($main, instance, heap, client)
        }

        #[cfg(not(target_os = "none"))]
        // `export_name` only: a `no_main` host binary needs the C `main` symbol.
        #[allow(unsafe_code)]
        #[export_name = "main"]
        extern "C" fn __app_runtime_host_main(_argc: i32, _argv: *const *const u8) -> i32 {
            let _: fn(&$crate::Context) -> i32 = $main;
            ::std::eprintln!("this program runs under the seL4 pager: build it for x86_64-unknown-none");
            2
        }
    };
}

/// Prints the panic message and exits with [`PANIC_EXIT_CODE`].
#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    match info.location() {
        Some(location) => println!("panicked at {location}: {}", info.message()),
        None => println!("panicked: {}", info.message()),
    }
    exit(PANIC_EXIT_CODE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_above_20_bits_is_refused_without_a_call() {
        // 0x100100 would reach the pager as 0x100, exit: refused before any syscall is made.
        let reply = call(label::LIMIT | label::EXIT, 1, [7, 0, 0, 0]);
        assert_eq!(reply, [label::REFUSED, 0, 0, 0]);
        assert_eq!(call(u64::MAX, 0, [0; 4])[0], label::REFUSED);
    }
}
