//! A gRPC load generator for benches/load.sh: Envoy ext_authz `Check` calls with a typical
//! payment request, over several HTTP/2 connections, and the latency percentiles as JSON.
//!
//!   grpc_load ADDR rate N DURATION_S CONNECTIONS   open loop: N calls/s on a fixed schedule
//!   grpc_load ADDR closed C DURATION_S CONNECTIONS closed loop: C calls always in flight
//!
//! Open loop measures each call from the moment the schedule says it should start, so a server
//! that falls behind is charged for the queueing it causes (as oha's --latency-correction does).
//! The schedule is kept by a plain thread sleeping to the next send time: tokio's timer ticks
//! in milliseconds, too coarse for 200 µs spacing.

// A load generator that cannot keep its tally has nothing to report: failing loudly is right.
#![allow(clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
use hdrhistogram::Histogram;
use tonic::transport::Channel;

const BODY: &str = r#"{"amount": 2500, "currency": "EUR", "merchant": "m-123", "country": "DE", "velocity": 1, "timestamp": "2026-11-24T14:30:00Z"}"#;

fn payment() -> CheckRequest {
    let headers = HashMap::from([
        ("content-type".to_string(), "application/json".to_string()),
        ("x-payment-role".to_string(), "customer".to_string()),
        (":authority".to_string(), "pay.edge.local".to_string()),
        ("user-agent".to_string(), "payment-gateway/1.0".to_string()),
    ]);
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                time: None,
                http: Some(HttpRequest {
                    id: "1234567890".into(),
                    method: "POST".into(),
                    path: "/api/payment".into(),
                    host: "pay.edge.local".into(),
                    scheme: "https".into(),
                    protocol: "HTTP/1.1".into(),
                    size: BODY.len() as i64,
                    body: BODY.into(),
                    headers,
                    ..HttpRequest::default()
                }),
            }),
            ..AttributeContext::default()
        }),
    }
}

#[derive(Default)]
struct Tally {
    latencies: Option<Histogram<u64>>,
    allowed: u64,
    denied: u64,
    failed: u64,
}

impl Tally {
    fn record(&mut self, took: Duration, outcome: Result<i32, tonic::Status>) {
        let h = self.latencies.get_or_insert_with(|| {
            Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
        });
        let _ = h.record(took.as_nanos().min(u128::from(h.high())) as u64);
        match outcome {
            Ok(0) => self.allowed += 1,
            Ok(_) => self.denied += 1,
            Err(_) => self.failed += 1,
        }
    }
}

async fn call(
    client: &mut AuthorizationClient<Channel>,
    request: &CheckRequest,
) -> Result<i32, tonic::Status> {
    let response = client.check(request.clone()).await?;
    Ok(response.get_ref().status.as_ref().map_or(0, |s| s.code))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() == 6,
        "usage: grpc_load ADDR rate|closed N DURATION_S CONNECTIONS"
    );
    let (addr, mode, n, seconds, connections) = (
        args[1].clone(),
        args[2].clone(),
        args[3].parse::<u64>()?,
        args[4].parse::<u64>()?,
        args[5].parse::<usize>()?,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let clients: Vec<AuthorizationClient<Channel>> = runtime.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..connections {
            // One Channel per connection: each connect() opens its own HTTP/2 connection.
            let channel = Channel::from_shared(format!("http://{addr}"))?
                .tcp_nodelay(true)
                .connect()
                .await?;
            clients.push(AuthorizationClient::new(channel));
        }
        anyhow::Ok(clients)
    })?;
    let request = Arc::new(payment());
    let tally = Arc::new(Mutex::new(Tally::default()));
    let duration = Duration::from_secs(seconds);
    let started = Instant::now();
    match mode.as_str() {
        "rate" => {
            let interval = Duration::from_secs_f64(1.0 / n as f64);
            let handle = runtime.handle().clone();
            let mut tasks = Vec::new();
            let mut i: u32 = 0;
            loop {
                let due = started + interval * i;
                if due >= started + duration {
                    break;
                }
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                let mut client = clients[i as usize % clients.len()].clone();
                let (request, tally) = (request.clone(), tally.clone());
                tasks.push(handle.spawn(async move {
                    let outcome = call(&mut client, &request).await;
                    tally.lock().expect("tally").record(due.elapsed(), outcome);
                }));
                i += 1;
            }
            runtime.block_on(async {
                for t in tasks {
                    let _ = t.await;
                }
            });
        }
        "closed" => {
            runtime.block_on(async {
                let mut tasks = Vec::new();
                for w in 0..n as usize {
                    let mut client = clients[w % clients.len()].clone();
                    let (request, tally) = (request.clone(), tally.clone());
                    tasks.push(tokio::spawn(async move {
                        while started.elapsed() < duration {
                            let sent = Instant::now();
                            let outcome = call(&mut client, &request).await;
                            tally.lock().expect("tally").record(sent.elapsed(), outcome);
                        }
                    }));
                }
                for t in tasks {
                    let _ = t.await;
                }
            });
        }
        other => anyhow::bail!("unknown mode {other}: rate or closed"),
    }
    let elapsed = started.elapsed().as_secs_f64();
    let tally = tally.lock().expect("tally");
    let h = tally
        .latencies
        .clone()
        .unwrap_or_else(|| Histogram::new(3).expect("histogram"));
    let s = |q: f64| h.value_at_quantile(q) as f64 / 1e9;
    let total = tally.allowed + tally.denied + tally.failed;
    println!(
        "{}",
        serde_json::json!({
            "p50": s(0.50), "p99": s(0.99), "p999": s(0.999), "max": h.max() as f64 / 1e9,
            "rps": total as f64 / elapsed,
            "allowed": tally.allowed, "denied": tally.denied, "failed": tally.failed, "total": total,
        })
    );
    Ok(())
}
