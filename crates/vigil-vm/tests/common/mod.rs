//! Helpers for the VM tests: an in-memory recorder, waiting, and promtool.

#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics::Recorder;
use vigil_core::{BackendRecorder, MemoryMetricsBackend};

/// An in-memory backend and a recorder feeding it, for [`vigil_vm::VmSamplerBuilder::recorder`].
pub fn memory_recorder() -> (Arc<MemoryMetricsBackend>, Arc<dyn Recorder + Send + Sync>) {
    let memory = Arc::new(MemoryMetricsBackend::new());
    let recorder: Arc<dyn Recorder + Send + Sync> = Arc::new(BackendRecorder::from_arc(memory.clone()));
    (memory, recorder)
}

/// Polls `done` every millisecond until it holds; panics with `what` after 10 s.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `promtool check metrics` on `text`. Returns its combined output, or `None` when
/// promtool is not installed and `VIGIL_REQUIRE_PROMTOOL` is not set (`cargo xtask ci` sets
/// it after installing promtool, so there the check always runs).
pub fn promtool_check(text: &str) -> Option<String> {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var_os("VIGIL_REQUIRE_PROMTOOL").is_none(),
                "promtool is required but failed to start: {e}"
            );
            eprintln!("promtool not installed: skipping the lint (cargo xtask ci installs it)");
            return None;
        }
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let mut all = String::from_utf8_lossy(&out.stdout).into_owned();
    all.push_str(&String::from_utf8_lossy(&out.stderr));
    if !out.status.success() && all.is_empty() {
        all = format!("promtool exited with {}", out.status);
    }
    Some(all)
}
