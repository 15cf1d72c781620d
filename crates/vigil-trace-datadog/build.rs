//! Records the compiler version for the `Datadog-Meta-Lang-Version` header.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=RUSTC");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    // `rustc 1.94.0 (4a4ef493e 2026-03-02)` -> `1.94.0`
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.split_whitespace().nth(1).map(str::to_owned))
        .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'))
        .unwrap_or_else(|| std::env::var("CARGO_PKG_RUST_VERSION").unwrap_or_default());
    println!("cargo:rustc-env=VIGIL_RUSTC_VERSION={version}");
}
