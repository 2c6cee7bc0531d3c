//! Each manifest error names the file and the field; a good manifest validates to the exact model.

use std::path::Path;

use manifest::{AppSource, Manifest, Policy, Range};

fn parse(text: &str) -> Result<Manifest, manifest::ManifestError> {
    Manifest::parse(Path::new("manifests/t.toml"), text)
}

const GOOD: &str = r#"
name = "demo"
policy = "fault-around"
fault_around_pages = 2
frames = 300
copy_slots = 900
memory = "128M"

[[region]]
name = "ring"
size = "8K"

[[app]]
name = "producer"
crate = "producer"
heap = "1M"
stack = "16K"
frame_budget = 40
attach = [{ region = "ring", address = 0x30000000, writable = true }]
expect = { output = ["sent 10"] }

[[app]]
name = "prebuilt"
elf = "bin/c-hello.elf"
instances = 3
expect = { stopped = "write to read-only" }

[[app]]
name = "again"
crate = "again"
instances = 2
runs = 5

[[expect.stats]]
scope = "area"
client = "producer#0"
zero = 64
"#;

#[test]
fn a_good_manifest_validates_to_the_exact_model() {
    let manifest = parse(GOOD).unwrap();
    assert_eq!(manifest.name, "demo");
    assert_eq!(manifest.policy, Policy::FaultAround { pages: 2 });
    assert_eq!(manifest.frames, 300);
    assert_eq!(manifest.copy_slots, Some(900));
    assert_eq!(manifest.memory, 128 << 20);
    assert_eq!(manifest.regions[0].size, 8192);
    let producer = &manifest.apps[0];
    assert_eq!(producer.source, AppSource::Crate("producer".into()));
    assert_eq!(producer.heap, Some(Range { base: manifest::DEFAULT_HEAP_BASE, size: 1 << 20 }));
    assert_eq!(producer.stack, Range { base: manifest::DEFAULT_STACK_TOP - 16384, size: 16384 });
    assert_eq!(producer.frame_budget, Some(40));
    assert_eq!(producer.runs, 1, "one run unless the manifest says more");
    assert_eq!(producer.attachments[0].region, 0);
    assert!(producer.attachments[0].writable);
    assert_eq!(producer.expect.output, vec!["sent 10".to_string()]);
    let prebuilt = &manifest.apps[1];
    assert_eq!(prebuilt.source, AppSource::Elf(Path::new("manifests/bin/c-hello.elf").to_path_buf()));
    assert_eq!(prebuilt.instances, 3);
    assert_eq!((prebuilt.runs, manifest.apps[2].runs), (1, 5));
    assert_eq!(prebuilt.expect.stopped.as_deref(), Some("write to read-only"));
    assert_eq!(manifest.instance_count(), 6);
    assert_eq!(manifest.run_count(), 1 + 3 + 2 * 5);
    let pairs =
        |p: &[(&str, &str)]| p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
    assert_eq!(
        manifest.expect.stats,
        vec![pairs(&[("client", "producer#0"), ("scope", "area"), ("zero", "64")])]
    );
}

#[test]
fn errors_name_the_file_and_field() {
    let cases: &[(&str, &str, &str)] = &[
        ("name = \"x\"\nbogus = 1\n[[app]]\nname=\"a\"\ncrate=\"a\"", "", "unknown field `bogus`"),
        ("name = \"has space\"\n[[app]]\nname=\"a\"\ncrate=\"a\"", "name", "letters, digits"),
        ("name = \"x\"", "app", "at least one"),
        ("name = \"x\"\npolicy = \"lru\"\n[[app]]\nname=\"a\"\ncrate=\"a\"", "policy", "\"lru\""),
        ("name = \"x\"\nfault_around_pages = 3\n[[app]]\nname=\"a\"\ncrate=\"a\"", "fault_around_pages", "only applies"),
        ("name = \"x\"\n[[app]]\nname=\"a\"", "app[0]", "exactly one"),
        ("name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\npolicy=\"lazy\"", "app[0].policy", "\"lazy\" is not one of"),
        ("name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\npolicy={data=\"cow\", heap=\"zero-page\"}", "app[0].policy.heap", "no heap"),
        ("name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\npolicy={code=\"cow\"}", "app[0].policy.code", "not an area kind"),
        ("name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\npolicy={bss=\"copy\"}", "app[0].policy.bss", "\"copy\" is not one of"),
        ("name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\npolicy=\"fault-around\"\nfault_around={file=65}", "app[0].fault_around.file", "0..=64"),
        ("name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\nfault_around=2", "app[0].fault_around", "only applies where"),
        ("name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\nelf=\"b\"", "app[0]", "exactly one"),
        ("name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\n[[app]]\nname=\"a\"\ncrate=\"b\"", "app[1].name", "twice"),
        ("name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\nstack=\"3000\"", "app[0].stack", "multiple of the page size"),
        ("name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\nstack=\"lots\"", "app[0].stack", "not a size"),
        ("name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\ninstances=0", "app[0].instances", "1..=256"),
        ("name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\nstack_top=0x100001000", "app[0].stack_top", "32 bits"),
        ("name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\nheap=\"8K\"\nheap_base=0xFFFFF000", "app[0].heap", "outside"),
        ("name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\nheap=\"4K\"\nheap_base=0xAFFF0000", "app[0].heap", "overlaps the stack"),
        ("name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\nheap_base=0x1000", "app[0].heap_base", "without a heap size"),
        ("name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\nframe_budget=0", "app[0].frame_budget", "at least 1"),
        ("name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\nruns=0", "app[0].runs", "1..=65535"),
        ("name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\nruns=65536", "app[0].runs", "1..=65535"),
        (
            "name = \"x\"\n[[region]]\nname=\"r\"\nsize=4096\n[[app]]\nname=\"a\"\ncrate=\"a\"\nruns=2\nattach=[{region=\"r\", address=0x10000}]",
            "app[0].runs",
            "attaches a region runs once",
        ),
        (
            "name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\nruns=2\nexpect={stopped=\"no area\"}",
            "app[0].runs",
            "a stopped run is not restarted",
        ),
        ("name = \"x\"\ncopy_slots = 0\n[[app]]\nname=\"a\"\ncrate=\"a\"", "copy_slots", "1..=262144"),
        ("name = \"x\"\ncopy_slots = 262145\n[[app]]\nname=\"a\"\ncrate=\"a\"", "copy_slots", "1..=262144"),
        ("name = \"x\"\nmemory = \"16M\"\n[[app]]\nname=\"a\"\ncrate=\"a\"", "memory", "from 32M to 2048M"),
        ("name = \"x\"\nmemory = \"4G\"\n[[app]]\nname=\"a\"\ncrate=\"a\"", "memory", "from 32M to 2048M"),
        ("name = \"x\"\nmemory = \"100000K\"\n[[app]]\nname=\"a\"\ncrate=\"a\"", "memory", "whole number of MiB"),
        ("name = \"x\"\nmemory = \"lots\"\n[[app]]\nname=\"a\"\ncrate=\"a\"", "memory", "not a size"),
        (
            "name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\nattach=[{region=\"nope\", address=0x1000}]",
            "app[0].attach[0].region",
            "no [[region]] named \"nope\"",
        ),
        (
            "name = \"x\"\n[[region]]\nname=\"r\"\nsize=4096\n[[app]]\nname=\"a\"\ncrate=\"a\"\nattach=[{region=\"r\", address=0x1001}]",
            "app[0].attach[0].address",
            "not page aligned",
        ),
        (
            "name = \"x\"\n[[region]]\nname=\"r\"\nsize=8192\n[[app]]\nname=\"a\"\ncrate=\"a\"\nattach=[{region=\"r\", address=0x10000}, {region=\"r\", address=0x11000}]",
            "app[0].attach[1].address",
            "overlaps another attachment",
        ),
        ("name = \"x\"\n[[region]]\nname=\"r\"\nsize=4096\n[[region]]\nname=\"r\"\nsize=4096\n[[app]]\nname=\"a\"\ncrate=\"a\"", "region[1].name", "twice"),
        (
            "name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\nexpect={exit_code=1, stopped=\"x\"}",
            "app[0].expect",
            "either stopped or exits",
        ),
        ("name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\n[[expect.stats]]\nzero=1", "expect.stats[0]", "needs a `scope`"),
        ("name = \"x\"\nkernel = \"fast\"\n[[app]]\nname=\"a\"\ncrate=\"a\"", "kernel", "\"release\", \"debug\""),
        ("name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\ntime_limit=\"2\"", "app[0].time_limit", "not a duration"),
        ("name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\ntime_limit=\"0s\"", "app[0].time_limit", "from 1 ms"),
        ("name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\ntime_limit=\"61m\"", "app[0].time_limit", "to 60 m"),
        ("name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\nargument=\"\\u0000\"", "app[0].argument", "holds a NUL"),
        (
            "name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\nshare_to=[\"b\"]",
            "app[0].share_to[0]",
            "\"b\" is not an app of this image",
        ),
        (
            "name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\nshare_to=[\"b\", \"b\"]\n[[app]]\nname=\"b\"\ncrate=\"b\"",
            "app[0].share_to[1]",
            "named twice",
        ),
        (
            "name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\n[[expect.stats]]\nscope=\"total\"\nzero=[1]",
            "expect.stats[0].zero",
            "not a string or number",
        ),
        ("name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\nframe_budget=8\nevict=\"lru\"", "app[0].evict", "\"lru\" is not one of \"fifo\", \"clock\", \"none\""),
        ("name = \"x\"\nframes=7\n[[app]]\nname=\"a\"\ncrate=\"a\"\nevict=\"clock\"", "frames", "7 is below 8"),
        ("name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\nevict=\"fifo\"\nframe_budget=7", "app[0].frame_budget", "7 is below 8"),
        ("name = \"x\"\nstore=\"1M\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\nframe_budget=8", "store", "no app evicts"),
        ("name = \"x\"\nstore=\"1M\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\nframe_budget=8\nevict=\"none\"", "store", "no app evicts"),
        ("name = \"x\"\nstore=\"3000\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\nframe_budget=8\nevict=\"fifo\"", "store", "multiple of the page size"),
        ("name = \"x\"\nstore=\"lots\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\nframe_budget=8\nevict=\"fifo\"", "store", "not a size"),
        ("name = \"x\"\nstore=\"64M\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\nframe_budget=8\nevict=\"fifo\"", "store", "more than 32M"),
        ("name = \"x\"\nmemory=\"64M\"\nstore=\"20M\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\nframe_budget=8\nevict=\"fifo\"", "store", "a quarter of the guest memory (64M)"),
        (
            "name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\n[[expect.stats]]\nscope=\"total\"\nevictions=\">some\"",
            "expect.stats[0].evictions",
            "is not \">N\"",
        ),
        (
            "name = \"x\"\n[[app]]\nname=\"a\"\ncrate=\"a\"\n[[expect.stats]]\nscope=\"total\"\nevictions=\">inf\"",
            "expect.stats[0].evictions",
            "more than a number",
        ),
    ];
    for (text, field, message) in cases {
        let error = parse(text).expect_err(text);
        assert_eq!(error.field, *field, "{text}");
        assert!(error.message.contains(message), "{text}: {}", error.message);
        assert!(error.to_string().starts_with("manifests/t.toml: "), "{error}");
    }
}

/// Found by the manifest_parse fuzz target: a stack size near 2^64 overflowed `stack_size + PAGE_SIZE`
/// (a panic in debug builds; in release ones the sum wrapped and a stack far past 4 GiB was accepted).
#[test]
fn a_stack_size_near_two_to_the_64_is_refused_not_overflowed() {
    for size in ["\"18446744073709547520\"", "\"18446744073709551615\""] {
        let text = format!("name = \"x\"\n[[app]]\nname = \"a\"\ncrate = \"a\"\nstack = {size}\n");
        let error = parse(&text).expect_err(&text);
        assert!(error.field.starts_with("app[0].stack"), "{text}: {error}");
    }
}

#[test]
fn memory_runs_and_copy_slots_default_and_accept_their_bounds() {
    let plain = parse("name = \"x\"\n[[app]]\nname = \"a\"\ncrate = \"a\"\n").unwrap();
    assert_eq!((plain.memory, plain.copy_slots, plain.apps[0].runs), (manifest::DEFAULT_MEMORY, None, 1));
    assert_eq!(plain.run_count(), 1);
    let edges = "name = \"x\"\nmemory = \"2G\"\ncopy_slots = 262144\n[[app]]\nname = \"a\"\ncrate = \"a\"\nruns = 65535\n";
    let edges = parse(edges).unwrap();
    assert_eq!((edges.memory, edges.copy_slots, edges.apps[0].runs), (2 << 30, Some(262144), u16::MAX));
    let bytes = parse("name = \"x\"\nmemory = 33554432\n[[app]]\nname = \"a\"\ncrate = \"a\"\n").unwrap();
    assert_eq!(bytes.memory, manifest::MIN_MEMORY);
}

#[test]
fn kernel_time_limit_and_share_to_default_and_parse() {
    let plain = parse("name = \"x\"\n[[app]]\nname = \"a\"\ncrate = \"a\"\n").unwrap();
    assert_eq!(plain.kernel, manifest::Kernel::Release);
    assert_eq!(plain.apps[0].time_limit_ms, manifest::DEFAULT_TIME_LIMIT_MS);
    assert!(plain.apps[0].share_to.is_empty());
    let text =
        "name = \"x\"\nkernel = \"debug\"\n[[app]]\nname = \"a\"\ncrate = \"a\"\ntime_limit = \"2s\"\n\
                share_to = [\"c\", \"a\"]\n[[app]]\nname = \"b\"\ncrate = \"b\"\ntime_limit = \"250ms\"\n\
                [[app]]\nname = \"c\"\ncrate = \"c\"\ntime_limit = \"1m\"\n";
    let manifest = parse(text).unwrap();
    assert_eq!(manifest.kernel, manifest::Kernel::Debug);
    let limits: Vec<u32> = manifest.apps.iter().map(|app| app.time_limit_ms).collect();
    assert_eq!(limits, [2000, 250, 60_000]);
    assert_eq!(manifest.apps[0].share_to, [2, 0]);
}

#[test]
fn an_app_policy_resolves_per_area_kind_and_region() {
    use manifest::PolicyName::*;
    let text = r#"
name = "p"
policy = "eager"
[[region]]
name = "ring"
size = "8K"
[[app]]
name = "a"
crate = "a"
heap = "64K"
policy = { default = "zero-page", data = "cow", ring = "seed", heap = "large-pages", stack = "fault-around" }
fault_around = { file = 2, zero = 16 }
attach = [{ region = "ring", address = 0x30000000 }]
[[app]]
name = "b"
crate = "b"
heap = "64K"
attach = [{ region = "ring", address = 0x30000000 }]
[[app]]
name = "c"
crate = "c"
policy = "cow"
"#;
    let manifest = parse(text).unwrap();
    let [a, b, c] = &manifest.apps[..] else { panic!("three apps") };
    assert_eq!(a.policy.kinds, [ZeroPage, ZeroPage, Cow, ZeroPage, LargePages, FaultAround]);
    assert_eq!((a.policy.attachments.clone(), a.policy.fault_around), (vec![Seed], (2, 16)));
    // The image's eager maps segments and the stack; the heap and regions stay lazy.
    assert_eq!(b.policy.kinds, [Eager, Eager, Eager, Eager, Seed, Eager]);
    assert_eq!(b.policy.attachments, vec![Seed]);
    assert_eq!(c.policy.kinds, [Cow; 6]);
    assert_eq!(manifest.policy, Policy::Eager);
}

#[test]
fn an_argument_is_kept_and_bounded() {
    let plain = parse("name = \"x\"\n[[app]]\nname = \"a\"\ncrate = \"a\"\n").unwrap();
    assert_eq!(plain.apps[0].argument, "");
    let text = "name = \"x\"\n[[app]]\nname = \"a\"\ncrate = \"a\"\nargument = \"random pages=9 count=3\"\n";
    assert_eq!(parse(text).unwrap().apps[0].argument, "random pages=9 count=3");
    let long =
        format!("name = \"x\"\n[[app]]\nname = \"a\"\ncrate = \"a\"\nargument = \"{}\"\n", "x".repeat(129));
    let error = parse(&long).unwrap_err().to_string();
    assert!(error.contains("argument") && error.contains("longer than 128 bytes"), "{error}");
}

#[test]
fn another_image_policy_reaches_the_apps_that_name_none() {
    use manifest::PolicyName::*;
    let text = "name = \"x\"\n[[app]]\nname = \"a\"\ncrate = \"a\"\n[[app]]\nname = \"b\"\ncrate = \"b\"\npolicy = \"cow\"\n";
    let mut manifest = parse(text).unwrap();
    assert_eq!(manifest.apps[0].policy, manifest::AppPolicy::from_image(Policy::Seed, 0));
    manifest.set_policy(Policy::Eager);
    assert_eq!(manifest.apps[0].policy.kinds, [Eager, Eager, Eager, Eager, Seed, Eager]);
    assert_eq!(manifest.apps[1].policy.kinds, [Cow; 6], "an app's own policy stays");
    let eager = parse(&text.replace("name = \"x\"\n", "name = \"x\"\npolicy = \"eager\"\n")).unwrap();
    assert_eq!(eager.apps[0].policy, manifest.apps[0].policy);
}

#[test]
fn eviction_and_the_store_default_and_parse() {
    use manifest::Eviction;
    let plain = parse("name = \"x\"\n[[app]]\nname = \"a\"\ncrate = \"a\"\nframe_budget = 4\n").unwrap();
    assert_eq!((plain.apps[0].evict, plain.store), (Eviction::None, None), "a budget stops unless told");
    let text = "name = \"x\"\n[[app]]\nname = \"a\"\ncrate = \"a\"\nframe_budget = 8\nevict = \"fifo\"\n\
                [[app]]\nname = \"b\"\ncrate = \"b\"\nframe_budget = 64\nevict = \"clock\"\n\
                [[app]]\nname = \"c\"\ncrate = \"c\"\nevict = \"none\"\n";
    let evicting = parse(text).unwrap();
    let modes: Vec<Eviction> = evicting.apps.iter().map(|app| app.evict).collect();
    assert_eq!(modes, [Eviction::Fifo, Eviction::Clock, Eviction::None]);
    assert_eq!(evicting.store, Some(manifest::DEFAULT_STORE), "the default store where an app evicts");
    let sized = parse(&text.replace("name = \"x\"\n", "name = \"x\"\nstore = \"8M\"\n")).unwrap();
    assert_eq!(sized.store, Some(8 << 20));
    let bytes = parse(&text.replace("name = \"x\"\n", "name = \"x\"\nstore = 65536\n")).unwrap();
    assert_eq!(bytes.store, Some(65536));
    assert_eq!(Eviction::ALL.map(Eviction::name), ["none", "fifo", "clock"]);
    // Without a budget an app evicts when the image's pool is used up.
    let pool =
        parse("name = \"x\"\nframes = 8\n[[app]]\nname = \"a\"\ncrate = \"a\"\nevict = \"clock\"\n").unwrap();
    assert_eq!(
        (pool.apps[0].evict, pool.apps[0].frame_budget, pool.store),
        (Eviction::Clock, None, Some(manifest::DEFAULT_STORE))
    );
}

#[test]
fn a_more_than_stats_value_is_kept_as_written() {
    let text = "name = \"x\"\n[[app]]\nname = \"a\"\ncrate = \"a\"\n[[expect.stats]]\nscope = \"total\"\n\
                evictions = \">0\"\nratio = \"> 1.5\"\n";
    let pairs = &parse(text).unwrap().expect.stats[0];
    assert!(
        pairs.contains(&("evictions".into(), ">0".into()))
            && pairs.contains(&("ratio".into(), "> 1.5".into()))
    );
}
