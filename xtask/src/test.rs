//! `cargo xtask test`: host tests, the binding's ABI checks against the kernel source, a short run of
//! each fuzz target, then on-target boots: the root task's self-test and every `manifests/*.toml` and
//! `manifests/bench/*.toml`, each judged by the runner's verdict and the manifest's expectations,
//! then the simulator's agreement with seL4 ([`crate::trace::agreement`]), and last each shipped
//! experiment's small matrix ([`crate::experiment`]; fault-around's on seL4 too).
//!
//! Every phase runs whatever an earlier one found, and the run ends with a line per phase and the
//! total, `N passed, M failed`, alone on the last line of stdout ([`tally`]).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::qemu::{self, BootImage};
use crate::tally::{self, Summary, Tally};
use crate::workspace::{cargo, Workspace};
use crate::{expect, fuzz, host_setup, kernel, root_task, stats, BootArguments};

/// Tells the `sel4` crate's ignored ABI tests where the kernel's XML and headers are.
pub const KERNEL_SOURCE_VARIABLE: &str = "SEL4_KERNEL_SOURCE";

pub fn run(workspace: &Workspace, boot: &BootArguments) -> Result<()> {
    // First, because the ABI tests read its source and most boots need it; the debug kernel is
    // built as images ask for it (at least one does), from the same source.
    let kernel = kernel::build(workspace, kernel::Variant::Release)?;
    let mut summary = Summary::default();

    // Every member, the root task's unit tests among them; the apps' binaries have no host tests
    // (`test = false`: their tests are the boots below).
    summary.record("host tests", cargo_test(workspace, "host tests", &["--workspace"], None)?);
    // The benchmarks' own checks: every scenario once, each rig's classes against the expected ones.
    // Bench targets only (`--benches` would run every library's unit tests again).
    summary.record(
        "benchmark checks",
        cargo_test(workspace, "benchmark checks", &["--workspace", "--bench", "*"], None)?,
    );
    // Only the ignored tests: the others of `sel4` ran with the host tests.
    summary.record(
        "seL4 ABI tests",
        cargo_test(
            workspace,
            "seL4 ABI tests against the kernel source",
            &["-p", "sel4", "--", "--ignored"],
            Some(&kernel.source),
        )?,
    );
    eprintln!("... fuzz targets, {} executions each (cargo xtask fuzz)", fuzz::DEFAULT_RUNS);
    let fuzz = match fuzz::run_targets(workspace, &fuzz::Options::default()) {
        Ok(targets) => {
            targets.iter().fold(Tally::default(), |tally, (_, passed)| tally + Tally::one(*passed))
        }
        Err(error) => {
            eprintln!("fuzz: FAILED: {error:#}");
            Tally::one(false)
        }
    };
    summary.record("fuzz targets", fuzz);

    host_setup::ensure_qemu(workspace)?;
    let root_task = root_task::build(workspace);
    let mut boots = Tally::default();
    let mut failed_boots = Vec::new();
    let mut record = |name: String, verdict: Result<String>| match verdict {
        Ok(note) => {
            eprintln!("on-target {name}: passed{note}");
            boots += Tally::one(true);
        }
        Err(error) => {
            eprintln!("on-target {name}: FAILED: {error:#}");
            boots += Tally::one(false);
            failed_boots.push(name);
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
    summary.record("boots", boots);

    // The simulator against seL4: each image's trace replayed under every policy without eviction
    // gives the counts of booting it under that policy (cargo xtask agree).
    let mut agreement = Tally::default();
    if let Ok(root_task) = &root_task {
        for manifest in crate::trace::AGREEMENT_MANIFESTS {
            let path = workspace.root.join(manifest);
            match crate::trace::agreement(workspace, root_task, &path) {
                Ok(results) => {
                    for (policy, result) in results {
                        agreement += Tally::one(result.is_ok());
                        match result {
                            Ok(note) => eprintln!("agreement {manifest} {policy}: passed ({note})"),
                            Err(difference) => {
                                eprintln!("agreement {manifest} {policy}: FAILED: {difference}")
                            }
                        }
                    }
                }
                Err(error) => {
                    eprintln!("agreement {manifest}: FAILED: {error:#}");
                    agreement += Tally::one(false);
                }
            }
        }
    }
    summary.record("simulator agreement", agreement);

    // Each shipped experiment's small matrix (the traces the agreement recorded are reused; the
    // seL4 leg where its [quick] table asks), so the runner, its outputs and the experiment files
    // stay tested; a cell where the simulator and seL4 differ fails it.
    let mut experiments = Tally::default();
    if let Ok(root_task) = &root_task {
        let options = crate::experiment::Options { jobs: 2, quick: true, simulator_only: false, rerun: true };
        match crate::experiment::shipped(workspace) {
            Ok(files) => {
                for file in files {
                    let name = file.strip_prefix(&workspace.root).unwrap_or(&file).display().to_string();
                    match crate::experiment::run(workspace, root_task, &file, &options) {
                        Ok(outcome) if outcome.differences == 0 => {
                            experiments += Tally::one(true);
                            eprintln!("experiment {name} --quick: passed, {} cells", outcome.cells);
                        }
                        Ok(outcome) => {
                            experiments += Tally::one(false);
                            eprintln!(
                                "experiment {name} --quick: FAILED: {} cells where the simulator and seL4 \
                                 differ (see {})",
                                outcome.differences,
                                outcome.directory.join("report.md").display()
                            );
                        }
                        Err(error) => {
                            experiments += Tally::one(false);
                            eprintln!("experiment {name} --quick: FAILED: {error:#}");
                        }
                    }
                }
            }
            Err(error) => {
                experiments += Tally::one(false);
                eprintln!("experiments: FAILED: {error:#}");
            }
        }
    }
    summary.record("experiments (quick)", experiments);

    // stdout: CI reads the last line.
    print!("\n{}", summary.render());
    let failed_phases = summary.failed_phases();
    if !failed_phases.is_empty() {
        let mut problems: Vec<String> = failed_phases.iter().map(|phase| format!("{phase} failed")).collect();
        problems.extend(failed_boots.iter().map(|name| format!("on-target `{name}` failed")));
        bail!("{}", problems.join("; "));
    }
    Ok(())
}

/// Every `manifests/*.toml`, then the bench images' `manifests/bench/*.toml` and
/// `manifests/bench/scale/*.toml` (booted once here, without `-icount`, so that `cargo xtask bench`
/// keeps working), each group sorted.
pub fn manifests(workspace: &Workspace) -> Result<Vec<PathBuf>> {
    let directory = workspace.root.join("manifests");
    let mut manifests = toml_files(&directory)?;
    manifests.extend(toml_files(&directory.join("bench"))?);
    manifests.extend(toml_files(&directory.join("bench").join("scale"))?);
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

/// Runs `cargo test` with `arguments` in the workspace and counts its tests. Its output, stdout and
/// stderr through one pipe so that each binary's result follows cargo's line naming it, goes to
/// stderr as it comes.
fn cargo_test(
    workspace: &Workspace,
    description: &str,
    arguments: &[&str],
    kernel_source: Option<&Path>,
) -> Result<Tally> {
    eprintln!("... {description} (cargo test {})", arguments.join(" "));
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
    let (mut reader, writer) = std::io::pipe().context("cannot make a pipe for cargo test")?;
    command.stdout(writer.try_clone().context("cannot share a pipe")?).stderr(writer);
    let mut child = command.spawn().context("cannot run cargo test")?;
    // The command holds our copies of the pipe's write end: without them the read ends with cargo.
    drop(command);
    let mut output = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let count = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(count) => count,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error).context("cannot read cargo test's output"),
        };
        let _ = std::io::stderr().write_all(&chunk[..count]);
        output.extend_from_slice(&chunk[..count]);
    }
    let status = child.wait().context("cannot wait for cargo test")?;
    let tally = tally::count_cargo_test(&String::from_utf8_lossy(&output), status.success());
    eprintln!("    {description}: {tally}");
    Ok(tally)
}
