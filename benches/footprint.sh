#!/usr/bin/env bash
# The footprint of the release verdict binary serving its built-in payment bundle, beside the
# minimal axum handler (examples/baseline.rs) measured the same way in the same run:
#
#   bash benches/footprint.sh    # STARTS=15 RATE=10000 DURATION=10s REPEAT=3; figures in benches/results/footprint-<time>/
#
# - start to first decision: from just before exec to the first 200 answer to
#   POST /v1/data/payment/decision, polling the port as fast as a client can; median of STARTS
#   fresh processes;
# - idle RSS: /proc/<pid>/status (VmRSS, RssAnon, RssFile, Threads) and smaps_rollup, 2 s after
#   the first decision, of each of those processes (medians);
# - peak RSS under load: VmHWM (the kernel's high-water mark) after REPEAT oha runs at RATE
#   req/s (32 connections, latency correction) on one process, the median p99 of those runs,
#   and VmRSS 5 s after the load stops.
# BIN=path/to/verdict measures another build (e.g. an older one) without building; the image's
# static binary before stripping: `NO_IMAGE=1 deploy/build-image.sh`, then
# BIN=target/x86_64-unknown-linux-musl/release/verdict, with BASELINE= the baseline built for
# the same target (`cargo build --release --target x86_64-unknown-linux-musl --example
# baseline`, CC_x86_64_unknown_linux_musl=musl-gcc) to compare like with like.
set -euo pipefail
cd "$(dirname "$0")/.."

STARTS=${STARTS:-15}
RATE=${RATE:-10000}
DURATION=${DURATION:-10s}
REPEAT=${REPEAT:-3}
CONNECTIONS=${CONNECTIONS:-32}
ADDR=127.0.0.1:18881
OUT=benches/results/footprint-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"

command -v oha >/dev/null || cargo install oha --locked
if [ -z "${BIN:-}" ]; then
    # Alone, as `cargo build --release` builds it: with an example in the same command, cargo
    # unifies the dev-dependencies' features into the binary's dependencies, their symbols get
    # other names, and link/hot-code.txt (build.rs) no longer orders the code.
    cargo build --release --bin verdict
    cargo build --release --example baseline
    BIN=./target/release/verdict
fi
BASELINE=${BASELINE:-./target/release/examples/baseline}
[ -x "$BASELINE" ] || cargo build --release --example baseline
# How much of the start-up code the linker could place together (build.rs): the static musl
# build of the image has a list of its own.
list=link/hot-code.txt
file -b "$BIN" | grep -q 'static' && list=link/hot-code-musl.txt
if command -v nm >/dev/null; then
    hot=$(grep -v '^#' "$list" | sort -u)
    found=$(nm --defined-only "$BIN" 2>/dev/null | awk '{print $3}' | sort -u | comm -12 <(echo "$hot") - | wc -l)
    echo "$list: $found of $(echo "$hot" | wc -l) functions in $BIN" | tee "$OUT/hot-code"
fi

uptime | tee "$OUT/uptime-before"
python3 - "$OUT" "$BIN" "$BASELINE" "$ADDR" "$STARTS" "$RATE" "$DURATION" "$REPEAT" "$CONNECTIONS" <<'PY'
import http.client, json, os, signal, socket, statistics, subprocess, sys, time

out, verdict, baseline, addr, starts, rate, duration, repeat, conns = sys.argv[1:]
starts, repeat = int(starts), int(repeat)
host, port = addr.rsplit(":", 1)
port = int(port)
BODY = json.dumps({"input": {"method": "POST", "path": "/api/payment", "role": "customer", "amount": 2500,
                             "currency": "EUR", "merchant": "m-123", "country": "DE", "velocity": 1,
                             "timestamp": "2026-11-24T14:30:00Z"}}).encode()
PATH = "/v1/data/payment/decision"

def commands():
    return {
        "verdict": [verdict, "run", "--addr", addr],
        "baseline": [baseline, addr],
    }

def decide():
    conn = http.client.HTTPConnection(host, port, timeout=2)
    try:
        conn.request("POST", PATH, BODY, {"Content-Type": "application/json"})
        return conn.getresponse().status == 200
    finally:
        conn.close()

def first_decision(cmd):
    """Starts cmd, polls until it decides; returns (process, seconds from exec)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    running.append(proc)  # killed at the end whatever happens, a start that never answers too
    while True:
        try:
            if decide():
                return proc, time.perf_counter() - t0
        except OSError:
            pass
        if proc.poll() is not None:
            sys.exit("%s exited with %s before deciding" % (cmd[0], proc.returncode))
        if time.perf_counter() - t0 > 30:
            sys.exit("%s did not decide within 30 s" % cmd[0])

def status(pid):
    fields = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.split()[0] if value.split() else ""
    return {k: int(fields[k]) for k in ("VmRSS", "RssAnon", "RssFile", "VmHWM", "Threads")}

def smaps(pid):
    with open("/proc/%d/smaps_rollup" % pid) as f:
        return {l.split(":")[0]: int(l.split()[1]) for l in f if l.strip().endswith("kB")}

def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

running = []
def idle_after_start(cmd):
    proc, took = first_decision(cmd)
    time.sleep(2)  # idle: the figure wanted is what the process holds doing nothing
    s = status(proc.pid)
    s.update({"Pss": smaps(proc.pid).get("Pss", 0)})
    stop(proc)
    return took, s

def under_load(cmd):
    proc, _ = first_decision(cmd)
    loads = []
    for _ in range(repeat):
        oha = subprocess.run(["oha", "--no-tui", "--output-format", "json", "-z", duration, "-c", conns,
                              "-q", rate, "--latency-correction", "-m", "POST", "-H", "Content-Type: application/json",
                              "-d", BODY.decode(), "http://%s%s" % (addr, PATH)], capture_output=True, check=True)
        d = json.loads(oha.stdout)
        loads.append({"p99": d["latencyPercentiles"]["p99"], "rps": d["summary"]["requestsPerSec"]})
    loaded = status(proc.pid)
    time.sleep(5)  # what the allocator gives back once the load stops
    after = status(proc.pid)
    stop(proc)
    return loads, loaded, after

results = {}
try:
    cmds = commands()
    # Starts alternate between verdict and the baseline: this machine's start times drift by
    # 2x within minutes, and a run of one after the other would measure the drift.
    starts_s = {name: [] for name in cmds}
    idle = {name: [] for name in cmds}
    for _ in range(starts):
        for name, cmd in cmds.items():
            took, s = idle_after_start(cmd)
            starts_s[name].append(took)
            idle[name].append(s)
    med = lambda xs: statistics.median(xs)
    for name, cmd in cmds.items():
        loads, loaded, after = under_load(cmd)
        results[name] = {
            "start_ms": med(starts_s[name]) * 1000, "start_min_ms": min(starts_s[name]) * 1000,
            "start_max_ms": max(starts_s[name]) * 1000,
            **{"idle_" + k: med(r[k] for r in idle[name]) for k in idle[name][0]},
            "peak_VmHWM": loaded["VmHWM"], "loaded_Threads": loaded["Threads"], "after_VmRSS": after["VmRSS"],
            "p99_ms": med(l["p99"] for l in loads) * 1000, "rps": med(l["rps"] for l in loads),
        }
finally:
    for proc in running:
        if proc.poll() is None:
            proc.kill()
json.dump(results, open(os.path.join(out, "footprint.json"), "w"), indent=1)

mb = lambda kb: "%.1f" % (kb / 1024)
v, b = results["verdict"], results["baseline"]
rows = [
    ("start to first decision, median ms (min-max)", "%.1f (%.1f-%.1f)" % (v["start_ms"], v["start_min_ms"], v["start_max_ms"]),
     "%.1f (%.1f-%.1f)" % (b["start_ms"], b["start_min_ms"], b["start_max_ms"])),
    ("idle VmRSS MB", mb(v["idle_VmRSS"]), mb(b["idle_VmRSS"])),
    ("idle RssAnon MB", mb(v["idle_RssAnon"]), mb(b["idle_RssAnon"])),
    ("idle RssFile MB", mb(v["idle_RssFile"]), mb(b["idle_RssFile"])),
    ("idle Pss MB", mb(v["idle_Pss"]), mb(b["idle_Pss"])),
    ("idle threads", "%d" % v["idle_Threads"], "%d" % b["idle_Threads"]),
    ("peak RSS (VmHWM) after %s req/s MB" % rate, mb(v["peak_VmHWM"]), mb(b["peak_VmHWM"])),
    ("threads after the load", "%d" % v["loaded_Threads"], "%d" % b["loaded_Threads"]),
    ("VmRSS 5 s after the load MB", mb(v["after_VmRSS"]), mb(b["after_VmRSS"])),
    ("p99 at %s req/s ms (median of %d)" % (rate, repeat), "%.2f" % v["p99_ms"], "%.2f" % b["p99_ms"]),
    ("achieved req/s", "%.0f" % v["rps"], "%.0f" % b["rps"]),
]
lines = ["| %s starts, %d load runs of %s | verdict | baseline |" % (starts, repeat, duration), "|---|---|---|"]
lines += ["| %s | %s | %s |" % r for r in rows]
text = "\n".join(lines) + "\n"
open(os.path.join(out, "summary.md"), "w").write(text)
print(text)
PY
uptime | tee "$OUT/uptime-after"
echo "figures in $OUT/summary.md"
