//! `grpc.health.v1.Health` by the gRPC health-checking spec: NOT_SERVING until every bundle has
//! activated once, SERVING after (the rule of `/health?bundles`, so Envoy's and Kubernetes'
//! gRPC probes agree with the HTTP ones), and NOT_SERVING again from the moment shutdown
//! starts. `Watch` sends only changes and ends at shutdown, so an open one never holds the drain.

use std::pin::Pin;
use std::sync::Arc;

use futures_util::Stream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use crate::runtime::AppState;

/// The services whose status is reported; "" is the server as a whole. They all share one
/// status: each of them answers from the same bundles.
pub const SERVICES: &[&str] = &[
    "",
    "envoy.service.auth.v3.Authorization",
    "verdict.v1.Decisions",
];

/// The health status every service reports, and the shutdown that ends every `Watch`.
#[derive(Clone, Debug)]
pub struct HealthHandle {
    status: Arc<watch::Sender<ServingStatus>>,
    stopping: CancellationToken,
}

impl Default for HealthHandle {
    fn default() -> Self {
        HealthHandle {
            status: Arc::new(watch::Sender::new(ServingStatus::NotServing)),
            stopping: CancellationToken::new(),
        }
    }
}

impl HealthHandle {
    /// The service to add to the gRPC routes.
    pub fn service(&self) -> HealthServer<HealthService> {
        HealthServer::new(HealthService {
            handle: self.clone(),
        })
    }

    pub fn status(&self) -> ServingStatus {
        *self.status.borrow()
    }

    /// Sets the status; watchers hear of it only when it changes, and once shutdown has
    /// started nothing turns it back to SERVING (checked under the channel's lock, which
    /// `stop` holds too).
    fn set(&self, status: ServingStatus) {
        self.status.send_if_modified(|current| {
            let changed = *current != status && !self.stopping.is_cancelled();
            if changed {
                *current = status;
            }
            changed
        });
    }

    /// Shutdown has started: NOT_SERVING from now on, and every open `Watch` ends after
    /// telling its client so. Both happen under the channel's lock, so a stream that sees
    /// the cancellation also sees NOT_SERVING.
    pub fn stop(&self) {
        self.status.send_if_modified(|current| {
            self.stopping.cancel();
            let changed = *current != ServingStatus::NotServing;
            *current = ServingStatus::NotServing;
            changed
        });
    }

    /// A status that follows the bundles' from now until shutdown.
    pub fn follow(state: Arc<AppState>) -> HealthHandle {
        let handle = HealthHandle::default();
        handle.set(serving_status(&state));
        tokio::spawn(handle.clone().follow_bundles(state));
        handle
    }

    /// Keeps the status in step with the bundles until the state or the server is gone.
    async fn follow_bundles(self, state: Arc<AppState>) {
        let mut progress = state.subscribe();
        loop {
            self.set(serving_status(&state));
            tokio::select! {
                changed = progress.changed() => if changed.is_err() { return },
                () = self.stopping.cancelled() => return,
            }
        }
    }
}

fn serving_status(state: &AppState) -> ServingStatus {
    match state.bundles_ready() {
        true => ServingStatus::Serving,
        false => ServingStatus::NotServing,
    }
}

/// The `grpc.health.v1.Health` service over a `HealthHandle`.
#[derive(Debug)]
pub struct HealthService {
    handle: HealthHandle,
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

fn known(service: &str) -> bool {
    SERVICES.contains(&service)
}

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        // The spec: Check on a service the server does not know fails with NOT_FOUND.
        if !known(&request.get_ref().service) {
            return Err(Status::not_found("unknown service"));
        }
        Ok(Response::new(HealthCheckResponse {
            status: self.handle.status() as i32,
        }))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let stream = match known(&request.get_ref().service) {
            true => changes(self.handle.clone()),
            // The spec: an unknown service is SERVICE_UNKNOWN on a stream that stays open, for
            // the service may be registered later. Ours never are, so nothing follows.
            false => unknown_until_stop(self.handle.stopping.clone()),
        };
        Ok(Response::new(stream))
    }
}

fn message(status: ServingStatus) -> Result<HealthCheckResponse, Status> {
    Ok(HealthCheckResponse {
        status: status as i32,
    })
}

/// What one `Watch` stream has sent and is waiting on.
struct Watching {
    rx: watch::Receiver<ServingStatus>,
    stopping: CancellationToken,
    last: Option<ServingStatus>,
}

/// The current status, then each change, then the end of the stream once shutdown starts
/// (after NOT_SERVING, if that was not the last status sent).
fn changes(handle: HealthHandle) -> WatchStream {
    let watching = Watching {
        rx: handle.status.subscribe(),
        stopping: handle.stopping,
        last: None,
    };
    Box::pin(futures_util::stream::unfold(watching, |mut w| async move {
        loop {
            let now = *w.rx.borrow_and_update();
            if w.last != Some(now) {
                w.last = Some(now);
                return Some((message(now), w));
            }
            if w.stopping.is_cancelled() {
                return None;
            }
            tokio::select! {
                changed = w.rx.changed() => if changed.is_err() { return None },
                () = w.stopping.cancelled() => {}
            }
        }
    }))
}

/// SERVICE_UNKNOWN once, then nothing until shutdown ends the stream.
fn unknown_until_stop(stopping: CancellationToken) -> WatchStream {
    let first = true;
    Box::pin(futures_util::stream::unfold(
        (stopping, first),
        |(stopping, first)| async move {
            if first {
                return Some((message(ServingStatus::ServiceUnknown), (stopping, false)));
            }
            stopping.cancelled().await;
            None
        },
    ))
}
