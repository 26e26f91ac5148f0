use super::*;

fn modules(texts: &[&str]) -> Vec<Ref<Module>> {
    let mut engine = regorus::Engine::new();
    for (i, text) in texts.iter().enumerate() {
        engine
            .add_policy(format!("m{i}.rego"), text.to_string())
            .unwrap();
    }
    engine.get_modules().clone()
}

fn messages(texts: &[&str]) -> Vec<String> {
    match check(&modules(texts)) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .iter()
            .map(|e| {
                let l = e.location.as_ref().unwrap();
                format!("{}:{}: {}", l.file, l.row, e.message)
            })
            .collect(),
    }
}

#[test]
fn mutual_recursion_between_functions_is_refused_naming_the_cycle() {
    let m = messages(&["package x\n\nf(a) := g(a)\n\ng(a) := f(a)\n"]);
    assert_eq!(
        m,
        [
            "m0.rego:3: rule data.x.f is recursive: data.x.f -> data.x.g -> data.x.f",
            "m0.rego:5: rule data.x.g is recursive: data.x.g -> data.x.f -> data.x.g",
        ]
    );
}

#[test]
fn self_reference_through_data_imports_and_aliases_is_refused() {
    assert_eq!(
        messages(&["package x\n\np if data.x.p\n"]),
        ["m0.rego:3: rule data.x.p is recursive: data.x.p -> data.x.p"]
    );
    let m = messages(&[
        "package a\n\nimport data.b as other\n\np if other.q\n",
        "package b\n\nimport data.a\n\nq if a.p\n",
    ]);
    assert_eq!(
        m,
        [
            "m0.rego:5: rule data.a.p is recursive: data.a.p -> data.b.q -> data.a.p",
            "m1.rego:5: rule data.b.q is recursive: data.b.q -> data.a.p -> data.b.q",
        ]
    );
    // Through a comprehension, a `with` value and a variable segment.
    assert_eq!(
        messages(&[
            "package c\n\ns contains x if some x in {y | y := t[_]}\n\nt := [x | some x in s]\n"
        ])
        .len(),
        2
    );
    assert_eq!(
        messages(&["package c\n\np := data.c[k] if k := \"q\"\n\nq := 1\n"]).len(),
        1
    );
}

#[test]
fn base_cases_else_chains_and_shadowing_are_not_recursion() {
    // A chain of calls that ends, an else chain, rules with the same name and different
    // arity in other packages, a local shadowing a rule's name, and data.x from inside x
    // reaching only other rules.
    let ok = [
        "package x\n\nf(a) := g(a)\n\ng(a) := a + 1\n\np := f(1)\n",
        "package y\n\nf(a) := 1 if a > 1\n\nelse := g(a)\n\ng(a) := 2\n",
        "package z\n\nf(a) := data.y.f(a)\n\nq := 1\n\np if {\n\tq := 2\n\tq == 2\n}\n",
        "package w\n\nimport rego.v1\n\nr := data.w.s\n\ns := count(data.x)\n\nallow if every v in [1] { v == data.w.s }\n",
        "package v\n\nf(q) := q\n\nq := f(1)\n",
        "package u\n\np := data[2]\n\nq := data.u[true]\n",
    ];
    assert_eq!(messages(&ok), Vec::<String>::new());
}

#[test]
fn only_definitions_that_close_the_cycle_are_reported() {
    // `f(0) := 1` is a base case: only the recursive definition is refused, as in OPA.
    let m = messages(&["package x\n\nf(0) := 1\n\nf(n) := f(n - 1) if n > 0\n"]);
    assert_eq!(
        m,
        ["m0.rego:5: rule data.x.f is recursive: data.x.f -> data.x.f"]
    );
}

#[test]
fn a_long_chain_does_not_exhaust_the_stack() {
    let mut text = String::from("package long\n\nr0 := 1\n");
    for i in 1..3000 {
        text.push_str(&format!("r{i} := r{} + 1\n", i - 1));
    }
    // Not recursive, but deeper than an evaluation may go.
    let m = messages(&[&text]);
    assert_eq!(m.len(), 1);
    assert!(
        m[0].starts_with("m0.rego:3002: rule data.long.r2999 is evaluated 3000 levels deep"),
        "{}",
        m[0]
    );
    text.push_str("r0b := r2999\n");
    text = text.replace("r0 := 1", "r0 := r0b");
    let m = messages(&[&text]);
    assert_eq!(m.len(), 10, "as many as OPA reports");
    assert!(
        m[0].contains("data.long.r0 -> data.long.r0b -> data.long.r2999"),
        "{}",
        &m[0][..200]
    );
}

#[test]
fn the_longest_reference_the_text_check_allows_is_resolved() {
    let segments = crate::policy::guard::text::MAX_REF_SEGMENTS as usize;
    let text = format!(
        "package x\n\np := data.x{}\n\nq := input{}\n",
        ".p".repeat(segments - 2),
        "[\"a\"]".repeat(segments)
    );
    assert_eq!(crate::policy::guard::check_text("long.rego", &text), Ok(()));
    assert_eq!(
        messages(&[&text]),
        ["m0.rego:3: rule data.x.p is recursive: data.x.p -> data.x.p"]
    );
}

/// `n` rules, each reading the next through `link` (`{next}` stands for it); the last is 1.
fn chain(n: usize, link: &str) -> String {
    let mut text = String::from("package c\n\nallow := r0\n");
    for i in 0..n {
        let next = format!("r{}", i + 1);
        text.push_str(&format!("r{i} := {}\n", link.replace("{next}", &next)));
    }
    text.push_str(&format!("r{n} := 1\n"));
    text
}

#[test]
fn a_chain_deeper_than_the_limit_is_refused_at_its_first_rule_naming_it() {
    let limit = MAX_DEPTH as usize;
    // `allow` and the last rule count one level each.
    assert_eq!(
        messages(&[&chain(limit - 2, "{next}")]),
        Vec::<String>::new()
    );
    let m = messages(&[&chain(limit - 1, "{next}")]);
    assert_eq!(
        m,
        [format!(
            "m0.rego:3: rule data.c.allow is evaluated {} levels deep through {} rules \
             (data.c.allow -> data.c.r0 -> data.c.r1 -> ... -> data.c.r{} -> data.c.r{}): more \
             than the {limit} verdict's evaluator has stack for (each rule is one level, plus \
             its deepest nesting of brackets)",
            limit + 1,
            limit + 1,
            limit - 2,
            limit - 1,
        )]
    );
    let code = check(&modules(&[&chain(limit, "{next}")])).unwrap_err()[0].code;
    assert_eq!(code, "rego_compile_error");
    // Nesting counts: each rule here is 1 + 3 levels.
    let nested = "[y | some y in [[{next}]]]";
    assert_eq!(
        depth::weight(&format!("r0 := {}", nested.replace("{next}", "r1"))),
        4
    );
    assert_eq!(
        messages(&[&chain(limit / 4 - 1, nested)]),
        Vec::<String>::new()
    );
    assert_eq!(messages(&[&chain(limit / 4, nested)]).len(), 1);
}

#[test]
fn wide_policies_and_large_literals_are_shallow() {
    // Thousands of rules side by side, one reading them all, and a large flat literal.
    let mut text = String::from("package w\n\nall := [r0");
    for i in 1..5000 {
        text.push_str(&format!(",\n\tr{i}"));
    }
    text.push_str("]\n");
    for i in 0..5000 {
        text.push_str(&format!("r{i} := {i}\n"));
    }
    let set: Vec<String> = (0..20_000).map(|i| format!("\"m-{i}\"")).collect();
    let lines: Vec<String> = set.chunks(10).map(|line| line.join(", ")).collect();
    let set = format!("blocked := {{{}}}", lines.join(",\n"));
    text.push_str(&set);
    assert_eq!(messages(&[&text]), Vec::<String>::new());
    assert_eq!(depth::weight(&set), 2);
    // Strings and comments hold no nesting; operators in a row count per 32.
    assert_eq!(depth::weight("p if { x := \"[[[[\" } # ((((("), 2);
    let sum = vec!["1"; 64].join(" + ");
    assert_eq!(depth::weight(&format!("p := {sum}")), 1 + 65 / 32);
}
