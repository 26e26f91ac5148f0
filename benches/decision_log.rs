//! In-process cost of logging one decision: its event written as JSON (straight from its parts,
//! and through the Rego value that mask and drop policies read), and committed to the spool
//! when the writer is free (one write to the page cache), against the decision itself.
//!
//! Run: cargo bench --bench decision_log

// A benchmark that cannot set up has nothing to measure: failing loudly is the point.
#![allow(clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::SystemTime;

use criterion::{criterion_group, Criterion};
use verdict::config::{SpoolConfig, WhenFull};
use verdict::decision_log::event::{self, EventParts, RequestInfo};
use verdict::decision_log::spool::{Limits, Spool};

const INPUT: &str = r#"{"method": "POST", "path": "/api/payment", "role": "customer", "amount": 2500, "currency": "EUR", "merchant": "m-123", "country": "DE", "velocity": 1, "timestamp": "2026-11-24T14:30:00Z"}"#;

fn logging(c: &mut Criterion) {
    let labels = event::labels(&BTreeMap::from([
        (
            "id".to_string(),
            "8230dd45-6993-4bc8-89f4-bb2eee43983f".to_string(),
        ),
        ("version".to_string(), "0.1.0".to_string()),
    ]));
    let input = regorus::Value::from_json_str(INPUT).expect("input");
    let result =
        regorus::Value::from_json_str(r#"{"allow": true, "reasons": []}"#).expect("result");
    let request = RequestInfo {
        requested_by: "127.0.0.1:47332".parse().ok(),
        req_id: 2,
        http_headers: Vec::new(),
    };
    let metrics = BTreeMap::from([
        ("counter_server_query_cache_hit", 1),
        ("timer_rego_external_resolve_ns", 0),
        ("timer_rego_input_parse_ns", 21_422),
        ("timer_rego_query_eval_ns", 33_190),
        ("timer_server_handler_ns", 60_528),
    ]);
    let parts = || EventParts {
        labels: &labels,
        decision_id: "378a294e-457f-43bf-a4bc-719154ae4118",
        bundles: vec![("bundles/payment", "payment-2026.11.24-1")],
        path: "payment/decision",
        query: None,
        input: Some(input.clone()),
        result: Some(result.clone()),
        error: None,
        request: &request,
        timestamp: SystemTime::now(),
        metrics: &metrics,
    };
    let mut group = c.benchmark_group("decision log");
    group.bench_function("event JSON from its parts", |b| {
        b.iter(|| parts().to_json())
    });
    group.bench_function(
        "event JSON through a Rego value (mask or drop rules)",
        |b| b.iter(|| event::to_json(&parts().build())),
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let limits = Limits {
        max_bytes: u64::MAX,
        max_events: None,
        when_full: WhenFull::DropOldest,
    };
    let spool = runtime
        .block_on(async { Spool::open(dir.path(), &SpoolConfig::default(), limits, None) })
        .expect("spool");
    let bytes = parts().to_json();
    group.bench_function("spool append, writer free (page cache)", |b| {
        b.iter(|| {
            runtime
                .block_on(spool.append(bytes.clone()))
                .expect("appended")
        })
    });
    group.finish();
}

criterion_group!(benches, logging);

fn main() {
    common::main_on_eval_stack(benches);
}
