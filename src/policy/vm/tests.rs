use std::sync::Arc;
use std::time::Duration;

use regorus::Value;

use super::{EngineChoice, VmOptions};
use crate::bundle::{Bundle, LoadOptions, Source};
use crate::policy::{compile, CompileOptions, DataPath, PolicySet, Query};

const WAIT: Duration = Duration::from_secs(120);

fn options(engine: EngineChoice, shadow_every: u64) -> CompileOptions {
    CompileOptions {
        vm: VmOptions {
            engine,
            shadow_every,
        },
        ..CompileOptions::default()
    }
}

fn set_of(files: &[(&str, &str)], engine: EngineChoice) -> PolicySet {
    let bundle = crate::policy::compile::tests::bundle_of(files);
    compile(&[bundle], options(engine, 0)).unwrap()
}

fn payment(engine: EngineChoice, shadow_every: u64) -> PolicySet {
    let source = Source::embedded("bundles/payment", crate::EMBEDDED_BUNDLE);
    let bundle = Bundle::load(&source, LoadOptions::default()).unwrap();
    compile(&[Arc::new(bundle)], options(engine, shadow_every)).unwrap()
}

fn eval(set: &PolicySet, path: &str, input: &Value) -> Option<Value> {
    let path = DataPath::parse(path).unwrap();
    let query = Query {
        path: &path,
        input: Some(input.clone()),
        strict_builtin_errors: false,
    };
    set.evaluate(query).unwrap().result
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn engines(set: &PolicySet) -> Vec<(String, &'static str)> {
    let fast = set.fast_path().unwrap();
    assert!(fast.wait_verified(WAIT), "verification did not finish");
    fast.status()
        .into_iter()
        .map(|s| (s.path, s.engine))
        .collect()
}

fn engine_of(set: &PolicySet, path: &str) -> &'static str {
    let found = engines(set).into_iter().find(|(p, _)| p == path);
    let engine = found.map_or("absent", |(_, e)| e);
    if engine != "vm" {
        // Why, for a failing assertion's reader.
        let status = set.fast_path().map(|f| f.status()).unwrap_or_default();
        let reason = status.iter().find(|s| s.path == path).map(|s| &s.reason);
        eprintln!("{path}: {engine} ({reason:?})");
    }
    engine
}

#[test]
fn interpreter_is_the_default_and_verifies_nothing() {
    let set = payment(EngineChoice::Interpreter, 0);
    assert!(set.fast_path().is_none());
}

#[test]
fn the_payment_entrypoints_go_to_the_vm_and_answer_as_the_interpreter() {
    let vm = payment(EngineChoice::Auto, 0);
    let interpreter = payment(EngineChoice::Interpreter, 0);
    assert_eq!(engine_of(&vm, "payment/decision"), "vm");
    assert_eq!(engine_of(&vm, "payment/allow"), "vm");
    // `with` in its rules: the ext_authz policy stays on the interpreter.
    assert_eq!(engine_of(&vm, "envoy/authz/allow"), "interpreter");
    let inputs = [
        r#"{"method": "POST", "path": "/api/payment", "role": "customer", "amount": 2500, "currency": "EUR", "merchant": "m-123", "country": "DE", "velocity": 1, "timestamp": "2026-11-24T14:30:00Z"}"#,
        r#"{"method": "GET", "path": "/api/payment", "role": "admin", "amount": -5, "currency": 3, "country": "ir", "velocity": 1.5}"#,
        r#"{"method": "POST", "path": "/api/payment", "role": "merchant", "amount": 99999999, "currency": "USD", "merchant": "m-123", "country": "FR", "velocity": 100, "timestamp": "yesterday"}"#,
        r#"{}"#,
    ];
    for text in inputs {
        let input = json(text);
        for path in [
            "payment/decision",
            "payment/allow",
            "payment/decision/reasons",
        ] {
            let expected = eval(&interpreter, path, &input);
            assert!(expected.is_some(), "{path} is defined for {text}");
            assert_eq!(eval(&vm, path, &input), expected, "{path} on {text}");
        }
    }
    let served = vm.fast_path().unwrap().status();
    let decision = served
        .iter()
        .find(|s| s.path == "payment/decision")
        .unwrap();
    assert_eq!(decision.vm_decisions, inputs.len() as u64 * 2);
    assert_eq!(decision.fallbacks, 0);
}

#[test]
fn constructs_known_to_diverge_keep_their_entrypoints_on_the_interpreter() {
    let set = set_of(
        &[(
            "/p.rego",
            r#"package p

r[k] contains v if {
	some k, v in input.pairs
}

with_r := x if x := q with input as {"a": 1}

q := input.a

printed if print("x")

walked := [p | walk(input, [p, _])]

jwt := io.jwt.decode(input.token)

plain := input.a + 1
"#,
        )],
        EngineChoice::Auto,
    );
    let engines = engines(&set);
    let of = |p: &str| engines.iter().find(|(q, _)| q == p).map(|(_, e)| *e);
    assert_eq!(of("p/with_r"), Some("interpreter"));
    assert_eq!(of("p/printed"), Some("interpreter"));
    assert_eq!(of("p/walked"), Some("interpreter"));
    // verdict's own builtins are called from the VM through host-await.
    assert_eq!(of("p/jwt"), Some("vm"));
    assert_eq!(of("p/q"), Some("vm"));
    // Not a construct the static check knows: the differential check finds it (`null + 1`).
    assert_eq!(of("p/plain"), Some("interpreter"));
    // `r[k] contains v`: the VM gives wrong results (ENGINE-NOTES).
    assert_eq!(of("p/r"), Some("interpreter"));
}

#[test]
fn a_vm_limit_falls_back_to_the_interpreter_for_that_request() {
    let vm = payment(EngineChoice::Auto, 0);
    assert_eq!(engine_of(&vm, "payment/decision"), "vm");
    let input = json(r#"{"method": "POST", "path": "/api/payment", "role": "customer"}"#);
    let expected = eval(
        &payment(EngineChoice::Interpreter, 0),
        "payment/decision",
        &input,
    );
    // This thread's VMs are loaded with a limit no decision fits in.
    super::run::tests::MAX_INSTRUCTIONS.with(|m| m.set(Some(10)));
    let answered = eval(&vm, "payment/decision", &input);
    super::run::tests::MAX_INSTRUCTIONS.with(|m| m.set(None));
    assert!(expected.is_some());
    assert_eq!(answered, expected);
    let status = vm.fast_path().unwrap().status();
    let decision = status
        .iter()
        .find(|s| s.path == "payment/decision")
        .unwrap();
    assert_eq!((decision.fallbacks, decision.vm_decisions), (1, 0));
    // A fallback is no verdict on the entrypoint: the VM still serves it.
    assert_eq!(decision.engine, "vm");
}

#[test]
fn a_shadow_mismatch_turns_the_vm_off_for_that_entrypoint() {
    let vm = payment(EngineChoice::Auto, 1);
    assert_eq!(engine_of(&vm, "payment/allow"), "vm");
    let input = json(r#"{"role": "admin"}"#);
    let expected = eval(
        &payment(EngineChoice::Interpreter, 0),
        "payment/allow",
        &input,
    );
    // An honest answer: the shadow check agrees.
    assert_eq!(eval(&vm, "payment/allow", &input), expected);
    assert!(super::shadow::wait_idle(WAIT));
    assert_eq!(engine_of(&vm, "payment/allow"), "vm");
    super::run::tests::TAMPER.with(|t| t.set(true));
    // The answer itself is the VM's; the shadow check is handed a wrong one.
    let answered = eval(&vm, "payment/allow", &input);
    super::run::tests::TAMPER.with(|t| t.set(false));
    assert_eq!(answered, expected);
    assert!(super::shadow::wait_idle(WAIT));
    let status = vm.fast_path().unwrap().status();
    let allow = status.iter().find(|s| s.path == "payment/allow").unwrap();
    assert_eq!((allow.engine, allow.shadow_mismatches), ("interpreter", 1));
    // Served by the interpreter from now on, with the same answer; other entrypoints stay.
    assert_eq!(eval(&vm, "payment/allow", &input), expected);
    let status = vm.fast_path().unwrap().status();
    let allow = status.iter().find(|s| s.path == "payment/allow").unwrap();
    assert_eq!(allow.vm_decisions, 2);
    assert_eq!(engine_of(&vm, "payment/decision"), "vm");
}

#[test]
fn a_bundle_whose_test_inputs_show_a_divergence_stays_on_the_interpreter() {
    // `input[k]` hides the field from the generated inputs: only the test's input reaches the
    // rule body, whose two engines read the clock at different moments.
    let rego = |tests: &str| {
        format!("package t\n\nk := \"a\"\n\nstamp := time.now_ns() if input[k] == \"now\"\n{tests}")
    };
    let without = set_of(&[("/t.rego", &rego(""))], EngineChoice::Auto);
    assert_eq!(engine_of(&without, "t/stamp"), "vm");
    let tests = "\ntest_stamp if stamp > 0 with input as {\"a\": \"now\"}\n";
    let with = set_of(&[("/t.rego", &rego(tests))], EngineChoice::Auto);
    assert_eq!(engine_of(&with, "t/stamp"), "interpreter");
}

#[test]
fn the_vm_decides_inline_and_giving_up_there_is_no_fallback() {
    let vm = payment(EngineChoice::Auto, 0);
    assert_eq!(engine_of(&vm, "payment/decision"), "vm");
    let input = json(r#"{"method": "POST", "path": "/api/payment", "role": "customer"}"#);
    let interpreter = payment(EngineChoice::Interpreter, 0);
    let expected = eval(&interpreter, "payment/decision", &input);
    assert!(expected.is_some());
    let path = DataPath::parse("payment/decision").unwrap();
    let query = |strict_builtin_errors| Query {
        path: &path,
        input: Some(input.clone()),
        strict_builtin_errors,
    };
    // A path's first decision is `evaluate`'s, which prepares the path (OPA's cache miss).
    assert!(vm.evaluate_inline(&query(false)).is_none());
    assert_eq!(vm.evaluate(query(false)).unwrap().result, expected);
    let inline = vm.evaluate_inline(&query(false));
    assert!(
        inline.as_ref().is_some_and(|d| d.prepare_time.is_none()),
        "a hit"
    );
    assert_eq!(inline.map(|d| d.result), Some(expected));
    // What the VM does not serve is left to `evaluate`: strict builtin errors, entrypoints
    // on the interpreter, queries without input.
    assert!(vm.evaluate_inline(&query(true)).is_none());
    assert!(interpreter.evaluate_inline(&query(false)).is_none());
    let no_input = Query {
        path: &path,
        input: None,
        strict_builtin_errors: false,
    };
    assert!(vm.evaluate_inline(&no_input).is_none());
    // A VM that cannot finish inline gives way to `evaluate`; that is no fallback, since the
    // full evaluation follows. A thread of its own loads VMs with a limit nothing fits in.
    std::thread::scope(|s| {
        s.spawn(|| {
            super::run::tests::MAX_INSTRUCTIONS.with(|m| m.set(Some(10)));
            for _ in 0..super::MAX_INLINE_GIVE_UPS {
                assert!(vm.evaluate_inline(&query(false)).is_none());
            }
        });
    });
    let counts = |vm: &PolicySet| {
        let status = vm.fast_path().unwrap().status();
        let decision = status.into_iter().find(|s| s.path == "payment/decision");
        decision.map(|d| (d.fallbacks, d.vm_decisions))
    };
    assert_eq!(counts(&vm), Some((0, 2)));
    // An entrypoint that keeps giving up inline is no longer tried there, even where it would
    // finish: its decisions go to blocking threads, where the VM still serves them.
    assert!(vm.evaluate_inline(&query(false)).is_none());
    assert!(vm.evaluate(query(false)).unwrap().result.is_some());
    assert_eq!(counts(&vm), Some((0, 3)));
}

/// OPA reports a rule, a function or an object key given two values as a conflict; the VM
/// answers the last value it found. Every rule that could get two values keeps its entrypoint
/// on the interpreter, so that even the first decision is OPA's error; definitions that
/// exclude each other (`E` and `not E`) and equal constants stay on the VM.
#[test]
fn rules_that_could_conflict_stay_on_the_interpreter() {
    let policy = r#"package app

ys := input.ys if is_array(input.ys)
else := []

x := 1 if input.a
x := 2 if input.b

f(v) := 1 if v.a
f(v) := 2 if v.b
fx := f(input)

obj[k] := v if {
	some v in ys
	k := "k"
}

first := v if {
	some v in ys
}

now := 1 if input.t
now := 2 if not input.t

same if input.a
same if input.b
"#;
    let set = set_of(&[("/app/p.rego", policy)], EngineChoice::Auto);
    for path in ["app/x", "app/fx", "app/obj", "app/first"] {
        assert_eq!(engine_of(&set, path), "interpreter", "{path}");
    }
    for path in ["app/now", "app/same", "app/ys"] {
        assert_eq!(engine_of(&set, path), "vm", "{path}");
    }
    let conflicting = [
        ("app/x", r#"{"a": true, "b": true}"#),
        ("app/fx", r#"{"a": true, "b": true}"#),
        ("app/obj", r#"{"ys": [1, 2]}"#),
        ("app/first", r#"{"ys": [1, 2]}"#),
    ];
    for (path, input) in conflicting {
        let path = DataPath::parse(path).unwrap();
        let query = Query {
            path: &path,
            input: Some(json(input)),
            strict_builtin_errors: false,
        };
        match set.evaluate(query) {
            Err(crate::policy::EvalError::Policy(errors)) => {
                assert_eq!(
                    errors[0].code, "eval_conflict_error",
                    "{path:?}: {errors:?}"
                )
            }
            other => panic!("{path:?}: {other:?}"),
        }
    }
    assert_eq!(
        eval(&set, "app/now", &json(r#"{"t": true}"#)),
        Some(json("1"))
    );
    assert_eq!(eval(&set, "app/now", &json("{}")), Some(json("2")));
}
