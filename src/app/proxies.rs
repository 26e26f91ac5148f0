//! The authorizing proxy listeners, bound at start: each one's routes (its upstream and
//! decision path checked) and, for HTTPS, its certificate, loaded before anything serves.

use std::sync::Arc;

use super::{blocking, AppError};
use crate::config::ProxyConfig;
use crate::runtime::AppState;
use crate::server::proxy::tls::CurrentTls;
use crate::server::{self, Listener};

/// A bound authorizing proxy listener: its routes and, for HTTPS, its current certificate.
pub(super) struct ProxyListener {
    pub listener: Listener,
    pub router: axum::Router,
    pub tls: Option<Arc<CurrentTls>>,
}

/// Binds each proxy listener with its routes and TLS files: a bad upstream, decision path or
/// certificate is a start error.
pub(super) async fn bind_proxies(
    state: &Arc<AppState>,
    configs: &[ProxyConfig],
) -> Result<Vec<ProxyListener>, AppError> {
    let mut proxies = Vec::with_capacity(configs.len());
    for config in configs {
        let router = server::proxy::router(state.clone(), config)?;
        let tls = match config.tls_files() {
            Some(files) => {
                let addr = config.addr.clone();
                Some(
                    blocking("proxy TLS", move || {
                        CurrentTls::load(files).map_err(|error| AppError::ProxyTls { addr, error })
                    })
                    .await?,
                )
            }
            None => None,
        };
        proxies.push(ProxyListener {
            listener: Listener::bind(&config.addr).await?,
            router,
            tls,
        });
    }
    Ok(proxies)
}
