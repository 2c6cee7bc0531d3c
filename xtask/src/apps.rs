//! Building the apps a manifest names and reading their ELFs.
//!
//! Three sources:
//! - `crate = "<name>"`: a workspace package, built with
//!   `cargo build -p <name> --release --target x86_64-unknown-none`; its ELF is
//!   `<target>/x86_64-unknown-none/release/<name>`.
//! - `elf = "<path>"` naming `<target>/apps/c/<program>.elf` for a program listed in
//!   `apps/c/programs.toml`: compiled first with gcc and that program's flags.
//! - any other `elf = "<path>"`: a prebuilt executable, used as it is.
//!
//! `apps/c/programs.toml` lists each C program with its sources (relative to `apps/c`) and its gcc
//! flags, all of them: xtask adds only `-o <output>`. gcc runs in `apps/c`, so relative paths in
//! flags (a link script, an include folder) resolve there.
//!
//! ```toml
//! flags = ["-static", "-nostdlib", "-ffreestanding"]   # optional, before every program's own
//! [[program]]
//! name = "cwrite"
//! sources = ["cwrite.c", "start.S"]
//! flags = ["-O2", "-Wl,-Tlink.ld"]                       # or one string, split at spaces
//! ```

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use manifest::{AppSource, Manifest};
use serde::Deserialize;

use crate::host_setup::{self, DebianTool};
use crate::root_task::TARGET;
use crate::step;
use crate::workspace::{cargo, Workspace};

pub const GCC: DebianTool = DebianTool { program: "gcc", package: "gcc" };

/// An app's ELF, read.
#[derive(Clone)]
pub struct AppElf {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// Flags: a list, or one string split at whitespace.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
enum Flags {
    List(Vec<String>),
    Line(String),
}

impl Default for Flags {
    fn default() -> Self {
        Self::List(Vec::new())
    }
}

impl Flags {
    fn to_vec(&self) -> Vec<String> {
        match self {
            Self::List(list) => list.clone(),
            Self::Line(line) => line.split_whitespace().map(str::to_owned).collect(),
        }
    }
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct ProgramsFile {
    #[serde(default)]
    flags: Flags,
    #[serde(default, rename = "program", alias = "programs")]
    programs: Vec<CProgram>,
}

/// One C program of `apps/c/programs.toml`.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct CProgram {
    pub name: String,
    pub sources: Vec<String>,
    #[serde(default)]
    flags: Flags,
    /// Filled from the file's top-level `flags`.
    #[serde(skip)]
    common_flags: Vec<String>,
}

/// The C programs folder.
pub fn c_directory(workspace: &Workspace) -> PathBuf {
    workspace.root.join("apps").join("c")
}

/// Where a C program's ELF goes.
pub fn c_output(workspace: &Workspace, name: &str) -> PathBuf {
    workspace.target_directory.join("apps").join("c").join(format!("{name}.elf"))
}

/// Reads `apps/c/programs.toml`; no file means no C programs.
pub fn c_programs(workspace: &Workspace) -> Result<Vec<CProgram>> {
    let file = c_directory(workspace).join("programs.toml");
    if !file.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
    parse_programs(&text).with_context(|| format!("{}", file.display()))
}

fn parse_programs(text: &str) -> Result<Vec<CProgram>> {
    let parsed: ProgramsFile =
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))?;
    let common = parsed.flags.to_vec();
    let mut names = BTreeSet::new();
    let mut programs = Vec::new();
    for (index, mut program) in parsed.programs.into_iter().enumerate() {
        if !names.insert(program.name.clone()) {
            bail!("program[{index}].name: {:?} is listed twice", program.name);
        }
        if program.sources.is_empty() {
            bail!("program[{index}].sources: {:?} has no sources", program.name);
        }
        program.common_flags.clone_from(&common);
        programs.push(program);
    }
    Ok(programs)
}

impl CProgram {
    /// gcc's arguments: common flags, the program's flags, `-o output`, then the sources.
    pub fn gcc_arguments(&self, output: &Path) -> Vec<String> {
        let mut arguments = self.common_flags.clone();
        arguments.extend(self.flags.to_vec());
        arguments.push("-o".to_owned());
        arguments.push(output.to_string_lossy().into_owned());
        arguments.extend(self.sources.iter().cloned());
        arguments
    }
}

/// `path` with `.` and `..` resolved lexically (the file may not exist yet).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The C program an `elf = ...` path names, if it is a listed program's output.
fn c_program_for<'p>(workspace: &Workspace, programs: &'p [CProgram], path: &Path) -> Option<&'p CProgram> {
    let path = normalize(&absolute(workspace, path));
    programs.iter().find(|program| {
        let in_target = normalize(&c_output(workspace, &program.name));
        // A manifest may also spell the default target folder when the target folder is elsewhere.
        let in_default = normalize(
            &workspace.root.join("target").join("apps").join("c").join(format!("{}.elf", program.name)),
        );
        path == in_target || path == in_default
    })
}

fn absolute(workspace: &Workspace, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        workspace.root.join(path)
    }
}

/// The path of a crate's ELF.
pub fn crate_output(workspace: &Workspace, krate: &str) -> PathBuf {
    workspace.target_directory.join(TARGET).join("release").join(krate)
}

/// Builds every app of `manifest` and reads the ELFs, in the manifest's order. Errors name the
/// manifest and the app.
pub fn build(workspace: &Workspace, manifest: &Manifest) -> Result<Vec<AppElf>> {
    let file = manifest.file.display();
    let crates: BTreeSet<&str> = manifest
        .apps
        .iter()
        .filter_map(|app| match &app.source {
            AppSource::Crate(krate) => Some(krate.as_str()),
            AppSource::Elf(_) => None,
        })
        .collect();
    for (index, app) in manifest.apps.iter().enumerate() {
        if let AppSource::Crate(krate) = &app.source {
            if !workspace.packages.iter().any(|p| p == krate) {
                bail!(
                    "{file}: app[{index}].crate: app {:?} names crate {krate:?}, which is not a workspace \
                     package (add apps/{krate} to the workspace members)",
                    app.name
                );
            }
        }
    }
    if !crates.is_empty() {
        build_crates(workspace, &crates).with_context(|| format!("{file}: building the Rust apps"))?;
    }

    let programs = c_programs(workspace)?;
    let mut built_c = BTreeSet::new();
    let mut elfs = Vec::new();
    for (index, app) in manifest.apps.iter().enumerate() {
        let path = match &app.source {
            AppSource::Crate(krate) => crate_output(workspace, krate),
            AppSource::Elf(path) => {
                if let Some(program) = c_program_for(workspace, &programs, path) {
                    if built_c.insert(program.name.clone()) {
                        build_c(workspace, program).with_context(|| {
                            format!(
                                "{file}: app[{index}] {:?}: building C program {:?}",
                                app.name, program.name
                            )
                        })?;
                    }
                }
                absolute(workspace, path)
            }
        };
        let bytes = std::fs::read(&path).with_context(|| {
            format!("{file}: app[{index}] {:?}: cannot read its ELF {}", app.name, path.display())
        })?;
        elfs.push(AppElf { path, bytes });
    }
    Ok(elfs)
}

fn build_crates(workspace: &Workspace, crates: &BTreeSet<&str>) -> Result<()> {
    host_setup::ensure_rust_target(workspace, TARGET, "rust-src")?;
    let mut command = cargo();
    command.args(["build", "--release", "--target", TARGET]);
    for krate in crates {
        command.args(["-p", krate]);
    }
    let list: Vec<&str> = crates.iter().copied().collect();
    eprintln!("... build apps {} (cargo build --release --target {TARGET})", list.join(", "));
    // Cargo's output goes straight to the terminal: compile errors read best unfiltered.
    let status = command
        .current_dir(&workspace.root)
        .stdin(std::process::Stdio::null())
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build of {} exited with {status}", list.join(", "));
    }
    Ok(())
}

fn build_c(workspace: &Workspace, program: &CProgram) -> Result<()> {
    host_setup::ensure_debian_tools(workspace, &[GCC])?;
    let output = c_output(workspace, &program.name);
    let directory = output.parent().expect("has a parent");
    std::fs::create_dir_all(directory).with_context(|| format!("cannot create {}", directory.display()))?;
    let log = workspace.target_directory.join("apps").join("c").join(format!("{}.log", program.name));
    step::run_logged(
        &format!("gcc {}", program.name),
        &log,
        Command::new("gcc").args(program.gcc_arguments(&output)).current_dir(c_directory(workspace)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_file_with_common_and_own_flags() {
        let programs = parse_programs(
            r#"
            flags = ["-static", "-nostdlib"]
            [[program]]
            name = "cwrite"
            sources = ["cwrite.c", "start.S"]
            flags = "-O2 -Wl,-Tlink.ld"
            [[program]]
            name = "plain"
            sources = ["plain.c"]
            "#,
        )
        .unwrap();
        assert_eq!(
            programs[0].gcc_arguments(Path::new("/t/cwrite.elf")),
            ["-static", "-nostdlib", "-O2", "-Wl,-Tlink.ld", "-o", "/t/cwrite.elf", "cwrite.c", "start.S"]
        );
        assert_eq!(
            programs[1].gcc_arguments(Path::new("p.elf")),
            ["-static", "-nostdlib", "-o", "p.elf", "plain.c"]
        );
    }

    #[test]
    fn programs_file_errors() {
        let twice = "[[program]]\nname = \"a\"\nsources = [\"a.c\"]\n[[program]]\nname = \"a\"\nsources = [\"b.c\"]\n";
        assert!(parse_programs(twice).unwrap_err().to_string().contains("listed twice"));
        let unknown = "[[program]]\nname = \"a\"\nsources = [\"a.c\"]\ncflags = []\n";
        assert!(parse_programs(unknown).unwrap_err().to_string().contains("cflags"));
    }

    #[test]
    fn normalizes_lexically() {
        assert_eq!(
            normalize(Path::new("/w/manifests/../target/./apps/c/x.elf")),
            Path::new("/w/target/apps/c/x.elf")
        );
    }
}
