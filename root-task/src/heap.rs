//! The root task's heap: the global allocator behind the pager's `alloc` tables.
//!
//! A static arena in `.bss` (so part of the root task's image), carved by a bump pointer into
//! power-of-two blocks with one free list per size. A block of 2^k bytes is aligned to
//! min(2^k, 4096), so any layout whose alignment is at most its rounded size (and at most a page)
//! fits any free block of its class. When the bump pointer must skip ahead to align a block, the
//! gap is cut into naturally aligned power-of-two pieces that go on their free lists, so nothing
//! is lost. Freed blocks are reused, never merged: the pager's tables grow by doubling and shrink
//! rarely, which suits segregated lists; the waste is bounded by the rounding (less than 2×).
//!
//! The root task is one thread with no interrupt handlers, so there is no concurrency; a busy
//! flag still turns an unexpected re-entry into a failed allocation instead of corruption.
//!
//! An image whose apps evict adds memory for the pager's compressed store once at boot
//! ([`add_memory`]: frames retyped from untyped memory and mapped into the root task): a second
//! region with its own bump pointer, used when the arena's is spent, its freed blocks on the same
//! lists. So the arena, and the root task's image, stay the same size for every other image.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicBool, Ordering};

/// Bytes of the arena, part of the root task's image (one root-CNode slot and one boot frame per
/// page). The pager's tables grow with the pool, its cap copies and the pages resident, so the
/// root CNode (2^18 slots for frames and copies) bounds them: the scale images, 102,500 frames
/// and 100,000 resident pages in one client or 64 clients of 1,024 pages, peak near 4.3 MiB
/// (`manifests/bench/scale/`), where the former 4 MiB arena ran out.
pub const HEAP_SIZE: usize = 8 << 20;
/// Smallest block: room for the free-list link, and the alignment of most layouts.
const MIN_CLASS: u32 = 4;
/// Largest block class: the whole arena.
const MAX_CLASS: u32 = HEAP_SIZE.trailing_zeros();
const CLASSES: usize = (MAX_CLASS - MIN_CLASS + 1) as usize;
/// Blocks are aligned to their size up to this.
const MAX_BLOCK_ALIGN: usize = 4096;

#[repr(C, align(4096))]
struct Arena(UnsafeCell<[u8; HEAP_SIZE]>);

/// A free block's first word: the next free block of its class.
struct FreeBlock {
    next: Option<NonNull<FreeBlock>>,
}

/// Memory added after boot ([`add_memory`]).
#[derive(Clone, Copy)]
struct Extra {
    base: *mut u8,
    size: usize,
    /// Offset of the first byte never handed out.
    bump: usize,
}

struct State {
    /// Offset of the first byte of the arena never handed out.
    bump: usize,
    extra: Option<Extra>,
    free: [Option<NonNull<FreeBlock>>; CLASSES],
    in_use: usize,
    peak: usize,
}

/// The allocator.
pub struct Heap {
    arena: Arena,
    state: UnsafeCell<State>,
    busy: AtomicBool,
}

// SAFETY: the root task runs one thread and no signal or interrupt handlers, and every access to
// `state` and `arena` happens while `busy` is held (see `with_state`), so there is never more than
// one user of the interior data.
unsafe impl Sync for Heap {}

#[cfg_attr(target_os = "none", global_allocator)]
static HEAP: Heap = Heap::new();

/// Bytes allocated now and at most so far (block sizes, after rounding).
pub fn usage() -> (usize, usize) {
    HEAP.with_state(|state, _| (state.in_use, state.peak)).unwrap_or((0, 0))
}

/// Gives the heap `size` more bytes at `base`, once; `false` if it has some already.
///
/// # Safety
///
/// `base .. base + size` is page aligned, mapped readable and writable for the rest of the
/// program, and used by nothing else, now or later.
pub unsafe fn add_memory(base: *mut u8, size: usize) -> bool {
    HEAP.add_memory(base, size)
}

impl Heap {
    const fn new() -> Heap {
        Heap {
            arena: Arena(UnsafeCell::new([0; HEAP_SIZE])),
            state: UnsafeCell::new(State { bump: 0, extra: None, free: [None; CLASSES], in_use: 0, peak: 0 }),
            busy: AtomicBool::new(false),
        }
    }

    /// See [`add_memory`]; the caller keeps its safety contract.
    fn add_memory(&self, base: *mut u8, size: usize) -> bool {
        self.with_state(|state, _| {
            if state.extra.is_some() || !(base as usize).is_multiple_of(MAX_BLOCK_ALIGN) {
                return false;
            }
            state.extra = Some(Extra { base, size, bump: 0 });
            true
        })
        .unwrap_or(false)
    }

    /// Runs `f` with exclusive access to the state and the arena's base; `None` on re-entry.
    fn with_state<R>(&self, f: impl FnOnce(&mut State, *mut u8) -> R) -> Option<R> {
        if self.busy.swap(true, Ordering::Acquire) {
            return None;
        }
        // SAFETY: `busy` was false and is now ours, so no other reference to the state exists
        // (see the `Sync` impl); it is released below before anyone else can take it.
        let state = unsafe { &mut *self.state.get() };
        let result = f(state, self.arena.0.get().cast::<u8>());
        self.busy.store(false, Ordering::Release);
        Some(result)
    }
}

/// The class (log2 of the block size) for a layout, or `None` if it cannot be served.
fn class_of(layout: Layout) -> Option<u32> {
    if layout.align() > MAX_BLOCK_ALIGN {
        return None;
    }
    let size = layout.size().max(layout.align()).max(1 << MIN_CLASS).checked_next_power_of_two()?;
    let class = size.trailing_zeros();
    (class <= MAX_CLASS).then_some(class)
}

fn block_align(class: u32) -> usize {
    (1usize << class).min(MAX_BLOCK_ALIGN)
}

impl State {
    fn push(&mut self, block: *mut u8, class: u32) {
        let block = block.cast::<FreeBlock>();
        let index = (class - MIN_CLASS) as usize;
        // SAFETY: `block .. block + 2^class` lies inside the arena or the added memory, is aligned
        // to at least 16 and is handed out to no one: it is a freed block or a fresh gap. Writing
        // the link into its first word is the only use.
        unsafe { block.write(FreeBlock { next: self.free[index] }) };
        self.free[index] = NonNull::new(block);
    }

    fn pop(&mut self, class: u32) -> Option<*mut u8> {
        let index = (class - MIN_CLASS) as usize;
        let block = self.free[index]?;
        // SAFETY: every pointer on a free list was written by `push` and its block has not been
        // handed out since, so it holds a valid `FreeBlock`.
        self.free[index] = unsafe { block.as_ptr().read() }.next;
        Some(block.as_ptr().cast())
    }

    /// A fresh block from the arena's bump pointer, else from the added memory's.
    fn bump(&mut self, base: *mut u8, class: u32) -> Option<*mut u8> {
        let mut bump = self.bump;
        if let Some(block) = self.bump_in(base, HEAP_SIZE, &mut bump, class) {
            self.bump = bump;
            return Some(block);
        }
        self.bump = bump;
        let mut extra = self.extra?;
        let block = self.bump_in(extra.base, extra.size, &mut extra.bump, class);
        self.extra = Some(extra);
        block
    }

    /// A fresh block from the region of `size` bytes at `base` whose bump offset is `bump`,
    /// cutting any alignment gap into free blocks.
    fn bump_in(&mut self, base: *mut u8, size: usize, bump: &mut usize, class: u32) -> Option<*mut u8> {
        let block = 1usize << class;
        let align = block_align(class);
        let start = bump.next_multiple_of(align);
        if start.checked_add(block)? > size {
            return None;
        }
        while *bump < start {
            // The largest naturally aligned piece at `bump` that stays below `start`.
            let mut piece = 1usize << bump.trailing_zeros();
            while *bump + piece > start {
                piece /= 2;
            }
            self.push(base.wrapping_add(*bump), piece.trailing_zeros());
            *bump += piece;
        }
        *bump = start + block;
        Some(base.wrapping_add(start))
    }

    /// Whether `block` lies in the arena at `base` or the added memory.
    fn owns(&self, base: *mut u8, block: *mut u8) -> bool {
        let inside = |base: *mut u8, size: usize| (block as usize).wrapping_sub(base as usize) < size;
        inside(base, HEAP_SIZE) || self.extra.is_some_and(|extra| inside(extra.base, extra.size))
    }
}

// SAFETY: `alloc` returns null or a block of at least `layout.size()` bytes aligned to
// `layout.align()` (see `class_of` and `block_align`) that no other live allocation overlaps:
// blocks come from the bump pointer once or from a free list they were pushed on by `dealloc`,
// which only receives blocks `alloc` handed out (the `GlobalAlloc` contract).
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(layout) else {
            return ptr::null_mut();
        };
        self.with_state(|state, base| {
            let block = state.pop(class).or_else(|| state.bump(base, class));
            if block.is_some() {
                state.in_use += 1 << class;
                state.peak = state.peak.max(state.in_use);
            }
            block.unwrap_or(ptr::null_mut())
        })
        .unwrap_or(ptr::null_mut())
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let Some(class) = class_of(layout) else {
            return;
        };
        self.with_state(|state, base| {
            if state.owns(base, block) {
                state.in_use -= 1 << class;
                state.push(block, class);
            }
        });
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `GlobalAlloc::realloc`'s contract: `layout.align()` is a valid alignment and
        // `new_size`, rounded to it, does not overflow.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if class_of(layout).is_some() && class_of(layout) == class_of(new_layout) {
            return block;
        }
        // SAFETY: as for any `GlobalAlloc::alloc` call; the layout has a non-zero size.
        let new_block = unsafe { self.alloc(new_layout) };
        if !new_block.is_null() {
            // SAFETY: both blocks are live, distinct allocations at least
            // `min(old, new)` bytes long.
            unsafe { ptr::copy_nonoverlapping(block, new_block, layout.size().min(new_size)) };
            // SAFETY: `block` was allocated by this allocator with `layout` (the caller's
            // contract) and is not used after this.
            unsafe { self.dealloc(block, layout) };
        }
        new_block
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_up_and_respect_alignment() {
        assert_eq!(class_of(Layout::from_size_align(1, 1).unwrap()), Some(4));
        assert_eq!(class_of(Layout::from_size_align(17, 8).unwrap()), Some(5));
        assert_eq!(class_of(Layout::from_size_align(8, 64).unwrap()), Some(6));
        assert_eq!(class_of(Layout::from_size_align(5000, 8).unwrap()), Some(13));
        assert_eq!(class_of(Layout::from_size_align(16, 8192).unwrap()), None);
        assert_eq!(block_align(13), 4096);
        assert_eq!(block_align(5), 32);
    }

    #[test]
    fn blocks_are_aligned_distinct_and_reused() {
        static TEST_HEAP: Heap = Heap::new();
        let heap = &TEST_HEAP;
        let small = Layout::from_size_align(24, 8).unwrap();
        let page = Layout::from_size_align(4096, 4096).unwrap();
        // SAFETY: layouts are non-zero; blocks are freed with the layout they were made with.
        unsafe {
            let a = heap.alloc(small);
            let b = heap.alloc(page);
            let c = heap.alloc(small);
            assert_eq!(b as usize % 4096, 0);
            assert_eq!(a as usize % 32, 0);
            assert_ne!(a, c);
            // The gap before the page went on the free lists: `c` came from it.
            assert!((c as usize) < b as usize);
            heap.dealloc(a, small);
            assert_eq!(heap.alloc(small), a);
            let grown = heap.realloc(c, small, 30);
            assert_eq!(grown, c);
            let moved = heap.realloc(c, small, 100);
            assert_ne!(moved, c);
        }
    }

    #[test]
    fn added_memory_serves_what_the_arena_cannot() {
        static TEST_HEAP: Heap = Heap::new();
        #[repr(C, align(4096))]
        struct Memory([u8; 4 * 4096]);
        // Leaked: the heap keeps the memory for the rest of the test program, as the contract says.
        let memory = std::boxed::Box::leak(std::boxed::Box::new(Memory([0; 4 * 4096])));
        let base = memory.0.as_mut_ptr();
        let half = Layout::from_size_align(HEAP_SIZE / 2, 4096).unwrap();
        let page = Layout::from_size_align(4096, 4096).unwrap();
        // SAFETY: layouts are non-zero; blocks are freed with the layout they were made with; the
        // added memory is page aligned, writable and used by nothing else.
        unsafe {
            let arena = [TEST_HEAP.alloc(half), TEST_HEAP.alloc(half)];
            assert!(arena.iter().all(|block| !block.is_null()));
            assert!(TEST_HEAP.alloc(page).is_null(), "the arena is spent");
            assert!(TEST_HEAP.add_memory(base, 4 * 4096));
            assert!(!TEST_HEAP.add_memory(base, 4 * 4096), "once");
            let pages: std::vec::Vec<*mut u8> = (0..4).map(|_| TEST_HEAP.alloc(page)).collect();
            let offsets: std::vec::Vec<usize> = pages.iter().map(|&p| p as usize - base as usize).collect();
            assert_eq!(offsets, [0, 4096, 2 * 4096, 3 * 4096]);
            assert!(TEST_HEAP.alloc(page).is_null(), "both are spent");
            TEST_HEAP.dealloc(pages[2], page);
            assert_eq!(TEST_HEAP.alloc(page), pages[2], "a block of the added memory is reused");
            TEST_HEAP.dealloc(arena[0], half);
            assert_eq!(TEST_HEAP.alloc(half), arena[0]);
        }
    }
}
