//! Typed capability pointers. A CPtr is an address in the caller's CSpace; the newtypes keep a
//! TCB cap from being passed where a frame cap belongs. They are plain numbers: holding one
//! proves nothing about what the slot contains.

use crate::abi::{initial_slot, ObjectType};

/// An untyped capability pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CPtr(u64);

impl CPtr {
    /// The null CPtr (slot 0 of the root CNode is always empty).
    pub const NULL: CPtr = CPtr(0);

    /// A CPtr with this value.
    pub const fn new(bits: u64) -> CPtr {
        CPtr(bits)
    }

    /// The raw value.
    pub const fn bits(self) -> u64 {
        self.0
    }
}

/// A kernel object type that `Untyped_Retype` can create at a fixed size.
pub trait Object: Sized + Copy {
    /// The type word for the retype call.
    const TYPE: ObjectType;
    /// Size of one object, as a power of two in bytes.
    const SIZE_BITS: u8;
    /// The typed cap for a slot.
    fn from_cptr(cptr: CPtr) -> Self;
}

macro_rules! cap_types {
    ($($(#[$doc:meta])* $name:ident $(=> $object:ident)?;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(CPtr);

        impl $name {
            /// The cap at this CPtr.
            pub const fn new(bits: u64) -> Self {
                $name(CPtr::new(bits))
            }

            /// The cap at this CPtr.
            pub const fn from_cptr(cptr: CPtr) -> Self {
                $name(cptr)
            }

            /// Its CPtr.
            pub const fn cptr(self) -> CPtr {
                self.0
            }

            /// The raw CPtr value.
            pub const fn bits(self) -> u64 {
                self.0.bits()
            }
        }

        impl From<$name> for CPtr {
            fn from(cap: $name) -> CPtr {
                cap.0
            }
        }

        $(impl Object for $name {
            const TYPE: ObjectType = ObjectType::$object;
            const SIZE_BITS: u8 = match ObjectType::$object.fixed_size_bits() {
                Some(bits) => bits,
                None => panic!("not a fixed-size object"),
            };
            fn from_cptr(cptr: CPtr) -> Self {
                $name(cptr)
            }
        })?
    )*};
}

cap_types! {
    /// Untyped memory.
    Untyped;
    /// A CNode (capability table).
    CNode;
    /// A thread control block.
    Tcb => Tcb;
    /// An IPC endpoint.
    Endpoint => Endpoint;
    /// A notification object.
    Notification => Notification;
    /// A 4 KiB frame (`seL4_X86_Page` of a 4K object).
    Frame => Page4K;
    /// A 2 MiB frame.
    LargeFrame => LargePage;
    /// A page table (maps 2 MiB).
    PageTable => PageTable;
    /// A page directory (maps 1 GiB).
    PageDirectory => PageDirectory;
    /// A page directory pointer table (maps 512 GiB).
    Pdpt => Pdpt;
    /// A PML4: the root of an x86_64 VSpace.
    Pml4 => Pml4;
    /// An ASID pool.
    AsidPool;
    /// The ASID control cap.
    AsidControl;
    /// An I/O port range.
    IoPort;
    /// The IRQ control cap.
    IrqControl;
    /// The right to handle one interrupt (made by IRQ control).
    IrqHandler;
    /// A domain control cap.
    DomainSet;
}

/// Caps the kernel places in the root task's CNode at boot.
pub mod init {
    use super::*;

    /// The root task's TCB.
    pub const TCB: Tcb = Tcb::new(initial_slot::INIT_THREAD_TCB);
    /// The root task's CNode.
    pub const CNODE: CNode = CNode::new(initial_slot::INIT_THREAD_CNODE);
    /// The root task's VSpace.
    pub const VSPACE: Pml4 = Pml4::new(initial_slot::INIT_THREAD_VSPACE);
    /// IRQ control.
    pub const IRQ_CONTROL: IrqControl = IrqControl::new(initial_slot::IRQ_CONTROL);
    /// ASID control.
    pub const ASID_CONTROL: AsidControl = AsidControl::new(initial_slot::ASID_CONTROL);
    /// The ASID pool the root task's VSpace lives in; new PML4s must be assigned to it.
    pub const ASID_POOL: AsidPool = AsidPool::new(initial_slot::INIT_THREAD_ASID_POOL);
    /// All I/O ports.
    pub const IO_PORT: IoPort = IoPort::new(initial_slot::IO_PORT);
    /// The boot info frame.
    pub const BOOT_INFO_FRAME: Frame = Frame::new(initial_slot::BOOT_INFO_FRAME);
    /// The root task's IPC buffer frame.
    pub const IPC_BUFFER: Frame = Frame::new(initial_slot::INIT_THREAD_IPC_BUFFER);
    /// Domain control.
    pub const DOMAIN: DomainSet = DomainSet::new(initial_slot::DOMAIN);
}

/// Access rights of a cap (`seL4_CapRights`: bit 0 write, 1 read, 2 grant).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapRights(u64);

impl CapRights {
    /// No rights.
    pub const NONE: CapRights = CapRights(0);
    /// Write.
    pub const WRITE: CapRights = CapRights(1 << 0);
    /// Read.
    pub const READ: CapRights = CapRights(1 << 1);
    /// Grant.
    pub const GRANT: CapRights = CapRights(1 << 2);
    /// Read and write.
    pub const READ_WRITE: CapRights = CapRights(0b011);
    /// Read, write and grant.
    pub const ALL: CapRights = CapRights(0b111);

    /// Rights from the raw word.
    pub const fn from_word(word: u64) -> CapRights {
        CapRights(word & 0b111)
    }

    /// The raw word.
    pub const fn to_word(self) -> u64 {
        self.0
    }

    /// Both sets of rights.
    pub const fn union(self, other: CapRights) -> CapRights {
        CapRights(self.0 | other.0)
    }

    /// Has every right in `other`.
    pub const fn contains(self, other: CapRights) -> bool {
        self.0 & other.0 == other.0
    }
}

/// x86 mapping attributes (`seL4_X86_VMAttributes`).
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum VmAttributes {
    /// Write-back caching: the default for memory.
    #[default]
    WriteBack = 0,
    /// Write-through.
    WriteThrough = 1,
    /// Cache disabled.
    CacheDisabled = 2,
    /// Uncacheable.
    Uncacheable = 3,
    /// Write-combining.
    WriteCombining = 4,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_sizes() {
        assert_eq!(<Tcb as Object>::SIZE_BITS, 11);
        assert_eq!(<Endpoint as Object>::SIZE_BITS, 4);
        assert_eq!(<Frame as Object>::SIZE_BITS, 12);
        assert_eq!(<Frame as Object>::TYPE.value(), 7);
        assert_eq!(<Pml4 as Object>::TYPE.value(), 6);
    }

    #[test]
    fn rights_bits() {
        assert_eq!(CapRights::ALL.to_word(), 7);
        assert_eq!(CapRights::READ.union(CapRights::WRITE), CapRights::READ_WRITE);
        assert!(CapRights::ALL.contains(CapRights::GRANT));
        assert!(!CapRights::READ_WRITE.contains(CapRights::GRANT));
    }

    #[test]
    fn initial_caps() {
        assert_eq!(init::IO_PORT.bits(), 7);
        assert_eq!(init::ASID_POOL.bits(), 6);
        assert_eq!(init::VSPACE.bits(), 3);
    }
}
