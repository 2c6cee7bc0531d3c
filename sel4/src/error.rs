//! seL4 error codes and lookup failures, decoded from a kernel reply.

use crate::abi::lookup_failure;
use crate::message::MessageInfo;

/// Why a capability lookup failed (`seL4_LookupFailureType` plus its detail words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupFailure {
    /// The root of the lookup was not a CNode.
    InvalidRoot,
    /// An empty slot (or, for paging structures, a missing level) with this many bits left.
    MissingCapability {
        /// Bits of the address still to resolve.
        bits_left: u64,
    },
    /// The lookup ended at the wrong depth.
    DepthMismatch {
        /// Bits still to resolve.
        bits_left: u64,
        /// Bits the CNode would have resolved.
        bits_found: u64,
    },
    /// A guard did not match.
    GuardMismatch {
        /// Bits still to resolve.
        bits_left: u64,
        /// The guard found.
        guard_found: u64,
        /// Size of the guard found.
        bits_found: u64,
    },
}

impl LookupFailure {
    /// Decodes a lookup failure whose type word is `mr(0)` and detail words follow.
    /// `None` for `NoFailure` or an unknown type.
    pub fn decode(mr: impl Fn(usize) -> u64) -> Option<LookupFailure> {
        match mr(0) {
            lookup_failure::INVALID_ROOT => Some(LookupFailure::InvalidRoot),
            lookup_failure::MISSING_CAPABILITY => Some(LookupFailure::MissingCapability { bits_left: mr(1) }),
            lookup_failure::DEPTH_MISMATCH => {
                Some(LookupFailure::DepthMismatch { bits_left: mr(1), bits_found: mr(2) })
            }
            lookup_failure::GUARD_MISMATCH => {
                Some(LookupFailure::GuardMismatch { bits_left: mr(1), guard_found: mr(2), bits_found: mr(3) })
            }
            _ => None,
        }
    }
}

/// The error codes of `errors.h`.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ErrorCode {
    InvalidArgument = 1,
    InvalidCapability = 2,
    IllegalOperation = 3,
    RangeError = 4,
    AlignmentError = 5,
    FailedLookup = 6,
    TruncatedMessage = 7,
    DeleteFirst = 8,
    RevokeFirst = 9,
    NotEnoughMemory = 10,
}

impl ErrorCode {
    /// Every error code with its `errors.h` name.
    pub const ALL: &'static [(&'static str, ErrorCode)] = &[
        ("seL4_InvalidArgument", ErrorCode::InvalidArgument),
        ("seL4_InvalidCapability", ErrorCode::InvalidCapability),
        ("seL4_IllegalOperation", ErrorCode::IllegalOperation),
        ("seL4_RangeError", ErrorCode::RangeError),
        ("seL4_AlignmentError", ErrorCode::AlignmentError),
        ("seL4_FailedLookup", ErrorCode::FailedLookup),
        ("seL4_TruncatedMessage", ErrorCode::TruncatedMessage),
        ("seL4_DeleteFirst", ErrorCode::DeleteFirst),
        ("seL4_RevokeFirst", ErrorCode::RevokeFirst),
        ("seL4_NotEnoughMemory", ErrorCode::NotEnoughMemory),
    ];

    /// The code for a reply label, if it is one.
    pub fn from_label(label: u64) -> Option<ErrorCode> {
        Self::ALL.iter().find(|(_, code)| *code as u64 == label).map(|(_, code)| *code)
    }
}

/// A failed invocation, with the detail words the kernel sends (`setMRs_syscall_error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Argument number `argument` is invalid.
    InvalidArgument {
        /// Index of the offending argument.
        argument: u64,
    },
    /// A cap passed to the invocation is invalid.
    InvalidCapability {
        /// Index of the offending cap as the kernel counts (`invalidCapNumber`).
        cap: u64,
    },
    /// The operation is not allowed on this object.
    IllegalOperation,
    /// A value is outside `min..=max`.
    RangeError {
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// Misaligned address or size.
    AlignmentError,
    /// A cap lookup failed.
    FailedLookup {
        /// The failed lookup was of a source cap.
        source: bool,
        /// What went wrong; `None` if the kernel sent an unknown type.
        failure: Option<LookupFailure>,
    },
    /// The message was too short for the invocation.
    TruncatedMessage,
    /// The destination slot is not empty.
    DeleteFirst,
    /// The object has children; revoke first.
    RevokeFirst,
    /// The untyped has only `available` bytes left.
    NotEnoughMemory {
        /// Bytes left in the untyped.
        available: u64,
    },
    /// A reply label that is not an error code this binding knows.
    Unknown {
        /// The reply label.
        label: u64,
    },
}

/// Result of an invocation.
pub type Result<T> = core::result::Result<T, Error>;

impl Error {
    /// Decodes the kernel's reply to an invocation: `None` for success (label 0).
    /// `mr(i)` returns message register *i* of the reply.
    pub fn from_reply(info: MessageInfo, mr: impl Fn(usize) -> u64) -> Option<Error> {
        let label = info.label();
        if label == 0 {
            return None;
        }
        let Some(code) = ErrorCode::from_label(label) else {
            return Some(Error::Unknown { label });
        };
        Some(match code {
            ErrorCode::InvalidArgument => Error::InvalidArgument { argument: mr(0) },
            ErrorCode::InvalidCapability => Error::InvalidCapability { cap: mr(0) },
            ErrorCode::IllegalOperation => Error::IllegalOperation,
            ErrorCode::RangeError => Error::RangeError { min: mr(0), max: mr(1) },
            ErrorCode::AlignmentError => Error::AlignmentError,
            ErrorCode::FailedLookup => {
                Error::FailedLookup { source: mr(0) != 0, failure: LookupFailure::decode(|i| mr(1 + i)) }
            }
            ErrorCode::TruncatedMessage => Error::TruncatedMessage,
            ErrorCode::DeleteFirst => Error::DeleteFirst,
            ErrorCode::RevokeFirst => Error::RevokeFirst,
            ErrorCode::NotEnoughMemory => Error::NotEnoughMemory { available: mr(0) },
        })
    }

    /// The error code (the reply label).
    pub fn code(&self) -> u64 {
        match self {
            Error::InvalidArgument { .. } => ErrorCode::InvalidArgument as u64,
            Error::InvalidCapability { .. } => ErrorCode::InvalidCapability as u64,
            Error::IllegalOperation => ErrorCode::IllegalOperation as u64,
            Error::RangeError { .. } => ErrorCode::RangeError as u64,
            Error::AlignmentError => ErrorCode::AlignmentError as u64,
            Error::FailedLookup { .. } => ErrorCode::FailedLookup as u64,
            Error::TruncatedMessage => ErrorCode::TruncatedMessage as u64,
            Error::DeleteFirst => ErrorCode::DeleteFirst as u64,
            Error::RevokeFirst => ErrorCode::RevokeFirst as u64,
            Error::NotEnoughMemory { .. } => ErrorCode::NotEnoughMemory as u64,
            Error::Unknown { label } => *label,
        }
    }

    /// For a map call that failed because a paging level is missing: the bits left, which name
    /// the level (see [`crate::abi::bits_left`]).
    pub fn missing_level_bits_left(&self) -> Option<u64> {
        match self {
            Error::FailedLookup { failure: Some(LookupFailure::MissingCapability { bits_left }), .. } => {
                Some(*bits_left)
            }
            _ => None,
        }
    }
}

impl core::fmt::Display for LookupFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::InvalidRoot => f.write_str("the CSpace root is not a CNode"),
            // With no bits left the slot was reached: it holds no cap the operation can use (none,
            // one of another type, or one without the right, such as Recv on a Send-only endpoint).
            Self::MissingCapability { bits_left: 0 } => {
                f.write_str("the slot holds no cap of the type and rights this needs")
            }
            Self::MissingCapability { bits_left } => write!(f, "empty slot with {bits_left} bits left"),
            Self::DepthMismatch { bits_left, bits_found } => {
                write!(f, "depth mismatch: {bits_left} bits left, a CNode resolving {bits_found}")
            }
            Self::GuardMismatch { bits_left, guard_found, bits_found } => {
                write!(
                    f,
                    "guard mismatch: {bits_left} bits left, guard {guard_found:#x} of {bits_found} bits"
                )
            }
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "seL4 error {}: {:?}", self.code(), self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(label: u64, words: &[u64]) -> Option<Error> {
        let info = MessageInfo::new(label, 0, 0, words.len() as u64);
        Error::from_reply(info, |i| words.get(i).copied().unwrap_or(0))
    }

    #[test]
    fn lookup_failures_read_as_words() {
        let guard = LookupFailure::GuardMismatch { bits_left: 64, guard_found: 0, bits_found: 60 };
        assert_eq!(guard.to_string(), "guard mismatch: 64 bits left, guard 0x0 of 60 bits");
        let missing = LookupFailure::MissingCapability { bits_left: 21 };
        assert_eq!(missing.to_string(), "empty slot with 21 bits left");
        let unusable = LookupFailure::MissingCapability { bits_left: 0 };
        assert_eq!(unusable.to_string(), "the slot holds no cap of the type and rights this needs");
    }

    #[test]
    fn success_is_not_an_error() {
        assert_eq!(reply(0, &[]), None);
    }

    #[test]
    fn failed_lookup_names_the_missing_paging_level() {
        // Page_Map with no page table: FailedLookup, source 0, MissingCapability, 21 bits left.
        let error = reply(6, &[0, 2, 21]).unwrap();
        assert_eq!(
            error,
            Error::FailedLookup {
                source: false,
                failure: Some(LookupFailure::MissingCapability { bits_left: 21 })
            }
        );
        assert_eq!(error.missing_level_bits_left(), Some(21));
        assert_eq!(error.code(), 6);
    }

    #[test]
    fn detail_words() {
        assert_eq!(reply(4, &[1, 255]), Some(Error::RangeError { min: 1, max: 255 }));
        assert_eq!(reply(10, &[4096]), Some(Error::NotEnoughMemory { available: 4096 }));
        assert_eq!(reply(2, &[1]), Some(Error::InvalidCapability { cap: 1 }));
        assert_eq!(reply(99, &[]), Some(Error::Unknown { label: 99 }));
        assert_eq!(reply(8, &[]).unwrap().missing_level_bits_left(), None);
    }

    #[test]
    fn guard_mismatch() {
        assert_eq!(
            LookupFailure::decode(|i| [4, 10, 3, 2][i]),
            Some(LookupFailure::GuardMismatch { bits_left: 10, guard_found: 3, bits_found: 2 })
        );
        assert_eq!(LookupFailure::decode(|_| 0), None);
    }
}
