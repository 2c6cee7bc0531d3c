//! `cargo xtask test`: host tests, the binding's ABI checks against the kernel source, a short run of
//! each fuzz target, then on-target boots: the root task's self-test and every `manifests/*.toml` and
//! `manifests/bench/*.toml`, each judged by the runner's verdict and the manifest's expectations.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::qemu::{self, BootImage};
use crate::workspace::{cargo, Workspace};
use crate::{expect, fuzz, host_setup, kernel, root_task, stats, BootArguments};

/// Tells the `sel4` crate's ignored ABI tests where the kernel's XML and headers are.
pub const KERNEL_SOURCE_VARIABLE: &str = "SEL4_KERNEL_SOURCE";

pub fn run(workspace: &Workspace, boot: &BootArguments) -> Result<()> {
    // First, because the ABI tests read its source and most boots need it; the debug kernel is
    // built as images ask for it (at least one does), from the same source.
    let kernel = kernel::build(workspace, kernel::Variant::Release)?;
    let mut host_failures = Vec::new();

    eprintln!("... host tests (cargo test)");
    if !cargo_test(workspace, &[], None)? {
        host_failures.push("cargo test");
    }
    // The benchmarks' own checks: every scenario once, each rig's classes against the expected ones.
    eprintln!("... benchmark checks (cargo test --benches)");
    if !cargo_test(workspace, &["--benches"], None)? {
        host_failures.push("cargo test --benches");
    }
    eprintln!("... seL4 ABI tests against the kernel source (cargo test -p sel4 -- --include-ignored)");
    if !cargo_test(workspace, &["-p", "sel4", "--", "--include-ignored"], Some(&kernel.source))? {
        host_failures.push("cargo test -p sel4 -- --include-ignored");
    }
    eprintln!("... fuzz targets, {} executions each (cargo xtask fuzz)", fuzz::DEFAULT_RUNS);
    if let Err(error) = fuzz::run(workspace, &fuzz::Options::default()) {
        eprintln!("fuzz: FAILED: {error:#}");
        host_failures.push("cargo xtask fuzz");
    }

    host_setup::ensure_qemu(workspace)?;
    let root_task = root_task::build(workspace);
    let mut passed = 0;
    let mut failures = Vec::new();
    let mut record = |name: String, verdict: Result<String>| match verdict {
        Ok(note) => {
            eprintln!("on-target {name}: passed{note}");
            passed += 1;
        }
        Err(error) => {
            eprintln!("on-target {name}: FAILED: {error:#}");
            failures.push(name);
        }
    };

    let self_test = root_task.as_ref().map_err(|e| anyhow::anyhow!("{e:#}")).and_then(|root_task| {
        let image = BootImage {
            name: "self-test".to_owned(),
            kernel: kernel.image.clone(),
            root_task: root_task.clone(),
            memory: qemu::DEFAULT_MEMORY,
            variant: kernel.variant,
        };
        let outcome = qemu::boot(&image, &boot.to_options(workspace, None))?;
        outcome
            .verdict()
            .map(|()| String::new())
            .map_err(|reason| anyhow::anyhow!("{reason} (serial log: {})", outcome.log.display()))
    });
    record("self-test".to_owned(), self_test);

    for manifest in manifests(workspace)? {
        let name =
            format!("manifest {}", manifest.strip_prefix(&workspace.root).unwrap_or(&manifest).display());
        let verdict = root_task
            .as_ref()
            .map_err(|e| anyhow::anyhow!("no root task: {e:#}"))
            .and_then(|root_task| boot_manifest(workspace, root_task, &manifest, boot));
        record(name, verdict);
    }

    println!("{passed} passed, {} failed", failures.len());
    if !host_failures.is_empty() || !failures.is_empty() {
        let mut problems: Vec<String> =
            host_failures.iter().map(|step| format!("host step `{step}` failed")).collect();
        problems.extend(failures.iter().map(|name| format!("on-target `{name}` failed")));
        bail!("{}", problems.join("; "));
    }
    Ok(())
}

/// Every `manifests/*.toml`, then the bench images' `manifests/bench/*.toml` (booted once here,
/// without `-icount`, so that `cargo xtask bench` keeps working), each group sorted.
pub fn manifests(workspace: &Workspace) -> Result<Vec<PathBuf>> {
    let directory = workspace.root.join("manifests");
    let mut manifests = toml_files(&directory)?;
    manifests.extend(toml_files(&directory.join("bench"))?);
    Ok(manifests)
}

/// The `*.toml` files of a folder, sorted; none when it does not exist.
pub fn toml_files(directory: &Path) -> Result<Vec<PathBuf>> {
    if !directory.exists() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(directory)
        .with_context(|| format!("cannot list {}", directory.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|extension| extension == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Checks, composes, boots and judges one manifest; `Ok` carries a note for the pass line.
fn boot_manifest(
    workspace: &Workspace,
    root_task: &Path,
    manifest: &Path,
    boot: &BootArguments,
) -> Result<String> {
    let (checked, image) = crate::compose_manifest(workspace, root_task, manifest)?;
    let outcome = qemu::boot(&image, &boot.to_options(workspace, Some(checked.manifest.timeout_seconds)))?;
    let lines = expect::judge(&checked.manifest, &outcome)
        .map_err(|reason| anyhow::anyhow!("{reason}\n(serial log: {})", outcome.log.display()))?;
    let records = stats::parse(&outcome.serial).len();
    Ok(format!(
        " ({} kernel, {lines} expected lines, {records} [stats] lines, {:.1} s)",
        image.variant.name(),
        outcome.duration.as_secs_f64()
    ))
}

/// Runs `cargo test` in the workspace (default members unless `arguments` pick a package) and says
/// whether it passed; its output goes straight to the terminal.
fn cargo_test(workspace: &Workspace, arguments: &[&str], kernel_source: Option<&Path>) -> Result<bool> {
    let mut command = cargo();
    // All test binaries, not just up to the first failing one: CI should report every failure.
    command
        .args(["test", "--no-fail-fast"])
        .args(arguments)
        .current_dir(&workspace.root)
        .stdin(std::process::Stdio::null());
    if let Some(source) = kernel_source {
        command.env(KERNEL_SOURCE_VARIABLE, source);
    }
    let status = command.status().context("cannot run cargo test")?;
    Ok(status.success())
}
