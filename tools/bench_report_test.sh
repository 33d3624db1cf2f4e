#!/usr/bin/env bash
# tools/bench_report on the fixtures in tools/testdata/: three rounds of weft and tokio
# (round-1.txt: figure lines, ours first; round-2.jsonl: the harness's JSON lines, the peer
# first; round-3.txt: both kinds mixed, tokio without offload), weft.txt beside tokio.txt
# (no file holds both sides), and the bad inputs. The expected ratios are worked by hand:
#   fib ns_per_task (lower is better: tokio/weft): 481.2/243.1 = 1.979, 240/250 = 0.96,
#     500/200 = 2.5 -> median 1.98, ahead 2/3; medians 243.1 and 481.2
#   spawn_local best (higher is better: weft/tokio): 1662614/2000000 = 0.831,
#     1700000/2000000 = 0.85, 1500000/1600000 = 0.9375 -> 0.85, 0/3
#   pipeline mb_per_s: round 1 holds weft 90, 96, 93 (median 93): 93/80 = 1.1625,
#     85/85 = 1 (not ahead), 70/100 = 0.7 -> 1.00, 1/3; medians 85.0 and 85.0
#   offload calls_per_s: only rounds 1 and 2 hold both: 250000/200000 = 1.25,
#     350000/200000 = 1.75 -> 1.50, 2/2; weft's median over those rounds 300000
#   pooled (weft.txt, tokio.txt): fib 243.1 vs 481.2 -> 1.98, 1/1; pipeline 93 vs 80 -> 1.16
# Runs in Bazel's sandbox (runfiles under $TEST_SRCDIR, outputs under $TEST_TMPDIR) and by
# hand (tools/bench_report_test.sh from anywhere).
set -uo pipefail

if [[ -n ${TEST_SRCDIR:-} ]]; then
  root="$TEST_SRCDIR/${TEST_WORKSPACE:-weft}"
else
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fi
report="$root/tools/bench_report"
data="$root/tools/testdata"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
rounds=("$data/round-1.txt" "$data/round-2.jsonl" "$data/round-3.txt")

failures=0
checks=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
check() { checks=$((checks + 1)); }

# expect_line <text> <line>: the exact line is in the text.
expect_line() {
  check
  grep -qxF -- "$2" <<<"$1" || fail "missing line: $2"$'\n'"in:"$'\n'"$1"
}
# expect_no <text> <fixed string> <what>
expect_no() {
  check
  if grep -qF -- "$2" <<<"$1"; then fail "$3: found '$2'"; fi
}
expect_has() {
  check
  grep -qF -- "$2" <<<"$1" || fail "$3: no '$2'"
}

[[ -x $report ]] || { echo "FAIL: $report is not executable"; exit 1; }

# --- The table over three rounds -----------------------------------------------------------
table=$("$report" --peer=tokio --table "${rounds[@]}" 2>"$tmp/table.err")
rc=$?
check
[[ $rc -eq 0 ]] || fail "--table exited $rc: $(cat "$tmp/table.err")"
expect_line "$table" '| workload | metric | ours median | peer median | ours/peer | rounds ahead |'
expect_line "$table" '| fib | ns_per_task | 243.1 ns | 481.2 ns | 1.98 | 2/3 |'
expect_line "$table" '| spawn_local | best | 1662614 tasks/s | 2000000 tasks/s | 0.85 | 0/3 |'
expect_line "$table" '| pipeline | mb_per_s | 85.0 MB/s | 85.0 MB/s | 1.00 | 1/3 |'
expect_line "$table" '| offload | calls_per_s | 300000 calls/s | 200000 calls/s | 1.50 | 2/2 |'
# Lower is better inverts: weft's fib time is the smaller, and its ratio is above 1; with the
# sides swapped the same rounds give 1/1.979 = 0.51, ahead in 1/3 (round 2).
swapped=$("$report" --ours=tokio --peer=weft --table "${rounds[@]}" 2>/dev/null)
expect_line "$swapped" '| fib | ns_per_task | 481.2 ns | 243.1 ns | 0.51 | 1/3 |'
expect_line "$swapped" '| spawn_local | best | 2000000 tasks/s | 1662614 tasks/s | 1.18 | 3/3 |'
# Informational metrics (fib n, fib tasks, offload work_ns) are not compared; a figure only
# weft has (idle_memory) has no row; a unit that cannot be judged is named on stderr.
expect_no "$table" '| fib | n |' 'informational metric n'
expect_no "$table" '| fib | tasks |' 'informational metric tasks'
expect_no "$table" 'work_ns' 'informational metric work_ns'
expect_no "$table" 'idle_memory' 'a figure of one side only'
expect_no "$table" 'cpu_load' 'a unit that cannot be judged'
expect_has "$(cat "$tmp/table.err")" "skipped timers cpu_load: cannot judge unit 'loadavg'" \
  'stderr note on the unjudged unit'
check
rows=$(grep -c '^| [a-z_]* | [a-z_]* | [0-9]' <<<"$table")
[[ $rows -eq 6 ]] || fail "want 6 rows, got $rows:"$'\n'"$table"

# --- No file holds both sides: pooled, one round ---------------------------------------------
pooled=$("$report" --peer=tokio --table "$data/weft.txt" "$data/tokio.txt" 2>&1)
expect_line "$pooled" '| fib | ns_per_task | 243.1 ns | 481.2 ns | 1.98 | 1/1 |'
expect_line "$pooled" '| pipeline | mb_per_s | 93.0 MB/s | 80.0 MB/s | 1.16 | 1/1 |'

# --- SVG --------------------------------------------------------------------------------------
title='W1-W10 <weft> & tokio'
machine='Test CPU 9000, 2 cores'
date='2031-02-03'
svg="$tmp/report.svg"
"$report" --peer=tokio --out="$svg" --title="$title" --machine="$machine" --date="$date" \
  "${rounds[@]}" 2>/dev/null
rc=$?
check
[[ $rc -eq 0 && -s $svg ]] || fail "--out=report.svg exited $rc or wrote nothing"
check
python3 -c 'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' "$svg" ||
  fail "the SVG is not well-formed XML"
# The texts as a parser sees them (the title's < and & escaped in the file).
texts=$(python3 - "$svg" <<'EOF'
import sys
import xml.etree.ElementTree as E
root = E.parse(sys.argv[1]).getroot()
assert root.tag == '{http://www.w3.org/2000/svg}svg', root.tag
for e in root.iter():
    if e.text and e.text.strip():
        print(e.text.strip())
print('rects', sum(1 for e in root.iter('{http://www.w3.org/2000/svg}rect')))
EOF
)
expect_line "$texts" "$title"
expect_has "$texts" "$machine" 'the SVG footer: machine'
expect_has "$texts" "$date" 'the SVG footer: date'
for label in 'fib ns_per_task' 'spawn_local best' 'pipeline mb_per_s' 'offload calls_per_s' \
  '1.98x (2/3)' '0.85x (0/3)' '1.00x (1/3)' '1.50x (2/2)'; do
  expect_line "$texts" "$label"
done
expect_no "$texts" 'fib tasks' 'an informational bar'
expect_no "$texts" 'work_ns' 'an informational bar'
# Colours: fib ahead (green), spawn_local behind (red).
svgtext=$(cat "$svg")
expect_has "$svgtext" 'fill="#2e8b57"><title>fib ns_per_task' 'fib drawn as ahead'
expect_has "$svgtext" 'fill="#c0392b"><title>spawn_local best' 'spawn_local drawn as behind'
# Deterministic: the same inputs and options, the same bytes.
"$report" --peer=tokio --out="$tmp/again.svg" --title="$title" --machine="$machine" \
  --date="$date" "${rounds[@]}" 2>/dev/null
check
cmp -s "$svg" "$tmp/again.svg" || fail "two runs wrote different SVGs"

# --- HTML -------------------------------------------------------------------------------------
page="$tmp/report.html"
"$report" --peer=tokio --out="$page" --title="$title" --machine="$machine" --date="$date" \
  "${rounds[@]}" 2>/dev/null
rc=$?
check
[[ $rc -eq 0 && -s $page ]] || fail "--out=report.html exited $rc or wrote nothing"
html=$(cat "$page")
expect_has "$html" '<svg xmlns="http://www.w3.org/2000/svg"' 'the inline SVG'
expect_has "$html" '</svg>' 'the inline SVG'
expect_has "$html" '<td>fib</td><td>ns_per_task</td>' 'the HTML table'
expect_has "$html" 'W1-W10 &lt;weft&gt; &amp; tokio' 'the escaped title'
expect_no "$html" '<script' 'a script in the page'
# No external resources: no src= or href=, no address but the SVG namespace.
check
if grep -q '\(src\|href\)=' <<<"$html"; then fail 'a src= or href= in the page'; fi
check
urls=$(grep -o 'https\?://[^" ]*' <<<"$html" | grep -vx 'http://www.w3.org/2000/svg')
[[ -z $urls ]] || fail "addresses in the page: $urls"
# The SVG inside the page is the standalone SVG's (without its XML declaration).
check
python3 - "$page" "$svg" <<'EOF' || fail 'the inline SVG differs from report.svg'
import sys
page, svg = (open(p, encoding='utf-8').read() for p in sys.argv[1:])
inline = page[page.index('<svg'):page.index('</svg>') + len('</svg>')]
sys.exit(0 if inline == svg[svg.index('<svg'):].rstrip('\n') else 1)
EOF

# --- Bad input: one line on stderr naming the problem, exit 2 ----------------------------------
# expect_bad <message part> <args...>
expect_bad() {
  local want=$1
  shift
  local out err rc
  out=$("$report" "$@" 2>"$tmp/bad.err")
  rc=$?
  err=$(cat "$tmp/bad.err")
  check
  [[ $rc -eq 2 ]] || fail "$* exited $rc, not 2 (stderr: $err)"
  check
  [[ $err == *"$want"* ]] || fail "$*: stderr lacks '$want': $err"
  check
  [[ $(wc -l <"$tmp/bad.err") -eq 1 ]] || fail "$*: want one line on stderr, got: $err"
  check
  [[ -z $out ]] || fail "$*: printed on stdout: $out"
}
expect_bad "cannot read $data/missing.txt" --peer=tokio "$data/round-1.txt" "$data/missing.txt"
expect_bad "$data/no-figures.log: no figure lines" --peer=tokio "$data/round-1.txt" \
  "$data/no-figures.log"
expect_bad "no figures of 'go' in any file" --peer=go "${rounds[@]}"
expect_bad "no figures of 'weft' in any file" --peer=asio "$data/asio.txt" "$data/tokio.txt"
expect_bad 'nothing in common between weft and asio' --peer=asio "$data/round-1.txt" \
  "$data/asio.txt"
expect_bad '--peer' --table "${rounds[@]}"
expect_bad 'want a .svg or .html file' --peer=tokio --out="$tmp/report.png" "${rounds[@]}"

if [[ $failures -ne 0 ]]; then
  echo "$failures of $checks checks failed"
  exit 1
fi
echo "bench_report_test: all $checks checks passed"
