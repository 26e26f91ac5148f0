#!/usr/bin/env bash
# Drives the release verdict binary with oha over real HTTP, beside a minimal axum JSON handler
# (examples/baseline.rs) measured in the same run, and writes the figures.
#
#   bash benches/load.sh     # DURATION=10s per run, REPEAT=3; results in benches/results/<time>/
#   SUITES=grpc bash benches/load.sh   # only the gRPC runs (SUITES="http grpc remote decisionlog admission" by default)
#
# Runs: fixed rates of 5,000 and 10,000 req/s (oha's latency correction on, so queueing delay
# counts), closed loop (as fast as 32 connections go), and 5,000 req/s while the bundle is
# swapped every second. gRPC: Envoy ext_authz Check with a payment request, driven by
# benches/grpc_load.rs (open loop at 5,000 calls/s, and closed loop) against verdict's gRPC
# listener and a minimal tonic Authorization server (examples/grpc_baseline.rs). Remote: a
# second verdict polls a local bundle server (benches/bundle_server.py) for the example bundle
# plus a 10 MB data.json, at 5,000 req/s with the bundle unchanged, then while a new revision
# is published every 2 s (each one downloaded, verified, compiled and activated under load).
# Admission: AdmissionReviews over HTTPS to the webhook with 20 constraints loaded, all of
# them matching the pod, at 500 and 2,000 reviews/s and closed loop; the same listener's
# GET /health (TLS and HTTP, no evaluation) is the baseline.
# Decision log: a second verdict on the same bundle logs every decision (spooled before it is
# answered, uploaded every 1-2 s to examples/collector.rs), measured in turns with the first,
# which logs nothing, at 5,000 req/s and closed loop; a third logs to a collector that takes
# every upload and never answers (5,000 req/s).
# OPA: with OPA_BIN=path/to/opa (or opa-envoy-plugin), the same OPA serves the same bundle on
# 127.0.0.1:18888 and takes the http runs in turn with verdict and the baseline; an
# opa-envoy-plugin build also answers Check on 127.0.0.1:19999 and takes the grpc runs. Its
# RSS is read at idle and after each of those suites, and the summary adds verdict / OPA ratios.
# Machines here are shared and noisy, so verdict and the baseline take turns, each run is
# repeated, and the summary gives medians and ratios within this one run.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
SUITES=${SUITES:-http grpc remote decisionlog admission}
REPEAT=${REPEAT:-3}
CONNECTIONS=${CONNECTIONS:-32}
VERDICT_ADDR=127.0.0.1:18181
BASELINE_ADDR=127.0.0.1:18282
VERDICT_GRPC=127.0.0.1:19191
BASELINE_GRPC=127.0.0.1:19292
REMOTE_ADDR=127.0.0.1:18383
BUNDLE_SERVER_PORT=18484
ADMISSION_ADDR=127.0.0.1:18443
LOGGED_ADDR=127.0.0.1:18585
COLLECTOR_PORT=18686
HUNG_ADDR=127.0.0.1:18595
HUNG_COLLECTOR_PORT=18696
ADMISSION_HTTP=127.0.0.1:18787
OPA_BIN=${OPA_BIN:-}
OPA_ADDR=127.0.0.1:18888
OPA_GRPC=127.0.0.1:19999
OUT=benches/results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

PORTS=("$VERDICT_ADDR" "$BASELINE_ADDR" "$VERDICT_GRPC" "$BASELINE_GRPC" "$REMOTE_ADDR" "127.0.0.1:$BUNDLE_SERVER_PORT" "$LOGGED_ADDR" "127.0.0.1:$COLLECTOR_PORT" "$HUNG_ADDR" "127.0.0.1:$HUNG_COLLECTOR_PORT" "$ADMISSION_ADDR" "$ADMISSION_HTTP")
[ -z "$OPA_BIN" ] || PORTS+=("$OPA_ADDR" "$OPA_GRPC")
for addr in "${PORTS[@]}"; do
    if (exec 3<>"/dev/tcp/${addr%:*}/${addr#*:}") 2>/dev/null; then
        echo "something already listens on $addr; stop it first" >&2
        exit 1
    fi
done
command -v oha >/dev/null || cargo install oha --locked
# The binary alone, as `cargo build --release` builds it (benches/footprint.sh says why).
cargo build --release --bin verdict
cargo build --release --example baseline --example grpc_baseline --example grpc_load --example collector

# Two revisions of the example payment bundle, to swap between.
for rev in a b; do
    mkdir -p "$WORK/$rev"
    cp -r bundles/payment/. "$WORK/$rev/"
    sed -i "s/\"revision\": \"[^\"]*\"/\"revision\": \"load-$rev\"/" "$WORK/$rev/.manifest"
    tar -C "$WORK/$rev" -czf "$WORK/bundle-$rev.tar.gz" .
done
cp "$WORK/bundle-a.tar.gz" "$WORK/bundle.tar.gz"

# VERDICT_ARGS adds flags to this instance, e.g. "--set verdict.engine=interpreter".
# shellcheck disable=SC2086
./target/release/verdict run --addr "$VERDICT_ADDR" --grpc-addr "$VERDICT_GRPC" \
    -b "$WORK/bundle.tar.gz" --log-level info ${VERDICT_ARGS:-} 2>"$OUT/verdict.log" &
PIDS+=($!)
./target/release/examples/baseline "$BASELINE_ADDR" &
PIDS+=($!)
./target/release/examples/grpc_baseline "$BASELINE_GRPC" &
PIDS+=($!)

for addr in "$VERDICT_GRPC" "$BASELINE_GRPC"; do
    until (exec 3<>"/dev/tcp/${addr%:*}/${addr#*:}") 2>/dev/null; do sleep 0.1; done
done

BODY='{"input": {"method": "POST", "path": "/api/payment", "role": "customer", "amount": 2500, "currency": "EUR", "merchant": "m-123", "country": "DE", "velocity": 1, "timestamp": "2026-11-24T14:30:00Z"}}'
for addr in "$VERDICT_ADDR" "$BASELINE_ADDR"; do
    curl -sf --retry 50 --retry-connrefused --retry-delay 0 -o /dev/null -H "Content-Type: application/json" \
        -X POST -d "$BODY" "http://$addr/v1/data/payment/decision"
done
VERDICT_ANSWER=$(curl -s -X POST -d "$BODY" "http://$VERDICT_ADDR/v1/data/payment/decision")
echo "verdict answers: $VERDICT_ANSWER"

# OPA on the same bundle file, started as it is; its Envoy plugin only when the binary has it
# (a plain opa would not know the plugin's configuration).
OPA_PID=
OPA_ENVOY=
if [ -n "$OPA_BIN" ]; then
    OPA_ARGS=(run -s --addr "$OPA_ADDR" --disable-telemetry --log-level error -b "$WORK/bundle.tar.gz")
    if grep -qaF 'opa-envoy-plugin/plugin' "$OPA_BIN"; then
        OPA_ENVOY=1
        OPA_ARGS+=(--set "plugins.envoy_ext_authz_grpc.addr=$OPA_GRPC" --set plugins.envoy_ext_authz_grpc.path=envoy/authz/allow)
    fi
    "$OPA_BIN" "${OPA_ARGS[@]}" 2>"$OUT/opa.log" &
    OPA_PID=$!
    PIDS+=("$OPA_PID")
    curl -sf --retry 100 --retry-connrefused --retry-delay 0 -o /dev/null "http://$OPA_ADDR/health?bundles"
    if [ -n "$OPA_ENVOY" ]; then
        until (exec 3<>"/dev/tcp/${OPA_GRPC%:*}/${OPA_GRPC#*:}") 2>/dev/null; do sleep 0.1; done
    fi
    echo "$(basename "$OPA_BIN"), $("$OPA_BIN" version | head -1)" >"$OUT/opa-version"
    OPA_ANSWER=$(curl -s -X POST -H "Content-Type: application/json" -d "$BODY" "http://$OPA_ADDR/v1/data/payment/decision")
    echo "OPA answers: $OPA_ANSWER"
    # A benchmark of an OPA that answers something else (or nothing) would be meaningless.
    python3 -c 'import json, sys; a, b = (json.loads(x).get("result") for x in sys.argv[1:]); sys.exit(a is None or a != b)' \
        "$VERDICT_ANSWER" "$OPA_ANSWER" || {
        echo "OPA's decision differs from verdict's; see $OUT/opa.log" >&2
        exit 1
    }
fi

# Appends OPA's resident memory now (VmRSS) and its high-water mark (VmHWM) to $OUT/opa-rss.
opa_rss() { # label
    [ -n "$OPA_PID" ] || return 0
    echo "$1 $(awk '/^Vm(RSS|HWM):/ {printf "%s%s %.1f MB", sep, $1, $2 / 1024; sep = ", "}' "/proc/$OPA_PID/status")" >>"$OUT/opa-rss"
}
opa_rss idle

# Replaces DEST by PREFIX-a.tar.gz and PREFIX-b.tar.gz in turn (atomic rename), every SECONDS.
swap_loop() { # prefix dest seconds
    local i=0
    while true; do
        i=$((i + 1))
        local rev=a
        [ $((i % 2)) -eq 1 ] && rev=b
        cp "$1-$rev.tar.gz" "$2.tmp" && mv "$2.tmp" "$2"
        sleep "$3"
    done
}

load() { # name addr [oha args...]
    local name=$1 addr=$2
    shift 2
    oha --no-tui --output-format json -z "$DURATION" -c "$CONNECTIONS" "$@" \
        -m POST -H 'Content-Type: application/json' -d "$BODY" \
        "http://$addr/v1/data/payment/decision" >"$OUT/$name.json"
}

if [[ " $SUITES " == *" http "* ]]; then
# Warm both (connections, allocator, caches) before measuring.
oha --no-tui -n 20000 -c "$CONNECTIONS" -m POST -H "Content-Type: application/json" -d "$BODY" "http://$VERDICT_ADDR/v1/data/payment/decision" >/dev/null
oha --no-tui -n 20000 -c "$CONNECTIONS" -m POST -H "Content-Type: application/json" -d "$BODY" "http://$BASELINE_ADDR/v1/data/payment/decision" >/dev/null
if [ -n "$OPA_BIN" ]; then
    oha --no-tui -n 20000 -c "$CONNECTIONS" -m POST -H "Content-Type: application/json" -d "$BODY" "http://$OPA_ADDR/v1/data/payment/decision" >/dev/null
fi

for rep in $(seq "$REPEAT"); do
    for rate in 5000 10000; do
        load "verdict-rate$rate-$rep" "$VERDICT_ADDR" -q "$rate" --latency-correction
        load "baseline-rate$rate-$rep" "$BASELINE_ADDR" -q "$rate" --latency-correction
        [ -z "$OPA_BIN" ] || load "opa-rate$rate-$rep" "$OPA_ADDR" -q "$rate" --latency-correction
    done
    load "verdict-closed-$rep" "$VERDICT_ADDR"
    load "baseline-closed-$rep" "$BASELINE_ADDR"
    [ -z "$OPA_BIN" ] || load "opa-closed-$rep" "$OPA_ADDR"
done
opa_rss after-http

# The same fixed rate while the bundle file is replaced (atomic rename) every second.
activations_before=$(grep -c '"bundle activated"' "$OUT/verdict.log" || true)
swap_loop "$WORK/bundle" "$WORK/bundle.tar.gz" 1 &
SWAP_PID=$!
PIDS+=("$SWAP_PID")
for rep in $(seq "$REPEAT"); do
    load "verdict-rate5000-swapping-$rep" "$VERDICT_ADDR" -q 5000 --latency-correction
done
kill "$SWAP_PID"
activations=$(($(grep -c '"bundle activated"' "$OUT/verdict.log") - activations_before))
echo "$activations" >"$OUT/activations"
fi

if [[ " $SUITES " == *" grpc "* ]]; then
    secs=${DURATION%s}
    grpc_load() { # name addr mode n
        ./target/release/examples/grpc_load "$2" "$3" "$4" "$secs" 4 >"$OUT/$1.json"
    }
    # Warm both, then alternate as for HTTP.
    ./target/release/examples/grpc_load "$VERDICT_GRPC" closed 32 2 4 >/dev/null
    ./target/release/examples/grpc_load "$BASELINE_GRPC" closed 32 2 4 >/dev/null
    [ -z "$OPA_ENVOY" ] || ./target/release/examples/grpc_load "$OPA_GRPC" closed 32 2 4 >/dev/null
    for rep in $(seq "$REPEAT"); do
        grpc_load "grpc-verdict-rate5000-$rep" "$VERDICT_GRPC" rate 5000
        grpc_load "grpc-baseline-rate5000-$rep" "$BASELINE_GRPC" rate 5000
        [ -z "$OPA_ENVOY" ] || grpc_load "grpc-opa-rate5000-$rep" "$OPA_GRPC" rate 5000
        grpc_load "grpc-verdict-closed-$rep" "$VERDICT_GRPC" closed 32
        grpc_load "grpc-baseline-closed-$rep" "$BASELINE_GRPC" closed 32
        [ -z "$OPA_ENVOY" ] || grpc_load "grpc-opa-closed-$rep" "$OPA_GRPC" closed 32
    done
    [ -z "$OPA_ENVOY" ] || opa_rss after-grpc
fi

if [[ " $SUITES " == *" remote "* ]]; then
    # Two revisions of the example bundle with a 10 MB sanctions list each.
    for rev in a b; do
        mkdir -p "$WORK/large-$rev/payment/sanctions"
        cp -r bundles/payment/. "$WORK/large-$rev/"
        sed -i "s/\"revision\": \"[^\"]*\"/\"revision\": \"large-$rev\"/" "$WORK/large-$rev/.manifest"
        python3 -c '
import json, sys
rev = sys.argv[2]
entries = [{"id": "S-%08d" % i, "name": "Sanctioned Party %d %s" % (i, rev), "country": "C%d" % (i % 200),
            "iban": "DE%020d" % (i * 7919), "listed": "2026-01-%02d" % (i % 28 + 1)} for i in range(90000)]
json.dump({"entries": entries}, open(sys.argv[1], "w"))' "$WORK/large-$rev/payment/sanctions/data.json" "$rev"
        tar -C "$WORK/large-$rev" -czf "$WORK/large-$rev.tar.gz" .
    done
    echo "large bundle: $(stat -c %s "$WORK/large-a/payment/sanctions/data.json") bytes of data.json, $(stat -c %s "$WORK/large-a.tar.gz") bytes gzipped"
    cp "$WORK/large-a.tar.gz" "$WORK/served.tar.gz"
    python3 benches/bundle_server.py "$BUNDLE_SERVER_PORT" "$WORK/served.tar.gz" &
    PIDS+=($!)
    cat >"$WORK/remote.yaml" <<YAML
services:
  ctl:
    url: http://127.0.0.1:$BUNDLE_SERVER_PORT
bundles:
  payment:
    service: ctl
    resource: bundle.tar.gz
    polling: {min_delay_seconds: 1, max_delay_seconds: 1}
YAML
    ./target/release/verdict run --addr "$REMOTE_ADDR" -c "$WORK/remote.yaml" --log-level info 2>"$OUT/verdict-remote.log" &
    PIDS+=($!)
    curl -sf --retry 100 --retry-connrefused --retry-delay 0 -o /dev/null "http://$REMOTE_ADDR/health?bundles"
    oha --no-tui -n 20000 -c "$CONNECTIONS" -m POST -H "Content-Type: application/json" -d "$BODY" "http://$REMOTE_ADDR/v1/data/payment/decision" >/dev/null
    for rep in $(seq "$REPEAT"); do
        load "remote-steady-$rep" "$REMOTE_ADDR" -q 5000 --latency-correction
    done
    before=$(grep -c '"bundle activated"' "$OUT/verdict-remote.log" || true)
    swap_loop "$WORK/large" "$WORK/served.tar.gz" 2 &
    PUBLISH_PID=$!
    PIDS+=("$PUBLISH_PID")
    for rep in $(seq "$REPEAT"); do
        load "remote-activating-$rep" "$REMOTE_ADDR" -q 5000 --latency-correction
    done
    kill "$PUBLISH_PID"
    echo $(($(grep -c '"bundle activated"' "$OUT/verdict-remote.log") - before)) >"$OUT/remote-activations"
    grep VmHWM "/proc/$(pgrep -f "verdict run --addr $REMOTE_ADDR" | head -1)/status" >"$OUT/remote-peak-rss" || true
fi

if [[ " $SUITES " == *" admission "* ]]; then
    # 20 constraints over the four payment templates, five of each kind, all matching the pod
    # reviewed (which breaks none of them: every template runs to the end, none short-cuts).
    mkdir -p "$WORK/admission/constraints"
    python3 - "$WORK/admission/constraints" <<'GEN'
import sys
kinds = {
    "PaymentAllowedRegistries": "parameters: {registries: [registry.pay.internal/, ghcr.io/payments-platform/]}",
    "PaymentRequiredLimits": "parameters: {resources: [cpu, memory]}",
    "PaymentNoPrivileged": "parameters: {exemptImages: [registry.pay.internal/debug:1]}",
    "PaymentWasmRuntimeClass": "parameters: {runtimeClassName: wasmedge}",
}
# The Wasm constraints select Wasm-labelled pods, as the shipped one does; the pod below is one.
selector = {"PaymentWasmRuntimeClass": "\n    labelSelector: {matchLabels: {payments.example/runtime: wasm}}"}
for kind, params in kinds.items():
    for i in range(5):
        with open("%s/%s-%d.yaml" % (sys.argv[1], kind.lower(), i), "w") as f:
            f.write("apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: %s\nmetadata: {name: %s-%d}\n"
                    "spec:\n  match:\n    kinds: [{apiGroups: [\"\"], kinds: [Pod]}]\n"
                    "    excludedNamespaces: [kube-system, verdict-system]%s\n  %s\n"
                    % (kind, kind.lower(), i, selector.get(kind, ""), params))
GEN
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
        -addext subjectAltName=IP:127.0.0.1 -keyout "$WORK/admission/tls.key" -out "$WORK/admission/tls.crt" 2>/dev/null
    cat >"$WORK/admission.yaml" <<YAML
verdict:
  addr: ["$ADMISSION_HTTP"]
  admission:
    addr: $ADMISSION_ADDR
    policies: [$PWD/policies/admission/templates, $WORK/admission/constraints]
    tls_cert_file: $WORK/admission/tls.crt
    tls_private_key_file: $WORK/admission/tls.key
YAML
    ./target/release/verdict run -c "$WORK/admission.yaml" --log-level info 2>"$OUT/verdict-admission.log" &
    PIDS+=($!)
    curl -skf --retry 100 --retry-connrefused --retry-delay 0 -o /dev/null "https://$ADMISSION_ADDR/health"
    REVIEW=$(python3 -c '
import json
pod = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "gateway", "namespace": "payments", "labels": {"app": "gateway", "payments.example/runtime": "wasm"}},
       "spec": {"runtimeClassName": "wasmedge", "containers": [{"name": "gateway", "image": "registry.pay.internal/gateway:1.4.2",
                "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}}}]}}
print(json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
    "uid": "bench", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "resource": {"group": "", "version": "v1", "resource": "pods"},
    "name": "gateway", "namespace": "payments", "operation": "CREATE", "userInfo": {"username": "bench"}, "object": pod}}))')
    echo "admission answers: $(curl -sk -X POST -H 'Content-Type: application/json' -d "$REVIEW" "https://$ADMISSION_ADDR/v1/admit")"
    echo "constraints loaded: $(curl -sk "https://$ADMISSION_ADDR/v1/admission/status" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["constraints"]))')"
    admit() { # name [oha args...]
        local name=$1
        shift
        oha --no-tui --output-format json --insecure -z "$DURATION" -c "$CONNECTIONS" "$@" \
            -m POST -H 'Content-Type: application/json' -d "$REVIEW" \
            "https://$ADMISSION_ADDR/v1/admit" >"$OUT/$name.json"
    }
    health() { # name [oha args...]
        local name=$1
        shift
        oha --no-tui --output-format json --insecure -z "$DURATION" -c "$CONNECTIONS" "$@" \
            "https://$ADMISSION_ADDR/health" >"$OUT/$name.json"
    }
    oha --no-tui --insecure -n 5000 -c "$CONNECTIONS" -m POST -H "Content-Type: application/json" -d "$REVIEW" "https://$ADMISSION_ADDR/v1/admit" >/dev/null
    for rep in $(seq "$REPEAT"); do
        for rate in 500 2000; do
            admit "admission-rate$rate-$rep" -q "$rate" --latency-correction
            health "admission-health-rate$rate-$rep" -q "$rate" --latency-correction
        done
        admit "admission-closed-$rep"
        health "admission-health-closed-$rep"
    done
fi

if [[ " $SUITES " == *" decisionlog "* ]]; then
    ./target/release/examples/collector "127.0.0.1:$COLLECTOR_PORT" &
    PIDS+=($!)
    cat >"$WORK/logged.yaml" <<YAML
services:
  collector:
    url: http://127.0.0.1:$COLLECTOR_PORT
decision_logs:
  service: collector
  reporting: {min_delay_seconds: 1, max_delay_seconds: 2}
persistence_directory: $WORK/logged
YAML
    ./target/release/verdict run --addr "$LOGGED_ADDR" -c "$WORK/logged.yaml" -b "$WORK/bundle.tar.gz" \
        --log-level info 2>"$OUT/verdict-logged.log" &
    PIDS+=($!)
    ./target/release/examples/collector "127.0.0.1:$HUNG_COLLECTOR_PORT" hang &
    PIDS+=($!)
    sed -e "s/$COLLECTOR_PORT/$HUNG_COLLECTOR_PORT/" -e "s|$WORK/logged|$WORK/hung|" \
        "$WORK/logged.yaml" >"$WORK/hung.yaml"
    ./target/release/verdict run --addr "$HUNG_ADDR" -c "$WORK/hung.yaml" -b "$WORK/bundle.tar.gz" \
        --log-level info 2>"$OUT/verdict-hung.log" &
    PIDS+=($!)
    curl -sf --retry 100 --retry-connrefused --retry-delay 0 -o /dev/null "http://$LOGGED_ADDR/health?bundles"
    curl -sf --retry 100 --retry-connrefused --retry-delay 0 -o /dev/null "http://$HUNG_ADDR/health?bundles"
    for addr in "$VERDICT_ADDR" "$LOGGED_ADDR" "$HUNG_ADDR"; do
        oha --no-tui -n 20000 -c "$CONNECTIONS" -m POST -H "Content-Type: application/json" -d "$BODY" "http://$addr/v1/data/payment/decision" >/dev/null
    done
    for rep in $(seq "$REPEAT"); do
        load "log-off-rate5000-$rep" "$VERDICT_ADDR" -q 5000 --latency-correction
        load "log-on-rate5000-$rep" "$LOGGED_ADDR" -q 5000 --latency-correction
        load "log-hung-rate5000-$rep" "$HUNG_ADDR" -q 5000 --latency-correction
        load "log-off-closed-$rep" "$VERDICT_ADDR"
        load "log-on-closed-$rep" "$LOGGED_ADDR"
    done
    curl -s "http://$HUNG_ADDR/metrics" | grep -E '^verdict_decision_log_(spool_events|upload_failures_total) ' \
        >"$OUT/log-hung-spool"
    # Every decision the logged verdict answered must reach the collector.
    answered=$(curl -s "http://$LOGGED_ADDR/metrics" | awk '/^verdict_decisions_total/ {s += $2} END {print s}')
    for _ in $(seq 120); do
        [ "$(curl -s "http://127.0.0.1:$COLLECTOR_PORT/count")" -ge "$answered" ] && break
        sleep 0.5
    done
    echo "$answered $(curl -s "http://127.0.0.1:$COLLECTOR_PORT/count")" >"$OUT/log-delivery"
fi

python3 - "$OUT" "$DURATION" "$CONNECTIONS" "$REPEAT" <<'PY'
import json, os, statistics, sys
out, duration, conns, repeat = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

def run(name):
    with open(os.path.join(out, name + ".json")) as f:
        d = json.load(f)
    codes = d.get("statusCodeDistribution", {})
    errors = d.get("errorDistribution", {})
    # oha cancels the requests in flight when the duration ends; those are not failures.
    cut = errors.get("aborted due to deadline", 0)
    failed = sum(v for k, v in codes.items() if not k.startswith("2")) + sum(errors.values()) - cut
    p = d["latencyPercentiles"]
    return {"p50": p["p50"], "p99": p["p99"], "p999": p["p99.9"],
            "rps": d["summary"]["requestsPerSec"], "failed": failed,
            "total": sum(codes.values()) + sum(errors.values()) - cut}

def grpc_run(name):
    with open(os.path.join(out, name + ".json")) as f:
        d = json.load(f)
    return {"p50": d["p50"], "p99": d["p99"], "p999": d["p999"], "rps": d["rps"],
            "failed": d["failed"], "total": d["total"], "allowed": d["allowed"]}

def median(name, read=run):
    runs = [read("%s-%d" % (name, i)) for i in range(1, repeat + 1)]
    m = {k: statistics.median(r[k] for r in runs) for k in ("p50", "p99", "p999", "rps")}
    m["failed"] = sum(r["failed"] for r in runs)
    m["total"] = sum(r["total"] for r in runs)
    m["allowed"] = sum(r.get("allowed", 0) for r in runs)
    return m

ms = lambda s: "%.3f" % (s * 1000)
def table(names, read):
    m = {n: median(n, read) for n in names}
    rows = ["| run (median of %d) | p50 ms | p99 ms | p99.9 ms | req/s | failed/total |" % repeat,
            "|---|---|---|---|---|---|"]
    for n in names:
        r = m[n]
        rows.append("| %s | %s | %s | %s | %.0f | %d/%d |" % (n, ms(r["p50"]), ms(r["p99"]), ms(r["p999"]), r["rps"], r["failed"], r["total"]))
    return m, rows

# verdict against OPA: closed-loop throughput (higher is verdict's gain) and p99 at each fixed
# rate (lower is verdict's gain), each as verdict / OPA.
def against_opa(m, verdict, opa, rates):
    rps = m[verdict + "-closed"]["rps"] / m[opa + "-closed"]["rps"]
    said = ["closed-loop throughput, verdict / OPA: %.2fx" % rps]
    for rate in rates:
        v, o = m["%s-rate%d" % (verdict, rate)]["p99"], m["%s-rate%d" % (opa, rate)]["p99"]
        said.append("p99 at %s req/s, verdict / OPA: %.3gx (%s ms / %s ms)" % (format(rate, ","), v / o, ms(v), ms(o)))
    return said

lines = []
opa = os.path.exists(os.path.join(out, "opa-closed-1.json"))
if os.path.exists(os.path.join(out, "activations")):
    swaps = int(open(os.path.join(out, "activations")).read())
    names = ["verdict-rate5000", "baseline-rate5000", "verdict-rate10000", "baseline-rate10000",
             "verdict-closed", "baseline-closed", "verdict-rate5000-swapping"]
    if opa:
        names[6:6] = ["opa-rate5000", "opa-rate10000", "opa-closed"]
    m, rows = table(names, run)
    ratio = m["verdict-closed"]["rps"] / m["baseline-closed"]["rps"]
    spike = m["verdict-rate5000-swapping"]["p99"] / m["verdict-rate5000"]["p99"]
    lines += ["HTTP (oha, %s connections)" % conns, ""] + rows + ["",
              "closed-loop throughput, verdict / baseline: %.0f%%" % (ratio * 100),
              "p99 while swapping / p99 steady at 5,000 req/s: %.2fx (%d bundle activations during those runs)" % (spike, swaps)]
    if opa:
        lines += against_opa(m, "verdict", "opa", (5000, 10000))
    lines += [""]
if os.path.exists(os.path.join(out, "grpc-verdict-closed-1.json")):
    grpc_opa = os.path.exists(os.path.join(out, "grpc-opa-closed-1.json"))
    names = ["grpc-verdict-rate5000", "grpc-baseline-rate5000", "grpc-verdict-closed", "grpc-baseline-closed"]
    if grpc_opa:
        names += ["grpc-opa-rate5000", "grpc-opa-closed"]
    m, rows = table(names, grpc_run)
    ratio = m["grpc-verdict-closed"]["rps"] / m["grpc-baseline-closed"]["rps"]
    lines += ["gRPC ext_authz Check (benches/grpc_load.rs, 4 HTTP/2 connections, 32 calls in flight when closed)", ""] + rows + ["",
              "closed-loop throughput, verdict / baseline: %.0f%%" % (ratio * 100)]
    if grpc_opa:
        # Both answer the same policy, so both must allow every call: a denial means a wrong input.
        tally = lambda who: "%d of %d" % tuple(sum(m["grpc-%s-%s" % (who, n)][k] for n in ("rate5000", "closed"))
                                               for k in ("allowed", "total"))
        lines += against_opa(m, "grpc-verdict", "grpc-opa", (5000,)) + [
            "calls allowed, verdict: %s; OPA: %s" % (tally("verdict"), tally("opa"))]
    lines += [""]
if os.path.exists(os.path.join(out, "opa-rss")):
    lines += ["OPA (%s) resident memory:" % open(os.path.join(out, "opa-version")).read().strip()]
    lines += ["  " + l for l in open(os.path.join(out, "opa-rss")).read().splitlines()] + [""]
if os.path.exists(os.path.join(out, "remote-activations")):
    activations = int(open(os.path.join(out, "remote-activations")).read())
    m, rows = table(["remote-steady", "remote-activating"], run)
    spike = m["remote-activating"]["p99"] / m["remote-steady"]["p99"]
    rss = open(os.path.join(out, "remote-peak-rss")).read().strip()
    lines += ["Remote bundle with a 10 MB data.json, 5,000 req/s (oha, %s connections)" % conns, ""] + rows + ["",
              "p99 while activating / p99 steady: %.2fx (%d activations of a new 10 MB revision during those runs)" % (spike, activations),
              "verdict peak RSS: %s" % rss, ""]
if os.path.exists(os.path.join(out, "admission-closed-1.json")):
    names = ["admission-rate500", "admission-health-rate500", "admission-rate2000", "admission-health-rate2000",
             "admission-closed", "admission-health-closed"]
    m, rows = table(names, run)
    ratio = m["admission-closed"]["rps"] / m["admission-health-closed"]["rps"]
    lines += ["Admission webhook over HTTPS, 20 constraints all matching (oha, %s connections; baseline: GET /health on the same TLS listener)" % conns, ""] + rows + ["",
              "closed-loop throughput, reviews / health: %.0f%%" % (ratio * 100), ""]
if os.path.exists(os.path.join(out, "log-delivery")):
    answered, delivered = open(os.path.join(out, "log-delivery")).read().split()
    m, rows = table(["log-off-rate5000", "log-on-rate5000", "log-hung-rate5000", "log-off-closed", "log-on-closed"], run)
    p99 = m["log-on-rate5000"]["p99"] / m["log-off-rate5000"]["p99"]
    hung = m["log-hung-rate5000"]["p99"] / m["log-off-rate5000"]["p99"]
    rps = m["log-on-closed"]["rps"] / m["log-off-closed"]["rps"]
    spool = open(os.path.join(out, "log-hung-spool")).read().split()
    lines += ["Decision logging on (spooled, uploaded to a local collector) next to off (oha, %s connections)" % conns, ""] + rows + ["",
              "p99 at 5,000 req/s, logging on / off: %.2fx" % p99,
              "p99 at 5,000 req/s, logging to a collector that never answers / off: %.2fx (then: %s)" % (hung, " ".join(spool)),
              "closed-loop throughput, logging on / off: %.0f%%" % (rps * 100),
              "decisions answered by the logging verdict: %s; distinct decision ids at the collector: %s" % (answered, delivered), ""]
lines += ["each run: %s; %d repetitions, %s alternating" % (duration, repeat, "verdict, baseline and OPA" if opa else "verdict and baseline")]
text = "\n".join(lines) + "\n"
open(os.path.join(out, "summary.md"), "w").write(text)
print(text)
PY
echo "figures in $OUT/summary.md"
