// The servers of W8 (tcp_echo) and W9 (http_hello), run by the harness's
// server modes:
//   throughput [--workers=N] echo-server <max_s>
//   throughput [--workers=N] http-server <max_s>
// (shared/perf/README.md's contract: a peer harness starts them, reads the
// port, loads them with its own client, and kills them.)
//
// Both are written the way a weft user writes a server: `weft::start_server`
// on 127.0.0.1 port 0 (a free port), one task per connection with a
// StreamReader / StreamWriter pair, on a Runtime of `workers` threads.
//  - echo: read(64 KiB) whatever has arrived, write it back, drain.
//  - http: HTTP/1.1 keep-alive; every request (any method and path) is
//    answered `200 OK` with the body `hello`. The head is read with
//    readuntil("\r\n\r\n") (at most 8 KiB: 431 and close beyond), a
//    Content-Length body is read and ignored, `Connection: close` and
//    HTTP/1.0 without keep-alive close after the answer. Pipelined requests
//    are answered in order.
//
// Lifecycle: once listening, prints `LISTEN <port>` on stdout and flushes it
// (nothing else goes to stdout). Serves until SIGTERM / SIGINT or until
// `max_seconds` have passed, then stops gracefully: stops accepting, gives
// open connections 200 ms to end, cancels the rest, prints one summary line
// on stderr (connections, and messages or requests answered) and returns 0.
// SIGKILL is fine too: the server has nothing to flush.
#pragma once

#include <cstdint>

namespace weft::bench {

enum class ServerKind { kEcho, kHttp };

// Runs the server in this process (see the file comment); returns the exit
// status for main. std::invalid_argument if max_seconds is not in
// (0, 86400] or workers is 0; OSError if it cannot listen.
int run_server(ServerKind kind, double max_seconds, std::uint32_t workers);

}  // namespace weft::bench
