//! The pager's loop: receive on the endpoint, tell the client by its badge, serve its fault or call,
//! reply (or, for a client that has ended, tear it down, start its instance's next run if it exited
//! as expected and has runs left, and reply to no one), until none is left.
//!
//! A served fault is answered with `ReplyRecv`, so its common cost is three kernel entries:
//! `CNode_Copy`, `Page_Map`, `ReplyRecv`. Nothing a client sends can make the pager panic: every
//! malformed call gets an error reply, every unservable fault stops that client only.
//!
//! Each served fault's cost is kept by class ([`FaultCosts`]): the pager's own part, read with
//! `rdtsc` from the moment the fault message arrives to the moment the reply is sent (guest
//! instructions under `-icount shift=0`), and its kernel entries, the reply included.

use alloc::string::String;
use alloc::vec::Vec;

use bootimage::BootImage;
use pager::{ClientId, FaultClass, Pager, ShareError, SharedId};
use sel4::{Endpoint, Fault, MessageInfo, Received};

use crate::client::{self, ClientRecord, IPC_BUFFER_ADDRESS};
use crate::costs::{FaultCosts, Served};
use crate::pager_mode::{self, Launch};
use crate::platform::Sel4Platform;
use crate::report::{self, Name};

/// Message labels of the app calls (docs/app-abi.md).
pub mod label {
    pub const EXIT: u64 = 0x100;
    pub const PRINT: u64 = 0x101;
    pub const SHARE: u64 = 0x102;
}

/// Most bytes one print call carries.
pub const PRINT_LIMIT: u64 = 928;
/// A line longer than this is printed in pieces.
const LINE_LIMIT: usize = 1024;
/// Reply to an unknown call or a malformed one.
const UNKNOWN_CALL: u64 = u64::MAX;

/// Share error codes (docs/app-abi.md).
mod share_status {
    pub const NO_DESTINATION: u64 = 1;
    pub const NO_AREA: u64 = 2;
    pub const DOES_NOT_FIT: u64 = 3;
    pub const TOO_MANY_SHARED: u64 = 4;
    /// The sender's app may not share into the destination's: its `share_to` does not name it.
    pub const NOT_PERMITTED: u64 = 5;
}

/// What to send back before waiting for the next message.
#[derive(Clone, Copy)]
struct Reply {
    status: u64,
    /// Set when the reply restarts a thread whose fault was served (a fault-path kernel entry): the
    /// fault's class and the pager's kernel calls for it, for its cost record.
    served: Option<Served>,
}

impl Reply {
    fn fault(served: Served) -> Reply {
        Reply { status: 0, served: Some(served) }
    }

    fn status(status: u64) -> Reply {
        Reply { status, served: None }
    }

    fn message(self) -> (MessageInfo, [u64; 4]) {
        if self.served.is_some() {
            (MessageInfo::new(0, 0, 0, 0), [0; 4])
        } else {
            (MessageInfo::new(0, 0, 0, 1), [self.status, 0, 0, 0])
        }
    }
}

/// How a client ended.
enum Ending {
    Exited(i64),
    Stopped,
}

/// The running pager: its state, its clients and the counts the final report needs.
pub struct Session {
    pub pager: Pager<'static>,
    pub platform: Sel4Platform,
    pub endpoint: Endpoint,
    /// The boot image the clients come from.
    pub image: BootImage<'static>,
    /// The pager's shared object for each of the image's regions.
    pub regions: Vec<SharedId>,
    /// Indexed by client number.
    pub records: Vec<Option<ClientRecord>>,
    /// Clients started in all: every run of every instance.
    pub started: usize,
    /// Clients alive now (each started client until its teardown).
    pub live: usize,
    /// Kernel entries spent serving VM faults, replies included.
    pub fault_entries: u64,
    /// VM faults received.
    pub vm_faults: u64,
    /// Served faults' costs by class.
    pub costs: FaultCosts,
    /// Pages mapped by the policy before clients started, and the kernel entries that took.
    pub startup_pages: u64,
    pub startup_entries: u64,
    /// The first reason the run fails, if any.
    pub failure: Option<String>,
    /// The clock behind the clients' time limits ([`crate::timer`]).
    pub timer: Option<crate::timer::Timer>,
}

impl Session {
    /// Records a failure of the run (the first one is reported).
    pub fn fail(&mut self, reason: String) {
        self.failure.get_or_insert(reason);
    }

    /// Serves messages until no client is left.
    pub fn run(&mut self) {
        let mut reply: Option<Reply> = None;
        while self.live > 0 {
            let message = match reply.take() {
                Some(reply) => {
                    if reply.served.is_some() {
                        self.fault_entries += 1;
                    }
                    let (info, registers) = reply.message();
                    self.endpoint.reply_recv(info, registers)
                }
                None => self.endpoint.recv(),
            };
            let received_at = sel4::timestamp();
            reply = self.dispatch(&message);
            if let Some(served) = reply.and_then(|r| r.served) {
                let ticks = sel4::timestamp().wrapping_sub(received_at);
                self.costs.record(served, ticks);
            }
        }
    }

    fn dispatch(&mut self, message: &Received) -> Option<Reply> {
        // A timer tick (the bound notification's badge), not a client's message: nothing to answer.
        if message.badge & crate::timer::BADGE != 0 {
            self.tick();
            return None;
        }
        let client = client::client_of_badge(message.badge)
            .filter(|c| self.records.get(usize::from(c.0)).is_some_and(Option::is_some));
        let Some(client) = client else {
            sel4::debug_println!(
                "[pager] ignored a message with badge {:#x} and label {:#x}: no such client",
                message.badge,
                message.info.label()
            );
            return None;
        };
        match message.info.label() {
            label::EXIT => {
                let code = message.registers[0] as i64;
                self.end(client, Ending::Exited(code));
                None
            }
            label::PRINT => Some(self.print(client, message)),
            label::SHARE => Some(self.share(client, message)),
            _ => match Fault::decode(message.info, |i| message.message_register(i)) {
                Ok(fault) => self.fault(client, fault),
                Err(_) => Some(Reply::status(UNKNOWN_CALL)),
            },
        }
    }

    fn name(&self, client: ClientId) -> Name<'static> {
        match self.records.get(usize::from(client.0)).and_then(Option::as_ref) {
            Some(record) => Name { app: record.name, instance: record.instance },
            None => Name { app: "?", instance: 0 },
        }
    }

    fn fault(&mut self, client: ClientId, fault: Fault) -> Option<Reply> {
        let name = self.name(client);
        match fault {
            Fault::Vm(vm) => {
                self.vm_faults += 1;
                if let Some(record) = self.records.get_mut(usize::from(client.0)).and_then(Option::as_mut) {
                    record.faults += 1;
                }
                let access = pager::Access::from_x86_fault(vm.ip, vm.address, vm.fsr);
                let fault = pager::Fault { address: vm.address, ip: vm.ip, access };
                let (before, ticks_before) = (self.platform.kernel_entries(), self.platform.kernel_ticks());
                let result = self.pager.handle_fault(&mut self.platform, client, fault);
                let kernel_entries = self.platform.kernel_entries() - before;
                let kernel_ticks = self.platform.kernel_ticks() - ticks_before;
                self.fault_entries += kernel_entries;
                match result {
                    Ok(resolution) => {
                        let spurious = resolution.class == FaultClass::Spurious;
                        let record = self.records.get_mut(usize::from(client.0)).and_then(Option::as_mut)?;
                        let this = (vm.address, vm.ip);
                        if spurious && record.last_spurious == Some(this) {
                            sel4::debug_println!(
                                "[pager] stopped {name}: {access} at {:#x} (ip {:#x}): repeated fault on a page \
                                 already mapped for this access",
                                vm.address,
                                vm.ip
                            );
                            self.end(client, Ending::Stopped);
                            return None;
                        }
                        record.last_spurious = spurious.then_some(this);
                        Some(Reply::fault(Served { class: resolution.class, kernel_entries, kernel_ticks }))
                    }
                    Err(refusal) => {
                        sel4::debug_println!(
                            "[pager] stopped {name}: {} at {:#x} (ip {:#x}): {}",
                            refusal.fault.access,
                            refusal.fault.address,
                            refusal.fault.ip,
                            refusal.reason
                        );
                        self.end(client, Ending::Stopped);
                        None
                    }
                }
            }
            Fault::UserException(exception) => {
                sel4::debug_println!(
                    "[pager] stopped {name}: exception at {:#x} (ip {:#x}): user exception, vector {} ({}, \
                     error code {:#x})",
                    exception.ip,
                    exception.ip,
                    exception.number,
                    exception_name(exception.number),
                    exception.code
                );
                self.end(client, Ending::Stopped);
                None
            }
            Fault::Cap(cap) => {
                sel4::debug_print!(
                    "[pager] stopped {name}: capability fault at {:#x} (ip {:#x}): no capability at CPtr {:#x}",
                    cap.address,
                    cap.ip,
                    cap.address
                );
                match cap.failure {
                    Some(failure) => sel4::debug_println!(" ({failure})"),
                    None => sel4::debug_println!(),
                }
                self.end(client, Ending::Stopped);
                None
            }
            Fault::UnknownSyscall(syscall) => {
                sel4::debug_println!(
                    "[pager] stopped {name}: syscall at {:#x} (ip {:#x}): unknown syscall {}",
                    syscall.ip(),
                    syscall.ip(),
                    syscall.syscall as i64
                );
                self.end(client, Ending::Stopped);
                None
            }
        }
    }

    fn print(&mut self, client: ClientId, message: &Received) -> Reply {
        let count = message.registers[0];
        let words = count.div_ceil(8);
        if count > PRINT_LIMIT || message.info.length() < 1 + words {
            return Reply::status(UNKNOWN_CALL);
        }
        let name = self.name(client);
        let Some(record) = self.records.get_mut(usize::from(client.0)).and_then(Option::as_mut) else {
            return Reply::status(UNKNOWN_CALL);
        };
        for word in 0..words as usize {
            let bytes = message.message_register(1 + word).to_le_bytes();
            let take = (count as usize - word * 8).min(8);
            for &byte in &bytes[..take] {
                if byte == b'\n' {
                    report::app_line(name, &record.line);
                    record.line.clear();
                } else {
                    record.line.push(byte);
                    if record.line.len() >= LINE_LIMIT {
                        report::app_line(name, &record.line);
                        record.line.clear();
                    }
                }
            }
        }
        Reply::status(count)
    }

    fn share(&mut self, client: ClientId, message: &Received) -> Reply {
        let [address, at, instance, name_length] = message.registers;
        let words = name_length.div_ceil(8);
        if name_length > bootimage::NAME_LENGTH as u64 || message.info.length() < 4 + words {
            return Reply::status(share_status::NO_DESTINATION);
        }
        let mut name = [0u8; bootimage::NAME_LENGTH];
        for word in 0..words as usize {
            let bytes = message.message_register(4 + word).to_le_bytes();
            let take = (name_length as usize - word * 8).min(8);
            name[word * 8..word * 8 + take].copy_from_slice(&bytes[..take]);
        }
        let Ok(name) = core::str::from_utf8(&name[..name_length as usize]) else {
            return Reply::status(share_status::NO_DESTINATION);
        };
        let destination = self.records.iter().position(|record| {
            record.as_ref().is_some_and(|r| r.name == name && u64::from(r.instance) == instance)
        });
        let Some(destination) = destination else {
            return Reply::status(share_status::NO_DESTINATION);
        };
        // Consent comes from the manifest (`share_to`), never from the destination at run time.
        let source_app =
            self.records.get(usize::from(client.0)).and_then(Option::as_ref).map(|r| r.launch.app);
        let destination_app = self.image.apps().iter().position(|app| app.name() == name);
        let permitted = source_app
            .zip(destination_app)
            .is_some_and(|(source, destination)| self.image.may_share(source, destination));
        if !permitted {
            return Reply::status(share_status::NOT_PERMITTED);
        }
        // The IPC buffer page is no pager area: refuse a share that would cover it.
        let size = self
            .pager
            .client(client)
            .and_then(|c| c.areas().iter().find(|a| a.base() <= address && address < a.end()))
            .map(|a| a.end() - a.base());
        let Some(size) = size else {
            return Reply::status(share_status::NO_AREA);
        };
        if at <= IPC_BUFFER_ADDRESS && IPC_BUFFER_ADDRESS < at.saturating_add(size) {
            return Reply::status(share_status::DOES_NOT_FIT);
        }
        let status = match self.pager.share(client, address, ClientId(destination as u16), at) {
            Ok(()) => 0,
            Err(ShareError::UnknownClient(_)) => share_status::NO_DESTINATION,
            Err(ShareError::NoArea { .. } | ShareError::NotShareable { .. }) => share_status::NO_AREA,
            Err(ShareError::Area(_)) => share_status::DOES_NOT_FIT,
            Err(ShareError::TooManySharedObjects) => share_status::TOO_MANY_SHARED,
        };
        Reply::status(status)
    }

    /// Stops a client for something other than a message of its own (its time limit): `report`
    /// is the rest of the line after its name.
    pub fn stop(&mut self, client: ClientId, report: core::fmt::Arguments<'_>) {
        sel4::debug_println!("[pager] stopped {}: {report}", self.name(client));
        self.end(client, Ending::Stopped);
    }

    /// Ends a client: its last output, its report, then teardown (the thread first, the pager's
    /// mappings next, its objects last). A run that exited with its expected code is followed by
    /// the instance's next run, if it has one left; a wrong exit or a stop ends the instance.
    fn end(&mut self, client: ClientId, ending: Ending) {
        let ended_at = sel4::timestamp();
        let Some(record) = self.records.get_mut(usize::from(client.0)).and_then(Option::take) else {
            return;
        };
        let name = Name { app: record.name, instance: record.instance };
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
        if let Some(state) = self.pager.client(client) {
            report::client_stats(name, state, record.faults, self.platform.paging_structures(client));
        }
        report::timeline(name, record.setup_at, ended_at);
        self.tear_down(client, record.tcb, name);
        if again {
            let next = Launch { runs_left: record.launch.runs_left - 1, ..record.launch };
            if let Err(reason) = pager_mode::start_instance(self, next) {
                self.fail(alloc::format!("starting the next run of {name}: {reason}"));
            }
        }
    }

    /// Removes a client that has no record any more (or whose start failed).
    pub fn tear_down(&mut self, client: ClientId, tcb: sel4::Tcb, name: Name<'_>) {
        self.live -= 1;
        if let Err(error) = client::suspend(tcb) {
            self.fail(alloc::format!("tearing down {name}: {error}"));
        }
        self.platform.set_tearing_down(true);
        let removed = self.pager.remove_client(&mut self.platform, client);
        self.platform.set_tearing_down(false);
        if let Err(error) = removed {
            self.fail(alloc::format!("tearing down {name}: {error}"));
        }
        if let Err(error) = self.platform.close_space(client) {
            self.fail(alloc::format!("tearing down {name}: revoking its objects: {error:?}"));
        }
    }
}

/// The x86 name of an exception vector a user thread can raise.
fn exception_name(vector: u64) -> &'static str {
    match vector {
        0 => "divide error",
        1 => "debug",
        3 => "breakpoint",
        4 => "overflow",
        5 => "bound range exceeded",
        6 => "invalid opcode",
        7 => "device not available",
        10 => "invalid TSS",
        11 => "segment not present",
        12 => "stack-segment fault",
        13 => "general protection",
        16 => "x87 floating-point error",
        17 => "alignment check",
        19 => "SIMD floating-point error",
        _ => "exception",
    }
}
