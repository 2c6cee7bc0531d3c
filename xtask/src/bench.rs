//! `cargo xtask bench`: the pager's costs, measured where they can be trusted.
//!
//! On seL4, every `manifests/bench/*.toml` boots under `-icount shift=0,sleep=off`, where the TSC
//! advances by one per guest instruction: a difference of two `rdtsc` readings is an instruction
//! count, and the same binaries give the same counts on every run. Each image boots `--runs` times
//! (two by default) and the figures must repeat exactly, or the bench fails. Two kinds of figures
//! come out of the serial output:
//! - per fault class, the client's round trip (its `bench:` lines, `apps/c/bench-faults.c`), the
//!   pager's own part and its kernel entries (`[stats] scope=class`, root-task/src/fault_loop.rs);
//! - per loading policy, for one client touching part or all of a large `.bss`
//!   (`apps/c/bench-touch.c`): frames used, and instructions from the pager's setup of the client to
//!   its first instruction and to its exit (`bench: first_tsc=` and `[stats] scope=timeline`).
//!
//! On the host it runs the pager's core benchmark (`cargo bench -p pager-tests --bench pager`:
//! faults resolved per second on the model kernel and metadata bytes per resident page, each
//! against a `BTreeMap` baseline measured in the same run) and takes its `host.json` in whole.
//! Everything lands in `target/bench/bench.json` and `target/bench/bench.md`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::qemu;
use crate::stats::{self, Record};
use crate::workspace::{cargo, Workspace};
use crate::{expect, host_setup, kernel, root_task, test};

#[derive(clap::Args)]
pub struct BenchArguments {
    /// Boots per image; the figures of every boot must be identical.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Leave out the host benchmarks, core and replay (the seL4 figures alone).
    #[arg(long)]
    no_host: bool,
    /// Leave out the scale images (`manifests/bench/scale/`: 64 clients, 100,000 resident pages),
    /// which take most of the bench's time.
    #[arg(long)]
    quick: bool,
}

/// The `bench:` line an app prints: `[<client>] bench: key=value ...`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct AppLine {
    client: String,
    pairs: Vec<(String, String)>,
}

impl AppLine {
    fn value(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn number(&self, key: &str) -> Result<u64> {
        let value =
            self.value(key).with_context(|| format!("{}'s bench line has no `{key}`", self.client))?;
        value
            .parse()
            .with_context(|| format!("{}'s bench line: `{key}={value}` is not a number", self.client))
    }
}

fn parse_app_line(line: &str) -> Option<AppLine> {
    let line = line.trim_matches('\r');
    let (client, rest) = line.strip_prefix('[')?.split_once("] bench: ")?;
    let pairs = rest
        .split_whitespace()
        .filter_map(|word| word.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    Some(AppLine { client: client.to_owned(), pairs })
}

/// What one boot of a bench image reported: the apps' `bench:` lines and the pager's `[stats]`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RunFigures {
    app_lines: Vec<AppLine>,
    stats: Vec<Record>,
}

impl RunFigures {
    fn parse(serial: &str) -> RunFigures {
        RunFigures {
            app_lines: serial.lines().filter_map(parse_app_line).collect(),
            stats: stats::parse(serial),
        }
    }

    fn record(&self, scope: &str, key: &str, value: &str) -> Result<&Record> {
        self.stats
            .iter()
            .find(|r| r.scope() == scope && r.value(key) == Some(value))
            .with_context(|| format!("no `[stats] scope={scope} {key}={value}` line"))
    }

    fn total(&self) -> Result<&Record> {
        self.stats.iter().find(|r| r.scope() == "total").context("no `[stats] scope=total` line")
    }

    /// The first difference from `other`, described, if any.
    fn difference(&self, other: &RunFigures) -> Option<String> {
        let lines = |figures: &RunFigures| -> Vec<String> {
            let apps = figures.app_lines.iter().map(|l| format!("[{}] bench: {:?}", l.client, l.pairs));
            let stats = figures.stats.iter().map(|r| format!("[stats] {:?}", r.pairs));
            apps.chain(stats).collect()
        };
        let (mine, theirs) = (lines(self), lines(other));
        if mine == theirs {
            return None;
        }
        let position =
            mine.iter().zip(&theirs).position(|(a, b)| a != b).unwrap_or(mine.len().min(theirs.len()));
        Some(format!(
            "figure line {position} differs: {:?} against {:?}",
            mine.get(position),
            theirs.get(position)
        ))
    }
}

fn number(record: &Record, key: &str) -> Result<u64> {
    let value = record
        .value(key)
        .with_context(|| format!("a `[stats] scope={}` line has no `{key}`", record.scope()))?;
    value.parse().with_context(|| format!("`[stats] {key}={value}` is not a number"))
}

/// The pager's name for the class an app's `class=` names: the same name (`shared-first`, a zero
/// fill into the shared pagemap, is a cost class of its own in the root task, apart from `zero`).
fn pager_class(app_class: &str) -> Option<&str> {
    match app_class {
        "image" | "copy" | "zero" | "mixed" | "shared-first" | "shared" => Some(app_class),
        _ => None,
    }
}

/// What each fault class means, for the tables.
fn class_description(class: &str) -> &'static str {
    match class {
        "image" => "read-only image frame (no copy)",
        "copy" => "writable page, copied",
        "zero" => "anonymous/.bss page, zeroed",
        "mixed" => "page straddling the file end",
        "shared-first" => "shared area, first touch (zero fill into the pagemap)",
        "shared" => "shared-pagemap hit",
        _ => "",
    }
}

/// Rounds to two decimals for the JSON.
fn two_decimals(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// One row per fault class: the client's round trip, the pager's part, its kernel entries.
fn fault_classes(figures: &RunFigures) -> Result<Vec<Value>> {
    let mut rows = Vec::new();
    for line in figures.app_lines.iter().filter(|l| l.value("class").is_some()) {
        let class = line.value("class").unwrap_or_default();
        let samples = line.number("samples")?;
        let median = line.number("median")?;
        let end_to_end = json!({
            "samples": samples,
            "median": median,
            "min": line.number("min")?,
            "max": line.number("max")?,
            "mean": two_decimals(line.number("sum")? as f64 / samples.max(1) as f64),
            "warm_access": line.number("warm")?,
        });
        let pager = match pager_class(class) {
            Some(pager_class) => {
                let record = figures.record("class", "class", pager_class)?;
                let faults = number(record, "faults")?.max(1) as f64;
                let mean = number(record, "pager_ticks")? as f64 / faults;
                let in_kernel = number(record, "pager_kernel_ticks")? as f64 / faults;
                json!({
                    "faults": number(record, "faults")?,
                    "median": number(record, "pager_ticks_median")?,
                    "mean": two_decimals(mean),
                    "mean_in_kernel_calls": two_decimals(in_kernel),
                    "mean_in_pager_code": two_decimals(mean - in_kernel),
                    "median_in_pager_code": number(record, "pager_code_median")?,
                    // A copy's code less its 4 KiB copy (the root task times one apart): the
                    // fault path beside its memcpy. Only the copy class copies a whole page each.
                    "median_in_pager_code_less_copy": if pager_class == "copy" {
                        let copy = number(record, "page_copy_ticks")?;
                        json!(number(record, "pager_code_median")?.saturating_sub(copy))
                    } else {
                        Value::Null
                    },
                    "page_copy": number(record, "page_copy_ticks")?,
                    "timing_overhead_per_call": number(record, "timing_overhead")?,
                    "min": number(record, "pager_ticks_min")?,
                    "max": number(record, "pager_ticks_max")?,
                    "kernel_entries_per_fault": two_decimals(number(record, "kernel_entries")? as f64 / faults),
                    "kernel_entries_min": number(record, "kernel_entries_min")?,
                })
            }
            None => Value::Null,
        };
        rows.push(json!({
            "client": line.client,
            "class": class,
            "description": class_description(class),
            "end_to_end_instructions": end_to_end,
            "pager_instructions": pager,
        }));
    }
    Ok(rows)
}

/// One row per touching client: frames, faults and instructions to its first instruction and exit.
fn loading(figures: &RunFigures) -> Result<Vec<Value>> {
    let total = figures.total()?;
    let mut rows = Vec::new();
    for line in figures.app_lines.iter().filter(|l| l.value("first_tsc").is_some()) {
        let timeline = figures.record("timeline", "client", &line.client)?;
        let client = figures.record("client", "name", &line.client)?;
        let setup = number(timeline, "setup_tsc")?;
        let first = line.number("first_tsc")?;
        let end = number(timeline, "end_tsc")?;
        if first < setup || end < first {
            bail!(
                "{}: time stamps out of order: setup {setup}, first instruction {first}, end {end}",
                line.client
            );
        }
        rows.push(json!({
            "client": line.client,
            "policy": total.value("policy").unwrap_or("?"),
            "pages_touched": line.number("touched")?,
            "bss_pages": line.number("of")?,
            "frames": number(client, "frames")?,
            "frames_created": number(total, "frames_created")?,
            "faults": number(client, "faults")?,
            "pages_mapped_before_start": number(total, "startup_pages")?,
            "instructions_to_first_instruction": first - setup,
            "instructions_to_exit": end - setup,
        }));
    }
    Ok(rows)
}

/// The kernel's floor, from the floor image (`manifests/bench/floor.toml`): the client's `ud2`
/// round trip, the pager's part of it, and the probe's `CNode_Copy` and `Page_Map`. `None` when
/// the image has no floor client.
fn floor(figures: &RunFigures) -> Result<Option<Value>> {
    let Some(line) = figures.app_lines.iter().find(|l| l.value("floor") == Some("round_trip")) else {
        return Ok(None);
    };
    let record = figures.record("floor", "client", &line.client)?;
    let samples = line.number("samples")?;
    let round_trip = line.number("median")?;
    let pager_code = number(record, "pager_ticks_median")?;
    if pager_code > round_trip {
        bail!(
            "{}: the pager's part of the floor round trip ({pager_code}) exceeds the whole ({round_trip})",
            line.client
        );
    }
    Ok(Some(json!({
        "client": line.client,
        "round_trip": {
            "samples": samples,
            "median": round_trip,
            "min": line.number("min")?,
            "max": line.number("max")?,
            "mean": two_decimals(line.number("sum")? as f64 / samples.max(1) as f64),
            "warm": line.number("warm")?,
        },
        "round_trip_pager_code": pager_code,
        "round_trip_kernel": round_trip - pager_code,
        "probe_rounds": number(record, "rounds")?,
        "cnode_copy": number(record, "cnode_copy_median")?,
        "cnode_copy_min": number(record, "cnode_copy_min")?,
        "page_map": number(record, "page_map_median")?,
        "page_map_min": number(record, "page_map_min")?,
    })))
}

/// Whether a class's fault needs a second cap to its frame on seL4 5.0, whatever the pager does:
/// an image frame is the root task's and every instance maps its own copy; a copied or mixed
/// page's frame is filled through the pager's own mapping; a shared hit's frame is mapped in the
/// other attachment already. A zero fault's fresh frame (zero from `Untyped_Retype`) is mapped
/// with its own cap, so is a shared area's first touch.
fn needs_second_cap(class: &str) -> bool {
    matches!(class, "image" | "copy" | "mixed" | "shared")
}

/// Adds `floor_instructions` (the kernel work the class cannot avoid: the round trip's kernel
/// part, `Page_Map`, and `CNode_Copy` where a second cap is unavoidable) and `floor_ratio` (the
/// end-to-end median over it) to each class row.
fn add_floor(classes: &mut [Value], floor: &Value) -> Result<()> {
    let part = |key: &str| floor[key].as_u64().with_context(|| format!("the floor has no `{key}`"));
    let (round_trip, page_map, cnode_copy) =
        (part("round_trip_kernel")?, part("page_map")?, part("cnode_copy")?);
    for row in classes {
        let class = row["class"].as_str().unwrap_or_default();
        let floor_instructions = round_trip + page_map + if needs_second_cap(class) { cnode_copy } else { 0 };
        let median = row["end_to_end_instructions"]["median"].as_u64().unwrap_or(0);
        row["floor_instructions"] = json!(floor_instructions);
        row["floor_ratio"] = json!(two_decimals(median as f64 / floor_instructions.max(1) as f64));
    }
    Ok(())
}

/// One scale image's row: its clients, the pages each keeps resident, and the pager's cost per
/// zero fault (`apps/c/bench-scale.c`: every fault of the image but a few is one).
fn scale_row(image: &ImageResult) -> Result<Value> {
    let figures = &image.figures;
    let lines: Vec<&AppLine> = figures.app_lines.iter().filter(|l| l.value("pages").is_some()).collect();
    let Some(first) = lines.first() else { bail!("{}: no `bench: scale` line", image.name) };
    let pages = first.number("pages")?;
    let zero = figures.record("class", "class", "zero")?;
    let faults = number(zero, "faults")?;
    let code = number(zero, "pager_ticks")?.saturating_sub(number(zero, "pager_kernel_ticks")?);
    Ok(json!({
        "image": image.name,
        "clients": number(figures.total()?, "clients")?,
        "resident_pages_per_client": pages,
        "zero_faults": faults,
        "pager_code_per_fault": two_decimals(code as f64 / faults.max(1) as f64),
        "pager_ticks_median": number(zero, "pager_ticks_median")?,
        // The median of the pager's own code per fault, where the root task reports it.
        "pager_code_median": zero.value("pager_code_median").and_then(|v| v.parse::<u64>().ok()),
        "kernel_entries_per_fault": two_decimals(number(zero, "kernel_entries")? as f64 / faults.max(1) as f64),
    }))
}

/// The scale table: a row per scale image, from one small client up, each row's pager code per
/// fault against the one-client row with the fewest pages (`vs_one_small_client`); `null` when
/// no scale image ran (`--quick`).
fn scale(images: &[ImageResult]) -> Result<Value> {
    let mut rows = images.iter().map(scale_row).collect::<Result<Vec<Value>>>()?;
    if rows.is_empty() {
        return Ok(Value::Null);
    }
    let key = |row: &Value| (row["clients"].as_u64(), row["resident_pages_per_client"].as_u64());
    rows.sort_by_key(key);
    let baseline = rows
        .iter()
        .find(|row| row["clients"] == 1)
        .context("no scale image with one client, the baseline")?;
    let (baseline_image, baseline_code) =
        (baseline["image"].clone(), baseline["pager_code_per_fault"].as_f64());
    let baseline_code = baseline_code.filter(|&code| code > 0.0).context("the baseline's pager code is 0")?;
    for row in &mut rows {
        let code = row["pager_code_per_fault"].as_f64().unwrap_or(0.0);
        row["vs_one_small_client"] = json!(two_decimals(code / baseline_code));
    }
    Ok(json!({ "baseline": baseline_image, "rows": rows }))
}

/// A boot's entry in `sel4.boots`.
fn boot_entry(image: &ImageResult) -> Value {
    json!({
        "image": image.name,
        "manifest": image.manifest,
        "runs": image.runs,
        "kernel": image.kernel.name(),
        "figures_identical": true,
        "serial_identical": image.serial_identical,
    })
}

/// A bench image's result.
struct ImageResult {
    manifest: String,
    name: String,
    runs: u32,
    serial_identical: bool,
    figures: RunFigures,
    /// The kernel build measured (the manifest's `kernel`).
    kernel: kernel::Variant,
}

fn bench_image(workspace: &Workspace, root_task: &Path, manifest: &Path, runs: u32) -> Result<ImageResult> {
    let (checked, boot_image) = crate::compose_manifest(workspace, root_task, manifest)?;
    let name = boot_image.name.clone();
    let boot = crate::BootArguments { timeout: None, icount: true };
    let options = boot.to_options(workspace, Some(checked.manifest.timeout_seconds));
    let mut first: Option<(String, RunFigures)> = None;
    let mut serial_identical = true;
    for run in 1..=runs {
        let outcome = qemu::boot(&boot_image, &options)?;
        expect::judge(&checked.manifest, &outcome).map_err(|reason| {
            anyhow::anyhow!("{name} (run {run}): {reason}\n(serial log: {})", outcome.log.display())
        })?;
        let figures = RunFigures::parse(&outcome.serial);
        eprintln!("    {name}: run {run} of {runs}, {:.1} s", outcome.duration.as_secs_f64());
        match &first {
            None => first = Some((outcome.serial, figures)),
            Some((serial, earlier)) => {
                if let Some(difference) = earlier.difference(&figures) {
                    bail!("{name}: run {run}'s figures differ from run 1's under -icount: {difference}");
                }
                serial_identical &= *serial == outcome.serial;
            }
        }
    }
    let (_, figures) = first.context("no run")?;
    let manifest = manifest.strip_prefix(&workspace.root).unwrap_or(manifest).display().to_string();
    Ok(ImageResult { manifest, name, runs, serial_identical, figures, kernel: boot_image.variant })
}

/// Runs the host benchmark and returns its `host.json`.
fn host_figures(workspace: &Workspace) -> Result<Value> {
    cargo_bench_json(workspace, "pager", "host.json")
}

/// Runs the replay benchmark and returns its `replay.json` (trace records replayed per second).
fn replay_figures(workspace: &Workspace) -> Result<Value> {
    cargo_bench_json(workspace, "replay", "replay.json")
}

/// Runs `cargo bench -p pager-tests --bench BENCH` and reads the JSON it leaves in
/// `<target>/bench/FILE`.
fn cargo_bench_json(workspace: &Workspace, bench: &str, file: &str) -> Result<Value> {
    eprintln!("... {bench} benchmark (cargo bench -p pager-tests --bench {bench})");
    let status = cargo()
        .args(["bench", "-p", "pager-tests", "--bench", bench])
        .current_dir(&workspace.root)
        .stdin(std::process::Stdio::null())
        .status()
        .context("cannot run cargo bench")?;
    if !status.success() {
        bail!("cargo bench -p pager-tests --bench {bench} failed ({status})");
    }
    let path = workspace.target_directory.join("bench").join(file);
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

pub fn run(workspace: &Workspace, arguments: &BenchArguments) -> Result<()> {
    let root_task = root_task::build(workspace)?;
    host_setup::ensure_qemu(workspace)?;
    let mut images = Vec::new();
    for manifest in test::toml_files(&workspace.root.join("manifests").join("bench"))? {
        eprintln!("... bench {} (-icount shift=0,sleep=off, {} runs)", manifest.display(), arguments.runs);
        images.push(bench_image(workspace, &root_task, &manifest, arguments.runs)?);
    }
    let mut scale_images = Vec::new();
    if !arguments.quick {
        for manifest in test::toml_files(&workspace.root.join("manifests").join("bench").join("scale"))? {
            eprintln!(
                "... bench {} (-icount shift=0,sleep=off, {} runs)",
                manifest.display(),
                arguments.runs
            );
            scale_images.push(bench_image(workspace, &root_task, &manifest, arguments.runs)?);
        }
    }
    let host = if arguments.no_host { Value::Null } else { host_figures(workspace)? };
    let mut report = report(&images, host)?;
    report["sel4"]["scale"] = scale(&scale_images)?;
    for image in &scale_images {
        if let Some(boots) = report["sel4"]["boots"].as_array_mut() {
            boots.push(boot_entry(image));
        }
    }
    if !arguments.no_host {
        // The replay benchmark times the recorded multi-client trace too.
        crate::trace::recorded_or_record(
            workspace,
            &root_task,
            &workspace.root.join("manifests/workloads.toml"),
        )?;
    }
    report["replay"] = if arguments.no_host { Value::Null } else { replay_figures(workspace)? };
    let directory = workspace.target_directory.join("bench");
    std::fs::create_dir_all(&directory).with_context(|| format!("cannot create {}", directory.display()))?;
    let json_path = directory.join("bench.json");
    let markdown_path = directory.join("bench.md");
    let markdown = markdown(&report);
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    std::fs::write(&markdown_path, &markdown)
        .with_context(|| format!("cannot write {}", markdown_path.display()))?;
    println!("{markdown}");
    eprintln!("wrote {} and {}", json_path.display(), markdown_path.display());
    Ok(())
}

/// The whole report as JSON.
fn report(images: &[ImageResult], host: Value) -> Result<Value> {
    let mut classes = Vec::new();
    let mut loads = Vec::new();
    let mut boots = Vec::new();
    let mut kernel_floor = Value::Null;
    for image in images {
        classes.extend(fault_classes(&image.figures)?);
        if let Some(found) = floor(&image.figures)? {
            kernel_floor = found;
        }
        loads.extend(loading(&image.figures)?);
        boots.push(json!({
            "image": image.name,
            "manifest": image.manifest,
            "runs": image.runs,
            "kernel": image.kernel.name(),
            "figures_identical": true,
            "serial_identical": image.serial_identical,
        }));
    }
    if !kernel_floor.is_null() {
        add_floor(&mut classes, &kernel_floor)?;
    }
    Ok(json!({
        "schema": 1,
        "sel4": {
            "kernel": "seL4 5.0.0, x86_64 pc99, QEMU TCG; each boot names its build (release: no debug syscalls, no kernel printing)",
            "qemu": "-icount shift=0,sleep=off: one TSC tick per guest instruction",
            "units": {
                "end_to_end_instructions": "guest instructions from the client's access to its completion, the same access to a mapped page subtracted (client-side rdtsc)",
                "pager_instructions": "guest instructions from the fault message's arrival in the pager to its reply (rdtsc in the pager), over every fault of the class in the image; the median is of the first 4096",
                "kernel_entries_per_fault": "the pager's kernel entries per fault, mean: its invocations (pool refills and new paging structures included) and the reply; the fault exception itself is one more",
                "kernel_entries_min": "the fewest kernel entries one fault of the class took: the common path",
                "mean_in_kernel_calls": "of pager_instructions.mean, the part inside the pager's own kernel calls (CNode_Copy, Page_Map, refills); the rest is the pager's code",
                "instructions_to_first_instruction": "from the pager beginning the client's setup to the client's first instruction",
                "instructions_to_exit": "from the pager beginning the client's setup to its exit call arriving",
                "floor": "seL4's own cost of a fault, measured in the same run (manifests/bench/floor.toml): round_trip is the floor client's ud2 round trip with nothing to map (the pager steps its IP over the instruction and replies, as sel4bench's fault benchmark does), round_trip_pager_code the pager's part of it (arrival to reply), round_trip_kernel the rest; cnode_copy and page_map are one call each as the pager times its own (median of probe_rounds)",
                "floor_instructions": "per class, the kernel work it cannot avoid on seL4 5.0: round_trip_kernel + page_map, + cnode_copy where a second cap to the frame is unavoidable (image, copy, mixed, shared)",
                "floor_ratio": "per class, end_to_end_instructions.median / floor_instructions",
            },
            "boots": boots,
            "floor": kernel_floor,
            "fault_classes": classes,
            "loading": loads,
        },
        "host": host,
    }))
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The kernel's floor and each class's ratio to it, when the run measured the floor.
fn markdown_floor(out: &mut String, sel4: &Value) {
    let floor = &sel4["floor"];
    if floor.is_null() {
        return;
    }
    let _ = writeln!(out, "\n## The kernel's floor (seL4 5.0, same run)\n");
    let _ = writeln!(out, "| part | instructions |");
    let _ = writeln!(out, "|---|---:|");
    let rows = [
        (
            "fault round trip, nothing to map (client `ud2`, pager steps over it), median",
            &floor["round_trip"]["median"],
        ),
        ("of it, the pager's code (arrival to reply), median", &floor["round_trip_pager_code"]),
        ("of it, the kernel: trap, fault IPC, `ReplyRecv`, return", &floor["round_trip_kernel"]),
        ("one `CNode_Copy` as the pager times it, median", &floor["cnode_copy"]),
        ("one `Page_Map` as the pager times it, median", &floor["page_map"]),
    ];
    for (part, value) in rows {
        let _ = writeln!(out, "| {part} | {} |", cell(value));
    }
    let _ = writeln!(
        out,
        "\n| class | end to end, median | floor (kernel work it cannot avoid) | of it | floor ratio |"
    );
    let _ = writeln!(out, "|---|---:|---:|---|---:|");
    for row in sel4["fault_classes"].as_array().into_iter().flatten() {
        let class = row["class"].as_str().unwrap_or_default();
        let parts = if needs_second_cap(class) {
            "round trip + `CNode_Copy` + `Page_Map`"
        } else {
            "round trip + `Page_Map`"
        };
        let ratio = row["floor_ratio"].as_f64().map_or("-".to_owned(), |v| format!("{v:.2}"));
        let _ = writeln!(
            out,
            "| {class} | {} | {} | {parts} | {ratio} |",
            cell(&row["end_to_end_instructions"]["median"]),
            cell(&row["floor_instructions"]),
        );
    }
}

/// The scale table, when the run had the scale images.
fn markdown_scale(out: &mut String, sel4: &Value) {
    let Some(rows) = sel4["scale"]["rows"].as_array() else { return };
    let _ = writeln!(out, "\n## Scale: the pager's cost per fault against clients and resident pages\n");
    let _ = writeln!(
        out,
        "Each client writes every page of its heap once (zero faults on fresh frames) and keeps them \
         until all have (`manifests/bench/scale/`); against {}.\n",
        cell(&sel4["scale"]["baseline"])
    );
    let _ = writeln!(
        out,
        "| clients | resident pages per client | zero faults | pager code per fault (mean) | pager code, median | pager part, median | kernel entries per fault | vs one small client |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&row["clients"]),
            cell(&row["resident_pages_per_client"]),
            cell(&row["zero_faults"]),
            cell(&row["pager_code_per_fault"]),
            cell(&row["pager_code_median"]),
            cell(&row["pager_ticks_median"]),
            cell(&row["kernel_entries_per_fault"]),
            row["vs_one_small_client"].as_f64().map_or("-".to_owned(), |v| format!("{v:.2}")),
        );
    }
}

/// The report as markdown tables.
fn markdown(report: &Value) -> String {
    let mut out = String::new();
    let sel4 = &report["sel4"];
    let _ = writeln!(out, "## Fault costs on seL4 (guest instructions, `-icount shift=0`)\n");
    let kernels: Vec<String> = sel4["boots"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|boot| format!("{} on the {} kernel", cell(&boot["image"]), cell(&boot["kernel"])))
        .collect();
    let _ = writeln!(out, "Measured: {}.\n", kernels.join(", "));
    let _ = writeln!(
        out,
        "| class | samples | end to end, median | min | max | pager part, median | mean | of the mean, pager code | pager code, median | less its 4 KiB copy | kernel entries, mean | min |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in sel4["fault_classes"].as_array().into_iter().flatten() {
        let e = &row["end_to_end_instructions"];
        let p = &row["pager_instructions"];
        let _ = writeln!(
            out,
            "| {} ({}) | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&row["class"]),
            cell(&row["description"]),
            cell(&e["samples"]),
            cell(&e["median"]),
            cell(&e["min"]),
            cell(&e["max"]),
            cell(&p["median"]),
            cell(&p["mean"]),
            cell(&p["mean_in_pager_code"]),
            cell(&p["median_in_pager_code"]),
            cell(&p["median_in_pager_code_less_copy"]),
            cell(&p["kernel_entries_per_fault"]),
            cell(&p["kernel_entries_min"]),
        );
    }
    markdown_floor(&mut out, sel4);
    markdown_scale(&mut out, sel4);
    let _ = writeln!(out, "\n## Lazy (seed) against eager loading, 16 MiB .bss\n");
    let _ = writeln!(
        out,
        "| client | policy | pages touched | frames | faults | to first instruction | to exit |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|");
    for row in sel4["loading"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "| {} | {} | {} of {} | {} | {} | {} | {} |",
            cell(&row["client"]),
            cell(&row["policy"]),
            cell(&row["pages_touched"]),
            cell(&row["bss_pages"]),
            cell(&row["frames"]),
            cell(&row["faults"]),
            cell(&row["instructions_to_first_instruction"]),
            cell(&row["instructions_to_exit"]),
        );
    }
    let _ = writeln!(out, "\n## Repeatability\n");
    for boot in sel4["boots"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "- {}: {} runs, figures identical; serial output {}",
            cell(&boot["image"]),
            cell(&boot["runs"]),
            if boot["serial_identical"] == Value::Bool(true) { "byte-identical" } else { "differs" }
        );
    }
    let host = &report["host"];
    if let Some(classes) = host["fault_resolutions_per_second"].as_object() {
        let millions =
            |value: &Value| value.as_f64().map_or_else(|| cell(value), |v| format!("{:.2} M", v / 1e6));
        let _ = writeln!(out, "\n## Host core (faults resolved per second, median round)\n");
        let _ = writeln!(out, "| case | pager on the model kernel | pager alone | BTreeMap baseline |");
        let _ = writeln!(out, "|---|---:|---:|---:|");
        for (case, row) in classes {
            let _ = writeln!(
                out,
                "| {case} | {} | {} | {} |",
                millions(&row["pager_model"]),
                millions(&row["pager"]),
                millions(&row["baseline"])
            );
        }
    }
    if let Some(cases) = host["metadata_bytes_per_resident_page"].as_object() {
        let _ = writeln!(out, "\n## Host core (pager metadata, bytes per resident page)\n");
        let _ = writeln!(out, "| case | pager | BTreeMap baseline |");
        let _ = writeln!(out, "|---|---:|---:|");
        for (case, row) in cases {
            let _ = writeln!(out, "| {case} | {} | {} |", cell(&row["pager"]), cell(&row["baseline"]));
        }
    }
    if let Some(traces) = report["replay"].as_object() {
        let _ = writeln!(
            out,
            "\n## Trace replay (sim::replay, seed policy, best of at least five rounds, one core)\n"
        );
        let _ = writeln!(out, "| trace | records | faults | records per second |");
        let _ = writeln!(out, "|---|---:|---:|---:|");
        for (name, row) in traces {
            let rate =
                row["records_per_second"].as_f64().map_or("-".to_owned(), |v| format!("{:.2} M", v / 1e6));
            let _ = writeln!(
                out,
                "| {name}: `{}` | {} | {} | {rate} |",
                cell(&row["description"]),
                cell(&row["records"]),
                cell(&row["faults"])
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERIAL: &str = "\
boot\r
[bench-faults#0] bench: class=image samples=4 median=5080 min=5000 max=5392 sum=20472 warm=4\r
[bench-faults#0] bench: class=shared-first samples=2 median=6052 min=5830 max=6100 sum=11930 warm=4\r
[bench-touch#0] bench: first_tsc=1500 touched=410 of=4096\r
[stats] scope=client name=bench-touch#0 faults=413 frames=412\r
[stats] scope=timeline client=bench-touch#0 setup_tsc=1000 end_tsc=9000 ticks=8000\r
[stats] scope=class class=image faults=5 kernel_entries=15 kernel_entries_min=3 pager_ticks=17500 pager_ticks_min=3448 pager_ticks_median=3460 pager_ticks_max=3764 pager_kernel_ticks=12500 pager_code_median=410 timing_overhead=18 page_copy_ticks=530\r
[stats] scope=class class=shared-first faults=2 kernel_entries=4 kernel_entries_min=2 pager_ticks=6000 pager_ticks_min=2900 pager_ticks_median=3100 pager_ticks_max=3100 pager_kernel_ticks=2000 pager_code_median=980 timing_overhead=18 page_copy_ticks=530\r
[stats] scope=total clients=1 faults=413 policy=seed frames_created=416 startup_pages=0\r
";

    const FLOOR: &str = "\
[bench-floor#0] bench: floor=round_trip samples=64 median=1700 min=1690 max=1990 sum=110000 warm=5\r
[stats] scope=floor client=bench-floor#0 exceptions=65 pager_ticks_median=300 rounds=16 cnode_copy_median=1200 cnode_copy_min=1190 page_map_median=1000 page_map_min=990\r
[stats] scope=total clients=1 faults=3 policy=seed frames_created=32 startup_pages=0\r
";

    #[test]
    fn reads_app_lines() {
        let line = parse_app_line("[a#1] bench: class=zero samples=3\r").unwrap();
        assert_eq!(line.client, "a#1");
        assert_eq!(line.value("class"), Some("zero"));
        assert_eq!(line.number("samples").unwrap(), 3);
        assert!(line.number("median").is_err());
        assert_eq!(parse_app_line("[a#1] hello: bench: x=1"), None);
        assert_eq!(parse_app_line("bench: x=1"), None);
    }

    #[test]
    fn computes_class_rows() {
        let figures = RunFigures::parse(SERIAL);
        let rows = fault_classes(&figures).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["class"], "image");
        assert_eq!(rows[0]["end_to_end_instructions"]["median"], 5080);
        assert_eq!(rows[0]["end_to_end_instructions"]["mean"], 5118.0);
        assert_eq!(rows[0]["pager_instructions"]["mean"], 3500.0);
        assert_eq!(rows[0]["pager_instructions"]["kernel_entries_per_fault"], 3.0);
        assert_eq!(rows[0]["pager_instructions"]["median_in_pager_code"], 410);
        assert_eq!(rows[0]["pager_instructions"]["timing_overhead_per_call"], 18);
        // The first touches of a shared area are a class of their own in the pager too.
        assert_eq!(rows[1]["class"], "shared-first");
        assert_eq!(rows[1]["pager_instructions"]["faults"], 2);
        assert_eq!(rows[1]["pager_instructions"]["median_in_pager_code"], 980);
        assert_eq!(rows[1]["pager_instructions"]["median_in_pager_code_less_copy"], Value::Null);
        assert_eq!(rows[1]["pager_instructions"]["page_copy"], 530);
    }

    #[test]
    fn a_copy_row_gives_its_code_less_the_page_copy() {
        let figures = RunFigures::parse(&SERIAL.replace("class=shared-first", "class=copy"));
        let rows = fault_classes(&figures).unwrap();
        assert_eq!(rows[1]["class"], "copy");
        assert_eq!(rows[1]["pager_instructions"]["median_in_pager_code_less_copy"], 980 - 530);
    }

    #[test]
    fn computes_loading_rows() {
        let figures = RunFigures::parse(SERIAL);
        let rows = loading(&figures).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["instructions_to_first_instruction"], 500);
        assert_eq!(rows[0]["instructions_to_exit"], 8000);
        assert_eq!(rows[0]["frames"], 412);
        assert_eq!(rows[0]["policy"], "seed");
        let broken = SERIAL.replace("first_tsc=1500", "first_tsc=900");
        assert!(loading(&RunFigures::parse(&broken)).is_err());
    }

    #[test]
    fn computes_the_floor_and_each_class_ratio() {
        assert_eq!(floor(&RunFigures::parse(SERIAL)).unwrap(), None, "no floor client, no floor");
        let kernel_floor = floor(&RunFigures::parse(FLOOR)).unwrap().unwrap();
        assert_eq!(kernel_floor["round_trip_kernel"], 1400);
        assert_eq!(
            (kernel_floor["cnode_copy"].as_u64(), kernel_floor["page_map"].as_u64()),
            (Some(1200), Some(1000))
        );
        let mut rows = vec![
            json!({"class": "image", "end_to_end_instructions": {"median": 4320}}),
            json!({"class": "zero", "end_to_end_instructions": {"median": 3600}}),
        ];
        add_floor(&mut rows, &kernel_floor).unwrap();
        assert_eq!(rows[0]["floor_instructions"], 3600, "round trip, copy and map");
        assert_eq!(rows[0]["floor_ratio"], 1.2);
        assert_eq!(rows[1]["floor_instructions"], 2400, "round trip and map");
        assert_eq!(rows[1]["floor_ratio"], 1.5);
        // A pager part larger than the round trip is a broken measurement, not a negative floor.
        let broken = FLOOR.replace("pager_ticks_median=300", "pager_ticks_median=1800");
        assert!(floor(&RunFigures::parse(&broken)).is_err());
        // A floor client whose pager line is missing fails.
        assert!(floor(&RunFigures::parse(FLOOR.lines().next().unwrap())).is_err());
    }

    fn scale_image(name: &str, clients: u32, pages: u32, code: u64) -> ImageResult {
        let faults = u64::from(clients * pages);
        let mut serial = String::new();
        for client in 0..clients {
            serial += &format!("[bench-scale#{client}] bench: scale pages={pages}\r\n");
        }
        serial += &format!(
            "[stats] scope=class class=zero faults={faults} kernel_entries={} kernel_entries_min=3 pager_ticks={} \
             pager_ticks_min=3000 pager_ticks_median=3017 pager_ticks_max=9000 pager_kernel_ticks={}\r\n",
            faults * 4,
            faults * (2000 + code),
            faults * 2000
        );
        serial += &format!("[stats] scope=total clients={clients} faults={faults} policy=seed\r\n");
        ImageResult {
            manifest: format!("manifests/bench/scale/{name}.toml"),
            name: name.into(),
            runs: 2,
            serial_identical: true,
            figures: RunFigures::parse(&serial),
            kernel: crate::kernel::Variant::Release,
        }
    }

    #[test]
    fn the_scale_table_compares_each_image_with_one_small_client() {
        assert_eq!(scale(&[]).unwrap(), Value::Null, "--quick: no table");
        let images = [
            scale_image("many", 8, 1024, 880),
            scale_image("one", 1, 1024, 800),
            scale_image("big", 1, 10240, 960),
        ];
        let table = scale(&images).unwrap();
        assert_eq!(table["baseline"], "one");
        let rows = table["rows"].as_array().unwrap();
        let names: Vec<&str> = rows.iter().map(|r| r["image"].as_str().unwrap()).collect();
        assert_eq!(names, ["one", "big", "many"], "by clients, then pages");
        assert_eq!(rows[0]["vs_one_small_client"], 1.0);
        assert_eq!(rows[1]["vs_one_small_client"], 1.2);
        assert_eq!(rows[2]["vs_one_small_client"], 1.1);
        assert_eq!(rows[2]["kernel_entries_per_fault"], 4.0);
        let mut report = json!({"sel4": {"scale": table}});
        report["sel4"]["scale"]["baseline"] = json!("one");
        let mut text = String::new();
        markdown_scale(&mut text, &report["sel4"]);
        assert!(text.contains("| 8 | 1024 | 8192 | 880.0 | - | 3017 | 4.0 | 1.10 |"), "{text}");
        // A table without its one-client baseline is refused.
        assert!(scale(&images[..1]).is_err());
    }

    #[test]
    fn finds_the_first_difference() {
        let figures = RunFigures::parse(SERIAL);
        assert_eq!(figures.difference(&figures.clone()), None);
        let other = RunFigures::parse(&SERIAL.replace("median=5080", "median=5081"));
        let difference = figures.difference(&other).unwrap();
        assert!(difference.contains("line 0"), "{difference}");
        assert!(figures.difference(&RunFigures::parse("")).is_some());
    }

    #[test]
    fn renders_every_table() {
        let figures = RunFigures::parse(SERIAL);
        let image = ImageResult {
            manifest: "manifests/bench/x.toml".into(),
            name: "x".into(),
            runs: 2,
            serial_identical: true,
            figures,
            kernel: crate::kernel::Variant::Release,
        };
        let host = json!({
            "fault_resolutions_per_second": {"zero": {"pager_model": 1.0e6, "pager": 2.5e6, "baseline": 3.0e6}},
            "metadata_bytes_per_resident_page": {"dense": {"pager": 20.1, "baseline": 68.5}},
        });
        let report = report(&[image], host).unwrap();
        let text = markdown(&report);
        assert!(
            text.contains("| image (read-only image frame (no copy)) | 4 | 5080 | 5000 | 5392 | 3460 | 3500.0 | 1000.0 | 410 | - | 3.0 | 3 |"),
            "{text}"
        );
        assert!(text.contains("| bench-touch#0 | seed | 410 of 4096 | 412 | 413 | 500 | 8000 |"), "{text}");
        assert!(text.contains("| zero | 1.00 M | 2.50 M | 3.00 M |"), "{text}");
        assert!(text.contains("| dense | 20.1 | 68.5 |"), "{text}");
        assert!(text.contains("x: 2 runs, figures identical; serial output byte-identical"), "{text}");
        assert!(text.contains("Measured: x on the release kernel."), "{text}");
        assert!(!text.contains("The kernel's floor"), "no floor measured, no floor table: {text}");
        let with_floor = ImageResult {
            manifest: "manifests/bench/f.toml".into(),
            name: "f".into(),
            runs: 2,
            serial_identical: true,
            figures: RunFigures::parse(FLOOR),
            kernel: crate::kernel::Variant::Release,
        };
        let image = ImageResult {
            manifest: "manifests/bench/x.toml".into(),
            name: "x".into(),
            runs: 2,
            serial_identical: true,
            figures: RunFigures::parse(SERIAL),
            kernel: crate::kernel::Variant::Release,
        };
        let text = markdown(&super::report(&[image, with_floor], Value::Null).unwrap());
        assert!(
            text.contains("| of it, the kernel: trap, fault IPC, `ReplyRecv`, return | 1400 |"),
            "{text}"
        );
        assert!(
            text.contains("| image | 5080 | 3600 | round trip + `CNode_Copy` + `Page_Map` | 1.41 |"),
            "{text}"
        );
        assert_eq!(report["sel4"]["boots"][0]["kernel"], "release");
    }
}
