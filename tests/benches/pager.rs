//! Host benchmark of the pager: fault resolutions per second by fault class, a mixed workload, teardown,
//! and heap bytes of pager metadata per resident page — each against a naive baseline measured in the
//! same run.
//!
//! `cargo bench -p pager-tests --bench pager` runs two passes:
//! 1. **Figures**: every scenario timed with `std::time::Instant` over whole rounds (setup untimed), the
//!    metadata measured with a counting allocator, a table printed and every figure written to
//!    `<target>/bench/host.json`.
//! 2. **Detail**: the same scenarios under divan, for spread and per-sample statistics.
//!
//! Three implementations run each scenario:
//! - `pager+model`: the pager on `sim::ModelKernel` — the whole fault path, frame fills and the model's
//!   own checks included (the host stand-in for seL4, not a measure of seL4's speed).
//! - `pager`: the pager on a null platform whose kernel operations do nothing — the pager's own
//!   bookkeeping, comparable with the baseline.
//! - `baseline`: a naive pager's bookkeeping: `BTreeMap`s for areas, `(client, vpage) → (frame, slot)`,
//!   frame reference counts and shared pagemaps, with the same fault cases, checked to classify every
//!   fault as the pager does.
//!
//! Under `cargo test --benches` (no `--bench` flag) every scenario runs once as a check and nothing is
//! written.

use std::collections::BTreeMap;
use std::fmt;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use divan::counter::ItemsCount;
use divan::Bencher;
use pager::platform::{CopyFrameCaps, FrameWindow, MapPages, RetypeFrames};
use pager::{
    Access, AreaKind, BuiltinPolicy, ClientId, CopySlot, Fault, FaultClass, FrameContent, FrameRef, ImageId,
    KernelError, MapError, Pager, PagerConfig, PagingLevel, Platform, PoolFrame, Rights, Segment, SharedId,
    PAGE_SIZE,
};
use pager_tests::pattern;
use sim::elf::{ElfBuilder, FLAGS_R, FLAGS_RW, FLAGS_RX};
use sim::{BootImage, ModelConfig, ModelKernel};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

/// Counts every allocation, so the baseline's `BTreeMap` bytes are measured, not estimated.
#[global_allocator]
static ALLOCATOR: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

const PAGE: u64 = PAGE_SIZE;

/// Capacities large enough for every scenario; the retype batch is the default one.
fn pager_config() -> PagerConfig {
    PagerConfig {
        max_clients: 64,
        max_areas_per_client: 32,
        frame_capacity: 1 << 18,
        copy_slots: 1 << 18,
        ..PagerConfig::default()
    }
}

fn model_config() -> ModelConfig {
    ModelConfig { untyped_bytes: 1 << 30, ..ModelConfig::default() }
}

// ---------------------------------------------------------------------------------------------------
// Scenarios

/// One fault to deliver: which client, where, and what the pager must classify it as.
#[derive(Clone, Copy, Debug)]
struct Op {
    client: usize,
    address: u64,
    access: Access,
    expect: Option<FaultClass>,
}

impl Op {
    fn fault(&self) -> Fault {
        // A data access reports an IP off the page; a fetch reports the page itself.
        let ip = if self.access == Access::Execute { self.address } else { 0 };
        Fault { address: self.address, ip, access: self.access }
    }
}

/// One client's address space.
#[derive(Clone, Debug, Default)]
struct ClientSpec {
    /// Boot-image file run by the client (an area per segment).
    image: Option<usize>,
    /// Anonymous read-write areas, `(base, size)`.
    anonymous: Vec<(u64, u64)>,
    /// A stack `(top, size)` with its guard page.
    stack: Option<(u64, u64)>,
    /// Shared regions attached read-write, `(region, base)`.
    attach: Vec<(usize, u64)>,
}

/// A scenario: the set-up (untimed), the faults that bring it to its starting state (untimed), and the
/// faults measured.
struct Spec {
    boot: BootImage,
    /// Segments of each boot-image file, for the baseline (the pager parses the files itself).
    segments: Vec<Vec<Segment>>,
    clients: Vec<ClientSpec>,
    /// Shared region sizes in bytes.
    regions: Vec<u64>,
    warmup: Vec<Op>,
    ops: Vec<Op>,
}

impl Spec {
    fn new(files: &[Vec<u8>]) -> Self {
        let mut boot = BootImage::new();
        for file in files {
            boot.add(file);
        }
        let segments = files
            .iter()
            .map(|f| pager::ElfImage::parse(f).expect("the bench images are valid").segments().to_vec())
            .collect();
        Self { boot, segments, clients: Vec::new(), regions: Vec::new(), warmup: Vec::new(), ops: Vec::new() }
    }
}

/// The measured scenarios.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// Read-only segment pages wholly in the file: the boot image's own frames.
    ImageFrame,
    /// Writable segment pages wholly in the file: a new frame and a 4 KiB copy.
    Copy,
    /// Anonymous pages: a new zeroed frame.
    Zero,
    /// Pages straddling a segment's file bounds: part copied, part zeroed.
    Mixed,
    /// Pages of a shared region another client faulted in first: a pagemap hit.
    SharedHit,
    /// Eight clients of one program touching text, data, .bss, heap, stack and a shared region in a
    /// shuffled order.
    Workload,
}

const SCENARIOS: [Scenario; 6] = [
    Scenario::ImageFrame,
    Scenario::Copy,
    Scenario::Zero,
    Scenario::Mixed,
    Scenario::SharedHit,
    Scenario::Workload,
];

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl Scenario {
    fn key(self) -> &'static str {
        match self {
            Self::ImageFrame => "image_frame",
            Self::Copy => "copy",
            Self::Zero => "zero",
            Self::Mixed => "mixed",
            Self::SharedHit => "shared_hit",
            Self::Workload => "mixed_workload",
        }
    }

    fn spec(self) -> &'static Spec {
        static SPECS: OnceLock<Vec<Spec>> = OnceLock::new();
        let specs = SPECS.get_or_init(|| SCENARIOS.iter().map(|s| s.build()).collect());
        &specs[SCENARIOS.iter().position(|s| *s == self).expect("listed")]
    }

    fn build(self) -> Spec {
        const PAGES: u64 = 1024;
        const TEXT: u64 = 0x0040_0000;
        const DATA: u64 = 0x1000_0000;
        let op = |client, address, access, class| Op { client, address, access, expect: Some(class) };
        match self {
            Self::ImageFrame => {
                let elf = ElfBuilder::new().segment(
                    TEXT,
                    pattern(1, (PAGES * PAGE) as usize),
                    PAGES * PAGE,
                    FLAGS_RX,
                );
                let mut spec = Spec::new(&[elf.build()]);
                spec.clients.push(ClientSpec { image: Some(0), ..ClientSpec::default() });
                let pages = (0..PAGES).map(|p| TEXT + p * PAGE);
                spec.ops = pages.map(|a| op(0, a, Access::Read, FaultClass::ImageFrame)).collect();
                spec
            }
            Self::Copy => {
                let elf = ElfBuilder::new().segment(TEXT, pattern(1, PAGE as usize), PAGE, FLAGS_RX).segment(
                    DATA,
                    pattern(2, (PAGES * PAGE) as usize),
                    PAGES * PAGE,
                    FLAGS_RW,
                );
                let mut spec = Spec::new(&[elf.build()]);
                spec.clients.push(ClientSpec { image: Some(0), ..ClientSpec::default() });
                let pages = (0..PAGES).map(|p| DATA + p * PAGE);
                spec.ops = pages
                    .map(|a| op(0, a, Access::Write, FaultClass::NewFrame(FrameContent::Copy)))
                    .collect();
                spec
            }
            Self::Zero => {
                let mut spec = Spec::new(&[]);
                spec.clients
                    .push(ClientSpec { anonymous: vec![(DATA, PAGES * PAGE)], ..ClientSpec::default() });
                let pages = (0..PAGES).map(|p| DATA + p * PAGE);
                spec.ops = pages
                    .map(|a| op(0, a, Access::Write, FaultClass::NewFrame(FrameContent::Zero)))
                    .collect();
                spec
            }
            Self::Mixed => {
                // Fifteen writable segments of one page of file bytes starting 0x10 into a page: each
                // straddles two pages, the first with `pad_lo`, the second with `pad_hi`. A segment has
                // at most two straddling pages, so the count comes from many clients.
                const SEGMENTS: u64 = 15;
                const CLIENTS: usize = 34;
                let mut elf = ElfBuilder::new().segment(TEXT, pattern(1, PAGE as usize), PAGE, FLAGS_RX);
                for s in 0..SEGMENTS {
                    elf = elf.segment(
                        DATA + s * 0x10_0000 + 0x10,
                        pattern(10 + s, PAGE as usize),
                        PAGE,
                        FLAGS_RW,
                    );
                }
                let mut spec = Spec::new(&[elf.build()]);
                for client in 0..CLIENTS {
                    spec.clients.push(ClientSpec { image: Some(0), ..ClientSpec::default() });
                    for s in 0..SEGMENTS {
                        for page in 0..2 {
                            let address = DATA + s * 0x10_0000 + page * PAGE;
                            spec.ops.push(op(
                                client,
                                address,
                                Access::Write,
                                FaultClass::NewFrame(FrameContent::Mixed),
                            ));
                        }
                    }
                }
                spec
            }
            Self::SharedHit => {
                let mut spec = Spec::new(&[]);
                spec.regions.push(PAGES * PAGE);
                for _ in 0..2 {
                    spec.clients.push(ClientSpec { attach: vec![(0, DATA)], ..ClientSpec::default() });
                }
                let pages = || (0..PAGES).map(|p| DATA + p * PAGE);
                spec.warmup = pages()
                    .map(|a| op(0, a, Access::Write, FaultClass::NewFrame(FrameContent::Zero)))
                    .collect();
                spec.ops = pages().map(|a| op(1, a, Access::Read, FaultClass::SharedHit)).collect();
                spec
            }
            Self::Workload => workload(),
        }
    }
}

/// Eight instances of a program with 64 pages of text, 16½ of read-only data, a data segment of 32
/// file pages starting 0x100 into its page with 64 pages of .bss above, an 8 MiB heap, a 256 KiB stack
/// and a 1 MiB region they all share; every instance touches every page, in one shuffled order.
fn workload() -> Spec {
    const CLIENTS: usize = 8;
    const TEXT: u64 = 0x0040_0000;
    const RODATA: u64 = 0x0050_0000;
    const DATA: u64 = 0x0060_0100;
    const HEAP: u64 = 0x1000_0000;
    const HEAP_PAGES: u64 = 2048;
    const REGION: u64 = 0x2000_0000;
    const REGION_PAGES: u64 = 256;
    const STACK_TOP: u64 = 0xB000_0000;
    const STACK_PAGES: u64 = 64;
    let rodata_bytes = 16 * PAGE + 0x800;
    let data_bytes = 32 * PAGE;
    let elf = ElfBuilder::new()
        .segment(TEXT, pattern(1, (64 * PAGE) as usize), 64 * PAGE, FLAGS_RX)
        .segment(RODATA, pattern(2, rodata_bytes as usize), rodata_bytes, FLAGS_R)
        .segment(DATA, pattern(3, data_bytes as usize), data_bytes + 64 * PAGE, FLAGS_RW);
    let mut spec = Spec::new(&[elf.build()]);
    spec.regions.push(REGION_PAGES * PAGE);

    let data_pages = pager::page_align_up(DATA + data_bytes + 64 * PAGE) / PAGE - DATA / PAGE;
    let areas: [(u64, u64, Access); 6] = [
        (TEXT, 64, Access::Execute),
        (RODATA, 17, Access::Read),
        (pager::page_align_down(DATA), data_pages, Access::Write),
        (HEAP, HEAP_PAGES, Access::Write),
        (STACK_TOP - STACK_PAGES * PAGE, STACK_PAGES, Access::Write),
        (REGION, REGION_PAGES, Access::Write),
    ];
    for client in 0..CLIENTS {
        spec.clients.push(ClientSpec {
            image: Some(0),
            anonymous: vec![(HEAP, HEAP_PAGES * PAGE)],
            stack: Some((STACK_TOP, STACK_PAGES * PAGE)),
            attach: vec![(0, REGION)],
        });
        for &(base, pages, access) in &areas {
            for page in 0..pages {
                spec.ops.push(Op { client, address: base + page * PAGE, access, expect: None });
            }
        }
    }
    shuffle(&mut spec.ops, 7);
    spec
}

/// Fisher–Yates with a splitmix64 stream: the same order on every run.
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

// ---------------------------------------------------------------------------------------------------
// The implementations

/// A scenario brought to its starting state by one implementation.
trait Rig<'a>: Sized {
    const NAME: &'static str;
    fn build(spec: &'a Spec) -> Self;
    /// Serves one fault; returns its class.
    fn fault(&mut self, op: &Op) -> FaultClass;
    /// Removes every client; returns the pages unmapped.
    fn teardown(&mut self) -> u64;
    /// Every fault of `ops`, checked against its expected class.
    fn run(&mut self, ops: &[Op]) {
        for op in ops {
            let class = self.fault(op);
            if let Some(expected) = op.expect {
                assert_eq!(class, expected, "{}: {op:?}", Self::NAME);
            }
            black_box(class);
        }
    }
}

/// What the pager needs of a kernel here, plus address-space lifetime.
trait Kernel: Platform + Sized {
    fn boot(spec: &Spec) -> Self;
    fn create(&mut self, client: ClientId);
    fn destroy(&mut self, client: ClientId);
}

impl Kernel for ModelKernel {
    fn boot(spec: &Spec) -> Self {
        ModelKernel::new(model_config(), spec.boot.bytes())
    }
    fn create(&mut self, client: ClientId) {
        self.create_address_space(client);
    }
    fn destroy(&mut self, client: ClientId) {
        self.destroy_address_space(client);
    }
}

/// A kernel that does nothing, so only the pager's own work is timed.
struct NullKernel {
    /// Which pool frames the window holds: the one state a platform keeps for the pager.
    windowed: Vec<u64>,
}

impl NullKernel {
    fn window_word(&mut self, frame: PoolFrame) -> &mut u64 {
        let word = frame.0 as usize / 64;
        if word >= self.windowed.len() {
            self.windowed.resize(word + 1, 0);
        }
        &mut self.windowed[word]
    }
}

impl RetypeFrames for NullKernel {
    fn retype_frames(&mut self, _first: PoolFrame, count: u32) -> Result<u32, KernelError> {
        Ok(count)
    }
    fn retype_large_frame(&mut self, frame: pager::LargeFrame) -> Result<(), KernelError> {
        black_box(frame);
        Ok(())
    }
}

impl CopyFrameCaps for NullKernel {
    fn copy_frame_cap(&mut self, frame: FrameRef, slot: CopySlot) -> Result<(), KernelError> {
        black_box((frame, slot));
        Ok(())
    }
    fn delete_copy(&mut self, slot: CopySlot) -> Result<(), KernelError> {
        black_box(slot);
        Ok(())
    }
    fn delete_copy_in_teardown(&mut self, slot: CopySlot) -> Result<(), KernelError> {
        black_box(slot);
        Ok(())
    }
}

impl MapPages for NullKernel {
    fn map_page(
        &mut self,
        client: ClientId,
        vaddr: u64,
        cap: pager::platform::MappingCap,
        rights: Rights,
    ) -> Result<(), MapError> {
        black_box((client, vaddr, cap, rights));
        Ok(())
    }
    fn map_paging_structure(&mut self, _: ClientId, _: u64, _: PagingLevel) -> Result<(), KernelError> {
        Ok(())
    }
    fn unmap_page(&mut self, cap: pager::platform::MappingCap) -> Result<(), KernelError> {
        black_box(cap);
        Ok(())
    }
}

impl FrameWindow for NullKernel {
    fn map_window(&mut self, frame: PoolFrame) -> Result<(), KernelError> {
        *self.window_word(black_box(frame)) |= 1 << (frame.0 % 64);
        Ok(())
    }
    fn is_windowed(&self, frame: PoolFrame) -> bool {
        let word = self.windowed.get(frame.0 as usize / 64).copied().unwrap_or(0);
        word & (1 << (frame.0 % 64)) != 0
    }
    fn write_frame(&mut self, frame: PoolFrame, offset: usize, bytes: &[u8]) {
        black_box((frame, offset, bytes));
    }
    fn zero_frame(&mut self, frame: PoolFrame, offset: usize, length: usize) {
        black_box((frame, offset, length));
    }
    fn zero_large_frame(&mut self, frame: pager::LargeFrame) {
        black_box(frame);
    }
    fn read_frame(&mut self, frame: PoolFrame, bytes: &mut [u8; 4096]) {
        black_box(frame);
        bytes.fill(0);
    }
}

impl Kernel for NullKernel {
    fn boot(_: &Spec) -> Self {
        NullKernel { windowed: Vec::new() }
    }
    fn create(&mut self, _: ClientId) {}
    fn destroy(&mut self, _: ClientId) {}
}

/// The pager on kernel `K`.
struct PagerRig<'a, K> {
    pager: Pager<'a>,
    kernel: K,
    clients: Vec<ClientId>,
}

impl<'a, K: Kernel> PagerRig<'a, K> {
    fn new(spec: &'a Spec) -> Self {
        let mut pager = Pager::new(pager_config(), BuiltinPolicy::Seed);
        let mut kernel = K::boot(spec);
        let images: Vec<ImageId> = (0..spec.boot.files().len())
            .map(|i| pager.add_image(spec.boot.file(i), spec.boot.files()[i].first_page).unwrap())
            .collect();
        let regions: Vec<SharedId> = spec.regions.iter().map(|_| pager.create_region().unwrap()).collect();
        let mut clients = Vec::new();
        for c in &spec.clients {
            let id = pager.add_client(None).unwrap();
            kernel.create(id);
            if let Some(image) = c.image {
                pager.load_image(id, images[image]).unwrap();
            }
            for &(base, size) in &c.anonymous {
                pager.add_anonymous(id, base, size, Rights::READ_WRITE, AreaKind::Heap).unwrap();
            }
            if let Some((top, size)) = c.stack {
                pager.add_stack(id, top, size).unwrap();
            }
            for &(region, base) in &c.attach {
                let kind = AreaKind::Region(region as u16);
                pager
                    .attach_region(id, regions[region], base, spec.regions[region], Rights::READ_WRITE, kind)
                    .unwrap();
            }
            clients.push(id);
        }
        let mut rig = Self { pager, kernel, clients };
        rig.run(&spec.warmup);
        rig
    }
}

impl<'a, K: Kernel> Rig<'a> for PagerRig<'a, K> {
    const NAME: &'static str = "pager";

    fn build(spec: &'a Spec) -> Self {
        Self::new(spec)
    }

    fn fault(&mut self, op: &Op) -> FaultClass {
        match self.pager.handle_fault(&mut self.kernel, self.clients[op.client], op.fault()) {
            Ok(resolution) => resolution.class,
            Err(refusal) => panic!("pager refused {op:?}: {refusal}"),
        }
    }

    fn teardown(&mut self) -> u64 {
        let mut unmapped = 0;
        for client in self.clients.drain(..) {
            unmapped += u64::from(self.pager.remove_client(&mut self.kernel, client).unwrap().pages_unmapped);
            self.kernel.destroy(client);
        }
        unmapped
    }
}

/// The naive pager's view of an area.
struct NaiveArea {
    end: u64,
    writable: bool,
    executable: bool,
    /// The segment behind the area and the boot-image page its file starts on, or `None` (anonymous).
    segment: Option<(Segment, u32)>,
    /// Straddling pages of a read-only segment whose pads are zeroes in the file: the pager maps the
    /// image's frame there (page address, image page).
    padded_pages: Vec<(u64, u32)>,
    region: Option<u16>,
}

/// A read-only segment's straddling pages that lie wholly in `file` with zeroes outside the
/// segment's file bytes, and the boot-image page of each.
fn zero_padded_pages(segment: &Segment, file: &[u8], first_page: u32) -> Vec<(u64, u32)> {
    if segment.rights.write {
        return Vec::new();
    }
    let (base, end) = segment.page_range();
    let file_bytes = segment.vaddr..segment.file_end();
    [base, end - PAGE]
        .into_iter()
        .filter(|&page| {
            !(page >= segment.vaddr && page + PAGE <= segment.file_end()) && page < segment.file_end()
        })
        .filter_map(|page| {
            let start = (segment.offset + page).checked_sub(segment.vaddr)?;
            let bytes = file.get(start as usize..(start + PAGE) as usize)?;
            let zeroes = (page..page + PAGE).zip(bytes).all(|(va, &b)| file_bytes.contains(&va) || b == 0);
            zeroes.then_some((page, first_page + (start / PAGE) as u32))
        })
        .collect()
}

/// The naive baseline: the same bookkeeping as the pager, in `BTreeMap`s keyed per page.
#[derive(Default)]
struct Baseline {
    areas: BTreeMap<(u16, u64), NaiveArea>,
    /// `(client, virtual page number)` → `(frame, copy slot)`; frames encoded as `FrameRef::to_bits`.
    mappings: BTreeMap<(u16, u64), (u32, u32)>,
    /// Pool frame → references.
    references: BTreeMap<u32, u32>,
    /// `(region, page index)` → frame.
    pagemaps: BTreeMap<(u16, u32), u32>,
    attachments: Vec<u32>,
    free_frames: Vec<u32>,
    next_frame: u32,
    free_slots: Vec<u32>,
    next_slot: u32,
    clients: u16,
}

impl Baseline {
    fn allocate_frame(&mut self) -> u32 {
        let frame = self.free_frames.pop().unwrap_or_else(|| {
            self.next_frame += 1;
            self.next_frame - 1
        });
        self.references.insert(frame, 1);
        frame
    }

    fn add_reference(&mut self, frame: u32) {
        *self.references.get_mut(&frame).expect("live frame") += 1;
    }

    fn release(&mut self, frame: u32) {
        if FrameRef::from_bits(frame) != FrameRef::Pool(PoolFrame(frame)) {
            return; // an image frame: never counted
        }
        let count = self.references.get_mut(&frame).expect("live frame");
        *count -= 1;
        if *count == 0 {
            self.references.remove(&frame);
            self.free_frames.push(frame);
        }
    }

    fn take_slot(&mut self) -> u32 {
        self.free_slots.pop().unwrap_or_else(|| {
            self.next_slot += 1;
            self.next_slot - 1
        })
    }
}

impl Rig<'_> for Baseline {
    const NAME: &'static str = "baseline";

    fn build(spec: &Spec) -> Self {
        let mut naive = Baseline { attachments: vec![0; spec.regions.len()], ..Baseline::default() };
        let first_pages: Vec<u32> = spec.boot.files().iter().map(|f| f.first_page).collect();
        for (client, c) in spec.clients.iter().enumerate() {
            let client = client as u16;
            if let Some(image) = c.image {
                for segment in &spec.segments[image] {
                    let (base, end) = segment.page_range();
                    let area = NaiveArea {
                        end,
                        writable: segment.rights.write,
                        executable: segment.rights.execute,
                        segment: Some((*segment, first_pages[image])),
                        padded_pages: zero_padded_pages(segment, spec.boot.file(image), first_pages[image]),
                        region: None,
                    };
                    naive.areas.insert((client, base), area);
                }
            }
            let anonymous = c.anonymous.iter().copied().chain(c.stack.map(|(top, size)| (top - size, size)));
            for (base, size) in anonymous {
                let area = NaiveArea {
                    end: base + size,
                    writable: true,
                    executable: false,
                    segment: None,
                    padded_pages: Vec::new(),
                    region: None,
                };
                naive.areas.insert((client, base), area);
            }
            for &(region, base) in &c.attach {
                let end = base + spec.regions[region];
                naive.attachments[region] += 1;
                let region = Some(region as u16);
                naive.areas.insert(
                    (client, base),
                    NaiveArea {
                        end,
                        writable: true,
                        executable: false,
                        segment: None,
                        padded_pages: Vec::new(),
                        region,
                    },
                );
            }
        }
        naive.clients = spec.clients.len() as u16;
        naive.run(&spec.warmup);
        naive
    }

    fn fault(&mut self, op: &Op) -> FaultClass {
        let client = op.client as u16;
        let address = op.address;
        // The area: the last one starting at or below the address, if it reaches that far.
        let Some((&(_, base), area)) = self
            .areas
            .range(..=(client, address))
            .next_back()
            .filter(|((c, _), a)| *c == client && address < a.end)
        else {
            panic!("baseline: no area for {op:?}");
        };
        let allowed = match op.access {
            Access::Read => true,
            Access::Write => area.writable,
            Access::Execute => area.executable,
        };
        assert!(allowed, "baseline: refused {op:?}");
        let key = (client, address / PAGE);
        if self.mappings.contains_key(&key) {
            return FaultClass::Spurious;
        }
        let index = ((address - base) / PAGE) as u32;
        let region = area.region;
        if let Some(&frame) = region.and_then(|r| self.pagemaps.get(&(r, index))) {
            self.add_reference(frame);
            let slot = self.take_slot();
            self.mappings.insert(key, (frame, slot));
            return FaultClass::SharedHit;
        }
        // The seed's cases, as the pager classifies them.
        let (class, image_page) = match area.segment {
            None => (FaultClass::NewFrame(FrameContent::Zero), None),
            Some((s, first_page)) => {
                let page = pager::page_align_down(s.vaddr) + u64::from(index) * PAGE;
                if page >= s.vaddr && page + PAGE <= s.file_end() {
                    if s.rights.write {
                        (FaultClass::NewFrame(FrameContent::Copy), None)
                    } else {
                        let file_page = (s.offset + (page - s.vaddr)) / PAGE;
                        (FaultClass::ImageFrame, Some(first_page + file_page as u32))
                    }
                } else if let Some(&(_, image_page)) = area.padded_pages.iter().find(|(p, _)| *p == page) {
                    (FaultClass::ImageFrame, Some(image_page))
                } else if page >= s.file_end() || s.file_size == 0 {
                    (FaultClass::NewFrame(FrameContent::Zero), None)
                } else {
                    (FaultClass::NewFrame(FrameContent::Mixed), None)
                }
            }
        };
        let frame = match image_page {
            Some(page) => FrameRef::Image(pager::ImagePage(page)).to_bits(),
            None => self.allocate_frame(),
        };
        let slot = self.take_slot();
        self.mappings.insert(key, (frame, slot));
        if let (Some(region), None) = (region, image_page) {
            self.add_reference(frame);
            self.pagemaps.insert((region, index), frame);
        }
        class
    }

    fn teardown(&mut self) -> u64 {
        let mut unmapped = 0;
        for client in 0..self.clients {
            let mapped: Vec<((u16, u64), (u32, u32))> =
                self.mappings.range((client, 0)..=(client, u64::MAX)).map(|(k, v)| (*k, *v)).collect();
            for (key, (frame, slot)) in mapped {
                self.mappings.remove(&key);
                self.free_slots.push(slot);
                self.release(frame);
                unmapped += 1;
            }
            let areas: Vec<(u16, u64)> =
                self.areas.range((client, 0)..=(client, u64::MAX)).map(|(k, _)| *k).collect();
            for key in areas {
                let area = self.areas.remove(&key).expect("listed");
                let Some(region) = area.region else { continue };
                let attached = &mut self.attachments[usize::from(region)];
                *attached -= 1;
                if *attached == 0 {
                    let entries: Vec<((u16, u32), u32)> = self
                        .pagemaps
                        .range((region, 0)..=(region, u32::MAX))
                        .map(|(k, v)| (*k, *v))
                        .collect();
                    for (key, frame) in entries {
                        self.pagemaps.remove(&key);
                        self.release(frame);
                    }
                }
            }
        }
        assert!(self.references.is_empty(), "baseline leaked {} frames", self.references.len());
        unmapped
    }
}

type ModelRig<'a> = PagerRig<'a, ModelKernel>;
type NullRig<'a> = PagerRig<'a, NullKernel>;

// ---------------------------------------------------------------------------------------------------
// Figures: timed with Instant over whole rounds

/// Rounds every figure is taken over, at the least.
const MIN_ROUNDS: u32 = 5;

/// Faults per second over rounds of `spec.ops`, each on a freshly built rig (building untimed), for at
/// least `budget` of timed work and at least [`MIN_ROUNDS`] rounds.
fn fault_rate<'a, R: Rig<'a>>(spec: &'a Spec, budget: Duration) -> Rate {
    let mut rate = Rate::default();
    while rate.rounds < MIN_ROUNDS || rate.time < budget {
        let mut rig = R::build(spec);
        let start = Instant::now();
        rig.run(&spec.ops);
        rate.add(spec.ops.len() as u64, start.elapsed());
        drop(black_box(rig));
    }
    rate
}

/// Teardown cost: every client of `spec` removed after all its faults, per page unmapped.
fn teardown_rate<'a, R: Rig<'a>>(spec: &'a Spec, budget: Duration) -> Rate {
    let mut rate = Rate::default();
    while rate.rounds < MIN_ROUNDS || rate.time < budget {
        let mut rig = R::build(spec);
        rig.run(&spec.ops);
        let start = Instant::now();
        let pages = rig.teardown();
        rate.add(pages, start.elapsed());
    }
    rate
}

/// Items over timed rounds. The headline figure is the median round's rate: a round that met the
/// host's own page faults on freshly grown heap (common for the first rounds) does not move it.
#[derive(Clone, Debug, Default)]
struct Rate {
    items: u64,
    time: Duration,
    rounds: u32,
    /// Each round's items per second.
    per_round: Vec<f64>,
}

impl Rate {
    fn add(&mut self, items: u64, time: Duration) {
        self.items += items;
        self.time += time;
        self.rounds += 1;
        self.per_round.push(items as f64 / time.as_secs_f64().max(1e-9));
    }

    /// Items per second, median round.
    fn per_second(&self) -> f64 {
        let mut rates = self.per_round.clone();
        rates.sort_by(f64::total_cmp);
        match rates.len() {
            0 => 0.0,
            n if n % 2 == 1 => rates[n / 2],
            n => (rates[n / 2 - 1] + rates[n / 2]) / 2.0,
        }
    }

    /// Items per second over all rounds together.
    fn mean_per_second(&self) -> f64 {
        self.items as f64 / self.time.as_secs_f64()
    }

    /// Nanoseconds per item, median round.
    fn nanoseconds_per_item(&self) -> f64 {
        1e9 / self.per_second()
    }
}

/// Checks each scenario once: the pager on the model kernel breaks no rule, and the baseline classifies
/// every fault as the pager does and unmaps as many pages.
fn check_scenarios() {
    for scenario in SCENARIOS {
        let spec = scenario.spec();
        let mut model = ModelRig::build(spec);
        let mut null = NullRig::build(spec);
        let mut naive = Baseline::build(spec);
        for op in &spec.ops {
            let class = model.fault(op);
            assert_eq!(null.fault(op), class, "{scenario}: null platform differs at {op:?}");
            assert_eq!(naive.fault(op), class, "{scenario}: baseline differs at {op:?}");
            if let Some(expected) = op.expect {
                assert_eq!(class, expected, "{scenario}: {op:?}");
            }
        }
        let unmapped = model.teardown();
        assert_eq!(null.teardown(), unmapped, "{scenario}: teardown");
        assert_eq!(naive.teardown(), unmapped, "{scenario}: baseline teardown");
        assert!(model.kernel.violations().is_empty(), "{scenario}: {:?}", model.kernel.violations());
        assert_eq!(model.pager.frame_counts().in_use, 0, "{scenario}: frames left in use");
    }
}

/// A touch pattern for the metadata measurement: one client, one anonymous area, every `stride`-th page.
#[derive(Clone, Copy, Debug)]
struct Pattern {
    key: &'static str,
    area_pages: u64,
    stride: u64,
}

const PATTERNS: [Pattern; 3] = [
    // 64 MiB, every page.
    Pattern { key: "dense", area_pages: 16 * 1024, stride: 1 },
    // 1 GiB, one page in 16 (one per 64 KiB).
    Pattern { key: "sparse", area_pages: 256 * 1024, stride: 16 },
    // 3 GiB, one page in 256 (one per MiB).
    Pattern { key: "very_sparse", area_pages: 768 * 1024, stride: 256 },
];

impl Pattern {
    fn spec(&self) -> Spec {
        const BASE: u64 = 0x1000_0000;
        let mut spec = Spec::new(&[]);
        spec.clients
            .push(ClientSpec { anonymous: vec![(BASE, self.area_pages * PAGE)], ..ClientSpec::default() });
        let pages = (0..self.area_pages).step_by(self.stride as usize);
        spec.ops = pages
            .map(|p| Op {
                client: 0,
                address: BASE + p * PAGE,
                access: Access::Write,
                expect: Some(FaultClass::NewFrame(FrameContent::Zero)),
            })
            .collect();
        spec
    }
}

#[derive(Clone, Copy, Debug)]
struct Metadata {
    resident: u64,
    /// `Pager::metadata_bytes()` after the touches.
    pager_reported: usize,
    /// Heap the pager grew by during the touches, as the allocator counted it.
    pager_heap: isize,
    /// Heap the baseline grew by during the touches.
    baseline_heap: isize,
}

/// Live heap bytes gained within `region`.
fn live_bytes(region: &Region<'_, std::alloc::System>) -> isize {
    let change = region.change();
    change.bytes_allocated as isize - change.bytes_deallocated as isize
}

fn measure_metadata(pattern: &Pattern) -> Metadata {
    let spec = pattern.spec();
    let mut pager = NullRig::build(&spec);
    let region = Region::new(ALLOCATOR);
    pager.run(&spec.ops);
    let pager_heap = live_bytes(&region);
    let resident = u64::from(pager.pager.client(pager.clients[0]).unwrap().resident_pages());
    assert_eq!(resident, spec.ops.len() as u64);
    let pager_reported = pager.pager.metadata_bytes();

    let mut naive = Baseline::build(&spec);
    let region = Region::new(ALLOCATOR);
    naive.run(&spec.ops);
    let baseline_heap = live_bytes(&region);
    assert_eq!(naive.mappings.len() as u64, resident);
    Metadata { resident, pager_reported, pager_heap, baseline_heap }
}

struct Figures {
    faults: Vec<(Scenario, [Rate; 3])>,
    teardown: [Rate; 3],
    metadata: Vec<(Pattern, Metadata)>,
}

const IMPLEMENTATIONS: [&str; 3] = ["pager_model", "pager", "baseline"];

fn measure(budget: Duration) -> Figures {
    let faults = SCENARIOS
        .iter()
        .map(|&scenario| {
            let spec = scenario.spec();
            let rates = [
                fault_rate::<ModelRig>(spec, budget),
                fault_rate::<NullRig>(spec, budget),
                fault_rate::<Baseline>(spec, budget),
            ];
            (scenario, rates)
        })
        .collect();
    let spec = Scenario::Workload.spec();
    let teardown = [
        teardown_rate::<ModelRig>(spec, budget),
        teardown_rate::<NullRig>(spec, budget),
        teardown_rate::<Baseline>(spec, budget),
    ];
    let metadata = PATTERNS.iter().map(|p| (*p, measure_metadata(p))).collect();
    Figures { faults, teardown, metadata }
}

fn print_figures(figures: &Figures) {
    println!();
    println!("Fault resolutions per second (median round; set-up untimed)");
    println!("{:<16} {:>14} {:>14} {:>14} {:>11}", "class", "pager+model", "pager", "baseline", "pager/base");
    for (scenario, rates) in &figures.faults {
        println!(
            "{:<16} {:>14.0} {:>14.0} {:>14.0} {:>10.2}x",
            scenario.key(),
            rates[0].per_second(),
            rates[1].per_second(),
            rates[2].per_second(),
            rates[1].per_second() / rates[2].per_second()
        );
    }
    let t = &figures.teardown;
    println!();
    println!("Teardown of the mixed workload's 8 clients (ns per page unmapped, median round)");
    println!(
        "{:<16} {:>14.1} {:>14.1} {:>14.1} {:>10.2}x",
        "teardown",
        t[0].nanoseconds_per_item(),
        t[1].nanoseconds_per_item(),
        t[2].nanoseconds_per_item(),
        t[1].nanoseconds_per_item() / t[2].nanoseconds_per_item()
    );
    println!(
        "  pager+model: the pager on sim::ModelKernel; pager: on a null platform (its own bookkeeping);"
    );
    println!("  baseline: BTreeMap bookkeeping; pager/base: pager over baseline (faults/s, or ns per page).");
    println!();
    println!("Heap bytes of metadata per resident page (one client, one anonymous area, every n-th page)");
    println!(
        "{:<18} {:>9} {:>9} {:>10} {:>13} {:>10} {:>11}",
        "pattern", "resident", "area MiB", "pager", "pager (heap)", "baseline", "pager/base"
    );
    for (pattern, m) in &figures.metadata {
        let per = |bytes: f64| bytes / m.resident as f64;
        println!(
            "{:<18} {:>9} {:>9} {:>10.1} {:>13.1} {:>10.1} {:>10.2}x",
            format!("{} 1/{}", pattern.key, pattern.stride),
            m.resident,
            (pattern.area_pages * PAGE) >> 20,
            per(m.pager_reported as f64),
            per(m.pager_heap as f64),
            per(m.baseline_heap as f64),
            m.pager_reported as f64 / m.baseline_heap as f64
        );
    }
    println!("  pager: Pager::metadata_bytes(); pager (heap): the heap the allocator saw the pager gain;");
    println!("  baseline: the heap the allocator saw the BTreeMap baseline gain.");
    println!();
}

/// Every figure as JSON (written by hand: a flat shape, no dependency).
fn json(figures: &Figures) -> String {
    let by_implementation = |value: &dyn Fn(&Rate) -> f64, rates: &[Rate; 3]| -> String {
        let fields: Vec<String> = IMPLEMENTATIONS
            .iter()
            .zip(rates)
            .map(|(name, r)| match value(r) {
                whole if whole.fract() == 0.0 => format!("\"{name}\": {whole}"),
                figure => format!("\"{name}\": {figure:.1}"),
            })
            .collect();
        fields.join(", ")
    };
    let mut out = String::from("{\n  \"schema\": 1,\n");
    out += "  \"units\": {\"fault_resolutions_per_second\": \"faults per second, median round (mean: all rounds together)\", \"teardown_ns_per_page\": \"ns per page unmapped, median round\", \"metadata_bytes_per_resident_page\": \"heap bytes per resident page\"},\n";
    out += "  \"implementations\": {\"pager_model\": \"the pager on sim::ModelKernel\", \"pager\": \"the pager on a null platform (its own bookkeeping)\", \"baseline\": \"BTreeMap per-page table, refcounts and pagemaps\"},\n";
    out += "  \"fault_resolutions_per_second\": {\n";
    let rows: Vec<String> = figures
        .faults
        .iter()
        .map(|(scenario, rates)| {
            format!(
                "    \"{}\": {{{}, \"faults_per_round\": {}, \"rounds\": {{{}}}, \"mean\": {{{}}}}}",
                scenario.key(),
                by_implementation(&Rate::per_second, rates),
                scenario.spec().ops.len(),
                by_implementation(&|r| f64::from(r.rounds), rates),
                by_implementation(&Rate::mean_per_second, rates),
            )
        })
        .collect();
    out += &rows.join(",\n");
    out += "\n  },\n";
    let t = &figures.teardown;
    out += &format!(
        "  \"teardown_ns_per_page\": {{{}, \"pages_per_round\": {}}},\n",
        by_implementation(&Rate::nanoseconds_per_item, t),
        t[0].items / u64::from(t[0].rounds)
    );
    out += "  \"metadata_bytes_per_resident_page\": {\n";
    let rows: Vec<String> = figures
        .metadata
        .iter()
        .map(|(p, m)| {
            let per = |bytes: f64| bytes / m.resident as f64;
            format!(
                "    \"{}\": {{\"stride_pages\": {}, \"area_pages\": {}, \"resident_pages\": {}, \"pager\": {:.2}, \"pager_heap_measured\": {:.2}, \"baseline\": {:.2}}}",
                p.key,
                p.stride,
                p.area_pages,
                m.resident,
                per(m.pager_reported as f64),
                per(m.pager_heap as f64),
                per(m.baseline_heap as f64)
            )
        })
        .collect();
    out += &rows.join(",\n");
    out += "\n  }\n}\n";
    out
}

/// `<target>/bench/host.json`, the target directory found from this binary's own path
/// (`<target>/<profile>/deps/<bench>`).
fn json_path() -> PathBuf {
    let exe = std::env::current_exe().expect("the bench binary's path");
    let target = exe.ancestors().nth(3).expect("the bench binary sits in <target>/<profile>/deps");
    target.join("bench").join("host.json")
}

// ---------------------------------------------------------------------------------------------------
// Detail: divan

#[divan::bench(args = SCENARIOS, sample_count = 20, sample_size = 1)]
fn faults_pager_model(bencher: Bencher, scenario: Scenario) {
    bench_faults::<ModelRig>(bencher, scenario);
}

#[divan::bench(args = SCENARIOS, sample_count = 20, sample_size = 1)]
fn faults_pager(bencher: Bencher, scenario: Scenario) {
    bench_faults::<NullRig>(bencher, scenario);
}

#[divan::bench(args = SCENARIOS, sample_count = 20, sample_size = 1)]
fn faults_baseline(bencher: Bencher, scenario: Scenario) {
    bench_faults::<Baseline>(bencher, scenario);
}

fn bench_faults<R: Rig<'static>>(bencher: Bencher, scenario: Scenario) {
    let spec = scenario.spec();
    bencher.counter(ItemsCount::new(spec.ops.len())).with_inputs(|| R::build(spec)).bench_local_values(
        |mut rig| {
            rig.run(&spec.ops);
            rig
        },
    );
}

#[divan::bench(args = IMPLEMENTATIONS, sample_count = 10, sample_size = 1)]
fn teardown(bencher: Bencher, implementation: &str) {
    match implementation {
        "pager_model" => bench_teardown::<ModelRig>(bencher),
        "pager" => bench_teardown::<NullRig>(bencher),
        _ => bench_teardown::<Baseline>(bencher),
    }
}

fn bench_teardown<R: Rig<'static>>(bencher: Bencher) {
    let spec = Scenario::Workload.spec();
    bencher
        .counter(ItemsCount::new(spec.ops.len()))
        .with_inputs(|| {
            let mut rig = R::build(spec);
            rig.run(&spec.ops);
            rig
        })
        .bench_local_values(|mut rig| {
            black_box(rig.teardown());
            rig
        });
}

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    check_scenarios();
    if benchmarking {
        let start = Instant::now();
        let figures = measure(Duration::from_millis(400));
        print_figures(&figures);
        let path = json_path();
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("create the bench folder");
        std::fs::write(&path, json(&figures)).expect("write host.json");
        println!("figures written to {} ({:.1} s)", path.display(), start.elapsed().as_secs_f64());
    } else {
        // A check run (`cargo test --benches`): the scenarios checked above, and the metadata
        // measurement once; nothing timed or written.
        for pattern in &PATTERNS {
            let metadata = measure_metadata(pattern);
            assert!(metadata.pager_reported > 0 && metadata.baseline_heap > 0, "{pattern:?}: {metadata:?}");
        }
    }
    divan::main();
}
