// A stream's read limits (StreamOptions::read_timeout, the reader's read
// deadline) and what a server does with them and with the errors that end
// its connections: the idle timeout of a connection, the report of an
// exception escaping a handler (its type, the peer, once per connection).
// 127.0.0.1 and socket pairs only; the timeouts are tens of milliseconds.
#include <sys/socket.h>

#include <chrono>
#include <string>

#include "gtest/gtest.h"
#include "tests/io_testing.h"
#include "tests/testing.h"
#include "weft/weft.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using testing::Watchdog;

std::chrono::milliseconds since(TimePoint start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(get_running_loop().time() - start);
}

WEFT_CO_TEST(IoReadLimits, ReadTimeoutEndsASilentWaitAndKeepsWhatArrived) {
  Watchdog wd(3s);
  auto [a, b] = Socket::pair();
  StreamOptions o;
  o.read_timeout = 50ms;
  auto [r, unused] = open_stream(std::move(b), o);
  co_await a.sendall("hal");
  const TimePoint start = get_running_loop().time();
  auto e = co_await testing::raises<TimeoutError>(r.readline());
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_GE(since(start), 50ms);
  EXPECT_NE(std::string(e->what()).find("read_timeout"), std::string::npos) << e->what();
  EXPECT_EQ(r.buffered(), 3u);  // nothing consumed
  // Not sticky: the stream goes on.
  co_await a.sendall("f\n");
  EXPECT_EQ(co_await r.readline(), "half\n");
}

WEFT_CO_TEST(IoReadLimits, ReadTimeoutRestartsWithEveryReceive) {
  Watchdog wd(5s);
  auto [a, b] = Socket::pair();
  StreamOptions o;
  o.read_timeout = 200ms;
  auto [r, unused] = open_stream(std::move(b), o);
  // 12 pieces 25 ms apart: 300 ms in all, longer than the timeout, but the
  // peer is never silent for that long.
  auto sender = create_task([](Socket& s) -> Coro<void> {
    for (int i = 0; i < 12; ++i) {
      co_await sleep(25ms);
      co_await s.sendall(i == 11 ? "\n" : "x");
    }
  }(a));
  const TimePoint start = get_running_loop().time();
  EXPECT_EQ(co_await r.readline(), std::string(11, 'x') + "\n");
  EXPECT_GE(since(start), 200ms);
  co_await sender;
}

WEFT_CO_TEST(IoReadLimits, ReadDeadlineBoundsSeveralReads) {
  Watchdog wd(5s);
  auto [a, b] = Socket::pair();
  auto [r, unused] = open_stream(std::move(b));
  EXPECT_EQ(r.read_deadline(), TimePoint::max());
  // A trickle that would never end a line: each receive is quick, so only a
  // deadline over all of them stops it (slowloris).
  auto sender = create_task([](Socket& s) -> Coro<void> {
    for (int i = 0; i < 200; ++i) {
      co_await sleep(10ms);
      co_await s.sendall("y");
    }
  }(a));
  const TimePoint start = get_running_loop().time();
  r.set_read_deadline(start + 100ms);
  EXPECT_EQ(r.read_deadline(), start + 100ms);
  auto e = co_await testing::raises<TimeoutError>(r.readuntil("\r\n\r\n"));
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_GE(since(start), 100ms);
  EXPECT_LT(since(start), 1000ms);
  EXPECT_GT(r.buffered(), 0u);  // what trickled in stays buffered
  // Past the deadline, buffered data is still returned, and a read that
  // would have to wait raises at once.
  const std::size_t have = r.buffered();
  EXPECT_EQ((co_await r.readexactly(have)).size(), have);
  sender.cancel();
  EXPECT_TRUE((co_await testing::raises<CancelledError>(sender)).has_value());
  EXPECT_TRUE((co_await testing::raises<TimeoutError>(r.read(1))).has_value());
  // Removing it lets reads wait again.
  r.set_read_deadline(TimePoint::max());
  co_await a.sendall("z");
  EXPECT_EQ(co_await r.read(1), "z");
}

WEFT_CO_TEST(IoReadLimits, TheEarlierOfTimeoutAndDeadlineWins) {
  Watchdog wd(3s);
  auto [a, b] = Socket::pair();
  StreamOptions o;
  o.read_timeout = 2s;
  auto [r, unused] = open_stream(std::move(b), o);
  const TimePoint start = get_running_loop().time();
  r.set_read_deadline(start + 50ms);
  auto e = co_await testing::raises<TimeoutError>(r.read(10));
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_NE(std::string(e->what()).find("deadline"), std::string::npos) << e->what();
  EXPECT_LT(since(start), 1000ms);
}

WEFT_CO_TEST(IoReadLimits, ReadTimeoutMustBePositive) {
  StreamOptions o;
  o.read_timeout = 0ms;
  auto [a, b] = Socket::pair();
  EXPECT_THROW((void)open_stream(std::move(a), o), std::invalid_argument);
  co_return;
}

// Echoes lines until EOF; the client's silence past the idle timeout ends
// the connection quietly, as a client's reset or EOF mid-line does.
Coro<void> echo_until_idle(StreamReader r, StreamWriter w) {
  try {
    for (;;) {
      std::string line = co_await r.readline();
      if (line.empty()) break;
      w.write(line);
      co_await w.drain();
    }
  } catch (const TimeoutError&) {
    // the idle timeout: the client's normal way to leave a kept-alive connection
  } catch (const ConnectionError&) {
    // reset, broken pipe
  }
  w.close();
  co_await w.wait_closed();
}

WEFT_CO_TEST(IoServer, IdleTimeoutClosesASilentConnection) {
  Watchdog wd(5s);
  ServerOptions o;
  o.stream.read_timeout = 80ms;
  Server server = co_await start_server(echo_until_idle, "127.0.0.1", 0, o);
  auto [r, w] = co_await open_connection("127.0.0.1", server.port());
  // A busy client is served for longer than the idle timeout.
  TimePoint last_sent;
  for (int i = 0; i < 6; ++i) {
    last_sent = get_running_loop().time();
    w.write("ping\n");
    EXPECT_EQ(co_await r.readline(), "ping\n");
    co_await sleep(30ms);
  }
  // Then it falls silent: the server closes within the timeout (and some).
  // The server's idle wait starts after it received the last ping, so the
  // close comes no earlier than the timeout after that ping was sent (timers
  // never fire early); how long the echo and the sleep took does not matter.
  EXPECT_EQ(co_await r.read(), "");
  EXPECT_GE(since(last_sent), 80ms);
  EXPECT_LT(since(last_sent), 2000ms);
  EXPECT_TRUE(co_await testing::wait_until([&] { return server.active_connections() == 0; }));
  server.close();
  co_await server.wait_closed();
}

// A client that resets its connection (SO_LINGER 0, then close).
Coro<void> connect_and_reset(std::uint16_t port, std::string first) {
  Socket s = co_await create_connection("127.0.0.1", port);
  co_await s.sendall(first);
  co_await sleep(20ms);  // the server has read it and waits for more
  linger l{1, 0};
  if (setsockopt(s.fd(), SOL_SOCKET, SO_LINGER, &l, sizeof l) != 0) throw_errno("setsockopt");
  s.close();
}

testing::ErrorLog& report_log() {
  static testing::ErrorLog log;
  return log;
}

WEFT_CO_TEST_WITH(IoServer, EscapedHandlerErrorNamesItsTypeAndPeerOnce,
                  testing::logged_options(report_log())) {
  Watchdog wd(5s);
  // Echoes what comes; "boom" is a bug. Neither a reset nor the bug is
  // caught: both escape to the server's report.
  Server server = co_await start_server(
      [](StreamReader r, StreamWriter w) -> Coro<void> {
        for (;;) {
          std::string data = co_await r.read(100);
          if (data.empty()) co_return;
          if (data == "boom") throw std::runtime_error("handler failed");
          w.write(data);
          co_await w.drain();
        }
      },
      "127.0.0.1", 0);
  co_await connect_and_reset(server.port(), "abc");
  {
    auto [r, w] = co_await open_connection("127.0.0.1", server.port());
    w.write("boom");
    EXPECT_EQ(co_await r.read(), "");  // the handler died; the connection closed
  }
  EXPECT_TRUE(co_await testing::wait_until([&] {
    return server.accepted_connections() == 2 && server.active_connections() == 0;
  }));
  server.close();
  co_await server.wait_closed();
  const testing::ErrorLog& log = report_log();
  EXPECT_EQ(log.size(), 2u) << log.dump();
  const std::string prefix = "unhandled exception in the connection handler for 127.0.0.1:";
  EXPECT_EQ(log.count({prefix, "weft::ConnectionResetError: "}) +
                log.count({prefix, "weft::BrokenPipeError: "}),
            1)
      << log.dump();
  EXPECT_EQ(log.count({prefix, "std::runtime_error: handler failed"}), 1) << log.dump();
}

}  // namespace
}  // namespace weft
