//! `grpc.health.v1.Health`: NOT_SERVING until every bundle has activated once, SERVING after,
//! by the same rule as `/health?bundles`, so Envoy's and Kubernetes' gRPC probes agree with
//! the HTTP ones.

use std::sync::Arc;

use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

use crate::runtime::AppState;

/// The services whose status is reported; "" is the server as a whole.
pub const SERVICES: &[&str] = &[
    "",
    "envoy.service.auth.v3.Authorization",
    "verdict.v1.Decisions",
];

/// Keeps `reporter` in step with the bundles until the state is gone.
pub async fn follow_bundles(state: Arc<AppState>, reporter: HealthReporter) {
    let mut progress = state.subscribe();
    loop {
        let status = if state.bundles_ready() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for service in SERVICES {
            reporter.set_service_status(*service, status).await;
        }
        if progress.changed().await.is_err() {
            return;
        }
    }
}
