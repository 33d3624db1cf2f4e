#!/usr/bin/env bash
# Builds weft's libFuzzer targets (//fuzz, `--config=fuzz`: clang 16, ASan + UBSan, coverage
# on every source) and runs each one for a while, starting from its corpus.
#
#   tools/fuzz.sh [SECONDS] [-- BAZEL_ARGS...]
#
# SECONDS: how long each fuzzer runs (libFuzzer's -max_total_time); default
# $WEFT_FUZZ_SECONDS, else 5 (the short run tools/test.sh makes in its clang configuration).
# The long mode is the same with more time, e.g. `WEFT_FUZZ_SECONDS=3600 tools/fuzz.sh`.
#
# fuzz/corpus/<name>/ is read, never written: new inputs go to a scratch directory
# (kept with WEFT_FUZZ_KEEP=1; its path is printed). A crash, leak, timeout or failed check
# leaves its input in fuzz/crashes/ (git-ignored) and the run counts as failed; once fixed,
# move that input to fuzz/corpus/<name>/, where //fuzz:<name>_replay replays it in every
# `bazel test //...` (fuzz/README.md).
#
# Prints one line per fuzzer, `fuzz <name>: PASSED ...` or `fuzz <name>: FAILED ...`, and
# exits non-zero if any failed or the build did.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

seconds=${WEFT_FUZZ_SECONDS:-5}
if (($#)) && [[ $1 != -- ]]; then seconds=$1; shift; fi
[[ ${1:-} == -- ]] && shift
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || { echo "fuzz.sh: SECONDS must be a positive whole number, got '$seconds'" >&2; exit 2; }

fuzzers=(stream_reader http_head pipeline_frames)
targets=()
for f in "${fuzzers[@]}"; do targets+=("//fuzz:${f}_fuzzer"); done

if ! bazel build --color=no --curses=no --noshow_progress --config=fuzz "$@" "${targets[@]}" </dev/null; then
  for f in "${fuzzers[@]}"; do echo "fuzz $f: FAILED (build)"; done
  exit 1
fi
bin=$(bazel info --config=fuzz bazel-bin 2>/dev/null)

scratch=$(mktemp -d "${TMPDIR:-/tmp}/weft-fuzz.XXXXXX")
[[ ${WEFT_FUZZ_KEEP:-0} == 1 ]] || trap 'rm -rf "$scratch"' EXIT
mkdir -p fuzz/crashes
failed=0
for f in "${fuzzers[@]}"; do
  mkdir -p "$scratch/$f"
  log="$scratch/$f.log"
  start=$SECONDS
  # The scratch directory first: libFuzzer writes new inputs to the first corpus directory.
  "$bin/fuzz/${f}_fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="fuzz/crashes/$f-" \
    "$scratch/$f" "fuzz/corpus/$f" >"$log" 2>&1 </dev/null
  rc=$?
  runs=$(awk '/stat::number_of_executed_units:/ { print $2 }' "$log")
  if ((rc == 0)); then
    echo "fuzz $f: PASSED (${runs:-?} runs in $((SECONDS - start)) s)"
  else
    failed=1
    tail -n 40 "$log" >&2
    echo "fuzz $f: FAILED (exit $rc; inputs in fuzz/crashes/, log above)"
  fi
done
[[ ${WEFT_FUZZ_KEEP:-0} == 1 ]] && echo "fuzz.sh: new inputs kept in $scratch" >&2
exit "$failed"
