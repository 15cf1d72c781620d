//! The resource: what produced a record (service, environment, version, host, process).

/// Identifies the process that produced a log record or metric.
///
/// `hostname` and `pid` are detected; `service`, `environment` and `version` come from the
/// configuration. Every field can be overridden.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// The service name (`service` in config, `VIGIL_SERVICE` or `DD_SERVICE`).
    pub service: String,
    /// The deployment environment, such as `production` (`VIGIL_ENV` or `DD_ENV`).
    pub environment: String,
    /// The service version; empty when unknown (`VIGIL_VERSION` or `DD_VERSION`).
    pub version: String,
    /// The host name, detected at start-up.
    pub hostname: String,
    /// The process id.
    pub pid: u32,
}

impl Resource {
    /// A resource for `service` in `environment`, with the host name and pid detected.
    pub fn new(service: impl Into<String>, environment: impl Into<String>) -> Self {
        Resource {
            service: service.into(),
            environment: environment.into(),
            version: String::new(),
            hostname: detect_hostname(),
            pid: std::process::id(),
        }
    }

    /// Sets the version.
    #[must_use]
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }
}

impl Default for Resource {
    /// The current executable's name as the service, in `development`.
    fn default() -> Self {
        Resource::new(default_service_name(), "development")
    }
}

/// The file stem of the running executable, or `unknown_service`.
pub fn default_service_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown_service".to_owned())
}

fn detect_hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_host_and_pid() {
        let r = Resource::new("api", "prod").with_version("1.2.3");
        assert_eq!(r.service, "api");
        assert_eq!(r.environment, "prod");
        assert_eq!(r.version, "1.2.3");
        assert_eq!(r.pid, std::process::id());
        assert!(!r.hostname.is_empty());
    }
}
