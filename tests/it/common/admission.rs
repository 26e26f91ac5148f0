//! A real admission webhook in this process, on an ephemeral port over HTTPS with a throwaway
//! CA, reading its policies from a temporary copy of `policies/admission` that tests edit.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value as Json};
use verdict::admission::AdmissionSet;
use verdict::config::AdmissionConfig;
use verdict::runtime::{AppState, ReloadProgress};

use super::pki::Pki;
use super::{Server, WAIT};

/// A whole verdict with the admission webhook configured, as `verdict run` starts it.
pub struct Hook {
    pub url: String,
    pub server: Server,
    pub pki: Pki,
    pub dir: tempfile::TempDir,
}

/// The live state a reload is waited on for.
pub struct Live<'a>(&'a AppState);

impl Live<'_> {
    pub fn set(&self) -> Arc<AdmissionSet> {
        self.0.admission().expect("admission is on").set.clone()
    }

    pub fn progress(&self) -> ReloadProgress {
        *self.0.subscribe().borrow()
    }
}

impl Hook {
    /// Starts with the payment templates and constraints, plus `extra` files written under
    /// the policies directory; `tweak` adjusts the config before start.
    pub async fn start(extra: &[(&str, &str)], tweak: impl FnOnce(&mut AdmissionConfig)) -> Hook {
        let pki = Pki::new();
        let dir = tempfile::tempdir().unwrap();
        let policies = dir.path().join("policies");
        for sub in ["templates", "constraints"] {
            let from = super::repo().join("policies/admission").join(sub);
            std::fs::create_dir_all(policies.join(sub)).unwrap();
            for entry in std::fs::read_dir(from).unwrap() {
                let entry = entry.unwrap();
                std::fs::copy(entry.path(), policies.join(sub).join(entry.file_name())).unwrap();
            }
        }
        for (name, text) in extra {
            std::fs::write(policies.join(name), text).unwrap();
        }
        let tls = dir.path().join("tls");
        std::fs::create_dir_all(&tls).unwrap();
        std::fs::write(tls.join("tls.crt"), &pki.server_cert_pem).unwrap();
        std::fs::write(tls.join("tls.key"), &pki.server_key_pem).unwrap();
        std::fs::write(tls.join("client-ca.crt"), &pki.ca_pem).unwrap();
        let mut config = AdmissionConfig::new(tls.join("tls.crt"), tls.join("tls.key"));
        config.addr = "127.0.0.1:0".into();
        config.policies = vec![policies];
        tweak(&mut config);
        let mut service = super::test_config();
        service.verdict.admission = Some(config);
        service.verdict.shutdown_grace_period_seconds = 2;
        let sources = verdict::app::sources(&service).unwrap();
        let server = Server::start(service, sources).await;
        let addr = server.admission_addr.expect("the webhook listens");
        Hook {
            url: format!("https://127.0.0.1:{}", addr.port()),
            server,
            pki,
            dir,
        }
    }

    /// The admission set serving now.
    pub fn set(&self) -> Arc<AdmissionSet> {
        Live(&self.server.state).set()
    }

    pub fn policies(&self) -> PathBuf {
        self.dir.path().join("policies")
    }

    /// A client that trusts the test CA (and presents no certificate).
    pub fn client(&self) -> reqwest::Client {
        client_trusting(&self.pki.ca_pem, None)
    }

    /// Posts `review` to `path` and returns the AdmissionReview answer (HTTP 200 expected).
    pub async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> Json {
        let response = self
            .client()
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// The `response` of the answer to `review` on `/v1/admit`.
    pub async fn admit(&self, review: &Json) -> Json {
        self.post("/v1/admit", review.to_string()).await["response"].clone()
    }

    pub async fn status(&self) -> Json {
        let r = self
            .client()
            .get(format!("{}/v1/admission/status", self.url))
            .send()
            .await
            .unwrap();
        r.json().await.unwrap()
    }

    /// Sends raw bytes over TLS as one HTTP/1.1 exchange. The body is written from a task of
    /// its own, so that a server answering before it has read everything (a size limit) is
    /// seen answering rather than as a failed write.
    pub async fn raw(&self, request: Vec<u8>) -> super::RawResponse {
        use rustls::pki_types::pem::PemObject;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(self.pki.ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(&self.url["https://".len()..])
            .await
            .unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let tls = connector.connect(name, tcp).await.unwrap();
        let (mut reader, mut writer) = tokio::io::split(tls);
        tokio::spawn(async move {
            let _ = writer.write_all(&request).await;
        });
        let mut buf = Vec::new();
        let read = tokio::time::timeout(WAIT, reader.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "response in time");
        super::parse_response(&buf)
    }

    pub fn generation(&self) -> ReloadProgress {
        *self.server.state.subscribe().borrow()
    }

    /// Waits (on reload events) until an admission reload after `seen` satisfies `done`.
    pub async fn wait_for(&self, what: &str, seen: u64, done: impl Fn(&Live) -> bool) {
        let mut rx = self.server.state.subscribe();
        let state = self.server.state.clone();
        let reached = tokio::time::timeout(
            WAIT,
            rx.wait_for(|g| g.admission_reloads > seen && done(&Live(&state))),
        )
        .await;
        assert!(
            matches!(reached, Ok(Ok(_))),
            "timed out waiting for {what}: {}",
            self.status().await
        );
    }

    pub fn write(&self, rel: &str, text: &str) {
        super::replace_file(&self.policies().join(rel), text.as_bytes());
    }
}

pub fn client_trusting(ca_pem: &str, identity: Option<(&str, &str)>) -> reqwest::Client {
    verdict::remote::client::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
        .timeout(Duration::from_secs(20));
    if let Some((cert, key)) = identity {
        let pem = format!("{cert}\n{key}");
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

/// An `admission.k8s.io/v1` review of `operation` on `object`.
pub fn review(operation: &str, object: &Json) -> Json {
    let api_version = object["apiVersion"].as_str().unwrap_or("v1");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let mut request = json!({
        "uid": format!("uid-{}", object["metadata"]["name"].as_str().unwrap_or("x")),
        "kind": {"group": group, "version": version, "kind": object["kind"]},
        "resource": {"group": group, "version": version, "resource": "pods"},
        "name": object["metadata"]["name"],
        "namespace": object["metadata"]["namespace"],
        "operation": operation,
        "userInfo": {"username": "alice"},
        "object": object,
        "oldObject": null,
        "dryRun": false,
    });
    if operation == "DELETE" {
        request["oldObject"] = object.clone();
        request["object"] = Json::Null;
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

/// A pod in `namespace` running `image`, with limits unless `limits` is false.
pub fn pod(name: &str, namespace: &str, image: &str) -> Json {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{
            "name": "main", "image": image,
            "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}},
        }]},
    })
}

pub fn sample(name: &str) -> Json {
    let path: &Path = &super::repo().join("policies/admission/samples").join(name);
    let text = std::fs::read_to_string(path).unwrap();
    yaml_serde::from_str(&text).unwrap()
}
