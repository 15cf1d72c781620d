//! Trace context shared between the parts: the ids a tracer gave the current span, and the
//! remote parent an incoming request carried.
//!
//! A tracer layer (such as `vigil-trace-datadog`) stores a [`TraceIds`] in every span's
//! extensions; [`crate::LogLayer`] copies the innermost one into [`crate::Record::trace`], so a
//! log backend can correlate logs with traces, and [`current`] gives it to code that injects
//! trace headers into outgoing requests. Nothing here depends on a tracer being installed:
//! without one, [`current`] is `None` and records carry no trace.
//!
//! An HTTP server layer that reads a caller's trace headers hands the [`RemoteParent`] to the
//! tracer by creating the request span inside [`with_remote_parent`]; the tracer picks it up
//! with [`take_remote_parent`] when the span is created, on the same thread.
//!
//! ```
//! use vigil_core::trace::{self, RemoteParent};
//!
//! let parent = RemoteParent { trace_id: 7, span_id: 9, sampling_priority: Some(1) };
//! let span = trace::with_remote_parent(parent, || tracing::info_span!("request"));
//! // Without a tracer nothing took it, and nothing is left behind for the next span.
//! assert_eq!(trace::take_remote_parent(), None);
//! # drop(span);
//! ```

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::registry::{LookupSpan, Registry};

/// The ids of one span in a distributed trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceIds {
    /// The 128-bit trace id (Datadog sends the lower 64 bits as `trace_id` and the upper half
    /// in the `_dd.p.tid` tag).
    pub trace_id: u128,
    /// The span's own 64-bit id.
    pub span_id: u64,
}

impl TraceIds {
    /// The lower 64 bits of the trace id, as Datadog's `dd.trace_id` log attribute and
    /// `x-datadog-trace-id` header carry it.
    pub fn trace_id_low(&self) -> u64 {
        // Truncation intended: the low half.
        #[allow(clippy::cast_possible_truncation)]
        let low = self.trace_id as u64;
        low
    }

    /// The upper 64 bits of the trace id.
    pub fn trace_id_high(&self) -> u64 {
        #[allow(clippy::cast_possible_truncation)]
        let high = (self.trace_id >> 64) as u64;
        high
    }
}

/// The caller's span, read from an incoming request's headers (`traceparent`, or
/// `x-datadog-trace-id` and `x-datadog-parent-id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RemoteParent {
    /// The caller's trace id (128 bits from `traceparent`; 64 from Datadog headers unless
    /// `_dd.p.tid` came in `x-datadog-tags`).
    pub trace_id: u128,
    /// The caller's span id: the parent of the span created here.
    pub span_id: u64,
    /// The caller's sampling decision, if it sent one (`x-datadog-sampling-priority`, or the
    /// `traceparent` sampled flag as 0 or 1).
    pub sampling_priority: Option<i8>,
}

static TRACER_REGISTERED: AtomicBool = AtomicBool::new(false);

/// Called by a tracer layer when it is built: from then on, collectors spend the extra work a
/// trace needs (reading the caller's trace headers, recording a response status on the
/// request span). Without a tracer they skip it.
pub fn register_tracer() {
    TRACER_REGISTERED.store(true, Ordering::Relaxed);
}

/// Whether a tracer layer was built in this process (see [`register_tracer`]).
pub fn tracer_registered() -> bool {
    TRACER_REGISTERED.load(Ordering::Relaxed)
}

thread_local! {
    static REMOTE_PARENT: Cell<Option<RemoteParent>> = const { Cell::new(None) };
}

/// Runs `make_span` with `parent` offered to the tracer: a span created inside (on this
/// thread) continues the caller's trace. Whatever the tracer did not take is cleared when
/// `make_span` returns, so it cannot leak into an unrelated span.
pub fn with_remote_parent<R>(parent: RemoteParent, make_span: impl FnOnce() -> R) -> R {
    struct Clear(Option<RemoteParent>);
    impl Drop for Clear {
        fn drop(&mut self) {
            REMOTE_PARENT.with(|p| p.set(self.0));
        }
    }
    let previous = REMOTE_PARENT.with(|p| p.replace(Some(parent)));
    let _clear = Clear(previous);
    make_span()
}

/// Takes the remote parent offered by [`with_remote_parent`] on this thread, if any. Called
/// by tracers when a root span is created.
pub fn take_remote_parent() -> Option<RemoteParent> {
    REMOTE_PARENT.with(Cell::take)
}

/// The trace ids of the current span, when a tracer is installed and a span is entered.
pub fn current() -> Option<TraceIds> {
    of(&tracing::Span::current())
}

/// A trace's sampling decision, as Datadog's sampling priority: `-1` dropped by the user, `0`
/// dropped by the sampler, `1` kept by the sampler, `2` kept by the user. A tracer keeps it in
/// each span's extensions next to its [`TraceIds`], so that an outgoing request passes the
/// decision on instead of overriding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SamplingPriority(pub i8);

/// The sampling decision of the current span's trace, when a tracer that keeps one is
/// installed and a span is entered.
pub fn current_sampling_priority() -> Option<i8> {
    tracing::Span::current()
        .with_subscriber(|(id, dispatch)| {
            let registry = dispatch.downcast_ref::<Registry>()?;
            let data = registry.span(id)?;
            #[allow(clippy::let_and_return)] // the extensions guard drops before `data`
            let priority = data.extensions().get::<SamplingPriority>().map(|p| p.0);
            priority
        })
        .flatten()
}

/// The trace ids of `span`, when a tracer is installed and the span is enabled.
pub fn of(span: &tracing::Span) -> Option<TraceIds> {
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let data = registry.span(id)?;
        // The binding makes the extensions guard drop before `data`.
        #[allow(clippy::let_and_return)]
        let ids = data.extensions().get::<TraceIds>().copied();
        ids
    })
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves() {
        let ids = TraceIds {
            trace_id: (5u128 << 64) | 3,
            span_id: 1,
        };
        assert_eq!(ids.trace_id_low(), 3);
        assert_eq!(ids.trace_id_high(), 5);
    }

    #[test]
    fn remote_parent_is_scoped_and_taken_once() {
        let parent = RemoteParent {
            trace_id: 1,
            span_id: 2,
            sampling_priority: None,
        };
        let inner = with_remote_parent(parent, || {
            let first = take_remote_parent();
            let second = take_remote_parent();
            (first, second)
        });
        assert_eq!(inner, (Some(parent), None));
        with_remote_parent(parent, || {});
        assert_eq!(take_remote_parent(), None, "cleared after the closure");
    }

    #[test]
    fn no_tracer_no_ids() {
        assert_eq!(current(), None);
    }
}
