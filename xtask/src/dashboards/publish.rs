//! `cargo xtask dashboards publish`: uploads the checked-in dashboards (and the Datadog
//! monitors) idempotently, as `PromEx` does: running it twice leaves one copy of each.
//!
//! - Grafana: `POST /api/dashboards/db` with `overwrite: true` for each dashboard (Grafana finds
//!   the existing one by its uid), with `Authorization: Bearer $GRAFANA_TOKEN`.
//! - Datadog: lists the dashboards (`GET /api/v1/dashboard`) and, for each of ours, updates the
//!   one with the same title (`PUT /api/v1/dashboard/{id}`) or creates it (`POST`); then the same
//!   for monitors, found by name (`GET /api/v1/monitor?name=`). Authenticated with the
//!   `DD-API-KEY` and `DD-APPLICATION-KEY` headers from `DATADOG_API_KEY` and `DATADOG_APP_KEY`;
//!   the API is `https://api.$DATADOG_SITE` (default `datadoghq.com`) unless `--datadog-url`
//!   gives another.
//!
//! Secrets are only ever put in request headers: they are never printed, and an error body that
//! echoes one is redacted.

use std::fmt;
use std::fs;
use std::io::Write;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};

use super::{DATADOG_DIR, GRAFANA_DIR, MONITORS_FILE, check_up_to_date};
use crate::http::{HttpClient, HttpResponse, percent_encode};
use crate::json::{self, Value};
use crate::project_root;

/// How long one API request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Characters of an error body shown in messages.
const BODY_EXCERPT: usize = 400;

/// A secret (token or key): its `Debug` and `Display` never show it.
pub struct Secret(String);

impl Secret {
    /// Reads a secret from the environment variable `name`.
    ///
    /// # Errors
    ///
    /// When it is unset or empty (the message names the variable, never a value).
    pub fn from_env(name: &str) -> Result<Self> {
        match std::env::var(name) {
            Ok(value) if !value.trim().is_empty() => Ok(Secret(value.trim().to_owned())),
            _ => bail!("{name} is not set; it is needed to publish (it is only sent as a request header)"),
        }
    }

    /// The secret itself, for a request header.
    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where to publish, from the command line.
#[derive(Debug, Default, PartialEq, Eq)]
struct Targets {
    /// Grafana's base URL.
    grafana: Option<String>,
    /// The Grafana folder uid to put the dashboards in.
    grafana_folder: Option<String>,
    /// Whether to publish to Datadog.
    datadog: bool,
    /// The Datadog API base URL, overriding the one from `DATADOG_SITE`.
    datadog_url: Option<String>,
}

/// Parses the arguments after `publish`.
fn parse_targets(args: &[String]) -> Result<Targets> {
    let mut targets = Targets::default();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value.to_owned())),
            None => (arg.as_str(), None),
        };
        let mut value = |flag: &str| -> Result<String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => rest.next().cloned().with_context(|| format!("`{flag}` needs a value")),
            }
        };
        match flag {
            "--grafana" => targets.grafana = Some(base_url(&value(flag)?)?),
            "--grafana-folder" => targets.grafana_folder = Some(value(flag)?),
            "--datadog" if inline.is_none() => targets.datadog = true,
            "--datadog-url" => {
                targets.datadog = true;
                targets.datadog_url = Some(base_url(&value(flag)?)?);
            }
            _ => bail!(
                "unknown argument `{arg}` for `cargo xtask dashboards publish`; it takes --grafana <url>, \
                 --grafana-folder <uid>, --datadog and --datadog-url <url>"
            ),
        }
    }
    ensure!(
        targets.grafana.is_some() || targets.datadog,
        "`cargo xtask dashboards publish` needs --grafana <url> and/or --datadog"
    );
    Ok(targets)
}

/// Checks an `http://` or `https://` URL and drops trailing slashes.
fn base_url(url: &str) -> Result<String> {
    let url = url.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .with_context(|| format!("{url:?}: expected an http:// or https:// URL"))?;
    ensure!(
        !rest.is_empty() && !rest.starts_with('/'),
        "{url:?}: the URL has no host"
    );
    Ok(url.to_owned())
}

/// The Datadog API base URL of a site: `datadoghq.eu` → `https://api.datadoghq.eu`.
fn datadog_api(site: &str) -> Result<String> {
    let site = site.trim().trim_end_matches('/');
    ensure!(
        !site.is_empty() && site.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'),
        "DATADOG_SITE {site:?}: expected a site such as datadoghq.com, datadoghq.eu or us3.datadoghq.com"
    );
    Ok(format!("https://api.{site}"))
}

/// Runs `cargo xtask dashboards publish ...`.
///
/// # Errors
///
/// On bad arguments, missing secrets, stale files, or any failed API call.
pub fn run(args: &[String]) -> Result<()> {
    let targets = parse_targets(args)?;
    // Publish what CI checks: refuse files that are not what the generator makes.
    check_up_to_date().context("publish: the files to publish are stale")?;
    let client = HttpClient::new(REQUEST_TIMEOUT);
    let mut out = std::io::stdout().lock();
    if let Some(url) = &targets.grafana {
        let token = Secret::from_env("GRAFANA_TOKEN")?;
        let dashboards = load_dir(GRAFANA_DIR)?;
        publish_grafana(
            &client,
            url,
            &token,
            targets.grafana_folder.as_deref(),
            &dashboards,
            &mut out,
        )?;
    }
    if targets.datadog {
        let api = Secret::from_env("DATADOG_API_KEY")?;
        let application = Secret::from_env("DATADOG_APP_KEY")?;
        let base = match &targets.datadog_url {
            Some(url) => url.clone(),
            None => datadog_api(&std::env::var("DATADOG_SITE").unwrap_or_else(|_| "datadoghq.com".to_owned()))?,
        };
        let keys = DatadogKeys {
            api_key: api,
            app_key: application,
        };
        let dashboards = load_dir(DATADOG_DIR)?;
        let monitors = load_file(MONITORS_FILE)?;
        let monitors = monitors
            .as_array()
            .with_context(|| format!("{MONITORS_FILE}: expected a JSON array"))?
            .to_vec();
        publish_datadog(&client, &base, &keys, &dashboards, &monitors, &mut out)?;
    }
    Ok(())
}

/// The JSON files of a directory, sorted by name, parsed.
fn load_dir(dir: &str) -> Result<Vec<(String, Value)>> {
    let full = project_root().join(dir);
    let mut names: Vec<String> = fs::read_dir(&full)
        .with_context(|| format!("listing {}", full.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")))
        .filter_map(|p| Some(p.file_name()?.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    ensure!(
        !names.is_empty(),
        "{dir} holds no dashboards: run `cargo xtask dashboards`"
    );
    names
        .into_iter()
        .map(|name| {
            let path = format!("{dir}/{name}");
            load_file(&path).map(|value| (path, value))
        })
        .collect()
}

/// One JSON file, parsed.
fn load_file(path: &str) -> Result<Value> {
    let full = project_root().join(path);
    let text = fs::read_to_string(&full).with_context(|| format!("reading {}", full.display()))?;
    json::parse(&text).with_context(|| format!("parsing {}", full.display()))
}

/// Replaces every secret in `text` with `[redacted]` and cuts it to a readable length.
fn redact(text: &str, secrets: &[&Secret]) -> String {
    let mut text = text.to_owned();
    for secret in secrets {
        if !secret.expose().is_empty() {
            text = text.replace(secret.expose(), "[redacted]");
        }
    }
    if text.chars().count() > BODY_EXCERPT {
        let cut: String = text.chars().take(BODY_EXCERPT).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// Fails unless the response is 2xx; the message has the redacted body and a hint for 401/403.
fn expect_success(what: &str, response: &HttpResponse, secrets: &[&Secret], auth_hint: &str) -> Result<Value> {
    if !(200..300).contains(&response.status) {
        let hint = if matches!(response.status, 401 | 403) {
            format!(" ({auth_hint})")
        } else {
            String::new()
        };
        bail!(
            "{what}: HTTP {}{hint}: {}",
            response.status,
            redact(&response.body, secrets)
        );
    }
    if response.body.trim().is_empty() {
        return Ok(Value::Null);
    }
    json::parse(&response.body)
        .with_context(|| format!("{what}: the answer is not JSON: {}", redact(&response.body, secrets)))
}

/// Uploads Grafana dashboards with `POST /api/dashboards/db`, overwriting by uid.
///
/// # Errors
///
/// On the first failed upload.
pub fn publish_grafana(
    client: &HttpClient,
    base: &str,
    token: &Secret,
    folder: Option<&str>,
    dashboards: &[(String, Value)],
    out: &mut dyn Write,
) -> Result<()> {
    let auth = format!("Bearer {}", token.expose());
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Accept", "application/json"),
    ];
    let url = format!("{base}/api/dashboards/db");
    for (path, dashboard) in dashboards {
        let title = dashboard.get("title").and_then(Value::as_str).unwrap_or(path);
        let mut body = vec![
            ("dashboard", dashboard.clone()),
            ("overwrite", Value::Bool(true)),
            (
                "message",
                Value::str("Published by `cargo xtask dashboards publish` (generated from Vigil's metric catalogue)"),
            ),
        ];
        if let Some(folder) = folder {
            body.push(("folderUid", Value::str(folder)));
        }
        let body = Value::obj(body).to_compact();
        let what = format!("Grafana: uploading {path}");
        let response = client.send("POST", &url, &headers, Some(&body)).context(what.clone())?;
        let answer = expect_success(
            &what,
            &response,
            &[token],
            "check GRAFANA_TOKEN: a service account token with the Editor role",
        )?;
        let shown = answer.get("url").and_then(Value::as_str).unwrap_or("");
        let version = answer.get("version").and_then(Value::as_u64).unwrap_or(0);
        writeln!(out, "grafana: {title} -> {base}{shown} (version {version})")?;
    }
    Ok(())
}

/// The two Datadog keys.
pub struct DatadogKeys {
    /// `DATADOG_API_KEY`, sent as `DD-API-KEY`.
    pub api_key: Secret,
    /// `DATADOG_APP_KEY`, sent as `DD-APPLICATION-KEY`.
    pub app_key: Secret,
}

/// Uploads Datadog dashboards (matched by title) and monitors (matched by name): `PUT` to
/// update the existing one, else `POST` to create.
///
/// # Errors
///
/// On the first failed call.
pub fn publish_datadog(
    client: &HttpClient,
    base: &str,
    keys: &DatadogKeys,
    dashboards: &[(String, Value)],
    monitors: &[Value],
    out: &mut dyn Write,
) -> Result<()> {
    let headers = [
        ("DD-API-KEY", keys.api_key.expose()),
        ("DD-APPLICATION-KEY", keys.app_key.expose()),
        ("Content-Type", "application/json"),
        ("Accept", "application/json"),
    ];
    let secrets = [&keys.api_key, &keys.app_key];
    let hint = "check DATADOG_API_KEY and DATADOG_APP_KEY, and DATADOG_SITE for your site; the application key \
                needs the dashboards_write and monitors_write scopes";
    let call = |method: &str, path: &str, body: Option<&str>, what: &str| -> Result<Value> {
        let response = client
            .send(method, &format!("{base}{path}"), &headers, body)
            .with_context(|| format!("Datadog: {what}"))?;
        expect_success(&format!("Datadog: {what} ({method} {path})"), &response, &secrets, hint)
    };

    let listing = call("GET", "/api/v1/dashboard", None, "listing dashboards")?;
    let existing: Vec<(String, String)> = listing
        .get("dashboards")
        .and_then(Value::as_array)
        .context("Datadog: the dashboard list has no \"dashboards\" array")?
        .iter()
        .filter_map(|d| {
            let id = d.get("id").and_then(Value::as_str)?;
            let title = d.get("title").and_then(Value::as_str)?;
            Some((title.to_owned(), id.to_owned()))
        })
        .collect();
    for (path, dashboard) in dashboards {
        let title = dashboard
            .get("title")
            .and_then(Value::as_str)
            .with_context(|| format!("{path} has no title"))?;
        let body = dashboard.to_compact();
        let same: Vec<&str> = existing
            .iter()
            .filter(|(t, _)| t == title)
            .map(|(_, id)| id.as_str())
            .collect();
        if let Some(id) = same.first() {
            if same.len() > 1 {
                writeln!(
                    out,
                    "datadog: warning: {} dashboards are titled {title:?}; updating {id}",
                    same.len()
                )?;
            }
            let path = format!("/api/v1/dashboard/{}", percent_encode(id));
            call("PUT", &path, Some(&body), &format!("updating {title:?}"))?;
            writeln!(out, "datadog: dashboard {title:?} updated ({id})")?;
        } else {
            let created = call("POST", "/api/v1/dashboard", Some(&body), &format!("creating {title:?}"))?;
            let id = created.get("id").and_then(Value::as_str).unwrap_or("?");
            writeln!(out, "datadog: dashboard {title:?} created ({id})")?;
        }
    }

    for monitor in monitors {
        let name = monitor
            .get("name")
            .and_then(Value::as_str)
            .context("a monitor in monitors.json has no name")?;
        let found = call(
            "GET",
            &format!("/api/v1/monitor?name={}", percent_encode(name)),
            None,
            &format!("looking up monitor {name:?}"),
        )?;
        // `name=` matches substrings: keep the exact one.
        let id = found
            .as_array()
            .unwrap_or_default()
            .iter()
            .find(|m| m.get("name").and_then(Value::as_str) == Some(name))
            .and_then(|m| m.get("id"))
            .and_then(|id| match id {
                Value::Number(n) => Some(n.clone()),
                Value::String(s) => Some(s.clone()),
                _ => None,
            });
        let body = monitor.to_compact();
        if let Some(id) = id {
            call(
                "PUT",
                &format!("/api/v1/monitor/{}", percent_encode(&id)),
                Some(&body),
                &format!("updating monitor {name:?}"),
            )?;
            writeln!(out, "datadog: monitor {name:?} updated ({id})")?;
        } else {
            let created = call(
                "POST",
                "/api/v1/monitor",
                Some(&body),
                &format!("creating monitor {name:?}"),
            )?;
            let id = created.get("id").map(Value::to_compact).unwrap_or_default();
            writeln!(out, "datadog: monitor {name:?} created ({id})")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead as _, BufReader, Read as _};
    use std::net::{Ipv4Addr, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;

    use super::*;
    use crate::dashboards::{generate, thresholds::Thresholds};
    use crate::http::percent_decode;

    /// One request the test server received.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        path: String,
        query: String,
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Seen {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    type Handler = dyn Fn(&Seen) -> (u16, String) + Send + Sync;

    /// An HTTP/1.1 server on 127.0.0.1 that records requests and answers with `handler`.
    struct TestServer {
        port: u16,
        seen: Arc<Mutex<Vec<Seen>>>,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl TestServer {
        fn start(handler: Box<Handler>) -> Self {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            let port = listener.local_addr().unwrap().port();
            let seen = Arc::new(Mutex::new(Vec::new()));
            let stop = Arc::new(AtomicBool::new(false));
            let (seen2, stop2) = (Arc::clone(&seen), Arc::clone(&stop));
            let thread = std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    if let Some(request) = read_request(&stream) {
                        let (status, body) = handler(&request);
                        seen2.lock().unwrap().push(request);
                        let mut stream = stream;
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                }
            });
            TestServer {
                port,
                seen,
                stop,
                thread: Some(thread),
            }
        }

        fn url(&self) -> String {
            format!("http://127.0.0.1:{}", self.port)
        }

        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    impl Drop for TestServer {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    /// Reads one request: request line, headers, and a `Content-Length` body.
    fn read_request(stream: &TcpStream) -> Option<Seen> {
        stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let mut parts = line.split_whitespace();
        let method = parts.next()?.to_owned();
        let target = parts.next()?.to_owned();
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).ok()?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (k, v) = header.split_once(':')?;
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        let length: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        Some(Seen {
            method,
            path: path.to_owned(),
            query: query.to_owned(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    fn generated(dir: &str) -> Vec<(String, Value)> {
        generate(&Thresholds::default())
            .into_iter()
            .filter(|(p, _)| p.starts_with(dir))
            .map(|(p, c)| (p, json::parse(&c).unwrap()))
            .collect()
    }

    fn monitors() -> Vec<Value> {
        let files = generate(&Thresholds::default());
        let text = &files.iter().find(|(p, _)| p == MONITORS_FILE).unwrap().1;
        json::parse(text).unwrap().as_array().unwrap().to_vec()
    }

    const TOKEN: &str = "glsa_TestToken_0123456789abcdef";
    const API_KEY: &str = "0123456789abcdef0123456789abcdef";
    const APP_KEY: &str = "fedcba9876543210fedcba9876543210fedcba98";

    #[test]
    fn grafana_overwrites_by_uid() {
        let server = TestServer::start(Box::new(|req| {
            let uid = json::parse(&req.body)
                .ok()
                .and_then(|b| {
                    b.get("dashboard")
                        .and_then(|d| d.get("uid"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .unwrap_or_default();
            (
                200,
                format!(r#"{{"id":7,"uid":"{uid}","url":"/d/{uid}/x","status":"success","version":3}}"#),
            )
        }));
        let dashboards = generated(GRAFANA_DIR);
        let mut out = Vec::new();
        let token = Secret(TOKEN.to_owned());
        publish_grafana(
            &HttpClient::new(REQUEST_TIMEOUT),
            &server.url(),
            &token,
            Some("vigil"),
            &dashboards,
            &mut out,
        )
        .unwrap();

        let seen = server.seen();
        assert_eq!(seen.len(), dashboards.len());
        for (req, (_, dashboard)) in seen.iter().zip(&dashboards) {
            assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", "/api/dashboards/db"));
            assert_eq!(req.header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));
            assert_eq!(req.header("content-type"), Some("application/json"));
            let body = json::parse(&req.body).unwrap();
            assert_eq!(body.get("overwrite"), Some(&Value::Bool(true)));
            assert_eq!(body.get("folderUid").and_then(Value::as_str), Some("vigil"));
            let sent = body.get("dashboard").unwrap();
            assert_eq!(sent, dashboard, "the dashboard is sent as generated");
            assert_eq!(sent.get("id"), Some(&Value::Null), "id null: Grafana matches by uid");
            assert!(
                sent.get("uid")
                    .and_then(Value::as_str)
                    .is_some_and(|u| u.starts_with("vigil-"))
            );
        }
        let printed = String::from_utf8(out).unwrap();
        assert_eq!(printed.lines().count(), dashboards.len(), "{printed}");
        assert!(printed.contains("/d/vigil-database/x (version 3)"), "{printed}");
        assert!(!printed.contains(TOKEN));
        assert_eq!(format!("{token:?} {token}"), "Secret([redacted]) [redacted]");
    }

    #[test]
    fn grafana_errors_name_the_status_not_the_token() {
        let server = TestServer::start(Box::new(|req| {
            let echoed = req.header("authorization").unwrap_or_default().to_owned();
            (401, format!(r#"{{"message":"invalid API key: {echoed}"}}"#))
        }));
        let mut out = Vec::new();
        let err = publish_grafana(
            &HttpClient::new(REQUEST_TIMEOUT),
            &server.url(),
            &Secret(TOKEN.to_owned()),
            None,
            &generated(GRAFANA_DIR),
            &mut out,
        )
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("HTTP 401") && text.contains("GRAFANA_TOKEN"), "{text}");
        assert!(text.contains("[redacted]") && !text.contains(TOKEN), "{text}");
        assert_eq!(server.seen().len(), 1, "stops at the first failure");
    }

    #[test]
    fn datadog_updates_by_title_and_name_else_creates() {
        let dashboards = generated(DATADOG_DIR);
        let monitors = monitors();
        let existing_monitor = monitors[1].get("name").and_then(Value::as_str).unwrap().to_owned();
        let existing = existing_monitor.clone();
        let server = TestServer::start(Box::new(move |req| {
            match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/api/v1/dashboard") => (
                200,
                r#"{"dashboards":[{"id":"abc-def-ghi","title":"Vigil / Database performance"},{"id":"zzz-zzz-zzz","title":"Someone else's"}]}"#
                    .to_owned(),
            ),
            ("PUT", "/api/v1/dashboard/abc-def-ghi") => (200, r#"{"id":"abc-def-ghi"}"#.to_owned()),
            ("POST", "/api/v1/dashboard") => (200, r#"{"id":"new-das-hbd"}"#.to_owned()),
            ("GET", "/api/v1/monitor") => {
                let name = req.query.strip_prefix("name=").map(percent_decode).unwrap_or_default();
                if name == existing {
                    let copy = format!("{existing} (copy)");
                    (
                        200,
                        format!(
                            r#"[{{"id":41,"name":{}}},{{"id":42,"name":{}}}]"#,
                            Value::str(copy).to_compact(),
                            Value::str(existing.clone()).to_compact()
                        ),
                    )
                } else {
                    (200, "[]".to_owned())
                }
            }
            ("PUT", "/api/v1/monitor/42") => (200, r#"{"id":42}"#.to_owned()),
            ("POST", "/api/v1/monitor") => (200, r#"{"id":100}"#.to_owned()),
            _ => (404, r#"{"errors":["not found"]}"#.to_owned()),
        }
        }));
        let keys = DatadogKeys {
            api_key: Secret(API_KEY.to_owned()),
            app_key: Secret(APP_KEY.to_owned()),
        };
        let mut out = Vec::new();
        publish_datadog(
            &HttpClient::new(REQUEST_TIMEOUT),
            &server.url(),
            &keys,
            &dashboards,
            &monitors,
            &mut out,
        )
        .unwrap();

        let seen = server.seen();
        for req in &seen {
            assert_eq!(req.header("dd-api-key"), Some(API_KEY), "{req:?}");
            assert_eq!(req.header("dd-application-key"), Some(APP_KEY), "{req:?}");
        }
        let calls: Vec<String> = seen.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
        assert_eq!(calls[0], "GET /api/v1/dashboard");
        let dashboard_calls = &seen[1..=dashboards.len()];
        for (req, (_, dashboard)) in dashboard_calls.iter().zip(&dashboards) {
            let title = dashboard.get("title").and_then(Value::as_str).unwrap();
            let expected = if title == "Vigil / Database performance" {
                "PUT /api/v1/dashboard/abc-def-ghi"
            } else {
                "POST /api/v1/dashboard"
            };
            assert_eq!(format!("{} {}", req.method, req.path), expected, "{title}");
            assert_eq!(req.header("content-type"), Some("application/json"));
            let body = json::parse(&req.body).unwrap();
            assert_eq!(&body, dashboard);
            assert_eq!(body.get("layout_type").and_then(Value::as_str), Some("ordered"));
            assert!(
                body.get("widgets")
                    .and_then(Value::as_array)
                    .is_some_and(|w| !w.is_empty())
            );
        }
        let monitor_calls = &seen[1 + dashboards.len()..];
        assert_eq!(monitor_calls.len(), 2 * monitors.len());
        for (pair, monitor) in monitor_calls.chunks(2).zip(&monitors) {
            let name = monitor.get("name").and_then(Value::as_str).unwrap();
            assert_eq!(pair[0].method, "GET");
            assert_eq!(pair[0].path, "/api/v1/monitor");
            assert_eq!(percent_decode(pair[0].query.strip_prefix("name=").unwrap()), name);
            let expected = if name == existing_monitor {
                "PUT /api/v1/monitor/42"
            } else {
                "POST /api/v1/monitor"
            };
            assert_eq!(format!("{} {}", pair[1].method, pair[1].path), expected, "{name}");
            let body = json::parse(&pair[1].body).unwrap();
            assert_eq!(&body, monitor);
            for key in ["name", "type", "query", "message", "options"] {
                assert!(body.get(key).is_some(), "monitor body lacks {key}");
            }
        }
        let printed = String::from_utf8(out).unwrap();
        assert!(
            printed.contains("dashboard \"Vigil / Database performance\" updated (abc-def-ghi)"),
            "{printed}"
        );
        assert!(printed.contains("updated (42)"), "{printed}");
        assert!(!printed.contains(API_KEY) && !printed.contains(APP_KEY));
    }

    #[test]
    fn datadog_auth_errors_are_explained_and_redacted() {
        let server = TestServer::start(Box::new(|req| {
            (
                403,
                format!(
                    r#"{{"errors":["Forbidden for key {}"]}}"#,
                    req.header("dd-application-key").unwrap_or_default()
                ),
            )
        }));
        let keys = DatadogKeys {
            api_key: Secret(API_KEY.to_owned()),
            app_key: Secret(APP_KEY.to_owned()),
        };
        let err = publish_datadog(
            &HttpClient::new(REQUEST_TIMEOUT),
            &server.url(),
            &keys,
            &generated(DATADOG_DIR),
            &monitors(),
            &mut Vec::new(),
        )
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("HTTP 403") && text.contains("DATADOG_APP_KEY"), "{text}");
        assert!(!text.contains(APP_KEY) && !text.contains(API_KEY), "{text}");
    }

    #[test]
    fn unreachable_server_is_an_error() {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = publish_grafana(
            &HttpClient::new(Duration::from_secs(5)),
            &format!("http://127.0.0.1:{port}"),
            &Secret(TOKEN.to_owned()),
            None,
            &generated(GRAFANA_DIR),
            &mut Vec::new(),
        )
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("/api/dashboards/db") && !text.contains(TOKEN), "{text}");
    }

    #[test]
    fn arguments_and_sites() {
        let args = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(parse_targets(&args(&[])).is_err());
        assert!(parse_targets(&args(&["--grafana"])).is_err());
        assert!(parse_targets(&args(&["--grafana", "grafana.local"])).is_err());
        assert!(parse_targets(&args(&["--datadog=yes"])).is_err());
        assert_eq!(
            parse_targets(&args(&[
                "--grafana=https://g.example/",
                "--grafana-folder",
                "ops",
                "--datadog"
            ]))
            .unwrap(),
            Targets {
                grafana: Some("https://g.example".to_owned()),
                grafana_folder: Some("ops".to_owned()),
                datadog: true,
                datadog_url: None,
            }
        );
        let t = parse_targets(&args(&["--datadog-url", "http://127.0.0.1:9"])).unwrap();
        assert!(t.datadog && t.datadog_url.as_deref() == Some("http://127.0.0.1:9"));
        assert_eq!(datadog_api("datadoghq.com").unwrap(), "https://api.datadoghq.com");
        assert_eq!(
            datadog_api("us3.datadoghq.com").unwrap(),
            "https://api.us3.datadoghq.com"
        );
        assert!(datadog_api("evil.com/x?").is_err());
        assert!(datadog_api("").is_err());
    }
}
