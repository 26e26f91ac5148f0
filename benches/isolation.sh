#!/usr/bin/env bash
# Measures issue 15's isolation promises on the release binary: a good decision, /health/live
# and /metrics, first on their own, then while two runaway ad-hoc queries keep two evaluations
# running to the evaluation time limit at all times.
#
#   VERDICT_BIN=/path/to/verdict bash benches/isolation.sh   # default target/release/verdict
#
# No build: it runs the binary it is given (build one with `cargo build --release` first).
# Each run is oha at a fixed rate (RATE=200 req/s, latency correction on, so a request that
# waits behind a stuck worker counts from when it was due) for DURATION=10s, REPEAT=3 times;
# the summary gives medians. Results in benches/results/<time>/ (raw oha JSON, the runaway
# clients' per-request log, CPU use per run, summary.md).
#
# The runaway query is a triple loop over small ranges. A single huge `numbers.range` call is
# no good: the engine checks the time limit between steps, so one builtin building a 10^8 or
# 10^9 element array runs to its end first (2.5 s and 36-63 s with 23 GB of memory on the
# 2-core machine of 2026-12-05), which measures that builtin, not the time limit. Here every
# step is small and the set it builds holds at most 1,000 members, so each query is cut at
# eval_timeout_ms (500 ms by default) with a 500 eval_cancel_error.
set -euo pipefail
cd "$(dirname "$0")/.."

VERDICT_BIN=${VERDICT_BIN:-target/release/verdict}
DURATION=${DURATION:-10s}
REPEAT=${REPEAT:-3}
RATE=${RATE:-200}
CONNECTIONS=${CONNECTIONS:-32}
ADDR=127.0.0.1:18881
OUT=benches/results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    touch "$WORK/stop"
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

if (exec 3<>"/dev/tcp/${ADDR%:*}/${ADDR#*:}") 2>/dev/null; then
    echo "something already listens on $ADDR; stop it first" >&2
    exit 1
fi
[ -x "$VERDICT_BIN" ] || { echo "no verdict binary at $VERDICT_BIN (set VERDICT_BIN)" >&2; exit 1; }
command -v oha >/dev/null || cargo install oha --locked
"$VERDICT_BIN" --version >"$OUT/binary"
stat -c '%y %n' "$(readlink -f "$VERDICT_BIN")" >>"$OUT/binary"

# The embedded example payment bundle, default eval_timeout_ms.
"$VERDICT_BIN" run --addr "$ADDR" --log-level info 2>"$OUT/verdict.log" &
PIDS+=($!)
VERDICT_PID=$!
deadline=$((SECONDS + 15))
until curl -sf -o /dev/null "http://$ADDR/health"; do
    if [ "$SECONDS" -ge "$deadline" ] || ! kill -0 "$VERDICT_PID" 2>/dev/null; then
        echo "verdict did not become healthy on $ADDR within 15 s; see $OUT/verdict.log" >&2
        exit 1
    fi
    sleep 0.1
done

BODY='{"input": {"method": "POST", "path": "/api/payment", "role": "customer", "amount": 2500, "currency": "EUR", "merchant": "m-123", "country": "DE", "velocity": 1, "timestamp": "2026-11-24T14:30:00Z"}}'
RUNAWAY='{"query": "x := count({a | some a in numbers.range(1, 1000); some b in numbers.range(1, 1000); some c in numbers.range(1, 1000)})"}'
echo "$RUNAWAY" >"$WORK/runaway.json"
answer=$(curl -s -X POST -H 'Content-Type: application/json' -d "$BODY" "http://$ADDR/v1/data/payment/allow")
echo "good decision: $answer"
[ "$answer" = '{"result":true}' ] || { echo "the good decision is not allowed; stop" >&2; exit 1; }
probe=$(curl -s -o "$WORK/probe" -w '%{http_code} %{time_total}' -H 'Content-Type: application/json' \
    --data-binary @"$WORK/runaway.json" "http://$ADDR/v1/query")
echo "runaway query alone: HTTP ${probe% *} after ${probe#* } s, $(grep -c eval_cancel_error "$WORK/probe") eval_cancel_error"

# One runaway client: back to back, each request logged as "code seconds cut" (cut = 1 when
# the answer is eval_cancel_error), until the stop file appears.
runaway() { # log
    local body="$WORK/body-$BASHPID"
    while [ ! -e "$WORK/stop" ]; do
        local res
        res=$(curl -s --max-time 10 -o "$body" -w '%{http_code} %{time_total}' \
            -H 'Content-Type: application/json' --data-binary @"$WORK/runaway.json" "http://$ADDR/v1/query" || true)
        echo "$res $(grep -c eval_cancel_error "$body" 2>/dev/null || true)" >>"$1"
    done
}

# Machine busy and steal ticks (/proc/stat), then verdict's own, all in clock ticks.
ticks() { awk 'NR == 1 {print $2 + $3 + $4 + $7 + $8, $9}' /proc/stat; awk '{print $14 + $15}' "/proc/$VERDICT_PID/stat"; }

# The machine is shared: each run records, in cores over its duration, how busy the machine
# was, how much of that was verdict (the rest is oha, the runaway clients and anyone else)
# and how much the hypervisor stole.
load() { # name path [oha args...]
    local name=$1 path=$2
    shift 2
    local before t0
    # verdict's own request-duration histogram around the run: time spent inside verdict,
    # apart from the client's (oha shares the 2 cores and its own stalls count as latency).
    curl -s "http://$ADDR/metrics" | grep '^http_request_duration_seconds_bucket' >"$OUT/$name.server-before"
    before=$(ticks | tr '\n' ' ')
    t0=$(date +%s.%N)
    oha --no-tui --output-format json -z "$DURATION" -c "$CONNECTIONS" -q "$RATE" --latency-correction "$@" \
        "http://$ADDR$path" >"$OUT/$name.json"
    curl -s "http://$ADDR/metrics" | grep '^http_request_duration_seconds_bucket' >"$OUT/$name.server-after"
    echo "$name $before $(ticks | tr '\n' ' ') $t0 $(date +%s.%N) $(getconf CLK_TCK) $(cut -d' ' -f1 /proc/loadavg)" >>"$OUT/cpu"
}
decision() { load "$1-decision-$2" /v1/data/payment/allow -m POST -H 'Content-Type: application/json' -d "$BODY"; }

# Warm connections, allocator and the engine before measuring.
oha --no-tui -n 5000 -c "$CONNECTIONS" -m POST -H 'Content-Type: application/json' -d "$BODY" \
    "http://$ADDR/v1/data/payment/allow" >/dev/null

for rep in $(seq "$REPEAT"); do
    decision baseline "$rep"
    load "baseline-live-$rep" /health/live
    load "baseline-metrics-$rep" /metrics

    rm -f "$WORK/stop"
    runaway "$OUT/runaway-$rep-a.log" &
    PIDS+=($!)
    runaway "$OUT/runaway-$rep-b.log" &
    PIDS+=($!)
    # Measure once each client has had its first query cut: both are then looping, so two
    # evaluations are in flight (bar curl's few ms between one answer and the next request).
    deadline=$((SECONDS + 10))
    until [ -s "$OUT/runaway-$rep-a.log" ] && [ -s "$OUT/runaway-$rep-b.log" ]; do
        [ "$SECONDS" -lt "$deadline" ] || { echo "the runaway clients got no answer within 10 s" >&2; exit 1; }
        sleep 0.05
    done
    decision runaways "$rep"
    load "runaways-live-$rep" /health/live
    load "runaways-metrics-$rep" /metrics
    touch "$WORK/stop"
    wait "${PIDS[@]: -2}"
done
grep -E 'VmHWM|Threads' "/proc/$VERDICT_PID/status" >"$OUT/verdict-status" || true

python3 - "$OUT" "$DURATION" "$RATE" "$CONNECTIONS" "$REPEAT" <<'PY'
import glob, json, os, statistics, sys
out, duration, rate, conns, repeat = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
TARGET = 0.050

def run(name):
    with open(os.path.join(out, name + ".json")) as f:
        d = json.load(f)
    codes = d.get("statusCodeDistribution", {})
    errors = d.get("errorDistribution", {})
    # oha cancels the requests in flight when the duration ends; those are not failures.
    cut = errors.get("aborted due to deadline", 0)
    failed = sum(v for k, v in codes.items() if not k.startswith("2")) + sum(errors.values()) - cut
    p = d["latencyPercentiles"]
    return {"p50": p["p50"], "p99": p["p99"], "max": d["summary"]["slowest"], "failed": failed,
            "total": sum(codes.values()) + sum(errors.values()) - cut}

HANDLER = {"decision": 'handler="v1/data",method="post"', "live": 'handler="health",method="get"',
           "metrics": 'handler="metrics",method="get"'}

def server(name, what):
    """Answers verdict itself timed over 10 ms and over 100 ms (its histogram's buckets)."""
    def buckets(suffix):
        b = {}
        for line in open(os.path.join(out, "%s.server-%s" % (name, suffix))):
            if 'code="200",' + HANDLER[what] in line:
                b[line.split('le="')[1].split('"')[0]] = float(line.split()[-1])
        return b
    before, after = buckets("before"), buckets("after")
    d = {k: after[k] - before.get(k, 0) for k in after}
    return {"over10": d["+Inf"] - d["0.01"], "over100": d["+Inf"] - d["0.1"], "count": d["+Inf"]}

ms = lambda s: "%.2f" % (s * 1000)
runs = {}
for phase in ("baseline", "runaways"):
    for what in ("decision", "live", "metrics"):
        runs[phase, what] = [dict(run("%s-%s-%d" % (phase, what, i)), **server("%s-%s-%d" % (phase, what, i), what))
                             for i in range(1, repeat + 1)]
med = lambda rs, k: statistics.median(r[k] for r in rs)

# The issue: a good decision's p99 under 50 ms with two runaways; /health/live and /metrics
# answer within 50 ms whatever runs, so those are judged on their slowest answer of all runs.
label = {"decision": "good decision (POST /v1/data/payment/allow)", "live": "GET /health/live", "metrics": "GET /metrics"}
rows = ["| metric (median of %d runs) | baseline | under two runaways | target | met |" % repeat, "|---|---|---|---|---|"]
for what in ("decision", "live", "metrics"):
    b, a = runs["baseline", what], runs["runaways", what]
    for k in ("p50", "p99", "max"):
        judged = (what == "decision" and k == "p99") or (what != "decision" and k == "max")
        target, met = "", ""
        if judged:
            # "Every answer within 50 ms" is missed by one slow answer in any run; the decision's
            # p99 is judged on the median of the runs, with the runs that missed counted.
            over = sum(r[k] >= TARGET for r in a)
            target = "< 50 ms" + (" (every answer)" if k == "max" else "")
            met = "**met**" if (over == 0 if k == "max" else med(a, k) < TARGET) else "**missed**"
            met += " (%s in %d of %d runs; worst %s ms)" % ("missed" if over else "under", over or len(a), len(a), ms(max(r[k] for r in a)))
        rows.append("| %s %s ms | %s | %s | %s | %s |" % (label[what], k, ms(med(b, k)), ms(med(a, k)), target, met))
    rows.append("| %s errors/requests (all runs) | %d/%d | %d/%d | 0 | %s |" % (
        label[what], sum(r["failed"] for r in b), sum(r["total"] for r in b),
        sum(r["failed"] for r in a), sum(r["total"] for r in a),
        "**met**" if sum(r["failed"] for r in a) == 0 else "**missed**"))
    total = lambda rs, k: int(sum(r[k] for r in rs))
    rows.append("| %s timed by verdict itself: over 10 ms / over 100 ms / answers (all runs) | %d / %d / %d | %d / %d / %d |  |  |" % (
        label[what], total(b, "over10"), total(b, "over100"), total(b, "count"), total(a, "over10"), total(a, "over100"), total(a, "count")))

lines = ["Isolation: %s at %s req/s (latency correction), %s connections, %d repetitions, medians" % (duration, rate, conns, repeat), ""] + rows + [""]
for what in ("decision", "live", "metrics"):
    lines.append("per run p99 / max ms, %s: baseline %s; runaways %s" % (what,
        ", ".join("%s/%s" % (ms(r["p99"]), ms(r["max"])) for r in runs["baseline", what]),
        ", ".join("%s/%s" % (ms(r["p99"]), ms(r["max"])) for r in runs["runaways", what])))

# The runaway clients: every answer should be a 500 eval_cancel_error after ~eval_timeout_ms.
answers = []
for path in sorted(glob.glob(os.path.join(out, "runaway-*.log"))):
    for line in open(path):
        f = line.split()
        answers.append((f[0], float(f[1]), len(f) > 2 and f[2] != "0"))
cut = [t for code, t, c in answers if code == "500" and c]
cpu = {}
for line in open(os.path.join(out, "cpu")):
    f = line.split()
    b_busy, b_steal, b_v, a_busy, a_steal, a_v, t0, t1, hz = map(float, f[1:10])
    secs = (t1 - t0) * hz
    cpu[f[0]] = "machine %.2f, verdict %.2f, steal %.2f (load %s)" % ((a_busy - b_busy) / secs, (a_v - b_v) / secs, (a_steal - b_steal) / secs, f[10])
lines += ["", "runaway queries answered: %d, cut by the time limit (500 eval_cancel_error): %d; their time: min %s, median %s, max %s ms" % (
              len(answers), len(cut), ms(min(cut)) if cut else "-", ms(statistics.median(cut)) if cut else "-", ms(max(cut)) if cut else "-"),
          "", "CPU in cores during each run (machine busy of 2; verdict's share; hypervisor steal; 1-min load average after):"]
lines += ["- %s: %s" % (name, c) for name, c in cpu.items()]
status = os.path.join(out, "verdict-status")
if os.path.exists(status):
    lines.append("verdict at the end: %s" % "; ".join(l.strip() for l in open(status)))
lines.append("binary: %s" % "; ".join(l.strip() for l in open(os.path.join(out, "binary"))))
text = "\n".join(lines) + "\n"
open(os.path.join(out, "summary.md"), "w").write(text)
print(text)
PY
echo "figures in $OUT/summary.md"
