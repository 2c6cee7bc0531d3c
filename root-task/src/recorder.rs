//! Recording mode (`cargo xtask trace`): every launch, VM fault, share and end as a trace record,
//! streamed over serial in checksummed chunks (the `trace` crate's wire format).
//!
//! Records are queued as they happen and written by [`Recorder::drain`], which the fault loop
//! calls between a message's handling and the next receive: the serial writes then fall outside
//! every measured interval (a fault's ticks and kernel entries, the reply's entries), so the
//! `[stats]` of a recording boot count what a normal boot counts. A normal image has no recorder
//! and takes none of these paths.

use alloc::vec::Vec;

use pager::{Access, ClientId, FaultClass, FaultResolution, FrameContent, Pager};
use trace::{Chunker, Record};

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
}

impl Recorder {
    pub fn new() -> Self {
        Self { chunker: Chunker::new(), pending: Vec::new() }
    }

    pub fn push(&mut self, record: Record) {
        self.pending.push(record);
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
