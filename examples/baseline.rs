//! The baseline for benches/load.sh: the smallest axum JSON handler on the same runtime and
//! HTTP stack as verdict, doing no policy work. It parses the request body as JSON and answers
//! a fixed decision, so the difference to verdict is the decision core plus OPA's envelope.
//!
//! benches/proxy.sh uses it as the upstream too: `POST /api/payment` answers a fixed
//! acceptance, as the payment gateway would.
//!
//! cargo run --release --example baseline -- 127.0.0.1:8282

use axum::routing::post;
use axum::serve::ListenerExt;
use axum::{Json, Router};
use serde_json::{json, Value};

async fn decision(Json(body): Json<Value>) -> Json<Value> {
    let allow = body.get("input").is_some();
    Json(json!({"result": {"allow": allow, "reasons": []}}))
}

async fn payment(body: axum::body::Bytes) -> Json<Value> {
    Json(json!({"status": "accepted", "bytes": body.len()}))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8282".into());
    let app = Router::new()
        .route("/v1/data/payment/decision", post(decision))
        .route("/api/payment", post(payment));
    // TCP_NODELAY as verdict sets it, so the two differ only in the handler.
    let listener = tokio::net::TcpListener::bind(&addr).await?.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}
