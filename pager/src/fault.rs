//! A page fault as the pager sees it, and what became of it.

use core::fmt;

use crate::area::AreaKind;
use crate::frames::AllocationError;
use crate::platform::{KernelError, PagingLevel};
use crate::seed::FrameContent;
use crate::{ClientId, FrameRef};

/// The kind of access that faulted. The kernel's side tells it from the fault (on seL4 the binding
/// decodes the x86 error code, `sel4::VmFault::access`); the pager only checks it against the area.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    Write,
    Execute,
}

impl Access {
    /// This access's bit in a set of accesses (an area's `accesses`).
    pub(crate) const fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Execute => "execute",
        })
    }
}

/// One fault to resolve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub address: u64,
    pub ip: u64,
    pub access: Access,
}

/// Which of the seed's cases served a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultClass {
    /// The shared pagemap had the page: the same frame, one more reference.
    SharedHit,
    /// A read-only segment page whose frame in the file is the page as the client reads it (wholly
    /// inside the file, or padded with zeroes there): the image's own frame, no copy.
    ImageFrame,
    /// A new pool frame holding what the seed's cases say: a copy of a writable segment's page
    /// wholly inside the file, zeroes (at or above the file end, or anonymous), or both (a page
    /// straddling the file bounds).
    NewFrame(FrameContent),
    /// A new large frame, all zeroes, mapping the whole 2 MiB span around the page (512 pages).
    Large,
    /// The page was already mapped with the rights asked for (another thread got there first).
    Spurious,
    /// A read of a page of zeroes under zero-page (or cow): the shared zero frame, mapped read-only.
    ZeroShared,
    /// The first write to a page mapped from the shared zero frame: a fresh frame, mapped writable in
    /// its place (x86 error code 0x7 on seL4: present, write, user).
    Upgrade,
    /// The first write to a writable segment's page mapped read-only from the image's own frame
    /// (cow): the page copied into a new frame, mapped writable in its place.
    CowCopy,
    /// An evicting client's touch of a page the clock hand soft-unmapped: the same frame mapped
    /// again (no copy, no allocation), the page marked referenced.
    RefaultSoft,
    /// An evicting client's touch of a page evicted to the store: decompressed into a fresh frame.
    RefaultStore,
    /// The first write to an evicting client's page mapped read-only to learn it (x86 error code
    /// 0x7): the same frame mapped writable again, the page marked dirty.
    Dirty,
}

impl FaultClass {
    /// Pages a resolution of this class mapped: 512 for a large frame, none for a spurious fault.
    pub const fn pages(self) -> u32 {
        match self {
            Self::Large => crate::PAGES_PER_LARGE_PAGE,
            Self::Spurious => 0,
            _ => 1,
        }
    }
}

/// A served fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultResolution {
    pub class: FaultClass,
    /// The page-aligned address mapped.
    pub page: u64,
    pub frame: FrameRef,
    /// Pages mapped in all, with fault-around.
    pub pages_mapped: u32,
}

/// Why a fault was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalReason {
    /// No area covers the address.
    NoArea,
    /// A write to an area without write rights.
    WriteToReadOnly { area: AreaKind },
    /// An instruction fetch from an area without execute rights.
    ExecuteNonExecutable { area: AreaKind },
    /// The page below the stack: the stack overflowed.
    StackOverflow,
    /// A reserved area, which the pager never serves (the IPC buffer page).
    Reserved { area: AreaKind },
    /// The client would exceed its frame budget.
    OverBudget { budget: u32 },
    /// The image's frame pool, or the kernel's untyped memory, is used up.
    OutOfFrames(AllocationError),
    /// Every cap-copy slot is in use.
    OutOfSlots { capacity: u32 },
    /// A paging structure the mapping needs could not be made (out of memory for it, usually).
    NoPagingStructure { level: PagingLevel, error: KernelError },
    /// The kernel refused an operation.
    Kernel(KernelError),
    /// The client is not known to the pager.
    UnknownClient,
    /// An eviction needed room in the compressed store for a dirty page (`needed` bytes) and the
    /// store, `capacity` bytes with `used` taken, had none; no clean page could go instead.
    StoreFull { capacity: u32, used: u32, needed: u32 },
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoArea => f.write_str("no area at this address"),
            Self::WriteToReadOnly { area } => write!(f, "write to read-only {area}"),
            Self::ExecuteNonExecutable { area } => write!(f, "execute in non-executable {area}"),
            Self::StackOverflow => f.write_str("stack overflow into the guard page"),
            Self::Reserved { area } => write!(f, "the {area} is reserved: the pager serves no page there"),
            Self::OverBudget { budget } => write!(f, "over its budget of {budget} frames"),
            Self::OutOfFrames(AllocationError::PoolExhausted { capacity }) => {
                write!(f, "the image's pool of {capacity} frames is used up")
            }
            Self::OutOfFrames(AllocationError::Kernel(KernelError::OutOfMemory)) => {
                f.write_str("untyped memory is used up: no frame could be retyped")
            }
            Self::OutOfFrames(AllocationError::Kernel(error)) => {
                write!(f, "no frame could be retyped: {error:?}")
            }
            Self::OutOfSlots { capacity } => {
                write!(f, "all {capacity} cap-copy slots are in use (one per page mapped into a client)")
            }
            Self::NoPagingStructure { level, error: KernelError::OutOfMemory } => {
                write!(f, "no {level} could be made: out of memory for the client's paging structures")
            }
            Self::NoPagingStructure { level, error: KernelError::OutOfSlots } => write!(
                f,
                "no {level} could be made: out of capability slots for the client's paging structures"
            ),
            Self::NoPagingStructure { level, error } => write!(f, "no {level} could be made: {error:?}"),
            Self::Kernel(KernelError::LevelStillMissing(level)) => {
                write!(f, "the {level} was made but the kernel still finds it missing")
            }
            Self::Kernel(error) => write!(f, "kernel refused: {error:?}"),
            Self::UnknownClient => f.write_str("unknown client"),
            Self::StoreFull { capacity, used, needed } => write!(
                f,
                "the compressed store of evicted pages ({capacity} bytes) is full: {used} bytes used, a dirty \
                 page needed {needed} more"
            ),
        }
    }
}

/// A refused fault, with everything a one-line report needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultRefusal {
    pub client: ClientId,
    pub fault: Fault,
    pub reason: RefusalReason,
}

impl fmt::Display for FaultRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "client {} {} at {:#x} (ip {:#x}): {}",
            self.client.0, self.fault.access, self.fault.address, self.fault.ip, self.reason
        )
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;

    use super::{AllocationError, KernelError, PagingLevel, RefusalReason};

    #[test]
    fn exhaustion_reasons_say_what_ran_out() {
        let untyped = RefusalReason::OutOfFrames(AllocationError::Kernel(KernelError::OutOfMemory));
        assert_eq!(untyped.to_string(), "untyped memory is used up: no frame could be retyped");
        let other = RefusalReason::OutOfFrames(AllocationError::Kernel(KernelError::Failed(3)));
        assert_eq!(other.to_string(), "no frame could be retyped: Failed(3)");
        let pool = RefusalReason::OutOfFrames(AllocationError::PoolExhausted { capacity: 9 });
        assert_eq!(pool.to_string(), "the image's pool of 9 frames is used up");
        let slots = RefusalReason::OutOfSlots { capacity: 64 };
        assert_eq!(slots.to_string(), "all 64 cap-copy slots are in use (one per page mapped into a client)");
        let store = RefusalReason::StoreFull { capacity: 65536, used: 65000, needed: 900 };
        assert_eq!(
            store.to_string(),
            "the compressed store of evicted pages (65536 bytes) is full: 65000 bytes used, a dirty page needed \
             900 more"
        );
    }

    #[test]
    fn a_level_still_missing_is_named() {
        let reason = RefusalReason::Kernel(KernelError::LevelStillMissing(PagingLevel::PageTable));
        assert_eq!(reason.to_string(), "the page table was made but the kernel still finds it missing");
    }
}
