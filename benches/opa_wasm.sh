#!/usr/bin/env bash
# In-process decisions against OPA compiled to WebAssembly, on the same Rego sources, in the
# same run. OPA-Wasm: ../shared/opa-wasm's bundle (bundles/payment at 6c025c6, built by OPA
# 1.9 with `opa build -t wasm -e payment/decision -e payment/allow`), evaluated by OPA's
# JavaScript SDK (@open-policy-agent/opa-wasm 1.10.0) through that directory's bench.mjs,
# input marshalled on every call. verdict: the `opa_wasm_sources` group of `cargo bench
# --bench decision` on the same sources, on the interpreter and under auto (the VM where
# verified), likewise from JSON text to JSON text on every call. OPA-Wasm runs before and
# after verdict, so a machine that changed speed in between shows as two different figures.
#
#   bash benches/opa_wasm.sh        # needs node >= 18, npm, git history back to 6c025c6; ~2 min
#
# OPA_WASM_DIR=<dir> points at another copy of ../shared/opa-wasm. Figures in
# benches/results/opa-wasm-<time>/summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."

OPA_WASM_DIR=${OPA_WASM_DIR:-../shared/opa-wasm}
# The commit the Wasm bundle was built from: opa build moves the entrypoints' rules into
# policy.wasm and leaves `import` lines in the sources it packs, so the sources come from git.
SOURCES_COMMIT=6c025c6
OUT=benches/results/opa-wasm-$(date -u +%Y%m%dT%H%M%SZ)
command -v node >/dev/null && command -v npm >/dev/null || { echo "needs node (Debian: nodejs) and npm" >&2; exit 1; }
[ -f "$OPA_WASM_DIR/payment-wasm.tar.gz" ] || { echo "no $OPA_WASM_DIR/payment-wasm.tar.gz" >&2; exit 1; }
git cat-file -e "$SOURCES_COMMIT^{commit}" 2>/dev/null || { echo "needs the history back to $SOURCES_COMMIT (not a shallow clone)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$OUT" "$work/wasm" "$work/sdk"
tar -xzf "$OPA_WASM_DIR/payment-wasm.tar.gz" -C "$work/wasm"
git archive "$SOURCES_COMMIT" bundles/payment | tar -x -C "$work"
# bench.mjs imports the SDK, which Node resolves from the script's own directory; the
# package.json keeps npm from installing into a node_modules further up.
cp "$OPA_WASM_DIR/bench.mjs" "$work/sdk/"
echo '{"private": true}' >"$work/sdk/package.json"
(cd "$work/sdk" && npm install --silent --no-audit --no-fund --no-save @open-policy-agent/opa-wasm@1.10.0 >/dev/null)
echo "node $(node --version), @open-policy-agent/opa-wasm 1.10.0" | tee "$OUT/versions"
# Only this run's figures: criterion keeps a directory per benchmark name, and the name says
# which engine served it, so an earlier run's could otherwise be read as this one's.
criterion=${CARGO_TARGET_DIR:-target}/criterion/opa_wasm_sources
rm -rf "$criterion"

uptime | tee "$OUT/uptime-before"
node "$work/sdk/bench.mjs" "$work/wasm" | tee "$OUT/opa-wasm-1.txt"
VERDICT_WASM_SOURCES="$work/bundles/payment" cargo bench --locked --bench decision -- \
    --noplot opa_wasm_sources 2>&1 | tee "$OUT/verdict.txt"
node "$work/sdk/bench.mjs" "$work/wasm" | tee "$OUT/opa-wasm-2.txt"
uptime | tee "$OUT/uptime-after"

python3 - "$OUT" "$criterion" <<'PY'
import json, os, re, sys
out, root = sys.argv[1], sys.argv[2]
wasm = {}
answers = {}
for run in ("opa-wasm-1.txt", "opa-wasm-2.txt"):
    for line in open(os.path.join(out, run)):
        m = re.match(r"(payment/\w+) us/op median ([\d.]+)", line)
        if m:
            wasm.setdefault(m.group(1), []).append(float(m.group(2)))
        m = re.match(r"(payment/\w+) (\[.*\])$", line.strip())
        if m:
            answers[m.group(1)] = json.loads(m.group(2))[0]["result"]
verdict, served = {}, {}
compared = 0
for line in open(os.path.join(out, "verdict.txt")):
    m = re.match(r"answer (payment/\w+) (\w+): (.*)$", line.strip())
    if not m:
        continue
    if json.loads(m.group(3)) != answers.get(m.group(1)):
        sys.exit("%s on %s answers %s, OPA-Wasm %s" % (m.group(1), m.group(2), m.group(3), answers.get(m.group(1))))
    compared += 1
if compared != 4 or len(answers) != 2:
    sys.exit("expected 2 OPA-Wasm answers and 4 of verdict's (2 entrypoints, 2 engines), found %d and %d"
             % (len(answers), compared))
# criterion's own record of each benchmark: the median's point estimate, in ns.
for d in sorted(os.listdir(root)):
    bench = json.load(open(os.path.join(root, d, "new", "benchmark.json")))
    est = json.load(open(os.path.join(root, d, "new", "estimates.json")))
    m = re.match(r"(payment/\w+) on (\w+) \((\w+)\)", bench["function_id"])
    if m:
        if (m.group(1), m.group(2)) in verdict:
            sys.exit("two figures for %s on %s" % (m.group(1), m.group(2)))
        verdict[(m.group(1), m.group(2))] = est["median"]["point_estimate"] / 1000
        served[(m.group(1), m.group(2))] = m.group(3)
pairs = {(ep, engine) for ep in ("payment/decision", "payment/allow") for engine in ("interpreter", "auto")}
if set(verdict) != pairs:
    sys.exit("verdict's figures are for %s, expected %s" % (sorted(verdict), sorted(pairs)))
lines = ["| entrypoint | OPA-Wasm (before / after) | verdict interpreter | verdict auto | auto / OPA-Wasm |",
         "|---|---|---|---|---|"]
for ep in ("payment/decision", "payment/allow"):
    w = wasm[ep]
    interp, auto = verdict[(ep, "interpreter")], verdict[(ep, "auto")]
    lines.append("| `%s` | %s µs | %.1f µs | %.1f µs (%s) | %.2f× |" % (
        ep, " / ".join("%.1f" % x for x in w), interp, auto, served[(ep, "auto")], auto / (sum(w) / len(w))))
lines.append("")
lines.append("Same answers as OPA-Wasm on the input of bench.mjs, both engines: %s." % ", ".join(sorted(answers)))
text = "\n".join(lines) + "\n"
open(os.path.join(out, "summary.md"), "w").write(text)
print(text)
PY
echo "figures in $OUT/summary.md"
