// Sockets: TCP, UDP and Unix-domain operations, addresses and resolution,
// errors as OSError subclasses, and the cancel-safety contract of
// weft/io/socket.h. Everything runs on 127.0.0.1 or Unix sockets.
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/io_testing.h"
#include "tests/testing.h"
#include "weft/weft.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using testing::Watchdog;

// A listening socket on 127.0.0.1 with a free port.
Socket local_listener(int backlog = SOMAXCONN) {
  ListenOptions o;
  o.backlog = backlog;
  return create_server(SocketAddress::ipv4("127.0.0.1", 0), o);
}

Coro<std::string> recv_exactly(Socket& s, std::size_t n) {
  std::string out;
  while (out.size() < n) {
    std::string part = co_await s.recv(n - out.size());
    if (part.empty()) break;
    out += part;
  }
  co_return out;
}

Coro<std::string> recv_all(Socket& s) {
  std::string out;
  char buf[65536];
  for (;;) {
    std::size_t n = co_await s.recv_into(buf);
    if (n == 0) co_return out;
    out.append(buf, n);
  }
}

WEFT_CO_TEST(IoSocket, TcpEchoRoundTrip) {
  Watchdog wd(2s);
  Socket listener = local_listener();
  const std::uint16_t port = listener.local_address().port();
  EXPECT_NE(port, 0);
  auto server = create_task([](Socket& l) -> Coro<void> {
    auto [conn, peer] = co_await l.accept();
    EXPECT_EQ(peer.host(), "127.0.0.1");
    EXPECT_EQ(peer, conn.peer_address());
    co_await testing::echo_until_eof(std::move(conn));
  }(listener));
  Socket c = co_await create_connection("127.0.0.1", port);
  EXPECT_EQ(c.peer_address().port(), port);
  EXPECT_EQ(c.get_option(IPPROTO_TCP, TCP_NODELAY), 1);
  co_await c.sendall("hello, weft");
  EXPECT_EQ(co_await recv_exactly(c, 11), "hello, weft");
  c.shutdown(SHUT_WR);
  EXPECT_EQ(co_await c.recv(10), "");  // the server closed after our EOF
  co_await server;
}

WEFT_CO_TEST(IoSocket, ATaskBlockedInRecvNamesTheFdAndThePeerInDumps) {
  Watchdog wd(2s);
  Socket listener = local_listener();
  const std::uint16_t port = listener.local_address().port();
  Socket c = co_await create_connection("127.0.0.1", port);
  auto [conn, peer] = co_await listener.accept();
  Task<std::string> reader = create_task(c.recv(10), "reader");
  WEFT_CO_ASSERT_TRUE(co_await testing::yield_until([&] { return !reader.waiting_on().empty(); }));
  const std::string what = reader.waiting_on();
  EXPECT_NE(what.find("on fd " + std::to_string(c.fd())), std::string::npos) << what;
  EXPECT_NE(what.find("(127.0.0.1:" + std::to_string(port) + ")"), std::string::npos)
      << "the peer: " << what;
  co_await conn.sendall("x");
  EXPECT_EQ(co_await reader, "x");
}

WEFT_CO_TEST(IoSocket, FullDuplexFromTwoTasks) {
  Watchdog wd(3s);
  auto [a, b] = Socket::pair();
  const std::size_t kBytes = testing::scaled(4 << 20, 8);
  std::string payload(kBytes, 'p');
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 31);
  // a sends to b while b sends to a, each with a reader task: neither side
  // can make progress unless both directions run at once.
  auto send_a = create_task([](Socket& s, const std::string& p) -> Coro<void> {
    co_await s.sendall(p);
    s.shutdown(SHUT_WR);
  }(a, payload));
  auto send_b = create_task([](Socket& s, const std::string& p) -> Coro<void> {
    co_await s.sendall(p);
    s.shutdown(SHUT_WR);
  }(b, payload));
  auto read_a = create_task(recv_all(a));
  auto read_b = create_task(recv_all(b));
  co_await send_a;
  co_await send_b;
  EXPECT_TRUE(co_await read_a == payload);
  EXPECT_TRUE(co_await read_b == payload);
}

WEFT_CO_TEST(IoSocket, ConnectRefused) {
  Watchdog wd(2s);
  std::uint16_t port;
  {
    Socket l = local_listener();
    port = l.local_address().port();
  }  // closed: nobody listens on `port` now
  auto e = co_await testing::raises<ConnectionRefusedError>(create_connection("127.0.0.1", port));
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code(), ECONNREFUSED);
  EXPECT_NE(std::string(e->what()).find("connect to 127.0.0.1:"), std::string::npos) << e->what();
  // And as an OSError / ConnectionError.
  EXPECT_TRUE((co_await testing::raises<ConnectionError>(create_connection("127.0.0.1", port)))
                  .has_value());
}

WEFT_CO_TEST(IoSocket, ConnectTimeout) {
  Watchdog wd(3s);
  // A listener that never accepts, with the smallest backlog: once its queue
  // is full, the kernel drops new SYNs and connects hang.
  Socket l = local_listener(0);
  const std::uint16_t port = l.local_address().port();
  std::vector<Socket> made;
  bool timed_out = false;
  ConnectOptions o;
  o.timeout = 50ms;
  for (int i = 0; i < 16 && !timed_out; ++i) {
    try {
      made.push_back(co_await create_connection("127.0.0.1", port, o));
    } catch (const TimeoutError& e) {
      timed_out = true;
      EXPECT_NE(std::string(e.what()).find("timed out"), std::string::npos);
    }
  }
  EXPECT_TRUE(timed_out) << "made " << made.size() << " connections without a timeout";
}

WEFT_CO_TEST(IoSocket, CancelledRecvConsumesNothing) {
  Watchdog wd(2s);
  auto [a, b] = Socket::pair();
  for (int i = 0; i < 20; ++i) {
    auto t = create_task(b.recv(100));
    co_await sleep(i % 2 ? 1ms : 0ms);
    t.cancel();
    try {
      std::string got = co_await t;
      ADD_FAILURE() << "recv completed with '" << got << "' with nothing sent";
    } catch (const CancelledError&) {
    }
  }
  co_await a.sendall("intact");
  EXPECT_EQ(co_await recv_exactly(b, 6), "intact");
}

// Appends what one recv returns. Run as a task that gets cancelled: if the
// recv returned, its bytes are in `out` even when the task ends cancelled
// (asyncio marks a task cancelled if a request is pending when its body
// returns), so the check is on the operation, not on the task's result.
Coro<void> recv_one_into(Socket& s, std::string& out) {
  out += co_await s.recv(1);
}

WEFT_CO_TEST(IoSocket, CancelledRecvRacingData) {
  Watchdog wd(3s);
  auto [a, b] = Socket::pair();
  // Each round: a recv races a send and a cancel. Whatever wins, no byte is
  // lost: a recv that raised CancelledError consumed nothing.
  std::string received;
  const int n = testing::scaled(200, 10);
  for (int i = 0; i < n; ++i) {
    auto t = create_task(recv_one_into(b, received));
    std::thread th([&a, t, i] {
      char c = static_cast<char>('a' + i % 26);
      EXPECT_EQ(a.try_send(std::string_view(&c, 1)), 1u);
      t.cancel();
    });
    try {
      co_await t;
    } catch (const CancelledError&) {
    }
    th.join();
  }
  a.shutdown(SHUT_WR);
  received += co_await recv_all(b);
  WEFT_CO_ASSERT_EQ(received.size(), static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) EXPECT_EQ(received[i], 'a' + i % 26);
}

WEFT_CO_TEST(IoSocket, CancelledAcceptAcceptsNothing) {
  Watchdog wd(2s);
  Socket l = local_listener();
  const std::uint16_t port = l.local_address().port();
  auto t = create_task(l.accept());
  co_await sleep(1ms);
  t.cancel();
  EXPECT_TRUE((co_await testing::raises<CancelledError>(t)).has_value());
  Socket c = co_await create_connection("127.0.0.1", port);
  auto [conn, peer] = co_await l.accept();
  EXPECT_EQ(peer, c.local_address());
}

WEFT_CO_TEST(IoSocket, CancelledSendallReportsProgress) {
  Watchdog wd(3s);
  auto [a, b] = Socket::pair();
  std::string big(8 << 20, 'x');  // far more than the socket buffers hold
  std::size_t sent = 0;
  auto t = create_task(a.sendall(big, &sent));
  co_await sleep(5ms);
  t.cancel();
  EXPECT_TRUE((co_await testing::raises<CancelledError>(t)).has_value());
  EXPECT_GT(sent, 0u);
  EXPECT_LT(sent, big.size());
  a.close();
  std::string got = co_await recv_all(b);
  EXPECT_EQ(got.size(), sent);  // exactly what sendall said it sent
}

WEFT_CO_TEST(IoSocket, PartialSendThenSendallFinishes) {
  Watchdog wd(3s);
  auto [a, b] = Socket::pair();
  std::string big(2 << 20, 'y');
  std::size_t first = co_await a.send(big);  // one call: what the buffer takes
  EXPECT_GT(first, 0u);
  EXPECT_LT(first, big.size());
  auto reader = create_task(recv_all(b));
  co_await a.sendall(std::string_view(big).substr(first));
  a.close();
  EXPECT_EQ((co_await reader).size(), big.size());
}

WEFT_CO_TEST(IoSocket, TryOperations) {
  auto [a, b] = Socket::pair();
  char buf[8];
  EXPECT_EQ(b.try_recv_into(buf), std::nullopt);
  EXPECT_EQ(a.try_send("hi"), 2u);
  EXPECT_EQ(b.try_recv_into(buf), 2u);
  co_return;
}

WEFT_CO_TEST(IoSocket, UdpSendtoRecvfrom) {
  Watchdog wd(2s);
  Socket server(AF_INET, SOCK_DGRAM);
  server.bind(SocketAddress::ipv4("127.0.0.1", 0));
  Socket client(AF_INET, SOCK_DGRAM);
  client.bind(SocketAddress::ipv4("127.0.0.1", 0));
  auto echo = create_task([](Socket& s) -> Coro<void> {
    for (int i = 0; i < 3; ++i) {
      auto [data, from] = co_await s.recvfrom(1500);
      co_await s.sendto("re:" + data, from);
    }
  }(server));
  for (int i = 0; i < 3; ++i) {
    std::string msg = "dgram" + std::to_string(i);
    EXPECT_EQ(co_await client.sendto(msg, server.local_address()), msg.size());
    auto [reply, from] = co_await client.recvfrom(1500);
    EXPECT_EQ(reply, "re:" + msg);
    EXPECT_EQ(from, server.local_address());
  }
  co_await echo;
}

WEFT_CO_TEST(IoSocket, UnixStreamServerAndClient) {
  Watchdog wd(2s);
  // Not TempDir(): sandbox paths are longer than sun_path.
  std::string path = "/tmp/weft_io_socket_" + std::to_string(getpid());
  Socket l = create_unix_server(path);
  EXPECT_EQ(l.local_address().path(), path);
  auto server = create_task([](Socket& l) -> Coro<void> {
    auto [conn, peer] = co_await l.accept();
    co_await testing::echo_until_eof(std::move(conn));
  }(l));
  Socket c = co_await create_unix_connection(path);
  co_await c.sendall("over unix");
  EXPECT_EQ(co_await recv_exactly(c, 9), "over unix");
  c.close();
  co_await server;
  l.close();
  // A stale socket file is replaced by the next server.
  Socket again = create_unix_server(path);
  again.close();
  ::unlink(path.c_str());
}

WEFT_CO_TEST(IoSocket, UnixAbstractAddress) {
  Watchdog wd(2s);
  std::string name = "@weft_io_socket_abstract_" + std::to_string(getpid());
  Socket l = create_unix_server(name);
  EXPECT_EQ(l.local_address().path(), name);
  EXPECT_EQ(l.local_address().to_string(), "unix:" + name);
  auto server = create_task([](Socket& l) -> Coro<void> {
    auto [conn, peer] = co_await l.accept();
    co_await testing::echo_until_eof(std::move(conn));
  }(l));
  Socket c = co_await create_unix_connection(name);
  co_await c.sendall("abstract");
  EXPECT_EQ(co_await recv_exactly(c, 8), "abstract");
  c.close();
  co_await server;
}

WEFT_CO_TEST(IoSocket, ResetByPeerIsConnectionResetError) {
  Watchdog wd(2s);
  Socket l = local_listener();
  Socket c = co_await create_connection("127.0.0.1", l.local_address().port());
  auto [conn, peer] = co_await l.accept();
  co_await c.sendall("unread");  // unread data + linger 0: close sends RST
  co_await sleep(1ms);
  conn.set_linger(0);
  conn.close();
  co_await sleep(1ms);
  auto e = co_await testing::raises<ConnectionResetError>(c.recv(100));
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code(), ECONNRESET);
}

WEFT_CO_TEST(IoSocket, SendAfterPeerClosedIsBrokenPipeNotSigpipe) {
  Watchdog wd(2s);
  Socket l = local_listener();
  Socket c = co_await create_connection("127.0.0.1", l.local_address().port());
  {
    auto [conn, peer] = co_await l.accept();
  }  // the server side closes at once
  std::string chunk(65536, 'z');
  bool raised = false;
  for (int i = 0; i < 100 && !raised; ++i) {
    try {
      co_await c.sendall(chunk);
    } catch (const ConnectionError& e) {
      raised = true;
      EXPECT_TRUE(e.code() == EPIPE || e.code() == ECONNRESET) << e.what();
    }
  }
  EXPECT_TRUE(raised);  // and the process is still alive: no SIGPIPE
}

WEFT_CO_TEST(IoSocket, CloseWakesWaitersWithEbadf) {
  Watchdog wd(2s);
  auto [a, b] = Socket::pair();
  auto t = create_task(b.recv(10));
  co_await sleep(2ms);
  b.close();
  auto e = co_await testing::raises<OSError>(t);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code(), EBADF);
  EXPECT_FALSE(b.valid());
  // Operations on a closed socket fail the same way.
  EXPECT_EQ((co_await testing::raises<OSError>(b.recv(10)))->code(), EBADF);
}

WEFT_CO_TEST(IoSocket, HalfClose) {
  Watchdog wd(2s);
  Socket l = local_listener();
  Socket c = co_await create_connection("127.0.0.1", l.local_address().port());
  auto [conn, peer] = co_await l.accept();
  co_await c.sendall("request");
  c.shutdown(SHUT_WR);
  // The server reads to EOF, then still answers over the open direction.
  EXPECT_EQ(co_await recv_all(conn), "request");
  co_await conn.sendall("response");
  conn.close();
  EXPECT_EQ(co_await recv_all(c), "response");
}

WEFT_CO_TEST(IoSocket, WaitReadableWritableWithTimeout) {
  Watchdog wd(2s);
  auto [a, b] = Socket::pair();
  co_await a.wait_writable();
  EXPECT_TRUE((co_await testing::raises<TimeoutError>(b.wait_readable(10ms))).has_value());
  EXPECT_EQ(a.try_send("x"), 1u);
  co_await b.wait_readable(1s);
  co_await b.wait_readable(1s);  // level semantics: still readable
}

// Logged options: the runtime's count of running to_thread calls may still
// include the getaddrinfo job for a moment after its result was delivered,
// and a runtime ending right then reports it.
testing::ErrorLog g_resolution_log;
WEFT_CO_TEST_WITH(IoSocket, AddressesAndResolution, testing::logged_options(g_resolution_log)) {
  SocketAddress v4 = SocketAddress::ipv4("127.0.0.1", 8080);
  EXPECT_EQ(v4.to_string(), "127.0.0.1:8080");
  EXPECT_EQ(v4.family(), AF_INET);
  SocketAddress v6 = SocketAddress::ipv6("[::1]", 443);
  EXPECT_EQ(v6.to_string(), "[::1]:443");
  EXPECT_EQ(SocketAddress::parse_ip("::1", 1)->family(), AF_INET6);
  EXPECT_EQ(SocketAddress::parse_ip("localhost", 1), std::nullopt);
  EXPECT_THROW(SocketAddress::ipv4("300.1.1.1", 1), std::invalid_argument);
  EXPECT_THROW(SocketAddress::unix_path(std::string(200, 'a')), std::invalid_argument);
  auto numeric = co_await resolve("127.0.0.1", 99);
  WEFT_CO_ASSERT_EQ(numeric.size(), 1u);
  EXPECT_EQ(numeric[0], SocketAddress::ipv4("127.0.0.1", 99));
  // "localhost" goes through getaddrinfo on the to_thread pool (no network:
  // /etc/hosts).
  auto local = co_await resolve("localhost", 80, AF_INET);
  WEFT_CO_ASSERT_TRUE(!local.empty());
  EXPECT_EQ(local[0].host(), "127.0.0.1");
  auto e = co_await testing::raises<GaiError>(
      resolve("not a host", 80, AF_INET, SOCK_STREAM, AI_NUMERICHOST));
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code(), EAI_NONAME);
  EXPECT_NE(std::string(e->what()).find("getaddrinfo(not a host)"), std::string::npos) << e->what();
}

// A receive on a stream socket that returns less than asked leaves a hint
// that the queue is empty, so the next receive waits for an edge without
// calling recv (io/detail/fd_watch.h). The hint must never hide bytes, an
// end of stream, or queued records of a non-stream socket.

// Receives twice on `s` after the test has sent: "<first>|<second>".
Coro<std::string> two_receives(Socket& s) {
  std::string first = co_await s.recv(64);
  std::string second = co_await s.recv(64);
  co_return first + "|" + second;
}

WEFT_CO_TEST(IoSocket, PartialReceiveThenLaterBytes) {
  Watchdog wd(5s);
  auto [a, b] = Socket::pair();
  for (int i = 0; i < 20; ++i) {
    co_await a.sendall("ping");
    EXPECT_EQ(co_await b.recv(64), "ping");  // partial: the queue is empty
    auto later = create_task([](Socket& s) -> Coro<void> {
      co_await sleep(1ms);
      co_await s.sendall("pong");
    }(a));
    EXPECT_EQ(co_await b.recv(64), "pong");
    co_await later;
  }
}

WEFT_CO_TEST(IoSocket, EndOfStreamRightAfterAPartialReceive) {
  Watchdog wd(10s);
  Socket listener = local_listener();
  const std::uint16_t port = listener.local_address().port();
  for (int i = 0; i < 20; ++i) {
    // Unix and TCP stream sockets. The reader waits first; the bytes and the
    // end of stream then come in one step, often as one edge, before the
    // reader's partial receive: its second receive must still see the EOF.
    auto [ua, ub] = Socket::pair();
    Socket ta = co_await create_connection("127.0.0.1", port);
    Socket tb = std::move((co_await listener.accept()).first);
    for (auto [writer, reader] : {std::pair{&ua, &ub}, std::pair{&ta, &tb}}) {
      auto received = create_task(two_receives(*reader));
      co_await sleep(1ms);
      co_await writer->sendall("last words");
      writer->shutdown(SHUT_WR);
      EXPECT_EQ(co_await received, "last words|");
    }
  }
}

WEFT_CO_TEST(IoSocket, PartialReceivesOfRecordsLeaveTheRestQueued) {
  Watchdog wd(10s);
  for (int type : {SOCK_DGRAM, SOCK_SEQPACKET}) {
    for (bool adopted : {false, true}) {
      // Created here (the type is known) or adopted (asked of the kernel).
      std::pair<Socket, Socket> p;
      if (adopted) {
        int fds[2];
        WEFT_CO_ASSERT_EQ(::socketpair(AF_UNIX, type, 0, fds), 0);
        p = {Socket::adopt(fds[0]), Socket::adopt(fds[1])};
      } else {
        p = Socket::pair(AF_UNIX, type);
      }
      for (int i = 0; i < 10; ++i) {
        // Two records in one step: a receive returns one of them, shorter
        // than asked, and the other must not wait for another edge.
        auto received = create_task(two_receives(p.second));
        co_await sleep(1ms);
        co_await p.first.send("one");
        co_await p.first.send("two");
        EXPECT_EQ(co_await received, "one|two") << "type " << type << " adopted " << adopted;
      }
    }
  }
}

WEFT_CO_TEST(IoSocket, ErrorsCarryErrnoAndTheCall) {
  OSError e(ECONNRESET, "recv");
  EXPECT_EQ(e.code(), ECONNRESET);
  EXPECT_EQ(e.call(), "recv");
  EXPECT_NE(std::string(e.what()).find("recv: "), std::string::npos);
  EXPECT_NE(std::string(e.what()).find("[errno 104]"), std::string::npos);
  try {
    throw_os_error(EPIPE, "send");
  } catch (const BrokenPipeError& b) {
    EXPECT_EQ(b.code(), EPIPE);
  }
  EXPECT_THROW(Socket(12345, SOCK_STREAM), OSError);
  co_return;
}

// Many connections echoing at once over 4 workers: tasks migrate between
// workers while their sockets stay in the runtime's shared epoll set.
TEST(IoSocketStress, ManyConcurrentEchoes) {
  const int kConns = testing::scaled(100, 4);
  const int kRounds = testing::scaled(50, 5);
  std::atomic<int> ok{0};
  auto body = [&]() -> Coro<void> {
    Watchdog wd(5s);
    Socket l = local_listener();
    const std::uint16_t port = l.local_address().port();
    auto acceptor = create_task([](Socket& l, int n) -> Coro<void> {
      for (int i = 0; i < n; ++i) {
        auto [conn, peer] = co_await l.accept();
        create_task(testing::echo_until_eof(std::move(conn)));
      }
    }(l, kConns));
    std::vector<Task<void>> clients;
    for (int i = 0; i < kConns; ++i) {
      clients.push_back(create_task([](std::uint16_t port, int rounds, std::atomic<int>& ok,
                                       int id) -> Coro<void> {
        Socket c = co_await create_connection("127.0.0.1", port);
        for (int r = 0; r < rounds; ++r) {
          std::string msg = "c" + std::to_string(id) + "r" + std::to_string(r) + ";";
          co_await c.sendall(msg);
          std::string got = co_await recv_exactly(c, msg.size());
          EXPECT_EQ(got, msg);
          if (r % 7 == 0) co_await yield_now();
        }
        ok.fetch_add(1);
      }(port, kRounds, ok, i)));
    }
    for (auto& t : clients) co_await t;
    co_await acceptor;
  };
  run(body(), testing::test_options(4));
  EXPECT_EQ(ok.load(), kConns);
}

}  // namespace
}  // namespace weft
