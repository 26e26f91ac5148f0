# Authorization of one payment at the edge gateway.
#
# The gateway asks POST /v1/data/payment/decision with:
#   {"input": {
#     "method": "POST", "path": "/api/payment",
#     "role": "customer",            # caller role: customer, merchant or admin
#     "amount": 2500,                # integer minor units (cents): never fractions, see below
#     "currency": "EUR",
#     "merchant": "m-123",
#     "country": "DE",               # payer country, ISO 3166-1 alpha-2
#     "velocity": 3,                 # payments by this payer in the last hour, counted by the gateway
#     "timestamp": "2026-11-24T10:15:00Z"  # optional; the decision time otherwise
#   }}
# and gets {"allow": bool, "reasons": [...]}: every reason a payment is refused, so the
# gateway can show them. Fail closed: a missing or malformed field is a reason.
#
# Money is in integer minor units because fractional numbers are binary floats in the
# engine (0.1 + 0.2 != 0.3); limits in data/config are minor units too.
#
# Every check of a field that may be missing is a rule of its own, negated by name
# (`not currency_given`), never `not is_string(input.currency)`: OPA evaluates a call's
# arguments before the `not`, so with the field missing that body is undefined and the reason
# would never be given (fail open). A negated rule is true when the field is missing, in OPA
# and in verdict alike.
package payment

default allow := false

allow if count(reasons) == 0

decision := {"allow": allow, "reasons": reasons}

# The caller's limits; undefined for an unknown role.
role := data.payment.config.roles[input.role]

reasons contains "only POST /api/payment is authorized" if not payment_endpoint

reasons contains "role missing or unknown" if not role

reasons contains "amount must be a positive integer in minor units" if not valid_amount

reasons contains msg if {
	valid_amount
	input.amount > role.max_amount
	msg := sprintf("amount %d exceeds the %s limit of %d", [input.amount, input.role, role.max_amount])
}

reasons contains "currency missing" if not currency_given

reasons contains msg if {
	is_string(input.currency)
	not input.currency in data.payment.config.currencies
	msg := sprintf("currency %s is not accepted", [input.currency])
}

reasons contains "merchant missing" if not merchant_given

reasons contains msg if {
	input.merchant in data.payment.config.blocked_merchants
	msg := sprintf("merchant %s is blocked", [input.merchant])
}

reasons contains "payer country missing" if not country_given

reasons contains msg if {
	is_string(input.country)
	upper(input.country) in data.payment.config.sanctioned_countries
	msg := sprintf("payer country %s is sanctioned", [upper(input.country)])
}

reasons contains "velocity must be a non-negative integer" if not valid_velocity

reasons contains msg if {
	valid_velocity
	input.velocity >= role.max_per_hour
	msg := sprintf("%d payments in the last hour reach the %s limit of %d", [input.velocity, input.role, role.max_per_hour])
}

reasons contains "timestamp must be RFC 3339" if {
	input.timestamp
	not timestamp_ns
}

reasons contains msg if {
	role.hours == "business"
	not within_business_hours
	msg := sprintf("%s payments are only authorized during business hours", [input.role])
}

currency_given if is_string(input.currency)

merchant_given if is_string(input.merchant)

country_given if is_string(input.country)

payment_endpoint if {
	input.method == "POST"
	input.path == "/api/payment"
}

valid_amount if {
	is_number(input.amount)
	input.amount > 0
	input.amount == round(input.amount)
}

valid_velocity if {
	is_number(input.velocity)
	input.velocity >= 0
	input.velocity == round(input.velocity)
}

timestamp_ns := time.parse_rfc3339_ns(input.timestamp)

# The decision time: the request's timestamp when given, else now.
now_ns := timestamp_ns if input.timestamp

now_ns := time.now_ns() if not input.timestamp

# Business hours are evaluated in UTC.
within_business_hours if {
	hours := data.payment.config.business_hours
	time.weekday(now_ns) in hours.days
	[hour, _, _] := time.clock(now_ns)
	hour >= hours.start_hour
	hour < hours.end_hour
}
