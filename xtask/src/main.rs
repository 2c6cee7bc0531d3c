//! `cargo xtask`: the project's host tool for everything plain cargo cannot do.
//!
//! It fetches and builds the seL4 5.0.0 kernel (x86_64, pc99) from the only source the registries hold,
//! builds the root task for `x86_64-unknown-none`, boots the pair under QEMU and runs the whole test
//! suite: host tests first, then every on-target test image.
//!
//! Principles:
//! - Every slow step logs to a file under `target/`, shows a spinner while it runs, and on failure says
//!   which step failed and prints the tail of its log.
//! - Repeated work is cached by content (the kernel build is keyed by a hash of its source, config and
//!   flags), so a second run costs next to nothing.
//! - Nothing needs a terminal or stdin: CI runs this with neither.
//! - Paths are computed from the workspace, never written down.

mod host_setup;
mod kernel;
mod qemu;
mod root_task;
mod smoke;
mod step;
mod test;
mod workspace;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};

use crate::workspace::Workspace;

#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", about = "Build, boot and test the seL4 pager")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the seL4 5.0.0 kernel (x86_64, pc99) and print the path of its ELF32 image.
    Kernel,
    /// Build the root task for x86_64-unknown-none and print the path of its ELF.
    BuildRootTask,
    /// Build the kernel and the root task, then boot them under QEMU.
    Run {
        /// System image manifest to boot (not implemented yet); without one, the root task's self-test.
        manifest: Option<PathBuf>,
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
    /// Run the host tests, then every on-target test image under QEMU.
    Test {
        #[command(flatten)]
        boot: BootArguments,
    },
}

#[derive(clap::Args)]
struct BootArguments {
    /// Seconds to wait for QEMU before killing it.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Run QEMU with `-icount shift=0,sleep=off`: deterministic, one guest instruction per clock tick.
    #[arg(long)]
    icount: bool,
}

impl BootArguments {
    fn to_options(&self, workspace: &Workspace) -> qemu::BootOptions {
        qemu::BootOptions {
            timeout: Duration::from_secs(self.timeout),
            icount: self.icount,
            log_directory: workspace.target_directory.join("qemu"),
        }
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
        Command::Kernel => {
            let kernel = kernel::build(&workspace)?;
            println!("{}", kernel.image.display());
        }
        Command::BuildRootTask => {
            let root_task = root_task::build(&workspace)?;
            println!("{}", root_task.display());
        }
        Command::Run { manifest, boot } => {
            if let Some(manifest) = manifest {
                bail!("cannot boot {}: manifests are not implemented yet", manifest.display());
            }
            let kernel = kernel::build(&workspace)?;
            let root_task = root_task::build(&workspace)?;
            let image = qemu::BootImage { name: "self-test".to_owned(), kernel: kernel.image, root_task };
            boot_and_judge(&workspace, &image, &boot.to_options(&workspace))?;
        }
        Command::Smoke { boot } => {
            let kernel = kernel::build(&workspace)?;
            let root_task = smoke::write_root_task(&workspace)?;
            let image = qemu::BootImage { name: "smoke".to_owned(), kernel: kernel.image, root_task };
            boot_and_judge(&workspace, &image, &boot.to_options(&workspace))?;
        }
        Command::Test { boot } => test::run(&workspace, &boot.to_options(&workspace))?,
    }
    Ok(())
}

/// Boots one image and turns anything but a clean pass into an error.
fn boot_and_judge(workspace: &Workspace, image: &qemu::BootImage, options: &qemu::BootOptions) -> Result<()> {
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
