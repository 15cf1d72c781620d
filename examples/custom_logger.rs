//! The seed's `NewLogger`: a custom log backend that appends logfmt lines to a file.
//!
//! ```text
//! cargo run -p examples --example custom_logger -- /tmp/app.log
//! cargo run -p examples --example custom_logger -- /dev/full    # a full disk
//! ```
//!
//! `log` formats the record on the caller's thread and queues the line; a background thread
//! (Vigil's `QueuedWriter`) appends it to the file, so a slow disk never blocks the caller.
//! Lines that do not fit in the queue, or that the disk refuses (a full disk), are counted,
//! and the counts are printed at the end; the application carries on either way.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use vigil::config::Config;
use vigil::{Level, LogBackend, Logger, QueuedWriter, Record, Value, Vigil, fields};

/// Appends one logfmt line per record to a file.
struct FileLogger {
    writer: QueuedWriter,
}

impl FileLogger {
    fn open(path: &PathBuf) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(FileLogger {
            writer: QueuedWriter::spawn("file", file, 4096)?,
        })
    }
}

/// Writes `s` quoted when needed, with newlines and control characters escaped.
fn logfmt_value(out: &mut String, s: &str) {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '=' && c != '\\')
    {
        out.push_str(s);
    } else {
        let _ = write!(out, "{s:?}");
    }
}

impl LogBackend for FileLogger {
    fn log(&self, record: &Record<'_>) {
        let mut line = String::with_capacity(128);
        let millis = record
            .timestamp
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let _ = write!(line, "ts={millis} level={} service=", record.level);
        logfmt_value(&mut line, &record.resource.service);
        line.push_str(" msg=");
        logfmt_value(&mut line, record.message);
        record.for_each_field(|name, value| {
            line.push(' ');
            line.push_str(name);
            line.push('=');
            match value {
                Value::Str(s) => logfmt_value(&mut line, s),
                other => {
                    let _ = write!(line, "{other}");
                }
            }
        });
        line.push('\n');
        let mut buf = self.writer.buffer();
        buf.extend_from_slice(line.as_bytes());
        self.writer.send(buf);
    }

    fn flush(&self) {
        self.writer.flush();
    }

    fn min_level(&self) -> Level {
        Level::Info
    }
}

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .map_or_else(|| std::env::temp_dir().join("vigil-custom-logger.log"), PathBuf::from);
    let file_logger = Arc::new(FileLogger::open(&path)?);

    // No console and no Prometheus here: just the custom backend.
    let mut config = Config::load()?;
    config.logger_backends.clear();
    config.metrics_backends.clear();
    config.log.level = Level::Debug;
    let guard = Vigil::builder()
        .config(config)
        .log_backend(Arc::clone(&file_logger))
        .install()?;

    Logger::info("User logged in", fields!(user_id = 42));
    Logger::debug("below the file logger's own minimum level", fields!());
    {
        let span = tracing::info_span!("request", request_id = "req-1");
        let _entered = span.enter();
        Logger::error(
            "Failed to process payment",
            fields!(error = "card declined\nretry later"),
        );
    }
    guard.shutdown(Duration::from_secs(5));

    let stats = file_logger.writer.stats();
    println!(
        "{} lines written, {} dropped (queue full), {} lost to write errors (a full disk, say)",
        stats.written(),
        stats.dropped(),
        stats.write_errors()
    );
    // A regular file is shown; a device such as /dev/full is not read back.
    if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
        println!("{}:", path.display());
        print!("{}", std::fs::read_to_string(&path)?);
    }
    Ok(())
}
