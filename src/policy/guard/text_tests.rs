use super::*;

/// `x := ` followed by `depth` arrays each holding the next as its first element.
fn nested(open: &str, close: &str, depth: usize) -> String {
    format!("x := {}1{}", open.repeat(depth), close.repeat(depth))
}

fn depth_of(err: TextError) -> u32 {
    match err {
        TextError::NestedLiteral { depth, .. } => depth,
        other => panic!("not a nesting refusal: {other}"),
    }
}

#[test]
fn nested_first_elements_are_bounded_at_the_limit() {
    // The outer literal is not retried (it is an assignment's right side); each one inside it is.
    let limit = MAX_RETRY_DEPTH as usize;
    for (open, close) in [("[", "]"), ("{", "}"), ("{\"a\": ", "}"), ("[f(", ")]")] {
        assert_eq!(check(&nested(open, close, limit)), Ok(()), "{open}");
        let err = check(&nested(open, close, limit + 2)).unwrap_err();
        assert_eq!(depth_of(err), MAX_RETRY_DEPTH + 1, "{open}");
    }
}

#[test]
fn the_attack_query_is_refused_where_the_limit_is_passed() {
    let query = nested("[", "]", 40);
    let err = check(&query).unwrap_err();
    // `x := ` is 5 columns; bracket k is read at depth k - 1, so bracket limit + 2 is the first
    // one past the limit.
    let col = 5 + MAX_RETRY_DEPTH + 2;
    assert_eq!(err.position(), (1, col));
}

#[test]
fn brackets_in_strings_raw_strings_and_comments_do_not_count() {
    let deep = "[".repeat(40);
    let text = format!(
        "package p\n\n# {deep}\ns := \"{deep}\\\"{deep}\"\nr := `{deep}\n{deep}`\nt := 1 # {deep}\n"
    );
    assert_eq!(check(&text), Ok(()));
    // The same brackets outside a string are refused: the scan really counts them.
    assert!(check(&format!("package p\n\nu := {deep}")).is_err());
}

#[test]
fn later_elements_and_indexes_are_not_retried() {
    // Only the first element of a literal is parsed twice: these stay cheap at any depth the
    // bracket bound allows.
    let later = format!("x := {}1{}", "[1, ".repeat(60), "]".repeat(60));
    assert_eq!(check(&later), Ok(()));
    let refs = format!("x := a{}1{}", "[a".repeat(60), "]".repeat(60));
    assert_eq!(check(&refs), Ok(()));
}

#[test]
fn statements_nested_in_comprehensions_count() {
    let limit = MAX_RETRY_DEPTH as usize;
    for sep in ["; ", "\n"] {
        let ok = format!(
            "x := {}1{}",
            format!("[x | x := 1{sep}").repeat(limit),
            "]".repeat(limit)
        );
        assert_eq!(check(&ok), Ok(()), "{sep:?}");
        let deep = limit + 2;
        let bad = format!(
            "x := {}1{}",
            format!("[x | x := 1{sep}").repeat(deep),
            "]".repeat(deep)
        );
        assert!(check(&bad).is_err(), "{sep:?}");
    }
}

#[test]
fn many_moderate_chains_add_up_to_the_cost_bound() {
    let chain = nested("[", "]", MAX_RETRY_DEPTH as usize);
    let text: String = std::iter::repeat_n(chain.as_str(), 40)
        .collect::<Vec<_>>()
        .join("\n");
    match check(&text) {
        Err(TextError::Cost { row, limit, .. }) => {
            assert_eq!(limit, MAX_REREAD_COST);
            assert!(
                row > 1,
                "refused once the sum passed the bound, at row {row}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(check(&chain), Ok(()));
}

#[test]
fn plain_bracket_depth_and_size_are_bounded() {
    let parens = format!("x := {}1{}", "(".repeat(70), ")".repeat(70));
    assert!(matches!(
        check(&parens),
        Err(TextError::TooDeep { limit: 64, .. })
    ));
    let ok = format!("x := {}1{}", "(".repeat(30), ")".repeat(30));
    assert_eq!(check(&ok), Ok(()));
    let big = format!("x := \"{}\"", "a".repeat(MAX_TEXT_BYTES));
    assert!(matches!(check(&big), Err(TextError::TooLarge { .. })));
}

#[test]
fn columns_count_characters_and_rows_count_lines() {
    let text = format!(
        "package p\n\ns := \"é\"; x := {}",
        nested("[", "]", 16).trim_start_matches("x := ")
    );
    let (row, col) = check(&text).unwrap_err().position();
    assert_eq!(row, 3);
    // `s := "é"; x := ` is 15 characters (16 bytes); bracket limit + 2 is refused.
    assert_eq!(col, 15 + MAX_RETRY_DEPTH + 2);
}

#[test]
fn runs_the_parser_recurses_over_are_bounded() {
    let unary = |n: usize| format!("x := {}1", "-".repeat(n));
    assert_eq!(check(&unary(MAX_UNARY_RUN as usize)), Ok(()));
    assert!(matches!(
        check(&unary(MAX_UNARY_RUN as usize + 1)),
        Err(TextError::UnaryRun { .. })
    ));
    // Over lines too: the parser skips the line breaks.
    let lines = format!("x := {}1", "-\n".repeat(5000));
    assert!(matches!(check(&lines), Err(TextError::UnaryRun { .. })));
    assert_eq!(check("x := 1 - -1\ny := [-1, -2] == -z"), Ok(()));

    let ops = |n: usize| format!("x := 1{}", " + 1".repeat(n));
    assert_eq!(check(&ops(MAX_OPERATORS as usize - 2)), Ok(()));
    assert!(matches!(
        check(&ops(MAX_OPERATORS as usize)),
        Err(TextError::Operators { .. })
    ));
    // Brackets do not reset the count: the tree is as deep through them.
    let nested = format!("x := {}1{}", "(1 + 1 + 1 + 1 + ".repeat(40), ")".repeat(40));
    assert!(matches!(check(&nested), Err(TextError::Operators { .. })));
    // Statements, elements and keys start again.
    let many = format!(
        "x := [{}]\ny := 1{}",
        "1 + 1, ".repeat(500),
        "\nz := 1 + 1".repeat(500)
    );
    assert_eq!(check(&many), Ok(()));

    let dots = |n: usize| format!("x := input{}", ".a".repeat(n));
    assert_eq!(check(&dots(MAX_REF_SEGMENTS as usize)), Ok(()));
    assert!(matches!(
        check(&dots(MAX_REF_SEGMENTS as usize + 1)),
        Err(TextError::LongReference { .. })
    ));
    let brackets = format!(
        "x := input{}",
        "[\"a\"]".repeat(MAX_REF_SEGMENTS as usize + 1)
    );
    assert!(matches!(
        check(&brackets),
        Err(TextError::LongReference { .. })
    ));
    assert_eq!(check(&format!("x := {}", "a.b, ".repeat(500))), Ok(()));
}

#[test]
fn text_at_every_bound_parses_and_evaluates_on_a_small_stack() {
    // The module a client could send at the limits: on a test thread's 2 MiB stack (the size
    // of tokio's blocking threads, where bundles compile) regorus must neither parse nor
    // evaluate it into an overflow.
    let text = format!(
        "package p\n\nsum := 1{}\n\nref := data.p.obj{}\n\nobj := {}\n\ndeep := {}1{}\n",
        " + 1".repeat(MAX_OPERATORS as usize - 2),
        ".a".repeat(MAX_REF_SEGMENTS as usize - 3),
        "{\"a\": ".repeat(4) + "1" + &"}".repeat(4),
        "[".repeat(MAX_RETRY_DEPTH as usize),
        "]".repeat(MAX_RETRY_DEPTH as usize),
    );
    assert_eq!(check(&text), Ok(()));
    let unary = format!(
        "package n\n\nneg := {}1\n",
        "-".repeat(MAX_UNARY_RUN as usize)
    );
    assert_eq!(check(&unary), Ok(()));
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let mut engine = regorus::Engine::new();
            engine.set_policy_length_config(crate::policy::guard::length_config());
            engine.add_policy("p.rego".into(), text).unwrap();
            let sum = engine.eval_rule("data.p.sum".into()).unwrap();
            let deep = engine.eval_rule("data.p.deep".into()).unwrap();
            // Accepted or refused, the parse returns: an overflow would abort the process.
            let _ = engine.add_policy("n.rego".into(), unary);
            (sum, deep)
        })
        .unwrap();
    let (sum, deep) = handle.join().unwrap();
    assert_eq!(sum, regorus::Value::from(MAX_OPERATORS as u64 - 1));
    assert_ne!(deep, regorus::Value::Undefined);
}

#[test]
fn a_number_with_a_huge_exponent_is_refused_before_regorus_builds_it() {
    // Found by the `query` fuzz target: regorus turned this exponent into an exact big integer
    // for minutes.
    let err = check("0e175555555/").unwrap_err();
    assert!(
        matches!(
            err,
            TextError::Number {
                part: "exponent",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.position(), (1, 1));
    for (text, refused) in [
        ("x := 1e9999", false),
        ("x := 1e99999", true),
        ("x := 1.5E+99999", true),
        ("x := 2.5e-12345", true),
        ("x := 1e+9_9_9_9_9", true),
        ("x := 1e+308", false),
        ("x := \"1e99999\"", false),
        ("x := e99999", false),
    ] {
        assert_eq!(check(text).is_err(), refused, "{text}");
    }
    let long = format!("x := {}", "9".repeat(MAX_NUMBER_DIGITS + 1));
    assert!(matches!(
        check(&long),
        Err(TextError::Number { part: "digits", .. })
    ));
    let fine = format!("x := {}", "9".repeat(MAX_NUMBER_DIGITS));
    assert_eq!(check(&fine), Ok(()));
}
