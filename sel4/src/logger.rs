//! A `log` backend over the console of [`crate::debug`] (the root task's serial port, or `DebugPutChar`).

use core::fmt::Write as _;

use crate::debug::DebugWriter;

/// Writes each record as `[LEVEL target] message`.
#[derive(Debug)]
pub struct DebugLogger;

static LOGGER: DebugLogger = DebugLogger;

impl log::Log for DebugLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let _ = writeln!(DebugWriter, "[{} {}] {}", record.level(), record.target(), record.args());
        }
    }

    fn flush(&self) {}
}

/// Installs the logger with `level` as the maximum level. Fails if a logger is already set.
pub fn init(level: log::LevelFilter) -> Result<(), log::SetLoggerError> {
    log::set_logger(&LOGGER)?;
    log::set_max_level(level);
    Ok(())
}
