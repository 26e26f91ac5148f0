//! The authorizing reverse proxy end to end: verdict in front of a real upstream, deciding each
//! request with the shipped `envoy.authz` policy (the same as ext_authz), forwarding only what
//! it allows, with the policy's header and query changes, paths normalised once for both the
//! policy and the upstream, every decision logged and counted.

use serde_json::{json, Value as Json};
use verdict::bundle::Source;
use verdict::config::{Config, ProxyConfig};

use crate::common::collector::{Answer, Collector};
use crate::common::upstream::Upstream;
use crate::common::{self, decision_log, http, payment_sources, test_config, write_dir, Server};

const PAYMENT: &str =
    r#"{"amount": 2500, "currency": "EUR", "merchant": "m-1", "country": "CH", "velocity": 0}"#;

/// verdict with one proxy listener in front of `upstream`.
pub fn proxy_config(
    mut config: Config,
    upstream: &str,
    tweak: impl FnOnce(&mut ProxyConfig),
) -> Config {
    let mut proxy = ProxyConfig::new("127.0.0.1:0", upstream);
    tweak(&mut proxy);
    config.verdict.proxy = vec![proxy];
    config
}

/// A bundle whose `envoy.authz.allow` is `rego` (after `package envoy.authz`).
pub fn authz_bundle(rego: &str) -> (tempfile::TempDir, Source) {
    let dir = tempfile::tempdir().unwrap();
    write_dir(
        dir.path(),
        &[
            (
                ".manifest".into(),
                br#"{"revision": "r1", "roots": ["envoy"]}"#.to_vec(),
            ),
            (
                "envoy/authz.rego".into(),
                format!("package envoy.authz\n\n{rego}\n").into_bytes(),
            ),
        ],
    );
    let source = Source::path(dir.path());
    (dir, source)
}

/// The server's `/metrics` page.
pub async fn metrics_text(server: &Server) -> String {
    let response = http().get(server.url("/metrics")).send().await.unwrap();
    response.text().await.unwrap()
}

pub fn url(server: &Server, path: &str) -> String {
    format!("http://{}{path}", server.proxy_addrs[0])
}

#[tokio::test]
async fn an_allowed_payment_is_forwarded_with_the_policys_changes_and_logged() {
    let upstream = Upstream::start().await;
    let collector = Collector::start(Answer::Ok).await;
    let dir = tempfile::tempdir().unwrap();
    let config = decision_log::config(&collector.url(), dir.path(), json!({}));
    let config = proxy_config(config, &upstream.url, |_| {});
    let server = Server::start(config, payment_sources()).await;

    let response = http()
        .post(url(&server, "/api/payment"))
        .header("content-type", "application/json")
        .header("x-payment-role", "customer")
        .header("x-request-id", "req-1")
        .body(PAYMENT)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-upstream"], "yes");
    let decision_id = response.headers()["x-verdict-decision-id"]
        .to_str()
        .unwrap()
        .to_string();
    let echo: Json = response.json().await.unwrap();
    assert_eq!(echo["path"], "/api/payment");

    let seen = upstream.wait_for(1).await;
    let got = &seen[0];
    assert_eq!(got.method, "POST");
    assert_eq!(
        &got.body[..],
        PAYMENT.as_bytes(),
        "the body the policy saw, byte for byte"
    );
    assert_eq!(
        got.headers["x-payment-decision"], "allow",
        "the policy's header"
    );
    assert!(
        got.headers.get("x-payment-role").is_none(),
        "request_headers_to_remove is honoured"
    );
    assert_eq!(got.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(got.headers["x-forwarded-proto"], "http");
    assert!(got.headers["forwarded"]
        .to_str()
        .unwrap()
        .starts_with("for=127.0.0.1;proto=http"));
    assert_eq!(got.headers["x-request-id"], "req-1");
    assert_eq!(got.headers["x-verdict-decision-id"], decision_id.as_str());

    // The decision log has the request as ext_authz's input, under the decision's id.
    collector
        .wait_for_ids(std::slice::from_ref(&decision_id))
        .await;
    let event = &collector.events()[&decision_id];
    assert_eq!(event["path"], "envoy/authz/allow");
    assert_eq!(
        event["input"]["attributes"]["request"]["http"]["path"],
        "/api/payment"
    );
    assert_eq!(event["input"]["parsed_body"]["amount"], 2500);
    assert_eq!(event["input"]["parsed_path"], json!(["api", "payment"]));
    assert_eq!(event["result"]["allowed"], true);

    let metrics = metrics_text(&server).await;
    let line = |needle: &str| {
        metrics
            .lines()
            .any(|l| l.starts_with(needle) && l.ends_with(" 1"))
    };
    assert!(
        line("verdict_proxy_requests_total{listener=\"127.0.0.1:0\",outcome=\"forwarded\"}"),
        "{metrics}"
    );
    assert!(
        line("verdict_proxy_upstream_responses_total{code=\"200\",listener=\"127.0.0.1:0\"}"),
        "{metrics}"
    );
    assert!(metrics
        .contains("verdict_proxy_upstream_duration_seconds_count{listener=\"127.0.0.1:0\"} 1"));
}

#[tokio::test]
async fn a_denied_payment_gets_the_policys_answer_and_never_reaches_the_upstream() {
    let upstream = Upstream::start().await;
    let config = proxy_config(test_config(), &upstream.url, |_| {});
    let server = Server::start(config, payment_sources()).await;
    let over_limit = PAYMENT.replace("2500", "250000");
    let response = http()
        .post(url(&server, "/api/payment"))
        .header("content-type", "application/json")
        .header("x-payment-role", "customer")
        .body(over_limit)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["x-payment-decision"], "deny");
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(response.headers().contains_key("x-verdict-decision-id"));
    let body: Json = response.json().await.unwrap();
    assert_eq!(
        body["reasons"],
        json!(["amount 250000 exceeds the customer limit of 10000"])
    );
    // A role in the body cannot stand in for the header, and other paths are not payments.
    let response = http().get(url(&server, "/admin")).send().await.unwrap();
    assert_eq!(response.status(), 403);
    // The upstream saw neither: an allowed request after them is its first.
    let allowed = http()
        .post(url(&server, "/api/payment"))
        .header("content-type", "application/json")
        .header("x-payment-role", "customer")
        .body(PAYMENT)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    let seen = upstream.wait_for(1).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/api/payment");
}

#[tokio::test]
async fn paths_are_normalised_once_for_the_policy_and_the_upstream() {
    let upstream = Upstream::start().await;
    let (_dir, source) =
        authz_bundle("default allow := false\n\nallow if input.parsed_path[0] == \"public\"");
    let config = proxy_config(test_config(), &upstream.url, |_| {});
    let server = Server::start(config, vec![source]).await;
    let addr = &server.proxy_addrs[0];
    let send = |path: &'static str| async move {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        common::raw_exchange(stream, &common::request("GET", path, &[], b"")).await
    };
    // The adversarial run's bypasses: each reached a policy as ["public", "..", "admin"].
    assert_eq!(send("/public/../admin").await.status, 403);
    assert_eq!(send("/public/%2e%2e/admin").await.status, 403);
    assert_eq!(send("/public/./%2E%2E/admin").await.status, 403);
    for ambiguous in [
        "/public%2f..%2fadmin",
        "/public%5C..%5Cadmin",
        "/public/%252e%252e/admin",
        "/public/a%zz",
    ] {
        let refused = send(ambiguous).await;
        assert_eq!(refused.status, 400, "{ambiguous}");
        assert_eq!(refused.json()["code"], "invalid_parameter");
    }
    let allowed = send("//public///a/./b/../c?x=%2F..").await;
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    let seen = upstream.wait_for(1).await;
    assert_eq!(seen.len(), 1, "only the allowed request went upstream");
    assert_eq!(
        seen[0].path, "/public/a/c?x=%2F..",
        "the upstream gets the path the policy saw"
    );
}

#[tokio::test]
async fn query_and_response_headers_follow_the_decision() {
    let upstream = Upstream::start().await;
    let (_dir, source) = authz_bundle(
        r#"allow := {
	"allowed": true,
	"headers": {"x-tenant": ["a", "b"], "transfer-encoding": "chunked"},
	"query_parameters_to_remove": ["token"],
	"query_parameters_to_set": {"checked": "yes"},
	"response_headers_to_add": {"x-checked-by": "verdict"},
}"#,
    );
    let config = proxy_config(test_config(), &upstream.url, |_| {});
    let server = Server::start(config, vec![source]).await;
    let response = http()
        .get(url(&server, "/pay?token=secret&keep=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-checked-by"], "verdict");
    let seen = upstream.wait_for(1).await;
    assert_eq!(seen[0].path, "/pay?keep=1&checked=yes");
    let tenants: Vec<_> = seen[0].headers.get_all("x-tenant").iter().collect();
    assert_eq!(tenants, ["a", "b"]);
    assert!(
        seen[0].headers.get("transfer-encoding").is_none(),
        "a policy cannot set framing headers"
    );
}

#[tokio::test]
async fn bodies_stream_both_ways_and_a_long_body_is_decided_on_its_start() {
    let upstream = Upstream::start().await;
    let (_dir, source) = authz_bundle("allow := {\"allowed\": true, \"headers\": {\"x-truncated\": sprintf(\"%v\", [input.truncated_body])}}");
    let config = proxy_config(test_config(), &upstream.url, |p| p.max_body_bytes = 1024);
    let server = Server::start(config, vec![source]).await;
    let big: Vec<u8> = (0..2_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let response = http()
        .post(url(&server, "/upload"))
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = upstream.wait_for(1).await;
    assert_eq!(
        seen[0].body.len(),
        big.len(),
        "the whole body reached the upstream"
    );
    assert!(seen[0].body[..] == big[..]);
    assert_eq!(seen[0].headers["x-truncated"], "true");

    let streamed = http().get(url(&server, "/stream")).send().await.unwrap();
    assert_eq!(streamed.status(), 200);
    assert!(
        streamed.headers().get("x-upstream-private").is_none(),
        "headers the upstream's Connection names stay on its hop"
    );
    let text = streamed.text().await.unwrap();
    assert_eq!(text.lines().count(), 64);
    assert!(text.ends_with("chunk 63\n"));
}

#[tokio::test]
async fn http2_clients_and_h2c_upstreams_and_unix_sockets_work() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start_unix(&dir.path().join("gateway.sock")).await;
    let (_bundle, source) =
        authz_bundle("allow := input.attributes.request.http.protocol == \"HTTP/2\"");
    let config = proxy_config(test_config(), &upstream.url, |_| {});
    let server = Server::start(config, vec![source]).await;
    verdict::remote::client::install_crypto_provider();
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = h2.get(url(&server, "/over/h2")).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    assert_eq!(upstream.wait_for(1).await[0].path, "/over/h2");
    let h1 = http().get(url(&server, "/over/h1")).send().await.unwrap();
    assert_eq!(h1.status(), 403, "the policy saw HTTP/1.1");

    let h2c = Upstream::start().await;
    let (_bundle, source) = authz_bundle("allow := true");
    let config = proxy_config(test_config(), &h2c.url, |p| p.upstream_http2 = true);
    let server = Server::start(config, vec![source]).await;
    let response = http().get(url(&server, "/to/h2c")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(h2c.wait_for(1).await[0].version, "HTTP/2.0");
}
