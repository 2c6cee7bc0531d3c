//! Decodes arbitrary words as a fault message: the first word is the message info, the rest the message
//! registers. Decoding must never panic, must read only registers the message holds, and every decoded
//! field must be the register it came from, so the VM fault's address and IP reach the pager unchanged.

#![no_main]

use std::cell::Cell;

use libfuzzer_sys::fuzz_target;
use sel4::abi::ipc_buffer::MSG_MAX_LENGTH;
use sel4::abi::{fault_label, lookup_failure};
use sel4::{error_code, Access, Fault, FaultDecodeError, LookupFailure, MessageInfo};

fuzz_target!(|data: &[u8]| {
    let mut words = data.chunks(8).map(|chunk| {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        u64::from_le_bytes(word)
    });
    let info = MessageInfo::from_word(words.next().unwrap_or(0));
    let mut registers = [0u64; MSG_MAX_LENGTH];
    for (register, word) in registers.iter_mut().zip(words) {
        *register = word;
    }
    let length = info.length() as usize;

    // The highest register read, plus one.
    let read_to = Cell::new(0usize);
    let decoded = Fault::decode(info, |i| {
        assert!(i < MSG_MAX_LENGTH, "read message register {i}, past the IPC buffer's {MSG_MAX_LENGTH}");
        read_to.set(read_to.get().max(i + 1));
        registers[i]
    });
    match decoded {
        Ok(fault) => {
            assert!(
                read_to.get() <= length,
                "decoded {fault:?} from register {} of a {length}-register message",
                read_to.get() - 1
            );
            check(info, &registers, fault);
        }
        Err(FaultDecodeError::NotAFault { label }) => {
            assert_eq!(label, info.label());
            let faults = [
                fault_label::CAP_FAULT,
                fault_label::UNKNOWN_SYSCALL,
                fault_label::USER_EXCEPTION,
                fault_label::VM_FAULT,
            ];
            assert!(!faults.contains(&label), "fault label {label} refused as not a fault");
        }
        Err(FaultDecodeError::TooShort { label, length: got, expected }) => {
            assert_eq!((label, got), (info.label(), info.length()));
            assert!((got as usize) < expected, "{got} registers refused as shorter than {expected}");
        }
    }
});

fn check(info: MessageInfo, mr: &[u64; MSG_MAX_LENGTH], fault: Fault) {
    match fault {
        Fault::Vm(vm) => {
            assert_eq!(info.label(), fault_label::VM_FAULT);
            assert_eq!((vm.ip, vm.address, vm.prefetch, vm.fsr), (mr[0], mr[1], mr[2] != 0, mr[3]));
            // The project's one decoding of the access: the kernel's word on writes and fetches, and
            // otherwise a fetch exactly when the address lies on the instruction pointer's page.
            let expected = if vm.fsr & error_code::INSTRUCTION_FETCH != 0 {
                Access::Execute
            } else if vm.fsr & error_code::WRITE != 0 {
                Access::Write
            } else if vm.ip >> 12 == vm.address >> 12 {
                Access::Execute
            } else {
                Access::Read
            };
            assert_eq!(vm.access(), expected);
            assert_eq!(vm.is_protection_violation(), vm.fsr & error_code::PRESENT != 0);
        }
        Fault::Cap(cap) => {
            assert_eq!(info.label(), fault_label::CAP_FAULT);
            assert_eq!((cap.ip, cap.address, cap.in_receive_phase), (mr[0], mr[1], mr[2] != 0));
            let expected = match mr[3] {
                lookup_failure::INVALID_ROOT => Some(LookupFailure::InvalidRoot),
                lookup_failure::MISSING_CAPABILITY => {
                    Some(LookupFailure::MissingCapability { bits_left: mr[4] })
                }
                lookup_failure::DEPTH_MISMATCH => {
                    Some(LookupFailure::DepthMismatch { bits_left: mr[4], bits_found: mr[5] })
                }
                lookup_failure::GUARD_MISMATCH => Some(LookupFailure::GuardMismatch {
                    bits_left: mr[4],
                    guard_found: mr[5],
                    bits_found: mr[6],
                }),
                _ => None,
            };
            assert_eq!(cap.failure, expected);
        }
        Fault::UnknownSyscall(syscall) => {
            assert_eq!(info.label(), fault_label::UNKNOWN_SYSCALL);
            assert_eq!(syscall.registers[..], mr[..18]);
            assert_eq!(syscall.syscall, mr[18]);
            assert_eq!(syscall.ip(), mr[15]);
        }
        Fault::UserException(exception) => {
            assert_eq!(info.label(), fault_label::USER_EXCEPTION);
            let fields =
                (exception.ip, exception.stack_pointer, exception.flags, exception.number, exception.code);
            assert_eq!(fields, (mr[0], mr[1], mr[2], mr[3], mr[4]));
        }
    }
}
