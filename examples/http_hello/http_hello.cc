// A minimal HTTP/1.1 keep-alive server answering "hello" (the W9 workload),
// and a client that checks it.
//
//   http_hello server [--port=0] [--workers=0] [--max-seconds=60]
//       Listens on 127.0.0.1 and prints "LISTEN <port>". Every request, on
//       any path, gets "200 OK" with the body "hello". Connections stay open
//       (HTTP/1.1 keep-alive, pipelining works) unless the client asks for
//       "Connection: close" or speaks HTTP/1.0 without keep-alive. A request
//       head over 8 KiB gets 431 and the connection closes. Stops gracefully
//       on SIGINT / SIGTERM (or after --max-seconds).
//   http_hello client --port=N [--connections=4] [--requests=100]
//       Sends the requests over keep-alive connections (half of them
//       pipelined two at a time) and checks each response.
#include <signal.h>
#include <strings.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "examples/example_support.h"
#include "weft/weft.h"

namespace {

using namespace std::chrono_literals;

// The value of header `name` in a request or response head ("" if absent).
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

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// --- server -----------------------------------------------------------------

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

weft::Coro<void> handle_http(weft::StreamReader r, weft::StreamWriter w) {
  for (;;) {
    std::string head;
    bool too_large = false;
    try {
      head = co_await r.readuntil("\r\n\r\n");
    } catch (const weft::IncompleteReadError&) {
      break;  // the client closed (between requests, or mid-head)
    } catch (const weft::LimitOverrunError&) {
      too_large = true;
    }
    if (too_large) {
      w.write(kTooLarge);
      break;
    }
    const std::size_t line_end = head.find("\r\n");
    std::string_view request_line = std::string_view(head).substr(0, line_end);
    const bool http10 = request_line.ends_with("HTTP/1.0");
    std::string_view connection = header(head, "Connection");
    const bool close = iequals(connection, "close") || (http10 && !iequals(connection, "keep-alive"));
    std::string_view length = header(head, "Content-Length");
    if (!length.empty()) {
      char* end = nullptr;
      const long n = std::strtol(std::string(length).c_str(), &end, 10);
      if (n < 0 || n > (1 << 20)) {
        w.write(kBadRequest);
        break;
      }
      (void)co_await r.readexactly(static_cast<std::size_t>(n));  // the body is ignored
    }
    w.write(close ? kHelloClose : kHello);
    co_await w.drain();
    if (close) break;
  }
  w.close();
  co_await w.wait_closed();
}

weft::Coro<void> forward_signal(weft::Future<int> stop) {
  int sig = co_await weft::wait_signal(SIGINT, SIGTERM);
  stop.try_set_result(sig);
}

weft::Coro<int> run_server(std::uint16_t port, long max_seconds) {
  weft::ServerOptions options;
  options.stream.limit = 8 * 1024;  // the largest request head we accept
  weft::Server server = co_await weft::start_server(handle_http, "127.0.0.1", port, options);
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
  server.close();
  weft::TimerHandle grace = weft::call_later(1s, [s = &server] { s->close_clients(); });
  co_await server.wait_closed();
  grace.cancel();
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
      return weft::run(run_server(static_cast<std::uint16_t>(f.number("port", 0)),
                                  f.number("max-seconds", 60)),
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
