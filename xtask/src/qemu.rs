//! Booting a kernel and root task under QEMU and judging the run by its serial output and exit status.
//!
//! The protocol with the guest: an on-target test prints exactly one marker line, starting with
//! [`PASS_MARKER`] or [`FAIL_MARKER`], then writes 0x10 to the isa-debug-exit port, which ends QEMU
//! with status `(0x10 << 1) | 1 = 33` ([`SUCCESS_EXIT_STATUS`]). Anything else fails: a FAIL marker,
//! no marker or several, another status, or no exit before the timeout.

use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::{console, gdb};

/// The start of the line a passing on-target test prints.
pub const PASS_MARKER: &str = "[test] PASS";
/// The start of the line a failing on-target test prints.
pub const FAIL_MARKER: &str = "[test] FAIL";
/// QEMU's exit status after the guest writes 0x10 to isa-debug-exit: `(0x10 << 1) | 1`.
pub const SUCCESS_EXIT_STATUS: i32 = 33;
/// isa-debug-exit's I/O port.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Heads the lines of QEMU's own stderr in the serial log, which holds them among the guest's.
const QEMU_LOG_PREFIX: &str = "[qemu stderr] ";

/// How long QEMU may keep running after the marker before the runner stops waiting for its exit.
const EXIT_GRACE: Duration = Duration::from_secs(10);

/// What to boot.
pub struct BootImage {
    /// Names the serial log: `target/qemu/<name>.log`.
    pub name: String,
    /// ELF32 kernel (multiboot).
    pub kernel: PathBuf,
    /// ELF64 root task, passed as the multiboot module.
    pub root_task: PathBuf,
    /// Bytes of guest memory (`-m`, in whole MiB): the manifest's `memory`, else [`DEFAULT_MEMORY`].
    pub memory: u64,
    /// The kernel build `kernel` is: a debug kernel's console goes to COM2 (see [`kernel_arguments`]).
    pub variant: crate::kernel::Variant,
}

/// Guest memory for images that name none (the self-test, the smoke test).
pub const DEFAULT_MEMORY: u64 = manifest::DEFAULT_MEMORY;

pub struct BootOptions {
    pub timeout: Duration,
    /// `-icount shift=0,sleep=off`: one guest instruction per clock tick, deterministic serial output.
    pub icount: bool,
    /// QEMU's gdb stub ([`gdb::STUB_ARGUMENTS`]): the guest waits for gdb to continue it.
    pub gdb: bool,
    pub log_directory: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    Pass,
    Fail,
}

/// Why the runner killed QEMU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kill {
    Timeout,
    NoExitAfterMarker,
}

pub struct BootOutcome {
    /// Everything the guest wrote to the serial port.
    pub serial: String,
    /// The first marker line's kind, if any.
    pub marker: Option<Marker>,
    /// How many marker lines there were (a test prints exactly one).
    pub marker_count: usize,
    /// QEMU's exit status; `None` when it was killed or ended by a signal.
    pub exit_status: Option<i32>,
    pub killed: Option<Kill>,
    /// What QEMU itself wrote to stderr.
    pub qemu_stderr: String,
    /// The serial log file.
    pub log: PathBuf,
    pub duration: Duration,
}

impl BootOutcome {
    /// `Ok` for a clean pass; otherwise why not, with anything QEMU itself complained about.
    pub fn verdict(&self) -> Result<(), String> {
        self.judge().map_err(|reason| {
            // QEMU warns on every boot (TCG lacks some Haswell features, multiboot has no VBE); what
            // else it says matters only when QEMU itself ended the run.
            let complaint: Vec<&str> = self
                .qemu_stderr
                .lines()
                .filter(|line| !line.contains("warning:") && !line.contains("multiboot knows VBE"))
                .collect();
            let qemu_gave_up = self.killed.is_none()
                && self.exit_status != Some(SUCCESS_EXIT_STATUS)
                && !complaint.is_empty();
            if qemu_gave_up {
                format!("{reason}; QEMU said:\n{}", complaint.join("\n"))
            } else {
                reason
            }
        })
    }

    fn judge(&self) -> Result<(), String> {
        if let Some(kill) = self.killed {
            let after = match self.marker {
                Some(Marker::Fail) => " (after a FAIL marker)",
                Some(Marker::Pass) => " (after a PASS marker)",
                None => " (no marker seen)",
            };
            return Err(match kill {
                Kill::Timeout => format!("timed out after {:.0} s{after}", self.duration.as_secs_f64()),
                Kill::NoExitAfterMarker => {
                    format!("QEMU did not exit within {} s of the marker{after}", EXIT_GRACE.as_secs())
                }
            });
        }
        match (self.marker, self.marker_count) {
            (Some(Marker::Fail), _) => return Err(format!("the guest printed `{FAIL_MARKER}`")),
            (None, _) => return Err(format!("no `{PASS_MARKER}` line on serial")),
            (Some(Marker::Pass), count) if count > 1 => {
                return Err(format!("{count} marker lines on serial, expected exactly one"))
            }
            (Some(Marker::Pass), _) => {}
        }
        match self.exit_status {
            Some(SUCCESS_EXIT_STATUS) => Ok(()),
            Some(status) => Err(format!(
                "QEMU exited with status {status}, expected {SUCCESS_EXIT_STATUS} (isa-debug-exit 0x10)"
            )),
            None => Err("QEMU was ended by a signal".to_owned()),
        }
    }
}

/// Finds the marker lines in serial text: the first one's kind and how many there are.
/// The kernel's serial driver ends lines with "\n\r", so a line may start with a carriage return.
pub fn find_markers(serial: &str) -> (Option<Marker>, usize) {
    let markers: Vec<Marker> = serial
        .lines()
        .map(|line| line.trim_start_matches('\r'))
        .filter_map(|line| {
            if line.starts_with(PASS_MARKER) {
                Some(Marker::Pass)
            } else if line.starts_with(FAIL_MARKER) {
                Some(Marker::Fail)
            } else {
                None
            }
        })
        .collect();
    (markers.first().copied(), markers.len())
}

/// The QEMU program.
pub const PROGRAM: &str = "qemu-system-x86_64";

/// The arguments `-icount` mode adds: one guest instruction per clock tick, deterministic serial.
pub const ICOUNT_ARGUMENTS: [&str; 2] = ["-icount", "shift=0,sleep=off"];

/// QEMU's arguments for a kernel and root task (given as the strings to pass) and `memory` bytes of
/// guest memory (a whole number of MiB), `-icount` excluded. `cargo xtask image` writes the same list
/// into `run.sh`.
pub fn arguments(kernel: &str, root_task: &str, memory: u64) -> Vec<String> {
    let memory = format!("{}M", memory >> 20);
    let mut arguments: Vec<String> = ["-cpu", "Haswell", "-m", memory.as_str()]
        .into_iter()
        // No display, no monitor: serial alone on stdout, and nothing reads stdin (CI has none).
        .chain(["-display", "none", "-monitor", "none", "-serial", "stdio"])
        .chain(["-no-reboot"])
        .map(str::to_owned)
        .collect();
    arguments.extend(["-kernel".to_owned(), kernel.to_owned(), "-initrd".to_owned(), root_task.to_owned()]);
    arguments
        .extend(["-device".to_owned(), format!("isa-debug-exit,iobase={DEBUG_EXIT_PORT:#x},iosize=0x04")]);
    arguments
}

/// The debug kernel's console port: COM2, so that COM1, whose output is judged, has one writer,
/// the root task.
pub const DEBUG_CONSOLE_PORT: u16 = 0x2f8;

/// What a kernel variant adds to the command line, `com2` naming where COM2's output goes. The
/// debug kernel prints its own messages and every client's `DebugPutChar` to its console port,
/// COM1 unless the boot command line names another (`console_port` and `debug_port`, parsed in
/// seL4 5.0's `src/arch/x86/kernel/cmdline.c`): it gets COM2, a file. The release kernel writes
/// nothing to serial.
pub fn kernel_arguments(variant: crate::kernel::Variant, com2: &str) -> Vec<String> {
    match variant {
        crate::kernel::Variant::Release => Vec::new(),
        crate::kernel::Variant::Debug => vec![
            "-append".to_owned(),
            format!("console_port={DEBUG_CONSOLE_PORT:#x} debug_port={DEBUG_CONSOLE_PORT:#x}"),
            "-serial".to_owned(),
            format!("file:{com2}"),
        ],
    }
}

/// Where a debug kernel's console (COM2) goes for an image: beside its serial log.
pub fn com2_log(image: &BootImage, options: &BootOptions) -> PathBuf {
    options.log_directory.join(format!("{}.com2.log", image.name))
}

/// The QEMU command line for an image.
pub fn command(image: &BootImage, options: &BootOptions) -> Command {
    let mut command = Command::new(PROGRAM);
    command.args(arguments(
        &image.kernel.to_string_lossy(),
        &image.root_task.to_string_lossy(),
        image.memory,
    ));
    command.args(kernel_arguments(image.variant, &com2_log(image, options).to_string_lossy()));
    if options.icount {
        command.args(ICOUNT_ARGUMENTS);
    }
    if options.gdb {
        command.args(gdb::STUB_ARGUMENTS);
    }
    command
}

/// Boots the image, streaming serial and QEMU's stderr to the terminal (less the lines [`console`]
/// leaves out) and all of both to `<log_directory>/<name>.log`, and waits for QEMU to exit, killing
/// it on timeout. Errors only when QEMU cannot be run at all (`host_setup::ensure_qemu` installs it).
pub fn boot(image: &BootImage, options: &BootOptions) -> Result<BootOutcome> {
    std::fs::create_dir_all(&options.log_directory)
        .with_context(|| format!("cannot create {}", options.log_directory.display()))?;
    let log = options.log_directory.join(format!("{}.log", image.name));
    let log_file = File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;

    let mut command = command(image, options);
    console::say(&format!("... boot {}: {command:?}", image.name));
    if image.variant == crate::kernel::Variant::Debug {
        console::say(&format!(
            "note: {} boots the debug kernel: any client can halt the machine or write raw serial (to COM2, {})",
            image.name,
            com2_log(image, options).display()
        ));
    }
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start qemu-system-x86_64")?;

    let serial = Arc::new(Mutex::new(Vec::new()));
    let stdout = child.stdout.take().context("QEMU has no stdout pipe")?;
    let stderr = child.stderr.take().context("QEMU has no stderr pipe")?;
    // The terminal gets the lines a person reads (`console`); the log gets every line of both.
    let stderr_log = log_file.try_clone().with_context(|| format!("cannot reopen {}", log.display()))?;
    let serial_lines =
        console::Lines::new(Some(log_file), "", console::Terminal::stdout(), console::shows_serial);
    let serial_reader = stream(stdout, serial_lines, Arc::clone(&serial));
    let qemu_stderr = Arc::new(Mutex::new(Vec::new()));
    let stderr_lines = console::Lines::new(
        Some(stderr_log),
        QEMU_LOG_PREFIX,
        console::Terminal::stderr(),
        console::shows_qemu_message,
    );
    let stderr_reader = stream(stderr, stderr_lines, Arc::clone(&qemu_stderr));

    let (exit_status, killed) = wait(&mut child, options.timeout, &serial)?;
    // The pipes close when QEMU is gone, so the readers finish.
    let _ = serial_reader.join();
    let _ = stderr_reader.join();

    let serial = String::from_utf8_lossy(&serial.lock().expect("reader never panics")).into_owned();
    let qemu_stderr = String::from_utf8_lossy(&qemu_stderr.lock().expect("reader never panics")).into_owned();
    let (marker, marker_count) = find_markers(&serial);
    Ok(BootOutcome {
        serial,
        marker,
        marker_count,
        exit_status,
        killed,
        qemu_stderr,
        log,
        duration: started.elapsed(),
    })
}

/// Waits for QEMU to exit, for at most `timeout` (`Duration::MAX`: no limit), and at most
/// [`EXIT_GRACE`] after a marker line.
fn wait(
    child: &mut Child,
    timeout: Duration,
    serial: &Mutex<Vec<u8>>,
) -> Result<(Option<i32>, Option<Kill>)> {
    let deadline = Instant::now().checked_add(timeout);
    let mut marker_seen_at: Option<Instant> = None;
    loop {
        if let Some(status) = child.try_wait().context("cannot wait for QEMU")? {
            return Ok((status.code(), None));
        }
        let now = Instant::now();
        if marker_seen_at.is_none() {
            let text = String::from_utf8_lossy(&serial.lock().expect("reader never panics")).into_owned();
            if find_markers(&text).0.is_some() {
                marker_seen_at = Some(now);
            }
        }
        let kill = if deadline.is_some_and(|deadline| now >= deadline) {
            Some(Kill::Timeout)
        } else if marker_seen_at.is_some_and(|seen| now.duration_since(seen) >= EXIT_GRACE) {
            Some(Kill::NoExitAfterMarker)
        } else {
            None
        };
        if let Some(kill) = kill {
            // Already exited between the two checks is fine; anything else we report.
            let _ = child.kill();
            child.wait().context("cannot wait for the killed QEMU")?;
            return Ok((None, Some(kill)));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Copies a pipe to a shared buffer as it arrives, and line by line to the terminal and the log.
fn stream<T: Write + Send + 'static>(
    mut pipe: impl Read + Send + 'static,
    mut lines: console::Lines<File, T>,
    buffer: Arc<Mutex<Vec<u8>>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        loop {
            let count = match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(count) => count,
            };
            let bytes = &chunk[..count];
            buffer.lock().expect("no holder panics").extend_from_slice(bytes);
            lines.write(bytes);
        }
        lines.finish();
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(serial: &str, exit_status: Option<i32>, killed: Option<Kill>) -> BootOutcome {
        let (marker, marker_count) = find_markers(serial);
        BootOutcome {
            serial: serial.to_owned(),
            marker,
            marker_count,
            exit_status,
            killed,
            qemu_stderr: String::new(),
            log: PathBuf::from("test.log"),
            duration: Duration::from_secs(1),
        }
    }

    #[test]
    fn memory_goes_to_dash_m_in_mib() {
        let arguments = arguments("k", "r", 128 << 20);
        let at = arguments.iter().position(|a| a == "-m").unwrap();
        assert_eq!(arguments[at + 1], "128M");
        assert_eq!(super::arguments("k", "r", DEFAULT_MEMORY)[at + 1], "512M");
    }

    #[test]
    fn pass_marker_and_status_33_pass() {
        assert!(outcome("boot\n\r[test] PASS self-test\n\r", Some(33), None).verdict().is_ok());
    }

    #[test]
    fn fail_marker_fails_even_with_status_33() {
        assert!(outcome("[test] FAIL frame leak\n", Some(33), None).verdict().is_err());
    }

    #[test]
    fn marker_must_start_the_line() {
        assert_eq!(find_markers("note: [test] PASS\n"), (None, 0));
    }

    #[test]
    fn two_markers_fail() {
        assert!(outcome("[test] PASS\n[test] PASS\n", Some(33), None).verdict().is_err());
    }

    #[test]
    fn other_status_or_timeout_fails() {
        assert!(outcome("[test] PASS\n", Some(1), None).verdict().is_err());
        assert!(outcome("[test] PASS\n", None, Some(Kill::NoExitAfterMarker)).verdict().is_err());
        assert!(outcome("", None, Some(Kill::Timeout)).verdict().is_err());
    }
}
