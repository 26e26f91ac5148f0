# Tests of the Envoy ext_authz entrypoint (bundles/payment/envoy/authz), with inputs shaped as
# verdict and opa-envoy-plugin build them from a CheckRequest.
package envoy.authz_test

import data.envoy.authz

check(role, body) := {
	"attributes": {"request": {"http": {
		"method": "POST",
		"path": "/api/payment",
		"headers": {"content-type": "application/json", "x-payment-role": role},
	}}},
	"parsed_path": ["api", "payment"],
	"parsed_query": {},
	"parsed_body": body,
	"truncated_body": false,
}

good := {"amount": 2500, "currency": "EUR", "merchant": "m-123", "country": "DE", "velocity": 1}

test_a_good_payment_is_allowed_and_the_role_header_removed if {
	answer := authz.allow with input as check("customer", good)
	answer.allowed == true
	answer.request_headers_to_remove == ["x-payment-role"]
}

test_a_denial_carries_the_reasons_as_json if {
	answer := authz.allow with input as check("customer", object.union(good, {"amount": 50000}))
	answer.allowed == false
	answer.http_status == 403
	body := json.unmarshal(answer.body)
	body.reasons == ["amount 50000 exceeds the customer limit of 10000"]
}

test_a_role_in_the_body_does_not_raise_limits if {
	smuggled := object.union(good, {"amount": 50000, "role": "admin"})
	answer := authz.allow with input as check("customer", smuggled)
	answer.allowed == false
}

test_an_unparsed_or_truncated_body_is_denied if {
	answer := authz.allow with input as check("customer", null)
	answer.allowed == false
}

test_a_check_without_http_attributes_is_denied if {
	answer := authz.allow with input as {"parsed_path": [""], "parsed_query": {}}
	answer.allowed == false
}
