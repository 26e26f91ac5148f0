//! `/health?bundles` after a rejected update, as the bundle tests read it.

use super::{request, Server};

/// Checks that `/health?bundles` answers OPA's 200 `{}` while the last good bundle serves, and
/// returns what verdict's `/health?bundles&warnings` says of the rejected update.
pub async fn rejection_warning(server: &Server) -> String {
    let plain = server
        .raw(&request("GET", "/health?bundles", &[], b""))
        .await;
    assert_eq!(
        (plain.status, plain.json()),
        (200, serde_json::json!({})),
        "OPA's body: still ready, the last good bundle serves"
    );
    let health = server
        .raw(&request("GET", "/health?bundles&warnings", &[], b""))
        .await;
    assert_eq!(health.status, 200);
    health.json()["warnings"][0]
        .as_str()
        .unwrap_or("")
        .to_string()
}
