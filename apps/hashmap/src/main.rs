//! hashmap: builds a hash map of a million entries on the heap and probes it.
//!
//! [`ENTRIES`] `u32` keys (distinct: `i` times an odd constant, a bijection of `u32`) go into a
//! `hashbrown` map grown from empty, so the table is rehashed into a table twice its size a dozen
//! times, each a sweep over fresh heap pages; its last table is about 18 MiB. Then every key is
//! looked up (each must give the value stored with it) and as many keys never inserted (each must
//! be missing): scattered reads all over the table. The hasher has a fixed seed, so the table's
//! layout and its page touches are the same on every run. Prints one line and exits 0, or says
//! what is wrong and exits 1.
#![cfg_attr(target_os = "none", no_std)]
#![no_main]
#![deny(unsafe_code)]

extern crate alloc;

use foldhash::fast::FixedState;
use hashbrown::HashMap;

use app_runtime::{println, Context};

app_runtime::entry_with_heap!(main);

/// Entries inserted (the size of this workload): 1 Mi.
const ENTRIES: u32 = 1 << 20;
/// Seed of the hasher.
const SEED: u64 = 0x4841_5348_4d41_5031;

/// The `index`th key: an odd multiplier makes this a bijection of `u32`, so keys from different
/// indexes differ, those at and above [`ENTRIES`] included.
fn key(index: u32) -> u32 {
    index.wrapping_mul(0x9E37_79B1)
}

/// The value stored with the `index`th key.
fn value(index: u32) -> u32 {
    index ^ 0x5A5A_5A5A
}

fn main(_context: &Context) -> i32 {
    let mut map = HashMap::with_hasher(FixedState::with_seed(SEED));
    for index in 0..ENTRIES {
        if map.insert(key(index), value(index)).is_some() {
            println!("hashmap: FAILED: key {:#x} (index {index}) was present before its insert", key(index));
            return 1;
        }
    }
    if map.len() != ENTRIES as usize {
        println!("hashmap: FAILED: {} entries after {ENTRIES} inserts", map.len());
        return 1;
    }
    for index in 0..ENTRIES {
        match map.get(&key(index)) {
            Some(&found) if found == value(index) => {}
            Some(&found) => {
                println!(
                    "hashmap: FAILED: key {:#x} gives {found:#x}, stored {:#x}",
                    key(index),
                    value(index)
                );
                return 1;
            }
            None => {
                println!("hashmap: FAILED: key {:#x} (index {index}) is missing", key(index));
                return 1;
            }
        }
    }
    for index in ENTRIES..2 * ENTRIES {
        if let Some(&found) = map.get(&key(index)) {
            println!("hashmap: FAILED: key {:#x}, never inserted, gives {found:#x}", key(index));
            return 1;
        }
    }
    println!("hashmap: {ENTRIES} entries inserted and found, {ENTRIES} absent keys missing: ok");
    0
}
