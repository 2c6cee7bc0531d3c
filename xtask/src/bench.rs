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

/// The pager's name for the class an app's `class=` names (`shared-first` is a zero fill into the
/// shared pagemap: the pager counts it with the other zero fills).
fn pager_class(app_class: &str) -> Option<&str> {
    match app_class {
        "image" | "copy" | "zero" | "mixed" | "shared" => Some(app_class),
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
    eprintln!("... host benchmark (cargo bench -p pager-tests --bench pager)");
    let status = cargo()
        .args(["bench", "-p", "pager-tests", "--bench", "pager"])
        .current_dir(&workspace.root)
        .stdin(std::process::Stdio::null())
        .status()
        .context("cannot run cargo bench")?;
    if !status.success() {
        bail!("cargo bench -p pager-tests --bench pager failed ({status})");
    }
    let path = workspace.target_directory.join("bench").join("host.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// Runs the replay benchmark and returns its `replay.json` (trace records replayed per second).
fn replay_figures(workspace: &Workspace) -> Result<Value> {
    eprintln!("... replay benchmark (cargo bench -p pager-tests --bench replay)");
    let status = cargo()
        .args(["bench", "-p", "pager-tests", "--bench", "replay"])
        .current_dir(&workspace.root)
        .stdin(std::process::Stdio::null())
        .status()
        .context("cannot run cargo bench")?;
    if !status.success() {
        bail!("cargo bench -p pager-tests --bench replay failed ({status})");
    }
    let path = workspace.target_directory.join("bench").join("replay.json");
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
    let host = if arguments.no_host { Value::Null } else { host_figures(workspace)? };
    let mut report = report(&images, host)?;
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
    for image in images {
        classes.extend(fault_classes(&image.figures)?);
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
            },
            "boots": boots,
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
        "| class | samples | end to end, median | min | max | pager part, median | mean | of the mean, pager code | kernel entries, mean | min |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in sel4["fault_classes"].as_array().into_iter().flatten() {
        let e = &row["end_to_end_instructions"];
        let p = &row["pager_instructions"];
        let _ = writeln!(
            out,
            "| {} ({}) | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&row["class"]),
            cell(&row["description"]),
            cell(&e["samples"]),
            cell(&e["median"]),
            cell(&e["min"]),
            cell(&e["max"]),
            cell(&p["median"]),
            cell(&p["mean"]),
            cell(&p["mean_in_pager_code"]),
            cell(&p["kernel_entries_per_fault"]),
            cell(&p["kernel_entries_min"]),
        );
    }
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
[stats] scope=class class=image faults=5 kernel_entries=15 kernel_entries_min=3 pager_ticks=17500 pager_ticks_min=3448 pager_ticks_median=3460 pager_ticks_max=3764 pager_kernel_ticks=12500\r
[stats] scope=total clients=1 faults=413 policy=seed frames_created=416 startup_pages=0\r
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
        // The first touches of a shared area have no class of their own in the pager.
        assert_eq!(rows[1]["pager_instructions"], Value::Null);
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
            text.contains("| image (read-only image frame (no copy)) | 4 | 5080 | 5000 | 5392 | 3460 | 3500.0 | 1000.0 | 3.0 | 3 |"),
            "{text}"
        );
        assert!(text.contains("| bench-touch#0 | seed | 410 of 4096 | 412 | 413 | 500 | 8000 |"), "{text}");
        assert!(text.contains("| zero | 1.00 M | 2.50 M | 3.00 M |"), "{text}");
        assert!(text.contains("| dense | 20.1 | 68.5 |"), "{text}");
        assert!(text.contains("x: 2 runs, figures identical; serial output byte-identical"), "{text}");
        assert!(text.contains("Measured: x on the release kernel."), "{text}");
        assert_eq!(report["sel4"]["boots"][0]["kernel"], "release");
    }
}
