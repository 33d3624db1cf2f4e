#!/usr/bin/env bash
# ThreadSanitizer builds of the system libraries whose synchronisation weft's code relies on.
#
# Why: Debian's libtbb and libabsl_* are not built with -fsanitize=thread. Their hand-offs
# (a task_group task passed to a TBB worker, an absl::Mutex lock/unlock, an
# absl::Notification) then happen in code TSan cannot see, and TSan reports races that are not
# there. Suppressing those frames would also hide real races (see
# shared/notes/sanitizers.md), so --config=tsan links and runs against instrumented copies.
#
# What: oneTBB and Abseil from Debian's own source packages, at the exact version of the
# installed -dev packages (same headers, same SONAMEs: libtbb.so.12, libabsl_*.so.20220623),
# built with -fsanitize=thread and installed into $PREFIX. .bazelrc's `tsan` config puts
# $PREFIX/lib first (-L, rpath and LD_LIBRARY_PATH), so the headers still come from
# /usr/include and only the shared objects are swapped.
#
# Idempotent: each library is rebuilt only when its stamp file (source version + build
# recipe) is missing or different. Cold cost on 2 cores: oneTBB ~30 s, Abseil ~4 min.
#
# Needs: a deb-src entry and cmake ninja-build g++ dpkg-dev xz-utils (tools/setup.sh --tsan
# provides all of them, then calls this script). Run as root (writes /opt).
#
# Usage: third_party/tsan/build.sh [--force]
# The prefix is fixed because .bazelrc cannot read the environment; to use another one, set
# WEFT_TSAN_PREFIX here and override the three tsan lines of .bazelrc in user.bazelrc.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PREFIX=${WEFT_TSAN_PREFIX:-/opt/weft-tsan}
JOBS=${WEFT_TSAN_JOBS:-$(nproc)}
FORCE=0
[[ ${1:-} == --force ]] && FORCE=1

# Bump when the recipe below changes, so cached prefixes are rebuilt.
RECIPE=1

log() { printf 'tsan-libs: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in cmake ninja g++ dpkg-source apt-get; do
  command -v "$tool" >/dev/null || die "$tool is missing; run tools/setup.sh --tsan"
done

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

# build_one <source package> <binary -dev package> <library file that proves the install>
#           <cmake args...>
build_one() {
  local src=$1 dev=$2 probe=$3; shift 3
  local version stamp want work dir
  version=$(installed_version "$dev")
  stamp="$PREFIX/.stamp-$src"
  want="$src $version recipe=$RECIPE $*"
  if [[ $FORCE == 0 && -f $stamp && -e $PREFIX/lib/$probe && "$(cat "$stamp")" == "$want" ]]; then
    log "$src $version: up to date in $PREFIX"
    return
  fi
  log "$src $version: building with -fsanitize=thread into $PREFIX"
  work=$(mktemp -d /tmp/weft-tsan-"$src".XXXXXX)
  WORK_DIRS+=("$work")
  (
    cd "$work"
    # apt-get source also applies Debian's patches (SONAME, absl inline namespace), which the
    # instrumented library must share with the system headers.
    apt-get source -qq "$src=$version" >/dev/null 2>"$work/apt.log" || {
      cat "$work/apt.log" >&2
      die "apt-get source $src=$version failed. Is there a deb-src entry (tools/setup.sh --tsan)?" \
        "Is $dev older than the archive's (apt-get install --only-upgrade $dev)?"
    }
  )
  dir=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n 1)
  [[ -n $dir ]] || die "no source tree for $src"
  cmake -S "$dir" -B "$work/build" -G Ninja -Wno-dev \
    -DCMAKE_INSTALL_PREFIX="$PREFIX" -DCMAKE_INSTALL_LIBDIR=lib "$@" >"$work/cmake.log" 2>&1 || {
      cat "$work/cmake.log" >&2; die "cmake failed for $src"; }
  ninja -C "$work/build" -j "$JOBS" install >"$work/ninja.log" 2>&1 || {
      tail -n 60 "$work/ninja.log" >&2; die "build failed for $src"; }
  [[ -e $PREFIX/lib/$probe ]] || die "$src installed no $probe"
  printf '%s\n' "$want" >"$stamp"
  rm -rf "$work"
  log "$src $version: done"
}

# oneTBB: TBB_SANITIZE adds -fsanitize=thread to compile and link. TBB_STRICT=OFF because
# g++ 12's -Wtsan (atomic_thread_fence is not modelled) is fatal under TBB's -Werror.
build_one onetbb libtbb-dev libtbb.so.12 \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTBB_TEST=OFF -DTBBMALLOC_BUILD=OFF -DTBB4PY_BUILD=OFF \
  -DTBB_SANITIZE=thread -DTBB_STRICT=OFF

# Abseil: shared, C++17 like Debian's package (debian/rules), so the ABI and SONAMEs match.
# -g1 keeps line numbers for TSan reports at a fraction of the cost of -g.
build_one abseil libabsl-dev libabsl_synchronization.so.20220623 \
  -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_STANDARD=17 -DBUILD_SHARED_LIBS=ON -DBUILD_TESTING=OFF \
  -DABSL_PROPAGATE_CXX_STD=ON \
  "-DCMAKE_CXX_FLAGS=-O2 -g1 -fsanitize=thread" "-DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread"

# Always refreshed (cheap), so edits to the suppressions reach the next run.
install -m 0644 "$HERE/suppressions.txt" "$PREFIX/suppressions.txt"
log "ready: $PREFIX/lib"
