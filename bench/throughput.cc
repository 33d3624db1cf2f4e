// weft's throughput harness: the workloads W1-W9 of shared/perf/README.md, in
// the output format a peer harness reads beside Tokio, Go, oneTBB, Asio and
// asyncio/uvloop.
//
// Usage:
//   throughput [--workers=N] [--scale=F] [--no-absl-deadlock-detection] [WORKLOAD...]
//   throughput echo-server <max_s> | http-server <max_s>     (W8/W9: not yet)
// WORKLOAD is a name (spawn_local, ...) or an id (W1..W9, any case); none
// means W1-W7. --workers defaults to the core count. --scale multiplies the
// sizes (for quick looks and the smoke test; figures are only comparable at
// the default 1). --no-absl-deadlock-detection: see bench/README.md.
//
// Output contract: one line per figure on stdout,
//   weft <workload> <metric> <value> <unit>
// and everything else (progress, per-run figures, notes) on stderr.
// Exit status: 0 when every requested figure was produced; 1 when a workload
// failed or computed a wrong result (its figures are then not printed); 2 for
// a bad command line, an unknown workload, or one weft cannot run yet (W7
// offload, W8/W9 and their server modes).
//
// Repetitions: W1, W2: 5 runs, best and median. W3: best of 3. W4-W6: median
// of 3. Each workload gets one Runtime, reused by its runs; timing is done
// inside the runtime (workloads.h).
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

#include "absl/synchronization/mutex.h"
#include "weft/bench/workloads.h"
#include "weft/weft.h"

namespace weft::bench {
namespace {

struct Options {
  std::uint32_t workers = 0;
  double scale = 1.0;
  bool absl_deadlock_detection_off = false;
};

// --- Output ------------------------------------------------------------------

// A figure on stdout, in the contract's format. `decimals` is 0 for counts
// and rates.
void emit(const char* workload, const char* metric, double value, int decimals,
          const char* unit) {
  std::printf("weft %s %s %.*f %s\n", workload, metric, decimals, value, unit);
  std::fflush(stdout);
}

template <typename... A>
void progress(const char* fmt, A... a) {
  std::fprintf(stderr, fmt, a...);
  std::fputc('\n', stderr);
}

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
      if (!check(r.completed == timeouts, "timers",
                 std::string(label) + ": " + std::to_string(r.completed) + " of " +
                     std::to_string(timeouts) + " completed") ||
          !check(r.fired == 0, "timers",
                 std::string(label) + ": " + std::to_string(r.fired) + " timeouts fired") ||
          !check(r.not_cancelled == 0, "timers",
                 std::string(label) + ": " + std::to_string(r.not_cancelled) +
                     " timers could not be cancelled")) {
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

// --- Registry -------------------------------------------------------------------

struct Workload {
  const char* id;
  const char* name;
  void (*run)(const Options&);
};

// What the harness measures today, in the README's order.
constexpr Workload kWorkloads[] = {
    {"W1", "spawn_local", run_spawn_local}, {"W2", "spawn_remote", run_spawn_remote},
    {"W3", "fib", run_fib},                 {"W4", "ping_pong", run_ping_pong},
    {"W5", "yield_many", run_yield_many},   {"W6", "timers", run_timers},
};

// README workloads weft cannot run yet, and why. A workload moves to
// kWorkloads when the API it needs lands.
struct NotYet {
  const char* id;
  const char* name;
  const char* why;
};
constexpr NotYet kNotYet[] = {
    {"W7", "offload", "weft::to_thread is not implemented yet"},
    {"W8", "tcp_echo", "it needs weft's io layer (served by `echo-server <max_s>`), not written yet"},
    {"W9", "http_hello",
     "it needs weft's io layer (served by `http-server <max_s>`), not written yet"},
};
// The README's default set: W1-W7.
constexpr std::string_view kDefaultLast = "W7";

bool matches(std::string_view arg, const char* id, const char* name) {
  if (arg == name) return true;
  return arg.size() == 2 && std::toupper(static_cast<unsigned char>(arg[0])) == id[0] &&
         arg[1] == id[1];
}

void usage(std::FILE* f) {
  std::fprintf(f,
               "usage: throughput [--workers=N] [--scale=F] [--no-absl-deadlock-detection] "
               "[WORKLOAD...]\n"
               "       throughput echo-server <max_s> | http-server <max_s>\n"
               "WORKLOAD: a name or W1..W9; none runs W1-W7. Available:");
  for (const Workload& w : kWorkloads) std::fprintf(f, " %s(%s)", w.id, w.name);
  std::fprintf(f, "\nNot yet:");
  for (const NotYet& w : kNotYet) std::fprintf(f, " %s(%s)", w.id, w.name);
  std::fprintf(f,
               "\n--workers=N  worker threads (default: the core count)\n"
               "--scale=F    multiply the workload sizes by F in (0, 1] (default 1)\n"
               "--no-absl-deadlock-detection\n"
               "             switch off Abseil's mutex deadlock detection (also:\n"
               "             WEFT_BENCH_ABSL_DEADLOCK_DETECTION=off); see bench/README.md\n");
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

int harness_main(int argc, char** argv) {
  Options opts;
  opts.workers = std::max(1u, std::thread::hardware_concurrency());
  std::vector<const Workload*> selected;

  if (argc >= 2) {
    std::string_view mode = argv[1];
    if (mode == "echo-server" || mode == "http-server") {
      std::fprintf(stderr,
                   "error: `%s` (W%c) is not supported yet: weft's io layer (sockets, streams) "
                   "is not written; no server was started\n",
                   argv[1], mode == "echo-server" ? '8' : '9');
      return 2;
    }
  }
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
    const Workload* found = nullptr;
    for (const Workload& w : kWorkloads) {
      if (matches(a, w.id, w.name)) found = &w;
    }
    if (found != nullptr) {
      selected.push_back(found);
      continue;
    }
    for (const NotYet& w : kNotYet) {
      if (matches(a, w.id, w.name)) {
        std::fprintf(stderr, "error: %s (%s) cannot be measured yet: %s\n", w.id, w.name, w.why);
        return 2;
      }
    }
    std::fprintf(stderr, "error: unknown workload or option `%s`\n", argv[i]);
    usage(stderr);
    return 2;
  }

  const bool defaults = selected.empty();
  if (defaults) {
    for (const Workload& w : kWorkloads) selected.push_back(&w);
  }
  if (const char* env = std::getenv("WEFT_BENCH_ABSL_DEADLOCK_DETECTION")) {
    if (std::string_view(env) == "off") opts.absl_deadlock_detection_off = true;
  }
  if (opts.absl_deadlock_detection_off) {
    // Opt-in only, so that the default figures are what a weft user gets.
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  }
  progress("throughput: %u workers%s; Abseil mutex deadlock detection: %s", opts.workers,
           opts.scale == 1 ? "" : (", scale " + std::to_string(opts.scale) +
                                   " (figures not comparable with the README's)")
                                      .c_str(),
           opts.absl_deadlock_detection_off
               ? "off (--no-absl-deadlock-detection)"
               : "library default (on if libabsl was built without NDEBUG, as Debian's is; "
                 "it costs every task's absl::Mutex a global graph update)");
  for (const Workload* w : selected) {
    progress("%s %s ...", w->id, w->name);
    try {
      w->run(opts);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: %s failed: %s\n", w->name, e.what());
      g_failed = true;
    } catch (const CancelledError& e) {
      std::fprintf(stderr, "error: %s was cancelled: %s\n", w->name, e.what());
      g_failed = true;
    }
  }
  if (defaults) {
    for (const NotYet& w : kNotYet) {
      if (std::string_view(w.id) <= kDefaultLast) {
        progress("%s %s: skipped, %s", w.id, w.name, w.why);
      }
    }
  }
  return g_failed ? 1 : 0;
}

}  // namespace
}  // namespace weft::bench

int main(int argc, char** argv) { return weft::bench::harness_main(argc, argv); }
