//! The finished-span model handed from the layer to the sender, and its Datadog wire form:
//! the v0.4 trace payload in msgpack.
//!
//! The wire span has the fields of datadog-apm-sync's `RawSpan` (`service`, `name`,
//! `resource`, `trace_id`, `span_id`, `parent_id`, `start`, `duration`, `error`, `meta`,
//! `metrics`, `type`), with the
//! types the agent's v0.4 decoder wants: ids as u64, start and duration as i64 nanoseconds,
//! error as i32, meta as string to string, metrics as string to f64.

use std::borrow::Cow;
use std::convert::Infallible;

use rmp::encode::{ByteBuf, ValueWriteError};
use tracing_core::Metadata;

use crate::fields::{FieldRef, Fields, cut};
use crate::ids;

/// The target of vigil-http's request span.
pub const HTTP_SPAN_TARGET: &str = "vigil::http";
/// The name of vigil-http's request span.
pub const HTTP_SPAN_NAME: &str = "request";

/// The longest `resource` sent, in bytes (the agent truncates at 5,000).
const MAX_RESOURCE: usize = 5_000;
/// The longest meta key or span name sent, in bytes.
const MAX_KEY: usize = 200;

/// `_sampling_priority_v1`: the trace's sampling decision, on the first span of a chunk.
pub(crate) const SAMPLING_PRIORITY_KEY: &str = "_sampling_priority_v1";
/// `_dd.top_level`: set to 1 on the local root span.
pub(crate) const TOP_LEVEL_KEY: &str = "_dd.top_level";
/// `_dd.p.tid`: the upper 64 bits of the trace id, on the first span of a chunk.
pub(crate) const TID_KEY: &str = "_dd.p.tid";

/// What a finished span was made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A `tracing` span.
    Span,
    /// One `sqlx::query` event, turned into a finished child span.
    SqlxQuery,
}

/// A span that has ended, as the layer hands it to the sender: the raw field values, mapped
/// to Datadog's names only on the sender thread.
#[derive(Debug)]
pub(crate) struct FinishedSpan {
    pub(crate) metadata: &'static Metadata<'static>,
    pub(crate) kind: Kind,
    pub(crate) span_id: u64,
    pub(crate) parent_id: u64,
    /// Start, in nanoseconds since the unix epoch.
    pub(crate) start: i64,
    /// Duration in nanoseconds.
    pub(crate) duration: i64,
    /// The span has no local parent: its chunk's `_dd.top_level` span.
    pub(crate) local_root: bool,
    /// An ERROR event happened inside it (the `error` field is looked at when encoding).
    pub(crate) error: bool,
    pub(crate) fields: Fields,
}

/// The spans of one trace sent together: the whole local trace when its root closed, or the
/// spans that closed after it.
#[derive(Debug)]
pub(crate) struct Chunk {
    pub(crate) trace_id: u128,
    pub(crate) priority: i8,
    pub(crate) spans: Vec<FinishedSpan>,
}

/// The values every span carries, and the settings of the mapping.
#[derive(Clone, Debug)]
pub(crate) struct ServiceInfo {
    pub(crate) service: String,
    pub(crate) env: String,
    pub(crate) version: String,
    pub(crate) pid: u32,
    pub(crate) db_system: Option<String>,
    pub(crate) max_statement_len: usize,
}

/// One span in Datadog's v0.4 shape.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct WireSpan<'a> {
    pub(crate) service: &'a str,
    pub(crate) name: Cow<'a, str>,
    pub(crate) resource: Cow<'a, str>,
    pub(crate) r#type: Option<Cow<'a, str>>,
    pub(crate) trace_id: u64,
    pub(crate) span_id: u64,
    pub(crate) parent_id: u64,
    pub(crate) start: i64,
    pub(crate) duration: i64,
    pub(crate) error: i32,
    pub(crate) meta: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub(crate) metrics: Vec<(Cow<'a, str>, f64)>,
}

impl<'a> WireSpan<'a> {
    fn set_meta(&mut self, key: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) {
        let key = key.into();
        let value = value.into();
        if let Some(slot) = self.meta.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            self.meta.push((key, value));
        }
    }

    fn meta_absent(&self, key: &str) -> bool {
        !self.meta.iter().any(|(k, _)| k == key)
    }

    fn set_metric(&mut self, key: impl Into<Cow<'a, str>>, value: f64) {
        let key = key.into();
        if let Some(slot) = self.metrics.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            self.metrics.push((key, value));
        }
    }
}

/// Field names the mapping reads itself instead of copying them into meta or metrics.
fn is_control_field(name: &str) -> bool {
    matches!(name, "error" | "resource" | "otel.name" | "span.type" | "otel.kind")
}

/// Maps one finished span to its wire form. `first` marks the first span of its chunk.
pub(crate) fn to_wire<'a>(span: &'a FinishedSpan, chunk: &Chunk, info: &'a ServiceInfo, first: bool) -> WireSpan<'a> {
    let md = span.metadata;
    let mut wire = WireSpan {
        service: &info.service,
        name: Cow::Borrowed(md.name()),
        resource: Cow::Borrowed(md.name()),
        r#type: None,
        trace_id: ids::low(chunk.trace_id),
        span_id: span.span_id,
        parent_id: span.parent_id,
        start: span.start,
        duration: span.duration.max(0),
        error: i32::from(span.error),
        meta: Vec::with_capacity(span.fields.iter().count() + 4),
        metrics: Vec::new(),
    };
    let fields = &span.fields;
    let mut consumed: &[&str] = &[];
    match span.kind {
        Kind::SqlxQuery => {
            map_sqlx_query(&mut wire, fields, info);
            consumed = &[
                "summary",
                "db.statement",
                "rows_affected",
                "rows_returned",
                "elapsed",
                "elapsed_secs",
            ];
        }
        Kind::Span if md.target() == HTTP_SPAN_TARGET && md.name() == HTTP_SPAN_NAME => {
            map_http_request(&mut wire, fields);
            consumed = &["method", "route", "request_id"];
        }
        Kind::Span => {}
    }
    for (name, value) in fields.iter() {
        if consumed.contains(&name) {
            continue;
        }
        match (name, value) {
            ("error", FieldRef::Text(t)) => {
                wire.error = 1;
                if wire.meta_absent("error.message") {
                    wire.set_meta("error.message", t);
                }
            }
            ("error", FieldRef::Bool(b)) => wire.error |= i32::from(b),
            ("resource" | "otel.name", FieldRef::Text(t)) if !t.is_empty() => wire.resource = Cow::Borrowed(t),
            ("span.type", FieldRef::Text(t)) if !t.is_empty() => wire.r#type = Some(Cow::Borrowed(t)),
            ("otel.kind", FieldRef::Text(t)) => wire.set_meta("span.kind", t.to_ascii_lowercase()),
            ("status", v) if wire.meta.iter().any(|(k, _)| k == "http.status_code") && v.as_u64().is_some() => {}
            (name, _) if is_control_field(name) => {}
            (name, FieldRef::Text(t)) => wire.set_meta(cut(name, MAX_KEY), t),
            (name, FieldRef::Bool(b)) => wire.set_meta(cut(name, MAX_KEY), if b { "true" } else { "false" }),
            (name, v) => {
                if let Some(f) = v.as_f64() {
                    wire.set_metric(cut(name, MAX_KEY), f);
                }
            }
        }
    }
    if !info.env.is_empty() {
        wire.set_meta("env", info.env.as_str());
    }
    if !info.version.is_empty() {
        wire.set_meta("version", info.version.as_str());
    }
    if span.local_root {
        wire.set_metric(TOP_LEVEL_KEY, 1.0);
        wire.set_metric("process_id", f64::from(info.pid));
    }
    if first {
        wire.set_metric(SAMPLING_PRIORITY_KEY, f64::from(chunk.priority));
        if let Some(tid) = ids::tid_tag(chunk.trace_id) {
            wire.set_meta(TID_KEY, String::from_utf8_lossy(&tid).into_owned());
        }
    }
    wire.resource = match wire.resource {
        Cow::Borrowed(r) => Cow::Borrowed(cut(r, MAX_RESOURCE)),
        Cow::Owned(r) => Cow::Owned(cut(&r, MAX_RESOURCE).to_owned()),
    };
    wire
}

/// vigil-http's request span: `http.request`, type `web`, resource `METHOD /route`.
fn map_http_request<'a>(wire: &mut WireSpan<'a>, fields: &'a Fields) {
    let method = fields.text("method").filter(|m| !m.is_empty());
    let route = fields.text("route").filter(|r| !r.is_empty());
    wire.name = Cow::Borrowed("http.request");
    wire.r#type = Some(Cow::Borrowed("web"));
    wire.resource = match (method, route) {
        (Some(m), Some(r)) => Cow::Owned(format!("{m} {r}")),
        (Some(m), None) => Cow::Borrowed(m),
        (None, Some(r)) => Cow::Borrowed(r),
        (None, None) => Cow::Borrowed("http.request"),
    };
    wire.set_meta("span.kind", "server");
    if let Some(m) = method {
        wire.set_meta("http.method", m);
    }
    if let Some(r) = route {
        wire.set_meta("http.route", r);
    }
    if let Some(id) = fields.text("request_id") {
        wire.set_meta("http.request_id", id);
    }
    if let Some(status) = fields.get("status").and_then(FieldRef::as_u64) {
        wire.set_meta("http.status_code", status.to_string());
        if status >= 500 {
            wire.error = 1;
        }
    }
}

/// sqlx's query event: `sqlx.query`, type `sql`, resource the normalised statement.
fn map_sqlx_query<'a>(wire: &mut WireSpan<'a>, fields: &'a Fields, info: &'a ServiceInfo) {
    let statement = fields.text("db.statement").filter(|s| !s.trim().is_empty());
    let sql = statement.or_else(|| fields.text("summary")).unwrap_or_default();
    wire.name = Cow::Borrowed("sqlx.query");
    wire.r#type = Some(Cow::Borrowed("sql"));
    let normalized = vigil_db::normalize(sql, info.max_statement_len);
    wire.resource = if normalized.is_empty() {
        Cow::Borrowed("sqlx.query")
    } else {
        Cow::Owned(normalized)
    };
    wire.set_meta("span.kind", "client");
    wire.set_meta("component", "sqlx");
    if let Some(system) = &info.db_system {
        wire.set_meta("db.system", system.as_str());
    }
    let classified = vigil_db::classify(sql);
    wire.set_meta("db.operation", classified.operation.as_str());
    if let Some(source) = &classified.source {
        wire.set_meta("db.sql.table", source.as_str().to_owned());
    }
    for (field, metric) in [
        ("rows_affected", "db.rows_affected"),
        ("rows_returned", "db.rows_returned"),
    ] {
        if let Some(v) = fields.get(field).and_then(FieldRef::as_f64) {
            wire.set_metric(metric, v);
        }
    }
}

/// Writes a payload: an array of traces, each an array of spans. The array header is the
/// fixed-size 32-bit form, so chunks can be appended before their count is known.
#[derive(Debug, Default)]
pub(crate) struct Payload {
    buf: ByteBuf,
    traces: u32,
    spans: u64,
    /// The length and span count before the last [`push`](Self::push).
    before_last: (usize, u64),
}

impl Payload {
    /// Starts a new payload in the reused buffer.
    pub(crate) fn clear(&mut self) {
        let bytes = self.buf.as_mut_vec();
        bytes.clear();
        bytes.extend_from_slice(&[rmp::Marker::Array32.to_u8(), 0, 0, 0, 0]);
        self.traces = 0;
        self.spans = 0;
    }

    /// Appends one chunk as one trace.
    pub(crate) fn push(&mut self, chunk: &Chunk, info: &ServiceInfo) {
        if self.buf.as_slice().is_empty() {
            self.clear();
        }
        self.before_last = (self.buf.as_slice().len(), self.spans);
        let n = u32::try_from(chunk.spans.len()).unwrap_or(u32::MAX);
        infallible(rmp::encode::write_array_len(&mut self.buf, n));
        // The local root first: it carries the chunk's tags.
        let roots = chunk.spans.iter().filter(|s| s.local_root);
        let others = chunk.spans.iter().filter(|s| !s.local_root);
        for (i, span) in roots.chain(others).take(n as usize).enumerate() {
            write_span(&mut self.buf, &to_wire(span, chunk, info, i == 0));
        }
        self.traces += 1;
        self.spans += u64::from(n);
        let count = self.traces.to_be_bytes();
        self.buf.as_mut_vec()[1..5].copy_from_slice(&count);
    }

    /// Takes the last pushed chunk out again.
    pub(crate) fn undo_last(&mut self) {
        let (len, spans) = self.before_last;
        if self.traces == 0 || len < 5 {
            return;
        }
        self.buf.as_mut_vec().truncate(len);
        self.spans = spans;
        self.traces -= 1;
        let count = self.traces.to_be_bytes();
        self.buf.as_mut_vec()[1..5].copy_from_slice(&count);
    }

    /// The encoded payload.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.buf.as_slice()
    }

    /// Traces in the payload.
    pub(crate) fn traces(&self) -> u32 {
        self.traces
    }

    /// Spans in the payload.
    pub(crate) fn spans(&self) -> u64 {
        self.spans
    }

    /// Shrinks the buffer after an unusually large payload.
    pub(crate) fn shrink(&mut self, keep: usize) {
        let bytes = self.buf.as_mut_vec();
        if bytes.capacity() > keep {
            bytes.truncate(0);
            bytes.shrink_to(keep);
        }
    }
}

#[allow(clippy::needless_pass_by_value)] // Consumes the result: nothing is left to use.
fn infallible<T>(r: Result<T, ValueWriteError<Infallible>>) {
    match r {
        Ok(_) => {}
        Err(ValueWriteError::InvalidMarkerWrite(e) | ValueWriteError::InvalidDataWrite(e)) => match e {},
    }
}

fn write_str(buf: &mut ByteBuf, s: &str) {
    // Every string was cut well below 4 GiB; `cut` keeps the encoding valid regardless.
    infallible(rmp::encode::write_str(buf, cut(s, u32::MAX as usize)));
}

fn write_uint(buf: &mut ByteBuf, v: u64) {
    infallible(rmp::encode::write_uint(buf, v));
}

fn write_sint(buf: &mut ByteBuf, v: i64) {
    infallible(rmp::encode::write_sint(buf, v));
}

fn write_map_len(buf: &mut ByteBuf, n: usize) {
    infallible(rmp::encode::write_map_len(buf, u32::try_from(n).unwrap_or(u32::MAX)));
}

/// Writes one span as a msgpack map.
pub(crate) fn write_span(buf: &mut ByteBuf, span: &WireSpan<'_>) {
    write_map_len(buf, 11 + usize::from(span.r#type.is_some()));
    write_str(buf, "service");
    write_str(buf, span.service);
    write_str(buf, "name");
    write_str(buf, cut(&span.name, MAX_KEY));
    write_str(buf, "resource");
    write_str(buf, &span.resource);
    if let Some(t) = &span.r#type {
        write_str(buf, "type");
        write_str(buf, cut(t, MAX_KEY));
    }
    write_str(buf, "trace_id");
    write_uint(buf, span.trace_id);
    write_str(buf, "span_id");
    write_uint(buf, span.span_id);
    write_str(buf, "parent_id");
    write_uint(buf, span.parent_id);
    write_str(buf, "start");
    write_sint(buf, span.start);
    write_str(buf, "duration");
    write_sint(buf, span.duration);
    write_str(buf, "error");
    write_sint(buf, i64::from(span.error));
    write_str(buf, "meta");
    write_map_len(buf, span.meta.len());
    for (k, v) in &span.meta {
        write_str(buf, k);
        write_str(buf, v);
    }
    write_str(buf, "metrics");
    write_map_len(buf, span.metrics.len());
    for (k, v) in &span.metrics {
        write_str(buf, k);
        infallible(rmp::encode::write_f64(buf, *v));
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // The metrics compared are small integers, exact in f64.
mod tests {
    use std::collections::HashMap;

    use serde::Deserialize;
    use tracing_core::callsite::DefaultCallsite;
    use tracing_core::field::FieldSet;
    use tracing_core::{Kind as CallsiteKind, Level};

    use super::*;
    use crate::fields::Value;

    #[derive(Debug, Deserialize)]
    struct Decoded {
        service: String,
        name: String,
        resource: String,
        #[serde(default)]
        r#type: Option<String>,
        trace_id: u64,
        span_id: u64,
        parent_id: u64,
        start: i64,
        duration: i64,
        error: i32,
        meta: HashMap<String, String>,
        metrics: HashMap<String, f64>,
    }

    static HTTP_CS: DefaultCallsite = DefaultCallsite::new(&HTTP_META);
    static HTTP_META: Metadata<'static> = Metadata::new(
        "request",
        "vigil::http",
        Level::INFO,
        None,
        None,
        None,
        FieldSet::new(
            &["request_id", "method", "route", "status"],
            tracing_core::identify_callsite!(&HTTP_CS),
        ),
        CallsiteKind::SPAN,
    );
    static Q_CS: DefaultCallsite = DefaultCallsite::new(&Q_META);
    static Q_META: Metadata<'static> = Metadata::new(
        "event",
        "sqlx::query",
        Level::DEBUG,
        None,
        None,
        None,
        FieldSet::new(&["summary"], tracing_core::identify_callsite!(&Q_CS)),
        CallsiteKind::EVENT,
    );
    static G_CS: DefaultCallsite = DefaultCallsite::new(&G_META);
    static G_META: Metadata<'static> = Metadata::new(
        "load_user",
        "app",
        Level::INFO,
        None,
        None,
        None,
        FieldSet::new(&["user"], tracing_core::identify_callsite!(&G_CS)),
        CallsiteKind::SPAN,
    );

    fn info() -> ServiceInfo {
        ServiceInfo {
            service: "api".into(),
            env: "test".into(),
            version: "1.2.3".into(),
            pid: 42,
            db_system: Some("sqlite".into()),
            max_statement_len: 1000,
        }
    }

    fn span(metadata: &'static Metadata<'static>, kind: Kind, local_root: bool, fields: Fields) -> FinishedSpan {
        FinishedSpan {
            metadata,
            kind,
            span_id: 7,
            parent_id: if local_root { 0 } else { 3 },
            start: 1_700_000_000_000_000_000,
            duration: 1500,
            local_root,
            error: false,
            fields,
        }
    }

    fn decode(bytes: &[u8]) -> Vec<Vec<Decoded>> {
        rmp_serde::from_slice(bytes).expect("a valid v0.4 payload")
    }

    #[test]
    fn http_span_mapping() {
        let mut f = Fields::default();
        f.set_str("request_id", "r-1");
        f.set_str("method", "GET");
        f.set_str("route", "/api/videos/{id}");
        f.set("status", Value::U64(503));
        f.set("cache_hits", Value::I64(3));
        f.set("cached", Value::Bool(true));
        let chunk = Chunk {
            trace_id: (0x6543_21ab_u128 << 96) | 0x63,
            priority: 1,
            spans: vec![span(&HTTP_META, Kind::Span, true, f)],
        };
        let mut payload = Payload::default();
        payload.clear();
        payload.push(&chunk, &info());
        let traces = decode(payload.bytes());
        let s = &traces[0][0];
        assert_eq!(s.name, "http.request");
        assert_eq!(s.resource, "GET /api/videos/{id}");
        assert_eq!(s.r#type.as_deref(), Some("web"));
        assert_eq!((s.trace_id, s.span_id, s.parent_id), (0x63, 7, 0));
        assert_eq!((s.start, s.duration, s.error), (1_700_000_000_000_000_000, 1500, 1));
        assert_eq!(s.service, "api");
        for (k, v) in [
            ("http.method", "GET"),
            ("http.route", "/api/videos/{id}"),
            ("http.status_code", "503"),
            ("http.request_id", "r-1"),
            ("span.kind", "server"),
            ("env", "test"),
            ("version", "1.2.3"),
            ("cached", "true"),
            ("_dd.p.tid", "654321ab00000000"),
        ] {
            assert_eq!(s.meta.get(k).map(String::as_str), Some(v), "{k}");
        }
        assert!(!s.meta.contains_key("status") && !s.meta.contains_key("method"));
        assert_eq!(s.metrics["cache_hits"], 3.0);
        assert_eq!(s.metrics["_sampling_priority_v1"], 1.0);
        assert_eq!(s.metrics["_dd.top_level"], 1.0);
        assert_eq!(s.metrics["process_id"], 42.0);
    }

    #[test]
    fn sqlx_query_mapping() {
        let mut f = Fields::default();
        f.set_str("summary", "SELECT * FROM videos WHERE id = 'x1' AND n IN (1, 2)");
        f.set_str("db.statement", "");
        f.set("rows_returned", Value::U64(2));
        f.set("rows_affected", Value::U64(0));
        f.set("elapsed_secs", Value::F64(0.001));
        let chunk = Chunk {
            trace_id: 5,
            priority: 2,
            spans: vec![span(&Q_META, Kind::SqlxQuery, false, f)],
        };
        let mut payload = Payload::default();
        payload.push(&chunk, &info());
        let s = &decode(payload.bytes())[0][0];
        assert_eq!(s.name, "sqlx.query");
        assert_eq!(s.resource, "SELECT * FROM videos WHERE id = ? AND n IN (?)");
        assert_eq!(s.r#type.as_deref(), Some("sql"));
        assert_eq!(s.meta["db.system"], "sqlite");
        assert_eq!(s.meta["db.operation"], "select");
        assert_eq!(s.meta["db.sql.table"], "videos");
        assert_eq!(s.meta["span.kind"], "client");
        assert_eq!(s.metrics["db.rows_returned"], 2.0);
        assert!(!s.meta.values().any(|v| v.contains("x1")), "no literal survives");
        // First span of a chunk without its root: the priority, no top-level mark, and no
        // `_dd.p.tid` for a 64-bit trace id.
        assert_eq!(s.metrics["_sampling_priority_v1"], 2.0);
        assert!(!s.metrics.contains_key("_dd.top_level"));
        assert!(!s.meta.contains_key("_dd.p.tid"));
    }

    #[test]
    fn generic_span_mapping_and_errors() {
        let mut f = Fields::default();
        f.set_str("user", "ann");
        f.set_str("resource", "load_user ann");
        f.set_str("span.type", "cache");
        f.set_str("error", "not found");
        f.set_str("error.type", "NotFound");
        let mut root = span(&G_META, Kind::Span, true, Fields::default());
        root.span_id = 3;
        let mut child = span(&G_META, Kind::Span, false, f);
        child.error = true;
        let chunk = Chunk {
            trace_id: 11,
            priority: 1,
            spans: vec![child, root],
        };
        let mut payload = Payload::default();
        payload.push(&chunk, &info());
        payload.push(&chunk, &info());
        assert_eq!((payload.traces(), payload.spans()), (2, 4));
        let traces = decode(payload.bytes());
        assert_eq!(traces.len(), 2);
        let (first, second) = (&traces[0][0], &traces[0][1]);
        assert_eq!(first.span_id, 3, "the local root goes first");
        assert!(first.metrics.contains_key("_sampling_priority_v1"));
        assert!(!second.metrics.contains_key("_sampling_priority_v1"));
        assert_eq!(second.resource, "load_user ann");
        assert_eq!(second.r#type.as_deref(), Some("cache"));
        assert_eq!(second.error, 1);
        assert_eq!(second.meta["error.message"], "not found");
        assert_eq!(second.meta["error.type"], "NotFound");
        assert_eq!(second.meta["user"], "ann");
        assert!(!second.meta.contains_key("resource") && !second.meta.contains_key("error"));
        assert_eq!(first.r#type, None);
    }
}
