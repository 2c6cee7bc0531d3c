//! Where things live: the workspace root, cargo's target directory and the cargo to run.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

pub struct Workspace {
    pub root: PathBuf,
    pub target_directory: PathBuf,
    /// The names of the workspace's packages.
    pub packages: Vec<String>,
}

impl Workspace {
    /// Finds the workspace from this crate's own location and asks cargo for the target directory,
    /// so a `CARGO_TARGET_DIR` or a `build.target-dir` setting is honoured.
    pub fn locate() -> Result<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("xtask has no parent directory")?
            .to_path_buf();
        let output = cargo()
            .args(["metadata", "--no-deps", "--format-version", "1"])
            .current_dir(&root)
            .output()
            .context("cannot run `cargo metadata`")?;
        if !output.status.success() {
            bail!("`cargo metadata` failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let metadata: serde_json::Value =
            serde_json::from_slice(&output.stdout).context("`cargo metadata` printed no JSON")?;
        let target_directory = metadata["target_directory"]
            .as_str()
            .context("`cargo metadata` names no target directory")?
            .into();
        let packages = metadata["packages"]
            .as_array()
            .map(|packages| packages.iter().filter_map(|p| p["name"].as_str()).map(str::to_owned).collect())
            .unwrap_or_default();
        Ok(Self { root, target_directory, packages })
    }

    /// Everything xtask keeps for the kernel: fetch manifest, source copy, venv, builds and logs.
    pub fn sel4_directory(&self) -> PathBuf {
        self.target_directory.join("sel4")
    }

    pub fn log_directory(&self) -> PathBuf {
        self.sel4_directory().join("logs")
    }
}

/// The cargo that runs us (cargo sets `CARGO`), so a pinned toolchain stays pinned.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")))
}

/// Whether `program` is an executable file somewhere on `PATH`.
pub fn is_on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|directory| {
        std::fs::metadata(directory.join(program))
            .map(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}
