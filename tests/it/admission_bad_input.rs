//! Bad input to the admission webhook, each over real HTTPS: reviews the API server would never
//! send get a clear rejection with the reason; broken templates and constraints are reported
//! and left out while every other constraint keeps deciding; nothing crashes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::admission::{pod, review, Hook};
use serde_json::{json, Value as Json};

/// The payment constraints still decide: a good pod passes, a bad one is denied.
async fn still_decides(hook: &Hook) {
    let good = pod("ok", "payments", "registry.pay.internal/app:1");
    assert_eq!(hook.admit(&review("CREATE", &good)).await["allowed"], true);
    let bad = pod("bad", "payments", "docker.io/app:1");
    let response = hook.admit(&review("CREATE", &bad)).await;
    assert_eq!(response["allowed"], false, "{response}");
    assert!(response["status"]["message"]
        .as_str()
        .unwrap()
        .starts_with("[payment-registries]"));
}

fn rejected(answer: &Json, code: u16, text: &str) {
    let response = &answer["response"];
    assert_eq!(response["allowed"], false, "{answer}");
    assert_eq!(response["status"]["code"], code, "{answer}");
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.contains(text),
        "{message:?} should contain {text:?}"
    );
}

#[tokio::test]
async fn a_malformed_review_is_rejected_with_the_parse_error() {
    let hook = Hook::start(&[], |_| {}).await;
    let answer = hook
        .post("/v1/admit", "{\"apiVersion\": \"admission.k8s.io/v1\", ")
        .await;
    rejected(
        &answer,
        400,
        "the body is not an AdmissionReview: EOF while parsing",
    );
    let answer = hook.post("/v1/admit", "[1, 2]").await;
    rejected(&answer, 400, "not a JSON object");
    still_decides(&hook).await;
}

#[tokio::test]
async fn a_wrong_api_version_is_rejected_and_the_uid_echoed() {
    let hook = Hook::start(&[], |_| {}).await;
    let mut body = review("CREATE", &pod("p", "payments", "registry.pay.internal/a:1"));
    body["apiVersion"] = json!("admission.k8s.io/v2");
    let answer = hook.post("/v1/admit", body.to_string()).await;
    rejected(
        &answer,
        400,
        "apiVersion \"admission.k8s.io/v2\" is not supported",
    );
    assert_eq!(answer["response"]["uid"], "uid-p");
    body["apiVersion"] = json!("admission.k8s.io/v1");
    body["kind"] = json!("TokenReview");
    rejected(
        &hook.post("/v1/admit", body.to_string()).await,
        400,
        "kind \"TokenReview\" is not AdmissionReview",
    );
    still_decides(&hook).await;
}

#[tokio::test]
async fn a_review_without_request_is_rejected() {
    let hook = Hook::start(&[], |_| {}).await;
    let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"});
    rejected(
        &hook.post("/v1/admit", body.to_string()).await,
        400,
        "has no request",
    );
    let body =
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": "x"});
    rejected(
        &hook.post("/v1/admit", body.to_string()).await,
        400,
        "has no request",
    );
    still_decides(&hook).await;
}

#[tokio::test]
async fn a_ten_megabyte_object_is_rejected_as_too_large() {
    let hook = Hook::start(&[], |_| {}).await;
    let mut object = pod("huge", "payments", "registry.pay.internal/a:1");
    object["metadata"]["annotations"] = json!({"blob": "x".repeat(10 << 20)});
    let body = review("CREATE", &object).to_string();
    assert!(body.len() > 10 << 20);
    rejected(
        &hook.post("/v1/admit", body.clone()).await,
        413,
        "larger than 7340032 bytes",
    );
    // Without a Content-Length (chunked), the limit holds while reading.
    let mut raw = b"POST /v1/admit HTTP/1.1\r\nHost: verdict\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for chunk in body.as_bytes().chunks(1 << 20) {
        raw.extend(format!("{:x}\r\n", chunk.len()).into_bytes());
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let answer = hook.raw(raw).await;
    assert_eq!(answer.status, 200);
    rejected(&answer.json(), 413, "larger than 7340032 bytes");
    still_decides(&hook).await;
}

#[tokio::test]
async fn a_body_stalled_past_the_deadline_is_answered_by_the_failure_policy() {
    let hook = Hook::start(&[], |c| c.deadline_ms = 300).await;
    // Headers promise 1,000 bytes; ten arrive, then nothing.
    let raw = b"POST /v1/admit HTTP/1.1\r\nHost: verdict\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"apiVersi".to_vec();
    let answer = hook.raw(raw).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    rejected(
        &answer.json(),
        500,
        "did not arrive before the admission deadline",
    );
    still_decides(&hook).await;
}

const REGO_ERROR: &str = r#"
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: brokenrego}
spec:
  crd: {spec: {names: {kind: BrokenRego}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package brokenrego

        violation[{"msg": msg}] {
          msg := no_such_function(input.review.object)
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: BrokenRego
metadata: {name: uses-broken-rego}
"#;

#[tokio::test]
async fn a_template_with_a_rego_error_is_reported_and_left_out() {
    let hook = Hook::start(&[("broken.yaml", REGO_ERROR)], |_| {}).await;
    let status = hook.status().await;
    let errors = status["errors"].to_string();
    assert!(
        errors.contains("ConstraintTemplate brokenrego: Rego error"),
        "{status}"
    );
    assert!(errors.contains("no_such_function"), "{status}");
    assert!(
        errors
            .contains("BrokenRego uses-broken-rego: no ConstraintTemplate defines kind BrokenRego"),
        "{status}"
    );
    assert_eq!(
        status["constraints"].as_array().unwrap().len(),
        4,
        "{status}"
    );

    // A parse error too.
    hook.write(
        "broken.yaml",
        &REGO_ERROR.replace("no_such_function(input.review.object)", "{{"),
    );
    let seen = hook.generation().admission_reloads;
    hook.wait_for("the parse error", seen, |s| {
        s.set()
            .errors
            .iter()
            .any(|e| e.to_string().contains("rego_parse_error"))
    })
    .await;
    still_decides(&hook).await;
}

#[tokio::test]
async fn a_constraint_without_its_template_is_reported_and_left_out() {
    let orphan = "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sNoSuchThing\nmetadata: {name: orphan}\n";
    let hook = Hook::start(&[("orphan.yaml", orphan)], |_| {}).await;
    let status = hook.status().await;
    assert_eq!(
        status["errors"][0]["message"],
        "K8sNoSuchThing orphan: no ConstraintTemplate defines kind K8sNoSuchThing",
        "{status}"
    );
    assert_eq!(status["errors"][0]["detail"]["code"], "no_template");
    still_decides(&hook).await;
}

const BAD_PARAMETERS: &str = r#"
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: PaymentRequiredLimits
metadata: {name: gpu-limits}
spec:
  parameters: {resources: [gpu]}
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: PaymentAllowedRegistries
metadata: {name: registries-as-string}
spec:
  parameters: {registries: "registry.pay.internal/"}
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: PaymentAllowedRegistries
metadata: {name: registries-missing}
spec:
  parameters: {}
"#;

#[tokio::test]
async fn parameters_that_do_not_fit_the_schema_are_refused() {
    let hook = Hook::start(&[("bad-parameters.yaml", BAD_PARAMETERS)], |_| {}).await;
    let status = hook.status().await;
    let messages: Vec<&str> = status["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "PaymentRequiredLimits gpu-limits: spec.parameters.resources[0]: \"gpu\" is not one of [\"cpu\",\"memory\"]",
            "PaymentAllowedRegistries registries-as-string: spec.parameters.registries: expected array, found string",
            "PaymentAllowedRegistries registries-missing: spec.parameters.registries: required",
        ],
        "{status}"
    );
    still_decides(&hook).await;
}

#[tokio::test]
async fn unknown_routes_and_methods_do_not_reach_the_core() {
    let hook = Hook::start(&[], |_| {}).await;
    let client = hook.client();
    let r = client
        .get(format!("{}/v1/admit", hook.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let r = client
        .post(format!("{}/v1/nope", hook.url))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Plain HTTP on the HTTPS port gets no answer, and the listener survives it.
    let plain = common::http()
        .post(format!("http://{}/v1/admit", &hook.url["https://".len()..]))
        .body("{}")
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    still_decides(&hook).await;
}
