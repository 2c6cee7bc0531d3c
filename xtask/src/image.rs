//! From a manifest to a bootable system image: check it, pack the apps, compose the root task, and
//! write a self-contained folder (`kernel32.elf`, `root-task.elf`, `run.sh`, `report.json`).
//!
//! Everything written is a function of its inputs (the manifest, the app ELFs, the kernel, the root
//! task): no times, no absolute paths, so the same inputs give byte-identical files.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bootimage::{AppSpec, AttachmentSpec, ImageSpec, RegionSpec};
use manifest::{AppSource, Eviction, Manifest, Policy};
use serde::Serialize;

use crate::apps::{self, AppElf};
use crate::compose::{self, Composed, RootTask};
use crate::layout;
use crate::qemu;
use crate::workspace::Workspace;

/// A manifest whose apps are built, parsed and laid out without conflict.
#[derive(Clone)]
pub struct Checked {
    pub manifest: Manifest,
    pub elfs: Vec<AppElf>,
    /// Recording mode and its window (`cargo xtask trace`); `None` for a normal image.
    pub trace: Option<u16>,
}

/// `cargo xtask check`: validate the manifest, build its apps, parse their ELFs, dry-run every
/// instance's layout and pack the image.
pub fn check(workspace: &Workspace, manifest: &Path) -> Result<Checked> {
    let manifest = Manifest::load(manifest)?;
    let elfs = apps::build(workspace, &manifest)?;
    let images = layout::parse_elfs(&manifest, &elfs)?;
    layout::dry_run(&manifest, &images)?;
    let checked = Checked { manifest, elfs, trace: None };
    pack(&checked)?;
    Ok(checked)
}

/// The packed image's bytes, read back once to be sure the root task will accept them.
pub fn pack(checked: &Checked) -> Result<Vec<u8>> {
    let file = checked.manifest.file.display();
    let bytes = spec(checked)?
        .to_bytes()
        .map_err(|error| anyhow::anyhow!("{file}: cannot pack the image: {error}"))?;
    bootimage::BootImage::parse(&bytes)
        .map_err(|error| anyhow::anyhow!("{file}: the packed image does not read back: {error}"))?;
    Ok(bytes)
}

pub(crate) fn policy(policy: Policy) -> (&'static str, u32, u32) {
    let pages = match policy {
        Policy::FaultAround { pages } => pages,
        _ => 0,
    };
    (policy.name().name(), policy.name().code(), pages)
}

/// An app's policy table as the boot image holds it: a number per area kind, the windows.
fn app_policy(policy: &manifest::AppPolicy) -> ([u8; 6], [u8; 2]) {
    let window = |pages: u32| pages.min(64) as u8;
    (
        policy.kinds.map(|name| name.code() as u8),
        [window(policy.fault_around.0), window(policy.fault_around.1)],
    )
}

fn to_u32(value: u64, what: &str) -> Result<u32> {
    u32::try_from(value).with_context(|| format!("{what} {value:#x} does not fit in 32 bits"))
}

/// What of an ELF the pager reads, and nothing else: the header and program headers, every
/// `PT_LOAD`'s file bytes, zeroes everywhere between, to a whole number of pages; the header says
/// there are no sections. Symbols and debug info cost the image no pages, and a read-only segment's
/// last page is its file bytes then zeroes, which the pager maps as the image's own frame instead
/// of copying it.
pub fn loadable_part(bytes: &[u8]) -> Result<Vec<u8>> {
    const PAGE: usize = pager::PAGE_SIZE as usize;
    const PROGRAM_HEADER_OFFSET: usize = 0x20;
    const SECTION_HEADER_OFFSET: usize = 0x28;
    const PROGRAM_HEADER_COUNT: usize = 0x38;
    const SECTION_FIELDS: std::ops::Range<usize> = 0x3a..0x40; // e_shentsize, e_shnum, e_shstrndx
    let image = pager::elf::ElfImage::parse(bytes).map_err(|error| anyhow::anyhow!("{error}"))?;
    // The parser checked that the headers and every segment's file bytes lie in the file.
    let program_headers = compose::u64_at(bytes, PROGRAM_HEADER_OFFSET)?;
    let headers = (program_headers + u64::from(compose::u16_at(bytes, PROGRAM_HEADER_COUNT)?) * 56) as usize;
    let ranges: Vec<std::ops::Range<usize>> = std::iter::once(0..headers)
        .chain(image.segments().iter().map(|s| s.offset as usize..(s.offset + s.file_size) as usize))
        .collect();
    let end = ranges.iter().map(|range| range.end).max().unwrap_or(0);
    let mut part = vec![0; end.div_ceil(PAGE) * PAGE];
    for range in ranges {
        part[range.clone()].copy_from_slice(&bytes[range]);
    }
    part[SECTION_HEADER_OFFSET..SECTION_HEADER_OFFSET + 8].fill(0);
    part[SECTION_FIELDS].fill(0);
    Ok(part)
}

/// The packed image's description.
pub fn spec(checked: &Checked) -> Result<ImageSpec> {
    let manifest = &checked.manifest;
    let (_, policy, policy_pages) = policy(manifest.policy);
    let mut apps = Vec::new();
    for (app, elf) in manifest.apps.iter().zip(&checked.elfs) {
        let (heap_base, heap_size) = app.heap.map_or((0, 0), |heap| (heap.base, heap.size));
        let (app_policy, fault_around) = app_policy(&app.policy);
        apps.push(AppSpec {
            policy: app_policy,
            fault_around,
            name: app.name.clone(),
            elf: loadable_part(&elf.bytes)
                .with_context(|| format!("app {:?} ({})", app.name, elf.path.display()))?,
            instances: app.instances,
            runs: app.runs,
            heap_base: to_u32(heap_base, "heap base")?,
            heap_size: to_u32(heap_size, "heap size")?,
            stack_top: to_u32(app.stack.end(), "stack top")?,
            stack_size: to_u32(app.stack.size, "stack size")?,
            frame_budget: app.frame_budget.unwrap_or(0),
            evict: eviction_code(app.evict),
            expected_exit: app.expect.exit_code,
            time_limit_ms: app.time_limit_ms,
            bench_floor: app.bench_floor,
            argument: app.argument.clone(),
            share_to: app
                .share_to
                .iter()
                .map(|&index| u16::try_from(index).context("too many apps"))
                .collect::<Result<_>>()?,
            attachments: app
                .attachments
                .iter()
                .zip(&app.policy.attachments)
                .map(|(a, &policy)| {
                    Ok(AttachmentSpec {
                        region: u16::try_from(a.region).context("too many regions")?,
                        policy: policy.code() as u8,
                        writable: a.writable,
                        address: to_u32(a.address, "attachment address")?,
                    })
                })
                .collect::<Result<_>>()?,
        });
    }
    let regions = manifest
        .regions
        .iter()
        .map(|r| Ok(RegionSpec { name: r.name.clone(), size: to_u32(r.size, "region size")? }))
        .collect::<Result<_>>()?;
    Ok(ImageSpec {
        name: manifest.name.clone(),
        policy,
        policy_pages,
        frame_capacity: manifest.frames,
        copy_slot_limit: manifest.copy_slots.unwrap_or(0),
        trace: checked.trace,
        store_bytes: to_u32(manifest.store.unwrap_or(0), "store size")?,
        apps,
        regions,
    })
}

/// `; app "a" evicts by clock at 64 frames, store 8192 KiB` for `cargo xtask check`; empty when
/// no app evicts.
pub fn describe_eviction(manifest: &Manifest) -> String {
    let mut text = String::new();
    for app in manifest.apps.iter().filter(|app| app.evict.evicts()) {
        let at = match app.frame_budget {
            Some(budget) => format!("{budget} frames"),
            None => String::from("the pool's end"),
        };
        text += &format!("; app {:?} evicts by {} at {at}", app.name, app.evict.name());
    }
    if let Some(store) = manifest.store {
        text += &format!(", store {} KiB", store >> 10);
    }
    text
}

/// The boot image's number of an eviction mode ([`bootimage::eviction`]).
fn eviction_code(evict: Eviction) -> u8 {
    match evict {
        Eviction::None => bootimage::eviction::NONE,
        Eviction::Fifo => bootimage::eviction::FIFO,
        Eviction::Clock => bootimage::eviction::CLOCK,
    }
}

/// The files of a written image.
pub struct Written {
    pub directory: PathBuf,
    pub kernel: PathBuf,
    pub root_task: PathBuf,
    pub report: Report,
}

/// `report.json`.
#[derive(Serialize, Debug)]
pub struct Report {
    pub image: String,
    pub description: String,
    pub manifest: String,
    pub policy: PolicyReport,
    pub frames: u32,
    /// The cap on cap-copy slots, when the manifest sets one.
    pub copy_slots: Option<u32>,
    /// Bytes of guest memory QEMU gets.
    pub memory: u64,
    pub timeout_seconds: u64,
    /// The kernel build the image boots: "release" or "debug".
    pub kernel: &'static str,
    /// Bytes the compressed store of evicted dirty pages may hold, when some app evicts.
    pub store: Option<u64>,
    pub root_task: RootTaskReport,
    pub regions: Vec<RegionReport>,
    pub apps: Vec<AppReport>,
}

#[derive(Serialize, Debug)]
pub struct PolicyReport {
    pub name: &'static str,
    /// Pages ahead (fault-around only).
    pub pages: u32,
}

#[derive(Serialize, Debug)]
pub struct RootTaskReport {
    pub apps_start: u64,
    /// File offset and length of the packed image inside `root-task.elf`.
    pub image_offset: u64,
    pub image_length: u64,
    /// Pages of the root task's loaded range, one root-CNode slot each.
    pub span_pages: u64,
    pub span_limit_pages: u64,
}

#[derive(Serialize, Debug)]
pub struct RegionReport {
    pub name: String,
    pub size: u64,
}

#[derive(Serialize, Debug)]
pub struct AppReport {
    pub name: String,
    /// `crate` or `elf`, as the manifest says.
    pub source: String,
    /// The ELF packed, relative to the workspace when inside it.
    pub elf: String,
    pub size: u64,
    /// Page of the packed image the ELF starts on.
    pub image_page: u32,
    pub entry: u64,
    pub segments: Vec<SegmentReport>,
    pub instances: u16,
    pub runs: u16,
    pub heap: Option<RangeReport>,
    pub stack: StackReport,
    pub frame_budget: Option<u32>,
    /// What a client does at its budget: "none" (it is stopped), "fifo" or "clock".
    pub evict: &'static str,
    /// Milliseconds of guest time one run may take.
    pub time_limit_ms: u32,
    /// The apps this one may share its areas into.
    pub share_to: Vec<String>,
    pub attachments: Vec<AttachmentReport>,
    /// The policy of each area kind (text, rodata, data, bss, heap, stack) and attached region,
    /// with the fault-around windows `[file, zero]`.
    pub policy: std::collections::BTreeMap<String, String>,
    pub fault_around: [u32; 2],
    pub expect: ExpectReport,
}

#[derive(Serialize, Debug)]
pub struct SegmentReport {
    pub vaddr: u64,
    pub memsz: u64,
    pub filesz: u64,
    pub rights: String,
}

#[derive(Serialize, Debug)]
pub struct RangeReport {
    pub base: u64,
    pub size: u64,
}

#[derive(Serialize, Debug)]
pub struct StackReport {
    pub top: u64,
    pub size: u64,
    pub guard: u64,
}

#[derive(Serialize, Debug)]
pub struct AttachmentReport {
    pub region: String,
    pub address: u64,
    pub writable: bool,
}

#[derive(Serialize, Debug)]
pub struct ExpectReport {
    pub exit_code: Option<i32>,
    pub stopped: Option<String>,
    pub output: Vec<String>,
}

fn relative(workspace: &Workspace, path: &Path) -> String {
    let path = apps::normalize(path);
    path.strip_prefix(&workspace.root).unwrap_or(&path).display().to_string()
}

/// Composes the root task with the image and describes it.
pub fn compose(workspace: &Workspace, checked: &Checked, root_task: &Path) -> Result<(Composed, Report)> {
    let manifest = &checked.manifest;
    let image_bytes = pack(checked)?;
    let packed = bootimage::BootImage::parse(&image_bytes).expect("checked in pack");
    let root_task_bytes =
        std::fs::read(root_task).with_context(|| format!("cannot read {}", root_task.display()))?;
    let composed =
        RootTask::parse(&root_task_bytes).and_then(|parsed| parsed.compose(&image_bytes)).with_context(
            || format!("{}: cannot compose with {}", manifest.file.display(), root_task.display()),
        )?;

    let images = layout::parse_elfs(manifest, &checked.elfs)?;
    let mut apps = Vec::new();
    for (((app, elf), image), record) in
        manifest.apps.iter().zip(&checked.elfs).zip(&images).zip(packed.apps())
    {
        let mut app_policy: std::collections::BTreeMap<String, String> = manifest::AREA_KINDS
            .iter()
            .zip(app.policy.kinds)
            .map(|(kind, name)| (kind.to_string(), name.name().to_string()))
            .collect();
        for (attachment, name) in app.attachments.iter().zip(&app.policy.attachments) {
            app_policy.insert(manifest.regions[attachment.region].name.clone(), name.name().to_string());
        }
        apps.push(AppReport {
            policy: app_policy,
            fault_around: [app.policy.fault_around.0, app.policy.fault_around.1],
            name: app.name.clone(),
            source: match &app.source {
                AppSource::Crate(krate) => format!("crate {krate}"),
                AppSource::Elf(path) => format!("elf {}", relative(workspace, path)),
            },
            elf: relative(workspace, &elf.path),
            size: elf.bytes.len() as u64,
            image_page: record.elf_page.get(),
            entry: image.entry(),
            segments: image
                .segments()
                .iter()
                .map(|s| SegmentReport {
                    vaddr: s.vaddr,
                    memsz: s.memory_size,
                    filesz: s.file_size,
                    rights: s.rights.to_string(),
                })
                .collect(),
            instances: app.instances,
            runs: app.runs,
            heap: app.heap.map(|h| RangeReport { base: h.base, size: h.size }),
            stack: StackReport {
                top: app.stack.end(),
                size: app.stack.size,
                guard: app.stack.base - pager::PAGE_SIZE,
            },
            frame_budget: app.frame_budget,
            evict: app.evict.name(),
            time_limit_ms: app.time_limit_ms,
            share_to: app.share_to.iter().map(|&index| manifest.apps[index].name.clone()).collect(),
            attachments: app
                .attachments
                .iter()
                .map(|a| AttachmentReport {
                    region: manifest.regions[a.region].name.clone(),
                    address: a.address,
                    writable: a.writable,
                })
                .collect(),
            expect: ExpectReport {
                exit_code: app.expect.stopped.is_none().then_some(app.expect.exit_code),
                stopped: app.expect.stopped.clone(),
                output: app.expect.output.clone(),
            },
        });
    }
    let (name, _, pages) = policy(manifest.policy);
    let report = Report {
        image: manifest.name.clone(),
        description: manifest.description.clone(),
        manifest: relative(workspace, &manifest.file),
        policy: PolicyReport { name, pages },
        frames: manifest.frames,
        copy_slots: manifest.copy_slots,
        memory: manifest.memory,
        timeout_seconds: manifest.timeout_seconds,
        kernel: manifest.kernel.name(),
        store: manifest.store,
        root_task: RootTaskReport {
            apps_start: composed.apps_start,
            image_offset: composed.image_offset,
            image_length: composed.image_length,
            span_pages: composed.span.pages(),
            span_limit_pages: compose::SPAN_LIMIT_PAGES,
        },
        regions: manifest
            .regions
            .iter()
            .map(|r| RegionReport { name: r.name.clone(), size: r.size })
            .collect(),
        apps,
    };
    Ok((composed, report))
}

/// `run.sh`: the QEMU command line (with the image's guest `memory` in bytes) and paths relative to
/// the script's folder; `ICOUNT=1` in the environment adds `-icount`.
pub fn run_script(name: &str, memory: u64, variant: crate::kernel::Variant) -> String {
    let mut arguments = qemu::arguments("@KERNEL@", "@ROOT_TASK@", memory);
    arguments.extend(qemu::kernel_arguments(variant, "@COM2@"));
    let quoted: Vec<String> = arguments
        .iter()
        .map(|argument| match argument.as_str() {
            "@KERNEL@" => "\"$here/kernel32.elf\"".to_owned(),
            "@ROOT_TASK@" => "\"$here/root-task.elf\"".to_owned(),
            "file:@COM2@" => "\"file:$here/com2.log\"".to_owned(),
            plain if plain.bytes().all(|b| b.is_ascii_alphanumeric() || b",._=/:-".contains(&b)) => {
                plain.to_owned()
            }
            other => format!("'{}'", other.replace('\'', "'\\''")),
        })
        .collect();
    let icount = qemu::ICOUNT_ARGUMENTS.join(" ");
    format!(
        "#!/bin/sh\n\
         # Boots the system image {name:?} under QEMU, serial on stdout. A pager run ends with one\n\
         # `[test] PASS` or `[test] FAIL: ...` line and, on a pass, QEMU exit status {status}.\n\
         # ICOUNT=1 adds `{icount}`: one guest instruction per clock tick, a repeatable run.\n\
         set -eu\n\
         here=$(CDPATH= cd -- \"$(dirname -- \"$0\")\" && pwd)\n\
         set -- {arguments}\n\
         if [ -n \"${{ICOUNT:-}}\" ] && [ \"$ICOUNT\" != 0 ]; then\n\
         \x20   set -- \"$@\" {icount}\n\
         fi\n\
         exec {program} \"$@\"\n",
        status = qemu::SUCCESS_EXIT_STATUS,
        arguments = quoted.join(" "),
        program = qemu::PROGRAM,
    )
}

/// Writes the image folder: `kernel32.elf` (copied), `root-task.elf` (composed), `run.sh`,
/// `report.json`.
pub fn write(
    workspace: &Workspace,
    checked: &Checked,
    kernel: &Path,
    root_task: &Path,
    directory: &Path,
) -> Result<Written> {
    let (composed, report) = compose(workspace, checked, root_task)?;
    std::fs::create_dir_all(directory).with_context(|| format!("cannot create {}", directory.display()))?;
    let write = |name: &str, bytes: &[u8]| -> Result<PathBuf> {
        let path = directory.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    };
    let kernel_bytes = std::fs::read(kernel).with_context(|| format!("cannot read {}", kernel.display()))?;
    let kernel = write("kernel32.elf", &kernel_bytes)?;
    let root_task = write("root-task.elf", &composed.bytes)?;
    let script = write(
        "run.sh",
        run_script(&checked.manifest.name, checked.manifest.memory, checked.manifest.kernel).as_bytes(),
    )?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot make {} executable", script.display()))?;
    }
    let mut json = serde_json::to_string_pretty(&report).context("cannot serialize the report")?;
    json.push('\n');
    write("report.json", json.as_bytes())?;
    Ok(Written { directory: directory.to_path_buf(), kernel, root_task, report })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_script_quotes_and_locates_its_files() {
        let script = run_script("demo", 96 << 20, crate::kernel::Variant::Release);
        assert!(script.contains("-cpu Haswell -m 96M "), "{script}");
        assert!(script.starts_with("#!/bin/sh\n"));
        assert!(
            script.contains("-kernel \"$here/kernel32.elf\" -initrd \"$here/root-task.elf\""),
            "{script}"
        );
        assert!(script.contains("isa-debug-exit,iobase=0xf4,iosize=0x04"), "{script}");
        assert!(script.contains("set -- \"$@\" -icount shift=0,sleep=off"), "{script}");
        assert!(script.ends_with("exec qemu-system-x86_64 \"$@\"\n"), "{script}");
        assert!(!script.contains("console_port"), "the release kernel prints nothing: {script}");
        let debug = run_script("demo", 96 << 20, crate::kernel::Variant::Debug);
        assert!(
            debug.contains("-append 'console_port=0x2f8 debug_port=0x2f8' -serial \"file:$here/com2.log\""),
            "{debug}"
        );
    }

    #[test]
    fn an_app_policy_table_packs_to_the_abi_numbers() {
        use manifest::PolicyName::*;
        let table = manifest::AppPolicy {
            kinds: [Seed, Eager, Cow, ZeroPage, LargePages, FaultAround],
            attachments: vec![Cow],
            fault_around: (2, 100),
            from_image: false,
        };
        let (codes, windows) = app_policy(&table);
        let expected = [
            abi::policy::SEED,
            abi::policy::EAGER,
            abi::policy::COW,
            abi::policy::ZERO_PAGE,
            abi::policy::LARGE_PAGES,
            abi::policy::FAULT_AROUND,
        ];
        assert_eq!(codes, expected.map(|code| code as u8));
        assert_eq!(windows, [2, 64], "windows are at most 64 pages");
        assert_eq!(policy(Policy::FaultAround { pages: 3 }), ("fault-around", abi::policy::FAULT_AROUND, 3));
        assert_eq!(policy(Policy::Named(Cow)), ("cow", abi::policy::COW, 0));
    }

    #[test]
    fn check_names_each_evicting_app_and_the_store() {
        let text = "name = \"x\"\nstore = \"8M\"\n[[app]]\nname = \"a\"\ncrate = \"a\"\nframe_budget = 64\n\
                    evict = \"clock\"\n[[app]]\nname = \"b\"\ncrate = \"b\"\n";
        let manifest = Manifest::parse(Path::new("manifests/t.toml"), text).unwrap();
        assert_eq!(describe_eviction(&manifest), "; app \"a\" evicts by clock at 64 frames, store 8192 KiB");
        let plain = Manifest::parse(
            Path::new("manifests/t.toml"),
            &text.replace("store = \"8M\"\n", "").replace("evict = \"clock\"\n", ""),
        )
        .unwrap();
        assert_eq!(describe_eviction(&plain), "");
        let pool =
            Manifest::parse(Path::new("manifests/t.toml"), &text.replace("frame_budget = 64\n", "")).unwrap();
        assert_eq!(describe_eviction(&pool), "; app \"a\" evicts by clock at the pool's end, store 8192 KiB");
    }

    #[test]
    fn eviction_modes_pack_to_the_boot_image_numbers() {
        let codes = Eviction::ALL.map(eviction_code);
        assert_eq!(codes, [bootimage::eviction::NONE, bootimage::eviction::FIFO, bootimage::eviction::CLOCK]);
        assert_eq!(codes, [0, 1, 2]);
        // The root task hands the number to the pager as is.
        for evict in Eviction::ALL {
            let mode = pager::EvictMode::from_code(u32::from(eviction_code(evict)));
            assert_eq!(mode.map(|mode| mode.name()), Some(evict.name()));
        }
    }

    #[test]
    fn packs_only_the_loadable_part_of_an_elf() {
        // Two one-page segments (file bytes at 0x1000 and 0x2000, 0x100 and 0x80 of them), junk
        // between them, then "debug info" and a section header table the pager never reads.
        let mut bytes = crate::layout::tests::elf(&[(0x40_0000, 0x100, 5), (0x40_1000, 0x80, 6)]);
        bytes[0x1100..0x2000].fill(0xcc);
        bytes.extend_from_slice(&[0xdb; 8192]);
        let section_headers = bytes.len() as u64;
        bytes[0x28..0x30].copy_from_slice(&section_headers.to_le_bytes());
        bytes[0x3c..0x3e].copy_from_slice(&9u16.to_le_bytes());
        let part = loadable_part(&bytes).unwrap();
        assert_eq!(part.len(), 0x3000, "up to the page holding the last segment's file bytes");
        assert_eq!(&part[0x40..0x1100], &bytes[0x40..0x1100]);
        assert_eq!(&part[0x2000..0x2080], &bytes[0x2000..0x2080]);
        assert!(part[0x1100..0x2000].iter().chain(&part[0x2080..]).all(|&b| b == 0), "zeroes between");
        assert_eq!(&part[0x28..0x30], &[0; 8], "no section header table");
        assert_eq!(&part[0x3a..0x40], &[0; 6]);
        let original = pager::elf::ElfImage::parse(&bytes).unwrap();
        let packed = pager::elf::ElfImage::parse(&part).unwrap();
        assert_eq!(original.segments(), packed.segments());
        assert_eq!(original.entry(), packed.entry());
        assert!(loadable_part(b"not an elf").is_err());
    }
}
