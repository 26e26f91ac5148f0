#!/usr/bin/env bash
# Checks a built image the way the cluster runs it: read-only root, uid 65532, no shell, a
# decision served over HTTP and gRPC health, and exit code 64 with a clear message on a wrong
# config file. Needs Docker; uses the host network (ports 28181 and 29191 on 127.0.0.1).
#
#   deploy/check-image.sh [IMAGE]        # default verdict:<Cargo.toml version>
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
IMAGE=${1:-verdict:$VERSION}
HTTP=127.0.0.1:28181
GRPC=127.0.0.1:29191
WORK=$(mktemp -d)
NAME=verdict-check-$$
cleanup() {
    docker rm -f "$NAME" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
RUN=(docker run --read-only --user 65532:65532 --cap-drop ALL --security-opt no-new-privileges
    --network host)

echo "== image: $IMAGE, $(docker image inspect -f '{{.Size}}' "$IMAGE") bytes," \
    "user $(docker image inspect -f '{{.Config.User}}' "$IMAGE")"

echo "== no shell in the image"
if docker run --rm --entrypoint /bin/sh "$IMAGE" -c true >/dev/null 2>&1; then
    fail "/bin/sh runs in the image"
fi

echo "== serves a decision with a read-only root, as uid 65532"
"${RUN[@]}" -d --name "$NAME" --tmpfs /var/lib/verdict:uid=65532,gid=65532 "$IMAGE" \
    run --addr "$HTTP" --grpc-addr "$GRPC" >/dev/null
BODY='{"input": {"method": "POST", "path": "/api/payment", "role": "customer", "amount": 2500,
  "currency": "EUR", "merchant": "m-123", "country": "DE", "velocity": 1}}'
answer=$(curl -sS --retry 50 --retry-connrefused --retry-delay 0 --max-time 10 \
    -d "$BODY" "http://$HTTP/v1/data/payment/decision") || {
    docker logs "$NAME" >&2
    fail "no answer from $HTTP"
}
echo "   $answer"
[ "$answer" = '{"result":{"allow":true,"reasons":[]}}' ] || fail "unexpected decision"
health=$(curl -s -o /dev/null -w '%{http_code}' "http://$HTTP/health?bundles")
[ "$health" = 200 ] || fail "/health?bundles answered $health"
echo "   /health?bundles: $health"
# A Data API write goes to the persistence volume (here a tmpfs), never the root filesystem.
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d '{"blocked": ["m-999"]}' \
    "http://$HTTP/v1/data/sanctions")
[ "$code" = 204 ] || fail "PUT /v1/data/sanctions answered $code"
echo "   PUT /v1/data/sanctions: $code (stored under /var/lib/verdict)"
docker stop -t 15 "$NAME" >/dev/null
status=$(docker inspect -f '{{.State.ExitCode}}' "$NAME")
[ "$status" = 0 ] || fail "exit code $status after SIGTERM"
echo "   SIGTERM: exit 0"
docker rm "$NAME" >/dev/null

echo "== a wrong config file exits 64 with a clear message"
printf 'lables:\n  app: payment-gateway\n' >"$WORK/verdict.yaml"
chmod 0755 "$WORK"; chmod 0644 "$WORK/verdict.yaml"
set +e
err=$("${RUN[@]}" --rm -v "$WORK:/etc/verdict:ro" "$IMAGE" run -c /etc/verdict/verdict.yaml 2>&1 >/dev/null)
status=$?
set -e
echo "   exit $status: $(echo "$err" | grep '^error:')"
[ "$status" = 64 ] || fail "exit code $status, want 64"
echo "$err" | grep -q 'unknown top-level key "lables"' || fail "message does not name the key"

echo "== a config whose listen address is no address exits 64"
printf 'plugins:\n  envoy_ext_authz_grpc:\n    addr: gateway-port\n' >"$WORK/verdict.yaml"
set +e
err=$("${RUN[@]}" --rm -v "$WORK:/etc/verdict:ro" "$IMAGE" run -c /etc/verdict/verdict.yaml 2>&1 >/dev/null)
status=$?
set -e
echo "   exit $status: $(echo "$err" | grep '^error:')"
[ "$status" = 64 ] || fail "exit code $status, want 64"

echo "== a missing config file exits 64"
set +e
err=$("${RUN[@]}" --rm "$IMAGE" run -c /etc/verdict/verdict.yaml 2>&1 >/dev/null)
status=$?
set -e
echo "   exit $status: $(echo "$err" | grep '^error:')"
[ "$status" = 64 ] || fail "exit code $status, want 64"
echo "image checks passed"
