//! The advise call against the strict model kernel: will-need, dont-need, sequential, random, and
//! the errors that never stop a client; exact frames, mappings and counts.

#![forbid(unsafe_code)]

use pager::{Access, Advice, AdviseError, AreaKind, FaultClass, PagerConfig, RefusalReason, Rights};
use pager_tests::reference::*;
use pager_tests::{default_session, pattern, reference_boot_image, session_with, REFERENCE_FILE};
use sim::{ModelConfig, Session};

const PAGE: u64 = 4096;
/// An anonymous area of 64 pages.
const HEAP: u64 = 0x1000_0000;
const HEAP_PAGES: u64 = 64;

fn client_with_heap(session: &mut Session<'_, impl pager::Policy>, budget: Option<u32>) -> pager::ClientId {
    let image = session.image(REFERENCE_FILE);
    let client = session.spawn(image, budget).expect("spawn");
    session.pager.add_anonymous(client, HEAP, HEAP_PAGES * PAGE, Rights::READ_WRITE, AreaKind::Heap).unwrap();
    client
}

fn remove_and_check(session: &mut Session<'_, impl pager::Policy>, client: pager::ClientId) {
    session.remove_client(client).expect("remove");
    assert_eq!(session.pager.frame_counts().in_use, 0);
    assert_eq!(session.pager.copy_slots_in_use(), 0);
    assert_eq!(session.kernel.violations(), &[]);
}

#[test]
fn will_need_maps_the_range_so_touching_it_takes_no_fault() {
    let boot = reference_boot_image();
    let mut session = default_session(&boot);
    let client = client_with_heap(&mut session, None);
    assert_eq!(session.advise(client, HEAP + 4 * PAGE, 8 * PAGE, Advice::WillNeed), Ok(8));
    assert_eq!(session.pager.frame_counts().in_use, 8);
    for page in 4..12 {
        let touched = session.touch(client, HEAP + page * PAGE, Access::Write).unwrap();
        assert_eq!(touched.fault, None, "page {page} was resolved ahead");
    }
    assert!(session.touch(client, HEAP + 12 * PAGE, Access::Read).unwrap().fault.is_some());
    // Asked again, nothing is left to resolve.
    assert_eq!(session.advise(client, HEAP + 4 * PAGE, 8 * PAGE, Advice::WillNeed), Ok(0));
    // A range of the image: the seed's cases, read-only text from the image's own frames.
    assert_eq!(session.advise(client, TEXT, 3 * PAGE, Advice::WillNeed), Ok(3));
    assert_eq!(session.read(client, TEXT, 16).unwrap(), pattern(1, 16));
    let heap = session.pager.client(client).unwrap().areas().iter().find(|a| a.kind() == AreaKind::Heap);
    assert_eq!(heap.unwrap().faults().zero, 9);
    remove_and_check(&mut session, client);
}

#[test]
fn dont_need_drops_the_frames_and_the_next_touch_reads_the_backing() {
    let boot = reference_boot_image();
    let mut session = default_session(&boot);
    let client = client_with_heap(&mut session, None);
    session.write(client, HEAP, &[0xAB; 3 * PAGE as usize]).unwrap();
    // The data segment's page 1 lies wholly in the file: a copy, then overwritten.
    let data_page = (DATA & !(PAGE - 1)) + PAGE;
    let original = session.read(client, data_page, PAGE as usize).unwrap();
    session.write(client, data_page, &[0xCD; PAGE as usize]).unwrap();
    assert_eq!(session.pager.frame_counts().in_use, 4);

    assert_eq!(session.advise(client, HEAP, 3 * PAGE, Advice::DontNeed), Ok(3));
    assert_eq!(session.advise(client, data_page, 1, Advice::DontNeed), Ok(1));
    assert_eq!(session.pager.frame_counts().in_use, 0, "every dropped frame went back to the pool");
    assert_eq!(session.kernel.mapping(client, HEAP), None);
    assert_eq!(session.kernel.mapping(client, data_page), None);

    let touched = session.touch(client, HEAP + PAGE, Access::Read).unwrap();
    assert_eq!(touched.fault.map(|f| f.class), Some(FaultClass::NewFrame(pager::FrameContent::Zero)));
    assert_eq!(session.read(client, HEAP, 3 * PAGE as usize).unwrap(), vec![0; 3 * PAGE as usize]);
    assert_eq!(session.read(client, data_page, PAGE as usize).unwrap(), original, "the ELF's bytes again");
    // Nothing resident: nothing dropped.
    assert_eq!(session.advise(client, HEAP + 10 * PAGE, 4 * PAGE, Advice::DontNeed), Ok(0));
    remove_and_check(&mut session, client);
}

#[test]
fn dont_need_on_a_shared_area_drops_only_the_callers_mappings() {
    let boot = reference_boot_image();
    let mut session = default_session(&boot);
    let (a, b) = (client_with_heap(&mut session, None), client_with_heap(&mut session, None));
    const REGION: u64 = 0x2000_0000;
    session
        .shared_region(4 * PAGE, &[(a, REGION, Rights::READ_WRITE), (b, REGION, Rights::READ_WRITE)])
        .unwrap();
    session.write(a, REGION, b"written by a").unwrap();
    assert_eq!(session.read(b, REGION, 12).unwrap(), b"written by a");
    assert_eq!(session.advise(a, REGION, 4 * PAGE, Advice::DontNeed), Ok(1));
    assert_eq!(session.kernel.mapping(a, REGION), None);
    assert!(session.kernel.mapping(b, REGION).is_some(), "the other client keeps its mapping");
    assert_eq!(session.pager.frame_counts().in_use, 1, "the pagemap keeps the frame");
    let touched = session.touch(a, REGION, Access::Read).unwrap();
    assert_eq!(touched.fault.map(|f| f.class), Some(FaultClass::SharedHit));
    assert_eq!(session.read(a, REGION, 12).unwrap(), b"written by a");
    session.remove_client(a).unwrap();
    remove_and_check(&mut session, b);
}

#[test]
fn sequential_turns_fault_around_on_and_random_turns_it_off() {
    let boot = reference_boot_image();
    let mut session = default_session(&boot);
    let client = client_with_heap(&mut session, None);
    assert_eq!(session.advise(client, HEAP, PAGE, Advice::Sequential), Ok(0));
    let resolution = session.fault(client, HEAP, Access::Write).unwrap();
    assert_eq!(resolution.pages_mapped, abi::advice::SEQUENTIAL_PAGES as u32);
    for page in 0..16 {
        assert!(session.kernel.mapping(client, HEAP + page * PAGE).is_some());
    }
    assert_eq!(session.kernel.mapping(client, HEAP + 16 * PAGE), None);
    // At the area's end fault-around stops there.
    assert_eq!(session.fault(client, HEAP + 60 * PAGE, Access::Read).unwrap().pages_mapped, 4);
    assert_eq!(session.advise(client, HEAP + 20 * PAGE, PAGE, Advice::Random), Ok(0));
    assert_eq!(session.fault(client, HEAP + 20 * PAGE, Access::Read).unwrap().pages_mapped, 1);
    // The advice is the area's: other areas keep the policy's choice.
    assert_eq!(session.fault(client, TEXT, Access::Execute).unwrap().pages_mapped, 1);
    remove_and_check(&mut session, client);
}

#[test]
fn a_range_outside_the_areas_is_an_error_and_changes_nothing() {
    let boot = reference_boot_image();
    let mut session = default_session(&boot);
    let client = client_with_heap(&mut session, None);
    let outside = |address| Err(AdviseError::OutsideAreas { address });
    assert_eq!(session.advise(client, 0x3000_0000, PAGE, Advice::WillNeed), outside(0x3000_0000));
    // Past the heap's end: the part inside is not resolved either.
    let end = HEAP + HEAP_PAGES * PAGE;
    assert_eq!(session.advise(client, end - PAGE, 2 * PAGE, Advice::WillNeed), outside(end));
    assert_eq!(session.advise(client, HEAP + 1, PAGE, Advice::WillNeed), Err(AdviseError::Invalid));
    assert_eq!(session.advise(client, HEAP, 0, Advice::DontNeed), Err(AdviseError::Invalid));
    assert_eq!(session.advise(client, !(PAGE - 1), PAGE, Advice::Random), outside(!(PAGE - 1)));
    assert_eq!(session.pager.frame_counts().in_use, 0);
    assert_eq!(session.kernel.mapped_pages(), 0);
    remove_and_check(&mut session, client);
}

#[test]
fn a_range_over_neighbouring_areas_and_a_guard_page() {
    let boot = reference_boot_image();
    let mut session = default_session(&boot);
    let client = client_with_heap(&mut session, None);
    // Two anonymous areas back to back: one range covers both.
    session
        .pager
        .add_anonymous(client, HEAP + HEAP_PAGES * PAGE, 4 * PAGE, Rights::READ_WRITE, AreaKind::Region(0))
        .unwrap();
    assert_eq!(session.advise(client, HEAP + 62 * PAGE, 4 * PAGE, Advice::WillNeed), Ok(4));
    // A stack's guard page is not served.
    let top = 0x3000_0000;
    session.pager.add_stack(client, top, 4 * PAGE).unwrap();
    let guard = top - 5 * PAGE;
    assert_eq!(
        session.advise(client, guard, 2 * PAGE, Advice::WillNeed),
        Err(AdviseError::OutsideAreas { address: guard })
    );
    remove_and_check(&mut session, client);
}

#[test]
fn will_need_over_budget_is_an_error_with_the_pages_resolved() {
    let boot = reference_boot_image();
    let mut session =
        session_with(&boot, PagerConfig::default(), ModelConfig::default(), pager::BuiltinPolicy::Seed);
    let client = client_with_heap(&mut session, Some(5));
    let error = session.advise(client, HEAP, 8 * PAGE, Advice::WillNeed).unwrap_err();
    assert_eq!(error, AdviseError::Unresolved { pages: 5, reason: RefusalReason::OverBudget { budget: 5 } });
    assert_eq!(error.status(), abi::advise_status::NO_MEMORY);
    // The client goes on: the five pages stay mapped.
    assert_eq!(session.read(client, HEAP + 4 * PAGE, 1).unwrap(), [0]);
    remove_and_check(&mut session, client);
}
