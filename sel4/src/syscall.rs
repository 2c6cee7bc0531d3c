//! Raw system calls through the x86_64 `syscall` instruction (5.0 ABI): `rdx` syscall number,
//! `rdi` cap or badge, `rsi` message info, `r10`, `r8`, `r9`, `r15` message registers 0–3.
//! The kernel clobbers `rcx` and `r11` and does not restore `rsp` (the fast path zeroes it), so
//! `rsp` is parked in `r12`, which both return paths restore.
//!
//! Like libsel4 and rust-sel4, these are safe functions: a syscall only touches the caller's
//! registers and its own IPC buffer. Capability operations that pull memory out from under the
//! running code (unmapping its own stack, say) are outside what Rust's type system can see.

use crate::abi::{Syscall, MESSAGE_REGISTERS_IN_CPU};
use crate::cap::CPtr;
use crate::ipc_buffer;
use crate::message::MessageInfo;

/// Message registers 0–3, passed in CPU registers.
pub type RegisterMessage = [u64; MESSAGE_REGISTERS_IN_CPU];

/// A message received by `Recv`, `Call` or `ReplyRecv`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// Label, length and caps of the message.
    pub info: MessageInfo,
    /// Badge of the cap the sender used (0 for kernel replies and unbadged caps).
    pub badge: u64,
    /// Message registers 0–3.
    pub registers: RegisterMessage,
}

impl Received {
    /// Message register `index`: from the CPU registers for 0–3, else from the IPC buffer.
    pub fn message_register(&self, index: usize) -> u64 {
        match self.registers.get(index) {
            Some(value) => *value,
            None => ipc_buffer::message_register(index),
        }
    }
}

#[inline(always)]
fn raw(number: Syscall, rdi: u64, rsi: u64, message: RegisterMessage) -> (u64, u64, RegisterMessage) {
    let (mut rdi, mut rsi) = (rdi, rsi);
    let [mut mr0, mut mr1, mut mr2, mut mr3] = message;
    // SAFETY: the `syscall` instruction enters the seL4 kernel, which follows the 5.0 x86_64
    // ABI: it reads and writes only the registers named here (rcx and r11 are clobbered by
    // sysret, rsp is lost and restored from r12) and, for long messages, the calling thread's
    // IPC buffer, which belongs to this thread. The default asm options assume memory is
    // read and written, which covers the IPC buffer.
    unsafe {
        core::arch::asm!(
            "mov r12, rsp",
            "syscall",
            "mov rsp, r12",
            inout("rdx") number.number() => _,
            inout("rdi") rdi,
            inout("rsi") rsi,
            inout("r10") mr0,
            inout("r8") mr1,
            inout("r9") mr2,
            inout("r15") mr3,
            out("rcx") _,
            out("r11") _,
            out("r12") _,
        );
    }
    (rdi, rsi, [mr0, mr1, mr2, mr3])
}

fn received(rdi: u64, rsi: u64, registers: RegisterMessage) -> Received {
    Received { info: MessageInfo::from_word(rsi), badge: rdi, registers }
}

/// `seL4_Call`: send to `destination` and wait for the reply (invocations use this).
pub fn call(destination: CPtr, info: MessageInfo, message: RegisterMessage) -> Received {
    let (rdi, rsi, registers) = raw(Syscall::Call, destination.bits(), info.to_word(), message);
    received(rdi, rsi, registers)
}

/// `seL4_Send`: blocking send.
pub fn send(destination: CPtr, info: MessageInfo, message: RegisterMessage) {
    raw(Syscall::Send, destination.bits(), info.to_word(), message);
}

/// `seL4_NBSend`: send only if a receiver is waiting.
pub fn nb_send(destination: CPtr, info: MessageInfo, message: RegisterMessage) {
    raw(Syscall::NBSend, destination.bits(), info.to_word(), message);
}

/// `seL4_Recv`: wait for a message on `source`.
pub fn recv(source: CPtr) -> Received {
    let (rdi, rsi, registers) = raw(Syscall::Recv, source.bits(), 0, [0; 4]);
    received(rdi, rsi, registers)
}

/// `seL4_NBRecv`: poll `source`.
pub fn nb_recv(source: CPtr) -> Received {
    let (rdi, rsi, registers) = raw(Syscall::NBRecv, source.bits(), 0, [0; 4]);
    received(rdi, rsi, registers)
}

/// `seL4_Reply`: answer the last `Call` or fault through the implicit reply cap.
pub fn reply(info: MessageInfo, message: RegisterMessage) {
    raw(Syscall::Reply, 0, info.to_word(), message);
}

/// `seL4_ReplyRecv`: reply, then wait on `source`, in one kernel entry.
pub fn reply_recv(source: CPtr, info: MessageInfo, message: RegisterMessage) -> Received {
    let (rdi, rsi, registers) = raw(Syscall::ReplyRecv, source.bits(), info.to_word(), message);
    received(rdi, rsi, registers)
}

/// `seL4_Yield`: give up the rest of the time slice.
pub fn yield_now() {
    raw(Syscall::Yield, 0, 0, [0; 4]);
}

/// `seL4_DebugPutChar`: one byte to the kernel's serial console (debug kernels only).
pub fn debug_put_char(byte: u8) {
    raw(Syscall::DebugPutChar, u64::from(byte), 0, [0; 4]);
}

/// `seL4_DebugHalt`: stop the machine (debug kernels only).
pub fn debug_halt() {
    raw(Syscall::DebugHalt, 0, 0, [0; 4]);
}
