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
//! instructions under `-icount shift=0`), and its kernel entries, the reply included. Kernel entries
//! are counted in one place, the platform (the replies too: [`Sel4Platform::receive`]); a fault's
//! are the difference of that count across its handling, and its reply's one
//! ([`Sel4Platform::RECEIVE_ENTRIES`]): its cost is kept before the reply is sent.
//!
//! Clients start, end and are torn down in [`crate::lifecycle`]; the loop hands it the pager and
//! the platform.

use abi::{advise_status, label, share_status, PRINT_LIMIT, UNKNOWN_CALL};
use pager::{Advice, AdviseError, ClientId, FaultClass, FrameRef, Pager, ShareError};
use sel4::{Endpoint, Fault, MessageInfo, Received, VmFault};

use crate::costs::{FaultCosts, Served};
use crate::floor::Floor;
use crate::lifecycle::{Clients, Ending};
use crate::platform::Sel4Platform;
use crate::recorder;
use crate::report::{self, Name};
use crate::timer::Limit;

/// A line longer than this is printed in pieces.
const LINE_LIMIT: usize = 1024;

/// What to send back before waiting for the next message. Small and `Copy`: the fault path
/// builds one per fault, and the loop reads it after the second time stamp.
#[derive(Clone, Copy)]
enum Reply {
    /// An empty reply that restarts a thread whose fault was served: the fault's class and the
    /// pager's kernel calls for it, for its cost record once the reply is made.
    Fault(Served),
    /// An empty reply that restarts a faulted thread with no cost record to keep: a fault served
    /// on the common path (kept already, [`Dispatched::Served`]), or the recording window's own
    /// refaults and upgrades, which are not the pager's.
    Resume,
    /// A call's status word.
    Status(u64),
    /// A status word and three message registers after it (the argument call's bytes).
    Data(u64, [u64; 3]),
    /// A user exception stepped over ([`crate::floor`]): the thread's new instruction pointer,
    /// stack pointer and flags, the reply's three registers.
    Registers([u64; 3]),
}

impl Reply {
    fn message(self) -> (MessageInfo, [u64; 4]) {
        match self {
            Reply::Fault(_) | Reply::Resume => (MessageInfo::new(0, 0, 0, 0), [0; 4]),
            Reply::Registers([ip, stack_pointer, flags]) => {
                (MessageInfo::new(0, 0, 0, 3), [ip, stack_pointer, flags, 0])
            }
            Reply::Data(status, [a, b, c]) => (MessageInfo::new(0, 0, 0, 4), [status, a, b, c]),
            Reply::Status(status) => (MessageInfo::new(0, 0, 0, 1), [status, 0, 0, 0]),
        }
    }
}

/// What [`Session::dispatch`] did with a message.
enum Dispatched {
    /// A VM fault served on the common path, which took the reply's stamp and kept the fault's
    /// cost itself: its figures go on from registers (through a `Reply` they went to memory and
    /// back: −7 per fault). Its reply is [`Reply::Resume`].
    Served,
    /// Anything else: the reply to send, if any, stamped by the loop.
    Reply(Option<Reply>),
}

/// The fault loop's time stamps: a message's arrival, and the moment before its reply. (One
/// function for every such site, which is how `cargo xtask profile` tells them apart.)
#[inline(always)]
fn loop_stamp() -> u64 {
    sel4::timestamp()
}

/// The running pager: the pager and its platform, the clients, and the fault loop's counts.
pub struct Session {
    pager: Pager<'static>,
    platform: Sel4Platform,
    endpoint: Endpoint,
    clients: Clients,
    /// Served faults' costs by class, and the kernel entries of faults that got no reply.
    costs: FaultCosts,
    /// The clock behind the clients' time limits ([`crate::timer`]).
    timer: Option<crate::timer::Timer>,
    /// The kernel's floor, measured when the image has a floor client ([`crate::floor`]).
    floor: Option<Floor>,
    /// A VM fault leaves the common path (for [`Session::vm_fault_observed`]) when its client's
    /// fault count is below this: 1, so a client's first fault (which may be the fetch of its first
    /// instruction, timed), or, while recording, `u64::MAX`, so every fault. One comparison for
    /// both tests.
    observed_below: u64,
}

/// [`Session::observed_below`] with or without a recording.
fn observed_below(recording: bool) -> u64 {
    if recording {
        u64::MAX
    } else {
        1
    }
}

impl Session {
    /// A pager serving the clients of `clients` on `endpoint`, none started yet.
    pub fn new(
        pager: Pager<'static>,
        platform: Sel4Platform,
        endpoint: Endpoint,
        clients: Clients,
        timer: Option<crate::timer::Timer>,
    ) -> Self {
        let mut platform = platform;
        let mut costs = FaultCosts::new();
        costs.timing_overhead = platform.timing_overhead();
        costs.page_copy_ticks = Sel4Platform::page_copy_ticks();
        let observed_below = observed_below(clients.recorder.is_some());
        Self { pager, platform, endpoint, clients, costs, timer, floor: None, observed_below }
    }

    /// Measures the kernel's floor with `floor` (an image with a `bench_floor` app).
    pub fn measure_floor(&mut self, floor: Floor) {
        self.floor = Some(floor);
    }

    pub fn floor(&self) -> Option<&Floor> {
        self.floor.as_ref()
    }

    /// Starts the first run of every instance (see [`Clients::launch_all`]).
    pub fn launch_all(&mut self, first_page: u32) -> Result<(), alloc::string::String> {
        self.clients.launch_all(&mut self.pager, &mut self.platform, first_page)
    }

    pub fn pager(&self) -> &Pager<'static> {
        &self.pager
    }

    pub fn platform(&self) -> &Sel4Platform {
        &self.platform
    }

    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    /// VM faults received (counted by the clients' records).
    pub fn vm_faults(&self) -> u64 {
        self.clients.vm_faults()
    }

    /// Turns recording on (`cargo xtask trace`): every launch, fault, share and end is streamed.
    pub fn record(&mut self, window: u16) {
        self.clients.recorder = Some(recorder::Recorder::new(window));
        self.observed_below = observed_below(true);
    }

    /// Ends the trace with its end line, when recording.
    pub fn finish_trace(&mut self) {
        if let Some(recorder) = &mut self.clients.recorder {
            recorder.finish();
        }
    }

    pub fn costs(&self) -> &FaultCosts {
        &self.costs
    }

    /// Serves messages until no client is left.
    pub fn run(&mut self) {
        let mut reply: Option<Reply> = None;
        while self.clients.live() > 0 {
            let message = self.platform.receive(self.endpoint, reply.take().map(Reply::message));
            // Nothing between the receive and the stamp: the last fault's cost record, a call, was
            // kept here and had more of the message's words kept on the stack and read back inside
            // the measured part (−4 per fault). It is kept before the reply now.
            let received_at = loop_stamp();
            reply = match self.dispatch(message, received_at) {
                Dispatched::Served => Some(Reply::Resume),
                Dispatched::Reply(reply) => {
                    // Stamped before the reply is looked at, so that nothing of keeping its cost
                    // is in it.
                    let ticks = loop_stamp().wrapping_sub(received_at);
                    if let Some(Reply::Fault(served)) = reply {
                        self.keep_cost(served, ticks);
                    } else if let (Some(Reply::Registers(_)), Some(floor)) = (reply, &mut self.floor) {
                        floor.handled(ticks);
                    }
                    // Outside every measured interval: after the ticks above.
                    if let (Some(recorder), Some(Reply::Fault(_))) = (&mut self.clients.recorder, reply) {
                        recorder.set_last_ticks(ticks);
                    }
                    reply
                }
            };
            if let Some(recorder) = &mut self.clients.recorder {
                recorder.drain();
            }
        }
    }

    /// Keeps the cost of a fault served in `ticks`, before its reply: its kernel entries are the
    /// pager's calls for it and the reply's, the loop's next `ReplyRecv`.
    #[inline(always)]
    fn keep_cost(&mut self, mut served: Served, ticks: u64) {
        served.kernel_entries += Sel4Platform::RECEIVE_ENTRIES;
        // A zero fill's frame held by the pagemap too: a shared area's first touch. Read outside
        // the measured part: one lookup.
        let into_pagemap = served.class == FaultClass::NewFrame(pager::FrameContent::Zero)
            && matches!(served.frame, FrameRef::Pool(frame) if self.pager.frame_references(frame) > 1);
        self.costs.record(served, ticks, into_pagemap);
    }

    /// Serves one message, which arrived at time stamp `received_at`. By value, and the messages
    /// that are no VM fault out of line ([`Session::call`]): the common path then reads fewer of
    /// the message's words back from the stack (−4 per fault).
    fn dispatch(&mut self, message: Received, received_at: u64) -> Dispatched {
        // The record is looked up once here; a VM fault's count is kept with it.
        let Some((client, record)) = self.clients.record_of_badge(message.badge) else {
            // A timer tick (the bound notification's badge, which names no client): nothing to
            // answer.
            if message.badge & crate::timer::BADGE != 0 {
                self.tick();
                return Dispatched::Reply(None);
            }
            sel4::debug_println!(
                "[pager] ignored a message with badge {:#x} and label {:#x}: no such client",
                message.badge,
                message.info.label()
            );
            return Dispatched::Reply(None);
        };
        // The common message first, read from the registers it came in: a VM fault needs no
        // `Fault` built (the enum is as large as its largest case) and no out-of-line decoding.
        if let Some(vm) = sel4::VmFault::from_registers(message.info, message.registers) {
            // One test for what is off the common path: a client's first fault (which may be the
            // fetch of its first instruction, timed), and a recording, which sees every fault. (A
            // fault count does not reach `u64::MAX`.)
            let first = record.faults == 0;
            let observed = record.faults < self.observed_below;
            record.faults += 1;
            if observed {
                return Dispatched::Reply(self.vm_fault_first_or_recorded(client, &message, first));
            }
            // The common path, inline, with the record looked up above kept for the spurious test.
            let fault = pager_fault(&vm);
            let (before, ticks_before) = (self.platform.kernel_entries(), self.platform.kernel_ticks());
            let result = self.pager.handle_fault(&mut self.platform, client, fault);
            let kernel_entries = self.platform.kernel_entries() - before;
            let kernel_ticks = self.platform.kernel_ticks() - ticks_before;
            return match result {
                Ok(resolution) if resolution.class != FaultClass::Spurious => {
                    record.last_spurious = None;
                    let served = Served {
                        class: resolution.class,
                        frame: resolution.frame,
                        kernel_entries,
                        kernel_ticks,
                    };
                    // The reply's stamp: the serving is above it, keeping its cost below.
                    let ticks = loop_stamp().wrapping_sub(received_at);
                    self.keep_cost(served, ticks);
                    Dispatched::Served
                }
                // The message, not `vm`: had `settle` taken the fault, it would be kept on every
                // fault's path (stored before the call, beside `handle_fault`'s copy).
                result => {
                    Dispatched::Reply(self.settle(client, &message, result, kernel_entries, kernel_ticks))
                }
            };
        }
        Dispatched::Reply(self.call(client, &message))
    }

    /// Serves a message that is no VM fault: an app's call, or a fault of another kind.
    #[inline(never)]
    fn call(&mut self, client: ClientId, message: &Received) -> Option<Reply> {
        match message.info.label() {
            label::EXIT => {
                let code = message.registers[0] as i64;
                self.end(client, Ending::Exited(code));
                None
            }
            label::PRINT => Some(self.print(client, message)),
            label::SHARE => Some(self.share(client, message)),
            // Faults first: the advise and argument calls are told apart only when a message is no
            // fault.
            // The decoded fault is borrowed where it lies, not moved out of the result (a copy).
            _ => match &Fault::decode(message.info, |i| message.message_register(i)) {
                Ok(fault) => self.fault(client, fault),
                Err(_) if message.info.label() == label::ADVISE => self.advise(client, message),
                Err(_) if message.info.label() == label::ARGUMENT => Some(self.argument(client, message)),
                Err(_) => Some(Reply::Status(UNKNOWN_CALL)),
            },
        }
    }

    fn name(&self, client: ClientId) -> Name<'static> {
        match self.clients.record(client) {
            Some(record) => record.name(),
            None => Name { app: "?", instance: 0 },
        }
    }

    fn end(&mut self, client: ClientId, ending: Ending) {
        self.clients.end(&mut self.pager, &mut self.platform, client, ending);
    }

    /// [`Session::vm_fault_observed`] for the VM fault of `message` (the message, not its decoded
    /// fault, which would then be kept on every fault's path), `first` its client's first fault.
    #[cold]
    #[inline(never)]
    fn vm_fault_first_or_recorded(
        &mut self,
        client: ClientId,
        message: &Received,
        first: bool,
    ) -> Option<Reply> {
        self.vm_fault_observed(client, VmFault::of_registers(message.registers), first)
    }

    /// Serves a VM fault off the common path: the fault on a client's first instruction (timed for
    /// the timeline's `first_fetch_ticks`) or any fault while recording. Its record counted the
    /// fault already; `first`: it was the client's first.
    #[cold]
    #[inline(never)]
    fn vm_fault_observed(&mut self, client: ClientId, vm: VmFault, first: bool) -> Option<Reply> {
        // The fetch of the client's first instruction: it runs once this fault is served.
        let first_instruction = first && vm.ip == vm.address;
        let started = if first_instruction { sel4::timestamp() } else { 0 };
        let reply = self.vm_fault(client, vm);
        if first_instruction {
            self.first_fetch_served(client, started);
        }
        reply
    }

    /// Serves a VM fault as the common path in [`Session::dispatch`] does, and lets a recording see
    /// it.
    fn vm_fault(&mut self, client: ClientId, vm: VmFault) -> Option<Reply> {
        let fault = pager_fault(&vm);
        // Only a recording with a window calls out for it; the common path pays one test.
        if self.clients.recorder.as_ref().is_some_and(|r| r.window.is_some()) {
            if let Some(reply) = self.window_fault(client, &fault) {
                return Some(reply);
            }
        }
        let (before, ticks_before) = (self.platform.kernel_entries(), self.platform.kernel_ticks());
        let result = self.pager.handle_fault(&mut self.platform, client, fault);
        let kernel_entries = self.platform.kernel_entries() - before;
        let kernel_ticks = self.platform.kernel_ticks() - ticks_before;
        if self.clients.recorder.is_some() {
            self.record_fault(client, fault, result.as_ref().ok(), kernel_entries);
        }
        self.settle_fault(client, fault, result, kernel_entries, kernel_ticks)
    }

    /// [`Session::settle_fault`] for the VM fault of `message` (the common path's spurious faults
    /// and refusals).
    #[inline(never)]
    fn settle(
        &mut self,
        client: ClientId,
        message: &Received,
        result: Result<pager::FaultResolution, pager::FaultRefusal>,
        kernel_entries: u64,
        kernel_ticks: u64,
    ) -> Option<Reply> {
        let fault = pager_fault(&VmFault::of_registers(message.registers));
        self.settle_fault(client, fault, result, kernel_entries, kernel_ticks)
    }

    /// The reply to a VM fault the pager handled: a spurious one is served unless it repeats the
    /// client's last (then the client is stopped, as one the pager refused). A client's name is
    /// looked up only to report it stopped.
    fn settle_fault(
        &mut self,
        client: ClientId,
        fault: pager::Fault,
        result: Result<pager::FaultResolution, pager::FaultRefusal>,
        kernel_entries: u64,
        kernel_ticks: u64,
    ) -> Option<Reply> {
        match result {
            Ok(resolution) => {
                let spurious = resolution.class == FaultClass::Spurious;
                let Some(record) = self.clients.record_mut(client) else {
                    self.costs.unanswered(kernel_entries);
                    return None;
                };
                let this = (fault.address, fault.ip);
                if spurious && record.last_spurious == Some(this) {
                    self.costs.unanswered(kernel_entries);
                    let name = self.name(client);
                    sel4::debug_println!(
                        "[pager] stopped {name}: {} at {:#x} (ip {:#x}): repeated fault on a page \
                                 already mapped for this access",
                        fault.access,
                        fault.address,
                        fault.ip
                    );
                    self.end(client, Ending::Stopped);
                    return None;
                }
                record.last_spurious = spurious.then_some(this);
                Some(Reply::Fault(Served {
                    class: resolution.class,
                    frame: resolution.frame,
                    kernel_entries,
                    kernel_ticks,
                }))
            }
            Err(refusal) => {
                self.costs.unanswered(kernel_entries);
                let name = self.name(client);
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

    /// Keeps what serving the fault on a client's first instruction took, from `started` (the
    /// timeline's `first_fetch_ticks`); once per client, off the common path.
    #[cold]
    fn first_fetch_served(&mut self, client: ClientId, started: u64) {
        let ticks = sel4::timestamp().wrapping_sub(started);
        if let Some(record) = self.clients.record_mut(client) {
            record.first_fetch_ticks = ticks;
        }
    }

    /// By reference: a `Fault` is as large as its largest case (an unknown syscall's nineteen
    /// words), and moved it was copied for each of the floor's stepped-over exceptions.
    fn fault(&mut self, client: ClientId, fault: &Fault) -> Option<Reply> {
        match *fault {
            Fault::Vm(vm) => {
                let mut first = false;
                if let Some(record) = self.clients.record_mut(client) {
                    first = record.faults == 0;
                    record.faults += 1;
                }
                self.vm_fault_observed(client, vm, first)
            }
            Fault::UserException(exception) => {
                let name = self.name(client);
                let bench_floor = self.clients.record(client).is_some_and(|r| r.launch.app.bench_floor != 0);
                if let (Some(registers), Some(floor)) =
                    (crate::floor::step_over(bench_floor, &exception), &mut self.floor)
                {
                    if floor.wants_probe() {
                        let clear = self.pager.client(client).is_some_and(|c| {
                            !c.areas()
                                .iter()
                                .any(|a| (a.base()..a.end()).contains(&crate::floor::PROBE_ADDRESS))
                        });
                        floor.probe_once(&mut self.platform, client, name, clear);
                    }
                    return Some(Reply::Registers(registers));
                }
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
                let name = self.name(client);
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
                let name = self.name(client);
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

    /// Recording with a window: serves a fault on a page the window unmapped or made read-only,
    /// and records it. `None` for every other fault (and always without a window).
    #[inline(never)]
    fn window_fault(&mut self, client: ClientId, fault: &pager::Fault) -> Option<Reply> {
        let window = self.clients.recorder.as_mut()?.window.as_mut()?;
        let (before, started_at) = (self.platform.kernel_entries(), sel4::timestamp());
        let recorder::Windowed::Served(class) = window.serve(&self.pager, &mut self.platform, client, fault)
        else {
            return None;
        };
        let ticks = sel4::timestamp().wrapping_sub(started_at);
        let kernel_entries = self.platform.kernel_entries() - before;
        let app = self.clients.record(client).map_or(u16::MAX, |r| r.launch.app_index);
        let event = recorder::FaultEvent { client, app, fault: *fault, kernel_entries, ticks };
        let record = recorder::window_record(&self.pager, &event, class);
        if let Some(recorder) = &mut self.clients.recorder {
            recorder.push(record);
        }
        Some(Reply::Resume)
    }

    /// In recording mode, queues the fault's trace record (its ticks come with the reply) and lets
    /// the window see the page the pager mapped.
    fn record_fault(
        &mut self,
        client: ClientId,
        fault: pager::Fault,
        served: Option<&pager::FaultResolution>,
        kernel_entries: u64,
    ) {
        let app = self.clients.record(client).map_or(u16::MAX, |r| r.launch.app_index);
        let event = recorder::FaultEvent { client, app, fault, kernel_entries, ticks: 0 };
        let record = recorder::fault_record(&self.pager, &event, served);
        let Some(recorder) = &mut self.clients.recorder else { return };
        recorder.push(record);
        if let (Some(window), Some(_)) = (&mut recorder.window, served) {
            window.served(&self.pager, &mut self.platform, client, &fault);
        }
    }

    fn print(&mut self, client: ClientId, message: &Received) -> Reply {
        let count = message.registers[0];
        let words = count.div_ceil(8);
        if count > PRINT_LIMIT as u64 || message.info.length() < 1 + words {
            return Reply::Status(UNKNOWN_CALL);
        }
        let name = self.name(client);
        let Some(record) = self.clients.record_mut(client) else {
            return Reply::Status(UNKNOWN_CALL);
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
        Reply::Status(count)
    }

    /// The argument call: the app's argument's length, and 24 of its bytes from the offset in MR0.
    fn argument(&mut self, client: ClientId, message: &Received) -> Reply {
        let Some(record) = self.clients.record(client) else {
            return Reply::Status(UNKNOWN_CALL);
        };
        let argument = record.launch.app.argument();
        let offset = usize::try_from(message.registers[0]).unwrap_or(usize::MAX).min(argument.len());
        let mut words = [0u64; 3];
        for (word, piece) in words.iter_mut().zip(argument[offset..].chunks(8)) {
            let mut bytes = [0u8; 8];
            bytes[..piece.len()].copy_from_slice(piece);
            *word = u64::from_le_bytes(bytes);
        }
        Reply::Data(argument.len() as u64, words)
    }

    fn share(&mut self, client: ClientId, message: &Received) -> Reply {
        let [address, at, instance, name_length] = message.registers;
        let words = name_length.div_ceil(8);
        if name_length > bootimage::NAME_LENGTH as u64 || message.info.length() < 4 + words {
            return Reply::Status(share_status::NO_DESTINATION);
        }
        let mut name = [0u8; bootimage::NAME_LENGTH];
        for word in 0..words as usize {
            let bytes = message.message_register(4 + word).to_le_bytes();
            let take = (name_length as usize - word * 8).min(8);
            name[word * 8..word * 8 + take].copy_from_slice(&bytes[..take]);
        }
        let Ok(name) = core::str::from_utf8(&name[..name_length as usize]) else {
            return Reply::Status(share_status::NO_DESTINATION);
        };
        let Some(destination) = self.clients.find(name, instance) else {
            return Reply::Status(share_status::NO_DESTINATION);
        };
        // Consent comes from the manifest (`share_to`), never from the destination at run time.
        if !self.clients.may_share(client, name) {
            return Reply::Status(share_status::NOT_PERMITTED);
        }
        // A share over the destination's IPC buffer page (a reserved area) does not fit.
        let status = match self.pager.share(client, address, destination, at) {
            Ok(()) => {
                if let Some(recorder) = &mut self.clients.recorder {
                    recorder.push(trace::Record::share(client.0, address, destination.0, at));
                }
                0
            }
            Err(ShareError::UnknownClient(_)) => share_status::NO_DESTINATION,
            // An area with pages read-only until written (zero-page, cow), or with pages an
            // evicting client's eviction keeps, cannot be shared either.
            Err(
                ShareError::NoArea { .. }
                | ShareError::NotShareable { .. }
                | ShareError::ReadOnlyFirst { .. }
                | ShareError::Evicting { .. },
            ) => share_status::NO_AREA,
            Err(ShareError::Area(_)) => share_status::DOES_NOT_FIT,
            Err(ShareError::TooManySharedObjects) => share_status::TOO_MANY_SHARED,
        };
        Reply::Status(status)
    }

    /// The advise call: MR0 start, MR1 length, MR2 advice. Its answer has two words, the status
    /// and the pages resolved or dropped, so it is sent here (`Reply`) and the loop only waits
    /// next: the fault path's one-word replies stay as they are. A range outside the client's
    /// areas is an error code, never a stop.
    fn advise(&mut self, client: ClientId, message: &Received) -> Option<Reply> {
        let [start, length, code, _] = message.registers;
        let advice = Advice::from_code(code).filter(|_| message.info.length() >= 3);
        if let (Some(recorder), Some(_)) = (&mut self.clients.recorder, advice) {
            recorder.push(trace::Record::advise(client.0, start, length, code as u8));
        }
        let (status, pages) = match advice {
            None => (advise_status::INVALID, 0),
            Some(advice) => match self.pager.advise(&mut self.platform, client, start, length, advice) {
                Ok(pages) => (advise_status::OK, pages),
                Err(error @ AdviseError::Unresolved { pages, .. }) => (error.status(), pages),
                Err(error) => (error.status(), 0),
            },
        };
        self.platform.reply(MessageInfo::new(0, 0, 0, 2), [status, u64::from(pages), 0, 0]);
        None
    }

    /// A tick: stops every client past its app's time limit, then lets the next tick in.
    fn tick(&mut self) {
        let Some(timer) = &self.timer else { return };
        let now = sel4::timestamp();
        let over: alloc::vec::Vec<(pager::ClientId, u32, sel4::Tcb)> = self
            .clients()
            .live_records()
            .filter_map(|(client, record)| {
                let limit = record.launch.app.time_limit_ms.get();
                let over = now.wrapping_sub(record.setup_at) > timer.ticks(limit);
                over.then_some((client, limit, record.tcb))
            })
            .collect();
        if let Err(error) = timer.acknowledge() {
            self.clients.fail(alloc::format!("timer: IRQHandler_Ack: {error}"));
        }
        for (client, limit, tcb) in over {
            // Suspended and read at once: where it was running when its time ran out.
            let ip = tcb.read_registers(true).map_or(0, |context| context.rip);
            self.stop(
                client,
                format_args!("running at {ip:#x} (ip {ip:#x}): time limit of {} exceeded", Limit(limit)),
            );
        }
    }

    /// Stops a client for something other than a message of its own (its time limit): `report`
    /// is the rest of the line after its name.
    pub fn stop(&mut self, client: ClientId, report: core::fmt::Arguments<'_>) {
        sel4::debug_println!("[pager] stopped {}: {report}", self.name(client));
        self.end(client, Ending::Stopped);
    }
}

/// The pager's fault for the kernel's VM fault message.
fn pager_fault(vm: &VmFault) -> pager::Fault {
    pager::Fault { address: vm.address, ip: vm.ip, access: crate::platform::pager_access(vm.access()) }
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
