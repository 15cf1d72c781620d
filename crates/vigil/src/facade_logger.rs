//! The seed's logging facade: `Logger::info("User logged in", fields!(user_id = 42))`.

use std::sync::{Arc, OnceLock};

use vigil_core::{Field, Level, LogBackend};

/// The backends installed by [`crate::init`], for [`Logger::flush`].
static INSTALLED: OnceLock<Vec<Arc<dyn LogBackend>>> = OnceLock::new();

pub(crate) fn remember_backends(backends: Vec<Arc<dyn LogBackend>>) {
    let _ = INSTALLED.set(backends);
}

/// The seed's logging facade.
///
/// Each call emits one `tracing` event (target `vigil::logger`), so it goes through the same
/// pipeline as `tracing::info!`: the level filter, the enclosing spans' fields (such as
/// `request_id`), the enrichment (timestamp, service, environment, pid) and every backend.
/// Field names may be chosen at run time.
///
/// ```
/// use vigil::{Logger, fields};
///
/// let (user_id, comment_id) = (42, 7);
/// Logger::info("Comment created", fields!(user_id = user_id, comment_id = comment_id, video_id = "v-1"));
/// Logger::error("Failed to process payment", fields!(error = "card declined"));
/// Logger::warning("Slow request", &[]);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Logger;

impl Logger {
    /// Logs at `level`.
    pub fn log(level: Level, message: &str, fields: &[Field<'_>]) {
        vigil_core::emit(level, message, fields);
    }

    /// Logs at debug level.
    pub fn debug(message: &str, fields: &[Field<'_>]) {
        Self::log(Level::Debug, message, fields);
    }

    /// Logs at info level.
    pub fn info(message: &str, fields: &[Field<'_>]) {
        Self::log(Level::Info, message, fields);
    }

    /// Logs at warning level.
    pub fn warning(message: &str, fields: &[Field<'_>]) {
        Self::log(Level::Warning, message, fields);
    }

    /// Logs at warning level (the same as [`Logger::warning`]).
    pub fn warn(message: &str, fields: &[Field<'_>]) {
        Self::log(Level::Warning, message, fields);
    }

    /// Logs at error level.
    pub fn error(message: &str, fields: &[Field<'_>]) {
        Self::log(Level::Error, message, fields);
    }

    /// Writes out everything the installed backends have queued (the seed's `flush`).
    pub fn flush() {
        for backend in INSTALLED.get().into_iter().flatten() {
            backend.flush();
        }
    }
}

/// Builds the fields of a [`Logger`] call: `fields!(user_id = 42, "video.id" = id)`.
///
/// Values may be integers, floats, booleans, `&str` or `&String`; use `.to_string()` for
/// anything else.
#[macro_export]
macro_rules! fields {
    () => { &[] as &[$crate::Field<'_>] };
    ($($name:tt = $value:expr),+ $(,)?) => {
        &[$($crate::Field::new($crate::__field_name!($name), $value)),+] as &[$crate::Field<'_>]
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __field_name {
    ($name:ident) => {
        stringify!($name)
    };
    ($name:literal) => {
        $name
    };
}
