//! `net.*`: OPA's answers, IPv4-mapped addresses, bad input, a bounded name lookup.

use regorus::Value;

use crate::policy::builtins::testing::{eval, fails, set, value};

#[test]
fn cidr_contains_reads_ipv4_mapped_addresses_as_ipv4() {
    let yes = Value::from(true);
    assert_eq!(
        value(r#"net.cidr_contains("172.28.0.0/16", "::ffff:172.28.5.10")"#),
        yes
    );
    assert_eq!(
        value(r#"net.cidr_contains("10.0.0.0/8", "10.1.0.0/16")"#),
        yes
    );
    assert_eq!(
        value(r#"net.cidr_contains("10.0.0.0/16", "10.0.0.0/8")"#),
        Value::from(false)
    );
    assert_eq!(
        value(r#"net.cidr_contains("2001:db8::/32", "2001:db8:1::1")"#),
        yes
    );
    fails(
        r#"net.cidr_contains("10.0.0.0/33", "10.0.0.1")"#,
        "invalid CIDR address: 10.0.0.0/33",
    );
    fails(
        r#"net.cidr_contains("10.0.0.0/8", "ten")"#,
        "not a valid textual representation",
    );
}

#[test]
fn cidr_intersects_needs_two_networks() {
    assert_eq!(
        value(r#"net.cidr_intersects("192.168.1.0/25", "192.168.1.64/26")"#),
        Value::from(true)
    );
    assert_eq!(
        value(r#"net.cidr_intersects("192.168.1.0/25", "192.168.1.128/25")"#),
        Value::from(false)
    );
    assert_eq!(
        value(r#"net.cidr_intersects("::/0", "10.0.0.0/8")"#),
        Value::from(false)
    );
    fails(
        r#"net.cidr_intersects("not-a-cidr", "10.0.0.0/8")"#,
        "invalid CIDR address: not-a-cidr",
    );
    fails(
        r#"net.cidr_intersects(1, "10.0.0.0/8")"#,
        "operand 1 must be string but got number",
    );
}

#[test]
fn cidr_contains_matches_keys_results_like_its_operands() {
    let got = value(
        r#"net.cidr_contains_matches({"a": "10.0.0.0/8", "b": ["192.168.0.0/16", "x"]}, ["10.1.1.1", "192.168.3.4", "8.8.8.8"])"#,
    );
    assert_eq!(got, set(r#"[["a", 0], ["b", 1]]"#));
    let got = value(r#"net.cidr_contains_matches({["10.0.0.0/8", 1]}, "10.0.0.1")"#);
    assert_eq!(got, set(r#"[[["10.0.0.0/8", 1], "10.0.0.1"]]"#));
    fails(
        r#"net.cidr_contains_matches("10.0.0.0/8", [[]])"#,
        "operand 2: element must be string or non-empty array",
    );
    fails(
        r#"net.cidr_contains_matches(["10.0.0.0/8"], [true])"#,
        "operand 2: element must be string or non-empty array",
    );
}

#[test]
fn cidr_merge_joins_adjacent_and_nested_networks() {
    let merge = |list: &str| value(&format!("net.cidr_merge({list})"));
    assert_eq!(
        merge(r#"["192.0.128.0/24", "192.0.129.0/24"]"#),
        set(r#"["192.0.128.0/23"]"#)
    );
    assert_eq!(
        merge(r#"["10.0.0.0/8", "10.1.0.0/16", "10.0.0.1/32"]"#),
        set(r#"["10.0.0.0/8"]"#)
    );
    assert_eq!(
        merge(r#"["192.0.2.112/31", "192.0.2.116/31", "192.0.2.118/31"]"#),
        set(r#"["192.0.2.112/31", "192.0.2.116/30"]"#)
    );
    assert_eq!(
        merge(r#"["::/0", "fe80::1/128", "0.0.0.0/0"]"#),
        set(r#"["0.0.0.0/0", "::/0"]"#)
    );
    // A bare IPv4 address takes its classful mask, as Go's DefaultMask gives it.
    assert_eq!(
        merge(r#"{"10.2.3.4", "172.16.0.1", "192.0.2.1"}"#),
        set(r#"["10.0.0.0/8", "172.16.0.0/16", "192.0.2.0/24"]"#)
    );
    assert_eq!(merge("[]"), set("[]"));
    fails(
        r#"net.cidr_merge(["2001:db8::1"])"#,
        "IPv6 invalid: needs prefix length",
    );
    fails(r#"net.cidr_merge(["foo"])"#, "invalid CIDR address: foo");
    fails(r#"net.cidr_merge([1])"#, "element must be string");
    fails(
        r#"net.cidr_merge("10.0.0.0/8")"#,
        "operand must be an array",
    );
}

#[test]
fn lookup_ip_addr_answers_literals_and_localhost_without_the_network() {
    assert_eq!(
        value(r#"net.lookup_ip_addr("10.0.0.1")"#),
        set(r#"["10.0.0.1"]"#)
    );
    assert_eq!(value(r#"net.lookup_ip_addr("::")"#), set(r#"["::"]"#));
    let local = value(r#"net.lookup_ip_addr("localhost")"#);
    let local = local.as_set().unwrap();
    assert!(!local.is_empty());
    assert!(
        local
            .iter()
            .all(|a| a == &Value::from("127.0.0.1") || a == &Value::from("::1")),
        "{local:?}"
    );
}

#[test]
fn a_name_that_never_resolves_is_undefined_within_the_timeout() {
    let started = std::time::Instant::now();
    // `.invalid` is reserved (RFC 2606): no resolver may answer it.
    assert_eq!(
        eval(r#"net.lookup_ip_addr("verdict-test.invalid")"#, false),
        Ok(None)
    );
    assert!(started.elapsed() < super::LOOKUP_TIMEOUT + std::time::Duration::from_secs(1));
    fails(
        r#"net.lookup_ip_addr(["x"])"#,
        "operand 1 must be string but got array",
    );
}
