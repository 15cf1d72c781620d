//! Headless Chromium (Debian's `chromium`) for page tests: finding it, running it with a
//! deadline, and the target directory where screenshots are kept as CI artefacts.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The flags every run gets: headless, no sandbox (CI runs as root), nothing fetched from
/// outside, logging (including the page's console) to stderr.
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--no-default-browser-check",
    "--no-first-run",
    "--no-pings",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
];

/// The Chromium to run: `$VIGIL_CHROMIUM`, or `chromium` / `chromium-browser` on `PATH`.
///
/// `None` when there is none and `VIGIL_REQUIRE_CHROMIUM` is not set (a clear skip message is
/// printed); panics when it is set (`cargo xtask ci` installs Chromium and sets it).
pub fn chromium_or_skip(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("VIGIL_CHROMIUM").map(PathBuf::from).or_else(|| {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("VIGIL_REQUIRE_CHROMIUM").is_none(),
            "{test}: VIGIL_REQUIRE_CHROMIUM is set but no Chromium was found \
             (install Debian's `chromium`, or set VIGIL_CHROMIUM to its path)"
        );
        // Straight to stderr: the test harness captures `eprintln!`, and a skip must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: Chromium is not installed (apt-get install -y chromium; \
             `cargo xtask ci` installs it and sets VIGIL_REQUIRE_CHROMIUM=1)"
        );
    }
    found
}

/// What one Chromium run printed.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `chromium` with [`FLAGS`], a fresh profile in `profile` and `args`, in a process group
/// of its own; kills that group (Chromium and its helper processes, by the group's id) and
/// panics if it has not finished by `deadline`.
pub fn run(chromium: &Path, profile: &Path, args: &[&str], deadline: Duration) -> Run {
    let _ = std::fs::remove_dir_all(profile);
    std::fs::create_dir_all(profile).unwrap();
    let mut child = Command::new(chromium)
        .args(FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .env("HOME", profile)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium.display()));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > deadline {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "Chromium did not finish in {deadline:?}; stderr:\n{}",
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let run = Run {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    };
    let _ = std::fs::remove_dir_all(profile);
    run
}

/// The page's console messages, from Chromium's stderr log (where it logs every level as
/// `INFO:CONSOLE`, so levels cannot be told apart: a page that logs nothing has none).
pub fn console_messages(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

/// Cargo's target directory: the ancestor of this test binary that holds Cargo's
/// `CACHEDIR.TAG` (the binary is `<target>/<profile>/deps/<name>`), else an absolute
/// `$CARGO_TARGET_DIR`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    if let Some(dir) = exe.ancestors().find(|dir| dir.join("CACHEDIR.TAG").is_file()) {
        return dir.to_path_buf();
    }
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        _ => exe.ancestors().nth(3).unwrap().to_path_buf(),
    }
}
