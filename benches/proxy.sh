#!/usr/bin/env bash
# The authorizing proxy against the reference a platform team would otherwise put in front of
# the gateway. One upstream (examples/baseline.rs answering POST /api/payment, the bare
# handler), reached three ways in the same run, in turns:
#   direct   oha -> upstream
#   nginx    oha -> nginx (Debian's, plain reverse proxy, keep-alive pool) -> upstream
#   verdict  oha -> verdict --proxy (decides every request with the shipped envoy.authz policy
#            on the default payment bundle, logs nothing) -> upstream
#   trivial  the same proxy deciding with `allow := true`: the proxy's own cost, without the
#            policy's
# Each: a fixed 5,000 req/s (latency correction on, so queueing counts) and a closed loop
# (32 connections, as fast as they go); REPEAT times; medians.
#
#   bash benches/proxy.sh                 # DURATION=10s REPEAT=3; results in benches/results/<time>-proxy/
#   VERDICT_BIN=target/release/verdict bash benches/proxy.sh
#
# Targets (issue "verdict fronts the payment gateway"): verdict adds <= 0.5 ms to direct's p99
# at 5,000 req/s, and its closed-loop throughput is >= 70% of nginx's.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
REPEAT=${REPEAT:-3}
CONNECTIONS=${CONNECTIONS:-32}
RATE=${RATE:-5000}
UPSTREAM=127.0.0.1:18901
NGINX=127.0.0.1:18902
PROXY=127.0.0.1:18903
API=127.0.0.1:18904
TRIVIAL=127.0.0.1:18905
TRIVIAL_API=127.0.0.1:18906
OUT=benches/results/$(date -u +%Y%m%dT%H%M%SZ)-proxy
BODY='{"amount": 2500, "currency": "EUR", "merchant": "m-1", "country": "CH", "velocity": 0}'
mkdir -p "$OUT"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

for addr in "$UPSTREAM" "$NGINX" "$PROXY" "$API" "$TRIVIAL" "$TRIVIAL_API"; do
    if (exec 3<>"/dev/tcp/${addr%:*}/${addr#*:}") 2>/dev/null; then
        echo "something already listens on $addr; stop it first" >&2
        exit 1
    fi
done
command -v oha >/dev/null || cargo install oha --locked
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
    sudo=$(command -v sudo || true)
    $sudo apt-get update -qq && $sudo apt-get install -y -qq nginx-light >/dev/null ||
        $sudo apt-get install -y -qq nginx >/dev/null
fi
NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)

cargo build --release --locked --example baseline
VERDICT_BIN=${VERDICT_BIN:-}
if [ -z "$VERDICT_BIN" ]; then
    cargo build --release --locked
    VERDICT_BIN=target/release/verdict
fi

wait_port() {
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on $1" >&2
    exit 1
}

target/release/examples/baseline "$UPSTREAM" &
PIDS+=($!)
cat >"$WORK/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/body;
    proxy_temp_path $WORK/proxy;
    fastcgi_temp_path $WORK/fastcgi;
    uwsgi_temp_path $WORK/uwsgi;
    scgi_temp_path $WORK/scgi;
    upstream gateway { server $UPSTREAM; keepalive 64; }
    server {
        listen $NGINX;
        location / {
            proxy_pass http://gateway;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
        }
    }
}
EOF
"$NGINX_BIN" -c "$WORK/nginx.conf" -p "$WORK" &
PIDS+=($!)
"$VERDICT_BIN" run --addr "$API" --proxy "$PROXY=http://$UPSTREAM" --log-level error &
PIDS+=($!)
mkdir -p "$WORK/trivial/envoy"
echo '{"revision": "trivial", "roots": ["envoy"]}' >"$WORK/trivial/.manifest"
printf 'package envoy.authz\n\nallow := true\n' >"$WORK/trivial/envoy/authz.rego"
"$VERDICT_BIN" run --addr "$TRIVIAL_API" --proxy "$TRIVIAL=http://$UPSTREAM" -b "$WORK/trivial" --log-level error &
PIDS+=($!)
WAYS="direct:$UPSTREAM nginx:$NGINX verdict:$PROXY trivial:$TRIVIAL"
for way in $WAYS; do wait_port "${way#*:}"; done

# Each way answers the payment first: a bench of error pages would measure nothing.
for way in $WAYS; do
    addr=${way#*:}
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' \
        -H 'x-payment-role: customer' -d "$BODY" "http://$addr/api/payment")
    [ "$code" = 200 ] || { echo "$addr answers $code, not 200" >&2; exit 1; }
done

load() { # name addr [oha args...]
    local name=$1 addr=$2
    shift 2
    oha --no-tui --output-format json -z "$DURATION" -c "$CONNECTIONS" "$@" \
        -m POST -H 'content-type: application/json' -H 'x-payment-role: customer' -d "$BODY" \
        "http://$addr/api/payment" >"$OUT/$name.json"
}

for way in $WAYS; do
    addr=${way#*:}
    oha --no-tui -n 20000 -c "$CONNECTIONS" -m POST -H 'content-type: application/json' \
        -H 'x-payment-role: customer' -d "$BODY" "http://$addr/api/payment" >/dev/null
done
for rep in $(seq "$REPEAT"); do
    for way in $WAYS; do
        load "${way%%:*}-rate-$rep" "${way#*:}" -q "$RATE" --latency-correction
        load "${way%%:*}-closed-$rep" "${way#*:}"
    done
done
uptime >"$OUT/load-average"

python3 - "$OUT" "$REPEAT" "$RATE" <<'EOF' | tee "$OUT/summary.md"
import json, statistics, sys
out, repeat, rate = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def run(name):
    with open(f"{out}/{name}.json") as f:
        r = json.load(f)
    codes = r.get("statusCodeDistribution", {})
    ok = codes.get("200", 0)
    # oha cuts the requests in flight when the duration ends: not failures.
    errors = {k: v for k, v in r.get("errorDistribution", {}).items() if k != "aborted due to deadline"}
    bad = sum(v for k, v in codes.items() if k != "200") + sum(errors.values())
    return {
        "rps": r["summary"]["requestsPerSec"],
        "p50": r["latencyPercentiles"]["p50"] * 1000,
        "p99": r["latencyPercentiles"]["p99"] * 1000,
        "ok": ok,
        "bad": bad,
    }

def median(way, kind, key):
    return statistics.median(run(f"{way}-{kind}-{i}")[key] for i in range(1, repeat + 1))

print(f"| way | {rate} req/s p50 | {rate} req/s p99 | closed loop req/s | closed p99 | failed |")
print("|---|---|---|---|---|---|")
for way in ("direct", "nginx", "verdict", "trivial"):
    bad = sum(run(f"{way}-{k}-{i}")["bad"] for k in ("rate", "closed") for i in range(1, repeat + 1))
    print(f"| {way} | {median(way, 'rate', 'p50'):.3f} ms | {median(way, 'rate', 'p99'):.3f} ms | "
          f"{median(way, 'closed', 'rps'):,.0f} | {median(way, 'closed', 'p99'):.2f} ms | {bad} |")
added = median("verdict", "rate", "p99") - median("direct", "rate", "p99")
ratio = median("verdict", "closed", "rps") / median("nginx", "closed", "rps")
print()
print(f"verdict adds {added:.3f} ms to direct's p99 at {rate} req/s (target <= 0.5 ms): "
      f"{'met' if added <= 0.5 else 'MISSED'}")
print(f"verdict's closed loop is {ratio:.0%} of nginx's (target >= 70%): "
      f"{'met' if ratio >= 0.7 else 'MISSED'}")
EOF
echo "results: $OUT"
