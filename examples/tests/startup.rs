//! Start-up errors of the quickstart example: each bad value stops it with one line naming
//! the variable, exit status 2, no panic.

mod common;

use std::path::PathBuf;
use std::process::Command;

fn quickstart() -> PathBuf {
    // Integration tests live in target/<profile>/deps; examples in target/<profile>/examples.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap().join("examples");
    let path = dir.join(format!("quickstart{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is missing: cargo builds examples before tests",
        path.display()
    );
    path
}

fn run(vars: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(quickstart());
    for name in [
        "LOG_LEVEL",
        "PROMETHEUS_PORT",
        "PROMETHEUS_HOST",
        "VIGIL_CONFIG",
        "ENABLE_DATADOG",
        "DATADOG_API_KEY",
    ] {
        cmd.env_remove(name);
    }
    cmd.env("QUICKSTART_SECONDS", "0");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_values_stop_start_up_with_one_line_naming_the_variable() {
    let cases = [
        (
            "LOG_LEVEL",
            "loud",
            "error: LOG_LEVEL=\"loud\": expected one of trace, debug, info, warning (or warn), error",
        ),
        (
            "PROMETHEUS_PORT",
            "abc",
            "error: PROMETHEUS_PORT=\"abc\": expected a port number 1-65535",
        ),
        (
            "PROMETHEUS_PORT",
            "70000",
            "error: PROMETHEUS_PORT=\"70000\": expected a port number 1-65535",
        ),
    ];
    for (var, value, expected) in cases {
        let (code, stderr) = run(&[(var, value)]);
        assert_eq!(code, 2, "{var}={value}: {stderr}");
        assert_eq!(stderr.trim_end(), expected);
        assert!(!stderr.contains("panicked"));
    }
}

#[test]
fn datadog_without_a_key_names_the_missing_variable_and_never_prints_keys() {
    let (code, stderr) = run(&[("ENABLE_DATADOG", "true")]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("DATADOG_API_KEY"), "{stderr}");
}

#[test]
fn a_taken_port_names_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, stderr) = run(&[("PROMETHEUS_HOST", "127.0.0.1"), ("PROMETHEUS_PORT", &port)]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}")) && stderr.contains("PROMETHEUS_PORT"),
        "{stderr}"
    );
}

#[test]
fn a_clean_run_exits_zero_and_flushes_its_logs() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port().to_string();
    drop(free);
    let child = Command::new(quickstart())
        .env("QUICKSTART_SECONDS", "0")
        .env("PROMETHEUS_HOST", "127.0.0.1")
        .env("PROMETHEUS_PORT", &port)
        .env("LOG_FORMAT", "json")
        .env("VIGIL_SERVICE", "quickstart-test")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let login = lines
        .iter()
        .find(|l| l["message"] == "User logged in")
        .expect("the login line");
    assert_eq!(login["user_id"], 42);
    assert_eq!(login["service"], "quickstart-test");
    assert_eq!(login["pid"], pid);
    assert_eq!(
        lines.last().unwrap()["message"],
        "Shutting down",
        "the last line is flushed before exit"
    );
}
