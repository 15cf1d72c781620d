//! The console log backend: Vigil's default logger.
//!
//! Every record becomes one line on standard output, as human-readable text (coloured on a
//! terminal) or as JSON (`LOG_FORMAT=json`). Lines are formatted on the caller's thread into
//! recycled buffers and written by a background thread through a bounded queue: a log call
//! never waits for the terminal or a pipe. When the queue is full the line is dropped and
//! counted (`vigil.log.dropped{backend="console",reason="queue_full"}`).
//!
//! JSON lines carry `timestamp` (RFC 3339, UTC), `level`, `message`, `target`, `service`,
//! `environment`, `version` (when set), `pid`, and the record's fields beside them.
//!
//! ```
//! use std::sync::Arc;
//! use tracing_subscriber::prelude::*;
//! use vigil_core::{LogLayer, Resource};
//! use vigil_log_console::{ConsoleBackend, Format};
//!
//! let console = Arc::new(ConsoleBackend::builder().format(Format::Json).build().unwrap());
//! let subscriber = tracing_subscriber::registry()
//!     .with(LogLayer::new(Resource::new("quickstart", "development")).with_backend(console.clone()));
//! tracing::subscriber::with_default(subscriber, || {
//!     tracing::info!(user_id = 42, "User logged in");
//! });
//! vigil_core::LogBackend::flush(&*console);
//! ```

mod format;
mod time;

use std::io::{self, IsTerminal, Write};

use vigil_core::config::{ColorMode, LogConfig, LogFormat};
use vigil_core::{Level, LogBackend, QueuedWriter, Record, WriterStats};

pub use format::{Colors, RESERVED_JSON_KEYS, json_string, write_json, write_text};
pub use time::write_rfc3339;

/// The line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// Human-readable text.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl From<LogFormat> for Format {
    fn from(f: LogFormat) -> Self {
        match f {
            LogFormat::Text => Format::Text,
            LogFormat::Json => Format::Json,
        }
    }
}

/// Configures a [`ConsoleBackend`].
pub struct ConsoleBuilder {
    format: Format,
    color: ColorMode,
    queue_capacity: usize,
    min_level: Level,
    destination: Option<(Box<dyn Write + Send>, bool)>,
}

impl std::fmt::Debug for ConsoleBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleBuilder")
            .field("format", &self.format)
            .field("color", &self.color)
            .field("queue_capacity", &self.queue_capacity)
            .finish_non_exhaustive()
    }
}

impl ConsoleBuilder {
    /// Text or JSON (default text).
    #[must_use]
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Colour for text lines (default: on a terminal without `NO_COLOR`).
    #[must_use]
    pub fn color(mut self, color: ColorMode) -> Self {
        self.color = color;
        self
    }

    /// Lines queued before new ones are dropped (default 8192).
    #[must_use]
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.max(1);
        self
    }

    /// Records below `level` are skipped by this backend (default: all that reach it).
    #[must_use]
    pub fn min_level(mut self, level: Level) -> Self {
        self.min_level = level;
        self
    }

    /// Writes to `destination` instead of standard output (never coloured in `auto` mode).
    #[must_use]
    pub fn writer(mut self, destination: impl Write + Send + 'static) -> Self {
        self.destination = Some((Box::new(destination), false));
        self
    }

    /// Applies the `log` section of the configuration (format, colour, queue capacity).
    #[must_use]
    pub fn config(self, config: &LogConfig) -> Self {
        self.format(config.format.into())
            .color(config.color)
            .queue_capacity(config.queue_capacity.0)
    }

    /// Starts the writer thread.
    ///
    /// # Errors
    ///
    /// When the writer thread cannot be spawned.
    pub fn build(self) -> io::Result<ConsoleBackend> {
        let (destination, is_terminal): (Box<dyn Write + Send>, bool) = self
            .destination
            .unwrap_or_else(|| (Box::new(io::stdout()), io::stdout().is_terminal()));
        let colors = match self.color {
            ColorMode::Always => Colors::On,
            ColorMode::Auto if is_terminal && std::env::var_os("NO_COLOR").is_none() => Colors::On,
            ColorMode::Auto | ColorMode::Never => Colors::Off,
        };
        let writer = QueuedWriter::spawn("console", destination, self.queue_capacity)?;
        Ok(ConsoleBackend {
            writer,
            format: self.format,
            colors,
            min_level: self.min_level,
        })
    }
}

/// Writes records to the console (or any writer) as text or JSON lines.
#[derive(Debug)]
pub struct ConsoleBackend {
    writer: QueuedWriter,
    format: Format,
    colors: Colors,
    min_level: Level,
}

impl ConsoleBackend {
    /// A builder with the defaults: text, colour on a terminal, 8192 queued lines, stdout.
    pub fn builder() -> ConsoleBuilder {
        ConsoleBuilder {
            format: Format::Text,
            color: ColorMode::Auto,
            queue_capacity: 8192,
            min_level: Level::Trace,
            destination: None,
        }
    }

    /// The writer's counters: lines written, dropped (queue full), lost to write errors.
    pub fn stats(&self) -> &WriterStats {
        self.writer.stats()
    }

    /// The line format in use.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Formats `record` as this backend would, into `out`.
    pub fn format_record(&self, record: &Record<'_>, out: &mut Vec<u8>) {
        match self.format {
            Format::Json => write_json(out, record),
            Format::Text => write_text(out, record, self.colors),
        }
    }
}

impl LogBackend for ConsoleBackend {
    fn log(&self, record: &Record<'_>) {
        let mut line = self.writer.buffer();
        self.format_record(record, &mut line);
        self.writer.send(line);
    }

    fn flush(&self) {
        self.writer.flush();
    }

    fn min_level(&self) -> Level {
        self.min_level
    }
}
