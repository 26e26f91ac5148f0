//! Fuzzes the ad-hoc query path (`/v1/query`, `verdict eval`): fuzzer text as a query against
//! the example payment bundle, through the Rego text guard, regorus's parser and evaluation.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use verdict::bundle::{Bundle, LoadOptions, Source};
use verdict::policy::{compile, CompileOptions, PolicySet};
use verdict::{EMBEDDED_BUNDLE, EMBEDDED_BUNDLE_NAME};

/// The payment bundle, compiled once as `verdict run` compiles it.
fn policies() -> Option<&'static PolicySet> {
    static SET: OnceLock<Option<PolicySet>> = OnceLock::new();
    SET.get_or_init(|| {
        let source = Source::embedded(EMBEDDED_BUNDLE_NAME, EMBEDDED_BUNDLE);
        let bundle = Bundle::load(&source, LoadOptions::default()).ok()?;
        compile(&[Arc::new(bundle)], CompileOptions::default()).ok()
    })
    .as_ref()
}

/// An input shaped like a payment request, so queries on `input` reach the rules' bodies.
fn input() -> regorus::Value {
    static INPUT: OnceLock<regorus::Value> = OnceLock::new();
    INPUT
        .get_or_init(|| {
            regorus::Value::from_json_str(
                r#"{"method":"POST","path":"/api/payment","role":"customer","amount":2500,
                    "currency":"EUR","merchant":"m-123","country":"DE","velocity":3}"#,
            )
            .unwrap_or(regorus::Value::Null)
        })
        .clone()
}

fuzz_target!(init: {
    // The service answers a panic inside regorus as one failed request (PolicySet::query runs
    // under catch_unwind); libfuzzer-sys's hook would abort on it first. A panic that escapes
    // is still a crash.
    let _ = std::panic::take_hook();
}, |data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(set) = policies() else {
        // Not a finding about the query path: the fixture itself must compile.
        panic!("the payment bundle does not compile");
    };
    let _ = set.query(text, Some(input()));
});
