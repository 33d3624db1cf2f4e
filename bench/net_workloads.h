// W8 tcp_echo and W9 http_hello (shared/perf/README.md): a weft server,
// started as a child process in the contract's server mode, measured over
// 127.0.0.1 by a client outside it.
//
// Why a child process (/proc/self/exe <mode>) rather than a server in this
// process: the figures then measure exactly what a peer harness measures
// when it runs `<bench> echo-server <max_s>` beside Tokio's or Go's server
// (same binary, same mode, same start-up), and the server mode is exercised
// by every W8/W9 run. The client cannot share anything with the server
// (allocator, Abseil's global deadlock graph, the runtime's threads), and a
// server crash is reported as its exit status, not as a crash of the
// harness. The cost, a process start (~10 ms), is outside the measured span.
// Each function starts the server, reads its `LISTEN <port>` line, runs the
// client, then stops the server (SIGTERM, then SIGKILL after a grace
// period; always reaped: see ChildProcess) on every path, exceptions
// included, and reports how the server exited.
//
// W8's client is run_echo_load (echo_load.h); W9's is wrk
// (`wrk -t1 -c64 -d5s --latency http://127.0.0.1:<port>/`), whose report is
// parsed by parse_wrk_output.
//
// Thread safety: the functions are self-contained; call them from a thread
// that is not running a weft loop.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "weft/bench/echo_load.h"

namespace weft::bench {

// How to start the harness binary in a server mode:
//   <exe> <flags...> echo-server|http-server <max_s>
struct ServerCommand {
  std::string exe;                 // /proc/self/exe in the harness; its path in tests
  std::vector<std::string> flags;  // e.g. --workers=2
};

// --- W8 tcp_echo ---------------------------------------------------------------

struct TcpEchoResult {
  EchoLoadResult load;
  std::uint16_t port = 0;
  int server_status = -1;  // the server's wait status (0: it exited cleanly on SIGTERM)
};
// Starts `echo-server`, runs the load generator against it (`load.port` is
// set here), stops the server.
TcpEchoResult tcp_echo(const ServerCommand& server, EchoLoadOptions load);

// --- W9 http_hello -------------------------------------------------------------

struct WrkOptions {
  std::string wrk = "wrk";  // a name looked up in $PATH, or a path
  std::uint32_t threads = 1;
  std::uint32_t connections = 64;
  std::uint32_t seconds = 5;  // wrk's -d (whole seconds)
};

// What wrk reported.
struct WrkReport {
  double req_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
  std::uint64_t requests = 0;       // "N requests in ..."
  std::uint64_t socket_errors = 0;  // connect + read + write + timeout
  std::uint64_t non_2xx = 0;        // "Non-2xx or 3xx responses"
};
// Parses wrk's report (run with --latency). std::runtime_error naming the
// missing or malformed line (Requests/sec, the 50% and 99% lines, requests).
WrkReport parse_wrk_output(const std::string& text);

struct HttpHelloResult {
  WrkReport wrk;
  std::uint16_t port = 0;
  int server_status = -1;
};
// Starts `http-server`, runs wrk against it, stops the server.
// std::runtime_error if wrk is not found (say so first: see find_in_path),
// fails, or prints no report.
HttpHelloResult http_hello(const ServerCommand& server, const WrkOptions& wrk);

}  // namespace weft::bench
