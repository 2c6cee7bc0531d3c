//! A client's seL4 objects: its thread, CSpace and VSpace, made from its own untyped chunk, started
//! in the app ABI's entry state (docs/app-abi.md) and destroyed by revoking that chunk.
//!
//! Every kernel call here goes through the platform, which counts it ([`Sel4Platform::invoke`]).

use abi::{EntryState, IPC_BUFFER_ADDRESS, PAGER_ENDPOINT_SLOT};
use pager::{ClientId, KernelError, Pager, Rights};
use sel4::abi::{PAGE_BITS, PML4_BITS, SLOT_BITS, TCB_BITS, WORD_BITS};
use sel4::{
    init, CNode, CPtr, CapRights, Endpoint, Frame, ObjectType, Pml4, Tcb, TcbConfiguration, UserContext,
};

use crate::cspace::ROOT_DEPTH;
use crate::platform::Sel4Platform;

/// Clients run below the root task (255), so the pager runs whenever it has a message.
pub const CLIENT_PRIORITY: u8 = 100;
/// A client's CNode has 2^`CNODE_RADIX` slots.
const CNODE_RADIX: u8 = 4;
/// The rights of the client's endpoint cap: Send (`WRITE`) to call the pager and Grant, without
/// which seL4 5.0 drops a fault sent through it (`src/kernel/faulthandler.c`). No Read: a client
/// cannot receive on it, so it can neither take another client's message nor answer in the
/// pager's place; trying is a capability fault (docs/app-abi.md).
pub const ENDPOINT_RIGHTS: CapRights = CapRights::WRITE.union(CapRights::GRANT);

/// The CSpace root data that makes a CNode of `CNODE_RADIX` bits resolve a CPtr at full word
/// depth: a zero guard of `64 - radix` bits (`seL4_CNode_CapData`: guard << 8 | guard size << 2).
pub const fn cspace_root_data(radix: u8) -> u64 {
    ((WORD_BITS - radix) as u64) << 2
}

/// The endpoint badge of a client: its number plus one, so badge 0 is never a client.
pub const fn badge(client: ClientId) -> u64 {
    client.0 as u64 + 1
}

/// Creates the client's objects in its block: PML4 (with an ASID), IPC buffer frame mapped at
/// [`IPC_BUFFER_ADDRESS`], CNode with the badged endpoint in slot [`PAGER_ENDPOINT_SLOT`], and a
/// configured TCB. The IPC buffer's paging structures are made through `pager`, which keeps the
/// record of every client's structures.
pub fn create(
    pager: &mut Pager<'static>,
    platform: &mut Sel4Platform,
    client: ClientId,
    endpoint: Endpoint,
) -> Result<Tcb, Failure> {
    platform.open_space(client).map_err(|e| Failure::Kernel("untyped chunk", e))?;
    // Largest alignment first, so the chunk packs without gaps: PML4 and IPC frame (4 KiB),
    // CNode (512 bytes) then TCB (2 KiB, aligned up past the CNode), then paging structures.
    let pml4 = platform
        .retype_in_chunk(client, ObjectType::Pml4, PML4_BITS, PML4_BITS)
        .map(Pml4::from_cptr)
        .map_err(|e| Failure::Kernel("retype PML4", e))?;
    platform.invoke(|| init::ASID_POOL.assign(pml4)).map_err(|e| Failure::Sel4("ASIDPool_Assign", e))?;
    platform.set_pml4(client, pml4).map_err(|e| Failure::Kernel("PML4", e))?;
    let ipc_buffer = platform
        .retype_in_chunk(client, ObjectType::Page4K, PAGE_BITS, PAGE_BITS)
        .map(Frame::from_cptr)
        .map_err(|e| Failure::Kernel("retype IPC buffer", e))?;
    pager
        .make_paging_structures(platform, client, IPC_BUFFER_ADDRESS)
        .map_err(|(_, e)| Failure::Kernel("paging structures of the IPC buffer", e))?;
    platform
        .map_own_frame(client, ipc_buffer, IPC_BUFFER_ADDRESS, Rights::READ_WRITE)
        .map_err(|e| Failure::Kernel("map IPC buffer", e))?;
    let cnode = platform
        .retype_in_chunk(client, ObjectType::CNode, CNODE_RADIX, CNODE_RADIX + SLOT_BITS)
        .map(CNode::from_cptr)
        .map_err(|e| Failure::Kernel("retype CNode", e))?;
    platform
        .invoke(|| {
            cnode.mint(
                PAGER_ENDPOINT_SLOT,
                CNODE_RADIX,
                init::CNODE,
                endpoint.bits(),
                ROOT_DEPTH,
                ENDPOINT_RIGHTS,
                badge(client),
            )
        })
        .map_err(|e| Failure::Sel4("mint the client's endpoint", e))?;
    let tcb = platform
        .retype_in_chunk(client, ObjectType::Tcb, TCB_BITS, TCB_BITS)
        .map(Tcb::from_cptr)
        .map_err(|e| Failure::Kernel("retype TCB", e))?;
    let configuration = TcbConfiguration {
        fault_endpoint: CPtr::new(PAGER_ENDPOINT_SLOT),
        priority: CLIENT_PRIORITY,
        max_controlled_priority: 0,
        cspace_root: cnode,
        cspace_root_data: cspace_root_data(CNODE_RADIX),
        vspace_root: pml4,
        vspace_root_data: 0,
        ipc_buffer_address: IPC_BUFFER_ADDRESS,
        ipc_buffer_frame: ipc_buffer.cptr(),
    };
    platform.invoke(|| tcb.configure(&configuration)).map_err(|e| Failure::Sel4("TCB_Configure", e))?;
    Ok(tcb)
}

/// Sets the entry registers of the app ABI and resumes the thread.
pub fn start(platform: &mut Sel4Platform, tcb: Tcb, state: &EntryState) -> Result<(), Failure> {
    let registers = state.to_registers();
    let context = UserContext {
        rip: registers.rip,
        rsp: registers.rsp,
        rdi: registers.rdi,
        rsi: registers.rsi,
        rdx: registers.rdx,
        rcx: registers.rcx,
        ..UserContext::default()
    };
    platform
        .invoke(|| tcb.write_registers(true, sel4::abi::USER_CONTEXT_WORDS, &context))
        .map_err(|e| Failure::Sel4("TCB_WriteRegisters", e))
}

/// Stops the thread (before its objects go).
pub fn suspend(platform: &mut Sel4Platform, tcb: Tcb) -> Result<(), Failure> {
    platform.invoke(|| tcb.suspend()).map_err(|e| Failure::Sel4("TCB_Suspend", e))
}

/// A kernel step that failed while creating or destroying a client.
#[derive(Clone, Copy, Debug)]
pub enum Failure {
    Kernel(&'static str, KernelError),
    Sel4(&'static str, sel4::Error),
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Kernel(step, error) => write!(f, "{step}: {error:?}"),
            Self::Sel4(step, error) => write!(f, "{step}: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_makes_a_16_slot_cnode_resolve_at_64_bits() {
        // guard size 60 in bits 2..8, guard 0 in bits 8..26.
        assert_eq!(cspace_root_data(4), 60 << 2);
        assert_eq!(cspace_root_data(4) >> 2 & 0x3f, 60);
    }

    #[test]
    fn badges_name_clients() {
        assert_eq!(badge(ClientId(0)), 1);
        assert_eq!(badge(ClientId(255)), 256);
    }
}
