//! `cargo xtask experiment FILE.toml`: policy × workload × parameter matrices, run in the simulator
//! and, where the file asks, booted on seL4 under `-icount`.
//!
//! An experiment file (under `experiments/`) names workloads (manifests), policies by their manifest
//! names and parameters (the fault-around window). Each workload's trace is recorded once on seL4
//! under the seed policy (`cargo xtask trace`'s code path) and kept under `target/traces/`, reused
//! while the packed image it came from is unchanged; each cell replays it under its policy. The
//! seL4 leg boots the image with its policy overridden, as `cargo xtask agree` does.
//!
//! Principles:
//! - A finished cell is cached under `target/experiments/cache/`, keyed by a hash of its leg, the
//!   packed image (and for seL4 the root task), the policy and its parameters; it is written whole
//!   (a rename), so Ctrl-C leaves the cache intact and a rerun runs only what changed.
//! - The simulator's counts and seL4's are compared on the agreement's keys; the report lists every
//!   difference.
//! - Output under `target/experiments/<name>/`: `results.csv`, `report.md` and SVG plots.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use manifest::Policy;
use pager::FaultCounts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::image;
use crate::workspace::Workspace;

mod pressure;
use crate::{expect, stats, trace};

/// The folder of shipped experiments.
pub const DIRECTORY: &str = "experiments";

/// The policies an experiment may name: every policy without eviction, by its manifest name (the
/// pager's modes, [`pager::Mode::ALL`]).
pub fn policy_names() -> Vec<&'static str> {
    pager::Mode::ALL.iter().map(|mode| mode.name()).collect()
}

/// The experiment file as written.
mod raw {
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Experiment {
        pub name: String,
        pub description: Option<String>,
        pub workloads: Vec<String>,
        pub policies: Vec<String>,
        pub fault_around_pages: Option<Vec<u32>>,
        pub sel4: Option<bool>,
        /// Run each synthetic pattern app as a Linux program too (gcc), beside the pager.
        pub linux: Option<bool>,
        /// A pressure experiment: every client's budget as these percentages of its working set...
        pub budget_percent: Option<Vec<u32>>,
        /// ...under these eviction modes (fifo, clock).
        pub evict: Option<Vec<String>>,
        /// The budgets a pressure experiment also boots on seL4 (all of them when absent).
        pub sel4_budget_percent: Option<Vec<u32>>,
        pub quick: Option<Quick>,
    }

    /// The small matrix of `--quick`: whatever it gives replaces the full matrix's.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Quick {
        pub workloads: Option<Vec<String>>,
        pub policies: Option<Vec<String>>,
        pub fault_around_pages: Option<Vec<u32>>,
        pub sel4: Option<bool>,
        pub budget_percent: Option<Vec<u32>>,
        pub sel4_budget_percent: Option<Vec<u32>>,
    }
}

/// A checked experiment (the full or the quick matrix).
#[derive(Clone, Debug, PartialEq)]
pub struct Experiment {
    pub name: String,
    pub description: String,
    /// Manifest paths, relative to the workspace root as written.
    pub workloads: Vec<String>,
    /// The policies of the cells, fault-around once per window (window 0 is the seed policy).
    pub policies: Vec<Policy>,
    pub sel4: bool,
    pub linux: bool,
    /// Budgets and eviction modes, for a pressure experiment ([`pressure`]; on seL4 where `sel4`).
    pub pressure: Option<pressure::Pressure>,
}

fn field_error(file: &Path, field: &str, message: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{}: {field}: {message}", file.display())
}

impl Experiment {
    /// Reads and checks an experiment file; `quick` picks its `[quick]` matrix.
    pub fn load(workspace: &Workspace, file: &Path, quick: bool) -> Result<Self> {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        Self::parse(workspace, file, &text, quick)
    }

    pub fn parse(workspace: &Workspace, file: &Path, text: &str, quick: bool) -> Result<Self> {
        let raw: raw::Experiment = toml::from_str(text).map_err(|e| {
            anyhow::anyhow!("{}: {}", file.display(), e.to_string().trim_end().replace('\n', " "))
        })?;
        if raw.name.is_empty() || !raw.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            bail!(field_error(
                file,
                "name",
                format!("{:?} is not a plain name (letters, digits, - and _)", raw.name)
            ));
        }
        let (mut workloads, mut policies, mut windows, mut sel4) =
            (raw.workloads, raw.policies, raw.fault_around_pages, raw.sel4.unwrap_or(false));
        let mut percents = raw.budget_percent;
        let mut sel4_percents = raw.sel4_budget_percent;
        let linux = raw.linux.unwrap_or(false) && !quick;
        let mut prefix = "";
        if quick {
            let Some(q) = raw.quick else {
                bail!(field_error(file, "quick", "--quick needs a [quick] table"));
            };
            prefix = "quick.";
            workloads = q.workloads.unwrap_or(workloads);
            policies = q.policies.unwrap_or(policies);
            windows = q.fault_around_pages.or(windows);
            sel4 = q.sel4.unwrap_or(false);
            percents = q.budget_percent.or(percents);
            sel4_percents = q.sel4_budget_percent.or(sel4_percents);
        }
        if workloads.is_empty() {
            bail!(field_error(file, &format!("{prefix}workloads"), "names no workload"));
        }
        for workload in &workloads {
            if !workspace.root.join(workload).is_file() {
                bail!(field_error(
                    file,
                    &format!("{prefix}workloads"),
                    format!("unknown workload {workload:?} (no such manifest)")
                ));
            }
        }
        if policies.is_empty() {
            bail!(field_error(file, &format!("{prefix}policies"), "names no policy"));
        }
        let mut cells = Vec::new();
        for name in &policies {
            match manifest::PolicyName::from_name(name) {
                Some(manifest::PolicyName::Seed) => cells.push(Policy::Seed),
                Some(manifest::PolicyName::Eager) => cells.push(Policy::Eager),
                Some(manifest::PolicyName::FaultAround) => {
                    let windows = windows.clone().unwrap_or_else(|| vec![4]);
                    for pages in windows {
                        if pages > 64 {
                            bail!(field_error(
                                file,
                                &format!("{prefix}fault_around_pages"),
                                format!("{pages} is not in 0..=64")
                            ));
                        }
                        cells.push(if pages == 0 { Policy::Seed } else { Policy::FaultAround { pages } });
                    }
                }
                Some(other) => cells.push(Policy::Named(other)),
                None => bail!(field_error(
                    file,
                    &format!("{prefix}policies"),
                    format!("unknown policy {name:?} (known: {})", policy_names().join(", "))
                )),
            }
        }
        cells.dedup();
        let pressure = match (percents, raw.evict) {
            (None, None) => None,
            (Some(percents), Some(modes)) => {
                if let Some(bad) = percents.iter().find(|p| !(1..=100).contains(*p)) {
                    bail!(field_error(
                        file,
                        &format!("{prefix}budget_percent"),
                        format!("{bad} is not in 1..=100")
                    ));
                }
                let modes = modes
                    .iter()
                    .map(|name| {
                        pager::EvictMode::from_name(name).filter(|m| m.evicts()).ok_or_else(|| {
                            field_error(
                                file,
                                "evict",
                                format!("unknown eviction mode {name:?} (known: fifo, clock)"),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                if percents.is_empty() || modes.is_empty() {
                    bail!(field_error(
                        file,
                        "budget_percent",
                        "a pressure experiment needs budgets and modes"
                    ));
                }
                let sel4_percents =
                    if sel4 { sel4_percents.unwrap_or_else(|| percents.clone()) } else { Vec::new() };
                if let Some(bad) = sel4_percents.iter().find(|p| !percents.contains(p)) {
                    bail!(field_error(
                        file,
                        &format!("{prefix}sel4_budget_percent"),
                        format!("{bad} is not one of {prefix}budget_percent (seL4 is compared with the simulator's cell)")
                    ));
                }
                Some(pressure::Pressure { percents, modes, sel4_percents })
            }
            (None, Some(_)) => bail!(field_error(file, "budget_percent", "evict needs budget_percent")),
            (Some(_), None) => bail!(field_error(file, "evict", "budget_percent needs evict")),
        };
        Ok(Self {
            name: raw.name,
            description: raw.description.unwrap_or_default(),
            workloads,
            policies: cells,
            sel4,
            linux,
            pressure,
        })
    }
}

/// A policy's label in tables and plots: its manifest name, with the window for fault-around.
pub fn label(policy: Policy) -> String {
    match policy {
        Policy::FaultAround { pages } => format!("fault-around {pages}"),
        other => policy_name(other).to_owned(),
    }
}

/// A policy's manifest name.
pub fn policy_name(policy: Policy) -> &'static str {
    match policy {
        Policy::Seed => "seed",
        Policy::Eager => "eager",
        Policy::FaultAround { .. } => "fault-around",
        Policy::Named(name) => name.name(),
    }
}

fn pages_of(policy: Policy) -> u32 {
    match policy {
        Policy::FaultAround { pages } => pages,
        _ => 0,
    }
}

/// Which leg a result is from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Leg {
    Simulator,
    Sel4,
}

impl Leg {
    fn name(self) -> &'static str {
        match self {
            Leg::Simulator => "simulator",
            Leg::Sel4 => "sel4",
        }
    }
}

/// One cell's figures on one leg.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figures {
    pub faults: u64,
    /// Pages served by class (image, copy, zero, ..., zero-page's and cow's `zero-shared`,
    /// `upgrade` and `cow-copy`; none of eviction's here) and faults refused: a replay's counts
    /// or the `[stats] scope=total` line's, by [`pager::FaultCounts::by_class`]'s names.
    #[serde(with = "class_counts")]
    pub classes: FaultCounts,
    /// Pages the policy mapped before clients started (eager's segments).
    pub startup_pages: u64,
    /// Pool frames retyped (the pool's high-water mark in 32-frame batches).
    pub frames_created: u64,
    /// seL4 only: guest instructions from the first client's setup to the last client's exit.
    pub instructions_to_exit: Option<u64>,
    /// seL4 only: guest instructions of the pager's work before a client's first instruction, the
    /// mean over clients: its setup to its resume, plus serving the fault on its first fetch
    /// (scheduling between is not counted).
    #[serde(default)]
    pub instructions_to_first: Option<u64>,
    /// seL4 only: each client's faults, by client name (`app#instance`).
    #[serde(default)]
    pub client_faults: BTreeMap<String, u64>,
}

impl Figures {
    /// Frames the pages took from the pool: one per copy, zero or mixed page, per upgrade and per
    /// cow copy, one per large page, and the shared zero frame once when a page was mapped from it.
    pub fn frames_used(&self) -> u64 {
        let c = &self.classes;
        c.copy + c.zero + c.mixed + c.large + c.upgrade + c.cow_copy + u64::from(c.zero_shared > 0)
    }

    /// 4 KiB pages mapped into clients (a large page is 512), at start-up or on faults (an upgrade
    /// or a cow copy maps again a page its first read mapped).
    pub fn pages_mapped(&self) -> u64 {
        let c = &self.classes;
        self.startup_pages
            + c.image_frame
            + c.copy
            + c.zero
            + c.mixed
            + c.shared_hit
            + c.zero_shared
            + 512 * c.large
    }

    /// The agreement's keys: start-up pages, faults, the classes before eviction's, refusals.
    fn keys(&self) -> Vec<(&'static str, u64)> {
        let classes = self.classes.by_class().take(FaultCounts::BEFORE_EVICTION);
        [("startup_pages", self.startup_pages), ("faults", self.faults)]
            .into_iter()
            .chain(classes)
            .chain([("refused", self.classes.refused)])
            .collect()
    }

    fn from_replay(replayed: &sim::replay::ReplayStats) -> Self {
        Self {
            faults: replayed.faults,
            classes: replayed.classes,
            startup_pages: replayed.startup_pages,
            frames_created: u64::from(replayed.frames_created),
            instructions_to_exit: None,
            instructions_to_first: None,
            client_faults: BTreeMap::new(),
        }
    }

    fn from_serial(serial: &str) -> Result<Self> {
        let records = stats::parse(serial);
        let total = records.iter().find(|r| r.scope() == "total").context("no [stats] scope=total line")?;
        let number = |key: &str| -> Result<u64> {
            total
                .value(key)
                .with_context(|| format!("[stats] scope=total has no {key}="))?
                .parse()
                .with_context(|| format!("[stats] scope=total {key}= is not a number"))
        };
        // (setup, end, the pager's work before the first instruction)
        let timelines: Vec<(u64, u64, u64)> = records
            .iter()
            .filter(|r| r.scope() == "timeline")
            .filter_map(|r| {
                let tick = |key: &str| r.value(key)?.parse::<u64>().ok();
                let (setup, resume) = (tick("setup_tsc")?, tick("resume_tsc")?);
                Some((setup, tick("end_tsc")?, resume.checked_sub(setup)? + tick("first_fetch_ticks")?))
            })
            .collect();
        let instructions_to_first = (!timelines.is_empty())
            .then(|| timelines.iter().map(|t| t.2).sum::<u64>() / timelines.len() as u64);
        let instructions_to_exit =
            match (timelines.iter().map(|t| t.0).min(), timelines.iter().map(|t| t.1).max()) {
                (Some(first), Some(last)) if last >= first => Some(last - first),
                _ => None,
            };
        Ok(Self {
            faults: number("faults")?,
            classes: fault_counts(total)?,
            startup_pages: number("startup_pages")?,
            frames_created: number("frames_created")?,
            instructions_to_exit,
            instructions_to_first,
            client_faults: records
                .iter()
                .filter(|r| r.scope() == "client")
                .filter_map(|r| Some((r.value("name")?.to_owned(), r.value("faults")?.parse().ok()?)))
                .collect(),
        })
    }
}

/// A `[stats]` line's served pages by class (every class [`FaultCounts::by_class`] names) and its
/// faults refused.
fn fault_counts(record: &stats::Record) -> Result<FaultCounts> {
    let number = |key: &str| -> Result<u64> {
        record
            .value(key)
            .with_context(|| format!("[stats] scope={} has no {key}=", record.scope()))?
            .parse()
            .with_context(|| format!("[stats] scope={} {key}= is not a number", record.scope()))
    };
    let mut counts = FaultCounts { refused: number("refused")?, ..FaultCounts::default() };
    for (name, _) in FaultCounts::default().by_class() {
        *counts.class_mut(name).expect("a class by_class names") = number(name)?;
    }
    Ok(counts)
}

/// [`Figures::classes`] in the cache: a map from each class's `[stats]` name to its count, and
/// `refused`.
mod class_counts {
    use std::collections::BTreeMap;

    use pager::FaultCounts;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(counts: &FaultCounts, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(counts.by_class().chain([("refused", counts.refused)]))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<FaultCounts, D::Error> {
        let mut counts = FaultCounts::default();
        for (name, count) in BTreeMap::<String, u64>::deserialize(deserializer)? {
            match counts.class_mut(&name) {
                Some(class) => *class = count,
                None if name == "refused" => counts.refused = count,
                None => return Err(D::Error::custom(format!("no fault class {name}"))),
            }
        }
        Ok(counts)
    }
}

/// One row of results.csv.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    pub workload: String,
    pub policy: String,
    pub fault_around_pages: u32,
    pub leg: String,
    pub faults: u64,
    pub frames_used: u64,
    pub pages_mapped: u64,
    /// Pages mapped that the workload never touched: pages mapped over the seed policy's (which
    /// maps exactly the pages touched, the trace's first touches).
    pub pages_wasted: u64,
    pub frames_created: u64,
    pub refused: u64,
    #[serde(default)]
    pub instructions_to_first: Option<u64>,
    pub instructions_to_exit: Option<u64>,
}

/// The cells of one experiment.
struct Job {
    workload: usize,
    policy: Policy,
    leg: Leg,
    key: String,
}

/// A workload's recorded trace, reused while its image is the same.
struct Workload {
    manifest: PathBuf,
    name: String,
    trace: ::trace::Trace,
    image: Vec<u8>,
    image_hash: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// `manifest`'s trace, recorded unless `target/traces/` holds one of the same packed image.
fn workload(workspace: &Workspace, root_task: &Path, manifest: &Path) -> Result<Workload> {
    let (name, trace, image, hash) = trace::recorded_or_record(workspace, root_task, manifest)?;
    Ok(Workload { manifest: manifest.to_owned(), name, trace, image, image_hash: hex(&hash) })
}

/// Options of one run.
pub struct Options {
    pub jobs: usize,
    pub quick: bool,
    /// Run only the simulator leg, whatever the file asks.
    pub simulator_only: bool,
    /// Run every cell, reading nothing from the cache (still writing it).
    pub rerun: bool,
}

/// The shipped experiments, by file.
pub fn shipped(workspace: &Workspace) -> Result<Vec<PathBuf>> {
    let folder = workspace.root.join(DIRECTORY);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .with_context(|| format!("cannot list {}", folder.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// `--list`: each shipped experiment's file, name and description.
pub fn list(workspace: &Workspace) -> Result<()> {
    for file in shipped(workspace)? {
        let experiment = Experiment::load(workspace, &file, false)?;
        println!(
            "{}\t{}: {}",
            file.strip_prefix(&workspace.root).unwrap_or(&file).display(),
            experiment.name,
            experiment.description
        );
    }
    Ok(())
}

/// What a run produced.
pub struct Outcome {
    pub directory: PathBuf,
    pub cells: usize,
    pub cached: usize,
    pub differences: usize,
}

/// Runs an experiment and writes its results.
pub fn run(workspace: &Workspace, root_task: &Path, file: &Path, options: &Options) -> Result<Outcome> {
    let mut experiment = Experiment::load(workspace, file, options.quick)?;
    if options.simulator_only {
        experiment.sel4 = false;
        if let Some(pressure) = &mut experiment.pressure {
            pressure.sel4_percents.clear();
        }
    }
    if let Some(pressure) = &experiment.pressure {
        return pressure::run(workspace, root_task, &experiment, pressure, options);
    }
    let started = Instant::now();
    let workloads: Vec<Workload> = experiment
        .workloads
        .iter()
        .map(|w| workload(workspace, root_task, &workspace.root.join(w)))
        .collect::<Result<_>>()?;
    let root_task_hash = file_hash(root_task)?;
    // The simulator is built into this program: its cells are keyed by this program's hash.
    let program_hash = file_hash(&std::env::current_exe().context("cannot locate the running xtask")?)?;
    let mut legs = vec![Leg::Simulator];
    if experiment.sel4 {
        legs.push(Leg::Sel4);
    }
    let cache = cache_directory(workspace)?;
    let mut jobs = Vec::new();
    for (index, w) in workloads.iter().enumerate() {
        // The seed replay is every workload's baseline for pages wasted.
        let mut policies = vec![Policy::Seed];
        policies.extend(experiment.policies.iter().copied().filter(|p| *p != Policy::Seed));
        for policy in policies {
            for &leg in &legs {
                if leg == Leg::Sel4 && !experiment.policies.contains(&policy) {
                    continue;
                }
                let seal = if leg == Leg::Sel4 { root_task_hash.as_str() } else { program_hash.as_str() };
                let key = hex(&Sha256::digest(format!(
                    "v5|{}|{}|{}|{}|{seal}",
                    leg.name(),
                    w.image_hash,
                    policy_name(policy),
                    pages_of(policy)
                )));
                jobs.push(Job { workload: index, policy, leg, key });
            }
        }
    }
    let results: Mutex<BTreeMap<(usize, String, Leg), Figures>> = Mutex::new(BTreeMap::new());
    let mut queue: VecDeque<&Job> = VecDeque::new();
    let mut cached = 0;
    for job in &jobs {
        match read_cached::<Figures>(&cache, &job.key, options.rerun) {
            Some(figures) => {
                cached += 1;
                results.lock().unwrap().insert((job.workload, label(job.policy), job.leg), figures);
            }
            None => queue.push_back(job),
        }
    }
    // seL4 boots first: they are the long ones, so the estimate settles early.
    queue.make_contiguous().sort_by_key(|j| std::cmp::Reverse(j.leg));
    let bar = indicatif::ProgressBar::new(queue.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} cells, {elapsed} spent, ~{eta} left {msg}",
        )
        .expect("a fixed template")
        .progress_chars("=> "),
    );
    bar.set_prefix(experiment.name.clone());
    // Boot output goes above the bar, not through it.
    crate::console::hold_bar(&bar);
    let queue = Mutex::new(queue);
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    // Composing an image builds apps and the kernel: one at a time; the boots run in parallel.
    let compose = Mutex::new(());
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.max(1) {
            scope.spawn(|| loop {
                let Some(job) = queue.lock().unwrap().pop_front() else { break };
                let w = &workloads[job.workload];
                bar.set_message(format!("{} {} {}", w.name, label(job.policy), job.leg.name()));
                let outcome = match job.leg {
                    Leg::Simulator => simulate(w, job.policy),
                    Leg::Sel4 => boot(workspace, root_task, w, job.policy, &compose),
                };
                match outcome {
                    Ok(figures) => {
                        if let Err(e) = write_cached(&cache, &job.key, &figures) {
                            bar.println(format!("warning: {e:#}"));
                        }
                        results.lock().unwrap().insert((job.workload, label(job.policy), job.leg), figures);
                    }
                    Err(error) => failures.lock().unwrap().push(format!(
                        "{} {} ({}): {error:#}",
                        w.name,
                        label(job.policy),
                        job.leg.name()
                    )),
                }
                bar.inc(1);
            });
        }
    });
    crate::console::release_bar();
    bar.finish_and_clear();
    let failures = failures.into_inner().unwrap();
    if !failures.is_empty() {
        bail!("{} of {} cells failed:\n  {}", failures.len(), jobs.len(), failures.join("\n  "));
    }
    let results = results.into_inner().unwrap();
    let directory = workspace.target_directory.join("experiments").join(&experiment.name);
    std::fs::create_dir_all(&directory).with_context(|| format!("cannot create {}", directory.display()))?;
    let rows = rows(&experiment, &workloads, &results, &legs);
    write_csv(&directory.join("results.csv"), &rows)?;
    let differences = differences(&experiment, &workloads, &results);
    let mut report =
        report(&experiment, &rows, &differences, jobs.len(), cached, started.elapsed().as_secs_f64());
    report.push_str(&per_client(&experiment, &workloads, &results));
    if experiment.linux {
        report.push_str(&linux::section(workspace, &experiment, &workloads, &results)?);
    }
    std::fs::write(directory.join("report.md"), report)
        .with_context(|| format!("cannot write {}", directory.join("report.md").display()))?;
    plot::all(workspace, &directory, &experiment, &rows)?;
    Ok(Outcome { directory, cells: jobs.len(), cached, differences: differences.len() })
}

/// The folder of finished cells, made if missing.
fn cache_directory(workspace: &Workspace) -> Result<PathBuf> {
    let cache = workspace.target_directory.join("experiments").join("cache");
    std::fs::create_dir_all(&cache).with_context(|| format!("cannot create {}", cache.display()))?;
    Ok(cache)
}

/// The cell `key`'s result from the cache; `None` when it has none that reads back (or `rerun`).
fn read_cached<T: serde::de::DeserializeOwned>(cache: &Path, key: &str, rerun: bool) -> Option<T> {
    let stored = if rerun { None } else { std::fs::read(cache.join(format!("{key}.json"))).ok() };
    stored.and_then(|bytes| serde_json::from_slice(&bytes).ok())
}

/// Caches the cell `key`'s result, written whole (a rename): an interrupted run leaves no half entry.
fn write_cached<T: Serialize>(cache: &Path, key: &str, result: &T) -> Result<()> {
    let path = cache.join(format!("{key}.json"));
    let partial = path.with_extension("partial");
    serde_json::to_vec(result)
        .map_err(anyhow::Error::from)
        .and_then(|bytes| std::fs::write(&partial, bytes).map_err(anyhow::Error::from))
        .and_then(|()| std::fs::rename(&partial, &path).map_err(anyhow::Error::from))
        .with_context(|| format!("cannot cache {}", path.display()))
}

/// A file's SHA-256, in hex.
fn file_hash(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex(&Sha256::digest(bytes)))
}

fn simulate(w: &Workload, policy: Policy) -> Result<Figures> {
    let policy = trace::parse_policy(policy_name(policy), pages_of(policy))?;
    let replayed =
        sim::replay::replay(&w.image, &w.trace.records, sim::replay::ReplayOptions { policy, budget: None })
            .map_err(|e| anyhow::anyhow!("{}: replay: {e}", w.name))?;
    Ok(Figures::from_replay(&replayed))
}

fn boot(
    workspace: &Workspace,
    root_task: &Path,
    w: &Workload,
    policy: Policy,
    compose: &Mutex<()>,
) -> Result<Figures> {
    let image_name = format!("{}.experiment.{}", w.name, label(policy).replace(' ', "-"));
    let (checked, boot_image) = {
        let _one = compose.lock().unwrap();
        // Builds run cargo, which writes to the terminal itself: the bar steps aside meanwhile.
        crate::console::without_bar(|| -> Result<_> {
            let mut checked = image::check(workspace, &w.manifest)?;
            trace::with_policy(&mut checked, policy);
            let boot_image = trace::compose(workspace, root_task, &checked, &image_name)?;
            Ok((checked, boot_image))
        })?
    };
    let outcome = trace::boot_composed(workspace, &checked, &boot_image)?;
    expect::judge(&checked.manifest, &outcome)
        .map_err(|reason| anyhow::anyhow!("{image_name} failed: {reason}"))?;
    Figures::from_serial(&outcome.serial).with_context(|| image_name.clone())
}

fn rows(
    experiment: &Experiment,
    workloads: &[Workload],
    results: &BTreeMap<(usize, String, Leg), Figures>,
    legs: &[Leg],
) -> Vec<Row> {
    let mut rows = Vec::new();
    for (index, w) in workloads.iter().enumerate() {
        let touched =
            results.get(&(index, label(Policy::Seed), Leg::Simulator)).map_or(0, Figures::pages_mapped);
        for &policy in &experiment.policies {
            for &leg in legs {
                let Some(f) = results.get(&(index, label(policy), leg)) else { continue };
                rows.push(Row {
                    workload: w.name.clone(),
                    policy: policy_name(policy).to_owned(),
                    fault_around_pages: pages_of(policy),
                    leg: leg.name().to_owned(),
                    faults: f.faults,
                    frames_used: f.frames_used(),
                    pages_mapped: f.pages_mapped(),
                    pages_wasted: f.pages_mapped().saturating_sub(touched),
                    frames_created: f.frames_created,
                    refused: f.classes.refused,
                    instructions_to_first: f.instructions_to_first,
                    instructions_to_exit: f.instructions_to_exit,
                });
            }
        }
    }
    rows
}

fn write_csv(path: &Path, rows: &[Row]) -> Result<()> {
    let mut writer =
        csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    for row in rows {
        writer.serialize(row).with_context(|| format!("cannot write {}", path.display()))?;
    }
    writer.flush().with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Every cell whose simulator and seL4 counts differ, with the differences.
fn differences(
    experiment: &Experiment,
    workloads: &[Workload],
    results: &BTreeMap<(usize, String, Leg), Figures>,
) -> Vec<String> {
    let mut lines = Vec::new();
    for (index, w) in workloads.iter().enumerate() {
        for &policy in &experiment.policies {
            let (Some(s), Some(b)) = (
                results.get(&(index, label(policy), Leg::Simulator)),
                results.get(&(index, label(policy), Leg::Sel4)),
            ) else {
                continue;
            };
            let differing: Vec<String> = s
                .keys()
                .iter()
                .zip(b.keys())
                .filter(|(a, b)| a.1 != b.1)
                .map(|(a, b)| {
                    format!("{}: simulator {}, seL4 {} ({:+})", a.0, a.1, b.1, b.1 as i64 - a.1 as i64)
                })
                .collect();
            if !differing.is_empty() {
                lines.push(format!("{} / {}: {}", w.name, label(policy), differing.join("; ")));
            }
        }
    }
    lines
}

fn report(
    experiment: &Experiment,
    rows: &[Row],
    differences: &[String],
    cells: usize,
    cached: usize,
    seconds: f64,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Experiment `{}`\n\n{}\n", experiment.name, experiment.description);
    let _ = writeln!(
        out,
        "{cells} cells ({cached} from the cache), {seconds:.1} s. Legs: simulator{}. Faults are VM faults \
         (served or refused); frames used are pool frames (one per copy, zero, mixed, upgrade or cow-copy \
         page, one per large page, the shared zero frame once) taken on faults; pages mapped count those mapped at start-up too (eager's segments); pages wasted are 4 KiB pages mapped beyond those the seed policy maps (the pages the \
         workload touches); instructions are guest instructions (`-icount shift=0`), seL4 only: to first \
         instruction, the pager's work before a client's first instruction (its setup to its resume, plus \
         serving the fault on its first fetch), the mean over clients; to exit, from the first client's \
         setup to the last client's exit.\n",
        if experiment.sel4 { " and seL4" } else { "" }
    );
    let _ = writeln!(
        out,
        "| workload | policy | faults | frames used | pages mapped | pages wasted | seL4 faults | seL4 instructions to first instruction (mean per client) | seL4 instructions to exit |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows.iter().filter(|r| r.leg == "simulator") {
        let policy = if r.policy == "fault-around" {
            format!("fault-around {}", r.fault_around_pages)
        } else {
            r.policy.clone()
        };
        let booted = rows.iter().find(|b| {
            b.leg == "sel4"
                && b.workload == r.workload
                && b.policy == r.policy
                && b.fault_around_pages == r.fault_around_pages
        });
        let _ = writeln!(
            out,
            "| {} | {policy} | {} | {} | {} | {} | {} | {} | {} |",
            r.workload,
            r.faults,
            r.frames_used,
            r.pages_mapped,
            r.pages_wasted,
            booted.map_or("-".to_owned(), |b| b.faults.to_string()),
            booted.and_then(|b| b.instructions_to_first).map_or("-".to_owned(), |n| n.to_string()),
            booted.and_then(|b| b.instructions_to_exit).map_or("-".to_owned(), |n| n.to_string())
        );
    }
    if experiment.sel4 {
        let _ = writeln!(out, "\n## Simulator against seL4\n");
        if differences.is_empty() {
            let _ = writeln!(out, "Every cell's faults, pages by class and refusals agree.");
        } else {
            for line in differences {
                let _ = writeln!(out, "- {line}");
            }
        }
    }
    let _ = writeln!(out, "\n## Plots\n\nEach is also a PNG beside it (`faults.png`, ...).\n\n![faults](faults.svg)\n\n![pages wasted](pages-wasted.svg)\n\n![frames used](frames-used.svg)");
    if experiment.sel4 {
        let _ = writeln!(out, "\n![instructions to exit](instructions.svg)");
    }
    out
}

/// For each workload with several clients, each client's faults on seL4 under each policy (the
/// boot's `[stats] scope=client` lines): a column per policy, a row per client.
fn per_client(
    experiment: &Experiment,
    workloads: &[Workload],
    results: &BTreeMap<(usize, String, Leg), Figures>,
) -> String {
    let mut out = String::new();
    for (index, w) in workloads.iter().enumerate() {
        let booted: Vec<(String, &Figures)> = experiment
            .policies
            .iter()
            .filter_map(|&p| Some((label(p), results.get(&(index, label(p), Leg::Sel4))?)))
            .collect();
        let mut clients: Vec<&String> = booted.iter().flat_map(|(_, f)| f.client_faults.keys()).collect();
        clients.sort();
        clients.dedup();
        if clients.len() < 2 {
            continue;
        }
        if out.is_empty() {
            let _ = writeln!(out, "\n## Faults per client (seL4)\n");
        }
        let header: Vec<&str> = booted.iter().map(|(l, _)| l.as_str()).collect();
        let _ = writeln!(out, "`{}`:\n\n| client | {} |", w.name, header.join(" | "));
        let _ = writeln!(out, "|---|{}", "---:|".repeat(header.len()));
        for client in clients {
            let cells: Vec<String> = booted
                .iter()
                .map(|(_, f)| f.client_faults.get(client).map_or("-".to_owned(), u64::to_string))
                .collect();
            let _ = writeln!(out, "| {client} | {} |", cells.join(" | "));
        }
        out.push('\n');
    }
    out
}

mod linux {
    //! The synthetic patterns as ordinary Linux programs: `experiments/linux/pattern-touch.c`
    //! (gcc) replays each pattern app's reference string over an anonymous mapping and over a
    //! read-only file mapping and counts its minor faults with `getrusage`.
    use std::collections::BTreeMap;
    use std::fmt::Write as _;
    use std::process::Command;

    use anyhow::{bail, Context, Result};
    use manifest::{AppSource, Manifest};

    use super::{label, Experiment, Figures, Leg, Workload};
    use crate::workspace::Workspace;

    fn run(
        program: &std::path::Path,
        mode: &str,
        pages: u32,
        references: &std::path::Path,
    ) -> Result<(u64, u64)> {
        let output = Command::new(program)
            .args([mode, &pages.to_string()])
            .arg(references)
            .output()
            .with_context(|| format!("cannot run {}", program.display()))?;
        let text = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!("{} {mode} failed: {}", program.display(), String::from_utf8_lossy(&output.stderr));
        }
        let value = |key: &str| -> Result<u64> {
            text.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("{} printed no {key}: {text}", program.display()))
        };
        Ok((value("minor_faults=")?, value("major_faults=")?))
    }

    pub fn section(
        workspace: &Workspace,
        experiment: &Experiment,
        workloads: &[Workload],
        results: &BTreeMap<(usize, String, Leg), Figures>,
    ) -> Result<String> {
        let folder = workspace.target_directory.join("experiments").join("linux");
        std::fs::create_dir_all(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
        let source = workspace.root.join("experiments/linux/pattern-touch.c");
        let program = folder.join("pattern-touch");
        let status = Command::new("gcc")
            .args(["-O2", "-Wall", "-o"])
            .arg(&program)
            .arg(&source)
            .status()
            .context("cannot run gcc (needed for the Linux side of the experiment)")?;
        if !status.success() {
            bail!("gcc failed on {}", source.display());
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n## Linux side by side\n\nEach pattern app's reference string (the same `trace::pattern` \
             description) replayed by `experiments/linux/pattern-touch.c` on this host's Linux: minor faults \
             (`getrusage`) over a private anonymous mapping, and over a read-only shared file mapping \
             (reads only; major faults in brackets), beside the pager's faults for that client on seL4.\n"
        );
        let mut header = "| pattern | references | pages touched | Linux anonymous | Linux file |".to_owned();
        let mut rule = "|---|---:|---:|---:|---:|".to_owned();
        for policy in &experiment.policies {
            let _ = write!(header, " pager {} |", label(*policy));
            rule.push_str("---:|");
        }
        let _ = writeln!(out, "{header}\n{rule}");
        for (index, w) in workloads.iter().enumerate() {
            let manifest = Manifest::load(&w.manifest).map_err(|e| anyhow::anyhow!("{e}"))?;
            for app in &manifest.apps {
                if app.source != AppSource::Crate("pattern".to_owned()) {
                    continue;
                }
                let pattern = ::trace::pattern::Pattern::parse(&app.argument)
                    .map_err(|e| anyhow::anyhow!("{}: {}: {e}", w.manifest.display(), app.name))?;
                let mut text = String::new();
                let mut touched = std::collections::BTreeSet::new();
                let mut count = 0;
                for reference in pattern.references() {
                    let _ = writeln!(text, "{} {}", reference.page, u8::from(reference.write));
                    touched.insert(reference.page);
                    count += 1;
                }
                let references = folder.join(format!("{}.{}.references", w.name, app.name));
                std::fs::write(&references, text)
                    .with_context(|| format!("cannot write {}", references.display()))?;
                let (anonymous, _) = run(&program, "anon", pattern.pages, &references)?;
                let (file, file_major) = run(&program, "file", pattern.pages, &references)?;
                let _ = write!(
                    out,
                    "| {} `{}` | {count} | {} | {anonymous} | {file} ({file_major}) |",
                    app.name,
                    app.argument,
                    touched.len()
                );
                for policy in &experiment.policies {
                    let faults = results
                        .get(&(index, label(*policy), Leg::Sel4))
                        .and_then(|f| f.client_faults.get(&format!("{}#0", app.name)));
                    let _ = write!(out, " {} |", faults.map_or("-".to_owned(), |n| n.to_string()));
                }
                out.push('\n');
            }
        }
        let _ = writeln!(
            out,
            "\nThe pager's count is the whole client's (its code, data and stack pages too, a few), \
             Linux's the mapping's alone. Linux maps file pages with its own fault-around (16 pages); \
             on an anonymous mapping a read maps the shared zero page, so a page read before its first \
             write faults twice."
        );
        Ok(out)
    }
}

mod plot {
    //! Line plots, each as SVG and as PNG: one series per workload, the cells' policies along the x
    //! axis. Text is drawn with one font file registered here ([`host_setup::plot_font`]), so the
    //! PNG reads the same on any machine and the SVG's text is laid out with the same metrics.
    use std::path::Path;
    use std::sync::OnceLock;

    use anyhow::{Context, Result};
    use plotters::coord::Shift;
    use plotters::prelude::*;

    use super::{Experiment, Row};
    use crate::host_setup;
    use crate::workspace::Workspace;

    /// Plot size in pixels (SVG user units).
    const SIZE: (u32, u32) = (900, 540);

    /// Registers the plot font as `sans-serif`, once per process.
    pub(super) fn register_font(workspace: &Workspace) -> Result<()> {
        static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
        REGISTERED
            .get_or_init(|| {
                let bytes = host_setup::plot_font(workspace).map_err(|e| format!("{e:#}"))?;
                // plotters keeps the font for the process's life.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                    .map_err(|_| format!("{} is not a font plotters can read", host_setup::PLOT_FONT.0))
            })
            .clone()
            .map_err(|e| anyhow::anyhow!(e))
    }

    pub fn all(workspace: &Workspace, directory: &Path, experiment: &Experiment, rows: &[Row]) -> Result<()> {
        register_font(workspace)?;
        let simulator: Vec<&Row> = rows.iter().filter(|r| r.leg == "simulator").collect();
        let labels: Vec<String> = experiment.policies.iter().map(|p| super::label(*p)).collect();
        let x_name = if experiment
            .policies
            .iter()
            .all(|p| matches!(p, manifest::Policy::FaultAround { .. } | manifest::Policy::Seed))
        {
            "fault-around window (pages; 0 = seed)"
        } else {
            "policy"
        };
        let booted: Vec<&Row> =
            rows.iter().filter(|r| r.leg == "sel4" && r.instructions_to_exit.is_some()).collect();
        type Metric<'a> = (&'a str, &'a str, &'a [&'a Row], fn(&Row) -> f64);
        let metrics: [Metric; 4] = [
            ("faults", "faults (count, simulator)", &simulator, |r| r.faults as f64),
            ("pages-wasted", "pages wasted (4 KiB pages, simulator)", &simulator, |r| r.pages_wasted as f64),
            ("frames-used", "frames used (4 KiB pool frames, simulator)", &simulator, |r| {
                r.frames_used as f64
            }),
            ("instructions", "instructions to exit (millions, seL4 -icount)", &booted, |r| {
                r.instructions_to_exit.unwrap_or(0) as f64 / 1e6
            }),
        ];
        for (name, y_name, rows, metric) in metrics {
            let (svg, png) = (directory.join(format!("{name}.svg")), directory.join(format!("{name}.png")));
            if rows.is_empty() {
                // A plot left from an earlier run of other legs would not be this run's.
                let _ = std::fs::remove_file(&svg);
                let _ = std::fs::remove_file(&png);
                continue;
            }
            let (title, labels) = (&experiment.name, &labels);
            line_plot(
                SVGBackend::new(&svg, SIZE).into_drawing_area(),
                title,
                x_name,
                y_name,
                labels,
                rows,
                metric,
            )
            .map_err(|e| anyhow::anyhow!("cannot draw {}: {e}", svg.display()))?;
            let mut pixels = vec![0u8; SIZE.0 as usize * SIZE.1 as usize * 3];
            let bitmap = BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area();
            line_plot(bitmap, title, x_name, y_name, labels, rows, metric)
                .map_err(|e| anyhow::anyhow!("cannot draw {}: {e}", png.display()))?;
            write_png(&png, &pixels).with_context(|| format!("cannot write {}", png.display()))?;
        }
        Ok(())
    }

    /// Writes 8-bit RGB `pixels` of [`SIZE`] as a PNG file.
    fn write_png(path: &Path, pixels: &[u8]) -> Result<()> {
        let file = std::io::BufWriter::new(std::fs::File::create(path)?);
        let mut encoder = png::Encoder::new(file, SIZE.0, SIZE.1);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(pixels)?;
        writer.finish()?;
        Ok(())
    }

    fn line_plot<DB: DrawingBackend>(
        root: DrawingArea<DB, Shift>,
        title: &str,
        x_name: &str,
        y_name: &str,
        labels: &[String],
        rows: &[&Row],
        metric: fn(&Row) -> f64,
    ) -> Result<(), Box<dyn std::error::Error>>
    where
        DB::ErrorType: 'static,
    {
        let cell = |r: &Row| {
            let name = if r.policy == "fault-around" {
                format!("fault-around {}", r.fault_around_pages)
            } else {
                r.policy.clone()
            };
            labels.iter().position(|l| *l == name)
        };
        let mut workloads: Vec<&str> = rows.iter().map(|r| r.workload.as_str()).collect();
        workloads.dedup();
        let top = rows.iter().map(|r| metric(r)).fold(1.0, f64::max) * 1.1;
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{title}: {y_name}"), ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d(-0.5f64..(labels.len() as f64 - 0.5), 0f64..top)?;
        // Along a window axis a cell is its window; along a policy axis, its whole label.
        let windows = x_name.starts_with("fault-around window");
        let short = |l: &str| match l.strip_prefix("fault-around ") {
            Some(pages) if windows => pages.to_owned(),
            _ if windows && l == "seed" => "0 (seed)".to_owned(),
            _ => l.to_owned(),
        };
        chart
            .configure_mesh()
            .x_desc(x_name)
            .y_desc(y_name)
            .x_labels(labels.len())
            .y_label_formatter(&|y| format!("{y:.0}"))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                    short(&labels[i as usize])
                } else {
                    String::new()
                }
            })
            .draw()?;
        for (index, workload) in workloads.iter().enumerate() {
            let color = Palette99::pick(index).to_rgba();
            let mut points: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.workload == *workload)
                .filter_map(|r| Some((cell(r)? as f64, metric(r))))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                .label(*workload)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
        }
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
        root.present()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace() -> Workspace {
        Workspace::locate().unwrap()
    }

    fn parse(text: &str, quick: bool) -> Result<Experiment> {
        Experiment::parse(&workspace(), Path::new("experiments/x.toml"), text, quick)
    }

    #[test]
    fn windows_expand_fault_around_and_zero_is_seed() {
        let e = parse(
            "name = \"x\"\nworkloads = [\"manifests/hello.toml\"]\npolicies = [\"eager\", \"fault-around\"]\nfault_around_pages = [0, 4]\n",
            false,
        )
        .unwrap();
        assert_eq!(e.policies, vec![Policy::Eager, Policy::Seed, Policy::FaultAround { pages: 4 }]);
        assert!(!e.sel4);
    }

    #[test]
    fn errors_name_file_field_and_the_unknown_name() {
        let unknown =
            parse("name = \"x\"\nworkloads = [\"manifests/hello.toml\"]\npolicies = [\"lru\"]\n", false);
        let message = unknown.unwrap_err().to_string();
        assert!(message.contains("experiments/x.toml: policies: unknown policy \"lru\""), "{message}");
        let missing =
            parse("name = \"x\"\nworkloads = [\"manifests/nope.toml\"]\npolicies = [\"seed\"]\n", false);
        assert!(missing
            .unwrap_err()
            .to_string()
            .contains("workloads: unknown workload \"manifests/nope.toml\""));
        let field = parse("name = \"x\"\nworkload = []\n", false).unwrap_err().to_string();
        assert!(field.contains("experiments/x.toml") && field.contains("workload"), "{field}");
        let quick =
            parse("name = \"x\"\nworkloads = [\"manifests/hello.toml\"]\npolicies = [\"seed\"]\n", true);
        assert!(quick.unwrap_err().to_string().contains("quick: --quick needs a [quick] table"));
    }

    #[test]
    fn a_pressure_experiment_names_budgets_and_modes() {
        let head = "name = \"x\"\nworkloads = [\"manifests/patterns.toml\"]\npolicies = [\"seed\"]\n";
        let e = parse(&format!("{head}budget_percent = [10, 100]\nevict = [\"fifo\", \"clock\"]\n"), false)
            .unwrap();
        let pressure = e.pressure.unwrap();
        assert_eq!(pressure.percents, vec![10, 100]);
        assert_eq!(pressure.modes, vec![pager::EvictMode::Fifo, pager::EvictMode::Clock]);
        let unknown = parse(&format!("{head}budget_percent = [10]\nevict = [\"lru\"]\n"), false).unwrap_err();
        assert!(unknown.to_string().contains("evict: unknown eviction mode \"lru\""), "{unknown}");
        let range = parse(&format!("{head}budget_percent = [0]\nevict = [\"fifo\"]\n"), false).unwrap_err();
        assert!(range.to_string().contains("budget_percent: 0 is not in 1..=100"), "{range}");
        let alone = parse(&format!("{head}evict = [\"fifo\"]\n"), false).unwrap_err();
        assert!(alone.to_string().contains("budget_percent: evict needs budget_percent"), "{alone}");
        assert!(parse(head, false).unwrap().pressure.is_none());
        let booted = parse(
            &format!("{head}budget_percent = [10, 100]\nevict = [\"fifo\"]\nsel4 = true\nsel4_budget_percent = [100]\n"),
            false,
        )
        .unwrap();
        assert_eq!(booted.pressure.unwrap().sel4_percents, vec![100]);
        let all =
            parse(&format!("{head}budget_percent = [10, 100]\nevict = [\"fifo\"]\nsel4 = true\n"), false);
        assert_eq!(all.unwrap().pressure.unwrap().sel4_percents, vec![10, 100]);
        let simulator_only = parse(&format!("{head}budget_percent = [10]\nevict = [\"fifo\"]\n"), false);
        assert!(simulator_only.unwrap().pressure.unwrap().sel4_percents.is_empty());
        let stray = parse(
            &format!(
                "{head}budget_percent = [10]\nevict = [\"fifo\"]\nsel4 = true\nsel4_budget_percent = [50]\n"
            ),
            false,
        )
        .unwrap_err();
        assert!(
            stray.to_string().contains("sel4_budget_percent: 50 is not one of budget_percent"),
            "{stray}"
        );
    }

    #[test]
    fn quick_replaces_what_it_gives() {
        let e = parse(
            "name = \"x\"\nworkloads = [\"manifests/hello.toml\", \"manifests/demo.toml\"]\npolicies = [\"fault-around\"]\n\
             fault_around_pages = [1, 2, 4]\nsel4 = true\n[quick]\nfault_around_pages = [2]\n",
            true,
        )
        .unwrap();
        assert_eq!(e.workloads.len(), 2);
        assert_eq!(e.policies, vec![Policy::FaultAround { pages: 2 }]);
        assert!(!e.sel4);
    }

    #[test]
    fn shipped_experiments_parse_in_both_matrices() {
        let workspace = workspace();
        let files = shipped(&workspace).unwrap();
        assert!(files.len() >= 2);
        for file in files {
            Experiment::load(&workspace, &file, false).unwrap();
            Experiment::load(&workspace, &file, true).unwrap();
        }
    }

    #[test]
    fn frames_and_pages_count_large_pages() {
        let classes = FaultCounts {
            image_frame: 3,
            copy: 1,
            zero: 4,
            mixed: 1,
            shared_hit: 2,
            large: 1,
            ..Default::default()
        };
        let f = Figures { startup_pages: 5, classes, ..Default::default() };
        assert_eq!(f.frames_used(), 7);
        assert_eq!(f.pages_mapped(), 5 + 3 + 1 + 4 + 1 + 2 + 512);
    }

    #[test]
    fn figures_keep_their_classes_in_the_cache_and_compare_them_in_stats_order() {
        let classes = FaultCounts { image_frame: 2, zero: 3, cow_copy: 1, refused: 4, ..Default::default() };
        let f = Figures { faults: 9, startup_pages: 1, classes, ..Default::default() };
        let json = serde_json::to_string(&f).unwrap();
        assert!(json.contains(r#""image":2,"copy":0,"zero":3,"#), "{json}");
        assert_eq!(serde_json::from_str::<Figures>(&json).unwrap(), f);
        let keys: Vec<&str> = f.keys().iter().map(|(key, _)| *key).collect();
        assert_eq!(
            keys,
            [
                "startup_pages",
                "faults",
                "image",
                "copy",
                "zero",
                "mixed",
                "shared",
                "large",
                "zero-shared",
                "upgrade",
                "cow-copy",
                "refused"
            ]
        );
        assert_eq!(f.keys()[11], ("refused", 4));
        let bad = json.replace(r#""image":2"#, r#""imago":2"#);
        assert!(serde_json::from_str::<Figures>(&bad).is_err());
    }

    #[test]
    fn zero_page_and_cow_frames_count_upgrades_copies_and_the_zero_frame_once() {
        let classes = FaultCounts {
            image_frame: 2,
            zero: 3,
            zero_shared: 6,
            upgrade: 4,
            cow_copy: 1,
            ..Default::default()
        };
        let f = Figures { classes, ..Default::default() };
        assert_eq!(f.frames_used(), 3 + 4 + 1 + 1, "zero pages, upgrades, a cow copy, the zero frame");
        assert_eq!(f.pages_mapped(), 2 + 3 + 6, "an upgrade or a copy maps a mapped page again");
    }

    #[test]
    fn per_client_faults_are_tabled_for_images_with_several_clients() {
        let experiment = parse(
            "name = \"x\"\nworkloads = [\"manifests/hello.toml\"]\npolicies = [\"seed\", \"cow\"]\n",
            false,
        )
        .unwrap();
        let workload = |name: &str| Workload {
            manifest: PathBuf::new(),
            name: name.to_owned(),
            trace: ::trace::Trace::new([0; 32], 0, 0, 0, Vec::new()),
            image: Vec::new(),
            image_hash: String::new(),
        };
        let figures = |clients: &[(&str, u64)]| Figures {
            client_faults: clients.iter().map(|(c, n)| ((*c).to_owned(), *n)).collect(),
            ..Default::default()
        };
        let mut results = BTreeMap::new();
        results.insert((0, "seed".to_owned(), Leg::Sel4), figures(&[("a#0", 5), ("b#0", 7)]));
        results.insert((0, "cow".to_owned(), Leg::Sel4), figures(&[("a#0", 6), ("b#0", 9)]));
        results.insert((1, "seed".to_owned(), Leg::Sel4), figures(&[("only#0", 3)]));
        let table = per_client(&experiment, &[workload("two"), workload("one")], &results);
        assert_eq!(
            table,
            "\n## Faults per client (seL4)\n\n`two`:\n\n| client | seed | cow |\n|---|---:|---:|\n\
             | a#0 | 5 | 6 |\n| b#0 | 7 | 9 |\n\n"
        );
    }
}
