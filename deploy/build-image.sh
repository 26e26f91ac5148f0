#!/usr/bin/env bash
# Builds the static release binary and verdict's image from it, with no base image to pull.
#
#   deploy/build-image.sh [TAG]          # TAG defaults to verdict:<Cargo.toml version>
#   NO_IMAGE=1 deploy/build-image.sh     # the static binary only
#
# Needs: rustup's x86_64-unknown-linux-musl target and musl-gcc (Debian: musl-tools), which the
# script adds when missing; Docker for the image. Prints the binary's and the image's sizes.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-unknown-linux-musl
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
TAG=${1:-verdict:$VERSION}

rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"
if ! command -v musl-gcc >/dev/null; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q musl-tools
fi

# ring, SQLite and mimalloc are C: musl-gcc builds them against musl, so the result is static.
CC_x86_64_unknown_linux_musl=musl-gcc \
    cargo build --release --locked --target "$TARGET" --bin verdict
BIN=target/$TARGET/release/verdict
if file "$BIN" | grep -q 'dynamically linked'; then
    echo "$BIN is dynamically linked" >&2
    exit 1
fi
# The release profile keeps line tables for backtraces (~90 MB of the file): the image gets
# the binary without them. Keep the unstripped file beside it to symbolize a crash report.
mkdir -p target/image
strip -o target/image/verdict "$BIN"
chmod 0755 target/image/verdict
echo "binary: $BIN, $(stat -c %s "$BIN") bytes; stripped: $(stat -c %s target/image/verdict) bytes"
[ -n "${NO_IMAGE:-}" ] && exit 0

install -m 0644 /etc/ssl/certs/ca-certificates.crt target/image/ca-certificates.crt
docker build -f deploy/Dockerfile --target prebuilt -t "$TAG" .
echo "image: $TAG, $(docker image inspect -f '{{.Size}}' "$TAG") bytes"
