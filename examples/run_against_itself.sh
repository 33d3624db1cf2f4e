#!/usr/bin/env bash
# Runs an example's server on 127.0.0.1, its client against it, then stops
# the server with SIGTERM and checks that it shuts down gracefully (exit 0)
# within a bounded time, and that a malformed flag is rejected. Every step is bounded; the server is killed on any
# exit path.
#
#   run_against_itself.sh <binary> <client flags...>
set -euo pipefail

bin=$1
shift
out=$(mktemp)
err=$(mktemp)
"$bin" server --max-seconds=30 >"$out" 2>"$err" &
pid=$!
trap 'kill -9 "$pid" 2>/dev/null || true; rm -f "$out" "$err"' EXIT

port=
for _ in $(seq 200); do
  port=$(awk '/^LISTEN / { print $2 }' "$out")
  [[ -n $port ]] && break
  kill -0 "$pid" 2>/dev/null || { echo "server died:"; cat "$err"; exit 1; }
  sleep 0.05
done
[[ -n $port ]] || { echo "server printed no LISTEN line"; exit 1; }
echo "server on port $port"

timeout 30 "$bin" client --port="$port" "$@"

# Bad input is a clear error (exit 1, the flag named), not a silent default.
bad_status=0
bad=$(timeout 10 "$bin" client --port="$port" --connections=many 2>&1) || bad_status=$?
[[ $bad_status -eq 1 && $bad == *"--connections: expected a whole number, got 'many'"* ]] ||
  { echo "bad flag not rejected (exit $bad_status): $bad"; exit 1; }

kill -TERM "$pid"
for _ in $(seq 100); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
if kill -0 "$pid" 2>/dev/null; then
  echo "server did not stop within 5 s of SIGTERM"
  exit 1
fi
status=0
wait "$pid" || status=$?
cat "$err"
[[ $status -eq 0 ]] || { echo "server exited with $status"; exit 1; }
grep -q "stopped by" "$err" || { echo "no graceful-shutdown message"; exit 1; }
echo PASS
