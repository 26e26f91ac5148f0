//! The admission webhook over real HTTPS: the payment platform's Gatekeeper templates decide
//! reviews as Gatekeeper would (deny, warn, dryrun, uid echo, match, DELETE), per-kind routes,
//! and the evaluation deadline with both failure policies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::admission::{pod, review, sample, Hook};
use serde_json::{json, Value as Json};
use verdict::admission::FailurePolicy;

#[tokio::test]
async fn payment_policies_admit_and_deny_as_gatekeeper_does() {
    let hook = Hook::start(&[], |_| {}).await;

    let good = review("CREATE", &sample("good-pod.yaml"));
    let answer = hook.post("/v1/admit", good.to_string()).await;
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(
        answer["response"],
        json!({"uid": "uid-gateway", "allowed": true, "status": {"code": 200}})
    );

    // Two constraints deny: one line each, `[constraint] msg`, sorted, 403 Forbidden.
    let bad = review("CREATE", &sample("no-limits.yaml"));
    let mut object = bad["request"]["object"].clone();
    object["spec"]["containers"][1]["image"] = json!("docker.io/evil:1");
    let bad = review("CREATE", &object);
    let response = hook.admit(&bad).await;
    assert_eq!(response["uid"], "uid-batch");
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    assert_eq!(response["status"]["reason"], "Forbidden");
    let message = response["status"]["message"].as_str().unwrap();
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(
        lines,
        [
            "[cpu-and-memory-limits] container <settle> has no cpu limit",
            "[cpu-and-memory-limits] container <sidecar> has no cpu limit",
            "[cpu-and-memory-limits] container <sidecar> has no memory limit",
            "[payment-registries] container <sidecar> uses image <docker.io/evil:1> from an unapproved registry; allowed: [\"registry.pay.internal/\", \"ghcr.io/payments-platform/\"]",
        ],
        "{message}"
    );

    // excludedNamespaces: kube-system is left alone.
    let system = review(
        "CREATE",
        &pod("coredns", "kube-system", "registry.k8s.io/coredns:1"),
    );
    assert_eq!(hook.admit(&system).await["allowed"], true);

    // labelSelector: only pods labelled as Wasm need the WasmEdge runtime class; a DELETE is
    // matched against its oldObject.
    let wasm = sample("wasm-without-runtimeclass.yaml");
    for operation in ["CREATE", "DELETE"] {
        let response = hook.admit(&review(operation, &wasm)).await;
        assert_eq!(response["allowed"], false, "{operation}: {response}");
        assert!(response["status"]["message"].as_str().unwrap().starts_with(
            "[wasm-needs-wasmedge] Wasm workload <fraud-score> must set runtimeClassName: wasmedge"
        ));
    }
    let ok = hook
        .admit(&review("CREATE", &sample("wasm-with-runtimeclass.yaml")))
        .await;
    assert_eq!(ok["allowed"], true, "{ok}");

    // The v1beta1 review is answered in v1beta1.
    let mut old = good.clone();
    old["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let answer = hook.post("/v1/admit", old.to_string()).await;
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1beta1");
    assert_eq!(answer["response"]["allowed"], true);
}

#[tokio::test]
async fn per_kind_routes_run_only_that_kind() {
    let hook = Hook::start(&[], |_| {}).await;
    let privileged = review("CREATE", &sample("privileged.yaml"));
    let all = hook.admit(&privileged).await;
    assert_eq!(all["allowed"], false);
    let only_limits = hook
        .post("/v1/admit/PaymentRequiredLimits", privileged.to_string())
        .await;
    assert_eq!(only_limits["response"]["allowed"], true, "{only_limits}");
    let only_privileged = hook
        .post("/v1/admit/PaymentNoPrivileged", privileged.to_string())
        .await;
    assert_eq!(
        only_privileged["response"]["status"]["message"],
        "[no-privileged] privileged container <shell> is not allowed"
    );
}

const WARN_AND_DRYRUN: &str = r#"
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: PaymentRequiredLimits
metadata: {name: memory-limits-warn}
spec:
  enforcementAction: warn
  match: {namespaces: ["batch-*"]}
  parameters: {resources: [memory]}
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: PaymentAllowedRegistries
metadata: {name: registries-dryrun}
spec:
  enforcementAction: dryrun
  match: {namespaces: ["batch-*"]}
  parameters: {registries: ["nowhere/"]}
"#;

#[tokio::test]
async fn warn_becomes_warnings_and_dryrun_is_only_recorded() {
    let hook = Hook::start(&[("constraints/soft.yaml", WARN_AND_DRYRUN)], |_| {}).await;
    let mut object = pod("nightly", "batch-eu", "registry.pay.internal/batch:1");
    object["spec"]["containers"][0]["resources"] = json!({"limits": {"cpu": "1"}});
    let request = review("CREATE", &object);
    let response = hook.admit(&request).await;
    // The deny constraint (cpu-and-memory-limits) also sees the missing memory limit.
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(
        response["warnings"],
        json!(["[memory-limits-warn] container <main> has no memory limit"])
    );

    object["spec"]["containers"][0]["resources"] = json!({"limits": {"cpu": "1", "memory": "1Gi"}});
    let response = hook.admit(&review("CREATE", &object)).await;
    assert_eq!(
        response,
        json!({"uid": "uid-nightly", "allowed": true, "status": {"code": 200}}),
        "the dryrun violation changes nothing in the answer"
    );
    let set = hook.set();
    let decision = set.evaluate(
        &verdict::admission::Review::from_json(review("CREATE", &object)).unwrap(),
        Default::default(),
        FailurePolicy::Fail,
        std::time::Instant::now() + std::time::Duration::from_secs(5),
    );
    assert_eq!(decision.violations.len(), 1, "{:?}", decision.violations);
    assert_eq!(decision.violations[0].constraint_name, "registries-dryrun");
}

/// A template whose `violation` loops for as long as the object asks (`spec.n`²).
const SLOW: &str = r#"
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: slowcheck}
spec:
  crd: {spec: {names: {kind: SlowCheck}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package slowcheck

        violation[{"msg": "slow"}] {
          n := input.review.object.spec.n
          count([1 | some i, j; numbers.range(1, n)[i]; numbers.range(1, n)[j]]) < 0
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: SlowCheck
metadata: {name: slow}
spec:
  match: {namespaces: [slow]}
"#;

#[tokio::test]
async fn the_deadline_answers_by_the_failure_policy() {
    for policy in [FailurePolicy::Fail, FailurePolicy::Ignore] {
        let hook = Hook::start(&[("slow.yaml", SLOW)], |c| {
            c.deadline_ms = 200;
            c.failure_policy = policy;
        })
        .await;
        let mut object = pod("loop", "slow", "registry.pay.internal/x:1");
        object["spec"]["n"] = json!(100_000);
        let started = std::time::Instant::now();
        let response = hook.admit(&review("CREATE", &object)).await;
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(response["uid"], "uid-loop");
        match policy {
            FailurePolicy::Fail => {
                assert_eq!(response["allowed"], false, "{response}");
                assert_eq!(response["status"]["code"], 500);
                let message = response["status"]["message"].as_str().unwrap();
                assert!(
                    message.contains("[slow] evaluation exceeded the admission deadline"),
                    "{message}"
                );
            }
            FailurePolicy::Ignore => {
                assert_eq!(response["allowed"], true, "{response}");
                assert!(
                    response["warnings"][0]
                        .as_str()
                        .unwrap()
                        .contains("deadline"),
                    "{response}"
                );
            }
        }
        // A quick object is unaffected.
        let mut quick = object.clone();
        quick["spec"]["n"] = json!(3);
        assert_eq!(hook.admit(&review("CREATE", &quick)).await["allowed"], true);
    }
}

#[tokio::test]
async fn templates_and_constraints_load_from_a_bundle_tarball() {
    let repo = common::repo().join("policies/admission");
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for sub in ["templates", "constraints"] {
        for entry in std::fs::read_dir(repo.join(sub)).unwrap() {
            let entry = entry.unwrap();
            let name = format!("{sub}/{}", entry.file_name().to_string_lossy());
            files.push((name, std::fs::read(entry.path()).unwrap()));
        }
    }
    files.push((
        ".manifest".into(),
        br#"{"revision": "admission-1", "roots": ["admission"]}"#.to_vec(),
    ));
    let hook = Hook::start(&[], |c| {
        let tarball = c.policies[0].parent().unwrap().join("admission.tar.gz");
        std::fs::write(&tarball, common::bundle_tar(&files)).unwrap();
        c.policies = vec![tarball];
    })
    .await;
    let status = hook.status().await;
    assert_eq!(
        status["constraints"].as_array().unwrap().len(),
        4,
        "{status}"
    );
    assert_eq!(status["errors"], json!([]));
    let response = hook
        .admit(&review("CREATE", &sample("privileged.yaml")))
        .await;
    assert_eq!(
        response["status"]["message"],
        "[no-privileged] privileged container <shell> is not allowed"
    );
}

#[tokio::test]
async fn an_update_is_matched_on_the_object_or_the_old_object() {
    let hook = Hook::start(&[], |_| {}).await;
    // The update removes the Wasm label: the old object still selects the constraint, as in
    // Gatekeeper, so the label cannot be dropped to escape the runtime class rule.
    let old = sample("wasm-without-runtimeclass.yaml");
    let mut new = old.clone();
    new["metadata"]["labels"] = json!({});
    let mut update = review("UPDATE", &new);
    update["request"]["oldObject"] = old;
    let response = hook.admit(&update).await;
    assert_eq!(response["allowed"], false, "{response}");
    assert!(response["status"]["message"]
        .as_str()
        .unwrap()
        .starts_with("[wasm-needs-wasmedge]"));
    // Neither labelled: not selected.
    update["request"]["oldObject"] = new;
    assert_eq!(hook.admit(&update).await["allowed"], true);
    // Neither object nor oldObject: a constraint cannot be matched, which fails the review.
    update["request"]["object"] = Json::Null;
    update["request"]["oldObject"] = Json::Null;
    let response = hook.admit(&update).await;
    assert_eq!(response["status"]["code"], 500, "{response}");
    assert!(response["status"]["message"]
        .as_str()
        .unwrap()
        .contains("neither object nor oldObject"));
}
