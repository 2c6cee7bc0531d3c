//! `cargo xtask run --gdb`: QEMU with its gdb stub, and the gdb command that loads every program's
//! symbols.
//!
//! `-s -S` makes QEMU serve gdb on TCP port [`STUB_PORT`] and hold the CPU at reset until gdb says
//! `continue`. The command loads the kernel's symbols from its ELF64 `kernel.elf` (the build's
//! `objcopy` turns it into the ELF32 `kernel32.elf` that QEMU boots), then the root task's and each
//! app's. All are static executables linked at fixed addresses, so `add-symbol-file` without an
//! address takes each at its link address. The root task and the apps share addresses (each has its
//! own address space), so gdb names an address after the first file that covers it.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};

/// QEMU's arguments: a gdb server on [`STUB_PORT`] (`-s`), the CPU halted until gdb continues (`-S`).
pub const STUB_ARGUMENTS: [&str; 2] = ["-s", "-S"];
/// The TCP port `-s` opens.
pub const STUB_PORT: u16 = 1234;
/// The program the printed command runs.
const PROGRAM: &str = "gdb";

/// The ELFs whose symbols gdb loads.
pub struct Symbols {
    /// The kernel's ELF64.
    pub kernel: PathBuf,
    pub root_task: PathBuf,
    /// One per app, each once.
    pub apps: Vec<PathBuf>,
}

impl Symbols {
    /// The symbols for a boot of `kernel_image` (the ELF32 QEMU boots, next to the ELF64 it was made
    /// from), `root_task` and `apps`, as absolute paths; an error names a file that is missing.
    pub fn new(kernel_image: &Path, root_task: &Path, apps: &[PathBuf]) -> Result<Self> {
        let kernel = absolute(&kernel_image.with_file_name("kernel.elf"))?;
        let root_task = absolute(root_task)?;
        let mut unique: Vec<PathBuf> = Vec::new();
        for app in apps {
            let app = absolute(app)?;
            if !unique.contains(&app) {
                unique.push(app);
            }
        }
        Ok(Self { kernel, root_task, apps: unique })
    }

    /// gdb's commands, in order: load the symbols, connect to the stub.
    pub fn commands(&self) -> Vec<String> {
        let mut commands = vec![
            // add-symbol-file asks before loading; nothing here needs asking.
            "set confirm off".to_owned(),
            format!("file {}", gdb_quote(&self.kernel)),
            format!("add-symbol-file {}", gdb_quote(&self.root_task)),
        ];
        commands.extend(self.apps.iter().map(|app| format!("add-symbol-file {}", gdb_quote(app))));
        commands.push(format!("target remote localhost:{STUB_PORT}"));
        commands
    }

    /// The shell command line that starts gdb with [`Symbols::commands`], one `-ex` a line.
    pub fn command_line(&self) -> Result<String> {
        let mut line = format!("{PROGRAM} -q");
        for command in self.commands() {
            let quoted = shlex::try_quote(&command).context("a path holds a NUL byte")?;
            line.push_str(&format!(" \\\n    -ex {quoted}"));
        }
        Ok(line)
    }
}

/// The file's absolute path without `..`, so the printed command works from any directory.
fn absolute(file: &Path) -> Result<PathBuf> {
    ensure!(file.exists(), "no symbols for gdb: {} does not exist", file.display());
    file.canonicalize().with_context(|| format!("cannot resolve {}", file.display()))
}

/// A path as one argument of a gdb command: double-quoted when it holds a space or a quote.
fn gdb_quote(path: &Path) -> String {
    let text = path.to_string_lossy();
    if text.chars().any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\')) {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        text.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn symbols(apps: &[&str]) -> Symbols {
        Symbols {
            kernel: PathBuf::from("/t/sel4/build-1/kernel.elf"),
            root_task: PathBuf::from("/t/x86_64-unknown-none/release/root-task"),
            apps: apps.iter().map(PathBuf::from).collect(),
        }
    }

    #[test]
    fn loads_kernel_root_task_and_apps_then_connects() {
        let commands = symbols(&["/t/release/hello", "/t/apps/c/c-hello.elf"]).commands();
        assert_eq!(
            commands,
            [
                "set confirm off",
                "file /t/sel4/build-1/kernel.elf",
                "add-symbol-file /t/x86_64-unknown-none/release/root-task",
                "add-symbol-file /t/release/hello",
                "add-symbol-file /t/apps/c/c-hello.elf",
                "target remote localhost:1234",
            ]
        );
    }

    #[test]
    fn the_command_line_is_one_shell_command_with_an_argument_per_command() {
        let symbols = symbols(&["/t/my apps/it's.elf"]);
        let line = symbols.command_line().unwrap();
        assert!(line.starts_with("gdb -q \\\n    -ex "), "{line}");
        // The shell would give gdb back exactly the commands.
        let words = shlex::split(&line.replace("\\\n", " ")).unwrap();
        let mut expected = vec!["gdb".to_owned(), "-q".to_owned()];
        for command in symbols.commands() {
            expected.extend(["-ex".to_owned(), command]);
        }
        assert_eq!(words, expected);
        assert!(words.contains(&"add-symbol-file \"/t/my apps/it's.elf\"".to_owned()), "{words:?}");
    }

    #[test]
    fn missing_files_are_named_and_apps_listed_once() {
        let directory = std::env::temp_dir().join(format!("xtask-gdb-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let image = directory.join("kernel32.elf");
        let root_task = directory.join("root-task");
        let app = directory.join("hello");
        for file in [&root_task, &app] {
            std::fs::write(file, b"").unwrap();
        }
        let error = Symbols::new(&image, &root_task, std::slice::from_ref(&app)).err().unwrap().to_string();
        assert!(error.contains("kernel.elf does not exist"), "{error}");
        std::fs::write(directory.join("kernel.elf"), b"").unwrap();
        let symbols = Symbols::new(&image, &root_task, &[app.clone(), app.clone()]).unwrap();
        assert_eq!(symbols.kernel, directory.join("kernel.elf").canonicalize().unwrap());
        assert_eq!(symbols.apps, [app.canonicalize().unwrap()]);
        // `..` resolved: the same app named two ways is loaded once.
        let roundabout = directory.join("..").join(directory.file_name().unwrap()).join("hello");
        assert_eq!(Symbols::new(&image, &root_task, &[app, roundabout]).unwrap().apps.len(), 1);
        std::fs::remove_dir_all(&directory).unwrap();
    }
}
