//! An HTTP client for one configured service, with OPA's credential and TLS settings.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, USER_AGENT};

use crate::config::ServiceConfig;

/// OPA's default time to wait for response headers.
const DEFAULT_RESPONSE_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const NO_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("service {service}: cannot read {what} {path}: {error}")]
    Read {
        service: String,
        what: &'static str,
        path: String,
        error: std::io::Error,
    },
    #[error("service {service}: {message}")]
    Invalid { service: String, message: String },
    /// The bearer token file (`token_path`) could not be read for a request.
    #[error("reading the bearer token: {0}")]
    BearerToken(std::io::Error),
}

/// A service's HTTP client and the credentials to send with each request.
#[derive(Debug, Clone)]
pub struct Client {
    pub service: ServiceConfig,
    http: reqwest::Client,
    pub response_header_timeout: Duration,
}

/// rustls needs one process-wide crypto provider; ring builds everywhere verdict does (musl
/// included) without a C toolchain beyond cc.
pub fn install_crypto_provider() {
    // Err only means one is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Client {
    /// Builds the client. Blocking: it reads certificate files.
    pub fn new(service: &ServiceConfig) -> Result<Client, ClientError> {
        install_crypto_provider();
        let invalid = |message: String| ClientError::Invalid {
            service: service.name.clone(),
            message,
        };
        let read = |what: &'static str, path: &std::path::Path| {
            std::fs::read(path).map_err(|error| ClientError::Read {
                service: service.name.clone(),
                what,
                path: path.display().to_string(),
                error,
            })
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("verdict/", env!("CARGO_PKG_VERSION"))),
        );
        for (name, value) in &service.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| invalid(format!("header {name:?}: {e}")))?;
            let value =
                HeaderValue::from_str(value).map_err(|e| invalid(format!("header {name}: {e}")))?;
            headers.insert(name, value);
        }
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            // A bundle server behind a proxy is configured by URL; environment proxies on an
            // edge node are more likely a leftover than intent, as for OPA's client.
            .no_proxy()
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(90))
            .danger_accept_invalid_certs(service.allow_insecure_tls);
        if let Some(tls) = &service.tls {
            if let Some(ca) = &tls.ca_cert {
                let pem = read("CA certificate", ca)?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| invalid(format!("CA certificate {}: {e}", ca.display())))?;
                if certs.is_empty() {
                    return Err(invalid(format!(
                        "CA certificate {}: no certificate found",
                        ca.display()
                    )));
                }
                builder = if tls.system_ca_required {
                    builder.tls_certs_merge(certs)
                } else {
                    builder.tls_certs_only(certs)
                };
            }
        }
        if let Some(client_tls) = &service.credentials.client_tls {
            if client_tls.private_key_passphrase.is_some() {
                return Err(invalid(
                    "credentials.client_tls: encrypted private keys are not supported; decrypt the key (openssl pkey) and protect the file instead".into(),
                ));
            }
            let mut pem = read("client certificate", &client_tls.cert)?;
            pem.push(b'\n');
            pem.extend(read("client private key", &client_tls.private_key)?);
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|e| invalid(format!("credentials.client_tls: {e}")))?;
            builder = builder.identity(identity);
        }
        if let Some(bearer) = &service.credentials.bearer {
            if bearer.token.is_none() && bearer.token_path.is_none() {
                return Err(invalid(
                    "credentials.bearer needs token or token_path".into(),
                ));
            }
        }
        let http = builder
            .build()
            .map_err(|e| invalid(format!("cannot build the HTTP client: {e}")))?;
        let response_header_timeout = match service.response_header_timeout_seconds {
            None => DEFAULT_RESPONSE_HEADER_TIMEOUT,
            // 0 is "no timeout" in OPA (Go's transport); a year stands for that here.
            Some(0) => NO_TIMEOUT,
            Some(s) => Duration::from_secs(s),
        };
        Ok(Client {
            service: service.clone(),
            http,
            response_header_timeout,
        })
    }

    /// A GET with the service's credentials.
    pub async fn get(&self, url: &str) -> Result<reqwest::RequestBuilder, ClientError> {
        self.with_credentials(self.http.get(url)).await
    }

    /// A POST with the service's credentials.
    pub async fn post(&self, url: &str) -> Result<reqwest::RequestBuilder, ClientError> {
        self.with_credentials(self.http.post(url)).await
    }

    /// The URL of `path` on this service.
    pub fn url(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.service.url.trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }

    /// Adds the bearer token. Reads `token_path` on a blocking thread, so a rotated token is
    /// used from the next request on.
    async fn with_credentials(
        &self,
        mut request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ClientError> {
        if let Some(bearer) = &self.service.credentials.bearer {
            let token = match (&bearer.token_path, &bearer.token) {
                (Some(path), _) => {
                    let path = path.clone();
                    let read = tokio::task::spawn_blocking(move || std::fs::read_to_string(&path))
                        .await
                        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
                    read.map_err(ClientError::BearerToken)?.trim().to_string()
                }
                (None, Some(token)) => token.clone(),
                (None, None) => String::new(),
            };
            request = request.header(AUTHORIZATION, format!("{} {token}", bearer.scheme));
        }
        Ok(request)
    }
}
