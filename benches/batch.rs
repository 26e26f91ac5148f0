//! What a batch saves per decision: the release `verdict run` on the built-in payment bundle,
//! asked for 100 payment decisions as 100 `POST /v1/data/payment/decision` calls one after the
//! other on one keep-alive connection, and as one `POST /v1/batch/data/payment/decision` with
//! the 100 inputs (their shared fields in `common_input`). Criterion's throughput line gives
//! decisions per second; the time per iteration divided by 100 is the time per decision.
//!
//! Run: cargo bench --bench batch

// A benchmark that cannot set up has nothing to measure: failing loudly is the point.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Value as Json};

const ADDR: &str = "127.0.0.1:18996";
const ITEMS: usize = 100;

struct Verdict(Child);

impl Drop for Verdict {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(rt: &tokio::runtime::Runtime, client: &reqwest::Client) -> Verdict {
    let child = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(["run", "--addr", ADDR, "--log-level", "error"])
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("verdict starts");
    let verdict = Verdict(child);
    rt.block_on(async {
        for _ in 0..200 {
            let ready = client
                .get(format!("http://{ADDR}/health"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("verdict did not become ready on {ADDR}");
    });
    verdict
}

fn payment(i: usize) -> Json {
    json!({"role": "customer", "amount": 100 + i as u64 * 37, "merchant": format!("m-{i}"), "velocity": i % 5})
}

const COMMON: &str = r#"{"method": "POST", "path": "/api/payment", "currency": "EUR", "country": "DE", "timestamp": "2026-11-24T14:30:00Z"}"#;

fn batch_vs_single(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    verdict::remote::client::install_crypto_provider();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let _verdict = start(&rt, &client);
    let common: Json = serde_json::from_str(COMMON).unwrap();
    let singles: Vec<String> = (0..ITEMS)
        .map(|i| {
            let mut input = payment(i);
            for (k, v) in common.as_object().unwrap() {
                input[k] = v.clone();
            }
            json!({ "input": input }).to_string()
        })
        .collect();
    let inputs: serde_json::Map<String, Json> =
        (0..ITEMS).map(|i| (format!("p{i}"), payment(i))).collect();
    let batch = json!({"inputs": inputs, "common_input": common}).to_string();

    let mut group = c.benchmark_group("payment_decisions");
    group.throughput(Throughput::Elements(ITEMS as u64));
    group.bench_function("100 single calls", |b| {
        b.iter(|| {
            rt.block_on(async {
                for body in &singles {
                    let r = client
                        .post(format!("http://{ADDR}/v1/data/payment/decision"))
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap();
                    assert!(r.status().is_success());
                    r.bytes().await.unwrap();
                }
            })
        })
    });
    group.bench_function("1 batch of 100", |b| {
        b.iter(|| {
            rt.block_on(async {
                let r = client
                    .post(format!("http://{ADDR}/v1/batch/data/payment/decision"))
                    .body(batch.clone())
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success());
                r.bytes().await.unwrap();
            })
        })
    });
    group.finish();
}

criterion_group!(benches, batch_vs_single);
criterion_main!(benches);
