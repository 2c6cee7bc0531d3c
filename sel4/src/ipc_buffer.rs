//! The calling thread's IPC buffer, reached through the `gs` segment.
//!
//! On every return to user level the 5.0 x86_64 kernel loads the GS base with the current
//! thread's IPC buffer address (`tcbIPCBuffer`), so `gs:[8 * i]` is word *i* of this thread's
//! own buffer. No global pointer to keep in step, and each thread sees its own buffer. A thread
//! configured without an IPC buffer has GS base 0: touching these functions then faults.

use crate::abi::ipc_buffer::{
    CAPS_OR_BADGES, MSG, MSG_MAX_EXTRA_CAPS, MSG_MAX_LENGTH, RECEIVE_CNODE, RECEIVE_DEPTH, RECEIVE_INDEX,
    USER_DATA, WORDS,
};
use crate::cap::CPtr;

/// Reads word `index` of the IPC buffer.
///
/// # Panics
/// If `index` is outside the buffer.
pub fn read_word(index: usize) -> u64 {
    assert!(index < WORDS, "IPC buffer word {index} out of range");
    let offset = index * 8;
    let value: u64;
    // SAFETY: the kernel points the GS base at this thread's IPC buffer (see the module doc),
    // which is `WORDS` words long and mapped while the thread runs; `offset` is inside it.
    unsafe {
        core::arch::asm!(
            "mov {value}, qword ptr gs:[{offset}]",
            offset = in(reg) offset,
            value = lateout(reg) value,
            options(nostack, readonly, preserves_flags),
        );
    }
    value
}

/// Writes word `index` of the IPC buffer.
///
/// # Panics
/// If `index` is outside the buffer.
pub fn write_word(index: usize, value: u64) {
    assert!(index < WORDS, "IPC buffer word {index} out of range");
    let offset = index * 8;
    // SAFETY: as in `read_word`; the buffer is this thread's own, so no other code holds a
    // reference into it.
    unsafe {
        core::arch::asm!(
            "mov qword ptr gs:[{offset}], {value}",
            offset = in(reg) offset,
            value = in(reg) value,
            options(nostack, preserves_flags),
        );
    }
}

/// Message register `index` as stored in the buffer (MR0–3 also travel in CPU registers).
pub fn message_register(index: usize) -> u64 {
    assert!(index < MSG_MAX_LENGTH, "message register {index} out of range");
    read_word(MSG + index)
}

/// Sets message register `index` in the buffer.
pub fn set_message_register(index: usize, value: u64) {
    assert!(index < MSG_MAX_LENGTH, "message register {index} out of range");
    write_word(MSG + index, value);
}

/// Sets extra cap `index` of the next message.
pub fn set_extra_cap(index: usize, cap: CPtr) {
    assert!(index < MSG_MAX_EXTRA_CAPS, "extra cap {index} out of range");
    write_word(CAPS_OR_BADGES + index, cap.bits());
}

/// Badge of extra cap `index` of a received message, when the kernel unwrapped it.
pub fn unwrapped_badge(index: usize) -> u64 {
    assert!(index < MSG_MAX_EXTRA_CAPS, "extra cap {index} out of range");
    read_word(CAPS_OR_BADGES + index)
}

/// Where a received cap lands: slot `index` at `depth` in `cnode`.
pub fn set_receive_path(cnode: CPtr, index: u64, depth: u64) {
    write_word(RECEIVE_CNODE, cnode.bits());
    write_word(RECEIVE_INDEX, index);
    write_word(RECEIVE_DEPTH, depth);
}

/// The user data word, free for the thread's own use.
pub fn user_data() -> u64 {
    read_word(USER_DATA)
}

/// Sets the user data word.
pub fn set_user_data(value: u64) {
    write_word(USER_DATA, value);
}
