//! Pager mode: set the pager up from the boot image, start every client, serve them, and judge.
//!
//! Root CNode slots are laid out once: the endpoint and the window's paging structures from the
//! general allocator, then one block per client, the pool frames and the cap-copy slots
//! (see [`crate::platform`]). The clients' lives are [`crate::lifecycle`]'s, the serving
//! [`crate::fault_loop`]'s.

use alloc::string::String;

use pager::{BuiltinPolicy, Pager, PagerConfig};
use sel4::{BootInfo, CapRights, Endpoint, Frame};

use crate::boot_image::{Located, PAGE_SIZE};
use crate::cspace::SlotAllocator;
use crate::fault_loop::Session;
use crate::lifecycle::Clients;
use crate::object_allocator::ObjectAllocator;
use crate::platform::{self, Layout, Sel4Platform};
use crate::report::{self, Totals};
use crate::vspace::Mapper;

/// Most clients alive at once (one ASID pool holds 512 VSpaces, the root task's included).
const MAX_CLIENTS: usize = 256;
/// Cap-copy slots per pool frame, at most.
const COPIES_PER_FRAME: u64 = 4;
/// Frames retyped per refill of the pool.
const RETYPE_BATCH: u32 = 32;
/// Untyped memory seL4 clears at boot, with the root task's first objects: the first client's
/// chunk and pool refills then find memory cleared, instead of a fresh untyped cleared on their way.
const CLEAR_AHEAD_BYTES: u64 = 1 << 20;
/// Areas in one client: segments, heap, stack and its guard, regions, shares.
const MAX_AREAS: usize = 32;
/// Slots left for the general allocator after the fixed ranges (window paging structures).
const SPARE_SLOTS: u64 = 64;
/// Large-frame slots under a policy that maps large pages: 1 GiB of them at most (what untyped
/// memory allows is found when they are retyped).
const LARGE_FRAME_SLOTS: u64 = 512;

/// Where the heap's memory for the compressed store is mapped in the root task (above the pool's
/// window at 1 TiB and the large frames' at 2 TiB).
const STORE_MEMORY_BASE: u64 = 0x300_0000_0000;
/// Heap bytes per byte of the store's budget: the heap rounds each stored page's bytes up to a
/// power of two, so a full store takes up to twice its budget.
const STORE_MEMORY_PER_BYTE: u64 = 2;
/// Frames retyped per call for the store's memory (the kernel's `CONFIG_RETYPE_FAN_OUT_LIMIT`).
const STORE_MEMORY_BATCH: u64 = 256;

/// The outcome of a run: `Ok` to pass, `Err(reason)` to fail.
pub type Verdict = Result<(), String>;

fn policy_of(header: &bootimage::Header) -> Result<BuiltinPolicy, String> {
    match pager::Mode::from_code(header.policy.get()) {
        Some(mode) => Ok(BuiltinPolicy::of_mode(mode, header.policy_pages.get())),
        None => Err(alloc::format!("image policy {} is unknown", header.policy.get())),
    }
}

/// Runs the image and returns the verdict.
pub fn run(bootinfo: &BootInfo<'static>, located: Located) -> Verdict {
    let image = located.image;
    let header = image.header();
    let policy = policy_of(header)?;
    let frame_capacity = header.frame_capacity.get();
    let instances: usize = image.apps().iter().map(|a| usize::from(a.instances.get())).sum();
    let runs: u64 = image.apps().iter().map(|a| u64::from(a.instances.get()) * u64::from(a.runs.get())).sum();
    if instances > MAX_CLIENTS {
        return Err(alloc::format!(
            "the image has {instances} instances; the pager runs at most {MAX_CLIENTS}"
        ));
    }
    log::info!(
        "pager: image {:?}: {} apps, {} instances, {} runs, {} regions, policy {:?}, {} frames",
        image.name(),
        image.apps().len(),
        instances,
        runs,
        image.regions().len(),
        policy,
        frame_capacity
    );

    // Slots and objects.
    let mut slots = SlotAllocator::new(bootinfo.empty());
    let mut objects = ObjectAllocator::new(bootinfo.untyped_list());
    objects.clear_ahead(CLEAR_AHEAD_BYTES);
    let store_bytes = header.store_bytes.get();
    add_store_memory(&mut slots, &mut objects, store_bytes)?;
    let (endpoint, _) =
        objects.allocate::<Endpoint>(&mut slots).map_err(|e| alloc::format!("pager endpoint: {e:?}"))?;
    let timer = crate::timer::Timer::start(&mut slots, &mut objects, bootinfo.arch_info())?;
    let clients = instances.max(1);
    let too_few = |what: &str| {
        alloc::format!(
            "the root CNode has too few free slots for {what} ({} free; the boot image takes one per page)",
            slots_remaining(bootinfo)
        )
    };
    let (block_slots, chunk_bits) = platform::client_room(frame_capacity);
    let blocks =
        slots.allocate_range(clients as u64 * block_slots).ok_or_else(|| too_few("client blocks"))?;
    let frames = slots.allocate_range(u64::from(frame_capacity)).ok_or_else(|| too_few("the frame pool"))?;
    // Large frames for an image whose policy, or some app's table, names large-pages.
    let large = abi::policy::LARGE_PAGES as u8;
    let wants_large = policy == BuiltinPolicy::LargePages
        || image.apps().iter().any(|app| {
            app.policy.contains(&large) || image.attachments_of(app).iter().any(|a| a.policy == large)
        });
    let large_frames = slots
        .allocate_range(if wants_large { LARGE_FRAME_SLOTS } else { 0 })
        .ok_or_else(|| too_few("the large-frame pool"))?;
    // The manifest's `copy_slots` caps the pool (0: no cap).
    let copy_limit = match header.copy_slot_limit.get() {
        0 => u64::MAX,
        limit => u64::from(limit),
    };
    let copy_count = (u64::from(frame_capacity) * COPIES_PER_FRAME)
        .min(copy_limit)
        .min(slots.remaining().saturating_sub(SPARE_SLOTS + u64::from(frame_capacity) / 512 + 2));
    let copies =
        slots.allocate_range(copy_count).filter(|r| !r.is_empty()).ok_or_else(|| too_few("cap copies"))?;
    let layout = Layout {
        frames,
        large_frames,
        copies,
        blocks,
        image_frames: bootinfo.user_image_frames(),
        block_slots,
        chunk_bits,
    };
    let mut platform = Sel4Platform::new(layout, objects);
    platform.prepare_window(&mut slots, frame_capacity).map_err(|e| alloc::format!("pager window: {e}"))?;
    platform.prepare_large_window(&mut slots).map_err(|e| alloc::format!("large-frame window: {e}"))?;

    let config = PagerConfig {
        max_clients: clients,
        max_areas_per_client: MAX_AREAS,
        frame_capacity,
        retype_batch: RETYPE_BATCH,
        copy_slots: copies.len() as u32,
        large_frame_capacity: large_frames.len() as u32,
        // The compressed store of evicting clients' dirty pages (0: no app evicts).
        store_bytes,
    };
    log::info!(
        "pager: {} pool frame slots from {}, {} copy slots from {}, {} client blocks from {}",
        frames.len(),
        frames.start,
        copies.len(),
        copies.start,
        clients,
        blocks.start
    );
    let mut pager = Pager::new(config, policy);
    // The store's compressions and decompressions are timed like faults: time-stamp ticks, guest
    // instructions under `-icount shift=0`.
    pager.set_meter(sel4::timestamp);
    let mut session = Session::new(pager, platform, endpoint, Clients::new(endpoint, image), Some(timer));
    if header.trace.get() != 0 {
        session.record(header.trace_window.get());
    }
    // The kernel's floor, beside the pager's figures: a slot for its probe's cap copy, which maps
    // an image frame as an image fault does (the boot image's first frame).
    if image.apps().iter().any(|app| app.bench_floor != 0) {
        let slot = slots.allocate().ok_or_else(|| too_few("the floor probe"))?;
        let source = sel4::Frame::new(bootinfo.user_image_frames().start);
        session.measure_floor(crate::floor::Floor::new(slot, source));
    }
    session.launch_all(located.first_page)?;
    session.run();
    session.finish_trace();
    judge(&session, &evict_modes(&image))
}

/// The eviction modes the image's apps use, `fifo`, `clock` or `fifo,clock`; empty when none evicts.
fn evict_modes(image: &bootimage::BootImage<'_>) -> String {
    let mut modes = String::new();
    for mode in [pager::EvictMode::Fifo, pager::EvictMode::Clock] {
        if image.apps().iter().any(|app| u32::from(app.evict) == mode.code()) {
            if !modes.is_empty() {
                modes.push(',');
            }
            modes.push_str(mode.name());
        }
    }
    modes
}

/// Gives the heap memory for a compressed store of `store_bytes` (none for 0): frames retyped
/// from untyped memory, mapped once into the root task at [`STORE_MEMORY_BASE`]. Returns the
/// bytes added.
fn add_store_memory(
    slots: &mut SlotAllocator,
    objects: &mut ObjectAllocator,
    store_bytes: u32,
) -> Result<u64, String> {
    if store_bytes == 0 {
        return Ok(0);
    }
    let pages = (u64::from(store_bytes) * STORE_MEMORY_PER_BYTE).div_ceil(PAGE_SIZE);
    let failed = |what: &str| {
        alloc::format!(
            "the compressed store of {store_bytes} bytes needs {} KiB of memory for the pager: {what}",
            pages * PAGE_SIZE / 1024
        )
    };
    let mut mapper = Mapper::new(sel4::init::VSPACE);
    let mut mapped = 0;
    while mapped < pages {
        let batch = objects
            .allocate_batch::<Frame>(slots, STORE_MEMORY_BATCH.min(pages - mapped))
            .map_err(|error| failed(&alloc::format!("{error:?}")))?;
        for frame in batch.iter().map(Frame::from_cptr) {
            let address = STORE_MEMORY_BASE + mapped * PAGE_SIZE;
            mapper
                .map(objects, slots, frame, address, CapRights::READ_WRITE)
                .map_err(|error| failed(&alloc::format!("{error}")))?;
            mapped += 1;
        }
    }
    let bytes = pages * PAGE_SIZE;
    // SAFETY: `STORE_MEMORY_BASE .. + bytes` is page aligned and was just mapped read-write into
    // the root task with frames fresh from untyped memory (one cap each, in slots nothing else
    // holds), is never unmapped, and no other code uses addresses in that range.
    if !unsafe { crate::heap::add_memory(STORE_MEMORY_BASE as *mut u8, bytes as usize) } {
        return Err(failed("the heap has added memory already"));
    }
    log::info!("pager: {bytes} bytes of heap for a compressed store of {store_bytes} bytes");
    Ok(bytes)
}

fn slots_remaining(bootinfo: &BootInfo<'_>) -> u64 {
    bootinfo.empty().len()
}

/// The final report and the accounting check; `evict_modes` names the image's eviction modes.
fn judge(session: &Session, evict_modes: &str) -> Verdict {
    let (pager, platform, clients) = (session.pager(), session.platform(), session.clients());
    let frames = pager.frame_counts();
    let copies = pager.copy_slots_in_use();
    report::class_costs(session.costs());
    let floor = session.floor().map_or(Ok(()), crate::floor::Floor::report);
    let store = pager.store_counts();
    if !evict_modes.is_empty() {
        report::evict_stats(evict_modes, pager.faults(), &pager.evict_counts(), &store);
    }
    let (startup_pages, startup_entries) = clients.startup();
    report::total_stats(&Totals {
        clients: clients.started(),
        faults: pager.faults(),
        distinct_image_pages: platform.distinct_image_pages(),
        frames,
        large_frames: pager.large_frame_counts(),
        copy_slots_in_use: copies,
        kernel_entries: session.costs().kernel_entries(),
        vm_faults: session.vm_faults(),
        policy: pager::Policy::name(pager.policy()),
        startup_pages,
        startup_entries,
    });
    let (heap_now, heap_peak) = crate::heap::usage();
    log::info!("pager: heap {heap_now} bytes in use, {heap_peak} at most");
    if let Some(failure) = clients.failure() {
        return Err(failure.into());
    }
    floor?;
    // The shared zero frame (zero-page, cow) is the pager's for good: pinned, neither in use nor free.
    let pinned_ok = frames.pinned == u32::from(pager.zero_frame().is_some());
    if frames.in_use != 0 || frames.free + frames.pinned != frames.created || copies != 0 || !pinned_ok {
        return Err(alloc::format!(
            "frames not all returned: {} in use, {} free and {} pinned of {} created, {copies} copy slots in use",
            frames.in_use,
            frames.free,
            frames.pinned,
            frames.created
        ));
    }
    if store.used != 0 || store.pages != 0 {
        return Err(alloc::format!(
            "the compressed store still holds {} pages in {} bytes after every client was removed",
            store.pages,
            store.used
        ));
    }
    let large = pager.large_frame_counts();
    if large.in_use != 0 || large.free != large.created {
        return Err(alloc::format!(
            "large frames not all returned: {} in use, {} free of {} created",
            large.in_use,
            large.free,
            large.created
        ));
    }
    if platform.large_frames_created() != large.created {
        return Err(alloc::format!(
            "the platform retyped {} large frames but the pager counts {}",
            platform.large_frames_created(),
            large.created
        ));
    }
    if platform.frames_created() != frames.created {
        return Err(alloc::format!(
            "the platform retyped {} frames but the pager counts {}",
            platform.frames_created(),
            frames.created
        ));
    }
    Ok(())
}
