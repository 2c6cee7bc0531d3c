//! Replaying a fault trace recorded on seL4 (`cargo xtask trace`) through the real pager core.
//!
//! The replay rebuilds what the root task built: one pager for the packed image (the image's regions
//! created first, each app's ELF registered at its page of the image), and for each launch record a
//! client with the same areas (the app ABI's one list of an app's areas, through `Pager::add_app`,
//! as `root-task/src/lifecycle.rs` adds them) and the policy's start-up work. Then, in the trace's
//! order, each fault record is a reference: when the model kernel already maps the page with the
//! rights asked for, the client would not have faulted and nothing happens; otherwise it is a fault,
//! served by [`Pager::handle_fault`] under the replay's policy. A refusal stops the client, as on
//! seL4 (its later records are skipped until its end). Shares and ends are replayed as they came.
//!
//! What that makes exact, for a trace recorded without a window: the trace holds every page's first
//! touch by every client, in order, with its access. Any policy that never evicts maps a superset of
//! the seed's pages, only earlier, with each page's content fixed by the ELF; so a client faults under
//! it exactly on the recorded references its earlier faults (and start-up work) did not map, and the
//! replay's counts by class are those of booting the image under that policy. The interleaving of
//! clients is the recorded one; the counts by class do not depend on it (a fault-around maps only
//! the faulting client's own pages, and which client first makes a shared page changes only whose
//! count it is in).

use std::fmt;

use bootimage::BootImage as PackedImage;
use pager::{
    Access, BuiltinPolicy, ClientId, EvictCounts, EvictMode, Fault, FaultClass, FaultCounts, FrameContent,
    Pager, PagerConfig, SharedId, StoreCounts,
};
use trace::{kind, Record};

use crate::kernel::{ModelConfig, ModelKernel};

/// Frames retyped per kernel call, as the root task asks (`pager_mode.rs`).
const RETYPE_BATCH: u32 = 32;
/// Areas in one client, as the root task allows.
const MAX_AREAS: usize = 32;
/// Cap-copy slots per pool frame, as the root task keeps at most.
const COPIES_PER_FRAME: u32 = 4;

/// How to replay.
#[derive(Clone, Copy, Debug)]
pub struct ReplayOptions {
    pub policy: BuiltinPolicy,
    /// Every client's frame budget (`None`: each app's own, from the image).
    pub budget: Option<u32>,
}

/// What a replay counted: the figures of an image's `[stats] scope=total` line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Clients started.
    pub clients: u64,
    /// VM faults the clients took (served or refused).
    pub faults: u64,
    /// Pages served, by class, and faults refused.
    pub classes: FaultCounts,
    /// Pool frames retyped, and free at the end.
    pub frames_created: u32,
    pub frames_free: u32,
    /// Pages the policy mapped before clients started.
    pub startup_pages: u64,
    /// Trace records read, and references that did not fault.
    pub records: u64,
    pub hits: u64,
    /// What eviction did (all zero unless [`Replay::set_eviction`] named a mode), and the store.
    /// A replay's kernel keeps no page contents, so every page stored is a zero marker: the
    /// store's bytes and ratio come from seL4 only; evictions and refaults are the pager's own.
    pub evict: EvictCounts,
    pub store: StoreCounts,
}

impl ReplayStats {
    /// The `[stats] scope=total` line's figures the replay knows, in its key order.
    pub fn to_stats_line(&self, policy: &str) -> String {
        let mut line = format!("[stats] scope=total clients={} faults={}", self.clients, self.faults);
        for (name, count) in self.classes.by_class().take(FaultCounts::BEFORE_EVICTION) {
            line.push_str(&format!(" {name}={count}"));
        }
        line.push_str(&format!(
            " refused={} frames_created={} frames_free={} policy={policy} startup_pages={} records={} hits={}",
            self.classes.refused,
            self.frames_created,
            self.frames_free,
            self.startup_pages,
            self.records,
            self.hits
        ));
        line
    }
}

impl ReplayStats {
    /// The eviction figures as a `[stats] scope=evict` line (the names the root task's report uses).
    pub fn to_evict_stats_line(&self, mode: EvictMode) -> String {
        let (e, c, s) = (&self.evict, &self.classes, &self.store);
        let ratio =
            e.ratio_milli().map_or_else(|| "-".to_string(), |r| format!("{}.{:03}", r / 1000, r % 1000));
        format!(
            "[stats] scope=evict mode={mode} evict_clean={} evict_dirty={} soft_unmaps={} refault_soft={} \
             refault_store={} dirty={} zero_stored={} compressions={} decompressions={} bytes_in={} \
             bytes_stored={} ratio={ratio} stored_pages={} store_bytes={} store_peak={} store_full={}",
            e.evictions_clean,
            e.evictions_dirty,
            e.soft_unmaps,
            c.refault_soft,
            c.refault_store,
            c.dirty,
            e.zero_pages,
            e.compressions,
            e.decompressions,
            e.bytes_in,
            e.bytes_stored,
            s.pages,
            s.used,
            s.peak,
            e.store_full,
        )
    }
}

/// Why a trace cannot be replayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplayError {
    /// The packed image does not parse.
    Image(String),
    /// Record `index` names something the replay cannot follow (a client never launched, an app the
    /// image does not have, a share the pager refuses).
    Record { index: usize, reason: String },
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Image(reason) => write!(f, "the packed image: {reason}"),
            Self::Record { index, reason } => write!(f, "trace record {index}: {reason}"),
        }
    }
}

/// The pager for a packed image on the model kernel, ready to follow a trace.
pub struct Replay<'img> {
    image: PackedImage<'img>,
    pub pager: Pager<'img, BuiltinPolicy>,
    pub kernel: ModelKernel,
    regions: Vec<SharedId>,
    images: Vec<pager::ImageId>,
    budget: Option<u32>,
    /// Every client's eviction mode ([`Replay::set_eviction`]).
    evict: EvictMode,
    /// Trace client number → the replay's client, while it runs (`None` once stopped or ended).
    clients: Vec<Option<ClientId>>,
    stats: ReplayStats,
}

impl<'img> Replay<'img> {
    /// A pager set up as the root task sets it up for `image` (a packed apps image).
    pub fn new(image_bytes: &'img [u8], options: ReplayOptions) -> Result<Self, ReplayError> {
        let image = PackedImage::parse(image_bytes).map_err(|e| ReplayError::Image(format!("{e:?}")))?;
        let header = image.header();
        let frame_capacity = header.frame_capacity.get();
        let instances: usize = image.apps().iter().map(|a| usize::from(a.instances.get())).sum();
        let copy_slots = match header.copy_slot_limit.get() {
            0 => frame_capacity.saturating_mul(COPIES_PER_FRAME),
            limit => limit.min(frame_capacity.saturating_mul(COPIES_PER_FRAME)),
        };
        let config = PagerConfig {
            max_clients: instances.max(1),
            max_areas_per_client: MAX_AREAS,
            frame_capacity,
            retype_batch: RETYPE_BATCH,
            copy_slots,
            // As the root task gives them: 512 slots of 2 MiB frames under the large-pages policy.
            large_frame_capacity: if options.policy == BuiltinPolicy::LargePages { 512 } else { 0 },
            // Unbounded: a replay's kernel keeps no page contents, so every page an evicting
            // client's eviction stores is a zero marker, which takes no bytes.
            store_bytes: u32::MAX,
        };
        let mut pager = Pager::new(config, options.policy);
        let mut regions = Vec::new();
        for _ in image.regions() {
            regions.push(pager.create_region().map_err(|e| ReplayError::Image(e.to_string()))?);
        }
        let mut images = Vec::new();
        for app in image.apps() {
            let id = pager
                .add_image(image.elf(app), app.elf_page.get())
                .map_err(|e| ReplayError::Image(format!("app {:?}: {e}", app.name())))?;
            images.push(id);
        }
        // No frame's bytes: the counts never depend on them, and keeping them made each fault cost
        // a host page's allocation and zeroing.
        let mut kernel = ModelKernel::without_contents(ModelConfig::default(), image_bytes.len());
        kernel.reserve_copy_slots(copy_slots);
        Ok(Self {
            image,
            pager,
            kernel,
            regions,
            images,
            budget: options.budget,
            evict: EvictMode::None,
            clients: Vec::new(),
            stats: ReplayStats::default(),
        })
    }

    /// Makes every client launched from now on evict in `mode` at its budget (or when the pool is
    /// exhausted) instead of being stopped.
    pub fn set_eviction(&mut self, mode: EvictMode) {
        self.evict = mode;
    }

    /// Replays every record, in order.
    pub fn run(&mut self, records: &[Record]) -> Result<ReplayStats, ReplayError> {
        for (index, record) in records.iter().enumerate() {
            self.step(record).map_err(|reason| ReplayError::Record { index, reason })?;
        }
        Ok(self.stats())
    }

    /// The counts so far.
    pub fn stats(&self) -> ReplayStats {
        let frames = self.pager.frame_counts();
        ReplayStats {
            classes: *self.pager.faults(),
            frames_created: frames.created,
            frames_free: frames.free,
            evict: self.pager.evict_counts(),
            store: self.pager.store_counts(),
            ..self.stats
        }
    }

    fn running(&self, client: u16) -> Option<ClientId> {
        self.clients.get(usize::from(client)).copied().flatten()
    }

    /// Replays one record.
    #[inline]
    pub fn step(&mut self, record: &Record) -> Result<(), String> {
        self.stats.records += 1;
        // The usual record, first and small: a reference that finds its page mapped.
        if record.kind == kind::FAULT {
            let client = record.client.get();
            if let Some(id) = self.running(client) {
                self.reference(id, client, record);
            }
            return Ok(());
        }
        self.step_other(record)
    }

    /// A record other than a reference.
    #[inline(never)]
    fn step_other(&mut self, record: &Record) -> Result<(), String> {
        let client = record.client.get();
        match record.kind {
            kind::LAUNCH => self.launch(client, record.app.get()),
            kind::ADVISE => {
                let Some(id) = self.running(client) else { return Ok(()) };
                let advice = pager::Advice::from_code(u64::from(record.access))
                    .ok_or_else(|| format!("advice {} is unknown", record.access))?;
                let start = record.page_address();
                // Its outcome is the pager's, as on seL4: a refused advice changes nothing.
                let _ = self.pager.advise(&mut self.kernel, id, start, u64::from(record.frame.get()), advice);
                Ok(())
            }
            kind::SHARE => {
                let (Some(from), Some(to)) = (self.running(client), self.running(record.app.get())) else {
                    return Ok(());
                };
                let at = u64::from(record.frame.get()) * pager::PAGE_SIZE;
                self.pager
                    .share(from, record.page_address(), to, at)
                    .map_err(|e| format!("a share the pager refuses: {e}"))
            }
            _ => {
                if let Some(id) = self.running(client) {
                    self.end(id, client);
                }
                Ok(())
            }
        }
    }

    fn launch(&mut self, trace_client: u16, app_index: u16) -> Result<(), String> {
        let app = self
            .image
            .apps()
            .get(usize::from(app_index))
            .ok_or_else(|| format!("app {app_index} is not in the image"))?;
        let budget = self.budget.or(match app.frame_budget.get() {
            0 => None,
            b => Some(b),
        });
        let client = self.pager.add_client_evicting(budget, self.evict).map_err(|e| e.to_string())?;
        self.kernel.create_address_space(client);
        self.add_areas(client, app_index).map_err(|e| format!("client {trace_client}: {e}"))?;
        let slot = usize::from(trace_client);
        if self.clients.len() <= slot {
            self.clients.resize(slot + 1, None);
        }
        self.stats.clients += 1;
        match self.pager.start_client(&mut self.kernel, client) {
            Ok(pages) => {
                self.stats.startup_pages += u64::from(pages);
                self.clients[slot] = Some(client);
            }
            Err(_) => {
                // Stopped before it ran, as on seL4: its records, if any, are skipped.
                self.remove(client);
            }
        }
        Ok(())
    }

    /// The areas the root task gives an instance: the app ABI's one list (`Pager::add_app`).
    fn add_areas(&mut self, client: ClientId, app_index: u16) -> Result<(), String> {
        let app = &self.image.apps()[usize::from(app_index)];
        let attachments = self.image.app_attachments(app);
        let image = self.images[usize::from(app_index)];
        self.pager
            .add_app(client, image, &app.layout(), attachments, &self.regions)
            .map_err(|e| e.to_string())
    }

    /// One recorded reference: a fault unless the page is mapped with the rights it needs.
    #[inline]
    fn reference(&mut self, client: ClientId, trace_client: u16, record: &Record) {
        let write = record.access == trace::access::WRITE;
        if self.kernel.allows(client, record.page_address(), write) {
            self.stats.hits += 1;
            return;
        }
        self.fault(client, trace_client, record);
    }

    /// A reference the model kernel does not map: the pager's fault.
    #[inline(never)]
    fn fault(&mut self, client: ClientId, trace_client: u16, record: &Record) {
        let access = match record.access {
            trace::access::WRITE => Access::Write,
            trace::access::EXECUTE => Access::Execute,
            _ => Access::Read,
        };
        let address = record.page_address();
        self.stats.faults += 1;
        let fault = Fault { address, ip: record.ip.get(), access };
        if self.pager.handle_fault(&mut self.kernel, client, fault).is_err() {
            // Stopped, as the fault loop stops it.
            self.end(client, trace_client);
        }
    }

    fn end(&mut self, client: ClientId, trace_client: u16) {
        self.clients[usize::from(trace_client)] = None;
        self.remove(client);
    }

    fn remove(&mut self, client: ClientId) {
        let _ = self.pager.remove_client(&mut self.kernel, client);
        self.kernel.destroy_address_space(client);
    }
}

/// Replays `records` recorded from `image_bytes` under `options`.
pub fn replay(
    image_bytes: &[u8],
    records: &[Record],
    options: ReplayOptions,
) -> Result<ReplayStats, ReplayError> {
    Replay::new(image_bytes, options)?.run(records)
}

/// Replays `records` recorded from `image_bytes` under `options`, every client evicting in `evict`.
pub fn replay_evicting(
    image_bytes: &[u8],
    records: &[Record],
    options: ReplayOptions,
    evict: EvictMode,
) -> Result<ReplayStats, ReplayError> {
    let mut replay = Replay::new(image_bytes, options)?;
    replay.set_eviction(evict);
    replay.run(records)
}

/// The trace of one client of app 0 running `pattern` over the pages from `base`: its launch, a
/// fault record per reference (a replay decides which of them fault) and its end. What a recording
/// would hold of the same pattern run by `apps/pattern` on seL4 when every reference faulted.
pub fn pattern_trace(pattern: &trace::pattern::Pattern, base: u64) -> Vec<Record> {
    let mut records = Vec::with_capacity(pattern.len() as usize + 2);
    records.push(Record::launch(0, 0, 0));
    records.extend(pattern.references().map(|r| Record {
        kind: kind::FAULT,
        access: if r.write { trace::access::WRITE } else { trace::access::READ },
        page: trace::page_number(base + u64::from(r.page) * pager::PAGE_SIZE).into(),
        ..Record::default()
    }));
    records.push(Record::end(0, 0));
    records
}

/// The class a trace record names, as the pager's (`None` for a refusal or an unknown number).
pub fn class_of(code: u8) -> Option<FaultClass> {
    Some(match code {
        trace::class::SHARED_HIT => FaultClass::SharedHit,
        trace::class::IMAGE_FRAME => FaultClass::ImageFrame,
        trace::class::COPY => FaultClass::NewFrame(FrameContent::Copy),
        trace::class::ZERO => FaultClass::NewFrame(FrameContent::Zero),
        trace::class::MIXED => FaultClass::NewFrame(FrameContent::Mixed),
        trace::class::SPURIOUS => FaultClass::Spurious,
        trace::class::LARGE => FaultClass::Large,
        trace::class::ZERO_SHARED => FaultClass::ZeroShared,
        trace::class::ZERO_UPGRADE => FaultClass::Upgrade,
        trace::class::COW_COPY => FaultClass::CowCopy,
        _ => return None,
    })
}

/// The policy a packed image's header names.
pub fn policy_of(number: u32, pages: u32) -> Option<BuiltinPolicy> {
    pager::Mode::from_code(number).map(|mode| BuiltinPolicy::of_mode(mode, pages))
}

#[cfg(test)]
mod tests {
    use bootimage::{AppSpec, ImageSpec};
    use trace::{access, class};

    use super::*;
    use crate::elf::{ElfBuilder, FLAGS_RW, FLAGS_RX};

    /// One app: two text pages, a data page in the file and a bss page, a 4-page heap and a stack.
    fn image() -> Vec<u8> {
        let elf = ElfBuilder::new()
            .segment(0x40_0000, vec![0x90; 0x2000], 0x2000, FLAGS_RX)
            .segment(0x60_0000, vec![7; 0x1000], 0x2000, FLAGS_RW)
            .build();
        let app = AppSpec {
            name: "a".into(),
            elf,
            instances: 1,
            heap_base: 0x1000_0000,
            heap_size: 0x4000,
            stack_top: 0x7000_0000,
            stack_size: 0x4000,
            ..AppSpec::default()
        };
        ImageSpec { name: "t".into(), frame_capacity: 64, apps: vec![app], ..ImageSpec::default() }
            .to_bytes()
            .unwrap()
    }

    fn fault(address: u64, access_code: u8, class_code: u8) -> Record {
        Record {
            kind: kind::FAULT,
            access: access_code,
            class: class_code,
            page: trace::page_number(address).into(),
            ip: 0x40_0010.into(),
            ..Record::default()
        }
    }

    /// A seed run: text, data, bss, stack, two heap pages, then a write to text (refused).
    fn records() -> Vec<Record> {
        vec![
            Record::launch(0, 0, 0),
            fault(0x40_0000, access::EXECUTE, class::IMAGE_FRAME),
            fault(0x6fff_f000, access::WRITE, class::ZERO),
            fault(0x60_0000, access::READ, class::COPY),
            fault(0x60_1000, access::WRITE, class::ZERO),
            fault(0x1000_0000, access::WRITE, class::ZERO),
            fault(0x1000_2000, access::READ, class::ZERO),
            fault(0x40_1000, access::WRITE, class::REFUSED),
            // Stopped: a later record of the client is skipped, as it never happens on seL4.
            fault(0x1000_3000, access::READ, class::ZERO),
            Record::end(0, 0),
        ]
    }

    #[test]
    fn a_budget_that_evicts_keeps_the_client_running() {
        let image = image();
        let heap = |n: u64| 0x1000_0000 + n * 0x1000;
        let mut records = vec![Record::launch(0, 0, 0)];
        for round in 0..3 {
            for n in 0..4 {
                let access = if round == 0 { access::WRITE } else { access::READ };
                records.push(fault(heap(n), access, class::ZERO));
            }
        }
        records.push(Record::end(0, 0));
        let options = ReplayOptions { policy: BuiltinPolicy::Seed, budget: Some(2) };
        let stopped = replay(&image, &records, options).unwrap();
        assert_eq!((stopped.classes.refused, stopped.evict.evictions()), (1, 0), "mode none stops it");
        for mode in [EvictMode::Fifo, EvictMode::Clock] {
            let stats = replay_evicting(&image, &records, options, mode).unwrap();
            assert_eq!(stats.classes.refused, 0, "{mode}");
            // Written, so dirty: each goes to the store (as a zero marker: no contents here).
            assert!(stats.evict.evictions_dirty >= 8, "{mode}: {:?}", stats.evict);
            assert_eq!(stats.evict.zero_pages, stats.evict.evictions_dirty);
            assert!(stats.classes.refault_store >= 8, "{mode}: {:?}", stats.classes);
            assert_eq!(stats.frames_free, stats.frames_created, "{mode}: every frame back");
            assert_eq!(stats.store.pages, 0, "{mode}: the store emptied at the end");
            let line = stats.to_evict_stats_line(mode);
            assert!(line.starts_with(&format!("[stats] scope=evict mode={mode} evict_clean=")), "{line}");
        }
    }

    #[test]
    fn seed_replays_every_recorded_fault_with_its_class() {
        let image = image();
        let options = ReplayOptions { policy: BuiltinPolicy::Seed, budget: None };
        let stats = replay(&image, &records(), options).unwrap();
        let c = stats.classes;
        assert_eq!((stats.clients, stats.faults, stats.hits), (1, 7, 0));
        assert_eq!((c.image_frame, c.copy, c.zero, c.mixed, c.refused), (1, 1, 4, 0, 1));
        assert_eq!(stats.frames_free, stats.frames_created, "every frame back after the end");
    }

    #[test]
    fn eager_maps_the_segments_and_stack_first_and_faults_on_the_heap_only() {
        let image = image();
        let options = ReplayOptions { policy: BuiltinPolicy::Eager, budget: None };
        let stats = replay(&image, &records(), options).unwrap();
        // Segments (2 + 2 pages) and the stack (4 pages) at start; the heap's two pages fault; the
        // write to text is refused as before.
        assert_eq!(stats.startup_pages, 8);
        assert_eq!((stats.faults, stats.classes.zero, stats.classes.refused), (3, 2, 1));
        assert_eq!(stats.hits, 4);
    }

    #[test]
    fn fault_around_maps_ahead_and_a_budget_stops_the_client() {
        let image = image();
        let around = ReplayOptions { policy: BuiltinPolicy::FaultAround { pages: 4 }, budget: None };
        let stats = replay(&image, &records(), around).unwrap();
        // Text page 0 brings page 1; data page 0 brings the bss page; heap page 0 brings 1 to 3.
        assert_eq!(stats.hits, 2);
        assert_eq!(stats.faults, 5);
        let tight = ReplayOptions { policy: BuiltinPolicy::Seed, budget: Some(2) };
        let stats = replay(&image, &records(), tight).unwrap();
        // Text (the image's frame), stack and data (two new frames), then bss: a third, over budget.
        assert_eq!((stats.faults, stats.classes.refused), (4, 1));
    }

    /// The patterns of manifests/patterns.toml, generated here as apps/pattern generates them on
    /// seL4: the pages each touches are its heap's zero faults there (the manifest's expectations).
    #[test]
    fn the_manifest_patterns_touch_the_pages_their_boot_expects() {
        let heap = |pages: u32| {
            let app = AppSpec {
                name: "pattern".into(),
                elf: ElfBuilder::new().segment(0x40_0000, vec![0x90; 0x1000], 0x1000, FLAGS_RX).build(),
                instances: 1,
                heap_base: 0x1000_0000,
                heap_size: pages * 4096,
                stack_top: 0x7000_0000,
                stack_size: 0x4000,
                ..AppSpec::default()
            };
            ImageSpec { name: "p".into(), frame_capacity: 4096, apps: vec![app], ..ImageSpec::default() }
                .to_bytes()
                .unwrap()
        };
        let cases = [
            ("sequential pages=200 passes=3 write=7", 200),
            ("strided pages=500 stride=7 count=1500 write=5", 500),
            ("random pages=1000 count=3000 seed=42 write=4", 950),
            ("phased pages=2000 set=40 phases=12 count=400 seed=7 write=3", 395),
            ("read-then-write pages=250", 250),
        ];
        for (description, pages) in cases {
            let pattern = trace::pattern::Pattern::parse(description).unwrap();
            let image = heap(pattern.pages);
            let options = ReplayOptions { policy: BuiltinPolicy::Seed, budget: None };
            let stats = replay(&image, &pattern_trace(&pattern, 0x1000_0000), options).unwrap();
            assert_eq!(stats.classes.zero, pages, "{description}");
        }
    }

    #[test]
    fn records_the_replay_cannot_follow_are_named() {
        let image = image();
        let options = ReplayOptions { policy: BuiltinPolicy::Seed, budget: None };
        let error = replay(&image, &[Record::launch(0, 5, 0)], options).unwrap_err();
        assert_eq!(error.to_string(), "trace record 0: app 5 is not in the image");
        assert!(matches!(replay(&[0; 64], &[], options), Err(ReplayError::Image(_))));
    }

    /// The total line `cargo xtask simulate` prints and the agreement reads, key for key.
    #[test]
    fn the_stats_line_names_each_figure() {
        let classes = FaultCounts {
            image_frame: 1,
            copy: 2,
            zero: 3,
            mixed: 4,
            shared_hit: 5,
            large: 6,
            zero_shared: 7,
            upgrade: 8,
            cow_copy: 9,
            refault_soft: 90,
            refused: 10,
            ..Default::default()
        };
        let stats = ReplayStats {
            clients: 11,
            faults: 12,
            classes,
            frames_created: 13,
            frames_free: 14,
            startup_pages: 15,
            records: 16,
            hits: 17,
            ..Default::default()
        };
        assert_eq!(
            stats.to_stats_line("seed"),
            "[stats] scope=total clients=11 faults=12 image=1 copy=2 zero=3 mixed=4 shared=5 large=6 \
             zero-shared=7 upgrade=8 cow-copy=9 refused=10 frames_created=13 frames_free=14 policy=seed \
             startup_pages=15 records=16 hits=17"
        );
    }
}
