#include "weft/bench/servers.h"

#include <signal.h>
#include <strings.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

#include "weft/weft.h"

namespace weft::bench {
namespace {

using namespace std::chrono_literals;

// Totals for the summary line. Each connection counts locally and adds its
// totals once, when it ends: the hot path touches no shared cache line.
// Relaxed: read after wait_closed(), which joins every connection task (the
// joins order the additions before the reads).
struct ServerTotals {
  std::atomic<std::uint64_t> answers{0};  // echo: reads echoed; http: requests answered
  std::atomic<std::uint64_t> bytes{0};    // echo: bytes echoed; http: bytes of the answers
};

// Adds one connection's counts to the totals when it ends, however it ends
// (EOF, an error, cancellation).
struct ConnectionCounts {
  explicit ConnectionCounts(ServerTotals* t) : totals(t) {}
  ConnectionCounts(const ConnectionCounts&) = delete;
  ConnectionCounts& operator=(const ConnectionCounts&) = delete;
  ~ConnectionCounts() {
    totals->answers.fetch_add(answers, std::memory_order_relaxed);
    totals->bytes.fetch_add(bytes, std::memory_order_relaxed);
  }
  ServerTotals* totals;
  std::uint64_t answers = 0;
  std::uint64_t bytes = 0;
};

// --- echo ---------------------------------------------------------------------

Coro<void> echo_connection(StreamReader r, StreamWriter w, ServerTotals* totals) {
  ConnectionCounts counts(totals);
  try {
    for (;;) {
      std::string data = co_await r.read(64 * 1024);
      if (data.empty()) break;  // EOF: the client is done
      w.write(data);
      co_await w.drain();
      ++counts.answers;
      counts.bytes += data.size();
    }
    w.close();
    co_await w.wait_closed();
  } catch (const OSError&) {
    // The client reset or vanished: its connection ends, the server goes on.
  }
}

// --- http ---------------------------------------------------------------------

constexpr std::size_t kMaxHead = 8 * 1024;
constexpr long kMaxBody = 1 << 20;

constexpr std::string_view kHello =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
constexpr std::string_view kHelloClose =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
    "Connection: close\r\n\r\nhello";
constexpr std::string_view kTooLarge =
    "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n"
    "Connection: close\r\n\r\n";
constexpr std::string_view kBadRequest =
    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// The value of header `name` in a request head ("" if absent), trimmed.
std::string_view header(std::string_view head, std::string_view name) {
  std::size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos + 2 < head.size()) {
    const std::size_t start = pos + 2;
    std::size_t end = head.find("\r\n", start);
    if (end == std::string_view::npos) end = head.size();
    std::string_view line = head.substr(start, end - start);
    const std::size_t colon = line.find(':');
    if (colon == name.size() && iequals(line.substr(0, colon), name)) {
      std::string_view v = line.substr(colon + 1);
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
      return v;
    }
    pos = end;
  }
  return {};
}

// Content-Length: its value, or -1 if malformed or above kMaxBody.
long content_length(std::string_view v) {
  if (v.empty()) return 0;
  long n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
    if (n > kMaxBody) return -1;
  }
  return n;
}

Coro<void> http_connection(StreamReader r, StreamWriter w, ServerTotals* totals) {
  ConnectionCounts counts(totals);
  try {
    for (;;) {
      std::string head;
      bool too_large = false;
      try {
        head = co_await r.readuntil("\r\n\r\n");
      } catch (const IncompleteReadError&) {
        break;  // the client closed, between requests or mid-head
      } catch (const LimitOverrunError&) {
        too_large = true;
      }
      if (too_large) {
        w.write(kTooLarge);
        break;
      }
      std::string_view request_line = std::string_view(head).substr(0, head.find("\r\n"));
      const bool http10 = request_line.ends_with("HTTP/1.0");
      const std::string_view connection = header(head, "Connection");
      const bool close =
          iequals(connection, "close") || (http10 && !iequals(connection, "keep-alive"));
      const long body = content_length(header(head, "Content-Length"));
      if (body < 0) {
        w.write(kBadRequest);
        break;
      }
      if (body > 0) (void)co_await r.readexactly(static_cast<std::size_t>(body));  // ignored
      const std::string_view answer = close ? kHelloClose : kHello;
      w.write(answer);
      co_await w.drain();
      ++counts.answers;
      counts.bytes += answer.size();
      if (close) break;
    }
    w.close();
    co_await w.wait_closed();
  } catch (const OSError&) {
    // The client reset or vanished mid-request.
  } catch (const IncompleteReadError&) {
    // EOF inside a request body.
  }
}

// --- lifecycle ------------------------------------------------------------------

Coro<void> forward_signal(Future<int> stop) {
  const int sig = co_await wait_signal(SIGINT, SIGTERM);
  stop.try_set_result(sig);
}

Coro<int> serve_main(ServerKind kind, Duration max_time) {
  ServerTotals totals;  // outlives every connection: wait_closed() joins them below
  ServerTotals* t = &totals;
  ConnectionHandler handler;
  ServerOptions options;
  if (kind == ServerKind::kEcho) {
    handler = [t](StreamReader r, StreamWriter w) { return echo_connection(r, w, t); };
  } else {
    handler = [t](StreamReader r, StreamWriter w) { return http_connection(r, w, t); };
    options.stream.limit = kMaxHead;  // the largest request head accepted
  }
  Server server = co_await start_server(std::move(handler), "127.0.0.1", 0, options);
  std::printf("LISTEN %u\n", static_cast<unsigned>(server.port()));
  std::fflush(stdout);

  Future<int> stop;  // the signal's number, or 0 for the time limit
  Task<void> signals = create_task(forward_signal(stop));
  TimerHandle limit = call_later(max_time, [stop] { stop.try_set_result(0); });
  const int why = co_await stop;
  signals.cancel();
  limit.cancel();

  server.close();
  TimerHandle grace = call_later(200ms, [s = &server] { s->close_clients(); });
  co_await server.wait_closed();
  grace.cancel();
  std::fprintf(stderr, "%s-server: stopped by %s: %llu connections, %llu %s, %llu bytes\n",
               kind == ServerKind::kEcho ? "echo" : "http",
               why != 0 ? strsignal(why) : "its time limit",
               static_cast<unsigned long long>(server.accepted_connections()),
               static_cast<unsigned long long>(totals.answers.load(std::memory_order_relaxed)),
               kind == ServerKind::kEcho ? "reads echoed" : "requests answered",
               static_cast<unsigned long long>(totals.bytes.load(std::memory_order_relaxed)));
  co_return 0;
}

}  // namespace

int run_server(ServerKind kind, double max_seconds, std::uint32_t workers) {
  if (!(max_seconds > 0 && max_seconds <= 86400)) {
    throw std::invalid_argument("server: max_s must be in (0, 86400] seconds, got " +
                                std::to_string(max_seconds));
  }
  if (workers == 0) throw std::invalid_argument("server: workers must be positive");
  RuntimeOptions ro;
  ro.workers = workers;
  Runtime rt(std::move(ro));
  return rt.run(serve_main(
      kind, std::chrono::duration_cast<Duration>(std::chrono::duration<double>(max_seconds))));
}

}  // namespace weft::bench
