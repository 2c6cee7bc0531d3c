//! A minimal root task, written out byte by byte, for checking the kernel, QEMU and the runner alone.
//!
//! It prints the PASS marker by writing COM1 (0x3f8) itself, one `IOPort_Out8` on the root task's
//! I/O port cap per byte, then exits QEMU through isa-debug-exit the same way. It needs no debug
//! syscall, so it boots the release kernel too. No toolchain is involved, so a failure here is the
//! kernel's, QEMU's or the runner's, never the Rust root task's.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::workspace::Workspace;

/// Where the image is loaded: low, page aligned, far from anything the kernel places after it.
const LOAD_ADDRESS: u64 = 0x40_0000;
const ELF_HEADER_SIZE: u16 = 64;
const PROGRAM_HEADER_SIZE: u16 = 56;

/// The marker line the program prints.
pub const MESSAGE: &[u8] = b"[test] PASS (xtask smoke root task)\n\0";

/// x86_64 machine code; the message follows it directly. Numbers from design.md section 2: Call is
/// syscall -1, the I/O port cap is slot 7, IOPort_Out8 is label 47 (MR0 port, MR1 value). The kernel
/// keeps rbx across a syscall; every other register the loop needs is set again each time.
#[rustfmt::skip]
const CODE: [u8; 0x5a] = [
    0x48, 0x8d, 0x1d, 0x53, 0x00, 0x00, 0x00, //       lea    rbx, [rip + message]
    0x44, 0x0f, 0xb6, 0x03,                   // next: movzx  r8d, byte [rbx]  ; MR1: the byte
    0x45, 0x85, 0xc0,                         //       test   r8d, r8d
    0x74, 0x23,                               //       jz     exit
    0x48, 0xc7, 0xc7, 0x07, 0x00, 0x00, 0x00, //       mov    rdi, 7           ; seL4_CapIOPort
    0x48, 0xc7, 0xc6, 0x02, 0xf0, 0x02, 0x00, //       mov    rsi, 47 << 12 | 2 ; IOPort_Out8, 2 words
    0x49, 0xc7, 0xc2, 0xf8, 0x03, 0x00, 0x00, //       mov    r10, 0x3f8       ; MR0: COM1
    0x48, 0xc7, 0xc2, 0xff, 0xff, 0xff, 0xff, //       mov    rdx, -1          ; Call
    0x0f, 0x05,                               //       syscall
    0x48, 0xff, 0xc3,                         //       inc    rbx
    0xeb, 0xd4,                               //       jmp    next
    0x48, 0xc7, 0xc7, 0x07, 0x00, 0x00, 0x00, // exit: mov    rdi, 7           ; seL4_CapIOPort
    0x48, 0xc7, 0xc6, 0x02, 0xf0, 0x02, 0x00, //       mov    rsi, 47 << 12 | 2 ; IOPort_Out8, 2 words
    0x49, 0xc7, 0xc2, 0xf4, 0x00, 0x00, 0x00, //       mov    r10, 0xf4        ; MR0: port
    0x49, 0xc7, 0xc0, 0x10, 0x00, 0x00, 0x00, //       mov    r8, 0x10         ; MR1: value
    0x48, 0xc7, 0xc2, 0xff, 0xff, 0xff, 0xff, //       mov    rdx, -1          ; Call
    0x0f, 0x05,                               //       syscall
    0xeb, 0xfe,                               // hang: jmp    hang
];

/// The ELF64 executable: ELF header, one loadable segment (the whole file), code, message.
pub fn elf() -> Vec<u8> {
    let code_offset = u64::from(ELF_HEADER_SIZE + PROGRAM_HEADER_SIZE);
    let file_size = code_offset + (CODE.len() + MESSAGE.len()) as u64;
    let mut elf = Vec::new();
    // e_ident: magic, 64-bit, little endian, version 1, System V ABI, padding.
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    elf.extend_from_slice(&[0; 8]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // e_type: executable
    elf.extend_from_slice(&62u16.to_le_bytes()); // e_machine: x86_64
    elf.extend_from_slice(&1u32.to_le_bytes()); // e_version
    elf.extend_from_slice(&(LOAD_ADDRESS + code_offset).to_le_bytes()); // e_entry
    elf.extend_from_slice(&u64::from(ELF_HEADER_SIZE).to_le_bytes()); // e_phoff
    elf.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no sections
    elf.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    elf.extend_from_slice(&ELF_HEADER_SIZE.to_le_bytes()); // e_ehsize
    elf.extend_from_slice(&PROGRAM_HEADER_SIZE.to_le_bytes()); // e_phentsize
    elf.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    elf.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
    elf.extend_from_slice(&1u32.to_le_bytes()); // p_type: PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // p_flags: read, execute
    elf.extend_from_slice(&0u64.to_le_bytes()); // p_offset
    elf.extend_from_slice(&LOAD_ADDRESS.to_le_bytes()); // p_vaddr
    elf.extend_from_slice(&LOAD_ADDRESS.to_le_bytes()); // p_paddr
    elf.extend_from_slice(&file_size.to_le_bytes()); // p_filesz
    elf.extend_from_slice(&file_size.to_le_bytes()); // p_memsz
    elf.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align
    elf.extend_from_slice(&CODE);
    elf.extend_from_slice(MESSAGE);
    elf
}

/// Writes the smoke root task under `target/qemu/` and returns its path.
pub fn write_root_task(workspace: &Workspace) -> Result<PathBuf> {
    let directory = workspace.target_directory.join("qemu");
    std::fs::create_dir_all(&directory).with_context(|| format!("cannot create {}", directory.display()))?;
    let path = directory.join("smoke-root-task.elf");
    std::fs::write(&path, elf()).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_have_their_declared_sizes() {
        let elf = elf();
        let code_offset = usize::from(ELF_HEADER_SIZE + PROGRAM_HEADER_SIZE);
        assert_eq!(&elf[code_offset..code_offset + CODE.len()], &CODE);
        assert_eq!(elf.len(), code_offset + CODE.len() + MESSAGE.len());
    }

    #[test]
    fn lea_points_at_the_message() {
        // rip-relative: the displacement counts from the end of the 7-byte instruction.
        let displacement = i32::from_le_bytes(CODE[3..7].try_into().unwrap());
        assert_eq!(7 + displacement as usize, CODE.len());
    }

    #[test]
    fn branches_land_on_the_loop_and_the_exit() {
        // jz at 14..16 goes to the exit block (51), jmp at 49..51 back to `next` (7).
        assert_eq!(16 + CODE[15] as usize, 51);
        assert_eq!(51 + CODE[50] as i8 as isize, 7);
        assert_eq!(&CODE[51..54], &[0x48, 0xc7, 0xc7]);
        assert_eq!(&CODE[7..11], &[0x44, 0x0f, 0xb6, 0x03]);
    }

    #[test]
    fn message_is_a_pass_marker() {
        assert!(MESSAGE.starts_with(crate::qemu::PASS_MARKER.as_bytes()));
    }
}
