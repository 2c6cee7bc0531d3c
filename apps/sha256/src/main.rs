//! sha256: the SHA-256 of a generated 16 MiB heap buffer, checked against a streamed hash.
//!
//! [`SIZE`] bytes drawn from a fixed seed (each 8 bytes one little-endian word of `fastrand`'s
//! wyrand) are written into one heap buffer, then hashed with `sha2` in one sequential sweep. The
//! check: the same bytes generated again a page at a time, never stored, hashed again; the two
//! digests must agree, so a page of the buffer that lost its contents fails it. The digest is
//! printed (the manifest expects the value, computed independently on the host).
#![cfg_attr(target_os = "none", no_std)]
#![no_main]
#![deny(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

use sha2::{Digest, Sha256};

use app_runtime::{println, Context};

app_runtime::entry_with_heap!(main);

/// Bytes hashed (the size of this workload): 16 MiB.
const SIZE: usize = 16 << 20;
/// Bytes generated at a time for the streamed hash.
const CHUNK: usize = 4096;
/// Seed of the buffer.
const SEED: u64 = 0x5348_4132_3536_0001;

const _: () = assert!(SIZE.is_multiple_of(CHUNK) && CHUNK.is_multiple_of(8));

/// Fills `bytes` (a multiple of 8 long) with the generator's next words, little-endian.
fn fill(random: &mut fastrand::Rng, bytes: &mut [u8]) {
    for word in bytes.chunks_exact_mut(8) {
        word.copy_from_slice(&random.u64(..).to_le_bytes());
    }
}

fn main(_context: &Context) -> i32 {
    let mut buffer: Vec<u8> = alloc::vec![0; SIZE];
    fill(&mut fastrand::Rng::with_seed(SEED), &mut buffer);
    let digest = Sha256::digest(&buffer);

    let mut random = fastrand::Rng::with_seed(SEED);
    let mut streamed = Sha256::new();
    let mut chunk = [0u8; CHUNK];
    for _ in 0..SIZE / CHUNK {
        fill(&mut random, &mut chunk);
        streamed.update(chunk);
    }
    let expected = streamed.finalize();
    if digest != expected {
        println!("sha256: FAILED: the buffer hashes to {digest:x}, its bytes streamed to {expected:x}");
        return 1;
    }
    println!("sha256: {SIZE} bytes: {digest:x}: ok");
    0
}
