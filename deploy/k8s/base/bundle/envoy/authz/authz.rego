# Envoy ext_authz entrypoint: verdict run --grpc-addr 127.0.0.1:9191 answers Envoy's Check
# with data.envoy.authz.allow (opa-envoy-plugin's default path).
#
# Envoy forwards the gateway's POST /api/payment with the payment as its JSON body (the
# ext_authz filter needs with_request_body) and the caller's role in x-payment-role, set by
# the mesh after authentication. The answer is data.payment.decision's, so a payment gets the
# same verdict over Envoy as over the Data API.
package envoy.authz

# A Check without HTTP attributes still gets an answer (a denial), never an undefined one.
http := object.get(input, ["attributes", "request", "http"], {})

body := input.parsed_body if is_object(input.parsed_body)

else := {}

# The role comes from the header only: a "role" in the body cannot raise the caller's limits.
payment := object.union(body, {
	"method": object.get(http, "method", ""),
	"path": concat("/", array.concat([""], input.parsed_path)),
	"role": object.get(http, ["headers", "x-payment-role"], null),
})

decision := d if {
	d := data.payment.decision with input as payment
}

allow := {
	"allowed": true,
	"headers": {"x-payment-decision": "allow"},
	"request_headers_to_remove": ["x-payment-role"],
} if {
	decision.allow
} else := {
	"allowed": false,
	"http_status": 403,
	"headers": {"content-type": "application/json", "x-payment-decision": "deny"},
	"body": json.marshal({"reasons": decision.reasons}),
}
