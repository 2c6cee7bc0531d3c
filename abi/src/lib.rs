//! The app ABI: every number a client program and the pager agree on, written once.
//!
//! After Hubris's `sys/abi`: both sides of the client/pager boundary import this crate, so a call
//! label, a limit or an address exists in one place. It holds the call labels ([`label`]), the print
//! limit, the replies ([`UNKNOWN_CALL`], [`share_status`], [`advise_status`]), the advice kinds
//! ([`advice`]), the IPC buffer page, the pager's
//! endpoint slot, the entry registers ([`EntryState`]), the boot image's policy codes ([`policy`])
//! and the list of an app's areas ([`app_areas`]). docs/app-abi.md describes the same ABI for
//! people; `apps/include/pager_app.h` repeats it for C programs and a test of this crate
//! (`tests/c_header.rs`) checks every one of its numbers against the constants here.
//!
//! Design principles:
//! - **At the bottom of the dependency graph.** No dependencies, `no_std`, no `unsafe`, no seL4
//!   type: the apps (`app-runtime`), the boot image format (`bootimage`) and the pager core
//!   (`pager`) depend on it, never the other way. The pager turns [`app_areas`]' list into areas
//!   (`Pager::add_app`); the root task, xtask's dry run and the host model `sim` all lay an app out
//!   through that one path.
//! - **Data, not behaviour.** Constants and plain descriptions; what the pager does with a call
//!   lives in the root task, what an area holds in the pager.

#![no_std]
#![forbid(unsafe_code)]

use core::fmt;

/// Bytes in a page.
pub const PAGE_SIZE: u64 = 4096;

/// Message labels of the app calls: `seL4_Call` on [`PAGER_ENDPOINT_SLOT`] with one of these.
pub mod label {
    /// MR0: exit code (signed). No reply: the client is torn down.
    pub const EXIT: u64 = 0x100;
    /// MR0: byte count (at most [`PRINT_LIMIT`](crate::PRINT_LIMIT)); MR1…: the bytes, packed
    /// little-endian, 8 per register. Reply MR0: bytes printed.
    pub const PRINT: u64 = 0x101;
    /// MR0: an address in one of my areas; MR1: page-aligned address in the destination; MR2:
    /// destination instance; MR3: name length; MR4…: the destination app's name, packed like print.
    /// Reply MR0: [`share_status`](crate::share_status).
    pub const SHARE: u64 = 0x102;
    /// MR0: page-aligned start of the range; MR1: its length in bytes (rounded up to whole
    /// pages); MR2: the [`advice`](crate::advice). Reply MR0: [`advise_status`](crate::advise_status);
    /// MR1: pages resolved (will-need) or dropped (dont-need), 0 for the others.
    pub const ADVISE: u64 = 0x103;
    /// MR0: a byte offset into my app's argument (the manifest's `argument`). Reply MR0: the
    /// argument's whole length in bytes; MR1…MR3: up to 24 of its bytes from the offset, packed
    /// like print. A client reads the whole argument with calls at offsets 0, 24, 48, ...
    pub const ARGUMENT: u64 = 0x104;
    /// Labels are 20 bits in seL4 5.0: the kernel drops the bits above (0x100100 would arrive as
    /// exit), so the app runtimes refuse a label from here up without calling.
    pub const LIMIT: u64 = 1 << 20;
    /// MR0 of a call the runtime refused: the pager's own answer to an unknown call.
    pub const REFUSED: u64 = crate::UNKNOWN_CALL;
}

/// Most bytes one print call carries: 116 message registers of text after the count.
pub const PRINT_LIMIT: usize = 928;

/// Longest app argument, in bytes (the manifest's `argument`, UTF-8).
pub const ARGUMENT_LIMIT: usize = 128;

/// Longest app name: names travel in fixed 32-byte fields of the boot image, and a share call
/// names its destination by one.
pub const NAME_LIMIT: usize = 32;

/// The reply's MR0 to an unknown call or a malformed one.
pub const UNKNOWN_CALL: u64 = u64::MAX;

/// The share call's reply (MR0).
pub mod share_status {
    /// Shared.
    pub const OK: u64 = 0;
    /// No app of that name, no such instance, or a name the pager cannot hold.
    pub const NO_DESTINATION: u64 = 1;
    /// No area at the source address, or one that cannot be shared (a guard page).
    pub const NO_AREA: u64 = 2;
    /// The area does not fit at the destination address.
    pub const DOES_NOT_FIT: u64 = 3;
    /// The pager has no room for another shared object.
    pub const TOO_MANY_SHARED: u64 = 4;
    /// The sender's app may not share into the destination's: its `share_to` in the manifest
    /// does not name it.
    pub const NOT_PERMITTED: u64 = 5;
}

/// What an advise call tells the pager about a range of the caller's memory (MR2).
pub mod advice {
    /// Resolve the range's pages now, through each area's policy, as faults would.
    pub const WILL_NEED: u64 = 0;
    /// Unmap the range's pages and drop their frames (HelenOS `elf_frame_free`): the next touch
    /// faults and reads what the area's backing gives, zeroes or the ELF's bytes. On a shared area
    /// only the caller's mappings go; the shared pages stay for the others.
    pub const DONT_NEED: u64 = 1;
    /// Turn fault-around on for every area the range touches: each fault there maps
    /// [`SEQUENTIAL_PAGES`](crate::advice::SEQUENTIAL_PAGES) pages (fewer at the area's end).
    pub const SEQUENTIAL: u64 = 2;
    /// Turn fault-around off for every area the range touches: one page per fault.
    pub const RANDOM: u64 = 3;
    /// Pages one fault maps in an area advised sequential: the faulting one and 15 after it.
    pub const SEQUENTIAL_PAGES: u64 = 16;
}

/// What a client tells the pager about a range of its memory: the [`advice`] codes as a type, for
/// both sides of the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Advice {
    /// Resolve the pages now, as read faults on them would be (each area's policy included).
    WillNeed,
    /// Unmap the pages and drop the caller's frame references (HelenOS `elf_frame_free`): the next
    /// touch faults and reads what the area's backing gives, zeroes or the ELF's bytes.
    DontNeed,
    /// Turn fault-around on in every area the range touches.
    Sequential,
    /// Turn fault-around off in every area the range touches.
    Random,
}

impl Advice {
    /// Its code in the call (MR2).
    pub const fn code(self) -> u64 {
        match self {
            Self::WillNeed => advice::WILL_NEED,
            Self::DontNeed => advice::DONT_NEED,
            Self::Sequential => advice::SEQUENTIAL,
            Self::Random => advice::RANDOM,
        }
    }

    /// The advice for a code, or `None` for an unknown one.
    pub const fn from_code(code: u64) -> Option<Self> {
        match code {
            advice::WILL_NEED => Some(Self::WillNeed),
            advice::DONT_NEED => Some(Self::DontNeed),
            advice::SEQUENTIAL => Some(Self::Sequential),
            advice::RANDOM => Some(Self::Random),
            _ => None,
        }
    }
}

/// The advise call's reply (MR0).
pub mod advise_status {
    /// Done.
    pub const OK: u64 = 0;
    /// Some page of the range lies in none of the caller's areas, or in one the pager does not
    /// serve (a stack guard page, the IPC buffer page). Nothing was done.
    pub const OUTSIDE_AREAS: u64 = 1;
    /// The start is not page aligned, the length is 0, or the advice is unknown. Nothing was done.
    pub const INVALID: u64 = 2;
    /// Will-need stopped early: the caller's budget, the frame pool, untyped memory or the cap-copy
    /// slots ran out (MR1 says how many pages were resolved before). The caller is not stopped.
    pub const NO_MEMORY: u64 = 3;
}

/// Where every client's IPC buffer is mapped: one page, reserved in every client's address space
/// (an area of the pager's that it never maps and never serves). The kernel points `gs` at it.
pub const IPC_BUFFER_ADDRESS: u64 = 0xBFFF_F000;
/// Bytes of the IPC buffer area.
pub const IPC_BUFFER_SIZE: u64 = PAGE_SIZE;
// A page of its own, below 4 GiB where every area lies (seL4 5.0 reports fault addresses in 32 bits).
const _: () =
    assert!(IPC_BUFFER_ADDRESS.is_multiple_of(PAGE_SIZE) && IPC_BUFFER_ADDRESS + IPC_BUFFER_SIZE <= 1 << 32);

/// Slot of the pager's endpoint in a client's CSpace, badged with the client number: the client's
/// calls go there, and it is also the client's fault endpoint.
pub const PAGER_ENDPOINT_SLOT: u64 = 1;

/// Policy numbers of the boot image's header (`bootimage::Header::policy`).
pub mod policy {
    /// One page per fault, nothing ahead of time.
    pub const SEED: u32 = 0;
    /// Every segment and the stack mapped before the client starts.
    pub const EAGER: u32 = 1;
    /// The faulting page and up to `policy_pages` following ones.
    pub const FAULT_AROUND: u32 = 2;
    /// 2 MiB frames where a span allows (3, as the large-pages work numbers it).
    pub const LARGE_PAGES: u32 = 3;
    /// Pages of zeroes first mapped read-only from one shared zero frame; a fresh frame on the first
    /// write.
    pub const ZERO_PAGE: u32 = 4;
    /// Writable pages first mapped read-only from the frame they would be copied from; a copy on the
    /// first write.
    pub const COW: u32 = 5;
}

/// A named policy: the one list of them. Manifests name it ([`PolicyMode::name`]), the boot image
/// carries its code ([`policy`]), the pager applies it, and `cargo xtask` (simulate, agree,
/// experiment) names the same ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PolicyMode {
    /// One page per fault, nothing ahead of time (HelenOS).
    #[default]
    Seed,
    /// The area mapped before the client starts.
    Eager,
    /// The faulting page and up to the rule's window of following pages.
    FaultAround,
    /// A page of zeroes is first mapped read-only from one shared zero frame; its first write takes
    /// a fresh frame (`zero-shared`, then `upgrade`).
    ZeroPage,
    /// A writable page is first mapped read-only from the frame it would be copied from (the image's
    /// own frame; the shared zero frame for zeroes); its first write copies it (`cow-copy`,
    /// `upgrade`).
    Cow,
    /// 2 MiB frames where a span allows (4 KiB pages otherwise).
    LargePages,
}

impl PolicyMode {
    /// Every policy, in the order of their codes.
    pub const ALL: [PolicyMode; 6] =
        [Self::Seed, Self::Eager, Self::FaultAround, Self::ZeroPage, Self::Cow, Self::LargePages];

    /// The name manifests, reports and `cargo xtask` use.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Seed => "seed",
            Self::Eager => "eager",
            Self::FaultAround => "fault-around",
            Self::ZeroPage => "zero-page",
            Self::Cow => "cow",
            Self::LargePages => "large-pages",
        }
    }

    /// The policy a name stands for.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|mode| mode.name() == name)
    }

    /// The boot image's code ([`policy`]).
    pub const fn code(self) -> u32 {
        match self {
            Self::Seed => policy::SEED,
            Self::Eager => policy::EAGER,
            Self::FaultAround => policy::FAULT_AROUND,
            Self::ZeroPage => policy::ZERO_PAGE,
            Self::Cow => policy::COW,
            Self::LargePages => policy::LARGE_PAGES,
        }
    }

    /// The policy of a boot-image code.
    pub fn from_code(code: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|mode| mode.code() == code)
    }
}

/// What a client is started with (docs/app-abi.md, "Entry state").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryState {
    /// The ELF's `e_entry`.
    pub entry: u64,
    /// The top of the stack area.
    pub stack_top: u64,
    /// Instance number of the app, from 0.
    pub instance: u64,
    /// Heap base, or 0 without a heap.
    pub heap_base: u64,
    /// Heap size in bytes (0 without a heap).
    pub heap_size: u64,
    /// The pager-wide client number.
    pub client: u64,
}

/// The registers a client starts with; every other general register is 0.
///
/// `rdi`, `rsi`, `rdx` and `rcx` are the first four integer arguments of the SysV calling
/// convention, so an app's entry is an ordinary function
/// `_start(instance, heap_base, heap_size, client)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EntryRegisters {
    pub rip: u64,
    pub rsp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
}

impl EntryState {
    /// The entry state for a heap that may be absent (then base and size are 0).
    pub const fn new(entry: u64, stack_top: u64, instance: u64, heap: Option<Span>, client: u64) -> Self {
        let (heap_base, heap_size) = match heap {
            Some(heap) => (heap.base, heap.size),
            None => (0, 0),
        };
        Self { entry, stack_top, instance, heap_base, heap_size, client }
    }

    /// The registers: `_start` is entered like an ordinary function that was called, so `rsp` is
    /// the stack top less the return address slot (which holds 0).
    pub const fn to_registers(&self) -> EntryRegisters {
        EntryRegisters {
            rip: self.entry,
            rsp: self.stack_top.wrapping_sub(8),
            rdi: self.instance,
            rsi: self.heap_base,
            rdx: self.heap_size,
            rcx: self.client,
        }
    }
}

/// A range of addresses, `[base, base + size)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub base: u64,
    pub size: u64,
}

impl Span {
    /// The span `[base, end)` (empty when `end` is below `base`).
    pub const fn from_range(base: u64, end: u64) -> Self {
        Self { base, size: end.saturating_sub(base) }
    }

    /// First address past the end (saturating: the pager refuses such a span).
    pub const fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    /// Whether the two spans share an address.
    pub const fn overlaps(&self, other: &Span) -> bool {
        self.base < other.end() && other.base < self.end()
    }
}

/// A named shared region attached to an app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// The region's number in the image.
    pub region: u16,
    /// Where the region lies in the app, and its size.
    pub span: Span,
    pub writable: bool,
}

/// An app's layout besides its ELF and its regions, as its manifest gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppLayout {
    pub heap: Option<Span>,
    /// The stack `[top - size, top)`; a guard page lies below it.
    pub stack_top: u64,
    pub stack_size: u64,
}

/// One area of an app's address space when it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppArea {
    /// `PT_LOAD` segment `index` of the app's ELF, its page range; rights and contents come from
    /// the ELF.
    Segment { index: u8, span: Span },
    /// The IPC buffer page ([`IPC_BUFFER_ADDRESS`]): the root task maps it itself; the pager
    /// reserves it, so no other area can cover it.
    IpcBuffer,
    /// Zero-filled, read-write.
    Heap(Span),
    /// Zero-filled, read-write, `[top - size, top)`, with an unmapped guard page below it.
    Stack { top: u64, size: u64 },
    /// An attached region, read-write or read-only.
    Region(Attachment),
}

impl AppArea {
    /// The addresses the area takes, its guard page included: what no other area may overlap.
    pub const fn span(&self) -> Span {
        match *self {
            Self::Segment { span, .. } | Self::Heap(span) => span,
            Self::IpcBuffer => Span { base: IPC_BUFFER_ADDRESS, size: IPC_BUFFER_SIZE },
            Self::Stack { top, size } => {
                Span::from_range(top.saturating_sub(size).saturating_sub(PAGE_SIZE), top)
            }
            Self::Region(attachment) => attachment.span,
        }
    }
}

impl fmt::Display for AppArea {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Segment { index, .. } => write!(f, "ELF segment {index}"),
            Self::IpcBuffer => f.write_str("IPC buffer page"),
            Self::Heap(_) => f.write_str("heap"),
            Self::Stack { .. } => f.write_str("stack"),
            Self::Region(attachment) => write!(f, "region {}", attachment.region),
        }
    }
}

/// Every area of an app when it starts, in the order they are added: its ELF segments (`segments`,
/// each one's page range, in program header order), the IPC buffer page, the heap, the stack with
/// its guard page, then the attached regions.
///
/// The one list of an app's areas: the root task, xtask's dry run and the host model add exactly
/// these (through `Pager::add_app` or `Pager::add_app_area`), so an overlap is found the same way
/// on the host as on seL4: by the pager's own area check, the IPC buffer page included.
pub fn app_areas<S, A>(segments: S, layout: &AppLayout, attachments: A) -> impl Iterator<Item = AppArea>
where
    S: IntoIterator<Item = Span>,
    A: IntoIterator<Item = Attachment>,
{
    let segments =
        segments.into_iter().enumerate().map(|(index, span)| AppArea::Segment { index: index as u8, span });
    let stack = AppArea::Stack { top: layout.stack_top, size: layout.stack_size };
    segments
        .chain(core::iter::once(AppArea::IpcBuffer))
        .chain(layout.heap.map(AppArea::Heap))
        .chain(core::iter::once(stack))
        .chain(attachments.into_iter().map(AppArea::Region))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_registers_follow_the_abi() {
        let heap = Span { base: 0x5000_0000, size: 0x1_0000 };
        let registers = EntryState::new(0x40_1000, 0x8000_0000, 3, Some(heap), 7).to_registers();
        assert_eq!(
            registers,
            EntryRegisters {
                rip: 0x40_1000,
                rsp: 0x7fff_fff8,
                rdi: 3,
                rsi: 0x5000_0000,
                rdx: 0x1_0000,
                rcx: 7
            }
        );
        let without_heap = EntryState::new(0x40_1000, 0x8000_0000, 0, None, 0).to_registers();
        assert_eq!((without_heap.rsi, without_heap.rdx), (0, 0));
    }

    #[test]
    fn an_apps_areas_come_in_order_with_the_ipc_buffer_page() {
        let segments = [Span { base: 0x40_0000, size: 0x1000 }, Span { base: 0x40_1000, size: 0x3000 }];
        let layout = AppLayout {
            heap: Some(Span { base: 0x5000_0000, size: 0x2000 }),
            stack_top: 0x8000_0000,
            stack_size: 0x4000,
        };
        let ring = Attachment { region: 2, span: Span { base: 0x1000_0000, size: 0x1000 }, writable: true };
        let mut areas = [AppArea::IpcBuffer; 6];
        let mut count = 0;
        for (slot, area) in areas.iter_mut().zip(app_areas(segments, &layout, [ring])) {
            *slot = area;
            count += 1;
        }
        assert_eq!(count, 6);
        assert_eq!(
            areas,
            [
                AppArea::Segment { index: 0, span: segments[0] },
                AppArea::Segment { index: 1, span: segments[1] },
                AppArea::IpcBuffer,
                AppArea::Heap(Span { base: 0x5000_0000, size: 0x2000 }),
                AppArea::Stack { top: 0x8000_0000, size: 0x4000 },
                AppArea::Region(ring),
            ]
        );
        assert_eq!(AppArea::IpcBuffer.span(), Span { base: IPC_BUFFER_ADDRESS, size: PAGE_SIZE });
        // The stack's span takes its guard page in.
        assert_eq!(areas[4].span(), Span::from_range(0x7fff_b000, 0x8000_0000));
        let without_heap = AppLayout { heap: None, ..layout };
        assert_eq!(app_areas([], &without_heap, []).count(), 2);
    }

    #[test]
    fn spans_overlap_only_when_they_share_an_address() {
        let page = Span { base: 0x1000, size: 0x1000 };
        assert!(page.overlaps(&Span { base: 0x1fff, size: 1 }));
        assert!(!page.overlaps(&Span { base: 0x2000, size: 0x1000 }));
        assert!(!page.overlaps(&Span { base: 0, size: 0x1000 }));
    }
}
