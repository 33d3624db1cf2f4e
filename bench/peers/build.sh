#!/usr/bin/env bash
# Builds the peer servers for same-run comparisons (bench/README.md, "Peer
# servers") from Debian 12's packages only: Tokio 1.24.2 (librust-tokio-dev,
# built offline from /usr/share/cargo/registry) and Boost.Asio 1.74
# (libboost-dev). Not part of the Bazel build or CI.
#   bench/peers/build.sh [OUT_DIR]     (default /tmp/weft-peers)
# then: throughput --server=OUT_DIR/tokio_server W8 W9
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-/tmp/weft-peers}"
mkdir -p "$out"

need=()
command -v cargo >/dev/null || need+=(cargo)
command -v g++ >/dev/null || need+=(g++)
[ -d /usr/share/cargo/registry/tokio-1.24.2 ] || need+=(librust-tokio-dev)
[ -f /usr/include/boost/asio.hpp ] || need+=(libboost-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "build.sh: installing ${need[*]}" >&2
  apt-get update -qq && apt-get install -y -qq "${need[@]}"
fi

# Cargo reads .cargo/config.toml from the crate's directory: crates.io is
# replaced by Debian's registry, offline.
(cd "$here/tokio" && cargo build --release --target-dir "$out/cargo-target")
cp "$out/cargo-target/release/tokio_server" "$out/tokio_server"

g++ -std=c++20 -fcoroutines -O2 -DNDEBUG -pthread "$here/asio_server.cc" -o "$out/asio_server"

echo "built: $out/tokio_server $out/asio_server" >&2
