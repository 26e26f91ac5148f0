//! In-process cost of a payment decision and of what surrounds it: the decision core alone,
//! the whole request path minus HTTP (parse the body, evaluate, write OPA's JSON), a package
//! query, and compiling the bundle (the work a hot swap does off the request path).
//!
//! Run: cargo bench --bench decision
//!
//! The `opa_wasm_sources` group runs only for `benches/opa_wasm.sh`, which sets
//! `VERDICT_WASM_SOURCES` to the Rego sources of ../shared/opa-wasm's bundle and runs OPA's
//! Wasm SDK on the compiled bundle in the same run.

// A benchmark that cannot set up has nothing to measure: failing loudly is the point.
#![allow(clippy::expect_used)]

mod common;

use std::sync::Arc;

use criterion::{criterion_group, Criterion};
use verdict::bundle::{Bundle, LoadOptions, Location, Source};
use verdict::gojson;
use verdict::policy::vm::{EngineChoice, VmOptions};
use verdict::policy::{compile, CompileOptions, DataPath, PolicySet, Query};
use verdict::server::http::request::parse_envelope;

const BODY: &[u8] = br#"{"input": {"method": "POST", "path": "/api/payment", "role": "customer", "amount": 2500, "currency": "EUR", "merchant": "m-123", "country": "DE", "velocity": 1, "timestamp": "2026-11-24T14:30:00Z"}}"#;

fn payment_bundle() -> Arc<Bundle> {
    let source = Source::embedded("bundles/payment", verdict::EMBEDDED_BUNDLE);
    Arc::new(Bundle::load(&source, LoadOptions::default()).expect("embedded bundle loads"))
}

/// The payment bundle on `engine`, its fast path verified when it has one, so that no
/// figure mixes the two engines.
fn policy_on(engine: EngineChoice) -> PolicySet {
    compiled_on(payment_bundle(), engine)
}

/// `bundle` on `engine`, its fast path verified when it has one.
fn compiled_on(bundle: Arc<Bundle>, engine: EngineChoice) -> PolicySet {
    let options = CompileOptions {
        vm: VmOptions {
            engine,
            // Shadow checks are off the request path; left on at the default share.
            ..VmOptions::default()
        },
        ..CompileOptions::default()
    };
    let set = compile(&[bundle], options).expect("bundle compiles");
    if let Some(fast) = set.fast_path() {
        assert!(fast.wait_verified(std::time::Duration::from_secs(60)));
    }
    set
}

/// The interpreter: the series the `payment` and `ext_authz` figures were always taken on.
fn policy() -> PolicySet {
    policy_on(EngineChoice::Interpreter)
}

/// The engine that serves `path` in `set`, for the benchmarks' labels.
fn served_by(set: &PolicySet, path: &DataPath) -> &'static str {
    set.fast_path().map_or("interpreter", |f| {
        f.engine_of(path.rule_key().unwrap_or_default())
    })
}

/// One decision of `set` on `path`, as the benchmarks' loops ask it.
fn decide(set: &PolicySet, path: &DataPath, input: &regorus::Value) {
    let query = Query {
        path,
        input: Some(input.clone()),
        strict_builtin_errors: false,
    };
    set.evaluate(query).expect("decision");
}

/// The same decisions on both engines: the interpreter, and the bytecode VM where verified.
fn engines(c: &mut Criterion) {
    let input = input();
    let sets = [
        ("interpreter", policy()),
        ("auto", policy_on(EngineChoice::Auto)),
    ];
    let mut group = c.benchmark_group("engine");
    for path in ["data.payment.decision", "data.payment.allow"] {
        let path = DataPath::parse(path).expect("valid path");
        for (name, set) in &sets {
            let engine = served_by(set, &path);
            group.bench_function(format!("{} on {name} ({engine})", path.slashed()), |b| {
                b.iter(|| decide(set, &path, &input))
            });
        }
    }
    group.finish();
}

fn input() -> regorus::Value {
    parse_envelope(BODY, false)
        .expect("valid body")
        .expect("has input")
}

fn decisions(c: &mut Criterion) {
    let set = policy();
    let input = input();
    let mut group = c.benchmark_group("payment");
    for path in ["data.payment.decision", "data.payment.allow"] {
        let path = DataPath::parse(path).expect("valid path");
        group.bench_function(path.slashed(), |b| b.iter(|| decide(&set, &path, &input)));
    }
    // A base document below a package: the query path rather than the exact-rule path.
    let config = DataPath::parse("data.payment.config.currencies").expect("valid path");
    group.bench_function("payment/config/currencies (query path)", |b| {
        b.iter(|| {
            let query = Query {
                path: &config,
                input: None,
                strict_builtin_errors: false,
            };
            set.evaluate(query).expect("document")
        })
    });
    // What the HTTP handler does around the core: decode the body, evaluate, encode.
    let decision = DataPath::parse("data.payment.decision").expect("valid path");
    group.bench_function("request path without HTTP", |b| {
        b.iter(|| {
            let input = parse_envelope(BODY, false).expect("body parses");
            let d = set
                .evaluate(Query {
                    path: &decision,
                    input,
                    strict_builtin_errors: false,
                })
                .expect("decision");
            let mut out = Vec::with_capacity(128);
            if let Some(result) = &d.result {
                gojson::write_value(&mut out, result, None);
            }
            out
        })
    });
    group.finish();
}

fn activation(c: &mut Criterion) {
    let bundle = payment_bundle();
    c.bench_function("bundle/compile and validate payment bundle", |b| {
        b.iter(|| {
            compile(std::slice::from_ref(&bundle), CompileOptions::default()).expect("compiles")
        })
    });
    c.bench_function("bundle/read embedded tar.gz", |b| b.iter(payment_bundle));

    // What activating a download costs the reloader's thread, end to end: unpack, parse,
    // check, compile and warm. Decisions keep running on the old snapshot meanwhile.
    let source = Source {
        location: Location::Remote { persist_dir: None },
        ..Source::embedded("payment", verdict::EMBEDDED_BUNDLE)
    };
    let mut group = c.benchmark_group("bundle/activate a download");
    group.sample_size(10);
    for (name, bytes) in [
        ("example bundle", verdict::EMBEDDED_BUNDLE.to_vec()),
        ("example bundle + 10 MB data.json", large_bundle()),
    ] {
        group.bench_function(format!("{name} ({} KB gzipped)", bytes.len() / 1024), |b| {
            b.iter(|| {
                let bundle = Bundle::from_download(&source, &bytes, LoadOptions::default(), None)
                    .expect("bundle reads");
                compile(&[Arc::new(bundle)], CompileOptions::default()).expect("compiles")
            })
        });
    }
    group.finish();
}

/// The example bundle plus a 10 MB sanctions list at `data.payment.sanctions`, as a tar.gz.
fn large_bundle() -> Vec<u8> {
    let files =
        verdict::bundle::reader::read_tarball(verdict::EMBEDDED_BUNDLE, u64::MAX).expect("reads");
    let entries: Vec<String> = (0..90_000)
        .map(|i| {
            format!(
                r#"{{"id":"S-{i:08}","name":"Sanctioned Party {i}","country":"C{}","iban":"DE{:020}","listed":"2026-01-{:02}"}}"#,
                i % 200,
                i as u64 * 7919,
                i % 28 + 1
            )
        })
        .collect();
    let data = format!(r#"{{"entries":[{}]}}"#, entries.join(","));
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut add = |path: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, bytes)
            .expect("tar entry");
    };
    for f in &files {
        add(f.path.trim_start_matches('/'), &f.bytes);
    }
    add("payment/sanctions/data.json", data.as_bytes());
    tar.into_inner().expect("tar").finish().expect("gzip")
}

/// An Envoy Check on the shipped `envoy/authz` policy, minus gRPC: build the input from the
/// CheckRequest, evaluate, build the CheckResponse.
fn ext_authz(c: &mut Criterion) {
    use futures_util::FutureExt;
    use verdict::server::grpc::ext_authz::{input, response};
    let set = policy();
    let auto = policy_on(EngineChoice::Auto);
    let body = r#"{"amount": 2500, "currency": "EUR", "merchant": "m-123", "country": "DE", "velocity": 1, "timestamp": "2026-11-24T14:30:00Z"}"#;
    let request = check_request(body);
    let path = DataPath::parse("envoy/authz/allow").expect("valid path");
    let mut group = c.benchmark_group("ext_authz");
    group.bench_function("input from CheckRequest", |b| {
        b.iter(|| {
            input::from_check_request(&request, false)
                .now_or_never()
                .expect("a JSON body parses without waiting")
                .expect("input builds")
        })
    });
    // A whole Check without gRPC: input built, decision evaluated on `on`, response written.
    let check = |on: &PolicySet| {
        let input = input::from_check_request(&request, false)
            .now_or_never()
            .expect("a JSON body parses without waiting")
            .expect("input builds");
        let d = on
            .evaluate(Query {
                path: &path,
                input: Some(input),
                strict_builtin_errors: false,
            })
            .expect("decision");
        response::for_decision(&d.result.expect("defined")).expect("response")
    };
    group.bench_function("check without gRPC", |b| b.iter(|| check(&set)));
    // `envoy/authz` re-enters the payment rules `with input as`: the VM refuses it, so under
    // auto the Check stays on the interpreter (this measures that it costs nothing more).
    let engine = served_by(&auto, &path);
    group.bench_function(format!("check without gRPC on auto ({engine})"), |b| {
        b.iter(|| check(&auto))
    });
    group.finish();
}

fn check_request(body: &str) -> envoy_types::pb::envoy::service::auth::v3::CheckRequest {
    use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
    use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
    let headers = [
        ("content-type", "application/json"),
        ("x-payment-role", "customer"),
        (":authority", "pay.edge.local"),
        ("user-agent", "payment-gateway/1.0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                time: None,
                http: Some(HttpRequest {
                    method: "POST".into(),
                    path: "/api/payment".into(),
                    host: "pay.edge.local".into(),
                    size: body.len() as i64,
                    body: body.into(),
                    headers,
                    ..HttpRequest::default()
                }),
            }),
            ..AttributeContext::default()
        }),
    }
}

/// The input `bench.mjs` (../shared/opa-wasm) gives OPA-Wasm, field for field.
const WASM_INPUT: &str = r#"{"method": "POST", "path": "/api/payment", "role": "customer", "amount": 2500, "currency": "EUR", "merchant": "m-123", "country": "DE", "velocity": 1, "timestamp": "2026-11-24T10:15:00Z"}"#;

/// verdict on the Rego sources OPA's Wasm compiler was given, on both engines, from the
/// input's JSON text to the result's, as the SDK marshals both on every call.
fn opa_wasm_sources(c: &mut Criterion) {
    let Ok(dir) = std::env::var("VERDICT_WASM_SOURCES") else {
        return;
    };
    let bundle = Bundle::load(&Source::path(&dir), LoadOptions::default()).expect("bundle loads");
    let bundle = Arc::new(bundle);
    let mut group = c.benchmark_group("opa_wasm_sources");
    for (name, engine) in [
        ("interpreter", EngineChoice::Interpreter),
        ("auto", EngineChoice::Auto),
    ] {
        let set = compiled_on(bundle.clone(), engine);
        // The two entrypoints bench.mjs measures (the Wasm bundle has the envoy ones too).
        for path in ["data.payment.decision", "data.payment.allow"] {
            let path = DataPath::parse(path).expect("valid path");
            let decide = || {
                let input = regorus::Value::from_json_str(WASM_INPUT).expect("input parses");
                let decision = set
                    .evaluate(Query {
                        path: &path,
                        input: Some(input),
                        strict_builtin_errors: false,
                    })
                    .expect("decision");
                decision.result.map(|r| gojson::value_to_string(&r, false))
            };
            // The answer, for the script to hold against OPA-Wasm's on the same input.
            let answer = decide().expect("the entrypoint is defined");
            eprintln!("answer {} {name}: {answer}", path.slashed());
            let engine = served_by(&set, &path);
            group.bench_function(format!("{} on {name} ({engine})", path.slashed()), |b| {
                b.iter(decide)
            });
        }
    }
    group.finish();
}

criterion_group!(
    benches,
    decisions,
    engines,
    ext_authz,
    activation,
    opa_wasm_sources
);

fn main() {
    common::main_on_eval_stack(benches);
}
