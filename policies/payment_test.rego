# Tests of the payment bundle (bundles/payment), run by `verdict test bundles/payment policies`.
# They live outside the bundle so that what ships to the edge is policy and data only.
package payment_test

import data.payment

# A valid customer payment on a weekday afternoon (2026-11-24 is a Tuesday).
base := {
	"method": "POST",
	"path": "/api/payment",
	"role": "customer",
	"amount": 2500,
	"currency": "EUR",
	"merchant": "m-123",
	"country": "DE",
	"velocity": 2,
	"timestamp": "2026-11-24T14:30:00Z",
}

with_fields(patch) := object.union(base, patch)

reasons_for(patch) := reasons if {
	reasons := payment.decision.reasons with input as with_fields(patch)
}

test_customer_payment_is_allowed if {
	payment.decision == {"allow": true, "reasons": set()} with input as base
}

test_allow_matches_the_decision if {
	payment.allow with input as base
	not payment.allow with input as with_fields({"amount": 20000})
}

test_amount_at_the_limit_is_allowed if {
	payment.allow with input as with_fields({"amount": 10000})
}

test_amount_over_the_customer_limit_is_denied if {
	reasons_for({"amount": 10001}) == {"amount 10001 exceeds the customer limit of 10000"}
}

test_merchant_limits_are_higher if {
	payment.allow with input as with_fields({"role": "merchant", "amount": 400000})
}

test_amount_must_be_a_positive_integer if {
	every amount in [0, -5, 12.5, "100", null] {
		"amount must be a positive integer in minor units" in reasons_for({"amount": amount})
	}
}

test_unknown_or_missing_role_is_denied if {
	"role missing or unknown" in reasons_for({"role": "intern"})
	"role missing or unknown" in payment.decision.reasons with input as object.remove(base, ["role"])
}

test_only_post_to_the_payment_endpoint if {
	"only POST /api/payment is authorized" in reasons_for({"method": "GET"})
	"only POST /api/payment is authorized" in reasons_for({"path": "/api/refund"})
}

test_currency_must_be_accepted if {
	reasons_for({"currency": "XYZ"}) == {"currency XYZ is not accepted"}
	"currency missing" in payment.decision.reasons with input as object.remove(base, ["currency"])
}

# Each field the policy requires, left out or of the wrong type, is a reason: the payment is
# refused (fail closed) under OPA's meaning of `not` as under verdict's.
test_a_missing_field_is_a_reason if {
	"currency missing" in payment.decision.reasons with input as object.remove(base, ["currency"])
	"merchant missing" in payment.decision.reasons with input as object.remove(base, ["merchant"])
	"payer country missing" in payment.decision.reasons with input as object.remove(base, ["country"])
	"amount must be a positive integer in minor units" in payment.decision.reasons with input as object.remove(base, ["amount"])
	"velocity must be a non-negative integer" in payment.decision.reasons with input as object.remove(base, ["velocity"])
	not payment.allow with input as object.remove(base, ["currency", "merchant", "country"])
}

test_a_field_of_the_wrong_type_is_a_reason if {
	"currency missing" in reasons_for({"currency": 978})
	"merchant missing" in reasons_for({"merchant": ["m-123"]})
	"payer country missing" in reasons_for({"country": null})
}

test_blocked_merchant_is_denied if {
	reasons_for({"merchant": "m-666"}) == {"merchant m-666 is blocked"}
}

test_sanctioned_country_is_denied_in_any_case if {
	reasons_for({"country": "kp"}) == {"payer country KP is sanctioned"}
	reasons_for({"country": "IR"}) == {"payer country IR is sanctioned"}
}

test_velocity_limit if {
	payment.allow with input as with_fields({"velocity": 9})
	reasons_for({"velocity": 10}) == {"10 payments in the last hour reach the customer limit of 10"}
	"velocity must be a non-negative integer" in reasons_for({"velocity": -1})
}

test_merchants_pay_only_in_business_hours if {
	weekday_night := with_fields({"role": "merchant", "timestamp": "2026-11-24T23:30:00Z"})
	saturday := with_fields({"role": "merchant", "timestamp": "2026-11-28T12:00:00Z"})
	"merchant payments are only authorized during business hours" in payment.decision.reasons with input as weekday_night
	"merchant payments are only authorized during business hours" in payment.decision.reasons with input as saturday
	payment.allow with input as with_fields({"role": "merchant", "timestamp": "2026-11-24T06:00:00Z"})
}

test_customers_pay_at_any_hour if {
	payment.allow with input as with_fields({"timestamp": "2026-11-28T03:00:00Z"})
}

test_invalid_timestamp_is_denied if {
	"timestamp must be RFC 3339" in reasons_for({"timestamp": "yesterday"})
}

test_every_reason_is_reported if {
	count(reasons_for({"amount": 99999, "currency": "XYZ", "merchant": "m-666", "country": "SY"})) == 4
}

test_empty_input_is_denied_with_reasons if {
	decision := payment.decision with input as {}
	decision.allow == false
	count(decision.reasons) >= 5
}
