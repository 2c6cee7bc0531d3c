//! The pager: clients, their areas, shared objects, and the fault path tying them to the frame pool
//! (the seed's cases it takes from [`crate::seed`]).

mod evicting;

use alloc::vec::Vec;
use core::cell::Cell;
use core::fmt;

use crate::advise::{Advice, AdviseError, SEQUENTIAL_FAULT_AROUND};
use crate::area::{Area, AreaError, AreaKind, Backend, LargeSpan};
use crate::elf::{ElfError, ElfImage};
use crate::evict::{EvictCounts, EvictMode, Tracker};
use crate::fault::{Access, Fault, FaultClass, FaultRefusal, FaultResolution, RefusalReason};
use crate::frames::{Allocation, FrameCounts, FrameTable, LargeFrameCounts, LargeFrameTable, SlotPool};
use crate::platform::{MappingCap, Platform};
use crate::policy::{AppPolicy, AreaPolicy, AreaView, Mode, Policy};
use crate::resident::{ResidentPage, ResidentPages};
use crate::seed::{classify, fill, image_frame_of, map_frame, FrameContent, Image, NewFrame, PageSource};
use crate::stats::FaultCounts;
use crate::store::{Store, StoreCounts};
use crate::structures::PagingStructures;
use crate::{
    page_align_down, ClientId, CopySlot, FrameRef, ImageId, LargeFrame, PoolFrame, Rights, SharedId,
    LARGE_PAGE_SIZE, PAGES_PER_LARGE_PAGE, PAGE_SIZE, USER_ADDRESS_LIMIT,
};

/// The capacities of one system image. Everything the pager holds is bounded by these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PagerConfig {
    /// Clients alive at once.
    pub max_clients: usize,
    /// Areas in one client.
    pub max_areas_per_client: usize,
    /// Frames the pool may retype from untyped memory.
    pub frame_capacity: u32,
    /// Frames retyped per kernel call.
    pub retype_batch: u32,
    /// Cap-copy slots, one per mapped page across all clients.
    pub copy_slots: u32,
    /// Large (2 MiB) frames the large-frame pool may retype (0: none, every page is 4 KiB).
    pub large_frame_capacity: u32,
    /// Bytes the compressed store of evicted dirty pages may hold (0: only all-zero pages, which
    /// are stored as markers, can be evicted dirty). Only evicting clients use it.
    pub store_bytes: u32,
}

impl Default for PagerConfig {
    fn default() -> Self {
        Self {
            max_clients: 32,
            max_areas_per_client: 16,
            frame_capacity: 4096,
            retype_batch: 32,
            copy_slots: 8192,
            large_frame_capacity: 0,
            store_bytes: 0,
        }
    }
}

/// Errors from setting clients up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagerError {
    TooManyClients { limit: usize },
    TooManyImages,
    TooManySharedObjects,
    UnknownClient(ClientId),
    UnknownImage(ImageId),
    UnknownRegion(SharedId),
    UnknownSegment { image: ImageId, index: u8 },
    Elf(ElfError),
    Area(AreaError),
}

impl fmt::Display for PagerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyClients { limit } => write!(f, "more than {limit} clients"),
            Self::TooManyImages => f.write_str("too many images"),
            Self::TooManySharedObjects => f.write_str("too many shared objects"),
            Self::UnknownClient(c) => write!(f, "unknown client {}", c.0),
            Self::UnknownImage(i) => write!(f, "unknown image {}", i.0),
            Self::UnknownRegion(r) => write!(f, "unknown shared region {}", r.0),
            Self::UnknownSegment { image, index } => write!(f, "image {} has no segment {index}", image.0),
            Self::Elf(e) => write!(f, "{e}"),
            Self::Area(e) => write!(f, "{e}"),
        }
    }
}

impl From<AreaError> for PagerError {
    fn from(error: AreaError) -> Self {
        Self::Area(error)
    }
}

/// Why an area could not be shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShareError {
    UnknownClient(ClientId),
    /// The source client has no area at the address.
    NoArea {
        address: u64,
    },
    /// Guard pages and reserved areas cannot be shared.
    NotShareable {
        area: AreaKind,
    },
    /// Some pages of the area are mapped read-only until their first write (zero-page or cow): a
    /// pagemap could not follow their writes.
    ReadOnlyFirst {
        area: AreaKind,
    },
    /// The area's client evicts and eviction keeps some of its pages (resident in the client's own
    /// frames, or in the store): a pagemap could not follow them.
    Evicting {
        area: AreaKind,
    },
    TooManySharedObjects,
    /// The area does not fit at the destination.
    Area(AreaError),
}

impl fmt::Display for ShareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownClient(c) => write!(f, "unknown client {}", c.0),
            Self::NoArea { address } => write!(f, "no area at {address:#x} to share"),
            Self::NotShareable { area } => write!(f, "the {area} cannot be shared"),
            Self::ReadOnlyFirst { area } => write!(
                f,
                "the {area} has pages mapped read-only until written (zero-page or cow): share it before \
                 touching it, or give it another policy"
            ),
            Self::TooManySharedObjects => f.write_str("too many shared objects"),
            Self::Area(e) => write!(f, "{e}"),
            Self::Evicting { area } => write!(
                f,
                "the {area} belongs to an evicting client and has pages eviction keeps: share it before \
                 touching it"
            ),
        }
    }
}

/// What a client's removal gave back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TeardownReport {
    /// Mappings removed (cap copies deleted).
    pub pages_unmapped: u32,
    /// Pool frames whose last reference went with this client.
    pub frames_freed: u32,
}

/// One client address space as the pager keeps it.
#[derive(Debug)]
pub struct Client {
    areas: Vec<Area>,
    budget: Option<u32>,
    charged: u32,
    structures: PagingStructures,
    faults: FaultCounts,
    /// An evicting client's evictable pages and eviction counts; `None` under [`EvictMode::None`].
    tracker: Option<alloc::boxed::Box<Tracker>>,
    /// The area [`Client::area_index`] found last.
    last_area: Cell<u32>,
}

impl Client {
    /// How the client's pages are replaced under pressure.
    pub fn evict_mode(&self) -> EvictMode {
        self.tracker.as_ref().map_or(EvictMode::None, |t| t.mode)
    }

    /// What eviction did to this client's pages (all zero under [`EvictMode::None`]).
    pub fn evict_counts(&self) -> EvictCounts {
        self.tracker.as_ref().map_or_else(EvictCounts::default, |t| t.counts)
    }

    /// The areas, sorted by address.
    pub fn areas(&self) -> &[Area] {
        &self.areas
    }

    /// The most pool frames this client may be charged for.
    pub fn budget(&self) -> Option<u32> {
        self.budget
    }

    /// Pool frames this client's faults created that are still in use.
    pub fn frames_charged(&self) -> u32 {
        self.charged
    }

    /// Paging structures created for this client's address space.
    pub fn paging_structures(&self) -> u32 {
        self.structures.count()
    }

    /// Faults served and refused, all areas together.
    pub fn faults(&self) -> &FaultCounts {
        &self.faults
    }

    /// Pages resident in this client.
    pub fn resident_pages(&self) -> u32 {
        self.areas.iter().map(Area::resident_pages).sum()
    }

    /// The area holding `address`. Faults come in runs on one area, so the last one found is
    /// tried before the search (areas never overlap, so a hit is the answer).
    #[inline]
    fn area_index(&self, address: u64) -> Option<usize> {
        let last = self.last_area.get() as usize;
        if self.areas.get(last).is_some_and(|a| a.base <= address && address < a.end) {
            return Some(last);
        }
        let after = self.areas.partition_point(|a| a.base <= address);
        let found = after.checked_sub(1).filter(|&i| self.areas[i].contains(address));
        if let Some(index) = found {
            self.last_area.set(index as u32);
        }
        found
    }

    pub(crate) fn insert_area(&mut self, area: Area, limit: usize) -> Result<(), AreaError> {
        let (base, size) = (area.base, area.end - area.base);
        if self.areas.len() >= limit {
            return Err(AreaError::TooManyAreas { limit });
        }
        let at = self.areas.partition_point(|a| a.base < area.base);
        let neighbours = [at.checked_sub(1), Some(at)];
        for existing in neighbours.into_iter().flatten().filter_map(|i| self.areas.get(i)) {
            if existing.base < area.end && area.base < existing.end {
                return Err(AreaError::Overlaps { base, size, existing: existing.kind });
            }
        }
        self.areas.insert(at, area);
        Ok(())
    }
}

/// The pagemap of an area shared by several clients (HelenOS `share_info_t`).
#[derive(Debug, Default)]
struct SharedObject {
    /// Page index in the area → frame, in a table like the areas' own (a fault on a shared area
    /// looks its page up here, and a B-tree's search cost that fault some hundred instructions).
    /// Each pool frame here holds one reference; an entry's slot means nothing ([`pagemap_entry`]).
    pagemap: ResidentPages,
    attachments: u32,
}

/// A pagemap's entry for `frame`: the frame alone (the slot is the clients' mappings' business).
fn pagemap_entry(frame: FrameRef) -> ResidentPage {
    ResidentPage { frame, slot: CopySlot::OWN }
}

/// The user-level pager.
pub struct Pager<'img, P: Policy = crate::BuiltinPolicy> {
    config: PagerConfig,
    policy: P,
    images: Vec<Image<'img>>,
    clients: Vec<Option<Client>>,
    shared: Vec<Option<SharedObject>>,
    frames: FrameTable,
    large_frames: LargeFrameTable,
    slots: SlotPool,
    faults: FaultCounts,
    /// The shared zero frame (zero-page, cow): made on first use, pinned, never freed.
    zero_frame: Option<PoolFrame>,
    /// Some fault may need more than the seed's path: large frames can be had, an advise call set
    /// an area's fault-around, or a client evicts. Until then every fault takes the plain path.
    general: bool,
    /// Evicted dirty pages, compressed.
    store: Store,
    /// Eviction's counts, all clients together (removed ones included).
    evict_counts: EvictCounts,
    /// Reads a clock for the store's cost figures ([`Pager::set_meter`]).
    meter: Option<fn() -> u64>,
    /// A page's bytes on their way to or from the store.
    page_buffer: Vec<u8>,
}

impl<'img, P: Policy> Pager<'img, P> {
    /// A pager with no clients.
    pub fn new(config: PagerConfig, policy: P) -> Self {
        Self {
            config,
            policy,
            images: Vec::new(),
            clients: Vec::new(),
            shared: Vec::new(),
            frames: FrameTable::new(config.frame_capacity, config.retype_batch),
            large_frames: LargeFrameTable::new(config.large_frame_capacity),
            slots: SlotPool::new(config.copy_slots),
            faults: FaultCounts::default(),
            zero_frame: None,
            general: config.large_frame_capacity > 0,
            store: Store::new(config.store_bytes),
            evict_counts: EvictCounts::default(),
            meter: None,
            page_buffer: Vec::new(),
        }
    }

    /// The shared zero frame, once a zero-page or cow fault has made it.
    pub fn zero_frame(&self) -> Option<PoolFrame> {
        self.zero_frame
    }

    /// An area with the rules the pager's policy gives it.
    pub(crate) fn new_area(
        &self,
        base: u64,
        end: u64,
        rights: Rights,
        backend: Backend,
        kind: AreaKind,
    ) -> Area {
        let mut area = Area::new(base, end, rights, backend, kind, &self.images);
        let view = AreaView { kind, backend, pages: area.pages(), policy: AreaPolicy::SEED };
        area.set_policy(self.policy.area_policy(&view));
        area
    }

    /// Puts an app's policy table in force in each of `client`'s areas it names (every area but the
    /// stack guard, the IPC buffer page and areas shared in).
    pub fn apply_app_policy(&mut self, client: ClientId, policy: &AppPolicy) -> Result<(), PagerError> {
        for area in &mut self.client_mut(client)?.areas {
            if let Some(rules) = policy.area_policy(area.kind, area.backend) {
                area.set_policy(rules);
            }
        }
        Ok(())
    }

    /// The capacities in force.
    pub fn config(&self) -> &PagerConfig {
        &self.config
    }

    /// The policy in force.
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// Registers an executable whose file starts at boot-image page `first_page` (page aligned there, so
    /// its read-only pages can be mapped from the image's own frames).
    pub fn add_image(&mut self, bytes: &'img [u8], first_page: u32) -> Result<ImageId, PagerError> {
        let elf = ElfImage::parse(bytes).map_err(PagerError::Elf)?;
        let id = u16::try_from(self.images.len()).map_err(|_| PagerError::TooManyImages)?;
        self.images.push(Image { elf, first_page });
        Ok(ImageId(id))
    }

    /// A registered image.
    pub fn image(&self, image: ImageId) -> Option<&ElfImage<'img>> {
        self.images.get(usize::from(image.0)).map(|i| &i.elf)
    }

    /// Adds a client with no areas, charged at most `budget` pool frames, stopped when it needs
    /// more (or finds the pool exhausted): [`Pager::add_client_evicting`] with [`EvictMode::None`].
    pub fn add_client(&mut self, budget: Option<u32>) -> Result<ClientId, PagerError> {
        self.add_client_evicting(budget, EvictMode::None)
    }

    /// Adds a client with no areas, charged at most `budget` pool frames, whose pages are replaced
    /// by `evict` when it reaches its budget or the pool is exhausted (see [`crate::evict`]).
    pub fn add_client_evicting(
        &mut self,
        budget: Option<u32>,
        evict: EvictMode,
    ) -> Result<ClientId, PagerError> {
        let client = Client {
            areas: Vec::new(),
            budget,
            charged: 0,
            structures: PagingStructures::default(),
            last_area: Cell::new(0),
            faults: FaultCounts::default(),
            tracker: evict.evicts().then(|| alloc::boxed::Box::new(Tracker::new(evict))),
        };
        // An evicting client's faults take the general path, where eviction is decided.
        self.general |= evict.evicts();
        let index = match self.clients.iter().position(Option::is_none) {
            Some(free) => free,
            None if self.clients.len() < self.config.max_clients => {
                self.clients.push(None);
                self.clients.len() - 1
            }
            None => return Err(PagerError::TooManyClients { limit: self.config.max_clients }),
        };
        self.clients[index] = Some(client);
        Ok(ClientId(index as u16))
    }

    /// A client, when it exists.
    pub fn client(&self, client: ClientId) -> Option<&Client> {
        self.clients.get(usize::from(client.0)).and_then(Option::as_ref)
    }

    /// Every live client.
    pub fn clients(&self) -> impl Iterator<Item = (ClientId, &Client)> + '_ {
        self.clients.iter().enumerate().filter_map(|(i, c)| c.as_ref().map(|c| (ClientId(i as u16), c)))
    }

    pub(crate) fn client_mut(&mut self, client: ClientId) -> Result<&mut Client, PagerError> {
        self.clients
            .get_mut(usize::from(client.0))
            .and_then(Option::as_mut)
            .ok_or(PagerError::UnknownClient(client))
    }

    /// Gives `client` an area per loadable segment of `image`; returns the entry point.
    pub fn load_image(&mut self, client: ClientId, image: ImageId) -> Result<u64, PagerError> {
        let elf = self.image(image).ok_or(PagerError::UnknownImage(image))?.clone();
        let limit = self.config.max_areas_per_client;
        self.client_mut(client)?;
        for (n, segment) in elf.segments().iter().enumerate() {
            let (base, end) = segment.page_range();
            let backend = Backend::Segment { image, segment: *segment };
            let kind = AreaKind::Segment(n as u8);
            let area = self.new_area(base, end, segment.rights, backend, kind);
            self.client_mut(client)?.insert_area(area, limit)?;
        }
        Ok(elf.entry())
    }

    /// Adds an anonymous (zero-filled) area.
    pub fn add_anonymous(
        &mut self,
        client: ClientId,
        base: u64,
        size: u64,
        rights: Rights,
        kind: AreaKind,
    ) -> Result<(), PagerError> {
        let end = checked_range(base, size)?;
        let limit = self.config.max_areas_per_client;
        let area = self.new_area(base, end, rights, Backend::Anonymous, kind);
        Ok(self.client_mut(client)?.insert_area(area, limit)?)
    }

    /// Adds a reserved area: never mapped by the pager and never served, only kept free of other
    /// areas (the IPC buffer page, which the root task maps itself).
    pub fn add_reserved(
        &mut self,
        client: ClientId,
        base: u64,
        size: u64,
        kind: AreaKind,
    ) -> Result<(), PagerError> {
        let end = checked_range(base, size)?;
        let limit = self.config.max_areas_per_client;
        let area = Area::new(base, end, Rights::default(), Backend::Reserved, kind, &[]);
        Ok(self.client_mut(client)?.insert_area(area, limit)?)
    }

    /// Adds a stack of `size` bytes ending at `top`, with an unmapped guard page below it.
    /// Returns the initial stack pointer (`top`).
    pub fn add_stack(&mut self, client: ClientId, top: u64, size: u64) -> Result<u64, PagerError> {
        let base = top.checked_sub(size).filter(|b| *b >= 2 * PAGE_SIZE);
        let base = base.ok_or(AreaError::OutsideUserRange { base: 0, size })?;
        checked_range(base, size)?;
        let limit = self.config.max_areas_per_client;
        let stack = self.new_area(base, top, Rights::READ_WRITE, Backend::Anonymous, AreaKind::Stack);
        let target = self.client_mut(client)?;
        let guard =
            Area::new(base - PAGE_SIZE, base, Rights::default(), Backend::Guard, AreaKind::StackGuard, &[]);
        target.insert_area(guard, limit)?;
        if let Err(error) = target.insert_area(stack, limit) {
            let guard_index = target.area_index(base - PAGE_SIZE).expect("guard just added");
            target.areas.remove(guard_index);
            return Err(error.into());
        }
        Ok(top)
    }

    /// Creates a named shared region with no pages yet; attach it to clients with
    /// [`Pager::attach_region`]. It lives while some client has it attached.
    pub fn create_region(&mut self) -> Result<SharedId, PagerError> {
        self.new_shared().ok_or(PagerError::TooManySharedObjects)
    }

    fn new_shared(&mut self) -> Option<SharedId> {
        let index = match self.shared.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                self.shared.push(None);
                self.shared.len() - 1
            }
        };
        let id = SharedId(u16::try_from(index).ok()?);
        self.shared[index] = Some(SharedObject::default());
        Some(id)
    }

    /// Attaches a shared region to `client` at `base`, with `rights` in that client.
    pub fn attach_region(
        &mut self,
        client: ClientId,
        region: SharedId,
        base: u64,
        size: u64,
        rights: Rights,
        kind: AreaKind,
    ) -> Result<(), PagerError> {
        let end = checked_range(base, size)?;
        if self.shared.get(usize::from(region.0)).and_then(Option::as_ref).is_none() {
            return Err(PagerError::UnknownRegion(region));
        }
        let limit = self.config.max_areas_per_client;
        let mut area = self.new_area(base, end, rights, Backend::Anonymous, kind);
        area.shared = Some(region);
        area.set_policy(area.policy);
        self.client_mut(client)?.insert_area(area, limit)?;
        self.shared_mut(region).attachments += 1;
        Ok(())
    }

    fn shared_mut(&mut self, id: SharedId) -> &mut SharedObject {
        self.shared[usize::from(id.0)].as_mut().expect("live shared object")
    }

    /// Makes the paging structures a 4 KiB map at `vaddr` in `client` needs that it lacks, and
    /// records them: for a page the root task maps itself (the IPC buffer), so that the pager's
    /// record of the client's structures stays whole. On failure, the level and why.
    pub fn make_paging_structures(
        &mut self,
        platform: &mut impl Platform,
        client: ClientId,
        vaddr: u64,
    ) -> Result<(), (crate::PagingLevel, crate::KernelError)> {
        let target = self.clients.get_mut(usize::from(client.0)).and_then(Option::as_mut);
        let target = target.ok_or((crate::PagingLevel::Pdpt, crate::KernelError::UnknownClient(client)))?;
        target.structures.make_missing(platform, client, vaddr, false)
    }

    /// Runs the policy's start-up work for a client (eager loading). Returns pages mapped.
    pub fn start_client(
        &mut self,
        platform: &mut impl Platform,
        client: ClientId,
    ) -> Result<u32, FaultRefusal> {
        let refusal = |reason| FaultRefusal {
            client,
            fault: Fault { address: 0, ip: 0, access: Access::Read },
            reason,
        };
        let target = self.client(client).ok_or_else(|| refusal(RefusalReason::UnknownClient))?;
        let areas = target.areas.len();
        // The frames the work is about to take, retyped in the largest batches first: every page
        // of the areas it populates (their image pages take none, so a few may be left fresh).
        let pages: u32 = target
            .areas
            .iter()
            .filter(|area| self.policy.populate_at_start(&area_view(area)))
            .map(|area| area.pages())
            .sum();
        if pages > 0 {
            self.frames.reserve(platform, pages);
        }
        let mut mapped = 0;
        for area_index in 0..areas {
            let area = &self.clients[usize::from(client.0)].as_ref().expect("checked").areas[area_index];
            let view = area_view(area);
            if !self.policy.populate_at_start(&view) {
                continue;
            }
            let large = self.policy.large_pages(&view);
            // A segment whose data and bss pages follow different rules: eager maps only its pages
            // under an eager rule.
            let by_page = view.policy.file.mode != view.policy.zero.mode;
            for index in 0..view.pages {
                if by_page {
                    let area =
                        &self.clients[usize::from(client.0)].as_ref().expect("checked").areas[area_index];
                    if rule_of_page(area, index, &self.images).mode != Mode::Eager {
                        continue;
                    }
                }
                if self.clients[usize::from(client.0)].as_ref().expect("checked").tracker.is_some() {
                    // An evicting client's start-up work takes free room only, and stops where
                    // there is none: its faults will evict.
                    match self.resolve_evicting(platform, client, area_index, index, Access::Read, false) {
                        Ok((class, _)) => mapped += class.pages(),
                        Err(_) => return Ok(mapped),
                    }
                    continue;
                }
                let (class, _) = self.resolve(platform, client, area_index, index, large).map_err(refusal)?;
                mapped += class.pages();
            }
        }
        Ok(mapped)
    }

    /// Serves one page fault of `client` (HelenOS `elf_page_fault`).
    pub fn handle_fault(
        &mut self,
        platform: &mut impl Platform,
        client: ClientId,
        fault: Fault,
    ) -> Result<FaultResolution, FaultRefusal> {
        // The client and its area are looked up once, and the plain path works on them in place
        // (borrowed apart from the pools) rather than by numbers looked up again at each step.
        let Self { clients, shared, frames, slots, images, faults, general, .. } = self;
        let Some(target) = clients.get_mut(usize::from(client.0)).and_then(Option::as_mut) else {
            return self.refuse(client, fault, None, RefusalReason::UnknownClient);
        };
        let Some(area_index) = target.area_index(fault.address) else {
            return self.refuse(client, fault, None, RefusalReason::NoArea);
        };
        let Client { areas, structures, budget, charged, faults: client_faults, .. } = target;
        let Some(area) = areas.get_mut(area_index) else {
            return self.refuse(client, fault, None, RefusalReason::NoArea);
        };
        let allowed = area.accesses & fault.access.bit() != 0;
        debug_assert_eq!(allowed, check_access(area, fault.access).is_ok(), "{:?}", area.kind);
        if !allowed {
            if let Err(reason) = check_access(area, fault.access) {
                return self.refuse(client, fault, Some(area_index), reason);
            }
        }
        if *general || !area.plain {
            if !*general && area.read_only_plain {
                return self.serve_read_only_first(platform, client, fault, area_index);
            }
            return self.serve_other(platform, client, fault, area_index);
        }
        // The plain path: no large pages, no fault-around, no page read-only first: one
        // resolution by the seed's cases.
        let index = area.page_index(fault.address);
        let pools = Pools { frames, slots, shared, images };
        let own = Own { structures, budget: *budget, charged };
        let (class, frame) = match resolve_seed(platform, pools, own, client, area, index) {
            Ok(resolved) => resolved,
            Err(reason) => return self.refuse(client, fault, Some(area_index), reason),
        };
        FaultCounts::record_in([faults, client_faults, &mut area.faults], class);
        let pages_mapped = u32::from(class != FaultClass::Spurious);
        Ok(FaultResolution { class, page: page_align_down(fault.address), frame, pages_mapped })
    }

    /// [`Pager::handle_fault`]'s plain path for an area whose rules map some pages read-only first
    /// (zero-page, cow) and fault around none: the seed's cases, as the plain path serves them,
    /// but for a read these rules serve read-only from a shared frame ([`serve_read_only`]) and
    /// the first write to a page so mapped, which takes a frame of its own ([`Pager::upgrade`]),
    /// both out of line. So a write to a page not resident costs about what it costs the seed.
    // Inlined into `handle_fault`'s branch off the plain path: out of line it cost ~30 more per
    // fault, and inlined the seed's classes compile as before (`cargo xtask bench`).
    #[inline(always)]
    fn serve_read_only_first(
        &mut self,
        platform: &mut impl Platform,
        client: ClientId,
        fault: Fault,
        area_index: usize,
    ) -> Result<FaultResolution, FaultRefusal> {
        let Self { clients, shared, frames, slots, images, faults, zero_frame, .. } = self;
        let target = clients[usize::from(client.0)].as_mut().expect("live client");
        let Client { areas, structures, budget, charged, faults: client_faults, .. } = target;
        let area = &mut areas[area_index];
        let index = area.page_index(fault.address);
        let write = matches!(fault.access, Access::Write);
        let served_read_only = if write {
            None
        } else {
            let parts =
                Parts { frames: &mut *frames, slots: &mut *slots, zero_frame: &mut *zero_frame, images };
            serve_read_only(platform, parts, area, structures, client, index)
        };
        let resolved = match served_read_only {
            Some(resolved) => resolved,
            None => {
                let pools = Pools { frames, slots, shared, images };
                let own = Own { structures, budget: *budget, charged };
                resolve_seed(platform, pools, own, client, area, index)
            }
        };
        let (class, frame) = match resolved {
            Ok(resolved) => resolved,
            Err(reason) => return self.refuse(client, fault, Some(area_index), reason),
        };
        // Spurious to the seed: a write finding its page mapped read-only first upgrades it.
        let spurious = matches!(class, FaultClass::Spurious);
        if spurious && write && read_only_stand_in(frame, *zero_frame) {
            return match self.upgrade(platform, client, area_index, index) {
                Ok((class, frame)) => {
                    self.record(client, area_index, class);
                    let (page, pages_mapped) =
                        (page_align_down(fault.address), u32::from(class != FaultClass::Spurious));
                    Ok(FaultResolution { class, page, frame, pages_mapped })
                }
                Err(reason) => self.refuse(client, fault, Some(area_index), reason),
            };
        }
        FaultCounts::record_in([faults, client_faults, &mut area.faults], class);
        let pages_mapped = u32::from(!spurious);
        Ok(FaultResolution { class, page: page_align_down(fault.address), frame, pages_mapped })
    }

    /// [`Pager::handle_fault`] past the plain path: large pages, an advised fault-around or an
    /// evicting client (`general`), an area whose rules fault around (with pages read-only first
    /// or not). Out of line, so that the plain path compiles as if none of these existed.
    #[inline(never)]
    fn serve_other(
        &mut self,
        platform: &mut impl Platform,
        client: ClientId,
        fault: Fault,
        area_index: usize,
    ) -> Result<FaultResolution, FaultRefusal> {
        let area = &self.clients[usize::from(client.0)].as_ref().expect("live client").areas[area_index];
        if self.general {
            let view = area_view(area);
            return self.serve_general(platform, client, fault, area_index, view);
        }
        let index = area.page_index(fault.address);
        let (rules, read_only_first) = (area.policy, area.read_only_first);
        let resolved =
            self.resolve_fault(platform, client, area_index, index, fault.access, read_only_first, false);
        let (class, frame) = match resolved {
            Ok(resolved) => resolved,
            Err(reason) => return self.refuse(client, fault, Some(area_index), reason),
        };
        self.record(client, area_index, class);

        // Fault-around: best effort, a failure here is not the client's fault.
        let mut pages_mapped = u32::from(class != FaultClass::Spurious);
        let done = Ok(FaultResolution { class, page: page_align_down(fault.address), frame, pages_mapped });
        // The window of the faulting page's kind: its zero pages' or its file pages'.
        let rule = rule_of_class(rules, class);
        if rule.around == 0 {
            return done;
        }
        // Only a rule with a window asks the policy (and builds its view).
        let area = &self.clients[usize::from(client.0)].as_ref().expect("live client").areas[area_index];
        let view = area_view(area);
        let around = self.policy.fault_around(&view, rule);
        for next in (index + 1..view.pages).take(around as usize) {
            match self.resolve_page(platform, client, area_index, next) {
                Ok((FaultClass::Spurious, _)) => {}
                Ok((class, _)) => {
                    pages_mapped += 1;
                    self.record(client, area_index, class);
                }
                Err(_) => break,
            }
        }
        Ok(FaultResolution { class, page: page_align_down(fault.address), frame, pages_mapped })
    }

    /// Resolves a checked fault's page: under zero-page and cow a read may be served read-only
    /// from a shared frame; otherwise the seed's way (with a large page first when `large`), and
    /// a write that finds its page mapped read-only first (spurious to the seed) upgrades it.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn resolve_fault(
        &mut self,
        platform: &mut impl Platform,
        client: ClientId,
        area_index: usize,
        index: u32,
        access: Access,
        read_only_first: bool,
        large: bool,
    ) -> Result<(FaultClass, FrameRef), RefusalReason> {
        let served_read_only = match (read_only_first, access) {
            (true, Access::Read | Access::Execute) => {
                self.resolve_read_only_first(platform, client, area_index, index)
            }
            _ => None,
        };
        // One call of the seed's path here, so that it stays inlined (`cargo xtask bench`).
        let resolved = match served_read_only {
            Some(resolved) => resolved,
            None => self.resolve(platform, client, area_index, index, large),
        };
        match (read_only_first, resolved) {
            (true, Ok((FaultClass::Spurious, frame)))
                if access == Access::Write && read_only_stand_in(frame, self.zero_frame) =>
            {
                self.upgrade(platform, client, area_index, index)
            }
            (_, resolved) => resolved,
        }
    }

    /// [`Pager::serve`] once large frames can be had or an advise call set a fault-around: out
    /// of line, so that the plain path compiles as if neither existed.
    #[inline(never)]
    fn serve_general(
        &mut self,
        platform: &mut impl Platform,
        client: ClientId,
        fault: Fault,
        area_index: usize,
        view: AreaView,
    ) -> Result<FaultResolution, FaultRefusal> {
        if self.clients[usize::from(client.0)].as_ref().is_some_and(|c| c.tracker.is_some()) {
            return self.serve_evicting(platform, client, fault, area_index);
        }
        let large = self.policy.large_pages(&view);
        self.serve(platform, client, fault, area_index, view, large)
    }

    /// The general path: resolves a checked fault in area `area_index` (with a large page first
    /// when `large`, the policy wanting them there), then fault-around as an advise call set it for
    /// the area, else as the area's rules say.
    #[inline(always)]
    fn serve(
        &mut self,
        platform: &mut impl Platform,
        client: ClientId,
        fault: Fault,
        area_index: usize,
        view: AreaView,
        large: bool,
    ) -> Result<FaultResolution, FaultRefusal> {
        let area = &self.clients[usize::from(client.0)].as_ref().expect("live client").areas[area_index];
        let index = area.page_index(fault.address);
        let advised_around = area.fault_around;
        let read_only_first = area.read_only_first;

        let (class, frame) = loop {
            match self.resolve_fault(
                platform,
                client,
                area_index,
                index,
                fault.access,
                read_only_first,
                large,
            ) {
                Ok(resolved) => break resolved,
                // The pool is shared with evicting clients: they give frames up for this one too.
                // A store too full for the victim's dirty page leaves this client's own reason.
                Err(reason) => match self.evicted_for_pool(platform, &reason) {
                    Ok(true) => continue,
                    Ok(false) | Err(_) => return self.refuse(client, fault, Some(area_index), reason),
                },
            }
        };
        self.record(client, area_index, class);

        // Fault-around: best effort, a failure here is not the client's fault.
        let mut pages_mapped = class.pages();
        // An advise call's setting for the area (sequential, random), else the area's rules.
        let around = match advised_around {
            Some(pages) => pages,
            None => match rule_of_class(view.policy, class) {
                rule if rule.around == 0 => 0,
                rule => self.policy.fault_around(&view, rule),
            },
        };
        for next in (index + 1..view.pages).take(around as usize) {
            match self.resolve(platform, client, area_index, next, large) {
                Ok((FaultClass::Spurious, _)) => {}
                Ok((class, _)) => {
                    pages_mapped += class.pages();
                    self.record(client, area_index, class);
                }
                Err(_) => break,
            }
        }
        Ok(FaultResolution { class, page: page_align_down(fault.address), frame, pages_mapped })
    }

    /// Counts a refused fault and returns it (out of line: off every served fault's path).
    #[cold]
    #[inline(never)]
    fn refuse<T>(
        &mut self,
        client: ClientId,
        fault: Fault,
        area: Option<usize>,
        reason: RefusalReason,
    ) -> Result<T, FaultRefusal> {
        self.faults.record_refusal(&reason);
        if let Some(c) = self.clients.get_mut(usize::from(client.0)).and_then(Option::as_mut) {
            c.faults.record_refusal(&reason);
            if let Some(area) = area {
                c.areas[area].faults.record_refusal(&reason);
            }
        }
        Err(FaultRefusal { client, fault, reason })
    }

    /// Counts a served fault in the pager's, the client's and the area's counts, in one go.
    #[inline(always)]
    fn record(&mut self, client: ClientId, area_index: usize, class: FaultClass) {
        let Self { faults, clients, .. } = self;
        let Client { faults: client_faults, areas, .. } =
            clients[usize::from(client.0)].as_mut().expect("live client");
        FaultCounts::record_in([faults, client_faults, &mut areas[area_index].faults], class);
    }

    /// [`serve_read_only`] for page `index` of area `area_index` of `client`: a read fault in
    /// an area whose rules map some pages read-only first (zero-page, cow; never a shared area).
    /// `None` for a page the seed's way serves ([`Pager::resolve_page`]).
    fn resolve_read_only_first(
        &mut self,
        platform: &mut impl Platform,
        client: ClientId,
        area_index: usize,
        index: u32,
    ) -> Option<Result<(FaultClass, FrameRef), RefusalReason>> {
        let Self { clients, frames, slots, images, zero_frame, .. } = self;
        let Client { areas, structures, .. } = clients[usize::from(client.0)].as_mut().expect("live client");
        let parts = Parts { frames, slots, zero_frame, images };
        serve_read_only(platform, parts, &mut areas[area_index], structures, client, index)
    }

    /// Maps page `index` of an area: with a large page for its whole span first when the policy
    /// wants large pages there (`large`, from [`Policy::large_pages`]), else by the seed's cases.
    #[inline(always)]
    fn resolve(
        &mut self,
        platform: &mut impl Platform,
        client: ClientId,
        area_index: usize,
        index: u32,
        large: bool,
    ) -> Result<(FaultClass, FrameRef), RefusalReason> {
        if large {
            self.resolve_large_first(platform, client, area_index, index)
        } else {
            self.resolve_page(platform, client, area_index, index)
        }
    }

    /// [`Pager::resolve`] under a policy that wants large pages. Out of line, so the 4 KiB path
    /// of every other policy compiles as it would without large pages.
    #[inline(never)]
    fn resolve_large_first(
        &mut self,
        platform: &mut impl Platform,
        client: ClientId,
        area_index: usize,
        index: u32,
    ) -> Result<(FaultClass, FrameRef), RefusalReason> {
        let target = self.clients[usize::from(client.0)].as_mut().expect("live client");
        let resolved = resolve_large(
            platform,
            &mut self.large_frames,
            &mut self.slots,
            target,
            client,
            area_index,
            index,
        );
        match resolved {
            Some(resolved) => resolved,
            None => self.resolve_page(platform, client, area_index, index),
        }
    }

    /// Maps page `index` of an area, choosing its frame by the seed's cases ([`resolve_seed`]).
    /// Out of line: the plain fault path has its own copy of that, inline.
    #[inline(never)]
    fn resolve_page(
        &mut self,
        platform: &mut impl Platform,
        client: ClientId,
        area_index: usize,
        index: u32,
    ) -> Result<(FaultClass, FrameRef), RefusalReason> {
        let Self { clients, shared, frames, slots, images, .. } = self;
        let Client { areas, structures, budget, charged, .. } =
            clients[usize::from(client.0)].as_mut().expect("live client");
        let pools = Pools { frames, slots, shared, images };
        let own = Own { structures, budget: *budget, charged };
        resolve_seed(platform, pools, own, client, &mut areas[area_index], index)
    }

    /// The first write to a page mapped read-only from a shared frame: a new frame filled as the
    /// seed would fill it (zeroes, or a copy of the file's page), mapped writable in place of the
    /// read-only mapping, which goes (unmap, then delete: a change of frame on seL4). Only a
    /// writable area gets here: `check_access` refused a write to any other.
    #[cold]
    #[inline(never)]
    fn upgrade(
        &mut self,
        platform: &mut impl Platform,
        client: ClientId,
        area_index: usize,
        index: u32,
    ) -> Result<(FaultClass, FrameRef), RefusalReason> {
        let Self { clients, frames, slots, images, .. } = self;
        let target = clients[usize::from(client.0)].as_mut().expect("live client");
        let area = &target.areas[area_index];
        let old = area.resident.at(index).expect("the page was found resident");
        let PageSource::New(new) = classify(area, index, images) else {
            // An image frame is only ever mapped read-only into a writable area by cow, for a page
            // the seed would copy; anything else was mapped with its full rights.
            return Ok((FaultClass::Spurious, old.frame));
        };
        let (allocation, own_cap) = take_filled_frame(
            platform,
            frames,
            target.budget,
            &mut target.charged,
            client,
            new.content(),
            &new,
        )?;
        let class = match old.frame {
            FrameRef::Image(_) => FaultClass::CowCopy,
            // A large frame is never mapped read-only first: not reached.
            FrameRef::Pool(_) | FrameRef::Large(_) => FaultClass::Upgrade,
        };
        let (vaddr, rights) = (area.base + u64::from(index) * PAGE_SIZE, area.rights);
        let area = &mut target.areas[area_index];
        area.resident.remove(index);
        // Deleting the copy unmaps it first (`delete_copy`); a slot the kernel kept stays out.
        let _ = take_mapping_away(platform, slots, old, false);
        if let FrameRef::Pool(shared) = old.frame {
            // The zero frame: pinned, so this is never its last reference.
            frames.release(shared);
        }
        let frame = FrameRef::Pool(allocation.frame);
        match map_frame(platform, slots, &mut target.structures, client, vaddr, frame, own_cap, rights) {
            Ok(slot) => {
                let area = &mut target.areas[area_index];
                area.resident.insert(index, ResidentPage { frame, slot });
                Ok((class, frame))
            }
            Err(reason) => {
                frames.release(allocation.frame);
                target.charged -= 1;
                Err(reason)
            }
        }
    }

    /// Unmaps one page of a client, dropping its frame reference (HelenOS `elf_frame_free` on unmap).
    /// Returns whether a page was resident there. A page under a large page is not unmapped alone
    /// (`false`): the advise call's dont-need over its whole span drops a large page.
    pub fn unmap(
        &mut self,
        platform: &mut impl Platform,
        client: ClientId,
        address: u64,
    ) -> Result<bool, PagerError> {
        let target = self.client_mut(client)?;
        let Some(area_index) = target.area_index(address) else {
            return Ok(false);
        };
        let area = &mut target.areas[area_index];
        let index = area.page_index(address);
        let removed = area.resident.remove(index);
        if target.tracker.is_some() {
            self.forget_evictable(client, area_index, index);
        }
        let Some(page) = removed else {
            return Ok(false);
        };
        // A copy is deleted below whether or not the unmap went through; deletion unmaps too.
        if page.slot != CopySlot::OWN {
            let _ = platform.unmap_page(MappingCap::Copy(page.slot));
        }
        self.drop_mapping(platform, page);
        Ok(true)
    }

    /// Follows a client's advice about `length` bytes from the page-aligned `start` (rounded up to
    /// whole pages), which must lie wholly in areas the pager serves. Returns the pages resolved
    /// (will-need) or dropped (dont-need); 0 for sequential and random, which set the fault-around
    /// of every area the range touches. Nothing here stops the client: every failure is an error.
    pub fn advise(
        &mut self,
        platform: &mut impl Platform,
        client: ClientId,
        start: u64,
        length: u64,
        advice: Advice,
    ) -> Result<u32, AdviseError> {
        if !start.is_multiple_of(PAGE_SIZE) || length == 0 {
            return Err(AdviseError::Invalid);
        }
        let end = start
            .checked_add(length)
            .map(crate::page_align_up)
            .filter(|end| *end <= USER_ADDRESS_LIMIT)
            .ok_or(AdviseError::OutsideAreas { address: start })?;
        let target = self.client(client).ok_or(AdviseError::UnknownClient(client))?;
        // The whole range first: areas that follow one another with no hole, all served.
        let first = target.area_index(start).ok_or(AdviseError::OutsideAreas { address: start })?;
        let mut last = first;
        loop {
            let area = &target.areas[last];
            if matches!(area.backend, Backend::Guard | Backend::Reserved) {
                return Err(AdviseError::OutsideAreas { address: start.max(area.base) });
            }
            if area.end >= end {
                break;
            }
            match target.areas.get(last + 1) {
                Some(next) if next.base == area.end => last += 1,
                _ => return Err(AdviseError::OutsideAreas { address: area.end }),
            }
        }
        let mut pages = 0;
        for area_index in first..=last {
            let area = &mut self.clients[usize::from(client.0)].as_mut().expect("checked").areas[area_index];
            let from = ((start.max(area.base) - area.base) / PAGE_SIZE) as u32;
            let to = ((end.min(area.end) - area.base) / PAGE_SIZE) as u32;
            match advice {
                Advice::Sequential => {
                    area.fault_around = Some(SEQUENTIAL_FAULT_AROUND);
                    self.general = true;
                }
                Advice::Random => {
                    area.fault_around = Some(0);
                    self.general = true;
                }
                Advice::WillNeed => {
                    // Each page as a read fault there would be served, by the area's policy: a
                    // large page, the shared zero frame, or the image's frame read-only first.
                    let view = area_view(area);
                    let (large, read_only_first) = (self.policy.large_pages(&view), area.read_only_first);
                    let evicting =
                        self.clients[usize::from(client.0)].as_ref().is_some_and(|c| c.tracker.is_some());
                    for index in from..to {
                        // An evicting client's advice takes free room only.
                        let resolved = if evicting {
                            self.resolve_evicting(platform, client, area_index, index, Access::Read, false)
                        } else {
                            self.resolve_fault(
                                platform,
                                client,
                                area_index,
                                index,
                                Access::Read,
                                read_only_first,
                                large,
                            )
                        };
                        match resolved {
                            Ok((FaultClass::Spurious, _)) => {}
                            Ok((class, _)) => {
                                pages += class.pages();
                                self.record(client, area_index, class);
                            }
                            Err(reason) => return Err(AdviseError::Unresolved { pages, reason }),
                        }
                    }
                }
                Advice::DontNeed => {
                    // A large page goes when the range covers all of it; a part of one stays.
                    let first_span = area.base.max(start).div_ceil(LARGE_PAGE_SIZE) as u32;
                    let end_span = ((area.end.min(end) / LARGE_PAGE_SIZE) as u32).max(first_span);
                    let whole: Vec<(u32, ResidentPage)> = area
                        .large
                        .range(first_span..end_span)
                        .filter_map(|(&span, large)| match *large {
                            LargeSpan::Mapped { frame, slot } => {
                                Some((span, ResidentPage { frame: FrameRef::Large(frame), slot }))
                            }
                            LargeSpan::Small => None,
                        })
                        .collect();
                    for (span, page) in whole {
                        let target = self.clients[usize::from(client.0)].as_mut().expect("checked");
                        let area = &mut target.areas[area_index];
                        area.large.remove(&span);
                        area.large_mapped -= 1;
                        self.drop_mapping(platform, page);
                        pages += PAGES_PER_LARGE_PAGE;
                    }
                    for index in from..to {
                        let target = self.clients[usize::from(client.0)].as_mut().expect("checked");
                        // Only this client's mapping goes: a shared area's pagemap keeps its own
                        // reference, so the others keep the page (and this client finds it again).
                        let removed = target.areas[area_index].resident.remove(index);
                        if target.tracker.is_some() {
                            self.forget_evictable(client, area_index, index);
                        }
                        if let Some(page) = removed {
                            self.drop_mapping(platform, page);
                            pages += 1;
                        }
                    }
                }
            }
        }
        Ok(pages)
    }

    /// Takes a mapping away (its cap copy deleted, or the frame's own cap unmapped) and drops its
    /// frame reference.
    fn drop_mapping(&mut self, platform: &mut impl Platform, page: ResidentPage) -> bool {
        let _ = take_mapping_away(platform, &mut self.slots, page, false);
        self.forget_mapping(page)
    }

    /// Drops the frame reference of a mapping taken away.
    fn forget_mapping(&mut self, page: ResidentPage) -> bool {
        match page.frame {
            FrameRef::Pool(frame) => self.release_frame(frame),
            FrameRef::Large(frame) => self.release_large_frame(frame),
            FrameRef::Image(_) => false,
        }
    }

    fn release_large_frame(&mut self, frame: LargeFrame) -> bool {
        if let Some(owner) = self.large_frames.release(frame) {
            if let Some(owner) = self.clients.get_mut(usize::from(owner.0)).and_then(Option::as_mut) {
                owner.charged -= PAGES_PER_LARGE_PAGE;
            }
        }
        true
    }

    fn release_frame(&mut self, frame: PoolFrame) -> bool {
        let Some(owner) = self.frames.release(frame) else {
            return false;
        };
        if let Some(owner) =
            owner.and_then(|o| self.clients.get_mut(usize::from(o.0))).and_then(Option::as_mut)
        {
            owner.charged -= 1;
        }
        true
    }

    /// Shares the area of `from` containing `address` into `to` at `at` (HelenOS `elf_share`).
    ///
    /// The first time an area is shared, its mapped pages go into a new pagemap: every page of a
    /// writable area, and of a read-only one only the pages not backed by the image (image frames are
    /// shared by every instance anyway). Which pages those are is the seed's decision, as recorded in
    /// the page's frame: a pool frame, or the image's own.
    pub fn share(&mut self, from: ClientId, address: u64, to: ClientId, at: u64) -> Result<(), ShareError> {
        if self.client(to).is_none() {
            return Err(ShareError::UnknownClient(to));
        }
        let source = self.client(from).ok_or(ShareError::UnknownClient(from))?;
        let area_index = source.area_index(address).ok_or(ShareError::NoArea { address })?;
        let area = &source.areas[area_index];
        // A large page maps one client's private memory: the pagemap holds 4 KiB frames only.
        if matches!(area.backend, Backend::Guard | Backend::Reserved) || area.large_mapped > 0 {
            return Err(ShareError::NotShareable { area: area.kind });
        }
        if self.has_evictable(from, area) {
            return Err(ShareError::Evicting { area: area.kind });
        }
        let zero_frame = self.zero_frame;
        if area.read_only_first
            && area.resident.iter().any(|(_, page)| read_only_stand_in(page.frame, zero_frame))
        {
            return Err(ShareError::ReadOnlyFirst { area: area.kind });
        }
        let (size, rights, backend, already) = (area.end - area.base, area.rights, area.backend, area.shared);
        let area_policy = area.policy;
        let end = checked_range(at, size).map_err(|e| match e {
            PagerError::Area(a) => ShareError::Area(a),
            _ => ShareError::Area(AreaError::OutsideUserRange { base: at, size }),
        })?;
        let limit = self.config.max_areas_per_client;

        let shared_id = match already {
            Some(id) => id,
            None => self.new_shared().ok_or(ShareError::TooManySharedObjects)?,
        };
        let mut incoming = Area::new(at, end, rights, backend, AreaKind::SharedIn, &self.images);
        incoming.shared = Some(shared_id);
        incoming.set_policy(area_policy);
        let Self { clients, shared, frames, .. } = self;
        if let Err(error) = clients[usize::from(to.0)].as_mut().expect("checked").insert_area(incoming, limit)
        {
            if already.is_none() {
                shared[usize::from(shared_id.0)] = None;
            }
            return Err(ShareError::Area(error));
        }
        let object = shared_object_mut(shared, shared_id);
        if already.is_none() {
            let source = clients[usize::from(from.0)].as_mut().expect("checked");
            // Look the area up again: sharing into the same client may have inserted before it.
            let area_index = source.area_index(address).expect("the source area is still there");
            let area = &mut source.areas[area_index];
            // A page the seed served from the image's own frame needs no entry: every client's fault
            // on it decides the same frame. Every other page's frame is a pool frame.
            for (index, page) in area.resident.iter() {
                if let FrameRef::Pool(frame) = page.frame {
                    frames.add_reference(frame);
                    object.pagemap.insert(index, pagemap_entry(page.frame));
                }
            }
            area.shared = Some(shared_id);
            area.set_policy(area.policy);
            object.attachments = 1;
        }
        object.attachments += 1;
        Ok(())
    }

    /// Removes a client: deletes every mapping's cap copy, drops its frame references and detaches it
    /// from shared objects. The caller must have stopped the client and destroys its address space
    /// (its paging structures) right after: the copies are deleted without unmapping
    /// ([`CopyFrameCaps::delete_copy_in_teardown`](crate::platform::CopyFrameCaps::delete_copy_in_teardown)).
    pub fn remove_client(
        &mut self,
        platform: &mut impl Platform,
        client: ClientId,
    ) -> Result<TeardownReport, PagerError> {
        let removed = self
            .clients
            .get_mut(usize::from(client.0))
            .and_then(Option::take)
            .ok_or(PagerError::UnknownClient(client))?;
        // Frames that outlive the client (in shared pagemaps) are charged to nobody from now on: its id
        // may be reused, and the newcomer must not be uncharged for them.
        self.frames.disown(client);
        // Its stored pages go with it.
        self.store.discard_client(client);
        let mut report = TeardownReport::default();
        for area in removed.areas {
            let large = area.large.values().filter_map(|span| match *span {
                LargeSpan::Mapped { frame, slot } => {
                    Some(ResidentPage { frame: FrameRef::Large(frame), slot })
                }
                LargeSpan::Small => None,
            });
            for page in area.resident.iter().map(|(_, page)| page).chain(large) {
                report.pages_unmapped += 1;
                // The caller destroys the address space next, and the copies' mappings with it:
                // no unmap for those. A frame's own cap is unmapped, so it can map the frame again.
                let _ = take_mapping_away(platform, &mut self.slots, page, true);
                report.frames_freed += u32::from(self.forget_mapping(page));
            }
            if let Some(shared_id) = area.shared {
                report.frames_freed += self.detach(shared_id);
            }
        }
        Ok(report)
    }

    /// Drops one attachment of a shared object; the last one releases its pagemap.
    fn detach(&mut self, shared_id: SharedId) -> u32 {
        let object = self.shared_mut(shared_id);
        object.attachments -= 1;
        if object.attachments > 0 {
            return 0;
        }
        let object = self.shared[usize::from(shared_id.0)].take().expect("live shared object");
        let mut freed = 0;
        for (_, page) in object.pagemap.iter() {
            if let FrameRef::Pool(frame) = page.frame {
                freed += u32::from(self.release_frame(frame));
            }
        }
        freed
    }

    /// The frame pool's counts.
    pub fn frame_counts(&self) -> FrameCounts {
        self.frames.counts()
    }

    /// The large-frame pool's counts.
    pub fn large_frame_counts(&self) -> LargeFrameCounts {
        self.large_frames.counts()
    }

    /// References held on a pool frame (0 when free).
    pub fn frame_references(&self, frame: PoolFrame) -> u32 {
        self.frames.references(frame)
    }

    /// Cap-copy slots in use.
    pub fn copy_slots_in_use(&self) -> u32 {
        self.slots.in_use()
    }

    /// Entries in the pagemap of a shared object.
    pub fn pagemap_len(&self, shared: SharedId) -> Option<usize> {
        self.shared.get(usize::from(shared.0)).and_then(Option::as_ref).map(|s| s.pagemap.count() as usize)
    }

    /// Faults served and refused so far, all clients together (removed ones included).
    pub fn faults(&self) -> &FaultCounts {
        &self.faults
    }

    /// Heap bytes of per-page metadata: resident tables, frame records and pagemaps.
    pub fn metadata_bytes(&self) -> usize {
        let resident: usize =
            self.clients().flat_map(|(_, c)| c.areas.iter()).map(|a| a.resident.metadata_bytes()).sum();
        let pagemaps: usize = self.shared.iter().flatten().map(|s| s.pagemap.metadata_bytes()).sum();
        let trackers: usize =
            self.clients().filter_map(|(_, c)| c.tracker.as_ref()).map(|t| t.metadata_bytes()).sum();
        resident + pagemaps + self.frames.metadata_bytes() + trackers + self.store.metadata_bytes()
    }
}

/// The large-page part of resolving page `index` of a client's area: `None` when the page goes the
/// 4 KiB way (no whole zero-filled span there, the span is small already, or no large frame can
/// be had: then the span is marked small for good). Out of line, so the 4 KiB path stays short.
#[allow(clippy::too_many_arguments)]
fn resolve_large(
    platform: &mut impl Platform,
    large_frames: &mut LargeFrameTable,
    slots: &mut SlotPool,
    target: &mut Client,
    client: ClientId,
    area_index: usize,
    index: u32,
) -> Option<Result<(FaultClass, FrameRef), RefusalReason>> {
    let area = &target.areas[area_index];
    let (vaddr, rights) = (area.base + u64::from(index) * PAGE_SIZE, area.rights);
    let span = area.large_span(vaddr)?;
    match area.large.get(&span) {
        Some(&LargeSpan::Mapped { frame, .. }) => {
            return Some(Ok((FaultClass::Spurious, FrameRef::Large(frame))))
        }
        Some(LargeSpan::Small) => return None,
        None => {}
    }
    let affordable = target.budget.is_none_or(|b| target.charged + PAGES_PER_LARGE_PAGE <= b);
    let allocation = if affordable && large_frames.available() {
        large_frames.allocate(platform, client).ok()
    } else {
        None
    };
    let Some(allocation) = allocation else {
        // No large frame (none left, or over budget): 4 KiB pages here from now on.
        target.areas[area_index].large.insert(span, LargeSpan::Small);
        return None;
    };
    let frame = allocation.frame;
    if !allocation.zeroed {
        platform.zero_large_frame(frame);
    }
    let base = u64::from(span) * LARGE_PAGE_SIZE;
    let large = FrameRef::Large(frame);
    Some(match map_frame(platform, slots, &mut target.structures, client, base, large, false, rights) {
        Ok(slot) => {
            target.charged += PAGES_PER_LARGE_PAGE;
            let area = &mut target.areas[area_index];
            area.large.insert(span, LargeSpan::Mapped { frame, slot });
            area.large_mapped += 1;
            Ok((FaultClass::Large, large))
        }
        Err(reason) => {
            large_frames.release(frame);
            Err(reason)
        }
    })
}

/// The pager's pools a page's resolution draws on, borrowed apart from its clients.
// The vectors, not slices of them: a slice is its pointer and length loaded up front, which the
// fault path then keeps on its stack across the kernel calls, where most faults use neither.
struct Pools<'p, 'img> {
    frames: &'p mut FrameTable,
    slots: &'p mut SlotPool,
    shared: &'p mut Vec<Option<SharedObject>>,
    images: &'p Vec<Image<'img>>,
}

/// What of the faulting client a page's resolution changes besides the area: its paging
/// structures and the frames charged to it (within `budget`).
struct Own<'p> {
    structures: &'p mut PagingStructures,
    budget: Option<u32>,
    charged: &'p mut u32,
}

/// Maps page `index` of `area` of `client`, choosing its frame by the seed's cases: a frame a
/// shared pagemap holds, the image's own frame, or a new pool frame filled as [`classify`] says
/// (and put into the pagemap of a shared area). `Spurious` when the page is resident already.
#[inline(always)]
fn resolve_seed(
    platform: &mut impl Platform,
    pools: Pools<'_, '_>,
    own: Own<'_>,
    client: ClientId,
    area: &mut Area,
    index: u32,
) -> Result<(FaultClass, FrameRef), RefusalReason> {
    let Pools { frames, slots, shared, images } = pools;
    let Own { structures, budget, charged } = own;
    // Not resident: where it goes, so recording it below takes no second search.
    let vacancy = match area.resident.find(index) {
        // Mapped with the area's full rights already: another thread of the client faulted first.
        Ok(page) => return Ok((FaultClass::Spurious, page.frame)),
        Err(vacancy) => vacancy,
    };
    let vaddr = area.base + u64::from(index) * PAGE_SIZE;
    let rights = area.rights;

    // A shared area's pagemap may already hold the page; if not, where it goes.
    let mut pagemap_vacancy = None;
    if let Some(shared_id) = area.shared {
        match shared_object(shared, shared_id).pagemap.find(index) {
            Ok(entry) => {
                return map_shared_hit(
                    platform,
                    frames,
                    slots,
                    structures,
                    client,
                    area,
                    index,
                    entry.frame,
                    vacancy,
                )
            }
            Err(room) => pagemap_vacancy = Some(room),
        }
    }

    // A page of zeroes, the commonest, on its own: its fill is then a constant, not a description
    // carried through the frame's allocation.
    let (class, frame, own_cap) = if area.seed.is_zero(index) {
        let zero = &NewFrame::Zero;
        let (allocation, own_cap) =
            take_filled_frame(platform, frames, budget, charged, client, FrameContent::Zero, zero)?;
        (FaultClass::NewFrame(FrameContent::Zero), FrameRef::Pool(allocation.frame), own_cap)
    } else {
        match area.seed.source(area, index, images) {
            PageSource::Image(page) => (FaultClass::ImageFrame, FrameRef::Image(page), false),
            PageSource::New(new) => {
                let content = new.content();
                let (allocation, own_cap) =
                    take_filled_frame(platform, frames, budget, charged, client, content, &new)?;
                (FaultClass::NewFrame(content), FrameRef::Pool(allocation.frame), own_cap)
            }
        }
    };

    match map_frame(platform, slots, structures, client, vaddr, frame, own_cap, rights) {
        Ok(slot) => {
            area.resident.fill(vacancy, ResidentPage { frame, slot });
            // A frame made for a shared area goes into its pagemap (HelenOS's `dirty` case).
            if let (Some(shared_id), Some(vacancy), FrameRef::Pool(pool)) =
                (area.shared, pagemap_vacancy, frame)
            {
                frames.add_reference(pool);
                shared_object_mut(shared, shared_id).pagemap.fill(vacancy, pagemap_entry(frame));
            }
            Ok((class, frame))
        }
        Err(reason) => {
            if let FrameRef::Pool(pool) = frame {
                frames.release(pool);
                *charged -= 1;
            }
            Err(reason)
        }
    }
}

/// Maps `hit`, the frame a shared area's pagemap holds for page `index`, into `client`, with one more
/// reference on it, and records it at `vacancy` of the area's resident pages.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn map_shared_hit(
    platform: &mut impl Platform,
    frames: &mut FrameTable,
    slots: &mut SlotPool,
    structures: &mut PagingStructures,
    client: ClientId,
    area: &mut Area,
    index: u32,
    hit: FrameRef,
    vacancy: crate::resident::Vacancy,
) -> Result<(FaultClass, FrameRef), RefusalReason> {
    let (vaddr, rights) = (area.base + u64::from(index) * PAGE_SIZE, area.rights);
    if let FrameRef::Pool(frame) = hit {
        frames.add_reference(frame);
    }
    match map_frame(platform, slots, structures, client, vaddr, hit, false, rights) {
        Ok(slot) => {
            area.resident.fill(vacancy, ResidentPage { frame: hit, slot });
            Ok((FaultClass::SharedHit, hit))
        }
        Err(reason) => {
            if let FrameRef::Pool(frame) = hit {
                frames.release(frame);
            }
            Err(reason)
        }
    }
}

/// Takes a mapping away: deletes its cap copy (unmapping it first, unless the address space is
/// destroyed next: `teardown`) and gives its slot back, or unmaps the pool frame's own cap, which
/// cannot be deleted and must map nothing before the frame is used again. A slot the kernel would
/// not empty stays out of the pool.
fn take_mapping_away(
    platform: &mut impl Platform,
    slots: &mut SlotPool,
    page: ResidentPage,
    teardown: bool,
) -> Result<(), crate::KernelError> {
    match (page.slot, page.frame) {
        (CopySlot::OWN, FrameRef::Pool(frame)) => platform.unmap_page(MappingCap::Own(frame)),
        (slot, _) => {
            let deleted =
                if teardown { platform.delete_copy_in_teardown(slot) } else { platform.delete_copy(slot) };
            if deleted.is_ok() {
                slots.put(slot);
            }
            deleted
        }
    }
}

/// The pager's pools, borrowed apart from its clients.
struct Parts<'p, 'img> {
    frames: &'p mut FrameTable,
    slots: &'p mut SlotPool,
    zero_frame: &'p mut Option<PoolFrame>,
    images: &'p [Image<'img>],
}

/// A read of page `index` of `area`, whose rules map some pages read-only first (zero-page, cow):
/// a page not resident that holds zeroes maps the shared zero frame (zero-page, cow), a writable
/// segment's page wholly in the file the image's own frame (cow), read-only both. `None` for
/// every other page, which the seed's cases serve ([`resolve_seed`]). Out of line: a write, the
/// commonest fault there, pays one test for it.
#[cold]
#[inline(never)]
fn serve_read_only(
    platform: &mut impl Platform,
    parts: Parts<'_, '_>,
    area: &mut Area,
    structures: &mut PagingStructures,
    client: ClientId,
    index: u32,
) -> Option<Result<(FaultClass, FrameRef), RefusalReason>> {
    let Parts { frames, slots, zero_frame, images } = parts;
    let vacancy = area.resident.find(index).err()?;
    let PageSource::New(new) = classify(area, index, images) else {
        return None;
    };
    let content = new.content();
    let policy = area.policy;
    let (class, frame) = match content {
        crate::FrameContent::Zero if matches!(policy.zero.mode, Mode::ZeroPage | Mode::Cow) => {
            match shared_zero_frame(platform, frames, zero_frame, client) {
                Ok(zero) => (FaultClass::ZeroShared, FrameRef::Pool(zero)),
                Err(reason) => return Some(Err(reason)),
            }
        }
        crate::FrameContent::Copy if policy.file.mode == Mode::Cow => {
            (FaultClass::ImageFrame, FrameRef::Image(image_frame_of(area, index, images)?))
        }
        _ => return None,
    };
    let vaddr = area.base + u64::from(index) * PAGE_SIZE;
    let rights = Rights { write: false, ..area.rights };
    if let FrameRef::Pool(zero) = frame {
        frames.add_reference(zero);
    }
    match map_frame(platform, slots, structures, client, vaddr, frame, false, rights) {
        Ok(slot) => {
            area.resident.fill(vacancy, ResidentPage { frame, slot });
            Some(Ok((class, frame)))
        }
        Err(reason) => {
            if let FrameRef::Pool(zero) = frame {
                frames.release(zero);
            }
            Some(Err(reason))
        }
    }
}

/// The shared zero frame, made (from the pool, charged to nobody, pinned) on first use.
fn shared_zero_frame(
    platform: &mut impl Platform,
    frames: &mut FrameTable,
    zero_frame: &mut Option<PoolFrame>,
    client: ClientId,
) -> Result<PoolFrame, RefusalReason> {
    if let Some(zero) = *zero_frame {
        return Ok(zero);
    }
    let allocation =
        frames.allocate(platform, client, crate::FrameContent::Zero).map_err(RefusalReason::OutOfFrames)?;
    // Mapped into every client with copies (read-only), so its own cap stays unused.
    if let Err(error) = fill(platform, allocation, &NewFrame::Zero) {
        frames.release(allocation.frame);
        return Err(RefusalReason::Kernel(error));
    }
    frames.pin(allocation.frame);
    *zero_frame = Some(allocation.frame);
    Ok(allocation.frame)
}

/// What a policy sees of an area.
fn area_view(area: &Area) -> AreaView {
    AreaView { kind: area.kind, backend: area.backend, pages: area.pages(), policy: area.policy }
}

/// The rule governing page `index` of an area: its zero pages' or its file pages'.
fn rule_of_page(area: &Area, index: u32, images: &[Image<'_>]) -> crate::policy::PageRule {
    match classify(area, index, images) {
        PageSource::New(NewFrame::Zero) => area.policy.zero,
        _ => area.policy.file,
    }
}

/// The rule of a served page by its class: a page of zeroes' rule, else a file page's.
fn rule_of_class(rules: AreaPolicy, class: FaultClass) -> crate::policy::PageRule {
    match class {
        FaultClass::NewFrame(crate::FrameContent::Zero)
        | FaultClass::ZeroShared
        | FaultClass::Upgrade
        | FaultClass::Large => rules.zero,
        _ => rules.file,
    }
}

/// Whether a resident page's frame is one mapped read-only until the page's first write: the shared
/// zero frame, or an image frame (in a writable area only cow maps one).
fn read_only_stand_in(frame: FrameRef, zero_frame: Option<PoolFrame>) -> bool {
    match frame {
        FrameRef::Image(_) => true,
        FrameRef::Pool(frame) => zero_frame == Some(frame),
        FrameRef::Large(_) => false,
    }
}

// Inline, as the fault path's other small helpers: out of line each was a call on a shared area's
// every fault.
#[inline]
fn shared_object(shared: &[Option<SharedObject>], id: SharedId) -> &SharedObject {
    shared[usize::from(id.0)].as_ref().expect("live shared object")
}

#[inline]
fn shared_object_mut(shared: &mut [Option<SharedObject>], id: SharedId) -> &mut SharedObject {
    shared[usize::from(id.0)].as_mut().expect("live shared object")
}

fn checked_range(base: u64, size: u64) -> Result<u64, PagerError> {
    if size == 0 || !base.is_multiple_of(PAGE_SIZE) || !size.is_multiple_of(PAGE_SIZE) {
        return Err(AreaError::Unaligned { base, size }.into());
    }
    match base.checked_add(size) {
        Some(end) if base >= PAGE_SIZE && end <= USER_ADDRESS_LIMIT => Ok(end),
        _ => Err(AreaError::OutsideUserRange { base, size }.into()),
    }
}

/// HelenOS `as_area_check_access`, plus the guard page.
fn check_access(area: &Area, access: Access) -> Result<(), RefusalReason> {
    match area.backend {
        Backend::Guard => return Err(RefusalReason::StackOverflow),
        Backend::Reserved => return Err(RefusalReason::Reserved { area: area.kind }),
        Backend::Segment { .. } | Backend::Anonymous => {}
    }
    match access {
        Access::Write if !area.rights.write => Err(RefusalReason::WriteToReadOnly { area: area.kind }),
        Access::Execute if !area.rights.execute => {
            Err(RefusalReason::ExecuteNonExecutable { area: area.kind })
        }
        _ => Ok(()),
    }
}

/// A pool frame for `new` (whose content is `content`: the caller has it, a constant for a page of
/// zeroes), charged to the client (`charged`, within `budget`) and filled as `new` says; on a
/// failure nothing stays taken or charged. With it, whether its own cap may map it ([`fill`]).
// Always inlined: with two callers (the seed's path and `upgrade`) a plain hint left it out of
// line, which cost every zero fault some fifty instructions (`cargo xtask bench`).
#[inline(always)]
fn take_filled_frame(
    platform: &mut impl Platform,
    frames: &mut FrameTable,
    budget: Option<u32>,
    charged: &mut u32,
    client: ClientId,
    content: FrameContent,
    new: &NewFrame<'_>,
) -> Result<(Allocation, bool), RefusalReason> {
    if let Some(budget) = budget.filter(|b| *charged >= *b) {
        return Err(RefusalReason::OverBudget { budget });
    }
    let allocation = frames.allocate(platform, client, content).map_err(RefusalReason::OutOfFrames)?;
    *charged += 1;
    match fill(platform, allocation, new) {
        Ok(own_cap) => Ok((allocation, own_cap)),
        Err(error) => {
            frames.release(allocation.frame);
            *charged -= 1;
            Err(RefusalReason::Kernel(error))
        }
    }
}
