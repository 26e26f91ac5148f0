"""Drives verdict with opa-python-client 3.0.0 (PyPI), every call OPA users make with it.

Run by tests/it/clients.rs against a real `verdict run` on the golden payment bundle:
    python3 opa_python_client.py PORT
Prints one line per call and exits non-zero at the first call that fails.
"""
import sys

from opa_client import OpaClient
from opa_client.errors import DeletePolicyError

PORT = int(sys.argv[1])
client = OpaClient(host="127.0.0.1", port=PORT, timeout=10)

SCRATCH = """package scratch

import rego.v1

vip if input.amount > data.scratch_limits.vip

tiers contains t if some t in ["gold", "platinum"]
"""

# A v0 policy: the client retries it upgraded when the server names the missing `if`.
V0 = """package legacy

allow {
    input.role == "admin"
}
"""


def check(name, got, want):
    if got != want:
        print(f"FAIL {name}: got {got!r}, want {want!r}")
        sys.exit(1)
    print(f"ok   {name}")


check("check_health", client.check_health(), True)
check("check_connection", client.check_connection(), True)

ids = client.get_policies_list()
check("get_policies_list has the bundle's module",
      "payment-bundle.tar.gz/bundle/payment/policy.rego" in ids, True)

check("update_or_create_data", client.update_or_create_data({"vip": 1000}, "scratch_limits"), True)
check("update_policy_from_string", client.update_policy_from_string(SCRATCH, "scratch"), True)
check("update_policy_from_string (v0, upgraded by the client)",
      client.update_policy_from_string(V0, "legacy"), True)

info = client.get_policies_info()
scratch = info["scratch"]
check("get_policies_info path", scratch["path"], f"http://127.0.0.1:{PORT}/v1/data/scratch")
check("get_policies_info rules", sorted(scratch["rules"]),
      [f"http://127.0.0.1:{PORT}/v1/data/scratch/tiers", f"http://127.0.0.1:{PORT}/v1/data/scratch/vip"])
payment = info["payment-bundle.tar.gz/bundle/payment/policy.rego"]
check("get_policies_info bundle path", payment["path"], f"http://127.0.0.1:{PORT}/v1/data/payment")
check("get_policies_info bundle rules include allow",
      f"http://127.0.0.1:{PORT}/v1/data/payment/allow" in payment["rules"], True)

check("get_policy", client.get_policy("scratch")["result"]["raw"], SCRATCH)

check("query_rule (policy put through the API)",
      client.query_rule({"amount": 5000}, "scratch", "vip"), {"result": True})
check("query_rule (bundle)",
      client.query_rule({"role": "customer", "amount": 100, "currency": "EUR", "merchant": "m-1"},
                        "payment", "allow")["result"], True)
check("query_rule (v0 policy upgraded)",
      client.query_rule({"role": "admin"}, "legacy", "allow")["result"], True)
check("get_data", client.get_data("scratch_limits")["result"], {"vip": 1000})
adhoc = client.ad_hoc_query("x := data.scratch.tiers")
check("ad_hoc_query", sorted(adhoc["result"][0]["x"]), ["gold", "platinum"])
ok_payment = {"role": "customer", "amount": 100, "currency": "EUR", "merchant": "m-1"}
check("bulk_query_rule", client.bulk_query_rule(
    {"ok": ok_payment, "too-much": dict(ok_payment, amount=5000)}, "payment", "allow"),
    {"ok": True, "too-much": False})

check("delete_policy", client.delete_policy("scratch"), True)
try:
    client.delete_policy("scratch")
    check("delete_policy of a missing policy raises", False, True)
except DeletePolicyError:
    check("delete_policy of a missing policy raises", True, True)
check("delete_data", client.delete_data("scratch_limits"), True)
check("policy gone", "scratch" in client.get_policies_list(), False)
print("opa-python-client: all calls passed")
