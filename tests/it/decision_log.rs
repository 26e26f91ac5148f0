//! Decision logs against a real local collector: OPA's event format and upload protocol, every
//! transport's decisions, masking and dropping, admission reviews. The faults an edge node
//! lives through are in `decision_log_faults.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use axum::http::Method;
use common::collector::{Answer, Collector};
use common::decision_log::{config, decide, metric, payment_bundle, INPUT};
use common::running::Running;
use common::{bundle_tar, golden, http, Server};
use regex::Regex;
use serde_json::{json, Value as Json};
use verdict::bundle::Source;

#[tokio::test]
async fn events_are_opas_masked_and_named_in_responses() {
    let collector = Collector::start(Answer::Ok).await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        config(&collector.url(), dir.path(), json!({})),
        vec![payment_bundle()],
    )
    .await;

    let input = r#"{"role": "customer", "amount": 1200, "currency": "EUR", "merchant": "m-123", "card_number": "4111111111111111"}"#;
    let (status, body) = decide(&server.addr, "payment/allow", input).await;
    assert_eq!(status, 200);
    // OPA's field order: decision_id first, then the result.
    let id = body["decision_id"].as_str().unwrap().to_string();
    assert_eq!(body, json!({"decision_id": id, "result": false}));
    // The drop policy of the bundle leaves payment/probe out.
    let (_, probe) = decide(&server.addr, "payment/probe", INPUT).await;
    let probe_id = probe["decision_id"].as_str().unwrap().to_string();
    let (_, last) = decide(&server.addr, "payment/allow", INPUT).await;
    let last_id = last["decision_id"].as_str().unwrap().to_string();
    collector.wait_for_ids(&[id.clone(), last_id]).await;
    let events = collector.events();
    assert!(
        !events.contains_key(&probe_id),
        "a dropped decision was logged"
    );

    let event = &events[&id];
    // The fields of OPA's uploaded event (D-decision-log-upload.txt), plus the two this
    // request adds: an erased card number and the configured request header.
    let opa = golden_upload_event();
    let mut want: Vec<&str> = opa
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    want.extend(["erased", "request_context"]);
    want.sort_unstable();
    let mut got: Vec<&str> = event
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    got.sort_unstable();
    assert_eq!(got, want, "{event}");
    assert_eq!(event["input"], opa["input"]);
    assert_eq!(event["masked"], opa["masked"]);
    assert_eq!(event["erased"], json!(["/input/card_number"]));
    assert_eq!(event["path"], opa["path"]);
    assert_eq!(event["result"], json!(false));
    assert_eq!(
        event["bundles"],
        json!({"payment-bundle.tar.gz": {"revision": "payments-2025-01-01.1"}})
    );
    assert_eq!(event["labels"]["app"], opa["labels"]["app"]);
    let status = common::get(server.url("/v1/status"))
        .await
        .unwrap()
        .json::<Json>()
        .await
        .unwrap();
    assert_eq!(event["labels"]["id"], status["result"]["labels"]["id"]);
    assert_eq!(
        event["request_context"],
        json!({"http": {"headers": {"X-Request-Id": ["req-7"]}}})
    );
    assert!(Regex::new(r"^127\.0\.0\.1:\d+$")
        .unwrap()
        .is_match(event["requested_by"].as_str().unwrap()));
    assert!(event["req_id"].as_u64().unwrap() > 0);
    assert!(chrono::DateTime::parse_from_rfc3339(event["timestamp"].as_str().unwrap()).is_ok());
    let metrics: Vec<&String> = event["metrics"].as_object().unwrap().keys().collect();
    // The first decision of a path prepares it, in OPA (`timer_rego_query_compile_ns`, a
    // cache miss) and in verdict alike.
    let opa_metrics: Vec<&String> = opa["metrics"].as_object().unwrap().keys().collect();
    assert_eq!(metrics, opa_metrics);

    let upload = &collector.uploads()[0];
    // OPA's default resource.
    assert_eq!(
        (&upload.method, upload.path.as_str()),
        (&Method::POST, "/logs")
    );
    assert_eq!(upload.headers["content-encoding"], "gzip");
    assert_eq!(upload.headers["content-type"], "application/json");
    assert_eq!(upload.status, 200);
}

/// The first event OPA 1.9 uploaded in D-decision-log-upload.txt.
fn golden_upload_event() -> Json {
    let text = std::fs::read_to_string(golden("decision-logs/upload-event.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The default decision (`POST /`) and the native gRPC API decide through the same core, and
/// log the same way; with logging off, responses carry no `decision_id`, as OPA's do not.
#[tokio::test]
async fn every_transport_logs_its_decisions() {
    let collector = Collector::start(Answer::Ok).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = json!({
        "default_decision": "/payment/allow",
        "plugins": {"envoy_ext_authz_grpc": {"addr": "127.0.0.1:0"}}
    });
    let server = Server::start(
        config(&collector.url(), dir.path(), extra),
        vec![payment_bundle()],
    )
    .await;

    let bare = http()
        .post(server.url("/"))
        .body(r#"{"role": "customer", "amount": 250, "currency": "EUR", "merchant": "m-1", "country": "via-root"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 200);
    assert_eq!(bare.json::<Json>().await.unwrap(), json!(true));

    let mut grpc = common::grpc::decisions_client(&server).await;
    let answer = grpc
        .evaluate(verdict::server::grpc::pb::EvaluateRequest {
            path: "payment/allow".into(),
            input: r#"{"role": "customer", "amount": 250, "currency": "EUR", "merchant": "m-1", "country": "via-grpc"}"#
                .into(),
            strict_builtin_errors: false,
        })
        .await
        .unwrap()
        .into_inner();
    collector
        .wait_for_ids(std::slice::from_ref(&answer.decision_id))
        .await;
    collector
        .wait_until("the default decision's event", |_, events| {
            events.values().any(|e| e["input"]["country"] == "via-root")
        })
        .await;
    let events = collector.events();
    let grpc_event = &events[&answer.decision_id];
    assert_eq!(grpc_event["path"], "payment/allow");
    assert_eq!(grpc_event["result"], json!(true));
    let root_event = events
        .values()
        .find(|e| e["input"]["country"] == "via-root")
        .unwrap();
    assert_eq!(root_event["path"], "payment/allow");
    assert_eq!(root_event["result"], json!(true));
    server.stop().await;

    // Logging off: the same request, no decision id.
    let quiet = Server::start(common::test_config(), vec![payment_bundle()]).await;
    let (status, body) = decide(&quiet.addr, "payment/allow", INPUT).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"result": true}));
}

/// A bundle whose mask policy upserts the merchant, and answers an invalid entry when the
/// input asks for it; its drop policy fails with a conflict when the input asks for that.
fn masking_bundle() -> Vec<u8> {
    let files = [
        (
            ".manifest",
            r#"{"revision": "m1", "roots": ["app", "system"]}"#,
        ),
        (
            "app/policy.rego",
            "package app\n\nallow if input.merchant\n",
        ),
        (
            "system/log.rego",
            r#"package system.log

mask contains {"op": "upsert", "path": "/input/merchant", "value": "**"}

mask contains "/labels/id" if input.input.broken

drop := true if input.input.conflict

drop := false if input.input.conflict
"#,
        ),
    ];
    let files: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(n, b)| (n.to_string(), b.as_bytes().to_vec()))
        .collect();
    bundle_tar(&files)
}

#[tokio::test]
async fn a_broken_mask_or_drop_policy_or_an_upsert_without_input_never_fails_a_decision() {
    let collector = Collector::start(Answer::Ok).await;
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("mask.tar.gz");
    std::fs::write(&bundle, masking_bundle()).unwrap();
    let server = Server::start(
        config(&collector.url(), dir.path(), json!({})),
        vec![Source::path(bundle)],
    )
    .await;

    let (s1, masked) = decide(&server.addr, "app/allow", r#"{"merchant": "m-1"}"#).await;
    // OPA panics on an upsert into an absent input: this request has none.
    let no_input = http()
        .post(server.url("/v1/data/app/allow"))
        .body("{}")
        .send()
        .await
        .unwrap();
    let s2 = no_input.status().as_u16();
    let no_input: Json = no_input.json().await.unwrap();
    let (s3, broken) = decide(
        &server.addr,
        "app/allow",
        r#"{"broken": true, "merchant": "secret-merchant"}"#,
    )
    .await;
    // A drop policy that fails keeps the event: an auditor would rather see too much.
    let (s4, undroppable) = decide(
        &server.addr,
        "app/allow",
        r#"{"conflict": true, "merchant": "m-4"}"#,
    )
    .await;
    assert_eq!((s1, s2, s3, s4), (200, 200, 200, 200));

    let id = |b: &Json| b["decision_id"].as_str().unwrap().to_string();
    collector
        .wait_for_ids(&[id(&masked), id(&no_input), id(&broken), id(&undroppable)])
        .await;
    let events = collector.events();
    let e = &events[&id(&masked)];
    assert_eq!(
        (&e["input"], &e["masked"]),
        (&json!({"merchant": "**"}), &json!(["/input/merchant"]))
    );
    let e = &events[&id(&no_input)];
    assert!(e.get("input").is_none() && e.get("masked").is_none(), "{e}");
    // The mask failed: nothing of the input or result is logged, and it is counted.
    let e = &events[&id(&broken)];
    assert!(!e.to_string().contains("secret-merchant"), "{e}");
    assert_eq!(e["erased"], json!(["/input", "/result"]));
    assert_eq!(
        metric(&server.addr, "verdict_decision_log_mask_errors_total").await,
        1.0
    );
}

/// Admission reviews are decisions too: each one is logged with the review as its input and
/// the response as its result, its id in the response's `auditAnnotations` (which the API
/// server keeps in its own audit log), and counted; a review that cannot be read is logged
/// with its error.
#[tokio::test]
async fn admission_reviews_are_logged_and_counted() {
    let collector = Collector::start(Answer::Ok).await;
    let pki = common::pki::Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let policies = common::repo().join("policies/admission");
    let config_file = write(
        "config.json",
        &json!({
            "services": {"ctl": {"url": collector.url()}},
            "decision_logs": {"service": "ctl", "reporting": {"min_delay_seconds": 0.05, "max_delay_seconds": 0.1}},
            "persistence_directory": dir.path().join("persist"),
            "verdict": {"admission": {
                "addr": "127.0.0.1:0",
                "policies": [policies.join("templates"), policies.join("constraints")],
                "tls_cert_file": write("tls.crt", &pki.server_cert_pem),
                "tls_private_key_file": write("tls.key", &pki.server_key_pem),
            }},
        })
        .to_string(),
    );
    let args = ["-c", config_file.to_str().unwrap(), "--addr", "127.0.0.1:0"];
    let mut verdict = Running::spawn(&args);
    let addr = verdict.address().await;
    let serving = "admission webhook serving HTTPS";
    let line = match verdict.seen.iter().find(|l| l.contains(serving)) {
        Some(line) => serde_json::from_str::<Json>(line).unwrap(),
        None => verdict.wait_for_log(serving).await,
    };
    let webhook = format!("https://{}", line["addr"].as_str().unwrap());
    let client = common::admission::client_trusting(&pki.ca_pem, None);
    let post = |body: String| {
        let request = client.post(format!("{webhook}/v1/admit")).body(body);
        async move { request.send().await.unwrap().json::<Json>().await.unwrap() }
    };

    let privileged =
        common::admission::review("CREATE", &common::admission::sample("privileged.yaml"));
    let denied = post(privileged.to_string()).await;
    let malformed = post("{\"apiVersion\": ".to_string()).await;
    let id = |answer: &Json| {
        answer["response"]["auditAnnotations"]["decision_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no decision_id in {answer}"))
            .to_string()
    };
    let (denied_id, malformed_id) = (id(&denied), id(&malformed));
    assert_eq!(denied["response"]["allowed"], json!(false));
    assert_eq!(malformed["response"]["status"]["code"], json!(400));

    collector
        .wait_for_ids(&[denied_id.clone(), malformed_id.clone()])
        .await;
    let events = collector.events();
    let event = &events[&denied_id];
    assert_eq!(event["path"], "admission");
    assert_eq!(event["input"], privileged);
    assert_eq!(event["result"]["allowed"], json!(false));
    assert_eq!(event["result"]["status"]["code"], json!(403));
    assert!(event.get("error").is_none(), "{event}");
    assert!(event["requested_by"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert!(event["labels"]["id"].is_string());
    let event = &events[&malformed_id];
    assert_eq!(event["error"]["code"], "invalid_parameter");
    assert!(event.get("input").is_none(), "{event}");

    let counted = |outcome: &str| {
        format!(r#"verdict_decisions_total{{outcome="{outcome}",path="admission"}}"#)
    };
    assert_eq!(metric(&addr, &counted("deny")).await, 1.0);
    assert_eq!(metric(&addr, &counted("error")).await, 1.0);
}
