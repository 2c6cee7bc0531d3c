//! The boot info page the kernel hands the root task (`seL4_BootInfo` in `bootinfo_types.h`),
//! read in place. The C struct is packed; every field here is a byte-aligned integer so zerocopy
//! can view the page without copying or unaligned references.

use zerocopy::byteorder::little_endian::U64;
use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

use crate::abi::PAGE_SIZE;
use crate::cap::{CPtr, Untyped};

/// `seL4_SlotRegion`: slots `start..end` of the root CNode.
#[derive(FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct RawSlotRegion {
    start: U64,
    end: U64,
}

/// The fixed part of `seL4_BootInfo`, up to `untypedList`.
#[derive(FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct RawBootInfoHeader {
    extra_len: U64,
    node_id: U64,
    num_nodes: U64,
    num_io_pt_levels: U64,
    ipc_buffer: U64,
    empty: RawSlotRegion,
    shared_frames: RawSlotRegion,
    user_image_frames: RawSlotRegion,
    user_image_paging: RawSlotRegion,
    io_space_caps: RawSlotRegion,
    extra_bi_pages: RawSlotRegion,
    init_thread_cnode_size_bits: u8,
    init_thread_domain: U64,
    arch_info: U64,
    untyped: RawSlotRegion,
}

/// `seL4_UntypedDesc`.
#[derive(FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct RawUntypedDescriptor {
    paddr: U64,
    padding1: u8,
    padding2: u8,
    size_bits: u8,
    is_device: u8,
}

/// Size in bytes of the fixed part of the boot info (before the untyped list).
pub const BOOT_INFO_HEADER_SIZE: usize = core::mem::size_of::<RawBootInfoHeader>();
/// Size in bytes of one untyped descriptor.
pub const UNTYPED_DESCRIPTOR_SIZE: usize = core::mem::size_of::<RawUntypedDescriptor>();

/// A range of root CNode slots, `start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotRange {
    /// First slot.
    pub start: u64,
    /// First slot after the range.
    pub end: u64,
}

impl SlotRange {
    /// Number of slots.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// No slots.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The slot at `index` in the range. (`start + index < end`, which is `index < len()` without
    /// the length's saturating subtraction: the fault path looks up a slot or two per fault.)
    #[inline]
    pub fn slot(&self, index: u64) -> Option<CPtr> {
        self.start.checked_add(index).filter(|&slot| slot < self.end).map(CPtr::new)
    }

    /// Every slot in order.
    pub fn iter(&self) -> impl Iterator<Item = CPtr> {
        (self.start..self.end).map(CPtr::new)
    }

    fn from_raw(raw: &RawSlotRegion) -> SlotRange {
        SlotRange { start: raw.start.get(), end: raw.end.get() }
    }
}

/// One untyped cap from the boot info.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UntypedInfo {
    /// Its cap.
    pub cap: Untyped,
    /// Physical address of the memory.
    pub paddr: u64,
    /// The memory is 2^`size_bits` bytes.
    pub size_bits: u8,
    /// Device memory (MMIO): not for ordinary kernel objects or client frames.
    pub is_device: bool,
}

impl UntypedInfo {
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        1u64.checked_shl(u32::from(self.size_bits)).unwrap_or(0)
    }
}

/// Why a byte buffer is not a boot info.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootInfoError {
    /// Shorter than the fixed part.
    TooShort {
        /// Bytes available.
        length: usize,
    },
    /// The untyped slot range claims more descriptors than the buffer holds.
    UntypedListTooLong {
        /// Descriptors claimed.
        claimed: u64,
        /// Descriptors that fit.
        fit: usize,
    },
}

/// The boot info, viewed in place.
#[derive(Clone, Copy)]
pub struct BootInfo<'a> {
    header: &'a RawBootInfoHeader,
    untyped_list: &'a [RawUntypedDescriptor],
}

impl<'a> BootInfo<'a> {
    /// Views `bytes` (the boot info page) as a boot info.
    pub fn parse(bytes: &'a [u8]) -> Result<BootInfo<'a>, BootInfoError> {
        let (header, rest) = RawBootInfoHeader::ref_from_prefix(bytes)
            .map_err(|_| BootInfoError::TooShort { length: bytes.len() })?;
        let claimed = SlotRange::from_raw(&header.untyped).len();
        let fit = rest.len() / UNTYPED_DESCRIPTOR_SIZE;
        let count = usize::try_from(claimed)
            .ok()
            .filter(|count| *count <= fit)
            .ok_or(BootInfoError::UntypedListTooLong { claimed, fit })?;
        let (untyped_list, _) = <[RawUntypedDescriptor]>::ref_from_prefix_with_elems(rest, count)
            .map_err(|_| BootInfoError::UntypedListTooLong { claimed, fit })?;
        Ok(BootInfo { header, untyped_list })
    }

    /// Views the boot info page the kernel passed to the root task.
    ///
    /// # Safety
    /// `pointer` must point to the boot info page (one page, mapped readable, never written
    /// while the returned value lives) — what the kernel passes in `rdi` at entry.
    pub unsafe fn from_pointer(pointer: *const u8) -> Result<BootInfo<'static>, BootInfoError> {
        // SAFETY: the caller guarantees one readable, unchanging page at `pointer`.
        let bytes = unsafe { core::slice::from_raw_parts(pointer, PAGE_SIZE) };
        BootInfo::parse(bytes)
    }

    /// Length of the extra boot info chunks that follow the page.
    pub fn extra_length(&self) -> u64 {
        self.header.extra_len.get()
    }

    /// This node's ID (0 on a uniprocessor).
    pub fn node_id(&self) -> u64 {
        self.header.node_id.get()
    }

    /// Number of nodes.
    pub fn node_count(&self) -> u64 {
        self.header.num_nodes.get()
    }

    /// IOMMU page-table levels (0 without an IOMMU).
    pub fn io_page_table_levels(&self) -> u64 {
        self.header.num_io_pt_levels.get()
    }

    /// Virtual address of the root task's IPC buffer.
    pub fn ipc_buffer_address(&self) -> u64 {
        self.header.ipc_buffer.get()
    }

    /// Empty slots of the root CNode, free for the root task to fill.
    pub fn empty(&self) -> SlotRange {
        SlotRange::from_raw(&self.header.empty)
    }

    /// Frames shared between nodes.
    pub fn shared_frames(&self) -> SlotRange {
        SlotRange::from_raw(&self.header.shared_frames)
    }

    /// One frame cap per 4 KiB page of the root task's loaded image, in address order.
    pub fn user_image_frames(&self) -> SlotRange {
        SlotRange::from_raw(&self.header.user_image_frames)
    }

    /// Paging structures the kernel made for the root task's image.
    pub fn user_image_paging(&self) -> SlotRange {
        SlotRange::from_raw(&self.header.user_image_paging)
    }

    /// IOSpace caps (ARM SMMU; empty here).
    pub fn io_space_caps(&self) -> SlotRange {
        SlotRange::from_raw(&self.header.io_space_caps)
    }

    /// Frames backing the extra boot info.
    pub fn extra_boot_info_pages(&self) -> SlotRange {
        SlotRange::from_raw(&self.header.extra_bi_pages)
    }

    /// The root CNode has 2^`bits` slots.
    pub fn cnode_size_bits(&self) -> u8 {
        self.header.init_thread_cnode_size_bits
    }

    /// The root task's scheduling domain.
    pub fn domain(&self) -> u64 {
        self.header.init_thread_domain.get()
    }

    /// Architecture word: the TSC frequency in MHz on x86.
    pub fn arch_info(&self) -> u64 {
        self.header.arch_info.get()
    }

    /// Slots holding the untyped caps.
    pub fn untyped(&self) -> SlotRange {
        SlotRange::from_raw(&self.header.untyped)
    }

    /// Every untyped cap with its descriptor, in slot order.
    pub fn untyped_list(&self) -> impl ExactSizeIterator<Item = UntypedInfo> + 'a {
        let first = self.header.untyped.start.get();
        self.untyped_list.iter().enumerate().map(move |(index, raw)| UntypedInfo {
            cap: Untyped::new(first + index as u64),
            paddr: raw.paddr.get(),
            size_bits: raw.size_bits,
            is_device: raw.is_device != 0,
        })
    }
}

impl core::fmt::Debug for BootInfo<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BootInfo")
            .field("node_id", &self.node_id())
            .field("ipc_buffer", &self.ipc_buffer_address())
            .field("empty", &self.empty())
            .field("user_image_frames", &self.user_image_frames())
            .field("user_image_paging", &self.user_image_paging())
            .field("cnode_size_bits", &self.cnode_size_bits())
            .field("untyped", &self.untyped())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a boot info the way the packed C struct lays it out, field by field.
    fn synthetic(untyped: &[(u64, u8, bool)]) -> Vec<u8> {
        let mut bytes = Vec::new();
        let word = |bytes: &mut Vec<u8>, value: u64| bytes.extend_from_slice(&value.to_le_bytes());
        word(&mut bytes, 0); // extraLen
        word(&mut bytes, 0); // nodeID
        word(&mut bytes, 1); // numNodes
        word(&mut bytes, 0); // numIOPTLevels
        word(&mut bytes, 0x40_5000); // ipcBuffer
        for (start, end) in [(300, 65536), (0, 0), (12, 40), (40, 43), (0, 0), (0, 0)] {
            word(&mut bytes, start);
            word(&mut bytes, end);
        }
        bytes.push(16); // initThreadCNodeSizeBits
        word(&mut bytes, 0); // initThreadDomain
        word(&mut bytes, 2_000); // archInfo
        word(&mut bytes, 43); // untyped.start
        word(&mut bytes, 43 + untyped.len() as u64); // untyped.end
        assert_eq!(bytes.len(), BOOT_INFO_HEADER_SIZE);
        for &(paddr, size_bits, is_device) in untyped {
            word(&mut bytes, paddr);
            bytes.extend_from_slice(&[0, 0, size_bits, u8::from(is_device)]);
        }
        bytes.resize(PAGE_SIZE, 0xAA);
        bytes
    }

    #[test]
    fn layout_matches_the_packed_c_struct() {
        // 5 words, 6 slot regions, one byte, 2 words, one slot region.
        assert_eq!(BOOT_INFO_HEADER_SIZE, 5 * 8 + 6 * 16 + 1 + 2 * 8 + 16);
        assert_eq!(UNTYPED_DESCRIPTOR_SIZE, 12);
    }

    #[test]
    fn parses_fields_and_untyped_list() {
        let bytes = synthetic(&[(0x10_0000, 20, false), (0xfee0_0000, 12, true)]);
        let info = BootInfo::parse(&bytes).unwrap();
        assert_eq!(info.node_count(), 1);
        assert_eq!(info.ipc_buffer_address(), 0x40_5000);
        assert_eq!(info.empty(), SlotRange { start: 300, end: 65536 });
        assert_eq!(info.empty().len(), 65236);
        assert_eq!(info.user_image_frames(), SlotRange { start: 12, end: 40 });
        assert_eq!(info.user_image_paging().len(), 3);
        assert_eq!(info.cnode_size_bits(), 16);
        assert_eq!(info.arch_info(), 2_000);
        let untyped: Vec<_> = info.untyped_list().collect();
        assert_eq!(
            untyped,
            vec![
                UntypedInfo { cap: Untyped::new(43), paddr: 0x10_0000, size_bits: 20, is_device: false },
                UntypedInfo { cap: Untyped::new(44), paddr: 0xfee0_0000, size_bits: 12, is_device: true },
            ]
        );
        assert_eq!(untyped[0].size(), 1 << 20);
    }

    #[test]
    fn parses_at_any_alignment() {
        let bytes = synthetic(&[(0x1000, 12, false)]);
        let mut shifted = vec![0u8; 3];
        shifted.extend_from_slice(&bytes);
        let info = BootInfo::parse(&shifted[3..]).unwrap();
        assert_eq!(info.untyped_list().len(), 1);
    }

    #[test]
    fn refuses_short_buffers() {
        let bytes = synthetic(&[(0x1000, 12, false)]);
        assert_eq!(BootInfo::parse(&bytes[..10]).unwrap_err(), BootInfoError::TooShort { length: 10 });
        let cut = BOOT_INFO_HEADER_SIZE + 5;
        assert_eq!(
            BootInfo::parse(&bytes[..cut]).unwrap_err(),
            BootInfoError::UntypedListTooLong { claimed: 1, fit: 0 }
        );
    }

    #[test]
    fn slot_range_helpers() {
        let range = SlotRange { start: 10, end: 13 };
        assert_eq!(range.slot(2), Some(CPtr::new(12)));
        assert_eq!(range.slot(3), None);
        assert_eq!(range.slot(u64::MAX), None, "no wrap past the end");
        assert_eq!(SlotRange { start: 13, end: 10 }.slot(0), None, "a reversed range has no slot");
        assert_eq!(range.iter().count(), 3);
        assert!(SlotRange { start: 5, end: 5 }.is_empty());
    }
}
