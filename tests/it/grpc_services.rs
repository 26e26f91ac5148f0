//! The gRPC listener's other services end to end, with real tonic clients: health,
//! reflection, the native decision API, hot swap under ext_authz load and Unix sockets
//! (ext_authz's decisions themselves are in `grpc`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::grpc::{check, grpc_config, payment, payment_server, status_code, GOOD_PAYMENT};

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{bundle_tar, replace_file, write_dir, Server, WAIT};
use serde_json::{json, Value as Json};
use tonic::Code;
use verdict::bundle::Source;
use verdict::config::ExtAuthzConfig;
use verdict::server::grpc::pb::EvaluateRequest;

async fn health_status(server: &Server, service: &str) -> i32 {
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    let mut health = HealthClient::new(common::grpc::channel(server).await);
    health
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_health_is_serving_once_the_bundles_are_active() {
    use tonic_health::pb::health_check_response::ServingStatus;
    let server = payment_server().await;
    for service in [
        "",
        "envoy.service.auth.v3.Authorization",
        "verdict.v1.Decisions",
    ] {
        assert_eq!(
            health_status(&server, service).await,
            ServingStatus::Serving as i32,
            "{service:?}"
        );
    }
    server.stop().await;

    // Before any bundle has activated (a state the remote bundle loader starts in), the same
    // routes answer NOT_SERVING.
    let config = Arc::new(grpc_config(ExtAuthzConfig::default()));
    let state = verdict::runtime::AppState::new(
        config.clone(),
        verdict::runtime::Snapshot::empty(),
        vec![verdict::runtime::BundleStatus::new("remote", true)],
    );
    let authz = config.plugins.envoy_ext_authz_grpc.clone().unwrap();
    let listener = verdict::server::Listener::bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = listener.local_addr();
    let routes = verdict::server::grpc::routes(state.clone(), &authz).unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let limits = verdict::server::conn::ConnLimits::default();
    let task = tokio::spawn(verdict::server::grpc::serve(
        vec![listener],
        routes,
        (limits, state),
        stop.clone(),
        Duration::from_secs(1),
    ));
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let mut watch = health
        .watch(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = tokio::time::timeout(WAIT, watch.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.status, ServingStatus::NotServing as i32);
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_services_only_when_enabled() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    async fn ask(
        server: &Server,
        request: MessageRequest,
    ) -> Result<MessageResponse, tonic::Status> {
        let mut client = ServerReflectionClient::new(common::grpc::channel(server).await);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(request),
        };
        let mut responses = client
            .server_reflection_info(tokio_stream::once(request))
            .await?
            .into_inner();
        Ok(responses
            .message()
            .await?
            .unwrap()
            .message_response
            .unwrap())
    }

    let config = grpc_config(ExtAuthzConfig {
        enable_reflection: true,
        ..ExtAuthzConfig::default()
    });
    let sources = verdict::app::sources(&config).unwrap();
    let server = Server::start(config, sources).await;
    let MessageResponse::ListServicesResponse(list) =
        ask(&server, MessageRequest::ListServices(String::new()))
            .await
            .unwrap()
    else {
        panic!("not a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in [
        "envoy.service.auth.v3.Authorization",
        "verdict.v1.Decisions",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    let symbol = ask(
        &server,
        MessageRequest::FileContainingSymbol("envoy.service.auth.v3.CheckRequest".into()),
    )
    .await
    .unwrap();
    assert!(
        matches!(symbol, MessageResponse::FileDescriptorResponse(ref f) if !f.file_descriptor_proto.is_empty()),
        "{symbol:?}"
    );
    server.stop().await;

    let server = payment_server().await;
    let err = ask(&server, MessageRequest::ListServices(String::new()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_native_api_decides_like_the_data_api() {
    let server = payment_server().await;
    let mut client = common::grpc::decisions_client(&server).await;
    let input = json!({
        "method": "POST", "path": "/api/payment", "role": "customer",
        "amount": 2500, "currency": "EUR", "merchant": "m-666", "country": "DE", "velocity": 1
    });
    let answer = client
        .evaluate(EvaluateRequest {
            path: "payment/decision".into(),
            input: input.to_string(),
            strict_builtin_errors: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(answer.defined);
    let via_http: Json = common::http()
        .post(server.url("/v1/data/payment/decision"))
        .json(&json!({ "input": input }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let result: Json = serde_json::from_str(&answer.result).unwrap();
    assert_eq!(result, via_http["result"]);
    assert_eq!(result["allow"], json!(false), "m-666 is blocked");
    assert_eq!(answer.decision_id.len(), 36);
    assert_eq!(
        answer.revisions,
        HashMap::from([("bundles/payment".to_string(), server.revision())])
    );

    let undefined = client
        .evaluate(EvaluateRequest {
            path: "payment/nothing_here".into(),
            ..EvaluateRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!undefined.defined);
    assert_eq!(undefined.result, "");

    let bad_input = client
        .evaluate(EvaluateRequest {
            path: "payment/decision".into(),
            input: "{\"amount\": ".into(),
            ..EvaluateRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_input.code(), Code::InvalidArgument);
    assert!(
        bad_input.message().contains("unexpected EOF"),
        "{bad_input:?}"
    );

    let bad_path = client
        .evaluate(EvaluateRequest {
            path: "payment/a\"b".into(),
            ..EvaluateRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_path.code(), Code::InvalidArgument, "{bad_path:?}");
    server.stop().await;

    // An evaluation error is INTERNAL, with OPA's error code in the message.
    let dir = tempfile::tempdir().unwrap();
    write_dir(
        dir.path(),
        &[(
            "app/p.rego".into(),
            b"package app\n\nx := 1 if input.a\n\nx := 2 if input.b\n".to_vec(),
        )],
    );
    let server = Server::start(
        grpc_config(ExtAuthzConfig::default()),
        vec![Source::path(dir.path())],
    )
    .await;
    let mut client = common::grpc::decisions_client(&server).await;
    let conflict = client
        .evaluate(EvaluateRequest {
            path: "app.x".into(),
            input: r#"{"a": true, "b": true}"#.into(),
            ..EvaluateRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(conflict.code(), Code::Internal);
    assert!(
        conflict.message().contains("eval_conflict_error"),
        "{conflict:?}"
    );
    server.stop().await;
}

/// A bundle whose ext_authz policy and data both name the revision.
fn versioned(revision: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        (
            ".manifest".into(),
            format!(r#"{{"revision": "{revision}", "roots": ["envoy"]}}"#).into_bytes(),
        ),
        (
            "envoy/authz/policy.rego".into(),
            format!(
                "package envoy.authz\n\nallow := {{\"allowed\": true, \"dynamic_metadata\": {{\"policy\": \"{revision}\", \"data\": data.envoy.config.revision}}}}\n"
            )
            .into_bytes(),
        ),
        (
            "envoy/config/data.json".into(),
            format!(r#"{{"revision": "{revision}"}}"#).into_bytes(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_check_fails_or_mixes_revisions_during_swaps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.tar.gz");
    std::fs::write(&path, bundle_tar(&versioned("r0"))).unwrap();
    let mut config = grpc_config(ExtAuthzConfig::default());
    config.verdict.watch = true;
    let server = Server::start(config, vec![Source::path(&path)]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut client = common::grpc::authz_client(&server).await;
        let stop = stop.clone();
        clients.push(tokio::spawn(async move {
            let mut seen: BTreeMap<String, u64> = BTreeMap::new();
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match client.check(check("GET", "/", &[], "")).await {
                    Ok(r) => {
                        let fields = &r.get_ref().dynamic_metadata.as_ref().unwrap().fields;
                        let policy = format!("{:?}", fields["policy"]);
                        let data = format!("{:?}", fields["data"]);
                        if policy != data {
                            failures.push(format!("mixed: {policy} / {data}"));
                        }
                        *seen.entry(policy).or_default() += 1;
                    }
                    Err(e) => failures.push(e.to_string()),
                }
            }
            (seen, failures)
        }));
    }
    for n in 1..=6 {
        let revision = format!("r{n}");
        replace_file(&path, &bundle_tar(&versioned(&revision)));
        server.wait_for_revision(&revision).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut revisions = BTreeMap::new();
    for client in clients {
        let (seen, failures) = client.await.unwrap();
        assert!(failures.is_empty(), "{failures:?}");
        for (k, v) in seen {
            *revisions.entry(k).or_insert(0) += v;
        }
    }
    assert!(revisions.len() >= 2, "checks saw the swaps: {revisions:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ext_authz_is_served_on_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("authz.sock");
    let config = grpc_config(ExtAuthzConfig::default());
    let mut config = config;
    config.plugins.envoy_ext_authz_grpc.as_mut().unwrap().addr =
        format!("unix://{}", socket.display());
    let sources = verdict::app::sources(&config).unwrap();
    let server = Server::start(config, sources).await;
    let path = socket.clone();
    let channel = tonic::transport::Endpoint::try_from("http://[::]:50051")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
        .unwrap();
    let mut client =
        envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient::new(
            channel,
        );
    let r = client
        .check(payment("customer", GOOD_PAYMENT))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status_code(&r), 0);
    server.stop().await;
    assert!(!socket.exists(), "the socket file is removed on shutdown");
}
