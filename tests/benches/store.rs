//! The compressed store's choice of compressor, measured: `lz4_flex` against `miniz_oxide` (levels 1
//! and 6) on pages of the shipped workloads' data, for compression ratio and instructions per page.
//!
//! The pages are what each workload of `manifests/workloads.toml` keeps on its heap, made again on
//! the host from the apps' own generators and seeds: deflate's text (`apps/deflate`), sort's
//! integers before and after sorting (`apps/sort`), the hash map's entries in table order
//! (`apps/hashmap`, keys and values as it inserts them), sha256's buffer (`apps/sha256`) and
//! matmul's input and product matrices (`apps/matmul`); 128 pages of each, spread evenly.
//!
//! - `cargo bench -p pager-tests --bench store -- ratio`: a table of compressed bytes per page and
//!   ratios, per workload and compressor.
//! - `... -- run lz4|miniz1|miniz6`: compresses then decompresses every page once in functions of
//!   their own (`compress_all`, `decompress_all`), for counting instructions under callgrind:
//!   `valgrind --tool=callgrind --collect-atstart=no --toggle-collect='store::compress_all*'
//!   target/release/deps/store-* run lz4` (the host has no hardware counters; docs/eviction.md
//!   has the figures).
//! - Under `cargo test --benches`: every page round-trips through each compressor, nothing timed.

use std::hint::black_box;

const PAGE: usize = 4096;
const SAMPLES: usize = 128;

/// `count` pages spread evenly over `bytes`.
fn sample(bytes: &[u8], count: usize) -> Vec<[u8; PAGE]> {
    let pages = bytes.len() / PAGE;
    (0..count.min(pages))
        .map(|n| {
            let start = n * pages / count.min(pages) * PAGE;
            bytes[start..start + PAGE].try_into().unwrap()
        })
        .collect()
}

fn words_to_bytes(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// apps/deflate's text generator, byte for byte.
fn deflate_text(size: usize) -> Vec<u8> {
    const WORDS: [&str; 32] = [
        "page",
        "fault",
        "frame",
        "pager",
        "kernel",
        "client",
        "area",
        "segment",
        "image",
        "copy",
        "zero",
        "map",
        "unmap",
        "capability",
        "slot",
        "untyped",
        "retype",
        "address",
        "space",
        "policy",
        "evict",
        "budget",
        "share",
        "reply",
        "endpoint",
        "thread",
        "stack",
        "heap",
        "text",
        "data",
        "bss",
        "guard",
    ];
    let mut random = fastrand::Rng::with_seed(0x4445_464c_4154_4531);
    let mut text = Vec::with_capacity(size + 16);
    while text.len() < size {
        if random.u8(..16) == 0 {
            let value = random.u32(..100_000);
            text.extend_from_slice(value.to_string().as_bytes());
            text.push(if random.u8(..8) == 0 { b'\n' } else { b' ' });
        } else {
            text.extend_from_slice(WORDS[random.usize(..WORDS.len())].as_bytes());
            text.push(if random.u8(..12) == 0 { b'\n' } else { b' ' });
        }
    }
    text.truncate(size);
    text
}

/// The workloads' pages, by name; at their sizes divided by `1 << shrink` (the test run's quick
/// check makes them smaller).
fn workloads(shrink: u32) -> Vec<(&'static str, Vec<[u8; PAGE]>)> {
    let mut sets = Vec::new();
    sets.push(("deflate", sample(&deflate_text((8 << 20) >> shrink), SAMPLES)));

    let mut random = fastrand::Rng::with_seed(0x5041_4745_5253_4f52);
    let mut values: Vec<u32> = (0..(4 << 20) >> shrink).map(|_| random.u32(..)).collect();
    let unsorted = words_to_bytes(&values);
    values.sort_unstable();
    let sorted = words_to_bytes(&values);
    let mut sort = sample(&unsorted, SAMPLES / 2);
    sort.extend(sample(&sorted, SAMPLES / 2));
    sets.push(("sort", sort));

    // hashbrown's table holds (key, value) pairs at hashed positions and empty slots between them
    // (7/8 full at most): the entries in table order with a zeroed pair per empty slot's worth.
    let mut map =
        hashbrown::HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0x4841_5348_4d41_5031));
    for index in 0u32..(1 << 20) >> shrink {
        map.insert(index.wrapping_mul(0x9E37_79B1), index ^ 0x5A5A_5A5A);
    }
    let empty = map.capacity() - map.len();
    let every = (map.len() / empty.max(1)).max(1);
    let mut table = Vec::new();
    for (n, (&key, &value)) in map.iter().enumerate() {
        table.extend_from_slice(&key.to_le_bytes());
        table.extend_from_slice(&value.to_le_bytes());
        if n % every == 0 {
            table.extend_from_slice(&[0; 8]);
        }
    }
    sets.push(("hashmap", sample(&table, SAMPLES)));

    let mut random = fastrand::Rng::with_seed(0x5348_4132_3536_0001);
    let buffer: Vec<u8> =
        (0..((16 << 20) >> shrink) / 8).flat_map(|_| random.u64(..).to_le_bytes()).collect();
    sets.push(("sha256", sample(&buffer, SAMPLES)));

    let n = 384 >> (shrink / 2);
    let mut random = fastrand::Rng::with_seed(0x4d41_544d_554c_0001);
    let a: Vec<u32> = (0..n * n).map(|_| random.u32(..)).collect();
    let b: Vec<u32> = (0..n * n).map(|_| random.u32(..)).collect();
    let mut c = vec![0u32; n * n];
    for i in 0..n {
        for k in 0..n {
            let a_ik = a[i * n + k];
            for j in 0..n {
                c[i * n + j] = c[i * n + j].wrapping_add(a_ik.wrapping_mul(b[k * n + j]));
            }
        }
    }
    let mut matmul = sample(&words_to_bytes(&a), SAMPLES / 2);
    matmul.extend(sample(&words_to_bytes(&c), SAMPLES / 2));
    sets.push(("matmul", matmul));
    sets
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Codec {
    Lz4,
    Miniz(u8),
}

impl Codec {
    const ALL: [Codec; 3] = [Codec::Lz4, Codec::Miniz(1), Codec::Miniz(6)];

    fn name(self) -> String {
        match self {
            Codec::Lz4 => "lz4".into(),
            Codec::Miniz(level) => format!("miniz{level}"),
        }
    }

    fn compress(self, page: &[u8; PAGE], table: &mut lz4_flex::block::CompressTable) -> Vec<u8> {
        match self {
            Codec::Lz4 => {
                let mut out = vec![0; lz4_flex::block::get_maximum_output_size(PAGE)];
                let length = lz4_flex::block::compress_into_with_table(page, &mut out, table).unwrap();
                out.truncate(length);
                out
            }
            // Raw deflate, as a store would keep it (no zlib header).
            Codec::Miniz(level) => miniz_oxide::deflate::compress_to_vec(page, level),
        }
    }

    fn decompress(self, block: &[u8], page: &mut [u8; PAGE]) {
        match self {
            Codec::Lz4 => {
                lz4_flex::block::decompress_into(block, page).unwrap();
            }
            Codec::Miniz(_) => {
                let flags =
                    miniz_oxide::inflate::core::inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
                let mut state = miniz_oxide::inflate::core::DecompressorOxide::new();
                let (status, _, written) =
                    miniz_oxide::inflate::core::decompress(&mut state, block, page, 0, flags);
                assert_eq!((status, written), (miniz_oxide::inflate::TINFLStatus::Done, PAGE));
            }
        }
    }
}

#[inline(never)]
fn compress_all(codec: Codec, pages: &[[u8; PAGE]]) -> Vec<Vec<u8>> {
    let mut table = lz4_flex::block::CompressTable::default();
    pages.iter().map(|page| codec.compress(black_box(page), &mut table)).collect()
}

#[inline(never)]
fn decompress_all(codec: Codec, blocks: &[Vec<u8>]) -> u64 {
    let mut page = [0u8; PAGE];
    let mut sum = 0u64;
    for block in blocks {
        codec.decompress(black_box(block), &mut page);
        sum = sum.wrapping_add(u64::from(page[PAGE - 1]));
    }
    sum
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let benching = std::env::args().any(|a| a == "--bench");
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["ratio"] => {
            println!("{:<8} {:>6} {:>10} {:>10} {:>10}", "workload", "pages", "lz4", "miniz1", "miniz6");
            let mut totals = [0usize; 3];
            let mut pages_total = 0;
            for (name, pages) in workloads(0) {
                let mut row = format!("{name:<8} {:>6}", pages.len());
                for (n, codec) in Codec::ALL.into_iter().enumerate() {
                    // A page that does not shrink is stored raw, as the store keeps it.
                    let bytes: usize = compress_all(codec, &pages).iter().map(|b| b.len().min(PAGE)).sum();
                    totals[n] += bytes;
                    row += &format!(" {:>10.3}", (pages.len() * PAGE) as f64 / bytes as f64);
                }
                pages_total += pages.len();
                println!("{row}");
            }
            let mut row = format!("{:<8} {:>6}", "all", pages_total);
            for total in totals {
                row += &format!(" {:>10.3}", (pages_total * PAGE) as f64 / total as f64);
            }
            println!("{row}");
        }
        ["run", codec] => {
            let codec = Codec::ALL.into_iter().find(|c| c.name() == *codec).expect("lz4, miniz1 or miniz6");
            let pages: Vec<[u8; PAGE]> = workloads(0).into_iter().flat_map(|(_, pages)| pages).collect();
            let blocks = compress_all(codec, &pages);
            black_box(decompress_all(codec, &blocks));
            println!("{} pages compressed and decompressed with {}", pages.len(), codec.name());
        }
        [] if !benching => {
            // `cargo test --benches`: a few pages of each workload round-trip through each codec.
            for (name, pages) in workloads(6) {
                for codec in Codec::ALL {
                    let some = &pages[..4];
                    let blocks = compress_all(codec, some);
                    for (page, block) in some.iter().zip(&blocks) {
                        let mut out = [0u8; PAGE];
                        codec.decompress(block, &mut out);
                        assert_eq!(&out, page, "{name} with {}", codec.name());
                    }
                }
            }
        }
        _ => eprintln!("usage: store ratio | store run lz4|miniz1|miniz6"),
    }
}
