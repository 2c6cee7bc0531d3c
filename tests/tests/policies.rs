//! The policies' own cases on the model kernel: zero-page sharing and its upgrade on the first write
//! (seL4's error code 0x7), copy-on-write of writable segment pages between instances, per-area rules
//! from an app's table, and that a write to a read-only area is still refused under every policy.

#![forbid(unsafe_code)]

use std::collections::HashMap;

use pager::{
    Access, AppPolicy, AreaKind, BuiltinPolicy, ClientId, FaultClass, FrameRef, Mode, PageRule, PagerConfig,
    PolicyKind, RefusalReason, Rights,
};
use pager_tests::reference::*;
use pager_tests::{pattern, reference_boot_image, session_with, REFERENCE_FILE};
use proptest::prelude::*;
use sim::{ModelConfig, Session};

const PAGE: u64 = 4096;
const HEAP: u64 = 0x1000_0000;
const HEAP_PAGES: u64 = 8;

fn session(boot: &sim::BootImage, policy: BuiltinPolicy) -> Session<'_, BuiltinPolicy> {
    session_with(boot, PagerConfig::default(), ModelConfig::default(), policy)
}

/// A client of the reference executable with a heap.
fn spawn(session: &mut Session<'_, BuiltinPolicy>) -> ClientId {
    let client = session.spawn(session.image(REFERENCE_FILE), None).expect("spawn");
    session.pager.add_anonymous(client, HEAP, HEAP_PAGES * PAGE, Rights::READ_WRITE, AreaKind::Heap).unwrap();
    client
}

fn class(
    session: &mut Session<'_, BuiltinPolicy>,
    client: ClientId,
    address: u64,
    access: Access,
) -> FaultClass {
    session.touch(client, address, access).expect("served").fault.expect("a fault").class
}

/// Tears every client down and checks the accounting: no frame in use, the zero frame pinned.
fn tear_down(mut session: Session<'_, BuiltinPolicy>, clients: &[ClientId]) {
    for &client in clients {
        session.remove_client(client).unwrap();
    }
    let counts = session.pager.frame_counts();
    assert_eq!(counts.in_use, 0);
    assert_eq!(counts.free + counts.pinned, counts.created);
    assert_eq!(session.pager.copy_slots_in_use(), 0);
    assert_eq!(session.kernel.live_copies(), 0);
    assert_eq!(session.kernel.violations(), &[]);
}

#[test]
fn zero_page_reads_share_one_frame_and_the_first_write_upgrades() {
    let boot = reference_boot_image();
    let mut session = session(&boot, BuiltinPolicy::Named(Mode::ZeroPage));
    let (a, b) = (spawn(&mut session), spawn(&mut session));
    for page in 0..4 {
        assert_eq!(class(&mut session, a, HEAP + page * PAGE, Access::Read), FaultClass::ZeroShared);
    }
    assert_eq!(class(&mut session, b, HEAP, Access::Read), FaultClass::ZeroShared);
    // The .bss pages of a writable segment are zero pages too.
    assert_eq!(class(&mut session, a, DATA + 3 * PAGE, Access::Read), FaultClass::ZeroShared);
    let zero = FrameRef::Pool(session.pager.zero_frame().expect("made"));
    assert_eq!(session.kernel.mappings_of(zero).len(), 6);
    assert!(session.kernel.mappings_of(zero).iter().all(|m| !m.rights.write));
    // Reads cost no frame of the client's.
    assert_eq!(session.pager.client(a).unwrap().frames_charged(), 0);
    assert_eq!(session.pager.frame_counts().in_use, 0);
    assert_eq!(session.pager.frame_counts().pinned, 1);

    // The write finds the page present and read-only: 0x7, an upgrade to a fresh frame.
    assert_eq!(class(&mut session, a, HEAP + PAGE, Access::Write), FaultClass::Upgrade);
    session.write(a, HEAP + PAGE + 5, &[42]).unwrap();
    assert_eq!(session.read(a, HEAP + PAGE + 5, 1).unwrap(), [42]);
    assert_eq!(session.read(b, HEAP + PAGE + 5, 1).unwrap(), [0], "b's page is its own");
    assert_eq!(session.read(a, HEAP + 5, 1).unwrap(), [0], "the zero frame stays zero");
    assert_eq!(session.kernel.frame_contents(zero).unwrap(), &[0u8; PAGE as usize][..]);
    assert_eq!(session.pager.client(a).unwrap().frames_charged(), 1);
    assert_eq!(session.kernel.mappings_of(zero).len(), 6, "a lost one, b read another");
    // A write to an untouched page takes a frame at once, as the seed does.
    assert_eq!(
        class(&mut session, a, HEAP + 6 * PAGE, Access::Write),
        FaultClass::NewFrame(pager::FrameContent::Zero)
    );
    let faults = session.pager.client(a).unwrap().faults();
    assert_eq!((faults.zero_shared, faults.upgrade, faults.zero), (5, 1, 1));
    tear_down(session, &[a, b]);
}

#[test]
fn cow_shares_the_image_frame_until_a_write_copies_it() {
    let boot = reference_boot_image();
    let mut session = session(&boot, BuiltinPolicy::Named(Mode::Cow));
    let (a, b) = (spawn(&mut session), spawn(&mut session));
    let copy_page = DATA - 0x10 + PAGE; // wholly in the file
    assert_eq!(class(&mut session, a, copy_page, Access::Read), FaultClass::ImageFrame);
    assert_eq!(class(&mut session, b, copy_page, Access::Read), FaultClass::ImageFrame);
    let frame = session.kernel.mapping(a, copy_page).unwrap().frame;
    assert!(matches!(frame, FrameRef::Image(_)));
    assert_eq!(session.kernel.mapping(b, copy_page).unwrap().frame, frame, "one frame for both");
    assert_eq!(class(&mut session, a, copy_page, Access::Write), FaultClass::CowCopy);
    let data = pattern(3, DATA_FILE_SIZE as usize);
    let in_file = (copy_page - DATA) as usize;
    session.write(a, copy_page, &[!data[in_file]]).unwrap();
    assert_eq!(session.read(b, copy_page, 1).unwrap(), [data[in_file]], "a's write is a's alone");
    assert_eq!(session.read(a, copy_page + 1, 1).unwrap(), [data[in_file + 1]], "the copy holds the file");
    // Mixed pages are copied as the seed copies them; zero pages share the zero frame.
    assert_eq!(
        class(&mut session, a, DATA - 0x10, Access::Read),
        FaultClass::NewFrame(pager::FrameContent::Mixed)
    );
    assert_eq!(class(&mut session, a, DATA - 0x10 + 3 * PAGE, Access::Read), FaultClass::ZeroShared);
    assert_eq!(class(&mut session, a, DATA - 0x10 + 3 * PAGE, Access::Write), FaultClass::Upgrade);
    tear_down(session, &[a, b]);
}

#[test]
fn a_write_to_a_read_only_area_is_refused_under_every_policy() {
    let boot = reference_boot_image();
    for mode in Mode::ALL {
        let mut session = session(&boot, BuiltinPolicy::of_mode(mode, 2));
        let client = spawn(&mut session);
        session.start(client).unwrap();
        for base in [TEXT, RODATA] {
            // Present and read-only after a read: the write comes with error code 0x7 all the same.
            session.read(client, base, 1).unwrap();
            let refusal = session.touch(client, base, Access::Write).unwrap_err();
            let reason = refusal.refusal().map(|r| r.reason);
            assert!(matches!(reason, Some(RefusalReason::WriteToReadOnly { .. })), "{mode:?}: {reason:?}");
        }
        tear_down(session, &[client]);
    }
}

#[test]
fn an_app_table_sets_rules_per_area_kind() {
    let boot = reference_boot_image();
    let mut session = session(&boot, BuiltinPolicy::Seed);
    let client = spawn(&mut session);
    let mut table = AppPolicy::default();
    table.kinds[PolicyKind::Data as usize] = PageRule::new(Mode::Cow, 0);
    table.kinds[PolicyKind::Bss as usize] = PageRule::new(Mode::ZeroPage, 0);
    table.kinds[PolicyKind::Heap as usize] = PageRule::new(Mode::FaultAround, 3);
    session.pager.apply_app_policy(client, &table).unwrap();
    let areas = session.pager.client(client).unwrap().areas();
    let data = areas.iter().find(|a| a.kind() == AreaKind::Segment(DATA_SEGMENT)).unwrap();
    assert_eq!(data.policy().describe().to_string(), "cow/zero-page");
    let text = areas.iter().find(|a| a.kind() == AreaKind::Segment(TEXT_SEGMENT)).unwrap();
    assert_eq!(text.policy().describe().to_string(), "seed");
    assert_eq!(class(&mut session, client, DATA - 0x10 + PAGE, Access::Read), FaultClass::ImageFrame);
    assert_eq!(class(&mut session, client, DATA - 0x10 + 4 * PAGE, Access::Read), FaultClass::ZeroShared);
    let served = session.touch(client, HEAP, Access::Read).unwrap().fault.unwrap();
    assert_eq!((served.class, served.pages_mapped), (FaultClass::NewFrame(pager::FrameContent::Zero), 4));
    tear_down(session, &[client]);
}

/// One step of the interleaving: a client reads or writes one byte of a data or heap page.
#[derive(Clone, Copy, Debug)]
struct Step {
    client: usize,
    page: u64,
    offset: u64,
    write: Option<u8>,
}

fn step(clients: usize) -> impl Strategy<Value = Step> {
    (0..clients, 0u64..5 + HEAP_PAGES, 0u64..PAGE, prop::option::of(any::<u8>()))
        .prop_map(|(client, page, offset, write)| Step { client, page, offset, write })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// N instances under cow (or zero-page): whatever the interleaving of reads and writes, each reads
    /// the file or its own writes, never another's; no image frame is ever writable; nothing leaks.
    #[test]
    fn instances_never_see_each_others_writes(
        cow in any::<bool>(),
        steps in prop::collection::vec(step(4), 1..120),
    ) {
        let boot = reference_boot_image();
        let mode = if cow { Mode::Cow } else { Mode::ZeroPage };
        let mut session = session(&boot, BuiltinPolicy::Named(mode));
        let clients: Vec<ClientId> = (0..4).map(|_| spawn(&mut session)).collect();
        let file = pattern(3, DATA_FILE_SIZE as usize);
        let mut written: HashMap<(usize, u64), u8> = HashMap::new();
        for Step { client, page, offset, write } in steps {
            // Pages 0..5 of the data segment (mixed, copy, mixed, zero, zero), then the heap.
            let address = if page < 5 { DATA - 0x10 + page * PAGE + offset } else { HEAP + (page - 5) * PAGE + offset };
            let id = clients[client];
            match write {
                Some(byte) => {
                    session.write(id, address, &[byte]).unwrap();
                    written.insert((client, address), byte);
                }
                None => {
                    let expected = written.get(&(client, address)).copied().unwrap_or_else(|| {
                        address.checked_sub(DATA).and_then(|i| file.get(i as usize).copied()).filter(|_| page < 5).unwrap_or(0)
                    });
                    prop_assert_eq!(session.read(id, address, 1).unwrap(), vec![expected], "{:?} at {:#x}", id, address);
                }
            }
            for (frame, mappings) in session.kernel.writable_frames() {
                prop_assert!(matches!(frame, FrameRef::Pool(_)));
                prop_assert_eq!(mappings.len(), 1, "a writable frame mapped twice");
            }
            prop_assert_eq!(session.kernel.violations(), &[]);
        }
        tear_down(session, &clients);
    }
}

#[test]
fn eager_for_data_alone_maps_only_the_pages_holding_file_bytes() {
    let boot = reference_boot_image();
    let mut session = session(&boot, BuiltinPolicy::Seed);
    let client = spawn(&mut session);
    let mut table = AppPolicy::default();
    table.kinds[PolicyKind::Data as usize] = PageRule::new(Mode::Eager, 0);
    session.pager.apply_app_policy(client, &table).unwrap();
    // The data segment's pages 0 to 2 (mixed, copy, mixed) and the small segment's one page; not
    // the data segment's two .bss pages, nor the pure .bss segment.
    assert_eq!(session.start(client).unwrap(), 4);
    assert!(session.kernel.mapping(client, DATA - 0x10 + 2 * PAGE).is_some());
    assert!(session.kernel.mapping(client, DATA - 0x10 + 3 * PAGE).is_none());
    assert!(session.kernel.mapping(client, BSS).is_none());
    tear_down(session, &[client]);
}

#[test]
fn an_area_holding_pages_read_only_first_is_not_shared_and_a_shared_one_serves_as_the_seed() {
    let boot = reference_boot_image();
    let mut session = session(&boot, BuiltinPolicy::Named(Mode::ZeroPage));
    let (a, b) = (spawn(&mut session), spawn(&mut session));
    assert_eq!(class(&mut session, a, HEAP, Access::Read), FaultClass::ZeroShared);
    let refused = session.share(a, HEAP, b, 0x2000_0000).unwrap_err();
    assert_eq!(refused, pager::ShareError::ReadOnlyFirst { area: AreaKind::Heap });
    // Once written, the page is a's own frame: the area can be shared, and from then on a read
    // takes a frame for the pagemap, as under the seed.
    session.write(a, HEAP, &[7]).unwrap();
    session.share(a, HEAP, b, 0x2000_0000).unwrap();
    assert_eq!(session.read(b, 0x2000_0000, 1).unwrap(), [7]);
    assert_eq!(
        class(&mut session, b, 0x2000_0000 + PAGE, Access::Read),
        FaultClass::NewFrame(pager::FrameContent::Zero)
    );
    session.write(b, 0x2000_0000 + PAGE, &[9]).unwrap();
    assert_eq!(session.read(a, HEAP + PAGE, 1).unwrap(), [9], "one frame for both through the pagemap");
    tear_down(session, &[a, b]);
}

#[test]
fn will_need_resolves_by_the_area_policy() {
    let boot = reference_boot_image();
    let mut session = session(&boot, BuiltinPolicy::Named(Mode::ZeroPage));
    let client = spawn(&mut session);
    // As read faults would be served under zero-page: the shared zero frame, read-only, no frame
    // of the client's.
    assert_eq!(session.advise(client, HEAP, 4 * PAGE, pager::Advice::WillNeed), Ok(4));
    let zero = FrameRef::Pool(session.pager.zero_frame().expect("made"));
    assert_eq!(session.kernel.mappings_of(zero).len(), 4);
    assert_eq!(session.pager.client(client).unwrap().frames_charged(), 0);
    assert_eq!(session.read(client, HEAP + 3 * PAGE, 8).unwrap(), [0; 8], "mapped: no fault, zeroes");
    // The first write still upgrades to a frame of its own.
    assert_eq!(class(&mut session, client, HEAP + PAGE, Access::Write), FaultClass::Upgrade);
    assert_eq!(session.pager.client(client).unwrap().frames_charged(), 1);
    tear_down(session, &[client]);
}
