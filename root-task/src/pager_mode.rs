//! Pager mode: set the pager up from the boot image, start every client, serve them, and judge.
//!
//! Root CNode slots are laid out once: the endpoint and the window's paging structures from the
//! general allocator, then one block per client, the pool frames and the cap-copy slots
//! (see [`crate::platform`]).
//!
//! Every run of an instance starts through [`start_instance`]: at boot for the first run, and from
//! the fault loop when a run exits with its expected code and the app has runs left. A later run is
//! a fresh client (a new pager client, new seL4 objects in a reused block and chunk) in the same
//! entry state.

use alloc::string::String;
use alloc::vec::Vec;

use bootimage::{policy, AppRecord};
use pager::{AreaKind, BuiltinPolicy, ClientId, ImageId, Pager, PagerConfig, Rights, PAGE_SIZE};
use sel4::{BootInfo, Endpoint};

use crate::boot_image::Located;
use crate::client::{self, ClientRecord, EntryState, IPC_BUFFER_ADDRESS};
use crate::costs::FaultCosts;
use crate::cspace::SlotAllocator;
use crate::fault_loop::Session;
use crate::object_allocator::ObjectAllocator;
use crate::platform::{Layout, Sel4Platform, BLOCK_SLOTS};
use crate::report::{self, Name, Totals};

/// Most clients alive at once (one ASID pool holds 512 VSpaces, the root task's included).
const MAX_CLIENTS: usize = 256;
/// Cap-copy slots per pool frame, at most.
const COPIES_PER_FRAME: u64 = 4;
/// Frames retyped per refill of the pool.
const RETYPE_BATCH: u32 = 32;
/// Areas in one client: segments, heap, stack and its guard, regions, shares.
const MAX_AREAS: usize = 32;
/// Slots left for the general allocator after the fixed ranges (window paging structures).
const SPARE_SLOTS: u64 = 64;

/// The outcome of a run: `Ok` to pass, `Err(reason)` to fail.
pub type Verdict = Result<(), String>;

/// One run of an app instance: what starting it takes, kept in its record for the next run.
#[derive(Clone, Copy)]
pub struct Launch {
    pub app: &'static AppRecord,
    /// The app's ELF, registered with the pager.
    pub image: ImageId,
    pub instance: u16,
    /// Runs of this instance still to start after this one.
    pub runs_left: u16,
}

fn policy_of(header: &bootimage::Header) -> Result<BuiltinPolicy, String> {
    match header.policy.get() {
        policy::SEED => Ok(BuiltinPolicy::Seed),
        policy::EAGER => Ok(BuiltinPolicy::Eager),
        policy::FAULT_AROUND => Ok(BuiltinPolicy::FaultAround { pages: header.policy_pages.get() }),
        other => Err(alloc::format!("image policy {other} is unknown")),
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
    let blocks =
        slots.allocate_range(clients as u64 * BLOCK_SLOTS).ok_or_else(|| too_few("client blocks"))?;
    let frames = slots.allocate_range(u64::from(frame_capacity)).ok_or_else(|| too_few("the frame pool"))?;
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
    let layout = Layout { frames, copies, blocks, image_frames: bootinfo.user_image_frames() };
    let mut platform = Sel4Platform::new(layout, objects);
    platform.prepare_window(&mut slots, frame_capacity).map_err(|e| alloc::format!("pager window: {e}"))?;

    let config = PagerConfig {
        max_clients: clients,
        max_areas_per_client: MAX_AREAS,
        frame_capacity,
        retype_batch: RETYPE_BATCH,
        copy_slots: copies.len() as u32,
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
    let mut session = Session {
        pager: Pager::new(config, policy),
        platform,
        endpoint,
        image,
        regions: Vec::new(),
        records: Vec::new(),
        started: 0,
        live: 0,
        fault_entries: 0,
        vm_faults: 0,
        costs: FaultCosts::default(),
        startup_pages: 0,
        startup_entries: 0,
        failure: None,
        timer: Some(timer),
    };
    start_clients(&mut session, located.first_page)?;
    session.run();
    judge(session)
}

fn slots_remaining(bootinfo: &BootInfo<'_>) -> u64 {
    bootinfo.empty().len()
}

/// Creates the image's regions, registers every app's ELF and starts the first run of every
/// instance.
fn start_clients(session: &mut Session, first_page: u32) -> Result<(), String> {
    let image = session.image;
    for region in image.regions() {
        let id =
            session.pager.create_region().map_err(|e| alloc::format!("region {:?}: {e}", region.name()))?;
        session.regions.push(id);
    }
    for app in image.apps() {
        let elf = image.elf(app);
        let image_id = session
            .pager
            .add_image(elf, first_page + app.elf_page.get())
            .map_err(|e| alloc::format!("app {:?}: {e}", app.name()))?;
        for instance in 0..app.instances.get() {
            let runs_left = app.runs.get().saturating_sub(1);
            start_instance(session, Launch { app, image: image_id, instance, runs_left })?;
        }
    }
    Ok(())
}

/// Starts one run of an instance: adds it to the pager, creates its objects in its block, runs
/// the policy's start-up work and resumes its thread in the entry state of docs/app-abi.md.
///
/// `Err` when the client could not be set up; whatever was made for it is given back first, so
/// the accounting stays exact. A client the policy's start-up work refuses is reported as stopped
/// and torn down, like any stopped client, and that is `Ok`.
pub fn start_instance(session: &mut Session, launch: Launch) -> Result<(), String> {
    let Launch { app, image: image_id, instance, .. } = launch;
    let name = Name { app: app.name(), instance };
    // Where "instructions until the first instruction / until exit" count from.
    let setup_at = sel4::timestamp();
    let client = add_client(session, app, image_id).map_err(|e| alloc::format!("{name}: {e}"))?;
    let tcb = match client::create(&mut session.platform, client, session.endpoint) {
        Ok(tcb) => tcb,
        Err(error) => {
            // Nothing is mapped yet: the pager forgets the client, the block's chunk is emptied.
            let _ = session.pager.remove_client(&mut session.platform, client);
            let _ = session.platform.close_space(client);
            return Err(alloc::format!("{name}: {error}"));
        }
    };
    let slot = usize::from(client.0);
    if session.records.len() <= slot {
        session.records.resize_with(slot + 1, || None);
    }
    session.records[slot] = Some(ClientRecord {
        name: app.name(),
        instance,
        expected_exit: app.expected_exit.get(),
        tcb,
        line: Vec::new(),
        last_spurious: None,
        faults: 0,
        setup_at,
        launch,
    });
    session.started += 1;
    session.live += 1;
    let before = session.platform.kernel_entries();
    let started = session.pager.start_client(&mut session.platform, client);
    session.startup_entries += session.platform.kernel_entries() - before;
    session.startup_pages += u64::from(*started.as_ref().unwrap_or(&0));
    if let Err(refusal) = started {
        sel4::debug_println!(
            "[pager] stopped {name}: start at {:#x} (ip {:#x}): {}",
            refusal.fault.address,
            refusal.fault.ip,
            refusal.reason
        );
        session.records[slot] = None;
        if let Some(state) = session.pager.client(client) {
            report::client_stats(name, state, 0, session.platform.paging_structures(client));
        }
        session.tear_down(client, tcb, name);
        return Ok(());
    }
    let entry = session.pager.image(image_id).map(|e| e.entry()).unwrap_or(0);
    let (heap_base, heap_size) = match app.heap_size.get() {
        0 => (0, 0),
        size => (u64::from(app.heap_base.get()), u64::from(size)),
    };
    let state = EntryState {
        entry,
        stack_top: u64::from(app.stack_top.get()),
        instance: u64::from(instance),
        heap_base,
        heap_size,
        client: u64::from(client.0),
    };
    if let Err(error) = client::start(tcb, &state) {
        session.records[slot] = None;
        session.tear_down(client, tcb, name);
        return Err(alloc::format!("{name}: {error}"));
    }
    Ok(())
}

/// The pager's view of one instance: its image's segments, stack, heap and regions. On `Err` the
/// pager holds nothing of it.
fn add_client(session: &mut Session, app: &AppRecord, image_id: ImageId) -> Result<ClientId, String> {
    let budget = match app.frame_budget.get() {
        0 => None,
        budget => Some(budget),
    };
    let client = session.pager.add_client(budget).map_err(|e| alloc::format!("{e}"))?;
    if let Err(error) = add_areas(session, app, image_id, client) {
        let _ = session.pager.remove_client(&mut session.platform, client);
        return Err(error);
    }
    Ok(client)
}

fn add_areas(
    session: &mut Session,
    app: &AppRecord,
    image_id: ImageId,
    client: ClientId,
) -> Result<(), String> {
    let image = session.image;
    let regions = &session.regions;
    let pager = &mut session.pager;
    pager.load_image(client, image_id).map_err(|e| alloc::format!("{e}"))?;
    let stack_top = u64::from(app.stack_top.get());
    pager
        .add_stack(client, stack_top, u64::from(app.stack_size.get()))
        .map_err(|e| alloc::format!("stack: {e}"))?;
    if app.heap_size.get() > 0 {
        pager
            .add_anonymous(
                client,
                u64::from(app.heap_base.get()),
                u64::from(app.heap_size.get()),
                Rights::READ_WRITE,
                AreaKind::Heap,
            )
            .map_err(|e| alloc::format!("heap: {e}"))?;
    }
    for attachment in image.attachments_of(app) {
        let region = usize::from(attachment.region.get());
        let size = u64::from(image.regions()[region].size.get());
        let rights = if attachment.writable != 0 { Rights::READ_WRITE } else { Rights::READ };
        pager
            .attach_region(
                client,
                regions[region],
                u64::from(attachment.address.get()),
                size,
                rights,
                AreaKind::Region(region as u16),
            )
            .map_err(|e| alloc::format!("region {:?}: {e}", image.regions()[region].name()))?;
    }
    let areas = pager.client(client).map(|c| c.areas()).unwrap_or(&[]);
    if let Some(area) = areas.iter().find(|a| a.base() <= IPC_BUFFER_ADDRESS && IPC_BUFFER_ADDRESS < a.end())
    {
        return Err(alloc::format!(
            "the {} at {:#x}..{:#x} covers the IPC buffer page {IPC_BUFFER_ADDRESS:#x}",
            area.kind(),
            area.base(),
            area.end()
        ));
    }
    debug_assert!(IPC_BUFFER_ADDRESS.is_multiple_of(PAGE_SIZE));
    Ok(())
}

/// The final report and the accounting check.
fn judge(session: Session) -> Verdict {
    let frames = session.pager.frame_counts();
    let copies = session.pager.copy_slots_in_use();
    report::class_costs(&session.costs);
    report::total_stats(&Totals {
        clients: session.started,
        faults: session.pager.faults(),
        distinct_image_pages: session.platform.distinct_image_pages(),
        frames,
        copy_slots_in_use: copies,
        kernel_entries: session.fault_entries,
        vm_faults: session.vm_faults,
        policy: pager::Policy::name(session.pager.policy()),
        startup_pages: session.startup_pages,
        startup_entries: session.startup_entries,
    });
    let (heap_now, heap_peak) = crate::heap::usage();
    log::info!("pager: heap {heap_now} bytes in use, {heap_peak} at most");
    if let Some(failure) = session.failure {
        return Err(failure);
    }
    if frames.in_use != 0 || frames.free != frames.created || copies != 0 {
        return Err(alloc::format!(
            "frames not all returned: {} in use, {} free of {} created, {copies} copy slots in use",
            frames.in_use,
            frames.free,
            frames.created
        ));
    }
    if session.platform.frames_created() != frames.created {
        return Err(alloc::format!(
            "the platform retyped {} frames but the pager counts {}",
            session.platform.frames_created(),
            frames.created
        ));
    }
    Ok(())
}
