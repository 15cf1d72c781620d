//! What the benchmarks ran on: CPU, cores, kernel, compiler, date and load.

use std::fs;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// The machine and moment of a bench run.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// The CPU model (`AMD EPYC 7B13`).
    pub cpu: String,
    /// Logical CPUs available to the process.
    pub cores: usize,
    /// The kernel release (`6.1.0-18-amd64`).
    pub kernel: String,
    /// `rustc --version`.
    pub rustc: String,
    /// When the run started, UTC (`2026-11-25 13:20 UTC`).
    pub date: String,
    /// The 1-, 5- and 15-minute load averages when the run started (`/proc/loadavg`).
    pub load_start: Option<String>,
    /// The same when the run ended.
    pub load_end: Option<String>,
}

impl Machine {
    /// Detects the machine now (the load at the end is left for [`Machine::finish`]).
    pub fn detect() -> Self {
        let cpu = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| cpu_model(&text))
            .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .ok()
            .or_else(|| output("uname", &["-r"]))
            .unwrap_or_else(|| std::env::consts::OS.to_owned());
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let rustc = output(&rustc.to_string_lossy(), &["--version"]).unwrap_or_else(|| "unknown".to_owned());
        let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            kernel,
            rustc,
            date: utc_date(seconds),
            load_start: load_average(),
            load_end: None,
        }
    }

    /// Records the load at the end of the run.
    pub fn finish(&mut self) {
        self.load_end = load_average();
    }
}

/// The first `model name` of `/proc/cpuinfo`.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_owned())
    })
}

/// The three load averages of `/proc/loadavg`.
fn load_average() -> Option<String> {
    let text = fs::read_to_string("/proc/loadavg").ok()?;
    let fields: Vec<&str> = text.split_whitespace().take(3).collect();
    (fields.len() == 3).then(|| fields.join(" "))
}

/// The trimmed standard output of a command that succeeded.
fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `seconds` since the Unix epoch as `YYYY-MM-DD HH:MM UTC` (proleptic Gregorian calendar).
pub fn utc_date(seconds: u64) -> String {
    let days = seconds / 86_400;
    let minutes = (seconds % 86_400) / 60;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        minutes / 60,
        minutes % 60
    )
}

/// The calendar date of the `days`th day after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc_date(0), "1970-01-01 00:00 UTC");
        // 2000-02-29 12:34:56 UTC, a leap day in a century leap year.
        assert_eq!(utc_date(951_827_696), "2000-02-29 12:34 UTC");
        // 2026-11-25 13:20:00 UTC.
        assert_eq!(utc_date(1_795_612_800), "2026-11-25 13:20 UTC");
        // The last second of 2024 (a leap year).
        assert_eq!(utc_date(1_735_689_599), "2024-12-31 23:59 UTC");
    }

    #[test]
    fn reads_the_cpu_model() {
        let text = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(cpu_model(text).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(cpu_model("processor : 0\n"), None);
    }
}
