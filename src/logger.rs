//! A `log` backend: one line per event on stderr, with UTC time and level.

use std::io::Write;

struct StderrLogger {
    level: log::LevelFilter,
}

impl log::Log for StderrLogger {
    fn enabled(&self, meta: &log::Metadata) -> bool {
        meta.level() <= self.level
            && (meta.target().starts_with("hearth") || meta.level() <= log::Level::Warn)
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!(
            "{} {:<5} {}\n",
            crate::clock::format_utc(crate::clock::now_ms()),
            record.level(),
            record.args()
        );
        // One write per line so lines from threads do not interleave; a
        // closed stderr must not take the server down.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the logger once; later calls (tests starting many servers) only
/// keep the first.
pub fn init(level: log::LevelFilter) {
    if log::set_boxed_logger(Box::new(StderrLogger { level })).is_ok() {
        log::set_max_level(level);
    }
}
