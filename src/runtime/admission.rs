//! The admission webhook's live state: the `AdmissionSet` reviews run on and the TLS
//! configuration its listener serves, read by the reloader (the one writer, as for bundles) at
//! start, when their files change and on SIGHUP.
//!
//! The set and the certificate are published together, but each keeps its last good version
//! on its own: a template that fails keeps its previous version inside the set, and a
//! half-rotated certificate pair keeps the previous pair serving.

use std::sync::Arc;

use crate::admission::{load_set, AdmissionSet};
use crate::config::AdmissionConfig;
use crate::tls::{self, TlsError};

/// What the admission listener serves with, immutable once published.
pub struct Admission {
    pub set: Arc<AdmissionSet>,
    pub tls: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("templates", &self.set.templates.len())
            .field("constraints", &self.set.constraints.len())
            .finish_non_exhaustive()
    }
}

/// How one admission reload went, for the reload progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionReload {
    /// The TLS files were read into a new configuration.
    pub tls_loaded: bool,
}

/// Reads the admission files named by the config.
pub struct AdmissionLoader {
    config: AdmissionConfig,
}

impl AdmissionLoader {
    /// Reads everything for the first time. Blocking. A TLS error is fatal here (there is
    /// nothing to serve with); policy errors are not (the set reports them).
    pub fn start(config: AdmissionConfig) -> Result<(AdmissionLoader, Admission), TlsError> {
        let tls = tls::server_config(&config.tls_files())?;
        let set = load_set(&config, None).unwrap_or_default();
        let admission = Admission {
            set: Arc::new(set),
            tls,
        };
        Ok((AdmissionLoader { config }, admission))
    }

    pub fn config(&self) -> &AdmissionConfig {
        &self.config
    }

    /// Reads the set and the TLS files again beside `current`. Blocking and CPU-bound.
    pub fn reload(&self, current: &Admission) -> (Admission, AdmissionReload) {
        let set = load_set(&self.config, Some(&current.set))
            .map(Arc::new)
            .unwrap_or_else(|| current.set.clone());
        let (tls, tls_loaded) = match tls::server_config(&self.config.tls_files()) {
            Ok(tls) => (tls, true),
            Err(error) => {
                tracing::error!(%error, "admission TLS files not reloaded; the previous certificate keeps serving");
                (current.tls.clone(), false)
            }
        };
        (Admission { set, tls }, AdmissionReload { tls_loaded })
    }
}
