// Keeps the throughput harness honest: every workload runs with small sizes
// and its RESULTS are checked (counters, fib, sleeps, offloaded values,
// echoed bytes), never its timings; and the harness binary keeps its
// command-line and output contract (shared/perf/README.md), server modes
// included. W8 and W9 start the harness binary (a data dependency, at
// bench/throughput in the runfiles) as their server, as the harness does;
// W9 runs only where wrk is installed.
//
// Sizes shrink under ASan and TSan (kSanitized), which slow weft down 5-20x.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "weft/bench/child_process.h"
#include "weft/bench/echo_load.h"
#include "weft/bench/net_workloads.h"
#include "weft/bench/pipeline_workload.h"
#include "weft/bench/workloads.h"

namespace weft::bench {
namespace {

using std::chrono::milliseconds;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

RuntimeOptions with_workers(std::uint32_t n) {
  RuntimeOptions o;
  o.workers = n;
  return o;
}

class WorkloadsTest : public ::testing::TestWithParam<std::uint32_t> {
 protected:
  Runtime rt_{with_workers(GetParam())};
};

TEST_P(WorkloadsTest, SpawnLocalCountsEveryTaskOnEveryRun) {
  const std::uint32_t n = kSanitized ? 1000 : 3000;
  for (int run = 0; run < 3; ++run) {  // the harness reuses one runtime
    SpawnLocalResult r = spawn_local(rt_, n);
    EXPECT_EQ(r.tasks, n);
    EXPECT_EQ(r.counter, n);
    EXPECT_GT(r.seconds, 0);
  }
}

TEST_P(WorkloadsTest, SpawnRemoteRunsEverySubmittedTask) {
  const std::uint32_t n = kSanitized ? 1000 : 3000;
  for (int run = 0; run < 2; ++run) {
    SpawnRemoteResult r = spawn_remote(rt_, n);
    EXPECT_EQ(r.tasks, n);
    EXPECT_EQ(r.ran, n);
    EXPECT_GT(r.seconds, 0);
  }
  SpawnRemoteResult one = spawn_remote(rt_, 1);
  EXPECT_EQ(one.ran, 1u);
}

TEST_P(WorkloadsTest, FibComputesTheValueAndCountsTheTasks) {
  FibResult r = fib(rt_, 15);
  EXPECT_EQ(r.value, 610u);
  EXPECT_EQ(r.tasks, 1973u);  // 2 * fib(16) - 1
  FibResult leaf = fib(rt_, 1);
  EXPECT_EQ(leaf.value, 1u);
  EXPECT_EQ(leaf.tasks, 1u);
}

TEST(Fib, ExpectedValuesMatchTheReadme) {
  EXPECT_EQ(expected_fib_value(27), 196418u);
  EXPECT_EQ(expected_fib_tasks(27), 635621u);
  EXPECT_EQ(expected_fib_value(0), 0u);
  EXPECT_EQ(expected_fib_tasks(0), 1u);
}

TEST_P(WorkloadsTest, PingPongPassesTheCounterEveryRoundTrip) {
  PingPongResult r = ping_pong(rt_, 2000);
  EXPECT_EQ(r.round_trips, 2000u);
  EXPECT_EQ(r.counter, 4000u);
}

TEST_P(WorkloadsTest, YieldManyCountsEveryYield) {
  YieldManyResult r = yield_many(rt_, 20, 100);
  EXPECT_EQ(r.yields, 2000u);
}

TEST_P(WorkloadsTest, TimersWakeEverySleeperNeverEarly) {
  TimersResult r = timers(rt_, 2000, milliseconds(20));
  EXPECT_EQ(r.woke, 2000u);
  EXPECT_EQ(r.early, 0u);
  EXPECT_GT(r.max_sleep, milliseconds(19));
  // Every sleeper was joined, so the run lasted at least the longest sleep.
  EXPECT_GE(r.seconds, std::chrono::duration<double>(r.max_sleep).count());
  EXPECT_GT(r.cpu_seconds, 0);
}

TEST_P(WorkloadsTest, TimeoutsNeverFireAndReturnTheAwaitedValues) {
  const std::uint32_t n = kSanitized ? 1000 : 5000;
  for (auto fn : {timeouts_ready, timeouts_armed}) {
    TimeoutsResult r = fn(rt_, n);
    EXPECT_EQ(r.timeouts, n);
    EXPECT_EQ(r.completed, n);  // every wait_for returned the awaitable's 1
    EXPECT_EQ(r.fired, 0u);
  }
}

TEST_P(WorkloadsTest, IdleMemoryParksEveryTaskThenWakesIt) {
  IdleMemoryResult r = idle_memory(rt_, 20'000);
  EXPECT_EQ(r.tasks, 20'000u);
  EXPECT_EQ(r.woke, 20'000u);
  // (The growth itself is not checked: pages earlier tests of this process
  // touched and freed are reused. ResidentBytes checks the reading.)
  EXPECT_DOUBLE_EQ(r.bytes_per_task, static_cast<double>(r.rss_growth) / 20'000);
}

TEST_P(WorkloadsTest, PipelineSendsEveryChunkOnceToTheSink) {
  const std::string input = pipeline_input(kSanitized ? 300'000 : 1'000'000);
  for (int run = 0; run < 2; ++run) {  // the harness reuses one runtime
    PipelineResult r = pipeline(rt_, input, 16 * 1024, 4);
    EXPECT_EQ(r.chunks, (input.size() + 16 * 1024 - 1) / (16 * 1024));
    EXPECT_EQ(r.sink_bytes, r.written_bytes);
    EXPECT_EQ(r.written_bytes, r.compressed_bytes + 8 * r.chunks);
    EXPECT_GT(r.compressed_bytes, 0u);
    EXPECT_LT(r.compressed_bytes, input.size());
    EXPECT_LE(r.max_in_flight, 4u + 2);
    EXPECT_GT(r.seconds, 0);
  }
  EXPECT_THROW(pipeline(rt_, "", 16, 4), std::invalid_argument);
  EXPECT_THROW(pipeline(rt_, input, 0, 4), std::invalid_argument);
  EXPECT_THROW(pipeline(rt_, input, 16, 0), std::invalid_argument);
}

TEST(PipelineInput, IsTheDefinitionsText) {
  // x = x * 6364136223846793005 + 1442695040888963407 from x = 1; the top
  // four bits pick from "etaoinshrdlucmfw". The same bytes as the Tokio
  // peer's (both print 395090 compressed bytes for --scale=0.01).
  const std::string s = pipeline_input(100'000);
  std::uint64_t x = 1;
  for (std::size_t i = 0; i < 8; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    EXPECT_EQ(s[i], "etaoinshrdlucmfw"[x >> 60]) << i;
  }
  EXPECT_EQ(s.find_first_not_of("etaoinshrdlucmfw"), std::string::npos);
  EXPECT_EQ(pipeline_input(100'000), s) << "not deterministic";
}

TEST(ResidentBytes, GrowsWhenPagesAreTouched) {
  const std::int64_t before = resident_bytes();
  std::vector<char> block(64 << 20, 1);  // 64 MiB, every page written
  const std::int64_t after = resident_bytes();
  EXPECT_GT(before, 0);
  EXPECT_GE(after - before, 48 << 20);
  EXPECT_EQ(block[12345], 1);
}

TEST_P(WorkloadsTest, OffloadRunsEveryCallOffTheLoops) {
  const OffloadWork work = calibrate_offload_work(std::chrono::microseconds(2));
  for (std::uint32_t tasks : {16u, 1u, 500u}) {  // 500 > calls: one call per task
    OffloadResult r = offload(rt_, 300, tasks, work);
    EXPECT_EQ(r.calls, 300u);
    EXPECT_EQ(r.tasks, std::min(tasks, 300u));
    EXPECT_EQ(r.completed, 300u) << tasks << " tasks";
    EXPECT_EQ(r.on_loop_thread, 0u);
    EXPECT_GT(r.seconds, 0);
  }
}

TEST(Offload, CalibrationAndBadInput) {
  const OffloadWork w = calibrate_offload_work(std::chrono::microseconds(2));
  EXPECT_GT(w.iterations, 0u);
  EXPECT_GT(w.ns_per_call, 0);
  EXPECT_LT(w.ns_per_call, 1e6);  // loose: a loaded machine or a sanitizer slows it
  EXPECT_EQ(offload_work(w.iterations), offload_work(w.iterations));  // deterministic
  EXPECT_NE(offload_work(1), offload_work(2));
  EXPECT_THROW(calibrate_offload_work(Duration(0)), std::invalid_argument);
  EXPECT_THROW(calibrate_offload_work(std::chrono::seconds(2)), std::invalid_argument);
  Runtime rt;
  EXPECT_THROW(offload(rt, 0, 1, w), std::invalid_argument);
  EXPECT_THROW(offload(rt, 1, 0, w), std::invalid_argument);
  EXPECT_THROW(offload(rt, 1, 1, OffloadWork{}), std::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(Workers, WorkloadsTest, ::testing::Values(1u, 2u, 4u),
                         [](const auto& info) { return std::to_string(info.param) + "_workers"; });

TEST(TimerSleepDuration, IsTheReadmeFormula) {
  constexpr Duration k100ms = milliseconds(100);
  EXPECT_EQ(timer_sleep_duration(0, 100'000, k100ms), Duration(0));
  EXPECT_EQ(timer_sleep_duration(1, 100'000, k100ms), std::chrono::microseconds(7919));
  EXPECT_EQ(timer_sleep_duration(13, 100'000, k100ms), std::chrono::microseconds(2947));
  // 7919 is prime: the durations are a permutation of the n slots.
  std::set<Duration::rep> seen;
  for (std::uint32_t i = 0; i < 1000; ++i) {
    seen.insert(timer_sleep_duration(i, 1000, k100ms).count());
  }
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_EQ(*seen.rbegin(), Duration(k100ms).count() * 999 / 1000);
}

// --- W8/W9 and their pieces ------------------------------------------------------

// The harness binary in the runfiles (tests run in this workspace's tree).
const ServerCommand kServer{"bench/throughput", {"--workers=2"}};

TEST(Percentile, IsTheNearestRank) {
  std::vector<std::uint64_t> v;
  EXPECT_EQ(percentile(v, 50), 0u);
  for (std::uint64_t i = 100; i >= 1; --i) v.push_back(i);  // 1..100, reversed
  EXPECT_EQ(percentile(v, 50), 50u);
  EXPECT_EQ(percentile(v, 99), 99u);
  EXPECT_EQ(percentile(v, 100), 100u);
  EXPECT_EQ(percentile(v, 0.5), 1u);
  std::vector<std::uint64_t> one{7};
  EXPECT_EQ(percentile(one, 99), 7u);
  EXPECT_THROW(percentile(v, 0), std::invalid_argument);
  EXPECT_THROW(percentile(v, 101), std::invalid_argument);
}

TEST(TcpEcho, EchoesEveryMessageAndCountsIt) {
  EchoLoadOptions load;
  load.connections = 4;
  load.warmup = milliseconds(50);
  load.duration = milliseconds(200);
  TcpEchoResult r = tcp_echo(kServer, load);
  EXPECT_GT(r.port, 0);
  EXPECT_EQ(r.load.connections, 4u);
  EXPECT_GE(r.load.sent, 4u);
  EXPECT_EQ(r.load.verified, r.load.sent);  // each message checked byte for byte
  EXPECT_GT(r.load.measured, 0u);
  EXPECT_LE(r.load.measured, r.load.verified);
  EXPECT_DOUBLE_EQ(r.load.seconds, 0.2);
  EXPECT_DOUBLE_EQ(r.load.msgs_per_s, r.load.measured / 0.2);
  EXPECT_GT(r.load.p50_us, 0);
  EXPECT_GE(r.load.p99_us, r.load.p50_us);
  EXPECT_GE(r.load.max_us, r.load.p99_us);
  EXPECT_EQ(r.server_status, 0) << describe_wait_status(r.server_status);
}

// A free port on 127.0.0.1 that nobody listens on (bound, then closed).
std::uint16_t unused_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

TEST(EchoLoad, RejectsBadOptionsAndARefusedConnection) {
  EchoLoadOptions o;
  EXPECT_THROW(run_echo_load(o), std::invalid_argument);  // no port
  o.port = unused_port();
  o.connections = 0;
  EXPECT_THROW(run_echo_load(o), std::invalid_argument);
  o.connections = 1;
  o.message_size = 8;
  EXPECT_THROW(run_echo_load(o), std::invalid_argument);
  o.message_size = 64;
  o.duration = Duration(0);
  EXPECT_THROW(run_echo_load(o), std::invalid_argument);
  o.duration = milliseconds(50);
  EXPECT_THROW(run_echo_load(o), std::runtime_error);  // connection refused
}

// A one-connection blocking server on 127.0.0.1 that echoes with byte 20 of
// every message changed: the load generator must notice.
class CorruptingEchoServer {
 public:
  CorruptingEchoServer() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        listen(listen_fd_, 4) != 0 ||
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      throw std::runtime_error("CorruptingEchoServer: cannot listen");
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~CorruptingEchoServer() {
    shutdown(listen_fd_, SHUT_RDWR);  // ends a pending accept
    thread_.join();
    close(listen_fd_);
  }
  std::uint16_t port() const { return port_; }

 private:
  void serve() {
    const int fd = accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) return;
    timeval tv{2, 0};  // bounded: the client goes away after the first echo
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[64];
    std::size_t have = 0;
    for (;;) {
      const ssize_t n = recv(fd, buf + have, sizeof buf - have, 0);
      if (n <= 0) break;
      have += static_cast<std::size_t>(n);
      if (have < sizeof buf) continue;
      buf[20] ^= 1;
      if (send(fd, buf, sizeof buf, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof buf)) break;
      have = 0;
    }
    close(fd);
  }

  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

TEST(EchoLoad, DetectsAWrongEcho) {
  CorruptingEchoServer server;
  EchoLoadOptions o;
  o.port = server.port();
  o.connections = 1;
  o.warmup = milliseconds(0);
  o.duration = milliseconds(500);
  try {
    run_echo_load(o);
    ADD_FAILURE() << "the corrupted echo was not noticed";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("wrong echo on connection 0, message 1, first bad byte 20"),
              std::string::npos)
        << e.what();
  }
}

TEST(ChildProcess, StopsAndReapsARunningChild) {
  ChildProcess sleeper = ChildProcess::spawn({"/bin/sleep", "30"});
  EXPECT_TRUE(sleeper.running());
  const int status = sleeper.stop(std::chrono::seconds(5));
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << describe_wait_status(status);
  EXPECT_FALSE(sleeper.running());
  EXPECT_EQ(sleeper.stop(), status);  // idempotent
  // A child that ignores SIGTERM is killed after the grace period.
  ChildProcess ignores_sigterm =
      ChildProcess::spawn({"/bin/sh", "-c", "trap '' TERM; echo ready; exec sleep 30"});
  EXPECT_EQ(ignores_sigterm.read_line(std::chrono::seconds(10)), "ready");  // SIGTERM is ignored now
  const int killed = ignores_sigterm.stop(milliseconds(100));
  EXPECT_TRUE(WIFSIGNALED(killed) && WTERMSIG(killed) == SIGKILL) << describe_wait_status(killed);
  EXPECT_THROW(ChildProcess::spawn({"/no/such/program"}), std::runtime_error);
  EXPECT_THROW(ChildProcess::spawn({}), std::invalid_argument);
}

TEST(ChildProcess, ReadsLinesAndOutputWithDeadlines) {
  ChildProcess echo = ChildProcess::spawn({"/bin/sh", "-c", "echo one; echo two; echo -n three"});
  EXPECT_EQ(echo.read_line(std::chrono::seconds(10)), "one");
  EXPECT_EQ(echo.read_to_eof(std::chrono::seconds(10)), "two\nthree");
  const std::optional<int> status = echo.wait_for_exit(std::chrono::seconds(10));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);

  ChildProcess silent = ChildProcess::spawn({"/bin/sleep", "30"});
  EXPECT_THROW(silent.read_line(milliseconds(50)), std::runtime_error);  // timed out
  ChildProcess quiet_exit = ChildProcess::spawn({"/bin/true"});
  EXPECT_THROW(quiet_exit.read_line(std::chrono::seconds(10)), std::runtime_error);  // EOF
}  // ~ChildProcess stops `silent`

TEST(FindInPath, FindsProgramsAndPaths) {
  EXPECT_EQ(find_in_path("sh").empty(), false);
  EXPECT_EQ(find_in_path("/bin/sh"), "/bin/sh");
  EXPECT_EQ(find_in_path("no-such-program-weft"), "");
  EXPECT_EQ(find_in_path(""), "");
}

constexpr const char* kWrkReport = R"(Running 5s test @ http://127.0.0.1:40000/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   612.21us  120.66us   3.05ms   82.17%
    Req/Sec   103.54k     3.16k  107.93k    84.00%
  Latency Distribution
     50%  595.00us
     75%  646.00us
     90%  709.00us
     99%    1.01ms
  515244 requests in 5.00s, 39.31MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec: 103028.75
Transfer/sec:      7.86MB
)";

TEST(WrkOutput, ParsesRateLatenciesAndErrors) {
  WrkReport r = parse_wrk_output(kWrkReport);
  EXPECT_DOUBLE_EQ(r.req_per_s, 103028.75);
  EXPECT_DOUBLE_EQ(r.p50_us, 595.0);
  EXPECT_DOUBLE_EQ(r.p99_us, 1010.0);
  EXPECT_EQ(r.requests, 515244u);
  EXPECT_EQ(r.socket_errors, 3u);
  EXPECT_EQ(r.non_2xx, 4u);

  std::string seconds_p99 = kWrkReport;
  seconds_p99.replace(seconds_p99.find("1.01ms"), 6, "1.50s");
  EXPECT_DOUBLE_EQ(parse_wrk_output(seconds_p99).p99_us, 1.5e6);

  std::string no_rate = kWrkReport;
  no_rate.erase(no_rate.find("Requests/sec"));
  EXPECT_THROW(parse_wrk_output(no_rate), std::runtime_error);
  std::string no_p99 = kWrkReport;
  no_p99.erase(no_p99.find("     99%"), 20);
  EXPECT_THROW(parse_wrk_output(no_p99), std::runtime_error);
  std::string bad_unit = kWrkReport;
  bad_unit.replace(bad_unit.find("595.00us"), 8, "595.00xx");
  EXPECT_THROW(parse_wrk_output(bad_unit), std::runtime_error);
  EXPECT_THROW(parse_wrk_output(""), std::runtime_error);
}

TEST(HttpHello, WrkGetsHelloFromTheServer) {
  if (find_in_path("wrk").empty()) GTEST_SKIP() << "wrk is not installed (apt-get install wrk)";
  WrkOptions w;
  w.connections = 4;
  w.seconds = 1;  // wrk's shortest run
  HttpHelloResult r = http_hello(kServer, w);
  EXPECT_GT(r.port, 0);
  EXPECT_GT(r.wrk.requests, 0u);
  EXPECT_GT(r.wrk.req_per_s, 0);
  EXPECT_EQ(r.wrk.non_2xx, 0u);
  EXPECT_EQ(r.wrk.socket_errors, 0u);
  EXPECT_GT(r.wrk.p50_us, 0);
  EXPECT_GE(r.wrk.p99_us, r.wrk.p50_us);
  EXPECT_EQ(r.server_status, 0) << describe_wait_status(r.server_status);
}

// --- The binary's contract ---------------------------------------------------------

struct Outcome {
  int status = -1;
  std::string out;  // stdout only; stderr goes to the test log
};

Outcome run_harness(const std::string& args) {
  // Tests run in the runfiles tree of this workspace.
  const std::string cmd = "bench/throughput " + args;
  Outcome o;
  std::FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return o;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) o.out += buf;
  int raw = pclose(p);
  o.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return o;
}

// The (workload, metric, unit) of every stdout line, which must all be
// contract lines.
std::vector<std::string> figures_of(const std::string& out, const std::string& label = "weft") {
  const std::regex line(label + R"( (\w+) (\w+) ([0-9]+(\.[0-9]+)?) (\S+))");
  std::istringstream in(out);
  std::vector<std::string> figures;
  for (std::string l; std::getline(in, l);) {
    std::smatch m;
    EXPECT_TRUE(std::regex_match(l, m, line)) << "not a contract line: " << l;
    figures.push_back(m[1].str() + " " + m[2].str() + " " + m[5].str());
  }
  return figures;
}

TEST(Harness, PrintsOneContractLinePerFigure) {
  Outcome o = run_harness("--workers=2 --scale=0.002 W1 ping_pong w3 W7");
  ASSERT_EQ(o.status, 0) << o.out;
  EXPECT_EQ(figures_of(o.out),
            (std::vector<std::string>{"spawn_local best tasks/s", "spawn_local median tasks/s",
                                      "ping_pong ns_per_rtt ns", "fib n n", "fib tasks tasks",
                                      "fib wall_ms ms", "fib ns_per_task ns",
                                      "offload calls_per_s calls/s", "offload work_ns ns"}));
}

TEST(Harness, IdleMemoryIsM1AndNotADefault) {
  Outcome o = run_harness("--workers=2 --scale=0.005 M1");
  ASSERT_EQ(o.status, 0) << o.out;
  EXPECT_EQ(figures_of(o.out), (std::vector<std::string>{"idle_memory bytes_per_task bytes"}));
}

TEST(Harness, PipelineIsW10AndNotADefault) {
  Outcome o = run_harness("--workers=2 --scale=0.01 W10");
  ASSERT_EQ(o.status, 0) << o.out;
  EXPECT_EQ(figures_of(o.out), (std::vector<std::string>{"pipeline mb_per_s MB/s"}));
  EXPECT_EQ(run_harness("--workers=2 --scale=0.01 w10").status, 0);
}

TEST(Harness, JsonPrintsOneObjectPerFigure) {
  Outcome o = run_harness("--workers=2 --scale=0.002 --json W1 fib");
  ASSERT_EQ(o.status, 0) << o.out;
  const std::regex object(
      R"re(\{"impl": "weft", "workload": "(\w+)", "metric": "(\w+)", "value": [0-9]+(\.[0-9]+)?, "unit": "(\S+)"\})re");
  std::istringstream in(o.out);
  std::vector<std::string> figures;
  for (std::string l; std::getline(in, l);) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(l, m, object)) << "not a figure object: " << l;
    figures.push_back(m[1].str() + " " + m[2].str() + " " + m[4].str());
  }
  EXPECT_EQ(figures, (std::vector<std::string>{"spawn_local best tasks/s",
                                               "spawn_local median tasks/s", "fib n n",
                                               "fib tasks tasks", "fib wall_ms ms",
                                               "fib ns_per_task ns"}));
}

TEST(Harness, MeasuresTcpEchoThroughItsOwnServerMode) {
  Outcome o = run_harness("--workers=2 --scale=0.04 tcp_echo");  // 20 ms + 200 ms
  ASSERT_EQ(o.status, 0) << o.out;
  EXPECT_EQ(figures_of(o.out),
            (std::vector<std::string>{"tcp_echo msgs_per_s msgs/s", "tcp_echo p50_us us",
                                      "tcp_echo p99_us us"}));
}

TEST(Harness, MeasuresAnotherServerWithTheSameContract) {
  // Any program with the contract's server modes; here this harness, whose
  // figures are then labelled with its file name instead of `weft`.
  Outcome o = run_harness("--scale=0.04 --server=bench/throughput W8");
  ASSERT_EQ(o.status, 0) << o.out;
  EXPECT_EQ(figures_of(o.out, "throughput"),
            (std::vector<std::string>{"tcp_echo msgs_per_s msgs/s", "tcp_echo p50_us us",
                                      "tcp_echo p99_us us"}));
  for (const char* args : {"--server=bench/no_such_server W8", "--server= W8",
                           "--server=bench/throughput", "--server=bench/throughput W8 W1"}) {
    Outcome bad = run_harness(args);
    EXPECT_EQ(bad.status, 2) << args;
    EXPECT_EQ(bad.out, "") << args;
  }
}

TEST(Harness, RejectsUnknownWorkloads) {
  Outcome o = run_harness("--scale=0.002 W1 no_such_workload");
  EXPECT_EQ(o.status, 2);
  EXPECT_EQ(o.out, "");  // rejected before anything ran
  EXPECT_EQ(run_harness("W11").status, 2);
  EXPECT_EQ(run_harness("--workers=0").status, 2);
  EXPECT_EQ(run_harness("--scale=2").status, 2);
}

TEST(Harness, ServerModesCheckTheirArguments) {
  for (const char* args : {"echo-server", "http-server 0", "echo-server 1x", "echo-server 1 2",
                           "W1 echo-server 1"}) {
    Outcome o = run_harness(args);
    EXPECT_EQ(o.status, 2) << args;
    EXPECT_EQ(o.out, "") << args;  // no LISTEN: nothing was started
  }
}

TEST(Harness, ServerModesListenThenStopByThemselves) {
  for (const char* mode : {"echo-server", "http-server"}) {
    const auto t0 = std::chrono::steady_clock::now();
    Outcome o = run_harness(std::string("--workers=1 ") + mode + " 0.2");
    EXPECT_EQ(o.status, 0) << mode;
    EXPECT_TRUE(std::regex_match(o.out, std::regex(R"(LISTEN [1-9][0-9]*\n)"))) << o.out;
    EXPECT_GE(std::chrono::steady_clock::now() - t0, milliseconds(200)) << mode;
  }
}

}  // namespace
}  // namespace weft::bench
