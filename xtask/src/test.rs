//! `cargo xtask test`: host tests, the binding's ABI checks against the kernel source, on-target boots.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::host_setup;
use crate::kernel;
use crate::qemu::{self, BootImage, BootOptions};
use crate::root_task;
use crate::workspace::{cargo, Workspace};

/// Tells the `sel4` crate's ignored ABI tests where the kernel's XML and headers are.
pub const KERNEL_SOURCE_VARIABLE: &str = "SEL4_KERNEL_SOURCE";

pub fn run(workspace: &Workspace, options: &BootOptions) -> Result<()> {
    // First, because the ABI tests read its source and every boot needs it.
    let kernel = kernel::build(workspace)?;
    let mut host_failures = Vec::new();

    eprintln!("... host tests (cargo test)");
    if !cargo_test(workspace, &[], None)? {
        host_failures.push("cargo test");
    }
    eprintln!("... seL4 ABI tests against the kernel source (cargo test -p sel4 -- --include-ignored)");
    if !cargo_test(workspace, &["-p", "sel4", "--", "--include-ignored"], Some(&kernel.source))? {
        host_failures.push("cargo test -p sel4 -- --include-ignored");
    }

    host_setup::ensure_qemu(workspace)?;
    let mut passed = 0;
    let mut failures = Vec::new();
    for (name, image) in on_target_images(workspace, &kernel) {
        let verdict = image.and_then(|image| {
            let outcome = qemu::boot(&image, options)?;
            outcome
                .verdict()
                .map_err(|reason| anyhow::anyhow!("{reason} (serial log: {})", outcome.log.display()))
        });
        match verdict {
            Ok(()) => {
                eprintln!("on-target {name}: passed");
                passed += 1;
            }
            Err(error) => {
                eprintln!("on-target {name}: FAILED: {error:#}");
                failures.push(name);
            }
        }
    }

    println!("{passed} passed, {} failed", failures.len());
    if !host_failures.is_empty() || !failures.is_empty() {
        let mut problems: Vec<String> =
            host_failures.iter().map(|step| format!("host step `{step}` failed")).collect();
        problems.extend(failures.iter().map(|name| format!("on-target image `{name}` failed")));
        bail!("{}", problems.join("; "));
    }
    Ok(())
}

/// The on-target test images, each with its name; an image that cannot be built counts as failed.
/// Test manifests will add to this list.
fn on_target_images(workspace: &Workspace, kernel: &kernel::Kernel) -> Vec<(String, Result<BootImage>)> {
    let self_test = root_task::build(workspace).map(|root_task| BootImage {
        name: "self-test".to_owned(),
        kernel: kernel.image.clone(),
        root_task,
    });
    vec![("self-test".to_owned(), self_test)]
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
