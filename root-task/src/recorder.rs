//! Recording mode (`cargo xtask trace`): every launch, VM fault, share and end as a trace record,
//! streamed over serial in checksummed chunks (the `trace` crate's wire format).
//!
//! Records are queued as they happen and written by [`Recorder::drain`], which the fault loop
//! calls between a message's handling and the next receive: the serial writes then fall outside
//! every measured interval (a fault's ticks and kernel entries, the reply's entries), so the
//! `[stats]` of a recording boot count what a normal boot counts. A normal image has no recorder
//! and takes none of these paths.

use alloc::collections::{BTreeSet, VecDeque};
use alloc::vec::Vec;

use pager::platform::MapPages;
use pager::{Access, ClientId, FaultClass, FaultResolution, FrameContent, MappingCap, Pager, Rights};
use trace::{Chunker, Record};

use crate::platform::Sel4Platform;

/// The serial console as a `fmt::Write` (the root task is its only writer).
struct Serial;

impl core::fmt::Write for Serial {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        crate::report::put_bytes(text.as_bytes());
        Ok(())
    }
}

/// The recording state of a boot in recording mode.
pub struct Recorder {
    chunker: Chunker,
    pending: Vec<Record>,
    /// The window, when recording with one.
    pub window: Option<Window>,
}

impl Recorder {
    /// A recorder; `window` 0 keeps every page mapped.
    pub fn new(window: u16) -> Self {
        Self {
            chunker: Chunker::new(),
            pending: Vec::new(),
            window: (window > 0).then(|| Window::new(window)),
        }
    }

    pub fn push(&mut self, record: Record) {
        self.pending.push(record);
    }

    /// Sets the ticks of the last record queued: the pager's part of a served fault, from its
    /// message's arrival to its reply, as `[stats] scope=class` counts it.
    pub fn set_last_ticks(&mut self, ticks: u64) {
        if let Some(last) = self.pending.last_mut() {
            last.ticks = (ticks.min(u64::from(u32::MAX)) as u32).into();
        }
    }

    /// Writes every full chunk queued so far.
    pub fn drain(&mut self) {
        for record in self.pending.drain(..) {
            if self.chunker.push(record) {
                let _ = self.chunker.flush(&mut Serial);
            }
        }
    }

    /// Writes what is left and the end line (chunks and records sent).
    pub fn finish(&mut self) {
        self.drain();
        let _ = self.chunker.finish(&mut Serial);
    }
}

/// The trace's number for an access.
pub fn access_code(access: Access) -> u8 {
    match access {
        Access::Read => trace::access::READ,
        Access::Write => trace::access::WRITE,
        Access::Execute => trace::access::EXECUTE,
    }
}

/// The trace's number for a class.
pub fn class_code(class: FaultClass) -> u8 {
    match class {
        FaultClass::SharedHit => trace::class::SHARED_HIT,
        FaultClass::ImageFrame => trace::class::IMAGE_FRAME,
        FaultClass::NewFrame(FrameContent::Copy) => trace::class::COPY,
        FaultClass::NewFrame(FrameContent::Zero) => trace::class::ZERO,
        FaultClass::NewFrame(FrameContent::Mixed) => trace::class::MIXED,
        FaultClass::Spurious => trace::class::SPURIOUS,
        FaultClass::Large => trace::class::LARGE,
        FaultClass::ZeroShared => trace::class::ZERO_SHARED,
        FaultClass::Upgrade => trace::class::ZERO_UPGRADE,
        FaultClass::CowCopy => trace::class::COW_COPY,
        // An evicting client's soft refault and first write are what the recording window's
        // refault and upgrade are; a store refault has no class of its own in the trace yet.
        FaultClass::RefaultSoft | FaultClass::RefaultStore => trace::class::REFAULT,
        FaultClass::Dirty => trace::class::UPGRADE,
    }
}

/// What one fault's record is made of, besides its outcome.
pub struct FaultEvent {
    pub client: ClientId,
    pub app: u16,
    pub fault: pager::Fault,
    pub kernel_entries: u64,
    pub ticks: u64,
}

/// The record of a fault the window served (`class` is [`trace::class::REFAULT`] or
/// [`trace::class::UPGRADE`]).
pub fn window_record(pager: &Pager<'static>, event: &FaultEvent, class: u8) -> Record {
    let mut record = fault_record(pager, event, None);
    record.class = class;
    record.pages_mapped = 1.into();
    let page = pager::page_align_down(event.fault.address);
    let frame = pager
        .client(event.client)
        .and_then(|c| c.areas().iter().find_map(|a| a.resident_at(page)))
        .map_or(0, |p| p.frame.to_bits());
    record.frame = frame.into();
    record
}

/// The record of a served (`Some`) or refused (`None`) fault.
pub fn fault_record(pager: &Pager<'static>, event: &FaultEvent, served: Option<&FaultResolution>) -> Record {
    let address = event.fault.address;
    let area = pager
        .client(event.client)
        .and_then(|c| c.areas().iter().position(|a| a.base() <= address && address < a.end()))
        .map_or(u8::MAX, |i| i.min(254) as u8);
    Record {
        kind: trace::kind::FAULT,
        access: access_code(event.fault.access),
        class: served.map_or(trace::class::REFUSED, |r| class_code(r.class)),
        area,
        client: event.client.0.into(),
        app: event.app.into(),
        page: trace::page_number(address).into(),
        frame: served.map_or(0, |r| r.frame.to_bits()).into(),
        pages_mapped: served.map_or(0, |r| r.pages_mapped.min(u32::from(u16::MAX)) as u16).into(),
        kernel_entries: (event.kernel_entries.min(u64::from(u16::MAX)) as u16).into(),
        ticks: (event.ticks.min(u64::from(u32::MAX)) as u32).into(),
        ip: event.fault.ip.into(),
    }
}

/// The recording window (`cargo xtask trace --window K`): each client keeps at most `K` pages
/// mapped, and a page of a writable area is mapped read-only until its first write, so that the
/// trace holds references the pager would otherwise never see.
///
/// It works beside the pager, not in it: the pager still holds every page it resolved (its frame,
/// its cap, its counts); the window only takes a page's mapping away (`unmap_page` on its
/// copy) and puts it back (`map_page`), so a page's content is never lost and the pager's
/// accounting and teardown are unchanged. The oldest mapping goes first (first in, first out: with
/// no accessed bits to read, seL4 shows the pager no references but faults). A fault on a page the
/// window unmapped is a refault, on a read-only page by a write an upgrade; the window serves both
/// itself and records them with their own classes.
pub struct Window {
    limit: usize,
    /// Per client number: the pages mapped, oldest first.
    mapped: Vec<VecDeque<u64>>,
    /// Pages resident in the pager but unmapped by the window.
    parked: BTreeSet<(u16, u64)>,
    /// Pages of writable areas mapped read-only, not yet written.
    unwritten: BTreeSet<(u16, u64)>,
}

/// What the window did with a fault.
pub enum Windowed {
    /// Served by the window: the trace class ([`trace::class::REFAULT`] or
    /// [`trace::class::UPGRADE`]) and the kernel entries it took.
    Served(u8),
    /// Not the window's: the pager serves it.
    Pager,
}

impl Window {
    pub fn new(limit: u16) -> Self {
        Self {
            limit: usize::from(limit),
            mapped: Vec::new(),
            parked: BTreeSet::new(),
            unwritten: BTreeSet::new(),
        }
    }

    fn slot_and_rights(pager: &Pager<'static>, client: ClientId, page: u64) -> Option<(MappingCap, Rights)> {
        let area = pager.client(client)?.areas().iter().find(|a| a.base() <= page && page < a.end())?;
        Some((area.resident_at(page)?.cap(), area.rights()))
    }

    /// Serves a fault on a page the window unmapped or made read-only; `Pager` for any other.
    pub fn serve(
        &mut self,
        pager: &Pager<'static>,
        platform: &mut Sel4Platform,
        client: ClientId,
        fault: &pager::Fault,
    ) -> Windowed {
        let page = pager::page_align_down(fault.address);
        let key = (client.0, page);
        let write = fault.access == Access::Write;
        let parked = self.parked.contains(&key);
        let upgrade = !parked && write && self.unwritten.contains(&key);
        if !parked && !upgrade {
            return Windowed::Pager;
        }
        let Some((slot, mut rights)) = Self::slot_and_rights(pager, client, page) else {
            return Windowed::Pager;
        };
        if write {
            self.unwritten.remove(&key);
        } else if self.unwritten.contains(&key) {
            rights.write = false;
        }
        if upgrade {
            let _ = platform.unmap_page(slot);
        }
        if platform.map_page(client, page, slot, rights).is_err() {
            return Windowed::Pager;
        }
        if parked {
            self.parked.remove(&key);
            self.admit(pager, platform, client, page);
            Windowed::Served(trace::class::REFAULT)
        } else {
            Windowed::Served(trace::class::UPGRADE)
        }
    }

    /// After the pager served a fault at `page`: a page of a writable area faulted by a read is
    /// mapped read-only instead, and the page joins the client's window.
    pub fn served(
        &mut self,
        pager: &Pager<'static>,
        platform: &mut Sel4Platform,
        client: ClientId,
        fault: &pager::Fault,
    ) {
        let page = pager::page_align_down(fault.address);
        let Some((slot, rights)) = Self::slot_and_rights(pager, client, page) else { return };
        if rights.write && fault.access != Access::Write {
            let read_only = Rights { write: false, ..rights };
            let _ = platform.unmap_page(slot);
            if platform.map_page(client, page, slot, read_only).is_ok() {
                self.unwritten.insert((client.0, page));
            } else {
                let _ = platform.map_page(client, page, slot, rights);
            }
        }
        self.admit(pager, platform, client, page);
    }

    /// Adds a mapped page to the client's window, unmapping the oldest past the limit.
    fn admit(&mut self, pager: &Pager<'static>, platform: &mut Sel4Platform, client: ClientId, page: u64) {
        let index = usize::from(client.0);
        if self.mapped.len() <= index {
            self.mapped.resize_with(index + 1, VecDeque::new);
        }
        self.mapped[index].push_back(page);
        while self.mapped[index].len() > self.limit {
            let Some(oldest) = self.mapped[index].pop_front() else { break };
            if let Some((slot, _)) = Self::slot_and_rights(pager, client, oldest) {
                let _ = platform.unmap_page(slot);
                self.parked.insert((client.0, oldest));
            }
        }
    }

    /// Forgets a client that ended (its number may be reused).
    pub fn forget(&mut self, client: ClientId) {
        if let Some(pages) = self.mapped.get_mut(usize::from(client.0)) {
            pages.clear();
        }
        self.parked.retain(|(c, _)| *c != client.0);
        self.unwritten.retain(|(c, _)| *c != client.0);
    }
}
