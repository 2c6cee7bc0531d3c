//! The seL4 kernel: fetch its source with cargo, copy and patch it, configure it, build it once.
//!
//! The only seL4 source any reachable registry holds is seL4 5.0.0 inside the registry crate
//! `sel4-sys` 0.0.28. Cargo fetches that crate (never compiles it), and its `seL4/` folder is copied to
//! `target/sel4/kernel-src/`, patched for today's gcc and given the project's `kernel/autoconf.h`.
//! Two builds of that one copy are kept side by side: the release kernel (no `CONFIG_DEBUG_BUILD`,
//! no `CONFIG_PRINTING`: no debug syscall exists) that images boot by default, and the debug kernel
//! (the Makefile's `DEBUG=1`; `kernel/autoconf.h` turns printing on with it) for kernel messages.
//! Builds are keyed by a hash of the pristine source, the config, the patch and the build flags:
//! `target/sel4/build-<variant>-<key>/kernel32.elf` existing means that exact kernel is built.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use sha2::{Digest, Sha256};

pub use manifest::Kernel as Variant;

use crate::host_setup;
use crate::step;
use crate::workspace::{cargo, Workspace};

const SEL4_SYS_VERSION: &str = "0.0.28";
const KERNEL_VERSION: &str = "5.0.0";

/// The Makefile's variables for an x86_64 pc99 kernel.
const MAKE_VARIABLES: [&str; 3] = ["ARCH=x86", "SEL4_ARCH=x86_64", "PLAT=pc99"];
/// Added for the debug kernel: the Makefile then defines `CONFIG_DEBUG_BUILD` and
/// `CONFIG_USER_STACK_TRACE_LENGTH=1` (and `kernel/autoconf.h` adds `CONFIG_PRINTING`).
const DEBUG_VARIABLE: &str = "DEBUG=1";

/// The make variables of a variant.
fn make_variables(variant: Variant) -> Vec<&'static str> {
    let mut variables = MAKE_VARIABLES.to_vec();
    if variant == Variant::Debug {
        variables.push(DEBUG_VARIABLE);
    }
    variables
}

/// Appended to by the Makefile: gcc 12 warns where gcc of 2018 did not, and the kernel builds with
/// -Werror.
const KERNEL_CFLAGS: &str = "-Wno-address-of-packed-member -Wno-array-bounds";

/// `circular_includes.py` skips the line marker that opens the main file, which gcc before 10 wrote
/// as `# 1 "kernel_all.c"` and gcc 10 and later write as `# 0 ...`; the old pattern crashes the script.
const CIRCULAR_INCLUDES_SCRIPT: &str = "tools/circular_includes.py";
const CIRCULAR_INCLUDES_OLD: &str = r#"re.compile(r'^# 1 "kernel_all\.c"')"#;
const CIRCULAR_INCLUDES_NEW: &str = r#"re.compile(r'^# [01] "kernel_all\.c"')"#;

/// Where the config goes: the Makefile puts `include/plat/pc99` on the include path ahead of the build
/// folder, so `#include <autoconf.h>` finds this file (and the Makefile's copy of it is not used).
const AUTOCONF_IN_SOURCE: &str = "include/plat/pc99/autoconf.h";

/// Bump when the way the source is prepared or built changes, to invalidate cached builds.
const RECIPE_VERSION: &str = "xtask-kernel-2";

pub struct Kernel {
    /// The ELF32 kernel that multiboot (QEMU `-kernel`) accepts.
    pub image: PathBuf,
    /// Which build it is.
    pub variant: Variant,
    /// The patched and configured kernel source, for ABI checks against its XML and headers.
    pub source: PathBuf,
}

/// The patched, configured kernel source that the build uses (and that ABI tests read).
pub fn source_directory(workspace: &Workspace) -> PathBuf {
    workspace.sel4_directory().join("kernel-src")
}

/// Builds the kernel variant unless a build with the same key exists, and returns it.
pub fn build(workspace: &Workspace, variant: Variant) -> Result<Kernel> {
    let sel4 = workspace.sel4_directory();
    let logs = workspace.log_directory();
    let pristine = fetch_source(workspace)?;
    let autoconf_path = workspace.root.join("kernel").join("autoconf.h");
    let autoconf = fs::read(&autoconf_path)
        .with_context(|| format!("cannot read the kernel config {}", autoconf_path.display()))?;

    let source_key =
        step::run_in_process("hash the kernel source and config", || source_key(&pristine, &autoconf))?;
    let key = build_key(&source_key, variant);
    let short_key = &key[..16];
    let source = source_directory(workspace);
    let source_stamp = sel4.join("kernel-src.key");
    let build_directory = sel4.join(format!("build-{}-{short_key}", variant.name()));
    let image = build_directory.join("kernel32.elf");

    let source_is_current = fs::read_to_string(&source_stamp).is_ok_and(|stamp| stamp == source_key)
        && source.join("Makefile").exists();
    if !source_is_current {
        step::run_in_process("copy and patch the kernel source", || {
            prepare_source(&pristine, &source, &autoconf)?;
            fs::write(&source_stamp, &source_key)
                .with_context(|| format!("cannot write {}", source_stamp.display()))
        })?;
    }
    // The copy is made from the key's inputs alone, so a build with this key matches it either way.
    if image.exists() {
        remove_other_builds(&sel4, &build_directory, variant);
        eprintln!("    {} kernel is up to date (cached build {short_key}, nothing to do)", variant.name());
        return Ok(Kernel { image, variant, source });
    }

    host_setup::ensure_debian_tools(workspace, &[host_setup::XMLLINT])?;
    let venv_bin = host_setup::python_venv(workspace)?;

    // A fresh folder: a half-finished build of the same key is not worth trusting.
    if build_directory.exists() {
        fs::remove_dir_all(&build_directory)
            .with_context(|| format!("cannot remove {}", build_directory.display()))?;
    }
    fs::create_dir_all(&build_directory)
        .with_context(|| format!("cannot create {}", build_directory.display()))?;
    step::run_logged(
        &format!("build the seL4 {} kernel (make)", variant.name()),
        &logs.join(format!("make-{}.log", variant.name())),
        &mut make_command(&source, &build_directory, &venv_bin, variant)?,
    )?;

    // Write under a temporary name and rename, so the image exists only when it is complete.
    let partial = build_directory.join("kernel32.elf.partial");
    step::run_logged(
        "convert the kernel to ELF32 (objcopy)",
        &logs.join("objcopy.log"),
        Command::new("objcopy")
            .args(["-O", "elf32-i386"])
            .arg(build_directory.join("kernel.elf"))
            .arg(&partial),
    )?;
    fs::rename(&partial, &image).with_context(|| format!("cannot write {}", image.display()))?;
    remove_other_builds(&sel4, &build_directory, variant);
    Ok(Kernel { image, variant, source })
}

/// Fetches `sel4-sys` with cargo through a throwaway manifest and returns its `seL4/` folder.
fn fetch_source(workspace: &Workspace) -> Result<PathBuf> {
    let fetch_directory = workspace.sel4_directory().join("fetch");
    fs::create_dir_all(&fetch_directory)
        .with_context(|| format!("cannot create {}", fetch_directory.display()))?;
    let manifest = fetch_directory.join("Cargo.toml");
    // `[workspace]` keeps cargo from taking this for a member of the project's workspace above it.
    let manifest_text = format!(
        "# Written by `cargo xtask kernel` to fetch the seL4 kernel source; never built.\n\
         [package]\nname = \"sel4-kernel-source\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
         publish = false\n\n[lib]\npath = \"lib.rs\"\n\n\
         [dependencies]\nsel4-sys = \"={SEL4_SYS_VERSION}\"\n\n[workspace]\n"
    );
    write_if_changed(&manifest, manifest_text.as_bytes())?;
    write_if_changed(&fetch_directory.join("lib.rs"), b"")?;

    let logs = workspace.log_directory();
    step::run_logged(
        &format!("fetch sel4-sys {SEL4_SYS_VERSION} (cargo fetch)"),
        &logs.join("fetch.log"),
        cargo().arg("fetch").arg("--manifest-path").arg(&manifest),
    )?;

    let output = cargo()
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(&manifest)
        .output()
        .context("cannot run `cargo metadata`")?;
    if !output.status.success() {
        bail!("step `locate sel4-sys (cargo metadata)` failed:\n{}", String::from_utf8_lossy(&output.stderr));
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("`cargo metadata` printed no JSON")?;
    let package_manifest = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|package| package["name"] == "sel4-sys" && package["version"] == SEL4_SYS_VERSION)
        .and_then(|package| package["manifest_path"].as_str())
        .context("`cargo metadata` does not list sel4-sys")?;
    let kernel_source =
        Path::new(package_manifest).parent().context("sel4-sys manifest has no folder")?.join("seL4");
    let version_file = kernel_source.join("VERSION");
    let version = fs::read_to_string(&version_file)
        .with_context(|| format!("cannot read {}", version_file.display()))?;
    ensure!(
        version.trim() == KERNEL_VERSION,
        "{} says {:?}, expected seL4 {KERNEL_VERSION}",
        version_file.display(),
        version.trim()
    );
    Ok(kernel_source)
}

/// Hashes everything that decides the prepared source copy: the pristine source tree (paths and
/// contents), the config and the source patch.
fn source_key(pristine: &Path, autoconf: &[u8]) -> Result<String> {
    let mut hasher = Sha256::new();
    let mut field = |bytes: &[u8]| {
        // Length-prefixed, so adjacent fields cannot run into each other.
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    field(RECIPE_VERSION.as_bytes());
    let mut files = Vec::new();
    list_files(pristine, Path::new(""), &mut files)?;
    files.sort();
    for relative in &files {
        field(relative.to_string_lossy().as_bytes());
        let path = pristine.join(relative);
        field(&fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?);
    }
    field(autoconf);
    field(CIRCULAR_INCLUDES_NEW.as_bytes());
    Ok(hex(&hasher.finalize()))
}

/// Hashes everything that decides one built kernel: the source copy's key, the variant's make
/// variables and flags, and the compiler.
fn build_key(source_key: &str, variant: Variant) -> String {
    let mut hasher = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    field(source_key.as_bytes());
    for variable in make_variables(variant) {
        field(variable.as_bytes());
    }
    field(KERNEL_CFLAGS.as_bytes());
    field(&compiler_version());
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn compiler_version() -> Vec<u8> {
    Command::new("gcc").arg("--version").output().map(|output| output.stdout).unwrap_or_default()
}

/// Collects the paths of all files under `root.join(relative)`, relative to `root`.
fn list_files(root: &Path, relative: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let directory = root.join(relative);
    for entry in fs::read_dir(&directory).with_context(|| format!("cannot list {}", directory.display()))? {
        let entry = entry?;
        let path = relative.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            list_files(root, &path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

/// Replaces `source` with a copy of `pristine`, patched and with the project's config.
fn prepare_source(pristine: &Path, source: &Path, autoconf: &[u8]) -> Result<()> {
    if source.exists() {
        fs::remove_dir_all(source).with_context(|| format!("cannot remove {}", source.display()))?;
    }
    copy_tree(pristine, source)?;

    let script = source.join(CIRCULAR_INCLUDES_SCRIPT);
    let text = fs::read_to_string(&script).with_context(|| format!("cannot read {}", script.display()))?;
    ensure!(
        text.matches(CIRCULAR_INCLUDES_OLD).count() == 1,
        "{} does not contain the line-marker pattern to patch",
        script.display()
    );
    fs::write(&script, text.replace(CIRCULAR_INCLUDES_OLD, CIRCULAR_INCLUDES_NEW))
        .with_context(|| format!("cannot write {}", script.display()))?;

    let autoconf_target = source.join(AUTOCONF_IN_SOURCE);
    fs::write(&autoconf_target, autoconf)
        .with_context(|| format!("cannot write {}", autoconf_target.display()))
}

/// Copies a directory tree; `fs::copy` keeps permissions, so the tool scripts stay executable.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("cannot list {}", from.display()))? {
        let entry = entry?;
        let (source, destination) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            copy_tree(&source, &destination)?;
        } else {
            fs::copy(&source, &destination)
                .with_context(|| format!("cannot copy {} to {}", source.display(), destination.display()))?;
        }
    }
    Ok(())
}

fn make_command(source: &Path, build_directory: &Path, venv_bin: &Path, variant: Variant) -> Result<Command> {
    let mut command = Command::new("make");
    command
        .current_dir(build_directory)
        .arg("-f")
        .arg(source.join("Makefile"))
        .arg(format!("SOURCE_ROOT={}", source.display()))
        .args(make_variables(variant))
        .arg(format!("-j{}", parallel_jobs()));
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path =
        std::env::join_paths(std::iter::once(venv_bin.to_path_buf()).chain(std::env::split_paths(&path)))
            .context("PATH cannot hold the venv's bin folder")?;
    command.env("PATH", path).env("CFLAGS", KERNEL_CFLAGS);
    // The Makefile reads these from the environment; a stray one would build a kernel that the cache
    // key does not describe.
    for variable in [
        "CPPFLAGS",
        "LDFLAGS",
        "ASFLAGS",
        "TOOLPREFIX",
        "NK_CFLAGS",
        "PYTHON",
        "V",
        "DEBUG",
        "CONFIG_DOMAIN_SCHEDULE",
        "CONFIG_ROOT_CNODE_SIZE_BITS",
        "CONFIG_TIME_SLICE",
        "CONFIG_NUM_DOMAINS",
        "CONFIG_NUM_PRIORITIES",
        "CONFIG_RETYPE_FAN_OUT_LIMIT",
        "CONFIG_MAX_NUM_WORK_UNITS_PER_PREEMPTION",
        "CONFIG_MAX_NUM_BOOTINFO_DEVICE_REGIONS",
        "CONFIG_MAX_NUM_BOOTINFO_UNTYPED_CAPS",
        "CONFIG_TIMER_TICK_MS",
        "MAKEFLAGS",
    ] {
        command.env_remove(variable);
    }
    Ok(command)
}

/// Removes this variant's builds for other keys (made from a config or source that is gone from the
/// copy), and builds named before there were variants; the other variant's build stays.
fn remove_other_builds(sel4: &Path, current: &Path, variant: Variant) {
    let Ok(entries) = fs::read_dir(sel4) else { return };
    let variant_prefix = format!("build-{}-", variant.name());
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("build-") else { continue };
        let unnamed_variant = !rest.starts_with("release-") && !rest.starts_with("debug-");
        let stale = name.starts_with(&variant_prefix) || unnamed_variant;
        if stale && path != current {
            // Best effort: a stale folder left behind costs only disk.
            let _ = fs::remove_dir_all(&path);
        }
    }
}

fn parallel_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

fn write_if_changed(path: &Path, contents: &[u8]) -> Result<()> {
    if fs::read(path).is_ok_and(|existing| existing == contents) {
        return Ok(());
    }
    fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}
