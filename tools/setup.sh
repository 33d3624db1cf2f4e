#!/usr/bin/env bash
# Installs what building, testing and benchmarking weft needs on Debian 12 (bookworm).
#
#   tools/setup.sh          Bazel 4.2.3 (bazel-bootstrap), g++ 12 and clang 16 (with its
#                           sanitizer runtimes), the libraries weft links (oneTBB, Abseil,
#                           GoogleTest, Google Benchmark, OpenSSL, zlib), wrk,
#                           python3
#   tools/setup.sh --tsan   also what --config=tsan needs: a deb-src entry, cmake, ninja, make
#                           and perl, then ThreadSanitizer builds of oneTBB, Abseil and OpenSSL
#                           in /opt/weft-tsan (third_party/tsan/build.sh)
#
# Only Debian's apt is used (no other network). Idempotent: when everything is installed it
# runs no apt-get at all and returns in well under a second; the TSan libraries are rebuilt
# only when missing or out of date. Runs as root, or through sudo.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

BASE_PACKAGES=(
  bazel-bootstrap bazel-rules-java g++ pkg-config
  libtbb-dev libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev libssl-dev
  # zlib: the pipeline example's and W10's compression.
  zlib1g-dev
  # W9's client; python3 for tools/bench_report (and its test).
  wrk python3
  # --config=clang; libclang-rt-16-dev holds clang 16's ASan/UBSan runtimes (clang-asan).
  clang-16 libclang-rt-16-dev
)
# For building the TSan libraries from Debian's source packages (make and perl: OpenSSL's
# Configure, which needs perl's core modules, not just perl-base).
TSAN_PACKAGES=(cmake ninja-build make perl xz-utils dpkg-dev)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf 'setup: %s\n' "$*" >&2; }

as_root() {
  if ((EUID == 0)); then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo -E "$@"
  else
    log "need root for: $*"
    return 1
  fi
}

# missing_packages <pkg>...: prints the packages that are not installed.
missing_packages() {
  local p
  for p in "$@"; do
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] || echo "$p"
  done
}

APT_UPDATED=0
apt_update() {
  ((APT_UPDATED)) && return
  log "apt-get update"
  as_root apt-get update -q
  APT_UPDATED=1
}

install_packages() {
  local missing
  mapfile -t missing < <(missing_packages "$@")
  ((${#missing[@]} == 0)) && return
  log "installing: ${missing[*]}"
  apt_update
  as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# The TSan build fetches Debian's source packages, which needs a deb-src entry for the same
# mirrors as the binaries. If apt has no source index for onetbb yet, adds one derived from
# the deb entries (deb822 .sources or one-line sources.list format).
ensure_deb_src() {
  [[ -n $(apt-cache showsrc onetbb 2>/dev/null) ]] && return
  local deb822=/etc/apt/sources.list.d/debian.sources
  local file entries
  if [[ -f $deb822 ]]; then
    file=/etc/apt/sources.list.d/weft-deb-src.sources
    # Each stanza whose Types include `deb`, with its Types rewritten to deb-src.
    entries=$(awk 'BEGIN { RS = ""; ORS = "\n\n" }
      /(^|\n)Types:[^\n]*[[:space:]]deb([[:space:]]|$)/ {
        sub(/(^|\n)Types:[^\n]*/, "\nTypes: deb-src"); sub(/^\n/, ""); print }' "$deb822")
  else
    file=/etc/apt/sources.list.d/weft-deb-src.list
    entries=$(sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' /etc/apt/sources.list 2>/dev/null || true)
  fi
  [[ -n $entries ]] || { log "found no Debian apt entries to derive deb-src from"; return 1; }
  log "adding deb-src entries: $file"
  printf '# Added by weft tools/setup.sh --tsan (TSan builds from source packages).\n%s\n' \
    "$entries" | as_root tee "$file" >/dev/null
  APT_UPDATED=0
  apt_update
}

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"; }

main() {
  local tsan=0
  while (($#)); do
    case $1 in
      --tsan) tsan=1 ;;
      -h | --help) usage; return 0 ;;
      *) log "unknown argument: $1"; usage; return 2 ;;
    esac
    shift
  done

  command -v apt-get >/dev/null || { log "this script needs Debian's apt-get"; return 1; }
  install_packages "${BASE_PACKAGES[@]}"
  if ((tsan)); then
    install_packages "${TSAN_PACKAGES[@]}"
    ensure_deb_src
    as_root "$ROOT/third_party/tsan/build.sh"
  fi
}

main "$@"
