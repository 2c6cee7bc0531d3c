//! Replay benchmark: trace records per second through `sim::replay` (the pager core on the model
//! kernel), on one core.
//!
//! `cargo bench -p pager-tests --bench replay` times four synthetic traces of one client over a
//! 4096-page heap, each a record per reference (what a recording with a window holds) and replayed
//! under the seed policy:
//! - `references`: two million random references (`random pages=4096 count=2000000`): the first
//!   touch of each page faults, the rest find the page mapped — the usual record of a long trace;
//! - `phased`: working sets of 64 pages, 20,000 references each, 100 phases;
//! - `faults`: each page read then written (`read-then-write pages=4096`): every other record a
//!   first touch, the whole fault path (a frame and a mapping);
//! - `first-touch`: every record a first touch (`sequential pages=4096 write=1`), as in a trace
//!   recorded without a window, where each record is a fault.
//!
//! And, when `cargo xtask trace manifests/workloads.toml` (or an experiment, or `cargo xtask
//! agree`) has left it in `<target>/traces/`, the recorded `workloads` trace: five clients, each
//! record a fault on seL4 (first touches, and first writes), under the seed policy. Without it
//! the line says it is skipped; `cargo xtask bench` records it first.
//!
//! The best of at least five rounds (more for a short trace) is written to
//! `<target>/bench/replay.json`, which `cargo xtask bench` includes in `bench.json`. Under
//! `cargo test --benches` each trace is replayed once and its counts are checked; nothing is timed
//! or written.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bootimage::{AppSpec, ImageSpec};
use pager::BuiltinPolicy;
use sim::elf::{ElfBuilder, FLAGS_RW, FLAGS_RX};
use sim::replay::{pattern_trace, replay, ReplayOptions};
use trace::pattern::Pattern;

const HEAP: u64 = 0x1000_0000;
const HEAP_PAGES: u32 = 4096;

fn image() -> Vec<u8> {
    let elf = ElfBuilder::new()
        .segment(0x40_0000, vec![0x90; 0x1000], 0x1000, FLAGS_RX)
        .segment(0x60_0000, vec![1; 0x100], 0x1000, FLAGS_RW)
        .build();
    let app = AppSpec {
        name: "pattern".into(),
        elf,
        instances: 1,
        heap_base: HEAP as u32,
        heap_size: HEAP_PAGES * 4096,
        stack_top: 0x7000_0000,
        stack_size: 0x4000,
        ..AppSpec::default()
    };
    ImageSpec {
        name: "replay".into(),
        frame_capacity: 2 * HEAP_PAGES,
        apps: vec![app],
        ..ImageSpec::default()
    }
    .to_bytes()
    .expect("a valid image")
}

/// (name, description, expected faults)
const TRACES: [(&str, &str, u64); 4] = [
    ("references", "random pages=4096 count=2000000 seed=1", 4096),
    ("phased", "phased pages=4096 set=64 phases=100 count=20000 seed=3", 0),
    ("faults", "read-then-write pages=4096", 4096),
    ("first-touch", "sequential pages=4096 write=1", 4096),
];

/// Rounds timed per trace: about two million records in all, at least five rounds.
fn rounds(records: usize) -> usize {
    (2_000_000 / records.max(1)).clamp(5, 500)
}

fn json_path() -> PathBuf {
    let exe = std::env::current_exe().expect("the bench binary's path");
    let target = exe.ancestors().nth(3).expect("the bench binary sits in <target>/<profile>/deps");
    target.join("bench").join("replay.json")
}

/// The recorded `workloads` trace and its packed image, when a recording left them.
fn recorded_workloads() -> Option<(Vec<trace::Record>, Vec<u8>)> {
    let path = json_path().parent()?.parent()?.join("traces").join("workloads.trace");
    let bytes = std::fs::read(&path).ok()?;
    let trace = trace::Trace::from_bytes(&bytes).ok()?;
    let image = std::fs::read(path.with_extension("image")).ok()?;
    // A trace left by an older build (another boot image layout) is not this code's to time: the
    // next `cargo xtask trace` or `agree` records it again.
    if let Err(error) = bootimage::BootImage::parse(&image) {
        eprintln!("replay: {} is from another build ({error:?}); not timed", path.display());
        return None;
    }
    Some((trace.records, image))
}

/// Times `records` replayed on `image` (best of [`rounds`]); the line printed and the JSON entry.
fn time(name: &str, description: &str, image: &[u8], records: &[trace::Record], faults: u64) -> String {
    let options = ReplayOptions { policy: BuiltinPolicy::Seed, budget: None };
    let mut best = Duration::MAX;
    for _ in 0..rounds(records.len()) {
        let started = Instant::now();
        std::hint::black_box(replay(image, std::hint::black_box(records), options).unwrap());
        best = best.min(started.elapsed());
    }
    let per_second = records.len() as f64 / best.as_secs_f64();
    println!(
        "replay {name:<11} {:>9} records ({:>5} faults) in {:>8.2} ms: {:>6.2} M records/s",
        records.len(),
        faults,
        best.as_secs_f64() * 1e3,
        per_second / 1e6
    );
    format!(
        "    \"{name}\": {{ \"description\": \"{description}\", \"records\": {}, \"faults\": {}, \
         \"seconds\": {:.6}, \"records_per_second\": {:.0} }}",
        records.len(),
        faults,
        best.as_secs_f64(),
        per_second
    )
}

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    // `--only NAME` times one trace (for a profiler).
    let only: Option<String> = std::env::args().skip_while(|a| a != "--only").nth(1);
    let image = image();
    let options = ReplayOptions { policy: BuiltinPolicy::Seed, budget: None };
    let mut figures = Vec::new();
    for (name, description, faults) in TRACES {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let pattern = Pattern::parse(description).expect("a valid pattern");
        let records = pattern_trace(&pattern, HEAP);
        let stats = replay(&image, &records, options).expect("replays");
        // Checks: every reference is a fault or a hit, and the first touches are the faults.
        assert_eq!(stats.faults + stats.hits + 2, records.len() as u64, "{name}");
        let distinct = pattern.references().map(|r| r.page).collect::<std::collections::BTreeSet<_>>().len();
        assert_eq!(stats.classes.zero, distinct as u64, "{name}: one zero fault per page touched");
        if faults != 0 {
            assert_eq!(stats.faults, faults, "{name}");
        }
        if !benchmarking {
            continue;
        }
        figures.push(time(name, description, &image, &records, stats.faults));
    }
    if only.as_deref().is_none_or(|o| o == "workloads") {
        match recorded_workloads() {
            Some((records, image)) => {
                let stats = replay(&image, &records, options).expect("the recorded trace replays");
                // Under the seed policy every fault the recording served is a fault again; the
                // window's first writes find their page mapped writable.
                let references = records.iter().filter(|r| r.kind == trace::kind::FAULT).count() as u64;
                assert_eq!(
                    stats.faults + stats.hits,
                    references,
                    "workloads: each reference a fault or a hit"
                );
                assert_eq!(stats.classes.refused, 0, "workloads: no client is stopped");
                if benchmarking {
                    let description = "recorded: cargo xtask trace manifests/workloads.toml";
                    figures.push(time("workloads", description, &image, &records, stats.faults));
                }
            }
            None => println!(
                "replay workloads: skipped (no recorded trace: cargo xtask trace manifests/workloads.toml)"
            ),
        }
    }
    if benchmarking {
        let path = json_path();
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("create the bench folder");
        std::fs::write(&path, format!("{{\n{}\n}}\n", figures.join(",\n"))).expect("write replay.json");
        println!("figures written to {}", path.display());
    }
}
