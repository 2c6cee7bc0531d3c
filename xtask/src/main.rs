//! `cargo xtask`: the project's host tool for everything plain cargo cannot do.
//!
//! It fetches and builds the seL4 5.0.0 kernel (x86_64, pc99) from the only source the registries hold,
//! builds the root task for `x86_64-unknown-none`, builds the apps a manifest names, composes system
//! images (the packed apps appended to the root task's ELF), boots them under QEMU and runs the whole
//! test suite: host tests first, then the root task's self-test, then every manifest in `manifests/`.
//!
//! Principles:
//! - Every slow step logs to a file under `target/`, shows a spinner while it runs, and on failure says
//!   which step failed and prints the tail of its log.
//! - Repeated work is cached by content (the kernel build is keyed by a hash of its source, config and
//!   flags), so a second run costs next to nothing.
//! - Nothing needs a terminal or stdin: CI runs this with neither.
//! - Paths are computed from the workspace, never written down.

mod apps;
mod bench;
mod compose;
mod console;
mod expect;
mod experiment;
mod fuzz;
mod gdb;
mod host_setup;
mod image;
mod kernel;
mod layout;
mod profile;
mod qemu;
mod root_task;
mod smoke;
mod stats;
mod step;
mod tally;
mod test;
mod trace;
mod workspace;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};

use crate::workspace::Workspace;

/// The manifest `cargo xtask run` boots without an argument.
pub const DEFAULT_MANIFEST: &str = "manifests/demo.toml";
/// Seconds a boot may take when no manifest says otherwise.
const DEFAULT_TIMEOUT_SECONDS: u64 = 60;

#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", about = "Build, boot and test the seL4 pager")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the seL4 5.0.0 kernel (x86_64, pc99) and print the path of its ELF32 image.
    Kernel {
        /// The debug build (kernel messages, debug syscalls) instead of the release build.
        #[arg(long)]
        debug: bool,
    },
    /// Build the root task for x86_64-unknown-none and print the path of its ELF.
    BuildRootTask,
    /// Validate a manifest, build its apps, parse their ELFs and dry-run every instance's layout.
    Check {
        /// System image manifest (TOML).
        manifest: PathBuf,
    },
    /// Write a self-contained bootable image: kernel32.elf, root-task.elf, run.sh, report.json.
    Image {
        /// System image manifest (TOML).
        manifest: PathBuf,
        /// Folder to write (created when missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// Compose and boot a system image under QEMU, then show the pager's statistics.
    ///
    /// Without a manifest, boots manifests/demo.toml (the self-test while that does not exist).
    Run {
        /// System image manifest to boot.
        #[arg(conflicts_with = "self_test")]
        manifest: Option<PathBuf>,
        /// Boot the root task alone: its on-target self-test.
        #[arg(long)]
        self_test: bool,
        /// Start QEMU with its gdb stub (`-s -S`: port 1234, the guest halted until gdb continues),
        /// print the gdb command that loads the kernel's, the root task's and the apps' symbols, and
        /// wait for the run to end, without a time limit unless --timeout gives one.
        #[arg(long)]
        gdb: bool,
        #[command(flatten)]
        boot: BootArguments,
    },
    /// Boot the kernel with a tiny built-in root task that prints the PASS marker and exits QEMU.
    ///
    /// Checks the kernel, QEMU and the runner without the Rust root task.
    Smoke {
        #[command(flatten)]
        boot: BootArguments,
    },
    /// Measure: every manifests/bench/*.toml under -icount (twice, figures must repeat) and the host
    /// core benchmark; writes target/bench/bench.json and bench.md.
    Bench {
        #[command(flatten)]
        arguments: bench::BenchArguments,
    },
    /// Profile the pager's own code per fault by function: boot MANIFEST under -icount with QEMU's
    /// exec log, keep the root task's instructions in each fault's measured part, symbolise them
    /// (addr2line -i) and write target/profile/<image>.md
    Profile {
        #[command(flatten)]
        arguments: profile::ProfileArguments,
    },
    /// Run each cargo-fuzz target in fuzz/ for a fixed number of executions (no nightly needed).
    Fuzz {
        /// Executions per target (libFuzzer's -runs); 10000000 for the long runs.
        #[arg(long, default_value_t = fuzz::DEFAULT_RUNS)]
        runs: u64,
        /// libFuzzer's -seed, fixed so that a clean clone's run starts the same way (0: a random one).
        #[arg(long, default_value_t = fuzz::DEFAULT_SEED)]
        seed: u32,
        /// Targets to run [default: all].
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(fuzz::TARGET_NAMES))]
        targets: Vec<String>,
    },
    /// Boot a manifest with the pager recording every fault (under the seed policy and -icount) and
    /// write target/traces/<image>.trace, .csv and .image (the packed apps image it came from).
    Trace {
        /// System image manifest (TOML).
        manifest: PathBuf,
        /// Pages each client keeps mapped (at least 4; 0: no window). 65535, more than any client
        /// maps, unmaps nothing but keeps writable pages read-only until their first write: the
        /// traces the agreement and experiments replay.
        #[arg(long, default_value_t = 0)]
        window: u16,
    },
    /// Replay a trace in the simulator through the pager core and print its [stats] totals.
    Simulate {
        /// A trace written by `cargo xtask trace` (its .image beside it).
        trace: PathBuf,
        /// A policy's manifest name: seed, eager, fault-around, zero-page, cow or large-pages.
        #[arg(long, default_value = "seed")]
        policy: String,
        /// Pages ahead for fault-around.
        #[arg(long, default_value_t = 4)]
        pages: u32,
        /// Every client's frame budget [default: each app's own].
        #[arg(long)]
        budget: Option<u32>,
        /// Every client's eviction at its budget: none (stopped), fifo or clock.
        #[arg(long, default_value = "none")]
        evict: String,
    },
    /// Record a manifest's trace, then boot it under every policy without eviction and check that the
    /// simulator's replay of the trace counts the same faults by class and frames.
    Agree {
        /// System image manifests [default: the ones `cargo xtask test` checks].
        manifests: Vec<PathBuf>,
    },
    /// Run an experiment: workloads x policies x parameters, in the simulator and (where the file
    /// asks) on seL4; writes target/experiments/<name>/results.csv, report.md and SVG plots.
    Experiment {
        /// An experiment file (experiments/*.toml).
        #[arg(required_unless_present = "list")]
        file: Option<PathBuf>,
        /// Name the shipped experiments.
        #[arg(long)]
        list: bool,
        /// The file's small matrix (its [quick] table).
        #[arg(long)]
        quick: bool,
        /// Only the simulator leg, whatever the file asks.
        #[arg(long)]
        simulator_only: bool,
        /// Run every cell again, ignoring the cache of finished cells.
        #[arg(long)]
        rerun: bool,
        /// Cells run at once [default: the core count].
        #[arg(short, long)]
        jobs: Option<usize>,
    },
    /// Run the host tests, the self-test boot, then boot and judge every manifests/*.toml.
    Test {
        #[command(flatten)]
        boot: BootArguments,
    },
}

#[derive(clap::Args)]
struct BootArguments {
    /// Seconds to wait for QEMU before killing it [default: the manifest's timeout_seconds, else 60].
    #[arg(long)]
    timeout: Option<u64>,
    /// Run QEMU with `-icount shift=0,sleep=off`: deterministic, one guest instruction per clock tick.
    #[arg(long)]
    icount: bool,
}

impl BootArguments {
    /// Boot options; `manifest_timeout` applies unless `--timeout` was given.
    fn to_options(&self, workspace: &Workspace, manifest_timeout: Option<u64>) -> qemu::BootOptions {
        let seconds = self.timeout.or(manifest_timeout).unwrap_or(DEFAULT_TIMEOUT_SECONDS);
        qemu::BootOptions {
            timeout: Duration::from_secs(seconds),
            icount: self.icount,
            gdb: false,
            log_directory: workspace.target_directory.join("qemu"),
        }
    }

    /// Options for `run`: with `gdb`, QEMU's gdb stub, and no time limit unless `--timeout` gives one
    /// (the person at the debugger sets the pace).
    fn to_run_options(
        &self,
        workspace: &Workspace,
        manifest_timeout: Option<u64>,
        gdb: bool,
    ) -> qemu::BootOptions {
        let mut options = self.to_options(workspace, manifest_timeout);
        if gdb {
            options.gdb = true;
            if self.timeout.is_none() {
                options.timeout = Duration::MAX;
            }
        }
        options
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<()> {
    let workspace = Workspace::locate()?;
    match command {
        Command::Kernel { debug } => {
            let variant = if debug { kernel::Variant::Debug } else { kernel::Variant::Release };
            let kernel = kernel::build(&workspace, variant)?;
            println!("{}", kernel.image.display());
        }
        Command::BuildRootTask => {
            let root_task = root_task::build(&workspace)?;
            println!("{}", root_task.display());
        }
        Command::Check { manifest } => {
            let checked = image::check(&workspace, &manifest)?;
            let apps = checked.manifest.apps.len();
            let instances = checked.manifest.instance_count();
            eprintln!(
                "{}: ok ({apps} app{}, {instances} instance{}, no overlaps{})",
                manifest.display(),
                if apps == 1 { "" } else { "s" },
                if instances == 1 { "" } else { "s" },
                image::describe_eviction(&checked.manifest)
            );
        }
        Command::Image { manifest, out } => {
            let checked = image::check(&workspace, &manifest)?;
            let kernel = kernel::build(&workspace, checked.manifest.kernel)?;
            let root_task = root_task::build(&workspace)?;
            let written = image::write(&workspace, &checked, &kernel.image, &root_task, &out)?;
            eprintln!(
                "{}: wrote {} (root task spans {} pages of {}); boot it with {}",
                manifest.display(),
                written.directory.display(),
                written.report.root_task.span_pages,
                compose::SPAN_LIMIT_PAGES,
                written.directory.join("run.sh").display()
            );
        }
        Command::Run { manifest, self_test, gdb, boot } => {
            let manifest = match manifest {
                Some(manifest) => Some(manifest),
                None if self_test => None,
                None => {
                    let default = workspace.root.join(DEFAULT_MANIFEST);
                    if default.exists() {
                        Some(default)
                    } else {
                        eprintln!(
                            "note: {DEFAULT_MANIFEST} does not exist yet: booting the root task's self-test"
                        );
                        None
                    }
                }
            };
            match manifest {
                Some(manifest) => run_manifest(&workspace, &manifest, &boot, gdb)?,
                None => {
                    let kernel = kernel::build(&workspace, kernel::Variant::Release)?;
                    let root_task = root_task::build(&workspace)?;
                    if gdb {
                        announce_gdb(&kernel.image, &root_task, &[])?;
                    }
                    let image = qemu::BootImage {
                        name: "self-test".to_owned(),
                        kernel: kernel.image,
                        root_task,
                        memory: qemu::DEFAULT_MEMORY,
                        variant: kernel.variant,
                    };
                    boot_and_judge(&workspace, &image, &boot.to_run_options(&workspace, None, gdb))?;
                }
            }
        }
        Command::Smoke { boot } => {
            let kernel = kernel::build(&workspace, kernel::Variant::Release)?;
            let root_task = smoke::write_root_task(&workspace)?;
            let image = qemu::BootImage {
                name: "smoke".to_owned(),
                kernel: kernel.image,
                root_task,
                memory: qemu::DEFAULT_MEMORY,
                variant: kernel.variant,
            };
            boot_and_judge(&workspace, &image, &boot.to_options(&workspace, None))?;
        }
        Command::Bench { arguments } => bench::run(&workspace, &arguments)?,
        Command::Profile { arguments } => profile::run(&workspace, &arguments)?,
        Command::Fuzz { runs, seed, targets } => {
            fuzz::run(&workspace, &fuzz::Options { runs, seed, targets })?
        }
        Command::Test { boot } => test::run(&workspace, &boot)?,
        Command::Trace { manifest, window } => {
            let root_task = root_task::build(&workspace)?;
            let recorded = trace::record(&workspace, &root_task, &manifest, window)?;
            let bytes = recorded.trace.to_bytes().len();
            eprintln!(
                "{}: {} records ({} faults), {bytes} bytes; {} and .csv, .image beside it",
                manifest.display(),
                recorded.trace.records.len(),
                recorded.trace.faults().count(),
                recorded.path.display()
            );
        }
        Command::Simulate { trace: path, policy, pages, budget, evict } => {
            trace::simulate(&path, &policy, pages, budget, &evict)?
        }
        Command::Experiment { file, list, quick, simulator_only, rerun, jobs } => match file {
            Some(file) if !list => {
                let root_task = root_task::build(&workspace)?;
                let jobs =
                    jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
                let options = experiment::Options { jobs, quick, simulator_only, rerun };
                let outcome = experiment::run(&workspace, &root_task, &file, &options)?;
                eprintln!(
                    "{}: {} cells ({} cached), {} differing between simulator and seL4; {}",
                    file.display(),
                    outcome.cells,
                    outcome.cached,
                    outcome.differences,
                    outcome.directory.join("report.md").display()
                );
            }
            _ => experiment::list(&workspace)?,
        },
        Command::Agree { manifests } => {
            let root_task = root_task::build(&workspace)?;
            let manifests = if manifests.is_empty() {
                trace::AGREEMENT_MANIFESTS.iter().map(|m| workspace.root.join(m)).collect()
            } else {
                manifests
            };
            let mut failed = 0;
            for manifest in &manifests {
                for (policy, result) in trace::agreement(&workspace, &root_task, manifest)? {
                    match result {
                        Ok(note) => {
                            eprintln!("{}: {policy}: simulator agrees with seL4 ({note})", manifest.display())
                        }
                        Err(difference) => {
                            failed += 1;
                            eprintln!("{}: {policy}: DIFFERS: {difference}", manifest.display());
                        }
                    }
                }
            }
            if failed > 0 {
                bail!("{failed} disagreements");
            }
        }
    }
    Ok(())
}

/// Where `run` and `test` write a manifest's image.
pub fn image_directory(workspace: &Workspace, name: &str) -> PathBuf {
    workspace.target_directory.join("images").join(name)
}

/// Checks a manifest, builds (or reuses) the kernel it names and writes its image under
/// [`image_directory`], ready to boot.
pub fn compose_manifest(
    workspace: &Workspace,
    root_task: &Path,
    manifest: &Path,
) -> Result<(image::Checked, qemu::BootImage)> {
    let checked = image::check(workspace, manifest)?;
    let kernel = kernel::build(workspace, checked.manifest.kernel)?;
    let name = checked.manifest.name.clone();
    let written =
        image::write(workspace, &checked, &kernel.image, root_task, &image_directory(workspace, &name))?;
    let boot_image = qemu::BootImage {
        name,
        kernel: written.kernel,
        root_task: written.root_task,
        memory: checked.manifest.memory,
        variant: kernel.variant,
    };
    Ok((checked, boot_image))
}

/// Checks, composes and boots a manifest (under gdb's eye with `gdb`), prints its statistics and
/// judges the run.
fn run_manifest(workspace: &Workspace, manifest: &Path, boot: &BootArguments, gdb: bool) -> Result<()> {
    let root_task = root_task::build(workspace)?;
    let (checked, boot_image) = compose_manifest(workspace, &root_task, manifest)?;
    let name = boot_image.name.clone();
    host_setup::ensure_qemu(workspace)?;
    let options = boot.to_run_options(workspace, Some(checked.manifest.timeout_seconds), gdb);
    if gdb {
        let apps: Vec<PathBuf> = checked.elfs.iter().map(|elf| elf.path.clone()).collect();
        announce_gdb(&boot_image.kernel, &root_task, &apps)?;
    }
    let outcome = qemu::boot(&boot_image, &options)?;
    let records = stats::parse(&outcome.serial);
    if records.is_empty() {
        eprintln!("(no [stats] lines on serial)");
    } else {
        eprintln!("\npager statistics:\n{}", stats::render(&records));
    }
    match expect::judge(&checked.manifest, &outcome) {
        Ok(lines) => {
            eprintln!("{name}: passed, {lines} expected lines seen (serial log: {})", outcome.log.display());
            Ok(())
        }
        Err(reason) => bail!("{name} failed: {reason}\n(serial log: {})", outcome.log.display()),
    }
}

/// Tells the person at the terminal how to attach gdb to the QEMU about to start: the symbols of the
/// kernel (`kernel` is the ELF32 image the build made from them), the root task and the apps.
fn announce_gdb(kernel: &Path, root_task: &Path, apps: &[PathBuf]) -> Result<()> {
    let symbols = gdb::Symbols::new(kernel, root_task, apps)?;
    eprintln!(
        "QEMU waits for gdb on port {}; in another terminal run\n\n{}\n\nthen set breakpoints \
         (`hbreak`: the kernel and the root task are loaded after gdb connects) and `continue`.",
        gdb::STUB_PORT,
        symbols.command_line()?
    );
    Ok(())
}

/// Boots one image and turns anything but a clean pass into an error.
pub fn boot_and_judge(
    workspace: &Workspace,
    image: &qemu::BootImage,
    options: &qemu::BootOptions,
) -> Result<()> {
    host_setup::ensure_qemu(workspace)?;
    let outcome = qemu::boot(image, options)?;
    match outcome.verdict() {
        Ok(()) => {
            eprintln!("{}: passed (serial log: {})", image.name, outcome.log.display());
            Ok(())
        }
        Err(reason) => bail!("{} failed: {reason} (serial log: {})", image.name, outcome.log.display()),
    }
}
