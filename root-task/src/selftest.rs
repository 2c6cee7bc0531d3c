//! On-target self-tests of the `sel4` binding: the IPC buffer through `gs`, retype / map /
//! unmap / delete of a frame (creating PDPT, page directory and page table on the way), and a
//! full fault round trip with a second thread whose page faults this task serves.

use core::fmt;

use sel4::fault::Access;
use sel4::{
    init, BootInfo, CPtr, CapRights, Endpoint, Fault, Frame, MessageInfo, Pml4, Received, Stack, Tcb,
    TcbConfiguration, UntypedInfo, UserContext, VmAttributes,
};

use crate::cspace::{self, SlotAllocator};
use crate::object_allocator::{AllocationError, FramePool, ObjectAllocator};
use crate::vspace::{MapError, Mapper};

/// Where the frame test maps: PML4 slot 1, so the PDPT, page directory and page table are all
/// missing and the mapper creates each.
const FRAME_TEST_ADDRESS: u64 = 0x80_0000_0000;
/// The root task's window onto the page the child will read (same page table as above).
const WINDOW_ADDRESS: u64 = FRAME_TEST_ADDRESS + 0x1000;
/// The child's first touch: a read, below 4 GiB so the fault address arrives whole.
const CHILD_READ_ADDRESS: u64 = 0x4000_0000;
/// The child's second touch: a write.
const CHILD_WRITE_ADDRESS: u64 = 0x4000_1000;
/// What the root task puts in the page the child reads.
const READ_VALUE: u64 = 0x5e14_f00d_cafe_0001;
/// The child writes `READ_VALUE ^ WRITE_PATTERN`.
const WRITE_PATTERN: u64 = 0x0f0f_0000_0000_f0f0;
/// Badge of the child's fault endpoint cap.
const CHILD_BADGE: u64 = 0xc1;
/// Label of the child's "done" message.
const DONE_LABEL: u64 = 0x77;
/// The child runs below the root task (255) so it only runs while the root task waits.
const CHILD_PRIORITY: u8 = 100;
/// x86 error code of a user-mode read of a page that is not present.
const USER_READ_NOT_PRESENT: u64 = 0x4;
/// x86 error code of a user-mode write of a page that is not present.
const USER_WRITE_NOT_PRESENT: u64 = 0x6;

static CHILD_STACK: Stack<{ 16 * 1024 }> = Stack::new();

/// What went wrong, and at which step.
#[derive(Debug)]
pub enum Failure {
    /// A kernel call failed.
    Kernel {
        /// The step.
        step: &'static str,
        /// The kernel's error.
        error: sel4::Error,
    },
    /// An allocation failed.
    Allocation {
        /// The step.
        step: &'static str,
        /// Why.
        error: AllocationError,
    },
    /// A mapping failed.
    Map {
        /// The step.
        step: &'static str,
        /// Why.
        error: MapError,
    },
    /// A value was not what the test expected.
    Check {
        /// What was checked.
        what: &'static str,
        /// The expected value.
        expected: u64,
        /// The value found.
        found: u64,
    },
    /// A message that is not the one the test waited for.
    UnexpectedMessage {
        /// The step.
        step: &'static str,
        /// Its message info.
        info: MessageInfo,
        /// Its badge.
        badge: u64,
    },
    /// A fault of the wrong kind.
    UnexpectedFault {
        /// The step.
        step: &'static str,
        /// The fault's label.
        label: u64,
        /// Where it happened.
        ip: u64,
        /// The address (VM and cap faults), else 0.
        address: u64,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Kernel { step, error } => write!(f, "{step}: {error}"),
            Failure::Allocation { step, error } => write!(f, "{step}: allocation failed: {error:?}"),
            Failure::Map { step, error } => write!(f, "{step}: map failed: {error:?}"),
            Failure::Check { what, expected, found } => {
                write!(f, "{what}: expected {expected:#x}, found {found:#x}")
            }
            Failure::UnexpectedMessage { step, info, badge } => {
                write!(f, "{step}: unexpected message {info:?} with badge {badge:#x}")
            }
            Failure::UnexpectedFault { step, label, ip, address } => {
                write!(f, "{step}: unexpected fault with label {label} at ip {ip:#x}, address {address:#x}")
            }
        }
    }
}

fn kernel<T>(step: &'static str, result: sel4::Result<T>) -> Result<T, Failure> {
    result.map_err(|error| Failure::Kernel { step, error })
}

fn allocation<T>(step: &'static str, result: Result<T, AllocationError>) -> Result<T, Failure> {
    result.map_err(|error| Failure::Allocation { step, error })
}

fn map<T>(step: &'static str, result: Result<T, MapError>) -> Result<T, Failure> {
    result.map_err(|error| Failure::Map { step, error })
}

fn unexpected_fault(step: &'static str, fault: &Fault) -> Failure {
    let (label, ip, address) = match fault {
        Fault::Vm(fault) => (sel4::abi::fault_label::VM_FAULT, fault.ip, fault.address),
        Fault::Cap(fault) => (sel4::abi::fault_label::CAP_FAULT, fault.ip, fault.address),
        Fault::UnknownSyscall(fault) => (sel4::abi::fault_label::UNKNOWN_SYSCALL, fault.ip(), 0),
        Fault::UserException(fault) => (sel4::abi::fault_label::USER_EXCEPTION, fault.ip, 0),
    };
    Failure::UnexpectedFault { step, label, ip, address }
}

fn check(what: &'static str, expected: u64, found: u64) -> Result<(), Failure> {
    if expected == found {
        Ok(())
    } else {
        Err(Failure::Check { what, expected, found })
    }
}

/// The allocators the tests share, as the pager will.
struct Resources {
    slots: SlotAllocator,
    objects: ObjectAllocator,
    frames: FramePool,
    mapper: Mapper,
}

/// Runs every self-test; the first failure ends the run.
pub fn run(bootinfo: &BootInfo<'static>) -> Result<(), Failure> {
    let mut resources = Resources {
        slots: SlotAllocator::new(bootinfo.empty()),
        objects: ObjectAllocator::new(bootinfo.untyped_list()),
        frames: FramePool::new(),
        mapper: Mapper::new(init::VSPACE),
    };
    log::info!(
        "self-test: {} non-device untypeds, {} free slots",
        resources.objects.untyped_count(),
        resources.slots.remaining()
    );
    ipc_buffer_through_gs(bootinfo)?;
    frame_round_trip(&mut resources)?;
    fresh_vspace(&mut resources)?;
    revoke_removes_copies(&mut resources)?;
    fault_round_trip(&mut resources)?;
    let statistics = resources.mapper.statistics();
    log::info!(
        "self-test: done; created {} PDPT, {} page directories, {} page tables; {} bytes of objects",
        statistics.pdpts,
        statistics.page_directories,
        statistics.page_tables,
        resources.objects.allocated_bytes()
    );
    Ok(())
}

/// The binding reaches the IPC buffer through `gs`; check that it is the buffer the boot info
/// names.
fn ipc_buffer_through_gs(bootinfo: &BootInfo<'_>) -> Result<(), Failure> {
    const PATTERN: u64 = 0x1bc0_ffee_0000_0042;
    sel4::ipc_buffer::set_user_data(PATTERN);
    let user_data = bootinfo.ipc_buffer_address() as *const u64;
    // SAFETY: the kernel maps the root task's IPC buffer (one page, 8-byte aligned) at the
    // address in the boot info for the task's whole life; the user data word lies inside it,
    // and nothing else writes it while this read runs.
    let seen = unsafe { core::ptr::read_volatile(user_data.add(sel4::abi::ipc_buffer::USER_DATA)) };
    check("IPC buffer user data read through the boot info address", PATTERN, seen)?;
    log::info!("ipc buffer: gs reaches the buffer at {:#x}", bootinfo.ipc_buffer_address());
    Ok(())
}

/// Retype a frame, map it (creating every paging level), write and read it, unmap, delete.
fn frame_round_trip(resources: &mut Resources) -> Result<(), Failure> {
    let (frame, untyped) =
        allocation("retype a 4K frame", resources.objects.allocate::<Frame>(&mut resources.slots))?;
    log_untyped("frame test", frame.cptr(), &untyped);
    check("frame came from device memory", 0, u64::from(untyped.is_device))?;
    let physical = kernel("Page_GetAddress", frame.physical_address())?;
    if physical < untyped.paddr || physical >= untyped.paddr + untyped.size() {
        return Err(Failure::Check {
            what: "frame physical address inside its untyped",
            expected: untyped.paddr,
            found: physical,
        });
    }
    map(
        "map the test frame",
        resources.mapper.map(
            &mut resources.objects,
            &mut resources.slots,
            frame,
            FRAME_TEST_ADDRESS,
            CapRights::READ_WRITE,
        ),
    )?;
    let statistics = resources.mapper.statistics();
    check("PDPTs created for the test address", 1, statistics.pdpts)?;
    check("page directories created for the test address", 1, statistics.page_directories)?;
    check("page tables created for the test address", 1, statistics.page_tables)?;

    let words = sel4::abi::PAGE_SIZE / 8;
    let page = FRAME_TEST_ADDRESS as *mut u64;
    for index in 0..words {
        // SAFETY: the frame is mapped read-write at FRAME_TEST_ADDRESS (the map above
        // succeeded), the address is reserved for this test and nothing else refers to it;
        // `index` stays inside the 4 KiB page.
        unsafe { core::ptr::write_volatile(page.add(index), pattern(index)) };
    }
    for index in 0..words {
        // SAFETY: as for the writes above.
        let found = unsafe { core::ptr::read_volatile(page.add(index)) };
        check("test frame word read back", pattern(index), found)?;
    }
    kernel("Page_Unmap", frame.unmap())?;
    kernel("CNode_Delete of the test frame", cspace::delete(frame.cptr()))?;
    resources.slots.free(frame.cptr());
    log::info!(
        "frame test: retyped, mapped at {FRAME_TEST_ADDRESS:#x} (paddr {physical:#x}), wrote and read {words} words, unmapped, deleted"
    );
    Ok(())
}

fn pattern(index: usize) -> u64 {
    0xa5a5_0000_0000_0000 | index as u64
}

fn log_untyped(what: &str, slot: CPtr, untyped: &UntypedInfo) {
    log::info!(
        "{what}: slot {} from untyped slot {} (paddr {:#x}, 2^{} bytes, device {})",
        slot.bits(),
        untyped.cap.bits(),
        untyped.paddr,
        untyped.size_bits,
        untyped.is_device
    );
}

/// Where the fresh VSpace test maps: every level is missing in a new PML4.
const FRESH_VSPACE_ADDRESS: u64 = 0x1000_0000;

/// A client address space as the pager will build one: a new PML4, refused for mapping until
/// it has an ASID, then filled level by level.
fn fresh_vspace(resources: &mut Resources) -> Result<(), Failure> {
    let (vspace, _) = allocation("retype a PML4", resources.objects.allocate::<Pml4>(&mut resources.slots))?;
    let frame = allocation(
        "frame for the fresh VSpace",
        resources.frames.allocate(&mut resources.objects, &mut resources.slots),
    )?;
    log::info!("fresh vspace: mapping before ASIDPool_Assign; the kernel will complain (expected)");
    match frame.map(vspace, FRESH_VSPACE_ADDRESS, CapRights::READ_WRITE, VmAttributes::default()) {
        Err(sel4::Error::InvalidCapability { .. }) => {}
        Err(error) => return Err(Failure::Kernel { step: "Page_Map into a PML4 without an ASID", error }),
        Ok(()) => {
            return Err(Failure::Check {
                what: "Page_Map into a PML4 without an ASID must fail",
                expected: 1,
                found: 0,
            })
        }
    }
    kernel("ASIDPool_Assign", init::ASID_POOL.assign(vspace))?;
    let mut mapper = Mapper::new(vspace);
    map(
        "map into the fresh VSpace",
        mapper.map(
            &mut resources.objects,
            &mut resources.slots,
            frame,
            FRESH_VSPACE_ADDRESS,
            CapRights::READ_WRITE,
        ),
    )?;
    let statistics = mapper.statistics();
    check(
        "levels created in the fresh VSpace",
        3,
        statistics.pdpts + statistics.page_directories + statistics.page_tables,
    )?;
    kernel("Page_Unmap in the fresh VSpace", frame.unmap())?;
    resources.frames.free(frame);
    log::info!("fresh vspace: PML4 in slot {} assigned an ASID, frame mapped after creating PDPT, page directory, page table", vspace.bits());
    Ok(())
}

/// Revoking a cap deletes its copies: after revoking a frame, the slot of its copy is empty.
fn revoke_removes_copies(resources: &mut Resources) -> Result<(), Failure> {
    let frame = allocation(
        "frame for the revoke test",
        resources.frames.allocate(&mut resources.objects, &mut resources.slots),
    )?;
    let copy = resources.slots.allocate().ok_or(Failure::Allocation {
        step: "slot for the revoke test copy",
        error: AllocationError::OutOfSlots,
    })?;
    kernel("CNode_Copy for the revoke test", cspace::copy(copy, frame.cptr(), CapRights::READ_WRITE))?;
    kernel("CNode_Revoke", cspace::revoke(frame.cptr()))?;
    log::info!("revoke: invoking the revoked copy; the kernel will complain (expected)");
    match Frame::from_cptr(copy).unmap() {
        Err(sel4::Error::InvalidCapability { .. }) => {}
        Err(error) => return Err(Failure::Kernel { step: "Page_Unmap of a revoked copy", error }),
        Ok(()) => {
            return Err(Failure::Check {
                what: "revoked copy still invocable",
                expected: 0,
                found: copy.bits(),
            })
        }
    }
    resources.slots.free(copy);
    resources.frames.free(frame);
    log::info!("revoke: copy in slot {} gone after revoking slot {}", copy.bits(), frame.bits());
    Ok(())
}

/// Start a second thread whose fault endpoint is ours, serve its read and write faults, and
/// check what it saw and wrote.
fn fault_round_trip(resources: &mut Resources) -> Result<(), Failure> {
    let (endpoint, untyped) =
        allocation("retype an endpoint", resources.objects.allocate::<Endpoint>(&mut resources.slots))?;
    log_untyped("endpoint", endpoint.cptr(), &untyped);
    let (tcb, untyped) = allocation("retype a TCB", resources.objects.allocate::<Tcb>(&mut resources.slots))?;
    log_untyped("tcb", tcb.cptr(), &untyped);

    // The fault endpoint is looked up in the child's CSpace (ours) at fault time. It needs
    // Grant as well as Send, or the kernel reports a cap fault instead of sending.
    let fault_endpoint = resources.slots.allocate().ok_or(Failure::Allocation {
        step: "slot for the fault endpoint",
        error: AllocationError::OutOfSlots,
    })?;
    kernel(
        "CNode_Mint of the badged fault endpoint",
        cspace::mint(fault_endpoint, endpoint.cptr(), CapRights::ALL, CHILD_BADGE),
    )?;

    // The page the child will read: fill it through a window (a copy of the frame cap mapped
    // in our own space), as the pager fills client pages.
    let read_frame = allocation(
        "frame for the child's read",
        resources.frames.allocate(&mut resources.objects, &mut resources.slots),
    )?;
    let window = resources
        .slots
        .allocate()
        .ok_or(Failure::Allocation { step: "slot for the window cap", error: AllocationError::OutOfSlots })?;
    kernel(
        "CNode_Copy of the frame for the window",
        cspace::copy(window, read_frame.cptr(), CapRights::READ_WRITE),
    )?;
    map(
        "map the window",
        resources.mapper.map(
            &mut resources.objects,
            &mut resources.slots,
            Frame::from_cptr(window),
            WINDOW_ADDRESS,
            CapRights::READ_WRITE,
        ),
    )?;
    // SAFETY: the window frame is mapped read-write at WINDOW_ADDRESS (map succeeded); the
    // address is reserved for this test and nothing else refers to it.
    unsafe { core::ptr::write_volatile(WINDOW_ADDRESS as *mut u64, READ_VALUE) };

    kernel(
        "TCB_Configure",
        tcb.configure(&TcbConfiguration {
            fault_endpoint,
            priority: CHILD_PRIORITY,
            max_controlled_priority: CHILD_PRIORITY,
            cspace_root: init::CNODE,
            cspace_root_data: 0,
            vspace_root: init::VSPACE,
            vspace_root_data: 0,
            ipc_buffer_address: 0,
            ipc_buffer_frame: CPtr::NULL,
        }),
    )?;
    let entry: extern "C" fn(u64, u64, u64) -> ! = child_main;
    let context = UserContext {
        rip: entry as usize as u64,
        // As if called: the return address slot sits just below the aligned top.
        rsp: CHILD_STACK.top() - 8,
        rdi: fault_endpoint.bits(),
        rsi: CHILD_READ_ADDRESS,
        rdx: CHILD_WRITE_ADDRESS,
        ..UserContext::default()
    };
    kernel("TCB_SetPriority", tcb.set_priority(CHILD_PRIORITY))?;
    kernel("TCB_WriteRegisters", tcb.write_registers(false, sel4::abi::USER_CONTEXT_WORDS, &context))?;
    kernel("TCB_Resume", tcb.resume())?;

    // First fault: the read.
    let message = endpoint.recv();
    let fault = expect_vm_fault("first fault", &message)?;
    check("read fault address", CHILD_READ_ADDRESS, fault.address)?;
    check("read fault error code", USER_READ_NOT_PRESENT, fault.fsr)?;
    if fault.access() != Access::Read {
        return Err(unexpected_fault("read fault access", &Fault::Vm(fault)));
    }
    log::info!(
        "fault 1: {:?} at {:#x} from ip {:#x} (error code {:#x}), badge {:#x}",
        fault.access(),
        fault.address,
        fault.ip,
        fault.fsr,
        message.badge
    );
    map(
        "map the read frame for the child",
        resources.mapper.map(
            &mut resources.objects,
            &mut resources.slots,
            read_frame,
            CHILD_READ_ADDRESS,
            CapRights::READ_WRITE,
        ),
    )?;

    // Second fault: the write.
    let message = endpoint.reply_recv(MessageInfo::new(0, 0, 0, 0), [0; 4]);
    let fault = expect_vm_fault("second fault", &message)?;
    check("write fault address", CHILD_WRITE_ADDRESS, fault.address)?;
    check("write fault error code", USER_WRITE_NOT_PRESENT, fault.fsr)?;
    if fault.access() != Access::Write {
        return Err(unexpected_fault("write fault access", &Fault::Vm(fault)));
    }
    log::info!(
        "fault 2: {:?} at {:#x} from ip {:#x} (error code {:#x})",
        fault.access(),
        fault.address,
        fault.ip,
        fault.fsr
    );
    let write_frame = allocation(
        "frame for the child's write",
        resources.frames.allocate(&mut resources.objects, &mut resources.slots),
    )?;
    map(
        "map the write frame for the child",
        resources.mapper.map(
            &mut resources.objects,
            &mut resources.slots,
            write_frame,
            CHILD_WRITE_ADDRESS,
            CapRights::READ_WRITE,
        ),
    )?;

    // Resume the child; it writes and reports.
    let message = endpoint.reply_recv(MessageInfo::new(0, 0, 0, 0), [0; 4]);
    if message.info.label() != DONE_LABEL || message.badge != CHILD_BADGE {
        return Err(Failure::UnexpectedMessage {
            step: "child's done message",
            info: message.info,
            badge: message.badge,
        });
    }
    let expected_write = READ_VALUE ^ WRITE_PATTERN;
    check("value the child read", READ_VALUE, message.registers[0])?;
    check("value the child wrote", expected_write, message.registers[1])?;
    // SAFETY: the write frame is mapped read-write at CHILD_WRITE_ADDRESS in the VSpace the
    // child shares with us, and the child has finished writing (it sent after its write).
    let seen = unsafe { core::ptr::read_volatile(CHILD_WRITE_ADDRESS as *const u64) };
    check("child's write seen by the root task", expected_write, seen)?;
    kernel("TCB_Suspend", tcb.suspend())?;

    // Tear down what the pager would: unmap, drop the window copy, return frames to the pool.
    for frame in [read_frame, write_frame, Frame::from_cptr(window)] {
        kernel("Page_Unmap after the fault test", frame.unmap())?;
    }
    kernel("CNode_Delete of the window", cspace::delete(window))?;
    resources.slots.free(window);
    resources.frames.free(read_frame);
    resources.frames.free(write_frame);
    let reused = allocation(
        "frame from the pool after freeing",
        resources.frames.allocate(&mut resources.objects, &mut resources.slots),
    )?;
    check("pool hands back the last freed frame", write_frame.bits(), reused.bits())?;
    log::info!(
        "fault test: child read {:#x}, wrote {:#x}; done message badge {:#x}",
        message.registers[0],
        seen,
        message.badge
    );
    Ok(())
}

fn expect_vm_fault(step: &'static str, message: &Received) -> Result<sel4::VmFault, Failure> {
    if message.badge != CHILD_BADGE {
        return Err(Failure::UnexpectedMessage { step, info: message.info, badge: message.badge });
    }
    match Fault::decode(message.info, |index| message.message_register(index)) {
        Ok(Fault::Vm(fault)) => Ok(fault),
        Ok(fault) => Err(unexpected_fault(step, &fault)),
        Err(_) => Err(Failure::UnexpectedMessage { step, info: message.info, badge: message.badge }),
    }
}

/// The second thread: read one page, write another (each faults once and is served by the
/// root task), then report both values and wait to be suspended.
extern "C" fn child_main(endpoint: u64, read_address: u64, write_address: u64) -> ! {
    // SAFETY: `read_address` is reserved for this test in the VSpace shared with the root
    // task, which maps a frame there when this read faults and only then lets it restart;
    // the frame holds a u64 written through the root task's window.
    let value = unsafe { core::ptr::read_volatile(read_address as *const u64) };
    let written = value ^ WRITE_PATTERN;
    // SAFETY: as above, for `write_address`; no one else touches that page until the root
    // task reads it after our done message.
    unsafe { core::ptr::write_volatile(write_address as *mut u64, written) };
    Endpoint::new(endpoint).send(MessageInfo::new(DONE_LABEL, 0, 0, 2), [value, written, 0, 0]);
    loop {
        sel4::syscall::yield_now();
    }
}
