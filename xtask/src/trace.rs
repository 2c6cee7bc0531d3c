//! `cargo xtask trace` (record a boot's faults on seL4), `cargo xtask simulate` (replay a trace in the
//! simulator), and the agreement check of `cargo xtask test` (the simulator's counts against seL4's).
//!
//! Recording boots the image with the recording flag set in its packed header, always under the
//! seed policy (one page per fault, nothing ahead: the trace then holds every first touch, which is
//! what a replay under another policy needs), under `-icount` (so each record's ticks are guest
//! instructions). The root task streams the records in checksummed serial chunks; they are
//! reassembled here, any lost or damaged chunk failing the command, and their fault count checked
//! against the boot's own `[stats] scope=total faults=`. Written beside each other under
//! `target/traces/`: `<image>.trace` (binary, `trace::Trace`), `<image>.csv` and `<image>.image`,
//! the packed apps image the trace was recorded from, whose SHA-256 the trace's header holds.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use manifest::Policy;
use sha2::{Digest, Sha256};

use crate::image::{self, Checked};
use crate::workspace::Workspace;
use crate::{expect, host_setup, kernel, qemu, stats};

/// Where traces are written.
pub fn directory(workspace: &Workspace) -> PathBuf {
    workspace.target_directory.join("traces")
}

/// A recorded trace and where it went.
pub struct Recorded {
    pub trace: trace::Trace,
    pub path: PathBuf,
    pub image: Vec<u8>,
}

/// Boots `manifest` in recording mode and writes its trace.
pub fn record(workspace: &Workspace, root_task: &Path, manifest: &Path, window: u16) -> Result<Recorded> {
    if window != 0 && window < 4 {
        bail!("--window {window}: a client needs at least 4 pages mapped (code, data and stack together)");
    }
    let mut checked = image::check(workspace, manifest)?;
    // The window unmaps and remaps pages behind the pager, which an evicting client's own
    // soft-unmapping and dirty tracking would then misread.
    if window != 0 {
        if let Some(app) = checked.manifest.apps.iter().find(|app| app.evict.evicts()) {
            bail!(
                "--window {window}: app {:?} evicts (evict = \"{}\"); record an image with evicting apps without a window",
                app.name,
                app.evict.name()
            );
        }
    }
    with_policy(&mut checked, Policy::Seed);
    checked.trace = Some(window);
    let packed = image::pack(&checked)?;
    let name = checked.manifest.name.clone();
    let outcome = boot(workspace, root_task, &checked, &format!("{name}.trace"))?;
    expect::judge(&checked.manifest, &outcome)
        .map_err(|reason| anyhow::anyhow!("{name} (recording) failed: {reason}"))?;
    let records = trace::Reassembly::from_serial(&outcome.serial)
        .map_err(|error| anyhow::anyhow!("{name}: the trace did not arrive whole: {error}"))?;
    let total = total_line(&outcome.serial).with_context(|| format!("{name}: recording boot"))?;
    let faults = number(&total, "faults")?;
    let recorded = records.iter().filter(|r| r.kind == trace::kind::FAULT).count() as u64;
    if recorded != faults {
        bail!("{name}: the trace holds {recorded} fault records but the pager counted {faults} faults");
    }
    let hash: [u8; 32] = Sha256::digest(&packed).into();
    let trace = trace::Trace::new(hash, abi::policy::SEED, 0, u32::from(window), records);
    let folder = directory(workspace);
    std::fs::create_dir_all(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
    let path = folder.join(format!("{name}.trace"));
    let write = |path: PathBuf, bytes: &[u8]| {
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
    };
    write(path.clone(), &trace.to_bytes())?;
    write(path.with_extension("csv"), trace.to_csv().as_bytes())?;
    write(path.with_extension("image"), &packed)?;
    Ok(Recorded { trace, path, image: packed })
}

/// Composes `checked` under `image_name` and boots it under `-icount`.
fn boot(
    workspace: &Workspace,
    root_task: &Path,
    checked: &Checked,
    image_name: &str,
) -> Result<qemu::BootOutcome> {
    let boot_image = compose(workspace, root_task, checked, image_name)?;
    boot_composed(workspace, checked, &boot_image)
}

/// Composes `checked` under `image_name`, ready to boot.
pub fn compose(
    workspace: &Workspace,
    root_task: &Path,
    checked: &Checked,
    image_name: &str,
) -> Result<qemu::BootImage> {
    let kernel = kernel::build(workspace, checked.manifest.kernel)?;
    let written = image::write(
        workspace,
        checked,
        &kernel.image,
        root_task,
        &crate::image_directory(workspace, image_name),
    )?;
    Ok(qemu::BootImage {
        name: image_name.to_owned(),
        kernel: written.kernel,
        root_task: written.root_task,
        memory: checked.manifest.memory,
        variant: kernel.variant,
    })
}

/// Boots a composed image under `-icount`.
pub fn boot_composed(
    workspace: &Workspace,
    checked: &Checked,
    boot_image: &qemu::BootImage,
) -> Result<qemu::BootOutcome> {
    host_setup::ensure_qemu(workspace)?;
    let options = qemu::BootOptions {
        // Serial output of the trace and -icount both slow the boot: twice the manifest's time.
        timeout: Duration::from_secs(checked.manifest.timeout_seconds * 2),
        icount: true,
        gdb: false,
        log_directory: workspace.target_directory.join("qemu"),
    };
    qemu::boot(boot_image, &options)
}

/// Sets the image's policy. A manifest's `[stats]` expectations hold under its own policy only:
/// under another they are dropped (its apps' output, exit codes and the frame accounting still
/// count).
pub fn with_policy(checked: &mut Checked, policy: Policy) {
    if checked.manifest.policy != policy {
        checked.manifest.set_policy(policy);
        checked.manifest.expect.stats.clear();
    }
}

fn total_line(serial: &str) -> Result<stats::Record> {
    stats::parse(serial).into_iter().find(|r| r.scope() == "total").context("no [stats] scope=total line")
}

fn number(record: &stats::Record, key: &str) -> Result<u64> {
    record
        .value(key)
        .with_context(|| format!("[stats] scope={} has no {key}=", record.scope()))?
        .parse()
        .with_context(|| format!("[stats] scope={} {key}= is not a number", record.scope()))
}

/// A policy as `simulate --policy` and the agreement check name it: a manifest's policy name
/// (`pages` is fault-around's window).
pub fn parse_policy(name: &str, pages: u32) -> Result<pager::BuiltinPolicy> {
    match pager::Mode::from_name(name) {
        Some(mode) => Ok(pager::BuiltinPolicy::of_mode(mode, pages)),
        None => {
            let known: Vec<&str> = pager::Mode::ALL.iter().map(|mode| mode.name()).collect();
            bail!("policy {name:?} is not one of {}", known.join(", "))
        }
    }
}

/// Reads a trace and the packed image beside it, checking the image is the one recorded.
pub fn load(path: &Path) -> Result<(trace::Trace, Vec<u8>)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let trace = trace::Trace::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let image_path = path.with_extension("image");
    let image = std::fs::read(&image_path)
        .with_context(|| format!("cannot read the trace's packed image {}", image_path.display()))?;
    let hash: [u8; 32] = Sha256::digest(&image).into();
    if hash != trace.header.image_hash {
        bail!(
            "{} is not the image {} was recorded from (its SHA-256 differs)",
            image_path.display(),
            path.display()
        );
    }
    Ok((trace, image))
}

/// `cargo xtask simulate`: replays a trace under a policy and prints the `[stats]`-style totals.
pub fn simulate(path: &Path, policy: &str, pages: u32, budget: Option<u32>, evict: &str) -> Result<()> {
    let (trace, image) = load(path)?;
    let policy = parse_policy(policy, pages)?;
    let mode = pager::EvictMode::from_name(evict)
        .ok_or_else(|| anyhow::anyhow!("--evict {evict:?} is not one of none, fifo, clock"))?;
    let started = Instant::now();
    let options = sim::replay::ReplayOptions { policy, budget };
    let replayed = sim::replay::replay_evicting(&image, &trace.records, options, mode)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let elapsed = started.elapsed();
    let line = replayed.to_stats_line(pager::Policy::name(&policy));
    println!("{line}");
    if mode.evicts() {
        println!("{}", replayed.to_evict_stats_line(mode));
    }
    let records = stats::parse(&line);
    eprintln!("\nreplayed statistics:\n{}", stats::render(&records));
    eprintln!("{} records replayed in {:.3} ms", trace.records.len(), elapsed.as_secs_f64() * 1e3);
    Ok(())
}

/// Compares a boot's `[stats] scope=total` with a replay's; `Err` names every difference. Compared
/// exactly: the VM faults, pages served by class before eviction's (so the frames used: one pool
/// frame per copy, zero, mixed, upgrade or cow-copy page, one large frame per large page, and the
/// one shared zero frame) and refusals. `Ok`
/// carries the pool's `frames_created` of both, which is reported, not compared: it is the pool's
/// high-water mark in 32-frame retype batches, so it depends on how the clients' lives overlap
/// (the scheduler's timer preemption), not on the policy's decisions alone (docs/traces.md).
pub fn compare(booted: &stats::Record, replayed: &sim::replay::ReplayStats) -> Result<String, String> {
    let classes = replayed.classes.by_class().take(pager::FaultCounts::BEFORE_EVICTION);
    let simulated = std::iter::once(("faults", replayed.faults))
        .chain(classes)
        .chain(std::iter::once(("refused", replayed.classes.refused)));
    let mut differences = Vec::new();
    for (key, simulated) in simulated {
        match number(booted, key) {
            Ok(on_sel4) if on_sel4 == simulated => {}
            Ok(on_sel4) => differences.push(format!("{key}: seL4 {on_sel4}, simulator {simulated}")),
            Err(error) => differences.push(format!("{error:#}")),
        }
    }
    if differences.is_empty() {
        let created = number(booted, "frames_created").map_or_else(|e| format!("{e:#}"), |n| n.to_string());
        Ok(format!("frames_created: seL4 {created}, simulator {}", replayed.frames_created))
    } else {
        Err(differences.join("; "))
    }
}

/// The images `cargo xtask test` checks the simulator against (every workload whose clients all run
/// to their expected exit under every policy). Left out: the images that stop clients on purpose
/// (`bad-clients`, `hostile`, `heap-errors`, `exhaust-*`: whether and where a client is stopped
/// can depend on the policy, by budget or exhaustion), `stress` (a million faults: minutes of
/// serial while recording), `debug-kernel` (the same apps as `hello` on the other kernel),
/// `advise` (its app checks the fault counts of its own policy), `large-pages` (its pool is
/// sized for large pages: under seed a client runs out of frames), and `bench/eager-all` and
/// `bench/eager-tenth`: they differ from `bench/lazy-all` and `bench/lazy-tenth` only in their
/// policy, which the agreement sets, so their images under each policy are the same.
pub const AGREEMENT_MANIFESTS: [&str; 12] = [
    "manifests/hello.toml",
    "manifests/patterns.toml",
    "manifests/demo.toml",
    "manifests/multi.toml",
    "manifests/shared.toml",
    "manifests/sparse-bss.toml",
    "manifests/stack.toml",
    "manifests/straddle.toml",
    "manifests/workloads.toml",
    "manifests/bench/faults.toml",
    "manifests/bench/lazy-all.toml",
    "manifests/bench/lazy-tenth.toml",
];

/// The window of the traces the agreement and the experiments replay: one no client fills, so the
/// recording never unmaps a page, and each page of a writable area stays read-only until its first
/// write. Such a trace holds every first touch and every page's first write: what zero-page and
/// cow need (their upgrades and copies happen on first writes), and more than the other policies
/// need (to them a first write finds its page mapped writable: a hit).
pub const FIRST_WRITES: u16 = u16::MAX;

/// The policies without eviction as the agreement boots them: every policy by name, fault-around
/// with 4 pages.
pub fn agreement_policies() -> Vec<Policy> {
    pager::Mode::ALL
        .into_iter()
        .map(|mode| match mode {
            pager::Mode::Seed => Policy::Seed,
            pager::Mode::Eager => Policy::Eager,
            pager::Mode::FaultAround => Policy::FaultAround { pages: 4 },
            other => Policy::Named(other),
        })
        .collect()
}

/// `manifest`'s [`FIRST_WRITES`] trace (its image name, the trace, the packed image and its
/// SHA-256): the one under `target/traces/` when it was recorded from the same packed image, else
/// recorded now.
pub fn recorded_or_record(
    workspace: &Workspace,
    root_task: &Path,
    manifest: &Path,
) -> Result<(String, trace::Trace, Vec<u8>, [u8; 32])> {
    let mut checked = image::check(workspace, manifest)?;
    with_policy(&mut checked, Policy::Seed);
    checked.trace = Some(FIRST_WRITES);
    let packed = image::pack(&checked)?;
    let hash: [u8; 32] = Sha256::digest(&packed).into();
    let name = checked.manifest.name.clone();
    let path = directory(workspace).join(format!("{name}.trace"));
    match load(&path) {
        Ok((trace, image))
            if trace.header.image_hash == hash && trace.header.window == u32::from(FIRST_WRITES) =>
        {
            Ok((name, trace, image, hash))
        }
        _ => {
            eprintln!("{name}: recording its trace on seL4 (once; kept under target/traces/)");
            let recorded = record(workspace, root_task, manifest, FIRST_WRITES)?;
            Ok((name, recorded.trace, recorded.image, hash))
        }
    }
}

/// Boots (two at a time: composing one at a time) that the agreement runs side by side.
const AGREEMENT_JOBS: usize = 2;

/// One manifest's agreement: records its trace with [`FIRST_WRITES`], then for each policy without
/// eviction boots the image under it and replays the trace under it. Returns a line per policy:
/// `Ok` (with the frames-created note) when every count agrees, `Err` naming each difference (or
/// why the boot or the replay failed).
pub fn agreement(
    workspace: &Workspace,
    root_task: &Path,
    manifest: &Path,
) -> Result<Vec<(String, Result<String, String>)>> {
    let recorded = record(workspace, root_task, manifest, FIRST_WRITES)?;
    let policies = agreement_policies();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let compose = std::sync::Mutex::new(());
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..AGREEMENT_JOBS {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&policy) = policies.get(index) else { break };
                let result = agree(workspace, root_task, manifest, &recorded, policy, &compose)
                    .unwrap_or_else(|error| Err(format!("{error:#}")));
                results.lock().unwrap().push((index, policy.name().name().to_owned(), result));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(index, ..)| *index);
    Ok(results.into_iter().map(|(_, name, result)| (name, result)).collect())
}

/// One policy's agreement: the replay of `recorded` against a boot of the image under `policy`.
fn agree(
    workspace: &Workspace,
    root_task: &Path,
    manifest: &Path,
    recorded: &Recorded,
    policy: Policy,
    compose_lock: &std::sync::Mutex<()>,
) -> Result<Result<String, String>> {
    let name = policy.name().name();
    let pages = match policy {
        Policy::FaultAround { pages } => pages,
        _ => 0,
    };
    let options = sim::replay::ReplayOptions { policy: parse_policy(name, pages)?, budget: None };
    let replayed = sim::replay::replay(&recorded.image, &recorded.trace.records, options)
        .map_err(|e| anyhow::anyhow!("{}: {e}", recorded.path.display()))?;
    let (checked, boot_image) = {
        let _one = compose_lock.lock().unwrap();
        let mut checked = image::check(workspace, manifest)?;
        with_policy(&mut checked, policy);
        let image_name = format!("{}.{name}", checked.manifest.name);
        let boot_image = compose(workspace, root_task, &checked, &image_name)?;
        (checked, boot_image)
    };
    let outcome = boot_composed(workspace, &checked, &boot_image)?;
    expect::judge(&checked.manifest, &outcome)
        .map_err(|reason| anyhow::anyhow!("{} failed: {reason}", boot_image.name))?;
    let booted = total_line(&outcome.serial).with_context(|| boot_image.name.clone())?;
    Ok(compare(&booted, &replayed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn booted() -> stats::Record {
        stats::parse_line(
            "[stats] scope=total clients=2 faults=18 image=7 copy=1 zero=6 mixed=4 shared=0 large=0 zero-shared=0 \
             upgrade=0 cow-copy=0 refused=0 \
             frames_created=32 policy=seed",
        )
        .unwrap()
    }

    fn replayed() -> sim::replay::ReplayStats {
        let mut stats = sim::replay::ReplayStats { faults: 18, frames_created: 64, ..Default::default() };
        (stats.classes.image_frame, stats.classes.copy, stats.classes.zero, stats.classes.mixed) =
            (7, 1, 6, 4);
        stats
    }

    #[test]
    fn equal_counts_agree_and_frames_created_is_reported() {
        assert_eq!(compare(&booted(), &replayed()), Ok("frames_created: seL4 32, simulator 64".to_owned()));
    }

    #[test]
    fn every_difference_is_named() {
        let mut other = replayed();
        other.faults = 17;
        other.classes.zero = 5;
        assert_eq!(
            compare(&booted(), &other),
            Err("faults: seL4 18, simulator 17; zero: seL4 6, simulator 5".to_owned())
        );
        let incomplete = stats::parse_line("[stats] scope=total faults=18").unwrap();
        assert!(compare(&incomplete, &replayed()).unwrap_err().contains("has no image="));
    }

    /// The policy names live once, in `abi::PolicyMode`: a manifest, the boot image, the pager,
    /// `simulate`, the agreement and an experiment all take every one of them and mean the same
    /// policy by it.
    #[test]
    fn every_policy_is_named_alike_everywhere() {
        let workspace = Workspace::locate().unwrap();
        let agreed = agreement_policies();
        assert_eq!(agreed.len(), abi::PolicyMode::ALL.len(), "the agreement checks every policy");
        for (mode, agreed) in abi::PolicyMode::ALL.into_iter().zip(agreed) {
            let name = mode.name();
            let text = format!(
                "name = \"p\"\npolicy = \"{name}\"\n[[app]]\nname = \"hello\"\ncrate = \"hello\"\n[app.expect]\nexit_code = 0\n"
            );
            let manifest = manifest::Manifest::parse(Path::new("p.toml"), &text)
                .unwrap_or_else(|e| panic!("the manifest rejects policy {name:?}: {e}"));
            assert_eq!(manifest.policy.name(), mode, "{name}");
            assert_eq!(crate::image::policy(manifest.policy).1, mode.code(), "{name}: boot image code");
            assert_eq!(pager::Mode::from_code(mode.code()), Some(mode), "{name}: the pager reads the code");
            assert_eq!(parse_policy(name, 4).unwrap().mode(), mode, "{name}: simulate --policy");
            assert_eq!(agreed.name(), mode, "{name}: the agreement boots it");
            let experiment = crate::experiment::Experiment::parse(
                &workspace,
                Path::new("experiments/p.toml"),
                &format!("name = \"p\"\nworkloads = [\"manifests/hello.toml\"]\npolicies = [\"{name}\"]\n"),
                false,
            )
            .unwrap_or_else(|e| panic!("an experiment rejects policy {name:?}: {e}"));
            assert_eq!(experiment.policies.iter().map(|p| p.name()).collect::<Vec<_>>(), [mode], "{name}");
        }
    }

    #[test]
    fn policies_are_named_as_simulate_takes_them() {
        assert_eq!(parse_policy("fault-around", 3).unwrap(), pager::BuiltinPolicy::FaultAround { pages: 3 });
        assert_eq!(parse_policy("large-pages", 0).unwrap(), pager::BuiltinPolicy::LargePages);
        assert!(parse_policy("lru", 0)
            .unwrap_err()
            .to_string()
            .contains("not one of seed, eager, fault-around"));
    }
}
