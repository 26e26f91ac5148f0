//! The webhook's HTTPS listener: rustls configured from PEM files (optionally requiring a
//! client certificate), each connection taking the TLS configuration current when it
//! arrives, so that rotated certificate files serve new connections without a restart.

use std::future::Future;
use std::io::BufReader;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

use super::config::AdmissionConfig;
use super::reload::AdmissionState;
use super::AdmissionError;

/// A client that connects and never finishes its handshake must not hold a task forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the rustls server configuration from the configured files. Blocking file reads.
pub fn load_tls(config: &AdmissionConfig) -> Result<Arc<rustls::ServerConfig>, AdmissionError> {
    let read = |what: &str, path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|e| AdmissionError::Tls(format!("cannot read {what} {}: {e}", path.display())))
    };
    let cert_pem = read("certificate", &config.tls_cert_file)?;
    let key_pem = read("private key", &config.tls_private_key_file)?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile_certs(&cert_pem)?;
    if certs.is_empty() {
        return Err(AdmissionError::Tls(format!(
            "no certificate in {}",
            config.tls_cert_file.display()
        )));
    }
    let key: PrivateKeyDer<'static> = rustls::pki_types::pem::PemObject::from_pem_slice(&key_pem)
        .map_err(|e| {
        AdmissionError::Tls(format!(
            "no private key in {}: {e}",
            config.tls_private_key_file.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| AdmissionError::Tls(e.to_string()))?;
    let builder = match &config.tls_client_ca_file {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_pemfile_certs(&read("client CA", ca)?)? {
                roots
                    .add(cert)
                    .map_err(|e| AdmissionError::Tls(format!("client CA {}: {e}", ca.display())))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| AdmissionError::Tls(format!("client CA: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut tls = builder
        .with_single_cert(certs, key)
        .map_err(|e| AdmissionError::Tls(format!("certificate and key do not fit: {e}")))?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(tls))
}

fn rustls_pemfile_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, AdmissionError> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_reader_iter(&mut BufReader::new(pem))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AdmissionError::Tls(format!("bad PEM certificate: {e}")))
}

/// Serves `router` over TLS on `listener` until `shutdown`, then gives open connections
/// `grace` to finish.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AdmissionState>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send,
    grace: Duration,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: keep serving the connections
                    // already open, and do not spin while none can be accepted.
                    tracing::warn!(error = %e, "admission accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = tokio_rustls::TlsAcceptor::from(state.tls());
        // The peer, as axum's ConnectInfo, for the decision log's `requested_by`.
        let service = TowerToHyperService::new(
            router
                .clone()
                .layer(axum::Extension(axum::extract::ConnectInfo(peer))),
        );
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "admission TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let builder = auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "admission connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("admission grace period over; closing the remaining connections");
    }
}
