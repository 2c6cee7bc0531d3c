//! Memory-pressure experiments (`experiments/pressure.toml`): each workload's clients replayed on
//! the simulator with every client's budget a fraction of its working set, under each eviction
//! mode: the miss-ratio curve (faults per thousand references against the budget), evictions,
//! soft and store refaults.
//!
//! The reference strings are the synthetic patterns' (an app whose manifest `argument` is a
//! `trace::pattern` description): the simulator generates every reference from the description
//! (`sim::replay::pattern_trace`), where a trace recorded on seL4 without a window holds each page's
//! first touch only and so no re-reference an eviction could miss. Each pattern runs alone over a
//! heap of its pages in a packed image made for it (no build, no boot). The working set is the
//! pages the pattern touches (its seed replay's zero faults); a budget of `p` % is
//! `max(2, ⌈p × working set / 100⌉)` frames. Every cell is a few thousand references: they run in
//! order, uncached.
//!
//! The store's size and ratio are not here: a replay keeps no page contents, so every page it
//! stores is a zero marker. They come from seL4 (the root task's `[stats]`).
//!
//! With `sel4 = true` the budgets of `sel4_budget_percent` are booted on seL4 too: the workload
//! once without a budget (each client's frames outside its heap), then once per mode and budget
//! with each pattern app evicting at its simulator budget plus those frames. The heap area's
//! faults by class and evictions are set beside the simulator's cell; at 100 % they must be equal
//! (the run fails otherwise), below it the report says by how much and why they differ. Each boot
//! is cached as the other experiments' seL4 cells are (under `target/experiments/cache/`, keyed by
//! its packed image and the root task; its `[stats]` lines) and run `-j` at a time, the base boots
//! first; `--rerun` boots them all again.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use bootimage::{AppSpec, ImageSpec};
use pager::{BuiltinPolicy, EvictMode, FaultCounts};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sim::replay::{pattern_trace, replay_evicting, ReplayOptions, ReplayStats};

use super::{Experiment, Outcome};
use crate::workspace::Workspace;

/// Where a pattern's heap starts in its image.
const HEAP: u64 = 0x1000_0000;

/// An experiment's pressure matrix: budgets in percent of the working set, eviction modes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pressure {
    pub percents: Vec<u32>,
    pub modes: Vec<EvictMode>,
    /// The budgets also booted on seL4 (a subset of `percents`; empty: simulator only).
    pub sel4_percents: Vec<u32>,
}

/// One row of results.csv: a cell on one leg. On seL4 the class and eviction figures are the heap
/// area's (the pattern's references); `client_faults`, `other_faults` and `other_evictions` are
/// the whole client's faults and the faults and evictions of its other areas (code, data, stack).
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub workload: String,
    pub app: String,
    pub evict: String,
    pub leg: String,
    pub budget_percent: u32,
    /// The client's budget: the heap's share (the simulator's budget) plus, on seL4, the frames
    /// its other areas took without a budget (`other_frames`).
    pub budget_frames: u32,
    pub other_frames: u32,
    pub working_set: u64,
    pub references: u64,
    pub faults: u64,
    pub faults_per_thousand: f64,
    pub evictions_clean: u64,
    pub evictions_dirty: u64,
    pub soft_unmaps: u64,
    pub refault_soft: u64,
    pub refault_store: u64,
    pub dirty: u64,
    pub refused: u64,
    pub client_faults: Option<u64>,
    pub other_faults: Option<u64>,
    pub other_evictions: Option<u64>,
    /// seL4 rows: heap pages resident when the client exited.
    pub heap_resident: Option<u64>,
    /// seL4 rows: the heap's faults on seL4 minus the simulator's, in this cell.
    pub faults_difference: Option<i64>,
}

/// A pattern app of a workload manifest.
struct Subject {
    workload: String,
    app: String,
    pattern: trace::pattern::Pattern,
}

fn subjects(workspace: &Workspace, experiment: &Experiment) -> Result<(Vec<Subject>, Vec<String>)> {
    let (mut subjects, mut skipped) = (Vec::new(), Vec::new());
    for workload in &experiment.workloads {
        let path = workspace.root.join(workload);
        let manifest = manifest::Manifest::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
        for app in &manifest.apps {
            match trace::pattern::Pattern::parse(&app.argument) {
                Ok(pattern) => {
                    subjects.push(Subject { workload: manifest.name.clone(), app: app.name.clone(), pattern })
                }
                Err(_) => skipped.push(format!("{}/{}", manifest.name, app.name)),
            }
        }
    }
    if subjects.is_empty() {
        bail!(
            "{}: no workload app runs a reference pattern (an `argument` trace::pattern reads)",
            experiment.name
        );
    }
    Ok((subjects, skipped))
}

/// One app over a heap of `pages` pages, as apps/pattern runs.
fn image(pages: u32) -> Result<Vec<u8>> {
    let app = AppSpec {
        name: "pattern".into(),
        elf: sim::ElfBuilder::new()
            .segment(0x40_0000, vec![0x90; 0x1000], 0x1000, sim::elf::FLAGS_RX)
            .build(),
        instances: 1,
        heap_base: HEAP as u32,
        heap_size: pages * pager::PAGE_SIZE as u32,
        stack_top: 0x7000_0000,
        stack_size: 0x4000,
        ..AppSpec::default()
    };
    let spec = ImageSpec {
        name: "pressure".into(),
        frame_capacity: pages + 64,
        apps: vec![app],
        ..ImageSpec::default()
    };
    spec.to_bytes().map_err(|e| anyhow::anyhow!("packing a pattern's image: {e:?}"))
}

fn replayed(
    image: &[u8],
    records: &[trace::Record],
    budget: Option<u32>,
    mode: EvictMode,
) -> Result<ReplayStats> {
    let options = ReplayOptions { policy: BuiltinPolicy::Seed, budget };
    replay_evicting(image, records, options, mode).map_err(|e| anyhow::anyhow!("replay: {e}"))
}

/// Runs a pressure experiment and writes `results.csv`, `report.md` and `miss-ratio.svg`.
pub fn run(
    workspace: &Workspace,
    root_task: &Path,
    experiment: &Experiment,
    pressure: &Pressure,
    options: &super::Options,
) -> Result<Outcome> {
    let started = std::time::Instant::now();
    let (subjects, skipped) = subjects(workspace, experiment)?;
    let mut rows = Vec::new();
    for subject in &subjects {
        let image = image(subject.pattern.pages)?;
        let records = pattern_trace(&subject.pattern, HEAP);
        let references = subject.pattern.len();
        let unlimited = replayed(&image, &records, None, EvictMode::None)?;
        let working_set = unlimited.classes.zero;
        for &mode in &pressure.modes {
            for &percent in &pressure.percents {
                let frames = (working_set * u64::from(percent)).div_ceil(100).max(2) as u32;
                let stats = replayed(&image, &records, Some(frames), mode)
                    .with_context(|| format!("{}/{} {mode} {percent} %", subject.workload, subject.app))?;
                let c = &stats.classes;
                rows.push(Row {
                    workload: subject.workload.clone(),
                    app: subject.app.clone(),
                    evict: mode.name().to_owned(),
                    leg: "simulator".into(),
                    budget_percent: percent,
                    budget_frames: frames,
                    other_frames: 0,
                    working_set,
                    references,
                    faults: stats.faults,
                    faults_per_thousand: stats.faults as f64 * 1000.0 / references.max(1) as f64,
                    evictions_clean: stats.evict.evictions_clean,
                    evictions_dirty: stats.evict.evictions_dirty,
                    soft_unmaps: stats.evict.soft_unmaps,
                    refault_soft: c.refault_soft,
                    refault_store: c.refault_store,
                    dirty: c.dirty,
                    refused: c.refused,
                    client_faults: None,
                    other_faults: None,
                    other_evictions: None,
                    heap_resident: None,
                    faults_difference: None,
                });
            }
        }
    }
    let cached = if pressure.sel4_percents.is_empty() {
        0
    } else {
        sel4_leg(workspace, root_task, experiment, pressure, &subjects, &mut rows, options)?
    };
    let mismatches = mismatches(&rows);
    let directory = workspace.target_directory.join("experiments").join(&experiment.name);
    std::fs::create_dir_all(&directory).with_context(|| format!("cannot create {}", directory.display()))?;
    let csv_path = directory.join("results.csv");
    let mut writer =
        csv::Writer::from_path(&csv_path).with_context(|| format!("cannot write {}", csv_path.display()))?;
    for row in &rows {
        writer.serialize(row).with_context(|| format!("cannot write {}", csv_path.display()))?;
    }
    writer.flush().with_context(|| format!("cannot write {}", csv_path.display()))?;
    let report = report(experiment, &rows, &skipped, cached, started.elapsed().as_secs_f64());
    std::fs::write(directory.join("report.md"), report)
        .with_context(|| format!("cannot write {}", directory.join("report.md").display()))?;
    let plot = directory.join("miss-ratio.svg");
    super::plot::register_font(workspace)?;
    miss_ratio_plot(&plot, experiment, &rows)
        .map_err(|e| anyhow::anyhow!("cannot draw {}: {e}", plot.display()))?;
    if !mismatches.is_empty() {
        bail!(
            "seL4 and the simulator differ where the budget holds the working set:\n  {}",
            mismatches.join("\n  ")
        );
    }
    // A refusal under eviction would be a client the pager failed to keep running.
    let refused = rows.iter().filter(|r| r.refused > 0).count();
    if refused > 0 {
        bail!("{refused} cells stopped a client (see {})", directory.join("report.md").display());
    }
    // Below the working set seL4 and the simulator differ by design (the report says how much and
    // why); where they must not, the run failed above.
    Ok(Outcome { directory, cells: rows.len(), cached, differences: 0 })
}

fn report(experiment: &Experiment, rows: &[Row], skipped: &[String], cached: usize, seconds: f64) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Experiment `{}`\n\n{}\n", experiment.name, experiment.description);
    let _ = writeln!(
        out,
        "{} cells on the simulator, {} booted on seL4 ({cached} boots from the cache), {seconds:.1} s. Each pattern app's full reference string \
         (`sim::replay::pattern_trace`) replayed alone with its budget a percentage of its working set \
         (the pages it touches; at least 2 frames). Faults per thousand references is the miss ratio; \
         evictions are clean (dropped) and dirty (to the store); soft refaults are the clock's second \
         chances; store refaults bring an evicted dirty page back. The store's bytes and ratio come from \
         seL4 only (a replay keeps no page contents: every stored page is a zero marker).\n",
        rows.iter().filter(|r| r.leg == "simulator").count(),
        rows.iter().filter(|r| r.leg == "sel4").count()
    );
    if !skipped.is_empty() {
        let _ =
            writeln!(out, "Not a reference pattern (no re-references to replay): {}.\n", skipped.join(", "));
    }
    let _ = writeln!(
        out,
        "| workload/app | evict | budget % | frames | faults | faults / 1000 refs | evictions clean | evictions dirty | soft refaults | store refaults |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows.iter().filter(|r| r.leg == "simulator") {
        let _ = writeln!(
            out,
            "| {}/{} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {} |",
            r.workload,
            r.app,
            r.evict,
            r.budget_percent,
            r.budget_frames,
            r.faults,
            r.faults_per_thousand,
            r.evictions_clean,
            r.evictions_dirty,
            r.refault_soft,
            r.refault_store
        );
    }
    sel4_section(&mut out, rows);
    let _ = writeln!(out, "\n## Plot\n\n![miss ratio](miss-ratio.svg)");
    out
}

/// The seL4 leg beside the simulator's cell: every figure as `simulator / seL4`, and why they differ.
fn sel4_section(out: &mut String, rows: &[Row]) {
    let booted: Vec<&Row> = rows.iter().filter(|r| r.leg == "sel4").collect();
    if booted.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n## seL4 against the simulator\n\n\
         Each seL4 cell boots the workload with every pattern app evicting at the simulator's budget \
         plus the frames its other areas (its data segment's copy and .bss, its stack) took in a boot \
         without a budget (`+ other`). Figures are `simulator / seL4`, seL4's being the heap area's; \
         `other` are the client's faults and evictions outside the heap (code and data segments, \
         stack). Where the budget is 100 % nothing is evicted and both legs must be equal, class by \
         class (checked: the experiment fails otherwise; only the `other` faults remain, the code, \
         data and stack pages the simulator does not replay).\n\n\
         Below 100 % a budget is one queue for all of a client's pages, and the simulator replays the \
         heap's references only, not the instruction fetches and stack accesses between them. On \
         seL4 code, data and stack pages are evicted and fault again like heap pages (`other \
         evictions`, `other faults`; under clock the hand also unmaps them for a second chance), so \
         the heap's room varies by a frame or two while they are out: \
         (1) a pattern that misses on every reference under the budget (sequential, strided, \
         read-then-write: each loop is longer than the room) faults exactly as on the simulator, but \
         its heap ends with one page more resident when another area's page was out at exit, so it \
         evicted one page fewer (`heap resident at exit` is the budget plus one); \
         (2) a pattern that reuses pages within its room (random, phased) gets a different victim \
         sequence, and its faults, dirty faults, refaults and evictions differ by a few (the \
         `difference` column, results.csv's `faults_difference`).\n"
    );
    let _ = writeln!(
        out,
        "| workload/app | evict | budget % | frames (+ other) | faults | difference | dirty | soft refaults | store refaults | evictions clean | evictions dirty | other faults | other evictions | heap resident at exit |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for s in booted {
        let Some(m) = simulator_twin(rows, s) else {
            continue;
        };
        let _ = writeln!(
            out,
            "| {}/{} | {} | {} | {} (+ {}) | {} / {} | {:+} | {} / {} | {} / {} | {} / {} | {} / {} | {} / {} | {} | {} | {} |",
            s.workload,
            s.app,
            s.evict,
            s.budget_percent,
            s.budget_frames,
            s.other_frames,
            m.faults,
            s.faults,
            s.faults_difference.unwrap_or(0),
            m.dirty,
            s.dirty,
            m.refault_soft,
            s.refault_soft,
            m.refault_store,
            s.refault_store,
            m.evictions_clean,
            s.evictions_clean,
            m.evictions_dirty,
            s.evictions_dirty,
            s.other_faults.unwrap_or(0),
            s.other_evictions.unwrap_or(0),
            s.heap_resident.unwrap_or(0)
        );
    }
}

/// Faults per thousand references against the budget, a line per app and mode.
fn miss_ratio_plot(
    path: &Path,
    experiment: &Experiment,
    rows: &[Row],
) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let top = rows.iter().map(|r| r.faults_per_thousand).fold(1.0, f64::max) * 1.1;
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{}: miss-ratio curve (simulator)", experiment.name), ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..105f64, 0f64..top)?;
    chart
        .configure_mesh()
        .x_desc("budget (% of the working set)")
        .y_desc("faults per thousand references")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    let rows: Vec<&Row> = rows.iter().filter(|r| r.leg == "simulator").collect();
    let mut series: Vec<(String, String, String)> =
        rows.iter().map(|r| (r.workload.clone(), r.app.clone(), r.evict.clone())).collect();
    series.dedup();
    for (index, (workload, app, evict)) in series.iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        let points: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r.workload == *workload && r.app == *app && r.evict == *evict)
            .map(|r| (f64::from(r.budget_percent), r.faults_per_thousand))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(format!("{app} ({evict})"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

/// One client's figures from a boot's `[stats]`: the heap area's and the rest's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Booted {
    heap: Classes,
    heap_evictions: (u64, u64, u64),
    heap_resident: u64,
    client_faults: u64,
    client_frames: u64,
    other_faults: u64,
    other_evictions: u64,
}

/// The fault classes a seed client's pages take, with and without eviction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Classes {
    zero: u64,
    dirty: u64,
    refault_soft: u64,
    refault_store: u64,
    /// Every other class (image, copy, ...): none for a seed heap.
    other: u64,
    refused: u64,
}

impl Classes {
    fn faults(&self) -> u64 {
        self.zero + self.dirty + self.refault_soft + self.refault_store + self.other
    }

    fn of(record: &crate::stats::Record) -> Result<Self> {
        let counts = super::fault_counts(record)?;
        let before_eviction: u64 = counts.by_class().take(FaultCounts::BEFORE_EVICTION).map(|(_, n)| n).sum();
        Ok(Self {
            zero: counts.zero,
            dirty: counts.dirty,
            refault_soft: counts.refault_soft,
            refault_store: counts.refault_store,
            other: before_eviction - counts.zero,
            refused: counts.refused,
        })
    }
}

/// Client `name`'s figures in a boot's serial log.
fn booted(serial: &str, name: &str) -> Result<Booted> {
    let records = crate::stats::parse(serial);
    let number = |record: &crate::stats::Record, key: &str| -> Result<u64> {
        record
            .value(key)
            .with_context(|| format!("[stats] scope={} has no {key}=", record.scope()))?
            .parse()
            .with_context(|| format!("[stats] scope={} {key}= is not a number", record.scope()))
    };
    let client = records
        .iter()
        .find(|r| r.scope() == "client" && r.value("name") == Some(name))
        .with_context(|| format!("no [stats] scope=client name={name}"))?;
    let mut figures = Booted {
        client_faults: number(client, "faults")?,
        client_frames: number(client, "frames")?,
        ..Booted::default()
    };
    let mut heap = None;
    for area in records.iter().filter(|r| r.scope() == "area" && r.value("client") == Some(name)) {
        let classes = Classes::of(area)?;
        if area.value("area") == Some("heap") {
            heap = Some(classes);
            figures.heap_resident = number(area, "resident")?;
        } else {
            figures.other_faults += classes.faults();
        }
    }
    figures.heap = heap.with_context(|| format!("{name} has no heap area in [stats]"))?;
    for area in records.iter().filter(|r| r.scope() == "evict-area" && r.value("client") == Some(name)) {
        let (clean, dirty) = (number(area, "evict_clean")?, number(area, "evict_dirty")?);
        if area.value("area") == Some("heap") {
            figures.heap_evictions = (clean, dirty, number(area, "soft_unmaps")?);
        } else {
            figures.other_evictions += clean + dirty;
        }
    }
    Ok(figures)
}

/// One boot of the seL4 leg: its image's name, its cache key and what it boots.
struct Boot {
    name: String,
    key: String,
    checked: crate::image::Checked,
}

impl Boot {
    /// Keyed, as the other experiments' seL4 cells, by the packed image and the root task.
    fn new(name: String, checked: &crate::image::Checked, root_task_hash: &str) -> Result<Self> {
        let image = super::hex(&Sha256::digest(crate::image::pack(checked)?));
        let key = super::hex(&Sha256::digest(format!("pressure-v1|sel4|{image}|{root_task_hash}")));
        Ok(Self { name, key, checked: checked.clone() })
    }
}

/// Composes `boot`'s image (one at a time: it builds), boots it and judges it by its apps'
/// expectations; its `[stats]` lines.
fn boot(workspace: &Workspace, root_task: &Path, boot: &Boot, compose: &Mutex<()>) -> Result<Vec<String>> {
    let boot_image = {
        let _one = compose.lock().unwrap();
        crate::console::without_bar(|| {
            crate::trace::compose(workspace, root_task, &boot.checked, &boot.name)
        })?
    };
    let outcome = crate::trace::boot_composed(workspace, &boot.checked, &boot_image)?;
    crate::expect::judge(&boot.checked.manifest, &outcome)
        .map_err(|reason| anyhow::anyhow!("{} failed: {reason}", boot.name))?;
    let lines = outcome.serial.lines().map(|line| line.trim_end_matches('\r'));
    Ok(lines.filter(|line| crate::stats::parse_line(line).is_some()).map(str::to_owned).collect())
}

/// Each of `boots`' `[stats]` lines by its name, from the cache where it holds them (unless
/// `rerun`), the rest booted `jobs` at a time and cached; and how many came from the cache.
fn boot_all(
    workspace: &Workspace,
    root_task: &Path,
    boots: Vec<Boot>,
    options: &super::Options,
) -> Result<(BTreeMap<String, String>, usize)> {
    let cache = super::cache_directory(workspace)?;
    let (mut done, mut queue) = (BTreeMap::new(), VecDeque::new());
    for boot in boots {
        match super::read_cached::<Vec<String>>(&cache, &boot.key, options.rerun) {
            Some(lines) => {
                done.insert(boot.name, lines.join("\n"));
            }
            None => queue.push_back(boot),
        }
    }
    let cached = done.len();
    if queue.is_empty() {
        return Ok((done, cached));
    }
    let bar = indicatif::ProgressBar::new(queue.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} boots, {elapsed} spent {msg}",
        )
        .expect("a fixed template")
        .progress_chars("=> "),
    );
    bar.set_prefix("pressure on seL4");
    crate::console::hold_bar(&bar);
    let (queue, done, failures) = (Mutex::new(queue), Mutex::new(done), Mutex::new(Vec::new()));
    let compose = Mutex::new(());
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.max(1) {
            scope.spawn(|| loop {
                let Some(one) = queue.lock().unwrap().pop_front() else { break };
                bar.set_message(one.name.clone());
                match boot(workspace, root_task, &one, &compose) {
                    Ok(lines) => {
                        if let Err(e) = super::write_cached(&cache, &one.key, &lines) {
                            bar.println(format!("warning: {e:#}"));
                        }
                        done.lock().unwrap().insert(one.name, lines.join("\n"));
                    }
                    Err(error) => failures.lock().unwrap().push(format!("{}: {error:#}", one.name)),
                }
                bar.inc(1);
            });
        }
    });
    crate::console::release_bar();
    bar.finish_and_clear();
    let failures = failures.into_inner().unwrap();
    if !failures.is_empty() {
        bail!("{} boots failed:\n  {}", failures.len(), failures.join("\n  "));
    }
    Ok((done.into_inner().unwrap(), cached))
}

/// The seL4 leg: each workload booted once without a budget (each client's frames outside its
/// heap: code's and data's copies, stack), then once per mode and budget with every pattern app
/// evicting at its simulator budget plus those frames. Appends a row per client and cell; returns
/// how many boots came from the cache.
fn sel4_leg(
    workspace: &Workspace,
    root_task: &Path,
    experiment: &Experiment,
    pressure: &Pressure,
    subjects: &[Subject],
    rows: &mut Vec<Row>,
    options: &super::Options,
) -> Result<usize> {
    let root_task_hash = super::file_hash(root_task)?;
    let (mut workloads, mut bases) = (Vec::new(), Vec::new());
    for path in &experiment.workloads {
        let checked = crate::image::check(workspace, &workspace.root.join(path))?;
        let base = Boot::new(format!("{}.pressure.base", checked.manifest.name), &checked, &root_task_hash)?;
        workloads.push((checked, base.name.clone()));
        bases.push(base);
    }
    let (based, mut cached) = boot_all(workspace, root_task, bases, options)?;
    // Each workload's subjects, the frames each took outside its heap, and its cells' boots.
    let mut plans = Vec::new();
    let mut boots = Vec::new();
    for (mut checked, base) in workloads {
        let workload = checked.manifest.name.clone();
        let mine: Vec<&Subject> = subjects.iter().filter(|s| s.workload == workload).collect();
        let mut others = Vec::new();
        for subject in &mine {
            let b = booted(&based[&base], &format!("{}#0", subject.app))?;
            others.push(b.client_frames.saturating_sub(b.heap.zero) as u32);
        }
        checked.manifest.expect.stats.clear();
        // Every evicting client's dirty heap at once fits in the store, whatever it compresses to.
        let heaps: u64 = checked
            .manifest
            .apps
            .iter()
            .filter(|a| mine.iter().any(|s| s.app == a.name))
            .filter_map(|a| a.heap.map(|h| h.size))
            .sum();
        checked.manifest.store = Some(heaps.max(pager::PAGE_SIZE));
        for &mode in &pressure.modes {
            for &percent in &pressure.sel4_percents {
                for (subject, &other) in mine.iter().zip(&others) {
                    let simulated = simulator_row(rows, &workload, &subject.app, mode, percent)
                        .context("a seL4 budget the simulator did not run")?;
                    let app = checked
                        .manifest
                        .apps
                        .iter_mut()
                        .find(|a| a.name == subject.app)
                        .context("a pattern app gone from its manifest")?;
                    app.evict = match mode {
                        EvictMode::Fifo => manifest::Eviction::Fifo,
                        EvictMode::Clock => manifest::Eviction::Clock,
                        EvictMode::None => manifest::Eviction::None,
                    };
                    app.frame_budget =
                        Some((simulated.budget_frames + other).max(manifest::MIN_EVICTING_BUDGET));
                }
                let name = format!("{workload}.pressure.{}-{percent}", mode.name());
                boots.push(Boot::new(name, &checked, &root_task_hash)?);
            }
        }
        plans.push((workload, mine, others));
    }
    let (serials, cells_cached) = boot_all(workspace, root_task, boots, options)?;
    cached += cells_cached;
    for (workload, mine, others) in plans {
        for &mode in &pressure.modes {
            for &percent in &pressure.sel4_percents {
                let name = format!("{workload}.pressure.{}-{percent}", mode.name());
                for (subject, &other) in mine.iter().zip(&others) {
                    let b = booted(&serials[&name], &format!("{}#0", subject.app))
                        .with_context(|| name.clone())?;
                    let simulated = simulator_row(rows, &workload, &subject.app, mode, percent)
                        .expect("found above")
                        .clone();
                    let faults = b.heap.faults();
                    rows.push(Row {
                        leg: "sel4".into(),
                        other_frames: other,
                        faults,
                        faults_per_thousand: faults as f64 * 1000.0 / simulated.references.max(1) as f64,
                        evictions_clean: b.heap_evictions.0,
                        evictions_dirty: b.heap_evictions.1,
                        soft_unmaps: b.heap_evictions.2,
                        refault_soft: b.heap.refault_soft,
                        refault_store: b.heap.refault_store,
                        dirty: b.heap.dirty,
                        refused: b.heap.refused,
                        client_faults: Some(b.client_faults),
                        other_faults: Some(b.other_faults),
                        other_evictions: Some(b.other_evictions),
                        heap_resident: Some(b.heap_resident),
                        faults_difference: Some(faults as i64 - simulated.faults as i64),
                        ..simulated
                    });
                }
            }
        }
    }
    Ok(cached)
}

/// The simulator's row of `workload`'s `app` under `mode` at `percent`.
fn simulator_row<'a>(
    rows: &'a [Row],
    workload: &str,
    app: &str,
    mode: EvictMode,
    percent: u32,
) -> Option<&'a Row> {
    rows.iter().find(|r| {
        r.leg == "simulator"
            && r.workload == workload
            && r.app == app
            && r.evict == mode.name()
            && r.budget_percent == percent
    })
}

/// The simulator's row for the same workload, app, mode and budget as seL4 row `s`.
fn simulator_twin<'a>(rows: &'a [Row], s: &Row) -> Option<&'a Row> {
    rows.iter().find(|r| {
        r.leg == "simulator"
            && r.workload == s.workload
            && r.app == s.app
            && r.evict == s.evict
            && r.budget_percent == s.budget_percent
    })
}

/// Where seL4 must equal the simulator: a budget of the whole working set evicts nothing, so the
/// heap's faults by class, evictions included, are the same on both legs. One line per mismatch.
fn mismatches(rows: &[Row]) -> Vec<String> {
    let mut out = Vec::new();
    for s in rows.iter().filter(|r| r.leg == "sel4" && r.budget_percent >= 100) {
        let Some(m) = simulator_twin(rows, s) else {
            continue;
        };
        let pairs = [
            ("faults", s.faults, m.faults),
            ("dirty", s.dirty, m.dirty),
            ("refault-soft", s.refault_soft, m.refault_soft),
            ("refault-store", s.refault_store, m.refault_store),
            ("evictions clean", s.evictions_clean, m.evictions_clean),
            ("evictions dirty", s.evictions_dirty, m.evictions_dirty),
            ("other evictions", s.other_evictions.unwrap_or(0), 0),
        ];
        for (what, sel4, simulator) in pairs {
            if sel4 != simulator {
                out.push(format!(
                    "{}/{} {} {} %: {what} {sel4} on seL4, {simulator} on the simulator",
                    s.workload, s.app, s.evict, s.budget_percent
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_smaller_budget_never_faults_less_and_the_whole_working_set_faults_once_a_page() {
        let pattern =
            trace::pattern::Pattern::parse("phased pages=300 set=40 phases=6 count=400 seed=7 write=3")
                .unwrap();
        let image = image(pattern.pages).unwrap();
        let records = pattern_trace(&pattern, HEAP);
        let working_set = replayed(&image, &records, None, EvictMode::None).unwrap().classes.zero;
        for mode in [EvictMode::Fifo, EvictMode::Clock] {
            let whole = replayed(&image, &records, Some(working_set as u32), mode).unwrap();
            assert_eq!(whole.faults, working_set + whole.classes.dirty, "{mode}: no eviction at 100 %");
            assert_eq!(whole.evict.evictions(), 0, "{mode}");
            let tight = replayed(&image, &records, Some((working_set / 10) as u32), mode).unwrap();
            assert!(tight.faults > whole.faults, "{mode}: {} faults at 10 %", tight.faults);
            assert!(tight.evict.evictions() > 0 && tight.classes.refused == 0, "{mode}");
        }
    }

    const SERIAL: &str = "\
[stats] scope=area client=a#0 area=segment-2 resident=0 image=0 copy=0 zero=1 mixed=0 shared=0 large=0 zero-shared=0 upgrade=0 cow-copy=0 refault-soft=2 refault-store=3 dirty=1 refused=0 policy=seed\r
[stats] scope=area client=a#0 area=heap resident=51 image=0 copy=0 zero=200 mixed=0 shared=0 large=0 zero-shared=0 upgrade=0 cow-copy=0 refault-soft=0 refault-store=85 dirty=7 refused=0 policy=seed\r
[stats] scope=evict-area client=a#0 area=segment-2 evict_clean=1 evict_dirty=4 soft_unmaps=0\r
[stats] scope=evict-area client=a#0 area=heap evict_clean=101 evict_dirty=140 soft_unmaps=5\r
[stats] scope=client name=a#0 faults=299 frames=54\r
";

    #[test]
    fn a_boot_splits_the_heap_from_the_other_areas() {
        let b = booted(SERIAL, "a#0").unwrap();
        assert_eq!(b.heap.faults(), 292);
        assert_eq!((b.heap.dirty, b.heap.refault_store, b.heap_resident), (7, 85, 51));
        assert_eq!(b.heap_evictions, (101, 140, 5));
        assert_eq!((b.client_faults, b.client_frames, b.other_faults, b.other_evictions), (299, 54, 7, 5));
        let missing = booted(SERIAL, "b#0").unwrap_err();
        assert!(missing.to_string().contains("no [stats] scope=client name=b#0"), "{missing}");
    }

    fn row(leg: &str, percent: u32, faults: u64, other_evictions: Option<u64>) -> Row {
        Row {
            workload: "w".into(),
            app: "a".into(),
            evict: "fifo".into(),
            leg: leg.into(),
            budget_percent: percent,
            budget_frames: 10,
            other_frames: 0,
            working_set: 10,
            references: 30,
            faults,
            faults_per_thousand: 0.0,
            evictions_clean: 0,
            evictions_dirty: 0,
            soft_unmaps: 0,
            refault_soft: 0,
            refault_store: 0,
            dirty: 0,
            refused: 0,
            client_faults: None,
            other_faults: None,
            other_evictions,
            heap_resident: None,
            faults_difference: None,
        }
    }

    #[test]
    fn only_a_budget_of_the_whole_working_set_must_agree() {
        let agreeing = [row("simulator", 100, 10, None), row("sel4", 100, 10, Some(0))];
        assert!(mismatches(&agreeing).is_empty());
        let pressed = [row("simulator", 50, 20, None), row("sel4", 50, 23, Some(4))];
        assert!(mismatches(&pressed).is_empty());
        let differing = [row("simulator", 100, 10, None), row("sel4", 100, 11, Some(1))];
        let lines = mismatches(&differing);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains("w/a fifo 100 %: faults 11 on seL4, 10 on the simulator"), "{lines:?}");
    }
}
