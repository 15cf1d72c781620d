//! The seed's `NewMetrics`: a custom metrics backend that sends StatsD lines over UDP.
//!
//! ```text
//! cargo run -p examples --example custom_metrics
//! ```
//!
//! The example starts a tiny UDP listener standing in for a StatsD agent on 127.0.0.1,
//! points the backend at it, records the seed's three kinds of metric (through the facade and
//! through `metrics` macros), and prints the datagrams the listener received.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::UdpSocket;
use std::time::Duration;

use vigil::config::Config;
use vigil::{Metrics, MetricsBackend, QueuedWriter, Vigil};

/// Formats every update as a DogStatsD line (`name:value|type|#tag:value`) and sends it
/// from a background thread.
struct StatsdLines {
    writer: QueuedWriter,
}

/// Sends each line of a batch as one datagram.
struct UdpLines(UdpSocket);

impl Write for UdpLines {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for line in buf.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            self.0.send(line)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl StatsdLines {
    fn connect(agent: &str) -> io::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.connect(agent)?;
        Ok(StatsdLines {
            writer: QueuedWriter::spawn("statsd", UdpLines(socket), 8192)?,
        })
    }

    fn send(&self, name: &str, value: &str, kind: &str, tags: &[(&str, &str)]) {
        let mut line = String::with_capacity(64);
        // StatsD separators in names or tags would corrupt the line: replace them.
        let clean = |s: &str| s.replace([':', '|', '@', '#', ',', '\n'], "_");
        let _ = write!(line, "{}:{value}|{kind}", clean(name));
        for (i, (k, v)) in tags.iter().enumerate() {
            line.push_str(if i == 0 { "|#" } else { "," });
            let _ = write!(line, "{}:{}", clean(k), clean(v));
        }
        line.push('\n');
        let mut buf = self.writer.buffer();
        buf.extend_from_slice(line.as_bytes());
        self.writer.send(buf);
    }
}

impl MetricsBackend for StatsdLines {
    fn increment(&self, name: &str, value: u64, tags: &[(&str, &str)]) {
        self.send(name, &value.to_string(), "c", tags);
    }
    fn gauge(&self, name: &str, value: f64, tags: &[(&str, &str)]) {
        self.send(name, &value.to_string(), "g", tags);
    }
    fn histogram(&self, name: &str, value: f64, tags: &[(&str, &str)]) {
        self.send(name, &value.to_string(), "h", tags);
    }
}

fn main() -> anyhow::Result<()> {
    let agent = UdpSocket::bind("127.0.0.1:0")?;
    agent.set_read_timeout(Some(Duration::from_millis(500)))?;
    let backend = StatsdLines::connect(&agent.local_addr()?.to_string())?;

    let mut config = Config::load()?;
    config.logger_backends.clear();
    config.metrics_backends.clear();
    // Only the four updates below: no process and runtime metrics from the VM sampler.
    config.vm.enabled = false;
    let guard = Vigil::builder().config(config).metrics_backend(backend).install()?;

    Metrics::increment("comments.created", 1, &[("region", "us-east")]);
    Metrics::gauge("users.online", 42.0, &[("region", "us-east")]);
    Metrics::histogram("request.duration", 12.5, &[("route", "/api/comments")]);
    metrics::counter!("videos.uploaded", "format" => "mp4").increment(2);

    let mut buf = [0u8; 1500];
    let mut received = 0;
    while let Ok(n) = agent.recv(&mut buf) {
        println!("agent received: {}", String::from_utf8_lossy(&buf[..n]));
        received += 1;
    }
    drop(guard);
    anyhow::ensure!(received == 4, "expected 4 datagrams, got {received}");
    Ok(())
}
