//! Hot reload of the admission webhook, waited for on reload events: constraints and templates
//! (with the last good version kept when an update is broken), the inventory behind
//! `data.inventory` and `namespaceSelector`, and the TLS certificate and key; plus client
//! certificate verification.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::admission::{client_trusting, pod, review, Hook};
use common::pki::Pki;
use serde_json::Value as Json;

async fn admit_image(hook: &Hook, image: &str) -> Json {
    hook.admit(&review("CREATE", &pod("p", "payments", image)))
        .await
}

#[tokio::test]
async fn constraints_and_templates_reload_and_a_broken_update_keeps_the_last_good_one() {
    let hook = Hook::start(&[], |_| {}).await;
    assert_eq!(
        admit_image(&hook, "quay.io/pay/app:1").await["allowed"],
        false
    );

    let path = hook.policies().join("constraints/allowed-registries.yaml");
    let original = std::fs::read_to_string(&path).unwrap();
    hook.write(
        "constraints/allowed-registries.yaml",
        &original.replace("ghcr.io/payments-platform/", "quay.io/pay/"),
    );
    let seen = hook.generation().admission_reloads;
    hook.wait_for("the new registries", seen, |s| {
        s.set()
            .constraint("PaymentAllowedRegistries", "payment-registries")
            .is_some_and(|c| c.doc.parameters.to_string().contains("quay.io/pay/"))
    })
    .await;
    assert_eq!(
        admit_image(&hook, "quay.io/pay/app:1").await["allowed"],
        true
    );

    // A constraint update that breaks the schema: reported, and the last good one decides.
    hook.write(
        "constraints/allowed-registries.yaml",
        &original.replace("registries:\n", "registries: oops\n  ignored:\n"),
    );
    let seen = hook.generation().admission_reloads;
    hook.wait_for("the schema error", seen, |s| !s.set().errors.is_empty())
        .await;
    let status = hook.status().await;
    assert!(
        status["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("payment-registries"),
        "{status}"
    );
    assert_eq!(
        admit_image(&hook, "quay.io/pay/app:1").await["allowed"],
        true
    );
    assert_eq!(
        admit_image(&hook, "docker.io/app:1").await["allowed"],
        false
    );

    // A template update with a Rego error: the same.
    let template = hook.policies().join("templates/required-limits.yaml");
    let text = std::fs::read_to_string(&template).unwrap();
    hook.write(
        "templates/required-limits.yaml",
        &text.replace("not c.resources.limits[r]", "not c.resources.limits[r] +"),
    );
    let seen = hook.generation().admission_reloads;
    hook.wait_for("the Rego error", seen, |s| {
        s.set()
            .errors
            .iter()
            .any(|e| e.to_string().contains("paymentrequiredlimits: Rego error"))
    })
    .await;
    let mut no_limits = pod("p", "payments", "registry.pay.internal/a:1");
    no_limits["spec"]["containers"][0]["resources"] = serde_json::json!({});
    let response = hook.admit(&review("CREATE", &no_limits)).await;
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("[cpu-and-memory-limits]"),
        "{response}"
    );

    // Deleting a constraint's file removes it.
    std::fs::remove_file(hook.policies().join("constraints/required-limits.yaml")).unwrap();
    let seen = hook.generation().admission_reloads;
    hook.wait_for("the constraint's removal", seen, |s| {
        s.set()
            .constraint("PaymentRequiredLimits", "cpu-and-memory-limits")
            .is_none()
    })
    .await;
    assert_eq!(
        hook.admit(&review("CREATE", &no_limits)).await["allowed"],
        true
    );
}

/// Pods may not start in a namespace frozen by a `payments-freeze` ConfigMap (inventory), and
/// a second constraint applies to namespaces labelled `tier: pci` only.
const INVENTORY_POLICIES: &str = r#"
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: paymentfreeze}
spec:
  crd: {spec: {names: {kind: PaymentFreeze}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package paymentfreeze

        violation[{"msg": msg}] {
          ns := input.review.namespace
          freeze := data.inventory.namespace[ns]["v1"]["ConfigMap"]["payments-freeze"]
          msg := sprintf("namespace %v is frozen: %v", [ns, freeze.data.reason])
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: PaymentFreeze
metadata: {name: freeze}
spec:
  match: {kinds: [{apiGroups: [""], kinds: [Pod]}]}
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: PaymentRequiredLimits
metadata: {name: pci-memory}
spec:
  match:
    namespaceSelector: {matchLabels: {tier: pci}}
  parameters: {resources: [memory]}
"#;

const NAMESPACES: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: payments, labels: {tier: pci}}
---
apiVersion: v1
kind: Namespace
metadata: {name: web}
"#;

#[tokio::test]
async fn the_inventory_reloads_and_feeds_data_inventory_and_namespace_selectors() {
    let hook = Hook::start(&[("inventory-policies.yaml", INVENTORY_POLICIES)], |c| {
        c.inventory = Some(c.policies[0].parent().unwrap().join("inventory"));
    })
    .await;
    let inventory = hook.dir.path().join("inventory");
    // No inventory yet: the namespace selector cannot be decided, and the failure policy
    // (Fail) rejects, naming why.
    let response = admit_image(&hook, "registry.pay.internal/a:1").await;
    assert_eq!(response["status"]["code"], 500, "{response}");
    assert!(response["status"]["message"]
        .as_str()
        .unwrap()
        .contains("namespace \"payments\", which is not in the inventory"));

    std::fs::create_dir_all(&inventory).unwrap();
    std::fs::write(inventory.join("namespaces.yaml"), NAMESPACES).unwrap();
    // The directory did not exist at start: a SIGHUP-like nudge is an edit under policies.
    hook.write("nudge.yaml", "# reload\n");
    let seen = hook.generation().admission_reloads;
    hook.wait_for("the namespaces", seen, |s| {
        s.set().inventory.namespaces.len() == 2
    })
    .await;
    assert_eq!(
        admit_image(&hook, "registry.pay.internal/a:1").await["allowed"],
        true
    );
    let mut no_memory = pod("p", "web", "registry.pay.internal/a:1");
    no_memory["spec"]["containers"][0]["resources"]["limits"] = serde_json::json!({"cpu": "1"});
    let in_web = hook.admit(&review("CREATE", &no_memory)).await;
    assert_eq!(
        in_web["status"]["message"],
        "[cpu-and-memory-limits] container <main> has no memory limit"
    );
    no_memory["metadata"]["namespace"] = "payments".into();
    let in_pci = hook.admit(&review("CREATE", &no_memory)).await;
    assert_eq!(
        in_pci["status"]["message"],
        "[cpu-and-memory-limits] container <main> has no memory limit\n[pci-memory] container <main> has no memory limit"
    );

    common::replace_file(
        &inventory.join("freeze.yaml"),
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: payments-freeze, namespace: payments}\ndata: {reason: year-end close}\n",
    );
    let seen = hook.generation().admission_reloads;
    hook.wait_for("the freeze", seen, |s| s.set().inventory.objects == 3)
        .await;
    let response = admit_image(&hook, "registry.pay.internal/a:1").await;
    assert_eq!(
        response["status"]["message"],
        "[freeze] namespace payments is frozen: year-end close"
    );
}

#[tokio::test]
async fn a_rotated_certificate_serves_new_connections() {
    let hook = Hook::start(&[], |_| {}).await;
    let rotated = Pki::new();
    let new_client = client_trusting(&rotated.ca_pem, None);
    let url = format!("{}/health", hook.url);
    assert!(
        new_client.get(&url).send().await.is_err(),
        "the new CA is not trusted yet"
    );

    let tls = hook.dir.path().join("tls");
    // A half-written pair (new key, old certificate) is refused and the old one keeps serving.
    common::replace_file(&tls.join("tls.key"), rotated.server_key_pem.as_bytes());
    let seen = hook.generation().admission_reloads;
    hook.wait_for("the mismatched pair to be refused", seen, |s| {
        s.progress().tls_failures > 0
    })
    .await;
    assert!(hook
        .client()
        .get(&url)
        .send()
        .await
        .unwrap()
        .status()
        .is_success());

    common::replace_file(&tls.join("tls.crt"), rotated.server_cert_pem.as_bytes());
    let mut rx = hook.server.state.subscribe();
    let served = tokio::time::timeout(common::WAIT, async {
        loop {
            if new_client.get(&url).send().await.is_ok() {
                return;
            }
            rx.changed().await.unwrap();
        }
    })
    .await;
    assert!(served.is_ok(), "the rotated certificate never served");
    assert!(
        hook.client().get(&url).send().await.is_err(),
        "the old CA no longer fits"
    );
}

#[tokio::test]
async fn a_client_certificate_can_be_required() {
    let hook = Hook::start(&[], |c| {
        let ca = c.tls_cert_file.with_file_name("client-ca.crt");
        c.tls_client_ca_file = Some(ca);
    })
    .await;
    let url = format!("{}/health", hook.url);
    assert!(
        hook.client().get(&url).send().await.is_err(),
        "no client certificate"
    );
    let with_cert = client_trusting(
        &hook.pki.ca_pem,
        Some((&hook.pki.client_cert_pem, &hook.pki.client_key_pem)),
    );
    assert_eq!(
        with_cert
            .get(&url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok"
    );
}

#[tokio::test]
async fn a_configmap_swap_of_the_constraints_is_picked_up() {
    // The constraints directory is a ConfigMap mount: real files under `..<timestamp>`,
    // `..data` pointing at them, visible names linking through it.
    let constraints = |registries: &str| {
        let text = std::fs::read_to_string(
            common::repo().join("policies/admission/constraints/allowed-registries.yaml"),
        )
        .unwrap()
        .replace("ghcr.io/payments-platform/", registries);
        vec![("allowed-registries.yaml".to_string(), text.into_bytes())]
    };
    let hook = Hook::start(&[], |c| {
        let mount = c.policies[0].parent().unwrap().join("mount");
        std::fs::create_dir_all(&mount).unwrap();
        common::configmap_publish(&mount, 1, &constraints("ghcr.io/payments-platform/"));
        c.policies = vec![c.policies[0].join("templates"), mount];
    })
    .await;
    let status = hook.status().await;
    assert_eq!(
        status["constraints"].as_array().unwrap().len(),
        1,
        "{status}"
    );
    assert_eq!(
        admit_image(&hook, "quay.io/pay/app:1").await["allowed"],
        false
    );

    let mount = hook.dir.path().join("mount");
    common::configmap_publish(&mount, 2, &constraints("quay.io/pay/"));
    let seen = hook.generation().admission_reloads;
    hook.wait_for("the swapped ConfigMap", seen, |s| {
        s.set()
            .constraint("PaymentAllowedRegistries", "payment-registries")
            .is_some_and(|c| c.doc.parameters.to_string().contains("quay.io/pay/"))
    })
    .await;
    assert_eq!(
        admit_image(&hook, "quay.io/pay/app:1").await["allowed"],
        true
    );
    assert_eq!(
        hook.set().constraints.len(),
        1,
        "each file is read once, not via ..data too"
    );
}
