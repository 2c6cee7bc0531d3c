//! A client's life in the root task: launch, start, end, tear down, and its instance's next run.
//!
//! Every run of an instance starts through [`Clients::launch`]: at boot for the first run
//! ([`Clients::launch_all`]), and from [`Clients::end`] when a run exits with its expected code and
//! the app has runs left. A later run is a fresh client (a new pager client, which takes the lowest
//! free number, and new seL4 objects in that number's block and chunk) in the same entry state.
//!
//! Teardown keeps one order ([`tear_down`]): the thread stops, the pager drops the client's
//! mappings and references, deleting its cap copies without unmapping them, then the client's
//! objects are revoked with its untyped chunk, which takes its VSpace and those mappings with it.
//!
//! The functions here take the pager and the platform from their caller (the fault loop owns both)
//! and keep the clients' records and the run's counts. [`tear_down`] is generic over the kernel
//! ([`ClientKernel`]), so the host tests run it against the model kernel of `sim`.

use alloc::string::String;
use alloc::vec::Vec;

use abi::EntryState;
use bootimage::{AppRecord, BootImage};
use pager::{ClientId, EvictMode, ImageId, KernelError, Pager, Platform, Policy, SharedId};
use sel4::{Endpoint, Tcb};

use crate::client::{self, Failure};
use crate::platform::Sel4Platform;
use crate::recorder::Recorder;
use crate::report::{self, Name};

/// One run of an app instance: what starting it takes, kept in its record for the next run.
#[derive(Clone, Copy)]
pub struct Launch {
    pub app: &'static AppRecord,
    /// The app's index in the image (for trace records).
    pub app_index: u16,
    /// The app's ELF, registered with the pager.
    pub image: ImageId,
    pub instance: u16,
    /// Runs of this instance still to start after this one.
    pub runs_left: u16,
}

/// What the pager knows about one running client, besides its areas.
pub struct ClientRecord {
    pub name: &'static str,
    pub instance: u16,
    pub expected_exit: i32,
    pub tcb: Tcb,
    /// Printed bytes not yet ended by a newline.
    pub line: Vec<u8>,
    /// The last fault, when it was served as spurious (address, ip): the same one again means the
    /// pager and the hardware disagree, and replying again would loop forever.
    pub last_spurious: Option<(u64, u64)>,
    /// VM faults this client took (served or not).
    pub faults: u64,
    /// The time stamp when the pager began setting this client up (see [`sel4::timestamp`]).
    pub setup_at: u64,
    /// When the client's thread was resumed, its setup (and the policy's start-up work) done.
    pub resumed_at: u64,
    /// What serving the fault on the client's first instruction took, when that instruction's own
    /// fetch faulted (its page not mapped yet); 0 when it did not. With `resumed_at - setup_at` it is
    /// the pager's work before the client's first instruction, whatever the scheduler does between.
    pub first_fetch_ticks: u64,
    /// How this run was started, and how many runs of the instance are left.
    pub launch: Launch,
}

impl ClientRecord {
    /// The client as reports name it.
    pub fn name(&self) -> Name<'static> {
        Name { app: self.name, instance: self.instance }
    }
}

/// How a client ended.
pub enum Ending {
    Exited(i64),
    Stopped,
}

/// What tearing a client down asks of the kernel besides the pager's platform: the seL4 platform
/// on target, the model kernel in the host tests.
pub trait ClientKernel: Platform {
    /// A client's thread.
    type Thread: Copy;
    /// Stops the thread, so that nothing runs while its mappings go.
    fn stop_thread(&mut self, thread: Self::Thread) -> Result<(), Failure>;
    /// Destroys the client's objects, its address space with every mapping left in it among them.
    fn destroy_space(&mut self, client: ClientId) -> Result<(), KernelError>;
}

impl ClientKernel for Sel4Platform {
    type Thread = Tcb;

    fn stop_thread(&mut self, tcb: Tcb) -> Result<(), Failure> {
        client::suspend(self, tcb)
    }

    fn destroy_space(&mut self, client: ClientId) -> Result<(), KernelError> {
        self.close_space(client)
    }
}

/// Tears a client down: its thread first, the pager's mappings and references next (the copies
/// deleted without an unmap, [`pager::platform::CopyFrameCaps::delete_copy_in_teardown`]; a frame
/// mapped with its own cap unmapped), its objects and address space last. Every step is tried; `Err` names the first that failed.
pub fn tear_down<K: ClientKernel, P: Policy>(
    pager: &mut Pager<'_, P>,
    kernel: &mut K,
    client: ClientId,
    thread: K::Thread,
) -> Result<(), String> {
    let mut first = None;
    if let Err(error) = kernel.stop_thread(thread) {
        first.get_or_insert(alloc::format!("{error}"));
    }
    if let Err(error) = pager.remove_client(kernel, client) {
        first.get_or_insert(alloc::format!("{error}"));
    }
    if let Err(error) = kernel.destroy_space(client) {
        first.get_or_insert(alloc::format!("revoking its objects: {error:?}"));
    }
    first.map_or(Ok(()), Err)
}

/// The clients of a boot image: their records and the counts the final report needs.
pub struct Clients {
    /// The endpoint every client calls and faults on (badged per client).
    endpoint: Endpoint,
    /// The boot image the clients come from.
    image: BootImage<'static>,
    /// The pager's shared object for each of the image's regions.
    regions: Vec<SharedId>,
    /// Indexed by client number.
    records: Vec<Option<ClientRecord>>,
    /// Clients started in all: every run of every instance.
    started: usize,
    /// Clients alive now (each started client until its teardown).
    live: usize,
    /// VM faults of the clients that have ended (their records' `faults`, summed as they go).
    ended_faults: u64,
    /// Pages mapped by the policy before clients started, and the kernel entries that took.
    startup_pages: u64,
    startup_entries: u64,
    /// The first reason the run fails, if any.
    failure: Option<String>,
    /// In recording mode, the trace being recorded ([`crate::recorder`]).
    pub recorder: Option<Recorder>,
}

impl Clients {
    /// No clients yet, for the image's apps, calling `endpoint`.
    pub fn new(endpoint: Endpoint, image: BootImage<'static>) -> Self {
        Self {
            endpoint,
            image,
            regions: Vec::new(),
            records: Vec::new(),
            started: 0,
            live: 0,
            ended_faults: 0,
            startup_pages: 0,
            startup_entries: 0,
            failure: None,
            recorder: None,
        }
    }

    /// VM faults received from every client there has been: each record counts its own, so the
    /// fault path keeps no second count.
    pub fn vm_faults(&self) -> u64 {
        self.ended_faults + self.records.iter().flatten().map(|record| record.faults).sum::<u64>()
    }

    /// Clients started in all: every run of every instance.
    pub fn started(&self) -> usize {
        self.started
    }

    /// Clients alive now.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Pages the policy mapped before clients started, and the kernel entries that took.
    pub fn startup(&self) -> (u64, u64) {
        (self.startup_pages, self.startup_entries)
    }

    /// The first reason the run fails, if any.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Records a failure of the run (the first one is reported).
    pub fn fail(&mut self, reason: String) {
        self.failure.get_or_insert(reason);
    }

    /// The record of a live client.
    pub fn record(&self, client: ClientId) -> Option<&ClientRecord> {
        self.records.get(usize::from(client.0)).and_then(Option::as_ref)
    }

    pub fn record_mut(&mut self, client: ClientId) -> Option<&mut ClientRecord> {
        self.records.get_mut(usize::from(client.0)).and_then(Option::as_mut)
    }

    /// The live client a message's badge names ([`crate::client::badge`]: its number plus one)
    /// and its record, with one bounds check: records are indexed by client number, so an index
    /// below their length is a `u16`; badge 0 wraps to an index no record has.
    pub fn record_of_badge(&mut self, badge: u64) -> Option<(ClientId, &mut ClientRecord)> {
        let index = badge.wrapping_sub(1) as usize;
        let record = self.records.get_mut(index)?.as_mut()?;
        Some((ClientId(index as u16), record))
    }

    /// Every live client with its record.
    pub fn live_records(&self) -> impl Iterator<Item = (ClientId, &ClientRecord)> + '_ {
        self.records
            .iter()
            .enumerate()
            .filter_map(|(number, record)| Some((ClientId(number as u16), record.as_ref()?)))
    }

    /// Whether `client`'s app may share areas into the app called `destination` (the manifest's
    /// `share_to`): consent comes from the image, never from the destination at run time.
    pub fn may_share(&self, client: ClientId, destination: &str) -> bool {
        let destination = self.image.apps().iter().position(|app| app.name() == destination);
        self.record(client)
            .zip(destination)
            .is_some_and(|(record, destination)| self.image.may_share(record.launch.app, destination))
    }

    /// The live client running instance `instance` of the app called `name`.
    pub fn find(&self, name: &str, instance: u64) -> Option<ClientId> {
        let position = self.records.iter().position(|record| {
            record.as_ref().is_some_and(|r| r.name == name && u64::from(r.instance) == instance)
        })?;
        Some(ClientId(position as u16))
    }

    /// Creates the image's regions, registers every app's ELF and launches the first run of every
    /// instance.
    pub fn launch_all(
        &mut self,
        pager: &mut Pager<'static>,
        platform: &mut Sel4Platform,
        first_page: u32,
    ) -> Result<(), String> {
        let image = self.image;
        for region in image.regions() {
            let id = pager.create_region().map_err(|e| alloc::format!("region {:?}: {e}", region.name()))?;
            self.regions.push(id);
        }
        for (app_index, app) in image.apps().iter().enumerate() {
            let app_index = app_index as u16;
            let elf = image.elf(app);
            let image_id = pager
                .add_image(elf, first_page + app.elf_page.get())
                .map_err(|e| alloc::format!("app {:?}: {e}", app.name()))?;
            for instance in 0..app.instances.get() {
                let runs_left = app.runs.get().saturating_sub(1);
                self.launch(
                    pager,
                    platform,
                    Launch { app, app_index, image: image_id, instance, runs_left },
                )?;
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
    pub fn launch(
        &mut self,
        pager: &mut Pager<'static>,
        platform: &mut Sel4Platform,
        launch: Launch,
    ) -> Result<(), String> {
        let Launch { app, app_index, image: image_id, instance, .. } = launch;
        let name = Name { app: app.name(), instance };
        // Where "instructions until the first instruction / until exit" count from.
        let setup_at = sel4::timestamp();
        let client = add_client(pager, platform, self.image, &self.regions, app, image_id)
            .map_err(|e| alloc::format!("{name}: {e}"))?;
        let tcb = match client::create(pager, platform, client, self.endpoint) {
            Ok(tcb) => tcb,
            Err(error) => {
                // Nothing is mapped yet: the pager forgets the client, the block's chunk is emptied.
                let _ = pager.remove_client(platform, client);
                let _ = platform.close_space(client);
                return Err(alloc::format!("{name}: {error}"));
            }
        };
        let slot = usize::from(client.0);
        if self.records.len() <= slot {
            self.records.resize_with(slot + 1, || None);
        }
        self.records[slot] = Some(ClientRecord {
            name: app.name(),
            instance,
            expected_exit: app.expected_exit.get(),
            tcb,
            line: Vec::new(),
            last_spurious: None,
            faults: 0,
            setup_at,
            resumed_at: 0,
            first_fetch_ticks: 0,
            launch,
        });
        self.started += 1;
        self.live += 1;
        if let Some(recorder) = &mut self.recorder {
            recorder.push(trace::Record::launch(client.0, app_index, instance));
        }
        let before = platform.kernel_entries();
        let started = pager.start_client(platform, client);
        self.startup_entries += platform.kernel_entries() - before;
        self.startup_pages += u64::from(*started.as_ref().unwrap_or(&0));
        if let Err(refusal) = started {
            sel4::debug_println!(
                "[pager] stopped {name}: start at {:#x} (ip {:#x}): {}",
                refusal.fault.address,
                refusal.fault.ip,
                refusal.reason
            );
            self.records[slot] = None;
            if let Some(state) = pager.client(client) {
                let stored = pager.stored_pages(client);
                report::client_stats(name, state, stored, 0, platform.paging_structures(client));
            }
            self.tear_down(pager, platform, client, tcb, name, app_index);
            return Ok(());
        }
        let entry = pager.image(image_id).map(|e| e.entry()).unwrap_or(0);
        let layout = app.layout();
        let state =
            EntryState::new(entry, layout.stack_top, u64::from(instance), layout.heap, u64::from(client.0));
        if let Err(error) = client::start(platform, tcb, &state) {
            self.records[slot] = None;
            self.tear_down(pager, platform, client, tcb, name, app_index);
            return Err(alloc::format!("{name}: {error}"));
        }
        if let Some(record) = self.records[slot].as_mut() {
            record.resumed_at = sel4::timestamp();
        }
        Ok(())
    }

    /// Ends a client: its last output, its report, then teardown. A run that exited with its
    /// expected code is followed by the instance's next run, if it has one left; a wrong exit or a
    /// stop ends the instance.
    pub fn end(
        &mut self,
        pager: &mut Pager<'static>,
        platform: &mut Sel4Platform,
        client: ClientId,
        ending: Ending,
    ) {
        let ended_at = sel4::timestamp();
        let Some(record) = self.records.get_mut(usize::from(client.0)).and_then(Option::take) else {
            return;
        };
        self.ended_faults += record.faults;
        let name = record.name();
        if !record.line.is_empty() {
            report::app_line(name, &record.line);
        }
        let mut again = false;
        if let Ending::Exited(code) = ending {
            sel4::debug_println!("[pager] {name} exited with {code}");
            if code != i64::from(record.expected_exit) {
                self.fail(alloc::format!("{name} exited with {code}, expected {}", record.expected_exit));
            } else {
                again = record.launch.runs_left > 0;
            }
        }
        if let Some(state) = pager.client(client) {
            let stored = pager.stored_pages(client);
            report::client_stats(name, state, stored, record.faults, platform.paging_structures(client));
        }
        report::timeline(name, &record, ended_at);
        self.tear_down(pager, platform, client, record.tcb, name, record.launch.app_index);
        if again {
            let next = Launch { runs_left: record.launch.runs_left - 1, ..record.launch };
            if let Err(reason) = self.launch(pager, platform, next) {
                self.fail(alloc::format!("starting the next run of {name}: {reason}"));
            }
        }
    }

    /// Tears down a client that has no record any more (or whose start failed).
    fn tear_down(
        &mut self,
        pager: &mut Pager<'static>,
        platform: &mut Sel4Platform,
        client: ClientId,
        tcb: Tcb,
        name: Name<'_>,
        app_index: u16,
    ) {
        self.live -= 1;
        if let Some(recorder) = &mut self.recorder {
            recorder.push(trace::Record::end(client.0, app_index));
            if let Some(window) = &mut recorder.window {
                window.forget(client);
            }
        }
        if let Err(reason) = tear_down(pager, platform, client, tcb) {
            self.fail(alloc::format!("tearing down {name}: {reason}"));
        }
    }
}

/// The pager's view of one instance: its image's segments, stack, heap and regions. On `Err` the
/// pager holds nothing of it.
fn add_client(
    pager: &mut Pager<'static>,
    platform: &mut Sel4Platform,
    image: BootImage<'static>,
    regions: &[SharedId],
    app: &AppRecord,
    image_id: ImageId,
) -> Result<ClientId, String> {
    let budget = match app.frame_budget.get() {
        0 => None,
        budget => Some(budget),
    };
    // The boot image's parse checked the number is one of bootimage::eviction's, the pager's codes.
    let evict = EvictMode::from_code(u32::from(app.evict)).unwrap_or_default();
    let client = pager.add_client_evicting(budget, evict).map_err(|e| alloc::format!("{e}"))?;
    if let Err(error) = add_areas(pager, image, regions, app, image_id, client) {
        let _ = pager.remove_client(platform, client);
        return Err(error);
    }
    Ok(client)
}

/// Every area of the instance, from the app ABI's list: segments, IPC buffer page (reserved),
/// heap, stack and its guard, regions.
fn add_areas(
    pager: &mut Pager<'static>,
    image: BootImage<'static>,
    regions: &[SharedId],
    app: &AppRecord,
    image_id: ImageId,
    client: ClientId,
) -> Result<(), String> {
    let attachments = image.app_attachments(app);
    pager.add_app(client, image_id, &app.layout(), attachments, regions).map_err(|error| {
        match error.area {
            Some(abi::AppArea::Region(attachment)) => {
                let name = image.regions()[usize::from(attachment.region)].name();
                alloc::format!("region {name:?}: {}", error.error)
            }
            _ => alloc::format!("{error}"),
        }
    })?;
    // The app's policy per area kind and attached region, as the manifest resolved it.
    let attached = image.attachments_of(app).iter().map(|a| (a.region.get(), a.policy));
    let policy = pager::AppPolicy::from_codes(app.policy, app.fault_around, attached)
        .map_err(|code| alloc::format!("policy number {code} is no policy's"))?;
    pager.apply_app_policy(client, &policy).map_err(|error| alloc::format!("{error}"))
}

#[cfg(test)]
mod tests {
    use pager::{Access, BuiltinPolicy, PagerConfig};
    use sim::elf::{ElfBuilder, FLAGS_RW, FLAGS_RX};
    use sim::{BootImage, ModelConfig, ModelKernel, Session, Violation};

    use super::*;

    /// The model has no threads: a client it serves runs only when a test touches its memory.
    impl ClientKernel for ModelKernel {
        type Thread = ();

        fn stop_thread(&mut self, (): ()) -> Result<(), Failure> {
            Ok(())
        }

        fn destroy_space(&mut self, client: ClientId) -> Result<(), KernelError> {
            self.destroy_address_space(client);
            Ok(())
        }
    }

    /// A client with an image page, a copied data page and a zero page mapped.
    fn session_with_a_client(boot: &BootImage) -> (Session<'_>, ClientId) {
        let mut session =
            Session::new(boot, PagerConfig::default(), ModelConfig::default(), BuiltinPolicy::Seed).unwrap();
        let client = session.spawn(session.image(0), None).unwrap();
        session.touch(client, 0x40_0000, Access::Execute).unwrap();
        session.write(client, 0x60_0010, b"DATA").unwrap();
        session.write(client, 0x60_2000, b"zero").unwrap();
        (session, client)
    }

    fn boot_image() -> BootImage {
        let elf = ElfBuilder::new()
            .segment(0x40_0000, vec![0x90; 0x1800], 0x1800, FLAGS_RX)
            .segment(0x60_0010, b"data".to_vec(), 0x3000, FLAGS_RW)
            .build();
        BootImage::new().with(&elf)
    }

    #[test]
    fn teardown_deletes_copies_without_unmapping_and_leaves_nothing_behind() {
        let boot = boot_image();
        let (mut session, client) = session_with_a_client(&boot);
        assert_eq!(session.kernel.mappings(client).len(), 3);
        let unmaps = session.kernel.counters().unmap_calls;

        tear_down(&mut session.pager, &mut session.kernel, client, ()).unwrap();
        // The space's destruction unmaps the copies; the zero page's frame, mapped with its own
        // cap (never deleted), is unmapped so that the cap can map it again.
        assert_eq!(session.kernel.counters().unmap_calls, unmaps + 1);
        assert!(!session.kernel.has_address_space(client));
        assert_eq!(session.kernel.mapped_pages(), 0);
        assert!(session.kernel.stale_mappings().is_empty());
        assert_eq!(session.kernel.live_copies(), 0);
        assert_eq!(session.pager.copy_slots_in_use(), 0);
        assert_eq!(session.pager.frame_counts().in_use, 0);
        assert_eq!(session.kernel.violations(), &[]);

        // The next run takes the same number and the freed frames, and sees none of the old bytes.
        let next = session.spawn(session.image(0), None).unwrap();
        assert_eq!(next, client);
        assert_eq!(session.read(next, 0x60_2000, 4).unwrap(), [0; 4]);
        assert_eq!(session.read(next, 0x60_0010, 4).unwrap(), b"data");
        assert_eq!(session.kernel.violations(), &[]);
    }

    /// The same steps with the space kept: the copies are gone but their pages stay mapped, which
    /// is why the destruction must follow the teardown delete. (The zero page, mapped with its
    /// frame's own cap, was unmapped.)
    #[test]
    fn without_destroying_the_space_the_teardown_delete_leaves_the_pages_mapped() {
        let boot = boot_image();
        let (mut session, client) = session_with_a_client(&boot);
        session.pager.remove_client(&mut session.kernel, client).unwrap();
        assert_eq!(session.kernel.live_copies(), 0);
        assert_eq!(session.kernel.stale_mappings().len(), 2);
        assert_eq!(session.kernel.read(client, 0x60_0010, 4), Ok(b"DATA".to_vec()));
        session.kernel.destroy_address_space(client);
        assert!(session.kernel.stale_mappings().is_empty());
        assert_eq!(session.kernel.violations(), &[]);
    }

    #[test]
    fn a_failed_step_is_named_and_the_later_ones_still_run() {
        let boot = boot_image();
        let (mut session, client) = session_with_a_client(&boot);
        tear_down(&mut session.pager, &mut session.kernel, client, ()).unwrap();
        let again = tear_down(&mut session.pager, &mut session.kernel, client, ());
        assert_eq!(again, Err(alloc::format!("{}", pager::PagerError::UnknownClient(client))));
        assert_eq!(session.kernel.violations(), &[Violation::NoAddressSpace { client }]);
    }
}
