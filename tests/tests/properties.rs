//! Property tests: random executables, random clients, random accesses, checked byte by byte against
//! the ELF rules and frame by frame against the model kernel.
//!
//! The oracle knows nothing of the pager's frames. It keeps, per client, the areas it expects (base,
//! rights, what fills them, and a *key*: private to the client, or the id of a shared object), and only
//! the pages clients wrote. A private written page forgets its writes when unmapped (its frame is gone);
//! a shared one keeps them (the pagemap holds the frame). Everything else must read as the ELF file says.

#![forbid(unsafe_code)]

use std::collections::HashMap;

use pager::{
    AppPolicy, AreaPolicy, BuiltinPolicy, ClientId, FrameRef, ImagePage, KernelError, Mode, PagerConfig,
    RefusalReason, Rights, ShareError,
};
use pager_tests::pattern;
use proptest::prelude::*;
use sim::elf::{ElfBuilder, FLAGS_R, FLAGS_RW, FLAGS_RX};
use sim::{BootImage, ModelConfig, Session, TouchError};

const PAGE: u64 = 4096;
/// Segments start here.
const SEGMENT_BASE: u64 = 0x0100_0000;
/// Shared areas and regions go here, 16 MiB apart, above every segment...
const SHARED_BASE: u64 = 0x8000_0000;
const SHARED_STRIDE: u64 = 0x0100_0000;
const MAX_SHARED: u64 = 100;
/// ...or 1 MiB apart below them, so an area shared into its own client can land before its source.
const LOW_SHARED_BASE: u64 = 0x0010_0000;
const LOW_SHARED_STRIDE: u64 = 0x0010_0000;
const MAX_LOW_SHARED: u64 = 15;
/// An address no area ever covers.
const NOWHERE: u64 = 0x8000;
const MAX_CLIENTS: usize = 5;

#[derive(Clone, Copy, Debug)]
struct SegmentPlan {
    gap_pages: u64,
    start_offset: u64,
    file_size: u64,
    extra_memory: u64,
    flags: u32,
}

fn segment_plan() -> impl Strategy<Value = SegmentPlan> {
    (
        0u64..3,
        0u64..PAGE,
        0u64..3 * PAGE,
        0u64..2 * PAGE,
        prop_oneof![Just(FLAGS_R), Just(FLAGS_RW), Just(FLAGS_RX)],
    )
        .prop_map(|(gap_pages, start_offset, file_size, extra_memory, flags)| SegmentPlan {
            gap_pages,
            start_offset,
            file_size,
            extra_memory,
            flags,
        })
}

/// An executable from plans: segments in address order, none sharing a page, the first executable.
fn build_elf(plans: &[SegmentPlan], seed: u64) -> ElfBuilder {
    let mut builder = ElfBuilder::new();
    let mut next_page = SEGMENT_BASE / PAGE;
    for (n, plan) in plans.iter().enumerate() {
        let vaddr = (next_page + plan.gap_pages) * PAGE + plan.start_offset;
        // Never empty in memory: an empty segment is skipped by the loader and would renumber areas.
        let memory_size = (plan.file_size + plan.extra_memory).max(1);
        let flags = if n == 0 { FLAGS_RX } else { plan.flags };
        builder =
            builder.segment(vaddr, pattern(seed + n as u64, plan.file_size as usize), memory_size, flags);
        next_page = (vaddr + memory_size).div_ceil(PAGE);
    }
    builder
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Spawn { image: usize },
    Read { client: usize, target: Target, length: u16 },
    Write { client: usize, target: Target, length: u16, byte: u8 },
    Execute { client: usize, target: Target },
    Unmap { client: usize, target: Target },
    Share { from: usize, area: usize, to: usize, low: bool },
    Region { members: u8, writable: u8, pages: u64 },
    Remove { client: usize },
}

/// An address in one of a client's areas (by index and offset, both reduced modulo what exists), or
/// nowhere.
#[derive(Clone, Copy, Debug)]
struct Target {
    area: usize,
    offset: u64,
    nowhere: bool,
}

fn target() -> impl Strategy<Value = Target> {
    (any::<usize>(), any::<u64>(), prop::bool::weighted(0.05)).prop_map(|(area, offset, nowhere)| Target {
        area,
        offset,
        nowhere,
    })
}

fn op() -> impl Strategy<Value = Op> {
    let client = any::<usize>();
    prop_oneof![
        2 => (0usize..2).prop_map(|image| Op::Spawn { image }),
        8 => (client, target(), 1u16..9000)
            .prop_map(|(client, target, length)| Op::Read { client, target, length }),
        6 => (client, target(), 1u16..5000, any::<u8>())
            .prop_map(|(client, target, length, byte)| Op::Write { client, target, length, byte }),
        2 => (client, target()).prop_map(|(client, target)| Op::Execute { client, target }),
        3 => (client, target()).prop_map(|(client, target)| Op::Unmap { client, target }),
        2 => (client, any::<usize>(), client, any::<bool>())
            .prop_map(|(from, area, to, low)| Op::Share { from, area, to, low }),
        1 => (any::<u8>(), any::<u8>(), 1u64..4)
            .prop_map(|(members, writable, pages)| Op::Region { members, writable, pages }),
        1 => client.prop_map(|client| Op::Remove { client }),
    ]
}

fn policy() -> impl Strategy<Value = BuiltinPolicy> {
    prop_oneof![
        3 => Just(BuiltinPolicy::Seed),
        1 => (1u32..4).prop_map(|pages| BuiltinPolicy::FaultAround { pages }),
        1 => Just(BuiltinPolicy::Eager),
        1 => Just(BuiltinPolicy::Named(Mode::ZeroPage)),
        1 => Just(BuiltinPolicy::Named(Mode::Cow)),
        // The images here have no whole 2 MiB span: it must behave as seed does (large pages
        // themselves are tested in large_pages.rs).
        1 => Just(BuiltinPolicy::LargePages),
    ]
}

/// A per-app table (a mode per area kind, windows for file and zero pages), as the boot image holds
/// it, applied to each client over the image-wide policy; `None` leaves the image's.
fn table() -> impl Strategy<Value = Option<AppPolicy>> {
    let code = (0u8..6).prop_map(|n| Mode::ALL[usize::from(n)].code() as u8);
    prop::option::weighted(0.3, (prop::array::uniform6(code), 0u8..4, 0u8..4)).prop_map(|table| {
        table.map(|(kinds, file, zero)| AppPolicy::from_codes(kinds, [file, zero], []).expect("valid codes"))
    })
}

/// Who sees the same page: a client alone, or every holder of a shared object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    Private(u64),
    Shared(u64),
}

/// What fills an area's pages before anyone writes.
#[derive(Clone, Copy, Debug)]
enum Fill {
    /// Segment `segment` of image `image`: page `n` of the area is page `n` of the segment's pages.
    Segment {
        image: usize,
        segment: usize,
    },
    Zero,
}

#[derive(Clone, Copy, Debug)]
struct OracleArea {
    base: u64,
    end: u64,
    rights: Rights,
    fill: Fill,
    key: Key,
}

struct Oracle<'a> {
    elves: &'a [ElfBuilder],
    clients: Vec<(ClientId, Vec<OracleArea>)>,
    /// Pages written since they were last filled from their source, by key and page index in the area.
    written: HashMap<(Key, u64), Vec<u8>>,
    next_key: u64,
    shares: u64,
    low_shares: u64,
}

impl Oracle<'_> {
    fn fresh_key(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key
    }

    fn initial_page(&self, area: &OracleArea, index: u64) -> Vec<u8> {
        match area.fill {
            Fill::Zero => vec![0; PAGE as usize],
            Fill::Segment { image, segment } => {
                let elf = &self.elves[image];
                let start = elf.segments()[segment].vaddr / PAGE * PAGE + index * PAGE;
                (start..start + PAGE)
                    .map(|a| elf.expected_byte(a).expect("inside the segment's pages"))
                    .collect()
            }
        }
    }

    fn page(&self, area: &OracleArea, index: u64) -> Vec<u8> {
        match self.written.get(&(area.key, index)) {
            Some(bytes) => bytes.clone(),
            None => self.initial_page(area, index),
        }
    }

    fn expected_bytes(&self, area: &OracleArea, address: u64, length: u64) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(length as usize);
        let end = address + length;
        let mut at = address;
        while at < end {
            let page = self.page(area, (at - area.base) / PAGE);
            let take = (PAGE - at % PAGE).min(end - at);
            let offset = (at % PAGE) as usize;
            bytes.extend_from_slice(&page[offset..offset + take as usize]);
            at += take;
        }
        bytes
    }

    fn write(&mut self, area: &OracleArea, address: u64, bytes: &[u8]) {
        for (i, byte) in bytes.iter().enumerate() {
            let at = address + i as u64;
            let index = (at - area.base) / PAGE;
            let mut page = self.page(area, index);
            page[(at % PAGE) as usize] = *byte;
            self.written.insert((area.key, index), page);
        }
    }
}

struct Run<'a> {
    session: Session<'a, BuiltinPolicy>,
    oracle: Oracle<'a>,
    eager: bool,
    /// Capacities small enough to run out; refusals for lack of frames, slots or memory are expected.
    tight: bool,
    policy: BuiltinPolicy,
    table: Option<AppPolicy>,
}

/// Whether an area's rules may map a page read-only first: zeroes from the zero frame (zero-page,
/// cow), a writable segment's file page from the image's frame (cow).
fn may_map_read_only_first(rules: AreaPolicy, zero_frame: bool) -> bool {
    if zero_frame {
        matches!(rules.zero.mode, Mode::ZeroPage | Mode::Cow)
    } else {
        rules.file.mode == Mode::Cow
    }
}

impl Run<'_> {
    fn address(&self, client: usize, target: Target) -> (u64, Option<OracleArea>) {
        let areas = &self.oracle.clients[client].1;
        if target.nowhere || areas.is_empty() {
            return (NOWHERE, None);
        }
        let area = areas[target.area % areas.len()];
        (area.base + target.offset % (area.end - area.base), Some(area))
    }

    /// Whether `reason` is a resource running out, which only a tight run may see.
    fn scarce(&self, reason: &RefusalReason) -> bool {
        self.tight
            && matches!(
                reason,
                RefusalReason::OutOfFrames(_)
                    | RefusalReason::OutOfSlots { .. }
                    | RefusalReason::NoPagingStructure { error: KernelError::OutOfMemory, .. }
            )
    }

    fn expect_scarce(&self, error: TouchError) -> Result<(), TestCaseError> {
        let reason = error.refusal().map(|r| r.reason);
        prop_assert!(reason.is_some_and(|r| self.scarce(&r)), "unexpected failure: {error:?}");
        Ok(())
    }

    fn pick(&self, index: usize) -> Option<usize> {
        (!self.oracle.clients.is_empty()).then(|| index % self.oracle.clients.len())
    }

    fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::Spawn { image } => {
                if self.oracle.clients.len() >= MAX_CLIENTS {
                    return Ok(());
                }
                let id = self.session.spawn(self.session.image(image), None).expect("spawn");
                let elf = &self.oracle.elves[image];
                let mut areas = Vec::new();
                for (segment, spec) in elf.segments().iter().enumerate() {
                    let base = spec.vaddr / PAGE * PAGE;
                    let end = (spec.vaddr + spec.memory_size).div_ceil(PAGE) * PAGE;
                    let rights = Rights {
                        read: true,
                        write: spec.flags & sim::elf::PF_W != 0,
                        execute: spec.flags & sim::elf::PF_X != 0,
                    };
                    let key = Key::Private(self.oracle.fresh_key());
                    areas.push(OracleArea { base, end, rights, fill: Fill::Segment { image, segment }, key });
                }
                self.oracle.clients.push((id, areas));
                if let Some(table) = &self.table {
                    self.session.pager.apply_app_policy(id, table).expect("a live client");
                    // Eager for some kinds maps some pages; which ones the checks at the end see.
                    if let Err(refusal) = self.session.start(id) {
                        prop_assert!(self.scarce(&refusal.reason), "{refusal:?}");
                    }
                } else if self.eager {
                    let pages: u64 =
                        self.oracle.clients.last().unwrap().1.iter().map(|a| (a.end - a.base) / PAGE).sum();
                    match self.session.start(id) {
                        Ok(mapped) => prop_assert_eq!(u64::from(mapped), pages),
                        Err(refusal) => prop_assert!(self.scarce(&refusal.reason), "{refusal:?}"),
                    }
                }
            }
            Op::Read { client, target, length } => {
                let Some(client) = self.pick(client) else { return Ok(()) };
                let id = self.oracle.clients[client].0;
                let (address, area) = self.address(client, target);
                let Some(area) = area else {
                    let error = self.session.read(id, address, 1).unwrap_err();
                    prop_assert_eq!(error.refusal().map(|r| r.reason), Some(RefusalReason::NoArea));
                    return Ok(());
                };
                let length = u64::from(length).min(area.end - address);
                let bytes = match self.session.read(id, address, length as usize) {
                    Ok(bytes) => bytes,
                    Err(error) => return self.expect_scarce(error),
                };
                let expected = self.oracle.expected_bytes(&area, address, length);
                prop_assert!(
                    bytes == expected,
                    "client {id:?} read {length:#x} bytes at {address:#x}: wrong bytes"
                );
            }
            Op::Write { client, target, length, byte } => {
                let Some(client) = self.pick(client) else { return Ok(()) };
                let id = self.oracle.clients[client].0;
                let (address, area) = self.address(client, target);
                let Some(area) = area else { return Ok(()) };
                let length = u64::from(length).min(area.end - address);
                let bytes: Vec<u8> = (0..length).map(|i| byte.wrapping_add(i as u8)).collect();
                let result = self.session.write(id, address, &bytes);
                if area.rights.write {
                    // A refused write stops before its first byte: the session faults every page in first.
                    match result {
                        Ok(()) => self.oracle.write(&area, address, &bytes),
                        Err(error) => self.expect_scarce(error)?,
                    }
                } else {
                    let reason = result.unwrap_err().refusal().map(|r| r.reason);
                    prop_assert!(matches!(reason, Some(RefusalReason::WriteToReadOnly { .. })), "{reason:?}");
                }
            }
            Op::Execute { client, target } => {
                let Some(client) = self.pick(client) else { return Ok(()) };
                let id = self.oracle.clients[client].0;
                let (address, area) = self.address(client, target);
                let Some(area) = area else { return Ok(()) };
                // seL4 5.0 maps every page executable: only the first fetch from a page can be refused.
                let mapped = self.session.kernel.mapping(id, address).is_some();
                let result = self.session.execute(id, address, 1);
                if area.rights.execute || mapped {
                    let expected = self.oracle.expected_bytes(&area, address, 1);
                    match result {
                        Ok(bytes) => prop_assert_eq!(bytes, expected),
                        Err(error) => self.expect_scarce(error)?,
                    }
                } else {
                    let reason = result.unwrap_err().refusal().map(|r| r.reason);
                    prop_assert!(
                        matches!(reason, Some(RefusalReason::ExecuteNonExecutable { .. })),
                        "{reason:?}"
                    );
                }
            }
            Op::Unmap { client, target } => {
                let Some(client) = self.pick(client) else { return Ok(()) };
                let id = self.oracle.clients[client].0;
                let (address, area) = self.address(client, target);
                let was_mapped = self.session.kernel.mapping(id, address).is_some();
                let unmapped = self.session.unmap(id, address).expect("known client");
                prop_assert_eq!(unmapped, was_mapped, "the pager's residency disagrees with the kernel");
                prop_assert!(self.session.kernel.mapping(id, address).is_none());
                if let Some(area @ OracleArea { key: Key::Private(_), .. }) = area {
                    // The frame went with the mapping: the page comes back from its source.
                    self.oracle.written.remove(&(area.key, (address - area.base) / PAGE));
                }
            }
            Op::Share { from, area, to, low } => {
                let (Some(from), Some(to)) = (self.pick(from), self.pick(to)) else { return Ok(()) };
                if self.oracle.shares >= MAX_SHARED || self.oracle.clients[from].1.is_empty() {
                    return Ok(());
                }
                let area_index = area % self.oracle.clients[from].1.len();
                let source = self.oracle.clients[from].1[area_index];
                let at = if low && self.oracle.low_shares < MAX_LOW_SHARED {
                    self.oracle.low_shares += 1;
                    LOW_SHARED_BASE + (self.oracle.low_shares - 1) * LOW_SHARED_STRIDE
                } else {
                    self.oracle.shares += 1;
                    SHARED_BASE + (self.oracle.shares - 1) * SHARED_STRIDE
                };
                let (from_id, to_id) = (self.oracle.clients[from].0, self.oracle.clients[to].0);
                match self.session.share(from_id, source.base, to_id, at) {
                    Ok(()) => {}
                    // Pages mapped read-only until written (zero-page, cow) keep an area from being
                    // shared: only those policies may refuse, and only an area holding such a page.
                    Err(ShareError::ReadOnlyFirst { .. }) => {
                        let areas = self.session.pager.client(from_id).expect("live").areas();
                        let area = areas.iter().find(|a| a.base() == source.base).expect("the source area");
                        let rules = area.policy();
                        prop_assert!(
                            may_map_read_only_first(rules, true) || may_map_read_only_first(rules, false),
                            "refused under {:?}",
                            rules
                        );
                        return Ok(());
                    }
                    Err(error) => panic!("share: {error}"),
                }
                let key = match source.key {
                    Key::Shared(_) => source.key,
                    Key::Private(_) => {
                        let key = Key::Shared(self.oracle.fresh_key());
                        let moved: Vec<_> =
                            self.oracle.written.keys().filter(|(k, _)| *k == source.key).copied().collect();
                        for old in moved {
                            let bytes = self.oracle.written.remove(&old).unwrap();
                            self.oracle.written.insert((key, old.1), bytes);
                        }
                        self.oracle.clients[from].1[area_index].key = key;
                        key
                    }
                };
                let end = at + (source.end - source.base);
                self.oracle.clients[to].1.push(OracleArea { base: at, end, key, ..source });
            }
            Op::Region { members, writable, pages } => {
                if self.oracle.shares >= MAX_SHARED || self.oracle.clients.is_empty() {
                    return Ok(());
                }
                let base = SHARED_BASE + self.oracle.shares * SHARED_STRIDE;
                self.oracle.shares += 1;
                let key = Key::Shared(self.oracle.fresh_key());
                let mut attach = Vec::new();
                for (n, (id, _)) in self.oracle.clients.iter().enumerate().take(8) {
                    if members & (1 << n) != 0 {
                        let rights = if writable & (1 << n) != 0 { Rights::READ_WRITE } else { Rights::READ };
                        attach.push((n, *id, rights));
                    }
                }
                let members: Vec<_> = attach.iter().map(|&(_, id, rights)| (id, base, rights)).collect();
                self.session.shared_region(pages * PAGE, &members).expect("region");
                for (n, _, rights) in attach {
                    let area = OracleArea { base, end: base + pages * PAGE, rights, fill: Fill::Zero, key };
                    self.oracle.clients[n].1.push(area);
                }
            }
            Op::Remove { client } => {
                let Some(client) = self.pick(client) else { return Ok(()) };
                let (id, _) = self.oracle.clients.remove(client);
                self.session.remove_client(id).expect("remove");
                prop_assert_eq!(self.session.kernel.mappings(id).len(), 0);
            }
        }
        self.check_invariants()
    }

    fn oracle_area_of(&self, client: ClientId, address: u64) -> Option<OracleArea> {
        let (_, areas) = self.oracle.clients.iter().find(|(id, _)| *id == client)?;
        areas.iter().find(|a| a.base <= address && address < a.end).copied()
    }

    /// After every step: no kernel rule broken, no frame writable where it should be private.
    fn check_invariants(&self) -> Result<(), TestCaseError> {
        prop_assert_eq!(self.session.kernel.violations(), &[]);
        // Frames are charged to live clients only, and only frames in use.
        let charged: u32 = self.session.pager.clients().map(|(_, c)| c.frames_charged()).sum();
        prop_assert!(charged <= self.session.pager.frame_counts().in_use);
        for (frame, writable) in self.session.kernel.writable_frames() {
            prop_assert!(matches!(frame, FrameRef::Pool(_)), "image frame {frame:?} mapped writable");
            // Every mapping of a frame mapped writable anywhere must belong to one shared object.
            let mappings = self.session.kernel.mappings_of(frame);
            if mappings.len() > 1 {
                let keys: Vec<Option<Key>> =
                    mappings.iter().map(|m| self.oracle_area_of(m.client, m.vaddr).map(|a| a.key)).collect();
                let shared = matches!(keys[0], Some(Key::Shared(_))) && keys.iter().all(|k| *k == keys[0]);
                prop_assert!(shared, "frame {frame:?} writable at {writable:?}, mapped by {keys:?}");
            }
        }
        Ok(())
    }

    /// At the end: every mapped page holds what the oracle says, read-only file pages are image frames,
    /// and tearing everything down frees every frame, slot and copy.
    fn finish(mut self, boot: &BootImage) -> Result<(), TestCaseError> {
        for (id, areas) in &self.oracle.clients {
            for mapping in self.session.kernel.mappings(*id) {
                let area = areas.iter().find(|a| a.base <= mapping.vaddr && mapping.vaddr < a.end).copied();
                let area = area.expect("every mapping lies in an area");
                let index = (mapping.vaddr - area.base) / PAGE;
                let contents = self.session.kernel.frame_contents(mapping.frame).unwrap();
                prop_assert!(
                    contents == &self.oracle.page(&area, index)[..],
                    "page {:#x} of {id:?}",
                    mapping.vaddr
                );
                // A page mapped read-only until its first write: the shared zero frame, or (cow) the
                // image's own frame of a writable segment's page.
                let zero_frame = self.session.pager.zero_frame().map(FrameRef::Pool);
                let read_only_first = area.rights.write
                    && (Some(mapping.frame) == zero_frame || matches!(mapping.frame, FrameRef::Image(_)));
                let pager_areas = self.session.pager.client(*id).expect("live").areas();
                let pager_area =
                    pager_areas.iter().find(|a| a.base() == area.base).expect("the pager's area");
                let rules = pager_area.policy();
                if read_only_first {
                    prop_assert!(
                        may_map_read_only_first(rules, Some(mapping.frame) == zero_frame),
                        "{:?} mapped read-only under {:?} and {:?}",
                        mapping,
                        self.policy,
                        rules
                    );
                    prop_assert_eq!(mapping.rights, Rights { write: false, ..area.rights });
                } else {
                    prop_assert_eq!(mapping.rights, area.rights);
                }
                if let Fill::Segment { image, segment } = area.fill {
                    let elf = &self.oracle.elves[image];
                    let spec = &elf.segments()[segment];
                    let page = spec.vaddr / PAGE * PAGE + index * PAGE;
                    let file_end = spec.vaddr + spec.bytes.len() as u64;
                    let in_file = page >= spec.vaddr && page + PAGE <= file_end;
                    // A straddling page whose bytes outside the segment are zero in the file (and
                    // which lies wholly in the file) is the image's frame too.
                    let offset =
                        (elf.layout().program_headers[segment].offset + page).checked_sub(spec.vaddr);
                    let file = boot.file(image);
                    let whole = offset.and_then(|o| file.get(o as usize..(o + PAGE) as usize));
                    let padded_with_zeroes = whole.is_some_and(|bytes| {
                        (page..page + PAGE)
                            .zip(bytes)
                            .all(|(va, &b)| (spec.vaddr..file_end).contains(&va) || b == 0)
                    });
                    let straddles = !in_file && page < file_end;
                    let cow = rules.file.mode == Mode::Cow && area.rights.write && in_file;
                    if cow && matches!(mapping.frame, FrameRef::Image(_))
                        || !area.rights.write && (in_file || (straddles && padded_with_zeroes))
                    {
                        let first = boot.files()[image].first_page;
                        let page_offset = offset.expect("a page in the file");
                        let expected = FrameRef::Image(ImagePage(first + (page_offset / PAGE) as u32));
                        prop_assert_eq!(mapping.frame, expected);
                    } else {
                        prop_assert!(matches!(mapping.frame, FrameRef::Pool(_)));
                    }
                }
            }
        }
        let ids: Vec<ClientId> = self.oracle.clients.iter().map(|(id, _)| *id).collect();
        for id in ids {
            self.session.remove_client(id).expect("remove");
        }
        let counts = self.session.pager.frame_counts();
        prop_assert_eq!(counts.in_use, 0);
        // The shared zero frame, once made, is the pager's for good: pinned, never free.
        prop_assert_eq!(counts.free + counts.pinned, counts.created);
        prop_assert_eq!(counts.pinned, u32::from(self.session.pager.zero_frame().is_some()));
        prop_assert_eq!(u64::from(counts.created), self.session.kernel.counters().frames_created);
        prop_assert_eq!(self.session.pager.copy_slots_in_use(), 0);
        prop_assert_eq!(self.session.kernel.live_copies(), 0);
        prop_assert_eq!(self.session.kernel.mapped_pages(), 0);
        prop_assert_eq!(self.session.kernel.violations(), &[]);
        Ok(())
    }
}

fn image_plans() -> impl Strategy<Value = Vec<(Vec<SegmentPlan>, u64)>> {
    prop::collection::vec((prop::collection::vec(segment_plan(), 1..5), any::<u32>().prop_map(u64::from)), 2)
}

/// Capacities for a tight run: pool frames, cap-copy slots, untyped frames (paging structures too).
#[derive(Clone, Copy, Debug)]
struct Limits {
    frames: u32,
    slots: u32,
    untyped: u64,
}

fn limits() -> impl Strategy<Value = Limits> {
    (8u32..30, 10u32..30, 20u64..50).prop_map(|(frames, slots, untyped)| Limits { frames, slots, untyped })
}

/// One case: build the images, run the ops, check everything at the end.
fn run_case(
    images: &[(Vec<SegmentPlan>, u64)],
    policy: BuiltinPolicy,
    table: Option<AppPolicy>,
    ops: &[Op],
    limits: Option<Limits>,
) -> Result<(), TestCaseError> {
    let elves: Vec<ElfBuilder> = images.iter().map(|(plans, seed)| build_elf(plans, *seed)).collect();
    let mut boot = BootImage::new();
    for elf in &elves {
        boot.add(&elf.build());
    }
    // An odd batch size, so retypes fall at odd points between faults.
    let (config, kernel_config) = if let Some(limits) = limits {
        let config = PagerConfig {
            frame_capacity: limits.frames,
            copy_slots: limits.slots,
            retype_batch: 5,
            large_frame_capacity: 2,
            ..PagerConfig::default()
        };
        // Untyped split in objects of 6 frames, so some retypes come back short.
        let kernel_config = ModelConfig {
            untyped_object_frames: Some(6),
            ..ModelConfig::with_untyped_frames(limits.untyped)
        };
        (config, kernel_config)
    } else {
        (
            PagerConfig { retype_batch: 7, large_frame_capacity: 2, ..PagerConfig::default() },
            ModelConfig::default(),
        )
    };
    let session = Session::new(&boot, config, kernel_config, policy).expect("valid images");
    let oracle = Oracle {
        elves: &elves,
        clients: Vec::new(),
        written: HashMap::new(),
        next_key: 0,
        shares: 0,
        low_shares: 0,
    };
    let mut run = Run {
        session,
        oracle,
        eager: policy == BuiltinPolicy::Eager,
        tight: limits.is_some(),
        policy,
        table,
    };
    // Two clients to begin with, so sharing has somewhere to go from the first step.
    run.apply(Op::Spawn { image: 0 })?;
    run.apply(Op::Spawn { image: 1 })?;
    for op in ops {
        run.apply(*op)?;
    }
    run.finish(&boot)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn clients_read_what_the_elf_file_and_their_writes_say(
        images in image_plans(),
        policy in policy(),
        table in table(),
        ops in prop::collection::vec(op(), 1..60),
    ) {
        run_case(&images, policy, table, &ops, None)?;
    }

    /// The same with too few frames, slots and untyped memory: refusals, but never a wrong byte, a
    /// broken kernel rule or a leak.
    #[test]
    fn scarce_resources_are_refused_cleanly_and_nothing_leaks(
        images in image_plans(),
        policy in policy(),
        table in table(),
        ops in prop::collection::vec(op(), 1..60),
        limits in limits(),
    ) {
        run_case(&images, policy, table, &ops, Some(limits))?;
    }
}
