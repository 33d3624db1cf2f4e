#!/usr/bin/env bash
# Interleaved rounds of weft's bench and a peer's, for a same-machine comparison of one
# workload (or several) that neither side's figures from another day can give: these
# machines move figures by 10-30 % between runs (bench/README.md), so only rounds run
# alternately, on the same machine, are compared.
#
#   bench/peers/rounds.sh ROUNDS OUT_DIR -- OURS_CMD... -- PEER_CMD...
#   e.g. bench/peers/rounds.sh 5 /tmp/w10 \
#          -- bazel-bin/bench/throughput --workers=2 pipeline \
#          -- /tmp/weft-peers/tokio_pipeline --workers=2
#
# Runs the two commands ROUNDS times, ours first in odd rounds and the peer first in even
# ones (so that an order effect, a warm cache or a cooling machine, falls on both alike).
# Round k's figure lines from both commands' stdout (`<impl> <workload> <metric> <value>
# <unit>`, or the harness's JSON lines) go to OUT_DIR/round-k.txt, their stderr and any other
# stdout line to OUT_DIR/round-k.log. Then prints
#   tools/bench_report --table --ours=<ours' first word> --peer=<the peer's first word>
# over the rounds (the median of the per-round ratios, > 1 = ours ahead) and writes the same
# as a chart, OUT_DIR/report.html. The first word is that of the commands' first figure line
# (`weft`, `tokio`, ...). OUT_DIR's round-*.txt, round-*.log and report.html from an earlier
# run are removed first. OURS_CMD cannot contain a `--` argument of its own (PEER_CMD can).
#
# Exit status: 0; 1 when a command fails or prints no figure line (the round and the command
# are named; its stderr is in round-k.log) or bench_report fails; 2 for a bad command line.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
report="$here/../../tools/bench_report"

usage() {
  echo "usage: bench/peers/rounds.sh ROUNDS OUT_DIR -- OURS_CMD... -- PEER_CMD..." >&2
  [[ $# -eq 0 ]] || echo "rounds.sh: $*" >&2
  exit 2
}

[[ $# -ge 2 ]] || usage "want ROUNDS and OUT_DIR"
rounds=$1
out=$2
shift 2
[[ $rounds =~ ^[1-9][0-9]*$ ]] || usage "ROUNDS: want a whole number >= 1, got '$rounds'"
[[ -n $out ]] || usage "OUT_DIR is empty"
[[ ${1:-} == -- ]] || usage "want -- before OURS_CMD"
shift
ours=()
while [[ $# -gt 0 && $1 != -- ]]; do
  ours+=("$1")
  shift
done
[[ ${#ours[@]} -gt 0 ]] || usage "OURS_CMD is empty"
[[ ${1:-} == -- ]] || usage "want -- between OURS_CMD and PEER_CMD"
shift
peer=("$@")
[[ ${#peer[@]} -gt 0 ]] || usage "PEER_CMD is empty"
[[ -x $report ]] || { echo "rounds.sh: $report is missing or not executable" >&2; exit 1; }

mkdir -p "$out"
rm -f "$out"/round-*.txt "$out"/round-*.log "$out/report.html"

# A figure line: five fields with a number fourth, or a JSON object line (awk code).
# shellcheck disable=SC2016
is_figure='/^[[:space:]]*\{/ || (NF == 5 && $4 ~ /^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/)'

# first_word <file>: the impl of the file's first figure line.
first_word() {
  awk "$is_figure"' {
    if ($0 ~ /^[[:space:]]*\{/) {
      if (match($0, /"impl"[[:space:]]*:[[:space:]]*"[^"]*"/)) {
        s = substr($0, RSTART, RLENGTH); sub(/^"impl"[[:space:]]*:[[:space:]]*"/, "", s)
        sub(/"$/, "", s); print s; exit
      }
      next
    }
    print $1; exit
  }' "$1"
}

ours_name=
peer_name=

# run_side <round> <ours|peer> <cmd...>: appends the command's figure lines to round-k.txt.
run_side() {
  local k=$1 side=$2
  shift 2
  local txt="$out/round-$k.txt" log="$out/round-$k.log"
  local stdout="$out/.round-$k.$side.out" stderr="$out/.round-$k.$side.err"
  local rc=0
  printf '== round %s/%s, %s: %s\n' "$k" "$rounds" "$side" "$*" >>"$log"
  echo "rounds.sh: round $k/$rounds: $side: $*" >&2
  "$@" >"$stdout" 2>"$stderr" </dev/null || rc=$?
  cat "$stderr" >>"$log"
  if [[ $rc -ne 0 ]]; then
    echo "rounds.sh: round $k: the $side command failed (exit $rc): $*; its stderr is in $log" >&2
    tail -n 5 "$stderr" | sed 's/^/  | /' >&2
    rm -f "$stdout" "$stderr"
    exit 1
  fi
  rm -f "$stderr"
  awk "$is_figure" "$stdout" >>"$txt"
  awk "!($is_figure)"' { print "stdout: " $0 }' "$stdout" >>"$log"
  local name
  name=$(first_word "$stdout")
  rm -f "$stdout"
  if [[ -z $name ]]; then
    echo "rounds.sh: round $k: the $side command printed no figure line: $*; see $log" >&2
    exit 1
  fi
  if [[ $side == ours ]]; then
    ours_name=${ours_name:-$name}
  else
    peer_name=${peer_name:-$name}
  fi
}

files=()
for ((k = 1; k <= rounds; k++)); do
  : >"$out/round-$k.txt"
  if ((k % 2 == 1)); then
    run_side "$k" ours "${ours[@]}"
    run_side "$k" peer "${peer[@]}"
  else
    run_side "$k" peer "${peer[@]}"
    run_side "$k" ours "${ours[@]}"
  fi
  files+=("$out/round-$k.txt")
  if [[ $ours_name == "$peer_name" ]]; then
    echo "rounds.sh: both commands print figures as '$ours_name': nothing to tell apart" >&2
    exit 1
  fi
done

"$report" --table --ours="$ours_name" --peer="$peer_name" --out="$out/report.html" \
  "${files[@]}" || { echo "rounds.sh: bench_report failed" >&2; exit 1; }
echo "rounds.sh: $rounds rounds in $out/round-*.txt; chart: $out/report.html" >&2
