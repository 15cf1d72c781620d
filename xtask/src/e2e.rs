//! `cargo xtask e2e`: runs the quickstart example, scrapes its `/metrics` endpoint, lints the
//! output with `promtool` and checks its JSON log lines; then runs the `realtime_server` example
//! under real HTTP and WebSocket traffic and checks its metrics and logs exactly (see [`realtime`]);
//! then proves the generated dashboards and alert rules against a real Prometheus scraping
//! `realtime_server` (see [`dashboards`]).

pub(crate) mod dashboards;
pub(crate) mod fake_datadog;
mod realtime;

use std::env;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};

use crate::cmd::Cmd;
use crate::json::{self, Value};
use crate::{build_example, project_root, target_dir};

/// How long the example may take to answer its first scrape.
const STARTUP_TIMEOUT: Duration = Duration::from_mins(1);
/// Pause between scrape attempts while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How long to wait, once `/metrics` answers, for the "User logged in" log line.
const LOG_TIMEOUT: Duration = Duration::from_secs(15);
/// The message the quickstart logs and this check looks for.
const LOGIN_MESSAGE: &str = "User logged in";
/// Series the quickstart must expose.
const REQUIRED_SERIES: [&str; 3] = ["comments_created_total", "users_online", "request_duration_bucket"];
/// Labels every sample must carry, from `VIGIL_SERVICE` and `VIGIL_ENV`.
const REQUIRED_LABELS: [(&str, &str); 2] = [("service", "quickstart"), ("environment", "ci")];

/// Runs the end-to-end check.
///
/// # Errors
///
/// When any stage fails; the message says which and shows the relevant output.
pub fn run() -> Result<()> {
    let promtool = ensure_promtool()?;
    quickstart(&promtool)?;
    realtime::run(&promtool)?;
    dashboards::run(&promtool)
}

/// The quickstart stage.
fn quickstart(promtool: &Path) -> Result<()> {
    let binary = build_example("e2e", "quickstart", false)?;
    let out_dir = target_dir().join("e2e");
    fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;

    let port = free_port()?;
    let envs = [
        ("PROMETHEUS_PORT", port.to_string()),
        ("PROMETHEUS_HOST", "127.0.0.1".to_owned()),
        ("LOG_FORMAT", "json".to_owned()),
        ("LOG_LEVEL", "info".to_owned()),
        ("VIGIL_SERVICE", "quickstart".to_owned()),
        ("VIGIL_ENV", "ci".to_owned()),
    ];
    let mut app = App::start(&binary, &envs)?;
    let result = check_running_app(&mut app, port, promtool, &out_dir);
    let pid = app.pid;
    let stdout = app.stop();
    let stdout_file = out_dir.join("stdout.jsonl");
    fs::write(&stdout_file, &stdout).with_context(|| format!("writing {}", stdout_file.display()))?;
    if result.is_err() {
        eprintln!("{}", tail(&stdout, 30));
    }
    let metrics =
        result.with_context(|| format!("e2e failed (the example's stdout is in {})", stdout_file.display()))?;
    let logs = check_logs(&stdout, pid).with_context(|| {
        format!(
            "e2e: log check failed (the example's stdout is in {})",
            stdout_file.display()
        )
    })?;

    println!("first \"{LOGIN_MESSAGE}\" log line:\n  {}", logs.first_login_line);
    println!(
        "e2e: ok ({} samples in {} metric families, all labelled {}; {} JSON log lines, {} \"{LOGIN_MESSAGE}\")",
        metrics.samples,
        metrics.families,
        REQUIRED_LABELS.map(|(k, v)| format!("{k}=\"{v}\"")).join(" "),
        logs.lines,
        logs.login_lines,
    );
    Ok(())
}

/// Checks done while the example runs: scrape, lint, series, and waiting for the login log line.
fn check_running_app(app: &mut App, port: u16, promtool: &Path, out_dir: &Path) -> Result<MetricsSummary> {
    let response = wait_for_metrics(app, port)?;
    let content_type = response.header("content-type").unwrap_or("");
    ensure!(
        content_type.starts_with("text/plain"),
        "GET /metrics: Content-Type is {content_type:?}, expected text/plain (Prometheus text format)"
    );
    let not_found = http_get(port, "/nope").context("GET /nope")?;
    ensure!(
        not_found.status == 404,
        "GET /nope answered {}, expected 404",
        not_found.status
    );

    let body = String::from_utf8(response.body).context("GET /metrics: the body is not UTF-8")?;
    let metrics_file = out_dir.join("metrics.txt");
    fs::write(&metrics_file, &body).with_context(|| format!("writing {}", metrics_file.display()))?;
    promtool_check(promtool, &metrics_file)?;
    let summary = check_series(&body).with_context(|| format!("checking {}", metrics_file.display()))?;

    // The logger may write asynchronously: give the line time to arrive before stopping the app.
    let deadline = Instant::now() + LOG_TIMEOUT;
    while !app.stdout_contains(LOGIN_MESSAGE) {
        if let Some(status) = app.child.try_wait()? {
            bail!("the example exited ({status}) before logging {LOGIN_MESSAGE:?}");
        }
        ensure!(
            Instant::now() < deadline,
            "no log line containing {LOGIN_MESSAGE:?} on stdout within {LOG_TIMEOUT:?}"
        );
        thread::sleep(POLL_INTERVAL);
    }
    Ok(summary)
}

/// Finds `promtool`, installing the Debian package `prometheus` when running as root.
pub(crate) fn ensure_promtool() -> Result<PathBuf> {
    ensure_prometheus_package("promtool")
}

/// Finds `binary` (`promtool` or `prometheus`), installing the Debian package `prometheus`,
/// which has both, when it is missing and xtask runs as root.
pub(crate) fn ensure_prometheus_package(binary: &str) -> Result<PathBuf> {
    if let Some(path) = find_on_path(binary) {
        return Ok(path);
    }
    if !is_root() {
        bail!(
            "{binary} is not on PATH and xtask is not running as root, so it cannot install it; \
             install the Debian package `prometheus` (apt-get install prometheus)"
        );
    }
    eprintln!("{binary} is not on PATH: installing the Debian package `prometheus`");
    let step = format!("e2e: install {binary}");
    let installed = Cmd::new(step.clone(), "apt-get").arg("update").run().and_then(|()| {
        Cmd::new(step, "apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "prometheus"])
            .run()
    });
    match (installed, find_on_path(binary)) {
        (Ok(()), Some(path)) => Ok(path),
        (Ok(()), None) => bail!(
            "{binary} could not be installed: `apt-get install prometheus` succeeded but {binary} is still not on PATH"
        ),
        (Err(err), _) => Err(err.context(format!("{binary} could not be installed"))),
    }
}

/// Makes sure headless Chromium is installed (the live dashboard's browser test loads the page
/// in it), installing Debian's `chromium` when missing and running as root.
pub(crate) fn ensure_chromium() -> Result<PathBuf> {
    if let Some(path) = find_on_path("chromium").or_else(|| find_on_path("chromium-browser")) {
        return Ok(path);
    }
    if !is_root() {
        bail!(
            "chromium is not on PATH and xtask is not running as root, so it cannot install it; \
             install the Debian package `chromium` (the dashboard's browser test needs it)"
        );
    }
    eprintln!("chromium is not on PATH: installing the Debian package `chromium` for the dashboard's browser test");
    let installed = Cmd::new("test: install chromium", "apt-get")
        .arg("update")
        .run()
        .and_then(|()| {
            Cmd::new("test: install chromium", "apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(["install", "-y", "chromium"])
                .run()
        });
    match (installed, find_on_path("chromium")) {
        (Ok(()), Some(path)) => Ok(path),
        (Ok(()), None) => bail!("`apt-get install chromium` succeeded but chromium is still not on PATH"),
        (Err(err), _) => Err(err.context("chromium could not be installed (apt-get install chromium)")),
    }
}

/// Finds Datadog's `ddapm-test-agent` (the trace tests send real traces to it), installing it
/// from `PyPI` with pip when missing. Returns the directory holding it, for `PATH`.
pub(crate) fn ensure_ddapm_test_agent() -> Result<PathBuf> {
    const NAME: &str = "ddapm-test-agent";
    let scripts_dirs = || -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if let Ok(out) = Command::new("python3")
            .args(["-c", "import sysconfig; print(sysconfig.get_path('scripts'))"])
            .output()
            && out.status.success()
        {
            dirs.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        }
        if let Some(home) = env::var_os("HOME") {
            dirs.push(PathBuf::from(home).join(".local/bin"));
        }
        dirs
    };
    let find = || find_on_path(NAME).or_else(|| scripts_dirs().into_iter().map(|d| d.join(NAME)).find(|p| p.is_file()));
    let dir_of = |p: PathBuf| p.parent().map(Path::to_path_buf).unwrap_or_default();
    if let Some(path) = find() {
        return Ok(dir_of(path));
    }
    eprintln!("{NAME} is not installed: installing it from PyPI (python3 -m pip install ddapm-test-agent)");
    let pip = |extra: &[&str]| {
        Cmd::new("test: install ddapm-test-agent", "python3")
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
            .args(extra.iter().copied())
            .arg("ddapm-test-agent")
            .run()
    };
    // A Debian-managed Python refuses plain installs (PEP 668).
    let installed = pip(&[]).or_else(|_| pip(&["--break-system-packages"]));
    match (installed, find()) {
        (_, Some(path)) => Ok(dir_of(path)),
        (Ok(()), None) => bail!(
            "{NAME} could not be found after `pip install ddapm-test-agent` succeeded (looked on PATH and in {:?})",
            scripts_dirs()
        ),
        (Err(err), None) => Err(err.context(format!(
            "{NAME} could not be installed with pip; the Datadog trace tests need it (PyPI package ddapm-test-agent)"
        ))),
    }
}

/// The first executable file called `name` in a `PATH` directory.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(format!("{name}{}", env::consts::EXE_SUFFIX)))
        .find(|candidate| candidate.is_file())
}

/// Whether this process runs as root (effective uid 0).
fn is_root() -> bool {
    if let Ok(status) = fs::read_to_string("/proc/self/status")
        && let Some(uids) = status.lines().find_map(|l| l.strip_prefix("Uid:"))
    {
        return uids.split_whitespace().nth(1) == Some("0");
    }
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.status.success() && out.stdout.trim_ascii() == b"0")
}

/// A free loopback port: bind port 0, read the port the OS chose, release it.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0 to find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// The running example. Dropping it kills the process and waits for it, so it never outlives xtask.
/// `VIGIL_SERVICE` of every run of `realtime_server`: the `service` label and `$service`.
pub(crate) const SERVICE: &str = "realtime_server";

/// The environment every run of `realtime_server` starts from: the API and metrics ports on
/// 127.0.0.1, JSON console logs at info, the [`SERVICE`] name and the `environment` label,
/// and the database. Each run adds its own variables.
pub(crate) fn realtime_env(
    api_port: u16,
    metrics_port: u16,
    environment: &str,
    database: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("PORT", api_port.to_string()),
        ("HOST", "127.0.0.1".to_owned()),
        ("PROMETHEUS_PORT", metrics_port.to_string()),
        ("PROMETHEUS_HOST", "127.0.0.1".to_owned()),
        ("LOG_FORMAT", "json".to_owned()),
        ("LOG_LEVEL", "info".to_owned()),
        ("VIGIL_SERVICE", SERVICE.to_owned()),
        ("VIGIL_ENV", environment.to_owned()),
        ("DATABASE_URL", database.to_owned()),
    ]
}

struct App {
    /// The process.
    child: Child,
    /// Its pid, for the log check.
    pid: u32,
    /// Everything it has written to stdout so far, filled by `reader`.
    stdout: Arc<Mutex<Vec<u8>>>,
    /// The thread copying its stdout into `stdout`.
    reader: Option<JoinHandle<()>>,
}

impl App {
    /// Starts the example with `envs` added to the environment.
    fn start(binary: &Path, envs: &[(&str, String)]) -> Result<Self> {
        let shown: Vec<String> = envs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        eprintln!("$ {} {} &", shown.join(" "), binary.display());
        let mut child = Command::new(binary)
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .current_dir(project_root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let pid = child.id();
        let mut pipe = child.stdout.take().expect("stdout is piped");
        // From here on `app` owns the child: any early return kills it.
        let mut app = Self {
            child,
            pid,
            stdout: Arc::default(),
            reader: None,
        };
        let sink = Arc::clone(&app.stdout);
        let reader = thread::Builder::new()
            .name("e2e-stdout".to_owned())
            .spawn(move || {
                let mut chunk = [0u8; 8192];
                loop {
                    match pipe.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => sink
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .extend_from_slice(&chunk[..n]),
                        Err(err) if err.kind() == ErrorKind::Interrupted => {}
                        Err(err) => {
                            eprintln!("e2e: reading the example's stdout failed: {err}");
                            break;
                        }
                    }
                }
            })
            .context("spawning the stdout reader thread")?;
        app.reader = Some(reader);
        Ok(app)
    }

    /// Whether stdout so far contains `needle`.
    fn stdout_contains(&self, needle: &str) -> bool {
        let buffer = self.stdout.lock().unwrap_or_else(PoisonError::into_inner);
        buffer.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    /// A copy of stdout so far.
    fn stdout_snapshot(&self) -> Vec<u8> {
        self.stdout.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit.
    fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus> {
        terminate(&mut self.child, "example", timeout)
    }

    /// Kills the process, waits for it and for the reader, and returns all of its stdout.
    fn stop(mut self) -> Vec<u8> {
        self.kill();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.stdout_snapshot()
    }

    /// Kills the process (if still running) and reaps it.
    fn kill(&mut self) {
        kill_and_reap(&mut self.child, "example");
    }
}

/// Sends SIGTERM to `child` (`kill -TERM <pid>`) and waits up to `timeout` for it to exit;
/// `what` names the process in the errors.
pub(crate) fn terminate(child: &mut Child, what: &str, timeout: Duration) -> Result<ExitStatus> {
    if let Some(status) = child.try_wait().with_context(|| format!("checking on the {what}"))? {
        bail!("the {what} had already exited ({status}) before SIGTERM was sent");
    }
    let pid = child.id().to_string();
    eprintln!("$ kill -TERM {pid}");
    let kill = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .context("running `kill -TERM`")?;
    ensure!(kill.success(), "`kill -TERM {pid}` failed ({kill})");
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().with_context(|| format!("checking on the {what}"))? {
            return Ok(status);
        }
        ensure!(
            Instant::now() < deadline,
            "the {what} (pid {pid}) was still running {timeout:?} after SIGTERM, expected it to exit"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Kills `child` if it is still running (saying so, with `what` naming it) and reaps it.
pub(crate) fn kill_and_reap(child: &mut Child, what: &str) {
    if matches!(child.try_wait(), Ok(None)) {
        eprintln!("stopping the {what} (pid {})", child.id());
        let _ = child.kill();
    }
    let _ = child.wait();
}

impl Drop for App {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `GET /metrics` until it answers 200, the app exits, or the start-up timeout passes.
fn wait_for_metrics(app: &mut App, port: u16) -> Result<Response> {
    eprintln!("waiting up to {STARTUP_TIMEOUT:?} for http://127.0.0.1:{port}/metrics to answer 200");
    let started = Instant::now();
    loop {
        if let Some(status) = app.child.try_wait()? {
            bail!("the example exited ({status}) before /metrics answered 200");
        }
        let last = match http_get(port, "/metrics") {
            Ok(response) if response.status == 200 => {
                eprintln!("/metrics answered 200 after {:.1}s", started.elapsed().as_secs_f64());
                return Ok(response);
            }
            Ok(response) => format!("answered {}", response.status),
            Err(err) => format!("{err:#}"),
        };
        if started.elapsed() >= STARTUP_TIMEOUT {
            bail!(
                "GET http://127.0.0.1:{port}/metrics did not answer 200 within {STARTUP_TIMEOUT:?}; last attempt: {last}"
            );
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// An HTTP response: status, headers in order, and the body (chunked encoding already decoded).
#[derive(Debug)]
struct Response {
    /// The status code.
    status: u16,
    /// Header names and values, as sent.
    headers: Vec<(String, String)>,
    /// The body.
    body: Vec<u8>,
}

impl Response {
    /// The value of the first header called `name` (case-insensitive).
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path` on 127.0.0.1:port with a minimal HTTP/1.1 client (`Connection: close`).
fn http_get(port: u16, path: &str) -> Result<Response> {
    http_request(port, "GET", path, &[], None)
}

/// `method path` on 127.0.0.1:port with a minimal HTTP/1.1 client (`Connection: close`), with
/// extra request headers and an optional body (sent with `Content-Length`).
fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Response> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        let _ = write!(request, "{name}: {value}\r\n");
    }
    if let Some(body) = body {
        let _ = write!(request, "Content-Length: {}\r\n", body.len());
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    stream.write_all(&bytes)?;
    stream.flush()?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("reading the response to {method} {path}"))?;
    parse_response(&raw).with_context(|| format!("parsing the response to {method} {path}"))
}

/// Parses a complete HTTP/1.1 response as read up to the closed connection.
fn parse_response(raw: &[u8]) -> Result<Response> {
    let split = find(raw, b"\r\n\r\n").context("no end of headers (empty or truncated response)")?;
    let head = std::str::from_utf8(&raw[..split]).context("headers are not UTF-8")?;
    let rest = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    ensure!(version.starts_with("HTTP/1."), "bad status line {status_line:?}");
    let status = parts
        .next()
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .with_context(|| format!("bad header line {line:?}"))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let chunked = response
        .header("transfer-encoding")
        .and_then(|te| te.rsplit(',').next())
        .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
    response.body = if chunked {
        decode_chunked(rest)?
    } else if let Some(length) = response.header("content-length") {
        let length: usize = length
            .parse()
            .with_context(|| format!("bad Content-Length {length:?}"))?;
        ensure!(
            rest.len() >= length,
            "body truncated: Content-Length {length}, got {} bytes",
            rest.len()
        );
        rest[..length].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(response)
}

/// Decodes a `Transfer-Encoding: chunked` body (RFC 9112 section 7.1): chunks of
/// `<hex size>[;extensions]\r\n<data>\r\n`, a `0` chunk, optional trailer lines and an empty line.
fn decode_chunked(mut input: &[u8]) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = find(input, b"\r\n").context("chunked body: truncated chunk-size line")?;
        let line = std::str::from_utf8(&input[..line_end]).context("chunked body: chunk-size line is not UTF-8")?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        ensure!(
            !size_text.is_empty() && size_text.bytes().all(|b| b.is_ascii_hexdigit()),
            "chunked body: bad chunk size {line:?}"
        );
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("chunked body: chunk size {size_text:?} too large"))?;
        input = &input[line_end + 2..];
        if size == 0 {
            break;
        }
        ensure!(
            input.len() >= size.saturating_add(2),
            "chunked body: chunk of {size} bytes truncated ({} bytes left)",
            input.len()
        );
        ensure!(
            &input[size..size + 2] == b"\r\n",
            "chunked body: chunk data not followed by CRLF"
        );
        body.extend_from_slice(&input[..size]);
        input = &input[size + 2..];
    }
    // Trailer section: header lines, then an empty line.
    loop {
        let line_end = find(input, b"\r\n").context("chunked body: truncated trailer section")?;
        if line_end == 0 {
            return Ok(body);
        }
        input = &input[line_end + 2..];
    }
}

/// The offset of the first occurrence of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Runs `promtool check metrics < file`; it must exit 0 and print nothing.
fn promtool_check(promtool: &Path, file: &Path) -> Result<()> {
    eprintln!("$ promtool check metrics < {}", file.display());
    let input = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let output = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(input)
        .output()
        .context("running promtool")?;
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    ensure!(
        output.status.success() && printed.trim().is_empty(),
        "promtool check metrics {} and printed:\n{}\n(the scraped body is in {})",
        if output.status.success() {
            "exited 0 but must print nothing".to_owned()
        } else {
            format!("failed ({})", output.status)
        },
        if printed.trim().is_empty() {
            "(nothing)"
        } else {
            printed.trim_end()
        },
        file.display()
    );
    Ok(())
}

/// What the metrics check counted.
#[derive(Debug)]
struct MetricsSummary {
    /// Sample lines.
    samples: usize,
    /// `# TYPE` lines.
    families: usize,
}

/// Checks the required series exist and every sample carries the required labels.
fn check_series(body: &str) -> Result<MetricsSummary> {
    let mut samples = 0;
    let mut families = 0;
    let mut names = Vec::new();
    let mut unlabelled = Vec::new();
    for line in body.lines() {
        let line = line.trim();
        if line.starts_with("# TYPE ") {
            families += 1;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        samples += 1;
        let (name, labels) = parse_sample(line).with_context(|| format!("bad sample line {line:?}"))?;
        let has_all = REQUIRED_LABELS
            .iter()
            .all(|(key, value)| labels.iter().any(|(k, v)| k == key && v == value));
        if !has_all {
            unlabelled.push(line);
        }
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let missing: Vec<&str> = REQUIRED_SERIES
        .into_iter()
        .filter(|series| !names.iter().any(|n| n == series))
        .collect();
    ensure!(
        missing.is_empty(),
        "/metrics lacks the series {}; it has: {}",
        missing.join(", "),
        names.join(", ")
    );
    ensure!(
        unlabelled.is_empty(),
        "{} of {samples} samples lack the labels {}, for example:\n  {}",
        unlabelled.len(),
        REQUIRED_LABELS.map(|(k, v)| format!("{k}=\"{v}\"")).join(", "),
        unlabelled.iter().take(5).copied().collect::<Vec<_>>().join("\n  ")
    );
    Ok(MetricsSummary { samples, families })
}

/// Label names and values, in order.
type Labels = Vec<(String, String)>;

/// Splits a Prometheus text-format sample line into its metric name and labels (unescaped).
fn parse_sample(line: &str) -> Result<(String, Labels)> {
    split_sample(line).map(|(name, labels, _)| (name, labels))
}

/// Like [`parse_sample`], also returning the value (the first word after the labels).
pub(crate) fn parse_sample_value(line: &str) -> Result<(String, Labels, String)> {
    let (name, labels, rest) = split_sample(line)?;
    let value = rest.split_whitespace().next().unwrap_or_default().to_owned();
    Ok((name, labels, value))
}

/// [`parse_sample`]'s work: the name, the labels, and the text after them (value and timestamp).
fn split_sample(line: &str) -> Result<(String, Labels, &str)> {
    let name_end = line.find(['{', ' ', '\t']).context("no value after the metric name")?;
    let name = &line[..name_end];
    ensure!(is_metric_name(name), "invalid metric name {name:?}");
    let mut labels = Vec::new();
    let mut rest = &line[name_end..];
    if let Some(after_brace) = rest.strip_prefix('{') {
        rest = after_brace;
        loop {
            rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after_key) = rest.split_once('=').context("label without `=`")?;
            let key = key.trim();
            ensure!(is_metric_name(key) && !key.contains(':'), "invalid label name {key:?}");
            let (value, after_value) = parse_label_value(after_key.trim_start())?;
            labels.push((key.to_owned(), value));
            rest = after_value.trim_start();
            if let Some(after) = rest.strip_prefix(',') {
                rest = after;
            } else {
                ensure!(rest.starts_with('}'), "expected `,` or `}}` after a label");
            }
        }
    }
    ensure!(rest.starts_with([' ', '\t']), "no value after the labels");
    ensure!(!rest.trim().is_empty(), "no value");
    Ok((name.to_owned(), labels, rest))
}

/// Parses a quoted label value (escapes `\\`, `\"`, `\n`), returning it and the text after it.
fn parse_label_value(text: &str) -> Result<(String, &str)> {
    let mut chars = text
        .strip_prefix('"')
        .context("label value is not quoted")?
        .char_indices();
    let mut value = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &text[i + 2..])),
            '\\' => match chars.next() {
                Some((_, '\\')) => value.push('\\'),
                Some((_, '"')) => value.push('"'),
                Some((_, 'n')) => value.push('\n'),
                other => bail!("invalid escape in label value: {other:?}"),
            },
            c => value.push(c),
        }
    }
    bail!("unterminated label value")
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// What the log check found.
#[derive(Debug)]
struct LogSummary {
    /// Complete stdout lines, all valid JSON objects.
    lines: usize,
    /// Lines with the login message.
    login_lines: usize,
    /// The first of those, as written.
    first_login_line: String,
}

/// Every stdout line must be a JSON object; the login lines must carry the expected fields.
fn check_logs(stdout: &[u8], pid: u32) -> Result<LogSummary> {
    let text = std::str::from_utf8(stdout).context("stdout is not UTF-8")?;
    let (complete, partial) = match text.rfind('\n') {
        Some(end) => (Some(&text[..end]), &text[end + 1..]),
        None => (None, text),
    };
    if !partial.is_empty() {
        eprintln!("note: ignoring an unterminated last stdout line (cut off when the example was killed): {partial:?}");
    }
    let mut summary = LogSummary {
        lines: 0,
        login_lines: 0,
        first_login_line: String::new(),
    };
    for (index, line) in complete.into_iter().flat_map(|c| c.split('\n')).enumerate() {
        let number = index + 1;
        let value = json::parse(line).with_context(|| format!("stdout line {number} is not JSON: {line:?}"))?;
        ensure!(
            value.as_object().is_some(),
            "stdout line {number} is JSON but not an object: {line:?}"
        );
        let duplicates = value.duplicate_keys();
        ensure!(
            duplicates.is_empty(),
            "stdout line {number} repeats the keys {duplicates:?}: {line:?}"
        );
        summary.lines += 1;
        if value.get("message").and_then(Value::as_str) == Some(LOGIN_MESSAGE) {
            check_login_line(&value, pid).with_context(|| format!("stdout line {number}: {line}"))?;
            if summary.login_lines == 0 {
                line.clone_into(&mut summary.first_login_line);
            }
            summary.login_lines += 1;
        }
    }
    ensure!(
        summary.login_lines > 0,
        "none of the {} JSON lines on stdout has \"message\": {LOGIN_MESSAGE:?}",
        summary.lines
    );
    Ok(summary)
}

/// The fields a "User logged in" record must have.
fn check_login_line(value: &Value, pid: u32) -> Result<()> {
    let string = |key: &str| -> Result<&str> {
        value
            .get(key)
            .with_context(|| format!("missing key {key:?}"))?
            .as_str()
            .with_context(|| format!("{key:?} is not a string"))
    };
    let timestamp = string("timestamp")?;
    ensure!(
        is_rfc3339_utc(timestamp),
        "\"timestamp\" {timestamp:?} is not RFC 3339 UTC (YYYY-MM-DDTHH:MM:SS[.fraction]Z)"
    );
    for (key, expected) in [("level", "info"), ("service", "quickstart"), ("environment", "ci")] {
        let actual = string(key)?;
        ensure!(actual == expected, "{key:?} is {actual:?}, expected {expected:?}");
    }
    let logged_pid = value.get("pid").context("missing key \"pid\"")?;
    ensure!(
        logged_pid.as_u64() == Some(u64::from(pid)),
        "\"pid\" is {logged_pid:?}, expected the number {pid}"
    );
    ensure!(value.get("user_id").is_some(), "missing key \"user_id\"");
    Ok(())
}

/// Whether `text` is an RFC 3339 UTC timestamp: `YYYY-MM-DDTHH:MM:SS(.fraction)?Z`, with valid
/// ranges (day within the month, leap years, second 60 allowed for leap seconds).
fn is_rfc3339_utc(text: &str) -> bool {
    let b = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = b.get(range)?;
        digits
            .iter()
            .try_fold(0u32, |n, &d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))
    };
    let fixed = b.len() >= 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':';
    if !fixed {
        return false;
    }
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        number(0..4),
        number(5..7),
        number(8..10),
        number(11..13),
        number(14..16),
        number(17..19),
    ) else {
        return false;
    };
    let tail = &b[19..];
    let tail_ok = match tail {
        [b'Z'] => true,
        [b'.', fraction @ .., b'Z'] => !fraction.is_empty() && fraction.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 0,
    };
    tail_ok && (1..=days_in_month).contains(&day) && hour <= 23 && minute <= 59 && second <= 60
}

/// The last `n` lines of captured output, for error messages.
pub(crate) fn tail(output: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return "(the example wrote nothing to stdout)".to_owned();
    }
    let start = lines.len().saturating_sub(n);
    format!(
        "--- the example's stdout, last {} lines ---\n{}\n---",
        lines.len() - start,
        lines[start..].join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_decoding() {
        let body = decode_chunked(b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n").unwrap();
        assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.");
        assert_eq!(decode_chunked(b"0\r\n\r\n").unwrap(), b"");
        let with_trailer = decode_chunked(b"3\r\nabc\r\n0\r\nExpires: never\r\n\r\n").unwrap();
        assert_eq!(with_trailer, b"abc");
        assert_eq!(decode_chunked(b"a\r\n0123456789\r\n0\r\n\r\n").unwrap(), b"0123456789");
    }

    #[test]
    fn chunked_errors() {
        for bad in [
            &b""[..],
            b"4\r\nWiki",
            b"4\r\nWikiXX0\r\n\r\n",
            b"zz\r\nab\r\n0\r\n\r\n",
            b"\r\nab\r\n0\r\n\r\n",
            b"-1\r\n\r\n",
            b"4\r\nWiki\r\n",
            b"0\r\n",
            b"ffffffffffffffffffff\r\n",
            b"ffffffffffffffff\r\nab\r\n",
        ] {
            assert!(
                decode_chunked(bad).is_err(),
                "{:?} should be rejected",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn responses() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let response = parse_response(raw).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.header("CONTENT-TYPE"), Some("text/plain; version=0.0.4"));
        assert_eq!(response.body, b"abcde");

        let response = parse_response(b"HTTP/1.1 404 Not Found\r\ncontent-length: 3\r\n\r\nabcdef").unwrap();
        assert_eq!((response.status, &response.body[..]), (404, &b"abc"[..]));
        let response = parse_response(b"HTTP/1.0 200 OK\r\n\r\nuntil close").unwrap();
        assert_eq!(response.body, b"until close");

        assert!(parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nabc").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_response(b"SSH-2.0 hello\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 abc\r\n\r\n").is_err());
    }

    #[test]
    fn rfc3339() {
        for ok in [
            "2025-01-02T03:04:05Z",
            "2025-01-02T03:04:05.1Z",
            "2025-12-31T23:59:59.123456789Z",
            "2024-02-29T00:00:00Z",
            "2000-02-29T00:00:00Z",
            "2016-12-31T23:59:60Z",
        ] {
            assert!(is_rfc3339_utc(ok), "{ok}");
        }
        for bad in [
            "",
            "2025-01-02",
            "2025-01-02 03:04:05Z",
            "2025-01-02T03:04:05",
            "2025-01-02T03:04:05+00:00",
            "2025-01-02T03:04:05.Z",
            "2025-01-02T03:04:05.12aZ",
            "2025-01-02t03:04:05z",
            "2025-13-02T03:04:05Z",
            "2025-00-02T03:04:05Z",
            "2025-04-31T03:04:05Z",
            "2025-02-29T03:04:05Z",
            "1900-02-29T03:04:05Z",
            "2025-01-00T03:04:05Z",
            "2025-01-02T24:00:00Z",
            "2025-01-02T03:60:05Z",
            "2025-01-02T03:04:61Z",
            "+025-01-02T03:04:05Z",
            "2025-1-02T03:04:05Z",
            "2025-01-02T03:04:05ZZ",
            "2025-01-02T03:04:05.5Zx",
            "２０２５-01-02T03:04:05Z",
        ] {
            assert!(!is_rfc3339_utc(bad), "{bad} should be rejected");
        }
    }

    #[test]
    fn samples() {
        let (name, labels) =
            parse_sample(r#"request_duration_bucket{service="quickstart",le="+Inf",route="/a\"b\\c\n"} 3"#).unwrap();
        assert_eq!(name, "request_duration_bucket");
        assert_eq!(
            labels,
            [
                ("service".to_owned(), "quickstart".to_owned()),
                ("le".to_owned(), "+Inf".to_owned()),
                ("route".to_owned(), "/a\"b\\c\n".to_owned()),
            ]
        );
        assert_eq!(parse_sample("up 1 1700000000000").unwrap(), ("up".to_owned(), vec![]));
        assert_eq!(parse_sample(r#"x{a="1",} 2"#).unwrap().1.len(), 1);
        for bad in [
            "up",
            "up{a=\"1\"}",
            "9up 1",
            "x{a=1} 1",
            r#"x{a="1} 1"#,
            r#"x{a="1" b="2"} 1"#,
            "x{} ",
        ] {
            assert!(parse_sample(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn series_check() {
        let good = "\
# HELP comments_created_total Comments.
# TYPE comments_created_total counter
comments_created_total{service=\"quickstart\",environment=\"ci\",user_id=\"1\"} 1
# TYPE users_online gauge
users_online{environment=\"ci\",service=\"quickstart\",region=\"us-east\"} 42
# TYPE request_duration histogram
request_duration_bucket{service=\"quickstart\",environment=\"ci\",le=\"+Inf\"} 1
request_duration_sum{service=\"quickstart\",environment=\"ci\"} 150
request_duration_count{service=\"quickstart\",environment=\"ci\"} 1
";
        let summary = check_series(good).unwrap();
        assert_eq!((summary.samples, summary.families), (5, 3));

        let unlabelled = format!("{good}process_threads 4\n");
        let err = check_series(&unlabelled).unwrap_err().to_string();
        assert!(err.contains("process_threads 4"), "{err}");
        let missing = good.replace("users_online{", "users_online_total{");
        let err = check_series(&missing).unwrap_err().to_string();
        assert!(err.contains("lacks the series users_online"), "{err}");
    }

    #[test]
    fn log_check() {
        let login = r#"{"timestamp":"2025-01-02T03:04:05.678Z","level":"info","message":"User logged in","service":"quickstart","environment":"ci","pid":77,"user_id":123}"#;
        let other = r#"{"timestamp":"2025-01-02T03:04:05Z","level":"info","message":"started"}"#;
        let stdout = format!("{other}\n{login}\n{login}\n{{\"cut");
        let summary = check_logs(stdout.as_bytes(), 77).unwrap();
        assert_eq!((summary.lines, summary.login_lines), (3, 2));
        assert_eq!(summary.first_login_line, login);

        assert!(check_logs(stdout.as_bytes(), 78).is_err(), "wrong pid");
        assert!(
            check_logs(format!("{other}\n").as_bytes(), 77).is_err(),
            "no login line"
        );
        assert!(check_logs(format!("not json\n{login}\n").as_bytes(), 77).is_err());
        assert!(check_logs(format!("[1]\n{login}\n").as_bytes(), 77).is_err());
        assert!(check_logs(format!("\n{login}\n").as_bytes(), 77).is_err(), "empty line");
        assert!(check_logs(b"", 77).is_err());
        for (from, to) in [
            ("\"level\":\"info\"", "\"level\":\"INFO\""),
            ("\"pid\":77", "\"pid\":\"77\""),
            (",\"user_id\":123", ""),
            ("05.678Z", "05.678+00:00"),
            ("\"environment\":\"ci\"", "\"environment\":\"prod\""),
            (
                "\"service\":\"quickstart\"",
                "\"service\":\"quickstart\",\"service\":\"x\"",
            ),
        ] {
            let bad = login.replace(from, to);
            assert_ne!(bad, login);
            assert!(check_logs(format!("{bad}\n").as_bytes(), 77).is_err(), "{bad}");
        }
    }

    #[test]
    fn free_port_is_bindable() {
        let port = free_port().unwrap();
        assert_ne!(port, 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    }
}
