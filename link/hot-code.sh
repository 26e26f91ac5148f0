#!/usr/bin/env bash
# Regenerates link/hot-code.txt: the functions `verdict run` executes from its start through
# its first decisions, in the order callgrind lists them, which build.rs hands to the linker
# to place first in `.text`. Run it after upgrading the toolchain or dependencies (their symbol
# hashes change); needs valgrind (Debian: valgrind). ~2 minutes after the release build.
#
#   link/hot-code.sh                # the host's build: link/hot-code.txt
#   MUSL=1 link/hot-code.sh         # the static x86-64 musl build of the image: link/hot-code-musl.txt
#
# Each build has its own list: cargo's symbol hashes include the target.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
if [ "${MUSL:-}" = 1 ]; then
    # As deploy/build-image.sh builds it.
    CC_x86_64_unknown_linux_musl=musl-gcc \
        cargo build --release --locked --target x86_64-unknown-linux-musl --bin verdict
    bin=target/x86_64-unknown-linux-musl/release/verdict
    list=link/hot-code-musl.txt
else
    cargo build --release --locked
    bin=target/release/verdict
    list=link/hot-code.txt
fi
port=${PORT:-18950}
work=$(mktemp -d)
pid=
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT

valgrind --tool=callgrind --dump-instr=no --compress-strings=no --compress-pos=no \
    --demangle=no --callgrind-out-file="$work/callgrind.out" \
    "$bin" run --addr "127.0.0.1:$port" >"$work/log" 2>&1 &
pid=$!
base="http://127.0.0.1:$port"
allow='{"input":{"method":"POST","path":"/api/payment","role":"customer","amount":2500,"currency":"EUR","merchant":"m-1","country":"DE","velocity":1}}'
deny='{"input":{"method":"POST","path":"/api/payment","role":"merchant","amount":999999,"currency":"XXX","merchant":"m-1","country":"DE","velocity":1}}'
decide() { curl -s -o /dev/null -w '%{http_code}' -X POST "$base/v1/data/payment/decision" -d "$1" || true; }
# Under valgrind the start takes seconds: wait for the first decision, then for the
# verification, each with a deadline. Slowed ~50x, verification spends its 5 s CPU budget on
# the first few entrypoints and `payment/decision` stays on the interpreter here; the VM's
# code is in the list all the same, from the entrypoints it did verify.
for _ in $(seq 1 600); do
    kill -0 "$pid" 2>/dev/null || break
    [ "$(decide "$allow")" = 200 ] && break
    sleep 0.2
done
for _ in $(seq 1 600); do
    kill -0 "$pid" 2>/dev/null || break
    grep -q "fast path verified" "$work/log" && break
    sleep 0.2
done
grep -q "fast path verified" "$work/log" || { echo "no verification in the log:" >&2; cat "$work/log" >&2; exit 1; }
for _ in $(seq 1 100); do decide "$allow" >/dev/null; decide "$deny" >/dev/null; done
for path in /health '/health?bundles' /metrics /v1/status /v1/data/payment/config; do
    curl -s -o /dev/null "$base$path" || true
done
curl -s -o /dev/null -X POST "$base/v1/data/payment/decision" -d '{"input":' || true
kill -TERM "$pid"
wait "$pid" || true
pid=

# Keep the names the binary defines (C and libc functions callgrind also lists are not in
# it), each once, in callgrind's order.
nm --defined-only "$bin" | awk '$2 ~ /^[tTwW]$/ {print $3}' >"$work/defined"
{
    echo "# Made by link/hot-code.sh ($(rustc --version), $bin); read by build.rs."
    echo "# The functions \`verdict run\` executes from exec to its first decisions, placed first in .text."
} >"$work/hot-code.txt"
sed -nE 's/^c?fn=(\([0-9]+\) *)?//p' "$work/callgrind.out" |
    awk -v defined="$work/defined" 'BEGIN { while ((getline n < defined) > 0) d[n] = 1 }
        (d[$0] && !seen[$0]++) { print }' >>"$work/hot-code.txt"
# The committed list is replaced only by a complete one.
count=$(grep -vc '^#' "$work/hot-code.txt" || true)
[ "$count" -gt 1000 ] || { echo "only $count functions profiled; $list kept" >&2; exit 1; }
mv "$work/hot-code.txt" "$list"
echo "$list: $count functions"
