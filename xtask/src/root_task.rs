//! The root task: built by plain cargo for the bare-metal target.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::host_setup;
use crate::workspace::{cargo, Workspace};

pub const TARGET: &str = "x86_64-unknown-none";

/// Builds the `root-task` crate in release mode and returns its ELF.
pub fn build(workspace: &Workspace) -> Result<PathBuf> {
    host_setup::ensure_rust_target(workspace, TARGET, "rust-src")?;
    eprintln!("... build the root task (cargo build -p root-task --release --target {TARGET})");
    // Cargo's own output goes straight to the terminal: compile errors read best unfiltered.
    let status = cargo()
        .args(["build", "-p", "root-task", "--release", "--target", TARGET])
        .current_dir(&workspace.root)
        .stdin(std::process::Stdio::null())
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("step `build the root task` failed: cargo exited with {status}");
    }
    let elf = workspace.target_directory.join(TARGET).join("release").join("root-task");
    if !elf.exists() {
        bail!("step `build the root task` failed: cargo succeeded but {} does not exist", elf.display());
    }
    Ok(elf)
}
