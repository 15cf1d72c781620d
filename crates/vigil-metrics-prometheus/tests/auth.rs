//! The metrics port behind credentials: every path answers 401 with a challenge without
//! one, the right bearer token or basic-auth pair gets through, and the credentials appear in
//! no response.

mod common;

use common::{header, http, http_with};
use vigil_metrics_prometheus::{DashboardOptions, MetricsAuth, MetricsServer, PrometheusBackend, ServerOptions};

const TOKEN: &str = "vigil-test-token-7f3a9c";
const USER: &str = "prometheus";
const PASSWORD: &str = "vigil-test-password-51be";
/// base64("prometheus:vigil-test-password-51be")
const BASIC: &str = "Basic cHJvbWV0aGV1czp2aWdpbC10ZXN0LXBhc3N3b3JkLTUxYmU=";

fn server(auth: MetricsAuth) -> MetricsServer {
    let backend = PrometheusBackend::builder().build().unwrap();
    metrics::with_local_recorder(&backend, || metrics::counter!("auth.test").increment(3));
    let options = ServerOptions::from(DashboardOptions::default()).auth(auth);
    MetricsServer::start_with(backend, "127.0.0.1", 0, options).unwrap()
}

const PATHS: [&str; 4] = ["/metrics", "/dashboard", "/dashboard/data", "/not-a-route"];

#[test]
fn without_a_credential_every_path_is_401_with_a_challenge() {
    let server = server(MetricsAuth::none().bearer(TOKEN).basic(USER, PASSWORD));
    let addr = server.local_addr();
    for path in PATHS {
        for headers in [
            &[][..],
            &[("Authorization", "Bearer wrong-token")][..],
            &[("Authorization", "Basic cHJvbWV0aGV1czp3cm9uZw==")][..], // prometheus:wrong
            &[("Authorization", TOKEN)][..],                            // no scheme
        ] {
            let (status, head, body) = http_with(addr, "GET", path, headers);
            assert_eq!(status, 401, "{path} {headers:?}: {head}");
            let challenge = header(&head, "www-authenticate").unwrap();
            assert!(
                challenge.contains("Bearer") && challenge.contains("Basic"),
                "{challenge}"
            );
            assert!(!body.contains(TOKEN) && !body.contains(PASSWORD) && !body.contains("auth_test"));
        }
        // Methods do not get around it either.
        assert_eq!(http(addr, "POST", path).0, 401, "{path}");
    }
}

#[test]
fn the_right_bearer_token_or_basic_pair_gets_through() {
    let server = server(MetricsAuth::none().bearer(TOKEN).basic(USER, PASSWORD));
    let addr = server.local_addr();
    let bearer = format!("Bearer {TOKEN}");
    for authorization in [bearer.as_str(), BASIC] {
        let (status, _, body) = http_with(addr, "GET", "/metrics", &[("Authorization", authorization)]);
        assert_eq!(status, 200, "{authorization}");
        assert!(body.contains("auth_test_total 3"), "{body}");
        assert!(!body.contains(TOKEN) && !body.contains(PASSWORD));
        for path in ["/dashboard", "/dashboard/data"] {
            let (status, _, body) = http_with(addr, "GET", path, &[("Authorization", authorization)]);
            assert_eq!(status, 200, "{path}");
            assert!(!body.contains(TOKEN) && !body.contains(PASSWORD), "{path}");
        }
        // Authenticated, an unknown path is an ordinary 404.
        assert_eq!(
            http_with(addr, "GET", "/not-a-route", &[("Authorization", authorization)]).0,
            404
        );
    }
}

#[test]
fn bearer_only_and_basic_only_accept_only_their_own_scheme() {
    let bearer_only = server(MetricsAuth::none().bearer(TOKEN));
    let addr = bearer_only.local_addr();
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(http_with(addr, "GET", "/metrics", &[("Authorization", &bearer)]).0, 200);
    let (status, head, _) = http_with(addr, "GET", "/metrics", &[("Authorization", BASIC)]);
    assert_eq!(status, 401);
    assert_eq!(
        header(&head, "www-authenticate").as_deref(),
        Some("Bearer realm=\"vigil\"")
    );

    let basic_only = server(MetricsAuth::none().basic(USER, PASSWORD));
    let addr = basic_only.local_addr();
    assert_eq!(http_with(addr, "GET", "/metrics", &[("Authorization", BASIC)]).0, 200);
    let (status, head, _) = http_with(addr, "GET", "/metrics", &[("Authorization", &bearer)]);
    assert_eq!(status, 401);
    assert!(
        header(&head, "www-authenticate")
            .unwrap()
            .starts_with("Basic realm=\"vigil\"")
    );
}

#[test]
fn no_credential_configured_serves_everyone() {
    let open = server(MetricsAuth::none());
    assert_eq!(http(open.local_addr(), "GET", "/metrics").0, 200);
}
