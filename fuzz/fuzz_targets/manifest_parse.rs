//! Parses arbitrary text as a system-image manifest. A rejection must be a `ManifestError` naming the
//! file with a non-empty message (never a panic); an accepted manifest must satisfy the invariants the
//! image builder and the pager rely on without re-checking them.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use manifest::{
    Manifest, Policy, Range, MAX_INSTANCES, MAX_MEMORY, MAX_RUNS, MIN_MEMORY, NAME_LIMIT, PAGE_SIZE,
    USER_ADDRESS_LIMIT,
};

const FILE: &str = "fuzz.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Manifest::parse(Path::new(FILE), text) {
        Ok(manifest) => check(&manifest),
        Err(error) => {
            assert!(!error.message.is_empty(), "empty message for field {:?}", error.field);
            assert_eq!(error.file, Path::new(FILE));
            assert!(!error.to_string().is_empty());
        }
    }
});

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= NAME_LIMIT
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A range the pager can map: page aligned, non-empty, clear of page zero and below 4 GiB.
fn assert_mappable(what: &str, range: Range) {
    assert!(range.size > 0, "{what}: empty {range:?}");
    assert_eq!(range.base % PAGE_SIZE, 0, "{what}: base not page aligned: {range:?}");
    assert_eq!(range.size % PAGE_SIZE, 0, "{what}: size not page aligned: {range:?}");
    assert!(range.base >= PAGE_SIZE, "{what}: covers page zero: {range:?}");
    let end = range.base.checked_add(range.size);
    assert!(end.is_some_and(|end| end <= USER_ADDRESS_LIMIT), "{what}: reaches past 4 GiB: {range:?}");
}

fn overlaps(a: Range, b: Range) -> bool {
    a.base < b.end() && b.base < a.end()
}

fn check(manifest: &Manifest) {
    assert_eq!(manifest.file, Path::new(FILE));
    assert!(valid_name(&manifest.name), "image name {:?}", manifest.name);
    if let Policy::FaultAround { pages } = manifest.policy {
        assert!((1..=64).contains(&pages), "fault-around of {pages} pages");
    }
    assert!(manifest.frames >= 1);

    for (i, region) in manifest.regions.iter().enumerate() {
        assert!(valid_name(&region.name), "region {i} name {:?}", region.name);
        assert_mappable(&format!("region {i}"), Range { base: PAGE_SIZE, size: region.size });
        let twice = manifest.regions[..i].iter().any(|r| r.name == region.name);
        assert!(!twice, "region {:?} declared twice", region.name);
    }

    assert!(!manifest.apps.is_empty(), "accepted with no app");
    for (i, app) in manifest.apps.iter().enumerate() {
        assert!(valid_name(&app.name), "app {i} name {:?}", app.name);
        assert!(!manifest.apps[..i].iter().any(|a| a.name == app.name), "app {:?} twice", app.name);
        assert!((1..=MAX_INSTANCES).contains(&app.instances), "app {i}: {} instances", app.instances);
        assert_ne!(app.frame_budget, Some(0), "app {i}: zero frame budget");

        // The stack and the guard page below it.
        assert_mappable(&format!("app {i} stack"), app.stack);
        let stack_and_guard = Range { base: app.stack.base - PAGE_SIZE, size: app.stack.size + PAGE_SIZE };
        assert_mappable(&format!("app {i} stack guard"), stack_and_guard);
        if let Some(heap) = app.heap {
            assert_mappable(&format!("app {i} heap"), heap);
            assert!(
                !overlaps(heap, stack_and_guard),
                "app {i}: heap {heap:?} meets the stack {stack_and_guard:?}"
            );
        }

        let mut placed: Vec<Range> = Vec::new();
        for (j, attachment) in app.attachments.iter().enumerate() {
            let region = manifest.regions.get(attachment.region);
            let region = region.unwrap_or_else(|| panic!("app {i} attach {j}: region {}", attachment.region));
            let range = Range { base: attachment.address, size: region.size };
            assert_mappable(&format!("app {i} attach {j}"), range);
            assert!(!overlaps(range, stack_and_guard), "app {i} attach {j} meets the stack");
            assert!(!app.heap.is_some_and(|h| overlaps(range, h)), "app {i} attach {j} meets the heap");
            assert!(!placed.iter().any(|p| overlaps(range, *p)), "app {i} attach {j} meets another");
            placed.push(range);
        }
        assert!(app.expect.stopped.is_none() || app.expect.exit_code == 0, "app {i}: stopped and exits");
        assert!((1..=MAX_RUNS).contains(&u32::from(app.runs)), "app {i}: {} runs", app.runs);
        // A later run would find its regions gone, and a stopped run is never restarted.
        assert!(app.runs == 1 || app.attachments.is_empty(), "app {i}: runs again with attachments");
        assert!(app.runs == 1 || app.expect.stopped.is_none(), "app {i}: runs again but is stopped");
    }
    assert!((MIN_MEMORY..=MAX_MEMORY).contains(&manifest.memory), "memory {}", manifest.memory);
    assert_eq!(manifest.memory % (1 << 20), 0, "memory {} not whole MiB", manifest.memory);
    assert_ne!(manifest.copy_slots, Some(0), "zero copy slots");
    let instances: usize = manifest.apps.iter().map(|a| usize::from(a.instances)).sum();
    assert_eq!(manifest.instance_count(), instances);
}
