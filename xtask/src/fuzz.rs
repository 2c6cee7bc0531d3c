//! `cargo xtask fuzz`: a fixed number of libFuzzer executions of each cargo-fuzz target in `fuzz/`.
//!
//! - The toolchain is the one running xtask (stable in CI): cargo-fuzz passes rustc flags that need
//!   nightly, and `RUSTC_BOOTSTRAP=1` lets a stable compiler take them. The toolchain's own directory
//!   goes first on `PATH`, so the cargo that cargo-fuzz starts is this one whatever a `rust-toolchain`
//!   file says.
//! - `-s none`: the targets are safe Rust, so AddressSanitizer buys nothing and costs several times the
//!   speed; overflow checks and debug assertions stay on (cargo-fuzz builds without `-O`).
//! - The corpora are seeded on every run and never committed: the repository's manifests for
//!   `manifest_parse`, the files of `pager/tests/malformed_elf.rs` for `elf_parse`.
//! - A fixed libFuzzer `-seed`, so a run from the same corpus (a clean clone's) draws the same random
//!   numbers. It is not the same run bit for bit: comparison tracing feeds the mutator the operands it
//!   sees, pointers among them, which ASLR moves, and the TOML parser's hash maps are randomly keyed.
//!   A crash's input is saved and named, so a failure replays exactly.
//! - cargo-fuzz is installed with `cargo install cargo-fuzz --locked` when `cargo fuzz` is missing.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::host_setup::{self, DebianTool};
use crate::step;
use crate::test;
use crate::workspace::{cargo, Workspace};

/// Executions per target of the short run (`cargo xtask test` runs this).
pub const DEFAULT_RUNS: u64 = 20_000;
/// libFuzzer's `-seed` unless `--seed` says otherwise.
pub const DEFAULT_SEED: u32 = 1;

/// libfuzzer-sys compiles libFuzzer (C++) with the `cc` crate, which runs `c++`.
const CXX: DebianTool = DebianTool { program: "c++", package: "g++" };

/// A cargo-fuzz target and the libFuzzer options it always gets (paths relative to `fuzz/`).
pub struct Target {
    pub name: &'static str,
    pub options: &'static [&'static str],
}

pub const TARGETS: [Target; 3] = [
    Target { name: "elf_parse", options: &[] },
    Target { name: "manifest_parse", options: &["-dict=dict/manifest.dict"] },
    Target { name: "fault_decode", options: &[] },
];

/// The targets' names, for the command line.
pub const TARGET_NAMES: [&str; 3] = [TARGETS[0].name, TARGETS[1].name, TARGETS[2].name];

pub struct Options {
    /// Executions per target (libFuzzer's `-runs`).
    pub runs: u64,
    pub seed: u32,
    /// Target names to run; empty means all.
    pub targets: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self { runs: DEFAULT_RUNS, seed: DEFAULT_SEED, targets: Vec::new() }
    }
}

/// Builds the targets, seeds the corpora and runs each chosen target; fails naming every target that
/// crashed (or did not run), after running all of them.
pub fn run(workspace: &Workspace, options: &Options) -> Result<()> {
    let failures: Vec<&str> = run_targets(workspace, options)?
        .iter()
        .filter(|(_, passed)| !passed)
        .map(|(name, _)| *name)
        .collect();
    if !failures.is_empty() {
        bail!("fuzz target{} {} failed", if failures.len() == 1 { "" } else { "s" }, failures.join(", "));
    }
    Ok(())
}

/// Builds the targets, seeds the corpora and runs each chosen target, saying how each went; an error
/// when none could run.
pub fn run_targets(workspace: &Workspace, options: &Options) -> Result<Vec<(&'static str, bool)>> {
    let fuzz_directory = workspace.root.join("fuzz");
    let logs = workspace.target_directory.join("fuzz");
    host_setup::ensure_debian_tools(workspace, &[CXX])?;
    ensure_cargo_fuzz(workspace)?;
    seed_corpora(workspace, &fuzz_directory, &logs)?;
    step::run_logged(
        "build the fuzz targets (cargo fuzz build -s none)",
        &logs.join("build.log"),
        cargo_fuzz(&fuzz_directory)?.args(["fuzz", "build", "-s", "none"]),
    )?;

    let mut outcomes = Vec::new();
    for target in
        TARGETS.iter().filter(|t| options.targets.is_empty() || options.targets.iter().any(|n| n == t.name))
    {
        match run_target(&fuzz_directory, &logs, target, options) {
            Ok(summary) => {
                eprintln!("fuzz {}: {summary}", target.name);
                outcomes.push((target.name, true));
            }
            Err(error) => {
                eprintln!("fuzz {}: FAILED: {error:#}", target.name);
                outcomes.push((target.name, false));
            }
        }
    }
    Ok(outcomes)
}

/// Runs one target; `Ok` carries the summary line, `Err` names the crash's input when there is one.
fn run_target(fuzz_directory: &Path, logs: &Path, target: &Target, options: &Options) -> Result<String> {
    let log = logs.join(format!("{}.log", target.name));
    let mut command = cargo_fuzz(fuzz_directory)?;
    command.args(run_arguments(target, options.runs, options.seed));
    let description = format!("fuzz {} ({} executions)", target.name, options.runs);
    let started = Instant::now();
    let success = step::run_to_log(&description, &log, &mut command)?.success();
    let elapsed = started.elapsed();
    let output = std::fs::read(&log).with_context(|| format!("cannot read {}", log.display()))?;
    let output = String::from_utf8_lossy(&output);
    if !success {
        let Some(artifact) = crash_artifact(&output) else {
            return Err(step::step_failure(&description, "cargo fuzz failed (no crash input written)", &log));
        };
        let reason = crash_reason(&output).unwrap_or("the target crashed");
        let panic = panic_message(&output).map(|panic| format!("{panic} ")).unwrap_or_default();
        return Err(step::step_failure(
            &description,
            &format!(
                "{panic}(libFuzzer: {reason}); the input is {artifact}\nreplay it from fuzz/ with: \
                 RUSTC_BOOTSTRAP=1 cargo fuzz run -s none {} {artifact}",
                target.name
            ),
            &log,
        ));
    }
    let Some(stats) = FinalStats::parse(&output) else {
        return Err(step::step_failure(&description, "libFuzzer printed no final statistics", &log));
    };
    Ok(stats.summary(elapsed))
}

/// `cargo fuzz run`'s arguments for one target.
pub fn run_arguments(target: &Target, runs: u64, seed: u32) -> Vec<String> {
    let mut arguments: Vec<String> =
        ["fuzz", "run", "-s", "none", target.name, "--"].map(str::to_owned).into();
    arguments.push(format!("-runs={runs}"));
    arguments.push(format!("-seed={seed}"));
    arguments.push("-print_final_stats=1".to_owned());
    arguments.extend(target.options.iter().map(|option| (*option).to_owned()));
    arguments
}

/// `cargo` for cargo-fuzz: in `fuzz/`, nightly flags allowed, and this toolchain first on `PATH`.
fn cargo_fuzz(fuzz_directory: &Path) -> Result<Command> {
    let mut command = cargo();
    command.current_dir(fuzz_directory).env("RUSTC_BOOTSTRAP", "1");
    // cargo-fuzz runs `cargo` from PATH; rustup's proxy would pick the toolchain again (from
    // RUSTUP_TOOLCHAIN, or else a rust-toolchain file in fuzz/ or the default).
    if let Some(directory) = std::env::var_os("CARGO").map(PathBuf::from).and_then(toolchain_directory) {
        command.env("PATH", path_with_first(&directory, std::env::var_os("PATH").as_deref())?);
    }
    Ok(command)
}

/// The directory of an absolute `cargo` path when it holds the toolchain's `rustc` too.
fn toolchain_directory(cargo: PathBuf) -> Option<PathBuf> {
    let directory = cargo.parent()?;
    (cargo.is_absolute() && directory.join("rustc").exists()).then(|| directory.to_path_buf())
}

/// `PATH` with `directory` first.
pub fn path_with_first(directory: &Path, path: Option<&OsStr>) -> Result<OsString> {
    let rest = path.map(|path| std::env::split_paths(path).collect::<Vec<_>>()).unwrap_or_default();
    std::env::join_paths(std::iter::once(directory.to_path_buf()).chain(rest))
        .context("cannot put the toolchain directory on PATH")
}

/// Installs cargo-fuzz when `cargo fuzz --version` fails.
fn ensure_cargo_fuzz(workspace: &Workspace) -> Result<()> {
    if has_cargo_fuzz() {
        return Ok(());
    }
    eprintln!("cargo-fuzz is missing: installing it with `cargo install cargo-fuzz --locked`");
    step::run_logged(
        "cargo install cargo-fuzz --locked",
        &workspace.target_directory.join("fuzz").join("cargo-install.log"),
        cargo().args(["install", "cargo-fuzz", "--locked"]).current_dir(&workspace.root),
    )?;
    if !has_cargo_fuzz() {
        bail!("`cargo install cargo-fuzz` succeeded but `cargo fuzz --version` still fails");
    }
    Ok(())
}

fn has_cargo_fuzz() -> bool {
    cargo()
        .args(["fuzz", "--version"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Copies `manifests/*.toml` into `manifest_parse`'s corpus and has the pager's ELF test write its
/// files into `elf_parse`'s (a second run overwrites the same names).
fn seed_corpora(workspace: &Workspace, fuzz_directory: &Path, logs: &Path) -> Result<()> {
    let corpus = fuzz_directory.join("corpus");
    let manifests = corpus.join("manifest_parse");
    std::fs::create_dir_all(&manifests).with_context(|| format!("cannot create {}", manifests.display()))?;
    for manifest in test::manifests(workspace)? {
        let name = manifest.file_name().context("a manifest path without a file name")?;
        std::fs::copy(&manifest, manifests.join(name))
            .with_context(|| format!("cannot copy {} into {}", manifest.display(), manifests.display()))?;
    }
    // An absolute path: the test runs in pager/.
    let elves = corpus.join("elf_parse");
    step::run_logged(
        "write the ELF seeds (cargo test -p pager --test malformed_elf)",
        &logs.join("seeds.log"),
        cargo()
            .args(["test", "-p", "pager", "--test", "malformed_elf", "--"])
            .args(["--ignored", "--exact", "write_fuzz_seeds"])
            .env("PAGER_ELF_SEEDS", &elves)
            .current_dir(&workspace.root),
    )?;
    // A renamed test would match nothing, and cargo test passes when it runs nothing.
    if !elves.join("seed-000").exists() {
        bail!("`write_fuzz_seeds` wrote no seed into {}", elves.display());
    }
    Ok(())
}

/// The input libFuzzer saved for a crash, leak, timeout or out-of-memory.
pub fn crash_artifact(output: &str) -> Option<&str> {
    output
        .lines()
        .rev()
        .find_map(|line| line.split_once("Test unit written to ").map(|(_, path)| path.trim()))
}

/// libFuzzer's one-line account of what went wrong (`deadly signal`, `timeout after 1200 seconds`…).
pub fn crash_reason(output: &str) -> Option<&str> {
    output.lines().find_map(|line| line.split_once("ERROR: libFuzzer: ").map(|(_, reason)| reason.trim()))
}

/// A Rust panic's place and message (`panicked at src/x.rs:1:2: message`), from the first panic.
pub fn panic_message(output: &str) -> Option<String> {
    let mut lines = output.lines().skip_while(|line| !line.contains(" panicked at "));
    let place = lines.next()?.split_once(" panicked at ")?.1.trim().trim_end_matches(':');
    let message: Vec<&str> = lines
        .take_while(|line| !line.starts_with("stack backtrace:") && !line.starts_with("note: "))
        .take_while(|line| !line.starts_with("==") && !line.is_empty())
        .take(5)
        .map(str::trim)
        .collect();
    Some(format!("panicked at {place}: {}", message.join(" ")))
}

/// What libFuzzer's `-print_final_stats=1` reports.
#[derive(Debug, PartialEq, Eq)]
pub struct FinalStats {
    pub executions: u64,
    pub new_units: u64,
    pub peak_rss_mb: u64,
}

impl FinalStats {
    /// Reads the `stat::name: value` lines; `None` without the executions count.
    pub fn parse(output: &str) -> Option<Self> {
        let value = |name: &str| {
            output.lines().rev().find_map(|line| {
                let (key, value) = line.trim().strip_prefix("stat::")?.split_once(':')?;
                (key == name).then(|| value.trim().parse::<u64>().ok())?
            })
        };
        Some(Self {
            executions: value("number_of_executed_units")?,
            new_units: value("new_units_added").unwrap_or(0),
            peak_rss_mb: value("peak_rss_mb").unwrap_or(0),
        })
    }

    /// `20000 executions in 3.1 s (6451/s), 57 new inputs, peak RSS 41 MB, no crash`; `elapsed` is
    /// the wall time (libFuzzer's own rate is in whole seconds, zero for a run under one).
    pub fn summary(&self, elapsed: Duration) -> String {
        let per_second = self.executions as f64 / elapsed.as_secs_f64().max(0.001);
        format!(
            "{} executions in {:.1} s ({per_second:.0}/s), {} new input{}, peak RSS {} MB, no crash",
            self.executions,
            elapsed.as_secs_f64(),
            self.new_units,
            if self.new_units == 1 { "" } else { "s" },
            self.peak_rss_mb
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_arguments_pass_runs_seed_and_the_targets_options_to_libfuzzer() {
        let manifest = &TARGETS[1];
        assert_eq!(
            run_arguments(manifest, 20_000, 7),
            [
                "fuzz",
                "run",
                "-s",
                "none",
                "manifest_parse",
                "--",
                "-runs=20000",
                "-seed=7",
                "-print_final_stats=1",
                "-dict=dict/manifest.dict"
            ]
        );
        assert_eq!(
            run_arguments(&TARGETS[0], 1, 1)[4..],
            ["elf_parse", "--", "-runs=1", "-seed=1", "-print_final_stats=1"]
        );
    }

    #[test]
    fn target_names_match_the_fuzz_crate() {
        let manifest =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/Cargo.toml"))
                .expect("fuzz/Cargo.toml");
        for name in TARGET_NAMES {
            assert!(manifest.contains(&format!("name = \"{name}\"")), "{name} is not a bin of fuzz/");
        }
        for target in &TARGETS {
            for option in target.options {
                if let Some(dictionary) = option.strip_prefix("-dict=") {
                    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz").join(dictionary);
                    assert!(path.is_file(), "{} is missing", path.display());
                }
            }
        }
    }

    const DONE: &str = "\
#19999\tREDUCE cov: 612 ft: 2104 corp: 311/23Kb lim: 4096 exec/s: 6666 rss: 44Mb L: 40/512 MS: 1 EraseBytes-
#20000\tDONE   cov: 612 ft: 2104 corp: 311/23Kb lim: 4096 exec/s: 6666 rss: 44Mb
Done 20000 runs in 3 second(s)
stat::number_of_executed_units: 20000
stat::average_exec_per_sec:     6666
stat::new_units_added:          57
stat::slowest_unit_time_sec:    0
stat::peak_rss_mb:              44
";

    #[test]
    fn parses_the_final_stats() {
        let stats = FinalStats::parse(DONE).unwrap();
        assert_eq!(stats, FinalStats { executions: 20_000, new_units: 57, peak_rss_mb: 44 });
        assert_eq!(
            stats.summary(Duration::from_millis(3140)),
            "20000 executions in 3.1 s (6369/s), 57 new inputs, peak RSS 44 MB, no crash"
        );
        assert_eq!(FinalStats::parse("Done 20000 runs in 3 second(s)\nstat::peak_rss_mb: 44\n"), None);
        assert_eq!(FinalStats::parse("stat::number_of_executed_units: lots\n"), None);
    }

    #[test]
    fn finds_the_crash_input_and_reason() {
        let output = "\
INFO: Seed: 1
thread '<unnamed>' (4242) panicked at fuzz_targets/elf_parse.rs:20:9:
accepted an empty segment
stack backtrace:
   0: __rustc::rust_begin_unwind
==4242== ERROR: libFuzzer: deadly signal
MS: 2 ChangeBit-CopyPart-; base unit: 0123
artifact_prefix='/x/fuzz/artifacts/elf_parse/'; Test unit written to /x/fuzz/artifacts/elf_parse/crash-99ab
Base64: f0VMRg==
stat::number_of_executed_units: 512
";
        assert_eq!(crash_artifact(output), Some("/x/fuzz/artifacts/elf_parse/crash-99ab"));
        assert_eq!(crash_reason(output), Some("deadly signal"));
        assert_eq!(
            panic_message(output).as_deref(),
            Some("panicked at fuzz_targets/elf_parse.rs:20:9: accepted an empty segment")
        );
        assert_eq!(panic_message(DONE), None);
        assert_eq!(crash_artifact(DONE), None);
        assert_eq!(crash_reason(DONE), None);
    }

    #[test]
    fn puts_the_toolchain_first_on_path() {
        let path = path_with_first(Path::new("/t/bin"), Some(OsStr::new("/usr/bin:/bin"))).unwrap();
        assert_eq!(path, "/t/bin:/usr/bin:/bin");
        assert_eq!(path_with_first(Path::new("/t/bin"), None).unwrap(), "/t/bin");
        assert_eq!(toolchain_directory(PathBuf::from("cargo")), None);
    }
}
