//! Who may read the metrics port: an optional bearer token and optional HTTP basic auth,
//! checked in constant time.

use std::fmt;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// The credentials the metrics port accepts. With none configured (the default) every request
/// is served; with a bearer token, basic auth or both, a request must carry one of them or it
/// gets `401 Unauthorized`.
///
/// Only SHA-256 digests of the credentials are kept, and a presented credential is compared
/// digest to digest in constant time, so neither its content nor its length shows in the
/// response time. `Debug` shows which kinds are configured, never their values.
///
/// ```
/// use vigil_metrics_prometheus::MetricsAuth;
///
/// let auth = MetricsAuth::none().bearer("s3cret-token").basic("prometheus", "hunter2");
/// assert!(auth.allows(Some("Bearer s3cret-token")));
/// assert!(auth.allows(Some("Basic cHJvbWV0aGV1czpodW50ZXIy"))); // prometheus:hunter2
/// assert!(!auth.allows(Some("Bearer wrong")));
/// assert!(!auth.allows(None));
/// assert!(!format!("{auth:?}").contains("s3cret"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MetricsAuth {
    bearer: Option<[u8; 32]>,
    /// The digest of `user:password`.
    basic: Option<[u8; 32]>,
}

impl fmt::Debug for MetricsAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsAuth")
            .field("bearer", &self.bearer.map(|_| "<redacted>"))
            .field("basic", &self.basic.map(|_| "<redacted>"))
            .finish()
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Whether two digests are equal, looking at every byte whatever the first difference.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

impl MetricsAuth {
    /// No authentication: every request is served.
    pub fn none() -> Self {
        MetricsAuth::default()
    }

    /// Accepts `Authorization: Bearer <token>`.
    #[must_use]
    pub fn bearer(mut self, token: &str) -> Self {
        self.bearer = Some(digest(token.as_bytes()));
        self
    }

    /// Accepts HTTP basic auth with `user` and `password` (`Authorization: Basic
    /// base64(user:password)`); a browser asks for them when it opens `/dashboard`.
    #[must_use]
    pub fn basic(mut self, user: &str, password: &str) -> Self {
        self.basic = Some(digest(format!("{user}:{password}").as_bytes()));
        self
    }

    /// Whether any credential is required.
    pub fn is_required(&self) -> bool {
        self.bearer.is_some() || self.basic.is_some()
    }

    /// Whether a request with this `Authorization` header value may be served.
    pub fn allows(&self, authorization: Option<&str>) -> bool {
        if !self.is_required() {
            return true;
        }
        let Some(header) = authorization else { return false };
        let (scheme, credentials) = header.trim().split_once(' ').unwrap_or((header, ""));
        let credentials = credentials.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return self
                .bearer
                .is_some_and(|want| same(&want, &digest(credentials.as_bytes())));
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let Some(want) = self.basic else { return false };
            return base64::engine::general_purpose::STANDARD
                .decode(credentials)
                .is_ok_and(|decoded| same(&want, &digest(&decoded)));
        }
        false
    }

    /// The `WWW-Authenticate` challenge of a `401`: the schemes accepted.
    pub(crate) fn challenge(&self) -> &'static str {
        match (self.bearer.is_some(), self.basic.is_some()) {
            (true, true) => "Bearer realm=\"vigil\", Basic realm=\"vigil\", charset=\"UTF-8\"",
            (false, true) => "Basic realm=\"vigil\", charset=\"UTF-8\"",
            _ => "Bearer realm=\"vigil\"",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic_header(user_password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_password)
        )
    }

    #[test]
    fn nothing_configured_lets_everything_in() {
        assert!(MetricsAuth::none().allows(None));
        assert!(MetricsAuth::none().allows(Some("Bearer anything")));
        assert!(!MetricsAuth::none().is_required());
    }

    #[test]
    fn bearer_tokens_must_match_exactly() {
        let auth = MetricsAuth::none().bearer("tok");
        assert!(auth.allows(Some("Bearer tok")));
        assert!(auth.allows(Some("bearer  tok ")));
        for bad in ["Bearer tok2", "Bearer to", "Bearer ", "Bearer", "tok", "Basic dG9r", ""] {
            assert!(!auth.allows(Some(bad)), "{bad:?}");
        }
        assert!(!auth.allows(None));
        assert_eq!(auth.challenge(), "Bearer realm=\"vigil\"");
    }

    #[test]
    fn basic_auth_checks_user_and_password() {
        let auth = MetricsAuth::none().basic("prom", "pa:ss");
        assert!(auth.allows(Some(&basic_header("prom:pa:ss"))));
        for bad in ["prom:pa", "Prom:pa:ss", "prom:pa:ss ", ":pa:ss", "prom"] {
            assert!(!auth.allows(Some(&basic_header(bad))), "{bad:?}");
        }
        assert!(!auth.allows(Some("Basic not-base64!")));
        assert!(!auth.allows(Some("Bearer prom:pa:ss")));
        assert!(auth.challenge().starts_with("Basic"));
    }

    #[test]
    fn both_schemes_can_be_accepted() {
        let auth = MetricsAuth::none().bearer("tok").basic("u", "p");
        assert!(auth.allows(Some("Bearer tok")));
        assert!(auth.allows(Some(&basic_header("u:p"))));
        assert!(!auth.allows(Some(&basic_header("u:tok"))));
        assert!(auth.challenge().contains("Bearer") && auth.challenge().contains("Basic"));
        let debug = format!("{auth:?}");
        assert!(!debug.contains("tok") && debug.contains("<redacted>"), "{debug}");
    }
}
