//! One test per case of HelenOS `backend_elf.c` as the pager maps it onto seL4, with exact bytes,
//! frames and counts, against the strict model kernel.

#![forbid(unsafe_code)]

use pager::{
    Access, AllocationError, AreaKind, BuiltinPolicy, ClientId, FaultClass, FrameContent, FrameCounts,
    FrameRef, ImagePage, KernelError, PagerConfig, PagingLevel, PoolFrame, RefusalReason, Rights, SharedId,
    TeardownReport,
};
use pager_tests::reference::*;
use pager_tests::{default_session, pattern, reference_boot_image, session_with, REFERENCE_FILE};
use sim::{ModelConfig, Session};

const PAGE: u64 = 4096;

/// The reference file starts on boot-image page 4 (file 0 takes pages 0–3) and its text segment at
/// file offset 0x1000, so text page `n` is boot-image page 5 + n.
const TEXT_FIRST_IMAGE_PAGE: u32 = 5;
/// The read-only data segment lies at file offset 0x4000: boot-image page 8.
const RODATA_IMAGE_PAGE: u32 = 8;

fn spawn(session: &mut Session<'_, impl pager::Policy>) -> ClientId {
    let image = session.image(REFERENCE_FILE);
    session.spawn(image, None).expect("spawn")
}

fn fault_class(
    session: &mut Session<'_, impl pager::Policy>,
    client: ClientId,
    address: u64,
    access: Access,
) -> (FaultClass, FrameRef) {
    let touched = session.touch(client, address, access).expect("access served");
    let resolution = touched.fault.expect("the page was not mapped before");
    assert_eq!(resolution.page, address & !(PAGE - 1));
    (resolution.class, resolution.frame)
}

fn assert_clean(session: &Session<'_, impl pager::Policy>) {
    assert_eq!(session.kernel.violations(), &[], "the pager broke a kernel rule");
}

fn zeroes(length: usize) -> Vec<u8> {
    vec![0; length]
}

fn area_shared(
    session: &Session<'_, impl pager::Policy>,
    client: ClientId,
    address: u64,
) -> Option<SharedId> {
    let areas = session.pager.client(client).expect("client").areas();
    areas.iter().find(|a| a.base() <= address && address < a.end()).and_then(|a| a.shared())
}

#[test]
fn file_layout_is_as_the_tests_assume() {
    let layout = pager_tests::reference_elf().layout();
    let offsets: Vec<u64> = layout.program_headers.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, [0x1000, 0x4000, 0x5010, 0x7100, 0x7800]);
    let boot = reference_boot_image();
    assert_eq!(boot.files()[REFERENCE_FILE].first_page, 4);
}

#[test]
fn read_only_initialised_page_maps_the_image_frame_without_a_copy() {
    let boot = reference_boot_image();
    let mut session = default_session(&boot);
    let first = spawn(&mut session);
    let second = spawn(&mut session);
    let pool_before = session.pager.frame_counts();

    let (class, frame) = fault_class(&mut session, first, TEXT + PAGE + 0x42, Access::Execute);
    assert_eq!(class, FaultClass::ImageFrame);
    assert_eq!(frame, FrameRef::Image(ImagePage(TEXT_FIRST_IMAGE_PAGE + 1)));
    assert_eq!(session.read(first, TEXT + PAGE, 4096).unwrap(), pattern(1, 0x2123)[0x1000..0x2000]);
    let (class, frame) = fault_class(&mut session, first, RODATA + 8, Access::Read);
    assert_eq!((class, frame), (FaultClass::ImageFrame, FrameRef::Image(ImagePage(RODATA_IMAGE_PAGE))));
    assert_eq!(session.read(first, RODATA, 4096).unwrap(), pattern(2, 0x1000));

    // No pool frame was taken, and the second instance maps the very same frame.
    assert_eq!(session.pager.frame_counts(), pool_before);
    assert_eq!(session.pager.frame_counts().created, 0);
    let (class, frame) = fault_class(&mut session, second, TEXT + PAGE, Access::Read);
    assert_eq!(
        (class, frame),
        (FaultClass::ImageFrame, FrameRef::Image(ImagePage(TEXT_FIRST_IMAGE_PAGE + 1)))
    );
    let mappings = session.kernel.mappings_of(frame);
    assert_eq!(mappings.len(), 2);
    assert!(mappings.iter().all(|m| m.rights == Rights::READ_EXECUTE), "{mappings:?}");
    assert_eq!(session.kernel.copies_of(frame), 2);
    assert_eq!(session.pager.frame_counts(), pool_before);
    assert_eq!(session.kernel.counters().window_writes, 0, "nothing was copied");
    assert_clean(&session);
}

#[test]
fn writable_initialised_page_is_copied_and_writes_stay_private() {
    let boot = reference_boot_image();
    let mut session = default_session(&boot);
    let first = spawn(&mut session);
    let second = spawn(&mut session);
    let page = 0x0080_1000; // Wholly inside DATA's file part.
    let file_bytes = pattern(3, 0x2000)[0xff0..0x1ff0].to_vec();

    let (class, frame) = fault_class(&mut session, first, page + 0x10, Access::Read);
    assert_eq!((class, frame), (FaultClass::NewFrame(FrameContent::Copy), FrameRef::Pool(PoolFrame(0))));
    assert_eq!(session.read(first, page, 4096).unwrap(), file_bytes);
    session.write(first, page + 0x20, b"private").unwrap();

    let (class, other) = fault_class(&mut session, second, page, Access::Write);
    assert_eq!((class, other), (FaultClass::NewFrame(FrameContent::Copy), FrameRef::Pool(PoolFrame(1))));
    assert_eq!(session.read(second, page, 4096).unwrap(), file_bytes);
    let mut written = file_bytes.clone();
    written[0x20..0x27].copy_from_slice(b"private");
    assert_eq!(session.read(first, page, 4096).unwrap(), written);
    // The image itself is untouched.
    let file = boot.file(REFERENCE_FILE);
    assert_eq!(&file[0x6000..0x7000], &file_bytes[..]);
    assert_eq!(session.kernel.writable_mappers(frame), [first]);
    assert_eq!(session.kernel.writable_mappers(other), [second]);
    assert_eq!(
        session.pager.frame_counts(),
        FrameCounts { created: 32, in_use: 2, free: 30, capacity: 4096, pinned: 0 }
    );
    assert_clean(&session);
}

#[test]
fn page_at_or_above_the_file_end_gets_a_zero_frame() {
    let boot = reference_boot_image();
    let mut session = default_session(&boot);
    let client = spawn(&mut session);
    for page in [0x0080_3000, 0x0080_4000] {
        let (class, frame) = fault_class(&mut session, client, page + 0x7, Access::Write);
        assert_eq!(class, FaultClass::NewFrame(FrameContent::Zero));
        assert!(matches!(frame, FrameRef::Pool(_)));
        assert_eq!(session.read(client, page, 4096).unwrap(), zeroes(4096));
    }
    // A read-only segment's zero page is a pool frame too, mapped read-only.
    let (class, frame) = fault_class(&mut session, client, RODATA + PAGE, Access::Read);
    assert_eq!(class, FaultClass::NewFrame(FrameContent::Zero));
    assert_eq!(session.kernel.mapping(client, RODATA + PAGE).unwrap().rights, Rights::READ);
    assert_eq!(session.kernel.frame_contents(frame).unwrap(), &zeroes(4096)[..]);
    assert_clean(&session);
}

#[test]
fn straddling_page_with_both_pads_copies_only_the_middle() {
    let boot = reference_boot_image();
    let mut session = default_session(&boot);
    let client = spawn(&mut session);
    let (class, _) = fault_class(&mut session, client, SMALL, Access::Read);
    assert_eq!(class, FaultClass::NewFrame(FrameContent::Mixed));
    let mut expected = zeroes(4096);
    expected[0x100..0x300].copy_from_slice(&pattern(4, 0x200));
    assert_eq!(session.read(client, 0x00a0_0000, 4096).unwrap(), expected);
    // The file bytes after the segment's (BSS's nothing, then the end of file) never leak in: the
    // window wrote exactly one copy, and the pads stayed the zeroes of a fresh frame.
    assert_eq!(session.kernel.counters().window_zeroes, 0);
    assert_eq!(session.kernel.counters().window_writes, 1);

    // DATA's first page: pad_lo 0x10 only; its third: pad_hi 0xff0 only.
    let data = pattern(3, 0x2000);
    let (class, _) = fault_class(&mut session, client, 0x0080_0000, Access::Read);
    assert_eq!(class, FaultClass::NewFrame(FrameContent::Mixed));
    let mut expected = zeroes(0x10);
    expected.extend_from_slice(&data[..0xff0]);
    assert_eq!(session.read(client, 0x0080_0000, 4096).unwrap(), expected);
    let (class, _) = fault_class(&mut session, client, 0x0080_2fff, Access::Read);
    assert_eq!(class, FaultClass::NewFrame(FrameContent::Mixed));
    let mut expected = data[0x1ff0..].to_vec();
    expected.extend_from_slice(&zeroes(0xff0));
    assert_eq!(session.read(client, 0x0080_2000, 4096).unwrap(), expected);
    // The text's last page: file bytes then zeroes, in an executable segment. The file has zeroes
    // after the text up to the next segment's page, so the image's own frame serves it.
    let (class, _) = fault_class(&mut session, client, TEXT + 2 * PAGE, Access::Execute);
    assert_eq!(class, FaultClass::ImageFrame);
    let mut expected = pattern(1, 0x2123)[0x2000..].to_vec();
    expected.extend_from_slice(&zeroes(0x1000 - 0x123));
    assert_eq!(session.read(client, TEXT + 2 * PAGE, 4096).unwrap(), expected);
    assert_clean(&session);
}

#[test]
fn file_size_below_memory_size_reads_file_then_zeroes() {
    let boot = reference_boot_image();
    let mut session = default_session(&boot);
    let client = spawn(&mut session);
    // The whole DATA area: five pages from 0x800000.
    let bytes = session.read(client, 0x0080_0000, 5 * 4096).unwrap();
    let mut expected = zeroes(0x10);
    expected.extend_from_slice(&pattern(3, 0x2000));
    expected.resize(5 * 4096, 0);
    assert_eq!(bytes, expected);
    let counts = session.pager.client(client).unwrap().faults();
    assert_eq!((counts.mixed, counts.copy, counts.zero), (2, 1, 2));
    // The area ends at the page after p_vaddr + p_memsz: one byte further is no area.
    let refused = session.touch(client, 0x0080_5000, Access::Read).unwrap_err();
    assert_eq!(refused.refusal().unwrap().reason, RefusalReason::NoArea);
    // SMALL: 0x300 bytes of memory, 0x200 from the file; the rest of its page is zero as well.
    let bytes = session.read(client, SMALL, 0x300).unwrap();
    let mut expected = pattern(4, 0x200);
    expected.resize(0x300, 0);
    assert_eq!(bytes, expected);
    assert_clean(&session);
}

#[test]
fn empty_file_part_gives_zero_pages_only() {
    let boot = reference_boot_image();
    let mut session = default_session(&boot);
    let client = spawn(&mut session);
    // BSS straddles its first page (pad_lo 0x800, no file bytes, pad_hi 0x800): a zero page.
    let (class, _) = fault_class(&mut session, client, BSS, Access::Write);
    assert_eq!(class, FaultClass::NewFrame(FrameContent::Zero));
    let (class, _) = fault_class(&mut session, client, BSS + PAGE, Access::Read);
    assert_eq!(class, FaultClass::NewFrame(FrameContent::Zero));
    assert_eq!(session.read(client, 0x00c0_0000, 2 * 4096).unwrap(), zeroes(2 * 4096));
    assert_eq!(session.kernel.counters().window_writes, 0, "no file byte copied");
    assert_clean(&session);
}

#[test]
fn shared_pagemap_hit_maps_the_same_frame_with_one_more_reference() {
    let boot = reference_boot_image();
    let mut session = default_session(&boot);
    let first = spawn(&mut session);
    let second = spawn(&mut session);
    let base = 0x4000_0000;
    let region = session
        .shared_region(2 * PAGE, &[(first, base, Rights::READ_WRITE), (second, base + PAGE, Rights::READ)])
        .unwrap();

    session.write(first, base + 0x10, b"hello").unwrap();
    let frame = session.kernel.mapping(first, base).unwrap().frame;
    let FrameRef::Pool(pool) = frame else { panic!("a region page is a pool frame") };
    // One reference for the mapping in `first`, one for the pagemap entry.
    assert_eq!(session.pager.frame_references(pool), 2);
    assert_eq!(session.pager.pagemap_len(region), Some(1));

    let (class, hit) = fault_class(&mut session, second, base + PAGE + 0x10, Access::Read);
    assert_eq!((class, hit), (FaultClass::SharedHit, frame));
    assert_eq!(session.pager.frame_references(pool), 3);
    assert_eq!(session.read(second, base + PAGE + 0x10, 5).unwrap(), b"hello");
    // Read-only in `second`: its write is refused, though the frame is writable in `first`.
    let refused = session.touch(second, base + PAGE, Access::Write).unwrap_err();
    assert_eq!(
        refused.refusal().unwrap().reason,
        RefusalReason::WriteToReadOnly { area: AreaKind::Region(region.0) }
    );
    assert_eq!(session.kernel.writable_mappers(frame), [first]);
    assert_eq!(session.pager.frame_counts().in_use, 1);
    assert_clean(&session);
}

#[test]
fn sharing_a_writable_area_in_use_puts_every_mapped_page_in_the_pagemap() {
    let boot = reference_boot_image();
    let mut session = default_session(&boot);
    let first = spawn(&mut session);
    let second = spawn(&mut session);
    let at = 0x2000_0000;
    session.write(first, 0x0080_1000, b"before sharing").unwrap(); // copy page
    session.touch(first, 0x0080_0000, Access::Read).unwrap(); // mixed page
    session.touch(first, 0x0080_3000, Access::Read).unwrap(); // zero page
    let frames: Vec<FrameRef> = [0x0080_0000, 0x0080_1000, 0x0080_3000]
        .iter()
        .map(|&a| session.kernel.mapping(first, a).unwrap().frame)
        .collect();

    session.share(first, DATA, second, at).unwrap();
    let shared = area_shared(&session, first, DATA).expect("the source area is shared now");
    assert_eq!(area_shared(&session, second, at), Some(shared));
    assert_eq!(session.pager.pagemap_len(shared), Some(3));
    for frame in &frames {
        let FrameRef::Pool(pool) = *frame else { panic!("pool frames") };
        assert_eq!(session.pager.frame_references(pool), 2, "mapping + pagemap");
    }

    // The sharer sees the same frames, the earlier write included.
    let (class, frame) = fault_class(&mut session, second, at + 0x1000, Access::Read);
    assert_eq!((class, frame), (FaultClass::SharedHit, frames[1]));
    assert_eq!(session.read(second, at + 0x1000, 14).unwrap(), b"before sharing");
    // A page neither had is made once and then hit by the other.
    let (class, made) = fault_class(&mut session, second, at + 0x2000, Access::Write);
    assert_eq!(class, FaultClass::NewFrame(FrameContent::Mixed));
    session.write(second, at + 0x2000, b"from second").unwrap();
    let (class, hit) = fault_class(&mut session, first, 0x0080_2000, Access::Read);
    assert_eq!((class, hit), (FaultClass::SharedHit, made));
    assert_eq!(session.read(first, 0x0080_2000, 11).unwrap(), b"from second");
    assert_eq!(session.pager.pagemap_len(shared), Some(4));
    let mut writers = session.kernel.writable_mappers(made);
    writers.sort();
    assert_eq!(writers, [first, second]);
    assert_clean(&session);
}

#[test]
fn sharing_a_read_only_area_puts_only_non_image_pages_in_the_pagemap() {
    let boot = reference_boot_image();
    let mut session = default_session(&boot);
    let first = spawn(&mut session);
    let second = spawn(&mut session);
    let at = 0x3000_0000;
    // Read-only data: one page of file bytes (an image frame), then half a page past the file end
    // (a zero page: a pool frame).
    session.touch(first, RODATA, Access::Read).unwrap();
    session.touch(first, RODATA + PAGE, Access::Read).unwrap();
    let image = session.kernel.mapping(first, RODATA).unwrap().frame;
    let zero = session.kernel.mapping(first, RODATA + PAGE).unwrap().frame;
    assert!(matches!((image, zero), (FrameRef::Image(_), FrameRef::Pool(_))));

    session.share(first, RODATA, second, at).unwrap();
    let shared = area_shared(&session, first, RODATA).unwrap();
    assert_eq!(session.pager.pagemap_len(shared), Some(1));
    let (class, frame) = fault_class(&mut session, second, at, Access::Read);
    assert_eq!((class, frame), (FaultClass::ImageFrame, image));
    let (class, frame) = fault_class(&mut session, second, at + PAGE, Access::Read);
    assert_eq!((class, frame), (FaultClass::SharedHit, zero));
    let mut expected = pattern(2, RODATA_FILE_SIZE as usize);
    expected.resize(RODATA_MEMORY_SIZE as usize, 0);
    assert_eq!(session.read(second, at, RODATA_MEMORY_SIZE as usize).unwrap(), expected);
    assert_eq!(session.pager.frame_counts().in_use, 1);
    assert_clean(&session);
}

#[test]
fn unmap_frees_copies_zero_and_mixed_frames_but_never_image_frames() {
    let boot = reference_boot_image();
    let mut session = default_session(&boot);
    let client = spawn(&mut session);
    let image_page = TEXT;
    let pages = [0x0080_1000 /* copy */, 0x0080_3000 /* zero */, SMALL /* mixed */];
    session.touch(client, image_page, Access::Read).unwrap();
    let mut frames = Vec::new();
    for &page in &pages {
        session.write(client, page, b"x").unwrap();
        let FrameRef::Pool(pool) = session.kernel.mapping(client, page).unwrap().frame else { panic!() };
        assert_eq!(session.pager.frame_references(pool), 1);
        frames.push(pool);
    }
    assert_eq!(
        session.pager.frame_counts(),
        FrameCounts { created: 32, in_use: 3, free: 29, capacity: 4096, pinned: 0 }
    );
    // The zero page is mapped with its fresh frame's own cap: no copy.
    assert_eq!(session.pager.copy_slots_in_use(), 3);

    // The image frame's mapping goes; nothing is freed.
    assert!(session.unmap(client, image_page).unwrap());
    assert_eq!(session.kernel.copies_of(FrameRef::Image(ImagePage(TEXT_FIRST_IMAGE_PAGE))), 0);
    assert_eq!(session.pager.frame_counts().in_use, 3);
    for (page, pool) in pages.iter().zip(&frames) {
        assert!(session.unmap(client, *page).unwrap());
        assert_eq!(session.pager.frame_references(*pool), 0);
        assert!(session.kernel.mapping(client, *page).is_none());
    }
    assert_eq!(
        session.pager.frame_counts(),
        FrameCounts { created: 32, in_use: 0, free: 32, capacity: 4096, pinned: 0 }
    );
    assert_eq!(session.pager.copy_slots_in_use(), 0);
    assert_eq!(session.kernel.live_copies(), 0);
    assert!(!session.unmap(client, image_page).unwrap(), "nothing resident there any more");
    // A page unmapped loses its private writes: it comes back from the file.
    assert_eq!(session.read(client, 0x0080_1000, 1).unwrap(), [pattern(3, 0x2000)[0xff0]]);
    assert_eq!(session.pager.frame_counts().created, 32, "the free list was reused, nothing retyped");
    assert_clean(&session);
}

#[test]
fn unmap_in_a_shared_area_keeps_the_pagemap_reference() {
    let boot = reference_boot_image();
    let mut session = default_session(&boot);
    let first = spawn(&mut session);
    let second = spawn(&mut session);
    session.write(first, 0x0080_1000, b"kept").unwrap();
    session.share(first, DATA, second, 0x2000_0000).unwrap();
    let FrameRef::Pool(pool) = session.kernel.mapping(first, 0x0080_1000).unwrap().frame else { panic!() };
    assert!(session.unmap(first, 0x0080_1000).unwrap());
    assert_eq!(session.pager.frame_references(pool), 1, "the pagemap's");
    assert_eq!(session.read(second, 0x2000_1000, 4).unwrap(), b"kept");
    let (class, frame) = fault_class(&mut session, first, 0x0080_1000, Access::Read);
    assert_eq!((class, frame), (FaultClass::SharedHit, FrameRef::Pool(pool)));
    assert_clean(&session);
}

#[test]
fn remove_client_frees_private_frames_and_shared_ones_with_the_last_sharer() {
    let boot = reference_boot_image();
    let mut session = default_session(&boot);
    let first = spawn(&mut session);
    let second = spawn(&mut session);
    // `first`: an image page, two private pages, two pages of DATA which it then shares.
    session.touch(first, TEXT, Access::Read).unwrap();
    session.write(first, SMALL, b"a").unwrap();
    session.write(first, BSS, b"b").unwrap();
    session.write(first, 0x0080_1000, b"c").unwrap();
    session.write(first, 0x0080_3000, b"d").unwrap();
    session.share(first, DATA, second, 0x2000_0000).unwrap();
    session.touch(second, 0x2000_1000, Access::Read).unwrap();
    session.touch(second, TEXT, Access::Read).unwrap();
    assert_eq!(session.pager.frame_counts().in_use, 4);
    let shared = area_shared(&session, first, DATA).unwrap();

    let report = session.remove_client(first).unwrap();
    assert_eq!(report, TeardownReport { pages_unmapped: 5, frames_freed: 2 });
    assert_eq!(session.pager.frame_counts().in_use, 2);
    assert_eq!(session.pager.pagemap_len(shared), Some(2), "the shared object lives on with `second`");
    assert_eq!(session.read(second, 0x2000_3000, 1).unwrap(), b"d");
    assert!(session.pager.client(first).is_none());

    let report = session.remove_client(second).unwrap();
    assert_eq!(report, TeardownReport { pages_unmapped: 3, frames_freed: 2 });
    assert_eq!(session.pager.pagemap_len(shared), None);
    assert_eq!(
        session.pager.frame_counts(),
        FrameCounts { created: 32, in_use: 0, free: 32, capacity: 4096, pinned: 0 }
    );
    assert_eq!(session.pager.copy_slots_in_use(), 0);
    assert_eq!(session.kernel.live_copies(), 0);
    assert_eq!(session.kernel.mapped_pages(), 0);
    // Image frames were never freed: they were never in the pool.
    assert!(session.kernel.frame_contents(FrameRef::Image(ImagePage(TEXT_FIRST_IMAGE_PAGE))).is_some());
    assert_clean(&session);
}

#[test]
fn teardown_deletes_copies_without_unmapping_and_the_space_takes_the_mappings_with_it() {
    let boot = reference_boot_image();
    let mut session = default_session(&boot);
    let client = spawn(&mut session);
    session.touch(client, TEXT, Access::Read).unwrap();
    session.write(client, SMALL, b"a").unwrap();
    session.write(client, BSS, b"b").unwrap();
    let unmaps = session.kernel.counters().unmap_calls;

    // The root task's order: the thread is stopped, the pager drops its mappings, the space goes.
    session.pager.remove_client(&mut session.kernel, client).unwrap();
    // No unmap for the copies (the space is destroyed next); one for the zero page's frame, mapped
    // with its own cap, which is never deleted and must map nothing before the frame's next use.
    assert_eq!(session.kernel.counters().unmap_calls, unmaps + 1);
    assert_eq!(session.kernel.live_copies(), 0);
    assert_eq!(session.kernel.stale_mappings().len(), 2, "mapped until the space goes, as on seL4 5.0");
    session.kernel.destroy_address_space(client);
    assert_eq!(session.kernel.mapped_pages(), 0);
    assert_eq!(session.pager.copy_slots_in_use(), 0);
    assert_eq!(session.pager.frame_counts().in_use, 0);
    // The freed frames serve the next client; nothing of the old one sees them.
    let next = spawn(&mut session);
    session.write(next, SMALL, b"c").unwrap();
    session.write(next, BSS, b"d").unwrap();
    assert_clean(&session);
}

#[test]
fn a_removed_client_whose_space_is_kept_still_maps_its_frames_and_reuse_is_flagged() {
    let boot = reference_boot_image();
    let mut session = default_session(&boot);
    let client = spawn(&mut session);
    let other = spawn(&mut session);
    // A copied page (a zero page's fresh frame would be mapped with its own cap, which teardown
    // unmaps).
    session.write(client, 0x0080_1000, b"b").unwrap();
    // Teardown without destroying the address space: the bare delete left the page mapped.
    session.pager.remove_client(&mut session.kernel, client).unwrap();
    let stale = session.kernel.stale_mappings();
    assert_eq!(stale.len(), 1);
    assert_eq!(session.kernel.read(client, 0x0080_1000, 1), Ok(b"b".to_vec()), "still reachable");
    let FrameRef::Pool(frame) = stale[0].frame else { panic!("a private page is a pool frame") };
    // The frame is free in the pager's eyes; filling it for another client (a copy takes a
    // recycled frame) is caught.
    session.write(other, 0x0080_1000, b"x").unwrap();
    assert_eq!(session.kernel.mapping(other, 0x0080_1000).unwrap().frame, stale[0].frame);
    assert_eq!(
        session.kernel.violations(),
        &[sim::Violation::WindowOnStaleMapping { frame, client, vaddr: 0x0080_1000 }]
    );
}

/// Runs `refused` in a fresh session built by `configure`, checks the refusal, that it leaked nothing,
/// and that another client is still served.
fn assert_refusal_then_service(
    pager_config: PagerConfig,
    kernel_config: ModelConfig,
    budget: Option<u32>,
    prepare: impl Fn(&mut Session<'_, BuiltinPolicy>, ClientId),
    refused_at: u64,
    access: Access,
    expected: RefusalReason,
) {
    let boot = reference_boot_image();
    let mut session = session_with(&boot, pager_config, kernel_config, BuiltinPolicy::Seed);
    let image = session.image(REFERENCE_FILE);
    let client = session.spawn(image, budget).unwrap();
    let bystander = session.spawn(image, None).unwrap();
    // The bystander's image page is mapped first, so its page tables exist before budgets run out.
    session.touch(bystander, TEXT, Access::Read).unwrap();
    prepare(&mut session, client);
    let counts = session.pager.frame_counts();
    let slots = session.pager.copy_slots_in_use();
    let copies = session.kernel.live_copies();

    let error = session.touch(client, refused_at, access).unwrap_err();
    let refusal = error.refusal().expect("refused, not looping");
    assert_eq!(refusal.reason, expected);
    assert_eq!((refusal.client, refusal.fault.address, refusal.fault.access), (client, refused_at, access));
    assert_eq!(session.pager.frame_counts().in_use, counts.in_use, "no frame leaked");
    assert_eq!(session.pager.copy_slots_in_use(), slots, "no slot leaked");
    assert_eq!(session.kernel.live_copies(), copies, "no copy left behind");
    assert!(session.kernel.mapping(client, refused_at).is_none());
    assert_eq!(session.pager.client(client).unwrap().faults().refused, 1);

    // The pager keeps serving.
    assert_eq!(session.read(bystander, TEXT + PAGE, 4).unwrap(), pattern(1, 0x2123)[0x1000..0x1004]);
    assert_clean(&session);
}

#[test]
fn access_outside_every_area_is_refused() {
    let config = PagerConfig::default();
    assert_refusal_then_service(
        config,
        ModelConfig::default(),
        None,
        |_, _| {},
        0x1000_0000,
        Access::Read,
        RefusalReason::NoArea,
    );
}

#[test]
fn write_to_a_read_only_segment_is_refused() {
    let expected = RefusalReason::WriteToReadOnly { area: AreaKind::Segment(RODATA_SEGMENT) };
    assert_refusal_then_service(
        PagerConfig::default(),
        ModelConfig::default(),
        None,
        |_, _| {},
        RODATA,
        Access::Write,
        expected,
    );
}

#[test]
fn execute_in_a_data_segment_is_refused() {
    let expected = RefusalReason::ExecuteNonExecutable { area: AreaKind::Segment(DATA_SEGMENT) };
    assert_refusal_then_service(
        PagerConfig::default(),
        ModelConfig::default(),
        None,
        |_, _| {},
        0x0080_2000,
        Access::Execute,
        expected,
    );
}

#[test]
fn touching_the_stack_guard_is_a_stack_overflow() {
    let prepare = |session: &mut Session<'_, BuiltinPolicy>, client| {
        let top = session.pager.add_stack(client, 0x7000_0000, 4 * PAGE).unwrap();
        assert_eq!(top, 0x7000_0000);
        session.write(client, top - 8, &[1; 8]).unwrap();
    };
    let guard = 0x7000_0000 - 5 * PAGE;
    assert_refusal_then_service(
        PagerConfig::default(),
        ModelConfig::default(),
        None,
        prepare,
        guard + 0xff8,
        Access::Write,
        RefusalReason::StackOverflow,
    );
}

#[test]
fn a_client_over_its_frame_budget_is_refused() {
    let prepare = |session: &mut Session<'_, BuiltinPolicy>, client| {
        session.write(client, SMALL, b"1").unwrap();
        session.write(client, BSS, b"2").unwrap();
        // Image frames are not charged.
        session.touch(client, TEXT, Access::Read).unwrap();
        assert_eq!(session.pager.client(client).unwrap().frames_charged(), 2);
    };
    assert_refusal_then_service(
        PagerConfig::default(),
        ModelConfig::default(),
        Some(2),
        prepare,
        0x0080_1000,
        Access::Read,
        RefusalReason::OverBudget { budget: 2 },
    );
}

#[test]
fn an_exhausted_frame_pool_is_refused() {
    let config = PagerConfig { frame_capacity: 2, ..PagerConfig::default() };
    let prepare = |session: &mut Session<'_, BuiltinPolicy>, client| {
        session.write(client, SMALL, b"1").unwrap();
        session.write(client, BSS, b"2").unwrap();
    };
    let expected = RefusalReason::OutOfFrames(AllocationError::PoolExhausted { capacity: 2 });
    assert_refusal_then_service(
        config,
        ModelConfig::default(),
        None,
        prepare,
        0x0080_1000,
        Access::Read,
        expected,
    );
}

#[test]
fn exhausted_untyped_memory_is_refused() {
    // Budget: the bystander's 3 paging structures, the client's 3, and 2 frames (retyped one at a time).
    let config = PagerConfig { retype_batch: 1, ..PagerConfig::default() };
    let kernel = ModelConfig::with_untyped_frames(8);
    let prepare = |session: &mut Session<'_, BuiltinPolicy>, client| {
        session.write(client, 0x0080_1000, b"1").unwrap();
        session.write(client, 0x0080_3000, b"2").unwrap();
        assert_eq!(session.kernel.untyped_bytes_left(), 0);
    };
    let expected = RefusalReason::OutOfFrames(AllocationError::Kernel(KernelError::OutOfMemory));
    assert_refusal_then_service(config, kernel, None, prepare, 0x0080_2000, Access::Read, expected);
}

#[test]
fn exhausted_untyped_memory_for_a_page_table_is_refused() {
    // Room for the bystander's 3 structures, the client's 3 and one frame: nothing for a new table.
    let kernel = ModelConfig::with_untyped_frames(7);
    let config = PagerConfig { retype_batch: 1, ..PagerConfig::default() };
    let prepare = |session: &mut Session<'_, BuiltinPolicy>, client| {
        session.write(client, 0x0080_1000, b"1").unwrap();
        assert_eq!(session.kernel.untyped_bytes_left(), 0);
    };
    // An image page in another 2 MiB region needs a page table and no frame.
    let expected =
        RefusalReason::NoPagingStructure { level: PagingLevel::PageTable, error: KernelError::OutOfMemory };
    assert_eq!(
        expected.to_string(),
        "no page table could be made: out of memory for the client's paging structures"
    );
    assert_refusal_then_service(config, kernel, None, prepare, TEXT, Access::Read, expected);
}

#[test]
fn exhausted_copy_slots_are_refused() {
    let config = PagerConfig { copy_slots: 3, ..PagerConfig::default() };
    let prepare = |session: &mut Session<'_, BuiltinPolicy>, client| {
        session.touch(client, TEXT, Access::Read).unwrap();
        session.touch(client, TEXT + PAGE, Access::Read).unwrap();
    };
    let expected = RefusalReason::OutOfSlots { capacity: 3 };
    assert_refusal_then_service_after_unmap(config, prepare, 0x0080_1000, expected);
}

/// Like [`assert_refusal_then_service`], for a refusal that leaves no slot for anyone: after it, the
/// client's own page is unmapped and the bystander's next fault takes the freed slot.
fn assert_refusal_then_service_after_unmap(
    config: PagerConfig,
    prepare: impl Fn(&mut Session<'_, BuiltinPolicy>, ClientId),
    refused_at: u64,
    expected: RefusalReason,
) {
    let boot = reference_boot_image();
    let mut session = session_with(&boot, config, ModelConfig::default(), BuiltinPolicy::Seed);
    let image = session.image(REFERENCE_FILE);
    let client = session.spawn(image, None).unwrap();
    let bystander = session.spawn(image, None).unwrap();
    session.touch(bystander, TEXT, Access::Read).unwrap();
    prepare(&mut session, client);
    let in_use = session.pager.frame_counts().in_use;
    let error = session.touch(client, refused_at, Access::Read).unwrap_err();
    assert_eq!(error.refusal().unwrap().reason, expected);
    assert_eq!(session.pager.frame_counts().in_use, in_use, "the frame taken for the page was returned");
    assert_eq!(session.pager.copy_slots_in_use(), 3);
    assert!(session.unmap(client, TEXT).unwrap());
    assert_eq!(session.read(bystander, 0x0080_1000, 4).unwrap(), pattern(3, 0x2000)[0xff0..0xff4]);
    assert_clean(&session);
}

/// Kernel calls the model kernel saw while a read at `address` was served by one fault.
fn kernel_calls(session: &mut Session<'_, BuiltinPolicy>, client: ClientId, address: u64) -> u64 {
    let before = session.kernel.counters().invocations();
    session.touch(client, address, Access::Read).unwrap().fault.expect("a fault");
    session.kernel.counters().invocations() - before
}

#[test]
fn missing_paging_structures_are_made_before_the_map() {
    let boot = reference_boot_image();
    let mut session = default_session(&boot);
    let client = spawn(&mut session);
    assert_eq!(session.kernel.paging_structures(client), 0);

    // First fault: the pager knows the client has no structures, so it makes the PDPT, the
    // directory and the table (a retype and a map each; the table's retype makes a batch) before
    // the one map, which does not fail. Kernel calls are counted where they are made: by the
    // model kernel.
    let calls = kernel_calls(&mut session, client, TEXT);
    assert_eq!(calls, 3 * 2 + 2, "three structures, copy, map");
    let counters = *session.kernel.counters();
    assert_eq!(
        (counters.map_calls, counters.missing_level_failures, counters.paging_structures_created),
        (1, 0, 3)
    );
    for level in [PagingLevel::Pdpt, PagingLevel::PageDirectory, PagingLevel::PageTable] {
        assert!(session.kernel.has_paging_structure(client, TEXT, level));
    }
    assert_eq!(session.pager.client(client).unwrap().paging_structures(), 3);

    // Same 2 MiB: nothing new. Copy + map.
    assert_eq!(kernel_calls(&mut session, client, TEXT + PAGE), 2);
    // Another 2 MiB in the same 1 GiB: a page table, a spare of the first batch (its map only). A
    // new pool batch is retyped on the way, and the copied page's frame mapped into the window.
    let calls = kernel_calls(&mut session, client, 0x0080_1000);
    assert_eq!(calls, 1 + 1 + 1 + 1 + 1, "retype, window map, table map, copy, map");
    assert_eq!(session.kernel.paging_structures(client), 4);
    // Another 1 GiB: a directory and a table.
    session.shared_region(PAGE, &[(client, 0x4000_0000, Rights::READ_WRITE)]).unwrap();
    // A zero page: its fresh frame is mapped with its own cap (no copy, no window); the table is
    // the first batch's third.
    assert_eq!(kernel_calls(&mut session, client, 0x4000_0000), 2 + 1 + 1, "directory, table, map");
    assert!(session.kernel.has_paging_structure(client, 0x4000_0000, PagingLevel::PageDirectory));
    assert_eq!(session.kernel.paging_structures(client), 6);
    assert_eq!(session.pager.client(client).unwrap().paging_structures(), 6);
    assert_clean(&session);
}

#[test]
fn fault_around_maps_the_following_pages_of_the_area() {
    let boot = reference_boot_image();
    let policy = BuiltinPolicy::FaultAround { pages: 2 };
    let mut session = session_with(&boot, PagerConfig::default(), ModelConfig::default(), policy);
    let client = spawn(&mut session);
    let resolution = session.touch(client, 0x0080_0000, Access::Read).unwrap().fault.unwrap();
    assert_eq!(resolution.class, FaultClass::NewFrame(FrameContent::Mixed));
    assert_eq!(resolution.pages_mapped, 3);
    let mapped: Vec<u64> = session.kernel.mappings(client).iter().map(|m| m.vaddr).collect();
    assert_eq!(mapped, [0x0080_0000, 0x0080_1000, 0x0080_2000]);
    // Pages mapped ahead are filled correctly and read with no further fault.
    let faults = session.faults_delivered();
    let mut expected = zeroes(0x10);
    expected.extend_from_slice(&pattern(3, 0x2000));
    expected.resize(3 * 4096, 0);
    assert_eq!(session.read(client, 0x0080_0000, 3 * 4096).unwrap(), expected);
    assert_eq!(session.faults_delivered(), faults);
    // At the area's last page there is nothing to map ahead.
    let resolution = session.touch(client, 0x0080_4000, Access::Read).unwrap().fault.unwrap();
    assert_eq!(resolution.pages_mapped, 1);
    // Its neighbour below is resident already, so fault-around maps nothing more.
    let resolution = session.touch(client, 0x0080_3000, Access::Read).unwrap().fault.unwrap();
    assert_eq!((resolution.class, resolution.pages_mapped), (FaultClass::NewFrame(FrameContent::Zero), 1));
    assert_eq!(session.kernel.mappings(client).len(), 5);
    assert_clean(&session);
}

#[test]
fn eager_policy_maps_every_segment_and_the_stack_before_start() {
    let boot = reference_boot_image();
    let mut session =
        session_with(&boot, PagerConfig::default(), ModelConfig::default(), BuiltinPolicy::Eager);
    let client = spawn(&mut session);
    session.pager.add_stack(client, 0x7000_0000, 2 * PAGE).unwrap();
    session.pager.add_anonymous(client, 0x5000_0000, 4 * PAGE, Rights::READ_WRITE, AreaKind::Heap).unwrap();
    let mapped = session.start(client).unwrap();
    // TEXT 3 + RODATA 2 + DATA 5 + SMALL 1 + BSS 2, and the stack's 2.
    assert_eq!(mapped, 3 + 2 + 5 + 1 + 2 + 2);
    assert_eq!(session.kernel.mappings(client).len(), 15);
    let image_mappings =
        session.kernel.mappings(client).iter().filter(|m| matches!(m.frame, FrameRef::Image(_))).count();
    assert_eq!(
        image_mappings, 4,
        "three text pages (the last padded with zeroes) and one read-only data page"
    );
    assert_eq!(session.pager.frame_counts().in_use, 11);
    let elf = pager_tests::reference_elf();
    for (start, length) in [
        (TEXT, 0x3000),
        (RODATA, 0x2000),
        (0x0080_0000, 0x5000),
        (0x00a0_0000, 0x1000),
        (0x00c0_0000, 0x2000),
    ] {
        let bytes = session.read(client, start, length).unwrap();
        let expected: Vec<u8> =
            (start..start + length as u64).map(|a| elf.expected_byte(a).unwrap()).collect();
        assert_eq!(bytes, expected, "segment at {start:#x}");
    }
    session.write(client, 0x7000_0000 - 16, &[7; 16]).unwrap();
    assert_eq!(session.faults_delivered(), 0, "nothing faulted after start");
    // The heap stays lazy.
    let touched = session.touch(client, 0x5000_0000, Access::Write).unwrap();
    assert_eq!(touched.fault.unwrap().class, FaultClass::NewFrame(FrameContent::Zero));
    assert_clean(&session);
}

#[test]
fn recycled_frames_are_filled_completely() {
    let boot = reference_boot_image();
    let config = PagerConfig { retype_batch: 4, frame_capacity: 4, ..PagerConfig::default() };
    let mut session = session_with(&boot, config, ModelConfig::default(), BuiltinPolicy::Seed);
    let client = spawn(&mut session);
    // Dirty every frame of the pool with 0xff, then give them all back.
    let heap = 0x5000_0000;
    session.pager.add_anonymous(client, heap, 4 * PAGE, Rights::READ_WRITE, AreaKind::Heap).unwrap();
    session.write(client, heap, &[0xff; 4 * 4096]).unwrap();
    for page in 0..4 {
        assert!(session.unmap(client, heap + page * PAGE).unwrap());
    }
    assert_eq!(
        session.pager.frame_counts(),
        FrameCounts { created: 4, in_use: 0, free: 4, capacity: 4, pinned: 0 }
    );

    // Every case that fills a pool frame, on dirty frames.
    let mut small = zeroes(4096);
    small[0x100..0x300].copy_from_slice(&pattern(4, 0x200));
    let mut data_last = pattern(3, 0x2000)[0x1ff0..].to_vec();
    data_last.resize(4096, 0);
    let copy = pattern(3, 0x2000)[0xff0..0x1ff0].to_vec();
    for (page, expected) in
        [(0x00a0_0000, small), (0x0080_2000, data_last), (0x0080_1000, copy), (0x00c0_0000, zeroes(4096))]
    {
        assert_eq!(session.read(client, page, 4096).unwrap(), expected, "page {page:#x}");
    }
    assert_eq!(session.pager.frame_counts().created, 4, "all four were recycled");
    assert_clean(&session);
}

#[test]
fn fresh_frames_are_not_zeroed_again_and_zero_fills_prefer_them() {
    let boot = reference_boot_image();
    let config = PagerConfig { retype_batch: 4, frame_capacity: 8, ..PagerConfig::default() };
    let mut session = session_with(&boot, config, ModelConfig::default(), BuiltinPolicy::Seed);
    let client = spawn(&mut session);
    let heap = 0x5000_0000;
    session.pager.add_anonymous(client, heap, 8 * PAGE, Rights::READ_WRITE, AreaKind::Heap).unwrap();
    // Two fresh frames: zero pages with no window writes at all.
    session.write(client, heap, b"a").unwrap();
    session.write(client, heap + PAGE, b"b").unwrap();
    assert_eq!(session.kernel.counters().window_zeroes, 0);
    // Give one back dirty: the next zero fill still takes a fresh frame (two are left) ...
    assert!(session.unmap(client, heap).unwrap());
    let (_, fresh) = fault_class(&mut session, client, heap + 2 * PAGE, Access::Write);
    assert_eq!(fresh, FrameRef::Pool(PoolFrame(2)));
    assert_eq!(session.kernel.counters().window_zeroes, 0);
    // ... while a copy takes the recycled one, overwriting all of it.
    let (class, recycled) = fault_class(&mut session, client, 0x0080_1000, Access::Read);
    assert_eq!((class, recycled), (FaultClass::NewFrame(FrameContent::Copy), FrameRef::Pool(PoolFrame(0))));
    assert_eq!(session.read(client, 0x0080_1000, 4096).unwrap(), pattern(3, 0x2000)[0xff0..0x1ff0]);
    // With no fresh frame left, a zero fill zeroes a recycled frame first.
    session.write(client, heap + 3 * PAGE, b"d").unwrap();
    assert!(session.unmap(client, heap + 3 * PAGE).unwrap());
    assert_eq!(session.pager.frame_counts().free, 1);
    let (_, reused) = fault_class(&mut session, client, heap + 4 * PAGE, Access::Read);
    assert_eq!(reused, FrameRef::Pool(PoolFrame(3)));
    assert_eq!(session.kernel.counters().window_zeroes, 1);
    assert_eq!(session.read(client, heap + 4 * PAGE, 4096).unwrap(), zeroes(4096));
    assert_clean(&session);
}

#[test]
fn a_read_only_page_padded_with_zeroes_in_the_file_is_the_image_frame() {
    use sim::elf::{ElfBuilder, FLAGS_R, FLAGS_RW, FLAGS_RX};
    // Text starts 0x10 into its page, after a gap the builder fills with zeroes, and ends 0x100 into
    // its second page; the next segment starts on a fresh file page, so zeroes pad that tail too.
    // Read-only data ends mid-page with the writable data's bytes right behind it in the file.
    let text = pattern(7, 0x1100 - 0x10);
    let builder = ElfBuilder::new()
        .segment(0x0040_0010, text.clone(), text.len() as u64, FLAGS_RX)
        .segment(0x0060_0000, pattern(8, 0x80), 0x80, FLAGS_R)
        .segment(0x0060_1080, pattern(9, 0x100), 0x1000, FLAGS_RW)
        .segment(0x0080_0000, pattern(10, 0x80), 0x80, FLAGS_RW);
    let boot = sim::BootImage::new().with(&builder.build());
    let mut session = default_session(&boot);
    let image = session.image(0);
    let client = session.spawn(image, None).unwrap();

    // Both text pages: pads of zeroes in the file, so no frame and no copy.
    for page in [0x0040_0000, 0x0040_1000] {
        let (class, frame) = fault_class(&mut session, client, page, Access::Execute);
        assert_eq!(class, FaultClass::ImageFrame, "page {page:#x}");
        assert!(matches!(frame, FrameRef::Image(_)));
        let read = session.read(client, page, 4096).unwrap();
        let want: Vec<u8> = (0..4096u64)
            .map(|offset| builder.expected_byte(page + offset).expect("inside the segment's pages"))
            .collect();
        assert_eq!(read, want, "page {page:#x}");
    }
    assert_eq!(session.pager.frame_counts().in_use, 0, "no frame for the text");
    // The read-only data's tail has the writable data behind it in the file: copied, zero padded.
    let (class, _) = fault_class(&mut session, client, 0x0060_0000, Access::Read);
    assert_eq!(class, FaultClass::NewFrame(FrameContent::Mixed));
    let read = session.read(client, 0x0060_0000, 4096).unwrap();
    assert_eq!(&read[..0x80], &pattern(8, 0x80)[..]);
    assert_eq!(&read[0x80..], &zeroes(4096 - 0x80)[..]);
    // A writable page is never the image's frame, zero pads or not.
    let (class, frame) = fault_class(&mut session, client, 0x0080_0000, Access::Read);
    assert_eq!(class, FaultClass::NewFrame(FrameContent::Mixed));
    assert!(matches!(frame, FrameRef::Pool(_)));
    assert_clean(&session);
}

/// HelenOS `elf_share`: a read-only area puts only the pages not backed by the image into the pagemap.
/// A zero-padded straddling page is backed by the image here (the seed maps the image's own frame), so
/// it gets no entry and the sharer's fault maps that frame itself; a read-only page copied with its
/// pads zeroed is a pool frame, which the sharer must find in the pagemap.
#[test]
fn sharing_a_read_only_area_keeps_its_zero_padded_page_out_of_the_pagemap() {
    use sim::elf::{ElfBuilder, FLAGS_R, FLAGS_RX};
    // Text ends 0x100 into its second page, zero padded in the file; read-only data ends mid-page with
    // the next segment's bytes right behind it in the file, so its page is copied and zero padded.
    let text = pattern(7, 0x1100 - 0x10);
    let builder = ElfBuilder::new()
        .segment(0x0040_0010, text.clone(), text.len() as u64, FLAGS_RX)
        .segment(0x0060_0000, pattern(8, 0x80), 0x80, FLAGS_R)
        .segment(0x0060_1080, pattern(9, 0x100), 0x100, FLAGS_R);
    let boot = sim::BootImage::new().with(&builder.build());
    let mut session = default_session(&boot);
    let image = session.image(0);
    let first = session.spawn(image, None).unwrap();
    let second = session.spawn(image, None).unwrap();

    let (class, padded) = fault_class(&mut session, first, 0x0040_1000, Access::Execute);
    assert_eq!(class, FaultClass::ImageFrame);
    let (class, copied) = fault_class(&mut session, first, 0x0060_0000, Access::Read);
    assert_eq!(class, FaultClass::NewFrame(FrameContent::Mixed));
    let FrameRef::Pool(pool) = copied else { panic!("a copied page is a pool frame") };
    let in_use = session.pager.frame_counts().in_use;

    session.share(first, 0x0040_1000, second, 0x1040_0000).unwrap();
    session.share(first, 0x0060_0000, second, 0x1060_0000).unwrap();
    let text_shared = area_shared(&session, first, 0x0040_1000).unwrap();
    let rodata_shared = area_shared(&session, first, 0x0060_0000).unwrap();
    assert_eq!(session.pager.pagemap_len(text_shared), Some(0), "the padded page is the image's frame");
    assert_eq!(session.pager.pagemap_len(rodata_shared), Some(1));
    assert_eq!(session.pager.frame_references(pool), 2, "mapping + pagemap");

    let (class, frame) = fault_class(&mut session, second, 0x1040_1000, Access::Read);
    assert_eq!((class, frame), (FaultClass::ImageFrame, padded));
    let (class, frame) = fault_class(&mut session, second, 0x1060_0000, Access::Read);
    assert_eq!((class, frame), (FaultClass::SharedHit, copied));
    assert_eq!(session.pager.frame_counts().in_use, in_use, "no frame for either");
    let read = session.read(second, 0x1040_1000, 4096).unwrap();
    let want: Vec<u8> =
        (0..4096u64).map(|offset| builder.expected_byte(0x0040_1000 + offset).unwrap()).collect();
    assert_eq!(read, want);
    session.remove_client(first).unwrap();
    session.remove_client(second).unwrap();
    assert_eq!(session.pager.frame_counts().in_use, 0);
    assert_clean(&session);
}
