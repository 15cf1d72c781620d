//! Bounded label values: methods, routes, statuses.

use std::borrow::Cow;

/// The route of every request no route matched (404s, scanners): one shared series.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The method label of any method outside the standard nine.
pub const OTHER_METHOD: &str = "OTHER";

/// The status of a request whose inner service returned an error instead of a response.
pub const STATUS_ERROR: &str = "error";
/// The status of a request abandoned before its response was complete: the client
/// disconnected, or the task serving it was cancelled.
pub const STATUS_CANCELLED: &str = "cancelled";
/// The status of a request whose handler panicked through this layer (a catch-panic layer
/// inside this one turns panics into `500` responses instead).
pub const STATUS_PANIC: &str = "panic";

/// The method label: the standard methods as they are, anything else [`OTHER_METHOD`].
pub fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::PATCH => "PATCH",
        http::Method::CONNECT => "CONNECT",
        http::Method::TRACE => "TRACE",
        _ => OTHER_METHOD,
    }
}

/// What a route function sees of a request.
#[derive(Debug, Clone, Copy)]
pub struct RouteInput<'a> {
    /// The method.
    pub method: &'a http::Method,
    /// The URI.
    pub uri: &'a http::Uri,
    /// The headers.
    pub headers: &'a http::HeaderMap,
    /// The extensions (where routers leave what they matched).
    pub extensions: &'a http::Extensions,
}

/// A user-supplied route function: the route template of a request, or `None` when no route
/// matched. It must return templates (`/api/videos/{id}`), never raw paths.
pub type RouteFn = dyn Fn(&RouteInput<'_>) -> Option<Cow<'static, str>> + Send + Sync;

/// A request's route label, kept without copying the router's string.
#[derive(Clone, Debug)]
pub(crate) enum Route {
    /// From the route function, or [`UNMATCHED_ROUTE`].
    Text(Cow<'static, str>),
    /// axum's matched route template (shared, not copied).
    #[cfg(feature = "axum")]
    Matched(axum::extract::MatchedPath),
}

impl Route {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Route::Text(t) => t,
            #[cfg(feature = "axum")]
            Route::Matched(m) => m.as_str(),
        }
    }
}

/// The route of a request: the route function's answer, else axum's `MatchedPath`, else
/// [`UNMATCHED_ROUTE`].
pub(crate) fn route_of(input: &RouteInput<'_>, route_fn: Option<&RouteFn>) -> Route {
    if let Some(f) = route_fn
        && let Some(route) = f(input)
    {
        return Route::Text(route);
    }
    #[cfg(feature = "axum")]
    if let Some(matched) = input.extensions.get::<axum::extract::MatchedPath>() {
        return Route::Matched(matched.clone());
    }
    Route::Text(Cow::Borrowed(UNMATCHED_ROUTE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_fold_into_one_value() {
        assert_eq!(method_label(&http::Method::GET), "GET");
        assert_eq!(method_label(&http::Method::PATCH), "PATCH");
        assert_eq!(
            method_label(&http::Method::from_bytes(b"PROPFIND").unwrap()),
            OTHER_METHOD
        );
        assert_eq!(
            method_label(&http::Method::from_bytes(b"X-EVIL-123").unwrap()),
            OTHER_METHOD
        );
    }
}
