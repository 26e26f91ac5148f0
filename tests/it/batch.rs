//! Batch decisions (`POST /v1/batch/data/{path}`) on a real server, as EOPA answers them: the
//! common input merged under each item, 200 / 207 / 500 by the items' outcomes, a
//! `decision_id` per item and a `batch_decision_id`, and each item logged as its own decision.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::collector::{Answer, Collector};
use common::decision_log::{config, payment_bundle};
use common::{test_config, Server};
use serde_json::{json, Value as Json};

async fn batch(server: &Server, path: &str, body: Json) -> (u16, Json) {
    let response = common::http()
        .post(server.url(&format!("/v1/batch/data/{path}")))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn payment(role: &str, amount: u64) -> Json {
    json!({"role": role, "amount": amount})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_good_items_answer_200_with_the_common_input_merged() {
    let server = Server::start(test_config(), vec![payment_bundle()]).await;
    let body = json!({
        "inputs": {
            "small": payment("customer", 100),
            "large": payment("customer", 5000),
            "eur-override": {"role": "customer", "amount": 100, "currency": "XXX"},
        },
        "common_input": {"currency": "EUR", "merchant": "m-1"},
    });
    let (status, answer) = batch(&server, "payment/allow", body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"responses": {
            "small": {"result": true},
            "large": {"result": false},
            "eur-override": {"result": false},
        }})
    );
    // An undefined item has no result, as a single decision has none.
    let (status, answer) = batch(
        &server,
        "payment/nothing_here",
        json!({"inputs": {"a": {}}}),
    )
    .await;
    assert_eq!((status, answer), (200, json!({"responses": {"a": {}}})));
    // Per-item metrics and provenance on request.
    let (status, answer) = common::http()
        .post(server.url("/v1/batch/data/payment/allow?metrics&provenance"))
        .json(&json!({"inputs": {"a": payment("customer", 1)}}))
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    let answer: Json = answer.json().await.unwrap();
    assert_eq!(status, 200);
    assert!(
        answer["metrics"]["timer_server_handler_ns"].is_u64(),
        "{answer}"
    );
    let item = &answer["responses"]["a"];
    assert!(
        item["metrics"]["timer_rego_query_eval_ns"].is_u64(),
        "{answer}"
    );
    assert!(item["provenance"]["version"].is_string(), "{answer}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_outcomes_answer_207_and_all_failed_500() {
    let server = Server::start(test_config(), vec![payment_bundle()]).await;
    // An admin paying over 500 makes both `tier` rules produce a value: OPA's conflict error.
    let (status, answer) = batch(
        &server,
        "payment/tier",
        json!({"inputs": {"ok": payment("customer", 900), "conflict": payment("admin", 900)}}),
    )
    .await;
    assert_eq!(status, 207, "{answer}");
    assert_eq!(
        answer["responses"]["ok"],
        json!({"http_status_code": "200", "result": "high"})
    );
    let failed = &answer["responses"]["conflict"];
    assert_eq!(failed["http_status_code"], "500", "{answer}");
    assert_eq!(failed["code"], "internal_error", "{answer}");
    assert_eq!(
        failed["errors"][0]["code"], "eval_conflict_error",
        "{answer}"
    );

    let (status, answer) = batch(
        &server,
        "payment/tier",
        json!({"inputs": {"a": payment("admin", 900), "b": payment("admin", 1000)}}),
    )
    .await;
    assert_eq!(status, 500, "{answer}");
    assert!(
        answer["responses"]["a"]["http_status_code"].is_null(),
        "{answer}"
    );
    assert_eq!(answer["responses"]["b"]["code"], "internal_error");

    let response = common::http()
        .post(server.url("/v1/batch/data/payment/allow"))
        .body(r#"{"input": {}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let error: Json = response.json().await.unwrap();
    assert_eq!(error["code"], "invalid_parameter", "{error}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_item_is_a_logged_decision_of_its_own() {
    let collector = Collector::start(Answer::Ok).await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        config(&collector.url(), dir.path(), json!({})),
        vec![payment_bundle()],
    )
    .await;
    let (status, answer) = batch(
        &server,
        "payment/allow",
        json!({
            "inputs": {"a": payment("customer", 10), "b": payment("customer", 5000)},
            "common_input": {"currency": "EUR", "merchant": "m-9"},
        }),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let batch_id = answer["batch_decision_id"].as_str().unwrap();
    let ids: Vec<String> = ["a", "b"]
        .iter()
        .map(|k| {
            answer["responses"][k]["decision_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_ne!(ids[0], ids[1]);
    assert!(!ids.iter().any(|id| id == batch_id));
    collector.wait_for_ids(&ids).await;
    let events = collector.events();
    let (a, b) = (&events[&ids[0]], &events[&ids[1]]);
    assert_eq!(a["path"], "payment/allow");
    assert_eq!(
        (a["result"].clone(), b["result"].clone()),
        (json!(true), json!(false))
    );
    // The common input is part of what each item decided on; the bundle masks the merchant.
    assert_eq!(a["input"]["currency"], "EUR", "{a}");
    assert_eq!(b["input"]["amount"], 5000, "{b}");
    server.stop().await;
}
