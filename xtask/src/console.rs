//! What a person sees of a boot: the guest's serial output and QEMU's own messages, line by line,
//! without the lines that say nothing to them. Everything, shown or not, goes to the serial log.
//!
//! Left out of the terminal:
//! - QEMU's warnings that come with every boot: TCG lacks some of the `Haswell` CPU's features
//!   (`warning: TCG doesn't support requested feature ...`), and multiboot has no video mode to
//!   offer (`multiboot knows VBE. we don't.`);
//! - the pager's raw `[stats]` lines: `cargo xtask run` shows them as tables after the run, and
//!   `cargo xtask test` and `bench` read them from the captured serial text;
//! - a recording boot's `[trace]` chunks (`cargo xtask trace`), which become the trace file.
//!
//! While a progress bar runs (`cargo xtask experiment`, boots in parallel), the lines a boot shows
//! go above the bar through it ([`Terminal`]), so a line never lands in the middle of the bar.

use std::io::Write;
use std::sync::Mutex;

use crate::stats;

/// The progress bar the terminal's lines go through, while one runs.
static BAR: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);

/// Sends the terminal's lines through `bar` (above it) until [`release_bar`].
pub fn hold_bar(bar: &indicatif::ProgressBar) {
    *BAR.lock().unwrap() = Some(bar.clone());
}

/// Lines go straight to the terminal again.
pub fn release_bar() {
    *BAR.lock().unwrap() = None;
}

/// Runs `f` with the bar (if one is held) hidden: for steps whose child processes write to the
/// terminal themselves (a cargo build).
pub fn without_bar<R>(f: impl FnOnce() -> R) -> R {
    let bar = BAR.lock().unwrap().clone();
    match bar {
        Some(bar) => bar.suspend(f),
        None => f(),
    }
}

/// Shows one line on stderr, above the progress bar if one is held.
pub fn say(line: &str) {
    let _ = Terminal::stderr().write_all(format!("{line}\n").as_bytes());
}

/// stdout or stderr, or the held progress bar's `println` (one call per write: [`Lines`] writes a
/// whole line at a time).
pub struct Terminal {
    stderr: bool,
}

impl Terminal {
    pub fn stdout() -> Self {
        Self { stderr: false }
    }

    pub fn stderr() -> Self {
        Self { stderr: true }
    }
}

impl Write for Terminal {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        // A hidden bar (no terminal: CI) prints nothing of its own, nor its println lines.
        let bar = BAR.lock().unwrap().clone().filter(|bar| !bar.is_hidden());
        match bar {
            Some(bar) => {
                let text = String::from_utf8_lossy(bytes);
                bar.println(text.trim_matches(['\n', '\r']));
                Ok(bytes.len())
            }
            None if self.stderr => std::io::stderr().write(bytes),
            None => std::io::stdout().write(bytes),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.stderr {
            std::io::stderr().flush()
        } else {
            std::io::stdout().flush()
        }
    }
}

/// Whether a serial line is shown on the terminal: all but the `[stats]` and `[trace]` lines.
pub fn shows_serial(line: &str) -> bool {
    let line = line.trim_end_matches(['\n', '\r']);
    stats::parse_line(line).is_none() && !line.trim_start_matches('\r').starts_with(trace::CHUNK_PREFIX)
}

/// Whether a line QEMU wrote to stderr is shown on the terminal: all but the warnings every boot
/// brings.
pub fn shows_qemu_message(line: &str) -> bool {
    !(line.contains("TCG doesn't support requested feature") || line.contains("multiboot knows VBE"))
}

/// A stream cut into whole lines: each goes to the log (after `log_prefix`), and to the terminal when
/// `shows` accepts it. Bytes after the last newline wait for the rest of their line, or for
/// [`Lines::finish`].
pub struct Lines<L: Write, T: Write> {
    log: Option<L>,
    log_prefix: &'static str,
    terminal: T,
    shows: fn(&str) -> bool,
    pending: Vec<u8>,
}

impl<L: Write, T: Write> Lines<L, T> {
    pub fn new(log: Option<L>, log_prefix: &'static str, terminal: T, shows: fn(&str) -> bool) -> Self {
        Self { log, log_prefix, terminal, shows, pending: Vec::new() }
    }

    /// Takes the next bytes of the stream and passes on every line they complete.
    pub fn write(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        let Some(last_newline) = self.pending.iter().rposition(|&byte| byte == b'\n') else {
            return;
        };
        let complete: Vec<u8> = self.pending.drain(..=last_newline).collect();
        for line in complete.split_inclusive(|&byte| byte == b'\n') {
            self.pass_on(line);
        }
    }

    /// Passes on what is left of an unfinished last line, at the end of the stream.
    pub fn finish(&mut self) {
        let rest = std::mem::take(&mut self.pending);
        if !rest.is_empty() {
            self.pass_on(&rest);
        }
    }

    /// The log and the terminal, for a test to read.
    #[cfg(test)]
    fn into_parts(self) -> (Option<L>, T) {
        (self.log, self.terminal)
    }

    fn pass_on(&mut self, line: &[u8]) {
        // A failing log or terminal must not stop the capture that the verdict depends on.
        if let Some(log) = &mut self.log {
            // One write per line: the serial log is shared with QEMU's stderr, line by line.
            let _ = log.write_all(&[self.log_prefix.as_bytes(), line].concat());
        }
        if (self.shows)(&String::from_utf8_lossy(line)) {
            let _ = self.terminal.write_all(line).and_then(|()| self.terminal.flush());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&str], shows: fn(&str) -> bool) -> (String, String) {
        let mut lines = Lines::new(Some(Vec::new()), "", Vec::new(), shows);
        for chunk in chunks {
            lines.write(chunk.as_bytes());
        }
        lines.finish();
        let (log, terminal) = lines.into_parts();
        (String::from_utf8(log.unwrap()).unwrap(), String::from_utf8(terminal).unwrap())
    }

    #[test]
    fn stats_lines_are_logged_but_not_shown() {
        // The kernel ends serial lines with "\n\r", so lines after the first start with '\r'.
        let serial = "boot\n\r[hello#0] hello: ok\n\r[stats] scope=total faults=3\n\r[test] PASS\n\r";
        let (log, terminal) = run(&[serial], shows_serial);
        assert_eq!(log, serial);
        assert_eq!(terminal, "boot\n\r[hello#0] hello: ok\n\r[test] PASS\n\r");
    }

    #[test]
    fn a_line_split_across_chunks_is_judged_whole() {
        let (log, terminal) =
            run(&["[sta", "ts] scope=total faults=3\n[hel", "lo#0] ok\nno newline"], shows_serial);
        assert_eq!(log, "[stats] scope=total faults=3\n[hello#0] ok\nno newline");
        assert_eq!(terminal, "[hello#0] ok\nno newline");
    }

    #[test]
    fn qemu_boot_warnings_are_logged_but_not_shown() {
        let stderr = "qemu-system-x86_64: warning: TCG doesn't support requested feature: CPUID.01H:ECX.fma [bit 12]\n\
                      multiboot knows VBE. we don't.\n\
                      qemu-system-x86_64: -kernel missing.elf: No such file or directory\n";
        let mut lines = Lines::new(Some(Vec::new()), "[qemu stderr] ", Vec::new(), shows_qemu_message);
        lines.write(stderr.as_bytes());
        lines.finish();
        let (log, terminal) = lines.into_parts();
        let log = String::from_utf8(log.unwrap()).unwrap();
        assert_eq!(log.lines().count(), 3);
        assert!(log.lines().all(|line| line.starts_with("[qemu stderr] qemu-system-x86_64: ")
            || line == "[qemu stderr] multiboot knows VBE. we don't."));
        assert_eq!(
            String::from_utf8(terminal).unwrap(),
            "qemu-system-x86_64: -kernel missing.elf: No such file or directory\n"
        );
    }

    #[test]
    fn other_warnings_and_stats_look_alikes_are_shown() {
        assert!(shows_qemu_message("qemu-system-x86_64: warning: host doesn't support requested feature"));
        assert!(shows_serial("[hello#0] [stats] scope=total"));
        assert!(!shows_serial("\r[stats] scope=area area=heap\n"));
        assert!(!shows_serial("\r[trace] 00000000 0100 1234abcd\n"), "a recording boot's chunks");
    }
}
