//! The console backend end to end: tracing events in, lines out.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::prelude::*;
use vigil_core::config::ColorMode;
use vigil_core::{LogBackend, LogLayer, Resource};
use vigil_log_console::{ConsoleBackend, Format};

/// A writer whose bytes the test can read.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture(format: Format, f: impl FnOnce()) -> Vec<String> {
    let out = Shared::default();
    let console = Arc::new(
        ConsoleBackend::builder()
            .format(format)
            .color(ColorMode::Never)
            .writer(out.clone())
            .build()
            .unwrap(),
    );
    let mut resource = Resource::new("svc", "test").with_version("1.0.0");
    resource.pid = 4242;
    let subscriber = tracing_subscriber::registry().with(LogLayer::new(resource).with_backend(console.clone()));
    tracing::subscriber::with_default(subscriber, f);
    console.flush();
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    text.lines().map(str::to_owned).collect()
}

#[test]
fn json_lines_carry_the_enrichment_and_the_fields() {
    let lines = capture(Format::Json, || {
        let span = tracing::info_span!("request", request_id = "r-1", method = "GET");
        let _e = span.enter();
        tracing::info!(user_id = 42, ratio = 0.5, ok = true, name = "bob", "User logged in");
    });
    assert_eq!(lines.len(), 1);
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    let ts = v["timestamp"].as_str().unwrap();
    assert!(ts.ends_with('Z') && ts.len() == 27 && &ts[10..11] == "T", "{ts}");
    assert_eq!(v["level"], "info");
    assert_eq!(v["message"], "User logged in");
    assert_eq!(v["service"], "svc");
    assert_eq!(v["environment"], "test");
    assert_eq!(v["version"], "1.0.0");
    assert_eq!(v["pid"], 4242);
    assert_eq!(v["user_id"], 42);
    assert_eq!(v["ratio"], 0.5);
    assert_eq!(v["ok"], true);
    assert_eq!(v["name"], "bob");
    assert_eq!(v["request_id"], "r-1");
    assert_eq!(v["method"], "GET");
    assert_eq!(v["target"], module_path!());
}

#[test]
fn no_input_can_forge_a_second_line() {
    let nasty = "line1\nline2\r\u{1b}[31mred\u{0}\u{85}\u{2028}\"quoted\" back\\slash";
    let json = capture(Format::Json, || {
        tracing::warn!(payload = nasty, "{nasty}");
    });
    assert_eq!(json.len(), 1, "{json:?}");
    let v: serde_json::Value = serde_json::from_str(&json[0]).unwrap();
    assert_eq!(v["message"], nasty);
    assert_eq!(v["payload"], nasty);
    assert!(!json[0].contains('\u{1b}') && !json[0].contains('\u{85}') && !json[0].contains('\u{2028}'));

    let text = capture(Format::Text, || {
        tracing::warn!(payload = nasty, "{nasty}");
    });
    assert_eq!(text.len(), 1, "{text:?}");
    assert!(!text[0].contains('\u{1b}') && !text[0].contains('\r') && !text[0].contains('\u{2028}'));
    assert!(text[0].contains("line1\\nline2\\r\\x1b[31mred\\x00"), "{}", text[0]);
}

#[test]
fn reserved_keys_cannot_be_overwritten() {
    let lines = capture(Format::Json, || {
        tracing::error!(level = "fake", service = "spoofed", pid = 1, "real");
    });
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["level"], "error");
    assert_eq!(v["service"], "svc");
    assert_eq!(v["pid"], 4242);
    assert_eq!(v["fields.level"], "fake");
    assert_eq!(v["fields.service"], "spoofed");
}

#[test]
fn non_finite_floats_stay_valid_json() {
    let lines = capture(Format::Json, || {
        tracing::info!(
            a = f64::NAN,
            b = f64::INFINITY,
            c = f64::NEG_INFINITY,
            d = u128::MAX,
            "floats"
        );
    });
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["a"], "NaN");
    assert_eq!(v["b"], "inf");
    assert_eq!(v["c"], "-inf");
}

#[test]
fn text_lines_have_every_enrichment_field() {
    let lines = capture(Format::Text, || {
        tracing::info!(user_id = 42, city = "New York", "User logged in");
    });
    let line = &lines[0];
    assert!(line.contains(" INFO "), "{line}");
    assert!(
        line.contains(
            ": User logged in user_id=42 city=\"New York\" service=svc environment=test version=1.0.0 pid=4242"
        ),
        "{line}"
    );
}

#[test]
fn a_full_queue_drops_and_counts_instead_of_blocking() {
    /// A destination that blocks until released, so the queue fills.
    struct Gate(Arc<(Mutex<bool>, std::sync::Condvar)>);
    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let (lock, cv) = &*self.0;
            let mut open = lock.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let console = Arc::new(
        ConsoleBackend::builder()
            .format(Format::Json)
            .queue_capacity(4)
            .writer(Gate(gate.clone()))
            .build()
            .unwrap(),
    );
    let subscriber =
        tracing_subscriber::registry().with(LogLayer::new(Resource::new("svc", "test")).with_backend(console.clone()));
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..100 {
            tracing::info!(i, "burst");
        }
    });
    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
    console.flush();
    let stats = console.stats();
    assert_eq!(stats.written() + stats.dropped(), 100);
    assert!(stats.dropped() >= 90, "dropped {}", stats.dropped());
    assert!(stats.written() >= 4);
}

#[test]
fn write_errors_are_counted_not_fatal() {
    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let console = Arc::new(ConsoleBackend::builder().writer(Full).build().unwrap());
    let subscriber =
        tracing_subscriber::registry().with(LogLayer::new(Resource::new("svc", "test")).with_backend(console.clone()));
    tracing::subscriber::with_default(subscriber, || {
        for _ in 0..10 {
            tracing::info!("lost");
        }
    });
    console.flush();
    assert_eq!(console.stats().write_errors(), 10);
    assert_eq!(console.stats().written(), 0);
}
