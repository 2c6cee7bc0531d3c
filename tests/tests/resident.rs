//! Property test of the resident-page table against a `BTreeMap` oracle, with its heap counted.
//!
//! Random inserts, removals, lookups and runs of either, over index spans from a few leaves (where
//! leaves turn dense and drain back to sparse) to a whole 4 GiB area (a chunk per page or two). After
//! every step the table must answer as the oracle does, and `metadata_bytes()` must equal the heap the
//! table's operations gained as a counting allocator saw it; at the end, removing every page must give
//! all of it back.
//!
//! The allocator counts the whole process, so this file runs without the test harness (its own
//! `main`, one thread): no other thread may allocate while a table operation is measured. A harness
//! thread once did, and the count came out wrong once in many runs.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use pager::resident::{ResidentPage, ResidentPages, CHUNK_PAGES, LEAF_PAGES};
use pager::{CopySlot, FrameRef};
use proptest::prelude::*;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

#[derive(Clone, Copy, Debug)]
enum Op {
    Insert(u32, ResidentPage),
    Remove(u32),
    At(u32),
    /// Every index of `start..start + len` not resident is inserted (a leaf filling up).
    InsertRun(u32, u32),
    /// Every index of `start..start + len` is removed (a leaf draining).
    RemoveRun(u32, u32),
}

/// Index spans: a few leaves, a few chunks, a 1 GiB and a 4 GiB area.
fn span() -> impl Strategy<Value = u32> {
    prop_oneof![Just(3 * LEAF_PAGES as u32), Just(3 * CHUNK_PAGES as u32), Just(1 << 18), Just(1 << 20)]
}

fn page() -> impl Strategy<Value = ResidentPage> {
    // Pool and image frames: the image bit is part of the record.
    (0u32..1 << 31, any::<bool>(), any::<u32>()).prop_map(|(n, image, slot)| ResidentPage {
        frame: FrameRef::from_bits(if image { n | 1 << 31 } else { n }),
        slot: CopySlot(slot),
    })
}

fn op(span: u32) -> impl Strategy<Value = Op> {
    let index = 0..span;
    let run = 1..=LEAF_PAGES as u32;
    prop_oneof![
        4 => (index.clone(), page()).prop_map(|(i, p)| Op::Insert(i, p)),
        2 => index.clone().prop_map(Op::Remove),
        1 => index.clone().prop_map(Op::At),
        1 => (index.clone(), run.clone()).prop_map(|(i, n)| Op::InsertRun(i, n)),
        1 => (index, run).prop_map(|(i, n)| Op::RemoveRun(i, n)),
    ]
}

fn case() -> impl Strategy<Value = (u32, Vec<Op>)> {
    span().prop_flat_map(|span| (Just(span), prop::collection::vec(op(span), 1..400)))
}

/// A table with the heap its operations gained, counted.
struct Counted {
    table: ResidentPages,
    heap: isize,
}

impl Counted {
    fn apply<T>(&mut self, operation: impl FnOnce(&mut ResidentPages) -> T) -> T {
        let region = Region::new(ALLOCATOR);
        let result = operation(&mut self.table);
        let change = region.change();
        self.heap += change.bytes_allocated as isize - change.bytes_deallocated as isize;
        result
    }
}

fn run((span, ops): (u32, Vec<Op>)) -> Result<(), TestCaseError> {
    let mut oracle: BTreeMap<u32, ResidentPage> = BTreeMap::new();
    let mut t = Counted { table: ResidentPages::default(), heap: 0 };
    let insert = |t: &mut Counted, oracle: &mut BTreeMap<u32, ResidentPage>, index: u32, page| {
        // The table's contract: only an index not resident is inserted.
        if index < span && !oracle.contains_key(&index) {
            oracle.insert(index, page);
            t.apply(|table| table.insert(index, page));
        }
    };
    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Insert(index, page) => insert(&mut t, &mut oracle, index, page),
            Op::Remove(index) => {
                let removed = t.apply(|table| table.remove(index));
                prop_assert_eq!(removed, oracle.remove(&index), "remove {}", index);
            }
            Op::At(index) => prop_assert_eq!(t.table.at(index), oracle.get(&index).copied()),
            Op::InsertRun(start, len) => {
                for index in start..start.saturating_add(len) {
                    let page = ResidentPage { frame: FrameRef::from_bits(index), slot: CopySlot(!index) };
                    insert(&mut t, &mut oracle, index, page);
                }
            }
            Op::RemoveRun(start, len) => {
                for index in start..start.saturating_add(len) {
                    let removed = t.apply(|table| table.remove(index));
                    prop_assert_eq!(removed, oracle.remove(&index), "remove {}", index);
                }
            }
        }
        prop_assert_eq!(t.table.count() as usize, oracle.len());
        prop_assert_eq!(t.table.metadata_bytes() as isize, t.heap, "metadata bytes after step {}", step);
        if step % 16 == 0 {
            prop_assert!(t.table.iter().eq(oracle.iter().map(|(i, p)| (*i, *p))), "iter after step {}", step);
        }
    }
    prop_assert!(t.table.iter().eq(oracle.iter().map(|(i, p)| (*i, *p))));
    for (index, page) in &oracle {
        prop_assert_eq!(t.table.at(*index), Some(*page));
    }

    // Drain in an order unlike the index order.
    let mut remaining: Vec<u32> = oracle.keys().copied().collect();
    remaining.sort_unstable_by_key(|i| (i.wrapping_mul(0x9e37_79b9), *i));
    for index in remaining {
        let removed = t.apply(|table| table.remove(index));
        prop_assert_eq!(removed, oracle.remove(&index));
    }
    prop_assert_eq!(t.table.count(), 0);
    prop_assert_eq!(t.table.metadata_bytes(), 0);
    prop_assert_eq!(t.heap, 0, "an empty table holds no heap");
    Ok(())
}

fn main() {
    // Failures are not written to a regressions file: with no harness proptest has no source path.
    let config = ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    match runner.run(&case(), run) {
        Ok(()) => println!("resident_pages_match_a_btree_map_and_count_their_heap: 256 cases passed"),
        Err(error) => panic!("resident_pages_match_a_btree_map_and_count_their_heap: {error}"),
    }
}
