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

/// A number literal with an exponent of five digits or more: regorus expands it into a big
/// integer while lexing (fuzz/regressions/query/huge-exponent-number). Skipped so a run finds
/// other things until the text guard refuses them; remove once it does.
fn known_huge_exponent(text: &[u8]) -> bool {
    text.windows(2).enumerate().any(|(i, w)| {
        w[0].is_ascii_digit()
            && matches!(w[1], b'e' | b'E')
            && text[i + 2..]
                .iter()
                .skip_while(|b| matches!(b, b'+' | b'-'))
                .take_while(|b| b.is_ascii_digit() || **b == b'_')
                .count()
                >= 5
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if known_huge_exponent(data) {
        return;
    }
    let Some(set) = policies() else {
        // Not a finding about the query path: the fixture itself must compile.
        panic!("the payment bundle does not compile");
    };
    let _ = set.query(text, Some(input()));
});
