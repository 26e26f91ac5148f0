# OPA's default decision: what POST / answers (default_decision, /system/main unless configured).
# The request body is the payment itself, and the answer is its decision.
package system

main := data.payment.decision
