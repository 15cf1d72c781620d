//! Log levels, as the seed names them.

use std::fmt;
use std::str::FromStr;

/// The severity of a log record.
///
/// The seed's levels are `debug`, `info`, `warning` and `error`; `trace` is added for
/// `tracing::trace!` events. Parsing accepts `warn` as a synonym of `warning` and is
/// case-insensitive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very verbose diagnostics (`tracing::trace!`).
    Trace,
    /// Diagnostics for developers.
    Debug,
    /// Normal operation worth recording.
    Info,
    /// Something unexpected that the service survived.
    Warning,
    /// A failure.
    Error,
}

impl Level {
    /// The lower-case name written in log lines: `trace`, `debug`, `info`, `warning`, `error`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }

    /// The accepted spellings, for error messages.
    pub const ACCEPTED: &'static str = "trace, debug, info, warning (or warn), error";

    /// Converts from a `tracing` level.
    pub fn from_tracing(level: tracing_core::Level) -> Self {
        match level {
            tracing_core::Level::TRACE => Level::Trace,
            tracing_core::Level::DEBUG => Level::Debug,
            tracing_core::Level::INFO => Level::Info,
            tracing_core::Level::WARN => Level::Warning,
            tracing_core::Level::ERROR => Level::Error,
        }
    }

    /// Converts to a `tracing` level.
    pub const fn to_tracing(self) -> tracing_core::Level {
        match self {
            Level::Trace => tracing_core::Level::TRACE,
            Level::Debug => tracing_core::Level::DEBUG,
            Level::Info => tracing_core::Level::INFO,
            Level::Warning => tracing_core::Level::WARN,
            Level::Error => tracing_core::Level::ERROR,
        }
    }

    /// The `tracing` filter that lets this level and everything more severe through.
    pub fn to_filter(self) -> tracing_core::LevelFilter {
        tracing_core::LevelFilter::from_level(self.to_tracing())
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error returned when a string is not a log level.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown log level {0:?}: expected one of {accepted}", accepted = Level::ACCEPTED)]
pub struct ParseLevelError(pub String);

impl FromStr for Level {
    type Err = ParseLevelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "trace" => Ok(Level::Trace),
            "debug" => Ok(Level::Debug),
            "info" => Ok(Level::Info),
            "warning" | "warn" => Ok(Level::Warning),
            "error" => Ok(Level::Error),
            _ => Err(ParseLevelError(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_seed_levels_and_synonyms() {
        assert_eq!("debug".parse(), Ok(Level::Debug));
        assert_eq!("INFO".parse(), Ok(Level::Info));
        assert_eq!("warning".parse(), Ok(Level::Warning));
        assert_eq!("warn".parse(), Ok(Level::Warning));
        assert_eq!(" error ".parse(), Ok(Level::Error));
        let err = "loud".parse::<Level>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown log level \"loud\": expected one of trace, debug, info, warning (or warn), error"
        );
    }

    #[test]
    fn orders_by_severity_and_round_trips_tracing() {
        assert!(Level::Error > Level::Warning && Level::Warning > Level::Info);
        for l in [Level::Trace, Level::Debug, Level::Info, Level::Warning, Level::Error] {
            assert_eq!(Level::from_tracing(l.to_tracing()), l);
            assert_eq!(l.as_str().parse(), Ok(l));
        }
    }
}
