#include "weft/bench/net_workloads.h"

#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "weft/bench/child_process.h"

namespace weft::bench {
namespace {

using std::chrono::seconds;

// How long a server may take to print LISTEN (a sanitizer build starts slowly).
constexpr auto kListenTimeout = seconds(60);
// Beyond its expected use, how long a server lives on by itself if the bench
// dies without stopping it.
constexpr double kServerSpareSeconds = 60;

std::string format_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", s);
  return buf;
}

// Starts `<exe> <flags> <mode> <max_s>` and reads its LISTEN line.
ChildProcess start_server(const ServerCommand& server, const char* mode, double max_seconds,
                          std::uint16_t* port) {
  std::vector<std::string> argv{server.exe};
  argv.insert(argv.end(), server.flags.begin(), server.flags.end());
  argv.push_back(mode);
  argv.push_back(format_seconds(max_seconds));
  ChildProcess child = ChildProcess::spawn(argv);
  const std::string line = child.read_line(kListenTimeout);
  unsigned p = 0;
  char extra = 0;
  if (std::sscanf(line.c_str(), "LISTEN %u%c", &p, &extra) != 1 || p == 0 || p > 65535) {
    throw std::runtime_error(std::string(mode) + ": expected `LISTEN <port>`, got `" + line + "`");
  }
  *port = static_cast<std::uint16_t>(p);
  return child;
}

// Stops the server and returns its wait status (graceful stop on SIGTERM).
int stop_server(ChildProcess& child) { return child.stop(seconds(10)); }

// Rethrows `e` (a client's failure) with how the server ended, which often
// explains it (a crash, a sanitizer report).
[[noreturn]] void throw_with_server_status(const std::exception& e, ChildProcess& server) {
  // A server that died made the client fail moments ago: give it a moment to
  // be reaped, so that the message can tell a crash from a stop.
  const bool was_running = !server.wait_for_exit(std::chrono::milliseconds(200)).has_value();
  const int status = stop_server(server);
  throw std::runtime_error(std::string(e.what()) + " (server: " +
                           (was_running ? "still running, then stopped: " : "") +
                           describe_wait_status(status) + ")");
}

// wrk's durations: "595.00us", "1.01ms", "2.00s", "1.00m", "1.00h".
double wrk_time_us(const std::string& token, const std::string& line) {
  char* end = nullptr;
  const double v = std::strtod(token.c_str(), &end);
  const std::string unit(end);
  if (end == token.c_str() || !(v >= 0)) {
    throw std::runtime_error("wrk: cannot read the time in `" + line + "`");
  }
  if (unit == "us") return v;
  if (unit == "ms") return v * 1e3;
  if (unit == "s") return v * 1e6;
  if (unit == "m") return v * 60e6;
  if (unit == "h") return v * 3600e6;
  throw std::runtime_error("wrk: unknown time unit in `" + line + "`");
}

}  // namespace

TcpEchoResult tcp_echo(const ServerCommand& server, EchoLoadOptions load) {
  const double run_s = std::chrono::duration<double>(load.warmup + load.duration).count();
  TcpEchoResult r;
  ChildProcess child = start_server(server, "echo-server", run_s + kServerSpareSeconds, &r.port);
  load.port = r.port;
  try {
    r.load = run_echo_load(load);
  } catch (const std::exception& e) {
    throw_with_server_status(e, child);
  }
  r.server_status = stop_server(child);
  return r;
}

WrkReport parse_wrk_output(const std::string& text) {
  WrkReport r;
  bool have_rate = false, have_p50 = false, have_p99 = false, have_requests = false;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string first;
    words >> first;
    if (first == "Requests/sec:") {
      if (!(words >> r.req_per_s)) throw std::runtime_error("wrk: bad line `" + line + "`");
      have_rate = true;
    } else if (first == "50%" || first == "99%") {
      std::string value;
      if (!(words >> value)) throw std::runtime_error("wrk: bad line `" + line + "`");
      (first == "50%" ? r.p50_us : r.p99_us) = wrk_time_us(value, line);
      (first == "50%" ? have_p50 : have_p99) = true;
    } else if (first == "Socket") {
      unsigned long long c = 0, rd = 0, wr = 0, to = 0;
      if (std::sscanf(line.c_str(), " Socket errors: connect %llu, read %llu, write %llu, timeout %llu",
                      &c, &rd, &wr, &to) != 4) {
        throw std::runtime_error("wrk: bad line `" + line + "`");
      }
      r.socket_errors = c + rd + wr + to;
    } else if (first == "Non-2xx") {
      unsigned long long n = 0;
      if (std::sscanf(line.c_str(), " Non-2xx or 3xx responses: %llu", &n) != 1) {
        throw std::runtime_error("wrk: bad line `" + line + "`");
      }
      r.non_2xx = n;
    } else if (!first.empty() && line.find(" requests in ") != std::string::npos) {
      char* end = nullptr;
      r.requests = std::strtoull(first.c_str(), &end, 10);
      if (*end != '\0') throw std::runtime_error("wrk: bad line `" + line + "`");
      have_requests = true;
    }
  }
  if (!have_rate) throw std::runtime_error("wrk: no `Requests/sec:` line in its report");
  if (!have_p50 || !have_p99) {
    throw std::runtime_error("wrk: no 50%/99% latency lines in its report (run with --latency)");
  }
  if (!have_requests) throw std::runtime_error("wrk: no `N requests in` line in its report");
  return r;
}

HttpHelloResult http_hello(const ServerCommand& server, const WrkOptions& wrk) {
  const std::string wrk_path = find_in_path(wrk.wrk);
  if (wrk_path.empty()) {
    throw std::runtime_error("`" + wrk.wrk + "` not found in PATH (Debian: apt-get install wrk)");
  }
  if (wrk.threads == 0 || wrk.connections < wrk.threads || wrk.seconds == 0 ||
      wrk.seconds > 3600) {
    throw std::invalid_argument(
        "http_hello: wrk needs threads >= 1, connections >= threads, 1 <= seconds <= 3600");
  }
  HttpHelloResult r;
  ChildProcess server_child =
      start_server(server, "http-server", wrk.seconds + kServerSpareSeconds, &r.port);
  try {
    ChildProcess wrk_child = ChildProcess::spawn(
        {wrk_path, "-t" + std::to_string(wrk.threads), "-c" + std::to_string(wrk.connections),
         "-d" + std::to_string(wrk.seconds) + "s", "--latency",
         "http://127.0.0.1:" + std::to_string(r.port) + "/"});
    const std::string report = wrk_child.read_to_eof(seconds(wrk.seconds + 30));
    const std::optional<int> wrk_status = wrk_child.wait_for_exit(seconds(10));
    if (!wrk_status || !WIFEXITED(*wrk_status) || WEXITSTATUS(*wrk_status) != 0) {
      throw std::runtime_error("wrk " +
                               (wrk_status ? describe_wait_status(*wrk_status)
                                           : std::string("did not exit after its report")) +
                               "; it printed:\n" + report);
    }
    try {
      r.wrk = parse_wrk_output(report);
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(std::string(e.what()) + "; wrk printed:\n" + report);
    }
  } catch (const std::exception& e) {  // ~ChildProcess has stopped and reaped wrk
    throw_with_server_status(e, server_child);
  }
  r.server_status = stop_server(server_child);
  return r;
}

}  // namespace weft::bench
