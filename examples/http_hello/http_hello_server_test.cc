// The http_hello server (the binary, in a child process) against raw-socket
// clients on 127.0.0.1: malformed heads get their status and a close, LF-only
// heads are served, a slow head gets 408, a silent or idle connection is
// closed quietly after its timeout, and resets in the middle of pipelined
// requests end their connections without a report, while good clients are
// served throughout. Every test stops its server with SIGTERM and checks
// that it exits 0 having reported nothing ("unhandled exception" would be a
// connection ending that the example took for a crash).
//
//   http_hello_server_test <path of the http_hello binary>
#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/io_testing.h"
#include "tests/testing.h"
#include "weft/weft.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;
using testing::Watchdog;

std::string g_binary;  // argv[1]

const std::string kGet = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
const std::string kHelloResponse =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";

std::chrono::milliseconds since(TimePoint start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(get_running_loop().time() - start);
}

// The server binary, started with its flags; stop() ends it.
class ServerProcess {
 public:
  static Coro<ServerProcess> start(const std::vector<std::string>& flags) {
    std::vector<std::string> args = {"server", "--workers=2", "--max-seconds=60"};
    args.insert(args.end(), flags.begin(), flags.end());
    SubprocessOptions o;
    o.stdout_mode = Stdio::kPipe;
    o.stderr_mode = Stdio::kPipe;
    ServerProcess s;
    s.p_ = create_subprocess_exec(g_binary, std::move(args), o);
    std::string line = co_await timeout(10s, s.p_.stdout_pipe().readline());
    if (!line.starts_with("LISTEN ")) {
      s.p_.kill();
      throw std::runtime_error("the server printed '" + line + "', not LISTEN <port>");
    }
    s.port_ = static_cast<std::uint16_t>(std::stoi(line.substr(7)));
    co_return s;
  }

  std::uint16_t port() const { return port_; }

  // SIGTERM, then what it wrote on stderr; the exit status must be 0.
  Coro<std::string> stop() {
    p_.terminate();
    std::string err = co_await timeout(10s, p_.stderr_pipe().read());
    const int status = co_await timeout(10s, p_.wait());
    EXPECT_EQ(status, 0) << err;
    co_return err;
  }

 private:
  Process p_;
  std::uint16_t port_ = 0;
};

// Stops the server and checks that no connection ending was reported.
Coro<void> stop_quietly(ServerProcess& server) {
  const std::string err = co_await server.stop();
  EXPECT_EQ(err.find("unhandled exception"), std::string::npos) << err;
  EXPECT_NE(err.find("stopped by"), std::string::npos) << err;
}

// Sends `request` on a new connection and returns everything the server
// sends until it closes (TimeoutError if it does not within `limit`).
Coro<std::string> exchange(std::uint16_t port, std::string request, Duration limit = 5s) {
  auto [r, w] = co_await open_connection("127.0.0.1", port);
  w.write(request);
  co_await w.drain();
  std::string all = co_await timeout(limit, r.read());
  w.close();
  co_return all;
}

// One good keep-alive exchange: the server still serves.
Coro<void> expect_served(std::uint16_t port) {
  EXPECT_EQ(co_await exchange(port, kGet + "GET /bye HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"),
            kHelloResponse +
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
                "Connection: close\r\n\r\nhello");
}

WEFT_CO_TEST(HttpHelloServer, MalformedHeadsGetTheirStatusAndAClose) {
  Watchdog wd(20s);
  const std::vector<std::string> defaults;
  ServerProcess server = co_await ServerProcess::start(defaults);
  struct Case {
    std::string request;
    std::string status;
  };
  std::string many_fields = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 101; ++i) many_fields += "X-" + std::to_string(i) + ": v\r\n";
  many_fields += "\r\n";
  const std::vector<Case> cases = {
      {"GARBAGE\r\n\r\n", "400"},
      {"GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n"s, "400"},
      {"\0\0\0\0\r\n\r\n"s, "400"},
      {"GET / HTTP/9.9\r\nHost: h\r\n\r\n", "505"},
      {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", "505"},
      {"GET / HTTP/1.1\r\nHost: h\r\nno colon here\r\n\r\n", "400"},
      {"G@T / HTTP/1.1\r\nHost: h\r\n\r\n", "400"},
      {"GET nowhere HTTP/1.1\r\nHost: h\r\n\r\n", "400"},
      {"GET / HTTP/1.1\r\n\r\n", "400"},
      {many_fields, "431"},
      {"GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(9000, 'x') + "\r\n\r\n", "431"},
      {"GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(4000, 'x') + "\r\nY: " +
           std::string(4500, 'y') + "\r\n\r\n",
       "431"},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", "501"},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2000000\r\n\r\n", "413"},
  };
  for (const Case& c : cases) {
    const std::string got = co_await exchange(server.port(), c.request);
    EXPECT_TRUE(got.starts_with("HTTP/1.1 " + c.status + " ")) << got << "\nfor: " << c.request;
    EXPECT_NE(got.find("\r\nConnection: close\r\n"), std::string::npos) << got;
  }
  // A refused head ends its connection only: the next request on it is
  // never read, and other connections are served.
  const std::string got = co_await exchange(server.port(), "GARBAGE\r\n\r\n" + kGet);
  EXPECT_TRUE(got.starts_with("HTTP/1.1 400 ")) << got;
  EXPECT_EQ(got.find("200 OK"), std::string::npos) << got;
  co_await expect_served(server.port());
  co_await stop_quietly(server);
}

WEFT_CO_TEST(HttpHelloServer, LfOnlyHeadsAreServed) {
  Watchdog wd(20s);
  const std::vector<std::string> defaults;
  ServerProcess server = co_await ServerProcess::start(defaults);
  const std::string got = co_await exchange(
      server.port(), "\nGET / HTTP/1.1\nHost: h\n\nGET / HTTP/1.1\nHost: h\nConnection: close\n\n");
  EXPECT_TRUE(got.starts_with(kHelloResponse + "HTTP/1.1 200 OK\r\n")) << got;
  EXPECT_TRUE(got.ends_with("Connection: close\r\n\r\nhello")) << got;
  co_await stop_quietly(server);
}

WEFT_CO_TEST(HttpHelloServer, SlowHeadGets408WithinTheHeaderTimeout) {
  Watchdog wd(20s);
  // A generous idle timeout: only the head's deadline can stop a client
  // that sends a byte every 20 ms (slowloris).
  const std::vector<std::string> flags = {"--header-timeout=300ms", "--idle-timeout=5s"};
  ServerProcess server = co_await ServerProcess::start(flags);
  // The server's deadline runs from its accept, which follows the start of
  // the connect (steady_clock is one clock for both processes).
  const TimePoint start = get_running_loop().time();
  auto [r, w] = co_await open_connection("127.0.0.1", server.port());
  auto trickle = create_task([](StreamWriter w) -> Coro<void> {
    const std::string head = "GET / HTTP/1.1\r\nHost: h\r\nX-Slow: " + std::string(500, 's');
    for (char c : head) {
      w.write(std::string_view(&c, 1));
      co_await sleep(20ms);
    }
  }(w));
  const std::string got = co_await timeout(5s, r.read());
  EXPECT_TRUE(got.starts_with("HTTP/1.1 408 Request Timeout\r\n")) << got;
  EXPECT_GE(since(start), 300ms);
  EXPECT_LT(since(start), 3000ms);
  trickle.cancel();
  try {
    co_await trickle;
  } catch (const CancelledError&) {
  } catch (const ConnectionError&) {
    // its write met the connection the server closed
  }
  co_await expect_served(server.port());
  co_await stop_quietly(server);
}

WEFT_CO_TEST(HttpHelloServer, SilentAndIdleConnectionsCloseQuietly) {
  Watchdog wd(20s);
  const std::vector<std::string> flags = {"--header-timeout=300ms", "--idle-timeout=400ms"};
  ServerProcess server = co_await ServerProcess::start(flags);
  {
    // Connects and never speaks: closed, with nothing sent, after the
    // header timeout (counted from the accept, which follows the start of
    // the connect).
    const TimePoint start = get_running_loop().time();
    auto [r, w] = co_await open_connection("127.0.0.1", server.port());
    EXPECT_EQ(co_await timeout(5s, r.read()), "");
    EXPECT_GE(since(start), 300ms);
    EXPECT_LT(since(start), 3000ms);
  }
  {
    // A kept-alive client that asks every 150 ms stays served longer than
    // either timeout; once it stops asking it is closed after the idle one.
    // The idle wait starts after the server received the last request, so
    // the close comes no earlier than the idle timeout after it was sent.
    auto [r, w] = co_await open_connection("127.0.0.1", server.port());
    TimePoint last_sent;
    for (int i = 0; i < 5; ++i) {
      if (i > 0) co_await sleep(150ms);
      last_sent = get_running_loop().time();
      w.write(kGet);
      EXPECT_EQ(co_await timeout(5s, r.readexactly(kHelloResponse.size())), kHelloResponse);
    }
    EXPECT_EQ(co_await timeout(5s, r.read()), "");
    EXPECT_GE(since(last_sent), 400ms);
    EXPECT_LT(since(last_sent), 3000ms);
  }
  co_await stop_quietly(server);
}

// Sends `data` on a new connection, then resets it (SO_LINGER 0) without
// reading what the server answered.
Coro<void> send_and_reset(std::uint16_t port, std::string data, Duration before_reset) {
  Socket s = co_await create_connection("127.0.0.1", port);
  co_await s.sendall(data);
  co_await sleep(before_reset);
  linger l{1, 0};
  if (setsockopt(s.fd(), SOL_SOCKET, SO_LINGER, &l, sizeof l) != 0) throw_errno("setsockopt");
  s.close();
}

Coro<long> good_client(std::uint16_t port, int requests) {
  auto [r, w] = co_await open_connection("127.0.0.1", port);
  long ok = 0;
  for (int i = 0; i < requests; ++i) {
    w.write(kGet);
    if (co_await timeout(5s, r.readexactly(kHelloResponse.size())) == kHelloResponse) ++ok;
  }
  w.close();
  co_return ok;
}

WEFT_CO_TEST(HttpHelloServer, ResetsMidPipelineEndQuietlyWhileGoodClientsAreServed) {
  Watchdog wd(25s);
  const std::vector<std::string> flags = {"--header-timeout=2s", "--idle-timeout=2s"};
  ServerProcess server = co_await ServerProcess::start(flags);
  const int kGood = 4;
  const int kRequests = testing::scaled(200, 50);
  std::vector<Task<long>> good;
  for (int i = 0; i < kGood; ++i) good.push_back(create_task(good_client(server.port(), kRequests)));
  std::string pipeline;
  for (int i = 0; i < 64; ++i) pipeline += kGet;
  std::vector<Task<void>> bad;
  for (int round = 0; round < testing::scaled(20, 5); ++round) {
    // Many pipelined requests, then a reset while the answers are being
    // written; half a head, then a reset; half a body, then a plain close.
    bad.push_back(create_task(send_and_reset(server.port(), pipeline, std::chrono::milliseconds(round % 3))));
    bad.push_back(create_task(send_and_reset(server.port(), "GET / HTTP/1.1\r\nHo", 5ms)));
    bad.push_back(create_task(
        [](std::uint16_t port) -> Coro<void> {
          auto [r, w] = co_await open_connection("127.0.0.1", port);
          w.write("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nhalf");
          co_await w.drain();
          w.close();
          co_await w.wait_closed();
        }(server.port())));
  }
  for (auto& t : bad) co_await t;
  for (auto& t : good) EXPECT_EQ(co_await t, kRequests);
  co_await expect_served(server.port());
  co_await stop_quietly(server);
}

}  // namespace
}  // namespace weft

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <http_hello binary>\n", argv[0]);
    return 2;
  }
  weft::g_binary = argv[1];
  return RUN_ALL_TESTS();
}
