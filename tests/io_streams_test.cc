// Streams: open_connection / start_server, the StreamReader's calls and
// limit, the StreamWriter's queue, drain backpressure, close and half-close,
// the Server's life cycle, and the cancel-safety contract of
// weft/io/streams.h. 127.0.0.1 and Unix sockets only.
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
using testing::Watchdog;

// Echoes line by line until EOF.
Coro<void> echo_lines(StreamReader r, StreamWriter w) {
  for (;;) {
    std::string line = co_await r.readline();
    if (line.empty()) break;
    w.write(line);
    co_await w.drain();
  }
  w.close();
  co_await w.wait_closed();
}

Coro<Server> local_server(ConnectionHandler h, ServerOptions o = {}) {
  co_return co_await start_server(std::move(h), "127.0.0.1", 0, std::move(o));
}

WEFT_CO_TEST(IoStreams, EchoServerAndClient) {
  Watchdog wd(2s);
  Server server = co_await local_server(echo_lines);
  EXPECT_TRUE(server.is_serving());
  EXPECT_NE(server.port(), 0);
  auto [r, w] = co_await open_connection("127.0.0.1", server.port());
  EXPECT_EQ(w.peer_address().port(), server.port());
  EXPECT_EQ(w.local_address().host(), "127.0.0.1");
  for (int i = 0; i < 10; ++i) {
    std::string line = "line " + std::to_string(i) + "\n";
    w.write(line);
    co_await w.drain();
    EXPECT_EQ(co_await r.readline(), line);
  }
  w.write_eof();
  EXPECT_EQ(co_await r.readline(), "");  // the server closed after our EOF
  EXPECT_TRUE(r.at_eof());
  w.close();
  co_await w.wait_closed();
  server.close();
  co_await server.wait_closed();
  EXPECT_FALSE(server.is_serving());
  EXPECT_EQ(server.accepted_connections(), 1u);
  EXPECT_EQ(server.active_connections(), 0u);
  // Closed means closed: nobody listens there any more.
  EXPECT_TRUE((co_await testing::raises<ConnectionRefusedError>(
                   open_connection("127.0.0.1", server.port())))
                  .has_value());
}

WEFT_CO_TEST(IoStreams, ReaderCalls) {
  Watchdog wd(2s);
  auto [a, b] = Socket::pair();
  auto [r, unused] = open_stream(std::move(b));
  co_await a.sendall("abc\ndef|ghi" "0123456789" "tail");
  a.shutdown(SHUT_WR);
  EXPECT_EQ(co_await r.readline(), "abc\n");
  EXPECT_EQ(co_await r.readuntil("|"), "def|");
  EXPECT_EQ(co_await r.read(3), "ghi");
  EXPECT_EQ(co_await r.readexactly(10), "0123456789");
  EXPECT_EQ(co_await r.read(0), "");
  auto e = co_await testing::raises<IncompleteReadError>(r.readexactly(10));
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->partial(), "tail");
  EXPECT_EQ(e->expected(), 10u);
  EXPECT_TRUE(r.at_eof());
  EXPECT_EQ(co_await r.read(), "");
  EXPECT_EQ(co_await r.readline(), "");
}

WEFT_CO_TEST(IoStreams, ReadUntilEofAndPartialLine) {
  Watchdog wd(2s);
  auto [a, b] = Socket::pair();
  auto [r, unused] = open_stream(std::move(b));
  co_await a.sendall("no newline at the end");
  a.close();
  auto e = co_await testing::raises<IncompleteReadError>(r.readuntil("\n"));
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->partial(), "no newline at the end");
  EXPECT_EQ(e->expected(), std::nullopt);
}

// asyncio 3.13's readuntil(tuple): the match that ends first wins.
constexpr std::string_view kHeadEnds[] = {"\n\n", "\n\r\n"};
constexpr std::string_view kOverlapping[] = {"abc", "bc", "zzzz"};
constexpr std::string_view kNoSeparator[] = {"x", ""};

WEFT_CO_TEST(IoStreams, ReadUntilTheFirstOfSeveralSeparators) {
  Watchdog wd(2s);
  auto [a, b] = Socket::pair();
  StreamOptions o;
  o.limit = 24;
  auto [r, unused] = open_stream(std::move(b), o);
  co_await a.sendall("GET / HTTP/1.1\nHost: h\n\nnext\r\n\r\n" "xabcd"
                     "0123456789abcdefghijklmnopqrst\n\n" "tail");
  a.shutdown(SHUT_WR);
  // The LF-only head ends at "\n\n"; the CRLF one at its "\n\r\n".
  EXPECT_EQ(co_await r.readuntil(kHeadEnds), "GET / HTTP/1.1\nHost: h\n\n");
  EXPECT_EQ(co_await r.readuntil(kHeadEnds), "next\r\n\r\n");
  // "bc" and "abc" end at the same byte: one chunk either way.
  EXPECT_EQ(co_await r.readuntil(kOverlapping), "xabc");
  EXPECT_EQ(co_await r.read(1), "d");
  // The match starts past the limit (24): LimitOverrunError, data kept.
  auto e = co_await testing::raises<LimitOverrunError>(r.readuntil(kHeadEnds));
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->consumed(), 30u);
  EXPECT_EQ(co_await r.readexactly(32), "0123456789abcdefghijklmnopqrst\n\n");
  // At EOF without a separator: IncompleteReadError with the rest.
  auto inc = co_await testing::raises<IncompleteReadError>(r.readuntil(kHeadEnds));
  WEFT_CO_ASSERT_TRUE(inc.has_value());
  EXPECT_EQ(inc->partial(), "tail");
  EXPECT_THROW(co_await r.readuntil(std::span<const std::string_view>()), std::invalid_argument);
  EXPECT_THROW(co_await r.readuntil(kNoSeparator), std::invalid_argument);
}

WEFT_CO_TEST(IoStreams, ReadUntilSeveralSeparatorsAcrossReceives) {
  Watchdog wd(2s);
  auto [a, b] = Socket::pair();
  auto [r, unused] = open_stream(std::move(b));
  // A separator split over two receives is still found, and one that ends
  // earlier wins over a longer one that started before it.
  auto reader = create_task(r.readuntil(kHeadEnds));
  co_await a.sendall("A: 1\r\n");
  co_await sleep(2ms);
  co_await a.sendall("\r");
  co_await sleep(2ms);
  EXPECT_FALSE(reader.done());
  co_await a.sendall("\nrest");
  EXPECT_EQ(co_await reader, "A: 1\r\n\r\n");
  EXPECT_EQ(r.buffered(), 4u);
}

WEFT_CO_TEST(IoStreams, ReadAllUntilEof) {
  Watchdog wd(2s);
  auto [a, b] = Socket::pair();
  auto [r, unused] = open_stream(std::move(b));
  std::string big(300000, 'q');
  auto sender = create_task([](Socket s, std::string data) -> Coro<void> {
    co_await s.sendall(data);
  }(std::move(a), big));
  EXPECT_EQ((co_await r.read()).size(), big.size());
  co_await sender;
}

WEFT_CO_TEST(IoStreams, LimitOverrun) {
  Watchdog wd(2s);
  auto [a, b] = Socket::pair();
  StreamOptions o;
  o.limit = 1024;
  auto [r, unused] = open_stream(std::move(b), o);
  EXPECT_EQ(r.limit(), 1024u);
  std::string long_line(3000, 'x');
  co_await a.sendall(long_line + "\nshort\n");
  // readuntil leaves the data buffered ...
  auto e = co_await testing::raises<LimitOverrunError>(r.readuntil("\n"));
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_GT(r.buffered(), 1024u);
  // ... readline discards the over-long line and the next one is intact.
  EXPECT_TRUE((co_await testing::raises<LimitOverrunError>(r.readline())).has_value());
  std::string next = co_await r.readline();
  // The line may have been cut where the buffer was cleared; what follows
  // the next newline is always whole.
  if (next != "short\n") {
    EXPECT_EQ(co_await r.readline(), "short\n");
  }
  // The buffer never grew far past the limit.
  EXPECT_LE(r.buffered(), 1024u + 16 * 1024u);
}

WEFT_CO_TEST(IoStreams, ConcurrentReadsAreRejected) {
  Watchdog wd(2s);
  auto [a, b] = Socket::pair();
  auto [r, unused] = open_stream(std::move(b));
  auto first = create_task(r.readline());
  co_await sleep(2ms);
  EXPECT_TRUE((co_await testing::raises<RuntimeError>(r.readline())).has_value());
  co_await a.sendall("one\n");
  EXPECT_EQ(co_await first, "one\n");
}

WEFT_CO_TEST(IoStreams, CancelledReadsConsumeNothing) {
  Watchdog wd(2s);
  auto [a, b] = Socket::pair();
  auto [r, unused] = open_stream(std::move(b));
  // readexactly: 5 of 10 bytes arrive, then the read is cancelled.
  auto t = create_task(r.readexactly(10));
  co_await a.sendall("01234");
  co_await sleep(2ms);
  t.cancel();
  EXPECT_TRUE((co_await testing::raises<CancelledError>(t)).has_value());
  EXPECT_EQ(r.buffered(), 5u);
  co_await a.sendall("56789");
  EXPECT_EQ(co_await r.readexactly(10), "0123456789");
  // readline: half a line, cancelled, then the rest.
  auto t2 = create_task(r.readline());
  co_await a.sendall("half ");
  co_await sleep(2ms);
  t2.cancel();
  EXPECT_TRUE((co_await testing::raises<CancelledError>(t2)).has_value());
  co_await a.sendall("and half\n");
  EXPECT_EQ(co_await r.readline(), "half and half\n");
}

// Appends one readline's result; see recv_one_into in io_socket_test.cc for
// why the check is made inside the task.
Coro<void> readline_into(StreamReader r, std::string& out, bool& eof) {
  std::string line = co_await r.readline();
  if (line.empty()) eof = true;
  out += line;
}

WEFT_CO_TEST(IoStreams, CancelledReadsRacingData) {
  Watchdog wd(3s);
  auto [a, b] = Socket::pair();
  auto [r, unused] = open_stream(std::move(b));
  // Lines arrive while readlines are being cancelled at random moments: the
  // lines read, concatenated with what is left, are exactly what was sent.
  const int n = testing::scaled(300, 10);
  auto sender = create_task([](Socket& s, int n) -> Coro<void> {
    for (int i = 0; i < n; ++i) {
      co_await s.sendall("line-" + std::to_string(i) + "\n");
      if (i % 3 == 0) co_await yield_now();
    }
    s.shutdown(SHUT_WR);
  }(a, n));
  std::string got;
  bool eof = false;
  for (int round = 0; !eof; ++round) {
    auto t = create_task(readline_into(r, got, eof));
    if (round % 2) co_await yield_now();
    t.cancel();
    try {
      co_await t;
    } catch (const CancelledError&) {
    }
  }
  co_await sender;
  std::string expected;
  for (int i = 0; i < n; ++i) expected += "line-" + std::to_string(i) + "\n";
  EXPECT_EQ(got, expected);
}

WEFT_CO_TEST(IoStreams, WriteWithoutDrainStillFlushes) {
  Watchdog wd(3s);
  auto [a, b] = Socket::pair();
  auto [unused, w] = open_stream(std::move(a));
  std::string big(4 << 20, 'f');
  w.write(big);  // far more than the socket takes: the rest is queued
  EXPECT_GT(w.buffered(), 0u);
  w.close();     // flushes, then shuts down
  std::string got;
  char buf[65536];
  for (;;) {
    std::size_t n = co_await b.recv_into(buf);
    if (n == 0) break;
    got.append(buf, n);
  }
  EXPECT_EQ(got.size(), big.size());
  co_await w.wait_closed();
  EXPECT_EQ(w.buffered(), 0u);
  EXPECT_TRUE(w.is_closing());
  EXPECT_TRUE((co_await testing::raises<RuntimeError>([](StreamWriter w) -> Coro<void> {
                 w.write("late");
                 co_return;
               }(w)))
                  .has_value());
}

WEFT_CO_TEST(IoStreams, DrainBoundsTheQueueAgainstASlowReader) {
  Watchdog wd(3s);
  auto [a, b] = Socket::pair();
  // Small socket buffers so that the writer's queue does the buffering.
  a.set_option(SOL_SOCKET, SO_SNDBUF, 4096);
  b.set_option(SOL_SOCKET, SO_RCVBUF, 4096);
  auto [unused, w] = open_stream(std::move(a));
  w.set_write_buffer_limits(32 * 1024, 8 * 1024);
  const std::size_t kChunk = 8 * 1024;
  const int kChunks = testing::scaled(200, 4);
  std::size_t max_queued = 0;
  auto producer = create_task([](StreamWriter w, std::size_t chunk, int n,
                                 std::size_t& max_queued) -> Coro<void> {
    std::string data(chunk, 'd');
    for (int i = 0; i < n; ++i) {
      w.write(data);
      max_queued = std::max(max_queued, w.buffered());
      co_await w.drain();
    }
    w.close();
    co_await w.wait_closed();
  }(w, kChunk, kChunks, max_queued));
  // A slow reader: small reads with pauses.
  std::size_t total = 0;
  char buf[4096];
  for (int i = 0;; ++i) {
    std::size_t n = co_await b.recv_into(buf);
    if (n == 0) break;
    total += n;
    if (i % 16 == 0) co_await sleep(100us);
  }
  co_await producer;
  EXPECT_EQ(total, kChunk * kChunks);
  // Never more than the high-water mark plus one write.
  EXPECT_LE(max_queued, 32 * 1024 + kChunk);
  EXPECT_GT(max_queued, 8 * 1024u);  // the reader really was slower
}

WEFT_CO_TEST(IoStreams, WriteEofHalfCloses) {
  Watchdog wd(2s);
  Server server = co_await local_server([](StreamReader r, StreamWriter w) -> Coro<void> {
    std::string all = co_await r.read();  // until the client's EOF
    w.write("got " + std::to_string(all.size()));
    w.close();
  });
  auto [r, w] = co_await open_connection("127.0.0.1", server.port());
  w.write(std::string(100000, 'h'));
  w.write_eof();
  EXPECT_EQ(co_await r.read(), "got 100000");
  EXPECT_TRUE((co_await testing::raises<RuntimeError>([](StreamWriter w) -> Coro<void> {
                 w.write("x");
                 co_return;
               }(w)))
                  .has_value());
}

WEFT_CO_TEST(IoStreams, PeerClosingMidWriteFailsDrain) {
  Watchdog wd(3s);
  Server server = co_await local_server([](StreamReader r, StreamWriter w) -> Coro<void> {
    (void)co_await r.readexactly(1000);
    w.abort();  // reset the connection with most of the data unread
  });
  auto [r, w] = co_await open_connection("127.0.0.1", server.port());
  std::string chunk(64 * 1024, 'm');
  bool failed = false;
  for (int i = 0; i < 1000 && !failed; ++i) {
    try {
      w.write(chunk);
      co_await w.drain();
    } catch (const ConnectionError& e) {
      failed = true;
      EXPECT_TRUE(e.code() == ECONNRESET || e.code() == EPIPE) << e.what();
    }
  }
  EXPECT_TRUE(failed);
  // The error sticks.
  EXPECT_TRUE((co_await testing::raises<ConnectionError>(w.drain())).has_value());
  w.close();
  co_await w.wait_closed();
}

WEFT_CO_TEST_WITH(IoStreams, HandlerExceptionIsReportedAndServerGoesOn,
                  ([] {
                    static testing::ErrorLog log;
                    return testing::logged_options(log);
                  }())) {
  Watchdog wd(2s);
  Server server = co_await local_server([](StreamReader r, StreamWriter w) -> Coro<void> {
    std::string line = co_await r.readline();
    if (line == "boom\n") throw std::runtime_error("handler failed");
    w.write("ok\n");
  });
  {
    auto [r, w] = co_await open_connection("127.0.0.1", server.port());
    w.write("boom\n");
    EXPECT_EQ(co_await r.read(), "");  // the handler died; the connection closed
  }
  auto [r, w] = co_await open_connection("127.0.0.1", server.port());
  w.write("fine\n");
  EXPECT_EQ(co_await r.readline(), "ok\n");
}

WEFT_CO_TEST(IoStreams, CloseClientsAndWaitClosed) {
  Watchdog wd(2s);
  std::atomic<int> cancelled{0};
  Server server = co_await local_server([&cancelled](StreamReader r, StreamWriter) -> Coro<void> {
    try {
      (void)co_await r.readline();  // idle clients never send
    } catch (const CancelledError&) {
      cancelled.fetch_add(1);
      throw;
    }
  });
  std::vector<std::pair<StreamReader, StreamWriter>> clients;
  for (int i = 0; i < 5; ++i) clients.push_back(co_await open_connection("127.0.0.1", server.port()));
  EXPECT_TRUE(co_await testing::yield_until([&] { return server.active_connections() == 5; }));
  server.close();
  // wait_closed waits for the handlers: they are idle, so close them.
  auto waiter = create_task(server.wait_closed());
  co_await sleep(5ms);
  EXPECT_FALSE(waiter.done());
  server.close_clients();
  co_await waiter;
  EXPECT_EQ(cancelled.load(), 5);
  for (auto& [r, w] : clients) EXPECT_EQ(co_await r.read(), "");  // closed by the server
}

WEFT_CO_TEST(IoStreams, ServeForeverEndsWhenCancelledOrClosed) {
  Watchdog wd(2s);
  Server server = co_await local_server(echo_lines);
  auto forever = create_task(server.serve_forever());
  co_await sleep(1ms);
  forever.cancel();
  EXPECT_TRUE((co_await testing::raises<CancelledError>(forever)).has_value());
  EXPECT_FALSE(server.is_serving());
  co_await server.wait_closed();

  Server second = co_await local_server(echo_lines);
  auto forever2 = create_task(second.serve_forever());
  co_await sleep(1ms);
  second.close();
  co_await forever2;  // returns normally
  co_await second.wait_closed();
}

WEFT_CO_TEST(IoStreams, CloseRightAfterStart) {
  Watchdog wd(2s);
  // The accept task is cancelled before it ever runs: its bookkeeping (and
  // the listener) must still end, or wait_closed would hang.
  for (int i = 0; i < 20; ++i) {
    Server server = co_await local_server(echo_lines);
    server.close();
    co_await server.wait_closed();
  }
}

WEFT_CO_TEST(IoStreams, DestroyingTheServerClosesIt) {
  Watchdog wd(2s);
  std::uint16_t port;
  {
    Server server = co_await local_server(echo_lines);
    port = server.port();
  }
  // The accept task closes the listener as it stops.
  bool refused = false;
  for (int i = 0; i < 100 && !refused; ++i) {
    try {
      auto [r, w] = co_await open_connection("127.0.0.1", port);
      co_await sleep(1ms);
    } catch (const ConnectionError&) {
      refused = true;  // refused, or reset while queued on the closing listener
    }
  }
  EXPECT_TRUE(refused);
}

WEFT_CO_TEST(IoStreams, UnixServer) {
  Watchdog wd(2s);
  std::string path = "/tmp/weft_io_streams_" + std::to_string(getpid());
  Server server = co_await start_unix_server(echo_lines, path);
  EXPECT_EQ(server.addresses().at(0).path(), path);
  auto [r, w] = co_await open_unix_connection(path);
  w.write("unix line\n");
  EXPECT_EQ(co_await r.readline(), "unix line\n");
  w.close();
  server.close();
  co_await server.wait_closed();
  ::unlink(path.c_str());
}

WEFT_CO_TEST(IoStreams, ConnectTimeoutAndOptions) {
  StreamOptions o;
  o.write_high_water = 10;
  o.write_low_water = 20;
  auto [a, b] = Socket::pair();
  EXPECT_THROW((void)open_stream(std::move(a), o), std::invalid_argument);
  EXPECT_THROW((void)open_stream(Socket()), std::invalid_argument);
  co_return;
}

// Many clients at once against one server, over 4 workers.
TEST(IoStreamsStress, ManyClients) {
  const int kClients = testing::scaled(200, 4);
  const int kLines = testing::scaled(20, 4);
  std::atomic<int> ok{0};
  auto body = [&]() -> Coro<void> {
    Watchdog wd(5s);
    Server server = co_await local_server(echo_lines);
    std::vector<Task<void>> tasks;
    for (int i = 0; i < kClients; ++i) {
      tasks.push_back(create_task([](std::uint16_t port, int lines, std::atomic<int>& ok,
                                     int id) -> Coro<void> {
        auto [r, w] = co_await open_connection("127.0.0.1", port);
        for (int j = 0; j < lines; ++j) {
          std::string line = std::to_string(id) + ":" + std::to_string(j) + "\n";
          w.write(line);
          co_await w.drain();
          EXPECT_EQ(co_await r.readline(), line);
        }
        w.close();
        ok.fetch_add(1);
      }(server.port(), kLines, ok, i)));
    }
    for (auto& t : tasks) co_await t;
    server.close();
    co_await server.wait_closed();
  };
  run(body(), testing::test_options(4));
  EXPECT_EQ(ok.load(), kClients);
}

}  // namespace
}  // namespace weft
