//! The project's seL4 binding: seL4 5.0.0 on x86_64, written from the kernel's interface files.
//!
//! It covers what a user-level pager needs: the syscalls, the IPC buffer, the boot info, typed
//! capability pointers, the invocations that build threads and address spaces, and decoding of
//! fault messages. It is the only crate in the workspace with inline assembly.
//!
//! Design principles:
//! - **Numbers come from the kernel, never from memory.** Every syscall number, invocation
//!   label, object type, fault label and layout in [`abi`] is checked against the kernel
//!   source's XML, headers and `.bf` files by `tests/abi.rs`.
//! - **Pure where possible.** Message info encoding, invocation requests, error and fault
//!   decoding and boot info parsing take plain values and are unit-tested on the host; only
//!   [`syscall`], [`ipc_buffer`], [`area`] (a client's pager-mapped memory) and the runtime touch
//!   the machine.
//! - **Thin and explicit.** One function per kernel operation, arguments in the order of the
//!   interface XML, errors as [`Error`] with the kernel's detail words. No hidden allocation or
//!   global state: the IPC buffer is reached through `gs`, which the kernel points at the
//!   current thread's buffer (the one flag is [`area`]'s: an area is taken once).
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

pub mod abi;
pub mod area;
mod bootinfo;
mod cap;
pub mod debug;
mod error;
pub mod fault;
mod invocation;
pub mod ipc_buffer;
pub mod logger;
mod message;
pub mod runtime;
pub mod serial;
pub mod syscall;
mod timestamp;

pub use abi::{InvocationLabel, ObjectType, Syscall};
pub use bootinfo::{
    BootInfo, BootInfoError, SlotRange, UntypedInfo, BOOT_INFO_HEADER_SIZE, UNTYPED_DESCRIPTOR_SIZE,
};
pub use cap::{
    init, AsidControl, AsidPool, CNode, CPtr, CapRights, DomainSet, Endpoint, Frame, IoPort, IrqControl,
    IrqHandler, LargeFrame, Notification, Object, PageDirectory, PageTable, Pdpt, Pml4, Tcb, Untyped,
    VmAttributes,
};
pub use error::{Error, ErrorCode, LookupFailure, Result};
pub use fault::{
    error_code, Access, CapFault, Fault, FaultDecodeError, UnknownSyscall, UserException, VmFault,
};
pub use invocation::{
    invoke, priority_word, reply, Request, TcbConfiguration, UserContext, MAX_REQUEST_WORDS,
};
pub use message::MessageInfo;
pub use runtime::Stack;
pub use syscall::{Received, RegisterMessage};
pub use timestamp::timestamp;
