//! sort: sorts a few million generated integers on the heap and checks the result.
//!
//! [`COUNT`] `u32`s (16 MiB) drawn from a fixed seed are collected into one heap vector and sorted
//! in place with `core`'s unstable sort (pattern-defeating quicksort: partitions sweep the whole
//! buffer, then ever smaller pieces of it). The check: the result is ordered, and it is a
//! permutation of the input (the same order-independent digest before and after), so a page that
//! lost or mixed up data fails it. Prints one line and exits 0, or says what is wrong and exits 1.
#![cfg_attr(target_os = "none", no_std)]
#![no_main]
#![deny(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

use app_runtime::{println, Context};

app_runtime::entry_with_heap!(main);

/// Integers sorted: 4 Mi `u32`s, 16 MiB of heap (the size of this workload).
const COUNT: usize = 4 << 20;
/// Seed of the input.
const SEED: u64 = 0x5041_4745_5253_4f52;

/// SplitMix64's finaliser: a bijection that spreads every input bit over the output.
fn mix(value: u32) -> u64 {
    let mut x = u64::from(value).wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// An order-independent digest of a multiset of integers: two wrapping sums, of the values and of
/// their mixes, which a lost, duplicated or changed element moves.
fn multiset_digest(values: &[u32]) -> (u64, u64) {
    values.iter().fold((0u64, 0u64), |(plain, mixed), &value| {
        (plain.wrapping_add(u64::from(value)), mixed.wrapping_add(mix(value)))
    })
}

fn main(_context: &Context) -> i32 {
    let mut random = fastrand::Rng::with_seed(SEED);
    let mut values: Vec<u32> = (0..COUNT).map(|_| random.u32(..)).collect();
    let before = multiset_digest(&values);
    values.sort_unstable();
    if let Some(index) = values.windows(2).position(|pair| pair[0] > pair[1]) {
        println!("sort: FAILED: out of order at {index}: {} > {}", values[index], values[index + 1]);
        return 1;
    }
    let after = multiset_digest(&values);
    if after != before {
        println!(
            "sort: FAILED: not a permutation of the input (digest {before:x?} before, {after:x?} after)"
        );
        return 1;
    }
    println!("sort: {COUNT} integers sorted, ordered and a permutation of the input: ok");
    0
}
