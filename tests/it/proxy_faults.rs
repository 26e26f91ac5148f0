//! The authorizing proxy under bad input and faults: request smuggling shapes refused before
//! anything is decided or forwarded, stalled and oversized bodies bounded, an upstream that
//! refuses, hangs or resets answered with 503, 504 and 502 in a documented shape and counted,
//! a decision that fails denied, a bad configuration refused at start. Health answers
//! throughout.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use verdict::app::App;

use crate::common::upstream::{raw_peer, refusing, Upstream};
use crate::common::{self, http, payment_sources, test_config, Server, WAIT};
use crate::proxy::{authz_bundle, metrics_text, proxy_config, url};

/// Sends raw bytes to the proxy and reads the whole answer.
async fn raw(server: &Server, bytes: &[u8]) -> common::RawResponse {
    let stream = tokio::net::TcpStream::connect(&server.proxy_addrs[0])
        .await
        .unwrap();
    common::raw_exchange(stream, bytes).await
}

#[tokio::test]
async fn request_smuggling_shapes_are_refused_not_forwarded() {
    let upstream = Upstream::start().await;
    let (_dir, source) = authz_bundle("allow := true");
    let config = proxy_config(test_config(), &upstream.url, |_| {});
    let server = Server::start(config, vec![source]).await;
    let refused: [&[u8]; 5] = [
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello!",
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\nConnection: close\r\n\r\nhello",
        b"GET /a HTTP/1.1\r\nHost: x\r\nX-Folded: one\r\n two\r\nConnection: close\r\n\r\n",
        b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
        b"POST /a HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ];
    for shape in refused {
        let answer = raw(&server, shape).await;
        assert_eq!(answer.status, 400, "{}", String::from_utf8_lossy(shape));
    }
    // CL.TE and TE.CL: the parser drops the Content-Length (RFC 9112 section 6.3), reads the
    // chunked body, answers and closes the connection; the request goes upstream re-framed.
    // What must never happen is the upstream seeing the smuggled second request.
    let smuggling: [&[u8]; 2] = [
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n",
    ];
    for attempt in smuggling {
        let answer = raw(&server, attempt).await;
        assert!(matches!(answer.status, 200 | 400), "{}", answer.status);
        assert_eq!(
            answer.header("connection"),
            Some("close"),
            "the connection ends with it"
        );
    }
    let fine = raw(
        &server,
        b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(fine.status, 200);
    let paths: Vec<String> = upstream.seen().into_iter().map(|s| s.path).collect();
    assert!(paths.contains(&"/ok".to_string()), "{paths:?}");
    assert!(
        !paths.iter().any(|p| p.contains("admin")),
        "nothing smuggled: {paths:?}"
    );
    assert!(
        upstream.seen().iter().all(|s| s.body.is_empty()),
        "no smuggled bytes in a body"
    );
    assert!(
        upstream.seen().iter().all(|s| s
            .headers
            .get("transfer-encoding")
            .is_none_or(|_| s.headers.get("content-length").is_none())),
        "never both framings upstream"
    );
}

#[tokio::test]
async fn an_upstream_that_refuses_hangs_or_resets_gets_a_clear_status() {
    let (_dir, source) = authz_bundle("allow := true");
    let hung = raw_peer(true).await;
    let reset = raw_peer(false).await;
    let cases = [
        (refusing(), 503, "upstream_connect_error"),
        (hung, 504, "upstream_timeout"),
        (reset, 502, "upstream_error"),
    ];
    for (upstream, status, code) in cases {
        let config = proxy_config(test_config(), &upstream, |p| {
            p.response_header_timeout_ms = 300
        });
        let server = Server::start(config, vec![source.clone()]).await;
        let response = tokio::time::timeout(WAIT, http().get(url(&server, "/pay")).send())
            .await
            .expect("an answer, not a hang")
            .unwrap();
        assert_eq!(response.status(), status, "{upstream}");
        assert!(response.headers().contains_key("x-verdict-decision-id"));
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], code);
        assert!(
            body["message"].as_str().unwrap().contains("upstream"),
            "{body}"
        );
        let health = http().get(server.url("/health")).send().await.unwrap();
        assert_eq!(health.status(), 200);
        let metrics = metrics_text(&server).await;
        let failure = format!(
            "verdict_proxy_upstream_failures_total{{listener=\"127.0.0.1:0\",reason=\"{code}\"}} 1"
        );
        assert!(metrics.contains(&failure), "{metrics}");
        assert!(metrics.contains(
            "verdict_proxy_requests_total{listener=\"127.0.0.1:0\",outcome=\"upstream_failed\"} 1"
        ));
    }
}

#[tokio::test]
async fn stalled_and_oversized_bodies_are_bounded() {
    let upstream = Upstream::start().await;
    let (_dir, source) = authz_bundle("allow := true");
    let config = proxy_config(test_config(), &upstream.url, |p| {
        p.idle_timeout_ms = 300;
        p.max_body_bytes = 1024;
        p.reject_partial_body = true;
    });
    let server = Server::start(config, vec![source]).await;
    // Promises 100 bytes, sends 10, then nothing: 408 once the body idles past the limit.
    let mut stream = tokio::net::TcpStream::connect(&server.proxy_addrs[0])
        .await
        .unwrap();
    stream
        .write_all(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");

    let too_big = http()
        .post(url(&server, "/a"))
        .body(vec![b'x'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 413);
    let body: serde_json::Value = too_big.json().await.unwrap();
    assert_eq!(body["code"], "request_too_large");
    let fine = http()
        .post(url(&server, "/a"))
        .body("ok")
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status(), 200);
    let seen = upstream.wait_for(1).await;
    assert_eq!(seen.len(), 1, "neither bad body went upstream");
}

#[tokio::test]
async fn a_failing_decision_denies_and_never_forwards() {
    let upstream = Upstream::start().await;
    for rego in [
        "allow := 1 / 0 if true",                       // evaluation error
        "x := 1",                                       // undefined decision
        "allow := \"yes\"",                             // a decision of the wrong shape
        "allow := {\"allowed\": true, \"headers\": 7}", // a field of the wrong shape
    ] {
        let (_dir, source) = authz_bundle(rego);
        let config = proxy_config(test_config(), &upstream.url, |_| {});
        let server = Server::start(config, vec![source]).await;
        let response = http().get(url(&server, "/pay")).send().await.unwrap();
        assert_eq!(response.status(), 403, "{rego}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("authorization failed"),
            "{body}"
        );
    }
    assert!(
        upstream.seen().is_empty(),
        "fail closed: nothing was forwarded"
    );
}

#[tokio::test]
async fn a_bad_proxy_configuration_is_refused_at_start() {
    for (upstream, path, want) in [
        ("ftp://127.0.0.1:1", None, "must be http://host:port"),
        ("http://127.0.0.1:1/prefix", None, "must not have a path"),
        ("unix://", None, "names no socket"),
        ("http://127.0.0.1:1", Some("a\"b"), "is not a data path"),
    ] {
        let config = proxy_config(test_config(), upstream, |p| {
            p.path = path.map(str::to_string)
        });
        let error = match App::new(config)
            .with_sources(payment_sources())
            .bind()
            .await
        {
            Ok(_) => panic!("{upstream} must be refused"),
            Err(e) => e,
        };
        assert!(error.needs_config_change(), "{error}");
        assert!(error.to_string().contains(want), "{error}");
    }
}

#[tokio::test]
async fn the_proxy_flag_of_the_binary_fronts_an_upstream() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let proxy_addr = crate::common::collector::reserve_addr();
    let flag = format!("{proxy_addr}={}", upstream.url);
    let (mut child, _) = common::spawn_verdict(
        &["run", "--addr", "127.0.0.1:0", "--proxy", &flag],
        dir.path(),
        "authorizing proxy serving",
    )
    .await;
    let response = http()
        .post(format!("http://{proxy_addr}/api/payment"))
        .header("content-type", "application/json")
        .header("x-payment-role", "customer")
        .body(r#"{"amount": 100, "currency": "EUR", "merchant": "m-1", "country": "CH", "velocity": 0}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(upstream.wait_for(1).await[0].path, "/api/payment");
    child.kill().await.unwrap();
}
