#!/usr/bin/env bash
# Builds the peers for same-run comparisons (bench/README.md, "Peer servers")
# from Debian 12's packages only: Tokio 1.24.2 (librust-tokio-dev, built
# offline from /usr/share/cargo/registry), Boost.Asio 1.74 (libboost-dev) and
# zlib (zlib1g-dev, which tokio_pipeline links, as weft does). Not part of the
# Bazel build or CI.
#   bench/peers/build.sh [OUT_DIR]     (default /tmp/weft-peers)
# builds into OUT_DIR:
#   tokio_server    W8's and W9's servers: throughput --server=OUT_DIR/tokio_server W8 W9
#   asio_server     the same on Asio:      throughput --server=OUT_DIR/asio_server W8 W9
#   tokio_pipeline  W10 (pipeline) on Tokio, a program of its own: OUT_DIR/tokio_pipeline
#                   --workers=2 prints `tokio pipeline mb_per_s ...`; against weft's in
#                   rounds: bench/peers/rounds.sh 5 /tmp/w10 --
#                     bazel-bin/bench/throughput --workers=2 pipeline --
#                     OUT_DIR/tokio_pipeline --workers=2
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-/tmp/weft-peers}"
mkdir -p "$out"

need=()
command -v cargo >/dev/null || need+=(cargo)
command -v g++ >/dev/null || need+=(g++)
[ -d /usr/share/cargo/registry/tokio-1.24.2 ] || need+=(librust-tokio-dev)
[ -f /usr/include/boost/asio.hpp ] || need+=(libboost-dev)
[ -f /usr/include/zlib.h ] || need+=(zlib1g-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "build.sh: installing ${need[*]}" >&2
  apt-get update -qq && apt-get install -y -qq "${need[@]}"
fi

# Cargo reads .cargo/config.toml from the crate's directory: crates.io is
# replaced by Debian's registry, offline.
(cd "$here/tokio" && cargo build --release --target-dir "$out/cargo-target")
cp "$out/cargo-target/release/tokio_server" "$out/tokio_server"
cp "$out/cargo-target/release/tokio_pipeline" "$out/tokio_pipeline"

g++ -std=c++20 -fcoroutines -O2 -DNDEBUG -pthread "$here/asio_server.cc" -o "$out/asio_server"

echo "built: $out/tokio_server $out/tokio_pipeline $out/asio_server" >&2
