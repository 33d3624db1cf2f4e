#!/usr/bin/env bash
# ThreadSanitizer builds of the system libraries whose synchronisation weft's code relies on.
#
# Why: Debian's libtbb, libabsl_* and libssl/libcrypto are not built with -fsanitize=thread.
# Their hand-offs (a task_group task passed to a TBB worker, an absl::Mutex lock/unlock, an
# absl::Notification, OpenSSL's locks and reference counts around an SSL_CTX and its X509
# store shared by connections on several workers) then happen in code TSan cannot see, and
# TSan reports races that are not there. Suppressing those frames would also hide real races
# (see shared/notes/sanitizers.md), so --config=tsan links and runs against instrumented
# copies.
#
# What: oneTBB, Abseil and OpenSSL from Debian's own source packages, at the exact version of
# the installed -dev packages (same headers, same SONAMEs and symbol versions: libtbb.so.12,
# libabsl_*.so.20220623, libssl.so.3 and libcrypto.so.3), built with -fsanitize=thread and
# installed into $PREFIX. .bazelrc's `tsan` config puts $PREFIX/lib first (-L and rpath),
# so the headers still come from /usr/include and only the shared objects are swapped.
# OpenSSL keeps Debian's configuration directory (/usr/lib/ssl: openssl.cnf, the system CAs)
# and module/engine directories, and only its two libraries are built.
#
# Source version: if the archive does not carry the source of the installed version (a
# mirror behind its binaries), OpenSSL alone falls back, with a warning, to the newest older
# source of the same 3.0.x series (OpenSSL keeps ABI and SONAME within a series; the features
# are checked against the installed headers). Rebuild with --force once the archive has it.
#
# Idempotent: each library is rebuilt only when its stamp file (installed version + build
# recipe) is missing or different. Cold cost on 2 cores: oneTBB ~30 s, Abseil ~1.5 min,
# OpenSSL ~3 min.
#
# Needs: a deb-src entry and cmake ninja-build make perl g++ dpkg-dev xz-utils
# (tools/setup.sh --tsan provides all of them, then calls this script). Run as root (writes
# /opt).
#
# Usage: third_party/tsan/build.sh [--force]
# The prefix is fixed because .bazelrc cannot read the environment; to use another one, set
# WEFT_TSAN_PREFIX here and override the two tsan lines of .bazelrc that name it in
# user.bazelrc.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PREFIX=${WEFT_TSAN_PREFIX:-/opt/weft-tsan}
JOBS=${WEFT_TSAN_JOBS:-$(nproc)}
FORCE=0
[[ ${1:-} == --force ]] && FORCE=1

# Bump when the recipe below changes, so cached prefixes are rebuilt.
RECIPE=2

# Source packages that may be built from an older patch release of the installed version's
# series when the archive lacks the installed version's source (see the header).
SERIES_FALLBACK=(openssl)

log() { printf 'tsan-libs: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in cmake ninja make perl g++ dpkg-source dpkg-architecture apt-get; do
  command -v "$tool" >/dev/null || die "$tool is missing; run tools/setup.sh --tsan"
done
# OpenSSL's Configure needs perl's core modules, which perl-base alone lacks.
perl -MIPC::Cmd -e 1 2>/dev/null || die "perl's modules are missing; run tools/setup.sh --tsan"
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null)

WORK_DIRS=()
cleanup() { ((${#WORK_DIRS[@]} == 0)) || rm -rf "${WORK_DIRS[@]}"; }
trap cleanup EXIT

mkdir -p "$PREFIX/lib"
# Two concurrent runs (e.g. two CI jobs on one host) must not interleave installs.
exec 9>"$PREFIX/.lock"
flock 9

# installed_version <binary package>: the version of the installed package, minus a binNMU
# suffix, which is the version of the source package it was built from.
installed_version() {
  local v
  v=$(dpkg-query -W -f='${Version}' "$1" 2>/dev/null) || die "$1 is not installed; run tools/setup.sh"
  printf '%s' "${v%%+b[0-9]*}"
}

# upstream_version <Debian version>: without epoch and Debian revision.
upstream_version() {
  local v=${1#*:}
  printf '%s' "${v%-*}"
}

# apt_source <source package> <version> <dir>: downloads and unpacks the source package into
# <dir>, which it empties first. apt-get source also applies Debian's patches (SONAME, absl
# inline namespace, OpenSSL's targets and security fixes), which the instrumented library
# must share with the system's.
apt_source() {
  rm -rf "$3" && mkdir -p "$3"
  (cd "$3" && apt-get source -qq "$1=$2" >/dev/null 2>"$3.apt.log")
}

# fetch_source <source package> <binary -dev package> <version> <dir>: Debian's source of
# <version> unpacked in <dir>. Prints the version unpacked: <version>, or for a package in
# SERIES_FALLBACK whose <version> the archive lacks, the newest older one of its series.
fetch_source() {
  local src=$1 dev=$2 version=$3 dir=$4 series v best=''
  apt_source "$src" "$version" "$dir" && { printf '%s' "$version"; return; }
  if [[ " ${SERIES_FALLBACK[*]} " == *" $src "* ]]; then
    series=$(upstream_version "$version")
    series=${series%.*}
    for v in $(apt-cache showsrc "$src" 2>/dev/null | awk '$1 == "Version:" { print $2 }'); do
      [[ $(upstream_version "$v") == "$series".* ]] || continue
      dpkg --compare-versions "$v" lt "$version" || continue
      if [[ -z $best ]] || dpkg --compare-versions "$v" gt "$best"; then best=$v; fi
    done
    if [[ -n $best ]]; then
      log "warning: apt-get source $src=$version failed:"
      grep -v '^W:' "$dir.apt.log" | sed 's/^/    /' >&2 || true
      log "warning: building $src $best instead, the newest older $series.x source the" \
        "archive has (same ABI and SONAME). Run with --force once it carries $version."
      apt_source "$src" "$best" "$dir" && { printf '%s' "$best"; return; }
    fi
  fi
  cat "$dir.apt.log" >&2
  die "apt-get source $src=$version failed. Is there a deb-src entry (tools/setup.sh --tsan)?" \
    "Is $dev older than the archive's (apt-get install --only-upgrade $dev)?"
}

# build_one <source package> <binary -dev package> <library file that proves the install>
#           <builder> <builder args...>
# Fetches the source of the installed version and calls
# `<builder> <source tree> <work dir> <builder args...>`, which installs into $PREFIX.
build_one() {
  local src=$1 dev=$2 probe=$3 builder=$4; shift 4
  local version stamp want work built dir
  version=$(installed_version "$dev")
  stamp="$PREFIX/.stamp-$src"
  want="$src $version recipe=$RECIPE $*"
  if [[ $FORCE == 0 && -f $stamp && -e $PREFIX/lib/$probe && "$(head -n 1 "$stamp")" == "$want" ]]; then
    log "$src $version: up to date in $PREFIX"
    return
  fi
  log "$src $version: building with -fsanitize=thread into $PREFIX"
  work=$(mktemp -d /tmp/weft-tsan-"$src".XXXXXX)
  WORK_DIRS+=("$work")
  built=$(fetch_source "$src" "$dev" "$version" "$work/src")
  dir=$(find "$work/src" -mindepth 1 -maxdepth 1 -type d | head -n 1)
  [[ -n $dir ]] || die "no source tree for $src"
  "$builder" "$dir" "$work" "$@"
  [[ -e $PREFIX/lib/$probe ]] || die "$src installed no $probe"
  # Line 1 is what the next run compares; line 2 the source built (another after a fallback).
  printf '%s\nsource %s\n' "$want" "$built" >"$stamp"
  rm -rf "$work"
  log "$src $version: done"
}

# cmake_build <source tree> <work dir> <cmake args...>
cmake_build() {
  local dir=$1 work=$2; shift 2
  cmake -S "$dir" -B "$work/build" -G Ninja -Wno-dev \
    -DCMAKE_INSTALL_PREFIX="$PREFIX" -DCMAKE_INSTALL_LIBDIR=lib "$@" >"$work/cmake.log" 2>&1 || {
      cat "$work/cmake.log" >&2; die "cmake failed for $dir"; }
  ninja -C "$work/build" -j "$JOBS" install >"$work/ninja.log" 2>&1 || {
      tail -n 60 "$work/ninja.log" >&2; die "build failed for $dir"; }
}

# openssl_build <source tree> <work dir> <Configure args...>: OpenSSL's perl Configure, then
# only the shared libraries (no static ones, engines, modules, programs, tests or docs);
# installs them and their .so links into $PREFIX/lib.
openssl_build() {
  local dir=$1 work=$2 lib real; shift 2
  # Modules (the legacy provider) and engines are looked for where Debian's libcrypto looks;
  # the default provider is built into libcrypto.
  local dirs=("MODULESDIR=/usr/lib/$MULTIARCH/ossl-modules"
    "ENGINESDIR=/usr/lib/$MULTIARCH/engines-3")
  mkdir "$work/build"
  (cd "$work/build" && "$dir/Configure" "$@") >"$work/configure.log" 2>&1 || {
    cat "$work/configure.log" >&2; die "Configure failed for $dir"; }
  # weft compiles against the installed headers: their configuration.h (features, integer
  # types) must be the one these libraries were built with.
  # Compared as `#define NAME VALUE` lines: releases differ in how they space the `#`.
  defines_of() { sed -nE 's/^\s*#\s*define\s+/#define /p' "$1" | tr -s ' \t' ' '; }
  diff <(defines_of "$work/build/include/openssl/configuration.h") \
    <(defines_of "/usr/include/$MULTIARCH/openssl/configuration.h") >&2 ||
    die "OpenSSL configured with other features than the installed headers (diff above)"
  { make -C "$work/build" "${dirs[@]}" build_generated &&
    make -C "$work/build" -j "$JOBS" "${dirs[@]}" libcrypto.so libssl.so; } \
    >"$work/make.log" 2>&1 || { tail -n 60 "$work/make.log" >&2; die "build failed for $dir"; }
  for lib in libcrypto.so libssl.so; do
    real=$(readlink "$work/build/$lib")   # libcrypto.so.3: the SONAME
    # install(1) replaces the file (new inode): running tests keep the old copy mapped.
    install -m 0755 "$work/build/$real" "$PREFIX/lib/$real"
    ln -sfn "$real" "$PREFIX/lib/$lib"
  done
}

# oneTBB: TBB_SANITIZE adds -fsanitize=thread to compile and link. TBB_STRICT=OFF because
# g++ 12's -Wtsan (atomic_thread_fence is not modelled) is fatal under TBB's -Werror.
build_one onetbb libtbb-dev libtbb.so.12 cmake_build \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTBB_TEST=OFF -DTBBMALLOC_BUILD=OFF -DTBB4PY_BUILD=OFF \
  -DTBB_SANITIZE=thread -DTBB_STRICT=OFF

# Abseil: shared, C++17 like Debian's package (debian/rules), so the ABI and SONAMEs match.
# -g1 keeps line numbers for TSan reports at a fraction of the cost of -g.
build_one abseil libabsl-dev libabsl_synchronization.so.20220623 cmake_build \
  -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_STANDARD=17 -DBUILD_SHARED_LIBS=ON -DBUILD_TESTING=OFF \
  -DABSL_PROPAGATE_CXX_STD=ON \
  "-DCMAKE_CXX_FLAGS=-O2 -g1 -fsanitize=thread" "-DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread"

# OpenSSL: debian/rules' Configure options (its CONFARGS: the same algorithms, hence the same
# exported symbols; enable-unit-test exports SSL_test_functions, no test is built), its
# default security level 2 (the one setting of its debian-amd64 target, which is
# linux-x86_64 plus flags, that changes behaviour) and Debian's OPENSSLDIR; CFLAGS replaces
# the target's -O3 (-pthread -m64 -fPIC stay). -g1 as for Abseil.
build_one openssl libssl-dev libssl.so.3 openssl_build \
  linux-x86_64 shared --prefix="$PREFIX" --libdir=lib --openssldir=/usr/lib/ssl \
  no-idea no-mdc2 no-rc5 no-zlib no-ssl3 no-ssl3-method enable-unit-test enable-rfc3779 \
  enable-cms no-capieng no-rdrand enable-ec_nistp_64_gcc_128 \
  CPPFLAGS=-DOPENSSL_TLS_SECURITY_LEVEL=2 "CFLAGS=-O1 -g1 -fsanitize=thread" \
  LDFLAGS=-fsanitize=thread

# Always refreshed (cheap), so edits to the suppressions reach the next run.
install -m 0644 "$HERE/suppressions.txt" "$PREFIX/suppressions.txt"
log "ready: $PREFIX/lib"
