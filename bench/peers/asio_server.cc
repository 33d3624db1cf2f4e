// W8's and W9's servers on Boost.Asio, for same-run comparisons through
// `throughput --server=...` (bench/README.md): `asio_server
// echo-server|http-server <max_s>` binds 127.0.0.1 on a free port, prints
// `LISTEN <port>`, serves until it is killed or max_s seconds pass. One
// io_context run by two threads (Asio's usual multi-threaded setup), a C++20
// coroutine per connection.
// Before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it.
#include <utility>

#include <boost/asio.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

namespace asio = boost::asio;
using asio::ip::tcp;

asio::awaitable<void> echo(tcp::socket s) {
  char buf[65536];
  try {
    for (;;) {
      std::size_t n = co_await s.async_read_some(asio::buffer(buf), asio::use_awaitable);
      co_await asio::async_write(s, asio::buffer(buf, n), asio::use_awaitable);
    }
  } catch (...) {
  }
}

constexpr std::string_view kHello =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";

// Keep-alive: answers every complete request head in the buffer.
asio::awaitable<void> http(tcp::socket s) {
  char buf[8192];
  std::size_t len = 0;
  try {
    for (;;) {
      for (;;) {
        std::string_view v(buf, len);
        std::size_t p = v.find("\r\n\r\n");
        if (p == std::string_view::npos) break;
        std::memmove(buf, buf + p + 4, len - p - 4);
        len -= p + 4;
        co_await asio::async_write(s, asio::buffer(kHello.data(), kHello.size()),
                                   asio::use_awaitable);
      }
      if (len == sizeof buf) co_return;
      len += co_await s.async_read_some(asio::buffer(buf + len, sizeof buf - len),
                                        asio::use_awaitable);
    }
  } catch (...) {
  }
}

asio::awaitable<void> serve(tcp::acceptor& a, bool is_echo) {
  for (;;) {
    tcp::socket s = co_await a.async_accept(asio::use_awaitable);
    s.set_option(tcp::no_delay(true));
    auto ex = s.get_executor();
    if (is_echo) asio::co_spawn(ex, echo(std::move(s)), asio::detached);
    else asio::co_spawn(ex, http(std::move(s)), asio::detached);
  }
}

int main(int argc, char** argv) {
  const std::string mode = argc == 3 ? argv[1] : "";
  char* end = nullptr;
  const double max_s = argc == 3 ? std::strtod(argv[2], &end) : 0;
  if ((mode != "echo-server" && mode != "http-server") || *end != '\0' || !(max_s > 0)) {
    std::fprintf(stderr, "usage: asio_server echo-server|http-server <max_s>\n");
    return 2;
  }
  const bool is_echo = mode == "echo-server";
  asio::io_context io(2);
  tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::printf("LISTEN %u\n", static_cast<unsigned>(a.local_endpoint().port()));
  std::fflush(stdout);
  asio::co_spawn(io, serve(a, is_echo), asio::detached);
  asio::steady_timer t(io, std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                               std::chrono::duration<double>(max_s)));
  t.async_wait([&](auto) { io.stop(); });
  std::thread other([&] { io.run(); });
  io.run();
  other.join();
  return 0;
}
