//! The gRPC listener: Envoy's ext_authz v3 (`ext_authz`), verdict's native decision API
//! (`decisions`), gRPC health (`health`) and, when enabled, server reflection. All of them are
//! thin adapters over the same decision core as the HTTP API.

pub mod decisions;
pub mod ext_authz;
pub mod health;
mod incoming;

use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::service::auth::v3::authorization_server::AuthorizationServer;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use super::conn::ConnLimits;
use super::Listener;
use crate::config::{ConfigError, ExtAuthzConfig};
use crate::runtime::AppState;

/// Code generated from `proto/verdict/v1/decisions.proto`.
#[allow(clippy::all, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
pub mod pb {
    tonic::include_proto!("verdict.v1");
}

/// Descriptors for server reflection: Envoy's authorization API as opa-envoy-plugin serves it,
/// and verdict's own.
const ENVOY_DESCRIPTORS: &[u8] = include_bytes!("../../../proto/envoy-authz-descriptors.pb");
const VERDICT_DESCRIPTORS: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/verdict_descriptors.pb"));

/// The gRPC services to serve, and the health status that `serve` turns NOT_SERVING the
/// moment shutdown starts.
#[derive(Clone, Debug)]
pub struct Services {
    pub routes: Routes,
    pub health: health::HealthHandle,
}

/// Every gRPC service verdict serves, configured from `plugins.envoy_ext_authz_grpc`.
pub fn routes(state: Arc<AppState>, config: &ExtAuthzConfig) -> Result<Services, ConfigError> {
    let authz = ext_authz::ExtAuthz::new(
        state.clone(),
        config.decision_path()?,
        ext_authz::CheckOptions {
            dry_run: config.dry_run,
            skip_body: config.skip_request_body_parse,
            normalize_path: config.normalize_path,
        },
    );
    let authz = AuthorizationServer::new(authz)
        .max_decoding_message_size(config.grpc_max_recv_msg_size)
        .max_encoding_message_size(config.grpc_max_send_msg_size);
    let decisions =
        pb::decisions_server::DecisionsServer::new(decisions::DecisionService::new(state.clone()))
            .max_decoding_message_size(config.grpc_max_recv_msg_size)
            .max_encoding_message_size(config.grpc_max_send_msg_size);
    let health = health::HealthHandle::follow(state);
    let mut routes = Routes::new(authz)
        .add_service(decisions)
        .add_service(health.service());
    if config.enable_reflection {
        let builder = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(ENVOY_DESCRIPTORS)
                .register_encoded_file_descriptor_set(VERDICT_DESCRIPTORS)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let v1 = builder()
            .build_v1()
            .map_err(|e| ConfigError::Invalid(format!("gRPC reflection: {e}")))?;
        let v1alpha = builder()
            .build_v1alpha()
            .map_err(|e| ConfigError::Invalid(format!("gRPC reflection: {e}")))?;
        routes = routes.add_service(v1).add_service(v1alpha);
    }
    Ok(Services { routes, health })
}

/// Serves `services` on every listener until `shutdown` is cancelled, then lets calls in
/// flight finish for at most `grace`. Health turns NOT_SERVING and its `Watch` streams end
/// before the listeners stop, so a health watcher never holds the drain. HTTP/2 pings find
/// dead peers within the header timeout's time, and TCP connections are capped as on the
/// HTTP listeners.
pub async fn serve(
    listeners: Vec<Listener>,
    services: Services,
    (limits, state): (ConnLimits, Arc<AppState>),
    shutdown: CancellationToken,
    grace: Duration,
) {
    let Services { routes, health } = services;
    let stop_serving = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    for listener in listeners {
        let stopped = stop_serving.clone().cancelled_owned();
        let server = tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .http2_keepalive_interval(Some(limits.header_read_timeout))
            .http2_keepalive_timeout(Some(limits.header_read_timeout))
            .add_routes(routes.clone());
        match listener {
            Listener::Tcp(l) => {
                let incoming = incoming::limited(l, limits.max_connections, state.clone());
                tasks.spawn(
                    async move { server.serve_with_incoming_shutdown(incoming, stopped).await },
                );
            }
            Listener::Unix(l, path) => {
                let incoming = tokio_stream::wrappers::UnixListenerStream::new(l);
                tasks.spawn(async move {
                    let result = server.serve_with_incoming_shutdown(incoming, stopped).await;
                    let _ = std::fs::remove_file(path);
                    result
                });
            }
        }
    }
    shutdown.cancelled().await;
    health.stop();
    stop_serving.cancel();
    super::drain(tasks, grace, "gRPC").await;
}
