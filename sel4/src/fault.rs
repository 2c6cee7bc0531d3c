//! Fault messages, decoded from the message info and message registers the kernel sends to a
//! thread's fault endpoint. Pure: the caller supplies the registers, so this runs on the host.

use crate::abi::{fault_label, fault_message, lookup_failure};
use crate::error::LookupFailure;
use crate::message::MessageInfo;

/// The kind of memory access behind a VM fault ([`VmFault::access`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A data read.
    Read,
    /// A data write.
    Write,
    /// An instruction fetch: error-code bit 4 (never set on this kernel, which leaves NX off), or a
    /// fault on the instruction pointer's own page.
    Execute,
}

/// x86 page-fault error code bits.
pub mod error_code {
    /// The page was present (a protection violation, not a missing mapping).
    pub const PRESENT: u64 = 1 << 0;
    /// The access was a write.
    pub const WRITE: u64 = 1 << 1;
    /// The access came from user mode.
    pub const USER: u64 = 1 << 2;
    /// A reserved bit was set in a paging entry.
    pub const RESERVED: u64 = 1 << 3;
    /// The access was an instruction fetch.
    pub const INSTRUCTION_FETCH: u64 = 1 << 4;
}

/// A page fault (`seL4_Fault_VMFault`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmFault {
    /// Instruction pointer of the faulting instruction; replying restarts it.
    pub ip: u64,
    /// Faulting address. The 5.0 kernel keeps it in 32 bits: faults above 4 GiB arrive truncated.
    pub address: u64,
    /// The kernel took it as an instruction fault.
    pub prefetch: bool,
    /// The x86 error code (see [`error_code`]).
    pub fsr: u64,
}

impl VmFault {
    /// A VM fault from its message, when `info` is the kernel's for one: the fault loop's common
    /// message, decoded from the four registers it arrives in without building a [`Fault`]. The
    /// kernel sends it with exactly this info word (the label, [`fault_message::VM_FAULT_LENGTH`]
    /// words, no caps), so one comparison tells it apart. `None` for any other info word: another
    /// label, or a message with the VM fault's label and another length (too short to be one, or
    /// longer), which [`Fault::decode`] decodes.
    #[inline]
    pub fn from_registers(info: MessageInfo, registers: [u64; 4]) -> Option<VmFault> {
        const KERNEL: MessageInfo =
            MessageInfo::new(fault_label::VM_FAULT, 0, 0, fault_message::VM_FAULT_LENGTH as u64);
        if info != KERNEL {
            return None;
        }
        Some(Self::of_registers(registers))
    }

    /// The VM fault in the four registers of a message [`VmFault::from_registers`] took for one
    /// (a caller that has decoded the message once reads it again without the test).
    #[inline]
    pub fn of_registers(registers: [u64; 4]) -> VmFault {
        let [ip, address, prefetch, fsr] = registers;
        VmFault { ip, address, prefetch: prefetch != 0, fsr }
    }

    /// Read, write or execute: the one decoding of an x86 page fault in the project (the root task
    /// hands it to the pager; the host model of the kernel, `sim`, reports its faults through it).
    ///
    /// Bit 1 of the error code is a write, bit 4 an instruction fetch. seL4 5.0 never enables NX, so
    /// bit 4 stays clear; a fetch is still recognisable when the faulting address lies on the
    /// instruction pointer's own page, since the CPU cannot have fetched an instruction from an
    /// unmapped page. (An instruction straddling into the next page is classed as a read: harmless
    /// for executable areas.) A write is never a fetch: an instruction writing to its own page
    /// (already mapped, read-only) is a write, or a pager would take it for a spurious execute fault
    /// and restart it forever.
    pub fn access(&self) -> Access {
        const PAGE_MASK: u64 = !0xfff;
        if self.fsr & error_code::INSTRUCTION_FETCH != 0 {
            Access::Execute
        } else if self.fsr & error_code::WRITE != 0 {
            Access::Write
        } else if self.ip & PAGE_MASK == self.address & PAGE_MASK {
            Access::Execute
        } else {
            Access::Read
        }
    }

    /// The page was mapped but the access broke its rights.
    pub fn is_protection_violation(&self) -> bool {
        self.fsr & error_code::PRESENT != 0
    }
}

/// A capability fault (`seL4_Fault_CapFault`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapFault {
    /// Instruction pointer of the faulting syscall.
    pub ip: u64,
    /// The CPtr that failed to resolve.
    pub address: u64,
    /// The failure happened in the receive phase of the syscall.
    pub in_receive_phase: bool,
    /// Why the lookup failed.
    pub failure: Option<LookupFailure>,
}

/// A syscall with a number the kernel does not know (`seL4_Fault_UnknownSyscall`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownSyscall {
    /// rax, rbx, rcx, rdx, rsi, rdi, rbp, r8–r15, then fault IP, rsp, rflags: the first 18
    /// registers of the message.
    pub registers: [u64; 18],
    /// The syscall number (the last register of the message).
    pub syscall: u64,
}

impl UnknownSyscall {
    /// Index of the fault IP in [`UnknownSyscall::registers`].
    pub const FAULT_IP: usize = 15;
    /// Index of rsp in [`UnknownSyscall::registers`].
    pub const STACK_POINTER: usize = 16;

    /// Instruction pointer of the syscall.
    pub fn ip(&self) -> u64 {
        self.registers[Self::FAULT_IP]
    }
}

/// A CPU exception that is not a page fault (`seL4_Fault_UserException`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserException {
    /// Instruction pointer.
    pub ip: u64,
    /// Stack pointer.
    pub stack_pointer: u64,
    /// rflags.
    pub flags: u64,
    /// Exception vector number.
    pub number: u64,
    /// Exception error code.
    pub code: u64,
}

/// A decoded fault message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// See [`CapFault`].
    Cap(CapFault),
    /// See [`UnknownSyscall`].
    UnknownSyscall(UnknownSyscall),
    /// See [`UserException`].
    UserException(UserException),
    /// See [`VmFault`].
    Vm(VmFault),
}

/// A message that is not a fault this binding can decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultDecodeError {
    /// The label names no fault (an ordinary message, or a null fault).
    NotAFault {
        /// The label received.
        label: u64,
    },
    /// The label is a fault but the message is shorter than that fault's layout.
    TooShort {
        /// The label received.
        label: u64,
        /// The length received.
        length: u64,
        /// The length the layout needs.
        expected: usize,
    },
}

impl Fault {
    /// Decodes a fault from its message info and `mr(i)`, message register *i*. Inline, so that
    /// `mr` is too (a call for each word, through a pointer, cost the fault loop's stepped-over
    /// exceptions some twenty instructions).
    #[inline(always)]
    pub fn decode(info: MessageInfo, mr: impl Fn(usize) -> u64) -> Result<Fault, FaultDecodeError> {
        let label = info.label();
        let length = info.length();
        let need = |expected: usize| {
            if (length as usize) < expected {
                Err(FaultDecodeError::TooShort { label, length, expected })
            } else {
                Ok(())
            }
        };
        match label {
            fault_label::VM_FAULT => {
                need(fault_message::VM_FAULT_LENGTH)?;
                Ok(Fault::Vm(VmFault { ip: mr(0), address: mr(1), prefetch: mr(2) != 0, fsr: mr(3) }))
            }
            fault_label::CAP_FAULT => {
                // The lookup failure part has a variable length: its type word, then the words that
                // type carries (the kernel's `setMRs_lookup_failure`).
                let failure_type = fault_message::CAP_FAULT_LOOKUP_FAILURE_TYPE;
                need(failure_type + 1)?;
                need(failure_type + 1 + lookup_failure_words(mr(failure_type)))?;
                Ok(Fault::Cap(CapFault {
                    ip: mr(fault_message::CAP_FAULT_IP),
                    address: mr(fault_message::CAP_FAULT_ADDRESS),
                    in_receive_phase: mr(fault_message::CAP_FAULT_IN_RECEIVE_PHASE) != 0,
                    failure: LookupFailure::decode(|i| mr(fault_message::CAP_FAULT_LOOKUP_FAILURE_TYPE + i)),
                }))
            }
            fault_label::UNKNOWN_SYSCALL => {
                need(fault_message::UNKNOWN_SYSCALL_LENGTH)?;
                let mut registers = [0; 18];
                for (i, register) in registers.iter_mut().enumerate() {
                    *register = mr(i);
                }
                Ok(Fault::UnknownSyscall(UnknownSyscall { registers, syscall: mr(18) }))
            }
            fault_label::USER_EXCEPTION => {
                need(fault_message::USER_EXCEPTION_LENGTH)?;
                Ok(Fault::UserException(UserException {
                    ip: mr(0),
                    stack_pointer: mr(1),
                    flags: mr(2),
                    number: mr(3),
                    code: mr(4),
                }))
            }
            _ => Err(FaultDecodeError::NotAFault { label }),
        }
    }
}

/// Words a lookup failure of type `kind` carries after its type word.
fn lookup_failure_words(kind: u64) -> usize {
    match kind {
        lookup_failure::MISSING_CAPABILITY => 1,
        lookup_failure::DEPTH_MISMATCH => 2,
        lookup_failure::GUARD_MISMATCH => 3,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(label: u64, words: &[u64]) -> Result<Fault, FaultDecodeError> {
        let info = MessageInfo::new(label, 0, 0, words.len() as u64);
        Fault::decode(info, |i| words[i])
    }

    #[test]
    fn vm_fault_read_and_write() {
        let read = decode(5, &[0x401234, 0x4000_0000, 0, 0x4]).unwrap();
        let Fault::Vm(read) = read else { panic!("not a VM fault: {read:?}") };
        assert_eq!(read.ip, 0x401234);
        assert_eq!(read.address, 0x4000_0000);
        assert!(!read.prefetch);
        assert_eq!(read.access(), Access::Read);
        assert!(!read.is_protection_violation());

        let Ok(Fault::Vm(write)) = decode(5, &[1, 2, 0, 0x6]) else { panic!("not a VM fault") };
        assert_eq!(write.access(), Access::Write);

        let Ok(Fault::Vm(fetch)) = decode(5, &[1, 2, 1, 0x14]) else { panic!("not a VM fault") };
        assert_eq!(fetch.access(), Access::Execute);
        assert!(fetch.prefetch);

        let Ok(Fault::Vm(protection)) = decode(5, &[1, 2, 0, 0x7]) else { panic!("not a VM fault") };
        assert!(protection.is_protection_violation());
    }

    /// A fault at `address` from `ip` with error code `fsr`, as `decode` would give it.
    fn vm(ip: u64, address: u64, fsr: u64) -> VmFault {
        VmFault { ip, address, prefetch: false, fsr }
    }

    #[test]
    fn x86_fault_classes() {
        // Read and write of a data page, fetch recognised by the IP's own page.
        assert_eq!(vm(0x40_1000, 0x50_0000, 0x4).access(), Access::Read);
        assert_eq!(vm(0x40_1000, 0x50_0000, 0x6).access(), Access::Write);
        assert_eq!(vm(0x40_1ff0, 0x40_1ff4, 0x4).access(), Access::Execute);
        assert_eq!(vm(0x40_1000, 0x50_0000, 0x14).access(), Access::Execute);
        // An instruction writing to its own (mapped, read-only) page is a write, not a fetch.
        assert_eq!(vm(0x40_1010, 0x40_1000, 0x7).access(), Access::Write);
    }

    #[test]
    fn vm_fault_from_registers_agrees_with_decode() {
        let words = [0x401234, 0x4000_0000, 1, 0x6];
        let decoded = decode(5, &words).unwrap();
        assert_eq!(
            VmFault::from_registers(MessageInfo::new(5, 0, 0, 4), words).map(Fault::Vm),
            Some(decoded)
        );
        // Too short, longer, with caps, or another label: left to `Fault::decode`.
        assert_eq!(VmFault::from_registers(MessageInfo::new(5, 0, 0, 3), words), None);
        assert_eq!(VmFault::from_registers(MessageInfo::new(5, 0, 0, 5), words), None);
        assert_eq!(VmFault::from_registers(MessageInfo::new(5, 0, 1, 4), words), None);
        assert_eq!(VmFault::from_registers(MessageInfo::new(6, 0, 0, 4), words), None);
    }

    #[test]
    fn short_vm_fault_is_refused() {
        assert_eq!(
            decode(5, &[1, 2, 3]),
            Err(FaultDecodeError::TooShort { label: 5, length: 3, expected: 4 })
        );
    }

    #[test]
    fn cap_fault_with_missing_capability() {
        assert_eq!(
            decode(1, &[0x400100, 42, 0, 2, 64]),
            Ok(Fault::Cap(CapFault {
                ip: 0x400100,
                address: 42,
                in_receive_phase: false,
                failure: Some(LookupFailure::MissingCapability { bits_left: 64 }),
            }))
        );
    }

    #[test]
    fn cap_fault_cut_short_of_its_lookup_failure_is_refused() {
        // Found by the fault_decode fuzz target: a guard mismatch carries three words after its type,
        // and a five-register message has only one of them; the rest would be stale registers.
        assert_eq!(
            decode(1, &[0x400100, 42, 0, 4, 64]),
            Err(FaultDecodeError::TooShort { label: 1, length: 5, expected: 7 })
        );
        assert_eq!(
            decode(1, &[0x400100, 42, 0, 2]),
            Err(FaultDecodeError::TooShort { label: 1, length: 4, expected: 5 })
        );
        assert_eq!(
            decode(1, &[0x400100, 42, 1, 4, 64, 3, 2]),
            Ok(Fault::Cap(CapFault {
                ip: 0x400100,
                address: 42,
                in_receive_phase: true,
                failure: Some(LookupFailure::GuardMismatch { bits_left: 64, guard_found: 3, bits_found: 2 }),
            }))
        );
        assert_eq!(
            decode(1, &[0x400100, 42, 0, 1]),
            Ok(Fault::Cap(CapFault {
                ip: 0x400100,
                address: 42,
                in_receive_phase: false,
                failure: Some(LookupFailure::InvalidRoot),
            }))
        );
    }

    #[test]
    fn unknown_syscall_and_user_exception() {
        let words: Vec<u64> = (100..119).collect();
        let Ok(Fault::UnknownSyscall(syscall)) = decode(2, &words) else { panic!("not an unknown syscall") };
        assert_eq!(syscall.registers[0], 100);
        assert_eq!(syscall.ip(), 115);
        assert_eq!(syscall.syscall, 118);

        assert_eq!(
            decode(3, &[1, 2, 3, 6, 0]),
            Ok(Fault::UserException(UserException { ip: 1, stack_pointer: 2, flags: 3, number: 6, code: 0 }))
        );
    }

    #[test]
    fn ordinary_messages_are_not_faults() {
        assert_eq!(decode(0x77, &[1]), Err(FaultDecodeError::NotAFault { label: 0x77 }));
        assert_eq!(decode(0, &[]), Err(FaultDecodeError::NotAFault { label: 0 }));
    }
}
