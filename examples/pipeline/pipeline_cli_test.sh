#!/usr/bin/env bash
# The pipeline program end to end, on generated inputs (127.0.0.1 only; every
# process it starts is stopped):
#  - compress through the built-in sink and through a sink process, then
#    decompress what the sink stored and compare it with the input;
#  - Ctrl-C in the middle: exit 130, and the sink holds a prefix of whole chunks;
#  - a sink that resets: a one-line error naming the sink, exit 1; a built-in sink that
#    cannot store (a full disk): its own error, exit 1;
#  - bad inputs and command lines: one-line errors, nothing half-written.
#   pipeline_cli_test.sh PATH_TO_PIPELINE
set -uo pipefail

bin=$1
tmp=$(mktemp -d "${TEST_TMPDIR:-/tmp}/pipeline.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# start_sink FLAGS...: a sink process in the background; sets sink_pid, port and the
# files sink_out and sink_err. Each sink gets files of its own: polling a reused file
# could read the previous sink's LISTEN line before the new process truncates it.
sinks=0
start_sink() {
  sinks=$((sinks + 1))
  sink_out="$tmp/sink$sinks.out" sink_err="$tmp/sink$sinks.err"
  "$bin" sink --max-seconds=120 "$@" >"$sink_out" 2>"$sink_err" &
  sink_pid=$!
  pids+=("$sink_pid")
  port=
  for _ in $(seq 200); do
    port=$(awk '/^LISTEN /{print $2}' "$sink_out" 2>/dev/null)
    [[ -n $port ]] && return 0
    sleep 0.05
  done
  fail "the sink printed no LISTEN line: $(cat "$sink_err")"
}

# expect_error STATUS TEXT COMMAND...: the command exits with STATUS and its stderr has
# TEXT on one line.
expect_error() {
  local want=$1 text=$2
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  [[ $rc == "$want" ]] || fail "$* exited $rc, not $want: $(cat "$tmp/err")"
  grep -qF -- "$text" "$tmp/err" || fail "$*: stderr lacks '$text': $(cat "$tmp/err")"
  [[ $(wc -l <"$tmp/err") == 1 ]] || fail "$*: want one line of error, got: $(cat "$tmp/err")"
}

size_of() { stat -c %s "$1"; }

# Text that compresses well, then base64 noise that does not.
seq 1 600000 >"$tmp/in"
head -c 1500000 /dev/urandom | base64 >>"$tmp/in"
in_size=$(size_of "$tmp/in")

# --- the built-in sink ------------------------------------------------------------------
out=$("$bin" compress --input="$tmp/in" --output="$tmp/a.wz" --chunk-size=256K --in-flight=4 \
  2>"$tmp/err") || fail "compress: $(cat "$tmp/err")"
chunks=$(((in_size + 262143) / 262144))
[[ $out == "OK $chunks chunks $in_size bytes" ]] || fail "compress printed '$out'"
grep -q "MB/s" "$tmp/err" || fail "no summary line: $(cat "$tmp/err")"
out=$("$bin" decompress --input="$tmp/a.wz" --output="$tmp/a.out") || fail "decompress"
[[ $out == "OK $chunks frames $in_size bytes" ]] || fail "decompress printed '$out'"
cmp -s "$tmp/in" "$tmp/a.out" || fail "the built-in sink's round trip changed the bytes"

# --- a sink process ---------------------------------------------------------------------
start_sink --output="$tmp/b.wz"
"$bin" compress --input="$tmp/in" --sink="127.0.0.1:$port" --chunk-size=64K --level=1 \
  >/dev/null 2>"$tmp/err" || fail "compress to a sink process: $(cat "$tmp/err")"
wait "$sink_pid" || fail "the sink failed: $(cat "$sink_err")"
grep -qx "OK $(((in_size + 65535) / 65536)) frames $in_size bytes" "$sink_out" ||
  fail "the sink printed: $(cat "$sink_out")"
"$bin" decompress --input="$tmp/b.wz" --output="$tmp/b.out" >/dev/null || fail "decompress b"
cmp -s "$tmp/in" "$tmp/b.out" || fail "the sink process's round trip changed the bytes"

# --- Ctrl-C in the middle: a slow sink keeps the pipeline busy --------------------------
head -c 24000000 /dev/urandom | base64 >"$tmp/big"
big_size=$(size_of "$tmp/big")
start_sink --output="$tmp/c.wz" --read-pause=20ms
"$bin" compress --input="$tmp/big" --sink="127.0.0.1:$port" --chunk-size=64K --level=1 \
  >/dev/null 2>"$tmp/err" &
compress_pid=$!
pids+=("$compress_pid")
for _ in $(seq 400); do
  [[ -s $tmp/c.wz ]] && break
  sleep 0.025
done
[[ -s $tmp/c.wz ]] || fail "the slow sink stored nothing"
kill -INT "$compress_pid"
wait "$compress_pid"
rc=$?
[[ $rc == 130 ]] || fail "interrupted compress exited $rc, not 130: $(cat "$tmp/err")"
grep -q "interrupted by Interrupt: the sink has the first [0-9]* whole chunks" "$tmp/err" ||
  fail "no word of what was finished: $(cat "$tmp/err")"
wait "$sink_pid" || fail "the sink failed after the interrupt: $(cat "$sink_err")"
"$bin" decompress --input="$tmp/c.wz" --output="$tmp/c.out" >/dev/null ||
  fail "what the sink stored after Ctrl-C is not whole frames"
got=$(size_of "$tmp/c.out")
((got > 0 && got < big_size)) || fail "after Ctrl-C the sink holds $got of $big_size bytes"
((got % 65536 == 0)) || fail "after Ctrl-C the sink holds $got bytes: not whole 64K chunks"
head -c "$got" "$tmp/big" | cmp -s - "$tmp/c.out" || fail "after Ctrl-C: not a prefix of the input"
announced=$(sed -n 's/.*the first \([0-9]*\) whole chunks.*/\1/p' "$tmp/err")
((announced * 65536 == got)) || fail "said $announced chunks, the sink holds $((got / 65536))"

# --- a sink that resets the connection early -------------------------------------------
start_sink --close-after=100000
expect_error 1 "writing to the sink 127.0.0.1:$port" \
  "$bin" compress --input="$tmp/big" --sink="127.0.0.1:$port" --chunk-size=64K --level=1
wait "$sink_pid" || fail "the resetting sink failed: $(cat "$sink_err")"

# --- the built-in sink cannot store: its error is the one reported -----------------------
expect_error 1 "the sink failed: " "$bin" compress --input="$tmp/in" --output=/dev/full
grep -q "No space left on device" "$tmp/err" || fail "the disk-full cause is not named: $(cat "$tmp/err")"

# --- bad inputs and command lines -------------------------------------------------------
expect_error 1 "cannot read the input $tmp/nope: " \
  "$bin" compress --input="$tmp/nope" --output="$tmp/never.wz"
[[ ! -e $tmp/never.wz ]] || fail "a missing input still created the output"
expect_error 1 "cannot read the input $tmp: " "$bin" compress --input="$tmp"
expect_error 2 "--chunk-size=0: a chunk must be at least 1 byte" \
  "$bin" compress --input="$tmp/in" --chunk-size=0
expect_error 2 "--chunk-size=1G: at most 64M" "$bin" compress --input="$tmp/in" --chunk-size=1G
expect_error 2 "--chunk-size=lots: expected a size" "$bin" compress --input="$tmp/in" --chunk-size=lots
expect_error 2 "--in-flight=0: want 1 to 1024" "$bin" compress --input="$tmp/in" --in-flight=0
expect_error 2 "unknown flag --chunksize" "$bin" compress --input="$tmp/in" --chunksize=1M
expect_error 2 "--sink=nowhere: expected HOST:PORT" "$bin" compress --input="$tmp/in" --sink=nowhere
expect_error 1 "cannot connect to the sink 127.0.0.1:1: " \
  "$bin" compress --input="$tmp/in" --sink=127.0.0.1:1
expect_error 2 "compress needs --input=PATH" "$bin" compress
head -c 1000 "$tmp/a.wz" >"$tmp/cut.wz"
expect_error 1 "ends inside a frame" "$bin" decompress --input="$tmp/cut.wz" --output="$tmp/cut.out"
[[ ! -e $tmp/cut.out && ! -e $tmp/cut.out.partial ]] || fail "a failed decompress left a file"
expect_error 1 "not a pipeline stream" "$bin" decompress --input="$tmp/in" --output="$tmp/x.out"
[[ ! -e $tmp/x.out ]] || fail "decompressing a text file left an output"
expect_error 2 "unknown mode 'squash'" "$bin" squash

echo "PASS"
