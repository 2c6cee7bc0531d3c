//! deflate: deflates a generated text buffer then inflates it again, checked byte for byte.
//!
//! [`SIZE`] bytes of text (words from a small vocabulary and numbers, drawn from a fixed seed)
//! are written into a heap buffer, compressed with `miniz_oxide` at [`LEVEL`] into a growing heap
//! vector, and the result inflated into another; the compressor's hash chains and window (a few
//! hundred KiB, on the heap too) are read and written all the while. The check: the inflated
//! bytes equal the text generated again from the seed, so a page of the input, the compressed
//! stream or the output that lost its contents fails it. Prints the compressed size (the same on
//! every run) and exits 0, or says what is wrong and exits 1.
#![cfg_attr(target_os = "none", no_std)]
#![no_main]
#![deny(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

use miniz_oxide::deflate::compress_to_vec;
use miniz_oxide::inflate::decompress_to_vec_with_limit;

use app_runtime::{println, Context};

app_runtime::entry_with_heap!(main);

/// Bytes of text compressed (the size of this workload): 8 MiB.
const SIZE: usize = 8 << 20;
/// miniz's compression level (0 to 10; 6 is zlib's default).
const LEVEL: u8 = 1;
/// Seed of the text.
const SEED: u64 = 0x4445_464c_4154_4531;

/// Words the text is made of: compressible, but not a repeating pattern.
#[rustfmt::skip]
const WORDS: [&str; 32] = [
    "page", "fault", "frame", "pager", "kernel", "client", "area", "segment", "image", "copy",
    "zero", "map", "unmap", "capability", "slot", "untyped", "retype", "address", "space", "policy",
    "evict", "budget", "share", "reply", "endpoint", "thread", "stack", "heap", "text", "data",
    "bss", "guard",
];

/// The text, one byte at a time: words separated by spaces, a number now and then, a line break
/// every so often.
struct Text {
    random: fastrand::Rng,
    word: &'static [u8],
    number: [u8; 10],
    number_length: usize,
    position: usize,
}

impl Text {
    fn new(seed: u64) -> Self {
        Text {
            random: fastrand::Rng::with_seed(seed),
            word: b"",
            number: [0; 10],
            number_length: 0,
            position: 0,
        }
    }

    /// Chooses the next token and its separator.
    fn next_token(&mut self) {
        self.position = 0;
        self.number_length = 0;
        self.word = b"";
        if self.random.u8(..16) == 0 {
            let mut value = self.random.u32(..100_000);
            let mut digits = [0u8; 10];
            let mut count = 0;
            loop {
                digits[count] = b'0' + (value % 10) as u8;
                count += 1;
                value /= 10;
                if value == 0 {
                    break;
                }
            }
            for (slot, digit) in self.number.iter_mut().zip(digits[..count].iter().rev()) {
                *slot = *digit;
            }
            self.number[count] = if self.random.u8(..8) == 0 { b'\n' } else { b' ' };
            self.number_length = count + 1;
        } else {
            self.word = WORDS[self.random.usize(..WORDS.len())].as_bytes();
            let separator = if self.random.u8(..12) == 0 { b'\n' } else { b' ' };
            self.number[0] = separator;
        }
    }
}

impl Iterator for Text {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        loop {
            if self.number_length > 0 {
                if self.position < self.number_length {
                    self.position += 1;
                    return Some(self.number[self.position - 1]);
                }
            } else if !self.word.is_empty() {
                if self.position < self.word.len() {
                    self.position += 1;
                    return Some(self.word[self.position - 1]);
                }
                if self.position == self.word.len() {
                    self.position += 1;
                    return Some(self.number[0]);
                }
            }
            self.next_token();
        }
    }
}

fn main(_context: &Context) -> i32 {
    let text: Vec<u8> = Text::new(SEED).take(SIZE).collect();
    let compressed = compress_to_vec(&text, LEVEL);
    drop(text);
    let inflated = match decompress_to_vec_with_limit(&compressed, SIZE) {
        Ok(bytes) => bytes,
        Err(error) => {
            println!("deflate: FAILED: inflating {} bytes: {:?}", compressed.len(), error.status);
            return 1;
        }
    };
    if inflated.len() != SIZE {
        println!("deflate: FAILED: inflated {} bytes, deflated {SIZE}", inflated.len());
        return 1;
    }
    if let Some(index) = inflated.iter().zip(Text::new(SEED)).position(|(&found, expected)| found != expected)
    {
        println!("deflate: FAILED: inflated byte {index} differs from the text");
        return 1;
    }
    println!(
        "deflate: {SIZE} bytes deflated to {} (level {LEVEL}), inflated and verified: ok",
        compressed.len()
    );
    0
}
