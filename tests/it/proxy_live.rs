//! The authorizing proxy while things change around it: HTTPS with client certificates that
//! reach the policy, a certificate rotated under it, a protocol switch spliced through, a
//! bundle swapped under load without a failed request, a drain that lets requests in flight
//! finish; and the same path normalisation offered to ext_authz users.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use verdict::config::ProxyTls;

use crate::common::admission::client_trusting;
use crate::common::pki::Pki;
use crate::common::upstream::Upstream;
use crate::common::{
    self, http, replace_file, simple_bundle, test_config, write_dir, Server, WAIT,
};
use crate::proxy::{authz_bundle, proxy_config};

#[tokio::test]
async fn https_with_client_certificates_reaches_the_policy() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca) = (
        dir.path().join("tls.crt"),
        dir.path().join("tls.key"),
        dir.path().join("ca.crt"),
    );
    std::fs::write(&cert, &pki.server_cert_pem).unwrap();
    std::fs::write(&key, &pki.server_key_pem).unwrap();
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let upstream = Upstream::start().await;
    let (_bundle, source) = authz_bundle(
        r#"allow := {"allowed": true, "headers": {"x-principal": input.attributes.source.principal, "x-sni": input.attributes.tlsSession.sni}} if {
	input.attributes.request.http.scheme == "https"
	startswith(input.attributes.source.certificate, "-----BEGIN%20CERTIFICATE-----%0A")
}"#,
    );
    let config = proxy_config(test_config(), &upstream.url, |p| {
        p.tls = Some(ProxyTls {
            cert_file: cert.clone(),
            private_key_file: key.clone(),
            client_ca_file: Some(ca.clone()),
        });
    });
    let server = Server::start(config, vec![source]).await;
    let port = server.proxy_addrs[0]
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let client = client_trusting(
        &pki.ca_pem,
        Some((&pki.client_cert_pem, &pki.client_key_pem)),
    );
    let response = client
        .get(format!("https://localhost:{port}/secure"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = upstream.wait_for(1).await;
    assert_eq!(seen[0].headers["x-principal"], "verdict-node");
    assert_eq!(seen[0].headers["x-sni"], "localhost");
    assert_eq!(seen[0].headers["x-forwarded-proto"], "https");
    // Without a client certificate the handshake itself fails.
    let anonymous = client_trusting(&pki.ca_pem, None);
    assert!(anonymous
        .get(format!("https://localhost:{port}/secure"))
        .send()
        .await
        .is_err());

    // A rotated certificate (with its CA) serves new connections without a restart.
    let rotated = Pki::new();
    replace_file(&cert, rotated.server_cert_pem.as_bytes());
    replace_file(&key, rotated.server_key_pem.as_bytes());
    replace_file(&ca, rotated.ca_pem.as_bytes());
    let client = client_trusting(
        &rotated.ca_pem,
        Some((&rotated.client_cert_pem, &rotated.client_key_pem)),
    );
    let served = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(r) = client
                .get(format!("https://localhost:{port}/rotated"))
                .send()
                .await
            {
                return r.status();
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the rotated certificate serves");
    assert_eq!(served, 200);
}

#[tokio::test]
async fn an_allowed_protocol_switch_is_spliced_through() {
    let upstream = Upstream::start().await;
    let (_dir, source) =
        authz_bundle("allow if input.attributes.request.http.headers.upgrade == \"echo\"");
    let config = proxy_config(test_config(), &upstream.url, |_| {});
    let server = Server::start(config, vec![source]).await;
    let mut stream = tokio::net::TcpStream::connect(&server.proxy_addrs[0])
        .await
        .unwrap();
    stream
        .write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tokio::time::timeout(WAIT, stream.read_exact(&mut byte))
            .await
            .unwrap()
            .unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("x-verdict-decision-id"), "{head}");
    stream
        .write_all(b"ping over the switched protocol")
        .await
        .unwrap();
    let mut echoed = vec![0u8; 31];
    tokio::time::timeout(WAIT, stream.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echoed, b"ping over the switched protocol");
    // Denied without the header the policy wants.
    let denied = common::raw_exchange(
        tokio::net::TcpStream::connect(&server.proxy_addrs[0])
            .await
            .unwrap(),
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: other\r\n\r\n",
    )
    .await;
    assert_eq!(denied.status, 403);
}

#[tokio::test]
async fn a_bundle_swap_under_load_fails_no_request_and_a_drain_finishes_requests_in_flight() {
    let upstream = Arc::new(Upstream::start().await);
    let dir = tempfile::tempdir().unwrap();
    let bundle = |rev: &str| {
        let mut files = simple_bundle(rev, "true");
        files[0].1 = format!(r#"{{"revision": "{rev}", "roots": ["app"]}}"#).into_bytes();
        files
    };
    write_dir(dir.path(), &bundle("r0"));
    let config = proxy_config(test_config(), &upstream.url, |p| {
        p.path = Some("app/allow".into())
    });
    let server = Server::start(config, vec![verdict::bundle::Source::path(dir.path())]).await;
    let target = format!("http://{}/pay", server.proxy_addrs[0]);
    let ok = Arc::new(AtomicUsize::new(0));
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (target, ok) = (target.clone(), ok.clone());
        clients.spawn(async move {
            let client = http();
            for _ in 0..50 {
                let r = client.get(&target).send().await.unwrap();
                assert_eq!(r.status(), 200, "no request fails while bundles swap");
                ok.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    for n in 1..=5 {
        let seen = server.attempts();
        for (name, bytes) in bundle(&format!("r{n}")) {
            replace_file(&dir.path().join(name), &bytes);
        }
        server.reloads_after(seen, 1).await;
    }
    while let Some(done) = clients.join_next().await {
        done.unwrap();
    }
    assert_eq!(ok.load(Ordering::Relaxed), 200);

    // A request the upstream holds is in flight when shutdown starts: it still completes.
    let held = tokio::spawn(
        http()
            .get(format!("http://{}/hold", server.proxy_addrs[0]))
            .send(),
    );
    let before = upstream.seen().len();
    upstream.wait_for(before + 1).await;
    let stopping = tokio::spawn(server.stop());
    upstream.release();
    let response = tokio::time::timeout(WAIT, held)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 200, "the drain let it finish");
    tokio::time::timeout(WAIT, stopping).await.unwrap().unwrap();
}

#[tokio::test]
async fn ext_authz_users_can_have_the_same_path_normalisation() {
    use crate::common::grpc::{channel, check_request_from_json};
    use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
    let (_dir, source) = authz_bundle("allow := {\"allowed\": input.parsed_path[0] == \"public\", \"headers\": {\"x-path\": concat(\"/\", input.parsed_path)}}");
    let mut config = test_config();
    let mut authz = verdict::config::ExtAuthzConfig {
        addr: "127.0.0.1:0".into(),
        ..Default::default()
    };
    authz.normalize_path = true;
    config.plugins.envoy_ext_authz_grpc = Some(authz);
    let server = Server::start(config, vec![source]).await;
    let mut client = AuthorizationClient::new(channel(&server).await);
    let check = |path: &str| {
        check_request_from_json(&format!(
            r#"{{"attributes": {{"request": {{"http": {{"method": "GET", "path": "{path}"}}}}}}}}"#
        ))
    };
    let traversal = client
        .check(check("/public/%2e%2e/admin"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        traversal.status.unwrap().code,
        7,
        "normalised to /admin: denied"
    );
    let ambiguous = client
        .check(check("/public%2f..%2fadmin"))
        .await
        .unwrap()
        .into_inner();
    let status = ambiguous.status.unwrap();
    assert_eq!(status.code, 7);
    assert!(
        status.message.contains("ambiguous path"),
        "{}",
        status.message
    );
    let fine = client
        .check(check("//public/./a"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fine.status.unwrap().code, 0);
}
