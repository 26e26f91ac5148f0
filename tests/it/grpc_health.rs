//! gRPC health by the health-checking spec, through tonic-health's generated client: Watch
//! sends only changes, an unknown service is SERVICE_UNKNOWN on a stream that stays open, and
//! shutdown turns every service NOT_SERVING and ends the open streams at once, in process and
//! in the real binary on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tonic::transport::Channel;
use tonic::Streaming;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use verdict::config::ExtAuthzConfig;
use verdict::runtime::Trigger;

use crate::common::running::Running;
use crate::common::{self, test_config, Server, WAIT};

/// Well inside any grace period these tests configure: a stop that waited for an open Watch
/// would take the whole grace period.
const PROMPT: Duration = Duration::from_secs(5);

/// The payment bundle with gRPC on, and a grace period long enough that a held drain shows.
async fn server() -> Server {
    let mut config = test_config();
    config.verdict.shutdown_grace_period_seconds = 60;
    config.plugins.envoy_ext_authz_grpc = Some(ExtAuthzConfig {
        addr: "127.0.0.1:0".into(),
        ..ExtAuthzConfig::default()
    });
    let sources = verdict::app::sources(&config).unwrap();
    Server::start(config, sources).await
}

async fn watch(channel: Channel, service: &str) -> Streaming<HealthCheckResponse> {
    HealthClient::new(channel)
        .watch(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("Watch is accepted for any service")
        .into_inner()
}

async fn next(stream: &mut Streaming<HealthCheckResponse>) -> Option<ServingStatus> {
    let message = tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("a message or the end in time")
        .expect("the stream ends cleanly");
    message.map(|m| ServingStatus::try_from(m.status).unwrap())
}

/// Everything the stream sends until it ends.
async fn rest(stream: &mut Streaming<HealthCheckResponse>) -> Vec<ServingStatus> {
    let mut seen = Vec::new();
    while let Some(status) = next(stream).await {
        seen.push(status);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sends_changes_only_and_ends_at_shutdown_without_holding_the_drain() {
    let server = server().await;
    let channel = common::grpc::channel(&server).await;
    let mut whole = watch(channel.clone(), "").await;
    let mut authz = watch(channel.clone(), "envoy.service.auth.v3.Authorization").await;
    assert_eq!(next(&mut whole).await, Some(ServingStatus::Serving));
    assert_eq!(next(&mut authz).await, Some(ServingStatus::Serving));

    // Reloads that change nothing about readiness are no news for a watcher.
    for _ in 0..3 {
        let seen = server.attempts();
        server.triggers.send(Trigger::All).unwrap();
        server.reloads_after(seen, 1).await;
    }

    let started = Instant::now();
    server.stop().await;
    assert!(
        started.elapsed() < PROMPT,
        "stop took {:?} with two Watch streams open",
        started.elapsed()
    );
    assert_eq!(rest(&mut whole).await, vec![ServingStatus::NotServing]);
    assert_eq!(rest(&mut authz).await, vec![ServingStatus::NotServing]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_service_is_service_unknown_on_an_open_stream() {
    let server = server().await;
    let channel = common::grpc::channel(&server).await;
    let mut unknown = watch(channel.clone(), "no.such.Service").await;
    assert_eq!(
        next(&mut unknown).await,
        Some(ServingStatus::ServiceUnknown)
    );

    // Check answers by the spec: NOT_FOUND for the unknown service, the status for known ones.
    let mut client = HealthClient::new(channel);
    let err = client
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");
    let ok = client
        .check(HealthCheckRequest {
            service: "verdict.v1.Decisions".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.status, ServingStatus::Serving as i32);
    // Those answers came after the Watch's first message on the same connection: had the
    // stream been closed, its end would be here already.
    assert!(
        unknown.message().now_or_never().is_none(),
        "the Watch stream on an unknown service stays open"
    );

    let started = Instant::now();
    server.stop().await;
    assert!(
        started.elapsed() < PROMPT,
        "stop took {:?}",
        started.elapsed()
    );
    assert_eq!(rest(&mut unknown).await, Vec::<ServingStatus>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_open_watch_streams_and_the_binary_exits_promptly() {
    let mut verdict = Running::spawn(&[
        "--addr",
        "127.0.0.1:0",
        "--grpc-addr",
        "127.0.0.1:0",
        "--shutdown-grace-period",
        "60",
    ]);
    let started = verdict.wait_for_log("server started").await;
    let grpc_addr = started["grpc_addr"].as_str().unwrap().to_string();
    let mut stream = watch(common::grpc::connect(&grpc_addr).await, "").await;
    assert_eq!(next(&mut stream).await, Some(ServingStatus::Serving));

    let stopping = Instant::now();
    let (_, code) = verdict.stop().await;
    assert_eq!(code, Some(0));
    assert!(
        stopping.elapsed() < PROMPT,
        "SIGTERM to exit took {:?} with a Watch open",
        stopping.elapsed()
    );
    assert_eq!(rest(&mut stream).await, vec![ServingStatus::NotServing]);
}
