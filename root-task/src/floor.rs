//! The kernel's floor under the pager: what seL4 5.0 itself costs a fault, timed in the same boot
//! as the pager's figures (`cargo xtask bench`, `manifests/bench/floor.toml`).
//!
//! Two parts, as seL4's own benchmarks take them:
//! - the fault round trip with nothing to map (sel4bench's fault benchmark): the bench's floor
//!   client (`bench_floor = true` in its manifest, `apps/c/bench-floor.c`) executes `ud2`, the
//!   kernel sends the user-exception fault to the pager, which steps the client's instruction
//!   pointer over the two bytes and replies. The client times each round trip; the pager times its
//!   own part of each (from the message's arrival to the reply), so the kernel's part is the
//!   difference. Only that app's invalid-opcode faults are answered so: any other client's user
//!   exception, and any other exception of the floor client, stops it as before.
//! - one `CNode_Copy` and one `Page_Map` as the pager sees them: at the floor client's first
//!   exception the pager copies an image frame cap into a slot of its own and maps it into the
//!   client's VSpace at [`PROBE_ADDRESS`] (outside its areas), [`PROBE_ROUNDS`] times, each call
//!   timed exactly as the platform times the pager's calls on the fault path
//!   ([`Sel4Platform::kernel_ticks`]); each round unmaps and deletes the copy again, so the
//!   client's address space is as it was. The first round, which makes the paging structures
//!   the address needs, is not timed.
//!
//! The figures go out as one `[stats] scope=floor` line when the pager is done.

use alloc::vec::Vec;

use pager::{ClientId, Rights};
use sel4::{CPtr, CapRights, Frame, UserException, VmAttributes};

use crate::cspace;
use crate::platform::Sel4Platform;
use crate::report::{self, Name};

/// Where the probe maps: 3 GiB, above the default stack (2.75 GiB) and below the 4 GiB the kernel
/// reports fault addresses within. The floor client's manifest keeps its areas off it (checked).
pub const PROBE_ADDRESS: u64 = 0xC000_0000;
/// Timed rounds of `CNode_Copy` and `Page_Map`.
pub const PROBE_ROUNDS: usize = 16;
/// The x86 vector of an invalid opcode (`ud2`).
const INVALID_OPCODE: u64 = 6;
/// Bytes of `ud2` (0f 0b).
const UD2_LENGTH: u64 = 2;
/// Round trips whose pager part is kept for the median.
const SAMPLE_LIMIT: usize = 4096;

/// The reply registers that resume a floor client past its `ud2` (the user-exception reply
/// layout: instruction pointer, stack pointer, flags), or `None` when the exception is to stop
/// its client: any client not marked `bench_floor`, and any exception but an invalid opcode.
pub fn step_over(bench_floor: bool, exception: &UserException) -> Option<[u64; 3]> {
    (bench_floor && exception.number == INVALID_OPCODE)
        .then(|| [exception.ip.wrapping_add(UD2_LENGTH), exception.stack_pointer, exception.flags])
}

/// The floor's figures, gathered over the boot.
pub struct Floor {
    /// A root-CNode slot of the floor's own, for the probe's cap copy.
    slot: CPtr,
    /// The cap the probe copies and maps: an image frame, as an image fault maps.
    source: Frame,
    /// The floor client measured (the first to raise an exception that is stepped over).
    client: Option<(ClientId, Name<'static>)>,
    /// The pager's ticks from each floor exception's arrival to its reply.
    handling: Vec<u64>,
    /// Ticks of each timed `CNode_Copy` and `Page_Map`.
    copies: Vec<u64>,
    maps: Vec<u64>,
    /// Why the probe could not run, if it could not.
    failure: Option<&'static str>,
}

impl Floor {
    /// A floor that copies `source` into `slot` for its probe.
    pub fn new(slot: CPtr, source: Frame) -> Self {
        Self {
            slot,
            source,
            client: None,
            handling: Vec::new(),
            copies: Vec::new(),
            maps: Vec::new(),
            failure: None,
        }
    }

    /// Records the pager's part of one stepped-over exception.
    pub fn handled(&mut self, ticks: u64) {
        if self.handling.len() < SAMPLE_LIMIT {
            self.handling.push(ticks);
        }
    }

    /// Whether no floor client has been probed yet.
    pub fn wants_probe(&self) -> bool {
        self.client.is_none()
    }

    /// At the first exception stepped over: runs the probe in that client, whose areas are
    /// `clear` of [`PROBE_ADDRESS`] (otherwise the probe fails the run).
    pub fn probe_once(
        &mut self,
        platform: &mut Sel4Platform,
        client: ClientId,
        name: Name<'static>,
        clear: bool,
    ) {
        if self.client.is_some() {
            return;
        }
        self.client = Some((client, name));
        if !clear {
            self.failure = Some("the probe address lies in one of the client's areas");
            return;
        }
        if let Err(reason) = self.probe(platform, client) {
            self.failure = Some(reason);
        }
    }

    fn probe(&mut self, platform: &mut Sel4Platform, client: ClientId) -> Result<(), &'static str> {
        let pml4 = platform.pml4(client).ok_or("the client has no VSpace")?;
        let copy = Frame::from_cptr(self.slot);
        let (slot, source) = (self.slot, self.source.cptr());
        // Untimed: the first map makes the paging structures the address needs.
        platform.invoke(|| cspace::copy(slot, source, CapRights::READ)).map_err(|_| "CNode_Copy failed")?;
        let mapped = platform.map_own_frame(client, copy, PROBE_ADDRESS, Rights::READ);
        self.undo(platform)?;
        mapped.map_err(|_| "the first Page_Map failed")?;
        for _ in 0..PROBE_ROUNDS {
            let before = platform.kernel_ticks();
            platform
                .invoke(|| cspace::copy(slot, source, CapRights::READ))
                .map_err(|_| "CNode_Copy failed")?;
            let between = platform.kernel_ticks();
            let mapped =
                platform.invoke(|| copy.map(pml4, PROBE_ADDRESS, CapRights::READ, VmAttributes::default()));
            let after = platform.kernel_ticks();
            self.undo(platform)?;
            mapped.map_err(|_| "Page_Map failed")?;
            self.copies.push(between - before);
            self.maps.push(after - between);
        }
        Ok(())
    }

    /// Unmaps and deletes the probe's copy (unmapping a copy that is not mapped fails harmlessly).
    fn undo(&mut self, platform: &mut Sel4Platform) -> Result<(), &'static str> {
        let copy = Frame::from_cptr(self.slot);
        let _ = platform.invoke(|| copy.unmap());
        let slot = self.slot;
        platform.invoke(|| cspace::delete(slot)).map_err(|_| "CNode_Delete failed")
    }

    /// The `[stats] scope=floor` line, when a floor client ran; `Err` when its probe failed.
    pub fn report(&self) -> Result<(), alloc::string::String> {
        let Some((_, name)) = self.client else { return Ok(()) };
        if let Some(reason) = self.failure {
            return Err(alloc::format!("the floor probe in {name} failed: {reason}"));
        }
        report::floor_stats(&report::FloorFigures {
            client: name,
            exceptions: self.handling.len() as u64,
            handling_median: median(&self.handling),
            rounds: self.maps.len() as u64,
            cnode_copy_median: median(&self.copies),
            cnode_copy_min: self.copies.iter().copied().min().unwrap_or(0),
            page_map_median: median(&self.maps),
            page_map_min: self.maps.iter().copied().min().unwrap_or(0),
        });
        Ok(())
    }
}

/// The median (the upper one of an even count); 0 of none.
fn median(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exception(number: u64) -> UserException {
        UserException { ip: 0x40_1000, stack_pointer: 0xafff_f000, flags: 0x202, number, code: 0 }
    }

    #[test]
    fn only_a_floor_clients_invalid_opcode_is_stepped_over() {
        assert_eq!(step_over(true, &exception(6)), Some([0x40_1002, 0xafff_f000, 0x202]));
        assert_eq!(step_over(false, &exception(6)), None, "any other client is stopped");
        assert_eq!(step_over(true, &exception(13)), None, "a general protection fault is stopped");
        assert_eq!(step_over(true, &exception(0)), None);
    }

    #[test]
    fn median_is_the_upper_middle() {
        assert_eq!(median(&[]), 0);
        assert_eq!(median(&[5, 1, 9]), 5);
        assert_eq!(median(&[4, 1, 9, 7]), 7);
    }
}
