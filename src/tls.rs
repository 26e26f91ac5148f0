//! Reading a listener's PEM certificate, key and optional client CA into a rustls server
//! configuration. The reloader reads them (at start, on file changes, on SIGHUP) and the
//! listeners take whichever configuration is current when a connection arrives.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The files a TLS listener serves with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// When set, clients must present a certificate this CA signed.
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// Every file named, for watching.
    pub fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        [&self.cert, &self.key].into_iter().chain(&self.client_ca)
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {}: {message}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("no certificate in {}", .0.display())]
    NoCertificate(PathBuf),
    #[error("no private key in {}: {message}", path.display())]
    NoKey { path: PathBuf, message: String },
    #[error("bad PEM certificate in {}: {message}", path.display())]
    BadCertificate { path: PathBuf, message: String },
    #[error("client CA {}: {message}", path.display())]
    ClientCa { path: PathBuf, message: String },
    #[error("certificate and key do not fit: {0}")]
    Mismatch(String),
    #[error("{0}")]
    Config(String),
}

/// Builds the rustls server configuration from `files`, offering HTTP/2 and HTTP/1.1.
/// Blocking file reads.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let cert_pem = read("certificate", &files.cert)?;
    let key_pem = read("private key", &files.key)?;
    let certs = certificates(&cert_pem, &files.cert)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(files.cert.clone()));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::NoKey {
        path: files.key.clone(),
        message: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let ca_error = |message: String| TlsError::ClientCa {
                path: ca.clone(),
                message,
            };
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates(&read("client CA", ca)?, ca)? {
                roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| ca_error(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut tls = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Mismatch(e.to_string()))?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(tls))
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        what,
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn certificates(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    CertificateDer::pem_reader_iter(&mut BufReader::new(pem))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadCertificate {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// What a TLS connection's client showed: the name it asked for and its certificate, in the
/// forms Envoy gives an ext_authz server.
#[derive(Debug, Clone, Default)]
pub struct TlsPeer {
    pub sni: Option<String>,
    /// The client certificate (the leaf), PEM.
    pub certificate_pem: Option<String>,
    /// Its identity, Envoy's way: the first URI SAN, else the first DNS SAN, else the subject.
    pub principal: Option<String>,
}

impl TlsPeer {
    pub fn of(connection: &rustls::ServerConnection) -> TlsPeer {
        let leaf = connection.peer_certificates().and_then(|c| c.first());
        TlsPeer {
            sni: connection.server_name().map(str::to_string),
            certificate_pem: leaf.map(|der| {
                let block = pem::Pem::new("CERTIFICATE", der.as_ref().to_vec());
                pem::encode_config(
                    &block,
                    pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
                )
            }),
            principal: leaf.and_then(|der| principal(der.as_ref())),
        }
    }
}

fn principal(der: &[u8]) -> Option<String> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| san.value.general_names.clone())
        .unwrap_or_default();
    let uri = names.iter().find_map(|n| match n {
        GeneralName::URI(u) => Some(u.to_string()),
        _ => None,
    });
    let dns = || {
        names.iter().find_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_string()),
            _ => None,
        })
    };
    uri.or_else(dns)
        .or_else(|| Some(cert.subject().to_string()))
}
