// A server built on weft keeps serving through the unhappy paths: EMFILE on
// accept (with a lowered RLIMIT_NOFILE), connections reset or closed by the
// peer mid-stream, and a flood of 1000+ concurrent connections (with a
// raised fd limit). 127.0.0.1 only; every test bounds its time.
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/io_testing.h"
#include "tests/testing.h"
#include "weft/weft.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using testing::FdLimit;
using testing::Watchdog;

Coro<void> echo_lines(StreamReader r, StreamWriter w) {
  for (;;) {
    std::string line = co_await r.readline();
    if (line.empty()) break;
    w.write(line);
    co_await w.drain();
  }
  w.close();
}

// Sends a line and expects it back within `timeout`; false on timeout.
Coro<bool> echo_once(Socket& s, std::string line, Duration timeout) {
  co_await s.sendall(line);
  std::string got;
  while (got.size() < line.size()) {
    try {
      co_await s.wait_readable(timeout);
    } catch (const TimeoutError&) {
      co_return false;
    }
    std::string part = co_await s.recv(line.size() - got.size());
    if (part.empty()) co_return false;
    got += part;
  }
  EXPECT_EQ(got, line);
  co_return true;
}

testing::ErrorLog g_emfile_log;

Coro<void> emfile_body();

// Not under --config=asan: UBSan's vptr check (part of that config) tests
// memory by writing it into a pipe, which it cannot create while the process
// is out of descriptors, and then reports a false "invalid vptr" for every
// polymorphic object touched (the OSError for EMFILE first). The default and
// TSan configurations run it.
TEST(IoRobustness, ServerBacksOffOnEmfileAndRecovers) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "UBSan's vptr check needs free descriptors (see the comment)";
#endif
  run(emfile_body(), testing::logged_options(g_emfile_log));
}

Coro<void> emfile_body() {
  Watchdog wd(3s);
  ServerOptions o;
  o.accept_retry_delay = 10ms;
  Server server = co_await start_server(echo_lines, "127.0.0.1", 0, o);
  // Every client socket is made before the limit drops: only the server's
  // accepts then need new descriptors.
  constexpr int kClients = 5;
  constexpr int kAllowed = 3;
  std::vector<Socket> clients;
  for (int i = 0; i < kClients; ++i) clients.emplace_back(AF_INET, SOCK_STREAM);
  {
    FdLimit limit(testing::nofile_limit_allowing(kAllowed));
    for (auto& c : clients) co_await c.connect(SocketAddress::ipv4("127.0.0.1", server.port()));
    // The first kAllowed are accepted and served...
    for (int i = 0; i < kAllowed; ++i) {
      EXPECT_TRUE(co_await echo_once(clients[i], "hello " + std::to_string(i) + "\n", 1s));
    }
    // ... the others wait in the backlog while accept fails with EMFILE.
    EXPECT_FALSE(co_await echo_once(clients[kAllowed], "waiting\n", 50ms));
    EXPECT_GE(g_emfile_log.count({"[errno 24]", "pausing accepts"}), 1) << g_emfile_log.dump();
    EXPECT_TRUE(server.is_serving());
    // Free descriptors: the server recovers and accepts the rest (still
    // under the low limit).
    for (int i = 0; i < kAllowed; ++i) clients[i].close();
    EXPECT_TRUE(co_await testing::wait_until(
        [&] { return server.accepted_connections() == kClients; }));
  }
  // The "waiting\n" line was queued: its echo arrives once accepted.
  std::string got = co_await clients[kAllowed].recv(100);
  EXPECT_EQ(got, "waiting\n");
  EXPECT_TRUE(co_await echo_once(clients[kAllowed + 1], "late\n", 1s));
  EXPECT_EQ(server.accepted_connections(), static_cast<std::uint64_t>(kClients));
  for (auto& c : clients) c.close();
  server.close();
  co_await server.wait_closed();
}

WEFT_CO_TEST(IoRobustness, ResetMidStreamReachesTheHandler) {
  Watchdog wd(2s);
  std::atomic<int> resets{0};
  Server server = co_await start_server(
      [&resets](StreamReader r, StreamWriter w) -> Coro<void> {
        try {
          for (;;) {
            std::string line = co_await r.readline();
            if (line.empty()) break;
          }
        } catch (const ConnectionResetError&) {
          resets.fetch_add(1);
        }
      },
      "127.0.0.1", 0);
  for (int i = 0; i < 3; ++i) {
    Socket c = co_await create_connection("127.0.0.1", server.port());
    co_await c.sendall("partial line without end");
    co_await sleep(1ms);
    c.set_linger(0);
    c.close();  // RST
  }
  EXPECT_TRUE(co_await testing::wait_until([&] { return resets.load() == 3; }));
  // And the server still serves.
  auto [r, w] = co_await open_connection("127.0.0.1", server.port());
  w.write("x\n");
  w.close();
  EXPECT_EQ(co_await r.read(), "");
}

WEFT_CO_TEST(IoRobustness, PeerClosingMidWriteEndsTheWriterCleanly) {
  Watchdog wd(3s);
  // The server streams a large response to clients that hang up early; each
  // handler sees a ConnectionError from drain, none hangs, and the server
  // goes on.
  std::atomic<int> errors{0};
  Server server = co_await start_server(
      [&errors](StreamReader r, StreamWriter w) -> Coro<void> {
        (void)co_await r.readline();
        std::string chunk(64 * 1024, 'b');
        try {
          for (int i = 0; i < 2000; ++i) {
            w.write(chunk);
            co_await w.drain();
          }
        } catch (const ConnectionError&) {
          errors.fetch_add(1);
        }
        w.close();
        co_await w.wait_closed();
      },
      "127.0.0.1", 0);
  const int kClients = 4;
  for (int i = 0; i < kClients; ++i) {
    auto [r, w] = co_await open_connection("127.0.0.1", server.port());
    w.write("go\n");
    (void)co_await r.readexactly(100000);
    w.abort();  // close with unread data: the server gets a reset
  }
  EXPECT_TRUE(co_await testing::wait_until([&] { return errors.load() == kClients; }));
  server.close();
  co_await server.wait_closed();
}

WEFT_CO_TEST(IoRobustness, ThousandConcurrentConnections) {
  Watchdog wd(testing::kSanitized ? 20s : 5s);
  const int kConns = 1024;
  FdLimit limit(8192);
  if (limit.soft() < static_cast<rlim_t>(2 * kConns + 64)) {
    ADD_FAILURE() << "RLIMIT_NOFILE cannot be raised to " << 2 * kConns + 64;
    co_return;
  }
  const int base_fds = testing::open_fd_count();
  Server server = co_await start_server(echo_lines, "127.0.0.1", 0);
  std::atomic<int> connected{0}, done{0};
  Future<void> all_connected;  // a barrier (set once, awaited by all)
  std::vector<Task<void>> clients;
  for (int i = 0; i < kConns; ++i) {
    clients.push_back(create_task(
        [](std::uint16_t port, int id, int n, std::atomic<int>& connected,
           std::atomic<int>& done, Future<void> all) -> Coro<void> {
          auto [r, w] = co_await open_connection("127.0.0.1", port);
          if (connected.fetch_add(1) + 1 == n) all.set_result();
          co_await all;  // every connection is open at once
          std::string line = "client " + std::to_string(id) + "\n";
          w.write(line);
          co_await w.drain();
          EXPECT_EQ(co_await r.readline(), line);
          w.close();
          done.fetch_add(1);
        }(server.port(), i, kConns, connected, done, all_connected)));
  }
  for (auto& t : clients) co_await t;
  EXPECT_EQ(done.load(), kConns);
  EXPECT_EQ(server.accepted_connections(), static_cast<std::uint64_t>(kConns));
  server.close();
  co_await server.wait_closed();
  clients.clear();
  // Nothing leaked: every descriptor of the flood is closed again.
  EXPECT_TRUE(co_await testing::wait_until([&] { return testing::open_fd_count() <= base_fds; }))
      << testing::open_fd_count() << " fds open, " << base_fds << " before";
}

}  // namespace
}  // namespace weft
