// weft's throughput harness: the workloads W1-W9 of shared/perf/README.md,
// and weft's own W10 (pipeline) and M1 (idle memory), in the output format a
// peer harness reads beside Tokio, Go, oneTBB, Asio and asyncio/uvloop.
//
// Usage:
//   throughput [--workers=N] [--scale=F] [--json] [--no-absl-deadlock-detection] [WORKLOAD...]
//   throughput [--scale=F] [--json] --server=PATH W8|W9...
//   throughput [--workers=N] [--no-absl-deadlock-detection] echo-server|http-server <max_s>
// WORKLOAD is a name (spawn_local, ...) or an id (W1..W10, M1, any case); none
// means W1-W7. --workers defaults to the core count. --scale multiplies the
// sizes (for quick looks and the smoke test; figures are only comparable at
// the default 1). --no-absl-deadlock-detection: see bench/README.md.
// The server modes are W8's and W9's servers (servers.h): LISTEN <port> on
// stdout, serve until SIGTERM/SIGINT/SIGKILL or for at most max_s seconds.
//
// Output contract: one line per figure on stdout,
//   weft <workload> <metric> <value> <unit>
// (with --json, one JSON object per line with those five fields) and
// everything else (progress, per-run figures, notes) on stderr; on a
// terminal, a ticker line says what runs and for how long.
// Exit status: 0 when every requested figure was produced; 1 when a workload
// failed or computed a wrong result (its figures are then not printed); 2 for
// a bad command line, an unknown workload, or W9 without wrk in $PATH, all
// rejected before anything runs.
//
// Repetitions: W1, W2: 5 runs, best and median. W3: best of 3. W4-W7: median
// of 3, and so does W10. W8, W9: one run of the defined length (0.5 s + 5 s; 5 s). M1: one run. Each of
// W1-W7 gets one Runtime, reused by its runs; timing is done inside the
// runtime (workloads.h). W8 and W9 start this binary as their server
// (net_workloads.h).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "weft/bench/child_process.h"
#include "weft/bench/net_workloads.h"
#include "weft/bench/pipeline_workload.h"
#include "weft/bench/servers.h"
#include "weft/bench/workloads.h"
#include "weft/weft.h"

namespace weft::bench {
namespace {

struct Options {
  std::uint32_t workers = 0;
  double scale = 1.0;
  bool absl_deadlock_detection_off = false;
  // --server: W8/W9 load this program's server modes instead of ours.
  std::string server;
  // --json: every figure as a JSON object on its own line.
  bool json = false;
};

// The first word of every figure: `weft`, or the --server program's name.
std::string g_label = "weft";

// --- Output ------------------------------------------------------------------

// --json: set by main before any workload runs.
bool g_json = false;

// `text` as a JSON string.
std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  return out + '"';
}

// A figure on stdout, in the contract's format (or, with --json, as
// {"impl", "workload", "metric", "value", "unit"}). `decimals` is 0 for
// counts and rates.
void emit(const char* workload, const char* metric, double value, int decimals,
          const char* unit) {
  if (g_json) {
    std::printf("{\"impl\": %s, \"workload\": %s, \"metric\": %s, \"value\": %.*f, \"unit\": %s}\n",
                json_string(g_label).c_str(), json_string(workload).c_str(),
                json_string(metric).c_str(), decimals, value, json_string(unit).c_str());
  } else {
    std::printf("%s %s %s %.*f %s\n", g_label.c_str(), workload, metric, decimals, value, unit);
  }
  std::fflush(stdout);
}

// stderr is shared by the per-run lines and, on a terminal, the ticker's
// line (Ticker below), which a per-run line first wipes.
absl::Mutex g_stderr_mu;
bool g_ticker_shown ABSL_GUARDED_BY(g_stderr_mu) = false;

template <typename... A>
void progress(const char* fmt, A... a) {
  absl::MutexLock lock(&g_stderr_mu);
  if (g_ticker_shown) {
    std::fputs("\r\033[K", stderr);
    g_ticker_shown = false;
  }
  std::fprintf(stderr, fmt, a...);
  std::fputc('\n', stderr);
}

// On a terminal, one line under the per-run lines that says what runs and
// for how long (and of how long, where the workload's length is set), redrawn
// every 250 ms, so that W8-W10's quiet seconds do not look hung. Off when
// stderr is not a terminal (CI, pipes, a peer harness reading the output):
// then no thread is started.
class Ticker {
 public:
  Ticker(std::string what, double expected_s) : what_(std::move(what)), expected_s_(expected_s) {
    if (isatty(STDERR_FILENO) == 1) thread_ = std::thread([this] { loop(); });
  }
  ~Ticker() {
    if (!thread_.joinable()) return;
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    thread_.join();
  }
  Ticker(const Ticker&) = delete;
  Ticker& operator=(const Ticker&) = delete;

 private:
  void loop() {
    const auto t0 = std::chrono::steady_clock::now();
    absl::MutexLock lock(&mu_);
    while (!mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::Milliseconds(250))) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      absl::MutexLock out(&g_stderr_mu);
      if (expected_s_ > 0) {
        std::fprintf(stderr, "\r\033[K%s: %.1f s of ~%.1f s", what_.c_str(), s, expected_s_);
      } else {
        std::fprintf(stderr, "\r\033[K%s: %.1f s", what_.c_str(), s);
      }
      g_ticker_shown = true;
    }
    absl::MutexLock out(&g_stderr_mu);
    if (g_ticker_shown) std::fputs("\r\033[K", stderr);
    g_ticker_shown = false;
  }

  const std::string what_;
  const double expected_s_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// Set when a workload's results are wrong; main returns 1.
bool g_failed = false;

// Checks a workload's result; a wrong result is reported and its figures are
// not printed.
bool check(bool ok, const char* workload, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "error: %s: wrong result: %s\n", workload, what.c_str());
    g_failed = true;
  }
  return ok;
}

double best_of(std::vector<double> v) { return *std::max_element(v.begin(), v.end()); }
double lowest_of(std::vector<double> v) { return *std::min_element(v.begin(), v.end()); }
double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::uint32_t scaled(std::uint32_t n, const Options& o) {
  return static_cast<std::uint32_t>(std::max(1.0, std::round(n * o.scale)));
}

RuntimeOptions runtime_options(const Options& o) {
  RuntimeOptions ro;
  ro.workers = o.workers;
  return ro;
}

// --- Workloads -----------------------------------------------------------------

constexpr int kSpawnRuns = 5;
constexpr int kBestOfRuns = 3;
constexpr int kMedianRuns = 3;

void run_spawn_local(const Options& o) {
  const std::uint32_t n = scaled(200'000, o);
  Runtime rt(runtime_options(o));
  std::vector<double> rates;
  for (int run = 1; run <= kSpawnRuns; ++run) {
    SpawnLocalResult r = spawn_local(rt, n);
    if (!check(r.counter == n, "spawn_local",
               "counter " + std::to_string(r.counter) + " != " + std::to_string(n))) {
      return;
    }
    rates.push_back(n / r.seconds);
    progress("  spawn_local run %d/%d: %u tasks in %.1f ms = %.0f tasks/s", run, kSpawnRuns, n,
             r.seconds * 1e3, rates.back());
  }
  emit("spawn_local", "best", best_of(rates), 0, "tasks/s");
  emit("spawn_local", "median", median_of(rates), 0, "tasks/s");
}

void run_spawn_remote(const Options& o) {
  const std::uint32_t n = scaled(200'000, o);
  Runtime rt(runtime_options(o));
  std::vector<double> rates;
  for (int run = 1; run <= kSpawnRuns; ++run) {
    SpawnRemoteResult r = spawn_remote(rt, n);
    if (!check(r.ran == n, "spawn_remote",
               "ran " + std::to_string(r.ran) + " != " + std::to_string(n))) {
      return;
    }
    rates.push_back(n / r.seconds);
    progress("  spawn_remote run %d/%d: %u tasks in %.1f ms = %.0f tasks/s", run, kSpawnRuns, n,
             r.seconds * 1e3, rates.back());
  }
  emit("spawn_remote", "best", best_of(rates), 0, "tasks/s");
  emit("spawn_remote", "median", median_of(rates), 0, "tasks/s");
}

// fib(27) makes 635,621 tasks; --scale shrinks n so that the task count
// shrinks by about the same factor (each step of n is a factor of phi).
int fib_n(const Options& o) {
  const double phi = (1 + std::sqrt(5.0)) / 2;
  const int cut = static_cast<int>(std::round(std::log(1 / o.scale) / std::log(phi)));
  return std::max(2, 27 - cut);
}

void run_fib(const Options& o) {
  const int n = fib_n(o);
  Runtime rt(runtime_options(o));
  std::vector<double> walls;
  std::uint64_t tasks = 0;
  for (int run = 1; run <= kBestOfRuns; ++run) {
    FibResult r = fib(rt, n);
    if (!check(r.value == expected_fib_value(n), "fib",
               "fib(" + std::to_string(n) + ") = " + std::to_string(r.value)) ||
        !check(r.tasks == expected_fib_tasks(n), "fib",
               std::to_string(r.tasks) + " tasks, expected " +
                   std::to_string(expected_fib_tasks(n)))) {
      return;
    }
    tasks = r.tasks;
    walls.push_back(r.seconds);
    progress("  fib run %d/%d: fib(%d) = %llu, %llu tasks in %.1f ms = %.1f ns/task", run,
             kBestOfRuns, n, static_cast<unsigned long long>(r.value),
             static_cast<unsigned long long>(r.tasks), r.seconds * 1e3, r.seconds * 1e9 / r.tasks);
  }
  const double best = lowest_of(walls);
  emit("fib", "n", n, 0, "n");
  emit("fib", "tasks", static_cast<double>(tasks), 0, "tasks");
  emit("fib", "wall_ms", best * 1e3, 1, "ms");
  emit("fib", "ns_per_task", best * 1e9 / static_cast<double>(tasks), 1, "ns");
}

void run_ping_pong(const Options& o) {
  const std::uint32_t n = scaled(200'000, o);
  Runtime rt(runtime_options(o));
  std::vector<double> per_rtt;
  for (int run = 1; run <= kMedianRuns; ++run) {
    PingPongResult r = ping_pong(rt, n);
    if (!check(r.counter == 2ull * n, "ping_pong",
               "counter " + std::to_string(r.counter) + " != " + std::to_string(2ull * n))) {
      return;
    }
    per_rtt.push_back(r.seconds * 1e9 / n);
    progress("  ping_pong run %d/%d: %u round trips in %.1f ms = %.1f ns/rtt", run, kMedianRuns,
             n, r.seconds * 1e3, per_rtt.back());
  }
  emit("ping_pong", "ns_per_rtt", median_of(per_rtt), 1, "ns");
}

void run_yield_many(const Options& o) {
  const std::uint32_t tasks = 200;
  const std::uint32_t yields = scaled(5'000, o);
  const double total = static_cast<double>(tasks) * yields;
  Runtime rt(runtime_options(o));
  std::vector<double> per_yield;
  for (int run = 1; run <= kMedianRuns; ++run) {
    YieldManyResult r = yield_many(rt, tasks, yields);
    if (!check(r.yields == static_cast<std::uint64_t>(total), "yield_many",
               std::to_string(r.yields) + " yields, expected " +
                   std::to_string(static_cast<std::uint64_t>(total)))) {
      return;
    }
    per_yield.push_back(r.seconds * 1e9 / total);
    progress("  yield_many run %d/%d: %u tasks x %u yields in %.1f ms = %.1f ns/yield", run,
             kMedianRuns, tasks, yields, r.seconds * 1e3, per_yield.back());
  }
  emit("yield_many", "ns_per_yield", median_of(per_yield), 1, "ns");
}

void run_timers(const Options& o) {
  using std::chrono::milliseconds;
  const std::uint32_t tasks = scaled(100'000, o);
  const std::uint32_t timeouts = scaled(1'000'000, o);
  Runtime rt(runtime_options(o));

  std::vector<double> wall_ms, cpu_ms;
  for (int run = 1; run <= kMedianRuns; ++run) {
    TimersResult r = timers(rt, tasks, milliseconds(100));
    if (!check(r.woke == tasks, "timers",
               std::to_string(r.woke) + " of " + std::to_string(tasks) + " sleepers woke") ||
        !check(r.early == 0, "timers", std::to_string(r.early) + " sleeps ended early")) {
      return;
    }
    wall_ms.push_back(r.seconds * 1e3);
    cpu_ms.push_back(r.cpu_seconds * 1e3);
    progress("  timers run %d/%d: %u sleepers (up to %.1f ms): wall %.1f ms, cpu %.1f ms, "
             "worst lateness %.2f ms",
             run, kMedianRuns, tasks, std::chrono::duration<double, std::milli>(r.max_sleep).count(),
             wall_ms.back(), cpu_ms.back(),
             std::chrono::duration<double, std::milli>(r.max_lateness).count());
  }

  auto measure_timeouts = [&](const char* label, TimeoutsResult (*fn)(Runtime&, std::uint32_t),
                              std::vector<double>& out) {
    for (int run = 1; run <= kMedianRuns; ++run) {
      TimeoutsResult r = fn(rt, timeouts);
      if (!check(r.fired == 0, "timers",
                 std::string(label) + ": " + std::to_string(r.fired) + " timeouts fired") ||
          !check(r.completed == timeouts, "timers",
                 std::string(label) + ": the awaited values add up to " +
                     std::to_string(r.completed) + ", expected " + std::to_string(timeouts))) {
        return false;
      }
      out.push_back(r.seconds * 1e9 / timeouts);
      progress("  %s run %d/%d: %u timeouts in %.1f ms = %.1f ns/timeout", label, run,
               kMedianRuns, timeouts, r.seconds * 1e3, out.back());
    }
    return true;
  };
  std::vector<double> ready_ns, armed_ns;
  if (!measure_timeouts("timeouts (ready)", timeouts_ready, ready_ns)) return;
  if (!measure_timeouts("timeouts (armed)", timeouts_armed, armed_ns)) return;

  emit("timers", "wall_ms", median_of(wall_ms), 1, "ms");
  emit("timers", "cpu_ms", median_of(cpu_ms), 1, "ms");
  emit("timers", "ns_per_timeout", median_of(ready_ns), 1, "ns");
  emit("timers", "ns_per_timeout_armed", median_of(armed_ns), 1, "ns");
}

constexpr auto kOffloadWork = std::chrono::microseconds(2);

void run_offload(const Options& o) {
  const std::uint32_t calls = scaled(20'000, o);
  const std::uint32_t tasks = std::min<std::uint32_t>(256, calls);
  const OffloadWork work = calibrate_offload_work(kOffloadWork);
  progress("  offload: %llu chain steps per call, %.0f ns per call on this thread",
           static_cast<unsigned long long>(work.iterations), work.ns_per_call);
  Runtime rt(runtime_options(o));
  std::vector<double> rates;
  for (int run = 1; run <= kMedianRuns; ++run) {
    OffloadResult r = offload(rt, calls, tasks, work);
    if (!check(r.completed == calls, "offload",
               std::to_string(r.completed) + " of " + std::to_string(calls) +
                   " calls returned the expected value") ||
        !check(r.on_loop_thread == 0, "offload",
               std::to_string(r.on_loop_thread) + " calls ran on a loop's thread")) {
      return;
    }
    rates.push_back(calls / r.seconds);
    progress("  offload run %d/%d: %u calls from %u tasks in %.1f ms = %.0f calls/s", run,
             kMedianRuns, calls, tasks, r.seconds * 1e3, rates.back());
  }
  emit("offload", "calls_per_s", median_of(rates), 0, "calls/s");
  emit("offload", "work_ns", work.ns_per_call, 0, "ns");
}

// This binary in a server mode, with the same runtime options; or the
// --server program, with no options (it picks its own thread count).
ServerCommand server_command(const Options& o) {
  ServerCommand c;
  if (!o.server.empty()) {
    c.exe = o.server;
    return c;
  }
  c.exe = "/proc/self/exe";
  c.flags.push_back("--workers=" + std::to_string(o.workers));
  if (o.absl_deadlock_detection_off) c.flags.push_back("--no-absl-deadlock-detection");
  return c;
}

// Our server modes stop gracefully on SIGTERM; the contract only asks a
// --server program to serve "until it is killed", so dying of that SIGTERM
// is a clean stop for it.
bool check_server_exit(const Options& o, const char* workload, int status) {
  const bool killed_by_stop = !o.server.empty() && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM;
  return check(status == 0 || killed_by_stop, workload,
               "its server did not exit cleanly when stopped: " + describe_wait_status(status));
}

void run_tcp_echo(const Options& o) {
  using std::chrono::duration_cast;
  using std::chrono::nanoseconds;
  EchoLoadOptions load;
  load.connections = 64;
  load.message_size = 64;
  load.warmup = duration_cast<nanoseconds>(std::chrono::duration<double>(0.5 * o.scale));
  load.duration = duration_cast<nanoseconds>(std::chrono::duration<double>(5.0 * o.scale));
  TcpEchoResult r = tcp_echo(server_command(o), load);
  progress("  tcp_echo: port %u, %u connections x %zu-byte messages: %llu sent, %llu echoes "
           "verified, %llu in the %.2f s window; max latency %.0f us",
           r.port, r.load.connections, load.message_size,
           static_cast<unsigned long long>(r.load.sent),
           static_cast<unsigned long long>(r.load.verified),
           static_cast<unsigned long long>(r.load.measured), r.load.seconds, r.load.max_us);
  if (!check(r.load.verified == r.load.sent, "tcp_echo",
             std::to_string(r.load.verified) + " of " + std::to_string(r.load.sent) +
                 " messages echoed") ||
      !check(r.load.measured > 0, "tcp_echo", "no message completed in the measured window") ||
      !check_server_exit(o, "tcp_echo", r.server_status)) {
    return;
  }
  emit("tcp_echo", "msgs_per_s", r.load.msgs_per_s, 0, "msgs/s");
  emit("tcp_echo", "p50_us", r.load.p50_us, 1, "us");
  emit("tcp_echo", "p99_us", r.load.p99_us, 1, "us");
}

WrkOptions wrk_options(const Options& o) {
  WrkOptions w;
  w.threads = 1;
  w.connections = 64;
  w.seconds = static_cast<std::uint32_t>(std::max(1.0, std::round(5 * o.scale)));
  return w;
}

void run_http_hello(const Options& o) {
  const WrkOptions w = wrk_options(o);
  HttpHelloResult r = http_hello(server_command(o), w);
  progress("  http_hello: port %u, wrk -t%u -c%u -d%us: %llu requests, %llu socket errors, "
           "%llu non-2xx/3xx",
           r.port, w.threads, w.connections, w.seconds,
           static_cast<unsigned long long>(r.wrk.requests),
           static_cast<unsigned long long>(r.wrk.socket_errors),
           static_cast<unsigned long long>(r.wrk.non_2xx));
  if (!check(r.wrk.requests > 0, "http_hello", "wrk completed no request") ||
      !check(r.wrk.non_2xx == 0, "http_hello",
             std::to_string(r.wrk.non_2xx) + " responses were not 2xx/3xx") ||
      !check(r.wrk.socket_errors == 0, "http_hello",
             "wrk counted " + std::to_string(r.wrk.socket_errors) + " socket errors") ||
      !check_server_exit(o, "http_hello", r.server_status)) {
    return;
  }
  emit("http_hello", "req_per_s", r.wrk.req_per_s, 0, "req/s");
  emit("http_hello", "p50_us", r.wrk.p50_us, 1, "us");
  emit("http_hello", "p99_us", r.wrk.p99_us, 1, "us");
}

void run_idle_memory(const Options& o) {
  const std::uint32_t tasks = scaled(1'000'000, o);
  Runtime rt(runtime_options(o));
  // One run: the figure is a size, not a time, and the allocator keeps what
  // a first run touched, so a second run in the same process would read less.
  IdleMemoryResult r = idle_memory(rt, tasks);
  if (!check(r.woke == tasks, "idle_memory",
             std::to_string(r.woke) + " of " + std::to_string(tasks) + " parked tasks woke")) {
    return;
  }
  progress("  idle_memory: %u parked tasks added %.1f MB resident = %.1f bytes/task", tasks,
           r.rss_growth / 1e6, r.bytes_per_task);
  emit("idle_memory", "bytes_per_task", r.bytes_per_task, 1, "bytes");
}

void run_pipeline_workload(const Options& o) {
  const std::size_t bytes = std::max(
      kPipelineChunkBytes, static_cast<std::size_t>(std::round(kPipelineInputBytes * o.scale)));
  const std::uint64_t chunks = (bytes + kPipelineChunkBytes - 1) / kPipelineChunkBytes;
  const std::string input = pipeline_input(bytes);
  Runtime rt(runtime_options(o));
  std::vector<double> rates;
  for (int run = 1; run <= kMedianRuns; ++run) {
    PipelineResult r = pipeline(rt, input, kPipelineChunkBytes, kPipelineInFlight);
    if (!check(r.chunks == chunks, "pipeline",
               std::to_string(r.chunks) + " of " + std::to_string(chunks) + " chunks written") ||
        !check(r.sink_bytes == r.written_bytes, "pipeline",
               "the sink received " + std::to_string(r.sink_bytes) + " of " +
                   std::to_string(r.written_bytes) + " bytes") ||
        !check(r.compressed_bytes > 0 && r.compressed_bytes < bytes, "pipeline",
               std::to_string(r.compressed_bytes) + " compressed bytes for " +
                   std::to_string(bytes)) ||
        !check(r.max_in_flight <= kPipelineInFlight + 2, "pipeline",
               std::to_string(r.max_in_flight) + " chunks in flight at once")) {
      return;
    }
    rates.push_back(bytes / 1e6 / r.seconds);
    progress("  pipeline run %d/%d: %zu bytes in %llu chunks -> %llu compressed, %llu written, "
             "in %.1f ms = %.1f MB/s; at most %llu chunks in flight",
             run, kMedianRuns, bytes, static_cast<unsigned long long>(r.chunks),
             static_cast<unsigned long long>(r.compressed_bytes),
             static_cast<unsigned long long>(r.written_bytes), r.seconds * 1e3, rates.back(),
             static_cast<unsigned long long>(r.max_in_flight));
  }
  emit("pipeline", "mb_per_s", median_of(rates), 1, "MB/s");
}

// --- Registry -------------------------------------------------------------------

struct Workload {
  const char* id;
  const char* name;
  void (*run)(const Options&);
  bool by_default;  // run when no workload is named (W1-W7)
};

// The README's workloads, in its order.
constexpr Workload kWorkloads[] = {
    {"W1", "spawn_local", run_spawn_local, true}, {"W2", "spawn_remote", run_spawn_remote, true},
    {"W3", "fib", run_fib, true},                 {"W4", "ping_pong", run_ping_pong, true},
    {"W5", "yield_many", run_yield_many, true},   {"W6", "timers", run_timers, true},
    {"W7", "offload", run_offload, true},         {"W8", "tcp_echo", run_tcp_echo, false},
    {"W9", "http_hello", run_http_hello, false}, {"W10", "pipeline", run_pipeline_workload, false},
    {"M1", "idle_memory", run_idle_memory, false},
};

bool matches(std::string_view arg, const char* id, const char* name) {
  return arg == name || absl::EqualsIgnoreCase(absl::string_view(arg.data(), arg.size()), id);
}

// How long a workload runs by its definition (for the ticker); 0 when that
// depends on the machine.
double expected_seconds(const Workload& w, const Options& o) {
  if (w.run == run_tcp_echo) return 5.5 * o.scale;
  if (w.run == run_http_hello) return wrk_options(o).seconds;
  return 0;
}

void usage(std::FILE* f) {
  std::fprintf(f,
               "usage: throughput [--workers=N] [--scale=F] [--json] [--no-absl-deadlock-detection] "
               "[WORKLOAD...]\n"
               "       throughput [--workers=N] [--no-absl-deadlock-detection] "
               "echo-server|http-server <max_s>\n"
               "       throughput [--scale=F] [--json] --server=PATH W8|W9...\n"
               "WORKLOAD: a name, W1..W10 or M1; none runs W1-W7:");
  for (const Workload& w : kWorkloads) std::fprintf(f, " %s(%s)", w.id, w.name);
  std::fprintf(f,
               "\n--workers=N  worker threads (default: the core count)\n"
               "--scale=F    multiply the workload sizes by F in (0, 1] (default 1)\n"
               "--json       print each figure as a JSON object on its own line\n"
               "             ({\"impl\", \"workload\", \"metric\", \"value\", \"unit\"})\n"
               "--no-absl-deadlock-detection\n"
               "             switch off Abseil's mutex deadlock detection (also:\n"
               "             WEFT_BENCH_ABSL_DEADLOCK_DETECTION=off); see bench/README.md\n"
               "echo-server, http-server: W8's and W9's servers on 127.0.0.1 (prints\n"
               "             LISTEN <port>; stops on SIGTERM or after max_s seconds)\n"
               "--server=PATH  W8/W9 load `PATH echo-server|http-server <max_s>` (another\n"
               "             runtime's server, same contract) instead of weft's; its figures\n"
               "             are labelled with PATH's file name\n"
               "W9 runs wrk, which must be in PATH.\n");
}

bool parse_uint(std::string_view s, std::uint32_t* out) {
  if (s.empty() || s.size() > 6) return false;
  std::uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint32_t>(c - '0');
  }
  *out = v;
  return true;
}

void apply_absl_deadlock_detection(Options& opts) {
  if (const char* env = std::getenv("WEFT_BENCH_ABSL_DEADLOCK_DETECTION")) {
    if (std::string_view(env) == "off") opts.absl_deadlock_detection_off = true;
  }
  if (opts.absl_deadlock_detection_off) {
    // Opt-in only, so that the default figures are what a weft user gets.
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  }
}

// `echo-server <max_s>` / `http-server <max_s>`: args are what follows the mode.
int server_main(Options& opts, ServerKind kind, const std::vector<std::string_view>& args) {
  const char* mode = kind == ServerKind::kEcho ? "echo-server" : "http-server";
  double max_s = 0;
  if (args.size() == 1) {
    std::string v(args[0]);
    char* end = nullptr;
    max_s = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0') max_s = 0;
  }
  if (args.size() != 1 || !(max_s > 0 && max_s <= 86400)) {
    std::fprintf(stderr, "error: want `%s <max_s>` with 0 < max_s <= 86400 (seconds)\n", mode);
    return 2;
  }
  if (opts.scale != 1) {
    std::fprintf(stderr, "error: --scale does not apply to %s\n", mode);
    return 2;
  }
  apply_absl_deadlock_detection(opts);
  try {
    return run_server(kind, max_s, opts.workers);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s: %s\n", mode, e.what());
    return 1;
  }
}

int harness_main(int argc, char** argv) {
  Options opts;
  opts.workers = std::max(1u, std::thread::hardware_concurrency());
  std::vector<const Workload*> selected;

  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    }
    if (a.rfind("--workers=", 0) == 0) {
      if (!parse_uint(a.substr(10), &opts.workers) || opts.workers == 0 || opts.workers > 1024) {
        std::fprintf(stderr, "error: bad %s (want --workers=N, 1 <= N <= 1024)\n", argv[i]);
        return 2;
      }
      continue;
    }
    if (a == "--no-absl-deadlock-detection") {
      opts.absl_deadlock_detection_off = true;
      continue;
    }
    if (a == "--json") {
      opts.json = true;
      continue;
    }
    if (a.rfind("--server=", 0) == 0) {
      opts.server = std::string(a.substr(9));
      if (opts.server.empty() || access(opts.server.c_str(), X_OK) != 0) {
        std::fprintf(stderr, "error: bad %s (want the path of an executable server)\n", argv[i]);
        return 2;
      }
      continue;
    }
    if (a.rfind("--scale=", 0) == 0) {
      char* end = nullptr;
      std::string v(a.substr(8));
      opts.scale = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(opts.scale > 0 && opts.scale <= 1)) {
        std::fprintf(stderr, "error: bad %s (want --scale=F, 0 < F <= 1)\n", argv[i]);
        return 2;
      }
      continue;
    }
    if (a == "echo-server" || a == "http-server") {
      if (!selected.empty()) {
        std::fprintf(stderr, "error: `%s` is a mode of its own: no workloads with it\n", argv[i]);
        return 2;
      }
      // Options may come first; everything after the mode is its argument.
      std::vector<std::string_view> rest(argv + i + 1, argv + argc);
      return server_main(opts, a == "echo-server" ? ServerKind::kEcho : ServerKind::kHttp, rest);
    }
    const Workload* found = nullptr;
    for (const Workload& w : kWorkloads) {
      if (matches(a, w.id, w.name)) found = &w;
    }
    if (found != nullptr) {
      selected.push_back(found);
      continue;
    }
    std::fprintf(stderr, "error: unknown workload or option `%s`\n", argv[i]);
    usage(stderr);
    return 2;
  }

  if (!opts.server.empty()) {
    // Only the network workloads have a server to swap.
    if (selected.empty()) {
      std::fprintf(stderr, "error: --server needs W8 and/or W9\n");
      return 2;
    }
    for (const Workload* w : selected) {
      if (w->run != run_tcp_echo && w->run != run_http_hello) {
        std::fprintf(stderr, "error: --server measures W8/W9 only, not %s (%s)\n", w->id,
                     w->name);
        return 2;
      }
    }
    const std::size_t slash = opts.server.rfind('/');
    g_label = slash == std::string::npos ? opts.server : opts.server.substr(slash + 1);
  }
  if (selected.empty()) {
    for (const Workload& w : kWorkloads) {
      if (w.by_default) selected.push_back(&w);
    }
  }
  for (const Workload* w : selected) {
    if (w->run == run_http_hello && find_in_path(wrk_options(opts).wrk).empty()) {
      std::fprintf(stderr,
                   "error: W9 (http_hello) needs wrk, which is not in PATH (%s); install it "
                   "(Debian: apt-get install wrk, or tools/setup.sh). Nothing was run.\n",
                   std::getenv("PATH") != nullptr ? std::getenv("PATH") : "unset");
      return 2;
    }
  }
  apply_absl_deadlock_detection(opts);
  g_json = opts.json;
  if (!opts.server.empty()) progress("throughput: the server is %s", opts.server.c_str());
  progress("throughput: %u workers%s; Abseil mutex deadlock detection: %s", opts.workers,
           opts.scale == 1 ? "" : (", scale " + std::to_string(opts.scale) +
                                   " (figures not comparable with the README's)")
                                      .c_str(),
           opts.absl_deadlock_detection_off
               ? "off (--no-absl-deadlock-detection)"
               : "library default (on if libabsl was built without NDEBUG, as Debian's is; "
                 "it costs every absl::Mutex lock a global graph update)");
  for (const Workload* w : selected) {
    progress("%s %s ...", w->id, w->name);
    try {
      Ticker ticker(absl::StrFormat("%s %s", w->id, w->name), expected_seconds(*w, opts));
      w->run(opts);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: %s failed: %s\n", w->name, e.what());
      g_failed = true;
    } catch (const CancelledError& e) {
      std::fprintf(stderr, "error: %s was cancelled: %s\n", w->name, e.what());
      g_failed = true;
    }
  }
  return g_failed ? 1 : 0;
}

}  // namespace
}  // namespace weft::bench

int main(int argc, char** argv) { return weft::bench::harness_main(argc, argv); }
