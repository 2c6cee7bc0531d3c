//! The model kernel catches every rule it promises to, with seL4's error codes; and the ELF builder and
//! boot image lay files out as the pager expects. Without these, "no violations" would prove nothing.

#![forbid(unsafe_code)]

use pager::platform::{CopyFrameCaps, FrameWindow, MapPages, MappingCap, RetypeFrames};
use pager::{
    ClientId, CopySlot, ElfError, ElfImage, FrameRef, ImagePage, KernelError, MapError, PagingLevel,
    PoolFrame, Rights,
};
use sim::elf::{ElfBuilder, FLAGS_RW, FLAGS_RX};
use sim::kernel::error_code;
use sim::{BootImage, MemoryFault, MemoryFaultKind, ModelConfig, ModelKernel, Violation};

const CLIENT: ClientId = ClientId(3);
const OTHER: ClientId = ClientId(4);
const VADDR: u64 = 0x0040_2000;

fn kernel_with_image() -> ModelKernel {
    let mut image = vec![0xaa; 4096];
    image.extend_from_slice(&[0xbb; 100]);
    ModelKernel::new(ModelConfig::default(), &image)
}

/// Creates the three paging structures covering `vaddr` in `client`.
fn map_levels(kernel: &mut ModelKernel, client: ClientId, vaddr: u64) {
    for level in [PagingLevel::Pdpt, PagingLevel::PageDirectory, PagingLevel::PageTable] {
        kernel.map_paging_structure(client, vaddr, level).unwrap();
    }
}

#[test]
fn retype_creates_frames_in_order_and_stops_at_the_budget() {
    let mut kernel = ModelKernel::new(ModelConfig::with_untyped_frames(5), &[]);
    assert_eq!(kernel.retype_frames(PoolFrame(0), 3), Ok(3));
    // Fewer than asked when the untyped runs short, then nothing.
    assert_eq!(kernel.retype_frames(PoolFrame(3), 3), Ok(2));
    assert_eq!(kernel.retype_frames(PoolFrame(5), 1), Err(KernelError::OutOfMemory));
    assert_eq!(kernel.frames_created(), 5);
    assert_eq!(kernel.violations(), &[]);
    assert_eq!(kernel.untyped_bytes_left(), 0);
}

#[test]
fn retype_draws_on_one_untyped_object_at_a_time() {
    let config = ModelConfig { untyped_object_frames: Some(4), ..ModelConfig::with_untyped_frames(10) };
    let mut kernel = ModelKernel::new(config, &[]);
    assert_eq!(kernel.retype_frames(PoolFrame(0), 3), Ok(3));
    assert_eq!(kernel.retype_frames(PoolFrame(3), 3), Ok(1), "the rest of the first object");
    assert_eq!(kernel.retype_frames(PoolFrame(4), 8), Ok(4));
    assert_eq!(kernel.retype_frames(PoolFrame(8), 8), Ok(2));
}

#[test]
fn retype_out_of_order_or_twice_is_a_violation() {
    let mut kernel = ModelKernel::new(ModelConfig::default(), &[]);
    kernel.retype_frames(PoolFrame(0), 2).unwrap();
    let twice = kernel.retype_frames(PoolFrame(1), 1);
    assert_eq!(twice, Err(KernelError::Failed(error_code::DELETE_FIRST)));
    let gap = kernel.retype_frames(PoolFrame(5), 1);
    assert_eq!(gap, Err(KernelError::Failed(error_code::INVALID_ARGUMENT)));
    let none = kernel.retype_frames(PoolFrame(2), 0);
    assert_eq!(none, Err(KernelError::Failed(error_code::RANGE_ERROR)));
    assert_eq!(
        kernel.violations(),
        &[
            Violation::RetypeOutOfOrder { expected: PoolFrame(2), asked: PoolFrame(1) },
            Violation::RetypeOutOfOrder { expected: PoolFrame(2), asked: PoolFrame(5) },
            Violation::RetypeCount { count: 0 },
        ]
    );
    assert_eq!(kernel.frames_created(), 2);
}

#[test]
fn copies_go_into_empty_slots_only_and_deleting_nothing_is_flagged() {
    let mut kernel = kernel_with_image();
    kernel.retype_frames(PoolFrame(0), 1).unwrap();
    kernel.copy_frame_cap(FrameRef::Pool(PoolFrame(0)), CopySlot(7)).unwrap();
    let occupied = kernel.copy_frame_cap(FrameRef::Image(ImagePage(0)), CopySlot(7));
    assert_eq!(occupied, Err(KernelError::Failed(error_code::DELETE_FIRST)));
    let missing = kernel.copy_frame_cap(FrameRef::Pool(PoolFrame(1)), CopySlot(8));
    assert_eq!(missing, Err(KernelError::Failed(error_code::FAILED_LOOKUP)));
    let past_image = kernel.copy_frame_cap(FrameRef::Image(ImagePage(2)), CopySlot(8));
    assert_eq!(past_image, Err(KernelError::Failed(error_code::FAILED_LOOKUP)));
    kernel.delete_copy(CopySlot(7)).unwrap();
    assert_eq!(kernel.delete_copy(CopySlot(7)), Err(KernelError::Failed(error_code::INVALID_CAPABILITY)));
    assert_eq!(
        kernel.violations(),
        &[
            Violation::CopyIntoOccupiedSlot { slot: CopySlot(7), frame: FrameRef::Image(ImagePage(0)) },
            Violation::CopyOfMissingFrame { frame: FrameRef::Pool(PoolFrame(1)) },
            Violation::CopyOfMissingFrame { frame: FrameRef::Image(ImagePage(2)) },
            Violation::DeleteOfEmptySlot { slot: CopySlot(7) },
        ]
    );
    assert_eq!(kernel.live_copies(), 0);
}

#[test]
fn a_map_names_the_first_missing_level_and_structures_go_top_down() {
    let mut kernel = kernel_with_image();
    kernel.create_address_space(CLIENT);
    kernel.copy_frame_cap(FrameRef::Image(ImagePage(0)), CopySlot(0)).unwrap();
    let map = |kernel: &mut ModelKernel| {
        kernel.map_page(CLIENT, VADDR, MappingCap::Copy(CopySlot(0)), Rights::READ)
    };
    assert_eq!(map(&mut kernel), Err(MapError::MissingLevel(PagingLevel::Pdpt)));
    // A table below a missing directory is refused.
    let early = kernel.map_paging_structure(CLIENT, VADDR, PagingLevel::PageTable);
    assert_eq!(early, Err(KernelError::Failed(error_code::FAILED_LOOKUP)));
    kernel.map_paging_structure(CLIENT, VADDR, PagingLevel::Pdpt).unwrap();
    assert_eq!(map(&mut kernel), Err(MapError::MissingLevel(PagingLevel::PageDirectory)));
    kernel.map_paging_structure(CLIENT, VADDR, PagingLevel::PageDirectory).unwrap();
    assert_eq!(map(&mut kernel), Err(MapError::MissingLevel(PagingLevel::PageTable)));
    kernel.map_paging_structure(CLIENT, VADDR, PagingLevel::PageTable).unwrap();
    let twice = kernel.map_paging_structure(CLIENT, VADDR + 0x1000, PagingLevel::PageTable);
    assert_eq!(twice, Err(KernelError::Failed(error_code::DELETE_FIRST)));
    assert_eq!(map(&mut kernel), Ok(()));
    // The table covers 2 MiB: the next 2 MiB needs its own; the directory covers 1 GiB.
    assert!(kernel.has_paging_structure(CLIENT, 0x0040_0000, PagingLevel::PageTable));
    assert!(!kernel.has_paging_structure(CLIENT, 0x0060_0000, PagingLevel::PageTable));
    assert!(kernel.has_paging_structure(CLIENT, 0x3fff_f000, PagingLevel::PageDirectory));
    assert!(!kernel.has_paging_structure(CLIENT, 0x4000_0000, PagingLevel::PageDirectory));
    assert!(!kernel.has_paging_structure(OTHER, VADDR, PagingLevel::Pdpt));
    assert_eq!(kernel.paging_structures(CLIENT), 3);
    assert_eq!(
        kernel.violations(),
        &[
            Violation::PagingStructureAboveMissing {
                client: CLIENT,
                vaddr: VADDR,
                level: PagingLevel::PageTable
            },
            Violation::PagingStructureExists {
                client: CLIENT,
                vaddr: VADDR + 0x1000,
                level: PagingLevel::PageTable
            },
        ]
    );
    assert_eq!(kernel.counters().missing_level_failures, 3);
}

#[test]
fn a_copy_maps_in_one_place_and_an_address_holds_one_page() {
    let mut kernel = kernel_with_image();
    kernel.retype_frames(PoolFrame(0), 2).unwrap();
    kernel.create_address_space(CLIENT);
    kernel.create_address_space(OTHER);
    map_levels(&mut kernel, CLIENT, VADDR);
    map_levels(&mut kernel, OTHER, VADDR);
    kernel.copy_frame_cap(FrameRef::Pool(PoolFrame(0)), CopySlot(0)).unwrap();
    kernel.copy_frame_cap(FrameRef::Pool(PoolFrame(1)), CopySlot(1)).unwrap();
    kernel.map_page(CLIENT, VADDR, MappingCap::Copy(CopySlot(0)), Rights::READ_WRITE).unwrap();
    // The same copy again, even into another client: refused.
    let again = kernel.map_page(OTHER, VADDR, MappingCap::Copy(CopySlot(0)), Rights::READ_WRITE);
    assert_eq!(again, Err(MapError::Kernel(KernelError::Failed(error_code::INVALID_CAPABILITY))));
    // Another frame over the mapped address: refused.
    let over = kernel.map_page(CLIENT, VADDR, MappingCap::Copy(CopySlot(1)), Rights::READ_WRITE);
    assert_eq!(over, Err(MapError::Kernel(KernelError::Failed(error_code::DELETE_FIRST))));
    let unaligned = kernel.map_page(CLIENT, VADDR + 8, MappingCap::Copy(CopySlot(1)), Rights::READ);
    assert_eq!(unaligned, Err(MapError::Kernel(KernelError::Failed(error_code::ALIGNMENT_ERROR))));
    let empty = kernel.map_page(CLIENT, VADDR + 0x1000, MappingCap::Copy(CopySlot(9)), Rights::READ);
    assert_eq!(empty, Err(MapError::Kernel(KernelError::Failed(error_code::INVALID_CAPABILITY))));
    let nobody = kernel.map_page(ClientId(9), VADDR, MappingCap::Copy(CopySlot(1)), Rights::READ);
    assert_eq!(nobody, Err(MapError::Kernel(KernelError::Failed(error_code::INVALID_CAPABILITY))));
    assert_eq!(
        kernel.violations(),
        &[
            Violation::MapOfMappedCopy { slot: CopySlot(0), client: OTHER, vaddr: VADDR },
            Violation::MapOverMapping { client: CLIENT, vaddr: VADDR },
            Violation::MapUnaligned { client: CLIENT, vaddr: VADDR + 8 },
            Violation::MapOfEmptySlot { slot: CopySlot(9) },
            Violation::NoAddressSpace { client: ClientId(9) },
        ]
    );
    assert_eq!(kernel.writable_mappers(FrameRef::Pool(PoolFrame(0))), [CLIENT]);
}

#[test]
fn deleting_a_mapped_copy_unmaps_it_first_and_unmapping_keeps_the_copy() {
    let mut kernel = kernel_with_image();
    kernel.retype_frames(PoolFrame(0), 1).unwrap();
    kernel.create_address_space(CLIENT);
    map_levels(&mut kernel, CLIENT, VADDR);
    let frame = FrameRef::Pool(PoolFrame(0));
    kernel.copy_frame_cap(frame, CopySlot(0)).unwrap();
    kernel.map_page(CLIENT, VADDR, MappingCap::Copy(CopySlot(0)), Rights::READ).unwrap();
    kernel.unmap_page(MappingCap::Copy(CopySlot(0))).unwrap();
    assert!(kernel.mapping(CLIENT, VADDR).is_none());
    assert_eq!(kernel.copies_of(frame), 1);
    // Unmapped copies map again; deleting then unmaps.
    kernel.map_page(CLIENT, VADDR, MappingCap::Copy(CopySlot(0)), Rights::READ).unwrap();
    kernel.delete_copy(CopySlot(0)).unwrap();
    assert!(kernel.mapping(CLIENT, VADDR).is_none());
    assert_eq!(kernel.copies_of(frame), 0);
    assert_eq!(
        kernel.unmap_page(MappingCap::Copy(CopySlot(0))),
        Err(KernelError::Failed(error_code::INVALID_CAPABILITY))
    );
    assert_eq!(kernel.violations(), &[Violation::UnmapOfEmptySlot { slot: CopySlot(0) }]);
}

#[test]
fn deleting_a_mapped_copy_without_unmapping_leaves_the_mapping_as_sel4_5_0_does() {
    let mut kernel = kernel_with_image();
    kernel.retype_frames(PoolFrame(0), 1).unwrap();
    kernel.map_window(PoolFrame(0)).unwrap();
    kernel.create_address_space(CLIENT);
    map_levels(&mut kernel, CLIENT, VADDR);
    let frame = FrameRef::Pool(PoolFrame(0));
    kernel.write_frame(PoolFrame(0), 0, b"secret");
    kernel.copy_frame_cap(frame, CopySlot(0)).unwrap();
    kernel.map_page(CLIENT, VADDR, MappingCap::Copy(CopySlot(0)), Rights::READ).unwrap();
    // The bare delete (no unmap first): a copy is never the frame's last cap, so the page stays
    // mapped, and the client still reads the frame though no cap accounts for the mapping.
    kernel.delete_copy_in_teardown(CopySlot(0)).unwrap();
    assert_eq!(kernel.copies_of(frame), 0);
    let stale = kernel.mapping(CLIENT, VADDR).expect("the mapping outlives its copy");
    assert!(stale.stale);
    assert_eq!(kernel.stale_mappings(), [stale]);
    assert_eq!(kernel.mappings_of(frame), [stale]);
    assert_eq!(kernel.read(CLIENT, VADDR, 6), Ok(b"secret".to_vec()));
    // The pager, thinking the frame free, fills it for someone else: this client sees it.
    kernel.write_frame(PoolFrame(0), 0, b"other!");
    assert_eq!(kernel.read(CLIENT, VADDR, 6), Ok(b"other!".to_vec()));
    // A new copy cannot map over the stale entry either (seL4: DeleteFirst).
    kernel.copy_frame_cap(frame, CopySlot(1)).unwrap();
    let over = kernel.map_page(CLIENT, VADDR, MappingCap::Copy(CopySlot(1)), Rights::READ);
    assert_eq!(over, Err(MapError::Kernel(KernelError::Failed(error_code::DELETE_FIRST))));
    assert_eq!(
        kernel.violations(),
        &[
            Violation::WindowOnStaleMapping { frame: PoolFrame(0), client: CLIENT, vaddr: VADDR },
            Violation::MapOverMapping { client: CLIENT, vaddr: VADDR },
        ]
    );
}

#[test]
fn destroying_the_space_removes_stale_mappings_but_flags_live_ones() {
    let mut kernel = kernel_with_image();
    kernel.retype_frames(PoolFrame(0), 2).unwrap();
    kernel.map_window(PoolFrame(0)).unwrap();
    kernel.create_address_space(CLIENT);
    map_levels(&mut kernel, CLIENT, VADDR);
    for n in 0..2 {
        kernel.copy_frame_cap(FrameRef::Pool(PoolFrame(n)), CopySlot(n)).unwrap();
        kernel
            .map_page(CLIENT, VADDR + u64::from(n) * 4096, MappingCap::Copy(CopySlot(n)), Rights::READ_WRITE)
            .unwrap();
    }
    // Teardown's order: the copy goes without an unmap, then the space.
    kernel.delete_copy_in_teardown(CopySlot(0)).unwrap();
    assert_eq!(kernel.stale_mappings().len(), 1);
    kernel.destroy_address_space(CLIENT);
    assert!(kernel.stale_mappings().is_empty());
    assert!(kernel.mappings_of(FrameRef::Pool(PoolFrame(0))).is_empty());
    // The frame is free to fill again; the copy the pager forgot (slot 1) is the only violation.
    kernel.write_frame(PoolFrame(0), 0, &[1]);
    assert_eq!(kernel.copies_of(FrameRef::Pool(PoolFrame(1))), 1);
    assert_eq!(
        kernel.violations(),
        &[Violation::AddressSpaceDestroyedWithMappings { client: CLIENT, mappings: 1 }]
    );
}

#[test]
fn memory_goes_through_mappings_and_honours_rights() {
    let mut kernel = kernel_with_image();
    kernel.retype_frames(PoolFrame(0), 1).unwrap();
    kernel.create_address_space(CLIENT);
    map_levels(&mut kernel, CLIENT, VADDR);
    kernel.copy_frame_cap(FrameRef::Image(ImagePage(1)), CopySlot(0)).unwrap();
    kernel.copy_frame_cap(FrameRef::Pool(PoolFrame(0)), CopySlot(1)).unwrap();
    kernel.map_page(CLIENT, VADDR, MappingCap::Copy(CopySlot(0)), Rights::READ_EXECUTE).unwrap();
    kernel.map_page(CLIENT, VADDR + 0x1000, MappingCap::Copy(CopySlot(1)), Rights::READ_WRITE).unwrap();
    // Image page 1 is the 100 bytes of 0xbb padded with zeroes.
    assert_eq!(kernel.read(CLIENT, VADDR + 98, 4), Ok(vec![0xbb, 0xbb, 0, 0]));
    let read_only = kernel.write(CLIENT, VADDR + 0xff0, &[1; 0x20]);
    assert_eq!(read_only, Err(MemoryFault { address: VADDR + 0xff0, kind: MemoryFaultKind::ReadOnly }));
    assert_eq!(kernel.read(CLIENT, VADDR + 0x1000, 1), Ok(vec![0]), "nothing written by the failed write");
    kernel.write(CLIENT, VADDR + 0x1ffe, &[5, 6]).unwrap();
    assert_eq!(kernel.frame_contents(FrameRef::Pool(PoolFrame(0))).unwrap()[0xffe..], [5, 6]);
    let unmapped = kernel.read(CLIENT, VADDR + 0x1ffe, 4);
    assert_eq!(unmapped, Err(MemoryFault { address: VADDR + 0x2000, kind: MemoryFaultKind::NotMapped }));
    assert_eq!(kernel.check_access(OTHER, VADDR, false).unwrap_err().kind, MemoryFaultKind::NotMapped);
    assert_eq!(kernel.violations(), &[]);
}

#[test]
fn product_rules_are_flagged_even_where_the_kernel_would_comply() {
    let mut kernel = kernel_with_image();
    kernel.retype_frames(PoolFrame(0), 1).unwrap();
    kernel.create_address_space(CLIENT);
    map_levels(&mut kernel, CLIENT, VADDR);
    kernel.copy_frame_cap(FrameRef::Image(ImagePage(0)), CopySlot(0)).unwrap();
    kernel.map_page(CLIENT, VADDR, MappingCap::Copy(CopySlot(0)), Rights::READ_WRITE).unwrap();
    // Mapped as asked (seL4 would), so the damage is visible in the boot image.
    kernel.write(CLIENT, VADDR, &[1]).unwrap();
    assert_eq!(kernel.frame_contents(FrameRef::Image(ImagePage(0))).unwrap()[0], 1);
    kernel.copy_frame_cap(FrameRef::Pool(PoolFrame(0)), CopySlot(1)).unwrap();
    kernel.map_window(PoolFrame(0)).unwrap();
    kernel.write_frame(PoolFrame(0), 0, &[1, 2]);
    kernel.zero_frame(PoolFrame(0), 4000, 200);
    kernel.zero_frame(PoolFrame(1), 0, 1);
    kernel.destroy_address_space(CLIENT);
    kernel.create_address_space(OTHER);
    kernel.create_address_space(OTHER);
    assert_eq!(
        kernel.violations(),
        &[
            Violation::ImageFrameMappedWritable { client: CLIENT, vaddr: VADDR, page: ImagePage(0) },
            Violation::WindowOnLiveFrame { frame: PoolFrame(0) },
            Violation::WindowOutOfFrame { frame: PoolFrame(0), offset: 4000, length: 200 },
            Violation::WindowOnMissingFrame { frame: PoolFrame(1) },
            Violation::AddressSpaceDestroyedWithMappings { client: CLIENT, mappings: 1 },
            Violation::AddressSpaceExists { client: OTHER },
        ]
    );
}

#[test]
fn paging_structures_draw_on_the_untyped_budget() {
    let mut kernel = ModelKernel::new(ModelConfig::with_untyped_frames(3), &[]);
    kernel.create_address_space(CLIENT);
    kernel.map_paging_structure(CLIENT, VADDR, PagingLevel::Pdpt).unwrap();
    kernel.retype_frames(PoolFrame(0), 5).unwrap();
    let out = kernel.map_paging_structure(CLIENT, VADDR, PagingLevel::PageDirectory);
    assert_eq!(out, Err(KernelError::OutOfMemory));
    assert_eq!(kernel.frames_created(), 2);
    assert_eq!(kernel.violations(), &[]);
}

#[test]
fn the_builder_makes_files_the_pager_accepts_with_congruent_offsets() {
    let builder = ElfBuilder::new()
        .notes(2)
        .segment(0x0040_0123, vec![1; 0x1500], 0x1500, FLAGS_RX)
        .segment(0x0060_0ff0, vec![2; 0x30], 0x2000, FLAGS_RW)
        .segment(0x0080_0000, Vec::new(), 0x10, FLAGS_RW);
    let file = builder.build();
    let elf = ElfImage::parse(&file).expect("valid");
    assert_eq!(elf.entry(), 0x0040_0123);
    let segments: Vec<(u64, u64, u64, u64)> =
        elf.segments().iter().map(|s| (s.vaddr, s.offset, s.file_size, s.memory_size)).collect();
    for (vaddr, offset, ..) in &segments {
        assert_eq!(vaddr % 4096, offset % 4096);
    }
    assert_eq!(segments[0], (0x0040_0123, 0x123 + 0x1000, 0x1500, 0x1500));
    assert_eq!(&file[0x1123..0x1123 + 0x1500], &vec![1; 0x1500][..]);
    assert_eq!(builder.expected_byte(0x0040_0122), Some(0), "pad_lo reads zero");
    assert_eq!(builder.expected_byte(0x0060_1020), Some(0), "past the file part");
    assert_eq!(builder.expected_byte(0x0060_1000), Some(2));
    assert_eq!(builder.expected_byte(0x0070_0000), None);
}

#[test]
fn corrupted_fields_give_the_pager_s_exact_errors() {
    let builder = ElfBuilder::new().segment(0x0040_0000, vec![0x90; 0x100], 0x100, FLAGS_RX).segment(
        0x0060_0000,
        vec![1; 0x100],
        0x200,
        FLAGS_RW,
    );
    let corrupt = |change: &dyn Fn(&mut sim::ElfLayout)| {
        let mut layout = builder.layout();
        change(&mut layout);
        ElfImage::parse(&layout.to_bytes()).map(|_| ()).unwrap_err()
    };
    assert_eq!(corrupt(&|l| l.header.magic[1] = b'X'), ElfError::BadMagic);
    assert_eq!(corrupt(&|l| l.header.machine = 3), ElfError::WrongMachine { machine: 3 });
    assert_eq!(corrupt(&|l| l.header.kind = 3), ElfError::NotExecutable { kind: 3 });
    let misaligned = corrupt(&|l| l.program_headers[1].offset -= 1);
    assert!(matches!(misaligned, ElfError::MisalignedSegment { segment: 1, .. }), "{misaligned:?}");
    let too_big = corrupt(&|l| l.program_headers[1].file_size = 0x300);
    assert_eq!(
        too_big,
        ElfError::FileSizeExceedsMemorySize { segment: 1, file_size: 0x300, memory_size: 0x200 }
    );
    let high = corrupt(&|l| {
        l.program_headers[1].vaddr = 0xffff_f000;
        l.program_headers[1].memory_size = 0x2000;
    });
    assert!(matches!(high, ElfError::SegmentOutsideUserRange { segment: 1, .. }), "{high:?}");
    assert_eq!(
        corrupt(&|l| l.header.entry = 0x0060_0000),
        ElfError::EntryNotExecutable { entry: 0x0060_0000 }
    );
}

#[test]
fn the_boot_image_packs_files_on_page_boundaries() {
    let mut boot = BootImage::new();
    assert_eq!(boot.add(&[1; 10]), 0);
    assert_eq!(boot.add(&[2; 4097]), 1);
    assert_eq!(boot.add(&[3; 1]), 2);
    let pages: Vec<u32> = boot.files().iter().map(|f| f.first_page).collect();
    assert_eq!(pages, [0, 1, 3]);
    assert_eq!(boot.file(1), &[2; 4097][..]);
    assert_eq!(boot.bytes().len(), 3 * 4096 + 1);
    assert_eq!(&boot.bytes()[10..4096], &[0; 4086][..]);
    let kernel = ModelKernel::new(ModelConfig::default(), boot.bytes());
    assert_eq!(kernel.boot_image_pages(), 4);
    assert_eq!(kernel.frame_contents(FrameRef::Image(ImagePage(3))).unwrap()[..2], [3, 0]);
}

#[test]
fn a_pool_frames_own_cap_maps_once_into_a_client_or_the_window() {
    let mut kernel = kernel_with_image();
    kernel.retype_frames(PoolFrame(0), 2).unwrap();
    kernel.create_address_space(CLIENT);
    map_levels(&mut kernel, CLIENT, VADDR);
    let own = MappingCap::Own(PoolFrame(0));
    // A fresh frame mapped with its own cap: no copy, the client reads zeroes.
    kernel.map_page(CLIENT, VADDR, own, Rights::READ_WRITE).unwrap();
    assert_eq!(kernel.read(CLIENT, VADDR, 2), Ok(vec![0, 0]));
    assert_eq!(kernel.mappings_of(FrameRef::Pool(PoolFrame(0))).len(), 1);
    // That cap maps nowhere else: not into the window, not into another place.
    let invalid = KernelError::Failed(error_code::INVALID_CAPABILITY);
    assert_eq!(kernel.map_window(PoolFrame(0)), Err(invalid));
    let again = kernel.map_page(CLIENT, VADDR + 0x1000, own, Rights::READ);
    assert_eq!(again, Err(MapError::Kernel(invalid)));
    // A copy still maps it elsewhere (a shared page's other clients).
    kernel.copy_frame_cap(FrameRef::Pool(PoolFrame(0)), CopySlot(0)).unwrap();
    kernel.map_page(CLIENT, VADDR + 0x1000, MappingCap::Copy(CopySlot(0)), Rights::READ).unwrap();
    kernel.delete_copy(CopySlot(0)).unwrap();
    // Unmapped, the own cap is free again: the window can take it, for good.
    kernel.unmap_page(own).unwrap();
    assert!(kernel.mapping(CLIENT, VADDR).is_none());
    kernel.map_window(PoolFrame(0)).unwrap();
    assert!(kernel.is_windowed(PoolFrame(0)) && !kernel.is_windowed(PoolFrame(1)));
    kernel.write_frame(PoolFrame(0), 0, &[7]);
    assert_eq!(kernel.map_page(CLIENT, VADDR, own, Rights::READ), Err(MapError::Kernel(invalid)));
    // Nor may that cap be unmapped from the window, which is for good.
    assert_eq!(kernel.unmap_page(own), Err(KernelError::WindowedFrame(PoolFrame(0))));
    // The window reaches only windowed frames; a space destroyed under an own cap's mapping is
    // the pager's mistake.
    kernel.write_frame(PoolFrame(1), 0, &[7]);
    kernel.map_page(CLIENT, VADDR, MappingCap::Own(PoolFrame(1)), Rights::READ).unwrap();
    kernel.destroy_address_space(CLIENT);
    assert_eq!(
        kernel.violations(),
        &[
            Violation::OwnCapMapped { frame: PoolFrame(0) },
            Violation::OwnCapMapped { frame: PoolFrame(0) },
            Violation::OwnCapMapped { frame: PoolFrame(0) },
            Violation::UnmapOfWindowedFrame { frame: PoolFrame(0) },
            Violation::WindowNotMapped { frame: PoolFrame(1) },
            Violation::AddressSpaceDestroyedWithMappings { client: CLIENT, mappings: 1 },
        ]
    );
}
