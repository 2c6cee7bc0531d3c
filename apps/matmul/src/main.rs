//! matmul: a blocked multiply of two generated integer matrices, checked by Freivalds' test.
//!
//! `A` and `B` are [`N`]×[`N`] matrices of `u32`s drawn from a fixed seed, on the heap; `C = AB`
//! is computed in [`BLOCK`]×[`BLOCK`] tiles (the i-k-j order within a tile, so each inner loop runs
//! along rows of `B` and `C`), the access pattern of a cache-blocked kernel: the same few tiles of
//! the three matrices over and over. Arithmetic wraps (the ring of integers modulo 2^32), so the
//! result is exact and independent of order, and integers because the app's target has no FPU
//! code. The check is Freivalds': for [`ROUNDS`] random vectors `x`, `A(Bx)` must equal `Cx`; a
//! wrong entry of `C` escapes a round only if its error times one random word is 0 mod 2^32.
#![cfg_attr(target_os = "none", no_std)]
#![no_main]
#![deny(unsafe_code)]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;

use app_runtime::{println, Context};

app_runtime::entry_with_heap!(main);

/// Rows and columns of each matrix (the size of this workload): three 576 KiB matrices.
const N: usize = 384;
/// Rows and columns of a tile; divides [`N`].
const BLOCK: usize = 32;
/// Random vectors in the check.
const ROUNDS: usize = 2;
/// Seed of the matrices and of the check's vectors.
const SEED: u64 = 0x4d41_544d_554c_0001;

const _: () = assert!(N.is_multiple_of(BLOCK));

/// A row-major `N`×`N` matrix.
fn random_matrix(random: &mut fastrand::Rng) -> Vec<u32> {
    (0..N * N).map(|_| random.u32(..)).collect()
}

/// `C = AB`, tile by tile.
fn multiply_blocked(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut c = vec![0u32; N * N];
    for row_block in (0..N).step_by(BLOCK) {
        for inner_block in (0..N).step_by(BLOCK) {
            for column_block in (0..N).step_by(BLOCK) {
                for i in row_block..row_block + BLOCK {
                    let c_row = &mut c[i * N + column_block..][..BLOCK];
                    for k in inner_block..inner_block + BLOCK {
                        let a_ik = a[i * N + k];
                        let b_row = &b[k * N + column_block..][..BLOCK];
                        for (c_ij, &b_kj) in c_row.iter_mut().zip(b_row) {
                            *c_ij = c_ij.wrapping_add(a_ik.wrapping_mul(b_kj));
                        }
                    }
                }
            }
        }
    }
    c
}

/// `Mx` for a row-major `N`×`N` matrix `M`.
fn multiply_vector(matrix: &[u32], x: &[u32]) -> Vec<u32> {
    matrix
        .chunks_exact(N)
        .map(|row| row.iter().zip(x).fold(0u32, |sum, (&m, &v)| sum.wrapping_add(m.wrapping_mul(v))))
        .collect()
}

fn main(_context: &Context) -> i32 {
    let mut random = fastrand::Rng::with_seed(SEED);
    let a = random_matrix(&mut random);
    let b = random_matrix(&mut random);
    let c = multiply_blocked(&a, &b);
    for round in 0..ROUNDS {
        let x: Vec<u32> = (0..N).map(|_| random.u32(..)).collect();
        let expected = multiply_vector(&a, &multiply_vector(&b, &x));
        let found = multiply_vector(&c, &x);
        if let Some(row) = expected.iter().zip(&found).position(|(e, f)| e != f) {
            println!(
                "matmul: FAILED: round {round}: row {row} of Cx is {:#x}, A(Bx) gives {:#x}",
                found[row], expected[row]
            );
            return 1;
        }
    }
    let trace = (0..N).fold(0u32, |sum, i| sum.wrapping_add(c[i * N + i]));
    println!("matmul: {N}x{N} u32 in {BLOCK}x{BLOCK} tiles, trace {trace:#010x}, Freivalds x{ROUNDS}: ok");
    0
}
