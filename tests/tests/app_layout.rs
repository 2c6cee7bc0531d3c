//! An app instance laid out as the root task lays it out (the app ABI's list of areas, added by
//! `Pager::add_app`), on the model kernel: the IPC buffer page is a reserved area of every client,
//! never mapped by the pager and never served, and the pager's own overlap check keeps every other
//! area, shared ones included, off it.

use abi::{AppArea, AppLayout, Attachment, Span, IPC_BUFFER_ADDRESS, IPC_BUFFER_SIZE};
use pager::{
    Access, AreaError, AreaKind, Backend, BuiltinPolicy, ClientId, PagerConfig, PagerError, RefusalReason,
    ShareError, SharedId, PAGE_SIZE,
};
use pager_tests::{reference, reference_boot_image, session_with, REFERENCE_FILE};
use sim::{ModelConfig, Session};

const HEAP: Span = Span { base: 0x5000_0000, size: 4 * PAGE_SIZE };
const STACK_TOP: u64 = 0x7000_0000;
const STACK_SIZE: u64 = 4 * PAGE_SIZE;
const RING: u64 = 0x1000_0000;

fn layout() -> AppLayout {
    AppLayout { heap: Some(HEAP), stack_top: STACK_TOP, stack_size: STACK_SIZE }
}

fn ring(region: u16) -> Attachment {
    Attachment { region, span: Span { base: RING, size: 2 * PAGE_SIZE }, writable: true }
}

/// A session with one region and `instances` instances of the reference executable laid out as
/// apps, each with the region attached.
fn apps(
    boot: &sim::BootImage,
    policy: BuiltinPolicy,
    instances: usize,
) -> (Session<'_, BuiltinPolicy>, Vec<ClientId>, SharedId) {
    let mut session = session_with(boot, PagerConfig::default(), ModelConfig::default(), policy);
    let region = session.pager.create_region().unwrap();
    let image = session.image(REFERENCE_FILE);
    let clients = (0..instances)
        .map(|_| session.spawn_app(image, None, &layout(), &[ring(0)], &[region]).unwrap())
        .collect();
    (session, clients, region)
}

fn assert_all_returned(session: &mut Session<'_, BuiltinPolicy>, clients: &[ClientId]) {
    for &client in clients {
        session.remove_client(client).unwrap();
    }
    let frames = session.pager.frame_counts();
    assert_eq!(frames.in_use, 0, "{frames:?}");
    assert_eq!(session.pager.copy_slots_in_use(), 0);
    assert!(session.kernel.violations().is_empty(), "{:?}", session.kernel.violations());
}

#[test]
fn every_area_of_the_list_is_there_and_the_ipc_buffer_page_is_reserved() {
    let boot = reference_boot_image();
    let (mut session, clients, _) = apps(&boot, BuiltinPolicy::Seed, 1);
    let areas = session.pager.client(clients[0]).unwrap().areas();
    let kinds: Vec<(AreaKind, u64, u64)> = areas.iter().map(|a| (a.kind(), a.base(), a.end())).collect();
    let segments = boot_segments(&session);
    let mut expected: Vec<(AreaKind, u64, u64)> = segments
        .iter()
        .enumerate()
        .map(|(n, span)| (AreaKind::Segment(n as u8), span.base, span.end()))
        .collect();
    expected.extend([
        (AreaKind::IpcBuffer, IPC_BUFFER_ADDRESS, IPC_BUFFER_ADDRESS + IPC_BUFFER_SIZE),
        (AreaKind::Heap, HEAP.base, HEAP.end()),
        (AreaKind::StackGuard, STACK_TOP - STACK_SIZE - PAGE_SIZE, STACK_TOP - STACK_SIZE),
        (AreaKind::Stack, STACK_TOP - STACK_SIZE, STACK_TOP),
        (AreaKind::Region(0), RING, RING + 2 * PAGE_SIZE),
    ]);
    expected.sort_by_key(|&(_, base, _)| base);
    assert_eq!(kinds, expected);
    let ipc = areas.iter().find(|a| a.kind() == AreaKind::IpcBuffer).unwrap();
    assert_eq!(ipc.backend(), Backend::Reserved);
    assert_all_returned(&mut session, &clients);
}

fn boot_segments(session: &Session<'_, BuiltinPolicy>) -> Vec<Span> {
    let elf = session.pager.image(session.image(REFERENCE_FILE)).unwrap();
    elf.segments().iter().map(pager::Segment::span).collect()
}

#[test]
fn a_fault_on_the_ipc_buffer_page_is_refused_and_maps_nothing() {
    let boot = reference_boot_image();
    let (mut session, clients, _) = apps(&boot, BuiltinPolicy::FaultAround { pages: 3 }, 1);
    let client = clients[0];
    for access in [Access::Read, Access::Write, Access::Execute] {
        let refusal = session.fault(client, IPC_BUFFER_ADDRESS + 0x10, access).unwrap_err();
        assert_eq!(refusal.reason, RefusalReason::Reserved { area: AreaKind::IpcBuffer });
        assert_eq!(
            refusal.reason.to_string(),
            "the IPC buffer page is reserved: the pager serves no page there"
        );
    }
    assert!(session.kernel.mapping(client, IPC_BUFFER_ADDRESS).is_none());
    assert_eq!(session.pager.client(client).unwrap().faults().refused, 3);
    assert_eq!(session.pager.frame_counts().in_use, 0);
    // The rest of the app is served as usual.
    session.write(client, HEAP.base, b"heap").unwrap();
    session.write(client, STACK_TOP - 8, &[1; 8]).unwrap();
    session.read(client, reference::TEXT, 16).unwrap();
    assert_all_returned(&mut session, &clients);
}

#[test]
fn eager_loading_leaves_the_ipc_buffer_page_alone() {
    let boot = reference_boot_image();
    let (mut session, clients, _) = apps(&boot, BuiltinPolicy::Eager, 1);
    let mapped = session.start(clients[0]).unwrap();
    assert!(mapped > 0);
    assert!(session.kernel.mapping(clients[0], IPC_BUFFER_ADDRESS).is_none());
    assert_all_returned(&mut session, &clients);
}

#[test]
fn nothing_can_be_shared_onto_or_from_the_ipc_buffer_page() {
    let boot = reference_boot_image();
    let (mut session, clients, _) = apps(&boot, BuiltinPolicy::Seed, 2);
    let (a, b) = (clients[0], clients[1]);
    session.write(a, HEAP.base, b"shared?").unwrap();
    // The heap (4 pages) ending on the IPC buffer page of b: the pager's overlap check refuses it.
    let at = IPC_BUFFER_ADDRESS - 3 * PAGE_SIZE;
    let error = session.share(a, HEAP.base, b, at).unwrap_err();
    assert_eq!(
        error,
        ShareError::Area(AreaError::Overlaps { base: at, size: HEAP.size, existing: AreaKind::IpcBuffer })
    );
    assert!(error.to_string().ends_with("overlaps the IPC buffer page"), "{error}");
    // The source's own IPC buffer page is no area to share.
    let error = session.share(a, IPC_BUFFER_ADDRESS, b, 0x6000_0000).unwrap_err();
    assert_eq!(error, ShareError::NotShareable { area: AreaKind::IpcBuffer });
    // Nothing changed: b has no new area and a's heap is not shared.
    assert_eq!(
        session.pager.client(b).unwrap().areas().len(),
        session.pager.client(a).unwrap().areas().len()
    );
    let heap = session.pager.client(a).unwrap().areas().iter().find(|x| x.kind() == AreaKind::Heap).unwrap();
    assert_eq!(heap.shared(), None);
    // Beside the page is fine.
    session.share(a, HEAP.base, b, IPC_BUFFER_ADDRESS - 4 * PAGE_SIZE).unwrap();
    assert_eq!(session.read(b, IPC_BUFFER_ADDRESS - 4 * PAGE_SIZE, 7).unwrap(), b"shared?");
    assert_all_returned(&mut session, &clients);
}

#[test]
fn an_area_over_the_ipc_buffer_page_names_it_and_leaves_no_client() {
    let boot = reference_boot_image();
    let mut session =
        session_with(&boot, PagerConfig::default(), ModelConfig::default(), BuiltinPolicy::Seed);
    let region = session.pager.create_region().unwrap();
    let image = session.image(REFERENCE_FILE);
    let over = Span { base: IPC_BUFFER_ADDRESS - PAGE_SIZE, size: 2 * PAGE_SIZE };
    let cases = [
        (AppLayout { heap: Some(over), ..layout() }, vec![], AppArea::Heap(over)),
        (
            AppLayout { stack_top: IPC_BUFFER_ADDRESS + PAGE_SIZE, ..layout() },
            vec![],
            AppArea::Stack { top: IPC_BUFFER_ADDRESS + PAGE_SIZE, size: STACK_SIZE },
        ),
        (
            layout(),
            vec![Attachment { span: over, ..ring(0) }],
            AppArea::Region(Attachment { span: over, ..ring(0) }),
        ),
    ];
    for (layout, attachments, area) in cases {
        let error = session.spawn_app(image, None, &layout, &attachments, &[region]).unwrap_err();
        assert_eq!(error.area, Some(area));
        let PagerError::Area(AreaError::Overlaps { existing, .. }) = error.error else {
            panic!("not an overlap: {error}");
        };
        assert_eq!(existing, AreaKind::IpcBuffer);
        assert!(error.to_string().ends_with("overlaps the IPC buffer page"), "{error}");
        assert_eq!(session.pager.clients().count(), 0, "the failed client is removed");
    }
    // A region index with no shared object is named too.
    let error = session.spawn_app(image, None, &layout(), &[ring(1)], &[region]).unwrap_err();
    assert_eq!(error.area, Some(AppArea::Region(ring(1))));
    assert_eq!(error.error, PagerError::UnknownRegion(SharedId(1)));
}
