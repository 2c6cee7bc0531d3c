//! Slow steps: a spinner while one runs, its output in a log file, the log's tail when it fails.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

/// How many lines of a failed step's log to show.
const TAIL_LINES: usize = 30;

/// A spinner on a terminal, a plain "started" line elsewhere (CI logs have no use for animation).
pub struct Progress {
    description: String,
    started: Instant,
    spinner: Option<ProgressBar>,
}

impl Progress {
    pub fn start(description: &str) -> Self {
        let spinner = if std::io::stderr().is_terminal() {
            let spinner = ProgressBar::new_spinner();
            spinner.set_style(
                ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                    .expect("the spinner template is valid"),
            );
            spinner.set_message(description.to_owned());
            spinner.enable_steady_tick(Duration::from_millis(100));
            Some(spinner)
        } else {
            eprintln!("... {description}");
            None
        };
        Self { description: description.to_owned(), started: Instant::now(), spinner }
    }

    pub fn finish(self) {
        if let Some(spinner) = &self.spinner {
            spinner.finish_and_clear();
        }
        eprintln!("    {} ({:.1} s)", self.description, self.started.elapsed().as_secs_f64());
    }

    pub fn abandon(self) {
        if let Some(spinner) = &self.spinner {
            spinner.finish_and_clear();
        }
    }
}

/// Runs `command` without stdin, its stdout and stderr going to `log`, under a spinner.
/// On failure the error names the step and carries the log's last lines.
pub fn run_logged(description: &str, log: &Path, command: &mut Command) -> Result<()> {
    let failure = match run_to_log(description, log, command)? {
        status if status.success() => return Ok(()),
        status => format!("exited with {status}"),
    };
    Err(step_failure(description, &failure, log))
}

/// Runs `command` without stdin, its stdout and stderr going to `log` (headed by the command line,
/// so a failure can be reproduced by hand), under a spinner, and returns how it exited. An error
/// only when it could not be started.
pub fn run_to_log(description: &str, log: &Path, command: &mut Command) -> Result<ExitStatus> {
    if let Some(directory) = log.parent() {
        std::fs::create_dir_all(directory)
            .with_context(|| format!("cannot create {}", directory.display()))?;
    }
    let mut log_file = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    writeln!(log_file, "$ {command:?}")?;
    let stderr = log_file.try_clone()?;
    command.stdin(Stdio::null()).stdout(log_file).stderr(stderr);

    let progress = Progress::start(description);
    match command.status() {
        Ok(status) => {
            if status.success() {
                progress.finish();
            } else {
                progress.abandon();
            }
            Ok(status)
        }
        Err(error) => {
            progress.abandon();
            let failure = format!("could not start {:?}: {error}", command.get_program());
            Err(step_failure(description, &failure, log))
        }
    }
}

/// Runs an in-process step under a spinner; its error names the step.
pub fn run_in_process<T>(description: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
    let progress = Progress::start(description);
    match work() {
        Ok(value) => {
            progress.finish();
            Ok(value)
        }
        Err(error) => {
            progress.abandon();
            Err(error.context(format!("step `{description}` failed")))
        }
    }
}

/// The error for a failed logged step: which step, how it failed, and the end of its log.
pub fn step_failure(description: &str, failure: &str, log: &Path) -> anyhow::Error {
    anyhow!(
        "step `{description}` failed: {failure}\n--- last lines of {} ---\n{}--- end of log ---",
        log.display(),
        tail(log, TAIL_LINES)
    )
}

fn tail(log: &Path, lines: usize) -> String {
    let Ok(bytes) = std::fs::read(log) else {
        return String::from("(log unreadable)\n");
    };
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..].iter().map(|line| format!("{line}\n")).collect()
}
