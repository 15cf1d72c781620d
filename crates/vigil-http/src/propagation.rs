//! Distributed trace propagation: continue a caller's trace, and pass ours on.
//!
//! Incoming requests: [`HttpMetricsLayer`](crate::HttpMetricsLayer) reads the caller's trace
//! context with [`extract`] and creates the request span inside
//! [`vigil_core::trace::with_remote_parent`], so a tracer (such as `vigil-trace-datadog`)
//! continues the caller's trace instead of starting a new one. Two formats are understood, in
//! this order (Datadog's default, `datadog,tracecontext`):
//!
//! - Datadog: `x-datadog-trace-id` and `x-datadog-parent-id` (decimal 64-bit ids),
//!   `x-datadog-sampling-priority`, and the upper half of a 128-bit trace id as `_dd.p.tid`
//!   in `x-datadog-tags`;
//! - W3C Trace Context: `traceparent` (`00-<32 hex trace id>-<16 hex parent id>-<flags>`).
//!
//! Malformed or all-zero values are ignored: the request then starts a new trace.
//!
//! Outgoing requests: [`inject`] writes the current span's context in both formats into the
//! headers of a request you are about to send, so the service you call continues your trace
//! and keeps its sampling decision (the caller's, when the trace came from one).
//!
//! ```
//! use http::HeaderMap;
//! use vigil_core::trace::TraceIds;
//!
//! let mut headers = HeaderMap::new();
//! let ids = TraceIds { trace_id: (0x6500_0000_u128 << 96) | 42, span_id: 7 };
//! vigil_http::propagation::inject_ids(ids, 1, &mut headers);
//! assert_eq!(headers["x-datadog-trace-id"], "42");
//! assert_eq!(headers["x-datadog-parent-id"], "7");
//! assert_eq!(headers["x-datadog-sampling-priority"], "1");
//! assert_eq!(headers["traceparent"], "00-6500000000000000000000000000002a-0000000000000007-01");
//!
//! let parent = vigil_http::propagation::extract(&headers).unwrap();
//! assert_eq!((parent.trace_id, parent.span_id), (ids.trace_id, 7));
//! ```

use std::fmt::Write as _;

use http::{HeaderMap, HeaderName, HeaderValue};
use vigil_core::trace::{RemoteParent, TraceIds};

/// `traceparent` (W3C Trace Context).
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// `x-datadog-trace-id`: the lower 64 bits of the trace id, in decimal.
pub const DATADOG_TRACE_ID: HeaderName = HeaderName::from_static("x-datadog-trace-id");
/// `x-datadog-parent-id`: the caller's span id, in decimal.
pub const DATADOG_PARENT_ID: HeaderName = HeaderName::from_static("x-datadog-parent-id");
/// `x-datadog-sampling-priority`: the caller's sampling decision.
pub const DATADOG_SAMPLING_PRIORITY: HeaderName = HeaderName::from_static("x-datadog-sampling-priority");
/// `x-datadog-tags`: propagated tags, among them `_dd.p.tid` (the upper 64 bits of the trace id).
pub const DATADOG_TAGS: HeaderName = HeaderName::from_static("x-datadog-tags");

/// The caller's trace context from `headers`, if it sent a well-formed one.
pub fn extract(headers: &HeaderMap) -> Option<RemoteParent> {
    extract_datadog(headers).or_else(|| extract_traceparent(headers))
}

fn header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

fn extract_datadog(headers: &HeaderMap) -> Option<RemoteParent> {
    let low: u64 = header(headers, &DATADOG_TRACE_ID)?.parse().ok()?;
    let span_id: u64 = header(headers, &DATADOG_PARENT_ID)?.parse().ok()?;
    if low == 0 || span_id == 0 {
        return None;
    }
    let high = header(headers, &DATADOG_TAGS)
        .and_then(|tags| {
            tags.split(',')
                .find_map(|tag| tag.trim().strip_prefix("_dd.p.tid="))
                .filter(|hex| hex.len() == 16)
                .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        })
        .unwrap_or(0);
    let sampling_priority = header(headers, &DATADOG_SAMPLING_PRIORITY).and_then(|p| p.parse().ok());
    Some(RemoteParent {
        trace_id: (u128::from(high) << 64) | u128::from(low),
        span_id,
        sampling_priority,
    })
}

fn extract_traceparent(headers: &HeaderMap) -> Option<RemoteParent> {
    let value = header(headers, &TRACEPARENT)?;
    let mut parts = value.split('-');
    let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    // Version 00 has exactly four parts; later versions may append more, never version ff.
    let known = version == "00";
    if (known && parts.next().is_some())
        || version.len() != 2
        || version.eq_ignore_ascii_case("ff")
        || trace.len() != 32
        || parent.len() != 16
        || flags.len() != 2
        || !is_lower_hex(version)
        || !is_lower_hex(trace)
        || !is_lower_hex(parent)
        || !is_lower_hex(flags)
    {
        return None;
    }
    let trace_id = u128::from_str_radix(trace, 16).ok()?;
    let span_id = u64::from_str_radix(parent, 16).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    if trace_id == 0 || span_id == 0 {
        return None;
    }
    Some(RemoteParent {
        trace_id,
        span_id,
        sampling_priority: Some(i8::from(flags & 1 == 1)),
    })
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Writes the current span's trace context into `headers` (both Datadog's headers and
/// `traceparent`), for an outgoing request, with the trace's sampling decision (keep, `1`,
/// when the tracer keeps none). Returns `false`, changing nothing, when there is no current
/// trace (no tracer installed, or outside any span).
///
/// ```
/// let mut headers = http::HeaderMap::new();
/// // Outside a traced span there is nothing to propagate.
/// assert!(!vigil_http::propagation::inject(&mut headers));
/// assert!(headers.is_empty());
/// ```
pub fn inject(headers: &mut HeaderMap) -> bool {
    match vigil_core::trace::current() {
        Some(ids) => {
            let priority = vigil_core::trace::current_sampling_priority().unwrap_or(1);
            inject_ids(ids, priority, headers);
            true
        }
        None => false,
    }
}

/// Writes `ids` into `headers` as the parent of the request being sent, with the trace's
/// `sampling_priority` (see [`SamplingPriority`](vigil_core::trace::SamplingPriority)):
/// Datadog's `x-datadog-trace-id`, `x-datadog-parent-id`, `x-datadog-sampling-priority` and,
/// for a 128-bit trace id, `_dd.p.tid=…` in `x-datadog-tags` (other propagated tags already
/// there are kept); and W3C `traceparent`, sampled when the priority is positive.
pub fn inject_ids(ids: TraceIds, sampling_priority: i8, headers: &mut HeaderMap) {
    fn put(headers: &mut HeaderMap, name: HeaderName, args: std::fmt::Arguments<'_>) {
        let mut text = String::with_capacity(56);
        let _ = text.write_fmt(args);
        if let Ok(value) = HeaderValue::try_from(text) {
            headers.insert(name, value);
        }
    }
    put(headers, DATADOG_TRACE_ID, format_args!("{}", ids.trace_id_low()));
    put(headers, DATADOG_PARENT_ID, format_args!("{}", ids.span_id));
    put(headers, DATADOG_SAMPLING_PRIORITY, format_args!("{sampling_priority}"));
    // Other propagated tags stay; a `_dd.p.tid` of another trace does not.
    let others: Vec<String> = header(headers, &DATADOG_TAGS)
        .map(|tags| {
            tags.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty() && !t.starts_with("_dd.p.tid="))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let mut tags = others.join(",");
    if ids.trace_id_high() != 0 {
        if !tags.is_empty() {
            tags.push(',');
        }
        let _ = write!(tags, "_dd.p.tid={:016x}", ids.trace_id_high());
    }
    match HeaderValue::try_from(tags) {
        Ok(value) if !value.is_empty() => {
            headers.insert(DATADOG_TAGS, value);
        }
        _ => {
            headers.remove(DATADOG_TAGS);
        }
    }
    let flags = u8::from(sampling_priority > 0);
    put(
        headers,
        TRACEPARENT,
        format_args!("00-{:032x}-{:016x}-{flags:02x}", ids.trace_id, ids.span_id),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(HeaderName::from_static(k), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn traceparent() {
        let p = extract(&headers(&[(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )]))
        .unwrap();
        assert_eq!(p.trace_id, 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736);
        assert_eq!(p.span_id, 0x00f0_67aa_0ba9_02b7);
        assert_eq!(p.sampling_priority, Some(1));
        let unsampled = extract(&headers(&[(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        )]))
        .unwrap();
        assert_eq!(unsampled.sampling_priority, Some(0));
    }

    #[test]
    fn malformed_traceparents_start_a_new_trace() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(extract(&headers(&[("traceparent", bad)])), None, "{bad:?}");
        }
        // A later version may carry more parts.
        assert!(
            extract(&headers(&[(
                "traceparent",
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future"
            )]))
            .is_some()
        );
    }

    #[test]
    fn datadog_headers_win_and_carry_the_upper_half() {
        let p = extract(&headers(&[
            ("x-datadog-trace-id", "12345"), // 0x3039
            ("x-datadog-parent-id", "678"),
            ("x-datadog-sampling-priority", "2"),
            ("x-datadog-tags", "_dd.p.dm=-1,_dd.p.tid=6500000000000000"),
            ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ]))
        .unwrap();
        assert_eq!(p.trace_id, (0x6500_0000_0000_0000_u128 << 64) | 0x3039);
        assert_eq!(p.span_id, 678);
        assert_eq!(p.sampling_priority, Some(2));
        for bad in [
            ("x", "1"),
            ("0", "1"),
            ("1", "0"),
            ("-1", "1"),
            ("1", "99999999999999999999"),
        ] {
            let h = headers(&[("x-datadog-trace-id", bad.0), ("x-datadog-parent-id", bad.1)]);
            assert_eq!(extract(&h), None, "{bad:?}");
        }
    }

    #[test]
    fn inject_then_extract_round_trips() {
        let ids = TraceIds {
            trace_id: (0x6700_0000_0000_0000_u128 << 64) | 0xdead_beef,
            span_id: 99,
        };
        let mut h = HeaderMap::new();
        h.insert(
            DATADOG_TAGS,
            HeaderValue::from_static("_dd.p.dm=-1,_dd.p.tid=0000000000000001"),
        );
        inject_ids(ids, 1, &mut h);
        assert_eq!(h[&DATADOG_TAGS], "_dd.p.dm=-1,_dd.p.tid=6700000000000000");
        let p = extract(&h).unwrap();
        assert_eq!(
            (p.trace_id, p.span_id, p.sampling_priority),
            (ids.trace_id, 99, Some(1))
        );
        h.remove(DATADOG_TRACE_ID);
        let w3c = extract(&h).unwrap();
        assert_eq!((w3c.trace_id, w3c.span_id), (ids.trace_id, 99));
        // A 64-bit trace id drops a stale _dd.p.tid and keeps the other tags.
        inject_ids(
            TraceIds {
                trace_id: 5,
                span_id: 6,
            },
            1,
            &mut h,
        );
        assert_eq!(h[&DATADOG_TAGS], "_dd.p.dm=-1");
        h.remove(DATADOG_TAGS);
        inject_ids(
            TraceIds {
                trace_id: 5,
                span_id: 6,
            },
            1,
            &mut h,
        );
        assert!(h.get(&DATADOG_TAGS).is_none());
        // A decision to drop is passed on, not overridden.
        for (priority, flags) in [(-1, "00"), (0, "00"), (2, "01")] {
            inject_ids(ids, priority, &mut h);
            assert_eq!(h[&DATADOG_SAMPLING_PRIORITY], priority.to_string().as_str());
            assert!(h[&TRACEPARENT].to_str().unwrap().ends_with(flags), "{priority}");
            assert_eq!(extract(&h).unwrap().sampling_priority, Some(priority));
        }
    }
}
