//! verdict on the Rego sources OPA's Wasm compiler was given for ../shared/opa-wasm's bundle,
//! on both engines, for `benches/opa_wasm.sh`, which runs OPA's JavaScript Wasm SDK on the
//! compiled bundle in the same run and puts the figures side by side.
//!
//! Run: VERDICT_WASM_SOURCES=<bundle directory> cargo bench --bench wasm_sources

// A benchmark that cannot set up has nothing to measure: failing loudly is the point.
#![allow(clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, Criterion};
use verdict::bundle::{Bundle, LoadOptions, Source};
use verdict::policy::vm::{EngineChoice, VmOptions};
use verdict::policy::{compile, CompileOptions, DataPath, Query};

/// The input `bench.mjs` gives OPA-Wasm, field for field.
const INPUT: &str = r#"{"method": "POST", "path": "/api/payment", "role": "customer", "amount": 2500, "currency": "EUR", "merchant": "m-123", "country": "DE", "velocity": 1, "timestamp": "2026-11-24T10:15:00Z"}"#;

/// The two entrypoints bench.mjs measures (the Wasm bundle has the envoy ones too).
const ENTRYPOINTS: [&str; 2] = ["data.payment.decision", "data.payment.allow"];

fn sources(c: &mut Criterion) {
    let Ok(dir) = std::env::var("VERDICT_WASM_SOURCES") else {
        eprintln!(
            "VERDICT_WASM_SOURCES is not set: nothing to measure (benches/opa_wasm.sh sets it)"
        );
        return;
    };
    let bundle = Bundle::load(&Source::path(&dir), LoadOptions::default()).expect("bundle loads");
    let bundle = Arc::new(bundle);
    let mut group = c.benchmark_group("opa_wasm_sources");
    for (name, engine) in [
        ("interpreter", EngineChoice::Interpreter),
        ("auto", EngineChoice::Auto),
    ] {
        let options = CompileOptions {
            vm: VmOptions {
                engine,
                ..VmOptions::default()
            },
            ..CompileOptions::default()
        };
        let set = compile(std::slice::from_ref(&bundle), options).expect("sources compile");
        if let Some(fast) = set.fast_path() {
            assert!(fast.wait_verified(Duration::from_secs(60)));
        }
        for path in ENTRYPOINTS {
            let path = DataPath::parse(path).expect("valid path");
            let served = set.fast_path().map_or("interpreter", |f| {
                f.engine_of(path.rule_key().unwrap_or_default())
            });
            // From JSON text to JSON text, as the SDK marshals the input into the Wasm
            // instance and the result out of it on every call.
            let decide = || {
                let input = regorus::Value::from_json_str(INPUT).expect("input parses");
                let decision = set
                    .evaluate(Query {
                        path: &path,
                        input: Some(input),
                        strict_builtin_errors: false,
                    })
                    .expect("decision");
                decision
                    .result
                    .map(|r| verdict::gojson::value_to_string(&r, false))
            };
            // The answer, for the script to hold against OPA-Wasm's on the same input.
            let answer = decide().expect("the entrypoint is defined");
            eprintln!("answer {} {name}: {answer}", path.slashed());
            group.bench_function(format!("{} on {name} ({served})", path.slashed()), |b| {
                b.iter(decide)
            });
        }
    }
    group.finish();
}

criterion_group!(benches, sources);

fn main() {
    common::main_on_eval_stack(benches);
}
