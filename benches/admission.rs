//! In-process cost of an admission review with the 20 constraints of benches/load.sh (five of
//! each payment template, all matching the pod): the decision core alone, the core with the
//! JSON decode of the AdmissionReview, and building the whole set (what a reload does).
//!
//! Run: cargo bench --bench admission

// A benchmark that cannot set up has nothing to measure: failing loudly is the point.
#![allow(clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use serde_json::json;
use verdict::admission::evaluate::Scope;
use verdict::admission::inventory::Inventory;
use verdict::admission::resources::{parse_objects, read_paths, Documents};
use verdict::admission::{AdmissionSet, FailurePolicy, Review};

/// Five constraints of each payment template, as benches/load.sh writes them.
fn documents() -> Documents {
    let templates = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("policies/admission/templates");
    let mut docs = read_paths(&[templates]);
    let kinds = [
        (
            "PaymentAllowedRegistries",
            json!({"registries": ["registry.pay.internal/", "ghcr.io/payments-platform/"]}),
        ),
        (
            "PaymentRequiredLimits",
            json!({"resources": ["cpu", "memory"]}),
        ),
        (
            "PaymentNoPrivileged",
            json!({"exemptImages": ["registry.pay.internal/debug:1"]}),
        ),
        (
            "PaymentWasmRuntimeClass",
            json!({"runtimeClassName": "wasmedge"}),
        ),
    ];
    for (kind, parameters) in kinds {
        for i in 0..5 {
            // The Wasm constraints select Wasm-labelled pods, as the shipped one does.
            let mut matcher = json!({"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}],
                                     "excludedNamespaces": ["kube-system", "verdict-system"]});
            if kind == "PaymentWasmRuntimeClass" {
                matcher["labelSelector"] =
                    json!({"matchLabels": {"payments.example/runtime": "wasm"}});
            }
            let constraint = json!({
                "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": kind,
                "metadata": {"name": format!("{}-{i}", kind.to_lowercase())},
                "spec": {"match": matcher, "parameters": parameters},
            });
            docs.add(Path::new("bench"), constraint);
        }
    }
    docs
}

fn review_body() -> Vec<u8> {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("policies/admission/samples/good-pod.yaml"),
    )
    .expect("sample");
    // A Wasm pod under WasmEdge: all 20 constraints match it and none is broken, so every
    // template runs to its end.
    let mut pod = parse_objects(&text).expect("yaml").remove(0);
    pod["metadata"]["labels"] = json!({"payments.example/runtime": "wasm"});
    pod["spec"]["runtimeClassName"] = json!("wasmedge");
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "bench", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "name": "gateway", "namespace": "payments", "operation": "CREATE",
        "userInfo": {"username": "bench"}, "object": pod}})
    .to_string()
    .into_bytes()
}

fn admission(c: &mut Criterion) {
    let set = AdmissionSet::build(documents(), Inventory::default(), None);
    assert!(
        set.errors.is_empty(),
        "{:?}",
        set.errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );
    assert_eq!(set.constraints.len(), 20);
    let body = review_body();
    let review = Review::from_slice(&body).expect("review");
    let far = || Instant::now() + Duration::from_secs(10);
    let decision = set.evaluate(&review, Scope::All, FailurePolicy::Fail, far());
    assert!(decision.response.allowed && decision.failures.is_empty());

    let mut group = c.benchmark_group("admission");
    group.bench_function("evaluate, 20 constraints matching", |b| {
        b.iter(|| set.evaluate(&review, Scope::All, FailurePolicy::Fail, far()))
    });
    group.bench_function("decode the review and evaluate", |b| {
        b.iter(|| {
            let review = Review::from_slice(&body).expect("review");
            set.evaluate(&review, Scope::All, FailurePolicy::Fail, far())
        })
    });
    group.sample_size(20);
    group.bench_function(
        "build the set: 4 templates, 20 constraints (a reload)",
        |b| b.iter(|| AdmissionSet::build(documents(), Inventory::default(), None)),
    );
    group.finish();
}

criterion_group!(benches, admission);

fn main() {
    common::main_on_eval_stack(benches);
}
