// Drives verdict with @styra/opa 1.7.10 (npm), the official TypeScript SDK: evaluate,
// evaluateDefault, the low-level executePolicyWithInput with provenance, and evaluateBatch on
// the real batch endpoint (no fallback allowed, so a missing endpoint fails here).
//
// Run by tests/it/clients.rs against a real `verdict run` on the golden payment bundle:
//     node styra_opa.mjs URL NPM_DIR
// (NPM_DIR: where `npm install @styra/opa` put its node_modules; ES modules ignore NODE_PATH.)
// Prints one line per call and exits non-zero at the first call that fails.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [url, npmDir] = process.argv.slice(2);
const dist = join(npmDir, "node_modules", "@styra", "opa", "dist", "esm");
const { OPAClient } = await import(pathToFileURL(join(dist, "index.js")));
const { OpaApiClient } = await import(pathToFileURL(join(dist, "sdk", "sdk.js")));
const opa = new OPAClient(url);
const sdk = new OpaApiClient({ serverURL: url });

function check(name, got, want) {
  const [g, w] = [JSON.stringify(got), JSON.stringify(want)];
  if (g !== w) {
    console.log(`FAIL ${name}: got ${g}, want ${w}`);
    process.exit(1);
  }
  console.log(`ok   ${name}`);
}

const ok = { role: "customer", amount: 100, currency: "EUR", merchant: "m-1" };

try {
  check("evaluate", await opa.evaluate("payment/allow", ok), true);
  check("evaluate (no input)", await opa.evaluate("limits/currencies"), ["EUR", "USD", "GBP"]);
  check("evaluateDefault", await opa.evaluateDefault(ok), true);

  const batch = await opa.evaluateBatch(
    "payment/allow",
    { ok, "too-much": { ...ok, amount: 5000 } },
    { rejectMixed: true },
  );
  check("evaluateBatch", batch, { ok: true, "too-much": false });

  // A mixed batch: one item's rules conflict (an admin paying over 500), the other decides.
  const mixed = await opa.evaluateBatch("payment/tier", {
    high: { ...ok, amount: 900 },
    conflict: { ...ok, role: "admin", amount: 900 },
  });
  check("evaluateBatch mixed: the good item", mixed.high, "high");
  check("evaluateBatch mixed: the failed item", mixed.conflict.httpStatusCode, "500");

  // Straight to the SDK's batch call: no fallback path can hide a missing endpoint.
  const raw = await sdk.executeBatchPolicyWithInput({
    path: "payment/allow",
    requestBody: { inputs: { a: ok } },
  });
  check("executeBatchPolicyWithInput (200)",
    raw.batchSuccessfulPolicyEvaluation.responses.a.result, true);
  const withProvenance = await sdk.executePolicyWithInput({
    path: "payment/allow",
    requestBody: { input: ok },
    provenance: true,
  });
  const provenance = withProvenance.successfulPolicyResponse.provenance;
  check("executePolicyWithInput provenance.bundles", provenance.bundles,
    { "payment-bundle.tar.gz": { revision: "payments-2025-01-01.1" } });
  check("executePolicyWithInput provenance.buildTimestamp is a date",
    provenance.buildTimestamp instanceof Date, true);
  const batchProvenance = await sdk.executeBatchPolicyWithInput({
    path: "payment/allow",
    requestBody: { inputs: { a: ok } },
    provenance: true,
  });
  check("executeBatchPolicyWithInput provenance.buildTimestamp is a date",
    batchProvenance.batchSuccessfulPolicyEvaluation.responses.a.provenance.buildTimestamp
      instanceof Date, true);
} catch (e) {
  console.log(`FAIL ${e?.stack ?? e}`);
  process.exit(1);
}
console.log("@styra/opa: all calls passed");
