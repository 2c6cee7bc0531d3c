//! A strict host model of the seL4 kernel's memory capabilities, for testing and measuring the pager.
//!
//! The pager core reaches the kernel only through `pager::platform`'s traits. [`ModelKernel`]
//! implements them on the host with the rules seL4 5.0 applies on x86_64, so the fault path, frame
//! accounting and sharing can be checked to the byte and the frame without booting anything.
//!
//! What is here:
//! - [`kernel`]: the model — a finite untyped budget retyped into numbered frames, cap copies that each
//!   map in one place, four-level x86_64 address spaces whose paging structures must be created top
//!   down, and the contents of every frame, so [`ModelKernel::read`] shows what a client would see.
//! - [`elf`]: an ELF64 builder whose headers tests can corrupt field by field, and the ELF rules for
//!   what a loaded client should read.
//! - [`boot`]: packs executables page aligned into one boot image, as the root task's image holds them.
//! - [`session`]: the pager and the model wired together, with the CPU's side of a page fault.
//! - [`replay`]: a fault trace recorded on seL4 replayed through the pager under any policy.
//!
//! Design principles:
//! - **Strict, and loud about it.** Every call is checked as seL4's decode functions check it, in the
//!   same order, and fails with the same error. A broken rule is also recorded as a [`Violation`]: the
//!   pager may swallow an error, but a test asserting `violations().is_empty()` will not.
//! - **Rules of the product, not just the kernel.** The model also flags what seL4 would allow but the
//!   pager promises never to do: a boot-image frame mapped writable, a frame filled while mapped, an
//!   address space torn down with pages still mapped.
//! - **Memory is real.** Frames hold bytes, mappings carry rights, and reads and writes go through
//!   them, so tests compare what a client reads with what the ELF file says — never with the pager's
//!   own idea of it.
//! - **Counted.** Every operation is counted ([`ModelCounters`]) for exact accounting and benchmarks.
//!
//! A client session, from ELF file to the bytes a client reads:
//!
//! ```
//! use pager::{Access, BuiltinPolicy, FaultClass, PagerConfig};
//! use sim::elf::{ElfBuilder, FLAGS_RW, FLAGS_RX};
//! use sim::{BootImage, ModelConfig, Session};
//!
//! let elf = ElfBuilder::new()
//!     .segment(0x40_0000, vec![0x90; 0x1800], 0x1800, FLAGS_RX)
//!     .segment(0x60_0010, b"data".to_vec(), 0x2000, FLAGS_RW)
//!     .build();
//! let boot = BootImage::new().with(&elf);
//! let mut session =
//!     Session::new(&boot, PagerConfig::default(), ModelConfig::default(), BuiltinPolicy::Seed).unwrap();
//! let client = session.spawn(session.image(0), None).unwrap();
//!
//! let touched = session.touch(client, 0x40_0000, Access::Execute).unwrap();
//! assert_eq!(touched.fault.unwrap().class, FaultClass::ImageFrame);
//! assert_eq!(session.read(client, 0x60_0010, 5).unwrap(), b"data\0");
//! session.write(client, 0x60_0010, b"DATA").unwrap();
//! assert_eq!(session.kernel.counters().paging_structures_created, 4);
//!
//! session.remove_client(client).unwrap();
//! assert_eq!(session.pager.frame_counts().in_use, 0);
//! assert!(session.kernel.violations().is_empty());
//! ```

#![forbid(unsafe_code)]

pub mod boot;
pub mod elf;
pub mod kernel;
pub mod replay;
pub mod session;

pub use boot::{BootImage, PackedFile};
pub use elf::{ElfBuilder, ElfLayout};
pub use kernel::{
    Mapping, MemoryFault, MemoryFaultKind, ModelConfig, ModelCounters, ModelKernel, Violation, FRAME_BYTES,
};
pub use session::{Session, TouchError, Touched};
