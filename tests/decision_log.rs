//! Decision logs against a real local collector: OPA's event format and upload protocol,
//! masking and dropping, and the faults an edge node lives through: a collector down for the
//! whole run, answering 500 or hanging, verdict killed with SIGKILL, a full spool. Every
//! decision answered must reach the collector (at least once; decision ids deduplicate).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use axum::http::Method;
use common::collector::{reserve_addr, Answer, Collector};
use common::running::Running;
use common::{bundle_tar, golden, http, Server, WAIT};
use regex::Regex;
use serde_json::{json, Value as Json};
use verdict::bundle::Source;
use verdict::config::Config;

/// verdict configured as OPA's instance D was (tests/golden), uploading to `collector` often.
fn config(collector: &str, dir: &Path, extra: Json) -> Config {
    let mut tree = json!({
        "labels": {"app": "payment-gateway"},
        "services": {"ctl": {"url": collector, "response_header_timeout_seconds": 1}},
        "decision_logs": {
            "service": "ctl",
            "reporting": {"min_delay_seconds": 0.05, "max_delay_seconds": 0.1},
            "request_context": {"http": {"headers": ["X-Request-Id"]}}
        },
        "persistence_directory": dir,
        "verdict": {"addr": ["127.0.0.1:0"], "watch": false}
    });
    merge(&mut tree, extra);
    Config::from_tree(tree).unwrap().0
}

fn merge(into: &mut Json, from: Json) {
    match (into, from) {
        (Json::Object(a), Json::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Json::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

fn payment_bundle() -> Source {
    Source {
        name: "payment-bundle.tar.gz".into(),
        ..Source::path(golden("fixtures/payment-bundle.tar.gz"))
    }
}

const INPUT: &str =
    r#"{"role": "customer", "amount": 250, "currency": "EUR", "merchant": "m-123"}"#;

/// POSTs one decision; returns the status and the body.
async fn decide(addr: &str, path: &str, input: &str) -> (u16, Json) {
    let response = http()
        .post(format!("http://{addr}/v1/data/{path}"))
        .header("X-Request-Id", "req-7")
        .body(format!(r#"{{"input": {input}}}"#))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Makes `n` allowed decisions, 10 at a time, and returns their decision ids.
async fn decisions(addr: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for batch in 0..n.div_ceil(10) {
        let calls = (0..10.min(n - batch * 10)).map(|_| decide(addr, "payment/allow", INPUT));
        for (status, body) in futures_util::future::join_all(calls).await {
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["result"], json!(true));
            ids.push(body["decision_id"].as_str().unwrap().to_string());
        }
    }
    ids
}

/// The value of one sample line of `/metrics`, 0 when absent.
async fn metric(addr: &str, sample: &str) -> f64 {
    let text = common::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Asks `/metrics` until `want` holds of `sample`: the spool's gauges move after the
/// collector has answered, so the collector alone cannot tell.
async fn wait_metric(addr: &str, sample: &str, want: impl Fn(f64) -> bool) -> f64 {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let v = metric(addr, sample).await;
            if want(v) {
                return v;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("{sample} never reached the wanted value"))
}

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
    // OPA compiles a query on its first use (timer_rego_query_compile_ns); verdict prepares
    // every rule when a bundle activates, so no decision has that step.
    let opa_metrics: Vec<&String> = opa["metrics"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "timer_rego_query_compile_ns")
        .collect();
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

#[tokio::test]
async fn a_collector_down_for_the_whole_run_gets_every_decision_once_up() {
    let addr = reserve_addr();
    let dir = tempfile::tempdir().unwrap();
    let resource = json!({"decision_logs": {
        "resource": "/audit/payments",
        "reporting": {"upload_size_limit_bytes": 4096}
    }});
    let server = Server::start(
        config(&format!("http://{addr}"), dir.path(), resource),
        vec![payment_bundle()],
    )
    .await;
    let ids = decisions(&server.addr, 200).await;
    assert_eq!(
        metric(&server.addr, "verdict_decision_log_spool_events").await,
        200.0
    );
    wait_metric(
        &server.addr,
        "verdict_decision_log_upload_failures_total",
        |v| v >= 2.0,
    )
    .await;

    let collector = Collector::start_on(addr, Answer::Ok).await;
    collector.wait_for_ids(&ids).await;
    wait_metric(&server.addr, "verdict_decision_log_spool_events", |v| {
        v == 0.0
    })
    .await;
    assert!(metric(&server.addr, "verdict_decision_log_uploaded_events_total").await >= 200.0);
    let uploads = collector.uploads();
    assert!(uploads
        .iter()
        .all(|u| u.method == Method::POST && u.path == "/audit/payments"));
    // OPA's chunking: the backlog goes in several uploads, none larger than
    // upload_size_limit_bytes.
    let sizes: Vec<u64> = uploads
        .iter()
        .filter(|u| u.status == 200)
        .map(|u| {
            u.headers["content-length"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(sizes.len() >= 2, "{sizes:?}");
    assert!(sizes.iter().all(|&n| n <= 4096), "{sizes:?}");
}

#[tokio::test]
async fn a_failing_then_hanging_collector_is_retried_and_decisions_go_on() {
    let collector = Collector::start(Answer::Status(500)).await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        config(&collector.url(), dir.path(), json!({})),
        vec![payment_bundle()],
    )
    .await;
    let mut ids = decisions(&server.addr, 20).await;
    collector
        .wait_until("two failed uploads", |u, _| {
            u.iter().filter(|u| u.status == 500).count() >= 2
        })
        .await;
    assert!(collector.events().is_empty());

    collector.set(Answer::Hang);
    collector
        .wait_until("a hanging upload", |u, _| u.iter().any(|u| u.status == 0))
        .await;
    // Decisions are answered while the upload hangs.
    ids.extend(decisions(&server.addr, 20).await);

    collector.set(Answer::Ok);
    collector.wait_for_ids(&ids).await;
    assert!(metric(&server.addr, "verdict_decision_log_upload_failures_total").await >= 3.0);
}

/// `verdict run` arguments for the real binary on the golden bundle, uploading to `collector`
/// often, its config file and persistence directory in `dir`.
fn binary_args(dir: &Path, collector: std::net::SocketAddr) -> Vec<String> {
    let config_file = dir.join("config.json");
    let file = json!({
        "services": {"ctl": {"url": format!("http://{collector}")}},
        "decision_logs": {"service": "ctl", "reporting": {"min_delay_seconds": 0.05, "max_delay_seconds": 0.1}},
        "persistence_directory": dir.join("persist"),
    });
    std::fs::write(&config_file, file.to_string()).unwrap();
    let bundle = golden("fixtures/payment-bundle.tar.gz");
    let (config, bundle) = (config_file.display(), bundle.display());
    [
        "-c",
        &config.to_string(),
        "--addr",
        "127.0.0.1:0",
        "-b",
        &bundle.to_string(),
    ]
    .map(str::to_string)
    .to_vec()
}

/// One decision, or why there was none (the server is gone).
async fn try_decide(addr: &str) -> Result<String, reqwest::Error> {
    let body: Json = http()
        .post(format!("http://{addr}/v1/data/payment/allow"))
        .body(format!(r#"{{"input": {INPUT}}}"#))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(body["decision_id"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn decisions_answered_until_a_sigkill_under_load_all_arrive_after_the_restart() {
    let addr = reserve_addr();
    let dir = tempfile::tempdir().unwrap();
    let args = binary_args(dir.path(), addr);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let mut first = Running::spawn(&args);
    let verdict = first.address().await;
    // Eight clients decide as fast as they can until verdict is gone: the kill lands among
    // decisions in flight, some of them answered a moment before it.
    let (count, mut counted) = tokio::sync::watch::channel(0usize);
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (verdict, answered, count) = (verdict.clone(), answered.clone(), count.clone());
            tokio::spawn(async move {
                while let Ok(id) = try_decide(&verdict).await {
                    answered.lock().unwrap().push(id);
                    count.send_modify(|n| *n += 1);
                }
            })
        })
        .collect();
    tokio::time::timeout(WAIT, counted.wait_for(|n| *n >= 300))
        .await
        .expect("300 decisions answered")
        .unwrap();
    first.kill9().await;
    for client in clients {
        client.await.unwrap();
    }
    let ids = answered.lock().unwrap().clone();

    let collector = Collector::start_on(addr, Answer::Ok).await;
    let mut second = Running::spawn(&args);
    second.address().await;
    collector.wait_for_ids(&ids).await;
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

#[tokio::test]
async fn a_full_spool_refuses_decisions_when_configured_to() {
    let addr = reserve_addr();
    let dir = tempfile::tempdir().unwrap();
    let extra = json!({
        "decision_logs": {"reporting": {"buffer_size_limit_bytes": 4000}},
        "verdict": {"decision_logs": {"when_full": "refuse"}}
    });
    let server = Server::start(
        config(&format!("http://{addr}"), dir.path(), extra),
        vec![payment_bundle()],
    )
    .await;
    let mut answered = Vec::new();
    let refused = loop {
        let (status, body) = decide(&server.addr, "payment/allow", INPUT).await;
        if status != 200 {
            break (status, body);
        }
        answered.push(body["decision_id"].as_str().unwrap().to_string());
        assert!(answered.len() < 20, "the spool never filled");
    };
    assert!(!answered.is_empty());
    assert_eq!(refused.0, 500);
    assert_eq!(refused.1["code"], "internal_error");
    assert_eq!(
        refused.1["message"],
        "decision refused: the decision log spool is full (4000 bytes)"
    );
    assert_eq!(
        metric(&server.addr, "verdict_decision_log_refused_decisions_total").await,
        1.0
    );
    // Its client got an error, and that is what it is counted as.
    let errors = r#"verdict_decisions_total{outcome="error",path="payment/allow"}"#;
    assert_eq!(metric(&server.addr, errors).await, 1.0);

    // Once the collector has taken the backlog, decisions are answered again.
    let collector = Collector::start_on(addr, Answer::Ok).await;
    collector.wait_for_ids(&answered).await;
    wait_metric(&server.addr, "verdict_decision_log_spool_events", |v| {
        v == 0.0
    })
    .await;
    let (status, _) = decide(&server.addr, "payment/allow", INPUT).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_full_spool_drops_the_oldest_events_by_default_and_says_so() {
    let addr = reserve_addr();
    let dir = tempfile::tempdir().unwrap();
    let extra = json!({"decision_logs": {"reporting": {"buffer_size_limit_bytes": 4000}}});
    let server = Server::start(
        config(&format!("http://{addr}"), dir.path(), extra),
        vec![payment_bundle()],
    )
    .await;
    let ids = decisions(&server.addr, 20).await;
    let dropped = metric(
        &server.addr,
        "verdict_decision_log_dropped_events_total{reason=\"spool_full\"}",
    )
    .await;
    let kept = metric(&server.addr, "verdict_decision_log_spool_events").await;
    assert!(dropped > 0.0 && kept > 0.0);
    assert_eq!(dropped + kept, 20.0);

    let collector = Collector::start_on(addr, Answer::Ok).await;
    let newest = &ids[20 - kept as usize..];
    collector.wait_for_ids(newest).await;
    assert!(
        !collector.events().contains_key(&ids[0]),
        "the oldest event survived"
    );
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

/// A rolling update with a surge: the new verdict starts on the same volume while the old one
/// still runs and holds its spool. Both serve; once the old one has ended, the new one uploads
/// what the old one had spooled, and removes its spool.
#[tokio::test]
async fn a_second_verdict_on_the_same_volume_serves_and_takes_over_the_first_ones_spool() {
    let addr = reserve_addr();
    let dir = tempfile::tempdir().unwrap();
    let args = binary_args(dir.path(), addr);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    // The collector is down: the old verdict's decisions stay in its spool.
    let mut old = Running::spawn(&args);
    let old_addr = old.address().await;
    let mut ids = decisions(&old_addr, 30).await;
    let mut new = Running::spawn(&args);
    let new_addr = new.address().await;
    ids.extend(decisions(&new_addr, 30).await);
    let spools = || {
        std::fs::read_dir(dir.path().join("persist/decision-logs"))
            .unwrap()
            .count()
    };
    assert_eq!(spools(), 2);

    old.kill9().await;
    let collector = Collector::start_on(addr, Answer::Ok).await;
    collector.wait_for_ids(&ids).await;
    new.wait_for_log("decision log spool of an ended process uploaded and removed")
        .await;
    assert_eq!(spools(), 1);
}
