#!/usr/bin/env bash
# Builds the static release binary and verdict's image from it, with no base image to pull.
#
#   deploy/build-image.sh [TAG]              # TAG defaults to verdict:<Cargo.toml version>
#   NO_IMAGE=1 deploy/build-image.sh         # the static binary only
#   ARCH=aarch64 deploy/build-image.sh       # for arm64 nodes (zig as the C cross compiler)
#
# x86_64 needs rustup's x86_64-unknown-linux-musl target and musl-gcc (Debian: musl-tools);
# aarch64 needs the aarch64-unknown-linux-musl target, zig and cargo-zigbuild (both on PyPI:
# pip install ziglang cargo-zigbuild) and binutils-aarch64-linux-gnu to strip. The script adds
# the rustup target and musl-tools when missing; Docker builds the image. Prints the binary's and the image's sizes.
set -euo pipefail
cd "$(dirname "$0")/.."

ARCH=${ARCH:-x86_64}
TARGET=$ARCH-unknown-linux-musl
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
TAG=${1:-verdict:$VERSION}

rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"
case $ARCH in
x86_64)
    if ! command -v musl-gcc >/dev/null; then
        sudo=""
        [ "$(id -u)" -ne 0 ] && sudo=sudo
        $sudo apt-get update -q
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q musl-tools
    fi
    # ring, SQLite and mimalloc are C: musl-gcc builds them against musl, so the result is
    # static.
    CC_x86_64_unknown_linux_musl=musl-gcc \
        cargo build --release --locked --target "$TARGET" --bin verdict
    STRIP=strip
    PLATFORM=linux/amd64
    ;;
aarch64)
    # Debian has no musl cross compiler; zig's clang has musl for every target. It rejects
    # mimalloc's use of __DATE__ (-Werror=date-time), which gcc only warns about.
    CFLAGS_aarch64_unknown_linux_musl=-Wno-error=date-time \
        cargo zigbuild --release --locked --target "$TARGET" --bin verdict
    STRIP=aarch64-linux-gnu-strip       # Debian: binutils-aarch64-linux-gnu
    # The image of another platform needs BuildKit (docker buildx): the legacy builder gives
    # the `runtime` stage the host's platform and then refuses `FROM runtime` for arm64.
    PLATFORM=linux/arm64
    ;;
*)
    echo "ARCH must be x86_64 or aarch64" >&2
    exit 64
    ;;
esac
BIN=target/$TARGET/release/verdict
if file "$BIN" | grep -q 'dynamically linked'; then
    echo "$BIN is dynamically linked" >&2
    exit 1
fi
# build.rs links the x86-64 build with rustc's lld, which orders the code and packs the
# relocations; without it (no rustup toolchain, say) the binary works but idles ~10 MB higher.
if [ "$ARCH" = x86_64 ] && ! readelf -S "$BIN" 2>/dev/null | grep -q '\.relr\.dyn'; then
    echo "warning: $BIN was linked without rust-lld (see build.rs): ~10 MB more idle RSS" >&2
fi
# The release profile keeps line tables for backtraces (~90 MB of the file): the image gets
# the binary without them. Keep the unstripped file beside it to symbolize a crash report.
mkdir -p target/image
"$STRIP" --strip-all -o target/image/verdict "$BIN"
chmod 0755 target/image/verdict
echo "binary: $BIN, $(stat -c %s "$BIN") bytes; stripped: $(stat -c %s target/image/verdict) bytes"
[ -n "${NO_IMAGE:-}" ] && exit 0

install -m 0644 /etc/ssl/certs/ca-certificates.crt target/image/ca-certificates.crt
docker build -f deploy/Dockerfile --target prebuilt --platform "$PLATFORM" -t "$TAG" .
echo "image: $TAG, $(docker image inspect -f '{{.Size}}' "$TAG") bytes"
