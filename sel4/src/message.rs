//! `seL4_MessageInfo`: the word in `rsi` that describes an IPC message.

use crate::abi::message_info::{CAPS_UNWRAPPED_BITS, EXTRA_CAPS_BITS, LABEL_BITS, LENGTH_BITS};

const LENGTH_SHIFT: u32 = 0;
const EXTRA_CAPS_SHIFT: u32 = LENGTH_SHIFT + LENGTH_BITS;
const CAPS_UNWRAPPED_SHIFT: u32 = EXTRA_CAPS_SHIFT + EXTRA_CAPS_BITS;
const LABEL_SHIFT: u32 = CAPS_UNWRAPPED_SHIFT + CAPS_UNWRAPPED_BITS;

const fn mask(bits: u32) -> u64 {
    (1u64 << bits) - 1
}

/// Label, unwrapped-caps mask, extra cap count and length of a message.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct MessageInfo(u64);

impl MessageInfo {
    /// Builds a message info. Fields wider than the kernel's bitfield are truncated, as the
    /// kernel itself would read them.
    pub const fn new(label: u64, caps_unwrapped: u64, extra_caps: u64, length: u64) -> Self {
        MessageInfo(
            (label & mask(LABEL_BITS)) << LABEL_SHIFT
                | (caps_unwrapped & mask(CAPS_UNWRAPPED_BITS)) << CAPS_UNWRAPPED_SHIFT
                | (extra_caps & mask(EXTRA_CAPS_BITS)) << EXTRA_CAPS_SHIFT
                | (length & mask(LENGTH_BITS)) << LENGTH_SHIFT,
        )
    }

    /// Reinterprets a raw word (as returned in `rsi`).
    pub const fn from_word(word: u64) -> Self {
        MessageInfo(word)
    }

    /// The raw word.
    pub const fn to_word(self) -> u64 {
        self.0
    }

    /// The label: invocation label, fault type, or error code in a kernel reply.
    pub const fn label(self) -> u64 {
        (self.0 >> LABEL_SHIFT) & mask(LABEL_BITS)
    }

    /// Bit *i* set: extra cap *i* was unwrapped into its badge.
    pub const fn caps_unwrapped(self) -> u64 {
        (self.0 >> CAPS_UNWRAPPED_SHIFT) & mask(CAPS_UNWRAPPED_BITS)
    }

    /// Number of extra caps.
    pub const fn extra_caps(self) -> u64 {
        (self.0 >> EXTRA_CAPS_SHIFT) & mask(EXTRA_CAPS_BITS)
    }

    /// Number of message registers.
    pub const fn length(self) -> u64 {
        (self.0 >> LENGTH_SHIFT) & mask(LENGTH_BITS)
    }
}

impl core::fmt::Debug for MessageInfo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MessageInfo")
            .field("label", &self.label())
            .field("caps_unwrapped", &self.caps_unwrapped())
            .field("extra_caps", &self.extra_caps())
            .field("length", &self.length())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_fields_at_the_documented_shifts() {
        // label << 12 | capsUnwrapped << 9 | extraCaps << 7 | length
        let info = MessageInfo::new(37, 0b101, 2, 3);
        assert_eq!(info.to_word(), 37 << 12 | 0b101 << 9 | 2 << 7 | 3);
    }

    #[test]
    fn decodes_what_it_encodes() {
        let info = MessageInfo::new(0xfffff, 7, 3, 127);
        assert_eq!(info.label(), 0xfffff);
        assert_eq!(info.caps_unwrapped(), 7);
        assert_eq!(info.extra_caps(), 3);
        assert_eq!(info.length(), 127);
        assert_eq!(MessageInfo::from_word(info.to_word()), info);
    }

    #[test]
    fn truncates_oversized_fields() {
        let info = MessageInfo::new(1 << 20 | 5, 8, 4, 128);
        assert_eq!(info.label(), 5);
        assert_eq!(info.caps_unwrapped(), 0);
        assert_eq!(info.extra_caps(), 0);
        assert_eq!(info.length(), 0);
    }

    #[test]
    fn vm_fault_tag() {
        // The kernel sends a VM fault as label 5, length 4.
        let info = MessageInfo::from_word(5 << 12 | 4);
        assert_eq!((info.label(), info.length()), (5, 4));
    }
}
