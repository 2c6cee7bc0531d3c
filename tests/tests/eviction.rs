//! Eviction (issue 11) against the model kernel: budgets that evict, clock by unmap sampling, dirty
//! tracking by read-only first mappings, the compressed store.
//!
//! The property test runs random accesses of several evicting clients, under random budgets, pool
//! sizes, store sizes, policies and both modes, side by side with the same accesses on a pager with
//! unlimited memory (no budget, no eviction): every byte read must be the same, the only client ever
//! stopped is one whose eviction needed the store when it was full, and after teardown every frame,
//! cap-copy slot and stored byte is back.

#![forbid(unsafe_code)]

use pager::{
    Access, AreaKind, BuiltinPolicy, ClientId, EvictMode, FaultClass, Mode, PagerConfig, RefusalReason,
    Rights,
};
use pager_tests::{reference, reference_boot_image, session_with, REFERENCE_FILE};
use proptest::prelude::*;
use sim::{BootImage, ModelConfig, Session, TouchError};

const PAGE: u64 = 4096;
/// Every client's heap, an anonymous area.
const HEAP: u64 = 0x1000_0000;
const HEAP_PAGES: u64 = 24;

/// The pages a client may touch: (address of the page, writable).
fn pages() -> Vec<(u64, bool)> {
    use reference::*;
    let mut pages = Vec::new();
    let mut span = |base: u64, size: u64, writable: bool| {
        let first = base / PAGE;
        let last = (base + size).div_ceil(PAGE);
        pages.extend((first..last).map(|p| (p * PAGE, writable)));
    };
    span(TEXT, TEXT_FILE_SIZE, false);
    span(RODATA, RODATA_MEMORY_SIZE, false);
    span(DATA, DATA_MEMORY_SIZE, true);
    span(SMALL, SMALL_MEMORY_SIZE, true);
    span(BSS, BSS_MEMORY_SIZE, true);
    span(HEAP, HEAP_PAGES * PAGE, true);
    pages
}

fn spawn(session: &mut Session<'_>, budget: Option<u32>, evict: EvictMode) -> ClientId {
    let image = session.image(REFERENCE_FILE);
    let client = session.spawn_evicting(image, budget, evict).expect("room for the client");
    session
        .pager
        .add_anonymous(client, HEAP, HEAP_PAGES * PAGE, Rights::READ_WRITE, AreaKind::Heap)
        .expect("the heap fits");
    client
}

#[derive(Clone, Debug)]
struct Plan {
    policy: BuiltinPolicy,
    frames: u32,
    store_bytes: u32,
    /// The pages touched: this many of [`pages`], from `first` (a small set makes pages come
    /// and go often).
    span: usize,
    first: usize,
    clients: Vec<(Option<u32>, EvictMode)>,
    ops: Vec<Op>,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Read {
        client: usize,
        page: usize,
        offset: u16,
        length: u16,
    },
    /// `length` bytes of `byte` (zero makes pages that are dirty and all zero).
    Write {
        client: usize,
        page: usize,
        offset: u16,
        length: u16,
        byte: u8,
    },
    /// The page unmapped through the pager: its contents go (resident or stored), as they do
    /// without eviction.
    Unmap {
        client: usize,
        page: usize,
    },
}

fn plan() -> impl Strategy<Value = Plan> {
    let policy = prop_oneof![
        3 => Just(BuiltinPolicy::Seed),
        1 => Just(BuiltinPolicy::Named(Mode::ZeroPage)),
        1 => Just(BuiltinPolicy::Named(Mode::Cow)),
    ];
    // Now and then a client that does not evict: the pool's evicting clients give frames up for it.
    let mode =
        prop_oneof![3 => Just(EvictMode::Fifo), 3 => Just(EvictMode::Clock), 1 => Just(EvictMode::None)];
    let budget = prop_oneof![1 => Just(None), 5 => (1u32..8).prop_map(Some)];
    let clients = prop::collection::vec((budget, mode), 1..4);
    let store = prop_oneof![1 => Just(0u32), 1 => 1u32..20_000, 2 => Just(1u32 << 20)];
    let span = (3usize..48, any::<prop::sample::Index>());
    (policy, clients, 0u32..16, store, span).prop_flat_map(
        |(policy, clients, extra_frames, store_bytes, (span, first))| {
            let count = clients.len();
            let op = prop_oneof![
                (0..count, any::<prop::sample::Index>(), 0u16..4096, 1u16..600).prop_map(
                    |(client, page, offset, length)| Op::Read {
                        client,
                        page: page.index(usize::MAX),
                        offset,
                        length
                    }
                ),
                (
                    0..count,
                    any::<prop::sample::Index>(),
                    0u16..4096,
                    1u16..1200,
                    prop_oneof![Just(0u8), any::<u8>()]
                )
                    .prop_map(|(client, page, offset, length, byte)| Op::Write {
                        client,
                        page: page.index(usize::MAX),
                        offset,
                        length,
                        byte
                    }),
                (0..count, any::<prop::sample::Index>())
                    .prop_map(|(client, page)| Op::Unmap { client, page: page.index(usize::MAX) }),
            ];
            // Room for one frame per client and the shared zero frame: eviction can always make room.
            let frames = count as u32 + 2 + extra_frames;
            prop::collection::vec(op, 1..250).prop_map(move |ops| Plan {
                policy,
                frames,
                store_bytes,
                span,
                first: first.index(usize::MAX),
                clients: clients.clone(),
                ops,
            })
        },
    )
}

fn run(plan: &Plan, boot: &BootImage) -> Result<(), TestCaseError> {
    let pages = pages();
    let config =
        PagerConfig { frame_capacity: plan.frames, store_bytes: plan.store_bytes, ..PagerConfig::default() };
    let mut tight = session_with(boot, config, ModelConfig::default(), plan.policy);
    let mut roomy = session_with(boot, PagerConfig::default(), ModelConfig::default(), BuiltinPolicy::Seed);
    let mut clients: Vec<Option<(ClientId, ClientId)>> = plan
        .clients
        .iter()
        .map(|&(budget, mode)| {
            Some((spawn(&mut tight, budget, mode), spawn(&mut roomy, None, EvictMode::None)))
        })
        .collect();
    for op in &plan.ops {
        let (client, page, offset, length) = match *op {
            Op::Read { client, page, offset, length } | Op::Write { client, page, offset, length, .. } => {
                (client, page, offset, length)
            }
            Op::Unmap { client, page } => (client, page, 0, 1),
        };
        let Some((t, r)) = clients[client] else { continue };
        let (address, writable) = pages[(plan.first + page % plan.span) % pages.len()];
        let address = address + u64::from(offset);
        // Within the page: a later page's fault may evict an earlier one (as on a real CPU, which
        // restarts the access), and the session's multi-page reads insist it does not.
        let length = u64::from(length).min((address / PAGE + 1) * PAGE - address) as usize;
        let outcome = match *op {
            Op::Unmap { .. } => {
                tight.unmap(t, address).expect("a live client");
                roomy.unmap(r, address).expect("a live client");
                continue;
            }
            Op::Read { .. } => tight.read(t, address, length).map(Some),
            Op::Write { byte, .. } if writable => tight.write(t, address, &vec![byte; length]).map(|()| None),
            Op::Write { .. } => tight.read(t, address, length).map(Some),
        };
        match outcome {
            Ok(Some(bytes)) => {
                let expected = roomy.read(r, address, length).expect("unlimited memory serves every read");
                prop_assert_eq!(bytes, expected, "client {} read {:#x}+{}", client, address, length);
            }
            Ok(None) => {
                let Op::Write { byte, .. } = *op else { unreachable!("only a write reads nothing") };
                roomy.write(r, address, &vec![byte; length]).expect("unlimited memory serves every write");
            }
            Err(TouchError::Refused(refusal)) => {
                // An evicting client's only stop: a dirty page the full store could not take (or,
                // beside a client that does not evict, a pool that client holds whole). A client
                // that does not evict stops as it would without eviction.
                let evicting = plan.clients[client].1.evicts();
                let allowed = match refusal.reason {
                    RefusalReason::StoreFull { .. } => evicting,
                    RefusalReason::OutOfFrames(_) => !evicting || plan.clients.iter().any(|c| !c.1.evicts()),
                    RefusalReason::OverBudget { .. } => !evicting,
                    _ => false,
                };
                prop_assert!(allowed, "client {} ({:?}) stopped: {}", client, plan.clients[client], refusal);
                tight.remove_client(t).expect("live");
                roomy.remove_client(r).expect("live");
                clients[client] = None;
            }
            Err(other) => prop_assert!(false, "client {} at {:#x}: {:?}", client, address, other),
        }
        for (_, c) in tight.pager.clients() {
            if let Some(budget) = c.budget() {
                prop_assert!(c.frames_charged() <= budget, "a client over its budget");
            }
        }
    }
    for (t, r) in clients.into_iter().flatten() {
        tight.remove_client(t).expect("live");
        roomy.remove_client(r).expect("live");
    }
    let frames = tight.pager.frame_counts();
    prop_assert_eq!(frames.in_use, 0, "frames left in use");
    prop_assert_eq!(tight.pager.copy_slots_in_use(), 0, "copy slots left in use");
    let store = tight.pager.store_counts();
    prop_assert_eq!((store.used, store.pages, store.zero_pages), (0, 0, 0), "pages left in the store");
    prop_assert!(store.peak <= plan.store_bytes, "the store went past its budget");
    prop_assert!(tight.kernel.violations().is_empty(), "violations: {:?}", tight.kernel.violations());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn evicting_clients_read_what_unlimited_memory_gives(plan in plan()) {
        let boot = reference_boot_image();
        run(&plan, &boot)?;
    }
}

/// A session with one evicting client at `budget` frames and a store of `store_bytes`.
fn one_client(boot: &BootImage, budget: u32, mode: EvictMode, store_bytes: u32) -> (Session<'_>, ClientId) {
    let config = PagerConfig { store_bytes, ..PagerConfig::default() };
    let mut session = session_with(boot, config, ModelConfig::default(), BuiltinPolicy::Seed);
    let client = spawn(&mut session, Some(budget), mode);
    (session, client)
}

fn class(session: &mut Session<'_>, client: ClientId, address: u64, access: Access) -> Option<FaultClass> {
    session.touch(client, address, access).expect("served").fault.map(|f| f.class)
}

#[test]
fn a_working_set_four_times_the_budget_runs_and_reads_back_its_pattern() {
    let boot = reference_boot_image();
    for mode in [EvictMode::Fifo, EvictMode::Clock] {
        let (mut session, client) = one_client(&boot, 4, mode, 1 << 20);
        let page = |n: u64| HEAP + n * PAGE;
        for round in 0..3u8 {
            for n in 0..16 {
                // A compressible pattern, different per page.
                let bytes: Vec<u8> = (0..PAGE).map(|i| (i / 16) as u8 ^ n as u8).collect();
                if round == 0 {
                    session.write(client, page(n), &bytes).expect("served");
                } else {
                    assert_eq!(
                        session.read(client, page(n), PAGE as usize).unwrap(),
                        bytes,
                        "{mode} page {n}"
                    );
                }
            }
        }
        let c = session.pager.client(client).unwrap();
        let (faults, evict) = (*c.faults(), c.evict_counts());
        assert!(c.frames_charged() <= 4);
        assert!(evict.evictions_dirty >= 12 * 3, "{mode}: {evict:?}");
        assert_eq!(evict.compressions, evict.evictions_dirty);
        assert!(faults.refault_store >= 32, "{mode}: {faults:?}");
        assert!(evict.ratio_milli().unwrap() > 2_000, "{mode}: a page of 16-byte runs compresses: {evict:?}");
        assert_eq!(session.pager.client(client).unwrap().faults().refused, 0);
        session.remove_client(client).unwrap();
        assert_eq!(session.pager.frame_counts().in_use, 0);
        assert_eq!(session.pager.store_counts().used, 0);
        assert!(session.kernel.violations().is_empty(), "{:?}", session.kernel.violations());
    }
}

#[test]
fn writable_pages_are_mapped_read_only_until_written() {
    let boot = reference_boot_image();
    let (mut session, client) = one_client(&boot, 8, EvictMode::Fifo, 0);
    assert_eq!(
        class(&mut session, client, HEAP, Access::Read),
        Some(FaultClass::NewFrame(pager::FrameContent::Zero))
    );
    assert!(!session.kernel.mapping(client, HEAP).unwrap().rights.write);
    // The first write: a 0x7 fault, the same frame made writable.
    let frame = session.kernel.mapping(client, HEAP).unwrap().frame;
    assert_eq!(class(&mut session, client, HEAP, Access::Write), Some(FaultClass::Dirty));
    let mapping = session.kernel.mapping(client, HEAP).unwrap();
    assert!(mapping.rights.write);
    assert_eq!(mapping.frame, frame);
    // A write to an unmapped page maps it writable at once: dirty from the start.
    assert_eq!(
        class(&mut session, client, HEAP + PAGE, Access::Write),
        Some(FaultClass::NewFrame(pager::FrameContent::Zero))
    );
    assert_eq!(class(&mut session, client, HEAP + PAGE, Access::Write), None);
    assert_eq!(session.pager.client(client).unwrap().faults().dirty, 1);
}

#[test]
fn clean_pages_are_dropped_and_come_back_by_the_seeds_path() {
    let boot = reference_boot_image();
    let (mut session, client) = one_client(&boot, 2, EvictMode::Fifo, 0);
    let data_copy = (reference::DATA & !(PAGE - 1)) + PAGE;
    let expected = session.read(client, data_copy, 64).unwrap();
    assert_eq!(
        class(&mut session, client, HEAP, Access::Read),
        Some(FaultClass::NewFrame(pager::FrameContent::Zero))
    );
    // The third page evicts the oldest, the clean copy: dropped, not stored.
    assert_eq!(
        class(&mut session, client, HEAP + PAGE, Access::Read),
        Some(FaultClass::NewFrame(pager::FrameContent::Zero))
    );
    let evict = session.pager.client(client).unwrap().evict_counts();
    assert_eq!((evict.evictions_clean, evict.evictions_dirty), (1, 0));
    assert_eq!(session.pager.store_counts().pages, 0);
    assert_eq!(
        class(&mut session, client, data_copy, Access::Read),
        Some(FaultClass::NewFrame(pager::FrameContent::Copy))
    );
    assert_eq!(session.read(client, data_copy, 64).unwrap(), expected);
}

#[test]
fn the_clock_soft_unmaps_and_a_touch_maps_the_same_frame_again() {
    let boot = reference_boot_image();
    let (mut session, client) = one_client(&boot, 2, EvictMode::Clock, 1 << 16);
    session.write(client, HEAP, b"zero").unwrap();
    session.write(client, HEAP + PAGE, b"one").unwrap();
    let frame = session.kernel.mapping(client, HEAP).unwrap().frame;
    // A third page: the hand soft-unmaps both, then evicts page 0 (still unmapped when it came
    // round), which goes to the store.
    session.write(client, HEAP + 2 * PAGE, b"two").unwrap();
    assert!(session.kernel.mapping(client, HEAP).is_none());
    assert!(session.kernel.mapping(client, HEAP + PAGE).is_none(), "soft-unmapped");
    let evict = session.pager.client(client).unwrap().evict_counts();
    assert_eq!((evict.soft_unmaps, evict.evictions_dirty), (2, 1));
    // Page 1 was soft-unmapped: the same frame, no allocation.
    let soft_frame =
        session.pager.client(client).unwrap().areas().iter().find_map(|a| a.resident_at(HEAP + PAGE));
    let created = session.pager.frame_counts().created;
    assert_eq!(class(&mut session, client, HEAP + PAGE, Access::Read), Some(FaultClass::RefaultSoft));
    assert_eq!(session.kernel.mapping(client, HEAP + PAGE).unwrap().frame, soft_frame.unwrap().frame);
    assert_eq!(session.pager.frame_counts().created, created);
    assert_eq!(session.read(client, HEAP + PAGE, 3).unwrap(), b"one");
    // Page 0 comes back from the store, into some frame.
    assert_eq!(class(&mut session, client, HEAP, Access::Read), Some(FaultClass::RefaultStore));
    assert_eq!(session.read(client, HEAP, 4).unwrap(), b"zero");
    let _ = frame;
}

#[test]
fn a_full_store_stops_the_evicting_client_and_names_the_store() {
    let boot = reference_boot_image();
    let (mut session, client) = one_client(&boot, 1, EvictMode::Fifo, 0);
    session.write(client, HEAP, b"dirty").unwrap();
    let Err(TouchError::Refused(refusal)) = session.touch(client, HEAP + PAGE, Access::Read) else {
        panic!("a dirty page went into a store of no bytes");
    };
    assert_eq!(
        refusal.reason.to_string(),
        format!(
            "the compressed store of evicted pages (0 bytes) is full: 0 bytes used, a dirty page needed {} more",
            match refusal.reason {
                RefusalReason::StoreFull { needed, .. } => needed,
                _ => unreachable!(),
            }
        )
    );
    // An all-zero dirty page needs no bytes: a marker.
    let (mut session, client) = one_client(&boot, 1, EvictMode::Fifo, 0);
    session.write(client, HEAP, &[0; 8]).unwrap();
    session.touch(client, HEAP + PAGE, Access::Read).expect("the zero page went as a marker");
    assert_eq!(session.pager.store_counts().zero_pages, 1);
    assert_eq!(class(&mut session, client, HEAP, Access::Read), Some(FaultClass::RefaultStore));
}

#[test]
fn each_client_reports_its_own_stored_pages_and_bytes() {
    let boot = reference_boot_image();
    let config = PagerConfig { store_bytes: 1 << 20, ..PagerConfig::default() };
    let mut session = session_with(&boot, config, ModelConfig::default(), BuiltinPolicy::Seed);
    let (many, few) =
        (spawn(&mut session, Some(2), EvictMode::Fifo), spawn(&mut session, Some(2), EvictMode::Fifo));
    // Budgets of 2: every written page but the last two is evicted dirty, into the store.
    for n in 0..7u8 {
        session.write(many, HEAP + u64::from(n) * PAGE, &[n + 1; 100]).unwrap();
    }
    for n in 0..3u8 {
        session.write(few, HEAP + u64::from(n) * PAGE, &[n + 1; 3000]).unwrap();
    }
    assert_eq!(session.read(many, HEAP, 1).unwrap(), [1]);
    let (stored_many, stored_few) = (session.pager.stored_pages(many), session.pager.stored_pages(few));
    // `many`: 5 of 7 pages evicted, page 0 back out and another evicted for it; `few`: 1 of 3.
    assert_eq!((stored_many.pages, stored_few.pages), (5, 1));
    for (client, stored) in [(many, stored_many), (few, stored_few)] {
        let c = session.pager.client(client).unwrap();
        let (evict, faults) = (c.evict_counts(), c.faults());
        assert_eq!(u64::from(stored.pages), evict.evictions_dirty - faults.refault_store);
        assert_eq!(u64::from(stored.bytes), evict.bytes_stored - evict.bytes_out);
    }
    assert!(stored_few.bytes > 0 && stored_many.bytes > 0);
    let store = session.pager.store_counts();
    assert_eq!(
        (stored_many.pages + stored_few.pages, stored_many.bytes + stored_few.bytes),
        (store.pages, store.used)
    );
    session.remove_client(many).unwrap();
    assert_eq!(session.pager.stored_pages(many), pager::StoredPages::default());
    assert_eq!(session.pager.stored_pages(few), stored_few);
}

#[test]
fn the_pool_takes_from_the_client_most_over_its_share() {
    let boot = reference_boot_image();
    // 7 frames: the even share of two clients is 3.
    let config = PagerConfig { frame_capacity: 7, store_bytes: 1 << 20, ..PagerConfig::default() };
    let mut session = session_with(&boot, config, ModelConfig::default(), BuiltinPolicy::Seed);
    let hog = spawn(&mut session, None, EvictMode::Fifo);
    let small = spawn(&mut session, None, EvictMode::Fifo);
    for n in 0..6 {
        session.write(hog, HEAP + n * PAGE, b"hog").unwrap();
    }
    session.write(small, HEAP, b"small").unwrap();
    assert_eq!(session.pager.client(hog).unwrap().evict_counts().evictions(), 0, "room for 7");
    session.write(small, HEAP + PAGE, b"small").unwrap();
    // The pool was full: the hog (6 over a share of 3) lost its oldest page, the small one nothing.
    assert_eq!(session.pager.client(hog).unwrap().evict_counts().evictions(), 1);
    assert_eq!(session.pager.client(small).unwrap().evict_counts().evictions(), 0);
    // A client that does not evict is never a victim, and is stopped as before.
    let plain = session.spawn_evicting(session.image(REFERENCE_FILE), None, EvictMode::None).unwrap();
    session.pager.add_anonymous(plain, HEAP, PAGE, Rights::READ_WRITE, AreaKind::Heap).unwrap();
    session.write(plain, HEAP, b"plain").expect("eviction made it room");
    assert_eq!(session.pager.client(hog).unwrap().evict_counts().evictions(), 2);
}

#[test]
fn shared_pages_are_never_evicted_and_an_area_with_evictable_pages_is_not_shared() {
    let boot = reference_boot_image();
    let config = PagerConfig { store_bytes: 1 << 20, ..PagerConfig::default() };
    let mut session = session_with(&boot, config, ModelConfig::default(), BuiltinPolicy::Seed);
    let evicting = spawn(&mut session, Some(3), EvictMode::Clock);
    let other = spawn(&mut session, None, EvictMode::None);
    const REGION: u64 = 0x2000_0000;
    session
        .shared_region(
            2 * PAGE,
            &[(evicting, REGION, Rights::READ_WRITE), (other, REGION, Rights::READ_WRITE)],
        )
        .unwrap();
    session.write(evicting, REGION, b"shared").unwrap();
    for n in 0..6 {
        session.write(evicting, HEAP + n * PAGE, b"own").unwrap();
    }
    // The region's frame is charged to the evicting client but stays: the other client reads it.
    assert_eq!(session.read(other, REGION, 6).unwrap(), b"shared");
    assert!(session.kernel.mapping(evicting, REGION).is_some(), "a pagemap page is never evicted");
    assert!(session.pager.client(evicting).unwrap().evict_counts().evictions() >= 4);
    // The heap has pages eviction keeps (resident or stored): a pagemap could not follow them.
    let refused = session.share(evicting, HEAP, other, 0x3000_0000).unwrap_err();
    assert_eq!(refused, pager::ShareError::Evicting { area: AreaKind::Heap });
    assert!(refused.to_string().contains("evicting client"), "{refused}");
    session.remove_client(evicting).unwrap();
    session.remove_client(other).unwrap();
    assert_eq!(session.pager.frame_counts().in_use, 0);
    assert_eq!(session.pager.store_counts().pages, 0);
    assert!(session.kernel.violations().is_empty(), "{:?}", session.kernel.violations());
}
