//! The sender thread: collects queued entries into batches within Datadog's limits, gzips
//! them, posts them, and retries, splits or drops according to the answer.

use std::cell::Cell;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use vigil_core::Secret;

use crate::catalogue::VIGIL_DATADOG_LOGS_PAYLOAD_SIZE;
use crate::queue::{DropReason, Item, Outcome, Shared};
use crate::{MAX_BATCH_ENTRIES, MAX_PAYLOAD_BYTES};

/// The `tracing` target of the sender's own reports.
pub const REPORT_TARGET: &str = "vigil::datadog";

/// A `Retry-After` longer than this is not waited for in full.
const RETRY_AFTER_CAP: Duration = Duration::from_mins(5);
/// Response bodies are read (so the connection can be reused) up to this size.
const RESPONSE_BODY_LIMIT: u64 = 64 * 1024;
/// Failed attempts in a row before an outage is reported.
const REPORT_AFTER_FAILURES: u32 = 3;
/// The longest the sender sleeps without looking at the shutdown flag and publishing metrics.
const MAX_NAP: Duration = Duration::from_millis(250);

thread_local! {
    /// Set on every sender thread: records logged there are not queued again.
    static ON_SENDER_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Whether the current thread is a Datadog sender thread.
pub(crate) fn on_sender_thread() -> bool {
    ON_SENDER_THREAD.with(Cell::get)
}

/// What the sender needs besides the shared state.
pub(crate) struct SenderConfig {
    pub(crate) url: String,
    pub(crate) api_key: Secret,
    pub(crate) flush_interval: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
}

/// Entries collected for one request.
#[derive(Default)]
struct Batch {
    /// The entries, back to back.
    data: Vec<u8>,
    /// Where each entry is in `data`.
    spans: Vec<(usize, usize)>,
}

impl Batch {
    fn len(&self) -> usize {
        self.spans.len()
    }

    fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The body size (`[`, entries, commas, `]`) of entries `lo..hi`.
    fn body_size(&self, lo: usize, hi: usize) -> usize {
        if lo == hi {
            return 2;
        }
        self.spans[hi - 1].1 - self.spans[lo].0 + (hi - lo - 1) + 2
    }

    /// Whether `entry` can join without breaking a limit.
    fn fits(&self, entry: &[u8]) -> bool {
        let size = if self.is_empty() {
            2 + entry.len()
        } else {
            self.body_size(0, self.len()) + 1 + entry.len()
        };
        self.len() < MAX_BATCH_ENTRIES && size <= MAX_PAYLOAD_BYTES
    }

    fn push(&mut self, entry: &[u8]) {
        let start = self.data.len();
        self.data.extend_from_slice(entry);
        self.spans.push((start, self.data.len()));
    }

    fn clear(&mut self) {
        self.data.clear();
        self.spans.clear();
        if self.data.capacity() > MAX_PAYLOAD_BYTES + MAX_PAYLOAD_BYTES / 4 {
            self.data.shrink_to(MAX_PAYLOAD_BYTES);
        }
    }
}

/// How one request went.
#[derive(Debug)]
enum Answer {
    /// An HTTP status, with the `Retry-After` delay when one was sent.
    Status(u16, Option<Duration>),
    /// No answer: a timeout, a refused connection, an I/O or protocol error.
    Failed(String),
}

/// What the sender reports, once per episode (until a delivery succeeds again).
#[derive(Clone, Copy)]
enum Report {
    Rejected,
    Unauthorized,
    TooLarge,
    Unreachable,
}

/// The reports made in the current episode.
#[derive(Default)]
struct Reports {
    made: [bool; 4],
    consecutive_failures: u32,
}

impl Reports {
    /// Whether `report` is due: true the first time in an episode.
    fn first(&mut self, report: Report) -> bool {
        !std::mem::replace(&mut self.made[report as usize], true)
    }
}

pub(crate) struct Sender {
    shared: Arc<Shared>,
    agent: ureq::Agent,
    config: SenderConfig,
    batch: Batch,
    gz: Vec<u8>,
    reports: Reports,
    rng: fastrand::Rng,
}

impl Sender {
    pub(crate) fn new(shared: Arc<Shared>, config: SenderConfig) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_global(Some(config.request_timeout))
            .user_agent(concat!("vigil-log-datadog/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Sender {
            shared,
            agent,
            config,
            batch: Batch::default(),
            gz: Vec::new(),
            reports: Reports::default(),
            rng: fastrand::Rng::new(),
        }
    }

    /// The thread's body.
    pub(crate) fn run(mut self) {
        /// Marks the sender as gone however the thread ends, so that no flush waits in vain.
        struct Gone(Arc<Shared>);
        impl Drop for Gone {
            fn drop(&mut self) {
                self.0.mark_sender_gone();
            }
        }
        let _gone = Gone(self.shared.clone());
        ON_SENDER_THREAD.with(|f| f.set(true));
        loop {
            // Wait for the interval, a full batch's worth of entries, a flush or a shutdown.
            if !self.shared.stopping() {
                self.shared.sleep(self.config.flush_interval);
            }
            let stopping = self.shared.stopping();
            self.shared.clear_wake();
            self.drain();
            self.send_batch();
            self.shared.publish_metrics();
            if self.shared.deadline().is_some_and(|d| Instant::now() >= d) {
                self.shared.discard_queue();
            }
            if stopping && self.shared.queue.is_empty() {
                break;
            }
        }
        self.shared.publish_metrics();
    }

    /// Moves everything queued into batches, sending each one that is full, and completes
    /// flushes once everything before them is resolved.
    fn drain(&mut self) {
        while let Some(item) = self.shared.pop() {
            match item {
                Item::Entry(entry) => {
                    if !self.batch.fits(&entry) {
                        self.send_batch();
                    }
                    self.batch.push(&entry);
                    self.shared.recycle(entry);
                    if self.batch.len() >= MAX_BATCH_ENTRIES {
                        self.send_batch();
                    }
                }
                Item::Flush(signal) => {
                    self.send_batch();
                    self.shared.publish_metrics();
                    signal.complete();
                }
            }
        }
    }

    /// Sends the current batch, if any, until it is delivered or dropped.
    fn send_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        self.send_range(0, self.batch.len());
        self.batch.clear();
    }

    /// Sends entries `lo..hi` of the batch: retried until delivered, split on 413, dropped
    /// on a final refusal or at the shutdown deadline.
    fn send_range(&mut self, lo: usize, hi: usize) {
        let n = (hi - lo) as u64;
        if !self.compress(lo, hi) {
            self.shared.count_drop(DropReason::Rejected, n);
            return;
        }
        #[allow(clippy::cast_precision_loss)]
        metrics::histogram!(VIGIL_DATADOG_LOGS_PAYLOAD_SIZE.name).record(self.batch.body_size(lo, hi) as f64);
        let mut attempt: u32 = 0;
        loop {
            let timeout = match self.shared.deadline() {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        self.shared.count_drop(DropReason::Shutdown, n);
                        return;
                    }
                    self.config.request_timeout.min(left)
                }
                None => self.config.request_timeout,
            };
            match self.post(timeout) {
                Answer::Status(200..=299, _) => {
                    self.shared.count_request(Outcome::Accepted);
                    self.shared.count_delivered(n);
                    self.reports = Reports::default();
                    return;
                }
                Answer::Status(413, _) if hi - lo > 1 => {
                    self.shared.count_request(Outcome::Split);
                    let mid = lo + (hi - lo) / 2;
                    self.send_range(lo, mid);
                    self.send_range(mid, hi);
                    return;
                }
                Answer::Status(413, _) => {
                    self.shared.count_request(Outcome::Rejected);
                    self.shared.count_drop(DropReason::Rejected, n);
                    if self.reports.first(Report::TooLarge) {
                        tracing::warn!(
                            target: REPORT_TARGET,
                            url = %self.config.url,
                            status = 413,
                            "the Datadog logs intake refused a single log entry as too large (HTTP 413); dropped it"
                        );
                    }
                    return;
                }
                Answer::Status(status @ (401 | 403), _) => {
                    self.shared.count_request(Outcome::Unauthorized);
                    self.shared.count_drop(DropReason::Unauthorized, n);
                    if self.reports.first(Report::Unauthorized) {
                        tracing::error!(
                            target: REPORT_TARGET,
                            url = %self.config.url,
                            status,
                            dropped = n,
                            "the Datadog logs intake refused the API key (HTTP {status}): check DATADOG_API_KEY; \
                             logs are dropped until it is accepted"
                        );
                    }
                    return;
                }
                Answer::Status(status, retry_after) if status == 408 || status == 429 || status >= 500 => {
                    self.retry_later(attempt, retry_after, &format!("HTTP {status}"));
                }
                Answer::Status(status, _) => {
                    self.shared.count_request(Outcome::Rejected);
                    self.shared.count_drop(DropReason::Rejected, n);
                    if self.reports.first(Report::Rejected) {
                        let what = if status == 400 {
                            "rejected a batch as malformed"
                        } else {
                            "answered with an unexpected status (check the site or DATADOG_LOGS_URL)"
                        };
                        tracing::warn!(
                            target: REPORT_TARGET,
                            url = %self.config.url,
                            status,
                            dropped = n,
                            "the Datadog logs intake {what} (HTTP {status}); dropped the batch"
                        );
                    }
                    return;
                }
                Answer::Failed(error) => self.retry_later(attempt, None, &error),
            }
            attempt = attempt.saturating_add(1);
        }
    }

    /// Counts a retry, reports a lasting outage once, and waits before the next attempt.
    fn retry_later(&mut self, attempt: u32, retry_after: Option<Duration>, error: &str) {
        self.shared.count_request(Outcome::Retried);
        self.reports.consecutive_failures += 1;
        if self.reports.consecutive_failures >= REPORT_AFTER_FAILURES && self.reports.first(Report::Unreachable) {
            tracing::warn!(
                target: REPORT_TARGET,
                url = %self.config.url,
                error,
                attempts = self.reports.consecutive_failures,
                "the Datadog logs intake is unreachable or failing; retrying (logs are queued, and dropped and \
                 counted when the queue is full)"
            );
        }
        let mut wait = self.backoff(attempt);
        if let Some(after) = retry_after {
            wait = wait.max(after.min(RETRY_AFTER_CAP));
        }
        self.pause(wait);
    }

    /// Capped exponential backoff with jitter: between half and all of
    /// `initial * 2^attempt`, at most `max`.
    fn backoff(&mut self, attempt: u32) -> Duration {
        let base = self
            .config
            .backoff_initial
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.config.backoff_max);
        let half = base / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(self.rng.u64(0..=nanos))
    }

    /// Sleeps for `wait`, publishing metrics meanwhile; during a shutdown, never past half
    /// of the time left, so that one more attempt fits before the deadline.
    fn pause(&mut self, wait: Duration) {
        let mut end = Instant::now() + wait;
        loop {
            self.shared.publish_metrics();
            let now = Instant::now();
            if let Some(deadline) = self.shared.deadline() {
                end = end.min(now + deadline.saturating_duration_since(now) / 2);
            }
            if now >= end {
                return;
            }
            std::thread::park_timeout((end - now).min(MAX_NAP));
        }
    }

    /// Gzips entries `lo..hi` as a JSON array into `self.gz`.
    fn compress(&mut self, lo: usize, hi: usize) -> bool {
        let mut gz = std::mem::take(&mut self.gz);
        gz.clear();
        let mut encoder = GzEncoder::new(gz, Compression::fast());
        let mut result = encoder.write_all(b"[");
        for (i, &(a, b)) in self.batch.spans[lo..hi].iter().enumerate() {
            if i > 0 {
                result = result.and_then(|()| encoder.write_all(b","));
            }
            result = result.and_then(|()| encoder.write_all(&self.batch.data[a..b]));
        }
        result = result.and_then(|()| encoder.write_all(b"]"));
        match result.and_then(|()| encoder.finish()) {
            Ok(gz) => {
                self.gz = gz;
                true
            }
            Err(error) => {
                tracing::error!(target: REPORT_TARGET, %error, "cannot compress a batch of logs; dropped it");
                false
            }
        }
    }

    /// Posts `self.gz` once.
    fn post(&mut self, timeout: Duration) -> Answer {
        let request = self
            .agent
            .post(self.config.url.as_str())
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("DD-API-KEY", self.config.api_key.expose())
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip");
        match request.send(&self.gz[..]) {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                // Read the (small) body so that the connection can be reused.
                let _ = response
                    .body_mut()
                    .with_config()
                    .limit(RESPONSE_BODY_LIMIT)
                    .read_to_vec();
                Answer::Status(status, retry_after)
            }
            Err(error) => Answer::Failed(error.to_string()),
        }
    }
}

/// `Retry-After` in its delay-seconds form. (The HTTP-date form is ignored: the backoff
/// applies.)
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_both_limits() {
        let mut batch = Batch::default();
        let entry = vec![b'x'; 1000];
        while batch.fits(&entry) {
            batch.push(&entry);
        }
        assert_eq!(batch.len(), MAX_BATCH_ENTRIES);
        let big = vec![b'y'; 999_000];
        let mut batch = Batch::default();
        while batch.fits(&big) {
            batch.push(&big);
        }
        assert_eq!(batch.len(), 5);
        assert!(batch.body_size(0, 5) <= MAX_PAYLOAD_BYTES);
        assert_eq!(batch.body_size(1, 3), 2 * 999_000 + 1 + 2);
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let shared = Arc::new(Shared::new(4, 1 << 20));
        let mut sender = Sender::new(
            shared,
            SenderConfig {
                url: "http://127.0.0.1:9/api/v2/logs".into(),
                api_key: Secret::new("k"),
                flush_interval: Duration::from_secs(1),
                request_timeout: Duration::from_secs(1),
                backoff_initial: Duration::from_millis(100),
                backoff_max: Duration::from_secs(2),
            },
        );
        for attempt in 0..40 {
            let d = sender.backoff(attempt);
            let base = (Duration::from_millis(100) * 2u32.pow(attempt.min(20))).min(Duration::from_secs(2));
            assert!(d >= base / 2 && d <= base, "{attempt}: {d:?}");
        }
    }
}
