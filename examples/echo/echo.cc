// An echo server and its client, on weft streams.
//
//   echo server [--port=0] [--workers=0] [--max-seconds=60]
//       Listens on 127.0.0.1, prints "LISTEN <port>" on stdout, echoes every
//       byte back. Stops gracefully on SIGINT or SIGTERM (or after
//       --max-seconds): stops accepting, gives open connections one second
//       to finish, then cancels them, and exits 0.
//   echo client --port=N [--connections=8] [--messages=100] [--size=64]
//       Opens the connections at once; each sends its messages one by one
//       and checks every echo. Prints "OK <n> messages" and exits 0, or
//       exits 1 on the first mismatch or error.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "examples/example_support.h"
#include "weft/weft.h"

namespace {

using namespace std::chrono_literals;

// --- server -----------------------------------------------------------------

weft::Coro<void> handle_echo(weft::StreamReader r, weft::StreamWriter w) {
  try {
    for (;;) {
      std::string data = co_await r.read(64 * 1024);
      if (data.empty()) break;  // EOF
      w.write(data);
      co_await w.drain();  // backpressure: never queue more than the high-water mark
    }
  } catch (const weft::ConnectionError&) {
    // The client reset the connection or stopped reading (reset, broken
    // pipe): its way to leave, not a bug. Anything else escapes to weft's
    // report.
  }
  w.close();
  co_await w.wait_closed();
}

weft::Coro<void> forward_signal(weft::Future<int> stop) {
  int sig = co_await weft::wait_signal(SIGINT, SIGTERM);
  stop.try_set_result(sig);
}

weft::Coro<int> run_server(std::uint16_t port, long max_seconds) {
  weft::Server server = co_await weft::start_server(handle_echo, "127.0.0.1", port);
  std::printf("LISTEN %u\n", server.port());
  std::fflush(stdout);

  weft::Future<int> stop;  // the signal number, or 0 for the time limit
  auto signals = weft::create_task(forward_signal(stop));
  weft::TimerHandle limit =
      weft::call_later(std::chrono::seconds(max_seconds), [stop] { stop.try_set_result(0); });
  const int why = co_await stop;
  signals.cancel();
  limit.cancel();

  // Graceful shutdown: no new connections; a second for the open ones.
  co_await weft_examples::close_gracefully(server, 1s);
  std::fprintf(stderr, "echo server: stopped by %s after %llu connections\n",
               why ? strsignal(why) : "the time limit",
               static_cast<unsigned long long>(server.accepted_connections()));
  co_return 0;
}

// --- client -----------------------------------------------------------------

weft::Coro<long> client_connection(std::uint16_t port, long messages, long size, int id) {
  auto [r, w] = co_await weft::open_connection("127.0.0.1", port);
  long ok = 0;
  for (long m = 0; m < messages; ++m) {
    std::string msg(static_cast<std::size_t>(size), '\0');
    for (long i = 0; i < size; ++i) msg[i] = static_cast<char>('a' + (id * 7 + m + i) % 26);
    w.write(msg);
    co_await w.drain();
    if (co_await r.readexactly(msg.size()) != msg) {
      throw std::runtime_error("echo mismatch on connection " + std::to_string(id));
    }
    ++ok;
  }
  w.close();
  co_await w.wait_closed();
  co_return ok;
}

weft::Coro<int> run_client(std::uint16_t port, long connections, long messages, long size) {
  std::vector<weft::Task<long>> tasks;
  for (long c = 0; c < connections; ++c) {
    tasks.push_back(weft::create_task(client_connection(port, messages, size, static_cast<int>(c))));
  }
  co_return co_await weft_examples::join_clients(std::move(tasks), "echo client", "messages");
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
                                  f.number("connections", 8), f.number("messages", 100),
                                  f.number("size", 64)),
                       std::move(options));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
  std::fprintf(stderr, "unknown mode '%s'\n", mode.c_str());
  return 2;
}
