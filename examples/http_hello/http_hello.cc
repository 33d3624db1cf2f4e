// A minimal HTTP/1.1 keep-alive "hello" server and a client that checks it:
// a template for a small production server on weft streams.
//
//   http_hello server [--port=0] [--workers=0] [--max-seconds=60]
//                     [--header-timeout=10s] [--idle-timeout=60s]
//       Listens on 127.0.0.1 and prints "LISTEN <port>". Every well-formed
//       request, on any path, gets "200 OK" with the body "hello".
//       Connections stay open (HTTP/1.1 keep-alive, pipelining works) unless
//       the client asks for "Connection: close" or speaks HTTP/1.0 without
//       keep-alive. Stops gracefully on SIGINT / SIGTERM (or after
//       --max-seconds).
//       Malformed or refused heads (http_head.h says which and why) get 400,
//       413, 431 (over 8 KiB or 100 fields), 501 or 505, and the connection
//       closes. Durations are seconds ("10", "0.5") or "250ms" / "10s".
//       --header-timeout: a request head must arrive whole within this
//         time of its first byte; a new connection's first head within
//         this time of the accept. Late: "408 Request Timeout" if part of
//         the head came, else a quiet close (slowloris).
//       --idle-timeout: a kept-alive connection waiting this long for its
//         next request, or silent this long in a body, is closed quietly
//         (StreamOptions::read_timeout).
//   http_hello client --port=N [--connections=4] [--requests=100]
//       Sends the requests over keep-alive connections (half of them
//       pipelined two at a time) and checks each response.
#include <signal.h>
#include <strings.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "examples/example_support.h"
#include "examples/http_hello/http_head.h"
#include "weft/weft.h"

namespace {

using namespace std::chrono_literals;

// The value of header `name` in a response head ("" if absent): the
// client's check of the server's answers, not a request parser.
std::string_view header(std::string_view head, std::string_view name) {
  std::size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos + 2 < head.size()) {
    std::size_t start = pos + 2;
    std::size_t end = head.find("\r\n", start);
    if (end == std::string_view::npos) end = head.size();
    std::string_view line = head.substr(start, end - start);
    std::size_t colon = line.find(':');
    if (colon == name.size() && strncasecmp(line.data(), name.data(), name.size()) == 0) {
      std::string_view v = line.substr(colon + 1);
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
      return v;
    }
    pos = end;
  }
  return {};
}

// --- server -----------------------------------------------------------------

constexpr std::string_view kHello =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
constexpr std::string_view kHelloClose =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
    "Connection: close\r\n\r\nhello";

struct ServerConfig {
  http_hello::HeadLimits limits;
  weft::Duration header_timeout = 10s;
  weft::Duration idle_timeout = 60s;
};

enum class HeadRead {
  kComplete,  // `head` holds a whole head
  kClosed,    // the client left (EOF) before or inside a head, or was silent before one: no answer
  kTimedOut,  // the head began but did not complete in time: 408
  kTooLarge,  // 431
};

// Reads the next request head into `head` under the header timeout (a read
// deadline, so that a client trickling bytes cannot stretch it), in one
// readuntil once its first byte is there. Waiting for that byte on a
// kept-alive connection is bounded by the idle timeout instead (the
// stream's read_timeout); for a connection's first request, by the header
// timeout from the accept.
weft::Coro<HeadRead> read_head(weft::StreamReader& r, std::string& head,
                               const ServerConfig& config, bool first_request) {
  if (first_request) r.set_read_deadline(weft::get_running_loop().time() + config.header_timeout);
  std::string first;
  try {
    first = co_await r.read(1);
  } catch (const weft::TimeoutError&) {
    co_return HeadRead::kClosed;  // silent: an idle client, or one that never spoke
  }
  if (first.empty()) co_return HeadRead::kClosed;  // EOF between requests
  if (!first_request) {
    r.set_read_deadline(weft::get_running_loop().time() + config.header_timeout);
  }
  head.assign(first);  // keeps the connection's buffer
  try {
    for (std::size_t skipped = 0;;) {
      // No separator can start at `first`'s byte unless it begins an empty
      // line, which is skipped below: reading the rest on its own misses
      // no head's end.
      std::string rest = co_await r.readuntil(http_hello::kHeadEnds);
      head.append(rest);
      const std::size_t empty = http_hello::leading_empty_lines(head);
      if (empty < head.size()) co_return HeadRead::kComplete;
      // Nothing but empty lines (RFC 9112 2.2: skipped), within the size limit.
      skipped += empty;
      if (skipped > config.limits.max_head_bytes) co_return HeadRead::kTooLarge;
      head.clear();
    }
  } catch (const weft::IncompleteReadError&) {
    co_return HeadRead::kClosed;  // the client left mid-head
  } catch (const weft::TimeoutError&) {
    co_return HeadRead::kTimedOut;
  } catch (const weft::LimitOverrunError&) {
    co_return HeadRead::kTooLarge;
  }
}

// After an error answer, nginx's lingering close: stop sending, then read
// and drop what the client still sends, for a second at most. Closing with
// unread data would make the kernel reset the connection, and a reset can
// overtake the answer, so that the client never reads why it was refused.
weft::Coro<void> linger(weft::StreamReader& r, weft::StreamWriter& w) {
  w.write_eof();
  r.set_read_deadline(weft::get_running_loop().time() + 1s);
  for (std::size_t dropped = 0; dropped < (1u << 20);) {
    std::string data = co_await r.read(64 * 1024);
    if (data.empty()) break;
    dropped += data.size();
  }
}

weft::Coro<void> serve_requests(const ServerConfig& config, weft::StreamReader& r,
                                weft::StreamWriter& w) {
  std::string head;  // reused: its buffer stays allocated
  for (bool first = true;; first = false) {
    const HeadRead got = co_await read_head(r, head, config, first);
    if (got == HeadRead::kClosed) co_return;
    r.set_read_deadline(weft::TimePoint::max());
    std::variant<http_hello::Request, http_hello::HeadError> parsed =
        http_hello::HeadError{got == HeadRead::kTimedOut ? 408 : 431, "not read"};
    if (got == HeadRead::kComplete) parsed = http_hello::parse_head(head, config.limits);
    if (const auto* refused = std::get_if<http_hello::HeadError>(&parsed)) {
      w.write(http_hello::error_response(refused->status));
      co_await linger(r, w);
      co_return;
    }
    const http_hello::Request& req = std::get<http_hello::Request>(parsed);
    if (req.content_length > 0) {
      (void)co_await r.readexactly(req.content_length);  // the body is ignored
    }
    w.write(req.keep_alive ? kHello : kHelloClose);
    co_await w.drain();
    if (!req.keep_alive) co_return;
  }
}

weft::Coro<void> handle_http(ServerConfig config, weft::StreamReader r, weft::StreamWriter w) {
  // How a client normally ends a connection, none of them a bug: it resets
  // it or stops reading (ConnectionError: reset, broken pipe), leaves in the
  // middle of a body (IncompleteReadError), or goes silent in one past the
  // idle timeout (TimeoutError). Anything else escapes, to weft's report.
  try {
    co_await serve_requests(config, r, w);
  } catch (const weft::ConnectionError&) {
  } catch (const weft::IncompleteReadError&) {
  } catch (const weft::TimeoutError&) {
  }
  w.close();
  co_await w.wait_closed();
}

weft::Coro<void> forward_signal(weft::Future<int> stop) {
  int sig = co_await weft::wait_signal(SIGINT, SIGTERM);
  stop.try_set_result(sig);
}

weft::Coro<int> run_server(std::uint16_t port, long max_seconds, ServerConfig config) {
  weft::ServerOptions options;
  // No line is buffered past the largest head, and a silent connection ends.
  options.stream.limit = config.limits.max_head_bytes;
  options.stream.read_timeout = config.idle_timeout;
  weft::Server server = co_await weft::start_server(std::bind_front(handle_http, config),
                                                    "127.0.0.1", port, options);
  std::printf("LISTEN %u\n", server.port());
  std::fflush(stdout);

  weft::Future<int> stop;
  auto signals = weft::create_task(forward_signal(stop));
  weft::TimerHandle limit =
      weft::call_later(std::chrono::seconds(max_seconds), [stop] { stop.try_set_result(0); });
  const int why = co_await stop;
  signals.cancel();
  limit.cancel();

  // Graceful: stop accepting; idle keep-alive connections get a second.
  co_await weft_examples::close_gracefully(server, 1s);
  std::fprintf(stderr, "http_hello server: stopped by %s after %llu connections\n",
               why ? strsignal(why) : "the time limit",
               static_cast<unsigned long long>(server.accepted_connections()));
  co_return 0;
}

// --- client -----------------------------------------------------------------

// Reads one response and checks it is our hello.
weft::Coro<void> expect_hello(weft::StreamReader& r) {
  std::string head = co_await r.readuntil("\r\n\r\n");
  if (head.rfind("HTTP/1.1 200 OK\r\n", 0) != 0) throw std::runtime_error("bad status: " + head);
  std::string_view length = header(head, "Content-Length");
  std::string body = co_await r.readexactly(std::strtoul(std::string(length).c_str(), nullptr, 10));
  if (body != "hello") throw std::runtime_error("bad body: " + body);
}

weft::Coro<long> client_connection(std::uint16_t port, long requests) {
  auto [r, w] = co_await weft::open_connection("127.0.0.1", port);
  const std::string req = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  long ok = 0;
  for (long i = 0; i < requests;) {
    if (i % 2 == 0 && i + 1 < requests) {
      w.write(req + req);  // two pipelined requests
      co_await w.drain();
      co_await expect_hello(r);
      co_await expect_hello(r);
      i += 2;
      ok += 2;
    } else {
      w.write(req);
      co_await w.drain();
      co_await expect_hello(r);
      ++i;
      ++ok;
    }
  }
  // Last, a request asking to close: the server answers, then closes.
  w.write("GET /bye HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  co_await w.drain();
  co_await expect_hello(r);
  if (!(co_await r.read()).empty()) throw std::runtime_error("data after Connection: close");
  w.close();
  co_return ok + 1;
}

weft::Coro<int> run_client(std::uint16_t port, long connections, long requests) {
  std::vector<weft::Task<long>> tasks;
  for (long c = 0; c < connections; ++c) {
    tasks.push_back(weft::create_task(client_connection(port, requests)));
  }
  co_return co_await weft_examples::join_clients(std::move(tasks), "http_hello client", "requests");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s server|client [--flags]\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  try {
    const weft_examples::Flags f(argc, argv, 2);
    weft::RuntimeOptions options;
    options.workers = static_cast<std::uint32_t>(f.number("workers", 0));
    if (mode == "server") {
      ServerConfig config;
      config.header_timeout = f.duration("header-timeout", config.header_timeout);
      config.idle_timeout = f.duration("idle-timeout", config.idle_timeout);
      return weft::run(run_server(static_cast<std::uint16_t>(f.number("port", 0)),
                                  f.number("max-seconds", 60), config),
                       std::move(options));
    }
    if (mode == "client") {
      return weft::run(run_client(static_cast<std::uint16_t>(f.number("port", 0)),
                                  f.number("connections", 4), f.number("requests", 100)),
                       std::move(options));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
  std::fprintf(stderr, "unknown mode '%s'\n", mode.c_str());
  return 2;
}
