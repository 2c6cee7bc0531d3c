//! Numbers of the seL4 5.0.0 x86_64 ABI for this project's kernel configuration.
//!
//! Every number here is checked against the kernel's own interface files by `tests/abi.rs`
//! (`cargo xtask test` runs it with the kernel source at hand). Config-dependent numbers assume
//! the project's `autoconf.h`: one node, no HUGE_PAGE, no IOMMU, no VT-x, debug build.

/// System call numbers (`include/api/syscall.xml`; numbering counts down from -1 and continues
/// through the debug syscalls whether or not their condition holds).
#[repr(i64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Syscall {
    Call = -1,
    ReplyRecv = -2,
    Send = -3,
    NBSend = -4,
    Recv = -5,
    Reply = -6,
    Yield = -7,
    NBRecv = -8,
    DebugPutChar = -9,
    DebugHalt = -10,
    DebugCapIdentify = -11,
    DebugSnapshot = -12,
    DebugNameThread = -13,
}

impl Syscall {
    /// Every syscall with its name in `syscall.xml`.
    pub const ALL: &'static [(&'static str, Syscall)] = &[
        ("Call", Syscall::Call),
        ("ReplyRecv", Syscall::ReplyRecv),
        ("Send", Syscall::Send),
        ("NBSend", Syscall::NBSend),
        ("Recv", Syscall::Recv),
        ("Reply", Syscall::Reply),
        ("Yield", Syscall::Yield),
        ("NBRecv", Syscall::NBRecv),
        ("DebugPutChar", Syscall::DebugPutChar),
        ("DebugHalt", Syscall::DebugHalt),
        ("DebugCapIdentify", Syscall::DebugCapIdentify),
        ("DebugSnapshot", Syscall::DebugSnapshot),
        ("DebugNameThread", Syscall::DebugNameThread),
    ];

    /// The value that goes in `rdx`.
    pub const fn number(self) -> i64 {
        self as i64
    }
}

/// Invocation labels: one enum over `sel4.xml` (0 is `InvalidInvocation`), then the x86_64
/// file, then the x86 file, counting only methods whose `condition` holds for our config.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum InvocationLabel {
    UntypedRetype = 1,
    TcbReadRegisters = 2,
    TcbWriteRegisters = 3,
    TcbCopyRegisters = 4,
    TcbConfigure = 5,
    TcbSetPriority = 6,
    TcbSetMcPriority = 7,
    TcbSetIpcBuffer = 8,
    TcbSetSpace = 9,
    TcbSuspend = 10,
    TcbResume = 11,
    TcbBindNotification = 12,
    TcbUnbindNotification = 13,
    CNodeRevoke = 14,
    CNodeDelete = 15,
    CNodeCancelBadgedSends = 16,
    CNodeCopy = 17,
    CNodeMint = 18,
    CNodeMove = 19,
    CNodeMutate = 20,
    CNodeRotate = 21,
    CNodeSaveCaller = 22,
    IrqIssueIrqHandler = 23,
    IrqAckIrq = 24,
    IrqSetIrqHandler = 25,
    IrqClearIrqHandler = 26,
    DomainSetSet = 27,
    X86PdptMap = 28,
    X86PdptUnmap = 29,
    X86PageDirectoryMap = 30,
    X86PageDirectoryUnmap = 31,
    X86PageDirectoryGetStatusBits = 32,
    X86PageTableMap = 33,
    X86PageTableUnmap = 34,
    X86IoPageTableMap = 35,
    X86IoPageTableUnmap = 36,
    X86PageMap = 37,
    X86PageRemap = 38,
    X86PageUnmap = 39,
    X86PageMapIo = 40,
    X86PageGetAddress = 41,
    X86AsidControlMakePool = 42,
    X86AsidPoolAssign = 43,
    X86IoPortIn8 = 44,
    X86IoPortIn16 = 45,
    X86IoPortIn32 = 46,
    X86IoPortOut8 = 47,
    X86IoPortOut16 = 48,
    X86IoPortOut32 = 49,
    X86IrqIssueIrqHandlerIoapic = 50,
    X86IrqIssueIrqHandlerMsi = 51,
}

impl InvocationLabel {
    /// Every label with its method `id` in the interface XML.
    pub const ALL: &'static [(&'static str, InvocationLabel)] = &[
        ("UntypedRetype", InvocationLabel::UntypedRetype),
        ("TCBReadRegisters", InvocationLabel::TcbReadRegisters),
        ("TCBWriteRegisters", InvocationLabel::TcbWriteRegisters),
        ("TCBCopyRegisters", InvocationLabel::TcbCopyRegisters),
        ("TCBConfigure", InvocationLabel::TcbConfigure),
        ("TCBSetPriority", InvocationLabel::TcbSetPriority),
        ("TCBSetMCPriority", InvocationLabel::TcbSetMcPriority),
        ("TCBSetIPCBuffer", InvocationLabel::TcbSetIpcBuffer),
        ("TCBSetSpace", InvocationLabel::TcbSetSpace),
        ("TCBSuspend", InvocationLabel::TcbSuspend),
        ("TCBResume", InvocationLabel::TcbResume),
        ("TCBBindNotification", InvocationLabel::TcbBindNotification),
        ("TCBUnbindNotification", InvocationLabel::TcbUnbindNotification),
        ("CNodeRevoke", InvocationLabel::CNodeRevoke),
        ("CNodeDelete", InvocationLabel::CNodeDelete),
        ("CNodeCancelBadgedSends", InvocationLabel::CNodeCancelBadgedSends),
        ("CNodeCopy", InvocationLabel::CNodeCopy),
        ("CNodeMint", InvocationLabel::CNodeMint),
        ("CNodeMove", InvocationLabel::CNodeMove),
        ("CNodeMutate", InvocationLabel::CNodeMutate),
        ("CNodeRotate", InvocationLabel::CNodeRotate),
        ("CNodeSaveCaller", InvocationLabel::CNodeSaveCaller),
        ("IRQIssueIRQHandler", InvocationLabel::IrqIssueIrqHandler),
        ("IRQAckIRQ", InvocationLabel::IrqAckIrq),
        ("IRQSetIRQHandler", InvocationLabel::IrqSetIrqHandler),
        ("IRQClearIRQHandler", InvocationLabel::IrqClearIrqHandler),
        ("DomainSetSet", InvocationLabel::DomainSetSet),
        ("X86PDPTMap", InvocationLabel::X86PdptMap),
        ("X86PDPTUnmap", InvocationLabel::X86PdptUnmap),
        ("X86PageDirectoryMap", InvocationLabel::X86PageDirectoryMap),
        ("X86PageDirectoryUnmap", InvocationLabel::X86PageDirectoryUnmap),
        ("X86PageDirectoryGetStatusBits", InvocationLabel::X86PageDirectoryGetStatusBits),
        ("X86PageTableMap", InvocationLabel::X86PageTableMap),
        ("X86PageTableUnmap", InvocationLabel::X86PageTableUnmap),
        ("X86IOPageTableMap", InvocationLabel::X86IoPageTableMap),
        ("X86IOPageTableUnmap", InvocationLabel::X86IoPageTableUnmap),
        ("X86PageMap", InvocationLabel::X86PageMap),
        ("X86PageRemap", InvocationLabel::X86PageRemap),
        ("X86PageUnmap", InvocationLabel::X86PageUnmap),
        ("X86PageMapIO", InvocationLabel::X86PageMapIo),
        ("X86PageGetAddress", InvocationLabel::X86PageGetAddress),
        ("X86ASIDControlMakePool", InvocationLabel::X86AsidControlMakePool),
        ("X86ASIDPoolAssign", InvocationLabel::X86AsidPoolAssign),
        ("X86IOPortIn8", InvocationLabel::X86IoPortIn8),
        ("X86IOPortIn16", InvocationLabel::X86IoPortIn16),
        ("X86IOPortIn32", InvocationLabel::X86IoPortIn32),
        ("X86IOPortOut8", InvocationLabel::X86IoPortOut8),
        ("X86IOPortOut16", InvocationLabel::X86IoPortOut16),
        ("X86IOPortOut32", InvocationLabel::X86IoPortOut32),
        ("X86IRQIssueIRQHandlerIOAPIC", InvocationLabel::X86IrqIssueIrqHandlerIoapic),
        ("X86IRQIssueIRQHandlerMSI", InvocationLabel::X86IrqIssueIrqHandlerMsi),
    ];

    /// The label word of the message info.
    pub const fn value(self) -> u64 {
        self as u64
    }
}

/// Kernel object types for `Untyped_Retype` (libsel4 `objecttype.h` files, without HUGE_PAGE,
/// IOMMU or VT-x).
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ObjectType {
    Untyped = 0,
    Tcb = 1,
    Endpoint = 2,
    Notification = 3,
    CNode = 4,
    Pdpt = 5,
    Pml4 = 6,
    Page4K = 7,
    LargePage = 8,
    PageTable = 9,
    PageDirectory = 10,
}

impl ObjectType {
    /// Every object type with its libsel4 enumerator name.
    pub const ALL: &'static [(&'static str, ObjectType)] = &[
        ("seL4_UntypedObject", ObjectType::Untyped),
        ("seL4_TCBObject", ObjectType::Tcb),
        ("seL4_EndpointObject", ObjectType::Endpoint),
        ("seL4_NotificationObject", ObjectType::Notification),
        ("seL4_CapTableObject", ObjectType::CNode),
        ("seL4_X86_PDPTObject", ObjectType::Pdpt),
        ("seL4_X64_PML4Object", ObjectType::Pml4),
        ("seL4_X86_4K", ObjectType::Page4K),
        ("seL4_X86_LargePageObject", ObjectType::LargePage),
        ("seL4_X86_PageTableObject", ObjectType::PageTable),
        ("seL4_X86_PageDirectoryObject", ObjectType::PageDirectory),
    ];

    /// The type word of `Untyped_Retype`.
    pub const fn value(self) -> u64 {
        self as u64
    }

    /// Size of one object in bits, or `None` for types whose size the caller chooses
    /// (untyped memory and CNodes).
    pub const fn fixed_size_bits(self) -> Option<u8> {
        match self {
            ObjectType::Untyped | ObjectType::CNode => None,
            ObjectType::Tcb => Some(TCB_BITS),
            ObjectType::Endpoint => Some(ENDPOINT_BITS),
            ObjectType::Notification => Some(NOTIFICATION_BITS),
            ObjectType::Pdpt => Some(PDPT_BITS),
            ObjectType::Pml4 => Some(PML4_BITS),
            ObjectType::Page4K => Some(PAGE_BITS),
            ObjectType::LargePage => Some(LARGE_PAGE_BITS),
            ObjectType::PageTable => Some(PAGE_TABLE_BITS),
            ObjectType::PageDirectory => Some(PAGE_DIRECTORY_BITS),
        }
    }
}

/// Fault message labels (`seL4_FaultType` tags in the x86 `shared_types.bf`; no hardware
/// debug API, so there is no DebugException).
pub mod fault_label {
    /// No fault.
    pub const NULL_FAULT: u64 = 0;
    /// Capability lookup failed during an IPC.
    pub const CAP_FAULT: u64 = 1;
    /// A syscall number the kernel does not know.
    pub const UNKNOWN_SYSCALL: u64 = 2;
    /// A CPU exception other than a page fault.
    pub const USER_EXCEPTION: u64 = 3;
    /// A page fault.
    pub const VM_FAULT: u64 = 5;
}

/// Message lengths and register indices of the fault messages (x86_64 `constants.h`).
pub mod fault_message {
    /// `seL4_VMFault_Length`.
    pub const VM_FAULT_LENGTH: usize = 4;
    /// `seL4_UnknownSyscall_Length`.
    pub const UNKNOWN_SYSCALL_LENGTH: usize = 19;
    /// `seL4_UserException_Length`.
    pub const USER_EXCEPTION_LENGTH: usize = 5;
    /// `seL4_CapFault_LookupFailureType`: the cap fault's lookup failure starts at this MR.
    pub const CAP_FAULT_LOOKUP_FAILURE_TYPE: usize = 3;
    /// Registers of the cap fault message before the lookup failure (IP, address, receive phase).
    pub const CAP_FAULT_IP: usize = 0;
    /// `seL4_CapFault_Addr`.
    pub const CAP_FAULT_ADDRESS: usize = 1;
    /// `seL4_CapFault_InRecvPhase`.
    pub const CAP_FAULT_IN_RECEIVE_PHASE: usize = 2;
}

/// Lookup failure types as reported to user level (`seL4_LookupFailureType`).
pub mod lookup_failure {
    /// `seL4_NoFailure`.
    pub const NO_FAILURE: u64 = 0;
    /// `seL4_InvalidRoot`.
    pub const INVALID_ROOT: u64 = 1;
    /// `seL4_MissingCapability`.
    pub const MISSING_CAPABILITY: u64 = 2;
    /// `seL4_DepthMismatch`.
    pub const DEPTH_MISMATCH: u64 = 3;
    /// `seL4_GuardMismatch`.
    pub const GUARD_MISMATCH: u64 = 4;
}

/// Layout of `seL4_MessageInfo` (`shared_types_64.bf`), from the least significant bit up.
pub mod message_info {
    /// Width of `length`.
    pub const LENGTH_BITS: u32 = 7;
    /// Width of `extraCaps`.
    pub const EXTRA_CAPS_BITS: u32 = 2;
    /// Width of `capsUnwrapped`.
    pub const CAPS_UNWRAPPED_BITS: u32 = 3;
    /// Width of `label`.
    pub const LABEL_BITS: u32 = 20;
}

/// Layout of `seL4_IPCBuffer` in words (`shared_types.h`, `constants.h`).
pub mod ipc_buffer {
    /// `seL4_MsgMaxLength`.
    pub const MSG_MAX_LENGTH: usize = 120;
    /// `seL4_MsgMaxExtraCaps`.
    pub const MSG_MAX_EXTRA_CAPS: usize = 3;
    /// Word index of `tag`.
    pub const TAG: usize = 0;
    /// Word index of `msg[0]`; MR *i* lives at `MSG + i` (MR0–3 travel in registers too).
    pub const MSG: usize = 1;
    /// Word index of `userData`.
    pub const USER_DATA: usize = MSG + MSG_MAX_LENGTH;
    /// Word index of `caps_or_badges[0]`.
    pub const CAPS_OR_BADGES: usize = USER_DATA + 1;
    /// Word index of `receiveCNode`.
    pub const RECEIVE_CNODE: usize = CAPS_OR_BADGES + MSG_MAX_EXTRA_CAPS;
    /// Word index of `receiveIndex`.
    pub const RECEIVE_INDEX: usize = RECEIVE_CNODE + 1;
    /// Word index of `receiveDepth`.
    pub const RECEIVE_DEPTH: usize = RECEIVE_INDEX + 1;
    /// Total size in words.
    pub const WORDS: usize = RECEIVE_DEPTH + 1;
}

/// Number of message registers passed in CPU registers (`r10`, `r8`, `r9`, `r15`).
pub const MESSAGE_REGISTERS_IN_CPU: usize = 4;

/// Bits in a machine word; also the depth that resolves a CPtr in the root CNode.
pub const WORD_BITS: u8 = 64;
/// `seL4_PageBits`.
pub const PAGE_BITS: u8 = 12;
/// Size of a 4 KiB page in bytes.
pub const PAGE_SIZE: usize = 1 << PAGE_BITS;
/// `seL4_LargePageBits`.
pub const LARGE_PAGE_BITS: u8 = 21;
/// `seL4_SlotBits`.
pub const SLOT_BITS: u8 = 5;
/// `seL4_TCBBits`.
pub const TCB_BITS: u8 = 11;
/// `seL4_EndpointBits`.
pub const ENDPOINT_BITS: u8 = 4;
/// `seL4_NotificationBits`.
pub const NOTIFICATION_BITS: u8 = 5;
/// `seL4_PageTableBits`.
pub const PAGE_TABLE_BITS: u8 = 12;
/// `seL4_PageDirBits`.
pub const PAGE_DIRECTORY_BITS: u8 = 12;
/// `seL4_PDPTBits`.
pub const PDPT_BITS: u8 = 12;
/// `seL4_PML4Bits`.
pub const PML4_BITS: u8 = 12;
/// `seL4_MinUntypedBits`.
pub const MIN_UNTYPED_BITS: u8 = 4;
/// `seL4_MaxUntypedBits`.
pub const MAX_UNTYPED_BITS: u8 = 47;

/// Bits of virtual address left to translate when a map call finds a paging level missing
/// (`FailedLookup` with `MissingCapability`): these name the missing level.
pub mod bits_left {
    /// No PDPT covers the address.
    pub const MISSING_PDPT: u64 = 39;
    /// No page directory covers the address.
    pub const MISSING_PAGE_DIRECTORY: u64 = 30;
    /// No page table covers the address.
    pub const MISSING_PAGE_TABLE: u64 = 21;
}

/// Slots of the initial thread's CNode filled at boot (`bootinfo_types.h`).
pub mod initial_slot {
    /// `seL4_CapNull`.
    pub const NULL: u64 = 0;
    /// `seL4_CapInitThreadTCB`.
    pub const INIT_THREAD_TCB: u64 = 1;
    /// `seL4_CapInitThreadCNode`.
    pub const INIT_THREAD_CNODE: u64 = 2;
    /// `seL4_CapInitThreadVSpace`.
    pub const INIT_THREAD_VSPACE: u64 = 3;
    /// `seL4_CapIRQControl`.
    pub const IRQ_CONTROL: u64 = 4;
    /// `seL4_CapASIDControl`.
    pub const ASID_CONTROL: u64 = 5;
    /// `seL4_CapInitThreadASIDPool`.
    pub const INIT_THREAD_ASID_POOL: u64 = 6;
    /// `seL4_CapIOPort`.
    pub const IO_PORT: u64 = 7;
    /// `seL4_CapIOSpace`.
    pub const IO_SPACE: u64 = 8;
    /// `seL4_CapBootInfoFrame`.
    pub const BOOT_INFO_FRAME: u64 = 9;
    /// `seL4_CapInitThreadIPCBuffer`.
    pub const INIT_THREAD_IPC_BUFFER: u64 = 10;
    /// `seL4_CapDomain`.
    pub const DOMAIN: u64 = 11;
    /// `seL4_NumInitialCaps`.
    pub const COUNT: u64 = 12;

    /// Every initial slot with its libsel4 name.
    pub const ALL: &[(&str, u64)] = &[
        ("seL4_CapNull", NULL),
        ("seL4_CapInitThreadTCB", INIT_THREAD_TCB),
        ("seL4_CapInitThreadCNode", INIT_THREAD_CNODE),
        ("seL4_CapInitThreadVSpace", INIT_THREAD_VSPACE),
        ("seL4_CapIRQControl", IRQ_CONTROL),
        ("seL4_CapASIDControl", ASID_CONTROL),
        ("seL4_CapInitThreadASIDPool", INIT_THREAD_ASID_POOL),
        ("seL4_CapIOPort", IO_PORT),
        ("seL4_CapIOSpace", IO_SPACE),
        ("seL4_CapBootInfoFrame", BOOT_INFO_FRAME),
        ("seL4_CapInitThreadIPCBuffer", INIT_THREAD_IPC_BUFFER),
        ("seL4_CapDomain", DOMAIN),
        ("seL4_NumInitialCaps", COUNT),
    ];
}

/// Number of TCB registers in `seL4_UserContext` (frame registers, then `tls_base`).
pub const USER_CONTEXT_WORDS: usize = 19;
