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

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use bootimage::{AppSpec, ImageSpec};
use pager::{BuiltinPolicy, EvictMode};
use serde::Serialize;
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
}

/// One row of results.csv.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub workload: String,
    pub app: String,
    pub evict: String,
    pub budget_percent: u32,
    pub budget_frames: u32,
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
pub fn run(workspace: &Workspace, experiment: &Experiment, pressure: &Pressure) -> Result<Outcome> {
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
                    budget_percent: percent,
                    budget_frames: frames,
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
                });
            }
        }
    }
    let directory = workspace.target_directory.join("experiments").join(&experiment.name);
    std::fs::create_dir_all(&directory).with_context(|| format!("cannot create {}", directory.display()))?;
    let csv_path = directory.join("results.csv");
    let mut writer =
        csv::Writer::from_path(&csv_path).with_context(|| format!("cannot write {}", csv_path.display()))?;
    for row in &rows {
        writer.serialize(row).with_context(|| format!("cannot write {}", csv_path.display()))?;
    }
    writer.flush().with_context(|| format!("cannot write {}", csv_path.display()))?;
    let report = report(experiment, &rows, &skipped, started.elapsed().as_secs_f64());
    std::fs::write(directory.join("report.md"), report)
        .with_context(|| format!("cannot write {}", directory.join("report.md").display()))?;
    let plot = directory.join("miss-ratio.svg");
    miss_ratio_plot(&plot, experiment, &rows)
        .map_err(|e| anyhow::anyhow!("cannot draw {}: {e}", plot.display()))?;
    // A refusal under eviction would be a client the pager failed to keep running.
    let refused = rows.iter().filter(|r| r.refused > 0).count();
    if refused > 0 {
        bail!("{refused} cells stopped a client (see {})", directory.join("report.md").display());
    }
    Ok(Outcome { directory, cells: rows.len(), cached: 0, differences: 0 })
}

fn report(experiment: &Experiment, rows: &[Row], skipped: &[String], seconds: f64) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Experiment `{}`\n\n{}\n", experiment.name, experiment.description);
    let _ = writeln!(
        out,
        "{} cells on the simulator, {seconds:.1} s. Each pattern app's full reference string \
         (`sim::replay::pattern_trace`) replayed alone with its budget a percentage of its working set \
         (the pages it touches; at least 2 frames). Faults per thousand references is the miss ratio; \
         evictions are clean (dropped) and dirty (to the store); soft refaults are the clock's second \
         chances; store refaults bring an evicted dirty page back. The store's bytes and ratio come from \
         seL4 only (a replay keeps no page contents: every stored page is a zero marker).\n",
        rows.len()
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
    for r in rows {
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
    let _ = writeln!(out, "\n## Plot\n\n![miss ratio](miss-ratio.svg)");
    out
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
}
