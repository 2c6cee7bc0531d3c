//! The advise call's vocabulary: what a client may say about a range of its memory, and why the
//! pager may not follow it. `Pager::advise` carries it out.

use core::fmt;

use crate::fault::RefusalReason;
use crate::ClientId;

pub use abi::Advice;

/// Pages after the faulting one that a fault maps in an area advised sequential.
pub const SEQUENTIAL_FAULT_AROUND: u32 = abi::advice::SEQUENTIAL_PAGES as u32 - 1;

/// Why an advice was not (wholly) followed. None of these stops the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdviseError {
    UnknownClient(ClientId),
    /// The start is not page aligned or the length is 0.
    Invalid,
    /// `address` lies in none of the client's areas, or in one the pager does not serve (a guard
    /// page, a reserved area). Nothing was done.
    OutsideAreas {
        address: u64,
    },
    /// Will-need could not resolve a page (budget, frames, slots or a paging structure ran out)
    /// after resolving `pages`; the pages resolved stay mapped.
    Unresolved {
        pages: u32,
        reason: RefusalReason,
    },
}

impl AdviseError {
    /// The ABI's status code for this error.
    pub const fn status(&self) -> u64 {
        match self {
            Self::UnknownClient(_) | Self::OutsideAreas { .. } => abi::advise_status::OUTSIDE_AREAS,
            Self::Invalid => abi::advise_status::INVALID,
            Self::Unresolved { .. } => abi::advise_status::NO_MEMORY,
        }
    }
}

impl fmt::Display for AdviseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownClient(c) => write!(f, "unknown client {}", c.0),
            Self::Invalid => f.write_str("the start is not page aligned or the length is 0"),
            Self::OutsideAreas { address } => write!(f, "{address:#x} lies outside the client's areas"),
            Self::Unresolved { pages, reason } => write!(f, "stopped after {pages} pages: {reason}"),
        }
    }
}
