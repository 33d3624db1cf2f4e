#!/usr/bin/env bash
# Runs the TLS echo server on 127.0.0.1 and its client against it: first
# trusting the server's CA (must succeed), then without it and with a wrong
# server name (both must fail verification). Then stops the server with
# SIGTERM and checks that it shuts down gracefully (exit 0) within a bounded
# time and removed its PKI. Like ../run_against_itself.sh, with the CA
# certificate the server prints passed to the client. Every step is bounded;
# the server is killed on any exit path.
#
#   run_tls_echo.sh <tls_echo binary> <client flags...>
set -euo pipefail

bin=$1
shift
out=$(mktemp)
err=$(mktemp)
client_err=$(mktemp)
"$bin" server --max-seconds=30 >"$out" 2>"$err" &
pid=$!
trap 'kill -9 "$pid" 2>/dev/null || true; rm -f "$out" "$err" "$client_err"' EXIT

port=
for _ in $(seq 200); do
  port=$(awk '/^LISTEN / { print $2 }' "$out")
  [[ -n $port ]] && break
  kill -0 "$pid" 2>/dev/null || { echo "server died:"; cat "$err"; exit 1; }
  sleep 0.05
done
[[ -n $port ]] || { echo "server printed no LISTEN line"; exit 1; }
ca=$(awk '/^CA / { print $2 }' "$out")
[[ -f $ca ]] || { echo "server printed no CA certificate"; exit 1; }
echo "server on port $port, CA $ca"

timeout 30 "$bin" client --port="$port" --ca="$ca" "$@"

# Verification is on: an unknown CA and a wrong name are refused.
#   expect_refused <what> <client flags...>
expect_refused() {
  local what=$1
  shift
  if timeout 30 "$bin" client --port="$port" --connections=1 --messages=1 "$@" \
      2>"$client_err"; then
    echo "client with $what succeeded; it should not have"
    exit 1
  fi
  grep -q "certificate verify failed" "$client_err" || {
    echo "client with $what failed for another reason:"
    cat "$client_err"
    exit 1
  }
  echo "refused as expected, $what: $(head -n 1 "$client_err")"
}
expect_refused "the system CAs only"
expect_refused "a wrong server name" --ca="$ca" --server-name=wrong.example

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
[[ ! -e $ca ]] || { echo "the server left its PKI behind"; exit 1; }
echo PASS
