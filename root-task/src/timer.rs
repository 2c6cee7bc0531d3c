//! The pager's clock: a periodic interrupt that wakes the fault loop, so that a client that never
//! faults or calls (one spinning forever) is still stopped when it runs past its app's time limit.
//!
//! The PC's interval timer (PIT, channel 0) ticks [`TICK_HZ`] times a second. Its interrupt, ISA
//! IRQ 0, reaches the I/O APIC on input 2 on QEMU's `pc` machine (the MADT's interrupt source
//! override for IRQ 0, printed by a debug kernel at boot); an IRQ handler cap for that input
//! signals a notification bound to the root task's TCB, so the fault loop's receive on its
//! endpoint returns for a tick too, with the notification's badge [`BADGE`] in place of a
//! client's. The PIT is programmed through the root task's I/O-port cap; the kernel itself only
//! uses it to calibrate its clocks at boot.
//!
//! Time is guest time read from the TSC (`sel4::timestamp`), whose rate bootinfo gives: under
//! QEMU's `-icount shift=0` one tick per guest instruction, so a limit stops a client at the same
//! point every run. A client's time runs from the moment the pager begins to set it up (the
//! timeline's setup stamp), whether it runs, waits for the pager or is preempted: seL4 5.0
//! without MCS keeps no per-thread CPU time.

use sel4::{init, CapRights, IrqHandler, Notification};

use crate::cspace::{self, SlotAllocator, ROOT_DEPTH};
use crate::object_allocator::ObjectAllocator;

/// The badge a tick arrives with. Endpoint badges are 28 bits in seL4 5.0 (`structures_64.bf`)
/// and a client's is its number plus one, so no client message carries this bit.
pub const BADGE: u64 = 1 << 63;
/// Ticks a second: time limits are checked this often.
pub const TICK_HZ: u64 = 20;
/// The PIT's input clock.
const PIT_HZ: u64 = 1_193_182;
/// PIT ports: channel 0's counter and the mode/command register.
const PIT_CHANNEL_0: u16 = 0x40;
const PIT_COMMAND: u16 = 0x43;
/// Channel 0, low byte then high byte, mode 2 (rate generator: periodic), binary count.
const PIT_PERIODIC: u8 = 0x34;
/// The I/O APIC and its input the PIT's IRQ 0 arrives on.
const IOAPIC: u64 = 0;
const PIT_IOAPIC_PIN: u64 = 2;
/// The user interrupt number the handler gets (any free one; the kernel adds its vector offset).
const USER_IRQ: u64 = 0;

/// The running clock.
pub struct Timer {
    handler: IrqHandler,
    /// TSC ticks per millisecond.
    ticks_per_ms: u64,
}

impl Timer {
    /// Makes the notification, binds it to the root task, takes the PIT's interrupt and starts the
    /// PIT. `tsc_mhz` is the TSC rate bootinfo reports.
    pub fn start(
        slots: &mut SlotAllocator,
        objects: &mut ObjectAllocator,
        tsc_mhz: u64,
    ) -> Result<Timer, alloc::string::String> {
        let (notification, _) = objects
            .allocate::<Notification>(slots)
            .map_err(|e| alloc::format!("timer notification: {e:?}"))?;
        // The handler gets a badged copy with the right to signal and nothing else.
        let badged = slots.allocate().ok_or("timer: no slot for the badged notification")?;
        cspace::mint(badged, notification.cptr(), CapRights::WRITE, BADGE)
            .map_err(|e| alloc::format!("timer: mint the notification: {e}"))?;
        let handler_slot = slots.allocate().ok_or("timer: no slot for the IRQ handler")?;
        init::IRQ_CONTROL
            .get_ioapic(
                init::CNODE,
                handler_slot.bits(),
                ROOT_DEPTH,
                IOAPIC,
                PIT_IOAPIC_PIN,
                false,
                false,
                USER_IRQ,
            )
            .map_err(|e| alloc::format!("timer: IRQ handler for I/O APIC input {PIT_IOAPIC_PIN}: {e}"))?;
        let handler = IrqHandler::from_cptr(handler_slot);
        handler
            .set_notification(Notification::from_cptr(badged))
            .map_err(|e| alloc::format!("timer: IRQHandler_SetNotification: {e}"))?;
        init::TCB
            .bind_notification(notification)
            .map_err(|e| alloc::format!("timer: TCB_BindNotification: {e}"))?;
        let [low, high] = pit_divisor(TICK_HZ).to_le_bytes();
        let program = [(PIT_COMMAND, PIT_PERIODIC), (PIT_CHANNEL_0, low), (PIT_CHANNEL_0, high)];
        for (port, value) in program {
            init::IO_PORT.out8(port, value).map_err(|e| alloc::format!("timer: program the PIT: {e}"))?;
        }
        handler.ack().map_err(|e| alloc::format!("timer: IRQHandler_Ack: {e}"))?;
        Ok(Timer { handler, ticks_per_ms: tsc_mhz.max(1) * 1000 })
    }

    /// Lets the next tick in (the kernel masks the interrupt until this).
    pub fn acknowledge(&self) -> sel4::Result<()> {
        self.handler.ack()
    }

    /// TSC ticks in `ms` milliseconds.
    pub fn ticks(&self, ms: u32) -> u64 {
        u64::from(ms).saturating_mul(self.ticks_per_ms)
    }
}

/// The PIT's count for `hz` ticks a second (16 bits: at least about 18.2 Hz).
pub const fn pit_divisor(hz: u64) -> u16 {
    let divisor = PIT_HZ / hz;
    if divisor > u16::MAX as u64 {
        u16::MAX
    } else {
        divisor as u16
    }
}

/// A time limit as the report names it: whole seconds as "2 s", else milliseconds.
pub struct Limit(pub u32);

impl core::fmt::Display for Limit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.0.is_multiple_of(1000) {
            write!(f, "{} s", self.0 / 1000)
        } else {
            write!(f, "{} ms", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_hertz_fits_the_pit_counter() {
        assert_eq!(pit_divisor(TICK_HZ), 59_659);
        assert_eq!(pit_divisor(1), u16::MAX);
    }

    #[test]
    fn limits_read_in_seconds_or_milliseconds() {
        assert_eq!(alloc::format!("{}", Limit(2000)), "2 s");
        assert_eq!(alloc::format!("{}", Limit(250)), "250 ms");
    }

    #[test]
    fn no_client_badge_has_the_timer_bit() {
        assert_eq!(crate::client::badge(pager::ClientId(u16::MAX)) & BADGE, 0);
        // The timer's badge is no client number plus one: `record_of_badge` finds no record for it.
        assert!(BADGE - 1 > u64::from(u16::MAX));
    }
}
