//! The heap: an app's global allocator over the heap area the pager gives it.
//!
//! Opt-in: an app that wants `alloc` (`Vec`, `Box`, collections) names its main with
//! [`entry_with_heap!`](crate::entry_with_heap) instead of [`entry!`](crate::entry). That defines
//! a `#[global_allocator]` of type [`Heap`] and, before `main`, gives it the whole heap area of
//! the entry registers (docs/app-abi.md: rsi base, rdx size; the manifest's `heap`). Apps that
//! keep [`entry!`](crate::entry) link none of this: their code and faults stay as they were.
//!
//! Design principles:
//! - **No unsafe code here.** The binding's [`sel4::area::take`] turns the area of the entry
//!   registers, as its `_start` found it, into a `&'static mut [MaybeUninit<u8>]` (once per program), and `linked_list_allocator` takes that
//!   slice safely. `talc` is faster but can only be given memory by an unsafe call, which the
//!   project keeps to the binding and the root task.
//! - **Nothing is touched ahead of need.** The allocator writes its bookkeeping into the holes
//!   it keeps; every page of the area is faulted in when an allocation first writes it, as the
//!   pager's policy decides.
//! - **A missing heap is an error, not a surprise later**: [`install`] says why it cannot give the
//!   area. An allocation the heap cannot satisfy panics ("memory allocation of N bytes failed"),
//!   which prints and exits with [`PANIC_EXIT_CODE`](crate::PANIC_EXIT_CODE).

use core::fmt;

use crate::Context;

/// The allocator type an app's `#[global_allocator]` has: a first-fit free list behind a
/// spinlock (apps are one thread, so the lock is never contended; `GlobalAlloc` wants `Sync`).
pub type Heap = linked_list_allocator::LockedHeap;

/// The exit code of an app that asked for a heap and could not have one.
pub const NO_HEAP_EXIT_CODE: i32 = 102;

/// Why the heap area could not be given to the allocator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeapError {
    /// The manifest gives this app no heap.
    NoHeapArea,
    /// The allocator has its memory already.
    AlreadyInstalled,
    /// The binding refused the area.
    Area(sel4::area::AreaError),
}

impl fmt::Display for HeapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeapError::NoHeapArea => {
                f.write_str("this app has no heap area: give it a `heap` in the manifest")
            }
            HeapError::AlreadyInstalled => f.write_str("the heap has its memory already"),
            HeapError::Area(error) => write!(f, "the heap area cannot be used: {error}"),
        }
    }
}

/// An empty heap, for the `#[global_allocator]` static; [`install`] gives it its memory.
pub const fn empty() -> Heap {
    Heap::empty()
}

/// Gives `heap` the whole heap area named by `context`. Returns the bytes it can allocate from.
pub fn install(heap: &Heap, context: &Context) -> Result<u64, HeapError> {
    context.heap_base().ok_or(HeapError::NoHeapArea)?;
    let mut allocator = heap.lock();
    if allocator.size() != 0 {
        return Err(HeapError::AlreadyInstalled);
    }
    let area = sel4::area::take(context.heap_area()).map_err(HeapError::Area)?;
    allocator.init_from_slice(area);
    Ok(allocator.size() as u64)
}

/// Names the app's `fn main(&Context) -> i32` as the program entry, like [`entry!`](crate::entry),
/// with a global allocator over the app's heap area (see the [`heap`](crate::heap) module).
///
/// An app that has no heap area, or one the binding refuses, prints `heap: <why>` and exits with
/// [`NO_HEAP_EXIT_CODE`] before `main` runs. On the host, where apps are only compiled, `std`'s
/// allocator stands in and [`entry!`](crate::entry) does the rest.
#[macro_export]
macro_rules! entry_with_heap {
    ($main:path) => {
        #[cfg(target_os = "none")]
        #[global_allocator]
        static __APP_RUNTIME_HEAP: $crate::heap::Heap = $crate::heap::empty();

        fn __app_runtime_main_with_heap(context: &$crate::Context) -> i32 {
            #[cfg(target_os = "none")]
            if let Err(error) = $crate::heap::install(&__APP_RUNTIME_HEAP, context) {
                $crate::println!("heap: {error}");
                return $crate::heap::NO_HEAP_EXIT_CODE;
            }
            $main(context)
        }

        $crate::entry!(__app_runtime_main_with_heap);
    };
}
