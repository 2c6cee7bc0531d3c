//! Large (2 MiB) pages against the strict model kernel: one fault and one mapping per whole
//! aligned span of zero-filled memory, the 4 KiB fallback (span not whole, no large frame left,
//! budget), teardown and recycling, dont-need and will-need, and the model's own seL4 rules.

#![forbid(unsafe_code)]

use pager::platform::{CopyFrameCaps, MapPages, MappingCap, RetypeFrames};
use pager::{
    Access, Advice, AreaKind, BuiltinPolicy, ClientId, CopySlot, FaultClass, FrameRef, KernelError,
    LargeFrame, MapError, PagerConfig, PagingLevel, PoolFrame, RefusalReason, Rights, ShareError,
    LARGE_PAGE_SIZE,
};
use pager_tests::pattern;
use sim::elf::{ElfBuilder, FLAGS_RW, FLAGS_RX};
use sim::{BootImage, ModelConfig, ModelKernel, Session, Violation};

const PAGE: u64 = 4096;
const LARGE: u64 = LARGE_PAGE_SIZE;
/// A 2 MiB-aligned heap of four spans.
const HEAP: u64 = 0x4000_0000;

fn config(large_frames: u32) -> PagerConfig {
    PagerConfig { large_frame_capacity: large_frames, frame_capacity: 8192, ..PagerConfig::default() }
}

fn session(boot: &BootImage, large_frames: u32) -> Session<'_, BuiltinPolicy> {
    Session::new(boot, config(large_frames), ModelConfig::default(), BuiltinPolicy::LargePages).unwrap()
}

fn heap_client(
    session: &mut Session<'_, impl pager::Policy>,
    base: u64,
    size: u64,
    budget: Option<u32>,
) -> ClientId {
    let client = session.add_client(budget).unwrap();
    session.pager.add_anonymous(client, base, size, Rights::READ_WRITE, AreaKind::Heap).unwrap();
    client
}

fn class_at(session: &mut Session<'_, impl pager::Policy>, client: ClientId, address: u64) -> FaultClass {
    session.touch(client, address, Access::Write).unwrap().fault.expect("a fault").class
}

fn remove_and_check(session: &mut Session<'_, impl pager::Policy>, client: ClientId) {
    session.remove_client(client).unwrap();
    assert_eq!(session.pager.frame_counts().in_use, 0);
    assert_eq!(session.pager.large_frame_counts().in_use, 0, "every large frame is back in its pool");
    assert_eq!(session.pager.copy_slots_in_use(), 0);
    assert_eq!(session.kernel.violations(), &[]);
}

#[test]
fn one_fault_maps_a_whole_span_with_no_page_table() {
    let boot = BootImage::new();
    let mut session = session(&boot, 8);
    let client = heap_client(&mut session, HEAP, 4 * LARGE, None);
    let resolution = session.fault(client, HEAP + LARGE + 5 * PAGE, Access::Write).unwrap();
    assert_eq!(resolution.class, FaultClass::Large);
    assert_eq!(resolution.pages_mapped, 512);
    assert_eq!(resolution.frame, FrameRef::Large(LargeFrame(0)));
    // One PDPT and one page directory: the large page fills a page-directory slot.
    assert_eq!(session.kernel.paging_structures(client), 2);
    assert!(!session.kernel.has_paging_structure(client, HEAP + LARGE, PagingLevel::PageTable));
    // Every byte of the span is there, zero, without another fault.
    let before = session.faults_delivered();
    assert_eq!(session.read(client, HEAP + LARGE, LARGE as usize).unwrap(), vec![0; LARGE as usize]);
    session.write(client, HEAP + 2 * LARGE - 8, b"last8byt").unwrap();
    assert_eq!(session.faults_delivered(), before);
    let target = session.pager.client(client).unwrap();
    assert_eq!((target.frames_charged(), target.resident_pages()), (512, 512));
    assert_eq!(target.faults().large, 1);
    remove_and_check(&mut session, client);
}

#[test]
fn a_densely_touched_aligned_area_takes_one_fault_per_span() {
    let boot = BootImage::new();
    let mut session = session(&boot, 32);
    let client = heap_client(&mut session, HEAP, 32 * LARGE, None);
    for page in (0..32 * LARGE).step_by(PAGE as usize) {
        session.touch(client, HEAP + page, Access::Write).unwrap();
    }
    assert_eq!(session.faults_delivered(), 32);
    assert_eq!(session.kernel.mapped_large_pages(), 32);
    assert_eq!(session.kernel.counters().map_calls - session.kernel.counters().missing_level_failures, 32);
    remove_and_check(&mut session, client);
}

#[test]
fn the_ends_of_an_unaligned_area_fall_back_to_small_pages() {
    let boot = BootImage::new();
    let mut session = session(&boot, 8);
    // [HEAP + 4 KiB, HEAP + 4 MiB + 4 KiB): only [HEAP + 2 MiB, HEAP + 4 MiB) is a whole span.
    let client = heap_client(&mut session, HEAP + PAGE, 2 * LARGE, None);
    let zero = FaultClass::NewFrame(pager::FrameContent::Zero);
    assert_eq!(class_at(&mut session, client, HEAP + PAGE), zero);
    assert_eq!(class_at(&mut session, client, HEAP + LARGE - PAGE), zero);
    assert_eq!(class_at(&mut session, client, HEAP + LARGE), FaultClass::Large);
    assert_eq!(class_at(&mut session, client, HEAP + 2 * LARGE), zero);
    let target = session.pager.client(client).unwrap();
    assert_eq!((target.frames_charged(), target.resident_pages()), (515, 515));
    remove_and_check(&mut session, client);
}

#[test]
fn no_large_frame_left_falls_back_and_the_span_stays_small() {
    let boot = BootImage::new();
    let mut session = session(&boot, 1);
    let client = heap_client(&mut session, HEAP, 4 * LARGE, None);
    assert_eq!(class_at(&mut session, client, HEAP), FaultClass::Large);
    let zero = FaultClass::NewFrame(pager::FrameContent::Zero);
    assert_eq!(class_at(&mut session, client, HEAP + LARGE), zero);
    // The large frame comes free; the second span has a page table now, so it stays small.
    assert_eq!(session.advise(client, HEAP, LARGE, Advice::DontNeed), Ok(512));
    assert_eq!(class_at(&mut session, client, HEAP + LARGE + PAGE), zero);
    // The first span is whole and untouched again: the freed frame, zeroed, serves it.
    assert_eq!(class_at(&mut session, client, HEAP + 7 * PAGE), FaultClass::Large);
    assert_eq!(session.kernel.counters().window_large_zeroes, 1);
    remove_and_check(&mut session, client);
}

#[test]
fn untyped_memory_for_large_frames_used_up_falls_back_without_asking_again() {
    let boot = BootImage::new();
    let kernel = ModelConfig { large_frames: 1, ..ModelConfig::default() };
    let mut session = Session::new(&boot, config(16), kernel, BuiltinPolicy::LargePages).unwrap();
    let client = heap_client(&mut session, HEAP, 4 * LARGE, None);
    assert_eq!(class_at(&mut session, client, HEAP), FaultClass::Large);
    let retypes = session.kernel.counters().retype_calls;
    for span in 1..4 {
        assert_eq!(
            class_at(&mut session, client, HEAP + span * LARGE),
            FaultClass::NewFrame(pager::FrameContent::Zero)
        );
    }
    // One failed large retype (the second span), then none: besides it, the 4 KiB pool's one
    // retype and one batch of page tables for the three spans.
    assert_eq!(session.kernel.counters().retype_calls - retypes, 3);
    remove_and_check(&mut session, client);
}

#[test]
fn a_budget_counts_a_large_page_as_512_frames() {
    let boot = BootImage::new();
    let mut session = session(&boot, 8);
    let client = heap_client(&mut session, HEAP, 4 * LARGE, Some(600));
    assert_eq!(class_at(&mut session, client, HEAP), FaultClass::Large);
    assert_eq!(class_at(&mut session, client, HEAP + LARGE), FaultClass::NewFrame(pager::FrameContent::Zero));
    for page in 1..88 {
        session.touch(client, HEAP + LARGE + page * PAGE, Access::Write).unwrap();
    }
    let refused = session.fault(client, HEAP + LARGE + 88 * PAGE, Access::Write).unwrap_err();
    assert_eq!(refused.reason, RefusalReason::OverBudget { budget: 600 });
    remove_and_check(&mut session, client);
}

#[test]
fn a_recycled_large_frame_is_zeroed_for_its_next_client() {
    let boot = BootImage::new();
    let mut session = session(&boot, 1);
    let first = heap_client(&mut session, HEAP, LARGE, None);
    session.write(first, HEAP + 12345, &pattern(7, 4096)).unwrap();
    session.remove_client(first).unwrap();
    assert_eq!(session.pager.large_frame_counts().free, 1);
    let second = heap_client(&mut session, HEAP, LARGE, None);
    assert_eq!(session.read(second, HEAP, LARGE as usize).unwrap(), vec![0; LARGE as usize]);
    assert_eq!(session.pager.large_frame_counts().created, 1);
    remove_and_check(&mut session, second);
}

#[test]
fn will_need_and_dont_need_over_large_spans() {
    let boot = BootImage::new();
    let mut session = session(&boot, 8);
    let client = heap_client(&mut session, HEAP, 4 * LARGE, None);
    assert_eq!(session.advise(client, HEAP, 2 * LARGE, Advice::WillNeed), Ok(1024));
    assert_eq!(session.kernel.mapped_large_pages(), 2);
    session.write(client, HEAP + LARGE, b"kept").unwrap();
    // Part of a span: the large page stays (a part of it cannot go alone).
    assert_eq!(session.advise(client, HEAP + LARGE, LARGE - PAGE, Advice::DontNeed), Ok(0));
    assert_eq!(session.read(client, HEAP + LARGE, 4).unwrap(), b"kept");
    // A range over all of the first span and part of the second drops the first only.
    assert_eq!(session.advise(client, HEAP, LARGE + PAGE, Advice::DontNeed), Ok(512));
    assert_eq!(session.pager.large_frame_counts().in_use, 1);
    assert_eq!(session.pager.client(client).unwrap().frames_charged(), 512);
    remove_and_check(&mut session, client);
}

#[test]
fn a_bss_segment_gets_large_pages_where_its_spans_hold_no_file_bytes() {
    // Data: one page of file bytes at 0x4000_0000, then .bss to 0x4000_0000 + 6 MiB.
    let elf = ElfBuilder::new()
        .segment(0x40_0000, vec![0x90; 0x100], 0x100, FLAGS_RX)
        .segment(HEAP, pattern(3, 4096), 3 * LARGE, FLAGS_RW)
        .build();
    let boot = BootImage::new().with(&elf);
    let mut session = session(&boot, 8);
    let client = session.spawn(session.image(0), None).unwrap();
    assert_eq!(session.read(client, HEAP, 4096).unwrap(), pattern(3, 4096));
    assert_eq!(
        class_at(&mut session, client, HEAP + 8 * PAGE),
        FaultClass::NewFrame(pager::FrameContent::Zero)
    );
    assert_eq!(class_at(&mut session, client, HEAP + LARGE), FaultClass::Large);
    assert_eq!(class_at(&mut session, client, HEAP + 2 * LARGE + 5), FaultClass::Large);
    // Text is read-only and image backed: never large.
    let text = session.touch(client, 0x40_0000, Access::Execute).unwrap().fault.unwrap();
    assert_eq!(text.class, FaultClass::ImageFrame);
    assert_eq!(session.kernel.mapped_large_pages(), 2);
    remove_and_check(&mut session, client);
}

#[test]
fn the_seed_policy_never_maps_a_large_page() {
    let boot = BootImage::new();
    let mut session = Session::new(&boot, config(8), ModelConfig::default(), BuiltinPolicy::Seed).unwrap();
    let client = heap_client(&mut session, HEAP, 2 * LARGE, None);
    assert_eq!(class_at(&mut session, client, HEAP), FaultClass::NewFrame(pager::FrameContent::Zero));
    assert_eq!(session.kernel.mapped_large_pages(), 0);
    remove_and_check(&mut session, client);
}

#[test]
fn an_area_holding_large_pages_is_not_shared() {
    let boot = BootImage::new();
    let mut session = session(&boot, 8);
    let a = heap_client(&mut session, HEAP, LARGE, None);
    let b = session.add_client(None).unwrap();
    session.touch(a, HEAP, Access::Write).unwrap();
    assert_eq!(session.share(a, HEAP, b, HEAP), Err(ShareError::NotShareable { area: AreaKind::Heap }));
    session.remove_client(b).unwrap();
    remove_and_check(&mut session, a);
}

#[test]
fn frame_references_keep_their_compact_encoding() {
    for frame in [
        FrameRef::Pool(PoolFrame(0)),
        FrameRef::Pool(PoolFrame((1 << 31) - 1)),
        FrameRef::Image(pager::ImagePage(7)),
        FrameRef::Image(pager::ImagePage((1 << 30) - 1)),
        FrameRef::Large(LargeFrame(0)),
        FrameRef::Large(LargeFrame(511)),
    ] {
        assert_eq!(FrameRef::from_bits(frame.to_bits()), frame);
    }
    assert_eq!(FrameRef::Pool(PoolFrame(5)).to_bits(), 5, "pool frames encode as themselves");
}

/// The model's rules for a large frame, as seL4 5.0's `decodeX86FrameInvocation` and
/// `decodeX86PageTableInvocation` apply them.
#[test]
fn the_model_maps_large_frames_by_sel4s_rules() {
    let mut kernel = ModelKernel::new(ModelConfig { large_frames: 1, ..ModelConfig::default() }, &[]);
    let client = ClientId(0);
    kernel.create_address_space(client);
    assert_eq!(kernel.retype_large_frame(LargeFrame(1)), Err(KernelError::Failed(8)));
    kernel.retype_large_frame(LargeFrame(0)).unwrap();
    assert_eq!(kernel.retype_large_frame(LargeFrame(1)), Err(KernelError::OutOfMemory));
    kernel.copy_frame_cap(FrameRef::Large(LargeFrame(0)), CopySlot(0)).unwrap();
    let rw = Rights::READ_WRITE;
    // Not 2 MiB aligned: AlignmentError.
    assert_eq!(
        kernel.map_page(client, HEAP + PAGE, MappingCap::Copy(CopySlot(0)), rw),
        Err(MapError::Kernel(KernelError::Failed(5)))
    );
    // Missing levels down to the page directory, never a page table.
    assert_eq!(
        kernel.map_page(client, HEAP, MappingCap::Copy(CopySlot(0)), rw),
        Err(MapError::MissingLevel(PagingLevel::Pdpt))
    );
    kernel.map_paging_structure(client, HEAP, PagingLevel::Pdpt).unwrap();
    assert_eq!(
        kernel.map_page(client, HEAP, MappingCap::Copy(CopySlot(0)), rw),
        Err(MapError::MissingLevel(PagingLevel::PageDirectory))
    );
    kernel.map_paging_structure(client, HEAP, PagingLevel::PageDirectory).unwrap();
    // A page table in the next span's slot refuses a large page there.
    kernel.map_paging_structure(client, HEAP + LARGE, PagingLevel::PageTable).unwrap();
    assert_eq!(
        kernel.map_page(client, HEAP + LARGE, MappingCap::Copy(CopySlot(0)), rw),
        Err(MapError::Kernel(KernelError::Failed(8)))
    );
    assert!(matches!(kernel.violations().last(), Some(Violation::LargePageOverPageTable { .. })));
    kernel.map_page(client, HEAP, MappingCap::Copy(CopySlot(0)), rw).unwrap();
    // A 4 KiB page under the large one finds no page table, and none can be made there.
    kernel.retype_frames(PoolFrame(0), 1).unwrap();
    kernel.copy_frame_cap(FrameRef::Pool(PoolFrame(0)), CopySlot(1)).unwrap();
    assert_eq!(
        kernel.map_page(client, HEAP + PAGE, MappingCap::Copy(CopySlot(1)), rw),
        Err(MapError::MissingLevel(PagingLevel::PageTable))
    );
    assert_eq!(
        kernel.map_paging_structure(client, HEAP, PagingLevel::PageTable),
        Err(KernelError::Failed(8))
    );
    assert!(matches!(kernel.violations().last(), Some(Violation::PageTableOverLargePage { .. })));
    kernel.write(client, HEAP + LARGE - 4, b"end!").unwrap();
    assert_eq!(kernel.read(client, HEAP + LARGE - 4, 4).unwrap(), b"end!");
    assert_eq!(kernel.mapping(client, HEAP + 77 * PAGE).map(|m| m.vaddr), Some(HEAP));
    // Deleting the copy without unmapping leaves a stale large mapping, as for a small page.
    kernel.delete_copy_in_teardown(CopySlot(0)).unwrap();
    assert_eq!(kernel.stale_mappings().len(), 1);
    kernel.destroy_address_space(client);
    assert!(kernel.stale_mappings().is_empty());
}

mod properties {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Clone, Copy, Debug)]
    enum Op {
        Write { client: usize, area: usize, offset: u64, byte: u8 },
        Read { client: usize, area: usize, offset: u64 },
        DontNeed { client: usize, area: usize, offset: u64, pages: u64 },
        WillNeed { client: usize, area: usize, offset: u64, pages: u64 },
        Restart { client: usize },
    }

    /// Per client: an aligned area of 3 spans and an unaligned one of 2 spans less 2 pages.
    const AREAS: [(u64, u64); 2] = [(HEAP, 3 * LARGE), (HEAP + 4 * LARGE + 3 * PAGE, 2 * LARGE - 2 * PAGE)];
    const CLIENT_STRIDE: u64 = 8 * LARGE;

    fn op() -> impl Strategy<Value = Op> {
        let area = 0usize..2;
        let offset = 0u64..3 * LARGE;
        prop_oneof![
            6 => (0usize..2, area.clone(), offset.clone(), any::<u8>())
                .prop_map(|(client, area, offset, byte)| Op::Write { client, area, offset, byte }),
            4 => (0usize..2, area.clone(), offset.clone()).prop_map(|(client, area, offset)| Op::Read { client, area, offset }),
            2 => (0usize..2, area.clone(), offset.clone(), 1u64..1100)
                .prop_map(|(client, area, offset, pages)| Op::DontNeed { client, area, offset, pages }),
            1 => (0usize..2, area, offset, 1u64..600)
                .prop_map(|(client, area, offset, pages)| Op::WillNeed { client, area, offset, pages }),
            1 => (0usize..2).prop_map(|client| Op::Restart { client }),
        ]
    }

    fn add(session: &mut Session<'_, BuiltinPolicy>, n: usize) -> ClientId {
        let client = session.add_client(Some(1400)).unwrap();
        for (base, size) in AREAS {
            let base = base + n as u64 * CLIENT_STRIDE;
            session.pager.add_anonymous(client, base, size, Rights::READ_WRITE, AreaKind::Heap).unwrap();
        }
        client
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Whatever mix of large and small pages serves them, clients read back exactly what they
        /// wrote (zeroes elsewhere, and after dont-need); large frames are accounted exactly while
        /// they run and all come back when they go.
        #[test]
        fn clients_read_what_they_wrote_and_every_large_frame_comes_back(
            ops in prop::collection::vec(op(), 1..60),
            large_capacity in 0u32..5,
            large_untyped in 0u32..5,
        ) {
            let boot = BootImage::new();
            let kernel = ModelConfig { large_frames: large_untyped, ..ModelConfig::default() };
            let mut session = Session::new(&boot, config(large_capacity), kernel, BuiltinPolicy::LargePages).unwrap();
            let mut clients = [add(&mut session, 0), add(&mut session, 1)];
            let mut written: HashMap<(usize, u64), u8> = HashMap::new();
            for op in ops {
                match op {
                    Op::Write { client, area, offset, byte } => {
                        let (base, size) = AREAS[area];
                        let address = base + client as u64 * CLIENT_STRIDE + offset % size;
                        // Over budget is a refusal, which stops a real client; here it just ends the op.
                        if session.write(clients[client], address, &[byte]).is_ok() {
                            written.insert((client, address), byte);
                        }
                    }
                    Op::Read { client, area, offset } => {
                        let (base, size) = AREAS[area];
                        let address = base + client as u64 * CLIENT_STRIDE + offset % size;
                        if let Ok(bytes) = session.read(clients[client], address, 1) {
                            prop_assert_eq!(bytes[0], written.get(&(client, address)).copied().unwrap_or(0));
                        }
                    }
                    Op::DontNeed { client, area, offset, pages } => {
                        let (base, size) = AREAS[area];
                        let start = base + client as u64 * CLIENT_STRIDE + (offset % size) / PAGE * PAGE;
                        let length = (pages * PAGE).min(base + client as u64 * CLIENT_STRIDE + size - start);
                        session.advise(clients[client], start, length, Advice::DontNeed).unwrap();
                        // What was dropped reads zero again; a large page only partly covered stays.
                        written.retain(|&(c, address), _| {
                            c != client || address < start || address >= start + length
                                || session.kernel.mapping(clients[client], address).is_some()
                        });
                    }
                    Op::WillNeed { client, area, offset, pages } => {
                        let (base, size) = AREAS[area];
                        let start = base + client as u64 * CLIENT_STRIDE + (offset % size) / PAGE * PAGE;
                        let length = (pages * PAGE).min(base + client as u64 * CLIENT_STRIDE + size - start);
                        let _ = session.advise(clients[client], start, length, Advice::WillNeed);
                    }
                    Op::Restart { client } => {
                        session.remove_client(clients[client]).unwrap();
                        written.retain(|&(c, _), _| c != client);
                        clients[client] = add(&mut session, client);
                    }
                }
                let counts = session.pager.large_frame_counts();
                prop_assert_eq!(counts.in_use as usize, session.kernel.mapped_large_pages());
                prop_assert!(counts.created <= large_capacity.min(large_untyped));
                let charged: u32 = clients.iter().map(|&c| session.pager.client(c).unwrap().frames_charged()).sum();
                prop_assert_eq!(charged, session.pager.frame_counts().in_use + 512 * counts.in_use);
                prop_assert_eq!(session.kernel.violations(), &[]);
            }
            for client in clients {
                session.remove_client(client).unwrap();
            }
            prop_assert_eq!(session.pager.frame_counts().in_use, 0);
            prop_assert_eq!(session.pager.large_frame_counts().in_use, 0);
            prop_assert_eq!(session.pager.copy_slots_in_use(), 0);
            prop_assert_eq!(session.kernel.violations(), &[]);
        }
    }
}
