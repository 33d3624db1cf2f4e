#!/usr/bin/env bash
# weft's test command: installs what is missing, runs `bazel test //...` in each requested
# configuration and ends with exactly one line `N passed, N failed`, counting every test
# target once per configuration. Exits non-zero if anything failed, including a build or
# analysis error (which always counts as at least one failure).
#
#   tools/test.sh [CONFIG...] [-- BAZEL_ARGS...]
#
# CONFIG (default: opt asan tsan clang clang-asan):
#   opt         bazel test --config=opt         (g++, -c opt)
#   asan        bazel test --config=asan        (g++, AddressSanitizer + UBSan + LeakSanitizer)
#   tsan        bazel test --config=tsan        (g++, ThreadSanitizer; builds /opt/weft-tsan
#               if needed)
#   clang       bazel test --config=clang       (clang 16, thread-safety analysis as errors),
#               then a short fuzz run: tools/fuzz.sh, each libFuzzer target of //fuzz for
#               WEFT_FUZZ_SECONDS (default 5), one test each
#   clang-asan  bazel test --config=clang-asan  (clang 16, ASan + UBSan + LeakSanitizer)
#   consumer    builds and runs examples/consumer, a separate workspace using @weft//:weft,
#               and checks that it cannot depend on weft's *_internal targets (two tests)
# BAZEL_ARGS go to every `bazel test`: flags (--x) and target patterns (//x, -//x; default
# //...), e.g. `tools/test.sh asan -- //core/... --runs_per_test=20`.
#
# Environment:
#   WEFT_STRESS=1      also run tests tagged `stress` (always skipped: tag `benchmark`)
#   WEFT_SKIP_SETUP=1  do not run tools/setup.sh first
#   WEFT_FUZZ_SECONDS=N  each fuzzer's time in the clang configuration (long mode: 3600)
# Works without a terminal (CI=true, stdin closed); Bazel output is plain text.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

log() { printf 'test.sh: %s\n' "$*" >&2; }

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"; }

configs=()
bazel_args=()
while (($#)); do
  case $1 in
    opt | asan | tsan | clang | clang-asan | consumer) configs+=("$1") ;;
    --) shift; bazel_args=("$@"); break ;;
    -h | --help) usage; exit 0 ;;
    *) log "unknown configuration: $1"; usage >&2; exit 2 ;;
  esac
  shift
done
((${#configs[@]})) || configs=(opt asan tsan clang clang-asan)

# Split the extra arguments into flags (--x) and target patterns (//x, -//x); no pattern
# means //... .
bazel_flags=()
targets=()
for arg in "${bazel_args[@]}"; do
  if [[ $arg == --* ]]; then bazel_flags+=("$arg"); else targets+=("$arg"); fi
done
((${#targets[@]})) || targets=("//...")

tag_filters="-stress,-benchmark"
[[ ${WEFT_STRESS:-0} == 1 ]] && tag_filters="-benchmark"

# Plain output for logs; the server quits soon after a CI run instead of idling for hours.
startup_opts=()
[[ -n ${CI:-} ]] && startup_opts+=(--max_idle_secs=300)
common_opts=(--color=no --curses=no --noshow_progress --keep_going)

total_passed=0
total_failed=0
report=()   # one "config passed failed time note" row per configuration
workdir=$(mktemp -d "${TMPDIR:-/tmp}/weft-test.XXXXXX")

finish() {
  local status=$?
  rm -rf "$workdir"
  # Whatever stopped this script early counts as a failure.
  ((status != 0 && total_failed == 0)) && total_failed=1
  if ((${#report[@]})); then
    printf '\n%-11s %7s %7s %7s\n' config passed failed time >&2
    printf '%s\n' "${report[@]}" >&2
  fi
  # The one line CI reads; nothing else printed here has this shape.
  printf '%d passed, %d failed\n' "$total_passed" "$total_failed"
  if ((total_failed > 0 || status != 0)); then exit 1; fi
  exit 0
}
trap finish EXIT
trap 'log "interrupted"; total_failed=$((total_failed + 1)); exit 130' INT TERM

record() {  # record <config> <passed> <failed> <seconds> [note]
  total_passed=$((total_passed + $2))
  total_failed=$((total_failed + $3))
  local row
  row=$(printf '%-11s %7d %7d %6ss  %s' "$1" "$2" "$3" "$4" "${5:-}")
  report+=("${row%"${row##*[! ]}"}")
}

# count_results <bazel output file>: prints "passed failed" from Bazel's test summary, one
# line per test target: "//pkg:name   (cached) PASSED in 0.1s", "FAILED TO BUILD", "NO STATUS",
# "TIMEOUT", "FLAKY, failed in ..." (flaky = passed on a retry: counted as passed).
count_results() {
  awk '
    $1 ~ /^(\/\/|@)/ {
      line = $0; sub(/^[^ ]+[ ]+/, "", line); sub(/^\(cached\) /, "", line)
      if (line ~ /^(PASSED|FLAKY)/) passed++
      else if (line ~ /^(FAILED|TIMEOUT|NO STATUS|INCOMPLETE|REMOTE FAILURE)/) failed++
    }
    END { printf "%d %d\n", passed, failed }' "$1"
}

# g++ 12's TSan runtime cannot lay out its shadow memory with more than 28 bits of mmap
# randomisation (some kernels use 32, e.g. Ubuntu's since 23.10): every TSan binary would die
# at start-up with "unexpected memory mapping".
tsan_preflight() {
  local bits
  bits=$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null) || return 0
  ((bits <= 28)) && return 0
  if [[ -n ${CI:-} && $EUID == 0 ]]; then
    log "vm.mmap_rnd_bits=$bits is too high for TSan; setting it to 28 (CI)"
    echo 28 >/proc/sys/vm/mmap_rnd_bits || log "could not set vm.mmap_rnd_bits; TSan may fail"
  else
    log "warning: vm.mmap_rnd_bits=$bits; TSan binaries may fail at start-up" \
      "(fix: sudo sysctl -w vm.mmap_rnd_bits=28)"
  fi
}

run_bazel_tests() {  # run_bazel_tests <config>
  local config=$1 out="$workdir/$1.log" rc passed failed note="" start=$SECONDS
  local opts=(--config="$config" --test_tag_filters="$tag_filters")
  # The other runs check tests; binaries that no test uses are built by the opt run.
  [[ $config == opt ]] || opts+=(--build_tests_only)
  log "=== $config: bazel test ${opts[*]} ${bazel_flags[*]} -- ${targets[*]}"
  bazel "${startup_opts[@]}" test "${common_opts[@]}" "${opts[@]}" "${bazel_flags[@]}" \
    -- "${targets[@]}" </dev/null 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  read -r passed failed < <(count_results "$out")
  case $rc in
    0) ;;
    3) note="tests failed" ;;
    4) note="no test targets"; rc=0 ;;
    *) note="bazel exit $rc: build or analysis error" ;;
  esac
  # A failed bazel command is never reported as "0 failed".
  if ((rc != 0 && failed == 0)); then failed=1; fi
  record "$config" "$passed" "$failed" $((SECONDS - start)) "$note"
}

run_fuzz() {
  local out="$workdir/fuzz.log" start=$SECONDS rc passed failed note=""
  log "=== fuzz: tools/fuzz.sh ${WEFT_FUZZ_SECONDS:-5}"
  "$ROOT/tools/fuzz.sh" "${WEFT_FUZZ_SECONDS:-5}" </dev/null 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  passed=$(grep -c '^fuzz .*: PASSED' "$out")
  failed=$(grep -c '^fuzz .*: FAILED' "$out")
  if ((rc != 0)); then
    note="tools/fuzz.sh failed"
    ((failed == 0)) && failed=1
  fi
  record fuzz "$passed" "$failed" $((SECONDS - start)) "$note"
}

run_consumer() {
  local rc out passed=0 failed=0 note="" start=$SECONDS
  log "=== consumer: examples/consumer, bazel run //:main (depends on @weft//:weft)"
  (cd examples/consumer &&
    bazel "${startup_opts[@]}" run "${common_opts[@]}" //:main </dev/null 2>&1)
  rc=$?
  if ((rc == 0)); then
    passed=$((passed + 1))
  else
    failed=$((failed + 1)) note="main: exit $rc"
  fi
  # The second check: a consumer cannot depend on weft's internals.
  log "=== consumer: //:reaches_internal must be refused (@weft//core:core_internal is not visible)"
  out=$(cd examples/consumer &&
    bazel "${startup_opts[@]}" build "${common_opts[@]}" //:reaches_internal </dev/null 2>&1)
  rc=$?
  if ((rc != 0)) && grep -q "is not visible from target" <<<"$out"; then
    passed=$((passed + 1))
  else
    printf '%s\n' "$out" >&2
    failed=$((failed + 1)) note="${note:+$note; }reaches_internal: not refused for visibility (exit $rc)"
  fi
  record consumer "$passed" "$failed" $((SECONDS - start)) "$note"
}

if [[ ${WEFT_SKIP_SETUP:-0} != 1 ]]; then
  setup_args=()
  [[ " ${configs[*]} " == *" tsan "* ]] && setup_args+=(--tsan)
  if ! "$ROOT/tools/setup.sh" "${setup_args[@]}" </dev/null; then
    log "tools/setup.sh failed"
    record setup 0 1 "$SECONDS" "tools/setup.sh failed"
    exit 1
  fi
fi

for config in "${configs[@]}"; do
  case $config in
    consumer) run_consumer ;;
    tsan) tsan_preflight; run_bazel_tests tsan ;;
    clang) run_bazel_tests clang; run_fuzz ;;
    *) run_bazel_tests "$config" ;;
  esac
done
