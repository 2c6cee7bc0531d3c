//! Host prerequisites, installed when missing: Debian packages, the kernel's Python venv, Rust targets.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::step;
use crate::workspace::{is_on_path, Workspace};

/// A program the build needs and the Debian package that provides it.
pub struct DebianTool {
    pub program: &'static str,
    pub package: &'static str,
}

pub const XMLLINT: DebianTool = DebianTool { program: "xmllint", package: "libxml2-utils" };

pub const QEMU: DebianTool = DebianTool { program: "qemu-system-x86_64", package: "qemu-system-x86" };

/// Python modules the kernel's header generators import.
const PYTHON_MODULES: [&str; 3] = ["six", "ply", "tempita"];

/// Installs the packages of the missing tools with apt-get when we are root; otherwise fails with
/// the exact command to run.
pub fn ensure_debian_tools(workspace: &Workspace, tools: &[DebianTool]) -> Result<()> {
    let missing: Vec<&DebianTool> = tools.iter().filter(|tool| !is_on_path(tool.program)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let programs: Vec<&str> = missing.iter().map(|tool| tool.program).collect();
    let packages: Vec<&str> = missing.iter().map(|tool| tool.package).collect();
    let install = format!(
        "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {}",
        packages.join(" ")
    );
    if !is_root() || !is_on_path("apt-get") {
        bail!("missing {}; install them as root with:\n    {install}", programs.join(", "));
    }
    let log = workspace.log_directory().join("apt-get.log");
    step::run_logged("apt-get update", &log.with_file_name("apt-get-update.log"), apt_get().arg("update"))?;
    step::run_logged(
        &format!("apt-get install {}", packages.join(" ")),
        &log,
        apt_get().args(["install", "-y", "--no-install-recommends"]).args(&packages),
    )?;
    let still_missing: Vec<&str> = programs.into_iter().filter(|program| !is_on_path(program)).collect();
    if !still_missing.is_empty() {
        bail!(
            "apt-get installed {} but {} is still not on PATH",
            packages.join(" "),
            still_missing.join(", ")
        );
    }
    Ok(())
}

/// The font the experiment plots are drawn with, and the Debian package that ships it.
pub const PLOT_FONT: (&str, &str) = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "fonts-dejavu-core");

/// The plot font's bytes, installing its package with apt-get when the file is missing (as root;
/// otherwise fails with the command to run).
pub fn plot_font(workspace: &Workspace) -> Result<Vec<u8>> {
    let (path, package) = PLOT_FONT;
    if !Path::new(path).is_file() {
        let install = format!(
            "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {package}"
        );
        if !is_root() || !is_on_path("apt-get") {
            bail!("missing {path} (the plots' font); install it as root with:\n    {install}");
        }
        let log = workspace.log_directory().join("apt-get.log");
        step::run_logged(
            "apt-get update",
            &log.with_file_name("apt-get-update.log"),
            apt_get().arg("update"),
        )?;
        step::run_logged(
            &format!("apt-get install {package}"),
            &log,
            apt_get().args(["install", "-y", "--no-install-recommends", package]),
        )?;
    }
    std::fs::read(path).with_context(|| format!("cannot read {path} (Debian package {package})"))
}

fn apt_get() -> Command {
    let mut command = Command::new("apt-get");
    // No questions asked: CI has no stdin and no terminal.
    command.env("DEBIAN_FRONTEND", "noninteractive");
    command
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .stderr(Stdio::null())
        .output()
        .map(|output| output.status.success() && output.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

/// Makes the venv under `target/` that runs the kernel's Python generators and returns its `bin`
/// directory, which must come first on `PATH` (the scripts start with `#!/usr/bin/env python`).
pub fn python_venv(workspace: &Workspace) -> Result<PathBuf> {
    let venv = workspace.sel4_directory().join("venv");
    let bin = venv.join("bin");
    let python = bin.join("python");
    if has_python_modules(&python) {
        return Ok(bin);
    }
    if !is_on_path("python3") {
        bail!("python3 is not on PATH; the seL4 build needs Python 3 (Debian: python3 python3-venv)");
    }
    let logs = workspace.log_directory();
    step::run_logged(
        "create the Python venv",
        &logs.join("venv.log"),
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
    )?;
    step::run_logged(
        &format!("pip install {}", PYTHON_MODULES.join(" ")),
        &logs.join("pip.log"),
        Command::new(&python)
            .args(["-m", "pip", "install", "--disable-pip-version-check"])
            .args(PYTHON_MODULES),
    )?;
    if !has_python_modules(&python) {
        bail!("the venv at {} still cannot import {}", venv.display(), PYTHON_MODULES.join(", "));
    }
    Ok(bin)
}

fn has_python_modules(python: &Path) -> bool {
    python.exists()
        && Command::new(python)
            .arg("-c")
            .arg(format!("import {}", PYTHON_MODULES.join(", ")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
}

/// Adds a rustup target and component for the active toolchain when they are missing.
pub fn ensure_rust_target(workspace: &Workspace, target: &str, component: &str) -> Result<()> {
    if !is_on_path("rustup") {
        // Without rustup the toolchain is whatever it is; cargo will say what is missing.
        return Ok(());
    }
    let logs = workspace.log_directory();
    if !rustup_lists(workspace, &["target", "list", "--installed"], target)? {
        step::run_logged(
            &format!("rustup target add {target}"),
            &logs.join("rustup-target.log"),
            rustup(workspace).args(["target", "add", target]),
        )?;
    }
    if !rustup_lists(workspace, &["component", "list", "--installed"], component)? {
        step::run_logged(
            &format!("rustup component add {component}"),
            &logs.join("rustup-component.log"),
            rustup(workspace).args(["component", "add", component]),
        )?;
    }
    Ok(())
}

/// Runs rustup in the workspace so a `rust-toolchain.toml` there picks the toolchain.
fn rustup(workspace: &Workspace) -> Command {
    let mut command = Command::new("rustup");
    command.current_dir(&workspace.root);
    command
}

fn rustup_lists(workspace: &Workspace, arguments: &[&str], name: &str) -> Result<bool> {
    let output =
        rustup(workspace).args(arguments).stdin(Stdio::null()).output().context("cannot run rustup")?;
    // Components are listed with the host triple appended (`rust-src` is not, but be lenient).
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .any(|line| line.trim() == name || line.trim().starts_with(&format!("{name}-"))))
}

/// QEMU for the boots: installed like the other Debian tools when missing.
pub fn ensure_qemu(workspace: &Workspace) -> Result<()> {
    ensure_debian_tools(workspace, &[QEMU])
}
