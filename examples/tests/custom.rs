//! The custom-backend examples as processes: the file logger's logfmt lines, its behaviour on
//! a full disk (`/dev/full`: every line counted as lost, the program carries on and exits
//! cleanly), and the StatsD metrics backend's datagrams.

mod common;

use std::process::Command;

use common::example;

fn run(name: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(example(name))
        .args(args)
        .env_remove("VIGIL_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_file_logger_appends_escaped_logfmt_lines() {
    let dir = std::env::temp_dir().join(format!("vigil-custom-logger-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("app.log");
    let _ = std::fs::remove_file(&path);
    let (code, stdout, stderr) = run("custom_logger", &[path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("2 lines written, 0 dropped (queue full), 0 lost to write errors"),
        "{stdout}"
    );
    let lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0].contains("level=info")
            && lines[0].contains("msg=\"User logged in\"")
            && lines[0].contains("user_id=42")
    );
    // The newline in the field stays escaped: one record, one line.
    assert!(
        lines[1].contains("level=error") && lines[1].contains(r#"error="card declined\nretry later""#),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains("request_id=req-1"), "{}", lines[1]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_full_disk_loses_lines_counted_and_the_program_carries_on() {
    if !std::path::Path::new("/dev/full").exists() {
        eprintln!("SKIPPED: no /dev/full on this system");
        return;
    }
    let (code, stdout, stderr) = run("custom_logger", &["/dev/full"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("0 lines written, 0 dropped (queue full), 2 lost to write errors"),
        "{stdout}{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn the_statsd_backend_sends_one_datagram_per_update() {
    let (code, stdout, stderr) = run("custom_metrics", &[]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let datagrams: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("agent received: "))
        .collect();
    assert_eq!(datagrams.len(), 4, "{stdout}");
    for expected in [
        "comments.created:1|c",
        "users.online:42|g",
        "request.duration:12.5|",
        "videos.uploaded:2|c",
    ] {
        assert!(
            datagrams.iter().any(|d| d.starts_with(expected)),
            "no {expected:?} in {datagrams:#?}"
        );
    }
}
