#!/usr/bin/env bash
# Below C++20 weft stops with one error that names the fix. With the C++ compiler of the
# build's configuration ($1), compiles `#include "weft/weft.h"` (and one header of each
# library) with -std=c++17 and checks that the first error is weft's message and that the
# compiler stops there, with no errors from inside the standard headers; checks that every
# public header includes the language check before anything else (so each behaves the same);
# and that the check is silent under -std=c++20.
set -uo pipefail

cxx=$1
check='weft/core/detail/requires_cxx20.h'
message='weft needs C++20: build with -std=c++20 (Bazel: --cxxopt=-std=c++20)'
root="$TEST_SRCDIR/$TEST_WORKSPACE"
include="$TEST_TMPDIR/include"
mkdir -p "$include"
ln -sfn "$root" "$include/weft"

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# compile <std> <header>: the compiler's output for a file that includes weft/<header>.
compile() {
  printf '#include "weft/%s"\n' "$2" | "$cxx" -x c++ "-std=$1" -fsyntax-only -I"$include" - 2>&1
}

# weft.h, and one header of each library (a clang start costs about a second here).
for h in weft.h core/coro.h sched/runtime.h sched/sync/lock.h io/streams.h; do
  out=$(compile c++17 "$h")
  rc=$?
  first_error=$(grep -m1 -E ': (fatal )?error: ' <<<"$out")
  error_count=$(grep -c -E ': (fatal )?error: ' <<<"$out")
  if ((rc == 0)); then
    fail "$h compiled under -std=c++17"
  elif [[ $first_error != *"$message"* ]]; then
    fail "$h: the first error is not weft's message:"$'\n'"$out"
  elif ((error_count != 2)); then
    # Ours, then the fatal include that stops the compiler; anything more came from elsewhere.
    fail "$h: $error_count errors, expected weft's message and the stop:"$'\n'"$out"
  fi
done

headers=("$root/weft.h")
for dir in core sched sched/sync io; do headers+=("$root/$dir"/*.h); done
((${#headers[@]} > 30)) || fail "found only ${#headers[@]} public headers under $root"
for h in "${headers[@]}"; do
  first_include=$(grep -m1 '^#include' "$h")
  [[ $first_include == "#include \"$check\""* ]] ||
    fail "${h#"$root"/}: first include is '$first_include', not the language check"
done

out=$(compile c++20 "${check#weft/}") || fail "the language check rejects -std=c++20:"$'\n'"$out"
[[ -z $out ]] || fail "the language check prints under -std=c++20:"$'\n'"$out"

echo "checked ${#headers[@]} public headers with $cxx: $failures failure(s)"
((failures == 0))
